//! The core's platform trait implemented with the C wrappers of glue.c.

use crate::ffi;
use core::ffi::{c_int, c_ulong, c_void};
use core::marker::PhantomData;
use core::ptr::NonNull;
use netmap_core::Errno;
use netmap_core::edge::{self, RawWork};
use netmap_core::platform::{
    EventFd, Fault, LogLevel, Platform, RawLock, Sleeper, ThreadWork, UserPages, WaitQueue, Wake,
    Watch,
};

/// The Linux kernel as seen by netmap-core. Stateless: every service is a
/// kernel function.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxPlatform;

impl Platform for LinuxPlatform {
    type SpinLock = SpinLock;
    type Mutex = Mutex;
    type WaitQueue = KernelWaitQueue;
    type Thread = KernelThread;
    type Sleeper = KernelSleeper;
    type EventFd = KernelEventFd;
    type Watch<'a> = KernelWatch<'a>;
    type UserPages = KernelUserPages;

    fn alloc_cluster(&self, size: usize) -> Option<NonNull<u8>> {
        // SAFETY: no preconditions; glue.c rejects sizes that are not a
        // non-zero multiple of the page size.
        NonNull::new(unsafe { ffi::nm_glue_cluster_alloc(size) })
    }

    unsafe fn free_cluster(&self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: the caller guarantees ptr/size come from alloc_cluster and
        // that the cluster is not used afterwards.
        unsafe { ffi::nm_glue_cluster_free(ptr.as_ptr(), size) }
    }

    fn pin_user_pages(&self, addr: u64, npages: usize) -> netmap_core::Result<KernelUserPages> {
        let mut err: c_int = 0;
        // SAFETY: no preconditions (process context, which the core's
        // callers are); `err` is valid for writes.
        let u = unsafe { ffi::nm_glue_pin_user(addr, npages, &mut err) };
        NonNull::new(u)
            .map(|u| KernelUserPages(u, npages))
            .ok_or(if err < 0 { Errno(-err) } else { Errno::EFAULT })
    }

    fn total_ram(&self) -> u64 {
        // SAFETY: reads totalram_pages(), no preconditions.
        unsafe { ffi::nm_glue_total_ram() }
    }

    fn copy_from_user(&self, dst: &mut [u8], src: u64) -> Result<(), Fault> {
        // SAFETY: dst is a valid writable kernel buffer of dst.len() bytes;
        // copy_from_user checks the user range and handles faults.
        let left =
            unsafe { ffi::nm_glue_copy_from_user(dst.as_mut_ptr(), src, dst.len() as c_ulong) };
        if left == 0 { Ok(()) } else { Err(Fault) }
    }

    fn copy_to_user(&self, dst: u64, src: &[u8]) -> Result<(), Fault> {
        // SAFETY: src is a valid kernel buffer of src.len() bytes;
        // copy_to_user checks the user range and handles faults.
        let left = unsafe { ffi::nm_glue_copy_to_user(dst, src.as_ptr(), src.len() as c_ulong) };
        if left == 0 { Ok(()) } else { Err(Fault) }
    }

    fn now(&self) -> (i64, i64) {
        let (mut sec, mut usec) = (0i64, 0i64);
        // SAFETY: both pointers are valid for writes.
        unsafe { ffi::nm_glue_gettimeofday(&mut sec, &mut usec) };
        (sec, usec)
    }

    fn log(&self, level: LogLevel, args: core::fmt::Arguments<'_>) {
        log(level, args);
    }

    fn online_cpus(&self) -> u32 {
        // SAFETY: reads num_online_cpus(), no preconditions.
        unsafe { ffi::nm_glue_online_cpus() }.max(1)
    }

    fn spawn_thread(
        &self,
        name: &[u8],
        cpu: Option<u32>,
        work: ThreadWork,
    ) -> netmap_core::Result<KernelThread> {
        let cpu = edge::thread_cpu(cpu, self.online_cpus())?;
        let mut work = RawWork::new(work);
        let mut err: c_int = 0;
        // SAFETY: `name` is valid for `name.len()` bytes during the call
        // (glue.c copies it into the task's comm); the work pointer stays valid until the returned
        // thread has been stopped (KernelThread::drop) or, on failure, is
        // freed below without any thread having seen it.
        let thread = unsafe {
            ffi::nm_glue_thread_start(name.as_ptr(), name.len(), cpu, work.as_ptr(), &mut err)
        };
        if let Some(task) = NonNull::new(thread) {
            Ok(KernelThread { task, work })
        } else {
            // SAFETY: no thread was created, so nothing else refers to it.
            unsafe { work.free() };
            Err(if err < 0 { Errno(-err) } else { Errno::ENOMEM })
        }
    }

