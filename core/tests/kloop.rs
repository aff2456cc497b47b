//! CSB mode and the sync kernel loop (§4.10) on the host platform: the
//! loop runs on a thread of its own (the application thread inside
//! SYNC_KLOOP_START), the test plays the application through the CSB in
//! simulated user memory, the ring slots and the buffers.

mod common;

use common::*;
use netmap_core::Errno;
use netmap_core::host::HostPlatform;
use netmap_core::netmap::NetmapPriv;
use netmap_uapi::pod::Pod;
use netmap_uapi::*;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

/// The application's side of a CSB of `n` entries in simulated user memory.
struct AppCsb {
    p: HostPlatform,
    atok: u64,
    ktoa: u64,
}

impl AppCsb {
    fn new(p: &HostPlatform, n: usize) -> Self {
        // user_map returns page-aligned addresses.
        AppCsb {
            p: p.clone(),
            atok: p.user_map(&vec![0xa5u8; 64 * n]),
            ktoa: p.user_map(&vec![0xa5u8; 64 * n]),
        }
    }
    fn atok(&self, i: u64) -> NmCsbAtok {
        NmCsbAtok::from_bytes(&self.p.user_read(self.atok + 64 * i, 64).unwrap()).unwrap()
    }
    fn ktoa(&self, i: u64) -> NmCsbKtoa {
        NmCsbKtoa::from_bytes(&self.p.user_read(self.ktoa + 64 * i, 64).unwrap()).unwrap()
    }
    fn put(&self, addr: u64, v: u32) {
        self.p.user_write(addr, &v.to_ne_bytes()).unwrap();
    }
    /// `nm_sync_kloop_appl_write`: cur first, then head.
    fn publish(&self, i: u64, head: u32) {
        self.put(self.atok + 64 * i + 4, head);
        self.put(self.atok + 64 * i, head);
    }
    fn set_app_need_kick(&self, i: u64, v: u32) {
        self.put(self.atok + 64 * i + 8, v);
    }
    /// Wait until `f(ktoa entry i)` holds.
    fn wait_ktoa(&self, i: u64, what: &str, f: impl Fn(&NmCsbKtoa) -> bool) -> NmCsbKtoa {
        let end = Instant::now() + T;
        loop {
            let k = self.ktoa(i);
            if f(&k) {
                return k;
            }
            assert!(Instant::now() < end, "timeout waiting for {what}: {k:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn opt_hdr(ty: u32, size: usize) -> NmreqOption {
    NmreqOption {
        nro_next: 0,
        nro_reqtype: ty,
        nro_status: 0,
        nro_size: size as u64,
    }
}

fn opt_csb(env: &Env, atok: u64, ktoa: u64) -> u64 {
    let o = NmreqOptCsb {
        nro_opt: opt_hdr(NETMAP_REQ_OPT_CSB, 40),
        csb_atok: atok,
        csb_ktoa: ktoa,
    };
    env.p.user_map(o.as_bytes())
}

fn opt_mode(env: &Env, mode: u32, next: u64) -> u64 {
    let mut o = NmreqOptSyncKloopMode {
        nro_opt: opt_hdr(NETMAP_REQ_OPT_SYNC_KLOOP_MODE, 32),
        mode,
        _pad0: 0,
    };
    o.nro_opt.nro_next = next;
    env.p.user_map(o.as_bytes())
}

/// The eventfds option with `pairs` (ioeventfd, irqfd); `size` overrides
/// `nro_size`.
fn opt_eventfds(env: &Env, pairs: &[(i32, i32)], size: Option<usize>, next: u64) -> u64 {
    let mut h = opt_hdr(
        NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS,
        size.unwrap_or(24 + 8 * pairs.len()),
    );
    h.nro_next = next;
    let mut v = h.as_bytes().to_vec();
    for &(kick, irq) in pairs {
        v.extend_from_slice(&kick.to_ne_bytes());
        v.extend_from_slice(&irq.to_ne_bytes());
    }
    env.p.user_map(&v)
}

fn opt_status(env: &Env, addr: u64) -> u32 {
    NmreqOption::from_bytes(&env.p.user_read(addr, 24).unwrap())
        .unwrap()
        .nro_status
}

fn reg_x() -> NmreqRegister {
    NmreqRegister {
        nr_mode: NR_REG_ALL_NIC,
        nr_flags: NR_EXCLUSIVE,
        ..NmreqRegister::zeroed()
    }
}

/// REGISTER `name` (exclusive) with the CSB option.
fn register_csb(
    env: &Env,
    np: &NetmapPriv<HostPlatform>,
    name: &str,
    csb: &AppCsb,
) -> NmreqRegister {
    let o = opt_csb(env, csb.atok, csb.ktoa);
    let mut reg = reg_x();
    env.ctrl_opts(np, NETMAP_REQ_REGISTER, name, Some(&mut reg), o)
        .unwrap_or_else(|e| panic!("register {name} with CSB: {e}"));
    assert_eq!(opt_status(env, o), 0);
    reg
}

/// A file of `env` registered on `name` with a CSB, as a [`Port`].
fn csb_port<'e>(env: &'e Env, name: &str, csb: &AppCsb) -> Port<'e> {
    let np = env.open();
    let reg = register_csb(env, &np, name, csb);
    Port::wrap(env, np, reg)
}

fn kloop_start(
    env: &Env,
    np: &NetmapPriv<HostPlatform>,
    sleep_us: u32,
    opts: u64,
) -> Result<(), Errno> {
    let mut st = NmreqSyncKloopStart { sleep_us, pad1: 0 };
    env.ctrl_opts(np, NETMAP_REQ_SYNC_KLOOP_START, "", Some(&mut st), opts)
        .map(|_| ())
}

fn kloop_stop(env: &Env, np: &NetmapPriv<HostPlatform>) -> Result<(), Errno> {
    env.ctrl::<NmreqSyncKloopStart>(np, NETMAP_REQ_SYNC_KLOOP_STOP, "", None)
        .map(|_| ())
}

/// Wait until a loop runs on `np`.
fn wait_running(np: &NetmapPriv<HostPlatform>) {
    let end = Instant::now() + T;
    while !np.kloop_running() {
        assert!(Instant::now() < end, "the loop did not start");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Fill TX ring slots [from, to) of `port` with frames tagged `tag0..`.
fn fill_tx(port: &Port<'_>, from: u32, count: u32, tag0: u32) -> u32 {
    let r = port.tx_ring(0).unwrap();
    let n = r.num_slots();
    let mut i = from;
    for t in 0..count {
        let f = frame([2; 6], [1; 6], tag0 + t, 60);
        let s = r.slot(i);
        let b = port.buf(&r, s.buf_idx);
        // SAFETY: the buffer holds nr_buf_size >= 60 bytes; the slot is the
        // application's ([head, tail) of the TX ring).
        unsafe { std::ptr::copy_nonoverlapping(f.as_ptr(), b, f.len()) };
        r.set_slot(i, NetmapSlot { len: 60, ..s });
        i = next(i, n);
    }
    i
}

/// Tags of the RX slots [from, to) of `port`.
fn rx_tags(port: &Port<'_>, from: u32, to: u32) -> Vec<u32> {
    let r = port.rx_ring(0).unwrap();
    let mut v = Vec::new();
    let mut i = from;
    while i != to {
        let s = r.slot(i);
        let b = port.buf(&r, s.buf_idx);
        let mut f = [0u8; 18];
        // SAFETY: slots in [head, tail) hold frames of >= 18 bytes here.
        unsafe { std::ptr::copy_nonoverlapping(b, f.as_mut_ptr(), 18) };
        v.push(u32::from_be_bytes([f[14], f[15], f[16], f[17]]));
        i = next(i, r.num_slots());
    }
    v
}

#[test]
fn csb_register_checks_and_initial_contents() {
    let env = Env::new();
    let base = env.nm.stats();
    // Without NR_EXCLUSIVE: EINVAL, status EINVAL, nothing bound.
    let csb = AppCsb::new(&env.p, 2);
    let np = env.open();
    let o = opt_csb(&env, csb.atok, csb.ktoa);
    let mut reg = NmreqRegister {
        nr_mode: NR_REG_ALL_NIC,
        ..NmreqRegister::zeroed()
    };
    let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut reg), o);
    assert_eq!(r.unwrap_err(), Errno::EINVAL);
    assert_eq!(opt_status(&env, o), Errno::EINVAL.0 as u32);
    assert!(np.binding().is_none());
    // Misaligned arrays: EINVAL.
    for (a, k) in [(csb.atok + 4, csb.ktoa), (csb.atok, csb.ktoa + 32)] {
        let o = opt_csb(&env, a, k);
        let mut reg = reg_x();
        let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut reg), o);
        assert_eq!(r.unwrap_err(), Errno::EINVAL);
        assert_eq!(opt_status(&env, o), Errno::EINVAL.0 as u32);
    }
    // Unmapped or too short arrays: EFAULT.
    let short = env.p.user_map(&[0u8; 64]);
    for (a, k) in [
        (0x7000_0000_0000, csb.ktoa),
        (csb.atok, 0x7000_0000_0000),
        (short, csb.ktoa),
        (csb.atok, short),
        (!63, csb.ktoa),
    ] {
        let o = opt_csb(&env, a, k);
        let mut reg = reg_x();
        let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut reg), o);
        assert_eq!(r.unwrap_err(), Errno::EFAULT, "atok {a:#x} ktoa {k:#x}");
        assert_eq!(opt_status(&env, o), Errno::EFAULT.0 as u32);
        assert!(np.binding().is_none());
    }
    assert_eq!(env.nm.stats(), base);
    // A good CSB: the entries are initialized from the rings.
    register_csb(&env, &np, "vale0:a", &csb);
    assert!(np.csb_mode());
    let b = np.binding().unwrap();
    let n = b.na.cfg.slots[1];
    let tx = csb.atok(0);
    assert_eq!(
        (tx.head, tx.cur, tx.appl_need_kick, tx.sync_flags),
        (0, 0, 1, 1)
    );
    assert_eq!(tx.pad, [0xa5a5_a5a5; 12], "atok padding is left alone");
    let k = csb.ktoa(0);
    assert_eq!((k.hwcur, k.hwtail, k.kern_need_kick), (0, n - 1, 1));
    assert_eq!(k.pad, [0; 13], "the ktoa array is cleared");
    let k = csb.ktoa(1);
    assert_eq!((k.hwcur, k.hwtail, k.kern_need_kick), (0, 0, 1));
    // CSB mode: the sync ioctls are refused, poll reports an error.
    assert_eq!(env.txsync(&np), Err(Errno::EBUSY));
    assert_eq!(env.rxsync(&np), Err(Errno::EBUSY));
    assert_eq!(env.nm.poll(&np, POLLIN | POLLOUT, &mut |_| {}), POLLERR);
    env.nm.release(np);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn csb_enable_request() {
    let env = Env::new();
    let csb = AppCsb::new(&env.p, 2);
    let np = env.open();
    // The option is mandatory.
    let r = env.ctrl::<NmreqSyncKloopStart>(&np, NETMAP_REQ_CSB_ENABLE, "", None);
    assert_eq!(r.unwrap_err(), Errno::EINVAL);
    // An unbound file binds no ring: nothing to do.
    let o = opt_csb(&env, csb.atok, csb.ktoa);
    env.ctrl_opts::<NmreqSyncKloopStart>(&np, NETMAP_REQ_CSB_ENABLE, "", None, o)
        .unwrap();
    assert_eq!(opt_status(&env, o), 0);
    assert!(!np.csb_mode());
    // A shared binding cannot use a CSB.
    env.register(&np, "vale0:a", NR_REG_ALL_NIC, 0).unwrap();
    let o = opt_csb(&env, csb.atok, csb.ktoa);
    let r = env.ctrl_opts::<NmreqSyncKloopStart>(&np, NETMAP_REQ_CSB_ENABLE, "", None, o);
    assert_eq!(r.unwrap_err(), Errno::EINVAL);
    assert_eq!(opt_status(&env, o), Errno::EINVAL.0 as u32);
    assert!(!np.csb_mode());
    env.nm.release(np);
    // An exclusive one can, after some syncs: the CSB starts from the
    // rings' current state.
    let port = env.port_with("vale0:b", reg_x());
    let other = env.port("vale0:c");
    assert_eq!(port.send(&[&frame([9; 6], [8; 6], 1, 60)]), 1);
    assert_eq!(other.send(&[&frame([8; 6], [9; 6], 2, 60)]), 1);
    port.rxsync().unwrap();
    let o = opt_csb(&env, csb.atok, csb.ktoa);
    env.ctrl_opts::<NmreqSyncKloopStart>(port.np(), NETMAP_REQ_CSB_ENABLE, "", None, o)
        .unwrap();
    assert!(port.np().csb_mode());
    let (a, k) = (csb.atok(0), csb.ktoa(0));
    assert_eq!((a.head, a.cur, k.hwcur), (1, 1, 1));
    let (a, k) = (csb.atok(1), csb.ktoa(1));
    assert_eq!((a.head, a.cur, k.hwcur, k.hwtail), (0, 0, 0, 1));
    assert_eq!(port.txsync(), Err(Errno::EBUSY));
}

