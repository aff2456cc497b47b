//! The VALE switch (§8): a registry of switches, ports by index, the
//! forwarding decision behind the [`Lookup`] trait (a learning bridge by
//! default), and forwarding performed inside the sender's txsync.
//!
//! The data path ([`forward`]) has two shapes:
//! - the direct path: a run of single-slot packets that all go to one port
//!   (bulk traffic between two stations, flooding on a switch with one
//!   other port) is copied straight from the sender's ring into that
//!   port's RX ring, with no intermediate table;
//! - the general path (`nm_bdg_preflush`/`nm_bdg_flush`): a batch of slots
//!   is gathered into the ring's scratch table, each packet is decided as
//!   soon as it is complete and threaded onto its destination's queue (one
//!   per port plus one for flooding), then each destination's queue is
//!   delivered in one pass.
//!
//! The learning bridge is called directly (no dynamic dispatch) and decides
//! a run of packets between the same stations with one hash and one
//! learning step. Frames are copied by whole words without a call.
//!
//! Locking (§8.3): the sender holds its own kring busy lock for the whole
//! txsync; it takes the switch's port table spinlock only to clone the
//! `Arc`s of the ports a batch goes to (into scratch space preallocated
//! with the ring: no allocation on the data path), then each destination
//! RX kring's `q_lock` while it copies to that ring. A port leaving the
//! switch or its ring being deleted is seen under that lock (`NKR_ON`), and
//! the `Arc` keeps the memory valid. Receivers release slots without the
//! lock (see [`rxsync`]), so a receiver never waits for a sender's copy.

#![deny(unsafe_code)]

use crate::adapter::{Adapter, Kind};
use crate::kring::{
    Dir, DstQueue, FT_NIL, FtEntry, Kring, KringOwned, NKR_ON, Offsets, nm_next, nm_prev, ring_dist,
};
use crate::name::Name;
use crate::platform::Platform;
use crate::shm::RingPtr;
use crate::sync::Lock;
use crate::{Errno, Params, Result};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use netmap_uapi::{NETMAP_MAX_FRAGS, NS_BUF_CHANGED, NS_INDIRECT, NS_MOREFRAG};

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

/// FreeBSD if_bridge / netmap hash of a MAC address (Bob Jenkins' mix),
/// low 10 bits. `mac` holds the 6 bytes with byte 0 in the low bits (see
/// [`mac_of`]).
#[inline]
pub fn mac_hash(mac: u64) -> usize {
    // a gets bytes 0..3 (byte 0 lowest), b bytes 4 and 5 (byte 5 << 8).
    let mut a: u32 = 0x9e37_79b9u32.wrapping_add(mac as u32);
    let mut b: u32 = 0x9e37_79b9u32.wrapping_add((mac >> 32) as u32 & 0xffff);
    let mut c: u32 = 0;
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

/// A MAC address as the switch handles it: the 6 bytes in a u64, byte 0
/// in the low bits (bit 0 is then the group bit).
pub fn mac_of(m: &[u8; 6]) -> u64 {
    let mut v = [0u8; 8];
    v[..6].copy_from_slice(m);
    u64::from_le_bytes(v)
}

const ENTRY_VALID: u64 = 1 << 63;
const MAC_MASK: u64 = 0xffff_ffff_ffff;

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

    /// The decision for a frame from port `src` with these addresses (see
    /// [`mac_of`]): learn the source, then look the destination up.
    #[inline]
    pub fn decide(&self, dmac: u64, smac: u64, src: u8) -> u8 {
        self.learn(smac, src);
        if dmac & 1 != 0 {
            return NM_BDG_BROADCAST;
        }
        self.find_hashed(dmac).0
    }

    /// Learn that unicast address `smac` is behind port `src`, unless it is
    /// already the last address learned there.
    #[inline]
    pub fn learn(&self, smac: u64, src: u8) {
        if smac & 1 == 0
            && let Some(last) = self.last_smac.get(src as usize)
            && last.load(Ordering::Relaxed) != (ENTRY_VALID | smac)
        {
            self.table[mac_hash(smac)]
                .store(ENTRY_VALID | ((src as u64) << 48) | smac, Ordering::Relaxed);
            last.store(ENTRY_VALID | smac, Ordering::Relaxed);
        }
    }

    /// The port of unicast address `dmac` (or flood), and the table slot
    /// it hashes to.
    #[inline]
    pub fn find_hashed(&self, dmac: u64) -> (u8, usize) {
        let h = mac_hash(dmac);
        (self.find_at(dmac, h), h)
    }

    /// The port of unicast address `dmac` whose table slot `h` is known
    /// (`mac_hash(dmac)`), or flood.
    #[inline]
    fn find_at(&self, dmac: u64, h: usize) -> u8 {
        let e = self.table[h & (NM_BDG_HASH - 1)].load(Ordering::Relaxed);
        if e & ENTRY_VALID != 0 && e & MAC_MASK == dmac {
            ((e >> 48) & 0xff) as u8
        } else {
            NM_BDG_BROADCAST
        }
    }
}

