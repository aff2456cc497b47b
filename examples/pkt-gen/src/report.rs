//! Output in the reference pkt-gen's format: the `D()` log prefix, unit
//! normalisation, periodic rate lines, the final summary and packet dumps.

use std::time::{SystemTime, UNIX_EPOCH};

/// `norm()`: `val` with a K/M/G/T prefix and three decimals (`"14.123 M"`), or as
/// an integer without prefix when not normalising (`-N`).
pub fn norm(val: f64, normalize: bool) -> String {
    const UNITS: [&str; 5] = ["", "K", "M", "G", "T"];
    if !normalize {
        return format!("{val:.0} ");
    }
    let mut v = val;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{v:.3} {}", UNITS[i])
}

/// The `D()` prefix: `<sec % 1000>.<usec> <function> [<line>] `.
pub fn d_prefix(func: &str, line: u32) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{:03}.{:06} {func} [{line}] ",
        now.as_secs() % 1000,
        now.subsec_micros()
    )
}

/// Logs a line on stderr with the reference's `D()` prefix.
#[macro_export]
macro_rules! d {
    ($func:expr, $($arg:tt)*) => {
        eprintln!("{}{}", $crate::report::d_prefix($func, line!()), format!($($arg)*))
    };
}

/// Counters of one report interval.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Interval {
    /// Packets in the interval.
    pub pkts: u64,
    /// Bytes in the interval.
    pub bytes: u64,
    /// Batches (ring passes that moved packets).
    pub events: u64,
    /// Length of the interval.
    pub usec: u64,
    /// Sum of the per-thread minimum ring space seen.
    pub min_space: u64,
}

/// The body of a periodic report line (after the `D()` prefix):
/// `14.123 Mpps (14.150 Mpkts 6.780 Gbps in 1001916 usec) 512.00 avg_batch 0 min_space`.
/// `framing` is the extra bits per packet of `-B`; `stats` the optional
/// `[avg/std ...]` of `-A`.
pub fn rate_line(x: &Interval, framing: u64, normalize: bool, stats: &str) -> String {
    let usec = x.usec.max(1);
    let pps = (x.pkts * 1_000_000 + usec / 2) / usec;
    let abs = if x.events > 0 {
        x.pkts as f64 / x.events as f64
    } else {
        0.0
    };
    let bps = 1_000_000.0 * (x.bytes as f64 * 8.0 + x.pkts as f64 * framing as f64) / usec as f64;
    let stats = if stats.is_empty() {
        String::new()
    } else {
        format!("{stats} ")
    };
    format!(
        "{}pps {}({}pkts {}bps in {} usec) {:.2} avg_batch {} min_space",
        norm(pps as f64, normalize),
        stats,
        norm(x.pkts as f64, normalize),
        norm(bps, normalize),
        x.usec,
        abs,
        x.min_space
    )
}

/// `-A`: mean and standard deviation of the non-zero samples of the window.
pub fn pps_stats(window: &[u64], normalize: bool) -> String {
    let samples: Vec<f64> = window
        .iter()
        .filter(|&&v| v > 0)
        .map(|&v| v as f64)
        .collect();
    if samples.is_empty() {
        return String::new();
    }
    let n = samples.len() as f64;
    let avg = samples.iter().sum::<f64>() / n;
    let dev = (samples.iter().map(|v| (v - avg) * (v - avg)).sum::<f64>() / n).sqrt();
    format!(
        "[avg/std {}/{} pps]",
        norm(avg, normalize),
        norm(dev, normalize)
    )
}

/// Totals of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    /// Packets.
    pub pkts: u64,
    /// Bytes.
    pub bytes: u64,
    /// Batches.
    pub events: u64,
}

/// The final summary (`tx_output`): two lines, or `"<msg> nothing."`.
pub fn summary(msg: &str, t: &Totals, delta: f64, framing: u64, normalize: bool) -> String {
    if t.pkts == 0 {
        return format!("{msg} nothing.\n");
    }
    let size = t.bytes / t.pkts;
    let mut out = format!(
        "{msg} {} packets {} bytes {} events {size} bytes each in {delta:.2} seconds.\n",
        t.pkts, t.bytes, t.events
    );
    let delta = if delta == 0.0 { 1e-6 } else { delta };
    let pps = t.pkts as f64 / delta;
    let bw = 8.0 * t.bytes as f64 / delta;
    let raw = (8.0 * t.bytes as f64 + t.pkts as f64 * framing as f64) / delta;
    let abs = if t.events > 0 {
        t.pkts as f64 / t.events as f64
    } else {
        0.0
    };
    out += &format!(
        "Speed: {}pps Bandwidth: {}bps (raw {}bps). Average batch: {abs:.2} pkts\n",
        norm(pps, normalize),
        norm(bw, normalize),
        norm(raw, normalize)
    );
    out
}

