//! The port-name parsers (spec §7): the kernel's `classify` with arbitrary
//! bytes, mode, flags and create; libnetmap's `PortSpec::parse` (with and
//! without `@offset`) and the legacy `parse_nm_open` on arbitrary strings.
//!
//! Invariants: no panic; `classify`'s pieces put back together give the
//! name it was given; every successful `PortSpec` parse formats (`Display`)
//! to a spec that parses back to the same value, and formatting is then a
//! fixed point; every successful legacy parse, written back in the legacy
//! grammar, parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netmap_fuzz::Reader;
use netmap_uapi::consts::{RegFlags, RegMode};
use netmap_uapi::portname::{
    KernelPort, LegacySpec, Name, ParseOptions, PipeRole, PortSpec, classify, parse_nm_open,
};
use std::fmt::Write;

fn check_classify(r: &mut Reader<'_>) {
    let mode = match r.u8() % 4 {
        0 => r.u32(),
        _ => u32::from(r.u8() % 10),
    };
    let flags = match r.u8() % 4 {
        0 => r.u64(),
        1 => u64::from(r.u32()) & 0x3ff00,
        _ => 0,
    };
    let create = r.bool();
    let name = r.rest();
    let whole = Name::from_c(name);
    match classify(name, mode, flags, create) {
        Ok(KernelPort::Null { name }) | Ok(KernelPort::Netif { name }) => {
            assert_eq!(name, whole);
        }
        Ok(KernelPort::Monitor { flags: f, parent }) => {
            assert!(!f.is_empty());
            assert_eq!(parent, whole);
        }
        Ok(KernelPort::Pipe { parent, id, role }) => {
            assert!(!parent.is_empty() && !id.is_empty(), "{parent:?} {id:?}");
            let brace: &[u8] = if role == PipeRole::Master { b"{" } else { b"}" };
            let joined = [parent.as_bytes(), brace, id.as_bytes()].concat();
            assert_eq!(joined.as_slice(), whole.as_bytes());
            // The parent is classified again by the kernel: must not panic.
            let _ = classify(parent.as_bytes(), mode, flags, create);
        }
        Ok(KernelPort::Vale { switch, port }) => {
            assert!(
                switch.len() <= 15 && port.len() <= 15,
                "{switch:?} {port:?}"
            );
            let joined = [switch.as_bytes(), b":", port.as_bytes()].concat();
            assert_eq!(joined.as_slice(), whole.as_bytes());
        }
        Err(e) => {
            let _ = e.errno();
            let _ = e.to_string();
        }
    }
}

fn check_portspec(s: &str, opts: ParseOptions) {
    let Ok(spec) = PortSpec::parse_with(s, opts) else {
        return;
    };
    let _ = spec.register_body();
    let _ = spec.offsets_option();
    let text = spec.to_string();
    let again = PortSpec::parse_with(&text, opts)
        .unwrap_or_else(|e| panic!("{s:?} -> {text:?} does not parse: {e}"));
    assert_eq!(again, spec, "{s:?} -> {text:?} parses differently");
    assert_eq!(again.to_string(), text, "formatting is not a fixed point");
}

/// A legacy spec in the `nm_open` grammar (`netmap:` prefix, mode suffix,
/// flags, mem id).
fn legacy_text(l: &LegacySpec) -> String {
    let mut t = String::from("netmap:");
    t.push_str(l.nr_name.as_str().expect("parsed names are UTF-8"));
    match l.mode {
        RegMode::Sw => t.push('^'),
        RegMode::NicSw => t.push('*'),
        RegMode::OneNic => write!(t, "-{}", l.ringid).unwrap(),
        RegMode::PipeMaster => write!(t, "{{{}", l.ringid).unwrap(),
        RegMode::PipeSlave => write!(t, "}}{}", l.ringid).unwrap(),
        _ => {}
    }
    const FLAGS: [(char, RegFlags); 6] = [
        ('x', RegFlags::EXCLUSIVE),
        ('z', RegFlags::ZCOPY_MON),
        ('t', RegFlags::MONITOR_TX),
        ('r', RegFlags::MONITOR_RX),
        ('R', RegFlags::RX_RINGS_ONLY),
        ('T', RegFlags::TX_RINGS_ONLY),
    ];
    if !l.flags.is_empty() {
        t.push('/');
        for (c, f) in FLAGS {
            if l.flags.contains(f) {
                t.push(c);
            }
        }
    }
    if l.mem_id != 0 {
        write!(t, "@{}", l.mem_id).unwrap();
    }
    t
}

fn check_legacy(s: &str) {
    let Ok(l) = parse_nm_open(s) else {
        return;
    };
    assert!(l.nr_name.len() < 16);
    let nmr = l.to_nmreq();
    assert_eq!(nmr.nr_flags & 0xf, l.mode.as_raw());
    let text = legacy_text(&l);
    let again =
        parse_nm_open(&text).unwrap_or_else(|e| panic!("{s:?} -> {text:?} does not parse: {e}"));
    assert_eq!(again, l, "{s:?} -> {text:?} parses differently");
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    match r.u8() % 4 {
        0 => check_classify(&mut r),
        sel => {
            let s = String::from_utf8_lossy(r.rest());
            match sel {
                1 => {
                    check_portspec(&s, ParseOptions::default());
                    check_portspec(
                        &s,
                        ParseOptions {
                            enable_offset: true,
                        },
                    );
                }
                2 => check_legacy(&s),
                _ => {
                    // Both grammars on the same text, and the kernel's view
                    // of whatever name libnetmap would send.
                    check_legacy(&s);
                    if let Ok(p) = PortSpec::parse(&s) {
                        let b = p.register_body();
                        let _ = classify(p.nr_name.as_bytes(), b.nr_mode, b.nr_flags, true);
                    }
                }
            }
        }
    }
});
