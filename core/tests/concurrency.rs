//! Threads on the data path: senders and receivers on a VALE switch and on
//! pipes, many ports, ports coming and going while traffic flows.
//!
//! Every wait is bounded: loops run against a deadline and fail with a
//! message instead of hanging.

mod common;
use common::*;
use netmap_core::host::HostPlatform;
use netmap_core::netmap::{Netmap, NetmapPriv};
use netmap_uapi::*;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];
const BCAST: [u8; 6] = [0xff; 6];

/// The heavy tests run one at a time: on a small machine, several of them
/// at once would only measure the scheduler.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Upper bound for any single test phase.
const DEADLINE: Duration = Duration::from_secs(90);
/// How long a receiver keeps draining after the senders are done.
const IDLE: Duration = Duration::from_millis(300);

#[test]
fn types_are_send_and_sync() {
    fn ss<T: Send + Sync>() {}
    ss::<Netmap<HostPlatform>>();
    ss::<NetmapPriv<HostPlatform>>();
    ss::<Env>();
}

fn mac(i: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 1, i as u8]
}

/// Per-receiver accounting of one or more sequence-numbered streams.
#[derive(Default)]
struct Streams {
    /// Next expected minimum sequence number per stream.
    next: Vec<u32>,
    count: Vec<u64>,
}

impl Streams {
    fn new(n: usize) -> Self {
        Streams {
            next: vec![0; n],
            count: vec![0; n],
        }
    }

    /// Account one received frame; `exact` means no frame may be missing.
    fn take(&mut self, f: &[u8], exact: bool) -> Result<u32, String> {
        let (_, stream, seq) = check_seq_frame(f)?;
        let s = stream as usize;
        if s >= self.next.len() {
            return Err(format!("unknown stream {stream}"));
        }
        if exact && seq != self.next[s] {
            return Err(format!(
                "stream {stream}: got seq {seq}, want {}",
                self.next[s]
            ));
        }
        if seq < self.next[s] {
            return Err(format!(
                "stream {stream}: seq {seq} after {} (reordered or duplicated)",
                self.next[s] - 1
            ));
        }
        self.next[s] = seq + 1;
        self.count[s] += 1;
        Ok(stream)
    }
}

/// One VALE sender thread and one receiver thread. With `window`, the
/// sender keeps at most that many frames unreceived (the receiver ring can
/// never overflow, so nothing may be lost); without, it goes flat out and
/// the switch drops what does not fit.
fn vale_pair(sw: &str, n: u32, window: Option<u64>) -> (u64, u64) {
    let _serial = serial();
    let env = Env::new();
    let base = env.nm.stats();
    let received = AtomicU64::new(0);
    let sent = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let ready = Barrier::new(2);
    let (an, bn) = (format!("{sw}:a"), format!("{sw}:b"));
    let a = env.port(&an);
    let b = env.port(&bn);
    let res = std::thread::scope(|s| {
        let rx = s.spawn(|| -> Result<u64, String> {
            let r = b.rx_ring(0).expect("rx ring");
            let mut st = Streams::new(1);
            let t0 = Instant::now();
            let mut idle_since: Option<Instant> = None;
            ready.wait();
            loop {
                let mut err = None;
                let got = b.recv_each(&r, |f| {
                    if err.is_none()
                        && let Err(e) = st.take(f, window.is_some())
                    {
                        err = Some(e);
                    }
                });
                if let Some(e) = err {
                    done.store(true, Ordering::Release);
                    return Err(e);
                }
                received.fetch_add(got as u64, Ordering::AcqRel);
                if got > 0 {
                    idle_since = None;
                    continue;
                }
                if done.load(Ordering::Acquire) {
                    if received.load(Ordering::Acquire) == sent.load(Ordering::Acquire) {
                        break;
                    }
                    let t = *idle_since.get_or_insert_with(Instant::now);
                    if t.elapsed() > IDLE {
                        break;
                    }
                }
                if t0.elapsed() > DEADLINE {
                    done.store(true, Ordering::Release);
                    return Err(format!(
                        "receiver deadline: {} of {} received",
                        st.count[0],
                        sent.load(Ordering::Acquire)
                    ));
                }
                b.poll_wait(POLLIN, Duration::from_millis(5));
            }
            Ok(st.count[0])
        });
        let tx = s.spawn(|| -> Result<(), String> {
            let r = a.tx_ring(0).expect("tx ring");
            let t0 = Instant::now();
            let mut seq = 0u32;
            ready.wait();
            while seq < n {
                if done.load(Ordering::Acquire) {
                    return Err("receiver gave up".into());
                }
                if t0.elapsed() > DEADLINE {
                    done.store(true, Ordering::Release);
                    return Err(format!("sender deadline at seq {seq}"));
                }
                let mut max = (n - seq).min(512) as usize;
                if let Some(w) = window {
                    let inflight = u64::from(seq) - received.load(Ordering::Acquire);
                    if inflight >= w {
                        std::thread::yield_now();
                        continue;
                    }
                    max = max.min((w - inflight) as usize);
                }
                let k = a.send_fill(&r, max, |buf| {
                    let l = seq_frame(buf, BCAST, A, 0, seq, 60);
                    seq += 1;
                    l
                });
                sent.fetch_add(k as u64, Ordering::AcqRel);
                if window.is_none() {
                    // Flat out, but let a receiver sharing this CPU run.
                    std::thread::yield_now();
                }
                if k == 0 {
                    // The VALE TX ring is free again after every txsync:
                    // this only happens if the sync was skipped.
                    a.poll_wait(POLLOUT, Duration::from_millis(5));
                }
                // Invariant of VALE TX: nothing stays pending.
                let (h, t) = (r.head(), r.tail());
                if t != prev(h, r.num_slots()) {
                    done.store(true, Ordering::Release);
                    return Err(format!(
                        "VALE TX ring pending after sync: head {h} tail {t}"
                    ));
                }
            }
            done.store(true, Ordering::Release);
            Ok(())
        });
        let t = tx.join().expect("sender panicked");
        let r = rx.join().expect("receiver panicked");
        t.and(r)
    });
    let got = res.unwrap_or_else(|e| panic!("{sw}: {e}"));
    let sent = sent.load(Ordering::Acquire);
    assert_eq!(sent, u64::from(n));
    assert!(got <= sent, "received {got} > sent {sent}");
    drop(a);
    drop(b);
    assert_eq!(env.nm.stats(), base);
    (sent, got)
}

