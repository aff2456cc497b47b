//! Test harness: a simulated userspace driving the core through the same
//! entry points an OS module uses (ioctl with user pointers, mmap pages).
#![allow(dead_code)]

use netmap_core::host::HostPlatform;
use netmap_core::netmap::{Netmap, NetmapPriv};
use netmap_core::{Errno, Params};
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

pub type Nm = Netmap<HostPlatform>;

pub struct Env {
    pub p: HostPlatform,
    pub nm: Box<Nm>,
}

impl Env {
    pub fn new() -> Self {
        Self::with_params(Params::default())
    }

    pub fn with_params(params: Params) -> Self {
        let p = HostPlatform::new();
        let nm = Netmap::new(p.clone(), params).expect("netmap context");
        Env { p, nm }
    }

    /// A context whose OS-interface lookup knows the fake devices `nics`.
    pub fn with_nics(nics: &[std::sync::Arc<netmap_core::host::HostNetif>]) -> Self {
        let env = Self::new();
        env.nm
            .set_netif_provider(Box::new(netmap_core::host::HostNetifProvider::new(
                nics.to_vec(),
            )))
            .unwrap();
        env
    }

    pub fn open(&self) -> Box<NetmapPriv<HostPlatform>> {
        self.nm.open().expect("open")
    }

    /// NIOCCTRL with `body`, no options. The body is updated from user memory.
    pub fn ctrl<T: Pod>(
        &self,
        np: &NetmapPriv<HostPlatform>,
        reqtype: u16,
        name: &str,
        body: Option<&mut T>,
    ) -> Result<NmreqHeader, Errno> {
        self.ctrl_opts(np, reqtype, name, body, 0).map(|(h, _)| h)
    }

    /// NIOCCTRL with a body and an option list at user address `opts`.
    pub fn ctrl_opts<T: Pod>(
        &self,
        np: &NetmapPriv<HostPlatform>,
        reqtype: u16,
        name: &str,
        body: Option<&mut T>,
        opts: u64,
    ) -> Result<(NmreqHeader, i32), Errno> {
        let mut hdr = NmreqHeader::new(reqtype, name.as_bytes());
        hdr.nr_version = NETMAP_API;
        hdr.nr_options = opts;
        let baddr = body.as_ref().map(|b| self.p.user_map(b.as_bytes()));
        hdr.nr_body = baddr.unwrap_or(0);
        let haddr = self.p.user_map(hdr.as_bytes());
        let r = self.nm.ioctl(np, NIOCCTRL, haddr);
        let hb = self
            .p
            .user_read(haddr, core::mem::size_of::<NmreqHeader>())
            .unwrap();
        let hdr_out = NmreqHeader::from_bytes(&hb).unwrap();
        if let (Some(b), Some(a)) = (body, baddr) {
            let bytes = self.p.user_read(a, core::mem::size_of::<T>()).unwrap();
            *b = T::from_bytes(&bytes).unwrap();
        }
        r.map(|_| (hdr_out, 0))
    }

    /// Raw NIOCCTRL with a prepared header at a user address.
    pub fn ioctl_raw(
        &self,
        np: &NetmapPriv<HostPlatform>,
        cmd: u32,
        arg: u64,
    ) -> Result<(), Errno> {
        self.nm.ioctl(np, cmd, arg)
    }

    pub fn register(
        &self,
        np: &NetmapPriv<HostPlatform>,
        name: &str,
        mode: u32,
        flags: u64,
    ) -> Result<NmreqRegister, Errno> {
        let mut reg = NmreqRegister {
            nr_mode: mode,
            nr_flags: flags,
            ..NmreqRegister::zeroed()
        };
        self.ctrl(np, NETMAP_REQ_REGISTER, name, Some(&mut reg))?;
        Ok(reg)
    }

    pub fn register_with(
        &self,
        np: &NetmapPriv<HostPlatform>,
        name: &str,
        mut reg: NmreqRegister,
    ) -> Result<NmreqRegister, Errno> {
        self.ctrl(np, NETMAP_REQ_REGISTER, name, Some(&mut reg))?;
        Ok(reg)
    }

