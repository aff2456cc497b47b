/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * glue.c - the C half of the netmap FreeBSD kernel module (netmap.ko).
 *
 * Everything netmap decides lives in Rust (os/freebsd/rust, on top of
 * netmap-core).  This file only does what Rust cannot do by itself in a
 * FreeBSD 15 kernel:
 *
 *   1. module boilerplate: DECLARE_MODULE, MODULE_VERSION, the event
 *      handler (load, quiesce/unload refused while a file is open);
 *   2. the parameters of spec section 12 as sysctls dev.netmap.* (also
 *      loader tunables), forwarded to Rust;
 *   3. the character device /dev/netmap (root only, 0600) and its cdevsw:
 *      open with per-file state (devfs_set_cdevpriv + destructor), ioctl,
 *      poll (selinfo), kqueue (knlist), mmap through d_mmap_single and a
 *      device pager that serves the region's pages;
 *   4. the emulated adapter on FreeBSD interfaces (if_input and
 *      if_transmit intercepted), persistent VALE ports as real ifnets,
 *      interface departure;
 *   5. wrappers around kernel macros and inline functions that Rust calls
 *      through `extern "C"` (locks, wait queues, user copies, page
 *      clusters, time, printf, the allocator behind Rust's global
 *      allocator, kernel threads).
 *
 * The contract with Rust (prefix nm_rs_ = implemented in Rust, nm_glue_ =
 * implemented here) is documented in os/freebsd/README.md and mirrored in
 * os/freebsd/rust/src/ffi.rs.  Errors cross it as positive FreeBSD errno
 * values (0 = success); Rust maps the core's numbers.
 */

#include <sys/param.h>
#include <sys/systm.h>
#include <sys/kernel.h>
#include <sys/module.h>
#include <sys/conf.h>
#include <sys/malloc.h>
#include <sys/lock.h>
#include <sys/mutex.h>
#include <sys/sx.h>
#include <sys/rwlock.h>
#include <sys/selinfo.h>
#include <sys/event.h>
#include <sys/poll.h>
#include <sys/proc.h>
#include <sys/kthread.h>
#include <sys/sched.h>
#include <sys/smp.h>
#include <sys/sysctl.h>
#include <sys/taskqueue.h>
#include <sys/mbuf.h>
#include <sys/socket.h>
#include <sys/sockio.h>
#include <sys/eventhandler.h>
#include <sys/time.h>
#include <sys/refcount.h>
#include <sys/epoch.h>
#include <sys/syslog.h>
#include <sys/ioccom.h>
#include <sys/libkern.h>
#include <sys/jail.h>
#include <sys/ucred.h>
#include <vm/vm.h>
#include <vm/pmap.h>
#include <vm/vm_param.h>
#include <vm/vm_object.h>
#include <vm/vm_page.h>
#include <vm/vm_pager.h>
#include <vm/vm_map.h>
#include <vm/vm_extern.h>
#include <net/if.h>
#include <net/if_var.h>
#include <net/if_types.h>
#include <net/if_dl.h>
#include <net/ethernet.h>
#include <net/vnet.h>

MALLOC_DEFINE(M_NETMAP, "netmap", "netmap-rs: rings, buffers, state");

/* ------------------------------------------------------------------------
 * Entry points implemented in Rust (os/freebsd/rust/src/entry.rs, netif.rs,
 * platform.rs).  int results are 0 or a positive FreeBSD errno.
 * ------------------------------------------------------------------------ */
int nm_rs_init(const int *params, unsigned int nparams);
void nm_rs_exit(void);
int nm_rs_param_set(unsigned int id, int value);
int nm_rs_param_get(unsigned int id, int *value);
int nm_rs_open(void **priv);
void nm_rs_release(void *priv);
int nm_rs_ioctl(void *priv, u_long cmd, void *data, size_t len);
int nm_rs_poll(void *priv, int events, struct thread *td);
void *nm_rs_kq_queue(void *priv, bool write);
int nm_rs_mmap_check(void *priv, uint64_t offset, uint64_t len);
void *nm_rs_mmap_page(void *priv, uint64_t offset);
size_t nm_rs_stats(char *buf, size_t len);
bool nm_rs_netif_rx(void *ctx, unsigned int queue, bool host,
    const uint8_t *data, size_t len);
void nm_rs_netif_rx_flush(void *ctx);
void nm_rs_netif_gone(const char *name, size_t len);
bool nm_rs_thread_run(void *ctx);

/* ------------------------------------------------------------------------
 * Functions Rust calls (os/freebsd/rust/src/ffi.rs), defined below.
 * ------------------------------------------------------------------------ */
struct nm_gna_info;
const char *nm_glue_param_name(unsigned int id);
void *nm_glue_alloc(size_t size, size_t align, bool zero);
void nm_glue_free(void *ptr);
void *nm_glue_realloc(void *ptr, size_t new_size);
void *nm_glue_cluster_alloc(size_t size);
void nm_glue_cluster_free(void *ptr, size_t size);
void *nm_glue_spin_alloc(void);
void nm_glue_spin_lock(void *m);
void nm_glue_spin_unlock(void *m);
void nm_glue_spin_free(void *m);
void *nm_glue_mutex_alloc(void);
void nm_glue_mutex_lock(void *s);
void nm_glue_mutex_unlock(void *s);
void nm_glue_mutex_free(void *s);
void *nm_glue_wq_alloc(void);
void nm_glue_wq_wake_all(void *wq);
void nm_glue_wq_free(void *wq);
void nm_glue_poll_wait(struct thread *td, void *wq);
int nm_glue_copyin(void *dst, uint64_t src, size_t len);
int nm_glue_copyout(uint64_t dst, const void *src, size_t len);
void nm_glue_gettimeofday(int64_t *sec, int64_t *usec);
unsigned int nm_glue_online_cpus(void);
uint64_t nm_glue_total_ram(void);
void nm_glue_log(int level, const char *msg, size_t len);
void nm_glue_panic(void) __dead2;
void *nm_glue_thread_start(const char *name, size_t len, int cpu, void *ctx,
    int *err);
void nm_glue_thread_stop(void *t);
void *nm_glue_sleeper_alloc(void);
void nm_glue_sleeper_wake(void *s);
int nm_glue_sleeper_sleep(void *s, uint64_t timeout_ns);
void nm_glue_sleeper_free(void *s);
void nm_glue_sleep_us(unsigned int us);
void *nm_glue_pin_user(uint64_t addr, size_t npages, int *err);
void *nm_glue_upage_addr(void *u, size_t i);
bool nm_glue_upages_same(void *a, void *b);
void nm_glue_unpin_user(void *u);
void *nm_glue_gna_lookup(const char *name, size_t len,
    struct nm_gna_info *info);
void nm_glue_gna_free(void *gna);
int nm_glue_gna_register(void *gna, void *ctx, bool on);
struct mbuf *nm_glue_mbuf_alloc(size_t len, uint8_t **data);
int nm_glue_gna_xmit(void *gna, struct mbuf *m, uint32_t ring);
int nm_glue_gna_inject(void *gna, struct mbuf *m);
bool nm_glue_netdev_exists(const char *name, size_t len);
int nm_glue_pif_create(const char *name, size_t len);
int nm_glue_pif_delete(const char *name, size_t len);

