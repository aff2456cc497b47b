//! Shared pieces of the fuzz targets: a byte reader that turns the fuzzer's
//! input into decisions, and a small simulated userspace over
//! `netmap_core::Netmap<HostPlatform>` (the same entry points the Linux
//! module calls: `open`, `ioctl`, `poll`, `mmap_page`, `release`).
//!
//! Userspace writes to the shared rings go through the core's own
//! `RingPtr`/`BufRef` accessors (volatile/atomic, bounds-checked by the
//! kernel's sizes), which is what a process writing its mapping does; the
//! only raw write is [`Port::poke`], a u32 at an arbitrary offset of the
//! mapped region.

use netmap_core::host::HostPlatform;
use netmap_core::kring::Dir;
use netmap_core::mem::{MemParams, PoolParams};
use netmap_core::netmap::{Netmap, NetmapPriv};
use netmap_core::shm::{RingPtr, Slot};
use netmap_core::{Errno, GlobalStats, Params};
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

pub type Nm = Netmap<HostPlatform>;
pub type Np = Box<NetmapPriv<HostPlatform>>;

// ----------------------------------------------------------------------
// Input decoding

/// Reads decisions out of the fuzzer's bytes; past the end every read is 0,
/// so that any prefix of an input is itself a meaningful input.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }
    pub fn u8(&mut self) -> u8 {
        let v = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        v
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }
    /// True with probability about 1/n (`n > 0`).
    pub fn one_in(&mut self, n: u8) -> bool {
        self.u8().is_multiple_of(n)
    }
    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 256 {
            self.u8() as usize % n
        } else {
            self.u32() as usize % n
        }
    }
    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
    /// Up to `max` bytes (length first, then the bytes; short at the end).
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = self.below(max + 1);
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos = start + n;
        &self.data[start..end]
    }
    /// The rest of the input.
    pub fn rest(&mut self) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        self.pos = self.data.len();
        &self.data[start..]
    }
    /// A 32-bit "interesting" value: small, near `n`, or anything.
    pub fn index_like(&mut self, n: u32) -> u32 {
        match self.u8() % 8 {
            0..=3 => u32::from(self.u8()) % n.max(1),
            4 => n.wrapping_add(u32::from(self.u8() % 4)),
            5 => n.wrapping_sub(1 + u32::from(self.u8() % 4)),
            6 => u32::MAX - u32::from(self.u8() % 4),
            _ => self.u32(),
        }
    }
}

// ----------------------------------------------------------------------
// The simulated kernel and userspace

/// Module parameters that keep regions small (the global one has 1024
/// buffers instead of 163840, private ones only what their rings need), so
/// that an input creating several ports runs in well under a millisecond.
/// Every check the core makes is the same as with the defaults.
pub fn small_params(buf_size: u32) -> Params {
    Params {
        global: MemParams {
            if_pool: PoolParams {
                objsize: 1024,
                objtotal: 10,
            },
            ring_pool: PoolParams {
                objsize: 4096,
                objtotal: 8,
            },
            buf_pool: PoolParams {
                objsize: buf_size,
                objtotal: 1024,
            },
        },
        private: MemParams {
            if_pool: PoolParams {
                objsize: 1024,
                objtotal: 1,
            },
            ring_pool: PoolParams {
                objsize: 4096,
                objtotal: 2,
            },
            buf_pool: PoolParams {
                objsize: buf_size,
                objtotal: 4,
            },
        },
        ..Params::default()
    }
}

/// One netmap context and the user address space of the process using it.
pub struct Env {
    pub p: HostPlatform,
    pub nm: Box<Nm>,
}

impl Env {
    pub fn new(params: Params) -> Self {
        let p = HostPlatform::new();
        let nm = Netmap::new(p.clone(), params).expect("netmap context");
        Env { p, nm }
    }

    pub fn open(&self) -> Np {
        self.nm.open().expect("open never fails")
    }

    pub fn stats(&self) -> GlobalStats {
        self.nm.stats()
    }

