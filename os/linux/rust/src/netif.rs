//! Linux network interfaces through the emulated ("generic") adapter
//! (spec §10.3): the core's [`NetifProvider`] / [`NetifOps`] over the
//! `nm_glue_gna_*` functions of glue.c, and the entry points glue.c calls
//! from the device's receive and transmit paths. The provider also makes
//! the interfaces of persistent VALE ports (§8.4, `nm_glue_pif_*`).
//!
//! glue.c owns the device side (`struct nm_gna`: device reference,
//! rx_handler, ndo_start_xmit hook, unregister notifier); this file owns
//! the netmap side: which ring a frame goes to, and the adapter reference
//! the hooks use while the port is in netmap mode.

use crate::ffi;
use crate::platform::LinuxPlatform;
use alloc::sync::Arc;
use core::ffi::c_void;
use core::ptr::NonNull;
use netmap_core::adapter::Adapter;
use netmap_core::kring::Dir;
use netmap_core::name::Name;
use netmap_core::native::{DescBuf, NativeConfig, NativeOps, RxDone};
use netmap_core::netif::{Frame, NetifConfig, NetifOps, NetifProvider};
use netmap_core::sync::Lock;
use netmap_core::{Errno, Result};

type Na = Adapter<LinuxPlatform>;

/// Largest frame the generic adapter receives (spec §10.3), in a chain of
/// up to 16 buffers.
const MAX_RX_BUF: u32 = 32768;
/// An Ethernet header: shorter frames are not transmitted.
const ETH_HLEN: usize = 14;

/// Looks up Linux Ethernet devices in the caller's network namespace.
pub struct LinuxNetifProvider;

impl NetifProvider<LinuxPlatform> for LinuxNetifProvider {
    fn lookup(&self, name: &[u8]) -> Option<Arc<dyn NetifOps<LinuxPlatform>>> {
        let adapter = Lock::new(None)?;
        let mut info = ffi::GnaInfo::default();
        // SAFETY: name is valid for name.len() bytes, info for writes.
        let gna = unsafe { ffi::nm_glue_gna_lookup(name.as_ptr(), name.len(), &mut info) };
        let gna = NonNull::new(gna)?;
        let native = match NonNull::new(info.native) {
            Some(nn) => {
                let n = Arc::new(LinuxNative {
                    nn,
                    cfg: NativeConfig {
                        rings: info.native_rings,
                        descs: info.native_descs,
                    },
                });
                Some(n)
            }
            None => None,
        };
        Some(Arc::new(GenericNetif {
            gna,
            native,
            name: Name::from_c(name),
            cfg: NetifConfig {
                rings: [info.rx_rings, info.tx_rings],
                slots: [info.rx_slots, info.tx_slots],
                mtu: info.mtu,
                max_rx_buf: MAX_RX_BUF,
            },
            adapter,
        }))
    }

    fn exists(&self, name: &[u8]) -> bool {
        // SAFETY: name is valid for name.len() bytes.
        unsafe { ffi::nm_glue_netdev_exists(name.as_ptr(), name.len()) }
    }

    fn create_persistent(&self, name: &[u8]) -> Result<()> {
        // SAFETY: name is valid for name.len() bytes; called in process
        // context with only the core's mutex held (glue.c takes rtnl).
        match unsafe { ffi::nm_glue_pif_create(name.as_ptr(), name.len()) } {
            0 => Ok(()),
            e => Err(Errno(-e)),
        }
    }

    fn delete_persistent(&self, name: &[u8]) -> Result<()> {
        // SAFETY: as in create_persistent.
        match unsafe { ffi::nm_glue_pif_delete(name.as_ptr(), name.len()) } {
            0 => Ok(()),
            e => Err(Errno(-e)),
        }
    }
}

/// One Linux device seen through the generic adapter.
pub struct GenericNetif {
    /// glue.c's `struct nm_gna`, owned (freed on drop).
    gna: NonNull<c_void>,
    name: Name,
    cfg: NetifConfig,
    /// The adapter while in netmap mode: glue.c's hooks use its address.
    adapter: Lock<crate::platform::Mutex, Option<Arc<Na>>>,
    /// The device's netmap-aware driver, if any (module parameter
    /// `admode` allowing).
    native: Option<Arc<LinuxNative>>,
}

