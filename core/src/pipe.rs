//! netmap pipes (§9): two ports `P{id` (master) and `P}id` (slave) whose
//! crossed rings share one set of buffers. txsync copies slot descriptors
//! (zero copy) into the peer's RX ring and publishes only complete packets;
//! rxsync gives the released descriptors back to the sender, which regains
//! the slots at its next sync (end-to-end flow control).

#![deny(unsafe_code)]

use crate::Result;
use crate::adapter::Adapter;
use crate::kring::{Dir, Kring, KringOwned, nm_next, nm_prev};
use crate::name::Name;
use crate::platform::Platform;
use crate::shm::RingPtr;
use crate::sync::Once;
use alloc::sync::{Arc, Weak};
use core::sync::atomic::Ordering;
use netmap_uapi::{NS_BUF_CHANGED, NS_MOREFRAG};

/// Maximum number of pipes hanging off one parent.
pub const NM_MAXPIPES: usize = 64;
/// Maximum rings per pipe direction.
pub const NM_PIPE_MAXRINGS: u32 = 256;
/// Maximum slots per pipe ring.
pub const NM_PIPE_MAXSLOTS: u32 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Master,
    Slave,
}

/// Pipe state of an adapter.
pub struct PipeEnd<P: Platform> {
    /// The port the pipe hangs off (kept alive by the pipe).
    pub parent: Arc<Adapter<P>>,
    pub role: Role,
    /// Pipe id (the text after the brace).
    pub id: Name,
    /// The other end, set once both ends exist.
    pub peer: Once<Weak<Adapter<P>>>,
}

/// Both ends of a pipe, as kept in the parent's list.
pub struct PipePair<P: Platform> {
    pub id: Name,
    pub master: Arc<Adapter<P>>,
    pub slave: Arc<Adapter<P>>,
}

impl<P: Platform> PipePair<P> {
    pub fn end(&self, role: Role) -> &Arc<Adapter<P>> {
        match role {
            Role::Master => &self.master,
            Role::Slave => &self.slave,
        }
    }
    /// Neither end is bound by any file.
    pub fn idle(&self) -> bool {
        !self.master.in_netmap_mode() && !self.slave.in_netmap_mode()
    }
}

impl<P: Platform> PipeEnd<P> {
    pub fn peer(&self) -> Option<Arc<Adapter<P>>> {
        self.peer.get().and_then(Weak::upgrade)
    }

    /// The kring connected to kring (`d`, `i`) of this end.
    pub fn peer_kring(peer: &Adapter<P>, d: Dir, i: u32) -> Option<&Kring<P>> {
        peer.kring(d.other(), i)
    }

    /// Common start of both syncs: take the tail the peer published and
    /// return [hwcur, head) with the peer, or None when there is nothing to
    /// move.
    fn begin(&self, k: &Kring<P>, own: &KringOwned<P>) -> Option<(u32, u32, Arc<Adapter<P>>)> {
        k.nr_hwtail
            .store(k.pipe_tail.load(Ordering::Acquire), Ordering::Release);
        let hwcur = k.nr_hwcur.load(Ordering::Relaxed);
        let head = own.rhead;
        // Both indexes come from validated state; the range check keeps the
        // slot loops of the callers finite whatever happens.
        if hwcur == head || hwcur >= k.num_slots || head >= k.num_slots {
            return None;
        }
        Some((hwcur, head, self.peer()?))
    }