    /// Open + register + "mmap": a user-side view of the port.
    pub fn port(&self, name: &str) -> Port<'_> {
        self.port_with(
            name,
            NmreqRegister {
                nr_mode: NR_REG_ALL_NIC,
                ..NmreqRegister::zeroed()
            },
        )
    }

    pub fn port_with(&self, name: &str, reg: NmreqRegister) -> Port<'_> {
        let np = self.open();
        let reg = self
            .register_with(&np, name, reg)
            .unwrap_or_else(|e| panic!("register {name}: {e}"));
        Port {
            env: self,
            np: Some(np),
            reg,
        }
    }

    pub fn txsync(&self, np: &NetmapPriv<HostPlatform>) -> Result<(), Errno> {
        self.nm.ioctl(np, NIOCTXSYNC, 0)
    }
    pub fn rxsync(&self, np: &NetmapPriv<HostPlatform>) -> Result<(), Errno> {
        self.nm.ioctl(np, NIOCRXSYNC, 0)
    }
}

/// A registered file with its region "mapped".
pub struct Port<'a> {
    pub env: &'a Env,
    np: Option<Box<NetmapPriv<HostPlatform>>>,
    pub reg: NmreqRegister,
}

impl Drop for Port<'_> {
    fn drop(&mut self) {
        if let Some(np) = self.np.take() {
            self.env.nm.release(np);
        }
    }
}

impl<'a> Port<'a> {
    /// A file registered by the caller (`reg` as REGISTER returned it).
    pub fn wrap(env: &'a Env, np: Box<NetmapPriv<HostPlatform>>, reg: NmreqRegister) -> Self {
        Port {
            env,
            np: Some(np),
            reg,
        }
    }

    pub fn np(&self) -> &NetmapPriv<HostPlatform> {
        self.np.as_deref().expect("open")
    }

    /// Close the file now.
    pub fn close(mut self) {
        if let Some(np) = self.np.take() {
            self.env.nm.release(np);
        }
    }

    /// Kernel address of region offset `off` (objects never cross clusters,
    /// and pages of a cluster are contiguous).
    pub fn addr(&self, off: u64) -> *mut u8 {
        let page = self.env.nm.mmap_page(self.np(), off & !4095).expect("page");
        page.as_ptr().wrapping_add((off & 4095) as usize)
    }

    pub fn nifp(&self) -> NetmapIf {
        let p = self.addr(self.reg.nr_offset).cast::<NetmapIf>();
        // SAFETY: nr_offset is the netmap_if of this file, inside the region.
        unsafe { p.read_volatile() }
    }

    pub fn set_bufs_head(&self, v: u32) {
        let p =
            self.addr(self.reg.nr_offset + core::mem::offset_of!(NetmapIf, ni_bufs_head) as u64);
        // SAFETY: an aligned u32 field of this file's netmap_if.
        unsafe { p.cast::<u32>().write_volatile(v) }
    }

    pub fn ring_ofs(&self, i: usize) -> i64 {
        let p = self
            .addr(self.reg.nr_offset + 56 + 8 * i as u64)
            .cast::<i64>();
        // SAFETY: ring_ofs entries follow the 56-byte header.
        unsafe { p.read_volatile() }
    }

    /// Region offset of TX ring i / RX ring i (None when not bound).
    pub fn tx_ring(&self, i: usize) -> Option<URing> {
        let o = self.ring_ofs(i);
        (o != 0).then(|| self.uring((self.reg.nr_offset as i64 + o) as u64))
    }
    pub fn rx_ring(&self, i: usize) -> Option<URing> {
        let n = self.nifp();
        let o = self.ring_ofs(i + (n.ni_tx_rings + n.ni_host_tx_rings) as usize);
        (o != 0).then(|| self.uring((self.reg.nr_offset as i64 + o) as u64))
    }
    fn uring(&self, off: u64) -> URing {
        URing::new(self.addr(off), off)
    }

