//! krings: the kernel side of a netmap ring (spec §6).
//!
//! A `Kring` holds the kernel's own copy of the ring state (`nr_hwcur`,
//! `nr_hwtail`, and the last accepted `rhead`/`rcur`/`rtail`), the pointer to
//! the shared `netmap_ring`, the busy try-lock that serializes syncs, the
//! queue lock used by writers from other ports (VALE senders, monitors) and
//! the wait queue poll() sleeps on.
//!
//! Ring validation follows the reference "prologue" exactly: the head and cur
//! that userspace wrote are read once, checked against the kernel's copy, and
//! on violation the ring is reinitialized as §6.4 says.

#![deny(unsafe_code)]

use crate::mem::{MemObj, NetmapMem};
use crate::platform::{Platform, WaitQueue};
use crate::shm::{RingPtr, Slot};
use crate::sync::{Lock, TryLock};
use crate::{Errno, Result};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use netmap_uapi::{NetmapRing, Timeval};

/// Ring direction, with the reference kernel's internal values (RX = 0,
/// TX = 1), which is also what `netmap_ring.dir` shows (§15.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Rx = 0,
    Tx = 1,
}

impl Dir {
    pub const BOTH: [Dir; 2] = [Dir::Rx, Dir::Tx];
    pub fn idx(self) -> usize {
        self as usize
    }
    pub fn other(self) -> Dir {
        match self {
            Dir::Rx => Dir::Tx,
            Dir::Tx => Dir::Rx,
        }
    }
}

/// kring flags.
pub const NKR_EXCLUSIVE: u32 = 0x1;
/// The ring exists and is in netmap mode: writers from other ports may use it.
pub const NKR_ON: u32 = 0x2;
/// The port left netmap mode under the users' feet (monitors): syncs fail.
pub const NKR_STOPPED: u32 = 0x4;

/// The OFFSETS setting of a kring (§4.11): slot data starts `ptr & mask`
/// bytes into the buffer, at most `max`; `gap` is the declared minimum
/// distance between the offsets of slots that share one buffer (0: they do
/// not share). Read once per sync or batch: a ring without offsets (mask 0)
/// pays one load per call, nothing per slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    pub mask: u64,
    pub max: u64,
    pub gap: u64,
}

impl Offsets {
    /// The data offset of slot `i` of `ring` (read once from `ptr`,
    /// clamped to the declared maximum, as the reference's `nm_get_offset`).
    #[inline]
    pub fn of(&self, ring: &RingPtr, i: u32) -> usize {
        (ring.slot_user_ptr(i) & self.mask).min(self.max) as usize
    }

    /// What a slot of a ring with buffers of `buf_size` bytes may receive
    /// behind its offset (the reference's `hwbuf_len`): what the largest
    /// offset leaves, and no more than the gap if slots share buffers.
    #[inline]
    pub fn room(&self, buf_size: usize) -> usize {
        let room = buf_size.saturating_sub(self.max as usize);
        match self.gap {
            0 => room,
            g => room.min(usize::try_from(g).unwrap_or(usize::MAX)),
        }
    }
}

/// `nm_next`.
#[inline]
pub fn nm_next(i: u32, n: u32) -> u32 {
    if i + 1 == n { 0 } else { i + 1 }
}

/// `nm_prev`.
#[inline]
pub fn nm_prev(i: u32, n: u32) -> u32 {
    if i == 0 { n - 1 } else { i - 1 }
}

/// Distance from `a` forward to `b` on a ring of `n` slots.
#[inline]
pub fn ring_dist(a: u32, b: u32, n: u32) -> u32 {
    if b >= a { b - a } else { b + n - a }
}

/// One packet slot read out of a sender's TX ring during VALE forwarding.
#[derive(Clone, Copy, Debug, Default)]
pub struct FtEntry {
    pub buf_idx: u32,
    pub len: u16,
    pub flags: u16,
    /// Data offset inside the buffer (OFFSETS option), already validated.
    pub offset: u16,
    /// Next packet of the same destination queue ([`FT_NIL`]: none; set on
    /// the first slot only).
    pub next: u16,
    /// Number of slots of the packet (set on the first slot only).
    pub frags: u8,
}

/// End of a destination queue (greater than any index of a batch).
pub const FT_NIL: u16 = u16::MAX;

