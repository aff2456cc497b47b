//! A bound port's view of its memory region: the `netmap_if`, the bound rings
//! (from the non-zero `ring_ofs` entries, spec §3.3) and the extra-buffer list
//! (spec §5.4).

use super::ring::{ExtraBuf, RingLayout, RxRing, TxRing};
use super::sys::Mapping;
use crate::abi::{NETMAP_IF_RING_OFS_OFFSET, NetmapIf};
use core::ops::Range;
use std::sync::Arc;

/// Offset of `ni_bufs_head` in the netmap_if.
const NI_BUFS_HEAD: usize = 32;
/// More `ring_ofs` entries than this is taken as garbage.
const MAX_RINGS: u64 = 4 * 1024;

/// The rings of one direction: layouts by kernel ring index (`None` = not bound)
/// and the range of bound rings.
#[derive(Debug, Clone)]
pub(crate) struct Dir {
    pub(crate) rings: Vec<Option<RingLayout>>,
    pub(crate) bound: Range<u16>,
}

impl Dir {
    /// libnetmap's scan: the first run of non-zero entries.
    fn bound_range(rings: &[Option<RingLayout>]) -> Range<u16> {
        let first = rings
            .iter()
            .position(Option::is_some)
            .unwrap_or(rings.len());
        let last = rings[first..]
            .iter()
            .position(Option::is_none)
            .map_or(rings.len(), |k| first + k);
        first as u16..last as u16
    }
}

/// A port's region view (see the module doc).
#[derive(Debug)]
pub(crate) struct Region {
    pub(crate) map: Arc<Mapping>,
    pub(crate) nifp_off: usize,
    pub(crate) nifp: NetmapIf,
    pub(crate) tx: Dir,
    pub(crate) rx: Dir,
}

