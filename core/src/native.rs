//! Native (netmap-aware) NIC drivers: the hooks between a driver and the
//! core (the reference's `netmap_attach`, `nm_register`, `nm_txsync`,
//! `nm_rxsync`, `nm_intr`, `netmap_rx_irq`, `netmap_reset`).
//!
//! In native mode a NIC's hardware rings are the netmap rings: the core
//! hands netmap buffers straight to the device's descriptors (zero copy, no
//! per-frame OS object, one doorbell per batch). What the driver gives is
//! [`NativeOps`]: put a buffer in a descriptor, ring the doorbell, report
//! completions, turn interrupts on and off, enter and leave netmap mode.
//! Every decision stays here: which slot goes to which descriptor, and the
//! check of every slot userspace wrote (buffer index, length) before its
//! buffer reaches a descriptor. A driver never reads a netmap slot.
//!
//! Bookkeeping (the reference's `nkr_hwofs`, `netmap_idx_k2n`): slot `j` of
//! a ring is descriptor `(j + hwofs) % n` of the device's ring; `hwofs` is
//! 0 unless the driver reports, after a device reset, that its ring
//! restarted elsewhere ([`ring_reset`]). A buffer is given to a driver as a
//! [`DescBuf`]: index, kernel address (the driver turns it into a DMA
//! address, e.g. a physical one), length, and whether the descriptor's
//! address must be reloaded (NS_BUF_CHANGED, or a buffer other than the one
//! that descriptor last had).
//!
//! RX (one free slot kept as the gap, §6.4): the kernel owns slots
//! `[hwtail, hwcur - 1)`; the device holds the buffers of `[hwtail,
//! next_post)`, in slot order, and `[next_post, hwcur - 1)` wait for room
//! in the device (a device may hold fewer buffers than the ring has
//! slots). Completions come back in posting order and become `[hwtail,
//! ...)`; releasing `[hwcur, head)` makes `[hwcur - 1, head - 1)` postable.
//! TX: `[hwcur, head)` is posted in order; completions advance `hwtail`.
//!
//! Host rings stay with the OS (`NetifOps::host_inject` and
//! `Adapter::rx_push`), beside the native hardware rings. A port without a
//! native driver uses the emulated adapter (`netif.rs`).

#![deny(unsafe_code)]

use crate::adapter::{Adapter, RingRange};
use crate::kring::{Dir, Kring, KringOwned, NKR_ON, nm_next, nm_prev};
use crate::platform::Platform;
use crate::shm::RingPtr;
use crate::{Errno, Result};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use netmap_uapi::NS_BUF_CHANGED;

/// What a native driver reports about its device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NativeConfig {
    /// Hardware rings (queues), indexed by `Dir` (RX, TX).
    pub rings: [u32; 2],
    /// Descriptors per ring, indexed by `Dir`: the netmap ring has as many
    /// slots.
    pub descs: [u32; 2],
}

/// A checked netmap buffer for a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DescBuf {
    /// Buffer index in the port's region (valid: checked by the core).
    pub buf_idx: u32,
    /// Kernel address of the buffer's first byte. The driver makes a DMA
    /// address of it (physical address, IOMMU mapping, scatter-gather).
    pub addr: usize,
    /// TX: bytes to send (at most the buffer size). RX: room (the buffer
    /// size).
    pub len: u32,
    /// The descriptor last held another buffer (NS_BUF_CHANGED): a driver
    /// that keeps addresses in its descriptors must reload this one.
    pub reload: bool,
}

/// A completed RX descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxDone {
    /// The descriptor index the buffer was posted at.
    pub desc: u32,
    /// Frame length written by the device (the core clamps it).
    pub len: u32,
}

