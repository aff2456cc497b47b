//! The per-thread loops (sender, receiver, ping, pong, dummy sender) and the ring
//! routines they use, which work on any [`TxRing`]/[`RxRing`] — a port's or an
//! in-memory test region's.

use crate::args::{Config, opt};
use crate::d;
use crate::frame::{AddrWalker, Rng, swap_addresses};
use crate::report::hexdump;
use netmap_uapi::consts::SlotFlags;
use netmap_uapi::user::{Error, PollFlags, Port, RxRing, SlotMut, Slots, Tx, TxRing, os};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// What the loops need from a port (implemented by [`Port`]; tests implement it
/// on an in-memory region with a simulated kernel).
pub trait Dev {
    /// The port name.
    fn name(&self) -> String;
    /// The file descriptor number (for log lines).
    fn fd(&self) -> i32;
    /// Bound TX rings.
    fn tx_rings(&self) -> Range<u16>;
    /// Bound RX rings.
    fn rx_rings(&self) -> Range<u16>;
    /// A view of TX ring `i`, unless it is in use.
    fn try_tx_ring(&self, i: u16) -> Option<TxRing<'_>>;
    /// A view of RX ring `i`, unless it is in use.
    fn try_rx_ring(&self, i: u16) -> Option<RxRing<'_>>;
    /// `poll()`.
    fn poll(&self, events: PollFlags, timeout: Duration) -> Result<PollFlags, Error>;
    /// `NIOCTXSYNC`.
    fn sync_tx(&self) -> Result<(), Error>;
    /// `NIOCRXSYNC`.
    fn sync_rx(&self) -> Result<(), Error>;
}

impl Dev for Port {
    fn name(&self) -> String {
        Port::name(self).to_string()
    }
    fn fd(&self) -> i32 {
        self.raw_number() as i32
    }
    fn tx_rings(&self) -> Range<u16> {
        Port::tx_rings(self)
    }
    fn rx_rings(&self) -> Range<u16> {
        Port::rx_rings(self)
    }
    fn try_tx_ring(&self, i: u16) -> Option<TxRing<'_>> {
        Port::try_tx_ring(self, i)
    }
    fn try_rx_ring(&self, i: u16) -> Option<RxRing<'_>> {
        Port::try_rx_ring(self, i)
    }
    fn poll(&self, events: PollFlags, timeout: Duration) -> Result<PollFlags, Error> {
        Port::poll(self, events, Some(timeout))
    }
    fn sync_tx(&self) -> Result<(), Error> {
        Port::sync_tx(self)
    }
    fn sync_rx(&self) -> Result<(), Error> {
        Port::sync_rx(self)
    }
}

/// Counters and flags shared between a worker and the main thread.
#[derive(Debug)]
pub struct ThreadState {
    /// Thread number.
    pub me: usize,
    /// Packets.
    pub pkts: AtomicU64,
    /// Bytes.
    pub bytes: AtomicU64,
    /// Batches.
    pub events: AtomicU64,
    /// Minimum free RX ring space since the last report (`u64::MAX` = none).
    pub min_space: AtomicU64,
    /// The thread is running.
    pub used: AtomicBool,
    /// The thread finished normally.
    pub completed: AtomicBool,
    /// Stop request.
    pub cancel: AtomicBool,
    /// Start and end of the measured period.
    pub tic_toc: Mutex<(Option<Instant>, Option<Instant>)>,
}

impl ThreadState {
    /// A fresh state for thread `me`.
    pub fn new(me: usize) -> Self {
        Self {
            me,
            pkts: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            events: AtomicU64::new(0),
            min_space: AtomicU64::new(u64::MAX),
            used: AtomicBool::new(true),
            completed: AtomicBool::new(false),
            cancel: AtomicBool::new(false),
            tic_toc: Mutex::new((None, None)),
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || os::sigint_received()
    }

    fn tic(&self, t: Instant) {
        self.tic_toc.lock().unwrap_or_else(|p| p.into_inner()).0 = Some(t);
    }

    fn toc(&self, t: Instant) {
        self.tic_toc.lock().unwrap_or_else(|p| p.into_inner()).1 = Some(t);
    }

    fn set(&self, pkts: u64, bytes: u64, events: u64) {
        self.pkts.store(pkts, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
        self.events.store(events, Ordering::Relaxed);
    }
}

/// The workers that ended: the reporting thread sleeps on it for a whole report
/// interval and is woken early only when a worker ends (instead of waking up
/// every few milliseconds to look, which costs a context switch and clock reads
/// each time, on whichever CPU the receiver or sender needs).
#[derive(Debug, Default)]
pub struct Finished {
    ended: Mutex<usize>,
    cv: Condvar,
}

impl Finished {
    fn one_ended(&self) {
        *self.ended.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.cv.notify_all();
    }

    /// Sleeps until `deadline` or until `total` workers have ended; returns
    /// whether they all have.
    pub fn wait(&self, total: usize, deadline: Instant) -> bool {
        let ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (ended, _) = self
            .cv
            .wait_timeout_while(ended, timeout, |n| *n < total)
            .unwrap_or_else(|p| p.into_inner());
        *ended >= total
    }
}

/// Marks a thread as finished when dropped (also when it panics), so that the
/// main thread's report loop ends.
#[derive(Debug)]
pub struct Done<'a>(pub &'a ThreadState, pub &'a Finished);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.used.store(false, Ordering::Relaxed);
        self.1.one_ended();
    }
}

