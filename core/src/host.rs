//! A `std` implementation of [`Platform`] for tests and benchmarks, with
//! fault injection (smoltcp's `FaultInjector` idea): cluster allocation can be
//! made to fail after N successes, and user copies can be made to fault on
//! chosen addresses.
//!
//! User memory is simulated: tests `map` byte vectors at fake user addresses
//! and the core reads/writes them through `copy_from_user`/`copy_to_user`,
//! exactly as it would in a kernel.
//!
//! Kernel threads ([`Platform::spawn_thread`]) are `std` threads; a CPU
//! binding is recorded ([`HostPlatform::threads`]) but not enforced, and
//! the number of online CPUs can be faked ([`HostPlatform::set_online_cpus`])
//! so that polling mode can be tested with more CPUs than the machine has.
//!
//! For the sync kernel loop, which a test runs on a `std` thread of its own
//! (the "process" that called the ioctl): sleepers are condition variables,
//! eventfds live in a simulated descriptor table
//! ([`HostPlatform::eventfd_create`], [`HostPlatform::eventfd_write`], ...),
//! and a signal can be sent to a thread ([`HostPlatform::signal_thread`]):
//! its next sleep ends with [`Wake::Interrupted`].

use crate::platform::{
    EventFd, Fault, LogLevel, Platform, RawLock, Sleeper, ThreadWork, WaitQueue, Wake, Watch,
};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Spinning lock that yields the CPU while it waits.
pub struct HostLock(AtomicBool);

// SAFETY: compare_exchange(Acquire) / store(Release) on one flag is a
// test-and-set lock: mutual exclusion with acquire/release ordering.
unsafe impl RawLock for HostLock {
    fn new() -> Option<Self> {
        Some(HostLock(AtomicBool::new(false)))
    }
    fn lock(&self) {
        let mut spins = 0u32;
        while self
            .0
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins > 64 {
                std::thread::yield_now();
            } else {
                core::hint::spin_loop();
            }
        }
    }
    unsafe fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Wait queue: a generation counter and a condition variable, plus the
/// watches of sleepers ([`Platform::watch_wq`]).
pub struct HostWaitQueue {
    generation: Mutex<u64>,
    cv: Condvar,
    watches: Mutex<Vec<Arc<WatchState>>>,
}

impl WaitQueue for HostWaitQueue {
    fn new() -> Option<Self> {
        Some(HostWaitQueue {
            generation: Mutex::new(0),
            cv: Condvar::new(),
            watches: Mutex::new(Vec::new()),
        })
    }
    fn wake_all(&self) {
        {
            let mut g = self.generation.lock().unwrap_or_else(|e| e.into_inner());
            *g += 1;
            self.cv.notify_all();
        }
        for w in self.watch_list().iter() {
            w.fired.store(true, Ordering::SeqCst);
            w.sleeper.wake();
        }
    }
}

impl HostWaitQueue {
    /// Current generation; pass it to [`HostWaitQueue::wait_since`].
    pub fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn watch_list(&self) -> std::sync::MutexGuard<'_, Vec<Arc<WatchState>>> {
        self.watches.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of watches on this queue (a test checks that a loop removed
    /// its watches when it ended).
    pub fn watch_count(&self) -> usize {
        self.watch_list().len()
    }

    /// Block until a wake-up after generation `g`, or the timeout.
    /// Returns true if woken.
    pub fn wait_since(&self, g: u64, timeout: Duration) -> bool {
        let guard = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |cur| *cur == g)
            .unwrap_or_else(|e| e.into_inner());
        *guard != g
    }
}

/// The state of a [`HostSleeper`], shared with the watches that wake it.
pub struct SleeperState {
    woken: Mutex<bool>,
    cv: Condvar,
    platform: alloc::sync::Weak<HostInner>,
}

impl SleeperState {
    fn wake(&self) {
        *self.woken.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }
}

/// [`Platform::Sleeper`] of the host: a flag and a condition variable.
/// Signals sent with [`HostPlatform::signal_thread`] to the sleeping
/// thread end its sleep with [`Wake::Interrupted`].
pub struct HostSleeper(Arc<SleeperState>);

impl Sleeper for HostSleeper {
    fn sleep(&self, timeout_ns: u64) -> Wake {
        let me = std::thread::current().id();
        let signalled = || {
            self.0.platform.upgrade().is_some_and(|p| {
                let mut s = p.signals.lock().unwrap_or_else(|e| e.into_inner());
                let hit = s.iter().position(|t| *t == me);
                hit.map(|i| s.swap_remove(i)).is_some()
            })
        };
        if signalled() {
            return Wake::Interrupted;
        }
        if let Some(p) = self.0.platform.upgrade() {
            let budget = &p.sleep_budget;
            if budget.load(Ordering::SeqCst) >= 0 {
                // Fuzzing: no real sleep, and a "signal" once spent.
                if budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
                    budget.store(0, Ordering::SeqCst);
                    return Wake::Interrupted;
                }
                let mut woken = self.0.woken.lock().unwrap_or_else(|e| e.into_inner());
                return if core::mem::take(&mut *woken) {
                    Wake::Woken
                } else {
                    Wake::Timeout
                };
            }
        }
        let mut woken = self.0.woken.lock().unwrap_or_else(|e| e.into_inner());
        if timeout_ns == 0 && !*woken {
            drop(woken);
            std::thread::yield_now();
            return if signalled() {
                Wake::Interrupted
            } else {
                Wake::Timeout
            };
        }
        let deadline = std::time::Instant::now() + Duration::from_nanos(timeout_ns);
        loop {
            if *woken {
                *woken = false;
                return Wake::Woken;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Wake::Timeout;
            }
            // Short slices: a signal has no condition variable to wake us.
            let slice = (deadline - now).min(Duration::from_millis(5));
            woken = self
                .0
                .cv
                .wait_timeout(woken, slice)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if signalled() {
                return Wake::Interrupted;
            }
        }
    }

    fn wake(&self) {
        self.0.wake();
    }
}

