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
//! * time and logging (with [`RateLimit`] for what users can trigger at will);
//! * the machine's RAM size, from which the memory budget is derived;
//! * kernel threads that poll (VALE polling mode, spec §4.9), optionally
//!   pinned to one CPU, stopped and joined when their handle is dropped;
//! * pinned user memory (the EXTMEM option, spec §5): pages of the
//!   calling process held in memory for as long as a region is built over
//!   them, reached through their kernel addresses;
//! * for the sync kernel loop (spec §4.10), which runs inside the calling
//!   process's ioctl: a [`Sleeper`] the loop sleeps on, *watches* that wake
//!   it when a wait queue or an eventfd of the process is woken, and
//!   eventfds the loop signals.

use alloc::boxed::Box;
use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI64, AtomicU32, Ordering};

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
    /// Wake every waiter. May skip the work when nobody waits (a full
    /// barrier, then a look at the queue): a waiter registers first, then
    /// issues a full fence, then checks its condition, so a wake-up skipped
    /// after the condition became true is never needed.
    fn wake_all(&self);
}

/// How [`Sleeper::sleep`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// [`Sleeper::wake`] was called, or a watch fired, since the last sleep
    /// returned (possibly before this sleep began: no wake-up is lost).
    Woken,
    /// The timeout elapsed.
    Timeout,
    /// A signal is pending for the calling task: the caller must return to
    /// userspace (errno `EINTR`; the Linux edge turns it into a restartable
    /// system call). A task being killed always ends its sleeps this way.
    Interrupted,
}

/// A place where one task sleeps until other contexts wake it: the sync
/// kernel loop between passes. [`Platform::watch_wq`] and
/// [`Platform::watch_eventfd`] make wait queues and eventfds wake it.
///
/// Linux: a `wait_queue_head_t` and a flag, slept on with an hrtimer
/// timeout in `TASK_INTERRUPTIBLE`; FreeBSD: a mutex, a flag and
/// `msleep_sbt(PCATCH)`; Windows: a `KEVENT` waited on alertably.
pub trait Sleeper: Send + Sync + Sized {
    /// Sleep until woken, `timeout_ns` elapsed or a signal is pending.
    /// A wake-up that happened since the previous sleep returned ends the
    /// sleep at once (and is consumed). `timeout_ns == 0` only yields the
    /// CPU if another task wants it (busy polling) and checks for signals.
    /// Only the task that runs the loop sleeps; it holds no lock.
    fn sleep(&self, timeout_ns: u64) -> Wake;
    /// Wake the sleeper (from any context, any task).
    fn wake(&self);
}

/// A watch made by [`Platform::watch_wq`] or [`Platform::watch_eventfd`]:
/// while it lives, a wake-up of what it watches wakes its sleeper and marks
/// the watch as fired. Dropping it removes it (it may sleep: never with a
/// spinlock held).
pub trait Watch {
    /// Whether the watched object was woken since the last call (clears
    /// the mark).
    fn take_fired(&self) -> bool;
}

/// An eventfd of the calling process, held by the kernel (Linux:
/// `eventfd_fget` + `eventfd_ctx_fileget`, released on drop).
pub trait EventFd: Send + Sync {
    /// Add 1 to the eventfd's counter and wake its readers (any context).
    fn signal(&self);
}

/// The [`EventFd`] of an OS without eventfds (uninhabited): its
/// [`Platform::eventfd`] answers `EOPNOTSUPP`, so the sync kernel loop only
/// runs in sleep mode there.
#[derive(Debug)]
pub enum NoEventFd {}

impl EventFd for NoEventFd {
    fn signal(&self) {
        match *self {}
    }
}

/// The [`Watch`] of an OS without eventfds (uninhabited: only the eventfd
/// mode of the sync kernel loop makes watches).
#[derive(Debug)]
pub enum NoWatch {}

impl Watch for NoWatch {
    fn take_fired(&self) -> bool {
        match *self {}
    }
}