impl Lookup for LearningBridge {
    fn lookup(&self, frame: &[u8], src: u8) -> u8 {
        match frame.get(..12) {
            Some(h) if frame.len() >= 14 => {
                let mut d = [0u8; 6];
                let mut s = [0u8; 6];
                d.copy_from_slice(&h[..6]);
                s.copy_from_slice(&h[6..]);
                self.decide(mac_of(&d), mac_of(&s), src)
            }
            _ => NM_BDG_NOPORT,
        }
    }

    fn port_removed(&self, port: u8) {
        if let Some(l) = self.last_smac.get(port as usize) {
            l.store(0, Ordering::Relaxed);
        }
    }
}

/// The forwarding decision of a switch: the built-in learning bridge,
/// called directly from the data path, or another [`Lookup`].
pub enum SwitchLookup {
    Learning(Box<LearningBridge>),
    Custom(Box<dyn Lookup>),
}

impl SwitchLookup {
    fn port_removed(&self, port: u8) {
        match self {
            SwitchLookup::Learning(l) => l.port_removed(port),
            SwitchLookup::Custom(l) => l.port_removed(port),
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
    pub lookup: SwitchLookup,
}

impl<P: Platform> Switch<P> {
    pub fn new(name: Name, index: u8) -> Result<Self> {
        Self::with_lookup(name, index, SwitchLookup::Learning(Box::default()))
    }

    /// A switch that decides with `lookup`.
    pub fn with_lookup(name: Name, index: u8, lookup: SwitchLookup) -> Result<Self> {
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
            lookup,
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
        let sw = self.switch();
        if let Some((sw, me)) = &sw {
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
            forward(sw, *me, &src, own, hwcur, head, batch as usize);
        } else {
            ring.clear_buf_changed(hwcur, head);
        }
        k.nr_hwcur.store(head, Ordering::Release);
        k.nr_hwtail.store(nm_prev(head, n), Ordering::Release);
        Ok(())
    }
}

/// Allocate the forwarding scratch of a kring that forwards into a switch:
/// a VALE TX kring, or the RX kring of an attached NIC (control path).
pub fn prepare_tx_kring<P: Platform>(k: &Kring<P>) -> Result<()> {
    fn sized<T: Clone>(v: &mut Vec<T>, len: usize, fill: T) -> Result<()> {
        if v.len() < len {
            let mut w = Vec::new();
            w.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
            w.resize(len, fill);
            *v = w;
        }
        Ok(())
    }
    let mut own = k.owner.try_lock().ok_or(Errno::EBUSY)?;
    sized(&mut own.ft, NM_BDG_BATCH_MAX, FtEntry::default())?;
    sized(&mut own.dq, DQ_LEN, DstQueue::EMPTY)?;
    reserve(&mut own.dlist, NM_BDG_MAXPORTS)?;
    reserve(&mut own.dsts, NM_BDG_MAXPORTS)
}

/// Room for `cap` entries in an (empty) scratch list.
fn reserve<T>(v: &mut Vec<T>, cap: usize) -> Result<()> {
    v.clear();
    v.try_reserve_exact(cap).map_err(|_| Errno::ENOMEM)
}

/// Destination queues per sender: one per port index, then the flood queue.
const DQ_LEN: usize = NM_BDG_MAXPORTS + 1;
const DQ_FLOOD: usize = NM_BDG_MAXPORTS;

/// VALE rxsync: release [hwcur, head) (clearing NS_BUF_CHANGED); the tail
/// is advanced by the senders.
///
/// No lock: senders only write the slots in [hwtail, hwcur) and read
/// `nr_hwcur` once per delivery, and the released slots are published by
/// the release store of `nr_hwcur` after their flags were cleared. So a
/// receiver never waits for a sender's copy.
pub fn rxsync<P: Platform>(
    _na: &Adapter<P>,
    k: &Kring<P>,
    own: &mut KringOwned<P>,
    ring: &RingPtr,
) -> Result<()> {
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

/// Forward the slots [hwcur, head) of `src`, in batches, as port `me`
/// (§8.3, `nm_bdg_preflush`). NS_BUF_CHANGED is cleared on the way.
pub fn forward<P: Platform>(
    sw: &Switch<P>,
    me: u8,
    src: &Source<'_, P>,
    own: &mut KringOwned<P>,
    hwcur: u32,
    head: u32,
    batch: usize,
) {
    // The OFFSETS setting is read once per call; a ring without it runs
    // the code without any offset handling (§4.11).
    match src.k.offsets() {
        None => forward_with::<P, false>(sw, me, src, own, hwcur, head, batch, NO_OFFSETS),
        Some(o) => forward_with::<P, true>(sw, me, src, own, hwcur, head, batch, o),
    }
}

/// No OFFSETS: what the `OFS = false` instances get (never read).
const NO_OFFSETS: Offsets = Offsets {
    mask: 0,
    max: 0,
    gap: 0,
};

/// [`forward`] for a ring with (`OFS`) or without offsets: with them, each
/// slot's data starts at its offset, and a length that does not fit behind
/// it makes the slot empty (the reference's check).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_with<P: Platform, const OFS: bool>(
    sw: &Switch<P>,
    me: u8,
    src: &Source<'_, P>,
    own: &mut KringOwned<P>,
    hwcur: u32,
    head: u32,
    batch: usize,
    ofs: Offsets,
) {
    let (na, k, ring) = (src.na, src.k, src.ring);
    let n = k.num_slots;
    if own.ft.len() < NM_BDG_BATCH_MAX || own.dq.len() < DQ_LEN {
        // Scratch not prepared (cannot happen for a bound VALE TX ring).
        return;
    }
    let mut dec = Decider {
        sw,
        me,
        bufs: na.mem.bufs(),
        hdr_len: na.virt_hdr_len.load(Ordering::Relaxed) as usize,
        last_macs: (u64::MAX, u64::MAX),
        last_h: 0,
        cur: None,
    };
    let buf_size = dec.bufs.size();
    let batch = batch.min(NM_BDG_BATCH as usize);
    let mut j = hwcur;
    let mut left = ring_dist(hwcur, head, n);
    while left > 0 {
        // A run of packets to one port goes straight to it (not for a
        // ring with offsets: the general path handles them).
        let done = if OFS {
            0
        } else {
            direct(src, &mut dec, j, left, batch as u32)
        };
        if done > 0 {
            j = (j + done) % n;
            left -= done;
            continue;
        }
        // Gather a batch, completing the last packet (up to 64 slots), and
        // queue each packet to its destination as soon as it is complete.
        let KringOwned { ft, dq, dlist, .. } = &mut *own;
        let mut cnt = 0usize;
        let mut pkt_start = 0usize;
        let mut frags = 0u32;
        while left > 0 && cnt < ft.len() {
            let (buf_idx, slen, mut flags) = ring.slot_desc(j);
            let mut len = if u32::from(slen) > buf_size { 0 } else { slen };
            let mut offset = 0u16;
            if OFS && flags & NS_INDIRECT == 0 {
                let o = ofs.of(ring, j);
                if usize::from(len) > buf_size as usize - o {
                    len = 0;
                } else if len != 0 {
                    // o < buf_size <= 65536.
                    offset = o as u16;
                }
            }
            if flags & (NS_BUF_CHANGED | NS_INDIRECT) != 0 {
                (len, flags) = unusual_slot(src, j, buf_idx, len, flags);
            }
            frags += 1;
            if frags >= NETMAP_MAX_FRAGS {
                flags &= !NS_MOREFRAG;
            }
            ft[cnt] = FtEntry {
                buf_idx,
                len,
                flags,
                offset,
                next: FT_NIL,
                frags: 0,
            };
            cnt += 1;
            j = nm_next(j, n);
            left -= 1;
            if flags & NS_MOREFRAG == 0 {
                ft[pkt_start].frags = frags as u8;
                dec.queue(ft, dq, dlist, pkt_start);
                pkt_start = cnt;
                frags = 0;
                if cnt >= batch {
                    break;
                }
            }
        }
        if frags > 0 {
            // Incomplete chain at the end of the batch: truncate it (§6.9).
            ft[cnt - 1].flags &= !NS_MOREFRAG;
            ft[pkt_start].frags = frags as u8;
            dec.queue(ft, dq, dlist, pkt_start);
        }
        dec.close_queue(dq);
        flush(sw, me, src, own, cnt);
    }
}

/// The direct path: a run of single-slot packets that all go to one port is
/// copied straight from the sender's ring into that port's RX ring, with
/// no gathering and no queues (bulk traffic between two stations, or
/// flooding on a switch with one other port). It stops at the first packet
/// that goes elsewhere, has several slots or NS_INDIRECT, after `max` slots
/// (one lock hold, like a batch), or when the destination needs a header
/// conversion or has offsets; packets beyond the destination's room are dropped, as the
/// general path drops them. Returns the slots consumed from `j`; 0 when the
/// first packet needs the general path.
fn direct<P: Platform>(
    src: &Source<'_, P>,
    dec: &mut Decider<'_, P>,
    j: u32,
    left: u32,
    max: u32,
) -> u32 {
    let (ring, k, na) = (src.ring, src.k, src.na);
    let buf_size = dec.bufs.size();
    let (buf_idx, slen, flags) = ring.slot_desc(j);
    let len = if u32::from(slen) > buf_size { 0 } else { slen };
    if flags & (NS_MOREFRAG | NS_INDIRECT) != 0 {
        return 0;
    }
    let dst = dec.decide(buf_idx, len, 0);
    let target = {
        let t = dec.sw.table.lock();
        let port = match dst {
            NM_BDG_NOPORT => return 0,
            NM_BDG_BROADCAST => {
                // Flooding reaches one port only if it is the only other one
                // (and none if there is no other).
                let mut others = t.perm[..t.active as usize].iter().filter(|&&p| p != dec.me);
                match (others.next(), others.next()) {
                    (None, _) => None,
                    (Some(&p), None) => Some(p),
                    _ => return 0,
                }
            }
            d if d == dec.me => return 0,
            d => Some(d),
        };
        match port {
            None => None,
            Some(port) => {
                let Some(Some(dna)) = t.ports.get(port as usize) else {
                    return 0;
                };
                let nrx = dna.nrings(Dir::Rx);
                if nrx == 0 {
                    return 0;
                }
                let r = if dst == NM_BDG_BROADCAST {
                    0
                } else {
                    k.id % nrx
                };
                Some((dna.clone(), r))
            }
        }
    };
    let sbufs = dec.bufs;
    let first = (buf_idx, len, flags);
    let max = left.min(max);
    let Some((dna, r)) = target else {
        return direct_run(src, dec, dst, j, max, first, &mut |_, _| {});
    };
    if dna.virt_hdr_len.load(Ordering::Relaxed) != na.virt_hdr_len.load(Ordering::Relaxed) {
        return 0;
    }
    let Some(dk) = dna.kring(Dir::Rx, r) else {
        return 0;
    };
    let q = dk.q_lock.lock();
    let Some(dring) = dk.ring().filter(|_| dk.flags() & NKR_ON != 0) else {
        return 0;
    };
    if dk.offsets().is_some() {
        // A destination with offsets (§4.11): the general path (read under
        // the lock, which orders it with NKR_ON).
        return 0;
    }
    let dn = dk.num_slots;
    let hwcur = dk.nr_hwcur.load(Ordering::Acquire);
    let old = dk.nr_hwtail.load(Ordering::Relaxed);
    if hwcur >= dn || old >= dn {
        return 0;
    }
    let dbufs = dna.mem.bufs();
    let mut room = ring_dist(old, nm_prev(hwcur, dn), dn);
    let mut hwtail = old;
    let done = direct_run(src, dec, dst, j, max, first, &mut |buf_idx, len| {
        // Beyond the destination's room, packets are dropped.
        if room > 0 {
            let dbuf = dbufs.get(dring.slot_buf_idx(hwtail));
            let copied = dbuf.copy_frame_from(&sbufs.get(buf_idx), 0, len as usize);
            dring.set_len_flags(hwtail, copied as u16, 1 << 8);
            hwtail = nm_next(hwtail, dn);
            room -= 1;
        }
    });
    if hwtail != old {
        dk.nr_hwtail.store(hwtail, Ordering::Release);
        crate::monitor::rx_new(&dna, dk, &dring, old, hwtail);
    }
    drop(q);
    if hwtail != old {
        crate::bwrap::delivered(&dna, dk, src.depth);
    }
    done
}

/// The packets of a run of the direct path, starting with the one at `j`
/// (`first`: its buffer, length and flags, already decided `dst`), each
/// handed to `out` (buffer, length); returns the slots consumed (at most
/// `max`).
#[inline(always)]
fn direct_run<P: Platform>(
    src: &Source<'_, P>,
    dec: &mut Decider<'_, P>,
    dst: u8,
    mut j: u32,
    max: u32,
    first: (u32, u16, u16),
    out: &mut impl FnMut(u32, u16),
) -> u32 {
    let (ring, n, buf_size) = (src.ring, src.k.num_slots, dec.bufs.size());
    let (mut buf_idx, mut len, mut flags) = first;
    let mut done = 0u32;
    loop {
        if flags & NS_BUF_CHANGED != 0 {
            // The switch copies: a new buffer needs no action (§2.6).
            ring.set_slot_flags(j, flags & !NS_BUF_CHANGED);
        }
        out(buf_idx, len);
        j = nm_next(j, n);
        done += 1;
        if done >= max {
            return done;
        }
        let slen;
        (buf_idx, slen, flags) = ring.slot_desc(j);
        len = if u32::from(slen) > buf_size { 0 } else { slen };
        if flags & (NS_MOREFRAG | NS_INDIRECT) != 0 || dec.decide(buf_idx, len, 0) != dst {
            return done;
        }
    }
}

/// A slot with NS_BUF_CHANGED or NS_INDIRECT about to be forwarded;
/// returns its length and flags for the switch.
///
/// NS_BUF_CHANGED: the switch copies, so a new buffer needs no action
/// (§2.6); the flag is cleared in the ring. NS_INDIRECT: the payload is at
/// the user address in the slot's `ptr`. In the sender's own context (no
/// spinlock held) it is copied into the slot's own buffer, whose contents
/// an indirect sender does not use; a NULL or faulting pointer makes the
/// slot empty. Rings filled by the kernel send such a slot as it is.
#[cold]
fn unusual_slot<P: Platform>(
    src: &Source<'_, P>,
    j: u32,
    buf_idx: u32,
    mut len: u16,
    mut flags: u16,
) -> (u16, u16) {
    if flags & NS_BUF_CHANGED != 0 {
        flags &= !NS_BUF_CHANGED;
        src.ring.set_slot_flags(j, flags);
    }
    if flags & NS_INDIRECT != 0 {
        flags &= !NS_INDIRECT;
        if src.indirect {
            let ptr = src.ring.slot_user_ptr(j);
            let buf = src.na.mem.buf(buf_idx);
            if ptr == 0 || copy_in_user(&src.na.platform, &buf, ptr, len as usize).is_err() {
                len = 0;
            }
        }
    }
    (len, flags)
}

/// The forwarding decision for the packets of one sender's call, and the
/// queue each packet joins.
struct Decider<'a, P: Platform> {
    sw: &'a Switch<P>,
    me: u8,
    bufs: crate::mem::Bufs<'a>,
    hdr_len: usize,
    /// The (destination, source) addresses of the last packet decided by
    /// the learning bridge, and the table slot of that destination: a run
    /// of packets between the same stations is learned and hashed once.
    last_macs: (u64, u64),
    last_h: usize,
    /// The queue the last packet joined and its last entry (the queue's
    /// `tail` in `dq` is written when another queue is used).
    cur: Option<(usize, u16)>,
}

impl<P: Platform> Decider<'_, P> {
    /// The destination of a packet whose first slot holds `len` bytes at
    /// `offset` of buffer `buf_idx` (learning its source on the way):
    /// a port index, [`NM_BDG_BROADCAST`], or [`NM_BDG_NOPORT`] (drop).
    #[inline(always)]
    fn decide(&mut self, buf_idx: u32, len: u16, offset: u16) -> u8 {
        if (len as usize) < self.hdr_len + 14 {
            return NM_BDG_NOPORT;
        }
        let b = self.bufs.get(buf_idx);
        let off = offset as usize + self.hdr_len;
        match &self.sw.lookup {
            SwitchLookup::Learning(l) => match b.macs(off) {
                Some(m) if m == self.last_macs => {
                    if m.0 & 1 != 0 {
                        NM_BDG_BROADCAST
                    } else {
                        // Same slot: only the table entry is read again.
                        l.find_at(m.0, self.last_h)
                    }
                }
                Some((d, s)) => {
                    l.learn(s, self.me);
                    self.last_macs = (d, s);
                    if d & 1 != 0 {
                        NM_BDG_BROADCAST
                    } else {
                        let (dst, h) = l.find_hashed(d);
                        self.last_h = h;
                        dst
                    }
                }
                None => NM_BDG_NOPORT,
            },
            SwitchLookup::Custom(l) => custom_lookup(&**l, &b, off, self.me),
        }
    }

