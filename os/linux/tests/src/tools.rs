//! The example programs (examples/: pkt-gen, vale-ctl, bridge) against the real
//! module: `cargo xtask vm-test` puts their static builds in `/bin`. Every test
//! spawns them with deadlines well below the runner's 60 s alarm and kills
//! (and reaps) whatever is still running when it returns, so the leak check
//! that follows sees every port closed. Rate figures of pkt-gen are printed as
//! `NOTE` lines.

use crate::port::Port;
use crate::{Test, ensure};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TESTS: &[Test] = &[
    ("tool_pktgen_vale", pktgen_vale),
    ("tool_pktgen_vale_rate", pktgen_vale_rate),
    ("tool_pktgen_pipe", pktgen_pipe),
    ("tool_pktgen_extmem", pktgen_extmem),
    ("tool_pktgen_offset", pktgen_offset),
    ("tool_pktgen_ping_pong_vale", ping_pong_vale),
    ("tool_pktgen_ping_pong_pipe", ping_pong_pipe),
    ("tool_vale_ctl_list_info", vale_ctl_list_info),
    ("tool_vale_ctl_failures", vale_ctl_failures),
    ("tool_bridge_pipes_copy", bridge_pipes_copy),
    ("tool_bridge_pipes_zerocopy", bridge_pipes_zerocopy),
];

const PKT_GEN: &str = "/bin/pkt-gen";
pub(crate) const VALE_CTL: &str = "/bin/vale-ctl";
const BRIDGE: &str = "/bin/bridge";

/// Packets per tx/rx run (TCG guests move well under 1 Mpps).
const N: u64 = 100_000;
/// Round trips per ping run.
const K: u64 = 1000;
/// Time for one tool run, start to exit (the runner's alarm is at 60 s).
const RUN_TIMEOUT: Duration = Duration::from_secs(40);
/// Time for a started tool to open its port.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Output of a child, collected by reader threads.
#[derive(Default)]
struct Output {
    stdout: String,
    stderr: String,
}

