//! [`Port`]: a file descriptor bound to netmap rings, with its mapped memory.

use super::ctrl::Netmap;
use super::error::{Error, Op, Result};
use super::region::Region;
use super::ring::{ExtraBuf, RxRing, TxRing};
use super::sys::{self, Mapping, OptionList, PollFd, PollFlags};
use crate::abi::{NmreqHeader, NmreqRegister};
use crate::consts::{
    NETMAP_REQ_OPT_EXTMEM, NETMAP_REQ_OPT_OFFSETS, NETMAP_REQ_REGISTER, RegFlags, RegMode,
};
use crate::pod::Pod;
use crate::portname::{Name, ParseOptions, PortSpec};
use core::ops::Range;
#[cfg(unix)]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// Mappings of this process by mem id: each region is mapped once and shared by all
/// ports that use it (like libnetmap's `nmport_mmap`).
static MAPPINGS: Mutex<Vec<(u16, usize, Weak<Mapping>)>> = Mutex::new(Vec::new());

fn map_region(
    fd: sys::BorrowedDev<'_>,
    mem_id: u16,
    memsize: usize,
) -> std::io::Result<Arc<Mapping>> {
    let mut maps = MAPPINGS.lock().unwrap_or_else(|p| p.into_inner());
    maps.retain(|(_, _, w)| w.strong_count() > 0);
    if let Some(m) = maps
        .iter()
        .filter(|(id, size, _)| *id == mem_id && *size == memsize)
        .find_map(|(_, _, w)| w.upgrade())
    {
        return Ok(m);
    }
    let m = Arc::new(Mapping::map_shared(fd, memsize)?);
    maps.push((mem_id, memsize, Arc::downgrade(&m)));
    Ok(m)
}

/// Options for opening a port; values set here override those of the port spec
/// (`@conf`, `@N`), as a program that edits `nmport_d.reg` before
/// `nmport_open_desc` does.
///
/// ```no_run
/// use netmap_uapi::user::Port;
/// use netmap_uapi::RegFlags;
///
/// let port = Port::builder("vale0:a")
///     .slots(2048)
///     .extra_bufs(128)
///     .flags(RegFlags::EXCLUSIVE)
///     .open()?;
/// println!("{} extra buffers", port.extra_buf_count());
/// # Ok::<(), netmap_uapi::user::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct PortBuilder<'s> {
    spec: &'s str,
    tx_slots: Option<u32>,
    rx_slots: Option<u32>,
    tx_rings: Option<u16>,
    rx_rings: Option<u16>,
    host_tx_rings: Option<u16>,
    host_rx_rings: Option<u16>,
    extra_bufs: u32,
    mem_id: Option<u16>,
    flags: RegFlags,
    mode: Option<(RegMode, u16)>,
    extmem: Option<&'s str>,
}

impl<'s> PortBuilder<'s> {
    fn new(spec: &'s str) -> Self {
        Self {
            spec,
            tx_slots: None,
            rx_slots: None,
            tx_rings: None,
            rx_rings: None,
            host_tx_rings: None,
            host_rx_rings: None,
            extra_bufs: 0,
            mem_id: None,
            flags: RegFlags::empty(),
            mode: None,
            extmem: None,
        }
    }

    /// Slots per TX ring (a creation hint).
    pub fn tx_slots(mut self, n: u32) -> Self {
        self.tx_slots = Some(n);
        self
    }

    /// Slots per RX ring (a creation hint).
    pub fn rx_slots(mut self, n: u32) -> Self {
        self.rx_slots = Some(n);
        self
    }

    /// Slots per ring, both directions.
    pub fn slots(self, n: u32) -> Self {
        self.tx_slots(n).rx_slots(n)
    }

    /// Number of TX rings (a creation hint).
    pub fn tx_rings(mut self, n: u16) -> Self {
        self.tx_rings = Some(n);
        self
    }

    /// Number of RX rings (a creation hint).
    pub fn rx_rings(mut self, n: u16) -> Self {
        self.rx_rings = Some(n);
        self
    }

    /// Number of rings, both directions.
    pub fn rings(self, n: u16) -> Self {
        self.tx_rings(n).rx_rings(n)
    }

