//! The `extern "C"` entry points glue.c calls (prefix `nm_rs_`).
//!
//! Contract (see also glue.c and ../README.md):
//! * `nm_rs_init` runs once before any other entry point; `nm_rs_exit` once
//!   after all files are closed (each open file pins the module) and after
//!   glue.c stopped forwarding parameter callbacks.
//! * `priv` pointers come from `nm_rs_open` and are passed back unchanged
//!   until `nm_rs_release`, which is called exactly once per open.
//! * Errors are returned as negative errno values.

use crate::params;
use crate::platform::{self, KernelWaitQueue, LinuxPlatform};
use alloc::boxed::Box;
use core::ffi::{c_int, c_long, c_uint, c_ulong, c_void};
use core::fmt::Write;
use core::ptr;
use netmap_core::edge::{self, Global};
use netmap_core::platform::LogLevel;
use netmap_core::{Errno, Netmap, NetmapPriv};

type Nm = Netmap<LinuxPlatform>;
type Priv = NetmapPriv<LinuxPlatform>;

/// The module's global context, created by `nm_rs_init`.
static NETMAP: Global<LinuxPlatform> = Global::new();

/// The global context (entry points run only between a successful
/// `nm_rs_init` and `nm_rs_exit`).
fn netmap() -> &'static Nm {
    NETMAP.get()
}

/// # Safety
/// `p` must be a `priv` from `nm_rs_open` not yet released.
unsafe fn priv_ref<'a>(p: *mut c_void) -> &'a Priv {
    // SAFETY: by the function contract (edge::priv_ref's).
    unsafe { edge::priv_ref(p) }
}

/// The kernel's internal errno for "restart the system call after the
/// signal" (include/linux/errno.h); never seen by userspace.
const ERESTARTSYS: c_int = 512;

fn neg(e: Errno) -> c_int {
    -e.0
}

/// Module init: checks glue.c's parameter table and creates the context.
///
/// # Safety
/// `vals` points to `n` ints (glue.c's `nm_param_vals`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_init(vals: *const c_int, n: c_uint) -> c_int {
    if let Err(e) = params::check_glue_table(n as usize) {
        platform::log(
            LogLevel::Error,
            format_args!("module parameter table mismatch between glue.c and Rust"),
        );
        return neg(e);
    }
    // SAFETY: by the function contract vals points to n initialized ints.
    let vals = unsafe { core::slice::from_raw_parts(vals, n as usize) };
    match Netmap::new(LinuxPlatform, params::to_core(vals)) {
        Ok(nm) => {
            if let Err(e) = nm.set_netif_provider(Box::new(crate::netif::LinuxNetifProvider)) {
                return neg(e);
            }
            NETMAP.init(nm);
            0
        }
        Err(e) => neg(e),
    }
}

/// Module exit: drops the context (all files are closed by now).
#[unsafe(no_mangle)]
pub extern "C" fn nm_rs_exit() {
    // SAFETY: no other entry point runs any more and none holds a
    // reference to the context (module doc).
    unsafe { NETMAP.exit() };
}

/// A write to parameter `id` (after init).
#[unsafe(no_mangle)]
pub extern "C" fn nm_rs_param_set(id: c_uint, value: c_int) -> c_int {
    params::set(netmap().params(), id as usize, value);
    0
}

/// A read of parameter `id`: returns 0 and writes `*value` if Rust owns the
/// value, -EINVAL (and leaves `*value` alone) otherwise.
///
/// # Safety
/// `value` must be valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_param_get(id: c_uint, value: *mut c_int) -> c_int {
    match params::get(netmap(), id as usize) {
        Some(v) => {
            // SAFETY: valid for writes by the function contract.
            unsafe { value.write(v) };
            0
        }
        None => neg(Errno::EINVAL),
    }
}

/// open(/dev/netmap): creates the per-file state.
///
/// # Safety
/// `out` must be valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_open(out: *mut *mut c_void) -> c_int {
    match netmap().open() {
        Ok(np) => {
            // SAFETY: valid for writes by the function contract.
            unsafe { out.write(edge::priv_into_raw(np)) };
            0
        }
        Err(e) => neg(e),
    }
}

