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
