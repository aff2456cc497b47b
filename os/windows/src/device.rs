//! The control device `\\.\netmap` and its control codes
//! (`netmap_uapi::winioctl`).
//!
//! * Created with `NdisRegisterDeviceEx` (`\Device\netmap`, symbolic link
//!   `\DosDevices\netmap`), security descriptor
//!   `D:P(A;;GA;;;SY)(A;;GA;;;BA)`: SYSTEM and Administrators only;
//!   `FILE_DEVICE_SECURE_OPEN`, and opens of a path below the device
//!   (`\\.\netmap\x`) are refused.
//! * `IRP_MJ_CREATE` makes the per-handle state (a core `NetmapPriv` and
//!   the handle's mapping); `IRP_MJ_CLEANUP` (last handle of the file
//!   closed, in the closing process) removes the mapping; `IRP_MJ_CLOSE`
//!   releases the core state.
//! * Every control code is `METHOD_BUFFERED` with a fixed-size block: the
//!   block is never read at its user address. What the requests point to
//!   (`nmreq_header`, body, options, `nmreq`) is copied by the core through
//!   the platform's fault-catching copies.
//! * The mapping: an MDL describes the region's pages (their PFNs, taken
//!   page by page from the core's clusters), mapped into the calling
//!   process by glue.c (`MmMapLockedPagesSpecifyCache(UserMode)` inside
//!   `__try`). It is removed by `NM_IOCTL_UNMAP`, by the cleanup of the
//!   handle, or by the exit of the process that made it
//!   (`PsSetCreateProcessNotifyRoutineEx`), whichever comes first; the
//!   region outlives it (the file's binding holds it until close).

use crate::ffi::{
    self, DEVICE_OBJECT, FILE_OBJECT, IRP, KAPC_STATE, KEVENT, MDL, NTSTATUS, PEPROCESS,
};
use crate::netmap;
use crate::platform::{KernelWaitQueue, Mutex, Waiter, WindowsPlatform};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use netmap_core::platform::PAGE_SIZE;
use netmap_core::sync::{Lock, Once};
use netmap_core::{Errno, NetmapPriv};
use netmap_uapi::winioctl::*;

type Priv = NetmapPriv<WindowsPlatform>;

/// POLLNVAL: an entry of a wait that is not a netmap handle.
const POLLNVAL: u16 = 0x20;

/// Per-handle state (`FILE_OBJECT::FsContext`).
struct WinFile {
    np: Box<Priv>,
    /// The handle's mapping; only touched with [`MAPS`] held.
    map: UnsafeCell<Option<UserMap>>,
}

/// A region mapped into a process.
struct UserMap {
    /// The process (referenced) the mapping is in.
    process: PEPROCESS,
    va: *mut c_void,
    mdl: *mut MDL,
}

/// Files that have a mapping, for the process-exit hook; also the lock of
/// every `WinFile::map`.
struct Maps(Vec<*const WinFile>);
// SAFETY: the pointers are only dereferenced with the lock held, while
// their files are open (a file leaves the list in cleanup, before close).
unsafe impl Send for Maps {}

static MAPS: Once<Lock<Mutex, Maps>> = Once::new();
static DEVICE: AtomicPtr<DEVICE_OBJECT> = AtomicPtr::new(ptr::null_mut());
static DEVICE_HANDLE: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

static DEVICE_NAME: ffi::StaticUnicode<14> = ffi::StaticUnicode::new(b"\\Device\\netmap");
static LINK_NAME: ffi::StaticUnicode<18> = ffi::StaticUnicode::new(b"\\DosDevices\\netmap");
/// SYSTEM and built-in Administrators: all access; nobody else.
static SDDL: ffi::StaticUnicode<27> = ffi::StaticUnicode::new(b"D:P(A;;GA;;;SY)(A;;GA;;;BA)");

