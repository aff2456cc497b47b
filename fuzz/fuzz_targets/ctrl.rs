//! NIOCCTRL decoding (spec §4.1–4.3): a header, a body and an option chain
//! in simulated user memory, all chosen by the input: arbitrary version,
//! reqtype, reserved word and name; the body and every `nro_next` pointing
//! at one of the mapped regions (so chains can loop), at a region's middle
//! or end, at an unmapped gap, or at a poisoned address. A few requests per
//! input, on two files, so that a successful REGISTER meets later ones.
//! The legacy ioctls (NIOCREGIF, NIOCGINFO, NIOCCONFIG) and unknown
//! commands get arbitrary arguments too. A CSB option or CSB_ENABLE that
//! happens to name readable memory puts the file in CSB mode, and a later
//! SYNC_KLOOP_START runs the loop for a few passes over that memory.
//!
//! Invariants: no panic; the header's user pointers are given back
//! unchanged when the header is readable; releasing every file brings
//! `stats()` back to the baseline and leaves no cluster behind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netmap_fuzz::*;
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

/// Names worth trying, besides random bytes.
const NAMES: &[&[u8]] = &[
    b"vale0:a",
    b"vale0:b",
    b"vale1:x",
    b"vale0:a{1",
    b"vale0:a}1",
    b"null0",
    b"eth0",
    b"vale:",
    b"vale0:",
    b"valeX",
    b"{x",
    b"x}",
    b"",
];

const MAX_REGIONS: usize = 8;

/// Where a pointer field points.
fn pointer(r: &mut Reader<'_>, regions: &[(u64, usize)], poisoned: &[u64]) -> u64 {
    match r.u8() % 10 {
        0 => 0,
        1..=5 if !regions.is_empty() => regions[r.below(regions.len())].0,
        6 if !regions.is_empty() => {
            // Inside or just past a region.
            let (a, len) = regions[r.below(regions.len())];
            a + (r.u16() as u64) % (len as u64 + 16)
        }
        7 if !poisoned.is_empty() => poisoned[r.below(poisoned.len())],
        8 => 0x1000_0000 - 8 + u64::from(r.u8()),
        _ => r.u64(),
    }
}

