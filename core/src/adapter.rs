//! Ports ("netmap adapters"): the rings of a port, binding files to rings
//! (§6.1), ring creation and deletion (§5.7), and the per-port-type sync
//! dispatch.
//!
//! Port types are an enum rather than trait objects: the core knows every
//! software port type (VALE, pipe, null, monitor), and OS-provided NIC
//! adapters will enter through one more variant carrying the OS hooks.

#![deny(unsafe_code)]

use crate::kring::{Dir, Kring, KringOwned, NKR_EXCLUSIVE, NKR_ON};
use crate::mem::{MemObj, NetmapMem};
use crate::name::Name;
use crate::pipe::{PipeEnd, PipePair};
use crate::platform::{Platform, WaitQueue};
use crate::shm::RingPtr;
use crate::sync::Lock;
use crate::vale::ValePort;
use crate::{Errno, Result};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use netmap_uapi::{NetmapIf, RegFlags};

/// What kind of port an adapter is.
pub enum Kind<P: Platform> {
    /// A VALE port (ephemeral, or a plain "VALE-style" port that pipes hang
    /// off when their parent name is not a VALE or OS port).
    Vale(ValePort<P>),
    /// One end of a pipe.
    Pipe(PipeEnd<P>),
    /// A null port (§10.2): syncs do nothing.
    Null,
    /// A monitor of another port (§10.1).
    Monitor(crate::monitor::MonitorPort<P>),
    /// An OS network interface (NIC, emulated adapter), with host rings.
    Netif(crate::netif::NetifPort<P>),
}

/// Sizes of a port, as requested/returned in `nmreq_register`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortConfig {
    /// Hardware rings, indexed by `Dir`.
    pub rings: [u32; 2],
    /// Host rings (0 = the port has none), indexed by `Dir`.
    pub host_rings: [u32; 2],
    /// Slots per ring, indexed by `Dir`.
    pub slots: [u32; 2],
}

/// A port.
pub struct Adapter<P: Platform> {
    pub name: Name,
    pub kind: Kind<P>,
    pub mem: Arc<NetmapMem<P>>,
    pub platform: P,
    pub cfg: PortConfig,
    /// Hardware then host krings, per direction (indexed by `Dir`).
    pub krings: [Vec<Kring<P>>; 2],
    /// Port-wide wait queues (used by files that bind several rings).
    pub si: [P::WaitQueue; 2],
    /// Number of files bound to the port: > 0 means "in netmap mode".
    pub active_fds: AtomicU32,
    /// Virtio-net header length (PORT_HDR_SET).
    pub virt_hdr_len: AtomicU32,
    /// Pipes hanging off this port (control path).
    pub pipes: Lock<P::Mutex, Vec<PipePair<P>>>,
    /// The attachment that makes the kernel own this port, while it lasts:
    /// an OS interface attached to a switch, or a persistent VALE port
    /// attached to a second one (`bwrap.rs`).
    wrapped: Lock<P::SpinLock, Option<Arc<crate::bwrap::Bwrap<P>>>>,
}

/// Ring range bound by a file, per direction: `[first, last)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingRange {
    pub first: u32,
    pub last: u32,
}

impl RingRange {
    pub fn len(&self) -> u32 {
        self.last - self.first
    }
    pub fn is_empty(&self) -> bool {
        self.first >= self.last
    }
    pub fn iter(&self) -> core::ops::Range<u32> {
        self.first..self.last
    }
}

impl<P: Platform> Adapter<P> {
    /// Make a port with its krings (no shared rings yet).
    pub fn new(
        platform: P,
        name: Name,
        kind: Kind<P>,
        mem: Arc<NetmapMem<P>>,
        cfg: PortConfig,
    ) -> Result<Self> {
        let mut krings: [Vec<Kring<P>>; 2] = [Vec::new(), Vec::new()];
        for d in Dir::BOTH {
            let n = cfg.rings[d.idx()] + cfg.host_rings[d.idx()];
            krings[d.idx()]
                .try_reserve_exact(n as usize)
                .map_err(|_| Errno::ENOMEM)?;
            for i in 0..n {
                krings[d.idx()].push(Kring::new(d, i, cfg.slots[d.idx()])?);
            }
        }
        Ok(Adapter {
            name,
            kind,
            mem,
            platform,
            cfg,
            krings,
            si: [
                P::WaitQueue::new().ok_or(Errno::ENOMEM)?,
                P::WaitQueue::new().ok_or(Errno::ENOMEM)?,
            ],
            active_fds: AtomicU32::new(0),
            virt_hdr_len: AtomicU32::new(0),
            pipes: Lock::new(Vec::new()).ok_or(Errno::ENOMEM)?,
            wrapped: Lock::new(None).ok_or(Errno::ENOMEM)?,
        })
    }

    /// The attachment that wraps this port, if any (see `bwrap.rs`).
    pub fn wrapper(&self) -> Option<Arc<crate::bwrap::Bwrap<P>>> {
        self.wrapped.lock().clone()
    }

    /// Whether an attachment wraps this port (the kernel owns it).
    pub fn is_wrapped(&self) -> bool {
        self.wrapped.lock().is_some()
    }

