//! Cases found by the fuzz targets of `fuzz/` (see fuzz/README.md), kept as
//! plain tests so that `cargo test` guards the fixes without libFuzzer.

mod common;
use common::*;
use netmap_core::Params;
use netmap_core::mem::{MemParams, PoolParams};
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

/// Small regions, as the fuzz targets use (`netmap_fuzz::small_params`).
fn small_params() -> Params {
    let pools = |bufs| MemParams {
        if_pool: PoolParams {
            objsize: 1024,
            objtotal: 10,
        },
        ring_pool: PoolParams {
            objsize: 4096,
            objtotal: 8,
        },
        buf_pool: PoolParams {
            objsize: 2048,
            objtotal: bufs,
        },
    };
    Params {
        global: pools(1024),
        private: pools(4),
        ..Params::default()
    }
}

/// fuzz `sequence`: a file on the global allocator asks for extra buffers,
/// then stores 0 in `ni_bufs_head` (an empty list to give back) and
/// closes. The buffers were leaked in mem 1 for good, so a user could
/// exhaust the global pool; the reference reclaims everything a region
/// still has in use when its last user goes.
#[test]
fn extra_buffers_lost_by_the_user_come_back_when_the_region_is_unused() {
    let env = Env::with_params(small_params());
    let base = env.nm.stats();
    for _ in 0..3 {
        let reg = NmreqRegister {
            nr_mode: NR_REG_ALL_NIC,
            nr_mem_id: 1,
            nr_tx_slots: 16,
            nr_rx_slots: 16,
            nr_extra_bufs: 64,
            ..NmreqRegister::zeroed()
        };
        let a = env.port_with("vale0:a", reg);
        assert_eq!(a.reg.nr_mem_id, 1);
        assert_eq!(a.reg.nr_extra_bufs, 64);
        let b = env.port_with("vale0:b", reg);
        // a breaks its list; b closes cleanly first, a last.
        a.set_bufs_head(0);
        b.close();
        assert_eq!(env.nm.stats().buf_used, base.buf_used + 16 + 16 + 64);
        a.close();
        assert_eq!(env.nm.stats(), base);
    }
}

/// fuzz `sequence`: REGISTER of a monitor of an idle NIC fails (EINVAL: the
/// monitored port is not in netmap mode), but the lookup of the parent had
/// made the NIC's adapter, here on the private region of a VALE port
/// (`nr_mem_id`); nothing destroyed it, so the region outlived its last
/// user. The same for PORT_HDR_GET of an idle NIC.
#[test]
fn failed_lookups_of_an_idle_nic_leave_no_adapter_behind() {
    use netmap_core::host::{HostNetif, HostNetifProvider};
    let env = Env::with_params(small_params());
    let nic = HostNetif::new("eth0", 2, 16);
    env.nm
        .set_netif_provider(Box::new(HostNetifProvider::new(vec![nic])))
        .unwrap();
    let base = env.nm.stats();
    let v = env.port_with(
        "vale0:b",
        NmreqRegister {
            nr_mode: NR_REG_ALL_NIC,
            nr_tx_slots: 8,
            nr_rx_slots: 8,
            ..NmreqRegister::zeroed()
        },
    );
    let np = env.open();
    for flags in [NR_MONITOR_TX, NR_MONITOR_RX, NR_ZCOPY_MON] {
        let reg = NmreqRegister {
            nr_mode: NR_REG_ALL_NIC,
            nr_mem_id: v.reg.nr_mem_id,
            nr_flags: flags,
            ..NmreqRegister::zeroed()
        };
        assert_eq!(
            env.register_with(&np, "eth0", reg).unwrap_err(),
            netmap_core::Errno::EINVAL
        );
    }
    let mut h = NmreqPortHdr::zeroed();
    env.ctrl(&np, NETMAP_REQ_PORT_HDR_GET, "eth0", Some(&mut h))
        .unwrap();
    assert_eq!(h.nr_hdr_len, 0);
    env.nm.release(np);
    v.close();
    assert_eq!(env.nm.stats(), base);
    // Nothing keeps a region (the global one included) once all is closed.
    let Env { p, nm } = env;
    drop(nm);
    assert_eq!(p.clusters_live(), (0, 0));
}
