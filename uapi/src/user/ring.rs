//! Views of the netmap rings in a mapped region: [`TxRing`], [`RxRing`], received
//! packets ([`RxPacket`]) and detached buffers ([`ExtraBuf`]).
//!
//! The ring header fields that the kernel writes (`tail`, `ts`) are read atomically
//! or with volatile loads on every access; the geometry (`num_slots`, `nr_buf_size`,
//! `buf_ofs`) is read once when the port is opened and validated against the size
//! of the region ([`RingLayout`]). Slots are read and written with volatile
//! operations. Buffers are handed out as slices **only for slots that belong to
//! userspace** — `[head, tail)` in the ring protocol of spec §6.3 — so the kernel
//! never touches memory a slice refers to.

use super::sys::Mapping;
use crate::abi::{NetmapSlot, Timeval};
use crate::consts::{NETMAP_MAX_FRAGS, NS_BUF_CHANGED, NS_MOREFRAG, RingFlags, SlotFlags};
use crate::ring::{nm_ring_next, nm_ring_space, nm_tx_pending};
use core::fmt;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicU32, Ordering};

const RING_BUF_OFS: usize = 0;
const RING_NUM_SLOTS: usize = 8;
const RING_BUF_SIZE: usize = 12;
const RING_RINGID: usize = 16;
const RING_HEAD: usize = 20;
const RING_CUR: usize = 24;
const RING_TAIL: usize = 28;
const RING_FLAGS: usize = 32;
const RING_TS: usize = 40;
const RING_OFFSET_MASK: usize = 56;
const RING_SLOTS: usize = 256;
const SLOT_SIZE: usize = 16;
const SLOT_LEN: usize = 4;
const SLOT_FLAGS: usize = 6;
const SLOT_PTR: usize = 8;

/// Geometry of one ring, read once and validated against the region size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RingLayout {
    /// Region offset of the `netmap_ring`.
    pub(crate) off: usize,
    pub(crate) num_slots: u32,
    pub(crate) buf_size: u32,
    /// Region offset of buffer 0.
    pub(crate) bufs_off: usize,
    /// Number of buffers that fit between `bufs_off` and the end of the region.
    pub(crate) nbufs: u32,
    pub(crate) ringid: u16,
}

impl RingLayout {
    /// Reads and validates the ring at region offset `off`.
    pub(crate) fn read(map: &Mapping, off: usize) -> Result<Self, String> {
        let field =
            |what: &str| format!("{what} of the ring at offset {off} is outside the region");
        if !off.is_multiple_of(8) {
            return Err(format!("ring at offset {off} is not 8-byte aligned"));
        }
        let buf_ofs: i64 = map
            .read(off + RING_BUF_OFS)
            .ok_or_else(|| field("buf_ofs"))?;
        let num_slots: u32 = map
            .read(off + RING_NUM_SLOTS)
            .ok_or_else(|| field("num_slots"))?;
        let buf_size: u32 = map
            .read(off + RING_BUF_SIZE)
            .ok_or_else(|| field("nr_buf_size"))?;
        let ringid: u16 = map.read(off + RING_RINGID).ok_or_else(|| field("ringid"))?;
        if num_slots < 2 {
            return Err(format!("ring at offset {off} has {num_slots} slots"));
        }
        let end = (num_slots as usize)
            .checked_mul(SLOT_SIZE)
            .and_then(|s| s.checked_add(off + RING_SLOTS));
        if end.is_none_or(|e| e > map.len()) {
            return Err(field("the slot array"));
        }
        if buf_size == 0 {
            return Err(format!("ring at offset {off} has buffer size 0"));
        }
        let bufs_off = i64::try_from(off)
            .ok()
            .and_then(|o| o.checked_add(buf_ofs))
            .and_then(|b| usize::try_from(b).ok())
            .filter(|&b| b <= map.len())
            .ok_or_else(|| field("the buffer pool"))?;
        let nbufs = ((map.len() - bufs_off) / buf_size as usize).min(u32::MAX as usize) as u32;
        Ok(Self {
            off,
            num_slots,
            buf_size,
            bufs_off,
            nbufs,
            ringid,
        })
    }

