//! `cargo xtask sys`: build the Windows driver `netmap.sys` on Linux, and
//! the checks of the `windows` test stage.
//!
//! Steps (see os/windows/README.md and /work/shared/CROSS-BUILD.md):
//! 1. the Rust staticlib for `x86_64-pc-windows-gnu` with the kernel
//!    toolchain (`-Zbuild-std=core,alloc`, offline vendored sources); the
//!    NDIS layout assertions are evaluated by this compilation;
//! 2. the crate's own object taken out of the archive (compiler_builtins is
//!    left out: ntoskrnl exports memcpy & co., anything else is a link error);
//! 3. `glue.c` compiled by clang (SEH for the calls that raise);
//! 4. linked by mingw-w64 gcc as a native-subsystem image against mingw's
//!    `libntoskrnl.a`, `libndis.a`, `libhal.a`;
//! 5. test-signed with a certificate generated here (openssl) by
//!    osslsigncode; the INF is written beside it.
//!
//! `check_driver` is what the `windows` stage asserts about the result; the
//! stage also feeds it broken drivers and expects each to be rejected.

use crate::util::{Result, output, root, run_cmd};
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "x86_64-pc-windows-gnu";
const GCC: &str = "x86_64-w64-mingw32-gcc";
const OBJDUMP: &str = "x86_64-w64-mingw32-objdump";
const NM: &str = "x86_64-w64-mingw32-nm";
const MINGW_LIB: &str = "/usr/x86_64-w64-mingw32/lib";

/// The only DLLs a kernel driver may import from, with mingw's import
/// library for each.
pub const ALLOWED_IMPORTS: &[(&str, &str)] = &[
    ("ntoskrnl.exe", "libntoskrnl.a"),
    ("NDIS.SYS", "libndis.a"),
    ("HAL.dll", "libhal.a"),
];

/// What the build produced.
#[derive(Debug, Clone)]
pub struct Driver {
    /// `target/windows/netmap.sys` (signed).
    pub sys: PathBuf,
    /// The objects it was linked from (for the broken variants).
    pub objects: Vec<PathBuf>,
    /// The test-signing certificate (PEM).
    pub cert: PathBuf,
}

/// `target/windows`.
pub fn wdir() -> PathBuf {
    root().join("target").join("windows")
}

/// Builds, signs and returns the driver.
pub fn run() -> Result<Driver> {
    let t0 = std::time::Instant::now();
    check_tools()?;
    let wd = wdir();
    fs::create_dir_all(&wd).map_err(|e| format!("{}: {e}", wd.display()))?;
    let mut objects = build_rust_objects(&wd)?;
    objects.push(compile_glue(&wd)?);
    let unsigned = wd.join("netmap.unsigned.sys");
    link(&objects, &[], &unsigned)?;
    let cert = make_cert(&wd)?;
    let sys = wd.join("netmap.sys");
    sign(&unsigned, &sys, &wd)?;
    let inf =
        fs::read(root().join("os/windows/netmap.inf")).map_err(|e| format!("netmap.inf: {e}"))?;
    crate::module::write_if_changed(&wd.join("netmap.inf"), &inf)?;
    eprintln!(
        "sys: {} (+ netmap.inf, netmap-test.cer; {:.1} s)",
        sys.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(Driver { sys, objects, cert })
}

fn check_tools() -> Result {
    for t in ["clang", GCC, OBJDUMP, NM, "osslsigncode", "openssl"] {
        let in_path = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()));
        if !in_path {
            return Err(format!("{t} not found: run `cargo xtask setup`"));
        }
    }
    if !crate::module::kernel_toolchain_present() {
        return Err(
            "kernel toolchain (rustc-web, rust-web-src) missing: `cargo xtask setup`".into(),
        );
    }
    Ok(())
}

