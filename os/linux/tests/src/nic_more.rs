//! More tests of Linux interfaces through the emulated adapter: the bridge
//! example between a veth end and its host stack (real IPv4 traffic from
//! another namespace), copy and zero-copy monitors of a veth end, and
//! pkt-gen between the two ends of a veth pair with exact counts.
//!
//! Every test removes its interfaces and namespaces and kills (SIGKILL) and
//! reaps the programs it started, on success and on failure, before it
//! returns: the runner's leak check follows.

use crate::nic::{Veth, ip, send_all, wait_oper_up};
use crate::port::{BCAST, Port, all_nic, check_frame, frame, mac};
use crate::{Test, ensure};
use netmap_uapi::*;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const TESTS: &[Test] = &[
    ("nic_bridge_host_ping", nic_bridge_host_ping),
    ("nic_monitors", nic_monitors),
    ("nic_pktgen_between_veth_ends", nic_pktgen_between_veth_ends),
    ("nic_transparent_mode_ping", nic_transparent_mode_ping),
    ("nic_veth_jumbo_frames", nic_veth_jumbo_frames),
    ("nic_veth_carrier_and_mtu", nic_veth_carrier_and_mtu),
];

const IP: &str = "/sbin/ip.full";
const BRIDGE: &str = "/bin/bridge";
const PKT_GEN: &str = "/bin/pkt-gen";

/// A network namespace, deleted on drop (its devices go with it; a veth end
/// inside takes its peer along).
pub(crate) struct Netns(pub(crate) String);

impl Netns {
    pub(crate) fn new(name: &str) -> Result<Netns, String> {
        let _ = ip(&["netns", "del", name]);
        ip(&["netns", "add", name])?;
        Ok(Netns(name.to_string()))
    }

