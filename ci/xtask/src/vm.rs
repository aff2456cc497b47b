//! `cargo xtask vm-test`: boot a QEMU guest with netmap.ko and run the
//! guest tests (os/linux/tests) in it.
//!
//! Pieces, reusable by other tasks (the demo uses [`boot_script`]):
//! * [`build_guest_programs`]: static (`crt-static`) test programs;
//! * [`boot`]: builds an initramfs (busybox applets, `ip` from iproute2 as
//!   `/sbin/ip.full` with its libraries, NIC/veth/tun modules, the caller's
//!   files and script), extracts the uncompressed vmlinux from the Debian
//!   bzImage once, boots `qemu-system-x86_64 -accel tcg`, streams the serial
//!   console, kills the guest on timeout;
//! * [`kernel_problems`]: BUG/Oops/WARNING/panic/Call Trace lines.
//!
//! The guest's `/init` mounts proc/sys/dev/debugfs/tmp, optionally loads the
//! NIC modules, runs the caller's script with `sh`, dumps `dmesg` between
//! markers and powers off. Marker lines start with [`MARK`].

use crate::module::{self, Kernel, Line};
use crate::util::{Result, cargo, output, root, run_cmd};
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Prefix of the lines the guest's /init and the test script print.
pub const MARK: &str = "@@NM";

/// Guest programs are built here (shared with the demo's pkt-gen build: the
/// crt-static RUSTFLAGS must not invalidate the host build).
pub const GUEST_TARGET_DIR: &str = "target/guest";
const HOST_TRIPLE: &str = "x86_64-unknown-linux-gnu";
const GUEST_TESTS_PACKAGE: &str = "nm-guest-tests";
/// The example programs the guest tests drive (os/linux/tests/src/tools.rs),
/// installed as `/bin/<name>`.
pub const GUEST_TOOL_PACKAGES: &[&str] = &["pkt-gen", "vale-ctl", "bridge"];

/// NIC modules put in the initramfs (with their dependencies), loaded when
/// [`BootOpts::nics`] is set: the QEMU NICs plus veth and tun for the
/// emulated-adapter tests, and the `plug` qdisc (holds transmitted frames
/// until released: the TX completion test). Those built into the guest's
/// kernel (`modules.builtin`: virtio_pci on 6.12) are skipped.
const NIC_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_net",
    "e1000",
    "veth",
    "tun",
    "sch_plug",
];

/// Guest kernel command line: quiet boot (/init raises the console log
/// level once the guest is up), and every kind of kernel hang turned into a
/// panic (which powers the guest off: `panic=-1` with QEMU `-no-reboot`),
/// so a stuck test fails in seconds with its stack trace on the console
/// instead of running into the harness timeout.
const KERNEL_CMDLINE: &str = "console=ttyS0 panic=-1 quiet oops=panic softlockup_panic=1 \
    sysctl.kernel.hung_task_timeout_secs=30 sysctl.kernel.hung_task_panic=1 \
    sysctl.kernel.panic_on_rcu_stall=1";

/// Default time limit of a vm-test guest run (boot ≈ 4 s in TCG).
const VM_TEST_TIMEOUT: Duration = Duration::from_secs(600);

/// What to boot.
#[derive(Debug, Clone)]
pub struct BootOpts {
    /// Extra files for the initramfs: (host path, absolute guest path).
    pub files: Vec<(PathBuf, String)>,
    /// Shell script /init runs (busybox sh, as root, cwd /).
    pub script: String,
    /// Kill the guest after this long.
    pub timeout: Duration,
    /// Two NICs (e1000 and virtio-net) on one QEMU hub, NIC modules loaded.
    pub nics: bool,
    /// Guest memory (netmap's default global pools take ~343 MB).
    pub mem_mb: u32,
    #[allow(dead_code)] // read by boot(), API for other tasks
    /// Echo every console line to stdout as it arrives (else nothing is
    /// printed; the caller decides).
    pub echo: bool,
    /// The guest's kernel (its image and NIC modules); `None`: Debian 12's.
    pub kernel: Option<Kernel>,
    /// With `nics`: a second virtio-net NIC on the hub (native-mode tests).
    pub second_virtio: bool,
}