    fn sleep_us(&self, us: u32) {
        // SAFETY: no preconditions (process context, which the trait
        // requires of the caller).
        unsafe { ffi::nm_glue_sleep_us(us) }
    }

    fn sleeper(&self) -> netmap_core::Result<KernelSleeper> {
        // SAFETY: allocation + init, no preconditions.
        NonNull::new(unsafe { ffi::nm_glue_sleeper_alloc() })
            .map(KernelSleeper)
            .ok_or(Errno::ENOMEM)
    }

    fn watch_wq<'a>(
        &self,
        s: &'a KernelSleeper,
        wq: &'a KernelWaitQueue,
    ) -> netmap_core::Result<KernelWatch<'a>> {
        // SAFETY: both objects are live and, through the borrows, outlive
        // the watch, which removes itself from `wq` when dropped.
        let w = unsafe { ffi::nm_glue_watch_wq(s.0.as_ptr(), wq.as_raw()) };
        NonNull::new(w)
            .map(|w| KernelWatch(w, PhantomData))
            .ok_or(Errno::ENOMEM)
    }

    fn eventfd(&self, fd: i32) -> netmap_core::Result<KernelEventFd> {
        let mut err: c_int = 0;
        // SAFETY: no preconditions; `err` is valid for writes.
        let e = unsafe { ffi::nm_glue_eventfd_get(fd, &mut err) };
        NonNull::new(e)
            .map(KernelEventFd)
            .ok_or(if err < 0 { Errno(-err) } else { Errno::ENOMEM })
    }

    fn watch_eventfd<'a>(
        &self,
        s: &'a KernelSleeper,
        e: &'a KernelEventFd,
    ) -> netmap_core::Result<KernelWatch<'a>> {
        let mut err: c_int = 0;
        // SAFETY: both objects are live and outlive the watch (borrows);
        // the eventfd's wait queue lives as long as our file reference.
        let w = unsafe { ffi::nm_glue_watch_eventfd(s.0.as_ptr(), e.0.as_ptr(), &mut err) };
        NonNull::new(w)
            .map(|w| KernelWatch(w, PhantomData))
            .ok_or(if err < 0 { Errno(-err) } else { Errno::ENOMEM })
    }
}

/// glue.c's `struct nm_upages`: pinned pages of a process (EXTMEM), and
/// their number.
#[derive(Debug)]
pub struct KernelUserPages(NonNull<c_void>, usize);

// SAFETY: pinned pages belong to no task; the page list is only read.
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
        // SAFETY: a live pinned range and an index below its page count.
        NonNull::new(unsafe { ffi::nm_glue_upage_addr(self.0.as_ptr(), i) })
    }

    fn same_pages(&self, other: &Self) -> bool {
        // SAFETY: two live pinned ranges.
        unsafe { ffi::nm_glue_upages_same(self.0.as_ptr(), other.0.as_ptr()) }
    }
}

impl Drop for KernelUserPages {
    fn drop(&mut self) {
        // SAFETY: from nm_glue_pin_user, released once; the region built
        // over these pages is gone (it owned this value).
        unsafe { ffi::nm_glue_unpin_user(self.0.as_ptr()) }
    }
}

/// glue.c's `struct nm_sleeper`: where the sync kernel loop sleeps.
#[derive(Debug)]
pub struct KernelSleeper(NonNull<c_void>);

// SAFETY: the sleeper is a wait queue head and an atomic flag, made to be
// used from any task (wake) and slept on by one.
unsafe impl Send for KernelSleeper {}
// SAFETY: as above; every operation goes through the kernel's wait queue
// and atomic APIs.
unsafe impl Sync for KernelSleeper {}

impl Sleeper for KernelSleeper {
    fn sleep(&self, timeout_ns: u64) -> Wake {
        // SAFETY: live sleeper; the caller is the loop's task, in process
        // context with no lock held (trait contract).
        match unsafe { ffi::nm_glue_sleeper_sleep(self.0.as_ptr(), timeout_ns) } {
            1 => Wake::Woken,
            0 => Wake::Timeout,
            _ => Wake::Interrupted,
        }
    }

    fn wake(&self) {
        // SAFETY: live sleeper; callable from any context.
        unsafe { ffi::nm_glue_sleeper_wake(self.0.as_ptr()) }
    }
}

