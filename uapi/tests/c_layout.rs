//! Cross-check of the Rust ABI layout against an independent C declaration of the
//! same structures (tests/c/layout.c, compiled by build.rs with the host C
//! compiler): every sizeof, alignof and offsetof, and the ioctl numbers computed by
//! the system's `_IO`/`_IOWR` macros.

use core::mem::{align_of, offset_of, size_of};
use netmap_uapi::abi::*;

/// One `(name, value)` pair, as laid out by the C side.
#[repr(C)]
struct CEntry {
    name: [u8; 64],
    value: u64,
}

#[cfg(netmap_uapi_c_layout)]
unsafe extern "C" {
    fn netmap_uapi_layout_count() -> usize;
    fn netmap_uapi_layout_entry(i: usize, out: *mut CEntry) -> i32;
}

/// The table of the C side.
#[cfg(netmap_uapi_c_layout)]
fn c_table() -> Vec<(String, u64)> {
    // SAFETY: a pure C function without arguments returning a constant.
    let n = unsafe { netmap_uapi_layout_count() };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut e = CEntry {
            name: [0; 64],
            value: 0,
        };
        // SAFETY: `e` is a valid, writable `CEntry` with the C layout; `i < n`.
        let rc = unsafe { netmap_uapi_layout_entry(i, &mut e) };
        assert_eq!(rc, 0);
        let end = e.name.iter().position(|&b| b == 0).unwrap_or(64);
        out.push((
            String::from_utf8_lossy(&e.name[..end]).into_owned(),
            e.value,
        ));
    }
    out
}

/// Adds `sizeof`, `alignof` and one `offsetof` entry per listed field.
macro_rules! rust_layout {
    ($v:ident, $t:ty, $c:literal, [$($f:ident),* $(,)?]) => {
        $v.push((concat!("sizeof ", $c).to_string(), size_of::<$t>() as u64));
        $v.push((concat!("alignof ", $c).to_string(), align_of::<$t>() as u64));
        $( $v.push((concat!($c, ".", stringify!($f)).to_string(), offset_of!($t, $f) as u64)); )*
    };
}

