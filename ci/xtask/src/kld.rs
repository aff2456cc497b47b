//! `cargo xtask kld`: build the FreeBSD kernel module `netmap.ko` on this
//! Linux machine, and check it (`/work/shared/CROSS-BUILD.md` has the
//! measured facts behind each step).
//!
//! Steps, mirroring `module.rs` for Linux:
//! 1. FreeBSD 15's installed headers (kernel headers included) from the
//!    PyPI `ziglang` wheel, installed by `cargo xtask setup` into
//!    `~/.cache/netmap-rs`; Concurrency Kit headers from Debian's
//!    libck-dev, with our `ck_md.h` (`os/freebsd/cross/`);
//! 2. glue.c compiled with Debian's clang for x86_64-unknown-freebsd15
//!    with the kernel's flags, `-Werror`;
//! 3. the Rust staticlib `os/freebsd/rust` built like the Linux one
//!    (`module::build_crate_object`), its own object extracted;
//! 4. `ld.lld -m elf_x86_64_fbsd -r` with `os/freebsd/cross/kmod.lds`,
//!    then every defined global made local (what FreeBSD's kmod_syms.awk
//!    does for a module that exports nothing) and debug sections stripped:
//!    `target/freebsd/netmap.ko`;
//! 5. the checks of [`check_kld`]: ELF relocatable for FreeBSD, module
//!    metadata (name, version, `kernel` dependency no newer than 15.0),
//!    linker sets, relocation types, no FPU/SIMD code, stack frames,
//!    undefined symbols all FreeBSD KPI declared in the headers.
//!
//! [`self_test`] builds deliberately broken variants and requires each to
//! be rejected, so that the `freebsd` stage cannot pass with checks that
//! stopped working.

use crate::module::{self, KernelCrate, write_if_changed};
use crate::util::{Result, output, root, run_cmd};
use object::read::elf::ElfFile64;
use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SectionIndex};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The `ziglang` wheel whose headers we build against (pinned: its
/// FreeBSD headers are the ones checked here).
pub const ZIGLANG: &str = "ziglang==0.17.1";
/// The FreeBSD version the module is built for (zig strips
/// `__FreeBSD_version` from its headers): the first 15.0 version number.
/// Not 1500000 itself: DECLARE_MODULE records `roundup(v, 100000) - 1` as
/// the newest kernel, which for 1500000 is 1499999 (below the minimum: no
/// kernel would load the module); 1500001 gives 15.0 .. 15.x (1599999).
const FREEBSD_VERSION: u32 = 1_500_001;
/// What DECLARE_MODULE records as the newest kernel (`MODULE_KERNEL_MAXVER`).
const FREEBSD_MAXVER: u32 = 1_599_999;

/// Relocation types the FreeBSD amd64 kernel linker (link_elf_obj) handles
/// for module code here.
const ALLOWED_RELOCS: &[&str] = &[
    "R_X86_64_64",
    "R_X86_64_PC32",
    "R_X86_64_PLT32",
    "R_X86_64_32S",
];

/// Kernel code flags: kernel code model, no red zone, no FPU/SIMD, frame
/// pointers (DDB and dtrace walk them), static relocations.
const KRUSTFLAGS: &str = "-Crelocation-model=static -Zplt=yes -Cforce-frame-pointers=yes";

const CFLAGS: &[&str] = &[
    "-target",
    "x86_64-unknown-freebsd15",
    "-D_KERNEL",
    "-DKLD_MODULE",
    "-nostdinc",
    "-ffreestanding",
    "-fno-common",
    "-fwrapv",
    "-fno-stack-protector",
    "-mcmodel=kernel",
    "-mno-red-zone",
    "-mno-mmx",
    "-mno-sse",
    "-msoft-float",
    "-fno-asynchronous-unwind-tables",
    "-fno-omit-frame-pointer",
    "-O2",
    "-Wall",
    "-Wmissing-prototypes",
    "-Werror",
];

/// `target/freebsd`: everything this build writes.
fn fdir() -> PathBuf {
    root().join("target").join("freebsd")
}

/// Where setup installs the ziglang wheel (outside target/, so that
/// `cargo clean` does not drop a 100 MB download).
pub fn ziglang_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    let ver = ZIGLANG.split("==").nth(1).unwrap_or("any");
    home.join(".cache/netmap-rs").join(format!("ziglang-{ver}"))
}