fn one_request(
    env: &Env,
    np: &netmap_core::NetmapPriv<netmap_core::host::HostPlatform>,
    r: &mut Reader<'_>,
) {
    // The user memory of this request: a few regions with arbitrary bytes
    // (option headers are then patched so that their nro_next fields point
    // where the input says).
    let nregions = 1 + r.below(MAX_REGIONS);
    let mut regions: Vec<(u64, usize)> = Vec::new();
    for _ in 0..nregions {
        let len = match r.u8() % 4 {
            0 => 24 + r.below(48),
            1 => body_size(r.u8() as u16 % 17).max(1),
            2 => r.below(128) + 1,
            _ => 24 + 8 * r.below(12),
        };
        let mut bytes = vec![0u8; len];
        let fill = r.bytes(len);
        bytes[..fill.len()].copy_from_slice(fill);
        regions.push((env.p.user_map(&bytes), len));
    }
    let mut poisoned = Vec::new();
    for _ in 0..r.below(3) {
        let (a, len) = regions[r.below(regions.len())];
        let p = a + (r.u16() as u64 % len as u64);
        env.p.user_poison(p);
        poisoned.push(p);
    }
    // Regions 1.. may be options: give each a well-formed-ish header.
    for i in 0..regions.len() {
        let (a, len) = regions[i];
        if len < 24 || !r.bool() {
            continue;
        }
        let mut opt = NmreqOption {
            nro_next: pointer(r, &regions, &poisoned),
            nro_reqtype: match r.u8() % 4 {
                0 => r.u32(),
                _ => u32::from(r.u8() % 8),
            },
            nro_status: r.u32(),
            nro_size: match r.u8() % 3 {
                0 => len as u64,
                1 => r.u64(),
                _ => u64::from(r.u16()),
            },
        };
        if r.one_in(8) {
            opt.nro_next = a; // a loop of one
        }
        let _ = env.p.user_write(a, opt.as_bytes());
    }

    let cmd = match r.u8() % 16 {
        0 => NIOCREGIF,
        1 => NIOCGINFO,
        2 => NIOCCONFIG,
        3 => r.u32(),
        _ => NIOCCTRL,
    };
    if cmd != NIOCCTRL {
        // Legacy requests: an nmreq (or ifreq) of arbitrary bytes.
        let arg = match r.u8() % 4 {
            0 => pointer(r, &regions, &poisoned),
            _ => {
                let mut nmr = Nmreq::zeroed();
                let b = r.bytes(core::mem::size_of::<Nmreq>());
                nmr.as_bytes_mut()[..b.len()].copy_from_slice(b);
                if !r.one_in(8) {
                    // Sizes that keep the region small (see the NIOCCTRL case).
                    nmr.nr_tx_slots &= 0x7f;
                    nmr.nr_rx_slots &= 0x7f;
                    nmr.nr_tx_rings &= 3;
                    nmr.nr_rx_rings &= 3;
                    nmr.nr_arg3 &= 0x3f;
                }
                if r.bool() {
                    nmr.nr_version = u32::from(NETMAP_API);
                    let name = r.pick(NAMES);
                    nmr.nr_name = [0; 16];
                    let n = name.len().min(15);
                    nmr.nr_name[..n].copy_from_slice(&name[..n]);
                }
                env.p.user_map(nmr.as_bytes())
            }
        };
        let _ = env.nm.ioctl(np, cmd, arg);
        return;
    }

    let reqtype = match r.u8() % 8 {
        0 => r.u16(),
        _ => u16::from(r.u8() % 17),
    };
    // Pipes of a missing parent make a 1024-slot plain parent: rarely.
    let name: &[u8] = match r.u8() {
        255 => b"pp{3",
        254 => b"pp}3",
        v => NAMES[usize::from(v) % NAMES.len()],
    };
    let mut hdr = NmreqHeader::new(reqtype, name);
    if r.one_in(4) {
        let raw = r.bytes(64);
        hdr.nr_name = [0; 64];
        hdr.nr_name[..raw.len()].copy_from_slice(raw);
    }
    hdr.nr_version = match r.u8() % 8 {
        0 => r.u16(),
        1 => NETMAP_MAX_API,
        _ => NETMAP_API,
    };
    hdr.nr_reserved = if r.one_in(8) { r.u32() } else { 0 };
    hdr.nr_body = match r.u8() % 4 {
        0 => pointer(r, &regions, &poisoned),
        _ => {
            // A body of the right size, well-formed where it matters.
            let size = body_size(reqtype);
            if size == 0 {
                0
            } else {
                let mut b = vec![0u8; size];
                let fill = r.bytes(size);
                b[..fill.len()].copy_from_slice(fill);
                if reqtype == NETMAP_REQ_REGISTER && r.bool() {
                    let mut reg = reg_body(NR_REG_ALL_NIC, 1, 16 + r.below(64) as u32);
                    reg.nr_mode = u32::from(r.u8() % 10);
                    reg.nr_extra_bufs = u32::from(r.u8() % 8);
                    reg.nr_flags = u64::from(r.u32()) & 0x3ff00;
                    b.copy_from_slice(reg.as_bytes());
                } else if reqtype == NETMAP_REQ_REGISTER && !r.one_in(8) {
                    // Random bytes, but sizes that keep the region small
                    // (the caps themselves are the `sequence` target's job).
                    let mut reg = NmreqRegister::from_bytes(&b).expect("register body");
                    reg.nr_tx_slots &= 0x7f;
                    reg.nr_rx_slots &= 0x7f;
                    reg.nr_tx_rings &= 3;
                    reg.nr_rx_rings &= 3;
                    reg.nr_extra_bufs &= 0x3f;
                    b.copy_from_slice(reg.as_bytes());
                }
                env.p.user_map(&b)
            }
        }
    };
    hdr.nr_options = pointer(r, &regions, &poisoned);
    let haddr = if r.one_in(16) {
        pointer(r, &regions, &poisoned)
    } else {
        env.p.user_map(hdr.as_bytes())
    };
    let before = env.p.user_read(haddr, core::mem::size_of::<NmreqHeader>());
    let _ = env.nm.ioctl(np, NIOCCTRL, haddr);
    if let (Ok(before), Ok(after)) = (
        before,
        env.p.user_read(haddr, core::mem::size_of::<NmreqHeader>()),
    ) {
        let b = NmreqHeader::from_bytes(&before).expect("header bytes");
        let a = NmreqHeader::from_bytes(&after).expect("header bytes");
        // The header may alias a body or option the kernel wrote back: only
        // check the pointers when it does not overlap anything else.
        let alone = !regions
            .iter()
            .any(|&(ra, len)| haddr >= ra && haddr < ra + len as u64);
        if alone {
            assert_eq!(a.nr_body, b.nr_body, "nr_body changed");
            assert_eq!(a.nr_options, b.nr_options, "nr_options changed");
            assert_eq!(a.nr_reqtype, b.nr_reqtype, "nr_reqtype changed");
            assert_eq!(a.nr_version, b.nr_version, "nr_version changed");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let env = Env::new(small_params(2048));
    // A SYNC_KLOOP_START that finds a CSB makes a few passes, then is
    // "signalled" (EINTR) instead of running until a STOP; two eventfds
    // (descriptors 3 and 4) for its options to name.
    env.p.set_sleep_budget(Some(3));
    env.p.eventfd_create();
    env.p.eventfd_create();
    let base = env.stats();
    let mut r = Reader::new(data);
    let files = [env.open(), env.open()];
    let mut n = 0;
    while !r.is_empty() && n < 6 {
        let f = &files[r.below(2)];
        one_request(&env, f, &mut r);
        n += 1;
    }
    for f in files {
        env.nm.release(f);
    }
    finish(env, base);
});