/// Registers `\\.\netmap` and the process-exit hook.
///
/// # Safety
/// Called once from DriverEntry, after the filter driver is registered.
pub unsafe fn register() -> NTSTATUS {
    let Some(maps) = Lock::new(Maps(Vec::new())) else {
        return ffi::STATUS_INSUFFICIENT_RESOURCES;
    };
    if MAPS.set(maps).is_err() {
        return ffi::STATUS_UNSUCCESSFUL;
    }
    let mut major: [ffi::DRIVER_DISPATCH; ffi::IRP_MJ_MAXIMUM_FUNCTION + 1] =
        [None; ffi::IRP_MJ_MAXIMUM_FUNCTION + 1];
    for f in [
        ffi::IRP_MJ_CREATE,
        ffi::IRP_MJ_CLEANUP,
        ffi::IRP_MJ_CLOSE,
        ffi::IRP_MJ_DEVICE_CONTROL,
    ] {
        major[f] = Some(dispatch);
    }
    let (name, link, sddl) = (
        DEVICE_NAME.as_unicode(),
        LINK_NAME.as_unicode(),
        SDDL.as_unicode(),
    );
    let attrs = ffi::NDIS_DEVICE_OBJECT_ATTRIBUTES {
        Header: ffi::NDIS_OBJECT_HEADER {
            Type: ffi::NDIS_OBJECT_TYPE_DEVICE_OBJECT_ATTRIBUTES as u8,
            Revision: ffi::NDIS_DEVICE_OBJECT_ATTRIBUTES_REVISION_1,
            Size: ffi::NDIS_SIZEOF_DEVICE_OBJECT_ATTRIBUTES_REVISION_1,
        },
        DeviceName: &name,
        SymbolicName: &link,
        MajorFunctions: major.as_ptr(),
        ExtensionSize: 0,
        DefaultSDDLString: &sddl,
        DeviceClassGuid: ptr::null(),
    };
    let mut dev: *mut DEVICE_OBJECT = ptr::null_mut();
    let mut handle: *mut c_void = ptr::null_mut();
    // SAFETY: valid attributes and out pointers for the call; NDIS copies
    // the names and the dispatch table.
    let st = unsafe {
        ffi::NdisRegisterDeviceEx(
            crate::filter::driver_handle(),
            &attrs,
            &mut dev,
            &mut handle,
        )
    };
    if st != ffi::NDIS_STATUS_SUCCESS || dev.is_null() {
        return if st == ffi::NDIS_STATUS_SUCCESS {
            ffi::STATUS_UNSUCCESSFUL
        } else {
            st
        };
    }
    // SAFETY: the device object NDIS just created for us.
    unsafe { (*dev).Characteristics |= ffi::FILE_DEVICE_SECURE_OPEN };
    DEVICE.store(dev, Ordering::Release);
    DEVICE_HANDLE.store(handle, Ordering::Release);
    // SAFETY: a static routine of this driver, removed in deregister().
    let st = unsafe { ffi::PsSetCreateProcessNotifyRoutineEx(process_notify, 0) };
    if st != ffi::STATUS_SUCCESS {
        // SAFETY: registered just above.
        unsafe { ffi::NdisDeregisterDeviceEx(handle) };
        DEVICE.store(ptr::null_mut(), Ordering::Release);
        return st;
    }
    ffi::STATUS_SUCCESS
}

/// Removes the process-exit hook and the device.
///
/// # Safety
/// Called once from the unload routine (no handle is open).
pub unsafe fn deregister() {
    // SAFETY: registered by register().
    unsafe { ffi::PsSetCreateProcessNotifyRoutineEx(process_notify, 1) };
    let h = DEVICE_HANDLE.swap(ptr::null_mut(), Ordering::AcqRel);
    if !h.is_null() {
        // SAFETY: the handle from NdisRegisterDeviceEx, deregistered once.
        unsafe { ffi::NdisDeregisterDeviceEx(h) };
    }
    DEVICE.store(ptr::null_mut(), Ordering::Release);
}

fn maps() -> &'static Lock<Mutex, Maps> {
    MAPS.get().expect("netmap: device used before register()")
}

/// Completes `irp` with `status` and `info` bytes to copy back.
///
/// # Safety
/// `irp` is the IRP being dispatched, completed once.
unsafe fn complete(irp: *mut IRP, status: NTSTATUS, info: usize) -> NTSTATUS {
    // SAFETY: contract.
    unsafe {
        (*irp).IoStatus.Anonymous.Status = status;
        (*irp).IoStatus.Information = info;
        ffi::IofCompleteRequest(irp, 0);
    }
    status
}

