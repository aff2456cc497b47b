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
//!   [`winioctl`]: the Windows control codes of `\\.\netmap` and their request blocks;
//! * [`pod`]: safe byte views of the structures ([`pod::Pod`]), the only `unsafe`
//!   code of the crate;
//! * [`ring`]: the userspace ring index helpers (`nm_ring_next`, `nm_ring_space`, ...);
//! * [`portname`]: port-name parsers, both the kernel's interpretation of `nr_name`
//!   and the libnetmap / `nm_open` port-spec grammars.
//!
//! ```
//! use netmap_uapi::portname::{KernelPort, PortSpec, classify};
//! use netmap_uapi::{NIOCCTRL, NmreqHeader, NETMAP_REQ_REGISTER, Pod, RegMode};
//!
//! // What libnetmap makes of a port spec...
//! let spec = PortSpec::parse("netmap:pipe{in-7/x").unwrap();
//! assert_eq!(spec.nr_name, "pipe{in");
//! assert_eq!((spec.mode, spec.ringid), (RegMode::OneNic, 7));
//! let hdr = NmreqHeader::new(NETMAP_REQ_REGISTER, spec.nr_name.as_bytes());
//! let body = spec.register_body();
//! assert_eq!(hdr.as_bytes().len(), 88);
//! assert_eq!(NIOCCTRL, 0xC058_6997);
//!
//! // ...and what the kernel makes of the resulting request.
//! let port = classify(&hdr.nr_name, body.nr_mode, body.nr_flags, true).unwrap();
//! assert!(matches!(port, KernelPort::Pipe { .. }));
//! ```
//!
//! The crate is `no_std` without allocation; the `std` feature (default) only adds
//! `std::error::Error` implementations.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod abi;
pub mod consts;
pub mod ioctl;
#[allow(unsafe_code)]
pub mod pod;
pub mod portname;
pub mod ring;
#[cfg(feature = "std")]
pub mod user;
pub mod winioctl;

pub use abi::*;
pub use consts::*;
pub use ioctl::{NIOCCONFIG, NIOCCTRL, NIOCGINFO, NIOCREGIF, NIOCRXSYNC, NIOCTXSYNC};
pub use pod::Pod;
pub use ring::*;
