//! Kernel threads of the platform (`Platform::spawn_thread`), on the host:
//! the loop calls `work()` again and again, sleeps when idle, stops
//! promptly, and a dropped handle means the work never runs again.
//!
//! The checks go through the `Platform` trait where they can, so they
//! describe the contract every OS implements; timing bounds are generous
//! (the test machine is small and shared).

use netmap_core::host::{HOST_THREAD_IDLE, HostPlatform};
use netmap_core::{Errno, Platform};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Upper bound for anything that should happen "soon".
const DEADLINE: Duration = Duration::from_secs(20);
/// What "prompt" means for a stop, on a loaded machine.
const PROMPT: Duration = Duration::from_millis(500);

/// Sets a flag when dropped: shows that the work closure itself was freed.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Waits until `cond` holds, failing the test after [`DEADLINE`].
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A thread whose work counts its calls and reports `busy`.
fn counting<P: Platform>(
    p: &P,
    name: &[u8],
    cpu: Option<u32>,
    busy: bool,
) -> (P::Thread, Arc<AtomicU64>) {
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    let t = p
        .spawn_thread(
            name,
            cpu,
            Box::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
                busy
            }),
        )
        .expect("spawn_thread");
    (t, calls)
}

#[test]
fn online_cpus_is_at_least_one_and_can_be_faked() {
    let p = HostPlatform::new();
    let real = p.online_cpus();
    assert!(real >= 1);
    p.set_online_cpus(Some(16));
    assert_eq!(p.online_cpus(), 16);
    p.set_online_cpus(Some(0));
    assert_eq!(p.online_cpus(), 1);
    p.set_online_cpus(None);
    assert_eq!(p.online_cpus(), real);
}

#[test]
fn busy_work_runs_repeatedly_and_never_after_stop() {
    let p = HostPlatform::new();
    let (t, calls) = counting(&p, b"nm-busy", None, true);
    wait_for("1000 busy calls", || calls.load(Ordering::SeqCst) >= 1000);
    drop(t);
    let after = calls.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(calls.load(Ordering::SeqCst), after, "work ran after stop");
    assert!(p.threads().is_empty());
}

#[test]
fn idle_work_sleeps_between_calls_and_stops_promptly() {
    let p = HostPlatform::new();
    let (t, calls) = counting(&p, b"nm-idle", None, false);
    // Idle: called again and again, but with a sleep in between.
    wait_for("a few idle calls", || calls.load(Ordering::SeqCst) >= 5);
    let start = Instant::now();
    let c0 = calls.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    let n = calls.load(Ordering::SeqCst) - c0;
    let elapsed = start.elapsed();
    let max = (elapsed.as_micros() / HOST_THREAD_IDLE.as_micros()) as u64 + 2;
    assert!(n >= 1, "idle work not called again in {elapsed:?}");
    assert!(
        n <= max,
        "idle work called {n} times in {elapsed:?}: no sleep"
    );

    // The stop interrupts the idle sleep.
    let start = Instant::now();
    drop(t);
    let took = start.elapsed();
    assert!(took < PROMPT, "stopping an idle thread took {took:?}");
    let after = calls.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(calls.load(Ordering::SeqCst), after, "work ran after stop");
}

#[test]
fn stop_waits_for_the_running_work_call_and_frees_the_closure() {
    let p = HostPlatform::new();
    let inside = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicU64::new(0));
    let freed = Arc::new(AtomicBool::new(false));
    let (i, f, guard) = (inside.clone(), finished.clone(), DropFlag(freed.clone()));
    let t = p
        .spawn_thread(
            b"nm-slow",
            None,
            Box::new(move || {
                let _keep = &guard;
                i.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
                f.fetch_add(1, Ordering::SeqCst);
                i.store(false, Ordering::SeqCst);
                true
            }),
        )
        .unwrap();
    wait_for("a work call in progress", || inside.load(Ordering::SeqCst));
    drop(t);
    // The call in progress when the stop came has returned, no new one
    // started, and the closure (with what it captured) is gone.
    assert!(
        !inside.load(Ordering::SeqCst),
        "stop returned while work ran"
    );
    assert!(freed.load(Ordering::SeqCst), "work closure not dropped");
    let n = finished.load(Ordering::SeqCst);
    assert!(n >= 1);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(finished.load(Ordering::SeqCst), n, "work ran after stop");
}

