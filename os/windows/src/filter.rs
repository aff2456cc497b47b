//! The NDIS 6 lightweight filter: NICs and their host stack in netmap mode,
//! and the core's `NetifProvider` over it.
//!
//! * One filter module per Ethernet miniport (the INF binds a modifying,
//!   optional filter to `ethernet`). Attach records the interface index
//!   and the adapter's instance name; detach takes the NIC out of netmap
//!   mode (`Netmap::netif_gone`) before the module goes.
//! * Names: `ifN` (N = the interface index, `Get-NetAdapter`'s ifIndex) or
//!   the adapter's instance name (ASCII, case-insensitive). Both name the
//!   same module; a second name of a module already in netmap mode gets
//!   `EBUSY` at register.
//! * Not in netmap mode, every handler passes traffic through unchanged.
//!   OID requests, status indications and PnP events are not filtered at
//!   all (their handlers are NULL: NDIS passes them through).
//! * Netmap mode (one hardware ring pair, one host ring pair, 1024 slots):
//!   - receive: every frame of the indicated NBLs is copied into hardware
//!     RX ring 0 and the NBLs are returned (or left to NDIS when indicated
//!     with `NDIS_RECEIVE_FLAGS_RESOURCES`): the stack does not see them;
//!   - send from the stack: copied into the host RX ring, completed with
//!     success;
//!   - TX slots: copied into one of 256 preallocated buffers, each with its
//!     own NBL + MDL, sent with `NdisFSendNetBufferLists`; the buffer (and
//!     its slot, through `tx_inflight`) stays busy until the send completes;
//!     no free buffer: the slot waits (woken by the next completion);
//!   - host TX ring: copied into a buffer and indicated up with
//!     `NDIS_RECEIVE_FLAGS_RESOURCES` (the NBL is ours again on return).
//! * Pause waits for our in-flight sends (`NDIS_STATUS_PENDING`, then
//!   `NdisFPauseComplete` from the last completion); while paused, netmap
//!   transmissions wait and the stack's sends fail with
//!   `NDIS_STATUS_PAUSED`.

use crate::ffi::{self, MDL, NDIS_HANDLE, NDIS_STATUS, NET_BUFFER, NET_BUFFER_LIST};
use crate::platform::{Mutex, SpinLock, WindowsPlatform};
use crate::{POOL_TAG, netmap};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicU32, Ordering};
use netmap_core::adapter::Adapter;
use netmap_core::kring::Dir;
use netmap_core::name::Name;
use netmap_core::netif::{Frame, NetifConfig, NetifOps, NetifProvider};
use netmap_core::sync::{Lock, Once};
use netmap_core::{Errno, Result};

type Na = Adapter<WindowsPlatform>;

/// Slots per ring of a NIC in netmap mode.
const SLOTS: u32 = 1024;
/// Transmit buffers per module (frames in flight).
const TX_BUFS: usize = 256;
/// Size of a transmit buffer: the largest frame sent.
const TX_BUF_SIZE: usize = 2048;
/// Largest received frame (a frame spanning several MDLs is gathered into
/// a buffer of this size).
const MAX_RX_FRAME: usize = 16384;
/// An Ethernet header: shorter frames are not sent.
const ETH_HLEN: usize = 14;
/// `DISPATCH_LEVEL`.
const DISPATCH_LEVEL: u8 = 2;
/// `MdlMappingNoExecute`.
const MDL_MAPPING_NO_EXECUTE: u32 = 0x4000_0000;

static DRIVER_HANDLE: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());
static MODULES: Once<Lock<Mutex, Vec<Arc<Module>>>> = Once::new();

static FRIENDLY: ffi::StaticUnicode<18> = ffi::StaticUnicode::new(b"netmap NDIS filter");
static UNIQUE: ffi::StaticUnicode<38> =
    ffi::StaticUnicode::new(b"{5cbf81bd-5055-47cd-9055-a76b2b4e3697}");
static SERVICE: ffi::StaticUnicode<6> = ffi::StaticUnicode::new(b"netmap");

