//! Property tests of ring validation (§6.3, §6.4): a hostile user writes
//! arbitrary head/cur/tail and slot contents into the rings of VALE ports
//! and pipes, interleaved with syncs and polls. Nothing may panic or hang,
//! the kernel's own ring state stays in range, a reinit repairs what it
//! must, the other ports of the switch keep delivering intact frames, and
//! closing everything gives every resource back.
//!
//! Plus unit-level properties of the prologue functions themselves.

mod common;
use common::*;
use netmap_core::host::HostPlatform;
use netmap_core::kring::{self, Dir, KringOwned, ring_dist};
use netmap_core::shm::{RingPtr, Slot};
use netmap_uapi::*;
use proptest::prelude::*;
use std::ptr::NonNull;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const BCAST: [u8; 6] = [0xff; 6];

/// Slots of the hostile rings: small, so that random indexes often hit the
/// interesting neighbourhood of head/tail.
const HSLOTS: u32 = 8;

// ----------------------------------------------------------------------
// Whole-system property: hostile user next to clean ports.

/// The hostile rings: TX/RX of VALE port h, of pipe master m (off h) and of
/// pipe slave s.
const NRINGS: usize = 6;

#[derive(Clone, Debug)]
enum Op {
    /// Overwrite head, cur and tail of ring `r`.
    Header {
        r: usize,
        head: u32,
        cur: u32,
        tail: u32,
    },
    /// Overwrite only head and cur (tail left for the kernel to restore).
    HeadCur { r: usize, head: u32, cur: u32 },
    /// Overwrite slot `i` (mod num_slots) of ring `r`.
    Slot {
        r: usize,
        i: u32,
        buf_idx: u32,
        len: u16,
        flags: u16,
    },
    /// Overwrite the ring flags.
    Flags { r: usize, v: u32 },
    /// A plausible user move: head and cur `k` slots further (mod n), in
    /// range but not necessarily within the window.
    Advance { r: usize, k: u32, cur_extra: u32 },
    /// NIOCTXSYNC (tx) or NIOCRXSYNC on hostile port `p` (0 = h, 1 = m, 2 = s).
    Sync { p: usize, tx: bool },
    /// poll() on hostile port `p`.
    Poll { p: usize, events: u32 },
    /// The clean pair and the clean pipe must deliver a fresh frame intact.
    Clean,
}

/// An index: mostly near the ring, sometimes anything.
fn idx() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => 0..HSLOTS + 2,
        1 => Just(u32::MAX),
        1 => any::<u32>(),
    ]
}

fn buf_idx() -> impl Strategy<Value = u32> {
    prop_oneof![
        2 => 0u32..4,
        2 => 2u32..10_000,
        1 => Just(u32::MAX),
        1 => any::<u32>(),
    ]
}

fn slot_len() -> impl Strategy<Value = u16> {
    prop_oneof![3 => 0u16..2100, 1 => any::<u16>()]
}

fn slot_flags() -> impl Strategy<Value = u16> {
    prop_oneof![
        2 => Just(0u16),
        1 => Just(NS_MOREFRAG),
        1 => Just(NS_BUF_CHANGED),
        1 => any::<u16>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..NRINGS, idx(), idx(), idx()).prop_map(|(r, head, cur, tail)| Op::Header { r, head, cur, tail }),
        3 => (0..NRINGS, idx(), idx()).prop_map(|(r, head, cur)| Op::HeadCur { r, head, cur }),
        3 => (0..NRINGS, 0..HSLOTS, buf_idx(), slot_len(), slot_flags())
            .prop_map(|(r, i, buf_idx, len, flags)| Op::Slot { r, i, buf_idx, len, flags }),
        1 => (0..NRINGS, any::<u32>()).prop_map(|(r, v)| Op::Flags { r, v }),
        4 => (0..NRINGS, 0..HSLOTS, 0..3u32).prop_map(|(r, k, cur_extra)| Op::Advance { r, k, cur_extra }),
        5 => (0..3usize, any::<bool>()).prop_map(|(p, tx)| Op::Sync { p, tx }),
        2 => (0..3usize, prop_oneof![Just(POLLIN), Just(POLLOUT), Just(POLLIN | POLLOUT), Just(0u32)])
            .prop_map(|(p, events)| Op::Poll { p, events }),
        1 => Just(Op::Clean),
    ]
}

