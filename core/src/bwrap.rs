//! Network interfaces attached to a VALE switch (the reference's "bwrap",
//! §8.5): VALE_ATTACH `valeS:eth0` puts `eth0` in netmap mode on behalf of
//! the kernel and adds a switch port for it (and, with NR_REG_NIC_SW, a
//! second port `valeS:eth0^` for its host stack).
//!
//! Data flow:
//! * interface → switch: frames the OS pushes into the interface's RX
//!   rings ([`Adapter::rx_push`]: received frames into the hardware RX
//!   rings, what the host stack transmits into the host RX ring) are
//!   forwarded at once through the switch as if the interface's port had
//!   sent them ([`nic_rx`]), in the OS's receive context; in polling mode
//!   (§4.9) kernel threads do it instead;
//! * switch → interface: the switch delivers into the port's own RX rings
//!   like into any port; [`delivered`] then drains them into the device
//!   (`NetifOps::transmit`, TX ring = the port's RX ring index) or into
//!   the host stack (`NetifOps::host_inject`). A device that refuses a
//!   frame keeps it in the ring until [`retry_tx`].
//!
//! Each ring is driven by whoever holds its busy lock (`Kring::owner`), a
//! try-lock, so contexts never wait for each other: a context that finds
//! the lock taken sets `work_pending`, and the holder looks again before
//! it returns. Rings are created and deleted on the control path only
//! (attach, detach), and `Kring::delete_ring` waits for the busy lock, so
//! a forwarder never reads a ring that is being freed.
//!
//! A persistent VALE port attached to a second switch (§8.4) is wrapped
//! the same way: the port it has on the second switch stands for it there,
//! frames the first switch delivers to it go on into the second one
//! ([`delivered`]), and frames the second switch delivers to its wrapper
//! enter the first one as if the port had sent them. These hops happen in
//! the sender's context, one inside the other; a chain is cut after
//! `CHAIN_DEPTH` switches and a loop of switches after `CHAIN_ROUNDS`
//! runs of a ring per call (frames then wait for the next delivery to
//! that ring), so neither the kernel stack nor a broadcast storm can run
//! away.
//!
//! References: the wrapped adapter (`Adapter::wrapper`) holds the
//! [`Bwrap`], which holds the switch ports, which point back at the
//! wrapped adapter ([`HwPort`]). [`detach`] breaks the cycle.

#![deny(unsafe_code)]

use crate::adapter::{Adapter, Kind, PortConfig, RingRange};
use crate::kring::{Dir, Kring, KringOwned, NKR_ON, nm_next, ring_dist};
use crate::name::{Name, concat};
use crate::native::NativePort;
use crate::netif::Frame;
use crate::platform::Platform;
use crate::shm::RingPtr;
use crate::sync::Lock;
use crate::vale::{NM_BDG_BATCH, Source, Switch, ValePort};
use crate::{Errno, Result};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use netmap_uapi::{NETMAP_POLLING_MODE_MULTI_CPU, NETMAP_POLLING_MODE_SINGLE_CPU};

/// The switch-side state of a port that stands for an interface.
pub struct HwPort<P: Platform> {
    /// The interface; cleared by [`detach`].
    nic: Lock<P::SpinLock, Option<Arc<Adapter<P>>>>,
    /// This port stands for the interface's host stack (`valeS:eth0^`).
    pub host: bool,
}

impl<P: Platform> HwPort<P> {
    pub fn new(nic: Arc<Adapter<P>>, host: bool) -> Result<Self> {
        Ok(HwPort {
            nic: Lock::new(Some(nic)).ok_or(Errno::ENOMEM)?,
            host,
        })
    }

    /// The interface, while attached.
    pub fn nic(&self) -> Option<Arc<Adapter<P>>> {
        self.nic.lock().clone()
    }
}