/// The filter driver handle (for `NdisRegisterDeviceEx`).
pub fn driver_handle() -> NDIS_HANDLE {
    DRIVER_HANDLE.load(Ordering::Acquire)
}

/// `NdisFRegisterFilterDriver` with this module's handlers.
///
/// # Safety
/// Called once from DriverEntry with the driver object.
pub unsafe fn register(driver: *mut ffi::DRIVER_OBJECT) -> ffi::NTSTATUS {
    let Some(list) = Lock::new(Vec::new()) else {
        return ffi::STATUS_INSUFFICIENT_RESOURCES;
    };
    if MODULES.set(list).is_err() {
        return ffi::STATUS_UNSUCCESSFUL;
    }
    let chars = ffi::NDIS_FILTER_DRIVER_CHARACTERISTICS {
        Header: ffi::NDIS_OBJECT_HEADER {
            Type: ffi::NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS as u8,
            Revision: ffi::NDIS_FILTER_CHARACTERISTICS_REVISION_2,
            Size: ffi::NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2,
        },
        MajorNdisVersion: 6,
        MinorNdisVersion: 20,
        MajorDriverVersion: 1,
        MinorDriverVersion: 0,
        Flags: 0,
        FriendlyName: FRIENDLY.as_unicode(),
        UniqueName: UNIQUE.as_unicode(),
        ServiceName: SERVICE.as_unicode(),
        SetOptionsHandler: 0,
        SetFilterModuleOptionsHandler: 0,
        AttachHandler: Some(filter_attach),
        DetachHandler: Some(filter_detach),
        RestartHandler: Some(filter_restart),
        PauseHandler: Some(filter_pause),
        SendNetBufferListsHandler: Some(filter_send),
        SendNetBufferListsCompleteHandler: Some(filter_send_complete),
        CancelSendNetBufferListsHandler: 0,
        ReceiveNetBufferListsHandler: Some(filter_receive),
        ReturnNetBufferListsHandler: Some(filter_return),
        OidRequestHandler: 0,
        OidRequestCompleteHandler: 0,
        CancelOidRequestHandler: 0,
        DevicePnPEventNotifyHandler: 0,
        NetPnPEventHandler: 0,
        StatusHandler: 0,
        DirectOidRequestHandler: 0,
        DirectOidRequestCompleteHandler: 0,
        CancelDirectOidRequestHandler: 0,
        #[cfg(feature = "broken-layout")]
        NotInNdisH: 0,
    };
    let mut handle: NDIS_HANDLE = ptr::null_mut();
    // SAFETY: valid characteristics (NDIS copies them) and out pointer.
    let st = unsafe { ffi::NdisFRegisterFilterDriver(driver, driver.cast(), &chars, &mut handle) };
    if st != ffi::NDIS_STATUS_SUCCESS {
        return st;
    }
    DRIVER_HANDLE.store(handle, Ordering::Release);
    ffi::STATUS_SUCCESS
}

/// `NdisFDeregisterFilterDriver`: NDIS detaches every module first.
///
/// # Safety
/// Called once, after `register` succeeded.
pub unsafe fn deregister() {
    let h = DRIVER_HANDLE.swap(ptr::null_mut(), Ordering::AcqRel);
    if !h.is_null() {
        // SAFETY: our registration handle.
        unsafe { ffi::NdisFDeregisterFilterDriver(h) };
    }
}

/// Module states.
const PAUSED: u8 = 0;
const RUNNING: u8 = 1;
const PAUSING: u8 = 2;
const DETACHED: u8 = 3;

/// One preallocated transmit buffer.
struct TxBuf {
    nbl: *mut NET_BUFFER_LIST,
    mdl: *mut MDL,
    data: *mut u8,
}

/// Transmit side of a module (under its spin lock).
struct TxState {
    bufs: Vec<TxBuf>,
    free: Vec<u16>,
}

// SAFETY: the raw pointers are NDIS/pool objects owned by the module,
// used only with the lock held (or by NDIS while a send is in flight).
unsafe impl Send for TxState {}

