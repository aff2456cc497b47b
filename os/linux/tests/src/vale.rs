//! VALE ports: registration and the shared-memory layout (spec §3, §5),
//! forwarding and learning (§8.3), poll (§6.7), exclusive use (§6.1) and
//! extra buffers (§5.4).

use crate::port::{BCAST, Port, all_nic, check_frame, frame, mac, register};
use crate::proc::{Signal, spawn};
use crate::sys::{errno_name, expect_err};
use crate::{Test, ensure};
use netmap_uapi::*;

pub const TESTS: &[Test] = &[
    ("vale_register_layout", vale_register_layout),
    ("vale_mmap_bounds", vale_mmap_bounds),
    ("vale_two_processes", vale_two_processes),
    ("vale_learning", vale_learning),
    ("vale_poll_readiness", vale_poll_readiness),
    ("vale_poll_wakeup", vale_poll_wakeup),
    ("vale_exclusive", vale_exclusive),
    ("vale_extra_bufs", vale_extra_bufs),
    ("vale_shared_port", vale_shared_port),
    ("vale_many_ports", vale_many_ports),
];

/// Default ephemeral VALE port (spec §5.5, derived values).
const VALE_MEMSIZE: u64 = 42_369_024;

/// REGISTER vale0:a: the body written back, the netmap_if and both rings.
fn vale_register_layout() -> Result<(), String> {
    let p = Port::open("vale0:a")?;
    let r = p.reg;
    ensure!(
        r.nr_tx_rings == 1 && r.nr_rx_rings == 1,
        "rings {}/{}",
        r.nr_tx_rings,
        r.nr_rx_rings
    );
    ensure!(
        r.nr_tx_slots == 1024 && r.nr_rx_slots == 1024,
        "slots {}/{}",
        r.nr_tx_slots,
        r.nr_rx_slots
    );
    ensure!(
        r.nr_host_tx_rings == 0 && r.nr_host_rx_rings == 0,
        "host rings {}/{}",
        r.nr_host_tx_rings,
        r.nr_host_rx_rings
    );
    ensure!(
        r.nr_mem_id > 1,
        "nr_mem_id {} (want a private allocator, > 1)",
        r.nr_mem_id
    );
    ensure!(
        r.nr_memsize == VALE_MEMSIZE,
        "nr_memsize {} want {VALE_MEMSIZE}",
        r.nr_memsize
    );
    ensure!(r.nr_offset == 0, "nr_offset {}", r.nr_offset);
    ensure!(r.nr_extra_bufs == 0, "nr_extra_bufs {}", r.nr_extra_bufs);
    ensure!(
        r.nr_mode == NR_REG_ALL_NIC,
        "nr_mode rewritten to {}",
        r.nr_mode
    );

    let n = p.nifp()?;
    ensure!(
        n.name() == b"vale0:a",
        "ni_name {:?}",
        String::from_utf8_lossy(n.name())
    );
    ensure!(
        n.ni_tx_rings == 1 && n.ni_rx_rings == 1,
        "ni rings {}/{}",
        n.ni_tx_rings,
        n.ni_rx_rings
    );
    ensure!(
        n.ni_host_tx_rings == 1 && n.ni_host_rx_rings == 1,
        "ni host rings {}/{} (want 1 fake each)",
        n.ni_host_tx_rings,
        n.ni_host_rx_rings
    );
    ensure!(
        n.ni_flags & NI_PRIV_MEM != 0,
        "ni_flags {:#x} lacks NI_PRIV_MEM",
        n.ni_flags
    );
    ensure!(n.ni_bufs_head == 0, "ni_bufs_head {}", n.ni_bufs_head);
    let ofs: Vec<i64> = (0..4).map(|i| p.ring_ofs(i)).collect::<Result<_, _>>()?;
    ensure!(
        ofs == [32768, 0, 12288, 0],
        "ring_ofs {ofs:?}, want [32768, 0, 12288, 0]"
    );

    let tx = p.tx(0)?;
    ensure!(
        tx.num_slots() == 1024 && tx.buf_size() == 2048,
        "tx ring {} slots x {}",
        tx.num_slots(),
        tx.buf_size()
    );
    ensure!(
        tx.head() == 0 && tx.cur() == 0 && tx.tail() == 1023,
        "tx head/cur/tail {}/{}/{}",
        tx.head(),
        tx.cur(),
        tx.tail()
    );
    ensure!(
        tx.dir() == 1 && tx.ringid() == 0,
        "tx dir {} ringid {}",
        tx.dir(),
        tx.ringid()
    );
    ensure!(tx.buf_ofs() == 389_120, "tx buf_ofs {}", tx.buf_ofs());
    let rx = p.rx(0)?;
    ensure!(
        rx.head() == 0 && rx.cur() == 0 && rx.tail() == 0,
        "rx head/cur/tail {}/{}/{}",
        rx.head(),
        rx.cur(),
        rx.tail()
    );
    ensure!(rx.dir() == 0, "rx dir {}", rx.dir());
    ensure!(rx.buf_ofs() == 409_600, "rx buf_ofs {}", rx.buf_ofs());

    // Every real slot has its own buffer (>= 2), len = buffer size.
    let mut seen = std::collections::HashSet::new();
    for (ring, name) in [(tx, "tx"), (rx, "rx")] {
        for i in 0..ring.num_slots() {
            let s = ring.slot(i)?;
            ensure!(s.buf_idx >= 2, "{name} slot {i}: buf_idx {}", s.buf_idx);
            ensure!(
                s.len == 2048 && s.flags == 0,
                "{name} slot {i}: len {} flags {:#x}",
                s.len,
                s.flags
            );
            ensure!(
                seen.insert(s.buf_idx),
                "{name} slot {i}: buffer {} used twice",
                s.buf_idx
            );
        }
    }
    ensure!(
        rx.slot(0)?.buf_idx == 2,
        "rx slot 0 has buffer {}, want 2",
        rx.slot(0)?.buf_idx
    );
    ensure!(
        tx.slot(0)?.buf_idx == 1026,
        "tx slot 0 has buffer {}, want 1026",
        tx.slot(0)?.buf_idx
    );
    // The buffers are really shared memory: write and read back.
    tx.put(0, &frame(BCAST, mac(1), 7, 60))?;
    check_frame(&tx.get(0)?, mac(1))?;
    Ok(())
}

