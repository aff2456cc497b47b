//! CSB mode and the sync kernel loop (spec §4.10) for a [`Port`]: the rings'
//! head/cur/tail travel through a "communication status block" in this
//! process's memory instead of the ring headers, and a thread of the
//! application lends itself to the kernel, which syncs the rings from the
//! CSB inside [`Port::sync_kloop`] until [`Port::sync_kloop_stop`].
//!
//! The ring views ([`Port::tx_ring`], [`Port::rx_ring`]) work as usual: in
//! CSB mode the kernel ignores the ring headers, so [`Port::csb_sync_tx`] and
//! [`Port::csb_sync_rx`] copy the headers' head/cur to the CSB (cur first,
//! then head, as the kernel expects) and the kernel's hwtail back into the
//! headers' tail, kicking the loop through its ioeventfd when it asked for
//! it.
//!
//! ```no_run
//! use netmap_uapi::user::{KloopConfig, Port};
//! use netmap_uapi::RegFlags;
//!
//! // CSB mode needs an exclusive binding.
//! let mut port = Port::builder("vale0:a").flags(RegFlags::EXCLUSIVE).open()?;
//! port.enable_csb(true)?; // with an ioeventfd/irqfd pair per ring
//! std::thread::scope(|s| {
//!     let kloop = s.spawn(|| port.sync_kloop(&KloopConfig::default()));
//!     let mut tx = port.tx_ring(0);
//!     while tx.send(&[0u8; 60]).is_ok() {}
//!     drop(tx);
//!     port.csb_sync_tx()?; // the loop transmits
//!     port.sync_kloop_stop()?;
//!     kloop.join().expect("kloop thread")
//! })?;
//! # Ok::<(), netmap_uapi::user::Error>(())
//! ```

use super::error::{Error, Op, Result};
use super::port::Port;
use super::region::Region;
use super::sys::{self, EventFd, Mapping, OptionList, PollFd, PollFlags};
use crate::abi::{NmCsbAtok, NmCsbKtoa, NmreqHeader, NmreqSyncKloopStart};
use crate::consts::*;
use crate::pod::Pod;
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, Ordering, fence};
use std::time::Duration;

const ENTRY: usize = size_of::<NmCsbAtok>();
const ATOK_HEAD: usize = offset_of!(NmCsbAtok, head);
const ATOK_CUR: usize = offset_of!(NmCsbAtok, cur);
const KTOA_HWTAIL: usize = offset_of!(NmCsbKtoa, hwtail);
const KTOA_NEED_KICK: usize = offset_of!(NmCsbKtoa, kern_need_kick);

/// How the sync kernel loop runs ([`Port::sync_kloop`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KloopConfig {
    /// Pause between passes when the loop is not driven by eventfds
    /// (microseconds, at most 1000000).
    pub sleep_us: u32,
    /// Direct modes (`SYNC_KLOOP_MODE`): the rings of a direct direction are
    /// served only when kicked, and their irqfds are signalled on every ring
    /// event of that direction. Needs the eventfds of [`Port::enable_csb`].
    pub mode: SyncKloopMode,
}

/// The CSB of a port and its eventfds.
#[derive(Debug)]
pub(crate) struct CsbState {
    /// `n` atok entries, then `n` ktoa entries (page aligned).
    mem: Mapping,
    n: usize,
    ntx: usize,
    /// Per ring (TX rings, then RX rings): (ioeventfd, irqfd).
    fds: Vec<(EventFd, EventFd)>,
}

impl CsbState {
    fn atok(&self, i: usize, field: usize) -> &AtomicU32 {
        self.mem
            .atomic_u32(i * ENTRY + field)
            .expect("CSB entry inside its mapping")
    }

    fn ktoa(&self, i: usize, field: usize) -> &AtomicU32 {
        self.mem
            .atomic_u32((self.n + i) * ENTRY + field)
            .expect("CSB entry inside its mapping")
    }
}

/// CSB index, layout of each bound ring of `dir` (`tx`), TX rings first.
fn csb_rings(
    region: &Region,
    tx: bool,
) -> impl Iterator<Item = (usize, super::ring::RingLayout)> + '_ {
    let ntx = region.tx.bound.len();
    let (d, base) = if tx {
        (&region.tx, 0)
    } else {
        (&region.rx, ntx)
    };
    d.bound
        .clone()
        .enumerate()
        .filter_map(move |(k, i)| Some((base + k, d.rings.get(usize::from(i)).copied().flatten()?)))
}

