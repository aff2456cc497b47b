//! pkt-gen: the netmap packet generator and sink, with the reference's options
//! and output (spec §14.1). See `pkt-gen -h`.

mod args;
mod frame;
mod pcap;
mod report;
mod worker;

use args::{Args, Config, Device, Function};
use clap::Parser;
use frame::{AddrWalker, FrameSpec, Mac};
use netmap_uapi::RegFlags;
use netmap_uapi::RegMode;
use netmap_uapi::portname::{ParseOptions, PortSpec};
use netmap_uapi::user::{Netmap, Port, os};
use report::{Interval, Totals};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use worker::{Finished, ThreadState, TxCtx};

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            };
        }
    };
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cfg = match Config::from_args(args, online) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pkt-gen: {e}");
            eprintln!("Try 'pkt-gen -h' for the list of options.");
            return ExitCode::from(1);
        }
    };
    match run(&cfg, online) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pkt-gen: {e}");
            ExitCode::from(1)
        }
    }
}

/// The kernel name of a `netmap:` port that is a plain interface (no pipe, not
/// VALE), for sysfs lookups.
fn plain_ifname(spec: &str) -> Option<String> {
    if !spec.starts_with("netmap:") {
        return None;
    }
    let p = PortSpec::parse(spec).ok()?;
    let name = p.nr_name.as_str()?.to_owned();
    (!name.contains(['{', '}']) && !name.starts_with("vale")).then_some(name)
}

