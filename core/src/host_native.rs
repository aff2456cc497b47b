//! A simulated netmap-aware NIC for host tests of [`crate::native`]:
//! descriptor rings in memory and a fake DMA engine that reads TX buffers
//! onto a "wire" and writes received frames into posted RX buffers, by the
//! addresses the core put in the descriptors, as a device would. It
//! checks what a real device cannot: that every address it is given is a
//! buffer the core vouched for.

use crate::kring::Dir;
use crate::native::{DescBuf, NativeConfig, NativeOps, RxDone};
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use std::sync::Mutex;

/// One descriptor ring of the simulated device.
#[derive(Default, Debug)]
pub struct SimRing {
    /// Descriptor contents: the buffer last loaded (address, index).
    pub desc: Vec<Option<DescBuf>>,
    /// Posted, not yet visible to the device (no kick yet).
    pub posted: VecDeque<u32>,
    /// Visible to the device (kicked), in order.
    pub avail: VecDeque<u32>,
    /// Finished by the device: TX completions to report, RX (desc, len).
    pub used: VecDeque<(u32, u32)>,
    pub intr_on: bool,
    pub kicks: u32,
    /// Descriptors whose address was (re)loaded.
    pub reloads: u32,
}

/// The simulated device's state.
#[derive(Default, Debug)]
pub struct SimState {
    pub on: bool,
    pub rings: [Vec<SimRing>; 2],
    /// Frames the DMA engine sent, per TX ring.
    pub wire: Vec<(u32, Vec<u8>)>,
    /// register calls (true/false), in order.
    pub registers: Vec<bool>,
    /// Every buffer the core handed over.
    pub given: Vec<DescBuf>,
    /// TX descriptors the device may hold at most (fault injection).
    pub tx_room: Option<usize>,
    /// RX buffers the device may hold at most.
    pub rx_room: Option<usize>,
    /// The next register(true) fails.
    pub fail_register: bool,
    /// Report this descriptor for the next RX completion (a broken device).
    pub bogus_rx_desc: Option<u32>,
}

/// A simulated NIC with `rings` queues of `descs` descriptors.
pub struct SimNic {
    pub cfg: NativeConfig,
    pub st: Mutex<SimState>,
}

