//! Ring, region and buffer tests on in-memory regions (no kernel module needed).

use super::region::Region;
use super::sys::Mapping;
use super::testing::{FakeConfig, FakeRegion};
use super::{SendError, SlotError};
use crate::consts::{NS_BUF_CHANGED, NS_MOREFRAG, SlotFlags};
use std::sync::Arc;

fn fake(slots: u32, buf_size: u32) -> FakeRegion {
    FakeRegion::new(FakeConfig {
        slots,
        buf_size,
        ..FakeConfig::default()
    })
    .unwrap()
}

#[test]
fn new_rings_have_the_kernel_initial_state() {
    let f = fake(8, 2048);
    assert_eq!(f.tx_rings(), 0..1);
    assert_eq!(f.rx_rings(), 0..1);
    let tx = f.tx_ring(0);
    assert_eq!((tx.head(), tx.cur(), tx.tail()), (0, 0, 7));
    assert_eq!(tx.space(), 7);
    assert!(!tx.tx_pending());
    assert_eq!(tx.num_slots(), 8);
    assert_eq!(tx.buf_size(), 2048);
    let rx = f.rx_ring(0);
    assert_eq!((rx.head(), rx.cur(), rx.tail()), (0, 0, 0));
    assert!(rx.is_empty());
    assert_eq!(rx.recv_count_for_test(), 0);
}

trait Count {
    fn recv_count_for_test(self) -> usize;
}

impl Count for super::RxRing<'_> {
    fn recv_count_for_test(mut self) -> usize {
        let mut n = 0;
        while self.recv().is_some() {
            n += 1;
        }
        n
    }
}

#[test]
fn send_fills_until_full_and_txsync_frees_with_wraparound() {
    let f = fake(8, 2048);
    for round in 0..5u8 {
        let mut tx = f.tx_ring(0);
        let mut sent = 0;
        while tx.send(&[round; 60]).is_ok() {
            sent += 1;
        }
        assert_eq!(sent, 7, "one slot always stays unused");
        assert_eq!(tx.send(&[0; 60]), Err(SendError::NoSpace));
        assert!(tx.tx_pending());
        assert_eq!(tx.space(), 0);
        drop(tx);
        let frames = f.txsync(0);
        assert_eq!(frames.len(), 7);
        assert!(frames.iter().all(|fr| fr == &vec![round; 60]));
        let tx = f.tx_ring(0);
        assert_eq!(tx.space(), 7);
        assert_eq!(tx.head(), (7 * (u32::from(round) + 1)) % 8);
        assert_eq!(tx.tail(), (tx.head() + 7) % 8);
    }
}

#[test]
fn long_frames_use_morefrag_chains() {
    let f = fake(8, 64);
    let frame: Vec<u8> = (0..200u8).collect();
    let mut tx = f.tx_ring(0);
    tx.send(&frame).unwrap();
    assert_eq!(tx.head(), 4, "200 bytes in 64-byte buffers = 4 slots");
    for j in 0..3 {
        assert_eq!(f.kernel_slot(true, 0, j).flags & NS_MOREFRAG, NS_MOREFRAG);
        assert_eq!(f.kernel_slot(true, 0, j).len, 64);
    }
    assert_eq!(f.kernel_slot(true, 0, 3).flags & NS_MOREFRAG, 0);
    assert_eq!(f.kernel_slot(true, 0, 3).len, 8);
    assert_eq!(tx.send(&frame), Err(SendError::NoSpace), "3 slots left");
    assert_eq!(tx.send(&vec![0; 64 * 65]), Err(SendError::TooLong));
    drop(tx);
    assert_eq!(f.txsync(0), vec![frame.clone()]);

    assert!(f.deliver(0, &frame));
    let mut rx = f.rx_ring(0);
    assert_eq!(rx.space(), 4);
    let pkt = rx.recv().unwrap();
    assert_eq!(pkt.num_frags(), 4);
    assert_eq!(pkt.len(), 200);
    let mut all = Vec::new();
    pkt.copy_to(&mut all);
    assert_eq!(all, frame);
    drop(pkt);
    assert_eq!(rx.head(), 4);
    assert!(rx.recv().is_none());
}

