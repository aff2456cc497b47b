//! `cargo xtask fuzz [TARGET] [--time S]`: the libFuzzer targets of `fuzz/`
//! (a cargo-fuzz crate outside the workspace).
//!
//! Without a target, every target runs for a short smoke (20 s each by
//! default): what CI runs. With a target, only that one runs, for `--time`
//! seconds. Either way the committed seeds in `fuzz/corpus/<target>/` are
//! read first; inputs the run discovers go to `fuzz/target/corpus/<target>/`
//! (ignored by git), crashes to `fuzz/artifacts/<target>/`. The full
//! libFuzzer output is kept in `fuzz/target/logs/<target>.log`; the end of
//! each run prints the runs, execs/s and coverage (`cov:` edges, `ft:`
//! features) libFuzzer reported.
//!
//! Toolchain: cargo-fuzz is installed with `cargo install --locked` when
//! missing. It needs nightly-only flags (`-Z sanitizer`, sancov passes):
//! the toolchain that runs xtask is used with `RUSTC_BOOTSTRAP=1`. The
//! AddressSanitizer build is tried first; if it does not build (no
//! sanitizer runtime), the targets are built without a sanitizer
//! (`--sanitizer none`): the core's invariants are assertions, and Rust's
//! bounds checks and debug assertions stay on (`-a`).

use crate::util::{Result, cargo, clock, root, run_cmd, show, succeeds};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The targets, in smoke order (each is `fuzz/fuzz_targets/<name>.rs`).
pub const TARGETS: &[&str] = &["ctrl", "portname", "ring", "vale", "sequence"];

/// Seconds per target of the smoke run.
const SMOKE_SECS: u64 = 20;
/// Default seconds of a single-target run.
const SINGLE_SECS: u64 = 60;
/// A single input running longer than this is a hang (libFuzzer `-timeout`).
const INPUT_TIMEOUT_SECS: u64 = 25;
/// libFuzzer's RSS limit (default 2048): some inputs legitimately build
/// regions of a few hundred MB (4096-slot rings, capped extra buffers), and
/// with ASan's shadow memory a run can pass 2 GB; the machine has 24 GB.
const RSS_LIMIT_MB: u64 = 4096;

#[derive(clap::Args)]
pub struct Args {
    /// Target to run (ctrl, portname, ring, vale, sequence); all when omitted.
    target: Option<String>,
    /// Seconds of fuzzing per target (default: 20 for all, 60 for one).
    #[arg(long)]
    time: Option<u64>,
    /// Sanitizer: `address`, `none`, or `auto` (address if it builds).
    #[arg(long, default_value = "auto")]
    sanitizer: String,
    /// Extra libFuzzer flags, after `--` (e.g. `-- -max_len=512`).
    #[arg(last = true)]
    libfuzzer_args: Vec<String>,
}

impl Args {
    /// Every target, `secs` seconds each, sanitizer chosen automatically.
    pub fn smoke(secs: u64) -> Args {
        Args {
            target: None,
            time: Some(secs),
            sanitizer: "auto".into(),
            libfuzzer_args: Vec::new(),
        }
    }
}

/// What one run reported.
#[derive(Default)]
struct Figures {
    runs: Option<u64>,
    execs_per_sec: Option<u64>,
    cov: Option<u64>,
    ft: Option<u64>,
    corpus: Option<u64>,
    secs: u64,
}

pub fn run(args: &Args) -> Result {
    let targets: Vec<&str> = match &args.target {
        Some(t) => {
            let t = TARGETS.iter().find(|k| **k == t.as_str()).ok_or_else(|| {
                format!("unknown fuzz target `{t}`; known: {}", TARGETS.join(", "))
            })?;
            vec![*t]
        }
        None => TARGETS.to_vec(),
    };
    let secs = args.time.unwrap_or(if args.target.is_some() {
        SINGLE_SECS
    } else {
        SMOKE_SECS
    });
    ensure_cargo_fuzz()?;
    let sanitizer = build(&args.sanitizer)?;

    let mut results = Vec::new();
    let mut failed = Vec::new();
    for t in &targets {
        println!(
            "[{}] fuzz: {t} for {secs} s (sanitizer {sanitizer})",
            clock()
        );
        match run_target(t, secs, &sanitizer, &args.libfuzzer_args) {
            Ok(f) => {
                println!("fuzz {t}: {}", describe(&f));
                results.push((*t, f));
            }
            Err(e) => {
                eprintln!("fuzz {t}: FAILED: {e}");
                failed.push(*t);
            }
        }
    }
    if results.len() > 1 || !failed.is_empty() {
        println!("\nfuzz summary (sanitizer {sanitizer}):");
        for (t, f) in &results {
            println!("  {t:<9} {}", describe(f));
        }
        for t in &failed {
            println!("  {t:<9} FAILED (see fuzz/target/logs/{t}.log, fuzz/artifacts/{t}/)");
        }
    }
    println!("fuzz: {} passed, {} failed", results.len(), failed.len());
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz targets failed: {}", failed.join(", ")))
    }
}