    /// Number of host TX rings (NICs not yet in netmap mode).
    pub fn host_tx_rings(mut self, n: u16) -> Self {
        self.host_tx_rings = Some(n);
        self
    }

    /// Number of host RX rings.
    pub fn host_rx_rings(mut self, n: u16) -> Self {
        self.host_rx_rings = Some(n);
        self
    }

    /// Extra buffers to allocate (see [`Port::take_extra_buf`]).
    pub fn extra_bufs(mut self, n: u32) -> Self {
        self.extra_bufs = n;
        self
    }

    /// The memory region (`nr_mem_id`) to use.
    pub fn mem_id(mut self, id: u16) -> Self {
        self.mem_id = Some(id);
        self
    }

    /// Register flags OR-ed into those of the spec (`/x`, `/R`, ...).
    pub fn flags(mut self, flags: RegFlags) -> Self {
        self.flags |= flags;
        self
    }

    /// Overrides the ring selection of the spec (`mode`, `nr_ringid`).
    pub fn mode(mut self, mode: RegMode, ringid: u16) -> Self {
        self.mode = Some((mode, ringid));
        self
    }

    /// The REGISTER body this builder sends (without the `@share` lookup).
    fn body(&self, spec: &PortSpec<'_>) -> NmreqRegister {
        let mut b = spec.register_body();
        let set = |dst: &mut u32, v: Option<u32>| {
            if let Some(v) = v {
                *dst = v;
            }
        };
        set(&mut b.nr_tx_slots, self.tx_slots);
        set(&mut b.nr_rx_slots, self.rx_slots);
        let set16 = |dst: &mut u16, v: Option<u16>| {
            if let Some(v) = v {
                *dst = v;
            }
        };
        set16(&mut b.nr_tx_rings, self.tx_rings);
        set16(&mut b.nr_rx_rings, self.rx_rings);
        set16(&mut b.nr_host_tx_rings, self.host_tx_rings);
        set16(&mut b.nr_host_rx_rings, self.host_rx_rings);
        set16(&mut b.nr_mem_id, self.mem_id);
        b.nr_extra_bufs = self.extra_bufs;
        b.nr_flags |= self.flags.bits();
        if let Some((mode, ringid)) = self.mode {
            b.nr_mode = mode.as_raw();
            b.nr_ringid = ringid;
        }
        b
    }

    /// Memory of this process for the port's region (the EXTMEM option): the
    /// file `path`, mapped shared (like `@extmem:file=PATH` in the spec,
    /// which this overrides; pool sizes from the spec's `@extmem` keys, else
    /// the kernel's defaults).
    pub fn extmem_file(mut self, path: &'s str) -> Self {
        self.extmem = Some(path);
        self
    }

    fn parse(&self) -> Result<PortSpec<'s>> {
        PortSpec::parse_with(
            self.spec,
            ParseOptions {
                enable_offset: true,
            },
        )
        .map_err(|error| Error::Spec {
            spec: self.spec.to_owned(),
            error,
        })
    }

    /// Parses the spec and builds the REGISTER request (name and body), resolving
    /// `@share` with PORT_INFO_GET. Does not open `/dev/netmap` unless `@share`
    /// needs it. (`@extmem` and `@offset` become options of the request, see
    /// [`PortBuilder::open`].)
    pub fn request(&self) -> Result<(Name, NmreqRegister)> {
        let spec = self.parse()?;
        let mut body = self.body(&spec);
        if let Some(share) = spec.share {
            let name = share.to_string();
            let info = Netmap::open()?.port_info(&name)?;
            if body.nr_mem_id != 0 && body.nr_mem_id != info.nr_mem_id {
                return Err(Error::InvalidArgument {
                    what: format!(
                        "mem id {} conflicts with @share={name} (mem id {})",
                        body.nr_mem_id, info.nr_mem_id
                    ),
                });
            }
            body.nr_mem_id = info.nr_mem_id;
        }
        Ok((spec.nr_name, body))
    }

    /// Opens `/dev/netmap`, registers the port and maps its memory. With
    /// `@extmem` (or [`PortBuilder::extmem_file`]) the file is mapped and
    /// becomes the region (EXTMEM option); with `@offset` the rings get
    /// per-slot data offsets (OFFSETS option, max offset = initial).
    pub fn open(&self) -> Result<Port> {
        let (name, body) = self.request()?;
        let spec = self.parse()?;
        let mut opts = RegisterOptions::default();
        if let Some(path) = self.extmem.or(spec.extmem.map(|e| e.file)) {
            let e = spec.extmem.unwrap_or_default();
            opts.extmem = Some(Extmem::map_file(path, &e)?);
        }
        opts.offsets = spec.offsets_option();
        Port::register_with(name, body, opts)
    }
}

