//! Request sequences (spec §4) on several open files: REGISTER on VALE,
//! pipe, null and plain names with random modes, flags, ring and slot
//! counts, mem ids and extra buffers; PORT_INFO_GET, POOLS_INFO_GET,
//! VALE_LIST, PORT_HDR_SET/GET, VALE_ATTACH/DETACH/NEWIF/DELIF/POLLING,
//! syncs and poll; CSB mode (the CSB option on REGISTER, CSB_ENABLE) with
//! arbitrary application pointers stored in the CSB, SYNC_KLOOP_START with
//! the mode and eventfd options (a few passes, then "signalled"), STOP;
//! the OFFSETS option on REGISTER; the EXTMEM option on REGISTER over simulated application memory (in
//! one piece or scattered page by page; sometimes misaligned, too short or
//! poisoned; pin failures injected); user stores to `ni_bufs_head` and to the extra-buffer
//! links; frames received by the fake NIC (also while it is attached to a
//! switch, or polled by kernel threads), transparent mode (NR_FORWARD /
//! NS_FORWARD) on its rings; files closed in any order; and
//! cluster-allocation fault injection (`set_cluster_budget`) switched on
//! and off at random points.
//!
//! Invariants: no panic; after every step, `stats()` equals the baseline
//! and no user memory is pinned whenever no file is bound, and a REGISTER that succeeded reports a
//! consistent region; at the end everything is released, `stats()` is back
//! at the baseline and no cluster is left once the context is gone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netmap_core::host::{HostNetif, HostNetifProvider};
use netmap_core::kring::Dir;
use netmap_core::netmap::{POLLIN, POLLOUT};
use netmap_fuzz::*;
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

const FILES: usize = 4;

const NAMES: &[&str] = &[
    "vale0:a",
    "vale0:b",
    "vale1:a",
    "vale0:a{1",
    "vale0:a}1",
    "vale0:b{2",
    "null0",
    "eth0",
    "vale0:",
    "vale0:a{",
    "vale2:c",
    "vale3:d",
    "vale4:e",
    "vale5:f",
    "vale6:g",
    "vale7:h",
    "vale8:i",
    "p0",
    "eth0",
    "vale0:p0",
    "vale0:eth0",
];

/// Names for NEWIF/DELIF (persistent ports; eth0 is the provider's NIC).
const IFNAMES: &[&str] = &["p0", "p1", "eth0", "vale0:x", "p0{1", ""];

/// Names for ATTACH/DETACH: persistent ports and the NIC on switches.
const ATTACH_NAMES: &[&str] = &[
    "vale0:p0",
    "vale1:p0",
    "vale0:p1",
    "vale0:eth0",
    "vale2:eth0",
];

/// Pipes of a parent that does not exist: the core makes a plain parent
/// port with the default 1024-slot rings (a 40 MB region), so they are
/// picked rarely to keep the target fast.
const PLAIN_PIPES: &[&str] = &["pp{1", "pp}1", "pp{2"];

