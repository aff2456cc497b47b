//! Monitors (spec §10.1): copy monitors of TX and RX, zero-copy monitors,
//! on VALE ports and pipes. Each monitor must see exactly the traffic of
//! the rings it monitors.

use crate::port::{Port, all_nic, check_frame, frame, mac, register};
use crate::sys::{errno_name, expect_err};
use crate::{Test, ensure};
use netmap_uapi::*;

pub const TESTS: &[Test] = &[
    ("monitor_copy_vale_tx_rx", monitor_copy_vale_tx_rx),
    ("monitor_zcopy_pipe", monitor_zcopy_pipe),
    ("monitor_needs_netmap_mode", monitor_needs_netmap_mode),
    ("monitor_stops_with_parent", monitor_stops_with_parent),
];

fn mon(name: &str, flags: u64) -> Result<Port, String> {
    Port::open_with(
        name,
        NmreqRegister {
            nr_flags: flags,
            ..all_nic()
        },
    )
}

/// a sends 50 unicast frames to b and b answers 20: the TX monitor of a
/// sees exactly a's 50 (NS_TXMON), the RX monitor of b exactly the 50 b
/// got, the TX+RX monitor of b the 50 in and the 20 out.
fn monitor_copy_vale_tx_rx() -> Result<(), String> {
    let a = Port::open("valem:a")?;
    let b = Port::open("valem:b")?;
    let a_tx = mon("valem:a", NR_MONITOR_TX)?;
    let b_rx = mon("valem:b", NR_MONITOR_RX)?;
    let b_both = mon("valem:b", NR_MONITOR_TX | NR_MONITOR_RX)?;
    ensure!(
        a_tx.reg.nr_mem_id != a.reg.nr_mem_id,
        "copy monitor shares the parent region"
    );
    ensure!(
        &a_tx.nifp()?.ni_name[..10] == b"valem:a/t#",
        "monitor name {:?}",
        a_tx.nifp()?.ni_name
    );
    // Learn b's address first, so that a's frames are unicast to b.
    b.send(&[frame(mac(0xa), mac(0xb), 1000, 60)])?;
    let _ = a.recv()?;
    let _ = b_both.recv()?;
    let out: Vec<Vec<u8>> = (0..50)
        .map(|i| frame(mac(0xb), mac(0xa), i, 60 + i as usize))
        .collect();
    ensure!(a.send(&out)? == 50, "a could not send");
    let back: Vec<Vec<u8>> = (0..20)
        .map(|i| frame(mac(0xa), mac(0xb), 100 + i, 64))
        .collect();
    ensure!(b.send(&back)? == 20, "b could not send");

    let seen = a_tx.recv()?;
    ensure!(
        seen == out,
        "TX monitor of a saw {} frames, want the 50 sent",
        seen.len()
    );
    let rx = a_tx.rx(0)?;
    ensure!(
        rx.slot(0)?.flags & NS_TXMON != 0,
        "NS_TXMON missing on a TX-monitor slot"
    );
    let seen = b_rx.recv()?;
    ensure!(
        seen == out,
        "RX monitor of b saw {} frames, want the 50 received",
        seen.len()
    );
    let seen = b_both.recv()?;
    ensure!(
        seen.len() == 70,
        "TX+RX monitor of b saw {} frames, want 70",
        seen.len()
    );
    let txmon = seen
        .iter()
        .filter(|f| check_frame(f, mac(0xb)).is_ok())
        .count();
    ensure!(txmon == 20, "TX+RX monitor: {txmon} frames from b, want 20");
    // b itself still gets everything.
    let got = b.recv()?;
    ensure!(got == out, "b got {} frames", got.len());
    Ok(())
}

/// Zero-copy monitor of a pipe master's TX: frames are passed only once the
/// slave consumed them and the master synced again; buffers are swapped.
fn monitor_zcopy_pipe() -> Result<(), String> {
    let m = Port::open("pipeM{1")?;
    let s = Port::open("pipeM}1")?;
    let z = mon("pipeM{1", NR_ZCOPY_MON)?;
    ensure!(
        z.reg.nr_mem_id == m.reg.nr_mem_id,
        "zero-copy monitor in another region"
    );
    ensure!(
        z.reg.nr_flags & 0x700 == 0x700,
        "nr_flags {:#x}: TX|RX not ORed in",
        z.reg.nr_flags
    );
    let frames: Vec<Vec<u8>> = (0..8).map(|i| frame(mac(1), mac(2), i, 100)).collect();
    m.send(&frames)?;
    ensure!(
        z.recv()?.is_empty(),
        "zero-copy monitor saw frames before release"
    );
    ensure!(s.recv()? == frames, "slave did not get the frames");
    s.rxsync()?;
    m.txsync()?;
    let seen = z.recv()?;
    ensure!(
        seen == frames,
        "zero-copy monitor saw {} frames, want 8",
        seen.len()
    );
    Ok(())
}

fn monitor_needs_netmap_mode() -> Result<(), String> {
    let reg = NmreqRegister {
        nr_flags: NR_MONITOR_TX,
        ..all_nic()
    };
    expect_err(
        "monitor of an unknown port",
        register("valem:nobody", reg).map(|_| ()),
        libc::EINVAL,
    )
}

fn monitor_stops_with_parent() -> Result<(), String> {
    let a = Port::open("valem:p")?;
    let m = mon("valem:p", NR_MONITOR_RX)?;
    m.rxsync()?;
    drop(a);
    match m.rxsync() {
        Err(e) if e.contains("EIO") => Ok(()),
        other => Err(format!(
            "monitor rxsync after the parent closed: {other:?}, want EIO ({})",
            errno_name(libc::EIO)
        )),
    }
}