#[test]
fn csb_on_a_port_without_rings_is_ignored() {
    let env = Env::new();
    let np = env.open();
    let csb = AppCsb::new(&env.p, 1);
    let o = opt_csb(&env, csb.atok, csb.ktoa);
    // A null port with no rings, in the global region.
    let mut reg = NmreqRegister {
        nr_mode: NR_REG_NULL,
        nr_flags: NR_EXCLUSIVE,
        nr_mem_id: 1,
        ..NmreqRegister::zeroed()
    };
    env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "x", Some(&mut reg), o)
        .unwrap();
    assert_eq!(opt_status(&env, o), 0);
    assert!(!np.csb_mode());
    assert_eq!(csb.ktoa(0).hwcur, 0xa5a5_a5a5, "CSB untouched");
    env.nm.release(np);
}

#[test]
fn kloop_start_and_stop_errors() {
    let env = Env::new();
    let np = env.open();
    // Checked before anything else.
    assert_eq!(kloop_start(&env, &np, 1_000_001, 0), Err(Errno::EINVAL));
    assert_eq!(kloop_start(&env, &np, 0, 0), Err(Errno::ENXIO));
    assert_eq!(kloop_stop(&env, &np), Err(Errno::ENXIO));
    env.register(&np, "vale0:a", NR_REG_ALL_NIC, NR_EXCLUSIVE)
        .unwrap();
    // Not in CSB mode.
    assert_eq!(kloop_start(&env, &np, 0, 0), Err(Errno::EINVAL));
    env.nm.release(np);

    let np = env.open();
    let csb = AppCsb::new(&env.p, 2);
    register_csb(&env, &np, "vale0:a", &csb);
    // Bad mode bits.
    let m = opt_mode(&env, 0x4, 0);
    assert_eq!(kloop_start(&env, &np, 0, m), Err(Errno::EINVAL));
    assert_eq!(opt_status(&env, m), Errno::EINVAL.0 as u32);
    // Direct modes need ioeventfds.
    let m = opt_mode(&env, NM_OPT_SYNC_KLOOP_DIRECT_TX, 0);
    assert_eq!(kloop_start(&env, &np, 0, m), Err(Errno::EINVAL));
    assert_eq!(opt_status(&env, m), Errno::EINVAL.0 as u32);
    let e = opt_eventfds(&env, &[(-1, -1), (-1, -1)], None, 0);
    let m = opt_mode(&env, NM_OPT_SYNC_KLOOP_DIRECT_RX, e);
    assert_eq!(kloop_start(&env, &np, 0, m), Err(Errno::EINVAL));
    assert_eq!(opt_status(&env, e), Errno::EINVAL.0 as u32);
    // One entry per bound ring, exactly.
    for (pairs, size) in [
        (&[(-1, -1)][..], None),
        (&[(-1, -1), (-1, -1), (-1, -1)][..], None),
        (&[(-1, -1), (-1, -1)][..], Some(36)),
    ] {
        let e = opt_eventfds(&env, pairs, size, 0);
        assert_eq!(kloop_start(&env, &np, 0, e), Err(Errno::EINVAL));
        assert_eq!(opt_status(&env, e), Errno::EINVAL.0 as u32);
    }
    // Descriptors that are not eventfds.
    let good = env.p.eventfd_create();
    for pairs in [[(good, 999), (good, -1)], [(999, -1), (good, -1)]] {
        let e = opt_eventfds(&env, &pairs, None, 0);
        assert_eq!(kloop_start(&env, &np, 0, e), Err(Errno::EBADF));
        assert_eq!(opt_status(&env, e), Errno::EBADF.0 as u32);
    }
    // A STOP with no loop running returns at once, and makes the next
    // START return at once too (it may have overtaken that START).
    kloop_stop(&env, &np).unwrap();
    kloop_start(&env, &np, 1_000_000, 0).unwrap();
    env.nm.release(np);
}