    fn slot_off(&self, i: u32) -> usize {
        self.off + RING_SLOTS + i as usize * SLOT_SIZE
    }

    /// `head`, `cur` and `tail` of the ring header (CSB mode: the application
    /// mirrors them to and from the CSB, see `csb.rs`).
    pub(crate) fn indexes<'m>(&self, map: &'m Mapping) -> Option<[&'m AtomicU32; 3]> {
        Some([
            map.atomic_u32(self.off + RING_HEAD)?,
            map.atomic_u32(self.off + RING_CUR)?,
            map.atomic_u32(self.off + RING_TAIL)?,
        ])
    }

    /// Region offset of buffer `idx`, if it lies inside the region.
    pub(crate) fn buf_off(&self, idx: u32) -> Option<usize> {
        (idx < self.nbufs).then(|| self.bufs_off + idx as usize * self.buf_size as usize)
    }
}

/// Direction marker of [`TxRing`].
#[derive(Debug)]
pub enum Tx {}
/// Direction marker of [`RxRing`].
#[derive(Debug)]
pub enum Rx {}

/// A ring of a port, borrowed exclusively (at most one view per ring exists at a
/// time). Use the aliases [`TxRing`] and [`RxRing`].
pub struct Ring<'a, D> {
    map: &'a Mapping,
    l: RingLayout,
    /// `offset_mask` (OFFSETS option), read when the view is made: the
    /// kernel sets it at REGISTER, before any view exists.
    ofs_mask: u64,
    /// Whether this view holds the ring's claim in the mapping.
    claimed: bool,
    _dir: PhantomData<D>,
}

/// A transmit ring: fill slots in `[head, tail)`, then [`Ring::advance`] and sync.
pub type TxRing<'a> = Ring<'a, Tx>;
/// A receive ring: read slots in `[head, tail)`, then release them with
/// [`Ring::advance`] (or let [`RxPacket`] do it) and sync.
pub type RxRing<'a> = Ring<'a, Rx>;

impl<D> fmt::Debug for Ring<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("id", &self.l.ringid)
            .field("num_slots", &self.l.num_slots)
            .field("head", &self.head())
            .field("cur", &self.cur())
            .field("tail", &self.tail())
            .finish()
    }
}

impl<D> Drop for Ring<'_, D> {
    fn drop(&mut self) {
        if self.claimed {
            self.map.release(self.l.off);
        }
    }
}

/// Why a slot or buffer operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotError {
    /// The slot index is not below `num_slots`.
    OutOfRange,
    /// The slot is not in `[head, tail)`: it belongs to the kernel right now.
    NotOwned,
    /// The slot's buffer index does not address a buffer of the region.
    BadBuffer,
    /// The length is larger than the buffer size.
    TooLong,
    /// The two rings (or the buffer) live in different memory regions (mem ids).
    DifferentMemory,
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SlotError::OutOfRange => "slot index out of range",
            SlotError::NotOwned => "slot not owned by userspace (outside [head, tail))",
            SlotError::BadBuffer => "slot has an invalid buffer index",
            SlotError::TooLong => "length larger than the buffer size",
            SlotError::DifferentMemory => "buffers of different memory regions",
        })
    }
}

impl std::error::Error for SlotError {}

/// Why [`Ring::send`] did not queue a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SendError {
    /// Not enough free slots now (sync or poll, then retry).
    NoSpace,
    /// The frame needs more than [`NETMAP_MAX_FRAGS`] buffers.
    TooLong,
    /// A slot of the ring has an invalid buffer index.
    BadBuffer,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::NoSpace => "no free slot in the TX ring",
            SendError::TooLong => "frame longer than 64 buffers",
            SendError::BadBuffer => "TX slot with an invalid buffer index",
        })
    }
}

