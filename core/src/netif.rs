//! OS network interfaces in netmap mode (NICs through the emulated
//! "generic" adapter or a netmap-aware driver), with their host rings
//! (§6.5, §6.8, §10.3).
//!
//! The core owns the rings and the ring protocol; the OS supplies the
//! device side through [`NetifOps`]: transmitting slots, and pushing
//! received frames into RX rings with [`Adapter::rx_push`] (callable from
//! the OS's receive context: it only takes the kring's data-path lock).
//! Host rings are driven by the core: the host TX ring hands frames to the
//! OS stack with [`NetifOps::host_inject`], the OS pushes frames the stack
//! transmits into the host RX ring with `rx_push`.

#![deny(unsafe_code)]

use crate::adapter::Adapter;
use crate::kring::{Dir, Kring, KringOwned, NKR_ON, Offsets, nm_next, nm_prev, ring_dist};
use crate::name::Name;
use crate::platform::Platform;
use crate::shm::{BufRef, RingPtr, Slot};
use crate::{Errno, Result};
use alloc::sync::Arc;
use core::sync::atomic::Ordering;
use netmap_uapi::{NS_BUF_CHANGED, NS_FORWARD, NS_MOREFRAG};

/// What the OS reports about a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetifConfig {
    /// Hardware rings, indexed by `Dir` (RX, TX).
    pub rings: [u32; 2],
    /// Slots per ring, indexed by `Dir`.
    pub slots: [u32; 2],
    pub mtu: u32,
    /// Largest frame the device can receive in one buffer (0: unknown).
    pub max_rx_buf: u32,
}

/// The device side of an OS network interface.
pub trait NetifOps<P: Platform>: Send + Sync {
    fn name(&self) -> Name;
    fn config(&self) -> NetifConfig;
    /// Start (`on`) or stop intercepting the device's traffic. Called on
    /// the control path when the port enters or leaves netmap mode.
    fn register(&self, na: &Arc<Adapter<P>>, on: bool) -> Result<()>;
    /// Transmit `frame` (one call per frame, from the hardware TX ring's
    /// txsync, or from a switch the interface is attached to) on TX queue
    /// `ring`. Returns false when the device cannot take more frames now
    /// (the frame's slots stay pending).
    fn transmit(&self, ring: u32, frame: &Frame<'_, P>) -> bool;
    /// Give a frame to the host stack as if the device had received it.
    fn host_inject(&self, frame: &Frame<'_, P>) -> Result<()>;
    /// Frames handed to the device by [`transmit`](Self::transmit) from
    /// hardware TX ring `ring` whose transmission has not completed yet
    /// (§6.5: hwtail advances as slots complete). That many of the slots
    /// transmitted last stay kernel-owned. When the count drops the OS
    /// wakes the ring's waiters ([`Adapter::notify`]) so that poll() syncs
    /// again. An OS without completion events keeps the default: every
    /// frame counts as completed once `transmit` returned.
    fn tx_inflight(&self, _ring: u32) -> u32 {
        0
    }
    /// The device's netmap-aware driver, if one is attached and native
    /// mode is allowed (module parameter `admode`): its hardware rings are
    /// then driven through [`crate::native`], and only the host rings go
    /// through this trait.
    fn native(&self) -> Option<Arc<dyn crate::native::NativeOps>> {
        None
    }
}

/// Looks up OS interfaces by name (in the caller's namespace), and makes
/// the OS interfaces of persistent VALE ports (§8.4).
///
/// The core calls every method with its global lock held (lock order: core
/// global lock, then whatever the OS takes inside, e.g. rtnl on Linux).
pub trait NetifProvider<P: Platform>: Send + Sync {
    /// An interface the core can put in netmap mode, if `name` is one.
    fn lookup(&self, name: &[u8]) -> Option<Arc<dyn NetifOps<P>>>;

    /// Whether an OS interface called `name` exists at all (also one that
    /// [`lookup`](Self::lookup) would not accept, e.g. a loopback device).
    fn exists(&self, name: &[u8]) -> bool {
        self.lookup(name).is_some()
    }

    /// Create the OS interface of persistent VALE port `name` (NEWIF). The
    /// core has checked the name (1..=15 bytes, no `vale` prefix) and that
    /// no interface or port of that name exists. An OS without persistent
    /// ports keeps the default: `EOPNOTSUPP`.
    fn create_persistent(&self, _name: &[u8]) -> Result<()> {
        Err(Errno::EOPNOTSUPP)
    }

    /// Remove the OS interface made by
    /// [`create_persistent`](Self::create_persistent) (DELIF).
    fn delete_persistent(&self, _name: &[u8]) -> Result<()> {
        Err(Errno::EOPNOTSUPP)
    }
}

/// A frame in a ring: one slot, or an NS_MOREFRAG chain of slots (§6.9),
/// handed to the OS, which copies it out with [`Frame::copy_to`].
/// Userspace may rewrite the slots meanwhile: lengths are read again by
/// every call and clamped, so a racing user only garbles its own frame.
pub struct Frame<'a, P: Platform> {
    mem: &'a crate::mem::NetmapMem<P>,
    ring: &'a RingPtr,
    first: u32,
    nslots: u32,
    /// The ring's OFFSETS setting (§4.11), if any.
    ofs: Option<Offsets>,
}

impl<'a, P: Platform> Frame<'a, P> {
    /// The `nslots` slots of `ring` from `first` on (buffers of `mem`);
    /// `ofs`: the ring's OFFSETS setting ([`Kring::offsets`]).
    pub fn new(
        mem: &'a crate::mem::NetmapMem<P>,
        ring: &'a RingPtr,
        first: u32,
        nslots: u32,
        ofs: Option<Offsets>,
    ) -> Self {
        Frame {
            mem,
            ring,
            first,
            nslots,
            ofs,
        }
    }

