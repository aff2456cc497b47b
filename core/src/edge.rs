//! What every OS edge keeps around the core, in one place: the module's
//! global context (created at load, dropped at unload) and the per-file
//! state that the OS's C glue holds as an opaque pointer between open and
//! the file's last release. Linux, FreeBSD (and any further OS) use the
//! same code; their entry points only translate arguments and errnos.

use crate::fmtbuf::StackBuf;
use crate::netmap::{MemStats, Netmap, NetmapPriv};
use crate::platform::{LogLevel, Platform, ThreadWork};
use crate::{Errno, Result};
use alloc::boxed::Box;
use core::ffi::{c_int, c_void};
use core::fmt;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};

/// The module's global context, as a `static` of an OS crate.
pub struct Global<P: Platform> {
    ptr: AtomicPtr<Netmap<P>>,
}

impl<P: Platform> Default for Global<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Platform> Global<P> {
    /// No context yet (before load).
    pub const fn new() -> Self {
        Global {
            ptr: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Installs the context made at load.
    pub fn init(&self, nm: Box<Netmap<P>>) {
        let old = self.ptr.swap(Box::into_raw(nm), Ordering::AcqRel);
        debug_assert!(old.is_null(), "netmap: context installed twice");
    }

    /// The context.
    ///
    /// Panics outside load..unload: the glue calls entry points only in
    /// between, so that is a bug of the glue.
    pub fn get(&'static self) -> &'static Netmap<P> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: set by `init` from Box::into_raw and freed only by `exit`,
        // whose contract says no reference from `get` is alive then.
        unsafe { p.as_ref() }.expect("netmap: entry point called outside load..unload")
    }

    /// Drops the context (unload); nothing if there is none.
    ///
    /// # Safety
    ///
    /// No reference obtained from [`get`](Self::get) is alive and no other
    /// entry point runs or will run (the module is being unloaded).
    pub unsafe fn exit(&self) {
        let p = self.ptr.swap(ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: p came from Box::into_raw in `init`; nobody uses it
            // any more (function contract).
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// Per-file state as the opaque pointer the glue keeps.
pub fn priv_into_raw<P: Platform>(np: Box<NetmapPriv<P>>) -> *mut c_void {
    Box::into_raw(np).cast()
}

/// The per-file state behind a pointer from [`priv_into_raw`].
///
/// # Safety
///
/// `p` came from [`priv_into_raw`] with the same `P` and has not been
/// given to [`priv_from_raw`] yet; the reference is not used after that.
pub unsafe fn priv_ref<'a, P: Platform>(p: *mut c_void) -> &'a NetmapPriv<P> {
    // SAFETY: a live Box<NetmapPriv<P>> by the function contract; shared
    // read-only (NetmapPriv synchronizes internally).
    unsafe { &*p.cast::<NetmapPriv<P>>() }
}

/// Takes the per-file state back at the file's last release.
///
/// # Safety
///
/// `p` came from [`priv_into_raw`] with the same `P`, is taken back once,
/// and no reference from [`priv_ref`] outlives this call.
pub unsafe fn priv_from_raw<P: Platform>(p: *mut c_void) -> Box<NetmapPriv<P>> {
    // SAFETY: by the function contract.
    unsafe { Box::from_raw(p.cast::<NetmapPriv<P>>()) }
}

/// A kernel thread's work closure as the thin pointer the C glue passes to
/// the thread (`Box<dyn FnMut>` is a fat pointer: boxed once more).
#[derive(Debug)]
pub struct RawWork(NonNull<ThreadWork>);

// SAFETY: the closure is `Send`; `RawWork` itself never calls it (only
// `run_work`, on the thread the glue started, does), so sharing the
// handle gives no access to it.
unsafe impl Send for RawWork {}
// SAFETY: as above: `&RawWork` gives no access to the closure.
unsafe impl Sync for RawWork {}

impl RawWork {
    /// Moves `work` to the heap for a thread.
    pub fn new(work: ThreadWork) -> Self {
        RawWork(NonNull::from(Box::leak(Box::new(work))))
    }

    /// The pointer the thread passes to [`run_work`].
    pub fn as_ptr(&self) -> *mut c_void {
        self.0.as_ptr().cast()
    }

    /// Frees the closure.
    ///
    /// # Safety
    ///
    /// Called once; no thread runs or will run [`run_work`] with this
    /// pointer (the thread never started, or has left its loop for good).
    pub unsafe fn free(&mut self) {
        // SAFETY: from Box::leak in `new`, not used any more (contract).
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// One round of a kernel thread's loop: calls the work closure; true if
/// it did something.
///
/// # Safety
///
/// `ctx` is [`RawWork::as_ptr`] of a work not yet freed, and only the one
/// thread started for it calls this (exclusive access to the closure).
pub unsafe fn run_work(ctx: *mut c_void) -> bool {
    // SAFETY: by the function contract, ctx points to a live ThreadWork
    // that nothing else accesses during the call.
    let work = unsafe { &mut *ctx.cast::<ThreadWork>() };
    work()
}

/// `cpu` of [`Platform::spawn_thread`] for the C glue: -1 for none,
/// `EINVAL` unless below `online`.
pub fn thread_cpu(cpu: Option<u32>, online: u32) -> Result<c_int> {
    match cpu {
        None => Ok(-1),
        Some(c) if c < online => c_int::try_from(c).map_err(|_| Errno::EINVAL),
        Some(_) => Err(Errno::EINVAL),
    }
}

/// A log message formatted for a kernel's printf: `emit(level, text)`
/// with level 0 (error), 1 (warning), 2 (info) or 3 (debug) and the text
/// cut at 256 bytes (formatted on the stack: no allocation).
pub fn log_line(level: LogLevel, args: fmt::Arguments<'_>, emit: impl FnOnce(c_int, &[u8])) {
    let mut buf = StackBuf::<256>::new();
    let _ = fmt::write(&mut buf, args);
    let level = match level {
        LogLevel::Error => 0,
        LogLevel::Warn => 1,
        LogLevel::Info => 2,
        LogLevel::Debug => 3,
    };
    emit(level, buf.as_bytes());
}

/// The leak-check counters as "name value" lines (Linux debugfs
/// `netmap/stats`, FreeBSD sysctl `dev.netmap.stats`).
impl fmt::Display for MemStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "if_used {}\nring_used {}\nbuf_used {}\nprivate_mems {}\nswitches {}\npersistent {}\n\
             mem_budget {}\nmem_used {}\n",
            self.if_used,
            self.ring_used,
            self.buf_used,
            self.private_mems,
            self.switches,
            self.persistent,
            self.mem_budget,
            self.mem_used
        )
    }
}

#[cfg(all(test, feature = "host"))]
mod tests {
    use super::*;
    use crate::host::HostPlatform;

    static G: Global<HostPlatform> = Global::new();

    #[test]
    fn context_and_priv_round_trip() {
        let nm = Netmap::new(HostPlatform::new(), crate::Params::default()).unwrap();
        G.init(nm);
        let np = G.get().open().unwrap();
        let raw = priv_into_raw(np);
        // SAFETY: raw is live and taken back below.
        assert!(unsafe { priv_ref::<HostPlatform>(raw) }.binding().is_none());
        // SAFETY: from priv_into_raw, once.
        G.get()
            .release(unsafe { priv_from_raw::<HostPlatform>(raw) });
        assert_eq!(G.get().stats().to_string().lines().count(), 8);
        // SAFETY: no reference from get() is alive.
        unsafe { G.exit() };
        // SAFETY: nothing to drop twice.
        unsafe { G.exit() };
    }

    #[test]
    fn thread_work_and_log_lines() {
        let mut n = 0;
        let mut w = RawWork::new(Box::new(move || {
            n += 1;
            n < 2
        }));
        // SAFETY: live work, one caller.
        assert!(unsafe { run_work(w.as_ptr()) });
        // SAFETY: as above.
        assert!(!unsafe { run_work(w.as_ptr()) });
        // SAFETY: once, nobody runs it any more.
        unsafe { w.free() };
        assert_eq!(thread_cpu(None, 2), Ok(-1));
        assert_eq!(thread_cpu(Some(1), 2), Ok(1));
        assert_eq!(thread_cpu(Some(2), 2), Err(Errno::EINVAL));
        let mut got = (9, alloc::vec::Vec::new());
        log_line(
            LogLevel::Warn,
            format_args!("x{}", "y".repeat(300)),
            |l, t| got = (l, t.to_vec()),
        );
        assert_eq!(got.0, 1);
        assert_eq!(got.1.len(), 256);
    }
}