    /// Decide where the packet starting at `ft[i]` goes and append it to
    /// that destination's queue (or drop it).
    #[inline(always)]
    fn queue(&mut self, ft: &mut [FtEntry], dq: &mut [DstQueue], dlist: &mut Vec<u8>, i: usize) {
        let e = ft[i];
        let dst = self.decide(e.buf_idx, e.len, e.offset);
        if dst == self.me || dst == NM_BDG_NOPORT {
            return;
        }
        let q = if dst == NM_BDG_BROADCAST {
            DQ_FLOOD
        } else {
            dst as usize
        };
        let i = i as u16;
        match self.cur {
            Some((cq, tail)) if cq == q => {
                if let Some(t) = ft.get_mut(tail as usize) {
                    t.next = i;
                }
            }
            _ => {
                self.close_queue(dq);
                let Some(dqe) = dq.get_mut(q) else { return };
                if dqe.tail == FT_NIL {
                    dqe.head = i;
                    if q != DQ_FLOOD && dlist.len() < dlist.capacity() {
                        dlist.push(dst);
                    }
                } else if let Some(t) = ft.get_mut(dqe.tail as usize) {
                    t.next = i;
                }
            }
        }
        self.cur = Some((q, i));
    }

    /// Write back the tail of the queue in use.
    fn close_queue(&mut self, dq: &mut [DstQueue]) {
        if let Some((q, tail)) = self.cur.take()
            && let Some(dqe) = dq.get_mut(q)
        {
            dqe.tail = tail;
        }
    }
}