impl Port {
    /// `NETMAP_REQ_CSB_ENABLE`: puts this descriptor in CSB mode, with a CSB
    /// of one entry per bound ring. With `eventfds`, also makes an
    /// (ioeventfd, irqfd) pair per ring for [`Port::sync_kloop`] (Linux
    /// only: elsewhere `eventfds` fails with an OS error). The
    /// binding must be exclusive ([`crate::RegFlags::EXCLUSIVE`], `/x`).
    /// Afterwards [`Port::sync_tx`], [`Port::sync_rx`] and [`Port::poll`]
    /// fail: use [`Port::csb_sync_tx`], [`Port::csb_sync_rx`] and
    /// [`Port::csb_wait`].
    pub fn enable_csb(&mut self, eventfds: bool) -> Result<()> {
        let name = self.name().to_string();
        let os = |e: std::io::Error| Error::os(Op::CsbEnable, Some(&name), &e);
        let ntx = self.tx_rings().len();
        let n = ntx + self.rx_rings().len();
        let mem = Mapping::anonymous((2 * n * ENTRY).max(ENTRY)).map_err(os)?;
        let mut fds = Vec::new();
        if eventfds {
            for _ in 0..n {
                fds.push((sys::eventfd().map_err(os)?, sys::eventfd().map_err(os)?));
            }
        }
        let base = mem.base_addr() as u64;
        let mut body = [0u8; 16];
        body[..8].copy_from_slice(&base.to_ne_bytes());
        body[8..].copy_from_slice(&(base + (n * ENTRY) as u64).to_ne_bytes());
        let mut opts = OptionList::new();
        opts.push(NETMAP_REQ_OPT_CSB, &body);
        let mut hdr = NmreqHeader::new(NETMAP_REQ_CSB_ENABLE, b"");
        sys::ctrl_with(self.device(), &mut hdr, &mut [], &mut opts).map_err(os)?;
        self.csb = Some(CsbState { mem, n, ntx, fds });
        Ok(())
    }

    /// Whether [`Port::enable_csb`] put the descriptor in CSB mode.
    pub fn csb_mode(&self) -> bool {
        self.csb.is_some()
    }

    fn csb(&self, op: Op) -> Result<&CsbState> {
        self.csb.as_ref().ok_or_else(|| Error::InvalidArgument {
            what: format!(
                "{}: {} needs CSB mode (enable_csb)",
                self.name(),
                op.action()
            ),
        })
    }

    /// Hands the TX rings' `[old head, head)` to the sync kernel loop (head
    /// and cur go to the CSB; the loop is kicked if it asked for it) and
    /// updates their `tail` from the CSB: [`Port::sync_tx`] in CSB mode.
    pub fn csb_sync_tx(&self) -> Result<()> {
        self.csb_sync(true, Op::TxSync)
    }

    /// Releases the RX rings' `[old head, head)` and updates their `tail`
    /// from the CSB: [`Port::sync_rx`] in CSB mode.
    pub fn csb_sync_rx(&self) -> Result<()> {
        self.csb_sync(false, Op::RxSync)
    }

    fn csb_sync(&self, tx: bool, op: Op) -> Result<()> {
        let csb = self.csb(op)?;
        let region = self.region();
        for (j, l) in csb_rings(region, tx) {
            let Some([head, cur, tail]) = l.indexes(&region.map) else {
                continue;
            };
            // nm_sync_kloop_appl_write: cur, then head.
            csb.atok(j, ATOK_CUR)
                .store(cur.load(Ordering::Acquire), Ordering::Relaxed);
            fence(Ordering::Release);
            csb.atok(j, ATOK_HEAD)
                .store(head.load(Ordering::Acquire), Ordering::Release);
            fence(Ordering::SeqCst);
            if csb.ktoa(j, KTOA_NEED_KICK).load(Ordering::Acquire) != 0
                && let Some((kick, _)) = csb.fds.get(j)
            {
                sys::eventfd_write(kick, 1)
                    .map_err(|e| Error::os(op, Some(&self.name().to_string()), &e))?;
            }
            tail.store(
                csb.ktoa(j, KTOA_HWTAIL).load(Ordering::Acquire),
                Ordering::Release,
            );
        }
        Ok(())
    }

