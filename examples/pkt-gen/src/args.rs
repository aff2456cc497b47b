//! Command line: the reference's short options (`getopt
//! "46a:f:F:Nn:i:Il:d:s:D:S:b:c:o:p:T:w:WvR:XC:H:rP:zZAhBM:"`) and their checks.

use crate::frame::{Family, IpRange, Mac};
use clap::{ArgAction, Parser};

/// `-o` option bits (reference `OPT_*`).
pub mod opt {
    /// Prefetch buffers.
    pub const PREFETCH: u32 = 1;
    /// Touch the buffers.
    pub const ACCESS: u32 = 2;
    /// Copy the frame into every buffer (`nm_pkt_copy`).
    pub const COPY: u32 = 4;
    /// Copy the frame into every buffer (`memcpy`).
    pub const MEMCPY: u32 = 8;
    /// Timestamp packets (accepted, no effect here).
    #[allow(dead_code)]
    pub const TS: u32 = 16;
    /// `NS_INDIRECT` buffers (`-I`).
    pub const INDIRECT: u32 = 32;
    /// Dump packets (`-X`).
    pub const DUMP: u32 = 64;
    /// Send buffers uninitialised (`-r`).
    pub const RUBBISH: u32 = 256;
    /// Random source (`-z`).
    pub const RANDOM_SRC: u32 = 512;
    /// Random destination (`-Z`).
    pub const RANDOM_DST: u32 = 1024;
    /// Rate statistics (`-A`).
    pub const PPS_STATS: u32 = 2048;
    /// Update checksums (accepted; checksums are always kept valid).
    #[allow(dead_code)]
    pub const UPDATE_CSUM: u32 = 4096;
}

/// Maximum packet size (`MAX_PKTSIZE`).
pub const MAX_PKTSIZE: u32 = 65536;
/// Maximum port-name length.
pub const MAX_IFNAMELEN: usize = 504;