/// A filter module: one NIC.
pub struct Module {
    handle: NDIS_HANDLE,
    if_index: u32,
    name: [u8; 63],
    name_len: usize,
    state: AtomicU8,
    pool: NDIS_HANDLE,
    inflight: AtomicU32,
    /// The adapter while in netmap mode.
    adapter: Lock<SpinLock, Option<Arc<Na>>>,
    /// Gathers frames spanning several MDLs.
    scratch: Lock<SpinLock, Vec<u8>>,
    tx: Lock<SpinLock, TxState>,
}

// SAFETY: the NDIS handles are usable from any thread; the rest is locks
// and atomics.
unsafe impl Send for Module {}
// SAFETY: as above.
unsafe impl Sync for Module {}

impl Module {
    fn name(&self) -> &[u8] {
        &self.name[..self.name_len]
    }

    /// Whether `name` names this module (`ifN` or its instance name).
    fn matches(&self, name: &[u8]) -> bool {
        if let Some(n) = name.strip_prefix(b"if")
            && let Some(idx) = parse_u32(n)
        {
            return idx == self.if_index;
        }
        !name.is_empty() && self.name().eq_ignore_ascii_case(name)
    }

    fn running(&self) -> bool {
        self.state.load(Ordering::Acquire) == RUNNING
    }

    /// The adapter, if in netmap mode.
    fn adapter(&self) -> Option<Arc<Na>> {
        self.adapter.lock().clone()
    }

    /// Allocates the transmit buffers (first register(on)).
    fn prepare_tx(&self) -> Result<()> {
        let mut tx = self.tx.lock();
        if !tx.bufs.is_empty() {
            return Ok(());
        }
        tx.bufs
            .try_reserve_exact(TX_BUFS)
            .map_err(|_| Errno::ENOMEM)?;
        tx.free
            .try_reserve_exact(TX_BUFS)
            .map_err(|_| Errno::ENOMEM)?;
        for i in 0..TX_BUFS {
            // SAFETY: plain pool allocation.
            let data = unsafe {
                ffi::ExAllocatePoolWithTag(ffi::NON_PAGED_POOL_NX, TX_BUF_SIZE, POOL_TAG)
            }
            .cast::<u8>();
            if data.is_null() {
                return Err(Errno::ENOMEM);
            }
            // SAFETY: a nonpaged buffer of TX_BUF_SIZE bytes.
            let mdl = unsafe {
                ffi::IoAllocateMdl(data.cast(), TX_BUF_SIZE as u32, 0, 0, ptr::null_mut())
            };
            if mdl.is_null() {
                // SAFETY: just allocated, unused.
                unsafe { ffi::ExFreePoolWithTag(data.cast(), POOL_TAG) };
                return Err(Errno::ENOMEM);
            }
            // SAFETY: the MDL describes nonpaged pool.
            unsafe { ffi::MmBuildMdlForNonPagedPool(mdl) };
            // SAFETY: our pool, our MDL.
            let nbl = unsafe {
                ffi::NdisAllocateNetBufferAndNetBufferList(self.pool, 0, 0, mdl, 0, TX_BUF_SIZE)
            };
            if nbl.is_null() {
                // SAFETY: unused.
                unsafe {
                    ffi::IoFreeMdl(mdl);
                    ffi::ExFreePoolWithTag(data.cast(), POOL_TAG);
                }
                return Err(Errno::ENOMEM);
            }
            tx.bufs.push(TxBuf { nbl, mdl, data });
            tx.free.push(i as u16);
        }
        Ok(())
    }

    /// Frees the transmit buffers (detach: nothing is in flight).
    fn free_tx(&self) {
        let mut tx = self.tx.lock();
        tx.free.clear();
        for b in tx.bufs.drain(..) {
            // SAFETY: not in flight (paused before detach), freed once.
            unsafe {
                ffi::NdisFreeNetBufferList(b.nbl);
                ffi::IoFreeMdl(b.mdl);
                ffi::ExFreePoolWithTag(b.data.cast(), POOL_TAG);
            }
        }
    }

