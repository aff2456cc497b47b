//! Port names (spec §7), without allocation.
//!
//! Three grammars live here:
//!
//! * [`kernel`]: what the kernel makes of `nmreq_header.nr_name` together with
//!   `nr_mode` and `nr_flags` (§7.1): [`classify`] → [`KernelPort`].
//! * [`client`]: the libnetmap `nmport_parse` port-spec grammar (§7.2), e.g.
//!   `netmap:eth0-2/Tx@conf:rings=4`: [`PortSpec::parse`] → [`PortSpec`], which
//!   formats back to a canonical spec with `Display`.
//! * [`legacy`]: the older `nm_open` grammar (§7.3): [`parse_nm_open`] →
//!   [`LegacySpec`].
//!
//! Names are stored in the fixed-capacity [`Name`] (at most 63 bytes, like
//! `nr_name`).

#![deny(unsafe_code)]

pub mod client;
pub mod kernel;
pub mod legacy;

pub use client::{
    ExtmemSpec, OffsetSpec, ParseOptions, PortSpec, PortSpecError, PortSpecErrorKind, RingConf,
};
pub use kernel::{KernelNameError, KernelPort, PipeRole, ValeNameError, classify, parse_vale_name};
pub use legacy::{LegacySpec, LegacySpecError, LegacySpecErrorKind, parse_nm_open};

use core::fmt;

/// Capacity of a [`Name`] including the terminating NUL (`NETMAP_REQ_IFNAMSIZ`).
pub const NAME_CAP: usize = crate::consts::NETMAP_REQ_IFNAMSIZ;

/// A port name of at most `NAME_CAP - 1` = 63 bytes without NUL bytes, stored inline.
///
/// Names are byte strings (the kernel accepts any bytes); names produced by the
/// client parsers are always valid UTF-8.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name {
    // Invariant: buf[len..] is all zero, buf[..len] has no NUL, len < NAME_CAP.
    buf: [u8; NAME_CAP],
    len: u8,
}

impl Name {
    /// Maximum length in bytes.
    pub const MAX_LEN: usize = NAME_CAP - 1;

    /// The empty name.
    pub const fn empty() -> Self {
        Self {
            buf: [0; NAME_CAP],
            len: 0,
        }
    }

    /// `bytes` as a name; `None` if it is longer than [`Name::MAX_LEN`] or contains a
    /// NUL byte.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > Self::MAX_LEN || bytes.contains(&0) {
            return None;
        }
        let mut buf = [0u8; NAME_CAP];
        buf[..bytes.len()].copy_from_slice(bytes);
        Some(Self {
            buf,
            len: bytes.len() as u8,
        })
    }

    /// The name in a C array the way the kernel reads `nr_name`: up to the first NUL,
    /// truncated to 63 bytes.
    pub fn from_c(bytes: &[u8]) -> Self {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let n = end.min(Self::MAX_LEN);
        let mut buf = [0u8; NAME_CAP];
        buf[..n].copy_from_slice(&bytes[..n]);
        Self { buf, len: n as u8 }
    }

    /// The bytes of the name (without NUL).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// The name as a string, if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        core::str::from_utf8(self.as_bytes()).ok()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the name is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The 64-byte NUL-padded form, as in `nmreq_header.nr_name`.
    pub fn to_c_array(&self) -> [u8; NAME_CAP] {
        self.buf
    }

    /// The name truncated to `N - 1` bytes in a NUL-padded array of `N` bytes (e.g.
    /// `N = IFNAMSIZ` for the legacy `nmreq.nr_name`).
    pub fn to_c_array_truncated<const N: usize>(&self) -> [u8; N] {
        crate::abi::c_name(self.as_bytes())
    }
}

impl Default for Name {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Display for Name {
    /// The name as text; bytes that are not valid UTF-8 are written as `\xNN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => f.write_str(s),
            None => write!(f, "{}", self.as_bytes().escape_ascii()),
        }
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name(\"{}\")", self.as_bytes().escape_ascii())
    }
}

impl PartialEq<[u8]> for Name {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// `[A-Za-z0-9_]`: the characters of identifiers (switch names, pipe ids).
pub const fn is_id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Whether every byte of `s` is an identifier character (true for the empty slice).
pub fn is_identifier(s: &[u8]) -> bool {
    s.iter().all(|&c| is_id_char(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_basics() {
        let n = Name::new(b"eth0").unwrap();
        assert_eq!(n.as_bytes(), b"eth0");
        assert_eq!(n.as_str(), Some("eth0"));
        assert_eq!(n.len(), 4);
        assert!(!n.is_empty());
        assert!(Name::empty().is_empty());
        assert_eq!(n, "eth0");
        assert_eq!(&n.to_c_array()[..5], b"eth0\0");
        assert_eq!(n.to_c_array_truncated::<3>(), *b"et\0");
        assert!(Name::new(&[b'a'; 63]).is_some());
        assert!(Name::new(&[b'a'; 64]).is_none());
        assert!(Name::new(b"a\0b").is_none());
        assert_eq!(Name::from_c(b"ab\0cd"), "ab");
        assert_eq!(Name::from_c(&[b'x'; 80]).len(), 63);
        assert_eq!(
            format!("{:?}", Name::new(b"a\xff").unwrap()),
            "Name(\"a\\xff\")"
        );
        assert_eq!(format!("{}", Name::new(b"a\xff").unwrap()), "a\\xff");
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier(b""));
        assert!(is_identifier(b"abc_09Z"));
        assert!(!is_identifier(b"a-b"));
        assert!(!is_identifier("é".as_bytes()));
    }
}
