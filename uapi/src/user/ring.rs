//! Views of the netmap rings in a mapped region: [`TxRing`], [`RxRing`], received
//! packets ([`RxPacket`]) and detached buffers ([`ExtraBuf`]).
//!
//! The ring header fields that the kernel writes (`tail`, `ts`) are read atomically
//! or with volatile loads on every access; the geometry (`num_slots`, `nr_buf_size`,
//! `buf_ofs`) is read once when the port is opened and validated against the size
//! of the region ([`RingLayout`]). Slots are read and written field by field with
//! atomic operations. Buffers are handed out as slices **only for slots that belong
//! to userspace** — `[head, tail)` in the ring protocol of spec §6.3 — so the kernel
//! never touches memory a slice refers to.
//!
//! Per-frame loops use [`Ring::slots`]: the window `[head, tail)` is checked once
//! per batch and each [`SlotMut`] it hands out is known to be owned, so only what
//! can change per slot (the buffer index, a length) is still checked per slot.

use super::sys::{Mapping, SlotCell};
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
    /// `offset_mask` (OFFSETS option), read when a view is made ([`Ring`]):
    /// the kernel sets it at REGISTER, before any view exists. 0 here.
    pub(crate) ofs_mask: u64,
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
            ofs_mask: 0,
        })
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

    #[inline]
    fn slot_off(&self, i: u32) -> usize {
        self.off + RING_SLOTS + i as usize * SLOT_SIZE
    }

    /// Region offset of buffer `idx`, if it lies inside the region.
    #[inline]
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
    /// The header fields userspace and the kernel share, and the slot array,
    /// located once when the view is made (the layout was validated when the port
    /// was opened).
    head: &'a AtomicU32,
    cur: &'a AtomicU32,
    tail: &'a AtomicU32,
    flags: &'a AtomicU32,
    slots: &'a [SlotCell],
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
#[inline]
pub(crate) fn in_window(n: u32, head: u32, tail: u32, i: u32) -> bool {
    i < n && nm_ring_space(n, head, i) < nm_ring_space(n, head, tail) && head < n && tail < n
}

/// The buffer of slot `c` (whose ownership the caller checked), read-only.
#[inline]
fn buf_at<'m>(map: &'m Mapping, l: &RingLayout, c: &SlotCell) -> Result<&'m [u8], SlotError> {
    let off = l
        .buf_off(c.buf_idx.load(Ordering::Relaxed))
        .ok_or(SlotError::BadBuffer)?;
    map.bytes(off, l.buf_size as usize)
        .ok_or(SlotError::BadBuffer)
}

/// The buffer of slot `c`, writable.
///
/// # Safety
///
/// The slot must be in `[head, tail)` of a ring view that the caller borrows
/// exclusively (`&mut`) for as long as the slice lives, and no other slice of this
/// slot's buffer may exist in that time: then the kernel does not access the
/// buffer (userspace owns it until head moves past the slot, which needs that
/// borrow), no other view of the ring exists (one per ring and process), and
/// other slots hold other buffers.
#[inline]
#[allow(unsafe_code, clippy::mut_from_ref)]
unsafe fn buf_at_mut<'m>(
    map: &'m Mapping,
    l: &RingLayout,
    c: &SlotCell,
) -> Result<&'m mut [u8], SlotError> {
    let off = l
        .buf_off(c.buf_idx.load(Ordering::Relaxed))
        .ok_or(SlotError::BadBuffer)?;
    // SAFETY: the buffer is owned and borrowed exclusively by the caller, see
    // `# Safety`.
    unsafe { map.bytes_mut(off, l.buf_size as usize) }.ok_or(SlotError::BadBuffer)
}

/// Where the data of slot `c` starts in its buffer: 0, or with the OFFSETS
/// option `ptr & offset_mask` (clamped to the buffer size).
#[inline]
fn data_off_at(l: &RingLayout, c: &SlotCell) -> usize {
    if l.ofs_mask == 0 {
        return 0;
    }
    ((c.ptr.load(Ordering::Relaxed) & l.ofs_mask) as usize).min(l.buf_size as usize)
}

/// Sets the data offset of slot `c` (the bits of `ptr` under `offset_mask`).
#[inline]
fn set_data_off_at(l: &RingLayout, c: &SlotCell, off: usize) -> Result<(), SlotError> {
    if off > l.buf_size as usize {
        return Err(SlotError::TooLong);
    }
    let p = c.ptr.load(Ordering::Relaxed);
    c.ptr.store(
        (p & !l.ofs_mask) | (off as u64 & l.ofs_mask),
        Ordering::Relaxed,
    );
    Ok(())
}

