//! The memory budget through the requests users make (issue "bounded
//! kernel memory"): the default derived from the machine's RAM, the
//! global region's share reserved at load, private regions refused with
//! ENOMEM beyond the budget while other ports keep working, and the
//! budget back at its baseline when the ports are gone.

mod common;
use common::*;
use netmap_core::host::HostPlatform;
use netmap_core::{Errno, Netmap, Params};
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];

fn env_with_budget(bytes: u64) -> Env {
    Env::with_params(Params {
        max_mem: bytes,
        ..Params::default()
    })
}

#[test]
fn default_budget_is_half_the_ram_and_holds_the_global_region() {
    let p = HostPlatform::new();
    p.set_total_ram(2 << 30);
    let nm = Netmap::new(p.clone(), Params::default()).unwrap();
    assert_eq!(nm.budget().limit(), 1 << 30);
    // The global region's share is set aside at load, before first use.
    let g = nm.global_mem().footprint();
    assert!(g > 330_000_000, "global footprint {g}");
    assert_eq!(nm.budget().used(), g);
    assert_eq!(nm.stats().mem_used, g);
    assert!(!nm.global_mem().is_finalized());
    // An explicit budget replaces the default.
    let nm = Netmap::new(
        p,
        Params {
            max_mem: 3 << 30,
            ..Params::default()
        },
    )
    .unwrap();
    assert_eq!(nm.budget().limit(), 3 << 30);
}

/// A VALE port asking for a region that needs `extra` extra buffers.
fn reg_extra(extra: u32) -> NmreqRegister {
    NmreqRegister {
        nr_mode: NR_REG_ALL_NIC,
        nr_extra_bufs: extra,
        ..NmreqRegister::zeroed()
    }
}

/// Ever larger private regions until ENOMEM: the budget is never exceeded,
/// a clean pair of ports keeps forwarding meanwhile, and the budget in use
/// returns to its baseline when the ports close.
#[test]
fn ever_larger_regions_until_enomem_then_back_to_baseline() {
    let env = env_with_budget(600 << 20);
    let limit = env.nm.budget().limit();
    let base = env.nm.stats();
    let a = env.port("valeK:a");
    let b = env.port("valeK:b");
    let mut held = Vec::new();
    let mut extra = 1024u32;
    let mut refused = false;
    for i in 0..32 {
        let np = env.open();
        match env.register_with(&np, &format!("valeB:p{i}"), reg_extra(extra)) {
            Ok(_) => held.push(np),
            Err(e) => {
                assert_eq!(e, Errno::ENOMEM, "extra_bufs {extra}");
                env.nm.release(np);
                refused = true;
                break;
            }
        }
        assert!(env.nm.budget().used() <= limit);
        let f = frame(B, A, i, 60);
        assert_eq!(a.send(&[&f]), 1);
        assert_eq!(b.recv(), vec![f]);
        extra = extra.saturating_mul(2).min(524288);
    }
    assert!(refused, "no ENOMEM within the budget of {limit} bytes");
    assert!(env.nm.budget().refused() >= 1);
    // Smaller requests still fit, and the clean pair still forwards.
    let np = env.open();
    env.register_with(&np, "valeB:small", reg_extra(0)).unwrap();
    env.nm.release(np);
    let f = frame(B, A, 99, 60);
    assert_eq!(a.send(&[&f]), 1);
    assert_eq!(b.recv(), vec![f]);
    for np in held {
        env.nm.release(np);
    }
    drop(a);
    drop(b);
    assert_eq!(env.nm.stats(), base);
    assert_eq!(env.p.clusters_live().0, 0, "private regions freed");
}

/// A budget smaller than the global region: the module loads, ports in
/// private regions work, those that need the global region get ENOMEM.
#[test]
fn global_region_beyond_the_budget_is_refused_at_first_use() {
    let env = env_with_budget(64 << 20);
    assert_eq!(env.nm.stats().mem_used, 0, "nothing reserved");
    assert!(
        env.p
            .log_messages()
            .iter()
            .any(|m| m.contains("global region") && m.contains("budget")),
        "no warning at load"
    );
    let np = env.open();
    let null = NmreqRegister {
        nr_mode: NR_REG_NULL,
        nr_mem_id: 1,
        nr_tx_rings: 1,
        nr_tx_slots: 64,
        ..NmreqRegister::zeroed()
    };
    assert_eq!(
        env.register_with(&np, "x", null).unwrap_err(),
        Errno::ENOMEM
    );
    env.nm.release(np);
    let a = env.port("vale1:a");
    assert_ne!(a.reg.nr_mem_id, 1);
}

/// The pools report: the budget line, then every region with its pools.
#[test]
fn pools_report_lists_budget_and_regions() {
    let env = env_with_budget(1 << 30);
    let a = env.port("valeR:a");
    let mut s = String::new();
    env.nm.write_pools(&mut s).unwrap();
    let lines: Vec<&str> = s.lines().collect();
    let b = env.nm.budget();
    assert_eq!(
        lines[0],
        format!(
            "budget {} used {} refused 0 alloc_failures 0",
            1u64 << 30,
            b.used()
        )
    );
    assert!(
        lines[1].starts_with("mem 1 global built 0 memsize "),
        "{}",
        lines[1]
    );
    let id = a.reg.nr_mem_id;
    let l = lines
        .iter()
        .find(|l| l.starts_with(&format!("mem {id} private built 1 ")))
        .expect("the port's region");
    assert!(l.contains(&format!("memsize {} ", a.reg.nr_memsize)), "{l}");
    // One netmap_if, two rings (TX, RX) and their 2·1024 buffers in use.
    assert!(
        l.contains(" if 1/") && l.contains(" ring 2/") && l.contains(" buf 2048/"),
        "{l}"
    );
}
