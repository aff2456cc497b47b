/*
 * opt_global.h for cross-building netmap.ko on Linux (cargo xtask kld):
 * the kernel configuration options that change structure layouts or
 * inline code a module sees.  FreeBSD 15's GENERIC (amd64) has VIMAGE,
 * so CURVNET_SET must really switch the vnet.  On FreeBSD itself
 * bsd.kmod.mk uses the kernel build's own opt_global.h.
 */
#define VIMAGE 1