impl std::error::Error for SendError {}

/// A buffer detached from any ring (from the extra-buffer list, or swapped out of
/// a slot). The token is the only handle of the buffer: it cannot be copied, and
/// giving it to a ring or back to the list consumes it. Dropping it leaks the
/// buffer until the memory region is destroyed.
#[must_use = "a detached buffer must be put back into a slot or the extra-buffer list"]
#[derive(Debug, PartialEq, Eq)]
pub struct ExtraBuf {
    pub(crate) idx: u32,
    /// [`Mapping::id`] of the region it belongs to.
    pub(crate) region: u64,
}

impl ExtraBuf {
    /// The buffer index.
    pub fn index(&self) -> u32 {
        self.idx
    }
}

/// `i` in the cyclic interval `[head, tail)` of a ring of `n` slots.
pub(crate) fn in_window(n: u32, head: u32, tail: u32, i: u32) -> bool {
    i < n && nm_ring_space(n, head, i) < nm_ring_space(n, head, tail) && head < n && tail < n
}

/// `i + k` modulo `n`, for `i < n`, `k <= n`.
pub(crate) fn ring_add(n: u32, i: u32, k: u32) -> u32 {
    let s = u64::from(i) + u64::from(k);
    (s % u64::from(n.max(1))) as u32
}

impl<'a, D> Ring<'a, D> {
    /// A view of the ring `l`, if no other view of it exists in this process.
    pub(crate) fn claim(map: &'a Mapping, l: RingLayout) -> Option<Self> {
        if !map.claim(l.off) {
            return None;
        }
        Some(Self {
            map,
            l,
            ofs_mask: map.read(l.off + RING_OFFSET_MASK).unwrap_or(0),
            claimed: true,
            _dir: PhantomData,
        })
    }

