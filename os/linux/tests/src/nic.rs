//! Linux network interfaces through the emulated ("generic") adapter
//! (spec §10.3): veth pairs, device removal while bound, host rings, and
//! the two QEMU NICs (e1000, virtio-net) on the guest's hub.

use crate::port::{BCAST, Port, Ring, check_frame, frame, mac};
use crate::sys::{Fd, errno, errno_name};
use crate::{Test, ensure};
use netmap_uapi::*;
use std::process::Command;
use std::time::{Duration, Instant};

pub const TESTS: &[Test] = &[
    ("nic_veth_both_directions", nic_veth_both_directions),
    ("nic_veth_unplug_while_bound", nic_veth_unplug_while_bound),
    ("nic_veth_host_rings", nic_veth_host_rings),
    ("nic_veth_races", nic_veth_races),
    ("nic_netns_lookup", nic_netns_lookup),
    ("nic_tap_ringsize_and_modes", nic_tap_ringsize_and_modes),
    ("nic_hub_e1000_virtio", nic_hub_e1000_virtio),
    ("nic_rate_veth", nic_rate_veth),
    ("nic_rate_hub", nic_rate_hub),
    ("nic_pktgen_veth", nic_pktgen_veth),
    ("nic_pktgen_hub", nic_pktgen_hub),
];

const IP: &str = "/sbin/ip.full";

/// Runs iproute2's `ip` with `args`; fails on a non-zero exit.
pub(crate) fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new(IP)
        .args(args)
        .output()
        .map_err(|e| format!("{IP}: {e}"))?;
    ensure!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// No IPv6 chatter (router solicitations, MLD) on a test interface.
pub(crate) fn quiet(ifname: &str) {
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"),
        "1",
    );
}

