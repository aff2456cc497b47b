//! TEMPORARY stand-in for netmap-core's API (core/src/platform.rs and
//! `Netmap`), with the shape announced by the lead, until the real core
//! compiles. It knows only the request-independent error cases (unknown
//! ioctl, bad NIOCCTRL version, sync/mmap on an unbound file). Delete this
//! file and switch `nmcore` in lib.rs to `netmap_core` when the core lands.
#![allow(dead_code)]

use alloc::boxed::Box;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// A positive errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const ENXIO: Errno = Errno(6);
    pub const ENOMEM: Errno = Errno(12);
    pub const EFAULT: Errno = Errno(14);
    pub const EINVAL: Errno = Errno(22);
    pub const EOPNOTSUPP: Errno = Errno(95);
}

#[derive(Clone, Copy, Debug)]
pub struct Fault;

#[derive(Clone, Copy, Debug)]
pub enum LogLevel {
    Error,
    Warning,
    Info,
    Debug,
}

pub trait Platform: Sized + Send + Sync + 'static {
    type SpinLock: RawLock;
    type Mutex: RawLock;
    type WaitQueue: WaitQueue;
    fn alloc_cluster(&self, size: usize) -> Option<NonNull<u8>>;
    /// # Safety
    /// ptr/size from alloc_cluster, not used afterwards.
    unsafe fn free_cluster(&self, ptr: NonNull<u8>, size: usize);
    fn copy_from_user(&self, dst: &mut [u8], src: u64) -> Result<(), Fault>;
    fn copy_to_user(&self, dst: u64, src: &[u8]) -> Result<(), Fault>;
    fn now(&self) -> (i64, i64);
    fn log(&self, level: LogLevel, args: core::fmt::Arguments<'_>);
}

/// # Safety
/// lock()/unlock() must provide mutual exclusion with acquire/release ordering.
pub unsafe trait RawLock: Send + Sync + Sized {
    fn new() -> Option<Self>;
    fn lock(&self);
    /// # Safety
    /// Held by the caller.
    unsafe fn unlock(&self);
}

pub trait WaitQueue: Send + Sync + Sized {
    fn new() -> Option<Self>;
    fn wake_all(&self);
}

/// Module parameters (the subset the placeholder keeps).
#[derive(Debug, Default)]
pub struct Params {
    pub verbose: AtomicI32,
    pub no_timestamp: AtomicI32,
    pub fwd: AtomicI32,
    pub bridge_batch: AtomicI32,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct MemStats {
    pub privs: u64,
}

pub struct Netmap<P: Platform> {
    platform: P,
    params: Params,
    privs: AtomicU64,
}

pub struct NetmapPriv<P: Platform> {
    _p: PhantomData<P>,
}

const NIOCGINFO: u32 = 0xC03C_6991;
const NIOCREGIF: u32 = 0xC03C_6992;
const NIOCTXSYNC: u32 = 0x6994;
const NIOCRXSYNC: u32 = 0x6995;
const NIOCCONFIG: u32 = 0xC110_6996;
const NIOCCTRL: u32 = 0xC058_6997;
const POLLERR: u32 = 0x8;

impl<P: Platform> Netmap<P> {
    pub fn new(platform: P, params: Params) -> Result<Box<Self>, Errno> {
        Ok(Box::new(Self {
            platform,
            params,
            privs: AtomicU64::new(0),
        }))
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn open(&self) -> Result<Box<NetmapPriv<P>>, Errno> {
        self.privs.fetch_add(1, Ordering::Relaxed);
        Ok(Box::new(NetmapPriv { _p: PhantomData }))
    }

    pub fn release(&self, np: Box<NetmapPriv<P>>) {
        drop(np);
        self.privs.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn ioctl(&self, _np: &NetmapPriv<P>, cmd: u32, arg: u64) -> Result<(), Errno> {
        match cmd {
            NIOCCTRL => {
                if arg == 0 {
                    return Err(Errno::EINVAL);
                }
                let mut hdr = [0u8; 88];
                self.platform
                    .copy_from_user(&mut hdr, arg)
                    .map_err(|_| Errno::EFAULT)?;
                let version = u16::from_ne_bytes([hdr[0], hdr[1]]);
                let r = if !(14..=15).contains(&version) {
                    Err(Errno::EINVAL)
                } else {
                    Err(Errno::EOPNOTSUPP)
                };
                self.platform
                    .copy_to_user(arg, &hdr)
                    .map_err(|_| Errno::EFAULT)?;
                r
            }
            NIOCREGIF | NIOCGINFO => {
                if arg == 0 {
                    return Err(Errno::EINVAL);
                }
                let mut req = [0u8; 60];
                self.platform
                    .copy_from_user(&mut req, arg)
                    .map_err(|_| Errno::EFAULT)?;
                let version = u32::from_ne_bytes([req[16], req[17], req[18], req[19]]);
                if version < 14 {
                    Err(Errno::EINVAL)
                } else {
                    Err(Errno::EOPNOTSUPP)
                }
            }
            NIOCCONFIG => Err(Errno::EINVAL),
            NIOCTXSYNC | NIOCRXSYNC => Err(Errno::ENXIO),
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    pub fn poll(
        &self,
        _np: &NetmapPriv<P>,
        _events: u32,
        _wait: &mut dyn FnMut(&P::WaitQueue),
    ) -> u32 {
        POLLERR
    }

    pub fn mmap_check(&self, _np: &NetmapPriv<P>, _offset: u64, _len: u64) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }

    pub fn mmap_page(&self, _np: &NetmapPriv<P>, _offset: u64) -> Option<NonNull<u8>> {
        None
    }

    pub fn stats(&self) -> MemStats {
        MemStats {
            privs: self.privs.load(Ordering::Relaxed),
        }
    }
}
