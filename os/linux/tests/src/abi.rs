//! The netmap ABI bits the guest tests need (spec/netmap-abi.md §1–§3).
//!
//! TEMPORARY local definitions: replace with `netmap-uapi` once that crate
//! has them (the offsets are asserted below so a switch is checkable).
#![allow(dead_code)]

pub const NETMAP_API: u16 = 14;

pub const NIOCGINFO: libc::c_ulong = 0xC03C_6991;
pub const NIOCREGIF: libc::c_ulong = 0xC03C_6992;
pub const NIOCTXSYNC: libc::c_ulong = 0x6994;
pub const NIOCRXSYNC: libc::c_ulong = 0x6995;
pub const NIOCCONFIG: libc::c_ulong = 0xC110_6996;
pub const NIOCCTRL: libc::c_ulong = 0xC058_6997;

pub const NETMAP_REQ_REGISTER: u16 = 1;
pub const NETMAP_REQ_PORT_INFO_GET: u16 = 2;

pub const NR_REG_ALL_NIC: u32 = 1;

/// `struct nmreq_header` (88 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NmreqHeader {
    pub nr_version: u16,
    pub nr_reqtype: u16,
    pub nr_reserved: u32,
    pub nr_name: [u8; 64],
    pub nr_options: u64,
    pub nr_body: u64,
}

impl NmreqHeader {
    pub fn new(reqtype: u16, name: &str) -> Self {
        let mut h = Self {
            nr_version: NETMAP_API,
            nr_reqtype: reqtype,
            nr_reserved: 0,
            nr_name: [0; 64],
            nr_options: 0,
            nr_body: 0,
        };
        let n = name.len().min(63);
        h.nr_name[..n].copy_from_slice(&name.as_bytes()[..n]);
        h
    }
}

/// `struct nmreq_register` (56 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NmreqRegister {
    pub nr_offset: u64,
    pub nr_memsize: u64,
    pub nr_tx_slots: u32,
    pub nr_rx_slots: u32,
    pub nr_tx_rings: u16,
    pub nr_rx_rings: u16,
    pub nr_host_tx_rings: u16,
    pub nr_host_rx_rings: u16,
    pub nr_mem_id: u16,
    pub nr_ringid: u16,
    pub nr_mode: u32,
    pub nr_extra_bufs: u32,
    pub pad: u32,
    pub nr_flags: u64,
}

/// Legacy `struct nmreq` (60 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Nmreq {
    pub nr_name: [u8; 16],
    pub nr_version: u32,
    pub nr_offset: u32,
    pub nr_memsize: u32,
    pub nr_tx_slots: u32,
    pub nr_rx_slots: u32,
    pub nr_tx_rings: u16,
    pub nr_rx_rings: u16,
    pub nr_ringid: u16,
    pub nr_cmd: u16,
    pub nr_arg1: u16,
    pub nr_arg2: u16,
    pub nr_arg3: u32,
    pub nr_flags: u32,
    pub spare2: u32,
}

const _: () = {
    assert!(core::mem::size_of::<NmreqHeader>() == 88);
    assert!(core::mem::offset_of!(NmreqHeader, nr_name) == 8);
    assert!(core::mem::offset_of!(NmreqHeader, nr_options) == 72);
    assert!(core::mem::offset_of!(NmreqHeader, nr_body) == 80);
    assert!(core::mem::size_of::<NmreqRegister>() == 56);
    assert!(core::mem::offset_of!(NmreqRegister, nr_mode) == 36);
    assert!(core::mem::offset_of!(NmreqRegister, nr_flags) == 48);
    assert!(core::mem::size_of::<Nmreq>() == 60);
    assert!(core::mem::offset_of!(Nmreq, nr_cmd) == 42);
};