/// The kernel toolchain's build of os/windows; `features` e.g. `broken-layout`.
fn cargo_build(wd: &Path, check_only: bool, features: &[&str]) -> Result {
    let manifest = root().join("os/windows/Cargo.toml");
    let cargo_home = crate::module::prepare_offline_sources(wd, &manifest)?;
    let mut cmd = Command::new(crate::module::KCARGO);
    cmd.arg(if check_only { "check" } else { "build" })
        .args(["--release", "-Zbuild-std=core,alloc", "--target", TARGET])
        .arg("--manifest-path")
        .arg(&manifest);
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
    }
    crate::module::kernel_env(
        &mut cmd,
        &cargo_home,
        &wd.join("target"),
        "-Cforce-frame-pointers=yes",
    );
    run_cmd(&mut cmd)
}

/// Step 1-2: the crate's objects (`target/windows/netmap_rs-N.o`).
fn build_rust_objects(wd: &Path) -> Result<Vec<PathBuf>> {
    cargo_build(wd, false, &[])?;
    let lib = wd
        .join("target")
        .join(TARGET)
        .join("release/libnetmap_windows.a");
    let members = output(Command::new("ar").arg("t").arg(&lib))?;
    let ours: Vec<&str> = members
        .lines()
        .filter(|m| m.starts_with("netmap_windows") && m.ends_with(".o"))
        .collect();
    if ours.is_empty() {
        return Err(format!("no netmap_windows object in {}", lib.display()));
    }
    let mut objs = Vec::new();
    for (i, member) in ours.iter().enumerate() {
        let bytes = Command::new("ar")
            .arg("p")
            .arg(&lib)
            .arg(member)
            .output()
            .map_err(|e| format!("ar: {e}"))?;
        if !bytes.status.success() || bytes.stdout.is_empty() {
            return Err(format!("ar p {} {member} failed", lib.display()));
        }
        let obj = wd.join(format!("netmap_rs-{i}.o"));
        crate::module::write_if_changed(&obj, &bytes.stdout)?;
        objs.push(obj);
    }
    Ok(objs)
}

/// Whether the driver crate compiles with `features` (used by the stage to
/// show that a broken NDIS layout stops the build). A host check: the
/// layout assertions are target-independent on x86_64.
pub fn layout_check(features: &[&str]) -> Result {
    let manifest = root().join("os/windows/Cargo.toml");
    let mut cmd = crate::util::cargo();
    cmd.args([
        "check",
        "--quiet",
        "--target",
        "x86_64-unknown-linux-gnu",
        "--manifest-path",
    ])
    .arg(&manifest)
    .env("CARGO_TARGET_DIR", wdir().join("clippy"));
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
    }
    output(&mut cmd).map(drop)
}

/// Step 3.
fn compile_glue(wd: &Path) -> Result<PathBuf> {
    let obj = wd.join("glue.o");
    run_cmd(
        Command::new("clang")
            .args([
                "--target=x86_64-pc-windows-gnu",
                "-O2",
                "-ffreestanding",
                "-fno-stack-protector",
                "-fms-extensions",
                "-Wall",
                "-Werror",
                "-Wno-incompatible-library-redeclaration",
                "-c",
            ])
            .arg(root().join("os/windows/glue.c"))
            .arg("-o")
            .arg(&obj),
    )?;
    Ok(obj)
}

/// Step 4: a native-subsystem image; `extra_libs` only for broken variants.
pub fn link(objects: &[PathBuf], extra_libs: &[&str], out: &Path) -> Result {
    let mut cmd = Command::new(GCC);
    cmd.args(["-shared", "-nostdlib", "-nostartfiles", "-o"])
        .arg(out)
        .args(objects)
        .args([
            "-Wl,--subsystem,native",
            "-Wl,--entry,DriverEntry",
            "-Wl,--image-base,0x140000000",
            "-Wl,--dynamicbase",
            "-Wl,--nxcompat",
            "-Wl,--high-entropy-va",
            // PsSetCreateProcessNotifyRoutineEx needs /INTEGRITYCHECK.
            "-Wl,--forceinteg",
            "-Wl,--exclude-all-symbols",
            "-Wl,--file-alignment,0x200",
            "-Wl,--section-alignment,0x1000",
            "-Wl,--gc-sections",
            "-Wl,--strip-debug",
        ])
        .args(extra_libs)
        .args(["-lndis", "-lntoskrnl", "-lhal"]);
    run_cmd(&mut cmd)
}

