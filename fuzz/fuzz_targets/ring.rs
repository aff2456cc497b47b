//! The ring protocol (spec §6) against a hostile user: a VALE port pair, a
//! pipe pair and (if the input says so) a copy monitor and a zero-copy
//! monitor of the VALE ports are registered, and the input drives a sequence of writes
//! of arbitrary head/cur/tail, arbitrary slot contents (buf_idx, len,
//! flags with NS_MOREFRAG / NS_INDIRECT / NS_BUF_CHANGED, ptr), arbitrary
//! u32 stores anywhere in the mapped region, well-behaved sends and
//! receives, NIOCTXSYNC, NIOCRXSYNC and poll.
//!
//! Invariants after every step: no panic; every kring keeps hwcur and
//! hwtail below num_slots; after a sync, the tail the kernel published in
//! each synced ring is below num_slots; a clean VALE pair on another
//! switch still forwards a frame intact. At the end every file is closed
//! (in an order the input chooses) and `stats()` is back at the baseline.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netmap_core::kring::Dir;
use netmap_core::netmap::{POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use netmap_core::shm::Slot;
use netmap_fuzz::*;
use netmap_uapi::*;

const MA: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const MB: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];

fn slot_flags(r: &mut Reader<'_>) -> u16 {
    match r.u8() % 4 {
        0 => r.u16(),
        _ => {
            let mut f = 0;
            for bit in [
                NS_BUF_CHANGED,
                NS_MOREFRAG,
                NS_INDIRECT,
                NS_REPORT,
                NS_FORWARD,
            ] {
                if r.one_in(3) {
                    f |= bit;
                }
            }
            f
        }
    }
}