/// What a netmap-aware driver implements. Every method may be called from
/// the sync path of any thread (not concurrently for one ring: the core
/// serializes a ring's calls with the kring's busy lock), except
/// `register`, called on the control path. Ring and descriptor indexes are
/// always in range.
pub trait NativeOps: Send + Sync {
    fn config(&self) -> NativeConfig;
    /// Enter (`on`) or leave netmap mode: quiesce the device and take back
    /// every buffer of the other mode (the OS's, or netmap's), so that on
    /// return no descriptor holds a buffer of the mode left.
    fn register(&self, on: bool) -> Result<()>;
    /// Put TX buffer `b` in descriptor `desc` of ring `ring`. False: the
    /// device's ring is full (nothing was posted).
    fn tx_post(&self, ring: u32, desc: u32, b: &DescBuf) -> bool;
    /// Tell the device about the TX descriptors posted since the last kick.
    fn tx_kick(&self, ring: u32);
    /// TX descriptors the device finished since the last call (in posting
    /// order).
    fn tx_reclaim(&self, ring: u32) -> u32;
    /// Put an empty RX buffer in descriptor `desc` of ring `ring`.
    fn rx_post(&self, ring: u32, desc: u32, b: &DescBuf) -> bool;
    fn rx_kick(&self, ring: u32);
    /// The next RX descriptor the device filled, if any.
    fn rx_poll(&self, ring: u32) -> Option<RxDone>;
    /// Enable (`on`) or disable the interrupt of ring `ring`. Returns true
    /// when enabling found work already pending (the caller looks again).
    fn intr(&self, dir: Dir, ring: u32, on: bool) -> bool;
}

/// Per-ring bookkeeping.
struct NativeRing {
    /// Slot `j` is descriptor `(j + hwofs) % n`.
    hwofs: AtomicU32,
    /// The buffer each descriptor last held (reload decisions).
    last_buf: Vec<AtomicU32>,
    /// RX: the next slot to give the device.
    next_post: AtomicU32,
}

/// The native side of an OS interface (in `NetifPort`).
pub struct NativePort {
    pub ops: Arc<dyn NativeOps>,
    rings: [Vec<NativeRing>; 2],
    /// The device is in netmap mode (hardware rings bound).
    on: AtomicBool,
    /// The driver detached: no more calls into it.
    gone: AtomicBool,
    /// Bindings that hold the hardware rings (all or none, see `bind`).
    hw_users: AtomicU32,
}

fn valid_buf(idx: u32, nbufs: u32) -> bool {
    // Buffers 0 and 1 are reserved (§5.3): never handed to a device.
    idx >= 2 && idx < nbufs
}

