//! The VALE switch (§8): a registry of switches, ports by index, the
//! forwarding decision behind the [`Lookup`] trait (a learning bridge by
//! default), and batched forwarding performed inside the sender's txsync.
//!
//! Locking (§8.3): the sender holds its own kring busy lock for the whole
//! txsync; it snapshots the switch's port table under the table spinlock
//! (cloning the `Arc`s of the active ports into scratch space preallocated
//! with the ring, so no allocation happens on the data path), then takes
//! each destination RX kring's `q_lock` while it copies the packets for
//! that ring. A port leaving the switch or its ring being deleted is seen
//! under that lock (`NKR_ON`), and the `Arc` keeps the memory valid.

#![deny(unsafe_code)]

use crate::adapter::{Adapter, Kind};
use crate::kring::{Dir, FtEntry, Kring, KringOwned, NKR_ON, nm_next, nm_prev, ring_dist};
use crate::name::Name;
use crate::platform::Platform;
use crate::shm::RingPtr;
use crate::sync::Lock;
use crate::{Errno, Params, Result};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use netmap_uapi::{NETMAP_MAX_FRAGS, NS_INDIRECT, NS_MOREFRAG};

/// Port indexes 0..253.
pub const NM_BDG_MAXPORTS: usize = 254;
/// Destination code: flood to every port but the source.
pub const NM_BDG_BROADCAST: u8 = 254;
/// Destination code: drop.
pub const NM_BDG_NOPORT: u8 = 255;
/// Upper bound of `bridge_batch`.
pub const NM_BDG_BATCH: u32 = 1024;
/// Scratch entries per sender ring: a batch plus a maximal packet.
pub const NM_BDG_BATCH_MAX: usize = NM_BDG_BATCH as usize + NETMAP_MAX_FRAGS as usize;
/// Size of the learning table.
pub const NM_BDG_HASH: usize = 1024;

/// The forwarding decision of a switch.
///
/// `frame` holds the first bytes of the packet after its virtio-net header
/// (at least the 14-byte Ethernet header, copied out of shared memory), and
/// `src` the index of the sending port. The result is a port index, or
/// [`NM_BDG_BROADCAST`] / [`NM_BDG_NOPORT`].
pub trait Lookup: Send + Sync {
    fn lookup(&self, frame: &[u8], src: u8) -> u8;
    /// A port left the switch (e.g. to forget what was learned about it).
    fn port_removed(&self, _port: u8) {}
}

/// FreeBSD if_bridge / netmap hash of a MAC address (Bob Jenkins' mix).
pub fn mac_hash(addr: &[u8; 6]) -> usize {
    let mut a: u32 = 0x9e37_79b9;
    let mut b: u32 = 0x9e37_79b9;
    let mut c: u32 = 0;
    b = b.wrapping_add((addr[5] as u32) << 8);
    b = b.wrapping_add(addr[4] as u32);
    a = a.wrapping_add((addr[3] as u32) << 24);
    a = a.wrapping_add((addr[2] as u32) << 16);
    a = a.wrapping_add((addr[1] as u32) << 8);
    a = a.wrapping_add(addr[0] as u32);
    macro_rules! step {
        ($x:ident, $y:ident, $z:ident, $op:tt, $s:expr) => {
            $x = $x.wrapping_sub($y);
            $x = $x.wrapping_sub($z);
            $x ^= $z $op $s;
        };
    }
    step!(a, b, c, >>, 13);
    step!(b, c, a, <<, 8);
    step!(c, a, b, >>, 13);
    step!(a, b, c, >>, 12);
    step!(b, c, a, <<, 16);
    step!(c, a, b, >>, 5);
    step!(a, b, c, >>, 3);
    step!(b, c, a, <<, 10);
    step!(c, a, b, >>, 15);
    (c as usize) & (NM_BDG_HASH - 1)
}