/// A watch of a host wait queue on a sleeper.
pub struct WatchState {
    fired: AtomicBool,
    sleeper: Arc<SleeperState>,
}

/// [`Platform::Watch`] of the host: registered in the queue's list until
/// dropped.
pub struct HostWatch<'a> {
    state: Arc<WatchState>,
    wq: &'a HostWaitQueue,
}

impl Watch for HostWatch<'_> {
    fn take_fired(&self) -> bool {
        self.state.fired.swap(false, Ordering::SeqCst)
    }
}

impl Drop for HostWatch<'_> {
    fn drop(&mut self) {
        self.wq
            .watch_list()
            .retain(|w| !Arc::ptr_eq(w, &self.state));
    }
}

/// A simulated eventfd: a counter and a wait queue.
pub struct EventFdState {
    count: Mutex<u64>,
    wq: HostWaitQueue,
}

impl EventFdState {
    fn add(&self, n: u64) {
        {
            let mut c = self.count.lock().unwrap_or_else(|e| e.into_inner());
            *c = c.saturating_add(n);
        }
        self.wq.wake_all();
    }
}

/// [`Platform::EventFd`] of the host: a reference on a simulated eventfd
/// (it outlives [`HostPlatform::eventfd_close`] of its descriptor, as a
/// file reference does).
pub struct HostEventFd(Arc<EventFdState>);

impl EventFd for HostEventFd {
    fn signal(&self) {
        self.0.add(1);
    }
}

/// Page-aligned, zeroed memory of a simulated user region: one allocation
/// (and one guard page after it, never used, so that two chunks are never
/// adjacent in memory). Shared with the pins that hold it.
struct Chunk {
    ptr: NonNull<u8>,
    /// Bytes used (whole pages).
    len: usize,
}

// SAFETY: the chunk owns its allocation; bytes are only accessed through
// raw pointers under the user-space lock or by the kernel side through its
// pins, as user memory is.
unsafe impl Send for Chunk {}
// SAFETY: as above.
unsafe impl Sync for Chunk {}

impl Chunk {
    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(len + PAGE, PAGE).unwrap_or_else(|_| unreachable!())
    }

    fn new(len: usize) -> Arc<Self> {
        // SAFETY: the layout has a non-zero size (a guard page at least).
        let p = unsafe { std::alloc::alloc_zeroed(Self::layout(len)) };
        let ptr =
            NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(Self::layout(len)));
        Arc::new(Chunk { ptr, len })
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; nobody holds the
        // chunk any more (last `Arc`).
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.len)) }
    }
}

const PAGE: usize = crate::platform::PAGE_SIZE;

/// A mapped region of the simulated user space: its chunks in address order.
struct URegion {
    base: u64,
    len: usize,
    /// (offset in the region, chunk).
    chunks: Vec<(usize, Arc<Chunk>)>,
}

/// [`Platform::UserPages`] of the host: the pages of simulated user
/// memory, whose chunks it keeps alive (pinned memory survives an unmap).
pub struct HostUserPages {
    /// Address of each page.
    pages: Vec<usize>,
    _chunks: Vec<Arc<Chunk>>,
    platform: HostPlatform,
}

impl crate::platform::UserPages for HostUserPages {
    fn count(&self) -> usize {
        self.pages.len()
    }
    fn page(&self, i: usize) -> Option<NonNull<u8>> {
        NonNull::new(*self.pages.get(i)? as *mut u8)
    }
    fn same_pages(&self, other: &Self) -> bool {
        self.pages == other.pages
    }
}

