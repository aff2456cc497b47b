//! bridge: moves packets between two netmap ports (spec §14.3), swapping buffers
//! when both ports share a memory region and copying otherwise. See
//! `bridge -h`.

use clap::{ArgAction, Parser};
use netmap_uapi::RegMode;
use netmap_uapi::consts::{NS_MOREFRAG, SlotFlags};
use netmap_uapi::user::{Op, PollFd, PollFlags, Port, RxRing, TxRing, os, poll};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The reference's `D()` log line on stderr.
macro_rules! d {
    ($($arg:tt)*) => {{
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        eprintln!(
            "{:03}.{:06} bridge [{}] {}",
            now.as_secs() % 1000,
            now.subsec_micros(),
            line!(),
            format!($($arg)*)
        );
    }};
}

/// bridge: forward packets between two netmap ports (both directions).
#[derive(Parser, Debug, Clone, PartialEq, Eq)]
#[command(
    name = "bridge",
    disable_help_flag = true,
    disable_version_flag = true,
    override_usage = "bridge [-v] [-i ifa] [-i ifb] [-b burst] [-w wait_time] [-c] [-L]\n       bridge [-v] [-w wait_time] [-L] [ifa [ifb [burst]]]",
    after_help = "Ports use the nmport_open syntax: netmap:eth0, vale0:a, netmap:eth0^ (host rings).\n\
                  With one port (or twice the same), the port is bridged with its host stack\n\
                  (netmap:IF^ <-> netmap:IF), unless -L loops traffic back on it.\n\
                  Buffers are swapped (zero copy) when both ports share a memory region."
)]
struct Args {
    /// Port (first, then second)
    #[arg(short = 'i', value_name = "PORT", action = ArgAction::Append)]
    iface: Vec<String>,
    /// Maximum packets moved per ring per pass (1..8192)
    #[arg(short = 'b', value_name = "BURST", default_value_t = 1024)]
    burst: i64,
    /// Seconds to wait for the link (max 100)
    #[arg(short = 'w', value_name = "SECONDS", default_value_t = 4)]
    wait_link: u64,
    /// Always copy, never swap buffers
    #[arg(short = 'c')]
    copy: bool,
    /// With a single port, loop traffic back on it instead of bridging to the host stack
    #[arg(short = 'L')]
    loopback: bool,
    /// Verbose (repeat for more)
    #[arg(short = 'v', action = ArgAction::Count)]
    verbose: u8,
    /// Print this help
    #[arg(short = 'h', long = "help", action = ArgAction::Help)]
    help: Option<bool>,
    /// [ifa [ifb [burst]]]
    #[arg(value_name = "ARGS", num_args = 0..=3)]
    positional: Vec<String>,
}

/// The validated setup.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Setup {
    ifa: String,
    ifb: String,
    burst: u32,
    wait_link: u64,
    zerocopy: bool,
    verbose: u8,
    /// Messages the reference prints while checking the arguments.
    notes: Vec<String>,
}

fn setup(a: Args) -> Result<Setup, String> {
    let mut notes = Vec::new();
    let mut ifa = a.iface.first().cloned();
    let mut ifb = a.iface.get(1).cloned();
    for extra in a.iface.iter().skip(2) {
        notes.push(format!("{extra} ignored, already have 2 interfaces"));
    }
    let mut burst = a.burst;
    if let Some(p) = a.positional.first() {
        ifa = Some(p.clone());
    }
    if let Some(p) = a.positional.get(1) {
        ifb = Some(p.clone());
    }
    if let Some(p) = a.positional.get(2) {
        burst = p.parse().map_err(|_| format!("invalid burst '{p}'"))?;
    }
    let ifa = ifa.ok_or("missing interface")?;
    let ifb = ifb.unwrap_or_else(|| ifa.clone());
    if !(1..=8192).contains(&burst) {
        notes.push(format!("invalid burst {burst}, set to 1024"));
        burst = 1024;
    }
    let mut wait_link = a.wait_link;
    if wait_link > 100 {
        notes.push(format!("invalid wait_link {wait_link}, set to 4"));
        wait_link = 4;
    }
    let ifa = if ifa == ifb {
        if a.loopback {
            notes.push("same interface, loopbacking traffic".into());
            ifa
        } else {
            notes.push("same interface, endpoint 0 goes to host".into());
            format!("{ifa}^")
        }
    } else {
        ifa
    };
    Ok(Setup {
        ifa,
        ifb,
        burst: burst as u32,
        wait_link,
        zerocopy: !a.copy,
        verbose: a.verbose,
        notes,
    })
}