impl Default for BootOpts {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            script: String::new(),
            timeout: Duration::from_secs(300),
            nics: false,
            mem_mb: 2048,
            echo: false,
            kernel: None,
            second_virtio: false,
        }
    }
}

/// What the guest printed.
#[derive(Debug, Clone, Default)]
pub struct GuestOutput {
    /// Every console line (CR stripped).
    pub lines: Vec<String>,
    /// The guest was killed by the timeout.
    pub timed_out: bool,
    /// /init reached its poweroff marker.
    pub powered_off: bool,
    /// From QEMU start to exit (or kill).
    pub elapsed: Duration,
}

impl GuestOutput {
    /// The console as one string.
    #[allow(dead_code)] // API for other tasks (demo.rs)
    pub fn console(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }

    /// Lines between the dmesg markers (the complete kernel log).
    pub fn dmesg(&self) -> &[String] {
        let begin = self
            .lines
            .iter()
            .position(|l| l == &format!("{MARK} dmesg-begin"));
        let end = self
            .lines
            .iter()
            .position(|l| l == &format!("{MARK} dmesg-end"));
        match (begin, end) {
            (Some(b), Some(e)) if b < e => &self.lines[b + 1..e],
            (Some(b), None) => &self.lines[b + 1..],
            _ => &[],
        }
    }

    /// Whether a marker line `@@NM <what>` was printed.
    pub fn has_marker(&self, what: &str) -> bool {
        let m = format!("{MARK} {what}");
        self.lines.iter().any(|l| l.trim() == m)
    }
}

/// The boot the demo uses (`demo.rs` `GuestBoot`): `files` (host path, guest path) in the
/// initramfs, `script` run as root, returns the serial console.
pub fn boot_script(files: &[(&Path, &str)], script: &str, timeout: Duration) -> Result<String> {
    boot_script_with(files, script, timeout, false)
}

/// [`boot_script`] with the QEMU NICs (and their modules loaded).
pub fn boot_script_nics(
    files: &[(&Path, &str)],
    script: &str,
    timeout: Duration,
) -> Result<String> {
    boot_script_with(files, script, timeout, true)
}

fn boot_script_with(
    files: &[(&Path, &str)],
    script: &str,
    timeout: Duration,
    nics: bool,
) -> Result<String> {
    let opts = BootOpts {
        files: files
            .iter()
            .map(|(h, g)| (h.to_path_buf(), g.to_string()))
            .collect(),
        script: script.to_string(),
        timeout,
        nics,
        second_virtio: nics,
        ..BootOpts::default()
    };
    let out = boot(&opts)?;
    if out.timed_out {
        return Err(format!(
            "guest killed after {} s; console ended with:\n{}",
            timeout.as_secs(),
            tail(&out.lines, 30)
        ));
    }
    Ok(out.console())
}

/// Where the guest finds the netmap-aware virtio-net driver (if built).
pub const NATIVE_KO: &str = "/lib/modules/virtio_net_netmap.ko";

