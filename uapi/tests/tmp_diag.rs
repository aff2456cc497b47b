use netmap_uapi::portname::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
#[test]
fn diag() {
    let re = "(netmap|vale[a-z0-9_]{0,2}|net|valx)?:?[a-zA-Z0-9_.:{}]{0,8}([-*^][0-9]{0,4})?(/[xztrRTq]{0,3})?(@[0-9]{0,5})?(@(conf|share|offset|extmem|foo)([:=]([a-z_-]{0,13}(=[a-z0-9:/]{0,6})?,?){0,3})?)*";
    let mut r = TestRunner::default();
    let mut ok = 0; let mut opts = 0;
    let mut kinds = std::collections::BTreeMap::new();
    for _ in 0..5000 {
        let s = re.new_tree(&mut r).unwrap().current();
        match PortSpec::parse_with(&s, ParseOptions{enable_offset:true}) {
            Ok(v) => { ok += 1; if v.extmem.is_some() || v.share.is_some() || !v.conf.is_empty() || v.offset.is_some() { opts += 1; } }
            Err(e) => *kinds.entry(format!("{:?}", e.kind)).or_insert(0) += 1,
        }
    }
    println!("ok {ok} with options {opts} {kinds:?}");
}
