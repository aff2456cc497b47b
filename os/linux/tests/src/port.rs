//! A minimal netmap client for the tests: register a port through
//! NIOCCTRL, map its region, and move frames through its rings.
//!
//! The rings live in memory the kernel also writes: every access is a
//! volatile read or write of one field through raw pointers, bounds-checked
//! against the mapping.

use crate::sys::{Fd, Mapping, errno_name};
use netmap_uapi::*;
use std::ptr;

/// A registered, mapped port.
#[derive(Debug)]
pub struct Port {
    pub name: String,
    pub reg: NmreqRegister,
    // Field order: unmap before closing the fd.
    pub map: Mapping,
    pub fd: Fd,
}

/// NIOCCTRL REGISTER on a fresh fd; returns the fd and the body as written
/// back by the kernel, or the errno.
pub fn register(name: &str, reg: NmreqRegister) -> Result<(Fd, NmreqRegister), i32> {
    let fd = Fd::open_netmap().map_err(|_| libc::ENODEV)?;
    let reg = register_on(&fd, name, reg)?;
    Ok((fd, reg))
}

/// NIOCCTRL REGISTER on `fd`.
pub fn register_on(fd: &Fd, name: &str, mut reg: NmreqRegister) -> Result<NmreqRegister, i32> {
    let mut h = NmreqHeader::new(NETMAP_REQ_REGISTER, name.as_bytes());
    h.nr_body = ptr::addr_of_mut!(reg) as u64;
    fd.ioctl_ptr(NIOCCTRL, &mut h)?;
    Ok(reg)
}

/// A REGISTER body with mode ALL_NIC and everything else 0 (defaults).
pub fn all_nic() -> NmreqRegister {
    NmreqRegister {
        nr_mode: NR_REG_ALL_NIC,
        ..Default::default()
    }
}

/// A view of one ring in a mapping.
#[derive(Debug, Clone, Copy)]
pub struct Ring<'a> {
    p: *mut NetmapRing,
    map: &'a Mapping,
}

impl Port {
    /// Registers `name` with `reg` and maps the whole region.
    pub fn open_with(name: &str, reg: NmreqRegister) -> Result<Port, String> {
        let (fd, reg) =
            register(name, reg).map_err(|e| format!("REGISTER {name}: {}", errno_name(e)))?;
        let map = fd
            .mmap(reg.nr_memsize as usize, 0)
            .map_err(|e| format!("mmap {name} ({} bytes): {}", reg.nr_memsize, errno_name(e)))?;
        Ok(Port {
            name: name.to_string(),
            reg,
            map,
            fd,
        })
    }

    /// Registers `name` (ALL_NIC, default sizes) and maps it.
    pub fn open(name: &str) -> Result<Port, String> {
        Self::open_with(name, all_nic())
    }

    /// Pointer to `len` bytes at region offset `off`, checked.
    pub fn at(&self, off: u64, len: usize) -> Result<*mut u8, String> {
        at(&self.map, off as i64, len)
    }

    /// The netmap_if (a copy of the fixed part).
    pub fn nifp(&self) -> Result<NetmapIf, String> {
        let p = self.at(self.reg.nr_offset, size_of::<NetmapIf>())?;
        // SAFETY: in bounds (checked), aligned (kernel places objects on 64
        // bytes), NetmapIf is plain old data.
        Ok(unsafe { ptr::read_volatile(p.cast::<NetmapIf>()) })
    }

    /// `ring_ofs[i]` of the netmap_if.
    pub fn ring_ofs(&self, i: usize) -> Result<i64, String> {
        let off = self.reg.nr_offset + (NETMAP_IF_RING_OFS_OFFSET + 8 * i) as u64;
        let p = self.at(off, 8)?;
        // SAFETY: in bounds (checked) and 8-aligned.
        Ok(unsafe { ptr::read_volatile(p.cast::<i64>()) })
    }

