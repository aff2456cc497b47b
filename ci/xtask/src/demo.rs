//! `cargo xtask demo`: netmap-rs doing its job. Boots a QEMU guest, loads
//! netmap.ko, sends with `pkt-gen -f tx` on `vale0:a` and receives with
//! `pkt-gen -f rx` on `vale0:b`, and prints the receiver's rate lines and a
//! one-line summary.
//!
//! It refuses to run, and says why, while a piece it needs is missing.

use crate::util::{Result, cargo, root, run_cmd, show};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Boots the guest with `files` (host path, path in the guest) in its
/// initramfs, runs `script` with busybox `sh` as root once the guest is up,
/// powers off, and returns the serial console output. Kills the guest after
/// the timeout.
type GuestBoot = fn(files: &[(&Path, &str)], script: &str, timeout: Duration) -> Result<String>;

/// The guest boot the demo uses: the one piece that is code, not a crate.
/// `ci/xtask/src/vm.rs` provides it (`Some(crate::vm::...)`).
const GUEST_BOOT: Option<GuestBoot> = Some(crate::vm::boot_script);

/// The pkt-gen package: a Rust pkt-gen with the reference's options and output.
const PKT_GEN_DIR: &str = "examples/pkt-gen";
const PKT_GEN_PACKAGE: &str = "pkt-gen";
/// Guest programs are linked statically; a separate target directory keeps
/// these RUSTFLAGS from invalidating the host build.
const GUEST_TARGET_DIR: &str = "target/guest";
const HOST_TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// How long pkt-gen transmits.
const TX_SECONDS: u32 = 10;
/// Boot, the run, and the shutdown of a TCG guest, with a wide margin.
const GUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Marker lines the guest script prints (and the console parser looks for).
const MARK: &str = "== demo:";

pub fn run() -> Result {
    println!("netmap-rs demo: pkt-gen over a VALE switch in a QEMU guest");
    for (i, step) in [
        "set up the machine (cargo xtask setup)".to_string(),
        "build the kernel module netmap.ko (cargo xtask module)".into(),
        format!("build pkt-gen ({PKT_GEN_DIR}) as a static program for the guest"),
        "boot the QEMU guest (TCG) with netmap.ko and pkt-gen in its initramfs".into(),
        "load netmap.ko (insmod)".into(),
        format!("run pkt-gen -f rx on vale0:b and pkt-gen -f tx on vale0:a for {TX_SECONDS} s"),
        "print the receiver's rate lines and a one-line summary".into(),
    ]
    .iter()
    .enumerate()
    {
        println!("  {}. {step}", i + 1);
    }

    let missing = missing_pieces();
    if !missing.is_empty() {
        return Err(format!(
            "the demo cannot run yet; missing: {}",
            missing.join("; ")
        ));
    }
    let boot = GUEST_BOOT.ok_or("no guest boot")?;

    crate::setup::run().map_err(|e| format!("setup: {e}"))?;
    let module = crate::module::run().map_err(|e| format!("building netmap.ko: {e}"))?;
    let pkt_gen = build_pkt_gen().map_err(|e| format!("building pkt-gen: {e}"))?;
    let files = [
        (module.as_path(), "/netmap.ko"),
        (pkt_gen.as_path(), "/bin/pkt-gen"),
    ];
    let console = boot(&files, &guest_script(), GUEST_TIMEOUT)
        .map_err(|e| format!("running the guest: {e}"))?;
    report(&console)
}

/// What is not there yet, in the words a reader of the README understands.
fn missing_pieces() -> Vec<String> {
    let mut missing = Vec::new();
    if !root().join("os/linux/rust/Cargo.toml").exists() {
        missing.push("the Linux kernel module (os/linux)".to_string());
    }
    if !root().join(PKT_GEN_DIR).join("Cargo.toml").exists() {
        missing.push(format!("pkt-gen ({PKT_GEN_DIR} does not exist)"));
    }
    if GUEST_BOOT.is_none() {
        missing
            .push("a guest boot that runs a given script (ci/xtask/src/vm.rs has none yet)".into());
    }
    missing
}

/// Builds pkt-gen statically for the guest and returns the binary's path.
pub fn build_pkt_gen() -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--release",
        "-p",
        PKT_GEN_PACKAGE,
        "--target",
        HOST_TRIPLE,
    ])
    .args(["--target-dir", GUEST_TARGET_DIR])
    .env("RUSTFLAGS", "-C target-feature=+crt-static");
    println!("$ RUSTFLAGS='-C target-feature=+crt-static' {}", show(&cmd));
    run_cmd(&mut cmd)?;
    Ok(root()
        .join(GUEST_TARGET_DIR)
        .join(HOST_TRIPLE)
        .join("release")
        .join(PKT_GEN_PACKAGE))
}