/// A self-signed code-signing certificate made at build time (test
/// signing: never a release key).
fn make_cert(wd: &Path) -> Result<PathBuf> {
    let dir = wd.join("cert");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    if !key.exists() || !cert.exists() {
        run_cmd(
            Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                ])
                .args(["-subj", "/CN=netmap-rs test signing (not trusted)"])
                .args(["-addext", "extendedKeyUsage=codeSigning"])
                .args(["-addext", "keyUsage=digitalSignature"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stderr(std::process::Stdio::null()),
        )?;
        // The .cer (DER) that certmgr / `certutil -addstore` import.
        run_cmd(
            Command::new("openssl")
                .args(["x509", "-outform", "der", "-in"])
                .arg(&cert)
                .arg("-out")
                .arg(wd.join("netmap-test.cer")),
        )?;
    }
    Ok(cert)
}

fn sign(unsigned: &Path, signed: &Path, wd: &Path) -> Result {
    let dir = wd.join("cert");
    let _ = fs::remove_file(signed);
    output(
        Command::new("osslsigncode")
            .arg("sign")
            .arg("-certs")
            .arg(dir.join("cert.pem"))
            .arg("-key")
            .arg(dir.join("key.pem"))
            .args(["-h", "sha256", "-n", "netmap"])
            .arg("-in")
            .arg(unsigned)
            .arg("-out")
            .arg(signed),
    )
    .map(drop)
}

/// `osslsigncode verify` against the build's certificate.
pub fn verify_signature(sys: &Path, cert: &Path) -> Result {
    let out = Command::new("osslsigncode")
        .arg("verify")
        .arg("-CAfile")
        .arg(cert)
        .arg("-in")
        .arg(sys)
        .output()
        .map_err(|e| format!("osslsigncode: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && text.contains("Signature verification: ok") {
        Ok(())
    } else {
        let why = text
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
            .filter(|l| l.contains("verif") || l.contains("rror") || l.contains("mismatch"))
            .collect::<Vec<_>>()
            .join("; ");
        Err(format!(
            "signature of {} does not verify: {why}",
            sys.display()
        ))
    }
}

/// What `objdump -p -h` says about a PE image.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PeInfo {
    pub subsystem: Option<u32>,
    pub entry: Option<u64>,
    pub tls: bool,
    /// DLL -> imported names.
    pub imports: BTreeMap<String, Vec<String>>,
    /// (section, code, writable)
    pub sections: Vec<(String, bool, bool)>,
}

/// Parses `objdump -p` and `objdump -h -w` output.
pub fn parse_pe(private: &str, headers: &str) -> PeInfo {
    let mut pe = PeInfo::default();
    let mut dll: Option<String> = None;
    let mut in_names = false;
    for line in private.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Subsystem") {
            pe.subsystem = v
                .split_whitespace()
                .next()
                .and_then(|x| u32::from_str_radix(x, 16).ok());
        } else if let Some(v) = t.strip_prefix("AddressOfEntryPoint") {
            pe.entry = v
                .split_whitespace()
                .next()
                .and_then(|x| u64::from_str_radix(x, 16).ok());
        } else if t.contains("Thread Storage Directory") {
            // "Entry 9 <rva> <size> Thread Storage Directory [.tls]"
            let nums: Vec<&str> = t.split_whitespace().skip(2).take(2).collect();
            pe.tls |= nums
                .iter()
                .any(|n| u64::from_str_radix(n, 16).is_ok_and(|v| v != 0));
        } else if let Some(name) = t.strip_prefix("DLL Name:") {
            let name = name.trim().to_string();
            pe.imports.entry(name.clone()).or_default();
            dll = Some(name);
            in_names = false;
        } else if t.starts_with("vma:") && t.contains("Hint/Ord") {
            in_names = dll.is_some();
        } else if t.is_empty() {
            if in_names {
                dll = None;
            }
            in_names = false;
        } else if in_names && let Some(d) = &dll {
            // "<vma> <hint> <name>"
            let w: Vec<&str> = t.split_whitespace().collect();
            if w.len() >= 3 {
                pe.imports
                    .entry(d.clone())
                    .or_default()
                    .push(w[2].to_string());
            }
        }
    }
    for line in headers.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        // "Idx Name Size VMA LMA File-off Algn Flags" (one line with -w)
        if w.len() >= 8 && w[0].parse::<u32>().is_ok() {
            let flags = w[7..].join(" ");
            let code = flags.contains("CODE");
            let writable = !flags.contains("READONLY");
            pe.sections.push((w[1].to_string(), code, writable));
        }
    }
    pe
}

