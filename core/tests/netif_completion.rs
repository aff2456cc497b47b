//! TX completion tracking of OS interfaces (§6.5: "hwtail advances as
//! slots complete"): slots whose frames the device has not completed yet
//! (`NetifOps::tx_inflight`) stay kernel-owned. With the fake device's
//! `hold_tx`, every transmitted frame stays in flight until the test
//! completes it.

mod common;
use common::*;
use netmap_core::host::{HostNetif, HostNetifProvider};
use netmap_core::kring::Dir;
use netmap_uapi::pod::Pod;
use netmap_uapi::*;
use std::sync::Arc;
use std::sync::atomic::Ordering;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];

fn env_with(nics: &[Arc<HostNetif>]) -> Env {
    let env = Env::new();
    env.nm
        .set_netif_provider(Box::new(HostNetifProvider::new(nics.to_vec())))
        .unwrap();
    env
}

fn frames(n: u32) -> Vec<Vec<u8>> {
    (0..n).map(|i| frame(B, A, i, 60)).collect()
}

fn send(p: &Port<'_>, n: u32) -> usize {
    let f = frames(n);
    let refs: Vec<&[u8]> = f.iter().map(|v| v.as_slice()).collect();
    p.send(&refs)
}

#[test]
fn tail_held_back_while_frames_are_in_flight() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    eth0.hold_tx.store(true, Ordering::Relaxed);
    let env = env_with(std::slice::from_ref(&eth0));
    let base = env.nm.stats();
    {
        let p = env.port("eth0");
        let r = p.tx_ring(0).unwrap();
        assert_eq!((r.head(), r.tail()), (0, 63));
        assert_eq!(send(&p, 10), 10);
        assert_eq!(eth0.sent.lock().unwrap().len(), 10, "all handed over");
        assert_eq!(eth0.inflight(0), 10);
        assert_eq!(r.tail(), 63, "no slot came back");
        assert_eq!(r.space(), 63 - 10);
        // Completions are picked up by the next sync.
        assert_eq!(eth0.complete(0, 4), 4);
        assert_eq!(r.tail(), 63, "tail only moves in a sync");
        p.txsync().unwrap();
        assert_eq!(r.tail(), 3, "4 of 10 slots back");
        assert_eq!(eth0.complete(0, 100), 6);
        p.txsync().unwrap();
        assert_eq!(r.tail(), 9, "all back: hwcur - 1");
        assert_eq!(r.space(), 63);
    }
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn ring_fills_up_then_drains_as_frames_complete() {
    let eth0 = HostNetif::new("eth0", 1, 32);
    eth0.hold_tx.store(true, Ordering::Relaxed);
    let env = env_with(std::slice::from_ref(&eth0));
    let p = env.port("eth0");
    let r = p.tx_ring(0).unwrap();
    // Without completions the user cannot queue more than the ring.
    assert_eq!(send(&p, 100), 31);
    assert_eq!(send(&p, 100), 0, "ring full while 31 frames are in flight");
    assert_eq!(eth0.inflight(0), 31);
    assert_eq!(r.space(), 0);
    eth0.complete(0, 5);
    assert_eq!(send(&p, 100), 0, "the tail moves only in a sync");
    p.txsync().unwrap();
    assert_eq!(send(&p, 100), 5, "5 completed, 5 slots");
    assert_eq!(eth0.inflight(0), 31);
    p.txsync().unwrap();
    assert_eq!(send(&p, 100), 0);
    // The device completes everything: the whole ring is free again.
    eth0.complete(0, 31);
    p.txsync().unwrap();
    assert_eq!(r.space(), 31);
    assert_eq!(eth0.sent.lock().unwrap().len(), 36);
}

#[test]
fn tail_never_moves_backwards() {
    let eth0 = HostNetif::new("eth0", 1, 16);
    eth0.hold_tx.store(true, Ordering::Relaxed);
    let env = env_with(std::slice::from_ref(&eth0));
    let p = env.port("eth0");
    let r = p.tx_ring(0).unwrap();
    assert_eq!(send(&p, 6), 6);
    eth0.complete(0, 6);
    p.txsync().unwrap();
    assert_eq!(r.tail(), 5);
    // A count larger than what the ring handed over (frames of slots
    // already returned, another binding's, a confused device) only keeps
    // the tail where it is.
    eth0.set_inflight(0, 1000);
    p.txsync().unwrap();
    assert_eq!(r.tail(), 5, "tail moved backwards");
    assert_eq!(send(&p, 3), 3);
    assert_eq!(r.tail(), 5, "the 3 new slots are held");
    assert_eq!(eth0.inflight(0), 1003);
    eth0.set_inflight(0, 2);
    p.txsync().unwrap();
    assert_eq!(r.tail(), 6, "hwcur 9 - 1 - 2 in flight");
    eth0.set_inflight(0, 0);
    p.txsync().unwrap();
    assert_eq!(r.tail(), 8);
    // Around the end of the ring.
    for _ in 0..5 {
        assert_eq!(send(&p, 7), 7);
        let t = r.tail();
        eth0.set_inflight(0, 3);
        p.txsync().unwrap();
        let want = (r.head() + 16 - 1 - 3) % 16;
        assert_eq!(
            r.tail(),
            want,
            "tail {t} -> {} (head {})",
            r.tail(),
            r.head()
        );
        eth0.set_inflight(0, 0);
        p.txsync().unwrap();
        assert_eq!(r.tail(), (r.head() + 15) % 16);
    }
}

