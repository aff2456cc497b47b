//! Windows: `\\.\netmap` (netmap.sys, `os/windows/`) through `DeviceIoControl`
//! with the control codes of [`crate::winioctl`]: `NIOCCTRL`, the syncs, the
//! wait that stands in for `poll()`, the region mapped into this process by the
//! driver (an MDL), Ctrl-C, CPU pinning.
//!
//! Errors are netmap errno values (spec §11) carried in `io::Error`'s raw code,
//! as on Unix, so [`crate::user::Error`] reads them the same way.

use crate::abi::NmreqHeader;
use crate::consts::body_size;
use crate::consts::errno as e;
use crate::pod::Pod;
use crate::winioctl::*;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use std::io;
use std::os::windows::io::{AsHandle, AsRawHandle, FromRawHandle};
use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_PATH_NOT_FOUND, GetLastError, HANDLE,
    INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{CreateFileW, OPEN_EXISTING};
use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;
use windows_sys::Win32::System::IO::DeviceIoControl;
use windows_sys::Win32::System::Memory::{
    MEM_COMMIT, MEM_RELEASE, MEM_RESERVE, PAGE_READWRITE, VirtualAlloc, VirtualFree,
};
use windows_sys::Win32::System::Threading::{GetCurrentThread, SetThreadAffinityMask};

pub use std::os::windows::io::{
    AsHandle as AsDev, BorrowedHandle as BorrowedDev, OwnedHandle as OwnedDev,
};

/// Path of the netmap control device.
pub const DEVICE_PATH: &str = r"\\.\netmap";

/// What to check when the device cannot be opened.
pub const NOT_LOADED_HINT: &str =
    "netmap driver not installed (netmap.sys: see os/windows/README.md)";

/// The device handle, borrowed.
pub fn borrow(h: &OwnedDev) -> BorrowedDev<'_> {
    h.as_handle()
}

/// The number shown in log lines (the handle value).
pub fn raw_number(h: &OwnedDev) -> i64 {
    h.as_raw_handle() as usize as i64
}

/// A Win32 error as the netmap errno it stands for.
fn errno_of_win32(code: u32) -> i32 {
    match code {
        ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND => e::ENOENT,
        ERROR_ACCESS_DENIED => e::EACCES,
        87 => e::EINVAL, // ERROR_INVALID_PARAMETER
        1 => e::EINVAL,  // ERROR_INVALID_FUNCTION
        8 | 14 => e::ENOMEM,
        6 => 9, // ERROR_INVALID_HANDLE -> EBADF
        _ => e::EIO,
    }
}

fn last_error() -> io::Error {
    // SAFETY: no preconditions.
    io::Error::from_raw_os_error(errno_of_win32(unsafe { GetLastError() }))
}

fn errno(n: i32) -> io::Error {
    io::Error::from_raw_os_error(n)
}

/// The text for a netmap errno (the Win32 texts are for other numbers).
pub fn strerror(n: i32) -> String {
    let t = match n {
        e::EPERM => "Operation not permitted",
        e::ENOENT => "No such file or directory",
        e::EIO => "Input/output error",
        e::ENXIO => "No such device or address",
        e::ENOMEM => "Cannot allocate memory",
        e::EACCES => "Permission denied",
        e::EFAULT => "Bad address",
        e::EBUSY => "Device or resource busy",
        e::EEXIST => "File exists",
        e::ENODEV => "No such device",
        e::EINVAL => "Invalid argument",
        e::EMSGSIZE => "Message too long",
        e::EOPNOTSUPP => "Operation not supported",
        e::ENOBUFS => "No buffer space available",
        4 => "Interrupted system call",
        _ => return format!("error {n}"),
    };
    t.to_string()
}

/// Opens `\\.\netmap` for reading and writing.
pub fn open_device() -> io::Result<OwnedDev> {
    let path: Vec<u16> = DEVICE_PATH.encode_utf16().chain(Some(0)).collect();
    // SAFETY: a NUL-terminated path; no security attributes, no template.
    let h = unsafe {
        CreateFileW(
            path.as_ptr(),
            0xC000_0000, // GENERIC_READ | GENERIC_WRITE
            0,
            core::ptr::null(),
            OPEN_EXISTING,
            0,
            core::ptr::null_mut(),
        )
    };
    if h == INVALID_HANDLE_VALUE || h.is_null() {
        return Err(last_error());
    }
    // SAFETY: a fresh handle we own.
    Ok(unsafe { OwnedDev::from_raw_handle(h) })
}

