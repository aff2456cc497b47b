//! A safe userspace API for netmap (the role of libnetmap's `nmport_*` functions):
//! open ports with the `nmport_open` grammar, access rings and buffers without raw
//! pointers, sync and poll, and send control requests.
//!
//! * [`Port`] / [`PortBuilder`]: `/dev/netmap` + REGISTER + `mmap` (one mapping
//!   per memory region per process, shared between ports with the same mem id),
//!   ring views ([`TxRing`], [`RxRing`]; per-frame loops take a batch of slots
//!   with [`Ring::slots`], checked once), [`Port::sync_tx`], [`Port::sync_rx`],
//!   [`Port::poll`], extra buffers, per-ring clones ([`Port::clone_with`]).
//! * CSB mode and the sync kernel loop ([`Port::enable_csb`], [`Port::sync_kloop`],
//!   [`KloopConfig`]).
//! * [`Netmap`]: control requests on an unbound descriptor (VALE attach/detach/
//!   list/newif/delif, port and pool info, virtio-net header length, polling).
//! * [`poll`] / [`PollFd`]: `poll()` over several ports.
//! * [`testing::FakeRegion`]: an in-memory region with a simulated kernel side, for
//!   tests without the kernel module.
//! * [`os`]: small process helpers the tools need (SIGINT flag, CPU pinning).
//!
//! ```no_run
//! use netmap_uapi::user::{Port, PollFlags};
//!
//! // Echo every packet received on vale0:a back to the switch.
//! let port = Port::open("vale0:a")?;
//! loop {
//!     port.poll(PollFlags::IN, None)?;
//!     let mut rx = port.rx_ring(0);
//!     let mut tx = port.tx_ring(0);
//!     while let Some(pkt) = rx.recv() {
//!         if tx.send(pkt.data()).is_err() {
//!             pkt.keep();
//!             break;
//!         }
//!     }
//!     drop((rx, tx));
//!     port.sync_tx()?;
//! }
//! # Ok::<(), netmap_uapi::user::Error>(())
//! ```
//!
//! All `unsafe` code (system calls and raw access to the mapped memory) is in the
//! private `sys` module; two functions elsewhere hand out writable slices of
//! buffers that the ring protocol gives to userspace, each with its justification.
//! The module exists on Linux (tested), FreeBSD (built and checked as FreeBSD
//! executables by `cargo xtask examples --target freebsd`, never run) and Windows;
//! what differs (ioctl encoding, CPU pinning, the device) is in one file per OS
//! under `sys`.

#![cfg(any(target_os = "linux", target_os = "freebsd", windows))]
#![deny(unsafe_code)]

mod csb;
mod ctrl;
mod error;
mod port;
mod region;
mod ring;
#[allow(unsafe_code)]
mod sys;
pub mod testing;

pub use csb::KloopConfig;
pub use ctrl::{Netmap, PollingMode, RingConfig, ValePort};
pub use error::{Error, Op, Result, describe_errno, errno_name};
pub use port::{Port, PortBuilder, poll};
pub use ring::{
    ExtraBuf, Ring, Rx, RxPacket, RxRing, SendError, SlotError, SlotMut, Slots, Tx, TxRing,
};
pub use sys::{BorrowedDev, DEVICE_PATH, PollFd, PollFlags};

/// Process helpers used by the netmap tools.
pub mod os {
    pub use super::sys::{catch_sigint, pin_current_thread, sigint_received};
}

#[cfg(test)]
mod tests;
