//! Native (netmap-aware) drivers through the `native` hooks, with a
//! simulated device (descriptor rings in memory, a fake DMA engine):
//! zero-copy TX and RX, buffer swaps, device resets, hostile slots.

mod common;
use common::*;
use netmap_core::Errno;
use netmap_core::adapter::Kind;
use netmap_core::host::HostNetif;
use netmap_core::host_native::SimNic;
use netmap_core::kring::Dir;
use netmap_core::native::{self, NativePort};
use netmap_uapi::pod::Pod;
use netmap_uapi::*;
use std::sync::Arc;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];

fn setup(rings: u32, descs: u32) -> (Arc<HostNetif>, Arc<SimNic>, Env) {
    let eth0 = HostNetif::with_native("eth0", rings, descs);
    let sim = eth0.sim().unwrap();
    let env = Env::with_nics(std::slice::from_ref(&eth0));
    (eth0, sim, env)
}

fn with_native<R>(
    eth0: &HostNetif,
    f: impl FnOnce(&netmap_core::adapter::Adapter<netmap_core::host::HostPlatform>, &NativePort) -> R,
) -> R {
    let na = eth0.adapter().expect("in netmap mode");
    let Kind::Netif(ni) = &na.kind else {
        panic!("not a netif")
    };
    f(&na, ni.native.as_ref().expect("native"))
}

/// Every buffer the device got was a valid one, within the buffer size.
fn check_given(sim: &SimNic, nbufs: u32, bsize: u32) {
    for b in sim.state().given.iter() {
        assert!(
            b.buf_idx >= 2 && b.buf_idx < nbufs,
            "bad buffer {b:?} reached a descriptor"
        );
        assert!(b.len <= bsize, "bad length {b:?} reached a descriptor");
    }
}

fn nbufs(eth0: &HostNetif) -> u32 {
    eth0.adapter().unwrap().mem.buf_count()
}

