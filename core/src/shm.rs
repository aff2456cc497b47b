//! Access to memory shared with userspace: rings, slots, netmap_if objects
//! and packet buffers.
//!
//! Userspace can write any of this memory at any moment. Following rust-vmm's
//! treatment of guest memory, nothing here hands out Rust references into
//! shared memory: every field is read once (atomically or volatile) into a
//! local value, and the caller validates the copy. Indexes are bounds-checked
//! against the kernel's own sizes (never against values read from shared
//! memory), so a logic error elsewhere cannot turn into an out-of-bounds
//! access. This module and `sync` hold almost all of the core's `unsafe`.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};
use netmap_uapi::{NetmapIf, NetmapRing, NetmapSlot};

const RING_HEAD: usize = core::mem::offset_of!(NetmapRing, head);
const RING_CUR: usize = core::mem::offset_of!(NetmapRing, cur);
const RING_TAIL: usize = core::mem::offset_of!(NetmapRing, tail);
const RING_FLAGS: usize = core::mem::offset_of!(NetmapRing, flags);
const RING_HDR: usize = core::mem::size_of::<NetmapRing>();
const SLOT_SIZE: usize = core::mem::size_of::<NetmapSlot>();
const SLOT_LEN: usize = core::mem::offset_of!(NetmapSlot, len);
const SLOT_FLAGS: usize = core::mem::offset_of!(NetmapSlot, flags);
const SLOT_PTR: usize = core::mem::offset_of!(NetmapSlot, ptr);
// The data path reads `buf_idx`, `len`, `flags` as one 8-byte word and
// writes `len`, `flags` as one 4-byte word.
const _: () = assert!(SLOT_LEN == 4 && SLOT_FLAGS == 6 && SLOT_PTR == 8 && SLOT_SIZE == 16);
const NIFP_HDR: usize = core::mem::size_of::<NetmapIf>();

/// Bytes needed for a ring object of `num_slots` slots.
pub const fn ring_size(num_slots: u32) -> usize {
    RING_HDR + SLOT_SIZE * num_slots as usize
}

/// Bytes needed for a netmap_if with `nrings` entries in `ring_ofs`.
pub const fn nifp_size(nrings: usize) -> usize {
    NIFP_HDR + 8 * nrings
}

/// A slot descriptor read out of (or to be written into) a ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    pub buf_idx: u32,
    pub len: u16,
    pub flags: u16,
    pub ptr: u64,
}

/// A slot as the two 8-byte words of its memory (see
/// [`RingPtr::slot_words`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotWords([u64; 2]);

impl SlotWords {
    const FLAGS_SHIFT: u32 = if cfg!(target_endian = "little") {
        48
    } else {
        0
    };

    /// The slot's `flags`.
    #[inline]
    pub fn flags(&self) -> u16 {
        (self.0[0] >> Self::FLAGS_SHIFT) as u16
    }

    /// The same slot with `flags` cleared of `f`.
    #[inline]
    pub fn without_flags(self, f: u16) -> Self {
        SlotWords([self.0[0] & !(u64::from(f) << Self::FLAGS_SHIFT), self.0[1]])
    }
}

/// A `netmap_ring` object in kernel memory that userspace also maps.
///
/// The pointer stays valid while the ring object is allocated; the owner
/// (the kring) guarantees that, see `kring.rs`.
#[derive(Clone, Copy)]
pub struct RingPtr {
    base: NonNull<u8>,
    num_slots: u32,
}

// SAFETY: RingPtr only performs atomic or volatile accesses to memory that
// is designed to be shared between threads (and with userspace).
unsafe impl Send for RingPtr {}
// SAFETY: as above.
unsafe impl Sync for RingPtr {}

impl RingPtr {
    /// # Safety
    ///
    /// `base` points to at least `ring_size(num_slots)` bytes, 8-byte aligned,
    /// that stay allocated for as long as this value (or a copy) is used.
    pub unsafe fn new(base: NonNull<u8>, num_slots: u32) -> Self {
        RingPtr { base, num_slots }
    }

    pub fn num_slots(&self) -> u32 {
        self.num_slots
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        // SAFETY: `off` is one of the constant, 4-byte aligned u32 field
        // offsets of the header, inside the object (see `new`); AtomicU32 has
        // the layout of u32 and concurrent access is what atomics are for.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().wrapping_add(off).cast::<u32>()) }
    }

