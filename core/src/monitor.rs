//! Monitors (§10.1): ports that see the traffic of another port's rings.
//!
//! * Copy monitors (`/t`, `/r`) have a private region; the parent's TX slots
//!   are copied when the parent's TX ring is synced (before transmission),
//!   its RX slots when they arrive, i.e. where the party that fills the
//!   ring publishes them ([`rx_new`]: a VALE sender's delivery, a pipe
//!   peer's txsync, a NIC's receive path), not at the parent's rxsync:
//!   the monitor sees traffic the parent's owner has not read yet.
//! * Zero-copy monitors (`/z`) share the parent's region; buffers are
//!   swapped (the parent slot gets the monitor's old buffer and
//!   NS_BUF_CHANGED) when the parent *releases* slots: TX slots after
//!   transmission, RX slots when the consumer gives them back.
//!
//! A monitor has one TX ring, whose sync always fails (it cannot inject),
//! and one RX ring per parent ring index. Monitor RX ring `i` receives the
//! traffic of parent TX ring `i` and/or RX ring `i`. Each parent kring keeps
//! the list of monitor rings attached to it.

#![deny(unsafe_code)]

use crate::adapter::Adapter;
use crate::kring::{Dir, Kring, NKR_ON, NKR_STOPPED, Offsets, nm_next, nm_prev, ring_dist};
use crate::platform::Platform;
use crate::shm::{RingPtr, Slot};
use alloc::sync::Arc;
use core::sync::atomic::Ordering;
use netmap_uapi::{NS_BUF_CHANGED, NS_TXMON};

/// Monitor state of an adapter.
pub struct MonitorPort<P: Platform> {
    /// The monitored port (kept alive by the monitor).
    pub parent: Arc<Adapter<P>>,
    pub tx: bool,
    pub rx: bool,
    pub zcopy: bool,
}

/// One monitor RX ring attached to a parent kring.
pub struct MonLink<P: Platform> {
    pub mon: Arc<Adapter<P>>,
    pub ring: u32,
    pub zcopy: bool,
}

/// Copy the parent slots [from, to) of `src` into the monitor ring;
/// `src_ofs`: the parent ring's OFFSETS setting (copy monitors read the
/// data at it, and write at the monitor slot's own offset, truncating what
/// does not fit there, as the reference does).
fn copy_into<P: Platform>(
    link: &MonLink<P>,
    src_na: &Adapter<P>,
    src: &RingPtr,
    src_ofs: Option<Offsets>,
    from: u32,
    to: u32,
    extra_flags: u16,
) {
    let Some(mk) = link.mon.kring(Dir::Rx, link.ring) else {
        return;
    };
    let q = mk.q_lock.lock();
    if mk.flags() & NKR_ON == 0 || mk.flags() & NKR_STOPPED != 0 {
        return;
    }
    let Some(mring) = mk.ring() else { return };
    let n = mk.num_slots;
    let hwcur = mk.nr_hwcur.load(Ordering::Acquire);
    let mut hwtail = mk.nr_hwtail.load(Ordering::Relaxed);
    if hwcur >= n || hwtail >= n {
        return;
    }
    let sn = src.num_slots();
    let count = ring_dist(from, to, sn);
    let room = ring_dist(hwtail, nm_prev(hwcur, n), n);
    // A full monitor keeps the newest frames (§10.1).
    let mut j = from;
    for _ in 0..count.saturating_sub(room) {
        j = nm_next(j, sn);
    }
    let mbsize = link.mon.mem.buf_size() as usize;
    let mon_ofs = mk.offsets();
    let mut moved = false;
    while j != to {
        let s = src.slot(j);
        let ms = mring.slot(hwtail);
        if link.zcopy {
            // Same region: swap the buffers.
            mring.set_slot(
                hwtail,
                Slot {
                    buf_idx: s.buf_idx,
                    len: s.len,
                    flags: (s.flags & !NS_BUF_CHANGED) | extra_flags,
                    ptr: 0,
                },
            );
            src.set_slot(
                j,
                Slot {
                    buf_idx: ms.buf_idx,
                    flags: s.flags | NS_BUF_CHANGED,
                    ..s
                },
            );
        } else {
            let sb = src_na.mem.buf(s.buf_idx);
            let db = link.mon.mem.buf(ms.buf_idx);
            let soff = src_ofs.map_or(0, |o| o.of(src, j));
            let doff = mon_ofs.map_or(0, |o| o.of(&mring, hwtail));
            let len = (s.len as usize)
                .min((sb.size() as usize).saturating_sub(soff))
                .min(mbsize.saturating_sub(doff));
            let copied = db.copy_from(doff, &sb, soff, len);
            mring.set_slot_len_flags(
                hwtail,
                copied as u16,
                (s.flags & !NS_BUF_CHANGED) | extra_flags,
            );
        }
        hwtail = nm_next(hwtail, n);
        j = nm_next(j, sn);
        moved = true;
    }
    if moved {
        mk.nr_hwtail.store(hwtail, Ordering::Release);
    }
    drop(q);
    if moved {
        link.mon.notify(mk);
    }
}