    /// `ip netns exec NS args...` (at most `timeout`): (exit code, stdout +
    /// stderr).
    pub(crate) fn exec(&self, args: &[&str], timeout: Duration) -> Result<(i32, String), String> {
        let mut all = vec!["netns", "exec", &self.0];
        all.extend_from_slice(args);
        let mut p = Proc::spawn(IP, &all, "netns")?;
        let st = p.wait(timeout)?;
        let code = st.and_then(|s| s.code()).unwrap_or(-1);
        let out = format!("{} {}", p.stdout(), p.stderr());
        ensure!(
            st.is_some(),
            "ip netns exec {} {}: still running after {} s: {}",
            self.0,
            args.join(" "),
            timeout.as_secs(),
            out.trim()
        );
        Ok((code, out))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

/// A child program with stdout/stderr in files under /tmp; killed
/// (SIGKILL) and reaped on drop if still running. Dies with the test
/// process (PR_SET_PDEATHSIG).
struct Proc {
    what: String,
    child: Child,
    status: Option<ExitStatus>,
    out: String,
    err: String,
}

impl Proc {
    fn spawn(path: &str, args: &[&str], tag: &str) -> Result<Proc, String> {
        let what = format!(
            "{} {}",
            path.rsplit('/').next().unwrap_or(path),
            args.join(" ")
        );
        let pid = std::process::id();
        let (out, err) = (
            format!("/tmp/nm_more_{pid}_{tag}.out"),
            format!("/tmp/nm_more_{pid}_{tag}.err"),
        );
        let file = |p: &str| std::fs::File::create(p).map_err(|e| format!("{p}: {e}"));
        let mut cmd = Command::new(path);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(file(&out)?)
            .stderr(file(&err)?);
        let die_with_parent = || {
            // SAFETY: prctl is async-signal-safe and touches no memory.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            Ok(())
        };
        // SAFETY: the closure only makes an async-signal-safe system call.
        unsafe { cmd.pre_exec(die_with_parent) };
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {what}: {e}"))?;
        Ok(Proc {
            what,
            child,
            status: None,
            out,
            err,
        })
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn transcript(&self) -> String {
        let err = self.stderr();
        let lines: Vec<&str> = err.lines().collect();
        format!(
            "[{}] {} stdout: {:?} stderr: {:?}",
            self.what,
            match self.status {
                Some(s) => s.to_string(),
                None => "running".into(),
            },
            self.stdout().trim(),
            lines[lines.len().saturating_sub(6)..].join(" | ")
        )
    }

    fn exited(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status.is_some()
    }

    /// Waits at most `timeout` for the exit; None if still running.
    fn wait(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, String> {
        let t0 = Instant::now();
        while !self.exited() {
            if t0.elapsed() > timeout {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(self.status)
    }

    fn signal(&self, sig: i32) {
        if self.status.is_none()
            && let Ok(pid) = i32::try_from(self.child.id())
        {
            // SAFETY: plain syscall on our own (not yet reaped) child.
            unsafe { libc::kill(pid, sig) };
        }
    }

    /// SIGINT, at most `grace` to exit, then SIGKILL; returns the status
    /// of the exit that followed SIGINT (None: it had to be killed).
    fn stop(&mut self, grace: Duration) -> Result<Option<ExitStatus>, String> {
        self.signal(libc::SIGINT);
        let st = self.wait(grace)?;
        if st.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
        Ok(st)
    }

    /// Waits until stderr (`err`) or stdout contains `pat`.
    fn wait_for(&mut self, pat: &str, err: bool, timeout: Duration) -> Result<(), String> {
        let t0 = Instant::now();
        loop {
            let s = if err { self.stderr() } else { self.stdout() };
            if s.contains(pat) {
                return Ok(());
            }
            ensure!(
                !self.exited(),
                "exited before printing {pat:?}: {}",
                self.transcript()
            );
            ensure!(
                t0.elapsed() < timeout,
                "no {pat:?} after {} s: {}",
                timeout.as_secs(),
                self.transcript()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.out);
        let _ = std::fs::remove_file(&self.err);
    }
}

/// `N packets transmitted, M packets received` of busybox ping: (N, M).
pub(crate) fn ping_counts(out: &str) -> Option<(u32, u32)> {
    let l = out.lines().find(|l| l.contains("packets transmitted"))?;
    let w: Vec<&str> = l.split_whitespace().collect();
    let tx = w.first()?.parse().ok()?;
    let i = w.iter().position(|&x| x == "received,")?;
    let rx = w.get(i.checked_sub(2)?)?.parse().ok()?;
    Some((tx, rx))
}

/// A veth pair `a` (here, `NET.1/24`) <-> `b` (in a new namespace `ns`,
/// `NET.2/24`), up; `a` is operationally up when this returns.
pub(crate) fn veth_to_netns(
    ns: &str,
    a: &str,
    b: &str,
    net: &str,
) -> Result<(Netns, Veth), String> {
    let ns = Netns::new(ns)?;
    let v = Veth::new(a, b)?;
    ip(&["link", "set", &v.b, "netns", &ns.0])?;
    ip(&["addr", "add", &format!("{net}.1/24"), "dev", &v.a])?;
    let addr_b = format!("{net}.2/24");
    for args in [
        &["link", "set", "lo", "up"][..],
        &["link", "set", b, "up"],
        &["addr", "add", &addr_b, "dev", b],
    ] {
        let mut all = vec![IP];
        all.extend_from_slice(args);
        let (code, out) = ns.exec(&all, Duration::from_secs(10))?;
        ensure!(
            code == 0,
            "ip netns exec {} {}: exit {code}: {}",
            ns.0,
            all.join(" "),
            out.trim()
        );
    }
    wait_oper_up(&v.a)?;
    Ok((ns, v))
}

/// veth nmbra (root namespace, 10.98.0.1/24) <-> nmbrb (namespace nmbrns,
/// 10.98.0.2/24), with `bridge -i netmap:nmbra -i netmap:nmbra^` running:
/// 3 pings from the namespace are answered (and, as a control, none while
/// the port is in netmap mode without the bridge). The ARP exchange and the ICMP
/// requests reach the root stack only through netmap (NIC RX ring -> bridge
/// -> host TX ring), the replies leave only through it (host RX ring ->
/// bridge -> NIC TX ring). After the bridge stopped (SIGINT), the
/// interface is back to normal: pings are answered by the stack directly.
fn nic_bridge_host_ping() -> Result<(), String> {
    ensure!(
        std::path::Path::new(BRIDGE).exists(),
        "{BRIDGE} not installed"
    );
    let (ns, v) = veth_to_netns("nmbrns", "nmbra", "nmbrb", "10.98.0")?;

    // Control: with nmbra in netmap mode and nobody forwarding, the stack
    // sees nothing and the ping fails.
    let held = Port::open(&v.a)?;
    let (code, out) = ns.exec(
        &["ping", "-c", "1", "-W", "1", "10.98.0.1"],
        Duration::from_secs(10),
    )?;
    ensure!(
        code != 0 && ping_counts(&out).is_some_and(|(_, rx)| rx == 0),
        "ping answered while nmbra is in netmap mode without a bridge: exit {code}: {:?}",
        out.trim()
    );
    drop(held);
    // Forget the failed ARP resolution of the control.
    let _ = ns.exec(
        &[IP, "neigh", "flush", "dev", "nmbrb"],
        Duration::from_secs(10),
    );

    let (a, a_host) = (format!("netmap:{}", v.a), format!("netmap:{}^", v.a));
    let mut br = Proc::spawn(BRIDGE, &["-i", &a, "-i", &a_host, "-w", "0"], "bridge")?;
    br.wait_for("Ready to go", true, Duration::from_secs(10))?;

    let ping = ["ping", "-c", "3", "-W", "2", "10.98.0.1"];
    let (code, out) = ns.exec(&ping, Duration::from_secs(20))?;
    let counts = ping_counts(&out);
    ensure!(
        !br.exited(),
        "bridge exited during the pings: {}",
        br.transcript()
    );
    ensure!(
        code == 0 && counts == Some((3, 3)),
        "ping through the bridge: exit {code}, {counts:?}: {:?}; bridge: {}",
        out.trim(),
        br.transcript()
    );
    println!(
        "NOTE nic_bridge_host_ping: {}",
        out.lines()
            .filter(|l| l.contains("packets") || l.contains("round-trip"))
            .collect::<Vec<_>>()
            .join(" | ")
    );

    // SIGINT: the bridge exits (status 0) and releases the port.
    let st = br.stop(Duration::from_secs(5))?;
    ensure!(
        st.is_some_and(|s| s.success()),
        "bridge after SIGINT: {}",
        br.transcript()
    );
    drop(br);
    // Out of netmap mode: the stack answers by itself.
    let (code, out) = ns.exec(&ping, Duration::from_secs(20))?;
    ensure!(
        code == 0 && ping_counts(&out) == Some((3, 3)),
        "ping without the bridge: exit {code}: {:?}",
        out.trim()
    );
    drop(v);
    drop(ns);
    Ok(())
}

fn mon(name: &str, flags: u64) -> Result<Port, String> {
    Port::open_with(
        name,
        NmreqRegister {
            nr_flags: flags,
            ..all_nic()
        },
    )
}

/// Our test frames (ethertype 0x88b5).
fn ours(f: &[u8]) -> bool {
    f.len() >= 14 && f[12..14] == [0x88, 0xb5]
}

/// Takes the frames of RX ring 0 of `p` until `want` arrived or `timeout`.
fn gather(p: &Port, want: usize, timeout: Duration) -> Result<Vec<Vec<u8>>, String> {
    let t0 = Instant::now();
    let mut all = Vec::new();
    loop {
        all.extend(p.recv()?);
        if all.len() >= want || t0.elapsed() > timeout {
            return Ok(all);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Checks that `seen` is exactly `want` (count, order, payload).
fn same(what: &str, seen: &[Vec<u8>], want: &[Vec<u8>]) -> Result<(), String> {
    ensure!(
        seen.len() == want.len(),
        "{what}: {} frames ({} ours), want {}",
        seen.len(),
        seen.iter().filter(|f| ours(f)).count(),
        want.len()
    );
    for (i, (s, w)) in seen.iter().zip(want).enumerate() {
        ensure!(
            s == w,
            "{what}: frame {i} differs: {} bytes {:02x?}.., want {} bytes {:02x?}..",
            s.len(),
            &s[..s.len().min(18)],
            w.len(),
            &w[..w.len().min(18)]
        );
    }
    Ok(())
}

/// veth nmma <-> nmmb, both in netmap mode. On nmma: a TX copy monitor
/// (`/t`), an RX copy monitor (`/r`), and a zero-copy monitor (TX and RX).
/// nmma sends 40 frames, nmmb 30: each copy monitor sees exactly the
/// frames of its rings (count, order, payload; NS_TXMON on the TX copies);
/// the zero-copy monitor sees the TX frames once transmitted and reclaimed,
/// the RX frames only once nmma released them.
fn nic_monitors() -> Result<(), String> {
    let v = Veth::new("nmma", "nmmb")?;
    let a = Port::open(&v.a)?;
    let b = Port::open(&v.b)?;
    let m_tx = mon(&v.a, NR_MONITOR_TX)?;
    let m_rx = mon(&v.a, NR_MONITOR_RX)?;
    let z = mon(&v.a, NR_ZCOPY_MON)?;
    ensure!(
        m_tx.reg.nr_mem_id != a.reg.nr_mem_id && z.reg.nr_mem_id == a.reg.nr_mem_id,
        "mem ids: parent {} copy {} zero-copy {}",
        a.reg.nr_mem_id,
        m_tx.reg.nr_mem_id,
        z.reg.nr_mem_id
    );
    let name = |p: &Port| -> Result<String, String> {
        let n = p.nifp()?.ni_name;
        let end = n.iter().position(|&c| c == 0).unwrap_or(n.len());
        Ok(String::from_utf8_lossy(&n[..end]).into_owned())
    };
    let (nt, nr) = (name(&m_tx)?, name(&m_rx)?);
    ensure!(
        nt.starts_with("nmma/t") && nr.starts_with("nmma/r"),
        "monitor names {nt:?} {nr:?}"
    );

    // a -> b: 40 frames of various sizes.
    let out: Vec<Vec<u8>> = (0..40)
        .map(|i| frame(BCAST, mac(0xa), i, 60 + (i as usize * 97) % 1400))
        .collect();
    send_all(&a, &out)?;
    let got_b = gather(&b, out.len(), Duration::from_secs(5))?;
    same("nmmb received", &got_b, &out)?;
    // Transmission is done; one more txsync reclaims the slots (the
    // zero-copy monitor gets TX frames when the parent's tail passes them).
    let t0 = Instant::now();
    loop {
        a.txsync()?;
        let t = a.tx(0)?;
        if t.space() == t.num_slots() - 1 || t0.elapsed() > Duration::from_secs(3) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let seen = gather(&m_tx, out.len(), Duration::from_secs(3))?;
    same("TX copy monitor", &seen, &out)?;
    let r = m_tx.rx(0)?;
    ensure!(
        r.slot(r.head().wrapping_sub(1) % r.num_slots())?.flags & NS_TXMON != 0,
        "NS_TXMON missing on a TX copy"
    );
    let seen = gather(&z, out.len(), Duration::from_secs(3))?;
    same("zero-copy monitor, TX", &seen, &out)?;
    ensure!(
        m_rx.recv()?.is_empty(),
        "RX copy monitor saw frames of the TX direction"
    );

    // b -> a: 30 frames. The RX copy monitor sees them when a's rxsync
    // brings them in; the zero-copy monitor only once a released them.
    let back: Vec<Vec<u8>> = (0..30)
        .map(|i| frame(BCAST, mac(0xb), 100 + i, 64 + (i as usize * 41) % 1000))
        .collect();
    send_all(&b, &back)?;
    let t0 = Instant::now();
    let r = a.rx(0)?;
    loop {
        a.rxsync()?;
        if r.space() as usize >= back.len() || t0.elapsed() > Duration::from_secs(5) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    ensure!(
        r.space() as usize == back.len(),
        "nmma has {} frames, want {}",
        r.space(),
        back.len()
    );
    let mut got_a = Vec::new();
    let mut h = r.head();
    while h != r.tail() {
        got_a.push(r.get(h)?);
        h = r.next(h);
    }
    same("nmma received", &got_a, &back)?;
    let seen = m_rx.recv()?;
    same("RX copy monitor", &seen, &back)?;
    for (i, f) in seen.iter().enumerate() {
        check_frame(f, mac(0xb)).map_err(|e| format!("RX copy {i}: {e}"))?;
    }
    ensure!(
        z.recv()?.is_empty(),
        "zero-copy monitor saw RX frames before the consumer released them"
    );
    // Release the first 10, then the rest.
    r.set_head_cur((r.head() + 10) % r.num_slots());
    a.rxsync()?;
    let seen = z.recv()?;
    same("zero-copy monitor, 10 RX released", &seen, &back[..10])?;
    r.set_head_cur(r.tail());
    a.rxsync()?;
    let seen = z.recv()?;
    same("zero-copy monitor, rest of RX", &seen, &back[10..])?;
    // Nothing else anywhere.
    std::thread::sleep(Duration::from_millis(50));
    ensure!(
        m_tx.recv()?.is_empty() && m_rx.recv()?.is_empty() && z.recv()?.is_empty(),
        "monitors saw extra frames"
    );
    Ok(())
}

/// The count of a pkt-gen `Sent|Received N packets B bytes ...` summary.
fn summary(out: &str, verb: &str) -> Option<(u64, u64)> {
    let l = out.lines().find(|l| l.starts_with(verb))?;
    let w: Vec<&str> = l.split_whitespace().collect();
    if w.get(2) != Some(&"packets") || w.get(4) != Some(&"bytes") {
        return None;
    }
    Some((w.get(1)?.parse().ok()?, w.get(3)?.parse().ok()?))
}

/// pkt-gen `-f rx -n N` on nmkb, then `-f tx -n N -R 10000 -l 60` on nmka
/// (both in netmap mode): the sender reports N, the receiver exactly N
/// (N * 60 bytes), and both exit 0. nic_pktgen_veth only checks that
/// something arrives at full speed (the backlog may drop); here the rate
/// stays far below what the guest moves, so nothing may be lost.
fn nic_pktgen_between_veth_ends() -> Result<(), String> {
    const N: u64 = 20_000;
    ensure!(
        std::path::Path::new(PKT_GEN).exists(),
        "{PKT_GEN} not installed"
    );
    let v = Veth::new("nmka", "nmkb")?;
    let n = N.to_string();
    let mut rx = Proc::spawn(
        PKT_GEN,
        &["-i", &v.b, "-f", "rx", "-n", &n, "-w", "0"],
        "rx",
    )?;
    rx.wait_for("Receiving from", false, Duration::from_secs(10))?;
    let mut tx = Proc::spawn(
        PKT_GEN,
        &[
            "-i", &v.a, "-f", "tx", "-n", &n, "-l", "60", "-R", "10000", "-w", "0",
        ],
        "tx",
    )?;
    let t_st = tx.wait(Duration::from_secs(20))?;
    let r_st = rx.wait(Duration::from_secs(5))?;
    if r_st.is_none() {
        // Let it print its totals.
        rx.stop(Duration::from_secs(3))?;
    }
    ensure!(t_st.is_some_and(|s| s.success()), "tx: {}", tx.transcript());
    let tx_out = tx.stdout();
    ensure!(
        summary(&tx_out, "Sent") == Some((N, N * 60)),
        "tx summary: {}",
        tx.transcript()
    );
    let rx_out = rx.stdout();
    ensure!(
        r_st.is_some_and(|s| s.success()) && summary(&rx_out, "Received") == Some((N, N * 60)),
        "rx, want {N} packets of 60 bytes: {}; tx: {}",
        rx.transcript(),
        tx.transcript()
    );
    let speed = |o: &str| {
        o.lines()
            .find(|l| l.starts_with("Speed:"))
            .unwrap_or_default()
            .to_string()
    };
    println!(
        "NOTE nmka -> nmkb (-R 10000): {N} x 60 bytes; tx {}; rx {}",
        speed(&tx_out),
        speed(&rx_out)
    );
    Ok(())
}

/// Transparent mode (§6.8): a process binds nmta and its host rings,
/// turns NR_FORWARD on and releases every received slot marked NS_FORWARD;
/// the kernel then passes the frames on by itself (wire -> host stack,
/// host stack -> wire), so a ping from the peer's namespace is answered.
fn nic_transparent_mode_ping() -> Result<(), String> {
    let (ns, v) = veth_to_netns("nmtns", "nmta", "nmtb", "10.96.0")?;
    let ready = crate::proc::Signal::new()?;
    let fwd = crate::proc::spawn(|| {
        let p = Port::open_with(
            "nmta",
            NmreqRegister {
                nr_mode: NR_REG_NIC_SW,
                ..all_nic()
            },
        )?;
        let n = p.nifp()?;
        let rings = (0..=n.ni_rx_rings as usize)
            .map(|i| p.rx(i))
            .collect::<Result<Vec<_>, _>>()?;
        for r in &rings {
            r.set_flags(NR_FORWARD);
        }
        ready.notify();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(40) {
            let _ = p.fd.poll(libc::POLLIN, 100);
            for r in &rings {
                let mut h = r.head();
                while h != r.tail() {
                    let s = r.slot(h)?;
                    r.set_slot(
                        h,
                        NetmapSlot {
                            flags: s.flags | NS_FORWARD,
                            ..s
                        },
                    )?;
                    h = r.next(h);
                }
                r.set_head_cur(h);
            }
            p.rxsync()?;
        }
        Ok(())
    })?;
    let r = (|| {
        ready.wait(10_000)?;
        let ping = ["ping", "-c", "3", "-W", "2", "10.96.0.1"];
        let (code, out) = ns.exec(&ping, Duration::from_secs(20))?;
        ensure!(
            code == 0 && ping_counts(&out) == Some((3, 3)),
            "ping through a port in transparent mode: exit {code}: {:?}",
            out.trim()
        );
        Ok(())
    })();
    fwd.kill9();
    drop(v);
    drop(ns);
    r
}

/// Frames larger than a buffer (§6.9) through the emulated adapter: with
/// MTU 4000 on a veth pair, a 3500-byte frame sent as an NS_MOREFRAG chain
/// of two slots leaves as one frame and arrives as a chain of two slots
/// with the same bytes, both ways.
fn nic_veth_jumbo_frames() -> Result<(), String> {
    let v = Veth::new("nmja", "nmjb")?;
    for n in [&v.a, &v.b] {
        ip(&["link", "set", n, "mtu", "4000"])?;
    }
    let a = Port::open(&v.a)?;
    let b = Port::open(&v.b)?;
    for (tx, rx, src) in [(&a, &b, mac(0x5a)), (&b, &a, mac(0x5b))] {
        let big = frame(BCAST, src, 1, 3500);
        let r = tx.tx(0)?;
        let bsize = r.buf_size() as usize;
        let mut h = r.head();
        let pieces: Vec<&[u8]> = big.chunks(bsize).collect();
        for (i, c) in pieces.iter().enumerate() {
            r.put(h, c)?;
            if i + 1 < pieces.len() {
                let s = r.slot(h)?;
                r.set_slot(
                    h,
                    NetmapSlot {
                        flags: NS_MOREFRAG,
                        ..s
                    },
                )?;
            }
            h = r.next(h);
        }
        r.set_head_cur(h);
        tx.txsync()?;
        // Gather the chain on the other end (other traffic may come first).
        let t0 = Instant::now();
        let mut got: Option<Vec<u8>> = None;
        let mut cur: Vec<u8> = Vec::new();
        let mut slots = 0;
        while got.is_none() && t0.elapsed() < Duration::from_secs(5) {
            rx.rxsync()?;
            let rr = rx.rx(0)?;
            let (mut i, t) = (rr.head(), rr.tail());
            while i != t {
                let s = rr.slot(i)?;
                cur.extend_from_slice(&rr.get(i)?);
                slots += 1;
                if s.flags & NS_MOREFRAG == 0 {
                    if cur.len() > 14 && cur[6..12] == src {
                        got = Some(std::mem::take(&mut cur));
                        break;
                    }
                    cur.clear();
                    slots = 0;
                }
                i = rr.next(i);
            }
            rr.set_head_cur(t);
            if got.is_none() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let got = got.ok_or_else(|| {
            format!(
                "{} -> {}: the 3500-byte frame did not arrive",
                tx.name, rx.name
            )
        })?;
        ensure!(
            got == big && slots == pieces.len(),
            "{} -> {}: got {} bytes in {slots} slots, want {} in {}",
            tx.name,
            rx.name,
            got.len(),
            big.len(),
            pieces.len()
        );
    }
    Ok(())
}

/// Carrier and MTU (§10.3) on a veth end in netmap mode: with the peer
/// down (no carrier) frames are dropped and the TX ring keeps moving (no
/// stall, slots come back); frames above the MTU are dropped, the others
/// pass; once the peer is up again traffic flows.
fn nic_veth_carrier_and_mtu() -> Result<(), String> {
    let v = Veth::new("nmca", "nmcb")?;
    let a = Port::open(&v.a)?;
    let b = Port::open(&v.b)?;
    ip(&["link", "set", &v.b, "down"])?;
    let t0 = Instant::now();
    while std::fs::read_to_string("/sys/class/net/nmca/carrier")
        .unwrap_or_default()
        .trim()
        != "0"
    {
        ensure!(
            t0.elapsed() < Duration::from_secs(3),
            "nmca kept its carrier"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Three rings' worth: a stuck ring would stop send_all.
    let frames: Vec<Vec<u8>> = (0..3000).map(|i| frame(BCAST, mac(0x6a), i, 60)).collect();
    send_all(&a, &frames)?;
    ip(&["link", "set", &v.b, "up"])?;
    wait_oper_up(&v.a)?;
    wait_oper_up(&v.b)?;
    let _ = b.recv()?;
    // MTU 1500: a 1514-byte frame passes, a 1600-byte one is dropped.
    let ok = frame(BCAST, mac(0x6b), 1, 1514);
    let big = frame(BCAST, mac(0x6b), 2, 1600);
    send_all(&a, &[big, ok])?;
    let t0 = Instant::now();
    let mut seqs = Vec::new();
    while t0.elapsed() < Duration::from_secs(3) && !seqs.contains(&1) {
        for f in b.recv()? {
            if f.len() > 14 && f[6..12] == mac(0x6b) {
                seqs.push(check_frame(&f, mac(0x6b))?);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    ensure!(
        seqs == [1],
        "after carrier came back: received {seqs:?}, want [1] (the frame above the MTU dropped)"
    );
    Ok(())
}
