//! The legacy `nm_open` port-name grammar (`netmap_user.h`, spec §7.3).
//!
//! ```text
//! name   = "netmap:" ifname suffix | "vale" [A-Za-z0-9_]* ":" [A-Za-z0-9_]* suffix
//! suffix = [ "^" | "*" | "-" N | "{" N | "}" N ] [ "/" [xztrRT]* ] [ "@" N ] ...
//! ```
//!
//! The kernel name (`ifname`, or `valeX:Y`) ends at the first of `- * ^ { } / @` and
//! must be shorter than 16 bytes. Numbers are read like C's `strtol` (leading white
//! space and a sign are accepted). The result goes into a legacy `nmreq`: the mode
//! in the low 4 bits of `nr_flags`, the flags above, the ring / pipe number in
//! `nr_ringid`, the mem id in `nr_arg2`.

use super::{Name, is_identifier};
use crate::abi::Nmreq;
use crate::consts::{IFNAMSIZ, NETMAP_API, NETMAP_RING_MASK, RegFlags, RegMode, errno};
use core::fmt;

/// A parsed `nm_open` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LegacySpec {
    /// The name for `nmreq.nr_name` (at most 15 bytes).
    pub nr_name: Name,
    /// ALL_NIC, SW, NIC_SW, ONE_NIC, PIPE_MASTER or PIPE_SLAVE.
    pub mode: RegMode,
    /// Ring number or pipe id (`nr_ringid`).
    pub ringid: u16,
    /// Flags from `/xztrRT`.
    pub flags: RegFlags,
    /// Mem id (`nr_arg2`), 0 when not given.
    pub mem_id: u16,
}

impl LegacySpec {
    /// The legacy `nmreq.nr_flags`: mode in the low 4 bits, then the flags.
    pub fn nr_flags(&self) -> u32 {
        // The flags of this grammar are all below bit 32.
        self.mode.as_raw() | (self.flags.bits() as u32)
    }

    /// The `nmreq` that `nm_open` passes to `NIOCREGIF` (version 14, name, ringid,
    /// flags, mem id in `nr_arg2`; everything else 0).
    pub fn to_nmreq(&self) -> Nmreq {
        Nmreq {
            nr_name: self.nr_name.to_c_array_truncated::<IFNAMSIZ>(),
            nr_version: u32::from(NETMAP_API),
            nr_ringid: self.ringid,
            nr_flags: self.nr_flags(),
            nr_arg2: self.mem_id,
            ..Nmreq::default()
        }
    }
}

/// What is wrong with an `nm_open` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LegacySpecErrorKind {
    /// Neither `netmap:` nor `vale` at the start: `nm_open` returns NULL with errno 0.
    NotNetmap,
    /// The spec contains a NUL character.
    Nul,
    /// `vale…` without `:`.
    MissingColon,
    /// The bridge id after `vale` is not an identifier.
    BadSwitchName,
    /// The VALE port name is not an identifier.
    BadPortName,
    /// The name is 16 bytes or longer.
    NameTooLong,
    /// Unexpected character in the suffix.
    UnexpectedChar,
    /// Ring / pipe number not in `0..4095`.
    RingIdOutOfRange,
    /// Mem id not in `1..=65535`.
    BadMemId,
    /// Mem id given twice.
    DoubleMemId,
    /// The name ends inside the suffix.
    UnexpectedEnd,
}

/// An `nm_open` parse error: what and where (byte offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LegacySpecError {
    /// What is wrong.
    pub kind: LegacySpecErrorKind,
    /// Byte offset in the name.
    pub pos: usize,
}

impl LegacySpecError {
    /// The errno `nm_open` leaves: 0 for [`LegacySpecErrorKind::NotNetmap`] (not an
    /// error, just not a netmap name), `EINVAL` otherwise.
    pub const fn errno(&self) -> i32 {
        match self.kind {
            LegacySpecErrorKind::NotNetmap => 0,
            _ => errno::EINVAL,
        }
    }
}

impl fmt::Display for LegacySpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = match self.kind {
            LegacySpecErrorKind::NotNetmap => "not a netmap port name",
            LegacySpecErrorKind::Nul => "NUL character in port name",
            LegacySpecErrorKind::MissingColon => "missing ':' in vale name",
            LegacySpecErrorKind::BadSwitchName => "invalid bridge name",
            LegacySpecErrorKind::BadPortName => "invalid bridge port name",
            LegacySpecErrorKind::NameTooLong => "name too long",
            LegacySpecErrorKind::UnexpectedChar => "unexpected character",
            LegacySpecErrorKind::RingIdOutOfRange => "ring number out of range [0, 4095)",
            LegacySpecErrorKind::BadMemId => "invalid mem id",
            LegacySpecErrorKind::DoubleMemId => "double setting of mem id",
            LegacySpecErrorKind::UnexpectedEnd => "unexpected end of port name",
        };
        write!(f, "{m} at offset {}", self.pos)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for LegacySpecError {}

