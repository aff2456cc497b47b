//! Control requests other than REGISTER (spec §4.5–§4.8, §8.6, §10.2), the
//! leak counters themselves, and multi-slot packets (§6.9).

use crate::port::{BCAST, Port, all_nic, check_frame, frame, mac, register};
use crate::sys::{Fd, errno_name, expect_err, expect_ok};
use crate::{Test, ensure};
use netmap_uapi::*;
use std::ptr;

pub const TESTS: &[Test] = &[
    ("stats_track_ports", stats_track_ports),
    ("vale_list", vale_list),
    ("port_hdr_set_get", port_hdr_set_get),
    ("pools_info_get", pools_info_get),
    ("null_port", null_port),
    ("vale_multifrag", vale_multifrag),
];

fn ctrl<T>(fd: &Fd, reqtype: u16, name: &str, body: Option<&mut T>) -> Result<NmreqHeader, i32> {
    let mut h = NmreqHeader::new(reqtype, name.as_bytes());
    if let Some(b) = body {
        h.nr_body = ptr::from_mut(b) as u64;
    }
    fd.ioctl_ptr(NIOCCTRL, &mut h)?;
    Ok(h)
}

fn stats() -> Result<Vec<(String, u64)>, String> {
    let s = std::fs::read_to_string("/sys/kernel/debug/netmap/stats")
        .map_err(|e| format!("stats: {e}"))?;
    s.lines()
        .map(|l| {
            let (k, v) = l
                .split_once(' ')
                .ok_or_else(|| format!("stats line {l:?}"))?;
            Ok((
                k.to_string(),
                v.trim()
                    .parse()
                    .map_err(|e| format!("stats line {l:?}: {e}"))?,
            ))
        })
        .collect()
}

fn stat(st: &[(String, u64)], k: &str) -> u64 {
    st.iter()
        .find(|(n, _)| n == k)
        .map_or(u64::MAX, |(_, v)| *v)
}

/// The leak counters move when a port exists and come back when it goes:
/// otherwise the runner's leak check would prove nothing.
fn stats_track_ports() -> Result<(), String> {
    let before = stats()?;
    ensure!(before.len() >= 3, "stats has {} lines", before.len());
    let p = Port::open("vale20:a")?;
    let during = stats()?;
    ensure!(
        during != before,
        "stats did not change with a port open: {during:?}"
    );
    ensure!(
        stat(&during, "private_mems") == stat(&before, "private_mems") + 1,
        "private_mems {} -> {}",
        stat(&before, "private_mems"),
        stat(&during, "private_mems")
    );
    ensure!(
        stat(&during, "switches") == stat(&before, "switches") + 1,
        "switches {} -> {}",
        stat(&before, "switches"),
        stat(&during, "switches")
    );
    drop(p);
    let after = stats()?;
    ensure!(after == before, "stats {before:?} -> {after:?} after close");
    Ok(())
}

/// VALE_LIST by name and by enumeration (spec §8.6).
fn vale_list() -> Result<(), String> {
    let _a = Port::open("vale21:a")?;
    let _b = Port::open("vale21:b")?;
    let fd = Fd::open_netmap()?;
    let mut l = NmreqValeList::default();
    expect_ok(
        "VALE_LIST vale21:b",
        ctrl(&fd, NETMAP_REQ_VALE_LIST, "vale21:b", Some(&mut l)),
    )?;
    ensure!(
        l.nr_port_idx == 1,
        "port index of vale21:b is {}",
        l.nr_port_idx
    );
    let bridge = l.nr_bridge_idx;
    let mut l = NmreqValeList::default();
    expect_ok(
        "VALE_LIST vale21:zz",
        ctrl(&fd, NETMAP_REQ_VALE_LIST, "vale21:zz", Some(&mut l)),
    )?;
    ensure!(
        l.nr_port_idx == 255,
        "absent port index {}, want 255",
        l.nr_port_idx
    );
    let mut l = NmreqValeList::default();
    expect_err(
        "VALE_LIST vale99:x",
        ctrl(&fd, NETMAP_REQ_VALE_LIST, "vale99:x", Some(&mut l)).map(|_| ()),
        libc::ENOENT,
    )?;
    expect_err(
        "VALE_LIST foo",
        ctrl(&fd, NETMAP_REQ_VALE_LIST, "foo", Some(&mut l)).map(|_| ()),
        libc::EINVAL,
    )?;

    // Enumeration, the vale-ctl way.
    let mut names = Vec::new();
    let mut l = NmreqValeList::default();
    loop {
        match ctrl(&fd, NETMAP_REQ_VALE_LIST, "", Some(&mut l)) {
            Ok(h) => {
                names.push((
                    String::from_utf8_lossy(h.name()).into_owned(),
                    l.nr_bridge_idx,
                ));
                l.nr_port_idx += 1;
            }
            Err(e) if e == libc::ENOENT => break,
            Err(e) => return Err(format!("VALE_LIST enumeration: {}", errno_name(e))),
        }
        ensure!(names.len() < 1000, "enumeration does not end");
    }
    ensure!(
        names.contains(&("vale21:a".into(), bridge))
            && names.contains(&("vale21:b".into(), bridge)),
        "enumeration gave {names:?}"
    );
    Ok(())
}

