//! The sync kernel loop (SYNC_KLOOP_START / SYNC_KLOOP_STOP, §4.10): a
//! thread of the application enters NETMAP_REQ_SYNC_KLOOP_START on a file
//! in CSB mode and the kernel serves the file's rings from the CSB inside
//! that ioctl until SYNC_KLOOP_STOP, run by another thread (or process)
//! on the same open file, or until the thread gets a signal.
//!
//! Each pass syncs every bound ring the way the reference's
//! `netmap_sync_kloop_{tx,rx}_ring` do: head/cur come from the ring's atok
//! entry, the normal prologue validates them, the port syncs, hwcur/hwtail
//! go to the ktoa entry; `kern_need_kick` is cleared while the ring is
//! being served and set again before the loop goes idle, and the
//! application's irqfd is signalled when TX room or RX frames appeared and
//! it asked for it (`appl_need_kick`). Between passes the loop sleeps:
//!
//! * `sleep_us` microseconds, when no SYNC_KLOOP_EVENTFDS option was given
//!   or one of its ioeventfds is negative;
//! * otherwise until an ioeventfd is written (an application kick) or one
//!   of the file's ring wait queues is woken (frames or room), 3 s at most.
//!
//! With SYNC_KLOOP_MODE's direct modes, the rings of that direction are
//! served only when their own ioeventfd fires, kicks are always wanted,
//! and a wake-up of the file's wait queue of that direction signals every
//! irqfd of the direction. The reference does this work inside the wake-up
//! callback, in the context of whoever writes the eventfd (with user
//! copies from a wait-queue callback); here the loop's own thread does it
//! right after the wake-up.
//!
//! The loop also ends when a signal is pending for its thread (`EINTR`,
//! restarted transparently on Linux for handlers with `SA_RESTART`), so a
//! killed process never leaves it behind; the reference's loop ignores
//! signals, SIGKILL included. A CSB that stops being accessible ends the
//! loop with `EFAULT`.

#![deny(unsafe_code)]

use super::csb::{Csb, CsbEntry, csb_rings};
use super::{Binding, Netmap, NetmapPriv};
use crate::kring::{self, Dir, Kring, NKR_STOPPED, nm_prev};
use crate::platform::{EventFd, Fault, Platform, Sleeper, Wake, Watch};
use crate::request::Request;
use crate::sync::Lock;
use crate::{Errno, Result};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering, fence};
use netmap_uapi::*;

/// How long an eventfd-driven loop sleeps without any event.
const IDLE_TIMEOUT_NS: u64 = 3_000_000_000;
/// How often SYNC_KLOOP_STOP looks whether the loop has ended.
const STOP_POLL_US: u32 = 1000;
/// RX passes without new frames after which a ring is left until the next
/// wake-up (`SYNC_LOOP_RX_DRY_CYCLES_MAX`).
const RX_DRY_PASSES: u32 = 2;

/// Per-file state of CSB mode and of the sync kernel loop.
pub(super) struct FileKloop<P: Platform> {
    /// The file is in CSB mode: syncs answer `EBUSY`, poll `POLLERR`
    /// (read on the data path without the lock).
    pub(super) csb_mode: AtomicBool,
    /// SYNC_KLOOP_STOP was asked: the loop ends at its next pass. Set with
    /// no loop running, it makes the next START return at once (the
    /// reference's stop flag also stays set until a loop ends), so a STOP
    /// that overtakes its START does not leave a loop behind.
    stop: AtomicBool,
    pub(super) ctl: Lock<P::Mutex, KloopCtl<P>>,
}

/// Control state of CSB mode and the loop, under the file's lock.
pub(super) struct KloopCtl<P: Platform> {
    /// The CSB, once validated (REGISTER with OPT_CSB, CSB_ENABLE).
    pub(super) csb: Option<Csb>,
    /// A loop runs in some thread's ioctl.
    pub(super) running: bool,
    /// What that loop sleeps on, for STOP to wake it.
    sleeper: Option<Arc<P::Sleeper>>,
}