/// `cargo xtask vm-test [--kernel LINE]`: the same tests on each kernel line.
pub fn run(line: Line) -> Result {
    let t0 = Instant::now();
    let kernel = line.kernel()?;
    let ko = module::build(&kernel)?;
    // The netmap-aware virtio-net driver (drivers/), for the native tests.
    let native_ko = crate::drivers::build_virtio_net(&kernel, &ko)?;
    let t_module = t0.elapsed();
    let mut packages = vec![GUEST_TESTS_PACKAGE];
    packages.extend_from_slice(GUEST_TOOL_PACKAGES);
    let mut programs = build_guest_programs(&packages)?;
    let tools = programs.split_off(1);
    let tests = programs.remove(0);
    let timeout = std::env::var("NM_VM_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(VM_TEST_TIMEOUT, Duration::from_secs);
    let filter = std::env::var("NM_TESTS").unwrap_or_default();
    // The stress test's knobs reach the guest's environment.
    let mut exports = String::new();
    for var in ["NM_STRESS_SEED", "NM_STRESS_SECS"] {
        if let Ok(v) = std::env::var(var)
            && v.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            exports.push_str(&format!("export {var}={v}\n"));
        }
    }
    let script = format!(
        "{exports}echo '{MARK} insmod'\n\
         insmod /lib/modules/netmap.ko || {{ echo '{MARK} insmod-failed'; exit 1; }}\n\
         echo '{MARK} insmod-ok'\n\
         /bin/nm-guest-tests {filter}\n\
         echo \"{MARK} tests-rc $?\"\n\
         rmmod virtio_net_netmap 2>/dev/null\n\
         if rmmod netmap; then echo '{MARK} rmmod-ok'; else echo '{MARK} rmmod-failed'; fi\n"
    );
    let opts = BootOpts {
        files: vec![
            (ko, "/lib/modules/netmap.ko".into()),
            (tests, "/bin/nm-guest-tests".into()),
        ]
        .into_iter()
        .chain([(native_ko, NATIVE_KO.to_string())])
        .chain(
            tools
                .into_iter()
                .zip(GUEST_TOOL_PACKAGES)
                .map(|(p, name)| (p, format!("/bin/{name}"))),
        )
        .collect(),
        script,
        timeout,
        nics: true,
        echo: false,
        kernel: Some(kernel.clone()),
        // The native tests' second virtio-net NIC, where the native driver
        // is in the guest (os/linux/tests/src/native.rs).
        second_virtio: true,
        ..BootOpts::default()
    };
    println!(
        "vm-test: booting the guest, kernel {} (timeout {} s)",
        kernel.version,
        timeout.as_secs()
    );
    let verbose = std::env::var_os("NM_VM_VERBOSE").is_some();
    let out = boot_with(&opts, |line| {
        // Test results and markers live; the kernel log only on failure
        // (or with NM_VM_VERBOSE set).
        if verbose || is_test_line(line) || (line.starts_with(MARK) && !line.contains("dmesg")) {
            println!("{line}");
        }
    })?;
    let verdict = judge(&out);
    println!(
        "vm-test: module build {:.1} s, guest {:.1} s (boot to poweroff), total {:.1} s",
        t_module.as_secs_f64(),
        out.elapsed.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    if let Err(e) = &verdict {
        let dmesg = out.dmesg();
        let shown = if dmesg.is_empty() {
            &out.lines[..]
        } else {
            dmesg
        };
        println!(
            "---- guest {} (last 80 lines) ----",
            if dmesg.is_empty() { "console" } else { "dmesg" }
        );
        println!("{}", tail(shown, 80));
        println!("----");
        return Err(e.clone());
    }
    println!("vm-test: OK");
    Ok(())
}

/// The verdict of a vm-test run.
fn judge(out: &GuestOutput) -> Result {
    let mut why = Vec::new();
    if out.timed_out {
        why.push("the guest hung (killed by the timeout)".to_string());
    }
    if out.has_marker("insmod-failed") || !out.has_marker("insmod-ok") {
        why.push("insmod netmap.ko failed".into());
    }
    let summary = out.lines.iter().rev().find_map(|l| parse_summary(l));
    match summary {
        None => why.push("the test runner printed no summary".into()),
        Some((_, failed)) if failed > 0 => {
            let names: Vec<&str> = out
                .lines
                .iter()
                .filter_map(|l| l.strip_prefix("FAIL "))
                .map(|l| l.split(':').next().unwrap_or(l))
                .collect();
            why.push(format!("{failed} test(s) failed: {}", names.join(", ")));
        }
        Some((0, 0)) => why.push("no test ran".into()),
        Some(_) => {}
    }
    if !out.timed_out && !out.has_marker("rmmod-ok") {
        why.push("rmmod netmap failed".into());
    }
    let problems = kernel_problems(out);
    if !problems.is_empty() {
        why.push(format!("kernel problems: {}", problems.join(" | ")));
    }
    if !out.timed_out && !out.powered_off {
        why.push("the guest did not reach poweroff".into());
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(why.join("; "))
    }
}

/// `N passed, M failed` → (N, M).
fn parse_summary(line: &str) -> Option<(u64, u64)> {
    let (p, rest) = line.trim().split_once(" passed, ")?;
    let f = rest.strip_suffix(" failed")?;
    Some((p.parse().ok()?, f.parse().ok()?))
}

fn is_test_line(l: &str) -> bool {
    l.starts_with("PASS ")
        || l.starts_with("FAIL ")
        || l.starts_with("NOTE ")
        || parse_summary(l).is_some()
}

/// Kernel log lines that mean a kernel bug: BUG, Oops, WARNING, panic,
/// Call Trace and friends (from the dmesg dump and from console messages).
pub fn kernel_problems(out: &GuestOutput) -> Vec<String> {
    const PATTERNS: &[&str] = &[
        "BUG:",
        "BUG kmalloc",
        "kernel BUG",
        "Oops",
        "WARNING:",
        "Kernel panic",
        "Call Trace",
        "general protection fault",
        "RIP: ",
        "UBSAN",
        "KASAN",
        "list_add corruption",
        "list_del corruption",
        "refcount_t:",
        "sleeping function called from invalid context",
        "scheduling while atomic",
        "blocked for more than",
        "soft lockup",
        "hard LOCKUP",
        "rcu_sched detected stalls",
        "rcu: INFO",
        "Unknown rela relocation",
        "Unknown symbol",
        "Rust panic",
        "double fault",
    ];
    let mut v: Vec<String> = Vec::new();
    for l in &out.lines {
        if is_test_line(l) || l.starts_with(MARK) {
            continue;
        }
        if PATTERNS.iter().any(|p| l.contains(p)) && !v.iter().any(|x| x == l.trim()) {
            v.push(l.trim().to_string());
        }
    }
    v.truncate(10);
    v
}

/// Builds guest programs (workspace packages) statically for the guest and
/// returns their paths, in order.
pub fn build_guest_programs(packages: &[&str]) -> Result<Vec<PathBuf>> {
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--release",
        "--target",
        HOST_TRIPLE,
        "--target-dir",
        GUEST_TARGET_DIR,
    ]);
    for p in packages {
        cmd.args(["-p", p]);
    }
    cmd.env("RUSTFLAGS", "-C target-feature=+crt-static");
    run_cmd(&mut cmd)?;
    Ok(packages
        .iter()
        .map(|p| {
            root()
                .join(GUEST_TARGET_DIR)
                .join(HOST_TRIPLE)
                .join("release")
                .join(p)
        })
        .collect())
}