/// The application of the tests below: `port` (vale0:a) in CSB mode
/// served by a loop, `peer` (vale0:b) a normal port; `fds`: the
/// (ioeventfd, irqfd) pairs of the TX and RX rings in eventfd mode.
fn exchange(env: &Env, port: &Port<'_>, csb: &AppCsb, peer: &Port<'_>, fds: Option<&[(i32, i32)]>) {
    let n = port.np().binding().unwrap().na.cfg.slots[1];
    let kick = |i: usize| {
        if let Some(fds) = fds
            && csb.ktoa(i as u64).kern_need_kick != 0
        {
            env.p.eventfd_write(fds[i].0, 1);
        }
    };
    // TX: frames queued through the CSB reach the peer.
    let head = fill_tx(port, 0, 10, 100);
    csb.publish(0, head);
    kick(0);
    let k = csb.wait_ktoa(0, "tx hwcur", |k| k.hwcur == head);
    assert_eq!(
        k.hwtail,
        prev(head, n),
        "VALE: the whole ring is free again"
    );
    let end = Instant::now() + T;
    let got = loop {
        let got = peer.recv();
        if !got.is_empty() || Instant::now() > end {
            break got;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let tags: Vec<u32> = got
        .iter()
        .map(|f| u32::from_be_bytes([f[14], f[15], f[16], f[17]]))
        .collect();
    assert_eq!(tags, (100..110).collect::<Vec<_>>());
    // RX: frames from the peer show up in ktoa.hwtail, and the irqfd is
    // signalled (appl_need_kick is 1 since the CSB was set up).
    let f: Vec<Vec<u8>> = (0..7).map(|t| frame([1; 6], [2; 6], 200 + t, 60)).collect();
    let refs: Vec<&[u8]> = f.iter().map(|v| &v[..]).collect();
    assert_eq!(peer.send(&refs), 7);
    if let Some(fds) = fds {
        assert_ne!(env.p.eventfd_wait(fds[1].1, T), Some(0), "RX irqfd");
    }
    let k = csb.wait_ktoa(1, "rx hwtail", |k| k.hwtail == 7);
    assert_eq!(
        rx_tags(port, k.hwcur, k.hwtail),
        (200..207).collect::<Vec<_>>()
    );
    // Released slots come back: hwcur follows head.
    csb.publish(1, 7);
    if let Some(fds) = fds {
        // The loop does not need this kick (it wants kicks only when the
        // application holds every slot), but nothing else would wake it.
        env.p.eventfd_write(fds[1].0, 1);
    }
    csb.wait_ktoa(1, "rx hwcur", |k| k.hwcur == 7);
}

#[test]
fn kloop_sleep_mode_moves_frames_between_vale_ports() {
    let env = Env::new();
    let base = env.nm.stats();
    let csb = AppCsb::new(&env.p, 2);
    let port = csb_port(&env, "vale0:a", &csb);
    let peer = env.port("vale0:b");
    std::thread::scope(|s| {
        let h = s.spawn(|| kloop_start(&env, port.np(), 100, 0));
        wait_running(port.np());
        exchange(&env, &port, &csb, &peer, None);
        // Sleep mode never asks for kicks once the loop runs.
        assert_eq!(csb.ktoa(0).kern_need_kick, 0);
        kloop_stop(&env, port.np()).unwrap();
        assert_eq!(h.join().unwrap(), Ok(()));
    });
    // Another START after a STOP runs again.
    std::thread::scope(|s| {
        let h = s.spawn(|| kloop_start(&env, port.np(), 1000, 0));
        wait_running(port.np());
        kloop_stop(&env, port.np()).unwrap();
        assert_eq!(h.join().unwrap(), Ok(()));
    });
    drop((port, peer));
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn kloop_eventfd_mode_kicks_and_interrupts() {
    let env = Env::new();
    let csb = AppCsb::new(&env.p, 2);
    let port = csb_port(&env, "vale0:a", &csb);
    let peer = env.port("vale0:b");
    let fds: Vec<(i32, i32)> = (0..2)
        .map(|_| (env.p.eventfd_create(), env.p.eventfd_create()))
        .collect();
    let opt = opt_eventfds(&env, &fds, None, 0);
    let wq = port.wq(netmap_core::kring::Dir::Rx);
    std::thread::scope(|s| {
        let h = s.spawn(|| kloop_start(&env, port.np(), 0, opt));
        wait_running(port.np());
        assert_eq!(opt_status(&env, opt), 0);
        assert_eq!(wq.watch_count(), 1, "the loop watches the RX ring");
        // Idle with nothing queued: TX asks for kicks; RX does not need
        // any until the application holds every slot.
        csb.wait_ktoa(1, "rx served", |k| k.kern_need_kick == 0);
        csb.wait_ktoa(0, "tx kicks", |k| k.kern_need_kick == 1);
        exchange(&env, &port, &csb, &peer, Some(&fds));
        // Without appl_need_kick the irqfd stays quiet.
        env.p.eventfd_read(fds[1].1);
        csb.set_app_need_kick(1, 0);
        assert_eq!(peer.send(&[&frame([1; 6], [2; 6], 300, 60)]), 1);
        csb.wait_ktoa(1, "rx hwtail", |k| k.hwtail == 8);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(env.p.eventfd_read(fds[1].1), Some(0));
        kloop_stop(&env, port.np()).unwrap();
        assert_eq!(h.join().unwrap(), Ok(()));
    });
    assert_eq!(wq.watch_count(), 0, "watches removed when the loop ends");
    // A signal ends the loop with EINTR; the eventfd references are held
    // by the loop even if the application closed the descriptors.
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            let r = kloop_start(&env, port.np(), 0, opt);
            (std::thread::current().id(), r)
        });
        wait_running(port.np());
        for &(a, b) in &fds {
            env.p.eventfd_close(a);
            env.p.eventfd_close(b);
        }
        env.p.signal_thread(h.thread().id());
        let (_, r) = h.join().unwrap();
        assert_eq!(r, Err(Errno::EINTR));
    });
    assert_eq!(wq.watch_count(), 0);
    // The file is usable again (a new loop may start).
    assert_eq!(kloop_start(&env, port.np(), 0, opt), Err(Errno::EBADF));
}

