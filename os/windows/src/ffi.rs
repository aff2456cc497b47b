//! The kernel interfaces netmap.sys uses.
//!
//! * WDM types and the NDIS constants come from `windows-sys` (generated from
//!   Microsoft's Win32/WDK metadata); re-exported here under their C names.
//! * NDIS 6 filter types are not in any binding that builds off Windows (nor
//!   in mingw-w64's NDIS 5.1 `ndis.h`): they are declared below from the
//!   `ndis.h` documentation, only the revisions this driver uses, and every
//!   size and field offset is asserted at compile time against the
//!   documented revision sizes (`NDIS_SIZEOF_*_REVISION_n`, computed from
//!   the documented field list with the x64 C layout rules).
//! * Functions are declared here (`extern "system"`) and resolved against
//!   the import libraries at link time (mingw-w64's `libntoskrnl.a`,
//!   `libndis.a`; the WDK's `ntoskrnl.lib`/`ndis.lib` on Windows).
//!   `cargo xtask test --only windows` checks that each import of the
//!   linked driver is exported by those libraries.
#![allow(
    non_camel_case_types,
    non_snake_case,
    dead_code,
    clippy::upper_case_acronyms
)]

use core::ffi::c_void;
use core::mem::{offset_of, size_of};

pub use windows_sys::Wdk::Foundation::{
    DEVICE_OBJECT, DRIVER_DISPATCH, DRIVER_OBJECT, FILE_OBJECT, IO_STACK_LOCATION, IRP, KEVENT,
    KMUTANT, MDL, OBJECT_ATTRIBUTES,
};
pub use windows_sys::Wdk::Storage::FileSystem::KAPC_STATE;
pub use windows_sys::Win32::Foundation::{NTSTATUS, UNICODE_STRING};
pub use windows_sys::Win32::NetworkManagement::Ndis::{
    NDIS_OBJECT_TYPE_DEFAULT, NDIS_OBJECT_TYPE_DEVICE_OBJECT_ATTRIBUTES,
    NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES, NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS,
};

// Flags of the send/receive paths (ndis.h).
pub const NDIS_SEND_FLAGS_DISPATCH_LEVEL: u32 = 0x1;
pub const NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL: u32 = 0x1;
pub const NDIS_RECEIVE_FLAGS_RESOURCES: u32 = 0x2;
pub const NDIS_RETURN_FLAGS_DISPATCH_LEVEL: u32 = 0x1;

pub type NDIS_HANDLE = *mut c_void;
pub type NDIS_STATUS = i32;
pub type PEPROCESS = *mut c_void;
pub type KIRQL = u8;

// NTSTATUS / NDIS_STATUS values (ntstatus.h, ndis.h).
pub const STATUS_SUCCESS: NTSTATUS = 0;
pub const STATUS_TIMEOUT: NTSTATUS = 0x102;
pub const STATUS_PENDING: NTSTATUS = 0x103;
pub const STATUS_INVALID_PARAMETER: NTSTATUS = 0xC000_000D_u32 as i32;
pub const STATUS_INVALID_DEVICE_REQUEST: NTSTATUS = 0xC000_0010_u32 as i32;
pub const STATUS_ACCESS_DENIED: NTSTATUS = 0xC000_0022_u32 as i32;
pub const STATUS_OBJECT_NAME_NOT_FOUND: NTSTATUS = 0xC000_0034_u32 as i32;
pub const STATUS_INSUFFICIENT_RESOURCES: NTSTATUS = 0xC000_009A_u32 as i32;
pub const STATUS_UNSUCCESSFUL: NTSTATUS = 0xC000_0001_u32 as i32;
pub const NDIS_STATUS_SUCCESS: NDIS_STATUS = 0;
pub const NDIS_STATUS_PENDING: NDIS_STATUS = STATUS_PENDING;
pub const NDIS_STATUS_FAILURE: NDIS_STATUS = STATUS_UNSUCCESSFUL;
pub const NDIS_STATUS_RESOURCES: NDIS_STATUS = STATUS_INSUFFICIENT_RESOURCES;
pub const NDIS_STATUS_PAUSED: NDIS_STATUS = 0xC023_002A_u32 as i32;