#[test]
fn incomplete_chain_is_not_returned() {
    let f = fake(8, 64);
    assert!(f.deliver(0, &[1; 100]));
    // Simulate a chain cut at tail: make the last fragment claim MOREFRAG.
    {
        let mut rx = f.rx_ring(0);
        assert_eq!(rx.space(), 2);
        rx.set_slot_flags(1, SlotFlags::MOREFRAG).unwrap();
        assert!(rx.recv().is_none());
        assert_eq!(rx.head(), 0);
    }
}

#[test]
fn rx_release_and_kernel_room() {
    let f = fake(4, 2048);
    assert_eq!(f.rx_room(0), 3);
    assert!(f.deliver(0, b"a"));
    assert!(f.deliver(0, b"b"));
    assert!(f.deliver(0, b"c"));
    assert!(!f.deliver(0, b"d"), "full: one slot stays free");
    {
        let mut rx = f.rx_ring(0);
        let p = rx.recv().unwrap();
        assert_eq!(p.data(), b"a");
        p.keep();
        assert_eq!(rx.head(), 0, "kept packets are not released");
        assert_eq!(rx.recv().unwrap().data(), b"a");
        assert_eq!(rx.recv().unwrap().data(), b"b");
        assert_eq!(rx.head(), 2);
    }
    f.rxsync(0);
    assert!(f.deliver(0, b"d"));
    assert!(f.deliver(0, b"e"));
    assert!(!f.deliver(0, b"f"));
    let mut rx = f.rx_ring(0);
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| rx.recv().map(|p| p.data().to_vec())).collect();
    assert_eq!(got, vec![b"c".to_vec(), b"d".to_vec(), b"e".to_vec()]);
    assert_eq!((rx.head(), rx.tail()), (1, 1), "wrapped around");
}

#[test]
fn buffers_are_only_accessible_in_the_user_window() {
    let f = fake(8, 2048);
    let mut tx = f.tx_ring(0);
    assert!(tx.owns(0) && tx.owns(6) && !tx.owns(7));
    assert_eq!(tx.buf(7).unwrap_err(), SlotError::NotOwned);
    assert_eq!(tx.buf(8).unwrap_err(), SlotError::OutOfRange);
    assert_eq!(tx.buf_mut(3).unwrap().len(), 2048);
    tx.buf_mut(0).unwrap()[..3].copy_from_slice(b"xyz");
    tx.set_len(0, 3).unwrap();
    assert_eq!(tx.data(0).unwrap(), b"xyz");
    assert_eq!(tx.set_len(0, 2049), Err(SlotError::TooLong));
    assert_eq!(tx.write(1, 2040, &[0; 9]), Err(SlotError::TooLong));
    tx.advance(1);
    assert_eq!(tx.buf(0).unwrap_err(), SlotError::NotOwned);
    assert_eq!(tx.set_len(0, 1), Err(SlotError::NotOwned));
    let rx = f.rx_ring(0);
    assert_eq!(rx.buf(0).unwrap_err(), SlotError::NotOwned, "empty RX ring");
}

#[test]
fn one_view_per_ring() {
    let f = fake(8, 2048);
    let a = f.tx_ring(0);
    assert!(f.region_for_test().tx_ring(0).is_err());
    drop(a);
    assert!(f.region_for_test().tx_ring(0).is_ok());
    assert!(f.region_for_test().rx_ring(1).is_err(), "not bound");
}

#[test]
fn one_view_per_ring_across_ports_sharing_memory() {
    let f = fake(8, 2048);
    // A second port bound to the same rings maps the same region (same mem id).
    let other = Region::parse(f.region_for_test().map.clone(), 0).unwrap();
    let a = f.tx_ring(0);
    assert!(other.tx_ring(0).is_err());
    let rx = other.rx_ring(0).unwrap();
    drop(a);
    let b = other.tx_ring(0).unwrap();
    assert!(f.region_for_test().tx_ring(0).is_err());
    assert!(f.region_for_test().rx_ring(0).is_err());
    drop((b, rx));
    assert!(f.region_for_test().tx_ring(0).is_ok());
}

