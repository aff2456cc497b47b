//! `cargo xtask dkms`: the Debian packages of netmap-rs, and their CI test.
//!
//! * `netmap-rs-dkms` (amd64): the module's sources under
//!   `/usr/src/netmap-rs-$VERSION` (os/linux's C glue, Kbuild and Makefile,
//!   the kernel crate, core/ and uapi/, the crates.io dependencies vendored
//!   in `vendor/`) with a `dkms.conf`, so DKMS builds the module from source
//!   for every kernel that has its headers, with the Rust toolchain the
//!   package depends on (Debian's rustc-web, cargo-web, rust-web-src: in
//!   bookworm and in trixie; the build needs `-Zbuild-std` and thus the
//!   library source). The postinst creates the system group `netmap`; a
//!   udev rule gives it `/dev/netmap` (0660).
//! * `netmap-rs-tools` (amd64): pkt-gen, vale-ctl and bridge (installed as
//!   `netmap-bridge`: iproute2 has a `bridge` in root's PATH), statically
//!   linked, with man pages made by help2man from their `--help`.
//!
//! [`test`] (stage `dkms` of `cargo xtask test`) installs both in the trixie
//! chroot (an overlay over it, thrown away afterwards), checks that DKMS
//! built and installed the module for the chroot's 6.12 kernel, boots that
//! kernel with the DKMS-built module and runs `modprobe netmap` and the
//! packaged pkt-gen, then purges the packages and checks that no file is
//! left behind (the group `netmap` stays, as Debian packages leave their
//! system groups; groupadd's backups `/etc/group-` & co. are not counted).