/// mmap beyond nr_memsize → EINVAL; a partial mapping at an offset works.
fn vale_mmap_bounds() -> Result<(), String> {
    let p = Port::open("vale0:m")?;
    let size = p.reg.nr_memsize as usize;
    match p.fd.mmap(size + 4096, 0) {
        Err(e) if e == libc::EINVAL => {}
        Err(e) => return Err(format!("mmap(size+4096): {}, want EINVAL", errno_name(e))),
        Ok(_) => return Err("mmap beyond nr_memsize succeeded".into()),
    }
    match p.fd.mmap(8192, (size - 4096) as i64) {
        Err(e) if e == libc::EINVAL => {}
        Err(e) => {
            return Err(format!(
                "mmap(last page + 1): {}, want EINVAL",
                errno_name(e)
            ));
        }
        Ok(_) => return Err("mmap crossing the end succeeded".into()),
    }
    let m =
        p.fd.mmap(4096, 12288)
            .map_err(|e| format!("mmap at the ring pool: {}", errno_name(e)))?;
    // The first ring object (RX ring 0) starts here: num_slots at offset 8.
    let p = m.ptr.wrapping_add(8).cast::<u32>();
    // SAFETY: 4096 mapped bytes; offset 8 is in range and 4-aligned.
    let ns = unsafe { std::ptr::read_volatile(p) };
    ensure!(ns == 1024, "num_slots through the partial mapping: {ns}");
    Ok(())
}

/// Two processes: one sends 2000 frames (sizes 60..1514) to a VALE switch,
/// the other receives them all, in order, with payloads intact. The
/// receiver acknowledges every 256 frames (VALE drops what does not fit in
/// the receiver's ring: there is no back-pressure).
fn vale_two_processes() -> Result<(), String> {
    const N: u32 = 2000;
    const CHUNK: u32 = 256;
    let ready = Signal::new()?;
    let ack = Signal::new()?;
    let rx = spawn(|| {
        let p = Port::open("vale1:rx")?;
        ready.notify();
        let mut got = 0u32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
        while got < N && std::time::Instant::now() < deadline {
            p.fd.poll(libc::POLLIN, 1000)
                .map_err(|e| format!("poll: {}", errno_name(e)))?;
            for f in p.recv()? {
                let seq = check_frame(&f, mac(1))?;
                ensure!(seq == got, "frame {seq} arrived, expected {got}");
                let want = 60 + (seq as usize * 7) % 1455;
                ensure!(
                    f.len() == want,
                    "frame {seq} has length {}, want {want}",
                    f.len()
                );
                got += 1;
                if got.is_multiple_of(CHUNK) || got == N {
                    ack.notify();
                }
            }
        }
        ensure!(got == N, "received {got} of {N} frames");
        Ok(())
    })?;
    ready.wait(10_000)?;
    let p = Port::open("vale1:tx")?;
    let mut seq = 0u32;
    while seq < N {
        let end = N.min(seq + CHUNK);
        while seq < end {
            let batch: Vec<Vec<u8>> = (seq..end)
                .map(|s| frame(BCAST, mac(1), s, 60 + (s as usize * 7) % 1455))
                .collect();
            let sent = p.send(&batch)? as u32;
            seq += sent;
            if sent == 0 {
                p.fd.poll(libc::POLLOUT, 1000)
                    .map_err(|e| format!("poll: {}", errno_name(e)))?;
            }
        }
        ack.wait(20_000)
            .map_err(|e| format!("after {seq} frames: {e}"))?;
    }
    rx.wait()
}

