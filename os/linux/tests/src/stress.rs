//! Seeded stress (issue "hardening"): several processes issue random control
//! requests, open and close random ports (VALE, pipes, monitors, null
//! ports, persistent ports created, attached, detached and deleted) with
//! random modes and flags, scribble over their rings between
//! syncs, and get SIGKILLed at random points, while a clean sender/receiver
//! pair keeps checking its traffic. Bounded in time and count; the runner's
//! leak check then requires every pool back at its baseline, and vm-test
//! requires a clean rmmod and no kernel warning.
//!
//! Issue "bounded kernel memory" added what would have caught its two
//! defects: the clients also ask for large private regions (VALE ports and
//! persistent ports with up to 16 rings of 4096 slots and 524288 extra
//! buffers, held open) and every round checks that the memory budget is
//! never exceeded and that the OOM killer never ran; a copy monitor of a
//! pipe end's and of a VALE port's RX ring must get each clean frame on
//! arrival, before the receiving end syncs, and the receiver still gets it.
//!
//! `NM_STRESS_SEED` and `NM_STRESS_SECS` override the seed and duration
//! (the runner's alarm follows the duration).

use crate::mem::{oom_kills, stat};
use crate::port::{BCAST, Port, all_nic, check_frame, frame, mac, register};
use crate::proc::{Child, spawn};
use crate::sys::{Fd, errno_name};
use crate::{Test, ensure};
use netmap_uapi::pod::Pod;
use netmap_uapi::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const TESTS: &[Test] = &[("stress_random_clients", stress_random_clients)];

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len() as u64) as usize]
    }
}

/// Counters shared by all processes (an anonymous shared mapping, inherited
/// by the forked clients).
#[derive(Clone, Copy)]
struct Counters {
    ptr: *mut AtomicU64,
}

const C_REQUESTS: usize = 0;
const C_REGISTERS: usize = 1;
const C_HOSTILE_SYNCS: usize = 2;
const C_KILLS: usize = 3;
const C_FRAMES: usize = 4;
/// Successful VALE_ATTACH of the veth end, and POLLING_ENABLE on it.
const C_NIC_ATTACHES: usize = 5;
const C_NIC_POLLS: usize = 6;
/// Requests for large private regions, and those refused with ENOMEM.
const C_BIG: usize = 7;
const C_BIG_ENOMEM: usize = 8;
/// Frames a copy monitor had to see on arrival.
const C_MON_CHECKS: usize = 9;
const NCOUNTERS: usize = 10;

impl Counters {
    fn new() -> Result<Counters, String> {
        // SAFETY: anonymous shared mapping of NCOUNTERS u64 values.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err("mmap of the counters failed".into());
        }
        Ok(Counters { ptr: p.cast() })
    }
    fn add(&self, i: usize, v: u64) {
        assert!(i < NCOUNTERS);
        // SAFETY: i < NCOUNTERS, inside the zeroed 4096-byte mapping that
        // lives until the process exits; AtomicU64 has u64's layout.
        unsafe { &*self.ptr.wrapping_add(i) }.fetch_add(v, Ordering::Relaxed);
    }
    fn get(&self, i: usize) -> u64 {
        assert!(i < NCOUNTERS);
        // SAFETY: as in `add`.
        unsafe { &*self.ptr.wrapping_add(i) }.load(Ordering::Relaxed)
    }
}

const NAMES: &[&str] = &[
    "nmst0",
    "nmsva",
    "nmsva^",
    "nmsvb",
    "valeS0:nmsva",
    "valeS1:nmsva^",
    "valeS0:nmst0",
    "valeS1:nmst1",
    "valeS0:a",
    "valeS0:b",
    "valeS0:c",
    "valeS1:a",
    "valeS1:b",
    "pS{1",
    "pS}1",
    "pS{2",
    "pS}2",
    "valeS0:a{x",
    "valeS0:a}x",
    "nosuch0",
    "vale-bad:x",
    "val",
    "pT{",
];