/// pkt-gen: send or receive packets on a netmap port at line rate.
#[derive(Parser, Debug, Clone, PartialEq)]
#[command(
    name = "pkt-gen",
    disable_help_flag = true,
    disable_version_flag = true,
    after_help = "Examples:\n  pkt-gen -i vale0:a -f tx -l 60          send 60-byte frames\n  pkt-gen -i vale0:b -f rx                count received packets\n  pkt-gen -i netmap:eth0 -f tx -p 4 -R 1000000\n  pkt-gen -i vale0:p -f ping -n 1000      measure round-trip times (pong on the other end)\n  pkt-gen -i vale0:a@extmem:file=/dev/shm/x -f tx     region in a file (EXTMEM)\n  pkt-gen -i vale0:b@offset:initial=64 -f rx           data 64 bytes into each buffer\n\nPorts use the nmport_open syntax (netmap:IF[-N|^|*][/xzrtRT][@MEMID], valeX:Y, pipes IF{N / IF}N,\n@conf:, @extmem:file=F[,if-num=..,ring-size=..,buf-num=..], @offset:initial=N[,bits=B]).\nSIGINT (^C) stops the run and prints the totals."
)]
pub struct Args {
    /// Port: netmap:IF, valeX:Y, or IF (netmap: is prepended); `null` = dummy sender
    #[arg(short = 'i', value_name = "PORT")]
    pub ifname: Option<String>,
    /// Function: tx, rx, ping, pong
    #[arg(short = 'f', value_name = "FUNCTION", default_value = "rx")]
    pub function: String,
    /// Packets (tx/rx) or transactions (ping/pong) to process; 0 = forever
    #[arg(short = 'n', value_name = "COUNT", default_value_t = 0)]
    pub npackets: u64,
    /// Packet size without CRC (16..65536); a second -l sets the minimum for random sizes
    #[arg(short = 'l', value_name = "LEN", action = ArgAction::Append)]
    pub pkt_size: Vec<u32>,
    /// Burst size [512 for tx/rx, 1 for ping/pong]
    #[arg(short = 'b', value_name = "BURST")]
    pub burst: Option<u32>,
    /// Destination IP[:port[-IP[:port]]] (range)
    #[arg(short = 'd', value_name = "IP", default_value = "10.1.0.1")]
    pub dst_ip: String,
    /// Source IP[:port[-IP[:port]]] (range)
    #[arg(short = 's', value_name = "IP", default_value = "10.0.0.1")]
    pub src_ip: String,
    /// Destination MAC
    #[arg(short = 'D', value_name = "MAC", default_value = "ff:ff:ff:ff:ff:ff")]
    pub dst_mac: String,
    /// Source MAC [the interface's, else 00:00:00:00:00:00]
    #[arg(short = 'S', value_name = "MAC")]
    pub src_mac: Option<String>,
    /// Pin the first thread to CPU N, the next ones to the following CPUs
    #[arg(short = 'a', value_name = "CPU")]
    pub affinity: Option<usize>,
    /// Maximum number of CPUs to use (0 = all)
    #[arg(short = 'c', value_name = "CPUS", default_value_t = 1)]
    pub cpus: usize,
    /// Threads, one ring pair each
    #[arg(short = 'p', value_name = "THREADS", default_value_t = 1)]
    pub nthreads: usize,
    /// Report interval in milliseconds
    #[arg(short = 'T', value_name = "MS", default_value_t = 1000)]
    pub report_interval: u64,
    /// Seconds to wait for the link before starting [2, 0 for VALE ports]
    #[arg(short = 'w', value_name = "SECONDS")]
    pub wait_link: Option<u64>,
    /// rx: exit when the rings stay idle for 1 s instead of waiting forever
    #[arg(short = 'W')]
    pub no_forever: bool,
    /// Transmit rate limit in packets per second (0 = unlimited)
    #[arg(short = 'R', value_name = "PPS", default_value_t = 0)]
    pub tx_rate: u64,
    /// Dump packets (hex)
    #[arg(short = 'X')]
    pub dump: bool,
    /// Virtio-net header length: 0, 10 or 12 (set with PORT_HDR_SET)
    #[arg(short = 'H', value_name = "LEN")]
    pub virt_header: Option<u32>,
    /// pcap file with the packet to send
    #[arg(short = 'P', value_name = "FILE")]
    pub pcap: Option<String>,
    /// Random source addresses and ports
    #[arg(short = 'z')]
    pub random_src: bool,
    /// Random destination addresses and ports
    #[arg(short = 'Z')]
    pub random_dst: bool,
    /// Do not normalise units (print raw numbers)
    #[arg(short = 'N')]
    pub no_normalize: bool,
    /// Fragments per packet (1..63)
    #[arg(short = 'F', value_name = "FRAGS", default_value_t = 1)]
    pub frags: u32,
    /// Fragment size [the buffer size]
    #[arg(short = 'M', value_name = "SIZE")]
    pub frag_size: Option<u32>,
    /// Indirect buffers (NS_INDIRECT, VALE TX only)
    #[arg(short = 'I')]
    pub indirect: bool,
    /// Rubbish: send buffers without writing the frame
    #[arg(short = 'r')]
    pub rubbish: bool,
    /// Print mean/stddev of the rate over the last reports
    #[arg(short = 'A')]
    pub pps_stats: bool,
    /// Add 24 bytes of framing and CRC per packet to the bit rates
    #[arg(short = 'B')]
    pub framing: bool,
    /// Ring config tx_slots[,rx_slots[,tx_rings[,rx_rings]]] (deprecated: use @conf)
    #[arg(short = 'C', value_name = "CONF")]
    pub ring_conf: Option<String>,
    /// Option bitmask: 1 prefetch, 2 access, 4 copy, 8 memcpy, 16 timestamp, 32 indirect, 64 dump, 256 rubbish, 512 random src, 1024 random dst, 2048 pps stats, 4096 update csum
    #[arg(short = 'o', value_name = "BITS", default_value_t = 0)]
    pub options: u32,
    /// IPv4 (default)
    #[arg(short = '4')]
    pub ipv4: bool,
    /// IPv6
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Verbose (repeat for more)
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,
    /// Print this help
    #[arg(short = 'h', long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,
}

/// What a run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    /// Transmit.
    Tx,
    /// Receive.
    Rx,
    /// Send timestamped packets and measure the round trip.
    Ping,
    /// Echo packets back.
    Pong,
}

/// `-C`: ring configuration hints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingConf {
    /// TX slots.
    pub tx_slots: Option<u32>,
    /// RX slots.
    pub rx_slots: Option<u32>,
    /// TX rings.
    pub tx_rings: Option<u16>,
    /// RX rings.
    pub rx_rings: Option<u16>,
}