fn mac_u64(m: &[u8]) -> u64 {
    let mut v = 0u64;
    for &b in &m[..6] {
        v = (v << 8) | b as u64;
    }
    v
}

const ENTRY_VALID: u64 = 1 << 63;

/// The default lookup: a 1024-entry direct-mapped learning table, no aging,
/// collisions overwrite (§8.3). Entries are atomics: senders on different
/// CPUs learn concurrently without locks, as in the reference.
pub struct LearningBridge {
    /// valid bit | port << 48 | mac
    table: [AtomicU64; NM_BDG_HASH],
    /// Last source MAC learned per port (valid bit | mac).
    last_smac: [AtomicU64; NM_BDG_MAXPORTS],
}

impl Default for LearningBridge {
    fn default() -> Self {
        Self::new()
    }
}

impl LearningBridge {
    pub fn new() -> Self {
        LearningBridge {
            table: [const { AtomicU64::new(0) }; NM_BDG_HASH],
            last_smac: [const { AtomicU64::new(0) }; NM_BDG_MAXPORTS],
        }
    }
}

impl Lookup for LearningBridge {
    fn lookup(&self, frame: &[u8], src: u8) -> u8 {
        if frame.len() < 14 {
            return NM_BDG_NOPORT;
        }
        if frame[6] & 1 == 0 && (src as usize) < NM_BDG_MAXPORTS {
            let smac = mac_u64(&frame[6..12]);
            let last = &self.last_smac[src as usize];
            if last.load(Ordering::Relaxed) != (ENTRY_VALID | smac) {
                let mut s = [0u8; 6];
                s.copy_from_slice(&frame[6..12]);
                let h = mac_hash(&s);
                self.table[h].store(ENTRY_VALID | ((src as u64) << 48) | smac, Ordering::Relaxed);
                last.store(ENTRY_VALID | smac, Ordering::Relaxed);
            }
        }
        if frame[0] & 1 == 0 {
            let mut d = [0u8; 6];
            d.copy_from_slice(&frame[0..6]);
            let e = self.table[mac_hash(&d)].load(Ordering::Relaxed);
            if e & ENTRY_VALID != 0 && e & 0xffff_ffff_ffff == mac_u64(&d) {
                return ((e >> 48) & 0xff) as u8;
            }
        }
        NM_BDG_BROADCAST
    }

    fn port_removed(&self, port: u8) {
        if let Some(l) = self.last_smac.get(port as usize) {
            l.store(0, Ordering::Relaxed);
        }
    }
}

/// Port table of a switch.
pub struct PortTable<P: Platform> {
    pub ports: Vec<Option<Arc<Adapter<P>>>>,
    /// Free-index permutation: `perm[active..]` are the free indexes, the
    /// next one used is `perm[active]` (§8.1).
    perm: [u8; NM_BDG_MAXPORTS],
    pub active: u32,
}

/// A VALE switch.
pub struct Switch<P: Platform> {
    pub name: Name,
    /// Slot in the switch array (`nr_bridge_idx`).
    pub index: u8,
    pub table: Lock<P::SpinLock, PortTable<P>>,
    pub lookup: Box<dyn Lookup>,
}

impl<P: Platform> Switch<P> {
    pub fn new(name: Name, index: u8) -> Result<Self> {
        let mut ports = Vec::new();
        ports
            .try_reserve_exact(NM_BDG_MAXPORTS)
            .map_err(|_| Errno::ENOMEM)?;
        ports.resize_with(NM_BDG_MAXPORTS, || None);
        let mut perm = [0u8; NM_BDG_MAXPORTS];
        for (i, p) in perm.iter_mut().enumerate() {
            *p = i as u8;
        }
        Ok(Switch {
            name,
            index,
            table: Lock::new(PortTable {
                ports,
                perm,
                active: 0,
            })
            .ok_or(Errno::ENOMEM)?,
            lookup: Box::new(LearningBridge::new()),
        })
    }

