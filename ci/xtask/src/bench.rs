//! `cargo xtask bench <what> [-- ARGS]`: run a benchmark and pass its output through
//! (`guest`: see `guestbench.rs`).

use crate::util::{Result, cargo, root, run_cmd, show};
use std::fs;

/// A benchmark `cargo xtask bench` knows: its name on the command line, the
/// package and the `[[bench]]` target that implement it.
struct Bench {
    name: &'static str,
    package: &'static str,
    /// The package's directory, relative to the workspace root.
    dir: &'static str,
    target: &'static str,
}

const BENCHES: &[Bench] = &[Bench {
    name: "core",
    package: "netmap-core",
    dir: "core",
    target: "core",
}];

pub fn run(what: &str, args: &[String]) -> Result {
    if what == "guest" {
        return crate::guestbench::run(args);
    }
    if what == "native" {
        return crate::guestbench::run_native(args);
    }
    let bench = BENCHES.iter().find(|b| b.name == what).ok_or_else(|| {
        let known: Vec<_> = BENCHES
            .iter()
            .map(|b| b.name)
            .chain(["guest", "native"])
            .collect();
        format!("unknown benchmark `{what}`; known: {}", known.join(", "))
    })?;
    if !bench_target_exists(bench) {
        return Err(format!(
            "package {} has no bench target `{}` yet ({}/benches/{}.rs or a [[bench]] \
             named \"{}\" in {}/Cargo.toml)",
            bench.package, bench.target, bench.dir, bench.target, bench.target, bench.dir
        ));
    }
    let mut cmd = cargo();
    cmd.args(["bench", "-p", bench.package, "--bench", bench.target]);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    println!("$ {}", show(&cmd));
    run_cmd(&mut cmd)
}

/// Whether cargo would find the bench target: an auto-discovered
/// `benches/<target>.rs` or `benches/<target>/main.rs`, or a `[[bench]]`
/// section naming it.
fn bench_target_exists(bench: &Bench) -> bool {
    let dir = root().join(bench.dir);
    if dir.join(format!("benches/{}.rs", bench.target)).exists()
        || dir
            .join(format!("benches/{}/main.rs", bench.target))
            .exists()
    {
        return true;
    }
    let Ok(manifest) = fs::read_to_string(dir.join("Cargo.toml")) else {
        return false;
    };
    declares_bench(&manifest, bench.target)
}

/// Whether `manifest` has a `[[bench]]` section with `name = "<target>"`.
fn declares_bench(manifest: &str, target: &str) -> bool {
    let mut in_bench = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bench = line == "[[bench]]";
        } else if in_bench {
            let name = line.split_once('=').filter(|(key, _)| key.trim() == "name");
            if name.is_some_and(|(_, value)| value.trim().trim_matches('"') == target) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::declares_bench;

    #[test]
    fn finds_declared_bench() {
        let manifest =
            "[package]\nname = \"core\"\n\n[[bench]]\nname = \"core\"\nharness = false\n";
        assert!(declares_bench(manifest, "core"));
        assert!(!declares_bench("[package]\nname = \"core\"\n", "core"));
        assert!(!declares_bench("[[bench]]\nname = \"alloc\"\n", "core"));
    }
}