    /// A free transmit buffer holding `frame` (its length set), or None.
    fn fill_buf(&self, frame: &Frame<'_, WindowsPlatform>) -> Option<u16> {
        let len = frame.len();
        let mut tx = self.tx.lock();
        let i = tx.free.pop()?;
        let b = &tx.bufs[i as usize];
        // SAFETY: the buffer is ours (taken off the free list).
        let out = unsafe { core::slice::from_raw_parts_mut(b.data, TX_BUF_SIZE) };
        let got = frame.copy_to(&mut out[..len]);
        out[got..len].fill(0);
        // SAFETY: our idle NBL and its one NET_BUFFER.
        unsafe {
            let nbl = &mut *b.nbl;
            nbl.Next = ptr::null_mut();
            nbl.Status = ffi::NDIS_STATUS_SUCCESS;
            nbl.SourceHandle = self.handle;
            nbl.Scratch = i as usize as *mut c_void;
            (*nbl.FirstNetBuffer).DataLength = len;
        }
        Some(i)
    }

    fn give_back(&self, i: u16) {
        self.tx.lock().free.push(i);
    }

    fn nbl_of(&self, i: u16) -> *mut NET_BUFFER_LIST {
        self.tx.lock().bufs[i as usize].nbl
    }
}

fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u32, |v, &d| v * 10 + u32::from(d - b'0')))
}

fn dispatch_flag() -> u32 {
    // SAFETY: no preconditions.
    if unsafe { ffi::KeGetCurrentIrql() } >= DISPATCH_LEVEL {
        1
    } else {
        0
    }
}

/// # Safety
/// `ctx` is the module context given to NDIS by `filter_attach`.
unsafe fn module<'a>(ctx: NDIS_HANDLE) -> &'a Module {
    // SAFETY: Arc::into_raw in attach; released only in detach, after
    // which NDIS calls no handler of the module.
    unsafe { &*ctx.cast::<Module>() }
}

unsafe extern "system" fn filter_attach(
    handle: NDIS_HANDLE,
    _driver_ctx: NDIS_HANDLE,
    params: *mut ffi::NDIS_FILTER_ATTACH_PARAMETERS,
) -> NDIS_STATUS {
    // SAFETY: NDIS passes valid attach parameters.
    let p = unsafe { &*params };
    if p.MiniportMediaType != ffi::NDIS_MEDIUM_802_3 {
        return ffi::NDIS_STATUS_FAILURE;
    }
    let mut name = [0u8; 63];
    let mut name_len = 0;
    // SAFETY: a counted UTF-16 string from NDIS, if present.
    if let Some(s) = unsafe { p.BaseMiniportInstanceName.as_ref() } {
        let n = usize::from(s.Length / 2);
        // SAFETY: Length bytes at Buffer.
        let wide = unsafe { core::slice::from_raw_parts(s.Buffer, n) };
        for &c in wide.iter().take(name.len()) {
            name[name_len] = if c < 0x80 { c as u8 } else { b'?' };
            name_len += 1;
        }
    }
    let pool_params = ffi::NET_BUFFER_LIST_POOL_PARAMETERS {
        Header: ffi::NDIS_OBJECT_HEADER {
            Type: ffi::NDIS_OBJECT_TYPE_DEFAULT as u8,
            Revision: ffi::NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
            Size: ffi::NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
        },
        ProtocolId: ffi::NDIS_PROTOCOL_ID_DEFAULT,
        fAllocateNetBuffer: 1,
        ContextSize: 0,
        PoolTag: POOL_TAG,
        DataSize: 0,
    };
    // SAFETY: valid parameters; the filter handle identifies us.
    let pool = unsafe { ffi::NdisAllocateNetBufferListPool(handle, &pool_params) };
    if pool.is_null() {
        return ffi::NDIS_STATUS_RESOURCES;
    }
    let free_pool = || {
        // SAFETY: allocated above, unused.
        unsafe { ffi::NdisFreeNetBufferListPool(pool) }
    };
    let (Some(adapter), Some(scratch), Some(tx)) = (
        Lock::new(None),
        Lock::new(Vec::new()),
        Lock::new(TxState {
            bufs: Vec::new(),
            free: Vec::new(),
        }),
    ) else {
        free_pool();
        return ffi::NDIS_STATUS_RESOURCES;
    };
    let m = Arc::new(Module {
        handle,
        if_index: p.IfIndex,
        name,
        name_len,
        state: AtomicU8::new(PAUSED),
        pool,
        inflight: AtomicU32::new(0),
        adapter,
        scratch,
        tx,
    });
    let attrs = ffi::NDIS_FILTER_ATTRIBUTES {
        Header: ffi::NDIS_OBJECT_HEADER {
            Type: ffi::NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES as u8,
            Revision: ffi::NDIS_FILTER_ATTRIBUTES_REVISION_1,
            Size: ffi::NDIS_SIZEOF_FILTER_ATTRIBUTES_REVISION_1,
        },
        Flags: 0,
    };
    let ctx = Arc::into_raw(m.clone());
    // SAFETY: our filter handle; ctx stays valid until detach.
    let st = unsafe { ffi::NdisFSetAttributes(handle, ctx.cast_mut().cast(), &attrs) };
    let mut list = MODULES.get().map(|l| l.lock());
    let listed = list.as_mut().is_some_and(|l| {
        l.try_reserve(1).is_ok() && {
            l.push(m.clone());
            true
        }
    });
    if st != ffi::NDIS_STATUS_SUCCESS || !listed {
        if listed && let Some(l) = list.as_mut() {
            l.retain(|x| !Arc::ptr_eq(x, &m));
        }
        // SAFETY: NDIS will not use ctx (attach fails).
        drop(unsafe { Arc::from_raw(ctx) });
        free_pool();
        return if st != ffi::NDIS_STATUS_SUCCESS {
            st
        } else {
            ffi::NDIS_STATUS_RESOURCES
        };
    }
    ffi::NDIS_STATUS_SUCCESS
}

