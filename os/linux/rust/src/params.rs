//! Module parameters (spec section 12): the ids glue.c uses, checked against
//! glue.c's own table at init, and their conversion to the core's `Params`.

use crate::ffi;
use core::ffi::CStr;
use core::sync::atomic::Ordering;
use netmap_core::mem::{MemParams, PoolParams};
use netmap_core::{Errno, Netmap, Params, Platform};

/// Parameter names in glue.c's id order (its `NM_PARAMS` table).
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

/// Checks that glue.c numbers the parameters as [`NAMES`] does.
pub fn check_glue_table(count: usize) -> Result<(), Errno> {
    if count != NAMES.len() {
        return Err(Errno::EINVAL);
    }
    for (i, name) in NAMES.iter().enumerate() {
        // SAFETY: no preconditions; returns NULL or a static C string.
        let p = unsafe { ffi::nm_glue_param_name(i as u32) };
        if p.is_null() {
            return Err(Errno::EINVAL);
        }
        // SAFETY: p is a NUL-terminated string literal of glue.c.
        let c = unsafe { CStr::from_ptr(p) };
        if c.to_bytes() != name.as_bytes() {
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

/// The value of parameter `name` in glue.c's array (its default if absent).
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

/// The core's parameters from glue.c's values (indexed like [`NAMES`]).
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
/// when the module loads; the value then only lives in glue.c).
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

/// The value Rust owns for parameter `i`: the `*_curr_*` parameters report
/// the global region's actual pools (sizes rounded up to 64 bytes, counts
/// to whole clusters, §5.5), `max_mem_mb` the budget in effect (derived
/// from the RAM when 0 was given).
pub fn get<P: Platform>(nm: &Netmap<P>, i: usize) -> Option<i32> {
    let [ifp, ringp, bufp] = nm.global_mem().pool_geometry();
    let v = match NAMES.get(i).copied()? {
        "max_mem_mb" => {
            return Some(i32::try_from(nm.budget().limit() >> 20).unwrap_or(i32::MAX));
        }
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