/// The `zig` binary of the wheel (the FreeBSD examples' linker).
pub fn zig() -> PathBuf {
    ziglang_dir().join("ziglang/zig")
}

/// The two FreeBSD include directories of the wheel, searched in order.
fn header_dirs() -> [PathBuf; 2] {
    let inc = ziglang_dir().join("ziglang/lib/libc/include");
    [inc.join("x86_64-freebsd-none"), inc.join("generic-freebsd")]
}

/// Installs the ziglang wheel into [`ziglang_dir`] if it is not there
/// (Debian's python3 with python3-pip, both installed by setup; no
/// virtualenv needed: `--target` writes only that directory).
pub fn ensure_ziglang() -> Result {
    let dir = ziglang_dir();
    if zig().exists() && header_dirs().iter().all(|d| d.is_dir()) {
        return Ok(());
    }
    println!(
        "setup: installing the {ZIGLANG} wheel (FreeBSD headers) into {}",
        dir.display()
    );
    run_cmd(
        Command::new("/usr/bin/python3")
            .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
            .arg(&dir)
            .arg(ZIGLANG)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_ROOT_USER_ACTION", "ignore"),
    )
}

/// What `cargo xtask kld` produced and checked.
pub struct Kld {
    pub ko: PathBuf,
    pub report: KldReport,
}

/// Builds and checks `target/freebsd/netmap.ko`.
pub fn run() -> Result<Kld> {
    let t0 = Instant::now();
    let parts = build_parts()?;
    let ko = fdir().join("netmap.ko");
    link(&[&parts.glue, &parts.rust], &ko)?;
    let report = check_kld(&ko, &parts.kpi)?;
    eprintln!(
        "kld: {} OK: module {} version {}, kernel {}..{}, {} undefined symbols (all FreeBSD KPI), \
         largest frame {} ({:.1} s)",
        ko.display(),
        report.module,
        report.version,
        report.kernel_min,
        report.kernel_max,
        report.undefined.len(),
        report.largest_frame,
        t0.elapsed().as_secs_f64()
    );
    Ok(Kld { ko, report })
}

/// The objects of the module and the KPI names the headers declare.
struct Parts {
    glue: PathBuf,
    rust: PathBuf,
    kpi: HashSet<String>,
}

fn build_parts() -> Result<Parts> {
    let fd = fdir();
    fs::create_dir_all(&fd).map_err(|e| format!("{}: {e}", fd.display()))?;
    let inc = prepare_includes(&fd)?;
    let glue = fd.join("glue.o");
    compile(&root().join("os/freebsd/glue.c"), &glue, &inc, &[])?;
    let kpi = kpi_names(&fd, &inc)?;
    let rust = module::build_crate_object(&freebsd_crate(), false)?;
    Ok(Parts { glue, rust, kpi })
}

/// The FreeBSD module's Rust crate.
fn freebsd_crate() -> KernelCrate {
    KernelCrate {
        manifest: "os/freebsd/rust/Cargo.toml",
        lib: "netmap_freebsd",
        dir: fdir().join("rust"),
        rustflags: KRUSTFLAGS,
    }
}

/// Lints of the FreeBSD kernel crate (fmt, host clippy), as for Linux.
pub fn lint_kernel_crate() -> Result {
    module::lint_crate("os/freebsd/rust/Cargo.toml", &fdir().join("clippy"))
}