/// A running tool; killed (SIGKILL) and reaped on drop if still running.
struct Tool {
    what: String,
    child: Child,
    out: Arc<Mutex<Output>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Tool {
    fn spawn(path: &str, args: &[&str]) -> Result<Tool, String> {
        let what = format!(
            "{} {}",
            path.rsplit('/').next().unwrap_or(path),
            args.join(" ")
        );
        let mut cmd = Command::new(path);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // If the test process dies (e.g. by the runner's alarm), the tool dies
        // with it.
        let die_with_parent = || {
            // SAFETY: prctl is async-signal-safe and touches no memory.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            Ok(())
        };
        // SAFETY: the closure only makes an async-signal-safe system call.
        unsafe { cmd.pre_exec(die_with_parent) };
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {what}: {e}"))?;
        let out = Arc::new(Mutex::new(Output::default()));
        let mut readers = Vec::new();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        for (stream, is_err) in [
            (Box::new(stdout) as Box<dyn Read + Send>, false),
            (Box::new(stderr), true),
        ] {
            let out = Arc::clone(&out);
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
                    let s = if is_err { &mut o.stderr } else { &mut o.stdout };
                    s.push_str(&line);
                    s.push('\n');
                }
            }));
        }
        Ok(Tool {
            what,
            child,
            out,
            readers,
            status: None,
        })
    }

    fn stdout(&self) -> String {
        self.out
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stdout
            .clone()
    }

    fn stderr(&self) -> String {
        self.out
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stderr
            .clone()
    }

    /// Both outputs, for failure messages.
    fn transcript(&self) -> String {
        let o = self.out.lock().unwrap_or_else(|p| p.into_inner());
        format!(
            "[{}] stdout: {:?} stderr: {:?}",
            self.what,
            o.stdout.trim(),
            tail(&o.stderr, 6)
        )
    }

    fn exited(&mut self) -> Result<bool, String> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .map_err(|e| format!("wait {}: {e}", self.what))?;
        }
        Ok(self.status.is_some())
    }

    /// Waits until stdout contains `pat` (the tool has opened its port).
    fn wait_for(&mut self, pat: &str) -> Result<(), String> {
        let t0 = Instant::now();
        loop {
            if self.stdout().contains(pat) {
                return Ok(());
            }
            if self.exited()? {
                self.join_readers();
                return Err(format!(
                    "exited ({}) before printing {pat:?}: {}",
                    self.status_str(),
                    self.transcript()
                ));
            }
            if t0.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "no {pat:?} after {} s: {}",
                    START_TIMEOUT.as_secs(),
                    self.transcript()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: i32) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: plain syscall on our own (not yet reaped) child.
            unsafe { libc::kill(pid, sig) };
        }
    }

    fn join_readers(&mut self) {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }

    fn status_str(&self) -> String {
        match self.status {
            Some(s) => s.to_string(),
            None => "running".into(),
        }
    }

    /// Waits for the exit until `deadline`; past it, SIGINT (the tools print
    /// their totals), then SIGKILL, and an error with the output. Ok: stdout.
    fn finish(&mut self, deadline: Instant) -> Result<String, String> {
        while !self.exited()? {
            if Instant::now() > deadline {
                self.signal(libc::SIGINT);
                let t = Instant::now();
                while !self.exited()? && t.elapsed() < Duration::from_secs(3) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if !self.exited()? {
                    let _ = self.child.kill();
                    self.status = self.child.wait().ok();
                }
                self.join_readers();
                return Err(format!(
                    "still running at the deadline: {}",
                    self.transcript()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.join_readers();
        Ok(self.stdout())
    }

    /// [`Tool::finish`], and the exit status must be 0.
    fn finish_ok(&mut self, deadline: Instant) -> Result<String, String> {
        let out = self.finish(deadline)?;
        ensure!(
            self.status.is_some_and(|s| s.success()),
            "exit status {}: {}",
            self.status_str(),
            self.transcript()
        );
        Ok(out)
    }

    /// SIGINT, then [`Tool::finish_ok`].
    fn interrupt(&mut self) -> Result<String, String> {
        self.signal(libc::SIGINT);
        self.finish_ok(Instant::now() + Duration::from_secs(10))
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        if self.status.is_none() && self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.join_readers();
    }
}

/// Runs a tool to completion: (exit code, stdout, stderr).
pub(crate) fn run(path: &str, args: &[&str]) -> Result<(i32, String, String), String> {
    let mut t = Tool::spawn(path, args)?;
    let _ = t.finish(Instant::now() + Duration::from_secs(15))?;
    let code = t.status.and_then(|s| s.code()).unwrap_or(-1);
    let o = t.out.lock().unwrap_or_else(|p| p.into_inner());
    Ok((code, o.stdout.clone(), o.stderr.clone()))
}

/// Runs vale-ctl, which must exit 0; returns stdout.
pub(crate) fn vale_ctl_ok(args: &[&str]) -> Result<String, String> {
    let (code, out, err) = run(VALE_CTL, args)?;
    ensure!(
        code == 0,
        "vale-ctl {}: exit {code}, stdout {:?}, stderr {:?}",
        args.join(" "),
        out.trim(),
        err.trim()
    );
    Ok(out)
}

/// Runs vale-ctl, which must fail with exit status 1 and a message on stderr
/// starting with `failed to <action>` and naming `errno`; returns stderr.
pub(crate) fn vale_ctl_fails(args: &[&str], action: &str, errno: &str) -> Result<String, String> {
    let (code, out, err) = run(VALE_CTL, args)?;
    let want = format!("failed to {action}");
    ensure!(
        code == 1 && err.starts_with(&want) && err.contains(errno) && out.is_empty(),
        "vale-ctl {}: exit {code}, stdout {:?}, stderr {:?}; want exit 1 and \"{want} ...{errno}...\"",
        args.join(" "),
        out.trim(),
        err.trim()
    );
    Ok(err)
}

fn tail(s: &str, n: usize) -> String {
    let l: Vec<&str> = s.lines().collect();
    l[l.len().saturating_sub(n)..].join(" | ")
}

/// The line of `out` starting with `prefix`.
fn line<'a>(out: &'a str, prefix: &str) -> Result<&'a str, String> {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .ok_or_else(|| format!("no {prefix:?} line in {:?}", out.trim()))
}

/// The packet count of a `Sent|Received N packets B bytes ...` summary.
fn summary_count(out: &str, verb: &str) -> Result<(u64, u64), String> {
    let l = line(out, &format!("{verb} "))?;
    let w: Vec<&str> = l.split_whitespace().collect();
    let num = |i: usize| -> Result<u64, String> {
        w.get(i)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad summary {l:?}"))
    };
    ensure!(
        w.get(2) == Some(&"packets") && w.get(4) == Some(&"bytes"),
        "bad summary {l:?}"
    );
    Ok((num(1)?, num(3)?))
}

/// pkt-gen rx -n N on `rx_port`, then tx -n N of 60-byte frames on
/// `tx_port` (with extra arguments): both exit 0, exactly N packets (N * 60
/// bytes) received.
pub(crate) fn tx_rx(
    tx_port: &str,
    tx_args: &[&str],
    rx_port: &str,
    rx_args: &[&str],
) -> Result<(), String> {
    let n = N.to_string();
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut args = vec!["-i", rx_port, "-f", "rx", "-n", &n, "-w", "0"];
    args.extend_from_slice(rx_args);
    let mut rx = Tool::spawn(PKT_GEN, &args)?;
    rx.wait_for("Receiving from")?;
    let mut args = vec!["-i", tx_port, "-f", "tx", "-n", &n, "-l", "60", "-w", "0"];
    args.extend_from_slice(tx_args);
    let mut tx = Tool::spawn(PKT_GEN, &args)?;
    let tx_out = tx.finish_ok(deadline)?;
    let rx_out = rx
        .finish_ok(deadline)
        .map_err(|e| format!("rx: {e}; tx: {}", tx.transcript()))?;
    let sent = summary_count(&tx_out, "Sent")?;
    ensure!(
        sent == (N, N * 60),
        "tx summary: {sent:?}, want {N} packets"
    );
    let got = summary_count(&rx_out, "Received")?;
    ensure!(
        got == (N, N * 60),
        "rx summary {:?}, want {N} packets of 60 bytes",
        line(&rx_out, "Received")?
    );
    let with = |args: &[&str]| {
        if args.is_empty() {
            String::new()
        } else {
            format!(" ({})", args.join(" "))
        }
    };
    println!(
        "NOTE {tx_port}{} -> {rx_port}{}: {N} x 60 bytes; tx {}; rx {}",
        with(tx_args),
        with(rx_args),
        line(&tx_out, "Speed:")?,
        line(&rx_out, "Speed:")?
    );
    Ok(())
}

/// pkt-gen tx/rx through a VALE switch: exact count under -n. VALE has no
/// flow control (a full destination ring drops), and the receiver is slower
/// than the sender: the sender is rate limited to 25 Kpps, the receiver has
/// 4096-slot rings, so the receiver may stall for 160 ms (TCG guests on a
/// busy host stall for tens of ms; at 100 Kpps a run lost 1800 packets).
fn pktgen_vale() -> Result<(), String> {
    tx_rx("vale0:a", &["-R", "25000"], "vale0:b", &["-C", "4096"])
}

/// pkt-gen tx/rx through a VALE switch, each port in a region over a file
/// of its own (`@extmem:file=`, the sizes of the receiver's 4096-slot rings
/// given as `ring-size`).
fn pktgen_extmem() -> Result<(), String> {
    let files = ["/tmp/pg-extmem-tx", "/tmp/pg-extmem-rx"];
    for f in files {
        std::fs::File::create(f)
            .and_then(|h| h.set_len(40 << 20))
            .map_err(|e| format!("{f}: {e}"))?;
    }
    let r = tx_rx(
        "vale31:a@extmem:file=/tmp/pg-extmem-tx",
        &["-R", "25000"],
        "vale31:b@extmem:file=/tmp/pg-extmem-rx,ring-size=65792",
        &["-C", "4096"],
    );
    for f in files {
        let _ = std::fs::remove_file(f);
    }
    r
}

/// pkt-gen tx/rx through a VALE switch with `@offset` on both ports (data
/// 64 bytes into the sender's buffers, 100 into the receiver's).
fn pktgen_offset() -> Result<(), String> {
    tx_rx(
        "vale43:a@offset:initial=64",
        &["-R", "25000"],
        "vale43:b@offset:initial=100",
        &["-C", "4096"],
    )
}

/// pkt-gen tx at full speed through a VALE switch: all N leave, the receiver
/// (-W: stops when idle) gets at most N (VALE drops when its ring is full).
fn pktgen_vale_rate() -> Result<(), String> {
    let n = N.to_string();
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut rx = Tool::spawn(PKT_GEN, &["-i", "vale1:b", "-f", "rx", "-W", "-w", "0"])?;
    rx.wait_for("Receiving from")?;
    let mut tx = Tool::spawn(
        PKT_GEN,
        &["-i", "vale1:a", "-f", "tx", "-n", &n, "-l", "60", "-w", "0"],
    )?;
    let tx_out = tx.finish_ok(deadline)?;
    let rx_out = rx.finish_ok(deadline)?;
    ensure!(
        summary_count(&tx_out, "Sent")? == (N, N * 60),
        "tx: {:?}",
        line(&tx_out, "Sent")?
    );
    let (pkts, bytes) = summary_count(&rx_out, "Received")?;
    ensure!(
        pkts > 0 && pkts <= N && bytes == pkts * 60,
        "rx: {:?}",
        line(&rx_out, "Received")?
    );
    println!(
        "NOTE vale1:a -> vale1:b unlimited: tx {} {}; rx {} {}",
        line(&tx_out, "Sent")?,
        line(&tx_out, "Speed:")?,
        line(&rx_out, "Received")?,
        line(&rx_out, "Speed:")?
    );
    Ok(())
}

/// pkt-gen tx/rx through a pipe (`netmap:` is prepended by pkt-gen; the parent
/// `pipeA` is created by the kernel). Pipes have end-to-end flow control: full
/// speed, nothing lost.
fn pktgen_pipe() -> Result<(), String> {
    tx_rx("pipeA{1", &[], "pipeA}1", &[])
}

/// `-f pong -n K` on one port, `-f ping -n K` on the other: K round trips,
/// with min/avg/max RTT.
fn ping_pong(ping_port: &str, pong_port: &str) -> Result<(), String> {
    let k = K.to_string();
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut pong = Tool::spawn(
        PKT_GEN,
        &["-i", pong_port, "-f", "pong", "-n", &k, "-w", "0"],
    )?;
    pong.wait_for("Working on")?;
    let mut ping = Tool::spawn(
        PKT_GEN,
        &["-i", ping_port, "-f", "ping", "-n", &k, "-w", "0"],
    )?;
    let ping_out = ping.finish_ok(deadline)?;
    let pong_out = pong
        .finish_ok(deadline)
        .map_err(|e| format!("pong: {e}; ping: {}", ping.transcript()))?;
    let sent = line(&ping_out, "Sent ")?;
    ensure!(
        sent.starts_with(&format!("Sent {K} packets, received {K} replies")),
        "ping: {sent:?}"
    );
    let rtt = line(&ping_out, "RTT over ")?;
    // RTT over K packets: min X av Y max Z ns
    let w: Vec<&str> = rtt.split_whitespace().collect();
    let num = |i: usize| w.get(i).and_then(|s| s.parse::<u64>().ok());
    let (count, min, av, max) = (num(2), num(5), num(7), num(9));
    ensure!(
        w.len() == 11
            && count == Some(K)
            && w[4] == "min"
            && w[6] == "av"
            && w[8] == "max"
            && w[10] == "ns",
        "ping: {rtt:?}"
    );
    let (min, av, max) = (min.unwrap_or(0), av.unwrap_or(0), max.unwrap_or(0));
    ensure!(
        0 < min && min <= av && av <= max,
        "ping RTT not ordered: {rtt:?}"
    );
    let replied = line(&pong_out, "Replied to ")?;
    ensure!(
        replied.starts_with(&format!("Replied to {K} packets")),
        "pong: {replied:?}"
    );
    println!("NOTE {ping_port} <-> {pong_port}: {rtt}");
    Ok(())
}

fn ping_pong_vale() -> Result<(), String> {
    ping_pong("vale2:ping", "vale2:pong")
}

fn ping_pong_pipe() -> Result<(), String> {
    ping_pong("pipeP{1", "pipeP}1")
}

/// `vale-ctl` lists the ports that are open (one held by the test, one by a
/// running pkt-gen), `-l` prints the indexes of one port, `-g` its info, all
/// with exit status 0; closed ports disappear from the listing.
fn vale_ctl_list_info() -> Result<(), String> {
    let held = Port::open("vale3:held")?;
    let mut rx = Tool::spawn(PKT_GEN, &["-i", "vale3:rx", "-f", "rx", "-w", "0"])?;
    rx.wait_for("Receiving from")?;

    let all = vale_ctl_ok(&[])?;
    let entry = |name: &str| -> Result<(u32, u32), String> {
        let l = line(&all, &format!("{name} "))?;
        let w: Vec<&str> = l.split_whitespace().collect();
        match w[..] {
            [_, "bridge_idx", b, "port_idx", p] => Ok((
                b.parse().map_err(|_| format!("bad line {l:?}"))?,
                p.parse().map_err(|_| format!("bad line {l:?}"))?,
            )),
            _ => Err(format!("bad line {l:?}")),
        }
    };
    let (b_held, p_held) = entry("vale3:held")?;
    let (b_rx, p_rx) = entry("vale3:rx")?;
    ensure!(
        b_held == b_rx && p_held == 0 && p_rx == 1,
        "listing: {:?}",
        all.trim()
    );
    println!("NOTE vale-ctl: {}", all.trim().replace('\n', " | "));

    for (name, idx) in [("vale3:held", p_held), ("vale3:rx", p_rx)] {
        let out = vale_ctl_ok(&["-l", name])?;
        let want = format!("{name} bridge_idx {b_held} port_idx {idx}");
        ensure!(
            out.trim() == want,
            "-l {name}: {:?}, want {want:?}",
            out.trim()
        );
    }

    let out = vale_ctl_ok(&["-g", "vale3:held"])?;
    let r = &held.reg;
    let want = format!(
        "vale3:held: memsize {} tx_slots {} rx_slots {} tx_rings {} rx_rings {} mem_id {}",
        r.nr_memsize, r.nr_tx_slots, r.nr_rx_slots, r.nr_tx_rings, r.nr_rx_rings, r.nr_mem_id
    );
    ensure!(out.trim() == want, "-g: {:?}, want {want:?}", out.trim());
    println!("NOTE vale-ctl -g vale3:held: {}", out.trim());

    // pkt-gen stops on SIGINT with status 0; its port leaves the switch.
    let rx_out = rx.interrupt()?;
    ensure!(
        rx_out.contains("Received nothing."),
        "rx received traffic: {rx_out:?}"
    );
    let all = vale_ctl_ok(&[])?;
    ensure!(
        all.contains("vale3:held ") && !all.contains("vale3:rx "),
        "listing after pkt-gen exited: {:?}",
        all.trim()
    );
    drop(held);
    let all = vale_ctl_ok(&[])?;
    ensure!(
        !all.contains("vale3:"),
        "listing after close: {:?}",
        all.trim()
    );
    Ok(())
}

/// Failures: exit status 1 and `failed to <action> <name>: ...` on stderr.
fn vale_ctl_failures() -> Result<(), String> {
    let _held = Port::open("vale4:eph")?;
    // An ephemeral port is not attached: ENXIO, as is a port of no switch.
    let err = vale_ctl_fails(&["-d", "vale4:eph"], "detach vale4:eph", "ENXIO")?;
    println!("NOTE vale-ctl -d vale4:eph: {}", err.trim());
    vale_ctl_fails(&["-d", "vale5:none"], "detach vale5:none", "ENXIO")?;
    // No such switch.
    vale_ctl_fails(&["-l", "vale5:none"], "list vale5:none", "ENOENT")?;
    // No such interface.
    vale_ctl_fails(
        &["-g", "nm_no_such_if"],
        "obtain info for nm_no_such_if",
        "ENXIO",
    )?;
    // Persistent ports: -n creates (status 0), a second -n fails, -r
    // removes, a second -r finds nothing (more in persistent.rs).
    vale_ctl_ok(&["-n", "nmv0"])?;
    let err = vale_ctl_fails(
        &["-n", "nmv0", "-C", "256,256,1,1"],
        "create nmv0",
        "EEXIST",
    )?;
    println!("NOTE vale-ctl -n nmv0 (twice): {}", err.trim());
    vale_ctl_ok(&["-r", "nmv0"])?;
    vale_ctl_fails(&["-r", "nmv0"], "remove nmv0", "ENXIO")?;
    // A bad -l name is refused before any request.
    let (code, _, err) = run(VALE_CTL, &["-l", "eth0"])?;
    ensure!(
        code == 1 && err.contains("invalid vale name eth0"),
        "vale-ctl -l eth0: exit {code}, stderr {:?}",
        err.trim()
    );
    // Nothing was created by the failures.
    let all = vale_ctl_ok(&[])?;
    ensure!(
        all.lines().count() == 1 && all.starts_with("vale4:eph bridge_idx "),
        "listing: {:?}",
        all.trim()
    );
    Ok(())
}

/// pkt-gen tx -n N into pipeB{1, bridge pipeB}1 <-> pipeC{1, pkt-gen rx -n N
/// on pipeC}1: exactly N arrive. The two parents have their own memory
/// regions: the bridge copies.
fn bridge_pipes_copy() -> Result<(), String> {
    bridge_pipes(["pipeB{1", "pipeB}1", "pipeC{1", "pipeC}1"], false)
}

/// The same through pipes of one parent (one memory region): the bridge swaps
/// buffers (NS_BUF_CHANGED), which the pipes pass on.
fn bridge_pipes_zerocopy() -> Result<(), String> {
    bridge_pipes(["pipeZ{1", "pipeZ}1", "pipeZ{2", "pipeZ}2"], true)
}

/// pkt-gen tx on `p[0]`, bridge `p[1]` <-> `p[2]`, pkt-gen rx on `p[3]`.
fn bridge_pipes(p: [&str; 4], zerocopy: bool) -> Result<(), String> {
    let n = N.to_string();
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut rx = Tool::spawn(PKT_GEN, &["-i", p[3], "-f", "rx", "-n", &n, "-w", "0"])?;
    rx.wait_for("Receiving from")?;
    let (a, b) = (format!("netmap:{}", p[1]), format!("netmap:{}", p[2]));
    let mut br = Tool::spawn(BRIDGE, &["-i", &a, "-i", &b, "-w", "0"])?;
    // The bridge logs on stderr; wait until it has opened both ports.
    let t0 = Instant::now();
    loop {
        if br.stderr().contains("Ready to go") {
            break;
        }
        ensure!(
            !br.exited()? && t0.elapsed() < START_TIMEOUT,
            "bridge did not start: {}",
            br.transcript()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut tx = Tool::spawn(
        PKT_GEN,
        &["-i", p[0], "-f", "tx", "-n", &n, "-l", "60", "-w", "0"],
    )?;
    let tx_out = tx.finish_ok(deadline)?;
    let rx_out = rx
        .finish_ok(deadline)
        .map_err(|e| format!("rx: {e}; bridge: {}", br.transcript()))?;
    br.interrupt()?;
    let zc = br
        .stderr()
        .lines()
        .find_map(|l| l.split_once("------- ").map(|(_, z)| z.to_string()))
        .unwrap_or_default();
    let want = if zerocopy {
        "zerocopy supported"
    } else {
        "zerocopy NOT supported"
    };
    ensure!(zc == want, "bridge says {zc:?}, want {want:?}");
    ensure!(
        summary_count(&tx_out, "Sent")? == (N, N * 60),
        "tx: {:?}",
        line(&tx_out, "Sent")?
    );
    ensure!(
        summary_count(&rx_out, "Received")? == (N, N * 60),
        "rx: {:?}",
        line(&rx_out, "Received")?
    );
    println!(
        "NOTE {} -> {} bridge ({zc}) {} -> {}: {N} x 60 bytes; rx {}",
        p[0],
        p[1],
        p[2],
        p[3],
        line(&rx_out, "Speed:")?
    );
    Ok(())
}