impl<P: Platform> FileKloop<P> {
    pub(super) fn new() -> Option<Self> {
        Some(FileKloop {
            csb_mode: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            ctl: Lock::new(KloopCtl {
                csb: None,
                running: false,
                sleeper: None,
            })?,
        })
    }
}

/// One ring the loop serves.
struct LoopRing<'a, P: Platform> {
    k: &'a Kring<P>,
    csb: CsbEntry,
    /// The application's irqfd, signalled by the ring's own processing
    /// (`None` in direct mode: the port's wait queue signals instead).
    irq: Option<&'a P::EventFd>,
    /// Served only when its ioeventfd fires (direct mode).
    direct: bool,
}

/// Why a watch woke the loop.
#[derive(Clone, Copy)]
enum Event {
    /// The ioeventfd of ring `i` (in CSB order): an application kick.
    Kick(usize),
    /// The file's wait queue of a direction.
    Port(Dir),
}

/// What SYNC_KLOOP_MODE and SYNC_KLOOP_EVENTFDS asked for.
struct LoopConfig<P: Platform> {
    direct: [bool; 2],
    /// Sleep `sleep_us` between passes instead of waiting for events.
    sleep_mode: bool,
    /// Per bound ring, in CSB order.
    fds: Vec<RingFds<P>>,
}

/// The eventfds of one ring (SYNC_KLOOP_EVENTFDS), held by the loop.
struct RingFds<P: Platform> {
    /// The application kicks the loop through it (ioeventfd).
    kick: Option<P::EventFd>,
    /// The loop signals the application through it (irqfd).
    irq: Option<P::EventFd>,
}

impl<P: Platform> Netmap<P> {
    /// NETMAP_REQ_SYNC_KLOOP_START: run the loop until STOP or a signal.
    #[inline(never)] // keeps the stack frame of the request dispatch small
    pub(super) fn kloop_start(&self, np: &NetmapPriv<P>, req: &mut Request) -> Result<()> {
        let st: NmreqSyncKloopStart = req.body();
        if st.sleep_us > 1_000_000 {
            return Err(Errno::EINVAL);
        }
        let b = np.binding().ok_or(Errno::ENXIO)?;
        if !b.na.in_netmap_mode() {
            return Err(Errno::ENXIO);
        }
        let sleeper = Arc::new(self.platform.sleeper()?);
        let csb = {
            let mut ctl = np.kloop.ctl.lock();
            let csb = ctl.csb.ok_or(Errno::EINVAL)?;
            if ctl.running {
                return Err(Errno::EBUSY);
            }
            ctl.running = true;
            ctl.sleeper = Some(sleeper.clone());
            csb
        };
        let r = self.kloop_run(np, b, csb, &sleeper, st.sleep_us, req);
        let mut ctl = np.kloop.ctl.lock();
        ctl.running = false;
        ctl.sleeper = None;
        // A STOP is consumed by the loop it ended; one that arrived while
        // a signal interrupted the loop is kept for the restarted START.
        if r != Err(Errno::EINTR) {
            np.kloop.stop.store(false, Ordering::Release);
        }
        r
    }

    /// NETMAP_REQ_SYNC_KLOOP_STOP: stop the loop of this file and wait
    /// until it has ended.
    #[inline(never)] // keeps the stack frame of the request dispatch small
    pub(super) fn kloop_stop(&self, np: &NetmapPriv<P>) -> Result<()> {
        let b = np.binding().ok_or(Errno::ENXIO)?;
        if !b.na.in_netmap_mode() {
            return Err(Errno::ENXIO);
        }
        let sleeper = {
            let ctl = np.kloop.ctl.lock();
            np.kloop.stop.store(true, Ordering::Release);
            ctl.sleeper.clone()
        };
        if let Some(s) = sleeper {
            s.wake();
        }
        while np.kloop.ctl.lock().running {
            self.platform.sleep_us(STOP_POLL_US);
        }
        Ok(())
    }

