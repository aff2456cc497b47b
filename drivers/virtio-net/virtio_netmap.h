/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * virtio-net in netmap native mode: the driver side of the hooks of
 * netmap_native.h, included at the end of a copy of Linux's virtio_net.c
 * (cargo xtask module builds it as virtio_net_netmap.ko; the hook lines it
 * adds to that copy are listed in ci/xtask/src/drivers.rs).
 *
 * netmap (core/src/native.rs) chooses the slot of every descriptor and
 * checks every buffer before it gets here; this file only turns a buffer
 * into a two-entry scatter-gather list (the shared virtio-net header, then
 * the netmap buffer) on the ring's virtqueue, with the descriptor index as
 * the token, and reports used buffers back in order.
 *
 * Entering and leaving netmap mode resets the device (the driver's own
 * suspend/resume path: virtnet_freeze_down, remove_vq_common,
 * virtnet_restore_up), so no buffer of the mode left can still be in the
 * device's hands: the stack's skbs and pages are freed by the driver, and
 * netmap's buffers are only detached (they belong to netmap).
 *
 * While vi->nm_on is set, the NAPI poll of a queue pair hands its rings'
 * interrupts to netmap (which wakes their users, or forwards through the
 * VALE switch the interface is attached to) instead of the stack, and start_xmit,
 * refill and the ethtool/XDP reconfigurations that would touch the rings
 * are refused.
 */

#include "netmap_native.h"

struct virtio_netmap {
	struct netmap_native_ops ops;
	struct netmap_native *nn;
	struct virtnet_info *vi;
	/* Zero: no checksum or segmentation offload asked for. */
	struct virtio_net_hdr_mrg_rxbuf txhdr;
	/* Written by the device for every received frame; never read. */
	struct virtio_net_hdr_mrg_rxbuf rxhdr;
	/* Queue pairs with a TX interrupt for the NAPI poll (bit per pair). */
	unsigned long *tx_pending;
};

/* The token of a buffer is its descriptor index, made non-NULL. */
#define VNM_TOKEN(desc) ((void *)(((unsigned long)(desc) + 1) << 2))
#define VNM_DESC(tok) ((unsigned int)(((unsigned long)(tok) >> 2) - 1))

static struct virtqueue *vnm_vq(struct virtio_netmap *vn, bool tx,
				unsigned int ring)
{
	return tx ? vn->vi->sq[ring].vq : vn->vi->rq[ring].vq;
}

/*
 * A netmap buffer as one scatter-gather entry. Buffers live in netmap's
 * clusters: page allocations (direct map) or, as a fallback, vmalloc, where
 * a buffer must not cross a page (buf_size a divisor of the page size).
 */
static bool vnm_sg_buf(struct scatterlist *sg, void *addr, unsigned int len)
{
	if (is_vmalloc_addr(addr)) {
		if (offset_in_page(addr) + len > PAGE_SIZE)
			return false;
		sg_set_page(sg, vmalloc_to_page(addr), len,
			    offset_in_page(addr));
	} else {
		sg_set_buf(sg, addr, len);
	}
	return true;
}

static bool vnm_post(struct virtio_netmap *vn, bool tx, unsigned int ring,
		     unsigned int desc, void *addr, unsigned int len)
{
	struct virtqueue *vq = vnm_vq(vn, tx, ring);
	struct scatterlist sg[2];

	sg_init_table(sg, 2);
	sg_set_buf(&sg[0], tx ? &vn->txhdr : &vn->rxhdr, vn->vi->hdr_len);
	if (!vnm_sg_buf(&sg[1], addr, len))
		return false;
	if (tx)
		return !virtqueue_add_outbuf(vq, sg, 2, VNM_TOKEN(desc),
					     GFP_ATOMIC);
	return !virtqueue_add_inbuf(vq, sg, 2, VNM_TOKEN(desc), GFP_ATOMIC);
}

static bool vnm_tx_post(void *drv, unsigned int ring, unsigned int desc,
			void *addr, unsigned int len, bool reload)
{
	return vnm_post(drv, true, ring, desc, addr, len);
}