    /// Add a port; returns its index. `ENOMEM` when the table is full
    /// (`active_ports + 2 < 254` must hold, §8.1).
    pub fn add_port(&self, na: Arc<Adapter<P>>) -> Result<u8> {
        let mut t = self.table.lock();
        if t.active as usize + 2 >= NM_BDG_MAXPORTS {
            return Err(Errno::ENOMEM);
        }
        let idx = t.perm[t.active as usize];
        t.ports[idx as usize] = Some(na);
        t.active += 1;
        Ok(idx)
    }

    /// Remove port `idx`; its index becomes the next one reused.
    pub fn remove_port(&self, idx: u8) -> Option<Arc<Adapter<P>>> {
        let mut t = self.table.lock();
        let na = t.ports.get_mut(idx as usize)?.take()?;
        let active = t.active as usize;
        if let Some(pos) = t.perm[..active].iter().position(|&p| p == idx) {
            // Move idx to the first free position.
            t.perm.swap(pos, active - 1);
            t.active -= 1;
        }
        drop(t);
        self.lookup.port_removed(idx);
        Some(na)
    }

    pub fn active_ports(&self) -> u32 {
        self.table.lock().active
    }

    /// The port named exactly `name` (its name as a switch port, see
    /// [`Adapter::shown_name`]), with its index. Control path: ports join
    /// and leave under the global lock; the table lock is taken per index,
    /// so that no port lock nests inside it.
    pub fn find(&self, name: &[u8]) -> Option<(u8, Arc<Adapter<P>>)> {
        (0..NM_BDG_MAXPORTS).find_map(|i| {
            let na = self.port(i)?;
            (na.shown_name().as_bytes() == name).then_some((i as u8, na))
        })
    }

    /// Port at raw index `idx`.
    pub fn port(&self, idx: usize) -> Option<Arc<Adapter<P>>> {
        self.table.lock().ports.get(idx).cloned().flatten()
    }
}

/// The switch a port is on, and its index there.
pub type Membership<P> = Option<(Arc<Switch<P>>, u8)>;

/// VALE state of an adapter.
pub struct ValePort<P: Platform> {
    /// The switch the port is on, and its index there.
    pub bdg: Lock<P::SpinLock, Membership<P>>,
    /// Destroyed when its last user goes (REGISTER-created ports). The
    /// others are persistent ports (NEWIF), kept until DELIF.
    pub ephemeral: bool,
    /// A persistent port's name since its last VALE_ATTACH, `valeS:P`: the
    /// adapter name shown in VALE_LIST and `ni_name`, kept after a detach
    /// like the reference (§15.13). `None`: never attached.
    pub attached_name: Lock<P::SpinLock, Option<Name>>,
    /// Set for the switch ports of an attached NIC (§8.5): what is
    /// delivered to this port goes to the NIC or its host stack.
    pub hw: Option<crate::bwrap::HwPort<P>>,
}

impl<P: Platform> ValePort<P> {
    pub fn new(ephemeral: bool) -> Result<Self> {
        Ok(ValePort {
            bdg: Lock::new(None).ok_or(Errno::ENOMEM)?,
            ephemeral,
            attached_name: Lock::new(None).ok_or(Errno::ENOMEM)?,
            hw: None,
        })
    }

    /// The switch port of an attached NIC (`host` false) or of its host
    /// stack (`host` true).
    pub fn new_hw(nic: Arc<Adapter<P>>, host: bool) -> Result<Self> {
        Ok(ValePort {
            hw: Some(crate::bwrap::HwPort::new(nic, host)?),
            ..Self::new(false)?
        })
    }

    pub fn switch(&self) -> Option<(Arc<Switch<P>>, u8)> {
        self.bdg.lock().clone()
    }