/// The packet data of slot `c`: `len` bytes of its buffer from the data
/// offset (`len` clamped to what the buffer holds there).
#[inline]
fn data_at<'m>(map: &'m Mapping, l: &RingLayout, c: &SlotCell) -> Result<&'m [u8], SlotError> {
    let start = data_off_at(l, c);
    let len = usize::from(c.len.load(Ordering::Relaxed)).min(l.buf_size as usize - start);
    Ok(&buf_at(map, l, c)?[start..start + len])
}

/// Sets `len` of slot `c` if it fits the buffer behind the data offset.
#[inline]
fn set_len_at(l: &RingLayout, c: &SlotCell, len: u16) -> Result<(), SlotError> {
    if usize::from(len) > l.buf_size as usize - data_off_at(l, c) {
        return Err(SlotError::TooLong);
    }
    c.len.store(len, Ordering::Relaxed);
    Ok(())
}

/// Copies `data` into the data of slot `c` at byte `offset` (behind the data
/// offset) and sets `len` to `offset + data.len()`.
#[inline]
fn write_at(
    map: &Mapping,
    l: &RingLayout,
    c: &SlotCell,
    offset: usize,
    data: &[u8],
) -> Result<(), SlotError> {
    let start = data_off_at(l, c);
    let end = offset.checked_add(data.len()).ok_or(SlotError::TooLong)?;
    if end > l.buf_size as usize - start {
        return Err(SlotError::TooLong);
    }
    let off = l
        .buf_off(c.buf_idx.load(Ordering::Relaxed))
        .ok_or(SlotError::BadBuffer)?;
    map.copy_in(off + start + offset, data)
        .ok_or(SlotError::BadBuffer)?;
    c.len.store(end as u16, Ordering::Relaxed);
    Ok(())
}

/// `i + k` modulo `n`, for `i < n`, `k <= n`.
#[inline]
pub(crate) fn ring_add(n: u32, i: u32, k: u32) -> u32 {
    let s = u64::from(i) + u64::from(k);
    (s % u64::from(n.max(1))) as u32
}

impl<'a, D> Ring<'a, D> {
    /// A view of the ring `l`, if no other view of it exists in this process.
    pub(crate) fn claim(map: &'a Mapping, l: RingLayout) -> Option<Self> {
        let header = |field: usize| {
            map.atomic_u32(l.off + field)
                .expect("ring header validated when the port was opened")
        };
        let (head, cur, tail, flags) = (
            header(RING_HEAD),
            header(RING_CUR),
            header(RING_TAIL),
            header(RING_FLAGS),
        );
        let slots = map
            .slot_cells(l.slot_off(0), l.num_slots as usize)
            .expect("slot array validated when the port was opened");
        if !map.claim(l.off) {
            return None;
        }
        let l = RingLayout {
            ofs_mask: map.read(l.off + RING_OFFSET_MASK).unwrap_or(0),
            ..l
        };
        Some(Self {
            map,
            l,
            head,
            cur,
            tail,
            flags,
            slots,
            claimed: true,
            _dir: PhantomData,
        })
    }

    /// The cell of slot `i`. Panics if `i >= num_slots`.
    #[inline]
    fn cell(&self, i: u32) -> &'a SlotCell {
        match self.slots.get(i as usize) {
            Some(c) => c,
            None => panic!("slot {i} out of range"),
        }
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
    #[inline]
    pub fn head(&self) -> u32 {
        self.head.load(Ordering::Acquire)
    }

    /// `cur`: the wakeup point (`head <= cur <= tail`).
    #[inline]
    pub fn cur(&self) -> u32 {
        self.cur.load(Ordering::Acquire)
    }

    /// `tail`: first slot owned by the kernel (written by the kernel on sync).
    #[inline]
    pub fn tail(&self) -> u32 {
        self.tail.load(Ordering::Acquire)
    }

    /// Slots available to userspace: `(tail - head) mod num_slots` (free slots on
    /// TX, received slots on RX).
    #[inline]
    pub fn space(&self) -> u32 {
        nm_ring_space(self.l.num_slots, self.head(), self.tail())
    }

