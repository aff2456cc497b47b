//! Request validation (spec §4.1, §4.2, §11): the errno of every malformed
//! request, and the header/option write-back.

use crate::port::{Port, all_nic, register, register_on};
use crate::sys::{Fd, errno_name, expect_err, expect_ok};
use crate::{Test, ensure};
use netmap_uapi::*;
use std::ptr;

pub const TESTS: &[Test] = &[
    ("req_register_twice", req_register_twice),
    ("req_header_checks", req_header_checks),
    ("req_bad_modes", req_bad_modes),
    ("req_unknown_port", req_unknown_port),
    ("req_option_loop", req_option_loop),
    ("req_too_many_options", req_too_many_options),
    ("req_option_type_checks", req_option_type_checks),
    ("req_port_info_get", req_port_info_get),
    ("req_legacy_regif", req_legacy_regif),
];

/// NIOCCTRL with header `h` (body/options already set) on `fd`.
fn ctrl(fd: &Fd, h: &mut NmreqHeader) -> Result<(), i32> {
    fd.ioctl_ptr(NIOCCTRL, h)
}

/// A second REGISTER on a bound fd → EBUSY.
fn req_register_twice() -> Result<(), String> {
    let fd = Fd::open_netmap()?;
    expect_ok("REGISTER", register_on(&fd, "vale10:a", all_nic()))?;
    expect_err(
        "second REGISTER",
        register_on(&fd, "vale10:b", all_nic()).map(|_| ()),
        libc::EBUSY,
    )?;
    Ok(())
}

/// nr_reserved ≠ 0, body presence mismatch, unknown request type → EINVAL.
fn req_header_checks() -> Result<(), String> {
    let fd = Fd::open_netmap()?;
    let mut reg = all_nic();
    let body = ptr::addr_of_mut!(reg) as u64;

    let mut h = NmreqHeader::new(NETMAP_REQ_REGISTER, b"vale10:c");
    h.nr_body = body;
    h.nr_reserved = 1;
    expect_err("nr_reserved = 1", ctrl(&fd, &mut h), libc::EINVAL)?;
    ensure!(
        h.nr_reserved == 1 || h.nr_reserved == 0,
        "nr_reserved garbled"
    );

    let mut h = NmreqHeader::new(NETMAP_REQ_REGISTER, b"vale10:c");
    expect_err("REGISTER without body", ctrl(&fd, &mut h), libc::EINVAL)?;

    let mut h = NmreqHeader::new(NETMAP_REQ_VALE_DELIF, b"nm0");
    h.nr_body = body;
    expect_err("DELIF with a body", ctrl(&fd, &mut h), libc::EINVAL)?;

    for t in [0u16, 16, 99, 0xffff] {
        let mut h = NmreqHeader::new(t, b"vale10:c");
        expect_err(
            &format!("request type {t}"),
            ctrl(&fd, &mut h),
            libc::EINVAL,
        )?;
    }
    // A body pointer that faults → EFAULT.
    let mut h = NmreqHeader::new(NETMAP_REQ_REGISTER, b"vale10:c");
    h.nr_body = 0x10;
    expect_err("body at 0x10", ctrl(&fd, &mut h), libc::EFAULT)?;
    // The fd is still unbound after all this.
    expect_err("TXSYNC", fd.ioctl_val(NIOCTXSYNC, 0), libc::ENXIO)?;
    Ok(())
}

/// NR_REG_DEFAULT and the deprecated pipe modes via NIOCCTRL, host rings on
/// a VALE port, out-of-range ring ids → EINVAL.
fn req_bad_modes() -> Result<(), String> {
    for (mode, ringid) in [
        (NR_REG_DEFAULT, 0u16),
        (NR_REG_PIPE_MASTER, 0),
        (NR_REG_PIPE_SLAVE, 0),
        (NR_REG_SW, 0),
        (NR_REG_NIC_SW, 0),
        (NR_REG_ONE_NIC, 5),
        (99, 0),
    ] {
        let mut reg = all_nic();
        reg.nr_mode = mode;
        reg.nr_ringid = ringid;
        expect_err(
            &format!("mode {mode} ringid {ringid}"),
            register("vale10:d", reg).map(|_| ()),
            libc::EINVAL,
        )?;
    }
    Ok(())
}

