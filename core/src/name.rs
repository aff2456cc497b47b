//! Port names: the fixed-capacity [`Name`] of `netmap_uapi`, plus helpers.

#![deny(unsafe_code)]

pub use netmap_uapi::portname::Name;

/// Concatenation of byte strings as a name, truncated to 63 bytes.
pub fn concat(parts: &[&[u8]]) -> Name {
    let mut buf = [0u8; Name::MAX_LEN];
    let mut n = 0usize;
    for &c in parts.iter().flat_map(|p| p.iter()) {
        if n < buf.len() && c != 0 {
            buf[n] = c;
            n += 1;
        }
    }
    Name::from_c(&buf[..n])
}
