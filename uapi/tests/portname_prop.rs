//! Property tests of the port-name parsers: no panics on arbitrary input, and
//! format → parse round trips.

use netmap_uapi::consts::{RegFlags, RegMode};
use netmap_uapi::portname::{
    ExtmemSpec, KernelPort, Name, OffsetSpec, ParseOptions, PortSpec, RingConf, classify,
    is_identifier, parse_nm_open, parse_vale_name,
};
use proptest::prelude::*;

const WITH_OFFSET: ParseOptions = ParseOptions {
    enable_offset: true,
};

/// Checks that whatever parsed formats back to a spec that parses to the same value,
/// and that the kernel classifier accepts the resulting name without panicking.
fn check_round_trip(s: &str, opts: ParseOptions) {
    if let Ok(a) = PortSpec::parse_with(s, opts) {
        let f = a.to_string();
        let b = PortSpec::parse_with(&f, opts);
        assert_eq!(Ok(a), b, "{s:?} formatted as {f:?}");
        let _ = classify(a.nr_name.as_bytes(), a.mode.as_raw(), a.flags.bits(), true);
        // A client-valid pipe name is a kernel pipe name (modes permitting).
        // libnetmap does not check the parent part: an empty parent
        // (`netmap:}A`) passes the client and is refused by the kernel.
        let b = a.nr_name.as_bytes();
        if a.flags & RegFlags::MONITOR_MASK == RegFlags::empty()
            && matches!(a.mode, RegMode::AllNic | RegMode::OneNic)
            && b.iter().any(|&c| c == b'{' || c == b'}')
            && !matches!(b.first(), Some(b'{' | b'}'))
        {
            let k = classify(b, a.mode.as_raw(), a.flags.bits(), true);
            assert!(matches!(k, Ok(KernelPort::Pipe { .. })), "{s:?}: {k:?}");
        }
    }
}

/// Strings biased towards the grammar (most parse, many with options).
fn biased_spec() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![
        4 => Just("netmap:".to_string()),
        3 => "vale[a-z0-9_]{0,2}:",
        1 => "(net|valx|netmap|vale-|vale)?:?",
    ];
    let name = prop_oneof![
        6 => "[a-zA-Z0-9_.:]{1,8}",
        2 => "[a-z0-9]{1,4}[{}][a-z0-9_]{1,3}",
        1 => "[a-zA-Z0-9_.:{}]{0,8}",
    ];
    let suffix = "([-*^][0-9]{0,4})?(/[xztrRTq]{0,3})?(@[0-9]{0,5})?";
    let key = "(rings|host-rings|slots|tx-rings|rx-rings|host-tx-rings|host-rx-rings|tx-slots|\
rx-slots|file|if-num|if_size|ring-num|ring-size|buf-num|buf-size|initial|bits|port|zzz)";
    let kv = (key, prop_oneof![5 => "[0-9]{1,6}", 1 => "[a-z0-9:/]{0,6}"])
        .prop_map(|(k, v)| format!("{k}={v}"));
    let option = prop_oneof![
        4 => ("(conf|extmem|offset|share)", prop::collection::vec(kv, 0..4))
            .prop_map(|(n, kvs)| format!("@{n}:{}", kvs.join(","))),
        2 => ("(extmem|offset)", "[0-9a-z/]{1,4}").prop_map(|(n, v)| format!("@{n}={v}")),
        2 => "(netmap:|vale0:)[a-z0-9]{1,5}(-[0-9])?".prop_map(|p| format!("@share={p}")),
        1 => "@[a-z=:,@]{0,10}",
    ];
    (prefix, name, suffix, prop::collection::vec(option, 0..3))
        .prop_map(|(a, b, c, d)| a + &b + &c + &d.concat())
}

fn name_strategy() -> impl Strategy<Value = String> {
    let pipe = prop::option::of(("[{}]", "[A-Za-z0-9_]{1,8}").prop_map(|(b, id)| b + &id));
    let base = prop_oneof![
        "[A-Za-z0-9_.:&]{1,20}",
        ("vale[A-Za-z0-9_]{0,4}", "[A-Za-z0-9_.:]{1,10}").prop_map(|(a, b)| a + ":" + &b),
    ];
    (base, pipe).prop_map(|(b, p)| b + p.as_deref().unwrap_or(""))
}

fn mode_strategy() -> impl Strategy<Value = (RegMode, u16)> {
    prop_oneof![
        Just((RegMode::AllNic, 0)),
        Just((RegMode::Sw, 0)),
        Just((RegMode::NicSw, 0)),
        (0u16..4095).prop_map(|r| (RegMode::OneNic, r)),
        (0u16..4095).prop_map(|r| (RegMode::OneSw, r)),
    ]
}

fn flags_strategy() -> impl Strategy<Value = RegFlags> {
    let all = [
        RegFlags::EXCLUSIVE,
        RegFlags::ZCOPY_MON,
        RegFlags::MONITOR_TX,
        RegFlags::MONITOR_RX,
        RegFlags::RX_RINGS_ONLY,
        RegFlags::TX_RINGS_ONLY,
    ];
    any::<u8>().prop_map(move |m| {
        all.iter()
            .enumerate()
            .filter(|(i, _)| m & (1 << i) != 0)
            .fold(RegFlags::empty(), |a, (_, f)| a | *f)
    })
}