#[test]
fn advance_and_cur_are_clamped() {
    let f = fake(8, 2048);
    let mut tx = f.tx_ring(0);
    assert_eq!(tx.advance(100), 7);
    assert_eq!((tx.head(), tx.cur()), (7, 7));
    assert!(!tx.set_cur(0), "beyond tail");
    drop(tx);
    f.txsync(0);
    let mut tx = f.tx_ring(0);
    assert_eq!(tx.tail(), 6);
    assert!(tx.set_cur(2));
    assert_eq!(tx.cur(), 2);
    tx.wait_for_more();
    assert_eq!(tx.cur(), 6);
}

#[test]
fn swap_buf_between_rings_of_one_region() {
    let f = fake(8, 2048);
    assert!(f.deliver(0, b"zero copy"));
    let mut rx = f.rx_ring(0);
    let mut tx = f.tx_ring(0);
    let (a, b) = (rx.slot(0).buf_idx, tx.slot(0).buf_idx);
    assert_eq!(rx.swap_buf(1, &mut tx, 0), Err(SlotError::NotOwned));
    rx.swap_buf(0, &mut tx, 0).unwrap();
    assert_eq!((rx.slot(0).buf_idx, tx.slot(0).buf_idx), (b, a));
    assert_ne!(rx.slot(0).flags & NS_BUF_CHANGED, 0);
    assert_ne!(tx.slot(0).flags & NS_BUF_CHANGED, 0);
    tx.set_len(0, 9).unwrap();
    assert_eq!(tx.data(0).unwrap(), b"zero copy");
    tx.advance(1);
    rx.advance(1);
    drop((tx, rx));
    assert_eq!(f.txsync(0), vec![b"zero copy".to_vec()]);
    assert_eq!(f.kernel_slot(true, 0, 0).flags & NS_BUF_CHANGED, 0);

    let other = fake(8, 2048);
    let mut rx = f.rx_ring(0);
    let mut otx = other.tx_ring(0);
    assert!(f.deliver(0, b"x"));
    assert_eq!(rx.swap_buf(1, &mut otx, 0), Err(SlotError::DifferentMemory));
}

#[test]
fn extra_buffers_list() {
    let f = FakeRegion::new(FakeConfig {
        extra_bufs: 3,
        ..FakeConfig::default()
    })
    .unwrap();
    assert_eq!(f.extra_buf_count(), 3);
    let e = f.take_extra_buf().unwrap();
    assert_eq!(f.extra_buf_count(), 2);
    assert_eq!(f.extra_buf(&e).unwrap().len(), 2048);
    let mut tx = f.tx_ring(0);
    let old_idx = tx.slot(2).buf_idx;
    let new_idx = e.index();
    let old = tx.replace_buf(2, e).unwrap();
    assert_eq!(old.index(), old_idx);
    assert_eq!(tx.slot(2).buf_idx, new_idx);
    assert_ne!(tx.slot(2).flags & NS_BUF_CHANGED, 0);
    drop(tx);
    f.put_extra_buf(old).unwrap();
    assert_eq!(f.extra_buf_count(), 3);
    let other = fake(8, 2048);
    let e = f.take_extra_buf().unwrap();
    let e = other.put_extra_buf(e).unwrap_err();
    f.put_extra_buf(e).unwrap();
    while let Some(e) = f.take_extra_buf() {
        // Leaked on purpose: the fake region is dropped with the test.
        drop(e);
    }
    assert_eq!(f.extra_buf_count(), 0);
}

#[test]
fn region_parse_rejects_garbage() {
    let map = Arc::new(Mapping::anonymous(4096).unwrap());
    // netmap_if announcing 1 TX ring whose ring_ofs points past the region.
    map.write(24, 1u32).unwrap();
    map.write(28, 1u32).unwrap();
    map.write(56, 1_000_000i64).unwrap();
    assert!(
        Region::parse(map.clone(), 0)
            .unwrap_err()
            .contains("outside")
    );
    map.write(56, -8i64).unwrap();
    assert!(
        Region::parse(map.clone(), 0)
            .unwrap_err()
            .contains("before")
    );
    // A ring inside the region with 0 slots.
    map.write(56, 256i64).unwrap();
    assert!(
        Region::parse(map.clone(), 0)
            .unwrap_err()
            .contains("0 slots")
    );
    // Absurd ring counts.
    map.write(24, u32::MAX).unwrap();
    assert!(Region::parse(map.clone(), 0).is_err());
    assert!(
        Region::parse(map.clone(), 4)
            .unwrap_err()
            .contains("aligned")
    );
    assert!(Region::parse(map, 8192).is_err());
}

