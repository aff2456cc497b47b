//! NIOCCTRL request processing (§4), option accounting (§4.2), REGISTER
//! (§4.4, §6.1, §8.2, §10.2), information requests (§4.5–§4.8, §8.6), the
//! sync/poll/mmap entry points (§6.4, §6.6, §6.7, §5.6) and the legacy
//! NIOCREGIF/NIOCGINFO conversion (§4.12), each with the exact errno.

mod common;
use common::*;
use netmap_core::Errno;
use netmap_core::Params;
use netmap_core::host::HostPlatform;
use netmap_core::mem::{MemParams, PoolParams};
use netmap_core::netmap::{NetmapPriv, POLLERR, POLLIN, POLLOUT};
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

const HDR_SIZE: usize = core::mem::size_of::<NmreqHeader>();
const OPT_SIZE: usize = core::mem::size_of::<NmreqOption>();
/// An address no test ever maps (the simulated user space starts at 0x1000_0000).
const BAD_ADDR: u64 = 0x20;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const BCAST: [u8; 6] = [0xff; 6];

type Np = NetmapPriv<HostPlatform>;

fn header(reqtype: u16, name: &str) -> NmreqHeader {
    NmreqHeader::new(reqtype, name.as_bytes())
}

/// Send a prepared header with NIOCCTRL; returns the result and the header
/// as read back from user memory.
fn send_hdr(env: &Env, np: &Np, h: &NmreqHeader) -> (Result<(), Errno>, NmreqHeader) {
    let a = env.p.user_map(h.as_bytes());
    let r = env.nm.ioctl(np, NIOCCTRL, a);
    let back = NmreqHeader::from_bytes(&env.p.user_read(a, HDR_SIZE).unwrap()).unwrap();
    (r, back)
}

/// A body mapped in user memory.
fn map_body<T: Pod>(env: &Env, b: &T) -> u64 {
    env.p.user_map(b.as_bytes())
}

fn read_user<T: Pod>(env: &Env, addr: u64) -> T {
    T::from_bytes(&env.p.user_read(addr, core::mem::size_of::<T>()).unwrap()).unwrap()
}

/// Map an option list of `(reqtype, total option size)`, linked in order.
/// Each option occupies `max(size, 24)` bytes of user memory. Returns the
/// user address of every option.
fn map_opts(env: &Env, opts: &[(u32, usize)]) -> Vec<u64> {
    let mut addrs = vec![0u64; opts.len()];
    let mut next = 0u64;
    for (i, &(ty, size)) in opts.iter().enumerate().rev() {
        let mut bytes = vec![0u8; size.max(OPT_SIZE)];
        let o = NmreqOption {
            nro_next: next,
            nro_reqtype: ty,
            nro_status: 0x55,
            nro_size: size as u64,
        };
        o.write_to_prefix(&mut bytes).unwrap();
        next = env.p.user_map(&bytes);
        addrs[i] = next;
    }
    addrs
}

fn opt_at(env: &Env, addr: u64) -> NmreqOption {
    read_user(env, addr)
}

fn status(env: &Env, addr: u64) -> u32 {
    opt_at(env, addr).nro_status
}

fn e(x: Errno) -> u32 {
    x.0 as u32
}

/// A small global allocator, so that tests using mem id 1 stay cheap.
fn small_global() -> Params {
    Params {
        global: MemParams {
            if_pool: PoolParams {
                objsize: 1024,
                objtotal: 100,
            },
            ring_pool: PoolParams {
                objsize: 36864,
                objtotal: 64,
            },
            buf_pool: PoolParams {
                objsize: 2048,
                objtotal: 8192,
            },
        },
        ..Params::default()
    }
}

fn reg(mode: u32) -> NmreqRegister {
    NmreqRegister {
        nr_mode: mode,
        ..NmreqRegister::zeroed()
    }
}

fn try_register(env: &Env, np: &Np, name: &str, r: NmreqRegister) -> Result<NmreqRegister, Errno> {
    env.register_with(np, name, r)
}

fn port_info(env: &Env, name: &str, pi: NmreqPortInfoGet) -> Result<NmreqPortInfoGet, Errno> {
    let np = env.open();
    let mut pi = pi;
    let r = env.ctrl(&np, NETMAP_REQ_PORT_INFO_GET, name, Some(&mut pi));
    env.nm.release(np);
    r.map(|_| pi)
}

fn vale_list(env: &Env, name: &str, b: u16, p: u32) -> Result<(NmreqValeList, String), Errno> {
    let np = env.open();
    let mut l = NmreqValeList {
        nr_bridge_idx: b,
        nr_port_idx: p,
        ..NmreqValeList::zeroed()
    };
    let r = env.ctrl(&np, NETMAP_REQ_VALE_LIST, name, Some(&mut l));
    env.nm.release(np);
    r.map(|h| (l, String::from_utf8(h.name().to_vec()).unwrap()))
}

fn hdr_req(env: &Env, reqtype: u16, name: &str, len: u32) -> Result<u32, Errno> {
    let np = env.open();
    let mut h = NmreqPortHdr {
        nr_hdr_len: len,
        ..NmreqPortHdr::zeroed()
    };
    let r = env.ctrl(&np, reqtype, name, Some(&mut h));
    env.nm.release(np);
    r.map(|_| h.nr_hdr_len)
}

fn poll(env: &Env, np: &Np, events: u32) -> u32 {
    env.nm.poll(np, events, &mut |_| {})
}

// ----------------------------------------------------------------------
// NIOCCTRL header checks (§4.1)

#[test]
fn header_version_range() {
    let env = Env::new();
    let np = env.open();
    let body = NmreqPortInfoGet::zeroed();
    for (v, want) in [
        (13u16, Err(Errno::EINVAL)),
        (14, Ok(())),
        (15, Ok(())),
        (16, Err(Errno::EINVAL)),
        (0, Err(Errno::EINVAL)),
    ] {
        let mut h = header(NETMAP_REQ_PORT_INFO_GET, "");
        h.nr_version = v;
        h.nr_body = map_body(&env, &body);
        let (r, back) = send_hdr(&env, &np, &h);
        assert_eq!(r, want, "version {v}");
        // The kernel never rewrites nr_version.
        assert_eq!(back.nr_version, v);
    }
}

#[test]
fn header_reserved_must_be_zero() {
    let env = Env::new();
    let np = env.open();
    let body = NmreqPortInfoGet::zeroed();
    let mut h = header(NETMAP_REQ_PORT_INFO_GET, "");
    h.nr_reserved = 1;
    h.nr_body = map_body(&env, &body);
    let (r, back) = send_hdr(&env, &np, &h);
    assert_eq!(r, Err(Errno::EINVAL));
    assert_eq!(back.nr_body, h.nr_body);
    assert_eq!(back.nr_options, 0);
    // The body is not written on failure.
    let b: NmreqPortInfoGet = read_user(&env, h.nr_body);
    assert_eq!(b.nr_memsize, 0);
}

#[test]
fn header_body_presence_mismatch() {
    let env = Env::new();
    let np = env.open();
    // REGISTER needs a body.
    let h = header(NETMAP_REQ_REGISTER, "vale0:a");
    let (r, back) = send_hdr(&env, &np, &h);
    assert_eq!(r, Err(Errno::EINVAL));
    // The header comes back as sent (nr_reserved 0, pointers restored).
    assert_eq!(back, h);
    let (r, _) = send_hdr(&env, &np, &header(NETMAP_REQ_PORT_INFO_GET, ""));
    assert_eq!(r, Err(Errno::EINVAL));
    // DELIF, SYNC_KLOOP_STOP, CSB_ENABLE take none.
    let junk = [0u8; 64];
    for t in [
        NETMAP_REQ_VALE_DELIF,
        NETMAP_REQ_SYNC_KLOOP_STOP,
        NETMAP_REQ_CSB_ENABLE,
    ] {
        let mut h = header(t, "vale0:a");
        h.nr_body = env.p.user_map(&junk);
        let (r, back) = send_hdr(&env, &np, &h);
        assert_eq!(r, Err(Errno::EINVAL), "reqtype {t}");
        assert_eq!(back, h);
    }
    // Nothing was created by those failures.
    assert_eq!(env.nm.stats().switches, 0);
    assert!(np.binding().is_none());
}

#[test]
fn header_unknown_reqtype() {
    let env = Env::new();
    let np = env.open();
    for t in [0u16, 16, 99, 0xffff] {
        let (r, _) = send_hdr(&env, &np, &header(t, "vale0:a"));
        assert_eq!(r, Err(Errno::EINVAL), "reqtype {t}");
        // With a body: presence mismatch, still EINVAL.
        let mut h = header(t, "vale0:a");
        h.nr_body = env.p.user_map(&[0u8; 8]);
        let (r, _) = send_hdr(&env, &np, &h);
        assert_eq!(r, Err(Errno::EINVAL), "reqtype {t} with body");
    }
}