static bool vnm_rx_post(void *drv, unsigned int ring, unsigned int desc,
			void *addr, unsigned int len, bool reload)
{
	return vnm_post(drv, false, ring, desc, addr, len);
}

static void vnm_tx_kick(void *drv, unsigned int ring)
{
	virtqueue_kick(vnm_vq(drv, true, ring));
}

static void vnm_rx_kick(void *drv, unsigned int ring)
{
	virtqueue_kick(vnm_vq(drv, false, ring));
}

static unsigned int vnm_tx_reclaim(void *drv, unsigned int ring)
{
	struct virtqueue *vq = vnm_vq(drv, true, ring);
	unsigned int n = 0, len;

	/*
	 * An interrupt when most of what is in flight has completed. A false
	 * return means completions arrived meanwhile, for which no interrupt
	 * will come: take them too.
	 */
	do {
		while (virtqueue_get_buf(vq, &len))
			n++;
	} while (!virtqueue_enable_cb_delayed(vq));
	return n;
}

static bool vnm_rx_poll(void *drv, unsigned int ring, unsigned int *desc,
			unsigned int *len)
{
	struct virtio_netmap *vn = drv;
	unsigned int l;
	void *tok = virtqueue_get_buf(vnm_vq(vn, false, ring), &l);

	if (!tok)
		return false;
	*desc = VNM_DESC(tok);
	*len = l > vn->vi->hdr_len ? l - vn->vi->hdr_len : 0;
	return true;
}

static bool vnm_intr(void *drv, bool tx, unsigned int ring, bool on)
{
	struct virtqueue *vq = vnm_vq(drv, tx, ring);

	if (on)
		return !virtqueue_enable_cb(vq);
	virtqueue_disable_cb(vq);
	return false;
}

/* Netmap's buffers leave the (reset) device: nothing to free. */
static void vnm_drop_netmap_bufs(struct virtnet_info *vi)
{
	int i;

	for (i = 0; i < vi->max_queue_pairs; i++) {
		while (virtqueue_detach_unused_buf(vi->sq[i].vq))
			;
		while (virtqueue_detach_unused_buf(vi->rq[i].vq))
			;
	}
}

/*
 * remove_vq_common() reset the device, and a reset device has forgotten the
 * features it accepted at probe (QEMU clears them; virtio 1.x §2.1 resets
 * the device's state). The driver's rings still use them (event index,
 * indirect descriptors, mergeable buffers): negotiate them again, as
 * virtio_device_restore() does, before the queues are set up. Without this
 * the device and the driver disagree on notification suppression: the
 * driver reads an avail_event the device never writes, and after its first
 * batch no kick of either ring reaches the device.
 */
