//! The libnetmap port-spec grammar (`nmport_parse`, spec §7.2).
//!
//! ```text
//! portspec = prefix ":" vpname [mode] [flags] [memid] options
//! prefix   = "netmap" | "vale" [A-Za-z0-9_]*
//! vpname   = up to the first of - * ^ / @   (at most one '{' or '}', followed by
//!            a non-empty [A-Za-z0-9_]+ pipe id)
//! mode     = "^" | "^" N | "*" | "-" N         (0 <= N < 4095)
//! flags    = "/" [xztrRT]*                     (may also come after memid)
//! memid    = "@" N                             (N in 1..=65535)
//! options  = ( "@" name [ "=" value | ":" key "=" value ( "," key "=" value )* ] )*
//! ```
//!
//! Known options: `@conf:`, `@share=`, `@extmem:`/`@extmem=`, `@offset:`/`@offset=`
//! (the last one only when [`ParseOptions::enable_offset`] is set, like
//! `nmport_enable_option("offset")`). `-` in option keys is read as `_`.
//!
//! [`PortSpec`] is the parsed, normalised result; its `Display` writes a canonical
//! spec that parses back to the same value.

use super::{Name, is_identifier};
use crate::abi::{NmreqOptOffsets, NmreqOption, NmreqRegister};
use crate::consts::{
    NETMAP_REQ_OPT_OFFSETS, NETMAP_RING_MASK, NM_BDG_NAME, RegFlags, RegMode, errno,
};
use core::fmt;

/// Parser settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ParseOptions {
    /// Accept the `@offset` option (disabled by default: `EOPNOTSUPP`).
    pub enable_offset: bool,
}

/// Ring and slot hints of `@conf` (each `None` when not given; the register body
/// then carries 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RingConf {
    /// `tx-rings` (or `rings`).
    pub tx_rings: Option<u16>,
    /// `rx-rings` (or `rings`).
    pub rx_rings: Option<u16>,
    /// `host-tx-rings` (or `host-rings`).
    pub host_tx_rings: Option<u16>,
    /// `host-rx-rings` (or `host-rings`).
    pub host_rx_rings: Option<u16>,
    /// `tx-slots` (or `slots`).
    pub tx_slots: Option<u32>,
    /// `rx-slots` (or `slots`).
    pub rx_slots: Option<u32>,
}

impl RingConf {
    /// Whether no hint is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The `@extmem` option: a file to map as the memory region, with pool sizes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ExtmemSpec<'a> {
    /// Path of the file (non-empty).
    pub file: &'a str,
    /// `if-num`.
    pub if_num: Option<u32>,
    /// `if-size`.
    pub if_size: Option<u32>,
    /// `ring-num`.
    pub ring_num: Option<u32>,
    /// `ring-size`.
    pub ring_size: Option<u32>,
    /// `buf-num`.
    pub buf_num: Option<u32>,
    /// `buf-size`.
    pub buf_size: Option<u32>,
}

impl ExtmemSpec<'_> {
    fn has_pool_keys(&self) -> bool {
        self.if_num.is_some()
            || self.if_size.is_some()
            || self.ring_num.is_some()
            || self.ring_size.is_some()
            || self.buf_num.is_some()
            || self.buf_size.is_some()
    }
}

/// The `@offset` option (libnetmap sets max offset = initial offset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OffsetSpec {
    /// `initial` (mandatory).
    pub initial: u64,
    /// `bits` (0 when not given).
    pub bits: u32,
}

/// A parsed libnetmap port spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortSpec<'a> {
    /// The name the kernel sees (`nmreq_header.nr_name`): without `netmap:`, with
    /// the `vale…:` prefix and pipe braces.
    pub nr_name: Name,
    /// `nr_mode` (only ALL_NIC, SW, NIC_SW, ONE_NIC, ONE_SW come out of the parser).
    pub mode: RegMode,
    /// `nr_ringid` (0 unless mode is ONE_NIC / ONE_SW).
    pub ringid: u16,
    /// `nr_flags` from `/xztrRT`.
    pub flags: RegFlags,
    /// `@N`: `nr_mem_id`.
    pub mem_id: Option<u16>,
    /// `@conf` hints.
    pub conf: RingConf,
    /// `@share=PORT`: the kernel name of the port whose memory to use (its mem id is
    /// obtained with PORT_INFO_GET when opening; it must agree with `mem_id` if both
    /// are given).
    pub share: Option<Name>,
    /// `@extmem`.
    pub extmem: Option<ExtmemSpec<'a>>,
    /// `@offset`.
    pub offset: Option<OffsetSpec>,
}

/// What is wrong with a port spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortSpecErrorKind {
    /// The spec contains a NUL character.
    Nul,
    /// Neither `netmap` nor `vale` at the start ("prefix unknown").
    UnknownPrefix,
    /// No `:` after the prefix.
    MissingColon,
    /// Something between `netmap` and `:`, or a VALE switch id that is not
    /// `[A-Za-z0-9_]*`.
    BadSwitchName,
    /// Empty port name (vpname).
    EmptyPortName,
    /// The kernel name would be 64 bytes or more.
    NameTooLong,
    /// The text after a pipe brace is not a non-empty `[A-Za-z0-9_]+`.
    BadPipeName,
    /// Unexpected character in the mode / flags / mem id suffix.
    UnexpectedChar,
    /// A digit was expected.
    ExpectedNumber,
    /// Ring number not in `0..4095`.
    RingIdOutOfRange,
    /// Mem id 0 or larger than 65535.
    BadMemId,
    /// Two different mem ids.
    MemIdConflict,
    /// `@` at the end of the suffix.
    EmptyMemId,
    /// The spec ends inside the suffix (after `-` or `/`).
    UnexpectedEnd,
    /// `@@` or a trailing `@` in the options.
    EmptyOption,
    /// Unknown option name.
    UnknownOption,
    /// The option is disabled (see [`ParseOptions`]); maps to `EOPNOTSUPP`.
    OptionDisabled,
    /// Option without a body (`@conf`).
    MissingOptionBody,
    /// `@name=value` for an option without a default key (`@conf=`).
    NoDefaultKey,
    /// Unknown key in an option.
    UnknownKey,
    /// The same key twice in one option.
    DuplicateKey,
    /// A key without `=value`.
    MissingValue,
    /// A value that is not a number in range (or an empty file name).
    BadValue,
    /// A mandatory key (`file`, `port`, `initial`) is missing.
    MissingKey,
    /// `@share`, `@extmem` or `@offset` given twice (differently, for `@share`).
    DuplicateOption,
    /// The `@share` value is not a valid `netmap:`/`vale…:` port name.
    BadShare,
}

