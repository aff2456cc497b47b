//! `#[repr(C)]` structures of the netmap API 14 (spec §3), binary compatible with the
//! reference headers on Linux x86_64.
//!
//! Conventions:
//! * Struct names are the CamelCase of the C names; field names are the C names.
//! * Every byte is covered by a field: padding the compiler would insert in C is an
//!   explicit `_padN` field (always zero when built here), so every struct is plain
//!   old data and can be viewed as bytes through [`crate::pod::Pod`].
//! * `char[]` is `[u8; N]`; user pointers are `u64` (0 = none).
//! * Size, alignment, the type and offset of every field, and the absence of
//!   implicit padding are checked at compile time below.

/// `struct timeval` on LP64 Linux.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct Timeval {
    /// Seconds.
    pub tv_sec: i64,
    /// Microseconds.
    pub tv_usec: i64,
}

/// `struct netmap_slot` (spec §3.1): one ring slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NetmapSlot {
    /// Buffer index.
    pub buf_idx: u32,
    /// Packet (fragment) length.
    pub len: u16,
    /// `NS_*` flags ([`crate::consts::SlotFlags`]).
    pub flags: u16,
    /// User address for `NS_INDIRECT`, or per-slot offset (low bits, see `offset_mask`).
    pub ptr: u64,
}

/// `struct netmap_ring` (spec §3.2): the 256-byte ring header. The slots
/// ([`NetmapSlot`]`[num_slots]`) follow at offset 256 ([`NETMAP_RING_SLOTS_OFFSET`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C, align(128))]
pub struct NetmapRing {
    /// Offset from this ring to the buffer of index 0.
    pub buf_ofs: i64,
    /// Number of slots.
    pub num_slots: u32,
    /// Buffer size.
    pub nr_buf_size: u32,
    /// Ring index within its direction.
    pub ringid: u16,
    /// Direction: 1 for TX rings, 0 for RX rings (what the kernel writes, spec §15.11).
    pub dir: u16,
    /// First slot owned by the user (user-written).
    pub head: u32,
    /// Wakeup point (user-written).
    pub cur: u32,
    /// First slot owned by the kernel (kernel-written).
    pub tail: u32,
    /// `NR_TIMESTAMP` / `NR_FORWARD` ([`crate::consts::RingFlags`]).
    pub flags: u32,
    /// Padding (C: implicit).
    pub _pad0: [u8; 4],
    /// Time of the last rxsync.
    pub ts: Timeval,
    /// Mask of the per-slot offset in `ptr` (0 unless OFFSETS is used).
    pub offset_mask: u64,
    /// Buffer alignment (0 for software ports).
    pub buf_align: u64,
    /// Padding (C: implicit, from the 128-byte alignment of `sem`).
    pub _pad1: [u8; 56],
    /// Room for user locks; never touched by the kernel. 128-byte aligned.
    pub sem: [u8; 128],
}

/// Offset of the first slot after a [`NetmapRing`] header.
pub const NETMAP_RING_SLOTS_OFFSET: usize = 256;

impl Default for NetmapRing {
    fn default() -> Self {
        Self {
            buf_ofs: 0,
            num_slots: 0,
            nr_buf_size: 0,
            ringid: 0,
            dir: 0,
            head: 0,
            cur: 0,
            tail: 0,
            flags: 0,
            _pad0: [0; 4],
            ts: Timeval::default(),
            offset_mask: 0,
            buf_align: 0,
            _pad1: [0; 56],
            sem: [0; 128],
        }
    }
}