/// PORT_HDR_SET / GET (spec §4.7) and the NR_ACCEPT_VNET_HDR check at
/// REGISTER (§4.4 step 6).
fn port_hdr_set_get() -> Result<(), String> {
    let fd = Fd::open_netmap()?;
    let mut h = NmreqPortHdr {
        nr_hdr_len: 12,
        ..Default::default()
    };
    expect_err(
        "HDR_SET on a missing port",
        ctrl(&fd, NETMAP_REQ_PORT_HDR_SET, "vale22:a", Some(&mut h)).map(|_| ()),
        libc::ENXIO,
    )?;
    let p = Port::open("vale22:a")?;
    expect_ok(
        "HDR_SET 12",
        ctrl(&fd, NETMAP_REQ_PORT_HDR_SET, "vale22:a", Some(&mut h)),
    )?;
    let mut g = NmreqPortHdr::default();
    expect_ok(
        "HDR_GET",
        ctrl(&fd, NETMAP_REQ_PORT_HDR_GET, "vale22:a", Some(&mut g)),
    )?;
    ensure!(g.nr_hdr_len == 12, "HDR_GET gave {}", g.nr_hdr_len);
    let mut bad = NmreqPortHdr {
        nr_hdr_len: 5,
        ..Default::default()
    };
    expect_err(
        "HDR_SET 5",
        ctrl(&fd, NETMAP_REQ_PORT_HDR_SET, "vale22:a", Some(&mut bad)).map(|_| ()),
        libc::EINVAL,
    )?;
    expect_err(
        "REGISTER without NR_ACCEPT_VNET_HDR",
        register("vale22:a", all_nic()).map(|_| ()),
        libc::EIO,
    )?;
    let mut reg = all_nic();
    reg.nr_flags = NR_ACCEPT_VNET_HDR;
    let a = Port::open_with("vale22:a", reg)?;
    // The switch converts headers (§8.3): a frame from a plain port
    // arrives with a 12-byte header (zeros, num_buffers 1), and back
    // without it.
    let b = Port::open("vale22:b")?;
    let f = crate::port::frame(crate::port::BCAST, crate::port::mac(0x22), 7, 60);
    b.send(std::slice::from_ref(&f))?;
    let mut want = vec![0u8; 12];
    want[10] = 1;
    want.extend_from_slice(&f);
    let got = a.recv()?;
    ensure!(got == [want.clone()], "vale22:a got {got:?}");
    a.send(&[want])?;
    let got = b.recv()?;
    ensure!(got == [f], "vale22:b got {got:?}");
    drop(a);
    drop(p);
    Ok(())
}