impl NativePort {
    /// The native state for `ops`, with the core's ring sizes.
    pub fn new(ops: Arc<dyn NativeOps>, rings: [u32; 2], slots: [u32; 2]) -> Result<Self> {
        let mut r: [Vec<NativeRing>; 2] = [Vec::new(), Vec::new()];
        for d in Dir::BOTH {
            let v = &mut r[d.idx()];
            v.try_reserve_exact(rings[d.idx()] as usize)
                .map_err(|_| Errno::ENOMEM)?;
            for _ in 0..rings[d.idx()] {
                let mut last = Vec::new();
                last.try_reserve_exact(slots[d.idx()] as usize)
                    .map_err(|_| Errno::ENOMEM)?;
                last.extend((0..slots[d.idx()]).map(|_| AtomicU32::new(0)));
                v.push(NativeRing {
                    hwofs: AtomicU32::new(0),
                    last_buf: last,
                    next_post: AtomicU32::new(0),
                });
            }
        }
        Ok(NativePort {
            ops,
            rings: r,
            on: AtomicBool::new(false),
            gone: AtomicBool::new(false),
            hw_users: AtomicU32::new(0),
        })
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    fn desc(&self, d: Dir, ring: u32, slot: u32, n: u32) -> u32 {
        let ofs = self.rings[d.idx()]
            .get(ring as usize)
            .map_or(0, |r| r.hwofs.load(Ordering::Relaxed));
        (slot + ofs % n.max(1)) % n.max(1)
    }

    /// A buffer for descriptor `desc`, with the reload decision.
    #[allow(clippy::too_many_arguments)]
    fn desc_buf<P: Platform>(
        &self,
        na: &Adapter<P>,
        d: Dir,
        ring: u32,
        desc: u32,
        idx: u32,
        len: u32,
        flags: u16,
    ) -> DescBuf {
        let last = self.rings[d.idx()]
            .get(ring as usize)
            .and_then(|r| r.last_buf.get(desc as usize));
        let prev = last.map_or(0, |l| l.swap(idx, Ordering::Relaxed));
        DescBuf {
            buf_idx: idx,
            addr: na.mem.buf(idx).as_ptr() as usize,
            len,
            reload: flags & NS_BUF_CHANGED != 0 || prev != idx,
        }
    }

    /// Check the hardware ranges of a binding: a native port binds all its
    /// hardware rings in both directions, or none (host rings only), as in
    /// the reference's drivers: the device enters netmap mode as a whole.
    pub fn check_ranges<P: Platform>(na: &Adapter<P>, ranges: &[RingRange; 2]) -> Result<bool> {
        let hw = |d: Dir| {
            let r = ranges[d.idx()];
            let n = na.nrings(d);
            let first = r.first.min(n);
            let last = r.last.min(n);
            (first, last, n)
        };
        let (rf, rl, rn) = hw(Dir::Rx);
        let (tf, tl, tn) = hw(Dir::Tx);
        let none = rf == rl && tf == tl;
        let all = rf == 0 && rl == rn && tf == 0 && tl == tn;
        if none {
            Ok(false)
        } else if all {
            Ok(true)
        } else {
            Err(Errno::EINVAL)
        }
    }

    /// A binding with hardware rings arrives (control path, rings created):
    /// the first one puts the device in netmap mode and fills its RX rings.
    pub fn bind<P: Platform>(&self, na: &Adapter<P>, ranges: &[RingRange; 2]) -> Result<()> {
        if !Self::check_ranges(na, ranges)? {
            return Ok(());
        }
        if self.is_gone() {
            return Err(Errno::ENXIO);
        }
        if self.hw_users.fetch_add(1, Ordering::AcqRel) > 0 {
            return Ok(());
        }
        if let Err(e) = self.ops.register(true) {
            self.hw_users.fetch_sub(1, Ordering::AcqRel);
            return Err(e);
        }
        for (d, v) in Dir::BOTH.iter().zip(self.rings.iter()) {
            for (i, r) in v.iter().enumerate() {
                r.hwofs.store(0, Ordering::Relaxed);
                for l in r.last_buf.iter() {
                    l.store(0, Ordering::Relaxed);
                }
                let tail = na
                    .kring(*d, i as u32)
                    .map_or(0, |k| k.nr_hwtail.load(Ordering::Relaxed));
                r.next_post.store(tail, Ordering::Relaxed);
            }
        }
        self.on.store(true, Ordering::Release);
        for i in 0..na.nrings(Dir::Rx) {
            if let Some(k) = na.kring(Dir::Rx, i)
                && let Some(ring) = k.ring()
            {
                let _own = k.owner.lock_spin();
                let _ = self.rx_fill(na, k, &ring);
            }
        }
        for d in Dir::BOTH {
            for i in 0..na.nrings(d) {
                self.ops.intr(d, i, true);
            }
        }
        Ok(())
    }

    /// A binding leaves (control path, before its rings are deleted): the
    /// last one takes the device out of netmap mode, which takes back every
    /// netmap buffer from the descriptors.
    pub fn unbind<P: Platform>(&self, na: &Adapter<P>, ranges: &[RingRange; 2]) {
        if !matches!(Self::check_ranges(na, ranges), Ok(true)) {
            return;
        }
        if self.hw_users.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.off(na);
        }
    }

    /// Leave netmap mode now, waiting for the syncs in progress (they hold
    /// the busy locks). Idempotent.
    fn off<P: Platform>(&self, na: &Adapter<P>) {
        if !self.on.swap(false, Ordering::AcqRel) {
            return;
        }
        // Syncs check `on` under the busy lock: once each lock was free
        // once, no sync is inside the driver.
        for d in Dir::BOTH {
            for i in 0..na.nrings(d) {
                if let Some(k) = na.kring(d, i) {
                    drop(k.owner.lock_spin());
                }
            }
        }
        if !self.is_gone() {
            for d in Dir::BOTH {
                for i in 0..na.nrings(d) {
                    self.ops.intr(d, i, false);
                }
            }
            let _ = self.ops.register(false);
        }
        // The device holds nothing: every kernel-owned slot is free again.
        for d in Dir::BOTH {
            for i in 0..na.nrings(d) {
                if let Some(k) = na.kring(d, i) {
                    let hwcur = k.nr_hwcur.load(Ordering::Relaxed);
                    let n = k.num_slots;
                    if d == Dir::Tx && hwcur < n {
                        k.nr_hwtail.store(nm_prev(hwcur, n), Ordering::Release);
                    }
                }
            }
        }
    }

