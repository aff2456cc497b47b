//! Byte views of the ABI structures: the only module of this crate with `unsafe`.
//!
//! The kernel copies requests from and to user memory as raw bytes. [`Pod`] is
//! implemented for every type of [`crate::abi`] (and for the integer types and
//! arrays of `Pod`), and gives safe conversions between a value and its bytes.

use crate::abi::*;
use core::mem::size_of;

/// Plain old data: a type that can be viewed as bytes and built from any bytes.
///
/// # Safety
///
/// Implementors must guarantee that the type:
/// * is `#[repr(C)]` (or `#[repr(transparent)]`, or a primitive integer or an array of
///   `Pod`) and has **no padding bytes** (every byte belongs to a field), so that
///   viewing a value as `&[u8]` never exposes uninitialised memory;
/// * is valid for **every** bit pattern (only integers and arrays/structs of them), so
///   that writing arbitrary bytes through [`Pod::as_bytes_mut`] or reading them with
///   [`Pod::from_bytes`] yields a valid value;
/// * has no interior mutability, references or pointers with provenance.
///
/// The layout assertions in [`crate::abi`] check the first point for every struct.
pub unsafe trait Pod: Copy + 'static {
    /// Size in bytes (`size_of::<Self>()`).
    const SIZE: usize = size_of::<Self>();

    /// The value with all bytes zero.
    fn zeroed() -> Self {
        // SAFETY: `Self: Pod`, so the all-zero bit pattern is a valid value.
        unsafe { core::mem::zeroed() }
    }

    /// The bytes of `self`.
    fn as_bytes(&self) -> &[u8] {
        let p = core::ptr::from_ref(self).cast::<u8>();
        // SAFETY: `p` points to `size_of::<Self>()` initialised bytes (no padding, by
        // the trait contract), valid and immutable for the lifetime of `&self`;
        // `u8` has alignment 1.
        unsafe { core::slice::from_raw_parts(p, size_of::<Self>()) }
    }

    /// The bytes of `self`, writable. Any bytes written leave a valid value.
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        let p = core::ptr::from_mut(self).cast::<u8>();
        // SAFETY: `p` points to `size_of::<Self>()` initialised bytes, exclusively
        // borrowed for the lifetime of `&mut self`; every bit pattern is a valid
        // `Self` (trait contract), so any write keeps `*self` valid.
        unsafe { core::slice::from_raw_parts_mut(p, size_of::<Self>()) }
    }

    /// A value built from exactly `size_of::<Self>()` bytes (any alignment);
    /// `None` if `bytes` has another length.
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() == size_of::<Self>() {
            Self::read_from_prefix(bytes)
        } else {
            None
        }
    }

    /// A value built from the first `size_of::<Self>()` bytes of `bytes` (any
    /// alignment); `None` if `bytes` is shorter.
    fn read_from_prefix(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < size_of::<Self>() {
            return None;
        }
        let p = bytes.as_ptr().cast::<Self>();
        // SAFETY: `bytes` holds at least `size_of::<Self>()` readable initialised
        // bytes; `read_unaligned` has no alignment requirement; every bit pattern is
        // a valid `Self` (trait contract).
        Some(unsafe { p.read_unaligned() })
    }

    /// Copies `self` into the first `size_of::<Self>()` bytes of `out`; `None` if
    /// `out` is shorter.
    fn write_to_prefix(&self, out: &mut [u8]) -> Option<()> {
        out.get_mut(..size_of::<Self>())?
            .copy_from_slice(self.as_bytes());
        Some(())
    }
}

/// The bytes of a slice of `Pod` values.
pub fn slice_as_bytes<T: Pod>(s: &[T]) -> &[u8] {
    let p = s.as_ptr().cast::<u8>();
    // SAFETY: the slice covers `size_of_val(s)` initialised bytes without padding
    // (`T: Pod`, and arrays have no padding between elements of a padding-free type),
    // borrowed immutably for the returned lifetime.
    unsafe { core::slice::from_raw_parts(p, core::mem::size_of_val(s)) }
}