    /// The options of SYNC_KLOOP_START for a file with `nrings` bound
    /// rings; each option's status is set.
    fn kloop_config(&self, req: &mut Request, nrings: usize) -> Result<LoopConfig<P>> {
        let mut cfg = LoopConfig {
            direct: [false; 2],
            sleep_mode: true,
            fds: Vec::new(),
        };
        let mode_opt = req.opt(NETMAP_REQ_OPT_SYNC_KLOOP_MODE);
        if let Some(i) = mode_opt {
            let mut m = [0u8; 4];
            let body = &req.opts[i].body;
            m.copy_from_slice(body.get(..4).unwrap_or(&[0; 4]));
            let mode = u32::from_ne_bytes(m);
            let Some(mode) = SyncKloopMode::from_bits(mode) else {
                req.set_opt_status(i, Err(Errno::EINVAL));
                return Err(Errno::EINVAL);
            };
            req.set_opt_status(i, Ok(()));
            cfg.direct[Dir::Tx.idx()] = mode.contains(SyncKloopMode::DIRECT_TX);
            cfg.direct[Dir::Rx.idx()] = mode.contains(SyncKloopMode::DIRECT_RX);
        }
        let any_direct = cfg.direct[0] || cfg.direct[1];
        let Some(i) = req.opt(NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS) else {
            // Direct modes are driven by ioeventfds: without them no ring
            // of that direction would ever be served.
            if any_direct && let Some(m) = mode_opt {
                req.set_opt_status(m, Err(Errno::EINVAL));
                return Err(Errno::EINVAL);
            }
            return Ok(cfg);
        };
        let r = self.kloop_eventfds(&req.opts[i], nrings, any_direct, &mut cfg);
        req.set_opt_status(i, r);
        r.map(|()| cfg)
    }

    /// The SYNC_KLOOP_EVENTFDS option: one (ioeventfd, irqfd) pair per
    /// bound ring; a negative descriptor means none.
    fn kloop_eventfds(
        &self,
        opt: &crate::request::OptEntry,
        nrings: usize,
        any_direct: bool,
        cfg: &mut LoopConfig<P>,
    ) -> Result<()> {
        let hdr = core::mem::size_of::<NmreqOptSyncKloopEventfds>();
        let ent = core::mem::size_of::<NmreqOptSyncKloopEventfdsEntry>();
        if opt.hdr.nro_size != (hdr + ent * nrings) as u64 || opt.body.len() != ent * nrings {
            return Err(Errno::EINVAL);
        }
        let pairs = opt.body.chunks_exact(ent).map(|c| {
            let e = NmreqOptSyncKloopEventfdsEntry::read_from_prefix(c)
                .unwrap_or_else(NmreqOptSyncKloopEventfdsEntry::zeroed);
            (e.ioeventfd, e.irqfd)
        });
        cfg.sleep_mode = pairs.clone().any(|(kick, _)| kick < 0);
        if cfg.sleep_mode && any_direct {
            return Err(Errno::EINVAL);
        }
        cfg.fds
            .try_reserve_exact(nrings)
            .map_err(|_| Errno::ENOMEM)?;
        for (kick, irq) in pairs {
            let irq = if irq >= 0 {
                Some(self.platform.eventfd(irq)?)
            } else {
                None
            };
            let kick = if cfg.sleep_mode {
                None
            } else {
                Some(self.platform.eventfd(kick)?)
            };
            cfg.fds.push(RingFds { kick, irq });
        }
        Ok(())
    }

