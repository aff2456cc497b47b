//! An in-memory region laid out like the kernel's (netmap_if, rings, buffers; spec
//! §3 and §5) with a tiny "kernel" that plays the other side of the rings, so that
//! ring code — the library's and the tools' — can be tested without the kernel
//! module.
//!
//! ```
//! use netmap_uapi::user::testing::{FakeConfig, FakeRegion};
//!
//! let fake = FakeRegion::new(FakeConfig::default()).unwrap();
//! fake.tx_ring(0).send(b"hello").unwrap();
//! assert_eq!(fake.txsync(0), vec![b"hello".to_vec()]);
//! assert!(fake.deliver(0, b"world"));
//! let mut rx = fake.rx_ring(0);
//! assert_eq!(rx.recv().unwrap().data(), b"world");
//! ```

use super::region::Region;
use super::ring::{RxRing, TxRing};
use super::sys::Mapping;
use crate::abi::{NETMAP_IF_RING_OFS_OFFSET, NetmapIf, NetmapSlot};
use crate::consts::{NETMAP_MAX_FRAGS, NS_BUF_CHANGED, NS_MOREFRAG};
use crate::ring::{nm_ring_next, nm_ring_space};
use core::cell::Cell;
use std::sync::Arc;

/// Geometry of a [`FakeRegion`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FakeConfig {
    /// Hardware TX rings.
    pub tx_rings: u16,
    /// Hardware RX rings.
    pub rx_rings: u16,
    /// Slots per ring.
    pub slots: u32,
    /// Buffer size.
    pub buf_size: u32,
    /// Extra buffers in the `ni_bufs_head` list.
    pub extra_bufs: u32,
}

impl Default for FakeConfig {
    /// One ring pair of 8 slots with 2048-byte buffers, no extra buffers.
    fn default() -> Self {
        Self {
            tx_rings: 1,
            rx_rings: 1,
            slots: 8,
            buf_size: 2048,
            extra_bufs: 0,
        }
    }
}

/// An in-memory region with rings and a simulated kernel side (see the module
/// documentation). TX rings behave like VALE ports (everything is consumed at
/// txsync); RX rings are filled with [`FakeRegion::deliver`].
#[derive(Debug)]
pub struct FakeRegion {
    region: Region,
    /// Kernel `hwcur` of each TX ring, then each RX ring.
    hwcur: Vec<Cell<u32>>,
    ntx: usize,
}

fn up(x: usize, a: usize) -> usize {
    x.div_ceil(a) * a
}

impl FakeRegion {
    /// Builds the region: netmap_if at offset 0 (with one unbound fake host ring
    /// per direction), rings on 256-byte boundaries, then the buffers (indexes 0
    /// and 1 reserved, each slot with its own buffer, `len = buf_size`).
    pub fn new(cfg: FakeConfig) -> std::io::Result<Self> {
        let (t, r, n) = (
            usize::from(cfg.tx_rings),
            usize::from(cfg.rx_rings),
            cfg.slots as usize,
        );
        let bs = cfg.buf_size.max(64) as usize;
        let nifp_size = up(NETMAP_IF_RING_OFS_OFFSET + 8 * (t + 1 + r + 1), 256);
        let ring_size = up(256 + 16 * n, 256);
        let rings_off = nifp_size;
        let bufs_off = up(rings_off + (t + r) * ring_size, bs.max(4096));
        let nbufs = 2 + (t + r) * n + cfg.extra_bufs as usize;
        let len = up(bufs_off + nbufs * bs, 4096);
        let map = Mapping::anonymous(len)?;
        let nifp = NetmapIf {
            ni_name: crate::abi::c_name(b"fake"),
            ni_tx_rings: u32::from(cfg.tx_rings),
            ni_rx_rings: u32::from(cfg.rx_rings),
            ni_host_tx_rings: 1,
            ni_host_rx_rings: 1,
            ..NetmapIf::default()
        };
        let w = "fake region too small";
        map.write(0, nifp).expect(w);
        let mut next_buf = 2u32;
        for k in 0..t + r {
            let off = rings_off + k * ring_size;
            let is_tx = k < t;
            // ring_ofs order: TX rings, fake host TX (0), RX rings, fake host RX (0).
            let entry = if is_tx { k } else { k + 1 };
            map.write(NETMAP_IF_RING_OFS_OFFSET + 8 * entry, off as i64)
                .expect(w);
            map.write(off, bufs_off as i64 - off as i64).expect(w);
            map.write(off + 8, cfg.slots).expect(w);
            map.write(off + 12, bs as u32).expect(w);
            map.write(off + 16, if is_tx { k } else { k - t } as u16)
                .expect(w);
            map.write(off + 18, u16::from(is_tx)).expect(w);
            map.write(off + 28, if is_tx { cfg.slots - 1 } else { 0 })
                .expect(w);
            for i in 0..n {
                let slot = NetmapSlot {
                    buf_idx: next_buf,
                    len: bs as u16,
                    flags: 0,
                    ptr: 0,
                };
                map.write(off + 256 + 16 * i, slot).expect(w);
                next_buf += 1;
            }
        }
        let mut head = 0u32;
        for _ in 0..cfg.extra_bufs {
            map.write(bufs_off + next_buf as usize * bs, head).expect(w);
            head = next_buf;
            next_buf += 1;
        }
        map.write(32, head).expect(w);
        let region = Region::parse(Arc::new(map), 0)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok(Self {
            region,
            hwcur: (0..t + r).map(|_| Cell::new(0)).collect(),
            ntx: t,
        })
    }

