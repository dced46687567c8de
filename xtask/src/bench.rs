//! `cargo xtask bench`: build voipfilter-bench (bench/) in release mode and run it as root. It
//! measures per-packet cost, live throughput in a network namespace of its own, the corpus
//! next to ndpiReader, scaling and the control plane, and writes
//! `bench/results/<date>-<host>.md` with its charts. See README "Benchmarks".

use crate::cmd;

pub fn bench(quick: bool, extra: &[String]) -> anyhow::Result<()> {
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "voipfilter-bench"]))?;
    let root = cmd::workspace_root();
    let bin = cmd::target_dir()?.join("release/voipfilter-bench");
    let mut c = std::process::Command::new(bin);
    c.arg("--out").arg(root.join("bench/results")).arg("--corpus").arg(root.join("../shared/corpus"));
    if quick {
        c.arg("--quick");
    }
    c.args(extra);
    cmd::run(&mut c)
}