    /// VALE txsync (§6.5, §8.3): forward [hwcur, head), then the whole ring
    /// is free again.
    pub fn txsync(
        &self,
        na: &Adapter<P>,
        k: &Kring<P>,
        own: &mut KringOwned<P>,
        ring: &RingPtr,
        params: &Params,
    ) -> Result<()> {
        let n = k.num_slots;
        let head = own.rhead;
        let hwcur = k.nr_hwcur.load(Ordering::Relaxed);
        if let Some((sw, me)) = self.switch() {
            let batch = params
                .bridge_batch
                .load(Ordering::Relaxed)
                .clamp(1, NM_BDG_BATCH);
            let src = Source {
                na,
                k,
                ring,
                indirect: true,
                depth: 0,
            };
            forward(&sw, me, &src, own, hwcur, head, batch as usize);
        }
        ring.clear_buf_changed(hwcur, head);
        k.nr_hwcur.store(head, Ordering::Release);
        k.nr_hwtail.store(nm_prev(head, n), Ordering::Release);
        Ok(())
    }
}

/// Allocate the forwarding scratch of a kring that forwards into a switch:
/// a VALE TX kring, or the RX kring of an attached NIC (control path).
pub fn prepare_tx_kring<P: Platform>(k: &Kring<P>) -> Result<()> {
    let mut own = k.owner.try_lock().ok_or(Errno::EBUSY)?;
    if own.ft.capacity() < NM_BDG_BATCH_MAX {
        let mut v = Vec::new();
        v.try_reserve_exact(NM_BDG_BATCH_MAX)
            .map_err(|_| Errno::ENOMEM)?;
        v.resize(NM_BDG_BATCH_MAX, FtEntry::default());
        own.ft = v;
    }
    if own.dsts.capacity() < NM_BDG_MAXPORTS {
        let mut v = Vec::new();
        v.try_reserve_exact(NM_BDG_MAXPORTS)
            .map_err(|_| Errno::ENOMEM)?;
        own.dsts = v;
    }
    Ok(())
}

/// VALE rxsync: release [hwcur, head) (clearing NS_BUF_CHANGED); the tail
/// is advanced by the senders.
pub fn rxsync<P: Platform>(
    _na: &Adapter<P>,
    k: &Kring<P>,
    own: &mut KringOwned<P>,
    ring: &RingPtr,
) -> Result<()> {
    let _q = k.q_lock.lock();
    let head = own.rhead;
    ring.clear_buf_changed(k.nr_hwcur.load(Ordering::Relaxed), head);
    k.nr_hwcur.store(head, Ordering::Release);
    Ok(())
}

/// The ring a switch port forwards from: a VALE port's TX ring, or the RX
/// ring of an attached NIC.
pub struct Source<'a, P: Platform> {
    /// The adapter owning `k` (its region holds the buffers).
    pub na: &'a Adapter<P>,
    pub k: &'a Kring<P>,
    pub ring: &'a RingPtr,
    /// NS_INDIRECT slots may be read from user memory: only in the
    /// sender's own (process) context. Rings filled by the kernel (a NIC's
    /// RX ring, forwarded from softirq context) pass false, and such slots
    /// are sent as they are.
    pub indirect: bool,
    /// How many switches the frames crossed in this call chain before
    /// this one (switches chained through a persistent port attached to
    /// two of them, see `bwrap.rs`); 0 for a sender's own txsync.
    pub depth: u8,
}

