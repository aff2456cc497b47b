//! netmap-windows: netmap.sys, the Windows driver.
//!
//! One driver: an NDIS 6 lightweight filter (NICs and their host stack,
//! [`filter`]) and the control device `\\.\netmap` ([`device`]), over
//! netmap-core. This crate only translates between the Windows kernel and
//! the core:
//! * [`platform`] implements the core's platform trait (spin locks,
//!   kernel mutexes, KEVENT wait queues, nonpaged clusters, user copies,
//!   system threads, time, DbgPrintEx);
//! * [`device`] is the control device: open/cleanup/close and the control
//!   codes of `netmap_uapi::winioctl` (requests, syncs, the wait that
//!   stands in for poll, the region mapped through an MDL);
//! * [`filter`] is the NDIS filter and the core's `NetifProvider`;
//! * this file: `DriverEntry`/unload, the global allocator (nonpaged pool)
//!   and the panic handler (DbgPrintEx + KeBugCheckEx).
//!
//! `glue.c` holds the calls that raise exceptions on bad user addresses
//! (Rust has no SEH). Built by `cargo xtask sys` (see ../README.md).
#![no_std]

extern crate alloc;

mod device;
pub mod ffi;
mod filter;
mod platform;

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use ffi::{DRIVER_OBJECT, NTSTATUS, STATUS_SUCCESS, UNICODE_STRING};
use netmap_core::platform::LogLevel;
use netmap_core::{Netmap, Params};
use platform::WindowsPlatform;

/// Pool tag of every allocation ('NmRs' read backwards in a pool dump).
pub const POOL_TAG: u32 = u32::from_le_bytes(*b"NmRs");

type Nm = Netmap<WindowsPlatform>;

/// The driver's global context, created by `DriverEntry`.
static NETMAP: AtomicPtr<Nm> = AtomicPtr::new(ptr::null_mut());

/// The global context.
///
/// Only called from handlers NDIS or the I/O manager invokes between a
/// successful `DriverEntry` and the unload routine.
fn netmap() -> &'static Nm {
    let p = NETMAP.load(Ordering::Acquire);
    // SAFETY: set by DriverEntry from Box::into_raw before the filter and
    // the device are registered, freed by the unload routine after both
    // are deregistered (no handler runs any more).
    unsafe { p.as_ref() }.expect("netmap: handler called outside DriverEntry..unload")
}

/// Pool allocations are 16-byte aligned on x64.
const POOL_ALIGN: usize = 16;

/// Rust's global allocator over nonpaged pool (NonPagedPoolNx): the data
/// path runs at DISPATCH_LEVEL, where paged memory cannot be touched.
struct PoolAllocator;

impl PoolAllocator {
    /// Over-aligned blocks: allocate `size + align`, return the first
    /// aligned address after 8 bytes and keep the pool address just before.
    fn alloc_aligned(layout: Layout) -> *mut u8 {
        let Some(total) = layout.size().checked_add(layout.align()) else {
            return ptr::null_mut();
        };
        // SAFETY: plain pool allocation.
        let raw = unsafe { ffi::ExAllocatePoolWithTag(ffi::NON_PAGED_POOL_NX, total, POOL_TAG) };
        if raw.is_null() {
            return ptr::null_mut();
        }
        let raw = raw.cast::<u8>();
        let addr = (raw as usize + 8).next_multiple_of(layout.align());
        let user = raw.wrapping_add(addr - raw as usize);
        // SAFETY: `user - 8 >= raw` (at least 8 bytes were skipped) and
        // `user + size <= raw + total`; the slot is 8-aligned (align > 16).
        unsafe { user.sub(8).cast::<*mut u8>().write(raw) };
        user
    }
}

