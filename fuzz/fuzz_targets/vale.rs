//! VALE forwarding (spec §8) with hostile slots: up to six ports on two
//! switches with random ring and slot counts, bursts of packets made of
//! 1..70 fragments (NS_MOREFRAG chains, incomplete chains at the end of a
//! burst, chains longer than NETMAP_MAX_FRAGS), slot lengths above the
//! buffer size, swapped or invalid buffer indexes, NS_INDIRECT with user
//! pointers that are valid, partly mapped or wild, random MAC addresses,
//! and virtio-net header lengths set with PORT_HDR_SET (0/10/12, or
//! anything) on some ports at any time; ports registered with the OFFSETS
//! option (random bits, max and initial offset) and slots with arbitrary
//! `ptr` values (data offsets) on every port.
//!
//! Invariants: no panic; every frame a receiver sees has len <= the
//! buffer size (minus its data offset, on ports with offsets), a valid buffer index and fragment flags that end its
//! chain; krings keep their indexes in range; a clean pair on another
//! switch still forwards a frame intact; closing everything brings
//! `stats()` back to the baseline.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netmap_core::kring::Dir;
use netmap_core::netmap::{POLLIN, POLLOUT};
use netmap_core::shm::Slot;
use netmap_fuzz::*;
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

const MAX_PORTS: usize = 6;

fn mac(i: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 1, i as u8]
}

struct PortCfg {
    name: String,
    body: NmreqRegister,
    /// The OFFSETS option's body (after the header), if any.
    offsets: Option<NmreqOptOffsets>,
}

impl PortCfg {
    fn open(&self, env: &Env) -> Option<Port> {
        match &self.offsets {
            None => env.port(self.name.as_bytes(), self.body),
            Some(o) => env.port_opts(
                self.name.as_bytes(),
                self.body,
                &[(NETMAP_REQ_OPT_OFFSETS, &o.as_bytes()[24..])],
            ),
        }
    }
}

fn hdr_set(env: &Env, name: &str, len: u32) {
    let np = env.open();
    let mut h = NmreqPortHdr {
        nr_hdr_len: len,
        ..NmreqPortHdr::zeroed()
    };
    let r = env.ctrl(&np, NETMAP_REQ_PORT_HDR_SET, name.as_bytes(), &mut h);
    if r.is_ok() {
        assert!(matches!(len, 0 | 10 | 12), "HDR_SET accepted {len}");
    }
    let mut g = NmreqPortHdr::zeroed();
    if env
        .ctrl(&np, NETMAP_REQ_PORT_HDR_GET, name.as_bytes(), &mut g)
        .is_ok()
    {
        assert!(matches!(g.nr_hdr_len, 0 | 10 | 12));
    }
    env.nm.release(np);
}

/// Fill and send one burst from TX ring `ri` of `p`.
fn burst(env: &Env, p: &Port, ri: u32, nports: usize, ubuf: (u64, usize), r: &mut Reader<'_>) {
    let Some(ring) = p.ring(Dir::Tx, ri) else {
        return;
    };
    let n = ring.num_slots();
    let bsz = p.buf_size();
    let head0 = ring.head();
    if head0 >= n {
        return;
    }
    let space = nm_ring_space(n, head0, ring.tail());
    let mut head = head0;
    let mut used = 0;
    let npkts = 1 + r.below(6);
    for _ in 0..npkts {
        let frags = match r.u8() % 16 {
            0 => 60 + r.below(12),
            1..=4 => 2 + r.below(4),
            _ => 1,
        };
        let hdr_len = r.pick(&[0usize, 0, 10, 12]);
        let dst = match r.u8() % 4 {
            0 => [0xff; 6],
            1 => {
                let mut m = [0u8; 6];
                for b in &mut m {
                    *b = r.u8();
                }
                m
            }
            _ => mac(r.below(nports)),
        };
        let src = if r.one_in(8) {
            [0x01, 0, 0, 0, 0, 1]
        } else {
            mac(r.below(nports))
        };
        for f in 0..frags {
            if used >= space {
                break;
            }
            let s = ring.slot(head);
            let mut len = match r.u8() % 8 {
                0 => r.u16(),
                1 => bsz as u16,
                2 => (bsz as u16).wrapping_add(1),
                3 => 0,
                _ => (hdr_len + 14 + r.below(200)) as u16,
            };
            let mut flags = if f + 1 < frags { NS_MOREFRAG } else { 0 };
            let mut buf_idx = s.buf_idx;
            // A data offset (OFFSETS), or anything.
            let mut ptr = match r.u8() % 8 {
                0 => u64::from(r.u16()),
                1 => r.u64(),
                _ => s.ptr,
            };
            match r.u8() % 16 {
                0 => {
                    buf_idx = r.index_like(4 * n + 8);
                    flags |= NS_BUF_CHANGED;
                }
                1 => buf_idx = ring.slot(r.below(n as usize) as u32).buf_idx,
                2 => {
                    flags |= NS_INDIRECT;
                    ptr = match r.u8() % 3 {
                        0 => ubuf.0,
                        1 => ubuf.0 + (ubuf.1 as u64).saturating_sub(u64::from(r.u8())),
                        _ => r.u64(),
                    };
                }
                3 => flags ^= NS_MOREFRAG,
                4 => flags = r.u16(),
                _ => {}
            }
            if f == 0 {
                let mut fr = vec![0u8; hdr_len];
                fr.extend_from_slice(&frame(dst, src, r.u32(), 60));
                p.write_buf(buf_idx, &fr);
            } else if r.one_in(4) {
                len = len.wrapping_add(r.u16());
            }
            ring.set_slot(
                head,
                Slot {
                    buf_idx,
                    len,
                    flags,
                    ptr,
                },
            );
            head = if head + 1 == n { 0 } else { head + 1 };
            used += 1;
        }
    }
    ring.set_head(head);
    ring.set_cur(head);
    let _ = env.nm.ioctl(p.np(), NIOCTXSYNC, 0);
}

