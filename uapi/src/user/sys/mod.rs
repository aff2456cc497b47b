//! The `unsafe` edge of [`crate::user`]: the memory region shared with the kernel
//! ([`Mapping`]) and the operating-system calls (`open`, `ioctl`, `mmap`, `poll`,
//! signals) in `unix`, with what each Unix does its own way (ioctl encoding, CPU
//! pinning) in one module per OS (`linux`, `freebsd`), chosen here by
//! `#[cfg(target_os = ...)]`; Windows (`\\.\netmap`, the control codes of
//! [`crate::winioctl`]) in `windows`.
//!
//! Everything outside this module is `#![deny(unsafe_code)]`. The rest of `user`
//! reaches the shared memory only through the bounds-checked accessors of
//! [`Mapping`]: atomics for the ring indexes, volatile reads and writes for slots and
//! ring headers, and byte slices for packet buffers that the netmap ring protocol
//! hands to userspace (see [`Mapping::bytes_mut`]).

use crate::abi::{NetmapSlot, NmreqOption};
use crate::consts::option_body_size;
use crate::pod::Pod;
use core::mem::{align_of, offset_of, size_of};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64};
use std::io;
use std::sync::Mutex;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

#[cfg(target_os = "freebsd")]
#[path = "freebsd.rs"]
mod os;
#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod os;
#[cfg(unix)]
pub use os::pin_current_thread;

/// The option list of a NIOCCTRL request (spec §3.11), owned: each option is
/// stored in 8-byte words, its 24-byte header first, with room for at least
/// the body the kernel copies for its type, so that the kernel never reads or
/// writes outside it. [`ctrl_with`] links the options in order.
#[derive(Debug, Default)]
pub struct OptionList {
    opts: Vec<Vec<u64>>,
}

const OPT_HDR: usize = size_of::<NmreqOption>();

impl OptionList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an option of type `ty` whose body (after the header) is `body`;
    /// `nro_size` is `24 + body.len()`. Returns its index.
    pub fn push(&mut self, ty: u32, body: &[u8]) -> usize {
        let size = OPT_HDR + body.len();
        let kernel = OPT_HDR + option_body_size(ty, size as u64);
        let words = size.max(kernel).div_ceil(8);
        let mut v = vec![0u64; words];
        let hdr = NmreqOption {
            nro_next: 0,
            nro_reqtype: ty,
            nro_status: 0,
            nro_size: size as u64,
        };
        let bytes = bytes_of_words_mut(&mut v);
        bytes[..OPT_HDR].copy_from_slice(hdr.as_bytes());
        bytes[OPT_HDR..size].copy_from_slice(body);
        self.opts.push(v);
        self.opts.len() - 1
    }

    /// Links the options in order (each `nro_next` to the next one's
    /// storage, the last to 0); returns the address of the first (0 if the
    /// list is empty), for `nr_options`. The addresses stay valid while
    /// the list is not modified.
    pub(crate) fn link(&mut self) -> u64 {
        let mut next = 0u64;
        for o in self.opts.iter_mut().rev() {
            o[0] = next; // nro_next
            next = o.as_mut_ptr() as usize as u64;
        }
        next
    }
}

fn bytes_of_words_mut(v: &mut [u64]) -> &mut [u8] {
    // SAFETY: a `u64` slice is valid as bytes (8 per word, alignment 1 is
    // weaker), exclusively borrowed for the same lifetime; every byte pattern
    // is a valid `u64`.
    unsafe { core::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), v.len() * 8) }
}

/// A memory region shared with the kernel (a netmap allocator mapped with `mmap`),
/// or an anonymous region laid out the same way (used to test ring code without the
/// kernel module).
///
/// All accessors check bounds and alignment and return `None` instead of touching
/// memory outside the region.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    id: u64,
    /// What the OS backend needs to undo the mapping.
    os: MapOs,
    /// Region offsets of the rings that have a live view in this process (at most
    /// one view per ring, whichever port it comes from: ports sharing rings share
    /// the mapping).
    claimed: Mutex<Vec<usize>>,
}

/// A `netmap_slot` in the shared region, seen as one atomic per field: the kernel
/// writes slots that userspace does not own while userspace works on the ones it
/// owns, so the ring views access slots field by field with atomic loads and
/// stores (plain moves on x86) rather than through `&mut` or `&` of plain data.
#[repr(C)]
#[derive(Debug)]
pub struct SlotCell {
    /// `buf_idx`.
    pub buf_idx: AtomicU32,
    /// `len`.
    pub len: AtomicU16,
    /// `flags`.
    pub flags: AtomicU16,
    /// `ptr`.
    pub ptr: AtomicU64,
}

