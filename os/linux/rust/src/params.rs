//! Module parameters (spec section 12): the ids glue.c uses, checked against
//! glue.c's own table at init, and their conversion to the core's `Params`.

use crate::ffi;
use crate::nmcore::{Errno, Params};
use core::ffi::CStr;
use core::sync::atomic::Ordering;

/// Parameter names in glue.c's id order (its `NM_PARAMS` table).
pub const NAMES: [&str; 33] = [
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

/// The core's parameters from glue.c's values (indexed like [`NAMES`]).
pub fn to_core(vals: &[i32]) -> Params {
    let p = Params::default();
    for (i, &v) in vals.iter().enumerate() {
        set(&p, i, v);
    }
    p
}

/// Stores parameter `i` into the core's atomics; false if the core does not
/// keep it (the value then only lives in glue.c).
pub fn set(p: &Params, i: usize, v: i32) -> bool {
    let slot = match NAMES.get(i).copied() {
        Some("verbose") => &p.verbose,
        Some("no_timestamp") => &p.no_timestamp,
        Some("fwd") => &p.fwd,
        Some("bridge_batch") => &p.bridge_batch,
        _ => return false,
    };
    slot.store(v, Ordering::Relaxed);
    true
}

/// The value Rust owns for parameter `i` (actual allocator sizes), if any.
pub fn get(_p: &Params, _i: usize) -> Option<i32> {
    None
}