/// The dispatch routine of every IRP major function the device handles.
unsafe extern "system" fn dispatch(_dev: *const DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the I/O manager passes a live IRP for our device.
    let sl = unsafe { &*ffi::current_stack_location(irp) };
    let fo = sl.FileObject;
    let (status, info) = match sl.MajorFunction as usize {
        // SAFETY: the file object of the create, ours from now on.
        ffi::IRP_MJ_CREATE => (unsafe { create(fo) }, 0),
        ffi::IRP_MJ_CLEANUP => {
            // SAFETY: FsContext was set by create (same file object).
            if let Some(f) = unsafe { file_of(fo) } {
                unmap(f);
            }
            (ffi::STATUS_SUCCESS, 0)
        }
        ffi::IRP_MJ_CLOSE => {
            // SAFETY: last reference to the file object: no other IRP.
            unsafe { close(fo) };
            (ffi::STATUS_SUCCESS, 0)
        }
        ffi::IRP_MJ_DEVICE_CONTROL => {
            // SAFETY: the union member of a device-control stack location.
            let p = unsafe { sl.Parameters.DeviceIoControl };
            // SAFETY: METHOD_BUFFERED: the system buffer holds
            // max(in, out) bytes.
            let buf = unsafe { (*irp).AssociatedIrp.SystemBuffer };
            // SAFETY: FsContext from create; the file object is referenced
            // by this IRP.
            match unsafe { file_of(fo) } {
                Some(f) => control(
                    f,
                    p.IoControlCode,
                    buf,
                    p.InputBufferLength,
                    p.OutputBufferLength,
                ),
                None => (ffi::STATUS_INVALID_DEVICE_REQUEST, 0),
            }
        }
        _ => (ffi::STATUS_INVALID_DEVICE_REQUEST, 0),
    };
    // SAFETY: completed once, here.
    unsafe { complete(irp, status, info) }
}

/// # Safety
/// `fo` is the file object of an IRP_MJ_CREATE on our device.
unsafe fn create(fo: *mut FILE_OBJECT) -> NTSTATUS {
    // SAFETY: contract.
    let fo = unsafe { &mut *fo };
    if fo.FileName.Length != 0 {
        return ffi::STATUS_OBJECT_NAME_NOT_FOUND;
    }
    match netmap().open() {
        Ok(np) => {
            let f = Box::new(WinFile {
                np,
                map: UnsafeCell::new(None),
            });
            fo.FsContext = Box::into_raw(f).cast();
            ffi::STATUS_SUCCESS
        }
        Err(_) => ffi::STATUS_INSUFFICIENT_RESOURCES,
    }
}

/// # Safety
/// `fo` is a file object of our device, for the duration of the IRP.
unsafe fn file_of<'a>(fo: *mut FILE_OBJECT) -> Option<&'a WinFile> {
    // SAFETY: contract; FsContext is ours (set by create, cleared by close).
    unsafe { fo.as_ref()?.FsContext.cast::<WinFile>().as_ref() }
}

/// # Safety
/// `fo` is the file object of an IRP_MJ_CLOSE (no other IRP on it).
unsafe fn close(fo: *mut FILE_OBJECT) {
    // SAFETY: contract.
    let Some(fo) = (unsafe { fo.as_mut() }) else {
        return;
    };
    let p = core::mem::replace(&mut fo.FsContext, ptr::null_mut());
    if p.is_null() {
        return;
    }
    // SAFETY: from Box::into_raw in create; nothing else uses it now.
    let f = unsafe { Box::from_raw(p.cast::<WinFile>()) };
    unmap(&f); // normally done by cleanup already
    netmap().release(f.np);
}

