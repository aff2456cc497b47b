//! Native mode: the two virtio-net NICs of the QEMU hub driven by
//! `virtio_net_netmap.ko` (drivers/virtio-net), netmap buffers straight in
//! the virtqueues. Each test swaps the in-tree virtio_net for it and back.
//! vm-test builds the driver for each kernel line and adds the second
//! virtio-net NIC; without the driver in the guest the tests say so and skip.

use crate::nic::{ip, pktgen, quiet, transfer, wait_oper_up};
use crate::nic_more::{Netns, ping_counts};
use crate::port::{BCAST, Port, all_nic, frame, mac};
use crate::{Test, ensure};
use netmap_uapi::*;
use std::process::Command;
use std::time::{Duration, Instant};

pub const TESTS: &[Test] = &[
    ("native_pktgen_and_payloads", native_pktgen_and_payloads),
    ("native_to_emulated", native_to_emulated),
    ("native_ping_before_after", native_ping_before_after),
    ("native_host_rings", native_host_rings),
    ("native_vale_attach", native_vale_attach),
    ("native_rmmod_while_bound", native_rmmod_while_bound),
    ("native_hostile_slots", native_hostile_slots),
];

const NATIVE_KO: &str = "/lib/modules/virtio_net_netmap.ko";
const INTREE_KO: &str = "/lib/modules/extra/virtio_net.ko";
const DRIVER: &str = "virtio_net_netmap";
const ADMODE: &str = "/sys/module/netmap/parameters/admode";

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    ensure!(
        out.status.success(),
        "{cmd} {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// Interfaces driven by `driver`, sorted by name.
fn nics(driver: &str) -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/sys/class/net") {
        for e in dir.flatten() {
            let link = std::fs::read_link(e.path().join("device/driver")).ok();
            if link.is_some_and(|l| l.file_name().is_some_and(|n| n == driver)) {
                v.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    v.sort();
    v
}

/// The native driver loaded in place of virtio_net (restored on drop).
struct Native {
    a: String,
    b: String,
}

impl Native {
    /// None (after a NOTE) where the driver was not built.
    fn load(test: &str) -> Result<Option<Native>, String> {
        if !std::path::Path::new(NATIVE_KO).exists() {
            println!(
                "NOTE {test}: skipped: {NATIVE_KO} not in the guest (vm-test builds \
                 virtio_net_netmap.ko only for Debian 12's 6.1: its source is that \
                 kernel's virtio_net.c from linux-source-6.1)"
            );
            return Ok(None);
        }
        for n in nics("virtio_net") {
            let _ = ip(&["link", "set", &n, "down"]);
        }
        let _ = run("rmmod", &["virtio_net"]);
        // From here on, dropping `n` restores the in-tree driver.
        let mut n = Native {
            a: String::new(),
            b: String::new(),
        };
        run("insmod", &[NATIVE_KO])?;
        let t0 = Instant::now();
        let mut v = nics(DRIVER);
        while v.len() < 2 && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
            v = nics(DRIVER);
        }
        ensure!(v.len() == 2, "{DRIVER}: interfaces {v:?}, want 2");
        n.a = v[0].clone();
        n.b = v[1].clone();
        for i in [&n.a, &n.b] {
            quiet(i);
            ip(&["link", "set", i, "up"])?;
        }
        wait_oper_up(&n.a)?;
        wait_oper_up(&n.b)?;
        Ok(Some(n))
    }
}

impl Drop for Native {
    fn drop(&mut self) {
        let _ = std::fs::write(ADMODE, "0");
        let _ = run("rmmod", &[DRIVER]);
        let _ = run("insmod", &[INTREE_KO]);
    }
}

/// How many times the driver logged entering native mode (dmesg).
fn native_on_count() -> usize {
    let out = Command::new("dmesg")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| l.contains("netmap: native mode on"))
        .count()
}

/// Native on both NICs: the driver enters native mode; frames with checked
/// payloads both ways; pkt-gen tx on one, rx on the other.
fn native_pktgen_and_payloads() -> Result<(), String> {
    let Some(n) = Native::load("native_pktgen_and_payloads")? else {
        return Ok(());
    };
    let before = native_on_count();
    {
        let a = Port::open(&n.a)?;
        let b = Port::open(&n.b)?;
        ensure!(
            native_on_count() == before + 2,
            "the driver did not report native mode on for both NICs"
        );
        let got = transfer(&a, &b, mac(0x1a), 400)?;
        let back = transfer(&b, &a, mac(0x1b), 400)?;
        println!(
            "NOTE native {} <-> {}: {got} and {back} of 400 frames",
            n.a, n.b
        );
    }
    let (sent, got) = pktgen(&n.a, &n.b, "native -> native")?;
    ensure!(
        sent > 10_000,
        "pkt-gen tx native: only {sent} frames in 3 s"
    );
    ensure!(got > 0 && got <= sent, "{sent} sent, {got} received");
    Ok(())
}