/// What is wrong with a driver image, given its parsed headers and the
/// exports of the allowed import libraries.
pub fn pe_problems(pe: &PeInfo, exports: &BTreeMap<String, HashSet<String>>) -> Vec<String> {
    let mut p = Vec::new();
    if pe.subsystem != Some(1) {
        p.push(format!("subsystem {:?}, not 1 (native)", pe.subsystem));
    }
    if pe.entry.unwrap_or(0) == 0 {
        p.push("no entry point".into());
    }
    if pe.tls {
        p.push("a TLS directory (drivers cannot have TLS)".into());
    }
    for (name, code, writable) in &pe.sections {
        if *code && *writable {
            p.push(format!("section {name} is writable and executable"));
        }
        if name == ".tls" {
            p.push("a .tls section".into());
        }
    }
    if pe.imports.is_empty() {
        p.push("no import at all (not linked against the kernel?)".into());
    }
    for (dll, names) in &pe.imports {
        let Some(lib_exports) = exports.get(dll) else {
            p.push(format!(
                "imports from {dll} (only ntoskrnl.exe, NDIS.SYS, HAL.dll allowed)"
            ));
            continue;
        };
        for n in names {
            if !lib_exports.contains(n) {
                p.push(format!(
                    "{dll}!{n} is not exported by mingw's import library"
                ));
            }
        }
    }
    p
}

/// Exported names of the allowed import libraries (`__imp_X` symbols).
pub fn import_lib_exports() -> Result<BTreeMap<String, HashSet<String>>> {
    let mut m = BTreeMap::new();
    for (dll, lib) in ALLOWED_IMPORTS {
        let out = output(Command::new(NM).arg(Path::new(MINGW_LIB).join(lib)))?;
        let names = out
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .filter_map(|s| s.strip_prefix("__imp_"))
            .map(str::to_string)
            .collect();
        m.insert(dll.to_string(), names);
    }
    Ok(m)
}

/// `objdump` of `sys`, parsed.
pub fn read_pe(sys: &Path) -> Result<PeInfo> {
    let private = output(Command::new(OBJDUMP).arg("-p").arg(sys))?;
    let headers = output(Command::new(OBJDUMP).args(["-h", "-w"]).arg(sys))?;
    Ok(parse_pe(&private, &headers))
}

/// Every check of the stage on one image: PE shape, imports, signature.
pub fn check_driver(sys: &Path, cert: &Path) -> Result<PeInfo> {
    let pe = read_pe(sys)?;
    let problems = pe_problems(&pe, &import_lib_exports()?);
    if !problems.is_empty() {
        return Err(format!("{}: {}", sys.display(), problems.join("; ")));
    }
    verify_signature(sys, cert)?;
    Ok(pe)
}