/// A netmap-aware driver's hooks (`struct netmap_native` of glue.c, which
/// calls the driver's `struct netmap_native_ops`).
pub struct LinuxNative {
    nn: NonNull<c_void>,
    cfg: NativeConfig,
}

// SAFETY: the driver's ops are callable from any thread; the core
// serializes the calls of one ring (busy lock) and stops calling before
// the driver detaches (glue.c frees nn only after netif_gone returned).
unsafe impl Send for LinuxNative {}
// SAFETY: as above.
unsafe impl Sync for LinuxNative {}

impl NativeOps for LinuxNative {
    fn config(&self) -> NativeConfig {
        self.cfg
    }
    fn register(&self, on: bool) -> Result<()> {
        // SAFETY: nn is attached (see the Send impl); process context.
        match unsafe { ffi::nm_glue_native_reg(self.nn.as_ptr(), on) } {
            0 => Ok(()),
            e => Err(Errno(-e)),
        }
    }
    fn tx_post(&self, ring: u32, desc: u32, b: &DescBuf) -> bool {
        // SAFETY: nn attached; b.addr is a valid netmap buffer of at least
        // b.len bytes (checked by the core), alive while in netmap mode.
        unsafe {
            ffi::nm_glue_native_post(
                self.nn.as_ptr(),
                true,
                ring,
                desc,
                b.addr as *mut u8,
                b.len,
                b.reload,
            )
        }
    }
    fn tx_kick(&self, ring: u32) {
        // SAFETY: nn attached.
        unsafe { ffi::nm_glue_native_kick(self.nn.as_ptr(), true, ring) }
    }
    fn tx_reclaim(&self, ring: u32) -> u32 {
        // SAFETY: nn attached.
        unsafe { ffi::nm_glue_native_tx_reclaim(self.nn.as_ptr(), ring) }
    }
    fn rx_post(&self, ring: u32, desc: u32, b: &DescBuf) -> bool {
        // SAFETY: as in tx_post.
        unsafe {
            ffi::nm_glue_native_post(
                self.nn.as_ptr(),
                false,
                ring,
                desc,
                b.addr as *mut u8,
                b.len,
                b.reload,
            )
        }
    }
    fn rx_kick(&self, ring: u32) {
        // SAFETY: nn attached.
        unsafe { ffi::nm_glue_native_kick(self.nn.as_ptr(), false, ring) }
    }
    fn rx_poll(&self, ring: u32) -> Option<RxDone> {
        let (mut desc, mut len) = (0u32, 0u32);
        // SAFETY: nn attached; desc and len are valid for writes.
        let got =
            unsafe { ffi::nm_glue_native_rx_poll(self.nn.as_ptr(), ring, &mut desc, &mut len) };
        got.then_some(RxDone { desc, len })
    }
    fn intr(&self, dir: Dir, ring: u32, on: bool) -> bool {
        // SAFETY: nn attached.
        unsafe { ffi::nm_glue_native_intr(self.nn.as_ptr(), dir == Dir::Tx, ring, on) }
    }
}

// SAFETY: the nm_gna is used only through glue.c functions, which
// serialize the control path with rtnl and protect the data path with RCU.
unsafe impl Send for GenericNetif {}
// SAFETY: as above.
unsafe impl Sync for GenericNetif {}

impl Drop for GenericNetif {
    fn drop(&mut self) {
        // SAFETY: gna came from nm_glue_gna_lookup and is freed once, here.
        unsafe { ffi::nm_glue_gna_free(self.gna.as_ptr()) }
    }
}

/// A fresh skb for `len` bytes with its data area as a slice.
fn skb_alloc<'a>(len: usize) -> Option<(NonNull<c_void>, &'a mut [u8])> {
    let mut data = core::ptr::null_mut();
    // SAFETY: data is valid for writes.
    let skb = NonNull::new(unsafe { ffi::nm_glue_skb_alloc(len, &mut data) })?;
    // SAFETY: nm_glue_skb_alloc put len bytes at data in the new skb, which
    // is ours until handed to nm_glue_gna_xmit/inject.
    let out = unsafe { core::slice::from_raw_parts_mut(data, len) };
    Some((skb, out))
}