/// A name that is neither VALE, pipe nor an interface → ENXIO.
fn req_unknown_port() -> Result<(), String> {
    expect_err(
        "REGISTER nosuchif0",
        register("nosuchif0", all_nic()).map(|_| ()),
        libc::ENXIO,
    )
}

/// An option whose nro_next points to itself → EMSGSIZE (spec §4.2 step 1).
fn req_option_loop() -> Result<(), String> {
    let fd = Fd::open_netmap()?;
    let mut reg = all_nic();
    let mut opt = NmreqOption {
        nro_reqtype: NETMAP_REQ_OPT_MAX + 1,
        nro_size: size_of::<NmreqOption>() as u64,
        ..Default::default()
    };
    opt.nro_next = ptr::addr_of_mut!(opt) as u64;
    let mut h = NmreqHeader::new(NETMAP_REQ_REGISTER, b"vale10:e");
    h.nr_body = ptr::addr_of_mut!(reg) as u64;
    h.nr_options = ptr::addr_of_mut!(opt) as u64;
    expect_err("looping option list", ctrl(&fd, &mut h), libc::EMSGSIZE)?;
    ensure!(
        h.nr_options == ptr::addr_of!(opt) as u64,
        "nr_options not restored"
    );
    expect_err(
        "TXSYNC after the failure",
        fd.ioctl_val(NIOCTXSYNC, 0),
        libc::ENXIO,
    )?;
    Ok(())
}

/// 200 distinct (unknown-type) options exceed the 4096-byte request limit →
/// EMSGSIZE.
fn req_too_many_options() -> Result<(), String> {
    let fd = Fd::open_netmap()?;
    let mut reg = all_nic();
    let mut opts = vec![NmreqOption::default(); 200];
    let base = opts.as_mut_ptr();
    for (i, o) in opts.iter_mut().enumerate() {
        o.nro_reqtype = NETMAP_REQ_OPT_MAX + 1;
        o.nro_size = size_of::<NmreqOption>() as u64;
        o.nro_next = if i + 1 < 200 {
            base as u64 + ((i + 1) * size_of::<NmreqOption>()) as u64
        } else {
            0
        };
    }
    let mut h = NmreqHeader::new(NETMAP_REQ_REGISTER, b"vale10:f");
    h.nr_body = ptr::addr_of_mut!(reg) as u64;
    h.nr_options = base as u64;
    expect_err("200 options", ctrl(&fd, &mut h), libc::EMSGSIZE)
}