#[test]
fn rings_are_counted_separately_and_host_rings_never_wait() {
    let eth0 = HostNetif::new("eth0", 2, 16);
    eth0.hold_tx.store(true, Ordering::Relaxed);
    let env = env_with(std::slice::from_ref(&eth0));
    // Hardware ring 1 only.
    let p1 = env.port_with(
        "eth0",
        NmreqRegister {
            nr_mode: NR_REG_ONE_NIC,
            nr_ringid: 1,
            ..NmreqRegister::zeroed()
        },
    );
    let ofs = p1.ring_ofs(1);
    assert_ne!(ofs, 0);
    let r1 = p1.uring_at(ofs);
    eth0.set_inflight(0, 50);
    for i in 0..4 {
        p1.put(&r1, i, &frame(B, A, i, 60));
    }
    r1.set_head(4);
    r1.set_cur(4);
    p1.txsync().unwrap();
    assert_eq!(eth0.inflight(1), 4);
    assert_eq!(r1.tail(), 15, "ring 1 waits for its own frames only");
    eth0.complete(1, 4);
    p1.txsync().unwrap();
    assert_eq!(r1.tail(), 3, "ring 0's count does not hold ring 1");
    // The host TX ring (index 2) hands frames to the stack at once.
    let h = env.port_with(
        "eth0",
        NmreqRegister {
            nr_mode: NR_REG_SW,
            ..NmreqRegister::zeroed()
        },
    );
    let hr = h.uring_at(h.ring_ofs(2));
    eth0.set_inflight(1, 50);
    for i in 0..3 {
        h.put(&hr, i, &frame(B, A, i, 60));
    }
    hr.set_head(3);
    hr.set_cur(3);
    h.txsync().unwrap();
    assert_eq!(eth0.to_host.lock().unwrap().len(), 3);
    assert_eq!(hr.tail(), 2, "host TX slots are free at once");
}

#[test]
fn refused_frames_stay_pending_and_are_not_in_flight() {
    let eth0 = HostNetif::new("eth0", 1, 16);
    eth0.hold_tx.store(true, Ordering::Relaxed);
    *eth0.tx_budget.lock().unwrap() = Some(3);
    let env = env_with(std::slice::from_ref(&eth0));
    let p = env.port("eth0");
    let r = p.tx_ring(0).unwrap();
    assert_eq!(send(&p, 5), 5, "5 slots queued by the user");
    assert_eq!(eth0.inflight(0), 3, "the device took 3");
    assert_eq!(r.tail(), 15);
    eth0.complete(0, 3);
    p.txsync().unwrap();
    assert_eq!(r.tail(), 2, "3 completed; 2 still pending (hwcur 3)");
    *eth0.tx_budget.lock().unwrap() = None;
    p.txsync().unwrap();
    assert_eq!(eth0.inflight(0), 2, "the pending 2 went out");
    assert_eq!(r.tail(), 2);
    eth0.complete(0, 2);
    p.txsync().unwrap();
    assert_eq!(r.tail(), 4);
}

#[test]
fn poll_reports_room_only_after_completions_and_is_woken() {
    let eth0 = HostNetif::new("eth0", 1, 16);
    eth0.hold_tx.store(true, Ordering::Relaxed);
    let env = env_with(std::slice::from_ref(&eth0));
    let p = env.port("eth0");
    let r = p.tx_ring(0).unwrap();
    assert_eq!(send(&p, 20), 15);
    assert_eq!(r.space(), 0);
    let rev = env.nm.poll(p.np(), POLLOUT, &mut |_| {});
    assert_eq!(rev & POLLOUT, 0, "no room while everything is in flight");
    // A completion wakes the ring's waiters; poll then reports room.
    let wq = p.wq(Dir::Tx);
    let g = wq.generation();
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            eth0.complete(0, 1);
        });
        assert!(
            wq.wait_since(g, std::time::Duration::from_secs(5)),
            "completion did not wake the TX ring"
        );
        t.join().unwrap();
    });
    let rev = env.nm.poll(p.np(), POLLOUT, &mut |_| {});
    assert_ne!(rev & POLLOUT, 0, "room after a completion");
    assert_eq!(r.space(), 1);
    // Blocking poll through the harness: room appears from another thread.
    assert_eq!(send(&p, 1), 1);
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            eth0.complete(0, 15);
        });
        let t0 = std::time::Instant::now();
        loop {
            let rev = p.poll_wait(POLLOUT, std::time::Duration::from_secs(5));
            if rev & POLLOUT != 0 {
                break;
            }
            assert!(t0.elapsed().as_secs() < 5, "never woken");
        }
    });
    assert_eq!(r.space(), 15);
}

#[test]
fn zero_copy_tx_monitor_sees_frames_as_they_complete() {
    let eth0 = HostNetif::new("eth0", 1, 16);
    eth0.hold_tx.store(true, Ordering::Relaxed);
    let env = env_with(std::slice::from_ref(&eth0));
    let p = env.port("eth0");
    let mon = env.port_with(
        "eth0",
        NmreqRegister {
            nr_mode: NR_REG_ALL_NIC,
            nr_flags: NR_MONITOR_TX | NR_ZCOPY_MON,
            ..NmreqRegister::zeroed()
        },
    );
    assert_eq!(send(&p, 4), 4);
    assert!(mon.recv().is_empty(), "nothing completed yet");
    eth0.complete(0, 1);
    p.txsync().unwrap();
    assert_eq!(mon.recv(), vec![frame(B, A, 0, 60)]);
    eth0.complete(0, 3);
    p.txsync().unwrap();
    assert_eq!(mon.recv().len(), 3);
}