/// Boots the guest described by `opts` (see [`BootOpts`]).
#[allow(dead_code)] // API for other tasks (demo.rs)
pub fn boot(opts: &BootOpts) -> Result<GuestOutput> {
    let echo = opts.echo;
    boot_with(opts, |l| {
        if echo {
            println!("{l}");
        }
    })
}

/// Like [`boot`], calling `on_line` for every console line as it arrives.
pub fn boot_with(opts: &BootOpts, mut on_line: impl FnMut(&str)) -> Result<GuestOutput> {
    let k = match &opts.kernel {
        Some(k) => k.clone(),
        None => Kernel::discover()?,
    };
    let dir = root().join(GUEST_TARGET_DIR).join("vm");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let vmlinux = extract_vmlinux(&k, &dir)?;
    // One image per run: concurrent runs (several developers' sessions on
    // one machine) must not boot each other's programs.
    let initrd = dir.join(format!("initramfs-{}.cpio", std::process::id()));
    let image = build_initramfs(&k, opts)?;
    fs::write(&initrd, image).map_err(|e| format!("{}: {e}", initrd.display()))?;
    let _remove = RemoveOnDrop(initrd.clone());

    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", "tcg,thread=multi", "-smp", "2", "-m"])
        .arg(opts.mem_mb.to_string())
        .arg("-kernel")
        .arg(&vmlinux)
        .arg("-initrd")
        .arg(&initrd)
        .arg("-append")
        .arg(KERNEL_CMDLINE)
        .args([
            "-display",
            "none",
            "-serial",
            "stdio",
            "-monitor",
            "none",
            "-no-reboot",
        ]);
    if opts.nics {
        cmd.args([
            "-nic",
            "none",
            "-netdev",
            "hubport,id=p0,hubid=0",
            "-device",
            "e1000,netdev=p0",
            "-netdev",
            "hubport,id=p1,hubid=0",
            "-device",
            "virtio-net-pci,netdev=p1",
        ]);
        if opts.second_virtio {
            // A second virtio-net NIC: native <-> native tests.
            cmd.args([
                "-netdev",
                "hubport,id=p2,hubid=0",
                "-device",
                "virtio-net-pci,netdev=p2",
            ]);
        }
    } else {
        cmd.args(["-nic", "none"]);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start qemu-system-x86_64 (`cargo xtask setup`): {e}"))?;
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().ok_or("no qemu stdout")?;
    let tx2 = tx.clone();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let s = String::from_utf8_lossy(&buf);
                    let s = s.trim_end_matches(['\n', '\r']).replace('\r', "");
                    if tx2.send(s).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let stderr = child.stderr.take().ok_or("no qemu stderr")?;
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });
    drop(tx);

    let mut out = GuestOutput::default();
    let deadline = t0 + opts.timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                on_line(&line);
                if line.trim() == format!("{MARK} poweroff") {
                    out.powered_off = true;
                }
                out.lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                out.timed_out = true;
                // Our own child, by its handle.
                let _ = child.kill();
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait().map_err(|e| format!("waiting for qemu: {e}"))?;
    out.elapsed = t0.elapsed();
    let _ = reader.join();
    let qemu_err = err_reader.join().unwrap_or_default();
    if !out.timed_out && !status.success() && out.lines.is_empty() {
        return Err(format!("qemu failed ({status}): {}", qemu_err.trim()));
    }
    Ok(out)
}