/// Moves up to `limit` slots from `rx` to `tx` (the reference's
/// `process_rings`): swaps buffers with `NS_BUF_CHANGED` on both slots when
/// `zerocopy`, copies otherwise; the TX slot gets the RX length and `NS_MOREFRAG`
/// bit. Returns the slots moved.
fn process_rings(
    rx: &mut RxRing<'_>,
    tx: &mut TxRing<'_>,
    limit: u32,
    zerocopy: bool,
    msg: &str,
    verbose: u8,
) -> u32 {
    if !rx.flags().is_empty() || !tx.flags().is_empty() {
        d!(
            "{msg} rxflags {:x} txflags {:x}",
            rx.flags().bits(),
            tx.flags().bits()
        );
    }
    let m = limit.min(rx.space()).min(tx.space());
    let (mut j, mut k) = (rx.head(), tx.head());
    for _ in 0..m {
        let rs = rx.slot(j);
        let ts = tx.slot(k);
        if ts.buf_idx < 2 || rs.buf_idx < 2 {
            d!(
                "wrong index rxr[{j}] = {}  -> txr[{k}] = {}",
                rs.buf_idx,
                ts.buf_idx
            );
        }
        let mut len = rs.len;
        if u32::from(len) > rx.buf_size() {
            d!("{msg}: invalid len {len}, rxr[{j}] -> txr[{k}]");
            len = 0;
            let _ = rx.set_len(j, 0);
        } else if verbose > 1 {
            d!("{msg}: fwd len {len}, rx[{j}] -> tx[{k}]");
        }
        if zerocopy && rx.swap_buf(j, tx, k).is_ok() {
            let _ = tx.set_len(k, len);
        } else {
            let data = rx.data(j).unwrap_or(&[]);
            let n = data.len().min(tx.buf_size() as usize);
            let _ = tx.write(k, 0, &data[..n]);
        }
        let tf = tx.slot(k).flags;
        let flags = (tf & !NS_MOREFRAG) | (rs.flags & NS_MOREFRAG);
        let _ = tx.set_slot_flags(k, SlotFlags::from_bits_retain(flags));
        j = rx.next(j);
        k = tx.next(k);
    }
    rx.advance(m);
    tx.advance(m);
    m
}

/// The rings of a port, as `move_pkts` needs them (a [`Port`], or an in-memory
/// region in tests).
trait Rings {
    fn rx_rings(&self) -> std::ops::Range<u16>;
    fn tx_rings(&self) -> std::ops::Range<u16>;
    fn try_rx_ring(&self, i: u16) -> Option<RxRing<'_>>;
    fn try_tx_ring(&self, i: u16) -> Option<TxRing<'_>>;
    /// Whether the port is bound to the host rings.
    fn host(&self) -> bool;
}

impl Rings for Port {
    fn rx_rings(&self) -> std::ops::Range<u16> {
        Port::rx_rings(self)
    }
    fn tx_rings(&self) -> std::ops::Range<u16> {
        Port::tx_rings(self)
    }
    fn try_rx_ring(&self, i: u16) -> Option<RxRing<'_>> {
        Port::try_rx_ring(self, i)
    }
    fn try_tx_ring(&self, i: u16) -> Option<TxRing<'_>> {
        Port::try_tx_ring(self, i)
    }
    fn host(&self) -> bool {
        matches!(self.mode(), Some(RegMode::Sw | RegMode::OneSw))
    }
}

