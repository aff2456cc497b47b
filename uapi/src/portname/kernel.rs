//! The kernel's interpretation of `nr_name` (spec §7.1).
//!
//! [`classify`] decides, in the kernel's order, what kind of port a REGISTER-like
//! request names. It does not look anything up: monitors and pipes name a *parent*
//! that the caller resolves recursively by calling [`classify`] again.

use super::{Name, is_id_char};
use crate::consts::{
    IFNAMSIZ, NR_REG_ALL_NIC, NR_REG_NULL, NR_REG_ONE_NIC, NR_REG_PIPE_MASTER, NR_REG_PIPE_SLAVE,
    RegFlags, errno,
};
use core::fmt;

/// Which end of a pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PipeRole {
    /// `parent{id`.
    Master,
    /// `parent}id`.
    Slave,
}

/// What a REGISTER-like request names (spec §7.1), in the kernel's order of checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelPort {
    /// `nr_mode == NR_REG_NULL`: a null port; its adapter is named `null:<name>`.
    Null {
        /// The name as given.
        name: Name,
    },
    /// Monitor flags in `nr_flags`: a monitor of `parent`. Resolve the parent with
    /// [`classify`] again, with `nr_flags & !RegFlags::MONITOR_MASK`.
    Monitor {
        /// The monitor flags of the request (`nr_flags & MONITOR_MASK`, as given:
        /// the kernel additionally ORs TX|RX into a zero-copy request).
        flags: RegFlags,
        /// The monitored port's name (the whole name).
        parent: Name,
    },
    /// A pipe endpoint `parent{id` or `parent}id`. Resolve the parent with
    /// [`classify`] again (same mode and flags).
    Pipe {
        /// Text before the splitting brace (non-empty).
        parent: Name,
        /// Text after the splitting brace (non-empty, arbitrary bytes).
        id: Name,
        /// Master (`{`) or slave (`}`).
        role: PipeRole,
    },
    /// A VALE port `switch:port`.
    Vale {
        /// Switch name: everything before the first colon (`[A-Za-z0-9_]`, ≤ 15).
        switch: Name,
        /// Port part after the colon (≤ 15 bytes, not validated, may be empty).
        port: Name,
    },
    /// An OS network interface (also persistent VALE ports created by NEWIF).
    Netif {
        /// The interface name.
        name: Name,
    },
}

/// Why a VALE name (`val…`) is malformed (the kernel's `nm_vale_name_validate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValeNameError {
    /// Shorter than 4 bytes (`strlen("vale")`).
    TooShort,
    /// No `:` within the first 16 bytes.
    NoColon,
    /// A byte before the colon is not `[A-Za-z0-9_]`.
    BadSwitchChar {
        /// Position of the offending byte.
        pos: usize,
    },
    /// The part after the colon is longer than 15 bytes.
    PortTooLong,
}

impl fmt::Display for ValeNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("VALE name shorter than 4 characters"),
            Self::NoColon => f.write_str("no ':' within the first 16 characters of the VALE name"),
            Self::BadSwitchChar { pos } => {
                write!(
                    f,
                    "invalid character at position {pos} of the VALE switch name"
                )
            }
            Self::PortTooLong => f.write_str("VALE port name longer than 15 characters"),
        }
    }
}

/// Why [`classify`] rejects a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelNameError {
    /// `nr_mode` is the deprecated `NR_REG_PIPE_MASTER`/`NR_REG_PIPE_SLAVE` (`EINVAL`).
    DeprecatedPipeMode,
    /// The splitting brace is the first character (`EINVAL`).
    PipeEmptyParent,
    /// The splitting brace is the last character (`EINVAL`).
    PipeEmptyId,
    /// A pipe with a mode other than ALL_NIC / ONE_NIC (`EINVAL`).
    PipeMode {
        /// The rejected `nr_mode`.
        mode: u32,
    },
    /// A `val…` name with bad syntax: `ENOMEM` when the lookup was allowed to create
    /// the port, `ENXIO` otherwise.
    ValeSyntax {
        /// What is wrong.
        error: ValeNameError,
        /// Whether the lookup was a creating one.
        create: bool,
    },
}

