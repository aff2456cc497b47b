//! `cargo xtask examples --target NAME`: the example programs (pkt-gen,
//! vale-ctl, bridge) built for another operating system, and what can be
//! checked of them here.
//!
//! One row of [`TARGETS`] per operating system: its Rust target, the linker
//! and the environment its build needs. Adding an OS is adding a row.

use crate::util::{Result, cargo, root, run_cmd};
use std::path::PathBuf;
use std::process::Command;

/// How to build the examples for one OS.
pub struct Target {
    /// The name given to `--target`.
    pub name: &'static str,
    /// The Rust target triple.
    pub triple: &'static str,
    /// The linker (`CARGO_TARGET_<TRIPLE>_LINKER`), if not the default.
    pub linker: Option<&'static str>,
    /// Executable suffix.
    pub exe: &'static str,
}

/// Every OS the examples are built for.
pub const TARGETS: &[Target] = &[
    Target {
        name: "linux",
        triple: "x86_64-unknown-linux-gnu",
        linker: None,
        exe: "",
    },
    Target {
        name: "windows",
        triple: "x86_64-pc-windows-gnu",
        linker: Some("x86_64-w64-mingw32-gcc"),
        exe: ".exe",
    },
];

/// The example programs.
pub const PROGRAMS: &[&str] = &["pkt-gen", "vale-ctl", "bridge"];

#[derive(clap::Args)]
pub struct Args {
    /// The operating system (a row of the table: linux, windows).
    #[arg(long, default_value = "linux")]
    target: String,
}

pub fn run(args: &Args) -> Result {
    let t = find(&args.target)?;
    for p in build(t)? {
        println!("{}", p.display());
    }
    Ok(())
}

fn find(name: &str) -> Result<&'static Target> {
    TARGETS.iter().find(|t| t.name == name).ok_or_else(|| {
        let names: Vec<_> = TARGETS.iter().map(|t| t.name).collect();
        format!("unknown target {name}: one of {}", names.join(", "))
    })
}

/// Builds the examples for `t`; returns the executables.
pub fn build(t: &Target) -> Result<Vec<PathBuf>> {
    if t.triple != "x86_64-unknown-linux-gnu" {
        let installed =
            crate::util::output(Command::new("rustup").args(["target", "list", "--installed"]))
                .unwrap_or_default();
        if !installed.lines().any(|l| l.trim() == t.triple) {
            run_cmd(Command::new("rustup").args(["target", "add", t.triple]))?;
        }
    }
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--target", t.triple]);
    for p in PROGRAMS {
        cmd.args(["-p", p]);
    }
    if let Some(l) = t.linker {
        let var = format!(
            "CARGO_TARGET_{}_LINKER",
            t.triple.to_uppercase().replace('-', "_")
        );
        cmd.env(var, l);
    }
    run_cmd(&mut cmd)?;
    let dir = root().join("target").join(t.triple).join("release");
    Ok(PROGRAMS
        .iter()
        .map(|p| dir.join(format!("{p}{}", t.exe)))
        .collect())
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
    let exes = build(find("windows")?)?;
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