/// `struct netmap_if` (spec §3.3): the fixed 56-byte part. `ring_ofs: i64[]` follows
/// at offset 56 ([`NETMAP_IF_RING_OFS_OFFSET`]) with
/// `ni_tx_rings + ni_host_tx_rings + ni_rx_rings + ni_host_rx_rings` entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C, align(8))]
pub struct NetmapIf {
    /// Adapter name, at most 15 chars + NUL.
    pub ni_name: [u8; 16],
    /// Not written by the kernel.
    pub ni_version: u32,
    /// `NI_PRIV_MEM`.
    pub ni_flags: u32,
    /// Hardware TX rings.
    pub ni_tx_rings: u32,
    /// Hardware RX rings.
    pub ni_rx_rings: u32,
    /// Head of the extra-buffer list (0 = empty).
    pub ni_bufs_head: u32,
    /// Host TX rings (at least 1).
    pub ni_host_tx_rings: u32,
    /// Host RX rings (at least 1).
    pub ni_host_rx_rings: u32,
    /// Unused.
    pub ni_spare1: [u32; 3],
}

/// Offset of `ring_ofs[0]` in a netmap_if.
pub const NETMAP_IF_RING_OFS_OFFSET: usize = 56;

/// `struct nmreq_header` (spec §3.4): the `NIOCCTRL` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqHeader {
    /// API version (14 or 15).
    pub nr_version: u16,
    /// `NETMAP_REQ_*`.
    pub nr_reqtype: u16,
    /// Must be 0.
    pub nr_reserved: u32,
    /// Port name, NUL-terminated.
    pub nr_name: [u8; 64],
    /// User pointer to the first option, or 0.
    pub nr_options: u64,
    /// User pointer to the body, or 0.
    pub nr_body: u64,
}

impl Default for NmreqHeader {
    fn default() -> Self {
        Self {
            nr_version: 0,
            nr_reqtype: 0,
            nr_reserved: 0,
            nr_name: [0; 64],
            nr_options: 0,
            nr_body: 0,
        }
    }
}

/// `struct nmreq_register` (spec §3.5): body of `NETMAP_REQ_REGISTER`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqRegister {
    /// Out: offset of the netmap_if in the region.
    pub nr_offset: u64,
    /// Out: size of the region.
    pub nr_memsize: u64,
    /// In (hint) / out.
    pub nr_tx_slots: u32,
    /// In (hint) / out.
    pub nr_rx_slots: u32,
    /// In (hint) / out.
    pub nr_tx_rings: u16,
    /// In (hint) / out.
    pub nr_rx_rings: u16,
    /// In (hint) / out.
    pub nr_host_tx_rings: u16,
    /// In (hint) / out.
    pub nr_host_rx_rings: u16,
    /// In (0 = auto) / out.
    pub nr_mem_id: u16,
    /// In: ring id for ONE_NIC / ONE_SW.
    pub nr_ringid: u16,
    /// In: `NR_REG_*`.
    pub nr_mode: u32,
    /// In: wanted / out: obtained extra buffers.
    pub nr_extra_bufs: u32,
    /// Padding (C: implicit).
    pub _pad0: u32,
    /// In: `NR_*` flags ([`crate::consts::RegFlags`]).
    pub nr_flags: u64,
}

/// `struct nmreq_port_info_get` (spec §3.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqPortInfoGet {
    /// Region size.
    pub nr_memsize: u64,
    /// TX slots.
    pub nr_tx_slots: u32,
    /// RX slots.
    pub nr_rx_slots: u32,
    /// TX rings.
    pub nr_tx_rings: u16,
    /// RX rings.
    pub nr_rx_rings: u16,
    /// Host TX rings.
    pub nr_host_tx_rings: u16,
    /// Host RX rings.
    pub nr_host_rx_rings: u16,
    /// Allocator id.
    pub nr_mem_id: u16,
    /// Padding.
    pub pad: [u16; 3],
}

/// `struct nmreq_vale_attach` (spec §3.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqValeAttach {
    /// Registration parameters of the attached port.
    pub reg: NmreqRegister,
    /// Out: port index.
    pub port_index: u32,
    /// Padding.
    pub pad1: u32,
}

/// `struct nmreq_vale_detach` (spec §3.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqValeDetach {
    /// Out: port index.
    pub port_index: u32,
    /// Padding.
    pub pad1: u32,
}

