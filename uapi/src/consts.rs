//! Constants of the netmap API 14 (spec §1.1, §2), with their C names, plus typed
//! views of them (`bitflags` types and enums) for interpretation.
//!
//! Structure fields in [`crate::abi`] stay raw integers; use the types here to
//! interpret them (e.g. `RegFlags::from_bits_retain(req.nr_flags)`).

use bitflags::bitflags;

// ---------------------------------------------------------------------------------
// §1.1 API version, §1.2 device
// ---------------------------------------------------------------------------------

/// Version userspace puts in `nr_version`.
pub const NETMAP_API: u16 = 14;
/// Lowest `nmreq_header.nr_version` accepted by `NIOCCTRL`.
pub const NETMAP_MIN_API: u16 = 14;
/// Highest `nmreq_header.nr_version` accepted by `NIOCCTRL`.
pub const NETMAP_MAX_API: u16 = 15;
/// Path of the control device.
pub const NETMAP_DEVICE_NAME: &str = "/dev/netmap";

// ---------------------------------------------------------------------------------
// §2.1 request types (`nmreq_header.nr_reqtype`)
// ---------------------------------------------------------------------------------

/// Bind the file to a port (body [`crate::abi::NmreqRegister`]).
pub const NETMAP_REQ_REGISTER: u16 = 1;
/// Port / allocator information (body [`crate::abi::NmreqPortInfoGet`]).
pub const NETMAP_REQ_PORT_INFO_GET: u16 = 2;
/// Attach a NIC or persistent port to a VALE switch (body [`crate::abi::NmreqValeAttach`]).
pub const NETMAP_REQ_VALE_ATTACH: u16 = 3;
/// Detach from a VALE switch (body [`crate::abi::NmreqValeDetach`]).
pub const NETMAP_REQ_VALE_DETACH: u16 = 4;
/// List VALE ports (body [`crate::abi::NmreqValeList`]).
pub const NETMAP_REQ_VALE_LIST: u16 = 5;
/// Set the virtio-net header length (body [`crate::abi::NmreqPortHdr`]).
pub const NETMAP_REQ_PORT_HDR_SET: u16 = 6;
/// Get the virtio-net header length (body [`crate::abi::NmreqPortHdr`]).
pub const NETMAP_REQ_PORT_HDR_GET: u16 = 7;
/// Create a persistent VALE port (body [`crate::abi::NmreqValeNewif`]).
pub const NETMAP_REQ_VALE_NEWIF: u16 = 8;
/// Delete a persistent VALE port (no body).
pub const NETMAP_REQ_VALE_DELIF: u16 = 9;
/// Start kernel polling threads on a wrapped NIC (body [`crate::abi::NmreqValePolling`]).
pub const NETMAP_REQ_VALE_POLLING_ENABLE: u16 = 10;
/// Stop kernel polling threads (body [`crate::abi::NmreqValePolling`]).
pub const NETMAP_REQ_VALE_POLLING_DISABLE: u16 = 11;
/// Memory pool layout of an allocator (body [`crate::abi::NmreqPoolsInfo`]).
pub const NETMAP_REQ_POOLS_INFO_GET: u16 = 12;
/// Run the CSB sync loop inside the ioctl (body [`crate::abi::NmreqSyncKloopStart`]).
pub const NETMAP_REQ_SYNC_KLOOP_START: u16 = 13;
/// Stop the CSB sync loop (no body).
pub const NETMAP_REQ_SYNC_KLOOP_STOP: u16 = 14;
/// Enable CSB mode on a bound file (no body, CSB option required).
pub const NETMAP_REQ_CSB_ENABLE: u16 = 15;