/// Parses `tx_slots[,rx_slots[,tx_rings[,rx_rings]]]`: one number sets both slot
/// counts, the third both ring counts.
pub fn parse_ring_conf(s: &str) -> Result<RingConf, String> {
    let mut c = RingConf::default();
    if s.is_empty() {
        return Ok(c);
    }
    for (i, tok) in s.split(',').enumerate() {
        let v: u32 = tok
            .trim()
            .parse()
            .map_err(|_| format!("invalid number '{tok}' in ring config '{s}'"))?;
        let ring = || u16::try_from(v).map_err(|_| format!("ring count {v} too large"));
        match i {
            0 => {
                c.tx_slots = Some(v);
                c.rx_slots = Some(v);
            }
            1 => c.rx_slots = Some(v),
            2 => {
                c.tx_rings = Some(ring()?);
                c.rx_rings = Some(ring()?);
            }
            3 => c.rx_rings = Some(ring()?),
            _ => return Err(format!("too many numbers in ring config '{s}'")),
        }
    }
    Ok(c)
}

/// How the port is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Device {
    /// A netmap port spec.
    Netmap(String),
    /// `-i null`: no device, the sender only builds packets.
    Null,
}

/// The validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Device.
    pub dev: Device,
    /// Function.
    pub function: Function,
    /// Packets/transactions (0 = forever).
    pub npackets: u64,
    /// Packet size.
    pub pkt_size: u32,
    /// Minimum size for random sizes (0 = fixed size).
    pub pkt_min_size: u32,
    /// Burst.
    pub burst: u32,
    /// Source range.
    pub src: IpRange,
    /// Destination range.
    pub dst: IpRange,
    /// Destination MAC.
    pub dst_mac: Mac,
    /// Source MAC (None = from the interface).
    pub src_mac: Option<Mac>,
    /// First CPU to pin to.
    pub affinity: Option<usize>,
    /// CPUs in use.
    pub cpus: usize,
    /// Threads.
    pub nthreads: usize,
    /// Report interval in ms.
    pub report_interval: u64,
    /// Seconds to wait for the link.
    pub wait_link: u64,
    /// Receive forever (false with -W).
    pub forever: bool,
    /// Rate limit (pps).
    pub tx_rate: u64,
    /// Virtio-net header length given with -H.
    pub virt_header: Option<u32>,
    /// pcap file.
    pub pcap: Option<String>,
    /// Normalise units.
    pub normalize: bool,
    /// Fragments per packet.
    pub frags: u32,
    /// Fragment size (None = buffer size).
    pub frag_size: Option<u32>,
    /// `opt::*` bits (including those of -X, -z, -Z, -I, -r, -A).
    pub options: u32,
    /// Framing bits per packet (-B).
    pub framing: u64,
    /// Ring configuration.
    pub ring_conf: RingConf,
    /// Family.
    pub family: Family,
    /// Verbosity.
    pub verbose: u8,
}