const fn lerr<T>(kind: LegacySpecErrorKind, pos: usize) -> Result<T, LegacySpecError> {
    Err(LegacySpecError { kind, pos })
}

/// C `strtol(s + i, &end, 10)`: skips white space, an optional sign, then digits.
/// Returns `(value, end)`; without digits `(0, i)` (nothing consumed). Saturates
/// like `LONG_MIN`/`LONG_MAX`.
fn strtol(s: &[u8], i: usize) -> (i64, usize) {
    let mut j = i;
    while j < s.len() && matches!(s[j], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        j += 1;
    }
    let mut neg = false;
    if j < s.len() && (s[j] == b'+' || s[j] == b'-') {
        neg = s[j] == b'-';
        j += 1;
    }
    let n = s[j..].iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return (0, i);
    }
    let v = s[j..j + n].iter().fold(0i64, |acc, &c| {
        let d = i64::from(c - b'0');
        if neg {
            acc.saturating_mul(10).saturating_sub(d)
        } else {
            acc.saturating_mul(10).saturating_add(d)
        }
    });
    (v, j + n)
}

/// Parses a legacy `nm_open` port name (spec §7.3).
pub fn parse_nm_open(name: &str) -> Result<LegacySpec, LegacySpecError> {
    use LegacySpecErrorKind as K;
    let s = name.as_bytes();
    if let Some(p) = s.iter().position(|&c| c == 0) {
        return lerr(K::Nul, p);
    }
    const NETMAP: &[u8] = b"netmap:";
    let vale = crate::consts::NM_BDG_NAME.as_bytes();
    let is_vale = if s.starts_with(NETMAP) {
        false
    } else if s.starts_with(vale) {
        true
    } else {
        return lerr(K::NotNetmap, 0);
    };

    let (ifname_start, vpname_start) = if is_vale {
        let Some(colon) = s.iter().position(|&c| c == b':') else {
            return lerr(K::MissingColon, 0);
        };
        if !is_identifier(&s[vale.len()..colon]) {
            return lerr(K::BadSwitchName, vale.len());
        }
        (0, colon + 1)
    } else {
        (NETMAP.len(), NETMAP.len())
    };
    let mut i = s[vpname_start..]
        .iter()
        .position(|c| b"-*^{}/@".contains(c))
        .map_or(s.len(), |p| vpname_start + p);
    if is_vale && !is_identifier(&s[vpname_start..i]) {
        return lerr(K::BadPortName, vpname_start);
    }
    let nr_name = match Name::new(&s[ifname_start..i]) {
        Some(n) if n.len() < IFNAMSIZ => n,
        _ => return lerr(K::NameTooLong, ifname_start),
    };

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum St {
        Start,
        RngSfxOk,
        GetNum,
        Flags,
        FlagsOk,
        MemId,
    }
    let mut st = St::Start;
    let mut mode = RegMode::AllNic;
    let mut ringid = 0u16;
    let mut flags = RegFlags::empty();
    let mut mem_id = 0u16;
    while i < s.len() {
        let c = s[i];
        match st {
            St::Start => {
                st = match c {
                    b'^' => {
                        mode = RegMode::Sw;
                        St::RngSfxOk
                    }
                    b'*' => {
                        mode = RegMode::NicSw;
                        St::RngSfxOk
                    }
                    b'-' => {
                        mode = RegMode::OneNic;
                        St::GetNum
                    }
                    b'{' => {
                        mode = RegMode::PipeMaster;
                        St::GetNum
                    }
                    b'}' => {
                        mode = RegMode::PipeSlave;
                        St::GetNum
                    }
                    b'/' => St::Flags,
                    b'@' => St::MemId,
                    _ => return lerr(K::UnexpectedChar, i),
                };
                i += 1;
            }
            St::RngSfxOk => {
                st = match c {
                    b'/' => St::Flags,
                    b'@' => St::MemId,
                    _ => return lerr(K::UnexpectedChar, i),
                };
                i += 1;
            }
            St::GetNum => {
                let (num, end) = strtol(s, i);
                if !(0..i64::from(NETMAP_RING_MASK)).contains(&num) {
                    return lerr(K::RingIdOutOfRange, i);
                }
                ringid = num as u16;
                i = end;
                st = St::RngSfxOk;
            }
            St::Flags | St::FlagsOk => {
                if c == b'@' {
                    st = St::MemId;
                } else {
                    flags |= match c {
                        b'x' => RegFlags::EXCLUSIVE,
                        b'z' => RegFlags::ZCOPY_MON,
                        b't' => RegFlags::MONITOR_TX,
                        b'r' => RegFlags::MONITOR_RX,
                        b'R' => RegFlags::RX_RINGS_ONLY,
                        b'T' => RegFlags::TX_RINGS_ONLY,
                        _ => return lerr(K::UnexpectedChar, i),
                    };
                    st = St::FlagsOk;
                }
                i += 1;
            }
            St::MemId => {
                if mem_id != 0 {
                    return lerr(K::DoubleMemId, i);
                }
                let (num, end) = strtol(s, i);
                mem_id = match u16::try_from(num) {
                    Ok(m) if m > 0 => m,
                    _ => return lerr(K::BadMemId, i),
                };
                i = end;
                st = St::RngSfxOk;
            }
        }
    }
    if !matches!(st, St::Start | St::RngSfxOk | St::FlagsOk) {
        return lerr(K::UnexpectedEnd, i);
    }
    Ok(LegacySpec {
        nr_name,
        mode,
        ringid,
        flags,
        mem_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::*;

    fn ok(s: &str) -> LegacySpec {
        parse_nm_open(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn kind(s: &str) -> LegacySpecErrorKind {
        parse_nm_open(s)
            .map(|v| panic!("{s}: parsed as {v:?}"))
            .unwrap_err()
            .kind
    }

    #[test]
    fn basic() {
        let v = ok("netmap:eth0");
        assert_eq!(v.nr_name, "eth0");
        assert_eq!(v.mode, RegMode::AllNic);
        assert_eq!(v.nr_flags(), NR_REG_ALL_NIC);
        let v = ok("netmap:eth0-3/xT@2");
        assert_eq!((v.mode, v.ringid, v.mem_id), (RegMode::OneNic, 3, 2));
        assert_eq!(v.flags, RegFlags::EXCLUSIVE | RegFlags::TX_RINGS_ONLY);
        assert_eq!(v.nr_flags(), 4 | 0x800 | 0x4000);
        let r = v.to_nmreq();
        assert_eq!(r.name(), b"eth0");
        assert_eq!((r.nr_version, r.nr_ringid, r.nr_arg2), (14, 3, 2));
        assert_eq!(ok("netmap:eth0^").mode, RegMode::Sw);
        assert_eq!(ok("netmap:eth0*").mode, RegMode::NicSw);
        let v = ok("netmap:eth0{5");
        assert_eq!((v.mode, v.ringid), (RegMode::PipeMaster, 5));
        let v = ok("netmap:eth0}7/r");
        assert_eq!(
            (v.mode, v.ringid, v.flags),
            (RegMode::PipeSlave, 7, RegFlags::MONITOR_RX)
        );
        let v = ok("vale0:a");
        assert_eq!(v.nr_name, "vale0:a");
        assert_eq!(ok("vale:a").nr_name, "vale:a");
        // strtol accepts white space and a sign.
        assert_eq!(ok("netmap:eth0- 5").ringid, 5);
        assert_eq!(ok("netmap:eth0-+5").ringid, 5);
        assert_eq!(ok("netmap:eth0-4094").ringid, 4094);
        assert_eq!(ok("netmap:eth0@7/x").mem_id, 7);
    }

    #[test]
    fn errors() {
        use LegacySpecErrorKind as K;
        assert_eq!(kind("eth0"), K::NotNetmap);
        assert_eq!(parse_nm_open("eth0").unwrap_err().errno(), 0);
        assert_eq!(kind("valeX"), K::MissingColon);
        assert_eq!(kind("vale.x:a"), K::BadSwitchName);
        assert_eq!(kind("vale0:a.b"), K::BadPortName);
        assert_eq!(kind("netmap:0123456789abcdef"), K::NameTooLong);
        assert_eq!(ok("netmap:0123456789abcde").nr_name.len(), 15);
        assert_eq!(kind("netmap:eth0^1"), K::UnexpectedChar);
        assert_eq!(kind("netmap:eth0-"), K::UnexpectedEnd);
        assert_eq!(kind("netmap:eth0-x"), K::UnexpectedChar);
        assert_eq!(kind("netmap:eth0--1"), K::RingIdOutOfRange);
        assert_eq!(kind("netmap:eth0-4095"), K::RingIdOutOfRange);
        assert_eq!(kind("netmap:eth0/"), K::UnexpectedEnd);
        assert_eq!(kind("netmap:eth0/q"), K::UnexpectedChar);
        assert_eq!(kind("netmap:eth0@"), K::UnexpectedEnd);
        assert_eq!(kind("netmap:eth0@0"), K::BadMemId);
        assert_eq!(kind("netmap:eth0@65536"), K::BadMemId);
        assert_eq!(kind("netmap:eth0@1@2"), K::DoubleMemId);
        assert_eq!(kind("netmap:eth0\0"), K::Nul);
        assert_eq!(
            parse_nm_open("netmap:eth0/").unwrap_err().errno(),
            errno::EINVAL
        );
    }

    #[test]
    fn strtol_like_c() {
        assert_eq!(strtol(b"12x", 0), (12, 2));
        assert_eq!(strtol(b"x", 0), (0, 0));
        assert_eq!(strtol(b" -", 0), (0, 0));
        assert_eq!(strtol(b" -3", 0), (-3, 3));
        assert_eq!(strtol(b"99999999999999999999999", 0).0, i64::MAX);
        assert_eq!(strtol(b"-99999999999999999999999", 0).0, i64::MIN);
    }
}