/// `struct nmreq_vale_list` (spec §3.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqValeList {
    /// In/out: switch index.
    pub nr_bridge_idx: u16,
    /// Padding.
    pub pad1: u16,
    /// In/out: port index.
    pub nr_port_idx: u32,
}

/// `struct nmreq_port_hdr` (spec §3.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqPortHdr {
    /// Virtio-net header length (0, 10 or 12).
    pub nr_hdr_len: u32,
    /// Padding.
    pub pad1: u32,
}

/// `struct nmreq_vale_newif` (spec §3.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqValeNewif {
    /// TX slots.
    pub nr_tx_slots: u32,
    /// RX slots.
    pub nr_rx_slots: u32,
    /// TX rings.
    pub nr_tx_rings: u16,
    /// RX rings.
    pub nr_rx_rings: u16,
    /// Allocator id.
    pub nr_mem_id: u16,
    /// Padding.
    pub pad1: u16,
}

/// `struct nmreq_vale_polling` (spec §3.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqValePolling {
    /// `NETMAP_POLLING_MODE_*`.
    pub nr_mode: u32,
    /// First CPU.
    pub nr_first_cpu_id: u32,
    /// Number of polling CPUs.
    pub nr_num_polling_cpus: u32,
    /// Padding.
    pub pad1: u32,
}

/// `struct nmreq_pools_info` (spec §3.8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqPoolsInfo {
    /// Region size.
    pub nr_memsize: u64,
    /// Allocator id.
    pub nr_mem_id: u16,
    /// Padding.
    pub pad1: [u16; 3],
    /// Offset of the netmap_if pool.
    pub nr_if_pool_offset: u64,
    /// Number of netmap_if objects.
    pub nr_if_pool_objtotal: u32,
    /// Size of a netmap_if object.
    pub nr_if_pool_objsize: u32,
    /// Offset of the ring pool.
    pub nr_ring_pool_offset: u64,
    /// Number of ring objects.
    pub nr_ring_pool_objtotal: u32,
    /// Size of a ring object.
    pub nr_ring_pool_objsize: u32,
    /// Offset of the buffer pool.
    pub nr_buf_pool_offset: u64,
    /// Number of buffers.
    pub nr_buf_pool_objtotal: u32,
    /// Buffer size.
    pub nr_buf_pool_objsize: u32,
}

/// `struct nmreq_sync_kloop_start` (spec §3.9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqSyncKloopStart {
    /// Sleep between busy-poll iterations (≤ 1000000).
    pub sleep_us: u32,
    /// Padding.
    pub pad1: u32,
}

/// `struct nm_csb_atok` (spec §3.10): application → kernel CSB entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmCsbAtok {
    /// Ring head.
    pub head: u32,
    /// Ring cur.
    pub cur: u32,
    /// The application wants to be kicked.
    pub appl_need_kick: u32,
    /// Sync flags.
    pub sync_flags: u32,
    /// Padding.
    pub pad: [u32; 12],
}

/// `struct nm_csb_ktoa` (spec §3.10): kernel → application CSB entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmCsbKtoa {
    /// Kernel hwcur.
    pub hwcur: u32,
    /// Kernel hwtail.
    pub hwtail: u32,
    /// The kernel wants to be kicked.
    pub kern_need_kick: u32,
    /// Padding.
    pub pad: [u32; 13],
}

/// `struct nmreq_option` (spec §3.11): common option header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqOption {
    /// User pointer to the next option, or 0.
    pub nro_next: u64,
    /// `NETMAP_REQ_OPT_*`.
    pub nro_reqtype: u32,
    /// Out: 0 or an errno.
    pub nro_status: u32,
    /// Size of the whole option including this header.
    pub nro_size: u64,
}

/// `struct nmreq_opt_extmem` (spec §3.11).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqOptExtmem {
    /// Header.
    pub nro_opt: NmreqOption,
    /// User address of the memory.
    pub nro_usrptr: u64,
    /// Pool layout.
    pub nro_info: NmreqPoolsInfo,
}