/// The uncompressed vmlinux (ELF with a PVH entry, boots about twice as
/// fast as the bzImage) from the compressed payload of the Debian bzImage
/// (xz on 6.1, zstd on 6.12), cached in `dir`.
fn extract_vmlinux(k: &Kernel, dir: &Path) -> Result<PathBuf> {
    let out = dir.join(format!("vmlinux-{}", k.version));
    let bz = k.image();
    let fresh = |p: &Path| -> bool {
        let (Ok(a), Ok(b)) = (fs::metadata(p), fs::metadata(&bz)) else {
            return false;
        };
        a.len() > 0 && a.modified().ok() >= b.modified().ok()
    };
    if fresh(&out) {
        return Ok(out);
    }
    let data = fs::read(&bz)
        .map_err(|e| format!("{} (install linux-image-{}): {e}", bz.display(), k.version))?;
    let (tool, payload) = bzimage_payload(&data)
        .ok_or_else(|| format!("no xz or zstd payload in {}", bz.display()))?;
    let mut child = Command::new(tool[0])
        .args(&tool[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", tool[0]))?;
    let mut stdin = child.stdin.take().ok_or("decompressor stdin")?;
    let payload = payload.to_vec();
    let writer = std::thread::spawn(move || {
        // xz stops reading after the stream: a broken pipe is expected.
        let _ = stdin.write_all(&payload);
    });
    let res = child
        .wait_with_output()
        .map_err(|e| format!("{}: {e}", tool[0]))?;
    let _ = writer.join();
    if !res.status.success() || !res.stdout.starts_with(b"\x7fELF") {
        return Err(format!(
            "could not unpack the vmlinux from {}",
            bz.display()
        ));
    }
    let tmp = out.with_extension("tmp");
    fs::write(&tmp, &res.stdout).map_err(|e| format!("{}: {e}", tmp.display()))?;
    fs::rename(&tmp, &out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

/// The compressed kernel inside a bzImage and the command that unpacks it:
/// the x86 boot header gives its place (`setup_sects` at 0x1f1,
/// `payload_offset`/`payload_length` at 0x248/0x24c, from the protected-mode
/// code); a zstd payload ends with the 4-byte uncompressed size, which zstd
/// would take for a second, broken frame.
fn bzimage_payload(data: &[u8]) -> Option<(&'static [&'static str], &[u8])> {
    let u32_at = |at: usize| -> Option<usize> {
        let b = data.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let setup_sects = match *data.get(0x1f1)? {
        0 => 4,
        n => usize::from(n),
    };
    let start = (setup_sects + 1) * 512 + u32_at(0x248)?;
    let payload = data.get(start..start + u32_at(0x24c)?)?;
    if payload.starts_with(b"\xfd7zXZ\x00") {
        Some((&["xz", "-dc", "--single-stream"], payload))
    } else if payload.starts_with(b"\x28\xb5\x2f\xfd") {
        Some((&["zstd", "-dcq"], &payload[..payload.len().checked_sub(4)?]))
    } else {
        None
    }
}

/// An initramfs entry.
enum Node {
    Dir,
    File { data: Vec<u8>, mode: u32 },
    Symlink(String),
    CharDev { major: u32, minor: u32, mode: u32 },
}

/// The guest's /init (see the module doc).
fn init_script(nics: bool) -> String {
    let mut s = String::from(
        "#!/bin/sh\n\
         export PATH=/sbin:/bin:/usr/sbin:/usr/bin\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev 2>/dev/null\n\
         mount -t debugfs debugfs /sys/kernel/debug\n\
         mount -t tmpfs tmpfs /tmp\n\
         mount -t tmpfs tmpfs /run\n\
         ip link set lo up 2>/dev/null\n\
         echo 7 > /proc/sys/kernel/printk\n",
    );
    s.push_str(&format!("echo '{MARK} guest-up'\n"));
    if nics {
        s.push_str(
            "for m in $(cat /lib/modules/extra/order); do\n\
             \tinsmod /lib/modules/extra/$m.ko || echo \"insmod $m failed\"\n\
             done\n",
        );
    }
    s.push_str(&format!(
        "cd /\n\
         sh /script.sh </dev/null\n\
         echo \"{MARK} script-rc $?\"\n\
         echo '{MARK} dmesg-begin'\n\
         dmesg\n\
         echo '{MARK} dmesg-end'\n\
         echo '{MARK} poweroff'\n\
         poweroff -f\n"
    ));
    s
}

/// Builds the initramfs (newc cpio, uncompressed) for `opts`.
fn build_initramfs(k: &Kernel, opts: &BootOpts) -> Result<Vec<u8>> {
    let mut tree: BTreeMap<String, Node> = BTreeMap::new();
    for d in [
        "dev", "proc", "sys", "tmp", "run", "root", "etc", "bin", "sbin", "usr/bin", "usr/sbin",
    ] {
        tree.insert(d.into(), Node::Dir);
    }
    tree.insert(
        "dev/console".into(),
        Node::CharDev {
            major: 5,
            minor: 1,
            mode: 0o600,
        },
    );
    tree.insert(
        "dev/null".into(),
        Node::CharDev {
            major: 1,
            minor: 3,
            mode: 0o666,
        },
    );

    // busybox and its applets as symlinks (not `busybox` itself: ELOOP).
    let busybox = fs::read("/bin/busybox")
        .map_err(|e| format!("/bin/busybox (install busybox-static): {e}"))?;
    tree.insert(
        "bin/busybox".into(),
        Node::File {
            data: busybox,
            mode: 0o755,
        },
    );
    let applets = output(Command::new("/bin/busybox").arg("--list-full"))?;
    for a in applets.lines().map(str::trim).filter(|a| !a.is_empty()) {
        if Path::new(a).file_name().is_some_and(|n| n == "busybox") {
            continue;
        }
        tree.insert(
            a.trim_start_matches('/').into(),
            Node::Symlink("/bin/busybox".into()),
        );
    }

    // iproute2's ip (busybox's applet cannot do veth/netns) + its libraries.
    if let Ok(ip) = fs::canonicalize("/sbin/ip") {
        add_host_file(&mut tree, &ip, "sbin/ip.full", 0o755)?;
        let ldd = output(Command::new("ldd").arg(&ip)).unwrap_or_default();
        for lib in ldd.lines().filter_map(ldd_path) {
            add_host_file(
                &mut tree,
                Path::new(&lib),
                lib.trim_start_matches('/'),
                0o755,
            )?;
        }
    }

    // NIC modules with their dependencies, in load order (uncompressed:
    // 6.12 ships them as .ko.xz, which busybox's insmod cannot read).
    let order = nic_module_order(k)?;
    let mut names = String::new();
    for (name, path) in &order {
        let data = if path.extension().is_some_and(|e| e == "xz") {
            let out = Command::new("xz")
                .arg("-dc")
                .arg(path)
                .output()
                .map_err(|e| format!("xz: {e}"))?;
            if !out.status.success() {
                return Err(format!("xz -dc {} failed", path.display()));
            }
            out.stdout
        } else {
            fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?
        };
        tree.insert(
            format!("lib/modules/extra/{name}.ko"),
            Node::File { data, mode: 0o644 },
        );
        names.push_str(name);
        names.push('\n');
    }
    tree.insert(
        "lib/modules/extra/order".into(),
        Node::File {
            data: names.into_bytes(),
            mode: 0o644,
        },
    );

    for (host, guest) in &opts.files {
        add_host_file(&mut tree, host, guest.trim_start_matches('/'), 0o755)?;
    }
    tree.insert(
        "init".into(),
        Node::File {
            data: init_script(opts.nics).into_bytes(),
            mode: 0o755,
        },
    );
    tree.insert(
        "script.sh".into(),
        Node::File {
            data: opts.script.clone().into_bytes(),
            mode: 0o755,
        },
    );

    // Parent directories of everything.
    let paths: Vec<String> = tree.keys().cloned().collect();
    for p in paths {
        let mut cur = Path::new(&p).parent();
        while let Some(d) = cur.filter(|d| !d.as_os_str().is_empty()) {
            tree.entry(d.to_string_lossy().into_owned())
                .or_insert(Node::Dir);
            cur = d.parent();
        }
    }
    Ok(cpio_newc(&tree))
}

/// The library path of an `ldd` output line, if any.
fn ldd_path(line: &str) -> Option<String> {
    let l = line.trim();
    let p = match l.split_once("=>") {
        Some((_, rhs)) => rhs.split_whitespace().next()?,
        None => l.split_whitespace().next()?,
    };
    p.starts_with('/').then(|| p.to_string())
}

fn add_host_file(tree: &mut BTreeMap<String, Node>, host: &Path, guest: &str, mode: u32) -> Result {
    let data = fs::read(host).map_err(|e| format!("{}: {e}", host.display()))?;
    tree.insert(guest.to_string(), Node::File { data, mode });
    Ok(())
}

/// [`NIC_MODULES`] and their dependencies (modules.dep), dependencies first.
fn nic_module_order(k: &Kernel) -> Result<Vec<(String, PathBuf)>> {
    let mdir = k.modules_dir();
    let dep = fs::read_to_string(mdir.join("modules.dep")).map_err(|e| {
        format!(
            "{}/modules.dep (install linux-image-{}): {e}",
            mdir.display(),
            k.version
        )
    })?;
    let name_of = |p: &str| -> String {
        Path::new(p)
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .trim_end_matches(".xz")
                    .trim_end_matches(".ko")
                    .replace('-', "_")
            })
            .unwrap_or_default()
    };
    let mut deps: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for l in dep.lines() {
        let Some((m, ds)) = l.split_once(':') else {
            continue;
        };
        deps.insert(
            name_of(m),
            (
                m.to_string(),
                ds.split_whitespace().map(str::to_string).collect(),
            ),
        );
    }
    let mut order: Vec<(String, PathBuf)> = Vec::new();
    let push = |rel: &str, order: &mut Vec<(String, PathBuf)>| {
        let n = name_of(rel);
        if !order.iter().any(|(x, _)| *x == n) {
            order.push((n, mdir.join(rel)));
        }
    };
    // Built into the kernel on some lines (virtio_pci on 6.12).
    let builtin: Vec<String> = fs::read_to_string(mdir.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .map(name_of)
        .collect();
    for want in NIC_MODULES {
        if builtin.iter().any(|b| b == want) {
            continue;
        }
        let (rel, ds) = deps
            .get(*want)
            .ok_or_else(|| format!("module {want} not in modules.dep"))?;
        // modules.dep lists the full closure; modprobe loads it in reverse.
        for d in ds.iter().rev() {
            push(d, &mut order);
        }
        push(rel, &mut order);
    }
    if let Some((_, p)) = order
        .iter()
        .find(|(_, p)| !p.extension().is_some_and(|e| e == "ko" || e == "xz"))
    {
        return Err(format!(
            "{}: the initramfs builder reads plain and xz-compressed modules only",
            p.display()
        ));
    }
    Ok(order)
}

/// Serializes `tree` as a newc cpio archive.
fn cpio_newc(tree: &BTreeMap<String, Node>) -> Vec<u8> {
    fn pad4(v: &mut Vec<u8>) {
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
    }
    fn entry(v: &mut Vec<u8>, ino: u32, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let fields = [
            ino,
            mode,
            0,
            0,
            nlink,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        v.extend_from_slice(b"070701");
        for f in fields {
            v.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        v.extend_from_slice(name.as_bytes());
        v.push(0);
        pad4(v);
        v.extend_from_slice(data);
        pad4(v);
    }
    let mut v = Vec::new();
    for (i, (name, node)) in tree.iter().enumerate() {
        let ino = i as u32 + 1;
        match node {
            Node::Dir => entry(&mut v, ino, name, 0o040755, &[], (0, 0)),
            Node::File { data, mode } => entry(&mut v, ino, name, 0o100000 | mode, data, (0, 0)),
            Node::Symlink(t) => entry(&mut v, ino, name, 0o120777, t.as_bytes(), (0, 0)),
            Node::CharDev { major, minor, mode } => {
                entry(&mut v, ino, name, 0o020000 | mode, &[], (*major, *minor))
            }
        }
    }
    entry(&mut v, 0, "TRAILER!!!", 0, &[], (0, 0));
    v
}

/// The last `n` lines, joined.
pub fn tail(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Deletes a file or a directory tree when dropped (the per-run initramfs,
/// the DKMS test's work directory).
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = if self.0.is_dir() {
            fs::remove_dir_all(&self.0)
        } else {
            fs::remove_file(&self.0)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_ldd_parsing() {
        assert_eq!(parse_summary("12 passed, 0 failed"), Some((12, 0)));
        assert_eq!(parse_summary("FAIL x: 1 passed, 2 failed?"), None);
        assert_eq!(
            ldd_path("\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)"),
            Some("/lib/x86_64-linux-gnu/libc.so.6".into())
        );
        assert_eq!(
            ldd_path("\t/lib64/ld-linux-x86-64.so.2 (0x7f)"),
            Some("/lib64/ld-linux-x86-64.so.2".into())
        );
        assert_eq!(ldd_path("\tlinux-vdso.so.1 (0x00007ff)"), None);
    }

    #[test]
    fn judge_flags_kernel_warnings_and_failures() {
        let mut out = GuestOutput {
            lines: [
                "@@NM insmod-ok",
                "PASS a",
                "1 passed, 0 failed",
                "@@NM rmmod-ok",
                "@@NM dmesg-begin",
                "[    1.0] netmap: loaded",
                "@@NM dmesg-end",
                "@@NM poweroff",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            powered_off: true,
            ..Default::default()
        };
        assert_eq!(judge(&out), Ok(()));
        out.lines
            .insert(5, "[    2.0] WARNING: CPU: 0 PID: 1 at foo".into());
        assert!(judge(&out).unwrap_err().contains("kernel problems"));
        out.lines.remove(5);
        out.lines[2] = "0 passed, 1 failed".into();
        assert!(judge(&out).is_err());
    }

    /// A bzImage's payload is found from its boot header, whatever bytes
    /// surround it; zstd's trailing size is cut off.
    #[test]
    fn bzimage_payload_from_the_boot_header() {
        let mut img = vec![0u8; 4096];
        img[0x1f1] = 1; // setup_sects: protected-mode code at 1024
        img[0x248..0x24c].copy_from_slice(&100u32.to_le_bytes());
        img[0x24c..0x250].copy_from_slice(&12u32.to_le_bytes());
        // A decoy xz magic before the payload must not be taken.
        img[1024..1030].copy_from_slice(b"\xfd7zXZ\x00");
        img[1124..1128].copy_from_slice(b"\x28\xb5\x2f\xfd");
        let (tool, payload) = bzimage_payload(&img).unwrap();
        assert_eq!(tool[0], "zstd");
        assert_eq!(payload, &img[1124..1132]);
        img[1124..1130].copy_from_slice(b"\xfd7zXZ\x00");
        let (tool, payload) = bzimage_payload(&img).unwrap();
        assert_eq!(tool[0], "xz");
        assert_eq!(payload.len(), 12);
        img[0x24c..0x250].copy_from_slice(&100_000u32.to_le_bytes());
        assert!(bzimage_payload(&img).is_none());
    }

    #[test]
    fn cpio_is_aligned_and_terminated() {
        let mut t = BTreeMap::new();
        t.insert("bin".to_string(), Node::Dir);
        t.insert(
            "bin/x".to_string(),
            Node::File {
                data: vec![1, 2, 3],
                mode: 0o755,
            },
        );
        let v = cpio_newc(&t);
        assert_eq!(v.len() % 4, 0);
        assert!(v.starts_with(b"070701"));
        assert!(v.windows(10).any(|w| w == b"TRAILER!!!"));
    }
}
