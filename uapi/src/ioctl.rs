//! ioctl request numbers (spec §1.3).
//!
//! The top-level constants use the Linux encoding
//! (`dir << 30 | size << 16 | type << 8 | nr`); [`bsd`] has the FreeBSD encoding.

use crate::abi::{NmIfreq, Nmreq, NmreqHeader};
use core::mem::size_of;

/// ioctl type character of netmap (`'i'`).
pub const NETMAP_IOC_TYPE: u8 = b'i';

/// Linux `_IOC_NONE`.
pub const IOC_NONE: u32 = 0;
/// Linux `_IOC_WRITE` (user → kernel).
pub const IOC_WRITE: u32 = 1;
/// Linux `_IOC_READ` (kernel → user).
pub const IOC_READ: u32 = 2;

/// Linux `_IOC(dir, type, nr, size)`. `size` is truncated to the 14-bit size field.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    (dir << 30) | (((size as u32) & 0x3fff) << 16) | ((ty as u32) << 8) | nr as u32
}

/// Linux `_IO(type, nr)`.
pub const fn io(ty: u8, nr: u8) -> u32 {
    ioc(IOC_NONE, ty, nr, 0)
}

/// Linux `_IOWR(type, nr, size)`.
pub const fn iowr(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size)
}

/// The direction bits of a Linux ioctl number.
pub const fn ioc_dir(cmd: u32) -> u32 {
    cmd >> 30
}

/// The argument size encoded in a Linux ioctl number.
pub const fn ioc_size(cmd: u32) -> usize {
    ((cmd >> 16) & 0x3fff) as usize
}

/// Legacy: port information (`_IOWR('i', 145, struct nmreq)`).
pub const NIOCGINFO: u32 = iowr(NETMAP_IOC_TYPE, 145, size_of::<Nmreq>());
/// Legacy: register (`_IOWR('i', 146, struct nmreq)`).
pub const NIOCREGIF: u32 = iowr(NETMAP_IOC_TYPE, 146, size_of::<Nmreq>());
/// Sync the bound TX rings (`_IO('i', 148)`).
pub const NIOCTXSYNC: u32 = io(NETMAP_IOC_TYPE, 148);
/// Sync the bound RX rings (`_IO('i', 149)`).
pub const NIOCRXSYNC: u32 = io(NETMAP_IOC_TYPE, 149);
/// Configure an external bridge module (`_IOWR('i', 150, struct nm_ifreq)`).
pub const NIOCCONFIG: u32 = iowr(NETMAP_IOC_TYPE, 150, size_of::<NmIfreq>());
/// Control request (`_IOWR('i', 151, struct nmreq_header)`).
pub const NIOCCTRL: u32 = iowr(NETMAP_IOC_TYPE, 151, size_of::<NmreqHeader>());

/// FreeBSD encoding of the same requests (`sys/ioccom.h`).
pub mod bsd {
    use super::NETMAP_IOC_TYPE;
    use crate::abi::{NmIfreq, Nmreq, NmreqHeader};
    use core::mem::size_of;

    /// `IOC_VOID`: no parameters.
    pub const IOC_VOID: u32 = 0x2000_0000;
    /// `IOC_OUT`: copy out parameters.
    pub const IOC_OUT: u32 = 0x4000_0000;
    /// `IOC_IN`: copy in parameters.
    pub const IOC_IN: u32 = 0x8000_0000;
    /// `IOC_INOUT`.
    pub const IOC_INOUT: u32 = IOC_IN | IOC_OUT;
    /// `IOCPARM_MASK`: parameter length mask (13 bits).
    pub const IOCPARM_MASK: u32 = 0x1fff;

    /// `_IOC(inout, group, num, len)`.
    pub const fn ioc(inout: u32, group: u8, num: u8, len: usize) -> u32 {
        inout | (((len as u32) & IOCPARM_MASK) << 16) | ((group as u32) << 8) | num as u32
    }

    /// `_IO(g, n)`.
    pub const fn io(g: u8, n: u8) -> u32 {
        ioc(IOC_VOID, g, n, 0)
    }

    /// `_IOWR(g, n, t)`.
    pub const fn iowr(g: u8, n: u8, len: usize) -> u32 {
        ioc(IOC_INOUT, g, n, len)
    }

    /// `NIOCGINFO`.
    pub const NIOCGINFO: u32 = iowr(NETMAP_IOC_TYPE, 145, size_of::<Nmreq>());
    /// `NIOCREGIF`.
    pub const NIOCREGIF: u32 = iowr(NETMAP_IOC_TYPE, 146, size_of::<Nmreq>());
    /// `NIOCTXSYNC`.
    pub const NIOCTXSYNC: u32 = io(NETMAP_IOC_TYPE, 148);
    /// `NIOCRXSYNC`.
    pub const NIOCRXSYNC: u32 = io(NETMAP_IOC_TYPE, 149);
    /// `NIOCCONFIG`.
    pub const NIOCCONFIG: u32 = iowr(NETMAP_IOC_TYPE, 150, size_of::<NmIfreq>());
    /// `NIOCCTRL`.
    pub const NIOCCTRL: u32 = iowr(NETMAP_IOC_TYPE, 151, size_of::<NmreqHeader>());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_numbers_match_spec() {
        // (value, hex from the spec, decimal from the spec)
        let table = [
            (NIOCGINFO, 0xC03C_6991u32, 3_225_184_657u32),
            (NIOCREGIF, 0xC03C_6992, 3_225_184_658),
            (NIOCTXSYNC, 0x6994, 27_028),
            (NIOCRXSYNC, 0x6995, 27_029),
            (NIOCCONFIG, 0xC110_6996, 3_239_078_294),
            (NIOCCTRL, 0xC058_6997, 3_227_019_671),
        ];
        for (v, hex, dec) in table {
            assert_eq!(v, hex);
            assert_eq!(v, dec);
        }
        assert_eq!(ioc_size(NIOCCTRL), 88);
        assert_eq!(ioc_size(NIOCCONFIG), 272);
        assert_eq!(ioc_dir(NIOCREGIF), 3);
        assert_eq!(ioc_dir(NIOCTXSYNC), 0);
    }

    #[test]
    fn bsd_numbers() {
        assert_eq!(bsd::NIOCGINFO, 0xC03C_6991);
        assert_eq!(bsd::NIOCREGIF, 0xC03C_6992);
        assert_eq!(bsd::NIOCTXSYNC, 0x2000_6994);
        assert_eq!(bsd::NIOCRXSYNC, 0x2000_6995);
        assert_eq!(bsd::NIOCCONFIG, 0xC110_6996);
        assert_eq!(bsd::NIOCCTRL, 0xC058_6997);
    }
}
