//! The global context (one per loaded module), per-file state, and the
//! dispatch of ioctl, poll and mmap (§1.2, §4, §6.6, §6.7).
//!
//! Control requests run under one global mutex (`NMG_LOCK` in the
//! reference). The data path (syncs, poll) takes no global lock: it reads
//! the file's binding, which is written once at REGISTER, and serializes
//! on each kring's busy try-lock.

#![deny(unsafe_code)]

use crate::adapter::{Adapter, Kind, PortConfig, RingRange};
use crate::kring::{self, Dir, Kring, NKR_STOPPED};
use crate::mem::{MemBudget, MemObj, MemParams, NetmapMem};
use crate::name::{Name, concat};
use crate::netif::{NetifOps, NetifProvider};
use crate::pipe::{NM_MAXPIPES, NM_PIPE_MAXRINGS, NM_PIPE_MAXSLOTS, PipeEnd, PipePair, Role};
use crate::platform::{Platform, WaitQueue};
use crate::request::Request;
use crate::sync::{Lock, Once};
use crate::vale::{Switch, ValePort};
use crate::{Errno, Params, Result};
use alloc::boxed::Box;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use netmap_uapi::pod::Pod;
use netmap_uapi::portname::{KernelPort, PipeRole, classify, parse_vale_name};
use netmap_uapi::*;

/// Linux poll bits (the OS edge translates if its values differ).
pub const POLLIN: u32 = 0x1;
pub const POLLOUT: u32 = 0x4;
pub const POLLERR: u32 = 0x8;
pub const POLLRDNORM: u32 = 0x40;
pub const POLLWRNORM: u32 = 0x100;

/// Leak-check figures: objects in use in all regions, live regions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemStats {
    pub if_used: u32,
    pub ring_used: u32,
    pub buf_used: u32,
    /// Private regions alive.
    pub private_mems: u32,
    /// VALE switches alive.
    pub switches: u32,
    /// Persistent VALE ports (NEWIF, not yet DELIF).
    pub persistent: u32,
    /// Bytes of the memory budget in use (the global region's share is
    /// reserved at load: this only moves with private regions).
    pub mem_used: u64,
}

/// A file's binding to a port (REGISTER).
pub struct Binding<P: Platform> {
    pub na: Arc<Adapter<P>>,
    pub ranges: [RingRange; 2],
    pub flags: RegFlags,
    pub nifp: MemObj,
    /// Extra buffers were requested (their list is given back on close).
    pub extra: bool,
}

/// Per-open-file state ("priv").
pub struct NetmapPriv<P: Platform> {
    binding: Once<Binding<P>>,
}

impl<P: Platform> NetmapPriv<P> {
    pub fn binding(&self) -> Option<&Binding<P>> {
        self.binding.get()
    }
}

/// State under the global lock.
struct Globals<P: Platform> {
    switches: Vec<Option<Arc<Switch<P>>>>,
    mems: Vec<Weak<NetmapMem<P>>>,
    last_mem_id: u16,
    /// Ports that are neither on a switch nor OS interfaces: parents of
    /// pipes named after a non-existent plain name (§9, §15.6).
    plain: Vec<Arc<Adapter<P>>>,
    /// Adapters of OS interfaces in use (netmap mode, pipes).
    netifs: Vec<Arc<Adapter<P>>>,
    /// Persistent VALE ports (NEWIF, §8.4), by plain name, until DELIF.
    persistent: Vec<Arc<Adapter<P>>>,
}

/// The global context.
pub struct Netmap<P: Platform> {
    platform: P,
    params: Params,
    /// The budget every region charges (module parameter `max_mem_mb`).
    budget: Arc<MemBudget>,
    global_mem: Arc<NetmapMem<P>>,
    g: Lock<P::Mutex, Globals<P>>,
    /// Suffix counter of monitor names (`parent/rt#N`).
    mon_counter: core::sync::atomic::AtomicU32,
    /// The OS's interface lookup, if the OS has network interfaces.
    netif_provider: Once<alloc::boxed::Box<dyn NetifProvider<P>>>,
}

impl<P: Platform> Drop for Netmap<P> {
    /// Interfaces attached to switches belong to the kernel, not to a
    /// file: their attachments end with the context (module unload).
    fn drop(&mut self) {
        let mut g = self.g.lock();
        let wrapped = |na: &Arc<Adapter<P>>| na.wrapper().map(|bw| (na.clone(), bw));
        while let Some((nic, bw)) = g.netifs.iter().chain(g.persistent.iter()).find_map(wrapped) {
            self.bwrap_detach(&mut g, &nic, &bw);
        }
        // Ports left on switches (persistent ports) point back at their
        // switch: break those cycles so that everything is freed.
        let switches = core::mem::take(&mut g.switches);
        for sw in switches.iter().flatten() {
            for idx in 0..crate::vale::NM_BDG_MAXPORTS {
                if let Some(na) = sw.remove_port(idx as u8)
                    && let Kind::Vale(v) = &na.kind
                {
                    v.bdg.lock().take();
                }
            }
        }
    }
}

fn ring_cfg(v: u32, dflt: u32, max: u32) -> u32 {
    if v == 0 { dflt } else { v.min(max) }
}

impl<P: Platform> Netmap<P> {
    pub fn new(platform: P, params: Params) -> Result<Box<Self>> {
        let limit = match params.max_mem {
            0 => crate::mem::default_budget(platform.total_ram()),
            n => n,
        };
        let budget = Arc::new(MemBudget::new(limit));
        let global_mem = Arc::new(NetmapMem::new(
            platform.clone(),
            1,
            &params.global,
            false,
            budget.clone(),
        )?);
        // The global region is built at its first use and kept: its share
        // is set aside now, so that private regions cannot crowd it out.
        if global_mem.reserve().is_err() {
            crate::nm_log!(
                platform,
                Warn,
                "the global region ({} bytes) does not fit in the memory budget ({} bytes): ports that use it get ENOMEM",
                global_mem.footprint(),
                limit
            );
        }
        let mut switches = Vec::new();
        switches
            .try_reserve_exact(params.max_bridges as usize)
            .map_err(|_| Errno::ENOMEM)?;
        switches.resize_with(params.max_bridges as usize, || None);
        let g = Globals {
            switches,
            mems: Vec::new(),
            last_mem_id: 1,
            plain: Vec::new(),
            netifs: Vec::new(),
            persistent: Vec::new(),
        };
        Ok(Box::new(Netmap {
            platform,
            params,
            budget,
            global_mem,
            g: Lock::new(g).ok_or(Errno::ENOMEM)?,
            mon_counter: core::sync::atomic::AtomicU32::new(0),
            netif_provider: Once::new(),
        }))
    }

    /// The OS interface `name` is going away (e.g. `ip link del`): the
    /// device side is told to stop, the port's rings stop (syncs fail with
    /// EIO, poll reports POLLERR) and the port is forgotten; files still
    /// bound to it keep a harmless, dead adapter until they close.
    pub fn netif_gone(&self, name: &[u8]) {
        let mut g = self.g.lock();
        let Some(pos) = g.netifs.iter().position(|na| na.name.as_bytes() == name) else {
            return;
        };
        let na = g.netifs[pos].clone();
        if let Some(bw) = na.wrapper() {
            self.bwrap_detach(&mut g, &na, &bw);
        }
        g.netifs.retain(|p| !Arc::ptr_eq(p, &na));
        if let Kind::Netif(ni) = &na.kind
            && na.in_netmap_mode()
        {
            let _ = ni.ops.register(&na, false);
        }
        for d in Dir::BOTH {
            for k in na.krings[d.idx()].iter() {
                k.set_flag(NKR_STOPPED);
                k.notify();
            }
            na.si[d.idx()].wake_all();
        }
        crate::monitor::parent_gone(&na);
    }

