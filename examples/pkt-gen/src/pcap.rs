//! `-P`: the first packet of a pcap file.

/// Reads the first packet of the pcap file at `path` (classic format, micro- or
/// nanosecond timestamps, either byte order).
pub fn first_packet(path: &str) -> Result<Vec<u8>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read pcap file {path}: {e}"))?;
    parse_first(&data).map_err(|e| format!("{path}: {e}"))
}

/// [`first_packet`] on the file contents.
pub fn parse_first(data: &[u8]) -> Result<Vec<u8>, String> {
    let word = |b: &[u8], swap: bool| {
        let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if swap { v.swap_bytes() } else { v }
    };
    if data.len() < 24 {
        return Err("not a pcap file (too short)".into());
    }
    let swap = match word(&data[0..4], false) {
        0xa1b2_c3d4 | 0xa1b2_3c4d => false,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => true,
        _ => return Err("not a pcap file (bad magic)".into()),
    };
    let rec = data.get(24..40).ok_or("no packet in the pcap file")?;
    let incl = word(&rec[8..12], swap) as usize;
    let pkt = data
        .get(40..40 + incl)
        .ok_or("truncated packet in the pcap file")?;
    if pkt.is_empty() {
        return Err("empty packet in the pcap file".into());
    }
    Ok(pkt.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(magic: u32, big: bool, pkt: &[u8]) -> Vec<u8> {
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut f = Vec::new();
        f.extend(w(magic));
        f.extend([0u8; 20]);
        f.extend(w(1));
        f.extend(w(2));
        f.extend(w(pkt.len() as u32));
        f.extend(w(pkt.len() as u32));
        f.extend(pkt);
        f
    }

    #[test]
    fn reads_both_byte_orders() {
        assert_eq!(
            parse_first(&file(0xa1b2_c3d4, false, b"abc")).unwrap(),
            b"abc"
        );
        assert_eq!(
            parse_first(&file(0xa1b2_c3d4, true, b"xyz!")).unwrap(),
            b"xyz!"
        );
        assert_eq!(parse_first(&file(0xa1b2_3c4d, false, b"n")).unwrap(), b"n");
        assert!(parse_first(b"short").is_err());
        assert!(
            parse_first(&file(0x1234_5678, false, b"a"))
                .unwrap_err()
                .contains("magic")
        );
        let mut t = file(0xa1b2_c3d4, false, b"abcdef");
        t.truncate(43);
        assert!(parse_first(&t).unwrap_err().contains("truncated"));
        assert!(parse_first(&file(0xa1b2_c3d4, false, b"")[..24]).is_err());
    }
}
