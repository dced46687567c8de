//! `cargo xtask`: developer workflows for voipfilter. It does not depend on the voipfilter
//! crates, so it builds on a fresh machine before bpf-linker is installed.

mod bench;
mod cmd;
mod demo;
mod privileges;
mod setup;
mod testrun;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "voipfilter developer workflows")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Check prerequisites (apt packages, toolchain, bpf-linker for LLVM 22, bpffs) and install
    /// what is missing.
    Setup,
    /// Setup, then build the workspace in release mode (target/release/voipfilter).
    Build,
    /// Setup, then run every test: host unit tests, then kernel and netns tests (needs root).
    Test,
    /// Setup, build, then run voipfilter on a simulated ISP edge in network namespaces and show
    /// what it dropped and passed (needs root).
    Demo,
    /// Setup, build, then benchmark voipfilter next to baselines and peers (xdp-filter,
    /// nftables, ndpiReader) and write bench/results/<date>-<host>.md (needs root; a few
    /// minutes, `--quick` under one).
    Bench {
        /// Fewer runs and repetitions (under a minute).
        #[arg(long)]
        quick: bool,
        /// More options for voipfilter-bench (e.g. `-- --only cost,live --runs 7`).
        #[arg(last = true)]
        extra: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::Setup => setup::setup(),
        Task::Build => build(),
        Task::Test => privileges::require_kernel_privileges("test")
            .and_then(|()| setup::setup())
            .and_then(|()| testrun::test()),
        Task::Demo => privileges::require_kernel_privileges("demo")
            .and_then(|()| setup::setup())
            .and_then(|()| demo::demo()),
        Task::Bench { quick, extra } => privileges::require_kernel_privileges("bench")
            .and_then(|()| setup::setup())
            .and_then(|()| bench::bench(quick, &extra)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn build() -> anyhow::Result<()> {
    setup::setup()?;
    // The default members: every host crate (the eBPF crate is built by voipfilter/build.rs).
    cmd::run(cmd::cargo().args(["build", "--release"]))?;
    println!(
        "built {}",
        cmd::target_dir()?.join("release/voipfilter").display()
    );
    Ok(())
}
