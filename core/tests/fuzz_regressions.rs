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
