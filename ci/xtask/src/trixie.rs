//! The second kernel line: Debian 13 ("trixie")'s 6.12, in a cached chroot.
//!
//! Why a chroot: trixie's `linux-kbuild-6.12` host programs (modpost,
//! objtool, resolve_btfids) need glibc 2.38 and `libelf1t64`, which Debian
//! 12 does not have, and the kernel was built with gcc-14 (its flags, e.g.
//! `-fmin-function-alignment`, are unknown to Debian 12's gcc-12). So Kbuild
//! for 6.12 runs inside a minimal trixie system made with `debootstrap`, with
//! trixie's own gcc-14, make and libraries; the Rust object is still built on
//! the host with the kernel toolchain (it does not depend on the C compiler).
//!
//! The chroot lives in a machine-wide cache ([`cache_dir`], like apt's own
//! cache: fresh clones and CI runs on the same machine reuse it) and holds:
//! * what Kbuild needs: gcc-14, make, libc6-dev, libelf1t64, libssl3t64,
//!   dwarves (pahole);
//! * what the DKMS package test needs ([`crate::dkms`]): dkms and the kernel
//!   toolchain its package depends on (rustc-web, cargo-web, rust-web-src);
//! * the current `linux-headers-*`, `linux-headers-*-common`,
//!   `linux-kbuild-*` and `linux-image-*` of trixie (what
//!   `linux-headers-amd64` depends on), unpacked with `dpkg -x` (not
//!   installed: the image's maintainer scripts would build an initramfs for
//!   nothing), then `depmod`. The guest boots that image.
//!
//! apt inside the chroot has its own source list (trixie, trixie-updates,
//! trixie-security), apart from the machine's. Commands run in the chroot
//! through [`command`]: a private mount namespace (`unshare -m`), so the
//! bind mounts (`/dev`, `/proc`, the build directory) vanish with the
//! process, whatever happens to it.

use crate::module::Kernel;
use crate::util::{Result, output, run_cmd};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The Debian release of this kernel line.
const SUITE: &str = "trixie";

/// Packages of the chroot beyond debootstrap's minbase, each with its reason.
const PACKAGES: &[&str] = &[
    // Kbuild: the compiler the 6.12 kernel was built with, and make.
    "gcc-14",
    "make",
    // rustc-web depends on the virtual libc-dev, which debootstrap does not
    // resolve; Kbuild itself does not need it.
    "libc6-dev",
    // modpost, objtool and resolve_btfids of linux-kbuild-6.12.
    "libelf1t64",
    "libssl3t64",
    // pahole: linux-kbuild's dependency (BTF of modules).
    "dwarves",
    // The DKMS package test: dkms, and the kernel toolchain the package
    // declares as its dependency.
    "dkms",
    "rustc-web",
    "cargo-web",
    "rust-web-src",
];

/// Marks a complete chroot; holds the kernel version it has.
const READY: &str = ".netmap-rs-ready";

/// The cache directory: `$NM_KERNEL_CACHE`, else `/var/cache/netmap-rs`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("NM_KERNEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/netmap-rs"))
}

/// The chroot's root directory.
pub fn root_dir() -> PathBuf {
    cache_dir().join(SUITE)
}

/// The 6.12 kernel, its chroot made or brought up to date first.
pub fn kernel() -> Result<Kernel> {
    let root = prepare()?;
    let version = fs::read_to_string(root.join(READY))
        .map_err(|e| format!("{}: {e}", root.join(READY).display()))?
        .trim()
        .to_string();
    Ok(Kernel {
        headers: root.join(format!("usr/src/linux-headers-{version}")),
        version,
        sysroot: root,
        chroot: true,
    })
}