impl Drop for HostUserPages {
    fn drop(&mut self) {
        self.platform.0.pins_live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A simulated user address space.
#[derive(Default)]
struct UserSpace {
    /// Non-overlapping regions.
    regions: Vec<URegion>,
    next: u64,
    /// Addresses whose access faults.
    poisoned: Vec<u64>,
}

impl UserSpace {
    /// The region holding all of `[addr, addr + len)` with the offset of
    /// `addr` in it, unless some byte of the range is poisoned.
    fn find(&self, addr: u64, len: usize) -> Result<(&URegion, usize), Fault> {
        let end = addr.checked_add(len as u64).ok_or(Fault)?;
        if self
            .poisoned
            .iter()
            .any(|&p| p >= addr && p < end.max(addr + 1))
        {
            return Err(Fault);
        }
        self.regions
            .iter()
            .find(|r| addr >= r.base && end <= r.base + r.len as u64)
            .map(|r| (r, (addr - r.base) as usize))
            .ok_or(Fault)
    }

    /// Calls `f(kernel pointer, offset in the range, length)` for each
    /// piece of `[addr, addr + len)` inside one chunk.
    fn pieces(
        &self,
        addr: u64,
        len: usize,
        mut f: impl FnMut(*mut u8, usize, usize),
    ) -> Result<(), Fault> {
        let (r, off) = self.find(addr, len)?;
        let mut done = 0;
        for (cofs, c) in r.chunks.iter() {
            let (start, end) = (*cofs, cofs + c.len);
            let (a, b) = ((off + done).max(start), (off + len).min(end));
            if a >= b || a != off + done {
                continue;
            }
            f(c.ptr.as_ptr().wrapping_add(a - start), done, b - a);
            done += b - a;
        }
        if done == len { Ok(()) } else { Err(Fault) }
    }
}

struct HostInner {
    user: Mutex<UserSpace>,
    /// Cluster allocations still allowed before failures start (<0: unlimited).
    cluster_budget: AtomicI64,
    clusters_live: AtomicUsize,
    cluster_bytes_live: AtomicUsize,
    log_lines: AtomicU64,
    /// The last [`HOST_LOG_KEEP`] messages.
    log_text: Mutex<std::collections::VecDeque<std::string::String>>,
    verbose: AtomicBool,
    /// `online_cpus()` reports this if non-zero, else the machine's count.
    online_cpus: AtomicU32,
    /// What `total_ram()` reports.
    total_ram: AtomicU64,
    /// Thread spawns still allowed before failures start (<0: unlimited).
    thread_budget: AtomicI64,
    /// Threads running now (spawned, handle not dropped yet).
    threads: Mutex<Vec<HostThreadInfo>>,
    next_thread_id: AtomicU64,
    /// Threads with a pending signal (see [`HostPlatform::signal_thread`]).
    signals: Mutex<Vec<std::thread::ThreadId>>,
    /// Sleepers alive, so that a signal can wake them.
    sleepers: Mutex<Vec<alloc::sync::Weak<SleeperState>>>,
    /// Pins still allowed before failures start (<0: unlimited).
    pin_budget: AtomicI64,
    /// Pinned ranges alive.
    pins_live: AtomicUsize,
    /// Sleeps left before every sleeper is "signalled" (<0: unlimited).
    sleep_budget: AtomicI64,
    /// Simulated eventfd descriptors.
    eventfds: Mutex<Vec<(i32, Arc<EventFdState>)>>,
    next_fd: AtomicU32,
}

/// The host platform. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct HostPlatform(Arc<HostInner>);

impl Default for HostPlatform {
    fn default() -> Self {
        Self::new()
    }
}

impl HostPlatform {
    pub fn new() -> Self {
        HostPlatform(Arc::new(HostInner {
            user: Mutex::new(UserSpace {
                next: 0x1000_0000,
                ..Default::default()
            }),
            cluster_budget: AtomicI64::new(-1),
            clusters_live: AtomicUsize::new(0),
            cluster_bytes_live: AtomicUsize::new(0),
            log_lines: AtomicU64::new(0),
            log_text: Mutex::new(std::collections::VecDeque::new()),
            verbose: AtomicBool::new(std::env::var_os("NM_HOST_VERBOSE").is_some()),
            online_cpus: AtomicU32::new(0),
            total_ram: AtomicU64::new(HOST_TOTAL_RAM),
            thread_budget: AtomicI64::new(-1),
            threads: Mutex::new(Vec::new()),
            next_thread_id: AtomicU64::new(0),
            signals: Mutex::new(Vec::new()),
            sleepers: Mutex::new(Vec::new()),
            sleep_budget: AtomicI64::new(-1),
            pin_budget: AtomicI64::new(-1),
            pins_live: AtomicUsize::new(0),
            eventfds: Mutex::new(Vec::new()),
            next_fd: AtomicU32::new(3),
        }))
    }

    fn user(&self) -> std::sync::MutexGuard<'_, UserSpace> {
        self.0.user.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Place `bytes` in the simulated user space; returns its address
    /// (page aligned; one contiguous allocation).
    pub fn user_map(&self, bytes: &[u8]) -> u64 {
        let pages = bytes.len().div_ceil(PAGE).max(1);
        self.user_map_chunks(bytes, pages)
    }

    /// Like [`HostPlatform::user_map`], but the memory is made of separate
    /// allocations of `pages` pages each, never adjacent: what pinned user
    /// memory looks like when its pages are scattered (EXTMEM).
    pub fn user_map_chunks(&self, bytes: &[u8], pages: usize) -> u64 {
        let len = bytes.len().div_ceil(PAGE).max(1) * PAGE;
        let step = pages.max(1) * PAGE;
        let mut chunks = Vec::new();
        let mut ofs = 0;
        while ofs < len {
            let n = step.min(len - ofs);
            let c = Chunk::new(n);
            let m = n.min(bytes.len().saturating_sub(ofs));
            let src = bytes.as_ptr().wrapping_add(ofs);
            // SAFETY: the chunk holds `n >= m` bytes and is not shared yet;
            // `src` has `m` bytes of `bytes` (`ofs + m <= bytes.len()`).
            unsafe { core::ptr::copy_nonoverlapping(src, c.ptr.as_ptr(), m) };
            chunks.push((ofs, c));
            ofs += n;
        }
        let mut u = self.user();
        let base = u.next;
        // Keep a gap between regions so that overruns fault.
        u.next += len as u64 + PAGE as u64;
        u.regions.push(URegion {
            base,
            len: bytes.len(),
            chunks,
        });
        base
    }

    /// Unmap the region at `base` (pins keep its memory).
    pub fn user_unmap(&self, base: u64) {
        self.user().regions.retain(|r| r.base != base);
    }

    /// Read back `len` bytes of simulated user memory.
    pub fn user_read(&self, addr: u64, len: usize) -> Result<Vec<u8>, Fault> {
        let mut v = alloc::vec![0u8; len];
        self.copy_from_user(&mut v, addr)?;
        Ok(v)
    }

    /// Overwrite simulated user memory.
    pub fn user_write(&self, addr: u64, bytes: &[u8]) -> Result<(), Fault> {
        self.copy_to_user(addr, bytes)
    }

    /// Make every access covering `addr` fault.
    pub fn user_poison(&self, addr: u64) {
        self.user().poisoned.push(addr);
    }

    /// Forget the whole simulated user space.
    pub fn user_clear(&self) {
        let mut u = self.user();
        u.regions.clear();
        u.poisoned.clear();
    }

    /// Allow `n` more cluster allocations, then fail (`None`: never fail).
    pub fn set_cluster_budget(&self, n: Option<u64>) {
        self.0
            .cluster_budget
            .store(n.map_or(-1, |n| n as i64), Ordering::SeqCst);
    }

    /// Clusters currently allocated, and their bytes.
    pub fn clusters_live(&self) -> (usize, usize) {
        (
            self.0.clusters_live.load(Ordering::SeqCst),
            self.0.cluster_bytes_live.load(Ordering::SeqCst),
        )
    }

    /// Number of log lines emitted so far.
    pub fn log_lines(&self) -> u64 {
        self.0.log_lines.load(Ordering::Relaxed)
    }

    /// The last log messages (at most [`HOST_LOG_KEEP`]), oldest first.
    pub fn log_messages(&self) -> Vec<std::string::String> {
        let l = self.0.log_text.lock().unwrap_or_else(|e| e.into_inner());
        l.iter().cloned().collect()
    }

    /// Make `online_cpus()` report `n` (at least 1) instead of the machine's
    /// CPU count (`None`: the machine's again). Bindings stay unenforced, so
    /// any count is harmless.
    pub fn set_online_cpus(&self, n: Option<u32>) {
        self.0
            .online_cpus
            .store(n.map_or(0, |n| n.max(1)), Ordering::SeqCst);
    }

    /// Make `total_ram()` report `bytes` (default [`HOST_TOTAL_RAM`]); read
    /// when a `Netmap` is created, for the default memory budget.
    pub fn set_total_ram(&self, bytes: u64) {
        self.0.total_ram.store(bytes, Ordering::SeqCst);
    }

    /// Allow `n` more thread spawns, then fail them with `ENOMEM` (`None`:
    /// never fail).
    pub fn set_thread_budget(&self, n: Option<u64>) {
        self.0
            .thread_budget
            .store(n.map_or(-1, |n| n as i64), Ordering::SeqCst);
    }

    /// The threads running now (spawned, handle not yet dropped), oldest
    /// first: what a test checks to see that polling threads were started
    /// with the right CPUs, and that none is left behind.
    pub fn threads(&self) -> Vec<HostThreadInfo> {
        self.thread_list().clone()
    }

    fn thread_list(&self) -> std::sync::MutexGuard<'_, Vec<HostThreadInfo>> {
        self.0.threads.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Send a signal to thread `t`: its current or next [`Sleeper::sleep`]
    /// returns [`Wake::Interrupted`] (once), as a process's sleep in the
    /// kernel ends when the process is killed.
    pub fn signal_thread(&self, t: std::thread::ThreadId) {
        self.0
            .signals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(t);
        let sleepers = self.0.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        for s in sleepers.iter().filter_map(alloc::sync::Weak::upgrade) {
            s.cv.notify_all();
        }
    }

    /// Allow `n` more [`Platform::pin_user_pages`] calls, then fail them
    /// with `ENOMEM` (`None`: never fail).
    pub fn set_pin_budget(&self, n: Option<u64>) {
        self.0
            .pin_budget
            .store(n.map_or(-1, |n| n as i64), Ordering::SeqCst);
    }

    /// Pinned ranges of user memory alive (EXTMEM regions not freed yet).
    pub fn pins_live(&self) -> usize {
        self.0.pins_live.load(Ordering::SeqCst)
    }

    /// Fault injection for fuzzing: the next `n` [`Sleeper::sleep`] calls
    /// return at once (without sleeping), the ones after that report a
    /// signal, so that a sync kernel loop makes `n` passes and ends with
    /// `EINTR` (`None`: sleeps are real again).
    pub fn set_sleep_budget(&self, n: Option<u64>) {
        self.0
            .sleep_budget
            .store(n.map_or(-1, |n| n as i64), Ordering::SeqCst);
    }

    fn eventfd_table(&self) -> std::sync::MutexGuard<'_, Vec<(i32, Arc<EventFdState>)>> {
        self.0.eventfds.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn eventfd_state(&self, fd: i32) -> Option<Arc<EventFdState>> {
        self.eventfd_table()
            .iter()
            .find(|(f, _)| *f == fd)
            .map(|(_, e)| e.clone())
    }

    /// Create a simulated eventfd (counter 0); returns its descriptor.
    pub fn eventfd_create(&self) -> i32 {
        let fd = self.0.next_fd.fetch_add(1, Ordering::SeqCst) as i32;
        let st = Arc::new(EventFdState {
            count: Mutex::new(0),
            wq: HostWaitQueue::new().unwrap_or_else(|| unreachable!()),
        });
        self.eventfd_table().push((fd, st));
        fd
    }

    /// Close an eventfd descriptor (references the kernel holds stay valid).
    pub fn eventfd_close(&self, fd: i32) {
        self.eventfd_table().retain(|(f, _)| *f != fd);
    }

    /// `write(fd, n)` on an eventfd; false if `fd` is not one.
    pub fn eventfd_write(&self, fd: i32, n: u64) -> bool {
        self.eventfd_state(fd).map(|e| e.add(n)).is_some()
    }

    /// Non-blocking `read(fd)`: the counter, reset to 0 (`None` if `fd` is
    /// not an eventfd).
    pub fn eventfd_read(&self, fd: i32) -> Option<u64> {
        let e = self.eventfd_state(fd)?;
        let mut c = e.count.lock().unwrap_or_else(|e| e.into_inner());
        Some(core::mem::take(&mut *c))
    }

    /// Wait until the counter of eventfd `fd` is non-zero or `timeout`
    /// passed; then read it like [`HostPlatform::eventfd_read`].
    pub fn eventfd_wait(&self, fd: i32, timeout: Duration) -> Option<u64> {
        let e = self.eventfd_state(fd)?;
        let end = std::time::Instant::now() + timeout;
        loop {
            let g = e.wq.generation();
            let v = self.eventfd_read(fd)?;
            let now = std::time::Instant::now();
            if v != 0 || now >= end {
                return Some(v);
            }
            e.wq.wait_since(g, end - now);
        }
    }
}

/// How many log messages [`HostPlatform::log_messages`] keeps.
pub const HOST_LOG_KEEP: usize = 256;

/// The RAM the host platform reports by default, whatever the machine
/// has, so that tests are reproducible: 64 GiB, a default budget of 32 GiB
/// (tests that open hundreds of default VALE ports stay below it; tests of
/// the budget set their own).
pub const HOST_TOTAL_RAM: u64 = 64 << 30;

/// A running host thread as [`HostPlatform::threads`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostThreadInfo {
    /// Unique per platform, in spawn order.
    pub id: u64,
    pub name: Vec<u8>,
    /// The CPU asked for (recorded, not enforced).
    pub cpu: Option<u32>,
}

/// How long an idle host thread sleeps before calling its work again
/// (a kernel sleeps one tick).
pub const HOST_THREAD_IDLE: std::time::Duration = std::time::Duration::from_millis(1);

/// The stop flag of a host thread, with a condition variable that wakes
/// it from its idle sleep.
#[derive(Default)]
struct StopFlag {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl StopFlag {
    fn get(&self) -> std::sync::MutexGuard<'_, bool> {
        self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The handle of a host thread ([`Platform::Thread`] of [`HostPlatform`]).
/// Dropping it stops the thread and joins it; if `work()` panicked, the
/// panic is resumed in the dropping thread (so a test sees it).
pub struct HostThread {
    id: u64,
    cpu: Option<u32>,
    stop: Arc<StopFlag>,
    join: Option<std::thread::JoinHandle<()>>,
    platform: HostPlatform,
}

impl HostThread {
    /// The CPU the thread was asked to run on.
    pub fn cpu(&self) -> Option<u32> {
        self.cpu
    }

