//! The `extern "C"` entry points glue.c calls (prefix `nm_rs_`).
//!
//! Contract (see also glue.c and ../README.md):
//! * `nm_rs_init` runs once (MOD_LOAD) before any other entry point;
//!   `nm_rs_exit` once (MOD_UNLOAD) after every file is gone (glue.c
//!   refuses the unload before) and after glue.c stopped forwarding sysctl
//!   handlers and "interface gone" tasks.
//! * `priv` pointers come from `nm_rs_open` and are passed back unchanged
//!   until `nm_rs_release`, called exactly once per open, when the last
//!   reference of the file (descriptor, mappings, knotes) is gone.
//! * Errors are returned as positive FreeBSD errno values, 0 for success:
//!   the core's errnos (Linux numbers) are mapped here.

use crate::params;
use crate::platform::{self, FreeBsdPlatform, KernelWaitQueue};
use alloc::boxed::Box;
use core::ffi::{c_int, c_uint, c_ulong, c_void};
use core::fmt::Write;
use core::ptr;
use netmap_core::edge::{self, Global};
use netmap_core::ioctl::{IoctlArg, IoctlReq};
use netmap_core::kring::Dir;
use netmap_core::platform::LogLevel;
use netmap_core::{Errno, Netmap, NetmapPriv};
use netmap_uapi::errno::freebsd;

type Nm = Netmap<FreeBsdPlatform>;
type Priv = NetmapPriv<FreeBsdPlatform>;

/// The module's global context, created by `nm_rs_init`.
static NETMAP: Global<FreeBsdPlatform> = Global::new();

/// FreeBSD poll bits that differ from the core's (Linux) ones: FreeBSD's
/// `POLLWRNORM` is `POLLOUT` (4), and its 0x100 is `POLLWRBAND`, which the
/// core would read as Linux's `POLLWRNORM`.
const BSD_POLLWRBAND: c_int = 0x100;

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

/// A core errno as FreeBSD numbers it.
fn bsd(e: Errno) -> c_int {
    freebsd::from_linux(e.0)
}

/// A FreeBSD errno (from glue.c) as the core numbers it.
pub fn core_errno(e: c_int) -> Errno {
    Errno(freebsd::to_linux(e))
}

/// `ERESTART` of the FreeBSD kernel (sys/errno.h): restart the system
/// call after the signal (never seen by userspace).
const ERESTART: c_int = -1;

fn result(r: netmap_core::Result<()>) -> c_int {
    match r {
        Ok(()) => 0,
        // A signal ended a sleep (the sync kernel loop): restartable, as
        // any interruptible sleep in the kernel (EINTR if the handler has
        // no SA_RESTART).
        Err(Errno::EINTR) => ERESTART,
        Err(e) => bsd(e),
    }
}

/// MOD_LOAD: checks glue.c's parameter table and creates the context.
///
/// # Safety
/// `vals` points to `n` ints (glue.c's `nm_param_vals`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_init(vals: *const c_int, n: c_uint) -> c_int {
    if let Err(e) = params::check_glue_table(n as usize) {
        platform::log(
            LogLevel::Error,
            format_args!("parameter table mismatch between glue.c and Rust"),
        );
        return bsd(e);
    }
    // SAFETY: by the function contract vals points to n initialized ints.
    let vals = unsafe { core::slice::from_raw_parts(vals, n as usize) };
    match Netmap::new(FreeBsdPlatform, params::to_core(vals)) {
        Ok(nm) => {
            if let Err(e) = nm.set_netif_provider(Box::new(crate::netif::FreeBsdNetifProvider)) {
                return bsd(e);
            }
            NETMAP.init(nm);
            0
        }
        Err(e) => bsd(e),
    }
}

/// MOD_UNLOAD: drops the context (no file is left).
#[unsafe(no_mangle)]
pub extern "C" fn nm_rs_exit() {
    // SAFETY: no other entry point runs any more and none holds a
    // reference to the context (module doc).
    unsafe { NETMAP.exit() };
}

/// A sysctl write of parameter `id` (after init).
#[unsafe(no_mangle)]
pub extern "C" fn nm_rs_param_set(id: c_uint, value: c_int) -> c_int {
    params::set(netmap().params(), id as usize, value);
    0
}

/// A sysctl read of parameter `id`: 0 and `*value` if Rust owns the value,
/// EINVAL (and `*value` left alone) otherwise.
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
        None => bsd(Errno::EINVAL),
    }
}

/// d_open: creates the per-file state.
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
        Err(e) => bsd(e),
    }
}

