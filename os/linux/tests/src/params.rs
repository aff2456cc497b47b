//! Module parameters (spec §12) and module reload.

use crate::sys::Fd;
use crate::{Test, ensure};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

pub const TESTS: &[Test] = &[
    ("module_params", module_params),
    ("guest_network_env", guest_network_env),
];

/// Run last: unloads and reloads the module.
pub const LAST: &[Test] = &[("reload_with_params", reload_with_params)];

const DIR: &str = "/sys/module/netmap/parameters";

/// Where vm-test puts the module in the guest.
const MODULE: &str = "/lib/modules/netmap.ko";

/// (name, default, writable) from spec §12.
const PARAMS: &[(&str, i64, bool)] = &[
    ("verbose", 0, true),
    ("no_timestamp", 0, true),
    ("no_pendintr", 1, true),
    ("txsync_retry", 2, true),
    ("fwd", 0, true),
    ("admode", 0, true),
    ("generic_hwcsum", 0, true),
    ("generic_mit", 100000, true),
    ("generic_ringsize", 1024, true),
    ("generic_rings", 1, true),
    ("generic_txqdisc", 1, true),
    ("ptnet_vnet_hdr", 1, true),
    ("if_size", 1024, true),
    ("if_num", 100, true),
    ("ring_size", 36864, true),
    ("ring_num", 200, true),
    ("buf_size", 2048, true),
    ("buf_num", 163840, true),
    ("priv_if_size", 1024, true),
    ("priv_if_num", 2, true),
    ("priv_ring_size", 20480, true),
    ("priv_ring_num", 4, true),
    ("priv_buf_size", 2048, true),
    ("priv_buf_num", 4098, true),
    ("bridge_batch", 1024, true),
    ("max_bridges", 8, false),
    ("default_pipes", 0, true),
    // Caps against absurd requests (ours, not in the reference).
    ("max_rings", 256, false),
    ("max_slots", 4096, false),
    ("max_extra_bufs", 524288, false),
];

/// Read-only actual values of the global allocator.
const CURR: &[&str] = &[
    "if_curr_size",
    "if_curr_num",
    "ring_curr_size",
    "ring_curr_num",
    "buf_curr_size",
    "buf_curr_num",
];

fn read(name: &str) -> Result<i64, String> {
    let s = std::fs::read_to_string(format!("{DIR}/{name}"))
        .map_err(|e| format!("read {name}: {e}"))?;
    s.trim().parse().map_err(|e| format!("{name}: {s:?}: {e}"))
}

fn write(name: &str, v: &str) -> std::io::Result<()> {
    std::fs::write(format!("{DIR}/{name}"), v)
}

fn mode(name: &str) -> Result<u32, String> {
    let md = std::fs::metadata(format!("{DIR}/{name}")).map_err(|e| format!("stat {name}: {e}"))?;
    Ok(md.permissions().mode() & 0o777)
}

/// Names, defaults and modes of §12; writes reach the module; read-only
/// ones refuse writes.
fn module_params() -> Result<(), String> {
    for &(name, def, rw) in PARAMS {
        let v = read(name)?;
        ensure!(v == def, "{name} = {v}, want default {def}");
        let m = mode(name)?;
        let want = if rw { 0o644 } else { 0o444 };
        ensure!(m == want, "{name} mode {m:o}, want {want:o}");
    }
    for name in CURR {
        read(name)?;
        let m = mode(name)?;
        ensure!(m == 0o444, "{name} mode {m:o}, want 444");
    }
    write("verbose", "1").map_err(|e| format!("write verbose: {e}"))?;
    ensure!(read("verbose")? == 1, "verbose did not change");
    write("verbose", "0").map_err(|e| format!("write verbose: {e}"))?;
    ensure!(read("verbose")? == 0, "verbose did not change back");
    ensure!(write("verbose", "x1").is_err(), "verbose accepted 'x1'");
    ensure!(
        write("max_bridges", "9").is_err(),
        "max_bridges is writable"
    );
    ensure!(read("max_bridges")? == 8, "max_bridges changed");
    // The memory budget: settable at insmod only, reads the value in
    // effect (by default derived from the RAM, never the 0 default).
    ensure!(mode("max_mem_mb")? == 0o444, "max_mem_mb is writable");
    ensure!(read("max_mem_mb")? > 0, "max_mem_mb reads 0");
    // The device still works after parameter traffic.
    drop(Fd::open_netmap()?);
    Ok(())
}