fn for_each<P: Platform>(k: &Kring<P>, zcopy: bool, f: impl Fn(&MonLink<P>)) {
    if !k.has_monitors() {
        return;
    }
    let links = k.monitors.lock();
    for l in links.iter().filter(|l| l.zcopy == zcopy) {
        f(l);
    }
}

/// Parent TX ring about to hand [hwcur, head) to the port: copy monitors.
pub fn tx_sync_begin<P: Platform>(
    na: &Adapter<P>,
    k: &Kring<P>,
    ring: &RingPtr,
    hwcur: u32,
    head: u32,
) {
    for_each(k, false, |l| {
        copy_into(l, na, ring, k.offsets(), hwcur, head, NS_TXMON)
    });
}

/// Parent TX ring released (old_hwtail, new_hwtail]: zero-copy monitors.
pub fn tx_sync_end<P: Platform>(
    na: &Adapter<P>,
    k: &Kring<P>,
    ring: &RingPtr,
    old_hwtail: u32,
    new_hwtail: u32,
) {
    let n = k.num_slots;
    for_each(k, true, |l| {
        copy_into(
            l,
            na,
            ring,
            None,
            nm_next(old_hwtail, n),
            nm_next(new_hwtail, n),
            NS_TXMON,
        )
    });
}

/// New frames [from, to) arrived in a parent RX ring: copy monitors.
/// Called by whoever makes frames visible in an RX ring, once per batch,
/// after publishing them; one flag check when no monitor is attached.
pub fn rx_new<P: Platform>(na: &Adapter<P>, k: &Kring<P>, ring: &RingPtr, from: u32, to: u32) {
    for_each(k, false, |l| {
        copy_into(l, na, ring, k.offsets(), from, to, 0)
    });
}

/// The parent's consumer releases RX slots [hwcur, head): zero-copy monitors.
pub fn rx_release<P: Platform>(
    na: &Adapter<P>,
    k: &Kring<P>,
    ring: &RingPtr,
    hwcur: u32,
    head: u32,
) {
    for_each(k, true, |l| copy_into(l, na, ring, None, hwcur, head, 0));
}

/// The parent rings a monitor file uses, for monitor RX ring `i`.
fn parent_krings<P: Platform>(mp: &MonitorPort<P>, i: u32) -> impl Iterator<Item = &Kring<P>> {
    let p = &mp.parent;
    let tx = (mp.tx || mp.zcopy).then(|| p.kring(Dir::Tx, i)).flatten();
    let rx = (mp.rx || mp.zcopy).then(|| p.kring(Dir::Rx, i)).flatten();
    tx.into_iter().chain(rx)
}

/// Attach monitor RX rings [first, last) to the parent's krings.
pub fn attach<P: Platform>(
    mon: &Arc<Adapter<P>>,
    mp: &MonitorPort<P>,
    first: u32,
    last: u32,
) -> crate::Result<()> {
    for i in first..last {
        for pk in parent_krings(mp, i) {
            let mut l = pk.monitors.lock();
            l.try_reserve(1).map_err(|_| crate::Errno::ENOMEM)?;
            l.push(MonLink {
                mon: mon.clone(),
                ring: i,
                zcopy: mp.zcopy,
            });
            pk.set_has_monitors(true);
        }
    }
    Ok(())
}

/// Detach monitor RX rings [first, last) of `mon` from the parent's krings.
pub fn detach<P: Platform>(mon: &Arc<Adapter<P>>, mp: &MonitorPort<P>, first: u32, last: u32) {
    for i in first..last {
        for pk in parent_krings(mp, i) {
            let mut l = pk.monitors.lock();
            if let Some(pos) = l
                .iter()
                .position(|x| Arc::ptr_eq(&x.mon, mon) && x.ring == i)
            {
                l.swap_remove(pos);
            }
            pk.set_has_monitors(!l.is_empty());
        }
    }
}

/// The parent left netmap mode: every monitor of it stops (its syncs fail
/// with EIO until it is reopened) and the links are dropped.
pub fn parent_gone<P: Platform>(na: &Adapter<P>) {
    for d in Dir::BOTH {
        for k in na.krings[d.idx()].iter() {
            let mut l = k.monitors.lock();
            for link in l.iter() {
                if let Some(mk) = link.mon.kring(Dir::Rx, link.ring) {
                    mk.set_flag(NKR_STOPPED);
                    link.mon.notify(mk);
                }
                if let Some(mt) = link.mon.kring(Dir::Tx, 0) {
                    mt.set_flag(NKR_STOPPED);
                }
            }
            l.clear();
            k.set_has_monitors(false);
        }
    }
}