unsafe extern "system" fn filter_detach(ctx: NDIS_HANDLE) {
    // SAFETY: NDIS passes our module context; it was paused first.
    let m = unsafe { module(ctx) };
    if let Some(l) = MODULES.get() {
        l.lock().retain(|x| !ptr::eq(Arc::as_ptr(x), m));
    }
    // Out of netmap mode before the module goes (takes the core lock, so
    // no list lock is held here).
    let mut buf = [0u8; 16];
    let name = if_name(m.if_index, &mut buf);
    netmap().netif_gone(name);
    if m.name_len > 0 {
        netmap().netif_gone(m.name());
    }
    m.adapter.lock().take();
    m.state.store(DETACHED, Ordering::Release);
    m.free_tx();
    // SAFETY: no NBL of the pool is in use (freed above, nothing in flight).
    unsafe { ffi::NdisFreeNetBufferListPool(m.pool) };
    // SAFETY: the reference given to NDIS in attach; NDIS is done with it.
    drop(unsafe { Arc::from_raw(ptr::from_ref(m)) });
}

/// `ifN` for an interface index.
fn if_name(idx: u32, buf: &mut [u8; 16]) -> &[u8] {
    buf[0] = b'i';
    buf[1] = b'f';
    let mut digits = [0u8; 10];
    let mut n = 0;
    let mut v = idx;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in 0..n {
        buf[2 + i] = digits[n - 1 - i];
    }
    &buf[..2 + n]
}

unsafe extern "system" fn filter_restart(ctx: NDIS_HANDLE, _params: *mut c_void) -> NDIS_STATUS {
    // SAFETY: our module.
    let m = unsafe { module(ctx) };
    m.state.store(RUNNING, Ordering::Release);
    if let Some(na) = m.adapter() {
        na.tx_wake();
    }
    ffi::NDIS_STATUS_SUCCESS
}

unsafe extern "system" fn filter_pause(ctx: NDIS_HANDLE, _params: *mut c_void) -> NDIS_STATUS {
    // SAFETY: our module.
    let m = unsafe { module(ctx) };
    let _tx = m.tx.lock(); // orders with the last completion's check
    if m.inflight.load(Ordering::Acquire) == 0 {
        m.state.store(PAUSED, Ordering::Release);
        ffi::NDIS_STATUS_SUCCESS
    } else {
        m.state.store(PAUSING, Ordering::Release);
        ffi::NDIS_STATUS_PENDING
    }
}