    /// Install the OS's network-interface lookup (once, at module init).
    pub fn set_netif_provider(&self, p: alloc::boxed::Box<dyn NetifProvider<P>>) -> Result<()> {
        self.netif_provider.set(p).map_err(|_| Errno::EBUSY)
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The global region (mem id 1).
    pub fn global_mem(&self) -> &NetmapMem<P> {
        &self.global_mem
    }

    /// The budget of all regions.
    pub fn budget(&self) -> &MemBudget {
        &self.budget
    }
    pub fn platform(&self) -> &P {
        &self.platform
    }

    pub fn open(&self) -> Result<Box<NetmapPriv<P>>> {
        Ok(Box::new(NetmapPriv {
            binding: Once::new(),
        }))
    }

    /// Last close of a file: undo its binding.
    #[allow(clippy::boxed_local)] // the OS hands back the box it got from `open`
    pub fn release(&self, mut np: Box<NetmapPriv<P>>) {
        if let Some(b) = np.binding.take() {
            let mut g = self.g.lock();
            self.unbind(&mut g, b);
        }
    }

    /// Leak-check figures.
    pub fn stats(&self) -> MemStats {
        let mut g = self.g.lock();
        g.mems.retain(|w| w.strong_count() > 0);
        let mut st = MemStats::default();
        let gs = self.global_mem.stats();
        st.if_used = gs.if_used;
        st.ring_used = gs.ring_used;
        st.buf_used = gs.buf_used;
        st.private_mems = g.mems.len() as u32;
        st.switches = g.switches.iter().filter(|s| s.is_some()).count() as u32;
        st.persistent = g.persistent.len() as u32;
        st.mem_used = self.budget.used();
        st
    }

    /// The memory budget and every live region with its pools, as text
    /// lines (see [`MemBudget::write_summary`], [`NetmapMem::write_summary`]).
    pub fn write_pools(&self, w: &mut dyn core::fmt::Write) -> core::fmt::Result {
        self.budget.write_summary(w)?;
        let mut g = self.g.lock();
        g.mems.retain(|m| m.strong_count() > 0);
        let private = g.mems.iter().filter_map(Weak::upgrade);
        for m in core::iter::once(self.global_mem.clone()).chain(private) {
            m.write_summary(w)?;
        }
        Ok(())
    }

    // ------------------------------------------------------------------
    // ioctl

    pub fn ioctl(&self, np: &NetmapPriv<P>, cmd: u32, arg: u64) -> Result<()> {
        match cmd {
            NIOCCTRL => self.ioctl_ctrl(np, arg),
            NIOCTXSYNC => self.sync_ioctl(np, Dir::Tx),
            NIOCRXSYNC => self.sync_ioctl(np, Dir::Rx),
            NIOCREGIF | NIOCGINFO => self.ioctl_legacy(np, cmd, arg),
            NIOCCONFIG => {
                if arg == 0 {
                    return Err(Errno::EINVAL);
                }
                let mut ifr = NmIfreq::zeroed();
                self.platform.copy_from_user(ifr.as_bytes_mut(), arg)?;
                // Plain VALE switches have no external config hook.
                self.platform.copy_to_user(arg, ifr.as_bytes())?;
                Err(Errno::EINVAL)
            }
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    fn ioctl_ctrl(&self, np: &NetmapPriv<P>, arg: u64) -> Result<()> {
        if arg == 0 {
            return Err(Errno::EINVAL);
        }
        let mut hdr = NmreqHeader::zeroed();
        self.platform.copy_from_user(hdr.as_bytes_mut(), arg)?;
        let (mut req, res) = match Request::copy_in(&self.platform, hdr) {
            Ok(mut req) => {
                let r = self.dispatch(np, &mut req);
                (req, r)
            }
            Err((e, Some(req))) => (*req, Err(e)),
            Err((e, None)) => {
                // Nothing but the header was read: give it back unchanged.
                self.platform.copy_to_user(arg, hdr.as_bytes())?;
                return Err(e);
            }
        };
        req.copy_out(&self.platform, arg, res)
    }

    /// Execute a copied-in request (§4.1 step 7).
    pub fn dispatch(&self, np: &NetmapPriv<P>, req: &mut Request) -> Result<()> {
        match req.hdr.nr_reqtype {
            NETMAP_REQ_REGISTER => self.req_register(np, req),
            NETMAP_REQ_PORT_INFO_GET => self.req_port_info(req),
            NETMAP_REQ_VALE_ATTACH => self.req_vale_attach(req),
            NETMAP_REQ_VALE_DETACH => self.req_vale_detach(req),
            NETMAP_REQ_VALE_LIST => self.req_vale_list(req),
            NETMAP_REQ_PORT_HDR_SET => self.req_hdr_set(req),
            NETMAP_REQ_PORT_HDR_GET => self.req_hdr_get(req),
            NETMAP_REQ_VALE_NEWIF => self.req_vale_newif(req),
            NETMAP_REQ_VALE_DELIF => self.req_vale_delif(req),
            NETMAP_REQ_VALE_POLLING_ENABLE | NETMAP_REQ_VALE_POLLING_DISABLE => {
                self.req_polling(req)
            }
            NETMAP_REQ_POOLS_INFO_GET => self.req_pools_info(req),
            NETMAP_REQ_SYNC_KLOOP_START => {
                let st: NmreqSyncKloopStart = req.body();
                if st.sleep_us > 1_000_000 {
                    return Err(Errno::EINVAL);
                }
                if np.binding().is_none() {
                    return Err(Errno::ENXIO);
                }
                // No CSB can be configured yet (CSB mode is not implemented).
                Err(Errno::EINVAL)
            }
            NETMAP_REQ_SYNC_KLOOP_STOP => {
                if np.binding().is_none() {
                    return Err(Errno::ENXIO);
                }
                Ok(())
            }
            NETMAP_REQ_CSB_ENABLE => {
                let Some(i) = req.opt(NETMAP_REQ_OPT_CSB) else {
                    return Err(Errno::EINVAL);
                };
                req.set_opt_status(i, Err(Errno::EOPNOTSUPP));
                Err(Errno::EOPNOTSUPP)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    // ------------------------------------------------------------------
    // Memory regions

    fn find_mem(&self, g: &mut Globals<P>, id: u16) -> Option<Arc<NetmapMem<P>>> {
        if id == 1 {
            return Some(self.global_mem.clone());
        }
        g.mems
            .iter()
            .filter_map(Weak::upgrade)
            .find(|m| m.id() == id)
    }

    /// A new private region (next unused id after the last one, §5.1).
    fn new_private_mem(&self, g: &mut Globals<P>, params: &MemParams) -> Result<Arc<NetmapMem<P>>> {
        g.mems.retain(|w| w.strong_count() > 0);
        let mut id = g.last_mem_id;
        for _ in 0..=u16::MAX as u32 {
            id = id.wrapping_add(1);
            if id == 0 || id == 1 {
                continue;
            }
            if !g
                .mems
                .iter()
                .any(|w| w.upgrade().is_some_and(|m| m.id() == id))
            {
                break;
            }
        }
        let mem = Arc::new(NetmapMem::new(
            self.platform.clone(),
            id,
            params,
            true,
            self.budget.clone(),
        )?);
        mem.finalize()?;
        try_push(&mut g.mems, Arc::downgrade(&mem))?;
        g.last_mem_id = id;
        Ok(mem)
    }

    // ------------------------------------------------------------------
    // Port lookup (§7.1)

    /// Find (and with `create`, make) the port a request names.
    fn get_port(
        &self,
        g: &mut Globals<P>,
        name: &[u8],
        mode: u32,
        flags: u64,
        reg: &NmreqRegister,
        create: bool,
    ) -> Result<Arc<Adapter<P>>> {
        let kp = classify(name, mode, flags, create).map_err(|e| Errno(e.errno()))?;
        match kp {
            KernelPort::Null { name } => {
                if !create || reg.nr_mem_id == 0 {
                    return Err(Errno::EINVAL);
                }
                self.new_null(g, name, reg)
            }
            KernelPort::Monitor {
                flags: mflags,
                parent,
            } => {
                if !create {
                    return Err(Errno::EINVAL);
                }
                let pflags = flags & !RegFlags::MONITOR_MASK.bits();
                // The monitored port must exist and be in netmap mode.
                let parent_na = self
                    .get_port(g, parent.as_bytes(), mode, pflags, reg, false)
                    .map_err(|_| Errno::EINVAL)?;
                if !parent_na.in_netmap_mode() {
                    // The lookup may have made the adapter of an idle NIC.
                    self.maybe_destroy(g, &parent_na);
                    return Err(Errno::EINVAL);
                }
                self.new_monitor(g, parent_na, mflags, reg)
            }
            KernelPort::Pipe { parent, id, role } => {
                let parent_na =
                    match self.get_port(g, parent.as_bytes(), NR_REG_ALL_NIC, 0, reg, create) {
                        Ok(na) => na,
                        Err(Errno::ENXIO) if create => self.new_plain_port(g, parent, reg)?,
                        Err(Errno::ENXIO) => return Err(Errno::ENODEV),
                        Err(e) => return Err(e),
                    };
                let role = match role {
                    PipeRole::Master => Role::Master,
                    PipeRole::Slave => Role::Slave,
                };
                let r = self.get_pipe(&parent_na, id, role, reg, create);
                if r.is_err() {
                    self.maybe_destroy(g, &parent_na);
                }
                r
            }
            KernelPort::Vale { switch, port } => {
                let full = Name::from_c(name);
                let sw = self.find_switch(g, switch.as_bytes());
                if let Some((_, na)) = sw.as_ref().and_then(|sw| sw.find(full.as_bytes())) {
                    return Ok(na);
                }
                if !create {
                    return Err(Errno::ENXIO);
                }
                // An interface (or persistent port) that is not on this
                // switch: `valeS:ifname` is for ATTACH/DETACH only (§8.2).
                if self.is_interface(g, port.as_bytes()) {
                    return Err(Errno::EINVAL);
                }
                let sw = match sw {
                    Some(sw) => sw,
                    None => self.new_switch(g, switch)?,
                };
                let r = self.new_vale_port(g, &sw, full, reg);
                if r.is_err() && sw.active_ports() == 0 {
                    self.remove_switch(g, &sw);
                }
                r
            }
            KernelPort::Netif { name } => {
                // Persistent VALE ports first: their OS interface must not
                // be taken over by the NIC adapter.
                let known = g
                    .persistent
                    .iter()
                    .chain(g.plain.iter())
                    .chain(g.netifs.iter())
                    .find(|na| na.name.as_bytes() == name.as_bytes())
                    .cloned();
                if let Some(na) = known {
                    return Ok(na);
                }
                let ops = self
                    .netif_provider
                    .get()
                    .and_then(|p| p.lookup(name.as_bytes()))
                    .ok_or(Errno::ENXIO)?;
                self.new_netif(g, name, ops, reg)
            }
        }
    }

    /// Whether `name` is an OS interface or a persistent VALE port.
    #[inline(never)] // keeps get_port's (recursive) stack frame small
    fn is_interface(&self, g: &Globals<P>, name: &[u8]) -> bool {
        if name.is_empty() {
            return false;
        }
        g.persistent
            .iter()
            .chain(g.netifs.iter())
            .any(|na| na.name.as_bytes() == name)
            || self.netif_provider.get().is_some_and(|p| p.exists(name))
    }

    #[inline(never)] // keeps get_port's (recursive) stack frame small
    fn vale_mem(
        &self,
        g: &mut Globals<P>,
        reg: &NmreqRegister,
        cfg: &PortConfig,
        extra: u32,
        npipes: u32,
    ) -> Result<Arc<NetmapMem<P>>> {
        if reg.nr_mem_id != 0 {
            let m = self.find_mem(g, reg.nr_mem_id).ok_or(Errno::EINVAL)?;
            m.finalize()?;
            return Ok(m);
        }
        let mp = MemParams::private_for(
            &self.params.private,
            cfg.rings[Dir::Tx.idx()],
            cfg.rings[Dir::Rx.idx()],
            cfg.slots[Dir::Tx.idx()],
            cfg.slots[Dir::Rx.idx()],
            extra,
            npipes,
        );
        self.new_private_mem(g, &mp)
    }

    fn vale_cfg(reg: &NmreqRegister) -> PortConfig {
        PortConfig {
            rings: [
                ring_cfg(u32::from(reg.nr_rx_rings), 1, 16),
                ring_cfg(u32::from(reg.nr_tx_rings), 1, 16),
            ],
            host_rings: [0, 0],
            slots: [
                ring_cfg(reg.nr_rx_slots, 1024, 4096),
                ring_cfg(reg.nr_tx_slots, 1024, 4096),
            ],
        }
    }

    #[inline(never)] // keeps get_port's (recursive) stack frame small
    fn new_vale_port(
        &self,
        g: &mut Globals<P>,
        sw: &Arc<Switch<P>>,
        name: Name,
        reg: &NmreqRegister,
    ) -> Result<Arc<Adapter<P>>> {
        let cfg = Self::vale_cfg(reg);
        let extra = reg.nr_extra_bufs.min(self.params.max_extra_bufs);
        let mem = self.vale_mem(g, reg, &cfg, extra, 2)?;
        let na = Arc::new(Adapter::new(
            self.platform.clone(),
            name,
            Kind::Vale(ValePort::new(true)?),
            mem,
            cfg,
        )?);
        let idx = sw.add_port(na.clone())?;
        if let Kind::Vale(v) = &na.kind {
            *v.bdg.lock() = Some((sw.clone(), idx));
        }
        Ok(na)
    }

    /// A VALE-style port not on any switch, made for a pipe whose parent
    /// name does not exist (§9, §15.6); deleted with its last pipe.
    #[inline(never)] // keeps get_port's (recursive) stack frame small
    fn new_plain_port(
        &self,
        g: &mut Globals<P>,
        name: Name,
        reg: &NmreqRegister,
    ) -> Result<Arc<Adapter<P>>> {
        if name.is_empty() {
            return Err(Errno::EINVAL);
        }
        let r0 = NmreqRegister {
            nr_mem_id: reg.nr_mem_id,
            ..NmreqRegister::zeroed()
        };
        let cfg = Self::vale_cfg(&r0);
        let mem = self.vale_mem(g, &r0, &cfg, 0, 2)?;
        let na = Arc::new(Adapter::new(
            self.platform.clone(),
            name,
            Kind::Vale(ValePort::new(true)?),
            mem,
            cfg,
        )?);
        try_push(&mut g.plain, na.clone())?;
        Ok(na)
    }

    #[inline(never)] // keeps get_port's (recursive) stack frame small
    fn get_pipe(
        &self,
        parent: &Arc<Adapter<P>>,
        id: Name,
        role: Role,
        reg: &NmreqRegister,
        create: bool,
    ) -> Result<Arc<Adapter<P>>> {
        let mut pipes = parent.pipes.lock();
        if let Some(pp) = pipes.iter().find(|pp| pp.id == id) {
            return Ok(pp.end(role).clone());
        }
        if !create {
            return Err(Errno::ENODEV);
        }
        if pipes.len() >= NM_MAXPIPES {
            return Err(Errno::EINVAL);
        }
        let pslots = parent.cfg.slots;
        let mt = ring_cfg(u32::from(reg.nr_tx_rings), 1, NM_PIPE_MAXRINGS);
        let mr = ring_cfg(u32::from(reg.nr_rx_rings), 1, NM_PIPE_MAXRINGS);
        let mts = ring_cfg(reg.nr_tx_slots, pslots[Dir::Tx.idx()], NM_PIPE_MAXSLOTS);
        let mrs = ring_cfg(reg.nr_rx_slots, pslots[Dir::Rx.idx()], NM_PIPE_MAXSLOTS);
        // The request configures the master, whichever end it opens; the
        // slave gets the crossed configuration (§9).
        let mcfg = PortConfig {
            rings: [mr, mt],
            host_rings: [0, 0],
            slots: [mrs, mts],
        };
        let scfg = PortConfig {
            rings: [mt, mr],
            host_rings: [0, 0],
            slots: [mts, mrs],
        };
        let mk = |r: Role, cfg: PortConfig, brace: &[u8]| -> Result<Arc<Adapter<P>>> {
            Ok(Arc::new(Adapter::new(
                self.platform.clone(),
                concat(&[parent.name.as_bytes(), brace, id.as_bytes()]),
                Kind::Pipe(PipeEnd {
                    parent: parent.clone(),
                    role: r,
                    id,
                    peer: Once::new(),
                }),
                parent.mem.clone(),
                cfg,
            )?))
        };
        let master = mk(Role::Master, mcfg, b"{")?;
        let slave = mk(Role::Slave, scfg, b"}")?;
        if let (Kind::Pipe(m), Kind::Pipe(s)) = (&master.kind, &slave.kind) {
            let _ = m.peer.set(Arc::downgrade(&slave));
            let _ = s.peer.set(Arc::downgrade(&master));
        }
        pipes.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        let pp = PipePair { id, master, slave };
        let r = pp.end(role).clone();
        pipes.push(pp);
        Ok(r)
    }

    #[inline(never)] // keeps get_port's (recursive) stack frame small
    fn new_null(
        &self,
        g: &mut Globals<P>,
        name: Name,
        reg: &NmreqRegister,
    ) -> Result<Arc<Adapter<P>>> {
        let mem = self.find_mem(g, reg.nr_mem_id).ok_or(Errno::EINVAL)?;
        let max = self.params.max_rings;
        let (tr, rr) = (u32::from(reg.nr_tx_rings), u32::from(reg.nr_rx_rings));
        let (ts, rs) = (reg.nr_tx_slots, reg.nr_rx_slots);
        if tr > max || rr > max || ts > self.params.max_slots || rs > self.params.max_slots {
            return Err(Errno::EINVAL);
        }
        if (tr > 0 && ts == 0) || (rr > 0 && rs == 0) {
            return Err(Errno::EINVAL);
        }
        mem.finalize()?;
        let cfg = PortConfig {
            rings: [rr, tr],
            host_rings: [0, 0],
            slots: [rs, ts],
        };
        let an = concat(&[b"null:", name.as_bytes()]);
        Ok(Arc::new(Adapter::new(
            self.platform.clone(),
            an,
            Kind::Null,
            mem,
            cfg,
        )?))
    }

    #[inline(never)] // keeps get_port's (recursive) stack frame small
    fn new_netif(
        &self,
        g: &mut Globals<P>,
        name: Name,
        ops: Arc<dyn NetifOps<P>>,
        reg: &NmreqRegister,
    ) -> Result<Arc<Adapter<P>>> {
        let c = ops.config();
        let max = self.params.max_rings;
        let host = |v: u16| ring_cfg(u32::from(v), 1, max);
        let cfg = PortConfig {
            rings: [c.rings[0].clamp(1, max), c.rings[1].clamp(1, max)],
            host_rings: [host(reg.nr_host_rx_rings), host(reg.nr_host_tx_rings)],
            slots: [
                c.slots[0].clamp(1, self.params.max_slots),
                c.slots[1].clamp(1, self.params.max_slots),
            ],
        };
        let mem = if reg.nr_mem_id != 0 {
            self.find_mem(g, reg.nr_mem_id).ok_or(Errno::EINVAL)?
        } else {
            self.global_mem.clone()
        };
        mem.finalize()?;
        let na = Arc::new(Adapter::new(
            self.platform.clone(),
            name,
            Kind::Netif(crate::netif::NetifPort { ops }),
            mem,
            cfg,
        )?);
        try_push(&mut g.netifs, na.clone())?;
        Ok(na)
    }

    #[inline(never)] // keeps get_port's (recursive) stack frame small
    fn new_monitor(
        &self,
        g: &mut Globals<P>,
        parent: Arc<Adapter<P>>,
        mflags: RegFlags,
        reg: &NmreqRegister,
    ) -> Result<Arc<Adapter<P>>> {
        let zcopy = mflags.contains(RegFlags::ZCOPY_MON);
        let tx = zcopy || mflags.contains(RegFlags::MONITOR_TX);
        let rx = zcopy || mflags.contains(RegFlags::MONITOR_RX);
        let nrx = parent.nrings(Dir::Tx).max(parent.nrings(Dir::Rx));
        let pslots = parent.cfg.slots[0].max(parent.cfg.slots[1]);
        let slots = ring_cfg(reg.nr_rx_slots, pslots, 4096).max(1);
        let cfg = PortConfig {
            rings: [nrx, 1],
            host_rings: [0, 0],
            slots: [slots, slots],
        };
        let mem = if zcopy {
            parent.mem.clone()
        } else if reg.nr_mem_id != 0 {
            let m = self.find_mem(g, reg.nr_mem_id).ok_or(Errno::EINVAL)?;
            m.finalize()?;
            m
        } else {
            let mp = MemParams::private_for(&self.params.private, 1, nrx, slots, slots, 0, 0);
            self.new_private_mem(g, &mp)?
        };
        let n = self.mon_counter.fetch_add(1, Ordering::Relaxed);
        let mut num = [0u8; 10];
        let digits = fmt_u32(n, &mut num);
        let name = concat(&[
            parent.name.as_bytes(),
            b"/",
            if zcopy { b"z" } else { b"" },
            if !zcopy && rx { b"r" } else { b"" },
            if !zcopy && tx { b"t" } else { b"" },
            b"#",
            digits,
        ]);
        let kind = Kind::Monitor(crate::monitor::MonitorPort {
            parent,
            tx,
            rx,
            zcopy,
        });
        Ok(Arc::new(Adapter::new(
            self.platform.clone(),
            name,
            kind,
            mem,
            cfg,
        )?))
    }

    fn find_switch(&self, g: &Globals<P>, name: &[u8]) -> Option<Arc<Switch<P>>> {
        g.switches
            .iter()
            .flatten()
            .find(|s| s.name.as_bytes() == name)
            .cloned()
    }

    #[inline(never)] // keeps get_port's (recursive) stack frame small
    fn new_switch(&self, g: &mut Globals<P>, name: Name) -> Result<Arc<Switch<P>>> {
        let slot = g
            .switches
            .iter()
            .position(Option::is_none)
            .ok_or(Errno::ENOMEM)?;
        let sw = Arc::new(Switch::new(name, slot as u8)?);
        g.switches[slot] = Some(sw.clone());
        Ok(sw)
    }

    fn remove_switch(&self, g: &mut Globals<P>, sw: &Arc<Switch<P>>) {
        if let Some(s) = g.switches.get_mut(sw.index as usize)
            && s.as_ref().is_some_and(|x| Arc::ptr_eq(x, sw))
        {
            *s = None;
        }
    }

    /// Destroy a port that nobody uses any more (ephemeral VALE ports, pipe
    /// pairs, auto-created pipe parents), and what it kept alive.
    fn maybe_destroy(&self, g: &mut Globals<P>, na: &Arc<Adapter<P>>) {
        if na.in_netmap_mode() || !na.pipes.lock().is_empty() {
            return;
        }
        match &na.kind {
            Kind::Vale(v) if v.ephemeral => {
                let bdg = v.bdg.lock().take();
                if let Some((sw, idx)) = bdg {
                    sw.remove_port(idx);
                    if sw.active_ports() == 0 {
                        self.remove_switch(g, &sw);
                    }
                }
                g.plain.retain(|p| !Arc::ptr_eq(p, na));
            }
            Kind::Netif(_) => g.netifs.retain(|p| !Arc::ptr_eq(p, na)),
            Kind::Pipe(pe) => {
                let parent = pe.parent.clone();
                let removed = {
                    let mut pipes = parent.pipes.lock();
                    let before = pipes.len();
                    pipes.retain(|pp| !(pp.id == pe.id && pp.idle()));
                    before != pipes.len()
                };
                if removed {
                    self.maybe_destroy(g, &parent);
                }
            }
            _ => {}
        }
    }

    // ------------------------------------------------------------------
    // REGISTER (§4.4)

    fn req_register(&self, np: &NetmapPriv<P>, req: &mut Request) -> Result<()> {
        let mut g = self.g.lock();
        if np.binding().is_some() {
            return Err(Errno::EBUSY);
        }
        let mut reg: NmreqRegister = req.body();
        if reg.nr_mode == NR_REG_DEFAULT {
            return Err(Errno::EINVAL);
        }
        if reg.nr_mem_id != 0 && self.find_mem(&mut g, reg.nr_mem_id).is_none() {
            return Err(Errno::EINVAL);
        }
        let flags = RegFlags::from_bits_retain(reg.nr_flags);
        let na = self.get_port(
            &mut g,
            &req.hdr.nr_name,
            reg.nr_mode,
            reg.nr_flags,
            &reg,
            true,
        )?;
        let r = self.do_bind(&mut g, np, &na, &mut reg, flags, req);
        if r.is_err() {
            self.maybe_destroy(&mut g, &na);
            return r;
        }
        req.set_body(&reg);
        Ok(())
    }

    fn do_bind(
        &self,
        g: &mut Globals<P>,
        np: &NetmapPriv<P>,
        na: &Arc<Adapter<P>>,
        reg: &mut NmreqRegister,
        flags: RegFlags,
        req: &Request,
    ) -> Result<()> {
        if na.virt_hdr_len.load(Ordering::Relaxed) != 0
            && !flags.contains(RegFlags::ACCEPT_VNET_HDR)
        {
            return Err(Errno::EIO);
        }
        // An interface attached to a switch, and the switch ports standing
        // for it, belong to the kernel (§8.5).
        match &na.kind {
            _ if na.is_wrapped() => return Err(Errno::EBUSY),
            Kind::Vale(v) if v.hw.is_some() => return Err(Errno::EBUSY),
            _ => {}
        }
        let ranges = na.compute_ranges(reg.nr_mode, u32::from(reg.nr_ringid), flags)?;
        let exclusive = flags.contains(RegFlags::EXCLUSIVE);
        na.bind_rings(&ranges, exclusive)?;
        let nifp = match na.create_nifp(&ranges) {
            Ok(o) => o,
            Err(e) => {
                na.unbind_rings(&ranges, exclusive);
                return Err(e);
            }
        };
        // Options this implementation does not consume make REGISTER fail
        // (§4.4 step 10): only after a successful bind, so that bind errors
        // (EINVAL, EBUSY, ENOMEM) take precedence; the bind is undone.
        if req.has_unconsumed_option() {
            na.mem.if_free(nifp);
            na.unbind_rings(&ranges, exclusive);
            return Err(Errno::EOPNOTSUPP);
        }
        if let Kind::Netif(ni) = &na.kind
            && !na.in_netmap_mode()
            && let Err(e) = ni.ops.register(na, true)
        {
            na.mem.if_free(nifp);
            na.unbind_rings(&ranges, exclusive);
            return Err(e);
        }
        if let Kind::Monitor(mp) = &na.kind {
            let r = ranges[Dir::Rx.idx()];
            if let Err(e) = crate::monitor::attach(na, mp, r.first, r.last) {
                crate::monitor::detach(na, mp, r.first, r.last);
                na.mem.if_free(nifp);
                na.unbind_rings(&ranges, exclusive);
                return Err(e);
            }
            if mp.zcopy {
                // The kernel ORs TX|RX into a zero-copy request (§2.4).
                reg.nr_flags |= NR_MONITOR_TX | NR_MONITOR_RX;
            }
        }
        let want = reg.nr_extra_bufs.min(self.params.max_extra_bufs);
        let mut got = 0;
        if want > 0 {
            let (head, n) = na.mem.extra_bufs_alloc(want);
            got = n;
            let hdr = crate::shm::nifp_at(nifp.kaddr, 0).header();
            crate::shm::nifp_at(nifp.kaddr, 0).set_header(&NetmapIf {
                ni_bufs_head: head,
                ..hdr
            });
        }
        na.active_fds.fetch_add(1, Ordering::AcqRel);
        let b = Binding {
            na: na.clone(),
            ranges,
            flags,
            nifp,
            extra: want > 0,
        };
        if let Err(b) = np.binding.set(b) {
            self.unbind(g, b);
            return Err(Errno::EBUSY);
        }
        reg.nr_offset = nifp.offset;
        reg.nr_memsize = na.mem.memsize();
        reg.nr_tx_rings = na.nrings(Dir::Tx) as u16;
        reg.nr_rx_rings = na.nrings(Dir::Rx) as u16;
        reg.nr_tx_slots = na.cfg.slots[Dir::Tx.idx()];
        reg.nr_rx_slots = na.cfg.slots[Dir::Rx.idx()];
        reg.nr_host_tx_rings = na.nhost(Dir::Tx) as u16;
        reg.nr_host_rx_rings = na.nhost(Dir::Rx) as u16;
        reg.nr_mem_id = na.mem.id();
        reg.nr_extra_bufs = got;
        Ok(())
    }

    fn unbind(&self, g: &mut Globals<P>, b: Binding<P>) {
        let na = &b.na;
        let nifp = crate::shm::nifp_at(b.nifp.kaddr, 0);
        if b.extra {
            na.mem.extra_bufs_free(nifp.bufs_head());
        }
        na.mem.if_free(b.nifp);
        if let Kind::Monitor(mp) = &na.kind {
            let r = b.ranges[Dir::Rx.idx()];
            crate::monitor::detach(na, mp, r.first, r.last);
        }
        if na.active_fds.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The port leaves netmap mode: the device stops feeding it and
            // its monitors stop (§10.1).
            if let Kind::Netif(ni) = &na.kind {
                let _ = ni.ops.register(na, false);
            }
            crate::monitor::parent_gone(na);
        }
        na.unbind_rings(&b.ranges, b.flags.contains(RegFlags::EXCLUSIVE));
        self.maybe_destroy(g, na);
    }

    // ------------------------------------------------------------------
    // Information requests

    fn req_port_info(&self, req: &mut Request) -> Result<()> {
        let mut g = self.g.lock();
        let mut pi: NmreqPortInfoGet = req.body();
        if req.hdr.nr_name[0] == 0 {
            let id = if pi.nr_mem_id == 0 { 1 } else { pi.nr_mem_id };
            let mem = self.find_mem(&mut g, id).ok_or(Errno::EINVAL)?;
            pi.nr_memsize = mem.memsize();
            pi.nr_mem_id = mem.id();
            req.set_body(&pi);
            return Ok(());
        }
        let reg = NmreqRegister {
            nr_tx_slots: pi.nr_tx_slots,
            nr_rx_slots: pi.nr_rx_slots,
            nr_tx_rings: pi.nr_tx_rings,
            nr_rx_rings: pi.nr_rx_rings,
            nr_mem_id: pi.nr_mem_id,
            nr_mode: NR_REG_ALL_NIC,
            ..NmreqRegister::zeroed()
        };
        if reg.nr_mem_id != 0 && self.find_mem(&mut g, reg.nr_mem_id).is_none() {
            return Err(Errno::EINVAL);
        }
        let na = self.get_port(&mut g, &req.hdr.nr_name, NR_REG_ALL_NIC, 0, &reg, true)?;
        pi.nr_memsize = na.mem.memsize();
        pi.nr_mem_id = na.mem.id();
        pi.nr_tx_rings = na.nrings(Dir::Tx) as u16;
        pi.nr_rx_rings = na.nrings(Dir::Rx) as u16;
        pi.nr_tx_slots = na.cfg.slots[Dir::Tx.idx()];
        pi.nr_rx_slots = na.cfg.slots[Dir::Rx.idx()];
        pi.nr_host_tx_rings = na.nhost(Dir::Tx) as u16;
        pi.nr_host_rx_rings = na.nhost(Dir::Rx) as u16;
        self.maybe_destroy(&mut g, &na);
        req.set_body(&pi);
        Ok(())
    }

    fn req_pools_info(&self, req: &mut Request) -> Result<()> {
        let mut g = self.g.lock();
        let body: NmreqPoolsInfo = req.body();
        if req.hdr.nr_name[0] == 0 {
            return Err(Errno::ENXIO);
        }
        let reg = NmreqRegister {
            nr_mem_id: body.nr_mem_id,
            nr_mode: NR_REG_ALL_NIC,
            ..NmreqRegister::zeroed()
        };
        if reg.nr_mem_id != 0 && self.find_mem(&mut g, reg.nr_mem_id).is_none() {
            return Err(Errno::EINVAL);
        }
        let na = self.get_port(&mut g, &req.hdr.nr_name, NR_REG_ALL_NIC, 0, &reg, true)?;
        let r = na.mem.pools_info();
        self.maybe_destroy(&mut g, &na);
        req.set_body(&r?);
        Ok(())
    }

    fn req_vale_list(&self, req: &mut Request) -> Result<()> {
        let g = self.g.lock();
        let mut l: NmreqValeList = req.body();
        let name = Name::from_c(&req.hdr.nr_name);
        if !name.is_empty() {
            if !name.as_bytes().starts_with(b"vale") {
                return Err(Errno::EINVAL);
            }
            // A name with bad VALE syntax names no existing switch (§8.6).
            let (sw_name, _) = parse_vale_name(name.as_bytes()).map_err(|_| Errno::ENOENT)?;
            let sw = self
                .find_switch(&g, sw_name.as_bytes())
                .ok_or(Errno::ENOENT)?;
            l.nr_bridge_idx = u16::from(sw.index);
            l.nr_port_idx = sw
                .find(name.as_bytes())
                .map_or(NM_BDG_NOPORT, |(i, _)| u32::from(i));
            req.set_body(&l);
            return Ok(());
        }
        let mut b = l.nr_bridge_idx as usize;
        let mut p = l.nr_port_idx as usize;
        while b < g.switches.len() {
            if let Some(sw) = &g.switches[b] {
                while p < crate::vale::NM_BDG_MAXPORTS {
                    if let Some(na) = sw.port(p) {
                        l.nr_bridge_idx = b as u16;
                        l.nr_port_idx = p as u32;
                        req.hdr.nr_name = na.shown_name().to_c_array();
                        req.set_body(&l);
                        return Ok(());
                    }
                    p += 1;
                }
            }
            b += 1;
            p = 0;
        }
        Err(Errno::ENOENT)
    }

    /// VALE_ATTACH `valeS:P` (§8.5): P is a persistent VALE port, which
    /// joins switch `valeS` (created if needed) under the name `valeS:P`,
    /// or an OS interface, which the kernel puts in netmap mode and
    /// connects to the switch (with NR_REG_NIC_SW also its host stack, as
    /// `valeS:P^`). Any other name: `EINVAL`.
    fn req_vale_attach(&self, req: &mut Request) -> Result<()> {
        let mut g = self.g.lock();
        let mut a: NmreqValeAttach = req.body();
        let name = Name::from_c(&req.hdr.nr_name);
        if !name.as_bytes().starts_with(b"val") {
            return Err(Errno::EINVAL);
        }
        let (sw_name, port) = parse_vale_name(name.as_bytes()).map_err(|_| Errno::EINVAL)?;
        if a.reg.nr_mode != NR_REG_ALL_NIC && a.reg.nr_mode != NR_REG_NIC_SW {
            return Err(Errno::EINVAL);
        }
        if a.reg.nr_ringid != 0 {
            return Err(Errno::EINVAL);
        }
        let sw = self.find_switch(&g, sw_name.as_bytes());
        if sw
            .as_ref()
            .is_some_and(|sw| sw.find(name.as_bytes()).is_some())
        {
            return Err(Errno::EBUSY);
        }
        let Some(na) = g.persistent.iter().find(|na| na.name == port).cloned() else {
            if !self.is_interface(&g, port.as_bytes()) {
                return Err(Errno::EINVAL);
            }
            let idx = self.attach_netif(&mut g, sw, sw_name, port, name, &a.reg)?;
            a.port_index = u32::from(idx);
            req.set_body(&a);
            return Ok(());
        };
        let Kind::Vale(v) = &na.kind else {
            return Err(Errno::EINVAL);
        };
        // A persistent port has no host rings to attach as `valeS:P^`.
        if a.reg.nr_mode == NR_REG_NIC_SW {
            return Err(Errno::EINVAL);
        }
        if na.in_netmap_mode() || na.is_wrapped() {
            // Open by a file (the reference's NETMAP_OWNED_BY_ANY check),
            // or already on two switches.
            return Err(Errno::EBUSY);
        }
        if v.switch().is_some() {
            // Already on another switch: wrapped like a NIC (§8.4), the
            // kernel then owns it.
            let (sw, created) = match sw {
                Some(sw) => (sw, false),
                None => (self.new_switch(&mut g, sw_name)?, true),
            };
            let r = crate::bwrap::attach(&na, &sw, name, false);
            if r.is_err() && created && sw.active_ports() == 0 {
                self.remove_switch(&mut g, &sw);
            }
            a.port_index = u32::from(r?);
            req.set_body(&a);
            return Ok(());
        }
        let (sw, created) = match sw {
            Some(sw) => (sw, false),
            None => (self.new_switch(&mut g, sw_name)?, true),
        };
        let idx = match sw.add_port(na.clone()) {
            Ok(idx) => idx,
            Err(e) => {
                if created {
                    self.remove_switch(&mut g, &sw);
                }
                return Err(e);
            }
        };
        *v.attached_name.lock() = Some(name);
        *v.bdg.lock() = Some((sw, idx));
        a.port_index = u32::from(idx);
        req.set_body(&a);
        Ok(())
    }

    /// VALE_ATTACH of OS interface `port` to switch `sw_name` (`sw` if it
    /// exists) as `name`.
    fn attach_netif(
        &self,
        g: &mut Globals<P>,
        sw: Option<Arc<Switch<P>>>,
        sw_name: Name,
        port: Name,
        name: Name,
        reg: &NmreqRegister,
    ) -> Result<u8> {
        if reg.nr_mem_id != 0 && self.find_mem(g, reg.nr_mem_id).is_none() {
            return Err(Errno::EINVAL);
        }
        // An interface the OS cannot put in netmap mode (e.g. loopback).
        let nic = match self.get_port(g, port.as_bytes(), NR_REG_ALL_NIC, 0, reg, true) {
            Ok(nic) => nic,
            Err(Errno::ENXIO) => return Err(Errno::EINVAL),
            Err(e) => return Err(e),
        };
        let busy = match &nic.kind {
            Kind::Netif(_) => nic.is_wrapped() || nic.in_netmap_mode(),
            _ => {
                self.maybe_destroy(g, &nic);
                return Err(Errno::EINVAL);
            }
        };
        if busy {
            // Already attached (to any switch), or open by a user.
            return Err(Errno::EBUSY);
        }
        let (sw, created) = match sw {
            Some(sw) => (sw, false),
            None => match self.new_switch(g, sw_name) {
                Ok(sw) => (sw, true),
                Err(e) => {
                    self.maybe_destroy(g, &nic);
                    return Err(e);
                }
            },
        };
        let r = crate::bwrap::attach(&nic, &sw, name, reg.nr_mode == NR_REG_NIC_SW);
        if r.is_err() {
            if created && sw.active_ports() == 0 {
                self.remove_switch(g, &sw);
            }
            self.maybe_destroy(g, &nic);
        }
        r
    }

    /// End the attachment of interface `nic` to its switch (VALE_DETACH,
    /// the interface disappearing, module unload).
    fn bwrap_detach(
        &self,
        g: &mut Globals<P>,
        nic: &Arc<Adapter<P>>,
        bw: &Arc<crate::bwrap::Bwrap<P>>,
    ) {
        let sw = match &bw.hw.kind {
            Kind::Vale(v) => v.switch().map(|(sw, _)| sw),
            _ => None,
        };
        // The interface vanished or the module goes: polling stops too.
        let _ = crate::bwrap::polling_disable(nic, bw);
        crate::bwrap::detach(nic, bw);
        if let Some(sw) = sw
            && sw.active_ports() == 0
        {
            self.remove_switch(g, &sw);
        }
        self.maybe_destroy(g, nic);
    }

    /// VALE_DETACH `valeS:P` (§8.5): a persistent port leaves the switch
    /// (which goes away when empty); an attached interface (named by
    /// either of its ports) leaves netmap mode.
    fn req_vale_detach(&self, req: &mut Request) -> Result<()> {
        let mut g = self.g.lock();
        let name = Name::from_c(&req.hdr.nr_name);
        if !name.as_bytes().starts_with(b"val") {
            return Err(Errno::EINVAL);
        }
        let (sw_name, _) = parse_vale_name(name.as_bytes()).map_err(|_| Errno::EINVAL)?;
        let sw = self
            .find_switch(&g, sw_name.as_bytes())
            .ok_or(Errno::ENXIO)?;
        let (idx, na) = sw.find(name.as_bytes()).ok_or(Errno::ENXIO)?;
        let Kind::Vale(v) = &na.kind else {
            return Err(Errno::ENXIO);
        };
        if let Some(hw) = &v.hw {
            let nic = hw.nic().ok_or(Errno::ENXIO)?;
            let bw = nic.wrapper().ok_or(Errno::ENXIO)?;
            if bw.is_polling() {
                return Err(Errno::EBUSY);
            }
            self.bwrap_detach(&mut g, &nic, &bw);
            let d = NmreqValeDetach {
                port_index: u32::from(idx),
                ..NmreqValeDetach::zeroed()
            };
            req.set_body(&d);
            return Ok(());
        }
        // Ephemeral ports are not attached, they are created by REGISTER.
        if v.ephemeral {
            return Err(Errno::ENXIO);
        }
        // On a second switch too: that attachment goes first (§8.5).
        if na.is_wrapped() {
            return Err(Errno::EBUSY);
        }
        // The port's own txsync stops forwarding into this switch first.
        v.bdg.lock().take();
        sw.remove_port(idx);
        if sw.active_ports() == 0 {
            self.remove_switch(&mut g, &sw);
        }
        let d = NmreqValeDetach {
            port_index: u32::from(idx),
            ..NmreqValeDetach::zeroed()
        };
        req.set_body(&d);
        Ok(())
    }

    /// NEWIF `P` (§8.4): a persistent VALE port with its OS interface, on
    /// no switch. Rings and slots as for an ephemeral port (§8.2), in a
    /// private region or the region `nr_mem_id`.
    fn req_vale_newif(&self, req: &mut Request) -> Result<()> {
        let mut g = self.g.lock();
        let mut nb: NmreqValeNewif = req.body();
        let name = Name::from_c(&req.hdr.nr_name);
        let b = name.as_bytes();
        // IFNAMSIZ - 1 bytes; and never a name the port could not be opened
        // by (`netmap:P`): no VALE prefix, no pipe braces, nothing an OS
        // interface name cannot contain.
        if b.is_empty()
            || b.len() > 15
            || b.starts_with(b"vale")
            || b.iter()
                .any(|&c| matches!(c, b'{' | b'}' | b'/' | b':') || c <= b' ' || c >= 0x7f)
        {
            return Err(Errno::EINVAL);
        }
        if g.plain.iter().any(|na| na.name == name) || self.is_interface(&g, b) {
            return Err(Errno::EEXIST);
        }
        let provider = self.netif_provider.get().ok_or(Errno::EOPNOTSUPP)?;
        let reg = NmreqRegister {
            nr_tx_slots: nb.nr_tx_slots,
            nr_rx_slots: nb.nr_rx_slots,
            nr_tx_rings: nb.nr_tx_rings,
            nr_rx_rings: nb.nr_rx_rings,
            nr_mem_id: nb.nr_mem_id,
            nr_mode: NR_REG_ALL_NIC,
            ..NmreqRegister::zeroed()
        };
        let cfg = Self::vale_cfg(&reg);
        let mem = self.vale_mem(&mut g, &reg, &cfg, 0, 2)?;
        let na = Arc::new(Adapter::new(
            self.platform.clone(),
            name,
            Kind::Vale(ValePort::new(false)?),
            mem,
            cfg,
        )?);
        g.persistent.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        provider.create_persistent(b)?;
        g.persistent.push(na.clone());
        nb.nr_tx_slots = na.cfg.slots[Dir::Tx.idx()];
        nb.nr_rx_slots = na.cfg.slots[Dir::Rx.idx()];
        nb.nr_tx_rings = na.nrings(Dir::Tx) as u16;
        nb.nr_rx_rings = na.nrings(Dir::Rx) as u16;
        nb.nr_mem_id = na.mem.id();
        req.set_body(&nb);
        Ok(())
    }

    /// DELIF `P` (§8.4): removes an unused persistent port and its OS
    /// interface.
    fn req_vale_delif(&self, req: &mut Request) -> Result<()> {
        let mut g = self.g.lock();
        let name = Name::from_c(&req.hdr.nr_name);
        let Some(pos) = g.persistent.iter().position(|na| na.name == name) else {
            // An interface, but not one made by NEWIF: EINVAL; nothing: ENXIO.
            let other =
                g.plain.iter().any(|na| na.name == name) || self.is_interface(&g, name.as_bytes());
            return Err(if other { Errno::EINVAL } else { Errno::ENXIO });
        };
        let na = &g.persistent[pos];
        let attached = matches!(&na.kind, Kind::Vale(v) if v.switch().is_some());
        // Open by a file, on a switch, parent of pipes, or otherwise
        // referenced (e.g. by a monitor): the list holds the only reference
        // of an unused port.
        if na.in_netmap_mode()
            || attached
            || !na.pipes.lock().is_empty()
            || Arc::strong_count(na) > 1
        {
            return Err(Errno::EBUSY);
        }
        let provider = self.netif_provider.get().ok_or(Errno::EOPNOTSUPP)?;
        provider.delete_persistent(name.as_bytes())?;
        g.persistent.swap_remove(pos);
        Ok(())
    }

    fn req_polling(&self, req: &mut Request) -> Result<()> {
        let g = self.g.lock();
        let name = Name::from_c(&req.hdr.nr_name);
        if !name.as_bytes().starts_with(b"val") {
            return Err(Errno::EINVAL);
        }
        let (sw_name, _) = parse_vale_name(name.as_bytes()).map_err(|_| Errno::EINVAL)?;
        let sw = self
            .find_switch(&g, sw_name.as_bytes())
            .ok_or(Errno::ENXIO)?;
        let (_, na) = sw.find(name.as_bytes()).ok_or(Errno::ENXIO)?;
        // Only interfaces attached to a switch can be polled.
        let nic = match &na.kind {
            Kind::Vale(ValePort { hw: Some(hw), .. }) if !hw.host => hw.nic(),
            _ => None,
        }
        .ok_or(Errno::EOPNOTSUPP)?;
        let bw = match &nic.kind {
            Kind::Netif(_) => nic.wrapper().ok_or(Errno::ENXIO)?,
            // A persistent port on a second switch: no device to poll.
            _ => return Err(Errno::EOPNOTSUPP),
        };
        let p: NmreqValePolling = req.body();
        if req.hdr.nr_reqtype == NETMAP_REQ_VALE_POLLING_ENABLE {
            crate::bwrap::polling_enable(
                &nic,
                &bw,
                p.nr_mode,
                p.nr_first_cpu_id,
                p.nr_num_polling_cpus,
            )
        } else {
            crate::bwrap::polling_disable(&nic, &bw)
        }
    }

    fn req_hdr_set(&self, req: &mut Request) -> Result<()> {
        let mut g = self.g.lock();
        let h: NmreqPortHdr = req.body();
        if !matches!(h.nr_hdr_len, 0 | 10 | 12) {
            return Err(Errno::EINVAL);
        }
        let name = Name::from_c(&req.hdr.nr_name);
        if !name.as_bytes().starts_with(b"val") {
            return Err(Errno::ENXIO);
        }
        let reg = NmreqRegister::zeroed();
        let na = self.get_port(&mut g, name.as_bytes(), NR_REG_ALL_NIC, 0, &reg, false)?;
        if !na.is_vale() {
            self.maybe_destroy(&mut g, &na);
            return Err(Errno::ENXIO);
        }
        na.virt_hdr_len.store(h.nr_hdr_len, Ordering::Release);
        Ok(())
    }

    fn req_hdr_get(&self, req: &mut Request) -> Result<()> {
        let mut g = self.g.lock();
        let mut h: NmreqPortHdr = req.body();
        let reg = NmreqRegister::zeroed();
        let na = self.get_port(&mut g, &req.hdr.nr_name, NR_REG_ALL_NIC, 0, &reg, false)?;
        h.nr_hdr_len = na.virt_hdr_len.load(Ordering::Acquire);
        // An idle NIC's adapter made by the lookup goes away again.
        self.maybe_destroy(&mut g, &na);
        req.set_body(&h);
        Ok(())
    }

    // ------------------------------------------------------------------
    // Legacy NIOCREGIF / NIOCGINFO (§4.12)

    fn ioctl_legacy(&self, np: &NetmapPriv<P>, cmd: u32, arg: u64) -> Result<()> {
        if arg == 0 {
            return Err(Errno::EINVAL);
        }
        let mut nmr = Nmreq::zeroed();
        self.platform.copy_from_user(nmr.as_bytes_mut(), arg)?;
        let r = self.legacy(np, cmd, &mut nmr);
        if r.is_ok() {
            self.platform.copy_to_user(arg, nmr.as_bytes())?;
        }
        r
    }

    /// Run a kernel-built request (legacy conversion) with `body`; returns
    /// the body and header as the request left them.
    fn run_internal<T: Pod>(
        &self,
        np: &NetmapPriv<P>,
        hdr: NmreqHeader,
        body: &T,
    ) -> Result<(T, NmreqHeader)> {
        let mut req = Request::internal(hdr, body.as_bytes())?;
        self.dispatch(np, &mut req)?;
        Ok((req.body(), req.hdr))
    }

    fn legacy(&self, np: &NetmapPriv<P>, cmd: u32, nmr: &mut Nmreq) -> Result<()> {
        if nmr.nr_version < u32::from(NETMAP_MIN_API) {
            return Err(Errno::EINVAL);
        }
        nmr.nr_name[15] = 0;
        let mut hdr = NmreqHeader::zeroed();
        hdr.nr_version = NETMAP_API;
        let name = Name::from_c(&nmr.nr_name);
        let mut mode = nmr.nr_flags & NR_REG_MASK;
        let ringid = u32::from(nmr.nr_ringid & NETMAP_RING_MASK);
        let mut name = name;
        let mut ringid16 = ringid as u16;
        if mode == NR_REG_DEFAULT {
            mode = if nmr.nr_ringid & NETMAP_SW_RING != 0 {
                NR_REG_SW
            } else if nmr.nr_ringid & NETMAP_HW_RING != 0 {
                NR_REG_ONE_NIC
            } else {
                NR_REG_ALL_NIC
            };
        } else if mode == NR_REG_PIPE_MASTER || mode == NR_REG_PIPE_SLAVE {
            let brace: &[u8] = if mode == NR_REG_PIPE_MASTER {
                b"{"
            } else {
                b"}"
            };
            let mut num = [0u8; 8];
            let mut v = ringid;
            let mut i = num.len();
            loop {
                i -= 1;
                num[i] = b'0' + (v % 10) as u8;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
            name = concat(&[name.as_bytes(), brace, &num[i..]]);
            mode = NR_REG_ALL_NIC;
            ringid16 = 0;
        }
        hdr.nr_name = name.to_c_array();
        let mut flags = u64::from(nmr.nr_flags & !NR_REG_MASK);
        if nmr.nr_ringid & NETMAP_NO_TX_POLL != 0 {
            flags |= NR_NO_TX_POLL;
        }
        if nmr.nr_ringid & NETMAP_DO_RX_POLL != 0 {
            flags |= NR_DO_RX_POLL;
        }
        let reg = NmreqRegister {
            nr_tx_slots: nmr.nr_tx_slots,
            nr_rx_slots: nmr.nr_rx_slots,
            nr_tx_rings: nmr.nr_tx_rings,
            nr_rx_rings: nmr.nr_rx_rings,
            nr_mem_id: nmr.nr_arg2,
            nr_ringid: ringid16,
            nr_mode: mode,
            nr_extra_bufs: nmr.nr_arg3,
            nr_flags: flags,
            ..NmreqRegister::zeroed()
        };
        match (cmd, nmr.nr_cmd) {
            (NIOCREGIF, 0) => {
                hdr.nr_reqtype = NETMAP_REQ_REGISTER;
                let (out, _) = self.run_internal(np, hdr, &reg)?;
                nmr.nr_offset = out.nr_offset as u32;
                nmr.nr_memsize = out.nr_memsize as u32;
                nmr.nr_tx_slots = out.nr_tx_slots;
                nmr.nr_rx_slots = out.nr_rx_slots;
                nmr.nr_tx_rings = out.nr_tx_rings;
                nmr.nr_rx_rings = out.nr_rx_rings;
                nmr.nr_arg2 = out.nr_mem_id;
                nmr.nr_arg3 = out.nr_extra_bufs;
                Ok(())
            }
            (NIOCGINFO, 0) => {
                hdr.nr_reqtype = NETMAP_REQ_PORT_INFO_GET;
                let pi = NmreqPortInfoGet {
                    nr_tx_slots: reg.nr_tx_slots,
                    nr_rx_slots: reg.nr_rx_slots,
                    nr_tx_rings: reg.nr_tx_rings,
                    nr_rx_rings: reg.nr_rx_rings,
                    nr_mem_id: reg.nr_mem_id,
                    ..NmreqPortInfoGet::zeroed()
                };
                let (out, _) = self.run_internal(np, hdr, &pi)?;
                nmr.nr_memsize = out.nr_memsize as u32;
                nmr.nr_tx_slots = out.nr_tx_slots;
                nmr.nr_rx_slots = out.nr_rx_slots;
                nmr.nr_tx_rings = out.nr_tx_rings;
                nmr.nr_rx_rings = out.nr_rx_rings;
                nmr.nr_arg2 = out.nr_mem_id;
                Ok(())
            }
            (NIOCGINFO, c) if c == NETMAP_BDG_LIST => {
                hdr.nr_reqtype = NETMAP_REQ_VALE_LIST;
                let l = NmreqValeList {
                    nr_bridge_idx: nmr.nr_arg1,
                    nr_port_idx: u32::from(nmr.nr_arg2),
                    ..NmreqValeList::zeroed()
                };
                let (out, h) = self.run_internal(np, hdr, &l)?;
                nmr.nr_name = Name::from_c(&h.nr_name).to_c_array_truncated::<16>();
                nmr.nr_arg1 = out.nr_bridge_idx;
                nmr.nr_arg2 = out.nr_port_idx as u16;
                Ok(())
            }
            (_, c) if c == NETMAP_BDG_VNET_HDR || c == NETMAP_VNET_HDR_GET => {
                hdr.nr_reqtype = if c == NETMAP_BDG_VNET_HDR {
                    NETMAP_REQ_PORT_HDR_SET
                } else {
                    NETMAP_REQ_PORT_HDR_GET
                };
                let h = NmreqPortHdr {
                    nr_hdr_len: u32::from(nmr.nr_arg1),
                    ..NmreqPortHdr::zeroed()
                };
                let (out, _) = self.run_internal(np, hdr, &h)?;
                nmr.nr_arg1 = out.nr_hdr_len as u16;
                Ok(())
            }
            (_, c) if c == NETMAP_PT_HOST_CREATE || c == NETMAP_PT_HOST_DELETE => {
                Err(Errno::ENOMEM)
            }
            (_, c) if c == NETMAP_BDG_NEWIF => {
                hdr.nr_reqtype = NETMAP_REQ_VALE_NEWIF;
                let nb = NmreqValeNewif {
                    nr_tx_slots: reg.nr_tx_slots,
                    nr_rx_slots: reg.nr_rx_slots,
                    nr_tx_rings: reg.nr_tx_rings,
                    nr_rx_rings: reg.nr_rx_rings,
                    nr_mem_id: reg.nr_mem_id,
                    ..NmreqValeNewif::zeroed()
                };
                let (out, _) = self.run_internal(np, hdr, &nb)?;
                nmr.nr_tx_slots = out.nr_tx_slots;
                nmr.nr_rx_slots = out.nr_rx_slots;
                nmr.nr_tx_rings = out.nr_tx_rings;
                nmr.nr_rx_rings = out.nr_rx_rings;
                nmr.nr_arg2 = out.nr_mem_id;
                Ok(())
            }
            (_, c) if c == NETMAP_BDG_ATTACH || c == NETMAP_BDG_DETACH || c == NETMAP_BDG_DELIF => {
                hdr.nr_reqtype = match c {
                    x if x == NETMAP_BDG_ATTACH => NETMAP_REQ_VALE_ATTACH,
                    x if x == NETMAP_BDG_DETACH => NETMAP_REQ_VALE_DETACH,
                    _ => NETMAP_REQ_VALE_DELIF,
                };
                let mut a = NmreqValeAttach::zeroed();
                a.reg = reg;
                a.reg.nr_mode = if c == NETMAP_BDG_ATTACH && nmr.nr_arg1 & NETMAP_BDG_HOST != 0 {
                    NR_REG_NIC_SW
                } else {
                    NR_REG_ALL_NIC
                };
                let size = body_size(hdr.nr_reqtype);
                let mut req = Request::internal(hdr, &a.as_bytes()[..size])?;
                self.dispatch(np, &mut req)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    // ------------------------------------------------------------------
    // Data path: NIOCTXSYNC / NIOCRXSYNC (§6.6) and poll (§6.7)

    fn sync_ioctl(&self, np: &NetmapPriv<P>, d: Dir) -> Result<()> {
        let b = np.binding().ok_or(Errno::ENXIO)?;
        let mut res = Ok(());
        for i in b.ranges[d.idx()].iter() {
            let Some(k) = b.na.kring(d, i) else { continue };
            match self.sync_kring(b, k) {
                SyncOutcome::Stopped => res = Err(Errno::EIO),
                SyncOutcome::Busy
                | SyncOutcome::Done
                | SyncOutcome::Reinit
                | SyncOutcome::Error => {}
            }
        }
        res
    }

    /// One txsync or rxsync of kring `k`, with prologue, reinit and
    /// finalization.
    fn sync_kring(&self, b: &Binding<P>, k: &Kring<P>) -> SyncOutcome {
        let na = &*b.na;
        let Some(mut own) = k.owner.try_lock() else {
            return SyncOutcome::Busy;
        };
        if k.flags() & NKR_STOPPED != 0 {
            return SyncOutcome::Stopped;
        }
        let Some(ring) = k.ring() else {
            return SyncOutcome::Busy;
        };
        let hwcur = k.nr_hwcur.load(Ordering::Acquire);
        let hwtail = k.nr_hwtail.load(Ordering::Acquire);
        let nbufs = na.mem.buf_count();
        let bsz = na.mem.buf_size();
        match k.dir {
            Dir::Tx => match kring::txsync_prologue(&mut own, &ring, hwcur, hwtail) {
                None => {
                    kring::ring_reinit(&mut own, &ring, hwcur, hwtail, nbufs, bsz);
                    SyncOutcome::Reinit
                }
                Some(head) => {
                    crate::monitor::tx_sync_begin(na, k, &ring, hwcur, head);
                    let r = na.txsync(k, &mut own, &ring, &self.params);
                    if r.is_ok() {
                        crate::monitor::tx_sync_end(
                            na,
                            k,
                            &ring,
                            hwtail,
                            k.nr_hwtail.load(Ordering::Acquire),
                        );
                        kring::sync_finalize(&mut own, &ring, k.nr_hwtail.load(Ordering::Acquire));
                        SyncOutcome::Done
                    } else {
                        SyncOutcome::Error
                    }
                }
            },
            Dir::Rx => {
                let mut out = SyncOutcome::Done;
                if kring::rxsync_prologue(&mut own, &ring, hwcur, hwtail).is_none() {
                    kring::ring_reinit(&mut own, &ring, hwcur, hwtail, nbufs, bsz);
                    out = SyncOutcome::Reinit;
                }
                crate::monitor::rx_release(na, k, &ring, hwcur, own.rhead);
                let moved = self.forward_released(b, k, &ring, hwcur, own.rhead);
                let r = na.rxsync(k, &mut own, &ring);
                if r.is_ok() {
                    // Copy monitors got new frames when they arrived
                    // (`monitor::rx_new`), whoever filled the ring.
                    kring::sync_finalize(&mut own, &ring, k.nr_hwtail.load(Ordering::Acquire));
                } else {
                    out = SyncOutcome::Error;
                }
                if self.params.no_timestamp.load(Ordering::Relaxed) == 0
                    || ring.flags() & NR_TIMESTAMP != 0
                {
                    let (s, us) = self.platform.now();
                    ring.set_ts(s, us);
                }
                drop(own);
                if moved {
                    // Frames of the host ring went to the hardware TX
                    // rings: send them (§6.8).
                    for i in 0..na.nrings(Dir::Tx) {
                        if let Some(tk) = na.kring(Dir::Tx, i) {
                            self.sync_kring(b, tk);
                        }
                    }
                }
                out
            }
        }
    }

    /// Transparent mode on the RX slots `[hwcur, head)` a sync of `k`
    /// releases, if the ring or the module asks for it and the port is an
    /// interface with host rings (§6.8). Returns true if frames moved to
    /// the hardware TX rings.
    fn forward_released(
        &self,
        b: &Binding<P>,
        k: &Kring<P>,
        ring: &crate::shm::RingPtr,
        hwcur: u32,
        head: u32,
    ) -> bool {
        let na = &*b.na;
        let Kind::Netif(ni) = &na.kind else {
            return false;
        };
        let all = self.params.fwd.load(Ordering::Relaxed) != 0;
        if na.nhost(Dir::Rx) == 0 || !(all || ring.flags() & NR_FORWARD != 0) {
            return false;
        }
        let tx = b.ranges[Dir::Tx.idx()];
        let to_nic = tx.first == 0 && tx.last >= na.nrings(Dir::Tx);
        crate::netif::forward_released(na, ni, k, ring, hwcur, head, all, to_nic)
    }

    /// poll(): returns the ready mask; `wait` is called with each wait
    /// queue the file must sleep on.
    pub fn poll(
        &self,
        np: &NetmapPriv<P>,
        events: u32,
        wait: &mut dyn FnMut(&P::WaitQueue),
    ) -> u32 {
        let Some(b) = np.binding() else {
            return POLLERR;
        };
        let na = &b.na;
        if !na.in_netmap_mode() {
            return POLLERR;
        }
        let want_tx = events & (POLLOUT | POLLWRNORM);
        let want_rx = events & (POLLIN | POLLRDNORM);
        // Sleep only on the directions asked for.
        for (d, want) in [(Dir::Tx, want_tx), (Dir::Rx, want_rx)] {
            let r = b.ranges[d.idx()];
            if want == 0 {
                continue;
            } else if r.len() > 1 {
                wait(&na.si[d.idx()]);
            } else if r.len() == 1
                && let Some(k) = na.kring(d, r.first)
            {
                wait(&k.wq);
            }
        }
        // Registered before the rings are looked at: a writer that publishes
        // after this and then finds no sleeper (WaitQueue::wake_all may skip
        // an empty queue) cannot be missed, since our look comes after.
        core::sync::atomic::fence(Ordering::SeqCst);
        let mut revents = 0u32;
        if want_tx != 0 || !b.flags.contains(RegFlags::NO_TX_POLL) {
            for pass in 0..2 {
                for i in b.ranges[Dir::Tx.idx()].iter() {
                    let Some(k) = na.kring(Dir::Tx, i) else {
                        continue;
                    };
                    let Some(ring) = k.ring() else { continue };
                    if (want_tx == 0 || revents & want_tx != 0)
                        && ring.head() == k.nr_hwcur.load(Ordering::Acquire)
                    {
                        continue;
                    }
                    match self.sync_kring(b, k) {
                        SyncOutcome::Reinit | SyncOutcome::Stopped | SyncOutcome::Error => {
                            revents |= POLLERR
                        }
                        _ => {}
                    }
                    if want_tx != 0 && ring.cur() != ring.tail() {
                        revents |= want_tx;
                    }
                }
                if want_tx == 0 || revents & want_tx != 0 || pass == 1 {
                    break;
                }
            }
        }
        if want_rx != 0 {
            for _pass in 0..2 {
                for i in b.ranges[Dir::Rx.idx()].iter() {
                    let Some(k) = na.kring(Dir::Rx, i) else {
                        continue;
                    };
                    let Some(ring) = k.ring() else { continue };
                    match self.sync_kring(b, k) {
                        SyncOutcome::Reinit | SyncOutcome::Stopped | SyncOutcome::Error => {
                            revents |= POLLERR
                        }
                        _ => {}
                    }
                    if ring.cur() != ring.tail() {
                        revents |= want_rx;
                    }
                }
                if revents & want_rx != 0 {
                    break;
                }
            }
        }
        revents
    }

    // ------------------------------------------------------------------
    // mmap (§5.6)

    pub fn mmap_check(&self, np: &NetmapPriv<P>, offset: u64, len: u64) -> Result<()> {
        let b = np.binding().ok_or(Errno::EINVAL)?;
        let end = offset.checked_add(len).ok_or(Errno::EINVAL)?;
        if end > b.na.mem.memsize() {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    pub fn mmap_page(&self, np: &NetmapPriv<P>, offset: u64) -> Option<core::ptr::NonNull<u8>> {
        np.binding()?.na.mem.page_at(offset)
    }
}

enum SyncOutcome {
    Done,
    /// The port's sync failed (e.g. the TX ring of a monitor).
    Error,
    Busy,
    Reinit,
    Stopped,
}

/// Decimal digits of `v` in `buf`, without allocation.
fn fmt_u32(mut v: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 || i == 0 {
            break;
        }
    }
    &buf[i..]
}

/// `Vec::push` that reports allocation failure instead of aborting.
fn try_push<T>(v: &mut Vec<T>, x: T) -> Result<()> {
    v.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
    v.push(x);
    Ok(())
}