impl PortSpecErrorKind {
    fn message(self) -> &'static str {
        match self {
            Self::Nul => "NUL character in port spec",
            Self::UnknownPrefix => "prefix unknown (expected 'netmap:' or 'vale')",
            Self::MissingColon => "missing ':'",
            Self::BadSwitchName => "invalid identifier between prefix and ':'",
            Self::EmptyPortName => "empty port name",
            Self::NameTooLong => "port name too long",
            Self::BadPipeName => "invalid pipe name",
            Self::UnexpectedChar => "unexpected character",
            Self::ExpectedNumber => "number expected",
            Self::RingIdOutOfRange => "ring number out of range [0, 4095)",
            Self::BadMemId => "invalid mem id",
            Self::MemIdConflict => "conflicting mem ids",
            Self::EmptyMemId => "empty mem id",
            Self::UnexpectedEnd => "unexpected end of port spec",
            Self::EmptyOption => "empty option",
            Self::UnknownOption => "unknown option",
            Self::OptionDisabled => "option not enabled",
            Self::MissingOptionBody => "missing option body",
            Self::NoDefaultKey => "option has no default key ('=' not allowed)",
            Self::UnknownKey => "unknown option key",
            Self::DuplicateKey => "duplicate option key",
            Self::MissingValue => "missing '=value' for option key",
            Self::BadValue => "invalid option value",
            Self::MissingKey => "mandatory option key missing",
            Self::DuplicateOption => "option given twice",
            Self::BadShare => "invalid port in @share",
        }
    }
}

/// A port-spec parse error: what and where (byte offset in the input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortSpecError {
    /// What is wrong.
    pub kind: PortSpecErrorKind,
    /// Byte offset in the spec where the problem was found.
    pub pos: usize,
}

impl PortSpecError {
    const fn new(kind: PortSpecErrorKind, pos: usize) -> Self {
        Self { kind, pos }
    }

    /// The errno libnetmap sets: `EOPNOTSUPP` for disabled options, else `EINVAL`.
    pub const fn errno(&self) -> i32 {
        match self.kind {
            PortSpecErrorKind::OptionDisabled => errno::EOPNOTSUPP,
            _ => errno::EINVAL,
        }
    }
}

impl fmt::Display for PortSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.kind.message(), self.pos)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PortSpecError {}

type Result<T> = core::result::Result<T, PortSpecError>;

const fn err<T>(kind: PortSpecErrorKind, pos: usize) -> Result<T> {
    Err(PortSpecError::new(kind, pos))
}

/// The separators that end a vpname.
const VPNAME_END: &[u8] = b"-*^/@";

/// `nmreq_header_decode`: parses `prefix:vpname` at the start of `s`. Returns the
/// kernel name and the offset where the vpname ends.
fn parse_header(s: &[u8], base: usize) -> Result<(Name, usize)> {
    use PortSpecErrorKind as K;
    const NETMAP: &[u8] = b"netmap";
    let vale = NM_BDG_NAME.as_bytes();
    let (skip_prefix, after_prefix) = if s.starts_with(NETMAP) {
        (true, NETMAP.len())
    } else if s.starts_with(vale) {
        (false, vale.len())
    } else {
        return err(K::UnknownPrefix, base);
    };
    let Some(colon) = s[after_prefix..].iter().position(|&c| c == b':') else {
        return err(K::MissingColon, base + after_prefix);
    };
    let colon = after_prefix + colon;
    let id = &s[after_prefix..colon];
    if !id.is_empty() && (skip_prefix || !is_identifier(id)) {
        return err(K::BadSwitchName, base + after_prefix);
    }
    let vpstart = colon + 1;
    let vpend = s[vpstart..]
        .iter()
        .position(|c| VPNAME_END.contains(c))
        .map_or(s.len(), |i| vpstart + i);
    let vpname = &s[vpstart..vpend];
    if vpname.is_empty() {
        return err(K::EmptyPortName, base + vpstart);
    }
    if let Some(brace) = vpname.iter().position(|&c| c == b'{' || c == b'}') {
        let id = &vpname[brace + 1..];
        if id.is_empty() || !is_identifier(id) {
            return err(K::BadPipeName, base + vpstart + brace + 1);
        }
    }
    let name_start = if skip_prefix { vpstart } else { 0 };
    let Some(name) = Name::new(&s[name_start..vpend]) else {
        return err(K::NameTooLong, base + name_start);
    };
    Ok((name, vpend))
}