/// What a sender writes into slots.
#[derive(Debug)]
pub struct TxCtx {
    /// The frame (virtio-net header included).
    pub frame: Vec<u8>,
    /// Length of the virtio-net header at the start of `frame`.
    pub virt: usize,
    /// Fragments per packet.
    pub frags: u32,
    /// Bytes per fragment (all but the last).
    pub frag_size: u32,
    /// `opt::*`.
    pub options: u32,
    /// Address walker for ranges and random addresses.
    pub walker: AddrWalker,
}

impl TxCtx {
    /// Fits `-F`/`-M` to the buffer size like the reference: the fragment size is
    /// `size / frags`, and if that exceeds the buffer (or `-M`), more fragments of
    /// that size are used.
    pub fn fit_fragments(&mut self, buf_size: u32, max_frag: Option<u32>) {
        let size = self.frame.len() as u32;
        let cap = max_frag.unwrap_or(buf_size).min(buf_size).max(1);
        self.frags = self.frags.max(1);
        self.frag_size = size / self.frags;
        if self.frag_size > cap {
            self.frags = size.div_ceil(cap);
            self.frag_size = cap;
        }
    }
}

/// Writes up to `count` packets at `head` of `ring` (the reference's
/// `send_packets`): the frame is copied into a slot only when its buffer changed
/// (or with -o copy/memcpy), fragments get `NS_MOREFRAG`, the last slot of the
/// batch `NS_REPORT`. Asks for a wakeup on more room when the ring fills up.
/// Returns the packets queued.
///
/// Like the reference, a packet needs `frags` free slots to be started but uses
/// one slot when nothing is written into the buffers (-R rubbish, -I indirect).
/// The slots come from one [`TxRing::slots`] window, so ownership is checked
/// once per batch, not per slot.
pub fn send_packets(ring: &mut TxRing<'_>, ctx: &mut TxCtx, size: usize, count: u32) -> u32 {
    let frags = ctx.frags.max(1);
    let size = size.min(ctx.frame.len());
    let o = ctx.options;
    let dump_it = o & opt::DUMP != 0;
    let per_pkt = if frags > 1 && o & (opt::RUBBISH | opt::INDIRECT) == 0 {
        frags
    } else {
        1
    };
    let space = ring.space();
    let npkts = if space < frags {
        0
    } else {
        ((space - frags) / per_pkt + 1).min(count)
    };
    let id = ring.id();
    let mut slots = ring.slots(npkts * per_pkt);
    let mut sent = 0;
    if per_pkt == 1 && o & !(opt::COPY | opt::MEMCPY) & SLOT_OPTIONS == 0 {
        let len = size.min(usize::from(u16::MAX)) as u16;
        sent = fill_plain(&mut slots, ctx, len, o & (opt::COPY | opt::MEMCPY) != 0);
    }
    while sent < npkts {
        let mut off = 0;
        for _ in 1..per_pkt {
            let Some(mut s) = slots.next_slot() else {
                break;
            };
            let end = (off + ctx.frag_size as usize).min(size);
            let _ = s.write(0, &ctx.frame[off..end]);
            s.set_flags(SlotFlags::MOREFRAG);
            if dump_it {
                dump(id, &s);
            }
            off = end;
        }
        let Some(mut s) = slots.next_slot() else {
            break;
        };
        let mut flags = SlotFlags::empty();
        if o & opt::RUBBISH != 0 {
            // nothing written
        } else if o & opt::INDIRECT != 0 {
            flags = SlotFlags::INDIRECT;
            s.set_ptr(ctx.frame.as_ptr() as usize as u64);
        } else if per_pkt > 1
            || o & (opt::COPY | opt::MEMCPY) != 0
            || s.flags().contains(SlotFlags::BUF_CHANGED)
        {
            let _ = s.write(0, &ctx.frame[off..size]);
            ctx.walker.update(&mut ctx.frame);
        } else if o & (opt::PREFETCH | opt::ACCESS) != 0 {
            std::hint::black_box(s.buf().map(|b| b.first().copied()).ok());
        }
        let _ = s.set_len((size - off).min(usize::from(u16::MAX)) as u16);
        s.set_flags(flags);
        if dump_it {
            dump(id, &s);
        }
        sent += 1;
        if sent == npkts {
            s.set_flags(flags | SlotFlags::REPORT);
        }
    }
    slots.advance();
    if sent < count {
        ring.wait_for_more();
    }
    sent
}

/// The options that change what [`send_packets`] does per slot.
const SLOT_OPTIONS: u32 = opt::RUBBISH
    | opt::INDIRECT
    | opt::COPY
    | opt::MEMCPY
    | opt::PREFETCH
    | opt::ACCESS
    | opt::DUMP;

/// The common case of [`send_packets`], kept apart so that its loop has no
/// per-slot option tests: one slot per packet of `len` bytes, the frame copied
/// only into buffers marked changed (or into every one with `copy_always`), the
/// last slot marked `NS_REPORT`. Fills the whole window; returns the packets.
fn fill_plain(slots: &mut Slots<'_, '_, Tx>, ctx: &mut TxCtx, len: u16, copy_always: bool) -> u32 {
    let mut left = slots.remaining();
    while let Some(mut s) = slots.next_slot() {
        if copy_always || s.flags().contains(SlotFlags::BUF_CHANGED) {
            let _ = s.write(0, &ctx.frame[..usize::from(len)]);
            ctx.walker.update(&mut ctx.frame);
        }
        let _ = s.set_len(len);
        left -= 1;
        s.set_flags(if left == 0 {
            SlotFlags::REPORT
        } else {
            SlotFlags::empty()
        });
    }
    slots.taken()
}

