//! VALE ports with different virtio-net header lengths (§4.7, §8.3): the
//! switch converts the header between 0, 10 and 12 bytes, and drops what a
//! port without a header could not take (checksum or segmentation
//! offloads).

mod common;
use common::*;
use netmap_core::Errno;
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const BCAST: [u8; 6] = [0xff; 6];

fn set_hdr(env: &Env, name: &str, len: u32) -> Result<(), Errno> {
    let np = env.open();
    let mut h = NmreqPortHdr {
        nr_hdr_len: len,
        ..NmreqPortHdr::zeroed()
    };
    let r = env.ctrl(&np, NETMAP_REQ_PORT_HDR_SET, name, Some(&mut h));
    env.nm.release(np);
    r.map(|_| ())
}

/// A port of `vale0` with a `len`-byte header (NR_ACCEPT_VNET_HDR).
fn port_with_hdr<'a>(env: &'a Env, name: &str, len: u32) -> Port<'a> {
    // Create the port, set its header length, then bind it for real.
    let tmp = env.port(name);
    set_hdr(env, name, len).unwrap();
    let p = env.port_with(
        name,
        NmreqRegister {
            nr_mode: NR_REG_ALL_NIC,
            nr_flags: NR_ACCEPT_VNET_HDR,
            ..NmreqRegister::zeroed()
        },
    );
    drop(tmp);
    p
}

/// A virtio-net header of `len` bytes: flags, gso_type, then recognizable
/// bytes (hdr_len, gso_size, csum_start, csum_offset, num_buffers).
fn vhdr(len: usize, flags: u8, gso: u8) -> Vec<u8> {
    let mut h = vec![flags, gso, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    h.truncate(len);
    h
}

#[test]
fn headers_are_converted_between_lengths() {
    let env = Env::new();
    let base = env.nm.stats();
    {
        let p12 = port_with_hdr(&env, "vale0:h12", 12);
        let p10 = port_with_hdr(&env, "vale0:h10", 10);
        let p0 = env.port("vale0:plain");
        let f = frame(BCAST, A, 1, 60);
        // 12 -> 10 and 0.
        let pkt = [vhdr(12, 0, 0), f.clone()].concat();
        assert_eq!(p12.send(&[&pkt]), 1);
        assert_eq!(p10.recv(), vec![[vhdr(10, 0, 0), f.clone()].concat()]);
        assert_eq!(p0.recv(), vec![f.clone()]);
        // 0 -> 12 (zeros, num_buffers 1) and 10 (zeros).
        assert_eq!(p0.send(&[&f]), 1);
        let mut h12 = vec![0u8; 12];
        h12[10] = 1;
        assert_eq!(p12.recv(), vec![[h12, f.clone()].concat()]);
        assert_eq!(p10.recv(), vec![[vec![0u8; 10], f.clone()].concat()]);
        // 10 -> 12: the header kept, num_buffers 1.
        let pkt = [vhdr(10, 0, 0), f.clone()].concat();
        assert_eq!(p10.send(&[&pkt]), 1);
        let mut want = vhdr(10, 0, 0);
        want.extend_from_slice(&[1, 0]);
        assert_eq!(p12.recv(), vec![[want, f.clone()].concat()]);
        assert_eq!(p0.recv(), vec![f.clone()]);
        // Offloads cannot reach a port without a header: dropped there,
        // kept (flags and all) where there is one.
        for (flags, gso) in [(1u8, 0u8), (0, 1)] {
            let pkt = [vhdr(12, flags, gso), f.clone()].concat();
            assert_eq!(p12.send(&[&pkt]), 1);
            assert!(p0.recv().is_empty(), "flags {flags} gso {gso}");
            assert_eq!(p10.recv(), vec![[vhdr(10, flags, gso), f.clone()].concat()]);
        }
    }
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn same_lengths_are_copied_as_they_are() {
    let env = Env::new();
    let a = port_with_hdr(&env, "vale0:a", 12);
    let b = port_with_hdr(&env, "vale0:b", 12);
    let pkt = [vhdr(12, 1, 4), frame(BCAST, A, 1, 100)].concat();
    assert_eq!(a.send(&[&pkt]), 1);
    assert_eq!(b.recv(), vec![pkt]);
}