/// Options of a REGISTER beyond the body.
#[derive(Debug, Default)]
struct RegisterOptions {
    extmem: Option<Extmem>,
    offsets: Option<crate::abi::NmreqOptOffsets>,
}

/// Memory of this process given to the kernel as a region (EXTMEM).
#[derive(Debug)]
struct Extmem {
    map: Arc<Mapping>,
    info: crate::abi::NmreqPoolsInfo,
}

impl Extmem {
    /// Maps `path` (its whole size) shared and read/write, as libnetmap's
    /// `nmport_extmem_from_file` does.
    fn map_file(path: &str, e: &crate::portname::ExtmemSpec<'_>) -> Result<Self> {
        let os = |err: std::io::Error| Error::os(Op::Mmap, Some(path), &err);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(os)?;
        let len = f.metadata().map_err(os)?.len();
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l > 0)
            .ok_or_else(|| Error::InvalidArgument {
                what: format!("extmem file {path}: size {len}"),
            })?;
        let map = Arc::new(sys::map_file(&f, len).map_err(os)?);
        let info = crate::abi::NmreqPoolsInfo {
            nr_memsize: len as u64,
            nr_if_pool_objtotal: e.if_num.unwrap_or(0),
            nr_if_pool_objsize: e.if_size.unwrap_or(0),
            nr_ring_pool_objtotal: e.ring_num.unwrap_or(0),
            nr_ring_pool_objsize: e.ring_size.unwrap_or(0),
            nr_buf_pool_objtotal: e.buf_num.unwrap_or(0),
            nr_buf_pool_objsize: e.buf_size.unwrap_or(0),
            ..Default::default()
        };
        Ok(Self { map, info })
    }
}

/// A netmap port: a `/dev/netmap` file descriptor bound to some rings of a port,
/// with the memory region mapped.
///
/// Rings are accessed through views ([`Port::tx_ring`], [`Port::rx_ring`]); at
/// most one view of a ring exists in the process at a time (tracked per memory
/// region, so also across ports bound to the same rings). Views, syncing and
/// polling take `&self`: a port can be shared between threads that use different
/// rings, and synced while views are held (a view only gives access to the slots
/// in `[head, tail)`, which a sync never takes away).
///
/// ```no_run
/// use netmap_uapi::user::{Port, PollFlags};
/// use std::time::Duration;
///
/// let port = Port::open("vale0:a")?;
/// let frame = [0u8; 60];
/// for i in port.tx_rings() {
///     let mut ring = port.tx_ring(i);
///     while ring.send(&frame).is_ok() {}
/// }
/// port.sync_tx()?;
///
/// let rx = Port::open("vale0:b")?;
/// if rx.poll(PollFlags::IN, Some(Duration::from_secs(1)))?.contains(PollFlags::IN) {
///     for i in rx.rx_rings() {
///         let mut ring = rx.rx_ring(i);
///         while let Some(pkt) = ring.recv() {
///             println!("{} bytes", pkt.len());
///         }
///     }
/// }
/// # Ok::<(), netmap_uapi::user::Error>(())
/// ```
#[derive(Debug)]
pub struct Port {
    fd: sys::OwnedDev,
    region: Region,
    name: Name,
    /// What was sent (for clones).
    req: NmreqRegister,
    /// What the kernel returned.
    reg: NmreqRegister,
    /// CSB mode (`csb.rs`).
    pub(crate) csb: Option<super::csb::CsbState>,
}

