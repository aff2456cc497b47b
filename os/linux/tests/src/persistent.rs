//! Persistent VALE ports (spec §8.4–§8.6) through vale-ctl and direct
//! requests: NEWIF makes a real Ethernet interface, the port is opened as
//! `netmap:P` and, once attached, as `valeS:P`, exchanges traffic with an
//! ephemeral port of the switch, is listed, detached and removed; and the
//! error cases (EEXIST, EBUSY, ENXIO, EINVAL).

use crate::nic::ip;
use crate::port::{BCAST, Port, check_frame, frame, mac};
use crate::tools::{tx_rx, vale_ctl_fails, vale_ctl_ok};
use crate::{Test, ensure};

pub const TESTS: &[Test] = &[
    ("persistent_port_life_cycle", persistent_port_life_cycle),
    ("persistent_port_errors", persistent_port_errors),
    ("persistent_port_pktgen", persistent_port_pktgen),
    ("persistent_port_netns", persistent_port_netns),
];

/// Removes the port (detaching it first) if a test stops half way, so
/// later tests start clean.
struct Cleanup(&'static str, &'static str);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = crate::tools::run(crate::tools::VALE_CTL, &["-d", self.1]);
        let _ = crate::tools::run(crate::tools::VALE_CTL, &["-r", self.0]);
    }
}

fn sysfs(name: &str, attr: &str) -> Result<String, String> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/{attr}"))
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("/sys/class/net/{name}/{attr}: {e}"))
}

fn ni_name(p: &Port) -> Result<String, String> {
    Ok(String::from_utf8_lossy(p.nifp()?.name()).into_owned())
}

/// The `NAME bridge_idx B port_idx P` line of `vale-ctl` for `name`.
fn listed(name: &str) -> Result<Option<(u32, u32)>, String> {
    let all = vale_ctl_ok(&[])?;
    for l in all.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if let [n, "bridge_idx", b, "port_idx", p] = w[..]
            && n == name
        {
            let num = |s: &str| s.parse().map_err(|_| format!("bad line {l:?}"));
            return Ok(Some((num(b)?, num(p)?)));
        }
    }
    Ok(None)
}