/// The last reference of a file is gone.
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

/// d_ioctl: `data` is the kernel copy of the argument that FreeBSD's ioctl
/// layer made (`len` = IOCPARM_LEN(cmd) bytes, copied back on return).
///
/// # Safety
/// `p` is a live `priv`; `data` is valid for reads and writes of `len`
/// bytes (or `len` is 0) and not used elsewhere during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_ioctl(
    p: *mut c_void,
    cmd: c_ulong,
    data: *mut u8,
    len: usize,
) -> c_int {
    // SAFETY: live priv by the function contract.
    let np = unsafe { priv_ref(p) };
    let Some(req) = u32::try_from(cmd).ok().and_then(IoctlReq::from_bsd) else {
        return bsd(Errno::EOPNOTSUPP);
    };
    let arg = if len == 0 || data.is_null() {
        IoctlArg::User(0)
    } else {
        // SAFETY: valid for len bytes, exclusively ours for the call
        // (function contract); u8 has no invalid values.
        IoctlArg::Kernel(unsafe { core::slice::from_raw_parts_mut(data, len) })
    };
    result(netmap().ioctl_req(np, req, arg))
}

/// d_poll (and kqueue's f_event with `td` NULL): returns the ready POLL*
/// bits; with a thread, registers it on the wait queues the core names
/// (`nm_glue_poll_wait` = selrecord).
///
/// # Safety
/// `p` is a live `priv`; `td` is the polling thread or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_poll(p: *mut c_void, events: c_int, td: *mut c_void) -> c_int {
    // SAFETY: live priv by the function contract.
    let np = unsafe { priv_ref(p) };
    let mut wait = |wq: &KernelWaitQueue| {
        // SAFETY: td is the polling thread (or NULL: ignored) and wq a live
        // wait queue owned by the core, which keeps it until this file is
        // released (seldrain at its free covers late selectors).
        unsafe { crate::ffi::nm_glue_poll_wait(td, wq.as_raw()) }
    };
    let events = (events & !BSD_POLLWRBAND) as u32;
    netmap().poll(np, events, &mut wait) as c_int
}

/// d_kqfilter: the wait queue a knote of this file attaches to (RX for
/// EVFILT_READ, TX for `write`), or NULL if the file is not bound to rings
/// that way.
///
/// # Safety
/// `p` is a live `priv`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_kq_queue(p: *mut c_void, write: bool) -> *mut c_void {
    // SAFETY: live priv by the function contract.
    let np = unsafe { priv_ref(p) };
    let d = if write { Dir::Tx } else { Dir::Rx };
    np.binding()
        .and_then(|b| Nm::wait_queue(b, d))
        .map_or(ptr::null_mut(), KernelWaitQueue::as_raw)
}

/// d_mmap_single: may the file map [offset, offset+len) of its region?
///
/// # Safety
/// `p` is a live `priv`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_mmap_check(p: *mut c_void, offset: u64, len: u64) -> c_int {
    // SAFETY: live priv by the function contract.
    let np = unsafe { priv_ref(p) };
    result(netmap().mmap_check(np, offset, len))
}

/// Device pager fault: kernel address of the page at `offset` of the
/// file's region, or NULL (the fault fails).
///
/// # Safety
/// `p` is a live `priv` (the pager handle holds a reference).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_mmap_page(p: *mut c_void, offset: u64) -> *mut c_void {
    // SAFETY: live priv by the function contract.
    let np = unsafe { priv_ref(p) };
    match netmap().mmap_page(np, offset) {
        Some(page) => page.as_ptr().cast(),
        None => ptr::null_mut(),
    }
}

/// The allocator counters as "name value" lines (sysctl dev.netmap.stats);
/// returns the length.
///
/// # Safety
/// `buf` is valid for writes of `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_stats(buf: *mut u8, len: usize) -> usize {
    // SAFETY: valid for writes of len bytes by the function contract; u8 has
    // no invalid values and the buffer is not aliased during the call.
    let out = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    let mut w = crate::fmt::SliceBuf::new(out);
    let _ = write!(w, "{}", netmap().stats());
    w.len()
}

/// The interface `name` departed while netmap used it (called from
/// glue.c's task, after the interface side was detached).
///
/// # Safety
/// `name` is valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_netif_gone(name: *const u8, len: usize) {
    // SAFETY: valid for len bytes by the function contract.
    let name = unsafe { core::slice::from_raw_parts(name, len) };
    netmap().netif_gone(name);
}
