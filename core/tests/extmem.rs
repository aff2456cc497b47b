//! The EXTMEM option (§5, §4.4 step 2): regions over application memory,
//! pinned through the host platform, with fault injection (unmapped and
//! poisoned memory, pin failures) and scattered pages.

mod common;

use common::*;
use netmap_core::Errno;
use netmap_core::host::HostPlatform;
use netmap_core::netmap::NetmapPriv;
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

const MB: usize = 1 << 20;

/// An EXTMEM option for `len` bytes at `usr` with pool sizes `pools`
/// (if, ring, buf: (objsize, objtotal); 0 = default).
fn opt_extmem(env: &Env, usr: u64, len: u64, pools: [(u32, u32); 3]) -> u64 {
    let o = NmreqOptExtmem {
        nro_opt: NmreqOption {
            nro_next: 0,
            nro_reqtype: NETMAP_REQ_OPT_EXTMEM,
            nro_status: 0x55,
            nro_size: 96,
        },
        nro_usrptr: usr,
        nro_info: NmreqPoolsInfo {
            nr_memsize: len,
            nr_if_pool_objsize: pools[0].0,
            nr_if_pool_objtotal: pools[0].1,
            nr_ring_pool_objsize: pools[1].0,
            nr_ring_pool_objtotal: pools[1].1,
            nr_buf_pool_objsize: pools[2].0,
            nr_buf_pool_objtotal: pools[2].1,
            ..NmreqPoolsInfo::zeroed()
        },
    };
    env.p.user_map(o.as_bytes())
}

fn opt_back(env: &Env, addr: u64) -> NmreqOptExtmem {
    NmreqOptExtmem::from_bytes(&env.p.user_read(addr, 96).unwrap()).unwrap()
}

fn register_ext(
    env: &Env,
    np: &NetmapPriv<HostPlatform>,
    name: &str,
    opt: u64,
) -> Result<NmreqRegister, Errno> {
    let mut reg = NmreqRegister {
        nr_mode: NR_REG_ALL_NIC,
        ..NmreqRegister::zeroed()
    };
    env.ctrl_opts(np, NETMAP_REQ_REGISTER, name, Some(&mut reg), opt)?;
    Ok(reg)
}

/// What the application reads in its memory at region offset `off`.
fn read_at<T: Pod>(env: &Env, usr: u64, off: u64) -> T {
    T::from_bytes(
        &env.p
            .user_read(usr + off, core::mem::size_of::<T>())
            .unwrap(),
    )
    .unwrap()
}

fn nifp_ring_ofs(env: &Env, usr: u64, nifp: u64, i: u64) -> u64 {
    let o: i64 = read_at(env, usr, nifp + 56 + 8 * i);
    (nifp as i64 + o) as u64
}

const DEFAULT: [(u32, u32); 3] = [(0, 0), (0, 0), (0, 0)];

