//! The platform trait: everything the core needs from an operating system.
//!
//! Linux (`os/linux`), FreeBSD (`os/freebsd`) and Windows (`os/windows`)
//! each implement [`Platform`]; `crate::host` implements it with `std` for
//! tests and benchmarks, with fault injection.
//!
//! The shape is deliberately small and OS-neutral:
//! * memory comes in page-aligned *clusters* that the OS can later map into a
//!   process (Linux: pages from the page allocator, FreeBSD: contigmalloc,
//!   Windows: non-paged pool described by an MDL);
//! * two kinds of locks: a data-path spinlock that must also be usable from
//!   the OS's packet-receive context (Linux softirq, FreeBSD ithread, Windows
//!   DISPATCH_LEVEL), and a control-path mutex that may sleep;
//! * wait queues, used by poll() and woken when a ring gets data or room;
//! * copies from and to user memory that report faults instead of crashing;
//! * time and logging.

use core::fmt;
use core::ptr::NonNull;

/// A user-memory copy faulted (the errno is `EFAULT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault;

/// Severity of a log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// A raw lock provided by the OS.
///
/// The core wraps it in [`crate::sync::Lock`], which owns the protected data
/// and hands out guards; OS code never sees the data.
///
/// # Safety
///
/// `lock()` must not return while another caller holds the lock, and
/// `lock()`/`unlock()` must give acquire/release ordering, so that a
/// [`crate::sync::Lock`] built on it is a sound mutual-exclusion primitive.
pub unsafe trait RawLock: Send + Sync + Sized {
    /// Create an unlocked lock; `None` if the OS could not allocate it.
    fn new() -> Option<Self>;
    /// Acquire the lock, spinning or sleeping as the kind of lock allows.
    fn lock(&self);
    /// Release the lock.
    ///
    /// # Safety
    ///
    /// The caller must hold the lock (acquired with `lock()` by this context).
    unsafe fn unlock(&self);
}

/// A wait queue: poll() registers on it, the core wakes it when a ring has
/// new data or room.
pub trait WaitQueue: Send + Sync + Sized {
    /// Create a wait queue; `None` if the OS could not allocate it.
    fn new() -> Option<Self>;
    /// Wake every waiter.
    fn wake_all(&self);
}

/// What the core needs from an operating system.
///
/// Implementations are cheap to clone (a zero-sized type in a kernel, an
/// `Arc` on the host): every long-lived core object keeps a copy.
pub trait Platform: Clone + Send + Sync + 'static {
    /// Data-path lock. On Linux a `spinlock_t` taken with `spin_lock_bh`.
    type SpinLock: RawLock;
    /// Control-path lock that may sleep. On Linux a `struct mutex`.
    type Mutex: RawLock;
    /// Readiness notification for poll/select.
    type WaitQueue: WaitQueue;

    /// Allocate `size` bytes (a multiple of [`PAGE_SIZE`]), zeroed and
    /// page aligned, that the OS can map into a process page by page.
    /// `None` on failure.
    fn alloc_cluster(&self, size: usize) -> Option<NonNull<u8>>;

    /// Free a cluster.
    ///
    /// # Safety
    ///
    /// `ptr` and `size` come from one earlier `alloc_cluster` call and the
    /// memory is not used (nor mapped into any process) afterwards.
    unsafe fn free_cluster(&self, ptr: NonNull<u8>, size: usize);

    /// Copy `dst.len()` bytes from the user virtual address `src`.
    fn copy_from_user(&self, dst: &mut [u8], src: u64) -> Result<(), Fault>;

    /// Copy `src` to the user virtual address `dst`.
    fn copy_to_user(&self, dst: u64, src: &[u8]) -> Result<(), Fault>;

    /// Wall-clock time as (seconds, microseconds).
    fn now(&self) -> (i64, i64);

    /// Emit a log message.
    fn log(&self, level: LogLevel, args: fmt::Arguments<'_>);
}

/// Size of the pages the OS maps (4 KiB on every supported system).
pub const PAGE_SIZE: usize = 4096;

/// `nm_prlim!`-style logging helper: `nm_log!(platform, Warn, "x {}", 1)`.
#[macro_export]
macro_rules! nm_log {
    ($p:expr, $lvl:ident, $($arg:tt)*) => {
        $crate::platform::Platform::log(&$p, $crate::platform::LogLevel::$lvl, format_args!($($arg)*))
    };
}