    /// Kernel address of buffer `idx` as seen from `ring`.
    pub fn buf(&self, ring: &URing, idx: u32) -> *mut u8 {
        let h = ring.hdr();
        let off = ring.region_off as i64 + h.buf_ofs + idx as i64 * h.nr_buf_size as i64;
        self.addr(off as u64)
    }

    pub fn txsync(&self) -> Result<(), Errno> {
        self.env.txsync(self.np())
    }
    pub fn rxsync(&self) -> Result<(), Errno> {
        self.env.rxsync(self.np())
    }

    /// Put `frames` in TX ring 0 and sync; returns how many fit.
    pub fn send(&self, frames: &[&[u8]]) -> usize {
        let r = self.tx_ring(0).expect("tx ring");
        let mut head = r.head();
        let mut sent = 0;
        for f in frames {
            if nm_ring_space(r.num_slots(), head, r.tail()) == 0 {
                break;
            }
            let s = r.slot(head);
            let b = self.buf(&r, s.buf_idx);
            // SAFETY: the buffer holds nr_buf_size >= frame bytes.
            unsafe { core::ptr::copy_nonoverlapping(f.as_ptr(), b, f.len()) };
            r.set_slot(
                head,
                NetmapSlot {
                    len: f.len() as u16,
                    ..s
                },
            );
            head = next(head, r.num_slots());
            sent += 1;
        }
        r.set_head(head);
        r.set_cur(head);
        self.txsync().unwrap();
        sent
    }

    /// Sync RX and take every frame in RX ring 0.
    pub fn recv(&self) -> Vec<Vec<u8>> {
        self.rxsync().unwrap();
        let r = self.rx_ring(0).expect("rx ring");
        let mut out = Vec::new();
        let mut h = r.head();
        while h != r.tail() {
            let s = r.slot(h);
            let b = self.buf(&r, s.buf_idx);
            let mut v = vec![0u8; s.len as usize];
            // SAFETY: len <= buffer size (kernel-written).
            unsafe { core::ptr::copy_nonoverlapping(b, v.as_mut_ptr(), v.len()) };
            out.push(v);
            h = next(h, r.num_slots());
        }
        r.set_head(h);
        r.set_cur(h);
        out
    }
}

pub fn next(i: u32, n: u32) -> u32 {
    if i + 1 == n { 0 } else { i + 1 }
}
pub fn prev(i: u32, n: u32) -> u32 {
    if i == 0 { n - 1 } else { i - 1 }
}

/// A user view of a netmap_ring.
pub struct URing {
    pub base: *mut u8,
    pub region_off: u64,
    /// `num_slots`, read once (the kernel never changes it).
    n: u32,
}

impl URing {
    pub fn hdr(&self) -> NetmapRing {
        // SAFETY: base is a ring object of the region.
        unsafe { self.base.cast::<NetmapRing>().read_volatile() }
    }
    fn field(&self, off: usize) -> *mut u32 {
        self.base.wrapping_add(off).cast()
    }
    /// A view of the ring object at `base` (region offset `region_off`).
    pub fn new(base: *mut u8, region_off: u64) -> Self {
        // SAFETY: base is a ring object of the region; num_slots is at 8.
        let n = unsafe { base.wrapping_add(8).cast::<u32>().read_volatile() };
        URing {
            base,
            region_off,
            n,
        }
    }
    pub fn num_slots(&self) -> u32 {
        self.n
    }
    pub fn head(&self) -> u32 {
        // SAFETY: head field of the ring header.
        unsafe { self.field(20).read_volatile() }
    }
    pub fn cur(&self) -> u32 {
        // SAFETY: cur field of the ring header.
        unsafe { self.field(24).read_volatile() }
    }
    pub fn tail(&self) -> u32 {
        // SAFETY: tail field of the ring header.
        unsafe { self.field(28).read_volatile() }
    }
    pub fn set_head(&self, v: u32) {
        // SAFETY: head field of the ring header.
        unsafe { self.field(20).write_volatile(v) }
    }
    pub fn set_cur(&self, v: u32) {
        // SAFETY: cur field of the ring header.
        unsafe { self.field(24).write_volatile(v) }
    }
    pub fn set_tail(&self, v: u32) {
        // SAFETY: tail field of the ring header.
        unsafe { self.field(28).write_volatile(v) }
    }
    pub fn set_flags(&self, v: u32) {
        // SAFETY: flags field of the ring header.
        unsafe { self.field(32).write_volatile(v) }
    }
    pub fn space(&self) -> u32 {
        nm_ring_space(self.num_slots(), self.head(), self.tail())
    }
    pub fn slot(&self, i: u32) -> NetmapSlot {
        assert!(i < self.num_slots());
        // SAFETY: slot i < num_slots of this ring.
        unsafe {
            self.base
                .wrapping_add(256 + 16 * i as usize)
                .cast::<NetmapSlot>()
                .read_volatile()
        }
    }
    pub fn set_slot(&self, i: u32, s: NetmapSlot) {
        assert!(i < self.num_slots());
        // SAFETY: slot i < num_slots of this ring.
        unsafe {
            self.base
                .wrapping_add(256 + 16 * i as usize)
                .cast::<NetmapSlot>()
                .write_volatile(s)
        }
    }
}