/// A fresh skb holding `frame` (`len` bytes: its length when asked). If
/// the user shortened a slot meanwhile, the rest is zeros, never stale
/// kernel memory.
fn skb_from(frame: &Frame<'_, LinuxPlatform>, len: usize) -> Option<NonNull<c_void>> {
    let (skb, out) = skb_alloc(len)?;
    let got = frame.copy_to(out);
    out[got..].fill(0);
    Some(skb)
}

impl NetifOps<LinuxPlatform> for GenericNetif {
    fn name(&self) -> Name {
        self.name
    }

    fn config(&self) -> NetifConfig {
        self.cfg
    }

    fn register(&self, na: &Arc<Na>, on: bool) -> Result<()> {
        let mut cur = self.adapter.lock();
        if on {
            if cur.is_some() {
                return Ok(());
            }
            let ctx = Arc::as_ptr(na).cast::<c_void>();
            // SAFETY: live gna; ctx stays valid while the hooks are
            // installed: we keep `na` alive until they are removed.
            let r = unsafe { ffi::nm_glue_gna_register(self.gna.as_ptr(), ctx, true) };
            if r != 0 {
                return Err(Errno(-r));
            }
            if let Some(n) = &self.native {
                // SAFETY: nn attached; ctx stays valid until cleared below.
                unsafe { ffi::nm_glue_native_set_ctx(n.nn.as_ptr(), ctx) };
            }
            *cur = Some(na.clone());
        } else {
            // SAFETY: live gna; after this call no hook runs any more.
            unsafe { ffi::nm_glue_gna_register(self.gna.as_ptr(), core::ptr::null(), false) };
            if cur.is_some()
                && let Some(n) = &self.native
            {
                // SAFETY: nn attached (the first register(off) after
                // register(on) happens before the driver's detach returns;
                // later ones find `cur` empty); waits for irqs in flight.
                unsafe { ffi::nm_glue_native_set_ctx(n.nn.as_ptr(), core::ptr::null()) };
            }
            cur.take();
        }
        Ok(())
    }

    fn transmit(&self, ring: u32, frame: &Frame<'_, LinuxPlatform>) -> bool {
        let len = frame.len();
        if len < ETH_HLEN {
            return true; // not a frame: dropped
        }
        let Some(skb) = skb_from(frame, len) else {
            return false;
        };
        // SAFETY: live gna; the skb is ours and consumed by the call.
        // -EAGAIN (qdisc full) and -ENXIO (gone) leave the slot pending.
        unsafe { ffi::nm_glue_gna_xmit(self.gna.as_ptr(), skb.as_ptr(), ring) == 0 }
    }

    fn host_inject(&self, frame: &Frame<'_, LinuxPlatform>) -> Result<()> {
        let skb = skb_from(frame, frame.len()).ok_or(Errno::ENOMEM)?;
        // SAFETY: live gna; the skb is ours and consumed by the call.
        match unsafe { ffi::nm_glue_gna_inject(self.gna.as_ptr(), skb.as_ptr()) } {
            0 => Ok(()),
            e => Err(Errno(-e)),
        }
    }

    fn tx_inflight(&self, ring: u32) -> u32 {
        // SAFETY: live gna; only reads an atomic counter.
        unsafe { ffi::nm_glue_gna_tx_inflight(self.gna.as_ptr(), ring) }
    }

    fn native(&self) -> Option<Arc<dyn NativeOps>> {
        self.native.clone().map(|n| n as Arc<dyn NativeOps>)
    }
}

/// An interrupt of hardware ring `ring` (TX if `tx`) of a port in native
/// mode: wake its users, or forward through the switch the interface is
/// attached to. Called by glue.c's `netmap_native_irq` from the driver's
/// NAPI poll (softirq), under RCU.
///
/// # Safety
/// `ctx` is the adapter pointer Rust gave `nm_glue_native_set_ctx`, read
/// under RCU (clearing it waits for a grace period, and the adapter is
/// kept alive until then).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_native_irq(ctx: *const c_void, tx: bool, ring: u32) {
    // SAFETY: alive by the contract.
    let na = unsafe { &*ctx.cast::<Na>() };
    if tx {
        netmap_core::native::tx_irq(na, ring);
    } else {
        netmap_core::native::rx_irq(na, ring);
    }
}