impl KernelNameError {
    /// The errno the reference kernel returns for this error.
    pub const fn errno(&self) -> i32 {
        match self {
            Self::DeprecatedPipeMode
            | Self::PipeEmptyParent
            | Self::PipeEmptyId
            | Self::PipeMode { .. } => errno::EINVAL,
            Self::ValeSyntax { create: true, .. } => errno::ENOMEM,
            Self::ValeSyntax { create: false, .. } => errno::ENXIO,
        }
    }
}

impl fmt::Display for KernelNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DeprecatedPipeMode => {
                f.write_str("deprecated pipe nr_mode, use the xx{yy or xx}yy syntax")
            }
            Self::PipeEmptyParent => f.write_str("pipe name without a parent port"),
            Self::PipeEmptyId => f.write_str("pipe name without a pipe id"),
            Self::PipeMode { mode } => write!(f, "pipes need mode ALL_NIC or ONE_NIC, not {mode}"),
            Self::ValeSyntax { error, .. } => error.fmt(f),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for KernelNameError {}

#[cfg(feature = "std")]
impl std::error::Error for ValeNameError {}

/// Whether the kernel treats `name` as a VALE name: its first 3 bytes are `val`
/// (the reference compares `strlen("vale") - 1` characters, spec §15.1).
pub fn is_vale_name(name: &[u8]) -> bool {
    name.starts_with(b"val")
}

/// Splits a VALE name into `(switch, port)` with the kernel's validation
/// (`nm_vale_name_validate`, spec §7.1/§8.1). `name` stops at the first NUL.
///
/// The switch part is everything before the first `:`, which must be within the
/// first 16 bytes, with only `[A-Za-z0-9_]` before it; the port part is at most 15
/// bytes and otherwise not validated (it may be empty). The `val` prefix itself is
/// not checked here.
pub fn parse_vale_name(name: &[u8]) -> Result<(Name, Name), ValeNameError> {
    let name = Name::from_c(name);
    let b = name.as_bytes();
    if b.len() < crate::consts::NM_BDG_NAME.len() {
        return Err(ValeNameError::TooShort);
    }
    let mut colon = None;
    for (i, &c) in b.iter().take(IFNAMSIZ).enumerate() {
        if c == b':' {
            colon = Some(i);
            break;
        }
        if !is_id_char(c) {
            return Err(ValeNameError::BadSwitchChar { pos: i });
        }
    }
    let Some(colon) = colon else {
        return Err(ValeNameError::NoColon);
    };
    if b.len() - colon > IFNAMSIZ {
        return Err(ValeNameError::PortTooLong);
    }
    let switch = Name::new(&b[..colon]).unwrap_or_default();
    let port = Name::new(&b[colon + 1..]).unwrap_or_default();
    Ok((switch, port))
}