/// Create nmp0 with vale-ctl (a real interface), open it, attach it to
/// vale0, exchange frames with an ephemeral port through both names,
/// detach and remove it.
fn persistent_port_life_cycle() -> Result<(), String> {
    let _c = Cleanup("nmp0", "vale0:nmp0");
    let out = vale_ctl_ok(&["-v", "-n", "nmp0", "-C", "256,512,1,1"])?;
    let l = out.trim();
    ensure!(
        l.starts_with("nmp0: created, tx_slots 256 rx_slots 512 tx_rings 1 rx_rings 1 mem_id "),
        "vale-ctl -n: {l:?}"
    );
    let mem_id: u16 = l
        .rsplit(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no mem id in {l:?}"))?;
    ensure!(mem_id > 1, "mem_id {mem_id}: want a private region");

    // A real Ethernet interface, with a random (locally administered,
    // unicast) MAC address, MTU 1500, that can be set up.
    ensure!(
        sysfs("nmp0", "type")? == "1",
        "type {}",
        sysfs("nmp0", "type")?
    );
    ensure!(
        sysfs("nmp0", "mtu")? == "1500",
        "mtu {}",
        sysfs("nmp0", "mtu")?
    );
    let addr = sysfs("nmp0", "address")?;
    let b0 = u8::from_str_radix(addr.get(..2).unwrap_or(""), 16).map_err(|_| addr.clone())?;
    ensure!(b0 & 3 == 2, "address {addr}: want random (local unicast)");
    ip(&["link", "set", "nmp0", "up"])?;
    let flags = sysfs("nmp0", "flags")?;
    let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).map_err(|_| flags)?;
    ensure!(flags & 1 != 0, "nmp0 not up: flags {flags:#x}");
    // What the stack sends through it is dropped (and counted).
    ip(&["link", "set", "nmp0", "down"])?;

    {
        // Open by its plain name (pkt-gen's netmap:nmp0 sends "nmp0").
        let p = Port::open("nmp0")?;
        ensure!(
            p.reg.nr_mem_id == mem_id
                && p.reg.nr_tx_slots == 256
                && p.reg.nr_rx_slots == 512
                && p.reg.nr_host_tx_rings == 0,
            "REGISTER nmp0: {:?}",
            p.reg
        );
        ensure!(ni_name(&p)? == "nmp0", "ni_name {:?}", ni_name(&p)?);
        // On no switch: sending works, the frames are discarded.
        ensure!(p.send(&[frame(BCAST, mac(1), 0, 60)])? == 1, "send");
        // Open: cannot be attached or removed.
        vale_ctl_fails(&["-a", "vale0:nmp0"], "attach vale0:nmp0", "EBUSY")?;
        vale_ctl_fails(&["-r", "nmp0"], "remove nmp0", "EBUSY")?;
    }

    let eph = Port::open("vale0:x")?;
    vale_ctl_ok(&["-a", "vale0:nmp0"])?;
    let (b, p_idx) = listed("vale0:nmp0")?.ok_or("vale0:nmp0 not listed")?;
    ensure!(
        listed("vale0:x")? == Some((b, 0)) && p_idx == 1,
        "listing: {:?}",
        vale_ctl_ok(&[])?
    );
    let one = vale_ctl_ok(&["-l", "vale0:nmp0"])?;
    ensure!(
        one.trim() == format!("vale0:nmp0 bridge_idx {b} port_idx 1"),
        "-l: {:?}",
        one.trim()
    );
    // Attached: not removable, not attachable again (here or elsewhere).
    vale_ctl_fails(&["-r", "nmp0"], "remove nmp0", "EBUSY")?;
    vale_ctl_fails(&["-a", "vale0:nmp0"], "attach vale0:nmp0", "EBUSY")?;
    // On a second switch it is wrapped (§8.4; traffic in bwrap.rs): that
    // attachment has to go first.
    vale_ctl_ok(&["-a", "vale1:nmp0"])?;
    vale_ctl_fails(&["-d", "vale0:nmp0"], "detach vale0:nmp0", "EBUSY")?;
    vale_ctl_ok(&["-d", "vale1:nmp0"])?;

    {
        let p = Port::open("nmp0")?;
        let v = Port::open("vale0:nmp0")?;
        ensure!(
            v.reg.nr_mem_id == mem_id && p.reg.nr_mem_id == mem_id,
            "mem ids {} {} want {mem_id}",
            p.reg.nr_mem_id,
            v.reg.nr_mem_id
        );
        // The adapter is now called vale0:nmp0 (spec §15.13).
        ensure!(ni_name(&p)? == "vale0:nmp0", "ni_name {:?}", ni_name(&p)?);
        ensure!(ni_name(&v)? == "vale0:nmp0", "ni_name {:?}", ni_name(&v)?);
        // netmap:nmp0 -> x (flooded; mac(1) learned on nmp0).
        p.send(&[frame(BCAST, mac(1), 1, 60)])?;
        let got = eph.recv()?;
        ensure!(got.len() == 1, "x got {} frames", got.len());
        ensure!(check_frame(&got[0], mac(1))? == 1, "x: wrong frame");
        // x -> mac(1): unicast to the persistent port, seen by both files.
        eph.send(&[frame(mac(1), mac(2), 2, 100)])?;
        let got = p.recv()?;
        ensure!(got.len() == 1, "nmp0 got {} frames", got.len());
        ensure!(check_frame(&got[0], mac(2))? == 2, "nmp0: wrong frame");
        // valeS:P -> x.
        v.send(&[frame(mac(2), mac(1), 3, 80)])?;
        let got = eph.recv()?;
        ensure!(got.len() == 1, "x got {} frames", got.len());
        ensure!(check_frame(&got[0], mac(1))? == 3, "x: wrong frame");
        // Detach while open: the files stay usable, frames are discarded.
        let out = vale_ctl_ok(&["-v", "-d", "vale0:nmp0"])?;
        ensure!(
            out.trim() == "vale0:nmp0: detached, port_index 1",
            "-d: {:?}",
            out.trim()
        );
        p.send(&[frame(BCAST, mac(1), 4, 60)])?;
        ensure!(eph.recv()?.is_empty(), "x got a frame after the detach");
    }
    vale_ctl_fails(&["-d", "vale0:nmp0"], "detach vale0:nmp0", "ENXIO")?;
    ensure!(listed("vale0:nmp0")?.is_none(), "still listed");
    drop(eph);

    let out = vale_ctl_ok(&["-v", "-r", "nmp0"])?;
    ensure!(out.trim() == "nmp0: removed", "-r: {:?}", out.trim());
    ensure!(
        !std::path::Path::new("/sys/class/net/nmp0").exists(),
        "interface nmp0 still there"
    );
    vale_ctl_fails(&["-r", "nmp0"], "remove nmp0", "ENXIO")?;
    let e = crate::port::register("nmp0", crate::port::all_nic()).err();
    ensure!(e == Some(libc::ENXIO), "REGISTER nmp0 after -r: {e:?}");
    Ok(())
}

