//! The core's platform trait on Windows kernel primitives.
//!
//! | Platform item | Windows primitive |
//! | --- | --- |
//! | `SpinLock` | `KSPIN_LOCK`: `KeAcquireSpinLockRaiseToDpc` / `KeReleaseSpinLock` (usable from NDIS receive/send paths at DISPATCH_LEVEL) |
//! | `Mutex` | `KMUTEX`: `KeInitializeMutex`, `KeWaitForSingleObject` (KernelMode, not alertable), `KeReleaseMutex` (PASSIVE_LEVEL stays PASSIVE: system threads can be created with it held) |
//! | `WaitQueue` | a `KSPIN_LOCK`-protected list of waiters, each a `KEVENT` of a waiting `NM_IOCTL_WAIT`; `wake_all` = `KeSetEvent` on each |
//! | `alloc_cluster` / `free_cluster` | `ExAllocatePoolWithTag(NonPagedPoolNx)` (page aligned for page multiples, zeroed) / `ExFreePoolWithTag`; a mapping describes the region's pages with an MDL (`device.rs`) |
//! | `copy_from_user` / `copy_to_user` | glue.c: `ProbeForRead`/`ProbeForWrite` + copy inside `__try/__except` (no SEH in Rust) |
//! | `now` | `KeQuerySystemTime` (glue.c), converted from 1601/100 ns to the Unix epoch |
//! | `log` | `DbgPrintEx(DPFLTR_IHVNETWORK_ID, level, "netmap: %.*s\n")` |
//! | `online_cpus` | `KeQueryActiveProcessorCountEx(ALL_PROCESSOR_GROUPS)` |
//! | `total_ram` | the sum of `MmGetPhysicalMemoryRanges()` (asked once, at load) |
//! | `spawn_thread` | `PsCreateSystemThread` + `ObReferenceObjectByHandle` (the thread object) + `KeSetSystemAffinityThreadEx` in the thread; stop: a flag + `KeSetEvent`, join: `KeWaitForSingleObject` on the thread object; idle sleep: a 1 ms wait on the stop event |
//! | `Sleeper` (sync kernel loop) | a synchronization `KEVENT` in nonpaged pool: `wake` = `KeSetEvent`, `sleep` = `KeWaitForSingleObject(UserMode, Alertable)` with a relative timeout (`STATUS_USER_APC`/`STATUS_ALERTED`, e.g. the process terminating, is "interrupted"); timeout 0: an alertable `KeDelayExecutionThread` of 0 |
//! | `sleep_us` | `KeDelayExecutionThread(KernelMode, not alertable)` |
//! | `EventFd`, `watch_wq`, `watch_eventfd` | none: Windows has no eventfd; the SYNC_KLOOP_EVENTFDS option answers `EOPNOTSUPP` (the loop works in sleep mode) |
//! | `pin_user_pages` (EXTMEM) | glue.c: an MDL (`IoAllocateMdl`, under 4 GiB), `MmProbeAndLockPages(UserMode, IoWriteAccess)` inside `__try`, `MmGetSystemAddressForMdlSafe` (one run of system addresses); released with `MmUnlockPages` + `IoFreeMdl`; same pages = same PFN array |

use crate::POOL_TAG;
use crate::ffi::{self, KEVENT, KMUTANT};
use alloc::boxed::Box;
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use netmap_core::Errno;
use netmap_core::fmtbuf::StackBuf;
use netmap_core::platform::{
    Fault, LogLevel, NoEventFd, NoWatch, PAGE_SIZE, Platform, RawLock, Sleeper, ThreadWork,
    UserPages, WaitQueue, Wake,
};

/// The Windows kernel as seen by netmap-core. Stateless.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowsPlatform;

/// Seconds between 1601-01-01 and 1970-01-01.
const EPOCH_DIFF_SECS: i64 = 11_644_473_600;

