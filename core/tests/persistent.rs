//! Persistent VALE ports (§8.4): NEWIF/DELIF through the OS hooks of a
//! fake provider, VALE_ATTACH/DETACH of them (§8.5), listing (§8.6), and
//! traffic with ephemeral ports, with every error case.

mod common;
use common::*;
use netmap_core::Errno;
use netmap_core::host::{HostIfLog, HostNetif, HostNetifProvider};
use netmap_uapi::pod::Pod;
use netmap_uapi::*;
use std::sync::{Arc, Mutex};

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];
const BCAST: [u8; 6] = [0xff; 6];

/// An environment whose provider knows `nics` and records persistent
/// interfaces in the returned log.
fn env_with(nics: &[Arc<HostNetif>]) -> (Env, Arc<Mutex<HostIfLog>>) {
    let env = Env::new();
    let p = HostNetifProvider::new(nics.to_vec());
    let log = p.log.clone();
    env.nm.set_netif_provider(Box::new(p)).unwrap();
    (env, log)
}

fn calls(log: &Arc<Mutex<HostIfLog>>) -> Vec<(bool, String)> {
    log.lock()
        .unwrap()
        .calls
        .iter()
        .map(|(c, n)| (*c, String::from_utf8_lossy(n).into_owned()))
        .collect()
}

fn ni_name(p: &Port<'_>) -> String {
    let n = p.nifp().ni_name;
    let len = n.iter().position(|&c| c == 0).unwrap_or(16);
    String::from_utf8_lossy(&n[..len]).into_owned()
}

