//! Linux interfaces attached to a VALE switch (spec §8.5), through the
//! emulated adapter: a veth end exchanging checked traffic with a VALE
//! port, the host stack behind a switch (a ping from another namespace),
//! the interface deleted while attached, and the errors of attach/detach.
//!
//! Attach and detach go through the real vale-ctl (-a, -h, -d), listings
//! through VALE_LIST.

use crate::nic::{Veth, collect, send_all};
use crate::nic_more::{ping_counts, veth_to_netns};
use crate::port::{BCAST, Port, frame, mac};
use crate::sys::{Fd, errno_name};
use crate::tools::{vale_ctl_fails, vale_ctl_ok};
use crate::{Test, ensure};
use netmap_uapi::*;
use std::time::{Duration, Instant};

pub const TESTS: &[Test] = &[
    ("vale_nic_veth_traffic", vale_nic_veth_traffic),
    ("vale_nic_host_ping", vale_nic_host_ping),
    (
        "vale_nic_unplug_while_attached",
        vale_nic_unplug_while_attached,
    ),
    ("vale_nic_errors", vale_nic_errors),
    ("vale_nic_polling", vale_nic_polling),
    ("vale_nic_pktgen", vale_nic_pktgen),
    ("vale_nic_hub_pktgen", vale_nic_hub_pktgen),
    (
        "vale_persistent_port_joins_switches",
        vale_persistent_port_joins_switches,
    ),
];

/// NIOCCTRL `reqtype` on `name` with `body`.
fn ctrl<T>(reqtype: u16, name: &str, body: &mut T) -> Result<(), i32> {
    let fd = Fd::open_netmap().map_err(|_| libc::ENODEV)?;
    let mut h = NmreqHeader::new(reqtype, name.as_bytes());
    h.nr_body = std::ptr::from_mut(body) as u64;
    fd.ioctl_ptr(NIOCCTRL, &mut h)
}

/// VALE_ATTACH with `mode`: the port index.
fn attach(name: &str, mode: u32) -> Result<u32, i32> {
    let mut a = NmreqValeAttach::default();
    a.reg.nr_mode = mode;
    ctrl(NETMAP_REQ_VALE_ATTACH, name, &mut a).map(|_| a.port_index)
}

/// VALE_LIST of one name: Some(port index) if the port is on the switch,
/// None if it is not (or the switch does not exist).
fn listed(name: &str) -> Result<Option<u32>, String> {
    let mut l = NmreqValeList::default();
    match ctrl(NETMAP_REQ_VALE_LIST, name, &mut l) {
        Ok(()) if l.nr_port_idx == NM_BDG_NOPORT => Ok(None),
        Ok(()) => Ok(Some(l.nr_port_idx)),
        Err(e) if e == libc::ENOENT => Ok(None),
        Err(e) => Err(format!("VALE_LIST {name}: {}", errno_name(e))),
    }
}

/// Opening `name` must fail with `errno`.
fn open_fails(name: &str, errno: i32) -> Result<(), String> {
    match Port::open(name) {
        Ok(_) => Err(format!("{name} opened while the kernel owns it")),
        Err(e) if e.contains(&errno_name(errno)) => Ok(()),
        Err(e) => Err(format!("{name}: {e}, want {}", errno_name(errno))),
    }
}

