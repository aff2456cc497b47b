//! netmap-freebsd: the Rust half of the netmap FreeBSD kernel module.
//!
//! This crate only translates between the FreeBSD kernel and netmap-core,
//! the same way `os/linux/rust` does for Linux:
//! * [`platform`] implements the core's platform trait (mtx/sx locks,
//!   selinfo wait queues, contigmalloc clusters, copyin/copyout, microtime,
//!   printf, kthreads) over the C wrappers of `glue.c` declared in [`ffi`];
//! * [`netif`] puts FreeBSD interfaces in netmap mode (emulated adapter)
//!   and makes the interfaces of persistent VALE ports;
//! * [`entry`] exports the `extern "C"` functions `glue.c` calls from the
//!   module event handler, the sysctl handlers and the cdevsw methods;
//! * this file provides the global allocator (malloc(9) with `M_NETMAP`)
//!   and the panic handler (printf + panic(9)).
//!
//! Built as a staticlib for `x86_64-unknown-none` (kernel code model, no
//! red zone, soft-float) by `cargo xtask kld`; only the crate's own object
//! is linked into netmap.ko, so no floats and no 128-bit division here (the
//! kernel does not provide those helpers and the build rejects SIMD
//! registers and such undefined symbols).
#![no_std]

extern crate alloc;

mod entry;
mod ffi;
mod netif;
mod params;
mod platform;

use core::alloc::{GlobalAlloc, Layout};
use netmap_core::fmtbuf as fmt;

/// What malloc(9) guarantees for any size (glue.c `NM_MALLOC_MINALIGN`).
const MALLOC_MIN_ALIGN: usize = 16;

/// Rust's global allocator over malloc(9)/free(9) (see `nm_glue_alloc`).
struct KernelAllocator;

// SAFETY: nm_glue_alloc returns NULL or a block of at least `size` bytes
// aligned to `align` (malloc for align <= 16, malloc_aligned above, NULL
// for align > PAGE_SIZE); blocks stay valid until nm_glue_free; realloc
// preserves the contents.
unsafe impl GlobalAlloc for KernelAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain allocation call, no preconditions.
        unsafe { ffi::nm_glue_alloc(layout.size(), layout.align(), false) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain allocation call, no preconditions.
        unsafe { ffi::nm_glue_alloc(layout.size(), layout.align(), true) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller passes a block from alloc/alloc_zeroed/realloc.
        unsafe { ffi::nm_glue_free(ptr) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MALLOC_MIN_ALIGN {
            // SAFETY: `ptr` is a live block of this allocator; realloc(9)
            // keeps the first min(old, new) bytes.
            return unsafe { ffi::nm_glue_realloc(ptr, new_size) };
        }
        // Over-aligned: allocate, copy, free.
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return core::ptr::null_mut();
        };
        // SAFETY: plain allocation call.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct and at least
            // min(old, new) bytes long.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: `ptr` came from this allocator and is not used again.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: KernelAllocator = KernelAllocator;

/// A Rust panic in the kernel is a bug: log it and panic(9).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut buf = fmt::StackBuf::<256>::new();
    let _ = core::fmt::write(&mut buf, format_args!("Rust panic: {info}"));
    let msg = buf.as_bytes();
    // SAFETY: msg points to msg.len() initialized bytes.
    unsafe { ffi::nm_glue_log(0, msg.as_ptr(), msg.len()) };
    // SAFETY: panic(9) has no preconditions; it does not return.
    unsafe { ffi::nm_glue_panic() }
}