/// The `windows` stage of `cargo xtask test`: build, check, then show that
/// each check rejects a broken driver, then the examples under wine.
pub fn stage() -> Result {
    let d = run()?;
    let pe = check_driver(&d.sys, &d.cert)?;
    let n: usize = pe.imports.values().map(Vec::len).sum();
    println!(
        "windows: {} OK: native subsystem, entry {:#x}, {n} imports from {}, no W+X section, no TLS, signature verified",
        d.sys.display(),
        pe.entry.unwrap_or(0),
        pe.imports.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    for (what, size) in layout_table()? {
        println!("windows: layout asserted by the build: {what} = {size}");
    }
    negative_checks(&d)?;
    crate::examples::windows_stage()
}

/// The documented revision sizes `os/windows/src/ffi.rs` asserts its
/// NDIS declarations against (the build stops when one differs).
fn layout_table() -> Result<Vec<(String, String)>> {
    let src = fs::read_to_string(root().join("os/windows/src/ffi.rs"))
        .map_err(|e| format!("ffi.rs: {e}"))?;
    Ok(src
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const NDIS_SIZEOF_"))
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let v = rest.split('=').nth(1)?.trim().trim_end_matches(';');
            Some((format!("NDIS_SIZEOF_{name}"), v.to_string()))
        })
        .collect())
}

/// Broken drivers the checks must reject; an accepted one fails the stage.
fn negative_checks(d: &Driver) -> Result {
    let wd = wdir().join("broken");
    fs::create_dir_all(&wd).map_err(|e| format!("{}: {e}", wd.display()))?;
    let mut failures = Vec::new();
    let mut expect_rejected = |what: &str, r: Result<PeInfo>, needle: &str| match r {
        Ok(_) => failures.push(format!("{what}: accepted")),
        Err(e) if e.contains(needle) => println!("windows: broken driver rejected ({what}): {e}"),
        Err(e) => failures.push(format!("{what}: rejected for another reason: {e}")),
    };
    // 1. A byte of the signed image changed: the signature must not verify.
    let mut bytes = fs::read(&d.sys).map_err(|e| e.to_string())?;
    let at = 0x600.min(bytes.len() - 1);
    bytes[at] ^= 0xff;
    let tampered = wd.join("tampered.sys");
    fs::write(&tampered, &bytes).map_err(|e| e.to_string())?;
    expect_rejected(
        "one byte changed after signing",
        check_driver(&tampered, &d.cert),
        "does not verify",
    );
    // 2. Linked with an import from a user-mode DLL: the PE check must
    //    name it.
    let bad_c = wd.join("bad.c");
    fs::write(
        &bad_c,
        "__declspec(dllimport) void __stdcall Sleep(unsigned long);\n\
         void nm_bad(void) { Sleep(1); }\n",
    )
    .map_err(|e| e.to_string())?;
    let bad_o = wd.join("bad.o");
    run_cmd(
        Command::new(GCC)
            .args(["-c", "-O2"])
            .arg(&bad_c)
            .arg("-o")
            .arg(&bad_o),
    )?;
    let mut objs = d.objects.clone();
    objs.push(bad_o);
    let bad = wd.join("bad-imports.sys");
    link(&objs, &["-Wl,--require-defined,nm_bad", "-lkernel32"], &bad)?;
    expect_rejected(
        "a kernel32.dll import",
        check_driver(&bad, &d.cert),
        "imports from KERNEL32.dll",
    );
    // 3. .text made writable (objcopy): the W+X check must fire.
    let wx = wd.join("wx.sys");
    run_cmd(
        Command::new("x86_64-w64-mingw32-objcopy")
            .args(["--set-section-flags", ".text=alloc,load,contents,code,data"])
            .arg(&d.sys)
            .arg(&wx),
    )?;
    expect_rejected(
        "a writable .text",
        check_driver(&wx, &d.cert),
        "writable and executable",
    );
    // 4. A wrong NDIS layout (feature `broken-layout` adds a field to
    //    NDIS_FILTER_DRIVER_CHARACTERISTICS): the build must fail on the
    //    assertions.
    match layout_check(&["broken-layout"]) {
        Ok(()) => failures.push("broken NDIS layout: the driver still compiles".into()),
        Err(e) if e.contains("layout differs") => {
            println!(
                "windows: broken driver rejected (NDIS layout): the build stops on the layout assertion"
            )
        }
        Err(e) => failures.push(format!(
            "broken NDIS layout: failed for another reason: {e}"
        )),
    }
    layout_check(&[])?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "checks accepted broken drivers: {}",
            failures.join("; ")
        ))
    }
}

