//! Data-path throughput of the core, in one run:
//!
//! (a) VALE forwarding between two ports, (b) VALE broadcast from one port
//! to three, (c) a pipe pair, all with 60-byte frames in batches of 512,
//! one thread per port; and (d) the floor: the same producer/consumer loop
//! copying 60 bytes into and out of a plain in-memory ring (1024 slots,
//! 2048-byte buffers) without the core. Prints Mpps and the ratios to (d).
//!
//! `cargo bench -p netmap-core --bench core` (BENCH_SECS overrides the
//! duration of each figure, default 2 s).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BATCH: usize = 512;
const FRAME: usize = 60;
const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];
const BCAST: [u8; 6] = [0xff; 6];
/// Receivers stop when nothing arrived for this long after the sender.
const DRAIN: Duration = Duration::from_millis(50);

struct Figure {
    tx: u64,
    rx: u64,
    secs: f64,
}

impl Figure {
    fn tx_mpps(&self) -> f64 {
        self.tx as f64 / self.secs / 1e6
    }
    fn rx_mpps(&self) -> f64 {
        self.rx as f64 / self.secs / 1e6
    }
}

/// Consume a received frame: the receiver reads the sequence number, like
/// the floor's consumer (the copy out of the slot is done by recv_each).
fn touch(f: &[u8], sum: &mut u64) {
    if f.len() >= 22 {
        *sum = sum.wrapping_add(u64::from(u32::from_be_bytes([f[18], f[19], f[20], f[21]])));
    }
}

/// One sender port `names[0]`, receivers on the others. With `window`, the
/// sender never has more than that many frames not yet released by the
/// slowest receiver: VALE has no backpressure, and a window of at most the
/// RX ring capacity makes the figure an end-to-end lossless rate like the
/// pipe's and the floor's. Without it the sender goes flat out and the
/// switch drops what the receivers cannot take.
fn bench_ports(names: &[&str], dst: [u8; 6], dur: Duration, window: Option<u64>) -> Figure {
    let env = Env::new();
    let ports: Vec<Port<'_>> = names.iter().map(|n| env.port(n)).collect();
    if dst == DST {
        // Let the switch learn the receiver's MAC: unicast forwarding.
        let f = frame(SRC, DST, 0, FRAME);
        ports[1].send(&[&f]);
        ports[0].recv();
    }
    let stop = AtomicBool::new(false);
    let rx_total = AtomicU64::new(0);
    // Frames each receiver has given back to the kernel.
    let released: Vec<AtomicU64> = ports[1..].iter().map(|_| AtomicU64::new(0)).collect();
    let (tx, secs) = std::thread::scope(|s| {
        for (p, rel) in ports[1..].iter().zip(&released) {
            let (stop, rx_total) = (&stop, &rx_total);
            s.spawn(move || {
                let r = p.rx_ring(0).expect("rx ring");
                let (mut n, mut sum) = (0u64, 0u64);
                let mut idle: Option<Instant> = None;
                loop {
                    let got = p.recv_each(&r, |f| touch(f, &mut sum));
                    // The rxsync inside recv_each released what we had.
                    rel.store(n, Ordering::Release);
                    n += got as u64;
                    if got > 0 {
                        idle = None;
                        continue;
                    }
                    if stop.load(Ordering::Acquire)
                        && idle.get_or_insert_with(Instant::now).elapsed() > DRAIN
                    {
                        break;
                    }
                    std::thread::yield_now();
                }
                std::hint::black_box(sum);
                rx_total.fetch_add(n, Ordering::AcqRel);
            });
        }
        let h = s.spawn(|| {
            let p = &ports[0];
            let r = p.tx_ring(0).expect("tx ring");
            let mut seq = 0u32;
            let t0 = Instant::now();
            let mut sent = 0u64;
            while t0.elapsed() < dur {
                let mut max = BATCH;
                if let Some(w) = window {
                    let done = released
                        .iter()
                        .map(|r| r.load(Ordering::Acquire))
                        .min()
                        .unwrap_or(0);
                    max = max.min(w.saturating_sub(sent - done) as usize);
                    if max == 0 {
                        std::thread::yield_now();
                        continue;
                    }
                }
                let k = p.send_fill(&r, max, |buf| {
                    let l = seq_frame(buf, dst, SRC, 0, seq, FRAME);
                    seq = seq.wrapping_add(1);
                    l
                });
                sent += k as u64;
                if k == 0 {
                    // Pipes: wait for the receiver to give slots back.
                    std::thread::yield_now();
                }
            }
            let secs = t0.elapsed().as_secs_f64();
            stop.store(true, Ordering::Release);
            (sent, secs)
        });
        h.join().expect("sender")
    });
    Figure {
        tx,
        rx: rx_total.load(Ordering::Acquire),
        secs,
    }
}