    /// NIOCCTRL with a well-formed header, `body` and no options; the body
    /// is read back from user memory.
    pub fn ctrl<T: Pod>(
        &self,
        np: &NetmapPriv<HostPlatform>,
        reqtype: u16,
        name: &[u8],
        body: &mut T,
    ) -> Result<(), Errno> {
        let mut hdr = NmreqHeader::new(reqtype, name);
        hdr.nr_version = NETMAP_API;
        let size = body_size(reqtype).min(core::mem::size_of::<T>());
        let baddr = if size > 0 {
            self.p.user_map(&body.as_bytes()[..size])
        } else {
            0
        };
        hdr.nr_body = baddr;
        let haddr = self.p.user_map(hdr.as_bytes());
        let r = self.nm.ioctl(np, NIOCCTRL, haddr);
        if baddr != 0 {
            let b = self.p.user_read(baddr, size).expect("body mapped");
            body.as_bytes_mut()[..size].copy_from_slice(&b);
        }
        r
    }

    /// [`Env::ctrl`] with an option list: `opts` are (type, body after the
    /// 24-byte header) pairs, chained in order in user memory. Returns the
    /// result and each option's status.
    pub fn ctrl_opts<T: Pod>(
        &self,
        np: &NetmapPriv<HostPlatform>,
        reqtype: u16,
        name: &[u8],
        body: &mut T,
        opts: &[(u32, &[u8])],
    ) -> (Result<(), Errno>, Vec<u32>) {
        let mut next = 0u64;
        let mut addrs = Vec::new();
        for (ty, b) in opts.iter().rev() {
            let h = NmreqOption {
                nro_next: next,
                nro_reqtype: *ty,
                nro_status: 0,
                nro_size: (24 + b.len()) as u64,
            };
            let mut v = h.as_bytes().to_vec();
            v.extend_from_slice(b);
            next = self.p.user_map(&v);
            addrs.push(next);
        }
        let mut hdr = NmreqHeader::new(reqtype, name);
        hdr.nr_version = NETMAP_API;
        hdr.nr_options = next;
        let size = body_size(reqtype).min(core::mem::size_of::<T>());
        let baddr = if size > 0 {
            self.p.user_map(&body.as_bytes()[..size])
        } else {
            0
        };
        hdr.nr_body = baddr;
        let haddr = self.p.user_map(hdr.as_bytes());
        let r = self.nm.ioctl(np, NIOCCTRL, haddr);
        if baddr != 0 {
            let b = self.p.user_read(baddr, size).expect("body mapped");
            body.as_bytes_mut()[..size].copy_from_slice(&b);
        }
        let status = addrs
            .iter()
            .rev()
            .map(|&a| {
                let h = self.p.user_read(a, 24).expect("option mapped");
                NmreqOption::from_bytes(&h).map_or(0, |h| h.nro_status)
            })
            .collect();
        (r, status)
    }

    pub fn register(
        &self,
        np: &NetmapPriv<HostPlatform>,
        name: &[u8],
        reg: &mut NmreqRegister,
    ) -> Result<(), Errno> {
        self.ctrl(np, NETMAP_REQ_REGISTER, name, reg)
    }

    /// Open and register `name`; `None` if REGISTER fails.
    pub fn port(&self, name: &[u8], mut reg: NmreqRegister) -> Option<Port> {
        let np = self.open();
        match self.register(&np, name, &mut reg) {
            Ok(()) => Some(Port { np: Some(np), reg }),
            Err(_) => {
                self.nm.release(np);
                None
            }
        }
    }

    /// [`Env::port`] with an option list (see [`Env::ctrl_opts`]).
    pub fn port_opts(
        &self,
        name: &[u8],
        mut reg: NmreqRegister,
        opts: &[(u32, &[u8])],
    ) -> Option<Port> {
        let np = self.open();
        match self
            .ctrl_opts(&np, NETMAP_REQ_REGISTER, name, &mut reg, opts)
            .0
        {
            Ok(()) => Some(Port { np: Some(np), reg }),
            Err(_) => {
                self.nm.release(np);
                None
            }
        }
    }

    pub fn close(&self, mut port: Port) {
        if let Some(np) = port.np.take() {
            self.nm.release(np);
        }
    }

    /// Every kring of every bound port keeps its kernel indexes in range.
    pub fn check_krings(&self, port: &Port) {
        let Some(b) = port.np().binding() else { return };
        for d in Dir::BOTH {
            for k in b.na.krings[d.idx()].iter() {
                let n = k.num_slots;
                let hwcur = k.nr_hwcur.load(core::sync::atomic::Ordering::Acquire);
                let hwtail = k.nr_hwtail.load(core::sync::atomic::Ordering::Acquire);
                assert!(
                    n == 0 || (hwcur < n && hwtail < n),
                    "{}: {d:?} kring {}: hwcur {hwcur} hwtail {hwtail} of {n} slots",
                    b.na.name,
                    k.id
                );
            }
        }
    }
}

