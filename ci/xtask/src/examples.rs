//! `cargo xtask examples --target OS`: pkt-gen, vale-ctl and bridge (and
//! with them `netmap_uapi::user`) built for another operating system and
//! checked as that system's executables.
//!
//! One row of [`TARGETS`] per OS: its Rust target, how to link for it on
//! this machine, and what proves that a file is an executable of that OS
//! with netmap's OS-specific calls compiled in. An OS adds a row and its
//! two functions in its own module.

use crate::util::{Result, cargo, root, run_cmd};
use std::path::PathBuf;

/// An example program (workspace package and binary of that name).
pub struct Program {
    pub name: &'static str,
    /// It maps a port's rings and polls them (vale-ctl only sends control
    /// requests).
    pub maps: bool,
    /// It syncs rings with NIOCTXSYNC/NIOCRXSYNC (bridge leaves that to
    /// poll()).
    pub syncs: bool,
}

pub const PROGRAMS: &[Program] = &[
    Program {
        name: "pkt-gen",
        maps: true,
        syncs: true,
    },
    Program {
        name: "vale-ctl",
        maps: false,
        syncs: false,
    },
    Program {
        name: "bridge",
        maps: true,
        syncs: false,
    },
];

/// An OS the examples are built for.
pub struct Target {
    /// What `--target` takes.
    pub name: &'static str,
    /// The Rust target triple (setup installs its standard library).
    pub triple: &'static str,
    /// The linker to use for `triple` on this machine (a program path).
    pub linker: fn() -> Result<PathBuf>,
    /// Checks one built program; returns a one-line description.
    pub check: fn(&std::path::Path, &Program) -> Result<String>,
}

/// Every OS `cargo xtask examples` builds for.
pub const TARGETS: &[Target] = &[Target {
    name: "freebsd",
    triple: "x86_64-unknown-freebsd",
    linker: crate::kld::user_linker,
    check: crate::kld::check_user_program,
}];

#[derive(clap::Args)]
pub struct Args {
    /// The OS to build for.
    #[arg(long, value_parser = target_names())]
    target: String,
}

fn target_names() -> Vec<&'static str> {
    TARGETS.iter().map(|t| t.name).collect()
}

pub fn cli(args: &Args) -> Result {
    for p in run(&args.target, Profile::Release)? {
        println!("{}", p.display());
    }
    Ok(())
}

/// Which cargo profile to build the examples with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// What `cargo xtask examples` hands out.
    Release,
    /// What the `freebsd` test stage checks (the same code and system
    /// calls, a third of the build time).
    Dev,
}

/// Builds the examples for the OS `name`, checks each and returns their
/// paths.
pub fn run(name: &str, profile: Profile) -> Result<Vec<PathBuf>> {
    let t = TARGETS
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| format!("unknown target {name:?} (known: {:?})", target_names()))?;
    let linker = (t.linker)()?;
    let var = format!(
        "CARGO_TARGET_{}_LINKER",
        t.triple.to_uppercase().replace('-', "_")
    );
    let mut cmd = cargo();
    cmd.args(["build", "--target", t.triple]);
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    for p in PROGRAMS {
        cmd.args(["-p", p.name]);
    }
    cmd.env(var, &linker);
    run_cmd(&mut cmd)?;
    let dir = root().join("target").join(t.triple).join(match profile {
        Profile::Release => "release",
        Profile::Dev => "debug",
    });
    let mut out = Vec::new();
    for p in PROGRAMS {
        let bin = dir.join(p.name);
        let what = (t.check)(&bin, p).map_err(|e| format!("{}: {e}", bin.display()))?;
        eprintln!("examples: {} {what}", bin.display());
        out.push(bin);
    }
    Ok(out)
}
