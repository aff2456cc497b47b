//! Memory regions ("allocators", §5.1): lookup by id, the making of
//! private regions, regions over application memory (the EXTMEM option
//! of REGISTER, §5), and the report of the budget they share.

#![deny(unsafe_code)]

use super::{Globals, Netmap, try_push};
use crate::mem::{MemParams, NetmapMem, PoolParams};
use crate::platform::{PAGE_SIZE, Platform};
use crate::{Errno, Result};
use alloc::sync::{Arc, Weak};
use netmap_uapi::pod::Pod;
use netmap_uapi::{NmreqOptExtmem, NmreqOption, NmreqPoolsInfo};

impl<P: Platform> Netmap<P> {
    pub(super) fn find_mem(&self, g: &mut Globals<P>, id: u16) -> Option<Arc<NetmapMem<P>>> {
        if id == 1 {
            return Some(self.global_mem.clone());
        }
        g.mems
            .iter()
            .filter_map(Weak::upgrade)
            .find(|m| m.id() == id)
    }

    /// The next unused private region id after the last one (§5.1).
    fn next_mem_id(&self, g: &mut Globals<P>) -> u16 {
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
        id
    }

    /// A new private region (next unused id after the last one, §5.1).
    pub(super) fn new_private_mem(
        &self,
        g: &mut Globals<P>,
        params: &MemParams,
    ) -> Result<Arc<NetmapMem<P>>> {
        let id = self.next_mem_id(g);
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

    /// The EXTMEM option of REGISTER (`body`: what follows the option
    /// header): the region over the application memory it names, made now
    /// or shared with the region already built over the same pages. Zero
    /// pool fields take the private minimums (the `priv_*` parameters) and
    /// are written back into `body`. Errors: `EINVAL` (address not page
    /// aligned, size 0, pool sizes out of range, no usable buffer 0),
    /// `EFAULT` (memory not mapped or not writable), `ENOMEM`.
    #[inline(never)] // keeps the stack frame of the request dispatch small
    pub(super) fn extmem_region(
        &self,
        g: &mut Globals<P>,
        body: &mut [u8],
    ) -> Result<Arc<NetmapMem<P>>> {
        let hdr = core::mem::size_of::<NmreqOption>();
        let mut raw = [0u8; core::mem::size_of::<NmreqOptExtmem>()];
        let n = body.len().min(raw.len() - hdr);
        raw[hdr..hdr + n].copy_from_slice(&body[..n]);
        let mut opt = NmreqOptExtmem::read_from_prefix(&raw).unwrap_or_else(NmreqOptExtmem::zeroed);
        let pi = &mut opt.nro_info;
        let min = &self.params.private;
        let dflt = |v: &mut u32, d: u32| {
            if *v == 0 {
                *v = d;
            }
        };
        dflt(&mut pi.nr_if_pool_objtotal, min.if_pool.objtotal);
        dflt(&mut pi.nr_if_pool_objsize, min.if_pool.objsize);
        dflt(&mut pi.nr_ring_pool_objtotal, min.ring_pool.objtotal);
        dflt(&mut pi.nr_ring_pool_objsize, min.ring_pool.objsize);
        dflt(&mut pi.nr_buf_pool_objtotal, min.buf_pool.objtotal);
        dflt(&mut pi.nr_buf_pool_objsize, min.buf_pool.objsize);
        let out = opt.as_bytes();
        body[..n].copy_from_slice(&out[hdr..hdr + n]);
        let usr = opt.nro_usrptr;
        let size = opt.nro_info.nr_memsize;
        // The region starts on a page: the application's base address is
        // region offset 0, as libnetmap assumes.
        if usr % PAGE_SIZE as u64 != 0 || size == 0 {
            return Err(Errno::EINVAL);
        }
        let npages = size.div_ceil(PAGE_SIZE as u64);
        if usr.checked_add(npages * PAGE_SIZE as u64).is_none() {
            return Err(Errno::EFAULT);
        }
        let npages = usize::try_from(npages).map_err(|_| Errno::ENOMEM)?;
        let pages = self.platform.pin_user_pages(usr, npages)?;
        g.mems.retain(|w| w.strong_count() > 0);
        if let Some(m) = g
            .mems
            .iter()
            .filter_map(Weak::upgrade)
            .find(|m| m.same_user_pages(&pages))
        {
            // Already a region: share it (the new pin is released).
            return Ok(m);
        }
        let params = pools_params(&opt.nro_info);
        let id = self.next_mem_id(g);
        let mem = Arc::new(NetmapMem::new_ext(
            self.platform.clone(),
            id,
            &params,
            size,
            pages,
            self.budget.clone(),
        )?);
        try_push(&mut g.mems, Arc::downgrade(&mem))?;
        g.last_mem_id = id;
        Ok(mem)
    }

    /// The memory budget and every live region with its pools, as text
    /// lines (see [`crate::mem::MemBudget::write_summary`],
    /// [`NetmapMem::write_summary`]).
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
}

/// Pool sizes from an EXTMEM request's pools info.
fn pools_params(pi: &NmreqPoolsInfo) -> MemParams {
    let p = |objsize, objtotal| PoolParams { objsize, objtotal };
    MemParams {
        if_pool: p(pi.nr_if_pool_objsize, pi.nr_if_pool_objtotal),
        ring_pool: p(pi.nr_ring_pool_objsize, pi.nr_ring_pool_objtotal),
        buf_pool: p(pi.nr_buf_pool_objsize, pi.nr_buf_pool_objtotal),
    }
}
