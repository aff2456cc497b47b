//! The error type of [`crate::user`].

use crate::consts::errno as e;
use crate::portname::PortSpecError;
use core::fmt;
use std::io;

/// The operation that failed (for messages and for callers that want to react to a
/// particular step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Opening `/dev/netmap`.
    Open,
    /// `NETMAP_REQ_REGISTER`.
    Register,
    /// Mapping the shared memory region.
    Mmap,
    /// `NIOCTXSYNC`.
    TxSync,
    /// `NIOCRXSYNC`.
    RxSync,
    /// `poll()`.
    Poll,
    /// `NETMAP_REQ_PORT_INFO_GET`.
    PortInfo,
    /// `NETMAP_REQ_POOLS_INFO_GET`.
    PoolsInfo,
    /// `NETMAP_REQ_VALE_ATTACH`.
    ValeAttach,
    /// `NETMAP_REQ_VALE_DETACH`.
    ValeDetach,
    /// `NETMAP_REQ_VALE_LIST`.
    ValeList,
    /// `NETMAP_REQ_VALE_NEWIF`.
    ValeNewif,
    /// `NETMAP_REQ_VALE_DELIF`.
    ValeDelif,
    /// `NETMAP_REQ_PORT_HDR_GET`.
    PortHdrGet,
    /// `NETMAP_REQ_PORT_HDR_SET`.
    PortHdrSet,
    /// `NETMAP_REQ_VALE_POLLING_ENABLE`.
    PollingEnable,
    /// `NETMAP_REQ_VALE_POLLING_DISABLE`.
    PollingDisable,
    /// `NETMAP_REQ_CSB_ENABLE`.
    CsbEnable,
    /// `NETMAP_REQ_SYNC_KLOOP_START`.
    KloopStart,
    /// `NETMAP_REQ_SYNC_KLOOP_STOP`.
    KloopStop,
}

impl Op {
    /// What the operation does, as a verb phrase ("register", "attach", ...).
    pub fn action(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Register => "register",
            Op::Mmap => "map the memory of",
            Op::TxSync => "txsync",
            Op::RxSync => "rxsync",
            Op::Poll => "poll",
            Op::PortInfo => "obtain info for",
            Op::PoolsInfo => "obtain pool info for",
            Op::ValeAttach => "attach",
            Op::ValeDetach => "detach",
            Op::ValeList => "list",
            Op::ValeNewif => "create",
            Op::ValeDelif => "remove",
            Op::PortHdrGet => "get the virtio-net header length of",
            Op::PortHdrSet => "set the virtio-net header length of",
            Op::PollingEnable => "enable polling on",
            Op::PollingDisable => "disable polling on",
            Op::CsbEnable => "enable CSB mode on",
            Op::KloopStart => "run the sync kernel loop on",
            Op::KloopStop => "stop the sync kernel loop of",
        }
    }

    /// A hint for well-known `(operation, errno)` pairs (spec §11).
    fn hint(self, errno: i32) -> Option<&'static str> {
        Some(match (self, errno) {
            (Op::Register | Op::PortInfo | Op::PortHdrGet | Op::PortHdrSet, e::ENXIO) => {
                "no such port"
            }
            (Op::Register, e::EBUSY) => {
                "port busy: bound exclusively by another program, or attached to a VALE switch"
            }
            (Op::Register, e::EIO) => "the port uses virtio-net headers",
            (Op::Register, e::EINVAL) => {
                "invalid ring selection, mem id, or an interface name used as a VALE port"
            }
            (Op::Register | Op::ValeNewif | Op::ValeAttach, e::ENOMEM) => {
                "out of netmap memory, or the VALE switch is full"
            }
            (Op::Register, e::EOPNOTSUPP) => "a requested option is not supported",
            (Op::ValeAttach, e::EBUSY) => "already attached, or open in netmap mode",
            (Op::ValeAttach, e::EINVAL) => "no such interface, or invalid mode",
            (Op::ValeDetach, e::ENXIO) => "not attached",
            (Op::ValeDetach, e::EBUSY) => "polling is active, or detach the second switch first",
            (Op::ValeList, e::ENOENT) => "no such VALE switch",
            (Op::ValeNewif, e::EEXIST) => "an interface with this name exists",
            (Op::ValeNewif | Op::ValeDelif, e::EOPNOTSUPP) => {
                "persistent VALE ports are not supported by this netmap module"
            }
            (Op::ValeDelif, e::EBUSY) => "the port is in use or attached to a switch",
            (Op::ValeDelif, e::EINVAL) => "not a persistent VALE port",
            (Op::ValeDelif, e::ENXIO) => "no such interface",
            (Op::TxSync | Op::RxSync, e::ENXIO) => "file descriptor not bound to a port",
            (Op::PollingEnable | Op::PollingDisable, e::EOPNOTSUPP) => {
                "not a NIC attached to a VALE switch"
            }
            (Op::PollingEnable, e::EFAULT) => "polling already enabled",
            (Op::PollingDisable, e::EFAULT) => "polling not enabled",
            (Op::CsbEnable, e::EINVAL) => "CSB mode needs an exclusive binding (/x)",
            (Op::CsbEnable | Op::KloopStart, e::EBUSY) => "a sync kernel loop runs on it",
            (Op::KloopStart, e::EINVAL) => "not in CSB mode, or invalid loop options",
            (Op::TxSync | Op::RxSync, e::EBUSY) => "in CSB mode: the sync kernel loop syncs",
            _ => return None,
        })
    }
}