/// `DeviceIoControl(h, code, block, block)`: the block is copied in and out.
fn control<T: Pod>(h: BorrowedDev<'_>, code: u32, block: &mut T) -> io::Result<()> {
    let mut got = 0u32;
    let p = core::ptr::from_mut(block).cast::<core::ffi::c_void>();
    let n = size_of::<T>() as u32;
    // SAFETY: `block` is a live exclusive buffer of n bytes used as input and
    // output; synchronous I/O (no OVERLAPPED).
    let ok = unsafe {
        DeviceIoControl(
            h.as_raw_handle() as HANDLE,
            code,
            p,
            n,
            p,
            n,
            &mut got,
            core::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(last_error());
    }
    if got != n {
        return Err(errno(e::EIO));
    }
    Ok(())
}

/// One `NmWinIo` request; the driver's errno becomes the error.
fn io_request(h: BorrowedDev<'_>, code: u32, arg: u64) -> io::Result<NmWinIo> {
    let mut io = NmWinIo {
        arg,
        ..Default::default()
    };
    control(h, code, &mut io)?;
    if io.error != 0 {
        return Err(errno(io.error));
    }
    Ok(io)
}

/// `NIOCCTRL` with `body` as the request body (see the Unix backend).
pub fn ctrl(h: BorrowedDev<'_>, hdr: &mut NmreqHeader, body: &mut [u8]) -> io::Result<()> {
    let need = body_size(hdr.nr_reqtype);
    if body.len() < need {
        return Err(errno(e::EINVAL));
    }
    hdr.nr_body = if need == 0 {
        0
    } else {
        body.as_mut_ptr() as usize as u64
    };
    hdr.nr_options = 0;
    // The driver reads and writes the header and the body at these addresses
    // of this process while the call runs (both exclusively borrowed).
    io_request(h, NM_IOCTL_CTRL, core::ptr::from_mut(hdr) as usize as u64).map(drop)
}

/// [`ctrl`] with the option list `opts` (see the Unix backend).
pub fn ctrl_with(
    h: BorrowedDev<'_>,
    hdr: &mut NmreqHeader,
    body: &mut [u8],
    opts: &mut super::OptionList,
) -> io::Result<()> {
    let need = body_size(hdr.nr_reqtype);
    if body.len() < need {
        return Err(errno(e::EINVAL));
    }
    hdr.nr_body = if need == 0 {
        0
    } else {
        body.as_mut_ptr() as usize as u64
    };
    hdr.nr_options = opts.link();
    // The driver reads and writes the header, the body and the options (each
    // in its own exclusively borrowed storage) while the call runs.
    io_request(h, NM_IOCTL_CTRL, core::ptr::from_mut(hdr) as usize as u64).map(drop)
}

/// Eventfds do not exist on Windows: CSB mode works without them (the sync
/// kernel loop then pauses between passes).
#[derive(Debug)]
pub enum EventFd {}

/// No eventfds on Windows.
pub fn eventfd() -> io::Result<EventFd> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// (Never called: no eventfd exists.)
pub fn eventfd_number(e: &EventFd) -> i32 {
    match *e {}
}

/// (Never called: no eventfd exists.)
pub fn eventfd_pollfd(e: &EventFd) -> PollFd<'_> {
    match *e {}
}

/// (Never called: no eventfd exists.)
pub fn eventfd_write(e: &EventFd, _n: u64) -> io::Result<()> {
    match *e {}
}

/// (Never called: no eventfd exists.)
pub fn eventfd_read(e: &EventFd) -> io::Result<u64> {
    match *e {}
}

/// Memory of a file for an EXTMEM region: not supported on Windows yet.
pub fn map_file(_f: &std::fs::File, _len: usize) -> io::Result<super::Mapping> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// `NIOCTXSYNC` (`tx = true`) or `NIOCRXSYNC`.
pub fn sync(h: BorrowedDev<'_>, tx: bool) -> io::Result<()> {
    io_request(h, if tx { NM_IOCTL_TXSYNC } else { NM_IOCTL_RXSYNC }, 0).map(drop)
}

bitflags::bitflags! {
    /// `poll()` event bits (the Unix values, which the driver uses).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct PollFlags: i16 {
        /// `POLLIN`: received packets available.
        const IN = 0x1;
        /// `POLLOUT`: free TX slots available.
        const OUT = 0x4;
        /// `POLLERR`: the port is not usable (or a ring was reinitialized).
        const ERR = 0x8;
        /// `POLLHUP`.
        const HUP = 0x10;
        /// `POLLNVAL`: not a netmap handle.
        const NVAL = 0x20;
    }
}

/// One entry of a wait set, borrowing the handle.
#[derive(Clone, Copy, Debug)]
pub struct PollFd<'h> {
    handle: BorrowedDev<'h>,
    events: PollFlags,
    revents: PollFlags,
}

impl<'h> PollFd<'h> {
    /// An entry waiting for `events` on `h`.
    pub fn new(handle: BorrowedDev<'h>, events: PollFlags) -> Self {
        Self {
            handle,
            events,
            revents: PollFlags::empty(),
        }
    }

    /// Requested events.
    pub fn events(&self) -> PollFlags {
        self.events
    }