    /// No slot available to userspace (`head == tail`).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.head() == self.tail()
    }

    /// The slot after `i`.
    #[inline]
    pub fn next(&self, i: u32) -> u32 {
        nm_ring_next(self.l.num_slots, i)
    }

    /// The ring flags (`NR_TIMESTAMP`, `NR_FORWARD`).
    #[inline]
    pub fn flags(&self) -> RingFlags {
        RingFlags::from_bits_retain(self.flags.load(Ordering::Relaxed))
    }

    /// Sets the ring flags.
    #[inline]
    pub fn set_flags(&mut self, flags: RingFlags) {
        self.flags.store(flags.bits(), Ordering::Relaxed);
    }

    /// The time of the last rxsync (`ts`).
    pub fn timestamp(&self) -> Timeval {
        self.map.read(self.l.off + RING_TS).unwrap_or_default()
    }

    /// `offset_mask` (non-zero only with the OFFSETS option).
    pub fn offset_mask(&self) -> u64 {
        self.l.ofs_mask
    }

    /// Whether slot `i` is in `[head, tail)`, i.e. owned by userspace.
    pub fn owns(&self, i: u32) -> bool {
        in_window(self.l.num_slots, self.head(), self.tail(), i)
    }

    /// A copy of slot `i` (`buf_idx`, `len`, `flags`, `ptr`). Panics if
    /// `i >= num_slots`.
    pub fn slot(&self, i: u32) -> NetmapSlot {
        self.cell(i).get()
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

    /// The whole buffer (`nr_buf_size` bytes) of slot `i`, which must be owned by
    /// userspace.
    #[inline]
    pub fn buf(&self, i: u32) -> Result<&[u8], SlotError> {
        self.check_owned(i)?;
        buf_at(self.map, &self.l, self.cell(i))
    }

    /// The whole buffer of slot `i`, writable; the slot must be owned by userspace.
    #[inline]
    #[allow(unsafe_code)]
    pub fn buf_mut(&mut self, i: u32) -> Result<&mut [u8], SlotError> {
        self.check_owned(i)?;
        // SAFETY: slot `i` is in [head, tail) (checked above) and the slice keeps
        // this `&mut self` borrow, so no other slice of this ring's buffers exists
        // meanwhile and head cannot move past the slot.
        unsafe { buf_at_mut(self.map, &self.l, self.cell(i)) }
    }

    /// Where the data of slot `i` starts in its buffer: 0, or with the
    /// OFFSETS option `ptr & offset_mask` (clamped to the buffer size).
    #[inline]
    pub fn data_offset(&self, i: u32) -> usize {
        data_off_at(&self.l, self.cell(i))
    }

    /// Sets the data offset of slot `i` (OFFSETS option; owned by
    /// userspace): the bits of `ptr` under `offset_mask`.
    pub fn set_data_offset(&mut self, i: u32, off: usize) -> Result<(), SlotError> {
        self.check_owned(i)?;
        set_data_off_at(&self.l, self.cell(i), off)
    }

    /// The packet data of slot `i`: `len` bytes of its buffer from the data
    /// offset (`len` clamped to what the buffer holds there).
    #[inline]
    pub fn data(&self, i: u32) -> Result<&[u8], SlotError> {
        self.check_owned(i)?;
        data_at(self.map, &self.l, self.cell(i))
    }

    /// Sets `len` of slot `i` (owned by userspace; what the buffer holds from
    /// the data offset at most).
    #[inline]
    pub fn set_len(&mut self, i: u32, len: u16) -> Result<(), SlotError> {
        self.check_owned(i)?;
        set_len_at(&self.l, self.cell(i), len)
    }

    /// Sets `flags` of slot `i` (owned by userspace).
    pub fn set_slot_flags(&mut self, i: u32, flags: SlotFlags) -> Result<(), SlotError> {
        self.check_owned(i)?;
        self.cell(i).flags.store(flags.bits(), Ordering::Relaxed);
        Ok(())
    }

    /// Sets `ptr` of slot `i` (owned by userspace): the user address of the data
    /// for `NS_INDIRECT` (VALE TX only), or the data offset with the OFFSETS option.
    #[inline]
    pub fn set_ptr(&mut self, i: u32, ptr: u64) -> Result<(), SlotError> {
        self.check_owned(i)?;
        self.cell(i).ptr.store(ptr, Ordering::Relaxed);
        Ok(())
    }

    /// Copies `data` into the data of slot `i` at byte `offset` (of its
    /// buffer, or behind the slot's data offset with the OFFSETS option) and
    /// sets the slot's `len` to `offset + data.len()`.
    #[inline]
    pub fn write(&mut self, i: u32, offset: usize, data: &[u8]) -> Result<(), SlotError> {
        self.check_owned(i)?;
        write_at(self.map, &self.l, self.cell(i), offset, data)
    }

    fn write_buf_idx(&self, i: u32, idx: u32) {
        self.cell(i).buf_idx.store(idx, Ordering::Relaxed);
    }

    fn or_slot_flags(&self, i: u32, set: u16) {
        self.cell(i).flags.fetch_or(set, Ordering::Relaxed);
    }

    /// Moves `head` and `cur` forward by `n` slots (at most [`Ring::space`]),
    /// giving them to the kernel at the next sync (TX: to transmit; RX: released).
    /// Returns the number of slots actually advanced.
    #[inline]
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
        self.cur.store(cur, Ordering::Release);
        true
    }

    /// Asks to be woken only when slots beyond the current `tail` become available
    /// (`cur = tail`), as pkt-gen does when a TX ring is full.
    pub fn wait_for_more(&mut self) {
        let t = self.tail();
        self.cur.store(t, Ordering::Release);
    }

    fn set_head_cur(&self, head: u32, cur: u32) {
        // cur first, then head with release semantics: slot writes before this are
        // visible to the kernel once it sees the new head.
        self.cur.store(cur, Ordering::Release);
        self.head.store(head, Ordering::Release);
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

impl<'a, D> Ring<'a, D> {
    /// The first `max` slots that userspace owns, `[head, head + min(max, space))`,
    /// handed out one after the other by [`Slots::next_slot`] to be filled (TX) or
    /// read (RX); [`Slots::advance`] then gives the slots handed out to the kernel.
    /// Ownership is checked once here instead of on every slot access, which is
    /// what per-frame loops want; the buffer index and lengths are still checked
    /// per slot.
    #[inline]
    pub fn slots(&mut self, max: u32) -> Slots<'_, 'a, D> {
        let (n, head, tail) = (self.l.num_slots, self.head(), self.tail());
        // Indexes outside the ring (a corrupted header) give an empty window, as
        // `owns` would refuse every slot.
        let left = if head < n && tail < n {
            nm_ring_space(n, head, tail).min(max)
        } else {
            0
        };
        Slots {
            next: head,
            left,
            len: left,
            ring: self,
        }
    }
}

/// A window of slots owned by userspace at the start of a ring (see
/// [`Ring::slots`]). It borrows the ring exclusively, so `head` cannot move and
/// no other access to the ring's slots happens while it lives.
pub struct Slots<'r, 'a, D> {
    ring: &'r mut Ring<'a, D>,
    next: u32,
    left: u32,
    /// Size of the window.
    len: u32,
}

impl<D> fmt::Debug for Slots<'_, '_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slots")
            .field("ring", &self.ring)
            .field("next", &self.next)
            .field("left", &self.left)
            .field("len", &self.len)
            .finish()
    }
}