impl Port {
    /// Opens a port from a `nmport_open` spec (spec §7.2), e.g. `netmap:eth0`,
    /// `vale0:a`, `netmap:eth0-2/x`, `netmap:pipe{1`.
    pub fn open(spec: &str) -> Result<Port> {
        PortBuilder::new(spec).open()
    }

    /// A builder for opening `spec` with extra options.
    pub fn builder(spec: &str) -> PortBuilder<'_> {
        PortBuilder::new(spec)
    }

    /// Registers `name` with `body` on a fresh file descriptor and maps the region.
    pub fn register(name: Name, body: NmreqRegister) -> Result<Port> {
        Self::register_with(name, body, RegisterOptions::default())
    }

    fn register_with(name: Name, body: NmreqRegister, opts: RegisterOptions) -> Result<Port> {
        let name_str = name.to_string();
        let fd = sys::open_device().map_err(|e| Error::os(Op::Open, None, &e))?;
        let mut hdr = NmreqHeader::new(NETMAP_REQ_REGISTER, name.as_bytes());
        let mut reg = body;
        let mut list = OptionList::new();
        if let Some(e) = &opts.extmem {
            let o = crate::abi::NmreqOptExtmem {
                nro_usrptr: e.map.base_addr() as u64,
                nro_info: e.info,
                ..Default::default()
            };
            list.push(NETMAP_REQ_OPT_EXTMEM, &o.as_bytes()[24..]);
        }
        if let Some(o) = &opts.offsets {
            list.push(NETMAP_REQ_OPT_OFFSETS, &o.as_bytes()[24..]);
        }
        sys::ctrl_with(sys::borrow(&fd), &mut hdr, reg.as_bytes_mut(), &mut list)
            .map_err(|e| Error::os(Op::Register, Some(&name_str), &e))?;
        let layout = |what: String| Error::Layout {
            name: name_str.clone(),
            what,
        };
        let memsize = usize::try_from(reg.nr_memsize)
            .ok()
            .filter(|&s| s > 0)
            .ok_or_else(|| layout(format!("region size {}", reg.nr_memsize)))?;
        let map = match opts.extmem {
            // The region is this process's memory: nothing to map. The first
            // mapping of a mem id stays the one all its ports use (as in
            // libnetmap): later ports of the region find it here.
            Some(e) => {
                let mut maps = MAPPINGS.lock().unwrap_or_else(|p| p.into_inner());
                maps.retain(|(_, _, w)| w.strong_count() > 0);
                let known = maps
                    .iter()
                    .filter(|(id, size, _)| *id == reg.nr_mem_id && *size == memsize)
                    .find_map(|(_, _, w)| w.upgrade());
                match known {
                    Some(m) => m,
                    None => {
                        maps.push((reg.nr_mem_id, memsize, Arc::downgrade(&e.map)));
                        e.map
                    }
                }
            }
            None => map_region(sys::borrow(&fd), reg.nr_mem_id, memsize)
                .map_err(|e| Error::os(Op::Mmap, Some(&name_str), &e))?,
        };
        let nifp_off = usize::try_from(reg.nr_offset).map_err(|_| layout("nr_offset".into()))?;
        let region = Region::parse(map, nifp_off).map_err(layout)?;
        Ok(Port {
            fd,
            region,
            name,
            req: body,
            reg,
            csb: None,
        })
    }

    /// Opens another file descriptor on the same port with a different ring
    /// selection, sharing this port's memory (libnetmap's `nmport_clone` followed
    /// by `nmport_open_desc`). pkt-gen uses it to give each thread one ring pair
    /// (`RegMode::OneNic`, ring i).
    pub fn clone_with(&self, mode: RegMode, ringid: u16, extra_flags: RegFlags) -> Result<Port> {
        let mut body = self.req;
        body.nr_mode = mode.as_raw();
        body.nr_ringid = ringid;
        body.nr_flags |= extra_flags.bits();
        body.nr_mem_id = self.reg.nr_mem_id;
        body.nr_extra_bufs = 0;
        Port::register(self.name, body)
    }

    /// The name registered (`nr_name`, e.g. `eth0`, `vale0:a`).
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The adapter name in the netmap_if (`ni_name`, truncated to 15 bytes).
    pub fn if_name(&self) -> String {
        String::from_utf8_lossy(self.region.nifp.name()).into_owned()
    }

    /// The REGISTER body as returned by the kernel (ring and slot counts, memsize,
    /// mem id, extra buffers obtained).
    pub fn info(&self) -> &NmreqRegister {
        &self.reg
    }

    /// The memory region id.
    pub fn mem_id(&self) -> u16 {
        self.reg.nr_mem_id
    }

    /// Size of the memory region.
    pub fn memsize(&self) -> u64 {
        self.reg.nr_memsize
    }

    /// The ring selection mode requested.
    pub fn mode(&self) -> Option<RegMode> {
        RegMode::from_raw(self.reg.nr_mode)
    }

    /// The register flags requested.
    pub fn flags(&self) -> RegFlags {
        RegFlags::from_bits_retain(self.reg.nr_flags)
    }

    /// Whether the port uses a private memory region (`NI_PRIV_MEM`).
    pub fn private_memory(&self) -> bool {
        self.region.nifp.ni_flags & crate::consts::NI_PRIV_MEM != 0
    }

    /// Whether `other` maps the same memory (buffers can be swapped between them).
    pub fn shares_memory_with(&self, other: &Port) -> bool {
        Arc::ptr_eq(&self.region.map, &other.region.map)
    }

    /// Indexes of the TX rings bound to this descriptor (hardware rings first, host
    /// rings after them).
    pub fn tx_rings(&self) -> Range<u16> {
        self.region.tx.bound.clone()
    }

    /// Indexes of the bound RX rings.
    pub fn rx_rings(&self) -> Range<u16> {
        self.region.rx.bound.clone()
    }

    /// Number of hardware TX rings of the port (`ni_tx_rings`).
    pub fn num_tx_rings(&self) -> u32 {
        self.region.nifp.ni_tx_rings
    }

    /// Number of hardware RX rings of the port (`ni_rx_rings`).
    pub fn num_rx_rings(&self) -> u32 {
        self.region.nifp.ni_rx_rings
    }

    /// Number of host TX rings of the port (`nr_host_tx_rings`, 0 for ports
    /// without host rings).
    pub fn num_host_tx_rings(&self) -> u16 {
        self.reg.nr_host_tx_rings
    }

    /// Number of host RX rings of the port.
    pub fn num_host_rx_rings(&self) -> u16 {
        self.reg.nr_host_rx_rings
    }

    /// A view of TX ring `i`; `None` if it is not bound or a view of it exists.
    pub fn try_tx_ring(&self, i: u16) -> Option<TxRing<'_>> {
        self.region.tx_ring(i).ok()
    }

    /// A view of RX ring `i`; `None` if it is not bound or a view of it exists.
    pub fn try_rx_ring(&self, i: u16) -> Option<RxRing<'_>> {
        self.region.rx_ring(i).ok()
    }

    /// A view of TX ring `i`.
    ///
    /// # Panics
    ///
    /// If ring `i` is not bound to this port or a view of it already exists.
    pub fn tx_ring(&self, i: u16) -> TxRing<'_> {
        match self.region.tx_ring(i) {
            Ok(r) => r,
            Err(why) => panic!("{}: TX ring {i}: {why}", self.name),
        }
    }

    /// A view of RX ring `i`.
    ///
    /// # Panics
    ///
    /// If ring `i` is not bound to this port or a view of it already exists.
    pub fn rx_ring(&self, i: u16) -> RxRing<'_> {
        match self.region.rx_ring(i) {
            Ok(r) => r,
            Err(why) => panic!("{}: RX ring {i}: {why}", self.name),
        }
    }

    /// Free TX slots over all bound TX rings (rings with a live view are skipped).
    pub fn tx_space(&self) -> u64 {
        self.tx_rings()
            .filter_map(|i| self.try_tx_ring(i))
            .map(|r| u64::from(r.space()))
            .sum()
    }

    /// Received slots over all bound RX rings (rings with a live view are skipped).
    pub fn rx_space(&self) -> u64 {
        self.rx_rings()
            .filter_map(|i| self.try_rx_ring(i))
            .map(|r| u64::from(r.space()))
            .sum()
    }

    /// `NIOCTXSYNC`: hands `[old head, head)` of every bound TX ring to the kernel
    /// and updates `tail`.
    pub fn sync_tx(&self) -> Result<()> {
        sys::sync(sys::borrow(&self.fd), true)
            .map_err(|e| Error::os(Op::TxSync, Some(&self.name.to_string()), &e))
    }

    /// `NIOCRXSYNC`: releases `[old head, head)` of every bound RX ring and updates
    /// `tail` with newly received packets.
    pub fn sync_rx(&self) -> Result<()> {
        sys::sync(sys::borrow(&self.fd), false)
            .map_err(|e| Error::os(Op::RxSync, Some(&self.name.to_string()), &e))
    }

    /// `poll()` on this descriptor (which also syncs the rings, spec §6.7). Returns
    /// the events that occurred (empty on timeout or when interrupted by a signal).
    pub fn poll(&self, events: PollFlags, timeout: Option<Duration>) -> Result<PollFlags> {
        let mut fds = [PollFd::new(sys::borrow(&self.fd), events)];
        poll(&mut fds, timeout)?;
        Ok(fds[0].revents())
    }

    /// Number of buffers in the extra-buffer list (`ni_bufs_head` chain).
    pub fn extra_buf_count(&self) -> usize {
        self.region.extra_count()
    }

    /// Takes a buffer from the extra-buffer list.
    pub fn take_extra_buf(&self) -> Option<ExtraBuf> {
        self.region.take_extra()
    }

    /// Puts a detached buffer back into the extra-buffer list, where the kernel
    /// finds it when the port is closed. Gives it back if it belongs to another
    /// memory region.
    pub fn put_extra_buf(&self, buf: ExtraBuf) -> core::result::Result<(), ExtraBuf> {
        self.region.put_extra(buf)
    }

    /// The bytes of a detached buffer (`None` if it belongs to another region).
    pub fn extra_buf(&self, buf: &ExtraBuf) -> Option<&[u8]> {
        self.region.extra_bytes(buf)
    }

    /// The bytes of a detached buffer, writable.
    pub fn extra_buf_mut<'s>(&'s self, buf: &'s mut ExtraBuf) -> Option<&'s mut [u8]> {
        self.region.extra_bytes_mut(buf)
    }

    /// The region view (for the CSB code).
    pub(crate) fn region(&self) -> &Region {
        &self.region
    }

    /// Address of the start of the mapped region in this process.
    pub fn mem_base(&self) -> usize {
        self.region.map.base_addr()
    }
}