    /// Whether the thread is still running (false only if `work()`
    /// panicked; the panic is resumed when the handle is dropped).
    pub fn is_running(&self) -> bool {
        self.join.as_ref().is_some_and(|j| !j.is_finished())
    }
}

impl Drop for HostThread {
    fn drop(&mut self) {
        *self.stop.get() = true;
        self.stop.cv.notify_all();
        let result = match self.join.take() {
            Some(j) => {
                assert!(
                    j.thread().id() != std::thread::current().id() || std::thread::panicking(),
                    "a kernel thread's handle dropped by its own work closure"
                );
                j.join()
            }
            None => Ok(()),
        };
        self.platform.thread_list().retain(|t| t.id != self.id);
        if let Err(payload) = result
            && !std::thread::panicking()
        {
            std::panic::resume_unwind(payload);
        }
    }
}

/// The loop of a host thread: `work()` until stopped, yielding after busy
/// rounds, sleeping [`HOST_THREAD_IDLE`] (or until stopped) after idle ones.
fn host_thread_loop(stop: &StopFlag, mut work: ThreadWork) {
    while !*stop.get() {
        if work() {
            std::thread::yield_now();
            continue;
        }
        let guard = stop.get();
        let _ = stop
            .cv
            .wait_timeout_while(guard, HOST_THREAD_IDLE, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
    }
    drop(work);
}

impl Platform for HostPlatform {
    type SpinLock = HostLock;
    type Mutex = HostLock;
    type WaitQueue = HostWaitQueue;
    type Thread = HostThread;
    type Sleeper = HostSleeper;
    type EventFd = HostEventFd;
    type Watch<'a> = HostWatch<'a>;
    type UserPages = HostUserPages;

    fn alloc_cluster(&self, size: usize) -> Option<NonNull<u8>> {
        let budget = &self.0.cluster_budget;
        if budget.load(Ordering::SeqCst) >= 0 && budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
            budget.store(0, Ordering::SeqCst);
            return None;
        }
        let layout = std::alloc::Layout::from_size_align(size, crate::platform::PAGE_SIZE).ok()?;
        if size == 0 {
            return None;
        }
        // SAFETY: the layout has a non-zero size.
        let p = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        self.0.clusters_live.fetch_add(1, Ordering::SeqCst);
        self.0.cluster_bytes_live.fetch_add(size, Ordering::SeqCst);
        Some(p)
    }

    unsafe fn free_cluster(&self, ptr: NonNull<u8>, size: usize) {
        let Ok(layout) = std::alloc::Layout::from_size_align(size, crate::platform::PAGE_SIZE)
        else {
            return;
        };
        self.0.clusters_live.fetch_sub(1, Ordering::SeqCst);
        self.0.cluster_bytes_live.fetch_sub(size, Ordering::SeqCst);
        // SAFETY: the caller guarantees ptr/size come from alloc_cluster,
        // which used this same layout.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) }
    }

    fn pin_user_pages(&self, addr: u64, npages: usize) -> crate::Result<HostUserPages> {
        let budget = &self.0.pin_budget;
        if budget.load(Ordering::SeqCst) >= 0 && budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
            budget.store(0, Ordering::SeqCst);
            return Err(crate::Errno::ENOMEM);
        }
        if !addr.is_multiple_of(PAGE as u64) {
            return Err(crate::Errno::EFAULT);
        }
        let len = npages.checked_mul(PAGE).ok_or(crate::Errno::EFAULT)?;
        let u = self.user();
        // Every page must be mapped (a region's last page counts whole) and
        // none poisoned.
        let (r, off) = u.find(addr, 1).map_err(|_| crate::Errno::EFAULT)?;
        let end = addr.checked_add(len as u64).ok_or(crate::Errno::EFAULT)?;
        if npages == 0
            || off + len > r.len.div_ceil(PAGE) * PAGE
            || u.poisoned.iter().any(|&p| p >= addr && p < end)
        {
            return Err(crate::Errno::EFAULT);
        }
        let mut pages = Vec::new();
        let mut chunks: Vec<Arc<Chunk>> = Vec::new();
        for i in 0..npages {
            let o = off + i * PAGE;
            let (cofs, c) = r
                .chunks
                .iter()
                .find(|(cofs, c)| o >= *cofs && o < cofs + c.len)
                .ok_or(crate::Errno::EFAULT)?;
            pages.push(c.ptr.as_ptr().wrapping_add(o - cofs) as usize);
            if !chunks.iter().any(|x| Arc::ptr_eq(x, c)) {
                chunks.push(c.clone());
            }
        }
        self.0.pins_live.fetch_add(1, Ordering::SeqCst);
        Ok(HostUserPages {
            pages,
            _chunks: chunks,
            platform: self.clone(),
        })
    }