    fn ring_at(&self, idx: usize) -> Result<Ring<'_>, String> {
        let ofs = self.ring_ofs(idx)?;
        if ofs == 0 {
            return Err(format!(
                "{}: ring_ofs[{idx}] is 0 (ring not bound)",
                self.name
            ));
        }
        let off = self.reg.nr_offset as i64 + ofs;
        let p = at(&self.map, off, size_of::<NetmapRing>())?;
        Ok(Ring {
            p: p.cast(),
            map: &self.map,
        })
    }

    /// TX ring `i`.
    pub fn tx(&self, i: usize) -> Result<Ring<'_>, String> {
        self.ring_at(i)
    }

    /// RX ring `i`.
    pub fn rx(&self, i: usize) -> Result<Ring<'_>, String> {
        let n = self.nifp()?;
        self.ring_at(i + n.ni_tx_rings as usize + n.ni_host_tx_rings as usize)
    }

    pub fn txsync(&self) -> Result<(), String> {
        self.fd
            .ioctl_val(NIOCTXSYNC, 0)
            .map_err(|e| format!("{}: NIOCTXSYNC: {}", self.name, errno_name(e)))
    }

    pub fn rxsync(&self) -> Result<(), String> {
        self.fd
            .ioctl_val(NIOCRXSYNC, 0)
            .map_err(|e| format!("{}: NIOCRXSYNC: {}", self.name, errno_name(e)))
    }

    /// Puts as many `frames` as fit into TX ring 0 and txsyncs; returns how
    /// many were queued.
    pub fn send(&self, frames: &[Vec<u8>]) -> Result<usize, String> {
        let r = self.tx(0)?;
        let mut head = r.head();
        let mut n = 0;
        for f in frames {
            if head == r.tail() {
                break;
            }
            r.put(head, f)?;
            head = r.next(head);
            n += 1;
        }
        r.set_head_cur(head);
        self.txsync()?;
        Ok(n)
    }

    /// Rxsyncs RX ring 0 and takes every frame in [head, tail).
    pub fn recv(&self) -> Result<Vec<Vec<u8>>, String> {
        self.rxsync()?;
        let r = self.rx(0)?;
        let mut out = Vec::new();
        let (mut h, t) = (r.head(), r.tail());
        while h != t {
            out.push(r.get(h)?);
            h = r.next(h);
        }
        r.set_head_cur(t);
        Ok(out)
    }
}

/// Pointer to `len` bytes at offset `off` of `map`, or an error if outside.
fn at(map: &Mapping, off: i64, len: usize) -> Result<*mut u8, String> {
    if off < 0 || (off as u64).saturating_add(len as u64) > map.len as u64 {
        return Err(format!(
            "offset {off}+{len} outside the {}-byte region",
            map.len
        ));
    }
    // SAFETY: within the mapping (checked above).
    Ok(unsafe { map.ptr.add(off as usize) })
}

macro_rules! field {
    ($self:ident, $f:ident) => {{
        let p = $self.field_ptr(std::mem::offset_of!(NetmapRing, $f));
        // SAFETY: field_ptr points into a whole NetmapRing inside the
        // mapping (checked at construction); the field is naturally aligned.
        unsafe { ptr::read_volatile(p) }
    }};
}