// IRP major functions (wdm.h).
pub const IRP_MJ_CREATE: usize = 0x00;
pub const IRP_MJ_CLOSE: usize = 0x02;
pub const IRP_MJ_DEVICE_CONTROL: usize = 0x0e;
pub const IRP_MJ_CLEANUP: usize = 0x12;
pub const IRP_MJ_MAXIMUM_FUNCTION: usize = 0x1b;

// Pool, wait and mode constants (wdm.h).
pub const NON_PAGED_POOL_NX: i32 = 512;
pub const KERNEL_MODE: i8 = 0;
pub const USER_MODE: i8 = 1;
pub const EXECUTIVE: i32 = 0;
pub const NOTIFICATION_EVENT: i32 = 0;
pub const SYNCHRONIZATION_EVENT: i32 = 1;
pub const STATUS_USER_APC: NTSTATUS = 0xC0;
pub const STATUS_ALERTED: NTSTATUS = 0x101;
pub const THREAD_ALL_ACCESS: u32 = 0x001F_FFFF;
pub const OBJ_KERNEL_HANDLE: u32 = 0x200;
pub const FILE_READ_DATA: u32 = 1;
pub const FILE_DEVICE_SECURE_OPEN: u32 = 0x100;
pub const ALL_PROCESSOR_GROUPS: u16 = 0xffff;
pub const DPFLTR_IHVNETWORK_ID: u32 = 80;
pub const MDL_MAPPED_TO_SYSTEM_VA: i16 = 0x0001;
pub const MDL_PAGES_LOCKED: i16 = 0x0002;
pub const MDL_SOURCE_IS_NONPAGED_POOL: i16 = 0x0004;
pub const NORMAL_PAGE_PRIORITY: u32 = 16;
pub const MM_CACHED: i32 = 1;

/// `NDIS_OBJECT_HEADER`.
/// `PHYSICAL_MEMORY_RANGE` (ntddk.h).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PHYSICAL_MEMORY_RANGE {
    pub base_address: i64,
    pub number_of_bytes: i64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NDIS_OBJECT_HEADER {
    pub Type: u8,
    pub Revision: u8,
    pub Size: u16,
}

pub type FilterAttachFn =
    unsafe extern "system" fn(NDIS_HANDLE, NDIS_HANDLE, *mut NDIS_FILTER_ATTACH_PARAMETERS) -> i32;
pub type FilterDetachFn = unsafe extern "system" fn(NDIS_HANDLE);
pub type FilterRestartFn = unsafe extern "system" fn(NDIS_HANDLE, *mut c_void) -> i32;
pub type FilterPauseFn = unsafe extern "system" fn(NDIS_HANDLE, *mut c_void) -> i32;
pub type FilterSendFn = unsafe extern "system" fn(NDIS_HANDLE, *mut NET_BUFFER_LIST, u32, u32);
pub type FilterSendCompleteFn = unsafe extern "system" fn(NDIS_HANDLE, *mut NET_BUFFER_LIST, u32);
pub type FilterReceiveFn =
    unsafe extern "system" fn(NDIS_HANDLE, *mut NET_BUFFER_LIST, u32, u32, u32);
pub type FilterReturnFn = unsafe extern "system" fn(NDIS_HANDLE, *mut NET_BUFFER_LIST, u32);

