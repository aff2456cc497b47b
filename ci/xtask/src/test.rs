//! `cargo xtask test`: every test the project has, in stages.
//!
//! Default order: setup, fmt, clippy, host tests, the core's no_std build with
//! the kernel toolchain, guest tests in QEMU. A failed stage does not stop the
//! later ones (CI shows every failure in one run); the run ends with one line
//! per stage and a verdict, and fails if any stage failed.

use crate::setup;
use crate::util::{Result, cargo, clock, root, run_cmd, show};
use clap::ValueEnum;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Only the host stages (fmt, clippy, host): no apt-get, no kernel toolchain, no guest.
    #[arg(long, conflicts_with = "only")]
    host_only: bool,
    /// Run only these stages (comma separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Stage>,
    /// Skip these stages (comma separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    skip: Vec<Stage>,
}

/// The stages, in the order they run.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    /// `cargo xtask setup` (Debian packages, rustfmt/clippy).
    Setup,
    /// `cargo fmt --check` on the workspace and the crates it excludes.
    Fmt,
    /// `cargo clippy --workspace --all-targets -- -D warnings`.
    Clippy,
    /// Host tests: `cargo nextest run --workspace` and doctests.
    Host,
    /// The core built `no_std` for the kernel target with the kernel toolchain.
    NoStd,
    /// The FreeBSD module built and checked, broken variants rejected, the
    /// examples built and checked for FreeBSD.
    Freebsd,
    /// The module loaded in a QEMU guest, guest tests run there.
    Guest,
    /// A short libFuzzer smoke of every target of fuzz/.
    Fuzz,
    /// netmap.sys built, PE/imports/signature/NDIS layouts checked, broken
    /// drivers rejected, the examples run under wine.
    Windows,
}

impl Stage {
    const ALL: [Stage; 9] = [
        Stage::Setup,
        Stage::Fmt,
        Stage::Clippy,
        Stage::Host,
        Stage::NoStd,
        Stage::Freebsd,
        Stage::Windows,
        Stage::Fuzz,
        Stage::Guest,
    ];
    const HOST: [Stage; 3] = [Stage::Fmt, Stage::Clippy, Stage::Host];

    fn name(self) -> &'static str {
        match self {
            Stage::Setup => "setup",
            Stage::Fmt => "fmt",
            Stage::Clippy => "clippy",
            Stage::Host => "host",
            Stage::NoStd => "no-std",
            Stage::Freebsd => "freebsd",
            Stage::Guest => "guest",
            Stage::Fuzz => "fuzz",
            Stage::Windows => "windows",
        }
    }
}

enum Outcome {
    Passed(String),
    Failed(String),
    Skipped(String),
}

impl From<Result> for Outcome {
    fn from(r: Result) -> Self {
        match r {
            Ok(()) => Outcome::Passed(String::new()),
            Err(e) => Outcome::Failed(e),
        }
    }
}

pub fn run(args: &Args) -> Result {
    let selected: Vec<Stage> = Stage::ALL
        .into_iter()
        .filter(|s| {
            let chosen = if args.host_only {
                Stage::HOST.contains(s)
            } else {
                args.only.is_empty() || args.only.contains(s)
            };
            chosen && !args.skip.contains(s)
        })
        .collect();
    if selected.is_empty() {
        return Err("no stage selected".into());
    }

    // Asked once, after setup had its chance to install it.
    let mut kernel_toolchain: Option<bool> = None;
    let mut results = Vec::new();
    for stage in selected {
        println!("[{}] ==> {}", clock(), stage.name());
        let start = Instant::now();
        let outcome = match stage {
            Stage::Setup => setup::run().into(),
            Stage::Fmt => fmt(),
            Stage::Clippy => step(cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
            .and_then(|()| crate::module::lint_kernel_crate())
            .and_then(|()| crate::kld::lint_kernel_crate())
            .and_then(|()| crate::sys::lint())
            .and_then(|()| lint_other_os())
            .into(),
            Stage::Host => host_tests(),
            Stage::Fuzz => crate::fuzz::run(&crate::fuzz::Args::smoke(FUZZ_SMOKE_SECS)).into(),
            Stage::Windows => crate::sys::stage().into(),
            Stage::NoStd | Stage::Guest | Stage::Freebsd => {
                if *kernel_toolchain.get_or_insert_with(setup::kernel_toolchain_present) {
                    kernel_stage(stage)
                } else {
                    Outcome::Skipped(
                        "the kernel toolchain is not installed (cargo xtask setup installs it)"
                            .into(),
                    )
                }
            }
        };
        let took = start.elapsed();
        println!(
            "[{}] <== {}: {}",
            clock(),
            stage.name(),
            verdict(&outcome, took)
        );
        results.push((stage, outcome, took));
    }

    println!("\nxtask test summary:");
    for (stage, outcome, took) in &results {
        println!("  {:<7} {}", stage.name(), verdict(outcome, *took));
    }
    let names = |want: fn(&Outcome) -> bool| {
        results
            .iter()
            .filter(|(_, o, _)| want(o))
            .map(|(s, _, _)| s.name())
            .collect::<Vec<_>>()
    };
    let passed = names(|o| matches!(o, Outcome::Passed(_)));
    let failed = names(|o| matches!(o, Outcome::Failed(_)));
    let skipped = names(|o| matches!(o, Outcome::Skipped(_)));
    let not_run: Vec<_> = Stage::ALL
        .iter()
        .filter(|s| !results.iter().any(|(r, _, _)| r == *s))
        .map(|s| s.name())
        .collect();
    let mut line = format!("xtask test: passed: {}", list(&passed));
    if !failed.is_empty() {
        line += &format!("; FAILED: {}", list(&failed));
    }
    if !skipped.is_empty() {
        line += &format!("; skipped: {}", list(&skipped));
    }
    if !not_run.is_empty() {
        line += &format!("; not selected: {}", list(&not_run));
    }
    println!("{line}");
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} stages failed",
            failed.len(),
            results.len()
        ))
    }
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn verdict(outcome: &Outcome, took: Duration) -> String {
    let (word, detail) = match outcome {
        Outcome::Passed(d) => ("ok", d),
        Outcome::Failed(d) => ("FAILED", d),
        Outcome::Skipped(d) => ("skipped", d),
    };
    let mut s = format!("{word:<7} {:>6.1} s", took.as_secs_f64());
    if !detail.is_empty() {
        s += "  ";
        s += detail;
    }
    s
}

