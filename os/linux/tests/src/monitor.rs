//! Monitors (spec §10.1): copy monitors of TX and RX, zero-copy monitors,
//! on VALE ports and pipes. Each monitor must see exactly the traffic of
//! the rings it monitors.

use crate::port::{BCAST, Port, all_nic, check_frame, frame, mac, register};
use crate::proc::{Signal, spawn};
use crate::sys::{errno_name, expect_err};
use crate::{Test, ensure};
use netmap_uapi::*;
use std::time::{Duration, Instant};

pub const TESTS: &[Test] = &[
    ("monitor_copy_vale_tx_rx", monitor_copy_vale_tx_rx),
    ("monitor_zcopy_pipe", monitor_zcopy_pipe),
    ("monitor_needs_netmap_mode", monitor_needs_netmap_mode),
    ("monitor_stops_with_parent", monitor_stops_with_parent),
    ("monitor_rx_pipe_on_arrival", monitor_rx_pipe_on_arrival),
    ("monitor_rx_vale_on_arrival", monitor_rx_vale_on_arrival),
    ("monitor_rx_nic_on_arrival", monitor_rx_nic_on_arrival),
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

/// Frames of our tests (ethertype 0x88b5) among whatever else arrives.
fn ours(frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    frames
        .into_iter()
        .filter(|f| f.len() >= 14 && f[12..14] == [0x88, 0xb5])
        .collect()
}

/// Receives on `p` until a frame of ours arrived or `ms` passed (poll
/// woken by the arrival).
fn recv_within(p: &Port, ms: u64) -> Result<Vec<Vec<u8>>, String> {
    let t0 = Instant::now();
    loop {
        let got = ours(p.recv()?);
        let left = ms.saturating_sub(t0.elapsed().as_millis() as u64);
        if !got.is_empty() || left == 0 {
            return Ok(got);
        }
        p.fd.poll(libc::POLLIN, left.min(500) as i32)
            .map_err(|e| format!("poll {}: {}", p.name, errno_name(e)))?;
    }
}

/// Sends `f` on `sender` and waits (at most 20 s) until its TX ring has
/// no pending slot: the transmission is complete.
fn send_and_complete(sender: &Port, f: &[u8]) -> Result<(), String> {
    ensure!(sender.send(&[f.to_vec()])? == 1, "{}: no room", sender.name);
    let t0 = Instant::now();
    let tx = sender.tx(0)?;
    while nm_tx_pending(tx.num_slots(), tx.head(), tx.tail()) {
        ensure!(
            t0.elapsed() < Duration::from_secs(20),
            "{}: TX not complete after 20 s (head {} tail {})",
            sender.name,
            tx.head(),
            tx.tail()
        );
        sender
            .fd
            .poll(libc::POLLOUT, 100)
            .map_err(|e| format!("poll {}: {}", sender.name, errno_name(e)))?;
        sender.txsync()?;
    }
    Ok(())
}

/// The user's scenario of the issue "a copy monitor of a pipe's receive
/// ring sees nothing until the pipe end syncs", for any port whose RX
/// ring another party fills: `port` is bound by a process that does not
/// read; a copy monitor of its RX ring (`netmap:port/r`) must get the
/// frame another process sends (`open_sender`) when it arrives; `port`
/// still receives the frame afterwards, and the sender's wait for its
/// TX to complete ends (for a pipe only once `port` has read and released
/// the frame: the two ends share the buffer, as in the reference).
fn rx_monitor_on_arrival(
    port: &str,
    open_sender: impl FnOnce() -> Result<Port, String>,
    f: &[u8],
) -> Result<(), String> {
    let (ready, go, sent) = (Signal::new()?, Signal::new()?, Signal::new()?);
    let reader = spawn(|| {
        let p = Port::open(port)?;
        ready.notify();
        go.wait(30_000)?;
        let got = recv_within(&p, 5000)?;
        ensure!(
            got == [f.to_vec()],
            "{port} got {} frames of ours after the monitor, want the one sent",
            got.len()
        );
        // Give the slot back, as a reader's next sync does.
        p.rxsync()
    })?;
    ready.wait(10_000)?;
    let m = mon(port, NR_MONITOR_RX)?;
    let sender = spawn(|| {
        let s = open_sender()?;
        send_and_complete(&s, f)?;
        sent.notify();
        Ok(())
    })?;
    // On arrival, while the port's owner has not read anything.
    let seen = recv_within(&m, 5000)?;
    ensure!(
        seen == [f.to_vec()],
        "copy monitor of {port}/r saw {} frames of ours within 5 s of the send, want 1",
        seen.len()
    );
    go.notify();
    reader.wait()?;
    sender.wait()?;
    Ok(())
}

/// Pipes: frames become visible in the peer's RX ring at the sender's
/// txsync; the monitor must not wait for `pipeA{1` to sync.
fn monitor_rx_pipe_on_arrival() -> Result<(), String> {
    let f = frame(mac(2), mac(1), 7, 80);
    rx_monitor_on_arrival("pipeA{1", || Port::open("pipeA}1"), &f)
}

/// VALE: the sender's switch delivers into the RX ring.
fn monitor_rx_vale_on_arrival() -> Result<(), String> {
    let f = frame(BCAST, mac(1), 8, 90);
    rx_monitor_on_arrival("valemr:r", || Port::open("valemr:s"), &f)
}

/// NICs: the device's receive path pushes into the RX ring (veth, the
/// other end sending through netmap).
fn monitor_rx_nic_on_arrival() -> Result<(), String> {
    let veth = crate::nic::Veth::new("nmmra", "nmmrb")?;
    let f = frame(BCAST, mac(1), 9, 100);
    rx_monitor_on_arrival(
        &veth.a,
        || {
            let s = Port::open(&veth.b)?;
            crate::nic::wait_oper_up(&veth.b)?;
            Ok(s)
        },
        &f,
    )
}