/// Runs `cmd` with the shell; its stdout, or an error with its stderr.
pub(crate) fn sh(cmd: &str) -> Result<String, String> {
    let out = Command::new("/bin/sh")
        .args(["-c", cmd])
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{cmd}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// rmmod, insmod with parameters (checked), rmmod, plain insmod again.
fn reload_with_params() -> Result<(), String> {
    sh("rmmod netmap")?;
    let r = (|| {
        sh(&format!(
            "insmod {MODULE} verbose=1 bridge_batch=512 buf_num=8192 max_rings=4 if_num=13 max_mem_mb=1000"
        ))?;
        // The *_curr_* values are the actual pools: 13 netmap_ifs of 1024
        // bytes take four 4-KiB clusters, so 16 (§5.5).
        ensure!(
            read("if_num")? == 13 && read("if_curr_num")? == 16,
            "if_num {} if_curr_num {}, want 13 and 16",
            read("if_num")?,
            read("if_curr_num")?
        );
        ensure!(read("max_rings")? == 4, "max_rings not set by insmod");
        ensure!(read("max_mem_mb")? == 1000, "max_mem_mb not set by insmod");
        // The cap applies: a null port with 8 rings is refused.
        let reg = netmap_uapi::NmreqRegister {
            nr_mode: netmap_uapi::NR_REG_NULL,
            nr_mem_id: 1,
            nr_rx_rings: 8,
            nr_rx_slots: 64,
            ..crate::port::all_nic()
        };
        crate::sys::expect_err(
            "null port above max_rings",
            crate::port::register("capped", reg).map(|_| ()),
            libc::EINVAL,
        )?;
        ensure!(read("verbose")? == 1, "verbose not set by insmod");
        ensure!(
            read("bridge_batch")? == 512,
            "bridge_batch not set by insmod"
        );
        ensure!(read("buf_num")? == 8192, "buf_num not set by insmod");
        drop(Fd::open_netmap()?);
        // Persistent ports (one attached to two switches) do not pin the
        // module: their interfaces go with it.
        crate::tools::vale_ctl_ok(&["-n", "nmpu"])?;
        crate::tools::vale_ctl_ok(&["-n", "nmpv"])?;
        crate::tools::vale_ctl_ok(&["-a", "vale0:nmpv"])?;
        crate::tools::vale_ctl_ok(&["-a", "vale2:nmpv"])?;
        // Nor does an interface attached with its host stack and polled by
        // a kernel thread: the attachment ends, the thread stops, the
        // device is given back.
        let veth = crate::nic::Veth::new("nmla", "nmlb")?;
        crate::tools::vale_ctl_ok(&["-h", "vale1:nmla"])?;
        crate::bwrap::polling(
            "vale1:nmla",
            true,
            netmap_uapi::NETMAP_POLLING_MODE_SINGLE_CPU,
            1,
            1,
        )
        .map_err(|e| format!("polling on vale1:nmla: {}", crate::sys::errno_name(e)))?;
        sh("rmmod netmap")?;
        for n in ["nmpu", "nmpv"] {
            ensure!(
                !std::path::Path::new(&format!("/sys/class/net/{n}")).exists(),
                "interface {n} left after rmmod"
            );
        }
        ensure!(
            std::path::Path::new("/sys/class/net/nmla").exists(),
            "the attached veth end went away with the module"
        );
        drop(veth);
        ensure!(
            sh(&format!(
                "insmod {MODULE} buf_curr_num=4 2>&1 || echo refused"
            ))?
            .contains("refused"),
            "insmod accepted the computed buf_curr_num=4"
        );
        Ok(())
    })();
    // Leave the module loaded with defaults whatever happened.
    let _ = sh("rmmod netmap 2>/dev/null");
    sh(&format!("insmod {MODULE}"))?;
    r?;
    ensure!(read("verbose")? == 0, "verbose kept across reload");
    Ok(())
}

/// The guest has what the NIC tests need: the two QEMU NICs (e1000,
/// virtio-net) and a working iproute2 (`/sbin/ip.full`) for veth pairs and
/// network namespaces.
fn guest_network_env() -> Result<(), String> {
    let links = sh("/sbin/ip.full -o link show")?;
    let eths = links.lines().filter(|l| l.contains(": eth")).count();
    ensure!(eths >= 2, "{eths} ethN interfaces:\n{links}");
    sh("/sbin/ip.full link add nmva type veth peer name nmvb")?;
    let r = (|| {
        sh("/sbin/ip.full link set nmva up && /sbin/ip.full link set nmvb up")?;
        sh("/sbin/ip.full netns add nmns && /sbin/ip.full netns del nmns")?;
        Ok(())
    })();
    sh("/sbin/ip.full link del nmva")?;
    r
}
