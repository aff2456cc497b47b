//! The OFFSETS option (§4.11): the checks, per-slot data offsets through
//! VALE (general and direct paths, to and from ports without offsets,
//! multi-slot frames, lengths that do not fit), pipes, an emulated NIC and
//! its host rings, and copy monitors.

mod common;

use common::*;
use netmap_core::Errno;
use netmap_core::host::{HostNetif, HostPlatform};
use netmap_core::netmap::NetmapPriv;
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];

/// An OFFSETS option in user memory.
fn opt_offsets(env: &Env, bits: u32, max: u64, initial: u64) -> u64 {
    opt_offsets_gap(env, bits, max, initial, 0)
}

/// An OFFSETS option in user memory, with a minimum gap.
fn opt_offsets_gap(env: &Env, bits: u32, max: u64, initial: u64, gap: u64) -> u64 {
    let o = NmreqOptOffsets {
        nro_opt: NmreqOption {
            nro_next: 0,
            nro_reqtype: NETMAP_REQ_OPT_OFFSETS,
            nro_status: 0x55,
            nro_size: 56,
        },
        nro_max_offset: max,
        nro_initial_offset: initial,
        nro_offset_bits: bits,
        nro_tx_align: 0,
        nro_min_gap: gap,
    };
    env.p.user_map(o.as_bytes())
}

fn opt_back(env: &Env, addr: u64) -> NmreqOptOffsets {
    NmreqOptOffsets::from_bytes(&env.p.user_read(addr, 56).unwrap()).unwrap()
}

fn register_ofs(
    env: &Env,
    np: &NetmapPriv<HostPlatform>,
    name: &str,
    reg: NmreqRegister,
    opt: u64,
) -> Result<NmreqRegister, Errno> {
    let mut reg = reg;
    env.ctrl_opts(np, NETMAP_REQ_REGISTER, name, Some(&mut reg), opt)?;
    Ok(reg)
}

fn all() -> NmreqRegister {
    NmreqRegister {
        nr_mode: NR_REG_ALL_NIC,
        ..NmreqRegister::zeroed()
    }
}

/// A port registered with OFFSETS (bits, max, initial).
fn ofs_port<'e>(env: &'e Env, name: &str, reg: NmreqRegister, o: (u32, u64, u64)) -> Port<'e> {
    let np = env.open();
    let opt = opt_offsets(env, o.0, o.1, o.2);
    let reg = register_ofs(env, &np, name, reg, opt).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(opt_back(env, opt).nro_opt.nro_status, 0);
    Port::wrap(env, np, reg)
}

/// Put `frames` (each with its data offset) into TX ring 0 and txsync.
fn send_at(p: &Port<'_>, mask: u64, frames: &[(&[u8], u64)]) {
    let r = p.tx_ring(0).unwrap();
    let mut head = r.head();
    for (f, off) in frames {
        let s = r.slot(head);
        let b = p.buf(&r, s.buf_idx);
        // What fits in the buffer is written; the slot may claim more.
        let n = f.len().min(r.hdr().nr_buf_size as usize - *off as usize);
        // SAFETY: off + n is within the buffer.
        unsafe { std::ptr::copy_nonoverlapping(f.as_ptr(), b.wrapping_add(*off as usize), n) };
        r.set_slot(
            head,
            NetmapSlot {
                len: f.len() as u16,
                ptr: (s.ptr & !mask) | off,
                flags: 0,
                ..s
            },
        );
        head = next(head, r.num_slots());
    }
    r.set_head(head);
    r.set_cur(head);
    p.txsync().unwrap();
}

/// Every frame in RX ring 0 after an rxsync, read at the slot's offset
/// (`ptr & mask`), with that offset.
fn recv_at(p: &Port<'_>, mask: u64) -> Vec<(Vec<u8>, u64)> {
    p.rxsync().unwrap();
    let r = p.rx_ring(0).unwrap();
    let mut out = Vec::new();
    let mut h = r.head();
    while h != r.tail() {
        let s = r.slot(h);
        let off = s.ptr & mask;
        let b = p.buf(&r, s.buf_idx);
        let mut v = vec![0u8; s.len as usize];
        // SAFETY: the kernel wrote len bytes at off, inside the buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(b.wrapping_add(off as usize), v.as_mut_ptr(), v.len())
        };
        out.push((v, off));
        h = next(h, r.num_slots());
    }
    r.set_head(h);
    r.set_cur(h);
    out
}