/// Body size in bytes of request type `reqtype` (spec §2.1).
///
/// Request types without a body, and unknown request types, have size 0 (the kernel
/// then requires `nr_body == 0` and, for unknown types, fails with `EINVAL` later).
pub const fn body_size(reqtype: u16) -> usize {
    use crate::abi::*;
    use core::mem::size_of;
    match reqtype {
        NETMAP_REQ_REGISTER => size_of::<NmreqRegister>(),
        NETMAP_REQ_PORT_INFO_GET => size_of::<NmreqPortInfoGet>(),
        NETMAP_REQ_VALE_ATTACH => size_of::<NmreqValeAttach>(),
        NETMAP_REQ_VALE_DETACH => size_of::<NmreqValeDetach>(),
        NETMAP_REQ_VALE_LIST => size_of::<NmreqValeList>(),
        NETMAP_REQ_PORT_HDR_SET | NETMAP_REQ_PORT_HDR_GET => size_of::<NmreqPortHdr>(),
        NETMAP_REQ_VALE_NEWIF => size_of::<NmreqValeNewif>(),
        NETMAP_REQ_VALE_POLLING_ENABLE | NETMAP_REQ_VALE_POLLING_DISABLE => {
            size_of::<NmreqValePolling>()
        }
        NETMAP_REQ_POOLS_INFO_GET => size_of::<NmreqPoolsInfo>(),
        NETMAP_REQ_SYNC_KLOOP_START => size_of::<NmreqSyncKloopStart>(),
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------
// §2.2 option types (`nmreq_option.nro_reqtype`)
// ---------------------------------------------------------------------------------

/// External memory option ([`crate::abi::NmreqOptExtmem`]).
pub const NETMAP_REQ_OPT_EXTMEM: u32 = 1;
/// Sync-kloop eventfds option ([`crate::abi::NmreqOptSyncKloopEventfds`]).
pub const NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS: u32 = 2;
/// CSB option ([`crate::abi::NmreqOptCsb`]).
pub const NETMAP_REQ_OPT_CSB: u32 = 3;
/// Sync-kloop mode option ([`crate::abi::NmreqOptSyncKloopMode`]).
pub const NETMAP_REQ_OPT_SYNC_KLOOP_MODE: u32 = 4;
/// Buffer offsets option ([`crate::abi::NmreqOptOffsets`]).
pub const NETMAP_REQ_OPT_OFFSETS: u32 = 5;
/// Marker: every option type `>= NETMAP_REQ_OPT_MAX` is unknown.
pub const NETMAP_REQ_OPT_MAX: u32 = 6;

/// Size of the common option header ([`crate::abi::NmreqOption`]).
pub const NMREQ_OPTION_HDR_SIZE: usize = 24;
/// Body size of the extmem option when the kernel is built with extmem support.
pub const NMREQ_OPT_EXTMEM_BODY_SIZE: usize = 72;

/// Number of body bytes the kernel copies after the 24-byte option header
/// (spec §2.2), for a kernel built **with** extmem (this implementation; the
/// stock Linux build of the reference leaves it out and copies 0 bytes for
/// `NETMAP_REQ_OPT_EXTMEM`).
///
/// Eventfds: `max(nro_size, 24) - 24` (saturated to `usize::MAX` if it does not
/// fit, which the caller rejects as too big). Unknown types (0 or `>= 6`): 0.
pub const fn option_body_size(reqtype: u32, nro_size: u64) -> usize {
    use crate::abi::*;
    use core::mem::size_of;
    match reqtype {
        NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS => {
            let hdr = NMREQ_OPTION_HDR_SIZE as u64;
            let body = nro_size.saturating_sub(hdr);
            if body > usize::MAX as u64 {
                usize::MAX
            } else {
                body as usize
            }
        }
        NETMAP_REQ_OPT_CSB => size_of::<NmreqOptCsb>() - NMREQ_OPTION_HDR_SIZE,
        NETMAP_REQ_OPT_SYNC_KLOOP_MODE => {
            size_of::<NmreqOptSyncKloopMode>() - NMREQ_OPTION_HDR_SIZE
        }
        NETMAP_REQ_OPT_OFFSETS => size_of::<NmreqOptOffsets>() - NMREQ_OPTION_HDR_SIZE,
        NETMAP_REQ_OPT_EXTMEM => NMREQ_OPT_EXTMEM_BODY_SIZE,
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------
// §2.3 register modes
// ---------------------------------------------------------------------------------

/// Legacy only: mode derived from the ringid bits.
pub const NR_REG_DEFAULT: u32 = 0;
/// All hardware rings.
pub const NR_REG_ALL_NIC: u32 = 1;
/// All host rings.
pub const NR_REG_SW: u32 = 2;
/// All hardware and host rings.
pub const NR_REG_NIC_SW: u32 = 3;
/// One hardware ring pair (`nr_ringid`).
pub const NR_REG_ONE_NIC: u32 = 4;
/// Deprecated pipe master mode (legacy only).
pub const NR_REG_PIPE_MASTER: u32 = 5;
/// Deprecated pipe slave mode (legacy only).
pub const NR_REG_PIPE_SLAVE: u32 = 6;
/// Null port.
pub const NR_REG_NULL: u32 = 7;
/// One host ring pair (`nr_ringid`).
pub const NR_REG_ONE_SW: u32 = 8;
/// Legacy: mask extracting the mode from `nmreq.nr_flags`.
pub const NR_REG_MASK: u32 = 0xf;

/// The register modes of spec §2.3 as an enum (`nmreq_register.nr_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum RegMode {
    /// `NR_REG_DEFAULT` (legacy only).
    Default = NR_REG_DEFAULT,
    /// `NR_REG_ALL_NIC`.
    #[default]
    AllNic = NR_REG_ALL_NIC,
    /// `NR_REG_SW`.
    Sw = NR_REG_SW,
    /// `NR_REG_NIC_SW`.
    NicSw = NR_REG_NIC_SW,
    /// `NR_REG_ONE_NIC`.
    OneNic = NR_REG_ONE_NIC,
    /// `NR_REG_PIPE_MASTER` (deprecated).
    PipeMaster = NR_REG_PIPE_MASTER,
    /// `NR_REG_PIPE_SLAVE` (deprecated).
    PipeSlave = NR_REG_PIPE_SLAVE,
    /// `NR_REG_NULL`.
    Null = NR_REG_NULL,
    /// `NR_REG_ONE_SW`.
    OneSw = NR_REG_ONE_SW,
}

impl RegMode {
    /// The mode with raw value `v`, if it is one of §2.3.
    pub const fn from_raw(v: u32) -> Option<Self> {
        Some(match v {
            NR_REG_DEFAULT => Self::Default,
            NR_REG_ALL_NIC => Self::AllNic,
            NR_REG_SW => Self::Sw,
            NR_REG_NIC_SW => Self::NicSw,
            NR_REG_ONE_NIC => Self::OneNic,
            NR_REG_PIPE_MASTER => Self::PipeMaster,
            NR_REG_PIPE_SLAVE => Self::PipeSlave,
            NR_REG_NULL => Self::Null,
            NR_REG_ONE_SW => Self::OneSw,
            _ => return None,
        })
    }

    /// The raw `NR_REG_*` value.
    pub const fn as_raw(self) -> u32 {
        self as u32
    }
}

// ---------------------------------------------------------------------------------
// §2.4 register flags
// ---------------------------------------------------------------------------------

/// Copy monitor of the TX rings.
pub const NR_MONITOR_TX: u64 = 0x100;
/// Copy monitor of the RX rings.
pub const NR_MONITOR_RX: u64 = 0x200;
/// Zero-copy monitor.
pub const NR_ZCOPY_MON: u64 = 0x400;
/// Exclusive use of the selected rings.
pub const NR_EXCLUSIVE: u64 = 0x800;
/// Bind no TX rings.
pub const NR_RX_RINGS_ONLY: u64 = 0x2000;
/// Bind no RX rings.
pub const NR_TX_RINGS_ONLY: u64 = 0x4000;
/// The caller copes with virtio-net headers.
pub const NR_ACCEPT_VNET_HDR: u64 = 0x8000;
/// Defined, never looked at by the kernel.
pub const NR_DO_RX_POLL: u64 = 0x10000;
/// poll() does not txsync unless POLLOUT is requested.
pub const NR_NO_TX_POLL: u64 = 0x20000;

bitflags! {
    /// `nmreq_register.nr_flags` (spec §2.4).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct RegFlags: u64 {
        /// `NR_MONITOR_TX`.
        const MONITOR_TX = NR_MONITOR_TX;
        /// `NR_MONITOR_RX`.
        const MONITOR_RX = NR_MONITOR_RX;
        /// `NR_ZCOPY_MON`.
        const ZCOPY_MON = NR_ZCOPY_MON;
        /// `NR_EXCLUSIVE`.
        const EXCLUSIVE = NR_EXCLUSIVE;
        /// Bit 0x1000: unused in the new API; pkt-gen sets it by mistake (it is the
        /// legacy `NETMAP_NO_TX_POLL` ringid bit). Harmless.
        const LEGACY_NO_TX_POLL = 0x1000;
        /// `NR_RX_RINGS_ONLY`.
        const RX_RINGS_ONLY = NR_RX_RINGS_ONLY;
        /// `NR_TX_RINGS_ONLY`.
        const TX_RINGS_ONLY = NR_TX_RINGS_ONLY;
        /// `NR_ACCEPT_VNET_HDR`.
        const ACCEPT_VNET_HDR = NR_ACCEPT_VNET_HDR;
        /// `NR_DO_RX_POLL` (no effect).
        const DO_RX_POLL = NR_DO_RX_POLL;
        /// `NR_NO_TX_POLL`.
        const NO_TX_POLL = NR_NO_TX_POLL;
    }
}

impl RegFlags {
    /// The flags that select a monitor (`NR_MONITOR_TX | NR_MONITOR_RX | NR_ZCOPY_MON`).
    pub const MONITOR_MASK: Self = Self::MONITOR_TX
        .union(Self::MONITOR_RX)
        .union(Self::ZCOPY_MON);
}

// ---------------------------------------------------------------------------------
// §2.5 legacy ringid bits and nr_cmd values
// ---------------------------------------------------------------------------------

/// Ring number / pipe id / first cpu in legacy `nr_ringid`.
pub const NETMAP_RING_MASK: u16 = 0x0fff;
/// Legacy ringid bit → `NR_NO_TX_POLL`.
pub const NETMAP_NO_TX_POLL: u16 = 0x1000;
/// Legacy ringid bit: with mode 0, bind host rings.
pub const NETMAP_SW_RING: u16 = 0x2000;
/// Legacy ringid bit: with mode 0, bind one hw ring.
pub const NETMAP_HW_RING: u16 = 0x4000;
/// Legacy ringid bit → `NR_DO_RX_POLL`.
pub const NETMAP_DO_RX_POLL: u16 = 0x8000;

/// Legacy `nr_cmd`: attach to a VALE switch.
pub const NETMAP_BDG_ATTACH: u16 = 1;
/// Legacy `nr_cmd`: detach from a VALE switch.
pub const NETMAP_BDG_DETACH: u16 = 2;
/// Legacy `nr_cmd`: register external ops (not translated → `EINVAL`).
pub const NETMAP_BDG_REGOPS: u16 = 3;
/// Legacy `nr_cmd`: list VALE ports.
pub const NETMAP_BDG_LIST: u16 = 4;
/// Legacy `nr_cmd`: set the virtio-net header length.
pub const NETMAP_BDG_VNET_HDR: u16 = 5;
/// Legacy `nr_cmd`: create a persistent VALE port.
pub const NETMAP_BDG_NEWIF: u16 = 6;
/// Legacy `nr_cmd`: delete a persistent VALE port.
pub const NETMAP_BDG_DELIF: u16 = 7;
/// Legacy `nr_cmd`: ptnetmap host create (unsupported → `ENOMEM`).
pub const NETMAP_PT_HOST_CREATE: u16 = 8;
/// Legacy `nr_cmd`: ptnetmap host delete (unsupported → `ENOMEM`).
pub const NETMAP_PT_HOST_DELETE: u16 = 9;
/// Legacy `nr_cmd`: enable polling.
pub const NETMAP_BDG_POLLING_ON: u16 = 10;
/// Legacy `nr_cmd`: disable polling.
pub const NETMAP_BDG_POLLING_OFF: u16 = 11;
/// Legacy `nr_cmd`: get the virtio-net header length.
pub const NETMAP_VNET_HDR_GET: u16 = 12;
/// Legacy `nr_arg1` bit for `NETMAP_BDG_ATTACH`: also attach the host stack.
pub const NETMAP_BDG_HOST: u16 = 1;

// ---------------------------------------------------------------------------------
// §2.6 slot flags
// ---------------------------------------------------------------------------------

/// User (or kernel) changed `buf_idx`.
pub const NS_BUF_CHANGED: u16 = 0x0001;
/// Ask for a TX completion notification.
pub const NS_REPORT: u16 = 0x0002;
/// Transparent forwarding.
pub const NS_FORWARD: u16 = 0x0004;
/// Defined, not consulted by VALE learning.
pub const NS_NO_LEARN: u16 = 0x0008;
/// Payload at user virtual address `ptr` (VALE TX only).
pub const NS_INDIRECT: u16 = 0x0010;
/// The packet continues in the next slot.
pub const NS_MOREFRAG: u16 = 0x0020;
/// Set by monitors on slots that came from a TX ring.
pub const NS_TXMON: u16 = 0x0040;
/// Shift of the port / fragment-count byte.
pub const NS_PORT_SHIFT: u16 = 8;
/// The port / fragment-count byte.
pub const NS_PORT_MASK: u16 = 0xff << NS_PORT_SHIFT;
/// Maximum number of fragments (slots) per packet.
pub const NETMAP_MAX_FRAGS: u32 = 64;

/// `NS_RFRAGS(slot)`: fragment count carried in the high byte of the flags of VALE
/// RX slots.
pub const fn ns_rfrags(flags: u16) -> u16 {
    (flags >> NS_PORT_SHIFT) & 0xff
}

bitflags! {
    /// `netmap_slot.flags` (spec §2.6). [`SlotFlags::PORT_MASK`] is the multi-bit
    /// high byte (fragment count on VALE RX rings).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct SlotFlags: u16 {
        /// `NS_BUF_CHANGED`.
        const BUF_CHANGED = NS_BUF_CHANGED;
        /// `NS_REPORT`.
        const REPORT = NS_REPORT;
        /// `NS_FORWARD`.
        const FORWARD = NS_FORWARD;
        /// `NS_NO_LEARN`.
        const NO_LEARN = NS_NO_LEARN;
        /// `NS_INDIRECT`.
        const INDIRECT = NS_INDIRECT;
        /// `NS_MOREFRAG`.
        const MOREFRAG = NS_MOREFRAG;
        /// `NS_TXMON`.
        const TXMON = NS_TXMON;
        /// `NS_PORT_MASK` (multi-bit field).
        const PORT_MASK = NS_PORT_MASK;
    }
}

// ---------------------------------------------------------------------------------
// §2.7 ring flags
// ---------------------------------------------------------------------------------

/// Update `ts` on rxsync even if `no_timestamp` is set.
pub const NR_TIMESTAMP: u32 = 0x0002;
/// Enable NS_FORWARD processing on this RX ring.
pub const NR_FORWARD: u32 = 0x0004;

bitflags! {
    /// `netmap_ring.flags` (spec §2.7).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct RingFlags: u32 {
        /// `NR_TIMESTAMP`.
        const TIMESTAMP = NR_TIMESTAMP;
        /// `NR_FORWARD`.
        const FORWARD = NR_FORWARD;
    }
}