#[test]
fn zero_copy_tx() {
    let (eth0, sim, env) = setup(1, 64);
    let base = env.nm.stats();
    {
        let p = env.port("eth0");
        assert_eq!(
            p.reg.nr_tx_slots, 64,
            "rings have the device's descriptor count"
        );
        assert_eq!(sim.state().registers, vec![true]);
        let f1 = frame(B, A, 1, 60);
        let f2 = frame(B, A, 2, 1514);
        assert_eq!(p.send(&[&f1, &f2]), 2);
        // Zero copy: the descriptors point at the slots' own buffers.
        let r = p.tx_ring(0).unwrap();
        {
            let st = sim.state();
            let tx: Vec<_> = st.given.iter().filter(|b| b.len != 2048).collect();
            assert_eq!(tx.len(), 2);
            for (i, b) in tx.iter().enumerate() {
                assert_eq!(b.buf_idx, r.slot(i as u32).buf_idx);
                assert_eq!(b.addr, p.buf(&r, b.buf_idx) as usize);
            }
            assert_eq!(
                st.rings[Dir::Tx.idx()][0].kicks,
                1,
                "one doorbell per batch"
            );
        }
        // Not completed yet: the slots stay kernel-owned.
        assert_eq!(r.tail(), 63);
        assert_eq!(sim.dma_tx(0), 2);
        assert_eq!(sim.state().wire, vec![(0, f1.clone()), (0, f2.clone())]);
        p.txsync().unwrap();
        assert_eq!(r.tail(), 1, "completions free the slots");
        // Many rounds around the ring.
        for round in 0..10u32 {
            let fs: Vec<Vec<u8>> = (0..50).map(|i| frame(B, A, round * 100 + i, 60)).collect();
            let refs: Vec<&[u8]> = fs.iter().map(|f| f.as_slice()).collect();
            assert_eq!(p.send(&refs), 50);
            assert_eq!(sim.dma_tx(0), 50);
            p.txsync().unwrap();
            let st = sim.state();
            let got: Vec<&Vec<u8>> = st.wire.iter().rev().take(50).map(|(_, f)| f).collect();
            assert_eq!(got.into_iter().rev().cloned().collect::<Vec<_>>(), fs);
        }
        check_given(&sim, nbufs(&eth0), 2048);
    }
    assert_eq!(sim.state().registers, vec![true, false]);
    assert_eq!(
        sim.held(Dir::Rx, 0) + sim.held(Dir::Tx, 0),
        0,
        "device holds nothing"
    );
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn zero_copy_rx_and_refill() {
    let (eth0, sim, env) = setup(2, 32);
    let p = env.port("eth0");
    // Each RX ring is filled but for the gap slot.
    assert_eq!(sim.held(Dir::Rx, 0), 31);
    assert_eq!(sim.held(Dir::Rx, 1), 31);
    let mut all = Vec::new();
    for round in 0..5u32 {
        let fs: Vec<Vec<u8>> = (0..20)
            .map(|i| frame(A, B, round * 100 + i, 60 + i as usize))
            .collect();
        for f in &fs {
            assert!(sim.dma_rx(0, f));
        }
        let na = eth0.adapter().unwrap();
        native::rx_irq(&na, 0);
        let got = p.recv();
        assert_eq!(got, fs);
        all.extend(got);
        p.rxsync().unwrap();
        assert_eq!(sim.held(Dir::Rx, 0), 31, "released slots are posted again");
    }
    // Zero copy: the data is in the slots' own buffers.
    let r = p.rx_ring(0).unwrap();
    let s = r.slot(prev(r.head(), 32));
    let st = sim.state();
    assert!(
        st.given
            .iter()
            .any(|b| b.buf_idx == s.buf_idx && b.addr == p.buf(&r, s.buf_idx) as usize)
    );
    drop(st);
    // A full device drops.
    for i in 0..40 {
        let _ = sim.dma_rx(1, &frame(A, B, i, 60));
    }
    assert!(!sim.dma_rx(1, &frame(A, B, 99, 60)));
    check_given(&sim, nbufs(&eth0), 2048);
}

#[test]
fn buffer_swaps_reload_descriptors() {
    let (_eth0, sim, env) = setup(1, 16);
    let np = env.open();
    let reg = env
        .register_with(
            &np,
            "eth0",
            NmreqRegister {
                nr_mode: NR_REG_ALL_NIC,
                nr_extra_bufs: 4,
                ..NmreqRegister::zeroed()
            },
        )
        .unwrap();
    let p = Port::wrap(&env, np, reg);
    let extra = p.nifp().ni_bufs_head;
    assert!(extra >= 2);
    // TX: the slot gets an extra buffer, NS_BUF_CHANGED.
    let r = p.tx_ring(0).unwrap();
    let old = r.slot(0).buf_idx;
    let f = frame(B, A, 5, 100);
    let b = p.buf(&r, extra);
    // SAFETY: an extra buffer of the region, 2048 bytes.
    unsafe { core::ptr::copy_nonoverlapping(f.as_ptr(), b, f.len()) };
    r.set_slot(
        0,
        NetmapSlot {
            buf_idx: extra,
            len: f.len() as u16,
            flags: NS_BUF_CHANGED,
            ptr: 0,
        },
    );
    r.set_head(1);
    r.set_cur(1);
    p.txsync().unwrap();
    {
        let st = sim.state();
        let last = st.given.last().unwrap();
        assert_eq!((last.buf_idx, last.reload), (extra, true));
    }
    assert_eq!(r.slot(0).flags & NS_BUF_CHANGED, 0, "flag consumed");
    assert_eq!(sim.dma_tx(0), 1);
    assert_eq!(sim.state().wire[0].1, f);
    // RX: a received slot's buffer is swapped for `old` before release.
    assert!(sim.dma_rx(0, &frame(A, B, 1, 60)));
    p.rxsync().unwrap();
    let rr = p.rx_ring(0).unwrap();
    assert_eq!(rr.tail(), 1);
    let reloads = sim.state().rings[Dir::Rx.idx()][0].reloads;
    rr.set_slot(
        0,
        NetmapSlot {
            buf_idx: old,
            len: 0,
            flags: NS_BUF_CHANGED,
            ptr: 0,
        },
    );
    // Slot 0 is posted when the slot after it is released (gap slot).
    assert!(sim.dma_rx(0, &frame(A, B, 2, 60)));
    p.rxsync().unwrap();
    rr.set_head(2);
    rr.set_cur(2);
    p.rxsync().unwrap();
    let st = sim.state();
    assert!(st.rings[Dir::Rx.idx()][0].reloads > reloads);
    assert!(
        st.given
            .iter()
            .any(|b| b.buf_idx == old && b.reload && b.len == 2048)
    );
}

#[test]
fn device_reset_reposts_and_frees() {
    let (eth0, sim, env) = setup(1, 32);
    let p = env.port("eth0");
    let fs: Vec<Vec<u8>> = (0..5).map(|i| frame(B, A, i, 60)).collect();
    let refs: Vec<&[u8]> = fs.iter().map(|f| f.as_slice()).collect();
    assert_eq!(p.send(&refs), 5);
    // The device resets before sending anything; it restarts at desc 7.
    sim.reset();
    assert_eq!(sim.held(Dir::Rx, 0), 0);
    with_native(&eth0, |na, np| {
        assert!(native::ring_reset(na, np, Dir::Tx, 0, 7));
        assert!(native::ring_reset(na, np, Dir::Rx, 0, 3));
    });
    assert_eq!(sim.held(Dir::Rx, 0), 31, "RX buffers posted again");
    p.txsync().unwrap();
    let r = p.tx_ring(0).unwrap();
    assert_eq!(
        r.tail(),
        prev(r.head(), 32),
        "TX slots in flight were freed"
    );
    // Traffic continues, at the new descriptor offsets.
    assert_eq!(p.send(&refs), 5);
    let first_tx = sim.state().rings[Dir::Tx.idx()][0].avail[0];
    assert_eq!(first_tx, 7);
    assert_eq!(sim.dma_tx(0), 5);
    assert!(sim.dma_rx(0, &fs[0]));
    assert_eq!(p.recv(), vec![fs[0].clone()]);
}

#[test]
fn hostile_tx_slots_never_reach_a_descriptor() {
    let (eth0, sim, env) = setup(1, 64);
    let p = env.port("eth0");
    let nb = nbufs(&eth0);
    let r = p.tx_ring(0).unwrap();
    let good = r.slot(0);
    for (idx, len) in [
        (0u32, 60u16),
        (1, 60),
        (nb, 60),
        (u32::MAX, 60),
        (good.buf_idx, 2049),
        (good.buf_idx, u16::MAX),
    ] {
        r.set_slot(
            0,
            NetmapSlot {
                buf_idx: idx,
                len,
                flags: NS_BUF_CHANGED,
                ptr: 0,
            },
        );
        r.set_head(1);
        r.set_cur(1);
        // The sync stops at the slot (the ioctl itself succeeds, as a
        // reinit would): the slot stays pending, nothing reached the device.
        let _ = p.txsync();
        assert_eq!(
            sim.state().given.iter().filter(|b| b.len != 2048).count(),
            0,
            "slot ({idx}, {len})"
        );
        assert_eq!(sim.held(Dir::Tx, 0), 0);
        assert_eq!(r.tail(), 63, "the slot is not given back as sent");
    }
    // Head/cur out of range: the ring is reinitialized, nothing is sent.
    r.set_slot(0, good);
    for (h, c) in [(64, 0), (0, 64), (u32::MAX, 3), (10, 5)] {
        r.set_head(h);
        r.set_cur(c);
        let _ = p.txsync();
        assert!(r.head() < 64 && r.cur() < 64);
    }
    assert_eq!(sim.held(Dir::Tx, 0), 0);
    // Fixed, the ring works.
    r.set_head(0);
    r.set_cur(0);
    let _ = p.txsync(); // the kring takes the repaired head
    let f = frame(B, A, 1, 60);
    assert_eq!(p.send(&[&f]), 1);
    assert_eq!(sim.dma_tx(0), 1);
    check_given(&sim, nb, 2048);
}

#[test]
fn hostile_rx_slots_never_reach_a_descriptor() {
    let (eth0, sim, env) = setup(1, 16);
    let p = env.port("eth0");
    let nb = nbufs(&eth0);
    for i in 0..4 {
        assert!(sim.dma_rx(0, &frame(A, B, i, 60)));
    }
    p.rxsync().unwrap();
    let r = p.rx_ring(0).unwrap();
    assert_eq!(r.tail(), 4);
    // Release slots 0..3; slot 15 (the gap) and 0..2 get posted. The gap
    // slot is kernel-owned but writable: a hostile index there is refused.
    let gap = r.slot(15);
    r.set_slot(
        15,
        NetmapSlot {
            buf_idx: nb + 100,
            ..gap
        },
    );
    r.set_head(3);
    r.set_cur(3);
    let _ = p.rxsync();
    assert_eq!(sim.held(Dir::Rx, 0), 11, "nothing posted past the bad slot");
    check_given(&sim, nb, 2048);
    // Repaired, the release goes through.
    r.set_slot(15, gap);
    p.rxsync().unwrap();
    assert_eq!(sim.held(Dir::Rx, 0), 14);
    // A frame longer than a buffer is cut by the device to the room given.
    assert!(sim.dma_rx(0, &vec![0xab; 5000]));
    p.rxsync().unwrap();
    assert_eq!(r.slot(4).len, 2048);
    // A broken device completing a descriptor out of order: EIO, nothing
    // is imported.
    sim.state().bogus_rx_desc = Some(9);
    assert!(sim.dma_rx(0, &frame(A, B, 7, 60)));
    let _ = p.rxsync();
    assert_eq!(r.tail(), 5, "the bogus completion is not imported");
    check_given(&sim, nb, 2048);
}

#[test]
fn bindings_all_or_none_and_host_rings() {
    let (eth0, sim, env) = setup(2, 32);
    // One hardware ring of two: refused (the device changes mode as a whole).
    let np = env.open();
    let e = env.register_with(
        &np,
        "eth0",
        NmreqRegister {
            nr_mode: NR_REG_ONE_NIC,
            nr_ringid: 1,
            ..NmreqRegister::zeroed()
        },
    );
    assert_eq!(e.err(), Some(Errno::EINVAL));
    assert!(sim.state().registers.is_empty());
    env.nm.release(np);
    // Host rings only: the device stays in its normal mode, host rings work.
    {
        let h = env.port_with(
            "eth0",
            NmreqRegister {
                nr_mode: NR_REG_SW,
                ..NmreqRegister::zeroed()
            },
        );
        assert!(sim.state().registers.is_empty());
        let f = frame(B, A, 1, 60);
        let n = h.nifp();
        let htx = h.uring_at(h.ring_ofs(n.ni_tx_rings as usize));
        h.put(&htx, 0, &f);
        htx.set_head(1);
        htx.set_cur(1);
        h.txsync().unwrap();
        assert_eq!(*eth0.to_host.lock().unwrap(), vec![f.clone()]);
        // Both: hardware (native) and host rings side by side.
        let p = env.port("eth0");
        assert_eq!(sim.state().registers, vec![true]);
        assert_eq!(p.send(&[&f]), 1);
        assert_eq!(sim.dma_tx(0), 1);
        let na = eth0.adapter().unwrap();
        assert!(na.rx_push(2, &f), "host RX ring");
    }
    assert_eq!(sim.state().registers, vec![true, false]);
    // A failing register leaves everything as it was.
    sim.state().fail_register = true;
    let np = env.open();
    assert_eq!(
        env.register(&np, "eth0", NR_REG_ALL_NIC, 0).err(),
        Some(Errno::EIO)
    );
    env.nm.release(np);
    let p = env.port("eth0");
    assert_eq!(p.send(&[&frame(B, A, 1, 60)]), 1);
}

#[test]
fn driver_detach_while_in_netmap_mode() {
    let (_eth0, sim, env) = setup(1, 32);
    let p = env.port("eth0");
    assert_eq!(p.send(&[&frame(B, A, 1, 60)]), 1);
    env.nm.netif_gone(b"eth0");
    assert_eq!(sim.state().registers, vec![true, false]);
    assert_eq!(sim.held(Dir::Rx, 0) + sim.held(Dir::Tx, 0), 0);
    assert_eq!(p.txsync(), Err(Errno::EIO));
    assert_eq!(p.rxsync(), Err(Errno::EIO));
    p.close();
    assert_eq!(
        sim.state().registers,
        vec![true, false],
        "no call after detach"
    );
}

/// VALE attach of a native port: frames from the device's descriptors go
/// through the switch (RX interrupt), frames for the device are copied
/// into its TX slots and posted (one doorbell per delivery), frames that
/// find the device full wait for the TX interrupt; detach gives the
/// buffers back and the port is a user's again.
#[test]
fn vale_attach_of_a_native_port() {
    let (eth0, sim, env) = setup(1, 32);
    let base = env.nm.stats();
    let np = env.open();
    assert_eq!(attach(&env, &np, "vale0:eth0"), Ok(0));
    assert_eq!(sim.state().registers, vec![true], "native mode on");
    assert_eq!(sim.held(Dir::Rx, 0), 31, "RX descriptors filled");
    let na = eth0.adapter().expect("in netmap mode");
    {
        let a = env.port("vale0:a");
        // A -> B: flooded to the device, zero-copy from its TX slot.
        let f1 = frame(B, A, 1, 60);
        assert_eq!(a.send(&[&f1]), 1);
        assert_eq!(sim.dma_tx(0), 1);
        assert_eq!(sim.state().wire.pop().map(|w| w.1), Some(f1));
        // B -> A through the RX descriptors, many ring's worth: each RX
        // interrupt forwards and gives the slots back to the device.
        let mut got = Vec::new();
        for round in 0..10u32 {
            let fs: Vec<Vec<u8>> = (0..20)
                .map(|i| frame(A, B, round * 100 + i, 64 + i as usize))
                .collect();
            for f in &fs {
                assert!(sim.dma_rx(0, f), "round {round}: device has buffers");
            }
            native::rx_irq(&na, 0);
            got.extend(a.recv());
            assert_eq!(got.len() as u32, (round + 1) * 20, "round {round}");
            assert_eq!(sim.held(Dir::Rx, 0), 31, "round {round}: refilled");
            assert_eq!(
                got[got.len() - 20..],
                fs[..],
                "round {round}: in order, intact"
            );
        }
        // B was learned on the device's port: A -> B is unicast there;
        // a full device keeps frames in the switch until TX completes.
        sim.state().tx_room = Some(4);
        let fs: Vec<Vec<u8>> = (0..10).map(|i| frame(B, A, 50 + i, 60)).collect();
        let refs: Vec<&[u8]> = fs.iter().map(|f| f.as_slice()).collect();
        assert_eq!(a.send(&refs), 10);
        let mut wire = Vec::new();
        for _ in 0..10 {
            if sim.dma_tx(0) == 0 {
                break;
            }
            wire.extend(sim.state().wire.drain(..).map(|w| w.1));
            native::tx_irq(&na, 0);
        }
        assert_eq!(wire, fs, "all sent, in order, once");
        let c = env.port("vale0:c");
        assert!(c.recv().is_empty(), "unicast to the device only");
    }
    check_given(&sim, nbufs(&eth0), 2048);
    assert_eq!(detach(&env, &np, "vale0:eth0"), Ok(0));
    assert_eq!(sim.state().registers, vec![true, false]);
    assert_eq!(sim.held(Dir::Rx, 0), 0, "the device holds no buffer");
    env.nm.release(np);
    assert_eq!(env.nm.stats(), base);
    // A user can have the port again, natively.
    let p = env.port("eth0");
    assert_eq!(p.send(&[&frame(B, A, 9, 60)]), 1);
    assert_eq!(sim.dma_tx(0), 1);
}

#[test]
fn many_frames_both_directions_with_a_full_device() {
    let (eth0, sim, env) = setup(1, 64);
    let p = env.port("eth0");
    sim.state().tx_room = Some(10);
    let fs: Vec<Vec<u8>> = (0..40).map(|i| frame(B, A, i, 60)).collect();
    let refs: Vec<&[u8]> = fs.iter().map(|f| f.as_slice()).collect();
    assert_eq!(p.send(&refs), 40);
    assert_eq!(sim.held(Dir::Tx, 0), 10, "only what the device takes");
    let mut sent = 0;
    for _ in 0..10 {
        sent += sim.dma_tx(0);
        p.txsync().unwrap();
    }
    assert_eq!(sent, 40);
    let st = sim.state();
    assert_eq!(
        st.wire.iter().map(|(_, f)| f.clone()).collect::<Vec<_>>(),
        fs
    );
    drop(st);
    check_given(&sim, nbufs(&eth0), 2048);
}

#[test]
fn rx_device_smaller_than_the_ring() {
    let eth0 = HostNetif::with_native("eth0", 1, 32);
    let sim = eth0.sim().unwrap();
    sim.state().rx_room = Some(8);
    let env = Env::with_nics(std::slice::from_ref(&eth0));
    let p = env.port("eth0");
    assert_eq!(sim.held(Dir::Rx, 0), 8);
    for round in 0..20u32 {
        let fs: Vec<Vec<u8>> = (0..8).map(|i| frame(A, B, round * 10 + i, 60)).collect();
        for f in &fs {
            assert!(sim.dma_rx(0, f));
        }
        assert!(!sim.dma_rx(0, &fs[0]), "device full");
        assert_eq!(p.recv(), fs, "round {round}");
        p.rxsync().unwrap();
        assert_eq!(sim.held(Dir::Rx, 0), 8, "round {round}");
    }
    check_given(&sim, nbufs(&eth0), 2048);
}

#[test]
fn tx_full_ring_in_flight_is_reclaimed() {
    let (eth0, sim, env) = setup(1, 16);
    let p = env.port("eth0");
    for round in 0..5u32 {
        let fs: Vec<Vec<u8>> = (0..15).map(|i| frame(B, A, round * 100 + i, 60)).collect();
        let refs: Vec<&[u8]> = fs.iter().map(|f| f.as_slice()).collect();
        // A whole ring's worth in flight (hwcur catches up with hwtail).
        assert_eq!(p.send(&refs), 15, "round {round}");
        assert_eq!(p.tx_ring(0).unwrap().tail(), p.tx_ring(0).unwrap().head());
        assert_eq!(sim.dma_tx(0), 15);
        p.txsync().unwrap();
        let r = p.tx_ring(0).unwrap();
        assert_eq!(
            nm_ring_space(16, r.head(), r.tail()),
            15,
            "round {round}: all reclaimed"
        );
    }
    check_given(&sim, nbufs(&eth0), 2048);
}
