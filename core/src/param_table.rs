//! The module parameters of spec §12 as the OS edges number them: one
//! table of names shared by every OS (Linux module parameters, FreeBSD
//! `dev.netmap.*` sysctls), the conversion of their values to the core's
//! [`Params`], and the values the core owns (`*_curr_*`).

#![deny(unsafe_code)]

use crate::mem::{MemParams, PoolParams};
use crate::{Errno, Params};
use core::sync::atomic::Ordering;

/// Parameter names in id order: the order of the OS glue's tables
/// (Linux `NM_PARAMS`, FreeBSD `NM_SYSCTLS`), which each checks at load.
pub const NAMES: [&str; 37] = [
    "verbose",
    "no_timestamp",
    "no_pendintr",
    "txsync_retry",
    "fwd",
    "admode",
    "generic_hwcsum",
    "generic_mit",
    "generic_ringsize",
    "generic_rings",
    "generic_txqdisc",
    "ptnet_vnet_hdr",
    "if_size",
    "if_num",
    "ring_size",
    "ring_num",
    "buf_size",
    "buf_num",
    "if_curr_size",
    "if_curr_num",
    "ring_curr_size",
    "ring_curr_num",
    "buf_curr_size",
    "buf_curr_num",
    "priv_if_size",
    "priv_if_num",
    "priv_ring_size",
    "priv_ring_num",
    "priv_buf_size",
    "priv_buf_num",
    "bridge_batch",
    "max_bridges",
    "default_pipes",
    // Caps against absurd requests (not in the reference; settable at
    // insmod, read-only afterwards).
    "max_rings",
    "max_slots",
    "max_extra_bufs",
    // Budget of all of netmap's memory in MiB (0: half of the RAM); reads
    // give the budget in effect.
    "max_mem_mb",
];

/// Checks that the glue numbers the parameters as [`NAMES`] does:
/// `count` entries, `name_of(i)` the name of entry `i` (`None` past the
/// end of the glue's table).
pub fn check_names<'a>(
    count: usize,
    name_of: impl Fn(u32) -> Option<&'a [u8]>,
) -> Result<(), Errno> {
    if count != NAMES.len() {
        return Err(Errno::EINVAL);
    }
    for (i, name) in NAMES.iter().enumerate() {
        if name_of(i as u32) != Some(name.as_bytes()) {
            return Err(Errno::EINVAL);
        }
    }
    Ok(())
}