/// veth end A attached to vale0 (vale-ctl -a); a VALE port and the other
/// veth end (in netmap mode) exchange 300 frames each way, all arriving in
/// order with their payload; the kernel owns A while attached; after
/// vale-ctl -d a user can open it again.
fn vale_nic_veth_traffic() -> Result<(), String> {
    let v = Veth::new("nmwa", "nmwb")?;
    vale_ctl_ok(&["-a", "vale0:nmwa"])?;
    let r = (|| {
        ensure!(
            listed("vale0:nmwa")? == Some(0),
            "vale0:nmwa not listed as port 0"
        );
        open_fails("nmwa", libc::EBUSY)?;
        open_fails("vale0:nmwa", libc::EBUSY)?;
        let p = Port::open("vale0:p")?;
        let b = Port::open(&v.b)?;
        const N: u32 = 300;
        let (mp, mb) = (mac(0x1a), mac(0x1b));
        // VALE port -> switch -> nmwa (transmit) -> nmwb.
        let to_b: Vec<Vec<u8>> = (0..N)
            .map(|i| frame(BCAST, mp, i, 60 + (i as usize * 41) % 1400))
            .collect();
        for chunk in to_b.chunks(100) {
            send_all(&p, chunk)?;
            std::thread::sleep(Duration::from_millis(5));
        }
        let seqs = collect(&b, mp, N as usize, Duration::from_secs(10))?;
        ensure!(
            seqs.len() == N as usize && seqs.iter().enumerate().all(|(i, &s)| s == i as u32),
            "vale0:p -> nmwb: {} of {N} frames (in order: {})",
            seqs.len(),
            seqs.windows(2).all(|w| w[0] < w[1])
        );
        // nmwb -> nmwa (rx_handler) -> switch -> VALE port, unicast to the
        // MAC the switch learned on vale0:p.
        let to_p: Vec<Vec<u8>> = (0..N)
            .map(|i| frame(mp, mb, i, 60 + (i as usize * 53) % 1400))
            .collect();
        for chunk in to_p.chunks(100) {
            send_all(&b, chunk)?;
            std::thread::sleep(Duration::from_millis(5));
        }
        let seqs = collect(&p, mb, N as usize, Duration::from_secs(10))?;
        ensure!(
            seqs.len() == N as usize && seqs.iter().enumerate().all(|(i, &s)| s == i as u32),
            "nmwb -> vale0:p: {} of {N} frames",
            seqs.len()
        );
        Ok(())
    })();
    let d = vale_ctl_ok(&["-d", "vale0:nmwa"]);
    r?;
    d?;
    ensure!(listed("vale0:nmwa")?.is_none(), "still listed after -d");
    // The interface is the user's again.
    let a = Port::open(&v.a)?;
    drop(a);
    drop(v);
    Ok(())
}

