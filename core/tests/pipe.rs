//! Pipes: zero-copy transfer and end-to-end flow control (§9).

mod common;
use common::*;
use netmap_uapi::nm_ring_space;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];

#[test]
fn pipe_zero_copy_and_flow_control() {
    let env = Env::new();
    let base = env.nm.stats();
    let m = env.port("pipeA{1");
    let s = env.port("pipeA}1");
    assert_eq!(m.reg.nr_mem_id, s.reg.nr_mem_id);
    let frames: Vec<Vec<u8>> = (0..10).map(|i| frame(A, A, i, 60 + i as usize)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    assert_eq!(m.send(&refs), 10);
    // Zero copy: the slave's RX slots hold the master's TX buffers.
    let tx = m.tx_ring(0).unwrap();
    let rx = s.rx_ring(0).unwrap();
    s.rxsync().unwrap();
    assert_eq!(rx.tail(), 10);
    assert_eq!(rx.slot(3).buf_idx, tx.slot(3).buf_idx);
    // Consume 7.
    rx.set_head(7);
    rx.set_cur(7);
    s.rxsync().unwrap();
    m.txsync().unwrap();
    let n = tx.num_slots();
    // 3 slots are still pending on the sender side.
    assert_eq!(tx.tail(), 6);
    assert_eq!(nm_ring_space(n, tx.head(), tx.tail()), n - 1 - 3);
    drop(m);
    drop(s);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn pipe_payload_round_trip() {
    let env = Env::new();
    let m = env.port("vale9:p{x");
    let s = env.port("vale9:p}x");
    let f = frame(A, A, 77, 1500);
    m.send(&[&f]);
    assert_eq!(s.recv(), vec![f.clone()]);
    s.send(&[&f]);
    assert_eq!(m.recv(), vec![f]);
}

/// The request configures the master even when it opens the slave (§9).
#[test]
fn request_configures_the_master() {
    use netmap_uapi::pod::Pod;
    use netmap_uapi::*;
    let env = Env::new();
    let reg = NmreqRegister {
        nr_mode: NR_REG_ALL_NIC,
        nr_tx_rings: 2,
        nr_rx_rings: 1,
        ..NmreqRegister::zeroed()
    };
    let s = env.port_with("pq}1", reg);
    assert_eq!((s.reg.nr_tx_rings, s.reg.nr_rx_rings), (1, 2));
    let m = env.port("pq{1");
    assert_eq!((m.reg.nr_tx_rings, m.reg.nr_rx_rings), (2, 1));
}

/// A hostile thread flipping the RX head between in-range and out-of-range
/// values while the owner syncs: the kernel reads each index once, so a
/// pipe rxsync never walks towards an index it cannot reach (this used to
/// be able to hang: the reinit read head twice).
#[test]
fn racing_head_writer_cannot_hang_pipe_syncs() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;
    let env = Box::leak(Box::new(Env::new()));
    let m: &'static Port<'static> = Box::leak(Box::new(env.port("pr{1")));
    let s: &'static Port<'static> = Box::leak(Box::new(env.port("pr}1")));
    let f = frame(A, A, 1, 60);
    m.send(&[&f, &f, &f]);
    let rx = s.rx_ring(0).unwrap();
    let n = rx.num_slots();
    let base = rx.base as usize;
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let flipper = std::thread::spawn(move || {
        let head = (base + 20) as *mut u32;
        let mut i = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let v = if i.is_multiple_of(2) { n + 5 } else { 1 };
            // SAFETY: the head field of a ring object that stays mapped
            // (the port is leaked for the whole test).
            unsafe { head.write_volatile(v) };
            i = i.wrapping_add(1);
        }
    });
    let (tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..20000 {
            let _ = s.rxsync();
            let _ = m.txsync();
        }
        let _ = tx.send(());
    });
    let r = done.recv_timeout(Duration::from_secs(60));
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    assert!(r.is_ok(), "syncs hung with a racing head writer");
}
