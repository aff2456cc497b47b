//! Interfaces attached to a VALE switch (§8.5, the reference's "bwrap"),
//! with a fake device: traffic both ways between the device, its host
//! stack and VALE ports, learning, errors, detach, the device vanishing,
//! and the end of the context.

mod common;
use common::*;
use netmap_core::Errno;
use netmap_core::host::HostNetif;
use netmap_uapi::pod::Pod;
use netmap_uapi::*;
use std::sync::Arc;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];
const H: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc];
const BCAST: [u8; 6] = [0xff; 6];

fn env_with(nics: &[Arc<HostNetif>]) -> Env {
    Env::with_nics(nics)
}

fn sent(n: &HostNetif) -> Vec<Vec<u8>> {
    std::mem::take(&mut *n.sent.lock().unwrap())
}

fn to_host(n: &HostNetif) -> Vec<Vec<u8>> {
    std::mem::take(&mut *n.to_host.lock().unwrap())
}

#[test]
fn nic_and_vale_port_exchange_traffic() {
    let eth0 = HostNetif::new("eth0", 2, 128);
    let env = env_with(std::slice::from_ref(&eth0));
    let base = env.nm.stats();
    let np = env.open();
    assert_eq!(attach(&env, &np, "vale0:eth0"), Ok(0));
    assert_eq!(list_one(&env, &np, "vale0:eth0"), Ok((0, 0)));
    let na = eth0.adapter().expect("the kernel put eth0 in netmap mode");
    {
        let a = env.port("vale0:a");
        // A -> B: B unknown, flooded to the device.
        let f1 = frame(B, A, 1, 60);
        assert_eq!(a.send(&[&f1]), 1);
        assert_eq!(sent(&eth0), vec![f1]);
        // The device receives B -> A (on its second queue): A was learned
        // on port 1, the frame reaches it, B is learned on the NIC's port.
        let f2 = frame(A, B, 2, 100);
        assert!(na.rx_push(1, &f2));
        assert_eq!(a.recv(), vec![f2]);
        // The slot was released at once: a full ring's worth more fits.
        for i in 0..300 {
            assert!(na.rx_push(0, &frame(A, B, 10 + i, 60)), "frame {i}");
        }
        assert_eq!(a.recv().len(), 300);
        // A unicast to B goes to the device only; another VALE port sees
        // nothing.
        let c = env.port("vale0:c");
        let f3 = frame(B, A, 3, 70);
        assert_eq!(a.send(&[&f3]), 1);
        assert_eq!(sent(&eth0), vec![f3]);
        assert!(c.recv().is_empty());
        // A frame for the device's own learned address coming back from
        // the device is not reflected.
        assert!(na.rx_push(0, &frame(B, A, 4, 60)));
        assert_eq!(c.recv().len(), 0);
        assert!(sent(&eth0).is_empty());
        // Runt frames from the device are dropped by the switch.
        assert!(na.rx_push(0, &[0u8; 10]));
        assert!(a.recv().is_empty());
    }
    // The switch stays while the NIC is on it.
    assert_eq!(env.nm.stats().switches, 1);
    assert_eq!(detach(&env, &np, "vale0:eth0"), Ok(0));
    assert!(eth0.adapter().is_none(), "eth0 left netmap mode");
    assert_eq!(list_one(&env, &np, "vale0:eth0"), Err(Errno::ENOENT));
    env.nm.release(np);
    assert_eq!(env.nm.stats(), base);
    // A user can have the interface again.
    let p = env.port("eth0");
    assert_eq!(p.send(&[&frame(B, A, 5, 60)]), 1);
    assert_eq!(sent(&eth0).len(), 1);
}

