//! What Linux does its own way: the `_IOC` ioctl numbers and CPU pinning
//! (`sched_setaffinity`).

pub use crate::ioctl::{NIOCCTRL, NIOCRXSYNC, NIOCTXSYNC};
use std::io;

/// Pins the calling thread to CPU `cpu`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    if cpu >= 8 * core::mem::size_of::<libc::cpu_set_t>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `cpu` is within the set (checked above), `set` is a valid cpu_set_t.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    let size = core::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: pid 0 is the calling thread; `set` is a valid set of `size` bytes.
    super::unix::cvt(unsafe { libc::sched_setaffinity(0, size, &set) }).map(drop)
}