/// An interface attached to a switch.
pub struct Bwrap<P: Platform> {
    /// Switch port of the interface (`valeS:eth0`).
    pub hw: Arc<Adapter<P>>,
    /// Switch port of its host stack (`valeS:eth0^`), with NR_REG_NIC_SW.
    pub host: Option<Arc<Adapter<P>>>,
    /// The interface's rings the kernel binds (RX only: frames sent to the
    /// interface go to the device straight from the port's rings).
    pub nic_ranges: [RingRange; 2],
    /// Polling mode (§4.9): the hardware RX rings `[poll_first,
    /// poll_last)` are forwarded by kernel threads, not in the receive
    /// context. Empty: not polling.
    poll_first: AtomicU32,
    poll_last: AtomicU32,
    /// The polling threads; dropping them stops them.
    threads: Lock<P::Mutex, Vec<P::Thread>>,
}

impl<P: Platform> Bwrap<P> {
    /// Whether polling mode is on.
    pub fn is_polling(&self) -> bool {
        self.poll_first.load(Ordering::Acquire) < self.poll_last.load(Ordering::Acquire)
    }

    /// Whether RX ring `ring` of the interface is left to a polling thread.
    fn polled(&self, ring: u32) -> bool {
        (self.poll_first.load(Ordering::Acquire)..self.poll_last.load(Ordering::Acquire))
            .contains(&ring)
    }
}

/// Ranges binding the first `n` RX rings of a port, and no TX ring.
fn rx_only(n: u32) -> [RingRange; 2] {
    let mut r = [RingRange::default(); 2];
    r[Dir::Rx.idx()] = RingRange { first: 0, last: n };
    r
}

/// A switch port for `nic` (`host`: for its host stack) with its RX rings
/// created in the interface's region: the port's RX ring `i` feeds the
/// interface's TX ring `i`, so the counts are crossed.
fn new_port<P: Platform>(nic: &Arc<Adapter<P>>, name: Name, host: bool) -> Result<Arc<Adapter<P>>> {
    let (tx, rx) = if host {
        (nic.nhost(Dir::Tx).max(1), nic.nhost(Dir::Rx).max(1))
    } else {
        (nic.nrings(Dir::Tx), nic.nrings(Dir::Rx))
    };
    let mut cfg = PortConfig::default();
    cfg.rings[Dir::Rx.idx()] = tx;
    cfg.rings[Dir::Tx.idx()] = rx;
    cfg.slots[Dir::Rx.idx()] = nic.cfg.slots[Dir::Tx.idx()];
    cfg.slots[Dir::Tx.idx()] = nic.cfg.slots[Dir::Rx.idx()];
    let na = Arc::new(Adapter::new(
        nic.platform.clone(),
        name,
        Kind::Vale(ValePort::new_hw(nic.clone(), host)?),
        nic.mem.clone(),
        cfg,
    )?);
    na.bind_rings(&rx_only(tx), true)?;
    na.active_fds.fetch_add(1, Ordering::AcqRel);
    // Forwarding scratch: a persistent port's wrapper forwards from its RX
    // rings into the port's first switch.
    if matches!(nic.kind, Kind::Vale(_)) {
        let scratch = (0..tx).try_for_each(|i| match na.kring(Dir::Rx, i) {
            Some(k) => crate::vale::prepare_tx_kring(k),
            None => Err(Errno::EINVAL),
        });
        if let Err(e) = scratch {
            release_port(&na);
            return Err(e);
        }
    }
    Ok(na)
}

/// Undo [`new_port`] (the port is off the switch).
fn release_port<P: Platform>(na: &Adapter<P>) {
    na.active_fds.fetch_sub(1, Ordering::AcqRel);
    na.unbind_rings(&rx_only(na.nrings(Dir::Rx)), true);
    if let Kind::Vale(v) = &na.kind
        && let Some(hw) = &v.hw
    {
        hw.nic.lock().take();
    }
}

