//! The EXTMEM option (spec §5): regions built over a file mapping of the
//! application (`netmap_uapi::user`'s `extmem_file`, libnetmap's
//! `@extmem:file=`), shared by two ports, traffic through them, and the
//! errors (memory not pinnable, too small, misaligned).

use crate::port::{check_frame, frame, mac};
use crate::sys::{errno, errno_name};
use crate::{Test, ensure};
use netmap_uapi::user::{Error, PollFlags, Port};
use netmap_uapi::*;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

pub const TESTS: &[Test] = &[
    ("extmem_file_vale", extmem_file_vale),
    ("extmem_errors", extmem_errors),
];

const MB: u64 = 1 << 20;

fn err_s(e: Error) -> String {
    e.to_string()
}

/// A file of `len` bytes in the guest's tmpfs, removed on drop.
struct TmpFile(String);

impl TmpFile {
    fn new(name: &str, len: u64) -> Result<TmpFile, String> {
        let path = format!("/tmp/{name}");
        let f = std::fs::File::create(&path).map_err(|e| format!("{path}: {e}"))?;
        f.set_len(len).map_err(|e| format!("{path}: {e}"))?;
        Ok(TmpFile(path))
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Two VALE ports over one file: one region (same mem id, private), frames
/// a -> b with payload checks, and the frames are in the file (the kernel
/// writes the application's pages, which are the file's page cache).
fn extmem_file_vale() -> Result<(), String> {
    let f = TmpFile::new("nm-extmem", 24 * MB)?;
    let a = Port::builder("vale30:a")
        .extmem_file(&f.0)
        .open()
        .map_err(err_s)?;
    let b = Port::builder("vale30:b")
        .extmem_file(&f.0)
        .open()
        .map_err(err_s)?;
    ensure!(
        a.mem_id() == b.mem_id(),
        "mem ids {} and {}",
        a.mem_id(),
        b.mem_id()
    );
    ensure!(
        a.mem_id() > 1 && a.private_memory(),
        "mem id {}",
        a.mem_id()
    );
    ensure!(
        a.shares_memory_with(&b),
        "the two ports do not share the mapping"
    );
    ensure!(a.memsize() <= 24 * MB, "memsize {}", a.memsize());
    // The region is the application's: netmap does not map it.
    // SAFETY: a fresh mapping request; the result is checked and unmapped.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_SHARED,
            a.as_raw_fd(),
            0,
        )
    };
    if p != libc::MAP_FAILED {
        // SAFETY: unmapping what we just mapped.
        unsafe { libc::munmap(p, 4096) };
        return Err("mmap of an EXTMEM region succeeded".into());
    }
    ensure!(errno() == libc::EINVAL, "mmap: {}", errno_name(errno()));

    const N: u32 = 2000;
    let (mut sent, mut got) = (0u32, 0u32);
    let mut last = None;
    let end = Instant::now() + Duration::from_secs(30);
    while got < N {
        ensure!(Instant::now() < end, "{got} of {N} frames received");
        {
            let mut tx = a.tx_ring(0);
            while sent < N
                && sent - got < 400
                && tx
                    .send(&frame(mac(2), mac(1), sent, 60 + sent as usize % 300))
                    .is_ok()
            {
                sent += 1;
            }
        }
        a.sync_tx().map_err(err_s)?;
        b.poll(PollFlags::IN, Some(Duration::from_millis(10)))
            .map_err(err_s)?;
        let mut rx = b.rx_ring(0);
        while let Some(pkt) = rx.recv() {
            let seq = check_frame(pkt.data(), mac(1))?;
            ensure!(seq == got, "frame {seq} where {got} was expected");
            got += 1;
            last = Some((pkt.slot_index(), pkt.data().to_vec()));
        }
        if let Some((i, d)) = last.take() {
            last = Some((rx.slot(i).buf_idx, d));
        }
    }
    // The last frame is in the file, where the region puts its buffer.
    let (idx, data) = last.ok_or("no frame")?;
    let info = netmap_uapi::user::Netmap::open()
        .map_err(err_s)?
        .pools_info("vale30:b", b.mem_id())
        .map_err(err_s)?;
    let off = info.nr_buf_pool_offset + u64::from(idx) * u64::from(info.nr_buf_pool_objsize);
    let mut buf = vec![0u8; data.len()];
    std::fs::File::open(&f.0)
        .and_then(|file| file.read_exact_at(&mut buf, off))
        .map_err(|e| format!("read {}: {e}", f.0))?;
    ensure!(
        buf == data,
        "buffer {idx} in the file differs from the frame"
    );
    Ok(())
}

