//! CSB mode and the sync kernel loop (spec §4.10): traffic between two VALE
//! ports where one is served by a loop (sleeping between passes, driven by
//! eventfds, direct modes), the loop of a SIGKILLed process, STOP from
//! another descriptor of the same file and from another process, and the
//! errors. The CSB side uses `netmap_uapi::user` (`Port::enable_csb`,
//! `Port::sync_kloop`), whose code these tests exercise as well.

use crate::port::{check_frame, frame, mac};
use crate::proc::{Signal, spawn};
use crate::sys::{errno, errno_name};
use crate::{Test, ensure};
use netmap_uapi::user::{Error, KloopConfig, PollFlags, Port};
use netmap_uapi::*;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

pub const TESTS: &[Test] = &[
    ("kloop_sleep_vale", kloop_sleep_vale),
    ("kloop_eventfd_vale", kloop_eventfd_vale),
    ("kloop_direct_vale", kloop_direct_vale),
    ("kloop_sigkill", kloop_sigkill),
    ("kloop_stop_from_other_fd", kloop_stop_from_other_fd),
    ("kloop_errors", kloop_errors),
];

const FRAMES: u32 = 3000;
/// Frames in flight at most: VALE drops what does not fit in the receiving
/// ring (1024 slots), and the loop returns released slots one pass late.
const WINDOW: u32 = 400;

fn err_s(e: Error) -> String {
    e.to_string()
}

fn errno_of(e: &Error) -> i32 {
    match e {
        Error::Os { errno, .. } => *errno,
        _ => 0,
    }
}

/// An exclusive port of `sw` in CSB mode.
fn csb_port(name: &str, eventfds: bool) -> Result<Port, String> {
    let mut p = Port::builder(name)
        .flags(RegFlags::EXCLUSIVE)
        .open()
        .map_err(err_s)?;
    p.enable_csb(eventfds).map_err(err_s)?;
    Ok(p)
}

/// NIOCCTRL CSB_ENABLE with a misaligned CSB on `fd`: EBUSY while a loop
/// runs, else EINVAL with no effect (a probe without side effects).
fn loop_running(fd: i32) -> Result<bool, String> {
    let mut o = NmreqOptCsb {
        nro_opt: NmreqOption {
            nro_reqtype: NETMAP_REQ_OPT_CSB,
            nro_size: 40,
            ..Default::default()
        },
        csb_atok: 8,
        csb_ktoa: 8,
    };
    match ctrl_raw(
        fd,
        NETMAP_REQ_CSB_ENABLE,
        &mut [],
        &mut o as *mut NmreqOptCsb as u64,
    ) {
        Err(libc::EBUSY) => Ok(true),
        Err(libc::EINVAL) => Ok(false),
        r => Err(format!("CSB_ENABLE probe: {r:?}")),
    }
}