/// Errors of the netmap userspace API.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A system call (open, ioctl, mmap, poll) failed.
    Os {
        /// What was being done.
        op: Op,
        /// The port (or switch) name, if any.
        name: Option<String>,
        /// The `errno` value.
        errno: i32,
    },
    /// The port spec does not follow the `nmport_open` grammar (spec §7.2).
    Spec {
        /// The spec as given.
        spec: String,
        /// What is wrong.
        error: PortSpecError,
    },
    /// The kernel returned a region whose layout is inconsistent (a ring or the
    /// netmap_if outside the mapped memory, zero slots, ...).
    Layout {
        /// The port name.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// A feature this implementation does not provide (e.g. `@extmem`).
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },
    /// An argument was rejected before any request was made.
    InvalidArgument {
        /// What is wrong.
        what: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    pub(crate) fn os(op: Op, name: Option<&str>, err: &io::Error) -> Self {
        Error::Os {
            op,
            name: name.map(str::to_owned),
            errno: err.raw_os_error().unwrap_or(e::EIO),
        }
    }

    /// The `errno` of a failed system call, or the errno libnetmap would report
    /// (`EINVAL` for bad specs and layouts, `EOPNOTSUPP` for unsupported features).
    pub fn errno(&self) -> i32 {
        match self {
            Error::Os { errno, .. } => *errno,
            Error::Spec { error, .. } => error.errno(),
            Error::Layout { .. } | Error::InvalidArgument { .. } => e::EINVAL,
            Error::Unsupported { .. } => e::EOPNOTSUPP,
        }
    }

    /// The failed operation, for [`Error::Os`].
    pub fn op(&self) -> Option<Op> {
        match self {
            Error::Os { op, .. } => Some(*op),
            _ => None,
        }
    }
}

/// The symbolic name of the errno values netmap uses (spec §11).
pub fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        e::EPERM => "EPERM",
        e::ENOENT => "ENOENT",
        e::EIO => "EIO",
        e::ENXIO => "ENXIO",
        e::ENOMEM => "ENOMEM",
        e::EACCES => "EACCES",
        e::EFAULT => "EFAULT",
        e::EBUSY => "EBUSY",
        e::EEXIST => "EEXIST",
        e::ENODEV => "ENODEV",
        e::EINVAL => "EINVAL",
        e::EMSGSIZE => "EMSGSIZE",
        e::EOPNOTSUPP => "EOPNOTSUPP",
        e::ENOBUFS => "ENOBUFS",
        libc::EINTR => "EINTR",
        libc::EAGAIN => "EAGAIN",
        _ => return None,
    })
}