#[test]
fn header_null_and_faulting_pointers() {
    let env = Env::new();
    let np = env.open();
    assert_eq!(env.nm.ioctl(&np, NIOCCTRL, 0), Err(Errno::EINVAL));
    assert_eq!(env.nm.ioctl(&np, NIOCCTRL, BAD_ADDR), Err(Errno::EFAULT));
    // Header straddling the end of a mapping.
    let h = header(NETMAP_REQ_PORT_INFO_GET, "");
    let a = env.p.user_map(&h.as_bytes()[..HDR_SIZE - 8]);
    assert_eq!(env.nm.ioctl(&np, NIOCCTRL, a), Err(Errno::EFAULT));
    // Poisoned header.
    let a = env.p.user_map(h.as_bytes());
    env.p.user_poison(a + 40);
    assert_eq!(env.nm.ioctl(&np, NIOCCTRL, a), Err(Errno::EFAULT));
    // Body at a faulting address.
    let mut h = header(NETMAP_REQ_REGISTER, "vale0:a");
    h.nr_body = BAD_ADDR;
    let (r, back) = send_hdr(&env, &np, &h);
    assert_eq!(r, Err(Errno::EFAULT));
    assert_eq!(back, h);
    // Body shorter than the request's body size.
    let mut h = header(NETMAP_REQ_REGISTER, "vale0:a");
    h.nr_body = env.p.user_map(&[0u8; 48]);
    let (r, _) = send_hdr(&env, &np, &h);
    assert_eq!(r, Err(Errno::EFAULT));
    assert!(np.binding().is_none());
    assert_eq!(env.nm.stats().switches, 0);
}

#[test]
fn header_copied_back_on_failure() {
    let env = Env::new();
    let np = env.open();
    // A 64-byte name without NUL: byte 63 is forced to NUL, and the header
    // goes back to the user although the request fails.
    let body = reg(NR_REG_ALL_NIC);
    let mut h = header(NETMAP_REQ_REGISTER, "");
    h.nr_name = [b'n'; 64];
    h.nr_body = map_body(&env, &body);
    let (r, back) = send_hdr(&env, &np, &h);
    assert_eq!(r, Err(Errno::ENXIO));
    assert_eq!(&back.nr_name[..63], &[b'n'; 63][..]);
    assert_eq!(back.nr_name[63], 0);
    assert_eq!(back.nr_reserved, 0);
    assert_eq!(back.nr_body, h.nr_body);
    assert_eq!(back.nr_options, 0);
    // The body is not written back on failure.
    let b: NmreqRegister = read_user(&env, h.nr_body);
    assert_eq!(b, body);
}

// ----------------------------------------------------------------------
// Options (§4.2, §4.3)

#[test]
fn option_type_zero() {
    let env = Env::new();
    let np = env.open();
    let o = map_opts(&env, &[(0, 24)]);
    let mut pi = NmreqPortInfoGet::zeroed();
    let r = env.ctrl_opts(&np, NETMAP_REQ_PORT_INFO_GET, "", Some(&mut pi), o[0]);
    assert_eq!(r.err(), Some(Errno::EINVAL));
    let oh = opt_at(&env, o[0]);
    assert_eq!(oh.nro_status, e(Errno::EINVAL));
    assert_eq!(oh.nro_next, 0);
    assert_eq!(oh.nro_reqtype, 0);
    // Failed request: body untouched.
    assert_eq!(pi.nr_memsize, 0);
}

#[test]
fn option_duplicate() {
    let env = Env::new();
    let np = env.open();
    // Two SYNC_KLOOP_MODE options with an unknown one between them.
    let o = map_opts(
        &env,
        &[
            (NETMAP_REQ_OPT_SYNC_KLOOP_MODE, 32),
            (200, 24),
            (NETMAP_REQ_OPT_SYNC_KLOOP_MODE, 32),
        ],
    );
    let mut pi = NmreqPortInfoGet::zeroed();
    let r = env.ctrl_opts(&np, NETMAP_REQ_PORT_INFO_GET, "", Some(&mut pi), o[0]);
    assert_eq!(r.err(), Some(Errno::EINVAL));
    assert_eq!(status(&env, o[0]), e(Errno::EINVAL));
    assert_eq!(status(&env, o[2]), e(Errno::EINVAL));
    // The unknown option in between was read (status reset to 0).
    assert_eq!(status(&env, o[1]), 0);
    // Links are restored.
    assert_eq!(opt_at(&env, o[0]).nro_next, o[1]);
    assert_eq!(opt_at(&env, o[1]).nro_next, o[2]);
}

#[test]
fn option_self_loop_is_emsgsize() {
    let env = Env::new();
    let np = env.open();
    let o = map_opts(&env, &[(100, 24)]);
    let mut oh = opt_at(&env, o[0]);
    oh.nro_next = o[0];
    env.p.user_write(o[0], oh.as_bytes()).unwrap();
    let mut pi = NmreqPortInfoGet::zeroed();
    let r = env.ctrl_opts(&np, NETMAP_REQ_PORT_INFO_GET, "", Some(&mut pi), o[0]);
    assert_eq!(r.err(), Some(Errno::EMSGSIZE));
    assert_eq!(opt_at(&env, o[0]).nro_next, o[0]);
    // Same with REGISTER: nothing is bound.
    let mut rg = reg(NR_REG_ALL_NIC);
    let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut rg), o[0]);
    assert_eq!(r.err(), Some(Errno::EMSGSIZE));
    assert!(np.binding().is_none());
    assert_eq!(env.nm.stats().switches, 0);
}

/// Largest number of options accepted for a body of size `s`: option k
/// (1-based) is refused when 16 + s + 48 + 32·(k−1) + 32 > 4208.
fn max_opts(s: usize) -> usize {
    (4208 - (16 + s + 48)) / 32
}

#[test]
fn option_list_length_limit_port_info() {
    let env = Env::new();
    let n = max_opts(32);
    assert_eq!(n, 128);
    let np = env.open();
    let ok = map_opts(&env, &vec![(1000, 24); n]);
    let mut pi = NmreqPortInfoGet::zeroed();
    env.ctrl_opts(&np, NETMAP_REQ_PORT_INFO_GET, "", Some(&mut pi), ok[0])
        .unwrap();
    assert_eq!(pi.nr_memsize, 343019520);
    // Every unknown option is reported as not consumed.
    assert!(ok.iter().all(|&a| status(&env, a) == e(Errno::EOPNOTSUPP)));
    let bad = map_opts(&env, &vec![(1000, 24); n + 1]);
    let mut pi = NmreqPortInfoGet::zeroed();
    let r = env.ctrl_opts(&np, NETMAP_REQ_PORT_INFO_GET, "", Some(&mut pi), bad[0]);
    assert_eq!(r.err(), Some(Errno::EMSGSIZE));
    assert_eq!(pi.nr_memsize, 0);
}

#[test]
fn option_list_length_limit_register() {
    let env = Env::new();
    let n = max_opts(56);
    assert_eq!(n, 127);
    let np = env.open();
    let list = map_opts(&env, &vec![(1000, 24); n]);
    let mut rg = reg(NR_REG_ALL_NIC);
    let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut rg), list[0]);
    assert_eq!(r.err(), Some(Errno::EOPNOTSUPP));
    let list = map_opts(&env, &vec![(1000, 24); n + 1]);
    let mut rg = reg(NR_REG_ALL_NIC);
    let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut rg), list[0]);
    assert_eq!(r.err(), Some(Errno::EMSGSIZE));
    assert!(np.binding().is_none());
    assert_eq!(env.nm.stats().switches, 0);
}

/// Known options count their body in both `rqsz` (limit 4096) and `used`
/// (limit 4208); unknown ones only their 32 bytes of `used`.
#[test]
fn option_body_accounting() {
    let env = Env::new();
    let np = env.open();
    let ev = NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS;
    // REGISTER (S = 56): rqsz = 56 + 24 + B must stay <= 4096 → B <= 4016.
    let o = map_opts(&env, &[(ev, 24 + 4016)]);
    let mut rg = reg(NR_REG_ALL_NIC);
    let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut rg), o[0]);
    // Copied in, but REGISTER does not consume it.
    assert_eq!(r.err(), Some(Errno::EOPNOTSUPP));
    assert_eq!(status(&env, o[0]), e(Errno::EOPNOTSUPP));
    let o = map_opts(&env, &[(ev, 24 + 4017)]);
    let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut rg), o[0]);
    assert_eq!(r.err(), Some(Errno::EMSGSIZE));
    let o = map_opts(&env, &[(ev, 5000)]);
    let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut rg), o[0]);
    assert_eq!(r.err(), Some(Errno::EMSGSIZE));
    // A huge nro_size is refused before any copy.
    let h = NmreqOption {
        nro_next: 0,
        nro_reqtype: ev,
        nro_status: 0,
        nro_size: u64::MAX,
    };
    let a = env.p.user_map(h.as_bytes());
    let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut rg), a);
    assert_eq!(r.err(), Some(Errno::EMSGSIZE));
    assert!(np.binding().is_none());
    // PORT_INFO_GET (S = 32): after a 4000-byte body, used = 96 + 32 + 4000
    // = 4128, so two more unknown options fit (4192) and a third does not.
    let mut list = vec![(ev, 24 + 4000)];
    list.extend([(300, 24); 2]);
    let o = map_opts(&env, &list);
    let mut pi = NmreqPortInfoGet::zeroed();
    env.ctrl_opts(&np, NETMAP_REQ_PORT_INFO_GET, "", Some(&mut pi), o[0])
        .unwrap();
    assert!(o.iter().all(|&a| status(&env, a) == e(Errno::EOPNOTSUPP)));
    list.push((300, 24));
    let o = map_opts(&env, &list);
    let r = env.ctrl_opts(&np, NETMAP_REQ_PORT_INFO_GET, "", Some(&mut pi), o[0]);
    assert_eq!(r.err(), Some(Errno::EMSGSIZE));
    assert_eq!(env.nm.stats().switches, 0);
    env.nm.release(np);
}