/// One control code: `(status, bytes to copy back)`.
fn control(f: &WinFile, code: u32, buf: *mut c_void, inlen: u32, outlen: u32) -> (NTSTATUS, usize) {
    let (inlen, outlen) = (inlen as usize, outlen as usize);
    if code == NM_IOCTL_WAIT {
        let n = size_of::<NmWinWait>();
        if buf.is_null() || inlen != n || outlen != n {
            return (ffi::STATUS_INVALID_PARAMETER, 0);
        }
        // SAFETY: the system buffer holds n bytes (checked); Pod: any bytes.
        let mut w: NmWinWait = unsafe { buf.cast::<NmWinWait>().read_unaligned() };
        w.error = match wait(&mut w) {
            Ok(()) => 0,
            Err(e) => e.0,
        };
        // SAFETY: as above; copied back by the I/O manager.
        unsafe { buf.cast::<NmWinWait>().write_unaligned(w) };
        return (ffi::STATUS_SUCCESS, n);
    }
    let n = size_of::<NmWinIo>();
    if buf.is_null() || inlen != n || outlen != n {
        return (ffi::STATUS_INVALID_PARAMETER, 0);
    }
    // SAFETY: n bytes (checked), any bytes are a valid NmWinIo.
    let mut io: NmWinIo = unsafe { buf.cast::<NmWinIo>().read_unaligned() };
    io.value = [0; 2];
    let r = if io.reserved != 0 {
        Err(Errno::EINVAL)
    } else {
        let nm = netmap();
        match code {
            NM_IOCTL_CTRL => nm.ioctl(&f.np, netmap_uapi::NIOCCTRL, io.arg),
            NM_IOCTL_REGIF => nm.ioctl(&f.np, netmap_uapi::NIOCREGIF, io.arg),
            NM_IOCTL_GINFO => nm.ioctl(&f.np, netmap_uapi::NIOCGINFO, io.arg),
            NM_IOCTL_TXSYNC => nm.ioctl(&f.np, netmap_uapi::NIOCTXSYNC, 0),
            NM_IOCTL_RXSYNC => nm.ioctl(&f.np, netmap_uapi::NIOCRXSYNC, 0),
            NM_IOCTL_MAP => map(f).map(|(va, len)| io.value = [va, len]),
            NM_IOCTL_UNMAP => {
                unmap(f);
                Ok(())
            }
            _ => return (ffi::STATUS_INVALID_DEVICE_REQUEST, 0),
        }
    };
    io.error = match r {
        Ok(()) => 0,
        Err(e) => e.0,
    };
    // SAFETY: as above.
    unsafe { buf.cast::<NmWinIo>().write_unaligned(io) };
    (ffi::STATUS_SUCCESS, n)
}

/// `NM_IOCTL_MAP`: the region of the file's port, mapped into the caller.
fn map(f: &WinFile) -> netmap_core::Result<(u64, u64)> {
    let nm = netmap();
    let g = maps().lock();
    // SAFETY: `map` is only touched with MAPS held.
    let slot = unsafe { &mut *f.map.get() };
    if slot.is_some() {
        return Err(Errno::EBUSY);
    }
    let len = f.np.binding().ok_or(Errno::EINVAL)?.na.mem.memsize();
    // An MDL describes less than 4 GiB.
    let len32 = u32::try_from(len).map_err(|_| Errno::ENOMEM)?;
    if len == 0 || len32 > u32::MAX - PAGE_SIZE as u32 {
        return Err(Errno::ENOMEM);
    }
    let first = nm.mmap_page(&f.np, 0).ok_or(Errno::EINVAL)?;
    // SAFETY: a page-aligned kernel address (byte offset 0) and a length:
    // the MDL gets room for len/PAGE_SIZE PFNs; not charged to a process.
    let mdl = unsafe { ffi::IoAllocateMdl(first.as_ptr().cast(), len32, 0, 0, ptr::null_mut()) };
    if mdl.is_null() {
        return Err(Errno::ENOMEM);
    }
    let pages = len as usize / PAGE_SIZE;
    // SAFETY: the PFN array follows the MDL header, `pages` entries
    // (ADDRESS_AND_SIZE_TO_SPAN_PAGES of a page-aligned range).
    let pfns = unsafe { core::slice::from_raw_parts_mut(mdl.add(1).cast::<u64>(), pages) };
    for (i, pfn) in pfns.iter_mut().enumerate() {
        let Some(page) = nm.mmap_page(&f.np, (i * PAGE_SIZE) as u64) else {
            // SAFETY: allocated above, never mapped.
            unsafe { ffi::IoFreeMdl(mdl) };
            return Err(Errno::EINVAL);
        };
        // SAFETY: a resident nonpaged page of the region.
        *pfn = (unsafe { ffi::MmGetPhysicalAddress(page.as_ptr().cast()) } as u64) >> 12;
    }
    // SAFETY: our MDL: its pages are nonpaged pool, resident for the life
    // of the binding (which outlives the mapping).
    unsafe { (*mdl).MdlFlags |= ffi::MDL_PAGES_LOCKED };
    // SAFETY: a complete, locked MDL; we run in the caller's process.
    let va = unsafe { ffi::nm_glue_map_user(mdl) };
    if va.is_null() {
        // SAFETY: never mapped.
        unsafe { ffi::IoFreeMdl(mdl) };
        return Err(Errno::ENOMEM);
    }
    // SAFETY: no preconditions; the reference keeps the EPROCESS for
    // attaching at cleanup.
    let process = unsafe { ffi::IoGetCurrentProcess() };
    // SAFETY: a live process object.
    unsafe { ffi::ObfReferenceObject(process) };
    *slot = Some(UserMap { process, va, mdl });
    let mut g = g;
    if g.0.try_reserve(1).is_err() {
        let m = slot.take();
        drop(g);
        if let Some(m) = m {
            // SAFETY: just made, in this process.
            unsafe { remove_mapping(m) };
        }
        return Err(Errno::ENOMEM);
    }
    g.0.push(f);
    Ok((va as u64, len))
}