/// Reads a run of ASCII digits at `s[i..]` (at least one), saturating at
/// `u64::MAX`. Returns the value and the offset after the digits.
fn digits(s: &[u8], i: usize) -> Option<(u64, usize)> {
    let n = s[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let v = s[i..i + n].iter().fold(0u64, |acc, &c| {
        acc.saturating_mul(10).saturating_add(u64::from(c - b'0'))
    });
    Some((v, i + n))
}

/// Result of the register-suffix parser.
struct RegisterSuffix {
    mode: RegMode,
    ringid: u16,
    flags: RegFlags,
    mem_id: Option<u16>,
    /// Where the options start (at an '@' or at the end).
    end: usize,
}

/// The flag characters of `/...`, in canonical order.
const FLAG_CHARS: [(u8, RegFlags); 6] = [
    (b'x', RegFlags::EXCLUSIVE),
    (b'z', RegFlags::ZCOPY_MON),
    (b't', RegFlags::MONITOR_TX),
    (b'r', RegFlags::MONITOR_RX),
    (b'R', RegFlags::RX_RINGS_ONLY),
    (b'T', RegFlags::TX_RINGS_ONLY),
];

/// `nmreq_register_decode`: the mode / flags / mem id suffix starting at `s[i..]`.
fn parse_register(s: &[u8], mut i: usize) -> Result<RegisterSuffix> {
    use PortSpecErrorKind as K;
    #[derive(PartialEq, Eq, Clone, Copy)]
    enum St {
        Start,
        RngSfxOk,
        GetNum,
        Flags,
        FlagsOk,
        MemId,
        OneSw,
    }
    let mut st = St::Start;
    let mut mode = RegMode::AllNic;
    let mut ringid = 0u16;
    let mut flags = RegFlags::empty();
    let mut mem_id: Option<u16> = None;
    while i < s.len() {
        let c = s[i];
        match st {
            St::Start => {
                st = match c {
                    b'^' => {
                        mode = RegMode::Sw;
                        St::OneSw
                    }
                    b'*' => {
                        mode = RegMode::NicSw;
                        St::RngSfxOk
                    }
                    b'-' => {
                        mode = RegMode::OneNic;
                        St::GetNum
                    }
                    b'/' => St::Flags,
                    b'@' => St::MemId,
                    _ => return err(K::UnexpectedChar, i),
                };
                i += 1;
            }
            St::RngSfxOk => {
                st = match c {
                    b'/' => St::Flags,
                    b'@' => St::MemId,
                    _ => return err(K::UnexpectedChar, i),
                };
                i += 1;
            }
            St::GetNum => {
                let Some((v, next)) = digits(s, i) else {
                    return err(K::ExpectedNumber, i);
                };
                if v >= u64::from(NETMAP_RING_MASK) {
                    return err(K::RingIdOutOfRange, i);
                }
                ringid = v as u16;
                i = next;
                st = St::RngSfxOk;
            }
            St::Flags | St::FlagsOk => {
                if c == b'@' {
                    st = St::MemId;
                } else {
                    let Some(&(_, f)) = FLAG_CHARS.iter().find(|(fc, _)| *fc == c) else {
                        return err(K::UnexpectedChar, i);
                    };
                    flags |= f;
                    st = St::FlagsOk;
                }
                i += 1;
            }
            St::MemId => {
                let Some((v, next)) = digits(s, i) else {
                    // A normal '@': the options start there.
                    return Ok(RegisterSuffix {
                        mode,
                        ringid,
                        flags,
                        mem_id,
                        end: i - 1,
                    });
                };
                let id = match u16::try_from(v) {
                    Ok(id) if id > 0 => id,
                    _ => return err(K::BadMemId, i),
                };
                if mem_id.is_some_and(|m| m != id) {
                    return err(K::MemIdConflict, i);
                }
                mem_id = Some(id);
                i = next;
                st = St::RngSfxOk;
            }
            St::OneSw => {
                if c.is_ascii_digit() {
                    mode = RegMode::OneSw;
                    st = St::GetNum;
                } else {
                    st = St::RngSfxOk;
                }
            }
        }
    }
    match st {
        St::MemId => err(K::EmptyMemId, i),
        St::Start | St::RngSfxOk | St::FlagsOk | St::OneSw => Ok(RegisterSuffix {
            mode,
            ringid,
            flags,
            mem_id,
            end: i,
        }),
        St::GetNum | St::Flags => err(K::UnexpectedEnd, i),
    }
}

/// The known options.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opt {
    Share,
    Extmem,
    Conf,
    Offset,
}

impl Opt {
    fn from_name(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"share" => Self::Share,
            b"extmem" => Self::Extmem,
            b"conf" => Self::Conf,
            b"offset" => Self::Offset,
            _ => return None,
        })
    }

    /// Keys (with `_`), in the order the option parser applies them.
    fn keys(self) -> &'static [&'static [u8]] {
        match self {
            Self::Share => &[b"port"],
            Self::Extmem => &[
                b"file",
                b"if_num",
                b"if_size",
                b"ring_num",
                b"ring_size",
                b"buf_num",
                b"buf_size",
            ],
            Self::Conf => &[
                b"rings",
                b"host_rings",
                b"slots",
                b"tx_rings",
                b"rx_rings",
                b"host_tx_rings",
                b"host_rx_rings",
                b"tx_slots",
                b"rx_slots",
            ],
            Self::Offset => &[b"initial", b"bits"],
        }
    }

    /// Index of the default key (`@name=value`), if any; also the mandatory key.
    fn default_key(self) -> Option<usize> {
        match self {
            Self::Conf => None,
            Self::Share | Self::Extmem | Self::Offset => Some(0),
        }
    }
}

/// Maximum number of keys of an option.
const MAX_KEYS: usize = 9;

/// A key's value: `(text, offset in the spec)`.
type KeyValue<'a> = Option<(&'a str, usize)>;

/// Compares a key as written (with `-` read as `_`) with a known key.
fn key_matches(written: &[u8], known: &[u8]) -> bool {
    written.len() == known.len()
        && written
            .iter()
            .zip(known)
            .all(|(&w, &k)| (if w == b'-' { b'_' } else { w }) == k)
}

/// Parses a decimal number in range for `T`.
fn number<T: TryFrom<u64>>(v: (&str, usize)) -> Result<T> {
    let (text, pos) = v;
    let b = text.as_bytes();
    match digits(b, 0) {
        Some((n, end)) if end == b.len() => {
            T::try_from(n).map_err(|_| PortSpecError::new(PortSpecErrorKind::BadValue, pos))
        }
        _ => err(PortSpecErrorKind::BadValue, pos),
    }
}

fn opt_number<T: TryFrom<u64>>(v: KeyValue<'_>) -> Result<Option<T>> {
    v.map(number).transpose()
}

/// Formats a kernel name as the shortest spec prefix that parses back to it:
/// `valeX:port` when that form is valid, else `netmap:name`.
fn write_port_name(f: &mut fmt::Formatter<'_>, name: &Name) -> fmt::Result {
    let b = name.as_bytes();
    let vale = NM_BDG_NAME.as_bytes();
    let vale_form = b.starts_with(vale)
        && b[vale.len()..]
            .iter()
            .position(|&c| c == b':')
            .is_some_and(|i| {
                let colon = vale.len() + i;
                is_identifier(&b[vale.len()..colon]) && colon + 1 < b.len()
            });
    if !vale_form {
        f.write_str("netmap:")?;
    }
    write!(f, "{name}")
}

impl<'a> PortSpec<'a> {
    /// Parses `spec` with the default [`ParseOptions`] (`@offset` disabled).
    pub fn parse(spec: &'a str) -> Result<Self> {
        Self::parse_with(spec, ParseOptions::default())
    }

