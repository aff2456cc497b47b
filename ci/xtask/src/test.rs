//! `cargo xtask test` (not written yet).
use crate::util::Result;

pub fn run() -> Result {
    Err("not implemented yet".into())
}
