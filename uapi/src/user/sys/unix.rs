//! Unix system calls common to Linux and FreeBSD: `/dev/netmap`, `ioctl`, `mmap`,
//! `poll`, `SIGINT`. What differs per OS (the ioctl encoding, CPU pinning) is in
//! the OS's own module (`linux.rs`, `freebsd.rs`), reached here as `os`.

use super::OptionList;
use super::os::{NIOCCTRL, NIOCRXSYNC, NIOCTXSYNC};
use crate::abi::NmreqHeader;
use crate::consts::{NETMAP_DEVICE_NAME, body_size};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Path of the netmap control device.
pub const DEVICE_PATH: &str = NETMAP_DEVICE_NAME;

/// What to check when the device cannot be opened.
pub const NOT_LOADED_HINT: &str = "is the netmap module loaded?";

pub use std::os::fd::{AsFd as AsDev, BorrowedFd as BorrowedDev, OwnedFd as OwnedDev};

/// Nothing to keep for `munmap`.
pub type MapOs = ();

/// The device descriptor, borrowed.
pub fn borrow(fd: &OwnedFd) -> BorrowedFd<'_> {
    fd.as_fd()
}

/// The number shown in log lines (the fd).
pub fn raw_number(fd: &OwnedFd) -> i64 {
    i64::from(fd.as_raw_fd())
}

/// Opens `/dev/netmap` read/write (close-on-exec).
pub fn open_device() -> io::Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(DEVICE_PATH)?;
    Ok(OwnedFd::from(f))
}

pub(super) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `ioctl(fd, NIOCCTRL, hdr)` with `body` as the request body.
///
/// `hdr.nr_body` is set to `body` (or 0 when the request type has no body) and
/// `hdr.nr_options` to 0; `body` must hold at least the body size of
/// `hdr.nr_reqtype` (spec §2.1), else `EINVAL` is returned without a system call.
/// The kernel writes the header back (also on error) and the body on success.
pub fn ctrl(fd: BorrowedFd<'_>, hdr: &mut NmreqHeader, body: &mut [u8]) -> io::Result<()> {
    let need = body_size(hdr.nr_reqtype);
    if body.len() < need {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    hdr.nr_body = if need == 0 {
        0
    } else {
        body.as_mut_ptr() as usize as u64
    };
    hdr.nr_options = 0;
    let p: *mut NmreqHeader = hdr;
    // SAFETY: NIOCCTRL reads and writes the 88-byte header at `p` (a live `&mut`),
    // then reads/writes `body_size(nr_reqtype)` bytes at `nr_body`, which points to
    // `body`, at least that long and exclusively borrowed for the call; there are no
    // options (`nr_options = 0`).
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), NIOCCTRL as _, p) };
    cvt(ret).map(drop)
}

/// [`ctrl`] with the option list `opts` (linked here, in order). The kernel
/// writes each option's header back (its status) and, on success, the bodies of
/// the options it consumed.
pub fn ctrl_with(
    fd: BorrowedFd<'_>,
    hdr: &mut NmreqHeader,
    body: &mut [u8],
    opts: &mut OptionList,
) -> io::Result<()> {
    let need = body_size(hdr.nr_reqtype);
    if body.len() < need {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let next = opts.link();
    hdr.nr_body = if need == 0 {
        0
    } else {
        body.as_mut_ptr() as usize as u64
    };
    hdr.nr_options = next;
    let p: *mut NmreqHeader = hdr;
    // SAFETY: as in `ctrl` for the header and the body; the kernel follows
    // `nr_options` through the chain linked above, which ends with 0 and only
    // points to the options' storage (exclusively borrowed through `opts`), and
    // accesses in each at most the header plus the body size of its type, which
    // `OptionList::push` made sure fits.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), NIOCCTRL as _, p) };
    cvt(ret).map(drop)
}

/// An eventfd of this process (CSB mode's ioeventfds and irqfds).
pub type EventFd = OwnedFd;

/// A new eventfd (counter 0, non-blocking, close-on-exec).
#[cfg(target_os = "linux")]
pub fn eventfd() -> io::Result<EventFd> {
    // SAFETY: no pointer arguments; the result is a fresh descriptor we own.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// A new eventfd (not available on this OS).
#[cfg(not(target_os = "linux"))]
pub fn eventfd() -> io::Result<EventFd> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// The descriptor number of an eventfd (what the kloop options carry).
pub fn eventfd_number(e: &EventFd) -> i32 {
    e.as_raw_fd()
}

/// A `poll()` entry waiting for `e` to be readable (signalled).
pub fn eventfd_pollfd(e: &EventFd) -> PollFd<'_> {
    PollFd::new(e.as_fd(), PollFlags::IN)
}

/// Adds `n` to an eventfd's counter.
pub fn eventfd_write(e: &EventFd, n: u64) -> io::Result<()> {
    let b = n.to_ne_bytes();
    // SAFETY: writes 8 bytes from a valid buffer to an open descriptor.
    let r = unsafe { libc::write(e.as_raw_fd(), b.as_ptr().cast(), 8) };
    if r == 8 {
        Ok(())
    } else if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Err(io::Error::from(io::ErrorKind::WriteZero))
    }
}

/// Reads (and resets) an eventfd's counter; 0 if it is 0 (non-blocking fd).
pub fn eventfd_read(e: &EventFd) -> io::Result<u64> {
    let mut b = [0u8; 8];
    // SAFETY: reads at most 8 bytes into a valid buffer from an open descriptor.
    let r = unsafe { libc::read(e.as_raw_fd(), b.as_mut_ptr().cast(), 8) };
    if r == 8 {
        Ok(u64::from_ne_bytes(b))
    } else if r < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::WouldBlock {
            Ok(0)
        } else {
            Err(err)
        }
    } else {
        Err(io::Error::from(io::ErrorKind::UnexpectedEof))
    }
}