/* ------------------------------------------------------------------------
 * Parameters (spec section 12) as sysctls dev.netmap.<name>.
 *
 * One X-macro table gives every parameter its id (the enum order, which
 * the core's table mirrors and Rust checks at load through
 * nm_glue_param_name()), its default and its kind.  Values live in
 * nm_param_vals[]; CTLFLAG_TUN makes each a loader tunable (loader.conf
 * or kenv before kldload), applied when the module's sysctls are
 * registered, before MOD_LOAD, so Rust reads them at init.  After init
 * writes are forwarded to Rust (nm_rs_param_set); the *_curr_* values are
 * read from Rust.
 *
 * Kinds: RW = writable; RO = tunable at load only; CUR = owned by Rust.
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

#define NM_KIND_RW 0
#define NM_KIND_RO 1
#define NM_KIND_CUR 2
#define NM_PARAM_KIND(name, def, kind) [NM_PARAM_##name] = NM_KIND_##kind,
static const int nm_param_kinds[NM_PARAM_COUNT] = { NM_PARAMS(NM_PARAM_KIND) };

/*
 * Rust is live between a successful nm_rs_init() and nm_rs_exit().  The
 * sysctl handlers test it under nm_param_lock, which module unload takes
 * to clear it: no handler is inside Rust when nm_rs_exit() runs.
 */
static bool nm_rs_live;
static struct sx nm_param_lock;
SX_SYSINIT(nm_param_lock, &nm_param_lock, "netmap params");

/* The name of parameter `id` (NULL past the end); Rust checks its table. */
const char *
nm_glue_param_name(unsigned int id)
{
	return (id < NM_PARAM_COUNT ? nm_param_names[id] : NULL);
}

static int
nm_sysctl_param(SYSCTL_HANDLER_ARGS)
{
	int id = arg2, v, err;

	sx_xlock(&nm_param_lock);
	v = nm_param_vals[id];
	if (nm_rs_live && nm_param_kinds[id] == NM_KIND_CUR)
		nm_rs_param_get(id, &v);
	err = sysctl_handle_int(oidp, &v, 0, req);
	if (err != 0 || req->newptr == NULL)
		goto out;
	/* Computed by Rust: never set; load-time values: only as tunables. */
	if (nm_param_kinds[id] == NM_KIND_CUR ||
	    (nm_param_kinds[id] == NM_KIND_RO && nm_rs_live)) {
		err = EPERM;
		goto out;
	}
	if (nm_rs_live) {
		err = nm_rs_param_set(id, v);
		if (err != 0)
			goto out;
	}
	nm_param_vals[id] = v;
out:
	sx_xunlock(&nm_param_lock);
	return (err);
}

static int nm_sysctl_stats(SYSCTL_HANDLER_ARGS);

SYSCTL_DECL(_dev);
static SYSCTL_NODE(_dev, OID_AUTO, netmap, CTLFLAG_RW | CTLFLAG_MPSAFE, 0,
    "netmap-rs (netmap API 14)");

