//! Making ports: ephemeral VALE ports (§8.2), pipe parents and pipes (§9),
//! null ports, OS interfaces and monitors (§10).

#![deny(unsafe_code)]

use super::{Globals, Netmap, fmt_u32, ring_cfg, try_push};
use crate::adapter::{Adapter, Kind, PortConfig};
use crate::kring::Dir;
use crate::mem::{MemParams, NetmapMem};
use crate::name::{Name, concat};
use crate::netif::NetifOps;
use crate::pipe::{NM_MAXPIPES, NM_PIPE_MAXRINGS, NM_PIPE_MAXSLOTS, PipeEnd, PipePair, Role};
use crate::platform::Platform;
use crate::sync::Once;
use crate::vale::{Switch, ValePort};
use crate::{Errno, Result};
use alloc::sync::Arc;
use core::sync::atomic::Ordering;
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

impl<P: Platform> Netmap<P> {
    #[inline(never)] // keeps get_port's (recursive) stack frame small
    pub(super) fn vale_mem(
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

    pub(super) fn vale_cfg(reg: &NmreqRegister) -> PortConfig {
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
    pub(super) fn new_vale_port(
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
    pub(super) fn new_plain_port(
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
    pub(super) fn get_pipe(
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
    pub(super) fn new_null(
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
    pub(super) fn new_netif(
        &self,
        g: &mut Globals<P>,
        name: Name,
        ops: Arc<dyn NetifOps<P>>,
        reg: &NmreqRegister,
    ) -> Result<Arc<Adapter<P>>> {
        let native = ops.native();
        let mut c = ops.config();
        if let Some(nat) = &native {
            let nc = nat.config();
            c.rings = nc.rings;
            c.slots = nc.descs;
        }
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
        if let Some(nat) = &native {
            // A native driver gets rings of exactly its descriptor counts.
            let nc = nat.config();
            if cfg.rings != nc.rings || cfg.slots != nc.descs {
                return Err(Errno::EINVAL);
            }
        }
        let native = match native {
            Some(ops) => Some(crate::native::NativePort::new(ops, cfg.rings, cfg.slots)?),
            None => None,
        };
        mem.finalize()?;
        let na = Arc::new(Adapter::new(
            self.platform.clone(),
            name,
            Kind::Netif(crate::netif::NetifPort { ops, native }),
            mem,
            cfg,
        )?);
        try_push(&mut g.netifs, na.clone())?;
        Ok(na)
    }

    #[inline(never)] // keeps get_port's (recursive) stack frame small
    pub(super) fn new_monitor(
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
}
