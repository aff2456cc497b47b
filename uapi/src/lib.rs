//! The netmap userspace ABI, API version 14.
//!
//! `netmap-uapi` is the contract between netmap programs (pkt-gen, vale-ctl, bridge,
//! libnetmap clients built against the reference headers) and this project's kernel
//! modules, written down as Rust types (see `spec/netmap-abi.md`):
//!
//! * [`abi`]: the `#[repr(C)]` structures (`NetmapRing`, `NmreqHeader`,
//!   `NmreqRegister`, the options, the legacy `Nmreq`, ...) with compile-time checks
//!   of every size, alignment and field offset;
//! * [`consts`]: request/option types, register modes and flags, slot and ring flags,
//!   limits, errno values; typed views (`RegFlags`, `SlotFlags`, `RingFlags`,
//!   `RegMode`) and the body-size tables used by the request copy-in;
//! * [`ioctl`]: the ioctl numbers (Linux encoding, and FreeBSD in [`ioctl::bsd`]);
//! * [`pod`]: safe byte views of the structures ([`pod::Pod`]), the only `unsafe`
//!   code of the crate;
//! * [`ring`]: the userspace ring index helpers (`nm_ring_next`, `nm_ring_space`, ...);
//! * [`portname`]: port-name parsers, both the kernel's interpretation of `nr_name`
//!   and the libnetmap / `nm_open` port-spec grammars.
//!
//! The crate is `no_std` without allocation; the `std` feature (default) only adds
//! `std::error::Error` implementations.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![warn(missing_docs)]

pub mod abi;
pub mod consts;
pub mod ioctl;
pub mod pod;
pub mod portname;
pub mod ring;

pub use abi::*;
pub use consts::*;
pub use ioctl::{NIOCCONFIG, NIOCCTRL, NIOCGINFO, NIOCREGIF, NIOCRXSYNC, NIOCTXSYNC};
pub use pod::Pod;
pub use ring::*;