    fn atomic(&self, field: usize) -> &'a AtomicU32 {
        self.map
            .atomic_u32(self.l.off + field)
            .expect("ring header validated when the port was opened")
    }

    /// The ring index within its direction (`ringid`; host rings come after the
    /// hardware rings).
    pub fn id(&self) -> u16 {
        self.l.ringid
    }

    /// Number of slots.
    pub fn num_slots(&self) -> u32 {
        self.l.num_slots
    }

    /// Size of each buffer (`nr_buf_size`).
    pub fn buf_size(&self) -> u32 {
        self.l.buf_size
    }

    /// `head`: first slot owned by userspace.
    pub fn head(&self) -> u32 {
        self.atomic(RING_HEAD).load(Ordering::Acquire)
    }

    /// `cur`: the wakeup point (`head <= cur <= tail`).
    pub fn cur(&self) -> u32 {
        self.atomic(RING_CUR).load(Ordering::Acquire)
    }

    /// `tail`: first slot owned by the kernel (written by the kernel on sync).
    pub fn tail(&self) -> u32 {
        self.atomic(RING_TAIL).load(Ordering::Acquire)
    }

    /// Slots available to userspace: `(tail - head) mod num_slots` (free slots on
    /// TX, received slots on RX).
    pub fn space(&self) -> u32 {
        nm_ring_space(self.l.num_slots, self.head(), self.tail())
    }

    /// No slot available to userspace (`head == tail`).
    pub fn is_empty(&self) -> bool {
        self.head() == self.tail()
    }

    /// The slot after `i`.
    pub fn next(&self, i: u32) -> u32 {
        nm_ring_next(self.l.num_slots, i)
    }

    /// The ring flags (`NR_TIMESTAMP`, `NR_FORWARD`).
    pub fn flags(&self) -> RingFlags {
        RingFlags::from_bits_retain(self.atomic(RING_FLAGS).load(Ordering::Relaxed))
    }

    /// Sets the ring flags.
    pub fn set_flags(&mut self, flags: RingFlags) {
        self.atomic(RING_FLAGS)
            .store(flags.bits(), Ordering::Relaxed);
    }

    /// The time of the last rxsync (`ts`).
    pub fn timestamp(&self) -> Timeval {
        self.map.read(self.l.off + RING_TS).unwrap_or_default()
    }

    /// `offset_mask` (non-zero only with the OFFSETS option).
    pub fn offset_mask(&self) -> u64 {
        self.map.read(self.l.off + RING_OFFSET_MASK).unwrap_or(0)
    }

    /// Whether slot `i` is in `[head, tail)`, i.e. owned by userspace.
    pub fn owns(&self, i: u32) -> bool {
        in_window(self.l.num_slots, self.head(), self.tail(), i)
    }

    /// A copy of slot `i` (`buf_idx`, `len`, `flags`, `ptr`). Panics if
    /// `i >= num_slots`.
    pub fn slot(&self, i: u32) -> NetmapSlot {
        assert!(i < self.l.num_slots, "slot {i} out of range");
        self.map
            .read(self.l.slot_off(i))
            .expect("slot array validated when the port was opened")
    }

    fn check_owned(&self, i: u32) -> Result<(), SlotError> {
        if i >= self.l.num_slots {
            Err(SlotError::OutOfRange)
        } else if !self.owns(i) {
            Err(SlotError::NotOwned)
        } else {
            Ok(())
        }
    }

    fn buf_off_of(&self, i: u32) -> Result<usize, SlotError> {
        self.l
            .buf_off(self.slot(i).buf_idx)
            .ok_or(SlotError::BadBuffer)
    }

    /// The whole buffer (`nr_buf_size` bytes) of slot `i`, which must be owned by
    /// userspace.
    pub fn buf(&self, i: u32) -> Result<&[u8], SlotError> {
        self.check_owned(i)?;
        let off = self.buf_off_of(i)?;
        self.map
            .bytes(off, self.l.buf_size as usize)
            .ok_or(SlotError::BadBuffer)
    }

    /// The whole buffer of slot `i`, writable; the slot must be owned by userspace.
    pub fn buf_mut(&mut self, i: u32) -> Result<&mut [u8], SlotError> {
        self.check_owned(i)?;
        let off = self.buf_off_of(i)?;
        self.buf_bytes_mut(off)
    }

    #[allow(unsafe_code)]
    fn buf_bytes_mut(&mut self, off: usize) -> Result<&mut [u8], SlotError> {
        // SAFETY: `off` is the buffer of a slot in [head, tail), which the kernel
        // does not access until userspace moves head past it — impossible while
        // this `&mut self` borrow (which the slice keeps) lives. No other view of
        // this ring exists (the port hands out one at a time), and distinct slots
        // hold distinct buffers, so no other reference to these bytes exists.
        unsafe { self.map.bytes_mut(off, self.l.buf_size as usize) }.ok_or(SlotError::BadBuffer)
    }

    /// Where the data of slot `i` starts in its buffer: 0, or with the
    /// OFFSETS option `ptr & offset_mask` (clamped to the buffer size).
    pub fn data_offset(&self, i: u32) -> usize {
        if self.ofs_mask == 0 {
            return 0;
        }
        ((self.slot(i).ptr & self.ofs_mask) as usize).min(self.l.buf_size as usize)
    }

    /// Sets the data offset of slot `i` (OFFSETS option; owned by
    /// userspace): the bits of `ptr` under `offset_mask`.
    pub fn set_data_offset(&mut self, i: u32, off: usize) -> Result<(), SlotError> {
        if off > self.l.buf_size as usize {
            return Err(SlotError::TooLong);
        }
        let p = self.slot(i).ptr;
        self.set_ptr(i, (p & !self.ofs_mask) | (off as u64 & self.ofs_mask))
    }

    /// The packet data of slot `i`: `len` bytes of its buffer from the data
    /// offset (`len` clamped to what the buffer holds there).
    pub fn data(&self, i: u32) -> Result<&[u8], SlotError> {
        let start = self.data_offset(i);
        let len = usize::from(self.slot(i).len).min(self.l.buf_size as usize - start);
        Ok(&self.buf(i)?[start..start + len])
    }

    /// Sets `len` of slot `i` (owned by userspace; what the buffer holds
    /// from the data offset at most).
    pub fn set_len(&mut self, i: u32, len: u16) -> Result<(), SlotError> {
        self.check_owned(i)?;
        if usize::from(len) > self.l.buf_size as usize - self.data_offset(i) {
            return Err(SlotError::TooLong);
        }
        self.write_slot_u16(i, SLOT_LEN, len);
        Ok(())
    }

    /// Sets `flags` of slot `i` (owned by userspace).
    pub fn set_slot_flags(&mut self, i: u32, flags: SlotFlags) -> Result<(), SlotError> {
        self.check_owned(i)?;
        self.write_slot_u16(i, SLOT_FLAGS, flags.bits());
        Ok(())
    }

    /// Sets `ptr` of slot `i` (owned by userspace): the user address of the data
    /// for `NS_INDIRECT` (VALE TX only), or the data offset with the OFFSETS option.
    pub fn set_ptr(&mut self, i: u32, ptr: u64) -> Result<(), SlotError> {
        self.check_owned(i)?;
        self.map
            .write(self.l.slot_off(i) + SLOT_PTR, ptr)
            .expect("slot array validated when the port was opened");
        Ok(())
    }

    /// Copies `data` into the data of slot `i` at byte `offset` (of its
    /// buffer, or behind the slot's data offset with the OFFSETS option) and
    /// sets the slot's `len` to `offset + data.len()`.
    pub fn write(&mut self, i: u32, offset: usize, data: &[u8]) -> Result<(), SlotError> {
        self.check_owned(i)?;
        let start = self.data_offset(i);
        let end = offset.checked_add(data.len()).ok_or(SlotError::TooLong)?;
        if end > self.l.buf_size as usize - start {
            return Err(SlotError::TooLong);
        }
        let off = self.buf_off_of(i)?;
        self.map
            .copy_in(off + start + offset, data)
            .ok_or(SlotError::BadBuffer)?;
        self.write_slot_u16(i, SLOT_LEN, end as u16);
        Ok(())
    }

    fn write_slot_u16(&self, i: u32, field: usize, v: u16) {
        self.map
            .write(self.l.slot_off(i) + field, v)
            .expect("slot array validated when the port was opened");
    }

    fn write_buf_idx(&self, i: u32, idx: u32) {
        self.map
            .write(self.l.slot_off(i), idx)
            .expect("slot array validated when the port was opened");
    }

    fn or_slot_flags(&self, i: u32, set: u16) {
        let f = self.slot(i).flags;
        self.write_slot_u16(i, SLOT_FLAGS, f | set);
    }

    /// Moves `head` and `cur` forward by `n` slots (at most [`Ring::space`]),
    /// giving them to the kernel at the next sync (TX: to transmit; RX: released).
    /// Returns the number of slots actually advanced.
    pub fn advance(&mut self, n: u32) -> u32 {
        let head = self.head();
        let k = n.min(self.space());
        let h = ring_add(self.l.num_slots, head, k);
        self.set_head_cur(h, h);
        k
    }

    /// Sets `cur` (the wakeup point) to `cur`, which must lie in `[head, tail]`;
    /// returns `false` (and changes nothing) otherwise.
    pub fn set_cur(&mut self, cur: u32) -> bool {
        let n = self.l.num_slots;
        let head = self.head();
        if cur >= n || nm_ring_space(n, head, cur) > self.space() {
            return false;
        }
        self.atomic(RING_CUR).store(cur, Ordering::Release);
        true
    }

    /// Asks to be woken only when slots beyond the current `tail` become available
    /// (`cur = tail`), as pkt-gen does when a TX ring is full.
    pub fn wait_for_more(&mut self) {
        let t = self.tail();
        self.atomic(RING_CUR).store(t, Ordering::Release);
    }

    fn set_head_cur(&self, head: u32, cur: u32) {
        // cur first, then head with release semantics: slot writes before this are
        // visible to the kernel once it sees the new head.
        self.atomic(RING_CUR).store(cur, Ordering::Release);
        self.atomic(RING_HEAD).store(head, Ordering::Release);
    }

    /// Swaps the buffers of slot `i` of this ring and slot `j` of `other` (zero
    /// copy), setting `NS_BUF_CHANGED` on both. Both slots must be owned by
    /// userspace and both rings must share the memory region (same mem id).
    pub fn swap_buf<E>(
        &mut self,
        i: u32,
        other: &mut Ring<'_, E>,
        j: u32,
    ) -> Result<(), SlotError> {
        if !core::ptr::eq(self.map, other.map) {
            return Err(SlotError::DifferentMemory);
        }
        self.check_owned(i)?;
        other.check_owned(j)?;
        let a = self.slot(i).buf_idx;
        let b = other.slot(j).buf_idx;
        if self.l.buf_off(a).is_none() || other.l.buf_off(b).is_none() {
            return Err(SlotError::BadBuffer);
        }
        self.write_buf_idx(i, b);
        other.write_buf_idx(j, a);
        self.or_slot_flags(i, NS_BUF_CHANGED);
        other.or_slot_flags(j, NS_BUF_CHANGED);
        Ok(())
    }

    /// Puts the detached buffer `buf` into slot `i` (owned by userspace), sets
    /// `NS_BUF_CHANGED`, and returns the slot's previous buffer. On error `buf` is
    /// given back.
    pub fn replace_buf(
        &mut self,
        i: u32,
        buf: ExtraBuf,
    ) -> Result<ExtraBuf, (SlotError, ExtraBuf)> {
        if buf.region != self.map.id() {
            return Err((SlotError::DifferentMemory, buf));
        }
        if let Err(e) = self.check_owned(i) {
            return Err((e, buf));
        }
        if self.l.buf_off(buf.idx).is_none() {
            return Err((SlotError::BadBuffer, buf));
        }
        let old = self.slot(i).buf_idx;
        if self.l.buf_off(old).is_none() {
            return Err((SlotError::BadBuffer, buf));
        }
        self.write_buf_idx(i, buf.idx);
        self.or_slot_flags(i, NS_BUF_CHANGED);
        Ok(ExtraBuf {
            idx: old,
            region: buf.region,
        })
    }
}

