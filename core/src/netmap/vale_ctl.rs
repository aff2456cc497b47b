//! VALE control requests: VALE_LIST (§8.6), VALE_ATTACH/DETACH (§8.5) and
//! polling mode (§4.9).

#![deny(unsafe_code)]

use super::{Globals, Netmap};
use crate::adapter::{Adapter, Kind};
use crate::name::Name;
use crate::platform::Platform;
use crate::request::Request;
use crate::vale::{Switch, ValePort};
use crate::{Errno, Result};
use alloc::sync::Arc;
use netmap_uapi::pod::Pod;
use netmap_uapi::portname::parse_vale_name;
use netmap_uapi::*;

impl<P: Platform> Netmap<P> {
    pub(super) fn req_vale_list(&self, req: &mut Request) -> Result<()> {
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
    pub(super) fn req_vale_attach(&self, req: &mut Request) -> Result<()> {
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
    pub(super) fn bwrap_detach(
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
    pub(super) fn req_vale_detach(&self, req: &mut Request) -> Result<()> {
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

    pub(super) fn req_polling(&self, req: &mut Request) -> Result<()> {
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
}