/// `NDIS_FILTER_DRIVER_CHARACTERISTICS`, revision 2 (NDIS 6.1+: through
/// `CancelDirectOidRequestHandler`). Handlers this driver does not filter
/// are NULL: NDIS then passes that traffic (OID requests, status, PnP
/// events) straight through the filter module.
#[repr(C)]
pub struct NDIS_FILTER_DRIVER_CHARACTERISTICS {
    pub Header: NDIS_OBJECT_HEADER,
    pub MajorNdisVersion: u8,
    pub MinorNdisVersion: u8,
    pub MajorDriverVersion: u8,
    pub MinorDriverVersion: u8,
    pub Flags: u32,
    pub FriendlyName: UNICODE_STRING,
    pub UniqueName: UNICODE_STRING,
    pub ServiceName: UNICODE_STRING,
    pub SetOptionsHandler: usize,
    pub SetFilterModuleOptionsHandler: usize,
    pub AttachHandler: Option<FilterAttachFn>,
    pub DetachHandler: Option<FilterDetachFn>,
    pub RestartHandler: Option<FilterRestartFn>,
    pub PauseHandler: Option<FilterPauseFn>,
    pub SendNetBufferListsHandler: Option<FilterSendFn>,
    pub SendNetBufferListsCompleteHandler: Option<FilterSendCompleteFn>,
    pub CancelSendNetBufferListsHandler: usize,
    pub ReceiveNetBufferListsHandler: Option<FilterReceiveFn>,
    pub ReturnNetBufferListsHandler: Option<FilterReturnFn>,
    pub OidRequestHandler: usize,
    pub OidRequestCompleteHandler: usize,
    pub CancelOidRequestHandler: usize,
    pub DevicePnPEventNotifyHandler: usize,
    pub NetPnPEventHandler: usize,
    pub StatusHandler: usize,
    pub DirectOidRequestHandler: usize,
    pub DirectOidRequestCompleteHandler: usize,
    pub CancelDirectOidRequestHandler: usize,
    #[cfg(feature = "broken-layout")]
    pub NotInNdisH: u32,
}
pub const NDIS_FILTER_CHARACTERISTICS_REVISION_2: u8 = 2;
/// `NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2`.
pub const NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2: u16 = 224;

/// `NDIS_FILTER_ATTRIBUTES`, revision 1.
#[repr(C)]
pub struct NDIS_FILTER_ATTRIBUTES {
    pub Header: NDIS_OBJECT_HEADER,
    pub Flags: u32,
}
pub const NDIS_FILTER_ATTRIBUTES_REVISION_1: u8 = 1;
pub const NDIS_SIZEOF_FILTER_ATTRIBUTES_REVISION_1: u16 = 8;

/// `NDIS_FILTER_ATTACH_PARAMETERS`, the revision-1 part (through `Flags`;
/// later revisions append fields this driver does not read).
#[repr(C)]
pub struct NDIS_FILTER_ATTACH_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub IfIndex: u32,
    pub NetLuid: u64,
    pub FilterModuleGuidName: *const UNICODE_STRING,
    pub BaseMiniportIfIndex: u32,
    pub BaseMiniportInstanceName: *const UNICODE_STRING,
    pub BaseMiniportName: *const UNICODE_STRING,
    pub MediaConnectState: i32,
    pub MediaDuplexState: i32,
    pub XmitLinkSpeed: u64,
    pub RcvLinkSpeed: u64,
    pub MiniportMediaType: i32,
    pub MiniportPhysicalMediaType: i32,
    pub MiniportMediaSpecificAttributes: NDIS_HANDLE,
    pub DefaultOffloadConfiguration: *mut c_void,
    pub MacAddressLength: u16,
    pub CurrentMacAddress: [u8; 32],
    pub BaseMiniportNetLuid: u64,
    pub LowerIfIndex: u32,
    pub LowerIfNetLuid: u64,
    pub Flags: u32,
}
/// `NDIS_SIZEOF_FILTER_ATTACH_PARAMETERS_REVISION_1`
/// (`RTL_SIZEOF_THROUGH_FIELD(..., Flags)`).
pub const NDIS_SIZEOF_FILTER_ATTACH_PARAMETERS_REVISION_1: usize = 164;
/// `NdisMedium802_3`.
pub const NDIS_MEDIUM_802_3: i32 = 0;