/// POOLS_INFO_GET on a default VALE port (spec §4.8, §5.5 derived figures).
fn pools_info_get() -> Result<(), String> {
    let fd = Fd::open_netmap()?;
    let _p = Port::open("vale23:a")?;
    let mut pi = NmreqPoolsInfo::default();
    expect_ok(
        "POOLS_INFO_GET",
        ctrl(&fd, NETMAP_REQ_POOLS_INFO_GET, "vale23:a", Some(&mut pi)),
    )?;
    let got = (
        pi.nr_memsize,
        (
            pi.nr_if_pool_offset,
            pi.nr_if_pool_objtotal,
            pi.nr_if_pool_objsize,
        ),
        (
            pi.nr_ring_pool_offset,
            pi.nr_ring_pool_objtotal,
            pi.nr_ring_pool_objsize,
        ),
        (
            pi.nr_buf_pool_offset,
            pi.nr_buf_pool_objtotal,
            pi.nr_buf_pool_objsize,
        ),
    );
    let want = (
        42_369_024,
        (0, 12, 1024),
        (12288, 20, 20480),
        (421_888, 20482, 2048),
    );
    ensure!(got == want, "pools {got:?}, want {want:?}");
    let mut pi = NmreqPoolsInfo::default();
    expect_err(
        "POOLS_INFO_GET empty name",
        ctrl(&fd, NETMAP_REQ_POOLS_INFO_GET, "", Some(&mut pi)).map(|_| ()),
        libc::ENXIO,
    )?;
    Ok(())
}

/// NR_REG_NULL: needs a mem id; rings exactly as requested; syncs no-ops.
fn null_port() -> Result<(), String> {
    let mut reg = all_nic();
    reg.nr_mode = NR_REG_NULL;
    expect_err(
        "null port without mem id",
        register("nullx", reg).map(|_| ()),
        libc::EINVAL,
    )?;
    // Use the allocator of a VALE port (id known to exist).
    let v = Port::open("vale24:a")?;
    reg.nr_mem_id = v.reg.nr_mem_id;
    reg.nr_tx_rings = 2;
    reg.nr_rx_rings = 3;
    reg.nr_tx_slots = 64;
    reg.nr_rx_slots = 128;
    let n = Port::open_with("nullx", reg)?;
    ensure!(
        (
            n.reg.nr_tx_rings,
            n.reg.nr_rx_rings,
            n.reg.nr_tx_slots,
            n.reg.nr_rx_slots
        ) == (2, 3, 64, 128),
        "null port rings/slots {:?}",
        (
            n.reg.nr_tx_rings,
            n.reg.nr_rx_rings,
            n.reg.nr_tx_slots,
            n.reg.nr_rx_slots
        )
    );
    ensure!(
        n.reg.nr_mem_id == v.reg.nr_mem_id,
        "null port mem id {}",
        n.reg.nr_mem_id
    );
    n.txsync()?;
    n.rxsync()?;
    ensure!(
        n.tx(1)?.num_slots() == 64 && n.rx(2)?.num_slots() == 128,
        "null ring sizes"
    );
    Ok(())
}

/// A 3-slot packet (NS_MOREFRAG) crosses the switch; the receiver's slots
/// carry the fragment count in the high byte of flags (spec §6.9, §8.3).
fn vale_multifrag() -> Result<(), String> {
    let a = Port::open("vale25:a")?;
    let b = Port::open("vale25:b")?;
    let tx = a.tx(0)?;
    let f = frame(BCAST, mac(0xa), 9, 3000);
    let parts = [&f[..1000], &f[1000..2000], &f[2000..]];
    let mut h = tx.head();
    for (i, part) in parts.iter().enumerate() {
        tx.put(h, part)?;
        if i < 2 {
            let mut s = tx.slot(h)?;
            s.flags = NS_MOREFRAG;
            tx.set_slot(h, s)?;
        }
        h = tx.next(h);
    }
    tx.set_head_cur(h);
    a.txsync()?;
    b.rxsync()?;
    let rx = b.rx(0)?;
    ensure!(rx.space() == 3, "receiver got {} slots, want 3", rx.space());
    let mut data = Vec::new();
    let mut i = rx.head();
    for k in 0..3u16 {
        let s = rx.slot(i)?;
        let want = (3 << NS_PORT_SHIFT) | if k < 2 { NS_MOREFRAG } else { 0 };
        ensure!(
            s.flags == want,
            "fragment {k}: flags {:#x}, want {want:#x}",
            s.flags
        );
        data.extend(rx.get(i)?);
        i = rx.next(i);
    }
    ensure!(
        check_frame(&data, mac(0xa))? == 9 && data.len() == 3000,
        "reassembled packet differs"
    );
    Ok(())
}