#[test]
fn offsets_option_checks() {
    let env = Env::new();
    let base = env.nm.stats();
    let np = env.open();
    for (what, bits, max, initial) in [
        ("more than 64 bits", 65, 0, 0),
        ("max beyond the buffer", 0, 2049, 0),
        ("max beyond the mask", 4, 16, 0),
        ("initial beyond max", 0, 64, 65),
    ] {
        let o = opt_offsets(&env, bits, max, initial);
        let r = register_ofs(&env, &np, "vale0:a", all(), o);
        assert_eq!(r.err(), Some(Errno::EINVAL), "{what}");
        assert_eq!(opt_back(&env, o).nro_opt.nro_status, Errno::EINVAL.0 as u32);
        assert!(np.binding().is_none());
    }
    assert_eq!(env.nm.stats(), base);
    // A good one: mask in the ring headers, the initial offset in every
    // slot, max written back (bits as sent).
    let o = opt_offsets(&env, 12, 256, 64);
    let reg = register_ofs(&env, &np, "vale0:a", all(), o).unwrap();
    let back = opt_back(&env, o);
    assert_eq!(
        (
            back.nro_opt.nro_status,
            back.nro_max_offset,
            back.nro_offset_bits
        ),
        (0, 256, 12)
    );
    let a = Port::wrap(&env, np, reg);
    for r in [a.tx_ring(0).unwrap(), a.rx_ring(0).unwrap()] {
        assert_eq!(r.hdr().offset_mask, 0xfff);
        assert_eq!(r.hdr().buf_align, 0);
        assert!((0..r.num_slots()).all(|i| r.slot(i).ptr == 64));
    }
    // Another file on the same rings: a wider mask or a larger max is
    // refused, a narrower request gets the rings' setting.
    let np2 = env.open();
    let o = opt_offsets(&env, 16, 256, 0);
    assert_eq!(
        register_ofs(&env, &np2, "vale0:a", all(), o).err(),
        Some(Errno::EBUSY)
    );
    assert_eq!(opt_back(&env, o).nro_opt.nro_status, Errno::EBUSY.0 as u32);
    let o = opt_offsets(&env, 12, 512, 0);
    assert_eq!(
        register_ofs(&env, &np2, "vale0:a", all(), o).err(),
        Some(Errno::EBUSY)
    );
    let o = opt_offsets(&env, 8, 100, 32);
    register_ofs(&env, &np2, "vale0:a", all(), o).unwrap();
    assert_eq!(opt_back(&env, o).nro_max_offset, 256, "the rings' max");
    // Rings in use by another file keep their slots' offsets.
    assert_eq!(a.tx_ring(0).unwrap().slot(3).ptr, 64);
    env.nm.release(np2);
    // bits 0 and 64 mean the whole field.
    for bits in [0, 64] {
        let p = ofs_port(&env, &format!("vale1:b{bits}"), all(), (bits, 2048, 0));
        assert_eq!(p.tx_ring(0).unwrap().hdr().offset_mask, u64::MAX);
    }
    // Not for zero-copy monitors; fine for copy monitors.
    let np3 = env.open();
    let mut zreg = all();
    zreg.nr_flags = NR_ZCOPY_MON;
    let o = opt_offsets(&env, 12, 64, 0);
    assert_eq!(
        register_ofs(&env, &np3, "vale0:a", zreg, o).err(),
        Some(Errno::EOPNOTSUPP)
    );
    assert_eq!(
        opt_back(&env, o).nro_opt.nro_status,
        Errno::EOPNOTSUPP.0 as u32
    );
    let mut creg = all();
    creg.nr_flags = NR_MONITOR_TX;
    register_ofs(&env, &np3, "vale0:a", creg, opt_offsets(&env, 12, 64, 0)).unwrap();
    env.nm.release(np3);
    drop(a);
    assert_eq!(env.nm.stats(), base);
}