/// `NDIS_DEVICE_OBJECT_ATTRIBUTES`, revision 1.
#[repr(C)]
pub struct NDIS_DEVICE_OBJECT_ATTRIBUTES {
    pub Header: NDIS_OBJECT_HEADER,
    pub DeviceName: *const UNICODE_STRING,
    pub SymbolicName: *const UNICODE_STRING,
    pub MajorFunctions: *const DRIVER_DISPATCH,
    pub ExtensionSize: u32,
    pub DefaultSDDLString: *const UNICODE_STRING,
    pub DeviceClassGuid: *const [u8; 16],
}
pub const NDIS_DEVICE_OBJECT_ATTRIBUTES_REVISION_1: u8 = 1;
pub const NDIS_SIZEOF_DEVICE_OBJECT_ATTRIBUTES_REVISION_1: u16 = 56;

/// `NET_BUFFER_LIST_POOL_PARAMETERS`, revision 1.
#[repr(C)]
pub struct NET_BUFFER_LIST_POOL_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub ProtocolId: u8,
    pub fAllocateNetBuffer: u8,
    pub ContextSize: u16,
    pub PoolTag: u32,
    pub DataSize: u32,
}
pub const NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1: u8 = 1;
pub const NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1: u16 = 16;
/// `NDIS_PROTOCOL_ID_DEFAULT`.
pub const NDIS_PROTOCOL_ID_DEFAULT: u8 = 0;

/// `NET_BUFFER` (ndis/nbl.h). The header union holds an `SLIST_HEADER`,
/// hence the 16-byte alignment.
#[repr(C, align(16))]
pub struct NET_BUFFER {
    pub Next: *mut NET_BUFFER,
    pub CurrentMdl: *mut MDL,
    pub CurrentMdlOffset: u32,
    pub DataLength: usize,
    pub MdlChain: *mut MDL,
    pub DataOffset: u32,
    /// End of the 48-byte header union (`NET_BUFFER_DATA` / `SLIST_HEADER`).
    pub _HeaderPad: u32,
    pub ChecksumBias: u16,
    pub Reserved: u16,
    pub NdisPoolHandle: NDIS_HANDLE,
    pub NdisReserved: [*mut c_void; 2],
    pub ProtocolReserved: [*mut c_void; 6],
    pub MiniportReserved: [*mut c_void; 4],
    pub DataPhysicalAddress: i64,
    pub SharedMemoryInfo: *mut c_void,
}

/// `NET_BUFFER_LIST` (ndis/nbl.h), through `Status`. The trailing
/// `NetBufferListInfo` array grows with the NDIS version: this driver never
/// allocates an NBL itself nor reads past `Status`, so it is left out.
#[repr(C, align(16))]
pub struct NET_BUFFER_LIST {
    pub Next: *mut NET_BUFFER_LIST,
    pub FirstNetBuffer: *mut NET_BUFFER,
    pub Context: *mut c_void,
    pub ParentNetBufferList: *mut NET_BUFFER_LIST,
    pub NdisPoolHandle: NDIS_HANDLE,
    pub NdisReserved: [*mut c_void; 2],
    pub ProtocolReserved: [*mut c_void; 4],
    pub MiniportReserved: [*mut c_void; 2],
    pub Scratch: *mut c_void,
    pub SourceHandle: NDIS_HANDLE,
    pub NblFlags: u32,
    pub ChildRefCount: i32,
    pub Flags: u32,
    pub Status: NDIS_STATUS,
}

/// Every layout above, checked when the driver compiles: a wrong field
/// order or type stops the build (`cargo xtask sys`).
pub mod layout {
    use super::*;