impl<'a> Ring<'a, Tx> {
    /// Whether slots are still being transmitted (`next(tail) != head`).
    pub fn tx_pending(&self) -> bool {
        nm_tx_pending(self.l.num_slots, self.head(), self.tail())
    }

    /// Queues `frame` at `head`: copies it into as many slots as needed (all but
    /// the last get `NS_MOREFRAG`; `NS_BUF_CHANGED` is kept), then advances
    /// `head`/`cur`. The frame is transmitted at the next txsync or poll.
    ///
    /// With the OFFSETS option each slot takes the data behind its own data
    /// offset.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), SendError> {
        let bs = self.l.buf_size as usize;
        // The slots the frame needs, each holding what its buffer has room
        // for behind the data offset.
        let space = self.space();
        let mut frags = 0u32;
        let mut room = 0usize;
        let mut i = self.head();
        while room < frame.len() || frags == 0 {
            if frags >= NETMAP_MAX_FRAGS {
                return Err(SendError::TooLong);
            }
            if frags >= space {
                return Err(if frame.len().div_ceil(bs) > NETMAP_MAX_FRAGS as usize {
                    SendError::TooLong
                } else {
                    SendError::NoSpace
                });
            }
            room += bs - self.data_offset(i);
            frags += 1;
            i = self.next(i);
        }
        let mut i = self.head();
        let mut rest = frame;
        for k in 0..frags {
            let n = rest.len().min(bs - self.data_offset(i));
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let more = k + 1 < frags;
            let keep = self.slot(i).flags & NS_BUF_CHANGED;
            self.write(i, 0, chunk).map_err(|_| SendError::BadBuffer)?;
            self.write_slot_u16(i, SLOT_FLAGS, keep | if more { NS_MOREFRAG } else { 0 });
            i = self.next(i);
        }
        self.advance(frags);
        Ok(())
    }

    /// Sets `NS_BUF_CHANGED` on every slot (pkt-gen does this before the first
    /// transmission so that every buffer gets its first copy). Only meaningful
    /// while nothing is pending.
    pub fn mark_all_buf_changed(&mut self) {
        for i in 0..self.l.num_slots {
            self.write_slot_u16(i, SLOT_FLAGS, NS_BUF_CHANGED);
        }
    }
}

