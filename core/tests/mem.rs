//! Integration tests of the netmap memory allocator (spec §5) on the host
//! platform.

use netmap_core::error::Errno;
use netmap_core::host::HostPlatform;
use netmap_core::mem::{MemBudget, MemParams, MemStats, NetmapMem, PoolParams};
use netmap_core::platform::PAGE_SIZE;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A budget that never refuses (the tests of the budget make their own).
fn unlimited() -> Arc<MemBudget> {
    Arc::new(MemBudget::new(u64::MAX))
}

/// Private allocator of a default ephemeral VALE port (§5.5).
fn vale_params() -> MemParams {
    MemParams::private_for(&MemParams::private_default(), 1, 1, 1024, 1024, 0, 2)
}

fn small_private(p: &HostPlatform, nbufs: u32) -> NetmapMem<HostPlatform> {
    let mut params = MemParams::private_default();
    params.buf_pool.objtotal = nbufs;
    NetmapMem::new(p.clone(), 7, &params, true, unlimited()).unwrap()
}

#[test]
fn send_sync() {
    fn check<T: Send + Sync>() {}
    check::<NetmapMem<HostPlatform>>();
    check::<Arc<NetmapMem<HostPlatform>>>();
    check::<netmap_core::mem::MemObj>();
}

#[test]
fn defaults() {
    let g = MemParams::global_default();
    assert_eq!(
        g.if_pool,
        PoolParams {
            objsize: 1024,
            objtotal: 100
        }
    );
    assert_eq!(
        g.ring_pool,
        PoolParams {
            objsize: 36864,
            objtotal: 200
        }
    );
    assert_eq!(
        g.buf_pool,
        PoolParams {
            objsize: 2048,
            objtotal: 163840
        }
    );
    let p = MemParams::private_default();
    assert_eq!((p.if_pool.objsize, p.if_pool.objtotal), (1024, 2));
    assert_eq!((p.ring_pool.objsize, p.ring_pool.objtotal), (20480, 4));
    assert_eq!((p.buf_pool.objsize, p.buf_pool.objtotal), (2048, 4098));
}

#[test]
fn private_for_formulas() {
    let min = MemParams::private_default();
    let v = vale_params();
    assert_eq!((v.if_pool.objsize, v.if_pool.objtotal), (1024, 10));
    assert_eq!((v.ring_pool.objsize, v.ring_pool.objtotal), (20480, 20));
    assert_eq!((v.buf_pool.objsize, v.buf_pool.objtotal), (2048, 20482));
    // Copy monitor: P = 0, E = 0.
    assert_eq!(MemParams::private_for(&min, 1, 1, 1024, 1024, 0, 0), min);
    // Big rings raise the object sizes; extra buffers add up.
    let b = MemParams::private_for(&min, 200, 100, 4096, 2048, 1000, 0);
    assert_eq!(b.if_pool.objsize, 56 + 8 * (201 + 101));
    assert_eq!(b.ring_pool.objsize, 256 + 16 * 4096);
    assert_eq!(b.ring_pool.objtotal, 302);
    assert_eq!(b.buf_pool.objtotal, 101 * 2048 + 201 * 4096 + 2 + 1000);
    // Absurd values saturate instead of wrapping, and are then refused.
    let h = MemParams::private_for(
        &min,
        u32::MAX,
        u32::MAX,
        u32::MAX,
        u32::MAX,
        u32::MAX,
        u32::MAX,
    );
    assert_eq!(h.buf_pool.objtotal, u32::MAX);
    let p = HostPlatform::new();
    assert_eq!(
        NetmapMem::new(p, 2, &h, true, unlimited()).unwrap_err(),
        Errno::EINVAL
    );
}

