//! OS network interfaces in netmap mode (NICs through the emulated
//! "generic" adapter or a netmap-aware driver), with their host rings
//! (§6.5, §6.8, §10.3).
//!
//! The core owns the rings and the ring protocol; the OS supplies the
//! device side through [`NetifOps`]: transmitting slots, and pushing
//! received frames into RX rings with [`Adapter::rx_push`] (callable from
//! the OS's receive context: it only takes the kring's data-path lock).
//! Host rings are driven by the core: the host TX ring hands frames to the
//! OS stack with [`NetifOps::host_inject`], the OS pushes frames the stack
//! transmits into the host RX ring with `rx_push`.

#![deny(unsafe_code)]

use crate::adapter::{Adapter, Kind};
use crate::kring::{Dir, Kring, KringOwned, NKR_ON, nm_next, nm_prev, ring_dist};
use crate::name::Name;
use crate::platform::Platform;
use crate::shm::{BufRef, RingPtr, Slot};
use crate::{Errno, Result};
use alloc::sync::Arc;
use core::sync::atomic::Ordering;
use netmap_uapi::{NS_BUF_CHANGED, NS_FORWARD};

/// What the OS reports about a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetifConfig {
    /// Hardware rings, indexed by `Dir` (RX, TX).
    pub rings: [u32; 2],
    /// Slots per ring, indexed by `Dir`.
    pub slots: [u32; 2],
    pub mtu: u32,
    /// Largest frame the device can receive in one buffer (0: unknown).
    pub max_rx_buf: u32,
}