fn sysfs(ifname: &str, attr: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/{attr}"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Opens the port(s): one per thread (thread 0 on the main descriptor, the others
/// clones bound to one ring pair each).
fn open_ports(cfg: &Config, spec: &str) -> Result<(Vec<Port>, u32), String> {
    // `@offset` is accepted (libnetmap's nmport_enable_option("offset")).
    let parsed = PortSpec::parse_with(
        spec,
        ParseOptions {
            enable_offset: true,
        },
    )
    .map_err(|e| format!("invalid port spec '{spec}': {e}"))?;
    let kname = parsed.nr_name.to_string();
    if let Some(h) = cfg.virt_header.filter(|&h| h != 0) {
        Netmap::open()
            .and_then(|nm| nm.port_hdr_set(&kname, h))
            .map_err(|e| e.to_string())?;
    }
    let mut flags = RegFlags::ACCEPT_VNET_HDR;
    if cfg.function == Function::Rx {
        // The reference sets the legacy NETMAP_NO_TX_POLL ringid bit here
        // ("only touch one of the rings"); in nr_flags it has no effect.
        flags |= RegFlags::LEGACY_NO_TX_POLL;
    }
    let mut b = Port::builder(spec).flags(flags);
    let rc = cfg.ring_conf;
    if let Some(v) = rc.tx_slots {
        b = b.tx_slots(v);
    }
    if let Some(v) = rc.rx_slots {
        b = b.rx_slots(v);
    }
    if let Some(v) = rc.tx_rings {
        b = b.tx_rings(v);
    }
    if let Some(v) = rc.rx_rings {
        b = b.rx_rings(v);
    }
    let orig_mode = parsed.mode;
    let split = cfg.nthreads > 1 && matches!(orig_mode, RegMode::AllNic | RegMode::NicSw);
    if split {
        b = b.mode(RegMode::OneNic, 0);
    }
    let main = b.open().map_err(|e| e.to_string())?;
    d!(
        "main",
        "mapped {}KB at {:#x}",
        main.memsize() >> 10,
        main.mem_base()
    );
    let info = *main.info();
    let rx = cfg.function == Function::Rx;
    let (hw, host) = if rx {
        (info.nr_rx_rings, info.nr_host_rx_rings)
    } else {
        (info.nr_tx_rings, info.nr_host_tx_rings)
    };
    let devqueues = u32::from(hw)
        + if orig_mode == RegMode::NicSw {
            u32::from(host)
        } else {
            0
        };
    if split && cfg.nthreads as u32 > devqueues {
        return Err(format!(
            "too many threads ({}) for {devqueues} queues of {spec}",
            cfg.nthreads
        ));
    }
    let mut ports = vec![main];
    for i in 1..cfg.nthreads {
        // Like the reference: thread i binds ring i (ONE_NIC, or ONE_SW past the
        // hardware rings with NIC_SW); other modes keep the user's mode.
        let (mode, ring) = if orig_mode == RegMode::NicSw && i >= usize::from(hw) {
            (RegMode::OneSw, i - usize::from(hw))
        } else if split {
            (RegMode::OneNic, i)
        } else {
            (orig_mode, i)
        };
        let p = ports[0]
            .clone_with(mode, ring as u16, RegFlags::empty())
            .map_err(|e| e.to_string())?;
        ports.push(p);
    }
    Ok((ports, devqueues.max(1)))
}

fn run(cfg: &Config, online: usize) -> Result<ExitCode, String> {
    os::catch_sigint().map_err(|e| format!("cannot catch SIGINT: {e}"))?;
    d!("main", "running on {} cpus (have {online})", cfg.cpus);
    let (mut ports, devqueues, virt_header, spec_name) = match &cfg.dev {
        Device::Netmap(spec) => {
            let (ports, q) = open_ports(cfg, spec)?;
            let kname = ports[0].name().to_string();
            let vh = match cfg.virt_header {
                Some(h) => h,
                None => Netmap::open()
                    .and_then(|nm| nm.port_hdr_get(&kname))
                    .unwrap_or(0),
            };
            (ports, q, vh as usize, spec.clone())
        }
        Device::Null => (Vec::new(), 1, 0, "null".into()),
    };
    if cfg.function == Function::Tx
        && let Some(ifn) = plain_ifname(&spec_name)
        && let Some(mtu) = sysfs(&ifn, "mtu").and_then(|m| m.parse::<u32>().ok())
        && cfg.pkt_size > mtu + frame::ETH_HLEN as u32
    {
        return Err(format!(
            "pkt_size ({}) must be <= mtu ({mtu}) + {} bytes of Ethernet header",
            cfg.pkt_size,
            frame::ETH_HLEN
        ));
    }
    let src_mac = cfg.src_mac.unwrap_or_else(|| {
        plain_ifname(&spec_name)
            .and_then(|i| sysfs(&i, "address"))
            .and_then(|a| Mac::parse(&a).ok())
            .unwrap_or_default()
    });
    let fspec = FrameSpec {
        size: cfg.pkt_size as usize,
        virt_header,
        src_mac,
        dst_mac: cfg.dst_mac,
        src: cfg.src,
        dst: cfg.dst,
        indirect: cfg.options & args::opt::INDIRECT != 0,
    };
    let frame = match &cfg.pcap {
        Some(path) => {
            let mut f = vec![0u8; virt_header];
            f.extend(pcap::first_packet(path)?);
            f
        }
        None => frame::build(&fspec)?,
    };
    let verb = match cfg.function {
        Function::Tx => "Sending on",
        Function::Rx => "Receiving from",
        _ => "Working on",
    };
    println!(
        "{verb} {spec_name}: {devqueues} queues, {} threads and {} cpus.",
        cfg.nthreads, cfg.cpus
    );
    if cfg.function == Function::Tx {
        println!(
            "{} -> {} ({} -> {})",
            cfg.src.start_addr(),
            cfg.dst.start_addr(),
            src_mac,
            cfg.dst_mac
        );
    }
    d!("main", "Wait {} secs for phy reset", cfg.wait_link);
    std::thread::sleep(Duration::from_secs(cfg.wait_link));
    d!("main", "Ready...");
    if cfg.function == Function::Tx && cfg.tx_rate > 0 {
        let (burst, period) = args::rate_period(cfg.tx_rate, cfg.burst);
        d!(
            "main",
            "Sending {burst} packets every  {}.{:09} s",
            period.as_secs(),
            period.subsec_nanos()
        );
    }

    let states: Vec<ThreadState> = (0..cfg.nthreads).map(ThreadState::new).collect();
    let finished = &Finished::default();
    let epoch = Instant::now();
    let mut rtt = None;
    let mut echoed = 0;
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        let mut ports_iter = ports.drain(..);
        for (i, st) in states.iter().enumerate() {
            let port = ports_iter.next();
            let mk_ctx = |seed: u64| TxCtx {
                frame: frame.clone(),
                virt: virt_header,
                frags: cfg.frags,
                frag_size: cfg.frag_size.unwrap_or(u32::MAX),
                options: cfg.options,
                walker: AddrWalker::new(
                    &fspec,
                    cfg.options & args::opt::RANDOM_SRC != 0,
                    cfg.options & args::opt::RANDOM_DST != 0,
                    seed,
                ),
            };
            let ctx = mk_ctx(0x5eed + i as u64);
            let cpu = cfg.affinity.map(|a| (a + i) % online);
            handles.push(s.spawn(move || {
                // Whatever happens (even a panic), tell the main thread we are done.
                let _done = worker::Done(st, finished);
                if let Some(c) = cpu
                    && let Err(e) = os::pin_current_thread(c)
                {
                    d!("setaffinity", "unable to set affinity to cpu {c}: {e}");
                }
                match (cfg.function, port) {
                    (Function::Tx, p) => {
                        worker::sender(p.as_ref(), cfg, st, ctx);
                        (None, 0)
                    }
                    (Function::Rx, Some(p)) => {
                        worker::receiver(&p, cfg, st);
                        (None, 0)
                    }
                    (Function::Ping, Some(p)) => (Some(worker::ping(&p, cfg, st, &ctx, epoch)), 0),
                    (Function::Pong, Some(p)) => (None, worker::pong(&p, cfg, st)),
                    (_, None) => {
                        st.used.store(false, Ordering::Relaxed);
                        (None, 0)
                    }
                }
            }));
        }
        main_thread(cfg, &states, finished);
        for h in handles {
            match h.join() {
                Ok((r, e)) => {
                    if r.is_some() {
                        rtt = r;
                    }
                    echoed += e;
                }
                Err(_) => d!("main_thread", "a worker thread panicked"),
            }
        }
    });

    let mut totals = Totals::default();
    let (mut tic, mut toc): (Option<Instant>, Option<Instant>) = (None, None);
    let mut failed = false;
    for st in &states {
        if !st.completed.load(Ordering::Relaxed) {
            d!("main_thread", "ouch, thread {} exited with error", st.me);
            failed = true;
        }
        totals.pkts += st.pkts.load(Ordering::Relaxed);
        totals.bytes += st.bytes.load(Ordering::Relaxed);
        totals.events += st.events.load(Ordering::Relaxed);
        let (a, b) = *st.tic_toc.lock().unwrap_or_else(|p| p.into_inner());
        tic = tic.max(a);
        toc = toc.max(b);
    }
    let delta = match (tic, toc) {
        (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    match cfg.function {
        Function::Tx => print!(
            "{}",
            report::summary("Sent", &totals, delta, cfg.framing, cfg.normalize)
        ),
        Function::Rx => print!(
            "{}",
            report::summary("Received", &totals, delta, cfg.framing, cfg.normalize)
        ),
        Function::Ping => {
            let r = rtt.unwrap_or_default();
            println!(
                "Sent {} packets, received {} replies in {delta:.2} seconds.",
                totals.pkts, r.count
            );
            println!("RTT over {} packets: {}", r.count, r.describe());
        }
        Function::Pong => println!("Replied to {echoed} packets in {delta:.2} seconds."),
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The reporting loop of the main thread: one rate line per interval until every
/// worker is done. It sleeps between reports (like the reference, which waits in
/// `select`), woken early only when a worker ends.
fn main_thread(cfg: &Config, states: &[ThreadState], finished: &Finished) {
    const STATS_WIN: usize = 15;
    let interval = Duration::from_millis(cfg.report_interval);
    let mut prev = Totals::default();
    let mut prev_t = Instant::now();
    let mut win = [0u64; STATS_WIN];
    let mut win_idx = 0;
    loop {
        let done = finished.wait(states.len(), prev_t + interval);
        let now = Instant::now();
        let usec = (now - prev_t).as_micros() as u64;
        if usec < 10_000 {
            if done {
                break;
            }
            continue;
        }
        let mut cur = Totals::default();
        let mut min_space = 0;
        for st in states {
            cur.pkts += st.pkts.load(Ordering::Relaxed);
            cur.bytes += st.bytes.load(Ordering::Relaxed);
            cur.events += st.events.load(Ordering::Relaxed);
            let m = st.min_space.swap(u64::MAX, Ordering::Relaxed);
            min_space += if m == u64::MAX { 0 } else { m };
        }
        let x = Interval {
            pkts: cur.pkts.saturating_sub(prev.pkts),
            bytes: cur.bytes.saturating_sub(prev.bytes),
            events: cur.events.saturating_sub(prev.events),
            usec,
            min_space,
        };
        let stats = if cfg.options & args::opt::PPS_STATS != 0 {
            win[win_idx] = (x.pkts * 1_000_000 + usec / 2) / usec;
            win_idx = (win_idx + 1) % STATS_WIN;
            report::pps_stats(&win, cfg.normalize)
        } else {
            String::new()
        };
        d!(
            "main_thread",
            "{}",
            report::rate_line(&x, cfg.framing, cfg.normalize, &stats)
        );
        prev = cur;
        prev_t = now;
        if done {
            break;
        }
    }
}
