//! Memory regions ("allocators", §5.1): lookup by id and the making of
//! private regions.

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
        let mem = Arc::new(NetmapMem::new(self.platform.clone(), id, params, true)?);
        mem.finalize()?;
        try_push(&mut g.mems, Arc::downgrade(&mem))?;
        g.last_mem_id = id;
        Ok(mem)
    }
}