impl<'a> Ring<'a, Rx> {
    /// The packet at `head`, if a complete one is available: a chain of slots
    /// with `NS_MOREFRAG` on all but the last (at most [`NETMAP_MAX_FRAGS`]).
    /// Dropping the [`RxPacket`] releases its slots (advances `head`/`cur`).
    pub fn recv(&mut self) -> Option<RxPacket<'_, 'a>> {
        let head = self.head();
        let avail = self.space();
        let mut i = head;
        for k in 1..=avail.min(NETMAP_MAX_FRAGS) {
            if self.slot(i).flags & NS_MOREFRAG == 0 || k == NETMAP_MAX_FRAGS {
                return Some(RxPacket {
                    ring: self,
                    first: head,
                    slots: k,
                });
            }
            i = self.next(i);
        }
        None
    }

    /// Releases `n` received slots (same as [`Ring::advance`]).
    pub fn release(&mut self, n: u32) -> u32 {
        self.advance(n)
    }
}

/// A received packet (one or more slots). Its slots are released when it is
/// dropped, unless [`RxPacket::keep`] is called.
pub struct RxPacket<'r, 'a> {
    ring: &'r mut Ring<'a, Rx>,
    first: u32,
    slots: u32,
}

impl fmt::Debug for RxPacket<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RxPacket")
            .field("first", &self.first)
            .field("slots", &self.slots)
            .field("len", &self.len())
            .finish()
    }
}