/// The kernel side of every ring of a file: hwcur/hwtail always in range.
fn check_kernel_state(p: &Port<'_>, what: &str) -> Result<(), TestCaseError> {
    let b = p.np().binding().expect("bound");
    for d in Dir::BOTH {
        for i in b.ranges[d.idx()].iter() {
            let k = b.na.kring(d, i).expect("kring");
            let n = k.num_slots;
            let (c, t) = (
                k.nr_hwcur.load(std::sync::atomic::Ordering::Acquire),
                k.nr_hwtail.load(std::sync::atomic::Ordering::Acquire),
            );
            prop_assert!(
                c < n && t < n,
                "{what} {d:?}{i}: hwcur {c} hwtail {t} of {n}"
            );
        }
    }
    Ok(())
}

/// After a sync of ring `r`: tail in range; if the user's head/cur were
/// out of range the reinit put them back in range and repaired every slot.
fn check_after_sync(
    p: &Port<'_>,
    r: &URing,
    was_bad: bool,
    what: &str,
) -> Result<(), TestCaseError> {
    let n = r.num_slots();
    prop_assert!(r.tail() < n, "{what}: tail {} >= {n} after sync", r.tail());
    if was_bad {
        prop_assert!(
            r.head() < n && r.cur() < n,
            "{what}: head {} cur {} after reinit",
            r.head(),
            r.cur()
        );
        let mem = &p.np().binding().expect("bound").na.mem;
        let (nbufs, bsz) = (mem.buf_count(), mem.buf_size());
        for i in 0..n {
            let s = r.slot(i);
            prop_assert!(
                s.buf_idx == 0 || (2..nbufs).contains(&s.buf_idx),
                "{what}: slot {i} buf_idx {} after reinit",
                s.buf_idx
            );
            prop_assert!(
                u32::from(s.len) <= bsz,
                "{what}: slot {i} len {} after reinit",
                s.len
            );
        }
    }
    Ok(())
}