    fn copy_from_user(&self, dst: &mut [u8], src: u64) -> Result<(), Fault> {
        let u = self.user();
        let d = dst.as_mut_ptr();
        u.pieces(src, dst.len(), |p, at, n| {
            // SAFETY: `p` points to `n` bytes of a live chunk (held by the
            // region, under the lock), `d + at` to `n` bytes of `dst`.
            unsafe { core::ptr::copy_nonoverlapping(p, d.wrapping_add(at), n) }
        })
    }

    fn copy_to_user(&self, dst: u64, src: &[u8]) -> Result<(), Fault> {
        let u = self.user();
        u.pieces(dst, src.len(), |p, at, n| {
            // SAFETY: as in copy_from_user, the other way round.
            unsafe { core::ptr::copy_nonoverlapping(src.as_ptr().wrapping_add(at), p, n) }
        })
    }

    fn now(&self) -> (i64, i64) {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (d.as_secs() as i64, d.subsec_micros() as i64)
    }

    fn log(&self, level: LogLevel, args: fmt::Arguments<'_>) {
        self.0.log_lines.fetch_add(1, Ordering::Relaxed);
        {
            let mut l = self.0.log_text.lock().unwrap_or_else(|e| e.into_inner());
            if l.len() == HOST_LOG_KEEP {
                l.pop_front();
            }
            l.push_back(std::format!("{args}"));
        }
        if self.0.verbose.load(Ordering::Relaxed) {
            std::eprintln!("netmap[{level:?}]: {args}");
        }
    }

