//! The memory budget (issue "bounded kernel memory"): every region netmap
//! builds is charged to one budget (module parameter `max_mem_mb`, by
//! default half of the RAM) before anything is allocated; requests beyond
//! it get ENOMEM with a kernel log line, page allocations fail instead of
//! waking the OOM killer, other ports keep working, and the memory comes
//! back when the ports close.

use crate::nic::Veth;
use crate::params::sh;
use crate::port::{BCAST, Port, all_nic, check_frame, frame, mac};
use crate::sys::errno_name;
use crate::{Test, ensure};
use netmap_uapi::*;
use std::process::Command;

pub const TESTS: &[Test] = &[
    ("mem_budget_visible", mem_budget_visible),
    (
        "mem_larger_regions_until_enomem",
        mem_larger_regions_until_enomem,
    ),
];

/// Run last: reload the module.
pub const LAST: &[Test] = &[("mem_beyond_ram_fails_fast", mem_beyond_ram_fails_fast)];

const PARAMS: &str = "/sys/module/netmap/parameters";
const POOLS: &str = "/sys/kernel/debug/netmap/pools";

/// `name value` lines of a file (the stats file, /proc/meminfo in kB,
/// /proc/vmstat).
fn fields(path: &str) -> Result<Vec<(String, u64)>, String> {
    let s = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?.trim_end_matches(':').to_string();
            Some((k, it.next()?.parse().ok()?))
        })
        .collect())
}

fn field(path: &str, name: &str) -> Result<u64, String> {
    fields(path)?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .ok_or_else(|| format!("{path}: no {name}"))
}

/// A value of the stats file.
pub(crate) fn stat(name: &str) -> Result<u64, String> {
    field(crate::STATS, name)
}

/// OOM kills since boot (`/proc/vmstat`).
pub(crate) fn oom_kills() -> Result<u64, String> {
    field("/proc/vmstat", "oom_kill")
}

/// Bytes the kernel estimates available for new allocations.
fn mem_available() -> Result<u64, String> {
    Ok(field("/proc/meminfo", "MemAvailable")? << 10)
}

fn param(name: &str) -> Result<u64, String> {
    let s = std::fs::read_to_string(format!("{PARAMS}/{name}"))
        .map_err(|e| format!("read {name}: {e}"))?;
    s.trim().parse().map_err(|e| format!("{name}: {s:?}: {e}"))
}