impl Platform for WindowsPlatform {
    type SpinLock = SpinLock;
    type Mutex = Mutex;
    type WaitQueue = KernelWaitQueue;
    type Thread = SystemThread;
    type Sleeper = KernelSleeper;
    type EventFd = NoEventFd;
    type Watch<'a> = NoWatch;
    type UserPages = KernelUserPages;

    fn alloc_cluster(&self, size: usize) -> Option<NonNull<u8>> {
        if size == 0 || !size.is_multiple_of(PAGE_SIZE) {
            return None;
        }
        // SAFETY: plain pool allocation; blocks of a page or more are page
        // aligned.
        let p = unsafe { ffi::ExAllocatePoolWithTag(ffi::NON_PAGED_POOL_NX, size, POOL_TAG) };
        let p = NonNull::new(p.cast::<u8>())?;
        if !(p.as_ptr() as usize).is_multiple_of(PAGE_SIZE) {
            // SAFETY: just allocated with our tag, not used.
            unsafe { ffi::ExFreePoolWithTag(p.as_ptr().cast(), POOL_TAG) };
            return None;
        }
        // SAFETY: `size` writable bytes just allocated.
        unsafe { ptr::write_bytes(p.as_ptr(), 0, size) };
        Some(p)
    }

    unsafe fn free_cluster(&self, ptr: NonNull<u8>, _size: usize) {
        // SAFETY: from alloc_cluster (contract), no longer used or mapped.
        unsafe { ffi::ExFreePoolWithTag(ptr.as_ptr().cast(), POOL_TAG) }
    }

    fn total_ram(&self) -> u64 {
        // SAFETY: no preconditions but PASSIVE_LEVEL (the core asks once,
        // when the driver loads).
        let ranges = unsafe { ffi::MmGetPhysicalMemoryRanges() };
        if ranges.is_null() {
            return 0;
        }
        let mut total = 0u64;
        let mut p = ranges;
        loop {
            // SAFETY: `p` is inside the array, which ends with an all-zero
            // entry that stops the walk before its end.
            let r = unsafe { p.read() };
            if r.base_address == 0 && r.number_of_bytes == 0 {
                break;
            }
            total = total.saturating_add(u64::try_from(r.number_of_bytes).unwrap_or(0));
            // SAFETY: not past the terminating entry (checked above).
            p = unsafe { p.add(1) };
        }
        // SAFETY: allocated by the kernel for us, freed once, not used after.
        unsafe { ffi::ExFreePoolWithTag(ranges.cast(), 0) };
        total
    }

    fn copy_from_user(&self, dst: &mut [u8], src: u64) -> Result<(), Fault> {
        // SAFETY: dst is a writable kernel buffer of dst.len() bytes; glue.c
        // probes the user range and catches faults.
        let r = unsafe { ffi::nm_glue_copy_from_user(dst.as_mut_ptr(), src, dst.len()) };
        if r == 0 { Ok(()) } else { Err(Fault) }
    }

    fn copy_to_user(&self, dst: u64, src: &[u8]) -> Result<(), Fault> {
        // SAFETY: src is a readable kernel buffer; glue.c probes the user
        // range and catches faults.
        let r = unsafe { ffi::nm_glue_copy_to_user(dst, src.as_ptr(), src.len()) };
        if r == 0 { Ok(()) } else { Err(Fault) }
    }

    fn now(&self) -> (i64, i64) {
        // SAFETY: reads the shared system time, no preconditions.
        let t = unsafe { ffi::nm_glue_system_time() };
        let us = t / 10;
        (us / 1_000_000 - EPOCH_DIFF_SECS, us % 1_000_000)
    }

    fn log(&self, level: LogLevel, args: core::fmt::Arguments<'_>) {
        log(level, args);
    }

    fn online_cpus(&self) -> u32 {
        // SAFETY: no preconditions.
        unsafe { ffi::KeQueryActiveProcessorCountEx(ffi::ALL_PROCESSOR_GROUPS) }.max(1)
    }

