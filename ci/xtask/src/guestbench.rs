//! `cargo xtask bench guest [-- ROUNDS PKTS]`: VALE and pipe throughput of
//! netmap.ko in a QEMU guest, 60-byte frames, pkt-gen rx on vCPU 0 and tx on
//! vCPU 1:
//!
//! | test | transfer |
//! | --- | --- |
//! | `vale` | `pkt-gen -f tx` on `vale0:a` → `pkt-gen -f rx` on `vale0:b` |
//! | `pipe` | `pkt-gen -f tx` on `netmap:p}1` → `pkt-gen -f rx` on `netmap:p{1` |
//! | `vale-tx-noreceiver` | `pkt-gen -f tx` on `vale1:a`, nobody else on the switch |
//!
//! With the workplace's `../shared/bench/vs-reference.sh` beside the
//! checkout, it runs that script: the C reference netmap.ko and ours
//! alternately in one boot, driven by the reference's own pkt-gen, and the
//! table gives both and the median of the per-round ratios. Without it, our
//! module alone (also with `NM_BENCH_OURS_ONLY=1`) runs the same transfers
//! with our pkt-gen. Figures from a TCG guest only compare within one boot.

use crate::util::{Result, root, show};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const TESTS: [&str; 3] = ["vale", "pipe", "vale-tx-noreceiver"];

pub fn run(args: &[String]) -> Result {
    let num = |i: usize, dflt: u64| -> Result<u64> {
        args.get(i).map_or(Ok(dflt), |a| {
            a.parse()
                .map_err(|_| format!("usage: cargo xtask bench guest [-- ROUNDS PKTS]: `{a}`"))
        })
    };
    let (rounds, pkts) = (num(0, 3)?.max(1), num(1, 10_000_000)?.max(1));
    crate::setup::run().map_err(|e| format!("setup: {e}"))?;
    let module = crate::module::run().map_err(|e| format!("building netmap.ko: {e}"))?;
    let script = root().join("../shared/bench/vs-reference.sh");
    let lines = if script.exists() && std::env::var_os("NM_BENCH_OURS_ONLY").is_none() {
        println!(
            "bench guest: {} (reference and ours, one boot)",
            script.display()
        );
        vs_reference(&script, &module, rounds, pkts)?
    } else {
        println!("bench guest: no ../shared/bench/vs-reference.sh: our module alone");
        ours_alone(&module, rounds, pkts)?
    };
    let perf = parse(&lines);
    if perf.is_empty() {
        return Err("the guest printed no PERF lines".into());
    }
    print!("{}", table(&perf, rounds, pkts));
    Ok(())
}

/// Runs the workplace script, echoing its output; returns its lines.
fn vs_reference(script: &Path, module: &Path, rounds: u64, pkts: u64) -> Result<Vec<String>> {
    let mut cmd = Command::new("bash");
    cmd.arg(script)
        .arg(module)
        .arg(rounds.to_string())
        .arg(pkts.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    println!("$ {}", show(&cmd));
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let mut lines = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.map_err(|e| e.to_string())?;
        println!("{line}");
        lines.push(line);
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("{} failed: {status}", script.display()));
    }
    Ok(lines)
}

/// Boots our guest with our pkt-gen and runs the transfers with our module.
fn ours_alone(module: &Path, rounds: u64, pkts: u64) -> Result<Vec<String>> {
    let pkt_gen: PathBuf = crate::demo::build_pkt_gen()?;
    let files = [(module, "/netmap.ko"), (pkt_gen.as_path(), "/bin/pkt-gen")];
    // Each transfer gets a generous budget: TCG on a shared machine.
    let per = 60 + pkts / 50_000;
    let timeout = Duration::from_secs(60 + rounds * 3 * (per + 20));
    let console = crate::vm::boot_script(&files, &guest_script(rounds, pkts, per), timeout)?;
    let lines: Vec<String> = console.lines().map(|l| l.trim().to_string()).collect();
    for l in lines.iter().filter(|l| l.starts_with("PERF")) {
        // PERF and PERFLOG lines.
        println!("{l}");
    }
    Ok(lines)
}