/// Maps the file `f` (`len` bytes, shared, read/write): memory of this
/// process to give to the kernel as a region (EXTMEM).
pub fn map_file(f: &std::fs::File, len: usize) -> io::Result<super::Mapping> {
    super::Mapping::map_shared(f.as_fd(), len)
}

/// `ioctl(fd, NIOCTXSYNC)` (`tx = true`) or `ioctl(fd, NIOCRXSYNC)`.
pub fn sync(fd: BorrowedFd<'_>, tx: bool) -> io::Result<()> {
    let cmd = if tx { NIOCTXSYNC } else { NIOCRXSYNC };
    // SAFETY: the sync ioctls take no argument; a null pointer is what the reference
    // passes. The fd is borrowed, hence open.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), cmd as _, core::ptr::null_mut::<u8>()) };
    cvt(ret).map(drop)
}

bitflags::bitflags! {
    /// `poll()` event bits.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct PollFlags: i16 {
        /// `POLLIN`: received packets available.
        const IN = libc::POLLIN;
        /// `POLLOUT`: free TX slots available.
        const OUT = libc::POLLOUT;
        /// `POLLERR`: the port is not usable (or a ring was reinitialized).
        const ERR = libc::POLLERR;
        /// `POLLHUP`.
        const HUP = libc::POLLHUP;
        /// `POLLNVAL`: not an open descriptor.
        const NVAL = libc::POLLNVAL;
    }
}

/// One entry of a `poll()` set (`struct pollfd`), borrowing the descriptor.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct PollFd<'fd> {
    pfd: libc::pollfd,
    _fd: core::marker::PhantomData<BorrowedFd<'fd>>,
}

impl core::fmt::Debug for PollFd<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PollFd")
            .field("fd", &self.pfd.fd)
            .field("events", &self.events())
            .field("revents", &self.revents())
            .finish()
    }
}

impl<'fd> PollFd<'fd> {
    /// An entry waiting for `events` on `fd`.
    pub fn new(fd: BorrowedFd<'fd>, events: PollFlags) -> Self {
        Self {
            pfd: libc::pollfd {
                fd: fd.as_raw_fd(),
                events: events.bits(),
                revents: 0,
            },
            _fd: core::marker::PhantomData,
        }
    }

    /// Requested events.
    pub fn events(&self) -> PollFlags {
        PollFlags::from_bits_retain(self.pfd.events)
    }

    /// Changes the requested events (and clears the returned ones).
    pub fn set_events(&mut self, events: PollFlags) {
        self.pfd.events = events.bits();
        self.pfd.revents = 0;
    }

    /// Returned events.
    pub fn revents(&self) -> PollFlags {
        PollFlags::from_bits_retain(self.pfd.revents)
    }
}

/// `poll(fds, timeout_ms)`: the number of entries with events.
pub fn poll(fds: &mut [PollFd<'_>], timeout_ms: i32) -> io::Result<usize> {
    let n = libc::nfds_t::try_from(fds.len())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let p = fds.as_mut_ptr().cast::<libc::pollfd>();
    // SAFETY: `PollFd` is `repr(transparent)` over `pollfd`, so `p` points to `n`
    // valid, exclusively borrowed `pollfd`s; their fds are borrowed (open).
    let ret = unsafe { libc::poll(p, n, timeout_ms) };
    cvt(ret).map(|r| r as usize)
}

/// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)`, or an anonymous
/// private zero-filled mapping when `fd` is `None`.
pub(super) fn mmap(fd: Option<BorrowedFd<'_>>, len: usize) -> io::Result<(NonNull<u8>, MapOs)> {
    if len == 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let (flags, raw) = match fd {
        Some(fd) => (libc::MAP_SHARED, fd.as_raw_fd()),
        None => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1),
    };
    // SAFETY: a fresh mapping chosen by the kernel (`addr = NULL`) cannot alias any
    // existing Rust object; the arguments are plain values.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            raw,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast::<u8>())
        .map(|p| (p, ()))
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
}

/// `munmap(ptr, len)` of a mapping made by [`mmap`].
pub(super) fn munmap(ptr: NonNull<u8>, len: usize, _os: &mut MapOs) {
    // SAFETY: `ptr`/`len` describe a mapping created by `mmap` and owned by the
    // `Mapping` being dropped, so no reference into it outlives this call.
    // Failure cannot be handled meaningfully in `drop` and is ignored.
    let _ = unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
}

static SIGINT_SEEN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_sig: libc::c_int) {
    SIGINT_SEEN.store(true, Ordering::SeqCst);
    // A second ^C kills the program, as in the reference tools.
    // SAFETY: `signal` is async-signal-safe; SIG_DFL is a valid disposition.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
}

/// Installs a `SIGINT` handler that only records the signal (see
/// [`sigint_received`]); the handler then restores the default action so that a
/// second `SIGINT` terminates the process.
pub fn catch_sigint() -> io::Result<()> {
    let handler: extern "C" fn(libc::c_int) = on_sigint;
    // SAFETY: the handler only touches an atomic and calls the async-signal-safe
    // `signal`; installing it has no other effect on Rust state.
    let old = unsafe { libc::signal(libc::SIGINT, handler as libc::sighandler_t) };
    if old == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `SIGINT` arrived since [`catch_sigint`].
pub fn sigint_received() -> bool {
    SIGINT_SEEN.load(Ordering::SeqCst)
}

/// The C library's text for `errno`.
pub fn strerror(errno: i32) -> String {
    io::Error::from_raw_os_error(errno).to_string()
}
