//! netmap pipes (spec §9): zero-copy, end-to-end flow control.

use crate::port::{BCAST, Port, all_nic, check_frame, frame, mac, register};
use crate::sys::{errno_name, expect_err};
use crate::{Test, ensure};
use netmap_uapi::*;

pub const TESTS: &[Test] = &[
    ("pipe_flow_control", pipe_flow_control),
    ("pipe_both_directions", pipe_both_directions),
    ("pipe_bad_modes", pipe_bad_modes),
];

/// 10 sent, 7 consumed: the sender sees 3 slots still pending; buffers are
/// passed, not copied (the receiver sees the sender's buffer indexes).
fn pipe_flow_control() -> Result<(), String> {
    let m = Port::open("vale9:p{1")?;
    let s = Port::open("vale9:p}1")?;
    ensure!(
        m.reg.nr_mem_id == s.reg.nr_mem_id,
        "pipe ends in different regions"
    );
    let tx = m.tx(0)?;
    let n = tx.num_slots();
    ensure!(
        tx.space() == n - 1,
        "initial TX space {} of {n}",
        tx.space()
    );
    let frames: Vec<Vec<u8>> = (0..10).map(|i| frame(BCAST, mac(1), i, 64)).collect();
    let sent_bufs: Vec<u32> = (0..10)
        .map(|i| tx.slot(tx.head() + i).map(|s| s.buf_idx))
        .collect::<Result<_, _>>()?;
    ensure!(m.send(&frames)? == 10, "could not queue 10 frames");

    s.rxsync()?;
    let rx = s.rx(0)?;
    ensure!(
        rx.space() == 10,
        "receiver sees {} frames, want 10",
        rx.space()
    );
    for i in 0..10 {
        let slot = rx.slot(rx.head() + i)?;
        ensure!(
            slot.buf_idx == sent_bufs[i as usize],
            "slot {i}: buffer {} was not passed (sent {})",
            slot.buf_idx,
            sent_bufs[i as usize]
        );
        ensure!(
            check_frame(&rx.get(rx.head() + i)?, mac(1))? == i,
            "frame {i} out of order"
        );
    }
    // Consume 7 and release them.
    rx.set_head_cur(rx.head() + 7);
    s.rxsync()?;
    m.txsync()?;
    let pending = n - 1 - tx.space();
    ensure!(
        pending == 3,
        "sender ring shows {pending} pending slots, want 3"
    );
    // Consume the rest: nothing pending any more.
    rx.set_head_cur(rx.tail());
    s.rxsync()?;
    m.txsync()?;
    ensure!(
        tx.space() == n - 1,
        "TX space {} after all were consumed",
        tx.space()
    );
    Ok(())
}

/// Master → slave and slave → master at the same time.
fn pipe_both_directions() -> Result<(), String> {
    let m = Port::open("vale9:q{x")?;
    let s = Port::open("vale9:q}x")?;
    m.send(&[frame(BCAST, mac(1), 1, 60)])?;
    s.send(&[frame(BCAST, mac(2), 2, 60), frame(BCAST, mac(2), 3, 60)])?;
    let at_s = s.recv()?;
    let at_m = m.recv()?;
    ensure!(
        at_s.len() == 1 && check_frame(&at_s[0], mac(1))? == 1,
        "slave got {} frames",
        at_s.len()
    );
    ensure!(
        at_m.len() == 2 && check_frame(&at_m[1], mac(2))? == 3,
        "master got {} frames",
        at_m.len()
    );
    Ok(())
}

/// Pipes accept only ALL_NIC / ONE_NIC; empty ids are invalid (spec §7.1).
fn pipe_bad_modes() -> Result<(), String> {
    let mut reg = all_nic();
    reg.nr_mode = NR_REG_SW;
    expect_err(
        "pipe with NR_REG_SW",
        register("vale9:r{1", reg).map(|_| ()),
        libc::EINVAL,
    )?;
    expect_err(
        "pipe with empty id",
        register("vale9:r{", all_nic()).map(|_| ()),
        libc::EINVAL,
    )?;
    match register("vale9:r{1", all_nic()) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "pipe ALL_NIC after the failures: {}",
            errno_name(e)
        )),
    }
}