/// The `-I` directories: the wheel's FreeBSD headers, then a directory
/// with libck-dev's headers (minus its Linux `ck_md.h`) and ours.
fn prepare_includes(fd: &Path) -> Result<Vec<PathBuf>> {
    let [md, generic] = header_dirs();
    if !generic.join("sys/param.h").exists() {
        return Err(format!(
            "FreeBSD headers missing ({}): `cargo xtask setup` installs the {ZIGLANG} wheel",
            generic.display()
        ));
    }
    let ck = fd.join("include");
    fs::create_dir_all(&ck).map_err(|e| format!("{}: {e}", ck.display()))?;
    let mut found = false;
    for ent in fs::read_dir("/usr/include").map_err(|e| format!("/usr/include: {e}"))? {
        let ent = ent.map_err(|e| format!("/usr/include: {e}"))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        let wanted =
            (name.starts_with("ck_") && name.ends_with(".h") && name != "ck_md.h") || name == "gcc";
        if !wanted {
            continue;
        }
        found |= name == "ck_queue.h";
        let link = ck.join(&name);
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(ent.path(), &link)
                .map_err(|e| format!("symlink {}: {e}", link.display()))?;
        }
    }
    if !found {
        return Err(
            "/usr/include/ck_queue.h missing: `cargo xtask setup` installs libck-dev".into(),
        );
    }
    let cross = root().join("os/freebsd/cross");
    let data = fs::read(cross.join("ck_md.h")).map_err(|e| format!("ck_md.h: {e}"))?;
    write_if_changed(&ck.join("ck_md.h"), &data)?;
    Ok(vec![md, generic, ck, cross])
}

fn clang(inc: &[PathBuf]) -> Command {
    let mut c = Command::new("clang");
    c.args(CFLAGS)
        .arg(format!("-D__FreeBSD_version={FREEBSD_VERSION}"));
    for d in inc {
        c.arg("-I").arg(d);
    }
    // The kernel configuration stand-in (os/freebsd/cross).
    c.arg("-include").arg("opt_global.h");
    c
}

/// Compiles one C file of the module (`extra`: flags for the broken
/// variants of the self-test).
fn compile(src: &Path, obj: &Path, inc: &[PathBuf], extra: &[&str]) -> Result {
    run_cmd(clang(inc).args(extra).arg("-c").arg(src).arg("-o").arg(obj))
}

/// Every identifier the FreeBSD headers that glue.c includes declare as a
/// function (`name(`) or an extern variable: the KPI a module may
/// reference. Read from the preprocessed headers (not glue.c itself).
fn kpi_names(fd: &Path, inc: &[PathBuf]) -> Result<HashSet<String>> {
    let glue =
        fs::read_to_string(root().join("os/freebsd/glue.c")).map_err(|e| format!("glue.c: {e}"))?;
    let includes: String = glue
        .lines()
        .filter(|l| l.starts_with("#include <"))
        .map(|l| format!("{l}\n"))
        .collect();
    let tu = fd.join("kpi.c");
    write_if_changed(&tu, includes.as_bytes())?;
    let pre = output(clang(inc).arg("-E").arg("-P").arg(&tu))?;
    Ok(declared_names(&pre))
}

/// Identifiers declared in preprocessed C: followed by `(` (functions,
/// also calls in inline functions, which are declared too) or the last
/// identifier of an `extern` declaration.
fn declared_names(pre: &str) -> HashSet<String> {
    let mut names = HashSet::new();
    let bytes = pre.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            if bytes.get(j) == Some(&b'(') {
                names.insert(pre[start..i].to_string());
            }
        } else {
            i += 1;
        }
    }
    for decl in pre.split(';') {
        // The declaration may follow a `}` in the same piece.
        let Some(at) = decl.rfind("extern ") else {
            continue;
        };
        let decl = &decl[at..];
        if decl.contains('(') {
            continue;
        }
        let decl = decl.split(['[', '=']).next().unwrap_or("");
        if let Some(last) = decl
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .rfind(|w| !w.is_empty())
        {
            names.insert(last.to_string());
        }
    }
    names
}

/// Links the objects into a FreeBSD module at `ko`.
fn link(objs: &[&Path], ko: &Path) -> Result {
    let full = ko.with_extension("full.o");
    let mut ld = Command::new("ld.lld");
    ld.args(["-m", "elf_x86_64_fbsd", "-r", "-T"])
        .arg(root().join("os/freebsd/cross/kmod.lds"))
        .arg("-o")
        .arg(&full);
    for o in objs {
        ld.arg(o);
    }
    run_cmd(&mut ld)?;
    // Every defined global becomes local: the module exports nothing.
    let defined = output(
        Command::new("nm")
            .args(["-g", "--defined-only", "--format=posix"])
            .arg(&full),
    )?;
    let list: String = defined
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|s| format!("{s}\n"))
        .collect();
    let syms = ko.with_extension("localize");
    fs::write(&syms, list).map_err(|e| format!("{}: {e}", syms.display()))?;
    run_cmd(
        Command::new("llvm-objcopy")
            .arg("--strip-debug")
            .arg(format!("--localize-symbols={}", syms.display()))
            .arg(&full)
            .arg(ko),
    )
}

