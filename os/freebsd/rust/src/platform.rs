//! The core's platform trait implemented with the C wrappers of glue.c,
//! each over a FreeBSD primitive (see ../README.md for the table).

use crate::ffi;
use core::ffi::{c_int, c_void};
use core::ptr::NonNull;
use netmap_core::Errno;
use netmap_core::edge::{self, RawWork};
use netmap_core::platform::{
    Fault, LogLevel, NoEventFd, NoWatch, Platform, RawLock, Sleeper, ThreadWork, UserPages,
    WaitQueue, Wake,
};

/// The FreeBSD kernel as seen by netmap-core. Stateless: every service is
/// a kernel function.
#[derive(Debug, Default, Clone, Copy)]
pub struct FreeBsdPlatform;

impl Platform for FreeBsdPlatform {
    type SpinLock = SpinLock;
    type Mutex = Mutex;
    type WaitQueue = KernelWaitQueue;
    type Thread = KernelThread;
    type Sleeper = KernelSleeper;
    type EventFd = NoEventFd;
    type Watch<'a> = NoWatch;
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

    fn copy_from_user(&self, dst: &mut [u8], src: u64) -> Result<(), Fault> {
        // SAFETY: dst is a valid writable kernel buffer of dst.len() bytes;
        // copyin(9) checks the user range and reports faults (EFAULT).
        let err = unsafe { ffi::nm_glue_copyin(dst.as_mut_ptr(), src, dst.len()) };
        if err == 0 { Ok(()) } else { Err(Fault) }
    }

    fn copy_to_user(&self, dst: u64, src: &[u8]) -> Result<(), Fault> {
        // SAFETY: src is a valid kernel buffer of src.len() bytes;
        // copyout(9) checks the user range and reports faults (EFAULT).
        let err = unsafe { ffi::nm_glue_copyout(dst, src.as_ptr(), src.len()) };
        if err == 0 { Ok(()) } else { Err(Fault) }
    }

    fn user_errno(&self, e: Errno) -> i32 {
        netmap_uapi::errno::freebsd::from_linux(e.0)
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

    fn total_ram(&self) -> u64 {
        // SAFETY: reads physmem, no preconditions.
        unsafe { ffi::nm_glue_total_ram() }
    }

    fn online_cpus(&self) -> u32 {
        // SAFETY: reads mp_ncpus, no preconditions.
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
        // (kthread_add copies it into the thread's name); the work pointer stays valid until the returned
        // thread has been stopped (KernelThread::drop) or, on failure, is
        // freed below without any thread having seen it.
        let thread = unsafe {
            ffi::nm_glue_thread_start(name.as_ptr(), name.len(), cpu, work.as_ptr(), &mut err)
        };
        if let Some(thread) = NonNull::new(thread) {
            Ok(KernelThread { thread, work })
        } else {
            // SAFETY: no thread was created, so nothing else refers to it.
            unsafe { work.free() };
            Err(if err > 0 {
                crate::entry::core_errno(err)
            } else {
                Errno::ENOMEM
            })
        }
    }

    fn sleep_us(&self, us: u32) {
        // SAFETY: no preconditions (process context, as the trait requires).
        unsafe { ffi::nm_glue_sleep_us(us) }
    }

    fn sleeper(&self) -> netmap_core::Result<KernelSleeper> {
        // SAFETY: allocation (M_WAITOK) + mtx_init, no preconditions.
        NonNull::new(unsafe { ffi::nm_glue_sleeper_alloc() })
            .map(KernelSleeper)
            .ok_or(Errno::ENOMEM)
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
        let mut err: c_int = 0;
        // SAFETY: no preconditions (the calling process's context, which
        // the core's callers are); `err` is valid for writes.
        let u = unsafe { ffi::nm_glue_pin_user(addr, npages, &mut err) };
        NonNull::new(u)
            .map(|u| KernelUserPages(u, npages))
            .ok_or(if err > 0 {
                crate::entry::core_errno(err)
            } else {
                Errno::EFAULT
            })
    }
}

/// glue.c's `struct nm_sleeper`: where the sync kernel loop sleeps.
#[derive(Debug)]
pub struct KernelSleeper(NonNull<c_void>);

// SAFETY: a mutex, a flag and a wait channel, made to be used from any
// thread (wake) and slept on by one.
unsafe impl Send for KernelSleeper {}
// SAFETY: as above; every operation goes through the kernel's API.
unsafe impl Sync for KernelSleeper {}

impl Sleeper for KernelSleeper {
    fn sleep(&self, timeout_ns: u64) -> Wake {
        // SAFETY: a live sleeper; the caller is the loop's thread, with no
        // lock held (trait contract).
        match unsafe { ffi::nm_glue_sleeper_sleep(self.0.as_ptr(), timeout_ns) } {
            1 => Wake::Woken,
            0 => Wake::Timeout,
            _ => Wake::Interrupted,
        }
    }

