//! netmap-linux: the Rust half of the netmap Linux kernel module.
//!
//! This crate only translates between the kernel and netmap-core:
//! * [`platform`] implements the core's platform trait (locks, wait queues,
//!   page clusters, user copies, time, logging) over the C wrappers of
//!   `glue.c` declared in [`ffi`];
//! * [`netif`] puts Linux net devices in netmap mode (emulated adapter);
//! * [`entry`] exports the `extern "C"` functions `glue.c` calls from module
//!   init/exit, the module-parameter callbacks and the file operations;
//! * this file provides the global allocator (kvmalloc) and the panic
//!   handler (printk + BUG()).
//!
//! Built as a staticlib for `x86_64-unknown-none` (kernel code model, no red
//! zone, soft-float) by `cargo xtask module`; only the crate's own object is
//! linked into netmap.ko, so no floats and no 128-bit division here (the
//! kernel does not export those helpers and `cargo xtask module` rejects
//! SIMD registers in the object).
#![no_std]

extern crate alloc;

mod entry;
mod ffi;
use netmap_core::fmtbuf as fmt;
mod netif;
mod params;
mod platform;

use core::alloc::{GlobalAlloc, Layout};

/// `ARCH_KMALLOC_MINALIGN` on x86_64: every kmalloc object is 8-aligned.
const KMALLOC_MIN_ALIGN: usize = 8;

/// Rust's global allocator over kvmalloc/kvfree (see `nm_glue_alloc`).
struct KernelAllocator;

// SAFETY: nm_glue_alloc returns NULL or a block of at least `size` bytes
// aligned to `align` (glue.c rounds sizes so that kmalloc's power-of-two
// alignment guarantee covers `align`, and rejects align > PAGE_SIZE);
// blocks stay valid until nm_glue_free; realloc preserves the contents.
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
        if layout.align() <= KMALLOC_MIN_ALIGN {
            // SAFETY: `ptr` is a live block of `layout.size()` bytes from this
            // allocator; krealloc/kvrealloc keep the first min(old, new) bytes.
            return unsafe { ffi::nm_glue_realloc(ptr, layout.size(), new_size) };
        }
        // Over-aligned: allocate, copy, free (krealloc would not keep the
        // rounded-up size that guarantees the alignment).
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

/// A Rust panic in the kernel is a bug: log it and BUG() (kills the current
/// task with an Oops; the guest tests treat that as a failure).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut buf = fmt::StackBuf::<256>::new();
    let _ = core::fmt::write(&mut buf, format_args!("Rust panic: {info}"));
    let msg = buf.as_bytes();
    // SAFETY: msg points to msg.len() initialized bytes.
    unsafe { ffi::nm_glue_log(0, msg.as_ptr(), msg.len()) };
    // SAFETY: BUG() has no preconditions; it does not return.
    unsafe { ffi::nm_glue_bug() }
}