    /// `(type, size, documented size)` for the table printed by `cargo
    /// xtask sys` (and checked again there).
    pub const SIZES: &[(&str, usize, usize)] = &[
        ("NDIS_OBJECT_HEADER", size_of::<NDIS_OBJECT_HEADER>(), 4),
        (
            "NDIS_FILTER_DRIVER_CHARACTERISTICS (rev 2)",
            size_of::<NDIS_FILTER_DRIVER_CHARACTERISTICS>(),
            NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2 as usize,
        ),
        (
            "NDIS_FILTER_ATTRIBUTES (rev 1)",
            size_of::<NDIS_FILTER_ATTRIBUTES>(),
            NDIS_SIZEOF_FILTER_ATTRIBUTES_REVISION_1 as usize,
        ),
        (
            "NDIS_FILTER_ATTACH_PARAMETERS (rev 1, through Flags)",
            offset_of!(NDIS_FILTER_ATTACH_PARAMETERS, Flags) + 4,
            NDIS_SIZEOF_FILTER_ATTACH_PARAMETERS_REVISION_1,
        ),
        (
            "NDIS_DEVICE_OBJECT_ATTRIBUTES (rev 1)",
            size_of::<NDIS_DEVICE_OBJECT_ATTRIBUTES>(),
            NDIS_SIZEOF_DEVICE_OBJECT_ATTRIBUTES_REVISION_1 as usize,
        ),
        (
            "NET_BUFFER_LIST_POOL_PARAMETERS (rev 1)",
            size_of::<NET_BUFFER_LIST_POOL_PARAMETERS>(),
            NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1 as usize,
        ),
        ("NET_BUFFER", size_of::<NET_BUFFER>(), 176),
        (
            "NET_BUFFER_LIST (through Status)",
            offset_of!(NET_BUFFER_LIST, Status) + 4,
            136,
        ),
        ("UNICODE_STRING", size_of::<UNICODE_STRING>(), 16),
        ("MDL", size_of::<MDL>(), 48),
        ("KEVENT", size_of::<KEVENT>(), 24),
        ("KMUTANT", size_of::<KMUTANT>(), 56),
        ("KAPC_STATE", size_of::<KAPC_STATE>(), 48),
    ];

    const fn all_match() -> bool {
        let mut i = 0;
        while i < SIZES.len() {
            if SIZES[i].1 != SIZES[i].2 {
                return false;
            }
            i += 1;
        }
        true
    }
    const _: () = assert!(all_match(), "an NDIS/WDM layout differs from ndis.h/wdm.h");

    // Field offsets (x64), from the documented field lists.
    const _: () = {
        type C = NDIS_FILTER_DRIVER_CHARACTERISTICS;
        assert!(offset_of!(C, Flags) == 8);
        assert!(offset_of!(C, FriendlyName) == 16);
        assert!(offset_of!(C, SetOptionsHandler) == 64);
        assert!(offset_of!(C, AttachHandler) == 80);
        assert!(offset_of!(C, SendNetBufferListsHandler) == 112);
        assert!(offset_of!(C, ReceiveNetBufferListsHandler) == 136);
        assert!(offset_of!(C, OidRequestHandler) == 152);
        assert!(offset_of!(C, StatusHandler) == 192);
        assert!(offset_of!(C, CancelDirectOidRequestHandler) == 216);
        type A = NDIS_FILTER_ATTACH_PARAMETERS;
        assert!(offset_of!(A, IfIndex) == 4);
        assert!(offset_of!(A, NetLuid) == 8);
        assert!(offset_of!(A, FilterModuleGuidName) == 16);
        assert!(offset_of!(A, BaseMiniportIfIndex) == 24);
        assert!(offset_of!(A, BaseMiniportInstanceName) == 32);
        assert!(offset_of!(A, MediaConnectState) == 48);
        assert!(offset_of!(A, XmitLinkSpeed) == 56);
        assert!(offset_of!(A, MiniportMediaType) == 72);
        assert!(offset_of!(A, MacAddressLength) == 96);
        assert!(offset_of!(A, CurrentMacAddress) == 98);
        assert!(offset_of!(A, BaseMiniportNetLuid) == 136);
        assert!(offset_of!(A, LowerIfIndex) == 144);
        assert!(offset_of!(A, Flags) == 160);
        type D = NDIS_DEVICE_OBJECT_ATTRIBUTES;
        assert!(offset_of!(D, MajorFunctions) == 24);
        assert!(offset_of!(D, DefaultSDDLString) == 40);
        type P = NET_BUFFER_LIST_POOL_PARAMETERS;
        assert!(offset_of!(P, fAllocateNetBuffer) == 5);
        assert!(offset_of!(P, PoolTag) == 8);
        assert!(offset_of!(P, DataSize) == 12);
        assert!(offset_of!(NET_BUFFER, CurrentMdlOffset) == 16);
        assert!(offset_of!(NET_BUFFER, DataLength) == 24);
        assert!(offset_of!(NET_BUFFER, MdlChain) == 32);
        assert!(offset_of!(NET_BUFFER, DataOffset) == 40);
        assert!(offset_of!(NET_BUFFER, ChecksumBias) == 48);
        assert!(offset_of!(NET_BUFFER, NdisPoolHandle) == 56);
        assert!(offset_of!(NET_BUFFER, DataPhysicalAddress) == 160);
        type L = NET_BUFFER_LIST;
        assert!(offset_of!(L, Context) == 16);
        assert!(offset_of!(L, NdisPoolHandle) == 32);
        assert!(offset_of!(L, Scratch) == 104);
        assert!(offset_of!(L, SourceHandle) == 112);
        assert!(offset_of!(L, NblFlags) == 120);
        assert!(offset_of!(L, Status) == 132);
    };
}