    fn spawn_thread(
        &self,
        _name: &[u8],
        cpu: Option<u32>,
        work: ThreadWork,
    ) -> netmap_core::Result<SystemThread> {
        // Affinity masks address group 0 only (64 CPUs).
        let affinity = match cpu {
            None => 0,
            Some(c) if c < self.online_cpus() && c < usize::BITS => 1usize << c,
            Some(_) => return Err(Errno::EINVAL),
        };
        let ctx = Box::new(ThreadCtx {
            work: UnsafeCell::new(work),
            stop: AtomicBool::new(false),
            // SAFETY: KEVENT is plain data; KeInitializeEvent below.
            event: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            affinity,
        });
        let ctx = Box::into_raw(ctx);
        // SAFETY: ctx is a live, exclusively owned allocation.
        unsafe { ffi::KeInitializeEvent((*ctx).event.get(), ffi::NOTIFICATION_EVENT, 0) };
        let mut attrs = ffi::OBJECT_ATTRIBUTES {
            Length: size_of::<ffi::OBJECT_ATTRIBUTES>() as u32,
            RootDirectory: ptr::null_mut(),
            ObjectName: ptr::null_mut(),
            Attributes: ffi::OBJ_KERNEL_HANDLE,
            SecurityDescriptor: ptr::null_mut(),
            SecurityQualityOfService: ptr::null_mut(),
        };
        let mut handle: *mut c_void = ptr::null_mut();
        // SAFETY: valid out pointers; `ctx` stays allocated until the thread
        // has exited (SystemThread::drop) or, on failure, is freed below
        // without any thread having seen it.
        let st = unsafe {
            ffi::PsCreateSystemThread(
                &mut handle,
                ffi::THREAD_ALL_ACCESS,
                &mut attrs,
                ptr::null_mut(),
                ptr::null_mut(),
                thread_main,
                ctx.cast(),
            )
        };
        if st != ffi::STATUS_SUCCESS {
            // SAFETY: from Box::into_raw above, never shared.
            drop(unsafe { Box::from_raw(ctx) });
            return Err(Errno::ENOMEM);
        }
        let mut thread: *mut c_void = ptr::null_mut();
        // SAFETY: a kernel handle we own; a thread object reference keeps
        // the object (not the thread) alive for the join.
        let st = unsafe {
            ffi::ObReferenceObjectByHandle(
                handle,
                ffi::THREAD_ALL_ACCESS,
                ptr::null_mut(),
                ffi::KERNEL_MODE,
                &mut thread,
                ptr::null_mut(),
            )
        };
        // SAFETY: our kernel handle, closed once (the reference, if taken,
        // keeps the object).
        unsafe { ffi::ZwClose(handle) };
        let Some(thread) = NonNull::new(thread).filter(|_| st == ffi::STATUS_SUCCESS) else {
            // Cannot happen for our own fresh handle; if it did, the thread
            // is running with `ctx`: stop it and leak `ctx` rather than free
            // memory a running thread may use.
            // SAFETY: ctx is live (leaked on purpose).
            unsafe { (*ctx).request_stop() };
            return Err(Errno::ENOMEM);
        };
        Ok(SystemThread {
            thread,
            // SAFETY: non-null from Box::into_raw.
            ctx: unsafe { NonNull::new_unchecked(ctx) },
        })
    }

    fn sleep_us(&self, us: u32) {
        let delay = -10 * i64::from(us);
        // SAFETY: a relative delay of this thread (passive level: the
        // control path, as the trait requires).
        unsafe { ffi::KeDelayExecutionThread(ffi::KERNEL_MODE, 0, &delay) };
    }