/* RW: sysctl and tunable; RO: tunable, read-only sysctl; CUR: read-only. */
#define NM_CTLFLAG_RW CTLFLAG_RWTUN
#define NM_CTLFLAG_RO CTLFLAG_RDTUN
#define NM_CTLFLAG_CUR CTLFLAG_RD
#define NM_PARAM_SYSCTL(name, def, kind)                                    \
	SYSCTL_PROC(_dev_netmap, OID_AUTO, name,                            \
	    CTLTYPE_INT | NM_CTLFLAG_##kind | CTLFLAG_MPSAFE, NULL,         \
	    NM_PARAM_##name, nm_sysctl_param, "I",                          \
	    "netmap " #name " (default " #def ")");
NM_PARAMS(NM_PARAM_SYSCTL)

/* The core's allocator counters ("name value" lines): the leak check. */
SYSCTL_PROC(_dev_netmap, OID_AUTO, stats,
    CTLTYPE_STRING | CTLFLAG_RD | CTLFLAG_MPSAFE, NULL, 0, nm_sysctl_stats,
    "A", "netmap objects in use");

#define NM_STATS_BUFSZ 1024

static int
nm_sysctl_stats(SYSCTL_HANDLER_ARGS)
{
	char *buf;
	size_t n = 0;
	int err;

	buf = malloc(NM_STATS_BUFSZ, M_NETMAP, M_WAITOK | M_ZERO);
	sx_slock(&nm_param_lock);
	if (nm_rs_live)
		n = nm_rs_stats(buf, NM_STATS_BUFSZ - 1);
	sx_sunlock(&nm_param_lock);
	buf[MIN(n, NM_STATS_BUFSZ - 1)] = '\0';
	err = sysctl_handle_string(oidp, buf, NM_STATS_BUFSZ, req);
	free(buf, M_NETMAP);
	return (err);
}

/* ------------------------------------------------------------------------
 * Per-file state.
 *
 * struct nm_file wraps the Rust per-file state ("priv", from nm_rs_open).
 * References: one for the open file (dropped by the cdevpriv destructor
 * at last close or process exit), one per mapping (device pager handle,
 * dropped when the VM object dies) and one per knote.  The last one
 * releases the Rust state: a process may close the descriptor and keep
 * using its mapping, as on Linux where the vma holds the file.
 *
 * nm_nfiles counts the nm_file objects alive; module unload is refused
 * while it is not 0.  nm_unloading (under nm_files_mtx) closes the window
 * between that check and destroy_dev(): no open starts once it is set.
 * ------------------------------------------------------------------------ */
struct nm_file {
	u_int refs;
	void *priv;
};

static struct mtx nm_files_mtx;
MTX_SYSINIT(nm_files_mtx, &nm_files_mtx, "netmap files", MTX_DEF);
static u_int nm_nfiles;
static bool nm_unloading;
static struct cdev *nm_cdev;

static void
nm_file_hold(struct nm_file *f)
{
	refcount_acquire(&f->refs);
}

static void
nm_file_rele(struct nm_file *f)
{
	if (!refcount_release(&f->refs))
		return;
	nm_rs_release(f->priv);
	free(f, M_NETMAP);
	mtx_lock(&nm_files_mtx);
	nm_nfiles--;
	mtx_unlock(&nm_files_mtx);
}

/* cdevpriv destructor: the last close of the file (or process exit). */
static void
nm_file_dtor(void *arg)
{
	nm_file_rele(arg);
}

static struct nm_file *
nm_file_get(void)
{
	void *f;

	return (devfs_get_cdevpriv(&f) == 0 ? f : NULL);
}

static int
nm_dev_open(struct cdev *dev, int oflags, int devtype, struct thread *td)
{
	struct nm_file *f;
	void *priv = NULL;
	int err;

	mtx_lock(&nm_files_mtx);
	if (nm_unloading) {
		mtx_unlock(&nm_files_mtx);
		return (ENXIO);
	}
	nm_nfiles++;
	mtx_unlock(&nm_files_mtx);

	f = malloc(sizeof(*f), M_NETMAP, M_WAITOK | M_ZERO);
	refcount_init(&f->refs, 1);
	err = nm_rs_open(&priv);
	if (err == 0) {
		f->priv = priv;
		err = devfs_set_cdevpriv(f, nm_file_dtor);
		if (err != 0)
			nm_rs_release(priv);
	}
	if (err != 0) {
		free(f, M_NETMAP);
		mtx_lock(&nm_files_mtx);
		nm_nfiles--;
		mtx_unlock(&nm_files_mtx);
	}
	return (err);
}

/*
 * The generic ioctl layer has copied IOCPARM_LEN(cmd) bytes of the
 * argument into `data` (and copies them back on return); what it points
 * to (request bodies, options) is user memory, which Rust reaches with
 * copyin/copyout.
 */
static int
nm_dev_ioctl(struct cdev *dev, u_long cmd, caddr_t data, int fflag,
    struct thread *td)
{
	struct nm_file *f = nm_file_get();

	if (f == NULL)
		return (EBADF);
	return (nm_rs_ioctl(f->priv, cmd, data, IOCPARM_LEN(cmd)));
}

static int
nm_dev_poll(struct cdev *dev, int events, struct thread *td)
{
	struct nm_file *f = nm_file_get();

	if (f == NULL)
		return (POLLNVAL);
	return (nm_rs_poll(f->priv, events, td));
}

/* ------------------------------------------------------------------------
 * Wait queues (Platform::WaitQueue): a selinfo for poll/select, whose
 * knlist (locked by `mtx`) carries the kqueue knotes.  wake_all wakes the
 * selectors at once and runs the knotes from a task: a knote's f_event
 * runs the core's poll, which takes ring locks that the waker may hold.
 * ------------------------------------------------------------------------ */
struct nm_wq {
	struct selinfo si;
	struct mtx mtx;
	struct task kn_task;
};

static void
nm_wq_kn_task(void *arg, int pending)
{
	struct nm_wq *wq = arg;

	KNOTE_UNLOCKED(&wq->si.si_note, 0);
}

void *
nm_glue_wq_alloc(void)
{
	struct nm_wq *wq = malloc(sizeof(*wq), M_NETMAP, M_NOWAIT | M_ZERO);

	if (wq == NULL)
		return (NULL);
	mtx_init(&wq->mtx, "netmap wq", NULL, MTX_DEF);
	knlist_init_mtx(&wq->si.si_note, &wq->mtx);
	TASK_INIT(&wq->kn_task, 0, nm_wq_kn_task, wq);
	return (wq);
}

void
nm_glue_wq_wake_all(void *arg)
{
	struct nm_wq *wq = arg;

	selwakeuppri(&wq->si, PI_NET);
	/*
	 * The ring update that led here is published before the look at the
	 * knlist (Platform::WaitQueue::wake_all): a knote attached after the
	 * look sees the update in its first f_event.
	 */
	atomic_thread_fence_seq_cst();
	if (!KNLIST_EMPTY(&wq->si.si_note))
		taskqueue_enqueue(taskqueue_thread, &wq->kn_task);
}

/*
 * Every file registered on it is gone (the core drops a queue after the
 * last file bound to it): no knote is left; seldrain wakes stale
 * selectors so that they do not touch the selinfo again.
 */
void
nm_glue_wq_free(void *arg)
{
	struct nm_wq *wq = arg;

	taskqueue_drain(taskqueue_thread, &wq->kn_task);
	seldrain(&wq->si);
	knlist_clear(&wq->si.si_note, 0);
	knlist_destroy(&wq->si.si_note);
	mtx_destroy(&wq->mtx);
	free(wq, M_NETMAP);
}

/* Called back by Rust (from inside nm_rs_poll) once per wait queue. */
void
nm_glue_poll_wait(struct thread *td, void *arg)
{
	struct nm_wq *wq = arg;

	if (td != NULL)
		selrecord(td, &wq->si);
}

/* kqueue: a knote on the read (RX) or write (TX) wait queue of the file. */
struct nm_knote {
	struct nm_file *f;
	struct nm_wq *wq;
	bool write;
};

static void
nm_kn_detach(struct knote *kn)
{
	struct nm_knote *k = kn->kn_hook;

	knlist_remove(&k->wq->si.si_note, kn, 0);
	nm_file_rele(k->f);
	free(k, M_NETMAP);
}

/* Called with the knlist lock held: readiness from the core's poll. */
static int
nm_kn_event(struct knote *kn, long hint)
{
	struct nm_knote *k = kn->kn_hook;
	int want = k->write ? POLLOUT : POLLIN;
	int rev = nm_rs_poll(k->f->priv, want, NULL);

	if (rev & POLLERR)
		kn->kn_flags |= EV_EOF;
	return ((rev & (want | POLLERR)) != 0);
}

static const struct filterops nm_kn_filtops = {
	.f_isfd = 1,
	.f_detach = nm_kn_detach,
	.f_event = nm_kn_event,
};

static int
nm_dev_kqfilter(struct cdev *dev, struct knote *kn)
{
	struct nm_file *f = nm_file_get();
	struct nm_knote *k;
	struct nm_wq *wq;
	bool write;

	if (f == NULL)
		return (EBADF);
	switch (kn->kn_filter) {
	case EVFILT_READ:
		write = false;
		break;
	case EVFILT_WRITE:
		write = true;
		break;
	default:
		return (EINVAL);
	}
	/* The file must be bound to a port with rings that way. */
	wq = nm_rs_kq_queue(f->priv, write);
	if (wq == NULL)
		return (EINVAL);
	k = malloc(sizeof(*k), M_NETMAP, M_WAITOK | M_ZERO);
	nm_file_hold(f);
	k->f = f;
	k->wq = wq;
	k->write = write;
	kn->kn_hook = k;
	kn->kn_fop = &nm_kn_filtops;
	knlist_add(&wq->si.si_note, kn, 0);
	return (0);
}

/* ------------------------------------------------------------------------
 * mmap: d_mmap_single gives every mapping its own device-pager VM object,
 * whose handle holds a reference on the file; faults ask Rust for the
 * kernel address of the page at a region offset and map its physical page
 * through a fictitious page (the region's memory stays owned by the core).
 * ------------------------------------------------------------------------ */
struct nm_vmh {
	struct nm_file *f;
};

static int
nm_pg_ctor(void *handle, vm_ooffset_t size, vm_prot_t prot,
    vm_ooffset_t foff, struct ucred *cred, u_short *color)
{
	*color = 0;
	return (0);
}

/* The VM object is being destroyed: its last mapping is gone. */
static void
nm_pg_dtor(void *handle)
{
	struct nm_vmh *h = handle;

	nm_file_rele(h->f);
	free(h, M_NETMAP);
}

static int
nm_pg_fault(vm_object_t object, vm_ooffset_t offset, int prot,
    vm_page_t *mres)
{
	struct nm_vmh *h = object->handle;
	vm_memattr_t memattr = object->memattr;
	vm_paddr_t paddr;
	vm_page_t page;
	void *kva;

	kva = nm_rs_mmap_page(h->f->priv, offset);
	if (kva == NULL)
		return (VM_PAGER_FAIL);
	paddr = pmap_kextract((vm_offset_t)kva);
	if (((*mres)->flags & PG_FICTITIOUS) != 0) {
		/* Already ours: point it at the (same) page again. */
		page = *mres;
		vm_page_updatefake(page, paddr, memattr);
	} else {
		/* Replace the placeholder with a fake page for `paddr`. */
		VM_OBJECT_WUNLOCK(object);
		page = vm_page_getfake(paddr, memattr);
		VM_OBJECT_WLOCK(object);
		vm_page_replace(page, object, (*mres)->pindex, *mres);
		*mres = page;
	}
	vm_page_valid(page);
	return (VM_PAGER_OK);
}

static const struct cdev_pager_ops nm_pager_ops = {
	.cdev_pg_ctor = nm_pg_ctor,
	.cdev_pg_dtor = nm_pg_dtor,
	.cdev_pg_fault = nm_pg_fault,
};

static int
nm_dev_mmap_single(struct cdev *dev, vm_ooffset_t *offset, vm_size_t size,
    struct vm_object **objp, int nprot)
{
	struct nm_file *f = nm_file_get();
	struct nm_vmh *h;
	vm_object_t obj;
	int err;

	if (f == NULL)
		return (EBADF);
	err = nm_rs_mmap_check(f->priv, *offset, size);
	if (err != 0)
		return (err);
	h = malloc(sizeof(*h), M_NETMAP, M_WAITOK | M_ZERO);
	nm_file_hold(f);
	h->f = f;
	obj = cdev_pager_allocate(h, OBJT_DEVICE, &nm_pager_ops, size, nprot,
	    *offset, curthread->td_ucred);
	if (obj == NULL) {
		nm_file_rele(f);
		free(h, M_NETMAP);
		return (EINVAL);
	}
	*objp = obj;
	return (0);
}

static struct cdevsw nm_cdevsw = {
	.d_version = D_VERSION,
	.d_name = "netmap",
	.d_open = nm_dev_open,
	.d_ioctl = nm_dev_ioctl,
	.d_poll = nm_dev_poll,
	.d_kqfilter = nm_dev_kqfilter,
	.d_mmap_single = nm_dev_mmap_single,
};

/* ------------------------------------------------------------------------
 * Emulated ("generic") adapter for FreeBSD interfaces (spec 10.3).
 *
 * Rust (rust/src/netif.rs) owns the netmap side; this part owns the
 * interface side of one binding, a `struct nm_gna`:
 *
 *   - lookup: the interface by name in the caller's vnet, referenced
 *     (ifunit_ref) until the Rust object is freed or the interface
 *     departs, whichever comes first;
 *   - register(on): the interface's if_input is replaced by nm_gna_input,
 *     which copies every received frame into a hardware RX ring, and its
 *     if_transmit by nm_gna_transmit, which diverts what the host stack
 *     sends into the host RX ring; the interface's netmap pointer
 *     (if_setnetmapadapter) finds the nm_gna from the hooks; hardware
 *     checksum offload is turned off meanwhile (if_hwassist = 0), so the
 *     stack hands over complete frames;
 *   - transmit: netmap's own frames go to the saved if_transmit;
 *     host_inject: frames from the host TX ring to the saved if_input;
 *   - departure (ifnet_departure_event): hooks removed, reference dropped,
 *     Rust told from a task (nm_rs_netif_gone), because the core takes
 *     its global lock before nm_gna_sx (register).
 *
 * The hooks run inside the network epoch (they enter it themselves too);
 * unhooking restores the pointers, clears ctx and waits for the epoch, so
 * no hook uses the Rust adapter after register(off) returns.
 * ------------------------------------------------------------------------ */

/* Largest received frame Rust accepts (chains of mbufs are copied). */
#define NM_GNA_MAX_FRAME 32768

struct nm_gna_info {
	uint32_t rx_rings;
	uint32_t tx_rings;
	uint32_t rx_slots;
	uint32_t tx_slots;
	uint32_t mtu;
};

struct nm_gna {
	LIST_ENTRY(nm_gna) link;	/* nm_gna_list, under nm_gna_sx */
	if_t ifp;			/* NULL once departed */
	void *ctx;			/* Rust adapter while hooked */
	bool hooked;
	if_input_fn_t orig_input;
	if_transmit_fn_t orig_transmit;
	int orig_hwassist;
	struct mtx bounce_mtx;		/* serializes `bounce` */
	uint8_t *bounce;		/* chained mbufs are copied here */
	char name[IFNAMSIZ];
};

static LIST_HEAD(, nm_gna) nm_gna_list = LIST_HEAD_INITIALIZER(nm_gna_list);
static struct sx nm_gna_sx;
SX_SYSINIT(nm_gna_sx, &nm_gna_sx, "netmap interfaces");
static eventhandler_tag nm_departure_tag;

/* Push one received (or host-sent) frame into Rust; false = dropped. */
static bool
nm_gna_push(struct nm_gna *gna, void *ctx, struct mbuf *m, bool host)
{
	int len = m->m_pkthdr.len;
	u_int q = M_HASHTYPE_GET(m) != M_HASHTYPE_NONE ? m->m_pkthdr.flowid : 0;
	bool ok;

	if (len <= 0 || len > NM_GNA_MAX_FRAME)
		return (false);
	if (m->m_next == NULL)
		return (nm_rs_netif_rx(ctx, q, host, mtod(m, uint8_t *), len));
	mtx_lock(&gna->bounce_mtx);
	m_copydata(m, 0, len, (caddr_t)gna->bounce);
	ok = nm_rs_netif_rx(ctx, q, host, gna->bounce, len);
	mtx_unlock(&gna->bounce_mtx);
	return (ok);
}

/* if_input while hooked: received frames (a chain of packets) to RX rings. */
static void
nm_gna_input(if_t ifp, struct mbuf *m)
{
	struct nm_gna *gna;
	struct epoch_tracker et;
	struct mbuf *next;
	void *ctx;

	NET_EPOCH_ENTER(et);
	gna = (struct nm_gna *)if_getnetmapadapter(ifp);
	ctx = gna != NULL ? atomic_load_ptr(&gna->ctx) : NULL;
	if (ctx == NULL) {
		/* Unhooked meanwhile: the stack gets it. */
		if (gna != NULL && gna->orig_input != NULL)
			gna->orig_input(ifp, m);
		else
			m_freem(m);
		NET_EPOCH_EXIT(et);
		return;
	}
	for (; m != NULL; m = next) {
		next = m->m_nextpkt;
		m->m_nextpkt = NULL;
		if (!nm_gna_push(gna, ctx, m, false))
			if_inc_counter(ifp, IFCOUNTER_IQDROPS, 1);
		m_freem(m);
	}
	nm_rs_netif_rx_flush(ctx);
	NET_EPOCH_EXIT(et);
}

/* if_transmit while hooked: the host stack's frames to the host RX ring. */
static int
nm_gna_transmit(if_t ifp, struct mbuf *m)
{
	struct nm_gna *gna;
	struct epoch_tracker et;
	void *ctx;
	int err = 0;

	NET_EPOCH_ENTER(et);
	gna = (struct nm_gna *)if_getnetmapadapter(ifp);
	ctx = gna != NULL ? atomic_load_ptr(&gna->ctx) : NULL;
	if (ctx == NULL) {
		err = gna != NULL && gna->orig_transmit != NULL ?
		    gna->orig_transmit(ifp, m) : (m_freem(m), ENXIO);
		NET_EPOCH_EXIT(et);
		return (err);
	}
	/* No offload while hooked (hwassist 0): the frame is complete. */
	if (nm_gna_push(gna, ctx, m, true))
		nm_rs_netif_rx_flush(ctx);
	else
		if_inc_counter(ifp, IFCOUNTER_OQDROPS, 1);
	m_freem(m);
	NET_EPOCH_EXIT(et);
	return (0);
}

/* Remove the hooks (nm_gna_sx held); afterwards no hook uses ctx. */
static void
nm_gna_unhook(struct nm_gna *gna)
{
	if_t ifp = gna->ifp;

	if (!gna->hooked || ifp == NULL)
		return;
	if_setinputfn(ifp, gna->orig_input);
	if_settransmitfn(ifp, gna->orig_transmit);
	if_sethwassist(ifp, gna->orig_hwassist);
	atomic_store_ptr(&gna->ctx, NULL);
	NET_EPOCH_WAIT();
	if_setnetmapadapter(ifp, NULL);
	gna->hooked = false;
}

/* Unhook and drop the interface reference (nm_gna_sx held). */
static void
nm_gna_detach(struct nm_gna *gna)
{
	if (gna->ifp == NULL)
		return;
	nm_gna_unhook(gna);
	if_rele(gna->ifp);
	gna->ifp = NULL;
}

/* Number of rings: one per direction (FreeBSD has no generic queue count). */
static void
nm_gna_ring_sizes(if_t ifp, struct nm_gna_info *info)
{
	int slots = nm_param_vals[NM_PARAM_generic_ringsize];

	if (slots < 64)
		slots = 64;
	if (slots > 16384)
		slots = 16384;
	info->rx_rings = info->tx_rings = 1;
	info->rx_slots = info->tx_slots = slots;
	info->mtu = if_getmtu(ifp);
}

/*
 * Look up `name` in the caller's vnet; returns a new nm_gna holding the
 * interface, or NULL (no such Ethernet interface, or no memory).
 */
void *
nm_glue_gna_lookup(const char *name, size_t len, struct nm_gna_info *info)
{
	struct nm_gna *gna;
	if_t ifp;

	if (len == 0 || len >= IFNAMSIZ || memchr(name, 0, len) != NULL)
		return (NULL);
	gna = malloc(sizeof(*gna), M_NETMAP, M_WAITOK | M_ZERO);
	memcpy(gna->name, name, len);
	CURVNET_SET(TD_TO_VNET(curthread));
	ifp = ifunit_ref(gna->name);
	CURVNET_RESTORE();
	if (ifp == NULL || if_gettype(ifp) != IFT_ETHER) {
		if (ifp != NULL)
			if_rele(ifp);
		free(gna, M_NETMAP);
		return (NULL);
	}
	gna->ifp = ifp;
	gna->bounce = malloc(NM_GNA_MAX_FRAME, M_NETMAP, M_WAITOK);
	mtx_init(&gna->bounce_mtx, "netmap gna", NULL, MTX_DEF);
	nm_gna_ring_sizes(ifp, info);
	sx_xlock(&nm_gna_sx);
	LIST_INSERT_HEAD(&nm_gna_list, gna, link);
	sx_xunlock(&nm_gna_sx);
	return (gna);
}

void
nm_glue_gna_free(void *arg)
{
	struct nm_gna *gna = arg;

	sx_xlock(&nm_gna_sx);
	nm_gna_detach(gna);
	LIST_REMOVE(gna, link);
	sx_xunlock(&nm_gna_sx);
	mtx_destroy(&gna->bounce_mtx);
	free(gna->bounce, M_NETMAP);
	free(gna, M_NETMAP);
}

/* Install (`on`) or remove the hooks; `ctx` is what they pass to Rust. */
int
nm_glue_gna_register(void *arg, void *ctx, bool on)
{
	struct nm_gna *gna = arg;
	if_t ifp;
	int err = 0;

	sx_xlock(&nm_gna_sx);
	ifp = gna->ifp;
	if (!on) {
		nm_gna_unhook(gna);
	} else if (ifp == NULL) {
		err = ENXIO;
	} else if (!gna->hooked) {
		if (if_getnetmapadapter(ifp) != NULL) {
			err = EBUSY;	/* another netmap owns it */
		} else {
			gna->orig_input = if_getinputfn(ifp);
			gna->orig_transmit = if_gettransmitfn(ifp);
			gna->orig_hwassist = if_gethwassist(ifp);
			atomic_store_ptr(&gna->ctx, ctx);
			if_setnetmapadapter(ifp, (struct netmap_adapter *)gna);
			if_sethwassist(ifp, 0);
			if_setinputfn(ifp, nm_gna_input);
			if_settransmitfn(ifp, nm_gna_transmit);
			gna->hooked = true;
		}
	}
	sx_xunlock(&nm_gna_sx);
	return (err);
}

/* An mbuf for a `len`-byte frame (`*data`: where to write it), or NULL. */
struct mbuf *
nm_glue_mbuf_alloc(size_t len, uint8_t **data)
{
	struct mbuf *m;

	if (len == 0 || len > MJUM16BYTES)
		return (NULL);
	m = m_get3(len, M_NOWAIT, MT_DATA, M_PKTHDR);
	if (m == NULL)
		return (NULL);
	m->m_len = m->m_pkthdr.len = len;
	*data = mtod(m, uint8_t *);
	return (m);
}

/*
 * Transmit (and consume) `m` from TX ring `ring` through the interface's
 * own if_transmit.  0 = handed to the driver; an errno = dropped (the
 * driver frees the mbuf in every case).
 */
int
nm_glue_gna_xmit(void *arg, struct mbuf *m, uint32_t ring)
{
	struct nm_gna *gna = arg;
	struct epoch_tracker et;
	if_t ifp = gna->ifp;
	int err;

	if (ifp == NULL || !gna->hooked) {
		m_freem(m);
		return (ENXIO);
	}
	m->m_pkthdr.rcvif = NULL;
	m->m_pkthdr.flowid = ring;
	M_HASHTYPE_SET(m, M_HASHTYPE_OPAQUE);
	NET_EPOCH_ENTER(et);
	err = gna->orig_transmit(ifp, m);
	NET_EPOCH_EXIT(et);
	return (err);
}

/* Hand (and consume) `m` to the host stack as if received. */
int
nm_glue_gna_inject(void *arg, struct mbuf *m)
{
	struct nm_gna *gna = arg;
	struct epoch_tracker et;
	if_t ifp = gna->ifp;

	if (ifp == NULL || !gna->hooked) {
		m_freem(m);
		return (ENXIO);
	}
	m->m_pkthdr.rcvif = ifp;
	NET_EPOCH_ENTER(et);
	gna->orig_input(ifp, m);
	NET_EPOCH_EXIT(et);
	return (0);
}

/* Tell Rust, outside the departure handler, that an interface is gone. */
struct nm_gone_task {
	struct task task;
	size_t len;
	char name[IFNAMSIZ];
};

static void
nm_gone_task_fn(void *arg, int pending)
{
	struct nm_gone_task *gt = arg;

	sx_slock(&nm_param_lock);
	if (nm_rs_live)
		nm_rs_netif_gone(gt->name, gt->len);
	sx_sunlock(&nm_param_lock);
	free(gt, M_NETMAP);
}

static void nm_pif_forget(if_t ifp);

static void
nm_ifnet_departure(void *arg, if_t ifp)
{
	struct nm_gone_task *gt;
	struct nm_gna *gna;

	nm_pif_forget(ifp);
	sx_xlock(&nm_gna_sx);
	LIST_FOREACH(gna, &nm_gna_list, link) {
		if (gna->ifp != ifp)
			continue;
		nm_gna_detach(gna);
		gt = malloc(sizeof(*gt), M_NETMAP, M_NOWAIT | M_ZERO);
		if (gt == NULL) {
			printf("netmap: %s gone, no memory to tell the port\n",
			    gna->name);
			continue;
		}
		gt->len = strnlen(gna->name, IFNAMSIZ);
		memcpy(gt->name, gna->name, gt->len);
		TASK_INIT(&gt->task, 0, nm_gone_task_fn, gt);
		taskqueue_enqueue(taskqueue_thread, &gt->task);
	}
	sx_xunlock(&nm_gna_sx);
}

/* ------------------------------------------------------------------------
 * Interfaces of persistent VALE ports (NEWIF/DELIF, spec 8.4): a plain
 * Ethernet ifnet (random locally administered MAC, MTU 1500) whose
 * transmit drops everything, created in the caller's vnet.  nm_pif_list
 * is protected by nm_gna_sx.  Module unload detaches those still present.
 * ------------------------------------------------------------------------ */
struct nm_pif {
	LIST_ENTRY(nm_pif) link;
	if_t ifp;
	char name[IFNAMSIZ];
};

static LIST_HEAD(, nm_pif) nm_pif_list = LIST_HEAD_INITIALIZER(nm_pif_list);

static int
nm_pif_transmit(if_t ifp, struct mbuf *m)
{
	if_inc_counter(ifp, IFCOUNTER_OQDROPS, 1);
	m_freem(m);
	return (0);
}

static void
nm_pif_qflush(if_t ifp)
{
}

static void
nm_pif_init(void *arg)
{
}

static int
nm_pif_ioctl(if_t ifp, u_long cmd, caddr_t data)
{
	switch (cmd) {
	case SIOCSIFFLAGS:
		if (if_getflags(ifp) & IFF_UP)
			if_setdrvflagbits(ifp, IFF_DRV_RUNNING, 0);
		else
			if_setdrvflagbits(ifp, 0, IFF_DRV_RUNNING);
		return (0);
	case SIOCADDMULTI:
	case SIOCDELMULTI:
		return (0);
	default:
		return (ether_ioctl(ifp, cmd, data));
	}
}

/*
 * An interface is departing: if it is one of ours still listed, someone
 * else detaches it (and frees the ifnet); forget it.  Our own DELIF and
 * unload unlink theirs before ether_ifdetach, so they are not found here.
 */
static void
nm_pif_forget(if_t ifp)
{
	struct nm_pif *pif;

	sx_xlock(&nm_gna_sx);
	LIST_FOREACH(pif, &nm_pif_list, link) {
		if (pif->ifp == ifp) {
			LIST_REMOVE(pif, link);
			free(pif, M_NETMAP);
			break;
		}
	}
	sx_xunlock(&nm_gna_sx);
}

static void
nm_pif_destroy(struct nm_pif *pif)
{
	ether_ifdetach(pif->ifp);
	if_free(pif->ifp);
	free(pif, M_NETMAP);
}

/* Whether any interface `name` exists in the caller's vnet. */
bool
nm_glue_netdev_exists(const char *name, size_t len)
{
	char buf[IFNAMSIZ];
	if_t ifp;

	if (len == 0 || len >= IFNAMSIZ || memchr(name, 0, len) != NULL)
		return (false);
	memcpy(buf, name, len);
	buf[len] = '\0';
	CURVNET_SET(TD_TO_VNET(curthread));
	ifp = ifunit_ref(buf);
	CURVNET_RESTORE();
	if (ifp != NULL)
		if_rele(ifp);
	return (ifp != NULL);
}

/* Create and attach the Ethernet interface `name`.  0 or an errno. */
int
nm_glue_pif_create(const char *name, size_t len)
{
	struct ether_addr ea;
	struct nm_pif *pif;
	if_t ifp;

	if (len == 0 || len >= IFNAMSIZ || memchr(name, 0, len) != NULL)
		return (EINVAL);
	pif = malloc(sizeof(*pif), M_NETMAP, M_WAITOK | M_ZERO);
	memcpy(pif->name, name, len);
	if (nm_glue_netdev_exists(name, len)) {
		free(pif, M_NETMAP);
		return (EEXIST);
	}
	CURVNET_SET(TD_TO_VNET(curthread));
	ifp = if_alloc(IFT_ETHER);
	if_initname(ifp, pif->name, IF_DUNIT_NONE);
	if_setflags(ifp, IFF_BROADCAST | IFF_SIMPLEX | IFF_MULTICAST);
	if_setinitfn(ifp, nm_pif_init);
	if_setioctlfn(ifp, nm_pif_ioctl);
	if_settransmitfn(ifp, nm_pif_transmit);
	if_setqflushfn(ifp, nm_pif_qflush);
	if_setsoftc(ifp, pif);
	arc4rand(ea.octet, ETHER_ADDR_LEN, 0);
	ea.octet[0] = (ea.octet[0] & ~1) | 2;	/* unicast, local */
	ether_ifattach(ifp, ea.octet);
	CURVNET_RESTORE();
	pif->ifp = ifp;
	sx_xlock(&nm_gna_sx);
	LIST_INSERT_HEAD(&nm_pif_list, pif, link);
	sx_xunlock(&nm_gna_sx);
	return (0);
}

/* Detach the interface made for port `name` (0 also if already gone). */
int
nm_glue_pif_delete(const char *name, size_t len)
{
	struct nm_pif *pif;

	sx_xlock(&nm_gna_sx);
	LIST_FOREACH(pif, &nm_pif_list, link) {
		if (strnlen(pif->name, IFNAMSIZ) == len &&
		    memcmp(pif->name, name, len) == 0) {
			LIST_REMOVE(pif, link);
			break;
		}
	}
	sx_xunlock(&nm_gna_sx);
	/* Departure handlers run inside ether_ifdetach: no lock held. */
	if (pif != NULL)
		nm_pif_destroy(pif);
	return (0);
}

static void
nm_pif_exit(void)
{
	struct nm_pif *pif;

	for (;;) {
		sx_xlock(&nm_gna_sx);
		pif = LIST_FIRST(&nm_pif_list);
		if (pif != NULL)
			LIST_REMOVE(pif, link);
		sx_xunlock(&nm_gna_sx);
		if (pif == NULL)
			break;
		nm_pif_destroy(pif);
	}
}

/* ------------------------------------------------------------------------
 * Module load / unload.
 * ------------------------------------------------------------------------ */
static int
nm_load(void)
{
	struct make_dev_args args;
	int err;

	err = nm_rs_init(nm_param_vals, NM_PARAM_COUNT);
	if (err != 0)
		return (err);
	sx_xlock(&nm_param_lock);
	nm_rs_live = true;
	sx_xunlock(&nm_param_lock);
	nm_departure_tag = EVENTHANDLER_REGISTER(ifnet_departure_event,
	    nm_ifnet_departure, NULL, EVENTHANDLER_PRI_ANY);

	make_dev_args_init(&args);
	args.mda_flags = MAKEDEV_CHECKNAME | MAKEDEV_WAITOK;
	args.mda_devsw = &nm_cdevsw;
	args.mda_uid = UID_ROOT;
	args.mda_gid = GID_WHEEL;
	args.mda_mode = 0600;
	err = make_dev_s(&args, &nm_cdev, "netmap");
	if (err != 0) {
		EVENTHANDLER_DEREGISTER(ifnet_departure_event,
		    nm_departure_tag);
		sx_xlock(&nm_param_lock);
		nm_rs_live = false;
		sx_xunlock(&nm_param_lock);
		nm_rs_exit();
	}
	return (err);
}

static int
nm_unload(void)
{
	mtx_lock(&nm_files_mtx);
	if (nm_nfiles != 0) {
		mtx_unlock(&nm_files_mtx);
		return (EBUSY);
	}
	nm_unloading = true;
	mtx_unlock(&nm_files_mtx);

	/* Waits for threads inside the cdevsw methods. */
	destroy_dev(nm_cdev);
	/* Interfaces of persistent ports, while the handler still runs. */
	nm_pif_exit();
	EVENTHANDLER_DEREGISTER(ifnet_departure_event, nm_departure_tag);
	/* Pending "interface gone" tasks still call into Rust. */
	taskqueue_drain_all(taskqueue_thread);
	sx_xlock(&nm_param_lock);
	nm_rs_live = false;
	sx_xunlock(&nm_param_lock);
	nm_rs_exit();
	return (0);
}

static int
nm_modevent(module_t mod, int what, void *arg)
{
	switch (what) {
	case MOD_LOAD:
		return (nm_load());
	case MOD_QUIESCE:
		return (atomic_load_int(&nm_nfiles) != 0 ? EBUSY : 0);
	case MOD_UNLOAD:
		return (nm_unload());
	default:
		return (EOPNOTSUPP);
	}
}

static moduledata_t nm_moduledata = { "netmap", nm_modevent, NULL };
DECLARE_MODULE(netmap, nm_moduledata, SI_SUB_DRIVERS, SI_ORDER_MIDDLE);
MODULE_VERSION(netmap, 1);

/* ------------------------------------------------------------------------
 * Wrappers called from Rust (os/freebsd/rust/src/ffi.rs).
 * ------------------------------------------------------------------------ */

/* --- memory for Rust's global allocator --------------------------------- */

/*
 * malloc(9) aligns small objects to their power-of-two size class and
 * large ones to a page; malloc_aligned() covers larger alignments up to a
 * page.  M_NOWAIT: Rust may allocate with a mutex held.
 */
#define NM_MALLOC_MINALIGN 16

void *
nm_glue_alloc(size_t size, size_t align, bool zero)
{
	int flags = M_NOWAIT | (zero ? M_ZERO : 0);

	if (align > PAGE_SIZE || size == 0)
		return (NULL);
	if (align <= NM_MALLOC_MINALIGN)
		return (malloc(size, M_NETMAP, flags));
	return (malloc_aligned(roundup2(size, align), align, M_NETMAP,
	    flags));
}

void
nm_glue_free(void *ptr)
{
	free(ptr, M_NETMAP);
}

/* Only used by Rust for align <= NM_MALLOC_MINALIGN. */
void *
nm_glue_realloc(void *ptr, size_t new_size)
{
	return (realloc(ptr, new_size, M_NETMAP, M_NOWAIT));
}

/* --- page clusters (netmap_if / ring / buffer pools) -------------------- */

/*
 * `size` is a multiple of PAGE_SIZE: physically contiguous, page-aligned,
 * zeroed wired pages (contigmalloc), mapped into processes page by page
 * by the device pager above.  free(9) releases them (FreeBSD 15).
 */
void *
nm_glue_cluster_alloc(size_t size)
{
	if (size == 0 || (size & PAGE_MASK) != 0)
		return (NULL);
	return (contigmalloc(size, M_NETMAP, M_NOWAIT | M_ZERO, 0,
	    ~(vm_paddr_t)0, PAGE_SIZE, 0));
}

void
nm_glue_cluster_free(void *ptr, size_t size)
{
	free(ptr, M_NETMAP);
}

/* --- data-path locks: mtx(9), MTX_DEF (taken from ithreads too) ---------- */

void *
nm_glue_spin_alloc(void)
{
	struct mtx *m = malloc(sizeof(*m), M_NETMAP, M_NOWAIT | M_ZERO);

	if (m != NULL)
		mtx_init(m, "netmap ring", NULL, MTX_DEF | MTX_NOWITNESS);
	return (m);
}

void
nm_glue_spin_lock(void *m)
{
	mtx_lock((struct mtx *)m);
}

void
nm_glue_spin_unlock(void *m)
{
	mtx_unlock((struct mtx *)m);
}

void
nm_glue_spin_free(void *m)
{
	mtx_destroy((struct mtx *)m);
	free(m, M_NETMAP);
}

/* --- control-path locks: sx(9), may sleep ------------------------------- */

void *
nm_glue_mutex_alloc(void)
{
	struct sx *s = malloc(sizeof(*s), M_NETMAP, M_NOWAIT | M_ZERO);

	if (s != NULL)
		sx_init_flags(s, "netmap ctl", SX_NOWITNESS);
	return (s);
}

void
nm_glue_mutex_lock(void *s)
{
	sx_xlock((struct sx *)s);
}

void
nm_glue_mutex_unlock(void *s)
{
	sx_xunlock((struct sx *)s);
}

void
nm_glue_mutex_free(void *s)
{
	sx_destroy((struct sx *)s);
	free(s, M_NETMAP);
}

/* --- user memory: 0 or EFAULT ------------------------------------------- */

int
nm_glue_copyin(void *dst, uint64_t src, size_t len)
{
	return (copyin((const void *)(uintptr_t)src, dst, len));
}

int
nm_glue_copyout(uint64_t dst, const void *src, size_t len)
{
	return (copyout(src, (void *)(uintptr_t)dst, len));
}

/* --- time, CPUs, logging ------------------------------------------------- */

void
nm_glue_gettimeofday(int64_t *sec, int64_t *usec)
{
	struct timeval tv;

	microtime(&tv);
	*sec = tv.tv_sec;
	*usec = tv.tv_usec;
}

unsigned int
nm_glue_online_cpus(void)
{
	return (mp_ncpus);
}

/* Bytes of RAM the kernel manages (physmem, in pages). */
uint64_t
nm_glue_total_ram(void)
{
	return ((uint64_t)physmem * PAGE_SIZE);
}

/* level: 0 error, 1 warning, 2 info, 3 debug (syslog only). */
void
nm_glue_log(int level, const char *msg, size_t len)
{
	int n = (int)MIN(len, 1024);

	if (level >= 3)
		log(LOG_DEBUG, "netmap: %.*s\n", n, msg);
	else
		printf("netmap: %.*s\n", n, msg);
}

/* Rust panicked: the message has been logged; this is a kernel bug. */
void
nm_glue_panic(void)
{
	panic("netmap: Rust panic");
}

/* --- kernel threads (Platform::spawn_thread; VALE polling mode) ---------- */

/*
 * A netmap kernel thread: calls nm_rs_thread_run(ctx) until asked to stop;
 * busy: maybe_yield(); idle: sleeps one tick on `t` (a stop wakes it).
 * Bound to `cpu` (>= 0) by itself at start (sched_bind acts on curthread).
 * The flags are under nm_thr_mtx, which outlives every thread, so the
 * stopper may free `t` as soon as it sees `exited`.
 */
struct nm_kthread {
	void *ctx;
	int cpu;
	bool stop;
	bool exited;
};

static struct mtx nm_thr_mtx;
MTX_SYSINIT(nm_thr_mtx, &nm_thr_mtx, "netmap threads", MTX_DEF);

static void
nm_kthread_fn(void *arg)
{
	struct nm_kthread *t = arg;

	if (t->cpu >= 0) {
		thread_lock(curthread);
		sched_bind(curthread, t->cpu);
		thread_unlock(curthread);
	}
	mtx_lock(&nm_thr_mtx);
	while (!t->stop) {
		mtx_unlock(&nm_thr_mtx);
		if (nm_rs_thread_run(t->ctx)) {
			maybe_yield();
			mtx_lock(&nm_thr_mtx);
		} else {
			mtx_lock(&nm_thr_mtx);
			if (!t->stop)
				mtx_sleep(t, &nm_thr_mtx, 0, "nmidle", 1);
		}
	}
	t->exited = true;
	wakeup(&t->exited);
	mtx_unlock(&nm_thr_mtx);
	kthread_exit();
}

/*
 * Start a thread named `name` (truncated to MAXCOMLEN) that runs
 * nm_rs_thread_run(ctx) until nm_glue_thread_stop(); NULL and *err on
 * failure (EINVAL: CPU not present).
 */
void *
nm_glue_thread_start(const char *name, size_t len, int cpu, void *ctx,
    int *err)
{
	struct nm_kthread *t;

	if (cpu >= 0 && (cpu > mp_maxid || CPU_ABSENT(cpu))) {
		*err = EINVAL;
		return (NULL);
	}
	t = malloc(sizeof(*t), M_NETMAP, M_WAITOK | M_ZERO);
	t->ctx = ctx;
	t->cpu = cpu;
	*err = kthread_add(nm_kthread_fn, t, NULL, NULL, 0, 0, "%.*s",
	    (int)MIN(len, MAXCOMLEN), name);
	if (*err != 0) {
		free(t, M_NETMAP);
		return (NULL);
	}
	return (t);
}

/*
 * Stop a thread and wait until it has left nm_rs_thread_run for good.
 * Sleeps; never from the thread itself.  What remains of the thread after
 * the wakeup is its call of kthread_exit() (module text until then).
 */
void
nm_glue_thread_stop(void *arg)
{
	struct nm_kthread *t = arg;

	mtx_lock(&nm_thr_mtx);
	t->stop = true;
	wakeup(t);
	while (!t->exited)
		mtx_sleep(&t->exited, &nm_thr_mtx, 0, "nmstop", 0);
	mtx_unlock(&nm_thr_mtx);
	free(t, M_NETMAP);
}

/* ------------------------------------------------------------------------
 * The sync kernel loop (SYNC_KLOOP_START, netmap-core's kloop.rs) runs in
 * the ioctl of an application thread and sleeps between passes on a
 * "sleeper": a mutex, a flag and msleep_sbt(PCATCH), so that a signal
 * (the process being killed, stopped, traced) ends the sleep.  Eventfds do
 * not exist here: the loop only sleeps a fixed time (or until STOP).
 * ------------------------------------------------------------------------ */

struct nm_sleeper {
	struct mtx	mtx;
	int		woken;
};

void *
nm_glue_sleeper_alloc(void)
{
	struct nm_sleeper *s = malloc(sizeof(*s), M_NETMAP, M_WAITOK | M_ZERO);

	mtx_init(&s->mtx, "netmap kloop", NULL, MTX_DEF);
	return (s);
}

/* Any context that may take a default mutex. */
void
nm_glue_sleeper_wake(void *arg)
{
	struct nm_sleeper *s = arg;

	mtx_lock(&s->mtx);
	s->woken = 1;
	wakeup(s);
	mtx_unlock(&s->mtx);
}

/*
 * Sleep until woken (a wake-up since the last sleep counts), timeout_ns
 * elapsed (at least 1 us), or a signal: 1, 0, or -EINTR.
 */
int
nm_glue_sleeper_sleep(void *arg, uint64_t timeout_ns)
{
	struct nm_sleeper *s = arg;
	sbintime_t sbt = nstosbt(timeout_ns > 1000 ? timeout_ns : 1000);
	int err, ret;

	mtx_lock(&s->mtx);
	err = 0;
	if (!s->woken)
		err = msleep_sbt(s, &s->mtx, PCATCH, "nmkloop", sbt, 0, 0);
	if (s->woken)
		ret = 1;
	else if (err == EINTR || err == ERESTART)
		ret = -EINTR;
	else
		ret = 0;
	s->woken = 0;
	mtx_unlock(&s->mtx);
	return (ret);
}

void
nm_glue_sleeper_free(void *arg)
{
	struct nm_sleeper *s = arg;

	mtx_destroy(&s->mtx);
	free(s, M_NETMAP);
}

/* Sleep about `us` microseconds, without signals (SYNC_KLOOP_STOP). */
void
nm_glue_sleep_us(unsigned int us)
{
	pause_sbt("nmstop", ustosbt(us), 0, 0);
}

/* ------------------------------------------------------------------------
 * EXTMEM (netmap-core's regions.rs): the pages of the calling process
 * behind a user range, held (wired, so resident and never moved, and
 * marked dirty: held for writing) by vm_fault_quick_hold_pages(9), and
 * entered one after the other into a run of kernel virtual addresses, so
 * that the core sees one contiguous cluster.  The pages stay valid when
 * the process unmaps them; they are released with the region.
 * ------------------------------------------------------------------------ */

struct nm_upages {
	size_t		npages;
	vm_offset_t	kva;
	vm_page_t	pages[];
};

/* NULL with *err = errno (EINVAL, EFAULT, ENOMEM). */
void *
nm_glue_pin_user(uint64_t addr, size_t npages, int *err)
{
	struct nm_upages *u;
	vm_size_t len;

	if (npages == 0 || npages > INT_MAX || (addr & PAGE_MASK) != 0) {
		*err = EINVAL;
		return (NULL);
	}
	len = (vm_size_t)npages << PAGE_SHIFT;
	u = malloc(sizeof(*u) + npages * sizeof(u->pages[0]), M_NETMAP,
	    M_NOWAIT | M_ZERO);
	if (u == NULL) {
		*err = ENOMEM;
		return (NULL);
	}
	if (vm_fault_quick_hold_pages(&curproc->p_vmspace->vm_map,
	    (vm_offset_t)addr, len, VM_PROT_READ | VM_PROT_WRITE, u->pages,
	    (int)npages) < 0) {
		free(u, M_NETMAP);
		*err = EFAULT;
		return (NULL);
	}
	u->kva = kva_alloc(len);
	if (u->kva == 0) {
		vm_page_unhold_pages(u->pages, (int)npages);
		free(u, M_NETMAP);
		*err = ENOMEM;
		return (NULL);
	}
	pmap_qenter(u->kva, u->pages, (int)npages);
	u->npages = npages;
	return (u);
}

/* Kernel address of held page `i` (they follow each other). */
void *
nm_glue_upage_addr(void *arg, size_t i)
{
	struct nm_upages *u = arg;

	return (i < u->npages ? (void *)(u->kva + (i << PAGE_SHIFT)) : NULL);
}

/* Same pages, same order (the vm_page pointers identify them). */
bool
nm_glue_upages_same(void *ap, void *bp)
{
	struct nm_upages *a = ap, *b = bp;

	return (a->npages == b->npages &&
	    memcmp(a->pages, b->pages, a->npages * sizeof(a->pages[0])) == 0);
}

/*
 * Unmap and release.  None of it sleeps (the data path's locks are
 * default mutexes, under which a region's last reference may go).
 */
void
nm_glue_unpin_user(void *arg)
{
	struct nm_upages *u = arg;

	pmap_qremove(u->kva, (int)u->npages);
	kva_free(u->kva, (vm_size_t)u->npages << PAGE_SHIFT);
	vm_page_unhold_pages(u->pages, (int)u->npages);
	free(u, M_NETMAP);
}
