//! Memory regions ("allocators", §5.1): lookup by id, the making of
//! private regions, and the report of the budget they share.

#![deny(unsafe_code)]

use super::{Globals, Netmap, try_push};
use crate::Result;
use crate::mem::{MemParams, NetmapMem};
use crate::platform::Platform;
use alloc::sync::{Arc, Weak};

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

    /// A new private region (next unused id after the last one, §5.1).
    pub(super) fn new_private_mem(
        &self,
        g: &mut Globals<P>,
        params: &MemParams,
    ) -> Result<Arc<NetmapMem<P>>> {
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