    pub fn head(&self) -> u32 {
        self.word(RING_HEAD).load(Ordering::Acquire)
    }
    pub fn cur(&self) -> u32 {
        self.word(RING_CUR).load(Ordering::Acquire)
    }
    pub fn tail(&self) -> u32 {
        self.word(RING_TAIL).load(Ordering::Acquire)
    }
    pub fn flags(&self) -> u32 {
        self.word(RING_FLAGS).load(Ordering::Relaxed)
    }
    pub fn set_head(&self, v: u32) {
        self.word(RING_HEAD).store(v, Ordering::Release)
    }
    /// The user's `flags` word (for tests and fuzzing: the kernel only
    /// reads it).
    pub fn set_flags(&self, v: u32) {
        self.word(RING_FLAGS).store(v, Ordering::Relaxed)
    }
    pub fn set_cur(&self, v: u32) {
        self.word(RING_CUR).store(v, Ordering::Release)
    }
    /// Publish `tail`: the release store orders every earlier slot write.
    pub fn set_tail(&self, v: u32) {
        self.word(RING_TAIL).store(v, Ordering::Release)
    }

    /// Write the whole header (kernel-owned fields, head/cur/tail and ts).
    pub fn init_header(&self, hdr: &NetmapRing) {
        let p = self.base.as_ptr().cast::<NetmapRing>();
        // SAFETY: the object holds at least a full header (see `new`), is
        // 8-byte aligned (clusters are page aligned, objects 64-byte aligned),
        // and a volatile write tolerates concurrent user access.
        unsafe { p.write_volatile(*hdr) }
    }

    /// Set the timestamp (`ts`).
    pub fn set_ts(&self, sec: i64, usec: i64) {
        let off = core::mem::offset_of!(NetmapRing, ts);
        let p = self.base.as_ptr().wrapping_add(off).cast::<[i64; 2]>();
        // SAFETY: `ts` is an 8-byte aligned 16-byte field of the header.
        unsafe { p.write_volatile([sec, usec]) }
    }

    fn slot_ptr(&self, i: u32) -> *mut NetmapSlot {
        // Indexes come from validated kernel state; a logic error must still
        // not escape the ring object.
        debug_assert!(i < self.num_slots, "slot {i} of {}", self.num_slots);
        let i = if i < self.num_slots { i } else { 0 };
        self.base
            .as_ptr()
            .wrapping_add(RING_HDR + SLOT_SIZE * i as usize)
            .cast::<NetmapSlot>()
    }

    /// Read slot `i` once.
    pub fn slot(&self, i: u32) -> Slot {
        // SAFETY: slot_ptr stays inside the object (index clamped), slots are
        // 8-byte aligned, and NetmapSlot is plain data valid for any bits.
        let s = unsafe { self.slot_ptr(i).read_volatile() };
        Slot {
            buf_idx: s.buf_idx,
            len: s.len,
            flags: s.flags,
            ptr: s.ptr,
        }
    }

    /// Read `buf_idx`, `len` and `flags` of slot `i` (not `ptr`) in one
    /// 8-byte access: the data path's view of a slot.
    #[inline]
    pub fn slot_desc(&self, i: u32) -> (u32, u16, u16) {
        let p = self.slot_ptr(i).cast::<u64>();
        // SAFETY: slot_ptr stays inside the object (index clamped) and slots
        // are 8-byte aligned; any bits are a valid u64.
        let v = unsafe { p.read_volatile() };
        if cfg!(target_endian = "little") {
            (v as u32, (v >> 32) as u16, (v >> 48) as u16)
        } else {
            ((v >> 32) as u32, (v >> 16) as u16, v as u16)
        }
    }

    /// Slot `i` as two raw words (`buf_idx`/`len`/`flags`, then `ptr`),
    /// read once: for moving a slot to another ring unchanged.
    #[inline]
    pub fn slot_words(&self, i: u32) -> SlotWords {
        let p = self.slot_ptr(i).cast::<u64>();
        // SAFETY: slot_ptr stays inside the object and slots are 16 bytes,
        // 8-byte aligned: both words are in bounds; any bits are valid.
        let a = unsafe { p.read_volatile() };
        // SAFETY: as above.
        let b = unsafe { p.wrapping_add(1).read_volatile() };
        SlotWords([a, b])
    }

    /// Write slot `i` from two raw words (see [`Self::slot_words`]).
    #[inline]
    pub fn set_slot_words(&self, i: u32, w: SlotWords) {
        let p = self.slot_ptr(i).cast::<u64>();
        // SAFETY: as in `slot_words`.
        unsafe { p.write_volatile(w.0[0]) };
        // SAFETY: as above.
        unsafe { p.wrapping_add(1).write_volatile(w.0[1]) };
    }

