//! `cargo xtask setup`: install what a fresh Debian 12 machine needs to build,
//! test and demo netmap-rs. Idempotent, and silent when everything is there.
//!
//! `test` and `demo` call it first, so a developer or CI never runs it by hand
//! except to prepare a machine. Installing needs root (apt-get).

use crate::util::{Result, cargo, output, run_cmd, succeeds};
use std::path::Path;
use std::process::{Command, Stdio};

/// Every Debian package the project needs beyond a stock machine of our kind.
const PACKAGES: &[&str] = &[
    // /usr/bin/rustc 1.96, which can `-Zbuild-std` core/alloc for the kernel
    // target; rustup's stable has no rust-src here (see KERNEL-BUILD.md).
    "rustc-web",
    // /usr/bin/cargo matching rustc-web, for the kernel staticlib build.
    "cargo-web",
    // The standard library's source with a vendor/ folder: offline build-std.
    "rust-web-src",
    // Meta package: pulls the current linux-headers-$KVER for Kbuild.
    "linux-headers-amd64",
    // Meta package: pulls linux-image-$KVER, the guest's kernel and modules.
    "linux-image-amd64",
    // The kernel's source (a tarball in /usr/src): virtio_net.c, copied and
    // hooked into virtio_net_netmap.ko, the native-mode driver (drivers/).
    "linux-source-6.1",
    // qemu-system-x86_64, which boots the guest (TCG).
    "qemu-system-x86",
    // A static busybox: the guest's /init shell and applets.
    "busybox-static",
    // Packs the guest's initramfs.
    "cpio",
    // The full `ip` (veth pairs, namespaces) copied into the guest.
    "iproute2",
    // Unpacks the vmlinux xz stream from the bzImage (lzma) for a faster boot.
    "python3",
    // Runs Kbuild; the kernel headers do not depend on it.
    "make",
    // `xz`: unpacks the vmlinux stream inside the Debian 12 bzImage, and
    // Debian 13's compressed NIC modules.
    "xz-utils",
    // `zstd`: unpacks the vmlinux stream inside the Debian 13 bzImage.
    "zstd",
    // objdump/readelf/ar: the kernel object checks and archive extraction.
    "binutils",
    // Compiles glue.c (Kbuild) and the uapi C layout cross-check.
    "gcc",
    // Makes the Debian 13 chroot whose gcc-14 and kbuild build the module
    // for the second kernel line, 6.12 (ci/xtask/src/trixie.rs).
    "debootstrap",
    // dpkg-deb: builds the netmap-rs-dkms and netmap-rs-tools packages.
    "dpkg-dev",
    // The tools' man pages, from their --help (netmap-rs-tools).
    "help2man",
    // Compiles the FreeBSD module's glue.c for x86_64-unknown-freebsd15, and
    // os/windows/glue.c with SEH (__try/__except).
    "clang",
    // ld.lld -m elf_x86_64_fbsd -r: links the FreeBSD module.
    "lld",
    // llvm-objcopy: localizes the FreeBSD module's symbols (binutils'
    // objcopy here has no FreeBSD ELF target).
    "llvm",
    // Concurrency Kit headers, which FreeBSD's net/if_var.h includes.
    "libck-dev",
    // pip installs the ziglang wheel (FreeBSD 15 headers, the FreeBSD
    // examples' linker) into ~/.cache/netmap-rs.
    "python3-pip",
    // Windows: mingw-w64 gcc/binutils link netmap.sys and the examples
    // (import libraries libntoskrnl.a, libndis.a, libhal.a, objdump -p).
    "mingw-w64",
    // Windows: test-signs netmap.sys and verifies the signature.
    "osslsigncode",
    // Windows: the test certificate (openssl req -x509).
    "openssl",
    // Windows: runs the examples' .exe in the windows stage.
    "wine",
    "wine64",
];

/// The meta package whose dependency names the kernel version in use.
const HEADERS_META: &str = "linux-headers-amd64";

pub fn run() -> Result {
    let missing = missing_packages()?;
    if !missing.is_empty() {
        install(&missing)?;
        let still = missing_packages()?;
        if !still.is_empty() {
            return Err(format!(
                "apt-get finished but these are still not installed: {}",
                still.join(" ")
            ));
        }
    }
    check_kernel_files()?;
    check_rust_components()?;
    crate::kld::ensure_ziglang()?;
    if !nextest_present() {
        println!("setup: cargo-nextest not found; `cargo xtask test` will use `cargo test`");
    }
    Ok(())
}