#[test]
fn global_geometry_and_pools_info() {
    let p = HostPlatform::new();
    let m = NetmapMem::new(
        p.clone(),
        1,
        &MemParams::global_default(),
        false,
        unlimited(),
    )
    .unwrap();
    assert_eq!(m.memsize(), 343019520);
    assert_eq!(m.id(), 1);
    assert!(!m.is_private());
    assert!(!m.is_finalized());
    assert_eq!(m.buf_pool_offset(), 7475200);
    assert_eq!(m.buf_count(), 163840);
    assert_eq!(m.buf_size(), 2048);
    assert_eq!(p.clusters_live().0, 0);

    // pools_info finalizes (343 MB on the host: the only global finalize).
    let info = m.pools_info().unwrap();
    assert!(m.is_finalized());
    assert_eq!(info.nr_memsize, 343019520);
    assert_eq!(info.nr_mem_id, 1);
    assert_eq!(
        (
            info.nr_if_pool_offset,
            info.nr_if_pool_objtotal,
            info.nr_if_pool_objsize
        ),
        (0, 100, 1024)
    );
    assert_eq!(
        (
            info.nr_ring_pool_offset,
            info.nr_ring_pool_objtotal,
            info.nr_ring_pool_objsize
        ),
        (102400, 200, 36864)
    );
    assert_eq!(
        (
            info.nr_buf_pool_offset,
            info.nr_buf_pool_objtotal,
            info.nr_buf_pool_objsize
        ),
        (7475200, 163840, 2048)
    );
    assert_eq!(m.memsize(), 343019520);
    // 25 if clusters + 200 ring clusters + 81920 buffer clusters.
    let clusters = 25 + 200 + 81920;
    assert_eq!(m.stats().clusters, clusters);
    assert_eq!(p.clusters_live(), (clusters as usize, 343019520));

    // Spot-check the buffer/page correspondence at the far end.
    let last = m.buf_count() - 1;
    let off = m.buf_pool_offset() + u64::from(last) * 2048;
    let page = m.page_at(off).unwrap();
    assert_eq!(
        page.as_ptr() as usize + (off as usize % PAGE_SIZE),
        m.buf(last).as_ptr() as usize
    );
    assert_eq!(m.page_at(343019520 - 1).map(|_| ()), Some(()));
    assert!(m.page_at(343019520).is_none());

    drop(m);
    assert_eq!(p.clusters_live(), (0, 0));
}

#[test]
fn vale_port_geometry() {
    let p = HostPlatform::new();
    let m = NetmapMem::new(p.clone(), 2, &vale_params(), true, unlimited()).unwrap();
    assert!(m.is_private());
    assert_eq!(m.memsize(), 42369024);
    assert_eq!(m.buf_pool_offset(), 421888);
    let info = m.pools_info().unwrap();
    assert_eq!(info.nr_mem_id, 2);
    assert_eq!(info.nr_memsize, 42369024);
    assert_eq!(
        (
            info.nr_if_pool_offset,
            info.nr_if_pool_objtotal,
            info.nr_if_pool_objsize
        ),
        (0, 12, 1024)
    );
    assert_eq!(
        (
            info.nr_ring_pool_offset,
            info.nr_ring_pool_objtotal,
            info.nr_ring_pool_objsize
        ),
        (12288, 20, 20480)
    );
    assert_eq!(
        (
            info.nr_buf_pool_offset,
            info.nr_buf_pool_objtotal,
            info.nr_buf_pool_objsize
        ),
        (421888, 20482, 2048)
    );
    // Clusters: 3 if, 20 ring, 10241 buffer.
    assert_eq!(m.stats().clusters, 3 + 20 + 10241);
    assert_eq!(p.clusters_live(), (10264, 42369024));
}

#[test]
fn copy_monitor_geometry() {
    let p = HostPlatform::new();
    let min = MemParams::private_default();
    let params = MemParams::private_for(&min, 1, 1, 1024, 1024, 0, 0);
    let m = NetmapMem::new(p, 3, &params, true, unlimited()).unwrap();
    assert_eq!(m.memsize(), 8478720);
    assert_eq!(m.buf_pool_offset(), 4096 + 81920);
    // Private minimums are valid as they are; the global if-count minimum
    // (10) is not met by them.
    let p = HostPlatform::new();
    assert_eq!(
        NetmapMem::new(p, 4, &min, false, unlimited()).unwrap_err(),
        Errno::EINVAL
    );
}

