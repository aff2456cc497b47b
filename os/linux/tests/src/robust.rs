//! The kernel never trusts userspace: a client scribbling over its rings
//! does not disturb other ports (spec §6.4), and a client killed in the
//! middle of traffic leaves nothing behind (the runner's leak check).

use crate::port::{BCAST, Port, check_frame, frame, mac};
use crate::proc::{Signal, spawn};
use crate::sys::errno_name;
use crate::{Test, ensure};
use netmap_uapi::NetmapSlot;

pub const TESTS: &[Test] = &[
    ("hostile_ring_indexes", hostile_ring_indexes),
    ("hostile_client_vs_traffic", hostile_client_vs_traffic),
    ("kill9_during_traffic", kill9_during_traffic),
];

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick(&mut self, choices: &[u32]) -> u32 {
        choices[(self.next() % choices.len() as u64) as usize]
    }
}

/// Out-of-range head/cur/tail: syncs do not fail (TX) and the kernel puts
/// the indexes back in range (reinit); poll reports POLLERR.
fn hostile_ring_indexes() -> Result<(), String> {
    let p = Port::open("vale11:h")?;
    let tx = p.tx(0)?;
    let n = tx.num_slots();
    tx.poke(0xdead_beef, 5000, 7);
    p.txsync()?;
    ensure!(
        tx.head() < n && tx.cur() < n && tx.tail() < n,
        "TX indexes not restored: {}/{}/{}",
        tx.head(),
        tx.cur(),
        tx.tail()
    );
    let rx = p.rx(0)?;
    rx.poke(n, n + 1, u32::MAX);
    p.rxsync()?;
    ensure!(
        rx.head() < n && rx.cur() < n && rx.tail() < n,
        "RX indexes not restored: {}/{}/{}",
        rx.head(),
        rx.cur(),
        rx.tail()
    );
    rx.poke(u32::MAX, 0, 0);
    let rev = p.fd.poll(libc::POLLIN, 100).map_err(errno_name)?;
    ensure!(
        rev & libc::POLLERR != 0,
        "poll on a corrupted ring gave {rev:#x}, want POLLERR"
    );
    // Bad buffer indexes and lengths in slots, then a "send" of them.
    for i in 0..n {
        tx.set_slot(
            i,
            NetmapSlot {
                buf_idx: 0xffff_fff0 - i,
                len: 0xffff,
                flags: 0xffff,
                ptr: u64::MAX,
            },
        )?;
    }
    tx.set_head_cur(tx.tail());
    p.txsync()?;
    p.txsync()?;
    Ok(())
}

/// One process writes garbage into its ring headers and slots and syncs in
/// a loop (its switch also has a sink port that receives what it manages to
/// send), while two other ports exchange checked traffic on another switch;
/// the traffic must be unaffected. (Not the same switch: VALE has no
/// back-pressure, so garbage floods would legitimately drop frames.)
fn hostile_client_vs_traffic() -> Result<(), String> {
    let ready = Signal::new()?;
    let hostile = spawn(|| {
        let p = Port::open("vale12x:evil")?;
        let sink = Port::open("vale12x:sink")?;
        ready.notify();
        let tx = p.tx(0)?;
        let rx = p.rx(0)?;
        let n = tx.num_slots();
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for round in 0..3000u32 {
            let idx = [0, 1, n - 1, n, n + 1, u32::MAX, 0x8000_0000, round % n];
            tx.poke(rng.pick(&idx), rng.pick(&idx), rng.pick(&idx));
            rx.poke(rng.pick(&idx), rng.pick(&idx), rng.pick(&idx));
            let s = (rng.next() % u64::from(n)) as u32;
            let bufs = [0, 1, 2, 0xffff_ffff, 40_000, (rng.next() % 30_000) as u32];
            let slot = NetmapSlot {
                buf_idx: rng.pick(&bufs),
                len: rng.pick(&[0, 1, 13, 14, 60, 2048, 2049, 65535]) as u16,
                flags: rng.next() as u16,
                ptr: rng.next(),
            };
            tx.set_slot(s, slot)?;
            rx.set_slot(s, slot)?;
            // Errors are allowed; crashes and hangs are not.
            let _ = p.fd.ioctl_val(netmap_uapi::NIOCTXSYNC, 0);
            let _ = p.fd.ioctl_val(netmap_uapi::NIOCRXSYNC, 0);
            if round % 16 == 0 {
                let _ = p.fd.poll(libc::POLLIN | libc::POLLOUT, 0);
                for f in sink.recv()? {
                    ensure!(f.len() <= 2048, "sink got a {}-byte frame", f.len());
                }
            }
        }
        Ok(())
    })?;
    ready.wait(10_000)?;
    let a = Port::open("vale12:a")?;
    let b = Port::open("vale12:b")?;
    let mut got = 0u32;
    for round in 0..200u32 {
        let batch: Vec<Vec<u8>> = (0..5)
            .map(|i| frame(mac(0xb), mac(0xa), round * 5 + i, 60 + i as usize * 100))
            .collect();
        ensure!(a.send(&batch)? == 5, "round {round}: TX ring full");
        for f in b.recv()? {
            let seq = check_frame(&f, mac(0xa))?;
            ensure!(seq == got, "frame {seq} arrived, expected {got}");
            got += 1;
        }
    }
    ensure!(got == 1000, "b received {got} of 1000 frames");
    hostile.wait()
}

/// Sender and receiver are SIGKILLed mid-traffic; their ports go away
/// (pools back to baseline, checked by the runner) and the names are
/// immediately reusable.
fn kill9_during_traffic() -> Result<(), String> {
    let ready = Signal::new()?;
    let rx = spawn(|| {
        let p = Port::open("vale13:rx")?;
        ready.notify();
        loop {
            let _ = p.fd.poll(libc::POLLIN, 1000);
            let _ = p.recv();
        }
    })?;
    ready.wait(10_000)?;
    let tx = spawn(|| {
        let p = Port::open("vale13:tx")?;
        ready.notify();
        let frames: Vec<Vec<u8>> = (0..64).map(|i| frame(BCAST, mac(1), i, 1500)).collect();
        loop {
            p.send(&frames)?;
        }
    })?;
    ready.wait(10_000)?;
    std::thread::sleep(std::time::Duration::from_millis(500));
    tx.kill9();
    rx.kill9();
    for name in ["vale13:tx", "vale13:rx"] {
        let p = Port::open(name)?;
        ensure!(
            p.reg.nr_offset == 0,
            "{name} reopened with nr_offset {}",
            p.reg.nr_offset
        );
    }
    Ok(())
}