/// An Ethernet frame from `src` to `dst` with a payload tag.
pub fn frame(dst: [u8; 6], src: [u8; 6], tag: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(18)];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12] = 0x08;
    f[14..18].copy_from_slice(&tag.to_be_bytes());
    f
}

// ----------------------------------------------------------------------
// Helpers for threaded tests and benchmarks (bulk send/receive without
// per-frame allocation, bounded blocking waits through poll()).

/// Events for [`Port::poll_wait`].
pub const POLLIN: u32 = netmap_core::netmap::POLLIN;
pub const POLLOUT: u32 = netmap_core::netmap::POLLOUT;
pub const POLLERR: u32 = netmap_core::netmap::POLLERR;

impl Port<'_> {
    /// Wait queue of ring 0 of direction `d` of this file's port.
    pub fn wq(&self, d: netmap_core::kring::Dir) -> &netmap_core::host::HostWaitQueue {
        &self
            .np()
            .binding()
            .expect("bound")
            .na
            .kring(d, 0)
            .expect("ring 0")
            .wq
    }

    /// Address of buffer `idx` of this port's region, like NETMAP_BUF but
    /// without re-reading the ring header and walking the simulated
    /// mapping for every slot (the kernel's lookup table gives the same
    /// address; out-of-range indexes give buffer 0, never a wild pointer).
    pub fn buf_fast(&self, idx: u32) -> *mut u8 {
        self.np().binding().expect("bound").na.mem.buf(idx).as_ptr()
    }

    /// poll() for `events` (POLLIN or POLLOUT); if nothing is ready, sleep
    /// on the ring's wait queue for at most `timeout`. Returns the revents
    /// of the poll (before sleeping). Never blocks longer than `timeout`.
    pub fn poll_wait(&self, events: u32, timeout: std::time::Duration) -> u32 {
        use netmap_core::kring::Dir;
        let d = if events & POLLIN != 0 {
            Dir::Rx
        } else {
            Dir::Tx
        };
        let wq = self.wq(d);
        let g = wq.generation();
        let r = self.env.nm.poll(self.np(), events, &mut |_| {});
        if r & events == 0 {
            wq.wait_since(g, timeout);
        }
        r
    }

    /// Fill up to `max` free slots of TX ring 0 with `fill(buf) -> len`
    /// (`buf` is a scratch frame copied into the slot buffer), then txsync
    /// (also when nothing fits: that picks up room freed by the peer).
    /// Returns the number of frames queued.
    pub fn send_fill(
        &self,
        r: &URing,
        max: usize,
        mut fill: impl FnMut(&mut [u8]) -> usize,
    ) -> usize {
        let n = r.num_slots();
        let bsz = r.hdr().nr_buf_size as usize;
        let mut head = r.head();
        let tail = r.tail();
        let mut sent = 0;
        let mut scratch = [0u8; 2048];
        while sent < max && nm_ring_space(n, head, tail) > 0 {
            let len = fill(&mut scratch).min(bsz).min(scratch.len());
            let s = r.slot(head);
            let b = self.buf_fast(s.buf_idx);
            // SAFETY: the slot buffer holds nr_buf_size >= len bytes and the
            // slot belongs to the user ([head, tail) of a TX ring).
            unsafe { core::ptr::copy_nonoverlapping(scratch.as_ptr(), b, len) };
            r.set_slot(
                head,
                NetmapSlot {
                    len: len as u16,
                    flags: 0,
                    ..s
                },
            );
            head = next(head, n);
            sent += 1;
        }
        r.set_head(head);
        r.set_cur(head);
        self.txsync().expect("txsync");
        sent
    }

    /// rxsync, then hand every frame of RX ring 0 to `f` (a copy out of
    /// shared memory), release them all. Returns the number of frames.
    pub fn recv_each(&self, r: &URing, mut f: impl FnMut(&[u8])) -> usize {
        self.rxsync().expect("rxsync");
        let n = r.num_slots();
        let bsz = r.hdr().nr_buf_size as usize;
        let mut h = r.head();
        let t = r.tail();
        let mut got = 0;
        let mut scratch = [0u8; 2048];
        while h != t {
            let s = r.slot(h);
            let len = (s.len as usize).min(bsz).min(scratch.len());
            let b = self.buf_fast(s.buf_idx);
            // SAFETY: len <= buffer size; the slot is in [head, tail) of an
            // RX ring, i.e. owned by the user until released.
            unsafe { core::ptr::copy_nonoverlapping(b, scratch.as_mut_ptr(), len) };
            f(&scratch[..len]);
            h = next(h, n);
            got += 1;
        }
        r.set_head(h);
        r.set_cur(h);
        got
    }
}

