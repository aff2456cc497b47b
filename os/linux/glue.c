// SPDX-License-Identifier: BSD-2-Clause
/*
 * glue.c - the C half of the netmap Linux kernel module.
 *
 * Everything netmap decides lives in Rust (os/linux/rust, on top of
 * netmap-core).  This file only does what Rust cannot do by itself on a
 * kernel without Rust support (Debian 12's 6.1, Debian 13's 6.12):
 *
 *   1. module boilerplate: MODULE_* macros, module_init/module_exit;
 *   2. the module parameters of spec section 12, under
 *      /sys/module/netmap/parameters, forwarded to Rust;
 *   3. the misc device /dev/netmap and its file operations (open, release,
 *      ioctl, compat_ioctl, mmap with lazy page faults, poll);
 *   4. a debugfs file (/sys/kernel/debug/netmap/stats) with the allocator
 *      counters the guest tests use to detect leaks;
 *   5. small wrappers around kernel macros and inline functions that Rust
 *      calls through `extern "C"` (locks, wait queues, user copies, page
 *      clusters, time, printk, the allocator behind Rust's global allocator,
 *      kernel threads, and for the sync kernel loop: sleepers, watches on
 *      wait queues and eventfds, eventfd signalling).
 *
 * The contract with Rust (prefix nm_rs_ = implemented in Rust, nm_glue_ =
 * implemented here) is documented in os/linux/README.md and mirrored in
 * os/linux/rust/src/ffi.rs.  Pointers that cross the boundary are opaque on
 * the Rust side.
 */

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/kernel.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/gfp.h>
#include <linux/spinlock.h>
#include <linux/mutex.h>
#include <linux/wait.h>
#include <linux/uaccess.h>
#include <linux/timekeeping.h>
#include <linux/debugfs.h>
#include <linux/seq_file.h>
#include <linux/version.h>
#include <linux/compat.h>
#include <linux/preempt.h>
#include <linux/irqflags.h>
#include <linux/bug.h>
#include <linux/ethtool.h>
#include <linux/netdevice.h>
#include <linux/etherdevice.h>
#include <linux/if_arp.h>
#include <linux/if_vlan.h>
#include <linux/skbuff.h>
#include <linux/rtnetlink.h>
#include <linux/workqueue.h>
#include <linux/interrupt.h>
#include <linux/kref.h>
#include <linux/atomic.h>
#include <linux/rcupdate.h>
#include <linux/wait_bit.h>
#include <linux/overflow.h>
#include <linux/list.h>
#include <linux/nsproxy.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <linux/kthread.h>
#include <linux/cpumask.h>
#include <linux/topology.h>
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/delay.h>
#include <linux/sched/signal.h>
#include <net/net_namespace.h>

#include "netmap_native.h"

MODULE_LICENSE("Dual BSD/GPL");
MODULE_DESCRIPTION("netmap-rs: fast packet I/O and the VALE switch (netmap API 14)");
MODULE_AUTHOR("netmap-rs authors");

/* ------------------------------------------------------------------------
 * Entry points implemented in Rust (os/linux/rust/src/entry.rs).
 * Every int-returning function returns 0 or a negative errno.
 * ------------------------------------------------------------------------ */
int nm_rs_init(const int *params, unsigned int nparams);
void nm_rs_exit(void);
int nm_rs_param_set(unsigned int id, int value);
int nm_rs_param_get(unsigned int id, int *value);
int nm_rs_open(void **priv);
void nm_rs_release(void *priv);
long nm_rs_ioctl(void *priv, unsigned int cmd, unsigned long arg);
unsigned int nm_rs_poll(void *priv, unsigned int events, void *file, void *pt);
int nm_rs_mmap_check(void *priv, u64 offset, u64 len);
void *nm_rs_mmap_page(void *priv, u64 offset);
size_t nm_rs_stats(char *buf, size_t len);
size_t nm_rs_pools(char *buf, size_t len);
bool nm_rs_netif_rx(void *ctx, unsigned int queue, bool host, const u8 *data,
		    size_t len);
void nm_rs_netif_gone(const char *name, size_t len);
void nm_rs_native_irq(void *ctx, bool tx, u32 ring);
bool nm_rs_native_reset(void *ctx, bool tx, u32 ring, u32 first);
void nm_rs_netif_rx_flush(void *ctx);
void nm_rs_netif_tx_wake(void *ctx);
void nm_rs_netif_tx_done(void *ctx, unsigned int ring);

/* ------------------------------------------------------------------------
 * Functions implemented here and called by Rust (os/linux/rust/src/ffi.rs).
 * Declared up front so that every external definition below has a
 * prototype: kernels from 6.8 on build modules with -Wmissing-prototypes,
 * which our -Werror turns into an error.
 * ------------------------------------------------------------------------ */
struct nm_gna_info;
const char *nm_glue_param_name(unsigned int id);
void nm_glue_poll_wait(void *file, void *wq, void *pt);
void *nm_glue_gna_lookup(const char *name, size_t len, struct nm_gna_info *info);
void nm_glue_gna_free(void *p);
int nm_glue_gna_register(void *p, void *ctx, bool on);
void *nm_glue_skb_alloc(size_t len, u8 **data);
int nm_glue_gna_xmit(void *p, void *s, unsigned int ring);
u32 nm_glue_gna_tx_inflight(void *p, u32 ring);
int nm_glue_gna_inject(void *p, void *s);
int nm_glue_pif_create(const char *name, size_t len);
int nm_glue_pif_delete(const char *name, size_t len);
bool nm_glue_netdev_exists(const char *name, size_t len);
void nm_glue_native_set_ctx(void *nn, void *ctx);
int nm_glue_native_reg(void *nn, bool on);
bool nm_glue_native_post(void *nn, bool tx, u32 ring, u32 desc, void *addr,
			 u32 len, bool reload);
void nm_glue_native_kick(void *nn, bool tx, u32 ring);
u32 nm_glue_native_tx_reclaim(void *nn, u32 ring);
bool nm_glue_native_rx_poll(void *nn, u32 ring, u32 *desc, u32 *len);
bool nm_glue_native_intr(void *nn, bool tx, u32 ring, bool on);
void *nm_glue_alloc(size_t size, size_t align, bool zero);
void nm_glue_free(void *ptr);
void *nm_glue_realloc(void *ptr, size_t old_size, size_t new_size);
void *nm_glue_cluster_alloc(size_t size);
void nm_glue_cluster_free(void *ptr, size_t size);
u64 nm_glue_total_ram(void);
void *nm_glue_spin_alloc(void);
void nm_glue_spin_lock(void *l);
void nm_glue_spin_unlock(void *l);
void nm_glue_spin_free(void *l);
void *nm_glue_mutex_alloc(void);
void nm_glue_mutex_lock(void *m);
void nm_glue_mutex_unlock(void *m);
void nm_glue_mutex_free(void *m);
void *nm_glue_wq_alloc(void);
void nm_glue_wq_wake_all(void *wq);
void nm_glue_wq_free(void *wq);
unsigned long nm_glue_copy_from_user(void *dst, u64 src, unsigned long len);
unsigned long nm_glue_copy_to_user(u64 dst, const void *src, unsigned long len);
void nm_glue_gettimeofday(s64 *sec, s64 *usec);
u64 nm_glue_ktime_ns(void);
void nm_glue_log(int level, const char *msg, size_t len);
void __noreturn nm_glue_bug(void);
void *nm_glue_thread_start(const char *name, size_t len, int cpu, void *ctx,
			   int *err);
void nm_glue_thread_stop(void *task);
unsigned int nm_glue_online_cpus(void);
void *nm_glue_sleeper_alloc(void);
void nm_glue_sleeper_wake(void *sp);
int nm_glue_sleeper_sleep(void *sp, u64 timeout_ns);
void nm_glue_sleeper_free(void *s);
void *nm_glue_watch_wq(void *sleeper, void *wq);
void *nm_glue_watch_eventfd(void *sleeper, void *efd, int *err);
int nm_glue_watch_take_fired(void *wp);
void nm_glue_watch_free(void *wp);
void *nm_glue_eventfd_get(int fd, int *err);
void nm_glue_eventfd_signal(void *efd);
void nm_glue_eventfd_put(void *efd);
void nm_glue_sleep_us(unsigned int us);
void *nm_glue_pin_user(u64 addr, size_t npages, int *err);
void *nm_glue_upage_addr(void *up, size_t i);
bool nm_glue_upages_same(void *ap, void *bp);
void nm_glue_unpin_user(void *up);

/* ------------------------------------------------------------------------
 * Module parameters (spec section 12).
 *
 * One X-macro table gives every parameter its id (the enum order, which
 * Rust mirrors in params.rs and checks at init through
 * nm_glue_param_name()), its default and its sysfs mode.  Values live in
 * nm_param_vals[]: that is what insmod sets before init and what Rust
 * reads at init.  After init every write is also forwarded to Rust
 * (nm_rs_param_set), which updates the core's atomics.  Read-only
 * parameters whose value Rust computes (the *_curr_* actual sizes of the
 * global allocator, the memory budget in effect for max_mem_mb, whose 0
 * default means "half of the RAM") are read through nm_rs_param_get.
 *
 * Kinds: RW = 0644, written by users; RO = 0444, settable only at insmod
 *        (like the reference's load-time tunables); CUR = 0444, value owned
 *        by Rust, not settable.
 * ------------------------------------------------------------------------ */