#[test]
fn ring_window_arithmetic() {
    use super::ring::{in_window, ring_add};
    assert!(in_window(8, 6, 2, 7) && in_window(8, 6, 2, 0) && in_window(8, 6, 2, 1));
    assert!(!in_window(8, 6, 2, 2) && !in_window(8, 6, 2, 5));
    assert!(!in_window(8, 3, 3, 3), "empty window");
    assert!(!in_window(8, 9, 2, 0), "garbage head");
    assert!(!in_window(8, 0, 7, 8));
    assert_eq!(ring_add(8, 7, 1), 0);
    assert_eq!(ring_add(8, 5, 8), 5);
    assert_eq!(ring_add(0, 5, 8), 0);
}

impl FakeRegion {
    fn region_for_test(&self) -> &Region {
        self.region_ref()
    }
}

#[test]
fn open_errors_without_the_kernel_module() {
    use super::{Error, Port};
    match Port::open("eth0") {
        Err(Error::Spec { error, .. }) => assert_eq!(error.errno(), crate::consts::errno::EINVAL),
        other => panic!("{other:?}"),
    }
    // The extmem file is mapped before the device is opened.
    let e = Port::open("netmap:x@extmem:file=/nonexistent/x").unwrap_err();
    assert_eq!(e.op(), Some(super::Op::Mmap), "{e}");
    assert!(e.to_string().contains("/nonexistent/x"), "{e}");
    if !std::path::Path::new(super::DEVICE_PATH).exists() {
        let e = Port::open("vale0:a").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot open /dev/netmap: is the netmap module loaded?"
        );
        let e = super::Netmap::open().unwrap_err();
        assert_eq!(e.op(), Some(super::Op::Open));
    }
}

#[test]
fn builder_overrides_the_spec() {
    use super::Port;
    use crate::consts::{RegFlags, RegMode};
    let (name, body) = Port::builder("netmap:eth0-2/x@conf:slots=512,rings=3")
        .tx_slots(1024)
        .extra_bufs(7)
        .flags(RegFlags::ACCEPT_VNET_HDR)
        .request()
        .unwrap();
    assert_eq!(name, "eth0");
    assert_eq!((body.nr_tx_slots, body.nr_rx_slots), (1024, 512));
    assert_eq!((body.nr_tx_rings, body.nr_rx_rings), (3, 3));
    assert_eq!(body.nr_mode, RegMode::OneNic.as_raw());
    assert_eq!(body.nr_ringid, 2);
    assert_eq!(body.nr_extra_bufs, 7);
    assert_eq!(
        body.nr_flags,
        (RegFlags::EXCLUSIVE | RegFlags::ACCEPT_VNET_HDR).bits()
    );
    let (_, body) = Port::builder("vale0:p@2")
        .mode(RegMode::OneNic, 1)
        .request()
        .unwrap();
    assert_eq!((body.nr_mode, body.nr_ringid, body.nr_mem_id), (4, 1, 2));
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<super::Port>();
    check::<super::Netmap>();
    check::<super::Error>();
}

/// Sets the ring's `offset_mask` as the kernel does at REGISTER with the
/// OFFSETS option (before any view of the ring exists).
fn set_offset_mask(f: &FakeRegion, tx: bool, mask: u64) {
    let r = f.region_for_test();
    let d = if tx { &r.tx } else { &r.rx };
    let l = d.rings[0].unwrap();
    r.map.write(l.off + 56, mask).unwrap();
}

fn kernel_bytes(f: &FakeRegion, tx: bool, j: u32, start: usize, len: usize) -> Vec<u8> {
    let r = f.region_for_test();
    let d = if tx { &r.tx } else { &r.rx };
    let l = d.rings[0].unwrap();
    let s = f.kernel_slot(tx, 0, j);
    r.map
        .bytes(l.buf_off(s.buf_idx).unwrap() + start, len)
        .unwrap()
        .to_vec()
}