/// Removes the file's mapping, if any (cleanup, close, `NM_IOCTL_UNMAP`).
fn unmap(f: &WinFile) {
    let mut g = maps().lock();
    // SAFETY: with MAPS held.
    let m = unsafe { (*f.map.get()).take() };
    g.0.retain(|&p| !ptr::eq(p, f));
    drop(g);
    if let Some(m) = m {
        // SAFETY: a live mapping, removed once (taken out of the slot).
        unsafe { remove_mapping(m) };
    }
}

/// Unmaps `m` in its process (attaching to it if needed) and frees it.
///
/// # Safety
/// `m` is a live mapping owned by the caller.
unsafe fn remove_mapping(m: UserMap) {
    // SAFETY: no preconditions.
    let here = unsafe { ffi::IoGetCurrentProcess() } == m.process;
    // SAFETY: KAPC_STATE is plain data filled by KeStackAttachProcess.
    let mut apc: KAPC_STATE = unsafe { core::mem::zeroed() };
    if !here {
        // SAFETY: a referenced process that has not exited (its exit hook
        // would have removed the mapping first).
        unsafe { ffi::KeStackAttachProcess(m.process, &mut apc) };
    }
    // SAFETY: the user address returned for this MDL in this process.
    unsafe { ffi::MmUnmapLockedPages(m.va, m.mdl) };
    if !here {
        // SAFETY: attached above.
        unsafe { ffi::KeUnstackDetachProcess(&mut apc) };
    }
    // SAFETY: unmapped; the MDL and the process reference are ours.
    unsafe {
        ffi::IoFreeMdl(m.mdl);
        ffi::ObfDereferenceObject(m.process);
    }
}

/// Process creation/exit hook: at exit, the mappings the process made are
/// removed (it runs in the exiting process).
unsafe extern "system" fn process_notify(process: PEPROCESS, _pid: *mut c_void, info: *mut c_void) {
    if !info.is_null() {
        return; // a creation
    }
    let Some(lock) = MAPS.get() else { return };
    let mut gone = Vec::new();
    {
        let mut g = lock.lock();
        g.0.retain(|&p| {
            // SAFETY: listed files are open and their slot is guarded by
            // MAPS (held).
            let slot = unsafe { &mut *(*p).map.get() };
            if slot.as_ref().is_some_and(|m| m.process == process) {
                if let Some(m) = slot.take() {
                    // Freed below, outside the lock.
                    if gone.try_reserve(1).is_ok() {
                        gone.push(m);
                    } else {
                        // SAFETY: a live mapping of this (exiting) process.
                        unsafe { remove_mapping(m) };
                    }
                }
                false
            } else {
                true
            }
        });
    }
    for m in gone {
        // SAFETY: live mappings taken out of their slots.
        unsafe { remove_mapping(m) };
    }
}

/// Nonpaged state of one `NM_IOCTL_WAIT`: the event wakers set and one
/// node per queue it sleeps on (each file registers on at most two).
struct WaitBlock {
    event: KEVENT,
    nodes: [Waiter; 2 * NM_WAIT_MAX],
    used: usize,
}

