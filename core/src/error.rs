//! The core's error type: an errno from the table of the reference ABI
//! (spec §11). The OS edge returns it as `-errno`.

use core::fmt;
use netmap_uapi::errno as e;

/// A positive errno value, as in the reference (Linux numbering).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const EPERM: Errno = Errno(e::EPERM);
    pub const ENOENT: Errno = Errno(e::ENOENT);
    pub const EINTR: Errno = Errno(e::EINTR);
    pub const EIO: Errno = Errno(e::EIO);
    pub const ENXIO: Errno = Errno(e::ENXIO);
    pub const EBADF: Errno = Errno(e::EBADF);
    pub const ENOMEM: Errno = Errno(e::ENOMEM);
    pub const EACCES: Errno = Errno(e::EACCES);
    pub const EFAULT: Errno = Errno(e::EFAULT);
    pub const EBUSY: Errno = Errno(e::EBUSY);
    pub const EEXIST: Errno = Errno(e::EEXIST);
    pub const ENODEV: Errno = Errno(e::ENODEV);
    pub const EINVAL: Errno = Errno(e::EINVAL);
    pub const EMSGSIZE: Errno = Errno(e::EMSGSIZE);
    pub const EOPNOTSUPP: Errno = Errno(e::EOPNOTSUPP);
    pub const ENOBUFS: Errno = Errno(e::ENOBUFS);

    /// Symbolic name, for logs and test output.
    pub fn name(self) -> &'static str {
        match self {
            Errno::EPERM => "EPERM",
            Errno::ENOENT => "ENOENT",
            Errno::EINTR => "EINTR",
            Errno::EIO => "EIO",
            Errno::ENXIO => "ENXIO",
            Errno::EBADF => "EBADF",
            Errno::ENOMEM => "ENOMEM",
            Errno::EACCES => "EACCES",
            Errno::EFAULT => "EFAULT",
            Errno::EBUSY => "EBUSY",
            Errno::EEXIST => "EEXIST",
            Errno::ENODEV => "ENODEV",
            Errno::EINVAL => "EINVAL",
            Errno::EMSGSIZE => "EMSGSIZE",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
            Errno::ENOBUFS => "ENOBUFS",
            _ => "E?",
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<crate::platform::Fault> for Errno {
    fn from(_: crate::platform::Fault) -> Self {
        Errno::EFAULT
    }
}

/// Result type of the core.
pub type Result<T = ()> = core::result::Result<T, Errno>;