/// Waits until the loop of `p` runs.
fn wait_running(p: &Port) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(10);
    while !loop_running(p.as_raw_fd())? {
        ensure!(Instant::now() < end, "the loop did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// `a` (CSB mode, served by a loop) sends FRAMES frames to `b` and `b`
/// sends FRAMES back; payloads are checked on both sides. `wait` waits for
/// the loop's signal (eventfd mode) or sleeps.
fn exchange(a: &Port, b: &Port, eventfds: bool) -> Result<(), String> {
    let wait = |what: PollFlags| -> Result<(), String> {
        if eventfds {
            a.csb_wait(what, Some(Duration::from_millis(100)))
                .map_err(err_s)?;
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    // a -> b, with b draining as it goes.
    let (mut sent, mut got) = (0u32, 0u32);
    while got < FRAMES {
        ensure!(
            Instant::now() < deadline,
            "a -> b: {got} of {FRAMES} frames received ({sent} sent)"
        );
        if sent < FRAMES {
            let mut tx = a.tx_ring(0);
            while sent < FRAMES
                && sent - got < WINDOW
                && tx
                    .send(&frame(mac(2), mac(1), sent, 60 + sent as usize % 200))
                    .is_ok()
            {
                sent += 1;
            }
            drop(tx);
            a.csb_sync_tx().map_err(err_s)?;
        }
        b.poll(PollFlags::IN, Some(Duration::from_millis(5)))
            .map_err(err_s)?;
        let mut rx = b.rx_ring(0);
        while let Some(p) = rx.recv() {
            let seq = check_frame(p.data(), mac(1))?;
            ensure!(seq == got, "a -> b: frame {seq} where {got} was expected");
            ensure!(
                p.len() == 60 + seq as usize % 200,
                "a -> b: frame {seq} has {} bytes",
                p.len()
            );
            got += 1;
        }
        drop(rx);
        if sent < FRAMES && a.tx_ring(0).space() == 0 {
            wait(PollFlags::OUT)?;
        }
    }
    // b -> a, a draining through the CSB.
    let (mut sent, mut got) = (0u32, 0u32);
    while got < FRAMES {
        ensure!(
            Instant::now() < deadline,
            "b -> a: {got} of {FRAMES} frames received ({sent} sent)"
        );
        if sent < FRAMES {
            let mut tx = b.tx_ring(0);
            while sent < FRAMES
                && sent - got < WINDOW
                && tx.send(&frame(mac(1), mac(2), sent, 60)).is_ok()
            {
                sent += 1;
            }
            drop(tx);
            b.sync_tx().map_err(err_s)?;
        }
        a.csb_sync_rx().map_err(err_s)?;
        let mut rx = a.rx_ring(0);
        let mut n = 0;
        while let Some(p) = rx.recv() {
            let seq = check_frame(p.data(), mac(2))?;
            ensure!(seq == got, "b -> a: frame {seq} where {got} was expected");
            got += 1;
            n += 1;
        }
        drop(rx);
        // Give the released slots back.
        a.csb_sync_rx().map_err(err_s)?;
        if n == 0 {
            wait(PollFlags::IN)?;
        }
    }
    Ok(())
}

/// Runs `exchange` with a loop configured by `cfg` on vale port `sw:a`.
fn loop_traffic(sw: &str, eventfds: bool, cfg: KloopConfig) -> Result<(), String> {
    let a = csb_port(&format!("{sw}:a"), eventfds)?;
    let b = Port::open(&format!("{sw}:b")).map_err(err_s)?;
    std::thread::scope(|s| {
        let kloop = s.spawn(|| a.sync_kloop(&cfg));
        let r = wait_running(&a).and_then(|()| exchange(&a, &b, eventfds));
        let stop = a.sync_kloop_stop();
        let ended = kloop
            .join()
            .map_err(|_| "kloop thread panicked".to_string())?;
        r?;
        stop.map_err(err_s)?;
        ended.map_err(|e| format!("the loop ended with {e}"))
    })
}

/// A loop that sleeps 100 µs between passes moves traffic both ways.
fn kloop_sleep_vale() -> Result<(), String> {
    let cfg = KloopConfig {
        sleep_us: 100,
        mode: SyncKloopMode::empty(),
    };
    loop_traffic("vale20", false, cfg)
}

/// A loop woken by the application's ioeventfds and the ports' wait
/// queues, signalling irqfds.
fn kloop_eventfd_vale() -> Result<(), String> {
    loop_traffic("vale21", true, KloopConfig::default())
}

/// Direct modes: rings served only when kicked, irqfds on port events.
fn kloop_direct_vale() -> Result<(), String> {
    let cfg = KloopConfig {
        sleep_us: 0,
        mode: SyncKloopMode::DIRECT_TX | SyncKloopMode::DIRECT_RX,
    };
    loop_traffic("vale22", true, cfg)
}

/// A process killed while its thread runs a loop (sleeping or waiting for
/// eventfds) dies at once, and its port goes away (the reference's loop
/// survives SIGKILL).
fn kloop_sigkill() -> Result<(), String> {
    for (i, eventfds) in [(0, false), (1, true)] {
        let name = format!("vale23:k{i}");
        let ready = Signal::new()?;
        let child = spawn(|| {
            let p = csb_port(&name, eventfds)?;
            std::thread::scope(|s| {
                s.spawn(|| {
                    let _ = p.sync_kloop(&KloopConfig {
                        sleep_us: 1_000_000,
                        mode: SyncKloopMode::empty(),
                    });
                });
                if wait_running(&p).is_ok() {
                    ready.notify();
                }
                std::thread::sleep(Duration::from_secs(60));
            });
            Ok(())
        })?;
        ready.wait(10_000)?;
        let pid = child.pid;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let t = Instant::now();
        loop {
            let mut status = 0;
            // SAFETY: polling our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                ensure!(
                    libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
                    "child status {status:#x}"
                );
                break;
            }
            ensure!(
                t.elapsed() < Duration::from_secs(10),
                "a process in SYNC_KLOOP_START survived SIGKILL for {:?} (eventfds {eventfds})",
                t.elapsed()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        std::mem::forget(child); // reaped above
        // The killed process's file is closed: the port can be bound
        // exclusively again.
        let p = csb_port(&name, false)?;
        drop(p);
    }
    Ok(())
}

/// STOP through a dup()ed descriptor and from another process sharing the
/// open file end the loop; the loop's file then closes cleanly.
fn kloop_stop_from_other_fd() -> Result<(), String> {
    let a = csb_port("vale24:a", true)?;
    // SAFETY: dup of an open descriptor we own; the copy is closed below.
    let dup = unsafe { libc::dup(a.as_raw_fd()) };
    ensure!(dup >= 0, "dup: {}", errno_name(errno()));
    let stop_raw = |fd: i32| -> Result<(), i32> {
        let mut h = NmreqHeader::new(NETMAP_REQ_SYNC_KLOOP_STOP, b"");
        // SAFETY: NIOCCTRL on a header we own, no body, no options.
        let r = unsafe { libc::ioctl(fd, NIOCCTRL as _, &mut h as *mut NmreqHeader) };
        if r < 0 { Err(errno()) } else { Ok(()) }
    };
    // The child inherits the descriptor before any thread exists.
    let go = Signal::new()?;
    let child = spawn(|| {
        go.wait(30_000)?;
        stop_raw(dup).map_err(|e| format!("STOP from the child: {}", errno_name(e)))
    })?;
    let r = std::thread::scope(|s| -> Result<(), String> {
        let k = s.spawn(|| a.sync_kloop(&KloopConfig::default()));
        wait_running(&a)?;
        stop_raw(dup).map_err(|e| format!("STOP on the dup: {}", errno_name(e)))?;
        k.join()
            .map_err(|_| "kloop thread panicked".to_string())?
            .map_err(err_s)?;
        let k = s.spawn(|| a.sync_kloop(&KloopConfig::default()));
        wait_running(&a)?;
        go.notify();
        let t = Instant::now();
        let r = k.join().map_err(|_| "kloop thread panicked".to_string())?;
        ensure!(
            t.elapsed() < Duration::from_secs(20),
            "STOP took {:?}",
            t.elapsed()
        );
        r.map_err(err_s)
    });
    let c = child.wait();
    // SAFETY: closing our dup.
    unsafe { libc::close(dup) };
    r?;
    c
}

/// NIOCCTRL with an option list in `opts` (a chain the caller built),
/// returning the errno.
fn ctrl_raw(fd: i32, reqtype: u16, body: &mut [u8], opts: u64) -> Result<(), i32> {
    let mut h = NmreqHeader::new(reqtype, b"");
    h.nr_body = if body.is_empty() {
        0
    } else {
        body.as_mut_ptr() as u64
    };
    h.nr_options = opts;
    // SAFETY: the header, the body and the options are live buffers of the
    // sizes the kernel reads (checked by the callers' construction).
    let r = unsafe { libc::ioctl(fd, NIOCCTRL as _, &mut h as *mut NmreqHeader) };
    if r < 0 { Err(errno()) } else { Ok(()) }
}

fn expect(what: &str, r: Result<(), i32>, want: i32) -> Result<(), String> {
    match r {
        Err(e) if e == want => Ok(()),
        r => Err(format!("{what}: {r:?}, expected {}", errno_name(want))),
    }
}

/// The errors of CSB mode and of the loop (§4.10).
fn kloop_errors() -> Result<(), String> {
    // CSB mode needs an exclusive binding.
    let mut p = Port::open("vale25:a").map_err(err_s)?;
    let e = p.enable_csb(false).expect_err("CSB on a shared binding");
    ensure!(errno_of(&e) == libc::EINVAL, "CSB on a shared binding: {e}");
    drop(p);
    // No loop without a CSB.
    let p = Port::builder("vale25:a")
        .flags(RegFlags::EXCLUSIVE)
        .open()
        .map_err(err_s)?;
    let fd = p.as_raw_fd();
    let mut st = [0u8; 8];
    expect(
        "START without CSB",
        ctrl_raw(fd, NETMAP_REQ_SYNC_KLOOP_START, &mut st, 0),
        libc::EINVAL,
    )?;
    // A CSB the process cannot read: EFAULT, still not in CSB mode.
    let mut opt = NmreqOptCsb {
        nro_opt: NmreqOption {
            nro_reqtype: NETMAP_REQ_OPT_CSB,
            nro_size: 40,
            ..Default::default()
        },
        csb_atok: 0x1000,
        csb_ktoa: 0x2000,
    };
    let r = ctrl_raw(
        fd,
        NETMAP_REQ_CSB_ENABLE,
        &mut [],
        &mut opt as *mut NmreqOptCsb as u64,
    );
    expect("unmapped CSB", r, libc::EFAULT)?;
    ensure!(
        opt.nro_opt.nro_status == libc::EFAULT as u32,
        "status {}",
        opt.nro_opt.nro_status
    );
    opt.csb_atok = 0x1008;
    let r = ctrl_raw(
        fd,
        NETMAP_REQ_CSB_ENABLE,
        &mut [],
        &mut opt as *mut NmreqOptCsb as u64,
    );
    expect("misaligned CSB", r, libc::EINVAL)?;
    p.sync_tx()
        .map_err(|e| format!("sync after failed CSB_ENABLE: {e}"))?;
    drop(p);
    // In CSB mode: syncs EBUSY, poll POLLERR.
    let p = csb_port("vale25:a", true)?;
    let e = p.sync_tx().expect_err("NIOCTXSYNC in CSB mode");
    ensure!(errno_of(&e) == libc::EBUSY, "NIOCTXSYNC in CSB mode: {e}");
    let e = p.sync_rx().expect_err("NIOCRXSYNC in CSB mode");
    ensure!(errno_of(&e) == libc::EBUSY, "NIOCRXSYNC in CSB mode: {e}");
    let rev = p
        .poll(PollFlags::IN | PollFlags::OUT, Some(Duration::ZERO))
        .map_err(err_s)?;
    ensure!(rev.contains(PollFlags::ERR), "poll in CSB mode: {rev:?}");
    let fd = p.as_raw_fd();
    // Eventfd options: a descriptor that is not an eventfd, one that is not
    // open, and the wrong number of entries.
    let mut pipe = [0i32; 2];
    // SAFETY: a valid array of two ints.
    ensure!(unsafe { libc::pipe(pipe.as_mut_ptr()) } == 0, "pipe");
    for (pairs, want) in [
        (vec![(pipe[0], -1i32), (pipe[0], -1)], libc::EINVAL),
        (vec![(-1, 999), (-1, -1)], libc::EBADF),
        (vec![(-1, -1)], libc::EINVAL),
    ] {
        let mut v: Vec<u64> = vec![0; 3 + pairs.len()];
        v[1] = u64::from(NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS);
        v[2] = (24 + 8 * pairs.len()) as u64;
        for (i, (k, q)) in pairs.iter().enumerate() {
            v[3 + i] = u64::from(*k as u32) | (u64::from(*q as u32) << 32);
        }
        let r = ctrl_raw(
            fd,
            NETMAP_REQ_SYNC_KLOOP_START,
            &mut st,
            v.as_mut_ptr() as u64,
        );
        expect(&format!("START with eventfds {pairs:?}"), r, want)?;
        ensure!(v[1] >> 32 == want as u64, "option status {}", v[1] >> 32);
    }
    for fd in pipe {
        // SAFETY: closing the pipe we opened.
        unsafe { libc::close(fd) };
    }
    // Bad mode bits; direct modes without eventfds.
    for mode in [0x4u32, NM_OPT_SYNC_KLOOP_DIRECT_TX] {
        let mut v: Vec<u64> = vec![
            0,
            u64::from(NETMAP_REQ_OPT_SYNC_KLOOP_MODE),
            32,
            u64::from(mode),
        ];
        let r = ctrl_raw(
            fd,
            NETMAP_REQ_SYNC_KLOOP_START,
            &mut st,
            v.as_mut_ptr() as u64,
        );
        expect(&format!("START with mode {mode:#x}"), r, libc::EINVAL)?;
    }
    // sleep_us above one second.
    let mut big = 1_000_001u32.to_ne_bytes().to_vec();
    big.extend_from_slice(&[0; 4]);
    expect(
        "sleep_us 1000001",
        ctrl_raw(fd, NETMAP_REQ_SYNC_KLOOP_START, &mut big, 0),
        libc::EINVAL,
    )?;
    // One loop per file; CSB_ENABLE refused while it runs.
    std::thread::scope(|s| -> Result<(), String> {
        let k = s.spawn(|| p.sync_kloop(&KloopConfig::default()));
        wait_running(&p)?;
        let r = ctrl_raw(fd, NETMAP_REQ_SYNC_KLOOP_START, &mut st, 0);
        expect("second START", r, libc::EBUSY)?;
        let mut o = NmreqOptCsb {
            nro_opt: NmreqOption {
                nro_reqtype: NETMAP_REQ_OPT_CSB,
                nro_size: 40,
                ..Default::default()
            },
            ..Default::default()
        };
        let r = ctrl_raw(
            fd,
            NETMAP_REQ_CSB_ENABLE,
            &mut [],
            &mut o as *mut NmreqOptCsb as u64,
        );
        expect("CSB_ENABLE while the loop runs", r, libc::EBUSY)?;
        p.sync_kloop_stop().map_err(err_s)?;
        k.join()
            .map_err(|_| "kloop thread panicked".to_string())?
            .map_err(err_s)
    })?;
    // Unbound: ENXIO.
    let u = crate::sys::Fd::open_netmap()?;
    expect(
        "START unbound",
        ctrl_raw(u.0, NETMAP_REQ_SYNC_KLOOP_START, &mut st, 0),
        libc::ENXIO,
    )?;
    expect(
        "STOP unbound",
        ctrl_raw(u.0, NETMAP_REQ_SYNC_KLOOP_STOP, &mut [], 0),
        libc::ENXIO,
    )?;
    Ok(())
}