#[test]
fn extmem_region_over_application_memory() {
    let env = Env::new();
    let base = env.nm.stats();
    let len = 16 * MB;
    let usr = env.p.user_map(&vec![0u8; len]);
    // Room for the rings of three ports; the rest takes the defaults.
    let pools = [(0, 3), (0, 6), (0, 0)];
    let o = opt_extmem(&env, usr, len as u64, pools);
    let a = env.open();
    let reg = register_ext(&env, &a, "vale0:a", o).unwrap();
    assert_eq!(opt_back(&env, o).nro_opt.nro_status, 0);
    assert_eq!(env.p.pins_live(), 1);
    // Defaults (the private minimums) are written back.
    let pi = opt_back(&env, o).nro_info;
    assert_eq!(
        (
            pi.nr_if_pool_objsize,
            pi.nr_if_pool_objtotal,
            pi.nr_ring_pool_objsize,
            pi.nr_ring_pool_objtotal,
            pi.nr_buf_pool_objsize,
            pi.nr_buf_pool_objtotal
        ),
        (1024, 3, 20480, 6, 2048, 4098)
    );
    assert_ne!(reg.nr_mem_id, 1);
    assert!(reg.nr_memsize <= len as u64, "{}", reg.nr_memsize);
    // The leftover memory became buffers: if 1 page, rings 30 pages,
    // buffers up to the end.
    let mut info = NmreqPoolsInfo {
        nr_mem_id: reg.nr_mem_id,
        ..NmreqPoolsInfo::zeroed()
    };
    env.ctrl(&a, NETMAP_REQ_POOLS_INFO_GET, "vale0:a", Some(&mut info))
        .unwrap();
    assert_eq!(
        (info.nr_if_pool_offset, info.nr_ring_pool_offset),
        (0, 4096)
    );
    assert_eq!(info.nr_buf_pool_offset, 4096 + 30 * 4096);
    let nbufs = (len as u64 - info.nr_buf_pool_offset) / 2048;
    assert_eq!(u64::from(info.nr_buf_pool_objtotal), nbufs);
    assert_eq!(info.nr_memsize, len as u64);
    assert_eq!(reg.nr_memsize, len as u64);
    // The application sees its netmap_if and rings in its own memory.
    let nifp: NetmapIf = read_at(&env, usr, reg.nr_offset);
    assert_eq!(&nifp.ni_name[..8], b"vale0:a\0");
    assert_ne!(nifp.ni_flags & NI_PRIV_MEM, 0);
    let tx_off = nifp_ring_ofs(&env, usr, reg.nr_offset, 0);
    let tx: NetmapRing = read_at(&env, usr, tx_off);
    assert_eq!((tx.num_slots, tx.nr_buf_size, tx.tail), (1024, 2048, 1023));
    assert_eq!(tx_off as i64 + tx.buf_ofs, info.nr_buf_pool_offset as i64);
    // Not mappable through netmap: the application has it.
    assert_eq!(env.nm.mmap_check(&a, 0, 4096), Err(Errno::EINVAL));
    assert!(env.nm.mmap_page(&a, 0).is_none());

    // A second port over the same memory shares the region.
    let o2 = opt_extmem(&env, usr, len as u64, pools);
    let b = env.open();
    let reg_b = register_ext(&env, &b, "vale0:b", o2).unwrap();
    assert_eq!(reg_b.nr_mem_id, reg.nr_mem_id);
    assert_eq!(env.p.pins_live(), 1, "the second pin was released");
    // A third joins by id.
    let c = env.open();
    let mut rc = NmreqRegister {
        nr_mode: NR_REG_ALL_NIC,
        nr_mem_id: reg.nr_mem_id,
        ..NmreqRegister::zeroed()
    };
    env.ctrl(&c, NETMAP_REQ_REGISTER, "vale0:c", Some(&mut rc))
        .unwrap();
    assert_eq!(rc.nr_mem_id, reg.nr_mem_id);

    // Traffic a -> b through the application's memory.
    let s = read_at::<NetmapSlot>(&env, usr, tx_off + 256);
    let f = frame([0xff; 6], [2; 6], 42, 60);
    let buf = (tx_off as i64 + tx.buf_ofs + i64::from(s.buf_idx) * 2048) as u64;
    env.p.user_write(usr + buf, &f).unwrap();
    env.p
        .user_write(usr + tx_off + 256 + 4, &60u16.to_ne_bytes())
        .unwrap();
    env.p
        .user_write(usr + tx_off + 20, &1u32.to_ne_bytes())
        .unwrap();
    env.p
        .user_write(usr + tx_off + 24, &1u32.to_ne_bytes())
        .unwrap();
    env.txsync(&a).unwrap();
    env.rxsync(&b).unwrap();
    let nb: NetmapIf = read_at(&env, usr, reg_b.nr_offset);
    let rx_off = nifp_ring_ofs(
        &env,
        usr,
        reg_b.nr_offset,
        u64::from(nb.ni_tx_rings + nb.ni_host_tx_rings),
    );
    let rx: NetmapRing = read_at(&env, usr, rx_off);
    assert_eq!(rx.tail, 1);
    let rs = read_at::<NetmapSlot>(&env, usr, rx_off + 256);
    assert_eq!(rs.len, 60);
    let rbuf = (rx_off as i64 + rx.buf_ofs + i64::from(rs.buf_idx) * 2048) as u64;
    assert_eq!(env.p.user_read(usr + rbuf, 60).unwrap(), f);

    // The region lives while a port uses it, even once unmapped.
    env.p.user_unmap(usr);
    env.nm.release(a);
    env.nm.release(b);
    assert_eq!(env.p.pins_live(), 1);
    env.nm.release(c);
    assert_eq!(env.p.pins_live(), 0, "unpinned with its last user");
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn extmem_errors() {
    let env = Env::new();
    let base = env.nm.stats();
    let np = env.open();
    let len = 12 * MB;
    let usr = env.p.user_map(&vec![0u8; len]);
    let cases: Vec<(&str, u64, Errno)> = vec![
        (
            "misaligned",
            opt_extmem(&env, usr + 64, len as u64 - 4096, DEFAULT),
            Errno::EINVAL,
        ),
        ("size 0", opt_extmem(&env, usr, 0, DEFAULT), Errno::EINVAL),
        (
            "unmapped",
            opt_extmem(&env, 0x7000_0000_0000, len as u64, DEFAULT),
            Errno::EFAULT,
        ),
        (
            "beyond the mapping",
            opt_extmem(&env, usr, 2 * len as u64, DEFAULT),
            Errno::EFAULT,
        ),
        (
            "wrapping",
            opt_extmem(&env, !4095, 8192, DEFAULT),
            Errno::EFAULT,
        ),
        (
            "too small",
            opt_extmem(&env, usr, 4 * MB as u64, DEFAULT),
            Errno::ENOMEM,
        ),
        (
            "buffer size out of range",
            opt_extmem(&env, usr, len as u64, [(0, 0), (0, 0), (70000, 8)]),
            Errno::EINVAL,
        ),
        (
            "too many netmap_ifs",
            opt_extmem(&env, usr, len as u64, [(1024, 101), (0, 0), (0, 0)]),
            Errno::EINVAL,
        ),
    ];
    for (what, o, want) in cases {
        let r = register_ext(&env, &np, "vale0:a", o);
        assert_eq!(r.err(), Some(want), "{what}");
        assert_eq!(
            opt_back(&env, o).nro_opt.nro_status,
            want.0 as u32,
            "{what}"
        );
        assert!(np.binding().is_none(), "{what}");
        assert_eq!(env.p.pins_live(), 0, "{what}");
    }
    // Poisoned memory cannot be pinned.
    let o = opt_extmem(&env, usr, len as u64, DEFAULT);
    env.p.user_poison(usr + 5 * 4096 + 7);
    assert_eq!(
        register_ext(&env, &np, "vale0:a", o).err(),
        Some(Errno::EFAULT)
    );
    // Pinning fails.
    let usr2 = env.p.user_map(&vec![0u8; len]);
    let o = opt_extmem(&env, usr2, len as u64, DEFAULT);
    env.p.set_pin_budget(Some(0));
    assert_eq!(
        register_ext(&env, &np, "vale0:a", o).err(),
        Some(Errno::ENOMEM)
    );
    env.p.set_pin_budget(None);
    // Two rings in the region: one port fits, a second one does not.
    let o = opt_extmem(&env, usr2, len as u64, [(0, 0), (0, 2), (0, 0)]);
    let y = env.open();
    register_ext(&env, &y, "vale0:y", o).unwrap();
    let r = register_ext(&env, &np, "vale0:a", o);
    assert_eq!(r.err(), Some(Errno::ENOMEM));
    env.txsync(&y).unwrap();
    env.nm.release(y);
    assert_eq!(env.p.pins_live(), 0);
    assert_eq!(env.nm.stats(), base);
    // An existing port keeps its region: the new one goes away unused.
    let x = env.port("vale0:x");
    let o = opt_extmem(&env, usr2, len as u64, DEFAULT);
    let r = register_ext(&env, &np, "vale0:x", o).unwrap();
    assert_eq!(r.nr_mem_id, x.reg.nr_mem_id);
    assert_eq!(env.p.pins_live(), 0);
    env.nm.release(np);
    drop(x);
    assert_eq!(env.nm.stats(), base);
}

/// Scattered pages: objects that would straddle pages not contiguous in
/// the kernel are never handed out; the rest works.
#[test]
fn extmem_scattered_pages() {
    let env = Env::new();
    let base = env.nm.stats();
    let len = 16 * MB;
    // Chunks of 8 pages (32 KiB): ring objects (20 KiB, from offset 4096)
    // 1, 4, 6, 7 and 9 straddle a chunk boundary.
    let usr = env.p.user_map_chunks(&vec![0u8; len], 8);
    let o = opt_extmem(&env, usr, len as u64, [(0, 4), (0, 12), (0, 0)]);
    let mut ports = Vec::new();
    let mut rings = Vec::new();
    for p in ["a", "b", "c", "d"] {
        let np = env.open();
        let name = format!("vale0:{p}");
        match register_ext(&env, &np, &name, o) {
            Ok(reg) => {
                let nifp: NetmapIf = read_at(&env, usr, reg.nr_offset);
                for i in [0, u64::from(nifp.ni_tx_rings + nifp.ni_host_tx_rings)] {
                    rings.push(nifp_ring_ofs(&env, usr, reg.nr_offset, i));
                }
                ports.push(np);
            }
            Err(e) => {
                assert_eq!(e, Errno::ENOMEM, "{name}");
                env.nm.release(np);
            }
        }
    }
    // 12 ring objects at 4096 + j·20480; those crossing a 32 KiB boundary
    // are invalid.
    let valid: Vec<u64> = (0..12u64)
        .map(|j| 4096 + j * 20480)
        .filter(|o| o / 32768 == (o + 20480 - 1) / 32768)
        .collect();
    assert_eq!(valid.len(), 7, "{valid:?}");
    assert_eq!(ports.len(), 3, "7 valid rings: three ports of two");
    for r in &rings {
        assert!(valid.contains(r), "ring at {r} straddles a chunk boundary");
    }
    // Every ring is usable from the application's memory.
    for &r in &rings {
        let h: NetmapRing = read_at(&env, usr, r);
        assert_eq!(h.num_slots, 1024);
    }
    for np in ports {
        env.nm.release(np);
    }
    assert_eq!(env.p.pins_live(), 0);
    assert_eq!(env.nm.stats(), base);
}