/// Last close of a file.
///
/// # Safety
/// `p` is a `priv` from `nm_rs_open`, released exactly once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_release(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: by the function contract p came from nm_rs_open and nobody
    // uses it after this call.
    netmap().release(unsafe { edge::priv_from_raw(p) });
}

/// ioctl / compat_ioctl. `arg` is a user pointer (or 0).
///
/// # Safety
/// `p` is a live `priv` from `nm_rs_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_ioctl(p: *mut c_void, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: live priv by the function contract.
    let np = unsafe { priv_ref(p) };
    let arg: u64 = arg; // unsigned long is 64-bit on x86_64
    match netmap().ioctl(np, cmd, arg) {
        Ok(()) => 0,
        // A signal ended a sleep (the sync kernel loop): a restartable
        // system call, as for any interruptible wait in the kernel; the
        // application sees EINTR only if its handler lacks SA_RESTART.
        Err(Errno::EINTR) => -(ERESTARTSYS as c_long),
        Err(e) => neg(e) as c_long,
    }
}

/// poll: returns the ready POLL* bits; registers the file on the wait
/// queues the core names through `nm_glue_poll_wait(file, wq, pt)`.
///
/// # Safety
/// `p` is a live `priv`; `file`/`pt` are the arguments of the poll file
/// operation (pt may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_poll(
    p: *mut c_void,
    events: c_uint,
    file: *mut c_void,
    pt: *mut c_void,
) -> c_uint {
    // SAFETY: live priv by the function contract.
    let np = unsafe { priv_ref(p) };
    let mut wait = |wq: &KernelWaitQueue| {
        // SAFETY: file/pt are the poll operation's arguments (contract) and
        // wq is a live wait queue owned by the core, which keeps it until
        // this file is released.
        unsafe { crate::ffi::nm_glue_poll_wait(file, wq.as_raw(), pt) }
    };
    netmap().poll(np, events, &mut wait)
}

/// mmap: may the file map [offset, offset+len) of its region?
///
/// # Safety
/// `p` is a live `priv`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_mmap_check(p: *mut c_void, offset: u64, len: u64) -> c_int {
    // SAFETY: live priv by the function contract.
    let np = unsafe { priv_ref(p) };
    match netmap().mmap_check(np, offset, len) {
        Ok(()) => 0,
        Err(e) => neg(e),
    }
}

/// Page fault: kernel address of the page at `offset` of the file's region,
/// or NULL (SIGBUS).
///
/// # Safety
/// `p` is a live `priv`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_mmap_page(p: *mut c_void, offset: u64) -> *mut c_void {
    // SAFETY: live priv by the function contract.
    let np = unsafe { priv_ref(p) };
    match netmap().mmap_page(np, offset) {
        Some(page) => page.as_ptr().cast(),
        None => ptr::null_mut(),
    }
}

/// The allocator counters as "name value" lines; returns the length.
///
/// # Safety
/// `buf` is valid for writes of `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_stats(buf: *mut u8, len: usize) -> usize {
    // SAFETY: valid for writes of len bytes by the function contract; u8 has
    // no invalid values, the buffer is kzalloc-initialized and not aliased.
    let out = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    let mut w = crate::fmt::SliceBuf::new(out);
    let _ = write!(w, "{}", netmap().stats());
    w.len()
}

/// The memory budget and every region with its pools, as text
/// (`/sys/kernel/debug/netmap/pools`); returns the length.
///
/// # Safety
/// `buf` is valid for writes of `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_pools(buf: *mut u8, len: usize) -> usize {
    // SAFETY: as in nm_rs_stats.
    let out = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    let mut w = crate::fmt::SliceBuf::new(out);
    let _ = netmap().write_pools(&mut w);
    w.len()
}

/// The Linux device `name` was unregistered while netmap used it (called
/// from glue.c's work item, after the device side was detached).
///
/// # Safety
/// `name` is valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_netif_gone(name: *const u8, len: usize) {
    // SAFETY: valid for len bytes by the function contract.
    let name = unsafe { core::slice::from_raw_parts(name, len) };
    netmap().netif_gone(name);
}
