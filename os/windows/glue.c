/* SPDX-License-Identifier: BSD-2-Clause
 *
 * netmap.sys: what only C can do on Windows.
 *
 * Rust has no structured exception handling, and the Windows kernel raises
 * an exception (instead of returning an error) when a user address is bad:
 * ProbeForRead/ProbeForWrite, a fault while copying, and
 * MmMapLockedPagesSpecifyCache(UserMode) when the mapping cannot be made.
 * These few calls live here, each inside __try/__except, compiled by clang
 * (which implements SEH for x86_64 Windows targets; the handler is
 * ntoskrnl's __C_specific_handler). Also the wrappers of header-only
 * macros. Everything else is Rust (src/).
 *
 * Contract: every function returns an error instead of raising; all are
 * called at PASSIVE_LEVEL in the context of the process whose user memory
 * is named (IRP_MJ_DEVICE_CONTROL runs in the caller's thread).
 */
#include <ddk/wdm.h>

/* The Rust side declares these sizes (windows-sys); keep them in step. */
_Static_assert(sizeof(void *) == 8, "x86_64 only");
_Static_assert(sizeof(MDL) == 48, "MDL");

/* Copy len bytes from user address src into the kernel buffer dst.
 * 0, or -14 (-EFAULT) if the range is not user memory or faults. */
int nm_glue_copy_from_user(void *dst, unsigned long long src, size_t len)
{
	int r = 0;
	if (len == 0)
		return 0;
	__try {
		ProbeForRead((void *)(ULONG_PTR)src, len, 1);
		RtlCopyMemory(dst, (const void *)(ULONG_PTR)src, len);
	} __except (EXCEPTION_EXECUTE_HANDLER) {
		r = -14;
	}
	return r;
}

/* Copy len bytes from the kernel buffer src to user address dst.
 * 0, or -14 (-EFAULT). */
int nm_glue_copy_to_user(unsigned long long dst, const void *src, size_t len)
{
	int r = 0;
	if (len == 0)
		return 0;
	__try {
		ProbeForWrite((void *)(ULONG_PTR)dst, len, 1);
		RtlCopyMemory((void *)(ULONG_PTR)dst, src, len);
	} __except (EXCEPTION_EXECUTE_HANDLER) {
		r = -14;
	}
	return r;
}

/* Map the pages of mdl into the current process, read/write, cached.
 * The user address, or NULL (out of address space, or the call raised). */
void *nm_glue_map_user(PMDL mdl)
{
	void *va = NULL;
	__try {
		va = MmMapLockedPagesSpecifyCache(mdl, UserMode, MmCached, NULL,
						  FALSE, NormalPagePriority);
	} __except (EXCEPTION_EXECUTE_HANDLER) {
		va = NULL;
	}
	return va;
}

/* KeQuerySystemTime (a macro on x64): 100 ns units since 1601-01-01 UTC. */
long long nm_glue_system_time(void)
{
	LARGE_INTEGER t;
	KeQuerySystemTime(&t);
	return t.QuadPart;
}

/*
 * EXTMEM (netmap-core's regions.rs): an MDL over npages of the calling
 * process's memory at page-aligned addr, its pages locked for writing
 * (MmProbeAndLockPages, which raises on a bad range) and mapped into one
 * run of system addresses.  The pages stay locked when the process unmaps
 * them; they are released with the region.
 */
/* The Rust side's POOL_TAG, "NmRs". */
#define NM_POOL_TAG 0x73526d4eUL
#ifndef MdlMappingNoExecute
#define MdlMappingNoExecute 0x40000000
#endif

struct nm_upages {
	PMDL mdl;
	char *va;
	size_t npages;
};

/* NULL with *err = -errno (-EINVAL 22, -EFAULT 14, -ENOMEM 12). */
void *nm_glue_pin_user(unsigned long long addr, size_t npages, int *err)
{
	struct nm_upages *u;
	PMDL mdl;
	int faulted = 0;

	/* One MDL describes less than 4 GiB. */
	if (npages == 0 || npages >= (0xffffffffULL >> PAGE_SHIFT) ||
	    (addr & (PAGE_SIZE - 1)) != 0) {
		*err = -22;
		return NULL;
	}
	u = ExAllocatePoolWithTag(NonPagedPoolNx, sizeof(*u), NM_POOL_TAG);
	if (u == NULL) {
		*err = -12;
		return NULL;
	}
	mdl = IoAllocateMdl((void *)(ULONG_PTR)addr, (ULONG)(npages << PAGE_SHIFT),
			    FALSE, FALSE, NULL);
	if (mdl == NULL) {
		ExFreePoolWithTag(u, NM_POOL_TAG);
		*err = -12;
		return NULL;
	}
	__try {
		MmProbeAndLockPages(mdl, UserMode, IoWriteAccess);
	} __except (EXCEPTION_EXECUTE_HANDLER) {
		faulted = 1;
	}
	if (faulted) {
		IoFreeMdl(mdl);
		ExFreePoolWithTag(u, NM_POOL_TAG);
		*err = -14;
		return NULL;
	}
	u->va = MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority |
					     MdlMappingNoExecute);
	if (u->va == NULL) {
		MmUnlockPages(mdl);
		IoFreeMdl(mdl);
		ExFreePoolWithTag(u, NM_POOL_TAG);
		*err = -12;
		return NULL;
	}
	u->mdl = mdl;
	u->npages = npages;
	return u;
}

/* System address of locked page i (they follow each other). */
void *nm_glue_upage_addr(void *arg, size_t i)
{
	struct nm_upages *u = arg;

	return i < u->npages ? u->va + (i << PAGE_SHIFT) : NULL;
}

/* Same physical pages, same order (the MDLs' page frame numbers). */
int nm_glue_upages_same(void *ap, void *bp)
{
	struct nm_upages *a = ap, *b = bp;

	return a->npages == b->npages &&
	       RtlCompareMemory(MmGetMdlPfnArray(a->mdl), MmGetMdlPfnArray(b->mdl),
				a->npages * sizeof(PFN_NUMBER)) ==
		       a->npages * sizeof(PFN_NUMBER);
}

/* Unmap (MmUnlockPages removes the system mapping) and unlock; at
 * IRQL <= DISPATCH_LEVEL. */
void nm_glue_unpin_user(void *arg)
{
	struct nm_upages *u = arg;

	MmUnlockPages(u->mdl);
	IoFreeMdl(u->mdl);
	ExFreePoolWithTag(u, NM_POOL_TAG);
}