/// Native on one end, the emulated adapter (admode=2) on the other.
fn native_to_emulated() -> Result<(), String> {
    let Some(n) = Native::load("native_to_emulated")? else {
        return Ok(());
    };
    let a = Port::open(&n.a)?;
    std::fs::write(ADMODE, "2").map_err(|e| format!("{ADMODE}: {e}"))?;
    let before = native_on_count();
    let b = Port::open(&n.b)?;
    std::fs::write(ADMODE, "0").map_err(|e| format!("{ADMODE}: {e}"))?;
    ensure!(
        native_on_count() == before,
        "admode=2 still opened native mode"
    );
    transfer(&a, &b, mac(0x2a), 300)?;
    transfer(&b, &a, mac(0x2b), 300)?;
    Ok(())
}

fn ping(ns: &Netns, addr: &str) -> Result<(u32, u32), String> {
    let (_, out) = ns.exec(
        &["ping", "-c", "3", "-W", "1", addr],
        Duration::from_secs(10),
    )?;
    ping_counts(&out).ok_or_else(|| format!("ping output: {}", out.trim()))
}

/// Ordinary traffic: a ping between the two NICs (one in a namespace)
/// works before netmap mode, not while one end is in native mode (its
/// stack is cut off), and again afterwards.
fn native_ping_before_after() -> Result<(), String> {
    let Some(n) = Native::load("native_ping_before_after")? else {
        return Ok(());
    };
    let ns = Netns::new("nmnat")?;
    ip(&["link", "set", &n.b, "netns", "nmnat"])?;
    ip(&["addr", "add", "10.97.0.1/24", "dev", &n.a])?;
    for args in [
        &["/sbin/ip.full", "link", "set", "lo", "up"][..],
        &["/sbin/ip.full", "link", "set", &n.b, "up"],
        &["/sbin/ip.full", "addr", "add", "10.97.0.2/24", "dev", &n.b],
    ] {
        let (code, out) = ns.exec(args, Duration::from_secs(10))?;
        ensure!(code == 0, "{}: {}", args.join(" "), out.trim());
    }
    std::thread::sleep(Duration::from_millis(300));
    let (tx, rx) = ping(&ns, "10.97.0.1")?;
    ensure!(rx > 0, "ping before netmap mode: {rx} of {tx} answered");
    {
        let _p = Port::open(&n.a)?;
        let (tx, rx) = ping(&ns, "10.97.0.1")?;
        ensure!(
            rx == 0,
            "ping while {} is in native mode: {rx} of {tx} answered",
            n.a
        );
    }
    let (tx, rx) = ping(&ns, "10.97.0.1")?;
    ensure!(rx > 0, "ping after netmap mode: {rx} of {tx} answered");
    Ok(())
}

/// Host rings beside native hardware rings: what the stack sends arrives
/// in the host RX ring while the hardware rings move frames natively.
fn native_host_rings() -> Result<(), String> {
    let Some(n) = Native::load("native_host_rings")? else {
        return Ok(());
    };
    let a = Port::open(&n.a)?;
    let b = Port::open(&n.b)?;
    let h = Port::open_with(
        &n.a,
        NmreqRegister {
            nr_mode: NR_REG_SW,
            ..all_nic()
        },
    )?;
    let f = frame(BCAST, mac(0x3a), 7, 80);
    crate::nic::packet_send(&n.a, &f)?;
    let nifp = h.nifp()?;
    let t0 = Instant::now();
    let mut got = false;
    while !got && t0.elapsed() < Duration::from_secs(3) {
        h.rxsync()?;
        let r = h.rx(nifp.ni_rx_rings as usize)?;
        let mut i = r.head();
        while i != r.tail() {
            if r.get(i)? == f {
                got = true;
            }
            i = r.next(i);
        }
        r.set_head_cur(r.tail());
        std::thread::sleep(Duration::from_millis(10));
    }
    ensure!(got, "the stack's frame did not reach the host RX ring");
    transfer(&a, &b, mac(0x3b), 100)?;
    Ok(())
}