/// Prints the command, then runs it.
fn step(cmd: &mut Command) -> Result {
    println!("$ {}", show(cmd));
    run_cmd(cmd)
}

/// Crates outside the workspace (built with other toolchains) that are still
/// formatted with the same rustfmt.
const EXCLUDED_CRATES: &[&str] = &["os/linux/rust", "os/freebsd/rust", "os/windows", "fuzz"];

fn fmt() -> Outcome {
    let mut r = step(cargo().args(["fmt", "--all", "--check"]));
    for dir in EXCLUDED_CRATES {
        let manifest = format!("{dir}/Cargo.toml");
        if root().join(&manifest).exists() {
            let one = step(cargo().args(["fmt", "--all", "--check", "--manifest-path", &manifest]));
            r = r.and(one);
        }
    }
    r.into()
}

fn host_tests() -> Outcome {
    let color = std::io::stderr().is_terminal();
    let mut counts = Counts::default();
    let r = if setup::nextest_present() {
        let mut nextest = cargo();
        nextest.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
        if color {
            nextest.args(["--color", "always"]);
        }
        let tests = step_counting(&mut nextest, Stream::Stderr, &mut counts);
        // nextest does not run doctests.
        let mut doc = cargo();
        doc.args(["test", "--workspace", "--doc"]);
        if color {
            doc.args(["--color", "always", "--", "--color", "always"]);
        }
        tests.and(step_counting(&mut doc, Stream::Stdout, &mut counts))
    } else {
        println!("cargo-nextest not found; running the host tests with cargo test");
        let mut test = cargo();
        test.args(["test", "--workspace", "--no-fail-fast"]);
        if color {
            test.args(["--color", "always", "--", "--color", "always"]);
        }
        step_counting(&mut test, Stream::Stdout, &mut counts)
    };
    let detail = counts.to_string();
    match r {
        Ok(()) => Outcome::Passed(detail),
        Err(e) => Outcome::Failed(format!("{detail}; {e}")),
    }
}

/// Seconds per fuzz target in `cargo xtask test` (CI): a smoke, long runs
/// are `cargo xtask fuzz TARGET --time S`.
const FUZZ_SMOKE_SECS: u64 = 15;

/// The stages that need the kernel toolchain.
fn kernel_stage(stage: Stage) -> Outcome {
    match stage {
        Stage::Guest => crate::vm::run().into(),
        Stage::Freebsd => freebsd(),
        _ => crate::module::check_core_no_std().into(),
    }
}

