//! netmap pipes (§9): two ports `P{id` (master) and `P}id` (slave) whose
//! crossed rings share one set of buffers. txsync copies slot descriptors
//! (zero copy) into the peer's RX ring and publishes only complete packets;
//! rxsync gives the released descriptors back to the sender, which regains
//! the slots at its next sync (end-to-end flow control).

#![deny(unsafe_code)]

use crate::Result;
use crate::adapter::Adapter;
use crate::kring::{Dir, Kring, KringOwned, nm_next, nm_prev, ring_dist};
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

    pub fn txsync(
        &self,
        _na: &Adapter<P>,
        k: &Kring<P>,
        own: &mut KringOwned<P>,
        ring: &RingPtr,
    ) -> Result<()> {
        let n = k.num_slots;
        k.nr_hwtail
            .store(k.pipe_tail.load(Ordering::Acquire), Ordering::Release);
        let hwcur = k.nr_hwcur.load(Ordering::Relaxed);
        let head = own.rhead;
        let mut m = ring_dist(hwcur, head, n);
        if m == 0 {
            return Ok(());
        }
        let Some(peer) = self.peer() else {
            return Ok(());
        };
        let Some(rxk) = Self::peer_kring(&peer, Dir::Tx, k.id) else {
            return Ok(());
        };
        let Some(rxring) = rxk.ring() else {
            return Ok(());
        };
        if rxring.num_slots() != n {
            return Ok(());
        }
        let mut j = hwcur;
        let mut nk = n; // first slot after the last complete packet
        while m > 0 {
            let mut ts = ring.slot(j);
            if ts.flags & NS_BUF_CHANGED != 0 {
                ring.set_slot_flags(j, ts.flags & !NS_BUF_CHANGED);
                ts.flags &= !NS_BUF_CHANGED;
            }
            rxring.set_slot(j, ts);
            let complete = ts.flags & NS_MOREFRAG == 0;
            j = nm_next(j, n);
            if complete {
                nk = j;
            }
            m -= 1;
        }
        k.nr_hwcur.store(j, Ordering::Release);
        if nk < n {
            rxk.pipe_tail.store(nk, Ordering::Release);
            peer.notify(rxk);
        }
        Ok(())
    }

    pub fn rxsync(
        &self,
        _na: &Adapter<P>,
        k: &Kring<P>,
        own: &mut KringOwned<P>,
        ring: &RingPtr,
    ) -> Result<()> {
        let n = k.num_slots;
        k.nr_hwtail
            .store(k.pipe_tail.load(Ordering::Acquire), Ordering::Release);
        let hwcur = k.nr_hwcur.load(Ordering::Relaxed);
        let head = own.rhead;
        let mut m = ring_dist(hwcur, head, n);
        if m == 0 {
            return Ok(());
        }
        let Some(peer) = self.peer() else {
            return Ok(());
        };
        let Some(txk) = Self::peer_kring(&peer, Dir::Rx, k.id) else {
            return Ok(());
        };
        let Some(txring) = txk.ring() else {
            return Ok(());
        };
        if txring.num_slots() != n {
            return Ok(());
        }
        let mut j = hwcur;
        while m > 0 {
            let mut rs = ring.slot(j);
            if rs.flags & NS_BUF_CHANGED != 0 {
                ring.set_slot_flags(j, rs.flags & !NS_BUF_CHANGED);
                rs.flags &= !NS_BUF_CHANGED;
                // Report the swap to the sender.
                rs.flags |= NS_BUF_CHANGED;
            }
            txring.set_slot(j, rs);
            j = nm_next(j, n);
            m -= 1;
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