/// `struct nmreq_opt_csb` (spec §3.11).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqOptCsb {
    /// Header.
    pub nro_opt: NmreqOption,
    /// User address of the [`NmCsbAtok`] array (64-byte aligned).
    pub csb_atok: u64,
    /// User address of the [`NmCsbKtoa`] array (64-byte aligned).
    pub csb_ktoa: u64,
}

/// `struct nmreq_opt_sync_kloop_mode` (spec §3.11).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqOptSyncKloopMode {
    /// Header.
    pub nro_opt: NmreqOption,
    /// `NM_OPT_SYNC_KLOOP_DIRECT_*` ([`crate::consts::SyncKloopMode`]).
    pub mode: u32,
    /// Tail padding (C: implicit).
    pub _pad0: u32,
}

/// `struct nmreq_opt_sync_kloop_eventfds` (spec §3.11): the fixed part. An array of
/// [`NmreqOptSyncKloopEventfdsEntry`] follows at offset 24, one per bound ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqOptSyncKloopEventfds {
    /// Header.
    pub nro_opt: NmreqOption,
}

/// One entry of the eventfds array of [`NmreqOptSyncKloopEventfds`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqOptSyncKloopEventfdsEntry {
    /// Eventfd the application signals (or < 0).
    pub ioeventfd: i32,
    /// Eventfd the kernel signals (< 0: never).
    pub irqfd: i32,
}

/// `struct nmreq_opt_offsets` (spec §3.11).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmreqOptOffsets {
    /// Header.
    pub nro_opt: NmreqOption,
    /// In/out: maximum offset.
    pub nro_max_offset: u64,
    /// In: initial offset written in every slot.
    pub nro_initial_offset: u64,
    /// In: number of low bits of `ptr` holding the offset (0 or 64 = all).
    pub nro_offset_bits: u32,
    /// In: TX alignment.
    pub nro_tx_align: u32,
    /// In: minimum gap.
    pub nro_min_gap: u64,
}

/// Legacy `struct nmreq` (spec §3.12): the `NIOCREGIF`/`NIOCGINFO` argument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct Nmreq {
    /// Port name (15 chars + NUL).
    pub nr_name: [u8; 16],
    /// API version (≥ 14).
    pub nr_version: u32,
    /// Out: offset of the netmap_if.
    pub nr_offset: u32,
    /// Out: region size.
    pub nr_memsize: u32,
    /// TX slots.
    pub nr_tx_slots: u32,
    /// RX slots.
    pub nr_rx_slots: u32,
    /// TX rings.
    pub nr_tx_rings: u16,
    /// RX rings.
    pub nr_rx_rings: u16,
    /// Ring id and `NETMAP_*_RING` / poll bits.
    pub nr_ringid: u16,
    /// `NETMAP_BDG_*` command (0 = register / info).
    pub nr_cmd: u16,
    /// Command argument 1.
    pub nr_arg1: u16,
    /// Command argument 2 (mem id).
    pub nr_arg2: u16,
    /// Command argument 3 (extra buffers).
    pub nr_arg3: u32,
    /// Mode (low 4 bits) and `NR_*` flags.
    pub nr_flags: u32,
    /// Unused.
    pub spare2: [u32; 1],
}

/// `struct nm_ifreq` (spec §3.12): the `NIOCCONFIG` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NmIfreq {
    /// Switch name.
    pub nifr_name: [u8; 16],
    /// Opaque data for the switch's config hook.
    pub data: [u8; 256],
}

impl Default for NmIfreq {
    fn default() -> Self {
        Self {
            nifr_name: [0; 16],
            data: [0; 256],
        }
    }
}

// ---------------------------------------------------------------------------------
// Compile-time layout checks (spec §3).
// ---------------------------------------------------------------------------------