/// A 60-byte (or `len`-byte) test frame from `src` to `dst` carrying a
/// stream id and a sequence number, with a payload derived from both.
pub fn seq_frame(
    buf: &mut [u8],
    dst: [u8; 6],
    src: [u8; 6],
    stream: u32,
    seq: u32,
    len: usize,
) -> usize {
    let len = len.clamp(26, buf.len());
    buf[..6].copy_from_slice(&dst);
    buf[6..12].copy_from_slice(&src);
    buf[12] = 0x88;
    buf[13] = 0xb5;
    buf[14..18].copy_from_slice(&stream.to_be_bytes());
    buf[18..22].copy_from_slice(&seq.to_be_bytes());
    buf[22..26].copy_from_slice(&(len as u32).to_be_bytes());
    for (i, b) in buf[26..len].iter_mut().enumerate() {
        *b = (seq as usize)
            .wrapping_mul(31)
            .wrapping_add(i)
            .wrapping_add(stream as usize) as u8;
    }
    len
}

/// Check a frame made by [`seq_frame`]: returns (src, stream, seq), or an
/// error describing the corruption.
pub fn check_seq_frame(f: &[u8]) -> Result<([u8; 6], u32, u32), String> {
    if f.len() < 26 {
        return Err(format!("short frame: {} bytes", f.len()));
    }
    if f[12] != 0x88 || f[13] != 0xb5 {
        return Err(format!("bad ethertype {:02x}{:02x}", f[12], f[13]));
    }
    let mut src = [0u8; 6];
    src.copy_from_slice(&f[6..12]);
    let stream = u32::from_be_bytes(f[14..18].try_into().unwrap());
    let seq = u32::from_be_bytes(f[18..22].try_into().unwrap());
    let len = u32::from_be_bytes(f[22..26].try_into().unwrap()) as usize;
    if len != f.len() {
        return Err(format!(
            "stream {stream} seq {seq}: len {} but frame says {len}",
            f.len()
        ));
    }
    for (i, &b) in f[26..].iter().enumerate() {
        let want = (seq as usize)
            .wrapping_mul(31)
            .wrapping_add(i)
            .wrapping_add(stream as usize) as u8;
        if b != want {
            return Err(format!(
                "stream {stream} seq {seq}: payload byte {i} is {b:#x}, want {want:#x}"
            ));
        }
    }
    Ok((src, stream, seq))
}