/// What [`check_kld`] read from a module.
#[derive(Debug)]
pub struct KldReport {
    pub module: String,
    pub version: i32,
    pub kernel_min: i32,
    pub kernel_max: i32,
    pub undefined: Vec<String>,
    pub largest_frame: String,
}

/// `struct mod_metadata` types (`sys/module.h`).
const MDT_DEPEND: i32 = 1;
const MDT_MODULE: i32 = 2;
const MDT_VERSION: i32 = 3;
/// `ELFOSABI_FREEBSD`.
const ELFOSABI_FREEBSD: u8 = 9;

/// The checks a FreeBSD module must pass (see the module doc).
pub fn check_kld(ko: &Path, kpi: &HashSet<String>) -> Result<KldReport> {
    let data = fs::read(ko).map_err(|e| format!("{}: {e}", ko.display()))?;
    let mut problems = Vec::new();
    let elf = ElfFile64::<object::Endianness>::parse(&*data)
        .map_err(|e| format!("{}: not an ELF64 object: {e}", ko.display()))?;
    if elf.kind() != object::ObjectKind::Relocatable {
        problems.push(format!("not a relocatable object ({:?})", elf.kind()));
    }
    if elf.architecture() != object::Architecture::X86_64 {
        problems.push(format!("not x86_64 ({:?})", elf.architecture()));
    }
    let osabi = data.get(7).copied().unwrap_or(0);
    if osabi != ELFOSABI_FREEBSD {
        problems.push(format!(
            "EI_OSABI is {osabi}, not FreeBSD ({ELFOSABI_FREEBSD})"
        ));
    }
    for set in [
        "set_modmetadata_set",
        "set_sysinit_set",
        "set_sysuninit_set",
        "set_sysctl_set",
    ] {
        if elf.section_by_name(set).is_none() {
            problems.push(format!("linker set {set} missing"));
        }
    }

    let md = read_metadata(&elf).unwrap_or_else(|e| {
        problems.push(e);
        Vec::new()
    });
    let mut report = KldReport {
        module: String::new(),
        version: 0,
        kernel_min: 0,
        kernel_max: 0,
        undefined: Vec::new(),
        largest_frame: String::new(),
    };
    for m in &md {
        match m.kind {
            MDT_MODULE => report.module = m.name.clone(),
            MDT_VERSION if m.name == "netmap" => report.version = m.ints[0],
            MDT_DEPEND if m.name == "kernel" => {
                report.kernel_min = m.ints[0];
                report.kernel_max = m.ints[2];
            }
            _ => {}
        }
    }
    if report.module != "netmap" {
        problems.push(format!(
            "module name {:?}, not \"netmap\" (DECLARE_MODULE)",
            report.module
        ));
    }
    if report.version < 1 {
        problems.push("no MDT_VERSION for netmap (MODULE_VERSION)".into());
    }
    if report.kernel_min == 0 || report.kernel_min > FREEBSD_VERSION as i32 {
        problems.push(format!(
            "kernel dependency minimum {} (must be set and at most {FREEBSD_VERSION}, FreeBSD 15.0)",
            report.kernel_min
        ));
    }
    if report.kernel_max < report.kernel_min || report.kernel_max > FREEBSD_MAXVER as i32 {
        problems.push(format!("kernel dependency maximum {}", report.kernel_max));
    }

    let code = module::check_code(ko, ALLOWED_RELOCS, true)?;
    problems.extend(code.problems);
    report.largest_frame = code.largest_frame;

    let undefined: BTreeSet<String> = module::undefined_symbols(ko)?.into_iter().collect();
    for sym in &undefined {
        // Linker-set bounds are resolved by the kernel linker itself.
        let set_bound = sym.starts_with("__start_set_") || sym.starts_with("__stop_set_");
        if !set_bound && !kpi.contains(sym) {
            problems.push(format!(
                "undefined symbol {sym} is not a FreeBSD KPI declared in the headers{}",
                module::helper_hint(sym)
            ));
        }
    }
    report.undefined = undefined.into_iter().collect();

    if problems.is_empty() {
        Ok(report)
    } else {
        Err(format!(
            "FreeBSD module check failed for {}:\n  {}",
            ko.display(),
            problems.join("\n  ")
        ))
    }
}

