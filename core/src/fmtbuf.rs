//! Formatting without allocation, for kernel logging and stats files: a
//! fixed buffer that truncates ([`StackBuf`]) and a caller's byte slice
//! ([`SliceBuf`]).

#![deny(unsafe_code)]

use core::fmt;

/// A `fmt::Write` sink over a fixed array; output beyond `N` bytes is
/// dropped (cut at a character boundary). Small `N` only: it lives on the
/// (16 KiB) kernel stack.
pub struct StackBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackBuf<N> {
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> Default for StackBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// A `fmt::Write` sink over a caller-provided byte slice (truncates).
pub struct SliceBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceBuf<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Write for SliceBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn truncates_at_char_boundaries() {
        let mut b = StackBuf::<5>::new();
        write!(b, "ab\u{e9}\u{e9}").unwrap();
        assert_eq!(b.as_bytes(), "ab\u{e9}".as_bytes());
        let mut out = [0u8; 4];
        let mut s = SliceBuf::new(&mut out);
        write!(s, "123456").unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(&out, b"1234");
    }
}