/// `dump_payload`: a header line then a hex dump, 16 bytes per line with the
/// printable characters on the right.
pub fn hexdump(ring: u16, cur: u32, buf_idx: u32, flags: u16, data: &[u8]) -> String {
    let mut out = format!(
        "ring {ring} cur {cur:5} [buf {buf_idx:6} flags 0x{flags:04x} len {:5}]\n",
        data.len()
    );
    for (k, chunk) in data.chunks(16).enumerate() {
        let mut line = format!("{:5}: ", k * 16);
        for b in chunk {
            line += &format!("{b:02x} ");
        }
        while line.len() < 7 + 48 {
            line.push(' ');
        }
        for &b in chunk {
            line.push(if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            });
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_like_the_reference() {
        assert_eq!(norm(14_123_000.0, true), "14.123 M");
        assert_eq!(norm(999.0, true), "999.000 ");
        assert_eq!(norm(6_780_000_000.0, true), "6.780 G");
        assert_eq!(norm(5e15, true), "5000.000 T");
        assert_eq!(norm(14_123_456.0, false), "14123456 ");
    }

    #[test]
    fn rate_line_format() {
        let x = Interval {
            pkts: 14_150_000,
            bytes: 14_150_000 * 60,
            events: 27_637,
            usec: 1_001_916,
            min_space: 0,
        };
        let l = rate_line(&x, 0, true, "");
        assert_eq!(
            l,
            "14.123 Mpps (14.150 Mpkts 6.779 Gbps in 1001916 usec) 511.99 avg_batch 0 min_space"
        );
        let l = rate_line(&x, 0, false, "");
        assert!(l.starts_with("14122940 pps (14150000 pkts "), "{l}");
        let l = rate_line(&Interval::default(), 0, true, "");
        assert_eq!(
            l,
            "0.000 pps (0.000 pkts 0.000 bps in 0 usec) 0.00 avg_batch 0 min_space"
        );
        let with = rate_line(&x, 24 * 8, true, "[avg/std 1.000 M/0.000 pps]");
        assert!(
            with.contains("pps [avg/std 1.000 M/0.000 pps] (14.150 Mpkts 9.491 Gbps"),
            "{with}"
        );
    }

    #[test]
    fn summary_format() {
        let t = Totals {
            pkts: 10_000_000,
            bytes: 600_000_000,
            events: 19_531,
        };
        let s = summary("Sent", &t, 0.71, 0, true);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[0],
            "Sent 10000000 packets 600000000 bytes 19531 events 60 bytes each in 0.71 seconds."
        );
        assert_eq!(
            lines[1],
            "Speed: 14.085 Mpps Bandwidth: 6.761 Gbps (raw 6.761 Gbps). Average batch: 512.01 pkts"
        );
        let s = summary("Sent", &t, 0.71, 24 * 8, true);
        assert!(s.contains("(raw 9.465 Gbps)"), "{s}");
        assert_eq!(
            summary("Received", &Totals::default(), 1.0, 0, true),
            "Received nothing.\n"
        );
    }

    #[test]
    fn pps_stats_window() {
        assert_eq!(pps_stats(&[0, 0], true), "");
        assert_eq!(
            pps_stats(&[1000, 3000, 0], true),
            "[avg/std 2.000 K/1.000 K pps]"
        );
    }

    #[test]
    fn hexdump_format() {
        let d = hexdump(0, 5, 1026, 0x20, b"netmap pkt-gen DIRECT payload\n\x00\x01");
        let lines: Vec<&str> = d.lines().collect();
        assert_eq!(
            lines[0],
            "ring 0 cur     5 [buf   1026 flags 0x0020 len    32]"
        );
        assert_eq!(
            lines[1],
            "    0: 6e 65 74 6d 61 70 20 70 6b 74 2d 67 65 6e 20 44 netmap pkt-gen D"
        );
        assert_eq!(
            lines[2],
            "   16: 49 52 45 43 54 20 70 61 79 6c 6f 61 64 0a 00 01 IRECT payload..."
        );
    }
}