    /// Parses `spec` (libnetmap `nmport_parse`, spec §7.2).
    pub fn parse_with(spec: &'a str, opts: ParseOptions) -> Result<Self> {
        let s = spec.as_bytes();
        if let Some(p) = s.iter().position(|&c| c == 0) {
            return err(PortSpecErrorKind::Nul, p);
        }
        let (nr_name, vpend) = parse_header(s, 0)?;
        let reg = parse_register(s, vpend)?;
        let mut out = PortSpec {
            nr_name,
            mode: reg.mode,
            ringid: reg.ringid,
            flags: reg.flags,
            mem_id: reg.mem_id,
            conf: RingConf::default(),
            share: None,
            extmem: None,
            offset: None,
        };
        out.parse_options(spec, reg.end, opts)?;
        Ok(out)
    }

    /// `nmreq_options_decode`: `spec[start..]` is empty or starts with `@`.
    fn parse_options(&mut self, spec: &'a str, start: usize, opts: ParseOptions) -> Result<()> {
        let s = spec.as_bytes();
        let mut i = start;
        while i < s.len() {
            // s[i] == b'@' here.
            let ostart = i + 1;
            let oend = s[ostart..]
                .iter()
                .position(|&c| c == b'@')
                .map_or(s.len(), |p| ostart + p);
            if oend == ostart {
                return err(PortSpecErrorKind::EmptyOption, ostart);
            }
            self.parse_option(spec, ostart, oend, opts)?;
            i = oend;
        }
        Ok(())
    }

