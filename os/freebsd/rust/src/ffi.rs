//! The C functions of `glue.c` that Rust calls (prefix `nm_glue_`).
//!
//! They wrap FreeBSD kernel macros and inline functions; see glue.c for
//! what each one does. Pointers to kernel objects (locks, wait queues,
//! threads, mbufs, interfaces) are opaque here. `c_int` results are 0 or a
//! positive FreeBSD errno.

use core::ffi::{c_char, c_int, c_uint, c_void};

unsafe extern "C" {
    /// Name of parameter `id` (NUL-terminated), or NULL past the end.
    pub fn nm_glue_param_name(id: u32) -> *const c_char;

    /// malloc(9) / malloc_aligned(9) with M_NETMAP, M_NOWAIT; NULL on
    /// failure or for align > PAGE_SIZE.
    pub fn nm_glue_alloc(size: usize, align: usize, zero: bool) -> *mut u8;
    /// free(9).
    pub fn nm_glue_free(ptr: *mut u8);
    /// realloc(9), only for alignments <= 16.
    pub fn nm_glue_realloc(ptr: *mut u8, new_size: usize) -> *mut u8;

    /// `size` (multiple of 4096) zeroed, page-aligned, physically
    /// contiguous bytes (contigmalloc), or NULL.
    pub fn nm_glue_cluster_alloc(size: usize) -> *mut u8;
    /// Frees a cluster from `nm_glue_cluster_alloc`.
    pub fn nm_glue_cluster_free(ptr: *mut u8, size: usize);

    /// An MTX_DEF `struct mtx` (data path).
    pub fn nm_glue_spin_alloc() -> *mut c_void;
    pub fn nm_glue_spin_lock(l: *mut c_void);
    pub fn nm_glue_spin_unlock(l: *mut c_void);
    pub fn nm_glue_spin_free(l: *mut c_void);

    /// A `struct sx` (control path, may sleep).
    pub fn nm_glue_mutex_alloc() -> *mut c_void;
    pub fn nm_glue_mutex_lock(m: *mut c_void);
    pub fn nm_glue_mutex_unlock(m: *mut c_void);
    pub fn nm_glue_mutex_free(m: *mut c_void);

    /// A selinfo with its knlist (`struct nm_wq`).
    pub fn nm_glue_wq_alloc() -> *mut c_void;
    /// selwakeuppri + the knotes (from a task).
    pub fn nm_glue_wq_wake_all(wq: *mut c_void);
    pub fn nm_glue_wq_free(wq: *mut c_void);
    /// selrecord(td, wq) (nothing if `td` is NULL: kqueue's f_event).
    pub fn nm_glue_poll_wait(td: *mut c_void, wq: *mut c_void);

    /// copyin(9): 0 or EFAULT.
    pub fn nm_glue_copyin(dst: *mut u8, src: u64, len: usize) -> c_int;
    /// copyout(9): 0 or EFAULT.
    pub fn nm_glue_copyout(dst: u64, src: *const u8, len: usize) -> c_int;

    /// microtime(9).
    pub fn nm_glue_gettimeofday(sec: *mut i64, usec: *mut i64);
    /// mp_ncpus.
    pub fn nm_glue_online_cpus() -> c_uint;
    /// physmem in bytes.
    pub fn nm_glue_total_ram() -> u64;

    /// printf(9) (level 0..2) or log(LOG_DEBUG) (3), "netmap: " prefix.
    pub fn nm_glue_log(level: c_int, msg: *const u8, len: usize);
    /// panic(9).
    pub fn nm_glue_panic() -> !;

    /// kthread_add(9) of a thread that calls `nm_rs_thread_run(ctx)` until
    /// `nm_glue_thread_stop`, bound with sched_bind(9) to `cpu` if >= 0.
    /// NULL with `*err` = errno on failure (EINVAL: CPU not present).
    pub fn nm_glue_thread_start(
        name: *const u8,
        len: usize,
        cpu: c_int,
        ctx: *mut c_void,
        err: *mut c_int,
    ) -> *mut c_void;
    /// Stops the thread and waits until it left `nm_rs_thread_run` for
    /// good; frees the handle. Sleeps.
    pub fn nm_glue_thread_stop(t: *mut c_void);
}