    /// Waits until the sync kernel loop signals room on a TX ring (`OUT` in
    /// `events`) or frames on an RX ring (`IN`), or `timeout`; returns the
    /// directions signalled (the signals are consumed). Needs the eventfds of
    /// [`Port::enable_csb`]. Call [`Port::csb_sync_tx`]/[`Port::csb_sync_rx`]
    /// afterwards to see the new tails.
    pub fn csb_wait(&self, events: PollFlags, timeout: Option<Duration>) -> Result<PollFlags> {
        let csb = self.csb(Op::Poll)?;
        if csb.fds.is_empty() {
            return Err(Error::InvalidArgument {
                what: format!("{}: csb_wait needs the eventfds of enable_csb", self.name()),
            });
        }
        let want = |j: usize| {
            let flag = if j < csb.ntx {
                PollFlags::OUT
            } else {
                PollFlags::IN
            };
            events.contains(flag).then_some(flag)
        };
        let mut pfds: Vec<PollFd<'_>> = Vec::new();
        let mut dirs = Vec::new();
        for (j, (_, irq)) in csb.fds.iter().enumerate() {
            if let Some(flag) = want(j) {
                pfds.push(sys::eventfd_pollfd(irq));
                dirs.push((j, flag));
            }
        }
        super::port::poll(&mut pfds, timeout)?;
        let mut got = PollFlags::empty();
        for (p, (j, flag)) in pfds.iter().zip(dirs) {
            if p.revents().contains(PollFlags::IN) {
                let _ = sys::eventfd_read(&csb.fds[j].1);
                got |= flag;
            }
        }
        Ok(got)
    }

    /// `NETMAP_REQ_SYNC_KLOOP_START`: this thread becomes the sync kernel loop
    /// of the descriptor (in CSB mode) and returns when another thread calls
    /// [`Port::sync_kloop_stop`] (`Ok`), or with the error that ended it. The
    /// loop uses the eventfds of [`Port::enable_csb`] if there are some, else
    /// it pauses `cfg.sleep_us` between passes.
    pub fn sync_kloop(&self, cfg: &KloopConfig) -> Result<()> {
        let csb = self.csb(Op::KloopStart)?;
        let mut opts = OptionList::new();
        if !cfg.mode.is_empty() {
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&cfg.mode.bits().to_ne_bytes());
            opts.push(NETMAP_REQ_OPT_SYNC_KLOOP_MODE, &b);
        }
        if !csb.fds.is_empty() {
            let mut b = Vec::with_capacity(8 * csb.n);
            for (kick, irq) in &csb.fds {
                b.extend_from_slice(&sys::eventfd_number(kick).to_ne_bytes());
                b.extend_from_slice(&sys::eventfd_number(irq).to_ne_bytes());
            }
            opts.push(NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS, &b);
        }
        let mut st = NmreqSyncKloopStart {
            sleep_us: cfg.sleep_us,
            pad1: 0,
        };
        let mut hdr = NmreqHeader::new(NETMAP_REQ_SYNC_KLOOP_START, b"");
        sys::ctrl_with(self.device(), &mut hdr, st.as_bytes_mut(), &mut opts)
            .map_err(|e| Error::os(Op::KloopStart, Some(&self.name().to_string()), &e))
    }

    /// `NETMAP_REQ_SYNC_KLOOP_STOP`: ends the loop running in
    /// [`Port::sync_kloop`] (in any thread, or any process sharing the
    /// descriptor) and waits until it has returned. A STOP with no loop
    /// running makes the next START return at once.
    pub fn sync_kloop_stop(&self) -> Result<()> {
        let mut hdr = NmreqHeader::new(NETMAP_REQ_SYNC_KLOOP_STOP, b"");
        sys::ctrl(self.device(), &mut hdr, &mut [])
            .map_err(|e| Error::os(Op::KloopStop, Some(&self.name().to_string()), &e))
    }
}