/// Learning bridge: after a broadcast from A, unicast to A reaches only A;
/// unknown unicast floods; no loopback to the sender.
fn vale_learning() -> Result<(), String> {
    let a = Port::open("vale2:a")?;
    let b = Port::open("vale2:b")?;
    let c = Port::open("vale2:c")?;
    // A broadcasts: B and C get it, A does not.
    a.send(&[frame(BCAST, mac(0xa), 1, 60)])?;
    ensure!(b.recv()?.len() == 1, "b did not get the broadcast");
    ensure!(c.recv()?.len() == 1, "c did not get the broadcast");
    ensure!(a.recv()?.is_empty(), "broadcast looped back to a");
    // B → unknown unicast MAC D: flooded to A and C.
    b.send(&[frame(mac(0xd), mac(0xb), 2, 60)])?;
    ensure!(
        a.recv()?.len() == 1 && c.recv()?.len() == 1,
        "unknown unicast was not flooded"
    );
    // C → A (learned from the first broadcast): only A.
    c.send(&[frame(mac(0xa), mac(0xc), 3, 60)])?;
    let got = a.recv()?;
    ensure!(got.len() == 1, "a got {} frames for its MAC", got.len());
    ensure!(check_frame(&got[0], mac(0xc))? == 3, "wrong frame");
    ensure!(b.recv()?.is_empty(), "unicast to a leaked to b");
    // A → B (learned from B's frame): only B.
    a.send(&[frame(mac(0xb), mac(0xa), 4, 60)])?;
    ensure!(
        b.recv()?.len() == 1 && c.recv()?.is_empty(),
        "unicast to b not delivered only to b"
    );
    // Runt frames (< 14 bytes) are dropped.
    a.send(&[vec![0xff; 10]])?;
    ensure!(
        b.recv()?.is_empty() && c.recv()?.is_empty(),
        "runt frame forwarded"
    );
    Ok(())
}

/// POLLOUT immediately on an empty TX ring; POLLIN only when data is there.
fn vale_poll_readiness() -> Result<(), String> {
    let a = Port::open("vale3:a")?;
    let b = Port::open("vale3:b")?;
    let rev = a.fd.poll(libc::POLLOUT, 1000).map_err(errno_name)?;
    ensure!(
        rev & libc::POLLOUT != 0,
        "no POLLOUT on an empty TX ring (revents {rev:#x})"
    );
    let rev = b.fd.poll(libc::POLLIN, 200).map_err(errno_name)?;
    ensure!(
        rev == 0,
        "POLLIN-only poll on an empty RX ring returned {rev:#x}"
    );
    a.send(&[frame(BCAST, mac(1), 0, 60)])?;
    let rev = b.fd.poll(libc::POLLIN, 1000).map_err(errno_name)?;
    ensure!(
        rev & libc::POLLIN != 0,
        "no POLLIN after a frame arrived (revents {rev:#x})"
    );
    ensure!(b.rx(0)?.tail() != b.rx(0)?.head(), "poll did not rxsync");
    ensure!(b.recv()?.len() == 1, "frame not received");
    let rev = b.fd.poll(libc::POLLIN, 100).map_err(errno_name)?;
    ensure!(
        rev & libc::POLLIN == 0,
        "POLLIN after the ring was drained ({rev:#x})"
    );
    Ok(())
}

/// A process sleeping in poll(POLLIN) is woken by a sender in another
/// process.
fn vale_poll_wakeup() -> Result<(), String> {
    let ready = Signal::new()?;
    let child = spawn(|| {
        let b = Port::open("vale4:b")?;
        ready.notify();
        let t = std::time::Instant::now();
        let rev = b.fd.poll(libc::POLLIN, 10_000).map_err(errno_name)?;
        ensure!(
            rev & libc::POLLIN != 0,
            "poll returned {rev:#x} after {:?}",
            t.elapsed()
        );
        ensure!(
            t.elapsed().as_secs() < 8,
            "woken only after {:?}",
            t.elapsed()
        );
        ensure!(b.recv()?.len() == 1, "no frame after the wakeup");
        Ok(())
    })?;
    ready.wait(10_000)?;
    let a = Port::open("vale4:a")?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    a.send(&[frame(BCAST, mac(1), 0, 60)])?;
    child.wait()
}