/// Put `nic` in netmap mode for switch `sw` and add its port `name`
/// (`valeS:eth0`) and, with `host`, the port of its host stack
/// (`valeS:eth0^`). The caller checked that nobody uses the interface.
/// Control path (global lock held). Returns the hardware port's index.
pub fn attach<P: Platform>(
    nic: &Arc<Adapter<P>>,
    sw: &Arc<Switch<P>>,
    name: Name,
    host: bool,
) -> Result<u8> {
    let netif = match &nic.kind {
        Kind::Netif(ni) => Some(ni),
        // A persistent port, already on another switch.
        Kind::Vale(v) if !v.ephemeral && v.hw.is_none() => None,
        _ => return Err(Errno::EINVAL),
    };
    if host && (netif.is_none() || nic.nhost(Dir::Rx) == 0) {
        return Err(Errno::EINVAL);
    }
    // Room on the switch for both ports (§8.1), before anything is made.
    let need = if host { 2 } else { 1 };
    if sw.active_ports() + need + 1 >= crate::vale::NM_BDG_MAXPORTS as u32 {
        return Err(Errno::ENOMEM);
    }
    let hw = new_port(nic, name, false)?;
    let host_port = if host {
        match new_port(nic, concat(&[name.as_bytes(), b"^"]), true) {
            Ok(p) => Some(p),
            Err(e) => {
                release_port(&hw);
                return Err(e);
            }
        }
    } else {
        None
    };
    let nrx = nic.nrings(Dir::Rx) + if host { nic.nhost(Dir::Rx) } else { 0 };
    let native = netif.and_then(|ni| ni.native.as_ref());
    let mut nic_ranges = rx_only(nrx);
    if native.is_some() {
        // A native device enters netmap mode as a whole: the switch sends
        // through its hardware TX rings.
        nic_ranges[Dir::Tx.idx()] = RingRange {
            first: 0,
            last: nic.nrings(Dir::Tx),
        };
    }
    let bw = Arc::new(Bwrap {
        hw: hw.clone(),
        host: host_port.clone(),
        nic_ranges,
        poll_first: AtomicU32::new(0),
        poll_last: AtomicU32::new(0),
        threads: Lock::new(Vec::new()).ok_or(Errno::ENOMEM)?,
    });
    let undo_ports = || {
        release_port(&hw);
        if let Some(h) = &host_port {
            release_port(h);
        }
    };
    if let Err(e) = nic.bind_rings(&bw.nic_ranges, true) {
        undo_ports();
        return Err(e);
    }
    let scratch = (0..nrx).try_for_each(|i| match nic.kring(Dir::Rx, i) {
        Some(k) => crate::vale::prepare_tx_kring(k),
        None => Err(Errno::EINVAL),
    });
    if let Err(e) = scratch {
        nic.unbind_rings(&bw.nic_ranges, true);
        undo_ports();
        return Err(e);
    }
    nic.set_wrapper(Some(bw.clone()));
    nic.active_fds.fetch_add(1, Ordering::AcqRel);
    if let Some(ni) = netif
        && let Err(e) = ni.ops.register(nic, true).and_then(|()| {
            native.map_or(Ok(()), |nat| {
                nat.bind(nic, &bw.nic_ranges).inspect_err(|_| {
                    let _ = ni.ops.register(nic, false);
                })
            })
        })
    {
        nic.set_wrapper(None);
        nic.active_fds.fetch_sub(1, Ordering::AcqRel);
        nic.unbind_rings(&bw.nic_ranges, true);
        undo_ports();
        return Err(e);
    }
    // On the switch last: nothing is delivered to the ports before their
    // rings exist.
    let mut joined: [Option<u8>; 2] = [None, None];
    let ports = [Some(&hw), host_port.as_ref()];
    for (slot, port) in joined.iter_mut().zip(ports) {
        let Some(port) = port else { continue };
        match sw.add_port(port.clone()) {
            Ok(idx) => {
                if let Kind::Vale(v) = &port.kind {
                    *v.bdg.lock() = Some((sw.clone(), idx));
                }
                *slot = Some(idx);
            }
            Err(e) => {
                detach(nic, &bw);
                return Err(e);
            }
        }
    }
    joined[0].ok_or(Errno::EINVAL)
}

/// End the attachment of `nic`: its ports leave their switch, the
/// interface leaves netmap mode (if nobody else uses it) and every ring
/// the attachment made is deleted. Control path (global lock held); the
/// caller removes a switch left empty and forgets an idle interface.
pub fn detach<P: Platform>(nic: &Arc<Adapter<P>>, bw: &Arc<Bwrap<P>>) {
    for port in core::iter::once(&bw.hw).chain(bw.host.iter()) {
        if let Kind::Vale(v) = &port.kind {
            let bdg = v.bdg.lock().take();
            if let Some((sw, idx)) = bdg {
                sw.remove_port(idx);
            }
        }
    }
    nic.set_wrapper(None);
    // A native device gives netmap's buffers back before the rings go.
    if let Kind::Netif(ni) = &nic.kind
        && let Some(nat) = &ni.native
    {
        nat.unbind(nic, &bw.nic_ranges);
    }
    if nic.active_fds.fetch_sub(1, Ordering::AcqRel) == 1 {
        // After this no new frame is pushed (the OS waits for its hooks).
        if let Kind::Netif(ni) = &nic.kind {
            let _ = ni.ops.register(nic, false);
        }
        crate::monitor::parent_gone(nic);
    }
    nic.unbind_rings(&bw.nic_ranges, true);
    release_port(&bw.hw);
    if let Some(h) = &bw.host {
        release_port(h);
    }
}