/// One NIOCCTRL with a random (often malformed) header and body.
fn random_ctrl(fd: &Fd, rng: &mut Rng) -> Result<(), i32> {
    let mut body = [0u8; 128];
    for b in body.iter_mut() {
        *b = rng.next() as u8;
    }
    // On the heap: the kernel reads (and writes back) the option.
    let mut opt = Box::new(NmreqOption::zeroed());
    opt.nro_reqtype = rng.below(8) as u32;
    opt.nro_size = rng.below(64);
    let mut h = NmreqHeader::new(rng.below(17) as u16, rng.pick(NAMES).as_bytes());
    if rng.below(8) == 0 {
        h.nr_version = rng.next() as u16;
    }
    h.nr_body = if rng.below(4) == 0 {
        0
    } else {
        body.as_mut_ptr() as u64
    };
    if rng.below(3) == 0 {
        let self_ptr = std::ptr::from_mut(&mut *opt) as u64;
        opt.nro_next = if rng.below(3) == 0 { self_ptr } else { 0 };
        h.nr_options = self_ptr;
    }
    if h.nr_reqtype == NETMAP_REQ_REGISTER {
        // Registering here would bind this scratch fd; the register path has
        // its own generator below.
        h.nr_reqtype = NETMAP_REQ_PORT_INFO_GET;
    }
    fd.ioctl_ptr(NIOCCTRL, &mut h)
}

/// Persistent ports churned by the clients (and removed at the end), and
/// a veth end they attach, detach and poll.
const PERSISTENT: &[&str] = &["nmst0", "nmst1", "nmsva"];

/// One persistent-port or attach request: NEWIF, DELIF, ATTACH (with or
/// without the host stack), DETACH, POLLING_ENABLE/DISABLE.
/// Returns the counter of an interface attach or polling enable that
/// succeeded.
fn persistent_op(fd: &Fd, rng: &mut Rng) -> Result<Option<usize>, i32> {
    let name = rng.pick(PERSISTENT);
    let nic = |c: usize| (name == "nmsva").then_some(c);
    let sw = if rng.below(2) == 0 {
        "valeS0"
    } else {
        "valeS1"
    };
    let full = format!("{sw}:{name}");
    match rng.below(6) {
        4 => {
            let mut b = NmreqValePolling {
                nr_mode: 1 + rng.below(2) as u32,
                nr_first_cpu_id: rng.below(2) as u32,
                nr_num_polling_cpus: rng.below(3) as u32,
                ..NmreqValePolling::zeroed()
            };
            let mut h = NmreqHeader::new(NETMAP_REQ_VALE_POLLING_ENABLE, full.as_bytes());
            h.nr_body = std::ptr::from_mut(&mut b) as u64;
            fd.ioctl_ptr(NIOCCTRL, &mut h).map(|_| nic(C_NIC_POLLS))
        }
        5 => polling_off(fd, &full).map(|_| None),
        0 => {
            // Sometimes a large region (held until DELIF).
            let mut b = NmreqValeNewif::zeroed();
            if rng.below(3) == 0 {
                b.nr_tx_rings = 1 + rng.below(16) as u16;
                b.nr_rx_rings = 1 + rng.below(16) as u16;
                b.nr_tx_slots = 1 << rng.below(13);
                b.nr_rx_slots = 1 << rng.below(13);
            }
            let mut h = NmreqHeader::new(NETMAP_REQ_VALE_NEWIF, name.as_bytes());
            h.nr_body = std::ptr::from_mut(&mut b) as u64;
            fd.ioctl_ptr(NIOCCTRL, &mut h).map(|_| None)
        }
        1 => delif(fd, name).map(|_| None),
        2 => {
            let mut b = NmreqValeAttach::zeroed();
            b.reg.nr_mode = if rng.below(2) == 0 {
                NR_REG_ALL_NIC
            } else {
                NR_REG_NIC_SW
            };
            let mut h = NmreqHeader::new(NETMAP_REQ_VALE_ATTACH, full.as_bytes());
            h.nr_body = std::ptr::from_mut(&mut b) as u64;
            fd.ioctl_ptr(NIOCCTRL, &mut h).map(|_| nic(C_NIC_ATTACHES))
        }
        _ => detach(fd, &full).map(|_| None),
    }
}