/// A registered file and what REGISTER returned.
pub struct Port {
    np: Option<Np>,
    pub reg: NmreqRegister,
}

impl Port {
    pub fn np(&self) -> &NetmapPriv<HostPlatform> {
        self.np.as_deref().expect("open")
    }

    /// Number of rings of direction `d` this file bound.
    pub fn nrings(&self, d: Dir) -> u32 {
        self.np().binding().map_or(0, |b| b.ranges[d.idx()].len())
    }

    /// The `i`-th bound ring of direction `d`, as the user maps it.
    pub fn ring(&self, d: Dir, i: u32) -> Option<RingPtr> {
        let b = self.np().binding()?;
        let r = b.ranges[d.idx()];
        if i >= r.len() {
            return None;
        }
        b.na.kring(d, r.first + i)?.ring()
    }

    /// Whether the `i`-th bound ring of direction `d` is stopped (a monitor
    /// whose parent left netmap mode): its syncs fail with EIO and do not
    /// touch the ring.
    pub fn stopped(&self, d: Dir, i: u32) -> bool {
        let Some(b) = self.np().binding() else {
            return false;
        };
        b.na.kring(d, b.ranges[d.idx()].first + i)
            .is_some_and(|k| k.flags() & netmap_core::kring::NKR_STOPPED != 0)
    }

    /// Buffer size of the port's region.
    pub fn buf_size(&self) -> u32 {
        self.np().binding().map_or(0, |b| b.na.mem.buf_size())
    }

    /// Whether `idx` is a valid buffer of the port's region.
    pub fn buf_valid(&self, idx: u32) -> bool {
        self.np().binding().is_some_and(|b| b.na.mem.buf_valid(idx))
    }

    /// Userspace writes `data` into buffer `idx` (nothing if invalid: a
    /// process cannot write outside its mapping).
    pub fn write_buf(&self, idx: u32, data: &[u8]) -> usize {
        let Some(b) = self.np().binding() else {
            return 0;
        };
        if !b.na.mem.buf_valid(idx) {
            return 0;
        }
        b.na.mem.buf(idx).write(0, data)
    }

    /// Userspace reads `len` bytes of buffer `idx`.
    pub fn read_buf(&self, idx: u32, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        if let Some(b) = self.np().binding() {
            let n = b.na.mem.buf(idx).read(0, &mut v);
            v.truncate(n);
        }
        v
    }

    /// Userspace writes the u32 `v` at region offset `off` (reduced modulo
    /// the region size).
    pub fn poke(&self, nm: &Nm, off: u64, v: u32) {
        let size = self.reg.nr_memsize;
        if size >= 4 {
            poke(nm, self.np(), off % size, v);
        }
    }

    /// A user with good manners: put `frames` in TX ring 0 and txsync.
    /// Returns how many frames were queued.
    pub fn send(&self, nm: &Nm, frames: &[&[u8]]) -> usize {
        let Some(r) = self.ring(Dir::Tx, 0) else {
            return 0;
        };
        let n = r.num_slots();
        let mut head = r.head();
        let mut sent = 0;
        for f in frames {
            if head >= n || nm_ring_space(n, head, r.tail()) == 0 {
                break;
            }
            let s = r.slot(head);
            let len = self.write_buf(s.buf_idx, f);
            r.set_slot(
                head,
                Slot {
                    len: len as u16,
                    flags: 0,
                    ..s
                },
            );
            head = if head + 1 == n { 0 } else { head + 1 };
            sent += 1;
        }
        r.set_head(head);
        r.set_cur(head);
        let _ = nm.ioctl(self.np(), NIOCTXSYNC, 0);
        sent
    }

    /// rxsync and take every frame of RX ring 0.
    pub fn recv(&self, nm: &Nm) -> Vec<Vec<u8>> {
        let _ = nm.ioctl(self.np(), NIOCRXSYNC, 0);
        let mut out = Vec::new();
        let Some(r) = self.ring(Dir::Rx, 0) else {
            return out;
        };
        let n = r.num_slots();
        let mut h = r.head();
        let t = r.tail();
        if h >= n || t >= n {
            return out;
        }
        while h != t {
            let s = r.slot(h);
            out.push(self.read_buf(s.buf_idx, usize::from(s.len)));
            h = if h + 1 == n { 0 } else { h + 1 };
        }
        r.set_head(h);
        r.set_cur(h);
        out
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        assert!(
            self.np.is_none(),
            "a Port must be closed with Env::close (release)"
        );
    }
}