static int vnm_features_again(struct virtio_device *vdev)
{
	int err;

	virtio_add_status(vdev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	virtio_add_status(vdev, VIRTIO_CONFIG_S_DRIVER);
	err = vdev->config->finalize_features(vdev);
	if (err)
		return err;
	if (!virtio_has_feature(vdev, VIRTIO_F_VERSION_1))
		return 0;
	virtio_add_status(vdev, VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(vdev->config->get_status(vdev) & VIRTIO_CONFIG_S_FEATURES_OK))
		return -ENODEV;
	return 0;
}

static int vnm_reg(void *drv, bool on)
{
	struct virtio_netmap *vn = drv;
	struct virtnet_info *vi = vn->vi;
	struct virtio_device *vdev = vi->vdev;
	int err;

	if (on == READ_ONCE(vi->nm_on))
		return 0;
	virtnet_freeze_down(vdev);
	if (on) {
		/* Frees the stack's buffers (device reset first). */
		remove_vq_common(vi);
		WRITE_ONCE(vi->nm_on, true);
	} else {
		virtio_reset_device(vdev);
		vnm_drop_netmap_bufs(vi);
		WRITE_ONCE(vi->nm_on, false);
		remove_vq_common(vi);
	}
	err = vnm_features_again(vdev);
	if (err) {
		virtio_add_status(vdev, VIRTIO_CONFIG_S_FAILED);
		netdev_err(vi->dev, "netmap: device refused its features: %d\n",
			   err);
		return err;
	}
	/* virtnet_open() fills the RX rings with skbs only out of netmap mode. */
	err = virtnet_restore_up(vdev);
	if (err) {
		netdev_err(vi->dev, "netmap: device restart failed: %d\n", err);
		return err;
	}
	/* As virtnet_restore(): takes rtnl itself where it needs it. */
	err = virtnet_set_queues(vi, vi->curr_queue_pairs);
	netdev_info(vi->dev, "netmap: native mode %s\n", on ? "on" : "off");
	return err;
}

/*
 * skb_recv_done / skb_xmit_done: true if netmap took the interrupt. Its
 * work runs in the NAPI context of the ring's queue pair (softirq), as in
 * the reference's drivers: there netmap may forward frames through a VALE
 * switch the interface is attached to, which a hard interrupt must not do.
 * A TX interrupt is remembered in the pair's bit; the RX NAPI poll runs the
 * RX side every time (its callback is off once the poll ran, and only an
 * RX sync turns it on again).
 */
static bool virtio_netmap_irq(struct virtnet_info *vi, struct virtqueue *vq,
			      bool tx)
{
	struct virtio_netmap *vn = vi->nm;
	unsigned int q;

	if (!READ_ONCE(vi->nm_on) || !vn)
		return false;
	q = tx ? vq2txq(vq) : vq2rxq(vq);
	virtqueue_disable_cb(vq);
	if (tx)
		set_bit(q, vn->tx_pending);
	napi_schedule(&vi->rq[q].napi);
	return true;
}

/* The NAPI polls in netmap mode: netmap's interrupt work (see above). */
static bool virtio_netmap_napi(struct virtnet_info *vi,
			       struct napi_struct *napi)
{
	struct virtio_netmap *vn = vi->nm;
	int q;

	if (!READ_ONCE(vi->nm_on))
		return false;
	for (q = 0; vn && q < vi->max_queue_pairs; q++) {
		if (napi != &vi->rq[q].napi)
			continue;
		if (test_and_clear_bit(q, vn->tx_pending))
			netmap_native_irq(vn->nn, true, q);
		netmap_native_irq(vn->nn, false, q);
		break;
	}
	napi_complete_done(napi, 0);
	return true;
}

static void virtio_netmap_attach(struct virtnet_info *vi)
{
	struct virtio_netmap *vn = kzalloc(sizeof(*vn), GFP_KERNEL);
	unsigned int rx = virtqueue_get_vring_size(vi->rq[0].vq);
	unsigned int tx = virtqueue_get_vring_size(vi->sq[0].vq);

	if (!vn)
		return;
	vn->tx_pending = bitmap_zalloc(vi->max_queue_pairs, GFP_KERNEL);
	if (!vn->tx_pending) {
		kfree(vn);
		return;
	}
	vn->vi = vi;
	vn->ops.rx_rings = vi->curr_queue_pairs;
	vn->ops.tx_rings = vi->curr_queue_pairs;
	vn->ops.rx_descs = rx;
	vn->ops.tx_descs = tx;
	vn->ops.reg = vnm_reg;
	vn->ops.tx_post = vnm_tx_post;
	vn->ops.tx_kick = vnm_tx_kick;
	vn->ops.tx_reclaim = vnm_tx_reclaim;
	vn->ops.rx_post = vnm_rx_post;
	vn->ops.rx_kick = vnm_rx_kick;
	vn->ops.rx_poll = vnm_rx_poll;
	vn->ops.intr = vnm_intr;
	vn->nn = netmap_native_attach(vi->dev, &vn->ops, vn);
	if (!vn->nn) {
		bitmap_free(vn->tx_pending);
		kfree(vn);
		return;
	}
	vi->nm = vn;
}

/* Before unregister_netdev: netmap leaves native mode (vnm_reg off). */
static void virtio_netmap_detach(struct virtnet_info *vi)
{
	struct virtio_netmap *vn = vi->nm;

	if (!vn)
		return;
	netmap_native_detach(vn->nn);
	vi->nm = NULL;
	bitmap_free(vn->tx_pending);
	kfree(vn);
}