    fn sleeper(&self) -> netmap_core::Result<KernelSleeper> {
        // SAFETY: KEVENT is plain data, initialized right away.
        let ev = Box::new(UnsafeCell::new(unsafe { core::mem::zeroed::<KEVENT>() }));
        // SAFETY: fresh, exclusively owned, nonpaged (the global allocator).
        unsafe { ffi::KeInitializeEvent(ev.get(), ffi::SYNCHRONIZATION_EVENT, 0) };
        Ok(KernelSleeper(ev))
    }

    fn watch_wq<'a>(
        &self,
        _s: &'a KernelSleeper,
        _wq: &'a KernelWaitQueue,
    ) -> netmap_core::Result<NoWatch> {
        Err(Errno::EOPNOTSUPP)
    }

    fn eventfd(&self, _fd: i32) -> netmap_core::Result<NoEventFd> {
        Err(Errno::EOPNOTSUPP)
    }

    fn watch_eventfd<'a>(
        &self,
        _s: &'a KernelSleeper,
        e: &'a NoEventFd,
    ) -> netmap_core::Result<NoWatch> {
        match *e {}
    }

    fn pin_user_pages(&self, addr: u64, npages: usize) -> netmap_core::Result<KernelUserPages> {
        let mut err = 0i32;
        // SAFETY: PASSIVE_LEVEL in the calling process's context (the
        // core's callers: a REGISTER request); `err` is valid for writes.
        let u = unsafe { ffi::nm_glue_pin_user(addr, npages, &mut err) };
        NonNull::new(u)
            .map(|u| KernelUserPages(u, npages))
            .ok_or(if err < 0 { Errno(-err) } else { Errno::EFAULT })
    }
}

/// Where the sync kernel loop sleeps: a synchronization event (auto-reset:
/// a wake-up before the sleep is kept, one sleep consumes it).
#[derive(Debug)]
pub struct KernelSleeper(Box<UnsafeCell<KEVENT>>);

// SAFETY: a kernel event is made to be set from any thread and waited on.
unsafe impl Send for KernelSleeper {}
// SAFETY: as above; every access goes through the kernel's event API.
unsafe impl Sync for KernelSleeper {}

impl Sleeper for KernelSleeper {
    fn sleep(&self, timeout_ns: u64) -> Wake {
        if timeout_ns == 0 {
            let zero = 0i64;
            // SAFETY: a zero, alertable delay of this thread: yields, and
            // returns early if the thread is being terminated.
            let st = unsafe { ffi::KeDelayExecutionThread(ffi::USER_MODE, 1, &zero) };
            return if st == ffi::STATUS_USER_APC || st == ffi::STATUS_ALERTED {
                Wake::Interrupted
            } else {
                Wake::Timeout
            };
        }
        let timeout = -i64::try_from(timeout_ns / 100).unwrap_or(i64::MAX);
        // SAFETY: an initialized event alive for `&self`; the caller is the
        // loop's thread at passive level (trait contract).
        let st = unsafe {
            ffi::KeWaitForSingleObject(
                self.0.get().cast(),
                ffi::EXECUTIVE,
                ffi::USER_MODE,
                1,
                &timeout,
            )
        };
        match st {
            ffi::STATUS_SUCCESS => Wake::Woken,
            ffi::STATUS_TIMEOUT => Wake::Timeout,
            _ => Wake::Interrupted,
        }
    }

    fn wake(&self) {
        // SAFETY: an initialized event alive for `&self`; callable at
        // IRQL <= DISPATCH_LEVEL.
        unsafe { ffi::KeSetEvent(self.0.get(), 0, 0) };
    }
}

/// Pages of a process locked by glue.c's `nm_glue_pin_user` (EXTMEM),
/// with their page count.
#[derive(Debug)]
pub struct KernelUserPages(NonNull<c_void>, usize);

// SAFETY: locked pages belong to no thread; the MDL is only read.
unsafe impl Send for KernelUserPages {}
// SAFETY: as above.
unsafe impl Sync for KernelUserPages {}

impl UserPages for KernelUserPages {
    fn count(&self) -> usize {
        self.1
    }