    /// The driver goes away (device removal, module unload): leave netmap
    /// mode and never call the driver again; syncs fail with EIO. Control
    /// path, any lock the driver holds must allow the core's busy locks.
    pub fn detach<P: Platform>(&self, na: &Adapter<P>) {
        self.off(na);
        self.gone.store(true, Ordering::Release);
    }

    /// Post the RX slots `[next_post, hwcur - 1)` while the device takes
    /// them, then one kick. Busy lock held. Returns EINVAL if a slot with
    /// an invalid buffer stopped it (it stays unposted: the ring stalls
    /// there until the slot is valid again).
    fn rx_fill<P: Platform>(&self, na: &Adapter<P>, k: &Kring<P>, ring: &RingPtr) -> Result<()> {
        let Some(r) = self.rings[Dir::Rx.idx()].get(k.id as usize) else {
            return Ok(());
        };
        let n = k.num_slots;
        let hwcur = k.nr_hwcur.load(Ordering::Relaxed);
        let mut j = r.next_post.load(Ordering::Relaxed);
        if hwcur >= n || j >= n {
            return Err(Errno::EIO);
        }
        let end = nm_prev(hwcur, n);
        let mut res = Ok(());
        let start = j;
        while j != end {
            if let Err(e) = self.rx_post_slot(na, k, ring, j) {
                if e == Errno::EINVAL {
                    res = Err(e);
                }
                break;
            }
            j = nm_next(j, n);
        }
        if j != start {
            r.next_post.store(j, Ordering::Relaxed);
            self.ops.rx_kick(k.id);
        }
        res
    }

    /// Post RX slot `j`: its buffer index is read once and checked.
    fn rx_post_slot<P: Platform>(
        &self,
        na: &Adapter<P>,
        k: &Kring<P>,
        ring: &RingPtr,
        j: u32,
    ) -> Result<()> {
        let (idx, _len, flags) = ring.slot_desc(j);
        if !valid_buf(idx, na.mem.buf_count()) {
            return Err(Errno::EINVAL);
        }
        let desc = self.desc(Dir::Rx, k.id, j, k.num_slots);
        let b = self.desc_buf(na, Dir::Rx, k.id, desc, idx, na.mem.buf_size(), flags);
        if !self.ops.rx_post(k.id, desc, &b) {
            return Err(Errno::ENOBUFS);
        }
        if flags & NS_BUF_CHANGED != 0 {
            ring.set_slot_flags(j, flags & !NS_BUF_CHANGED);
        }
        Ok(())
    }

    /// txsync of hardware TX ring `k` (§6.5): post `[hwcur, head)`, one
    /// kick, then reclaim completions into hwtail. A slot with an invalid
    /// buffer index or length stops the sync with EINVAL before it reaches
    /// a descriptor (it and what follows stay pending).
    pub fn txsync<P: Platform>(
        &self,
        na: &Adapter<P>,
        k: &Kring<P>,
        own: &mut KringOwned<P>,
        ring: &RingPtr,
    ) -> Result<()> {
        if !self.is_on() || self.is_gone() {
            return Err(Errno::EIO);
        }
        let n = k.num_slots;
        let head = own.rhead;
        let hwcur0 = k.nr_hwcur.load(Ordering::Relaxed);
        if head >= n || hwcur0 >= n {
            return Err(Errno::EIO);
        }
        let nbufs = na.mem.buf_count();
        let bsize = na.mem.buf_size();
        let mut j = hwcur0;
        let mut res = Ok(());
        while j != head {
            let (idx, len, flags) = ring.slot_desc(j);
            let len = u32::from(len);
            if !valid_buf(idx, nbufs) || len > bsize {
                res = Err(Errno::EINVAL);
                break;
            }
            let desc = self.desc(Dir::Tx, k.id, j, n);
            let b = self.desc_buf(na, Dir::Tx, k.id, desc, idx, len, flags);
            if !self.ops.tx_post(k.id, desc, &b) {
                break;
            }
            if flags & NS_BUF_CHANGED != 0 {
                ring.set_slot_flags(j, flags & !NS_BUF_CHANGED);
            }
            j = nm_next(j, n);
        }
        if j != hwcur0 {
            k.nr_hwcur.store(j, Ordering::Release);
            self.ops.tx_kick(k.id);
        }
        self.tx_reclaim(k);
        res
    }