#[test]
fn life_cycle_with_traffic() {
    let (env, log) = env_with(&[]);
    let base = env.nm.stats();
    let np = env.open();
    // NEWIF with ring hints: clamped like an ephemeral port (§8.2).
    let out = newif(
        &env,
        &np,
        "nmp0",
        NmreqValeNewif {
            nr_tx_slots: 256,
            nr_rx_slots: 9000,
            nr_tx_rings: 2,
            nr_rx_rings: 0,
            ..NmreqValeNewif::zeroed()
        },
    )
    .unwrap();
    assert_eq!((out.nr_tx_slots, out.nr_rx_slots), (256, 4096));
    assert_eq!((out.nr_tx_rings, out.nr_rx_rings), (2, 1));
    assert!(out.nr_mem_id > 1, "private region, got {}", out.nr_mem_id);
    assert_eq!(calls(&log), vec![(true, "nmp0".to_string())]);
    let st = env.nm.stats();
    assert_eq!(st.persistent, base.persistent + 1);
    assert_eq!(st.private_mems, base.private_mems + 1);
    assert_eq!(st.switches, base.switches, "on no switch");

    {
        // Open by its plain name: the same sizes, its own region. Not on a
        // switch: what it sends is discarded.
        let p = env.port("nmp0");
        assert_eq!(p.reg.nr_mem_id, out.nr_mem_id);
        assert_eq!((p.reg.nr_tx_rings, p.reg.nr_rx_rings), (2, 1));
        assert_eq!((p.reg.nr_host_tx_rings, p.reg.nr_host_rx_rings), (0, 0));
        assert_eq!(ni_name(&p), "nmp0");
        assert_eq!(p.send(&[&frame(BCAST, A, 1, 60)]), 1);
        // Open by a file: cannot be attached (nor removed).
        assert_eq!(attach(&env, &np, "vale0:nmp0"), Err(Errno::EBUSY));
        assert_eq!(delif(&env, &np, "nmp0"), Err(Errno::EBUSY));
        // valeS:P before the attach names an interface: EINVAL, and no
        // switch is left behind.
        let q = env.open();
        assert_eq!(
            env.register(&q, "vale0:nmp0", NR_REG_ALL_NIC, 0)
                .unwrap_err(),
            Errno::EINVAL
        );
        env.nm.release(q);
        assert_eq!(env.nm.stats().switches, base.switches);
    }

    // An ephemeral port first, then the attach: next index.
    let e = env.port("vale0:eph");
    assert_eq!(attach(&env, &np, "vale0:nmp0"), Ok(1));
    assert_eq!(list_one(&env, &np, "vale0:nmp0"), Ok((0, 1)));
    assert_eq!(
        list_all(&env, &np),
        vec![
            ("vale0:eph".to_string(), 0, 0),
            ("vale0:nmp0".to_string(), 0, 1)
        ]
    );
    // Twice on the same switch: EBUSY (on another one it is wrapped, see
    // tests/bwrap.rs).
    assert_eq!(attach(&env, &np, "vale0:nmp0"), Err(Errno::EBUSY));
    assert_eq!(env.nm.stats().switches, base.switches + 1);
    // Attached: not removable.
    assert_eq!(delif(&env, &np, "nmp0"), Err(Errno::EBUSY));

    {
        // Both names open the same adapter, now shown as vale0:nmp0.
        let p = env.port("nmp0");
        let v = env.port("vale0:nmp0");
        assert_eq!(p.reg.nr_mem_id, out.nr_mem_id);
        assert_eq!(v.reg.nr_mem_id, out.nr_mem_id);
        assert_ne!(p.reg.nr_offset, v.reg.nr_offset, "one netmap_if per file");
        assert_eq!(ni_name(&p), "vale0:nmp0");
        assert_eq!(ni_name(&v), "vale0:nmp0");
        // Persistent -> ephemeral (A learned on the persistent port).
        let f1 = frame(BCAST, A, 1, 60);
        assert_eq!(p.send(&[&f1]), 1);
        assert_eq!(e.recv(), vec![f1]);
        // Ephemeral -> persistent, unicast to A: both files see the ring.
        let f2 = frame(A, B, 2, 100);
        assert_eq!(e.send(&[&f2]), 1);
        assert_eq!(p.recv(), vec![f2.clone()]);
        // Sent from the valeS:P file too.
        let f3 = frame(B, A, 3, 70);
        assert_eq!(v.send(&[&f3]), 1);
        assert_eq!(e.recv(), vec![f3]);
        // Detach while open: the files stay, sends are discarded.
        assert_eq!(detach(&env, &np, "vale0:nmp0"), Ok(1));
        assert_eq!(list_one(&env, &np, "vale0:nmp0"), Ok((0, 255)));
        assert_eq!(p.send(&[&frame(BCAST, A, 4, 60)]), 1);
        assert!(e.recv().is_empty());
        assert_eq!(detach(&env, &np, "vale0:nmp0"), Err(Errno::ENXIO));
    }
    // The switch stays for the ephemeral port; then goes with it.
    assert_eq!(env.nm.stats().switches, base.switches + 1);
    e.close();
    assert_eq!(env.nm.stats().switches, base.switches);

    // Attach to another switch alone, then detach: the switch goes away.
    assert_eq!(attach(&env, &np, "vale7:nmp0"), Ok(0));
    assert_eq!(env.nm.stats().switches, base.switches + 1);
    {
        let v = env.port("vale7:nmp0");
        assert_eq!(ni_name(&v), "vale7:nmp0");
    }
    assert_eq!(detach(&env, &np, "vale7:nmp0"), Ok(0));
    assert_eq!(env.nm.stats().switches, base.switches);
    assert!(list_all(&env, &np).is_empty());
    // The name shown after an attach is kept (§15.13).
    {
        let p = env.port("nmp0");
        assert_eq!(ni_name(&p), "vale7:nmp0");
    }

    delif(&env, &np, "nmp0").unwrap();
    assert_eq!(
        calls(&log),
        vec![(true, "nmp0".to_string()), (false, "nmp0".to_string())]
    );
    assert!(log.lock().unwrap().live.is_empty());
    assert_eq!(delif(&env, &np, "nmp0"), Err(Errno::ENXIO));
    let q = env.open();
    assert_eq!(
        env.register(&q, "nmp0", NR_REG_ALL_NIC, 0).unwrap_err(),
        Errno::ENXIO
    );
    env.nm.release(q);
    env.nm.release(np);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn newif_errors() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let (env, log) = env_with(std::slice::from_ref(&eth0));
    let base = env.nm.stats();
    let np = env.open();
    let z = NmreqValeNewif::zeroed();
    for bad in [
        "",
        "vale0",
        "vale0:x",
        "valex",
        "sixteen_chars_xx",
        "a{1",
        "b}2",
        "with space",
        "x/y",
        "netmap:x",
    ] {
        assert_eq!(
            newif(&env, &np, bad, z).unwrap_err(),
            Errno::EINVAL,
            "{bad:?}"
        );
    }
    // 15 characters are fine.
    newif(&env, &np, "fifteen_chars_x", z).unwrap();
    assert_eq!(
        newif(&env, &np, "fifteen_chars_x", z).unwrap_err(),
        Errno::EEXIST
    );
    // An OS interface of that name.
    assert_eq!(newif(&env, &np, "eth0", z).unwrap_err(), Errno::EEXIST);
    // Unknown region; an existing one is shared.
    let bad_mem = NmreqValeNewif { nr_mem_id: 77, ..z };
    assert_eq!(newif(&env, &np, "nmq", bad_mem).unwrap_err(), Errno::EINVAL);
    let glob = newif(&env, &np, "nmg", NmreqValeNewif { nr_mem_id: 1, ..z }).unwrap();
    assert_eq!(glob.nr_mem_id, 1);
    // The OS refuses: nothing is kept.
    log.lock().unwrap().fail_next = Some(Errno::ENOMEM);
    assert_eq!(newif(&env, &np, "nmf", z).unwrap_err(), Errno::ENOMEM);
    assert_eq!(env.nm.stats().persistent, base.persistent + 2);
    assert_eq!(
        env.register(&np, "nmf", NR_REG_ALL_NIC, 0).unwrap_err(),
        Errno::ENXIO
    );
    // A pipe parent made on the fly (§9) holds the name.
    {
        let _m = env.port("plainp{1");
        assert_eq!(newif(&env, &np, "plainp", z).unwrap_err(), Errno::EEXIST);
        assert_eq!(delif(&env, &np, "plainp"), Err(Errno::EINVAL));
    }
    for n in ["fifteen_chars_x", "nmg"] {
        delif(&env, &np, n).unwrap();
    }
    env.nm.release(np);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn delif_errors() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let (env, log) = env_with(std::slice::from_ref(&eth0));
    let base = env.nm.stats();
    let np = env.open();
    newif(&env, &np, "nmp1", NmreqValeNewif::zeroed()).unwrap();
    // Missing; an OS interface; an ephemeral VALE port (no interface).
    assert_eq!(delif(&env, &np, "nmp9"), Err(Errno::ENXIO));
    assert_eq!(delif(&env, &np, "eth0"), Err(Errno::EINVAL));
    {
        let _e = env.port("vale0:x");
        assert_eq!(delif(&env, &np, "vale0:x"), Err(Errno::ENXIO));
    }
    // Pipes hanging off it.
    {
        let _m = env.port("nmp1{3");
        assert_eq!(delif(&env, &np, "nmp1"), Err(Errno::EBUSY));
    }
    // A monitor keeps it referenced only while the port is open.
    {
        let p = env.port("nmp1");
        let _mon = env.port_with(
            "nmp1",
            NmreqRegister {
                nr_mode: NR_REG_ALL_NIC,
                nr_flags: NR_MONITOR_TX,
                ..NmreqRegister::zeroed()
            },
        );
        p.close();
        assert_eq!(delif(&env, &np, "nmp1"), Err(Errno::EBUSY));
    }
    // The OS refuses: the port stays.
    log.lock().unwrap().fail_next = Some(Errno::EIO);
    assert_eq!(delif(&env, &np, "nmp1"), Err(Errno::EIO));
    assert_eq!(env.nm.stats().persistent, base.persistent + 1);
    delif(&env, &np, "nmp1").unwrap();
    env.nm.release(np);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn attach_detach_errors() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let (env, _log) = env_with(std::slice::from_ref(&eth0));
    let base = env.nm.stats();
    let np = env.open();
    newif(&env, &np, "nmp2", NmreqValeNewif::zeroed()).unwrap();
    // Bad mode, ring id, name; host rings of a persistent port.
    for mode in [NR_REG_SW, NR_REG_ONE_NIC, NR_REG_NULL, 0, 99] {
        assert_eq!(
            attach_mode(&env, &np, "vale0:nmp2", mode, 0),
            Err(Errno::EINVAL),
            "mode {mode}"
        );
    }
    assert_eq!(
        attach_mode(&env, &np, "vale0:nmp2", NR_REG_ALL_NIC, 1),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        attach_mode(&env, &np, "vale0:nmp2", NR_REG_NIC_SW, 0),
        Err(Errno::EINVAL)
    );
    for bad in ["nmp2", "x:nmp2", "vale-0:nmp2", "vale0"] {
        assert_eq!(attach(&env, &np, bad), Err(Errno::EINVAL), "{bad:?}");
    }
    // Not an interface: EINVAL; a NIC joins (see tests/bwrap.rs).
    assert_eq!(attach(&env, &np, "vale0:nothing"), Err(Errno::EINVAL));
    assert_eq!(attach(&env, &np, "vale0:eth0"), Ok(0));
    assert_eq!(detach(&env, &np, "vale0:eth0"), Ok(0));
    // A NIC is no ephemeral port (§8.2).
    assert_eq!(
        env.register(&np, "vale0:eth0", NR_REG_ALL_NIC, 0)
            .unwrap_err(),
        Errno::EINVAL
    );
    // An ephemeral port of that name is already there.
    {
        let _e = env.port("vale0:eph");
        assert_eq!(attach(&env, &np, "vale0:eph"), Err(Errno::EBUSY));
        assert_eq!(detach(&env, &np, "vale0:eph"), Err(Errno::ENXIO));
    }
    assert_eq!(env.nm.stats().switches, base.switches);
    // Detach: bad names, no switch, not on the switch.
    assert_eq!(detach(&env, &np, "nmp2"), Err(Errno::EINVAL));
    assert_eq!(detach(&env, &np, "valeX"), Err(Errno::EINVAL));
    assert_eq!(detach(&env, &np, "vale0:nmp2"), Err(Errno::ENXIO));
    {
        let _e = env.port("vale0:other");
        assert_eq!(detach(&env, &np, "vale0:nmp2"), Err(Errno::ENXIO));
    }
    // No free switch slot (8 switches).
    let held: Vec<_> = (0..8).map(|i| env.port(&format!("valesw{i}:p"))).collect();
    assert_eq!(attach(&env, &np, "vale9:nmp2"), Err(Errno::ENOMEM));
    drop(held);
    // Port table full: 252 ports can be added (§8.1). One-slot rings: the
    // smallest private regions (8 MB each instead of 42).
    let tiny = NmreqRegister {
        nr_mode: NR_REG_ALL_NIC,
        nr_tx_slots: 1,
        nr_rx_slots: 1,
        ..NmreqRegister::zeroed()
    };
    let many: Vec<_> = (0..252)
        .map(|i| env.port_with(&format!("vale3:p{i}"), tiny))
        .collect();
    assert_eq!(attach(&env, &np, "vale3:nmp2"), Err(Errno::ENOMEM));
    drop(many);
    assert_eq!(env.nm.stats().switches, base.switches);
    // Legacy NIOCREGIF with nr_cmd: NEWIF (sizes written back), ATTACH,
    // DETACH, DELIF (§4.12).
    let legacy = |cmd: u16, name: &str, slots: u32| -> Result<Nmreq, Errno> {
        let mut nmr = Nmreq::zeroed();
        nmr.nr_version = u32::from(NETMAP_API);
        nmr.nr_cmd = cmd;
        nmr.nr_tx_slots = slots;
        nmr.nr_name[..name.len()].copy_from_slice(name.as_bytes());
        let a = env.p.user_map(nmr.as_bytes());
        env.ioctl_raw(&np, NIOCREGIF, a)?;
        Ok(Nmreq::from_bytes(&env.p.user_read(a, core::mem::size_of::<Nmreq>()).unwrap()).unwrap())
    };
    let out = legacy(NETMAP_BDG_NEWIF, "nml", 128).unwrap();
    assert_eq!((out.nr_tx_slots, out.nr_rx_slots), (128, 1024));
    assert_eq!((out.nr_tx_rings, out.nr_rx_rings), (1, 1));
    assert!(out.nr_arg2 > 1);
    legacy(NETMAP_BDG_ATTACH, "vale4:nml", 0).unwrap();
    assert_eq!(list_one(&env, &np, "vale4:nml"), Ok((0, 0)));
    assert_eq!(
        legacy(NETMAP_BDG_DELIF, "nml", 0).unwrap_err(),
        Errno::EBUSY
    );
    legacy(NETMAP_BDG_DETACH, "vale4:nml", 0).unwrap();
    legacy(NETMAP_BDG_DELIF, "nml", 0).unwrap();
    delif(&env, &np, "nmp2").unwrap();
    env.nm.release(np);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn no_os_support_means_eopnotsupp() {
    // Without a provider (or with one lacking the hooks), NEWIF is not
    // supported and DELIF finds nothing.
    let env = Env::new();
    let np = env.open();
    let mut z = NmreqValeNewif::zeroed();
    assert_eq!(
        env.ctrl(&np, NETMAP_REQ_VALE_NEWIF, "nmx", Some(&mut z))
            .unwrap_err(),
        Errno::EOPNOTSUPP
    );
    assert_eq!(delif(&env, &np, "nmx"), Err(Errno::ENXIO));
    // Nothing in use but the global region's share of the budget.
    let global = env.nm.global_mem().footprint();
    assert_eq!(
        env.nm.stats(),
        netmap_core::GlobalStats {
            mem_used: global,
            mem_budget: env.nm.budget().limit(),
            ..Default::default()
        }
    );
    env.nm.release(np);
}