#[test]
fn offsets_move_the_data_of_each_slot() {
    let f = fake(8, 64);
    set_offset_mask(&f, true, 0xff);
    let mut tx = f.tx_ring(0);
    assert_eq!(tx.data_offset(0), 0);
    // The offset lives in the masked bits of ptr; the other bits are kept.
    tx.set_ptr(0, 0xabc0_0000).unwrap();
    tx.set_data_offset(0, 20).unwrap();
    assert_eq!(tx.slot(0).ptr, 0xabc0_0014);
    assert_eq!(tx.data_offset(0), 20);
    assert_eq!(tx.set_data_offset(0, 65), Err(SlotError::TooLong));
    // write, set_len and data are relative to the offset.
    tx.write(0, 0, b"hello").unwrap();
    assert_eq!(tx.data(0).unwrap(), b"hello");
    assert_eq!(tx.slot(0).len, 5);
    assert_eq!(tx.set_len(0, 45), Err(SlotError::TooLong));
    tx.set_len(0, 44).unwrap();
    assert_eq!(tx.write(0, 40, b"12345"), Err(SlotError::TooLong));
    assert_eq!(kernel_bytes(&f, true, 0, 20, 5), b"hello");
    // send: every slot holds what fits behind its own offset (64 - 40 = 24
    // bytes here), so 60 bytes take 3 slots.
    for j in 0..3 {
        tx.set_data_offset(j, 40).unwrap();
    }
    let frame: Vec<u8> = (0..60u8).collect();
    tx.send(&frame).unwrap();
    assert_eq!(tx.head(), 3);
    for (j, want) in [(0, 0..24u8), (1, 24..48), (2, 48..60)] {
        let s = f.kernel_slot(true, 0, j);
        assert_eq!(usize::from(s.len), want.len());
        assert_eq!(s.flags & NS_MOREFRAG != 0, j < 2);
        assert_eq!(
            kernel_bytes(&f, true, j, 40, want.len()),
            want.collect::<Vec<_>>()
        );
    }
    // A slot whose offset leaves no room never takes data.
    for j in 3..7 {
        tx.set_data_offset(j, 64).unwrap();
    }
    assert_eq!(tx.send(b"x"), Err(SendError::NoSpace));
    assert_eq!(tx.head(), 3);
    // Slot windows (per-frame loops) honour the offsets the same way.
    {
        let mut w = tx.slots(1);
        let mut s = w.next_slot().unwrap();
        assert_eq!(s.index(), 3);
        s.set_data_offset(8).unwrap();
        assert_eq!(s.data_offset(), 8);
        assert_eq!(s.set_data_offset(65), Err(SlotError::TooLong));
        assert_eq!(s.write(54, b"xyz"), Err(SlotError::TooLong));
        s.write(2, b"abc").unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(&s.data().unwrap()[2..], b"abc");
        assert_eq!(s.set_len(57), Err(SlotError::TooLong));
        assert_eq!(w.advance(), 1);
    }
    assert_eq!(kernel_bytes(&f, true, 3, 10, 3), b"abc");
}

#[test]
fn offsets_on_rx_show_the_data_behind_the_offset() {
    let f = fake(8, 64);
    set_offset_mask(&f, false, 0x3f);
    assert!(f.deliver(0, &[7; 30]));
    let r = f.region_for_test();
    let l = r.rx.rings[0].unwrap();
    // The kernel's slot says the data starts 16 bytes in (len 14).
    let mut s = f.kernel_slot(false, 0, 0);
    s.ptr = 16;
    s.len = 14;
    r.map.write(l.off + 256, s).unwrap();
    let rx = f.rx_ring(0);
    assert_eq!(rx.data_offset(0), 16);
    assert_eq!(rx.data(0).unwrap(), &[7; 14]);
    // len beyond the buffer behind the offset is clamped.
    drop(rx);
    s.len = 60;
    r.map.write(l.off + 256, s).unwrap();
    assert_eq!(f.rx_ring(0).data(0).unwrap().len(), 48);
}