fn polling_off(fd: &Fd, full: &str) -> Result<(), i32> {
    let mut b = NmreqValePolling::zeroed();
    let mut h = NmreqHeader::new(NETMAP_REQ_VALE_POLLING_DISABLE, full.as_bytes());
    h.nr_body = std::ptr::from_mut(&mut b) as u64;
    fd.ioctl_ptr(NIOCCTRL, &mut h)
}

fn detach(fd: &Fd, full: &str) -> Result<(), i32> {
    let mut b = NmreqValeDetach::zeroed();
    let mut h = NmreqHeader::new(NETMAP_REQ_VALE_DETACH, full.as_bytes());
    h.nr_body = std::ptr::from_mut(&mut b) as u64;
    fd.ioctl_ptr(NIOCCTRL, &mut h)
}

fn delif(fd: &Fd, name: &str) -> Result<(), i32> {
    let mut h = NmreqHeader::new(NETMAP_REQ_VALE_DELIF, name.as_bytes());
    fd.ioctl_ptr(NIOCCTRL, &mut h)
}

fn random_reg(rng: &mut Rng) -> NmreqRegister {
    let modes = [
        NR_REG_ALL_NIC,
        NR_REG_ALL_NIC,
        NR_REG_ONE_NIC,
        NR_REG_SW,
        NR_REG_NULL,
        0,
        99,
    ];
    let flag_bits = [
        0,
        0,
        NR_EXCLUSIVE,
        NR_MONITOR_TX,
        NR_MONITOR_RX,
        NR_ZCOPY_MON,
        NR_RX_RINGS_ONLY,
        NR_TX_RINGS_ONLY,
        NR_ACCEPT_VNET_HDR,
    ];
    NmreqRegister {
        nr_mode: modes[rng.below(modes.len() as u64) as usize],
        nr_ringid: rng.below(3) as u16,
        nr_flags: flag_bits[rng.below(flag_bits.len() as u64) as usize],
        nr_tx_rings: rng.below(4) as u16,
        nr_rx_rings: rng.below(4) as u16,
        nr_tx_slots: [0, 64, 1024, 5000][rng.below(4) as usize],
        nr_rx_slots: [0, 128, 1024][rng.below(3) as usize],
        nr_extra_bufs: [0, 0, 3, 100][rng.below(4) as usize],
        nr_mem_id: [0, 0, 0, 1, 77][rng.below(5) as usize],
        ..all_nic()
    }
}

/// A VALE port (or pipe, or persistent port's switch side) asking for a
/// large private region: up to 16 rings of up to 4096 slots each way and
/// up to 524288 extra buffers (1.4 GB in all), the request of issue
/// "bounded kernel memory" that made the OOM killer fire.
fn big_reg(rng: &mut Rng) -> NmreqRegister {
    NmreqRegister {
        nr_tx_rings: 1 + rng.below(16) as u16,
        nr_rx_rings: 1 + rng.below(16) as u16,
        nr_tx_slots: 1 << rng.below(13),
        nr_rx_slots: 1 << rng.below(13),
        nr_extra_bufs: [0, 4096, 65536, 262144, 524288][rng.below(5) as usize],
        ..all_nic()
    }
}

const BIG_NAMES: &[&str] = &["valeS0:big", "valeS1:big", "valeS2:m", "pB{1", "valeS0:c{b"];

/// Scribble on a bound port's rings and sync.
fn hostile(p: &Port, rng: &mut Rng, c: &Counters) {
    for i in 0..2 {
        let ring = if i == 0 { p.tx(0) } else { p.rx(0) };
        let Ok(r) = ring else { continue };
        let n = r.num_slots();
        let pick = |rng: &mut Rng| match rng.below(4) {
            0 => rng.next() as u32,
            1 => n,
            _ => rng.below(n as u64) as u32,
        };
        r.poke(pick(rng), pick(rng), pick(rng));
        for _ in 0..rng.below(8) {
            let s = NetmapSlot {
                buf_idx: if rng.below(2) == 0 {
                    rng.next() as u32
                } else {
                    rng.below(4096) as u32
                },
                len: rng.next() as u16,
                flags: rng.next() as u16,
                ptr: rng.next(),
            };
            let _ = r.set_slot(rng.below(n as u64) as u32, s);
        }
    }
    let _ = p.txsync();
    let _ = p.rxsync();
    let _ = p.fd.poll(libc::POLLIN | libc::POLLOUT, 0);
    c.add(C_HOSTILE_SYNCS, 1);
}

