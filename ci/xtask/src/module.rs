//! `cargo xtask module`: build the Linux kernel module `netmap.ko`.
//!
//! Two kernel lines ([`Line`]): Debian 12's 6.1 (the machine's own
//! `linux-headers-amd64`) and Debian 13's 6.12 (in a cached trixie chroot,
//! see `trixie.rs`).
//!
//! Steps (see /work/shared/KERNEL-BUILD.md for why each is needed):
//! 1. find the kernel version from what `linux-headers-amd64` depends on;
//! 2. vendor the Rust dependencies of `os/linux/rust` (host cargo) and merge
//!    them with the kernel toolchain's vendored library sources, so the
//!    kernel build runs offline from a private CARGO_HOME;
//! 3. build the staticlib with the kernel toolchain (`/usr/bin/cargo`,
//!    `/usr/bin/rustc` from rustc-web, `RUSTC_BOOTSTRAP=1`,
//!    `-Zbuild-std=core,alloc`, target `x86_64-unknown-none`) and the flags
//!    the kernel's configuration asks for (`make rustflags` of
//!    os/linux/Makefile, which the DKMS build uses too);
//! 4. extract the crate's own object (dropping `compiler_builtins`) and
//!    check it: no SIMD registers, only relocations the module loader
//!    accepts, no stack frame above CONFIG_FRAME_WARN, every undefined
//!    symbol provided by glue.c or exported by the kernel;
//! 5. run Kbuild (os/linux/Makefile) in `target/kernel/$KVER/module` (a
//!    copy of `os/linux` plus the shipped object; for 6.12 inside the
//!    chroot) and return the path of `netmap.ko`.

use crate::util::{Result, output, output_log, root, run_cmd};
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The kernel toolchain (Debian rustc-web / cargo-web / rust-web-src).
const KRUSTC: &str = "/usr/bin/rustc";
pub(crate) const KCARGO: &str = "/usr/bin/cargo";
const KLIBSRC: &str = "/usr/lib/rustlib/src/rust/library";
const KTARGET: &str = "x86_64-unknown-none";

/// Relocation types the x86_64 module loader handles.
const ALLOWED_RELOCS: &[&str] = &[
    "R_X86_64_64",
    "R_X86_64_32",
    "R_X86_64_32S",
    "R_X86_64_PC32",
    "R_X86_64_PLT32",
];

/// CONFIG_FRAME_WARN of the Debian kernel: the biggest stack frame allowed.
const MAX_FRAME: u64 = 2048;

/// A kernel line the module is built and tested for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Line {
    /// Debian 12 (bookworm): the machine's own `linux-headers-amd64`.
    #[default]
    #[value(name = "6.1")]
    Bookworm,
    /// Debian 13 (trixie), in a cached chroot (`trixie.rs`).
    #[value(name = "6.12")]
    Trixie,
}

impl Line {
    /// The kernel of this line (for 6.12: its chroot made or updated).
    pub fn kernel(self) -> Result<Kernel> {
        match self {
            Line::Bookworm => Kernel::discover(),
            Line::Trixie => crate::trixie::kernel(),
        }
    }
}

/// Builds the module for Debian 12's kernel and returns `netmap.ko`'s path.
pub fn run() -> Result<PathBuf> {
    build(&Kernel::discover()?)
}