/// The switch port of `nic` that RX ring `k` belongs to.
fn source_port<'a, P: Platform>(
    nic: &Adapter<P>,
    bw: &'a Bwrap<P>,
    k: &Kring<P>,
) -> Option<&'a Arc<Adapter<P>>> {
    if k.id < nic.nrings(Dir::Rx) {
        Some(&bw.hw)
    } else {
        bw.host.as_ref()
    }
}

/// New frames in RX ring `k` of interface `nic` (called by `rx_push`, in
/// the OS's receive context). Returns false if the interface is not
/// attached to a switch (its users are to be woken instead).
pub fn nic_rx<P: Platform>(nic: &Adapter<P>, k: &Kring<P>) -> bool {
    if !matches!(nic.kind, Kind::Netif(_)) {
        return false;
    }
    let Some(bw) = nic.wrapper() else {
        return false;
    };
    if !bw.polled(k.id) {
        forward_ring(nic, &bw, k, 0);
    }
    true
}

/// Forward what RX ring `k` of `nic` holds through the switch, as the
/// interface's port, and release the slots. Returns the number of slots
/// this call forwarded (0 also when another context holds the ring: it
/// will forward the new frames before it lets go).
pub fn forward_ring<P: Platform>(nic: &Adapter<P>, bw: &Bwrap<P>, k: &Kring<P>, depth: u8) -> u32 {
    let Some(port) = source_port(nic, bw, k) else {
        return 0;
    };
    let Kind::Vale(v) = &port.kind else { return 0 };
    // A persistent port between two switches is driven by the switch that
    // delivers to it: bounded (see `CHAIN_DEPTH`).
    let chained = matches!(nic.kind, Kind::Vale(_));
    if chained && depth >= CHAIN_DEPTH {
        k.work_pending.store(true, Ordering::Release);
        return 0;
    }
    let rounds = if chained { CHAIN_ROUNDS } else { u32::MAX };
    let native = native_rx(nic, k);
    let mut total = 0;
    drive(k, rounds, |own, ring| {
        if let Some(nat) = native {
            // Take what the device received (release nothing yet).
            own.rhead = k.nr_hwcur.load(Ordering::Relaxed);
            let _ = nat.rxsync(nic, k, own, ring);
        }
        let n = k.num_slots;
        let hwcur = k.nr_hwcur.load(Ordering::Relaxed);
        let tail = k.nr_hwtail.load(Ordering::Acquire);
        if hwcur >= n || tail >= n || hwcur == tail {
            return;
        }
        if let Some((sw, me)) = v.switch() {
            let src = Source {
                na: nic,
                k,
                ring,
                indirect: false,
                depth: depth.saturating_add(1),
            };
            crate::vale::forward(&sw, me, &src, own, hwcur, tail, NM_BDG_BATCH as usize);
        }
        total += ring_dist(hwcur, tail, n);
        {
            let _q = k.q_lock.lock();
            k.nr_hwcur.store(tail, Ordering::Release);
        }
        if let Some(nat) = native {
            // The forwarded slots go back to the device; frames that came
            // meanwhile make another round.
            own.rhead = tail;
            let _ = nat.rxsync(nic, k, own, ring);
            if k.nr_hwtail.load(Ordering::Acquire) != tail {
                k.work_pending.store(true, Ordering::Release);
            }
        }
    });
    total
}