/// One `struct mod_metadata` of the module's linker set.
struct Metadata {
    kind: i32,
    /// `md_cval`: the module (or dependency) name.
    name: String,
    /// The first three ints of `md_data` (version; or min, preferred, max).
    ints: [i32; 3],
}

/// Reads `set_modmetadata_set`: an array of pointers (relocations) to
/// `struct mod_metadata { int md_version; int md_type; const void
/// *md_data; const char *md_cval; }`, whose pointers are relocations too.
fn read_metadata(elf: &ElfFile64<'_, object::Endianness>) -> Result<Vec<Metadata>> {
    let set = elf
        .section_by_name("set_modmetadata_set")
        .ok_or("linker set set_modmetadata_set missing")?;
    // (section, offset) -> (target section, target offset)
    let mut relocs: HashMap<(SectionIndex, u64), (SectionIndex, u64)> = HashMap::new();
    for sec in elf.sections() {
        for (off, r) in sec.relocations() {
            let target = match r.target() {
                RelocationTarget::Symbol(si) => elf.symbol_by_index(si).ok().and_then(|s| {
                    s.section_index()
                        .map(|ti| (ti, s.address().wrapping_add(r.addend() as u64)))
                }),
                RelocationTarget::Section(ti) => Some((ti, r.addend() as u64)),
                _ => None,
            };
            if let Some(t) = target {
                relocs.insert((sec.index(), off), t);
            }
        }
    }
    let bytes = |si: SectionIndex, off: u64, len: u64| -> Option<Vec<u8>> {
        let d = elf.section_by_index(si).ok()?.data().ok()?;
        d.get(off as usize..(off + len) as usize)
            .map(<[u8]>::to_vec)
    };
    let int = |si, off| bytes(si, off, 4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let string = |si: SectionIndex, off: u64| -> Option<String> {
        let d = elf.section_by_index(si).ok()?.data().ok()?;
        let s = d.get(off as usize..)?;
        let end = s.iter().position(|&c| c == 0)?;
        Some(String::from_utf8_lossy(&s[..end]).into_owned())
    };
    let mut out = Vec::new();
    for i in 0..set.size() / 8 {
        let (ms, mo) = *relocs
            .get(&(set.index(), i * 8))
            .ok_or("set_modmetadata_set entry without relocation")?;
        let kind = int(ms, mo + 4).ok_or("mod_metadata out of bounds")?;
        let name = relocs
            .get(&(ms, mo + 16))
            .and_then(|&(s, o)| string(s, o))
            .unwrap_or_default();
        let mut ints = [0; 3];
        if let Some(&(ds, doff)) = relocs.get(&(ms, mo + 8)) {
            for (k, v) in ints.iter_mut().enumerate() {
                *v = int(ds, doff + 4 * k as u64).unwrap_or(0);
            }
        }
        out.push(Metadata { kind, name, ints });
    }
    Ok(out)
}

/// A deliberately broken variant of the module and the problem the check
/// must report for it.
struct Broken {
    what: &'static str,
    /// Extra C compiled into the module.
    source: &'static str,
    /// Extra compiler flags (to produce what the module must not contain).
    flags: &'static [&'static str],
    /// Without glue.o (no module metadata at all).
    drop_glue: bool,
    /// A word the check's error must contain.
    expect: &'static str,
}