use crate::module::Line;
use crate::util::{Result, output, output_log, root, run_cmd};
use crate::vm::{self, BootOpts, MARK};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The DKMS module name (also the directory under /usr/src).
const DKMS_NAME: &str = "netmap-rs";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What goes into /usr/src/netmap-rs-$VERSION (the DKMS build's tree), as
/// repository paths; os/linux/Makefile finds core/ and uapi/ at ../../.
const DKMS_SOURCES: &[&str] = &[
    "Cargo.toml",
    "LICENSE",
    "uapi",
    "core",
    "os/linux/Makefile",
    "os/linux/Kbuild",
    "os/linux/glue.c",
    "os/linux/netmap_native.h",
    "os/linux/rust",
];

/// The udev rule: `/dev/netmap` belongs to group `netmap`, mode 0660.
const UDEV_RULE: &str = "# netmap-rs: /dev/netmap for the members of group netmap.\n\
    KERNEL==\"netmap\", SUBSYSTEM==\"misc\", GROUP=\"netmap\", MODE=\"0660\"\n";

/// The tools: (workspace package, installed name, man page NAME line).
const TOOLS: &[(&str, &str, &str)] = &[
    (
        "pkt-gen",
        "pkt-gen",
        "send or receive packets on a netmap port",
    ),
    (
        "vale-ctl",
        "vale-ctl",
        "manage VALE switches and their ports",
    ),
    (
        "bridge",
        "netmap-bridge",
        "forward packets between two netmap ports",
    ),
];

/// Where the packages are written.
fn out_dir() -> PathBuf {
    root().join("target/dkms")
}

/// `cargo xtask dkms`: builds both packages and returns their paths.
pub fn run() -> Result<Vec<PathBuf>> {
    let t0 = Instant::now();
    // Only what packaging needs (not all of `cargo xtask setup`).
    let missing: Vec<&str> = [("dpkg-deb", "dpkg-dev"), ("help2man", "help2man")]
        .into_iter()
        .filter(|(cmd, _)| !crate::util::succeeds(Command::new(cmd).arg("--version")))
        .map(|(_, package)| package)
        .collect();
    if !missing.is_empty() {
        return Err(format!("apt-get install {}", missing.join(" ")));
    }
    let out = out_dir();
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let debs = vec![build_dkms_deb(&out)?, build_tools_deb(&out)?];
    for d in &debs {
        println!("{}", d.display());
    }
    eprintln!(
        "dkms: packages built in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(debs)
}

/// A fresh staging directory `out/name`.
fn staging(out: &Path, name: &str) -> Result<PathBuf> {
    let dir = out.join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    fs::create_dir_all(dir.join("DEBIAN")).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

fn write(path: &Path, data: &str, mode: u32) -> Result {
    use std::os::unix::fs::PermissionsExt;
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    fs::write(path, data).map_err(|e| format!("{}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `dpkg-deb --build` of `dir` into `out/<package>_<version>_amd64.deb`.
fn dpkg_deb(dir: &Path, out: &Path, package: &str) -> Result<PathBuf> {
    let deb = out.join(format!("{package}_{VERSION}_amd64.deb"));
    run_cmd(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(dir)
            .arg(&deb)
            .stdout(std::process::Stdio::null()),
    )?;
    Ok(deb)
}

/// The files of `paths` (repository paths) that git tracks or would track.
fn source_files(paths: &[&str]) -> Result<Vec<String>> {
    let list = output(
        Command::new("git")
            .arg("-C")
            .arg(root())
            .args([
                "ls-files",
                "--cached",
                "--others",
                "--exclude-standard",
                "--",
            ])
            .args(paths),
    )?;
    Ok(list
        .lines()
        .filter(|f| root().join(f).is_file())
        .map(str::to_string)
        .collect())
}

fn build_dkms_deb(out: &Path) -> Result<PathBuf> {
    let package = "netmap-rs-dkms";
    let dir = staging(out, package)?;
    let src = dir.join(format!("usr/src/{DKMS_NAME}-{VERSION}"));
    for f in source_files(DKMS_SOURCES)? {
        let to = src.join(&f);
        fs::create_dir_all(to.parent().unwrap_or(&src))
            .map_err(|e| format!("{}: {e}", to.display()))?;
        fs::copy(root().join(&f), &to).map_err(|e| format!("{f}: {e}"))?;
    }
    // The kernel crate's crates.io dependencies: the DKMS build is offline.
    run_cmd(
        crate::util::cargo()
            .args(["vendor", "--quiet", "--versioned-dirs", "--manifest-path"])
            .arg(root().join("os/linux/rust/Cargo.toml"))
            .arg(src.join("vendor"))
            .stdout(std::process::Stdio::null()),
    )?;
    write(
        &src.join("dkms.conf"),
        &format!(
            "# DKMS: build netmap.ko from source for each kernel (see os/linux/Makefile).\n\
             PACKAGE_NAME=\"{DKMS_NAME}\"\n\
             PACKAGE_VERSION=\"{VERSION}\"\n\
             BUILT_MODULE_NAME[0]=\"netmap\"\n\
             BUILT_MODULE_LOCATION[0]=\"os/linux/\"\n\
             DEST_MODULE_LOCATION[0]=\"/updates/dkms\"\n\
             MAKE[0]=\"make -C os/linux KDIR=${{kernel_source_dir}} KVER=${{kernelver}}\"\n\
             CLEAN=\"rm -rf os/linux/rust_lib.o_shipped target\"\n\
             BUILD_EXCLUSIVE_ARCH=\"x86_64\"\n\
             AUTOINSTALL=\"yes\"\n"
        ),
        0o644,
    )?;
    write(
        &dir.join("usr/lib/udev/rules.d/60-netmap.rules"),
        UDEV_RULE,
        0o644,
    )?;
    control(
        &dir,
        package,
        "Section: kernel\n\
         Depends: dkms (>= 3), rustc-web, cargo-web, rust-web-src, make, gcc, binutils, passwd\n\
         Recommends: linux-headers-amd64\n",
        "netmap and the VALE switch in Rust (DKMS sources)\n \
         The netmap.ko kernel module of netmap-rs (/dev/netmap, netmap API 14),\n \
         built by DKMS from source for each installed kernel with Debian's\n \
         rustc-web toolchain. Members of group netmap may use /dev/netmap.",
    )?;
    // What dh_dkms would write: build for the installed kernels on
    // configure, remove from every kernel before the files go.
    write(
        &dir.join("DEBIAN/postinst"),
        &format!(
            "#!/bin/sh\nset -e\n\
             if [ \"$1\" = configure ]; then\n\
             \tgetent group netmap >/dev/null || groupadd --system netmap\n\
             \t/usr/lib/dkms/common.postinst {DKMS_NAME} {VERSION} \"\" \"\" \"$2\"\n\
             fi\n"
        ),
        0o755,
    )?;
    write(
        &dir.join("DEBIAN/prerm"),
        &format!(
            "#!/bin/sh\nset -e\n\
             if [ \"$1\" = remove ] || [ \"$1\" = upgrade ] || [ \"$1\" = deconfigure ]; then\n\
             \tif [ \"$(dkms status -m {DKMS_NAME} -v {VERSION})\" ]; then\n\
             \t\tdkms remove -m {DKMS_NAME} -v {VERSION} --all\n\
             \tfi\n\
             fi\n"
        ),
        0o755,
    )?;
    dpkg_deb(&dir, out, package)
}

/// The copyright file and `DEBIAN/control` (`fields`: lines of its own).
fn control(dir: &Path, package: &str, fields: &str, description: &str) -> Result {
    copyright(dir, package)?;
    write(
        &dir.join("DEBIAN/control"),
        &format!(
            "Package: {package}\n\
             Version: {VERSION}\n\
             Architecture: amd64\n\
             Maintainer: netmap-rs authors <netmap-rs@localhost>\n\
             Priority: optional\n\
             {fields}\
             Description: {description}\n"
        ),
        0o644,
    )
}

fn copyright(dir: &Path, package: &str) -> Result {
    let license =
        fs::read_to_string(root().join("LICENSE")).map_err(|e| format!("LICENSE: {e}"))?;
    write(
        &dir.join(format!("usr/share/doc/{package}/copyright")),
        &format!("netmap-rs, BSD-2-Clause:\n\n{license}"),
        0o644,
    )
}

fn build_tools_deb(out: &Path) -> Result<PathBuf> {
    let package = "netmap-rs-tools";
    let dir = staging(out, package)?;
    let packages: Vec<&str> = TOOLS.iter().map(|t| t.0).collect();
    // Static: the package runs on any Debian release.
    let bins = vm::build_guest_programs(&packages)?;
    // Reproducible man page dates: the last commit's.
    let epoch =
        output(
            Command::new("git")
                .arg("-C")
                .arg(root())
                .args(["log", "-1", "--format=%ct"]),
        )
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "0".into());
    for ((_, name, what), bin) in TOOLS.iter().zip(&bins) {
        let to = dir.join("usr/bin").join(name);
        fs::create_dir_all(to.parent().unwrap_or(&dir)).map_err(|e| format!("{e}"))?;
        fs::copy(bin, &to).map_err(|e| format!("{}: {e}", bin.display()))?;
        // The release profile keeps debug info (profiling); the package does not.
        run_cmd(Command::new("strip").arg(&to))?;
        let man = output(
            Command::new("help2man")
                .args(["--no-info", "--section=8", "--version-string", VERSION])
                .arg(format!("--name={what}"))
                .arg(&to)
                .env("SOURCE_DATE_EPOCH", &epoch),
        )
        .map_err(|e| format!("help2man (`cargo xtask setup` installs it): {e}"))?;
        // help2man names the page after the file; the help text after the crate.
        let page = dir.join(format!("usr/share/man/man8/{name}.8"));
        write(&page, &man, 0o644)?;
        run_cmd(Command::new("gzip").args(["-9n"]).arg(&page))?;
    }
    control(
        &dir,
        package,
        "Section: net\nRecommends: netmap-rs-dkms\n",
        "netmap-rs tools: pkt-gen, vale-ctl, netmap-bridge\n \
         The netmap tools for netmap-rs (/dev/netmap, netmap API 14): the packet\n \
         generator pkt-gen, vale-ctl for VALE switches, and netmap-bridge (the\n \
         reference's bridge, renamed: iproute2 has a bridge command).",
    )?;
    dpkg_deb(&dir, out, package)
}

/// Guest time limit of the modprobe check.
const GUEST_TIMEOUT: Duration = Duration::from_secs(240);

/// The CI test of the packages (stage `dkms`), in the trixie chroot.
pub fn test() -> Result {
    let debs = run()?;
    let kernel = Line::Trixie.kernel()?;
    let kver = kernel.version.clone();
    let work = out_dir().join(format!("test-{}", std::process::id()));
    let _cleanup = vm::RemoveOnDrop(work.clone());
    for d in ["upper", "work", "pkgs", "result"] {
        fs::create_dir_all(work.join(d)).map_err(|e| format!("{e}"))?;
    }
    for d in &debs {
        let name = d.file_name().ok_or("deb name")?;
        fs::copy(d, work.join("pkgs").join(name)).map_err(|e| format!("{e}"))?;
    }

    // 1. In the chroot (an overlay: the cached chroot stays as it is):
    //    install, check, keep the module for the guest, purge, compare.
    let t0 = Instant::now();
    let script = chroot_script(&kver);
    let mut cmd = crate::trixie::overlay_command(
        &kernel.sysroot,
        &work.join("upper"),
        &work.join("work"),
        &[
            (work.join("pkgs").as_path(), "/mnt/pkgs"),
            (work.join("result").as_path(), "/mnt/result"),
        ],
        &["sh", "-c", &script],
    );
    let (status, log) = output_log(&mut cmd)?;
    let t_chroot = t0.elapsed();
    let mut why = judge_chroot(&log, &kver);
    if !status.success() && why.is_empty() {
        why.push(format!("the chroot script failed ({status})"));
    }

    // 2. The DKMS-built module in a 6.12 guest: modprobe, packaged pkt-gen.
    let t1 = Instant::now();
    if why.is_empty() {
        why.extend(guest_modprobe(&kernel, &work.join("result"))?);
    }
    let t_guest = t1.elapsed();
    println!(
        "dkms: chroot install/build/purge {:.1} s, guest {:.1} s",
        t_chroot.as_secs_f64(),
        t_guest.as_secs_f64()
    );
    if why.is_empty() {
        println!("dkms: OK");
        Ok(())
    } else {
        let lines: Vec<String> = log.lines().map(str::to_string).collect();
        println!("---- chroot log (last 60 lines) ----");
        println!("{}\n----", vm::tail(&lines, 60));
        Err(why.join("; "))
    }
}

/// The chroot script: markers `@@NM <what>` for [`judge_chroot`].
fn chroot_script(kver: &str) -> String {
    format!(
        r#"set -e
snapshot() {{
    find / -xdev \( -path /proc -o -path /dev -o -path /mnt -o -path /tmp -o -path /run \
        -o -path /var/cache -o -path /var/lib/apt -o -path /var/lib/dpkg -o -path /var/log \
        -o -path /var/lib/dkms \) -prune -o -print |
        grep -v -x -e /etc/group- -e /etc/gshadow- -e /etc/passwd- -e /etc/shadow- | sort
}}
snapshot > /tmp/before
apt-get install -y -q --no-install-recommends /mnt/pkgs/netmap-rs-dkms_*.deb /mnt/pkgs/netmap-rs-tools_*.deb
echo "{MARK} installed"
echo "{MARK} status $(dkms status -m {DKMS_NAME} | tr '\n' ' ')"
ko=$(ls /lib/modules/{kver}/updates/dkms/netmap.ko* 2>/dev/null | head -n1)
if [ -n "$ko" ]; then
    echo "{MARK} module $ko"
    echo "{MARK} vermagic $(modinfo -F vermagic "$ko")"
    cp "$ko" /mnt/result/
    cp /lib/modules/{kver}/modules.* /mnt/result/
fi
echo "{MARK} modprobe-dry $(modprobe -n -v -S {kver} netmap 2>&1 | tr '\n' ' ')"
getent group netmap >/dev/null && echo "{MARK} group"
[ -f /usr/lib/udev/rules.d/60-netmap.rules ] && echo "{MARK} udev-rule"
for t in pkt-gen vale-ctl netmap-bridge; do
    [ -f /usr/share/man/man8/$t.8.gz ] && "$t" --help >/dev/null && echo "{MARK} tool $t"
    cp /usr/bin/$t /mnt/result/
done
apt-get purge -y -q netmap-rs-dkms netmap-rs-tools
echo "{MARK} purged"
[ -z "$(dkms status -m {DKMS_NAME})" ] && echo "{MARK} dkms-clean"
snapshot > /tmp/after
if diff /tmp/before /tmp/after; then echo "{MARK} no-leftovers"; fi
"#
    )
}

/// What the chroot log says is wrong (empty: all well).
fn judge_chroot(log: &str, kver: &str) -> Vec<String> {
    let has = |m: &str| log.lines().any(|l| l.trim() == format!("{MARK} {m}"));
    let value = |m: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(&format!("{MARK} {m} ")))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let mut why = Vec::new();
    if !has("installed") {
        why.push("apt-get install of the packages failed".to_string());
        return why;
    }
    let status = value("status");
    if !status.contains(kver) || !status.contains("installed") {
        why.push(format!(
            "dkms status does not show the module installed for {kver}: {status:?}"
        ));
    }
    if !value("module").contains(&format!("/lib/modules/{kver}/updates/dkms/netmap.ko")) {
        why.push(format!(
            "no netmap.ko under /lib/modules/{kver}/updates/dkms"
        ));
    }
    if !value("vermagic").starts_with(&format!("{kver} ")) {
        why.push(format!(
            "module vermagic {:?} is not {kver}'s",
            value("vermagic")
        ));
    }
    if !value("modprobe-dry").contains("updates/dkms/netmap.ko") {
        why.push(format!(
            "modprobe does not find the module: {:?}",
            value("modprobe-dry")
        ));
    }
    if !has("group") {
        why.push("the postinst did not create group netmap".into());
    }
    if !has("udev-rule") {
        why.push("no udev rule for /dev/netmap".into());
    }
    for t in ["pkt-gen", "vale-ctl", "netmap-bridge"] {
        if !has(&format!("tool {t}")) {
            why.push(format!("{t} or its man page missing"));
        }
    }
    if !has("purged") {
        why.push("apt-get purge failed".into());
    } else {
        if !has("dkms-clean") {
            why.push("dkms still lists the module after the purge".into());
        }
        if !has("no-leftovers") {
            why.push("files left behind after the purge (diff in the log)".into());
        }
    }
    why
}

/// Boots `kernel` with the DKMS-built module as
/// `/lib/modules/$KVER/updates/dkms/` and the chroot's `modules.*` index,
/// runs `modprobe netmap`, the packaged pkt-gen over VALE, `modprobe -r`.
fn guest_modprobe(kernel: &crate::module::Kernel, result: &Path) -> Result<Vec<String>> {
    let kver = &kernel.version;
    let mut files = Vec::new();
    for ent in fs::read_dir(result).map_err(|e| format!("{}: {e}", result.display()))? {
        let p = ent.map_err(|e| format!("{e}"))?.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let guest = if name.starts_with("netmap.ko") {
            format!("/lib/modules/{kver}/updates/dkms/{name}")
        } else if name.starts_with("modules.") {
            format!("/lib/modules/{kver}/{name}")
        } else {
            format!("/bin/{name}")
        };
        files.push((p, guest));
    }
    let script = format!(
        "modprobe netmap && echo '{MARK} modprobe-ok'\n\
         [ -c /dev/netmap ] && echo '{MARK} dev-ok'\n\
         pkt-gen -i vale0:b -f rx -n 1000 > /rx.log 2>&1 &\n\
         sleep 1\n\
         pkt-gen -i vale0:a -f tx -n 1000 -l 60 > /tx.log 2>&1\n\
         wait $! && echo '{MARK} pktgen-ok'\n\
         cat /tx.log /rx.log\n\
         modprobe -r netmap && echo '{MARK} unload-ok'\n"
    );
    let out = vm::boot(&BootOpts {
        files,
        script,
        timeout: GUEST_TIMEOUT,
        kernel: Some(kernel.clone()),
        ..BootOpts::default()
    })?;
    let mut why = Vec::new();
    if out.timed_out {
        why.push("the guest hung".to_string());
    }
    for (m, what) in [
        ("modprobe-ok", "modprobe netmap failed in the guest"),
        ("dev-ok", "no /dev/netmap after modprobe"),
        ("pktgen-ok", "pkt-gen over VALE failed with the DKMS module"),
        ("unload-ok", "modprobe -r netmap failed"),
    ] {
        if !out.has_marker(m) {
            why.push(what.to_string());
        }
    }
    let problems = vm::kernel_problems(&out);
    if !problems.is_empty() {
        why.push(format!("kernel problems: {}", problems.join(" | ")));
    }
    if !why.is_empty() {
        println!("---- guest console (last 40 lines) ----");
        println!("{}\n----", vm::tail(&out.lines, 40));
    }
    Ok(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chroot_verdict_needs_every_step() {
        let k = "6.12.1+deb13-amd64";
        let good = format!(
            "{MARK} installed\n\
             {MARK} status netmap-rs/0.1.0, {k}, x86_64: installed\n\
             {MARK} module /lib/modules/{k}/updates/dkms/netmap.ko.xz\n\
             {MARK} vermagic {k} SMP preempt mod_unload modversions\n\
             {MARK} modprobe-dry insmod /lib/modules/{k}/updates/dkms/netmap.ko.xz\n\
             {MARK} group\n{MARK} udev-rule\n\
             {MARK} tool pkt-gen\n{MARK} tool vale-ctl\n{MARK} tool netmap-bridge\n\
             {MARK} purged\n{MARK} dkms-clean\n{MARK} no-leftovers\n"
        );
        assert_eq!(judge_chroot(&good, k), Vec::<String>::new());
        for drop in ["no-leftovers", "group", "tool vale-ctl", "dkms-clean"] {
            let bad = good.replace(&format!("{MARK} {drop}\n"), "");
            assert_eq!(judge_chroot(&bad, k).len(), 1, "{drop}");
        }
        let other = good.replace(&format!("vermagic {k}"), "vermagic 6.1.0-9-amd64");
        assert!(judge_chroot(&other, k)[0].contains("vermagic"));
        assert!(!judge_chroot("", k).is_empty());
    }
}
