//! netmap-core: the OS-independent netmap engine.
//!
//! Everything netmap does that does not depend on an operating system lives
//! here, behind the [`platform::Platform`] trait: the memory allocator
//! ([`mem`]), krings and the ring protocol ([`kring`]), ports ([`adapter`]):
//! VALE switches ([`vale`]) with the interfaces attached to them
//! ([`bwrap`]), pipes ([`pipe`]) and null ports, and the
//! request handling of `/dev/netmap` ([`netmap`]). The OS crates only
//! translate between their kernel and these types. The core starts no
//! threads by itself: where it needs one (VALE polling mode) it asks the
//! platform for a kernel thread ([`platform::Platform::spawn_thread`]).
//!
//! `unsafe` is confined to [`sync`] (lock wrappers), [`shm`] (memory shared
//! with userspace), [`mem`] (cluster ownership), [`edge`] (the context and
//! per-file pointers the OS glue holds) and the test platform ([`host`]);
//! every other module denies it.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod adapter;
pub mod bwrap;
pub mod edge;
pub mod error;
pub mod fmtbuf;
#[cfg(feature = "host")]
pub mod host;
#[cfg(feature = "host")]
pub mod host_native;
pub mod ioctl;
pub mod kring;
pub mod mem;
pub mod monitor;
pub mod name;
pub mod native;
pub mod netif;
pub mod netmap;
pub mod param_table;
pub mod pipe;
pub mod platform;
pub mod request;
pub mod shm;
pub mod sync;
pub mod vale;

pub use error::{Errno, Result};
pub use netmap::{Binding, MemStats as GlobalStats, Netmap, NetmapPriv};
pub use platform::Platform;

use core::sync::atomic::AtomicU32;

/// Module parameters (spec §12). Atomics: the OS may change the writable
/// ones at run time (sysfs / sysctl).
#[derive(Debug)]
pub struct Params {
    pub verbose: AtomicU32,
    pub no_timestamp: AtomicU32,
    pub fwd: AtomicU32,
    pub bridge_batch: AtomicU32,
    /// Global allocator (mem id 1).
    pub global: mem::MemParams,
    /// Minimums of private allocators.
    pub private: mem::MemParams,
    pub max_bridges: u32,
    /// Caps against absurd requests (spec issue "resource caps").
    pub max_rings: u32,
    pub max_slots: u32,
    pub max_extra_bufs: u32,
    /// Budget of all of netmap's memory in bytes (0: half of the RAM,
    /// [`mem::default_budget`]).
    pub max_mem: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            verbose: AtomicU32::new(0),
            no_timestamp: AtomicU32::new(0),
            fwd: AtomicU32::new(0),
            bridge_batch: AtomicU32::new(vale::NM_BDG_BATCH),
            global: mem::MemParams::global_default(),
            private: mem::MemParams::private_default(),
            max_bridges: 8,
            max_rings: 256,
            max_slots: 4096,
            max_extra_bufs: 524288,
            max_mem: 0,
        }
    }
}

#[cfg(feature = "host")]
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Netmap<host::HostPlatform>>();
    assert_send_sync::<NetmapPriv<host::HostPlatform>>();
};