/// Classifies `nr_name` for a REGISTER-like request with `nr_mode` and `nr_flags`
/// (spec §7.1). `nr_name` is read like the kernel does: up to the first NUL, at
/// most 63 bytes.
///
/// `create` says whether the lookup may create the port (REGISTER, PORT_INFO_GET,
/// POOLS_INFO_GET do; HDR_GET, ... do not); it only selects the errno of VALE syntax
/// errors (see [`KernelNameError::errno`]).
///
/// Order: deprecated pipe modes → `EINVAL`; null port; monitor; pipe; VALE;
/// network interface.
///
/// For requests other than REGISTER the reference kernel looks the port up with a
/// synthesized register body (`NR_REG_ALL_NIC`, flags 0): pass those, so that the
/// null-port and monitor cases cannot match.
pub fn classify(
    nr_name: &[u8],
    nr_mode: u32,
    nr_flags: u64,
    create: bool,
) -> Result<KernelPort, KernelNameError> {
    let name = Name::from_c(nr_name);
    let b = name.as_bytes();

    if nr_mode == NR_REG_PIPE_MASTER || nr_mode == NR_REG_PIPE_SLAVE {
        return Err(KernelNameError::DeprecatedPipeMode);
    }
    if nr_mode == NR_REG_NULL {
        return Ok(KernelPort::Null { name });
    }
    let mon = RegFlags::from_bits_retain(nr_flags) & RegFlags::MONITOR_MASK;
    if !mon.is_empty() {
        return Ok(KernelPort::Monitor {
            flags: mon,
            parent: name,
        });
    }
    let brace = match b.iter().rposition(|&c| c == b'{') {
        Some(i) => Some((i, PipeRole::Master)),
        None => b
            .iter()
            .rposition(|&c| c == b'}')
            .map(|i| (i, PipeRole::Slave)),
    };
    if let Some((i, role)) = brace {
        if i + 1 == b.len() {
            return Err(KernelNameError::PipeEmptyId);
        }
        if i == 0 {
            return Err(KernelNameError::PipeEmptyParent);
        }
        if nr_mode != NR_REG_ALL_NIC && nr_mode != NR_REG_ONE_NIC {
            return Err(KernelNameError::PipeMode { mode: nr_mode });
        }
        return Ok(KernelPort::Pipe {
            parent: Name::new(&b[..i]).unwrap_or_default(),
            id: Name::new(&b[i + 1..]).unwrap_or_default(),
            role,
        });
    }
    if is_vale_name(b) {
        return match parse_vale_name(b) {
            Ok((switch, port)) => Ok(KernelPort::Vale { switch, port }),
            Err(error) => Err(KernelNameError::ValeSyntax { error, create }),
        };
    }
    Ok(KernelPort::Netif { name })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::*;

    fn n(s: &str) -> Name {
        Name::new(s.as_bytes()).unwrap()
    }

    fn reg(name: &str) -> Result<KernelPort, KernelNameError> {
        classify(name.as_bytes(), NR_REG_ALL_NIC, 0, true)
    }

    #[test]
    fn netif() {
        assert_eq!(reg("eth0"), Ok(KernelPort::Netif { name: n("eth0") }));
        assert_eq!(reg(""), Ok(KernelPort::Netif { name: n("") }));
        // Stops at NUL and at 63 bytes.
        assert_eq!(
            classify(b"eth0\0junk", NR_REG_ONE_NIC, 0, false),
            Ok(KernelPort::Netif { name: n("eth0") })
        );
        let long = [b'e'; 64];
        assert_eq!(
            reg(core::str::from_utf8(&long).unwrap()),
            Ok(KernelPort::Netif {
                name: Name::new(&long[..63]).unwrap()
            })
        );
    }

    #[test]
    fn null_port_wins_over_everything() {
        for name in ["x", "vale0:a", "p{1", "val", "eth0"] {
            assert_eq!(
                classify(name.as_bytes(), NR_REG_NULL, NR_MONITOR_TX, true),
                Ok(KernelPort::Null { name: n(name) })
            );
        }
    }

    #[test]
    fn deprecated_pipe_modes() {
        for mode in [NR_REG_PIPE_MASTER, NR_REG_PIPE_SLAVE] {
            let e = classify(b"eth0", mode, 0, true).unwrap_err();
            assert_eq!(e, KernelNameError::DeprecatedPipeMode);
            assert_eq!(e.errno(), errno::EINVAL);
        }
    }

    #[test]
    fn monitor() {
        assert_eq!(
            classify(b"vale0:a{3", NR_REG_SW, NR_MONITOR_TX | NR_EXCLUSIVE, true),
            Ok(KernelPort::Monitor {
                flags: RegFlags::MONITOR_TX,
                parent: n("vale0:a{3")
            })
        );
        assert_eq!(
            classify(b"eth0", NR_REG_ALL_NIC, NR_ZCOPY_MON, true),
            Ok(KernelPort::Monitor {
                flags: RegFlags::ZCOPY_MON,
                parent: n("eth0")
            })
        );
    }

    #[test]
    fn pipes() {
        assert_eq!(
            reg("pipe{in"),
            Ok(KernelPort::Pipe {
                parent: n("pipe"),
                id: n("in"),
                role: PipeRole::Master
            })
        );
        assert_eq!(
            classify(b"vale0:0}1", NR_REG_ONE_NIC, 0, true),
            Ok(KernelPort::Pipe {
                parent: n("vale0:0"),
                id: n("1"),
                role: PipeRole::Slave
            })
        );
        // The last '{' splits; '}' is used only if there is no '{'.
        assert_eq!(
            reg("a{b}c{d"),
            Ok(KernelPort::Pipe {
                parent: n("a{b}c"),
                id: n("d"),
                role: PipeRole::Master
            })
        );
        assert_eq!(
            reg("a}b{c}d"),
            Ok(KernelPort::Pipe {
                parent: n("a}b"),
                id: n("c}d"),
                role: PipeRole::Master
            })
        );
        assert_eq!(
            reg("a}b}c"),
            Ok(KernelPort::Pipe {
                parent: n("a}b"),
                id: n("c"),
                role: PipeRole::Slave
            })
        );
        // Pipe ids are arbitrary bytes for the kernel.
        assert_eq!(
            reg("p{x.y-z"),
            Ok(KernelPort::Pipe {
                parent: n("p"),
                id: n("x.y-z"),
                role: PipeRole::Master
            })
        );
    }

    #[test]
    fn pipe_errors() {
        assert_eq!(reg("pipe{"), Err(KernelNameError::PipeEmptyId));
        assert_eq!(reg("{1"), Err(KernelNameError::PipeEmptyParent));
        assert_eq!(reg("{"), Err(KernelNameError::PipeEmptyId));
        assert_eq!(reg("}"), Err(KernelNameError::PipeEmptyId));
        for mode in [NR_REG_SW, NR_REG_NIC_SW, NR_REG_ONE_SW, NR_REG_DEFAULT, 99] {
            let e = classify(b"p{1", mode, 0, true).unwrap_err();
            assert_eq!(e, KernelNameError::PipeMode { mode });
            assert_eq!(e.errno(), errno::EINVAL);
        }
        assert_eq!(reg("p{").unwrap_err().errno(), errno::EINVAL);
    }

    #[test]
    fn vale() {
        assert_eq!(
            reg("vale0:a"),
            Ok(KernelPort::Vale {
                switch: n("vale0"),
                port: n("a")
            })
        );
        assert_eq!(
            reg("vale:0"),
            Ok(KernelPort::Vale {
                switch: n("vale"),
                port: n("0")
            })
        );
        // "val" prefix is enough (spec §15.1).
        assert_eq!(
            reg("valid0:x"),
            Ok(KernelPort::Vale {
                switch: n("valid0"),
                port: n("x")
            })
        );
        // Port part not validated; may be empty; may contain ':'.
        assert_eq!(
            reg("vale1:a:b.c"),
            Ok(KernelPort::Vale {
                switch: n("vale1"),
                port: n("a:b.c")
            })
        );
        assert_eq!(
            reg("vale1:"),
            Ok(KernelPort::Vale {
                switch: n("vale1"),
                port: n("")
            })
        );
        // 15-char switch, 15-char port.
        assert_eq!(
            reg("valeabcdefghijk:123456789012345"),
            Ok(KernelPort::Vale {
                switch: n("valeabcdefghijk"),
                port: n("123456789012345")
            })
        );
    }

    #[test]
    fn vale_errors() {
        let cases = [
            ("val", ValeNameError::TooShort),
            ("vale", ValeNameError::NoColon),
            ("vale0", ValeNameError::NoColon),
            ("valid0", ValeNameError::NoColon),
            ("vale0-x:a", ValeNameError::BadSwitchChar { pos: 5 }),
            ("vale.:a", ValeNameError::BadSwitchChar { pos: 4 }),
            // Colon at position 16 is too far.
            ("valeabcdefghijkl:a", ValeNameError::NoColon),
            ("vale0:1234567890123456", ValeNameError::PortTooLong),
        ];
        for (name, err) in cases {
            let e = classify(name.as_bytes(), NR_REG_ALL_NIC, 0, true).unwrap_err();
            assert_eq!(
                e,
                KernelNameError::ValeSyntax {
                    error: err,
                    create: true
                },
                "{name}"
            );
            assert_eq!(e.errno(), errno::ENOMEM);
            let e = classify(name.as_bytes(), NR_REG_ALL_NIC, 0, false).unwrap_err();
            assert_eq!(e.errno(), errno::ENXIO);
        }
        // Not a VALE name: "va" prefix only.
        assert_eq!(reg("vaXe0"), Ok(KernelPort::Netif { name: n("vaXe0") }));
    }
}