const BROKEN: &[Broken] = &[
    Broken {
        what: "an undefined symbol that is not FreeBSD KPI",
        source: "void nm_not_a_kpi(void);\nvoid nm_broken(void);\nvoid nm_broken(void) { nm_not_a_kpi(); }\n",
        flags: &[],
        drop_glue: false,
        expect: "undefined symbol nm_not_a_kpi",
    },
    Broken {
        what: "SSE code",
        source: "double nm_broken(double a, double b);\ndouble nm_broken(double a, double b) { return a * b + 1.5; }\n",
        flags: &["-mno-soft-float", "-msse2"],
        drop_glue: false,
        expect: "FPU/SIMD",
    },
    Broken {
        what: "a stack frame above 2048 bytes",
        source: "void nm_broken(volatile unsigned char *p);\nvoid nm_broken(volatile unsigned char *p) { volatile unsigned char b[4096]; b[p[0]] = 1; p[1] = b[p[2]]; }\n",
        flags: &[],
        drop_glue: false,
        expect: "stack frame of",
    },
    Broken {
        what: "a GOT relocation",
        source: "extern int nm_broken_var;\nint nm_broken(void);\nint nm_broken(void) { return nm_broken_var; }\nint nm_broken_var;\n",
        flags: &["-fPIC", "-mcmodel=small"],
        drop_glue: false,
        expect: "relocation R_X86_64_",
    },
    Broken {
        what: "no module metadata (no DECLARE_MODULE)",
        source: "void nm_broken(void);\nvoid nm_broken(void) { }\n",
        flags: &[],
        drop_glue: true,
        expect: "module name",
    },
];

/// Builds each [`BROKEN`] variant and requires [`check_kld`] to reject it
/// with the expected problem; returns how many were rejected.
pub fn self_test() -> Result<usize> {
    let parts = build_parts()?;
    let fd = fdir().join("broken");
    fs::create_dir_all(&fd).map_err(|e| format!("{}: {e}", fd.display()))?;
    let inc = prepare_includes(&fdir())?;
    let mut failures = Vec::new();
    for (i, b) in BROKEN.iter().enumerate() {
        let src = fd.join(format!("broken{i}.c"));
        let obj = fd.join(format!("broken{i}.o"));
        let ko = fd.join(format!("broken{i}.ko"));
        write_if_changed(&src, b.source.as_bytes())?;
        compile(&src, &obj, &inc, b.flags)?;
        let mut objs: Vec<&Path> = vec![&parts.rust, &obj];
        if !b.drop_glue {
            objs.insert(0, &parts.glue);
        }
        link(&objs, &ko)?;
        match check_kld(&ko, &parts.kpi) {
            Ok(_) => failures.push(format!("{}: accepted", b.what)),
            Err(e) if e.contains(b.expect) => {
                println!("kld self-test: rejected {} ({})", b.what, b.expect);
            }
            Err(e) => failures.push(format!(
                "{}: rejected, but not for {:?}: {e}",
                b.what, b.expect
            )),
        }
    }
    if failures.is_empty() {
        Ok(BROKEN.len())
    } else {
        Err(format!(
            "the FreeBSD module check let broken modules through:\n  {}",
            failures.join("\n  ")
        ))
    }
}

/// The linker for x86_64-unknown-freebsd programs: `zig cc` with
/// FreeBSD's libc stubs, through a one-line wrapper script (cargo takes
/// one program path).
pub fn user_linker() -> Result<PathBuf> {
    let zig = zig();
    if !zig.exists() {
        return Err(format!(
            "{} missing: `cargo xtask setup` installs the {ZIGLANG} wheel",
            zig.display()
        ));
    }
    let fd = fdir();
    fs::create_dir_all(&fd).map_err(|e| format!("{}: {e}", fd.display()))?;
    let stubs = library_stubs(&zig, &fd)?;
    let wrapper = fd.join("zig-cc");
    let script = format!(
        "#!/bin/sh\n# Written by cargo xtask: links FreeBSD programs with zig's FreeBSD libc stubs.\n\
         exec '{}' cc -target x86_64-freebsd -L '{}' \"$@\"\n",
        zig.display(),
        stubs.display()
    );
    write_if_changed(&wrapper, script.as_bytes())?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", wrapper.display()))?;
    Ok(wrapper)
}

/// FreeBSD base libraries that Rust's `libc` crate names for the linker
/// but zig has no stubs for (name, soname on FreeBSD 15). Nothing of them
/// is used, so `--as-needed` drops them; the linker only has to find them.
const BASE_LIBS: &[(&str, &str)] = &[
    ("kvm", "libkvm.so.7"),
    ("procstat", "libprocstat.so.1"),
    ("devstat", "libdevstat.so.7"),
    ("memstat", "libmemstat.so.3"),
];