    /// Changes the requested events (and clears the returned ones).
    pub fn set_events(&mut self, events: PollFlags) {
        self.events = events;
        self.revents = PollFlags::empty();
    }

    /// Returned events.
    pub fn revents(&self) -> PollFlags {
        self.revents
    }
}

/// `NM_IOCTL_WAIT` over up to 8 handles: the number of entries with events.
pub fn poll(fds: &mut [PollFd<'_>], timeout_ms: i32) -> io::Result<usize> {
    if fds.is_empty() || fds.len() > NM_WAIT_MAX {
        return Err(errno(e::EINVAL));
    }
    let mut w = NmWinWait {
        timeout_ms,
        count: fds.len() as u32,
        ..Default::default()
    };
    for (d, f) in w.fds.iter_mut().zip(fds.iter()) {
        d.handle = f.handle.as_raw_handle() as usize as u64;
        d.events = f.events.bits() as u16;
    }
    control(fds[0].handle, NM_IOCTL_WAIT, &mut w)?;
    if w.error != 0 {
        return Err(errno(w.error));
    }
    for (f, d) in fds.iter_mut().zip(w.fds.iter()) {
        f.revents = PollFlags::from_bits_retain(d.revents as i16);
    }
    Ok(w.nready as usize)
}

/// How a mapping is undone: the driver's (a duplicate of the port's handle,
/// so that the region stays mapped whichever port closes first), or
/// `VirtualFree` for an anonymous one.
#[derive(Debug)]
pub struct MapOs(Option<OwnedDev>);

/// The bound port's region mapped by the driver (`NM_IOCTL_MAP`), or an
/// anonymous zero-filled region (`VirtualAlloc`) when `h` is `None`.
pub(super) fn mmap(h: Option<BorrowedDev<'_>>, len: usize) -> io::Result<(NonNull<u8>, MapOs)> {
    if len == 0 {
        return Err(errno(e::EINVAL));
    }
    let Some(h) = h else {
        // SAFETY: a fresh reservation chosen by the system.
        let p = unsafe {
            VirtualAlloc(
                core::ptr::null(),
                len,
                MEM_COMMIT | MEM_RESERVE,
                PAGE_READWRITE,
            )
        };
        return NonNull::new(p.cast::<u8>())
            .map(|p| (p, MapOs(None)))
            .ok_or_else(last_error);
    };
    let own = h.try_clone_to_owned()?;
    let io = io_request(borrow(&own), NM_IOCTL_MAP, 0)?;
    let (addr, size) = (io.value[0], io.value[1]);
    let p = NonNull::new(addr as usize as *mut u8).ok_or_else(|| errno(e::EIO))?;
    if (size as usize) < len {
        let _ = io_request(borrow(&own), NM_IOCTL_UNMAP, 0);
        return Err(errno(e::EINVAL));
    }
    Ok((p, MapOs(Some(own))))
}

/// Undoes [`mmap`].
pub(super) fn munmap(ptr: NonNull<u8>, _len: usize, os: &mut MapOs) {
    match os.0.take() {
        // Failure cannot be handled in `drop`; closing the handle unmaps too.
        Some(h) => drop(io_request(borrow(&h), NM_IOCTL_UNMAP, 0)),
        // SAFETY: a region from VirtualAlloc owned by the Mapping being dropped.
        None => drop(unsafe { VirtualFree(ptr.as_ptr().cast(), 0, MEM_RELEASE) }),
    }
}

static CTRL_C_SEEN: AtomicBool = AtomicBool::new(false);

unsafe extern "system" fn on_ctrl(kind: u32) -> i32 {
    // CTRL_C_EVENT (0) and CTRL_BREAK_EVENT (1): recorded once; a second one
    // ends the program (the default handler), as a second ^C does on Unix.
    if kind <= 1 && !CTRL_C_SEEN.swap(true, Ordering::SeqCst) {
        return 1;
    }
    0
}

/// Records Ctrl-C (see [`sigint_received`]).
pub fn catch_sigint() -> io::Result<()> {
    // SAFETY: a static handler that only touches an atomic.
    if unsafe { SetConsoleCtrlHandler(Some(on_ctrl), 1) } == 0 {
        return Err(last_error());
    }
    Ok(())
}

/// Whether Ctrl-C arrived since [`catch_sigint`].
pub fn sigint_received() -> bool {
    CTRL_C_SEEN.load(Ordering::SeqCst)
}

/// Pins the calling thread to CPU `cpu` (processor group 0).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= usize::BITS as usize {
        return Err(errno(e::EINVAL));
    }
    // SAFETY: no arguments; returns the calling thread's pseudo-handle.
    let me = unsafe { GetCurrentThread() };
    // SAFETY: `me` is the pseudo-handle of the calling thread.
    if unsafe { SetThreadAffinityMask(me, 1 << cpu) } == 0 {
        return Err(last_error());
    }
    Ok(())
}