#[test]
fn vale_port_allocation_order() {
    // §5.5: RX ring object 0 at 12288, TX ring object 1 at 32768, then the
    // netmap_if at 0; RX slots get buffers 2..1025, TX slots 1026..2049.
    let p = HostPlatform::new();
    let m = NetmapMem::new(p, 2, &vale_params(), true, unlimited()).unwrap();
    m.finalize().unwrap();
    let ring_bytes = 256 + 16 * 1024;
    let rx = m.ring_alloc(ring_bytes).unwrap();
    assert_eq!(rx.offset, 12288);
    assert_eq!(rx.size, 20480);
    let rxb: Vec<u32> = (0..1024).map(|_| m.buf_alloc().unwrap()).collect();
    let tx = m.ring_alloc(ring_bytes).unwrap();
    assert_eq!(tx.offset, 32768);
    let txb: Vec<u32> = (0..1024).map(|_| m.buf_alloc().unwrap()).collect();
    assert_eq!(rxb, (2..1026).collect::<Vec<_>>());
    assert_eq!(txb, (1026..2050).collect::<Vec<_>>());
    let nifp = m.if_alloc(56 + 8 * 4).unwrap();
    assert_eq!(nifp.offset, 0);
    assert_eq!(nifp.size, 1024);
    // buf_ofs of each ring (§5.5).
    assert_eq!(m.buf_pool_offset() - tx.offset, 389120);
    assert_eq!(m.buf_pool_offset() - rx.offset, 409600);
    let (head, n) = m.extra_bufs_alloc(2);
    assert_eq!((head, n), (2051, 2));
    assert_eq!(
        m.stats(),
        MemStats {
            if_used: 1,
            ring_used: 2,
            buf_used: 2050,
            clusters: 3 + 20 + 10241
        }
    );
}

#[test]
fn range_validation() {
    let p = HostPlatform::new();
    let base = MemParams::private_default();
    let bad = |f: &dyn Fn(&mut MemParams), private: bool| {
        let mut params = base;
        if !private {
            params.if_pool.objtotal = 10;
        }
        f(&mut params);
        NetmapMem::new(p.clone(), 9, &params, private, unlimited()).map(|m| m.memsize())
    };
    let einval = Err(Errno::EINVAL);
    // netmap_if pool: objsize 56..4096 (after rounding to 64), count
    // 10..10000 global, 1..100 private.
    assert_eq!(bad(&|m| m.if_pool.objsize = 4097, true), einval);
    assert_eq!(bad(&|m| m.if_pool.objsize = 0, true), einval);
    assert!(bad(&|m| m.if_pool.objsize = 1, true).is_ok()); // rounds to 64
    assert!(bad(&|m| m.if_pool.objsize = 4096, true).is_ok());
    assert_eq!(bad(&|m| m.if_pool.objtotal = 0, true), einval);
    assert_eq!(bad(&|m| m.if_pool.objtotal = 101, true), einval);
    assert!(bad(&|m| m.if_pool.objtotal = 100, true).is_ok());
    assert!(bad(&|m| m.if_pool.objtotal = 1, true).is_ok());
    assert_eq!(bad(&|m| m.if_pool.objtotal = 9, false), einval);
    assert_eq!(bad(&|m| m.if_pool.objtotal = 10001, false), einval);
    assert!(bad(&|m| m.if_pool.objtotal = 10000, false).is_ok());
    // Ring pool: objsize 256..131072, count 2..1024.
    assert_eq!(bad(&|m| m.ring_pool.objsize = 192, true), einval);
    assert!(bad(&|m| m.ring_pool.objsize = 193, true).is_ok()); // rounds to 256
    assert_eq!(bad(&|m| m.ring_pool.objsize = 131073, true), einval);
    assert!(bad(&|m| m.ring_pool.objsize = 131072, true).is_ok());
    assert_eq!(bad(&|m| m.ring_pool.objtotal = 1, false), einval);
    assert_eq!(bad(&|m| m.ring_pool.objtotal = 1025, false), einval);
    // Buffer pool: objsize 64..65536, count 4..1000000.
    assert_eq!(bad(&|m| m.buf_pool.objsize = 0, true), einval);
    assert_eq!(bad(&|m| m.buf_pool.objsize = 65537, true), einval);
    assert_eq!(bad(&|m| m.buf_pool.objsize = u32::MAX, true), einval);
    assert_eq!(bad(&|m| m.buf_pool.objtotal = 3, false), einval);
    assert_eq!(bad(&|m| m.buf_pool.objtotal = 1_000_001, false), einval);
    assert!(bad(&|m| m.buf_pool.objtotal = 1_000_000, false).is_ok());
    assert_eq!(p.clusters_live().0, 0);
}