/// The data of `nb` as one slice: in place when it lies in one MDL, else
/// gathered into `scratch`. None if unmapped or too long.
///
/// # Safety
/// `nb` is a live NET_BUFFER whose MDLs describe locked pages.
unsafe fn nb_data<'a>(nb: &NET_BUFFER, scratch: &'a mut [u8]) -> Option<&'a [u8]> {
    let len = nb.DataLength;
    if len > scratch.len() {
        return None;
    }
    let mut mdl = nb.CurrentMdl;
    let mut off = nb.CurrentMdlOffset as usize;
    let mut done = 0;
    while done < len {
        // SAFETY: a live MDL of the chain.
        let m = unsafe { mdl.as_mut()? };
        let va = if m.MdlFlags & (ffi::MDL_MAPPED_TO_SYSTEM_VA | ffi::MDL_SOURCE_IS_NONPAGED_POOL)
            != 0
        {
            m.MappedSystemVa
        } else {
            // SAFETY: locked pages; a kernel mapping fails with NULL.
            unsafe {
                ffi::MmMapLockedPagesSpecifyCache(
                    m,
                    ffi::KERNEL_MODE,
                    ffi::MM_CACHED,
                    ptr::null_mut(),
                    0,
                    ffi::NORMAL_PAGE_PRIORITY | MDL_MAPPING_NO_EXECUTE,
                )
            }
        };
        if va.is_null() {
            return None;
        }
        let avail = (m.ByteCount as usize).saturating_sub(off);
        let n = avail.min(len - done);
        // SAFETY: `n` bytes at `va + off` lie within the MDL's mapping.
        let piece = unsafe { core::slice::from_raw_parts(va.cast::<u8>().add(off), n) };
        if done == 0 && n == len {
            // SAFETY: same bytes, returned with the scratch's lifetime: the
            // NBL stays ours for the whole indication.
            return Some(unsafe { core::slice::from_raw_parts(piece.as_ptr(), n) });
        }
        scratch[done..done + n].copy_from_slice(piece);
        done += n;
        mdl = m.Next;
        off = 0;
    }
    Some(&scratch[..len])
}

/// Pushes every frame of the NBL chain into RX ring `ring` of `na`.
///
/// # Safety
/// `nbl` is a live chain owned by the caller for the call.
unsafe fn push_chain(m: &Module, na: &Na, ring: u32, mut nbl: *mut NET_BUFFER_LIST) {
    let mut scratch = m.scratch.lock();
    if scratch.len() < MAX_RX_FRAME && scratch.try_reserve_exact(MAX_RX_FRAME).is_ok() {
        scratch.resize(MAX_RX_FRAME, 0);
    }
    // SAFETY: walking a live chain (contract).
    while let Some(l) = unsafe { nbl.as_ref() } {
        let mut nb = l.FirstNetBuffer;
        // SAFETY: NET_BUFFERs of a live NBL.
        while let Some(b) = unsafe { nb.as_ref() } {
            // SAFETY: a live NET_BUFFER.
            if let Some(data) = unsafe { nb_data(b, &mut scratch) } {
                na.rx_push_quiet(ring, data);
            }
            nb = b.Next;
        }
        nbl = l.Next;
    }
}

unsafe extern "system" fn filter_receive(
    ctx: NDIS_HANDLE,
    nbl: *mut NET_BUFFER_LIST,
    port: u32,
    count: u32,
    flags: u32,
) {
    // SAFETY: our module.
    let m = unsafe { module(ctx) };
    let Some(na) = m.adapter() else {
        // SAFETY: pass-through of the chain we were given.
        unsafe { ffi::NdisFIndicateReceiveNetBufferLists(m.handle, nbl, port, count, flags) };
        return;
    };
    // SAFETY: the chain is ours during the indication.
    unsafe { push_chain(m, &na, 0, nbl) };
    if flags & ffi::NDIS_RECEIVE_FLAGS_RESOURCES == 0 {
        let rf = if flags & ffi::NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL != 0 {
            ffi::NDIS_RETURN_FLAGS_DISPATCH_LEVEL
        } else {
            0
        };
        // SAFETY: consumed: give the NBLs back to the miniport.
        unsafe { ffi::NdisFReturnNetBufferLists(m.handle, nbl, rf) };
    }
    na.rx_flush();
}