// ---------------------------------------------------------------------------------
// §2.8 other constants
// ---------------------------------------------------------------------------------

/// `netmap_if.ni_flags`: the port uses a private memory region.
pub const NI_PRIV_MEM: u32 = 0x1;
/// VALE polling: one thread polls all rings.
pub const NETMAP_POLLING_MODE_SINGLE_CPU: u32 = 1;
/// VALE polling: one thread per ring.
pub const NETMAP_POLLING_MODE_MULTI_CPU: u32 = 2;
/// Sync-kloop mode: direct TX.
pub const NM_OPT_SYNC_KLOOP_DIRECT_TX: u32 = 0x1;
/// Sync-kloop mode: direct RX.
pub const NM_OPT_SYNC_KLOOP_DIRECT_RX: u32 = 0x2;

bitflags! {
    /// `nmreq_opt_sync_kloop_mode.mode` (spec §2.8, §4.10).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct SyncKloopMode: u32 {
        /// `NM_OPT_SYNC_KLOOP_DIRECT_TX`.
        const DIRECT_TX = NM_OPT_SYNC_KLOOP_DIRECT_TX;
        /// `NM_OPT_SYNC_KLOOP_DIRECT_RX`.
        const DIRECT_RX = NM_OPT_SYNC_KLOOP_DIRECT_RX;
    }
}