/// `PKSTART_ROUTINE`.
pub type KStartRoutine = unsafe extern "system" fn(*mut c_void);
/// `PCREATE_PROCESS_NOTIFY_ROUTINE_EX`.
pub type ProcessNotifyFn = unsafe extern "system" fn(PEPROCESS, *mut c_void, *mut c_void);

unsafe extern "system" {
    pub fn ExAllocatePoolWithTag(pool: i32, size: usize, tag: u32) -> *mut c_void;
    pub fn ExFreePoolWithTag(p: *mut c_void, tag: u32);
    /// The machine's physical memory as an array that ends with an
    /// all-zero entry; the caller frees it (`ExFreePoolWithTag(p, 0)`).
    /// PASSIVE_LEVEL.
    pub fn MmGetPhysicalMemoryRanges() -> *mut PHYSICAL_MEMORY_RANGE;
    pub fn IoAllocateMdl(
        va: *mut c_void,
        len: u32,
        secondary: u8,
        charge_quota: u8,
        irp: *mut IRP,
    ) -> *mut MDL;
    pub fn IoFreeMdl(mdl: *mut MDL);
    pub fn MmBuildMdlForNonPagedPool(mdl: *mut MDL);
    pub fn MmMapLockedPagesSpecifyCache(
        mdl: *mut MDL,
        mode: i8,
        cache: i32,
        requested: *mut c_void,
        bugcheck: u32,
        priority: u32,
    ) -> *mut c_void;
    pub fn MmUnmapLockedPages(va: *mut c_void, mdl: *mut MDL);
    pub fn MmGetPhysicalAddress(va: *const c_void) -> i64;
    pub fn KeInitializeEvent(ev: *mut KEVENT, kind: i32, state: u8);
    pub fn KeSetEvent(ev: *mut KEVENT, increment: i32, wait: u8) -> i32;
    pub fn KeClearEvent(ev: *mut KEVENT);
    pub fn KeWaitForSingleObject(
        obj: *mut c_void,
        reason: i32,
        mode: i8,
        alertable: u8,
        timeout: *const i64,
    ) -> NTSTATUS;
    pub fn KeAcquireSpinLockRaiseToDpc(lock: *mut usize) -> KIRQL;
    pub fn KeReleaseSpinLock(lock: *mut usize, irql: KIRQL);
    pub fn KeInitializeMutex(m: *mut KMUTANT, level: u32);
    pub fn KeReleaseMutex(m: *mut KMUTANT, wait: u8) -> i32;
    pub fn KeDelayExecutionThread(mode: i8, alertable: u8, interval: *const i64) -> NTSTATUS;
    pub fn KeQueryActiveProcessorCountEx(group: u16) -> u32;
    pub fn KeSetSystemAffinityThreadEx(affinity: usize) -> usize;
    pub fn PsCreateSystemThread(
        handle: *mut *mut c_void,
        access: u32,
        attrs: *mut OBJECT_ATTRIBUTES,
        process: *mut c_void,
        client_id: *mut c_void,
        start: KStartRoutine,
        ctx: *mut c_void,
    ) -> NTSTATUS;
    pub fn PsTerminateSystemThread(status: NTSTATUS) -> NTSTATUS;
    pub fn ObReferenceObjectByHandle(
        handle: *mut c_void,
        access: u32,
        object_type: *mut c_void,
        mode: i8,
        object: *mut *mut c_void,
        info: *mut c_void,
    ) -> NTSTATUS;
    pub fn ObfReferenceObject(obj: *mut c_void) -> isize;
    pub fn ObfDereferenceObject(obj: *mut c_void) -> isize;
    pub fn ZwClose(handle: *mut c_void) -> NTSTATUS;
    pub fn IofCompleteRequest(irp: *mut IRP, boost: i8);
    pub fn IoGetCurrentProcess() -> PEPROCESS;
    pub fn KeStackAttachProcess(process: PEPROCESS, state: *mut KAPC_STATE);
    pub fn KeUnstackDetachProcess(state: *mut KAPC_STATE);
    pub fn PsSetCreateProcessNotifyRoutineEx(routine: ProcessNotifyFn, remove: u8) -> NTSTATUS;
    pub fn KeBugCheckEx(code: u32, p1: usize, p2: usize, p3: usize, p4: usize) -> !;
    pub fn KeGetCurrentIrql() -> KIRQL;
    /// The import slot of the exported variable `IoFileObjectType`
    /// (`POBJECT_TYPE`): the slot holds the variable's address.
    #[link_name = "__imp_IoFileObjectType"]
    pub static IO_FILE_OBJECT_TYPE: *const *mut c_void;
}