    #[cfg(test)]
    pub(crate) fn region_ref(&self) -> &Region {
        &self.region
    }

    /// A view of TX ring `i`, unless it is out of range or a view of it exists.
    pub fn try_tx_ring(&self, i: u16) -> Option<TxRing<'_>> {
        self.region.tx_ring(i).ok()
    }

    /// A view of RX ring `i`, unless it is out of range or a view of it exists.
    pub fn try_rx_ring(&self, i: u16) -> Option<RxRing<'_>> {
        self.region.rx_ring(i).ok()
    }

    /// A view of TX ring `i` (panics if out of range or already borrowed).
    pub fn tx_ring(&self, i: u16) -> TxRing<'_> {
        self.region.tx_ring(i).expect("fake TX ring")
    }

    /// A view of RX ring `i` (panics if out of range or already borrowed).
    pub fn rx_ring(&self, i: u16) -> RxRing<'_> {
        self.region.rx_ring(i).expect("fake RX ring")
    }

    /// Bound TX ring indexes.
    pub fn tx_rings(&self) -> core::ops::Range<u16> {
        self.region.tx.bound.clone()
    }

    /// Bound RX ring indexes.
    pub fn rx_rings(&self) -> core::ops::Range<u16> {
        self.region.rx.bound.clone()
    }

    /// Extra buffers in the list.
    pub fn extra_buf_count(&self) -> usize {
        self.region.extra_count()
    }

    /// Takes a buffer from the extra-buffer list.
    pub fn take_extra_buf(&self) -> Option<super::ExtraBuf> {
        self.region.take_extra()
    }

    /// Puts a detached buffer back into the extra-buffer list.
    pub fn put_extra_buf(&self, buf: super::ExtraBuf) -> Result<(), super::ExtraBuf> {
        self.region.put_extra(buf)
    }

    /// The bytes of a detached buffer.
    pub fn extra_buf(&self, buf: &super::ExtraBuf) -> Option<&[u8]> {
        self.region.extra_bytes(buf)
    }

    fn layout(&self, tx: bool, i: u16) -> super::ring::RingLayout {
        let d = if tx { &self.region.tx } else { &self.region.rx };
        d.rings[usize::from(i)].expect("fake ring")
    }

    fn map(&self) -> &Mapping {
        &self.region.map
    }

    fn slot(&self, l: &super::ring::RingLayout, i: u32) -> NetmapSlot {
        self.map()
            .read(l.off + 256 + 16 * i as usize)
            .expect("slot")
    }

    fn set_slot(&self, l: &super::ring::RingLayout, i: u32, s: NetmapSlot) {
        self.map()
            .write(l.off + 256 + 16 * i as usize, s)
            .expect("slot");
    }

    fn header(&self, l: &super::ring::RingLayout, field: usize) -> u32 {
        self.map().read(l.off + field).expect("ring header")
    }

    /// The kernel's txsync of TX ring `i`, VALE style: takes the frames in
    /// `[hwcur, head)` (joining `NS_MOREFRAG` chains; an unfinished chain at `head`
    /// is left for the next sync), clears `NS_BUF_CHANGED` on them and makes the
    /// whole ring free again (`tail = head - 1`).
    pub fn txsync(&self, i: u16) -> Vec<Vec<u8>> {
        let l = self.layout(true, i);
        let n = l.num_slots;
        let head = self.header(&l, 20);
        let hw = &self.hwcur[usize::from(i)];
        let mut out = Vec::new();
        let mut cur = Vec::new();
        let mut j = hw.get();
        let mut done = j;
        while j != head && j < n {
            let mut s = self.slot(&l, j);
            if let Some(off) = l.buf_off(s.buf_idx) {
                let len = usize::from(s.len).min(l.buf_size as usize);
                cur.extend_from_slice(self.map().bytes(off, len).expect("buffer"));
            }
            let more = s.flags & NS_MOREFRAG != 0;
            s.flags &= !NS_BUF_CHANGED;
            self.set_slot(&l, j, s);
            j = nm_ring_next(n, j);
            if !more {
                out.push(core::mem::take(&mut cur));
                done = j;
            }
        }
        hw.set(done);
        let tail = if done == 0 { n - 1 } else { done - 1 };
        self.map().write(l.off + 28, tail).expect("tail");
        out
    }

    /// The kernel's rxsync of RX ring `i`: releases `[hwcur, head)`.
    pub fn rxsync(&self, i: u16) {
        let l = self.layout(false, i);
        let head = self.header(&l, 20);
        if head < l.num_slots {
            self.hwcur[self.ntx + usize::from(i)].set(head);
        }
    }

    /// Free slots the kernel may fill in RX ring `i` (one slot is kept unused).
    pub fn rx_room(&self, i: u16) -> u32 {
        let l = self.layout(false, i);
        let tail = self.header(&l, 28);
        let hw = self.hwcur[self.ntx + usize::from(i)].get();
        if tail == hw {
            l.num_slots - 1
        } else {
            nm_ring_space(l.num_slots, tail, hw) - 1
        }
    }

    /// Delivers `frame` into RX ring `i` at `tail` (split into `NS_MOREFRAG`
    /// fragments if longer than a buffer) and advances `tail`; `false` if there is
    /// no room (the frame is dropped, as VALE does).
    pub fn deliver(&self, i: u16, frame: &[u8]) -> bool {
        let l = self.layout(false, i);
        let bs = l.buf_size as usize;
        let frags = frame.len().div_ceil(bs).max(1);
        if frags > NETMAP_MAX_FRAGS as usize || (self.rx_room(i) as usize) < frags {
            return false;
        }
        let mut j = self.header(&l, 28);
        let mut chunks = frame.chunks(bs);
        for k in 0..frags {
            let chunk = chunks.next().unwrap_or(&[]);
            let mut s = self.slot(&l, j);
            let off = l.buf_off(s.buf_idx).expect("fake buffers are valid");
            self.map().copy_in(off, chunk).expect("buffer");
            s.len = chunk.len() as u16;
            s.flags = if k + 1 < frags { NS_MOREFRAG } else { 0 };
            self.set_slot(&l, j, s);
            j = nm_ring_next(l.num_slots, j);
        }
        self.map().write(l.off + 28, j).expect("tail");
        true
    }

    /// Slot `j` of TX (`tx = true`) or RX ring `i`, as the kernel sees it.
    pub fn kernel_slot(&self, tx: bool, i: u16, j: u32) -> NetmapSlot {
        self.slot(&self.layout(tx, i), j)
    }
}