impl Drop for KernelSleeper {
    fn drop(&mut self) {
        // SAFETY: every watch borrows the sleeper, so none is left; the
        // loop (the only sleeper) has returned, and STOP only wakes it
        // through the shared reference it held, which is gone too.
        unsafe { ffi::nm_glue_sleeper_free(self.0.as_ptr()) }
    }
}

/// glue.c's `struct nm_watch`, on a wait queue until dropped.
#[derive(Debug)]
pub struct KernelWatch<'a>(NonNull<c_void>, PhantomData<&'a ()>);

impl Watch for KernelWatch<'_> {
    fn take_fired(&self) -> bool {
        // SAFETY: live watch.
        unsafe { ffi::nm_glue_watch_take_fired(self.0.as_ptr()) != 0 }
    }
}

impl Drop for KernelWatch<'_> {
    fn drop(&mut self) {
        // SAFETY: live watch; the queue it is on outlives it (borrow).
        unsafe { ffi::nm_glue_watch_free(self.0.as_ptr()) }
    }
}

/// glue.c's `struct nm_efd`: an eventfd file and context, referenced.
#[derive(Debug)]
pub struct KernelEventFd(NonNull<c_void>);

// SAFETY: eventfd contexts are shared between tasks by design; signalling
// works from any context.
unsafe impl Send for KernelEventFd {}
// SAFETY: as above.
unsafe impl Sync for KernelEventFd {}

impl EventFd for KernelEventFd {
    fn signal(&self) {
        // SAFETY: live, referenced eventfd.
        unsafe { ffi::nm_glue_eventfd_signal(self.0.as_ptr()) }
    }
}

impl Drop for KernelEventFd {
    fn drop(&mut self) {
        // SAFETY: no watch is left on it (watches borrow it); drops the
        // references taken by nm_glue_eventfd_get.
        unsafe { ffi::nm_glue_eventfd_put(self.0.as_ptr()) }
    }
}

/// A running kernel thread (glue.c `nm_thread_fn`) and the work it calls.
///
/// Dropping it stops the thread (`kthread_stop`, which waits for the thread
/// to exit; the wake-up cuts an idle sleep short) and then frees the work
/// closure: see [`Platform::Thread`] for the contract (may sleep; never from
/// the thread itself). Threads hold no module reference: the core drops
/// every handle before `nm_rs_exit` returns (see ../README.md).
#[derive(Debug)]
pub struct KernelThread {
    /// The `struct task_struct *`, with a reference of ours.
    task: NonNull<c_void>,
    /// The closure the thread calls; the thread has the only access to it
    /// until it is stopped.
    work: RawWork,
}

// SAFETY: the handle is two pointers: the task (a referenced task_struct,
// which any task may stop) and the work closure, which the handle never
// touches before the thread has exited; the closure is `Send`, so freeing
// it from another task than the one that called it is fine.
unsafe impl Send for KernelThread {}
// SAFETY: `&KernelThread` gives access to neither pointer.
unsafe impl Sync for KernelThread {}

impl Drop for KernelThread {
    fn drop(&mut self) {
        // SAFETY: `task` came from nm_glue_thread_start with a reference
        // that only this call drops; glue.c's contract forbids calling it
        // from the thread itself, which the Platform::Thread contract passes
        // on to the core.
        unsafe { ffi::nm_glue_thread_stop(self.task.as_ptr()) };
        // SAFETY: the thread has exited (kthread_stop returned), so it no
        // longer runs the work; freed once, here.
        unsafe { self.work.free() };
    }
}

/// One round of a kernel thread's loop (glue.c `nm_thread_fn`): calls the
/// work closure; true if it did something.
///
/// # Safety
/// `ctx` is the `work` pointer of a live [`KernelThread`], passed only by
/// the thread it started, so that this call has exclusive access to the
/// closure (the handle frees it only after the thread has exited).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_thread_run(ctx: *mut c_void) -> bool {
    // SAFETY: by the function contract (edge::run_work's).
    unsafe { edge::run_work(ctx) }
}

/// printk through glue.c, formatted in a 256-byte stack buffer (longer
/// messages are truncated).
pub fn log(level: LogLevel, args: core::fmt::Arguments<'_>) {
    edge::log_line(level, args, |level, msg| {
        // SAFETY: msg points to msg.len() initialized bytes.
        unsafe { ffi::nm_glue_log(level, msg.as_ptr(), msg.len()) }
    });
}

