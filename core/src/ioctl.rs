//! The ioctls of `/dev/netmap` independent of how an OS numbers them and of
//! where it puts their argument (§1.3).
//!
//! * Numbers: Linux and FreeBSD encode the same requests differently
//!   (`netmap_uapi::ioctl` and `netmap_uapi::ioctl::bsd`); the OS edge
//!   decodes its number into an [`IoctlReq`].
//! * Argument: Linux hands the handler the user address of the fixed
//!   argument (the 88-byte `nmreq_header` of NIOCCTRL, the legacy `nmreq`);
//!   FreeBSD's ioctl layer has already copied it into a kernel buffer, and
//!   copies the buffer back out when the handler returns (so does Windows
//!   with `METHOD_BUFFERED`). [`IoctlArg`] is either. What the argument
//!   points to (request bodies, options) is user memory in both cases.

#![deny(unsafe_code)]

use crate::platform::Platform;
use crate::{Errno, Result};

/// A request of `/dev/netmap`, whatever its OS number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoctlReq {
    /// NIOCCTRL: a `nmreq_header` request (§4).
    Ctrl,
    /// Legacy NIOCREGIF (`struct nmreq`, §4.12).
    RegIf,
    /// Legacy NIOCGINFO (`struct nmreq`, §4.12).
    GetInfo,
    /// NIOCTXSYNC (no argument).
    TxSync,
    /// NIOCRXSYNC (no argument).
    RxSync,
    /// NIOCCONFIG (`struct nm_ifreq`).
    Config,
}

/// Each request with its Linux and its FreeBSD number.
const NUMBERS: [(IoctlReq, u32, u32); 6] = {
    use netmap_uapi::ioctl::{self as l, bsd as b};
    [
        (IoctlReq::Ctrl, l::NIOCCTRL, b::NIOCCTRL),
        (IoctlReq::RegIf, l::NIOCREGIF, b::NIOCREGIF),
        (IoctlReq::GetInfo, l::NIOCGINFO, b::NIOCGINFO),
        (IoctlReq::TxSync, l::NIOCTXSYNC, b::NIOCTXSYNC),
        (IoctlReq::RxSync, l::NIOCRXSYNC, b::NIOCRXSYNC),
        (IoctlReq::Config, l::NIOCCONFIG, b::NIOCCONFIG),
    ]
};

impl IoctlReq {
    /// Decodes a Linux ioctl number (`_IOC` encoding); `None` for any
    /// other number.
    pub fn from_linux(cmd: u32) -> Option<Self> {
        NUMBERS.iter().find(|n| n.1 == cmd).map(|n| n.0)
    }

    /// Decodes a FreeBSD ioctl number (`sys/ioccom.h` encoding); `None` for
    /// any other number.
    pub fn from_bsd(cmd: u32) -> Option<Self> {
        NUMBERS.iter().find(|n| n.2 == cmd).map(|n| n.0)
    }
}

/// Where the fixed argument of an ioctl is.
#[derive(Debug)]
pub enum IoctlArg<'a> {
    /// At this user address (0: none given).
    User(u64),
    /// In this kernel buffer, copied in by the OS, which copies it back to
    /// the caller afterwards (FreeBSD; its size comes from the ioctl
    /// number, so it is exactly the argument's size).
    Kernel(&'a mut [u8]),
}

impl IoctlArg<'_> {
    /// Whether the caller gave no argument (a NULL pointer).
    pub fn is_null(&self) -> bool {
        matches!(self, IoctlArg::User(0))
    }

    /// Reads the argument into `dst` (its whole length).
    pub fn read<P: Platform>(&self, p: &P, dst: &mut [u8]) -> Result<()> {
        match self {
            IoctlArg::User(a) => Ok(p.copy_from_user(dst, *a)?),
            IoctlArg::Kernel(buf) => {
                let src = buf.get(..dst.len()).ok_or(Errno::EINVAL)?;
                dst.copy_from_slice(src);
                Ok(())
            }
        }
    }

    /// Writes `src` back as the argument.
    pub fn write<P: Platform>(&mut self, p: &P, src: &[u8]) -> Result<()> {
        match self {
            IoctlArg::User(a) => Ok(p.copy_to_user(*a, src)?),
            IoctlArg::Kernel(buf) => {
                let dst = buf.get_mut(..src.len()).ok_or(Errno::EINVAL)?;
                dst.copy_from_slice(src);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmap_uapi::ioctl;

    #[test]
    fn both_encodings_decode_to_the_same_requests() {
        let pairs = [
            (ioctl::NIOCCTRL, ioctl::bsd::NIOCCTRL, IoctlReq::Ctrl),
            (ioctl::NIOCREGIF, ioctl::bsd::NIOCREGIF, IoctlReq::RegIf),
            (ioctl::NIOCGINFO, ioctl::bsd::NIOCGINFO, IoctlReq::GetInfo),
            (ioctl::NIOCTXSYNC, ioctl::bsd::NIOCTXSYNC, IoctlReq::TxSync),
            (ioctl::NIOCRXSYNC, ioctl::bsd::NIOCRXSYNC, IoctlReq::RxSync),
            (ioctl::NIOCCONFIG, ioctl::bsd::NIOCCONFIG, IoctlReq::Config),
        ];
        for (linux, bsd, req) in pairs {
            assert_eq!(IoctlReq::from_linux(linux), Some(req));
            assert_eq!(IoctlReq::from_bsd(bsd), Some(req));
        }
        // The sync numbers differ (IOC_VOID): each OS decodes only its own.
        assert_eq!(IoctlReq::from_linux(ioctl::bsd::NIOCTXSYNC), None);
        assert_eq!(IoctlReq::from_bsd(ioctl::NIOCTXSYNC), None);
        assert_eq!(IoctlReq::from_bsd(0), None);
    }
}