    pub(crate) fn set_wrapper(&self, bw: Option<Arc<crate::bwrap::Bwrap<P>>>) {
        *self.wrapped.lock() = bw;
    }

    pub fn nrings(&self, d: Dir) -> u32 {
        self.cfg.rings[d.idx()]
    }
    pub fn nhost(&self, d: Dir) -> u32 {
        self.cfg.host_rings[d.idx()]
    }
    pub fn kring(&self, d: Dir, i: u32) -> Option<&Kring<P>> {
        self.krings[d.idx()].get(i as usize)
    }
    pub fn in_netmap_mode(&self) -> bool {
        self.active_fds.load(Ordering::Acquire) > 0
    }
    pub fn is_vale(&self) -> bool {
        matches!(self.kind, Kind::Vale(_))
    }

    /// The adapter name users see (VALE_LIST, `ni_name`): `name`, except
    /// for a persistent VALE port that was attached to a switch, which is
    /// then called `valeS:P` (§15.13). `name` stays the plain name by which
    /// `netmap:P` finds the port.
    pub fn shown_name(&self) -> Name {
        match &self.kind {
            Kind::Vale(v) => (*v.attached_name.lock()).unwrap_or(self.name),
            _ => self.name,
        }
    }

    /// Rings a file binds (§6.1).
    pub fn compute_ranges(
        &self,
        mode: u32,
        ringid: u32,
        flags: RegFlags,
    ) -> Result<[RingRange; 2]> {
        use netmap_uapi::*;
        let mut r = [RingRange::default(); 2];
        let has_host = self.nhost(Dir::Tx) > 0 || self.nhost(Dir::Rx) > 0;
        for d in Dir::BOTH {
            let n = self.nrings(d);
            let h = self.nhost(d);
            let range = match mode {
                NR_REG_ALL_NIC | NR_REG_NULL => RingRange { first: 0, last: n },
                NR_REG_SW => {
                    if !has_host {
                        return Err(Errno::EINVAL);
                    }
                    RingRange {
                        first: n,
                        last: n + h,
                    }
                }
                NR_REG_NIC_SW => {
                    if !has_host {
                        return Err(Errno::EINVAL);
                    }
                    RingRange {
                        first: 0,
                        last: n + h,
                    }
                }
                NR_REG_ONE_NIC => {
                    if ringid >= self.nrings(Dir::Tx) && ringid >= self.nrings(Dir::Rx) {
                        return Err(Errno::EINVAL);
                    }
                    let i = if ringid < n { ringid } else { 0 };
                    RingRange {
                        first: i,
                        last: (i + 1).min(n),
                    }
                }
                NR_REG_ONE_SW => {
                    if !has_host {
                        return Err(Errno::EINVAL);
                    }
                    if ringid >= self.nhost(Dir::Tx) && ringid >= self.nhost(Dir::Rx) {
                        return Err(Errno::EINVAL);
                    }
                    let i = if ringid < h { ringid } else { 0 };
                    RingRange {
                        first: n + i,
                        last: (n + i + 1).min(n + h),
                    }
                }
                _ => return Err(Errno::EINVAL),
            };
            let excluded = match d {
                Dir::Tx => flags.contains(RegFlags::RX_RINGS_ONLY),
                Dir::Rx => flags.contains(RegFlags::TX_RINGS_ONLY),
            };
            r[d.idx()] = if excluded {
                RingRange::default()
            } else {
                range
            };
        }
        Ok(r)
    }

    /// Bind `ranges` for one more file: exclusivity check, ring creation
    /// (RX first, then TX, §15.12), NKR_ON. Control path (global lock held).
    pub fn bind_rings(&self, ranges: &[RingRange; 2], exclusive: bool) -> Result<()> {
        self.bind_rings_off(ranges, exclusive)?;
        self.rings_on(ranges);
        Ok(())
    }

    /// [`Adapter::bind_rings`] without NKR_ON: the rings it creates exist
    /// but other ports do not write into them until [`Adapter::rings_on`]
    /// (REGISTER sets them up in between: OFFSETS, §4.11).
    pub fn bind_rings_off(&self, ranges: &[RingRange; 2], exclusive: bool) -> Result<()> {
        for d in Dir::BOTH {
            for i in ranges[d.idx()].iter() {
                let k = self.kring(d, i).ok_or(Errno::EINVAL)?;
                if k.flags() & NKR_EXCLUSIVE != 0 || (exclusive && k.users() > 0) {
                    return Err(Errno::EBUSY);
                }
            }
        }
        let mut done: [RingRange; 2] = [RingRange::default(); 2];
        for d in Dir::BOTH {
            done[d.idx()].first = ranges[d.idx()].first;
            done[d.idx()].last = ranges[d.idx()].first;
            for i in ranges[d.idx()].iter() {
                let k = &self.krings[d.idx()][i as usize];
                if k.users() == 0
                    && let Err(e) = self.create_ring(k)
                {
                    self.unbind_rings(&done, exclusive);
                    return Err(e);
                }
                k.add_user();
                if exclusive {
                    k.set_flag(NKR_EXCLUSIVE);
                }
                done[d.idx()].last = i + 1;
            }
        }
        Ok(())
    }

