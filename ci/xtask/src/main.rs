//! `cargo xtask`: build, test and run orchestration for netmap-rs.
//!
//! Every task that is more than one cargo command lives here (the Hubris /
//! rust-analyzer pattern), so that `.ci/run`, the README and developers run
//! exactly the same steps.

mod bench;
mod demo;
mod dkms;
mod drivers;
mod examples;
mod fuzz;
mod guestbench;
mod kld;
mod module;
mod setup;
mod sys;
mod test;
mod trixie;
mod util;
mod vm;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "netmap-rs build and test tasks"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install every Debian package a fresh machine needs (idempotent).
    Setup,
    /// Run all tests: setup, fmt, clippy, host tests, kernel-toolchain checks, guest tests.
    Test(test::Args),
    /// Boot the guest, load the module and run pkt-gen tx -> rx over VALE.
    Demo,
    /// Build the Linux kernel module (os/linux) with the kernel toolchain.
    Module {
        /// The kernel line: Debian 12's 6.1 or Debian 13's 6.12 (chroot).
        #[arg(long, value_enum, default_value = "6.1")]
        kernel: module::Line,
    },
    /// Build the FreeBSD kernel module (os/freebsd) on this machine and check it.
    Kld,
    /// Build the Debian packages netmap-rs-dkms and netmap-rs-tools (target/dkms).
    Dkms,
    /// Build pkt-gen, vale-ctl and bridge for an OS (`--target freebsd`,
    /// `--target windows`) and check them.
    Examples(examples::Args),
    /// Build the Windows driver target/windows/netmap.sys (os/windows): NDIS
    /// filter + \\.\netmap, test-signed, with its INF.
    Sys,
    /// Build the module and guest programs, boot QEMU and run the guest tests.
    VmTest {
        /// The kernel line the guest runs: Debian 12's 6.1 or Debian 13's 6.12.
        #[arg(long, value_enum, default_value = "6.1")]
        kernel: module::Line,
    },
    /// Run the libFuzzer targets of fuzz/: a short smoke of each, or one
    /// target for `--time` seconds (`cargo xtask fuzz ring --time 300`).
    Fuzz(fuzz::Args),
    /// Run a benchmark and print its figures (`cargo xtask bench core`).
    Bench {
        /// Which benchmark: `core` (the core's data path, natively) or `guest`
        /// (netmap.ko in a QEMU guest, against the C reference when
        /// ../shared/bench/vs-reference.sh exists; args: ROUNDS PKTS).
        what: String,
        /// Passed to the benchmark binary (after `--`), e.g. a filter.
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Setup => setup::run(),
        Cmd::Test(args) => test::run(&args),
        Cmd::Demo => demo::run(),
        Cmd::Module { kernel } => kernel.kernel().and_then(|k| {
            let ko = module::build(&k)?;
            println!("{}", ko.display());
            // The netmap-aware NIC drivers (drivers/).
            println!("{}", drivers::build_virtio_net(&k, &ko)?.display());
            Ok(())
        }),
        Cmd::Kld => kld::run().map(|k| println!("{}", k.ko.display())),
        Cmd::VmTest { kernel } => vm::run(kernel),
        Cmd::Dkms => dkms::run().map(|_| ()),
        Cmd::Examples(args) => examples::run(&args),
        Cmd::Sys => sys::run().map(|d| println!("{}", d.sys.display())),
        Cmd::Bench { what, args } => bench::run(&what, &args),
        Cmd::Fuzz(args) => fuzz::run(&args),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