#[test]
fn kloop_direct_mode() {
    let env = Env::new();
    let csb = AppCsb::new(&env.p, 2);
    let port = csb_port(&env, "vale0:a", &csb);
    let peer = env.port("vale0:b");
    let fds: Vec<(i32, i32)> = (0..2)
        .map(|_| (env.p.eventfd_create(), env.p.eventfd_create()))
        .collect();
    let e = opt_eventfds(&env, &fds, None, 0);
    let m = opt_mode(
        &env,
        NM_OPT_SYNC_KLOOP_DIRECT_TX | NM_OPT_SYNC_KLOOP_DIRECT_RX,
        e,
    );
    std::thread::scope(|s| {
        let h = s.spawn(|| kloop_start(&env, port.np(), 0, m));
        wait_running(port.np());
        assert_eq!((opt_status(&env, m), opt_status(&env, e)), (0, 0));
        // TX is served only when kicked.
        let head = fill_tx(&port, 0, 3, 10);
        csb.publish(0, head);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(csb.ktoa(0).hwcur, 0, "no kick, no transmission");
        assert_eq!(csb.ktoa(0).kern_need_kick, 1, "direct: kicks always wanted");
        env.p.eventfd_write(fds[0].0, 1);
        csb.wait_ktoa(0, "tx hwcur", |k| k.hwcur == head);
        assert_eq!(peer.recv().len(), 3);
        // RX: a frame for the port signals its irqfd at once; the ring is
        // synced when the application kicks it.
        env.p.eventfd_read(fds[1].1);
        assert_eq!(peer.send(&[&frame([1; 6], [2; 6], 5, 60)]), 1);
        assert_ne!(env.p.eventfd_wait(fds[1].1, T), Some(0));
        assert_eq!(csb.ktoa(1).hwtail, 0);
        env.p.eventfd_write(fds[1].0, 1);
        let k = csb.wait_ktoa(1, "rx hwtail", |k| k.hwtail == 1);
        assert_eq!(rx_tags(&port, k.hwcur, k.hwtail), vec![5]);
        kloop_stop(&env, port.np()).unwrap();
        assert_eq!(h.join().unwrap(), Ok(()));
    });
}

