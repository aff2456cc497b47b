//! OS interfaces through the NetifOps hooks, with a fake device: hardware
//! rings, host rings (`eth0^`), monitors and pipes on a NIC.

mod common;
use common::*;
use netmap_core::Errno;
use netmap_core::host::HostNetif;
use netmap_uapi::pod::Pod;
use netmap_uapi::*;
use std::sync::Arc;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];

fn env_with(nics: &[Arc<HostNetif>]) -> Env {
    Env::with_nics(nics)
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

/// Mark slots `[head, tail)` of `r` with NS_FORWARD where `fwd(i)` says
/// so, release them all, and sync RX.
fn release_marked(p: &Port<'_>, r: &URing, fwd: impl Fn(u32) -> bool) {
    let (mut h, t) = (r.head(), r.tail());
    let mut i = 0;
    while h != t {
        let s = r.slot(h);
        if fwd(i) {
            r.set_slot(
                h,
                NetmapSlot {
                    flags: s.flags | NS_FORWARD,
                    ..s
                },
            );
        }
        h = next(h, r.num_slots());
        i += 1;
    }
    r.set_head(h);
    r.set_cur(h);
    p.rxsync().unwrap();
}

#[test]
fn transparent_mode_nic_to_host_stack() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let env = env_with(std::slice::from_ref(&eth0));
    let p = env.port("eth0");
    let na = eth0.adapter().unwrap();
    let r = p.rx_ring(0).unwrap();
    let frames: Vec<_> = (0..4).map(|i| frame(A, B, i, 60 + i as usize)).collect();
    // Without NR_FORWARD, NS_FORWARD does nothing.
    assert!(na.rx_push(0, &frames[0]));
    p.rxsync().unwrap();
    release_marked(&p, &r, |_| true);
    assert!(eth0.to_host.lock().unwrap().is_empty());
    // With NR_FORWARD: the marked slots released go to the host stack, and
    // lose their mark.
    r.set_flags(NR_FORWARD);
    for f in &frames {
        assert!(na.rx_push(0, f));
    }
    p.rxsync().unwrap();
    let first = r.head();
    release_marked(&p, &r, |i| i % 2 == 1);
    assert_eq!(
        *eth0.to_host.lock().unwrap(),
        vec![frames[1].clone(), frames[3].clone()]
    );
    let n = r.num_slots();
    assert_eq!(r.slot(next(first, n)).flags & NS_FORWARD, 0);
    // Slots not yet released are not forwarded.
    eth0.to_host.lock().unwrap().clear();
    assert!(na.rx_push(0, &frames[0]));
    p.rxsync().unwrap();
    r.set_slot(
        r.head(),
        NetmapSlot {
            flags: NS_FORWARD,
            ..r.slot(r.head())
        },
    );
    p.rxsync().unwrap();
    assert!(eth0.to_host.lock().unwrap().is_empty());
}

#[test]
fn fwd_parameter_forwards_every_released_slot() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let env = env_with(std::slice::from_ref(&eth0));
    env.nm
        .params()
        .fwd
        .store(1, std::sync::atomic::Ordering::Relaxed);
    let p = env.port("eth0");
    let na = eth0.adapter().unwrap();
    let frames: Vec<_> = (0..3).map(|i| frame(A, B, i, 70)).collect();
    for f in &frames {
        assert!(na.rx_push(0, f));
    }
    assert_eq!(p.recv(), frames);
    p.rxsync().unwrap();
    assert_eq!(*eth0.to_host.lock().unwrap(), frames);
}