    /// The loop itself, between START's checks and its cleanup.
    fn kloop_run(
        &self,
        np: &NetmapPriv<P>,
        b: &Binding<P>,
        csb: Csb,
        sleeper: &P::Sleeper,
        sleep_us: u32,
        req: &mut Request,
    ) -> Result<()> {
        let na = &*b.na;
        let nrings = (b.ranges[0].len() + b.ranges[1].len()) as usize;
        let cfg = self.kloop_config(req, nrings)?;
        let mut rings: Vec<LoopRing<'_, P>> = Vec::new();
        rings.try_reserve_exact(nrings).map_err(|_| Errno::ENOMEM)?;
        for (i, (d, r)) in csb_rings(&b.ranges).enumerate() {
            let k = na.kring(d, r).ok_or(Errno::ENXIO)?;
            let direct = cfg.direct[d.idx()];
            let irq = cfg.fds.get(i).and_then(|f| f.irq.as_ref());
            rings.push(LoopRing {
                k,
                csb: csb.entry(i as u32),
                irq: if direct { None } else { irq },
                direct,
            });
        }
        let mut watches: Vec<(Event, P::Watch<'_>)> = Vec::new();
        if !cfg.sleep_mode {
            watches
                .try_reserve_exact(nrings + 2)
                .map_err(|_| Errno::ENOMEM)?;
            for (i, f) in cfg.fds.iter().enumerate() {
                if let Some(kick) = &f.kick {
                    watches.push((Event::Kick(i), self.platform.watch_eventfd(sleeper, kick)?));
                }
            }
            for d in [Dir::Tx, Dir::Rx] {
                if let Some(wq) = Self::wait_queue(b, d) {
                    watches.push((Event::Port(d), self.platform.watch_wq(sleeper, wq)?));
                }
            }
        }
        let timeout = if cfg.sleep_mode {
            u64::from(sleep_us) * 1000
        } else {
            IDLE_TIMEOUT_NS
        };
        loop {
            if np.kloop.stop.load(Ordering::Acquire) {
                return Ok(());
            }
            for (ev, w) in watches.iter() {
                if !w.take_fired() {
                    continue;
                }
                match *ev {
                    Event::Kick(i) if rings[i].direct => {
                        self.kloop_sync(b, &rings[i], cfg.sleep_mode)?
                    }
                    Event::Port(d) if cfg.direct[d.idx()] => {
                        // Frames or room on the port: tell the application.
                        for (r, f) in rings.iter().zip(cfg.fds.iter()) {
                            if r.k.dir == d
                                && let Some(irq) = &f.irq
                            {
                                irq.signal();
                            }
                        }
                    }
                    _ => {}
                }
            }
            for r in rings.iter().filter(|r| !r.direct) {
                self.kloop_sync(b, r, cfg.sleep_mode)?;
            }
            if sleeper.sleep(timeout) == Wake::Interrupted {
                return Err(Errno::EINTR);
            }
        }
    }

    /// Serve one ring (`busy_wait`: the loop sleeps a fixed time, so the
    /// ring never asks for kicks).
    fn kloop_sync(&self, b: &Binding<P>, r: &LoopRing<'_, P>, busy_wait: bool) -> Result<()> {
        let res = match r.k.dir {
            Dir::Tx => self.kloop_txsync(b, r, busy_wait),
            Dir::Rx => self.kloop_rxsync(b, r, busy_wait),
        };
        res.map_err(Errno::from)
    }

    /// `netmap_sync_kloop_tx_ring`: transmit what the application queued,
    /// as long as it keeps queueing and there is room.
    fn kloop_txsync(
        &self,
        b: &Binding<P>,
        r: &LoopRing<'_, P>,
        busy_wait: bool,
    ) -> core::result::Result<(), Fault> {
        let (p, na, k) = (&self.platform, &*b.na, r.k);
        let Some(mut own) = k.owner.try_lock() else {
            return Ok(());
        };
        let Some(ring) = k.ring().filter(|_| k.flags() & NKR_STOPPED == 0) else {
            return Ok(());
        };
        let n = k.num_slots;
        if !r.direct {
            r.csb.want_kicks(p, false)?;
        }
        let mut app = r.csb.read_app(p)?;
        let mut more_room = false;
        loop {
            let hwcur = k.nr_hwcur.load(Ordering::Acquire);
            let hwtail = k.nr_hwtail.load(Ordering::Acquire);
            let Some(head) = kring::txsync_check(&mut own, app.head, app.cur, hwcur, hwtail, n)
            else {
                kring::ring_reinit_csb(&mut own, &ring, app.head, app.cur, hwcur, hwtail, &na.mem);
                if !busy_wait {
                    r.csb.want_kicks(p, true)?;
                }
                break;
            };
            if !self.txsync_locked(na, k, &mut own, &ring, hwcur, hwtail, head) {
                if !busy_wait {
                    r.csb.want_kicks(p, true)?;
                }
                break;
            }
            let hwcur = k.nr_hwcur.load(Ordering::Acquire);
            let hwtail = k.nr_hwtail.load(Ordering::Acquire);
            r.csb.publish(p, hwcur, hwtail)?;
            if own.rtail != hwtail {
                own.rtail = hwtail;
                more_room = true;
            }
            if more_room && self.kloop_kick_app(r)? {
                more_room = false;
            }
            app = r.csb.read_app(p)?;
            if app.head == own.rhead {
                if busy_wait {
                    break;
                }
                // Idle: ask for kicks, then look again (a head published
                // before the application saw the request must not wait).
                r.csb.want_kicks(p, true)?;
                fence(Ordering::SeqCst);
                app = r.csb.read_app(p)?;
                if app.head != own.rhead {
                    r.csb.want_kicks(p, false)?;
                    continue;
                }
                break;
            }
            if own.rcur == k.nr_hwtail.load(Ordering::Acquire) {
                // No room: wait for the port to make some.
                break;
            }
        }
        drop(own);
        if more_room {
            self.kloop_kick_app(r)?;
        }
        Ok(())
    }

    /// `netmap_sync_kloop_rx_ring`: give back what the application
    /// released and pick up new frames, as long as they keep coming and
    /// there is room.
    fn kloop_rxsync(
        &self,
        b: &Binding<P>,
        r: &LoopRing<'_, P>,
        busy_wait: bool,
    ) -> core::result::Result<(), Fault> {
        let (p, na, k) = (&self.platform, &*b.na, r.k);
        let Some(mut own) = k.owner.try_lock() else {
            return Ok(());
        };
        let Some(ring) = k.ring().filter(|_| k.flags() & NKR_STOPPED == 0) else {
            return Ok(());
        };
        let n = k.num_slots;
        if !r.direct {
            r.csb.want_kicks(p, false)?;
        }
        let mut app = r.csb.read_app(p)?;
        let mut got_frames = false;
        let mut dry = 0u32;
        // No free slot for the kernel: the application holds them all.
        let full = |head: u32| k.nr_hwtail.load(Ordering::Acquire) == nm_prev(head, n);
        loop {
            let hwcur = k.nr_hwcur.load(Ordering::Acquire);
            let hwtail = k.nr_hwtail.load(Ordering::Acquire);
            if kring::rxsync_check(&mut own, app.head, app.cur, hwcur, hwtail, n).is_none() {
                kring::ring_reinit_csb(&mut own, &ring, app.head, app.cur, hwcur, hwtail, &na.mem);
                if !busy_wait {
                    r.csb.want_kicks(p, true)?;
                }
                break;
            }
            let (ok, _) = self.rxsync_locked(b, k, &mut own, &ring, hwcur, false);
            if !ok {
                if !busy_wait {
                    r.csb.want_kicks(p, true)?;
                }
                break;
            }
            let hwtail = k.nr_hwtail.load(Ordering::Acquire);
            r.csb
                .publish(p, k.nr_hwcur.load(Ordering::Acquire), hwtail)?;
            if own.rtail != hwtail {
                own.rtail = hwtail;
                got_frames = true;
                dry = 0;
            } else {
                dry += 1;
            }
            if got_frames && self.kloop_kick_app(r)? {
                got_frames = false;
            }
            app = r.csb.read_app(p)?;
            if full(app.head) {
                if busy_wait {
                    break;
                }
                r.csb.want_kicks(p, true)?;
                fence(Ordering::SeqCst);
                app = r.csb.read_app(p)?;
                if !full(app.head) {
                    r.csb.want_kicks(p, false)?;
                    continue;
                }
                break;
            }
            if k.nr_hwtail.load(Ordering::Acquire) == own.rhead || dry >= RX_DRY_PASSES {
                // Nothing more from the port: wait for it.
                break;
            }
        }
        drop(own);
        if got_frames {
            self.kloop_kick_app(r)?;
        }
        Ok(())
    }

    /// Signal the ring's irqfd if it has one and the application asked
    /// for it; true if signalled.
    fn kloop_kick_app(&self, r: &LoopRing<'_, P>) -> core::result::Result<bool, Fault> {
        let Some(irq) = r.irq else {
            return Ok(false);
        };
        if !r.csb.app_wants_kick(&self.platform)? {
            return Ok(false);
        }
        irq.signal();
        Ok(true)
    }
}