/// The leftover-option check comes after a successful bind (§4.4 step 10):
/// bind errors win over EOPNOTSUPP.
#[test]
fn option_unknown_register_bind_errors_first() {
    let env = Env::new();
    let base = env.nm.stats();
    let np = env.open();
    let o = map_opts(&env, &[(1000, 24)]);
    // Ring id out of range.
    let mut rg = NmreqRegister {
        nr_ringid: 5,
        ..reg(NR_REG_ONE_NIC)
    };
    let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut rg), o[0]);
    assert_eq!(r.err(), Some(Errno::EINVAL));
    // No host rings.
    let mut rg = reg(NR_REG_SW);
    let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut rg), o[0]);
    assert_eq!(r.err(), Some(Errno::EINVAL));
    assert_eq!(env.nm.stats(), base);
    // Exclusive conflict.
    let x = env.port_with(
        "vale0:a",
        NmreqRegister {
            nr_flags: NR_EXCLUSIVE,
            ..reg(NR_REG_ALL_NIC)
        },
    );
    let mut rg = reg(NR_REG_ALL_NIC);
    let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut rg), o[0]);
    assert_eq!(r.err(), Some(Errno::EBUSY));
    x.close();
    // With a valid bind, the option makes it fail and nothing stays bound.
    let y = env.port("vale0:a");
    let tx = y.tx_ring(0).unwrap();
    let mut rg = reg(NR_REG_ALL_NIC);
    let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut rg), o[0]);
    assert_eq!(r.err(), Some(Errno::EOPNOTSUPP));
    assert!(np.binding().is_none());
    // The shared rings of the other fd are untouched and usable.
    assert_eq!((tx.head(), tx.tail()), (0, 1023));
    env.register(&np, "vale0:a", NR_REG_ALL_NIC, NR_EXCLUSIVE)
        .expect_err("y still binds the rings");
    drop(y);
    let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut rg), o[0]);
    assert_eq!(r.err(), Some(Errno::EOPNOTSUPP));
    assert_eq!(env.nm.stats(), base);
    env.nm.release(np);
}

/// EXTMEM is consumed (core/tests/extmem.rs): an empty one is invalid.
#[test]
fn option_extmem_empty_on_register() {
    let env = Env::new();
    let base = env.nm.stats();
    let np = env.open();
    let o = map_opts(&env, &[(NETMAP_REQ_OPT_EXTMEM, 96)]);
    let mut rg = reg(NR_REG_ALL_NIC);
    let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut rg), o[0]);
    assert_eq!(r.err(), Some(Errno::EINVAL));
    assert_eq!(status(&env, o[0]), e(Errno::EINVAL));
    assert!(np.binding().is_none());
    assert_eq!(env.nm.stats(), base);
    env.nm.release(np);
}

#[test]
fn option_unknown_on_register_leaves_file_unbound() {
    let env = Env::new();
    let base = env.nm.stats();
    let np = env.open();
    let o = map_opts(&env, &[(NETMAP_REQ_OPT_MAX, 24)]);
    let mut rg = reg(NR_REG_ALL_NIC);
    let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut rg), o[0]);
    assert_eq!(r.err(), Some(Errno::EOPNOTSUPP));
    assert_eq!(status(&env, o[0]), e(Errno::EOPNOTSUPP));
    assert!(np.binding().is_none());
    // Body not written back on failure.
    assert_eq!(rg.nr_memsize, 0);
    // The temporary port and its switch are gone.
    assert_eq!(env.nm.stats(), base);
    // The same file can still be registered.
    let out = env.register(&np, "vale0:a", NR_REG_ALL_NIC, 0).unwrap();
    assert_eq!(out.nr_memsize, 42369024);
    assert!(np.binding().is_some());
    env.nm.release(np);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn option_unknown_on_port_info_succeeds() {
    let env = Env::new();
    let np = env.open();
    let o = map_opts(&env, &[(77, 24), (NETMAP_REQ_OPT_SYNC_KLOOP_MODE, 32)]);
    let mut pi = NmreqPortInfoGet::zeroed();
    env.ctrl_opts(
        &np,
        NETMAP_REQ_PORT_INFO_GET,
        "vale0:a",
        Some(&mut pi),
        o[0],
    )
    .unwrap();
    assert_eq!(pi.nr_memsize, 42369024);
    assert_eq!(status(&env, o[0]), e(Errno::EOPNOTSUPP));
    assert_eq!(status(&env, o[1]), e(Errno::EOPNOTSUPP));
    assert_eq!(opt_at(&env, o[0]).nro_next, o[1]);
}

#[test]
fn option_at_faulting_address() {
    let env = Env::new();
    let np = env.open();
    let mut pi = NmreqPortInfoGet::zeroed();
    let r = env.ctrl_opts(&np, NETMAP_REQ_PORT_INFO_GET, "", Some(&mut pi), BAD_ADDR);
    assert_eq!(r.err(), Some(Errno::EFAULT));
    // Second option of the list faults.
    let o = map_opts(&env, &[(77, 24)]);
    let mut oh = opt_at(&env, o[0]);
    oh.nro_next = BAD_ADDR;
    env.p.user_write(o[0], oh.as_bytes()).unwrap();
    let r = env.ctrl_opts(&np, NETMAP_REQ_PORT_INFO_GET, "", Some(&mut pi), o[0]);
    assert_eq!(r.err(), Some(Errno::EFAULT));
    // Known option whose body faults (header mapped alone).
    let h = NmreqOption {
        nro_next: 0,
        nro_reqtype: NETMAP_REQ_OPT_SYNC_KLOOP_MODE,
        nro_status: 0,
        nro_size: 32,
    };
    let a = env.p.user_map(h.as_bytes());
    let mut rg = reg(NR_REG_ALL_NIC);
    let r = env.ctrl_opts(&np, NETMAP_REQ_REGISTER, "vale0:a", Some(&mut rg), a);
    assert_eq!(r.err(), Some(Errno::EFAULT));
    assert!(np.binding().is_none());
    assert_eq!(env.nm.stats().switches, 0);
}

// ----------------------------------------------------------------------
// REGISTER (§4.4)

#[test]
fn register_twice_is_ebusy() {
    let env = Env::new();
    let np = env.open();
    env.register(&np, "vale0:a", NR_REG_ALL_NIC, 0).unwrap();
    assert_eq!(
        env.register(&np, "vale0:a", NR_REG_ALL_NIC, 0).err(),
        Some(Errno::EBUSY)
    );
    assert_eq!(
        env.register(&np, "vale0:b", NR_REG_ALL_NIC, 0).err(),
        Some(Errno::EBUSY)
    );
    // The failed attempt did not leave vale0:b behind.
    assert_eq!(
        vale_list(&env, "vale0:b", 0, 0).unwrap().0.nr_port_idx,
        NM_BDG_NOPORT
    );
    env.nm.release(np);
}