/// Forward the slots [hwcur, head) of `src`, in batches, as port `me`.
pub fn forward<P: Platform>(
    sw: &Switch<P>,
    me: u8,
    src: &Source<'_, P>,
    own: &mut KringOwned<P>,
    hwcur: u32,
    head: u32,
    batch: usize,
) {
    let (na, k, ring) = (src.na, src.k, src.ring);
    let n = k.num_slots;
    let buf_size = na.mem.buf_size();
    if own.ft.len() < NM_BDG_BATCH_MAX {
        // Scratch not prepared (cannot happen for a bound VALE TX ring).
        return;
    }
    let mut j = hwcur;
    let mut left = ring_dist(hwcur, head, n);
    while left > 0 {
        // Gather a batch, completing the last packet (up to 64 slots).
        let mut cnt = 0usize;
        let mut pkt_start = 0usize;
        let mut frags = 0u32;
        while left > 0 {
            let s = ring.slot(j);
            let mut len = if u32::from(s.len) > buf_size {
                0
            } else {
                s.len
            };
            let mut flags = s.flags;
            if flags & NS_INDIRECT != 0 && !src.indirect {
                flags &= !NS_INDIRECT;
            } else if flags & NS_INDIRECT != 0 {
                // The payload is at the user address `ptr` (§2.6). We run in
                // the sender's context with no spinlock held, so it is
                // copied here into the slot's own buffer (whose contents an
                // indirect sender does not use); a NULL or faulting pointer
                // makes the slot empty.
                flags &= !NS_INDIRECT;
                if s.ptr == 0
                    || copy_in_user(&na.platform, &na.mem.buf(s.buf_idx), s.ptr, len as usize)
                        .is_err()
                {
                    len = 0;
                }
            }
            frags += 1;
            if frags as usize >= NETMAP_MAX_FRAGS as usize {
                flags &= !NS_MOREFRAG;
            }
            own.ft[cnt] = FtEntry {
                buf_idx: s.buf_idx,
                len,
                flags,
                offset: 0,
                frags: 0,
                dst: NM_BDG_NOPORT,
            };
            cnt += 1;
            j = nm_next(j, n);
            left -= 1;
            if flags & NS_MOREFRAG == 0 {
                own.ft[pkt_start].frags = frags as u8;
                pkt_start = cnt;
                frags = 0;
                if cnt >= batch {
                    break;
                }
            }
        }
        if frags > 0 {
            // Incomplete chain at the end of the batch: truncate it (§6.9).
            own.ft[cnt - 1].flags &= !NS_MOREFRAG;
            own.ft[pkt_start].frags = frags as u8;
        }
        flush(sw, me, na, k, own, cnt, src.depth);
    }
}

/// Decide destinations and deliver one gathered batch `own.ft[..cnt]`.
fn flush<P: Platform>(
    sw: &Switch<P>,
    me: u8,
    na: &Adapter<P>,
    k: &Kring<P>,
    own: &mut KringOwned<P>,
    cnt: usize,
    depth: u8,
) {
    let hdr_len = na.virt_hdr_len.load(Ordering::Relaxed) as usize;
    let mut need_flood = false;
    let mut i = 0usize;
    let mut frame = [0u8; 12 + 14];
    while i < cnt {
        let e = own.ft[i];
        let frags = (e.frags as usize).max(1);
        let mut dst = NM_BDG_NOPORT;
        if e.len as usize >= hdr_len + 14 {
            let b = na.mem.buf(e.buf_idx);
            let got = b.read(e.offset as usize, &mut frame[..hdr_len + 14]);
            if got == hdr_len + 14 {
                dst = sw.lookup.lookup(&frame[hdr_len..hdr_len + 14], me);
            }
        }
        if dst == me {
            dst = NM_BDG_NOPORT;
        }
        if dst == NM_BDG_BROADCAST {
            need_flood = true;
        }
        own.ft[i].dst = dst;
        i += frags;
    }
    // Snapshot the active ports.
    own.dsts.clear();
    {
        let t = sw.table.lock();
        for (idx, p) in t.ports.iter().enumerate() {
            if let Some(p) = p
                && idx as u8 != me
                && own.dsts.len() < own.dsts.capacity()
            {
                own.dsts.push((idx as u8, p.clone()));
            }
        }
    }
    let dsts = core::mem::take(&mut own.dsts);
    for (idx, dna) in dsts.iter() {
        let wanted = need_flood || own.ft[..cnt].iter().any(|e| e.frags != 0 && e.dst == *idx);
        if !wanted {
            continue;
        }
        let nrx = dna.nrings(Dir::Rx);
        if nrx == 0 {
            continue;
        }
        let uring = k.id % nrx;
        deliver(na, dna, uring, own, cnt, depth, |d| {
            d == *idx || (uring == 0 && d == NM_BDG_BROADCAST)
        });
        if uring != 0 && need_flood {
            deliver(na, dna, 0, own, cnt, depth, |d| d == NM_BDG_BROADCAST);
        }
    }
    own.dsts = dsts;
    own.dsts.clear();
}