/// Option type 0 → EINVAL; a duplicate → EINVAL (both marked); an unknown
/// type left over on REGISTER → EOPNOTSUPP with nro_status EOPNOTSUPP.
fn req_option_type_checks() -> Result<(), String> {
    let fd = Fd::open_netmap()?;
    let mut reg = all_nic();
    let body = ptr::addr_of_mut!(reg) as u64;

    let mut zero = NmreqOption {
        nro_size: size_of::<NmreqOption>() as u64,
        ..Default::default()
    };
    let mut h = NmreqHeader::new(NETMAP_REQ_REGISTER, b"vale10:g");
    h.nr_body = body;
    h.nr_options = ptr::addr_of_mut!(zero) as u64;
    expect_err("option type 0", ctrl(&fd, &mut h), libc::EINVAL)?;
    ensure!(
        zero.nro_status == libc::EINVAL as u32,
        "type-0 option status {}",
        zero.nro_status
    );

    let mut second = NmreqOptCsb {
        nro_opt: NmreqOption {
            nro_reqtype: NETMAP_REQ_OPT_CSB,
            nro_size: size_of::<NmreqOptCsb>() as u64,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut first_csb = NmreqOptCsb {
        nro_opt: NmreqOption {
            nro_reqtype: NETMAP_REQ_OPT_CSB,
            nro_size: size_of::<NmreqOptCsb>() as u64,
            nro_next: ptr::addr_of_mut!(second) as u64,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut h = NmreqHeader::new(NETMAP_REQ_REGISTER, b"vale10:g");
    h.nr_body = body;
    h.nr_options = ptr::addr_of_mut!(first_csb) as u64;
    expect_err("duplicate option", ctrl(&fd, &mut h), libc::EINVAL)?;
    ensure!(
        first_csb.nro_opt.nro_status == libc::EINVAL as u32,
        "first duplicate status {}",
        first_csb.nro_opt.nro_status
    );

    let mut unknown = NmreqOption {
        nro_reqtype: NETMAP_REQ_OPT_MAX + 3,
        nro_size: size_of::<NmreqOption>() as u64,
        ..Default::default()
    };
    let mut h = NmreqHeader::new(NETMAP_REQ_REGISTER, b"vale10:g");
    h.nr_body = body;
    h.nr_options = ptr::addr_of_mut!(unknown) as u64;
    expect_err(
        "unknown option on REGISTER",
        ctrl(&fd, &mut h),
        libc::EOPNOTSUPP,
    )?;
    ensure!(
        unknown.nro_status == libc::EOPNOTSUPP as u32,
        "unknown option status {}",
        unknown.nro_status
    );
    // The registration was undone: the fd can still be bound.
    expect_ok(
        "REGISTER after EOPNOTSUPP",
        register_on(&fd, "vale10:g", all_nic()),
    )?;
    Ok(())
}

/// PORT_INFO_GET on a VALE name (created temporarily) and on the global
/// allocator (empty name).
fn req_port_info_get() -> Result<(), String> {
    let fd = Fd::open_netmap()?;
    let mut info = NmreqPortInfoGet::default();
    let mut h = NmreqHeader::new(NETMAP_REQ_PORT_INFO_GET, b"vale10:h");
    h.nr_body = ptr::addr_of_mut!(info) as u64;
    expect_ok("PORT_INFO_GET vale10:h", ctrl(&fd, &mut h))?;
    ensure!(info.nr_memsize == 42_369_024, "memsize {}", info.nr_memsize);
    ensure!(
        info.nr_tx_rings == 1 && info.nr_rx_slots == 1024,
        "rings/slots {}/{}",
        info.nr_tx_rings,
        info.nr_rx_slots
    );

    let mut info = NmreqPortInfoGet {
        nr_mem_id: 1,
        ..Default::default()
    };
    let mut h = NmreqHeader::new(NETMAP_REQ_PORT_INFO_GET, b"");
    h.nr_body = ptr::addr_of_mut!(info) as u64;
    expect_ok("PORT_INFO_GET (global)", ctrl(&fd, &mut h))?;
    ensure!(
        info.nr_memsize == 343_019_520,
        "global memsize {}",
        info.nr_memsize
    );
    ensure!(info.nr_mem_id == 1, "global mem id {}", info.nr_mem_id);

    let mut info = NmreqPortInfoGet {
        nr_mem_id: 999,
        ..Default::default()
    };
    let mut h = NmreqHeader::new(NETMAP_REQ_PORT_INFO_GET, b"");
    h.nr_body = ptr::addr_of_mut!(info) as u64;
    expect_err("PORT_INFO_GET mem id 999", ctrl(&fd, &mut h), libc::EINVAL)?;
    Ok(())
}

/// Legacy NIOCREGIF on a VALE port: registers and maps like NIOCCTRL.
fn req_legacy_regif() -> Result<(), String> {
    let fd = Fd::open_netmap()?;
    let mut req = Nmreq {
        nr_version: u32::from(NETMAP_API),
        nr_flags: NR_REG_ALL_NIC,
        ..Default::default()
    };
    req.nr_name[..9].copy_from_slice(b"vale10:lg");
    expect_ok("NIOCREGIF", fd.ioctl_ptr(NIOCREGIF, &mut req))?;
    ensure!(
        req.nr_memsize == 42_369_024,
        "legacy nr_memsize {}",
        req.nr_memsize
    );
    ensure!(
        req.nr_tx_rings == 1 && req.nr_rx_slots == 1024,
        "legacy rings/slots"
    );
    let m = fd
        .mmap(req.nr_memsize as usize, 0)
        .map_err(|e| format!("mmap: {}", errno_name(e)))?;
    drop(m);
    // A new-API port can talk to it.
    let p = Port::open("vale10:other")?;
    drop(p);
    Ok(())
}