#[test]
fn bad_cpu_is_einval_and_drops_the_work_uncalled() {
    let p = HostPlatform::new();
    p.set_online_cpus(Some(4));
    for cpu in [4, 5, u32::MAX] {
        let called = Arc::new(AtomicBool::new(false));
        let freed = Arc::new(AtomicBool::new(false));
        let (c, guard) = (called.clone(), DropFlag(freed.clone()));
        let r = p.spawn_thread(
            b"nm-bad",
            Some(cpu),
            Box::new(move || {
                let _keep = &guard;
                c.store(true, Ordering::SeqCst);
                false
            }),
        );
        assert_eq!(r.err(), Some(Errno::EINVAL), "cpu {cpu}");
        assert!(freed.load(Ordering::SeqCst), "work of a failed spawn kept");
        assert!(!called.load(Ordering::SeqCst), "work of a failed spawn ran");
    }
    assert!(p.threads().is_empty());
    // The last online CPU is fine.
    let (t, calls) = counting(&p, b"nm-cpu3", Some(3), false);
    assert_eq!(t.cpu(), Some(3));
    wait_for("the pinned thread to run", || {
        calls.load(Ordering::SeqCst) >= 1
    });
}

#[test]
fn several_threads_run_side_by_side_and_stop_independently() {
    let p = HostPlatform::new();
    p.set_online_cpus(Some(4));
    let mut threads = Vec::new();
    for i in 0..8u32 {
        let name = format!("nm-poll-{i}");
        let (t, calls) = counting(&p, name.as_bytes(), Some(i % 4), i % 2 == 0);
        threads.push((t, calls));
    }
    let live = p.threads();
    assert_eq!(live.len(), 8);
    for (i, info) in live.iter().enumerate() {
        assert_eq!(info.name, format!("nm-poll-{i}").into_bytes());
        assert_eq!(info.cpu, Some(i as u32 % 4));
    }
    for (_, calls) in &threads {
        wait_for("every thread to run", || calls.load(Ordering::SeqCst) >= 3);
    }

    // Stop the odd ones (idle); the even ones (busy) keep going.
    let mut stopped = Vec::new();
    let mut running = Vec::new();
    for (i, tc) in threads.into_iter().enumerate() {
        if i % 2 == 1 {
            stopped.push(tc.1.clone());
            drop(tc.0);
        } else {
            running.push(tc);
        }
    }
    assert_eq!(p.threads().len(), 4);
    assert!(p.threads().iter().all(|t| t.id % 2 == 0));
    let frozen: Vec<u64> = stopped.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    let before: Vec<u64> = running
        .iter()
        .map(|(_, c)| c.load(Ordering::SeqCst))
        .collect();
    for ((_, c), b) in running.iter().zip(&before) {
        wait_for("a running thread to go on", || {
            c.load(Ordering::SeqCst) > *b
        });
    }
    for (c, f) in stopped.iter().zip(&frozen) {
        assert_eq!(c.load(Ordering::SeqCst), *f, "a stopped thread ran");
    }
    drop(running);
    assert!(p.threads().is_empty());
}

#[test]
fn a_thread_can_stop_another() {
    let p = HostPlatform::new();
    let (victim, calls) = counting(&p, b"nm-victim", None, false);
    wait_for("the victim to run", || calls.load(Ordering::SeqCst) >= 1);
    let mut slot = Some(victim);
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let stopper = p
        .spawn_thread(
            b"nm-stopper",
            None,
            Box::new(move || {
                if let Some(t) = slot.take() {
                    drop(t);
                    d.store(true, Ordering::SeqCst);
                }
                false
            }),
        )
        .unwrap();
    wait_for("the stopper", || done.load(Ordering::SeqCst));
    let n = calls.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(calls.load(Ordering::SeqCst), n);
    drop(stopper);
    assert!(p.threads().is_empty());
}

#[test]
fn spawn_failure_injection() {
    let p = HostPlatform::new();
    p.set_thread_budget(Some(1));
    let (t, _) = counting(&p, b"nm-ok", None, false);
    let r = p.spawn_thread(b"nm-fail", None, Box::new(|| false));
    assert_eq!(r.err(), Some(Errno::ENOMEM));
    p.set_thread_budget(None);
    let (u, _) = counting(&p, b"nm-ok2", None, false);
    assert_eq!(p.threads().len(), 2);
    drop((t, u));
    assert!(p.threads().is_empty());
}

#[test]
fn names_stop_at_nul_like_c_strings() {
    let p = HostPlatform::new();
    let (t, calls) = counting(&p, b"nm-a\0junk", None, false);
    wait_for("the thread to run", || calls.load(Ordering::SeqCst) >= 1);
    assert_eq!(p.threads()[0].name, b"nm-a");
    drop(t);
}

#[test]
fn a_panic_in_work_reaches_the_dropper() {
    let p = HostPlatform::new();
    let t = p
        .spawn_thread(b"nm-panic", None, Box::new(|| panic!("work failed")))
        .unwrap();
    wait_for("the thread to die", || !t.is_running());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(t)));
    assert!(r.is_err(), "the work's panic was swallowed");
    assert!(p.threads().is_empty());
}

#[test]
fn handles_are_send_and_sync() {
    fn ss<T: Send + Sync>() {}
    ss::<<HostPlatform as Platform>::Thread>();
}