#define NM_PARAMS(X)                               \
	X(verbose, 0, RW)                          \
	X(no_timestamp, 0, RW)                     \
	X(no_pendintr, 1, RW)                      \
	X(txsync_retry, 2, RW)                     \
	X(fwd, 0, RW)                              \
	X(admode, 0, RW)                           \
	X(generic_hwcsum, 0, RW)                   \
	X(generic_mit, 100000, RW)                 \
	X(generic_ringsize, 1024, RW)              \
	X(generic_rings, 1, RW)                    \
	X(generic_txqdisc, 1, RW)                  \
	X(ptnet_vnet_hdr, 1, RW)                   \
	X(if_size, 1024, RW)                       \
	X(if_num, 100, RW)                         \
	X(ring_size, 36864, RW)                    \
	X(ring_num, 200, RW)                       \
	X(buf_size, 2048, RW)                      \
	X(buf_num, 163840, RW)                     \
	X(if_curr_size, 1024, CUR)                 \
	X(if_curr_num, 100, CUR)                   \
	X(ring_curr_size, 36864, CUR)              \
	X(ring_curr_num, 200, CUR)                 \
	X(buf_curr_size, 2048, CUR)                \
	X(buf_curr_num, 163840, CUR)               \
	X(priv_if_size, 1024, RW)                  \
	X(priv_if_num, 2, RW)                      \
	X(priv_ring_size, 20480, RW)               \
	X(priv_ring_num, 4, RW)                    \
	X(priv_buf_size, 2048, RW)                 \
	X(priv_buf_num, 4098, RW)                  \
	X(bridge_batch, 1024, RW)                  \
	X(max_bridges, 8, RO)                      \
	X(default_pipes, 0, RW)                    \
	X(max_rings, 256, RO)                      \
	X(max_slots, 4096, RO)                     \
	X(max_extra_bufs, 524288, RO)              \
	X(max_mem_mb, 0, RO)

#define NM_PARAM_ENUM(name, def, kind) NM_PARAM_##name,
enum nm_param_id { NM_PARAMS(NM_PARAM_ENUM) NM_PARAM_COUNT };

#define NM_PARAM_DEFAULT(name, def, kind) [NM_PARAM_##name] = (def),
static int nm_param_vals[NM_PARAM_COUNT] = { NM_PARAMS(NM_PARAM_DEFAULT) };

#define NM_PARAM_NAME(name, def, kind) [NM_PARAM_##name] = #name,
static const char *const nm_param_names[NM_PARAM_COUNT] = {
	NM_PARAMS(NM_PARAM_NAME)
};

/* Set once nm_rs_init() succeeded; cleared before nm_rs_exit(). */
static bool nm_rs_live;

/* The name of parameter `id` (NULL past the end); Rust checks its table. */
const char *nm_glue_param_name(unsigned int id)
{
	return id < NM_PARAM_COUNT ? nm_param_names[id] : NULL;
}

static int nm_param_id(const struct kernel_param *kp)
{
	return (int *)kp->arg - nm_param_vals;
}

/* Writable parameter: parse, store, and tell Rust once it runs. */
static int nm_param_set_rw(const char *val, const struct kernel_param *kp)
{
	int v, err;

	err = kstrtoint(val, 0, &v);
	if (err)
		return err;
	if (READ_ONCE(nm_rs_live)) {
		err = nm_rs_param_set(nm_param_id(kp), v);
		if (err)
			return err;
	}
	*(int *)kp->arg = v;
	return 0;
}

/* Computed by Rust (actual allocator sizes): not even insmod may set it. */
static int nm_param_set_cur(const char *val, const struct kernel_param *kp)
{
	return -EPERM;
}

static int nm_param_get(char *buf, const struct kernel_param *kp)
{
	int v = *(int *)kp->arg;

	/* Rust may own the value (actual allocator sizes). */
	if (READ_ONCE(nm_rs_live))
		nm_rs_param_get(nm_param_id(kp), &v);
	return sysfs_emit(buf, "%d\n", v);
}

static const struct kernel_param_ops nm_param_ops_rw = {
	.set = nm_param_set_rw,
	.get = nm_param_get,
};
static const struct kernel_param_ops nm_param_ops_cur = {
	.set = nm_param_set_cur,
	.get = nm_param_get,
};
/* RO parameters reuse the RW setter: sysfs mode 0444 leaves only insmod. */
#define NM_PARAM_OPS_RW nm_param_ops_rw
#define NM_PARAM_OPS_RO nm_param_ops_rw
#define NM_PARAM_OPS_CUR nm_param_ops_cur
#define NM_PARAM_MODE_RW 0644
#define NM_PARAM_MODE_RO 0444
#define NM_PARAM_MODE_CUR 0444