/// The guest side of [`ours_alone`]: per round, insmod, the three
/// transfers, rmmod; one `PERF ours ROUND TEST MPPS` line per transfer
/// (the receiver's rate, the sender's for the one without a receiver).
fn guest_script(rounds: u64, pkts: u64, per: u64) -> String {
    format!(
        r#"mpps() {{ awk -v w="$2" '$1 == w && $3 == "packets" {{ s = 1; next }}
    s && $1 == "Speed:" {{ printf "%.3f\n", $2 / 1e6; f = 1; s = 0 }}
    END {{ if (!f) print "NA" }}' "$1"; }}
stop() {{ n={per}; while kill -0 $1 2>/dev/null && [ $n -gt 0 ]; do sleep 1; n=$((n - 1)); done
    kill -INT $1 2>/dev/null; wait $1; }}
pair() {{ /bin/pkt-gen -i "$3" -f rx -W -N -a 0 > /rx.log 2>&1 & rx=$!; sleep 1
    /bin/pkt-gen -i "$4" -f tx -n {pkts} -l 60 -N -a 1 > /tx.log 2>&1 & stop $!
    stop $rx; grep -E '^(Sent|Received|Speed)' /tx.log /rx.log | sed "s/^/PERFLOG $1 $2 /"
    echo "PERF ours $1 $2 $(mpps /rx.log Received)"; }}
for r in $(seq 1 {rounds}); do
    insmod /netmap.ko || {{ echo "PERF ours $r insmod FAIL"; break; }}
    pair $r vale vale0:b vale0:a
    pair $r pipe 'netmap:p{{1' 'netmap:p}}1'
    /bin/pkt-gen -i vale1:a -f tx -n {pkts} -l 60 -N -a 1 > /tx.log 2>&1 & stop $!
    echo "PERF ours $r vale-tx-noreceiver $(mpps /tx.log Sent)"
    rmmod netmap || echo "PERF ours $r rmmod FAIL"
done
"#
    )
}

/// `cargo xtask bench native [-- ROUNDS SECS]`: virtio-net in native mode
/// (virtio_net_netmap.ko, drivers/virtio-net) against the emulated adapter
/// on the same NICs and driver (module parameter admode=2), in one boot.
/// Two virtio-net NICs on the QEMU hub, 60-byte frames, pkt-gen:
///
/// * `tx`: `pkt-gen -f tx` on the first NIC while the second is up in its
///   ordinary (stack) mode: the sender's rate (QEMU's hub stops a sender
///   when no port can take frames, so some port must);
/// * `rx`: `pkt-gen -f rx` on the second NIC while the first sends in the
///   same mode: the receiver's rate.
///
/// Each transfer runs SECS seconds (default 6); rounds alternate emulated
/// and native. The table gives the median Mpps of each mode and the median
/// of the per-round ratios native / emulated.
pub fn run_native(args: &[String]) -> Result {
    let num = |i: usize, dflt: u64| -> Result<u64> {
        args.get(i).map_or(Ok(dflt), |a| {
            a.parse()
                .map_err(|_| format!("usage: cargo xtask bench native [-- ROUNDS SECS]: `{a}`"))
        })
    };
    let (rounds, secs) = (num(0, 3)?.max(1), num(1, 6)?.clamp(1, 120));
    crate::setup::run().map_err(|e| format!("setup: {e}"))?;
    let kernel = crate::module::Kernel::discover()?;
    let module = crate::module::build(&kernel).map_err(|e| format!("building netmap.ko: {e}"))?;
    let native = crate::drivers::build_virtio_net(&kernel, &module)?;
    let pkt_gen: PathBuf = crate::demo::build_pkt_gen()?;
    let files = [
        (module.as_path(), "/netmap.ko"),
        (native.as_path(), "/virtio_net_netmap.ko"),
        (pkt_gen.as_path(), "/bin/pkt-gen"),
    ];
    let timeout = Duration::from_secs(120 + rounds * 4 * (secs + 15));
    let console = crate::vm::boot_script_nics(&files, &native_script(rounds, secs), timeout)?;
    let lines: Vec<String> = console.lines().map(|l| l.trim().to_string()).collect();
    for l in lines.iter().filter(|l| {
        std::env::var_os("NM_VM_VERBOSE").is_some()
            || l.starts_with("PERF")
            || l.starts_with("NOTE")
    }) {
        println!("{l}");
    }
    let perf = parse(&lines);
    if perf.is_empty() {
        return Err(format!(
            "the guest printed no PERF lines; console ended with:\n{}",
            lines[lines.len().saturating_sub(40)..].join("\n")
        ));
    }
    print!("{}", native_table(&perf, rounds, secs));
    Ok(())
}