/// Builds the module for `k` and returns the path of `netmap.ko`.
pub fn build(k: &Kernel) -> Result<PathBuf> {
    let t0 = Instant::now();
    let obj = build_rust_object(Some(k))?;
    let t_rust = t0.elapsed();
    check_object(&obj, k)?;
    let ko = kbuild(k, &obj)?;
    eprintln!(
        "module: {} (kernel {}; rust {:.1} s, total {:.1} s)",
        ko.display(),
        k.version,
        t_rust.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    Ok(ko)
}

/// True if the kernel toolchain (rustc-web + rust-web-src) is installed.
pub fn kernel_toolchain_present() -> bool {
    Path::new(KRUSTC).exists()
        && Path::new(KCARGO).exists()
        && Path::new(KLIBSRC).join("vendor").is_dir()
}

/// `cargo check` of netmap-core and netmap-uapi as `no_std` for the kernel
/// target with the kernel toolchain (through the kernel crate, which
/// depends on both with `default-features = false`).
pub fn check_core_no_std() -> Result {
    if !kernel_toolchain_present() {
        return Err("kernel toolchain (rustc-web, cargo-web, rust-web-src) not installed".into());
    }
    build_rust_object(None).map(|_| ())
}

/// Lints of the kernel crate (`os/linux/rust`, outside the workspace):
/// `cargo fmt --check` and `cargo clippy -D warnings` with the host
/// toolchain, checking for x86_64-unknown-linux-gnu (the kernel toolchain has
/// no clippy; the crate is `no_std`, so the check is the same code).
pub fn lint_kernel_crate() -> Result {
    lint_crate("os/linux/rust/Cargo.toml", &kdir().join("clippy"))
}

/// `cargo fmt --check` and host clippy of one kernel crate (see
/// [`lint_kernel_crate`]).
pub fn lint_crate(manifest: &str, target_dir: &Path) -> Result {
    let manifest = root().join(manifest);
    run_cmd(
        crate::util::cargo()
            .args(["fmt", "--check", "--manifest-path"])
            .arg(&manifest),
    )?;
    run_cmd(
        crate::util::cargo()
            .args([
                "clippy",
                "--quiet",
                "--target",
                "x86_64-unknown-linux-gnu",
                "--manifest-path",
            ])
            .arg(&manifest)
            .args(["--", "-D", "warnings"])
            .env("CARGO_TARGET_DIR", target_dir),
    )
}

/// The kernel the module is built for.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// e.g. `6.1.0-56-amd64`.
    pub version: String,
    /// `/usr/src/linux-headers-$version` under [`Kernel::sysroot`].
    pub headers: PathBuf,
    /// The system the kernel's files are in: `/`, or the trixie chroot.
    pub sysroot: PathBuf,
    /// Kbuild must run inside `sysroot` (chroot): its host programs and
    /// compiler are that system's.
    pub chroot: bool,
}