impl Port<'_> {
    /// A ring by its `ring_ofs` value.
    pub fn uring_at(&self, ofs: i64) -> URing {
        let off = (self.reg.nr_offset as i64 + ofs) as u64;
        URing::new(self.addr(off), off)
    }

    /// Write `data` into slot `i` of `ring` (buffer and len).
    pub fn put(&self, ring: &URing, i: u32, data: &[u8]) {
        let s = ring.slot(i);
        let b = self.buf(ring, s.buf_idx);
        // SAFETY: the slot's buffer holds nr_buf_size >= data bytes.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), b, data.len()) };
        ring.set_slot(
            i,
            NetmapSlot {
                len: data.len() as u16,
                ..s
            },
        );
    }
}

// ----------------------------------------------------------------------
// VALE control requests (§8.5, §8.6)

pub fn attach_mode(
    env: &Env,
    np: &NetmapPriv<HostPlatform>,
    name: &str,
    mode: u32,
    ringid: u16,
) -> Result<u32, Errno> {
    let mut a = NmreqValeAttach::zeroed();
    a.reg.nr_mode = mode;
    a.reg.nr_ringid = ringid;
    env.ctrl(np, NETMAP_REQ_VALE_ATTACH, name, Some(&mut a))?;
    Ok(a.port_index)
}

pub fn attach(env: &Env, np: &NetmapPriv<HostPlatform>, name: &str) -> Result<u32, Errno> {
    attach_mode(env, np, name, NR_REG_ALL_NIC, 0)
}

pub fn detach(env: &Env, np: &NetmapPriv<HostPlatform>, name: &str) -> Result<u32, Errno> {
    let mut d = NmreqValeDetach::zeroed();
    env.ctrl(np, NETMAP_REQ_VALE_DETACH, name, Some(&mut d))?;
    Ok(d.port_index)
}

/// VALE_LIST of one name: (bridge, port).
pub fn list_one(env: &Env, np: &NetmapPriv<HostPlatform>, name: &str) -> Result<(u16, u32), Errno> {
    let mut l = NmreqValeList::zeroed();
    env.ctrl(np, NETMAP_REQ_VALE_LIST, name, Some(&mut l))?;
    Ok((l.nr_bridge_idx, l.nr_port_idx))
}

/// Every port of every switch, as vale-ctl enumerates them.
pub fn list_all(env: &Env, np: &NetmapPriv<HostPlatform>) -> Vec<(String, u16, u32)> {
    let mut out = Vec::new();
    let mut l = NmreqValeList::zeroed();
    loop {
        match env.ctrl(np, NETMAP_REQ_VALE_LIST, "", Some(&mut l)) {
            Ok(h) => {
                let n = h.nr_name.iter().position(|&c| c == 0).unwrap_or(64);
                out.push((
                    String::from_utf8_lossy(&h.nr_name[..n]).into_owned(),
                    l.nr_bridge_idx,
                    l.nr_port_idx,
                ));
                l.nr_port_idx += 1;
            }
            Err(e) => {
                assert_eq!(e, Errno::ENOENT);
                return out;
            }
        }
    }
}

pub fn newif(
    env: &Env,
    np: &NetmapPriv<HostPlatform>,
    name: &str,
    body: NmreqValeNewif,
) -> Result<NmreqValeNewif, Errno> {
    let mut b = body;
    env.ctrl(np, NETMAP_REQ_VALE_NEWIF, name, Some(&mut b))?;
    Ok(b)
}

pub fn delif(env: &Env, np: &NetmapPriv<HostPlatform>, name: &str) -> Result<(), Errno> {
    env.ctrl::<NmreqValeList>(np, NETMAP_REQ_VALE_DELIF, name, None)
        .map(|_| ())
}