impl Region {
    /// Parses the netmap_if at `nifp_off` and validates every bound ring.
    pub(crate) fn parse(map: Arc<Mapping>, nifp_off: usize) -> Result<Self, String> {
        if !nifp_off.is_multiple_of(8) {
            return Err(format!("netmap_if offset {nifp_off} is not 8-byte aligned"));
        }
        let nifp: NetmapIf = map
            .read(nifp_off)
            .ok_or_else(|| format!("netmap_if at offset {nifp_off} is outside the region"))?;
        let total = nifp.num_ring_ofs();
        if total > MAX_RINGS {
            return Err(format!("netmap_if announces {total} rings"));
        }
        let ofs_base = nifp_off + NETMAP_IF_RING_OFS_OFFSET;
        let ring_at = |k: u64| -> Result<Option<RingLayout>, String> {
            let ofs: i64 = map
                .read(ofs_base + 8 * k as usize)
                .ok_or_else(|| format!("ring_ofs[{k}] is outside the region"))?;
            if ofs == 0 {
                return Ok(None);
            }
            let off = i64::try_from(nifp_off)
                .ok()
                .and_then(|n| n.checked_add(ofs))
                .and_then(|o| usize::try_from(o).ok())
                .ok_or_else(|| format!("ring_ofs[{k}] = {ofs} points before the region"))?;
            RingLayout::read(&map, off).map(Some)
        };
        let ntx = u64::from(nifp.ni_tx_rings) + u64::from(nifp.ni_host_tx_rings);
        let nrx = u64::from(nifp.ni_rx_rings) + u64::from(nifp.ni_host_rx_rings);
        let tx = (0..ntx).map(ring_at).collect::<Result<Vec<_>, _>>()?;
        let rx = (ntx..ntx + nrx)
            .map(ring_at)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            nifp_off,
            nifp,
            tx: Dir {
                bound: Dir::bound_range(&tx),
                rings: tx,
            },
            rx: Dir {
                bound: Dir::bound_range(&rx),
                rings: rx,
            },
            map,
        })
    }

    /// A view of TX ring `i`: `Err` with a reason if it is not bound or already
    /// borrowed.
    pub(crate) fn tx_ring(&self, i: u16) -> Result<TxRing<'_>, &'static str> {
        let l = self.tx.rings.get(usize::from(i)).copied().flatten();
        let l = l.ok_or("TX ring not bound to this port")?;
        TxRing::claim(&self.map, l).ok_or("a view of this TX ring exists")
    }

    /// A view of RX ring `i` (see [`Region::tx_ring`]).
    pub(crate) fn rx_ring(&self, i: u16) -> Result<RxRing<'_>, &'static str> {
        let l = self.rx.rings.get(usize::from(i)).copied().flatten();
        let l = l.ok_or("RX ring not bound to this port")?;
        RxRing::claim(&self.map, l).ok_or("a view of this RX ring exists")
    }

    /// Any bound ring's layout: all rings of a region address the same buffers.
    fn any_layout(&self) -> Option<RingLayout> {
        self.tx
            .rings
            .iter()
            .chain(self.rx.rings.iter())
            .find_map(|r| *r)
    }

    /// `ni_bufs_head`.
    pub(crate) fn bufs_head(&self) -> u32 {
        self.map.read(self.nifp_off + NI_BUFS_HEAD).unwrap_or(0)
    }

    fn set_bufs_head(&self, v: u32) {
        let _ = self.map.write(self.nifp_off + NI_BUFS_HEAD, v);
    }

    /// The buffer offset of `idx` if it is a valid extra buffer (index ≥ 2, inside
    /// the region).
    fn extra_off(&self, idx: u32) -> Option<usize> {
        if idx < 2 {
            return None;
        }
        self.any_layout()?.buf_off(idx)
    }

    /// Number of buffers in the extra-buffer list (stops at an invalid index or
    /// after as many steps as there are buffers).
    pub(crate) fn extra_count(&self) -> usize {
        let Some(l) = self.any_layout() else {
            return 0;
        };
        let mut n = 0usize;
        let mut idx = self.bufs_head();
        while let Some(off) = self.extra_off(idx) {
            n += 1;
            if n > l.nbufs as usize {
                break;
            }
            idx = self.map.read(off).unwrap_or(0);
        }
        n
    }

    /// Pops the first buffer of the extra-buffer list.
    pub(crate) fn take_extra(&self) -> Option<ExtraBuf> {
        let idx = self.bufs_head();
        let off = self.extra_off(idx)?;
        let next: u32 = self.map.read(off)?;
        self.set_bufs_head(next);
        let _ = self.map.write::<u32>(off, 0);
        Some(ExtraBuf {
            idx,
            region: self.map.id(),
        })
    }

    /// Pushes `buf` at the head of the extra-buffer list (so that the kernel frees
    /// it when the port is closed). Gives it back if it belongs to another region.
    pub(crate) fn put_extra(&self, buf: ExtraBuf) -> Result<(), ExtraBuf> {
        if buf.region != self.map.id() {
            return Err(buf);
        }
        let Some(off) = self.extra_off(buf.idx) else {
            return Err(buf);
        };
        let _ = self.map.write::<u32>(off, self.bufs_head());
        self.set_bufs_head(buf.idx);
        Ok(())
    }

    /// The bytes of a detached buffer.
    pub(crate) fn extra_bytes(&self, buf: &ExtraBuf) -> Option<&[u8]> {
        if buf.region != self.map.id() {
            return None;
        }
        let l = self.any_layout()?;
        self.map
            .bytes(self.extra_off(buf.idx)?, l.buf_size as usize)
    }

    /// The bytes of a detached buffer, writable.
    #[allow(unsafe_code)]
    pub(crate) fn extra_bytes_mut<'s>(&'s self, buf: &'s mut ExtraBuf) -> Option<&'s mut [u8]> {
        if buf.region != self.map.id() {
            return None;
        }
        let l = self.any_layout()?;
        let off = self.extra_off(buf.idx)?;
        // SAFETY: `buf` is the only token of this buffer of this region (tokens are
        // not `Clone` and are created only when a buffer leaves a ring slot or the
        // extra-buffer list), so while it is mutably borrowed no other reference to
        // the buffer exists; a detached buffer is not in any ring, so the kernel
        // does not access it.
        unsafe { self.map.bytes_mut(off, l.buf_size as usize) }
    }
}
