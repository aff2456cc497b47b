//! Thin, checked wrappers over the system calls the tests use.

use std::ffi::CString;
use std::io;

/// Path of the netmap device.
pub const DEV: &str = "/dev/netmap";

/// The errno of the last failed call.
pub fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Symbolic name of an errno for messages.
pub fn errno_name(e: i32) -> String {
    let n = match e {
        0 => "0",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENOBUFS => "ENOBUFS",
        _ => return format!("errno {e}"),
    };
    n.to_string()
}

/// An open file descriptor, closed on drop.
#[derive(Debug)]
pub struct Fd(pub libc::c_int);

impl Fd {
    /// Opens /dev/netmap read-write.
    pub fn open_netmap() -> Result<Fd, String> {
        Self::open(DEV, libc::O_RDWR)
    }

    pub fn open(path: &str, flags: libc::c_int) -> Result<Fd, String> {
        let c = CString::new(path).map_err(|e| e.to_string())?;
        // SAFETY: c is a valid NUL-terminated path.
        let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(format!("open {path}: {}", errno_name(errno())));
        }
        Ok(Fd(fd))
    }

    /// ioctl with a pointer argument; Err(errno) on failure.
    pub fn ioctl_ptr<T>(&self, cmd: u32, arg: *mut T) -> Result<(), i32> {
        // SAFETY: the kernel validates `arg` (it may be NULL or bogus on
        // purpose in error tests; the kernel must handle that).
        let r = unsafe { libc::ioctl(self.0, libc::c_ulong::from(cmd), arg) };
        if r < 0 { Err(errno()) } else { Ok(()) }
    }

    /// ioctl with an integer argument.
    pub fn ioctl_val(&self, cmd: u32, arg: libc::c_ulong) -> Result<(), i32> {
        // SAFETY: plain integer argument; the kernel validates it.
        let r = unsafe { libc::ioctl(self.0, libc::c_ulong::from(cmd), arg) };
        if r < 0 { Err(errno()) } else { Ok(()) }
    }

    /// mmap of `len` bytes at `offset`, shared read-write.
    pub fn mmap(&self, len: usize, offset: i64) -> Result<Mapping, i32> {
        // SAFETY: a fresh mapping chosen by the kernel; no existing memory
        // is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.0,
                offset,
            )
        };
        if p == libc::MAP_FAILED {
            Err(errno())
        } else {
            Ok(Mapping { ptr: p.cast(), len })
        }
    }

    /// poll() on this fd alone; returns revents (0 on timeout).
    pub fn poll(&self, events: i16, timeout_ms: i32) -> Result<i16, i32> {
        let mut pfd = libc::pollfd {
            fd: self.0,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r < 0 { Err(errno()) } else { Ok(pfd.revents) }
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

/// A shared mapping, unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    pub ptr: *mut u8,
    pub len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe a mapping we own.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Expects `r` to be the error `want`.
pub fn expect_err(what: &str, r: Result<(), i32>, want: i32) -> Result<(), String> {
    match r {
        Err(e) if e == want => Ok(()),
        Err(e) => Err(format!(
            "{what}: got {}, want {}",
            errno_name(e),
            errno_name(want)
        )),
        Ok(()) => Err(format!("{what}: succeeded, want {}", errno_name(want))),
    }
}

/// Expects `r` to succeed.
pub fn expect_ok<T>(what: &str, r: Result<T, i32>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {}", errno_name(e)))
}