/// rxsync every RX ring of `p`, check every frame, release them.
fn drain(env: &Env, p: &Port) {
    let _ = env.nm.ioctl(p.np(), NIOCRXSYNC, 0);
    let bsz = p.buf_size();
    for ri in 0..p.nrings(Dir::Rx) {
        let Some(ring) = p.ring(Dir::Rx, ri) else {
            continue;
        };
        let n = ring.num_slots();
        let (mut h, t) = (ring.head(), ring.tail());
        assert!(h < n && t < n, "RX ring {ri}: head {h} tail {t} of {n}");
        let k = p.np().binding().and_then(|b| b.na.kring(Dir::Rx, ri));
        let ofs = k.and_then(|k| k.offsets());
        let mut in_chain = 0u32;
        while h != t {
            let s = ring.slot(h);
            let off = ofs.map_or(0, |o| (s.ptr & o.mask).min(o.max)) as u32;
            assert!(
                u32::from(s.len) + off <= bsz || s.len == 0,
                "RX ring {ri} slot {h}: len {} at offset {off} > buffer size {bsz}",
                s.len
            );
            assert!(p.buf_valid(s.buf_idx), "RX slot {h}: buf_idx {}", s.buf_idx);
            if s.flags & NS_MOREFRAG != 0 {
                in_chain += 1;
                assert!(in_chain < NETMAP_MAX_FRAGS, "RX chain longer than 64");
            } else {
                in_chain = 0;
            }
            h = if h + 1 == n { 0 } else { h + 1 };
        }
        // Whatever the senders did, every chain the kernel published ends.
        assert_eq!(in_chain, 0, "RX ring {ri}: published an unterminated chain");
        ring.set_head(h);
        ring.set_cur(h);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let bsz = r.pick(&[2048u32, 2048, 1024, 256, 4096]);
    let env = Env::new(small_params(bsz));
    let base = env.stats();
    // The bridge_batch module parameter (writable at run time): small
    // batches cut fragment chains at batch boundaries.
    let set_batch = |r: &mut Reader<'_>| {
        let b = r.pick(&[1u32, 2, 3, 5, 8, 1024, 1024, 0, 100_000]);
        env.nm
            .params()
            .bridge_batch
            .store(b, std::sync::atomic::Ordering::Relaxed);
        trace!("bridge_batch {b}");
    };
    set_batch(&mut r);
    let mut witness = Witness::new(&env, "vale7");
    // A user buffer for NS_INDIRECT slots.
    let ubuf_bytes = frame([0xff; 6], mac(9), 0x1d1d, 300);
    let ubuf = (env.p.user_map(&ubuf_bytes), ubuf_bytes.len());

    let nports = 2 + r.below(MAX_PORTS - 1);
    let mut cfgs = Vec::new();
    for i in 0..nports {
        let sw = if r.one_in(4) { "vale1" } else { "vale0" };
        let mut body = reg_body(
            NR_REG_ALL_NIC,
            1 + r.below(2) as u16,
            r.pick(&[8u32, 16, 32, 64]),
        );
        body.nr_rx_rings = 1 + r.below(2) as u16;
        body.nr_flags = NR_ACCEPT_VNET_HDR;
        let offsets = r.one_in(3).then(|| {
            let bits = r.pick(&[0u32, 8, 11, 12, 16, 64]);
            let mask = if bits == 0 || bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            let max = (u64::from(r.u16()) % u64::from(bsz + 1)) & mask;
            NmreqOptOffsets {
                nro_max_offset: max,
                nro_initial_offset: u64::from(r.u16()) % (max + 1),
                nro_offset_bits: bits,
                ..NmreqOptOffsets::default()
            }
        });
        cfgs.push(PortCfg {
            name: format!("{sw}:p{i}"),
            body,
            offsets,
        });
    }
    let mut ports: Vec<Option<Port>> = cfgs
        .iter()
        .map(|c| Some(c.open(&env).expect("setup port")))
        .collect();

    let mut steps = 0;
    while !r.is_empty() && steps < 48 {
        steps += 1;
        let i = r.below(nports);
        match r.u8() % 10 {
            0..=4 => {
                if let Some(p) = ports[i].as_ref() {
                    let ri = r.below(2) as u32;
                    burst(&env, p, ri, nports, ubuf, &mut r);
                }
            }
            5 | 6 => {
                for p in ports.iter().flatten() {
                    drain(&env, p);
                }
            }
            7 => {
                let len = match r.u8() % 4 {
                    0 => r.u32(),
                    _ => r.pick(&[0u32, 10, 12]),
                };
                hdr_set(&env, &cfgs[i].name, len);
            }
            8 => {
                if let Some(p) = ports[i].as_ref() {
                    let _ = env.nm.poll(p.np(), POLLIN | POLLOUT, &mut |_| {});
                }
                if r.one_in(4) {
                    set_batch(&mut r);
                }
            }
            _ => {
                if let Some(p) = ports[i].take() {
                    env.close(p);
                } else {
                    ports[i] = cfgs[i].open(&env);
                    assert!(ports[i].is_some(), "reopening {}", cfgs[i].name);
                }
            }
        }
        for p in ports.iter().flatten() {
            env.check_krings(p);
        }
        witness.check(&env);
    }
    for p in ports.iter().flatten() {
        drain(&env, p);
    }
    for p in ports.into_iter().flatten() {
        env.close(p);
    }
    witness.close(&env);
    finish(env, base);
});
