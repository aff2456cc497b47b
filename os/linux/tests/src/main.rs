//! nm-guest-tests: the acceptance tests of the Linux module, run inside the
//! QEMU guest by `cargo xtask vm-test` after `insmod netmap.ko`.
//!
//! Output contract (parsed by ci/xtask/src/vm.rs):
//! * one line per test: `PASS name` or `FAIL name: reason`;
//! * a final `N passed, N failed` line; exit status 0 iff nothing failed.
//!
//! Each test runs in a forked child with an alarm, so a crash or a hang
//! fails that test only. After each test the allocator counters in
//! /sys/kernel/debug/netmap/stats must be back at their baseline; a test
//! that leaves them changed fails with `leak: ...` (and the baseline moves,
//! so later tests are judged on their own).
//!
//! Usage: `nm-guest-tests [--list] [NAME_SUBSTRING...]`.

mod basic;
mod bwrap;
mod ctl;
mod errors;
mod extmem;
mod kloop;
mod mem;
mod monitor;
mod native;
mod nic;
mod nic_completion;
mod nic_more;
mod offsets;
mod params;
mod persistent;
mod pipe;
mod port;
mod proc;
mod robust;
mod stress;
mod sys;
mod tools;
mod vale;

use std::io::{Read, Write};
use std::os::fd::FromRawFd;

/// A test: a name and a function returning `Err(reason)` on failure.
pub type Test = (&'static str, fn() -> Result<(), String>);

/// `ensure!(cond, "fmt", args..)`: fail the test with a message.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Per-test time limit (TCG guests are slow; traffic tests stay well below;
/// the stress test gets its duration on top).
const TEST_TIMEOUT_S: u32 = 60;

const STATS: &str = "/sys/kernel/debug/netmap/stats";

fn all_tests() -> Vec<Test> {
    let mut v = Vec::new();
    v.extend_from_slice(basic::TESTS);
    v.extend_from_slice(params::TESTS);
    v.extend_from_slice(errors::TESTS);
    v.extend_from_slice(vale::TESTS);
    v.extend_from_slice(ctl::TESTS);
    v.extend_from_slice(pipe::TESTS);
    v.extend_from_slice(kloop::TESTS);
    v.extend_from_slice(extmem::TESTS);
    v.extend_from_slice(offsets::TESTS);
    v.extend_from_slice(monitor::TESTS);
    v.extend_from_slice(robust::TESTS);
    v.extend_from_slice(stress::TESTS);
    v.extend_from_slice(nic::TESTS);
    v.extend_from_slice(nic_more::TESTS);
    v.extend_from_slice(nic_completion::TESTS);
    v.extend_from_slice(tools::TESTS);
    v.extend_from_slice(persistent::TESTS);
    v.extend_from_slice(bwrap::TESTS);
    v.extend_from_slice(native::TESTS);
    v.extend_from_slice(mem::TESTS);
    // Last: reload the module.
    v.extend_from_slice(mem::LAST);
    v.extend_from_slice(params::LAST);
    v
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tests = all_tests();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in &tests {
            println!("{name}");
        }
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let selected: Vec<&Test> = tests
        .iter()
        .filter(|(n, _)| filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str())))
        .collect();

    let mut baseline = read_stats();
    if baseline.is_none() {
        println!("NOTE {STATS} not readable: leak checks disabled");
    }
    let (mut passed, mut failed) = (0u32, 0u32);
    for (name, f) in selected {
        let limit = if name.starts_with("stress") {
            stress::stress_secs() as u32 + TEST_TIMEOUT_S
        } else {
            TEST_TIMEOUT_S
        };
        let mut result = run_forked(*f, limit);
        if let Some(base) = &baseline {
            let now = read_stats().unwrap_or_default();
            if &now != base {
                let leak = format!("leak: stats {} -> {}", oneline(base), oneline(&now));
                result = match result {
                    Ok(()) => Err(leak),
                    Err(e) => Err(format!("{e}; {leak}")),
                };
                baseline = Some(now);
            }
        }
        match result {
            Ok(()) => {
                passed += 1;
                println!("PASS {name}");
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {name}: {}", oneline(&e));
            }
        }
        let _ = std::io::stdout().flush();
    }
    println!("{passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

/// The stats file, or None if it cannot be read.
fn read_stats() -> Option<String> {
    std::fs::read_to_string(STATS).ok()
}

fn oneline(s: &str) -> String {
    s.trim().replace('\n', ", ")
}

/// Runs `f` in a child process with a time limit of `limit` seconds; the
/// child reports its result through a pipe.
fn run_forked(f: fn() -> Result<(), String>, limit: u32) -> Result<(), String> {
    let _ = std::io::stdout().flush();
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", sys::errno_name(sys::errno())));
    }
    // SAFETY: the runner is single-threaded, so the child may run any code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", sys::errno_name(sys::errno())));
    }
    if pid == 0 {
        // Child: run the test, write the verdict, exit without unwinding
        // into the runner's state.
        // SAFETY: closing our copy of the read end.
        unsafe { libc::close(fds[0]) };
        // SAFETY: plain syscall.
        unsafe { libc::alarm(limit) };
        let r = std::panic::catch_unwind(f).unwrap_or_else(|_| Err("panicked".to_string()));
        let msg = match r {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("err {e}"),
        };
        // SAFETY: fds[1] is the write end we own.
        let mut w = unsafe { std::fs::File::from_raw_fd(fds[1]) };
        let _ = w.write_all(msg.as_bytes());
        drop(w);
        let _ = std::io::stdout().flush();
        // SAFETY: terminating the child.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: closing the parent's copy of the write end.
    unsafe { libc::close(fds[1]) };
    // SAFETY: fds[0] is the read end we own.
    let mut r = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    let mut msg = String::new();
    let _ = r.read_to_string(&mut msg);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        return Err(if sig == libc::SIGALRM {
            format!("timed out after {limit} s")
        } else {
            format!("killed by signal {sig}")
        });
    }
    match msg.strip_prefix("err ") {
        Some(e) => Err(e.to_string()),
        None if msg == "ok" => Ok(()),
        None => Err(format!("no verdict (exit status {status:#x})")),
    }
}