/// A kmalloc'ed `spinlock_t`, taken with spin_lock_bh (NIC adapters take
/// data-path locks from softirq context).
#[derive(Debug)]
pub struct SpinLock(NonNull<c_void>);

// SAFETY: a spinlock_t is made to be shared between CPUs; the pointer is
// owned by this value until drop.
unsafe impl Send for SpinLock {}
// SAFETY: as above, all operations go through the kernel's locking API.
unsafe impl Sync for SpinLock {}

// SAFETY: spin_lock_bh/spin_unlock_bh give mutual exclusion with acquire /
// release semantics.
unsafe impl RawLock for SpinLock {
    fn new() -> Option<Self> {
        // SAFETY: allocation + spin_lock_init, no preconditions.
        NonNull::new(unsafe { ffi::nm_glue_spin_alloc() }).map(SpinLock)
    }

    fn lock(&self) {
        // SAFETY: self.0 is an initialized spinlock_t until drop.
        unsafe { ffi::nm_glue_spin_lock(self.0.as_ptr()) }
    }

    unsafe fn unlock(&self) {
        // SAFETY: initialized lock, held by the caller (function contract).
        unsafe { ffi::nm_glue_spin_unlock(self.0.as_ptr()) }
    }
}

impl Drop for SpinLock {
    fn drop(&mut self) {
        // SAFETY: allocated by nm_glue_spin_alloc; nobody holds or uses it
        // any more since we own it exclusively here.
        unsafe { ffi::nm_glue_spin_free(self.0.as_ptr()) }
    }
}

/// A kmalloc'ed `struct mutex` (control path; lock() may sleep).
#[derive(Debug)]
pub struct Mutex(NonNull<c_void>);

// SAFETY: a struct mutex is made to be shared between tasks; owned pointer.
unsafe impl Send for Mutex {}
// SAFETY: all operations go through the kernel's mutex API.
unsafe impl Sync for Mutex {}

// SAFETY: mutex_lock/mutex_unlock give mutual exclusion with acquire /
// release semantics.
unsafe impl RawLock for Mutex {
    fn new() -> Option<Self> {
        // SAFETY: allocation + mutex_init, no preconditions.
        NonNull::new(unsafe { ffi::nm_glue_mutex_alloc() }).map(Mutex)
    }

    fn lock(&self) {
        // SAFETY: self.0 is an initialized mutex until drop.
        unsafe { ffi::nm_glue_mutex_lock(self.0.as_ptr()) }
    }

    unsafe fn unlock(&self) {
        // SAFETY: initialized mutex, held by the caller (function contract).
        unsafe { ffi::nm_glue_mutex_unlock(self.0.as_ptr()) }
    }
}

impl Drop for Mutex {
    fn drop(&mut self) {
        // SAFETY: allocated by nm_glue_mutex_alloc; exclusively owned here.
        unsafe { ffi::nm_glue_mutex_free(self.0.as_ptr()) }
    }
}

/// A kmalloc'ed `wait_queue_head_t`; poll() registers files on it.
#[derive(Debug)]
pub struct KernelWaitQueue(NonNull<c_void>);

// SAFETY: wait queue heads are shared between tasks by design; owned pointer.
unsafe impl Send for KernelWaitQueue {}
// SAFETY: all operations go through the kernel's wait queue API.
unsafe impl Sync for KernelWaitQueue {}

impl KernelWaitQueue {
    /// The `wait_queue_head_t *` for poll_wait().
    pub fn as_raw(&self) -> *mut c_void {
        self.0.as_ptr()
    }
}

impl WaitQueue for KernelWaitQueue {
    fn new() -> Option<Self> {
        // SAFETY: allocation + init_waitqueue_head, no preconditions.
        NonNull::new(unsafe { ffi::nm_glue_wq_alloc() }).map(KernelWaitQueue)
    }

    fn wake_all(&self) {
        // SAFETY: self.0 is an initialized wait queue head until drop.
        unsafe { ffi::nm_glue_wq_wake_all(self.0.as_ptr()) }
    }
}

impl Drop for KernelWaitQueue {
    fn drop(&mut self) {
        // SAFETY: allocated by nm_glue_wq_alloc; exclusively owned here.
        // Every file that poll_wait()ed on it is gone: a file is unregistered
        // from its wait queues before its release, and the core drops a
        // queue only after the last file bound to it was released.
        unsafe { ffi::nm_glue_wq_free(self.0.as_ptr()) }
    }
}