fn conf_strategy() -> impl Strategy<Value = RingConf> {
    use prop::option::of;
    (
        of(any::<u16>()),
        of(any::<u16>()),
        of(any::<u16>()),
        of(any::<u16>()),
        of(any::<u32>()),
        of(any::<u32>()),
    )
        .prop_map(|(a, b, c, d, e, f)| RingConf {
            tx_rings: a,
            rx_rings: b,
            host_tx_rings: c,
            host_rx_rings: d,
            tx_slots: e,
            rx_slots: f,
        })
}

type ExtmemNums = [Option<u32>; 6];

fn extmem_strategy() -> impl Strategy<Value = Option<(String, ExtmemNums)>> {
    use prop::option::of;
    of((
        "[A-Za-z0-9_/.:=-]{1,20}",
        [
            of(any::<u32>()),
            of(any::<u32>()),
            of(any::<u32>()),
            of(any::<u32>()),
            of(any::<u32>()),
            of(any::<u32>()),
        ],
    ))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn kernel_classify_never_panics(
        name in prop::collection::vec(any::<u8>(), 0..80),
        mode in prop_oneof![0u32..10, any::<u32>()],
        flags in any::<u64>(),
        create in any::<bool>(),
    ) {
        match classify(&name, mode, flags, create) {
            Ok(KernelPort::Pipe { parent, id, .. }) => {
                prop_assert!(!parent.is_empty() && !id.is_empty());
            }
            Ok(KernelPort::Vale { switch, port }) => {
                prop_assert!(switch.as_bytes().starts_with(b"val"));
                prop_assert!(is_identifier(switch.as_bytes()));
                prop_assert!(switch.len() <= 15 && port.len() <= 15);
            }
            Ok(_) => {}
            Err(e) => {
                let errno = e.errno();
                prop_assert!(errno == 22 || errno == 12 || errno == 6);
            }
        }
        let _ = parse_vale_name(&name);
    }

    #[test]
    fn kernel_classify_grammar_biased(
        name in "(val|vale[a-z0-9_.-]{0,17}|[a-z]{0,3})[:{}a-z0-9]{0,20}",
        mode in 0u32..10,
    ) {
        let _ = classify(name.as_bytes(), mode, 0, false);
    }

    #[test]
    fn client_parser_never_panics(s in any::<String>()) {
        let _ = PortSpec::parse(&s);
        check_round_trip(&s, WITH_OFFSET);
        let _ = parse_nm_open(&s);
    }

    #[test]
    fn client_parser_never_panics_on_prefixed(s in any::<String>()) {
        for p in ["netmap:", "vale0:", "vale:", "netmap:x-", "netmap:x@", "netmap:x@conf:"] {
            let full = format!("{p}{s}");
            check_round_trip(&full, ParseOptions::default());
            check_round_trip(&full, WITH_OFFSET);
            let _ = parse_nm_open(&full);
        }
    }

    #[test]
    fn grammar_biased_round_trip(s in biased_spec()) {
        check_round_trip(&s, ParseOptions::default());
        check_round_trip(&s, WITH_OFFSET);
        let _ = parse_nm_open(&s);
    }

    #[test]
    fn structured_specs_round_trip(
        name in name_strategy(),
        (mode, ringid) in mode_strategy(),
        flags in flags_strategy(),
        mem_id in prop::option::of(1u16..),
        conf in conf_strategy(),
        share in prop::option::of(name_strategy()),
        extmem in extmem_strategy(),
        offset in prop::option::of((any::<u64>(), any::<u32>())),
    ) {
        let spec = PortSpec {
            nr_name: Name::new(name.as_bytes()).unwrap(),
            mode,
            ringid,
            flags,
            mem_id,
            conf,
            share: share.map(|s| Name::new(s.as_bytes()).unwrap()),
            extmem: extmem.as_ref().map(|(file, n)| ExtmemSpec {
                file: file.as_str(),
                if_num: n[0],
                if_size: n[1],
                ring_num: n[2],
                ring_size: n[3],
                buf_num: n[4],
                buf_size: n[5],
            }),
            offset: offset.map(|(initial, bits)| OffsetSpec { initial, bits }),
        };
        let text = spec.to_string();
        let parsed = PortSpec::parse_with(&text, WITH_OFFSET);
        prop_assert_eq!(parsed, Ok(spec), "{}", text);
    }
}

/// Found by the round-trip property: libnetmap's grammar accepts a pipe
/// with an empty parent, which only the kernel refuses.
#[test]
fn empty_pipe_parent_is_a_kernel_error() {
    let a = PortSpec::parse("netmap:}A").expect("client accepts it");
    let k = classify(a.nr_name.as_bytes(), a.mode.as_raw(), a.flags.bits(), true);
    assert!(k.is_err(), "{k:?}");
}