fn run_ops(ops: &[Op], nonce: &mut u32) -> Result<(), TestCaseError> {
    let env = Env::new();
    let base = env.nm.stats();
    {
        let small = NmreqRegister {
            nr_mode: NR_REG_ALL_NIC,
            nr_tx_slots: HSLOTS,
            nr_rx_slots: HSLOTS,
            ..NmreqRegister::zeroed()
        };
        let clean = NmreqRegister {
            nr_mode: NR_REG_ALL_NIC,
            nr_tx_slots: 64,
            nr_rx_slots: 64,
            ..NmreqRegister::zeroed()
        };
        let a = env.port_with("valer:a", clean);
        let b = env.port_with("valer:b", clean);
        let h = env.port_with("valer:h", small);
        let m = env.port("valer:h{p");
        let s = env.port("valer:h}p");
        let cm = env.port("valer:a{c");
        let cs = env.port("valer:a}c");
        let ports = [&h, &m, &s];
        let rings: Vec<URing> = ports
            .iter()
            .flat_map(|p| [p.tx_ring(0).expect("tx"), p.rx_ring(0).expect("rx")])
            .collect();
        for r in &rings {
            prop_assert_eq!(r.num_slots(), HSLOTS);
        }
        for op in ops {
            match *op {
                Op::Header { r, head, cur, tail } => {
                    rings[r].set_head(head);
                    rings[r].set_cur(cur);
                    rings[r].set_tail(tail);
                }
                Op::HeadCur { r, head, cur } => {
                    rings[r].set_head(head);
                    rings[r].set_cur(cur);
                }
                Op::Slot {
                    r,
                    i,
                    buf_idx,
                    len,
                    flags,
                } => {
                    let ring = &rings[r];
                    let old = ring.slot(i % ring.num_slots());
                    ring.set_slot(
                        i % ring.num_slots(),
                        NetmapSlot {
                            buf_idx,
                            len,
                            flags,
                            ..old
                        },
                    );
                }
                Op::Flags { r, v } => rings[r].set_flags(v),
                Op::Advance { r, k, cur_extra } => {
                    let ring = &rings[r];
                    let n = ring.num_slots();
                    let h = (ring.head() % n + k) % n;
                    ring.set_head(h);
                    ring.set_cur((h + cur_extra) % n);
                }
                Op::Sync { p, tx } => {
                    let ring = &rings[2 * p + usize::from(!tx)];
                    let n = ring.num_slots();
                    let bad = ring.head() >= n || ring.cur() >= n;
                    let res = if tx {
                        ports[p].txsync()
                    } else {
                        ports[p].rxsync()
                    };
                    prop_assert!(res.is_ok(), "sync failed: {res:?}");
                    check_after_sync(
                        ports[p],
                        ring,
                        bad,
                        &format!("port {p} {}", if tx { "tx" } else { "rx" }),
                    )?;
                }
                Op::Poll { p, events } => {
                    let rx = &rings[2 * p + 1];
                    let n = rx.num_slots();
                    let bad = rx.head() >= n || rx.cur() >= n;
                    let rev = env.nm.poll(ports[p].np(), events, &mut |_| {});
                    prop_assert!(rev & !(POLLIN | POLLOUT | POLLERR) == 0, "revents {rev:#x}");
                    if events & POLLIN != 0 {
                        check_after_sync(ports[p], rx, bad, &format!("port {p} poll rx"))?;
                        if bad {
                            prop_assert!(rev & POLLERR != 0, "reinit without POLLERR");
                        }
                    }
                }
                Op::Clean => clean_check(&a, &b, &cm, &cs, nonce)?,
            }
            for (k, p) in ports.iter().enumerate() {
                check_kernel_state(p, &format!("after {op:?}: port {k}"))?;
            }
        }
        // Whatever happened, the neighbours still work...
        clean_check(&a, &b, &cm, &cs, nonce)?;
        // ...and the hostile files can still sync and poll without trouble.
        for p in ports {
            prop_assert!(p.txsync().is_ok() && p.rxsync().is_ok());
            env.nm.poll(p.np(), POLLIN | POLLOUT, &mut |_| {});
            check_kernel_state(p, "final")?;
        }
        for r in &rings {
            prop_assert!(
                r.tail() < r.num_slots() || r.hdr().dir == 1,
                "final tail {}",
                r.tail()
            );
        }
    }
    prop_assert_eq!(env.nm.stats(), base, "resources not returned");
    Ok(())
}

/// a → b over the switch (broadcast, so learning cannot divert it) and
/// cm → cs over a clean pipe: each must deliver one fresh frame intact.
fn clean_check(
    a: &Port<'_>,
    b: &Port<'_>,
    cm: &Port<'_>,
    cs: &Port<'_>,
    nonce: &mut u32,
) -> Result<(), TestCaseError> {
    *nonce += 1;
    // Drain whatever the hostile port flooded to b.
    b.recv();
    a.recv();
    let f = frame(BCAST, A, *nonce, 60 + (*nonce as usize % 1400));
    prop_assert_eq!(a.send(&[&f]), 1);
    let got = b.recv();
    prop_assert_eq!(got, vec![f.clone()], "clean VALE pair");
    prop_assert_eq!(cm.send(&[&f]), 1);
    prop_assert_eq!(cs.recv(), vec![f], "clean pipe");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn hostile_rings_never_break_the_kernel(ops in proptest::collection::vec(op(), 1..60)) {
        let mut nonce = 0;
        run_ops(&ops, &mut nonce)?;
    }
}