    /// Read only `buf_idx` of slot `i`.
    #[inline]
    pub fn slot_buf_idx(&self, i: u32) -> u32 {
        let p = self.slot_ptr(i).cast::<u32>();
        // SAFETY: `buf_idx` is the aligned u32 at the start of an in-bounds
        // slot.
        unsafe { p.read_volatile() }
    }

    /// Read only `ptr` of slot `i` (NS_INDIRECT payload address).
    pub fn slot_user_ptr(&self, i: u32) -> u64 {
        let p = self
            .slot_ptr(i)
            .cast::<u8>()
            .wrapping_add(SLOT_PTR)
            .cast::<u64>();
        // SAFETY: `ptr` is the aligned u64 at offset 8 of an in-bounds slot.
        unsafe { p.read_volatile() }
    }

    /// Write only `ptr` of slot `i` (OFFSETS: the initial data offset).
    pub fn set_slot_user_ptr(&self, i: u32, v: u64) {
        let p = self
            .slot_ptr(i)
            .cast::<u8>()
            .wrapping_add(SLOT_PTR)
            .cast::<u64>();
        // SAFETY: `ptr` is the aligned u64 at offset 8 of an in-bounds slot.
        unsafe { p.write_volatile(v) }
    }

    /// Publish the ring's `offset_mask` (OFFSETS option, §4.11).
    pub fn set_offset_mask(&self, v: u64) {
        let off = core::mem::offset_of!(NetmapRing, offset_mask);
        let p = self.base.as_ptr().wrapping_add(off).cast::<u64>();
        // SAFETY: `offset_mask` is an 8-byte aligned u64 of the header,
        // written only by the kernel.
        unsafe { p.write_volatile(v) }
    }

    /// Write `len` and `flags` of slot `i` in one 4-byte access (the
    /// buffer stays).
    #[inline]
    pub fn set_len_flags(&self, i: u32, len: u16, flags: u16) {
        let p = self
            .slot_ptr(i)
            .cast::<u8>()
            .wrapping_add(SLOT_LEN)
            .cast::<u32>();
        let v = if cfg!(target_endian = "little") {
            u32::from(len) | (u32::from(flags) << 16)
        } else {
            (u32::from(len) << 16) | u32::from(flags)
        };
        // SAFETY: `len` and `flags` form the 4-byte aligned word at offset 4
        // of an in-bounds slot.
        unsafe { p.write_volatile(v) }
    }

    /// Write slot `i`.
    pub fn set_slot(&self, i: u32, s: Slot) {
        let v = NetmapSlot {
            buf_idx: s.buf_idx,
            len: s.len,
            flags: s.flags,
            ptr: s.ptr,
        };
        // SAFETY: as in `slot`.
        unsafe { self.slot_ptr(i).write_volatile(v) }
    }

    /// Write only `len` and `flags` of slot `i` (the buffer stays).
    pub fn set_slot_len_flags(&self, i: u32, len: u16, flags: u16) {
        let p = self.slot_ptr(i).cast::<u8>();
        let lenp = p
            .wrapping_add(core::mem::offset_of!(NetmapSlot, len))
            .cast::<u16>();
        let flagsp = p
            .wrapping_add(core::mem::offset_of!(NetmapSlot, flags))
            .cast::<u16>();
        // SAFETY: `len` is an aligned u16 field of an in-bounds slot.
        unsafe { lenp.write_volatile(len) };
        // SAFETY: `flags` is an aligned u16 field of an in-bounds slot.
        unsafe { flagsp.write_volatile(flags) };
    }

    /// Clear NS_BUF_CHANGED on the slots [from, to) (slots handed back to
    /// the user, §2.6).
    pub fn clear_buf_changed(&self, from: u32, to: u32) {
        let n = self.num_slots;
        let mut j = from;
        while j != to && j < n {
            let f = self.slot_flags(j);
            if f & netmap_uapi::NS_BUF_CHANGED != 0 {
                self.set_slot_flags(j, f & !netmap_uapi::NS_BUF_CHANGED);
            }
            j = if j + 1 == n { 0 } else { j + 1 };
        }
    }

    /// Read only `flags` of slot `i`.
    #[inline]
    pub fn slot_flags(&self, i: u32) -> u16 {
        let p = self
            .slot_ptr(i)
            .cast::<u8>()
            .wrapping_add(SLOT_FLAGS)
            .cast::<u16>();
        // SAFETY: `flags` is an aligned u16 field of an in-bounds slot.
        unsafe { p.read_volatile() }
    }

