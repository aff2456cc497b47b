//! The Windows control codes of `\\.\netmap` (the `netmap.sys` driver,
//! `os/windows/`) and the one request block they all carry.
//!
//! Windows has no `ioctl(fd, cmd, arg)`: a program sends
//! `DeviceIoControl(handle, code, in, in_len, out, out_len)`. Every netmap
//! control code is `METHOD_BUFFERED` (the I/O manager copies the block into
//! kernel memory and back: the driver never dereferences the block's user
//! address) and needs a handle opened for reading and writing
//! (`FILE_READ_DATA | FILE_WRITE_DATA`). The same buffer is passed as input
//! and output.
//!
//! | Code | Function | Block | What |
//! | --- | --- | --- | --- |
//! | [`NM_IOCTL_CTRL`] | 0x800 | [`NmWinIo`] | `NIOCCTRL`: `arg` = user address of an `nmreq_header` (its body and options are read and written by the driver with fault-catching copies) |
//! | [`NM_IOCTL_REGIF`] | 0x801 | [`NmWinIo`] | legacy `NIOCREGIF`: `arg` = user address of a `struct nmreq` |
//! | [`NM_IOCTL_GINFO`] | 0x802 | [`NmWinIo`] | legacy `NIOCGINFO`: `arg` as above |
//! | [`NM_IOCTL_TXSYNC`] | 0x803 | [`NmWinIo`] | `NIOCTXSYNC` (`arg` 0) |
//! | [`NM_IOCTL_RXSYNC`] | 0x804 | [`NmWinIo`] | `NIOCRXSYNC` (`arg` 0) |
//! | [`NM_IOCTL_WAIT`] | 0x805 | [`NmWinWait`] | stands in for `poll()`: up to [`NM_WAIT_MAX`] netmap handles of the calling process, each with its events; returns the ready ones, or waits up to `timeout_ms` (-1: forever) |
//! | [`NM_IOCTL_MAP`] | 0x806 | [`NmWinIo`] | maps the region of the bound port into the calling process (an MDL over its clusters); `value[0]` = user address, `value[1]` = length. One mapping per handle; it is removed by [`NM_IOCTL_UNMAP`], by the last close of the handle, or when the process exits |
//! | [`NM_IOCTL_UNMAP`] | 0x807 | [`NmWinIo`] | removes the mapping of the handle |
//!
//! Errors: a well-formed request completes with `STATUS_SUCCESS` and the
//! netmap errno (spec §11) in `error` (0 on success), so that the request
//! block is copied back also on failure (`NIOCCTRL` writes the header back
//! either way). A block of the wrong size fails the `DeviceIoControl` call
//! itself (`ERROR_INVALID_PARAMETER`).

use core::mem::{offset_of, size_of};

/// The device type of `\\.\netmap` (vendor range, >= 0x8000).
pub const FILE_DEVICE_NETMAP: u32 = 0x8E4D;
/// `METHOD_BUFFERED`.
pub const METHOD_BUFFERED: u32 = 0;
/// `FILE_READ_DATA | FILE_WRITE_DATA`: the handle must be open read/write.
pub const FILE_READ_WRITE_DATA: u32 = 3;

/// `CTL_CODE(DeviceType, Function, Method, Access)` of `winioctl.h`.
pub const fn ctl_code(device: u32, function: u32, method: u32, access: u32) -> u32 {
    (device << 16) | (access << 14) | (function << 2) | method
}

const fn nm(function: u32) -> u32 {
    ctl_code(
        FILE_DEVICE_NETMAP,
        function,
        METHOD_BUFFERED,
        FILE_READ_WRITE_DATA,
    )
}

/// `NIOCCTRL` ([`NmWinIo`]).
pub const NM_IOCTL_CTRL: u32 = nm(0x800);
/// Legacy `NIOCREGIF` ([`NmWinIo`]).
pub const NM_IOCTL_REGIF: u32 = nm(0x801);
/// Legacy `NIOCGINFO` ([`NmWinIo`]).
pub const NM_IOCTL_GINFO: u32 = nm(0x802);
/// `NIOCTXSYNC` ([`NmWinIo`]).
pub const NM_IOCTL_TXSYNC: u32 = nm(0x803);
/// `NIOCRXSYNC` ([`NmWinIo`]).
pub const NM_IOCTL_RXSYNC: u32 = nm(0x804);
/// The wait that stands in for `poll()` ([`NmWinWait`]).
pub const NM_IOCTL_WAIT: u32 = nm(0x805);
/// Map the bound port's region into the calling process ([`NmWinIo`]).
pub const NM_IOCTL_MAP: u32 = nm(0x806);
/// Remove the handle's mapping ([`NmWinIo`]).
pub const NM_IOCTL_UNMAP: u32 = nm(0x807);

