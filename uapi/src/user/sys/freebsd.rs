//! What FreeBSD does its own way: the `sys/ioccom.h` ioctl numbers and CPU
//! pinning (`cpuset_setaffinity`).

pub use crate::ioctl::bsd::{NIOCCTRL, NIOCRXSYNC, NIOCTXSYNC};
use std::io;

/// Pins the calling thread to CPU `cpu`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: `cpuset_t` is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpuset_t = unsafe { core::mem::zeroed() };
    let size = core::mem::size_of::<libc::cpuset_t>();
    if cpu >= 8 * size {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `cpu` is within the set (checked above), `set` is a valid cpuset_t.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: id -1 with CPU_WHICH_TID is the calling thread; `set` is a valid
    // set of `size` bytes, only read.
    let ret = unsafe {
        libc::cpuset_setaffinity(libc::CPU_LEVEL_WHICH, libc::CPU_WHICH_TID, -1, size, &set)
    };
    super::unix::cvt(ret).map(drop)
}