impl Ring<'_> {
    /// Pointer to the field at byte offset `off` of the ring header.
    fn field_ptr<T>(&self, off: usize) -> *mut T {
        self.p.cast::<u8>().wrapping_add(off).cast::<T>()
    }

    fn write_u32(&self, off: usize, v: u32) {
        let p = self.field_ptr::<u32>(off);
        // SAFETY: a u32 field of a NetmapRing inside the mapping (checked at
        // construction), naturally aligned; the user owns these fields.
        unsafe { ptr::write_volatile(p, v) };
    }

    pub fn num_slots(&self) -> u32 {
        field!(self, num_slots)
    }
    /// Writes the ring's `flags` (NR_TIMESTAMP, NR_FORWARD).
    pub fn set_flags(&self, v: u32) {
        self.write_u32(std::mem::offset_of!(NetmapRing, flags), v);
    }
    pub fn head(&self) -> u32 {
        field!(self, head)
    }
    pub fn cur(&self) -> u32 {
        field!(self, cur)
    }
    pub fn tail(&self) -> u32 {
        field!(self, tail)
    }
    pub fn buf_size(&self) -> u32 {
        field!(self, nr_buf_size)
    }
    pub fn buf_ofs(&self) -> i64 {
        field!(self, buf_ofs)
    }
    pub fn dir(&self) -> u16 {
        field!(self, dir)
    }
    pub fn ringid(&self) -> u16 {
        field!(self, ringid)
    }
    pub fn next(&self, i: u32) -> u32 {
        nm_ring_next(self.num_slots(), i)
    }
    pub fn space(&self) -> u32 {
        nm_ring_space(self.num_slots(), self.head(), self.tail())
    }

    /// Writes head then cur (like the reference helpers: cur first is for
    /// CSB; for rings any order is fine).
    pub fn set_head_cur(&self, v: u32) {
        self.write_u32(std::mem::offset_of!(NetmapRing, head), v);
        self.write_u32(std::mem::offset_of!(NetmapRing, cur), v);
    }

    /// Raw writes for the hostile tests.
    pub fn poke(&self, head: u32, cur: u32, tail: u32) {
        self.write_u32(std::mem::offset_of!(NetmapRing, head), head);
        self.write_u32(std::mem::offset_of!(NetmapRing, cur), cur);
        self.write_u32(std::mem::offset_of!(NetmapRing, tail), tail);
    }

    fn slot_ptr(&self, i: u32) -> Result<*mut NetmapSlot, String> {
        if i >= self.num_slots() {
            return Err(format!("slot {i} >= num_slots {}", self.num_slots()));
        }
        let off = NETMAP_RING_SLOTS_OFFSET + 16 * i as usize;
        // Check against the mapping through the ring's own address.
        let base = self.map.ptr as usize;
        let addr = self.p as usize + off;
        if addr + 16 > base + self.map.len {
            return Err(format!("slot {i} outside the mapping"));
        }
        Ok(addr as *mut NetmapSlot)
    }

    /// A copy of slot `i`.
    pub fn slot(&self, i: u32) -> Result<NetmapSlot, String> {
        let p = self.slot_ptr(i)?;
        // SAFETY: in bounds (checked), 8-aligned, plain old data.
        Ok(unsafe { ptr::read_volatile(p) })
    }

    /// Overwrites slot `i`.
    pub fn set_slot(&self, i: u32, s: NetmapSlot) -> Result<(), String> {
        let p = self.slot_ptr(i)?;
        // SAFETY: in bounds (checked), 8-aligned, plain old data.
        unsafe { ptr::write_volatile(p, s) };
        Ok(())
    }

    /// Pointer to buffer `idx` (checked against the mapping).
    pub fn buf(&self, idx: u32) -> Result<*mut u8, String> {
        let base = self.map.ptr as i64;
        let off = self.p as i64 - base + self.buf_ofs() + idx as i64 * self.buf_size() as i64;
        at(self.map, off, self.buf_size() as usize)
    }

    /// Copies `data` into the buffer of slot `i` and sets its length.
    pub fn put(&self, i: u32, data: &[u8]) -> Result<(), String> {
        let mut s = self.slot(i)?;
        if data.len() > self.buf_size() as usize {
            return Err(format!("frame of {} bytes > buffer size", data.len()));
        }
        let b = self.buf(s.buf_idx)?;
        // SAFETY: b has buf_size bytes in the mapping (checked by buf()).
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), b, data.len()) };
        s.len = data.len() as u16;
        s.flags = 0;
        self.set_slot(i, s)
    }

    /// The data of slot `i` (`len` bytes of its buffer).
    pub fn get(&self, i: u32) -> Result<Vec<u8>, String> {
        let s = self.slot(i)?;
        let len = (s.len as usize).min(self.buf_size() as usize);
        let b = self.buf(s.buf_idx)?;
        let mut v = vec![0u8; len];
        // SAFETY: b has buf_size >= len bytes in the mapping.
        unsafe { ptr::copy_nonoverlapping(b, v.as_mut_ptr(), len) };
        Ok(v)
    }
}

/// An Ethernet frame of `len` bytes: dst, src, ethertype 0x88b5 (local
/// experimental), a sequence number, then a pattern derived from it.
pub fn frame(dst: [u8; 6], src: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len.max(18));
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(&seq.to_be_bytes());
    while f.len() < len {
        f.push((seq as usize + f.len()) as u8);
    }
    f
}

/// Checks a frame built by [`frame`]; returns its sequence number.
pub fn check_frame(f: &[u8], src: [u8; 6]) -> Result<u32, String> {
    if f.len() < 18 || f[6..12] != src || f[12..14] != [0x88, 0xb5] {
        return Err(format!(
            "unexpected frame header {:02x?}",
            &f[..f.len().min(18)]
        ));
    }
    let seq = u32::from_be_bytes([f[14], f[15], f[16], f[17]]);
    for (i, &b) in f.iter().enumerate().skip(18) {
        if b != (seq as usize + i) as u8 {
            return Err(format!("frame {seq}: payload byte {i} is {b:#x}"));
        }
    }
    Ok(seq)
}

pub const BCAST: [u8; 6] = [0xff; 6];

/// A locally administered unicast MAC ending in `n`.
pub fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}