/// Makes the chroot if missing, then brings its kernel to the version
/// trixie's `linux-headers-amd64` names. Serialized between concurrent runs
/// (several developers' sessions share a machine) by a lock file.
fn prepare() -> Result<PathBuf> {
    if output(Command::new("id").arg("-u"))?.trim() != "0" {
        return Err("the 6.12 kernel line needs root (debootstrap, chroot)".into());
    }
    let cache = cache_dir();
    fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let lock = fs::File::create(cache.join(format!("{SUITE}.lock")))
        .map_err(|e| format!("{}: {e}", cache.display()))?;
    lock.lock()
        .map_err(|e| format!("locking the {SUITE} cache: {e}"))?;

    let root = root_dir();
    if !root.join(READY).exists() {
        bootstrap(&root)?;
    }
    // The archive moves (security updates): follow it, but keep working
    // offline with what the cache has.
    let ready = fs::read_to_string(root.join(READY)).unwrap_or_default();
    match current_kernel(&root) {
        Ok(v) if ready.trim() == v => {}
        Ok(v) => install_kernel(&root, &v)?,
        Err(e) if !ready.trim().is_empty() => {
            eprintln!("trixie: cannot refresh the package lists ({e}); using kernel {ready}");
        }
        Err(e) => return Err(e),
    }
    Ok(root)
}