/// Pages of a process pinned by [`Platform::pin_user_pages`]: they stay
/// resident, at the same physical place, until the value is dropped (then
/// they are released, and on Linux marked dirty: the kernel wrote them).
/// The core reads and writes them through their kernel addresses, only
/// with the same volatile/atomic discipline as any shared memory.
pub trait UserPages: Send + Sync {
    /// Number of pages.
    fn count(&self) -> usize;
    /// Kernel address of page `i` (`i < count()`), valid while `self`
    /// lives. Pages adjacent in the process need not be adjacent here: the
    /// core lays objects out in runs of pages whose kernel addresses follow
    /// each other (clusters). (Linux maps the pinned pages contiguously:
    /// one cluster.)
    fn page(&self, i: usize) -> Option<NonNull<u8>>;
    /// Whether `other` pins the same physical pages, in the same order
    /// (two pins of the same memory may have different kernel addresses).
    fn same_pages(&self, other: &Self) -> bool;
}

/// The body of a kernel thread (see [`Platform::spawn_thread`]): called again
/// and again until the thread is stopped; returns true if it did some work
/// (call again at once), false if it found nothing to do (sleep a little).
pub type ThreadWork = Box<dyn FnMut() -> bool + Send + 'static>;

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
    /// A running kernel thread made by [`Platform::spawn_thread`].
    ///
    /// **Dropping the handle stops the thread and blocks until it has
    /// exited**; after the drop returns, the work closure has returned for
    /// the last time and has itself been dropped. There is no separate stop
    /// call and no way to detach: the closure typically holds references to
    /// core objects (an adapter, a switch), so a thread that outlived its
    /// handle could outlive them too, and a kernel thread left running at
    /// module unload would run unloaded code. Tying the stop to the owner's
    /// lifetime makes "every thread is stopped before what it uses goes
    /// away" hold by construction; `drop(handle)` says it explicitly where
    /// the moment matters (disabling polling mode).
    ///
    /// Dropping sleeps until a `work()` call in progress has returned (an
    /// idle sleep is cut short), so it must not happen with a spinlock
    /// held, nor from the thread's own work closure (a thread cannot wait
    /// for its own exit), nor while holding a lock that the work closure
    /// takes (the thread would never get back to check for the stop).
    type Thread: Send + Sync;
    /// See [`Sleeper`].
    type Sleeper: Sleeper;
    /// See [`EventFd`].
    type EventFd: EventFd;
    /// See [`Watch`]; it borrows its sleeper and what it watches.
    type Watch<'a>: Watch;
    /// See [`UserPages`].
    type UserPages: UserPages;

    /// Allocate `size` bytes (a multiple of [`PAGE_SIZE`]), zeroed and
    /// page aligned, that the OS can map into a process page by page.
    /// `None` on failure. May fail: the OS must give up rather than take
    /// memory from other users (Linux: no OOM killer, `__GFP_NORETRY`),
    /// and the core tears the region down at the first failure.
    fn alloc_cluster(&self, size: usize) -> Option<NonNull<u8>>;

    /// Bytes of RAM the machine has (Linux `totalram_pages()`, Windows
    /// `MmGetPhysicalMemoryRanges`), 0 if unknown: the default of the
    /// memory budget is derived from it ([`crate::mem::default_budget`]).
    /// Called once, when the context is created.
    fn total_ram(&self) -> u64;

    /// Free a cluster.
    ///
    /// # Safety
    ///
    /// `ptr` and `size` come from one earlier `alloc_cluster` call and the
    /// memory is not used (nor mapped into any process) afterwards.
    unsafe fn free_cluster(&self, ptr: NonNull<u8>, size: usize);

    /// Pin the `npages` pages of the calling process starting at the
    /// page-aligned user address `addr` for the kernel to read and write
    /// them (EXTMEM). Errors: `EFAULT` (some page is not mapped, or not
    /// writable), `ENOMEM`.
    fn pin_user_pages(&self, addr: u64, npages: usize) -> crate::Result<Self::UserPages>;

    /// Copy `dst.len()` bytes from the user virtual address `src`.
    fn copy_from_user(&self, dst: &mut [u8], src: u64) -> Result<(), Fault>;

    /// Copy `src` to the user virtual address `dst`.
    fn copy_to_user(&self, dst: u64, src: &[u8]) -> Result<(), Fault>;

    /// The number userspace sees for `e` (option statuses written into
    /// request memory, spec §4.3). The core's errnos use Linux's numbers
    /// (the table of spec §11); an OS that numbers them differently
    /// (FreeBSD: `EOPNOTSUPP` is 45, `EMSGSIZE` 40, `ENOBUFS` 55) maps
    /// them here, and at its ioctl return.
    fn user_errno(&self, e: crate::Errno) -> i32 {
        e.0
    }

    /// Wall-clock time as (seconds, microseconds).
    fn now(&self) -> (i64, i64);

    /// Emit a log message.
    fn log(&self, level: LogLevel, args: fmt::Arguments<'_>);

    /// Number of CPUs online (at least 1). CPUs are numbered
    /// `0..online_cpus()` for [`Platform::spawn_thread`]'s `cpu` (the
    /// reference's polling mode has the same view: `nr_first_cpu_id +
    /// nr_num_polling_cpus` is checked against the online count).
    fn online_cpus(&self) -> u32;

    /// Start a kernel thread that polls: it calls `work()` repeatedly until
    /// its handle ([`Platform::Thread`]) is dropped.
    ///
    /// * `work()` returns true: it did something; the thread calls it again
    ///   at once, but yields the CPU if another task wants it (Linux
    ///   `cond_resched`), so a busy poller does not starve its CPU.
    /// * `work()` returns false: idle; the thread sleeps briefly (one tick
    ///   on a kernel, about a millisecond on the host) before the next call.
    ///   A stop wakes it: dropping the handle never waits for the sleep to
    ///   end, only for a `work()` call in progress to return.
    /// * `cpu: Some(c)` binds the thread to CPU `c` for its whole life
    ///   (`EINVAL` if `c >= online_cpus()` or the CPU is not online);
    ///   `None` lets the scheduler place it.
    /// * `name` names the thread for the OS's tools (`ps`); it may be
    ///   truncated (15 bytes on Linux).
    ///
    /// The thread runs in process context (it may sleep and take mutexes)
    /// but with no user address space: `work()` must not copy from or to
    /// user memory. Errors: `EINVAL` (bad CPU), `ENOMEM` (or another errno
    /// of the OS) if the thread cannot be created; `work` is then dropped
    /// without having been called.
    ///
    /// OS mapping: Linux `kthread_create_on_node` + `kthread_bind` +
    /// `wake_up_process`, stopped with `kthread_stop`
    /// (`kthread_should_stop` / `schedule_timeout_interruptible(1)` in the
    /// loop); FreeBSD `kthread_add` (or `kproc_kthread_add`) + `sched_bind`,
    /// stopped by a flag + `wakeup` and waiting for the thread's
    /// `kthread_exit` (`pause`/`tsleep` for the idle sleep); Windows
    /// `PsCreateSystemThread` + `KeSetSystemAffinityThreadEx`, stopped with
    /// an event (`KeWaitForSingleObject` with a timeout as the idle sleep)
    /// and joined by waiting on the thread object.
    fn spawn_thread(
        &self,
        name: &[u8],
        cpu: Option<u32>,
        work: ThreadWork,
    ) -> crate::Result<Self::Thread>;

    /// Sleep `us` microseconds without being woken early (the STOP of a
    /// sync kernel loop polls with it until the loop has ended). Process
    /// context, no spinlock held.
    fn sleep_us(&self, us: u32);

    /// A new [`Sleeper`] (`ENOMEM`).
    fn sleeper(&self) -> crate::Result<Self::Sleeper>;

    /// Make `wq`'s wake-ups wake `s` (the kloop waiting for ring events).
    /// Errors: `ENOMEM`.
    fn watch_wq<'a>(
        &self,
        s: &'a Self::Sleeper,
        wq: &'a Self::WaitQueue,
    ) -> crate::Result<Self::Watch<'a>>;

    /// The eventfd `fd` of the calling process (Linux `eventfd_fget`).
    /// Errors: `EBADF` (no such descriptor), `EINVAL` (not an eventfd),
    /// `EOPNOTSUPP` (the OS has no eventfds).
    fn eventfd(&self, fd: i32) -> crate::Result<Self::EventFd>;

    /// Make writes to `e` wake `s` (an application's kick). Errors:
    /// `ENOMEM`, `EINVAL` (the eventfd cannot be polled).
    fn watch_eventfd<'a>(
        &self,
        s: &'a Self::Sleeper,
        e: &'a Self::EventFd,
    ) -> crate::Result<Self::Watch<'a>>;
}

