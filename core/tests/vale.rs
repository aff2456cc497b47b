//! VALE switch behaviour through the request/sync entry points.

mod common;
use common::*;
use netmap_uapi::*;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];
const C: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc];
const BCAST: [u8; 6] = [0xff; 6];

#[test]
fn register_layout_matches_spec_example() {
    let env = Env::new();
    let a = env.port("vale0:a");
    assert_eq!(a.reg.nr_memsize, 42369024);
    assert_eq!(a.reg.nr_offset, 0);
    assert_eq!((a.reg.nr_tx_rings, a.reg.nr_rx_rings), (1, 1));
    assert_eq!((a.reg.nr_tx_slots, a.reg.nr_rx_slots), (1024, 1024));
    assert_eq!((a.reg.nr_host_tx_rings, a.reg.nr_host_rx_rings), (0, 0));
    assert_ne!(a.reg.nr_mem_id, 1);
    let n = a.nifp();
    assert_eq!(&n.ni_name[..8], b"vale0:a\0");
    assert_eq!(n.ni_flags & NI_PRIV_MEM, NI_PRIV_MEM);
    assert_eq!((n.ni_host_tx_rings, n.ni_host_rx_rings), (1, 1));
    assert_eq!(a.ring_ofs(0), 32768);
    assert_eq!(a.ring_ofs(1), 0);
    assert_eq!(a.ring_ofs(2), 12288);
    assert_eq!(a.ring_ofs(3), 0);
    let tx = a.tx_ring(0).unwrap();
    let rx = a.rx_ring(0).unwrap();
    assert_eq!(tx.hdr().buf_ofs, 389120);
    assert_eq!(rx.hdr().buf_ofs, 409600);
    assert_eq!((tx.hdr().dir, rx.hdr().dir), (1, 0));
    assert_eq!((tx.head(), tx.cur(), tx.tail()), (0, 0, 1023));
    assert_eq!((rx.head(), rx.cur(), rx.tail()), (0, 0, 0));
    assert_eq!(rx.slot(0).buf_idx, 2);
    assert_eq!(rx.slot(1023).buf_idx, 1025);
    assert_eq!(tx.slot(0).buf_idx, 1026);
    assert_eq!(tx.slot(0).len, 2048);
}

#[test]
fn unicast_learning_and_flooding() {
    let env = Env::new();
    let a = env.port("vale0:a");
    let b = env.port("vale0:b");
    let c = env.port("vale0:c");
    // Unknown destination: flooded to b and c, never reflected to a.
    let f1 = frame(B, A, 1, 60);
    assert_eq!(a.send(&[&f1]), 1);
    assert_eq!(b.recv(), vec![f1.clone()]);
    assert_eq!(c.recv(), vec![f1.clone()]);
    assert!(a.recv().is_empty());
    // b answers a: a was learned, only a gets it.
    let f2 = frame(A, B, 2, 60);
    b.send(&[&f2]);
    assert_eq!(a.recv(), vec![f2.clone()]);
    assert!(c.recv().is_empty());
    // Now b is learned too.
    let f3 = frame(B, A, 3, 100);
    a.send(&[&f3]);
    assert_eq!(b.recv(), vec![f3]);
    assert!(c.recv().is_empty());
    // Broadcast goes everywhere but the source.
    let f4 = frame(BCAST, C, 4, 64);
    c.send(&[&f4]);
    assert_eq!(a.recv(), vec![f4.clone()]);
    assert_eq!(b.recv(), vec![f4]);
    assert!(c.recv().is_empty());
}