impl Config {
    /// Checks the arguments like the reference's `main` and derives defaults.
    /// `online_cpus` is the number of CPUs of the machine.
    pub fn from_args(a: Args, online_cpus: usize) -> Result<Config, String> {
        let ifname = a.ifname.ok_or("missing interface name (-i)")?;
        if ifname.len() > MAX_IFNAMELEN {
            return Err(format!("port name too long (max {MAX_IFNAMELEN} chars)"));
        }
        let function = match a.function.as_str() {
            "tx" => Function::Tx,
            "rx" => Function::Rx,
            "ping" => Function::Ping,
            "pong" => Function::Pong,
            "txseq" | "rxseq" => {
                return Err(format!(
                    "-f {} is not supported by this pkt-gen",
                    a.function
                ));
            }
            f => return Err(format!("unrecognised function '{f}' (tx, rx, ping, pong)")),
        };
        let dev = if ifname == "null" {
            Device::Null
        } else if ifname.starts_with("tap:") || ifname.starts_with("pcap:") {
            return Err(format!(
                "{ifname}: tap and pcap devices are not supported, only netmap ports"
            ));
        } else if ifname.starts_with("netmap:") || ifname.starts_with("vale") {
            Device::Netmap(ifname.clone())
        } else if ifname.starts_with("tap") {
            return Err(format!(
                "{ifname}: names starting with 'tap' select tap mode, which is not supported; use netmap:{ifname}"
            ));
        } else {
            Device::Netmap(format!("netmap:{ifname}"))
        };
        if dev == Device::Null && function != Function::Tx {
            return Err("-i null works only with -f tx".into());
        }
        let (pkt_size, pkt_min_size) = match a.pkt_size.as_slice() {
            [] => (60, 0),
            [s] => (*s, 0),
            [s, m, ..] => (*s, *m),
        };
        if !(16..=MAX_PKTSIZE).contains(&pkt_size) {
            return Err(format!("bad pktsize {pkt_size} [16..{MAX_PKTSIZE}]"));
        }
        if pkt_min_size != 0 && (pkt_min_size < 16 || pkt_min_size >= pkt_size) {
            return Err(format!(
                "bad minimum pktsize {pkt_min_size} [16..{}]",
                pkt_size - 1
            ));
        }
        if matches!(function, Function::Ping | Function::Pong) && pkt_size < 54 {
            return Err(format!(
                "-f {} needs -l 54 or more (got {pkt_size})",
                a.function
            ));
        }
        let burst = a.burst.unwrap_or(match function {
            Function::Ping | Function::Pong => 1,
            _ => 512,
        });
        if burst == 0 {
            return Err("burst must be at least 1".into());
        }
        let family = match (a.ipv4, a.ipv6) {
            (true, true) => return Err("-4 and -6 are exclusive".into()),
            (_, true) => Family::V6,
            _ => Family::V4,
        };
        let mut src = a.src_ip.clone();
        let mut dst = a.dst_ip.clone();
        if family == Family::V6 {
            // The reference's IPv6 defaults.
            if src == "10.0.0.1" {
                src = "fd00::1".into();
            }
            if dst == "10.1.0.1" {
                dst = "fd00::2".into();
            }
        }
        let src = IpRange::parse(&src).map_err(|e| format!("-s: {e}"))?;
        let dst = IpRange::parse(&dst).map_err(|e| format!("-d: {e}"))?;
        if src.family != family || dst.family != family {
            return Err(format!(
                "addresses do not match the address family (-{})",
                if family == Family::V4 { 4 } else { 6 }
            ));
        }
        let dst_mac = Mac::parse(&a.dst_mac).map_err(|e| format!("-D: {e}"))?;
        let src_mac = a
            .src_mac
            .as_deref()
            .map(Mac::parse)
            .transpose()
            .map_err(|e| format!("-S: {e}"))?;
        let cpus = if a.cpus == 0 { online_cpus } else { a.cpus };
        if cpus > online_cpus {
            return Err(format!(
                "{cpus} cpus is too high, have only {online_cpus} cpus"
            ));
        }
        if let Some(aff) = a.affinity
            && aff >= online_cpus
        {
            return Err(format!(
                "invalid affinity {aff}, must be between 0 and {}",
                online_cpus - 1
            ));
        }
        if a.nthreads < 1 {
            return Err("need at least one thread (-p)".into());
        }
        if matches!(function, Function::Ping | Function::Pong) && a.nthreads > 1 {
            return Err(format!("can only {} with 1 thread", a.function));
        }
        if a.report_interval == 0 {
            return Err("report interval (-T) must be positive".into());
        }
        let wait_link = match a.wait_link {
            Some(w) if w > 100 => return Err(format!("bad wait_link {w}, max 100")),
            Some(w) => w,
            None if ifname.starts_with("vale") => 0,
            None => 2,
        };
        if let Some(h) = a.virt_header
            && !matches!(h, 0 | 10 | 12)
        {
            return Err(format!("bad virtio-net header length {h} (0, 10 or 12)"));
        }
        if !(1..=63).contains(&a.frags) {
            return Err(format!("bad number of fragments {} [1..63]", a.frags));
        }
        if a.frag_size == Some(0) {
            return Err("fragment size (-M) must be positive".into());
        }
        let mut options = a.options;
        if a.dump {
            options |= opt::DUMP;
        }
        if a.random_src {
            options |= opt::RANDOM_SRC;
        }
        if a.random_dst {
            options |= opt::RANDOM_DST;
        }
        if a.indirect {
            options |= opt::INDIRECT;
        }
        if a.rubbish {
            options |= opt::RUBBISH;
        }
        if a.pps_stats {
            options |= opt::PPS_STATS;
        }
        if options & (opt::RANDOM_SRC | opt::RANDOM_DST) != 0 && options & opt::MEMCPY == 0 {
            // Changing addresses needs the frame written into every buffer.
            options |= opt::COPY;
        }
        let ring_conf = parse_ring_conf(a.ring_conf.as_deref().unwrap_or(""))?;
        Ok(Config {
            dev,
            function,
            npackets: a.npackets,
            pkt_size,
            pkt_min_size,
            burst,
            src,
            dst,
            dst_mac,
            src_mac,
            affinity: a.affinity,
            cpus,
            nthreads: a.nthreads,
            report_interval: a.report_interval,
            wait_link,
            forever: !a.no_forever,
            tx_rate: a.tx_rate,
            virt_header: a.virt_header,
            pcap: a.pcap,
            normalize: !a.no_normalize,
            frags: a.frags,
            frag_size: a.frag_size,
            options,
            framing: if a.framing { 24 * 8 } else { 0 },
            ring_conf,
            family,
            verbose: a.verbose,
        })
    }
}