/// The packets of one gathered batch that go to one destination, as a
/// list threaded through [`FtEntry::next`] in batch order.
#[derive(Clone, Copy, Debug)]
pub struct DstQueue {
    pub head: u16,
    pub tail: u16,
}

impl DstQueue {
    pub const EMPTY: DstQueue = DstQueue {
        head: FT_NIL,
        tail: FT_NIL,
    };
}

impl Default for DstQueue {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// State owned by whoever holds the kring's busy lock (the syncing thread).
pub struct KringOwned<P: Platform> {
    /// Last head/cur accepted by the prologue, last tail published.
    pub rhead: u32,
    pub rcur: u32,
    pub rtail: u32,
    /// VALE forwarding scratch (allocated with the ring, for VALE TX rings).
    pub ft: Vec<FtEntry>,
    /// VALE forwarding: one queue per destination port of a batch, and
    /// one (the last) for what is flooded.
    pub dq: Vec<DstQueue>,
    /// VALE forwarding: the ports with a non-empty unicast queue.
    pub dlist: Vec<u8>,
    /// VALE forwarding: the destination ports of a batch, taken from the
    /// switch's port table.
    pub dsts: Vec<(u8, alloc::sync::Arc<crate::adapter::Adapter<P>>)>,
}

impl<P: Platform> Default for KringOwned<P> {
    fn default() -> Self {
        KringOwned {
            rhead: 0,
            rcur: 0,
            rtail: 0,
            ft: Vec::new(),
            dq: Vec::new(),
            dlist: Vec::new(),
            dsts: Vec::new(),
        }
    }
}

/// The kernel side of one ring.
pub struct Kring<P: Platform> {
    pub dir: Dir,
    /// Index within its direction (host rings come after the hardware ones).
    pub id: u32,
    pub num_slots: u32,
    pub nr_hwcur: AtomicU32,
    pub nr_hwtail: AtomicU32,
    /// Pipes: tail published by the peer (see `pipe.rs`).
    pub pipe_tail: AtomicU32,
    ring: AtomicPtr<u8>,
    flags: AtomicU32,
    /// Number of files that bind this ring.
    users: AtomicU32,
    /// OFFSETS option: mask applied to `slot.ptr`, maximum offset and
    /// minimum gap (see [`Offsets`]).
    pub offset_mask: AtomicU64,
    pub offset_max: AtomicU64,
    pub offset_gap: AtomicU64,
    pub owner: TryLock<KringOwned<P>>,
    /// Taken by writers from other contexts (VALE senders into this RX
    /// ring, rxsync of VALE ports) around hwtail/slot updates.
    pub q_lock: Lock<P::SpinLock, ()>,
    pub wq: P::WaitQueue,
    /// Monitor rings attached to this ring (§10.1).
    pub monitors: Lock<P::SpinLock, Vec<crate::monitor::MonLink<P>>>,
    has_monitors: core::sync::atomic::AtomicBool,
    /// Kernel-driven rings (a NIC attached to a switch, §8.5): work was
    /// queued while another context held the busy lock, which must look
    /// again before it lets go (see `bwrap.rs`).
    pub work_pending: core::sync::atomic::AtomicBool,
    /// RX rings of OS interfaces: frames were pushed and nobody was told
    /// yet (`Adapter::rx_flush`).
    pub rx_unnotified: core::sync::atomic::AtomicBool,
    /// The ring object in the region; touched only on the control path.
    obj: Lock<P::Mutex, Option<MemObj>>,
}

impl<P: Platform> Kring<P> {
    pub fn new(dir: Dir, id: u32, num_slots: u32) -> Result<Self> {
        Ok(Kring {
            dir,
            id,
            num_slots,
            nr_hwcur: AtomicU32::new(0),
            nr_hwtail: AtomicU32::new(0),
            pipe_tail: AtomicU32::new(0),
            ring: AtomicPtr::new(core::ptr::null_mut()),
            flags: AtomicU32::new(0),
            users: AtomicU32::new(0),
            offset_mask: AtomicU64::new(0),
            offset_max: AtomicU64::new(0),
            offset_gap: AtomicU64::new(0),
            owner: TryLock::new(KringOwned::default()),
            q_lock: Lock::new(()).ok_or(Errno::ENOMEM)?,
            wq: P::WaitQueue::new().ok_or(Errno::ENOMEM)?,
            obj: Lock::new(None).ok_or(Errno::ENOMEM)?,
            monitors: Lock::new(Vec::new()).ok_or(Errno::ENOMEM)?,
            has_monitors: core::sync::atomic::AtomicBool::new(false),
            work_pending: core::sync::atomic::AtomicBool::new(false),
            rx_unnotified: core::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The OFFSETS setting of the ring, if a binding asked for one.
    #[inline]
    pub fn offsets(&self) -> Option<Offsets> {
        let mask = self.offset_mask.load(Ordering::Acquire);
        (mask != 0).then(|| Offsets {
            mask,
            max: self.offset_max.load(Ordering::Acquire),
            gap: self.offset_gap.load(Ordering::Acquire),
        })
    }

    /// The shared ring, if it has been created.
    pub fn ring(&self) -> Option<RingPtr> {
        let p = core::ptr::NonNull::new(self.ring.load(Ordering::Acquire))?;
        Some(crate::shm::ring_at(p, self.num_slots))
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Acquire)
    }
    pub fn set_flag(&self, f: u32) {
        self.flags.fetch_or(f, Ordering::AcqRel);
    }
    pub fn clear_flag(&self, f: u32) {
        self.flags.fetch_and(!f, Ordering::AcqRel);
    }
    /// Cheap check for the data path: are monitors attached?
    pub fn has_monitors(&self) -> bool {
        self.has_monitors.load(Ordering::Acquire)
    }
    pub fn set_has_monitors(&self, v: bool) {
        self.has_monitors.store(v, Ordering::Release);
    }
    pub fn is_on(&self) -> bool {
        self.flags() & NKR_ON != 0
    }
    pub fn users(&self) -> u32 {
        self.users.load(Ordering::Acquire)
    }
    pub fn add_user(&self) {
        self.users.fetch_add(1, Ordering::AcqRel);
    }
    /// Returns the remaining number of users.
    pub fn drop_user(&self) -> u32 {
        let prev = self.users.load(Ordering::Acquire);
        if prev == 0 {
            return 0;
        }
        self.users.fetch_sub(1, Ordering::AcqRel) - 1
    }

    /// Region offset of the ring object, if created.
    pub fn ring_offset(&self) -> Option<u64> {
        self.obj.lock().map(|o| o.offset)
    }

    /// Create the shared ring (spec §6.2): header, a distinct buffer for each
    /// slot (len = buffer size), TX rings start with the whole ring free.
    /// Control path only.
    pub fn create_ring(&self, mem: &NetmapMem<P>, ringid: u16) -> Result<()> {
        let mut obj = self.obj.lock();
        if obj.is_some() {
            return Ok(());
        }
        let n = self.num_slots;
        let o = mem.ring_alloc(crate::shm::ring_size(n))?;
        let ring = crate::shm::ring_at(o.kaddr, n);
        let mut bufs_done = 0u32;
        let mut fail = None;
        for i in 0..n {
            match mem.buf_alloc() {
                Ok(b) => {
                    ring.set_slot(
                        i,
                        Slot {
                            buf_idx: b,
                            len: mem.buf_size() as u16,
                            flags: 0,
                            ptr: 0,
                        },
                    );
                    bufs_done += 1;
                }
                Err(e) => {
                    fail = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = fail {
            for i in 0..bufs_done {
                mem.buf_free(ring.slot(i).buf_idx);
            }
            mem.ring_free(o);
            return Err(e);
        }
        self.init_state(mem, &ring, &o, ringid);
        *obj = Some(o);
        Ok(())
    }

    /// Create the shared ring as a twin of `other` (pipes): same slots, so
    /// the two rings share one set of buffers; no buffer is allocated.
    pub fn create_ring_shared(
        &self,
        mem: &NetmapMem<P>,
        ringid: u16,
        other: &RingPtr,
    ) -> Result<()> {
        let mut obj = self.obj.lock();
        if obj.is_some() {
            return Ok(());
        }
        let n = self.num_slots;
        if other.num_slots() != n {
            return Err(Errno::EINVAL);
        }
        let o = mem.ring_alloc(crate::shm::ring_size(n))?;
        let ring = crate::shm::ring_at(o.kaddr, n);
        for i in 0..n {
            ring.set_slot(i, other.slot(i));
        }
        self.init_state(mem, &ring, &o, ringid);
        *obj = Some(o);
        Ok(())
    }

    fn init_state(&self, mem: &NetmapMem<P>, ring: &RingPtr, o: &MemObj, ringid: u16) {
        let n = self.num_slots;
        let tail = match self.dir {
            Dir::Tx => n - 1,
            Dir::Rx => 0,
        };
        let hdr = NetmapRing {
            buf_ofs: mem.buf_pool_offset() as i64 - o.offset as i64,
            num_slots: n,
            nr_buf_size: mem.buf_size(),
            ringid,
            dir: self.dir as u16,
            head: 0,
            cur: 0,
            tail,
            flags: 0,
            ts: Timeval::default(),
            offset_mask: 0,
            buf_align: 0,
            ..Default::default()
        };
        ring.init_header(&hdr);
        self.nr_hwcur.store(0, Ordering::Release);
        self.nr_hwtail.store(tail, Ordering::Release);
        self.pipe_tail.store(tail, Ordering::Release);
        self.offset_mask.store(0, Ordering::Release);
        self.offset_max.store(0, Ordering::Release);
        self.offset_gap.store(0, Ordering::Release);
        if let Some(mut own) = self.owner.try_lock() {
            own.rhead = 0;
            own.rcur = 0;
            own.rtail = tail;
        }
        self.ring.store(o.kaddr.as_ptr(), Ordering::Release);
    }

    /// Delete the shared ring: stop writers, give back every valid buffer
    /// still in a slot, free the ring object. Control path only.
    pub fn delete_ring(&self, mem: &NetmapMem<P>) {
        let mut obj = self.obj.lock();
        let Some(o) = obj.take() else { return };
        {
            // Writers from other ports check NKR_ON under q_lock.
            let _q = self.q_lock.lock();
            self.clear_flag(NKR_ON);
            self.ring.store(core::ptr::null_mut(), Ordering::Release);
        }
        // Wait for a sync in progress (it holds the busy lock) to finish.
        let mut own = self.owner.lock_spin();
        own.ft = Vec::new();
        own.dq = Vec::new();
        own.dlist = Vec::new();
        own.dsts = Vec::new();
        drop(own);
        let ring = crate::shm::ring_at(o.kaddr, self.num_slots);
        for i in 0..self.num_slots {
            let idx = ring.slot(i).buf_idx;
            // Invalid or already-free indexes are refused by buf_free (§5.3).
            mem.buf_free(idx);
        }
        mem.ring_free(o);
    }

    /// Set the ring timestamp (`ts`), §6.5.
    pub fn stamp(&self, p: &P) {
        if let Some(r) = self.ring() {
            let (s, us) = p.now();
            r.set_ts(s, us);
        }
    }

    /// Wake whoever sleeps on this ring.
    pub fn notify(&self) {
        self.wq.wake_all();
    }
}

/// TX prologue (§6.4, `nm_txsync_prologue`): returns the new head, or None
/// if the user's head/cur are invalid.
pub fn txsync_prologue(
    own: &mut KringOwned<impl Platform>,
    ring: &RingPtr,
    hwcur: u32,
    hwtail: u32,
) -> Option<u32> {
    let head = txsync_check(
        own,
        ring.head(),
        ring.cur(),
        hwcur,
        hwtail,
        ring.num_slots(),
    )?;
    if ring.tail() != own.rtail {
        ring.set_tail(own.rtail);
    }
    Some(head)
}

/// The TX prologue on head/cur read elsewhere (the CSB of a file in CSB
/// mode, §4.10): on success the kring remembers them.
pub fn txsync_check(
    own: &mut KringOwned<impl Platform>,
    head: u32,
    cur: u32,
    hwcur: u32,
    hwtail: u32,
    n: u32,
) -> Option<u32> {
    if hwcur >= n || hwtail >= n || !head_cur_valid(head, cur, own.rhead, own.rtail, n) {
        return None;
    }
    own.rhead = head;
    own.rcur = cur;
    Some(head)
}

/// RX prologue (§6.4, `nm_rxsync_prologue`): returns the new head, or None
/// if the user's head/cur are invalid. The remembered head/cur become the
/// user's values in both cases, as in the reference.
pub fn rxsync_prologue(
    own: &mut KringOwned<impl Platform>,
    ring: &RingPtr,
    hwcur: u32,
    hwtail: u32,
) -> Option<u32> {
    let head = rxsync_check(
        own,
        ring.head(),
        ring.cur(),
        hwcur,
        hwtail,
        ring.num_slots(),
    )?;
    if ring.tail() != own.rtail {
        ring.set_tail(own.rtail);
    }
    Some(head)
}

/// The RX prologue on head/cur read elsewhere (CSB mode); the kring
/// remembers them whatever the outcome, as [`rxsync_prologue`] does.
pub fn rxsync_check(
    own: &mut KringOwned<impl Platform>,
    head: u32,
    cur: u32,
    hwcur: u32,
    hwtail: u32,
    n: u32,
) -> Option<u32> {
    own.rhead = head;
    own.rcur = cur;
    head_cur_valid(head, cur, hwcur, hwtail, n).then_some(head)
}

/// The check shared by both prologues: `head` in the cyclic interval
/// [lo, hi] and `cur` in [head, hi], on a ring of `n` slots. Every value is
/// range-checked first: the wrapped-case comparisons alone would accept
/// head = cur >= n when hi < lo (and a sync would then walk towards an
/// index it never reaches).
fn head_cur_valid(head: u32, cur: u32, lo: u32, hi: u32, n: u32) -> bool {
    if head >= n || cur >= n || lo >= n || hi >= n {
        return false;
    }
    if hi >= lo {
        head >= lo && head <= hi && cur >= head && cur <= hi
    } else if head > hi && head < lo {
        false
    } else if head <= hi {
        cur >= head && cur <= hi
    } else {
        !(cur > hi && cur < head)
    }
}

/// Ring reinit after a failed prologue (§6.4, `netmap_ring_reinit`).
/// Returns true if anything was repaired.
pub fn ring_reinit(
    own: &mut KringOwned<impl Platform>,
    ring: &RingPtr,
    hwcur: u32,
    hwtail: u32,
    nbufs: u32,
    buf_size: u32,
) -> bool {
    let n = ring.num_slots();
    // The remembered head/cur become the user's values (§6.4); they are
    // replaced by the kernel's below if anything is out of range.
    // Each index is read once: userspace may change them meanwhile.
    let (head, cur, tail) = (ring.head(), ring.cur(), ring.tail());
    own.rhead = head;
    own.rcur = cur;
    let reset = head >= n || cur >= n || tail >= n;
    let errors = u32::from(reset) + reinit_slots(ring, nbufs, buf_size);
    if reset {
        own.rhead = hwcur;
        own.rcur = hwcur;
        own.rtail = hwtail;
        ring.set_head(hwcur);
        ring.set_cur(hwcur);
        ring.set_tail(hwtail);
    }
    errors != 0
}

/// Ring reinit of a file in CSB mode: as [`ring_reinit`], with head/cur
/// from the CSB and nothing written to the ring header (the application
/// does not use it in CSB mode).
pub fn ring_reinit_csb<P: Platform>(
    own: &mut KringOwned<P>,
    ring: &RingPtr,
    head: u32,
    cur: u32,
    hwcur: u32,
    hwtail: u32,
    mem: &NetmapMem<P>,
) {
    let n = ring.num_slots();
    own.rhead = head;
    own.rcur = cur;
    if head >= n || cur >= n {
        own.rhead = hwcur;
        own.rcur = hwcur;
        own.rtail = hwtail;
    }
    reinit_slots(ring, mem.buf_count(), mem.buf_size());
}

/// The slot part of a reinit: invalid buffer indexes become 0 (with length
/// 0), lengths above the buffer size 0. Returns the number of slots fixed.
fn reinit_slots(ring: &RingPtr, nbufs: u32, buf_size: u32) -> u32 {
    let mut errors = 0u32;
    for i in 0..ring.num_slots() {
        let s = ring.slot(i);
        if s.buf_idx < 2 || s.buf_idx >= nbufs {
            ring.set_slot(
                i,
                Slot {
                    buf_idx: 0,
                    len: 0,
                    ..s
                },
            );
            errors += 1;
        } else if u32::from(s.len) > buf_size {
            ring.set_slot(i, Slot { len: 0, ..s });
            errors += 1;
        }
    }
    errors
}

/// `nm_sync_finalize`: publish the kernel's tail.
pub fn sync_finalize(own: &mut KringOwned<impl Platform>, ring: &RingPtr, hwtail: u32) {
    own.rtail = hwtail;
    ring.set_tail(hwtail);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_prev_dist() {
        assert_eq!(nm_next(3, 4), 0);
        assert_eq!(nm_prev(0, 4), 3);
        assert_eq!(ring_dist(3, 1, 4), 2);
        assert_eq!(ring_dist(1, 1, 4), 0);
    }
}
