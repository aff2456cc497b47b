//! Information requests: PORT_INFO_GET (§4.5), POOLS_INFO_GET (§4.8),
//! PORT_HDR_SET/GET (§4.7).

#![deny(unsafe_code)]

use super::Netmap;
use crate::kring::Dir;
use crate::name::Name;
use crate::platform::Platform;
use crate::request::Request;
use crate::{Errno, Result};
use core::sync::atomic::Ordering;
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

impl<P: Platform> Netmap<P> {
    pub(super) fn req_port_info(&self, req: &mut Request) -> Result<()> {
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

    pub(super) fn req_pools_info(&self, req: &mut Request) -> Result<()> {
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

    pub(super) fn req_hdr_set(&self, req: &mut Request) -> Result<()> {
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

    pub(super) fn req_hdr_get(&self, req: &mut Request) -> Result<()> {
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
}