/// Clippy of `netmap-uapi` for each OS of `cargo xtask examples` whose
/// Rust target is installed (its `user::sys` file for that OS is compiled
/// only there); setup installs them, `--host-only` may run without.
fn lint_other_os() -> Result {
    let installed =
        crate::util::output(Command::new("rustup").args(["target", "list", "--installed"]))
            .unwrap_or_default();
    // The host's own target is linted by the workspace clippy above.
    for t in crate::examples::TARGETS
        .iter()
        .filter(|t| t.name != "linux")
    {
        if !installed.lines().any(|l| l.trim() == t.triple) {
            println!(
                "clippy: {} not installed, netmap-uapi not linted for {}",
                t.triple, t.name
            );
            continue;
        }
        step(cargo().args([
            "clippy",
            "--quiet",
            "-p",
            "netmap-uapi",
            "--target",
            t.triple,
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    Ok(())
}

/// The `freebsd` stage: `cargo xtask kld` (build + checks), the checks'
/// self-test on broken modules, the examples built for FreeBSD (dev
/// profile) and checked.
fn freebsd() -> Outcome {
    let r = crate::kld::run().and_then(|k| {
        let broken = crate::kld::self_test()?;
        let bins = crate::examples::build(
            crate::examples::find("freebsd")?,
            crate::examples::Profile::Dev,
        )?;
        Ok(format!(
            "netmap.ko checked ({} undefined symbols, all KPI); {broken} broken modules rejected; \
             {} FreeBSD executables checked",
            k.report.undefined.len(),
            bins.len()
        ))
    });
    match r {
        Ok(detail) => Outcome::Passed(detail),
        Err(e) => Outcome::Failed(e),
    }
}

/// Test counts read from the runners' summary lines.
#[derive(Default, Debug, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    skipped: u64,
    /// How many summary lines were read.
    runs: u32,
}

impl Counts {
    /// Adds the counts of `line` if it is a runner's summary: nextest's
    /// `Summary [ 1.2s] 9 tests run: 8 passed, 1 failed, 0 skipped` or
    /// libtest's `test result: ok. 3 passed; 0 failed; 1 ignored; ...`.
    fn add_summary_line(&mut self, line: &str) {
        let line = line.trim();
        let nextest = line.starts_with("Summary [") && line.contains(" run: ");
        if !(nextest || line.starts_with("test result: ")) {
            return;
        }
        self.runs += 1;
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
            .filter(|w| !w.is_empty())
            .collect();
        for pair in words.windows(2) {
            let Ok(n) = pair[0].parse::<u64>() else {
                continue;
            };
            match pair[1] {
                "passed" => self.passed += n,
                "failed" | "timed" => self.failed += n,
                "skipped" | "ignored" => self.skipped += n,
                _ => {}
            }
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.runs == 0 {
            return f.write_str("no test summary seen");
        }
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Like [`step`], but passes `stream` through line by line and adds the test
/// runner's summary lines to `counts`.
fn step_counting(cmd: &mut Command, stream: Stream, counts: &mut Counts) -> Result {
    let what = show(cmd);
    println!("$ {what}");
    match stream {
        Stream::Stdout => cmd.stdout(Stdio::piped()),
        Stream::Stderr => cmd.stderr(Stdio::piped()),
    };
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start `{what}`: {e}"))?;
    let (pipe, sink): (Box<dyn Read>, Box<dyn Write>) = match stream {
        Stream::Stdout => (
            Box::new(child.stdout.take().ok_or("no stdout pipe")?),
            Box::new(std::io::stdout()),
        ),
        Stream::Stderr => (
            Box::new(child.stderr.take().ok_or("no stderr pipe")?),
            Box::new(std::io::stderr()),
        ),
    };
    let passed = pass_through(pipe, sink, counts);
    if passed.is_err() {
        // Nobody reads the pipe any more: do not let the child block on it.
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for `{what}`: {e}"))?;
    passed?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{what}` failed ({status})"))
    }
}

fn pass_through(pipe: Box<dyn Read>, mut sink: Box<dyn Write>, counts: &mut Counts) -> Result {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("reading test output: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        sink.write_all(&line)
            .and_then(|()| sink.flush())
            .map_err(|e| format!("writing test output: {e}"))?;
        counts.add_summary_line(&strip_ansi(&String::from_utf8_lossy(&line)));
    }
}

/// `s` without ANSI escape sequences (colored runner output).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-byte (0x40..=0x7e).
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Counts, strip_ansi};

    #[test]
    fn reads_nextest_and_libtest_summaries() {
        let mut c = Counts::default();
        for line in [
            "   Compiling xtask v0.1.0",
            "        PASS [   0.004s] xtask test::tests::x",
            "     Summary [   0.310s] 12 tests run: 10 passed (1 slow), 1 failed, 1 timed out, 3 skipped",
            "test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s",
            "test foo ... ok",
        ] {
            c.add_summary_line(line);
        }
        assert_eq!(
            c,
            Counts {
                passed: 12,
                failed: 2,
                skipped: 4,
                runs: 2
            }
        );
        assert_eq!(c.to_string(), "12 passed, 2 failed, 4 skipped");
        assert_eq!(Counts::default().to_string(), "no test summary seen");
    }

    #[test]
    fn strips_color() {
        assert_eq!(
            strip_ansi(
                "\x1b[32;1m     Summary\x1b[0m [   0.1s] 1 test run: \x1b[32m1 passed\x1b[0m"
            ),
            "     Summary [   0.1s] 1 test run: 1 passed"
        );
    }
}