    fn page(&self, i: usize) -> Option<NonNull<u8>> {
        if i >= self.1 {
            return None;
        }
        // SAFETY: a live locked range and an index below its page count.
        NonNull::new(unsafe { ffi::nm_glue_upage_addr(self.0.as_ptr(), i) })
    }

    fn same_pages(&self, other: &Self) -> bool {
        // SAFETY: two live locked ranges.
        unsafe { ffi::nm_glue_upages_same(self.0.as_ptr(), other.0.as_ptr()) != 0 }
    }
}

impl Drop for KernelUserPages {
    fn drop(&mut self) {
        // SAFETY: from nm_glue_pin_user, released once; the region built
        // over these pages is gone (it owned this value). Regions are
        // dropped at IRQL <= DISPATCH_LEVEL (the data path's spin locks).
        unsafe { ffi::nm_glue_unpin_user(self.0.as_ptr()) }
    }
}

/// What a system thread shares with its handle.
struct ThreadCtx {
    /// Used only by the thread until it has exited.
    work: UnsafeCell<ThreadWork>,
    stop: AtomicBool,
    /// Notification event set to stop the thread (cuts the idle sleep).
    event: UnsafeCell<KEVENT>,
    affinity: usize,
}

impl ThreadCtx {
    /// # Safety
    /// `self` is live.
    unsafe fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        // SAFETY: initialized event, alive (contract).
        unsafe { ffi::KeSetEvent(self.event.get(), 0, 0) };
    }
}

/// 1 ms, relative (negative), in 100 ns units.
const IDLE_SLEEP: i64 = -10_000;

/// The body of a netmap system thread.
///
/// # Safety
/// `ctx` is a live `ThreadCtx` whose work closure only this thread calls.
unsafe extern "system" fn thread_main(ctx: *mut c_void) {
    // SAFETY: by the contract.
    let ctx = unsafe { &*ctx.cast::<ThreadCtx>() };
    if ctx.affinity != 0 {
        // SAFETY: a mask of one online CPU of group 0 (checked at spawn).
        unsafe { ffi::KeSetSystemAffinityThreadEx(ctx.affinity) };
    }
    while !ctx.stop.load(Ordering::Acquire) {
        // SAFETY: only this thread calls the closure while it runs.
        let busy = unsafe { (*ctx.work.get())() };
        if busy {
            let zero = 0i64;
            // SAFETY: a zero relative delay yields the CPU to ready threads.
            unsafe { ffi::KeDelayExecutionThread(ffi::KERNEL_MODE, 0, &zero) };
        } else {
            // SAFETY: live event; a 1 ms timeout or the stop signal ends it.
            unsafe {
                ffi::KeWaitForSingleObject(
                    ctx.event.get().cast(),
                    ffi::EXECUTIVE,
                    ffi::KERNEL_MODE,
                    0,
                    &IDLE_SLEEP,
                )
            };
        }
    }
    // SAFETY: terminates this system thread; never returns.
    unsafe { ffi::PsTerminateSystemThread(ffi::STATUS_SUCCESS) };
}

/// A running system thread; dropping it stops and joins it.
#[derive(Debug)]
pub struct SystemThread {
    /// The referenced thread object (waitable: signaled at exit).
    thread: NonNull<c_void>,
    ctx: NonNull<ThreadCtx>,
}

// SAFETY: the thread object reference and the context are usable from any
// thread; the work closure is touched only by the thread (until it exits)
// and then freed by the dropper, and it is `Send`.
unsafe impl Send for SystemThread {}
// SAFETY: `&SystemThread` gives access to nothing.
unsafe impl Sync for SystemThread {}

impl core::fmt::Debug for ThreadCtx {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ThreadCtx")
    }
}