/// The native driver of hardware RX ring `k` of `nic`, if it has one.
fn native_rx<'a, P: Platform>(nic: &'a Adapter<P>, k: &Kring<P>) -> Option<&'a NativePort> {
    match &nic.kind {
        Kind::Netif(ni) if k.id < nic.nrings(Dir::Rx) => ni.native.as_ref(),
        _ => None,
    }
}

/// Run `step` on kernel-driven ring `k` (with its busy lock, and the ring
/// while it is on) until no other context has queued work for it. A
/// context that finds the lock taken only flags the work: the holder runs
/// `step` again before it lets go, and looks once more after, so no work
/// is left behind and no context ever waits for another.
///
/// At most `rounds` runs of `step`: switches chained in a loop through
/// persistent ports (§8.4) would otherwise pass a flooded frame around
/// for ever inside one call. What is left then stays flagged for the next
/// delivery to the ring.
fn drive<P: Platform>(
    k: &Kring<P>,
    rounds: u32,
    mut step: impl FnMut(&mut KringOwned<P>, &RingPtr),
) {
    let mut left = rounds;
    k.work_pending.store(true, Ordering::Release);
    loop {
        let Some(mut own) = k.owner.try_lock() else {
            return;
        };
        while left > 0 && k.work_pending.swap(false, Ordering::AcqRel) {
            left -= 1;
            match k.ring() {
                Some(ring) if k.flags() & NKR_ON != 0 => step(&mut own, &ring),
                _ => break,
            }
        }
        drop(own);
        if left == 0 || !k.work_pending.load(Ordering::Acquire) {
            return;
        }
    }
}

/// Switches a frame may cross within one call chain through persistent
/// ports attached to two switches; beyond, the frames wait in the ring of
/// the next port until the next delivery to it (this bounds the kernel
/// stack a chain of switches uses).
const CHAIN_DEPTH: u8 = 4;
/// Runs of a ring between chained switches per call (see [`drive`]).
const CHAIN_ROUNDS: u32 = 32;

/// The switch delivered packets into RX ring `dk` of port `dna` (`depth`:
/// see `vale::Source`): wake its users, or, for the port of an attached
/// interface, send them on; a persistent port attached to a second switch
/// passes them to that switch.
pub fn delivered<P: Platform>(dna: &Adapter<P>, dk: &Kring<P>, depth: u8) {
    match &dna.kind {
        Kind::Vale(ValePort { hw: Some(hw), .. }) => drain(dna, hw, dk, depth),
        _ => match dna.wrapper() {
            Some(bw) => {
                forward_ring(dna, &bw, dk, depth);
            }
            None => dna.notify(dk),
        },
    }
}

/// Send what RX ring `dk` of interface port `port` holds to the device
/// (or, for the host port, to the host stack). A device that refuses a
/// frame keeps it (and the ones after it) in the ring.
fn drain<P: Platform>(port: &Adapter<P>, hw: &HwPort<P>, dk: &Kring<P>, depth: u8) {
    let Some(nic) = hw.nic() else { return };
    let ni = match &nic.kind {
        Kind::Netif(ni) => ni,
        Kind::Vale(pv) => return drain_to_switch(port, pv, dk, depth),
        _ => return,
    };
    let txr = dk.id % nic.nrings(Dir::Tx).max(1);
    if !hw.host
        && let Some(nat) = &ni.native
    {
        drive(dk, u32::MAX, |_, ring| {
            drain_native(&nic, nat, port, dk, ring, txr)
        });
        return;
    }
    drive(dk, u32::MAX, |_, ring| {
        let n = dk.num_slots;
        let hwcur = dk.nr_hwcur.load(Ordering::Relaxed);
        let tail = dk.nr_hwtail.load(Ordering::Acquire);
        if hwcur >= n || tail >= n {
            return;
        }
        let mut j = hwcur;
        let ofs = dk.offsets();
        while j != tail {
            // The switch delivers whole packets: a chain always ends
            // before the tail (a cut one is sent as it is).
            let nslots = crate::netif::frame_slots(ring, j, tail).unwrap_or(1);
            let frame = Frame::new(&port.mem, ring, j, nslots, ofs);
            if hw.host {
                if frame.len() >= 14 {
                    let _ = ni.ops.host_inject(&frame);
                }
            } else if !ni.ops.transmit(txr, &frame) {
                break;
            }
            for _ in 0..nslots {
                j = nm_next(j, n);
            }
        }
        let _q = dk.q_lock.lock();
        dk.nr_hwcur.store(j, Ordering::Release);
    });
}