#[test]
fn host_stack_port() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let env = env_with(std::slice::from_ref(&eth0));
    let base = env.nm.stats();
    let np = env.open();
    assert_eq!(
        attach_mode(&env, &np, "vale1:eth0", NR_REG_NIC_SW, 0),
        Ok(0)
    );
    let names: Vec<_> = list_all(&env, &np).into_iter().map(|l| l.0).collect();
    assert_eq!(names, ["vale1:eth0", "vale1:eth0^"]);
    let na = eth0.adapter().unwrap();
    let hring = na.nrings(netmap_core::kring::Dir::Rx);
    {
        let a = env.port("vale1:a");
        // A broadcast from A reaches the wire and the host stack.
        let bc = frame(BCAST, A, 1, 60);
        assert_eq!(a.send(&[&bc]), 1);
        assert_eq!(sent(&eth0), vec![bc.clone()]);
        assert_eq!(to_host(&eth0), vec![bc]);
        // The host stack sends H -> A: it reaches A, not the wire.
        let h = frame(A, H, 2, 80);
        assert!(na.rx_push(hring, &h));
        assert_eq!(a.recv(), vec![h]);
        assert!(sent(&eth0).is_empty());
        // The wire sends B -> H: learned, it goes to the host stack only.
        let w = frame(H, B, 3, 90);
        assert!(na.rx_push(0, &w));
        assert_eq!(to_host(&eth0), vec![w]);
        assert!(a.recv().is_empty());
        // The host stack answers H -> B: to the wire only.
        let r = frame(B, H, 4, 90);
        assert!(na.rx_push(hring, &r));
        assert_eq!(sent(&eth0), vec![r]);
        assert!(a.recv().is_empty());
    }
    // Detaching by the host port's name ends the whole attachment.
    assert_eq!(detach(&env, &np, "vale1:eth0^"), Ok(1));
    assert!(list_all(&env, &np).is_empty());
    env.nm.release(np);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn attach_errors_and_kernel_ownership() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let eth1 = HostNetif::new("eth1", 1, 64);
    let env = env_with(&[eth0.clone(), eth1.clone()]);
    let base = env.nm.stats();
    let np = env.open();
    for (mode, ringid) in [(NR_REG_SW, 0), (NR_REG_ONE_NIC, 0), (NR_REG_ALL_NIC, 1)] {
        assert_eq!(
            attach_mode(&env, &np, "vale0:eth0", mode, ringid),
            Err(Errno::EINVAL)
        );
    }
    assert_eq!(env.nm.stats(), base, "failed attaches leave nothing");
    // Open by a user: EBUSY.
    {
        let _u = env.port("eth0");
        assert_eq!(attach(&env, &np, "vale0:eth0"), Err(Errno::EBUSY));
    }
    assert_eq!(attach(&env, &np, "vale0:eth0"), Ok(0));
    // Attached anywhere: EBUSY, on this switch and on another.
    assert_eq!(attach(&env, &np, "vale0:eth0"), Err(Errno::EBUSY));
    assert_eq!(attach(&env, &np, "vale2:eth0"), Err(Errno::EBUSY));
    assert_eq!(env.nm.stats().switches, 1);
    // The kernel owns it: users get EBUSY on the interface and its port.
    let u = env.open();
    assert_eq!(
        env.register(&u, "eth0", NR_REG_ALL_NIC, 0).unwrap_err(),
        Errno::EBUSY
    );
    assert_eq!(
        env.register(&u, "eth0", NR_REG_SW, 0).unwrap_err(),
        Errno::EBUSY
    );
    assert_eq!(
        env.register(&u, "vale0:eth0", NR_REG_ALL_NIC, 0)
            .unwrap_err(),
        Errno::EBUSY
    );
    env.nm.release(u);
    // Port info still answers.
    let mut pi = NmreqPortInfoGet::zeroed();
    env.ctrl(&np, NETMAP_REQ_PORT_INFO_GET, "vale0:eth0", Some(&mut pi))
        .unwrap();
    assert_eq!((pi.nr_rx_rings, pi.nr_tx_rings, pi.nr_mem_id), (1, 1, 1));
    // Two interfaces on one switch.
    assert_eq!(attach(&env, &np, "vale0:eth1"), Ok(1));
    // Detach errors.
    assert_eq!(detach(&env, &np, "vale0:eth2"), Err(Errno::ENXIO));
    assert_eq!(detach(&env, &np, "vale5:eth0"), Err(Errno::ENXIO));
    assert_eq!(detach(&env, &np, "eth0"), Err(Errno::EINVAL));
    assert_eq!(detach(&env, &np, "vale0:eth1"), Ok(1));
    assert_eq!(detach(&env, &np, "vale0:eth1"), Err(Errno::ENXIO));
    assert_eq!(detach(&env, &np, "vale0:eth0"), Ok(0));
    env.nm.release(np);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn two_nics_switch_frames_to_each_other() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let eth1 = HostNetif::new("eth1", 1, 64);
    let env = env_with(&[eth0.clone(), eth1.clone()]);
    let np = env.open();
    attach(&env, &np, "vale0:eth0").unwrap();
    attach(&env, &np, "vale0:eth1").unwrap();
    let (n0, n1) = (eth0.adapter().unwrap(), eth1.adapter().unwrap());
    let f = frame(B, A, 1, 60);
    assert!(n0.rx_push(0, &f));
    assert_eq!(sent(&eth1), vec![f]);
    let g = frame(A, B, 2, 60);
    assert!(n1.rx_push(0, &g));
    assert_eq!(sent(&eth0), vec![g]);
    assert!(sent(&eth1).is_empty());
    detach(&env, &np, "vale0:eth0").unwrap();
    detach(&env, &np, "vale0:eth1").unwrap();
    env.nm.release(np);
}