impl<D> Slots<'_, '_, D> {
    /// The next slot of the window, or `None` when it is exhausted. One slot at a
    /// time: the previous one must be dropped first.
    #[inline]
    pub fn next_slot(&mut self) -> Option<SlotMut<'_>> {
        if self.left == 0 {
            return None;
        }
        let i = self.next;
        self.left -= 1;
        self.next = nm_ring_next(self.ring.l.num_slots, i);
        Some(SlotMut {
            map: self.ring.map,
            l: &self.ring.l,
            cell: self.ring.cell(i),
            index: i,
        })
    }

    /// Slots not handed out yet.
    #[inline]
    pub fn remaining(&self) -> u32 {
        self.left
    }

    /// Slots handed out so far.
    #[inline]
    pub fn taken(&self) -> u32 {
        self.len - self.left
    }

    /// Moves `head` and `cur` past the slots handed out (TX: to be transmitted at
    /// the next sync; RX: released). Returns their number.
    #[inline]
    pub fn advance(self) -> u32 {
        self.ring.advance(self.len - self.left)
    }
}

/// One slot of a [`Slots`] window: owned by userspace, so its fields can be read
/// and written without further ownership checks; its buffer index is checked
/// when the buffer is used, lengths against the buffer size.
pub struct SlotMut<'s> {
    map: &'s Mapping,
    l: &'s RingLayout,
    cell: &'s SlotCell,
    index: u32,
}

