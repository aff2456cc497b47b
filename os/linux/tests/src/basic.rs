//! Tests that need no port: the device node, open/close, and the error
//! cases that do not depend on a request (spec §1.2, §1.3, §5.6, §6.6, §6.7).

use crate::sys::{DEV, Fd, errno_name, expect_err, expect_ok};
use crate::{Test, ensure};
use netmap_uapi::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

pub const TESTS: &[Test] = &[
    ("dev_node", dev_node),
    ("open_close", open_close),
    ("unknown_ioctl", unknown_ioctl),
    ("ctrl_bad_version", ctrl_bad_version),
    ("ctrl_null_and_bad_pointer", ctrl_null_and_bad_pointer),
    ("sync_unbound", sync_unbound),
    ("mmap_unbound", mmap_unbound),
    ("poll_unbound", poll_unbound),
    ("read_write_unsupported", read_write_unsupported),
];

/// /dev/netmap: a misc char device (major 10), mode 0600, owned by root.
fn dev_node() -> Result<(), String> {
    let md = std::fs::metadata(DEV).map_err(|e| format!("stat {DEV}: {e}"))?;
    ensure!(
        md.file_type().is_char_device(),
        "{DEV} is not a char device"
    );
    let major = libc::major(md.rdev());
    ensure!(major == 10, "major {major}, want 10 (misc)");
    ensure!(
        md.mode() & 0o7777 == 0o600,
        "mode {:o}, want 600",
        md.mode() & 0o7777
    );
    ensure!(
        md.uid() == 0 && md.gid() == 0,
        "owner {}:{}",
        md.uid(),
        md.gid()
    );
    let misc = std::fs::read_to_string("/proc/misc").map_err(|e| e.to_string())?;
    ensure!(
        misc.lines()
            .any(|l| l.split_whitespace().nth(1) == Some("netmap")),
        "netmap not in /proc/misc"
    );
    Ok(())
}

/// Many independent opens, closed in a different order.
fn open_close() -> Result<(), String> {
    let mut fds = Vec::new();
    for _ in 0..64 {
        fds.push(Fd::open_netmap()?);
    }
    // Close every other one first, then the rest.
    let mut i = 0;
    fds.retain(|_| {
        i += 1;
        i % 2 == 0
    });
    drop(fds);
    let _again = Fd::open_netmap()?;
    Ok(())
}

/// Unknown commands → EOPNOTSUPP (spec §1.3).
fn unknown_ioctl() -> Result<(), String> {
    let fd = Fd::open_netmap()?;
    for cmd in [0x6990u32, 0x6998, 0x1234, 0xC0586998, 0x8004_6994] {
        expect_err(
            &format!("ioctl {cmd:#x}"),
            fd.ioctl_val(cmd, 0),
            libc::EOPNOTSUPP,
        )?;
    }
    Ok(())
}

/// NIOCCTRL with nr_version outside [14, 15] → EINVAL; the header is copied
/// back (name intact); legacy NIOCREGIF with version < 14 → EINVAL.
fn ctrl_bad_version() -> Result<(), String> {
    let fd = Fd::open_netmap()?;
    for v in [0u16, 13, 16, 0xffff] {
        let mut h = NmreqHeader::new(NETMAP_REQ_PORT_INFO_GET, b"vale0:x");
        h.nr_version = v;
        let mut body = [0u8; 32];
        h.nr_body = body.as_mut_ptr() as u64;
        expect_err(
            &format!("NIOCCTRL version {v}"),
            fd.ioctl_ptr(NIOCCTRL, &mut h),
            libc::EINVAL,
        )?;
        ensure!(
            h.nr_version == v,
            "nr_version rewritten to {}",
            h.nr_version
        );
        ensure!(&h.nr_name[..8] == b"vale0:x\0", "nr_name changed");
    }
    let mut req = Nmreq {
        nr_version: 13,
        ..Default::default()
    };
    req.nr_name[..7].copy_from_slice(b"vale0:x");
    expect_err(
        "NIOCREGIF version 13",
        fd.ioctl_ptr(NIOCREGIF, &mut req),
        libc::EINVAL,
    )?;
    Ok(())
}

/// NULL argument → EINVAL, unmapped argument → EFAULT (spec §1.3).
fn ctrl_null_and_bad_pointer() -> Result<(), String> {
    let fd = Fd::open_netmap()?;
    for cmd in [NIOCCTRL, NIOCREGIF, NIOCGINFO] {
        expect_err(
            &format!("ioctl {cmd:#x} NULL"),
            fd.ioctl_val(cmd, 0),
            libc::EINVAL,
        )?;
        expect_err(
            &format!("ioctl {cmd:#x} bad pointer"),
            fd.ioctl_val(cmd, 0x10),
            libc::EFAULT,
        )?;
    }
    Ok(())
}

/// NIOCTXSYNC / NIOCRXSYNC on an unbound file → ENXIO (spec §6.6).
fn sync_unbound() -> Result<(), String> {
    let fd = Fd::open_netmap()?;
    expect_err("NIOCTXSYNC", fd.ioctl_val(NIOCTXSYNC, 0), libc::ENXIO)?;
    expect_err("NIOCRXSYNC", fd.ioctl_val(NIOCRXSYNC, 0), libc::ENXIO)?;
    Ok(())
}

/// mmap before REGISTER → EINVAL (spec §5.6).
fn mmap_unbound() -> Result<(), String> {
    let fd = Fd::open_netmap()?;
    match fd.mmap(4096, 0) {
        Err(e) if e == libc::EINVAL => Ok(()),
        Err(e) => Err(format!("mmap: {}, want EINVAL", errno_name(e))),
        Ok(_) => Err("mmap of an unbound fd succeeded".into()),
    }
}

/// poll on an unbound file → POLLERR, immediately (spec §6.7).
fn poll_unbound() -> Result<(), String> {
    let fd = Fd::open_netmap()?;
    let rev = expect_ok("poll", fd.poll(libc::POLLIN | libc::POLLOUT, 1000))?;
    ensure!(rev & libc::POLLERR != 0, "revents {rev:#x}, want POLLERR");
    Ok(())
}

/// read/write are not implemented (spec §1.2).
fn read_write_unsupported() -> Result<(), String> {
    let fd = Fd::open_netmap()?;
    let mut b = [0u8; 16];
    // SAFETY: valid buffer of 16 bytes.
    let r = unsafe { libc::read(fd.0, b.as_mut_ptr().cast(), b.len()) };
    ensure!(r < 0, "read returned {r}");
    // SAFETY: valid buffer of 16 bytes.
    let w = unsafe { libc::write(fd.0, b.as_ptr().cast(), b.len()) };
    ensure!(w < 0, "write returned {w}");
    Ok(())
}