/// VALE: the data of each slot is read at its offset and written at the
/// receiving slot's offset; ports without offsets read and write at 0.
#[test]
fn offsets_through_vale() {
    let env = Env::new();
    let base = env.nm.stats();
    {
        let a = ofs_port(&env, "vale0:a", all(), (12, 512, 0));
        let b = ofs_port(&env, "vale0:b", all(), (12, 512, 128));
        let c = env.port("vale0:c");
        // The switch learns B at b (the frame floods to a and c).
        send_at(&b, 0xfff, &[(&frame(A, B, 0, 60), 128)]);
        let _ = recv_at(&a, 0xfff);
        let _ = c.recv();
        let f1 = frame(B, A, 1, 60);
        let f2 = frame(B, A, 2, 200);
        // Unicast a -> b: source offsets 0 and 300, destination 128. A run
        // to one port: with offsets it takes the general path.
        send_at(&a, 0xfff, &[(&f1, 0), (&f2, 300)]);
        assert_eq!(
            recv_at(&b, 0xfff),
            vec![(f1.clone(), 128), (f2.clone(), 128)]
        );
        // A length that does not fit behind the offset: the slot is empty
        // (dropped at the sender).
        let big = frame(B, A, 3, 1900);
        send_at(&a, 0xfff, &[(&big[..1800], 300), (&f1, 511)]);
        assert_eq!(recv_at(&b, 0xfff), vec![(f1.clone(), 128)]);
        // Into a port without offsets: at 0 (the direct path bails out on
        // the source's offsets).
        let fc = frame([0x02, 0, 0, 0, 0, 0xc], A, 4, 90);
        c.send(&[&frame(A, [0x02, 0, 0, 0, 0, 0xc], 5, 60)]);
        let _ = recv_at(&a, 0xfff);
        send_at(&a, 0xfff, &[(&fc, 200)]);
        assert_eq!(c.recv(), vec![fc.clone()]);
        // From a port without offsets into one with them (direct path,
        // destination with offsets: general path).
        let fb = frame(B, [0x02, 0, 0, 0, 0, 0xc], 6, 70);
        c.send(&[&fb, &fb]);
        assert_eq!(
            recv_at(&b, 0xfff),
            vec![(fb.clone(), 128), (fb.clone(), 128)]
        );
        // A destination slot whose offset leaves too little room: empty.
        let br = b.rx_ring(0).unwrap();
        let h = br.head();
        let s = br.slot(h);
        br.set_slot(h, NetmapSlot { ptr: 500, ..s });
        let long = frame(B, A, 7, 1600);
        send_at(&a, 0xfff, &[(&long, 0), (&f1, 0)]);
        let got = recv_at(&b, 0xfff);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].0.len(), got[0].1),
            (0, 500),
            "does not fit behind 500"
        );
        assert_eq!(got[1], (f1.clone(), 128));
        // A multi-slot frame: each fragment at its own offset.
        let r = a.tx_ring(0).unwrap();
        let mut head = r.head();
        let parts: [(&[u8], u64); 2] = [(&f2[..100], 40), (&f2[100..], 8)];
        for (k, (d, off)) in parts.iter().enumerate() {
            let s = r.slot(head);
            let buf = a.buf(&r, s.buf_idx);
            // SAFETY: offsets and lengths within the 2048-byte buffer.
            unsafe {
                std::ptr::copy_nonoverlapping(d.as_ptr(), buf.wrapping_add(*off as usize), d.len())
            };
            let more = if k == 0 { NS_MOREFRAG } else { 0 };
            r.set_slot(
                head,
                NetmapSlot {
                    len: d.len() as u16,
                    flags: more,
                    ptr: *off,
                    ..s
                },
            );
            head = next(head, r.num_slots());
        }
        r.set_head(head);
        r.set_cur(head);
        a.txsync().unwrap();
        let got = recv_at(&b, 0xfff);
        let joined: Vec<u8> = got.iter().flat_map(|(d, _)| d.clone()).collect();
        assert_eq!(joined, f2);
        assert!(got.iter().all(|(_, o)| *o == 128));
        // NS_INDIRECT ignores the offset (ptr is the user address).
        let ind = env.p.user_map(&f1);
        let r = a.tx_ring(0).unwrap();
        let h = r.head();
        let s = r.slot(h);
        r.set_slot(
            h,
            NetmapSlot {
                len: 60,
                flags: NS_INDIRECT,
                ptr: ind,
                ..s
            },
        );
        r.set_head(next(h, r.num_slots()));
        r.set_cur(next(h, r.num_slots()));
        a.txsync().unwrap();
        assert_eq!(recv_at(&b, 0xfff), vec![(f1.clone(), 128)]);
    }
    assert_eq!(env.nm.stats(), base);
}

/// Pipes move slots whole: the data stays at the sender's offset.
#[test]
fn offsets_through_pipes() {
    let env = Env::new();
    let m = ofs_port(&env, "pp{1", all(), (16, 1024, 0));
    let s = ofs_port(&env, "pp}1", all(), (16, 1024, 0));
    let f = frame(B, A, 1, 100);
    send_at(&m, 0xffff, &[(&f, 0), (&f, 77), (&f, 1000)]);
    assert_eq!(
        recv_at(&s, 0xffff),
        vec![(f.clone(), 0), (f.clone(), 77), (f.clone(), 1000)]
    );
}

