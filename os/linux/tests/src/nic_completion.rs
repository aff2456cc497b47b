//! TX completion tracking of the emulated adapter (spec §6.5: "hwtail
//! advances as slots complete"): a TX slot stays kernel-owned until the
//! device is done with its skb.
//!
//! The device that holds skbs here is a `plug` qdisc (sch_plug) on a veth
//! end: it queues every frame until told to release them. (tun/tap and veth
//! orphan skbs in their xmit, i.e. complete them at once, so a tap nobody
//! reads does not hold anything.) The qdisc is set up with rtnetlink
//! directly: there is no `tc` in the guest.

use crate::nic::Veth;
use crate::port::{BCAST, Port, frame, mac};
use crate::sys::errno_name;
use crate::{Test, ensure};
use std::time::{Duration, Instant};

pub const TESTS: &[Test] = &[("nic_tx_completion_plug", nic_tx_completion_plug)];

// rtnetlink (linux/rtnetlink.h, linux/pkt_sched.h).
const RTM_NEWQDISC: u16 = 36;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TC_H_ROOT: u32 = 0xffff_ffff;
const TCQ_PLUG_BUFFER: i32 = 0;
const TCQ_PLUG_RELEASE_INDEFINITE: i32 = 2;
const TCQ_PLUG_LIMIT: i32 = 3;

fn tx_packets(ifname: &str) -> Result<u64, String> {
    let path = format!("/sys/class/net/{ifname}/statistics/tx_packets");
    let s = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    s.trim().parse().map_err(|e| format!("{path}: {e}"))
}

