//! `cargo xtask module` (not written yet).
use crate::util::Result;
use std::path::PathBuf;

/// Builds the module and returns the path of `netmap.ko`.
pub fn run() -> Result<PathBuf> {
    Err("not implemented yet".into())
}