    fn total_ram(&self) -> u64 {
        self.0.total_ram.load(Ordering::SeqCst)
    }

    fn online_cpus(&self) -> u32 {
        match self.0.online_cpus.load(Ordering::SeqCst) {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)),
            n => n,
        }
    }

    fn spawn_thread(
        &self,
        name: &[u8],
        cpu: Option<u32>,
        work: ThreadWork,
    ) -> crate::Result<HostThread> {
        if cpu.is_some_and(|c| c >= self.online_cpus()) {
            return Err(crate::Errno::EINVAL);
        }
        let budget = &self.0.thread_budget;
        if budget.load(Ordering::SeqCst) >= 0 && budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
            budget.store(0, Ordering::SeqCst);
            return Err(crate::Errno::ENOMEM);
        }
        // A C string on a kernel: up to the first NUL (std refuses NULs).
        let name = name.split(|&b| b == 0).next().unwrap_or_default();
        let stop = Arc::new(StopFlag::default());
        let thread_stop = stop.clone();
        let join = std::thread::Builder::new()
            .name(alloc::string::String::from_utf8_lossy(name).into_owned())
            .spawn(move || host_thread_loop(&thread_stop, work))
            .map_err(|_| crate::Errno::ENOMEM)?;
        let id = self.0.next_thread_id.fetch_add(1, Ordering::SeqCst);
        self.thread_list().push(HostThreadInfo {
            id,
            name: name.to_vec(),
            cpu,
        });
        Ok(HostThread {
            id,
            cpu,
            stop,
            join: Some(join),
            platform: self.clone(),
        })
    }

    fn sleep_us(&self, us: u32) {
        std::thread::sleep(Duration::from_micros(u64::from(us)));
    }

    fn sleeper(&self) -> crate::Result<HostSleeper> {
        let s = Arc::new(SleeperState {
            woken: Mutex::new(false),
            cv: Condvar::new(),
            platform: Arc::downgrade(&self.0),
        });
        let mut list = self.0.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&s));
        Ok(HostSleeper(s))
    }

    fn watch_wq<'a>(
        &self,
        s: &'a HostSleeper,
        wq: &'a HostWaitQueue,
    ) -> crate::Result<HostWatch<'a>> {
        let state = Arc::new(WatchState {
            fired: AtomicBool::new(false),
            sleeper: s.0.clone(),
        });
        wq.watch_list().push(state.clone());
        Ok(HostWatch { state, wq })
    }

    fn eventfd(&self, fd: i32) -> crate::Result<HostEventFd> {
        self.eventfd_state(fd)
            .map(HostEventFd)
            .ok_or(crate::Errno::EBADF)
    }

    fn watch_eventfd<'a>(
        &self,
        s: &'a HostSleeper,
        e: &'a HostEventFd,
    ) -> crate::Result<HostWatch<'a>> {
        self.watch_wq(s, &e.0.wq)
    }
}

