//! The global context (one per loaded module), per-file state, and the
//! handling of ioctl, poll and mmap (§1.2, §4, §6.6, §6.7).
//!
//! Control requests run under one global mutex (`NMG_LOCK` in the
//! reference). The data path (syncs, poll) takes no global lock: it reads
//! the file's binding, which is written once at REGISTER, and serializes
//! on each kring's busy try-lock.
//!
//! One concern per module, each adding methods to [`Netmap`]:
//!
//! | module | what |
//! | --- | --- |
//! | this one | the context, per-file state, open/close, mmap, leak figures |
//! | `ioctl` | ioctl entry, NIOCCTRL copy-in/out, request dispatch (§4.1) |
//! | `regions` | memory regions by id, private regions, EXTMEM regions (§5) |
//! | `lookup` | from a name to a port (§7.1), switch registry, port destruction |
//! | `ports` | making ports: VALE, pipes, null, interfaces, monitors |
//! | `register` | REGISTER and unbind (§4.4) |
//! | `info` | PORT_INFO_GET, POOLS_INFO_GET, PORT_HDR_SET/GET |
//! | `vale_ctl` | VALE_LIST, VALE_ATTACH/DETACH, polling mode (§8.5, §8.6, §4.9) |
//! | `persistent` | VALE_NEWIF / VALE_DELIF (§8.4) |
//! | `legacy` | NIOCREGIF / NIOCGINFO (§4.12) |
//! | `datapath` | NIOCTXSYNC / NIOCRXSYNC and poll (§6.6, §6.7) |
//! | `csb` | CSB mode: the CSB option, CSB_ENABLE, CSB access (§4.10) |
//! | `kloop` | the sync kernel loop: SYNC_KLOOP_START / STOP (§4.10) |
//! | `offsets` | the OFFSETS option of REGISTER (§4.11) |

#![deny(unsafe_code)]

mod csb;
mod datapath;
mod info;
mod ioctl;
mod kloop;
mod legacy;
mod lookup;
mod offsets;
mod persistent;
mod ports;
mod regions;
mod register;
mod vale_ctl;

use crate::adapter::{Adapter, Kind, RingRange};
use crate::kring::{Dir, NKR_STOPPED};
use crate::mem::{MemBudget, MemObj, NetmapMem};
use crate::netif::NetifProvider;
use crate::platform::{Platform, WaitQueue};
use crate::sync::{Lock, Once};
use crate::vale::Switch;
use crate::{Errno, Params, Result};
use alloc::boxed::Box;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
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
    /// The memory budget (bytes).
    pub mem_budget: u64,
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
    /// CSB mode and the sync kernel loop (`csb.rs`, `kloop.rs`).
    kloop: kloop::FileKloop<P>,
}

impl<P: Platform> NetmapPriv<P> {
    pub fn binding(&self) -> Option<&Binding<P>> {
        self.binding.get()
    }

    /// Whether the file is in CSB mode (§4.10).
    pub fn csb_mode(&self) -> bool {
        self.kloop
            .csb_mode
            .load(core::sync::atomic::Ordering::Acquire)
    }

    /// Whether a sync kernel loop runs on the file (for tests and
    /// diagnostics: it may end at any moment).
    pub fn kloop_running(&self) -> bool {
        self.kloop.ctl.lock().running
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
            && let Some(nat) = &ni.native
        {
            nat.detach(&na);
        }
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
            kloop: kloop::FileKloop::new().ok_or(Errno::ENOMEM)?,
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
        st.mem_budget = self.budget.limit();
        st
    }

    // ------------------------------------------------------------------
    // mmap (§5.6)

    pub fn mmap_check(&self, np: &NetmapPriv<P>, offset: u64, len: u64) -> Result<()> {
        let b = np.binding().ok_or(Errno::EINVAL)?;
        let end = offset.checked_add(len).ok_or(Errno::EINVAL)?;
        // A region over application memory (EXTMEM) is not mapped again:
        // the application has it (libnetmap does not map it either).
        if end > b.na.mem.memsize() || b.na.mem.is_ext() {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    pub fn mmap_page(&self, np: &NetmapPriv<P>, offset: u64) -> Option<core::ptr::NonNull<u8>> {
        np.binding()?.na.mem.page_at(offset)
    }
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