fn dmesg() -> Result<String, String> {
    let out = Command::new("dmesg")
        .output()
        .map_err(|e| format!("dmesg: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Kernel log lines that appeared after `before` (a previous [`dmesg`]).
fn dmesg_since(before: &str) -> Result<String, String> {
    let now = dmesg()?;
    Ok(now.strip_prefix(before).unwrap_or(&now).to_string())
}

/// A VALE port whose private region needs about `mib` MiB with buffers
/// of `buf_size` bytes: up to 16 rings of 4096 slots each way, then extra
/// buffers for the rest (at most the module's `max_extra_bufs`, 524288).
fn big_reg(mib: u64, buf_size: u64) -> NmreqRegister {
    let bytes = mib << 20;
    let pair = 2 * 4096 * buf_size;
    let rings = (bytes / pair).clamp(1, 16);
    let extra = (bytes.saturating_sub(rings * pair) / buf_size).min(524_288);
    NmreqRegister {
        nr_tx_rings: rings as u16,
        nr_rx_rings: rings as u16,
        nr_tx_slots: 4096,
        nr_rx_slots: 4096,
        nr_extra_bufs: extra as u32,
        ..all_nic()
    }
}

/// Ports that must keep forwarding while regions come and go: a VALE pair,
/// a pipe and a veth pair (NICs use the global region, whose share of the
/// budget is reserved at load).
struct Bystanders {
    a: Port,
    b: Port,
    pm: Port,
    ps: Port,
    veth: Veth,
    seq: u32,
}

impl Bystanders {
    fn new() -> Result<Bystanders, String> {
        Ok(Bystanders {
            a: Port::open("valeK:a")?,
            b: Port::open("valeK:b")?,
            pm: Port::open("pipeK{1")?,
            ps: Port::open("pipeK}1")?,
            veth: Veth::new("nmmba", "nmmbb")?,
            seq: 0,
        })
    }

    /// One frame through each; the veth pair is opened now (after the
    /// budget may be exhausted) and closed again.
    fn check(&mut self, when: &str) -> Result<(), String> {
        self.seq += 1;
        let f = frame(mac(0xb), mac(0xa), self.seq, 60);
        for (tx, rx) in [(&self.a, &self.b), (&self.pm, &self.ps)] {
            ensure!(
                tx.send(std::slice::from_ref(&f))? == 1,
                "{when}: {} cannot send",
                tx.name
            );
            let got = rx.recv()?;
            ensure!(
                got == [f.clone()],
                "{when}: {} got {} frames, want 1",
                rx.name,
                got.len()
            );
            rx.rxsync()?;
        }
        let na = Port::open(&self.veth.a)
            .map_err(|e| format!("{when}: a NIC port cannot be opened: {e}"))?;
        let nb = Port::open(&self.veth.b)?;
        let g = frame(BCAST, mac(0xc), self.seq, 60);
        let t0 = std::time::Instant::now();
        loop {
            na.send(std::slice::from_ref(&g))?;
            let got = crate::nic::collect(&nb, mac(0xc), 1, std::time::Duration::from_millis(500));
            if let Ok(s) = got
                && s.contains(&self.seq)
            {
                return Ok(());
            }
            ensure!(
                t0.elapsed().as_secs() < 5,
                "{when}: no frame over the veth pair in 5 s"
            );
        }
    }
}

/// The budget in effect is readable (parameter, stats file, pools file):
/// by default half of the RAM; the global region's share is reserved.
fn mem_budget_visible() -> Result<(), String> {
    let total = field("/proc/meminfo", "MemTotal")? << 10;
    let mb = param("max_mem_mb")?;
    ensure!(
        mb == (total / 2) >> 20,
        "max_mem_mb {mb}, want half of MemTotal ({} MiB)",
        (total / 2) >> 20
    );
    ensure!(
        stat("mem_budget")? == total / 2 && stat("mem_budget")? >> 20 == mb,
        "stats mem_budget {} for max_mem_mb {mb} and MemTotal {total}",
        stat("mem_budget")?
    );
    let pools = std::fs::read_to_string(POOLS).map_err(|e| format!("{POOLS}: {e}"))?;
    let global = pools
        .lines()
        .find(|l| l.starts_with("mem 1 global"))
        .ok_or_else(|| format!("no global region in {POOLS}:\n{pools}"))?;
    let footprint: u64 = global
        .split_whitespace()
        .skip_while(|w| *w != "footprint")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no footprint in {global:?}"))?;
    ensure!(
        stat("mem_used")? >= footprint,
        "mem_used {} below the global region's reserved {footprint}",
        stat("mem_used")?
    );
    // A private region appears with its pools, and goes.
    let used = stat("mem_used")?;
    let p = Port::open("valeV:x")?;
    let pools = std::fs::read_to_string(POOLS).map_err(|e| format!("{POOLS}: {e}"))?;
    let id = p.reg.nr_mem_id;
    let line = pools
        .lines()
        .find(|l| l.starts_with(&format!("mem {id} private built 1 ")))
        .ok_or_else(|| format!("region {id} missing in {POOLS}:\n{pools}"))?;
    ensure!(
        line.contains(&format!("memsize {}", p.reg.nr_memsize)),
        "{line:?}: memsize {} expected",
        p.reg.nr_memsize
    );
    ensure!(stat("mem_used")? > used, "a private region charged nothing");
    drop(p);
    ensure!(
        stat("mem_used")? == used,
        "mem_used {} after close, {used} before",
        stat("mem_used")?
    );
    Ok(())
}

/// Ever larger private regions, kept open, until ENOMEM: the budget is
/// never exceeded, the refusal is logged, no OOM kill happens, other
/// ports keep forwarding (a NIC can still be opened with the budget
/// exhausted), and the memory returns to its baseline.
fn mem_larger_regions_until_enomem() -> Result<(), String> {
    let budget = stat("mem_budget")?;
    let (oom0, log0) = (oom_kills()?, dmesg()?);
    let mut by = Bystanders::new()?;
    by.check("before")?;
    // With the bystanders' own regions (the pipe's parent has one) and
    // the global region built (for the veth pair).
    let (used0, avail0) = (stat("mem_used")?, mem_available()?);
    let mut held = Vec::new();
    let mut mib = 64u64;
    let mut refused = None;
    for i in 0..16 {
        let name = format!("valeM:r{i}");
        match crate::port::register(&name, big_reg(mib, 2048)) {
            Ok(fd_reg) => held.push(fd_reg),
            Err(e) => {
                refused = Some((e, mib));
                break;
            }
        }
        let used = stat("mem_used")?;
        ensure!(used <= budget, "mem_used {used} above the budget {budget}");
        by.check(&format!("with {} regions", held.len()))?;
        mib = (mib * 2).min(1024);
    }
    let Some((e, mib)) = refused else {
        return Err(format!("16 regions fit in a budget of {budget} bytes"));
    };
    ensure!(
        e == libc::ENOMEM,
        "region of {mib} MiB: {}, want ENOMEM",
        errno_name(e)
    );
    by.check("after ENOMEM")?;
    let log = dmesg_since(&log0)?;
    ensure!(
        log.contains("does not fit in netmap's memory budget"),
        "no budget line in the kernel log:\n{log}"
    );
    ensure!(
        !log.contains("oom-kill") && !log.contains("Out of memory"),
        "OOM in the kernel log:\n{log}"
    );
    ensure!(
        oom_kills()? == oom0,
        "oom_kill went from {oom0} to {}",
        oom_kills()?
    );
    let nregions = held.len();
    drop(held);
    ensure!(
        stat("mem_used")? == used0,
        "mem_used {} after closing {nregions} regions, {used0} before",
        stat("mem_used")?
    );
    // The pages themselves came back (not only the accounting).
    let avail = mem_available()?;
    ensure!(
        avail + (64 << 20) >= avail0,
        "MemAvailable {} MiB after, {} MiB before",
        avail >> 20,
        avail0 >> 20
    );
    by.check("after closing")?;
    println!(
        "NOTE mem budget {} MiB: {nregions} regions held, refused at {mib} MiB, 0 OOM kills",
        budget >> 20
    );
    Ok(())
}

/// With a budget larger than the RAM (max_mem_mb at insmod), a region
/// larger than the free memory makes the page allocator fail: the build
/// stops at the first failed cluster and gives everything back, ENOMEM
/// is returned, the OOM killer is not invoked, and the other ports keep
/// forwarding.
fn mem_beyond_ram_fails_fast() -> Result<(), String> {
    sh("rmmod netmap")?;
    let r = (|| {
        // 4 KiB buffers: 524288 extra buffers are 2 GiB, the whole guest.
        sh("insmod /lib/modules/netmap.ko max_mem_mb=65536 priv_buf_size=4096")?;
        ensure!(
            param("max_mem_mb")? == 65536,
            "max_mem_mb not set by insmod"
        );
        let (oom0, log0) = (oom_kills()?, dmesg()?);
        let a = Port::open("valeK:a")?;
        let b = Port::open("valeK:b")?;
        let ram = field("/proc/meminfo", "MemTotal")? << 10;
        let mut failed = None;
        for mib in [256u64, 1024, 4096] {
            match crate::port::register("valeM:huge", big_reg(mib, 4096)) {
                Ok(_) => ensure!(
                    mib << 20 < ram,
                    "a region of {mib} MiB built with {} MiB of RAM",
                    ram >> 20
                ),
                Err(e) => {
                    failed = Some((e, mib));
                    break;
                }
            }
            let f = frame(mac(0xb), mac(0xa), mib as u32, 60);
            a.send(std::slice::from_ref(&f))?;
            ensure!(b.recv()? == [f], "valeK:b lost a frame after {mib} MiB");
        }
        let Some((e, mib)) = failed else {
            return Err("a region of 2.5 GiB was built in the guest".into());
        };
        ensure!(
            e == libc::ENOMEM,
            "{mib} MiB: {}, want ENOMEM",
            errno_name(e)
        );
        let f = frame(mac(0xb), mac(0xa), 7, 60);
        a.send(std::slice::from_ref(&f))?;
        ensure!(b.recv()? == [f], "valeK:b lost a frame after the failure");
        for got in b.recv()? {
            check_frame(&got, mac(0xa))?;
        }
        let log = dmesg_since(&log0)?;
        ensure!(
            log.contains("out of memory building a region"),
            "no allocation failure in the kernel log:\n{log}"
        );
        ensure!(
            oom_kills()? == oom0 && !log.contains("oom-kill"),
            "the OOM killer ran:\n{log}"
        );
        println!("NOTE mem: a region of {mib} MiB beyond the RAM failed fast, 0 OOM kills");
        Ok(())
    })();
    let _ = sh("rmmod netmap 2>/dev/null");
    sh("insmod /lib/modules/netmap.ko")?;
    r
}