#[test]
fn objsize_rounding_and_cluster_rounding() {
    let p = HostPlatform::new();
    let mut params = MemParams::private_default();
    params.if_pool = PoolParams {
        objsize: 100, // -> 128, 32 per cluster
        objtotal: 3,
    };
    params.ring_pool = PoolParams {
        objsize: 5000, // -> 5056 = 79·64, 64 per cluster
        objtotal: 2,
    };
    params.buf_pool = PoolParams {
        objsize: 1500, // -> 1536, 8 per 12288-byte cluster
        objtotal: 9,
    };
    let m = NetmapMem::new(p.clone(), 5, &params, true, unlimited()).unwrap();
    let info = m.pools_info().unwrap();
    assert_eq!(
        (info.nr_if_pool_objsize, info.nr_if_pool_objtotal),
        (128, 32)
    );
    assert_eq!(
        (info.nr_ring_pool_objsize, info.nr_ring_pool_objtotal),
        (5056, 64)
    );
    assert_eq!(
        (info.nr_buf_pool_objsize, info.nr_buf_pool_objtotal),
        (1536, 16)
    );
    assert_eq!(info.nr_ring_pool_offset, 4096);
    assert_eq!(info.nr_buf_pool_offset, 4096 + 5056 * 64);
    assert_eq!(info.nr_memsize, 4096 + 5056 * 64 + 2 * 12288);
    assert_eq!(info.nr_memsize % PAGE_SIZE as u64, 0);
    assert_eq!(m.buf_size(), 1536);
    assert_eq!(m.buf(5).size(), 1536);
    assert_eq!(m.stats().clusters, 1 + 1 + 2);
    // Objects bigger than the (rounded) object size are refused.
    assert_eq!(m.if_alloc(129).unwrap_err(), Errno::ENOMEM);
    assert_eq!(m.if_alloc(128).unwrap().size, 128);
    assert_eq!(m.ring_alloc(5057).unwrap_err(), Errno::ENOMEM);
}

#[test]
fn buffer_allocation() {
    let p = HostPlatform::new();
    let m = small_private(&p, 8);
    // Before finalize nothing can be allocated.
    assert_eq!(m.buf_alloc().unwrap_err(), Errno::ENOMEM);
    assert_eq!(m.if_alloc(64).unwrap_err(), Errno::ENOMEM);
    assert_eq!(m.ring_alloc(256).unwrap_err(), Errno::ENOMEM);
    assert!(!m.buf_free(2));
    assert_eq!(m.stats(), MemStats::default());
    assert_eq!(m.buf(3).size(), 0);
    assert_eq!(m.buf(3).read_u32(), 0);
    assert!(m.page_at(0).is_none());
    assert_eq!(m.extra_bufs_alloc(3), (0, 0));
    assert_eq!(m.extra_bufs_free(2), 0);

    m.finalize().unwrap();
    m.finalize().unwrap(); // idempotent
    assert_eq!(m.buf_count(), 8);
    let got: Vec<u32> = (0..6).map(|_| m.buf_alloc().unwrap()).collect();
    assert_eq!(got, vec![2, 3, 4, 5, 6, 7]);
    assert_eq!(m.buf_alloc().unwrap_err(), Errno::ENOMEM);
    assert_eq!(m.stats().buf_used, 6);

    assert!(!m.buf_free(0));
    assert!(!m.buf_free(1));
    assert!(!m.buf_free(8));
    assert!(!m.buf_free(u32::MAX));
    assert!(m.buf_free(5));
    assert!(!m.buf_free(5)); // double free
    assert!(m.buf_free(3));
    assert_eq!(m.stats().buf_used, 4);
    // Lowest free first.
    assert_eq!(m.buf_alloc().unwrap(), 3);
    assert_eq!(m.buf_alloc().unwrap(), 5);
    assert_eq!(m.stats().buf_used, 6);

    assert!(!m.buf_valid(0));
    assert!(!m.buf_valid(1));
    assert!(m.buf_valid(2));
    assert!(m.buf_valid(7));
    assert!(!m.buf_valid(8));
}