/// The guest side of [`run_native`].
fn native_script(rounds: u64, secs: u64) -> String {
    format!(
        r#"mpps() {{ awk -v w="$2" '$1 == w && $3 == "packets" {{ s = 1; next }}
    s && $1 == "Speed:" {{ printf "%.3f\n", $2 / 1e6; f = 1; s = 0 }}
    END {{ if (!f) print "NA" }}' "$1"; }}
stop() {{ sleep {secs}; kill -INT $1 2>/dev/null; wait $1; }}
insmod /netmap.ko || echo "NOTE insmod netmap failed"
rmmod virtio_net
insmod /virtio_net_netmap.ko || echo "NOTE insmod virtio_net_netmap failed"
sleep 1
set -- $(for d in /sys/class/net/*; do
    [ "$(basename $(readlink $d/device/driver) 2>/dev/null)" = virtio_net_netmap ] && basename $d
done)
A=$1; B=$2
echo "NOTE native bench on $A -> $B"
for i in $A $B; do echo 1 > /proc/sys/net/ipv6/conf/$i/disable_ipv6; done
for r in $(seq 1 {rounds}); do
  for mode in emulated native; do
    if [ $mode = native ]; then echo 0 > /sys/module/netmap/parameters/admode
    else echo 2 > /sys/module/netmap/parameters/admode; fi
    ip link set $A up; ip link set $B up; sleep 2
    /bin/pkt-gen -i $A -f tx -l 60 -N -a 1 > /tx.log 2>&1 & stop $!
    grep -E '^(Sent|Speed)' /tx.log | sed "s/^/PERFLOG $mode $r tx /"
    echo "PERF $mode $r tx $(mpps /tx.log Sent)"
    /bin/pkt-gen -i $B -f rx -W -N -a 0 > /rx.log 2>&1 & rx=$!; sleep 1
    /bin/pkt-gen -i $A -f tx -l 60 -N -a 1 > /tx.log 2>&1 & stop $!
    kill -INT $rx; wait $rx
    grep -E '^(Received|Speed)' /rx.log | sed "s/^/PERFLOG $mode $r rx /"
    echo "PERF $mode $r rx $(mpps /rx.log Received)"
    ip link set $A down; ip link set $B down
  done
done
echo 0 > /sys/module/netmap/parameters/admode
rmmod virtio_net_netmap
rmmod netmap || echo "NOTE rmmod netmap failed"
dmesg | grep -E 'BUG|Oops|WARNING|Call Trace|DBG' | sed 's/^/NOTE dmesg: /'
"#
    )
}

/// Per test (tx, rx): median Mpps emulated and native, and the median of
/// the per-round ratios native / emulated.
fn native_table(perf: &Perf, rounds: u64, secs: u64) -> String {
    let mut s = format!(
        "\nvirtio-net, native vs emulated, same boot, {rounds} round(s) of {secs} s, \
         60-byte frames, median Mpps:\n\n\
         | test | emulated | native | native / emulated |\n| --- | --- | --- | --- |\n"
    );
    let fmt = |x: Option<f64>, p: usize| x.map_or("-".to_string(), |v| format!("{v:.p$}"));
    for test in ["tx", "rx"] {
        let Some(labels) = perf.get(test) else {
            continue;
        };
        let of = |l: &str| {
            labels
                .get(l)
                .map(|r| r.values().copied().collect::<Vec<_>>())
        };
        let ratios: Vec<f64> = match (labels.get("emulated"), labels.get("native")) {
            (Some(e), Some(n)) => n
                .iter()
                .filter_map(|(k, nat)| e.get(k).filter(|x| **x > 0.0).map(|x| nat / x))
                .collect(),
            _ => Vec::new(),
        };
        s += &format!(
            "| {test} | {} | {} | {} |\n",
            fmt(of("emulated").and_then(median), 3),
            fmt(of("native").and_then(median), 3),
            fmt(median(ratios), 2)
        );
    }
    s
}

/// Figures by test, then label (`ref`, `ours`), then round.
type Perf = BTreeMap<String, BTreeMap<String, BTreeMap<u64, f64>>>;

/// `PERF <label> <round> <test> <Mpps>` lines (other lines are ignored,
/// and so are figures that are not numbers).
fn parse(lines: &[String]) -> Perf {
    let mut perf = Perf::new();
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let [_, label, round, test, mpps] = f[..]
            && f[0] == "PERF"
            && let (Ok(round), Ok(mpps)) = (round.parse(), mpps.parse())
        {
            let labels = perf.entry(test.to_string()).or_default();
            labels
                .entry(label.to_string())
                .or_default()
                .insert(round, mpps);
        }
    }
    perf
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// The summary: per test, the median Mpps of each label and, with a
/// reference, the median of the per-round ratios ours/ref.
fn table(perf: &Perf, rounds: u64, pkts: u64) -> String {
    let mut s = format!(
        "\nguest throughput, {rounds} round(s) of {pkts} frames of 60 bytes, median Mpps:\n\n\
         | test | reference | ours | ours / reference |\n| --- | --- | --- | --- |\n"
    );
    let fmt = |x: Option<f64>, p: usize| x.map_or("-".to_string(), |v| format!("{v:.p$}"));
    let mut tests: Vec<&String> = perf.keys().collect();
    tests.sort_by_key(|t| TESTS.iter().position(|k| k == t).unwrap_or(TESTS.len()));
    for test in tests {
        let labels = &perf[test];
        let of = |l: &str| {
            labels
                .get(l)
                .map(|r| r.values().copied().collect::<Vec<_>>())
        };
        let ratios: Vec<f64> = match (labels.get("ref"), labels.get("ours")) {
            (Some(r), Some(o)) => o
                .iter()
                .filter_map(|(k, ours)| r.get(k).filter(|x| **x > 0.0).map(|x| ours / x))
                .collect(),
            _ => Vec::new(),
        };
        s += &format!(
            "| {test} | {} | {} | {} |\n",
            fmt(of("ref").and_then(median), 3),
            fmt(of("ours").and_then(median), 3),
            fmt(median(ratios), 2)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_medians_and_ratio_medians() {
        let lines: Vec<String> = [
            "PERF ref 1 vale 2.0",
            "PERF ours 1 vale 3.0",
            "PERF ref 2 vale 1.0",
            "PERF ours 2 vale 2.0",
            "PERF ref 3 vale 4.0",
            "PERF ours 3 vale 4.0",
            "PERF ours 1 pipe NA",
            "PERF ours 2 pipe 5.5",
            "PERFLOG ours 1 vale: Received 10 packets",
            "noise",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let t = table(&parse(&lines), 3, 10);
        // ref median 2.0, ours median 3.0, ratios 1.5, 2.0, 1.0 -> 1.5.
        assert!(t.contains("| vale | 2.000 | 3.000 | 1.50 |"), "{t}");
        assert!(t.contains("| pipe | - | 5.500 | - |"), "{t}");
        assert!(t.find("| vale").unwrap() < t.find("| pipe").unwrap(), "{t}");
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
    }
}