#[test]
fn transparent_mode_host_stack_to_nic() {
    let eth0 = HostNetif::new("eth0", 2, 64);
    let env = env_with(std::slice::from_ref(&eth0));
    // Binding every ring: host frames marked NS_FORWARD go to the wire.
    let p = env.port_with("eth0", reg(NR_REG_NIC_SW));
    let na = eth0.adapter().unwrap();
    let n = p.nifp();
    let hrx = p.rx_ring(n.ni_rx_rings as usize).unwrap();
    hrx.set_flags(NR_FORWARD);
    let frames: Vec<_> = (0..3).map(|i| frame(A, B, i, 80 + i as usize)).collect();
    for f in &frames {
        assert!(na.rx_push(2, f));
    }
    p.rxsync().unwrap();
    let old: Vec<u32> = (0..3).map(|i| hrx.slot(i).buf_idx).collect();
    release_marked(&p, &hrx, |i| i != 1);
    assert_eq!(
        *eth0.sent.lock().unwrap(),
        vec![frames[0].clone(), frames[2].clone()]
    );
    // The buffers were swapped, not copied: the host slots got others.
    assert_ne!(hrx.slot(0).buf_idx, old[0]);
    assert_eq!(hrx.slot(1).buf_idx, old[1]);
    // The TX ring moved on and is consistent for its user.
    let tx = p.tx_ring(0).unwrap();
    assert_eq!((tx.head(), tx.cur()), (2, 2));
    assert_eq!(p.send(&[&frames[1]]), 1);
    assert_eq!(eth0.sent.lock().unwrap().len(), 3);

    // A file binding only the host rings cannot reach the TX rings.
    drop(p);
    eth0.sent.lock().unwrap().clear();
    let h = env.port_with("eth0", reg(NR_REG_SW));
    let na = eth0.adapter().unwrap();
    let n = h.nifp();
    let hrx = h.rx_ring(n.ni_rx_rings as usize).unwrap();
    hrx.set_flags(NR_FORWARD);
    assert!(na.rx_push(2, &frames[0]));
    h.rxsync().unwrap();
    release_marked(&h, &hrx, |_| true);
    assert!(eth0.sent.lock().unwrap().is_empty());
}

/// Put `frame` in TX ring 0 of `p` as a chain of slots of at most `piece`
/// bytes (NS_MOREFRAG on all but the last); returns the new head (not yet
/// published).
fn put_chain(p: &Port<'_>, r: &URing, frame: &[u8], piece: usize) -> u32 {
    let mut h = r.head();
    let chunks: Vec<&[u8]> = frame.chunks(piece).collect();
    for (i, c) in chunks.iter().enumerate() {
        p.put(r, h, c);
        let s = r.slot(h);
        let more = if i + 1 < chunks.len() { NS_MOREFRAG } else { 0 };
        r.set_slot(h, NetmapSlot { flags: more, ..s });
        h = next(h, r.num_slots());
    }
    h
}

#[test]
fn frames_of_several_slots_go_out_whole() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let env = env_with(std::slice::from_ref(&eth0));
    let p = env.port("eth0");
    let r = p.tx_ring(0).unwrap();
    let big = frame(B, A, 1, 3000);
    let h = put_chain(&p, &r, &big, 1000);
    // Only the first two slots released: the chain waits.
    let n = r.num_slots();
    let two = next(next(r.head(), n), n);
    r.set_head(two);
    r.set_cur(two);
    p.txsync().unwrap();
    assert!(
        eth0.sent.lock().unwrap().is_empty(),
        "half a frame was sent"
    );
    r.set_head(h);
    r.set_cur(h);
    p.txsync().unwrap();
    assert_eq!(*eth0.sent.lock().unwrap(), vec![big]);
}

#[test]
fn frames_larger_than_a_buffer_arrive_in_several_slots() {
    let eth0 = HostNetif::new("eth0", 1, 8);
    let env = env_with(std::slice::from_ref(&eth0));
    let p = env.port("eth0");
    let na = eth0.adapter().unwrap();
    let bsize = p.rx_ring(0).unwrap().hdr().nr_buf_size as usize;
    let big = frame(A, B, 2, 2 * bsize + 100);
    assert!(na.rx_push(0, &big));
    let got = p.recv();
    assert_eq!(got.len(), 3);
    assert_eq!(got.concat(), big);
    let r = p.rx_ring(0).unwrap();
    let n = r.num_slots();
    let (a, b, c) = (
        prev(prev(prev(r.head(), n), n), n),
        prev(prev(r.head(), n), n),
        prev(r.head(), n),
    );
    assert_ne!(r.slot(a).flags & NS_MOREFRAG, 0);
    assert_ne!(r.slot(b).flags & NS_MOREFRAG, 0);
    assert_eq!(r.slot(c).flags & NS_MOREFRAG, 0);
    // Not enough free slots for the whole frame: dropped, not cut.
    p.rxsync().unwrap();
    for i in 0..5 {
        assert!(na.rx_push(0, &frame(A, B, 10 + i, 60)));
    }
    assert!(!na.rx_push(0, &big), "2 slots free: no room for 3");
    assert_eq!(p.recv().len(), 5);
}