#[test]
fn kloop_busy_and_concurrency() {
    let env = Env::new();
    let csb = AppCsb::new(&env.p, 2);
    let port = csb_port(&env, "vale0:a", &csb);
    // Of two STARTs racing, exactly one runs; the other answers EBUSY.
    std::thread::scope(|s| {
        let a = s.spawn(|| kloop_start(&env, port.np(), 10, 0));
        let b = s.spawn(|| kloop_start(&env, port.np(), 10, 0));
        let end = Instant::now() + T;
        while !(port.np().kloop_running() && (a.is_finished() || b.is_finished())) {
            assert!(Instant::now() < end, "no loop, or two loops");
            std::thread::sleep(Duration::from_millis(1));
        }
        // One loop per file; the CSB cannot change under it.
        assert_eq!(kloop_start(&env, port.np(), 10, 0), Err(Errno::EBUSY));
        let o = opt_csb(&env, csb.atok, csb.ktoa);
        let r = env.ctrl_opts::<NmreqSyncKloopStart>(port.np(), NETMAP_REQ_CSB_ENABLE, "", None, o);
        assert_eq!(r.unwrap_err(), Errno::EBUSY);
        assert_eq!(opt_status(&env, o), Errno::EBUSY.0 as u32);
        kloop_stop(&env, port.np()).unwrap();
        let mut r = [a.join().unwrap(), b.join().unwrap()];
        r.sort_by_key(|r| r.is_err());
        assert_eq!(r, [Ok(()), Err(Errno::EBUSY)]);
    });
    // Two STOPs at once: both return once the loop has ended. (The later
    // one may find no loop any more; it then cancels the next START.)
    std::thread::scope(|s| {
        let h = s.spawn(|| kloop_start(&env, port.np(), 10, 0));
        wait_running(port.np());
        std::thread::scope(|s2| {
            let a = s2.spawn(|| kloop_stop(&env, port.np()));
            let b = s2.spawn(|| kloop_stop(&env, port.np()));
            assert_eq!(a.join().unwrap(), Ok(()));
            assert_eq!(b.join().unwrap(), Ok(()));
        });
        assert_eq!(h.join().unwrap(), Ok(()));
        assert!(!port.np().kloop_running());
    });
}