    fn create_ring(&self, k: &Kring<P>) -> Result<()> {
        match self.kind {
            Kind::Pipe(_) => crate::pipe::create_pair_rings(self, k)?,
            _ => k.create_ring(&self.mem, k.id as u16)?,
        }
        if let Kind::Vale(_) = self.kind
            && k.dir == Dir::Tx
        {
            crate::vale::prepare_tx_kring(k)?;
        }
        Ok(())
    }

    /// NKR_ON on the rings of `ranges` (bound): writers from other ports
    /// may use them from now on.
    pub fn rings_on(&self, ranges: &[RingRange; 2]) {
        for d in Dir::BOTH {
            for i in ranges[d.idx()].iter() {
                if let Some(k) = self.kring(d, i) {
                    let _q = k.q_lock.lock();
                    k.set_flag(NKR_ON);
                }
            }
        }
    }

    /// Undo `bind_rings` for one file.
    pub fn unbind_rings(&self, ranges: &[RingRange; 2], exclusive: bool) {
        for d in Dir::BOTH {
            for i in ranges[d.idx()].iter() {
                let Some(k) = self.kring(d, i) else { continue };
                if exclusive {
                    k.clear_flag(NKR_EXCLUSIVE);
                }
                if k.drop_user() == 0 {
                    match self.kind {
                        Kind::Pipe(_) => crate::pipe::delete_pair_rings(self, k),
                        _ => k.delete_ring(&self.mem),
                    }
                    k.notify();
                }
            }
        }
        self.si[0].wake_all();
        self.si[1].wake_all();
    }

    /// Create the netmap_if of a file (§3.3): ring offsets for the bound
    /// rings, 0 for the others.
    pub fn create_nifp(&self, ranges: &[RingRange; 2]) -> Result<MemObj> {
        let t = self.nrings(Dir::Tx);
        let r = self.nrings(Dir::Rx);
        let ht = self.nhost(Dir::Tx).max(1);
        let hr = self.nhost(Dir::Rx).max(1);
        let total = (t + ht + r + hr) as usize;
        let obj = self.mem.if_alloc(crate::shm::nifp_size(total))?;
        let nifp = crate::shm::nifp_at(obj.kaddr, total);
        let hdr = NetmapIf {
            ni_name: self.shown_name().to_c_array_truncated::<16>(),
            ni_flags: if self.mem.is_private() {
                netmap_uapi::NI_PRIV_MEM
            } else {
                0
            },
            ni_tx_rings: t,
            ni_rx_rings: r,
            ni_bufs_head: 0,
            ni_host_tx_rings: ht,
            ni_host_rx_rings: hr,
            ..Default::default()
        };
        nifp.set_header(&hdr);
        // Entry order: hw TX, host TX, hw RX, host RX.
        let base = [t + ht, 0]; // index of the first entry, per Dir (Rx, Tx)
        for d in Dir::BOTH {
            let slots = match d {
                Dir::Tx => t + ht,
                Dir::Rx => r + hr,
            };
            for i in 0..slots {
                let bound = ranges[d.idx()].iter().contains(&i);
                let ofs = if bound {
                    self.kring(d, i)
                        .and_then(|k| k.ring_offset())
                        .map_or(0, |ro| ro as i64 - obj.offset as i64)
                } else {
                    0
                };
                nifp.set_ring_ofs((base[d.idx()] + i) as usize, ofs);
            }
        }
        Ok(obj)
    }

    /// The shared ring of kring `k` if the ring is active.
    pub fn ring_of(k: &Kring<P>) -> Option<RingPtr> {
        k.ring()
    }

    /// Wake the readers of kring `k` and the port-wide queue.
    pub fn notify(&self, k: &Kring<P>) {
        k.notify();
        self.si[k.dir.idx()].wake_all();
    }

    /// Port-specific txsync (`nm_sync` for TX): hands [hwcur, head) to the
    /// port and updates nr_hwcur/nr_hwtail.
    pub fn txsync(
        &self,
        k: &Kring<P>,
        own: &mut KringOwned<P>,
        ring: &RingPtr,
        params: &crate::Params,
    ) -> Result<()> {
        match &self.kind {
            Kind::Vale(v) => v.txsync(self, k, own, ring, params),
            Kind::Pipe(p) => p.txsync(self, k, own, ring),
            Kind::Null => Ok(()),
            // A monitor cannot inject traffic.
            Kind::Monitor(_) => Err(Errno::EIO),
            Kind::Netif(n) => n.txsync(self, k, own, ring),
        }
    }

    /// Port-specific rxsync: releases [hwcur, head) and picks up new data.
    pub fn rxsync(&self, k: &Kring<P>, own: &mut KringOwned<P>, ring: &RingPtr) -> Result<()> {
        match &self.kind {
            Kind::Vale(_) | Kind::Monitor(_) => crate::vale::rxsync(self, k, own, ring),
            Kind::Netif(_) => crate::netif::rxsync(self, k, own, ring),
            Kind::Pipe(p) => p.rxsync(self, k, own, ring),
            Kind::Null => Ok(()),
        }
    }
}