unsafe extern "system" fn filter_return(ctx: NDIS_HANDLE, nbl: *mut NET_BUFFER_LIST, flags: u32) {
    // SAFETY: our module; we indicate our own NBLs only with the RESOURCES
    // flag, so every NBL returned here came from below.
    unsafe { ffi::NdisFReturnNetBufferLists(module(ctx).handle, nbl, flags) };
}

unsafe extern "system" fn filter_send(
    ctx: NDIS_HANDLE,
    nbl: *mut NET_BUFFER_LIST,
    port: u32,
    flags: u32,
) {
    // SAFETY: our module.
    let m = unsafe { module(ctx) };
    let cf = flags & ffi::NDIS_SEND_FLAGS_DISPATCH_LEVEL;
    if !m.running() {
        set_status(nbl, ffi::NDIS_STATUS_PAUSED);
        // SAFETY: failing the chain back to the stack.
        unsafe { ffi::NdisFSendNetBufferListsComplete(m.handle, nbl, cf) };
        return;
    }
    let Some(na) = m.adapter() else {
        // SAFETY: pass-through.
        unsafe { ffi::NdisFSendNetBufferLists(m.handle, nbl, port, flags) };
        return;
    };
    let host_rx = na.nrings(Dir::Rx);
    if na.nhost(Dir::Rx) > 0 {
        // SAFETY: the chain is ours until completed.
        unsafe { push_chain(m, &na, host_rx, nbl) };
    }
    set_status(nbl, ffi::NDIS_STATUS_SUCCESS);
    // SAFETY: consumed: complete the chain to the stack.
    unsafe { ffi::NdisFSendNetBufferListsComplete(m.handle, nbl, cf) };
    na.rx_flush();
}

fn set_status(mut nbl: *mut NET_BUFFER_LIST, st: NDIS_STATUS) {
    // SAFETY: a live chain owned by the caller.
    while let Some(l) = unsafe { nbl.as_mut() } {
        l.Status = st;
        nbl = l.Next;
    }
}

unsafe extern "system" fn filter_send_complete(
    ctx: NDIS_HANDLE,
    mut nbl: *mut NET_BUFFER_LIST,
    flags: u32,
) {
    // SAFETY: our module.
    let m = unsafe { module(ctx) };
    let (mut head, mut tail): (*mut NET_BUFFER_LIST, *mut NET_BUFFER_LIST) =
        (ptr::null_mut(), ptr::null_mut());
    let mut ours = 0u32;
    // SAFETY: a completed chain, ours to split.
    while let Some(l) = unsafe { nbl.as_mut() } {
        let next = l.Next;
        l.Next = ptr::null_mut();
        if l.NdisPoolHandle == m.pool {
            m.give_back(l.Scratch as usize as u16);
            ours += 1;
        } else if tail.is_null() {
            head = l;
            tail = l;
        } else {
            // SAFETY: tail is a live NBL of the chain we are building.
            unsafe { (*tail).Next = l };
            tail = l;
        }
        nbl = next;
    }
    if !head.is_null() {
        // SAFETY: the stack's NBLs, completed upward.
        unsafe { ffi::NdisFSendNetBufferListsComplete(m.handle, head, flags) };
    }
    if ours > 0 {
        let left = {
            let _tx = m.tx.lock();
            let left = m.inflight.fetch_sub(ours, Ordering::AcqRel) - ours;
            if left == 0 && m.state.load(Ordering::Acquire) == PAUSING {
                m.state.store(PAUSED, Ordering::Release);
                Some(())
            } else {
                None
            }
        };
        if left.is_some() {
            // SAFETY: the pause we answered with NDIS_STATUS_PENDING.
            unsafe { ffi::NdisFPauseComplete(m.handle) };
        }
        if let Some(na) = m.adapter()
            && let Some(k) = na.kring(Dir::Tx, 0)
        {
            na.notify(k);
        }
    }
}