/// The C library's text for `errno` (`strerror`), with its symbolic name when
/// known, e.g. `"Device or resource busy (EBUSY)"`; never a bare number.
pub fn describe_errno(errno: i32) -> String {
    let text = super::sys::strerror(errno);
    let text = match text.rfind(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    };
    match errno_name(errno) {
        Some(n) => format!("{text} ({n})"),
        None => text,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Os {
                op: Op::Open,
                errno,
                ..
            } => match *errno {
                e::ENOENT | e::ENODEV | e::ENXIO => write!(
                    f,
                    "cannot open {}: {}",
                    super::DEVICE_PATH,
                    super::sys::NOT_LOADED_HINT
                ),
                e::EACCES | e::EPERM => write!(
                    f,
                    "permission denied on {} (root only unless granted)",
                    super::DEVICE_PATH
                ),
                n => write!(
                    f,
                    "cannot open {}: {}",
                    super::DEVICE_PATH,
                    describe_errno(n)
                ),
            },
            Error::Os { op, name, errno } => {
                write!(f, "failed to {}", op.action())?;
                if let Some(name) = name {
                    write!(f, " {name}")?;
                }
                write!(f, ": {}", describe_errno(*errno))?;
                if let Some(h) = op.hint(*errno) {
                    write!(f, " ({h})")?;
                }
                Ok(())
            }
            Error::Spec { spec, error } => write!(f, "invalid port spec '{spec}': {error}"),
            Error::Layout { name, what } => {
                write!(f, "inconsistent netmap memory layout for {name}: {what}")
            }
            Error::Unsupported { what } => write!(f, "not supported: {what}"),
            Error::InvalidArgument { what } => write!(f, "invalid argument: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spec { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        let errno = err.errno();
        io::Error::new(io::Error::from_raw_os_error(errno).kind(), err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_messages_are_friendly() {
        let err = |errno| Error::Os {
            op: Op::Open,
            name: None,
            errno,
        };
        assert_eq!(
            err(e::ENOENT).to_string(),
            "cannot open /dev/netmap: is the netmap module loaded?"
        );
        assert_eq!(
            err(e::ENODEV).to_string(),
            "cannot open /dev/netmap: is the netmap module loaded?"
        );
        assert_eq!(
            err(e::EACCES).to_string(),
            "permission denied on /dev/netmap (root only unless granted)"
        );
        assert!(err(e::EBUSY).to_string().contains("(EBUSY)"));
    }

    #[test]
    fn request_messages_name_the_action_and_errno() {
        let m = Error::Os {
            op: Op::Register,
            name: Some("vale0:a".into()),
            errno: e::EBUSY,
        }
        .to_string();
        assert!(m.starts_with("failed to register vale0:a: "), "{m}");
        assert!(m.contains("EBUSY") && m.contains("exclusively"), "{m}");
        assert!(!m.contains("os error"), "{m}");
        let m = Error::Os {
            op: Op::ValeDetach,
            name: Some("vale0:eth0".into()),
            errno: e::ENXIO,
        }
        .to_string();
        assert!(m.contains("failed to detach vale0:eth0") && m.contains("not attached"));
        assert!(describe_errno(libc::EAGAIN).contains("(EAGAIN)"));
    }

    #[test]
    fn errno_of_each_variant() {
        let spec = crate::portname::PortSpec::parse("foo").unwrap_err();
        let s = Error::Spec {
            spec: "foo".into(),
            error: spec,
        };
        assert_eq!(s.errno(), e::EINVAL);
        assert!(s.to_string().starts_with("invalid port spec 'foo': "));
        assert_eq!(Error::Unsupported { what: "extmem" }.errno(), e::EOPNOTSUPP);
        let io: io::Error = Error::Os {
            op: Op::Mmap,
            name: None,
            errno: e::ENOMEM,
        }
        .into();
        assert_eq!(io.kind(), io::ErrorKind::OutOfMemory);
    }
}