#[test]
fn full_device_keeps_frames_until_it_has_room() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let env = env_with(std::slice::from_ref(&eth0));
    let np = env.open();
    attach(&env, &np, "vale0:eth0").unwrap();
    let na = eth0.adapter().unwrap();
    let a = env.port("vale0:a");
    *eth0.tx_budget.lock().unwrap() = Some(2);
    let frames: Vec<_> = (0..5).map(|i| frame(B, A, i, 60)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    assert_eq!(a.send(&refs), 5);
    assert_eq!(sent(&eth0), frames[..2].to_vec());
    // Still refused: nothing moves.
    na.tx_wake();
    assert!(sent(&eth0).is_empty());
    // Room again: the rest goes out, in order, once.
    *eth0.tx_budget.lock().unwrap() = None;
    na.tx_wake();
    assert_eq!(sent(&eth0), frames[2..].to_vec());
    na.tx_wake();
    assert!(sent(&eth0).is_empty());
    drop(a);
    detach(&env, &np, "vale0:eth0").unwrap();
    env.nm.release(np);
}

#[test]
fn device_gone_while_attached() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let env = env_with(std::slice::from_ref(&eth0));
    let base = env.nm.stats();
    let np = env.open();
    attach_mode(&env, &np, "vale0:eth0", NR_REG_NIC_SW, 0).unwrap();
    let a = env.port("vale0:a");
    env.nm.netif_gone(b"eth0");
    assert!(eth0.adapter().is_none());
    let names: Vec<_> = list_all(&env, &np).into_iter().map(|l| l.0).collect();
    assert_eq!(names, ["vale0:a"]);
    assert_eq!(a.send(&[&frame(BCAST, A, 1, 60)]), 1);
    assert!(sent(&eth0).is_empty() && to_host(&eth0).is_empty());
    assert_eq!(detach(&env, &np, "vale0:eth0"), Err(Errno::ENXIO));
    drop(a);
    env.nm.release(np);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn attachments_end_with_the_context() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let env = env_with(std::slice::from_ref(&eth0));
    let np = env.open();
    attach_mode(&env, &np, "vale0:eth0", NR_REG_NIC_SW, 0).unwrap();
    env.nm.release(np);
    let weak = eth0.adapter.lock().unwrap().clone().unwrap();
    assert!(weak.upgrade().is_some());
    drop(env);
    assert!(eth0.adapter().is_none(), "device told to stop");
    assert!(
        weak.upgrade().is_none(),
        "adapter freed: no reference cycle"
    );
}

#[test]
fn monitors_see_what_the_nic_receives() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let env = env_with(std::slice::from_ref(&eth0));
    let np = env.open();
    attach(&env, &np, "vale0:eth0").unwrap();
    let na = eth0.adapter().unwrap();
    let a = env.port("vale0:a");
    let mon = env.port_with(
        "eth0",
        NmreqRegister {
            nr_mode: NR_REG_ALL_NIC,
            nr_flags: NR_MONITOR_RX,
            ..NmreqRegister::zeroed()
        },
    );
    let f = frame(A, B, 1, 64);
    assert!(na.rx_push(0, &f));
    assert_eq!(mon.recv(), vec![f.clone()]);
    assert_eq!(a.recv(), vec![f]);
    drop((a, mon));
    detach(&env, &np, "vale0:eth0").unwrap();
    env.nm.release(np);
}