/// What `nm_glue_gna_lookup` reports about an interface (glue.c's
/// `struct nm_gna_info`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GnaInfo {
    pub rx_rings: u32,
    pub tx_rings: u32,
    pub rx_slots: u32,
    pub tx_slots: u32,
    pub mtu: u32,
}

unsafe extern "C" {
    /// The Ethernet interface `name` in the caller's vnet, referenced, as
    /// an opaque `struct nm_gna *`; NULL if there is none.
    pub fn nm_glue_gna_lookup(name: *const u8, len: usize, info: *mut GnaInfo) -> *mut c_void;
    /// Detaches (unhook, if_rele) and frees a `nm_gna`.
    pub fn nm_glue_gna_free(gna: *mut c_void);
    /// Installs (`on`) or removes the if_input / if_transmit hooks; `ctx`
    /// is what they pass to `nm_rs_netif_rx`. 0 or errno (EBUSY: another
    /// netmap owns the interface; ENXIO: departed).
    pub fn nm_glue_gna_register(gna: *mut c_void, ctx: *const c_void, on: bool) -> c_int;
    /// An mbuf for a `len`-byte frame (`*data`: where to write it), or NULL.
    pub fn nm_glue_mbuf_alloc(len: usize, data: *mut *mut u8) -> *mut c_void;
    /// Transmits (and consumes) an mbuf from TX ring `ring` with the
    /// interface's own if_transmit. 0 or errno (dropped).
    pub fn nm_glue_gna_xmit(gna: *mut c_void, m: *mut c_void, ring: u32) -> c_int;
    /// Hands (and consumes) an mbuf to the host stack. 0 or ENXIO.
    pub fn nm_glue_gna_inject(gna: *mut c_void, m: *mut c_void) -> c_int;

    /// Whether any interface `name` exists in the caller's vnet.
    pub fn nm_glue_netdev_exists(name: *const u8, len: usize) -> bool;
    /// Creates the Ethernet interface of persistent port `name`. 0 or errno.
    pub fn nm_glue_pif_create(name: *const u8, len: usize) -> c_int;
    /// Detaches the interface of persistent port `name`; 0, also when it
    /// is already gone.
    pub fn nm_glue_pif_delete(name: *const u8, len: usize) -> c_int;
}

unsafe extern "C" {
    /// A sleeper of the sync kernel loop (mutex + flag); never NULL
    /// (M_WAITOK).
    pub fn nm_glue_sleeper_alloc() -> *mut c_void;
    /// Wakes the sleeper.
    pub fn nm_glue_sleeper_wake(s: *mut c_void);
    /// msleep_sbt(PCATCH): 1 woken, 0 timeout, -EINTR signal.
    pub fn nm_glue_sleeper_sleep(s: *mut c_void, timeout_ns: u64) -> c_int;
    /// Frees a sleeper nobody sleeps on.
    pub fn nm_glue_sleeper_free(s: *mut c_void);
    /// pause_sbt(us).
    pub fn nm_glue_sleep_us(us: c_uint);
    /// Holds the `npages` pages of the calling process at page-aligned
    /// `addr` and maps them into one run of kernel addresses; NULL with
    /// `*err` = errno (EINVAL, EFAULT, ENOMEM).
    pub fn nm_glue_pin_user(addr: u64, npages: usize, err: *mut c_int) -> *mut c_void;
    /// Kernel address of page `i` of a held range (NULL if `i` is past it).
    pub fn nm_glue_upage_addr(u: *mut c_void, i: usize) -> *mut u8;
    /// Whether two held ranges are the same pages in the same order.
    pub fn nm_glue_upages_same(a: *mut c_void, b: *mut c_void) -> bool;
    /// Unmaps and releases a held range (does not sleep).
    pub fn nm_glue_unpin_user(u: *mut c_void);
}