/// Maximum size of body + all option headers + option bodies.
pub const NETMAP_REQ_MAXSIZE: usize = 4096;
/// Size of `nmreq_header.nr_name`.
pub const NETMAP_REQ_IFNAMSIZ: usize = 64;
/// Size of legacy names (`nmreq.nr_name`, `netmap_if.ni_name`, `nm_ifreq.nifr_name`).
pub const IFNAMSIZ: usize = 16;
/// Cache alignment of `netmap_ring.sem`.
pub const NM_CACHE_ALIGN: usize = 128;
/// Prefix of VALE switch names.
pub const NM_BDG_NAME: &str = "vale";
/// Number of port indexes of a VALE switch (0..253).
pub const NM_BDG_MAXPORTS: u32 = 254;
/// "No such port" index returned by VALE_LIST.
pub const NM_BDG_NOPORT: u32 = 255;
/// Size of `nm_ifreq.data`.
pub const NM_IFRDATA_LEN: usize = 256;

/// nm_open flag (userspace only): do not mmap.
pub const NM_OPEN_NO_MMAP: u32 = 0x040000;
/// nm_open flag: use the interface name from the argument.
pub const NM_OPEN_IFNAME: u32 = 0x080000;
/// nm_open flag: use `nr_arg1` from the argument.
pub const NM_OPEN_ARG1: u32 = 0x100000;
/// nm_open flag: use `nr_arg2` from the argument.
pub const NM_OPEN_ARG2: u32 = 0x200000;
/// nm_open flag: use `nr_arg3` from the argument.
pub const NM_OPEN_ARG3: u32 = 0x400000;
/// nm_open flag: use the ring configuration from the argument.
pub const NM_OPEN_RING_CFG: u32 = 0x800000;