/// A chaos client: runs until killed or `until`.
fn chaos(seed: u64, until: Instant, c: &Counters) -> Result<(), String> {
    let mut rng = Rng(seed | 1);
    let mut ports: Vec<Port> = Vec::new();
    // Large regions held open (bound files, not mapped).
    let mut big: Vec<Fd> = Vec::new();
    let scratch = Fd::open_netmap()?;
    while Instant::now() < until {
        match rng.below(12) {
            11 => {
                c.add(C_BIG, 1);
                match register(rng.pick(BIG_NAMES), big_reg(&mut rng)) {
                    Ok((fd, _)) => big.push(fd),
                    Err(libc::ENOMEM) => c.add(C_BIG_ENOMEM, 1),
                    Err(_) => {}
                }
                if big.len() > 2 {
                    big.remove(0);
                }
            }
            0..=2 => {
                let _ = random_ctrl(&scratch, &mut rng);
                c.add(C_REQUESTS, 1);
            }
            10 => {
                if let Ok(Some(counter)) = persistent_op(&scratch, &mut rng) {
                    c.add(counter, 1);
                }
                c.add(C_REQUESTS, 1);
            }
            3..=4 => {
                let name = rng.pick(NAMES);
                c.add(C_REGISTERS, 1);
                if let Ok(p) = Port::open_with(name, random_reg(&mut rng)) {
                    ports.push(p);
                }
                if ports.len() > 6 {
                    ports.remove(0);
                }
            }
            5..=7 => {
                if !ports.is_empty() {
                    let i = rng.below(ports.len() as u64) as usize;
                    hostile(&ports[i], &mut rng, c);
                }
            }
            8 => {
                if !ports.is_empty() {
                    let i = rng.below(ports.len() as u64) as usize;
                    let f = frame(
                        BCAST,
                        mac(0x77),
                        rng.next() as u32,
                        60 + rng.below(1400) as usize,
                    );
                    let _ = ports[i].send(&[f]);
                }
            }
            _ => {
                if !ports.is_empty() {
                    let i = rng.below(ports.len() as u64) as usize;
                    ports.swap_remove(i);
                }
            }
        }
    }
    Ok(())
}

/// A copy monitor of `name`'s RX rings.
fn mon_rx(name: &str) -> Result<Port, String> {
    Port::open_with(
        name,
        NmreqRegister {
            nr_flags: NR_MONITOR_RX,
            ..all_nic()
        },
    )
}

