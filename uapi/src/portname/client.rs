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
        if let Some(k) = opt.default_key() {
            if vals[k].is_none() {
                return err(K::MissingKey, start);
            }
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
