//! Small helpers shared by the tasks.

use std::path::PathBuf;

pub type Result<T = ()> = std::result::Result<T, String>;

/// The workspace root (two levels above this crate).
pub fn root() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    d.parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or(d)
}