#define NM_PARAM_DECLARE(name, def, kind)                                   \
	module_param_cb(name, &NM_PARAM_OPS_##kind,                         \
			&nm_param_vals[NM_PARAM_##name], NM_PARAM_MODE_##kind); \
	MODULE_PARM_DESC(name, "netmap " #name " (default " #def ")");
NM_PARAMS(NM_PARAM_DECLARE)

/* ------------------------------------------------------------------------
 * /dev/netmap file operations.  file->private_data holds the Rust per-file
 * state ("priv") from nm_rs_open() until nm_rs_release().
 * ------------------------------------------------------------------------ */
static int nm_fop_open(struct inode *inode, struct file *file)
{
	void *priv = NULL;
	int err;

	err = nm_rs_open(&priv);
	if (err)
		return err;
	file->private_data = priv;
	return 0;
}

static int nm_fop_release(struct inode *inode, struct file *file)
{
	nm_rs_release(file->private_data);
	file->private_data = NULL;
	return 0;
}

static long nm_fop_ioctl(struct file *file, unsigned int cmd,
			 unsigned long arg)
{
	return nm_rs_ioctl(file->private_data, cmd, arg);
}

#ifdef CONFIG_COMPAT
/*
 * Like the reference: 32-bit callers get the same handler with the pointer
 * converted, no structure translation.
 */
static long nm_fop_compat_ioctl(struct file *file, unsigned int cmd,
				unsigned long arg)
{
	return nm_rs_ioctl(file->private_data, cmd,
			   (unsigned long)compat_ptr(arg));
}
#endif

static __poll_t nm_fop_poll(struct file *file, poll_table *pt)
{
	unsigned int events = (__force unsigned int)poll_requested_events(pt);

	return (__force __poll_t)nm_rs_poll(file->private_data, events, file,
					    pt);
}

/* Called back by Rust (from inside nm_rs_poll) once per wait queue. */
void nm_glue_poll_wait(void *file, void *wq, void *pt)
{
	poll_wait(file, wq, pt);
}

/*
 * Lazy mapping: every page of the region is resolved on first touch.  Rust
 * returns the kernel address of the page at a region offset (NULL if the
 * offset is outside the file's region); the page comes either from the page
 * allocator (alloc_pages_exact: order-0 pages with their own refcount) or
 * from vmalloc, see nm_glue_cluster_alloc().
 */
static vm_fault_t nm_vm_fault(struct vm_fault *vmf)
{
	struct file *file = vmf->vma->vm_file;
	struct page *page;
	void *kva;

	/* vmf->pgoff already includes vma->vm_pgoff. */
	kva = nm_rs_mmap_page(file->private_data, (u64)vmf->pgoff << PAGE_SHIFT);
	if (!kva)
		return VM_FAULT_SIGBUS;
	page = is_vmalloc_addr(kva) ? vmalloc_to_page(kva) : virt_to_page(kva);
	if (!page)
		return VM_FAULT_SIGBUS;
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct nm_vm_ops = {
	.fault = nm_vm_fault,
};

static int nm_fop_mmap(struct file *file, struct vm_area_struct *vma)
{
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 len = vma->vm_end - vma->vm_start;
	int err;

	err = nm_rs_mmap_check(file->private_data, off, len);
	if (err)
		return err;
	/*
	 * The vma holds a reference on the file, so the priv (and the region it
	 * is bound to) outlives the mapping; nm_vm_fault finds it through
	 * vm_file.  The region cannot grow: forbid mremap expansion.
	 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
#else
	vma->vm_flags |= VM_DONTEXPAND | VM_DONTDUMP;
#endif
	vma->vm_ops = &nm_vm_ops;
	return 0;
}

static const struct file_operations nm_fops = {
	.owner = THIS_MODULE,
	.open = nm_fop_open,
	.release = nm_fop_release,
	.unlocked_ioctl = nm_fop_ioctl,
#ifdef CONFIG_COMPAT
	.compat_ioctl = nm_fop_compat_ioctl,
#endif
	.mmap = nm_fop_mmap,
	.poll = nm_fop_poll,
	.llseek = noop_llseek,
};

static struct miscdevice nm_miscdev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "netmap",
	.fops = &nm_fops,
	.mode = 0600,
};

/* ------------------------------------------------------------------------
 * Emulated ("generic") adapter for Linux net devices (spec 10.3, 6.5).
 *
 * Rust (rust/src/netif.rs) owns the netmap side; this part owns the
 * device side of one binding, a `struct nm_gna`:
 *
 *   - lookup: the device by name in the caller's network namespace, held
 *     (dev_hold) from lookup until the Rust object is dropped or the device
 *     is unregistered, whichever comes first;
 *   - register(on): an rx_handler that copies every received frame into a
 *     hardware RX ring (nm_rs_netif_rx) and consumes the skb, and a copy of
 *     dev->netdev_ops whose ndo_start_xmit diverts what the host stack
 *     transmits into the host RX ring; register(off) undoes both;
 *   - host RX ring: the xmit hook only queues the host stack's skbs
 *     (host_q); a tasklet pushes them into the ring.  The hook runs with
 *     the device's TX queue lock held, and what netmap does with a frame
 *     (a VALE switch forwarding it inline, say) may transmit on this very
 *     device: dev_queue_xmit under its own txq lock deadlocks, or drops
 *     with "Dead loop" on noqueue devices;
 *   - transmit: skbs marked NM_PRIO_TX go through the original
 *     ndo_start_xmit, with a destructor counting them in flight until the
 *     device is done with them (TX completion, struct nm_txc below);
 *     host_inject: skbs marked NM_PRIO_RX are passed to the stack by the
 *     rx_handler;
 *   - NETDEV_UNREGISTER: the hooks are removed and the reference dropped
 *     at once (under rtnl, so `ip link del` never waits for netmap); Rust
 *     learns that the device is gone from a work item (nm_rs_netif_gone),
 *     because the core takes its global lock before rtnl (register).
 *
 * Lock order: core global lock -> rtnl.  The notifier (rtnl held) never
 * calls into Rust.  `dev` is RCU-protected for the data path (transmit,
 * inject); `ctx` (the Rust adapter) is set before the hooks are installed
 * and cleared only after they are removed, synchronize_net() returned,
 * the host RX tasklet was killed and its queue purged (nm_gna_unhook).
 * ------------------------------------------------------------------------ */

static gfp_t nm_gfp(void);

/* skb->priority values marking netmap's own skbs (cf. the reference's
 * NM_MAGIC_PRIORITY_TX/RX). */
#define NM_PRIO_TX 0x6e6d7478u	/* "nmtx": from a netmap TX ring */
#define NM_PRIO_RX 0x6e6d7278u	/* "nmrx": from the host TX ring */
#define NM_GNA_HEADROOM 128
/* Host-stack frames one tasklet run pushes before it yields. */
#define NM_GNA_HOST_BUDGET 64

/*
 * TX completion (spec 6.5: "hwtail advances as slots complete").  Every
 * skb nm_glue_gna_xmit hands to the device carries a destructor
 * (nm_txc_destructor) and, in skb_shinfo()->destructor_arg, the in-flight
 * counter of its TX ring; Rust reads the counter in txsync
 * (nm_glue_gna_tx_inflight) and keeps that many slots kernel-owned.  The
 * destructor runs when the device frees the skb after sending it, or
 * orphans it (veth and tun do so in their xmit: their frames complete at
 * once), or when it is dropped anywhere on the way.
 *
 * Lifetime: an skb can outlive its binding, its nm_gna, the Rust adapter
 * and, unless we wait, the module.  Hence:
 *   - the counters live in a refcounted block (struct nm_txc): one
 *     reference for the nm_gna, one per skb in flight; the last put frees;
 *   - the destructor wakes the TX ring's waiters through the Rust adapter
 *     `ctx` only under rcu_read_lock, and only while the block's ctx is
 *     set: nm_gna_unhook clears it before its synchronize_net(), and Rust
 *     keeps the adapter until unhook returned;
 *   - module text: nm_txc_blocks counts the blocks alive; every skb with
 *     our destructor holds a block, so once module exit has seen the count
 *     at 0 no such skb exists any more; it then runs synchronize_rcu().
 *     The destructor's whole body, the final put (free and decrement)
 *     included, is one RCU read-side section, so after that grace period
 *     no destructor is inside it any more; what remains is the
 *     function's return, the same window as for any callback a module
 *     gives the kernel, which the module loader's own grace period before
 *     freeing module memory covers.
 * The destructor may run in any context (hard irq included: some drivers
 * orphan skbs with interrupts off): it only does atomics, kfree and
 * wake-ups (irq-safe wait queue locks, also inside Rust's notify).
 */
struct nm_txc;

struct nm_txc_ring {
	atomic_t inflight;		/* skbs of this TX ring not completed */
	u32 ring;
	struct nm_txc *c;
};

struct nm_txc {
	struct kref ref;		/* the nm_gna + one per skb in flight */
	void __rcu *ctx;		/* Rust adapter while hooked */
	u32 nrings;
	struct nm_txc_ring ring[];
};

static atomic_t nm_txc_blocks = ATOMIC_INIT(0);

/*
 * Waiters are woken when the ring's count reaches a multiple of this (0
 * included): one wake-up per batch of completions, and none is lost (a
 * sleeper saw a count > 0, which must cross such a value on its way to 0).
 */
#define NM_TXC_WAKE_BATCH 32

struct nm_gna {
	struct list_head list;		/* nm_gna_list, under rtnl */
	struct net_device *dev;		/* RCU; NULL once detached */
	void *ctx;			/* Rust adapter while hooked */
	bool rx_hooked;
	bool tx_hooked;
	const struct net_device_ops *orig_ops;
	struct net_device_ops ops;	/* dev->netdev_ops while tx_hooked */
	struct timer_list tx_timer;	/* retry after a full qdisc */
	struct sk_buff_head host_q;	/* host stack -> host RX ring */
	u32 host_q_limit;		/* more queued skbs are dropped */
	struct tasklet_struct host_task; /* drains host_q */
	struct tasklet_struct rx_task;	/* wakes readers after an RX batch */
	struct nm_txc *txc;		/* TX completion counters */
	char name[IFNAMSIZ];
};

/* What Rust needs to size the port (mirrored in rust/src/ffi.rs). */
struct nm_gna_info;
static void nm_gna_ring_sizes(struct net_device *dev,
			      struct nm_gna_info *info);

struct nm_gna_info {
	u32 rx_rings;
	u32 tx_rings;
	u32 rx_slots;
	u32 tx_slots;
	u32 mtu;
	/* The device's netmap-aware driver (struct netmap_native), or NULL. */
	void *native;
	u32 native_rings[2];	/* RX, TX */
	u32 native_descs[2];
};

/* ------------------------------------------------------------------------
 * Native (netmap-aware) drivers: the hooks exported to them
 * (netmap_native.h, core/src/native.rs).
 *
 * A driver attaches a struct netmap_native per device. The list is
 * protected by nm_native_mutex (lookup takes it under rtnl: lock order
 * rtnl -> nm_native_mutex). `ctx` is the Rust adapter while the generic
 * side of the port is hooked (set and cleared by Rust around its
 * register), read under RCU by netmap_native_irq().
 */
struct netmap_native {
	struct list_head list;
	struct net_device *dev;
	const struct netmap_native_ops *ops;
	void *drv;
	void __rcu *ctx;
	char name[IFNAMSIZ];
};

static LIST_HEAD(nm_native_list);
static DEFINE_MUTEX(nm_native_mutex);

struct netmap_native *netmap_native_attach(struct net_device *dev,
					   const struct netmap_native_ops *ops,
					   void *drv)
{
	struct netmap_native *nn;

	if (!ops || !ops->rx_rings || !ops->tx_rings || ops->rx_descs < 3 ||
	    ops->tx_descs < 3)
		return NULL;
	nn = kzalloc(sizeof(*nn), GFP_KERNEL);
	if (!nn)
		return NULL;
	nn->dev = dev;
	nn->ops = ops;
	nn->drv = drv;
	strscpy(nn->name, dev->name, sizeof(nn->name));
	mutex_lock(&nm_native_mutex);
	list_add(&nn->list, &nm_native_list);
	mutex_unlock(&nm_native_mutex);
	pr_info("netmap: %s: native mode available (%u/%u rings, %u/%u slots)\n",
		dev->name, ops->rx_rings, ops->tx_rings, ops->rx_descs,
		ops->tx_descs);
	return nn;
}
EXPORT_SYMBOL_GPL(netmap_native_attach);

void netmap_native_detach(struct netmap_native *nn)
{
	if (!nn)
		return;
	mutex_lock(&nm_native_mutex);
	list_del(&nn->list);
	mutex_unlock(&nm_native_mutex);
	/*
	 * The core stops the port (leaving native mode through ops->reg, then
	 * the generic hooks, which clears ctx) before this returns: nobody
	 * calls the driver or uses nn afterwards.
	 */
	nm_rs_netif_gone(nn->dev->name, strnlen(nn->dev->name, IFNAMSIZ));
	RCU_INIT_POINTER(nn->ctx, NULL);
	synchronize_rcu();
	kfree(nn);
}
EXPORT_SYMBOL_GPL(netmap_native_detach);

void netmap_native_irq(struct netmap_native *nn, bool tx, unsigned int ring)
{
	void *ctx;

	rcu_read_lock();
	ctx = rcu_dereference(nn->ctx);
	if (ctx)
		nm_rs_native_irq(ctx, tx, ring);
	rcu_read_unlock();
}
EXPORT_SYMBOL_GPL(netmap_native_irq);

bool netmap_native_reset(struct netmap_native *nn, bool tx, unsigned int ring,
			 unsigned int first)
{
	void *ctx;
	bool r = false;

	rcu_read_lock();
	ctx = rcu_dereference(nn->ctx);
	if (ctx)
		r = nm_rs_native_reset(ctx, tx, ring, first);
	rcu_read_unlock();
	return r;
}
EXPORT_SYMBOL_GPL(netmap_native_reset);

/* The native driver of dev, if attached (rtnl held). */
static struct netmap_native *nm_native_find(struct net_device *dev)
{
	struct netmap_native *nn, *found = NULL;

	mutex_lock(&nm_native_mutex);
	list_for_each_entry(nn, &nm_native_list, list) {
		if (nn->dev == dev) {
			found = nn;
			break;
		}
	}
	mutex_unlock(&nm_native_mutex);
	return found;
}

void nm_glue_native_set_ctx(void *p, void *ctx)
{
	struct netmap_native *nn = p;

	rcu_assign_pointer(nn->ctx, ctx);
	if (!ctx)
		synchronize_rcu();
}

int nm_glue_native_reg(void *p, bool on)
{
	struct netmap_native *nn = p;

	return nn->ops->reg(nn->drv, on);
}

bool nm_glue_native_post(void *p, bool tx, u32 ring, u32 desc, void *addr,
			 u32 len, bool reload)
{
	struct netmap_native *nn = p;

	if (tx)
		return nn->ops->tx_post(nn->drv, ring, desc, addr, len, reload);
	return nn->ops->rx_post(nn->drv, ring, desc, addr, len, reload);
}

void nm_glue_native_kick(void *p, bool tx, u32 ring)
{
	struct netmap_native *nn = p;

	if (tx)
		nn->ops->tx_kick(nn->drv, ring);
	else
		nn->ops->rx_kick(nn->drv, ring);
}

u32 nm_glue_native_tx_reclaim(void *p, u32 ring)
{
	struct netmap_native *nn = p;

	return nn->ops->tx_reclaim(nn->drv, ring);
}

bool nm_glue_native_rx_poll(void *p, u32 ring, u32 *desc, u32 *len)
{
	struct netmap_native *nn = p;

	return nn->ops->rx_poll(nn->drv, ring, desc, len);
}

bool nm_glue_native_intr(void *p, bool tx, u32 ring, bool on)
{
	struct netmap_native *nn = p;

	return nn->ops->intr(nn->drv, tx, ring, on);
}

static LIST_HEAD(nm_gna_list);
static struct workqueue_struct *nm_wq;

struct nm_gone_work {
	struct work_struct work;
	size_t len;
	char name[IFNAMSIZ];
};

/* Frames the device hands us: into a hardware RX ring. */
static rx_handler_result_t nm_gna_rx_handler(struct sk_buff **pskb)
{
	struct sk_buff *skb = *pskb;
	struct net_device *dev = skb->dev;
	struct nm_gna *gna;
	unsigned int q;

	if (skb->priority == NM_PRIO_RX) {
		/* Injected from the host TX ring: for the stack. */
		skb->priority = 0;
		return RX_HANDLER_PASS;
	}
	gna = rcu_dereference(dev->rx_handler_data);
	if (!gna || !READ_ONCE(gna->ctx))
		return RX_HANDLER_PASS;
	q = skb_rx_queue_recorded(skb) ? skb_get_rx_queue(skb) : 0;
	skb = skb_share_check(skb, GFP_ATOMIC);
	if (!skb)
		goto dropped;
	if (!skb_mac_header_was_set(skb))
		goto drop;
	/* The whole frame from the MAC header, VLAN tag back inline. */
	skb_push(skb, skb->data - skb_mac_header(skb));
	if (skb_vlan_tag_present(skb)) {
		skb = __vlan_hwaccel_push_inside(skb);
		if (!skb)
			goto dropped;
	}
	if (skb_linearize(skb))
		goto drop;
	/* Frames that do not fit are dropped by Rust (ring full, too long). */
	if (!nm_rs_netif_rx(gna->ctx, q, false, skb->data, skb->len))
		goto drop;
	/* Readers are woken once per batch: the tasklet runs after the NAPI
	 * poll that delivered this frame (TASKLET_SOFTIRQ after NET_RX). */
	tasklet_schedule(&gna->rx_task);
	consume_skb(skb);
	return RX_HANDLER_CONSUMED;
drop:
	kfree_skb(skb);
dropped:
	dev_core_stats_rx_dropped_inc(dev);
	return RX_HANDLER_CONSUMED;
}

/*
 * ndo_start_xmit while in netmap mode: netmap's own frames go to the
 * driver, the host stack's frames to the host RX ring.
 */
static netdev_tx_t nm_gna_start_xmit(struct sk_buff *skb,
				     struct net_device *dev)
{
	const struct net_device_ops *ops = READ_ONCE(dev->netdev_ops);
	struct nm_gna *gna;

	/* Restored meanwhile (we run under rcu_read_lock_bh): the driver. */
	if (ops->ndo_start_xmit != nm_gna_start_xmit)
		return ops->ndo_start_xmit(skb, dev);
	gna = container_of(ops, struct nm_gna, ops);
	if (skb->priority == NM_PRIO_TX)
		return gna->orig_ops->ndo_start_xmit(skb, dev);
	/* Offloads cannot be expressed in a slot (spec 6.5): drop GSO. */
	if (skb_is_gso(skb))
		goto drop;
	if (skb_vlan_tag_present(skb)) {
		skb = __vlan_hwaccel_push_inside(skb);
		if (!skb)
			return NETDEV_TX_OK;
	}
	if (skb->ip_summed == CHECKSUM_PARTIAL && skb_checksum_help(skb))
		goto drop;
	if (skb_linearize(skb))
		goto drop;
	/*
	 * Not into netmap from here (we hold the device's TX queue lock, see
	 * the top of this section): the tasklet pushes it into the ring.  The
	 * length check races with the tasklet, harmlessly: the bound is soft.
	 */
	if (skb_queue_len_lockless(&gna->host_q) >= gna->host_q_limit)
		goto drop;
	skb_queue_tail(&gna->host_q, skb);
	tasklet_schedule(&gna->host_task);
	return NETDEV_TX_OK;
drop:
	dev_core_stats_tx_dropped_inc(dev);
	dev_kfree_skb_any(skb);
	return NETDEV_TX_OK;
}

/*
 * Host RX tasklet: the skbs the xmit hook queued go into the host RX ring
 * `nrings + queue % nhost` (Rust picks it); full ring or no room: dropped,
 * counted in tx_dropped like in the hook.  Softirq context, no device
 * lock held: whatever netmap does with the frame may transmit on any
 * device, this one included.  Runs only between register(on) and
 * nm_gna_unhook (which kills it), so ctx is the live adapter.
 */
static void nm_gna_host_task(struct tasklet_struct *t)
{
	struct nm_gna *gna = from_tasklet(gna, t, host_task);
	void *ctx = READ_ONCE(gna->ctx);
	struct sk_buff *skb;
	int n;

	for (n = 0; n < NM_GNA_HOST_BUDGET; n++) {
		skb = skb_dequeue(&gna->host_q);
		if (!skb)
			break;
		if (ctx && nm_rs_netif_rx(ctx, skb_get_queue_mapping(skb), true,
					  skb->data, skb->len)) {
			consume_skb(skb);
		} else {
			dev_core_stats_tx_dropped_inc(skb->dev);
			kfree_skb(skb);
		}
	}
	if (ctx)
		nm_rs_netif_rx_flush(ctx);
	/* More: let other softirq work run first. */
	if (!skb_queue_empty_lockless(&gna->host_q))
		tasklet_schedule(t);
}

/* The end of a batch of received frames: wake readers / forward. */
static void nm_gna_rx_task(struct tasklet_struct *t)
{
	struct nm_gna *gna = from_tasklet(gna, t, rx_task);
	void *ctx = READ_ONCE(gna->ctx);

	if (ctx)
		nm_rs_netif_rx_flush(ctx);
}

/* Multiqueue devices: netmap's frames use the queue of their TX ring. */
static u16 nm_gna_select_queue(struct net_device *dev, struct sk_buff *skb,
			       struct net_device *sb_dev)
{
	const struct net_device_ops *ops = READ_ONCE(dev->netdev_ops);
	struct nm_gna *gna;

	if (skb->priority == NM_PRIO_TX)
		return skb_get_queue_mapping(skb);
	if (ops->ndo_select_queue == nm_gna_select_queue) {
		gna = container_of(ops, struct nm_gna, ops);
		if (gna->orig_ops->ndo_select_queue)
			return gna->orig_ops->ndo_select_queue(dev, skb, sb_dev);
	} else if (ops->ndo_select_queue) {
		return ops->ndo_select_queue(dev, skb, sb_dev);
	}
	return netdev_pick_tx(dev, skb, sb_dev);
}

/* Remove the hooks (rtnl held); afterwards neither hook runs any more. */
static void nm_gna_unhook(struct nm_gna *gna, struct net_device *dev)
{
	if (!gna->rx_hooked && !gna->tx_hooked)
		return;
	if (gna->tx_hooked) {
		WRITE_ONCE(dev->netdev_ops, gna->orig_ops);
		gna->tx_hooked = false;
	}
	if (gna->rx_hooked) {
		netdev_rx_handler_unregister(dev);
		gna->rx_hooked = false;
	}
	/* TX completions stop waking the adapter's rings. */
	RCU_INIT_POINTER(gna->txc->ctx, NULL);
	/*
	 * xmit runs under rcu_read_lock_bh, rx handlers and TX destructors
	 * under RCU too.
	 */
	synchronize_net();
	/*
	 * No hook runs any more, so nothing schedules the host RX tasklet:
	 * wait for a scheduled or running one (a run that reschedules itself
	 * meanwhile is not run again), then drop what it left queued (their
	 * skb->dev is still registered: we are called before unregistering
	 * goes on, or with our device reference).
	 */
	tasklet_kill(&gna->host_task);
	skb_queue_purge(&gna->host_q);
	/* Likewise for the RX batch tasklet (only the rx_handler schedules it). */
	tasklet_kill(&gna->rx_task);
	WRITE_ONCE(gna->ctx, NULL);
	/* A retry timer that read the old ctx has finished after this. */
	del_timer_sync(&gna->tx_timer);
}

/* Unhook and drop the device reference (rtnl held). */
static void nm_gna_detach(struct nm_gna *gna)
{
	struct net_device *dev = rtnl_dereference(gna->dev);

	if (!dev)
		return;
	nm_gna_unhook(gna, dev);
	RCU_INIT_POINTER(gna->dev, NULL);
	synchronize_net();
	dev_put(dev);
}

/*
 * The qdisc was full (see nm_glue_gna_xmit): wake the TX rings' waiters so
 * that poll() runs txsync again and retries the pending slots.
 */
static void nm_gna_tx_timer(struct timer_list *t)
{
	struct nm_gna *gna = from_timer(gna, t, tx_timer);
	void *ctx = READ_ONCE(gna->ctx);

	if (ctx)
		nm_rs_netif_tx_wake(ctx);
}

static void nm_txc_free(struct kref *ref)
{
	kfree(container_of(ref, struct nm_txc, ref));
	if (atomic_dec_and_test(&nm_txc_blocks))
		wake_up_var(&nm_txc_blocks);
}

/* An skb of a TX ring is done: see "TX completion" above. */
static void nm_txc_destructor(struct sk_buff *skb)
{
	struct nm_txc_ring *r = skb_shinfo(skb)->destructor_arg;
	struct nm_txc *c = r->c;
	void *ctx;

	rcu_read_lock();
	if (!(atomic_dec_return(&r->inflight) & (NM_TXC_WAKE_BATCH - 1))) {
		ctx = rcu_dereference(c->ctx);
		if (ctx)
			nm_rs_netif_tx_done(ctx, r->ring);
	}
	kref_put(&c->ref, nm_txc_free);
	rcu_read_unlock();
}

/* Module exit: no destructor of ours runs or will run after this. */
static void nm_txc_exit(void)
{
	while (!wait_var_event_timeout(&nm_txc_blocks,
				       !atomic_read(&nm_txc_blocks), 10 * HZ))
		pr_warn("netmap: waiting for transmitted frames of %d devices to complete\n",
			atomic_read(&nm_txc_blocks));
	synchronize_rcu();
}

/*
 * Look up `name` in the caller's namespace; returns a new nm_gna holding
 * the device, or NULL (no such Ethernet device, or no memory).
 */
void *nm_glue_gna_lookup(const char *name, size_t len, struct nm_gna_info *info)
{
	struct net_device *dev;
	struct nm_gna *gna;
	int slots = READ_ONCE(nm_param_vals[NM_PARAM_generic_ringsize]);
	u32 q;

	if (!len || len >= IFNAMSIZ || memchr(name, 0, len))
		return NULL;
	gna = kzalloc(sizeof(*gna), GFP_KERNEL);
	if (!gna)
		return NULL;
	memcpy(gna->name, name, len);
	timer_setup(&gna->tx_timer, nm_gna_tx_timer, 0);
	skb_queue_head_init(&gna->host_q);
	tasklet_setup(&gna->host_task, nm_gna_host_task);
	tasklet_setup(&gna->rx_task, nm_gna_rx_task);
	rtnl_lock();
	dev = __dev_get_by_name(current->nsproxy->net_ns, gna->name);
	if (!dev || dev->reg_state != NETREG_REGISTERED ||
	    dev->type != ARPHRD_ETHER || !dev->netdev_ops->ndo_start_xmit) {
		rtnl_unlock();
		kfree(gna);
		return NULL;
	}
	info->rx_rings = max(dev->real_num_rx_queues, 1u);
	info->tx_rings = max(dev->real_num_tx_queues, 1u);
	gna->txc = kzalloc(struct_size(gna->txc, ring, info->tx_rings),
			   GFP_KERNEL);
	if (!gna->txc) {
		rtnl_unlock();
		kfree(gna);
		return NULL;
	}
	kref_init(&gna->txc->ref);
	atomic_inc(&nm_txc_blocks);
	gna->txc->nrings = info->tx_rings;
	for (q = 0; q < info->tx_rings; q++) {
		gna->txc->ring[q].ring = q;
		gna->txc->ring[q].c = gna->txc;
	}
	dev_hold(dev);
	RCU_INIT_POINTER(gna->dev, dev);
	list_add(&gna->list, &nm_gna_list);
	info->rx_slots = info->tx_slots = slots >= 3 ? slots : 1024;
	nm_gna_ring_sizes(dev, info);
	info->mtu = dev->mtu;
	/*
	 * Module parameter admode (spec 12): 0 native if the driver is
	 * netmap-aware, 1 native only, 2 emulated only.
	 */
	{
		int admode = READ_ONCE(nm_param_vals[NM_PARAM_admode]);
		struct netmap_native *nn = admode == 2 ? NULL :
					   nm_native_find(dev);

		if (!nn && admode == 1) {
			rtnl_unlock();
			nm_glue_gna_free(gna);
			return NULL;
		}
		info->native = nn;
		if (nn) {
			info->native_rings[0] = nn->ops->rx_rings;
			info->native_rings[1] = nn->ops->tx_rings;
			info->native_descs[0] = nn->ops->rx_descs;
			info->native_descs[1] = nn->ops->tx_descs;
		}
	}
	/* About one host RX ring's worth (host rings have rx_slots too). */
	gna->host_q_limit = info->rx_slots;
	rtnl_unlock();
	return gna;
}

/*
 * Ring sizes the driver reports through ethtool (spec 10.3): a size of at
 * least 3 replaces generic_ringsize for that direction (rtnl held).
 */
static void nm_gna_ring_sizes(struct net_device *dev, struct nm_gna_info *info)
{
	struct ethtool_ringparam rp = {};
	struct kernel_ethtool_ringparam krp = {};

	if (!dev->ethtool_ops || !dev->ethtool_ops->get_ringparam)
		return;
	dev->ethtool_ops->get_ringparam(dev, &rp, &krp, NULL);
	if (rp.rx_pending >= 3)
		info->rx_slots = rp.rx_pending;
	if (rp.tx_pending >= 3)
		info->tx_slots = rp.tx_pending;
}

/* The Rust object is gone: detach and free. */
void nm_glue_gna_free(void *p)
{
	struct nm_gna *gna = p;

	rtnl_lock();
	nm_gna_detach(gna);
	list_del(&gna->list);
	rtnl_unlock();
	/* Detached: nothing arms the timer or schedules the tasklet. */
	del_timer_sync(&gna->tx_timer);
	tasklet_kill(&gna->host_task);
	tasklet_kill(&gna->rx_task);
	skb_queue_purge(&gna->host_q);
	/* Skbs still in flight keep the counters until they complete. */
	kref_put(&gna->txc->ref, nm_txc_free);
	kfree(gna);
}

/*
 * Enter (on) or leave netmap mode.  `ctx` is what the hooks pass to
 * nm_rs_netif_rx.  Idempotent; leaving a detached device is a no-op.
 */
int nm_glue_gna_register(void *p, void *ctx, bool on)
{
	struct nm_gna *gna = p;
	struct net_device *dev;
	int err = 0;

	rtnl_lock();
	dev = rtnl_dereference(gna->dev);
	if (!on) {
		if (dev)
			nm_gna_unhook(gna, dev);
		goto out;
	}
	if (!dev) {
		err = -ENXIO;
		goto out;
	}
	if (gna->rx_hooked)
		goto out;
	WRITE_ONCE(gna->ctx, ctx);
	err = netdev_rx_handler_register(dev, nm_gna_rx_handler, gna);
	if (err) {
		WRITE_ONCE(gna->ctx, NULL);
		goto out;
	}
	gna->rx_hooked = true;
	gna->orig_ops = dev->netdev_ops;
	gna->ops = *dev->netdev_ops;
	gna->ops.ndo_start_xmit = nm_gna_start_xmit;
	gna->ops.ndo_select_queue = nm_gna_select_queue;
	WRITE_ONCE(dev->netdev_ops, &gna->ops);
	gna->tx_hooked = true;
	/* Hooked: TX completions may wake the rings (until unhook). */
	rcu_assign_pointer(gna->txc->ctx, ctx);
out:
	rtnl_unlock();
	return err;
}

/* An skb for a `len`-byte frame; *data is where to copy it. */
void *nm_glue_skb_alloc(size_t len, u8 **data)
{
	struct sk_buff *skb;

	skb = alloc_skb(len + NM_GNA_HEADROOM, nm_gfp() | __GFP_NOWARN);
	if (!skb)
		return NULL;
	skb_reserve(skb, NM_GNA_HEADROOM);
	*data = skb_put(skb, len);
	return skb;
}

/*
 * Transmit `skb` (an Ethernet frame) from TX ring `ring` on TX queue
 * `ring % queues`; consumes it.  Until the skb completes it counts in
 * flight on `ring` (see "TX completion").  0: sent (or dropped for good:
 * device down, too long, driver error); -EAGAIN: the qdisc is full
 * (NET_XMIT_DROP: the skb is freed, so it is no longer in flight), the
 * slot must stay pending and a timer wakes the TX rings a tick later (the
 * ring may have nothing in flight to wake it); -ENXIO: the device is gone.
 */
int nm_glue_gna_xmit(void *p, void *s, unsigned int ring)
{
	struct nm_gna *gna = p;
	struct sk_buff *skb = s;
	struct net_device *dev;
	int rc;

	rcu_read_lock_bh();
	dev = rcu_dereference_bh(gna->dev);
	if (!dev || skb->len > dev->mtu + dev->hard_header_len + VLAN_HLEN) {
		rcu_read_unlock_bh();
		kfree_skb(skb);
		return dev ? 0 : -ENXIO;
	}
	skb->dev = dev;
	skb_reset_mac_header(skb);
	skb->protocol = eth_hdr(skb)->h_proto;
	skb->priority = NM_PRIO_TX;
	skb_set_queue_mapping(skb, ring % dev->real_num_tx_queues);
	/* In flight before the device sees it: it may complete at once. */
	if (likely(ring < gna->txc->nrings)) {
		struct nm_txc_ring *r = &gna->txc->ring[ring];

		kref_get(&gna->txc->ref);
		atomic_inc(&r->inflight);
		skb_shinfo(skb)->destructor_arg = r;
		skb->destructor = nm_txc_destructor;
	}
	rc = dev_queue_xmit(skb);
	if (rc == NET_XMIT_DROP && !timer_pending(&gna->tx_timer))
		mod_timer(&gna->tx_timer, jiffies + 1);
	rcu_read_unlock_bh();
	return rc == NET_XMIT_DROP ? -EAGAIN : 0;
}

/* Frames from TX ring `ring` handed to the device and not completed yet. */
u32 nm_glue_gna_tx_inflight(void *p, u32 ring)
{
	struct nm_gna *gna = p;

	if (ring >= gna->txc->nrings)
		return 0;
	return max(atomic_read(&gna->txc->ring[ring].inflight), 0);
}

/* Give `skb` to the host stack as if `dev` had received it; consumes it. */
int nm_glue_gna_inject(void *p, void *s)
{
	struct nm_gna *gna = p;
	struct sk_buff *skb = s;
	struct net_device *dev;

	rcu_read_lock();
	dev = rcu_dereference(gna->dev);
	if (!dev) {
		rcu_read_unlock();
		kfree_skb(skb);
		return -ENXIO;
	}
	skb->protocol = eth_type_trans(skb, dev);
	skb->priority = NM_PRIO_RX;
	netif_rx(skb);
	rcu_read_unlock();
	return 0;
}

static void nm_gone_work_fn(struct work_struct *w)
{
	struct nm_gone_work *gw = container_of(w, struct nm_gone_work, work);

	if (READ_ONCE(nm_rs_live))
		nm_rs_netif_gone(gw->name, gw->len);
	kfree(gw);
}

static void nm_pif_forget(struct net_device *dev);

static int nm_netdev_event(struct notifier_block *nb, unsigned long event,
			   void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	struct nm_gone_work *gw;
	struct nm_gna *gna;

	if (event != NETDEV_UNREGISTER)
		return NOTIFY_DONE;
	nm_pif_forget(dev);
	list_for_each_entry(gna, &nm_gna_list, list) {
		if (rtnl_dereference(gna->dev) != dev)
			continue;
		nm_gna_detach(gna);
		gw = kzalloc(sizeof(*gw), GFP_KERNEL);
		if (!gw) {
			pr_warn("netmap: %s gone, no memory to tell the port\n",
				gna->name);
			continue;
		}
		INIT_WORK(&gw->work, nm_gone_work_fn);
		gw->len = strnlen(gna->name, IFNAMSIZ);
		memcpy(gw->name, gna->name, gw->len);
		queue_work(nm_wq, &gw->work);
	}
	return NOTIFY_DONE;
}

static struct notifier_block nm_netdev_nb = {
	.notifier_call = nm_netdev_event,
};

static int nm_gna_init(void)
{
	int err;

	nm_wq = alloc_ordered_workqueue("netmap", 0);
	if (!nm_wq)
		return -ENOMEM;
	err = register_netdevice_notifier(&nm_netdev_nb);
	if (err)
		destroy_workqueue(nm_wq);
	return err;
}

static void nm_gna_exit(void)
{
	/* Replays NETDEV_UNREGISTER for every device: detaches leftovers. */
	unregister_netdevice_notifier(&nm_netdev_nb);
	/* Runs the pending nm_rs_netif_gone calls. */
	destroy_workqueue(nm_wq);
}

/* ------------------------------------------------------------------------
 * Network interfaces of persistent VALE ports (NEWIF/DELIF, spec 8.4).
 *
 * The port itself lives in the core; its interface is a plain Ethernet
 * device (random MAC, MTU 1500) whose transmit drops everything.  The
 * core never hands it to the emulated adapter: it finds its persistent
 * ports by name first.  Created in the caller's network namespace and
 * kept there (NETIF_F_NETNS_LOCAL, or its successor bit).
 *
 * Called from Rust with the core's global lock held; rtnl is taken here
 * (lock order: core global lock -> rtnl).  nm_pif_list is protected by
 * rtnl.  Devices are freed by the kernel after unregistration
 * (needs_free_netdev), also when their namespace goes away: the notifier
 * then drops them from the list, and a later DELIF finds nothing to do.
 * Module exit unregisters the devices still present.
 * ------------------------------------------------------------------------ */
struct nm_pif {
	struct list_head list;		/* nm_pif_list, under rtnl */
	struct net_device *dev;
	char name[IFNAMSIZ];		/* the port's name (survives renames) */
};

static LIST_HEAD(nm_pif_list);

static netdev_tx_t nm_pif_start_xmit(struct sk_buff *skb,
				     struct net_device *dev)
{
	dev->stats.tx_dropped++;
	dev_kfree_skb_any(skb);
	return NETDEV_TX_OK;
}

static const struct net_device_ops nm_pif_ops = {
	.ndo_start_xmit = nm_pif_start_xmit,
	.ndo_set_mac_address = eth_mac_addr,
	.ndo_validate_addr = eth_validate_addr,
};

/* A device of ours is being unregistered (rtnl held): forget it. */
static void nm_pif_forget(struct net_device *dev)
{
	struct nm_pif *pif;

	if (dev->netdev_ops != &nm_pif_ops)
		return;
	pif = netdev_priv(dev);
	/* The notifier replays UNREGISTER when it is removed: not a real one. */
	if (dev->reg_state == NETREG_REGISTERED)
		return;
	list_del_init(&pif->list);
}

/* Create and register the Ethernet device `name`. 0 or -errno. */
int nm_glue_pif_create(const char *name, size_t len)
{
	struct net_device *dev;
	struct nm_pif *pif;
	int err;

	if (!len || len >= IFNAMSIZ || memchr(name, 0, len) ||
	    memchr(name, '%', len))
		return -EINVAL;
	dev = alloc_etherdev(sizeof(*pif));
	if (!dev)
		return -ENOMEM;
	pif = netdev_priv(dev);
	INIT_LIST_HEAD(&pif->list);
	pif->dev = dev;
	memcpy(pif->name, name, len);
	memcpy(dev->name, name, len);
	dev->name[len] = '\0';
	dev->netdev_ops = &nm_pif_ops;
	/*
	 * Kept in its namespace: a feature flag up to 6.11, a bit of its own
	 * from 6.12 (netns_local), renamed netns_immutable in 6.13 and in the
	 * 6.12 stable series from 6.12.114 on.
	 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 114)
	dev->netns_immutable = true;
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
	dev->netns_local = true;
#else
	dev->features |= NETIF_F_NETNS_LOCAL;
#endif
	dev->needs_free_netdev = true;
	eth_hw_addr_random(dev);
	dev_net_set(dev, current->nsproxy->net_ns);
	rtnl_lock();
	err = register_netdevice(dev);
	if (!err)
		list_add(&pif->list, &nm_pif_list);
	rtnl_unlock();
	if (err)
		free_netdev(dev);	/* never registered: not freed by the kernel */
	return err;
}

/* Unregister the device made for port `name` (0 also if already gone). */
int nm_glue_pif_delete(const char *name, size_t len)
{
	struct nm_pif *pif;

	rtnl_lock();
	list_for_each_entry(pif, &nm_pif_list, list) {
		if (strnlen(pif->name, IFNAMSIZ) == len &&
		    !memcmp(pif->name, name, len)) {
			list_del_init(&pif->list);
			unregister_netdevice(pif->dev);
			break;
		}
	}
	/* Waits for the device's references and frees it. */
	rtnl_unlock();
	return 0;
}

/* Whether any interface `name` exists in the caller's namespace. */
bool nm_glue_netdev_exists(const char *name, size_t len)
{
	char buf[IFNAMSIZ];
	bool found;

	if (!len || len >= IFNAMSIZ || memchr(name, 0, len))
		return false;
	memcpy(buf, name, len);
	buf[len] = '\0';
	rcu_read_lock();
	found = dev_get_by_name_rcu(current->nsproxy->net_ns, buf) != NULL;
	rcu_read_unlock();
	return found;
}

/* Module exit: unregister the devices of the ports still present. */
static void nm_pif_exit(void)
{
	struct nm_pif *pif;

	rtnl_lock();
	while (!list_empty(&nm_pif_list)) {
		pif = list_first_entry(&nm_pif_list, struct nm_pif, list);
		list_del_init(&pif->list);
		unregister_netdevice(pif->dev);
	}
	rtnl_unlock();
}

/* ------------------------------------------------------------------------
 * debugfs, text formatted by Rust:
 *   /sys/kernel/debug/netmap/stats  allocator counters and the memory
 *                                   budget as "name value" lines;
 *   /sys/kernel/debug/netmap/pools  the budget and every region with its
 *                                   pools (truncated at 64 KiB).
 * ------------------------------------------------------------------------ */
#define NM_STATS_BUFSZ 4096
#define NM_POOLS_BUFSZ 65536

static int nm_text_show(struct seq_file *m, size_t (*fill)(char *, size_t),
			size_t size)
{
	char *buf = kvzalloc(size, GFP_KERNEL);
	size_t n;

	if (!buf)
		return -ENOMEM;
	n = fill(buf, size);
	seq_write(m, buf, min(n, size));
	kvfree(buf);
	return 0;
}

static int nm_stats_show(struct seq_file *m, void *unused)
{
	return nm_text_show(m, nm_rs_stats, NM_STATS_BUFSZ);
}
DEFINE_SHOW_ATTRIBUTE(nm_stats);

static int nm_pools_show(struct seq_file *m, void *unused)
{
	return nm_text_show(m, nm_rs_pools, NM_POOLS_BUFSZ);
}
DEFINE_SHOW_ATTRIBUTE(nm_pools);

static struct dentry *nm_debugfs_dir;

/* ------------------------------------------------------------------------
 * Module init / exit.
 * ------------------------------------------------------------------------ */
static int __init nm_module_init(void)
{
	int err;

	err = nm_rs_init(nm_param_vals, NM_PARAM_COUNT);
	if (err)
		return err;
	WRITE_ONCE(nm_rs_live, true);

	err = nm_gna_init();
	if (err) {
		WRITE_ONCE(nm_rs_live, false);
		nm_rs_exit();
		return err;
	}
	err = misc_register(&nm_miscdev);
	if (err) {
		nm_gna_exit();
		WRITE_ONCE(nm_rs_live, false);
		nm_rs_exit();
		return err;
	}
	/* debugfs is optional: errors are ignored by design of its API. */
	nm_debugfs_dir = debugfs_create_dir("netmap", NULL);
	debugfs_create_file("stats", 0400, nm_debugfs_dir, NULL,
			    &nm_stats_fops);
	debugfs_create_file("pools", 0400, nm_debugfs_dir, NULL,
			    &nm_pools_fops);
	return 0;
}

static void __exit nm_module_exit(void)
{
	debugfs_remove_recursive(nm_debugfs_dir);
	/* No file can be open here: each open file holds a module reference. */
	misc_deregister(&nm_miscdev);
	/* Interfaces of persistent ports, before the notifier goes. */
	nm_pif_exit();
	/* Pending "device gone" work still calls into Rust: before the fence. */
	nm_gna_exit();
	/*
	 * Parameter callbacks run under kernel_param_lock and sysfs stays up
	 * until after this function: make sure none is inside Rust any more.
	 */
	kernel_param_lock(THIS_MODULE);
	WRITE_ONCE(nm_rs_live, false);
	kernel_param_unlock(THIS_MODULE);
	nm_rs_exit();
	/* Last: skbs still in flight run our destructor (module text). */
	nm_txc_exit();
}

module_init(nm_module_init);
module_exit(nm_module_exit);

/* ------------------------------------------------------------------------
 * Wrappers called from Rust (os/linux/rust/src/ffi.rs).
 * ------------------------------------------------------------------------ */

/* GFP flags for the current context: only sleep where sleeping is allowed. */
static gfp_t nm_gfp(void)
{
#ifdef CONFIG_PREEMPT_COUNT
	/* Spinlocks, bh/irq context and preempt_disable() all show up here. */
	if (preempt_count() || irqs_disabled())
		return GFP_ATOMIC;
#else
	if (irqs_disabled() || in_interrupt())
		return GFP_ATOMIC;
#endif
	return GFP_KERNEL;
}

/* --- memory for Rust's global allocator --------------------------------- */

/*
 * kmalloc aligns every object to ARCH_KMALLOC_MINALIGN and power-of-two
 * sizes to their size; objects above PAGE_SIZE come from the kmalloc-8k
 * cache, the page allocator or vmalloc (kvmalloc's fallback), all at least
 * page aligned.  So for align > ARCH_KMALLOC_MINALIGN only small sizes need
 * rounding up to a power of two >= align.  align is a power of two (Rust's
 * Layout guarantees it); more than a page is not supported.
 *
 * Allocations above NM_BIG_ALLOC (the lookup tables and bitmaps of a
 * region, sized by request parameters) fail rather than invoke the OOM
 * killer (__GFP_RETRY_MAYFAIL, which kvmalloc honours in its vmalloc
 * fallback); the core makes such allocations only through try_reserve and
 * answers ENOMEM.  Smaller ones keep the kernel's default.
 */
#define NM_BIG_ALLOC (32 * 1024)

void *nm_glue_alloc(size_t size, size_t align, bool zero)
{
	gfp_t gfp = nm_gfp() | (zero ? __GFP_ZERO : 0);

	if (align > PAGE_SIZE)
		return NULL;
	if (align > ARCH_KMALLOC_MINALIGN && size <= PAGE_SIZE)
		size = roundup_pow_of_two(max(size, align));
	if (size > NM_BIG_ALLOC)
		gfp |= __GFP_RETRY_MAYFAIL;
	return kvmalloc(size, gfp | __GFP_NOWARN);
}

void nm_glue_free(void *ptr)
{
	kvfree(ptr);
}

/* Only used by Rust for align <= ARCH_KMALLOC_MINALIGN. */
void *nm_glue_realloc(void *ptr, size_t old_size, size_t new_size)
{
	gfp_t gfp = nm_gfp() | __GFP_NOWARN;

	if (!is_vmalloc_addr(ptr) && new_size <= KMALLOC_MAX_SIZE)
		return krealloc(ptr, new_size, gfp);
	/* 6.12 dropped kvrealloc()'s old-size argument. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
	return kvrealloc(ptr, new_size, gfp);
#else
	return kvrealloc(ptr, old_size, new_size, gfp);
#endif
}

/* --- page clusters (netmap_if / ring / buffer pools) -------------------- */

/*
 * `size` is a multiple of PAGE_SIZE (up to ~128 KiB).  alloc_pages_exact
 * gives physically contiguous, page-aligned, zeroed order-0 pages, each
 * with its own refcount, so nm_vm_fault can get_page() any of them.  If the
 * page allocator is too fragmented fall back to vmalloc when we may sleep.
 *
 * A region is built cluster by cluster and torn down at the first failure,
 * so both attempts fail fast instead of invoking the OOM killer: the
 * contiguous one with __GFP_NORETRY (light reclaim only), the vmalloc one
 * with __GFP_RETRY_MAYFAIL (reclaims harder, never kills).  Neither warns.
 */
void *nm_glue_cluster_alloc(size_t size)
{
	gfp_t gfp = nm_gfp() | __GFP_ZERO | __GFP_NOWARN;
	void *p;

	if (!size || size & ~PAGE_MASK)
		return NULL;
	p = alloc_pages_exact(size, gfp | __GFP_NORETRY);
	if (!p && gfpflags_allow_blocking(gfp))
		p = __vmalloc(size, gfp | __GFP_RETRY_MAYFAIL);
	return p;
}

/* Bytes of RAM: the default memory budget is half of it (Rust). */
u64 nm_glue_total_ram(void)
{
	return (u64)totalram_pages() << PAGE_SHIFT;
}

void nm_glue_cluster_free(void *ptr, size_t size)
{
	if (is_vmalloc_addr(ptr))
		vfree(ptr);
	else
		free_pages_exact(ptr, size);
}

/* --- spinlocks (data path; also taken from softirq by NIC adapters) ----- */

void *nm_glue_spin_alloc(void)
{
	spinlock_t *l = kmalloc(sizeof(*l), nm_gfp());

	if (l)
		spin_lock_init(l);
	return l;
}

void nm_glue_spin_lock(void *l)
{
	spin_lock_bh(l);
}

void nm_glue_spin_unlock(void *l)
{
	spin_unlock_bh(l);
}

void nm_glue_spin_free(void *l)
{
	kfree(l);
}

/* --- mutexes (control path, may sleep) ---------------------------------- */

void *nm_glue_mutex_alloc(void)
{
	struct mutex *m = kmalloc(sizeof(*m), nm_gfp());

	if (m)
		mutex_init(m);
	return m;
}

void nm_glue_mutex_lock(void *m)
{
	mutex_lock(m);
}

void nm_glue_mutex_unlock(void *m)
{
	mutex_unlock(m);
}

void nm_glue_mutex_free(void *m)
{
	mutex_destroy(m);
	kfree(m);
}

/* --- wait queues -------------------------------------------------------- */

void *nm_glue_wq_alloc(void)
{
	wait_queue_head_t *wq = kmalloc(sizeof(*wq), nm_gfp());

	if (wq)
		init_waitqueue_head(wq);
	return wq;
}

/*
 * wq_has_sleeper() is a full barrier plus a look at the list: most calls
 * find nobody (the reader is busy, not in poll) and take no lock.  Pollers
 * fence after poll_wait() before they look at the rings (core: poll()).
 */
void nm_glue_wq_wake_all(void *wq)
{
	if (wq_has_sleeper((wait_queue_head_t *)wq))
		wake_up_interruptible_all((wait_queue_head_t *)wq);
}

void nm_glue_wq_free(void *wq)
{
	kfree(wq);
}

/* --- user memory -------------------------------------------------------- */

/* Both return the number of bytes NOT copied (0 = success). */
unsigned long nm_glue_copy_from_user(void *dst, u64 src, unsigned long len)
{
	return copy_from_user(dst, (const void __user *)(uintptr_t)src, len);
}

unsigned long nm_glue_copy_to_user(u64 dst, const void *src, unsigned long len)
{
	return copy_to_user((void __user *)(uintptr_t)dst, src, len);
}

/* --- time --------------------------------------------------------------- */

/* Wall-clock time as struct timeval (like the reference's microtime()). */
void nm_glue_gettimeofday(s64 *sec, s64 *usec)
{
	struct timespec64 ts;

	ktime_get_real_ts64(&ts);
	*sec = ts.tv_sec;
	*usec = ts.tv_nsec / NSEC_PER_USEC;
}

/* Monotonic nanoseconds (for rate limits and timeouts). */
u64 nm_glue_ktime_ns(void)
{
	return ktime_get_ns();
}

/* --- logging / fatal errors --------------------------------------------- */

/* level: 0 error, 1 warning, 2 info, 3 debug. */
void nm_glue_log(int level, const char *msg, size_t len)
{
	int n = (int)min_t(size_t, len, 1024);

	switch (level) {
	case 0:
		pr_err("netmap: %.*s\n", n, msg);
		break;
	case 1:
		pr_warn("netmap: %.*s\n", n, msg);
		break;
	case 2:
		pr_info("netmap: %.*s\n", n, msg);
		break;
	default:
		pr_debug("netmap: %.*s\n", n, msg);
		break;
	}
}

/* Rust panicked: the message has been logged; this is a kernel bug. */
void __noreturn nm_glue_bug(void)
{
	BUG();
}

/* --- kernel threads (Platform::spawn_thread; VALE polling mode) ---------- */

/* Implemented in Rust: one call of the thread's work; true = did something. */
bool nm_rs_thread_run(void *ctx);

/*
 * The loop of every netmap kernel thread.  Busy (work done): yield if
 * someone else wants the CPU, and report a quiescent state to RCU-tasks
 * (a poller that never sleeps would otherwise stall synchronize_rcu_tasks).
 * Idle: sleep one tick, interruptibly, so that kthread_stop's wake-up ends
 * the sleep at once.  The thread only returns when asked to stop, so its
 * task stays valid until kthread_stop.
 */
static int nm_thread_fn(void *ctx)
{
	while (!kthread_should_stop()) {
		if (nm_rs_thread_run(ctx))
			cond_resched_tasks_rcu_qs();
		else
			schedule_timeout_interruptible(1);
	}
	return 0;
}

/*
 * Create and start a thread named `name` (at most TASK_COMM_LEN - 1 bytes
 * are kept) that runs nm_rs_thread_run(ctx) until nm_glue_thread_stop();
 * bound to `cpu` if cpu >= 0 (its memory node preferred), else free to
 * move.  Returns the task with a reference held for the caller, or NULL
 * and *err = -errno (-EINVAL: CPU not online; -ENOMEM, -EINTR from
 * kthread_create).  A CPU that goes offline later breaks the binding (the
 * scheduler moves the thread and logs it), as for any bound kthread.
 */
void *nm_glue_thread_start(const char *name, size_t len, int cpu, void *ctx,
			   int *err)
{
	struct task_struct *t;
	int node = NUMA_NO_NODE;

	if (cpu >= 0) {
		if (cpu >= nr_cpu_ids || !cpu_online(cpu)) {
			*err = -EINVAL;
			return NULL;
		}
		node = cpu_to_node(cpu);
	}
	t = kthread_create_on_node(nm_thread_fn, ctx, node, "%.*s",
				   (int)min_t(size_t, len, TASK_COMM_LEN - 1),
				   name);
	if (IS_ERR(t)) {
		*err = (int)PTR_ERR(t);
		return NULL;
	}
	get_task_struct(t);
	if (cpu >= 0)
		kthread_bind(t, cpu);
	wake_up_process(t);
	return t;
}

/*
 * Stop a thread from nm_glue_thread_start and wait until it has exited
 * (nm_rs_thread_run is not running and will not run again for it), then
 * drop the caller's task reference.  Sleeps; never from the thread itself.
 */
void nm_glue_thread_stop(void *task)
{
	kthread_stop(task);
	put_task_struct(task);
}

unsigned int nm_glue_online_cpus(void)
{
	return num_online_cpus();
}

/* ------------------------------------------------------------------------
 * The sync kernel loop (SYNC_KLOOP_START, netmap-core's kloop.rs) runs in
 * the ioctl of an application thread and sleeps between passes on a
 * "sleeper": a wait queue head and a flag.  Anything may wake it: STOP
 * (nm_glue_sleeper_wake), or a "watch": a wait queue entry with a custom
 * wake function, added to one of netmap's ring wait queues or to the wait
 * queue of an eventfd of the application (the ioeventfd it kicks the loop
 * with), which marks itself fired and wakes the sleeper.  The work is
 * always done by the loop's own thread, never in the wake function.
 * ------------------------------------------------------------------------ */

struct nm_sleeper {
	wait_queue_head_t wq;
	atomic_t woken;
};

void *nm_glue_sleeper_alloc(void)
{
	struct nm_sleeper *s = kmalloc(sizeof(*s), GFP_KERNEL);

	if (s) {
		init_waitqueue_head(&s->wq);
		atomic_set(&s->woken, 0);
	}
	return s;
}

/* Any context. */
void nm_glue_sleeper_wake(void *sp)
{
	struct nm_sleeper *s = sp;

	atomic_set(&s->woken, 1);
	wake_up_all(&s->wq);
}

/*
 * Sleep until woken (a wake-up since the last sleep counts), timeout_ns
 * elapsed, or a signal is pending: 1, 0, -EINTR.  TASK_INTERRUPTIBLE, so a
 * killed process (or one being frozen, stopped, traced) leaves the loop,
 * and an idle loop is neither a hung task nor load.  timeout_ns == 0 only
 * yields the CPU.  Process context, no lock held.
 */
int nm_glue_sleeper_sleep(void *sp, u64 timeout_ns)
{
	struct nm_sleeper *s = sp;
	int ret;

	if (atomic_xchg(&s->woken, 0))
		return 1;
	if (signal_pending(current))
		return -EINTR;
	if (timeout_ns == 0) {
		cond_resched();
		return signal_pending(current) ? -EINTR : 0;
	}
	ret = wait_event_interruptible_hrtimeout(s->wq,
						 atomic_xchg(&s->woken, 0),
						 ns_to_ktime(timeout_ns));
	if (ret == 0)
		return 1;
	return ret == -ETIME ? 0 : -EINTR;
}

/* No watch left on it, nobody sleeping on it. */
void nm_glue_sleeper_free(void *s)
{
	kfree(s);
}

struct nm_watch {
	wait_queue_entry_t wait;
	wait_queue_head_t *wqh;
	struct nm_sleeper *s;
	atomic_t fired;
	/* eventfds: only wake-ups that make it readable (a write) count */
	bool in_only;
};

/* Called with the watched queue's lock held, maybe in hard irq context. */
static int nm_watch_wake(wait_queue_entry_t *wait, unsigned int mode,
			 int sync, void *key)
{
	struct nm_watch *w = container_of(wait, struct nm_watch, wait);

	if (w->in_only && key && !(key_to_poll(key) & EPOLLIN))
		return 0;
	atomic_set(&w->fired, 1);
	nm_glue_sleeper_wake(w->s);
	return 0;
}

static struct nm_watch *nm_watch_alloc(void *sleeper, bool in_only)
{
	struct nm_watch *w = kzalloc(sizeof(*w), GFP_KERNEL);

	if (!w)
		return NULL;
	init_waitqueue_func_entry(&w->wait, nm_watch_wake);
	w->s = sleeper;
	w->in_only = in_only;
	return w;
}

/* Watch one of netmap's wait queues (nm_glue_wq_alloc). NULL: -ENOMEM. */
void *nm_glue_watch_wq(void *sleeper, void *wq)
{
	struct nm_watch *w = nm_watch_alloc(sleeper, false);

	if (w) {
		w->wqh = wq;
		add_wait_queue(w->wqh, &w->wait);
	}
	return w;
}

struct nm_watch_pt {
	poll_table pt;
	struct nm_watch *w;
};

/* poll_wait() of the eventfd's poll method: hook the watch on its queue. */
static void nm_watch_queue_proc(struct file *file, wait_queue_head_t *wqh,
				poll_table *pt)
{
	struct nm_watch_pt *p = container_of(pt, struct nm_watch_pt, pt);

	if (p->w->wqh)
		return;
	p->w->wqh = wqh;
	add_wait_queue(wqh, &p->w->wait);
}

struct nm_efd {
	struct file *file;
	struct eventfd_ctx *ctx;
};

/*
 * Watch an eventfd (nm_glue_eventfd_get), the way the reference's kloop
 * polls its ioeventfds.  NULL with *err = -ENOMEM, or -EINVAL if the file
 * registered no wait queue or reports an error.
 */
void *nm_glue_watch_eventfd(void *sleeper, void *efd, int *err)
{
	struct nm_efd *e = efd;
	struct nm_watch_pt p;
	__poll_t mask;

	p.w = nm_watch_alloc(sleeper, true);
	if (!p.w) {
		*err = -ENOMEM;
		return NULL;
	}
	init_poll_funcptr(&p.pt, nm_watch_queue_proc);
	mask = vfs_poll(e->file, &p.pt);
	if (!p.w->wqh || (mask & EPOLLERR)) {
		if (p.w->wqh)
			remove_wait_queue(p.w->wqh, &p.w->wait);
		kfree(p.w);
		*err = -EINVAL;
		return NULL;
	}
	return p.w;
}

/* 1 if the watched queue was woken since the last call. */
int nm_glue_watch_take_fired(void *wp)
{
	struct nm_watch *w = wp;

	return atomic_xchg(&w->fired, 0);
}

/* Removes the watch (takes the queue's lock: not under a spinlock). */
void nm_glue_watch_free(void *wp)
{
	struct nm_watch *w = wp;

	remove_wait_queue(w->wqh, &w->wait);
	kfree(w);
}

/*
 * The eventfd `fd` of the calling process, with a reference on its file
 * and on its context.  NULL with *err = -EBADF (no such descriptor),
 * -EINVAL (not an eventfd) or -ENOMEM.
 */
void *nm_glue_eventfd_get(int fd, int *err)
{
	struct nm_efd *e;
	struct file *f;
	struct eventfd_ctx *ctx;

	f = eventfd_fget(fd);
	if (IS_ERR(f)) {
		*err = (int)PTR_ERR(f);
		return NULL;
	}
	ctx = eventfd_ctx_fileget(f);
	if (IS_ERR(ctx)) {
		fput(f);
		*err = (int)PTR_ERR(ctx);
		return NULL;
	}
	e = kmalloc(sizeof(*e), GFP_KERNEL);
	if (!e) {
		eventfd_ctx_put(ctx);
		fput(f);
		*err = -ENOMEM;
		return NULL;
	}
	e->file = f;
	e->ctx = ctx;
	return e;
}

/* Any context. */
void nm_glue_eventfd_signal(void *efd)
{
	struct nm_efd *e = efd;

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	eventfd_signal(e->ctx);
#else
	eventfd_signal(e->ctx, 1);
#endif
}

/* No watch left on it.  Process context. */
void nm_glue_eventfd_put(void *efd)
{
	struct nm_efd *e = efd;

	eventfd_ctx_put(e->ctx);
	fput(e->file);
	kfree(e);
}

/* Sleep about `us` microseconds, uninterruptibly (SYNC_KLOOP_STOP). */
void nm_glue_sleep_us(unsigned int us)
{
	fsleep(us);
}

/* ------------------------------------------------------------------------
 * Pinned user memory (the EXTMEM option): the pages of a range of the
 * calling process, pinned long-term and mapped contiguously in the
 * kernel's address space (vmap), so that objects of any size can be laid
 * out over them however the pages are scattered physically (the reference
 * uses the pages' direct-map addresses and drops every object that
 * straddles two pages not physically adjacent: with ordinary 4 KiB pages,
 * almost every ring).  Released (vunmap, unpin, dirty) when the region
 * built over them goes away.
 * ------------------------------------------------------------------------ */

struct nm_upages {
	struct work_struct work;
	void *vaddr;
	unsigned long npages;
	struct page *pages[];
};

/* Pins at most this many pages per pin_user_pages_fast() call. */
#define NM_PIN_BATCH 65536UL

/*
 * Pin `npages` pages at the page-aligned user address `addr`, writable,
 * and map them.  NULL with *err = -EFAULT (not mapped, not writable),
 * -ENOMEM, or what pin_user_pages_fast() answered.
 */
void *nm_glue_pin_user(u64 addr, size_t npages, int *err)
{
	struct nm_upages *u;
	unsigned long done = 0;
	long got;

	if (npages == 0 || npages > UINT_MAX || (addr & ~PAGE_MASK)) {
		*err = -EINVAL;
		return NULL;
	}
	u = kvmalloc(struct_size(u, pages, npages), GFP_KERNEL);
	if (!u) {
		*err = -ENOMEM;
		return NULL;
	}
	while (done < npages) {
		got = pin_user_pages_fast(addr + (done << PAGE_SHIFT),
					  (int)min(npages - done, NM_PIN_BATCH),
					  FOLL_WRITE | FOLL_LONGTERM,
					  u->pages + done);
		if (got <= 0) {
			unpin_user_pages(u->pages, done);
			kvfree(u);
			*err = got < 0 ? (int)got : -EFAULT;
			return NULL;
		}
		done += got;
	}
	u->npages = npages;
	u->vaddr = vmap(u->pages, (unsigned int)npages, VM_MAP, PAGE_KERNEL);
	if (!u->vaddr) {
		unpin_user_pages(u->pages, npages);
		kvfree(u);
		*err = -ENOMEM;
		return NULL;
	}
	return u;
}

/* Kernel address of pinned page `i` (they follow each other). */
void *nm_glue_upage_addr(void *up, size_t i)
{
	struct nm_upages *u = up;

	return i < u->npages ? (char *)u->vaddr + (i << PAGE_SHIFT) : NULL;
}

/* Same pages, same order (the struct page pointers identify them). */
bool nm_glue_upages_same(void *ap, void *bp)
{
	struct nm_upages *a = ap, *b = bp;

	return a->npages == b->npages &&
	       !memcmp(a->pages, b->pages, a->npages * sizeof(a->pages[0]));
}

static void nm_upages_release(struct nm_upages *u)
{
	vunmap(u->vaddr);
	unpin_user_pages_dirty_lock(u->pages, u->npages, true);
	kvfree(u);
}

static void nm_upages_work_fn(struct work_struct *w)
{
	nm_upages_release(container_of(w, struct nm_upages, work));
}

/*
 * Unmap and unpin, marking the pages dirty (the kernel wrote them).  Both
 * may sleep: from atomic context (a region whose last reference was held
 * by a data-path snapshot) it is done by nm_wq, which exists while any
 * data path can run and is drained at module exit.
 */
void nm_glue_unpin_user(void *up)
{
	struct nm_upages *u = up;

	if (in_task() && !in_atomic() && !irqs_disabled()) {
		nm_upages_release(u);
		return;
	}
	INIT_WORK(&u->work, nm_upages_work_fn);
	queue_work(nm_wq, &u->work);
}