#[test]
fn tx_ring_is_free_after_sync_and_rx_drops_when_full() {
    let env = Env::new();
    let a = env.port("vale1:a");
    let b = env.port("vale1:b");
    let frames: Vec<Vec<u8>> = (0..2000).map(|i| frame(BCAST, A, i, 60)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    let n1 = a.send(&refs[..1000]);
    assert_eq!(n1, 1000);
    let tx = a.tx_ring(0).unwrap();
    assert_eq!(tx.tail(), prev(tx.head(), 1024));
    let n2 = a.send(&refs[1000..1500]);
    assert_eq!(n2, 500);
    // b's RX ring holds at most 1023 frames: the rest was dropped.
    let got = b.recv();
    assert_eq!(got.len(), 1023);
    assert_eq!(got[0], frames[0]);
    assert_eq!(got[1022], frames[1022]);
}

#[test]
fn ports_and_switch_go_away_with_last_user() {
    let env = Env::new();
    let base = env.nm.stats();
    {
        let _a = env.port("vale2:a");
        let _b = env.port("vale2:b");
        let st = env.nm.stats();
        assert_eq!(st.switches, base.switches + 1);
        assert_eq!(st.private_mems, base.private_mems + 2);
    }
    let a = env.port("vale2:a");
    assert_eq!(env.nm.stats().switches, base.switches + 1);
    a.close();
    let st = env.nm.stats();
    assert_eq!(st.switches, base.switches);
    assert_eq!(st.private_mems, base.private_mems);
}

#[test]
fn indirect_slots_read_user_memory() {
    let env = Env::new();
    let a = env.port("vale5:a");
    let b = env.port("vale5:b");
    let f = frame(B, A, 42, 200);
    let addr = env.p.user_map(&f);
    let tx = a.tx_ring(0).unwrap();
    let h = tx.head();
    let s = tx.slot(h);
    tx.set_slot(
        h,
        NetmapSlot {
            len: f.len() as u16,
            flags: NS_INDIRECT,
            ptr: addr,
            ..s
        },
    );
    // A second slot with a pointer that faults: dropped.
    let h2 = next(h, tx.num_slots());
    let s2 = tx.slot(h2);
    tx.set_slot(
        h2,
        NetmapSlot {
            len: 60,
            flags: NS_INDIRECT,
            ptr: 0xdead_0000,
            ..s2
        },
    );
    let h3 = next(h2, tx.num_slots());
    tx.set_head(h3);
    tx.set_cur(h3);
    a.txsync().unwrap();
    assert_eq!(b.recv(), vec![f]);
}

/// Put raw slots (`(frame, more)`: NS_MOREFRAG when `more`) in TX ring `ring`
/// of `p` and sync once.
fn send_slots(p: &Port<'_>, ring: usize, slots: &[(&[u8], bool)]) {
    let r = p.tx_ring(ring).expect("tx ring");
    let mut head = r.head();
    for (f, more) in slots {
        let s = r.slot(head);
        let b = p.buf(&r, s.buf_idx);
        // SAFETY: the buffer holds nr_buf_size >= frame bytes.
        unsafe { core::ptr::copy_nonoverlapping(f.as_ptr(), b, f.len()) };
        let flags = if *more { NS_MOREFRAG } else { 0 };
        r.set_slot(
            head,
            NetmapSlot {
                len: f.len() as u16,
                flags,
                ..s
            },
        );
        head = next(head, r.num_slots());
    }
    r.set_head(head);
    r.set_cur(head);
    p.txsync().unwrap();
}

/// Slots of RX ring `ring` of `p` after an rxsync: (bytes, flags).
fn recv_slots(p: &Port<'_>, ring: usize) -> Vec<(Vec<u8>, u16)> {
    p.rxsync().unwrap();
    let r = p.rx_ring(ring).expect("rx ring");
    let mut out = Vec::new();
    let mut h = r.head();
    while h != r.tail() {
        let s = r.slot(h);
        let b = p.buf(&r, s.buf_idx);
        let mut v = vec![0u8; s.len as usize];
        // SAFETY: len <= buffer size (kernel-written).
        unsafe { core::ptr::copy_nonoverlapping(b, v.as_mut_ptr(), v.len()) };
        out.push((v, s.flags));
        h = next(h, r.num_slots());
    }
    r.set_head(h);
    r.set_cur(h);
    out
}

/// Unicast to two ports and flooding interleaved in one sync: each
/// receiver gets exactly its frames, in the order they were sent, byte for
/// byte, across lengths around the word-copy limit and across batches.
#[test]
fn interleaved_unicast_and_flood_keep_order() {
    for batch in [1024, 7, 1] {
        let env = Env::new();
        env.nm
            .params()
            .bridge_batch
            .store(batch, std::sync::atomic::Ordering::Relaxed);
        let a = env.port("vale3:a");
        let b = env.port("vale3:b");
        let c = env.port("vale3:c");
        // Learn b and c.
        b.send(&[&frame(A, B, 0, 60)]);
        c.send(&[&frame(A, C, 0, 60)]);
        assert_eq!(a.recv().len(), 2);
        b.recv();
        c.recv();
        let frames: Vec<(Vec<u8>, [u8; 6])> = (0..600u32)
            .map(|i| {
                let dst = [B, BCAST, C, B, C, C][i as usize % 6];
                let mut f = frame(dst, A, i, 14 + (i as usize * 7) % 300);
                for (k, x) in f.iter_mut().enumerate().skip(18) {
                    *x = (i as usize + k) as u8;
                }
                (f, dst)
            })
            .collect();
        for chunk in frames.chunks(300) {
            let refs: Vec<&[u8]> = chunk.iter().map(|(f, _)| f.as_slice()).collect();
            assert_eq!(a.send(&refs), refs.len());
            let want = |not: [u8; 6]| -> Vec<Vec<u8>> {
                chunk
                    .iter()
                    .filter(|(_, d)| *d != not)
                    .map(|(f, _)| f.clone())
                    .collect()
            };
            assert!(b.recv() == want(C), "b, batch {batch}");
            assert!(c.recv() == want(B), "c, batch {batch}");
            assert!(a.recv().is_empty());
        }
    }
}

/// A station that moves to another port is followed: the next packets to
/// it go to the new port (the per-call address cache is no stale table).
#[test]
fn a_moved_station_is_followed() {
    let env = Env::new();
    let a = env.port("vale5:a");
    let b = env.port("vale5:b");
    let c = env.port("vale5:c");
    b.send(&[&frame(A, B, 0, 60)]);
    a.recv();
    c.recv();
    a.send(&[&frame(B, A, 1, 60), &frame(B, A, 2, 60)]);
    assert_eq!(b.recv().len(), 2);
    assert!(c.recv().is_empty());
    // B now talks from c's port.
    c.send(&[&frame(A, B, 3, 60)]);
    assert_eq!(a.recv().len(), 1);
    a.send(&[&frame(B, A, 4, 60), &frame(B, A, 5, 60)]);
    assert!(b.recv().is_empty());
    assert_eq!(c.recv().len(), 2);
}

/// Chains of several slots between single-slot packets, to two
/// destinations in one sync: chains arrive whole with the fragment count
/// in every slot and NS_MOREFRAG on all but the last.
#[test]
fn chains_among_single_slots_arrive_whole() {
    let env = Env::new();
    let a = env.port("vale6:a");
    let b = env.port("vale6:b");
    let c = env.port("vale6:c");
    b.send(&[&frame(A, B, 0, 60)]);
    c.send(&[&frame(A, C, 0, 60)]);
    a.recv();
    b.recv();
    c.recv();
    let head_b = frame(B, A, 1, 100);
    let head_f = frame(BCAST, A, 2, 80);
    let tail = vec![0x5a; 33];
    let single_c = frame(C, A, 3, 61);
    send_slots(
        &a,
        0,
        &[
            (&head_b, true),
            (&tail, true),
            (&tail, false),
            (&single_c, false),
            (&head_f, true),
            (&tail, false),
        ],
    );
    let f3 = 3 << 8;
    let f2 = 2 << 8;
    let f1 = 1 << 8;
    let m = NS_MOREFRAG;
    assert_eq!(
        recv_slots(&b, 0),
        vec![
            (head_b.clone(), f3 | m),
            (tail.clone(), f3 | m),
            (tail.clone(), f3),
            (head_f.clone(), f2 | m),
            (tail.clone(), f2),
        ]
    );
    assert_eq!(
        recv_slots(&c, 0),
        vec![(single_c, f1), (head_f, f2 | m), (tail, f2)]
    );
}

/// Unicast goes to the destination ring numbered like the sender's ring,
/// flooding always to ring 0 (§8.3), also in one batch.
#[test]
fn unicast_to_the_same_ring_flooding_to_ring_zero() {
    let env = Env::new();
    let two = |name: &str| {
        env.port_with(
            name,
            NmreqRegister {
                nr_mode: NR_REG_ALL_NIC,
                nr_tx_rings: 2,
                nr_rx_rings: 2,
                ..NmreqRegister::zeroed()
            },
        )
    };
    let a = two("vale7:a");
    let b = two("vale7:b");
    send_slots(&b, 0, &[(&frame(A, B, 0, 60), false)]);
    assert_eq!(recv_slots(&a, 0).len(), 1);
    let u1 = frame(B, A, 1, 60);
    let f2 = frame(BCAST, A, 2, 60);
    let u3 = frame(B, A, 3, 60);
    send_slots(&a, 1, &[(&u1, false), (&f2, false), (&u3, false)]);
    let r1: Vec<Vec<u8>> = recv_slots(&b, 1).into_iter().map(|(f, _)| f).collect();
    let r0: Vec<Vec<u8>> = recv_slots(&b, 0).into_iter().map(|(f, _)| f).collect();
    assert_eq!(r1, vec![u1, u3]);
    assert_eq!(r0, vec![f2]);
}