/// Copy the packets of the batch selected by `sel` into RX ring `r` of `dna`.
fn deliver<P: Platform>(
    na: &Adapter<P>,
    dna: &Adapter<P>,
    r: u32,
    own: &KringOwned<P>,
    cnt: usize,
    depth: u8,
    sel: impl Fn(u8) -> bool,
) {
    let Some(dk) = dna.kring(Dir::Rx, r) else {
        return;
    };
    let q = dk.q_lock.lock();
    if dk.flags() & NKR_ON == 0 {
        return;
    }
    let Some(dring) = dk.ring() else { return };
    let n = dk.num_slots;
    let hwcur = dk.nr_hwcur.load(Ordering::Acquire);
    let mut hwtail = dk.nr_hwtail.load(Ordering::Relaxed);
    if hwcur >= n || hwtail >= n {
        return;
    }
    let dst_buf_size = dna.mem.buf_size() as usize;
    let src_h = na.virt_hdr_len.load(Ordering::Relaxed) as usize;
    let dst_h = dna.virt_hdr_len.load(Ordering::Relaxed) as usize;
    let mut room = ring_dist(hwtail, nm_prev(hwcur, n), n);
    let mut i = 0usize;
    let mut sent = false;
    while i < cnt {
        let e = own.ft[i];
        let frags = (e.frags as usize).max(1);
        if sel(e.dst) && frags as u32 <= room && i + frags <= cnt {
            // Ports with different virtio-net header lengths (§8.3).
            let conv = if src_h != dst_h {
                match HdrConv::new(&na.mem.buf(e.buf_idx), e.offset as usize, src_h, dst_h) {
                    Some(c) => Some(c),
                    None => {
                        i += frags;
                        continue;
                    }
                }
            } else {
                None
            };
            for f in 0..frags {
                let src = own.ft[i + f];
                let ds = dring.slot(hwtail);
                let sbuf = na.mem.buf(src.buf_idx);
                let dbuf = dna.mem.buf(ds.buf_idx);
                let copied = match conv {
                    Some(c) if f == 0 => {
                        c.copy(&dbuf, &sbuf, src.offset as usize, src.len as usize)
                    }
                    _ => {
                        let len = (src.len as usize).min(dst_buf_size);
                        dbuf.copy_from(0, &sbuf, src.offset as usize, len)
                    }
                };
                let mut flags = ((frags as u16) << 8) & 0xff00;
                if f + 1 < frags {
                    flags |= NS_MOREFRAG;
                }
                dring.set_slot_len_flags(hwtail, copied as u16, flags);
                hwtail = nm_next(hwtail, n);
            }
            room -= frags as u32;
            sent = true;
        }
        i += frags;
    }
    if sent {
        let old = dk.nr_hwtail.load(Ordering::Relaxed);
        dk.nr_hwtail.store(hwtail, Ordering::Release);
        crate::monitor::rx_new(dna, dk, &dring, old, hwtail);
    }
    drop(q);
    if sent {
        crate::bwrap::delivered(dna, dk, depth);
    }
}

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM` in the `flags` byte of a virtio-net header.
const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;

/// How the first slot of a packet changes between ports with different
/// virtio-net header lengths (0, 10 or 12, §4.7): the source header is
/// skipped and the destination's is written in front of the frame (the
/// first 10 bytes of the source header, zeros if it had none, and
/// `num_buffers` = 1 in a 12-byte header).
#[derive(Clone, Copy)]
struct HdrConv {
    skip: usize,
    prefix: [u8; 12],
    prefix_len: usize,
}

impl HdrConv {
    /// None if the packet cannot be converted: it asks for offloads
    /// (checksum completion or segmentation) and the destination has no
    /// header to carry them. The reference segments such packets in
    /// software; here they are dropped.
    fn new(first: &crate::shm::BufRef<'_>, off: usize, src_h: usize, dst_h: usize) -> Option<Self> {
        let (src_h, dst_h) = (src_h.min(12), dst_h.min(12));
        let mut hdr = [0u8; 12];
        if first.read(off, &mut hdr[..src_h]) < src_h {
            return None;
        }
        let mut prefix = [0u8; 12];
        if dst_h == 0 {
            if hdr[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 || hdr[1] != 0 {
                return None;
            }
        } else {
            prefix[..10].copy_from_slice(&hdr[..10]);
            if dst_h == 12 {
                prefix[10..12].copy_from_slice(&1u16.to_le_bytes());
            }
        }
        Some(HdrConv {
            skip: src_h,
            prefix,
            prefix_len: dst_h,
        })
    }

    /// Copy the first slot's `len` bytes at `off` of `src` into `dst`,
    /// converted; returns the new length.
    fn copy(
        &self,
        dst: &crate::shm::BufRef<'_>,
        src: &crate::shm::BufRef<'_>,
        off: usize,
        len: usize,
    ) -> usize {
        let p = dst.write(0, &self.prefix[..self.prefix_len]);
        let body = len.saturating_sub(self.skip);
        p + dst.copy_from(p, src, off + self.skip, body)
    }
}

/// Copy `len` bytes from user address `src` into `dst`, through a small
/// bounce buffer (no allocation, small stack frame).
fn copy_in_user<P: Platform>(
    p: &P,
    dst: &crate::shm::BufRef<'_>,
    src: u64,
    len: usize,
) -> Result<()> {
    let mut tmp = [0u8; 256];
    let mut done = 0usize;
    while done < len {
        let c = (len - done).min(tmp.len());
        p.copy_from_user(&mut tmp[..c], src.wrapping_add(done as u64))?;
        dst.write(done, &tmp[..c]);
        done += c;
    }
    Ok(())
}

/// Whether `na` is a VALE port (any kind that lives on a switch).
pub fn is_vale<P: Platform>(na: &Adapter<P>) -> bool {
    matches!(na.kind, Kind::Vale(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_floods_then_learns() {
        let lb = LearningBridge::new();
        let a = [0x02, 0, 0, 0, 0, 0xa];
        let b = [0x02, 0, 0, 0, 0, 0xb];
        let mut f = [0u8; 14];
        f[..6].copy_from_slice(&b);
        f[6..12].copy_from_slice(&a);
        // b unknown: flood; a learned on port 1.
        assert_eq!(lb.lookup(&f, 1), NM_BDG_BROADCAST);
        let mut g = [0u8; 14];
        g[..6].copy_from_slice(&a);
        g[6..12].copy_from_slice(&b);
        assert_eq!(lb.lookup(&g, 2), 1);
        assert_eq!(lb.lookup(&f, 1), 2);
        // Broadcast destination floods; short frames drop.
        let mut bc = f;
        bc[..6].copy_from_slice(&[0xff; 6]);
        assert_eq!(lb.lookup(&bc, 1), NM_BDG_BROADCAST);
        assert_eq!(lb.lookup(&f[..13], 1), NM_BDG_NOPORT);
    }

    #[test]
    fn hash_is_ten_bits() {
        for i in 0..=255u8 {
            assert!(mac_hash(&[i, 1, 2, 3, 4, i]) < NM_BDG_HASH);
        }
    }
}