#[test]
fn register_bad_modes() {
    let env = Env::new();
    let base = env.nm.stats();
    let np = env.open();
    for mode in [
        NR_REG_DEFAULT,
        NR_REG_PIPE_MASTER,
        NR_REG_PIPE_SLAVE,
        9,
        100,
    ] {
        assert_eq!(
            env.register(&np, "vale0:a", mode, 0).err(),
            Some(Errno::EINVAL),
            "mode {mode}"
        );
    }
    // No host rings on VALE ports.
    for mode in [NR_REG_SW, NR_REG_NIC_SW, NR_REG_ONE_SW] {
        assert_eq!(
            env.register(&np, "vale0:a", mode, 0).err(),
            Some(Errno::EINVAL),
            "mode {mode}"
        );
    }
    assert!(np.binding().is_none());
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn register_unknown_mem_id() {
    let env = Env::new();
    let np = env.open();
    for id in [2u16, 999, 0xffff] {
        let r = NmreqRegister {
            nr_mem_id: id,
            ..reg(NR_REG_ALL_NIC)
        };
        assert_eq!(
            try_register(&env, &np, "vale0:a", r).err(),
            Some(Errno::EINVAL),
            "mem id {id}"
        );
    }
    assert_eq!(env.nm.stats().switches, 0);
}

#[test]
fn register_one_nic_ring_id() {
    let env = Env::new();
    let base = env.nm.stats();
    let np = env.open();
    let r = NmreqRegister {
        nr_tx_rings: 2,
        nr_rx_rings: 4,
        nr_ringid: 4,
        ..reg(NR_REG_ONE_NIC)
    };
    assert_eq!(
        try_register(&env, &np, "vale0:a", r).err(),
        Some(Errno::EINVAL)
    );
    assert_eq!(env.nm.stats(), base);
    // Ring 3 exists only for RX: TX falls back to ring 0.
    let p = env.port_with("vale0:a", NmreqRegister { nr_ringid: 3, ..r });
    assert_eq!((p.reg.nr_tx_rings, p.reg.nr_rx_rings), (2, 4));
    assert_eq!(p.reg.nr_ringid, 3);
    assert_eq!(p.reg.nr_mode, NR_REG_ONE_NIC);
    assert!(p.tx_ring(0).is_some());
    assert!(p.tx_ring(1).is_none());
    for i in 0..3 {
        assert!(p.rx_ring(i).is_none(), "rx {i}");
    }
    assert!(p.rx_ring(3).is_some());
    // Existing port: out-of-range id still EINVAL.
    let np2 = env.open();
    let r2 = NmreqRegister { nr_ringid: 4, ..r };
    assert_eq!(
        try_register(&env, &np2, "vale0:a", r2).err(),
        Some(Errno::EINVAL)
    );
    drop(p);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn register_exclusive() {
    let env = Env::new();
    let base = env.nm.stats();
    let x = env.port_with(
        "vale0:a",
        NmreqRegister {
            nr_flags: NR_EXCLUSIVE,
            ..reg(NR_REG_ALL_NIC)
        },
    );
    let np = env.open();
    assert_eq!(
        env.register(&np, "vale0:a", NR_REG_ALL_NIC, 0).err(),
        Some(Errno::EBUSY)
    );
    assert_eq!(
        env.register(&np, "vale0:a", NR_REG_ALL_NIC, NR_EXCLUSIVE)
            .err(),
        Some(Errno::EBUSY)
    );
    assert_eq!(
        env.register(&np, "vale0:a", NR_REG_ONE_NIC, 0).err(),
        Some(Errno::EBUSY)
    );
    assert_eq!(
        env.register(&np, "vale0:a", NR_REG_ALL_NIC, NR_TX_RINGS_ONLY)
            .err(),
        Some(Errno::EBUSY)
    );
    assert!(np.binding().is_none());
    x.close();
    assert_eq!(env.nm.stats(), base);
    // After close, a normal bind works, and then an exclusive one fails.
    env.register(&np, "vale0:a", NR_REG_ALL_NIC, 0).unwrap();
    let np2 = env.open();
    assert_eq!(
        env.register(&np2, "vale0:a", NR_REG_ALL_NIC, NR_EXCLUSIVE)
            .err(),
        Some(Errno::EBUSY)
    );
    env.nm.release(np);
    env.register(&np2, "vale0:a", NR_REG_ALL_NIC, NR_EXCLUSIVE)
        .unwrap();
    env.nm.release(np2);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn register_direction_only_flags() {
    let env = Env::new();
    let t = env.port_with(
        "vale0:a",
        NmreqRegister {
            nr_flags: NR_TX_RINGS_ONLY,
            ..reg(NR_REG_ALL_NIC)
        },
    );
    assert_ne!(t.ring_ofs(0), 0);
    assert_eq!(t.ring_ofs(2), 0);
    assert!(t.tx_ring(0).is_some());
    assert!(t.rx_ring(0).is_none());
    // The flags are left as sent.
    assert_eq!(t.reg.nr_flags, NR_TX_RINGS_ONLY);
    let r = env.port_with(
        "vale0:a",
        NmreqRegister {
            nr_flags: NR_RX_RINGS_ONLY,
            ..reg(NR_REG_ALL_NIC)
        },
    );
    assert_eq!(r.ring_ofs(0), 0);
    assert_ne!(r.ring_ofs(2), 0);
    assert!(r.tx_ring(0).is_none());
    assert!(r.rx_ring(0).is_some());
    // Both flags: nothing bound, still a valid registration.
    let n = env.port_with(
        "vale0:a",
        NmreqRegister {
            nr_flags: NR_RX_RINGS_ONLY | NR_TX_RINGS_ONLY,
            ..reg(NR_REG_ALL_NIC)
        },
    );
    assert_eq!(
        (n.ring_ofs(0), n.ring_ofs(1), n.ring_ofs(2), n.ring_ofs(3)),
        (0, 0, 0, 0)
    );
}

#[test]
fn register_vale_ring_clamping() {
    let env = Env::new();
    let p = env.port_with(
        "vale0:a",
        NmreqRegister {
            nr_tx_rings: 17,
            nr_rx_rings: 0,
            nr_tx_slots: 64,
            nr_rx_slots: 64,
            ..reg(NR_REG_ALL_NIC)
        },
    );
    assert_eq!((p.reg.nr_tx_rings, p.reg.nr_rx_rings), (16, 1));
    assert_eq!((p.reg.nr_tx_slots, p.reg.nr_rx_slots), (64, 64));
    assert_eq!((p.reg.nr_host_tx_rings, p.reg.nr_host_rx_rings), (0, 0));
    let n = p.nifp();
    assert_eq!((n.ni_tx_rings, n.ni_rx_rings), (16, 1));
    assert_eq!(p.tx_ring(15).unwrap().num_slots(), 64);
    let q = env.port_with(
        "vale0:b",
        NmreqRegister {
            nr_tx_rings: 0,
            nr_rx_rings: 1000,
            nr_tx_slots: 0,
            nr_rx_slots: 5000,
            ..reg(NR_REG_ONE_NIC)
        },
    );
    assert_eq!((q.reg.nr_tx_rings, q.reg.nr_rx_rings), (1, 16));
    assert_eq!((q.reg.nr_tx_slots, q.reg.nr_rx_slots), (1024, 4096));
    assert_eq!(q.rx_ring(0).unwrap().num_slots(), 4096);
    assert_eq!(q.tx_ring(0).unwrap().num_slots(), 1024);
    // A second fd on an existing port gets the port's values, not its hints.
    let r = env.port_with(
        "vale0:b",
        NmreqRegister {
            nr_tx_rings: 3,
            nr_tx_slots: 8,
            ..reg(NR_REG_ALL_NIC)
        },
    );
    assert_eq!((r.reg.nr_tx_rings, r.reg.nr_rx_rings), (1, 16));
    assert_eq!((r.reg.nr_tx_slots, r.reg.nr_rx_slots), (1024, 4096));
    assert_eq!(r.reg.nr_mem_id, q.reg.nr_mem_id);
}

#[test]
fn register_extra_buffers() {
    let env = Env::with_params(small_global());
    let base = env.nm.stats();
    let p = env.port_with(
        "vale0:a",
        NmreqRegister {
            nr_mem_id: 1,
            nr_extra_bufs: 5,
            ..reg(NR_REG_ALL_NIC)
        },
    );
    assert_eq!(p.reg.nr_mem_id, 1);
    assert_eq!(p.reg.nr_extra_bufs, 5);
    assert_eq!(p.nifp().ni_flags & NI_PRIV_MEM, 0);
    let st = env.nm.stats();
    assert_eq!(st.buf_used, base.buf_used + 2 * 1024 + 5);
    let ring = p.tx_ring(0).unwrap();
    let nbufs = 8192;
    let link = |idx: u32| -> u32 {
        // SAFETY: idx is a buffer of this region; its first 4 bytes are the link.
        unsafe { p.buf(&ring, idx).cast::<u32>().read_unaligned() }
    };
    let mut chain = Vec::new();
    let mut idx = p.nifp().ni_bufs_head;
    while idx != 0 {
        assert!((2..nbufs).contains(&idx), "bad index {idx}");
        assert!(!chain.contains(&idx), "cycle at {idx}");
        chain.push(idx);
        assert!(chain.len() <= 5);
        idx = link(idx);
    }
    assert_eq!(chain.len(), 5);
    // None of them is in a ring.
    let rx = p.rx_ring(0).unwrap();
    for i in 0..1024 {
        assert!(!chain.contains(&ring.slot(i).buf_idx));
        assert!(!chain.contains(&rx.slot(i).buf_idx));
    }
    // The user turns the list into a cycle and moves the head into it.
    let last = chain[4];
    let b = p.buf(&ring, last).cast::<u32>();
    // SAFETY: the link word of an extra buffer of this region.
    unsafe { b.write_unaligned(chain[0]) };
    p.set_bufs_head(chain[2]);
    p.close();
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn register_no_extra_buffers_head_zero() {
    let env = Env::new();
    let p = env.port("vale0:a");
    assert_eq!(p.reg.nr_extra_bufs, 0);
    assert_eq!(p.nifp().ni_bufs_head, 0);
}

#[test]
fn register_vale_name_syntax_errors() {
    let env = Env::new();
    let base = env.nm.stats();
    let np = env.open();
    for name in [
        "vale0123456789abcdef:x",
        "vale-x:y",
        "vale0:0123456789abcdef",
        "vale",
        "vale0",
        "val",
    ] {
        assert_eq!(
            env.register(&np, name, NR_REG_ALL_NIC, 0).err(),
            Some(Errno::ENOMEM),
            "{name}"
        );
    }
    // A 15-character port part is fine.
    env.register(&np, "vale0:0123456789abcde", NR_REG_ALL_NIC, 0)
        .unwrap();
    env.nm.release(np);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn register_vnet_header_needs_accept_flag() {
    let env = Env::new();
    let a = env.port("vale0:a");
    assert_eq!(
        hdr_req(&env, NETMAP_REQ_PORT_HDR_SET, "vale0:a", 12),
        Ok(12)
    );
    let np = env.open();
    assert_eq!(
        env.register(&np, "vale0:a", NR_REG_ALL_NIC, 0).err(),
        Some(Errno::EIO)
    );
    assert!(np.binding().is_none());
    env.register(&np, "vale0:a", NR_REG_ALL_NIC, NR_ACCEPT_VNET_HDR)
        .unwrap();
    env.nm.release(np);
    drop(a);
}

#[test]
fn register_null_port() {
    let env = Env::with_params(small_global());
    let base = env.nm.stats();
    let np = env.open();
    // nr_mem_id is mandatory.
    assert_eq!(
        env.register(&np, "x", NR_REG_NULL, 0).err(),
        Some(Errno::EINVAL)
    );
    let p = env.port_with(
        "x",
        NmreqRegister {
            nr_mem_id: 1,
            nr_tx_rings: 3,
            nr_rx_rings: 2,
            nr_tx_slots: 64,
            nr_rx_slots: 32,
            ..reg(NR_REG_NULL)
        },
    );
    assert_eq!(p.reg.nr_mem_id, 1);
    assert_eq!((p.reg.nr_tx_rings, p.reg.nr_rx_rings), (3, 2));
    assert_eq!((p.reg.nr_tx_slots, p.reg.nr_rx_slots), (64, 32));
    let n = p.nifp();
    assert_eq!(n.name(), b"null:x");
    assert_eq!((n.ni_tx_rings, n.ni_rx_rings), (3, 2));
    assert_eq!(p.tx_ring(2).unwrap().num_slots(), 64);
    assert_eq!(p.rx_ring(1).unwrap().num_slots(), 32);
    p.txsync().unwrap();
    p.rxsync().unwrap();
    // Zero rings.
    let z = env.port_with(
        "y",
        NmreqRegister {
            nr_mem_id: 1,
            ..reg(NR_REG_NULL)
        },
    );
    assert_eq!((z.reg.nr_tx_rings, z.reg.nr_rx_rings), (0, 0));
    assert_eq!((z.nifp().ni_tx_rings, z.nifp().ni_rx_rings), (0, 0));
    z.txsync().unwrap();
    z.rxsync().unwrap();
    drop(z);
    drop(p);
    env.nm.release(np);
    let st = env.nm.stats();
    assert_eq!(
        (st.if_used, st.ring_used, st.buf_used),
        (base.if_used, base.ring_used, base.buf_used)
    );
}

// ----------------------------------------------------------------------
// PORT_INFO_GET (§4.5), POOLS_INFO_GET (§4.8)

#[test]
fn port_info_creates_temporary_vale_port() {
    let env = Env::new();
    let base = env.nm.stats();
    let pi = port_info(&env, "vale0:a", NmreqPortInfoGet::zeroed()).unwrap();
    assert_eq!(pi.nr_memsize, 42369024);
    assert_ne!(pi.nr_mem_id, 1);
    assert_eq!((pi.nr_tx_rings, pi.nr_rx_rings), (1, 1));
    assert_eq!((pi.nr_tx_slots, pi.nr_rx_slots), (1024, 1024));
    assert_eq!((pi.nr_host_tx_rings, pi.nr_host_rx_rings), (0, 0));
    assert_eq!(env.nm.stats(), base);
    assert_eq!(vale_list(&env, "vale0:a", 0, 0).err(), Some(Errno::ENOENT));
    // Hints are used for the temporary port.
    let pi = port_info(
        &env,
        "vale0:b",
        NmreqPortInfoGet {
            nr_tx_rings: 2,
            nr_rx_slots: 256,
            ..NmreqPortInfoGet::zeroed()
        },
    )
    .unwrap();
    assert_eq!(
        (pi.nr_tx_rings, pi.nr_rx_rings, pi.nr_rx_slots),
        (2, 1, 256)
    );
    assert_eq!(env.nm.stats(), base);
    // An existing port reports its own values and stays.
    let a = env.port("vale0:a");
    let pi = port_info(&env, "vale0:a", NmreqPortInfoGet::zeroed()).unwrap();
    assert_eq!(pi.nr_mem_id, a.reg.nr_mem_id);
    assert_eq!(vale_list(&env, "vale0:a", 0, 0).unwrap().0.nr_port_idx, 0);
}

#[test]
fn port_info_unknown_plain_name() {
    let env = Env::new();
    assert_eq!(
        port_info(&env, "nosuchif0", NmreqPortInfoGet::zeroed()).err(),
        Some(Errno::ENXIO)
    );
    assert_eq!(
        port_info(&env, "eth0", NmreqPortInfoGet::zeroed()).err(),
        Some(Errno::ENXIO)
    );
    assert_eq!(env.nm.stats(), Env::new().nm.stats());
}

#[test]
fn port_info_empty_name_is_memory_info() {
    let env = Env::new();
    let pi = port_info(&env, "", NmreqPortInfoGet::zeroed()).unwrap();
    assert_eq!(pi.nr_memsize, 343019520);
    assert_eq!(pi.nr_mem_id, 1);
    let pi = port_info(
        &env,
        "",
        NmreqPortInfoGet {
            nr_mem_id: 1,
            nr_tx_rings: 7,
            nr_tx_slots: 9,
            ..NmreqPortInfoGet::zeroed()
        },
    )
    .unwrap();
    assert_eq!(pi.nr_memsize, 343019520);
    // Other fields untouched.
    assert_eq!((pi.nr_tx_rings, pi.nr_tx_slots), (7, 9));
    // A private allocator, by id.
    let a = env.port_with(
        "vale0:a",
        NmreqRegister {
            nr_tx_slots: 2048,
            ..reg(NR_REG_ALL_NIC)
        },
    );
    let pi = port_info(
        &env,
        "",
        NmreqPortInfoGet {
            nr_mem_id: a.reg.nr_mem_id,
            ..NmreqPortInfoGet::zeroed()
        },
    )
    .unwrap();
    assert_eq!(pi.nr_memsize, a.reg.nr_memsize);
    assert_eq!(pi.nr_mem_id, a.reg.nr_mem_id);
    assert_ne!(pi.nr_memsize, 42369024);
    // Unknown id.
    let r = port_info(
        &env,
        "",
        NmreqPortInfoGet {
            nr_mem_id: 999,
            ..NmreqPortInfoGet::zeroed()
        },
    );
    assert_eq!(r.err(), Some(Errno::EINVAL));
}

#[test]
fn pools_info_of_vale_port() {
    let env = Env::new();
    let base = env.nm.stats();
    let np = env.open();
    let mut pi = NmreqPoolsInfo::zeroed();
    env.ctrl(&np, NETMAP_REQ_POOLS_INFO_GET, "vale0:a", Some(&mut pi))
        .unwrap();
    assert_eq!(pi.nr_memsize, 42369024);
    assert_ne!(pi.nr_mem_id, 1);
    assert_eq!(
        (
            pi.nr_if_pool_offset,
            pi.nr_if_pool_objtotal,
            pi.nr_if_pool_objsize
        ),
        (0, 12, 1024)
    );
    assert_eq!(
        (
            pi.nr_ring_pool_offset,
            pi.nr_ring_pool_objtotal,
            pi.nr_ring_pool_objsize
        ),
        (12288, 20, 20480)
    );
    assert_eq!(
        (
            pi.nr_buf_pool_offset,
            pi.nr_buf_pool_objtotal,
            pi.nr_buf_pool_objsize
        ),
        (421888, 20482, 2048)
    );
    assert_eq!(env.nm.stats(), base);
    let mut pi = NmreqPoolsInfo::zeroed();
    assert_eq!(
        env.ctrl(&np, NETMAP_REQ_POOLS_INFO_GET, "", Some(&mut pi))
            .err(),
        Some(Errno::ENXIO)
    );
    env.nm.release(np);
}

// ----------------------------------------------------------------------
// VALE_LIST (§8.6)

#[test]
fn vale_list_named_lookup() {
    let env = Env::new();
    let _a = env.port("vale0:a");
    let _b = env.port("vale0:b");
    let _c = env.port("vale1:c");
    let (l, _) = vale_list(&env, "vale0:b", 0, 0).unwrap();
    assert_eq!((l.nr_bridge_idx, l.nr_port_idx), (0, 1));
    let (l, _) = vale_list(&env, "vale1:c", 0, 0).unwrap();
    assert_eq!((l.nr_bridge_idx, l.nr_port_idx), (1, 0));
    let (l, _) = vale_list(&env, "vale1:zz", 0, 0).unwrap();
    assert_eq!((l.nr_bridge_idx, l.nr_port_idx), (1, NM_BDG_NOPORT));
    assert_eq!(vale_list(&env, "vale2:a", 0, 0).err(), Some(Errno::ENOENT));
    assert_eq!(vale_list(&env, "eth0", 0, 0).err(), Some(Errno::EINVAL));
    assert_eq!(vale_list(&env, "valx:a", 0, 0).err(), Some(Errno::EINVAL));
    // A VALE-prefixed name with bad syntax names no existing switch.
    for bad in [
        "vale0",
        "vale-x:y",
        "vale0123456789abcdef:x",
        "vale0:0123456789abcdef",
    ] {
        assert_eq!(
            vale_list(&env, bad, 0, 0).err(),
            Some(Errno::ENOENT),
            "{bad}"
        );
    }
}

#[test]
fn vale_list_enumeration() {
    let env = Env::new();
    assert_eq!(vale_list(&env, "", 0, 0).err(), Some(Errno::ENOENT));
    let ports: Vec<_> = ["vale0:a", "vale0:b", "vale0:c", "vale1:x", "vale1:y"]
        .iter()
        .map(|n| env.port(n))
        .collect();
    let mut seen = Vec::new();
    let (mut b, mut p) = (0u16, 0u32);
    loop {
        match vale_list(&env, "", b, p) {
            Ok((l, name)) => {
                seen.push((l.nr_bridge_idx, l.nr_port_idx, name));
                b = l.nr_bridge_idx;
                p = l.nr_port_idx + 1;
                assert!(seen.len() <= 5);
            }
            Err(e) => {
                assert_eq!(e, Errno::ENOENT);
                break;
            }
        }
    }
    let want: Vec<(u16, u32, String)> = vec![
        (0, 0, "vale0:a".into()),
        (0, 1, "vale0:b".into()),
        (0, 2, "vale0:c".into()),
        (1, 0, "vale1:x".into()),
        (1, 1, "vale1:y".into()),
    ];
    assert_eq!(seen, want);
    // Starting points past the end.
    assert_eq!(vale_list(&env, "", 1, 2).err(), Some(Errno::ENOENT));
    assert_eq!(vale_list(&env, "", 8, 0).err(), Some(Errno::ENOENT));
    assert_eq!(vale_list(&env, "", 0, 300).unwrap().1, "vale1:x");
    // A freed index is the next one reused (§8.1); enumeration skips holes.
    let mut ports = ports;
    drop(ports.remove(1));
    assert_eq!(vale_list(&env, "", 0, 1).unwrap().1, "vale0:c");
    let d = env.port("vale0:d");
    assert_eq!(vale_list(&env, "vale0:d", 0, 0).unwrap().0.nr_port_idx, 1);
    drop(d);
    drop(ports);
    assert_eq!(vale_list(&env, "", 0, 0).err(), Some(Errno::ENOENT));
}

// ----------------------------------------------------------------------
// PORT_HDR_SET / PORT_HDR_GET (§4.7)

#[test]
fn port_hdr_set_get() {
    let env = Env::new();
    let _a = env.port("vale0:a");
    for bad in [1u32, 11, 13, 14, 0xffff_ffff] {
        assert_eq!(
            hdr_req(&env, NETMAP_REQ_PORT_HDR_SET, "vale0:a", bad).err(),
            Some(Errno::EINVAL),
            "len {bad}"
        );
    }
    assert_eq!(hdr_req(&env, NETMAP_REQ_PORT_HDR_GET, "vale0:a", 99), Ok(0));
    for len in [10u32, 12, 0] {
        assert_eq!(
            hdr_req(&env, NETMAP_REQ_PORT_HDR_SET, "vale0:a", len),
            Ok(len)
        );
        assert_eq!(
            hdr_req(&env, NETMAP_REQ_PORT_HDR_GET, "vale0:a", 99),
            Ok(len)
        );
    }
    // Not a VALE name / not existing.
    assert_eq!(
        hdr_req(&env, NETMAP_REQ_PORT_HDR_SET, "eth0", 12).err(),
        Some(Errno::ENXIO)
    );
    assert_eq!(
        hdr_req(&env, NETMAP_REQ_PORT_HDR_SET, "vale0:nope", 12).err(),
        Some(Errno::ENXIO)
    );
    assert_eq!(
        hdr_req(&env, NETMAP_REQ_PORT_HDR_GET, "vale0:nope", 0).err(),
        Some(Errno::ENXIO)
    );
    assert_eq!(
        hdr_req(&env, NETMAP_REQ_PORT_HDR_GET, "eth0", 0).err(),
        Some(Errno::ENXIO)
    );
    // Neither request created anything.
    assert_eq!(
        vale_list(&env, "vale0:nope", 0, 0).unwrap().0.nr_port_idx,
        NM_BDG_NOPORT
    );
}

// ----------------------------------------------------------------------
// Syncs and hostile rings (§6.4, §6.6)

#[test]
fn sync_on_unbound_and_unknown_cmd() {
    let env = Env::new();
    let np = env.open();
    assert_eq!(env.txsync(&np), Err(Errno::ENXIO));
    assert_eq!(env.rxsync(&np), Err(Errno::ENXIO));
    assert_eq!(env.nm.ioctl(&np, 0x1234, 0), Err(Errno::EOPNOTSUPP));
    assert_eq!(env.nm.ioctl(&np, NIOCCTRL + 1, 0), Err(Errno::EOPNOTSUPP));
    assert_eq!(env.nm.ioctl(&np, 0, 0), Err(Errno::EOPNOTSUPP));
    let a = env.port("vale0:a");
    assert_eq!(env.nm.ioctl(a.np(), 0x6993, 0), Err(Errno::EOPNOTSUPP));
}

#[test]
fn hostile_tx_ring_is_reinitialized() {
    let env = Env::new();
    let a = env.port("vale0:a");
    let tx = a.tx_ring(0).unwrap();
    let n = tx.num_slots();
    let s6 = tx.slot(6);
    tx.set_slot(
        3,
        NetmapSlot {
            buf_idx: 1,
            ..tx.slot(3)
        },
    );
    tx.set_slot(
        4,
        NetmapSlot {
            buf_idx: 999_999,
            ..tx.slot(4)
        },
    );
    tx.set_slot(
        5,
        NetmapSlot {
            len: 4000,
            ..tx.slot(5)
        },
    );
    tx.set_slot(
        7,
        NetmapSlot {
            buf_idx: 0,
            ..tx.slot(7)
        },
    );
    tx.set_head(n + 5);
    tx.set_cur(5);
    tx.set_tail(7);
    assert_eq!(a.txsync(), Ok(()));
    assert_eq!((tx.head(), tx.cur(), tx.tail()), (0, 0, n - 1));
    assert_eq!((tx.slot(3).buf_idx, tx.slot(3).len), (0, 0));
    assert_eq!((tx.slot(4).buf_idx, tx.slot(4).len), (0, 0));
    assert_eq!(tx.slot(5).len, 0);
    assert_ne!(tx.slot(5).buf_idx, 0);
    assert_eq!((tx.slot(7).buf_idx, tx.slot(7).len), (0, 0));
    assert_eq!(tx.slot(6), s6);
    // Only cur out of range: same reset.
    tx.set_cur(u32::MAX);
    assert_eq!(a.txsync(), Ok(()));
    assert_eq!((tx.head(), tx.cur(), tx.tail()), (0, 0, n - 1));
    // A bad tail alone is not a validation failure: silently restored (§6.3).
    tx.set_tail(n + 100);
    assert_eq!(poll(&env, a.np(), POLLOUT), POLLOUT);
    assert_eq!(tx.tail(), n - 1);
    // poll reports the reinit.
    tx.set_head(n);
    let rev = poll(&env, a.np(), POLLOUT);
    assert_ne!(rev & POLLERR, 0);
    assert_eq!((tx.head(), tx.cur(), tx.tail()), (0, 0, n - 1));
    // A sane ring is back to normal.
    let rev = poll(&env, a.np(), POLLOUT);
    assert_eq!(rev & POLLERR, 0);
    assert_ne!(rev & POLLOUT, 0);
}

#[test]
fn hostile_rx_ring_is_reinitialized() {
    let env = Env::new();
    let a = env.port("vale0:a");
    let rx = a.rx_ring(0).unwrap();
    rx.set_slot(
        10,
        NetmapSlot {
            buf_idx: 1,
            ..rx.slot(10)
        },
    );
    rx.set_head(7777);
    assert_eq!(a.rxsync(), Ok(()));
    assert_eq!((rx.head(), rx.cur(), rx.tail()), (0, 0, 0));
    assert_eq!((rx.slot(10).buf_idx, rx.slot(10).len), (0, 0));
    rx.set_cur(5000);
    let rev = poll(&env, a.np(), POLLIN);
    assert_ne!(rev & POLLERR, 0);
    assert_eq!(rev & POLLIN, 0);
    assert_eq!((rx.head(), rx.cur(), rx.tail()), (0, 0, 0));
}

#[test]
fn out_of_order_head_left_untouched() {
    let env = Env::new();
    let a = env.port("vale0:a");
    let b = env.port("vale0:b");
    let tx = a.tx_ring(0).unwrap();
    let n = tx.num_slots();
    for i in 0..5 {
        let f = frame(BCAST, A, i, 60);
        let buf = a.buf(&tx, tx.slot(i).buf_idx);
        // SAFETY: a 2048-byte buffer of this port; the frame is 60 bytes.
        unsafe { core::ptr::copy_nonoverlapping(f.as_ptr(), buf, f.len()) };
        tx.set_slot(
            i,
            NetmapSlot {
                len: 60,
                ..tx.slot(i)
            },
        );
    }
    // cur behind head: invalid, but in range.
    tx.set_head(5);
    tx.set_cur(3);
    assert_eq!(a.txsync(), Ok(()));
    assert_eq!((tx.head(), tx.cur(), tx.tail()), (5, 3, n - 1));
    assert!(b.recv().is_empty());
    let rev = poll(&env, a.np(), POLLOUT);
    assert_ne!(rev & POLLERR, 0);
    assert_eq!((tx.head(), tx.cur()), (5, 3));
    // Fixed by the user: the frames go out.
    tx.set_cur(5);
    assert_eq!(a.txsync(), Ok(()));
    assert_eq!(tx.tail(), 4);
    assert_eq!(b.recv().len(), 5);
}

// ----------------------------------------------------------------------
// poll readiness (§6.7)

#[test]
fn poll_readiness() {
    let env = Env::new();
    let np = env.open();
    assert_eq!(poll(&env, &np, POLLIN | POLLOUT), POLLERR);
    let a = env.port("vale0:a");
    let b = env.port("vale0:b");
    let rev = poll(&env, a.np(), POLLOUT);
    assert_eq!(rev, POLLOUT);
    let rev = poll(&env, a.np(), POLLIN);
    assert_eq!(rev & POLLIN, 0);
    assert_eq!(rev & POLLERR, 0);
    assert_eq!(b.send(&[&frame(BCAST, A, 1, 60)]), 1);
    let rev = poll(&env, a.np(), POLLIN);
    assert_eq!(rev, POLLIN);
    let rev = poll(&env, a.np(), POLLIN | POLLOUT);
    assert_eq!(rev, POLLIN | POLLOUT);
    assert_eq!(a.recv().len(), 1);
    assert_eq!(poll(&env, a.np(), POLLIN) & POLLIN, 0);
    // TX-only fd: never POLLIN.
    let t = env.port_with(
        "vale0:a",
        NmreqRegister {
            nr_flags: NR_TX_RINGS_ONLY,
            ..reg(NR_REG_ALL_NIC)
        },
    );
    assert_eq!(poll(&env, t.np(), POLLIN | POLLOUT), POLLOUT);
    drop(np);
}

// ----------------------------------------------------------------------
// mmap (§5.6)

#[test]
fn mmap_check_rules() {
    let env = Env::new();
    let np = env.open();
    assert_eq!(env.nm.mmap_check(&np, 0, 4096), Err(Errno::EINVAL));
    let a = env.port("vale0:a");
    let sz = a.reg.nr_memsize;
    assert_eq!(env.nm.mmap_check(a.np(), 0, sz), Ok(()));
    assert_eq!(env.nm.mmap_check(a.np(), 4096, sz - 4096), Ok(()));
    assert_eq!(env.nm.mmap_check(a.np(), 0, sz + 1), Err(Errno::EINVAL));
    assert_eq!(env.nm.mmap_check(a.np(), 4096, sz), Err(Errno::EINVAL));
    assert_eq!(env.nm.mmap_check(a.np(), u64::MAX, 2), Err(Errno::EINVAL));
    assert_eq!(env.nm.mmap_check(a.np(), sz, 4096), Err(Errno::EINVAL));
    env.nm.release(np);
}

// ----------------------------------------------------------------------
// Legacy NIOCREGIF / NIOCGINFO (§4.12)

fn legacy(env: &Env, np: &Np, cmd: u32, nmr: &Nmreq) -> (Result<(), Errno>, Nmreq) {
    assert_eq!(core::mem::size_of::<Nmreq>(), 60);
    let a = env.p.user_map(nmr.as_bytes());
    let r = env.nm.ioctl(np, cmd, a);
    (r, read_user(env, a))
}

fn nmreq(name: &str) -> Nmreq {
    Nmreq {
        nr_name: c_name(name.as_bytes()),
        nr_version: 14,
        ..Nmreq::zeroed()
    }
}

/// netmap_if of a file registered through the legacy path.
fn legacy_nifp(env: &Env, np: &Np, off: u32) -> NetmapIf {
    let page = env.nm.mmap_page(np, u64::from(off) & !4095).unwrap();
    let p = page
        .as_ptr()
        .wrapping_add(off as usize & 4095)
        .cast::<NetmapIf>();
    // SAFETY: nr_offset is this file's netmap_if inside the mapped region.
    unsafe { p.read_volatile() }
}

#[test]
fn legacy_version_lower_bound_only() {
    let env = Env::new();
    assert_eq!(env.nm.ioctl(&env.open(), NIOCREGIF, 0), Err(Errno::EINVAL));
    assert_eq!(
        env.nm.ioctl(&env.open(), NIOCREGIF, BAD_ADDR),
        Err(Errno::EFAULT)
    );
    for (v, ok) in [
        (13u32, false),
        (0, false),
        (14, true),
        (15, true),
        (16, true),
        (100, true),
    ] {
        let np = env.open();
        let (r, back) = legacy(
            &env,
            &np,
            NIOCREGIF,
            &Nmreq {
                nr_version: v,
                ..nmreq("vale0:a")
            },
        );
        if ok {
            assert_eq!(r, Ok(()), "version {v}");
            assert_eq!(back.nr_version, v);
        } else {
            assert_eq!(r, Err(Errno::EINVAL), "version {v}");
            assert!(np.binding().is_none());
        }
        env.nm.release(np);
    }
    assert_eq!(env.nm.stats(), Env::new().nm.stats());
}

#[test]
fn legacy_register_vale_port() {
    let env = Env::new();
    let np = env.open();
    let req = Nmreq {
        nr_arg3: 3,
        nr_ringid: NETMAP_NO_TX_POLL,
        nr_flags: NR_REG_ALL_NIC,
        ..nmreq("vale0:a")
    };
    let (r, back) = legacy(&env, &np, NIOCREGIF, &req);
    assert_eq!(r, Ok(()));
    assert_eq!(back.nr_offset, 0);
    // 20482 + 3 buffers, rounded up to whole clusters of 2 buffers.
    assert_eq!(back.nr_memsize, 42369024 + 4 * 2048);
    assert_eq!((back.nr_tx_slots, back.nr_rx_slots), (1024, 1024));
    assert_eq!((back.nr_tx_rings, back.nr_rx_rings), (1, 1));
    assert_ne!(back.nr_arg2, 1);
    assert_ne!(back.nr_arg2, 0);
    assert_eq!(back.nr_arg3, 3);
    // Left as sent.
    assert_eq!(back.nr_flags, NR_REG_ALL_NIC);
    assert_eq!(back.nr_ringid, NETMAP_NO_TX_POLL);
    assert_eq!(back.nr_version, 14);
    assert_eq!(back.nr_cmd, 0);
    let b = np.binding().unwrap();
    assert!(b.flags.contains(RegFlags::NO_TX_POLL));
    let n = legacy_nifp(&env, &np, back.nr_offset);
    assert_eq!(n.name(), b"vale0:a");
    assert_ne!(n.ni_bufs_head, 0);
    // The same via NIOCCTRL on the same port: same mem id.
    let p = env.port("vale0:a");
    assert_eq!(p.reg.nr_mem_id, back.nr_arg2);
    // Second NIOCREGIF on the bound fd.
    let (r, back2) = legacy(&env, &np, NIOCREGIF, &req);
    assert_eq!(r, Err(Errno::EBUSY));
    assert_eq!(back2.nr_memsize, 0);
    // NIOCGINFO on the port.
    let np2 = env.open();
    let (r, gi) = legacy(&env, &np2, NIOCGINFO, &nmreq("vale0:a"));
    assert_eq!(r, Ok(()));
    assert_eq!(gi.nr_memsize, 42369024 + 4 * 2048);
    assert_eq!(gi.nr_arg2, back.nr_arg2);
    assert_eq!((gi.nr_tx_rings, gi.nr_tx_slots), (1, 1024));
    env.nm.release(np2);
    env.nm.release(np);
}

#[test]
fn legacy_bdg_list() {
    let env = Env::new();
    let _a = env.port("vale0:a");
    let _b = env.port("vale0:b");
    let _c = env.port("vale1:c");
    let np = env.open();
    let (r, back) = legacy(
        &env,
        &np,
        NIOCGINFO,
        &Nmreq {
            nr_cmd: NETMAP_BDG_LIST,
            ..nmreq("vale1:c")
        },
    );
    assert_eq!(r, Ok(()));
    assert_eq!((back.nr_arg1, back.nr_arg2), (1, 0));
    let (r, back) = legacy(
        &env,
        &np,
        NIOCGINFO,
        &Nmreq {
            nr_cmd: NETMAP_BDG_LIST,
            ..nmreq("vale0:b")
        },
    );
    assert_eq!(r, Ok(()));
    assert_eq!((back.nr_arg1, back.nr_arg2), (0, 1));
    let (r, _) = legacy(
        &env,
        &np,
        NIOCGINFO,
        &Nmreq {
            nr_cmd: NETMAP_BDG_LIST,
            ..nmreq("vale5:b")
        },
    );
    assert_eq!(r, Err(Errno::ENOENT));
    // Enumeration.
    let mut seen = Vec::new();
    let (mut bi, mut pi) = (0u16, 0u16);
    loop {
        let q = Nmreq {
            nr_cmd: NETMAP_BDG_LIST,
            nr_arg1: bi,
            nr_arg2: pi,
            ..nmreq("")
        };
        let (r, back) = legacy(&env, &np, NIOCGINFO, &q);
        if r.is_err() {
            assert_eq!(r, Err(Errno::ENOENT));
            break;
        }
        seen.push((
            back.nr_arg1,
            back.nr_arg2,
            String::from_utf8(back.name().to_vec()).unwrap(),
        ));
        bi = back.nr_arg1;
        pi = back.nr_arg2 + 1;
        assert!(seen.len() <= 3);
    }
    assert_eq!(
        seen,
        vec![
            (0, 0, "vale0:a".to_string()),
            (0, 1, "vale0:b".to_string()),
            (1, 0, "vale1:c".to_string())
        ]
    );
    env.nm.release(np);
}

#[test]
fn legacy_pipe_mode_rewrites_name() {
    let env = Env::new();
    let base = env.nm.stats();
    let np = env.open();
    let (r, back) = legacy(
        &env,
        &np,
        NIOCREGIF,
        &Nmreq {
            nr_flags: NR_REG_PIPE_MASTER,
            nr_ringid: 3,
            ..nmreq("pipeX")
        },
    );
    assert_eq!(r, Ok(()));
    assert_eq!(legacy_nifp(&env, &np, back.nr_offset).name(), b"pipeX{3");
    // The name in the request is left as sent.
    assert_eq!(back.name(), b"pipeX");
    // The slave end is the peer: opened by name through NIOCCTRL.
    let s = env.port("pipeX}3");
    assert_eq!(s.nifp().name(), b"pipeX}3");
    assert_eq!(s.reg.nr_mem_id, back.nr_arg2);
    // Slave mode with the legacy path too.
    let np2 = env.open();
    let (r, back2) = legacy(
        &env,
        &np2,
        NIOCREGIF,
        &Nmreq {
            nr_flags: NR_REG_PIPE_SLAVE,
            nr_ringid: 12,
            ..nmreq("pipeX")
        },
    );
    assert_eq!(r, Ok(()));
    assert_eq!(legacy_nifp(&env, &np2, back2.nr_offset).name(), b"pipeX}12");
    env.nm.release(np2);
    drop(s);
    env.nm.release(np);
    assert_eq!(env.nm.stats(), base);
}

#[test]
fn legacy_ringid_bits_select_mode() {
    let env = Env::new();
    // Mode 0 + NETMAP_HW_RING: ONE_NIC on ring (ringid & 0xfff).
    let np = env.open();
    let (r, back) = legacy(
        &env,
        &np,
        NIOCREGIF,
        &Nmreq {
            nr_tx_rings: 2,
            nr_rx_rings: 2,
            nr_ringid: NETMAP_HW_RING | 1,
            ..nmreq("vale0:a")
        },
    );
    assert_eq!(r, Ok(()));
    assert_eq!((back.nr_tx_rings, back.nr_rx_rings), (2, 2));
    let b = np.binding().unwrap();
    assert_eq!((b.ranges[0].first, b.ranges[0].last), (1, 2));
    assert_eq!((b.ranges[1].first, b.ranges[1].last), (1, 2));
    // Mode 0 + NETMAP_SW_RING: host rings, which VALE ports lack.
    let np2 = env.open();
    let (r, _) = legacy(
        &env,
        &np2,
        NIOCREGIF,
        &Nmreq {
            nr_ringid: NETMAP_SW_RING,
            ..nmreq("vale0:a")
        },
    );
    assert_eq!(r, Err(Errno::EINVAL));
    // Untranslated and unsupported commands.
    for (cmd, want) in [
        (NETMAP_BDG_REGOPS, Errno::EINVAL),
        (NETMAP_PT_HOST_CREATE, Errno::ENOMEM),
        (NETMAP_PT_HOST_DELETE, Errno::ENOMEM),
        (200, Errno::EINVAL),
    ] {
        let (r, _) = legacy(
            &env,
            &np2,
            NIOCGINFO,
            &Nmreq {
                nr_cmd: cmd,
                ..nmreq("vale0:a")
            },
        );
        assert_eq!(r, Err(want), "nr_cmd {cmd}");
    }
    assert!(np2.binding().is_none());
    env.nm.release(np2);
    env.nm.release(np);
}

#[test]
fn register_extra_buffers_partial() {
    let env = Env::with_params(small_global());
    let base = env.nm.stats();
    // 8192 buffers: 2 reserved, 2048 for the rings.
    let p = env.port_with(
        "vale0:a",
        NmreqRegister {
            nr_mem_id: 1,
            nr_extra_bufs: 7000,
            ..reg(NR_REG_ALL_NIC)
        },
    );
    assert_eq!(p.reg.nr_extra_bufs, 8192 - 2 - 2048);
    assert_eq!(env.nm.stats().buf_used, 8192 - 2);
    // Another fd of the port gets none, and is still registered.
    let q = env.port_with(
        "vale0:a",
        NmreqRegister {
            nr_extra_bufs: 3,
            ..reg(NR_REG_ALL_NIC)
        },
    );
    assert_eq!(q.reg.nr_extra_bufs, 0);
    assert_eq!(q.nifp().ni_bufs_head, 0);
    drop(q);
    p.close();
    assert_eq!(env.nm.stats(), base);
}

/// After a reinit that resets nothing, the kernel remembers the user's
/// (in-range) head/cur (§6.4): a later head moved back behind them is
/// rejected again instead of being transmitted.
#[test]
fn reinit_remembers_user_head() {
    let env = Env::new();
    let a = env.port("vale0:a");
    let b = env.port("vale0:b");
    let frames: Vec<Vec<u8>> = (0..10).map(|i| frame(BCAST, A, i, 60)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    assert_eq!(a.send(&refs), 10);
    assert_eq!(b.recv().len(), 10);
    let tx = a.tx_ring(0).unwrap();
    assert_eq!((tx.head(), tx.cur(), tx.tail()), (10, 10, 9));
    for i in 10..30 {
        let f = frame(BCAST, A, i, 60);
        let buf = a.buf(&tx, tx.slot(i).buf_idx);
        // SAFETY: a 2048-byte buffer of this port; the frame is 60 bytes.
        unsafe { core::ptr::copy_nonoverlapping(f.as_ptr(), buf, f.len()) };
        tx.set_slot(
            i,
            NetmapSlot {
                len: 60,
                ..tx.slot(i)
            },
        );
    }
    // cur behind head: invalid, left as is.
    tx.set_head(20);
    tx.set_cur(15);
    assert_eq!(a.txsync(), Ok(()));
    assert_eq!((tx.head(), tx.cur(), tx.tail()), (20, 15, 9));
    assert!(b.recv().is_empty());
    // head moved back behind the remembered 20: still invalid.
    tx.set_head(15);
    tx.set_cur(15);
    assert_eq!(a.txsync(), Ok(()));
    assert_eq!((tx.head(), tx.cur()), (15, 15));
    assert!(b.recv().is_empty());
    // Moving forward from the remembered head is accepted: [10, 25) goes out.
    tx.set_head(25);
    tx.set_cur(25);
    assert_eq!(a.txsync(), Ok(()));
    assert_eq!(tx.tail(), 24);
    assert_eq!(b.recv().len(), 15);
}

#[test]
fn nioc_config_without_hook() {
    let env = Env::new();
    let np = env.open();
    assert_eq!(env.nm.ioctl(&np, NIOCCONFIG, 0), Err(Errno::EINVAL));
    assert_eq!(env.nm.ioctl(&np, NIOCCONFIG, BAD_ADDR), Err(Errno::EFAULT));
    let _a = env.port("vale0:a");
    let mut ifr = NmIfreq::default();
    ifr.nifr_name[..5].copy_from_slice(b"vale0");
    ifr.data[0] = 0x5a;
    let addr = env.p.user_map(ifr.as_bytes());
    assert_eq!(env.nm.ioctl(&np, NIOCCONFIG, addr), Err(Errno::EINVAL));
    // Copied back unchanged.
    let back: NmIfreq = read_user(&env, addr);
    assert_eq!(back, ifr);
    env.nm.release(np);
}