/// clippy of the driver crate (outside the workspace), checked for the
/// host target: the code is `no_std` and target-independent (the kernel
/// toolchain has no clippy).
pub fn lint() -> Result {
    let manifest = root().join("os/windows/Cargo.toml");
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
            .env("CARGO_TARGET_DIR", wdir().join("clippy")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIVATE: &str = "
AddressOfEntryPoint\t0000000000001230
Subsystem\t\t00000001\t(Windows native)
Entry 9 0000000000000000 00000000 Thread Storage Directory [.tls]

The Import Tables (interpreted .idata section contents)
 vma:            Hint    Time      Forward  DLL       First
                 Table   Stamp     Chain    Name      Thunk
 00009000       00009050 00000000 00000000 000092d8 00009120

\tDLL Name: ntoskrnl.exe
\tvma:  Hint/Ord Member-Name Bound-To
\t91f0      123  KeSetEvent
\t9200      456  ExAllocatePoolWithTag

\tDLL Name: KERNEL32.dll
\tvma:  Hint/Ord Member-Name Bound-To
\t9300       12  Sleep

";
    const HEADERS: &str = "
Sections:
Idx Name          Size      VMA               LMA               File off  Algn  Flags
  0 .text         00001000  0000000140001000  0000000140001000  00000400  2**4  CONTENTS, ALLOC, LOAD, READONLY, CODE
  1 .data         00000200  0000000140002000  0000000140002000  00001400  2**4  CONTENTS, ALLOC, LOAD, DATA
  2 .wx           00000010  0000000140003000  0000000140003000  00001600  2**2  CONTENTS, ALLOC, LOAD, CODE
";

    fn exports() -> BTreeMap<String, HashSet<String>> {
        let mut m = BTreeMap::new();
        m.insert(
            "ntoskrnl.exe".to_string(),
            ["KeSetEvent".to_string()].into_iter().collect(),
        );
        m
    }

    #[test]
    fn parses_objdump() {
        let pe = parse_pe(PRIVATE, HEADERS);
        assert_eq!(pe.subsystem, Some(1));
        assert_eq!(pe.entry, Some(0x1230));
        assert!(!pe.tls);
        assert_eq!(
            pe.imports["ntoskrnl.exe"],
            ["KeSetEvent", "ExAllocatePoolWithTag"]
        );
        assert_eq!(pe.imports["KERNEL32.dll"], ["Sleep"]);
        assert_eq!(pe.sections.len(), 3);
    }

    #[test]
    fn finds_every_problem() {
        let pe = parse_pe(PRIVATE, HEADERS);
        let p = pe_problems(&pe, &exports()).join("\n");
        assert!(p.contains("imports from KERNEL32.dll"), "{p}");
        assert!(p.contains("ExAllocatePoolWithTag is not exported"), "{p}");
        assert!(p.contains("section .wx is writable and executable"), "{p}");
        assert!(!p.contains(".text"), "{p}");
        let console = PRIVATE.replace("00000001\t(Windows native)", "00000003\t(Windows CUI)");
        let tls = PRIVATE.replace(
            "0000000000000000 00000000 Thread",
            "0000000000004000 00000028 Thread",
        );
        let p2 = pe_problems(&parse_pe(&console, HEADERS), &exports()).join("\n");
        assert!(p2.contains("subsystem Some(3)"), "{p2}");
        let p3 = pe_problems(&parse_pe(&tls, HEADERS), &exports()).join("\n");
        assert!(p3.contains("TLS directory"), "{p3}");
    }
}
