//! CSB mode and the sync kernel loop with `netmap_uapi::user`: a port is
//! registered exclusively, put in CSB mode, and a thread of this program
//! lends itself to the kernel (SYNC_KLOOP_START) while the main thread
//! sends or receives through the CSB, never calling NIOCTXSYNC/NIOCRXSYNC.
//!
//! ```sh
//! cargo run --example csb_kloop -- vale0:b rx -n 100000 &
//! cargo run --example csb_kloop -- vale0:a tx -n 100000 --eventfds
//! ```
//!
//! Options: `-n N` frames (default 100000), `--eventfds` (the loop sleeps
//! until kicked through ioeventfds and signals irqfds; else it pauses
//! `--sleep US` microseconds between passes, default 100), `--direct`
//! (direct TX and RX modes, with `--eventfds`).

use netmap_uapi::user::{KloopConfig, PollFlags, Port};
use netmap_uapi::{RegFlags, SyncKloopMode};
use std::time::{Duration, Instant};

fn usage() -> ! {
    eprintln!("usage: csb_kloop PORT tx|rx [-n N] [--eventfds] [--sleep US] [--direct]");
    std::process::exit(2)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(spec), Some(dir)) = (args.first(), args.get(1)) else {
        usage()
    };
    let tx = match dir.as_str() {
        "tx" => true,
        "rx" => false,
        _ => usage(),
    };
    let (mut n, mut eventfds, mut cfg) = (
        100_000u64,
        false,
        KloopConfig {
            sleep_us: 100,
            mode: SyncKloopMode::empty(),
        },
    );
    let mut it = args[2..].iter();
    while let Some(a) = it.next() {
        let mut num = || {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage())
        };
        match a.as_str() {
            "-n" => n = num(),
            "--sleep" => cfg.sleep_us = num() as u32,
            "--eventfds" => eventfds = true,
            "--direct" => cfg.mode = SyncKloopMode::DIRECT_TX | SyncKloopMode::DIRECT_RX,
            _ => usage(),
        }
    }
    let mut port = Port::builder(spec).flags(RegFlags::EXCLUSIVE).open()?;
    port.enable_csb(eventfds)?;
    let start = Instant::now();
    let done = std::thread::scope(|s| -> Result<u64, netmap_uapi::user::Error> {
        let kloop = s.spawn(|| port.sync_kloop(&cfg));
        let frame = [0x42u8; 60];
        let mut count = 0u64;
        while count < n {
            if tx {
                let mut ring = port.tx_ring(0);
                while count < n && ring.send(&frame).is_ok() {
                    count += 1;
                }
                drop(ring);
                port.csb_sync_tx()?;
            } else {
                port.csb_sync_rx()?;
                let mut ring = port.rx_ring(0);
                while let Some(p) = ring.recv() {
                    drop(p);
                    count += 1;
                }
                drop(ring);
            }
            // Wait for the loop: its signal, or a short pause.
            let want = if tx { PollFlags::OUT } else { PollFlags::IN };
            if eventfds {
                port.csb_wait(want, Some(Duration::from_millis(100)))?;
            } else {
                std::thread::sleep(Duration::from_micros(u64::from(cfg.sleep_us.max(10))));
            }
        }
        // Let the last frames go out before the loop stops.
        if tx {
            port.csb_sync_tx()?;
            std::thread::sleep(Duration::from_millis(10));
        }
        port.sync_kloop_stop()?;
        kloop.join().expect("kloop thread")?;
        Ok(count)
    })?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} {done} frames in {secs:.3} s: {:.0} pps",
        if tx { "sent" } else { "received" },
        done as f64 / secs
    );
    Ok(())
}