    /// The peer's kring connected to `k`, with its ring (same geometry).
    fn peer_ring<'a>(peer: &'a Adapter<P>, k: &Kring<P>) -> Option<(&'a Kring<P>, RingPtr)> {
        let pk = Self::peer_kring(peer, k.dir, k.id)?;
        let r = pk.ring()?;
        (r.num_slots() == k.num_slots).then_some((pk, r))
    }

    /// Copy the descriptors [hwcur, head) into the peer's RX ring and
    /// publish them up to the end of the last complete packet.
    pub fn txsync(
        &self,
        _na: &Adapter<P>,
        k: &Kring<P>,
        own: &mut KringOwned<P>,
        ring: &RingPtr,
    ) -> Result<()> {
        let Some((hwcur, head, peer)) = self.begin(k, own) else {
            return Ok(());
        };
        let Some((rxk, rxring)) = Self::peer_ring(&peer, k) else {
            return Ok(());
        };
        let n = k.num_slots;
        let mut j = hwcur;
        let mut nk = n; // first slot after the last complete packet
        while j != head {
            let mut ts = ring.slot_words(j);
            if ts.flags() & NS_BUF_CHANGED != 0 {
                ts = ts.without_flags(NS_BUF_CHANGED);
                ring.set_slot_flags(j, ts.flags());
            }
            rxring.set_slot_words(j, ts);
            j = nm_next(j, n);
            if ts.flags() & NS_MOREFRAG == 0 {
                nk = j;
            }
        }
        k.nr_hwcur.store(j, Ordering::Release);
        if nk < n {
            // Only this txsync writes the peer's pipe_tail (the busy lock
            // of `k` serializes it): [old, nk) is what becomes visible.
            let old = rxk.pipe_tail.load(Ordering::Relaxed);
            rxk.pipe_tail.store(nk, Ordering::Release);
            // Copy monitors of the peer's RX ring see the frames now, as
            // for every port (not at the receiver's next rxsync).
            crate::monitor::rx_new(&peer, rxk, &rxring, old, nk);
            peer.notify(rxk);
        }
        Ok(())
    }

    /// Give the released descriptors [hwcur, head) back to the sender's TX
    /// ring (swapped buffers propagate, with NS_BUF_CHANGED) and let the
    /// sender reuse the slots.
    pub fn rxsync(
        &self,
        _na: &Adapter<P>,
        k: &Kring<P>,
        own: &mut KringOwned<P>,
        ring: &RingPtr,
    ) -> Result<()> {
        let Some((hwcur, head, peer)) = self.begin(k, own) else {
            return Ok(());
        };
        let Some((txk, txring)) = Self::peer_ring(&peer, k) else {
            return Ok(());
        };
        let n = k.num_slots;
        let mut j = hwcur;
        while j != head {
            let rs = ring.slot_words(j);
            if rs.flags() & NS_BUF_CHANGED != 0 {
                ring.set_slot_flags(j, rs.flags() & !NS_BUF_CHANGED);
            }
            txring.set_slot_words(j, rs);
            j = nm_next(j, n);
        }
        txk.pipe_tail.store(nm_prev(j, n), Ordering::Release);
        k.nr_hwcur.store(j, Ordering::Release);
        peer.notify(txk);
        Ok(())
    }
}

/// Create the shared rings of a connected pair (kring `k` of `na` and its
/// peer kring) if neither exists: one ring gets the buffers, the other one
/// a copy of its slots. Control path.
pub fn create_pair_rings<P: Platform>(na: &Adapter<P>, k: &Kring<P>) -> Result<()> {
    let crate::adapter::Kind::Pipe(pe) = &na.kind else {
        return k.create_ring(&na.mem, k.id as u16);
    };
    let Some(peer) = pe.peer() else {
        return k.create_ring(&na.mem, k.id as u16);
    };
    let Some(pk) = PipeEnd::peer_kring(&peer, k.dir, k.id) else {
        return k.create_ring(&na.mem, k.id as u16);
    };
    if k.ring().is_some() {
        return Ok(());
    }
    if let Some(pr) = pk.ring() {
        // The peer ring exists (kept alive by the peer): share its buffers.
        return k.create_ring_shared(&na.mem, k.id as u16, &pr);
    }
    k.create_ring(&na.mem, k.id as u16)?;
    let r = k.ring().ok_or(crate::Errno::ENOMEM)?;
    if let Err(e) = pk.create_ring_shared(&peer.mem, pk.id as u16, &r) {
        k.delete_ring(&na.mem);
        return Err(e);
    }
    Ok(())
}

/// Delete the rings of a connected pair once neither side binds them.
pub fn delete_pair_rings<P: Platform>(na: &Adapter<P>, k: &Kring<P>) {
    if let crate::adapter::Kind::Pipe(pe) = &na.kind
        && let Some(peer) = pe.peer()
        && let Some(pk) = PipeEnd::peer_kring(&peer, k.dir, k.id)
    {
        if pk.users() > 0 {
            // The peer still uses the pair: keep both rings.
            return;
        }
        k.delete_ring(&na.mem);
        pk.delete_ring(&peer.mem);
        return;
    }
    k.delete_ring(&na.mem);
}