/// The same table computed from the Rust definitions. Rust-only padding fields
/// (`_padN`) are not listed; flexible array members of C are at the end of the
/// fixed Rust part.
fn rust_table() -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = Vec::new();
    rust_layout!(v, Timeval, "timeval", [tv_sec, tv_usec]);
    rust_layout!(v, NetmapSlot, "netmap_slot", [buf_idx, len, flags, ptr]);
    rust_layout!(
        v,
        NetmapRing,
        "netmap_ring",
        [
            buf_ofs,
            num_slots,
            nr_buf_size,
            ringid,
            dir,
            head,
            cur,
            tail,
            flags,
            ts,
            offset_mask,
            buf_align,
            sem,
        ]
    );
    v.push(("netmap_ring.slot".into(), NETMAP_RING_SLOTS_OFFSET as u64));
    rust_layout!(
        v,
        NetmapIf,
        "netmap_if",
        [
            ni_name,
            ni_version,
            ni_flags,
            ni_tx_rings,
            ni_rx_rings,
            ni_bufs_head,
            ni_host_tx_rings,
            ni_host_rx_rings,
            ni_spare1,
        ]
    );
    v.push((
        "netmap_if.ring_ofs".into(),
        NETMAP_IF_RING_OFS_OFFSET as u64,
    ));
    rust_layout!(
        v,
        NmreqHeader,
        "nmreq_header",
        [
            nr_version,
            nr_reqtype,
            nr_reserved,
            nr_name,
            nr_options,
            nr_body,
        ]
    );
    rust_layout!(
        v,
        NmreqRegister,
        "nmreq_register",
        [
            nr_offset,
            nr_memsize,
            nr_tx_slots,
            nr_rx_slots,
            nr_tx_rings,
            nr_rx_rings,
            nr_host_tx_rings,
            nr_host_rx_rings,
            nr_mem_id,
            nr_ringid,
            nr_mode,
            nr_extra_bufs,
            nr_flags,
        ]
    );
    rust_layout!(
        v,
        NmreqPortInfoGet,
        "nmreq_port_info_get",
        [
            nr_memsize,
            nr_tx_slots,
            nr_rx_slots,
            nr_tx_rings,
            nr_rx_rings,
            nr_host_tx_rings,
            nr_host_rx_rings,
            nr_mem_id,
            pad,
        ]
    );
    rust_layout!(
        v,
        NmreqValeAttach,
        "nmreq_vale_attach",
        [reg, port_index, pad1]
    );
    rust_layout!(v, NmreqValeDetach, "nmreq_vale_detach", [port_index, pad1]);
    rust_layout!(
        v,
        NmreqValeList,
        "nmreq_vale_list",
        [nr_bridge_idx, pad1, nr_port_idx]
    );
    rust_layout!(v, NmreqPortHdr, "nmreq_port_hdr", [nr_hdr_len, pad1]);
    rust_layout!(
        v,
        NmreqValeNewif,
        "nmreq_vale_newif",
        [
            nr_tx_slots,
            nr_rx_slots,
            nr_tx_rings,
            nr_rx_rings,
            nr_mem_id,
            pad1,
        ]
    );
    rust_layout!(
        v,
        NmreqValePolling,
        "nmreq_vale_polling",
        [nr_mode, nr_first_cpu_id, nr_num_polling_cpus, pad1,]
    );
    rust_layout!(
        v,
        NmreqPoolsInfo,
        "nmreq_pools_info",
        [
            nr_memsize,
            nr_mem_id,
            pad1,
            nr_if_pool_offset,
            nr_if_pool_objtotal,
            nr_if_pool_objsize,
            nr_ring_pool_offset,
            nr_ring_pool_objtotal,
            nr_ring_pool_objsize,
            nr_buf_pool_offset,
            nr_buf_pool_objtotal,
            nr_buf_pool_objsize,
        ]
    );
    rust_layout!(
        v,
        NmreqSyncKloopStart,
        "nmreq_sync_kloop_start",
        [sleep_us, pad1]
    );
    rust_layout!(
        v,
        NmCsbAtok,
        "nm_csb_atok",
        [head, cur, appl_need_kick, sync_flags, pad]
    );
    rust_layout!(
        v,
        NmCsbKtoa,
        "nm_csb_ktoa",
        [hwcur, hwtail, kern_need_kick, pad]
    );
    rust_layout!(
        v,
        NmreqOption,
        "nmreq_option",
        [nro_next, nro_reqtype, nro_status, nro_size]
    );
    rust_layout!(
        v,
        NmreqOptExtmem,
        "nmreq_opt_extmem",
        [nro_opt, nro_usrptr, nro_info]
    );
    rust_layout!(
        v,
        NmreqOptCsb,
        "nmreq_opt_csb",
        [nro_opt, csb_atok, csb_ktoa]
    );
    rust_layout!(
        v,
        NmreqOptSyncKloopMode,
        "nmreq_opt_sync_kloop_mode",
        [nro_opt, mode]
    );
    rust_layout!(
        v,
        NmreqOptSyncKloopEventfds,
        "nmreq_opt_sync_kloop_eventfds",
        [nro_opt]
    );
    v.push((
        "nmreq_opt_sync_kloop_eventfds.eventfds".into(),
        size_of::<NmreqOptSyncKloopEventfds>() as u64,
    ));
    v.push((
        "sizeof eventfds_entry".into(),
        size_of::<NmreqOptSyncKloopEventfdsEntry>() as u64,
    ));
    v.push((
        "eventfds_entry.ioeventfd".into(),
        offset_of!(NmreqOptSyncKloopEventfdsEntry, ioeventfd) as u64,
    ));
    v.push((
        "eventfds_entry.irqfd".into(),
        offset_of!(NmreqOptSyncKloopEventfdsEntry, irqfd) as u64,
    ));
    rust_layout!(
        v,
        NmreqOptOffsets,
        "nmreq_opt_offsets",
        [
            nro_opt,
            nro_max_offset,
            nro_initial_offset,
            nro_offset_bits,
            nro_tx_align,
            nro_min_gap,
        ]
    );
    rust_layout!(
        v,
        Nmreq,
        "nmreq",
        [
            nr_name,
            nr_version,
            nr_offset,
            nr_memsize,
            nr_tx_slots,
            nr_rx_slots,
            nr_tx_rings,
            nr_rx_rings,
            nr_ringid,
            nr_cmd,
            nr_arg1,
            nr_arg2,
            nr_arg3,
            nr_flags,
            spare2,
        ]
    );
    rust_layout!(v, NmIfreq, "nm_ifreq", [nifr_name, data]);
    if cfg!(target_os = "linux") {
        use netmap_uapi::ioctl::*;
        for (name, val) in [
            ("NIOCGINFO", NIOCGINFO),
            ("NIOCREGIF", NIOCREGIF),
            ("NIOCTXSYNC", NIOCTXSYNC),
            ("NIOCRXSYNC", NIOCRXSYNC),
            ("NIOCCONFIG", NIOCCONFIG),
            ("NIOCCTRL", NIOCCTRL),
        ] {
            v.push((format!("ioctl {name}"), u64::from(val)));
        }
    }
    v
}

#[test]
fn rust_table_has_unique_names() {
    let t = rust_table();
    let mut names: Vec<&str> = t.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len());
    assert!(before > 150, "{before}");
}

#[cfg(netmap_uapi_c_layout)]
#[test]
fn layout_matches_c() {
    use std::collections::BTreeMap;
    let c: BTreeMap<String, u64> = c_table().into_iter().collect();
    let r: BTreeMap<String, u64> = rust_table().into_iter().collect();
    let mut problems = Vec::new();
    for (name, cv) in &c {
        match r.get(name) {
            Some(rv) if rv == cv => {}
            Some(rv) => problems.push(format!("{name}: C {cv}, Rust {rv}")),
            None => problems.push(format!("{name}: only in C ({cv})")),
        }
    }
    for (name, rv) in &r {
        if !c.contains_key(name) {
            problems.push(format!("{name}: only in Rust ({rv})"));
        }
    }
    assert!(
        problems.is_empty(),
        "layout mismatches:\n{}",
        problems.join("\n")
    );
    assert_eq!(c.len(), r.len());
}

/// On a native hosted build the C side must have been built (see build.rs).
#[cfg(all(not(netmap_uapi_c_layout), target_os = "linux"))]
#[test]
fn c_layout_was_built() {
    panic!("build.rs did not build tests/c/layout.c (see the cargo warnings)");
}