/// Moves packets from the RX rings of `src` to the TX rings of `dst` (the
/// reference's `move`): ring by ring, skipping empty RX and full TX rings.
fn move_pkts<S: Rings, T: Rings>(src: &S, dst: &T, limit: u32, zerocopy: bool, verbose: u8) -> u32 {
    let msg = if src.host() { "host->net" } else { "net->host" };
    let (srx, dtx) = (src.rx_rings(), dst.tx_rings());
    let (mut si, mut di) = (srx.start, dtx.start);
    let mut m = 0;
    while si < srx.end && di < dtx.end {
        let Some(mut rx) = src.try_rx_ring(si) else {
            si += 1;
            continue;
        };
        if rx.is_empty() {
            si += 1;
            continue;
        }
        let Some(mut tx) = dst.try_tx_ring(di) else {
            di += 1;
            continue;
        };
        if tx.is_empty() {
            di += 1;
            continue;
        }
        m += process_rings(&mut rx, &mut tx, limit, zerocopy, msg, verbose);
    }
    m
}

fn ring_state(p: &Port) -> (u32, u64) {
    let head = p.try_rx_ring(p.rx_rings().start).map_or(0, |r| r.head());
    (head, p.rx_space())
}

fn run(s: &Setup) -> Result<(), String> {
    for n in &s.notes {
        d!("{n}");
    }
    os::catch_sigint().map_err(|e| format!("cannot catch SIGINT: {e}"))?;
    let open = |name: &str| {
        Port::open(name).map_err(|e| match e.op() {
            Some(Op::Open) => e.to_string(),
            _ => format!("cannot open {name}: {e}"),
        })
    };
    let pa = open(&s.ifa)?;
    let pb = open(&s.ifb)?;
    let zerocopy = s.zerocopy && pa.shares_memory_with(&pb);
    d!(
        "------- zerocopy {}supported",
        if zerocopy { "" } else { "NOT " }
    );
    d!("Wait {} secs for link to come up...", s.wait_link);
    std::thread::sleep(Duration::from_secs(s.wait_link));
    d!(
        "Ready to go, {} 0x{:x}/{} <-> {} 0x{:x}/{}.",
        pa.name(),
        pa.rx_rings().start,
        pa.info().nr_rx_rings,
        pb.name(),
        pb.rx_rings().start,
        pb.info().nr_rx_rings
    );
    let mut fds = [
        PollFd::new(pa.device(), PollFlags::empty()),
        PollFd::new(pb.device(), PollFlags::empty()),
    ];
    while !os::sigint_received() {
        let n0 = pa.rx_space();
        let n1 = pb.rx_space();
        let (mut e0, mut e1) = (PollFlags::empty(), PollFlags::empty());
        if n0 > 0 {
            e1 |= PollFlags::OUT;
        } else {
            e0 |= PollFlags::IN;
        }
        if n1 > 0 {
            e0 |= PollFlags::OUT;
        } else {
            e1 |= PollFlags::IN;
        }
        fds[0].set_events(e0);
        fds[1].set_events(e1);
        // poll() also makes the kernel txsync/rxsync the rings.
        let ret = poll(&mut fds, Some(Duration::from_millis(2500))).map_err(|e| e.to_string())?;
        if os::sigint_received() {
            break;
        }
        if ret == 0 || s.verbose > 0 {
            let (h0, r0) = ring_state(&pa);
            let (h1, r1) = ring_state(&pb);
            d!(
                "poll {} [0] ev {:x} {:x} rx {r0}@{h0} tx {}, [1] ev {:x} {:x} rx {r1}@{h1} tx {}",
                if ret == 0 { "timeout" } else { "ok" },
                fds[0].events().bits(),
                fds[0].revents().bits(),
                pa.tx_space(),
                fds[1].events().bits(),
                fds[1].revents().bits(),
                pb.tx_space()
            );
        }
        for (k, p) in [&pa, &pb].into_iter().enumerate() {
            if fds[k].revents().contains(PollFlags::ERR)
                && let Some(r) = p.try_rx_ring(p.rx_rings().start)
            {
                d!("error on fd{k}, rx [{},{},{})", r.head(), r.cur(), r.tail());
            }
        }
        if fds[0].revents().contains(PollFlags::OUT) {
            move_pkts(&pb, &pa, s.burst, zerocopy, s.verbose);
        }
        if fds[1].revents().contains(PollFlags::OUT) {
            move_pkts(&pa, &pb, s.burst, zerocopy, s.verbose);
        }
    }
    Ok(())
}

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
    let s = match setup(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bridge: {e}");
            eprintln!("Try 'bridge -h' for usage.");
            return ExitCode::from(1);
        }
    };
    match run(&s) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bridge: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmap_uapi::consts::NS_BUF_CHANGED;
    use netmap_uapi::user::testing::{FakeConfig, FakeRegion};

    fn setup_of(argv: &[&str]) -> Result<Setup, String> {
        let mut v = vec!["bridge"];
        v.extend_from_slice(argv);
        setup(Args::try_parse_from(v).map_err(|e| e.to_string())?)
    }

    #[test]
    fn arguments_like_the_reference() {
        let s = setup_of(&["-i", "netmap:eth0", "-i", "netmap:eth1"]).unwrap();
        assert_eq!(
            (s.ifa.as_str(), s.ifb.as_str(), s.burst, s.wait_link),
            ("netmap:eth0", "netmap:eth1", 1024, 4)
        );
        assert!(s.zerocopy && s.notes.is_empty());
        let s = setup_of(&["netmap:eth0"]).unwrap();
        assert_eq!(
            (s.ifa.as_str(), s.ifb.as_str()),
            ("netmap:eth0^", "netmap:eth0")
        );
        assert_eq!(
            s.notes,
            vec!["same interface, endpoint 0 goes to host".to_string()]
        );
        let s = setup_of(&["-L", "-i", "vale0:a"]).unwrap();
        assert_eq!((s.ifa.as_str(), s.ifb.as_str()), ("vale0:a", "vale0:a"));
        let s = setup_of(&["vale0:a", "vale0:b", "64", "-c", "-w", "0", "-vv"]).unwrap();
        assert_eq!(
            (s.burst, s.wait_link, s.zerocopy, s.verbose),
            (64, 0, false, 2)
        );
        let s = setup_of(&["-b", "9000", "-w", "200", "-i", "a", "-i", "b", "-i", "c"]).unwrap();
        assert_eq!((s.burst, s.wait_link), (1024, 4));
        assert_eq!(s.notes.len(), 3);
        assert!(setup_of(&[]).unwrap_err().contains("missing interface"));
        assert!(setup_of(&["a", "b", "x"]).is_err());
        assert!(setup_of(&["a", "b", "1", "extra"]).is_err());
        let e = Args::try_parse_from(["bridge", "-h"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
    }

    fn fake(slots: u32, buf: u32) -> FakeRegion {
        FakeRegion::new(FakeConfig {
            slots,
            buf_size: buf,
            ..FakeConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn zero_copy_swaps_buffers_and_keeps_morefrag() {
        let f = fake(8, 64);
        assert!(f.deliver(0, &[7; 100]), "two fragments");
        assert!(f.deliver(0, b"short"));
        let rx_bufs: Vec<u32> = (0..3).map(|j| f.kernel_slot(false, 0, j).buf_idx).collect();
        let m = process_rings(&mut f.rx_ring(0), &mut f.tx_ring(0), 1024, true, "t", 0);
        assert_eq!(m, 3);
        for j in 0..3 {
            let t = f.kernel_slot(true, 0, j);
            assert_eq!(t.buf_idx, rx_bufs[j as usize], "swapped");
            assert_ne!(t.flags & NS_BUF_CHANGED, 0);
            assert_ne!(f.kernel_slot(false, 0, j).flags & NS_BUF_CHANGED, 0);
        }
        assert_ne!(f.kernel_slot(true, 0, 0).flags & NS_MOREFRAG, 0);
        assert_eq!(f.kernel_slot(true, 0, 1).flags & NS_MOREFRAG, 0);
        assert_eq!(f.txsync(0), vec![vec![7; 100], b"short".to_vec()]);
        assert!(f.rx_ring(0).is_empty());
    }

    #[test]
    fn copy_between_regions_and_limits() {
        let a = fake(8, 2048);
        let b = fake(4, 2048);
        for i in 0..5u8 {
            assert!(a.deliver(0, &[i; 60]));
        }
        let m = process_rings(&mut a.rx_ring(0), &mut b.tx_ring(0), 2, false, "t", 0);
        assert_eq!(m, 2, "burst limit");
        let m = process_rings(&mut a.rx_ring(0), &mut b.tx_ring(0), 1024, false, "t", 0);
        assert_eq!(m, 1, "TX space: 3 slots");
        let out = b.txsync(0);
        assert_eq!(out, vec![vec![0; 60], vec![1; 60], vec![2; 60]]);
        assert_eq!(
            b.kernel_slot(true, 0, 0).flags & NS_BUF_CHANGED,
            0,
            "copy: no swap"
        );
        assert_eq!(a.rx_ring(0).space(), 2);
        // A zero-copy request across regions falls back to copying.
        let m = process_rings(&mut a.rx_ring(0), &mut b.tx_ring(0), 1024, true, "t", 0);
        assert_eq!(m, 2);
        assert_eq!(b.txsync(0), vec![vec![3; 60], vec![4; 60]]);
    }

    impl Rings for FakeRegion {
        fn rx_rings(&self) -> std::ops::Range<u16> {
            FakeRegion::rx_rings(self)
        }
        fn tx_rings(&self) -> std::ops::Range<u16> {
            FakeRegion::tx_rings(self)
        }
        fn try_rx_ring(&self, i: u16) -> Option<RxRing<'_>> {
            FakeRegion::try_rx_ring(self, i)
        }
        fn try_tx_ring(&self, i: u16) -> Option<TxRing<'_>> {
            FakeRegion::try_tx_ring(self, i)
        }
        fn host(&self) -> bool {
            false
        }
    }

    #[test]
    fn move_walks_all_rings() {
        let cfg = |tx, rx| FakeConfig {
            tx_rings: tx,
            rx_rings: rx,
            slots: 4,
            ..FakeConfig::default()
        };
        let src = FakeRegion::new(cfg(1, 3)).unwrap();
        let dst = FakeRegion::new(cfg(2, 1)).unwrap();
        // RX ring 0 empty, ring 1 with 3 packets, ring 2 with 2 packets.
        for k in 0..3u8 {
            assert!(src.deliver(1, &[k; 60]));
        }
        assert!(src.deliver(2, &[9; 60]));
        assert!(src.deliver(2, &[8; 60]));
        // dst has 2 TX rings of 3 free slots each: 5 packets fit.
        let m = move_pkts(&src, &dst, 1024, true, 0);
        assert_eq!(m, 5, "copy fallback across regions");
        assert_eq!(dst.txsync(0), vec![vec![0; 60], vec![1; 60], vec![2; 60]]);
        assert_eq!(dst.txsync(1), vec![vec![9; 60], vec![8; 60]]);
        assert!(src.rx_ring(1).is_empty() && src.rx_ring(2).is_empty());
        // Nothing left: nothing moved.
        assert_eq!(move_pkts(&src, &dst, 1024, false, 0), 0);
    }
}
