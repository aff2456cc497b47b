//! `cargo xtask examples --target NAME`: the example programs (pkt-gen,
//! vale-ctl, bridge), and with them `netmap_uapi::user`, built for an
//! operating system, and what can be checked of them here.
//!
//! One row of [`TARGETS`] per operating system: its Rust target, the linker
//! its build needs, and the check that proves a file is an executable of
//! that OS with netmap's OS-specific calls compiled in. Adding an OS is
//! adding a row (and its functions in its own module).

use crate::util::{Result, cargo, root, run_cmd};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The linker a target needs (`CARGO_TARGET_<TRIPLE>_LINKER`).
pub enum Linker {
    /// The toolchain's default.
    Default,
    /// A program on PATH.
    Program(&'static str),
    /// A program this task prepares (e.g. a wrapper script), made on demand.
    Made(fn() -> Result<PathBuf>),
}

/// How to build the examples for one OS.
pub struct Target {
    /// The name given to `--target`.
    pub name: &'static str,
    /// The Rust target triple.
    pub triple: &'static str,
    pub linker: Linker,
    /// Executable suffix.
    pub exe: &'static str,
    /// Checks one built program; returns a one-line description (`None`:
    /// the OS's stage checks the programs its own way).
    pub check: Option<fn(&Path, &Program) -> Result<String>>,
}

/// Every OS the examples are built for.
pub const TARGETS: &[Target] = &[
    Target {
        name: "linux",
        triple: "x86_64-unknown-linux-gnu",
        linker: Linker::Default,
        exe: "",
        check: None,
    },
    Target {
        name: "freebsd",
        triple: "x86_64-unknown-freebsd",
        linker: Linker::Made(crate::kld::user_linker),
        exe: "",
        check: Some(crate::kld::check_user_program),
    },
    Target {
        name: "windows",
        triple: "x86_64-pc-windows-gnu",
        linker: Linker::Program("x86_64-w64-mingw32-gcc"),
        exe: ".exe",
        check: None,
    },
];

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

/// The example programs.
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

#[derive(clap::Args)]
pub struct Args {
    /// The operating system (a row of the table: linux, freebsd, windows).
    #[arg(long, default_value = "linux")]
    target: String,
}

/// Which cargo profile to build the examples with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// What `cargo xtask examples` hands out.
    Release,
    /// What a test stage checks (the same code and system calls, a third
    /// of the build time).
    Dev,
}

pub fn run(args: &Args) -> Result {
    let t = find(&args.target)?;
    for p in build(t, Profile::Release)? {
        println!("{}", p.display());
    }
    Ok(())
}

pub fn find(name: &str) -> Result<&'static Target> {
    TARGETS.iter().find(|t| t.name == name).ok_or_else(|| {
        let names: Vec<_> = TARGETS.iter().map(|t| t.name).collect();
        format!("unknown target {name}: one of {}", names.join(", "))
    })
}

/// Builds the examples for `t`, runs the target's check on each, and
/// returns the executables.
pub fn build(t: &Target, profile: Profile) -> Result<Vec<PathBuf>> {
    if t.triple != "x86_64-unknown-linux-gnu" {
        let installed =
            crate::util::output(Command::new("rustup").args(["target", "list", "--installed"]))
                .unwrap_or_default();
        if !installed.lines().any(|l| l.trim() == t.triple) {
            run_cmd(Command::new("rustup").args(["target", "add", t.triple]))?;
        }
    }
    let mut cmd = cargo();
    cmd.args(["build", "--target", t.triple]);
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    for p in PROGRAMS {
        cmd.args(["-p", p.name]);
    }
    let linker = match &t.linker {
        Linker::Default => None,
        Linker::Program(l) => Some(PathBuf::from(l)),
        Linker::Made(make) => Some(make()?),
    };
    if let Some(l) = linker {
        let var = format!(
            "CARGO_TARGET_{}_LINKER",
            t.triple.to_uppercase().replace('-', "_")
        );
        cmd.env(var, l);
    }
    run_cmd(&mut cmd)?;
    let dir = root().join("target").join(t.triple).join(match profile {
        Profile::Release => "release",
        Profile::Dev => "debug",
    });
    let mut out = Vec::new();
    for p in PROGRAMS {
        let bin = dir.join(format!("{}{}", p.name, t.exe));
        if let Some(check) = t.check {
            let what = check(&bin, p).map_err(|e| format!("{}: {e}", bin.display()))?;
            eprintln!("examples: {} {what}", bin.display());
        }
        out.push(bin);
    }
    Ok(out)
}

/// A private wine prefix with the DLL wine 8 lacks (see
/// os/windows/tests/bcryptprimitives.c).
fn wine_prefix() -> Result<PathBuf> {
    let prefix = root().join("target/windows/wine");
    let sys32 = prefix.join("drive_c/windows/system32");
    if !sys32.is_dir() {
        let _ = Command::new("wine")
            .args(["wineboot", "--init"])
            .env("WINEPREFIX", &prefix)
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env_remove("DISPLAY")
            .stdin(std::process::Stdio::null())
            .output();
    }
    let dll = sys32.join("bcryptprimitives.dll");
    if !dll.exists() {
        run_cmd(
            Command::new("x86_64-w64-mingw32-gcc")
                .args(["-shared", "-O2", "-o"])
                .arg(&dll)
                .arg(root().join("os/windows/tests/bcryptprimitives.c"))
                .arg("-ladvapi32"),
        )?;
    }
    Ok(prefix)
}

/// Runs a Windows program under wine (a private prefix, no desktop).
fn wine(exe: &PathBuf, args: &[&str]) -> Result<(i32, String)> {
    let prefix = wine_prefix()?;
    let out = Command::new("wine")
        .arg(exe)
        .args(args)
        .env("WINEPREFIX", &prefix)
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
        .env_remove("DISPLAY")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("wine: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code().unwrap_or(-1), text))
}

/// The examples' part of the `windows` stage: each `.exe` starts under
/// wine (`--help`), and pkt-gen without a driver ends with a clear error.
pub fn windows_stage() -> Result {
    let exes = build(find("windows")?, Profile::Release)?;
    for exe in &exes {
        let (code, text) = wine(exe, &["--help"])?;
        if code != 0 || !text.contains("Usage") {
            return Err(format!(
                "{} --help under wine: exit {code}: {text}",
                exe.display()
            ));
        }
        println!("windows: {} --help under wine: exit 0", exe.display());
    }
    let (code, text) = wine(&exes[0], &["-i", "vale0:a", "-f", "tx"])?;
    let msg = text
        .lines()
        .find(|l| l.contains("driver"))
        .unwrap_or("")
        .trim();
    if code == 0 || !text.contains("netmap driver not installed") {
        return Err(format!(
            "pkt-gen -i vale0:a -f tx under wine (no driver): exit {code}, expected a non-zero exit and \"netmap driver not installed\": {text}"
        ));
    }
    println!("windows: pkt-gen -i vale0:a -f tx under wine: exit {code}: {msg}");
    Ok(())
}