/// Asserts size, alignment, and the type and offset of every field of a struct, and
/// that the listed fields cover the whole struct (no implicit padding).
macro_rules! assert_layout {
    ($t:ty, size = $size:expr, align = $align:expr, { $($f:ident : $ft:ty => $off:expr),* $(,)? }) => {
        const _: () = {
            assert!(core::mem::size_of::<$t>() == $size);
            assert!(core::mem::align_of::<$t>() == $align);
            $( assert!(core::mem::offset_of!($t, $f) == $off); )*
            assert!(0 $( + core::mem::size_of::<$ft>() )* == $size, "implicit padding");
            // Field types are what the list says.
            #[allow(dead_code)]
            fn field_types(v: &$t) { $( let _: &$ft = &v.$f; )* }
        };
    };
}

assert_layout!(Timeval, size = 16, align = 8, { tv_sec: i64 => 0, tv_usec: i64 => 8 });

assert_layout!(NetmapSlot, size = 16, align = 8, {
    buf_idx: u32 => 0, len: u16 => 4, flags: u16 => 6, ptr: u64 => 8,
});

assert_layout!(NetmapRing, size = 256, align = 128, {
    buf_ofs: i64 => 0,
    num_slots: u32 => 8,
    nr_buf_size: u32 => 12,
    ringid: u16 => 16,
    dir: u16 => 18,
    head: u32 => 20,
    cur: u32 => 24,
    tail: u32 => 28,
    flags: u32 => 32,
    _pad0: [u8; 4] => 36,
    ts: Timeval => 40,
    offset_mask: u64 => 56,
    buf_align: u64 => 64,
    _pad1: [u8; 56] => 72,
    sem: [u8; 128] => 128,
});
const _: () = assert!(core::mem::size_of::<NetmapRing>() == NETMAP_RING_SLOTS_OFFSET);

assert_layout!(NetmapIf, size = 56, align = 8, {
    ni_name: [u8; 16] => 0,
    ni_version: u32 => 16,
    ni_flags: u32 => 20,
    ni_tx_rings: u32 => 24,
    ni_rx_rings: u32 => 28,
    ni_bufs_head: u32 => 32,
    ni_host_tx_rings: u32 => 36,
    ni_host_rx_rings: u32 => 40,
    ni_spare1: [u32; 3] => 44,
});
const _: () = assert!(core::mem::size_of::<NetmapIf>() == NETMAP_IF_RING_OFS_OFFSET);

assert_layout!(NmreqHeader, size = 88, align = 8, {
    nr_version: u16 => 0,
    nr_reqtype: u16 => 2,
    nr_reserved: u32 => 4,
    nr_name: [u8; 64] => 8,
    nr_options: u64 => 72,
    nr_body: u64 => 80,
});

assert_layout!(NmreqRegister, size = 56, align = 8, {
    nr_offset: u64 => 0,
    nr_memsize: u64 => 8,
    nr_tx_slots: u32 => 16,
    nr_rx_slots: u32 => 20,
    nr_tx_rings: u16 => 24,
    nr_rx_rings: u16 => 26,
    nr_host_tx_rings: u16 => 28,
    nr_host_rx_rings: u16 => 30,
    nr_mem_id: u16 => 32,
    nr_ringid: u16 => 34,
    nr_mode: u32 => 36,
    nr_extra_bufs: u32 => 40,
    _pad0: u32 => 44,
    nr_flags: u64 => 48,
});

assert_layout!(NmreqPortInfoGet, size = 32, align = 8, {
    nr_memsize: u64 => 0,
    nr_tx_slots: u32 => 8,
    nr_rx_slots: u32 => 12,
    nr_tx_rings: u16 => 16,
    nr_rx_rings: u16 => 18,
    nr_host_tx_rings: u16 => 20,
    nr_host_rx_rings: u16 => 22,
    nr_mem_id: u16 => 24,
    pad: [u16; 3] => 26,
});

assert_layout!(NmreqValeAttach, size = 64, align = 8, {
    reg: NmreqRegister => 0, port_index: u32 => 56, pad1: u32 => 60,
});

