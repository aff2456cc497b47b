//! Monitors (§10.1): copy and zero-copy, on VALE ports and pipes.

mod common;
use common::*;
use netmap_core::Errno;
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];

fn mon_reg(flags: u64) -> NmreqRegister {
    NmreqRegister {
        nr_mode: NR_REG_ALL_NIC,
        nr_flags: flags,
        ..NmreqRegister::zeroed()
    }
}

#[test]
fn copy_monitors_see_tx_and_rx_of_vale_ports() {
    let env = Env::new();
    let base = env.nm.stats();
    {
        let a = env.port("vale0:a");
        let b = env.port("vale0:b");
        let mt = env.port_with("vale0:a", mon_reg(NR_MONITOR_TX));
        let mr = env.port_with("vale0:b", mon_reg(NR_MONITOR_RX));
        // Copy monitors have their own region.
        assert_ne!(mt.reg.nr_mem_id, a.reg.nr_mem_id);
        assert_eq!(&mt.nifp().ni_name[..10], b"vale0:a/t#");
        assert_eq!(mt.reg.nr_tx_rings, 1);
        assert_eq!(mt.reg.nr_rx_rings, 1);
        let f1 = frame(B, A, 1, 60);
        let f2 = frame(B, A, 2, 70);
        a.send(&[&f1, &f2]);
        // The TX monitor of a saw both frames, marked NS_TXMON.
        mt.rxsync().unwrap();
        let r = mt.rx_ring(0).unwrap();
        assert_eq!(r.tail(), 2);
        assert_ne!(r.slot(0).flags & NS_TXMON, 0);
        assert_eq!(mt.recv(), vec![f1.clone(), f2.clone()]);
        // The RX monitor of b saw them on arrival, before b read anything.
        assert_eq!(mr.recv(), vec![f1.clone(), f2.clone()]);
        assert_eq!(mr.rx_ring(0).unwrap().slot(0).flags & NS_TXMON, 0);
        assert_eq!(b.recv(), vec![f1, f2]);
        // The monitor cannot transmit: poll for POLLOUT reports POLLERR.
        let rev = env
            .nm
            .poll(mt.np(), netmap_core::netmap::POLLOUT, &mut |_| {});
        assert_ne!(rev & netmap_core::netmap::POLLERR, 0);
    }
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn monitor_needs_a_port_in_netmap_mode() {
    let env = Env::new();
    let np = env.open();
    assert_eq!(
        env.register_with(&np, "vale0:nobody", mon_reg(NR_MONITOR_TX))
            .unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        env.register_with(&np, "pipeZ{1", mon_reg(NR_MONITOR_RX))
            .unwrap_err(),
        Errno::EINVAL
    );
    env.nm.release(np);
}

#[test]
fn monitor_stops_when_parent_leaves_netmap_mode() {
    let env = Env::new();
    let a = env.port("vale3:a");
    let m = env.port_with("vale3:a", mon_reg(NR_MONITOR_RX | NR_MONITOR_TX));
    m.rxsync().unwrap();
    a.close();
    assert_eq!(m.rxsync().unwrap_err(), Errno::EIO);
}

#[test]
fn zero_copy_monitor_of_pipe_sees_released_tx_slots() {
    let env = Env::new();
    let base = env.nm.stats();
    {
        let m = env.port("pz{1");
        let s = env.port("pz}1");
        let mon = env.port_with("pz{1", mon_reg(NR_ZCOPY_MON));
        // Zero-copy monitors share the region; TX|RX are ORed into the flags.
        assert_eq!(mon.reg.nr_mem_id, m.reg.nr_mem_id);
        assert_eq!(mon.reg.nr_flags & 0x700, 0x700);
        let f = frame(B, A, 9, 80);
        m.send(&[&f]);
        // Not passed yet: the receiver has not consumed the frame.
        mon.rxsync().unwrap();
        assert_eq!(mon.rx_ring(0).unwrap().tail(), 0);
        assert_eq!(s.recv(), vec![f.clone()]);
        s.rxsync().unwrap();
        m.txsync().unwrap();
        // Released by the receiver and seen again by the sender: passed.
        let got = mon.recv();
        assert_eq!(got, vec![f]);
        let tx = m.tx_ring(0).unwrap();
        assert_ne!(tx.slot(0).flags & NS_BUF_CHANGED, 0);
    }
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn zero_copy_monitor_of_vale_rx_sees_released_frames() {
    let env = Env::new();
    let a = env.port("vale4:a");
    let b = env.port("vale4:b");
    let mon = env.port_with("vale4:b", mon_reg(NR_ZCOPY_MON));
    let f = frame(B, A, 5, 64);
    a.send(&[&f]);
    mon.rxsync().unwrap();
    assert_eq!(mon.rx_ring(0).unwrap().tail(), 0);
    assert_eq!(b.recv(), vec![f.clone()]);
    // b's next rxsync releases the slot: the monitor gets its buffer.
    b.rxsync().unwrap();
    assert_eq!(mon.recv(), vec![f]);
}

/// Delivers `f` into the RX ring of `owner` with `deliver` and checks that
/// the copy monitor `mon` of that ring is woken and has the frame at once,
/// before `owner` syncs, and that `owner` still receives it afterwards.
fn seen_on_arrival(what: &str, owner: &Port<'_>, mon: &Port<'_>, f: &[u8], deliver: impl FnOnce()) {
    let wq = mon.wq(netmap_core::kring::Dir::Rx);
    let g = wq.generation();
    deliver();
    assert_ne!(wq.generation(), g, "{what}: the monitor was not woken");
    assert_eq!(mon.recv(), vec![f.to_vec()], "{what}: monitor");
    assert_eq!(owner.recv(), vec![f.to_vec()], "{what}: owner");
}

/// The issue "a copy monitor of a pipe's receive ring sees nothing until
/// the pipe end syncs": a copy monitor of an RX ring gets frames when
/// they arrive, whoever fills the ring (a pipe peer's txsync, a VALE
/// sender, a NIC's receive path), not at the owner's next rxsync.
#[test]
fn copy_monitor_of_rx_sees_frames_on_arrival_for_every_port_type() {
    use netmap_core::host::HostNetif;
    let eth0 = HostNetif::new("eth0", 1, 64);
    let env = Env::with_nics(std::slice::from_ref(&eth0));
    let base = env.nm.stats();
    {
        let f = frame(B, A, 3, 90);
        // Pipe: the peer's txsync publishes into the owner's RX ring.
        let owner = env.port("pm{1");
        let mon = env.port_with("pm{1", mon_reg(NR_MONITOR_RX));
        let peer = env.port("pm}1");
        seen_on_arrival("pipe", &owner, &mon, &f, || assert_eq!(peer.send(&[&f]), 1));
        // The sender's slot completes once the owner released it (the
        // buffer is shared): nothing pending any more.
        owner.rxsync().unwrap();
        peer.txsync().unwrap();
        let tx = peer.tx_ring(0).unwrap();
        assert_eq!(tx.tail(), prev(tx.head(), tx.num_slots()));
        // VALE: the sender's switch delivers.
        let owner = env.port("valemr:r");
        let mon = env.port_with("valemr:r", mon_reg(NR_MONITOR_RX));
        let sender = env.port("valemr:s");
        seen_on_arrival("VALE", &owner, &mon, &f, || {
            assert_eq!(sender.send(&[&f]), 1)
        });
        // NIC: the OS's receive path pushes.
        let owner = env.port("eth0");
        let mon = env.port_with("eth0", mon_reg(NR_MONITOR_RX));
        let na = eth0.adapter().unwrap();
        seen_on_arrival("NIC", &owner, &mon, &f, || assert!(na.rx_push(0, &f)));
    }
    assert_eq!(env.nm.stats(), base);
}

/// Pipes publish complete packets only: a copy monitor of the receiving
/// end gets a chain once its last slot is sent, and exactly once.
#[test]
fn copy_monitor_of_pipe_rx_gets_complete_packets_once() {
    let env = Env::new();
    let owner = env.port("pc{1");
    let mon = env.port_with("pc{1", mon_reg(NR_MONITOR_RX));
    let peer = env.port("pc}1");
    let tx = peer.tx_ring(0).unwrap();
    let f = frame(B, A, 4, 60);
    let g = frame(B, A, 5, 70);
    // First slot of a two-slot packet: not published, not monitored.
    peer.put(&tx, 0, &f);
    let mut s = tx.slot(0);
    s.flags |= NS_MOREFRAG;
    tx.set_slot(0, s);
    tx.set_head(1);
    tx.set_cur(1);
    peer.txsync().unwrap();
    assert!(mon.recv().is_empty(), "half a packet reached the monitor");
    peer.put(&tx, 1, &g);
    tx.set_head(2);
    tx.set_cur(2);
    peer.txsync().unwrap();
    assert_eq!(mon.recv(), vec![f.clone(), g.clone()]);
    // Syncs of either side do not pass the frames again.
    owner.rxsync().unwrap();
    peer.txsync().unwrap();
    assert!(mon.recv().is_empty(), "frames passed twice");
    assert_eq!(owner.recv(), vec![f, g]);
}