fn dump(ring: u16, s: &SlotMut<'_>) {
    let data = s.data().unwrap_or(&[]);
    print!(
        "{}",
        hexdump(ring, s.index(), s.buf_idx(), s.flags().bits(), data)
    );
}

/// Consumes up to `limit` slots of `ring` (the reference's `receive_packets`):
/// adds their lengths to `bytes`, releases them, returns the complete packets.
pub fn receive_packets(ring: &mut RxRing<'_>, limit: u32, dump_it: bool, bytes: &mut u64) -> u32 {
    let id = ring.id();
    let mut slots = ring.slots(limit);
    let mut complete = 0;
    let mut total = 0u64;
    while let Some(s) = slots.next_slot() {
        total += u64::from(s.len());
        if dump_it {
            dump(id, &s);
        }
        if !s.flags().contains(SlotFlags::MOREFRAG) {
            complete += 1;
        }
    }
    slots.advance();
    *bytes += total;
    complete
}

/// Free room for the kernel in an RX ring (`head + num_slots - tail`, mod).
fn rx_room(ring: &RxRing<'_>) -> u64 {
    let n = u64::from(ring.num_slots());
    (u64::from(ring.head()) + n - u64::from(ring.tail())) % n
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// The sender loop on `port` (or the dummy sender when `port` is `None`).
pub fn sender<P: Dev>(port: Option<&P>, cfg: &Config, st: &ThreadState, mut ctx: TxCtx) {
    let n = cfg.npackets / cfg.nthreads as u64;
    let mut rng = Rng::new(0x9e37_79b9 ^ st.me as u64);
    let (burst, period) = if cfg.tx_rate > 0 {
        crate::args::rate_period(cfg.tx_rate, cfg.burst)
    } else {
        (cfg.burst, Duration::ZERO)
    };
    let mut sent = 0u64;
    let mut bytes = 0u64;
    let mut events = 0u64;
    let mut tosend: i64 = 0;
    let start = Instant::now();
    st.tic(start);
    let mut next = start;
    let Some(port) = port else {
        // Dummy sender: build packets into a private buffer, nothing is sent.
        let mut buf = vec![0u8; ctx.frame.len()];
        let size = ctx.frame.len() as u64;
        let mut i = 0;
        while !st.cancelled() && (n == 0 || sent < n) {
            if ctx.options & opt::RUBBISH == 0 {
                buf.copy_from_slice(&ctx.frame);
                ctx.walker.update(&mut ctx.frame);
            }
            sent += 1;
            i += 1;
            if i > 10_000 {
                st.set(sent, sent * size, sent);
                i = 0;
            }
        }
        std::hint::black_box(&buf);
        st.set(sent, sent * size, sent);
        st.toc(Instant::now());
        st.completed.store(true, Ordering::Relaxed);
        st.used.store(false, Ordering::Relaxed);
        return;
    };
    let rings = port.tx_rings();
    if let Some(r) = port.try_tx_ring(rings.start) {
        // With `@offset`, the data of a slot starts behind its offset.
        let room = r.buf_size() - r.data_offset(r.head()) as u32;
        ctx.fit_fragments(room, cfg.frag_size);
    }
    if cfg.verbose > 0 || ctx.frags > 1 {
        d!(
            "sender_body",
            "frags {} frag_size {}",
            ctx.frags,
            ctx.frag_size
        );
    }
    for i in rings.clone() {
        if let Some(mut r) = port.try_tx_ring(i) {
            r.mark_all_buf_changed();
        }
    }
    d!(
        "sender_body",
        "start, fd {} main_fd {}",
        port.fd(),
        port.fd()
    );
    while !st.cancelled() && (n == 0 || sent < n) {
        if cfg.tx_rate > 0 && tosend <= 0 {
            tosend = i64::from(burst);
            next += period;
            sleep_until(next);
        }
        match port.poll(PollFlags::OUT, Duration::from_millis(2000)) {
            Ok(ev) if ev.contains(PollFlags::ERR) => {
                d!(
                    "sender_body",
                    "poll error on {} ring {}-{}",
                    port.fd(),
                    rings.start,
                    rings.end.saturating_sub(1)
                );
                st.used.store(false, Ordering::Relaxed);
                return;
            }
            Ok(ev) if ev.is_empty() => {
                if st.cancelled() {
                    break;
                }
                d!("sender_body", "poll error on queue {}: timeout", st.me);
            }
            Ok(_) => {}
            Err(e) => d!("sender_body", "poll error on queue {}: {e}", st.me),
        }
        for i in rings.clone() {
            let mut limit = if cfg.tx_rate > 0 {
                tosend.max(0) as u64
            } else {
                u64::from(burst)
            };
            if n > 0 && n == sent {
                break;
            }
            if n > 0 && n - sent < limit {
                limit = n - sent;
            }
            // Another thread of this process may be using the same ring (modes that
            // bind the same rings on every thread): skip it this round.
            let Some(mut ring) = port.try_tx_ring(i) else {
                continue;
            };
            if ring.is_empty() {
                continue;
            }
            let size = if cfg.pkt_min_size > 0 {
                let span = u64::from(cfg.pkt_size - cfg.pkt_min_size);
                (rng.next_u64() % span) as usize + cfg.pkt_min_size as usize + ctx.virt
            } else {
                ctx.frame.len()
            };
            let m = send_packets(&mut ring, &mut ctx, size, limit as u32);
            sent += u64::from(m);
            bytes += u64::from(m) * size as u64;
            if m > 0 {
                events += 1;
            }
            st.set(sent, bytes, events);
            if cfg.tx_rate > 0 {
                tosend -= i64::from(m);
                if tosend <= 0 {
                    break;
                }
            }
        }
    }
    // Flush, then wait until every TX ring is empty.
    let _ = port.sync_tx();
    for i in rings {
        loop {
            let pending = port.try_tx_ring(i).is_some_and(|r| r.tx_pending());
            if !pending || st.cancelled() {
                break;
            }
            let _ = port.sync_tx();
            std::thread::sleep(Duration::from_micros(1));
        }
    }
    st.set(sent, bytes, events);
    st.toc(Instant::now());
    st.completed.store(true, Ordering::Relaxed);
    st.used.store(false, Ordering::Relaxed);
}

/// The receiver loop.
pub fn receiver<P: Dev>(port: &P, cfg: &Config, st: &ThreadState) {
    let n = cfg.npackets / cfg.nthreads as u64;
    let dump_it = cfg.options & opt::DUMP != 0;
    d!(
        "receiver_body",
        "reading from {} fd {} main_fd {}",
        port.name(),
        port.fd(),
        port.fd()
    );
    let quit = |st: &ThreadState| st.used.store(false, Ordering::Relaxed);
    // Unbounded wait for the first packet.
    while !st.cancelled() {
        match port.poll(PollFlags::IN, Duration::from_millis(1000)) {
            Ok(ev) if ev.contains(PollFlags::ERR) => {
                d!("receiver_body", "fd error");
                return quit(st);
            }
            Ok(ev) if ev.contains(PollFlags::IN) => break,
            Ok(ev) => d!(
                "receiver_body",
                "waiting for initial packets, poll returns {} {:#x}",
                i32::from(!ev.is_empty()),
                ev.bits()
            ),
            Err(e) => {
                d!("receiver_body", "poll() error: {e}");
                return quit(st);
            }
        }
    }
    st.tic(Instant::now());
    let (mut pkts, mut bytes, mut events) = (0u64, 0u64, 0u64);
    while !st.cancelled() {
        if n > 0 && pkts >= n {
            break;
        }
        match port.poll(PollFlags::IN, Duration::from_millis(1000)) {
            Ok(ev) if ev.contains(PollFlags::ERR) => {
                d!("receiver_body", "poll err");
                return quit(st);
            }
            Ok(ev) if ev.is_empty() && !cfg.forever && !st.cancelled() => {
                // Idle for one second: stop, not counting the timeout.
                st.set(pkts, bytes, events);
                st.toc(Instant::now() - Duration::from_secs(1));
                st.completed.store(true, Ordering::Relaxed);
                return quit(st);
            }
            Ok(_) => {}
            Err(e) => {
                d!("receiver_body", "poll() error: {e}");
                return quit(st);
            }
        }
        let mut space = 0u64;
        for i in port.rx_rings() {
            let Some(mut ring) = port.try_rx_ring(i) else {
                continue;
            };
            space += rx_room(&ring);
            if ring.is_empty() {
                continue;
            }
            let m = receive_packets(&mut ring, cfg.burst, dump_it, &mut bytes);
            pkts += u64::from(m);
            if m > 0 {
                events += 1;
            }
        }
        st.min_space.fetch_min(space, Ordering::Relaxed);
        st.set(pkts, bytes, events);
    }
    // Give the consumed slots back before leaving (-n reached, or SIGINT): a
    // pipe sender regains its TX slots only when the receiver releases them,
    // and waits for its ring to drain.
    let _ = port.sync_rx();
    st.set(pkts, bytes, events);
    st.toc(Instant::now());
    st.completed.store(true, Ordering::Relaxed);
    quit(st);
}

/// Offset of the sequence number in ping frames (after the UDP header).
const SEQ_OFF: usize = 42;
/// Offset of the timestamp (`u32` seconds, `u32` nanoseconds).
const TS_OFF: usize = 46;

/// RTT statistics of ping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rtt {
    /// Samples.
    pub count: u64,
    /// Minimum (ns).
    pub min: u64,
    /// Maximum (ns).
    pub max: u64,
    /// Sum (ns).
    pub sum: u64,
}