/// A [`Lookup`] other than the built-in learning bridge sees a copy of the
/// first 14 bytes (the Ethernet header) at `off`.
#[cold]
fn custom_lookup(l: &dyn Lookup, b: &crate::shm::BufRef<'_>, off: usize, me: u8) -> u8 {
    let mut frame = [0u8; 14];
    if b.read(off, &mut frame) == frame.len() {
        l.lookup(&frame, me)
    } else {
        NM_BDG_NOPORT
    }
}

/// Deliver the queues of the gathered batch `own.ft[..cnt]` (pass 2 of
/// `nm_bdg_flush`): take the destination ports from the port table, copy
/// to each, reset the queues.
fn flush<P: Platform>(
    sw: &Switch<P>,
    me: u8,
    src: &Source<'_, P>,
    own: &mut KringOwned<P>,
    cnt: usize,
) {
    let flood = own.dq[DQ_FLOOD].head;
    // The destination ports, from the port table: the unicast ones, then
    // (for flooded packets) every other active port.
    {
        let t = sw.table.lock();
        for &d in own.dlist.iter() {
            if let Some(Some(p)) = t.ports.get(d as usize) {
                own.dsts.push((d, p.clone()));
            }
        }
        if flood != FT_NIL {
            for &d in &t.perm[..t.active as usize] {
                if d != me
                    && own.dq[d as usize].head == FT_NIL
                    && own.dsts.len() < own.dsts.capacity()
                    && let Some(Some(p)) = t.ports.get(d as usize)
                {
                    own.dsts.push((d, p.clone()));
                }
            }
        }
    }
    // Flooded packets go to ring 0, unicast ones to the ring numbered like
    // the sender's (mod the count).
    let dsts = core::mem::take(&mut own.dsts);
    for (d, dna) in dsts.iter() {
        let nrx = dna.nrings(Dir::Rx);
        if nrx == 0 {
            continue;
        }
        let uni = own.dq[*d as usize].head;
        let uring = src.k.id % nrx;
        if uni == FT_NIL || uring == 0 {
            deliver(
                src,
                dna,
                uring * u32::from(uni != FT_NIL),
                &own.ft[..cnt],
                uni,
                flood,
            );
        } else {
            deliver(src, dna, uring, &own.ft[..cnt], uni, FT_NIL);
            if flood != FT_NIL {
                deliver(src, dna, 0, &own.ft[..cnt], FT_NIL, flood);
            }
        }
    }
    own.dsts = dsts;
    own.dsts.clear();
    for &d in own.dlist.iter() {
        own.dq[d as usize] = DstQueue::EMPTY;
    }
    own.dq[DQ_FLOOD] = DstQueue::EMPTY;
    own.dlist.clear();
}

