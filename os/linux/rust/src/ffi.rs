//! The C functions of `glue.c` that Rust calls (prefix `nm_glue_`).
//!
//! They wrap kernel macros and inline functions; see glue.c for what each
//! one does. Pointers to kernel objects (locks, wait queues, files, poll
//! tables) are opaque here.

use core::ffi::{c_char, c_int, c_uint, c_ulong, c_void};

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
    /// Bytes of RAM (`totalram_pages() << PAGE_SHIFT`).
    pub fn nm_glue_total_ram() -> u64;

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

/// What `nm_glue_gna_lookup` reports about a device (glue.c's
/// `struct nm_gna_info`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct GnaInfo {
    pub rx_rings: u32,
    pub tx_rings: u32,
    pub rx_slots: u32,
    pub tx_slots: u32,
    pub mtu: u32,
    /// The device's netmap-aware driver (`struct netmap_native`), or NULL
    /// (also when module parameter `admode` is 2).
    pub native: *mut c_void,
    /// Its rings and descriptors per ring, RX then TX.
    pub native_rings: [u32; 2],
    pub native_descs: [u32; 2],
}

impl Default for GnaInfo {
    fn default() -> Self {
        GnaInfo {
            rx_rings: 0,
            tx_rings: 0,
            rx_slots: 0,
            tx_slots: 0,
            mtu: 0,
            native: core::ptr::null_mut(),
            native_rings: [0; 2],
            native_descs: [0; 2],
        }
    }
}

unsafe extern "C" {
    /// The Ethernet device `name` in the caller's network namespace, held,
    /// as an opaque `struct nm_gna *`; NULL if there is none.
    pub fn nm_glue_gna_lookup(name: *const u8, len: usize, info: *mut GnaInfo) -> *mut c_void;
    /// Detaches (unhook, dev_put) and frees a `nm_gna`.
    pub fn nm_glue_gna_free(gna: *mut c_void);
    /// Installs (`on`) or removes the rx_handler and the xmit hook; `ctx` is
    /// what the hooks pass to `nm_rs_netif_rx`. 0 or -errno.
    pub fn nm_glue_gna_register(gna: *mut c_void, ctx: *const c_void, on: bool) -> c_int;
    /// An skb for a `len`-byte frame (`*data`: where to write it), or NULL.
    pub fn nm_glue_skb_alloc(len: usize, data: *mut *mut u8) -> *mut c_void;
    /// Transmits (and consumes) an skb from TX ring `ring` (queue `ring %
    /// queues`); it counts in flight until it completes, and completions
    /// call `nm_rs_netif_tx_done`. 0 (sent or dropped for good), -EAGAIN
    /// (qdisc full: retry the slot later; a timer calls
    /// `nm_rs_netif_tx_wake`) or -ENXIO (device gone).
    pub fn nm_glue_gna_xmit(gna: *mut c_void, skb: *mut c_void, ring: u32) -> c_int;
    /// Frames from TX ring `ring` handed to the device whose skbs have not
    /// completed yet (destructor not run).
    pub fn nm_glue_gna_tx_inflight(gna: *mut c_void, ring: u32) -> u32;
    /// Hands (and consumes) an skb to the host stack. 0 or -ENXIO.
    pub fn nm_glue_gna_inject(gna: *mut c_void, skb: *mut c_void) -> c_int;

    /// Native drivers (`struct netmap_native *nn`, glue.c): the adapter
    /// pointer `netmap_native_irq` passes to `nm_rs_native_irq` (NULL: none;
    /// clearing waits for an RCU grace period).
    pub fn nm_glue_native_set_ctx(nn: *mut c_void, ctx: *const c_void);
    /// `ops->reg(drv, on)`: 0 or -errno.
    pub fn nm_glue_native_reg(nn: *mut c_void, on: bool) -> c_int;
    /// `ops->tx_post` / `ops->rx_post`.
    pub fn nm_glue_native_post(
        nn: *mut c_void,
        tx: bool,
        ring: u32,
        desc: u32,
        addr: *mut u8,
        len: u32,
        reload: bool,
    ) -> bool;
    /// `ops->tx_kick` / `ops->rx_kick`.
    pub fn nm_glue_native_kick(nn: *mut c_void, tx: bool, ring: u32);
    pub fn nm_glue_native_tx_reclaim(nn: *mut c_void, ring: u32) -> u32;
    pub fn nm_glue_native_rx_poll(
        nn: *mut c_void,
        ring: u32,
        desc: *mut u32,
        len: *mut u32,
    ) -> bool;
    pub fn nm_glue_native_intr(nn: *mut c_void, tx: bool, ring: u32, on: bool) -> bool;

    /// Whether any interface `name` exists in the caller's namespace.
    pub fn nm_glue_netdev_exists(name: *const u8, len: usize) -> bool;
    /// Creates and registers the Ethernet device of persistent port `name`
    /// (takes rtnl). 0 or -errno (-EEXIST, -EINVAL, -ENOMEM).
    pub fn nm_glue_pif_create(name: *const u8, len: usize) -> c_int;
    /// Unregisters the device of persistent port `name` (takes rtnl); 0,
    /// also when it is already gone (its namespace was destroyed).
    pub fn nm_glue_pif_delete(name: *const u8, len: usize) -> c_int;
}

