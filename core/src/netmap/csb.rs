//! CSB mode (§4.10): a file's rings exchange head/cur/tail through two
//! arrays in the application's memory, the "communication status block",
//! instead of the ring headers: `nm_csb_atok` entries (application to
//! kernel: head, cur, appl_need_kick, sync_flags) and `nm_csb_ktoa`
//! entries (kernel to application: hwcur, hwtail, kern_need_kick), one per
//! bound ring, TX rings first. The sync kernel loop (`kloop.rs`) serves
//! them; NIOCTXSYNC/NIOCRXSYNC answer `EBUSY` and poll `POLLERR`.
//!
//! The CSB is user memory, reached only through the platform's user
//! copies: every field is read once per use into a local, validated by
//! the ring prologue like a ring header, and an unmapped or read-only CSB
//! makes the request (or the loop) fail with `EFAULT`, never the kernel.

#![deny(unsafe_code)]

use super::{Netmap, NetmapPriv};
use crate::adapter::{Adapter, RingRange};
use crate::kring::Dir;
use crate::platform::{Fault, Platform};
use crate::{Errno, Result};
use core::mem::{offset_of, size_of};
use core::sync::atomic::{Ordering, fence};
use netmap_uapi::pod::Pod;
use netmap_uapi::{NmCsbAtok, NmCsbKtoa, NmreqOptCsb, NmreqOption, RegFlags};

/// Bytes of one CSB entry, in both arrays; also their required alignment.
const ENTRY: u64 = size_of::<NmCsbAtok>() as u64;
const _: () = assert!(size_of::<NmCsbKtoa>() as u64 == ENTRY);

const ATOK_HEAD: u64 = offset_of!(NmCsbAtok, head) as u64;
const ATOK_CUR: u64 = offset_of!(NmCsbAtok, cur) as u64;
const ATOK_NEED_KICK: u64 = offset_of!(NmCsbAtok, appl_need_kick) as u64;
const ATOK_SYNC_FLAGS: u64 = offset_of!(NmCsbAtok, sync_flags) as u64;
const KTOA_HWCUR: u64 = offset_of!(NmCsbKtoa, hwcur) as u64;
const KTOA_HWTAIL: u64 = offset_of!(NmCsbKtoa, hwtail) as u64;
const KTOA_NEED_KICK: u64 = offset_of!(NmCsbKtoa, kern_need_kick) as u64;

/// The CSB of a file: user addresses of its two arrays, validated for the
/// file's rings (aligned, readable, writable, no address overflow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Csb {
    atok: u64,
    ktoa: u64,
}

impl Csb {
    /// The entries of the `i`-th bound ring (TX rings first). `i` must be
    /// below the ring count the CSB was validated for.
    pub(super) fn entry(&self, i: u32) -> CsbEntry {
        let off = u64::from(i) * ENTRY;
        CsbEntry {
            atok: self.atok + off,
            ktoa: self.ktoa + off,
        }
    }
}

/// The two CSB entries of one ring.
#[derive(Clone, Copy, Debug)]
pub(super) struct CsbEntry {
    atok: u64,
    ktoa: u64,
}

/// What the application published for a ring (one read of each field).
#[derive(Clone, Copy, Debug)]
pub(super) struct AppPtrs {
    pub head: u32,
    pub cur: u32,
}

fn read_u32<P: Platform>(p: &P, addr: u64) -> core::result::Result<u32, Fault> {
    let mut b = [0u8; 4];
    p.copy_from_user(&mut b, addr)?;
    Ok(u32::from_ne_bytes(b))
}

fn write_u32<P: Platform>(p: &P, addr: u64, v: u32) -> core::result::Result<(), Fault> {
    p.copy_to_user(addr, &v.to_ne_bytes())
}

impl CsbEntry {
    /// Read head, then cur (the application writes cur before head, so
    /// cur is at least as new as the head read before it), then the
    /// sync flags (read to match the reference's access pattern; no port
    /// of this implementation uses them).
    pub(super) fn read_app<P: Platform>(&self, p: &P) -> core::result::Result<AppPtrs, Fault> {
        let head = read_u32(p, self.atok + ATOK_HEAD)?;
        fence(Ordering::Acquire);
        let cur = read_u32(p, self.atok + ATOK_CUR)?;
        read_u32(p, self.atok + ATOK_SYNC_FLAGS)?;
        fence(Ordering::Acquire);
        Ok(AppPtrs { head, cur })
    }

    /// Whether the application wants to be signalled (`appl_need_kick`).
    pub(super) fn app_wants_kick<P: Platform>(&self, p: &P) -> core::result::Result<bool, Fault> {
        Ok(read_u32(p, self.atok + ATOK_NEED_KICK)? != 0)
    }

    /// Publish the kernel's hwcur, then hwtail: slot writes before them
    /// are visible first, and an application that reads hwtail then hwcur
    /// never sees hwcur behind the hwtail it read.
    pub(super) fn publish<P: Platform>(
        &self,
        p: &P,
        hwcur: u32,
        hwtail: u32,
    ) -> core::result::Result<(), Fault> {
        fence(Ordering::Release);
        write_u32(p, self.ktoa + KTOA_HWCUR, hwcur)?;
        fence(Ordering::Release);
        write_u32(p, self.ktoa + KTOA_HWTAIL, hwtail)
    }