#[test]
fn slot_windows_hand_out_owned_slots_once() {
    let f = fake(8, 64);
    let mut tx = f.tx_ring(0);
    // Capped by `max`...
    let mut w = tx.slots(3);
    assert_eq!((w.remaining(), w.taken()), (3, 0));
    let mut s = w.next_slot().unwrap();
    assert_eq!(s.index(), 0);
    s.write(0, b"abc").unwrap();
    assert_eq!((s.len(), s.data().unwrap()), (3, &b"abc"[..]));
    assert_eq!(s.set_len(65), Err(SlotError::TooLong));
    assert_eq!(s.write(60, &[0; 5]), Err(SlotError::TooLong));
    assert_eq!(s.len(), 3, "refused writes change nothing");
    s.set_flags(SlotFlags::REPORT);
    let mut s = w.next_slot().unwrap();
    assert_eq!(s.index(), 1);
    s.set_len(0).unwrap();
    assert!(s.is_empty());
    assert_eq!(w.taken(), 2);
    assert_eq!(w.advance(), 2, "only the slots handed out");
    assert_eq!((tx.head(), tx.cur()), (2, 2));
    // ... and by the free space: never past tail.
    {
        let mut w = tx.slots(100);
        assert_eq!(w.remaining(), 5);
        let mut seen = Vec::new();
        while let Some(s) = w.next_slot() {
            seen.push(s.index());
        }
        assert_eq!(seen, [2, 3, 4, 5, 6]);
        assert!(w.next_slot().is_none());
    }
    assert_eq!(
        tx.head(),
        2,
        "a window dropped without advance moves nothing"
    );
    drop(tx);
    assert_eq!(f.txsync(0), vec![b"abc".to_vec(), Vec::new()]);
    assert_ne!(
        f.kernel_slot(true, 0, 0).flags & SlotFlags::REPORT.bits(),
        0
    );

    // RX: the window is what the kernel delivered.
    let mut rx = f.rx_ring(0);
    assert!(rx.slots(8).next_slot().is_none(), "empty RX ring");
    drop(rx);
    assert!(f.deliver(0, b"one"));
    assert!(f.deliver(0, b"two!"));
    let mut rx = f.rx_ring(0);
    let mut w = rx.slots(8);
    let mut got = Vec::new();
    while let Some(s) = w.next_slot() {
        got.push(s.data().unwrap().to_vec());
    }
    assert_eq!(got, [b"one".to_vec(), b"two!".to_vec()]);
    assert_eq!(w.advance(), 2);
    drop(rx);
    f.rxsync(0);
    assert_eq!(f.rx_room(0), 7, "released to the kernel");
}

#[test]
fn slot_windows_check_what_the_kernel_could_corrupt() {
    let f = fake(8, 64);
    let map = f.region_for_test().map.clone();
    let l = f.region_for_test().tx.rings[0].unwrap();
    // A buffer index outside the region: the slot's fields stay usable, its
    // buffer does not.
    map.write(l.off + 256 + 16, u32::MAX).unwrap();
    let mut tx = f.tx_ring(0);
    let mut w = tx.slots(2);
    let mut s = w.next_slot().unwrap();
    assert!(s.buf_mut().is_ok());
    let mut s = w.next_slot().unwrap();
    assert_eq!(s.buf_idx(), u32::MAX);
    assert_eq!(s.buf().unwrap_err(), SlotError::BadBuffer);
    assert_eq!(s.buf_mut().unwrap_err(), SlotError::BadBuffer);
    assert_eq!(s.data().unwrap_err(), SlotError::BadBuffer);
    assert_eq!(s.write(0, b"x"), Err(SlotError::BadBuffer));
    s.set_len(1).unwrap();
    drop(tx);
    // Ring indexes outside the ring: no slot is handed out.
    for (field, v) in [(20, 8u32), (28, u32::MAX)] {
        let saved: u32 = map.read(l.off + field).unwrap();
        map.write(l.off + field, v).unwrap();
        assert_eq!(f.tx_ring(0).slots(8).remaining(), 0, "field {field}");
        map.write(l.off + field, saved).unwrap();
    }
    assert_eq!(f.tx_ring(0).slots(8).remaining(), 7);
}