/// Send what RX ring `dk` of interface port `port` holds through hardware
/// TX ring `txr` of native interface `nic`: each frame is copied into a
/// free TX slot (a frame longer than a buffer is dropped: a native TX slot
/// is one descriptor), then one txsync posts the batch. Frames that find
/// no free slot wait in `dk` for the TX interrupt ([`retry_tx`]).
fn drain_native<P: Platform>(
    nic: &Adapter<P>,
    nat: &NativePort,
    port: &Adapter<P>,
    dk: &Kring<P>,
    ring: &RingPtr,
    txr: u32,
) {
    let n = dk.num_slots;
    let hwcur = dk.nr_hwcur.load(Ordering::Relaxed);
    let tail = dk.nr_hwtail.load(Ordering::Acquire);
    let Some(tk) = nic.kring(Dir::Tx, txr) else {
        return;
    };
    // Another context (a port ring sharing this TX ring) is sending: the
    // frames stay in `dk` for the next delivery or TX interrupt.
    let Some(mut town) = tk.owner.try_lock() else {
        return;
    };
    let Some(tring) = tk.ring() else { return };
    if hwcur >= n || tail >= n || tk.flags() & NKR_ON == 0 {
        return;
    }
    // Post what is pending and take the completions: the free slots are
    // then [rhead, hwtail) (the kernel is this ring's only user).
    let _ = nat.txsync(nic, tk, &mut town, &tring);
    let tn = tk.num_slots;
    let ttail = tk.nr_hwtail.load(Ordering::Acquire);
    let mut t = town.rhead;
    if t >= tn || ttail >= tn {
        return;
    }
    let ofs = dk.offsets();
    let bsize = nic.mem.buf_size() as usize;
    let mut j = hwcur;
    while j != tail && t != ttail {
        // The switch delivers whole packets (see `drain`).
        let nslots = crate::netif::frame_slots(ring, j, tail).unwrap_or(1);
        let frame = Frame::new(&port.mem, ring, j, nslots, ofs);
        let len = frame.len();
        if len <= bsize {
            let (idx, _, _) = tring.slot_desc(t);
            if nic.mem.buf_valid(idx) {
                let got = frame.copy_into(&nic.mem.buf(idx));
                tring.set_slot_len_flags(t, got as u16, 0);
                t = nm_next(t, tn);
            }
        }
        for _ in 0..nslots {
            j = nm_next(j, n);
        }
    }
    if t != town.rhead {
        town.rhead = t;
        let _ = nat.txsync(nic, tk, &mut town, &tring);
    }
    let _q = dk.q_lock.lock();
    dk.nr_hwcur.store(j, Ordering::Release);
}

/// The second switch delivered packets to `port`, which stands there for
/// persistent port `pv`: they enter `pv`'s first switch as if `pv` had
/// sent them.
fn drain_to_switch<P: Platform>(port: &Adapter<P>, pv: &ValePort<P>, dk: &Kring<P>, depth: u8) {
    if depth >= CHAIN_DEPTH {
        dk.work_pending.store(true, Ordering::Release);
        return;
    }
    drive(dk, CHAIN_ROUNDS, |own, ring| {
        let n = dk.num_slots;
        let hwcur = dk.nr_hwcur.load(Ordering::Relaxed);
        let tail = dk.nr_hwtail.load(Ordering::Acquire);
        if hwcur >= n || tail >= n || hwcur == tail {
            return;
        }
        if let Some((sw, me)) = pv.switch() {
            let src = Source {
                na: port,
                k: dk,
                ring,
                indirect: false,
                depth: depth.saturating_add(1),
            };
            crate::vale::forward(&sw, me, &src, own, hwcur, tail, NM_BDG_BATCH as usize);
        }
        let _q = dk.q_lock.lock();
        dk.nr_hwcur.store(tail, Ordering::Release);
    });
}