/// Copy the packets of the two queues starting at `a` and `b` (merged in
/// batch order) into RX ring `r` of `dna`; packets that do not fit are
/// dropped (no backpressure, §8.3).
fn deliver<P: Platform>(
    src: &Source<'_, P>,
    dna: &Adapter<P>,
    r: u32,
    ft: &[FtEntry],
    a: u16,
    b: u16,
) {
    let Some(dk) = dna.kring(Dir::Rx, r) else {
        return;
    };
    let q = dk.q_lock.lock();
    if dk.flags() & NKR_ON == 0 {
        return;
    }
    let Some(dring) = dk.ring() else { return };
    // The destination's OFFSETS setting, once per delivery (§4.11): under
    // the lock, which orders it with NKR_ON (set once REGISTER applied it).
    let moved = match dk.offsets() {
        None => deliver_into::<P, false>(src, dna, dk, dring, ft, a, b, NO_OFFSETS),
        Some(o) => deliver_into::<P, true>(src, dna, dk, dring, ft, a, b, o),
    };
    drop(q);
    if moved {
        crate::bwrap::delivered(dna, dk, src.depth);
    }
}

/// [`deliver`] into kring `dk` (its `q_lock` held, `dring` its ring),
/// with (`OFS`) or without offsets: with them, a frame is written at the
/// offset the receiving slot holds, and one that does not fit behind it
/// arrives empty. Returns whether frames arrived.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn deliver_into<P: Platform, const OFS: bool>(
    src: &Source<'_, P>,
    dna: &Adapter<P>,
    dk: &Kring<P>,
    dring: RingPtr,
    ft: &[FtEntry],
    mut a: u16,
    mut b: u16,
    ofs: Offsets,
) -> bool {
    let na = src.na;
    let n = dk.num_slots;
    let hwcur = dk.nr_hwcur.load(Ordering::Acquire);
    let old = dk.nr_hwtail.load(Ordering::Relaxed);
    if hwcur >= n || old >= n {
        return false;
    }
    let mut hwtail = old;
    let sbufs = na.mem.bufs();
    let dbufs = dna.mem.bufs();
    let src_h = na.virt_hdr_len.load(Ordering::Relaxed) as usize;
    let dst_h = dna.virt_hdr_len.load(Ordering::Relaxed) as usize;
    let mut room = ring_dist(hwtail, nm_prev(hwcur, n), n);
    loop {
        // FT_NIL is above every index: the smaller head comes first.
        let i = if a < b {
            let i = a;
            a = ft[i as usize].next;
            i
        } else if b != FT_NIL {
            let i = b;
            b = ft[i as usize].next;
            i
        } else {
            break;
        } as usize;
        let e = ft[i];
        let frags = (e.frags as usize).max(1);
        if frags as u32 > room || i + frags > ft.len() {
            continue;
        }
        room -= frags as u32;
        if frags == 1 && src_h == dst_h {
            // The common case: one slot, same header layout.
            let dbuf = dbufs.get(dring.slot_buf_idx(hwtail));
            let sbuf = sbufs.get(e.buf_idx);
            let copied = if OFS {
                copy_at(
                    &dbuf,
                    ofs.of(&dring, hwtail),
                    &sbuf,
                    e.offset as usize,
                    e.len as usize,
                )
            } else {
                dbuf.copy_frame_from(&sbuf, e.offset as usize, e.len as usize)
            };
            dring.set_len_flags(hwtail, copied as u16, 1 << 8);
            hwtail = nm_next(hwtail, n);
            continue;
        }
        // Ports with different virtio-net header lengths (§8.3).
        let conv = if src_h != dst_h {
            match HdrConv::new(&sbufs.get(e.buf_idx), e.offset as usize, src_h, dst_h) {
                Some(c) => Some(c),
                None => {
                    room += frags as u32;
                    continue;
                }
            }
        } else {
            None
        };
        let frag_flags = ((frags as u16) << 8) & 0xff00;
        for (f, s) in ft[i..i + frags].iter().enumerate() {
            let sbuf = sbufs.get(s.buf_idx);
            let dbuf = dbufs.get(dring.slot_buf_idx(hwtail));
            let doff = if OFS { ofs.of(&dring, hwtail) } else { 0 };
            let copied = match conv {
                Some(c) if f == 0 => c.copy(&dbuf, doff, &sbuf, s.offset as usize, s.len as usize),
                _ if OFS => copy_at(&dbuf, doff, &sbuf, s.offset as usize, s.len as usize),
                _ => dbuf.copy_frame_from(&sbuf, s.offset as usize, s.len as usize),
            };
            let more = if f + 1 < frags { NS_MOREFRAG } else { 0 };
            dring.set_len_flags(hwtail, copied as u16, frag_flags | more);
            hwtail = nm_next(hwtail, n);
        }
    }
    if hwtail == old {
        return false;
    }
    dk.nr_hwtail.store(hwtail, Ordering::Release);
    crate::monitor::rx_new(dna, dk, &dring, old, hwtail);
    true
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

    /// Copy the first slot's `len` bytes at `off` of `src` into `dst` at
    /// `doff`, converted; returns the new length (0 if it does not fit
    /// behind `doff`).
    fn copy(
        &self,
        dst: &crate::shm::BufRef<'_>,
        doff: usize,
        src: &crate::shm::BufRef<'_>,
        off: usize,
        len: usize,
    ) -> usize {
        let body = len.saturating_sub(self.skip);
        if doff != 0 && self.prefix_len + body > (dst.size() as usize).saturating_sub(doff) {
            return 0;
        }
        let p = dst.write(doff, &self.prefix[..self.prefix_len]);
        p + dst.copy_from(doff + p, src, off + self.skip, body)
    }
}