/// The host stack behind a switch: veth end nmha (10.97.0.1) attached with
/// its host stack (vale-ctl -h): a ping from the namespace of nmhb
/// crosses nmha -> vale1 -> host port -> stack and back; a VALE port on
/// the switch sees the ARP broadcasts. After detach the stack answers
/// directly again.
fn vale_nic_host_ping() -> Result<(), String> {
    let (ns, v) = veth_to_netns("nmhns", "nmha", "nmhb", "10.97.0")?;
    vale_ctl_ok(&["-h", "vale1:nmha"])?;
    let r = (|| {
        ensure!(
            listed("vale1:nmha")? == Some(0) && listed("vale1:nmha^")? == Some(1),
            "vale1:nmha / vale1:nmha^ not listed as ports 0 and 1"
        );
        let watcher = Port::open("vale1:w")?;
        let ping = ["ping", "-c", "3", "-W", "2", "10.97.0.1"];
        let (code, out) = ns.exec(&ping, Duration::from_secs(20))?;
        ensure!(
            code == 0 && ping_counts(&out) == Some((3, 3)),
            "ping through vale1: exit {code}: {:?}",
            out.trim()
        );
        // Frames must not wait for later traffic to be forwarded: a frame
        // left behind until the next ping (1 s later) shows as ~1000 ms.
        let max_ms = out
            .split("round-trip min/avg/max = ")
            .nth(1)
            .and_then(|r| r.split('/').nth(2))
            .and_then(|m| m.split_whitespace().next())
            .and_then(|m| m.parse::<f64>().ok());
        ensure!(
            max_ms.is_some_and(|m| m < 500.0),
            "ping through vale1: max RTT {max_ms:?} ms: {:?}",
            out.trim()
        );
        println!(
            "NOTE vale_nic_host_ping: {}",
            out.lines()
                .filter(|l| l.contains("packets") || l.contains("round-trip"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        // The ARP request (broadcast) was flooded to the watcher too.
        let seen = watcher.recv()?;
        ensure!(
            seen.iter()
                .any(|f| f.len() >= 14 && f[..6] == BCAST && f[12..14] == [0x08, 0x06]),
            "the VALE port saw no ARP broadcast ({} frames)",
            seen.len()
        );
        Ok(())
    })();
    let d = vale_ctl_ok(&["-d", "vale1:nmha"]);
    r?;
    d?;
    let (code, out) = ns.exec(
        &["ping", "-c", "2", "-W", "2", "10.97.0.1"],
        Duration::from_secs(20),
    )?;
    ensure!(
        code == 0,
        "ping after detach: exit {code}: {:?}",
        out.trim()
    );
    drop(v);
    drop(ns);
    Ok(())
}

/// `ip link del` of an attached veth: the ports leave the switch (the
/// kernel learns it from a work item), the other ports keep working, and
/// a new interface of the same name can be attached again.
fn vale_nic_unplug_while_attached() -> Result<(), String> {
    let v = Veth::new("nmza", "nmzb")?;
    vale_ctl_ok(&["-h", "vale2:nmza"])?;
    let p = Port::open("vale2:p")?;
    let q = Port::open("vale2:q")?;
    send_all(&p, &[frame(BCAST, mac(0x2a), 0, 60)])?;
    drop(v);
    let t0 = Instant::now();
    while listed("vale2:nmza")?.is_some() || listed("vale2:nmza^")?.is_some() {
        ensure!(
            t0.elapsed() < Duration::from_secs(3),
            "vale2:nmza still on the switch 3 s after ip link del"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    vale_ctl_fails(&["-d", "vale2:nmza"], "detach vale2:nmza", "ENXIO")?;
    // The switch still works for the remaining ports.
    send_all(&p, &[frame(BCAST, mac(0x2a), 1, 60)])?;
    let seqs = collect(&q, mac(0x2a), 2, Duration::from_secs(3))?;
    ensure!(seqs.contains(&1), "vale2:q got {seqs:?} after the unplug");
    // A new device of that name is attached afresh.
    let v2 = Veth::new("nmza", "nmzb")?;
    vale_ctl_ok(&["-a", "vale2:nmza"])?;
    ensure!(listed("vale2:nmza")?.is_some(), "re-attach not listed");
    vale_ctl_ok(&["-d", "vale2:nmza"])?;
    drop(v2);
    Ok(())
}

/// Errors of attach/detach with interfaces: busy interface, attached
/// twice or to a second switch, host rings of the loopback device, bad
/// modes; polling requests on a plain VALE port.
fn vale_nic_errors() -> Result<(), String> {
    let v = Veth::new("nmea", "nmeb")?;
    {
        let _user = Port::open(&v.a)?;
        ensure!(
            attach("vale3:nmea", NR_REG_ALL_NIC) == Err(libc::EBUSY),
            "attach of an interface open by a user: want EBUSY"
        );
    }
    for mode in [NR_REG_SW, NR_REG_ONE_NIC, 0] {
        let r = attach("vale3:nmea", mode);
        ensure!(
            r == Err(libc::EINVAL),
            "attach mode {mode}: {r:?}, want EINVAL"
        );
    }
    // Not an Ethernet device the adapter takes.
    let r = attach("vale3:lo", NR_REG_ALL_NIC);
    ensure!(r == Err(libc::EINVAL), "attach lo: {r:?}, want EINVAL");
    ensure!(
        listed("vale3:x")?.is_none(),
        "failed attaches left switch vale3"
    );
    ensure!(attach("vale3:nmea", NR_REG_ALL_NIC) == Ok(0), "attach");
    let r2 = attach("vale3:nmea", NR_REG_ALL_NIC);
    let r3 = attach("vale4:nmea", NR_REG_NIC_SW);
    vale_ctl_ok(&["-d", "vale3:nmea"])?;
    ensure!(r2 == Err(libc::EBUSY), "second attach: {r2:?}, want EBUSY");
    ensure!(
        r3 == Err(libc::EBUSY),
        "attach to vale4: {r3:?}, want EBUSY"
    );
    ensure!(listed("vale4:x")?.is_none(), "switch vale4 left behind");
    // Polling is for attached interfaces only.
    let _p = Port::open("vale3:plain")?;
    let mut pe = NmreqValePolling {
        nr_mode: NETMAP_POLLING_MODE_SINGLE_CPU,
        nr_num_polling_cpus: 1,
        ..Default::default()
    };
    let r = ctrl(NETMAP_REQ_VALE_POLLING_ENABLE, "vale3:plain", &mut pe);
    ensure!(
        r == Err(libc::EOPNOTSUPP),
        "polling on a plain VALE port: {r:?}, want EOPNOTSUPP"
    );
    drop(v);
    Ok(())
}

/// VALE_POLLING_ENABLE/DISABLE body.
pub(crate) fn polling(name: &str, enable: bool, mode: u32, first: u32, n: u32) -> Result<(), i32> {
    let mut b = NmreqValePolling {
        nr_mode: mode,
        nr_first_cpu_id: first,
        nr_num_polling_cpus: n,
        ..Default::default()
    };
    let t = if enable {
        NETMAP_REQ_VALE_POLLING_ENABLE
    } else {
        NETMAP_REQ_VALE_POLLING_DISABLE
    };
    ctrl(t, name, &mut b)
}

/// Kernel threads called `netmap_poll`, with the CPU they last ran on.
fn poll_threads() -> Vec<(i32, u32)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() != "netmap_poll" {
            continue;
        }
        // Field 39 of /proc/PID/stat: the CPU (after the "(comm)" field).
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let cpu = stat
            .rsplit(") ")
            .next()
            .and_then(|r| r.split_whitespace().nth(36))
            .and_then(|c| c.parse().ok())
            .unwrap_or(u32::MAX);
        v.push((pid, cpu));
    }
    v
}

/// Polling mode (§4.9) on an attached veth end: a kernel thread pinned
/// to the requested CPU forwards what the interface receives (300 frames
/// from the peer reach a VALE port); detach is refused while polling;
/// disable stops the thread. The errors of §4.9 on the way.
fn vale_nic_polling() -> Result<(), String> {
    let v = Veth::new("nmqa", "nmqb")?;
    vale_ctl_ok(&["-a", "vale5:nmqa"])?;
    let r = (|| {
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        ensure!(ncpu >= 2, "the guest has {ncpu} CPU: polling needs 2");
        let single = NETMAP_POLLING_MODE_SINGLE_CPU;
        let multi = NETMAP_POLLING_MODE_MULTI_CPU;
        for (mode, first, n, want) in [
            (single, 0, 0, libc::EINVAL),
            (single, 0, ncpu, libc::EINVAL),
            (multi, 1, 1, libc::EINVAL),
            (7, 0, 1, libc::EINVAL),
        ] {
            let r = polling("vale5:nmqa", true, mode, first, n);
            ensure!(
                r == Err(want),
                "enable mode {mode} first {first} n {n}: {r:?}, want {}",
                errno_name(want)
            );
        }
        ensure!(
            polling("vale5:nmqa", false, single, 0, 1) == Err(libc::EFAULT),
            "disable while not polling: want EFAULT"
        );
        ensure!(poll_threads().is_empty(), "threads left by failed requests");
        polling("vale5:nmqa", true, single, 1, 1)
            .map_err(|e| format!("enable: {}", errno_name(e)))?;
        let t = poll_threads();
        ensure!(
            t.len() == 1 && t[0].1 == 1,
            "want one netmap_poll thread on CPU 1, have {t:?}"
        );
        ensure!(
            polling("vale5:nmqa", true, single, 0, 1) == Err(libc::EFAULT),
            "second enable: want EFAULT"
        );
        let d = crate::tools::run(crate::tools::VALE_CTL, &["-d", "vale5:nmqa"])?;
        ensure!(
            d.0 == 1 && d.2.contains("EBUSY"),
            "detach while polling: {d:?}"
        );
        let p = Port::open("vale5:p")?;
        let b = Port::open(&v.b)?;
        const N: u32 = 300;
        let frames: Vec<Vec<u8>> = (0..N).map(|i| frame(BCAST, mac(0x3b), i, 60)).collect();
        for chunk in frames.chunks(100) {
            send_all(&b, chunk)?;
            std::thread::sleep(Duration::from_millis(5));
        }
        let seqs = collect(&p, mac(0x3b), N as usize, Duration::from_secs(10))?;
        ensure!(
            seqs.len() == N as usize && seqs.iter().enumerate().all(|(i, &s)| s == i as u32),
            "nmqb -> vale5:p while polling: {} of {N} frames",
            seqs.len()
        );
        polling("vale5:nmqa", false, single, 0, 1)
            .map_err(|e| format!("disable: {}", errno_name(e)))?;
        ensure!(poll_threads().is_empty(), "thread left after disable");
        // MULTI on the one ring.
        polling("vale5:nmqa", true, multi, 0, 1)
            .map_err(|e| format!("enable multi: {}", errno_name(e)))?;
        let t = poll_threads();
        ensure!(
            t.len() == 1 && t[0].1 == 0,
            "MULTI 0/1: want one thread on CPU 0, have {t:?}"
        );
        polling("vale5:nmqa", false, multi, 0, 1)
            .map_err(|e| format!("disable multi: {}", errno_name(e)))?;
        Ok(())
    })();
    let _ = polling("vale5:nmqa", false, NETMAP_POLLING_MODE_SINGLE_CPU, 0, 1);
    let d = vale_ctl_ok(&["-d", "vale5:nmqa"]);
    r?;
    d?;
    drop(v);
    Ok(())
}

/// pkt-gen through an attached veth end, both ways, 3 s each: a VALE port
/// -> switch -> nmga (transmit) -> nmgb (netmap mode), and nmgb -> nmga
/// (receive) -> switch -> a VALE port; rates printed.
fn vale_nic_pktgen() -> Result<(), String> {
    let v = Veth::new("nmga", "nmgb")?;
    vale_ctl_ok(&["-a", "vale6:nmga"])?;
    let r = (|| {
        let (sent, got) =
            crate::nic::pktgen("vale6:t", &v.b, "vale6:t -> nmga (attached) -> nmgb")?;
        ensure!(
            got > 0 && got <= sent,
            "to nmgb: {sent} sent, {got} received"
        );
        let (sent, got) =
            crate::nic::pktgen(&v.b, "vale6:r", "nmgb -> nmga (attached) -> vale6:r")?;
        ensure!(
            got > 0 && got <= sent,
            "to vale6:r: {sent} sent, {got} received"
        );
        Ok(())
    })();
    let d = vale_ctl_ok(&["-d", "vale6:nmga"]);
    r?;
    d?;
    drop(v);
    Ok(())
}

/// The e1000 of the QEMU hub attached to a switch: pkt-gen on a VALE port
/// -> switch -> e1000 -> hub -> virtio-net (netmap mode), 3 s; rates
/// printed.
fn vale_nic_hub_pktgen() -> Result<(), String> {
    let r = (|| {
        let (ep, vp) = crate::nic::hub_ports()?;
        let (en, vn) = (ep.name.clone(), vp.name.clone());
        drop((ep, vp));
        let sw = format!("vale7:{en}");
        vale_ctl_ok(&["-a", &sw])?;
        let r = crate::nic::pktgen(
            "vale7:t",
            &vn,
            &format!("vale7:t -> {en} (e1000, attached) -> hub -> {vn}"),
        );
        let d = vale_ctl_ok(&["-d", &sw]);
        let (sent, got) = r?;
        d?;
        ensure!(got > 0 && got <= sent, "{sent} sent, {got} received");
        Ok(())
    })();
    crate::nic::hub_down();
    r
}

/// A persistent port attached to two switches (vale-ctl -n, -a, -a) joins
/// them (§8.4): 300 frames each way between a port of each switch, in
/// order; the kernel owns the port meanwhile; the first attachment cannot
/// end before the second; everything is removed at the end.
fn vale_persistent_port_joins_switches() -> Result<(), String> {
    vale_ctl_ok(&["-n", "nmj0"])?;
    let r = (|| {
        vale_ctl_ok(&["-a", "vale8:nmj0"])?;
        vale_ctl_ok(&["-a", "vale9:nmj0"])?;
        ensure!(
            listed("vale8:nmj0")?.is_some() && listed("vale9:nmj0")?.is_some(),
            "nmj0 not listed on both switches"
        );
        open_fails("nmj0", libc::EBUSY)?;
        vale_ctl_fails(&["-d", "vale8:nmj0"], "detach vale8:nmj0", "EBUSY")?;
        let x = Port::open("vale8:x")?;
        let y = Port::open("vale9:y")?;
        const N: u32 = 300;
        for (tx, rx, src, dst) in [(&x, &y, mac(0x4a), BCAST), (&y, &x, mac(0x4b), mac(0x4a))] {
            let frames: Vec<Vec<u8>> = (0..N)
                .map(|i| frame(dst, src, i, 60 + (i as usize * 29) % 1400))
                .collect();
            for chunk in frames.chunks(100) {
                send_all(tx, chunk)?;
                std::thread::sleep(Duration::from_millis(5));
            }
            let seqs = collect(rx, src, N as usize, Duration::from_secs(10))?;
            ensure!(
                seqs.len() == N as usize && seqs.iter().enumerate().all(|(i, &s)| s == i as u32),
                "{} -> {}: {} of {N} frames",
                tx.name,
                rx.name,
                seqs.len()
            );
        }
        Ok(())
    })();
    let d1 = vale_ctl_ok(&["-d", "vale9:nmj0"]);
    let d0 = vale_ctl_ok(&["-d", "vale8:nmj0"]);
    let rm = vale_ctl_ok(&["-r", "nmj0"]);
    r?;
    d1?;
    d0?;
    rm?;
    Ok(())
}