    /// One option, `spec[start..end]` (without the `@`).
    fn parse_option(
        &mut self,
        spec: &'a str,
        start: usize,
        end: usize,
        opts: ParseOptions,
    ) -> Result<()> {
        use PortSpecErrorKind as K;
        let s = spec.as_bytes();
        let pend = s[start..end]
            .iter()
            .position(|&c| c == b':' || c == b'=')
            .map_or(end, |p| start + p);
        let Some(opt) = Opt::from_name(&s[start..pend]) else {
            return err(K::UnknownOption, start);
        };
        if opt == Opt::Offset && !opts.enable_offset {
            return err(K::OptionDisabled, start);
        }
        let keys = opt.keys();
        let mut vals: [KeyValue<'a>; MAX_KEYS] = [None; MAX_KEYS];
        if pend == end {
            return err(K::MissingOptionBody, pend);
        }
        if s[pend] == b'=' {
            let Some(k) = opt.default_key() else {
                return err(K::NoDefaultKey, pend);
            };
            vals[k] = Some((&spec[pend + 1..end], pend + 1));
        } else {
            // "key=value,key=value"
            let mut i = pend + 1;
            while i < end {
                let kend = s[i..end]
                    .iter()
                    .position(|&c| c == b'=' || c == b',')
                    .map_or(end, |p| i + p);
                let Some(k) = keys.iter().position(|k| key_matches(&s[i..kend], k)) else {
                    return err(K::UnknownKey, i);
                };
                if vals[k].is_some() {
                    return err(K::DuplicateKey, i);
                }
                if kend == end || s[kend] != b'=' {
                    return err(K::MissingValue, kend);
                }
                let vstart = kend + 1;
                let vend = s[vstart..end]
                    .iter()
                    .position(|&c| c == b',')
                    .map_or(end, |p| vstart + p);
                vals[k] = Some((&spec[vstart..vend], vstart));
                i = if vend < end { vend + 1 } else { end };
                if vend + 1 == end {
                    // Trailing ',': an empty key.
                    return err(K::UnknownKey, end);
                }
            }
        }
        if opt.default_key().is_some_and(|k| vals[k].is_none()) {
            return err(K::MissingKey, start);
        }
        match opt {
            Opt::Conf => self.apply_conf(&vals),
            Opt::Share => self.apply_share(vals[0], start),
            Opt::Extmem => self.apply_extmem(&vals, start),
            Opt::Offset => self.apply_offset(&vals, start),
        }
    }

    fn apply_conf(&mut self, v: &[KeyValue<'a>; MAX_KEYS]) -> Result<()> {
        let c = &mut self.conf;
        // Same order as libnetmap: the generic keys first, the specific ones win.
        if let Some(n) = opt_number::<u16>(v[0])? {
            c.tx_rings = Some(n);
            c.rx_rings = Some(n);
        }
        if let Some(n) = opt_number::<u16>(v[1])? {
            c.host_tx_rings = Some(n);
            c.host_rx_rings = Some(n);
        }
        if let Some(n) = opt_number::<u32>(v[2])? {
            c.tx_slots = Some(n);
            c.rx_slots = Some(n);
        }
        if let Some(n) = opt_number(v[3])? {
            c.tx_rings = Some(n);
        }
        if let Some(n) = opt_number(v[4])? {
            c.rx_rings = Some(n);
        }
        if let Some(n) = opt_number(v[5])? {
            c.host_tx_rings = Some(n);
        }
        if let Some(n) = opt_number(v[6])? {
            c.host_rx_rings = Some(n);
        }
        if let Some(n) = opt_number(v[7])? {
            c.tx_slots = Some(n);
        }
        if let Some(n) = opt_number(v[8])? {
            c.rx_slots = Some(n);
        }
        Ok(())
    }

    fn apply_share(&mut self, v: KeyValue<'a>, opt_pos: usize) -> Result<()> {
        let Some((text, pos)) = v else {
            return err(PortSpecErrorKind::MissingKey, opt_pos);
        };
        let (name, _) = parse_header(text.as_bytes(), pos)
            .map_err(|e| PortSpecError::new(PortSpecErrorKind::BadShare, e.pos))?;
        if self.share.is_some_and(|n| n != name) {
            return err(PortSpecErrorKind::DuplicateOption, opt_pos);
        }
        self.share = Some(name);
        Ok(())
    }

    fn apply_extmem(&mut self, v: &[KeyValue<'a>; MAX_KEYS], opt_pos: usize) -> Result<()> {
        if self.extmem.is_some() {
            return err(PortSpecErrorKind::DuplicateOption, opt_pos);
        }
        let Some((file, pos)) = v[0] else {
            return err(PortSpecErrorKind::MissingKey, opt_pos);
        };
        if file.is_empty() {
            return err(PortSpecErrorKind::BadValue, pos);
        }
        self.extmem = Some(ExtmemSpec {
            file,
            if_num: opt_number(v[1])?,
            if_size: opt_number(v[2])?,
            ring_num: opt_number(v[3])?,
            ring_size: opt_number(v[4])?,
            buf_num: opt_number(v[5])?,
            buf_size: opt_number(v[6])?,
        });
        Ok(())
    }

    fn apply_offset(&mut self, v: &[KeyValue<'a>; MAX_KEYS], opt_pos: usize) -> Result<()> {
        if self.offset.is_some() {
            return err(PortSpecErrorKind::DuplicateOption, opt_pos);
        }
        let Some(initial) = opt_number::<u64>(v[0])? else {
            return err(PortSpecErrorKind::MissingKey, opt_pos);
        };
        let bits = opt_number::<u32>(v[1])?.unwrap_or(0);
        self.offset = Some(OffsetSpec { initial, bits });
        Ok(())
    }

    /// The `nmreq_register` body libnetmap builds from this spec (mode, ringid,
    /// flags, mem id, ring/slot hints; 0 where not given).
    pub fn register_body(&self) -> NmreqRegister {
        NmreqRegister {
            nr_mode: self.mode.as_raw(),
            nr_ringid: self.ringid,
            nr_flags: self.flags.bits(),
            nr_mem_id: self.mem_id.unwrap_or(0),
            nr_tx_rings: self.conf.tx_rings.unwrap_or(0),
            nr_rx_rings: self.conf.rx_rings.unwrap_or(0),
            nr_host_tx_rings: self.conf.host_tx_rings.unwrap_or(0),
            nr_host_rx_rings: self.conf.host_rx_rings.unwrap_or(0),
            nr_tx_slots: self.conf.tx_slots.unwrap_or(0),
            nr_rx_slots: self.conf.rx_slots.unwrap_or(0),
            ..NmreqRegister::default()
        }
    }

    /// The OFFSETS option libnetmap adds for `@offset` (max offset = initial;
    /// `nro_next` left 0).
    pub fn offsets_option(&self) -> Option<NmreqOptOffsets> {
        self.offset.map(|o| NmreqOptOffsets {
            nro_opt: NmreqOption {
                nro_reqtype: NETMAP_REQ_OPT_OFFSETS,
                nro_size: core::mem::size_of::<NmreqOptOffsets>() as u64,
                ..NmreqOption::default()
            },
            nro_max_offset: o.initial,
            nro_initial_offset: o.initial,
            nro_offset_bits: o.bits,
            ..NmreqOptOffsets::default()
        })
    }
}

impl fmt::Display for PortSpec<'_> {
    /// The canonical spec: `netmap:NAME` (or `valeX:PORT`), mode, `/flags` in the
    /// order `xztrRT`, `@memid`, then `@conf`, `@share`, `@extmem`, `@offset`.
    /// Modes and flags without spec syntax (e.g. `NR_REG_NULL`,
    /// `NR_ACCEPT_VNET_HDR`) are not written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_port_name(f, &self.nr_name)?;
        match self.mode {
            RegMode::Sw => f.write_str("^")?,
            RegMode::OneSw => write!(f, "^{}", self.ringid)?,
            RegMode::NicSw => f.write_str("*")?,
            RegMode::OneNic => write!(f, "-{}", self.ringid)?,
            _ => {}
        }
        if FLAG_CHARS.iter().any(|(_, fl)| self.flags.contains(*fl)) {
            f.write_str("/")?;
            for (c, fl) in FLAG_CHARS {
                if self.flags.contains(fl) {
                    write!(f, "{}", char::from(c))?;
                }
            }
        }
        if let Some(m) = self.mem_id {
            write!(f, "@{m}")?;
        }
        if !self.conf.is_empty() {
            f.write_str("@conf:")?;
            let c = &self.conf;
            let fields: [(&str, Option<u32>); 6] = [
                ("tx-rings", c.tx_rings.map(u32::from)),
                ("rx-rings", c.rx_rings.map(u32::from)),
                ("host-tx-rings", c.host_tx_rings.map(u32::from)),
                ("host-rx-rings", c.host_rx_rings.map(u32::from)),
                ("tx-slots", c.tx_slots),
                ("rx-slots", c.rx_slots),
            ];
            write_keys(f, &fields)?;
        }
        if let Some(share) = &self.share {
            f.write_str("@share=")?;
            write_port_name(f, share)?;
        }
        if let Some(e) = &self.extmem {
            if e.has_pool_keys() {
                write!(f, "@extmem:file={},", e.file)?;
                let fields: [(&str, Option<u32>); 6] = [
                    ("if-num", e.if_num),
                    ("if-size", e.if_size),
                    ("ring-num", e.ring_num),
                    ("ring-size", e.ring_size),
                    ("buf-num", e.buf_num),
                    ("buf-size", e.buf_size),
                ];
                write_keys(f, &fields)?;
            } else {
                write!(f, "@extmem={}", e.file)?;
            }
        }
        if let Some(o) = &self.offset {
            write!(f, "@offset:initial={}", o.initial)?;
            if o.bits != 0 {
                write!(f, ",bits={}", o.bits)?;
            }
        }
        Ok(())
    }
}

/// Writes `key=value` pairs of the fields that are set, separated by commas.
fn write_keys(f: &mut fmt::Formatter<'_>, fields: &[(&str, Option<u32>)]) -> fmt::Result {
    let mut first = true;
    for (k, v) in fields {
        if let Some(v) = v {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{k}={v}")?;
        }
    }
    Ok(())
}

/// Whether `c` may appear in a vpname (anything but NUL and `- * ^ / @`).
pub fn is_vpname_char(c: u8) -> bool {
    c != 0 && !VPNAME_END.contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PortSpecErrorKind as K;

    fn ok(s: &str) -> PortSpec<'_> {
        PortSpec::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ok_off(s: &str) -> PortSpec<'_> {
        PortSpec::parse_with(
            s,
            ParseOptions {
                enable_offset: true,
            },
        )
        .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn fail(s: &str) -> PortSpecError {
        match PortSpec::parse(s) {
            Ok(v) => panic!("{s}: parsed as {v:?}"),
            Err(e) => e,
        }
    }

    fn kind(s: &str) -> PortSpecErrorKind {
        fail(s).kind
    }

    /// parse → format → parse gives the same value.
    fn round_trip(s: &str, opts: ParseOptions) {
        let a = PortSpec::parse_with(s, opts).unwrap();
        let f = a.to_string();
        let b = PortSpec::parse_with(&f, opts).unwrap_or_else(|e| panic!("{s} → {f}: {e}"));
        assert_eq!(a, b, "{s} → {f}");
    }

    #[test]
    fn spec_examples() {
        // Every example of spec §7.2, with the exact expected values.
        let v = ok("netmap:eth0");
        assert_eq!(v.nr_name, "eth0");
        assert_eq!(
            (v.mode, v.ringid, v.flags),
            (RegMode::AllNic, 0, RegFlags::empty())
        );
        assert_eq!(v.mem_id, None);

        let v = ok("netmap:eth0-2/Tx");
        assert_eq!(v.nr_name, "eth0");
        assert_eq!((v.mode, v.ringid), (RegMode::OneNic, 2));
        assert_eq!(v.flags.bits(), 0x4800);

        let v = ok("netmap:eth0^3");
        assert_eq!(
            (v.nr_name.as_str(), v.mode, v.ringid),
            (Some("eth0"), RegMode::OneSw, 3)
        );

        let v = ok("netmap:eth0*");
        assert_eq!((v.mode, v.ringid), (RegMode::NicSw, 0));

        let v = ok("netmap:eth0@2/R");
        assert_eq!(v.nr_name, "eth0");
        assert_eq!(v.mem_id, Some(2));
        assert_eq!(v.flags.bits(), 0x2000);
        assert_eq!(v.mode, RegMode::AllNic);

        let v = ok("valeXXX:YYY-4");
        assert_eq!(v.nr_name, "valeXXX:YYY");
        assert_eq!((v.mode, v.ringid), (RegMode::OneNic, 4));

        let v = ok("vale0:0{0");
        assert_eq!(v.nr_name, "vale0:0{0");
        assert_eq!(v.mode, RegMode::AllNic);

        let v = ok("netmap:pipe{in-7");
        assert_eq!(v.nr_name, "pipe{in");
        assert_eq!((v.mode, v.ringid), (RegMode::OneNic, 7));

        let v = ok("vale:0");
        assert_eq!(v.nr_name, "vale:0");

        let v = ok("vale0:a");
        assert_eq!(v.nr_name, "vale0:a");

        // Accepted although odd (spec §7.2: the port part is not validated).
        assert_eq!(ok("netmap:eth0.123").nr_name, "eth0.123");
        assert_eq!(ok("netmap:eth0&").nr_name, "eth0&");
        assert_eq!(ok("netmap:vale0:0").nr_name, "vale0:0");
    }

    #[test]
    fn modes_and_flags() {
        let v = ok("netmap:eth0^");
        assert_eq!((v.mode, v.ringid), (RegMode::Sw, 0));
        let v = ok("netmap:eth0^/x");
        assert_eq!((v.mode, v.flags), (RegMode::Sw, RegFlags::EXCLUSIVE));
        let v = ok("netmap:eth0^@3");
        assert_eq!((v.mode, v.mem_id), (RegMode::Sw, Some(3)));
        let v = ok("netmap:eth0/xztrRT");
        assert_eq!(
            v.flags.bits(),
            0x800 | 0x400 | 0x100 | 0x200 | 0x2000 | 0x4000
        );
        let v = ok("netmap:eth0/xx");
        assert_eq!(v.flags, RegFlags::EXCLUSIVE);
        let v = ok("netmap:eth0-0");
        assert_eq!((v.mode, v.ringid), (RegMode::OneNic, 0));
        let v = ok("netmap:eth0-4094");
        assert_eq!(v.ringid, 4094);
        let v = ok("netmap:eth0-007");
        assert_eq!(v.ringid, 7);
        // Mem id before or after the flags, repeated identically.
        let v = ok("netmap:eth0-1@3/t@3");
        assert_eq!(
            (v.ringid, v.mem_id, v.flags),
            (1, Some(3), RegFlags::MONITOR_TX)
        );
        assert_eq!(ok("netmap:eth0@65535").mem_id, Some(65535));
        assert_eq!(ok("netmap:eth0*@1").mode, RegMode::NicSw);
    }

    #[test]
    fn suffix_errors() {
        assert_eq!(kind("netmap:eth0-"), K::UnexpectedEnd);
        assert_eq!(kind("netmap:eth0/"), K::UnexpectedEnd);
        assert_eq!(kind("netmap:eth0-1/"), K::UnexpectedEnd);
        assert_eq!(kind("netmap:eth0-x"), K::ExpectedNumber);
        assert_eq!(kind("netmap:eth0-4095"), K::RingIdOutOfRange);
        assert_eq!(
            kind("netmap:eth0-99999999999999999999999"),
            K::RingIdOutOfRange
        );
        assert_eq!(kind("netmap:eth0^4095"), K::RingIdOutOfRange);
        assert_eq!(kind("netmap:eth0*3"), K::UnexpectedChar);
        assert_eq!(kind("netmap:eth0^*"), K::UnexpectedChar);
        assert_eq!(kind("netmap:eth0-1-2"), K::UnexpectedChar);
        assert_eq!(kind("netmap:eth0-1*"), K::UnexpectedChar);
        assert_eq!(kind("netmap:eth0/q"), K::UnexpectedChar);
        assert_eq!(kind("netmap:eth0/x-1"), K::UnexpectedChar);
        assert_eq!(kind("netmap:eth0@"), K::EmptyMemId);
        assert_eq!(kind("netmap:eth0/x@"), K::EmptyMemId);
        assert_eq!(kind("netmap:eth0@0"), K::BadMemId);
        assert_eq!(kind("netmap:eth0@65536"), K::BadMemId);
        assert_eq!(kind("netmap:eth0@1@2"), K::MemIdConflict);
        assert_eq!(kind("netmap:eth0@2-1"), K::UnexpectedChar);
        assert_eq!(kind("netmap:eth0@2x"), K::UnexpectedChar);
        // Positions.
        assert_eq!(fail("netmap:eth0-x").pos, 12);
        assert_eq!(fail("netmap:eth0/q").pos, 12);
    }

    #[test]
    fn header_errors() {
        assert_eq!(kind(""), K::UnknownPrefix);
        assert_eq!(kind("eth0"), K::UnknownPrefix);
        assert_eq!(kind("net:eth0"), K::UnknownPrefix);
        assert_eq!(kind("Netmap:eth0"), K::UnknownPrefix);
        assert_eq!(kind("netmap"), K::MissingColon);
        assert_eq!(kind("vale0"), K::MissingColon);
        assert_eq!(kind("netmapX:eth0"), K::BadSwitchName);
        assert_eq!(kind("netmap_:eth0"), K::BadSwitchName);
        assert_eq!(kind("vale0-1:a"), K::BadSwitchName);
        assert_eq!(kind("vale.:a"), K::BadSwitchName);
        assert_eq!(kind("netmap:"), K::EmptyPortName);
        assert_eq!(kind("vale0:"), K::EmptyPortName);
        assert_eq!(kind("netmap:-1"), K::EmptyPortName);
        assert_eq!(kind("vale0:@conf:rings=1"), K::EmptyPortName);
        assert_eq!(kind("netmap:eth\0"), K::Nul);
        // Pipe ids: a non-empty identifier after the first brace.
        assert_eq!(kind("netmap:pipe{1}2"), K::BadPipeName);
        assert_eq!(kind("netmap:pipe{"), K::BadPipeName);
        assert_eq!(kind("netmap:pipe{-1"), K::BadPipeName);
        assert_eq!(kind("netmap:pipe}a.b"), K::BadPipeName);
        assert_eq!(kind("netmap:a{b{c"), K::BadPipeName);
        assert_eq!(ok("netmap:pipe}x_1").nr_name, "pipe}x_1");
        assert_eq!(ok("netmap:{x").nr_name, "{x");
        // Name length: 63 ok, 64 too long (with and without prefix).
        let n63 = format!("netmap:{}", "a".repeat(63));
        assert_eq!(ok(&n63).nr_name.len(), 63);
        let n64 = format!("netmap:{}", "a".repeat(64));
        assert_eq!(kind(&n64), K::NameTooLong);
        let v63 = format!("vale0:{}", "a".repeat(57));
        assert_eq!(ok(&v63).nr_name.len(), 63);
        let v64 = format!("vale0:{}", "a".repeat(58));
        assert_eq!(kind(&v64), K::NameTooLong);
        for s in ["eth0", "netmap", "netmap:", "netmap:pipe{1}2"] {
            assert_eq!(fail(s).errno(), errno::EINVAL);
        }
    }

    #[test]
    fn conf_option() {
        let v = ok("netmap:eth0@conf:rings=4,slots=1024");
        let c = v.conf;
        assert_eq!((c.tx_rings, c.rx_rings), (Some(4), Some(4)));
        assert_eq!((c.tx_slots, c.rx_slots), (Some(1024), Some(1024)));
        assert_eq!((c.host_tx_rings, c.host_rx_rings), (None, None));
        // Specific keys win whatever their order.
        let c = ok("netmap:eth0@conf:tx-rings=2,rings=4,host-rings=1,host_rx_rings=3").conf;
        assert_eq!((c.tx_rings, c.rx_rings), (Some(2), Some(4)));
        assert_eq!((c.host_tx_rings, c.host_rx_rings), (Some(1), Some(3)));
        let c = ok("vale0:a@conf:tx-slots=10,rx-slots=20,slots=5,host-tx-rings=7").conf;
        assert_eq!(
            (c.tx_slots, c.rx_slots, c.host_tx_rings),
            (Some(10), Some(20), Some(7))
        );
        // Several @conf accumulate, later ones override.
        let c = ok("netmap:eth0@conf:rings=2@conf:rx-rings=3").conf;
        assert_eq!((c.tx_rings, c.rx_rings), (Some(2), Some(3)));
        // Empty body is a no-op.
        assert!(ok("netmap:eth0@conf:").conf.is_empty());
        // After mode, flags and mem id.
        let v = ok("netmap:eth0-1/x@3@conf:rings=2");
        assert_eq!((v.ringid, v.mem_id, v.conf.tx_rings), (1, Some(3), Some(2)));
        let v = ok("netmap:eth0/R@conf:rings=2");
        assert_eq!(
            (v.flags, v.conf.rx_rings),
            (RegFlags::RX_RINGS_ONLY, Some(2))
        );
        let r = v.register_body();
        assert_eq!((r.nr_tx_rings, r.nr_rx_rings, r.nr_flags), (2, 2, 0x2000));
        assert_eq!(r.nr_mode, crate::consts::NR_REG_ALL_NIC);
    }

    #[test]
    fn option_errors() {
        assert_eq!(kind("netmap:eth0@conf"), K::MissingOptionBody);
        assert_eq!(kind("netmap:eth0@conf=3"), K::NoDefaultKey);
        assert_eq!(kind("netmap:eth0@conf:ring=3"), K::UnknownKey);
        assert_eq!(kind("netmap:eth0@conf:rings=3,"), K::UnknownKey);
        assert_eq!(kind("netmap:eth0@conf:,rings=3"), K::UnknownKey);
        assert_eq!(kind("netmap:eth0@conf:rings"), K::MissingValue);
        assert_eq!(kind("netmap:eth0@conf:rings,slots=2"), K::MissingValue);
        assert_eq!(kind("netmap:eth0@conf:rings=1,rings=2"), K::DuplicateKey);
        assert_eq!(kind("netmap:eth0@conf:rings=x"), K::BadValue);
        assert_eq!(kind("netmap:eth0@conf:rings="), K::BadValue);
        assert_eq!(kind("netmap:eth0@conf:rings=-1"), K::BadValue);
        assert_eq!(kind("netmap:eth0@conf:rings=65536"), K::BadValue);
        assert_eq!(kind("netmap:eth0@conf:slots=4294967296"), K::BadValue);
        assert_eq!(kind("netmap:eth0@foo"), K::UnknownOption);
        assert_eq!(kind("netmap:eth0@=1"), K::UnknownOption);
        assert_eq!(kind("netmap:eth0@conf:rings=1@"), K::EmptyOption);
        assert_eq!(kind("netmap:eth0@@conf:rings=1"), K::EmptyOption);
        assert_eq!(kind("netmap:eth0@conf:rings=1@2"), K::UnknownOption);
        assert_eq!(fail("netmap:eth0@foo").errno(), errno::EINVAL);
    }

    #[test]
    fn share_option() {
        let v = ok("netmap:eth0@share=netmap:eth1");
        assert_eq!(v.share, Some(Name::new(b"eth1").unwrap()));
        let v = ok("vale0:a@share:port=vale0:b");
        assert_eq!(v.share, Some(Name::new(b"vale0:b").unwrap()));
        // The suffix of the shared port is ignored (only its name matters).
        let v = ok("netmap:eth0@share=netmap:eth1-2/x");
        assert_eq!(v.share, Some(Name::new(b"eth1").unwrap()));
        // Same share twice is fine; different ones are not.
        assert!(
            ok("netmap:eth0@share=netmap:x@share=netmap:x")
                .share
                .is_some()
        );
        assert_eq!(
            kind("netmap:eth0@share=netmap:x@share=netmap:y"),
            K::DuplicateOption
        );
        assert_eq!(kind("netmap:eth0@share=eth1"), K::BadShare);
        assert_eq!(kind("netmap:eth0@share="), K::BadShare);
        assert_eq!(kind("netmap:eth0@share:port="), K::BadShare);
        assert_eq!(kind("netmap:eth0@share:"), K::MissingKey);
        assert_eq!(kind("netmap:eth0@share"), K::MissingOptionBody);
        assert_eq!(fail("netmap:eth0@share=eth1").pos, 18);
    }

    #[test]
    fn extmem_option() {
        let v = ok("netmap:eth0@extmem=/tmp/mem");
        let e = v.extmem.unwrap();
        assert_eq!(e.file, "/tmp/mem");
        assert_eq!(e.if_num, None);
        let v = ok(
            "netmap:eth0@extmem:file=/x,if-num=10,if-size=1024,ring-num=4,ring-size=9000,buf-num=100,buf-size=2048",
        );
        let e = v.extmem.unwrap();
        assert_eq!(e.file, "/x");
        assert_eq!(
            (
                e.if_num,
                e.if_size,
                e.ring_num,
                e.ring_size,
                e.buf_num,
                e.buf_size
            ),
            (
                Some(10),
                Some(1024),
                Some(4),
                Some(9000),
                Some(100),
                Some(2048)
            )
        );
        assert_eq!(kind("netmap:eth0@extmem:if-num=1"), K::MissingKey);
        assert_eq!(kind("netmap:eth0@extmem="), K::BadValue);
        assert_eq!(kind("netmap:eth0@extmem=/a@extmem=/b"), K::DuplicateOption);
    }

    #[test]
    fn offset_option() {
        let e = fail("netmap:eth0@offset:initial=64");
        assert_eq!(e.kind, K::OptionDisabled);
        assert_eq!(e.errno(), errno::EOPNOTSUPP);
        // Disabled is reported before the body is looked at.
        assert_eq!(kind("netmap:eth0@offset:garbage"), K::OptionDisabled);
        let v = ok_off("netmap:eth0@offset:initial=64,bits=8");
        assert_eq!(
            v.offset,
            Some(OffsetSpec {
                initial: 64,
                bits: 8
            })
        );
        let v = ok_off("vale0:a@offset=128");
        assert_eq!(
            v.offset,
            Some(OffsetSpec {
                initial: 128,
                bits: 0
            })
        );
        let o = v.offsets_option().unwrap();
        assert_eq!(o.nro_opt.nro_reqtype, NETMAP_REQ_OPT_OFFSETS);
        assert_eq!(o.nro_opt.nro_size, 56);
        assert_eq!(
            (o.nro_max_offset, o.nro_initial_offset, o.nro_offset_bits),
            (128, 128, 0)
        );
        let opts = ParseOptions {
            enable_offset: true,
        };
        let kind_off = |s| PortSpec::parse_with(s, opts).unwrap_err().kind;
        assert_eq!(kind_off("netmap:eth0@offset:bits=3"), K::MissingKey);
        assert_eq!(
            kind_off("netmap:eth0@offset=1@offset=2"),
            K::DuplicateOption
        );
    }

    #[test]
    fn display_canonical() {
        let cases = [
            ("netmap:eth0", "netmap:eth0"),
            ("netmap:eth0-2/Tx", "netmap:eth0-2/xT"),
            ("netmap:eth0^3", "netmap:eth0^3"),
            ("netmap:eth0^", "netmap:eth0^"),
            ("netmap:eth0*", "netmap:eth0*"),
            ("netmap:eth0@2/R", "netmap:eth0/R@2"),
            ("valeXXX:YYY-4", "valeXXX:YYY-4"),
            ("vale0:0{0", "vale0:0{0"),
            ("netmap:pipe{in-7", "netmap:pipe{in-7"),
            ("vale:0", "vale:0"),
            ("netmap:vale0:0", "vale0:0"),
            ("netmap:vale0", "netmap:vale0"),
            ("netmap:vale0:", "netmap:vale0:"),
            ("netmap:valeA.b:c", "netmap:valeA.b:c"),
            (
                "netmap:eth0@conf:rings=2,host-rings=1,slots=8",
                "netmap:eth0@conf:tx-rings=2,rx-rings=2,host-tx-rings=1,host-rx-rings=1,tx-slots=8,rx-slots=8",
            ),
            ("netmap:eth0@share=vale0:a-1", "netmap:eth0@share=vale0:a"),
            ("netmap:eth0@extmem:file=/f", "netmap:eth0@extmem=/f"),
            (
                "netmap:eth0@extmem:file=/f,buf-num=3",
                "netmap:eth0@extmem:file=/f,buf-num=3",
            ),
            ("netmap:eth0@offset=4", "netmap:eth0@offset:initial=4"),
            (
                "netmap:eth0@offset:bits=7,initial=4",
                "netmap:eth0@offset:initial=4,bits=7",
            ),
        ];
        let opts = ParseOptions {
            enable_offset: true,
        };
        for (input, canon) in cases {
            let v = PortSpec::parse_with(input, opts).unwrap();
            assert_eq!(v.to_string(), canon, "{input}");
            round_trip(input, opts);
        }
    }

    #[test]
    fn borrowed_strings_stay_in_input() {
        let s = String::from("netmap:eth0@extmem:file=/a,b");
        // ",b" is an unknown key after file=/a.
        assert_eq!(PortSpec::parse(&s).unwrap_err().kind, K::UnknownKey);
        let s = String::from("netmap:eth0@extmem=/a,b=c");
        let v = PortSpec::parse(&s).unwrap();
        assert_eq!(v.extmem.unwrap().file, "/a,b=c");
        round_trip(&s, ParseOptions::default());
    }
}