#[test]
fn vale_one_sender_one_receiver_flow_controlled() {
    // The window (256) plus a receive batch never exceeds the RX ring
    // (1023 slots): the switch has no reason to drop anything.
    let (sent, got) = vale_pair("valeq0", 200_000, Some(256));
    assert_eq!(got, sent, "lossless under a window");
}

#[test]
fn vale_one_sender_one_receiver_flat_out() {
    let (sent, got) = vale_pair("valeq1", 200_000, None);
    // The receiver polls and keeps up at least partly; drops are allowed
    // (VALE has no backpressure) but order and contents were checked.
    assert!(got * 20 >= sent, "only {got} of {sent} frames arrived");
    eprintln!("flat out: {got}/{sent} delivered");
}

/// Run a sender/receiver pair over pipe `m`/`s` with exact delivery.
fn pipe_stream(m: &Port<'_>, s: &Port<'_>, stream: u32, n: u32, len: usize) -> Result<(), String> {
    let done = AtomicBool::new(false);
    let ready = Barrier::new(2);
    std::thread::scope(|sc| {
        let rx = sc.spawn(|| -> Result<(), String> {
            let r = s.rx_ring(0).expect("rx ring");
            let mut next = 0u32;
            let t0 = Instant::now();
            ready.wait();
            while next < n {
                let mut err = None;
                let got = s.recv_each(&r, |f| {
                    if err.is_some() {
                        return;
                    }
                    match check_seq_frame(f) {
                        Ok((_, st, q)) if st == stream && q == next => next += 1,
                        Ok((_, st, q)) => {
                            err = Some(format!(
                                "pipe stream {stream}: got stream {st} seq {q}, want seq {next}"
                            ))
                        }
                        Err(e) => err = Some(e),
                    }
                });
                if let Some(e) = err {
                    done.store(true, Ordering::Release);
                    return Err(e);
                }
                if got == 0 {
                    if t0.elapsed() > DEADLINE {
                        done.store(true, Ordering::Release);
                        return Err(format!("pipe receiver deadline: {next} of {n}"));
                    }
                    s.poll_wait(POLLIN, Duration::from_millis(5));
                }
            }
            // Release the last frames (the sender may wait for them).
            s.rxsync().map_err(|e| e.to_string())?;
            Ok(())
        });
        let tx = sc.spawn(|| -> Result<(), String> {
            let r = m.tx_ring(0).expect("tx ring");
            let nslots = r.num_slots();
            let mut seq = 0u32;
            let t0 = Instant::now();
            ready.wait();
            while seq < n {
                if done.load(Ordering::Acquire) {
                    return Err("receiver gave up".into());
                }
                let k = m.send_fill(&r, (n - seq).min(512) as usize, |buf| {
                    let l = seq_frame(buf, A, B, stream, seq, len);
                    seq += 1;
                    l
                });
                let (h, t) = (r.head(), r.tail());
                if h >= nslots || t >= nslots {
                    return Err(format!("pipe TX ring out of range: head {h} tail {t}"));
                }
                if k == 0 {
                    if t0.elapsed() > DEADLINE {
                        return Err(format!("pipe sender deadline at seq {seq}"));
                    }
                    m.poll_wait(POLLOUT, Duration::from_millis(5));
                }
            }
            // Wait until the receiver gave every slot back.
            while r.tail() != prev(r.head(), nslots) {
                if t0.elapsed() > DEADLINE || done.load(Ordering::Acquire) {
                    return Err(format!(
                        "pipe TX never drained: head {} tail {}",
                        r.head(),
                        r.tail()
                    ));
                }
                m.poll_wait(POLLOUT, Duration::from_millis(5));
                m.txsync().map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        let t = tx.join().expect("pipe sender panicked");
        let r = rx.join().expect("pipe receiver panicked");
        t.and(r)
    })
}

#[test]
fn pipe_one_sender_one_receiver_exact() {
    let _serial = serial();
    let env = Env::new();
    let base = env.nm.stats();
    {
        let m = env.port("valep0:x{0");
        let s = env.port("valep0:x}0");
        pipe_stream(&m, &s, 0, 200_000, 60).unwrap_or_else(|e| panic!("{e}"));
        // And back, on the other pair of rings, with varied lengths.
        pipe_stream(&s, &m, 1, 20_000, 1514).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn pipe_small_rings_exact() {
    let _serial = serial();
    // 4-slot rings: the sender is blocked by flow control all the time.
    let env = Env::new();
    let base = env.nm.stats();
    {
        let reg = NmreqRegister {
            nr_mode: NR_REG_ALL_NIC,
            nr_tx_slots: 4,
            nr_rx_slots: 4,
            ..NmreqRegister::zeroed()
        };
        let m = env.port_with("pipesmall{1", reg);
        let s = env.port("pipesmall}1");
        assert_eq!(m.tx_ring(0).unwrap().num_slots(), 4);
        pipe_stream(&m, &s, 0, 20_000, 60).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn many_pipes_in_parallel_exact() {
    let _serial = serial();
    // Four pipes off one VALE parent, four sender/receiver pairs at once.
    let env = Env::new();
    let base = env.nm.stats();
    {
        let parent = env.port("valep1:par");
        let ends: Vec<(Port<'_>, Port<'_>)> = (0..4)
            .map(|i| {
                (
                    env.port(&format!("valep1:par{{{i}")),
                    env.port(&format!("valep1:par}}{i}")),
                )
            })
            .collect();
        std::thread::scope(|sc| {
            let hs: Vec<_> = ends
                .iter()
                .enumerate()
                .map(|(i, (m, s))| {
                    sc.spawn(move || pipe_stream(m, s, i as u32, 20_000, 60 + 8 * i))
                })
                .collect();
            for h in hs {
                h.join()
                    .expect("pipe pair panicked")
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        });
        // The parent itself saw none of it.
        assert!(parent.recv().is_empty());
    }
    assert_eq!(env.nm.stats(), base);
}

/// Many ports on one switch: 4 broadcasting senders (which also receive),
/// 4 receive-only ports, and churn threads opening and closing ports on the
/// same switch (and pipes off it) while traffic flows.
#[test]
fn many_ports_broadcast_with_churn() {
    let _serial = serial();
    const SENDERS: usize = 4;
    const RECEIVERS: usize = 4;
    const PER_SENDER: u32 = 20_000;
    let env = Env::new();
    let base = env.nm.stats();
    let senders_done = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failed: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let churn_cycles = AtomicU64::new(0);
    let pipe_cycles = AtomicU64::new(0);
    // Senders keep going until the churn threads did this many cycles.
    const MIN_CHURN: u64 = 20;
    let small = NmreqRegister {
        nr_mode: NR_REG_ALL_NIC,
        nr_tx_slots: 64,
        nr_rx_slots: 64,
        ..NmreqRegister::zeroed()
    };
    let fail = |m: String| {
        stop.store(true, Ordering::Release);
        failed.lock().unwrap().push(m);
    };
    {
        // All the long-lived ports exist before any frame is sent.
        let ports: Vec<Port<'_>> = (0..SENDERS + RECEIVERS)
            .map(|i| env.port(&format!("valem:p{i}")))
            .collect();
        let totals: Vec<AtomicU64> = (0..SENDERS + RECEIVERS)
            .map(|_| AtomicU64::new(0))
            .collect();
        let ready = Barrier::new(SENDERS + RECEIVERS / 2 + 2);
        std::thread::scope(|sc| {
            // Senders: port i sends stream i, broadcast, and drains its own
            // RX ring (never its own frames).
            for (i, p) in ports.iter().enumerate().take(SENDERS) {
                let (stop, senders_done, fail, ready, totals) =
                    (&stop, &senders_done, &fail, &ready, &totals);
                let (churn_cycles, pipe_cycles) = (&churn_cycles, &pipe_cycles);
                sc.spawn(move || {
                    let tx = p.tx_ring(0).unwrap();
                    let rx = p.rx_ring(0).unwrap();
                    let mut st = Streams::new(SENDERS);
                    let mut seq = 0u32;
                    let t0 = Instant::now();
                    ready.wait();
                    while (seq < PER_SENDER
                        || churn_cycles.load(Ordering::Relaxed) < MIN_CHURN
                        || pipe_cycles.load(Ordering::Relaxed) < MIN_CHURN)
                        && !stop.load(Ordering::Acquire)
                    {
                        if t0.elapsed() > DEADLINE {
                            fail(format!("sender {i} deadline at {seq}"));
                            break;
                        }
                        p.send_fill(&tx, (PER_SENDER - seq).min(64) as usize, |buf| {
                            let l = seq_frame(
                                buf,
                                BCAST,
                                mac(i),
                                i as u32,
                                seq,
                                60 + (seq as usize % 7) * 100,
                            );
                            seq += 1;
                            l
                        });
                        let mut err = None;
                        let got = p.recv_each(&rx, |f| {
                            if err.is_none() {
                                match st.take(f, false) {
                                    Ok(s) if s as usize == i => {
                                        err = Some(format!("port {i} received its own frame"))
                                    }
                                    Ok(_) => {}
                                    Err(e) => err = Some(format!("port {i}: {e}")),
                                }
                            }
                        });
                        totals[i].fetch_add(got as u64, Ordering::Relaxed);
                        if let Some(e) = err {
                            fail(e);
                        }
                        std::thread::yield_now();
                    }
                    senders_done.fetch_add(1, Ordering::AcqRel);
                });
            }
            // Receivers: two threads, two ports each.
            for pair in 0..RECEIVERS / 2 {
                let (stop, senders_done, fail, ready, totals, ports) =
                    (&stop, &senders_done, &fail, &ready, &totals, &ports);
                sc.spawn(move || {
                    let idx = [SENDERS + 2 * pair, SENDERS + 2 * pair + 1];
                    let rings: Vec<URing> =
                        idx.iter().map(|&k| ports[k].rx_ring(0).unwrap()).collect();
                    let mut st: Vec<Streams> = idx.iter().map(|_| Streams::new(SENDERS)).collect();
                    let t0 = Instant::now();
                    let mut idle_since: Option<Instant> = None;
                    ready.wait();
                    while !stop.load(Ordering::Acquire) {
                        let mut any = 0;
                        for (j, &k) in idx.iter().enumerate() {
                            let mut err = None;
                            let got = ports[k].recv_each(&rings[j], |f| {
                                if err.is_none()
                                    && let Err(e) = st[j].take(f, false)
                                {
                                    err = Some(format!("port {k}: {e}"));
                                }
                            });
                            if let Some(e) = err {
                                fail(e);
                            }
                            totals[k].fetch_add(got as u64, Ordering::Relaxed);
                            any += got;
                        }
                        if any > 0 {
                            idle_since = None;
                        } else if senders_done.load(Ordering::Acquire) == SENDERS
                            && idle_since.get_or_insert_with(Instant::now).elapsed() > IDLE
                        {
                            break;
                        }
                        if t0.elapsed() > DEADLINE {
                            fail(format!("receiver pair {pair} deadline"));
                            break;
                        }
                        ports[idx[0]].poll_wait(POLLIN, Duration::from_millis(1));
                    }
                });
            }
            // Churn: ports joining and leaving the switch while it forwards
            // (they also receive floods and send a frame now and then), and
            // pipes created and destroyed off a switch port.
            {
                let (stop, senders_done, fail, ready, env, churn_cycles) =
                    (&stop, &senders_done, &fail, &ready, &env, &churn_cycles);
                sc.spawn(move || {
                    ready.wait();
                    let mut c = 0u32;
                    while senders_done.load(Ordering::Acquire) < SENDERS
                        && !stop.load(Ordering::Acquire)
                    {
                        let p = env.port_with(&format!("valem:churn{}", c % 5), small);
                        let q = env.port_with(&format!("valem:churn{}", (c + 1) % 5), small);
                        // Churn ports only receive: every frame on the
                        // switch is checked by somebody.
                        let r = p.rx_ring(0).unwrap();
                        let mut st = Streams::new(SENDERS);
                        let mut err = None;
                        for _ in 0..3 {
                            p.recv_each(&r, |f| {
                                if err.is_none()
                                    && let Err(e) = st.take(f, false)
                                {
                                    err = Some(format!("churn port: {e}"));
                                }
                            });
                            std::thread::yield_now();
                        }
                        if let Some(e) = err {
                            fail(e);
                        }
                        if c.is_multiple_of(2) {
                            q.close();
                            p.close();
                        } else {
                            drop(p);
                            drop(q);
                        }
                        c += 1;
                        churn_cycles.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            {
                let (stop, senders_done, fail, ready, env, pipe_cycles) =
                    (&stop, &senders_done, &fail, &ready, &env, &pipe_cycles);
                sc.spawn(move || {
                    ready.wait();
                    let mut c = 0u32;
                    while senders_done.load(Ordering::Acquire) < SENDERS
                        && !stop.load(Ordering::Acquire)
                    {
                        // A pipe off a long-lived switch port, and a whole
                        // short-lived port with a pipe.
                        let m = env.port(&format!("valem:p{}{{c{}", c % 8, c % 3));
                        let s = env.port(&format!("valem:p{}}}c{}", c % 8, c % 3));
                        let mut buf = [0u8; 64];
                        let l = seq_frame(&mut buf, A, B, 7, c, 60);
                        if m.send(&[&buf[..l]]) != 1 {
                            fail("pipe send failed".into());
                        }
                        let got = s.recv();
                        if got.len() != 1 || got[0][..] != buf[..l] {
                            fail(format!("pipe under churn: got {got:?}"));
                        }
                        drop(s);
                        drop(m);
                        let eph = env.port_with(&format!("valem:eph{}", c % 2), small);
                        let pm = env.port(&format!("valem:eph{}{{z", c % 2));
                        drop(eph);
                        drop(pm);
                        c += 1;
                        pipe_cycles.fetch_add(1, Ordering::Relaxed);
                        std::thread::yield_now();
                    }
                });
            }
        });
        let f = failed.lock().unwrap();
        assert!(f.is_empty(), "failures: {f:?}");
        let t: Vec<u64> = totals.iter().map(|t| t.load(Ordering::Relaxed)).collect();
        let (cc, pc) = (
            churn_cycles.load(Ordering::Relaxed),
            pipe_cycles.load(Ordering::Relaxed),
        );
        eprintln!("per-port frames received: {t:?}, churn cycles {cc}, pipe cycles {pc}");
        assert!(
            cc >= MIN_CHURN && pc >= MIN_CHURN,
            "churn did not overlap the traffic"
        );
        // Every port got something from the other senders.
        assert!(
            t.iter().all(|&x| x > 0),
            "some port received nothing: {t:?}"
        );
    }
    assert_eq!(env.nm.stats(), base, "resources leaked");
}

/// A hostile user scribbles over the rings of one port from one thread
/// while another thread syncs and polls it, next to a clean pair that must
/// keep delivering intact frames.
#[test]
fn hostile_scribbler_next_to_clean_traffic() {
    let _serial = serial();
    let env = Env::new();
    let base = env.nm.stats();
    {
        let a = env.port("valeh:a");
        let b = env.port("valeh:b");
        let h = env.port("valeh:h");
        let stop = AtomicBool::new(false);
        std::thread::scope(|sc| {
            sc.spawn(|| {
                // Scribbler: xorshift over head/cur/tail and slot fields.
                let tx = h.tx_ring(0).unwrap();
                let rx = h.rx_ring(0).unwrap();
                let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
                while !stop.load(Ordering::Acquire) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let r = if x & 1 == 0 { &tx } else { &rx };
                    let v = (x >> 8) as u32;
                    let small = v % 1030;
                    match (x >> 1) % 6 {
                        0 => r.set_head(if x & 64 == 0 { small } else { v }),
                        1 => r.set_cur(if x & 64 == 0 { small } else { v }),
                        2 => r.set_tail(v),
                        3 => {
                            let i = small % r.num_slots();
                            let s = r.slot(i);
                            r.set_slot(i, NetmapSlot { buf_idx: v, ..s });
                        }
                        4 => {
                            let i = small % r.num_slots();
                            let s = r.slot(i);
                            r.set_slot(
                                i,
                                NetmapSlot {
                                    len: v as u16,
                                    flags: (v >> 16) as u16,
                                    ..s
                                },
                            );
                        }
                        _ => r.set_flags(v),
                    }
                }
            });
            sc.spawn(|| {
                while !stop.load(Ordering::Acquire) {
                    let _ = h.txsync();
                    let _ = h.rxsync();
                    env.nm.poll(h.np(), POLLIN | POLLOUT, &mut |_| {});
                }
            });
            // Stop the helper threads even if an assertion below fails.
            struct StopOnDrop<'a>(&'a AtomicBool);
            impl Drop for StopOnDrop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Release);
                }
            }
            let _stop = StopOnDrop(&stop);
            // The hostile port is on the same switch and may legitimately
            // flood b (filling its ring: drops) and even replay copies of
            // a's frames it received: count the distinct, intact, in-order
            // frames of a's stream and require steady progress.
            const N: u32 = 20_000;
            let tx = a.tx_ring(0).unwrap();
            let rx = b.rx_ring(0).unwrap();
            let t0 = Instant::now();
            let mut distinct = 0u32;
            let mut last: Option<u32> = None;
            let mut seq = 0u32;
            let mut progress = Instant::now();
            loop {
                assert!(
                    t0.elapsed() < DEADLINE,
                    "clean pair stalled: {distinct} frames, last {last:?}"
                );
                let acked = last.map_or(0, |l| l + 1);
                if seq < N && seq < acked + 256 {
                    a.send_fill(&tx, (N - seq).min(64) as usize, |buf| {
                        let l = seq_frame(buf, BCAST, A, 0, seq, 60 + seq as usize % 200);
                        seq += 1;
                        l
                    });
                    progress = Instant::now();
                } else if seq < N && progress.elapsed() > IDLE {
                    // Everything in flight was dropped: move on.
                    last = Some(seq - 1);
                }
                b.recv_each(&rx, |f| {
                    if f.len() >= 12
                        && f[6..12] == A
                        && let Ok((_, 0, q)) = check_seq_frame(f)
                        && last.is_none_or(|l| q > l)
                    {
                        assert!(q < seq, "frame {q} never sent");
                        last = Some(q);
                        distinct += 1;
                        progress = Instant::now();
                    }
                });
                if seq == N && (last == Some(N - 1) || progress.elapsed() > IDLE) {
                    break;
                }
            }
            eprintln!("clean pair next to a scribbler: {distinct} of {N}");
            assert!(
                distinct >= N / 10,
                "clean pair: only {distinct} of {N} frames"
            );
            stop.store(true, Ordering::Release);
        });
        // The hostile port still syncs without trouble, with sane indexes.
        let _ = h.txsync();
        let _ = h.rxsync();
        let _ = h.txsync();
        let _ = h.rxsync();
        for r in [h.tx_ring(0).unwrap(), h.rx_ring(0).unwrap()] {
            let n = r.num_slots();
            assert!(r.tail() < n);
        }
    }
    assert_eq!(env.nm.stats(), base);
}

/// The receiving end of a pipe is closed and reopened over and over while
/// the master keeps sending: the rings persist (the master still binds
/// them), so delivery stays exact and in order across the reopenings.
#[test]
fn pipe_receiver_reopens_while_sender_sends() {
    let _serial = serial();
    const N: u32 = 30_000;
    let env = Env::new();
    let base = env.nm.stats();
    {
        let m = env.port("valep2:r{0");
        let done = AtomicBool::new(false);
        std::thread::scope(|sc| {
            let rx = sc.spawn(|| -> Result<u32, String> {
                let mut next = 0u32;
                let mut reopens = 0u32;
                let t0 = Instant::now();
                while next < N {
                    let s = env.port("valep2:r}0");
                    let r = s.rx_ring(0).expect("rx ring");
                    // Take a varying amount, then close without a final
                    // sync: the consumed slots are released by the next
                    // file's first sync (head persists in the ring).
                    let quota = 500 + (reopens * 7919) % 3000;
                    let mut taken = 0;
                    while taken < quota && next < N {
                        if t0.elapsed() > DEADLINE {
                            done.store(true, Ordering::Release);
                            return Err(format!("receiver deadline at {next}"));
                        }
                        let mut err = None;
                        let got = s.recv_each(&r, |f| match check_seq_frame(f) {
                            Ok((_, 0, q)) if q == next => next += 1,
                            Ok((_, st, q)) => {
                                err.get_or_insert(format!("got {st}/{q}, want {next}"));
                            }
                            Err(e) => {
                                err.get_or_insert(e);
                            }
                        });
                        if let Some(e) = err {
                            done.store(true, Ordering::Release);
                            return Err(e);
                        }
                        taken += got as u32;
                        if got == 0 {
                            s.poll_wait(POLLIN, Duration::from_millis(2));
                        }
                    }
                    drop(s);
                    reopens += 1;
                }
                done.store(true, Ordering::Release);
                Ok(reopens)
            });
            let r = m.tx_ring(0).expect("tx ring");
            let t0 = Instant::now();
            let mut seq = 0u32;
            while seq < N && !done.load(Ordering::Acquire) {
                assert!(t0.elapsed() < DEADLINE, "sender deadline at {seq}");
                let k = m.send_fill(&r, (N - seq).min(256) as usize, |buf| {
                    let l = seq_frame(buf, A, B, 0, seq, 60 + seq as usize % 300);
                    seq += 1;
                    l
                });
                if k == 0 {
                    m.poll_wait(POLLOUT, Duration::from_millis(2));
                }
            }
            let reopens = rx
                .join()
                .expect("receiver panicked")
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(reopens >= 5, "only {reopens} reopenings");
        });
    }
    assert_eq!(env.nm.stats(), base);
}

/// Multi-slot packets over a pipe, with the sender syncing in the middle of
/// packets: the receiver must only ever see complete packets (no slot with
/// NS_MOREFRAG just before the tail), fragments in order and intact.
#[test]
fn pipe_multislot_packets_published_whole() {
    let _serial = serial();
    const PKTS: u32 = 20_000;
    let env = Env::new();
    let base = env.nm.stats();
    {
        let reg = NmreqRegister {
            nr_mode: NR_REG_ALL_NIC,
            nr_tx_slots: 64,
            nr_rx_slots: 64,
            ..NmreqRegister::zeroed()
        };
        let m = env.port_with("pipefrag{0", reg);
        let s = env.port("pipefrag}0");
        let done = AtomicBool::new(false);
        std::thread::scope(|sc| {
            let rx = sc.spawn(|| -> Result<(), String> {
                let r = s.rx_ring(0).expect("rx ring");
                let n = r.num_slots();
                let t0 = Instant::now();
                let (mut pkt, mut frag) = (0u32, 0u32);
                while pkt < PKTS {
                    if t0.elapsed() > DEADLINE {
                        done.store(true, Ordering::Release);
                        return Err(format!("receiver deadline at packet {pkt}"));
                    }
                    s.rxsync().map_err(|e| e.to_string())?;
                    let (mut h, t) = (r.head(), r.tail());
                    if h == t {
                        s.poll_wait(POLLIN, Duration::from_millis(2));
                        continue;
                    }
                    let last = r.slot(prev(t, n));
                    if last.flags & NS_MOREFRAG != 0 {
                        done.store(true, Ordering::Release);
                        return Err(format!("partial packet published (tail {t})"));
                    }
                    while h != t {
                        let sl = r.slot(h);
                        let mut b = [0u8; 8];
                        // SAFETY: the slot is in [head, tail): the user's;
                        // 8 bytes are within the buffer.
                        unsafe {
                            core::ptr::copy_nonoverlapping(
                                s.buf_fast(sl.buf_idx),
                                b.as_mut_ptr(),
                                8,
                            )
                        };
                        let (p, f) = (
                            u32::from_le_bytes(b[..4].try_into().unwrap()),
                            u32::from_le_bytes(b[4..].try_into().unwrap()),
                        );
                        let nfrags = 1 + pkt % 4;
                        if (p, f) != (pkt, frag) || sl.len as u32 != 8 + pkt % 50 {
                            done.store(true, Ordering::Release);
                            return Err(format!(
                                "got packet {p} frag {f} len {}, want {pkt}/{frag}",
                                sl.len
                            ));
                        }
                        let more = sl.flags & NS_MOREFRAG != 0;
                        if more != (frag + 1 < nfrags) {
                            done.store(true, Ordering::Release);
                            return Err(format!("packet {pkt} frag {frag}: MOREFRAG {more}"));
                        }
                        frag += 1;
                        if frag == nfrags {
                            frag = 0;
                            pkt += 1;
                        }
                        h = next(h, n);
                    }
                    r.set_head(h);
                    r.set_cur(h);
                }
                s.rxsync().map_err(|e| e.to_string())?;
                Ok(())
            });
            let r = m.tx_ring(0).expect("tx ring");
            let n = r.num_slots();
            let t0 = Instant::now();
            let (mut pkt, mut frag) = (0u32, 0u32);
            let mut cut = 0u32;
            while pkt < PKTS && !done.load(Ordering::Acquire) {
                assert!(t0.elapsed() < DEADLINE, "sender deadline at packet {pkt}");
                // Fill up to `quota` slots, ignoring packet boundaries.
                cut = cut.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let quota = 1 + (cut >> 16) % 7;
                let (mut h, t) = (r.head(), r.tail());
                let mut k = 0;
                while k < quota && h != t && pkt < PKTS {
                    let nfrags = 1 + pkt % 4;
                    let sl = r.slot(h);
                    let mut b = [0u8; 8];
                    b[..4].copy_from_slice(&pkt.to_le_bytes());
                    b[4..].copy_from_slice(&frag.to_le_bytes());
                    // SAFETY: the slot is in [head, tail) of the TX ring.
                    unsafe {
                        core::ptr::copy_nonoverlapping(b.as_ptr(), m.buf_fast(sl.buf_idx), 8)
                    };
                    let flags = if frag + 1 < nfrags { NS_MOREFRAG } else { 0 };
                    r.set_slot(
                        h,
                        NetmapSlot {
                            len: (8 + pkt % 50) as u16,
                            flags,
                            ..sl
                        },
                    );
                    h = next(h, n);
                    k += 1;
                    frag += 1;
                    if frag == nfrags {
                        frag = 0;
                        pkt += 1;
                    }
                }
                r.set_head(h);
                r.set_cur(h);
                m.txsync().expect("txsync");
                if k == 0 {
                    m.poll_wait(POLLOUT, Duration::from_millis(2));
                }
            }
            rx.join()
                .expect("receiver panicked")
                .unwrap_or_else(|e| panic!("{e}"));
        });
    }
    assert_eq!(env.nm.stats(), base);
}

/// Two-ring VALE ports, one file and one thread per ring (NR_REG_ONE_NIC):
/// unicast from TX ring i goes to RX ring i of the destination (§8.3), with
/// the two senders forwarding through the switch at the same time.
#[test]
fn vale_multiring_one_thread_per_ring() {
    let _serial = serial();
    const N: u32 = 50_000;
    const BM: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];
    let env = Env::new();
    let base = env.nm.stats();
    {
        let one = |ring: u16| NmreqRegister {
            nr_mode: NR_REG_ONE_NIC,
            nr_ringid: ring,
            nr_tx_rings: 2,
            nr_rx_rings: 2,
            ..NmreqRegister::zeroed()
        };
        let a: Vec<Port<'_>> = (0..2).map(|i| env.port_with("valeq2:a", one(i))).collect();
        let b: Vec<Port<'_>> = (0..2).map(|i| env.port_with("valeq2:b", one(i))).collect();
        for p in a.iter().chain(&b) {
            assert_eq!((p.reg.nr_tx_rings, p.reg.nr_rx_rings), (2, 2));
        }
        // Let the switch learn b's MAC, then drain a.
        let learn = frame(A, BM, 0, 60);
        assert_eq!(b[0].send(&[&learn]), 1);
        assert_eq!(a[0].recv().len(), 1);
        let released: Vec<AtomicU64> = (0..2).map(|_| AtomicU64::new(0)).collect();
        let done = AtomicBool::new(false);
        std::thread::scope(|sc| {
            let mut hs = Vec::new();
            for i in 0..2usize {
                let (p, rel, done) = (&b[i], &released[i], &done);
                hs.push(sc.spawn(move || -> Result<(), String> {
                    let r = p.rx_ring(i).expect("rx ring");
                    let mut next = 0u32;
                    let t0 = Instant::now();
                    while next < N && !done.load(Ordering::Acquire) {
                        if t0.elapsed() > DEADLINE {
                            return Err(format!("ring {i}: deadline at {next}"));
                        }
                        let before = next;
                        let mut err = None;
                        let got = p.recv_each(&r, |f| match check_seq_frame(f) {
                            Ok((_, st, q)) if st as usize == i && q == next => next += 1,
                            Ok((_, st, q)) => {
                                err.get_or_insert(format!(
                                    "ring {i}: got stream {st} seq {q}, want {i}/{next}"
                                ));
                            }
                            Err(e) => {
                                err.get_or_insert(e);
                            }
                        });
                        rel.store(u64::from(before), Ordering::Release);
                        if let Some(e) = err {
                            return Err(e);
                        }
                        if got == 0 {
                            p.poll_wait(POLLIN, Duration::from_millis(2));
                        }
                    }
                    p.rxsync().map_err(|e| e.to_string())?;
                    rel.store(u64::from(next), Ordering::Release);
                    Ok(())
                }));
            }
            for i in 0..2usize {
                let (p, rel, done) = (&a[i], &released[i], &done);
                hs.push(sc.spawn(move || -> Result<(), String> {
                    let r = p.tx_ring(i).expect("tx ring");
                    let mut seq = 0u32;
                    let t0 = Instant::now();
                    while seq < N && !done.load(Ordering::Acquire) {
                        if t0.elapsed() > DEADLINE {
                            return Err(format!("sender {i}: deadline at {seq}"));
                        }
                        let room =
                            1000u64.saturating_sub(u64::from(seq) - rel.load(Ordering::Acquire));
                        if room == 0 {
                            std::thread::yield_now();
                            continue;
                        }
                        p.send_fill(&r, room.min(256).min(u64::from(N - seq)) as usize, |buf| {
                            let l = seq_frame(buf, BM, A, i as u32, seq, 60 + i * 40);
                            seq += 1;
                            l
                        });
                    }
                    Ok(())
                }));
            }
            for h in hs {
                if let Err(e) = h.join().expect("thread panicked") {
                    done.store(true, Ordering::Release);
                    panic!("{e}");
                }
            }
        });
        // Nothing was reflected to a, and each file binds exactly its ring.
        for (i, p) in a.iter().enumerate() {
            assert!(p.rx_ring(1 - i).is_none() && p.tx_ring(1 - i).is_none());
            let r = p.rx_ring(i).expect("rx ring");
            assert_eq!(p.recv_each(&r, |_| {}), 0, "a's ring {i} received frames");
        }
    }
    assert_eq!(env.nm.stats(), base);
}
