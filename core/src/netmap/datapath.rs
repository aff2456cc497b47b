//! The data path of a file: NIOCTXSYNC / NIOCRXSYNC (§6.6) and poll (§6.7).

#![deny(unsafe_code)]

use super::{Binding, Netmap, NetmapPriv, POLLERR, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::adapter::{Adapter, Kind};
use crate::kring::{self, Dir, Kring, KringOwned, NKR_STOPPED};
use crate::platform::Platform;
use crate::shm::RingPtr;
use crate::{Errno, Result};
use core::sync::atomic::Ordering;
use netmap_uapi::*;

impl<P: Platform> Netmap<P> {
    pub(super) fn sync_ioctl(&self, np: &NetmapPriv<P>, d: Dir) -> Result<()> {
        let b = np.binding().ok_or(Errno::ENXIO)?;
        if np.csb_mode() {
            // The CSB and the sync kernel loop own the ring pointers.
            return Err(Errno::EBUSY);
        }
        let mut res = Ok(());
        for i in b.ranges[d.idx()].iter() {
            let Some(k) = b.na.kring(d, i) else { continue };
            match self.sync_kring(b, k) {
                SyncOutcome::Stopped => res = Err(Errno::EIO),
                SyncOutcome::Busy
                | SyncOutcome::Done
                | SyncOutcome::Reinit
                | SyncOutcome::Error => {}
            }
        }
        res
    }

    /// One txsync or rxsync of kring `k`, with prologue, reinit and
    /// finalization.
    fn sync_kring(&self, b: &Binding<P>, k: &Kring<P>) -> SyncOutcome {
        let na = &*b.na;
        let Some(mut own) = k.owner.try_lock() else {
            return SyncOutcome::Busy;
        };
        if k.flags() & NKR_STOPPED != 0 {
            return SyncOutcome::Stopped;
        }
        let Some(ring) = k.ring() else {
            return SyncOutcome::Busy;
        };
        let hwcur = k.nr_hwcur.load(Ordering::Acquire);
        let hwtail = k.nr_hwtail.load(Ordering::Acquire);
        let nbufs = na.mem.buf_count();
        let bsz = na.mem.buf_size();
        match k.dir {
            Dir::Tx => match kring::txsync_prologue(&mut own, &ring, hwcur, hwtail) {
                None => {
                    kring::ring_reinit(&mut own, &ring, hwcur, hwtail, nbufs, bsz);
                    SyncOutcome::Reinit
                }
                Some(head) => {
                    if self.txsync_locked(na, k, &mut own, &ring, hwcur, hwtail, head) {
                        kring::sync_finalize(&mut own, &ring, k.nr_hwtail.load(Ordering::Acquire));
                        SyncOutcome::Done
                    } else {
                        SyncOutcome::Error
                    }
                }
            },
            Dir::Rx => {
                let mut out = SyncOutcome::Done;
                if kring::rxsync_prologue(&mut own, &ring, hwcur, hwtail).is_none() {
                    kring::ring_reinit(&mut own, &ring, hwcur, hwtail, nbufs, bsz);
                    out = SyncOutcome::Reinit;
                }
                let (ok, moved) = self.rxsync_locked(b, k, &mut own, &ring, hwcur, true);
                if ok {
                    kring::sync_finalize(&mut own, &ring, k.nr_hwtail.load(Ordering::Acquire));
                } else {
                    out = SyncOutcome::Error;
                }
                if self.params.no_timestamp.load(Ordering::Relaxed) == 0
                    || ring.flags() & NR_TIMESTAMP != 0
                {
                    let (s, us) = self.platform.now();
                    ring.set_ts(s, us);
                }
                drop(own);
                if moved {
                    // Frames of the host ring went to the hardware TX
                    // rings: send them (§6.8).
                    for i in 0..na.nrings(Dir::Tx) {
                        if let Some(tk) = na.kring(Dir::Tx, i) {
                            self.sync_kring(b, tk);
                        }
                    }
                }
                out
            }
        }
    }

    /// The txsync of kring `k` (busy lock held) once the prologue accepted
    /// `head`, with the monitors' hooks; `hwcur`/`hwtail` are the values
    /// before the sync. Shared by NIOCTXSYNC, poll and the sync kernel
    /// loop, which then publish the new tail their own way. False if the
    /// port's sync failed.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn txsync_locked(
        &self,
        na: &Adapter<P>,
        k: &Kring<P>,
        own: &mut KringOwned<P>,
        ring: &RingPtr,
        hwcur: u32,
        hwtail: u32,
        head: u32,
    ) -> bool {
        crate::monitor::tx_sync_begin(na, k, ring, hwcur, head);
        if na.txsync(k, own, ring, &self.params).is_err() {
            return false;
        }
        crate::monitor::tx_sync_end(na, k, ring, hwtail, k.nr_hwtail.load(Ordering::Acquire));
        true
    }

    /// The rxsync of kring `k` (busy lock held) after the prologue: the
    /// monitors see the slots released, transparent mode forwards them
    /// (if `forward`), the port syncs. Returns (the port's sync succeeded,
    /// frames moved to the hardware TX rings).
    pub(super) fn rxsync_locked(
        &self,
        b: &Binding<P>,
        k: &Kring<P>,
        own: &mut KringOwned<P>,
        ring: &RingPtr,
        hwcur: u32,
        forward: bool,
    ) -> (bool, bool) {
        let na = &*b.na;
        crate::monitor::rx_release(na, k, ring, hwcur, own.rhead);
        let moved = forward && self.forward_released(b, k, ring, hwcur, own.rhead);
        // Copy monitors got new frames when they arrived
        // (`monitor::rx_new`), whoever filled the ring.
        (na.rxsync(k, own, ring).is_ok(), moved)
    }

    /// Transparent mode on the RX slots `[hwcur, head)` a sync of `k`
    /// releases, if the ring or the module asks for it and the port is an
    /// interface with host rings (§6.8). Returns true if frames moved to
    /// the hardware TX rings.
    fn forward_released(
        &self,
        b: &Binding<P>,
        k: &Kring<P>,
        ring: &RingPtr,
        hwcur: u32,
        head: u32,
    ) -> bool {
        let na = &*b.na;
        let Kind::Netif(ni) = &na.kind else {
            return false;
        };
        let all = self.params.fwd.load(Ordering::Relaxed) != 0;
        if na.nhost(Dir::Rx) == 0 || !(all || ring.flags() & NR_FORWARD != 0) {
            return false;
        }
        let tx = b.ranges[Dir::Tx.idx()];
        let to_nic = tx.first == 0 && tx.last >= na.nrings(Dir::Tx);
        crate::netif::forward_released(na, ni, k, ring, hwcur, head, all, to_nic)
    }

    /// The wait queue a file bound as `b` sleeps on for direction `d`: the
    /// ring's own if it has one ring that way, the port's if several;
    /// `None` if it has none that way. poll() registers on those of the
    /// directions asked for; an OS whose readiness API attaches one waiter
    /// per event kind (FreeBSD kqueue: EVFILT_READ = `Rx`, EVFILT_WRITE =
    /// `Tx`) asks for one.
    pub fn wait_queue(b: &Binding<P>, d: Dir) -> Option<&P::WaitQueue> {
        let r = b.ranges[d.idx()];
        if r.len() > 1 {
            Some(&b.na.si[d.idx()])
        } else if r.len() == 1 {
            b.na.kring(d, r.first).map(|k| &k.wq)
        } else {
            None
        }
    }

    /// poll(): returns the ready mask; `wait` is called with each wait
    /// queue the file must sleep on.
    pub fn poll(
        &self,
        np: &NetmapPriv<P>,
        events: u32,
        wait: &mut dyn FnMut(&P::WaitQueue),
    ) -> u32 {
        let Some(b) = np.binding() else {
            return POLLERR;
        };
        let na = &b.na;
        if !na.in_netmap_mode() || np.csb_mode() {
            return POLLERR;
        }
        let want_tx = events & (POLLOUT | POLLWRNORM);
        let want_rx = events & (POLLIN | POLLRDNORM);
        // Sleep only on the directions asked for.
        for (d, want) in [(Dir::Tx, want_tx), (Dir::Rx, want_rx)] {
            if want != 0
                && let Some(wq) = Self::wait_queue(b, d)
            {
                wait(wq);
            }
        }
        // Registered before the rings are looked at: a writer that publishes
        // after this and then finds no sleeper (WaitQueue::wake_all may skip
        // an empty queue) cannot be missed, since our look comes after.
        core::sync::atomic::fence(Ordering::SeqCst);
        let mut revents = 0u32;
        if want_tx != 0 || !b.flags.contains(RegFlags::NO_TX_POLL) {
            for pass in 0..2 {
                for i in b.ranges[Dir::Tx.idx()].iter() {
                    let Some(k) = na.kring(Dir::Tx, i) else {
                        continue;
                    };
                    let Some(ring) = k.ring() else { continue };
                    if (want_tx == 0 || revents & want_tx != 0)
                        && ring.head() == k.nr_hwcur.load(Ordering::Acquire)
                    {
                        continue;
                    }
                    match self.sync_kring(b, k) {
                        SyncOutcome::Reinit | SyncOutcome::Stopped | SyncOutcome::Error => {
                            revents |= POLLERR
                        }
                        _ => {}
                    }
                    if want_tx != 0 && ring.cur() != ring.tail() {
                        revents |= want_tx;
                    }
                }
                if want_tx == 0 || revents & want_tx != 0 || pass == 1 {
                    break;
                }
            }
        }
        if want_rx != 0 {
            for _pass in 0..2 {
                for i in b.ranges[Dir::Rx.idx()].iter() {
                    let Some(k) = na.kring(Dir::Rx, i) else {
                        continue;
                    };
                    let Some(ring) = k.ring() else { continue };
                    match self.sync_kring(b, k) {
                        SyncOutcome::Reinit | SyncOutcome::Stopped | SyncOutcome::Error => {
                            revents |= POLLERR
                        }
                        _ => {}
                    }
                    if ring.cur() != ring.tail() {
                        revents |= want_rx;
                    }
                }
                if revents & want_rx != 0 {
                    break;
                }
            }
        }
        revents
    }
}

enum SyncOutcome {
    Done,
    /// The port's sync failed (e.g. the TX ring of a monitor).
    Error,
    Busy,
    Reinit,
    Stopped,
}