impl SimNic {
    pub fn new(rings: u32, descs: u32) -> Arc<Self> {
        let mk = || {
            (0..rings)
                .map(|_| SimRing {
                    desc: alloc::vec![None; descs as usize],
                    ..SimRing::default()
                })
                .collect::<Vec<_>>()
        };
        Arc::new(SimNic {
            cfg: NativeConfig {
                rings: [rings, rings],
                descs: [descs, descs],
            },
            st: Mutex::new(SimState {
                rings: [mk(), mk()],
                ..SimState::default()
            }),
        })
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run the TX DMA engine of `ring`: every kicked descriptor is read
    /// from its buffer onto the wire and completed. Returns the frames sent.
    pub fn dma_tx(&self, ring: u32) -> usize {
        let mut st = self.state();
        let mut n = 0;
        while let Some(d) = st.rings[Dir::Tx.idx()][ring as usize].avail.pop_front() {
            let b = st.rings[Dir::Tx.idx()][ring as usize].desc[d as usize].expect("loaded");
            let mut v = alloc::vec![0u8; b.len as usize];
            // SAFETY: the core put in this descriptor the kernel address of
            // a valid buffer of its region with `len` <= the buffer size
            // (checked by the tests through `given`); the region outlives
            // the port, which is in netmap mode while descriptors are held.
            unsafe { core::ptr::copy_nonoverlapping(b.addr as *const u8, v.as_mut_ptr(), v.len()) };
            st.wire.push((ring, v));
            st.rings[Dir::Tx.idx()][ring as usize]
                .used
                .push_back((d, 0));
            n += 1;
        }
        n
    }

    /// A frame arrives on RX queue `ring`: the DMA engine writes it into
    /// the next kicked descriptor's buffer. False: no buffer (dropped).
    pub fn dma_rx(&self, ring: u32, frame: &[u8]) -> bool {
        let mut st = self.state();
        let r = &mut st.rings[Dir::Rx.idx()][ring as usize];
        let Some(d) = r.avail.pop_front() else {
            return false;
        };
        let b = r.desc[d as usize].expect("loaded");
        let len = frame.len().min(b.len as usize);
        // SAFETY: as in `dma_tx`; `len` <= the room the core gave.
        unsafe { core::ptr::copy_nonoverlapping(frame.as_ptr(), b.addr as *mut u8, len) };
        let rep = st.bogus_rx_desc.take().unwrap_or(d);
        st.rings[Dir::Rx.idx()][ring as usize]
            .used
            .push_back((rep, len as u32));
        true
    }

    /// Descriptors the device holds (posted or kicked, not completed).
    pub fn held(&self, d: Dir, ring: u32) -> usize {
        let st = self.state();
        let r = &st.rings[d.idx()][ring as usize];
        r.posted.len() + r.avail.len()
    }

    fn post(&self, d: Dir, ring: u32, desc: u32, b: &DescBuf) -> bool {
        let mut st = self.state();
        if !st.on {
            return false;
        }
        let room = if d == Dir::Tx { st.tx_room } else { st.rx_room };
        if let Some(room) = room {
            let r = &st.rings[d.idx()][ring as usize];
            if r.posted.len() + r.avail.len() >= room {
                return false;
            }
        }
        st.given.push(*b);
        let r = &mut st.rings[d.idx()][ring as usize];
        assert!(
            !r.posted.contains(&desc) && !r.avail.contains(&desc),
            "descriptor {desc} posted twice"
        );
        if b.reload {
            r.reloads += 1;
        }
        r.desc[desc as usize] = Some(*b);
        r.posted.push_back(desc);
        true
    }

    fn kick(&self, d: Dir, ring: u32) {
        let mut st = self.state();
        let r = &mut st.rings[d.idx()][ring as usize];
        r.kicks += 1;
        while let Some(x) = r.posted.pop_front() {
            r.avail.push_back(x);
        }
    }

    /// Device reset: every descriptor is dropped (as a real reset loses
    /// them); the driver then calls `native::ring_reset`.
    pub fn reset(&self) {
        let mut st = self.state();
        for r in st.rings.iter_mut().flatten() {
            r.posted.clear();
            r.avail.clear();
            r.used.clear();
            r.desc.iter_mut().for_each(|x| *x = None);
        }
    }
}

impl NativeOps for SimNic {
    fn config(&self) -> NativeConfig {
        self.cfg
    }
    fn register(&self, on: bool) -> crate::Result<()> {
        let mut st = self.state();
        st.registers.push(on);
        if on && core::mem::take(&mut st.fail_register) {
            return Err(crate::Errno::EIO);
        }
        st.on = on;
        if !on {
            // Take every netmap buffer back from the descriptors.
            for r in st.rings.iter_mut().flatten() {
                r.posted.clear();
                r.avail.clear();
                r.used.clear();
                r.desc.iter_mut().for_each(|x| *x = None);
            }
        }
        Ok(())
    }
    fn tx_post(&self, ring: u32, desc: u32, b: &DescBuf) -> bool {
        self.post(Dir::Tx, ring, desc, b)
    }
    fn tx_kick(&self, ring: u32) {
        self.kick(Dir::Tx, ring);
    }
    fn tx_reclaim(&self, ring: u32) -> u32 {
        let mut st = self.state();
        let r = &mut st.rings[Dir::Tx.idx()][ring as usize];
        let n = r.used.len() as u32;
        r.used.clear();
        n
    }
    fn rx_post(&self, ring: u32, desc: u32, b: &DescBuf) -> bool {
        self.post(Dir::Rx, ring, desc, b)
    }
    fn rx_kick(&self, ring: u32) {
        self.kick(Dir::Rx, ring);
    }
    fn rx_poll(&self, ring: u32) -> Option<RxDone> {
        let mut st = self.state();
        let (desc, len) = st.rings[Dir::Rx.idx()][ring as usize].used.pop_front()?;
        Some(RxDone { desc, len })
    }
    fn intr(&self, dir: Dir, ring: u32, on: bool) -> bool {
        let mut st = self.state();
        let r = &mut st.rings[dir.idx()][ring as usize];
        r.intr_on = on;
        on && !r.used.is_empty() && dir == Dir::Rx
    }
}