    /// Each slot's buffer, data offset and length (clamped to what the
    /// buffer holds behind the offset, as the reference's
    /// `NM_CHECK_ADDR_LEN_OFF`).
    fn pieces(&self) -> impl Iterator<Item = (BufRef<'a>, usize, usize)> + '_ {
        let n = self.ring.num_slots().max(1);
        let bsize = self.mem.buf_size() as usize;
        (0..self.nslots).map(move |i| {
            let j = (self.first + i) % n;
            let s = self.ring.slot(j);
            let buf = self.mem.buf(s.buf_idx);
            match self.ofs {
                None => (buf, 0, (s.len as usize).min(bsize)),
                Some(o) => {
                    let off = o.of(self.ring, j);
                    (buf, off, (s.len as usize).min(bsize - off))
                }
            }
        })
    }

    /// Length in bytes (each slot's length, clamped to the buffer size).
    pub fn len(&self) -> usize {
        self.pieces().map(|(_, _, l)| l).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copy the frame to the start of buffer `dst` (a native TX slot's);
    /// returns the bytes written (at most the buffer's size).
    pub fn copy_into(&self, dst: &BufRef<'_>) -> usize {
        let mut off = 0;
        for (buf, start, l) in self.pieces() {
            off += dst.copy_from(off, &buf, start, l);
        }
        off
    }

    /// Copy the frame into `out`; returns the bytes written (at most
    /// `out.len()`; fewer if the user shortened a slot since `len`).
    pub fn copy_to(&self, out: &mut [u8]) -> usize {
        let mut off = 0;
        for (buf, start, l) in self.pieces() {
            let end = (off + l).min(out.len());
            off += buf.read(start, &mut out[off..end]);
            if end == out.len() {
                break;
            }
        }
        off
    }
}

/// The slots of the frame that starts at slot `j` of `ring`, when the
/// slots up to `head` are available: 1, or the length of an NS_MOREFRAG
/// chain (at most `NETMAP_MAX_FRAGS` slots: a longer chain is cut). None
/// if the chain goes on past `head` (the user has not released all of it).
pub fn frame_slots(ring: &RingPtr, j: u32, head: u32) -> Option<u32> {
    let n = ring.num_slots().max(1);
    let mut count = 1u32;
    let mut i = j;
    while ring.slot(i).flags & NS_MOREFRAG != 0 && count < netmap_uapi::NETMAP_MAX_FRAGS {
        i = nm_next(i, n);
        if i == head {
            return None;
        }
        count += 1;
    }
    Some(count)
}

/// Netif state of an adapter.
pub struct NetifPort<P: Platform> {
    pub ops: Arc<dyn NetifOps<P>>,
    /// The native driver of the hardware rings, if any.
    pub native: Option<crate::native::NativePort>,
}

impl<P: Platform> NetifPort<P> {
    /// txsync: hardware rings transmit through the OS; the host TX ring
    /// hands its frames to the host stack (§6.5).
    pub fn txsync(
        &self,
        na: &Adapter<P>,
        k: &Kring<P>,
        own: &mut KringOwned<P>,
        ring: &RingPtr,
    ) -> Result<()> {
        let host = k.id >= na.nrings(Dir::Tx);
        if !host && let Some(nat) = &self.native {
            return nat.txsync(na, k, own, ring);
        }
        let n = k.num_slots;
        let head = own.rhead;
        let mut j = k.nr_hwcur.load(Ordering::Relaxed);
        if head >= n || j >= n {
            return Err(Errno::EIO);
        }
        let ofs = k.offsets();
        while j != head {
            // A frame of several slots goes out as one (§6.9); one whose
            // end the user has not released yet waits.
            let Some(nslots) = frame_slots(ring, j, head) else {
                break;
            };
            let frame = Frame::new(&na.mem, ring, j, nslots, ofs);
            if host {
                if frame.len() >= 14 {
                    let _ = self.ops.host_inject(&frame);
                }
            } else if !self.ops.transmit(k.id, &frame) {
                break;
            }
            for _ in 0..nslots {
                let f = ring.slot(j).flags;
                if f & NS_BUF_CHANGED != 0 {
                    ring.set_slot_flags(j, f & !NS_BUF_CHANGED);
                }
                j = nm_next(j, n);
            }
        }
        k.nr_hwcur.store(j, Ordering::Release);
        // Frames are copied out by the OS: a slot is free again once its
        // frame completed. Completions are counted, not matched to slots
        // (any slot will do: the data was copied), so the slots still in
        // flight are the last ones handed over: hwtail = hwcur - 1 - in
        // flight, never moving backwards (the count may include frames of
        // slots already returned, e.g. from before a ring reinit).
        let old_tail = k.nr_hwtail.load(Ordering::Relaxed);
        let mut tail = nm_prev(j, n);
        if !host && old_tail < n {
            let held = self.ops.tx_inflight(k.id).min(ring_dist(old_tail, tail, n));
            tail = if held > tail {
                tail + n - held
            } else {
                tail - held
            };
        }
        k.nr_hwtail.store(tail, Ordering::Release);
        Ok(())
    }
}

impl<P: Platform> Adapter<P> {
    /// Copy a received frame into RX ring `ring` (hardware rings first,
    /// then host rings); a frame larger than a buffer takes several slots,
    /// chained with NS_MOREFRAG (§6.9). Returns false if the frame was
    /// dropped: ring not active, not enough free slots, or longer than
    /// `NETMAP_MAX_FRAGS` buffers. Data-path safe: takes only the kring's
    /// `q_lock`. The ring's users are woken (or, for an interface attached
    /// to a switch, the frame is forwarded) at once.
    pub fn rx_push(&self, ring: u32, frame: &[u8]) -> bool {
        let ok = self.rx_push_quiet(ring, frame);
        if ok {
            self.rx_flush();
        }
        ok
    }

    /// [`rx_push`](Self::rx_push) without the wake-up: the OS pushes a
    /// batch of frames (e.g. one NAPI poll's worth) and then calls
    /// [`rx_flush`](Self::rx_flush) once, so that a reader wakes once per
    /// batch rather than per frame, and an attached interface forwards
    /// the batch in one go.
    pub fn rx_push_quiet(&self, ring: u32, frame: &[u8]) -> bool {
        let Some(k) = self.kring(Dir::Rx, ring) else {
            return false;
        };
        let q = k.q_lock.lock();
        if k.flags() & NKR_ON == 0 {
            return false;
        }
        let Some(r) = k.ring() else { return false };
        let n = k.num_slots;
        let hwcur = k.nr_hwcur.load(Ordering::Acquire);
        let hwtail = k.nr_hwtail.load(Ordering::Relaxed);
        if hwcur >= n || hwtail >= n || ring_dist(hwtail, nm_prev(hwcur, n), n) == 0 {
            return false;
        }
        // With OFFSETS each slot gets the data behind its own offset, in
        // pieces of what the largest offset (or the gap) leaves (§4.11).
        let ofs = k.offsets();
        let buf_size = self.mem.buf_size() as usize;
        let bsize = ofs.map_or(buf_size, |o| o.room(buf_size)).max(1);
        let nslots = frame.len().div_ceil(bsize).max(1);
        if nslots > netmap_uapi::NETMAP_MAX_FRAGS as usize
            || nslots as u32 > ring_dist(hwtail, nm_prev(hwcur, n), n)
        {
            return false;
        }
        let mut t = hwtail;
        let mut pieces = frame.chunks(bsize).peekable();
        if frame.is_empty() {
            r.set_slot_len_flags(t, 0, 0);
            t = nm_next(t, n);
        }
        while let Some(piece) = pieces.next() {
            let s = r.slot(t);
            let start = ofs.map_or(0, |o| o.of(&r, t));
            let len = self.mem.buf(s.buf_idx).write(start, piece);
            let more = if pieces.peek().is_some() {
                NS_MOREFRAG
            } else {
                0
            };
            r.set_slot_len_flags(t, len as u16, more);
            t = nm_next(t, n);
        }
        let new_tail = t;
        k.nr_hwtail.store(new_tail, Ordering::Release);
        crate::monitor::rx_new(self, k, &r, hwtail, new_tail);
        drop(q);
        k.rx_unnotified.store(true, Ordering::Release);
        true
    }

    /// [`rx_push_quiet`](Self::rx_push_quiet) of a frame the OS got on its
    /// queue `queue`: a received frame goes to hardware RX ring `queue %
    /// nrings`, one the host stack sent (`host`) to host RX ring `nrings +
    /// queue % nhost`. False if dropped (also: no host ring).
    pub fn rx_push_queue(&self, queue: u32, host: bool, frame: &[u8]) -> bool {
        let hw = self.nrings(Dir::Rx);
        let ring = if host {
            let nh = self.nhost(Dir::Rx);
            if nh == 0 {
                return false;
            }
            hw + queue % nh
        } else {
            queue % hw.max(1)
        };
        self.rx_push_quiet(ring, frame)
    }

    /// Tell about the frames pushed by [`rx_push_quiet`](Self::rx_push_quiet):
    /// an interface attached to a switch forwards them (or leaves them to
    /// its polling thread); otherwise the rings' users are woken.
    pub fn rx_flush(&self) {
        for k in self.krings[Dir::Rx.idx()].iter() {
            if k.rx_unnotified.swap(false, Ordering::AcqRel) && !crate::bwrap::nic_rx(self, k) {
                self.notify(k);
            }
        }
    }

    /// The device has room again after refusing a frame (e.g. a full
    /// queue): wake the users of the hardware TX rings so that they sync
    /// and retry, or retry what a switch left for an attached interface.
    pub fn tx_wake(&self) {
        if let Some(bw) = self.wrapper() {
            crate::bwrap::retry_tx(&bw);
            return;
        }
        for i in 0..self.nrings(Dir::Tx) {
            if let Some(k) = self.kring(Dir::Tx, i) {
                self.notify(k);
            }
        }
    }
}

/// rxsync of a netif ring: frames were pushed by the OS; release
/// [hwcur, head) (same as a VALE port).
pub fn rxsync<P: Platform>(
    na: &Adapter<P>,
    k: &Kring<P>,
    own: &mut KringOwned<P>,
    ring: &RingPtr,
) -> Result<()> {
    if let crate::adapter::Kind::Netif(ni) = &na.kind
        && let Some(nat) = &ni.native
        && k.id < na.nrings(Dir::Rx)
    {
        return nat.rxsync(na, k, own, ring);
    }
    crate::vale::rxsync(na, k, own, ring)
}

/// Errors of the OS lookup.
pub fn not_found() -> Errno {
    Errno::ENXIO
}

/// Transparent mode (NS_FORWARD / NR_FORWARD, §6.8), applied by an RX sync
/// of ring `k` of interface `na` to the slots `[hwcur, head)` the user
/// releases (`all`: module parameter `fwd`, every released slot counts):
/// * hardware RX ring: the frames are copied to the host stack and
///   NS_FORWARD is cleared on their slots;
/// * host RX ring, when the file binds every hardware TX ring (`to_nic`):
///   the frames move to free slots of the hardware TX rings (buffer swap,
///   NS_BUF_CHANGED on both slots), whose head and cur advance past them.
///
/// Returns true if frames were moved to TX rings: the caller then runs
/// their txsync. Called with `k`'s busy lock held; a TX ring busy in
/// another context is skipped (its frames stay in the host ring).
#[allow(clippy::too_many_arguments)]
pub fn forward_released<P: Platform>(
    na: &Adapter<P>,
    ni: &NetifPort<P>,
    k: &Kring<P>,
    ring: &RingPtr,
    hwcur: u32,
    head: u32,
    all: bool,
    to_nic: bool,
) -> bool {
    let n = k.num_slots;
    if hwcur >= n || head >= n || hwcur == head {
        return false;
    }
    let marked = |flags: u16| all || flags & NS_FORWARD != 0;
    if k.id < na.nrings(Dir::Rx) {
        let bsize = na.mem.buf_size() as usize;
        let ofs = k.offsets();
        let mut j = hwcur;
        while j != head {
            let s = ring.slot(j);
            if marked(s.flags) {
                let len = s.len as usize;
                if (14..=bsize).contains(&len) {
                    let _ = ni.ops.host_inject(&Frame::new(&na.mem, ring, j, 1, ofs));
                }
                if s.flags & NS_FORWARD != 0 {
                    ring.set_slot_flags(j, s.flags & !NS_FORWARD);
                }
            }
            j = nm_next(j, n);
        }
        return false;
    }
    if !to_nic {
        return false;
    }
    let mut j = hwcur;
    let mut moved = false;
    for t in 0..na.nrings(Dir::Tx) {
        // Skip what is not to be forwarded.
        while j != head && !marked(ring.slot(j).flags) {
            j = nm_next(j, n);
        }
        if j == head {
            break;
        }
        let Some(tk) = na.kring(Dir::Tx, t) else {
            continue;
        };
        let Some(town) = tk.owner.try_lock() else {
            continue;
        };
        let Some(tring) = tk.ring() else { continue };
        let tn = tk.num_slots;
        // The user's free slots are [head, tail) of the TX ring; its head
        // must be inside the window the kernel last published.
        let mut dh = tring.head();
        let (rhead, rtail) = (town.rhead, town.rtail);
        if dh >= tn
            || rhead >= tn
            || rtail >= tn
            || ring_dist(rhead, dh, tn) > ring_dist(rhead, rtail, tn)
        {
            continue;
        }
        while j != head && dh != rtail {
            let s = ring.slot(j);
            if marked(s.flags) {
                let d = tring.slot(dh);
                tring.set_slot(
                    dh,
                    Slot {
                        buf_idx: s.buf_idx,
                        len: s.len,
                        flags: NS_BUF_CHANGED,
                        ptr: 0,
                    },
                );
                ring.set_slot(
                    j,
                    Slot {
                        buf_idx: d.buf_idx,
                        len: s.len,
                        flags: (s.flags & !NS_FORWARD) | NS_BUF_CHANGED,
                        ptr: 0,
                    },
                );
                dh = nm_next(dh, tn);
                moved = true;
            }
            j = nm_next(j, n);
        }
        tring.set_head(dh);
        tring.set_cur(dh);
    }
    moved
}
