//! The OFFSETS option (spec §4.11) through `netmap_uapi::user` (libnetmap's
//! `@offset:initial=N`): frames between two VALE ports and through a pipe,
//! each side with its own data offset, with payload checks; the errors.

use crate::port::{check_frame, frame, mac};
use crate::{Test, ensure};
use netmap_uapi::user::{Error, PollFlags, Port};
use std::time::{Duration, Instant};

pub const TESTS: &[Test] = &[
    ("offsets_vale", offsets_vale),
    ("offsets_pipe", offsets_pipe),
    ("offsets_errors", offsets_errors),
];

fn err_s(e: Error) -> String {
    e.to_string()
}

fn errno_of(e: &Error) -> i32 {
    match e {
        Error::Os { errno, .. } => *errno,
        _ => 0,
    }
}

/// `n` frames from `tx` to `rx` (window of 400), checked; every received
/// slot's data sits at `rx_off`. `sync` makes the frames move (VALE: the
/// sender's txsync delivers; pipes: also the receiver's rxsync).
fn transfer(tx: &Port, rx: &Port, n: u32, rx_off: usize) -> Result<(), String> {
    let (mut sent, mut got) = (0u32, 0u32);
    let end = Instant::now() + Duration::from_secs(30);
    while got < n {
        ensure!(Instant::now() < end, "{got} of {n} frames received");
        {
            let mut r = tx.tx_ring(0);
            while sent < n
                && sent - got < 400
                && r.send(&frame(mac(2), mac(1), sent, 60 + sent as usize % 1000))
                    .is_ok()
            {
                sent += 1;
            }
        }
        tx.sync_tx().map_err(err_s)?;
        rx.poll(PollFlags::IN, Some(Duration::from_millis(10)))
            .map_err(err_s)?;
        let mut r = rx.rx_ring(0);
        loop {
            let head = r.head();
            if head == r.tail() {
                break;
            }
            let off = r.data_offset(head);
            ensure!(off == rx_off, "frame {got} at offset {off}, not {rx_off}");
            let Some(p) = r.recv() else { break };
            ensure!(p.num_frags() == 1, "frame {got} in {} slots", p.num_frags());
            let seq = check_frame(p.data(), mac(1))?;
            ensure!(seq == got, "frame {seq} where {got} was expected");
            ensure!(
                p.len() == 60 + got as usize % 1000,
                "frame {seq}: {} bytes",
                p.len()
            );
            got += 1;
        }
    }
    Ok(())
}

/// Two VALE ports with different offsets (and the mask of the whole `ptr`):
/// the sender's data is read at 64, written at the receiver's 200.
fn offsets_vale() -> Result<(), String> {
    let a = Port::open("vale40:a@offset:initial=64").map_err(err_s)?;
    let b = Port::open("vale40:b@offset:initial=200,bits=12").map_err(err_s)?;
    let c = Port::open("vale40:c").map_err(err_s)?;
    ensure!(
        a.tx_ring(0).offset_mask() == u64::MAX,
        "a's mask {:#x}",
        a.tx_ring(0).offset_mask()
    );
    ensure!(
        b.rx_ring(0).offset_mask() == 0xfff,
        "b's mask {:#x}",
        b.rx_ring(0).offset_mask()
    );
    // The switch learns mac(2) at b.
    b.tx_ring(0)
        .send(&frame(mac(1), mac(2), 0, 60))
        .map_err(|e| e.to_string())?;
    b.sync_tx().map_err(err_s)?;
    for p in [&a, &c] {
        p.sync_rx().map_err(err_s)?;
        let mut r = p.rx_ring(0);
        while r.recv().is_some() {}
    }
    transfer(&a, &b, 2000, 200)?;
    // To and from a port without offsets.
    transfer(&c, &b, 300, 200)?;
    let d = Port::open("vale41:d@offset:initial=64").map_err(err_s)?;
    let e = Port::open("vale41:e").map_err(err_s)?;
    transfer(&d, &e, 300, 0)
}

/// Both ends of a pipe with offsets: the slot (and its offset) moves.
fn offsets_pipe() -> Result<(), String> {
    let m = Port::open("netmap:po{1@offset:initial=32").map_err(err_s)?;
    let s = Port::open("netmap:po}1@offset:initial=32").map_err(err_s)?;
    transfer(&m, &s, 2000, 32)
}

fn offsets_errors() -> Result<(), String> {
    for (spec, want) in [
        ("vale42:a@offset:initial=4096", libc::EINVAL),
        ("vale42:a@offset:initial=16,bits=4", libc::EINVAL),
        ("vale42:a@offset:initial=1,bits=65", libc::EINVAL),
    ] {
        match Port::open(spec) {
            Err(e) if errno_of(&e) == want => {}
            r => return Err(format!("{spec}: {r:?}")),
        }
    }
    // A second file may bind the rings with a narrower setting, not a
    // wider one.
    let _a = Port::open("vale42:a@offset:initial=100,bits=12").map_err(err_s)?;
    Port::open("vale42:a@offset:initial=50,bits=8").map_err(err_s)?;
    match Port::open("vale42:a@offset:initial=50,bits=16") {
        Err(e) if errno_of(&e) == libc::EBUSY => Ok(()),
        r => Err(format!("wider mask: {r:?}")),
    }
}