impl fmt::Debug for SlotMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotMut")
            .field("index", &self.index)
            .field("slot", &self.get())
            .finish()
    }
}

impl SlotMut<'_> {
    /// The slot's index in the ring.
    #[inline]
    pub fn index(&self) -> u32 {
        self.index
    }

    /// A copy of the slot.
    #[inline]
    pub fn get(&self) -> NetmapSlot {
        self.cell.get()
    }

    /// `len`.
    #[inline]
    pub fn len(&self) -> u16 {
        self.cell.len.load(Ordering::Relaxed)
    }

    /// `len == 0`.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `flags`.
    #[inline]
    pub fn flags(&self) -> SlotFlags {
        SlotFlags::from_bits_retain(self.cell.flags.load(Ordering::Relaxed))
    }

    /// `buf_idx`.
    #[inline]
    pub fn buf_idx(&self) -> u32 {
        self.cell.buf_idx.load(Ordering::Relaxed)
    }

    /// Sets `len` (what the buffer holds from the data offset at most).
    #[inline]
    pub fn set_len(&mut self, len: u16) -> Result<(), SlotError> {
        set_len_at(self.l, self.cell, len)
    }

    /// Where the data starts in the buffer (see [`Ring::data_offset`]).
    #[inline]
    pub fn data_offset(&self) -> usize {
        data_off_at(self.l, self.cell)
    }

    /// Sets the data offset (see [`Ring::set_data_offset`]).
    #[inline]
    pub fn set_data_offset(&mut self, off: usize) -> Result<(), SlotError> {
        set_data_off_at(self.l, self.cell, off)
    }

    /// Sets `flags`.
    #[inline]
    pub fn set_flags(&mut self, flags: SlotFlags) {
        self.cell.flags.store(flags.bits(), Ordering::Relaxed);
    }

    /// Sets `ptr` (see [`Ring::set_ptr`]).
    #[inline]
    pub fn set_ptr(&mut self, ptr: u64) {
        self.cell.ptr.store(ptr, Ordering::Relaxed);
    }

    /// The whole buffer (`nr_buf_size` bytes).
    #[inline]
    pub fn buf(&self) -> Result<&[u8], SlotError> {
        buf_at(self.map, self.l, self.cell)
    }

    /// The whole buffer, writable.
    #[inline]
    #[allow(unsafe_code)]
    pub fn buf_mut(&mut self) -> Result<&mut [u8], SlotError> {
        // SAFETY: the slot is in [head, tail) of a ring that the `Slots` window
        // borrows exclusively, and the slice keeps `&mut self`, which keeps the
        // window's `&mut` borrow (one slot at a time): no other slice of this
        // buffer exists meanwhile and head cannot move past the slot.
        unsafe { buf_at_mut(self.map, self.l, self.cell) }
    }

    /// The packet data: `len` bytes of the buffer from the data offset (`len`
    /// clamped to what the buffer holds there).
    #[inline]
    pub fn data(&self) -> Result<&[u8], SlotError> {
        data_at(self.map, self.l, self.cell)
    }

    /// Copies `data` into the buffer at byte `offset` behind the data offset
    /// and sets `len` to `offset + data.len()`.
    #[inline]
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), SlotError> {
        write_at(self.map, self.l, self.cell, offset, data)
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
            let flags = keep | if more { NS_MOREFRAG } else { 0 };
            self.cell(i).flags.store(flags, Ordering::Relaxed);
            i = self.next(i);
        }
        self.advance(frags);
        Ok(())
    }

    /// Sets `NS_BUF_CHANGED` on every slot (pkt-gen does this before the first
    /// transmission so that every buffer gets its first copy). Only meaningful
    /// while nothing is pending.
    pub fn mark_all_buf_changed(&mut self) {
        for c in self.slots {
            c.flags.store(NS_BUF_CHANGED, Ordering::Relaxed);
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
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.frag(0)
    }

    /// Total length of all fragments.
    #[inline]
    pub fn len(&self) -> usize {
        self.frags().map(<[u8]>::len).sum()
    }

    /// Whether the packet is empty (zero-length slots).
    #[inline]
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
    #[inline]
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
