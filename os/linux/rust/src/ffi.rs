//! The C functions of `glue.c` that Rust calls (prefix `nm_glue_`).
//!
//! They wrap kernel macros and inline functions; see glue.c for what each
//! one does. Pointers to kernel objects (locks, wait queues, files, poll
//! tables) are opaque here.

use core::ffi::{c_char, c_int, c_ulong, c_void};

unsafe extern "C" {
    /// Name of module parameter `id` (NUL-terminated), or NULL past the end.
    pub fn nm_glue_param_name(id: u32) -> *const c_char;

    /// kvmalloc with the alignment rules of glue.c; NULL on failure.
    pub fn nm_glue_alloc(size: usize, align: usize, zero: bool) -> *mut u8;
    /// kvfree.
    pub fn nm_glue_free(ptr: *mut u8);
    /// krealloc/kvrealloc, only for alignments <= 8.
    pub fn nm_glue_realloc(ptr: *mut u8, old_size: usize, new_size: usize) -> *mut u8;

    /// `size` (multiple of 4096) zeroed, page-aligned bytes, or NULL.
    pub fn nm_glue_cluster_alloc(size: usize) -> *mut u8;
    /// Frees a cluster from `nm_glue_cluster_alloc` with its size.
    pub fn nm_glue_cluster_free(ptr: *mut u8, size: usize);

    pub fn nm_glue_spin_alloc() -> *mut c_void;
    pub fn nm_glue_spin_lock(l: *mut c_void);
    pub fn nm_glue_spin_unlock(l: *mut c_void);
    pub fn nm_glue_spin_free(l: *mut c_void);

    pub fn nm_glue_mutex_alloc() -> *mut c_void;
    pub fn nm_glue_mutex_lock(m: *mut c_void);
    pub fn nm_glue_mutex_unlock(m: *mut c_void);
    pub fn nm_glue_mutex_free(m: *mut c_void);

    pub fn nm_glue_wq_alloc() -> *mut c_void;
    pub fn nm_glue_wq_wake_all(wq: *mut c_void);
    pub fn nm_glue_wq_free(wq: *mut c_void);
    /// poll_wait(file, wq, pt).
    pub fn nm_glue_poll_wait(file: *mut c_void, wq: *mut c_void, pt: *mut c_void);

    /// Returns the number of bytes not copied.
    pub fn nm_glue_copy_from_user(dst: *mut u8, src: u64, len: c_ulong) -> c_ulong;
    /// Returns the number of bytes not copied.
    pub fn nm_glue_copy_to_user(dst: u64, src: *const u8, len: c_ulong) -> c_ulong;

    pub fn nm_glue_gettimeofday(sec: *mut i64, usec: *mut i64);
    /// Monotonic nanoseconds (for the core's timeouts; not used yet).
    #[allow(dead_code)]
    pub fn nm_glue_ktime_ns() -> u64;

    /// printk with a level (0 err, 1 warn, 2 info, 3 debug), "netmap: " prefix.
    pub fn nm_glue_log(level: c_int, msg: *const u8, len: usize);
    /// BUG().
    pub fn nm_glue_bug() -> !;
}