fn name(r: &mut Reader<'_>) -> &'static str {
    match r.u8() {
        255 => r.pick(PLAIN_PIPES),
        v => NAMES[usize::from(v) % NAMES.len()],
    }
}

/// Slot counts: small ones, and rarely 0 (the default, 1024) or above the
/// 4096 cap: big rings mean big regions, and a slow target.
fn slots(r: &mut Reader<'_>) -> u32 {
    match r.u8() {
        255 => 5000,
        254 => 0,
        v => [8u32, 16, 64][usize::from(v) % 3],
    }
}

fn mem_id(r: &mut Reader<'_>, seen: &[u16]) -> u16 {
    match r.u8() % 6 {
        0 | 1 => 0,
        2 => 1,
        3 if !seen.is_empty() => seen[r.below(seen.len())],
        _ => r.u16(),
    }
}

struct File {
    np: Option<Np>,
    /// REGISTER result, if bound.
    reg: Option<NmreqRegister>,
}

/// Entries of the CSB arrays every file may use (more than any binding
/// of this target has rings).
const CSB_ENTRIES: usize = 16;

/// The CSB option body for the arrays at `atok`/`ktoa`, sometimes broken.
fn csb_body(r: &mut Reader<'_>, atok: u64, ktoa: u64) -> [u8; 16] {
    let (a, k) = match r.u8() % 8 {
        0 => (atok + 8, ktoa),
        1 => (atok, 0x7000_0000),
        2 => (r.u64(), r.u64()),
        _ => (atok, ktoa),
    };
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&a.to_ne_bytes());
    b[8..].copy_from_slice(&k.to_ne_bytes());
    b
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let env = Env::new(small_params(2048));
    let base = env.stats();
    let mut files: Vec<File> = (0..FILES)
        .map(|_| File {
            np: None,
            reg: None,
        })
        .collect();
    let mut mem_ids: Vec<u16> = Vec::new();
    // Once the netif provider is installed, persistent ports and NICs
    // attached to switches outlive the files: the per-step "nothing bound,
    // nothing left" checks no longer apply, the final cleanup does.
    let mut provider = false;
    let eth0 = HostNetif::new("eth0", 2, 16);
    // The CSB arrays (shared by all files: the kernel only writes them).
    let csb_atok = env.p.user_map(&[0u8; 64 * CSB_ENTRIES]);
    let csb_ktoa = env.p.user_map(&[0u8; 64 * CSB_ENTRIES]);
    let efds = [env.p.eventfd_create(), env.p.eventfd_create()];
    // Application memory for EXTMEM regions: one piece, or page by page.
    let ext_len = 256 * 1024;
    let ext_pages = if r.bool() { 1 } else { 64 };
    let ext_mem = env.p.user_map_chunks(&vec![0u8; ext_len], ext_pages);

    let mut steps = 0;
    while !r.is_empty() && steps < 40 {
        steps += 1;
        let fi = r.below(FILES);
        let op = r.u8() % 18;
        if files[fi].np.is_none() && op != 15 {
            files[fi].np = Some(env.open());
        }
        trace!("step {steps}: file {fi} op {op}; stats {:?}", env.stats());
        match op {
            0..=3 => {
                let f = &mut files[fi];
                let np = f.np.as_deref().expect("open");
                let nm = name(&mut r);
                let mut reg = NmreqRegister {
                    nr_mode: match r.u8() % 8 {
                        0 => u32::from(r.u8() % 10),
                        1 => NR_REG_NULL,
                        2 => NR_REG_ONE_NIC,
                        _ => NR_REG_ALL_NIC,
                    },
                    nr_ringid: u16::from(r.u8() % 4),
                    nr_tx_rings: u16::from(r.u8() % 4),
                    nr_rx_rings: u16::from(r.u8() % 4),
                    nr_tx_slots: slots(&mut r),
                    nr_rx_slots: slots(&mut r),
                    nr_mem_id: mem_id(&mut r, &mem_ids),
                    // Huge requests (capped by the core) cost a large
                    // region: make them rare so runs stay fast.
                    nr_extra_bufs: match r.u8() {
                        255 => 100_000,
                        v => [0u32, 0, 1, 5, 64][usize::from(v) % 5],
                    },
                    ..NmreqRegister::zeroed()
                };
                for flag in [
                    NR_EXCLUSIVE,
                    NR_RX_RINGS_ONLY,
                    NR_TX_RINGS_ONLY,
                    NR_ACCEPT_VNET_HDR,
                    NR_NO_TX_POLL,
                    NR_MONITOR_TX,
                ] {
                    if r.one_in(6) {
                        reg.nr_flags |= flag;
                    }
                }
                let res = if r.one_in(5) {
                    let mut o = NmreqOptExtmem::zeroed();
                    o.nro_usrptr = match r.u8() % 8 {
                        0 => ext_mem + 64,
                        1 => r.u64(),
                        _ => ext_mem,
                    };
                    o.nro_info.nr_memsize = match r.u8() % 8 {
                        0 => r.u64() & 0xfff_ffff,
                        1 => 2 * ext_len as u64,
                        _ => ext_len as u64,
                    };
                    if r.one_in(3) {
                        o.nro_info.nr_ring_pool_objtotal = r.u32() % 8;
                        o.nro_info.nr_buf_pool_objsize =
                            r.pick(&[0u32, 64, 1024, 2048, 4096, 70000]);
                        o.nro_info.nr_if_pool_objtotal = r.u32() % 4;
                    }
                    if r.one_in(8) {
                        env.p.user_poison(ext_mem + r.below(ext_len) as u64);
                    }
                    if r.one_in(8) {
                        env.p.set_pin_budget(Some(0));
                    }
                    let (res, st) = env.ctrl_opts(
                        np,
                        NETMAP_REQ_REGISTER,
                        nm.as_bytes(),
                        &mut reg,
                        &[(NETMAP_REQ_OPT_EXTMEM, &o.as_bytes()[24..])],
                    );
                    env.p.set_pin_budget(None);
                    trace!("file {fi}: REGISTER with EXTMEM, status {st:?}");
                    res
                } else if r.one_in(5) {
                    let o = NmreqOptOffsets {
                        nro_max_offset: r.pick(&[0u64, 64, 2048, 4096]),
                        nro_initial_offset: r.pick(&[0u64, 32, 64, 100]),
                        nro_offset_bits: r.pick(&[0u32, 7, 12, 64, 65]),
                        ..NmreqOptOffsets::zeroed()
                    };
                    let (res, st) = env.ctrl_opts(
                        np,
                        NETMAP_REQ_REGISTER,
                        nm.as_bytes(),
                        &mut reg,
                        &[(NETMAP_REQ_OPT_OFFSETS, &o.as_bytes()[24..])],
                    );
                    trace!("file {fi}: REGISTER with OFFSETS {o:?}, status {st:?}");
                    res
                } else if r.one_in(4) {
                    let b = csb_body(&mut r, csb_atok, csb_ktoa);
                    let (res, st) = env.ctrl_opts(
                        np,
                        NETMAP_REQ_REGISTER,
                        nm.as_bytes(),
                        &mut reg,
                        &[(NETMAP_REQ_OPT_CSB, &b)],
                    );
                    trace!("file {fi}: REGISTER with CSB option, status {st:?}");
                    res
                } else {
                    env.register(np, nm.as_bytes(), &mut reg)
                };
                trace!("file {fi}: REGISTER {nm} -> {res:?} {reg:?}");
                if res.is_ok() {
                    assert!(f.reg.is_none(), "REGISTER twice on one file succeeded");
                    assert!(reg.nr_offset < reg.nr_memsize, "{reg:?}");
                    assert!(reg.nr_mem_id != 0);
                    let b = np.binding().expect("bound after REGISTER");
                    assert_eq!(b.na.mem.memsize(), reg.nr_memsize);
                    if !mem_ids.contains(&reg.nr_mem_id) {
                        mem_ids.push(reg.nr_mem_id);
                    }
                    f.reg = Some(reg);
                }
            }
            4 => {
                let np = files[fi].np.as_deref().expect("open");
                let mut pi = NmreqPortInfoGet {
                    nr_mem_id: mem_id(&mut r, &mem_ids),
                    nr_tx_slots: slots(&mut r),
                    nr_rx_slots: slots(&mut r),
                    ..NmreqPortInfoGet::zeroed()
                };
                let nm = if r.one_in(4) { "" } else { name(&mut r) };
                let res = env.ctrl(np, NETMAP_REQ_PORT_INFO_GET, nm.as_bytes(), &mut pi);
                trace!("file {fi}: PORT_INFO_GET {nm:?} -> {res:?} {pi:?}");
            }
            5 => {
                let np = files[fi].np.as_deref().expect("open");
                let mut pl = NmreqPoolsInfo {
                    nr_mem_id: mem_id(&mut r, &mem_ids),
                    ..NmreqPoolsInfo::zeroed()
                };
                let nm = if r.one_in(4) { "" } else { name(&mut r) };
                let res = env.ctrl(np, NETMAP_REQ_POOLS_INFO_GET, nm.as_bytes(), &mut pl);
                trace!("file {fi}: POOLS_INFO_GET {nm:?} -> {res:?}");
            }
            6 => {
                let np = files[fi].np.as_deref().expect("open");
                let mut l = NmreqValeList {
                    nr_bridge_idx: u16::from(r.u8() % 10),
                    nr_port_idx: u32::from(r.u8() % 4),
                    ..NmreqValeList::zeroed()
                };
                let nm = if r.bool() { "" } else { name(&mut r) };
                let res = env.ctrl(np, NETMAP_REQ_VALE_LIST, nm.as_bytes(), &mut l);
                trace!("file {fi}: VALE_LIST {nm:?} -> {res:?}");
            }
            7 => {
                let np = files[fi].np.as_deref().expect("open");
                let mut h = NmreqPortHdr {
                    nr_hdr_len: r.pick(&[0u32, 10, 12, 11, 0xffff_ffff]),
                    ..NmreqPortHdr::zeroed()
                };
                let t = if r.bool() {
                    NETMAP_REQ_PORT_HDR_SET
                } else {
                    NETMAP_REQ_PORT_HDR_GET
                };
                let nm = name(&mut r);
                let res = env.ctrl(np, t, nm.as_bytes(), &mut h);
                trace!("file {fi}: HDR {t} {nm:?} {} -> {res:?}", h.nr_hdr_len);
            }
            8 => {
                // Persistent ports and NICs need the OS hooks: install the
                // host's fake provider (one NIC, eth0) at some point.
                if !provider && r.one_in(2) {
                    let p = HostNetifProvider::new(vec![eth0.clone()]);
                    provider = env.nm.set_netif_provider(Box::new(p)).is_ok();
                    trace!("netif provider installed: {provider}");
                }
                let np = files[fi].np.as_deref().expect("open");
                let t = r.pick(&[
                    NETMAP_REQ_VALE_ATTACH,
                    NETMAP_REQ_VALE_DETACH,
                    NETMAP_REQ_VALE_NEWIF,
                    NETMAP_REQ_VALE_DELIF,
                    NETMAP_REQ_VALE_POLLING_ENABLE,
                    NETMAP_REQ_VALE_POLLING_DISABLE,
                ]);
                let res = if t == NETMAP_REQ_VALE_NEWIF || t == NETMAP_REQ_VALE_DELIF {
                    let mut nb = NmreqValeNewif {
                        nr_tx_slots: slots(&mut r),
                        nr_rx_slots: slots(&mut r),
                        nr_tx_rings: u16::from(r.u8() % 3),
                        nr_rx_rings: u16::from(r.u8() % 3),
                        nr_mem_id: mem_id(&mut r, &mem_ids),
                        ..NmreqValeNewif::zeroed()
                    };
                    let nm = r.pick(IFNAMES);
                    let res = env.ctrl(np, t, nm.as_bytes(), &mut nb);
                    trace!("file {fi}: request {t} {nm} -> {res:?}");
                    res
                } else if t == NETMAP_REQ_VALE_POLLING_ENABLE
                    || t == NETMAP_REQ_VALE_POLLING_DISABLE
                {
                    let mut pb = NmreqValePolling {
                        nr_mode: u32::from(r.u8() % 4),
                        nr_first_cpu_id: u32::from(r.u8() % 3),
                        nr_num_polling_cpus: u32::from(r.u8() % 3),
                        ..NmreqValePolling::zeroed()
                    };
                    let nm = r.pick(ATTACH_NAMES);
                    let res = env.ctrl(np, t, nm.as_bytes(), &mut pb);
                    trace!("file {fi}: request {t} {nm} {pb:?} -> {res:?}");
                    res
                } else {
                    let mut a = NmreqValeAttach::zeroed();
                    a.reg = reg_body(r.pick(&[NR_REG_ALL_NIC, NR_REG_NIC_SW, NR_REG_SW]), 1, 16);
                    a.reg.nr_mem_id = mem_id(&mut r, &mem_ids);
                    let nm = if r.bool() {
                        r.pick(ATTACH_NAMES)
                    } else {
                        name(&mut r)
                    };
                    let res = env.ctrl(np, t, nm.as_bytes(), &mut a);
                    trace!("file {fi}: request {t} {nm} -> {res:?}");
                    res
                };
                let _ = res;
            }
            9 => {
                // Fault injection: the next k cluster allocations succeed.
                if r.one_in(3) {
                    env.p.set_cluster_budget(None);
                } else {
                    let n = u64::from(r.u8() % 64);
                    trace!("cluster budget {n}");
                    env.p.set_cluster_budget(Some(n));
                }
            }
            10 => {
                let np = files[fi].np.as_deref().expect("open");
                let _ = env.nm.ioctl(np, NIOCTXSYNC, 0);
                let _ = env.nm.ioctl(np, NIOCRXSYNC, 0);
                let _ = env.nm.poll(np, POLLIN | POLLOUT, &mut |_| {});
            }
            11 | 12 => {
                // User stores: ni_bufs_head, or a link of the extra list.
                let f = &files[fi];
                let (Some(np), Some(reg)) = (f.np.as_deref(), f.reg) else {
                    continue;
                };
                let Some(b) = np.binding() else { continue };
                let v = match r.u8() % 4 {
                    0 => r.u32(),
                    1 => 0,
                    _ => b.na.mem.buf_count().saturating_sub(1 + r.below(8) as u32),
                };
                trace!("file {fi}: user store {v} (op {op})");
                if op == 11 {
                    let off = reg.nr_offset + core::mem::offset_of!(NetmapIf, ni_bufs_head) as u64;
                    poke(&env.nm, np, off, v);
                } else {
                    let idx = b.na.mem.buf_count().saturating_sub(1 + r.below(8) as u32);
                    if b.na.mem.buf_valid(idx) {
                        b.na.mem.buf(idx).write_u32(v);
                    }
                }
            }
            13 => {
                // Send whatever the TX ring holds, as a sloppy user would.
                let f = &files[fi];
                let Some(np) = f.np.as_deref() else { continue };
                if let Some(b) = np.binding() {
                    let range = b.ranges[Dir::Tx.idx()];
                    if let Some(ring) = b.na.kring(Dir::Tx, range.first).and_then(|k| k.ring()) {
                        let n = ring.num_slots();
                        let h = (ring.head() + 1 + r.below(4) as u32) % n.max(1);
                        ring.set_head(h);
                        ring.set_cur(h);
                        let _ = env.nm.ioctl(np, NIOCTXSYNC, 0);
                    }
                }
            }
            17 => {
                // CSB mode and the sync kernel loop.
                let np = files[fi].np.as_deref().expect("open");
                match r.u8() % 4 {
                    0 => {
                        let b = csb_body(&mut r, csb_atok, csb_ktoa);
                        let opts: &[(u32, &[u8])] = if r.one_in(8) {
                            &[]
                        } else {
                            &[(NETMAP_REQ_OPT_CSB, &b)]
                        };
                        let mut none = [0u8; 0];
                        let (res, st) =
                            env.ctrl_opts(np, NETMAP_REQ_CSB_ENABLE, b"", &mut none, opts);
                        trace!("file {fi}: CSB_ENABLE -> {res:?} {st:?}");
                    }
                    1 => {
                        // The application stores head/cur (or anything)
                        // into a CSB entry.
                        let e = r.below(CSB_ENTRIES) as u64;
                        let head = r.index_like(64);
                        let cur = if r.bool() { head } else { r.index_like(64) };
                        let _ = env.p.user_write(csb_atok + 64 * e + 4, &cur.to_ne_bytes());
                        let _ = env.p.user_write(csb_atok + 64 * e, &head.to_ne_bytes());
                        let kick = u32::from(r.bool());
                        let _ = env.p.user_write(csb_atok + 64 * e + 8, &kick.to_ne_bytes());
                        trace!("csb entry {e}: head {head} cur {cur}");
                    }
                    2 => {
                        let mode = r.pick(&[0u32, 1, 2, 3, 4]);
                        let nfds = r.below(6);
                        let mut fdb = Vec::new();
                        for _ in 0..nfds {
                            for _ in 0..2 {
                                let fd = match r.u8() % 4 {
                                    0 => -1,
                                    1 => 99,
                                    _ => efds[r.below(2)],
                                };
                                fdb.extend_from_slice(&fd.to_ne_bytes());
                            }
                        }
                        let mb = [mode.to_ne_bytes(), [0; 4]].concat();
                        let mut opts: Vec<(u32, &[u8])> = Vec::new();
                        if r.bool() {
                            opts.push((NETMAP_REQ_OPT_SYNC_KLOOP_MODE, &mb));
                        }
                        if r.bool() {
                            opts.push((NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS, &fdb));
                        }
                        let mut st = NmreqSyncKloopStart {
                            sleep_us: r.pick(&[0u32, 1, 10, 1_000_001]),
                            pad1: 0,
                        };
                        // A few passes, then a "signal".
                        env.p.set_sleep_budget(Some(u64::from(r.u8() % 4)));
                        if r.one_in(4) {
                            let _ = env.p.eventfd_write(efds[r.below(2)], 1);
                        }
                        let (res, s) =
                            env.ctrl_opts(np, NETMAP_REQ_SYNC_KLOOP_START, b"", &mut st, &opts);
                        env.p.set_sleep_budget(None);
                        trace!("file {fi}: KLOOP_START {opts:?} -> {res:?} {s:?}");
                    }
                    _ => {
                        let mut none = [0u8; 0];
                        let res = env.ctrl(np, NETMAP_REQ_SYNC_KLOOP_STOP, b"", &mut none);
                        trace!("file {fi}: KLOOP_STOP -> {res:?}");
                    }
                }
            }
            16 => {
                // The NIC receives frames (hardware or host RX ring), while
                // a user or a switch has it; files bound to it may turn
                // transparent mode on and release slots marked NS_FORWARD.
                if let Some(na) = eth0.adapter() {
                    let ring = r.below(4) as u32;
                    let len = [60usize, 14, 10, 1514, 3000][r.below(5)];
                    let mut f = vec![0u8; len];
                    for b in f.iter_mut().take(12) {
                        *b = r.u8();
                    }
                    let ok = na.rx_push(ring, &f);
                    trace!("eth0: rx_push ring {ring} len {len} -> {ok}");
                }
                let f = &files[fi];
                let Some(np) = f.np.as_deref() else { continue };
                if let Some(b) = np.binding()
                    && r.bool()
                {
                    let rr = b.ranges[Dir::Rx.idx()];
                    for i in rr.iter() {
                        let Some(ring) = b.na.kring(Dir::Rx, i).and_then(|k| k.ring()) else {
                            continue;
                        };
                        ring.set_flags(if r.bool() { NR_FORWARD } else { 0 });
                        let t = ring.tail();
                        let mut h = ring.head();
                        let n = ring.num_slots().max(1);
                        for _ in 0..n {
                            if h == t {
                                break;
                            }
                            let fl = ring.slot(h).flags;
                            ring.set_slot_flags(h, fl | NS_FORWARD);
                            h = (h + 1) % n;
                        }
                        ring.set_head(h);
                        ring.set_cur(h);
                    }
                    if r.bool() {
                        env.nm
                            .params()
                            .fwd
                            .store(u32::from(r.bool()), core::sync::atomic::Ordering::Relaxed);
                    }
                    let _ = env.nm.ioctl(np, NIOCRXSYNC, 0);
                }
            }
            _ => {
                // Close.
                let f = &mut files[fi];
                if let Some(np) = f.np.take() {
                    env.nm.release(np);
                }
                f.reg = None;
            }
        }
        let st = env.stats();
        if !provider
            && files
                .iter()
                .all(|f| f.np.as_ref().is_none_or(|np| np.binding().is_none()))
        {
            assert_eq!(st, base, "stats with no file bound");
            assert_eq!(
                env.p.pins_live(),
                0,
                "user memory pinned with no file bound"
            );
        }
        if !provider {
            // Each bound file owns one netmap_if, in its port's region.
            let on_global = files
                .iter()
                .filter(|f| f.reg.is_some_and(|g| g.nr_mem_id == 1))
                .count();
            assert_eq!(st.if_used as usize, on_global, "netmap_ifs in mem 1");
        }
        assert!(st.switches <= env.nm.params().max_bridges);
    }
    env.p.set_cluster_budget(None);
    let mut order: Vec<usize> = (0..FILES).collect();
    for i in 0..FILES {
        order.swap(i, i + r.below(FILES - i));
    }
    for i in order {
        if let Some(np) = files[i].np.take() {
            env.nm.release(np);
        }
    }
    if provider {
        // Undo what outlives files: detach everything, delete the
        // persistent ports.
        let np = env.open();
        // Twice: a persistent port on two switches leaves its second one
        // first, whichever number that has.
        for sw in (0..9).chain(0..9) {
            for p in ["eth0", "p0", "p1"] {
                let name = format!("vale{sw}:{p}");
                let mut pb = NmreqValePolling::zeroed();
                let res = env.ctrl(
                    &np,
                    NETMAP_REQ_VALE_POLLING_DISABLE,
                    name.as_bytes(),
                    &mut pb,
                );
                trace!("cleanup: POLLING_DISABLE {name} -> {res:?}");
                let mut d = NmreqValeDetach::zeroed();
                let res = env.ctrl(&np, NETMAP_REQ_VALE_DETACH, name.as_bytes(), &mut d);
                trace!("cleanup: DETACH {name} -> {res:?}");
            }
        }
        for p in ["p0", "p1"] {
            let mut nb = NmreqValeNewif::zeroed();
            let res = env.ctrl(&np, NETMAP_REQ_VALE_DELIF, p.as_bytes(), &mut nb);
            trace!("cleanup: DELIF {p} -> {res:?}");
        }
        env.nm.release(np);
    }
    finish(env, base);
});