// SAFETY: ExAllocatePoolWithTag returns NULL or a block of at least `size`
// bytes, 16-aligned, valid until ExFreePoolWithTag; larger alignments are
// handled by over-allocation (the pool address is kept before the block).
unsafe impl GlobalAlloc for PoolAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() > POOL_ALIGN {
            return Self::alloc_aligned(layout);
        }
        // SAFETY: plain pool allocation (size 0 is never asked by GlobalAlloc users).
        unsafe { ffi::ExAllocatePoolWithTag(ffi::NON_PAGED_POOL_NX, layout.size(), POOL_TAG) }
            .cast()
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let raw = if layout.align() > POOL_ALIGN {
            // SAFETY: alloc_aligned stored the pool address 8 bytes before.
            unsafe { ptr.sub(8).cast::<*mut u8>().read() }
        } else {
            ptr
        };
        // SAFETY: `raw` came from ExAllocatePoolWithTag with our tag.
        unsafe { ffi::ExFreePoolWithTag(raw.cast(), POOL_TAG) }
    }
}

#[global_allocator]
static ALLOCATOR: PoolAllocator = PoolAllocator;

/// A Rust panic in the kernel is a bug: log it and stop the machine
/// (KeBugCheckEx with code 'NMRS'), as BUG() does on Linux.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    platform::log(LogLevel::Error, format_args!("Rust panic: {info}"));
    // SAFETY: KeBugCheckEx has no preconditions; it does not return.
    unsafe { ffi::KeBugCheckEx(u32::from_be_bytes(*b"NMRS"), 0, 0, 0, 0) }
}

/// The driver's entry point: the core, the NDIS filter, the control
/// device, the process-exit hook (mappings), in that order; undone in
/// reverse on failure.
///
/// # Safety
/// Called once by the I/O manager with its driver object.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn DriverEntry(
    driver: *mut DRIVER_OBJECT,
    _registry_path: *const UNICODE_STRING,
) -> NTSTATUS {
    let nm = match Netmap::new(WindowsPlatform, Params::default()) {
        Ok(nm) => nm,
        Err(_) => return ffi::STATUS_INSUFFICIENT_RESOURCES,
    };
    if nm
        .set_netif_provider(alloc::boxed::Box::new(filter::NdisNetifProvider))
        .is_err()
    {
        return ffi::STATUS_UNSUCCESSFUL;
    }
    NETMAP.store(alloc::boxed::Box::into_raw(nm), Ordering::Release);
    // SAFETY: `driver` is our driver object (entry-point contract).
    unsafe { (*driver).DriverUnload = Some(driver_unload) };
    // SAFETY: as above; the context exists.
    let r = unsafe { filter::register(driver) };
    if r != STATUS_SUCCESS {
        drop_context();
        return r;
    }
    // SAFETY: the filter driver is registered (its handle names us to NDIS).
    let r = unsafe { device::register() };
    if r != STATUS_SUCCESS {
        // SAFETY: registered just above, deregistered once.
        unsafe { filter::deregister() };
        drop_context();
        return r;
    }
    platform::log(LogLevel::Info, format_args!("netmap.sys loaded"));
    STATUS_SUCCESS
}

/// Unload: the device first (no new opens; the I/O manager only unloads
/// once every handle is closed), then the filter (NDIS detaches every
/// module, which takes the NICs out of netmap mode), then the core.
unsafe extern "system" fn driver_unload(_driver: *const DRIVER_OBJECT) {
    // SAFETY: registered by DriverEntry, deregistered once here.
    unsafe { device::deregister() };
    // SAFETY: as above.
    unsafe { filter::deregister() };
    drop_context();
    platform::log(LogLevel::Info, format_args!("netmap.sys unloaded"));
}

fn drop_context() {
    let p = NETMAP.swap(ptr::null_mut(), Ordering::AcqRel);
    if !p.is_null() {
        // SAFETY: from Box::into_raw in DriverEntry; no handler runs any more.
        drop(unsafe { alloc::boxed::Box::from_raw(p) });
    }
}

/// The raw context pointer, for callbacks that must tolerate running
/// after unload started (never: kept for symmetry with Linux).
#[allow(dead_code)]
fn context_ptr() -> *mut c_void {
    NETMAP.load(Ordering::Acquire).cast()
}