/// The packages of [`PACKAGES`] that dpkg does not report as installed.
fn missing_packages() -> Result<Vec<&'static str>> {
    if !succeeds(Command::new("dpkg-query").arg("--version")) {
        return Err("dpkg-query not found: `cargo xtask setup` supports Debian only".into());
    }
    Ok(PACKAGES.iter().copied().filter(|p| !installed(p)).collect())
}

fn installed(package: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_ok_and(|s| s.trim() == "install ok installed")
}

/// `apt-get update` once, then install `packages`.
fn install(packages: &[&str]) -> Result {
    let apt_line = format!(
        "apt-get update && apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    );
    let uid = output(Command::new("id").arg("-u"))?;
    if uid.trim() != "0" {
        return Err(format!(
            "missing Debian packages: {}; installing them needs root: {apt_line}",
            packages.join(" ")
        ));
    }
    println!("setup: installing {}", packages.join(" "));
    let apt = |args: &[&str]| {
        let mut c = Command::new("apt-get");
        // Wait for a running apt or unattended-upgrades instead of failing.
        c.args(["-q", "-o", "DPkg::Lock::Timeout=600"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null());
        c
    };
    run_cmd(&mut apt(&["update"]))?;
    run_cmd(apt(&["install", "-y", "--no-install-recommends"]).args(packages))
}

/// The kernel version (`KVER`, e.g. `6.1.0-56-amd64`) that the installed
/// `linux-headers-amd64` meta package depends on. Never hard-coded: Debian's
/// security updates move it.
pub fn kernel_version() -> Result<String> {
    let depends = output(Command::new("dpkg-query").args(["-W", "-f=${Depends}", HEADERS_META]))?;
    depends
        .split([',', '|'])
        .map(|d| d.split_whitespace().next().unwrap_or(""))
        .find_map(|name| name.strip_prefix("linux-headers-"))
        .map(str::to_owned)
        .ok_or_else(|| format!("{HEADERS_META} depends on no linux-headers-*: `{depends}`"))
}

/// The versioned packages must have put the headers and the kernel in place.
fn check_kernel_files() -> Result {
    let kver = kernel_version()?;
    for path in [
        format!("/usr/src/linux-headers-{kver}/Makefile"),
        format!("/boot/vmlinuz-{kver}"),
        format!("/lib/modules/{kver}/modules.dep"),
    ] {
        if !Path::new(&path).exists() {
            return Err(format!(
                "{path} is missing; reinstall: apt-get install --reinstall \
                 linux-headers-{kver} linux-image-{kver}"
            ));
        }
    }
    Ok(())
}

/// rustfmt and clippy in the rustup toolchain that runs `cargo xtask`, and
/// the standard library of the cross targets of `cargo xtask examples`.
fn check_rust_components() -> Result {
    let present = |sub: &str| succeeds(cargo().args([sub, "--version"]));
    if !(present("fmt") && present("clippy")) {
        println!("setup: adding rustfmt and clippy to the rustup toolchain");
        run_cmd(Command::new("rustup").args(["component", "add", "rustfmt", "clippy"]))?;
    }
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    let missing: Vec<&str> = crate::examples::TARGETS
        .iter()
        .map(|t| t.triple)
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("setup: adding the rustup targets {}", missing.join(" "));
    run_cmd(
        Command::new("rustup")
            .args(["target", "add"])
            .args(&missing),
    )
}

/// Whether `cargo nextest` works (it is preinstalled on our machines).
pub fn nextest_present() -> bool {
    succeeds(cargo().args(["nextest", "--version"]))
}

/// Whether everything the kernel-side stages need is installed, checked
/// without printing anything.
pub fn kernel_toolchain_present() -> bool {
    missing_packages().is_ok_and(|m| m.is_empty())
        && check_kernel_files().is_ok()
        && Path::new("/usr/lib/rustlib/src/rust/library/vendor").is_dir()
}

#[cfg(test)]
mod tests {
    use super::PACKAGES;

    #[test]
    fn packages_are_unique_and_plain_names() {
        for (i, p) in PACKAGES.iter().enumerate() {
            assert!(!PACKAGES[..i].contains(p), "{p} listed twice");
            assert!(
                p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c)),
                "{p} is not a plain Debian package name"
            );
        }
    }
}
