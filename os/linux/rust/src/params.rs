//! Module parameters (spec section 12): glue.c's table checked against the
//! core's ([`netmap_core::param_table`], which also converts the values).

use crate::ffi;
use core::ffi::CStr;
use netmap_core::Errno;
pub use netmap_core::param_table::{get, set, to_core};

/// Checks that glue.c numbers the parameters as the core's table does.
pub fn check_glue_table(count: usize) -> Result<(), Errno> {
    netmap_core::param_table::check_names(count, |i| {
        // SAFETY: no preconditions; returns NULL or a static C string.
        let p = unsafe { ffi::nm_glue_param_name(i) };
        // SAFETY: a non-NULL p is a NUL-terminated string literal of glue.c.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_bytes())
    })
}