unsafe extern "C" {
    pub fn DbgPrintEx(component: u32, level: u32, format: *const u8, ...) -> u32;
}

unsafe extern "system" {
    pub fn NdisFRegisterFilterDriver(
        driver: *mut DRIVER_OBJECT,
        ctx: NDIS_HANDLE,
        chars: *const NDIS_FILTER_DRIVER_CHARACTERISTICS,
        handle: *mut NDIS_HANDLE,
    ) -> NDIS_STATUS;
    pub fn NdisFDeregisterFilterDriver(handle: NDIS_HANDLE);
    pub fn NdisFSetAttributes(
        filter: NDIS_HANDLE,
        ctx: NDIS_HANDLE,
        attrs: *const NDIS_FILTER_ATTRIBUTES,
    ) -> NDIS_STATUS;
    pub fn NdisRegisterDeviceEx(
        driver: NDIS_HANDLE,
        attrs: *const NDIS_DEVICE_OBJECT_ATTRIBUTES,
        device: *mut *mut DEVICE_OBJECT,
        handle: *mut NDIS_HANDLE,
    ) -> NDIS_STATUS;
    pub fn NdisDeregisterDeviceEx(handle: NDIS_HANDLE);
    pub fn NdisAllocateNetBufferListPool(
        handle: NDIS_HANDLE,
        params: *const NET_BUFFER_LIST_POOL_PARAMETERS,
    ) -> NDIS_HANDLE;
    pub fn NdisFreeNetBufferListPool(pool: NDIS_HANDLE);
    pub fn NdisAllocateNetBufferAndNetBufferList(
        pool: NDIS_HANDLE,
        context_size: u16,
        backfill: u16,
        mdl: *mut MDL,
        offset: u32,
        len: usize,
    ) -> *mut NET_BUFFER_LIST;
    pub fn NdisFreeNetBufferList(nbl: *mut NET_BUFFER_LIST);
    pub fn NdisFSendNetBufferLists(
        filter: NDIS_HANDLE,
        nbl: *mut NET_BUFFER_LIST,
        port: u32,
        flags: u32,
    );
    pub fn NdisFSendNetBufferListsComplete(
        filter: NDIS_HANDLE,
        nbl: *mut NET_BUFFER_LIST,
        flags: u32,
    );
    pub fn NdisFIndicateReceiveNetBufferLists(
        filter: NDIS_HANDLE,
        nbl: *mut NET_BUFFER_LIST,
        port: u32,
        count: u32,
        flags: u32,
    );
    pub fn NdisFReturnNetBufferLists(filter: NDIS_HANDLE, nbl: *mut NET_BUFFER_LIST, flags: u32);
    pub fn NdisFPauseComplete(filter: NDIS_HANDLE);
}