/// Every control code, with its name (for tools and tests).
pub const NM_IOCTLS: [(&str, u32); 8] = [
    ("NM_IOCTL_CTRL", NM_IOCTL_CTRL),
    ("NM_IOCTL_REGIF", NM_IOCTL_REGIF),
    ("NM_IOCTL_GINFO", NM_IOCTL_GINFO),
    ("NM_IOCTL_TXSYNC", NM_IOCTL_TXSYNC),
    ("NM_IOCTL_RXSYNC", NM_IOCTL_RXSYNC),
    ("NM_IOCTL_WAIT", NM_IOCTL_WAIT),
    ("NM_IOCTL_MAP", NM_IOCTL_MAP),
    ("NM_IOCTL_UNMAP", NM_IOCTL_UNMAP),
];

/// The request block of every control code but [`NM_IOCTL_WAIT`] (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NmWinIo {
    /// The user address the request works on (`nmreq_header` or `nmreq`), or 0.
    pub arg: u64,
    /// Out: 0 or the netmap errno.
    pub error: i32,
    /// Must be 0.
    pub reserved: u32,
    /// Out: [`NM_IOCTL_MAP`]'s address and length; 0 otherwise.
    pub value: [u64; 2],
}

/// Most handles one [`NM_IOCTL_WAIT`] covers.
pub const NM_WAIT_MAX: usize = 8;

/// One handle of a [`NmWinWait`] (a `struct pollfd`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NmWinPollFd {
    /// A handle to `\\.\netmap` in the calling process.
    pub handle: u64,
    /// `POLLIN`/`POLLOUT`/... (the Unix values: 0x1, 0x4, ...).
    pub events: u16,
    /// Out: the ready events (`POLLERR` 0x8, `POLLNVAL` 0x20 for a handle
    /// that is not a netmap one).
    pub revents: u16,
    /// Must be 0.
    pub reserved: u32,
}

/// The request block of [`NM_IOCTL_WAIT`] (144 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NmWinWait {
    /// Milliseconds to wait when nothing is ready; -1 forever, 0 not at all.
    pub timeout_ms: i32,
    /// Entries used in `fds` (1..=[`NM_WAIT_MAX`]).
    pub count: u32,
    /// Out: 0 or the netmap errno (`EINTR` if the thread is being
    /// terminated or an APC was delivered).
    pub error: i32,
    /// Out: entries with `revents != 0`.
    pub nready: u32,
    /// The handles.
    pub fds: [NmWinPollFd; NM_WAIT_MAX],
}

const _: () = {
    assert!(size_of::<NmWinIo>() == 32);
    assert!(offset_of!(NmWinIo, error) == 8);
    assert!(offset_of!(NmWinIo, value) == 16);
    assert!(size_of::<NmWinPollFd>() == 16);
    assert!(offset_of!(NmWinPollFd, events) == 8);
    assert!(offset_of!(NmWinPollFd, revents) == 10);
    assert!(size_of::<NmWinWait>() == 16 + 16 * NM_WAIT_MAX);
    assert!(offset_of!(NmWinWait, fds) == 16);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_ctl_code() {
        // CTL_CODE(0x8E4D, 0x800, METHOD_BUFFERED, FILE_READ_DATA|FILE_WRITE_DATA)
        assert_eq!(NM_IOCTL_CTRL, 0x8E4D_E000);
        assert_eq!(NM_IOCTL_UNMAP, 0x8E4D_E01C);
        for (i, (_, c)) in NM_IOCTLS.iter().enumerate() {
            assert_eq!(c & 3, METHOD_BUFFERED, "buffered");
            assert_eq!((c >> 14) & 3, FILE_READ_WRITE_DATA, "read/write access");
            assert_eq!((c >> 2) & 0xfff, 0x800 + i as u32);
            assert_eq!(c >> 16, FILE_DEVICE_NETMAP);
        }
    }
}