/// A fake network interface for tests: frames "transmitted" are recorded,
/// frames given to the "host stack" too; tests push received frames with
/// [`crate::adapter::Adapter::rx_push`] on the adapter handed to
/// `register`.
pub struct HostNetif {
    pub name: crate::name::Name,
    pub cfg: crate::netif::NetifConfig,
    pub sent: Mutex<Vec<Vec<u8>>>,
    pub to_host: Mutex<Vec<Vec<u8>>>,
    /// The adapter while in netmap mode.
    pub adapter: Mutex<Option<alloc::sync::Weak<crate::adapter::Adapter<HostPlatform>>>>,
    /// Frames accepted by `transmit` before it reports a full queue.
    pub tx_budget: Mutex<Option<usize>>,
    /// While set, every frame `transmit` accepts stays in flight on its
    /// ring until [`HostNetif::complete`] (TX completion tracking).
    pub hold_tx: AtomicBool,
    /// Frames in flight per hardware TX ring (what `tx_inflight` reports).
    pub inflight: Mutex<Vec<u32>>,
    /// A simulated netmap-aware driver of the device (native mode).
    pub native: Mutex<Option<Arc<crate::host_native::SimNic>>>,
}

impl HostNetif {
    pub fn new(name: &str, rings: u32, slots: u32) -> Arc<Self> {
        Arc::new(HostNetif {
            name: crate::name::Name::from_c(name.as_bytes()),
            cfg: crate::netif::NetifConfig {
                rings: [rings, rings],
                slots: [slots, slots],
                mtu: 1500,
                max_rx_buf: 2048,
            },
            sent: Mutex::new(Vec::new()),
            to_host: Mutex::new(Vec::new()),
            adapter: Mutex::new(None),
            tx_budget: Mutex::new(None),
            hold_tx: AtomicBool::new(false),
            inflight: Mutex::new(alloc::vec![0; rings as usize]),
            native: Mutex::new(None),
        })
    }

    /// A device with a simulated native driver of `rings` queues of
    /// `descs` descriptors.
    pub fn with_native(name: &str, rings: u32, descs: u32) -> Arc<Self> {
        let n = Self::new(name, rings, descs);
        *n.native.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(crate::host_native::SimNic::new(rings, descs));
        n
    }