/// The bytes of a slice of `Pod` values, writable.
pub fn slice_as_bytes_mut<T: Pod>(s: &mut [T]) -> &mut [u8] {
    let len = core::mem::size_of_val(s);
    let p = s.as_mut_ptr().cast::<u8>();
    // SAFETY: as in `slice_as_bytes`, borrowed exclusively; any bytes written leave
    // valid `T` values (`T: Pod`).
    unsafe { core::slice::from_raw_parts_mut(p, len) }
}

macro_rules! impl_pod {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: integer type, or a `#[repr(C)]` struct of `abi` made only of
            // integers and integer arrays whose layout assertions check that the
            // fields cover every byte (no padding).
            unsafe impl Pod for $t {}
        )*
    };
}

impl_pod!(u8, u16, u32, u64, i8, i16, i32, i64, usize, isize);

// The Windows request blocks (integers only, sizes asserted in `winioctl`).
impl_pod!(
    crate::winioctl::NmWinIo,
    crate::winioctl::NmWinPollFd,
    crate::winioctl::NmWinWait
);

impl_pod!(
    Timeval,
    NetmapSlot,
    NetmapRing,
    NetmapIf,
    NmreqHeader,
    NmreqRegister,
    NmreqPortInfoGet,
    NmreqValeAttach,
    NmreqValeDetach,
    NmreqValeList,
    NmreqPortHdr,
    NmreqValeNewif,
    NmreqValePolling,
    NmreqPoolsInfo,
    NmreqSyncKloopStart,
    NmCsbAtok,
    NmCsbKtoa,
    NmreqOption,
    NmreqOptExtmem,
    NmreqOptCsb,
    NmreqOptSyncKloopMode,
    NmreqOptSyncKloopEventfds,
    NmreqOptSyncKloopEventfdsEntry,
    NmreqOptOffsets,
    Nmreq,
    NmIfreq,
);

// SAFETY: an array of padding-free, any-bit-pattern types is itself padding-free
// (elements are laid out contiguously with stride = size) and valid for any bits.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_bytes() {
        let mut h = NmreqHeader::new(1, b"vale0:x");
        h.nr_body = 0x1122_3344_5566_7788;
        let b = h.as_bytes();
        assert_eq!(b.len(), 88);
        assert_eq!(&b[8..15], b"vale0:x");
        assert_eq!(&b[80..88], &0x1122_3344_5566_7788u64.to_ne_bytes());
        assert_eq!(NmreqHeader::from_bytes(b), Some(h));
        assert_eq!(NmreqHeader::from_bytes(&b[1..]), None);
        assert_eq!(NmreqHeader::read_from_prefix(&b[..87]), None);
    }

    #[test]
    fn unaligned_and_prefix() {
        let mut buf = [0u8; 100];
        let s = NetmapSlot {
            buf_idx: 7,
            len: 60,
            flags: 0x20,
            ptr: 9,
        };
        s.write_to_prefix(&mut buf[3..]).unwrap();
        assert_eq!(NetmapSlot::read_from_prefix(&buf[3..]), Some(s));
        assert!(s.write_to_prefix(&mut buf[90..]).is_none());
    }

    #[test]
    fn bytes_mut_writes_fields() {
        let mut r = NmreqRegister::zeroed();
        r.as_bytes_mut()[36..40].copy_from_slice(&4u32.to_ne_bytes());
        assert_eq!(r.nr_mode, 4);
        let ring = NetmapRing::zeroed();
        assert_eq!(ring, NetmapRing::default());
        assert_eq!(NmIfreq::zeroed(), NmIfreq::default());
    }

    #[test]
    fn slices() {
        let mut ofs = [1i64, -2, 3];
        assert_eq!(slice_as_bytes(&ofs).len(), 24);
        slice_as_bytes_mut(&mut ofs)[0..8].copy_from_slice(&5i64.to_ne_bytes());
        assert_eq!(ofs[0], 5);
        let arr = <[u32; 2]>::from_bytes(&[1, 0, 0, 0, 2, 0, 0, 0]).unwrap();
        assert_eq!(
            arr,
            [
                u32::from_ne_bytes([1, 0, 0, 0]),
                u32::from_ne_bytes([2, 0, 0, 0])
            ]
        );
    }
}