/// The script the guest runs: receiver first, then the sender for
/// [`TX_SECONDS`]; both stopped with SIGINT so that pkt-gen prints its totals.
/// Output comes back prefixed `rx: ` / `tx: `.
fn guest_script() -> String {
    format!(
        r#"echo '{MARK} insmod'
insmod /netmap.ko || {{ echo '{MARK} FAILED insmod'; exit 1; }}
/bin/pkt-gen -i vale0:b -f rx > /rx.log 2>&1 &
rx=$!
sleep 1
/bin/pkt-gen -i vale0:a -f tx -l 60 > /tx.log 2>&1 &
tx=$!
sleep {TX_SECONDS}
kill -INT $tx; wait $tx
sleep 1
kill -INT $rx; wait $rx
sed 's/^/tx: /' /tx.log
sed 's/^/rx: /' /rx.log
rmmod netmap || echo '{MARK} FAILED rmmod'
dmesg | grep -E 'BUG|Oops|WARNING' | sed 's/^/{MARK} FAILED kernel: /'
echo '{MARK} done'
"#
    )
}

/// Prints the receiver's rate lines and the summary; fails if the guest
/// reported a failure or did not finish.
fn report(console: &str) -> Result {
    let failures: Vec<&str> = console
        .lines()
        .filter_map(|l| l.trim().strip_prefix(MARK))
        .map(str::trim)
        .filter(|l| l.starts_with("FAILED"))
        .collect();
    if !failures.is_empty() {
        return Err(format!("the guest reported: {}", failures.join("; ")));
    }
    if !console.lines().any(|l| l.trim() == format!("{MARK} done")) {
        return Err(format!(
            "the guest did not finish the demo; its console ended with:\n{}",
            tail(console, 20)
        ));
    }
    let rx: Vec<&str> = console
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rx: "))
        .collect();
    let rates: Vec<&str> = rx
        .iter()
        .copied()
        .filter(|l| l.contains("pps") && !l.starts_with("Speed:"))
        .collect();
    for line in &rates {
        println!("rx: {line}");
    }
    let received = rx.iter().find(|l| l.starts_with("Received"));
    let speed = rx.iter().find(|l| l.starts_with("Speed:"));
    match (received, speed) {
        (Some(received), Some(speed)) => {
            println!("demo: vale0:a -> vale0:b: {received} {speed}");
            Ok(())
        }
        _ => Err(format!(
            "pkt-gen rx printed no totals ({} rate lines); its output:\n{}",
            rates.len(),
            rx.join("\n")
        )),
    }
}

/// The last `n` lines of `s`.
fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::{MARK, guest_script, report};

    /// Console output in the format of the reference pkt-gen.
    const CONSOLE: &str = "\
[    1.234] netmap: loading out-of-tree module taints kernel.
== demo: insmod
tx: 712.003 main_thread [2639] 1.204 Mpps (1.210 Mpkts 578.102 Mbps in 1004523 usec) 256.00 avg_batch 0 min_space
rx: 712.101 main_thread [2639] 1.198 Mpps (1.203 Mpkts 575.040 Mbps in 1004520 usec) 255.10 avg_batch 1 min_space
rx: 713.105 main_thread [2639] 1.201 Mpps (1.206 Mpkts 576.480 Mbps in 1004103 usec) 254.92 avg_batch 1 min_space
rx: Received 12010000 packets 720600000 bytes 47100 events 60 bytes each in 10.00 seconds.
rx: Speed: 1.201 Mpps Bandwidth: 576.480 Mbps (raw 807.072 Mbps). Average batch: 255.00 pkts
== demo: done
";

    #[test]
    fn reports_a_finished_run() {
        assert_eq!(report(CONSOLE), Ok(()));
    }

    #[test]
    fn refuses_failures_and_unfinished_runs() {
        let failed = CONSOLE.replace("== demo: done", "== demo: FAILED rmmod\n== demo: done");
        assert!(report(&failed).unwrap_err().contains("FAILED rmmod"));
        let cut = CONSOLE.replace("== demo: done", "");
        assert!(report(&cut).unwrap_err().contains("did not finish"));
        let no_totals: String = CONSOLE
            .lines()
            .filter(|l| !l.starts_with("rx: Received"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(report(&no_totals).unwrap_err().contains("no totals"));
    }

    #[test]
    fn script_uses_both_ports_and_ends_with_the_marker() {
        let s = guest_script();
        assert!(s.contains("-i vale0:a -f tx") && s.contains("-i vale0:b -f rx"));
        assert!(s.trim_end().ends_with(&format!("echo '{MARK} done'")));
    }
}