/// Waits (at most 3 s) until `ifname` in this namespace is operationally
/// up: until linkwatch has activated its qdisc, transmitted frames are
/// dropped.
pub(crate) fn wait_oper_up(ifname: &str) -> Result<(), String> {
    let t0 = Instant::now();
    let path = format!("/sys/class/net/{ifname}/operstate");
    loop {
        let st = std::fs::read_to_string(&path).unwrap_or_default();
        if st.trim() == "up" {
            return Ok(());
        }
        ensure!(
            t0.elapsed() < Duration::from_secs(3),
            "{ifname}: operstate {:?} after 3 s",
            st.trim()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A veth pair, up, without IPv6, deleted on drop.
pub(crate) struct Veth {
    pub(crate) a: String,
    pub(crate) b: String,
}

impl Veth {
    pub(crate) fn new(a: &str, b: &str) -> Result<Veth, String> {
        let _ = ip(&["link", "del", a]);
        let _ = ip(&["link", "del", b]);
        ip(&["link", "add", a, "type", "veth", "peer", "name", b])?;
        let v = Veth {
            a: a.to_string(),
            b: b.to_string(),
        };
        for n in [a, b] {
            quiet(n);
            ip(&["link", "set", n, "up"])?;
        }
        wait_oper_up(a)?;
        wait_oper_up(b)?;
        Ok(v)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting one end deletes the pair, wherever the peer is.
        let _ = ip(&["link", "del", &self.a]);
    }
}

/// Our test frames (ethertype 0x88b5) among whatever else arrives.
fn ours(f: &[u8]) -> bool {
    f.len() >= 14 && f[12..14] == [0x88, 0xb5]
}

/// Receives on `p` until `want` test frames from `src` arrived or
/// `timeout`; checks every payload; returns the sequence numbers.
pub(crate) fn collect(
    p: &Port,
    src: [u8; 6],
    want: usize,
    timeout: Duration,
) -> Result<Vec<u32>, String> {
    let t0 = Instant::now();
    let mut seqs = Vec::new();
    while seqs.len() < want && t0.elapsed() < timeout {
        let got = p.recv()?;
        if got.is_empty() {
            std::thread::sleep(Duration::from_millis(2));
        }
        for f in got.iter().filter(|f| ours(f) && f[6..12] == src) {
            seqs.push(check_frame(f, src)?);
        }
    }
    Ok(seqs)
}

/// Sends `frames` through TX ring 0, waiting for room; returns when all
/// were handed to the device.
pub(crate) fn send_all(p: &Port, frames: &[Vec<u8>]) -> Result<(), String> {
    let t0 = Instant::now();
    let mut i = 0;
    while i < frames.len() {
        i += p.send(&frames[i..])?;
        ensure!(
            t0.elapsed() < Duration::from_secs(10),
            "{}: only {i} of {} frames sent",
            p.name,
            frames.len()
        );
    }
    Ok(())
}

/// veth A <-> B, both in netmap mode: every frame arrives, in order, with
/// its exact payload, in both directions.
fn nic_veth_both_directions() -> Result<(), String> {
    let v = Veth::new("nmva", "nmvb")?;
    let a = Port::open(&v.a)?;
    let b = Port::open(&v.b)?;
    ensure!(
        a.reg.nr_mem_id == 1 && b.reg.nr_mem_id == 1,
        "NIC ports not in the global region (mem ids {} {})",
        a.reg.nr_mem_id,
        b.reg.nr_mem_id
    );
    ensure!(
        a.reg.nr_tx_slots == 1024 && a.reg.nr_host_tx_rings == 1,
        "veth port: {} TX slots, {} host TX rings",
        a.reg.nr_tx_slots,
        a.reg.nr_host_tx_rings
    );
    const N: u32 = 300;
    for (tx, rx, src) in [(&a, &b, mac(0xa)), (&b, &a, mac(0xb))] {
        let frames: Vec<Vec<u8>> = (0..N)
            .map(|i| frame(BCAST, src, i, 60 + (i as usize * 37) % 1455))
            .collect();
        // In batches below the backlog limit (netdev_max_backlog 1000).
        for chunk in frames.chunks(100) {
            send_all(tx, chunk)?;
            std::thread::sleep(Duration::from_millis(5));
        }
        let seqs = collect(rx, src, N as usize, Duration::from_secs(5))?;
        ensure!(
            seqs.len() == N as usize,
            "{} -> {}: {} of {N} frames",
            tx.name,
            rx.name,
            seqs.len()
        );
        ensure!(
            seqs.iter().enumerate().all(|(i, &s)| s == i as u32),
            "{} -> {}: frames out of order",
            tx.name,
            rx.name
        );
    }
    Ok(())
}

/// `ip link del` of a bound veth: the command returns promptly, syncs on
/// the dead ports fail with EIO, poll reports POLLERR, close works (the
/// runner checks the pools), and a new device with the same name works.
fn nic_veth_unplug_while_bound() -> Result<(), String> {
    let v = Veth::new("nmua", "nmub")?;
    let a = Port::open(&v.a)?;
    let b = Port::open(&v.b)?;
    send_all(&a, &[frame(BCAST, mac(1), 0, 60)])?;
    let t0 = Instant::now();
    let mut child = Command::new(IP)
        .args(["link", "del", "nmua"])
        .spawn()
        .map_err(|e| format!("spawn ip: {e}"))?;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            return Err("`ip link del` of a bound veth hangs".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    ensure!(status.success(), "ip link del nmua: {status}");
    // The port learns it asynchronously (a work item): wait for EIO.
    for p in [&a, &b] {
        let t0 = Instant::now();
        loop {
            match p.fd.ioctl_val(NIOCTXSYNC, 0) {
                Err(e) if e == libc::EIO => break,
                Err(e) => return Err(format!("{}: TXSYNC: {}", p.name, errno_name(e))),
                Ok(()) => {}
            }
            ensure!(
                t0.elapsed() < Duration::from_secs(3),
                "{}: TXSYNC still succeeds after the device was deleted",
                p.name
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        crate::sys::expect_err(
            &format!("{}: RXSYNC on a deleted device", p.name),
            p.fd.ioctl_val(NIOCRXSYNC, 0),
            libc::EIO,
        )?;
        let rev =
            p.fd.poll(libc::POLLIN, 0)
                .map_err(|e| format!("poll: {}", errno_name(e)))?;
        ensure!(
            rev & libc::POLLERR != 0,
            "{}: poll revents {rev:#x}, want POLLERR",
            p.name
        );
    }
    drop(a);
    drop(b);
    // A new device with the same name is a new port.
    let v2 = Veth::new("nmua", "nmub")?;
    let a = Port::open(&v2.a)?;
    let b = Port::open(&v2.b)?;
    send_all(&a, &[frame(BCAST, mac(2), 5, 80)])?;
    let seqs = collect(&b, mac(2), 1, Duration::from_secs(3))?;
    ensure!(seqs == [5], "after re-creation: received {seqs:?}");
    drop(v);
    Ok(())
}

/// Races with traffic: the receiving end enters and leaves netmap mode
/// repeatedly while a forked sender blasts (rx_handler vs register(off)),
/// then the device is deleted under the sender's feet (transmit vs the
/// unregister notifier). The sender must end with EIO, nothing hangs.
fn nic_veth_races() -> Result<(), String> {
    let v = Veth::new("nmxa", "nmxb")?;
    let stop = crate::proc::Signal::new()?;
    let a_name = v.a.clone();
    let sender = {
        let stop = &stop;
        crate::proc::spawn(move || {
            let a = Port::open(&a_name)?;
            let t = a.tx(0)?;
            let f = frame(BCAST, mac(0x33), 1, 60);
            for i in 0..t.num_slots() {
                t.put(i, &f)?;
            }
            stop.notify();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(20) {
                t.set_head_cur(t.tail());
                match a.fd.ioctl_val(NIOCTXSYNC, 0) {
                    Ok(()) => {}
                    Err(e) if e == libc::EIO => return Ok(()),
                    Err(e) => return Err(format!("sender TXSYNC: {}", errno_name(e))),
                }
            }
            Err("sender never saw EIO".into())
        })?
    };
    stop.wait(5000)?;
    for _ in 0..20 {
        let b = Port::open(&v.b)?;
        let _ = b.recv()?;
        std::thread::sleep(Duration::from_millis(10));
        let _ = b.recv()?;
    }
    let b = Port::open(&v.b)?;
    ip(&["link", "del", &v.a])?;
    sender.wait()?;
    let t0 = Instant::now();
    while b.fd.ioctl_val(NIOCRXSYNC, 0).is_ok() {
        ensure!(
            t0.elapsed() < Duration::from_secs(3),
            "receiver: RXSYNC still succeeds after the device was deleted"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Devices are looked up in the caller's network namespace: a veth end
/// moved into another namespace is unknown (ENXIO) from the initial one,
/// and a process inside that namespace opens it and receives from the
/// other end.
fn nic_netns_lookup() -> Result<(), String> {
    let _ = ip(&["netns", "del", "nmns"]);
    ip(&["netns", "add", "nmns"])?;
    let r = netns_lookup();
    let _ = ip(&["netns", "del", "nmns"]);
    r
}

fn netns_lookup() -> Result<(), String> {
    let v = Veth::new("nmna", "nmnb")?;
    ip(&["link", "set", &v.b, "netns", "nmns"])?;
    crate::sys::expect_err(
        "REGISTER of a device in another namespace",
        crate::port::register(&v.b, crate::port::all_nic()).map(|_| ()),
        libc::ENXIO,
    )?;
    let ready = crate::proc::Signal::new()?;
    let child = {
        let ready = &ready;
        crate::proc::spawn(move || {
            let ns = Fd::open("/run/netns/nmns", libc::O_RDONLY)?;
            // SAFETY: plain syscall on a namespace fd we own.
            let r = unsafe { libc::setns(ns.0, libc::CLONE_NEWNET) };
            ensure!(r == 0, "setns: {}", errno_name(errno()));
            quiet("nmnb");
            // (Receiving needs no qdisc; /sys/class/net shows the initial
            // namespace, so no operstate wait here.)
            ip(&["link", "set", "nmnb", "up"])?;
            let b = Port::open("nmnb")?;
            ready.notify();
            let seqs = collect(&b, mac(0x4e), 3, Duration::from_secs(5))?;
            ensure!(seqs == [0, 1, 2], "inside the namespace: received {seqs:?}");
            Ok(())
        })?
    };
    if let Err(e) = ready.wait(5000) {
        return Err(child.wait().err().unwrap_or(e));
    }
    wait_oper_up(&v.a)?;
    let a = Port::open(&v.a)?;
    let frames: Vec<Vec<u8>> = (0..3).map(|i| frame(BCAST, mac(0x4e), i, 64)).collect();
    send_all(&a, &frames)?;
    child.wait()
}

const RINGSIZE: &str = "/sys/module/netmap/parameters/generic_ringsize";

/// A tap device (tun module): one ring each way, `generic_ringsize`
/// slots (read at the first open), hardware and host rings bound by two
/// files at once, and deleted while both are bound. Non-Ethernet devices
/// (lo) are not netmap ports.
fn nic_tap_ringsize_and_modes() -> Result<(), String> {
    let _ = ip(&["link", "del", "nmtap0"]);
    ip(&["tuntap", "add", "dev", "nmtap0", "mode", "tap"])?;
    let old = std::fs::read_to_string(RINGSIZE).map_err(|e| format!("{RINGSIZE}: {e}"))?;
    let r = tap_checks();
    let _ = std::fs::write(RINGSIZE, old.trim());
    let _ = ip(&["link", "del", "nmtap0"]);
    r
}

fn tap_checks() -> Result<(), String> {
    crate::sys::expect_err(
        "REGISTER lo",
        crate::port::register("lo", crate::port::all_nic()).map(|_| ()),
        libc::ENXIO,
    )?;
    std::fs::write(RINGSIZE, "512").map_err(|e| format!("{RINGSIZE}: {e}"))?;
    let hw = Port::open("nmtap0")?;
    let r = hw.reg;
    ensure!(
        (r.nr_tx_rings, r.nr_rx_rings, r.nr_tx_slots, r.nr_rx_slots) == (1, 1, 512, 512),
        "tap: rings {}/{} slots {}/{}, want 1/1 512/512",
        r.nr_tx_rings,
        r.nr_rx_rings,
        r.nr_tx_slots,
        r.nr_rx_slots
    );
    let sw = Port::open_with(
        "nmtap0",
        NmreqRegister {
            nr_mode: NR_REG_SW,
            ..Default::default()
        },
    )?;
    ensure!(
        sw.reg.nr_tx_slots == 512,
        "second file sees {} slots",
        sw.reg.nr_tx_slots
    );
    // Frames into the down tap and into its host stack: harmless.
    send_all(&hw, &[frame(BCAST, mac(3), 0, 60)])?;
    let h = host_ring(&sw, true)?;
    h.put(h.head(), &frame(BCAST, mac(3), 1, 60))?;
    h.set_head_cur(h.next(h.head()));
    sw.txsync()?;
    ip(&["link", "del", "nmtap0"])?;
    for p in [&hw, &sw] {
        let t0 = Instant::now();
        while p.fd.ioctl_val(NIOCTXSYNC, 0).is_ok() {
            ensure!(
                t0.elapsed() < Duration::from_secs(3),
                "{}: TXSYNC still succeeds after the tap was deleted",
                p.name
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(())
}

/// Host ring `idx` in the TX (`tx`) or RX direction of a port bound with
/// NR_REG_SW.
fn host_ring(p: &Port, tx: bool) -> Result<Ring<'_>, String> {
    let n = p.nifp()?;
    if tx {
        p.tx(n.ni_tx_rings as usize)
    } else {
        p.rx(n.ni_rx_rings as usize)
    }
}

/// Takes the frames in the host RX ring until `pred` matches one.
fn host_rx_wait(p: &Port, pred: &dyn Fn(&[u8]) -> bool) -> Result<Option<Vec<u8>>, String> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        p.rxsync()?;
        let r = host_ring(p, false)?;
        let (mut h, t) = (r.head(), r.tail());
        let mut found = None;
        while h != t {
            let f = r.get(h)?;
            if found.is_none() && pred(&f) {
                found = Some(f);
            }
            h = r.next(h);
        }
        r.set_head_cur(t);
        if found.is_some() {
            return Ok(found);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(None)
}

/// An ARP request "who has `tpa`, tell `spa`" from `sha`.
fn arp_request(sha: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&BCAST);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&tpa);
    f.resize(60, 0);
    f
}

/// NR_REG_SW on a veth: a frame written into the host TX ring reaches the
/// host stack (an ARP request for the interface's address gets answered),
/// and what the stack transmits (that ARP reply, a raw AF_PACKET send)
/// arrives in the host RX ring instead of on the wire.
fn nic_veth_host_rings() -> Result<(), String> {
    let v = Veth::new("nmha", "nmhb")?;
    ip(&["addr", "add", "10.99.0.1/24", "dev", &v.a])?;
    let p = Port::open_with(
        &v.a,
        NmreqRegister {
            nr_mode: NR_REG_SW,
            ..Default::default()
        },
    )?;
    ensure!(
        p.ring_ofs(0)? == 0,
        "NR_REG_SW binds hardware TX ring 0 too"
    );
    // Host TX -> host stack.
    let me = mac(0x99);
    let req = arp_request(me, [10, 99, 0, 2], [10, 99, 0, 1]);
    let r = host_ring(&p, true)?;
    r.put(r.head(), &req)?;
    r.set_head_cur(r.next(r.head()));
    p.txsync()?;
    // Stack -> host RX: the ARP reply to `me`.
    let reply = host_rx_wait(&p, &|f| {
        f.len() >= 42 && f[0..6] == me && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2]
    })?;
    let reply = reply.ok_or("no ARP reply in the host RX ring: the injected request did not reach the stack or the reply was not diverted")?;
    ensure!(
        reply[28..32] == [10, 99, 0, 1] && reply[38..42] == [10, 99, 0, 2],
        "bad ARP reply {:02x?}",
        &reply[..42]
    );
    // A raw AF_PACKET send on the interface: in the host RX ring, exact.
    let f = frame(BCAST, mac(0x77), 77, 200);
    packet_send(&v.a, &f)?;
    let got = host_rx_wait(&p, &|g| ours(g) && g[6..12] == mac(0x77))?;
    ensure!(
        got.as_deref() == Some(&f[..]),
        "AF_PACKET frame in the host RX ring: {:?}",
        got.map(|g| g.len())
    );
    Ok(())
}

/// Sends `f` on `ifname` through an AF_PACKET raw socket.
pub(crate) fn packet_send(ifname: &str, f: &[u8]) -> Result<(), String> {
    let c = std::ffi::CString::new(ifname).map_err(|e| e.to_string())?;
    // SAFETY: c is a valid NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
    ensure!(ifindex != 0, "if_nametoindex {ifname}");
    // SAFETY: plain syscall.
    let s = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    ensure!(s >= 0, "socket(AF_PACKET): {}", errno_name(errno()));
    let s = Fd(s);
    // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_ifindex = ifindex as i32;
    sa.sll_halen = 6;
    sa.sll_addr[..6].copy_from_slice(&f[..6]);
    // SAFETY: f and sa are valid for the given lengths.
    let n = unsafe {
        libc::sendto(
            s.0,
            f.as_ptr().cast(),
            f.len(),
            0,
            (&raw const sa).cast(),
            size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    ensure!(
        n == f.len() as isize,
        "AF_PACKET send: {}",
        errno_name(errno())
    );
    Ok(())
}

/// The guest's interface driven by `driver` (e1000, virtio_net).
fn nic_by_driver(driver: &str) -> Result<String, String> {
    let dir = std::fs::read_dir("/sys/class/net").map_err(|e| e.to_string())?;
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let link = std::fs::read_link(e.path().join("device/driver")).ok();
        if link.is_some_and(|l| l.file_name().is_some_and(|n| n == driver)) {
            return Ok(name);
        }
    }
    Err(format!("no interface with driver {driver}"))
}

/// The two QEMU NICs, up, in netmap mode (e1000 first).
pub(crate) fn hub_ports() -> Result<(Port, Port), String> {
    let e = nic_by_driver("e1000")?;
    let v = nic_by_driver("virtio_net")?;
    for n in [&e, &v] {
        quiet(n);
        ip(&["link", "set", n, "up"])?;
    }
    // Let the links come up (e1000's watchdog reports carrier after a
    // while, then linkwatch activates the qdisc).
    wait_oper_up(&e)?;
    wait_oper_up(&v)?;
    Ok((Port::open(&e)?, Port::open(&v)?))
}

pub(crate) fn hub_down() {
    for d in ["e1000", "virtio_net"] {
        if let Ok(n) = nic_by_driver(d) {
            let _ = ip(&["link", "set", &n, "down"]);
        }
    }
}

/// e1000 <-> virtio-net over the QEMU hub: most frames arrive (a hub may
/// drop), each with its exact payload.
fn nic_hub_e1000_virtio() -> Result<(), String> {
    let r = hub_transfer();
    hub_down();
    r
}

/// `n` frames of varied lengths from `tx` to `rx`, in chunks of 32: at
/// least 90% arrive (a hub may drop), each with its exact payload, no
/// duplicates. Returns how many arrived.
pub fn transfer(tx: &Port, rx: &Port, src: [u8; 6], n: u32) -> Result<usize, String> {
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|i| frame(BCAST, src, i, 60 + (i as usize * 53) % 1455))
        .collect();
    let mut seqs = Vec::new();
    for chunk in frames.chunks(32) {
        send_all(tx, chunk)?;
        seqs.extend(collect(rx, src, chunk.len(), Duration::from_millis(500))?);
    }
    seqs.extend(collect(rx, src, n as usize, Duration::from_millis(300))?);
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    ensure!(
        sorted.len() == seqs.len(),
        "{} -> {}: duplicates",
        tx.name,
        rx.name
    );
    ensure!(
        seqs.len() as u32 >= n * 9 / 10,
        "{} -> {}: only {} of {n} frames arrived",
        tx.name,
        rx.name,
        seqs.len()
    );
    Ok(seqs.len())
}

fn hub_transfer() -> Result<(), String> {
    let (e, v) = hub_ports()?;
    // Ring sizes come from the drivers (ethtool get_ringparam, spec §10.3):
    // e1000's default descriptor rings have 256 entries.
    ensure!(
        (e.reg.nr_tx_slots, e.reg.nr_rx_slots) == (256, 256),
        "e1000 port: {} TX / {} RX slots, want the driver's 256/256",
        e.reg.nr_tx_slots,
        e.reg.nr_rx_slots
    );
    println!(
        "NOTE ring sizes: e1000 {}/{}, virtio-net {}/{} (TX/RX slots)",
        e.reg.nr_tx_slots, e.reg.nr_rx_slots, v.reg.nr_tx_slots, v.reg.nr_rx_slots
    );
    for (tx, rx, src) in [(&e, &v, mac(0xe)), (&v, &e, mac(0xf))] {
        let got = transfer(tx, rx, src, 400)?;
        println!(
            "NOTE nic_hub {} -> {}: {got} of 400 frames",
            tx.name, rx.name
        );
    }
    Ok(())
}

/// Rates of the emulated adapter: a forked receiver counts what arrives on
/// `rx_name` while this process sends 60-byte frames on `tx_name` for
/// `secs` seconds (two processes, two guest CPUs); both print their rate.
/// Returns (frames sent, whether the receiver got any).
fn blast(tx_name: &str, rx_name: &str, what: &str, secs: u64) -> Result<(u64, bool), String> {
    let ready = crate::proc::Signal::new()?;
    let counts = crate::proc::Signal::new()?;
    let (rx_owned, what_owned) = (rx_name.to_string(), what.to_string());
    let child = {
        let (ready, counts) = (&ready, &counts);
        crate::proc::spawn(move || {
            let rx = Port::open(&rx_owned)?;
            ready.notify();
            let mut got = 0u64;
            let t0 = Instant::now();
            let mut last = t0;
            while t0.elapsed() < Duration::from_secs(secs + 1) {
                let _ = rx.fd.poll(libc::POLLIN, 100);
                rx.rxsync()?;
                let r = rx.rx(0)?;
                let n = r.space();
                if n > 0 {
                    got += u64::from(n);
                    last = Instant::now();
                }
                r.set_head_cur(r.tail());
            }
            // Rate over the time frames kept arriving (the sender runs
            // `secs` seconds after our start signal).
            let dt = (last - t0).as_secs_f64().max(1e-3);
            println!(
                "NOTE {what_owned}: rx {:.3} Mpps ({got} frames of 60 bytes in {dt:.2} s)",
                got as f64 / dt / 1e6
            );
            if got > 0 {
                counts.notify();
            }
            Ok(())
        })?
    };
    ready.wait(5000)?;
    let tx = Port::open(tx_name)?;
    let t = tx.tx(0)?;
    let f = frame(BCAST, mac(0x55), 0, 60);
    // Prefill every TX buffer once: only head/cur move afterwards.
    for i in 0..t.num_slots() {
        t.put(i, &f)?;
    }
    let mut sent = 0u64;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        let (h, tail) = (t.head(), t.tail());
        let n = nm_ring_space(t.num_slots(), h, tail);
        if n == 0 {
            let _ = tx.fd.poll(libc::POLLOUT, 100);
            continue;
        }
        t.set_head_cur(tail);
        tx.txsync()?;
        sent += u64::from(n);
    }
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "NOTE {what}: tx {:.3} Mpps ({sent} frames of 60 bytes in {dt:.2} s)",
        sent as f64 / dt / 1e6
    );
    drop(tx);
    child.wait()?;
    Ok((sent, counts.wait(0).is_ok()))
}

/// Throughput of the emulated adapter on a veth pair (figures printed).
fn nic_rate_veth() -> Result<(), String> {
    let v = Veth::new("nmra", "nmrb")?;
    let (sent, got) = blast(&v.a, &v.b, "rate veth nmra->nmrb", 3)?;
    ensure!(sent > 0 && got, "veth rate: nothing sent or received");
    Ok(())
}

/// Throughput e1000 -> virtio-net over the QEMU hub (figures printed).
fn nic_rate_hub() -> Result<(), String> {
    let r = (|| {
        let (e, v) = hub_ports()?;
        let (en, vn) = (e.name.clone(), v.name.clone());
        drop((e, v));
        let (sent, got) = blast(&en, &vn, "rate hub e1000->virtio", 3)?;
        ensure!(sent > 0 && got, "hub rate: nothing sent or received");
        Ok(())
    })();
    hub_down();
    r
}

const PKT_GEN: &str = "/bin/pkt-gen";

/// pkt-gen (examples/pkt-gen, installed in the guest by vm-test) between
/// the two ends of a veth pair: `-f rx` on one, `-f tx -l 60` on the other
/// for 3 s; prints both summaries. Skipped (with a NOTE) without pkt-gen.
fn nic_pktgen_veth() -> Result<(), String> {
    if !std::path::Path::new(PKT_GEN).exists() {
        println!("NOTE nic_pktgen_veth: {PKT_GEN} not installed, skipped");
        return Ok(());
    }
    let v = Veth::new("nmpa", "nmpb")?;
    let (sent, got) = pktgen(&v.a, &v.b, "veth nmpa -> nmpb")?;
    ensure!(got > 0 && got <= sent, "{sent} sent, {got} received");
    Ok(())
}

/// pkt-gen e1000 -> virtio-net over the hub: a poll()-driven sender on a
/// real (emulated) NIC keeps going for the whole run; rates printed.
fn nic_pktgen_hub() -> Result<(), String> {
    if !std::path::Path::new(PKT_GEN).exists() {
        println!("NOTE nic_pktgen_hub: {PKT_GEN} not installed, skipped");
        return Ok(());
    }
    let r = (|| {
        let (ep, vp) = hub_ports()?;
        let (en, vn) = (ep.name.clone(), vp.name.clone());
        drop((ep, vp));
        let (sent, got) = pktgen(&en, &vn, "hub e1000 -> virtio")?;
        // Under TCG the e1000 moves well above 10 kpps; a sender whose
        // poll() is never woken sends about one ring (1024) and stops.
        ensure!(sent > 10_000, "pkt-gen tx stalled: {sent} frames in 3 s");
        ensure!(got > 0 && got <= sent, "{sent} sent, {got} received");
        Ok(())
    })();
    hub_down();
    r
}

/// Runs pkt-gen rx on `rx_if` and pkt-gen tx (60 bytes) on `tx_if` for
/// 3 s; prints the summaries; returns (sent, received).
pub(crate) fn pktgen(tx_if: &str, rx_if: &str, what: &str) -> Result<(u64, u64), String> {
    let spawn = |args: &[&str]| {
        Command::new(PKT_GEN)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("{PKT_GEN}: {e}"))
    };
    let rx = spawn(&["-i", rx_if, "-f", "rx", "-w", "0"])?;
    std::thread::sleep(Duration::from_millis(500));
    let tx = spawn(&["-i", tx_if, "-f", "tx", "-l", "60", "-w", "0"])?;
    std::thread::sleep(Duration::from_secs(3));
    let mut summary = Vec::new();
    let mut counts = [0u64; 2];
    for (i, (dir, child)) in [("tx", tx), ("rx", rx)].into_iter().enumerate() {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let out = child
            .wait_with_output()
            .map_err(|e| format!("pkt-gen {dir}: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let speed = stdout
            .lines()
            .find(|l| l.starts_with("Speed:"))
            .ok_or_else(|| {
                format!(
                    "pkt-gen {dir} printed no summary: {} {}",
                    stdout.trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )
            })?
            .to_string();
        let total = stdout
            .lines()
            .find(|l| l.starts_with("Sent") || l.starts_with("Received"))
            .unwrap_or_default()
            .to_string();
        counts[i] = total
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        summary.push(format!("{dir}: {total} {speed}"));
    }
    println!("NOTE pkt-gen {what}: {}", summary.join(" | "));
    Ok((counts[0], counts[1]))
}