    /// The simulated native driver, if any.
    pub fn sim(&self) -> Option<Arc<crate::host_native::SimNic>> {
        self.native
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Frames in flight on TX ring `ring`.
    pub fn inflight(&self, ring: u32) -> u32 {
        let v = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        v.get(ring as usize).copied().unwrap_or(0)
    }

    /// Set the in-flight count of TX ring `ring` (no wake-up).
    pub fn set_inflight(&self, ring: u32, n: u32) {
        let mut v = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = v.get_mut(ring as usize) {
            *c = n;
        }
    }

    /// Complete up to `n` in-flight frames of TX ring `ring` and wake the
    /// ring's waiters, like a device's TX completion. Returns how many
    /// completed.
    pub fn complete(&self, ring: u32, n: u32) -> u32 {
        let done = {
            let mut v = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            let Some(c) = v.get_mut(ring as usize) else {
                return 0;
            };
            let d = n.min(*c);
            *c -= d;
            d
        };
        if let Some(na) = self.adapter()
            && let Some(k) = na.kring(crate::kring::Dir::Tx, ring)
        {
            na.notify(k);
        }
        done
    }

    /// The adapter, while some file has the interface in netmap mode.
    pub fn adapter(&self) -> Option<Arc<crate::adapter::Adapter<HostPlatform>>> {
        self.adapter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|w| w.upgrade())
    }
}

fn frame_bytes(frame: &crate::netif::Frame<'_, HostPlatform>) -> Vec<u8> {
    let mut v = alloc::vec![0u8; frame.len()];
    let n = frame.copy_to(&mut v);
    v.truncate(n);
    v
}

impl crate::netif::NetifOps<HostPlatform> for HostNetif {
    fn name(&self) -> crate::name::Name {
        self.name
    }
    fn config(&self) -> crate::netif::NetifConfig {
        self.cfg
    }
    fn register(
        &self,
        na: &Arc<crate::adapter::Adapter<HostPlatform>>,
        on: bool,
    ) -> crate::Result<()> {
        *self.adapter.lock().unwrap_or_else(|e| e.into_inner()) = on.then(|| Arc::downgrade(na));
        Ok(())
    }
    fn transmit(&self, ring: u32, frame: &crate::netif::Frame<'_, HostPlatform>) -> bool {
        let mut budget = self.tx_budget.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = budget.as_mut() {
            if *b == 0 {
                return false;
            }
            *b -= 1;
        }
        if self.hold_tx.load(Ordering::Relaxed) {
            let mut v = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = v.get_mut(ring as usize) {
                *c += 1;
            }
        }
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(frame_bytes(frame));
        true
    }
    fn host_inject(&self, frame: &crate::netif::Frame<'_, HostPlatform>) -> crate::Result<()> {
        self.to_host
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(frame_bytes(frame));
        Ok(())
    }
    fn tx_inflight(&self, ring: u32) -> u32 {
        self.inflight(ring)
    }
    fn native(&self) -> Option<Arc<dyn crate::native::NativeOps>> {
        self.sim().map(|s| s as Arc<dyn crate::native::NativeOps>)
    }
}

/// What a [`HostNetifProvider`] was asked to do with persistent-port
/// interfaces, and fault injection for it.
#[derive(Debug, Default)]
pub struct HostIfLog {
    /// `(true, name)` for each create, `(false, name)` for each delete.
    pub calls: Vec<(bool, Vec<u8>)>,
    /// Interfaces of persistent ports that exist now.
    pub live: Vec<Vec<u8>>,
    /// The next create or delete fails with this errno.
    pub fail_next: Option<crate::Errno>,
}

/// Interface lookup over a fixed list of [`HostNetif`]s; persistent-port
/// interfaces are recorded in a shared [`HostIfLog`].
#[derive(Default)]
pub struct HostNetifProvider {
    pub nics: Vec<Arc<HostNetif>>,
    pub log: Arc<Mutex<HostIfLog>>,
}

impl HostNetifProvider {
    pub fn new(nics: Vec<Arc<HostNetif>>) -> Self {
        HostNetifProvider {
            nics,
            log: Arc::default(),
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, HostIfLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl crate::netif::NetifProvider<HostPlatform> for HostNetifProvider {
    fn lookup(&self, name: &[u8]) -> Option<Arc<dyn crate::netif::NetifOps<HostPlatform>>> {
        self.nics
            .iter()
            .find(|n| n.name.as_bytes() == name)
            .map(|n| n.clone() as Arc<dyn crate::netif::NetifOps<HostPlatform>>)
    }

    fn exists(&self, name: &[u8]) -> bool {
        self.lookup(name).is_some() || self.log().live.iter().any(|n| n == name)
    }

    fn create_persistent(&self, name: &[u8]) -> crate::Result<()> {
        let mut log = self.log();
        log.calls.push((true, name.to_vec()));
        if let Some(e) = log.fail_next.take() {
            return Err(e);
        }
        if log.live.iter().any(|n| n == name) {
            return Err(crate::Errno::EEXIST);
        }
        log.live.push(name.to_vec());
        Ok(())
    }

    fn delete_persistent(&self, name: &[u8]) -> crate::Result<()> {
        let mut log = self.log();
        log.calls.push((false, name.to_vec()));
        if let Some(e) = log.fail_next.take() {
            return Err(e);
        }
        let pos = log
            .live
            .iter()
            .position(|n| n == name)
            .ok_or(crate::Errno::ENXIO)?;
        log.live.swap_remove(pos);
        Ok(())
    }
}
