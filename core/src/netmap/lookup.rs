//! Port lookup (§7.1): from a request's name, mode and flags to an
//! adapter, made on demand; the switch registry; the destruction of ports
//! nobody uses any more.

#![deny(unsafe_code)]

use super::{Globals, Netmap};
use crate::adapter::{Adapter, Kind};
use crate::name::Name;

use crate::pipe::Role;
use crate::platform::Platform;
use crate::vale::Switch;
use crate::{Errno, Result};
use alloc::sync::Arc;
use netmap_uapi::portname::{KernelPort, PipeRole, classify};
use netmap_uapi::*;

impl<P: Platform> Netmap<P> {
    /// Find (and with `create`, make) the port a request names.
    pub(super) fn get_port(
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
    pub(super) fn is_interface(&self, g: &Globals<P>, name: &[u8]) -> bool {
        if name.is_empty() {
            return false;
        }
        g.persistent
            .iter()
            .chain(g.netifs.iter())
            .any(|na| na.name.as_bytes() == name)
            || self.netif_provider.get().is_some_and(|p| p.exists(name))
    }

    pub(super) fn find_switch(&self, g: &Globals<P>, name: &[u8]) -> Option<Arc<Switch<P>>> {
        g.switches
            .iter()
            .flatten()
            .find(|s| s.name.as_bytes() == name)
            .cloned()
    }

    #[inline(never)] // keeps get_port's (recursive) stack frame small
    pub(super) fn new_switch(&self, g: &mut Globals<P>, name: Name) -> Result<Arc<Switch<P>>> {
        let slot = g
            .switches
            .iter()
            .position(Option::is_none)
            .ok_or(Errno::ENOMEM)?;
        let sw = Arc::new(Switch::new(name, slot as u8)?);
        g.switches[slot] = Some(sw.clone());
        Ok(sw)
    }

    pub(super) fn remove_switch(&self, g: &mut Globals<P>, sw: &Arc<Switch<P>>) {
        if let Some(s) = g.switches.get_mut(sw.index as usize)
            && s.as_ref().is_some_and(|x| Arc::ptr_eq(x, sw))
        {
            *s = None;
        }
    }

    /// Destroy a port that nobody uses any more (ephemeral VALE ports, pipe
    /// pairs, auto-created pipe parents), and what it kept alive.
    pub(super) fn maybe_destroy(&self, g: &mut Globals<P>, na: &Arc<Adapter<P>>) {
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
}
