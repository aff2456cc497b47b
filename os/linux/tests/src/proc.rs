//! Child processes and simple cross-process signals for multi-process tests.

use crate::sys::{errno, errno_name};
use std::io::{Read, Write};
use std::os::fd::FromRawFd;

/// A one-way, one-shot-per-byte signal between processes (a pipe).
#[derive(Debug)]
pub struct Signal {
    rd: libc::c_int,
    wr: libc::c_int,
}

impl Signal {
    pub fn new() -> Result<Signal, String> {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array of two ints.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(format!("pipe: {}", errno_name(errno())));
        }
        Ok(Signal {
            rd: fds[0],
            wr: fds[1],
        })
    }

    /// Sends one token.
    pub fn notify(&self) {
        // SAFETY: writing one byte from a valid buffer to our pipe.
        unsafe { libc::write(self.wr, b"x".as_ptr().cast(), 1) };
    }

    /// Waits for one token, at most `timeout_ms`.
    pub fn wait(&self, timeout_ms: i32) -> Result<(), String> {
        let mut pfd = libc::pollfd {
            fd: self.rd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r <= 0 {
            return Err(format!("no signal within {timeout_ms} ms"));
        }
        let mut b = [0u8; 1];
        // SAFETY: reading one byte into a valid buffer from our pipe.
        unsafe { libc::read(self.rd, b.as_mut_ptr().cast(), 1) };
        Ok(())
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.rd) };
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.wr) };
    }
}

/// A forked child running a closure; its verdict comes back via a pipe.
#[derive(Debug)]
pub struct Child {
    pub pid: libc::pid_t,
    verdict: Option<std::fs::File>,
}

/// Forks; the child runs `f` and exits. Call only from a single-threaded
/// process (the test children are).
pub fn spawn(f: impl FnOnce() -> Result<(), String>) -> Result<Child, String> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", errno_name(errno())));
    }
    // SAFETY: single-threaded caller (see above).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", errno_name(errno())));
    }
    if pid == 0 {
        // SAFETY: closing our copy of the read end.
        unsafe { libc::close(fds[0]) };
        let msg = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(e)) => format!("err {e}"),
            Err(_) => "err panicked".to_string(),
        };
        // SAFETY: fds[1] is the write end we own.
        let mut w = unsafe { std::fs::File::from_raw_fd(fds[1]) };
        let _ = w.write_all(msg.as_bytes());
        drop(w);
        // SAFETY: terminating the child without running the parent's
        // destructors (Fd/Mapping values it inherited).
        unsafe { libc::_exit(0) };
    }
    // SAFETY: closing the parent's copy of the write end.
    unsafe { libc::close(fds[1]) };
    Ok(Child {
        pid,
        // SAFETY: fds[0] is the read end we own.
        verdict: Some(unsafe { std::fs::File::from_raw_fd(fds[0]) }),
    })
}

impl Child {
    /// Waits for the child and returns its verdict.
    pub fn wait(mut self) -> Result<(), String> {
        let mut msg = String::new();
        if let Some(mut r) = self.verdict.take() {
            let _ = r.read_to_string(&mut msg);
        }
        let status = self.reap();
        if libc::WIFSIGNALED(status) {
            return Err(format!("child killed by signal {}", libc::WTERMSIG(status)));
        }
        match msg.strip_prefix("err ") {
            Some(e) => Err(format!("child: {e}")),
            None if msg == "ok" => Ok(()),
            None => Err(format!("child gave no verdict (status {status:#x})")),
        }
    }

    /// SIGKILL and reap.
    pub fn kill9(mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        self.verdict = None;
        self.reap();
    }

    fn reap(&mut self) -> i32 {
        let mut status = 0;
        if self.pid > 0 {
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(self.pid, &mut status, 0) };
            self.pid = 0;
        }
        status
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.pid > 0 {
            // SAFETY: signalling and reaping our own child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            self.reap();
        }
    }
}