/// The driver reset its device: ring `ring` restarted empty at descriptor
/// `first` (`netmap_native_reset`). Process or softirq context.
///
/// # Safety
/// As for [`nm_rs_native_irq`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_native_reset(
    ctx: *const c_void,
    tx: bool,
    ring: u32,
    first: u32,
) -> bool {
    // SAFETY: alive by the contract.
    let na = unsafe { &*ctx.cast::<Na>() };
    let netmap_core::adapter::Kind::Netif(ni) = &na.kind else {
        return false;
    };
    let Some(np) = &ni.native else { return false };
    let d = if tx { Dir::Tx } else { Dir::Rx };
    netmap_core::native::ring_reset(na, np, d, ring, first)
}

/// A frame from the device (`host` false: received; true: sent by the
/// host stack) for RX queue `queue`: pushed into the matching hardware or
/// host RX ring. Returns false if it was dropped.
///
/// # Safety
/// `ctx` is the adapter pointer glue.c got from `register(on)` and the
/// hooks are still installed (glue.c calls this from its rx_handler and
/// from its host RX tasklet, which unhook kills before `register(off)`
/// returns); `data` is valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_netif_rx(
    ctx: *const c_void,
    queue: u32,
    host: bool,
    data: *const u8,
    len: usize,
) -> bool {
    // SAFETY: by the contract the adapter is alive (GenericNetif keeps an
    // Arc until the hooks are removed and synchronize_net() returned).
    let na = unsafe { &*ctx.cast::<Na>() };
    // Larger frames (GRO-merged ones) are dropped, as by the reference.
    if len > MAX_RX_BUF as usize {
        return false;
    }
    // SAFETY: data is valid for len bytes by the contract.
    let frame = unsafe { core::slice::from_raw_parts(data, len) };
    na.rx_push_queue(queue, host, frame)
}

/// The end of a batch of [`nm_rs_netif_rx`] calls: wake the readers of the
/// rings that got frames (or forward them, for an interface attached to a
/// switch). glue.c calls it from a tasklet scheduled by its rx_handler
/// (after the NAPI poll that received the batch) and at the end of its
/// host RX tasklet.
///
/// # Safety
/// As for [`nm_rs_netif_rx`]: `ctx` is the adapter of a hooked device.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_netif_rx_flush(ctx: *const c_void) {
    // SAFETY: alive by the contract (as in nm_rs_netif_rx).
    let na = unsafe { &*ctx.cast::<Na>() };
    na.rx_flush();
}

/// The device's qdisc had no room (a transmit was refused): wake the
/// waiters of the hardware TX rings so that they sync and retry. Called
/// from glue.c's retry timer (softirq).
///
/// # Safety
/// `ctx` is the adapter pointer glue.c got from `register(on)`, still
/// hooked (glue.c clears it, then waits for the timer, before
/// `register(off)` returns).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_netif_tx_wake(ctx: *const c_void) {
    // SAFETY: alive by the contract (as in nm_rs_netif_rx).
    let na = unsafe { &*ctx.cast::<Na>() };
    na.tx_wake();
}

/// Skbs of hardware TX ring `ring` completed (their count reached a
/// multiple of glue.c's wake batch): wake the ring's waiters so that
/// poll() syncs and finds the slots free. Called from the skb destructor,
/// in any context (hard irq included): only wakes wait queues.
///
/// # Safety
/// `ctx` is the adapter pointer glue.c got from `register(on)`, read under
/// RCU while still hooked (glue.c clears it, then waits for a grace
/// period, before `register(off)` returns).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nm_rs_netif_tx_done(ctx: *const c_void, ring: u32) {
    // SAFETY: alive by the contract (as in nm_rs_netif_rx).
    let na = unsafe { &*ctx.cast::<Na>() };
    if let Some(k) = na.kring(Dir::Tx, ring) {
        na.notify(k);
    }
}