/// The device side of an OS network interface.
pub trait NetifOps<P: Platform>: Send + Sync {
    fn name(&self) -> Name;
    fn config(&self) -> NetifConfig;
    /// Start (`on`) or stop intercepting the device's traffic. Called on
    /// the control path when the port enters or leaves netmap mode.
    fn register(&self, na: &Arc<Adapter<P>>, on: bool) -> Result<()>;
    /// Transmit the frames of `len` bytes in `bufs` (one call per frame,
    /// from the hardware TX ring's txsync). Returns false when the device
    /// cannot take more frames now (the slot stays pending).
    fn transmit(&self, ring: u32, buf: &BufRef<'_>, len: usize) -> bool;
    /// Give a frame to the host stack as if the device had received it.
    fn host_inject(&self, buf: &BufRef<'_>, len: usize) -> Result<()>;
    /// Frames handed to the device by [`transmit`](Self::transmit) from
    /// hardware TX ring `ring` whose transmission has not completed yet
    /// (§6.5: hwtail advances as slots complete). That many of the slots
    /// transmitted last stay kernel-owned. When the count drops the OS
    /// wakes the ring's waiters ([`Adapter::notify`]) so that poll() syncs
    /// again. An OS without completion events keeps the default: every
    /// frame counts as completed once `transmit` returned.
    fn tx_inflight(&self, _ring: u32) -> u32 {
        0
    }
}

/// Looks up OS interfaces by name (in the caller's namespace), and makes
/// the OS interfaces of persistent VALE ports (§8.4).
///
/// The core calls every method with its global lock held (lock order: core
/// global lock, then whatever the OS takes inside, e.g. rtnl on Linux).
pub trait NetifProvider<P: Platform>: Send + Sync {
    /// An interface the core can put in netmap mode, if `name` is one.
    fn lookup(&self, name: &[u8]) -> Option<Arc<dyn NetifOps<P>>>;

    /// Whether an OS interface called `name` exists at all (also one that
    /// [`lookup`](Self::lookup) would not accept, e.g. a loopback device).
    fn exists(&self, name: &[u8]) -> bool {
        self.lookup(name).is_some()
    }

    /// Create the OS interface of persistent VALE port `name` (NEWIF). The
    /// core has checked the name (1..=15 bytes, no `vale` prefix) and that
    /// no interface or port of that name exists. An OS without persistent
    /// ports keeps the default: `EOPNOTSUPP`.
    fn create_persistent(&self, _name: &[u8]) -> Result<()> {
        Err(Errno::EOPNOTSUPP)
    }

    /// Remove the OS interface made by
    /// [`create_persistent`](Self::create_persistent) (DELIF).
    fn delete_persistent(&self, _name: &[u8]) -> Result<()> {
        Err(Errno::EOPNOTSUPP)
    }
}

/// Netif state of an adapter.
pub struct NetifPort<P: Platform> {
    pub ops: Arc<dyn NetifOps<P>>,
    /// The switch ports while the interface is attached to a VALE switch
    /// (§8.5); the kernel then owns its rings.
    pub bwrap: crate::sync::Lock<P::SpinLock, Option<Arc<crate::bwrap::Bwrap<P>>>>,
}

impl<P: Platform> NetifPort<P> {
    pub fn new(ops: Arc<dyn NetifOps<P>>) -> Result<Self> {
        Ok(NetifPort {
            ops,
            bwrap: crate::sync::Lock::new(None).ok_or(Errno::ENOMEM)?,
        })
    }

    /// The attachment to a VALE switch, if any.
    pub fn bwrap(&self) -> Option<Arc<crate::bwrap::Bwrap<P>>> {
        self.bwrap.lock().clone()
    }
}

impl<P: Platform> NetifPort<P> {
    /// txsync: hardware rings transmit through the OS; the host TX ring
    /// hands its frames to the host stack (§6.5).
    pub fn txsync(
        &self,
        na: &Adapter<P>,
        k: &Kring<P>,
        own: &mut KringOwned<P>,
        ring: &RingPtr,
    ) -> Result<()> {
        let n = k.num_slots;
        let head = own.rhead;
        let mut j = k.nr_hwcur.load(Ordering::Relaxed);
        if head >= n || j >= n {
            return Err(Errno::EIO);
        }
        let host = k.id >= na.nrings(Dir::Tx);
        let bsize = na.mem.buf_size() as usize;
        while j != head {
            let s = ring.slot(j);
            let len = s.len as usize;
            let buf = na.mem.buf(s.buf_idx);
            if host {
                if (14..=bsize).contains(&len) {
                    let _ = self.ops.host_inject(&buf, len);
                }
            } else if len <= bsize && !self.ops.transmit(k.id, &buf, len) {
                break;
            }
            if s.flags & NS_BUF_CHANGED != 0 {
                ring.set_slot_flags(j, s.flags & !NS_BUF_CHANGED);
            }
            j = nm_next(j, n);
        }
        k.nr_hwcur.store(j, Ordering::Release);
        // Frames are copied out by the OS: a slot is free again once its
        // frame completed. Completions are counted, not matched to slots
        // (any slot will do: the data was copied), so the slots still in
        // flight are the last ones handed over: hwtail = hwcur - 1 - in
        // flight, never moving backwards (the count may include frames of
        // slots already returned, e.g. from before a ring reinit).
        let old_tail = k.nr_hwtail.load(Ordering::Relaxed);
        let mut tail = nm_prev(j, n);
        if !host && old_tail < n {
            let held = self.ops.tx_inflight(k.id).min(ring_dist(old_tail, tail, n));
            tail = if held > tail {
                tail + n - held
            } else {
                tail - held
            };
        }
        k.nr_hwtail.store(tail, Ordering::Release);
        Ok(())
    }
}

impl<P: Platform> Adapter<P> {
    /// Copy a received frame into RX ring `ring` (hardware rings first,
    /// then host rings). Returns false if the frame was dropped: ring not
    /// active, full, or frame larger than a buffer. Data-path safe: takes
    /// only the kring's `q_lock`.
    pub fn rx_push(&self, ring: u32, frame: &[u8]) -> bool {
        let Some(k) = self.kring(Dir::Rx, ring) else {
            return false;
        };
        let q = k.q_lock.lock();
        if k.flags() & NKR_ON == 0 {
            return false;
        }
        let Some(r) = k.ring() else { return false };
        let n = k.num_slots;
        let hwcur = k.nr_hwcur.load(Ordering::Acquire);
        let hwtail = k.nr_hwtail.load(Ordering::Relaxed);
        if hwcur >= n || hwtail >= n || ring_dist(hwtail, nm_prev(hwcur, n), n) == 0 {
            return false;
        }
        if frame.len() > self.mem.buf_size() as usize {
            return false;
        }
        let s = r.slot(hwtail);
        let b = self.mem.buf(s.buf_idx);
        let len = b.write(0, frame);
        r.set_slot_len_flags(hwtail, len as u16, 0);
        let new_tail = nm_next(hwtail, n);
        k.nr_hwtail.store(new_tail, Ordering::Release);
        crate::monitor::rx_new(self, k, &r, hwtail, new_tail);
        drop(q);
        // An interface attached to a switch forwards at once (or leaves it
        // to its polling thread); otherwise the users are woken.
        if !crate::bwrap::nic_rx(self, k) {
            self.notify(k);
        }
        true
    }

    /// The device has room again after refusing a frame (e.g. a full
    /// queue): wake the users of the hardware TX rings so that they sync
    /// and retry, or retry what a switch left for an attached interface.
    pub fn tx_wake(&self) {
        if let Kind::Netif(ni) = &self.kind
            && let Some(bw) = ni.bwrap()
        {
            crate::bwrap::retry_tx(&bw);
            return;
        }
        for i in 0..self.nrings(Dir::Tx) {
            if let Some(k) = self.kring(Dir::Tx, i) {
                self.notify(k);
            }
        }
    }
}

/// rxsync of a netif ring: frames were pushed by the OS; release
/// [hwcur, head) (same as a VALE port).
pub fn rxsync<P: Platform>(
    na: &Adapter<P>,
    k: &Kring<P>,
    own: &mut KringOwned<P>,
    ring: &RingPtr,
) -> Result<()> {
    crate::vale::rxsync(na, k, own, ring)
}

/// Errors of the OS lookup.
pub fn not_found() -> Errno {
    Errno::ENXIO
}

/// Transparent mode (NS_FORWARD / NR_FORWARD, §6.8), applied by an RX sync
/// of ring `k` of interface `na` to the slots `[hwcur, head)` the user
/// releases (`all`: module parameter `fwd`, every released slot counts):
/// * hardware RX ring: the frames are copied to the host stack and
///   NS_FORWARD is cleared on their slots;
/// * host RX ring, when the file binds every hardware TX ring (`to_nic`):
///   the frames move to free slots of the hardware TX rings (buffer swap,
///   NS_BUF_CHANGED on both slots), whose head and cur advance past them.
///
/// Returns true if frames were moved to TX rings: the caller then runs
/// their txsync. Called with `k`'s busy lock held; a TX ring busy in
/// another context is skipped (its frames stay in the host ring).
#[allow(clippy::too_many_arguments)]
pub fn forward_released<P: Platform>(
    na: &Adapter<P>,
    ni: &NetifPort<P>,
    k: &Kring<P>,
    ring: &RingPtr,
    hwcur: u32,
    head: u32,
    all: bool,
    to_nic: bool,
) -> bool {
    let n = k.num_slots;
    if hwcur >= n || head >= n || hwcur == head {
        return false;
    }
    let marked = |flags: u16| all || flags & NS_FORWARD != 0;
    if k.id < na.nrings(Dir::Rx) {
        let bsize = na.mem.buf_size() as usize;
        let mut j = hwcur;
        while j != head {
            let s = ring.slot(j);
            if marked(s.flags) {
                let len = s.len as usize;
                if (14..=bsize).contains(&len) {
                    let _ = ni.ops.host_inject(&na.mem.buf(s.buf_idx), len);
                }
                if s.flags & NS_FORWARD != 0 {
                    ring.set_slot_flags(j, s.flags & !NS_FORWARD);
                }
            }
            j = nm_next(j, n);
        }
        return false;
    }
    if !to_nic {
        return false;
    }
    let mut j = hwcur;
    let mut moved = false;
    for t in 0..na.nrings(Dir::Tx) {
        // Skip what is not to be forwarded.
        while j != head && !marked(ring.slot(j).flags) {
            j = nm_next(j, n);
        }
        if j == head {
            break;
        }
        let Some(tk) = na.kring(Dir::Tx, t) else {
            continue;
        };
        let Some(town) = tk.owner.try_lock() else {
            continue;
        };
        let Some(tring) = tk.ring() else { continue };
        let tn = tk.num_slots;
        // The user's free slots are [head, tail) of the TX ring; its head
        // must be inside the window the kernel last published.
        let mut dh = tring.head();
        let (rhead, rtail) = (town.rhead, town.rtail);
        if dh >= tn
            || rhead >= tn
            || rtail >= tn
            || ring_dist(rhead, dh, tn) > ring_dist(rhead, rtail, tn)
        {
            continue;
        }
        while j != head && dh != rtail {
            let s = ring.slot(j);
            if marked(s.flags) {
                let d = tring.slot(dh);
                tring.set_slot(
                    dh,
                    Slot {
                        buf_idx: s.buf_idx,
                        len: s.len,
                        flags: NS_BUF_CHANGED,
                        ptr: 0,
                    },
                );
                ring.set_slot(
                    j,
                    Slot {
                        buf_idx: d.buf_idx,
                        len: s.len,
                        flags: (s.flags & !NS_FORWARD) | NS_BUF_CHANGED,
                        ptr: 0,
                    },
                );
                dh = nm_next(dh, tn);
                moved = true;
            }
            j = nm_next(j, n);
        }
        tring.set_head(dh);
        tring.set_cur(dh);
    }
    moved
}