/// A frame of `len` bytes at `soff` of `src` written at `doff` of `dst`
/// (OFFSETS); one that does not fit behind `doff` arrives empty, as in the
/// reference. Returns the length written.
fn copy_at(
    dst: &crate::shm::BufRef<'_>,
    doff: usize,
    src: &crate::shm::BufRef<'_>,
    soff: usize,
    len: usize,
) -> usize {
    if len > (dst.size() as usize).saturating_sub(doff) {
        return 0;
    }
    dst.copy_from(doff, src, soff, len)
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

    /// The hash of §8.3 computed byte by byte, as the spec states it.
    fn jenkins_bytes(addr: &[u8; 6]) -> usize {
        let mut a: u32 = 0x9e37_79b9;
        let mut b: u32 = 0x9e37_79b9;
        let mut c: u32 = 0;
        b = b.wrapping_add((addr[5] as u32) << 8);
        b = b.wrapping_add(addr[4] as u32);
        a = a.wrapping_add((addr[3] as u32) << 24);
        a = a.wrapping_add((addr[2] as u32) << 16);
        a = a.wrapping_add((addr[1] as u32) << 8);
        a = a.wrapping_add(addr[0] as u32);
        let mix = |x: &mut u32, y: u32, z: u32, v: u32| {
            *x = x.wrapping_sub(y).wrapping_sub(z) ^ v;
        };
        mix(&mut a, b, c, c >> 13);
        mix(&mut b, c, a, a << 8);
        mix(&mut c, a, b, b >> 13);
        mix(&mut a, b, c, c >> 12);
        mix(&mut b, c, a, a << 16);
        mix(&mut c, a, b, b >> 5);
        mix(&mut a, b, c, c >> 3);
        mix(&mut b, c, a, a << 10);
        mix(&mut c, a, b, b >> 15);
        (c as usize) & (NM_BDG_HASH - 1)
    }

    #[test]
    fn hash_is_the_bytewise_jenkins_mix() {
        let mut x = 0x0123_4567_89ab_cdefu64;
        for i in 0..=255u8 {
            // Pseudo-random addresses plus a few fixed shapes.
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            for m in [
                [i, 1, 2, 3, 4, i],
                [0xff; 6],
                [0, 0, 0, 0, 0, i],
                x.to_le_bytes()[..6].try_into().unwrap(),
            ] {
                assert_eq!(mac_hash(mac_of(&m)), jenkins_bytes(&m), "{m:x?}");
                assert!(mac_hash(mac_of(&m)) < NM_BDG_HASH);
            }
        }
    }
}