fn nla(buf: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// `tc qdisc add dev IF root handle 1: plug limit LIMIT` (`create`), or
/// `tc qdisc change dev IF root plug <action>`.
fn plug(ifname: &str, create: bool, action: i32, limit: u32) -> Result<(), String> {
    let cname = std::ffi::CString::new(ifname).map_err(|e| e.to_string())?;
    // SAFETY: a NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    ensure!(ifindex != 0, "{ifname}: no such interface");
    let mut msg = vec![0u8; 16];
    // struct tcmsg: family, pad, pad, ifindex, handle, parent, info.
    msg.extend_from_slice(&[0u8; 4]);
    msg.extend_from_slice(&(ifindex as i32).to_ne_bytes());
    msg.extend_from_slice(&0x1_0000u32.to_ne_bytes());
    msg.extend_from_slice(&TC_H_ROOT.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    nla(&mut msg, TCA_KIND, b"plug\0");
    // struct tc_plug_qopt { int action; __u32 limit; }
    let mut opt = action.to_ne_bytes().to_vec();
    opt.extend_from_slice(&limit.to_ne_bytes());
    nla(&mut msg, TCA_OPTIONS, &opt);
    let mut flags = NLM_F_REQUEST | NLM_F_ACK;
    if create {
        flags |= NLM_F_CREATE | NLM_F_EXCL;
    }
    let len = msg.len() as u32;
    msg[0..4].copy_from_slice(&len.to_ne_bytes());
    msg[4..6].copy_from_slice(&RTM_NEWQDISC.to_ne_bytes());
    msg[6..8].copy_from_slice(&flags.to_ne_bytes());
    msg[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // SAFETY: plain socket call.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE) };
    ensure!(
        fd >= 0,
        "netlink socket: {}",
        errno_name(crate::sys::errno())
    );
    let r = (|| {
        // SAFETY: sockaddr_nl is plain old data; all zero (pid 0) is the
        // kernel.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: msg and sa are valid for the given lengths.
        let n = unsafe {
            libc::sendto(
                fd,
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        ensure!(
            n == msg.len() as isize,
            "netlink send: {}",
            errno_name(crate::sys::errno())
        );
        let mut ack = [0u8; 512];
        // SAFETY: ack is valid for its length.
        let n = unsafe { libc::recv(fd, ack.as_mut_ptr().cast(), ack.len(), 0) };
        ensure!(n >= 20, "netlink recv: {}", errno_name(crate::sys::errno()));
        let ty = u16::from_ne_bytes([ack[4], ack[5]]);
        ensure!(ty == NLMSG_ERROR, "netlink: reply type {ty}");
        let err = i32::from_ne_bytes([ack[16], ack[17], ack[18], ack[19]]);
        ensure!(
            err == 0,
            "RTM_NEWQDISC plug on {ifname} (action {action}): {}",
            errno_name(-err)
        );
        Ok(())
    })();
    // SAFETY: we own fd.
    unsafe { libc::close(fd) };
    r
}

/// Frames queued in a plugged qdisc are in flight: their slots stay with
/// the kernel, the TX ring fills up, poll() reports no room; releasing the
/// qdisc completes them and the tail advances again. Then frames still
/// plugged when the port is closed complete after the port and its device
/// binding are gone (the veth is deleted with them queued).
fn nic_tx_completion_plug() -> Result<(), String> {
    let v = Veth::new("nmca", "nmcb")?;
    // A byte limit far above a ring's worth of 60-byte frames.
    plug(&v.a, true, TCQ_PLUG_BUFFER, 1 << 24)?;
    let p = Port::open(&v.a)?;
    let r = p.tx(0)?;
    let n = r.num_slots();
    ensure!(n == 1024, "{} TX slots", n);
    let frames: Vec<Vec<u8>> = (0..n).map(|i| frame(BCAST, mac(0xc), i, 60)).collect();
    ensure!(
        p.send(&frames[..100])? == 100,
        "first 100 frames did not fit"
    );
    ensure!(
        r.space() == n - 1 - 100,
        "100 frames plugged in the qdisc, yet the TX ring has {} free slots (want {})",
        r.space(),
        n - 1 - 100
    );
    // Fill the ring: nothing more fits while everything is in flight.
    let mut sent = 100;
    let t0 = Instant::now();
    while sent < n as usize {
        let k = p.send(&frames[sent..])?;
        if k == 0 {
            break;
        }
        sent += k;
        ensure!(t0.elapsed() < Duration::from_secs(5), "filling the ring");
    }
    ensure!(
        sent == n as usize - 1,
        "{sent} frames queued on a {n}-slot ring with every frame in flight"
    );
    std::thread::sleep(Duration::from_millis(100));
    p.txsync()?;
    ensure!(
        r.space() == 0,
        "{} slots came back while plugged",
        r.space()
    );
    let rev =
        p.fd.poll(libc::POLLOUT, 200)
            .map_err(|e| format!("poll: {}", errno_name(e)))?;
    ensure!(
        rev & libc::POLLOUT == 0,
        "poll reports room (revents {rev:#x}) with every slot in flight"
    );
    // Release: the frames go to the veth, complete, and wake the poller.
    let t1 = Instant::now();
    plug(&v.a, false, TCQ_PLUG_RELEASE_INDEFINITE, 0)?;
    let rev =
        p.fd.poll(libc::POLLOUT, 3000)
            .map_err(|e| format!("poll: {}", errno_name(e)))?;
    ensure!(
        rev & libc::POLLOUT != 0,
        "no POLLOUT {} ms after releasing the qdisc (revents {rev:#x}, {} slots free)",
        t1.elapsed().as_millis(),
        r.space()
    );
    let t0 = Instant::now();
    while r.space() != n - 1 {
        ensure!(
            t0.elapsed() < Duration::from_secs(3),
            "only {} of {} slots back after the release",
            r.space(),
            n - 1
        );
        std::thread::sleep(Duration::from_millis(5));
        p.txsync()?;
    }
    // A full qdisc (10 frames of 60 bytes): the rest stays pending in the
    // ring (NET_XMIT_DROP) and goes out, exactly once, after the release.
    plug(&v.a, false, TCQ_PLUG_BUFFER, 0)?;
    plug(&v.a, false, TCQ_PLUG_LIMIT, 600)?;
    let tx0 = tx_packets(&v.a)?;
    ensure!(p.send(&frames[..30])? == 30, "30 frames did not fit");
    p.txsync()?;
    ensure!(
        r.space() == n - 1 - 30,
        "full qdisc: {} free slots, want {}",
        r.space(),
        n - 1 - 30
    );
    plug(&v.a, false, TCQ_PLUG_RELEASE_INDEFINITE, 0)?;
    let t0 = Instant::now();
    while r.space() != n - 1 {
        ensure!(
            t0.elapsed() < Duration::from_secs(3),
            "full qdisc: only {} of {} slots back after the release",
            r.space(),
            n - 1
        );
        let _ = p.fd.poll(libc::POLLOUT, 100);
        p.txsync()?;
    }
    let sent = tx_packets(&v.a)? - tx0;
    ensure!(sent == 30, "{sent} frames reached the veth, want 30");
    // Plugged again, and closed with frames in flight: they complete when
    // the veth goes (its qdisc is flushed), after the binding is gone.
    plug(&v.a, false, TCQ_PLUG_BUFFER, 0)?;
    plug(&v.a, false, TCQ_PLUG_LIMIT, 1 << 24)?;
    ensure!(p.send(&frames[..50])? == 50, "50 frames after replug");
    p.txsync()?;
    ensure!(
        r.space() == n - 1 - 50,
        "after replug: {} free slots, want {}",
        r.space(),
        n - 1 - 50
    );
    drop(p);
    drop(v);
    Ok(())
}