impl SlotCell {
    /// A copy of the slot (each field loaded on its own).
    #[inline]
    pub fn get(&self) -> NetmapSlot {
        use core::sync::atomic::Ordering::Relaxed;
        NetmapSlot {
            buf_idx: self.buf_idx.load(Relaxed),
            len: self.len.load(Relaxed),
            flags: self.flags.load(Relaxed),
            ptr: self.ptr.load(Relaxed),
        }
    }
}

const _: () = {
    assert!(size_of::<SlotCell>() == size_of::<NetmapSlot>());
    assert!(offset_of!(SlotCell, buf_idx) == offset_of!(NetmapSlot, buf_idx));
    assert!(offset_of!(SlotCell, len) == offset_of!(NetmapSlot, len));
    assert!(offset_of!(SlotCell, flags) == offset_of!(NetmapSlot, flags));
    assert!(offset_of!(SlotCell, ptr) == offset_of!(NetmapSlot, ptr));
};

/// Source of [`Mapping::id`].
static NEXT_ID: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, core::sync::atomic::Ordering::Relaxed)
}

impl core::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mapping")
            .field("addr", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

// SAFETY: `Mapping` owns a process-wide memory mapping (no thread affinity); all
// access goes through atomics, volatile operations, or slices whose exclusivity is
// guaranteed by the callers of `bytes_mut`, so it can be sent to and shared with
// other threads.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of the netmap region bound to `fd` (`MAP_SHARED`,
    /// read/write, offset 0).
    pub fn map_shared(fd: BorrowedDev<'_>, len: usize) -> io::Result<Self> {
        let (ptr, os) = mmap(Some(fd), len)?;
        Ok(Self {
            ptr,
            len,
            id: next_id(),
            os,
            claimed: Mutex::new(Vec::new()),
        })
    }

    /// An anonymous, zero-filled, private region of `len` bytes (page aligned).
    pub fn anonymous(len: usize) -> io::Result<Self> {
        let (ptr, os) = mmap(None, len)?;
        Ok(Self {
            ptr,
            len,
            id: next_id(),
            os,
            claimed: Mutex::new(Vec::new()),
        })
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// A number identifying this mapping for the life of the process (never
    /// reused, unlike addresses).
    #[inline]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Records that the ring at `off` has a view; `false` if it already has one.
    pub fn claim(&self, off: usize) -> bool {
        let mut c = self.claimed.lock().unwrap_or_else(|p| p.into_inner());
        if c.contains(&off) {
            return false;
        }
        c.push(off);
        true
    }

    /// Ends the view of the ring at `off` (see [`Mapping::claim`]).
    pub fn release(&self, off: usize) {
        let mut c = self.claimed.lock().unwrap_or_else(|p| p.into_inner());
        c.retain(|&o| o != off);
    }

    /// Start address of the region.
    #[inline]
    pub fn base_addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// A pointer to `size` bytes at `off` aligned to `align`, if they lie inside the
    /// region.
    #[inline]
    fn checked(&self, off: usize, size: usize, align: usize) -> Option<*mut u8> {
        let end = off.checked_add(size)?;
        if end > self.len || !off.is_multiple_of(align) {
            return None;
        }
        // `wrapping_add` keeps the pointer computation itself safe; `off <= len`
        // makes it stay inside (or one past) the allocation.
        Some(self.ptr.as_ptr().wrapping_add(off))
    }

    /// The `u32` at `off` (4-byte aligned) as an atomic, for ring indexes that the
    /// kernel and userspace update concurrently.
    #[inline]
    pub fn atomic_u32(&self, off: usize) -> Option<&AtomicU32> {
        let p = self.checked(off, 4, align_of::<AtomicU32>())?;
        // SAFETY: `p` is inside the mapping, aligned for `AtomicU32`, and valid for
        // the lifetime of `&self` (the mapping is unmapped only on drop). The memory
        // is only ever accessed atomically or with volatile operations of the same
        // size by this crate; the kernel's concurrent accesses are outside the Rust
        // memory model, as for any shared memory.
        Some(unsafe { AtomicU32::from_ptr(p.cast::<u32>()) })
    }

    /// The array of `n` slots at `off` (aligned for [`SlotCell`]), checked once so
    /// that per-slot accesses need no further bounds checks than the slice's own.
    #[inline]
    pub fn slot_cells(&self, off: usize, n: usize) -> Option<&[SlotCell]> {
        let size = n.checked_mul(size_of::<SlotCell>())?;
        let p = self.checked(off, size, align_of::<SlotCell>())?;
        // SAFETY: `[p, p + size)` is inside the mapping, aligned for `SlotCell`,
        // and valid for the lifetime of `&self`. `SlotCell` is made of atomics, which
        // accept any bit pattern and may be shared between threads; this crate
        // accesses slot memory only through these atomics (or, in the in-memory
        // test kernel of `testing`, with volatile operations on the same thread).
        // The kernel's concurrent accesses are outside the Rust memory model, as
        // for `atomic_u32`.
        Some(unsafe { core::slice::from_raw_parts(p.cast::<SlotCell>(), n) })
    }

    /// A volatile read of the `T` at `off` (aligned for `T`).
    #[inline]
    pub fn read<T: Pod>(&self, off: usize) -> Option<T> {
        let p = self.checked(off, size_of::<T>(), align_of::<T>())?;
        // SAFETY: `p` is in bounds and aligned for `T` (checked above); every bit
        // pattern is a valid `T` (`T: Pod`), so whatever the kernel wrote is fine.
        Some(unsafe { p.cast::<T>().read_volatile() })
    }

    /// A volatile write of `v` at `off` (aligned for `T`); `None` if out of range.
    #[inline]
    pub fn write<T: Pod>(&self, off: usize, v: T) -> Option<()> {
        let p = self.checked(off, size_of::<T>(), align_of::<T>())?;
        // SAFETY: `p` is in bounds and aligned for `T`; the region is writable
        // (mapped read/write) and `T: Pod` has no drop glue or invariants.
        unsafe { p.cast::<T>().write_volatile(v) };
        Some(())
    }

    /// The `len` bytes at `off`, read-only.
    ///
    /// Callers only ask for memory that the kernel does not write while the borrow
    /// lives (netmap buffers owned by userspace by the ring protocol, or immutable
    /// objects).
    #[inline]
    pub fn bytes(&self, off: usize, len: usize) -> Option<&[u8]> {
        let p = self.checked(off, len, 1)?;
        // SAFETY: `[p, p + len)` lies inside the mapping (checked), which stays
        // mapped for the lifetime of `&self`; `u8` accepts any value.
        Some(unsafe { core::slice::from_raw_parts(p, len) })
    }

    /// The `len` bytes at `off`, writable.
    ///
    /// # Safety
    ///
    /// For the lifetime of the returned slice no other reference to these bytes may
    /// exist and the kernel must not access them: the caller must own the memory by
    /// the netmap ring protocol (a buffer of a slot in `[head, tail)` of a ring it
    /// borrows exclusively, or a detached extra buffer it holds the only token of).
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn bytes_mut(&self, off: usize, len: usize) -> Option<&mut [u8]> {
        let p = self.checked(off, len, 1)?;
        // SAFETY: in bounds (checked) and mapped for the lifetime of `&self`;
        // exclusivity is the caller's contract (see `# Safety`).
        Some(unsafe { core::slice::from_raw_parts_mut(p, len) })
    }

    /// Copies `src` to offset `off` (a `memmove`); `None` if out of range. Same
    /// ownership rule as [`Mapping::bytes_mut`], but no reference escapes, so
    /// callers only need to own the bytes for the duration of the call.
    #[inline]
    pub fn copy_in(&self, off: usize, src: &[u8]) -> Option<()> {
        let p = self.checked(off, src.len(), 1)?;
        // SAFETY: the destination is in bounds and writable, the source is a valid
        // slice; `ptr::copy` allows the two ranges to overlap.
        unsafe { core::ptr::copy(src.as_ptr(), p, src.len()) };
        Some(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        munmap(self.ptr, self.len, &mut self.os);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::Ordering;

    #[test]
    fn anonymous_region_accessors_are_bounds_checked() {
        let m = Mapping::anonymous(8192).unwrap();
        assert_eq!(m.len(), 8192);
        assert!(m.atomic_u32(8188).is_some());
        assert!(m.atomic_u32(8189).is_none());
        assert!(m.atomic_u32(8192).is_none());
        m.atomic_u32(4).unwrap().store(7, Ordering::Release);
        assert_eq!(m.read::<u32>(4), Some(7));
        m.write::<u64>(16, u64::MAX).unwrap();
        assert_eq!(m.bytes(16, 8).unwrap(), &[0xff; 8]);
        assert!(m.write::<u64>(12, 1).is_none());
        assert!(m.bytes(8000, 193).is_none());
        assert!(m.bytes(usize::MAX, 2).is_none());
        m.copy_in(100, b"abc").unwrap();
        assert_eq!(m.bytes(100, 3).unwrap(), b"abc");
        assert!(m.copy_in(8191, b"ab").is_none());
    }
}