/// `NM_IOCTL_WAIT`: the core's poll on each handle; if none is ready,
/// sleep (alertable, so that thread termination ends it) until a queue is
/// woken or the timeout passes, then poll again.
fn wait(w: &mut NmWinWait) -> netmap_core::Result<()> {
    let count = w.count as usize;
    if count == 0 || count > NM_WAIT_MAX {
        return Err(Errno::EINVAL);
    }
    w.nready = 0;
    let mut files: [*mut FILE_OBJECT; NM_WAIT_MAX] = [ptr::null_mut(); NM_WAIT_MAX];
    for (e, slot) in w.fds[..count].iter_mut().zip(files.iter_mut()) {
        e.revents = 0;
        let mut obj: *mut c_void = ptr::null_mut();
        // SAFETY: a user handle checked against the file object type in
        // the caller's handle table; we get a reference (dropped below).
        let st = unsafe {
            ffi::ObReferenceObjectByHandle(
                e.handle as usize as *mut c_void,
                ffi::FILE_READ_DATA,
                *ffi::IO_FILE_OBJECT_TYPE,
                ffi::USER_MODE,
                &mut obj,
                ptr::null_mut(),
            )
        };
        if st == ffi::STATUS_SUCCESS {
            *slot = obj.cast();
        }
    }
    let dev = DEVICE.load(Ordering::Acquire);
    let ours = |fo: *mut FILE_OBJECT| -> Option<&WinFile> {
        // SAFETY: a referenced file object; FsContext is ours only if the
        // file belongs to our device.
        unsafe {
            fo.as_ref()
                .filter(|f| f.DeviceObject == dev)
                .and_then(|_| file_of(fo))
        }
    };
    // SAFETY: KEVENT and the nodes are plain data, initialized below.
    let mut blk: Box<WaitBlock> = Box::new(unsafe { core::mem::zeroed() });
    // SAFETY: the block is nonpaged (pool) and exclusively ours.
    unsafe { ffi::KeInitializeEvent(&mut blk.event, ffi::NOTIFICATION_EVENT, 0) };
    let deadline = match w.timeout_ms {
        // SAFETY: no preconditions. Absolute times are positive.
        t if t > 0 => Some(unsafe { ffi::nm_glue_system_time() } + i64::from(t) * 10_000),
        _ => None,
    };
    let mut result = Ok(());
    let mut registered = false;
    loop {
        let mut nready = 0u32;
        for (e, &fo) in w.fds[..count].iter_mut().zip(files.iter()) {
            let Some(f) = ours(fo) else {
                e.revents = POLLNVAL;
                nready += 1;
                continue;
            };
            let b: *mut WaitBlock = &mut *blk;
            let mut add = |q: &KernelWaitQueue| {
                // SAFETY: `b` is the live block; nodes are used once each.
                unsafe {
                    if registered || (*b).used == (*b).nodes.len() {
                        return;
                    }
                    let n: *mut Waiter = &mut (*b).nodes[(*b).used];
                    (*b).used += 1;
                    (*n).event = &mut (*b).event;
                    // The queue belongs to the file's binding, alive while
                    // we hold the file object; unlinked below.
                    q.add(n);
                }
            };
            let rev = netmap().poll(&f.np, u32::from(e.events), &mut add);
            e.revents = rev as u16;
            if e.revents != 0 {
                nready += 1;
            }
        }
        registered = true;
        w.nready = nready;
        if nready > 0 || w.timeout_ms == 0 {
            break;
        }
        let timeout = deadline.as_ref().map_or(ptr::null(), |d| d as *const i64);
        // SAFETY: our event in nonpaged memory; a UserMode alertable wait
        // returns early when the thread is terminated or gets an APC.
        let st = unsafe {
            ffi::KeWaitForSingleObject(
                (&mut blk.event as *mut KEVENT).cast(),
                ffi::EXECUTIVE,
                ffi::USER_MODE,
                1,
                timeout,
            )
        };
        if st == ffi::STATUS_TIMEOUT {
            break;
        }
        if st == ffi::STATUS_USER_APC || st == ffi::STATUS_ALERTED {
            result = Err(Errno(4)); // EINTR
            break;
        }
        // SAFETY: our event.
        unsafe { ffi::KeClearEvent(&mut blk.event) };
    }
    for i in 0..blk.used {
        let n: *mut Waiter = &mut blk.nodes[i];
        // SAFETY: linked by `add` on this queue, which is still alive.
        unsafe {
            if let Some(q) = (*n).queue.as_ref() {
                q.remove(n);
            }
        }
    }
    for &fo in files[..count].iter().filter(|f| !f.is_null()) {
        // SAFETY: the reference taken above.
        unsafe { ffi::ObfDereferenceObject(fo.cast()) };
    }
    result
}