/// VALE attach of a native port with its host stack (vale-ctl -h): the
/// interface enters native mode for the switch; frames cross between a
/// VALE port and the other NIC both ways (device RX forwarded from the NAPI
/// poll, switch output copied into the device's TX slots), and what the
/// interface's stack sends reaches the VALE port through `vale0:ethX^`;
/// after vale-ctl -d a user has the port again, natively.
fn native_vale_attach() -> Result<(), String> {
    let Some(n) = Native::load("native_vale_attach")? else {
        return Ok(());
    };
    let vale_ctl = |args: &[&str]| run("/bin/vale-ctl", args);
    let before = native_on_count();
    vale_ctl(&["-h", &format!("vale0:{}", n.a)])?;
    let res = (|| {
        ensure!(
            native_on_count() == before + 1,
            "vale-ctl -h did not put {} in native mode",
            n.a
        );
        let v = Port::open("vale0:v")?;
        let b = Port::open(&n.b)?;
        let got = transfer(&v, &b, mac(0x4a), 300)?;
        let back = transfer(&b, &v, mac(0x4b), 300)?;
        println!(
            "NOTE native vale0:{} <-> {}: {got} and {back} of 300 frames",
            n.a, n.b
        );
        let src = mac(0x4d);
        crate::nic::packet_send(&n.a, &frame(BCAST, src, 0, 80))?;
        let seqs = crate::nic::collect(&v, src, 1, Duration::from_secs(2))?;
        ensure!(
            seqs == [0],
            "the stack's frame did not reach vale0:v through vale0:{}^ ({seqs:?})",
            n.a
        );
        Ok(())
    })();
    vale_ctl(&["-d", &format!("vale0:{}", n.a)])?;
    res?;
    let a = Port::open(&n.a)?;
    let b = Port::open(&n.b)?;
    transfer(&a, &b, mac(0x4c), 100)?;
    Ok(())
}

/// rmmod of the driver while a port is in native mode: the port stops
/// (syncs fail with EIO), nothing crashes, the driver reloads and works.
fn native_rmmod_while_bound() -> Result<(), String> {
    let Some(n) = Native::load("native_rmmod_while_bound")? else {
        return Ok(());
    };
    {
        let a = Port::open(&n.a)?;
        let b = Port::open(&n.b)?;
        transfer(&a, &b, mac(0x5a), 64)?;
        run("rmmod", &[DRIVER])?;
        ensure!(a.txsync().is_err(), "txsync after rmmod succeeded");
        ensure!(b.rxsync().is_err(), "rxsync after rmmod succeeded");
    }
    drop(n);
    let Some(n) = Native::load("native_rmmod_while_bound")? else {
        return Ok(());
    };
    let a = Port::open(&n.a)?;
    let b = Port::open(&n.b)?;
    transfer(&a, &b, mac(0x5b), 64)?;
    Ok(())
}

/// Hostile slots on the native rings (invalid buffer indexes, lengths,
/// head/cur): nothing reaches the device, the kernel stays sane, and the
/// rings work once the slots are valid again.
fn native_hostile_slots() -> Result<(), String> {
    let Some(n) = Native::load("native_hostile_slots")? else {
        return Ok(());
    };
    let a = Port::open(&n.a)?;
    let b = Port::open(&n.b)?;
    let t = a.tx(0)?;
    let good = t.slot(0)?;
    for (idx, len) in [
        (0u32, 60u16),
        (1, 60),
        (u32::MAX, 60),
        (0x7fff_ffff, 60),
        (good.buf_idx, 4096),
        (good.buf_idx, u16::MAX),
    ] {
        t.set_slot(
            0,
            NetmapSlot {
                buf_idx: idx,
                len,
                flags: NS_BUF_CHANGED,
                ptr: 0,
            },
        )?;
        t.set_head_cur(1);
        let _ = a.txsync();
        ensure!(
            t.tail() == t.num_slots() - 1,
            "slot ({idx}, {len}) was sent"
        );
    }
    for (h, c) in [(t.num_slots(), 0), (0, t.num_slots()), (u32::MAX, 1)] {
        t.poke(h, c, t.tail());
        let _ = a.txsync();
    }
    t.set_slot(0, good)?;
    t.set_head_cur(0);
    let _ = a.txsync();
    // RX: the gap slot (kernel-owned, user-writable) with a bad buffer.
    let r = b.rx(0)?;
    let gap = r.num_slots() - 1;
    let g = r.slot(gap)?;
    r.set_slot(
        gap,
        NetmapSlot {
            buf_idx: u32::MAX - 3,
            ..g
        },
    )?;
    transfer(&a, &b, mac(0x6a), 64)?;
    r.set_slot(gap, g)?;
    transfer(&a, &b, mac(0x6b), 200)?;
    transfer(&b, &a, mac(0x6c), 200)?;
    Ok(())
}