/// REGISTER with a raw EXTMEM option; returns the errno and the status.
fn register_ext(name: &str, usr: u64, len: u64, pools: (u32, u32)) -> Result<(), (i32, u32)> {
    let fd = crate::sys::Fd::open_netmap().map_err(|_| (libc::ENODEV, 0))?;
    let mut opt = NmreqOptExtmem {
        nro_opt: NmreqOption {
            nro_reqtype: NETMAP_REQ_OPT_EXTMEM,
            nro_size: 96,
            ..Default::default()
        },
        nro_usrptr: usr,
        nro_info: NmreqPoolsInfo {
            nr_memsize: len,
            nr_ring_pool_objtotal: pools.0,
            nr_buf_pool_objsize: pools.1,
            ..Default::default()
        },
    };
    let mut reg = crate::port::all_nic();
    let mut h = NmreqHeader::new(NETMAP_REQ_REGISTER, name.as_bytes());
    h.nr_body = &mut reg as *mut NmreqRegister as u64;
    h.nr_options = &mut opt as *mut NmreqOptExtmem as u64;
    // SAFETY: header, body and option are live locals of the sizes the
    // kernel reads.
    let r = unsafe { libc::ioctl(fd.0, NIOCCTRL as _, &mut h as *mut NmreqHeader) };
    if r < 0 {
        Err((errno(), opt.nro_opt.nro_status))
    } else {
        Ok(())
    }
}

fn expect_ext(what: &str, r: Result<(), (i32, u32)>, want: i32) -> Result<(), String> {
    match r {
        Err((e, st)) if e == want && st == want as u32 => Ok(()),
        r => Err(format!("{what}: {r:?}, expected {}", errno_name(want))),
    }
}

/// Mapping helper: `len` bytes, anonymous, with `prot`.
fn anon(len: usize, prot: i32) -> Result<u64, String> {
    // SAFETY: a fresh anonymous mapping chosen by the kernel.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    ensure!(p != libc::MAP_FAILED, "mmap: {}", errno_name(errno()));
    Ok(p as u64)
}

fn extmem_errors() -> Result<(), String> {
    let len = 16 * MB as usize;
    // Twice the length: the second half is made inaccessible.
    let rw = anon(2 * len, libc::PROT_READ | libc::PROT_WRITE)?;
    // SAFETY: changing the protection of our own mapping.
    let r = unsafe { libc::mprotect((rw + len as u64) as *mut libc::c_void, len, libc::PROT_NONE) };
    ensure!(r == 0, "mprotect: {}", errno_name(errno()));
    let ro = anon(len, libc::PROT_READ)?;
    let l = len as u64;
    expect_ext(
        "misaligned",
        register_ext("vale32:a", rw + 64, l - 4096, (0, 0)),
        libc::EINVAL,
    )?;
    expect_ext(
        "size 0",
        register_ext("vale32:a", rw, 0, (0, 0)),
        libc::EINVAL,
    )?;
    expect_ext(
        "read-only memory",
        register_ext("vale32:a", ro, l, (0, 0)),
        libc::EFAULT,
    )?;
    expect_ext(
        "unmapped",
        register_ext("vale32:a", 0x1000, l, (0, 0)),
        libc::EFAULT,
    )?;
    expect_ext(
        "past the mapping",
        register_ext("vale32:a", rw, 2 * l, (0, 0)),
        libc::EFAULT,
    )?;
    expect_ext(
        "too small",
        register_ext("vale32:a", rw, 2 * MB, (0, 0)),
        libc::ENOMEM,
    )?;
    expect_ext(
        "bad buffer size",
        register_ext("vale32:a", rw, l, (0, 70000)),
        libc::EINVAL,
    )?;
    // Anonymous memory works too.
    register_ext("vale32:a", rw, l, (0, 0)).map_err(|e| format!("anonymous memory: {e:?}"))?;
    for (p, n) in [(rw, 2 * len), (ro, len)] {
        // SAFETY: unmapping our own mappings (the kernel's pins, if any,
        // are gone: every file was closed).
        unsafe { libc::munmap(p as *mut libc::c_void, n) };
    }
    Ok(())
}