/// The error cases of NEWIF/DELIF/ATTACH/DETACH with real interfaces.
fn persistent_port_errors() -> Result<(), String> {
    let _c = Cleanup("nmp1", "vale2:nmp1");
    vale_ctl_ok(&["-n", "nmp1"])?;
    // Name taken: by the port, by another interface.
    vale_ctl_fails(&["-n", "nmp1"], "create nmp1", "EEXIST")?;
    vale_ctl_fails(&["-n", "lo"], "create lo", "EEXIST")?;
    // Bad names.
    vale_ctl_fails(&["-n", "vale0"], "create vale0", "EINVAL")?;
    vale_ctl_fails(
        &["-n", "a_very_long_name"],
        "create a_very_long_name",
        "EINVAL",
    )?;
    // A persistent port has no host stack to attach.
    vale_ctl_fails(&["-h", "vale2:nmp1"], "attach vale2:nmp1", "EINVAL")?;
    // Not an interface, or one the emulated adapter cannot take (loopback).
    vale_ctl_fails(&["-a", "vale2:nm_none"], "attach vale2:nm_none", "EINVAL")?;
    vale_ctl_fails(&["-a", "vale2:lo"], "attach vale2:lo", "EINVAL")?;
    // valeS:P of an unattached persistent port cannot be opened.
    let e = crate::port::register("vale2:nmp1", crate::port::all_nic()).err();
    ensure!(e == Some(libc::EINVAL), "REGISTER vale2:nmp1: {e:?}");
    // Detach: not attached, not a VALE name.
    vale_ctl_fails(&["-d", "vale2:nmp1"], "detach vale2:nmp1", "ENXIO")?;
    vale_ctl_fails(&["-d", "nmp1"], "detach nmp1", "EINVAL")?;
    // DELIF: no such interface; an interface that is no persistent port.
    vale_ctl_fails(&["-r", "nm_none"], "remove nm_none", "ENXIO")?;
    vale_ctl_fails(&["-r", "lo"], "remove lo", "EINVAL")?;
    // A pipe on it keeps it busy.
    {
        let _m = Port::open("nmp1{1")?;
        vale_ctl_fails(&["-r", "nmp1"], "remove nmp1", "EBUSY")?;
    }
    vale_ctl_ok(&["-r", "nmp1"])?;
    ensure!(
        !std::path::Path::new("/sys/class/net/nmp1").exists(),
        "interface nmp1 still there"
    );
    Ok(())
}

/// pkt-gen through the tool's `netmap:nmp0` syntax into an ephemeral port
/// of the switch the persistent port is attached to: all N arrive.
fn persistent_port_pktgen() -> Result<(), String> {
    let _c = Cleanup("nmp2", "vale3:nmp2");
    vale_ctl_ok(&["-n", "nmp2"])?;
    vale_ctl_ok(&["-a", "vale3:nmp2"])?;
    tx_rx("netmap:nmp2", &["-R", "25000"], "vale3:rx", &["-C", "4096"])?;
    vale_ctl_ok(&["-d", "vale3:nmp2"])?;
    vale_ctl_ok(&["-r", "nmp2"])?;
    Ok(())
}

/// NEWIF from another network namespace makes the interface there; the
/// namespace is destroyed (the kernel unregisters the interface) while
/// the port lives on; DELIF from the initial namespace then removes it.
fn persistent_port_netns() -> Result<(), String> {
    let _ = ip(&["netns", "del", "nmpns"]);
    ip(&["netns", "add", "nmpns"])?;
    let _c = Cleanup("nmpn", "vale4:nmpn");
    let child = crate::proc::spawn(|| {
        let ns = crate::sys::Fd::open("/run/netns/nmpns", libc::O_RDONLY)?;
        // SAFETY: plain syscall on a namespace fd we own.
        let r = unsafe { libc::setns(ns.0, libc::CLONE_NEWNET) };
        ensure!(
            r == 0,
            "setns: {}",
            crate::sys::errno_name(crate::sys::errno())
        );
        vale_ctl_ok(&["-n", "nmpn"])?;
        ip(&["link", "set", "nmpn", "up"])?;
        vale_ctl_ok(&["-a", "vale4:nmpn"])?;
        Ok(())
    });
    let r = child.and_then(|c| c.wait());
    let del = ip(&["netns", "del", "nmpns"]);
    r?;
    del?;
    // Not an interface of this namespace (ip fails), but the port is known.
    ensure!(
        ip(&["link", "show", "nmpn"]).is_err(),
        "nmpn visible in the initial namespace"
    );
    vale_ctl_fails(&["-n", "nmpn"], "create nmpn", "EEXIST")?;
    let p = Port::open("vale4:nmpn")?;
    drop(p);
    // The namespace goes away asynchronously; DELIF is safe either way.
    std::thread::sleep(std::time::Duration::from_secs(1));
    vale_ctl_ok(&["-d", "vale4:nmpn"])?;
    vale_ctl_ok(&["-r", "nmpn"])?;
    vale_ctl_fails(&["-r", "nmpn"], "remove nmpn", "ENXIO")?;
    Ok(())
}