#[test]
fn object_allocation() {
    let p = HostPlatform::new();
    let m = small_private(&p, 4098);
    m.finalize().unwrap();
    // Private minimums: 4 netmap_if objects of 1024, 4 rings of 20480.
    let ifs: Vec<_> = (0..4).map(|_| m.if_alloc(1024).unwrap()).collect();
    let offs: Vec<u64> = ifs.iter().map(|o| o.offset).collect();
    assert_eq!(offs, vec![0, 1024, 2048, 3072]);
    assert_eq!(m.if_alloc(56).unwrap_err(), Errno::ENOMEM);
    m.if_free(ifs[1]);
    m.if_free(ifs[1]); // double free: ignored (logged)
    assert_eq!(m.stats().if_used, 3);
    assert_eq!(m.if_alloc(56).unwrap().offset, 1024);
    assert_eq!(m.stats().if_used, 4);

    let rings: Vec<_> = (0..4).map(|_| m.ring_alloc(20480).unwrap()).collect();
    for (j, r) in rings.iter().enumerate() {
        assert_eq!(r.offset, 4096 + j as u64 * 20480);
        assert_eq!(r.size, 20480);
    }
    assert_eq!(m.ring_alloc(256).unwrap_err(), Errno::ENOMEM);
    // A ring object handed to the if pool is refused.
    m.if_free(rings[0]);
    assert_eq!(m.stats().if_used, 4);
    assert_eq!(m.stats().ring_used, 4);
    // A forged object (right offset, wrong address) is refused too.
    let mut forged = rings[2];
    forged.kaddr = rings[3].kaddr;
    m.ring_free(forged);
    assert_eq!(m.stats().ring_used, 4);
    m.ring_free(rings[2]);
    assert_eq!(m.stats().ring_used, 3);
    assert_eq!(m.ring_alloc(300).unwrap().offset, rings[2].offset);

    // Objects are writable for their whole size and zeroed at first.
    let r = rings[0];
    // SAFETY: the object is allocated, r.size bytes long, and not shared.
    let bytes = unsafe { std::slice::from_raw_parts_mut(r.kaddr.as_ptr(), r.size) };
    assert!(bytes.iter().all(|&b| b == 0));
    bytes.fill(0xa5);
}

#[test]
fn addresses_and_pages() {
    let p = HostPlatform::new();
    let m = NetmapMem::new(p.clone(), 2, &vale_params(), true, unlimited()).unwrap();
    m.finalize().unwrap();
    let bs = u64::from(m.buf_size());
    for k in [0u32, 1, 2, 3, 1000, 1001, m.buf_count() - 1] {
        let off = m.buf_pool_offset() + u64::from(k) * bs;
        let page = m.page_at(off).unwrap();
        assert_eq!(off % PAGE_SIZE as u64, (u64::from(k) % 2) * bs);
        assert_eq!(
            page.as_ptr() as usize + (off % PAGE_SIZE as u64) as usize,
            m.buf(k).as_ptr() as usize,
            "buffer {k}"
        );
        // Any offset inside the page gives the same page.
        assert_eq!(m.page_at(off + 17), Some(page));
    }
    // Out-of-range indexes map to buffer 0 (§5.3).
    assert_eq!(m.buf(m.buf_count()).as_ptr(), m.buf(0).as_ptr());
    assert_eq!(m.buf(u32::MAX).as_ptr(), m.buf(0).as_ptr());
    assert_eq!(m.buf(u32::MAX).size(), m.buf_size());
    // Distinct buffers do not overlap and keep their content.
    m.buf(2).write(0, b"hello");
    m.buf(3).write(0, b"world");
    let mut out = [0u8; 5];
    m.buf(2).read(0, &mut out);
    assert_eq!(&out, b"hello");

    // Ring objects: consecutive in the region, page_at agrees with kaddr.
    let objs: Vec<_> = (0..5).map(|_| m.ring_alloc(256).unwrap()).collect();
    for (j, o) in objs.iter().enumerate() {
        assert_eq!(o.offset, 12288 + j as u64 * 20480);
        for delta in [0u64, 4096, 8192, 16384] {
            let page = m.page_at(o.offset + delta).unwrap();
            assert_eq!(
                page.as_ptr() as usize,
                o.kaddr.as_ptr() as usize + delta as usize
            );
        }
    }
    // netmap_if objects: 4 per page.
    let ifs: Vec<_> = (0..5).map(|_| m.if_alloc(64).unwrap()).collect();
    for (j, o) in ifs.iter().enumerate() {
        assert_eq!(o.offset, j as u64 * 1024);
        let page = m.page_at(o.offset).unwrap();
        assert_eq!(
            page.as_ptr() as usize + (o.offset % 4096) as usize,
            o.kaddr.as_ptr() as usize
        );
    }
    // Every page of the region is mapped, and only those.
    let mut seen = HashSet::new();
    let mut off = 0;
    while off < m.memsize() {
        let page = m.page_at(off).unwrap();
        assert_eq!(page.as_ptr() as usize % PAGE_SIZE, 0);
        assert!(
            seen.insert(page.as_ptr() as usize),
            "page at {off} repeated"
        );
        off += PAGE_SIZE as u64;
    }
    assert_eq!(seen.len() as u64, m.memsize() / PAGE_SIZE as u64);
    assert!(m.page_at(m.memsize()).is_none());
    assert!(m.page_at(u64::MAX).is_none());
}