impl Kernel {
    /// The version `linux-headers-amd64` depends on (never `uname -r`: the
    /// machine's own kernel is unrelated to the guest's).
    pub fn discover() -> Result<Kernel> {
        let out = output(
            Command::new("dpkg-query").args(["-W", "-f", "${Depends}", "linux-headers-amd64"]),
        )
        .or_else(|_| output(Command::new("apt-cache").args(["depends", "linux-headers-amd64"])))
        .map_err(|e| format!("cannot find the kernel version (is linux-headers-amd64 installed? `cargo xtask setup`): {e}"))?;
        let version = out
            .split(|c: char| c.is_whitespace() || c == ',')
            .find_map(|w| w.strip_prefix("linux-headers-"))
            .filter(|v| !v.is_empty() && v.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .ok_or_else(|| format!("linux-headers-amd64 depends on no linux-headers-*: {out:?}"))?
            .to_string();
        let headers = PathBuf::from(format!("/usr/src/linux-headers-{version}"));
        if !headers.join("Makefile").exists() {
            return Err(format!(
                "{} missing: install linux-headers-{version}",
                headers.display()
            ));
        }
        Ok(Kernel {
            version,
            headers,
            sysroot: PathBuf::from("/"),
            chroot: false,
        })
    }

    /// The matching kernel image (for the guest).
    pub fn image(&self) -> PathBuf {
        self.sysroot.join(format!("boot/vmlinuz-{}", self.version))
    }

    /// The matching module tree (NIC modules for the guest).
    pub fn modules_dir(&self) -> PathBuf {
        self.sysroot.join(format!("lib/modules/{}", self.version))
    }
}

/// `target/kernel`: everything the kernel build writes.
pub fn kdir() -> PathBuf {
    root().join("target").join("kernel")
}

/// The directory of one kernel's build: `target/kernel/$KVER`.
fn kernel_build_dir(k: &Kernel) -> PathBuf {
    kdir().join(&k.version)
}

/// The Rust flags `k`'s configuration asks for, from os/linux/Makefile
/// (`make rustflags`): one list for this build and the DKMS build.
fn rustflags(k: &Kernel) -> Result<String> {
    let flags = output(
        Command::new("make")
            .args(["-s", "--no-print-directory", "-C"])
            .arg(root().join("os/linux"))
            .arg(format!("KDIR={}", k.headers.display()))
            .arg("rustflags")
            .env_remove("MAKEFLAGS"),
    )?;
    let flags = flags.trim().to_string();
    if !k.headers.join("include/config/auto.conf").exists() || !flags.contains("-Zplt") {
        return Err(format!(
            "no kernel configuration in {}/include/config/auto.conf (flags: {flags:?})",
            k.headers.display()
        ));
    }
    Ok(flags)
}

/// A `no_std` staticlib crate of an OS module, built for the kernel target
/// with the kernel toolchain (Linux: `os/linux/rust`, FreeBSD:
/// `os/freebsd/rust`).
pub struct KernelCrate {
    /// Manifest, relative to the workspace root.
    pub manifest: &'static str,
    /// The library's name (`netmap_linux`): the archive member's prefix.
    pub lib: &'static str,
    /// The offline sources' directory (vendor dir, CARGO_HOME).
    pub dir: PathBuf,
    /// Where the build writes its target dir and the extracted object
    /// (Linux: one per kernel).
    pub out: PathBuf,
    /// RUSTFLAGS for the kernel's code model and ABI.
    pub rustflags: String,
}

/// The Linux module's Rust crate, built for `k` with the flags its
/// configuration asks for; with `None` (only checked), with Debian 12's.
fn linux_crate(k: Option<&Kernel>) -> Result<KernelCrate> {
    let (rustflags, out) = match k {
        Some(k) => (rustflags(k)?, kernel_build_dir(k)),
        None => (rustflags(&Kernel::discover()?)?, kdir()),
    };
    Ok(KernelCrate {
        manifest: "os/linux/rust/Cargo.toml",
        lib: "netmap_linux",
        dir: kdir(),
        out,
        rustflags,
    })
}

/// Builds the Linux kernel staticlib for `k` (with `None`, only checks it)
/// and returns the extracted object `target/kernel/$KVER/rust_lib.o`.
fn build_rust_object(k: Option<&Kernel>) -> Result<PathBuf> {
    build_crate_object(&linux_crate(k)?, k.is_none())
}

/// Builds (or checks) a kernel staticlib and returns its own object,
/// extracted as `rust_lib.o` in the crate's output directory.
pub fn build_crate_object(kc: &KernelCrate, check_only: bool) -> Result<PathBuf> {
    if !kernel_toolchain_present() {
        return Err(format!(
            "kernel toolchain missing ({KRUSTC}, {KCARGO}, {KLIBSRC}/vendor): `cargo xtask setup`"
        ));
    }
    let kd = &kc.dir;
    fs::create_dir_all(kd).map_err(|e| format!("{}: {e}", kd.display()))?;
    let manifest = root().join(kc.manifest);
    let cargo_home = prepare_offline_sources(kd, &manifest)?;

    let out = &kc.out;
    let mut cmd = Command::new(KCARGO);
    cmd.arg(if check_only { "check" } else { "build" })
        .args(["--release", "-Zbuild-std=core,alloc", "--target", KTARGET])
        .arg("--manifest-path")
        .arg(&manifest);
    kernel_env(&mut cmd, &cargo_home, &out.join("target"), &kc.rustflags);
    run_cmd(&mut cmd)?;
    if check_only {
        return Ok(PathBuf::new());
    }

    // The archive holds the crate's object plus compiler_builtins'; keep
    // only ours (the kernel provides memcpy & co.).
    let lib = out
        .join("target")
        .join(KTARGET)
        .join(format!("release/lib{}.a", kc.lib));
    let members = output(Command::new("ar").arg("t").arg(&lib))?;
    let prefix = format!("{}-", kc.lib);
    let ours: Vec<&str> = members
        .lines()
        .filter(|m| m.starts_with(&prefix) && m.ends_with(".o"))
        .collect();
    let [member] = ours.as_slice() else {
        return Err(format!(
            "expected one {} object in {}, found {ours:?}",
            kc.lib,
            lib.display()
        ));
    };
    let bytes = Command::new("ar")
        .arg("p")
        .arg(&lib)
        .arg(member)
        .output()
        .map_err(|e| format!("ar: {e}"))?;
    if !bytes.status.success() || bytes.stdout.is_empty() {
        return Err(format!("ar p {} {member} failed", lib.display()));
    }
    let obj = out.join("rust_lib.o");
    write_if_changed(&obj, &bytes.stdout)?;
    Ok(obj)
}

/// Environment for the kernel toolchain: private CARGO_HOME and target dir,
/// nothing inherited from the host toolchain's cargo.
pub(crate) fn kernel_env(cmd: &mut Command, cargo_home: &Path, target_dir: &Path, rustflags: &str) {
    for v in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTDOCFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTUP_TOOLCHAIN",
        "CARGO",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("CARGO_HOME", cargo_home)
        .env("CARGO_TARGET_DIR", target_dir)
        .env("RUSTC", KRUSTC)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTFLAGS", rustflags)
        .env("CARGO_TERM_COLOR", "never");
}

/// Vendors the kernel crate's dependencies with the host cargo (network
/// only if they are not cached yet) and merges them with the toolchain's
/// vendored library sources into one directory source; writes a CARGO_HOME
/// whose config replaces crates.io by it and forces offline mode.
pub(crate) fn prepare_offline_sources(kd: &Path, manifest: &Path) -> Result<PathBuf> {
    let deps = kd.join("vendor-deps");
    let host_cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_cmd(
        Command::new(&host_cargo)
            .args(["vendor", "--quiet", "--versioned-dirs", "--manifest-path"])
            .arg(manifest)
            .arg(&deps)
            .stdout(std::process::Stdio::null()),
    )?;

    let merged = kd.join("vendor");
    if merged.exists() {
        fs::remove_dir_all(&merged).map_err(|e| format!("{}: {e}", merged.display()))?;
    }
    fs::create_dir_all(&merged).map_err(|e| format!("{}: {e}", merged.display()))?;
    let mut seen = HashSet::new();
    for dir in [Path::new(KLIBSRC).join("vendor"), deps] {
        let rd = fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for ent in rd.flatten() {
            let name = ent.file_name();
            if seen.insert(name.clone()) {
                std::os::unix::fs::symlink(ent.path(), merged.join(&name))
                    .map_err(|e| format!("symlink {}: {e}", ent.path().display()))?;
            }
        }
    }

    let home = kd.join("cargo-home");
    fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
    let config = format!(
        "# Written by `cargo xtask module`: offline kernel build.\n\
         [source.crates-io]\nreplace-with = \"vendored\"\n\
         [source.vendored]\ndirectory = \"{}\"\n\
         [net]\noffline = true\n",
        merged.display()
    );
    write_if_changed(&home.join("config.toml"), config.as_bytes())?;
    Ok(home)
}

/// The object checks of KERNEL-BUILD.md, plus frame sizes and symbols.
fn check_object(obj: &Path, k: &Kernel) -> Result {
    let code = check_code(obj, ALLOWED_RELOCS, false)?;
    let mut problems = code.problems;

    // 4. Undefined symbols: glue.c's or exported by the kernel.
    let symvers = fs::read_to_string(k.headers.join("Module.symvers")).unwrap_or_default();
    let exported: HashSet<&str> = symvers
        .lines()
        .filter_map(|l| l.split('\t').nth(1))
        .collect();
    let glue = fs::read_to_string(root().join("os/linux/glue.c")).unwrap_or_default();
    for sym in undefined_symbols(obj)? {
        let ok = if sym.starts_with("nm_glue_") {
            glue.contains(&format!("{sym}("))
        } else {
            exported.is_empty() || exported.contains(sym.as_str())
        };
        if !ok {
            problems.push(format!(
                "undefined symbol {sym} is not provided by glue.c or the kernel{}",
                helper_hint(&sym)
            ));
        }
    }

    if problems.is_empty() {
        eprintln!(
            "module: object check OK ({} functions, largest frame {})",
            code.functions, code.largest_frame
        );
        Ok(())
    } else {
        Err(format!(
            "kernel object check failed for {}:\n  {}",
            obj.display(),
            problems.join("\n  ")
        ))
    }
}

/// What [`check_code`] found in an object's code.
pub struct CodeCheck {
    /// Everything wrong (empty: fine).
    pub problems: Vec<String>,
    /// Number of functions in the disassembly.
    pub functions: usize,
    /// The largest stack frame, "N bytes in f".
    pub largest_frame: String,
}

/// The checks on kernel code that every OS shares: no SIMD register (the
/// kernel does not save FPU state for us), with `no_x87` no x87
/// instruction either, no stack frame above [`MAX_FRAME`], and only the
/// relocation types in `allowed`.
pub fn check_code(obj: &Path, allowed: &[&str], no_x87: bool) -> Result<CodeCheck> {
    let mut problems = Vec::new();
    let dis = output(
        Command::new("objdump")
            .args(["-d", "--demangle", "--no-show-raw-insn"])
            .arg(obj),
    )?;
    let mut func = String::new();
    let mut fpu = 0;
    let mut frames: Vec<(u64, String)> = Vec::new();
    for line in dis.lines() {
        if let Some(name) = line.strip_suffix(">:").and_then(|l| l.split_once(" <")) {
            func = name.1.to_string();
            continue;
        }
        if uses_fpu(line, no_x87) {
            fpu += 1;
            if fpu <= 5 {
                problems.push(format!("FPU/SIMD instruction in {func}: {}", line.trim()));
            }
        }
        if let Some(n) = frame_size(line) {
            frames.push((n, func.clone()));
        }
    }
    if fpu > 5 {
        problems.push(format!(
            "... {fpu} instructions using FPU/SIMD registers in total"
        ));
    }
    frames.sort();
    for (n, f) in frames.iter().rev().take_while(|(n, _)| *n > MAX_FRAME) {
        problems.push(format!("stack frame of {n} bytes (> {MAX_FRAME}) in {f}"));
    }

    let relocs = output(Command::new("readelf").args(["-r", "-W"]).arg(obj))?;
    let mut bad: Vec<String> = relocs
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|t| t.starts_with("R_X86_64_") && !allowed.contains(t))
        .map(str::to_string)
        .collect();
    bad.sort();
    bad.dedup();
    for t in bad {
        problems.push(format!(
            "relocation {t} (the module loader accepts only {allowed:?})"
        ));
    }
    Ok(CodeCheck {
        problems,
        functions: dis.lines().filter(|l| l.ends_with(">:")).count(),
        largest_frame: frames
            .last()
            .map(|(n, f)| format!("{n} bytes in {f}"))
            .unwrap_or_default(),
    })
}