assert_layout!(NmreqValeDetach, size = 8, align = 4, { port_index: u32 => 0, pad1: u32 => 4 });

assert_layout!(NmreqValeList, size = 8, align = 4, {
    nr_bridge_idx: u16 => 0, pad1: u16 => 2, nr_port_idx: u32 => 4,
});

assert_layout!(NmreqPortHdr, size = 8, align = 4, { nr_hdr_len: u32 => 0, pad1: u32 => 4 });

assert_layout!(NmreqValeNewif, size = 16, align = 4, {
    nr_tx_slots: u32 => 0,
    nr_rx_slots: u32 => 4,
    nr_tx_rings: u16 => 8,
    nr_rx_rings: u16 => 10,
    nr_mem_id: u16 => 12,
    pad1: u16 => 14,
});

assert_layout!(NmreqValePolling, size = 16, align = 4, {
    nr_mode: u32 => 0,
    nr_first_cpu_id: u32 => 4,
    nr_num_polling_cpus: u32 => 8,
    pad1: u32 => 12,
});

assert_layout!(NmreqPoolsInfo, size = 64, align = 8, {
    nr_memsize: u64 => 0,
    nr_mem_id: u16 => 8,
    pad1: [u16; 3] => 10,
    nr_if_pool_offset: u64 => 16,
    nr_if_pool_objtotal: u32 => 24,
    nr_if_pool_objsize: u32 => 28,
    nr_ring_pool_offset: u64 => 32,
    nr_ring_pool_objtotal: u32 => 40,
    nr_ring_pool_objsize: u32 => 44,
    nr_buf_pool_offset: u64 => 48,
    nr_buf_pool_objtotal: u32 => 56,
    nr_buf_pool_objsize: u32 => 60,
});

assert_layout!(NmreqSyncKloopStart, size = 8, align = 4, { sleep_us: u32 => 0, pad1: u32 => 4 });

assert_layout!(NmCsbAtok, size = 64, align = 4, {
    head: u32 => 0,
    cur: u32 => 4,
    appl_need_kick: u32 => 8,
    sync_flags: u32 => 12,
    pad: [u32; 12] => 16,
});

assert_layout!(NmCsbKtoa, size = 64, align = 4, {
    hwcur: u32 => 0,
    hwtail: u32 => 4,
    kern_need_kick: u32 => 8,
    pad: [u32; 13] => 12,
});

assert_layout!(NmreqOption, size = 24, align = 8, {
    nro_next: u64 => 0, nro_reqtype: u32 => 8, nro_status: u32 => 12, nro_size: u64 => 16,
});

assert_layout!(NmreqOptExtmem, size = 96, align = 8, {
    nro_opt: NmreqOption => 0, nro_usrptr: u64 => 24, nro_info: NmreqPoolsInfo => 32,
});

assert_layout!(NmreqOptCsb, size = 40, align = 8, {
    nro_opt: NmreqOption => 0, csb_atok: u64 => 24, csb_ktoa: u64 => 32,
});

assert_layout!(NmreqOptSyncKloopMode, size = 32, align = 8, {
    nro_opt: NmreqOption => 0, mode: u32 => 24, _pad0: u32 => 28,
});

assert_layout!(NmreqOptSyncKloopEventfds, size = 24, align = 8, { nro_opt: NmreqOption => 0 });

assert_layout!(NmreqOptSyncKloopEventfdsEntry, size = 8, align = 4, {
    ioeventfd: i32 => 0, irqfd: i32 => 4,
});

assert_layout!(NmreqOptOffsets, size = 56, align = 8, {
    nro_opt: NmreqOption => 0,
    nro_max_offset: u64 => 24,
    nro_initial_offset: u64 => 32,
    nro_offset_bits: u32 => 40,
    nro_tx_align: u32 => 44,
    nro_min_gap: u64 => 48,
});