#[test]
fn extra_buffers() {
    let p = HostPlatform::new();
    let m = small_private(&p, 4098);
    m.finalize().unwrap();
    let first = m.buf_alloc().unwrap();
    assert_eq!(first, 2);
    let (head, n) = m.extra_bufs_alloc(5);
    assert_eq!(n, 5);
    // Pushed at the head: 7 -> 6 -> 5 -> 4 -> 3 -> 0.
    assert_eq!(head, 7);
    let mut chain = vec![];
    let mut i = head;
    while i != 0 {
        chain.push(i);
        i = m.buf(i).read_u32();
    }
    assert_eq!(chain, vec![7, 6, 5, 4, 3]);
    assert_eq!(m.stats().buf_used, 6);

    // The user keeps 7 (swapped into a ring) and gives back 6 -> 5 -> 4 -> 3.
    let freed = m.extra_bufs_free(6);
    assert_eq!(freed, 4);
    for k in 3..=6 {
        assert_eq!(m.buf(k).read_u32(), 0, "link of {k} cleared");
    }
    assert_eq!(m.stats().buf_used, 2);
    assert!(m.buf_free(7));
    assert!(m.buf_free(2));
    assert_eq!(m.stats().buf_used, 0);

    // Zero requested: empty list.
    assert_eq!(m.extra_bufs_alloc(0), (0, 0));
    assert_eq!(m.extra_bufs_free(0), 0);
}

#[test]
fn extra_buffers_hostile_lists() {
    let p = HostPlatform::new();
    let m = small_private(&p, 4098);
    m.finalize().unwrap();

    // A user-made cycle 4 -> 3 -> 2 -> 4 terminates at the double free.
    let (head, n) = m.extra_bufs_alloc(3);
    assert_eq!((head, n), (4, 3));
    m.buf(2).write_u32(4);
    assert_eq!(m.extra_bufs_free(head), 3);
    assert_eq!(m.stats().buf_used, 0);
    // The link word of the already-free buffer 4 was cleared when freed.
    assert_eq!(m.buf(4).read_u32(), 0);

    // A self-loop.
    let (head, _) = m.extra_bufs_alloc(1);
    m.buf(head).write_u32(head);
    assert_eq!(m.extra_bufs_free(head), 1);

    // Invalid indexes stop the walk: 0, 1, out of range.
    let (head, n) = m.extra_bufs_alloc(3); // 4 -> 3 -> 2
    assert_eq!((head, n), (4, 3));
    m.buf(3).write_u32(1);
    assert_eq!(m.extra_bufs_free(head), 2); // 4, 3; 1 is reserved
    assert_eq!(m.stats().buf_used, 1);
    assert!(m.buf_free(2));
    let (head, _) = m.extra_bufs_alloc(2); // 3 -> 2
    m.buf(2).write_u32(m.buf_count());
    assert_eq!(m.extra_bufs_free(head), 2);
    assert_eq!(m.extra_bufs_free(u32::MAX), 0);
    assert_eq!(m.extra_bufs_free(1), 0);
    assert_eq!(m.stats().buf_used, 0);

    // A head pointing at a free buffer frees nothing.
    assert_eq!(m.extra_bufs_free(100), 0);

    // A list running into a ring buffer still in use frees it (the
    // reference does the same; it is the user's own region).
    let ring_buf = m.buf_alloc().unwrap();
    let (head, _) = m.extra_bufs_alloc(1);
    m.buf(head).write_u32(ring_buf);
    assert_eq!(m.extra_bufs_free(head), 2);
    assert_eq!(m.stats().buf_used, 0);

    // Pool exhaustion: obtain what is left.
    let total = m.buf_count() - 2;
    let (head, n) = m.extra_bufs_alloc(total + 10);
    assert_eq!(n, total);
    assert_eq!(head, m.buf_count() - 1);
    assert_eq!(m.buf_alloc().unwrap_err(), Errno::ENOMEM);
    assert_eq!(m.extra_bufs_free(head), total);
    assert_eq!(m.stats().buf_used, 0);
}