fn describe(f: &Figures) -> String {
    let n = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    format!(
        "{} runs in {} s, {} exec/s, cov {}, ft {}, corpus {}",
        n(f.runs),
        f.secs,
        n(f.execs_per_sec),
        n(f.cov),
        n(f.ft),
        n(f.corpus)
    )
}

/// `cargo fuzz` with the environment every invocation needs.
fn cargo_fuzz() -> Command {
    let mut c = cargo();
    c.arg("fuzz").env("RUSTC_BOOTSTRAP", "1");
    c
}

fn ensure_cargo_fuzz() -> Result {
    if succeeds(cargo().args(["fuzz", "--version"])) {
        return Ok(());
    }
    println!("[{}] fuzz: installing cargo-fuzz", clock());
    let mut c = cargo();
    c.args(["install", "--locked", "cargo-fuzz"]);
    println!("$ {}", show(&c));
    run_cmd(&mut c)
}

/// `cargo fuzz build` flags for a sanitizer: release with debug assertions.
fn build_flags(sanitizer: &str) -> Vec<String> {
    let mut v = vec!["-O".to_owned(), "-a".to_owned()];
    if sanitizer != "address" {
        v.extend(["-s".to_owned(), sanitizer.to_owned()]);
    }
    v
}

/// Build every target; returns the sanitizer that built.
fn build(wanted: &str) -> Result<String> {
    let tries: &[&str] = match wanted {
        "auto" => &["address", "none"],
        "address" => &["address"],
        "none" => &["none"],
        other => return Err(format!("unknown sanitizer `{other}` (address, none, auto)")),
    };
    let mut last = String::new();
    for s in tries {
        let mut c = cargo_fuzz();
        c.arg("build").args(build_flags(s)).current_dir(root());
        println!("[{}] $ RUSTC_BOOTSTRAP=1 {}", clock(), show(&c));
        match run_cmd(&mut c) {
            Ok(()) => return Ok((*s).to_owned()),
            Err(e) => {
                eprintln!("fuzz: build with sanitizer {s} failed: {e}");
                last = e;
            }
        }
    }
    Err(last)
}

fn run_target(t: &str, secs: u64, sanitizer: &str, extra: &[String]) -> Result<Figures> {
    let fuzz = root().join("fuzz");
    let scratch = fuzz.join("target/corpus").join(t);
    let seeds = fuzz.join("corpus").join(t);
    let logs = fuzz.join("target/logs");
    for d in [&scratch, &logs, &fuzz.join("artifacts").join(t)] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let mut c = cargo_fuzz();
    c.arg("run")
        .args(build_flags(sanitizer))
        .arg(t)
        .arg(&scratch)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={secs}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_SECS}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg("-print_final_stats=1")
        .args(extra)
        // A smaller quarantine than ASan's 256 MB default: inputs free
        // whole regions, and the RSS limit must not be hit by stale memory.
        .env("ASAN_OPTIONS", "quarantine_size_mb=64")
        .current_dir(root());
    println!("$ RUSTC_BOOTSTRAP=1 {}", show(&c));
    let log_path = logs.join(format!("{t}.log"));
    let start = Instant::now();
    let (status, mut figures) = run_logged(&mut c, &log_path)?;
    figures.secs = start.elapsed().as_secs();
    if status {
        Ok(figures)
    } else {
        Err(format!(
            "libFuzzer stopped with an error; log: {}",
            rel(&log_path).display()
        ))
    }
}

fn rel(p: &Path) -> PathBuf {
    p.strip_prefix(root())
        .map_or_else(|_| p.to_owned(), Path::to_owned)
}