impl Drop for SystemThread {
    fn drop(&mut self) {
        // SAFETY: ctx is live until freed below.
        unsafe { self.ctx.as_ref().request_stop() };
        // SAFETY: our reference to the thread object; it is signaled when
        // the thread has terminated. Never called from the thread itself
        // (Platform::Thread contract).
        unsafe {
            ffi::KeWaitForSingleObject(
                self.thread.as_ptr(),
                ffi::EXECUTIVE,
                ffi::KERNEL_MODE,
                0,
                ptr::null(),
            )
        };
        // SAFETY: the reference taken at spawn, dropped once.
        unsafe { ffi::ObfDereferenceObject(self.thread.as_ptr()) };
        // SAFETY: from Box::into_raw at spawn; the thread has exited.
        drop(unsafe { Box::from_raw(self.ctx.as_ptr()) });
    }
}

/// `DbgPrintEx` through a 256-byte stack buffer (longer messages are cut).
pub fn log(level: LogLevel, args: core::fmt::Arguments<'_>) {
    let mut buf = StackBuf::<256>::new();
    let _ = core::fmt::write(&mut buf, args);
    // DPFLTR_ERROR_LEVEL .. DPFLTR_INFO_LEVEL (+ trace for debug).
    let level = match level {
        LogLevel::Error => 0,
        LogLevel::Warn => 1,
        LogLevel::Info => 3,
        LogLevel::Debug => 2,
    };
    let msg = buf.as_bytes();
    // SAFETY: the format consumes an int and a pointer to that many bytes.
    unsafe {
        ffi::DbgPrintEx(
            ffi::DPFLTR_IHVNETWORK_ID,
            level,
            c"netmap: %.*s\n".as_ptr().cast(),
            msg.len() as i32,
            msg.as_ptr(),
        )
    };
}

/// A `KSPIN_LOCK`, with the IRQL to restore (written by the holder).
#[derive(Debug)]
pub struct SpinLock {
    lock: UnsafeCell<usize>,
    irql: AtomicU8,
}

// SAFETY: a KSPIN_LOCK is made to be shared between processors.
unsafe impl Send for SpinLock {}
// SAFETY: all access goes through the kernel's spin lock API; `irql` is
// written only by the holder.
unsafe impl Sync for SpinLock {}

// SAFETY: KeAcquireSpinLockRaiseToDpc/KeReleaseSpinLock give mutual
// exclusion with acquire/release semantics.
unsafe impl RawLock for SpinLock {
    fn new() -> Option<Self> {
        // KeInitializeSpinLock stores 0.
        Some(SpinLock {
            lock: UnsafeCell::new(0),
            irql: AtomicU8::new(0),
        })
    }

    fn lock(&self) {
        // SAFETY: an initialized spin lock, alive for `&self`; it does not
        // move while locked (the core keeps locks in place).
        let old = unsafe { ffi::KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
        self.irql.store(old, Ordering::Relaxed);
    }

    unsafe fn unlock(&self) {
        let old = self.irql.load(Ordering::Relaxed);
        // SAFETY: held by the caller (contract), with `old` saved by lock().
        unsafe { ffi::KeReleaseSpinLock(self.lock.get(), old) }
    }
}

/// A `KMUTEX` in nonpaged pool (its address must not change).
#[derive(Debug)]
pub struct Mutex(NonNull<KMUTANT>);

// SAFETY: a kernel mutex is made to be shared between threads.
unsafe impl Send for Mutex {}
// SAFETY: all operations go through the kernel's mutex API.
unsafe impl Sync for Mutex {}

// SAFETY: KeWaitForSingleObject on a KMUTEX / KeReleaseMutex give mutual
// exclusion with acquire/release semantics.
unsafe impl RawLock for Mutex {
    fn new() -> Option<Self> {
        // SAFETY: KMUTANT is plain data, initialized right away.
        let m = Box::new(unsafe { core::mem::zeroed::<KMUTANT>() });
        let m = NonNull::from(Box::leak(m));
        // SAFETY: fresh, exclusively owned.
        unsafe { ffi::KeInitializeMutex(m.as_ptr(), 0) };
        Some(Mutex(m))
    }