/// Lets a burst of [`RateLimit::BURST`] messages through per
/// [`RateLimit::INTERVAL`] seconds (Linux's `printk_ratelimit` defaults),
/// counting the others, so that a user repeating a refused request cannot
/// flood the kernel log. Approximate under races (a message more or less),
/// never blocking.
#[derive(Debug, Default)]
pub struct RateLimit {
    /// Start of the current interval (seconds), 0 before the first message.
    begin: AtomicI64,
    /// Messages let through in the current interval.
    printed: AtomicU32,
    /// Messages suppressed since the last one let through.
    missed: AtomicU32,
}

impl RateLimit {
    pub const BURST: u32 = 10;
    pub const INTERVAL: i64 = 5;

    pub const fn new() -> Self {
        RateLimit {
            begin: AtomicI64::new(0),
            printed: AtomicU32::new(0),
            missed: AtomicU32::new(0),
        }
    }

    /// Whether a message may be emitted at `now` (seconds): `Some(n)` with
    /// the number of messages suppressed before it, or `None`.
    pub fn check(&self, now: i64) -> Option<u32> {
        let begin = self.begin.load(Ordering::Relaxed);
        if begin == 0 || now.wrapping_sub(begin) >= Self::INTERVAL || now < begin {
            self.begin.store(now.max(1), Ordering::Relaxed);
            self.printed.store(0, Ordering::Relaxed);
        }
        if self.printed.fetch_add(1, Ordering::Relaxed) < Self::BURST {
            Some(self.missed.swap(0, Ordering::Relaxed))
        } else {
            self.missed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
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

/// [`nm_log!`] through a [`RateLimit`], for messages a user can cause at
/// will: `nm_log_ratelimited!(platform, &limit, Warn, "x {}", 1)`. The first
/// message after suppressed ones says how many were dropped.
#[macro_export]
macro_rules! nm_log_ratelimited {
    ($p:expr, $rl:expr, $lvl:ident, $($arg:tt)*) => {
        if let Some(missed) = $crate::platform::RateLimit::check(
            $rl,
            $crate::platform::Platform::now(&$p).0,
        ) {
            if missed > 0 {
                $crate::nm_log!($p, $lvl, "({} similar messages suppressed)", missed);
            }
            $crate::nm_log!($p, $lvl, $($arg)*);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::RateLimit;

    #[test]
    fn rate_limit_bursts_then_counts_then_resumes() {
        let rl = RateLimit::new();
        for _ in 0..RateLimit::BURST {
            assert_eq!(rl.check(100), Some(0));
        }
        assert_eq!(rl.check(101), None);
        assert_eq!(rl.check(104), None);
        // A new interval: the first message reports the two suppressed.
        assert_eq!(rl.check(105), Some(2));
        assert_eq!(rl.check(105), Some(0));
        // Time going backwards (a clock step) starts a new interval too:
        // 2 of these 10 are over the burst.
        for _ in 0..RateLimit::BURST {
            rl.check(105);
        }
        assert_eq!(rl.check(50), Some(2));
    }
}