    fn wake(&self) {
        // SAFETY: a live sleeper.
        unsafe { ffi::nm_glue_sleeper_wake(self.0.as_ptr()) }
    }
}

impl Drop for KernelSleeper {
    fn drop(&mut self) {
        // SAFETY: nobody sleeps on it any more (the loop returned) and no
        // other reference is left.
        unsafe { ffi::nm_glue_sleeper_free(self.0.as_ptr()) }
    }
}

/// Pages of a process held by glue.c's `nm_glue_pin_user` (EXTMEM), with
/// their page count.
#[derive(Debug)]
pub struct KernelUserPages(NonNull<c_void>, usize);

// SAFETY: held pages belong to no thread; the page list is only read.
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
        // SAFETY: a live held range and an index below its page count.
        NonNull::new(unsafe { ffi::nm_glue_upage_addr(self.0.as_ptr(), i) })
    }

    fn same_pages(&self, other: &Self) -> bool {
        // SAFETY: two live held ranges.
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

/// A running kernel thread (glue.c `nm_kthread_fn`) and the work it calls.
///
/// Dropping it stops the thread (a flag and `wakeup`, which cuts an idle
/// sleep short, then waits until the thread has left the work for good)
/// and then frees the work closure: see [`Platform::Thread`] for the
/// contract (may sleep; never from the thread itself). The core drops
/// every handle before `nm_rs_exit` returns (see ../README.md).
#[derive(Debug)]
pub struct KernelThread {
    /// glue.c's `struct nm_kthread *`, freed by nm_glue_thread_stop.
    thread: NonNull<c_void>,
    /// The closure the thread calls; the thread has the only access to it
    /// until it is stopped.
    work: RawWork,
}

// SAFETY: the handle is two pointers: glue.c's thread record (any thread
// may stop it) and the work closure, which the handle never
// touches before the thread has exited; the closure is `Send`, so freeing
// it from another thread than the one that called it is fine.
unsafe impl Send for KernelThread {}
// SAFETY: `&KernelThread` gives access to neither pointer.
unsafe impl Sync for KernelThread {}

impl Drop for KernelThread {
    fn drop(&mut self) {
        // SAFETY: `thread` came from nm_glue_thread_start and only this
        // call frees it; glue.c's contract forbids calling it from the
        // thread itself, which the Platform::Thread contract passes on to
        // the core.
        unsafe { ffi::nm_glue_thread_stop(self.thread.as_ptr()) };
        // SAFETY: the thread has exited (the stop above returned), so it
        // no longer runs the work; freed once, here.
        unsafe { self.work.free() };
    }
}

/// One round of a kernel thread's loop (glue.c `nm_kthread_fn`): calls the
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

/// printf(9) through glue.c, formatted in a 256-byte stack buffer (longer
/// messages are truncated).
pub fn log(level: LogLevel, args: core::fmt::Arguments<'_>) {
    edge::log_line(level, args, |level, msg| {
        // SAFETY: msg points to msg.len() initialized bytes.
        unsafe { ffi::nm_glue_log(level, msg.as_ptr(), msg.len()) }
    });
}

/// A malloc'ed `struct mtx` (MTX_DEF): interface input runs in ithreads
/// and taskqueues, which may block on it.
#[derive(Debug)]
pub struct SpinLock(NonNull<c_void>);

// SAFETY: a mtx is made to be shared between CPUs; the pointer is owned by
// this value until drop.
unsafe impl Send for SpinLock {}
// SAFETY: as above, all operations go through the kernel's locking API.
unsafe impl Sync for SpinLock {}

// SAFETY: mtx_lock/mtx_unlock give mutual exclusion with acquire / release
// semantics.
unsafe impl RawLock for SpinLock {
    fn new() -> Option<Self> {
        // SAFETY: allocation + mtx_init, no preconditions.
        NonNull::new(unsafe { ffi::nm_glue_spin_alloc() }).map(SpinLock)
    }

    fn lock(&self) {
        // SAFETY: self.0 is an initialized mtx until drop.
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

/// A malloc'ed `struct sx` taken exclusively (control path; lock() may
/// sleep).
#[derive(Debug)]
pub struct Mutex(NonNull<c_void>);

// SAFETY: an sx lock is made to be shared between threads; owned pointer.
unsafe impl Send for Mutex {}
// SAFETY: all operations go through the kernel's sx API.
unsafe impl Sync for Mutex {}

// SAFETY: sx_xlock/sx_xunlock give mutual exclusion with acquire / release
// semantics.
unsafe impl RawLock for Mutex {
    fn new() -> Option<Self> {
        // SAFETY: allocation + sx_init, no preconditions.
        NonNull::new(unsafe { ffi::nm_glue_mutex_alloc() }).map(Mutex)
    }

    fn lock(&self) {
        // SAFETY: self.0 is an initialized sx lock until drop.
        unsafe { ffi::nm_glue_mutex_lock(self.0.as_ptr()) }
    }

    unsafe fn unlock(&self) {
        // SAFETY: initialized sx lock, held by the caller (function contract).
        unsafe { ffi::nm_glue_mutex_unlock(self.0.as_ptr()) }
    }
}

impl Drop for Mutex {
    fn drop(&mut self) {
        // SAFETY: allocated by nm_glue_mutex_alloc; exclusively owned here.
        unsafe { ffi::nm_glue_mutex_free(self.0.as_ptr()) }
    }
}

/// glue.c's `struct nm_wq`: a selinfo (poll/select) with its knlist
/// (kqueue).
#[derive(Debug)]
pub struct KernelWaitQueue(NonNull<c_void>);

// SAFETY: a selinfo is shared between threads by design; owned pointer.
unsafe impl Send for KernelWaitQueue {}
// SAFETY: all operations go through the kernel's selinfo/knlist API.
unsafe impl Sync for KernelWaitQueue {}

impl KernelWaitQueue {
    /// The `struct nm_wq *` for selrecord and knotes.
    pub fn as_raw(&self) -> *mut c_void {
        self.0.as_ptr()
    }
}

impl WaitQueue for KernelWaitQueue {
    fn new() -> Option<Self> {
        // SAFETY: allocation + knlist_init_mtx, no preconditions.
        NonNull::new(unsafe { ffi::nm_glue_wq_alloc() }).map(KernelWaitQueue)
    }

    fn wake_all(&self) {
        // SAFETY: self.0 is an initialized nm_wq until drop.
        unsafe { ffi::nm_glue_wq_wake_all(self.0.as_ptr()) }
    }
}

impl Drop for KernelWaitQueue {
    fn drop(&mut self) {
        // SAFETY: allocated by nm_glue_wq_alloc; exclusively owned here.
        // The core drops a queue only after the last file bound to it was
        // released, and each knote holds its file: no knote is left;
        // glue.c drains the selectors and the knote task.
        unsafe { ffi::nm_glue_wq_free(self.0.as_ptr()) }
    }
}