#[test]
fn finalize_fault_injection_and_drop() {
    let p = HostPlatform::new();
    let m = NetmapMem::new(p.clone(), 2, &vale_params(), true, unlimited()).unwrap();
    let total: u64 = 3 + 20 + 10241;
    // Fail in each pool: first cluster, inside the ring pool, the last one.
    for budget in [0, 1, 3, 10, total - 1] {
        p.set_cluster_budget(Some(budget));
        assert_eq!(m.finalize().unwrap_err(), Errno::ENOMEM, "budget {budget}");
        assert!(!m.is_finalized());
        assert_eq!(p.clusters_live(), (0, 0), "budget {budget}");
        assert_eq!(m.buf_alloc().unwrap_err(), Errno::ENOMEM);
        assert_eq!(m.pools_info().unwrap_err(), Errno::ENOMEM);
        assert_eq!(m.stats(), MemStats::default());
        assert_eq!(m.memsize(), 42369024);
    }
    p.set_cluster_budget(Some(total));
    m.finalize().unwrap();
    assert_eq!(p.clusters_live(), (total as usize, 42369024));
    p.set_cluster_budget(None);
    assert_eq!(m.buf_alloc().unwrap(), 2);
    drop(m);
    assert_eq!(p.clusters_live(), (0, 0));

    // Dropping an allocator that was never finalized frees nothing.
    let m = NetmapMem::new(p.clone(), 3, &vale_params(), true, unlimited()).unwrap();
    drop(m);
    assert_eq!(p.clusters_live(), (0, 0));
}

#[test]
fn concurrent_finalize() {
    let p = HostPlatform::new();
    let m = Arc::new(small_private(&p, 4098));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || m.finalize())
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    let clusters = m.stats().clusters;
    assert_eq!(p.clusters_live().0, clusters as usize);
    drop(m);
    assert_eq!(p.clusters_live().0, 0);
}