    /// Completed TX descriptors free their slots: hwtail moves forward by
    /// as many, never past the slots in flight.
    fn tx_reclaim<P: Platform>(&self, k: &Kring<P>) {
        let n = k.num_slots;
        let hwcur = k.nr_hwcur.load(Ordering::Relaxed);
        let hwtail = k.nr_hwtail.load(Ordering::Relaxed);
        if hwcur >= n || hwtail >= n {
            return;
        }
        // Slots strictly between hwtail and hwcur; hwcur == hwtail means
        // a full ring (n - 1 in flight), not an empty one.
        let inflight = (hwcur + n - hwtail - 1) % n;
        if inflight == 0 {
            return;
        }
        let done = self.ops.tx_reclaim(k.id).min(inflight);
        if done > 0 {
            k.nr_hwtail.store((hwtail + done) % n, Ordering::Release);
        }
    }

    /// rxsync of hardware RX ring `k` (§6.5): take the filled descriptors
    /// (in order) into `[hwtail, ...)`, then post what the user released.
    /// A completion for a descriptor other than the expected one (a device
    /// or driver bug) stops the sync with EIO.
    pub fn rxsync<P: Platform>(
        &self,
        na: &Adapter<P>,
        k: &Kring<P>,
        own: &mut KringOwned<P>,
        ring: &RingPtr,
    ) -> Result<()> {
        if !self.is_on() || self.is_gone() {
            return Err(Errno::EIO);
        }
        let n = k.num_slots;
        let hwcur = k.nr_hwcur.load(Ordering::Relaxed);
        let hwtail = k.nr_hwtail.load(Ordering::Relaxed);
        let head = own.rhead;
        if hwcur >= n || hwtail >= n || head >= n {
            return Err(Errno::EIO);
        }
        self.ops.intr(Dir::Rx, k.id, false);
        let res = self.rx_import(na, k, ring);
        // Release [hwcur, head): the slots behind the gap become postable.
        if head != hwcur {
            k.nr_hwcur.store(head, Ordering::Release);
        }
        let rel = self.rx_fill(na, k, ring);
        let mut res = res;
        if self.ops.intr(Dir::Rx, k.id, true) {
            // Frames arrived while the interrupt was off, and no interrupt
            // will tell about them: take them now, and if the device is
            // still ahead, wake the ring's waiters so that they sync again.
            self.ops.intr(Dir::Rx, k.id, false);
            res = res.and(self.rx_import(na, k, ring));
            if self.ops.intr(Dir::Rx, k.id, true) {
                na.notify(k);
            }
        }
        res.and(rel)
    }

    /// Move filled RX descriptors into slots `[hwtail, next_post)`.
    fn rx_import<P: Platform>(&self, na: &Adapter<P>, k: &Kring<P>, ring: &RingPtr) -> Result<()> {
        let Some(r) = self.rings[Dir::Rx.idx()].get(k.id as usize) else {
            return Ok(());
        };
        let n = k.num_slots;
        let hwtail = k.nr_hwtail.load(Ordering::Relaxed);
        let end = r.next_post.load(Ordering::Relaxed);
        if hwtail >= n || end >= n {
            return Err(Errno::EIO);
        }
        let bsize = na.mem.buf_size().min(u32::from(u16::MAX));
        let mut t = hwtail;
        let mut res = Ok(());
        while t != end {
            let Some(done) = self.ops.rx_poll(k.id) else {
                break;
            };
            if done.desc != self.desc(Dir::Rx, k.id, t, n) {
                res = Err(Errno::EIO);
                break;
            }
            ring.set_slot_len_flags(t, done.len.min(bsize) as u16, 0);
            t = nm_next(t, n);
        }
        if t != hwtail {
            k.nr_hwtail.store(t, Ordering::Release);
            crate::monitor::rx_new(na, k, ring, hwtail, t);
        }
        res
    }
}

