//! `cargo xtask bench` (not written yet).
use crate::util::Result;

pub fn run(_what: &str) -> Result {
    Err("not implemented yet".into())
}
