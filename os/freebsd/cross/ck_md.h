/*
 * ck_md.h for cross-building netmap.ko on Linux (cargo xtask kld): the
 * Concurrency Kit machine description that FreeBSD's kernel build
 * generates for amd64.  Debian's libck-dev ships the other ck_*.h headers
 * (configured for Linux userspace); only this one is ours.
 */
#ifndef CK_MD_H
#define CK_MD_H

#define CK_MD_CACHELINE (64)
#define CK_MD_PAGESIZE (4096)
#define CK_MD_RTM_DISABLE
#define CK_MD_LSE_DISABLE
#define CK_MD_POINTER_PACK_DISABLE
#define CK_MD_VMA_BITS_UNKNOWN
#define CK_MD_TSO

#endif /* CK_MD_H */