/// NR_EXCLUSIVE: a second bind of the same rings fails with EBUSY, with or
/// without the flag, until the owner closes.
fn vale_exclusive() -> Result<(), String> {
    let mut reg = all_nic();
    reg.nr_flags = NR_EXCLUSIVE;
    let (owner, _) =
        register("vale5:x", reg).map_err(|e| format!("exclusive REGISTER: {}", errno_name(e)))?;
    expect_err(
        "second REGISTER /x",
        register("vale5:x", reg).map(|_| ()),
        libc::EBUSY,
    )?;
    expect_err(
        "second REGISTER",
        register("vale5:x", all_nic()).map(|_| ()),
        libc::EBUSY,
    )?;
    drop(owner);
    let (shared, _) = register("vale5:x", all_nic())
        .map_err(|e| format!("REGISTER after close: {}", errno_name(e)))?;
    expect_err(
        "REGISTER /x on a used port",
        register("vale5:x", reg).map(|_| ()),
        libc::EBUSY,
    )?;
    drop(shared);
    Ok(())
}

/// nr_extra_bufs: a linked list of distinct buffers through ni_bufs_head.
fn vale_extra_bufs() -> Result<(), String> {
    let mut reg = all_nic();
    reg.nr_extra_bufs = 16;
    let p = Port::open_with("vale6:e", reg)?;
    ensure!(
        p.reg.nr_extra_bufs == 16,
        "got {} extra buffers, want 16",
        p.reg.nr_extra_bufs
    );
    let n = p.nifp()?;
    let rx = p.rx(0)?;
    let mut ring_bufs = std::collections::HashSet::new();
    for i in 0..rx.num_slots() {
        ring_bufs.insert(rx.slot(i)?.buf_idx);
    }
    let mut seen = std::collections::HashSet::new();
    let mut idx = n.ni_bufs_head;
    while idx != 0 {
        ensure!(idx >= 2, "extra buffer index {idx}");
        ensure!(seen.insert(idx), "extra buffer {idx} twice in the list");
        ensure!(
            !ring_bufs.contains(&idx),
            "extra buffer {idx} is also in a ring"
        );
        ensure!(seen.len() <= 16, "list longer than 16");
        let b = rx.buf(idx)?;
        // SAFETY: b points to a whole buffer in the mapping; the first 4
        // bytes hold the next index.
        idx = unsafe { std::ptr::read_volatile(b.cast::<u32>()) };
    }
    ensure!(seen.len() == 16, "list has {} buffers, want 16", seen.len());
    Ok(())
}

/// Two fds on the same VALE port share rings and memory (spec §5.6, §5.7).
fn vale_shared_port() -> Result<(), String> {
    let a1 = Port::open("vale7:a")?;
    let a2 = Port::open("vale7:a")?;
    let b = Port::open("vale7:b")?;
    ensure!(
        a1.reg.nr_mem_id == a2.reg.nr_mem_id,
        "mem ids differ: {} {}",
        a1.reg.nr_mem_id,
        a2.reg.nr_mem_id
    );
    ensure!(
        a1.reg.nr_offset != a2.reg.nr_offset,
        "both fds got the same netmap_if"
    );
    b.send(&[frame(BCAST, mac(0xb), 5, 100)])?;
    // Received through the second fd's mapping of the same ring.
    let got = a2.recv()?;
    ensure!(got.len() == 1, "second fd got {} frames", got.len());
    check_frame(&got[0], mac(0xb))?;
    // The first fd sees the ring state the second one left.
    let r1 = a1.rx(0)?;
    ensure!(r1.head() == a2.rx(0)?.head(), "rings are not shared");
    Ok(())
}

/// Many ports on one switch come and go; indexes and memory are reused.
fn vale_many_ports() -> Result<(), String> {
    for round in 0..3 {
        let mut ports = Vec::new();
        for i in 0..20 {
            let mut reg = all_nic();
            reg.nr_tx_slots = 64;
            reg.nr_rx_slots = 64;
            let (fd, r) = register(&format!("vale8:p{i}"), reg)
                .map_err(|e| format!("round {round} port {i}: {}", errno_name(e)))?;
            ensure!(r.nr_tx_slots == 64, "slots hint ignored: {}", r.nr_tx_slots);
            ports.push(fd);
        }
    }
    Ok(())
}