    /// Write only `flags` of slot `i`.
    pub fn set_slot_flags(&self, i: u32, flags: u16) {
        let p = self.slot_ptr(i).cast::<u8>();
        let flagsp = p
            .wrapping_add(core::mem::offset_of!(NetmapSlot, flags))
            .cast::<u16>();
        // SAFETY: `flags` is an aligned u16 field of an in-bounds slot.
        unsafe { flagsp.write_volatile(flags) };
    }
}

/// A `netmap_if` object in kernel memory that userspace also maps.
#[derive(Clone, Copy)]
pub struct NifpPtr {
    base: NonNull<u8>,
    nrings: usize,
}

// SAFETY: only volatile accesses to shared memory.
unsafe impl Send for NifpPtr {}
// SAFETY: as above.
unsafe impl Sync for NifpPtr {}

impl NifpPtr {
    /// # Safety
    ///
    /// `base` points to at least `nifp_size(nrings)` bytes, 8-byte aligned,
    /// valid while this value is used.
    pub unsafe fn new(base: NonNull<u8>, nrings: usize) -> Self {
        NifpPtr { base, nrings }
    }

    /// Write the fixed header.
    pub fn set_header(&self, hdr: &NetmapIf) {
        // SAFETY: the object holds the header, aligned (see `new`).
        unsafe { self.base.as_ptr().cast::<NetmapIf>().write_volatile(*hdr) }
    }

    /// Read the fixed header once.
    pub fn header(&self) -> NetmapIf {
        // SAFETY: as in `set_header`; NetmapIf is plain data.
        unsafe { self.base.as_ptr().cast::<NetmapIf>().read_volatile() }
    }

    /// Set `ring_ofs[i]`.
    pub fn set_ring_ofs(&self, i: usize, v: i64) {
        assert!(i < self.nrings);
        let p = self
            .base
            .as_ptr()
            .wrapping_add(NIFP_HDR + 8 * i)
            .cast::<i64>();
        // SAFETY: i < nrings, so the entry is inside the object; 8-aligned.
        unsafe { p.write_volatile(v) }
    }

    /// Read `ni_bufs_head` (user-writable) once.
    pub fn bufs_head(&self) -> u32 {
        let off = core::mem::offset_of!(NetmapIf, ni_bufs_head);
        // SAFETY: an aligned u32 field of the header.
        unsafe {
            self.base
                .as_ptr()
                .wrapping_add(off)
                .cast::<u32>()
                .read_volatile()
        }
    }
}

/// One packet buffer of a memory region.
#[derive(Clone, Copy)]
pub struct BufRef<'a> {
    ptr: NonNull<u8>,
    size: u32,
    _mem: core::marker::PhantomData<&'a ()>,
}

