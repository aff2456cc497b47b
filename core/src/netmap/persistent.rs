//! Persistent VALE ports: VALE_NEWIF / VALE_DELIF (§8.4).

#![deny(unsafe_code)]

use super::Netmap;
use crate::adapter::{Adapter, Kind};
use crate::kring::Dir;
use crate::name::Name;

use crate::platform::Platform;
use crate::request::Request;
use crate::vale::ValePort;
use crate::{Errno, Result};
use alloc::sync::Arc;
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

impl<P: Platform> Netmap<P> {
    /// NEWIF `P` (§8.4): a persistent VALE port with its OS interface, on
    /// no switch. Rings and slots as for an ephemeral port (§8.2), in a
    /// private region or the region `nr_mem_id`.
    pub(super) fn req_vale_newif(&self, req: &mut Request) -> Result<()> {
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
    pub(super) fn req_vale_delif(&self, req: &mut Request) -> Result<()> {
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
}
