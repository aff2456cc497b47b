//! Builds the C layout cross-check (tests/c/layout.c) for the integration test
//! `tests/c_layout.rs`, on hosted native builds only.
//!
//! The crate is also compiled for bare-metal kernel targets (`x86_64-unknown-none`
//! with `-Zbuild-std`): there, and whenever cross-compiling, this script does
//! nothing. The C object is passed to the linker of test targets only, never to the
//! library or to crates depending on it.

use std::env;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=tests/c/layout.c");
    println!("cargo::rustc-check-cfg=cfg(netmap_uapi_c_layout)");

    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target = env::var("TARGET").unwrap_or_default();
    let host = env::var("HOST").unwrap_or_default();
    if target_os.is_empty() || target_os == "none" || target != host {
        return;
    }

    let Ok(out_dir) = env::var("OUT_DIR") else {
        return;
    };
    let mut build = cc::Build::new();
    build
        .file("tests/c/layout.c")
        .cargo_metadata(false)
        .warnings(true)
        .extra_warnings(true);
    match build.try_compile("netmap_uapi_layout") {
        Ok(()) => {
            println!("cargo::rustc-link-arg-tests={out_dir}/libnetmap_uapi_layout.a");
            println!("cargo::rustc-cfg=netmap_uapi_c_layout");
        }
        // Not fatal for the library, but the cross-check test then fails loudly.
        Err(e) => println!("cargo::warning=C layout cross-check not built: {e}"),
    }
}