/// Whether a disassembly line uses SIMD registers or (with `x87`) is an
/// x87 instruction (mnemonics `f...`; no integer mnemonic starts so).
fn uses_fpu(line: &str, x87: bool) -> bool {
    if ["%xmm", "%ymm", "%zmm", "%mm", "%st"]
        .iter()
        .any(|r| line.contains(r))
    {
        return true;
    }
    // "  addr:\tmnemonic operands"
    let mnemonic = line
        .split_once(":\t")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("");
    x87 && mnemonic.starts_with('f') && mnemonic != "fs"
}

/// The frame a `sub $0x...,%rsp` line allocates.
fn frame_size(line: &str) -> Option<u64> {
    line.split("sub    $0x")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(",%rsp"))
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
}

/// The undefined symbols of an object (`nm -u`).
pub fn undefined_symbols(obj: &Path) -> Result<Vec<String>> {
    let undef = output(Command::new("nm").args(["-u", "--format=posix"]).arg(obj))?;
    Ok(undef
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// A hint for compiler helpers the kernel does not provide.
pub fn helper_hint(sym: &str) -> &'static str {
    if sym.starts_with("__") && (sym.contains("ti3") || sym.contains("sf") || sym.contains("df")) {
        " (128-bit arithmetic or floating point in kernel code?)"
    } else {
        ""
    }
}

/// Runs Kbuild (os/linux/Makefile) in `target/kernel/$KVER/module`, inside
/// the kernel's chroot if it has one, and returns netmap.ko's path.
fn kbuild(k: &Kernel, obj: &Path) -> Result<PathBuf> {
    let src = root().join("os/linux");
    let md = kernel_build_dir(k).join("module");
    fs::create_dir_all(&md).map_err(|e| format!("{}: {e}", md.display()))?;
    for f in ["glue.c", "netmap_native.h", "Kbuild", "Makefile"] {
        let data = fs::read(src.join(f)).map_err(|e| format!("{}: {e}", src.join(f).display()))?;
        write_if_changed(&md.join(f), &data)?;
    }
    let data = fs::read(obj).map_err(|e| format!("{}: {e}", obj.display()))?;
    write_if_changed(&md.join("rust_lib.o_shipped"), &data)?;

    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = format!("-j{jobs}");
    let mut cmd = if k.chroot {
        let headers = Path::new("/").join(
            k.headers
                .strip_prefix(&k.sysroot)
                .map_err(|_| format!("{} is not in the chroot", k.headers.display()))?,
        );
        let kdir_arg = format!("KDIR={}", headers.display());
        crate::trixie::command(
            &k.sysroot,
            &[(md.as_path(), "/build")],
            &["make", "-C", "/build", &kdir_arg, &jobs, "modules"],
        )
    } else {
        let mut c = Command::new("make");
        c.arg("-C")
            .arg(&md)
            .arg(format!("KDIR={}", k.headers.display()))
            .args([&jobs, "modules"]);
        c
    };
    let (status, log) = output_log(cmd.env_remove("MAKEFLAGS").env_remove("CARGO_MAKEFLAGS"))?;
    eprint!("{log}");
    if !status.success() {
        return Err(format!("Kbuild for {} failed ({status})", k.version));
    }
    // objtool's complaints are real bugs on the kernels it checks (e.g. a
    // function called through a pointer without ENDBR faults on IBT
    // hardware), and modpost's mean a module that will not load.
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("objtool:") || l.contains("WARNING: modpost:"))
        .collect();
    if !warnings.is_empty() {
        return Err(format!(
            "Kbuild for {} warned ({} lines), first: {}",
            k.version,
            warnings.len(),
            warnings[0]
        ));
    }
    let ko = md.join("netmap.ko");
    if !ko.exists() {
        return Err(format!("Kbuild produced no {}", ko.display()));
    }
    Ok(ko)
}