/// The rate limiter's burst and period (reference: at least ~300 batches per
/// second, no fewer packets than one batch).
pub fn rate_period(rate: u64, burst: u32) -> (u32, std::time::Duration) {
    let lim = (rate / 300).min(u64::from(u32::MAX)) as u32;
    let burst = burst.min(lim).max(1);
    let ns = 1_000_000_000u64 * u64::from(burst) / rate.max(1);
    (burst, std::time::Duration::from_nanos(ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(argv: &[&str]) -> Result<Config, String> {
        let mut v = vec!["pkt-gen"];
        v.extend_from_slice(argv);
        let a = Args::try_parse_from(v).map_err(|e| e.to_string())?;
        Config::from_args(a, 4)
    }

    #[test]
    fn defaults() {
        let c = cfg(&["-i", "eth0"]).unwrap();
        assert_eq!(c.dev, Device::Netmap("netmap:eth0".into()));
        assert_eq!(c.function, Function::Rx);
        assert_eq!((c.pkt_size, c.burst, c.npackets), (60, 512, 0));
        assert_eq!(
            (c.wait_link, c.report_interval, c.nthreads, c.cpus),
            (2, 1000, 1, 1)
        );
        assert_eq!(c.dst_mac, Mac::BROADCAST);
        assert_eq!(c.src_mac, None);
        assert_eq!((c.src.start, c.dst.start), (0x0a00_0001, 0x0a01_0001));
        assert_eq!((c.src.port0, c.dst.port0), (1234, 1234));
        assert!(c.forever && c.normalize);
        assert_eq!((c.framing, c.options, c.frags), (0, 0, 1));
    }

    #[test]
    fn reference_combinations() {
        let c = cfg(&["-i", "vale0:a", "-f", "tx", "-l", "60"]).unwrap();
        assert_eq!(c.dev, Device::Netmap("vale0:a".into()));
        assert_eq!(
            (c.function, c.wait_link),
            (Function::Tx, 0),
            "-w 0 for VALE"
        );
        let c = cfg(&["-i", "vale0:a", "-f", "tx", "-w", "3"]).unwrap();
        assert_eq!(c.wait_link, 3);
        let c = cfg(&[
            "-i",
            "netmap:eth0-1",
            "-f",
            "tx",
            "-n",
            "1000000",
            "-b",
            "64",
            "-R",
            "100000",
        ])
        .unwrap();
        assert_eq!((c.npackets, c.burst, c.tx_rate), (1_000_000, 64, 100_000));
        let c = cfg(&["-i", "eth0", "-f", "ping"]).unwrap();
        assert_eq!(c.burst, 1);
        let c = cfg(&["-i", "eth0", "-f", "pong", "-b", "8"]).unwrap();
        assert_eq!(c.burst, 8);
        let c = cfg(&[
            "-ivale1:x",
            "-ftx",
            "-l1514",
            "-l",
            "64",
            "-p2",
            "-a1",
            "-c2",
            "-T500",
            "-N",
            "-B",
            "-A",
        ])
        .unwrap();
        assert_eq!((c.pkt_size, c.pkt_min_size), (1514, 64));
        assert_eq!(
            (c.nthreads, c.affinity, c.cpus, c.report_interval),
            (2, Some(1), 2, 500)
        );
        assert!(!c.normalize);
        assert_eq!(c.framing, 192);
        assert_ne!(c.options & opt::PPS_STATS, 0);
        let c = cfg(&[
            "-i",
            "eth0",
            "-f",
            "tx",
            "-d",
            "10.0.0.2:80-10.0.0.9:90",
            "-s",
            "10.0.0.1",
            "-D",
            "00:11:22:33:44:55",
            "-S",
            "66:77:88:99:aa:bb",
        ])
        .unwrap();
        assert_eq!((c.dst.port0, c.dst.port1, c.dst.end & 0xff), (80, 90, 9));
        assert_eq!(c.src_mac, Some(Mac([0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb])));
        let c = cfg(&[
            "-i", "eth0", "-f", "tx", "-z", "-Z", "-X", "-I", "-r", "-o", "1",
        ])
        .unwrap();
        let want = opt::PREFETCH
            | opt::RANDOM_SRC
            | opt::RANDOM_DST
            | opt::DUMP
            | opt::INDIRECT
            | opt::RUBBISH
            | opt::COPY;
        assert_eq!(c.options, want);
        let c = cfg(&[
            "-i",
            "eth0",
            "-W",
            "-F",
            "4",
            "-M",
            "512",
            "-H",
            "12",
            "-C",
            "1024,512,4",
        ])
        .unwrap();
        assert!(!c.forever);
        assert_eq!(
            (c.frags, c.frag_size, c.virt_header),
            (4, Some(512), Some(12))
        );
        assert_eq!(
            c.ring_conf,
            RingConf {
                tx_slots: Some(1024),
                rx_slots: Some(512),
                tx_rings: Some(4),
                rx_rings: Some(4)
            }
        );
        let c = cfg(&["-i", "eth0", "-6", "-f", "tx"]).unwrap();
        assert_eq!(
            (c.family, c.src.start, c.dst.start),
            (Family::V6, 0xfd00 << 112 | 1, 0xfd00 << 112 | 2)
        );
        let c = cfg(&["-i", "null", "-f", "tx", "-c", "0", "-vv"]).unwrap();
        assert_eq!((c.dev, c.cpus, c.verbose), (Device::Null, 4, 2));
    }

    #[test]
    fn rejected_like_the_reference() {
        let err = |a: &[&str]| cfg(a).unwrap_err();
        assert!(err(&[]).contains("missing interface"));
        assert!(err(&["-i", "eth0", "-l", "15"]).contains("bad pktsize 15"));
        assert!(err(&["-i", "eth0", "-l", "65537"]).contains("bad pktsize"));
        assert!(err(&["-i", "eth0", "-f", "bogus"]).contains("unrecognised function"));
        assert!(err(&["-i", "eth0", "-c", "8"]).contains("8 cpus is too high, have only 4 cpus"));
        assert!(err(&["-i", "eth0", "-a", "4"]).contains("invalid affinity 4"));
        assert!(err(&["-i", "eth0", "-w", "101"]).contains("bad wait_link"));
        assert!(err(&["-i", "eth0", "-H", "11"]).contains("virtio-net"));
        assert!(err(&["-i", "eth0", "-F", "64"]).contains("fragments"));
        assert!(err(&["-i", "eth0", "-f", "ping", "-p", "2"]).contains("1 thread"));
        assert!(err(&["-i", "tap0"]).contains("tap"));
        assert!(err(&["-i", "null", "-f", "rx"]).contains("null"));
        assert!(err(&["-i", "eth0", "-d", "10.0.0.300"]).contains("-d: invalid IP"));
        assert!(err(&["-i", "eth0", "-6", "-d", "10.0.0.1"]).contains("family"));
        assert!(err(&["-i", "eth0", "-C", "1,2,3,4,5"]).contains("too many"));
        assert!(err(&["-i", "eth0", "-b", "0"]).contains("burst"));
        assert!(err(&["-i", "eth0", "-n", "many"]).contains("invalid value"));
        let long = "x".repeat(505);
        assert!(err(&["-i", &long]).contains("too long"));
    }

    #[test]
    fn help_is_available_as_h() {
        let e = Args::try_parse_from(["pkt-gen", "-h"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
        let help = e.to_string();
        assert!(
            help.contains("-i <PORT>") && help.contains("-f <FUNCTION>"),
            "{help}"
        );
        let e = Args::try_parse_from(["pkt-gen", "--help"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
    }

    #[test]
    fn rate_limit_period() {
        let (b, p) = rate_period(1_000_000, 512);
        assert_eq!((b, p.as_nanos()), (512, 512_000));
        let (b, p) = rate_period(1000, 512);
        assert_eq!((b, p.as_nanos()), (3, 3_000_000));
        let (b, _) = rate_period(10, 512);
        assert_eq!(b, 1);
    }
}