#[test]
fn concurrent_buffers_unique() {
    const THREADS: u32 = 4;
    const ROUNDS: u32 = 300;
    let p = HostPlatform::new();
    let m = Arc::new(small_private(&p, 4098));
    m.finalize().unwrap();
    let owned: Arc<Vec<AtomicBool>> =
        Arc::new((0..m.buf_count()).map(|_| AtomicBool::new(false)).collect());
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let m = m.clone();
            let owned = owned.clone();
            std::thread::spawn(move || {
                let tag = |b: u32| ((t << 24) | b).to_ne_bytes();
                let mut mine = Vec::new();
                let take = |b: u32, mine: &mut Vec<u32>| {
                    assert!(m.buf_valid(b));
                    assert!(!owned[b as usize].swap(true, Ordering::SeqCst), "{b} twice");
                    m.buf(b).write(4, &tag(b));
                    mine.push(b);
                };
                for round in 0..ROUNDS {
                    // Alternate bursts of single and extra-list allocations.
                    for _ in 0..(round % 7) + 1 {
                        if let Ok(b) = m.buf_alloc() {
                            take(b, &mut mine);
                        }
                    }
                    let (mut i, n) = m.extra_bufs_alloc(3);
                    for _ in 0..n {
                        let next = m.buf(i).read_u32();
                        take(i, &mut mine);
                        i = next;
                    }
                    assert_eq!(i, 0);
                    // Free about half of what we hold, checking that nobody
                    // else wrote into our buffers.
                    let keep = mine.len() / 2;
                    for b in mine.drain(keep..) {
                        let mut out = [0u8; 4];
                        m.buf(b).read(4, &mut out);
                        assert_eq!(out, tag(b));
                        owned[b as usize].store(false, Ordering::SeqCst);
                        assert!(m.buf_free(b));
                    }
                }
                for b in mine {
                    owned[b as usize].store(false, Ordering::SeqCst);
                    assert!(m.buf_free(b));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(m.stats().buf_used, 0);
    assert!(owned.iter().all(|o| !o.load(Ordering::SeqCst)));
}

/// The footprint a region charges: its clusters plus one lookup-table
/// pointer and one bitmap bit (in 64-bit words) per object of each pool.
#[test]
fn footprint_counts_clusters_tables_and_bitmaps() {
    let p = HostPlatform::new();
    let m = NetmapMem::new(p.clone(), 2, &vale_params(), true, unlimited()).unwrap();
    let objs: u64 = m
        .pool_geometry()
        .iter()
        .map(|g| {
            let n = u64::from(g.objtotal);
            n * 8 + n.div_ceil(64) * 8
        })
        .sum();
    assert_eq!(m.footprint(), m.memsize() + objs);
}

/// A region is charged to the budget before any cluster is allocated, and
/// refused (ENOMEM, a clear log line) without touching the OS when it does
/// not fit; what a region charged comes back when it is dropped.
#[test]
fn budget_checked_before_building_and_given_back() {
    let p = HostPlatform::new();
    let fp = NetmapMem::new(p.clone(), 2, &vale_params(), true, unlimited())
        .unwrap()
        .footprint();
    // Room for one region, not for two.
    let budget = Arc::new(MemBudget::new(2 * fp - 1));
    let a = NetmapMem::new(p.clone(), 3, &vale_params(), true, budget.clone()).unwrap();
    let b = NetmapMem::new(p.clone(), 4, &vale_params(), true, budget.clone()).unwrap();
    assert_eq!(budget.used(), 0, "creating a region charges nothing");
    a.finalize().unwrap();
    assert_eq!(budget.used(), fp);
    assert!(a.is_charged());
    let live = p.clusters_live();
    // Any cluster allocation would now fail: b must be refused before it
    // asks for one (a refusal, not an allocation failure).
    p.set_cluster_budget(Some(0));
    assert_eq!(b.finalize().unwrap_err(), Errno::ENOMEM);
    assert!(!b.is_finalized() && !b.is_charged());
    assert_eq!((budget.refused(), budget.alloc_failures()), (1, 0));
    assert_eq!(p.clusters_live(), live);
    assert_eq!(budget.used(), fp);
    let msg = p.log_messages().pop().unwrap();
    assert!(
        msg.contains("does not fit in netmap's memory budget") && msg.contains("max_mem_mb"),
        "log line: {msg}"
    );
    p.set_cluster_budget(None);
    drop(a);
    assert_eq!(budget.used(), 0);
    assert_eq!(p.clusters_live(), (0, 0));
    // Room again: b builds.
    b.finalize().unwrap();
    assert_eq!(budget.used(), fp);
    drop(b);
    assert_eq!(budget.used(), 0);
}

/// The OS failing a cluster (out of memory) in the middle of a build:
/// every cluster obtained and the budget charge are given back.
#[test]
fn allocation_failure_gives_back_clusters_and_budget() {
    let p = HostPlatform::new();
    let budget = Arc::new(MemBudget::new(u64::MAX));
    let m = NetmapMem::new(p.clone(), 2, &vale_params(), true, budget.clone()).unwrap();
    p.set_cluster_budget(Some(100));
    assert_eq!(m.finalize().unwrap_err(), Errno::ENOMEM);
    assert_eq!(p.clusters_live(), (0, 0));
    assert_eq!((budget.used(), budget.alloc_failures()), (0, 1));
    assert!(p.log_messages().pop().unwrap().contains("out of memory"));
    p.set_cluster_budget(None);
    m.finalize().unwrap();
    assert_eq!(budget.used(), m.footprint());
}

/// A reservation made ahead of the build (the global region's, at load)
/// survives a failed build: the region keeps its share.
#[test]
fn reservation_ahead_of_build_is_kept_on_failure() {
    let p = HostPlatform::new();
    let budget = Arc::new(MemBudget::new(u64::MAX));
    let m = NetmapMem::new(p.clone(), 1, &vale_params(), false, budget.clone()).unwrap();
    m.reserve().unwrap();
    m.reserve().unwrap();
    assert_eq!(budget.used(), m.footprint(), "reserved once");
    p.set_cluster_budget(Some(5));
    assert_eq!(m.finalize().unwrap_err(), Errno::ENOMEM);
    assert_eq!(budget.used(), m.footprint());
    p.set_cluster_budget(None);
    m.finalize().unwrap();
    assert_eq!(budget.used(), m.footprint());
    drop(m);
    assert_eq!(budget.used(), 0);
}

/// A user repeating a refused request does not flood the log: at most a
/// burst of lines per interval, every refusal counted.
#[test]
fn refusals_are_logged_rate_limited() {
    use netmap_core::platform::RateLimit;
    let p = HostPlatform::new();
    let budget = Arc::new(MemBudget::new(4096));
    let m = NetmapMem::new(p.clone(), 2, &vale_params(), true, budget.clone()).unwrap();
    let before = p.log_lines();
    for _ in 0..100 {
        assert_eq!(m.finalize().unwrap_err(), Errno::ENOMEM);
    }
    assert_eq!(budget.refused(), 100);
    let lines = p.log_lines() - before;
    assert!(
        (1..=u64::from(RateLimit::BURST) + 1).contains(&lines),
        "{lines} log lines for 100 refusals"
    );
}
