//! OS interfaces through the NetifOps hooks, with a fake device: hardware
//! rings, host rings (`eth0^`), monitors and pipes on a NIC.

mod common;
use common::*;
use netmap_core::Errno;
use netmap_core::host::{HostNetif, HostNetifProvider};
use netmap_uapi::pod::Pod;
use netmap_uapi::*;
use std::sync::Arc;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];

fn env_with(nics: &[Arc<HostNetif>]) -> Env {
    let env = Env::new();
    env.nm
        .set_netif_provider(Box::new(HostNetifProvider::new(nics.to_vec())))
        .unwrap();
    env
}

fn reg(mode: u32) -> NmreqRegister {
    NmreqRegister {
        nr_mode: mode,
        ..NmreqRegister::zeroed()
    }
}

#[test]
fn nic_tx_and_rx_through_the_device() {
    let eth0 = HostNetif::new("eth0", 1, 256);
    let env = env_with(std::slice::from_ref(&eth0));
    let base = env.nm.stats();
    {
        let p = env.port("eth0");
        assert_eq!(p.reg.nr_mem_id, 1, "NICs use the global region");
        assert_eq!((p.reg.nr_tx_slots, p.reg.nr_host_tx_rings), (256, 1));
        assert_eq!(p.nifp().ni_flags & NI_PRIV_MEM, 0);
        let f = frame(B, A, 1, 60);
        assert_eq!(p.send(&[&f, &f]), 2);
        assert_eq!(eth0.sent.lock().unwrap().len(), 2);
        assert_eq!(eth0.sent.lock().unwrap()[0], f);
        let na = eth0.adapter().expect("in netmap mode");
        let g = frame(A, B, 2, 128);
        assert!(na.rx_push(0, &g));
        assert_eq!(p.recv(), vec![g]);
    }
    assert!(eth0.adapter().is_none(), "device left netmap mode");
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn host_rings_reach_the_host_stack() {
    let eth0 = HostNetif::new("eth0", 2, 128);
    let env = env_with(std::slice::from_ref(&eth0));
    // Host rings only: mode SW; the netmap_if lists 2 hw + 1 host rings.
    let h = env.port_with("eth0", reg(NR_REG_SW));
    assert_eq!(h.nifp().ni_tx_rings, 2);
    assert_eq!(h.ring_ofs(0), 0, "hw TX ring 0 not bound");
    let htx_ofs = h.ring_ofs(2);
    assert_ne!(htx_ofs, 0, "host TX ring bound");
    // Host TX: frames go to the host stack (runts are dropped).
    let r = h.uring_at(htx_ofs);
    let f = frame(B, A, 7, 100);
    h.put(&r, r.head(), &f);
    let hd = next(r.head(), r.num_slots());
    h.put(&r, hd, &[0u8; 10]);
    let hd2 = next(hd, r.num_slots());
    r.set_head(hd2);
    r.set_cur(hd2);
    h.txsync().unwrap();
    assert_eq!(*eth0.to_host.lock().unwrap(), vec![f.clone()]);
    // Host RX: what the stack sends arrives on ring index 2 (after 2 hw).
    let na = eth0.adapter().unwrap();
    assert!(na.rx_push(2, &f));
    assert!(!na.rx_push(0, &f), "hw RX ring 0 is not bound by anyone");
    h.rxsync().unwrap();
    let n = h.nifp();
    let hrx = h.uring_at(h.ring_ofs((n.ni_tx_rings + n.ni_host_tx_rings + 2) as usize));
    assert_eq!(hrx.tail(), 1);
}

#[test]
fn vale_ports_refuse_host_modes_and_unknown_nics_fail() {
    let env = env_with(&[]);
    let np = env.open();
    assert_eq!(
        env.register_with(&np, "eth9", reg(NR_REG_ALL_NIC))
            .unwrap_err(),
        Errno::ENXIO
    );
    env.nm.release(np);
}

#[test]
fn pipes_and_monitors_on_a_nic() {
    let eth0 = HostNetif::new("eth0", 1, 256);
    let env = env_with(std::slice::from_ref(&eth0));
    let p = env.port("eth0");
    let mon = env.port_with(
        "eth0",
        NmreqRegister {
            nr_flags: NR_MONITOR_RX,
            ..reg(NR_REG_ALL_NIC)
        },
    );
    let na = eth0.adapter().unwrap();
    let f = frame(A, B, 3, 70);
    assert!(na.rx_push(0, &f));
    assert_eq!(mon.recv(), vec![f.clone()]);
    assert_eq!(p.recv(), vec![f]);
    // A pipe hanging off the NIC shares the global region.
    let m = env.port("eth0{p");
    assert_eq!(m.reg.nr_mem_id, 1);
}

#[test]
fn device_gone_while_bound() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let env = env_with(std::slice::from_ref(&eth0));
    let base = env.nm.stats();
    {
        let p = env.port("eth0");
        env.nm.netif_gone(b"eth0");
        assert!(eth0.adapter().is_none(), "device side told to stop");
        assert_eq!(p.txsync().unwrap_err(), Errno::EIO);
        assert_eq!(p.rxsync().unwrap_err(), Errno::EIO);
        let rev = env
            .nm
            .poll(p.np(), netmap_core::netmap::POLLIN, &mut |_| {});
        assert_ne!(rev & netmap_core::netmap::POLLERR, 0);
        // A new open sees a fresh adapter.
        let q = env.port("eth0");
        q.txsync().unwrap();
    }
    assert_eq!(env.nm.stats(), base);
}
