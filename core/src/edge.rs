//! What every OS edge keeps around the core, in one place: the module's
//! global context (created at load, dropped at unload) and the per-file
//! state that the OS's C glue holds as an opaque pointer between open and
//! the file's last release. Linux, FreeBSD (and any further OS) use the
//! same code; their entry points only translate arguments and errnos.

use crate::netmap::{MemStats, Netmap, NetmapPriv};
use crate::platform::Platform;
use alloc::boxed::Box;
use core::ffi::c_void;
use core::fmt;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

/// The module's global context, as a `static` of an OS crate.
pub struct Global<P: Platform> {
    ptr: AtomicPtr<Netmap<P>>,
}

impl<P: Platform> Default for Global<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Platform> Global<P> {
    /// No context yet (before load).
    pub const fn new() -> Self {
        Global {
            ptr: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Installs the context made at load.
    pub fn init(&self, nm: Box<Netmap<P>>) {
        let old = self.ptr.swap(Box::into_raw(nm), Ordering::AcqRel);
        debug_assert!(old.is_null(), "netmap: context installed twice");
    }

    /// The context.
    ///
    /// Panics outside load..unload: the glue calls entry points only in
    /// between, so that is a bug of the glue.
    pub fn get(&'static self) -> &'static Netmap<P> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: set by `init` from Box::into_raw and freed only by `exit`,
        // whose contract says no reference from `get` is alive then.
        unsafe { p.as_ref() }.expect("netmap: entry point called outside load..unload")
    }

    /// Drops the context (unload); nothing if there is none.
    ///
    /// # Safety
    ///
    /// No reference obtained from [`get`](Self::get) is alive and no other
    /// entry point runs or will run (the module is being unloaded).
    pub unsafe fn exit(&self) {
        let p = self.ptr.swap(ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: p came from Box::into_raw in `init`; nobody uses it
            // any more (function contract).
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// Per-file state as the opaque pointer the glue keeps.
pub fn priv_into_raw<P: Platform>(np: Box<NetmapPriv<P>>) -> *mut c_void {
    Box::into_raw(np).cast()
}

/// The per-file state behind a pointer from [`priv_into_raw`].
///
/// # Safety
///
/// `p` came from [`priv_into_raw`] with the same `P` and has not been
/// given to [`priv_from_raw`] yet; the reference is not used after that.
pub unsafe fn priv_ref<'a, P: Platform>(p: *mut c_void) -> &'a NetmapPriv<P> {
    // SAFETY: a live Box<NetmapPriv<P>> by the function contract; shared
    // read-only (NetmapPriv synchronizes internally).
    unsafe { &*p.cast::<NetmapPriv<P>>() }
}

/// Takes the per-file state back at the file's last release.
///
/// # Safety
///
/// `p` came from [`priv_into_raw`] with the same `P`, is taken back once,
/// and no reference from [`priv_ref`] outlives this call.
pub unsafe fn priv_from_raw<P: Platform>(p: *mut c_void) -> Box<NetmapPriv<P>> {
    // SAFETY: by the function contract.
    unsafe { Box::from_raw(p.cast::<NetmapPriv<P>>()) }
}

/// The leak-check counters as "name value" lines (Linux debugfs
/// `netmap/stats`, FreeBSD sysctl `dev.netmap.stats`).
impl fmt::Display for MemStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "if_used {}\nring_used {}\nbuf_used {}\nprivate_mems {}\nswitches {}\npersistent {}\n",
            self.if_used,
            self.ring_used,
            self.buf_used,
            self.private_mems,
            self.switches,
            self.persistent
        )
    }
}

#[cfg(all(test, feature = "host"))]
mod tests {
    use super::*;
    use crate::host::HostPlatform;

    static G: Global<HostPlatform> = Global::new();

    #[test]
    fn context_and_priv_round_trip() {
        let nm = Netmap::new(HostPlatform::new(), crate::Params::default()).unwrap();
        G.init(nm);
        let np = G.get().open().unwrap();
        let raw = priv_into_raw(np);
        // SAFETY: raw is live and taken back below.
        assert!(unsafe { priv_ref::<HostPlatform>(raw) }.binding().is_none());
        // SAFETY: from priv_into_raw, once.
        G.get()
            .release(unsafe { priv_from_raw::<HostPlatform>(raw) });
        assert_eq!(G.get().stats().to_string().lines().count(), 6);
        // SAFETY: no reference from get() is alive.
        unsafe { G.exit() };
        // SAFETY: nothing to drop twice.
        unsafe { G.exit() };
    }
}
