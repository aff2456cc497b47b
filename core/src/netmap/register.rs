//! REGISTER (§4.4): binding a file to a port, and the unbind at close.

#![deny(unsafe_code)]

use super::{Binding, Globals, Netmap, NetmapPriv};
use crate::adapter::{Adapter, Kind};
use crate::kring::Dir;
use crate::platform::Platform;
use crate::request::Request;
use crate::{Errno, Result};
use alloc::sync::Arc;
use core::sync::atomic::Ordering;
use netmap_uapi::*;

impl<P: Platform> Netmap<P> {
    pub(super) fn req_register(&self, np: &NetmapPriv<P>, req: &mut Request) -> Result<()> {
        let mut g = self.g.lock();
        if np.binding().is_some() {
            return Err(Errno::EBUSY);
        }
        let mut reg: NmreqRegister = req.body();
        if reg.nr_mode == NR_REG_DEFAULT {
            return Err(Errno::EINVAL);
        }
        // EXTMEM (§4.4 step 2): the port is made in (or an idle NIC moved
        // to) the region over the application's memory, as if its id had
        // been given; this reference keeps the region alive until a port
        // holds it.
        let _ext = match req.opt(NETMAP_REQ_OPT_EXTMEM) {
            Some(i) => {
                let r = self.extmem_region(&mut g, &mut req.opts[i].body);
                req.set_opt_status(i, r.as_ref().map(|_| ()).map_err(|e| *e));
                let m = r?;
                reg.nr_mem_id = m.id();
                Some(m)
            }
            None => None,
        };
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
        req: &mut Request,
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
        na.bind_rings_off(&ranges, exclusive)?;
        // OFFSETS (§4.4 step 7, §4.11): on the rings just bound, before
        // other ports may deliver into the new ones (the initial offsets
        // are in the slots before the first frame).
        if let Some(i) = req.opt(NETMAP_REQ_OPT_OFFSETS) {
            let r = self.offsets_option(na, &ranges, &mut req.opts[i].body);
            req.set_opt_status(i, r);
            if let Err(e) = r {
                na.unbind_rings(&ranges, exclusive);
                return Err(e);
            }
        }
        na.rings_on(&ranges);
        let nifp = match na.create_nifp(&ranges) {
            Ok(o) => o,
            Err(e) => {
                na.unbind_rings(&ranges, exclusive);
                return Err(e);
            }
        };
        // The CSB option (§4.10, step 8 of §4.4): validated on the new
        // binding's rings; installed with the binding below.
        let csb = match req.opt(NETMAP_REQ_OPT_CSB) {
            Some(i) => {
                let r = self.csb_validate(na, &ranges, flags, &req.opts[i].body);
                req.set_opt_status(i, r.map(|_| ()));
                match r {
                    Ok(c) => c,
                    Err(e) => {
                        na.mem.if_free(nifp);
                        na.unbind_rings(&ranges, exclusive);
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        // Options this implementation does not consume make REGISTER fail
        // (§4.4 step 10): only after a successful bind, so that bind errors
        // (EINVAL, EBUSY, ENOMEM) take precedence; the bind is undone.
        if req.has_unconsumed_option() {
            na.mem.if_free(nifp);
            na.unbind_rings(&ranges, exclusive);
            return Err(Errno::EOPNOTSUPP);
        }
        if let Kind::Netif(ni) = &na.kind {
            // A native port binds all its hardware rings or none.
            if ni.native.is_some()
                && let Err(e) = crate::native::NativePort::check_ranges(na, &ranges)
            {
                na.mem.if_free(nifp);
                na.unbind_rings(&ranges, exclusive);
                return Err(e);
            }
            let first = !na.in_netmap_mode();
            if first && let Err(e) = ni.ops.register(na, true) {
                na.mem.if_free(nifp);
                na.unbind_rings(&ranges, exclusive);
                return Err(e);
            }
            if let Some(nat) = &ni.native
                && let Err(e) = nat.bind(na, &ranges)
            {
                if first {
                    let _ = ni.ops.register(na, false);
                }
                na.mem.if_free(nifp);
                na.unbind_rings(&ranges, exclusive);
                return Err(e);
            }
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
        if let Some(csb) = csb {
            np.kloop.ctl.lock().csb = Some(csb);
            np.kloop.csb_mode.store(true, Ordering::Release);
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

    pub(super) fn unbind(&self, g: &mut Globals<P>, b: Binding<P>) {
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
        // The device gives back netmap's buffers before the rings go.
        if let Kind::Netif(ni) = &na.kind
            && let Some(nat) = &ni.native
        {
            nat.unbind(na, &b.ranges);
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
}