#[test]
fn kloop_ends_with_efault_when_the_csb_goes() {
    let env = Env::new();
    let csb = AppCsb::new(&env.p, 2);
    let port = csb_port(&env, "vale0:a", &csb);
    std::thread::scope(|s| {
        let h = s.spawn(|| kloop_start(&env, port.np(), 50, 0));
        wait_running(port.np());
        env.p.user_poison(csb.atok + 64);
        assert_eq!(h.join().unwrap(), Err(Errno::EFAULT));
    });
}

#[test]
fn kloop_bad_application_pointers_reinit_the_ring() {
    let env = Env::new();
    let csb = AppCsb::new(&env.p, 2);
    let port = csb_port(&env, "vale0:a", &csb);
    let peer = env.port("vale0:b");
    let n = port.np().binding().unwrap().na.cfg.slots[1];
    std::thread::scope(|s| {
        let h = s.spawn(|| kloop_start(&env, port.np(), 50, 0));
        wait_running(port.np());
        // A head beyond the ring, then a head past the kernel's tail: the
        // ring is not synced (nothing sent), the loop goes on.
        for bad in [n + 5, u32::MAX] {
            csb.publish(0, bad);
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(csb.ktoa(0).hwcur, 0);
        }
        // Bad buffer indexes in slots are repaired by the reinit.
        let r = port.tx_ring(0).unwrap();
        r.set_slot(
            3,
            NetmapSlot {
                buf_idx: 1,
                len: 60,
                flags: 0,
                ptr: 0,
            },
        );
        csb.publish(0, n);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(r.slot(3).buf_idx, 0);
        // A good head works again.
        let head = fill_tx(&port, 0, 2, 7);
        csb.publish(0, head);
        csb.wait_ktoa(0, "tx hwcur", |k| k.hwcur == head);
        assert_eq!(peer.recv().len(), 2);
        kloop_stop(&env, port.np()).unwrap();
        assert_eq!(h.join().unwrap(), Ok(()));
    });
}