// glue.c (clang, SEH).
unsafe extern "C" {
    /// 0, or -EFAULT: the range is not user memory or faulted.
    pub fn nm_glue_copy_from_user(dst: *mut u8, src: u64, len: usize) -> i32;
    /// 0, or -EFAULT.
    pub fn nm_glue_copy_to_user(dst: u64, src: *const u8, len: usize) -> i32;
    /// `MmMapLockedPagesSpecifyCache(mdl, UserMode, ...)` inside `__try`:
    /// the user address, or NULL.
    pub fn nm_glue_map_user(mdl: *mut MDL) -> *mut c_void;
    /// `KeQuerySystemTime`: 100 ns units since 1601.
    pub fn nm_glue_system_time() -> i64;
    /// An MDL over `npages` pages of the calling process at page-aligned
    /// `addr`, locked for writing (`MmProbeAndLockPages` inside `__try`)
    /// and mapped into system space; NULL with `*err` = -errno (-EINVAL,
    /// -EFAULT, -ENOMEM).
    pub fn nm_glue_pin_user(addr: u64, npages: usize, err: *mut i32) -> *mut c_void;
    /// System address of page `i` of a locked range (NULL past it).
    pub fn nm_glue_upage_addr(u: *mut c_void, i: usize) -> *mut u8;
    /// Non-zero if two locked ranges are the same pages in the same order.
    pub fn nm_glue_upages_same(a: *mut c_void, b: *mut c_void) -> i32;
    /// Unmaps, unlocks and frees a locked range (IRQL <= DISPATCH_LEVEL).
    pub fn nm_glue_unpin_user(u: *mut c_void);
}

/// `IoGetCurrentIrpStackLocation` (a header inline).
///
/// # Safety
/// `irp` is a live IRP owned by the caller's dispatch routine.
pub unsafe fn current_stack_location(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: by the contract; for an IRP being dispatched the tail overlay
    // holds the current stack location.
    unsafe {
        (*irp)
            .Tail
            .Overlay
            .Anonymous2
            .Anonymous
            .CurrentStackLocation
    }
}

/// A counted UTF-16 string from an ASCII literal, in a static buffer.
pub struct StaticUnicode<const N: usize> {
    buf: [u16; N],
}

impl<const N: usize> StaticUnicode<N> {
    /// `s` (ASCII, `N` bytes) widened.
    pub const fn new(s: &[u8; N]) -> Self {
        let mut buf = [0u16; N];
        let mut i = 0;
        while i < N {
            buf[i] = s[i] as u16;
            i += 1;
        }
        StaticUnicode { buf }
    }

    /// The `UNICODE_STRING` over the buffer (valid while `self` is).
    pub fn as_unicode(&'static self) -> UNICODE_STRING {
        UNICODE_STRING {
            Length: (N * 2) as u16,
            MaximumLength: (N * 2) as u16,
            Buffer: self.buf.as_ptr().cast_mut(),
        }
    }
}