/// `debootstrap --variant=minbase` of trixie with [`PACKAGES`], into a
/// temporary directory renamed into place when complete.
fn bootstrap(root: &Path) -> Result {
    let t0 = Instant::now();
    let tmp = root.with_extension("tmp");
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    }
    let mirror = mirror();
    println!(
        "trixie: debootstrap into {} (once per machine, about a minute)",
        root.display()
    );
    let log = tmp.with_extension("log");
    let status = Command::new("debootstrap")
        .args(["--variant=minbase", "--include"])
        .arg(PACKAGES.join(","))
        .arg(SUITE)
        .arg(&tmp)
        .arg(&mirror)
        .stdin(std::process::Stdio::null())
        .stdout(fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?)
        .stderr(std::process::Stdio::inherit())
        .status()
        .map_err(|e| format!("debootstrap (`cargo xtask setup` installs it): {e}"))?;
    if !status.success() {
        return Err(format!(
            "debootstrap {SUITE} failed ({status}); see {} and {}/debootstrap/debootstrap.log",
            log.display(),
            tmp.display()
        ));
    }
    let security = mirror.replace("/debian", "/debian-security");
    fs::write(
        tmp.join("etc/apt/sources.list"),
        format!(
            "deb {mirror} {SUITE} main\n\
             deb {mirror} {SUITE}-updates main\n\
             deb {security} {SUITE}-security main\n"
        ),
    )
    .map_err(|e| format!("sources.list: {e}"))?;
    // Name resolution for apt inside the chroot.
    let _ = fs::copy("/etc/resolv.conf", tmp.join("etc/resolv.conf"));
    // Clear any previous root (an older, incomplete or stale one).
    if root.exists() {
        fs::remove_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
    }
    fs::rename(&tmp, root).map_err(|e| format!("{}: {e}", root.display()))?;
    let _ = fs::remove_file(&log);
    fs::write(root.join(READY), "").map_err(|e| format!("{READY}: {e}"))?;
    println!("trixie: chroot made in {:.0} s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// The machine's Debian mirror (from its apt sources), else deb.debian.org.
fn mirror() -> String {
    let sources = fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
        .or_else(|_| fs::read_to_string("/etc/apt/sources.list"))
        .unwrap_or_default();
    sources
        .split_whitespace()
        .find(|w| w.starts_with("http") && w.trim_end_matches('/').ends_with("/debian"))
        .map(|w| w.trim_end_matches('/').to_string())
        .unwrap_or_else(|| "http://deb.debian.org/debian".into())
}

/// `apt-get update` in the chroot, then the kernel version trixie's
/// `linux-headers-amd64` depends on.
fn current_kernel(root: &Path) -> Result<String> {
    output(&mut command(root, &[], &["apt-get", "-q", "update"]))?;
    let deps = output(&mut command(
        root,
        &[],
        &["apt-cache", "depends", "linux-headers-amd64"],
    ))?;
    deps.lines()
        .find_map(|l| l.trim().strip_prefix("Depends: linux-headers-"))
        .map(str::to_string)
        .ok_or_else(|| {
            format!("{SUITE}'s linux-headers-amd64 depends on no linux-headers-*: {deps}")
        })
}

/// Downloads kernel `version`'s image, headers and kbuild, unpacks them
/// into the chroot (removing older kernels), runs depmod.
fn install_kernel(root: &Path, version: &str) -> Result {
    let t0 = Instant::now();
    println!("trixie: fetching kernel {version}");
    // The headers package names the exact common-headers and kbuild ones.
    let deps = output(&mut command(
        root,
        &[],
        &["apt-cache", "depends", &format!("linux-headers-{version}")],
    ))?;
    let mut packages = vec![
        format!("linux-image-{version}"),
        format!("linux-headers-{version}"),
    ];
    for l in deps.lines().map(str::trim) {
        if let Some(p) = l.strip_prefix("Depends: ")
            && (p.starts_with("linux-headers-") || p.starts_with("linux-kbuild-"))
        {
            packages.push(p.to_string());
        }
    }
    let debs = "/var/cache/netmap-rs-kernel";
    let script = format!(
        "set -e\nrm -rf {debs} && mkdir -p {debs} && cd {debs}\n\
         apt-get -q -o APT::Sandbox::User=root download {}\n\
         rm -rf /usr/src/linux-headers-* /usr/src/linux-kbuild-* /usr/lib/linux-kbuild-* \
         /usr/lib/modules/* /boot/vmlinuz-* /boot/config-* /boot/System.map-*\n\
         for d in *.deb; do dpkg -x \"$d\" /; done\n\
         depmod {version}\n\
         rm -rf {debs}\n",
        packages.join(" ")
    );
    run_cmd(&mut command(root, &[], &["sh", "-c", &script]))?;
    fs::write(root.join(READY), version).map_err(|e| format!("{READY}: {e}"))?;
    println!(
        "trixie: kernel {version} unpacked in {:.0} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `argv` run as root inside the chroot at `root`, in a private mount
/// namespace with `/dev`, `/proc` and the `binds` (host directory, absolute
/// directory in the chroot, created if missing) mounted.
pub fn command(root: &Path, binds: &[(&Path, &str)], argv: &[&str]) -> Command {
    namespaced(root, None, binds, argv)
}

/// Like [`command`], in an overlay over the chroot at `root`: what `argv`
/// changes goes to `upper` (`work`: overlayfs' work directory, on the same
/// file system) and the chroot stays as it was.
pub fn overlay_command(
    root: &Path,
    upper: &Path,
    work: &Path,
    binds: &[(&Path, &str)],
    argv: &[&str],
) -> Command {
    namespaced(root, Some((upper, work)), binds, argv)
}

fn namespaced(
    root: &Path,
    overlay: Option<(&Path, &Path)>,
    binds: &[(&Path, &str)],
    argv: &[&str],
) -> Command {
    let mut script = String::from("set -e\nr=\"$1\"; shift\n");
    if overlay.is_some() {
        script.push_str(
            "m=\"$NM_UPPER.merged\"; mkdir -p \"$m\"\n\
             mount -t overlay overlay -o \"lowerdir=$r,upperdir=$NM_UPPER,workdir=$NM_WORK\" \"$m\"\n\
             r=\"$m\"\n",
        );
    }
    script.push_str("mount --rbind /dev \"$r/dev\"\nmount -t proc proc \"$r/proc\"\n");
    for (i, (_, guest)) in binds.iter().enumerate() {
        script.push_str(&format!(
            "mkdir -p \"$r{guest}\"\nmount --bind \"$NM_BIND{i}\" \"$r{guest}\"\n"
        ));
    }
    script.push_str("exec chroot \"$r\" \"$@\"\n");
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
        "sh",
    ])
    .arg(root)
    .args(argv)
    .env("DEBIAN_FRONTEND", "noninteractive")
    .env("LC_ALL", "C.UTF-8")
    .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    if let Some((upper, work)) = overlay {
        cmd.env("NM_UPPER", upper).env("NM_WORK", work);
    }
    for (i, (host, _)) in binds.iter().enumerate() {
        cmd.env(format!("NM_BIND{i}"), host);
    }
    cmd
}