/// The device has room again: send what the switch left in the RX rings
/// of the interface's port.
pub fn retry_tx<P: Platform>(bw: &Bwrap<P>) {
    let Kind::Vale(ValePort { hw: Some(hw), .. }) = &bw.hw.kind else {
        return;
    };
    for k in bw.hw.krings[Dir::Rx.idx()].iter() {
        if k.nr_hwcur.load(Ordering::Acquire) != k.nr_hwtail.load(Ordering::Acquire) {
            drain(&bw.hw, hw, k, 0);
        }
    }
}

/// Polling mode: forward what the interface's RX rings `[first, last)`
/// hold. Returns true if anything was forwarded.
pub fn poll_rings<P: Platform>(nic: &Adapter<P>, bw: &Bwrap<P>, first: u32, last: u32) -> bool {
    let mut any = false;
    for i in first..last {
        if let Some(k) = nic.kring(Dir::Rx, i) {
            any |= forward_ring(nic, bw, k, 0) > 0;
        }
    }
    any
}

/// VALE_POLLING_ENABLE (§4.9) on attached interface `nic`: `n` threads
/// (`n` ≥ 1 and below the number of online CPUs). MULTI_CPU: one thread
/// per hardware RX ring `first..first+n` (within the port's RX ring count),
/// pinned to the CPU of the ring's number; SINGLE_CPU (`n` = 1): one
/// thread for every RX ring, pinned to CPU `first`. Already polling:
/// `EFAULT`. Control path (global lock held).
pub fn polling_enable<P: Platform>(
    nic: &Arc<Adapter<P>>,
    bw: &Arc<Bwrap<P>>,
    mode: u32,
    first: u32,
    n: u32,
) -> Result<()> {
    if bw.is_polling() {
        return Err(Errno::EFAULT);
    }
    if n < 1 || n >= nic.platform.online_cpus() {
        return Err(Errno::EINVAL);
    }
    let nrx = nic.nrings(Dir::Rx);
    // (cpu, first ring, last ring) per thread.
    let mut plan: Vec<(u32, u32, u32)> = Vec::new();
    plan.try_reserve_exact(n as usize)
        .map_err(|_| Errno::ENOMEM)?;
    let (lo, hi) = match mode {
        NETMAP_POLLING_MODE_MULTI_CPU => {
            let end = first.checked_add(n).ok_or(Errno::EINVAL)?;
            if end > bw.hw.nrings(Dir::Rx) {
                return Err(Errno::EINVAL);
            }
            for r in first..end {
                plan.push((r, r, (r + 1).min(nrx)));
            }
            (first.min(nrx), end.min(nrx))
        }
        NETMAP_POLLING_MODE_SINGLE_CPU => {
            if n != 1 {
                return Err(Errno::EINVAL);
            }
            plan.push((first, 0, nrx));
            (0, nrx)
        }
        _ => return Err(Errno::EINVAL),
    };
    let mut threads = Vec::new();
    threads
        .try_reserve_exact(plan.len())
        .map_err(|_| Errno::ENOMEM)?;
    for (cpu, a, b) in plan {
        let (nic2, bw2) = (nic.clone(), bw.clone());
        let work: crate::platform::ThreadWork = Box::new(move || poll_rings(&nic2, &bw2, a, b));
        // A failure drops the threads already started.
        threads.push(nic.platform.spawn_thread(b"netmap_poll", Some(cpu), work)?);
    }
    *bw.threads.lock() = threads;
    bw.poll_first.store(lo, Ordering::Release);
    bw.poll_last.store(hi, Ordering::Release);
    Ok(())
}

/// VALE_POLLING_DISABLE: stop the threads (waiting for them) and forward
/// in the receive context again. Not polling: `EFAULT`.
pub fn polling_disable<P: Platform>(nic: &Adapter<P>, bw: &Bwrap<P>) -> Result<()> {
    if !bw.is_polling() {
        return Err(Errno::EFAULT);
    }
    let (lo, hi) = (
        bw.poll_first.load(Ordering::Acquire),
        bw.poll_last.load(Ordering::Acquire),
    );
    bw.poll_first.store(0, Ordering::Release);
    bw.poll_last.store(0, Ordering::Release);
    let threads = core::mem::take(&mut *bw.threads.lock());
    // Outside the lock: dropping a handle waits for its thread.
    drop(threads);
    // What arrived while the threads were stopping.
    poll_rings(nic, bw, lo, hi);
    Ok(())
}