/// Regression: with a wrapped window (rtail < rhead), head = cur >= n used
/// to pass the TX prologue; the VALE txsync then looped forever walking
/// from hwcur towards an index it never reaches.
#[test]
fn out_of_range_head_with_wrapped_window() {
    let env = Env::new();
    let base = env.nm.stats();
    {
        let reg = NmreqRegister {
            nr_mode: NR_REG_ALL_NIC,
            nr_tx_slots: HSLOTS,
            nr_rx_slots: HSLOTS,
            ..NmreqRegister::zeroed()
        };
        let h = env.port_with("valew:h", reg);
        let b = env.port_with("valew:b", reg);
        let pm = env.port("valew:h{w");
        let ps = env.port("valew:h}w");
        for (p, peer) in [(&h, &b), (&pm, &ps)] {
            let f = frame(BCAST, A, 1, 60);
            let round = |k: usize| {
                let fs = vec![f.as_slice(); k];
                assert_eq!(p.send(&fs), k);
                assert_eq!(peer.recv().len(), k);
                peer.rxsync().unwrap();
                p.txsync().unwrap();
            };
            // TX: rhead = 6 > rtail = 5, a wrapped window.
            round(3);
            round(3);
            let tx = p.tx_ring(0).unwrap();
            assert_eq!((tx.head(), tx.tail()), (6, 5));
            for bad in [HSLOTS, HSLOTS + 5, u32::MAX] {
                tx.set_head(bad);
                tx.set_cur(bad);
                p.txsync().unwrap();
                assert_eq!((tx.head(), tx.cur(), tx.tail()), (6, 6, 5), "tx reinit");
            }
            // RX: hwcur = 6 > hwtail = 1 on the receiving side.
            assert_eq!(p.send(&[&f, &f, &f]), 3);
            let rx = peer.rx_ring(0).unwrap();
            for bad in [HSLOTS, 5000, u32::MAX] {
                rx.set_head(bad);
                rx.set_cur(bad);
                peer.rxsync().unwrap();
                assert_eq!((rx.head(), rx.cur(), rx.tail()), (6, 6, 1), "rx reinit");
            }
            // Nothing was lost, and it still works.
            assert_eq!(peer.recv(), vec![f.clone(); 3]);
            round(2);
        }
    }
    assert_eq!(env.nm.stats(), base);
}

// ----------------------------------------------------------------------
// Unit-level properties of the prologue and reinit functions.

/// A ring object in ordinary memory.
struct MemRing {
    _mem: Vec<u64>,
    ring: RingPtr,
}

impl MemRing {
    fn new(n: u32) -> Self {
        let mut mem = vec![0u64; (256 + 16 * n as usize) / 8];
        let base = NonNull::new(mem.as_mut_ptr().cast::<u8>()).expect("non-null");
        // SAFETY: `mem` holds ring_size(n) bytes, 8-byte aligned, and lives
        // (without moving: a Vec's buffer does not move) as long as `ring`.
        let ring = unsafe { RingPtr::new(base, n) };
        MemRing { _mem: mem, ring }
    }
}

/// Whether `x` lies in the cyclic interval [a, b] of a ring of `n` slots.
fn in_cyclic(a: u32, b: u32, x: u32, n: u32) -> bool {
    x < n && ring_dist(a, x, n) <= ring_dist(a, b, n)
}

fn any_idx(n: u32) -> impl Strategy<Value = u32> {
    prop_oneof![6 => 0..n + 2, 1 => any::<u32>()]
}