impl Port {
    /// The device handle (a file descriptor on Unix, a `HANDLE` on Windows),
    /// for [`PollFd::new`].
    pub fn device(&self) -> sys::BorrowedDev<'_> {
        sys::borrow(&self.fd)
    }

    /// The descriptor's number, for log lines (the fd, or the handle value).
    pub fn raw_number(&self) -> i64 {
        sys::raw_number(&self.fd)
    }
}

#[cfg(unix)]
impl AsFd for Port {
    fn as_fd(&self) -> BorrowedFd<'_> {
        sys::borrow(&self.fd)
    }
}

#[cfg(unix)]
impl AsRawFd for Port {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// `poll()` on several descriptors, e.g. two ports of a bridge. Returns the number
/// of descriptors with events (0 on timeout or when interrupted by a signal).
///
/// ```no_run
/// use netmap_uapi::user::{Port, PollFd, PollFlags, poll};
/// use std::os::fd::AsFd;
///
/// let (a, b) = (Port::open("vale0:a")?, Port::open("vale0:b")?);
/// let mut fds = [
///     PollFd::new(a.as_fd(), PollFlags::IN),
///     PollFd::new(b.as_fd(), PollFlags::IN),
/// ];
/// poll(&mut fds, None)?;
/// # Ok::<(), netmap_uapi::user::Error>(())
/// ```
pub fn poll(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> Result<usize> {
    let ms = match timeout {
        None => -1,
        Some(d) => i32::try_from(d.as_millis()).unwrap_or(i32::MAX),
    };
    match sys::poll(fds, ms) {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(Error::os(Op::Poll, None, &e)),
    }
}