/// Builds empty shared libraries for [`BASE_LIBS`] (once) and returns
/// their directory.
fn library_stubs(zig: &Path, fd: &Path) -> Result<PathBuf> {
    let dir = fd.join("libstubs");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let empty = dir.join("empty.c");
    write_if_changed(&empty, b"/* an empty FreeBSD library for the linker */\n")?;
    for (name, soname) in BASE_LIBS {
        let lib = dir.join(format!("lib{name}.so"));
        if lib.exists() {
            continue;
        }
        run_cmd(
            Command::new(zig)
                .args(["cc", "-target", "x86_64-freebsd", "-shared", "-nostdlib"])
                .arg(format!("-Wl,-soname,{soname}"))
                .arg("-o")
                .arg(&lib)
                .arg(&empty),
        )?;
    }
    Ok(dir)
}

/// Checks that `bin` is a FreeBSD amd64 executable (the `FreeBSD` ABI
/// note and FreeBSD's run-time linker) that calls `ioctl`, never with
/// Linux's NIOCTXSYNC/NIOCRXSYNC numbers; a program that maps rings must
/// import `mmap` and `poll`, one that syncs must contain FreeBSD's sync
/// numbers.
pub fn check_user_program(bin: &Path, prog: &crate::examples::Program) -> Result<String> {
    let notes = output(Command::new("readelf").args(["-n", "-W"]).arg(bin))?;
    if !notes.lines().any(|l| l.trim_start().starts_with("FreeBSD")) {
        return Err("no FreeBSD ABI note (.note.tag)".into());
    }
    let phdrs = output(Command::new("readelf").args(["-l", "-W"]).arg(bin))?;
    if !phdrs.contains("/libexec/ld-elf.so.1") {
        return Err("interpreter is not /libexec/ld-elf.so.1".into());
    }
    let dynsyms = output(Command::new("nm").args(["-D", "--undefined-only"]).arg(bin))?;
    // Versioned names: `ioctl@FBSD_1.0`.
    let imports = |f: &str| {
        dynsyms.lines().any(|l| {
            l.split_whitespace()
                .last()
                .is_some_and(|s| s.split('@').next() == Some(f))
        })
    };
    if !imports("ioctl") {
        return Err("does not import ioctl".into());
    }
    let dis = output(
        Command::new("objdump")
            .args(["-d", "--no-show-raw-insn"])
            .arg(bin),
    )?;
    let has = |imm: u32| dis.contains(&format!("$0x{imm:x},"));
    use netmap_uapi::ioctl::{self, bsd};
    if has(ioctl::NIOCTXSYNC) || has(ioctl::NIOCRXSYNC) {
        return Err("Linux sync ioctl numbers in the code".into());
    }
    let mut what = String::from("is a FreeBSD executable (ABI note, ld-elf.so.1) calling ioctl");
    if prog.maps {
        for f in ["mmap", "poll"] {
            if !imports(f) {
                return Err(format!("does not import {f}"));
            }
        }
        what += ", mmap, poll";
    }
    if prog.syncs {
        for (name, num) in [
            ("NIOCTXSYNC", bsd::NIOCTXSYNC),
            ("NIOCRXSYNC", bsd::NIOCRXSYNC),
        ] {
            if !has(num) {
                return Err(format!("FreeBSD {name} (0x{num:x}) not in the code"));
            }
        }
        what += " with FreeBSD's NIOCTXSYNC/NIOCRXSYNC numbers";
    }
    Ok(what)
}

#[cfg(test)]
mod tests {
    use super::declared_names;

    #[test]
    fn declarations_are_found_in_preprocessed_headers() {
        let pre = "int copyin(const void *udaddr, void *kaddr, size_t len);\n\
                   extern int mp_ncpus;\nextern struct mtx Giant;\n\
                   static inline int f(void) { return g (1); }\n\
                   extern char *kern_ident[32];\nstruct s { int x; };\n";
        let n = declared_names(pre);
        for want in ["copyin", "mp_ncpus", "Giant", "g", "kern_ident"] {
            assert!(n.contains(want), "{want} missing");
        }
        for not in ["udaddr", "s", "x", "nm_not_a_kpi"] {
            assert!(!n.contains(not), "{not} found");
        }
    }
}
