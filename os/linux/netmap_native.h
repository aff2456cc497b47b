/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The native-mode hooks netmap.ko exports to netmap-aware NIC drivers
 * (see drivers/README.md). A driver fills a struct netmap_native_ops, calls
 * netmap_native_attach() once its net_device is registered and
 * netmap_native_detach() before unregistering it, and reports interrupts
 * of the rings it runs in netmap mode with netmap_native_irq().
 *
 * netmap (core/src/native.rs) decides everything about slots: a driver
 * only puts the buffers it is given into descriptors. Every buffer handed
 * to tx_post/rx_post is a valid netmap buffer of at most the stated length.
 */
#ifndef NETMAP_NATIVE_H
#define NETMAP_NATIVE_H

#include <linux/netdevice.h>

struct netmap_native_ops {
	/* Hardware rings (queues) and descriptors (= netmap slots) per ring. */
	unsigned int rx_rings, tx_rings, rx_descs, tx_descs;
	/*
	 * Enter (on) or leave netmap mode; process context, may sleep, takes
	 * rtnl itself if it needs it. On return no descriptor holds a buffer
	 * of the mode left. 0 or -errno.
	 */
	int (*reg)(void *drv, bool on);
	/*
	 * Put a buffer (kernel address, length; reload: the descriptor held
	 * another buffer before) in descriptor desc. false: no room.
	 */
	bool (*tx_post)(void *drv, unsigned int ring, unsigned int desc,
			void *addr, unsigned int len, bool reload);
	void (*tx_kick)(void *drv, unsigned int ring);
	/* TX descriptors completed since the last call, in posting order. */
	unsigned int (*tx_reclaim)(void *drv, unsigned int ring);
	bool (*rx_post)(void *drv, unsigned int ring, unsigned int desc,
			void *addr, unsigned int len, bool reload);
	void (*rx_kick)(void *drv, unsigned int ring);
	/* The next filled RX descriptor and its frame length, if any. */
	bool (*rx_poll)(void *drv, unsigned int ring, unsigned int *desc,
			unsigned int *len);
	/* Interrupt on/off; returns true if enabling found work pending. */
	bool (*intr)(void *drv, bool tx, unsigned int ring, bool on);
};

struct netmap_native;

/* NULL on failure (no memory); the device then stays emulated-only. */
struct netmap_native *netmap_native_attach(struct net_device *dev,
					   const struct netmap_native_ops *ops,
					   void *drv);
/* Leaves netmap mode (calling ops->reg(drv, false)) and forgets the device. */
void netmap_native_detach(struct netmap_native *nn);
/*
 * Interrupt of ring `ring` in netmap mode: wakes netmap's users, or, for an
 * interface attached to a VALE switch, forwards its frames. Call it from
 * the driver's NAPI poll (softirq) or process context, never from a hard
 * interrupt handler.
 */
void netmap_native_irq(struct netmap_native *nn, bool tx, unsigned int ring);
/*
 * The device was reset and ring `ring` restarted empty at descriptor
 * `first`: netmap posts its buffers again. Process or softirq context.
 */
bool netmap_native_reset(struct netmap_native *nn, bool tx, unsigned int ring,
			 unsigned int first);

#endif