/// The OS's RX interrupt on hardware ring `ring` of a native port (the
/// reference's `netmap_rx_irq`): the ring's users are woken, or, for an
/// interface attached to a VALE switch, the frames are forwarded through
/// it. Called in the driver's NAPI context (softirq on Linux), never in a
/// hard interrupt: forwarding takes the switch's locks.
pub fn rx_irq<P: Platform>(na: &Adapter<P>, ring: u32) {
    if let Some(k) = na.kring(Dir::Rx, ring)
        && k.flags() & NKR_ON != 0
        && !crate::bwrap::nic_rx(na, k)
    {
        na.notify(k);
    }
}

/// The OS's TX interrupt on hardware ring `ring`: descriptors completed,
/// the ring's waiters sync again; for an interface attached to a switch,
/// what the switch left waiting for room is sent. Same context as
/// [`rx_irq`].
pub fn tx_irq<P: Platform>(na: &Adapter<P>, ring: u32) {
    if let Some(bw) = na.wrapper() {
        // The kernel drives the TX ring: post what waits in its slots and
        // take the completions, then send what waits in the switch. A ring
        // busy in another context is synced there.
        if let crate::adapter::Kind::Netif(ni) = &na.kind
            && let Some(nat) = &ni.native
            && let Some(k) = na.kring(Dir::Tx, ring)
            && let Some(mut own) = k.owner.try_lock()
            && let Some(r) = k.ring()
            && k.flags() & NKR_ON != 0
        {
            let _ = nat.txsync(na, k, &mut own, &r);
        }
        crate::bwrap::retry_tx(&bw);
    } else if let Some(k) = na.kring(Dir::Tx, ring) {
        na.notify(k);
    }
}

/// The device was reset behind netmap's back (link change, error
/// recovery) and its ring `ring` of direction `d` restarted empty at
/// descriptor `first` (the reference's `netmap_reset`): TX slots in flight
/// count as completed (their frames may be lost), RX buffers are posted
/// again from `first` on. Driver context that may spin briefly (the ring's
/// busy lock); returns false if the port is not in native netmap mode.
pub fn ring_reset<P: Platform>(
    na: &Adapter<P>,
    np: &NativePort,
    d: Dir,
    ring: u32,
    first: u32,
) -> bool {
    let Some(k) = na.kring(d, ring) else {
        return false;
    };
    if !np.is_on() || np.is_gone() {
        return false;
    }
    let _own = k.owner.lock_spin();
    let n = k.num_slots;
    let hwcur = k.nr_hwcur.load(Ordering::Relaxed);
    let hwtail = k.nr_hwtail.load(Ordering::Relaxed);
    if hwcur >= n || hwtail >= n {
        return false;
    }
    let Some(r) = np.rings[d.idx()].get(ring as usize) else {
        return false;
    };
    // Slot `next` (TX: hwcur, RX: hwtail) becomes descriptor `first`.
    let next = if d == Dir::Tx { hwcur } else { hwtail };
    r.hwofs.store((first % n + n - next) % n, Ordering::Relaxed);
    for l in r.last_buf.iter() {
        l.store(0, Ordering::Relaxed);
    }
    match d {
        Dir::Tx => k.nr_hwtail.store(nm_prev(hwcur, n), Ordering::Release),
        Dir::Rx => {
            r.next_post.store(hwtail, Ordering::Relaxed);
            if let Some(ring) = k.ring() {
                let _ = np.rx_fill(na, k, &ring);
            }
        }
    }
    drop(_own);
    na.notify(k);
    true
}