/// A parameter value as the core's unsigned type (negative → 0; the core
/// range-checks allocator sizes itself).
fn unsigned(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// The value of parameter `name` in the glue's array (0 if absent).
fn val(vals: &[i32], name: &str) -> u32 {
    let i = NAMES.iter().position(|n| *n == name);
    unsigned(i.and_then(|i| vals.get(i).copied()).unwrap_or(0))
}

fn pools(vals: &[i32], prefix: &str) -> MemParams {
    let pool = |kind: &str| {
        let mut size = alloc::string::String::new();
        let mut num = alloc::string::String::new();
        size.push_str(prefix);
        size.push_str(kind);
        size.push_str("_size");
        num.push_str(prefix);
        num.push_str(kind);
        num.push_str("_num");
        PoolParams {
            objsize: val(vals, &size),
            objtotal: val(vals, &num),
        }
    };
    MemParams {
        if_pool: pool("if"),
        ring_pool: pool("ring"),
        buf_pool: pool("buf"),
    }
}

/// The core's parameters from the glue's values (indexed like [`NAMES`]).
pub fn to_core(vals: &[i32]) -> Params {
    let p = Params {
        global: pools(vals, ""),
        private: pools(vals, "priv_"),
        max_bridges: val(vals, "max_bridges"),
        max_rings: val(vals, "max_rings"),
        max_slots: val(vals, "max_slots"),
        max_extra_bufs: val(vals, "max_extra_bufs"),
        max_mem: u64::from(val(vals, "max_mem_mb")) << 20,
        ..Params::default()
    };
    for (i, &v) in vals.iter().enumerate() {
        set(&p, i, v);
    }
    p
}

/// Stores a run-time write of parameter `i` into the core's atomics; false
/// if the core does not follow it at run time (allocator sizes are read
/// when the module loads; the value then only lives in the glue).
pub fn set(p: &Params, i: usize, v: i32) -> bool {
    let slot = match NAMES.get(i).copied() {
        Some("verbose") => &p.verbose,
        Some("no_timestamp") => &p.no_timestamp,
        Some("fwd") => &p.fwd,
        Some("bridge_batch") => &p.bridge_batch,
        _ => return false,
    };
    slot.store(unsigned(v), Ordering::Relaxed);
    true
}

/// The value the core owns for parameter `i`: the `*_curr_*` parameters
/// report the global region's actual pools (sizes rounded up to 64 bytes,
/// counts to whole clusters, §5.5), `max_mem_mb` the budget in effect
/// (derived from the RAM when 0 was given).
pub fn get<P: crate::Platform>(nm: &crate::Netmap<P>, i: usize) -> Option<i32> {
    get_from(&nm.global_mem().pool_geometry(), nm.budget().limit(), i)
}

fn get_from(pools: &[PoolParams; 3], budget: u64, i: usize) -> Option<i32> {
    let [ifp, ringp, bufp] = pools;
    let v = match NAMES.get(i).copied()? {
        "max_mem_mb" => return Some(i32::try_from(budget >> 20).unwrap_or(i32::MAX)),
        "if_curr_size" => ifp.objsize,
        "if_curr_num" => ifp.objtotal,
        "ring_curr_size" => ringp.objsize,
        "ring_curr_num" => ringp.objtotal,
        "buf_curr_size" => bufp.objsize,
        "buf_curr_num" => bufp.objtotal,
        _ => return None,
    };
    i32::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_checked_in_order() {
        for (i, n) in NAMES.iter().enumerate() {
            assert!(!NAMES[..i].contains(n), "{n} twice");
        }
        let good = |i: u32| NAMES.get(i as usize).map(|n| n.as_bytes());
        assert_eq!(check_names(NAMES.len(), good), Ok(()));
        assert_eq!(check_names(NAMES.len() - 1, good), Err(Errno::EINVAL));
        let swapped = |i: u32| match i {
            0 => Some(NAMES[1].as_bytes()),
            1 => Some(NAMES[0].as_bytes()),
            _ => good(i),
        };
        assert_eq!(check_names(NAMES.len(), swapped), Err(Errno::EINVAL));
    }

    #[test]
    fn values_reach_the_core_and_curr_values_come_from_it() {
        let mut vals = [0i32; NAMES.len()];
        let at = |n: &str| NAMES.iter().position(|x| *x == n).unwrap();
        vals[at("buf_size")] = 4096;
        vals[at("buf_num")] = 1000;
        vals[at("fwd")] = 1;
        vals[at("max_rings")] = -5;
        let p = to_core(&vals);
        assert_eq!(p.global.buf_pool.objsize, 4096);
        assert_eq!(p.global.buf_pool.objtotal, 1000);
        assert_eq!(p.fwd.load(Ordering::Relaxed), 1);
        assert_eq!(p.max_rings, 0, "negative values become 0");
        assert!(set(&p, at("verbose"), 3));
        assert_eq!(p.verbose.load(Ordering::Relaxed), 3);
        assert!(
            !set(&p, at("buf_size"), 1),
            "allocator sizes are load-time only"
        );
        let pools = [
            PoolParams {
                objsize: 1,
                objtotal: 2,
            },
            PoolParams {
                objsize: 3,
                objtotal: 4,
            },
            PoolParams {
                objsize: 5,
                objtotal: 6,
            },
        ];
        assert_eq!(get_from(&pools, 0, at("ring_curr_num")), Some(4));
        assert_eq!(get_from(&pools, 0, at("buf_curr_size")), Some(5));
        assert_eq!(get_from(&pools, 0, at("buf_size")), None);
        assert_eq!(get_from(&pools, 3 << 20, at("max_mem_mb")), Some(3));
        vals[at("max_mem_mb")] = 7;
        assert_eq!(to_core(&vals).max_mem, 7 << 20);
    }
}