/// Writes `data` unless the file already has exactly that content (keeps
/// mtimes, so make does not rebuild needlessly).
pub(crate) fn write_if_changed(path: &Path, data: &[u8]) -> Result {
    if fs::read(path).is_ok_and(|old| old == data) {
        return Ok(());
    }
    fs::write(path, data).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags follow the kernel's configuration, under either name of the
    /// mitigation options (os/linux/Makefile, read by `make rustflags`).
    #[test]
    fn rustflags_follow_the_kernel_config() {
        let dir = std::env::temp_dir().join(format!("nm-rustflags-{}", std::process::id()));
        let conf = dir.join("include/config");
        fs::create_dir_all(&conf).unwrap();
        let flags = |config: &str| {
            fs::write(conf.join("auto.conf"), config).unwrap();
            let k = Kernel {
                version: "test".into(),
                headers: dir.clone(),
                sysroot: PathBuf::from("/"),
                chroot: false,
            };
            rustflags(&k).unwrap()
        };
        let old = flags("CONFIG_RETPOLINE=y\nCONFIG_RETHUNK=y\n");
        assert_eq!(
            old,
            "-Crelocation-model=static -Zplt=yes -Zretpoline-external-thunk \
             -Zfunction-return=thunk-extern"
        );
        let new = flags(
            "CONFIG_MITIGATION_RETPOLINE=y\nCONFIG_MITIGATION_RETHUNK=y\n\
             CONFIG_X86_KERNEL_IBT=y\nCONFIG_CALL_PADDING=y\nCONFIG_FUNCTION_PADDING_BYTES=16\n",
        );
        assert_eq!(
            new,
            "-Crelocation-model=static -Zplt=yes -Zretpoline-external-thunk \
             -Zfunction-return=thunk-extern -Zcf-protection=branch -Cjump-tables=no \
             -Zpatchable-function-entry=16,16"
        );
        assert_eq!(flags(""), "-Crelocation-model=static -Zplt=yes");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn disassembly_checks() {
        assert_eq!(frame_size("  1234:\tsub    $0x818,%rsp"), Some(0x818));
        assert_eq!(frame_size("  1234:\tsub    $0x8,%rax"), None);
        assert!(uses_fpu("  10:\tmovaps %xmm0,(%rsp)", false));
        assert!(uses_fpu("  10:\tfldz", true));
        assert!(!uses_fpu("  10:\tfldz", false));
        assert!(uses_fpu("  10:\tfstp   %st(0)", false));
        assert!(!uses_fpu("  10:\tmov    %fs:0x28,%rax", true));
        assert!(!uses_fpu("  10:\tlfence", true));
    }
}