/// Userspace stores the u32 `v` at region offset `off` (rounded down to 4
/// bytes) of the region `np` is bound to; nothing beyond the region.
pub fn poke(nm: &Nm, np: &NetmapPriv<HostPlatform>, off: u64, v: u32) {
    let off = off & !3;
    let Some(page) = nm.mmap_page(np, off & !4095) else {
        return;
    };
    let p = page
        .as_ptr()
        .wrapping_add((off & 4095) as usize)
        .cast::<u32>();
    // SAFETY: `page` is the kernel address of a whole 4096-byte page of the
    // region bound to `np` (mmap_page checked the offset against the region
    // size); `off & 4095` is 4-byte aligned and at most 4092, so the u32 is
    // inside the page. A volatile store is how a process writes its
    // mapping; the core never holds Rust references into shared memory.
    unsafe { p.write_volatile(v) }
}

/// A register body asking for `rings` rings of `slots` slots per direction.
pub fn reg_body(mode: u32, rings: u16, slots: u32) -> NmreqRegister {
    NmreqRegister {
        nr_mode: mode,
        nr_tx_rings: rings,
        nr_rx_rings: rings,
        nr_tx_slots: slots,
        nr_rx_slots: slots,
        ..NmreqRegister::zeroed()
    }
}

/// An Ethernet frame `dst <- src` with a tag and a payload derived from it.
pub fn frame(dst: [u8; 6], src: [u8; 6], tag: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(18)];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12] = 0x88;
    f[13] = 0xb5;
    f[14..18].copy_from_slice(&tag.to_be_bytes());
    for (i, b) in f[18..].iter_mut().enumerate() {
        *b = (tag as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    f
}

/// A clean pair of VALE ports on a switch of its own, kept open during an
/// input: after every step it must still forward a frame intact.
pub struct Witness {
    a: Port,
    b: Port,
    tag: u32,
}

const WA: [u8; 6] = [0x02, 0, 0, 0, 0x77, 0xa];
const WB: [u8; 6] = [0x02, 0, 0, 0, 0x77, 0xb];

impl Witness {
    pub fn new(env: &Env, switch: &str) -> Self {
        let body = reg_body(NR_REG_ALL_NIC, 1, 8);
        let a = env
            .port(format!("{switch}:wa").as_bytes(), body)
            .expect("witness port a");
        let b = env
            .port(format!("{switch}:wb").as_bytes(), body)
            .expect("witness port b");
        Witness { a, b, tag: 0 }
    }

    /// Send one frame a -> b and check that exactly it arrives.
    pub fn check(&mut self, env: &Env) {
        self.tag = self.tag.wrapping_add(1);
        let f = frame(WB, WA, self.tag, 60 + (self.tag as usize % 200));
        assert_eq!(self.a.send(&env.nm, &[&f]), 1, "witness: TX ring full");
        let got = self.b.recv(&env.nm);
        assert_eq!(got, vec![f], "witness: frame not forwarded intact");
    }

    pub fn close(self, env: &Env) {
        env.close(self.a);
        env.close(self.b);
    }
}

/// The end-of-input leak check: `stats()` is back at `base`; once the
/// context itself is gone, no cluster is left allocated.
pub fn finish(env: Env, base: GlobalStats) {
    assert_eq!(env.stats(), base, "stats after closing every file");
    let Env { p, nm } = env;
    drop(nm);
    assert_eq!(
        p.clusters_live(),
        (0, 0),
        "clusters after the context is gone"
    );
    assert_eq!(
        p.pins_live(),
        0,
        "user memory pinned after the context is gone"
    );
}

/// Whether `NETMAP_FUZZ_TRACE` is set: targets then print each step (for
/// reproducing an artifact: `NETMAP_FUZZ_TRACE=1 cargo fuzz run T crash-...`).
pub fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("NETMAP_FUZZ_TRACE").is_some())
}

/// `eprintln!` when [`tracing`] is on.
#[macro_export]
macro_rules! trace {
    ($($t:tt)*) => {
        if $crate::tracing() {
            eprintln!($($t)*);
        }
    };
}