fn assert_tails(p: &Port, d: Dir) {
    for i in 0..p.nrings(d) {
        if let Some(ring) = p.ring(d, i)
            && !p.stopped(d, i)
        {
            assert!(
                ring.tail() < ring.num_slots(),
                "{d:?} ring {i}: tail {} >= {} after a sync",
                ring.tail(),
                ring.num_slots()
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let env = Env::new(small_params(2048));
    let base = env.stats();
    let slots = r.pick(&[8u32, 16, 32, 64]);
    let rings = 1 + r.below(2) as u16;
    let body = reg_body(NR_REG_ALL_NIC, rings, slots);
    let mut witness = Witness::new(&env, "vale7");
    let monitors = r.u8() % 4;
    let specs: Vec<(&[u8], u64)> = [
        (&b"vale0:a"[..], 0),
        (b"vale0:b", 0),
        (b"vale1:p{1", 0),
        (b"vale1:p}1", 0),
        (b"vale0:a", NR_MONITOR_TX | NR_MONITOR_RX),
        (b"vale0:b", NR_ZCOPY_MON),
    ]
    .into_iter()
    .take(4 + monitors as usize % 3)
    .collect();
    let open = |(name, flags): (&[u8], u64)| {
        let b = NmreqRegister {
            nr_flags: flags,
            ..body
        };
        env.port(name, b)
    };
    let mut ports: Vec<Option<Port>> = specs
        .iter()
        .map(|&s| Some(open(s).expect("setup port")))
        .collect();

    let mut steps = 0;
    while !r.is_empty() && steps < 64 {
        steps += 1;
        let pi = r.below(ports.len());
        let Some(p) = ports[pi].as_ref() else {
            continue;
        };
        let d = if r.bool() { Dir::Tx } else { Dir::Rx };
        let ri = r.below(2) as u32;
        let op = r.u8() % 10;
        trace!("step {steps}: port {pi} {d:?} ring {ri} op {op}");
        match op {
            0 => {
                // head / cur / tail
                let Some(ring) = p.ring(d, ri) else { continue };
                let n = ring.num_slots();
                let which = r.u8();
                if which & 1 != 0 {
                    ring.set_head(r.index_like(n));
                }
                if which & 2 != 0 {
                    ring.set_cur(r.index_like(n));
                }
                if which & 4 != 0 {
                    ring.set_tail(r.index_like(n));
                }
                trace!(
                    "  head {} cur {} tail {}",
                    ring.head(),
                    ring.cur(),
                    ring.tail()
                );
            }
            1 => {
                // a slot
                let Some(ring) = p.ring(d, ri) else { continue };
                let n = ring.num_slots();
                let i = r.below(n as usize) as u32;
                let old = ring.slot(i);
                let buf_idx = match r.u8() % 4 {
                    0 => old.buf_idx,
                    1 => ring.slot(r.below(n as usize) as u32).buf_idx,
                    _ => r.index_like(4 * slots + 8),
                };
                let len = match r.u8() % 3 {
                    0 => r.u16(),
                    1 => (p.buf_size() as u16)
                        .wrapping_add(r.u8() as u16 % 3)
                        .wrapping_sub(1),
                    _ => u16::from(r.u8()),
                };
                let s = Slot {
                    buf_idx,
                    len,
                    flags: slot_flags(&mut r),
                    ptr: if r.bool() { r.u64() } else { 0 },
                };
                trace!("  slot {i}: {s:?}");
                ring.set_slot(i, s);
            }
            2 => {
                let res = env.nm.ioctl(p.np(), NIOCTXSYNC, 0);
                trace!("  txsync -> {res:?}");
                assert_tails(p, Dir::Tx);
            }
            3 => {
                let res = env.nm.ioctl(p.np(), NIOCRXSYNC, 0);
                trace!("  rxsync -> {res:?}");
                assert_tails(p, Dir::Rx);
            }
            4 => {
                let ev = r.pick(&[
                    POLLIN,
                    POLLOUT,
                    POLLIN | POLLOUT,
                    POLLRDNORM | POLLWRNORM,
                    0,
                ]);
                let _ = env.nm.poll(p.np(), ev, &mut |_| {});
            }
            5 => {
                // A well-behaved burst (VALE: to the peer or broadcast).
                let k = 1 + r.below(8);
                let dst = r.pick(&[MA, MB, [0xff; 6]]);
                let frames: Vec<Vec<u8>> = (0..k)
                    .map(|j| frame(dst, MA, j as u32, 14 + r.below(1600)))
                    .collect();
                let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
                p.send(&env.nm, &refs);
            }
            6 => {
                for f in p.recv(&env.nm) {
                    assert!(f.len() <= p.buf_size() as usize);
                }
            }
            7 => {
                // Anywhere in the region: netmap_if, ring headers, buffers.
                let off = r.u64();
                let v = r.index_like(slots);
                p.poke(&env.nm, off, v);
            }
            8 => {
                // Close and reopen one file with the same name.
                if r.one_in(4) {
                    if let Some(old) = ports[pi].take() {
                        env.close(old);
                    }
                    // Reopening fails only for a monitor whose parent is
                    // closed at the moment.
                    ports[pi] = open(specs[pi]);
                    assert!(ports[pi].is_some() || pi >= 4, "reopening port {pi} failed");
                }
            }
            _ => {
                // Both syncs of every port, as a poll loop would.
                for (qi, q) in ports.iter().enumerate() {
                    let Some(q) = q else { continue };
                    let t = env.nm.ioctl(q.np(), NIOCTXSYNC, 0);
                    let rx = env.nm.ioctl(q.np(), NIOCRXSYNC, 0);
                    trace!("  port {qi}: txsync -> {t:?}, rxsync -> {rx:?}");
                    assert_tails(q, Dir::Tx);
                    assert_tails(q, Dir::Rx);
                }
            }
        }
        for q in ports.iter().flatten() {
            env.check_krings(q);
        }
        witness.check(&env);
    }

    // Close in an order the input chooses.
    while ports.iter().any(Option::is_some) {
        let i = r.below(ports.len());
        if let Some(p) = ports[i].take() {
            env.close(p);
        } else if let Some(p) = ports.iter_mut().find_map(Option::take) {
            env.close(p);
        }
    }
    witness.check(&env);
    witness.close(&env);
    finish(env, base);
});