    fn lock(&self) {
        // SAFETY: initialized mutex, alive for `&self`; PASSIVE/APC level
        // callers only (the control path).
        unsafe {
            ffi::KeWaitForSingleObject(
                self.0.as_ptr().cast(),
                ffi::EXECUTIVE,
                ffi::KERNEL_MODE,
                0,
                ptr::null(),
            )
        };
    }

    unsafe fn unlock(&self) {
        // SAFETY: held by this thread (contract).
        unsafe { ffi::KeReleaseMutex(self.0.as_ptr(), 0) };
    }
}

impl Drop for Mutex {
    fn drop(&mut self) {
        // SAFETY: from Box::leak in new(); nobody holds it (exclusive owner).
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// One waiting `NM_IOCTL_WAIT` on one queue: an intrusive list node in
/// nonpaged memory owned by the waiter (device.rs), linked while it waits.
#[derive(Debug)]
pub struct Waiter {
    pub(crate) next: *mut Waiter,
    pub(crate) prev: *mut Waiter,
    /// The waiting request's notification event.
    pub(crate) event: *mut KEVENT,
    /// The queue this node is linked on (null: not linked).
    pub(crate) queue: *const KernelWaitQueue,
}

/// A wait queue: the waiters of `NM_IOCTL_WAIT` currently sleeping on it.
#[derive(Debug)]
pub struct KernelWaitQueue {
    lock: SpinLock,
    head: UnsafeCell<*mut Waiter>,
}

// SAFETY: the list is only touched with `lock` held.
unsafe impl Send for KernelWaitQueue {}
// SAFETY: as above.
unsafe impl Sync for KernelWaitQueue {}

impl WaitQueue for KernelWaitQueue {
    fn new() -> Option<Self> {
        Some(KernelWaitQueue {
            lock: SpinLock::new()?,
            head: UnsafeCell::new(ptr::null_mut()),
        })
    }

    fn wake_all(&self) {
        self.lock.lock();
        // SAFETY: list nodes are live while linked (their owner unlinks them
        // under this lock before freeing); events live as long as nodes.
        unsafe {
            let mut w = *self.head.get();
            while let Some(n) = w.as_ref() {
                ffi::KeSetEvent(n.event, 0, 0);
                w = n.next;
            }
        }
        // SAFETY: locked above.
        unsafe { self.lock.unlock() };
    }
}

impl KernelWaitQueue {
    /// Link `w` (not linked anywhere) at the head.
    ///
    /// # Safety
    /// `w` is live, in nonpaged memory, and stays so until [`Self::remove`]
    /// unlinked it; `self` outlives the link.
    pub unsafe fn add(&self, w: *mut Waiter) {
        self.lock.lock();
        // SAFETY: under the lock; `w` is exclusively ours (contract).
        unsafe {
            let head = *self.head.get();
            (*w).next = head;
            (*w).prev = ptr::null_mut();
            (*w).queue = self;
            if let Some(h) = head.as_mut() {
                h.prev = w;
            }
            *self.head.get() = w;
        }
        // SAFETY: locked above.
        unsafe { self.lock.unlock() };
    }

    /// Unlink `w` (linked on `self` by [`Self::add`]).
    ///
    /// # Safety
    /// As for [`Self::add`].
    pub unsafe fn remove(&self, w: *mut Waiter) {
        self.lock.lock();
        // SAFETY: under the lock; neighbours are live linked nodes.
        unsafe {
            let (next, prev) = ((*w).next, (*w).prev);
            if let Some(n) = next.as_mut() {
                n.prev = prev;
            }
            match prev.as_mut() {
                Some(p) => p.next = next,
                None => *self.head.get() = next,
            }
            (*w).queue = ptr::null();
        }
        // SAFETY: locked above.
        unsafe { self.lock.unlock() };
    }
}