/// (n, a, b, head, cur, tail) with a, b < n and arbitrary user values.
fn prologue_case() -> impl Strategy<Value = (u32, u32, u32, u32, u32, u32)> {
    (1u32..40).prop_flat_map(|n| (Just(n), 0..n, 0..n, any_idx(n), any_idx(n), any_idx(n)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// TX prologue accepts exactly head in [rhead, rtail] and cur in
    /// [head, rtail] (cyclic, in range); on success tail is restored.
    #[test]
    fn txsync_prologue_accepts_exactly_the_cyclic_window((n, rhead, rtail, head, cur, tail) in prologue_case()) {
        let m = MemRing::new(n);
        m.ring.set_head(head);
        m.ring.set_cur(cur);
        m.ring.set_tail(tail);
        let mut own = KringOwned::<HostPlatform> { rhead, rcur: rhead, rtail, ..Default::default() };
        let hwcur = rhead;
        let r = kring::txsync_prologue(&mut own, &m.ring, hwcur, rtail);
        let valid = in_cyclic(rhead, rtail, head, n) && in_cyclic(head, rtail, cur, n);
        prop_assert_eq!(r.is_some(), valid, "n {} rhead {} rtail {} head {} cur {}", n, rhead, rtail, head, cur);
        if let Some(h) = r {
            prop_assert_eq!(h, head);
            prop_assert_eq!((own.rhead, own.rcur, own.rtail), (head, cur, rtail));
            prop_assert_eq!(m.ring.tail(), rtail);
        } else {
            prop_assert_eq!((own.rhead, own.rtail), (rhead, rtail));
        }
    }

    /// RX prologue accepts exactly head in [hwcur, hwtail] and cur in
    /// [head, hwtail]; the remembered head/cur are the user's in any case.
    #[test]
    fn rxsync_prologue_accepts_exactly_the_cyclic_window((n, hwcur, hwtail, head, cur, tail) in prologue_case()) {
        let m = MemRing::new(n);
        m.ring.set_head(head);
        m.ring.set_cur(cur);
        m.ring.set_tail(tail);
        let mut own = KringOwned::<HostPlatform> { rtail: hwtail, ..Default::default() };
        let r = kring::rxsync_prologue(&mut own, &m.ring, hwcur, hwtail);
        let valid = in_cyclic(hwcur, hwtail, head, n) && in_cyclic(head, hwtail, cur, n);
        prop_assert_eq!(r.is_some(), valid, "n {} hwcur {} hwtail {} head {} cur {}", n, hwcur, hwtail, head, cur);
        prop_assert_eq!((own.rhead, own.rcur), (head, cur));
        if r.is_some() {
            prop_assert_eq!(m.ring.tail(), hwtail);
        }
    }

    /// Reinit: out-of-range indexes are reset to the kernel's, in-range ones
    /// left alone; every slot ends up with a valid buffer (or the dummy 0)
    /// and a length within the buffer; valid slots are untouched.
    #[test]
    fn ring_reinit_repairs(
        (n, hwcur, hwtail, head, cur, tail) in prologue_case(),
        slots in proptest::collection::vec((any_idx(100), any::<u16>(), any::<u16>()), 40),
    ) {
        let (nbufs, bsz) = (100u32, 2048u32);
        let m = MemRing::new(n);
        m.ring.set_head(head);
        m.ring.set_cur(cur);
        m.ring.set_tail(tail);
        for i in 0..n {
            let (buf_idx, len, flags) = slots[i as usize];
            m.ring.set_slot(i, Slot { buf_idx, len, flags, ptr: 7 });
        }
        let mut own = KringOwned::<HostPlatform>::default();
        let out_of_range = head >= n || cur >= n || tail >= n;
        let bad_slots = slots[..n as usize]
            .iter()
            .any(|&(b, l, _)| b < 2 || b >= nbufs || u32::from(l) > bsz);
        let repaired = kring::ring_reinit(&mut own, &m.ring, hwcur, hwtail, nbufs, bsz);
        prop_assert_eq!(repaired, out_of_range || bad_slots);
        if out_of_range {
            prop_assert_eq!((m.ring.head(), m.ring.cur(), m.ring.tail()), (hwcur, hwcur, hwtail));
            prop_assert_eq!((own.rhead, own.rcur, own.rtail), (hwcur, hwcur, hwtail));
        } else {
            prop_assert_eq!((m.ring.head(), m.ring.cur(), m.ring.tail()), (head, cur, tail));
        }
        for i in 0..n {
            let s = m.ring.slot(i);
            let (b, l, f) = slots[i as usize];
            prop_assert!(s.buf_idx == 0 || (2..nbufs).contains(&s.buf_idx));
            prop_assert!(u32::from(s.len) <= bsz);
            prop_assert_eq!((s.flags, s.ptr), (f, 7));
            if (2..nbufs).contains(&b) && u32::from(l) <= bsz {
                prop_assert_eq!((s.buf_idx, s.len), (b, l));
            }
        }
    }
}