unsafe extern "C" {
    /// Creates and wakes a kernel thread named `name` that calls
    /// `nm_rs_thread_run(ctx)` until `nm_glue_thread_stop`; bound to `cpu`
    /// if `cpu >= 0`. Returns the task (referenced), or NULL with `*err` =
    /// -errno (-EINVAL for a CPU that is not online).
    pub fn nm_glue_thread_start(
        name: *const u8,
        len: usize,
        cpu: c_int,
        ctx: *mut c_void,
        err: *mut c_int,
    ) -> *mut c_void;
    /// kthread_stop (waits until the thread has exited) + put_task_struct.
    /// Sleeps.
    pub fn nm_glue_thread_stop(task: *mut c_void);
    /// num_online_cpus().
    pub fn nm_glue_online_cpus() -> c_uint;
}

unsafe extern "C" {
    /// A sleeper of the sync kernel loop (wait queue head + flag), or NULL.
    pub fn nm_glue_sleeper_alloc() -> *mut c_void;
    /// Wakes the sleeper (any context).
    pub fn nm_glue_sleeper_wake(s: *mut c_void);
    /// Sleeps until woken, `timeout_ns` passed or a signal is pending:
    /// 1, 0 or -EINTR (`timeout_ns == 0`: cond_resched only).
    pub fn nm_glue_sleeper_sleep(s: *mut c_void, timeout_ns: u64) -> c_int;
    /// Frees a sleeper nobody sleeps on and no watch refers to.
    pub fn nm_glue_sleeper_free(s: *mut c_void);
    /// A watch of wait queue `wq` (nm_glue_wq_alloc) waking `s`; NULL on
    /// allocation failure.
    pub fn nm_glue_watch_wq(s: *mut c_void, wq: *mut c_void) -> *mut c_void;
    /// A watch of eventfd `e` (nm_glue_eventfd_get) waking `s` when it is
    /// written; NULL with `*err` = -ENOMEM or -EINVAL.
    pub fn nm_glue_watch_eventfd(s: *mut c_void, e: *mut c_void, err: *mut c_int) -> *mut c_void;
    /// 1 if the watch fired since the last call (clears it).
    pub fn nm_glue_watch_take_fired(w: *mut c_void) -> c_int;
    /// Removes and frees a watch (process context, no spinlock held).
    pub fn nm_glue_watch_free(w: *mut c_void);
    /// The eventfd `fd` of the calling process, referenced; NULL with
    /// `*err` = -EBADF, -EINVAL or -ENOMEM.
    pub fn nm_glue_eventfd_get(fd: c_int, err: *mut c_int) -> *mut c_void;
    /// eventfd_signal(ctx, 1) (any context).
    pub fn nm_glue_eventfd_signal(e: *mut c_void);
    /// Drops the references of nm_glue_eventfd_get (no watch left on it).
    pub fn nm_glue_eventfd_put(e: *mut c_void);
    /// fsleep(us).
    pub fn nm_glue_sleep_us(us: c_uint);
}

unsafe extern "C" {
    /// Pins `npages` pages of the calling process at `addr` (page aligned),
    /// writable; NULL with `*err` = -errno.
    pub fn nm_glue_pin_user(addr: u64, npages: usize, err: *mut c_int) -> *mut c_void;
    /// Kernel address of page `i` of a pinned range (NULL past the end).
    pub fn nm_glue_upage_addr(u: *mut c_void, i: usize) -> *mut u8;
    /// Whether two pinned ranges hold the same pages in the same order.
    pub fn nm_glue_upages_same(a: *mut c_void, b: *mut c_void) -> bool;
    /// Unpins (and marks dirty) a range from nm_glue_pin_user, frees it.
    pub fn nm_glue_unpin_user(u: *mut c_void);
}