    /// Ask for (or stop asking for) the application's kicks
    /// (`kern_need_kick`).
    pub(super) fn want_kicks<P: Platform>(
        &self,
        p: &P,
        on: bool,
    ) -> core::result::Result<(), Fault> {
        write_u32(p, self.ktoa + KTOA_NEED_KICK, u32::from(on))
    }

    /// Initial contents (§4.10): the ring's head/cur, kicks wanted both
    /// ways.
    fn init<P: Platform>(
        &self,
        p: &P,
        rhead: u32,
        rcur: u32,
        hwcur: u32,
        hwtail: u32,
    ) -> core::result::Result<(), Fault> {
        write_u32(p, self.atok + ATOK_HEAD, rhead)?;
        write_u32(p, self.atok + ATOK_CUR, rcur)?;
        write_u32(p, self.atok + ATOK_NEED_KICK, 1)?;
        write_u32(p, self.atok + ATOK_SYNC_FLAGS, 1)?;
        write_u32(p, self.ktoa + KTOA_HWCUR, hwcur)?;
        write_u32(p, self.ktoa + KTOA_HWTAIL, hwtail)?;
        write_u32(p, self.ktoa + KTOA_NEED_KICK, 1)
    }
}

/// The bound rings of a file in CSB order: TX rings, then RX rings.
pub(super) fn csb_rings(ranges: &[RingRange; 2]) -> impl Iterator<Item = (Dir, u32)> + '_ {
    let tx = ranges[Dir::Tx.idx()].iter().map(|i| (Dir::Tx, i));
    tx.chain(ranges[Dir::Rx.idx()].iter().map(|i| (Dir::Rx, i)))
}

impl<P: Platform> Netmap<P> {
    /// Validate the CSB option `body` for a file binding `ranges` of `na`
    /// with `flags`, and initialize it (§4.10). `Ok(None)`: the file binds
    /// no ring, nothing to do. The caller holds the file's kloop lock and
    /// has checked that no loop runs.
    #[inline(never)] // keeps the stack frame of the request dispatch small
    pub(super) fn csb_validate(
        &self,
        na: &Adapter<P>,
        ranges: &[RingRange; 2],
        flags: RegFlags,
        body: &[u8],
    ) -> Result<Option<Csb>> {
        let n = ranges[0].len() + ranges[1].len();
        if n == 0 {
            return Ok(None);
        }
        if !flags.contains(RegFlags::EXCLUSIVE) {
            return Err(Errno::EINVAL);
        }
        let opt = body_as_csb_option(body);
        let csb = Csb {
            atok: opt.csb_atok,
            ktoa: opt.csb_ktoa,
        };
        if !csb.atok.is_multiple_of(ENTRY) || !csb.ktoa.is_multiple_of(ENTRY) {
            return Err(Errno::EINVAL);
        }
        let size = u64::from(n) * ENTRY;
        if csb.atok.checked_add(size).is_none() || csb.ktoa.checked_add(size).is_none() {
            return Err(Errno::EFAULT);
        }
        // The whole atok array must be readable and the ktoa array
        // writable (it is cleared), entry by entry: no allocation.
        let mut e = [0u8; ENTRY as usize];
        for i in 0..u64::from(n) {
            self.platform.copy_from_user(&mut e, csb.atok + i * ENTRY)?;
        }
        let zero = [0u8; ENTRY as usize];
        for i in 0..u64::from(n) {
            self.platform.copy_to_user(csb.ktoa + i * ENTRY, &zero)?;
        }
        for (i, (d, r)) in csb_rings(ranges).enumerate() {
            let Some(k) = na.kring(d, r) else { continue };
            let (rhead, rcur) = {
                let own = k.owner.lock_spin();
                (own.rhead, own.rcur)
            };
            let hwcur = k.nr_hwcur.load(Ordering::Acquire);
            let hwtail = k.nr_hwtail.load(Ordering::Acquire);
            csb.entry(i as u32)
                .init(&self.platform, rhead, rcur, hwcur, hwtail)?;
        }
        Ok(Some(csb))
    }

    /// NETMAP_REQ_CSB_ENABLE: put a bound file in CSB mode (or give it a
    /// new CSB), with the CSB option's `body`.
    #[inline(never)] // keeps the stack frame of the request dispatch small
    pub(super) fn csb_enable(&self, np: &NetmapPriv<P>, body: &[u8]) -> Result<()> {
        let mut ctl = np.kloop.ctl.lock();
        if ctl.running {
            return Err(Errno::EBUSY);
        }
        let Some(b) = np.binding() else {
            // No rings bound: nothing to do (§4.10).
            return Ok(());
        };
        if let Some(csb) = self.csb_validate(&b.na, &b.ranges, b.flags, body)? {
            ctl.csb = Some(csb);
            np.kloop.csb_mode.store(true, Ordering::Release);
        }
        Ok(())
    }
}

/// The CSB option from its copied-in body (the 16 bytes after the option
/// header; shorter bodies cannot happen, missing bytes read as 0).
fn body_as_csb_option(body: &[u8]) -> NmreqOptCsb {
    let mut b = [0u8; size_of::<NmreqOptCsb>()];
    let hdr = size_of::<NmreqOption>();
    let n = body.len().min(b.len() - hdr);
    b[hdr..hdr + n].copy_from_slice(&body[..n]);
    NmreqOptCsb::read_from_prefix(&b).unwrap_or_else(NmreqOptCsb::zeroed)
}