/// The duration of a run (`NM_STRESS_SECS`, default 15 s, at most an
/// hour); the runner gives the test that much time and a minute more.
pub fn stress_secs() -> u64 {
    std::env::var("NM_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15)
        .min(3600)
}

fn stress_random_clients() -> Result<(), String> {
    let seed: u64 = std::env::var("NM_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026);
    let secs = stress_secs();
    let c = Counters::new()?;
    let mut rng = Rng(seed);
    let oom0 = oom_kills()?;
    // An interface for the clients to attach, poll and open (its peer).
    let veth = crate::nic::Veth::new("nmsva", "nmsvb")?;
    // A clean pair on its own switch, checked at the end, with a copy
    // monitor of b's RX ring; a clean pipe whose receiving end has one too.
    let a = Port::open("valeK:a")?;
    let b = Port::open("valeK:b")?;
    let bmon = mon_rx("valeK:b")?;
    let pr = Port::open("pipeK{1")?;
    let pmon = mon_rx("pipeK{1")?;
    let ps = Port::open("pipeK}1")?;
    let end = Instant::now() + Duration::from_secs(secs);
    let mut kids: Vec<Child> = Vec::new();
    let mut sent = 0u32;
    while Instant::now() < end {
        while kids.len() < 4 {
            let s = rng.next();
            kids.push(spawn(move || chaos(s, end, &c))?);
        }
        std::thread::sleep(Duration::from_millis(50 + rng.below(300)));
        if rng.below(2) == 0 {
            let i = rng.below(kids.len() as u64) as usize;
            kids.swap_remove(i).kill9();
            c.add(C_KILLS, 1);
        }
        // The clean pair keeps working throughout; b's monitor sees each
        // frame on arrival, before b syncs.
        let f = frame(mac(0xb), mac(0xa), sent, 60);
        a.send(std::slice::from_ref(&f))
            .map_err(|e| format!("clean sender: {e}"))?;
        sent += 1;
        let seen = bmon.recv()?;
        ensure!(
            seen == [f.clone()],
            "round {sent}: the monitor of valeK:b saw {} frames on arrival, want 1",
            seen.len()
        );
        c.add(C_MON_CHECKS, 1);
        for g in b.recv()? {
            check_frame(&g, mac(0xa))?;
            c.add(C_FRAMES, 1);
        }
        // The pipe: the monitor before the receiving end syncs.
        let f = frame(mac(0xd), mac(0xc), sent, 60 + (sent % 1400) as usize);
        ensure!(
            ps.send(std::slice::from_ref(&f))? == 1,
            "clean pipe: no room"
        );
        ensure!(
            pmon.recv()? == [f.clone()],
            "round {sent}: the monitor of pipeK{{1 did not see the frame on arrival"
        );
        c.add(C_MON_CHECKS, 1);
        ensure!(pr.recv()? == [f], "round {sent}: pipeK{{1 lost the frame");
        pr.rxsync()?;
        // Memory: within the budget, and the OOM killer never ran.
        let (used, budget) = (stat("mem_used")?, stat("mem_budget")?);
        ensure!(used <= budget, "mem_used {used} above the budget {budget}");
        ensure!(
            oom_kills()? == oom0,
            "the OOM killer ran ({} kills)",
            oom_kills()? - oom0
        );
    }
    for k in kids {
        k.kill9();
        c.add(C_KILLS, 1);
    }
    for g in b.recv()? {
        check_frame(&g, mac(0xa))?;
        c.add(C_FRAMES, 1);
    }
    ensure!(
        c.get(C_FRAMES) == u64::from(sent),
        "clean pair: {} of {sent} frames arrived",
        c.get(C_FRAMES)
    );
    ensure!(oom_kills()? == oom0, "the OOM killer ran");
    // Persistent ports the clients left behind: detach and remove them.
    let fd = Fd::open_netmap()?;
    for name in PERSISTENT {
        // A port on both switches: the second attachment goes first, and
        // which one that is is not known here.
        for sw in ["valeS0", "valeS1", "valeS0"] {
            let _ = polling_off(&fd, &format!("{sw}:{name}"));
            let _ = detach(&fd, &format!("{sw}:{name}"));
        }
        match delif(&fd, name) {
            Ok(()) | Err(libc::ENXIO) => {}
            // The veth end: an interface, not a persistent port.
            Err(libc::EINVAL) if *name == "nmsva" => {}
            Err(e) => return Err(format!("DELIF {name} after stress: {}", errno_name(e))),
        }
    }
    drop(fd);
    // The veth end is the users' again.
    register("nmsva", all_nic()).map_err(|e| format!("nmsva after stress: {}", errno_name(e)))?;
    drop(veth);
    // Every name can still be registered and used once the chaos is over.
    let (_fd, _) = register("valeS0:a", all_nic())
        .map_err(|e| format!("valeS0:a after stress: {}", errno_name(e)))?;
    println!(
        "NOTE stress seed {seed:#x} {secs} s: {} requests ({} NIC attaches, {} polling enables), {} registers, {} large regions ({} ENOMEM), {} hostile syncs, {} kills, {} clean frames, {} monitor checks, 0 OOM kills",
        c.get(C_REQUESTS),
        c.get(C_NIC_ATTACHES),
        c.get(C_NIC_POLLS),
        c.get(C_REGISTERS),
        c.get(C_BIG),
        c.get(C_BIG_ENOMEM),
        c.get(C_HOSTILE_SYNCS),
        c.get(C_KILLS),
        c.get(C_FRAMES),
        c.get(C_MON_CHECKS)
    );
    Ok(())
}