/// An emulated NIC: frames go out from their offset (cut at the buffer's
/// end), received ones land at
/// the slot's offset (in pieces of what the largest offset leaves), and so
/// for the host rings.
#[test]
fn offsets_on_an_emulated_nic() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let env = Env::with_nics(std::slice::from_ref(&eth0));
    let reg = NmreqRegister {
        nr_mode: NR_REG_NIC_SW,
        ..NmreqRegister::zeroed()
    };
    let p = ofs_port(&env, "eth0", reg, (11, 1024, 100));
    let f = frame(B, A, 1, 300);
    let g = frame(B, A, 9, 1100);
    send_at(&p, 0x7ff, &[(&f, 100), (&g, 1000)]);
    let sent = eth0.sent.lock().unwrap().clone();
    // A length beyond the buffer is cut at its end (NM_CHECK_ADDR_LEN_OFF).
    assert_eq!(sent, vec![f.clone(), g[..1048].to_vec()]);
    let na = eth0.adapter().unwrap();
    assert!(na.rx_push(0, &f));
    assert_eq!(recv_at(&p, 0x7ff), vec![(f.clone(), 100)]);
    // A frame longer than a buffer minus the max offset: two slots.
    let big = frame(B, A, 2, 1500);
    assert!(na.rx_push(0, &big));
    let got = recv_at(&p, 0x7ff);
    assert_eq!(got.len(), 2);
    assert_eq!(
        got.iter().flat_map(|(d, _)| d.clone()).collect::<Vec<_>>(),
        big
    );
    assert!(got.iter().all(|(d, o)| *o == 100 && d.len() <= 1024));
    // The host TX ring (index 1 of the TX rings): to the host stack from
    // the offset.
    let nifp = p.nifp();
    let htx = p.uring_at(p.ring_ofs(nifp.ni_tx_rings as usize));
    let s0 = htx.slot(htx.head());
    let buf = p.buf(&htx, s0.buf_idx);
    // SAFETY: 100 + 300 bytes within the 2048-byte buffer.
    unsafe { std::ptr::copy_nonoverlapping(f.as_ptr(), buf.wrapping_add(100), f.len()) };
    htx.set_slot(htx.head(), NetmapSlot { len: 300, ..s0 });
    htx.set_head(next(htx.head(), htx.num_slots()));
    htx.set_cur(htx.head());
    p.txsync().unwrap();
    assert_eq!(eth0.to_host.lock().unwrap().clone(), vec![f.clone()]);
}

/// A minimum gap (slots sharing buffers) limits what an emulated NIC
/// writes behind each offset to the gap, below what the maximum offset
/// leaves (the reference's `hwbuf_len`).
#[test]
fn offsets_min_gap_limits_nic_pieces() {
    let eth0 = HostNetif::new("eth0", 1, 64);
    let env = Env::with_nics(std::slice::from_ref(&eth0));
    let reg = NmreqRegister {
        nr_mode: NR_REG_NIC_SW,
        ..NmreqRegister::zeroed()
    };
    let np = env.open();
    let opt = opt_offsets_gap(&env, 11, 1024, 100, 500);
    let reg = register_ofs(&env, &np, "eth0", reg, opt).unwrap();
    assert_eq!(opt_back(&env, opt).nro_opt.nro_status, 0);
    let p = Port::wrap(&env, np, reg);
    let na = eth0.adapter().unwrap();
    let big = frame(B, A, 2, 1200);
    assert!(na.rx_push(0, &big));
    let got = recv_at(&p, 0x7ff);
    let lens: Vec<usize> = got.iter().map(|(d, _)| d.len()).collect();
    assert_eq!(lens, [500, 500, 200]);
    assert_eq!(
        got.iter().flat_map(|(d, _)| d.clone()).collect::<Vec<_>>(),
        big
    );
    assert!(got.iter().all(|(_, o)| *o == 100));
}

/// A copy monitor reads the parent's data at the parent's offsets and
/// writes at its own.
#[test]
fn offsets_and_copy_monitors() {
    let env = Env::new();
    let a = ofs_port(&env, "vale0:a", all(), (12, 256, 0));
    let _b = env.port("vale0:b");
    let mut mreg = all();
    mreg.nr_flags = NR_MONITOR_TX;
    let mt = ofs_port(&env, "vale0:a", mreg, (12, 64, 16));
    let f = frame(B, A, 1, 80);
    send_at(&a, 0xfff, &[(&f, 200)]);
    assert_eq!(recv_at(&mt, 0xfff), vec![(f.clone(), 16)]);
}