// ----------------------------------------------------------------------
// The floor: a plain single-producer single-consumer ring.

const FLOOR_SLOTS: u32 = 1024;
const FLOOR_BUF: usize = 2048;

struct FloorRing {
    /// Next slot the producer fills (written by the producer only).
    head: AtomicU32,
    /// Next slot the consumer reads (written by the consumer only).
    tail: AtomicU32,
    lens: Vec<AtomicU32>,
    bufs: Box<[UnsafeCell<[u8; FLOOR_BUF]>]>,
}

// SAFETY: slot buffers are only accessed by the side that owns them under
// the head/tail protocol (producer: [head, tail-1), consumer: [tail, head)),
// and ownership moves with Release stores / Acquire loads of head and tail.
unsafe impl Sync for FloorRing {}

impl FloorRing {
    fn new() -> Self {
        FloorRing {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            lens: (0..FLOOR_SLOTS).map(|_| AtomicU32::new(0)).collect(),
            bufs: (0..FLOOR_SLOTS)
                .map(|_| UnsafeCell::new([0u8; FLOOR_BUF]))
                .collect(),
        }
    }
}

fn bench_floor(dur: Duration) -> Figure {
    let ring = FloorRing::new();
    let stop = AtomicBool::new(false);
    let n = FLOOR_SLOTS;
    let (ring, stop) = (&ring, &stop);
    let (tx, rx, secs) = std::thread::scope(|s| {
        // `move` captures the references, not fields of the ring.
        let c = s.spawn(move || {
            let (mut got, mut sum) = (0u64, 0u64);
            let mut scratch = [0u8; FLOOR_BUF];
            let mut t = ring.tail.load(Ordering::Relaxed);
            loop {
                let h = ring.head.load(Ordering::Acquire);
                if h == t {
                    if stop.load(Ordering::Acquire) && ring.head.load(Ordering::Acquire) == t {
                        break;
                    }
                    std::thread::yield_now();
                    continue;
                }
                while t != h {
                    let len = ring.lens[t as usize].load(Ordering::Relaxed) as usize;
                    let src = ring.bufs[t as usize].get().cast::<u8>();
                    // SAFETY: slot t is in [tail, head): owned by the
                    // consumer until tail moves past it; len <= FLOOR_BUF.
                    unsafe { core::ptr::copy_nonoverlapping(src, scratch.as_mut_ptr(), len) };
                    touch(&scratch[..len], &mut sum);
                    t = next(t, n);
                    got += 1;
                }
                ring.tail.store(t, Ordering::Release);
            }
            std::hint::black_box(sum);
            got
        });
        let t0 = Instant::now();
        let mut sent = 0u64;
        let mut seq = 0u32;
        let mut scratch = [0u8; FLOOR_BUF];
        let mut h = ring.head.load(Ordering::Relaxed);
        while t0.elapsed() < dur {
            let t = ring.tail.load(Ordering::Acquire);
            let mut k = 0;
            // One slot stays empty, as in netmap.
            while k < BATCH && next(h, n) != t {
                let len = seq_frame(&mut scratch, DST, SRC, 0, seq, FRAME);
                seq = seq.wrapping_add(1);
                let dst = ring.bufs[h as usize].get().cast::<u8>();
                // SAFETY: slot h is outside [tail, head): owned by the
                // producer until head moves past it; len <= FLOOR_BUF.
                unsafe { core::ptr::copy_nonoverlapping(scratch.as_ptr(), dst, len) };
                ring.lens[h as usize].store(len as u32, Ordering::Relaxed);
                h = next(h, n);
                k += 1;
            }
            ring.head.store(h, Ordering::Release);
            sent += k as u64;
            if k == 0 {
                std::thread::yield_now();
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        stop.store(true, Ordering::Release);
        let rx = c.join().expect("consumer");
        (sent, rx, secs)
    });
    Figure { tx, rx, secs }
}

/// Best and worst of several runs of one figure (best by received rate).
struct Runs {
    best: Option<Figure>,
    worst_rx: f64,
}

impl Runs {
    fn new() -> Self {
        Runs {
            best: None,
            worst_rx: f64::MAX,
        }
    }
    fn add(&mut self, f: Figure) {
        self.worst_rx = self.worst_rx.min(f.rx_mpps());
        if self.best.as_ref().is_none_or(|b| f.rx_mpps() > b.rx_mpps()) {
            self.best = Some(f);
        }
    }
    fn print(&self, label: &str, copies: u32) {
        let b = self.best.as_ref().expect("at least one run");
        println!(
            "{label:<40} tx {:8.3} Mpps   rx {:8.3} Mpps{}   (worst run rx {:.3})",
            b.tx_mpps(),
            b.rx_mpps(),
            if copies > 1 {
                format!(
                    " total, {:.3} per receiver",
                    b.rx_mpps() / f64::from(copies)
                )
            } else {
                String::new()
            },
            self.worst_rx
        );
    }
    fn rx(&self) -> f64 {
        self.best.as_ref().map_or(0.0, Figure::rx_mpps)
    }
    fn tx(&self) -> f64 {
        self.best.as_ref().map_or(0.0, Figure::tx_mpps)
    }
}

fn env_or<T: std::str::FromStr>(name: &str, dflt: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(dflt)
}

/// Single-threaded loop for instruction counting (`BENCH_PROFILE=vale|pipe|
/// noreceiver|bcast`, `BENCH_FRAMES`): the sender fills a batch and syncs,
/// the receiver(s) take everything. Run it under `valgrind --tool=callgrind`
/// and divide the inclusive cost of `Netmap::ioctl` by the frame count.
fn profile(which: &str, frames: u64) {
    let names: &[&str] = match which {
        "vale" => &["valeprof0:a", "valeprof0:b"],
        "bcast" => &["valeprof1:a", "valeprof1:b", "valeprof1:c", "valeprof1:d"],
        "noreceiver" => &["valeprof2:a"],
        "pipe" => &["profpipe{0", "profpipe}0"],
        _ => panic!("BENCH_PROFILE: vale, bcast, noreceiver or pipe"),
    };
    let dst = if which == "bcast" { BCAST } else { DST };
    let env = Env::new();
    let ports: Vec<Port<'_>> = names.iter().map(|n| env.port(n)).collect();
    if ports.len() > 1 && dst == DST {
        let f = frame(SRC, DST, 0, FRAME);
        ports[1].send(&[&f]);
        ports[0].recv();
    }
    let tx = ports[0].tx_ring(0).expect("tx ring");
    let rxs: Vec<_> = ports[1..]
        .iter()
        .map(|p| p.rx_ring(0).expect("rx ring"))
        .collect();
    let (mut sent, mut got, mut seq, mut sum) = (0u64, 0u64, 0u32, 0u64);
    while sent < frames {
        sent += ports[0].send_fill(&tx, BATCH, |buf| {
            let l = seq_frame(buf, dst, SRC, 0, seq, FRAME);
            seq = seq.wrapping_add(1);
            l
        }) as u64;
        for (p, r) in ports[1..].iter().zip(&rxs) {
            got += p.recv_each(r, |f| touch(f, &mut sum)) as u64;
        }
    }
    std::hint::black_box(sum);
    println!("profile {which}: sent {sent} received {got}");
}

fn main() {
    if let Ok(which) = std::env::var("BENCH_PROFILE") {
        profile(&which, env_or("BENCH_FRAMES", 1_000_000));
        return;
    }
    // `cargo bench` passes --bench; arguments are ignored.
    let secs: f64 = env_or("BENCH_SECS", 1.0);
    let rounds: u32 = env_or("BENCH_RUNS", 3).max(1);
    let dur = Duration::from_secs_f64(secs);
    println!(
        "netmap-core data path: {FRAME}-byte frames, batch {BATCH}, {secs} s per run, best of {rounds} interleaved runs"
    );
    // VALE RX rings have 1023 usable slots: with that window nothing is
    // dropped, so (a) and (b) are lossless end-to-end rates like (c), (d).
    let w = Some(1023);
    let (mut a, mut b, mut c, mut d, mut u) = (
        Runs::new(),
        Runs::new(),
        Runs::new(),
        Runs::new(),
        Runs::new(),
    );
    for _ in 0..rounds {
        a.add(bench_ports(&["valebench0:a", "valebench0:b"], DST, dur, w));
        b.add(bench_ports(
            &[
                "valebench1:a",
                "valebench1:b",
                "valebench1:c",
                "valebench1:d",
            ],
            BCAST,
            dur,
            w,
        ));
        c.add(bench_ports(&["benchpipe{0", "benchpipe}0"], DST, dur, None));
        d.add(bench_floor(dur));
        u.add(bench_ports(
            &["valebench2:a", "valebench2:b"],
            DST,
            dur,
            None,
        ));
    }
    a.print("(a) VALE a->b, 1 sender 1 receiver", 1);
    b.print("(b) VALE broadcast, 1 sender 3 recv", 3);
    c.print("(c) pipe, 1 sender 1 receiver", 1);
    d.print("(d) floor: plain SPSC ring, no core", 1);
    let f = d.rx();
    println!(
        "ratios to the floor (received frames): (a)/(d) = {:.3}   (b)/(d) = {:.3}   (c)/(d) = {:.3}",
        a.rx() / f,
        b.rx() / f,
        c.rx() / f
    );
    println!(
        "  ((b) counts every copy delivered; per frame sent (b)/(d) = {:.3})",
        b.tx() / f
    );
    // For reference: VALE without the window (the switch drops what the
    // receiver cannot take; tx is the offered load).
    u.print("(a') VALE a->b flat out, no window", 1);
}