assert_layout!(Nmreq, size = 60, align = 4, {
    nr_name: [u8; 16] => 0,
    nr_version: u32 => 16,
    nr_offset: u32 => 20,
    nr_memsize: u32 => 24,
    nr_tx_slots: u32 => 28,
    nr_rx_slots: u32 => 32,
    nr_tx_rings: u16 => 36,
    nr_rx_rings: u16 => 38,
    nr_ringid: u16 => 40,
    nr_cmd: u16 => 42,
    nr_arg1: u16 => 44,
    nr_arg2: u16 => 46,
    nr_arg3: u32 => 48,
    nr_flags: u32 => 52,
    spare2: [u32; 1] => 56,
});

assert_layout!(NmIfreq, size = 272, align = 1, {
    nifr_name: [u8; 16] => 0, data: [u8; 256] => 16,
});

// ---------------------------------------------------------------------------------
// Small conveniences.
// ---------------------------------------------------------------------------------

/// Copies `name` into a NUL-padded C name array of `N` bytes, truncating it to
/// `N - 1` bytes so that the result is always NUL-terminated.
pub fn c_name<const N: usize>(name: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = name.len().min(N.saturating_sub(1));
    out[..n].copy_from_slice(&name[..n]);
    out
}

/// The bytes of a C name array up to (not including) the first NUL.
pub fn c_name_bytes(name: &[u8]) -> &[u8] {
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    &name[..end]
}

impl NmreqHeader {
    /// A header for request `reqtype` on port `name` with `nr_version = NETMAP_API`.
    /// `name` is truncated to 63 bytes.
    pub fn new(reqtype: u16, name: &[u8]) -> Self {
        Self {
            nr_version: crate::consts::NETMAP_API,
            nr_reqtype: reqtype,
            nr_name: c_name(name),
            ..Self::default()
        }
    }

    /// The port name up to the first NUL.
    pub fn name(&self) -> &[u8] {
        c_name_bytes(&self.nr_name)
    }
}

impl Nmreq {
    /// The port name up to the first NUL.
    pub fn name(&self) -> &[u8] {
        c_name_bytes(&self.nr_name)
    }
}

impl NetmapIf {
    /// The adapter name up to the first NUL.
    pub fn name(&self) -> &[u8] {
        c_name_bytes(&self.ni_name)
    }

    /// Number of `ring_ofs` entries following the fixed part
    /// (`T + HT + R + HR`), saturating on overflow.
    pub fn num_ring_ofs(&self) -> u64 {
        u64::from(self.ni_tx_rings)
            + u64::from(self.ni_host_tx_rings)
            + u64::from(self.ni_rx_rings)
            + u64::from(self.ni_host_rx_rings)
    }
}

impl NmIfreq {
    /// The switch name up to the first NUL.
    pub fn name(&self) -> &[u8] {
        c_name_bytes(&self.nifr_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_name_truncates_and_terminates() {
        let n: [u8; 4] = c_name(b"abcdef");
        assert_eq!(&n, b"abc\0");
        let n: [u8; 4] = c_name(b"ab");
        assert_eq!(&n, b"ab\0\0");
        assert_eq!(c_name_bytes(&n), b"ab");
        assert_eq!(c_name_bytes(b"xyz"), b"xyz");
        let n: [u8; 0] = c_name(b"ab");
        assert_eq!(n.len(), 0);
    }

    #[test]
    fn header_new() {
        let h = NmreqHeader::new(crate::consts::NETMAP_REQ_REGISTER, b"vale0:a");
        assert_eq!(h.nr_version, 14);
        assert_eq!(h.nr_reqtype, 1);
        assert_eq!(h.name(), b"vale0:a");
        let long = [b'x'; 100];
        assert_eq!(NmreqHeader::new(1, &long).name().len(), 63);
    }

    #[test]
    fn netmap_if_ring_count() {
        let nif = NetmapIf {
            ni_tx_rings: 2,
            ni_rx_rings: 3,
            ni_host_tx_rings: 1,
            ni_host_rx_rings: 1,
            ..NetmapIf::default()
        };
        assert_eq!(nif.num_ring_ofs(), 7);
    }
}