/// Finds filter modules by name for the core.
pub struct NdisNetifProvider;

impl NetifProvider<WindowsPlatform> for NdisNetifProvider {
    fn lookup(&self, name: &[u8]) -> Option<Arc<dyn NetifOps<WindowsPlatform>>> {
        let m = MODULES
            .get()?
            .lock()
            .iter()
            .find(|m| m.matches(name))
            .cloned()?;
        Some(Arc::new(WinNetif {
            module: m,
            name: Name::from_c(name),
        }))
    }
}

/// A NIC seen through its filter module.
struct WinNetif {
    module: Arc<Module>,
    name: Name,
}

impl NetifOps<WindowsPlatform> for WinNetif {
    fn name(&self) -> Name {
        self.name
    }

    fn config(&self) -> NetifConfig {
        NetifConfig {
            rings: [1, 1],
            slots: [SLOTS, SLOTS],
            mtu: 1500,
            max_rx_buf: MAX_RX_FRAME as u32,
        }
    }

    fn register(&self, na: &Arc<Na>, on: bool) -> Result<()> {
        let m = &self.module;
        if on {
            if m.state.load(Ordering::Acquire) == DETACHED {
                return Err(Errno::ENXIO);
            }
            m.prepare_tx()?;
            let mut cur = m.adapter.lock();
            match cur.as_ref() {
                Some(a) if Arc::ptr_eq(a, na) => {}
                Some(_) => return Err(Errno::EBUSY),
                None => *cur = Some(na.clone()),
            }
        } else {
            let mut cur = m.adapter.lock();
            if cur.as_ref().is_some_and(|a| Arc::ptr_eq(a, na)) {
                cur.take();
            }
        }
        Ok(())
    }

    fn transmit(&self, _ring: u32, frame: &Frame<'_, WindowsPlatform>) -> bool {
        let m = &self.module;
        let len = frame.len();
        if !(ETH_HLEN..=TX_BUF_SIZE).contains(&len) {
            return true; // not sendable: dropped
        }
        match m.state.load(Ordering::Acquire) {
            DETACHED => return true,
            RUNNING => {}
            _ => return false, // paused: the slot waits for restart
        }
        let Some(i) = m.fill_buf(frame) else {
            return false; // all buffers in flight: wait for a completion
        };
        m.inflight.fetch_add(1, Ordering::AcqRel);
        // SAFETY: our filled NBL, owned by NDIS until send-complete.
        unsafe { ffi::NdisFSendNetBufferLists(m.handle, m.nbl_of(i), 0, dispatch_flag()) };
        true
    }

    fn host_inject(&self, frame: &Frame<'_, WindowsPlatform>) -> Result<()> {
        let m = &self.module;
        let len = frame.len();
        if !(ETH_HLEN..=TX_BUF_SIZE).contains(&len) {
            return Err(Errno::EINVAL);
        }
        if !m.running() {
            return Err(Errno::ENXIO);
        }
        let i = m.fill_buf(frame).ok_or(Errno::ENOBUFS)?;
        let flags = ffi::NDIS_RECEIVE_FLAGS_RESOURCES | dispatch_flag();
        // SAFETY: our filled NBL; with RESOURCES it is ours again when the
        // call returns.
        unsafe { ffi::NdisFIndicateReceiveNetBufferLists(m.handle, m.nbl_of(i), 0, 1, flags) };
        m.give_back(i);
        Ok(())
    }

    fn tx_inflight(&self, _ring: u32) -> u32 {
        self.module.inflight.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let mut b = [0u8; 16];
        assert_eq!(if_name(12, &mut b), b"if12");
        assert_eq!(parse_u32(b"4294967"), Some(4294967));
        assert_eq!(parse_u32(b"1x"), None);
    }
}