/// Run `cmd` with stdout and stderr merged into `log`, echoing the lines
/// worth seeing live; returns success and the figures parsed on the way.
fn run_logged(cmd: &mut Command, log: &Path) -> Result<(bool, Figures)> {
    let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{}`: {e}", show(cmd)))?;
    // stdout (cargo's) is short: read it on a thread, stderr (libFuzzer's) here.
    let stdout = child.stdout.take().expect("piped stdout");
    let t = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(std::result::Result::ok)
            .collect::<Vec<_>>()
    });
    let mut f = Figures::default();
    let mut in_dict = false;
    let stderr = child.stderr.take().expect("piped stderr");
    for line in BufReader::new(stderr)
        .lines()
        .map_while(std::result::Result::ok)
    {
        let _ = writeln!(out, "{line}");
        parse_line(&line, &mut f);
        if line.starts_with("###### Recommended dictionary") {
            in_dict = true;
        }
        if !in_dict && worth_echoing(&line) {
            println!("  {line}");
        }
        if line.starts_with("###### End of recommended dictionary") {
            in_dict = false;
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for `{}`: {e}", show(cmd)))?;
    for line in t.join().unwrap_or_default() {
        let _ = writeln!(out, "{line}");
        println!("  {line}");
    }
    let _ = out.flush();
    Ok((status.success(), f))
}

/// libFuzzer's per-new-input lines are noise in a CI log; its start, pulse,
/// end, statistics and every error line are not.
fn worth_echoing(line: &str) -> bool {
    if line.starts_with('#') {
        return line.contains("INITED") || line.contains("DONE") || line.contains("pulse");
    }
    !(line.starts_with("\tNEW_FUNC") || line.trim().is_empty())
}

/// Pick the figures out of a status line (`#N DONE cov: C ft: F corp:
/// K/Sb ... exec/s: E`) or a final statistic (`stat::...: V`).
fn parse_line(line: &str, f: &mut Figures) {
    if let Some(rest) = line.strip_prefix('#') {
        let mut words = rest.split_whitespace();
        let Some(runs) = words.next().and_then(|w| w.parse().ok()) else {
            return;
        };
        f.runs = Some(runs);
        let words: Vec<&str> = words.collect();
        let after = |key: &str| {
            words
                .iter()
                .position(|w| *w == key)
                .and_then(|i| words.get(i + 1))
                .and_then(|w| w.split('/').next())
                .and_then(|w| w.parse().ok())
        };
        f.cov = after("cov:").or(f.cov);
        f.ft = after("ft:").or(f.ft);
        f.corpus = after("corp:").or(f.corpus);
        f.execs_per_sec = after("exec/s:").or(f.execs_per_sec);
    } else if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
        f.runs = v.trim().parse().ok().or(f.runs);
    } else if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
        f.execs_per_sec = v.trim().parse().ok().or(f.execs_per_sec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_has_a_source_and_seeds() {
        let fuzz = root().join("fuzz");
        for t in TARGETS {
            assert!(
                fuzz.join(format!("fuzz_targets/{t}.rs")).is_file(),
                "fuzz/fuzz_targets/{t}.rs"
            );
            let seeds = std::fs::read_dir(fuzz.join("corpus").join(t))
                .map(|d| d.count())
                .unwrap_or(0);
            assert!(seeds > 0, "fuzz/corpus/{t}/ has no seed");
        }
        let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
        for t in TARGETS {
            assert!(
                manifest.contains(&format!("name = \"{t}\"")),
                "{t} not in fuzz/Cargo.toml"
            );
        }
    }

    #[test]
    fn parses_libfuzzer_status_lines() {
        let mut f = Figures::default();
        parse_line(
            "#48011\tDONE   cov: 1766 ft: 3864 corp: 131/1005b lim: 11 exec/s: 2400 rss: 66Mb",
            &mut f,
        );
        assert_eq!(
            (f.runs, f.cov, f.ft, f.corpus, f.execs_per_sec),
            (Some(48011), Some(1766), Some(3864), Some(131), Some(2400))
        );
        parse_line("stat::average_exec_per_sec:     2399", &mut f);
        assert_eq!(f.execs_per_sec, Some(2399));
        parse_line("INFO: Seed: 123", &mut f);
        assert_eq!(f.runs, Some(48011));
    }
}