fn polling(
    env: &Env,
    np: &netmap_core::netmap::NetmapPriv<netmap_core::host::HostPlatform>,
    enable: bool,
    name: &str,
    mode: u32,
    first: u32,
    n: u32,
) -> Result<(), Errno> {
    let mut b = NmreqValePolling {
        nr_mode: mode,
        nr_first_cpu_id: first,
        nr_num_polling_cpus: n,
        ..NmreqValePolling::zeroed()
    };
    let t = if enable {
        NETMAP_REQ_VALE_POLLING_ENABLE
    } else {
        NETMAP_REQ_VALE_POLLING_DISABLE
    };
    env.ctrl(np, t, name, Some(&mut b)).map(|_| ())
}

/// Receive on `p` until `want` frames arrived (at most 5 s).
fn recv_n(p: &Port<'_>, want: usize) -> Vec<Vec<u8>> {
    let t0 = std::time::Instant::now();
    let mut got = Vec::new();
    while got.len() < want && t0.elapsed() < std::time::Duration::from_secs(5) {
        got.extend(p.recv());
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    got
}

#[test]
fn polling_mode_requests() {
    use netmap_uapi::{
        NETMAP_POLLING_MODE_MULTI_CPU as MULTI, NETMAP_POLLING_MODE_SINGLE_CPU as SINGLE,
    };
    let eth0 = HostNetif::new("eth0", 2, 64);
    let env = env_with(std::slice::from_ref(&eth0));
    env.p.set_online_cpus(Some(4));
    let np = env.open();
    attach_mode(&env, &np, "vale0:eth0", NR_REG_NIC_SW, 0).unwrap();
    let _plain = env.port("vale0:plain");
    let on = |name: &str, mode, first, n| polling(&env, &np, true, name, mode, first, n);
    let off = |name: &str| polling(&env, &np, false, name, SINGLE, 0, 1);
    // Names: not VALE, no switch, no port, a plain port, the host port.
    assert_eq!(on("eth0", SINGLE, 0, 1), Err(Errno::EINVAL));
    assert_eq!(on("vale7:eth0", SINGLE, 0, 1), Err(Errno::ENXIO));
    assert_eq!(on("vale0:eth9", SINGLE, 0, 1), Err(Errno::ENXIO));
    assert_eq!(on("vale0:plain", SINGLE, 0, 1), Err(Errno::EOPNOTSUPP));
    assert_eq!(on("vale0:eth0^", SINGLE, 0, 1), Err(Errno::EOPNOTSUPP));
    // Counts: 1 <= n < online CPUs; MULTI within the port's RX rings;
    // SINGLE with one CPU; bad modes; a CPU that is not online.
    assert_eq!(on("vale0:eth0", SINGLE, 0, 0), Err(Errno::EINVAL));
    assert_eq!(on("vale0:eth0", MULTI, 0, 4), Err(Errno::EINVAL));
    assert_eq!(on("vale0:eth0", MULTI, 1, 2), Err(Errno::EINVAL));
    assert_eq!(on("vale0:eth0", SINGLE, 0, 2), Err(Errno::EINVAL));
    assert_eq!(on("vale0:eth0", 0, 0, 1), Err(Errno::EINVAL));
    assert_eq!(on("vale0:eth0", 3, 0, 1), Err(Errno::EINVAL));
    assert_eq!(on("vale0:eth0", SINGLE, 9, 1), Err(Errno::EINVAL));
    assert!(
        env.p.threads().is_empty(),
        "failed requests leave no thread"
    );
    // Not polling: disable is EFAULT.
    assert_eq!(off("vale0:eth0"), Err(Errno::EFAULT));
    // MULTI on both rings: one thread per ring, pinned to CPU = ring.
    on("vale0:eth0", MULTI, 0, 2).unwrap();
    let mut cpus: Vec<_> = env.p.threads().iter().map(|t| t.cpu).collect();
    cpus.sort();
    assert_eq!(cpus, [Some(0), Some(1)]);
    assert_eq!(on("vale0:eth0", SINGLE, 0, 1), Err(Errno::EFAULT));
    // No detach while polling.
    assert_eq!(detach(&env, &np, "vale0:eth0"), Err(Errno::EBUSY));
    off("vale0:eth0").unwrap();
    assert!(env.p.threads().is_empty());
    // SINGLE: one thread on CPU `first`.
    on("vale0:eth0", SINGLE, 3, 1).unwrap();
    let t = env.p.threads();
    assert_eq!((t.len(), t[0].cpu), (1, Some(3)));
    off("vale0:eth0").unwrap();
    detach(&env, &np, "vale0:eth0").unwrap();
    env.nm.release(np);
}

#[test]
fn polling_threads_forward_what_the_nic_receives() {
    use netmap_uapi::NETMAP_POLLING_MODE_SINGLE_CPU as SINGLE;
    let eth0 = HostNetif::new("eth0", 1, 64);
    let env = env_with(std::slice::from_ref(&eth0));
    env.p.set_online_cpus(Some(2));
    let base = env.nm.stats();
    let np = env.open();
    attach(&env, &np, "vale0:eth0").unwrap();
    let na = eth0.adapter().unwrap();
    let a = env.port("vale0:a");
    polling(&env, &np, true, "vale0:eth0", SINGLE, 1, 1).unwrap();
    // More frames than the ring holds, in bursts the thread drains.
    let mut want = Vec::new();
    for i in 0..200u32 {
        let f = frame(A, B, i, 60);
        let t0 = std::time::Instant::now();
        while !na.rx_push(0, &f) {
            assert!(
                t0.elapsed().as_secs() < 5,
                "the polling thread does not drain"
            );
            std::thread::yield_now();
        }
        want.push(f);
    }
    assert_eq!(recv_n(&a, 200), want);
    // The device gone while polling: the threads stop with the attachment.
    env.nm.netif_gone(b"eth0");
    assert!(env.p.threads().is_empty());
    drop(a);
    env.nm.release(np);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn polling_stops_with_the_context() {
    use netmap_uapi::NETMAP_POLLING_MODE_SINGLE_CPU as SINGLE;
    let eth0 = HostNetif::new("eth0", 1, 64);
    let env = env_with(std::slice::from_ref(&eth0));
    env.p.set_online_cpus(Some(2));
    let p = env.p.clone();
    let np = env.open();
    attach(&env, &np, "vale0:eth0").unwrap();
    polling(&env, &np, true, "vale0:eth0", SINGLE, 0, 1).unwrap();
    assert_eq!(p.threads().len(), 1);
    env.nm.release(np);
    drop(env);
    assert!(p.threads().is_empty());
    assert!(eth0.adapter().is_none());
}

#[test]
fn persistent_port_joins_two_switches() {
    let env = env_with(&[]);
    let base = env.nm.stats();
    let np = env.open();
    newif(&env, &np, "p0", NmreqValeNewif::zeroed()).unwrap();
    assert_eq!(attach(&env, &np, "vale0:p0"), Ok(0));
    // The second attach wraps the port like a NIC (§8.4).
    assert_eq!(attach(&env, &np, "vale1:p0"), Ok(0));
    // Not a third time, nor twice on one switch, nor with host rings.
    assert_eq!(attach(&env, &np, "vale2:p0"), Err(Errno::EBUSY));
    assert_eq!(attach(&env, &np, "vale1:p0"), Err(Errno::EBUSY));
    assert_eq!(env.nm.stats().switches, 2);
    let names: Vec<_> = list_all(&env, &np).into_iter().map(|l| l.0).collect();
    assert_eq!(names, ["vale0:p0", "vale1:p0"]);
    // The kernel owns the port now.
    let u = env.open();
    for name in ["p0", "vale0:p0", "vale1:p0"] {
        assert_eq!(
            env.register(&u, name, NR_REG_ALL_NIC, 0).unwrap_err(),
            Errno::EBUSY,
            "{name}"
        );
    }
    env.nm.release(u);
    // Polling is for interfaces.
    {
        let mut b = NmreqValePolling {
            nr_mode: NETMAP_POLLING_MODE_SINGLE_CPU,
            nr_num_polling_cpus: 1,
            ..NmreqValePolling::zeroed()
        };
        env.p.set_online_cpus(Some(2));
        assert_eq!(
            env.ctrl(
                &np,
                NETMAP_REQ_VALE_POLLING_ENABLE,
                "vale1:p0",
                Some(&mut b)
            )
            .unwrap_err(),
            Errno::EOPNOTSUPP
        );
    }
    {
        let a = env.port("vale0:a");
        let b = env.port("vale1:b");
        // Broadcast a -> vale0 -> p0 -> vale1 -> b, and back.
        let f = frame(BCAST, A, 1, 60);
        assert_eq!(a.send(&[&f]), 1);
        assert_eq!(b.recv(), vec![f]);
        let g = frame(A, B, 2, 90);
        assert_eq!(b.send(&[&g]), 1);
        assert_eq!(a.recv(), vec![g]);
        // Unicast both ways once learned; bursts bigger than a ring.
        let frames: Vec<_> = (0..100).map(|i| frame(B, A, 10 + i, 64)).collect();
        let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
        assert_eq!(a.send(&refs), 100);
        assert_eq!(b.recv(), frames);
        // A third port on vale0 sees the unicast to B only as the switch
        // floods, not after learning.
        let c = env.port("vale0:c");
        assert_eq!(a.send(&[&frame(B, A, 5, 60)]), 1);
        assert!(c.recv().is_empty());
    }
    // The first attachment cannot end before the second (§8.5); nor can
    // the port be removed.
    assert_eq!(detach(&env, &np, "vale0:p0"), Err(Errno::EBUSY));
    assert_eq!(delif(&env, &np, "p0"), Err(Errno::EBUSY));
    assert_eq!(detach(&env, &np, "vale1:p0"), Ok(0));
    assert_eq!(detach(&env, &np, "vale0:p0"), Ok(0));
    delif(&env, &np, "p0").unwrap();
    env.nm.release(np);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn a_loop_of_switches_does_not_hang() {
    // p0 and p1 both join vale0 and vale1: a broadcast goes round the loop.
    // Every call must return; the loop is cut off per call.
    let env = env_with(&[]);
    let base = env.nm.stats();
    let np = env.open();
    for p in ["p0", "p1"] {
        newif(&env, &np, p, NmreqValeNewif::zeroed()).unwrap();
        attach(&env, &np, &format!("vale0:{p}")).unwrap();
        attach(&env, &np, &format!("vale1:{p}")).unwrap();
    }
    {
        let a = env.port("vale0:a");
        let b = env.port("vale1:b");
        for i in 0..20 {
            assert_eq!(a.send(&[&frame(BCAST, A, i, 60)]), 1);
        }
        assert!(!b.recv().is_empty(), "the frames crossed");
        assert!(!a.recv().is_empty(), "and came back round the loop");
    }
    for p in ["p0", "p1"] {
        detach(&env, &np, &format!("vale1:{p}")).unwrap();
        detach(&env, &np, &format!("vale0:{p}")).unwrap();
        delif(&env, &np, p).unwrap();
    }
    env.nm.release(np);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn the_context_frees_switches_and_persistent_ports() {
    let env = env_with(&[]);
    let p = env.p.clone();
    let np = env.open();
    newif(&env, &np, "p0", NmreqValeNewif::zeroed()).unwrap();
    newif(&env, &np, "p1", NmreqValeNewif::zeroed()).unwrap();
    attach(&env, &np, "vale0:p0").unwrap();
    attach(&env, &np, "vale1:p0").unwrap();
    attach(&env, &np, "vale1:p1").unwrap();
    env.nm.release(np);
    drop(env);
    assert_eq!(p.clusters_live(), (0, 0), "every region freed");
}

#[test]
fn packets_of_several_slots_cross_an_attached_nic() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let env = env_with(std::slice::from_ref(&eth0));
    let np = env.open();
    attach(&env, &np, "vale0:eth0").unwrap();
    let na = eth0.adapter().unwrap();
    let a = env.port("vale0:a");
    let bsize = a.rx_ring(0).unwrap().hdr().nr_buf_size as usize;
    // NIC -> VALE: a frame of 2.5 buffers arrives as a 3-slot chain.
    let big = frame(BCAST, B, 1, 2 * bsize + bsize / 2);
    assert!(na.rx_push(0, &big));
    let got = a.recv();
    assert_eq!(got.len(), 3);
    assert_eq!(got.concat(), big);
    // VALE -> NIC: a 2-slot packet leaves as one frame.
    let r = a.tx_ring(0).unwrap();
    let back = frame(B, A, 2, bsize + 10);
    let mut h = r.head();
    for (i, c) in back.chunks(bsize).enumerate() {
        a.put(&r, h, c);
        let s = r.slot(h);
        r.set_slot(
            h,
            NetmapSlot {
                flags: if i == 0 { NS_MOREFRAG } else { 0 },
                ..s
            },
        );
        h = next(h, r.num_slots());
    }
    r.set_head(h);
    r.set_cur(h);
    a.txsync().unwrap();
    assert_eq!(sent(&eth0), vec![back]);
    drop(a);
    detach(&env, &np, "vale0:eth0").unwrap();
    env.nm.release(np);
}