impl BufRef<'_> {
    /// # Safety
    ///
    /// `ptr` points to `size` bytes that stay allocated for the lifetime
    /// `'a` (the memory region the buffer belongs to).
    pub unsafe fn new(ptr: NonNull<u8>, size: u32) -> Self {
        BufRef {
            ptr,
            size,
            _mem: core::marker::PhantomData,
        }
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Copy `len` bytes from `src` at `src_off` to `self` at `off`.
    /// Ranges are clamped to both buffers; returns the bytes copied.
    pub fn copy_from(&self, off: usize, src: &BufRef<'_>, src_off: usize, len: usize) -> usize {
        let room = (self.size as usize).saturating_sub(off);
        let avail = (src.size as usize).saturating_sub(src_off);
        let n = len.min(room).min(avail);
        if n == 0 {
            return 0;
        }
        // SAFETY: both ranges are inside their buffers (clamped above).
        // Buffers are distinct objects or the very same one; `copy` (memmove)
        // is correct in both cases. Userspace may write concurrently: the
        // bytes copied are then unspecified, never out of bounds.
        unsafe {
            core::ptr::copy(
                src.ptr.as_ptr().wrapping_add(src_off),
                self.ptr.as_ptr().wrapping_add(off),
                n,
            )
        };
        n
    }

    /// The destination and source MAC addresses of the Ethernet header at
    /// `off` (6 bytes each, byte 0 in the low bits), or None if the buffer
    /// cannot hold the 14-byte header there.
    #[inline]
    pub fn macs(&self, off: usize) -> Option<(u64, u64)> {
        if off.checked_add(14)? > self.size as usize {
            return None;
        }
        let p = self.ptr.as_ptr().wrapping_add(off);
        // SAFETY: [off, off + 14) is inside the buffer (checked above), so
        // are the 8-byte reads at off and off + 6; they are unaligned reads
        // of plain bytes that userspace may change meanwhile (the values
        // are then unspecified, never out of bounds).
        let d = unsafe { p.cast::<u64>().read_unaligned() };
        // SAFETY: as above.
        let s = unsafe { p.wrapping_add(6).cast::<u64>().read_unaligned() };
        const MAC: u64 = 0xffff_ffff_ffff;
        Some((u64::from_le(d) & MAC, u64::from_le(s) & MAC))
    }

    /// Copy a frame of `len` bytes at `src_off` of `src` to the start of
    /// this buffer (clamped to both buffers); returns the bytes copied.
    ///
    /// Tuned for the switch's small frames: a frame at the start of a
    /// buffer, between buffers whose sizes are multiples of 8 (all pool
    /// buffers: objects are multiples of 64 bytes) and 8-byte aligned, is
    /// copied in whole 8-byte words (up to 7 bytes past the frame, still
    /// inside both buffers) with no call.
    #[inline]
    pub fn copy_frame_from(&self, src: &BufRef<'_>, src_off: usize, len: usize) -> usize {
        const SMALL: usize = 256;
        let (s, d) = (src.ptr.as_ptr(), self.ptr.as_ptr());
        if src_off == 0
            && len <= SMALL
            && (self.size | src.size) & 7 == 0
            && (s as usize | d as usize) & 7 == 0
        {
            let n = len.min(self.size as usize).min(src.size as usize);
            let (s, d) = (s.cast::<u64>(), d.cast::<u64>());
            for w in 0..n.div_ceil(8) {
                // SAFETY: n <= both sizes, which are multiples of 8, so word
                // w < ceil(n / 8) lies inside both buffers; both are 8-byte
                // aligned, and they are the same buffer or disjoint objects.
                // Volatile keeps this a plain load/store loop (no memcpy).
                let v = unsafe { s.wrapping_add(w).read_volatile() };
                // SAFETY: as above.
                unsafe { d.wrapping_add(w).write_volatile(v) };
            }
            return n;
        }
        self.copy_from(0, src, src_off, len)
    }

    /// Copy bytes out of the buffer (clamped); returns the count.
    pub fn read(&self, off: usize, out: &mut [u8]) -> usize {
        let n = out.len().min((self.size as usize).saturating_sub(off));
        if n == 0 {
            return 0;
        }
        // SAFETY: the source range is inside the buffer (clamped above) and
        // `out` is a distinct kernel-private slice.
        unsafe {
            core::ptr::copy_nonoverlapping(self.ptr.as_ptr().wrapping_add(off), out.as_mut_ptr(), n)
        };
        n
    }

    /// Copy bytes into the buffer (clamped); returns the count.
    pub fn write(&self, off: usize, data: &[u8]) -> usize {
        let n = data.len().min((self.size as usize).saturating_sub(off));
        if n == 0 {
            return 0;
        }
        // SAFETY: the destination range is inside the buffer (clamped above)
        // and `data` is a distinct kernel-private slice.
        unsafe {
            core::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().wrapping_add(off), n)
        };
        n
    }

    /// Read the little u32 at the start of the buffer (extra-buffer links).
    pub fn read_u32(&self) -> u32 {
        let mut b = [0u8; 4];
        self.read(0, &mut b);
        u32::from_ne_bytes(b)
    }

    /// Write a u32 at the start of the buffer (extra-buffer links).
    pub fn write_u32(&self, v: u32) {
        self.write(0, &v.to_ne_bytes());
    }
}

/// The ring object at `kaddr` with `num_slots` slots.
///
/// Every ring pointer the core stores comes from `NetmapMem::ring_alloc`
/// with at least `ring_size(num_slots)` bytes, inside a cluster that lives
/// as long as the region; krings are owned by adapters that hold the region
/// (`Arc<NetmapMem>`), so the object outlives every use through its kring.
pub(crate) fn ring_at(kaddr: NonNull<u8>, num_slots: u32) -> RingPtr {
    // SAFETY: see above; objects are 64-byte aligned inside page-aligned
    // clusters.
    unsafe { RingPtr::new(kaddr, num_slots) }
}

/// The netmap_if object at `kaddr` (from `NetmapMem::if_alloc`, sized with
/// `nifp_size(nrings)`; same lifetime argument as [`ring_at`]).
pub(crate) fn nifp_at(kaddr: NonNull<u8>, nrings: usize) -> NifpPtr {
    // SAFETY: see above.
    unsafe { NifpPtr::new(kaddr, nrings) }
}