/// Linux errno values used by the netmap ABI (spec §11).
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// No such file or directory.
    pub const ENOENT: i32 = 2;
    /// Interrupted system call (a signal ended the sync kernel loop).
    pub const EINTR: i32 = 4;
    /// I/O error.
    pub const EIO: i32 = 5;
    /// No such device or address.
    pub const ENXIO: i32 = 6;
    /// Bad file descriptor (an eventfd of the SYNC_KLOOP_EVENTFDS option).
    pub const EBADF: i32 = 9;
    /// Out of memory.
    pub const ENOMEM: i32 = 12;
    /// Permission denied.
    pub const EACCES: i32 = 13;
    /// Bad address.
    pub const EFAULT: i32 = 14;
    /// Device or resource busy.
    pub const EBUSY: i32 = 16;
    /// File exists.
    pub const EEXIST: i32 = 17;
    /// No such device.
    pub const ENODEV: i32 = 19;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Message too long.
    pub const EMSGSIZE: i32 = 90;
    /// Operation not supported.
    pub const EOPNOTSUPP: i32 = 95;
    /// No buffer space available.
    pub const ENOBUFS: i32 = 105;

    /// FreeBSD's numbers for the errnos above (`sys/errno.h`): 1 to 22 are
    /// the same as Linux's, the others differ. The core works with the
    /// Linux numbers; the FreeBSD module maps at its edge.
    pub mod freebsd {
        /// Linux number, FreeBSD number (only where they differ).
        const DIFFERENT: [(i32, i32); 4] = [
            (super::EMSGSIZE, 40),
            (super::EOPNOTSUPP, 45),
            (super::ENOBUFS, 55),
            // EAGAIN (Linux 11), which the core does not return itself
            // but an OS call may.
            (11, 35),
        ];

        /// The FreeBSD number of the errno that Linux numbers `linux`
        /// (unchanged if the two agree or it is not in the table).
        pub const fn from_linux(linux: i32) -> i32 {
            let mut i = 0;
            while i < DIFFERENT.len() {
                if DIFFERENT[i].0 == linux {
                    return DIFFERENT[i].1;
                }
                i += 1;
            }
            linux
        }

        /// The Linux number of the FreeBSD errno `bsd` (inverse of
        /// [`from_linux`]).
        pub const fn to_linux(bsd: i32) -> i32 {
            let mut i = 0;
            while i < DIFFERENT.len() {
                if DIFFERENT[i].1 == bsd {
                    return DIFFERENT[i].0;
                }
                i += 1;
            }
            bsd
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freebsd_errnos_round_trip() {
        use errno::freebsd::{from_linux, to_linux};
        assert_eq!(from_linux(errno::EOPNOTSUPP), 45);
        assert_eq!(from_linux(errno::EMSGSIZE), 40);
        assert_eq!(from_linux(errno::ENOBUFS), 55);
        assert_eq!(from_linux(errno::EINVAL), 22);
        for e in [1, 2, 5, 6, 12, 13, 14, 16, 17, 19, 22, 90, 95, 105, 11] {
            assert_eq!(to_linux(from_linux(e)), e);
        }
    }

    #[test]
    fn body_sizes_match_spec_table() {
        let table: [(u16, usize); 17] = [
            (0, 0),
            (1, 56),
            (2, 32),
            (3, 64),
            (4, 8),
            (5, 8),
            (6, 8),
            (7, 8),
            (8, 16),
            (9, 0),
            (10, 16),
            (11, 16),
            (12, 64),
            (13, 8),
            (14, 0),
            (15, 0),
            (16, 0),
        ];
        for (t, s) in table {
            assert_eq!(body_size(t), s, "reqtype {t}");
        }
        assert_eq!(body_size(u16::MAX), 0);
    }

    #[test]
    fn option_body_sizes_match_spec_table() {
        assert_eq!(option_body_size(0, 100), 0);
        assert_eq!(option_body_size(NETMAP_REQ_OPT_EXTMEM, 96), 72);
        assert_eq!(
            NMREQ_OPT_EXTMEM_BODY_SIZE,
            size_of::<crate::abi::NmreqOptExtmem>() - NMREQ_OPTION_HDR_SIZE
        );
        assert_eq!(option_body_size(NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS, 0), 0);
        assert_eq!(option_body_size(NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS, 24), 0);
        assert_eq!(option_body_size(NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS, 40), 16);
        assert_eq!(
            option_body_size(NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS, u64::MAX) as u64,
            u64::MAX - 24
        );
        assert_eq!(option_body_size(NETMAP_REQ_OPT_CSB, 0), 16);
        assert_eq!(option_body_size(NETMAP_REQ_OPT_SYNC_KLOOP_MODE, 0), 8);
        assert_eq!(option_body_size(NETMAP_REQ_OPT_OFFSETS, 0), 32);
        assert_eq!(option_body_size(NETMAP_REQ_OPT_MAX, 56), 0);
        assert_eq!(option_body_size(u32::MAX, 56), 0);
    }

    #[test]
    fn reg_mode_round_trip() {
        for v in 0..16 {
            match RegMode::from_raw(v) {
                Some(m) => assert_eq!(m.as_raw(), v),
                None => assert!(v > NR_REG_ONE_SW),
            }
        }
    }

    #[test]
    fn flag_values() {
        assert_eq!(RegFlags::MONITOR_MASK.bits(), 0x700);
        assert_eq!(RegFlags::all().bits(), 0x3ff00);
        assert_eq!(SlotFlags::all().bits(), 0xff7f);
        assert_eq!(ns_rfrags(0x0320), 3);
        assert_eq!(NS_PORT_MASK, 0xff00);
    }
}