impl RxPacket<'_, '_> {
    /// Index of the first slot.
    pub fn slot_index(&self) -> u32 {
        self.first
    }

    /// Number of slots (fragments).
    pub fn num_frags(&self) -> u32 {
        self.slots
    }

    /// Fragment `k` (its slot's data).
    pub fn frag(&self, k: u32) -> &[u8] {
        if k >= self.slots {
            return &[];
        }
        let i = ring_add(self.ring.num_slots(), self.first, k);
        self.ring.data(i).unwrap_or(&[])
    }

    /// The fragments in order.
    pub fn frags(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.slots).map(move |k| self.frag(k))
    }

    /// The data of the first fragment (the whole packet when it has one slot).
    pub fn data(&self) -> &[u8] {
        self.frag(0)
    }

    /// Total length of all fragments.
    pub fn len(&self) -> usize {
        self.frags().map(<[u8]>::len).sum()
    }

    /// Whether the packet is empty (zero-length slots).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the whole packet to `out`.
    pub fn copy_to(&self, out: &mut Vec<u8>) {
        for f in self.frags() {
            out.extend_from_slice(f);
        }
    }

    /// Flags of the first slot.
    pub fn flags(&self) -> SlotFlags {
        SlotFlags::from_bits_retain(self.ring.slot(self.first).flags)
    }

    /// Does not release the slots on drop (they stay at `head`).
    pub fn keep(mut self) {
        self.slots = 0;
    }
}

impl Drop for RxPacket<'_, '_> {
    fn drop(&mut self) {
        if self.slots > 0 {
            self.ring.advance(self.slots);
        }
    }
}