impl Default for Rtt {
    fn default() -> Self {
        Self {
            count: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }
}

impl Rtt {
    /// Adds a sample.
    pub fn add(&mut self, ns: u64) {
        self.count += 1;
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
        self.sum += ns;
    }

    /// Merges another period.
    pub fn merge(&mut self, o: &Rtt) {
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
    }

    /// `min X av Y max Z ns`.
    pub fn describe(&self) -> String {
        if self.count == 0 {
            return "no replies".into();
        }
        format!(
            "min {} av {} max {} ns",
            self.min,
            self.sum / self.count,
            self.max
        )
    }
}

/// Stamps a ping frame in buffer `buf` with sequence `seq` and time `ns` (since
/// the program's epoch).
pub fn stamp(buf: &mut [u8], virt: usize, seq: u32, ns: u64) {
    let o = virt + SEQ_OFF;
    if buf.len() >= virt + TS_OFF + 8 {
        buf[o..o + 4].copy_from_slice(&seq.to_ne_bytes());
        let t = virt + TS_OFF;
        buf[t..t + 4].copy_from_slice(&((ns / 1_000_000_000) as u32).to_ne_bytes());
        buf[t + 4..t + 8].copy_from_slice(&((ns % 1_000_000_000) as u32).to_ne_bytes());
    }
}

/// The time stamped by [`stamp`] (ns since the epoch), if the frame is long enough.
pub fn read_stamp(data: &[u8], virt: usize) -> Option<u64> {
    let t = virt + TS_OFF;
    let b = data.get(t..t + 8)?;
    let sec = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
    let nsec = u32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
    Some(u64::from(sec) * 1_000_000_000 + u64::from(nsec))
}

/// The ping loop: sends stamped frames, reads the echoes, reports RTTs every
/// second and at the end.
pub fn ping<P: Dev>(port: &P, cfg: &Config, st: &ThreadState, ctx: &TxCtx, epoch: Instant) -> Rtt {
    let n = cfg.npackets;
    let virt = ctx.virt;
    let mut sent = 0u64;
    let mut events = 0u64;
    let mut total = Rtt::default();
    let mut period = Rtt::default();
    let mut last_print = Instant::now();
    st.tic(last_print);
    let first_tx = port.tx_rings().start;
    while !st.cancelled() && (n == 0 || sent < n) {
        {
            let Some(mut ring) = port.try_tx_ring(first_tx) else {
                break;
            };
            let mut limit = u64::from(cfg.burst);
            if n > 0 && n - sent < limit {
                limit = n - sent;
            }
            let mut m = 0;
            while m < limit {
                if ring.is_empty() {
                    d!("ping_body", "-- ouch, cannot send");
                    break;
                }
                let head = ring.head();
                let _ = ring.write(head, 0, &ctx.frame);
                let start = ring.data_offset(head);
                if let Ok(b) = ring.buf_mut(head) {
                    stamp(
                        &mut b[start..],
                        virt,
                        sent as u32,
                        epoch.elapsed().as_nanos() as u64,
                    );
                }
                ring.advance(1);
                sent += 1;
                m += 1;
            }
            if m > 0 {
                events += 1;
            }
        }
        st.set(sent, sent * ctx.frame.len() as u64, events);
        match port.poll(PollFlags::IN, Duration::from_millis(3000)) {
            Ok(ev) if ev.is_empty() => {
                if !st.cancelled() {
                    d!("ping_body", "poll error on queue {}: timeout", st.me);
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                d!("ping_body", "poll error on queue {}: {e}", st.me);
                continue;
            }
        }
        let now = epoch.elapsed().as_nanos() as u64;
        for i in port.rx_rings() {
            let Some(mut ring) = port.try_rx_ring(i) else {
                continue;
            };
            while let Some(pkt) = ring.recv() {
                if let Some(t) = read_stamp(pkt.data(), virt) {
                    period.add(now.saturating_sub(t));
                }
            }
        }
        if last_print.elapsed() >= Duration::from_secs(1) {
            d!(
                "ping_body",
                "count {} RTT: {}",
                period.count,
                period.describe()
            );
            total.merge(&period);
            period = Rtt::default();
            last_print = Instant::now();
        }
    }
    total.merge(&period);
    st.toc(Instant::now());
    st.completed.store(true, Ordering::Relaxed);
    st.used.store(false, Ordering::Relaxed);
    total
}

/// Copies the packets of `rx` into `tx` with source and destination swapped;
/// returns the packets echoed (packets that find no TX room are dropped, like the
/// reference).
pub fn pong_rings(rx: &mut RxRing<'_>, tx: &mut TxRing<'_>) -> (u64, u64) {
    let (mut echoed, mut bytes) = (0u64, 0u64);
    while let Some(pkt) = rx.recv() {
        if tx.is_empty() {
            continue;
        }
        let head = tx.head();
        let data = pkt.data();
        let start = tx.data_offset(head);
        if tx.write(head, 0, data).is_ok()
            && let Ok(b) = tx.buf_mut(head)
        {
            swap_addresses(&mut b[start..start + data.len()]);
            let _ = tx.set_slot_flags(head, SlotFlags::empty());
            tx.advance(1);
            echoed += 1;
            bytes += data.len() as u64;
        }
    }
    (echoed, bytes)
}

/// The pong loop.
pub fn pong<P: Dev>(port: &P, cfg: &Config, st: &ThreadState) -> u64 {
    let n = cfg.npackets;
    let (mut echoed, mut bytes, mut events) = (0u64, 0u64, 0u64);
    st.tic(Instant::now());
    let first_tx = port.tx_rings().start;
    while !st.cancelled() && (n == 0 || echoed < n) {
        match port.poll(PollFlags::IN, Duration::from_millis(1000)) {
            Ok(ev) if ev.is_empty() => {
                if !st.cancelled() {
                    d!("pong_body", "poll error on queue {}: timeout", st.me);
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                d!("pong_body", "poll error on queue {}: {e}", st.me);
                continue;
            }
        }
        let Some(mut tx) = port.try_tx_ring(first_tx) else {
            break;
        };
        for i in port.rx_rings() {
            let Some(mut rx) = port.try_rx_ring(i) else {
                continue;
            };
            let (m, b) = pong_rings(&mut rx, &mut tx);
            echoed += m;
            bytes += b;
            if m > 0 {
                events += 1;
            }
        }
        drop(tx);
        let _ = port.sync_tx();
        st.set(echoed, bytes, events);
    }
    st.toc(Instant::now());
    st.completed.store(true, Ordering::Relaxed);
    st.used.store(false, Ordering::Relaxed);
    echoed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{self, FrameSpec, IpRange, Mac};
    use netmap_uapi::consts::NS_REPORT;
    use netmap_uapi::user::testing::{FakeConfig, FakeRegion};

    fn spec(size: usize) -> FrameSpec {
        FrameSpec {
            size,
            virt_header: 0,
            src_mac: Mac([2, 0, 0, 0, 0, 1]),
            dst_mac: Mac::BROADCAST,
            src: IpRange::parse("10.0.0.1").unwrap(),
            dst: IpRange::parse("10.1.0.1:5-10.1.0.1:6").unwrap(),
            indirect: false,
        }
    }

    fn ctx(size: usize, options: u32) -> TxCtx {
        let s = spec(size);
        TxCtx {
            frame: frame::build(&s).unwrap(),
            virt: 0,
            frags: 1,
            frag_size: size as u32,
            options,
            walker: AddrWalker::new(&s, false, false, 1),
        }
    }

    fn fake(slots: u32, buf: u32) -> FakeRegion {
        FakeRegion::new(FakeConfig {
            slots,
            buf_size: buf,
            ..FakeConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn first_pass_copies_then_buffers_are_reused() {
        let f = fake(8, 2048);
        let mut c = ctx(60, 0);
        f.tx_ring(0).mark_all_buf_changed();
        let sent = send_packets(&mut f.tx_ring(0), &mut c, 60, 512);
        assert_eq!(sent, 7);
        let r = f.tx_ring(0);
        assert_eq!(r.head(), 7);
        assert_eq!(r.cur(), r.tail(), "ring full: wake me when there is room");
        drop(r);
        assert_ne!(
            f.kernel_slot(true, 0, 6).flags & NS_REPORT,
            0,
            "last slot reports"
        );
        let frames = f.txsync(0);
        assert_eq!(frames.len(), 7);
        assert!(
            frames
                .iter()
                .all(|fr| fr.len() == 60 && frame::checksums_ok(fr, 0, frame::Family::V4))
        );
        // Destination port range 5..6: each copy advanced the walker.
        assert_eq!(u16::from_be_bytes([frames[0][36], frames[0][37]]), 5);
        assert_eq!(u16::from_be_bytes([frames[1][36], frames[1][37]]), 6);
        // Second pass: buffers not changed → not rewritten (same content as before).
        let sent = send_packets(&mut f.tx_ring(0), &mut c, 60, 3);
        assert_eq!(sent, 3);
        assert_eq!(f.tx_ring(0).head(), 2, "wrapped around");
        let again = f.txsync(0);
        assert_eq!(again.len(), 3);
        // Slot 7 was never used: its buffer is still marked changed and gets a fresh
        // copy (the walker moved on to port 6); slots 0 and 1 keep their frames.
        assert_eq!(u16::from_be_bytes([again[0][36], again[0][37]]), 6);
        assert_eq!(again[1], frames[0]);
        assert_eq!(again[2], frames[1]);
    }

    #[test]
    fn fragments_and_limits() {
        let f = fake(16, 64);
        let mut c = ctx(200, opt::COPY);
        c.frags = 1;
        c.fit_fragments(64, None);
        assert_eq!((c.frags, c.frag_size), (4, 64));
        let sent = send_packets(&mut f.tx_ring(0), &mut c, 200, 10);
        assert_eq!(sent, 3, "15 free slots / 4 per packet");
        let frames = f.txsync(0);
        assert_eq!(frames.len(), 3);
        assert!(frames.iter().all(|fr| fr.len() == 200));
        assert!(frame::checksums_ok(&frames[0], 0, frame::Family::V4));
        let mut c = ctx(200, opt::COPY);
        c.frags = 2;
        c.fit_fragments(2048, Some(150));
        assert_eq!((c.frags, c.frag_size), (2, 100));
        let mut c = ctx(60, 0);
        assert_eq!(send_packets(&mut f.tx_ring(0), &mut c, 60, 0), 0);
    }

    #[test]
    fn copy_option_rewrites_every_buffer() {
        let f = fake(8, 2048);
        let mut c = ctx(60, opt::COPY);
        assert_eq!(send_packets(&mut f.tx_ring(0), &mut c, 60, 3), 3);
        let first = f.txsync(0);
        assert_eq!(send_packets(&mut f.tx_ring(0), &mut c, 60, 3), 3);
        let second = f.txsync(0);
        let port = |fr: &Vec<u8>| u16::from_be_bytes([fr[36], fr[37]]);
        // Buffers not marked changed are still rewritten: the walker moves on
        // with every packet (destination ports 5, 6, 5, ...).
        assert_eq!(first.iter().map(port).collect::<Vec<_>>(), [5, 6, 5]);
        assert_eq!(second.iter().map(port).collect::<Vec<_>>(), [6, 5, 6]);
        assert!(
            second
                .iter()
                .all(|fr| frame::checksums_ok(fr, 0, frame::Family::V4))
        );
        assert_ne!(f.kernel_slot(true, 0, 5).flags & NS_REPORT, 0);
    }

    #[test]
    fn rubbish_and_indirect_use_one_slot_per_packet() {
        // Like the reference: a packet is started only with `frags` free slots,
        // but takes one slot when nothing is written into the buffers.
        let f = fake(8, 64);
        let mut c = ctx(200, opt::RUBBISH);
        c.fit_fragments(64, None);
        assert_eq!(c.frags, 4);
        assert_eq!(send_packets(&mut f.tx_ring(0), &mut c, 200, 10), 4);
        assert_eq!(f.tx_ring(0).head(), 4);
        let f = fake(8, 2048);
        let mut c = ctx(60, opt::INDIRECT);
        assert_eq!(send_packets(&mut f.tx_ring(0), &mut c, 60, 2), 2);
        for i in 0..2 {
            let s = f.kernel_slot(true, 0, i);
            assert_eq!(s.ptr, c.frame.as_ptr() as usize as u64);
            assert_eq!(s.len, 60);
            assert_ne!(s.flags & SlotFlags::INDIRECT.bits(), 0);
        }
    }

    #[test]
    fn receive_counts_complete_packets() {
        let f = fake(8, 64);
        assert!(f.deliver(0, &[1; 100]));
        assert!(f.deliver(0, &[2; 60]));
        let mut bytes = 0;
        let m = receive_packets(&mut f.rx_ring(0), 512, false, &mut bytes);
        assert_eq!((m, bytes), (2, 160));
        assert!(f.rx_ring(0).is_empty());
        assert!(f.deliver(0, &[3; 60]));
        assert!(f.deliver(0, &[3; 60]));
        let m = receive_packets(&mut f.rx_ring(0), 1, false, &mut bytes);
        assert_eq!(m, 1, "burst limit");
        assert_eq!(
            rx_room(&f.rx_ring(0)),
            7,
            "num_slots minus the 1 pending slot"
        );
    }

    #[test]
    fn pong_echoes_with_swapped_addresses() {
        let f = fake(8, 2048);
        let fr = frame::build(&spec(60)).unwrap();
        assert!(f.deliver(0, &fr));
        assert!(f.deliver(0, &fr));
        let (m, b) = pong_rings(&mut f.rx_ring(0), &mut f.tx_ring(0));
        assert_eq!((m, b), (2, 120));
        let out = f.txsync(0);
        assert_eq!(out.len(), 2);
        assert_eq!(&out[0][0..6], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&out[0][30..34], &[10, 0, 0, 1]);
    }

    #[test]
    fn reporter_sleeps_until_the_deadline_or_the_last_worker_ends() {
        let fin = Finished::default();
        let t0 = Instant::now();
        assert!(!fin.wait(1, t0 + Duration::from_millis(30)));
        assert!(
            t0.elapsed() >= Duration::from_millis(30),
            "slept to the deadline"
        );
        let states = [ThreadState::new(0), ThreadState::new(1)];
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for st in &states {
                let fin = &fin;
                s.spawn(move || {
                    let _done = Done(st, fin);
                    std::thread::sleep(Duration::from_millis(20));
                });
            }
            assert!(fin.wait(2, t0 + Duration::from_secs(60)));
        });
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "woken by the workers, not the deadline"
        );
        assert!(states.iter().all(|s| !s.used.load(Ordering::Relaxed)));
        assert!(fin.wait(2, t0), "already ended: no wait");
    }

    #[test]
    fn ping_stamps_round_trip() {
        let mut b = vec![0u8; 60];
        stamp(&mut b, 0, 7, 3_000_000_123);
        assert_eq!(read_stamp(&b, 0), Some(3_000_000_123));
        assert_eq!(u32::from_ne_bytes([b[42], b[43], b[44], b[45]]), 7);
        assert_eq!(read_stamp(&b[..50], 0), None);
        let mut r = Rtt::default();
        assert_eq!(r.describe(), "no replies");
        r.add(100);
        r.add(300);
        assert_eq!(r.describe(), "min 100 av 200 max 300 ns");
    }

    /// A [`Dev`] on a fake region whose "kernel" runs inside `poll`: it transmits
    /// (counts) everything queued on the TX rings, optionally echoes it back, and
    /// delivers queued frames into the RX rings.
    struct FakeDev {
        f: FakeRegion,
        sent: std::cell::RefCell<Vec<Vec<u8>>>,
        to_deliver: std::cell::RefCell<std::collections::VecDeque<Vec<u8>>>,
        echo: bool,
    }

    impl FakeDev {
        fn new(slots: u32, buf: u32, echo: bool) -> Self {
            FakeDev {
                f: fake(slots, buf),
                sent: Default::default(),
                to_deliver: Default::default(),
                echo,
            }
        }
        fn kernel(&self) {
            for i in self.f.tx_rings() {
                let frames = self.f.txsync(i);
                if self.echo {
                    let mut q = self.to_deliver.borrow_mut();
                    for fr in &frames {
                        let mut e = fr.clone();
                        swap_addresses(&mut e);
                        q.push_back(e);
                    }
                }
                self.sent.borrow_mut().extend(frames);
            }
            for i in self.f.rx_rings() {
                self.f.rxsync(i);
                let mut q = self.to_deliver.borrow_mut();
                while let Some(fr) = q.front() {
                    if !self.f.deliver(i, fr) {
                        break;
                    }
                    q.pop_front();
                }
            }
        }
    }

    impl Dev for FakeDev {
        fn name(&self) -> String {
            "fake".into()
        }
        fn fd(&self) -> i32 {
            -1
        }
        fn tx_rings(&self) -> Range<u16> {
            self.f.tx_rings()
        }
        fn rx_rings(&self) -> Range<u16> {
            self.f.rx_rings()
        }
        fn try_tx_ring(&self, i: u16) -> Option<TxRing<'_>> {
            self.f.try_tx_ring(i)
        }
        fn try_rx_ring(&self, i: u16) -> Option<RxRing<'_>> {
            self.f.try_rx_ring(i)
        }
        fn poll(&self, events: PollFlags, _timeout: Duration) -> Result<PollFlags, Error> {
            self.kernel();
            let mut ev = PollFlags::empty();
            if events.contains(PollFlags::OUT)
                && self.tx_rings().any(|i| {
                    let r = self.f.tx_ring(i);
                    r.cur() != r.tail()
                })
            {
                ev |= PollFlags::OUT;
            }
            if events.contains(PollFlags::IN)
                && self.rx_rings().any(|i| {
                    let r = self.f.rx_ring(i);
                    r.cur() != r.tail()
                })
            {
                ev |= PollFlags::IN;
            }
            Ok(ev)
        }
        fn sync_tx(&self) -> Result<(), Error> {
            self.kernel();
            Ok(())
        }
        fn sync_rx(&self) -> Result<(), Error> {
            self.kernel();
            Ok(())
        }
    }

    fn config(argv: &[&str]) -> Config {
        let mut v = vec!["pkt-gen", "-i", "vale0:x"];
        v.extend_from_slice(argv);
        let a = <crate::args::Args as clap::Parser>::try_parse_from(v).unwrap();
        Config::from_args(a, 4).unwrap()
    }

    #[test]
    fn sender_loop_sends_exactly_n_packets() {
        let dev = FakeDev::new(32, 2048, false);
        let cfg = config(&["-f", "tx", "-n", "1000", "-b", "64"]);
        let st = ThreadState::new(0);
        sender(Some(&dev), &cfg, &st, ctx(60, 0));
        assert!(st.completed.load(Ordering::Relaxed));
        assert_eq!(st.pkts.load(Ordering::Relaxed), 1000);
        assert_eq!(st.bytes.load(Ordering::Relaxed), 60_000);
        assert!(st.events.load(Ordering::Relaxed) >= 1000 / 64);
        let sent = dev.sent.borrow();
        assert_eq!(sent.len(), 1000);
        assert!(
            sent.iter()
                .all(|f| f.len() == 60 && frame::checksums_ok(f, 0, frame::Family::V4))
        );
        let (tic, toc) = *st.tic_toc.lock().unwrap();
        assert!(tic.is_some() && toc >= tic);
    }

    #[test]
    fn sender_loop_with_fragments_and_rate_limit() {
        let dev = FakeDev::new(64, 2048, false);
        let cfg = config(&["-f", "tx", "-n", "100", "-F", "3", "-R", "100000"]);
        let st = ThreadState::new(0);
        let mut c = ctx(300, 0);
        c.frags = cfg.frags;
        sender(Some(&dev), &cfg, &st, c);
        assert_eq!(st.pkts.load(Ordering::Relaxed), 100);
        let sent = dev.sent.borrow();
        assert_eq!(
            sent.len(),
            100,
            "3 slots per packet, reassembled by the kernel"
        );
        assert!(sent.iter().all(|f| f.len() == 300));
    }

    #[test]
    fn receiver_loop_stops_at_n_or_when_idle() {
        let dev = FakeDev::new(64, 2048, false);
        let fr = frame::build(&spec(60)).unwrap();
        dev.to_deliver
            .borrow_mut()
            .extend(std::iter::repeat_n(fr.clone(), 500));
        let cfg = config(&["-f", "rx", "-n", "500", "-b", "16"]);
        let st = ThreadState::new(0);
        receiver(&dev, &cfg, &st);
        assert!(st.completed.load(Ordering::Relaxed));
        assert_eq!(st.pkts.load(Ordering::Relaxed), 500);
        assert_eq!(st.bytes.load(Ordering::Relaxed), 30_000);
        assert_ne!(st.min_space.load(Ordering::Relaxed), u64::MAX);
        // The last packets were released to the kernel before leaving.
        assert_eq!(dev.f.rx_room(0), 63);

        // -W: leave once a poll finds nothing.
        let dev = FakeDev::new(64, 2048, false);
        dev.to_deliver
            .borrow_mut()
            .extend(std::iter::repeat_n(fr, 10));
        let cfg = config(&["-f", "rx", "-W"]);
        let st = ThreadState::new(0);
        receiver(&dev, &cfg, &st);
        assert!(st.completed.load(Ordering::Relaxed));
        assert_eq!(st.pkts.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn ping_against_an_echoing_peer() {
        let dev = FakeDev::new(16, 2048, true);
        let cfg = config(&["-f", "ping", "-n", "50"]);
        let st = ThreadState::new(0);
        let c = ctx(60, 0);
        let rtt = ping(&dev, &cfg, &st, &c, Instant::now());
        assert_eq!(st.pkts.load(Ordering::Relaxed), 50);
        assert_eq!(rtt.count, 50, "the fake kernel echoes within the same poll");
        assert!(rtt.min <= rtt.max);
    }

    #[test]
    fn pong_loop_echoes_n_packets() {
        let dev = FakeDev::new(16, 2048, false);
        let fr = frame::build(&spec(60)).unwrap();
        dev.to_deliver
            .borrow_mut()
            .extend(std::iter::repeat_n(fr, 20));
        let cfg = config(&["-f", "pong", "-n", "20"]);
        let st = ThreadState::new(0);
        assert_eq!(pong(&dev, &cfg, &st), 20);
        dev.kernel();
        let sent = dev.sent.borrow();
        assert_eq!(sent.len(), 20);
        assert_eq!(&sent[0][0..6], &[2, 0, 0, 0, 0, 1], "MACs swapped");
    }
}
