//! `cargo xtask test`: every test tier, output streamed, one summary at the end.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

use crate::cmd::{self, describe, run};

/// Totals of libtest's `test result:` lines, and the names of failed tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
    pub binaries: u64,
    pub failures: Vec<String>,
}

impl Tally {
    /// Feeds one line of test output.
    pub fn line(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("test result: ") {
            self.binaries += 1;
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(what), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(n) = n.parse::<u64>() else { continue };
                match what {
                    "passed" => self.passed += n,
                    "failed" => self.failed += n,
                    "ignored" => self.ignored += n,
                    _ => {}
                }
            }
        } else if let Some(name) = line
            .strip_prefix("test ")
            .and_then(|l| l.strip_suffix(" ... FAILED"))
        {
            self.failures.push(name.to_string());
        }
    }
}

struct Step {
    name: &'static str,
    tally: Tally,
    error: Option<String>,
}

/// Runs `cmd`, passing its stdout through line by line while counting results.
fn run_tests(cmd: &mut Command) -> (Tally, Option<String>) {
    let line = describe(cmd);
    println!("$ {line}");
    let mut tally = Tally::default();
    let mut child = match cmd.stdout(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => return (tally, Some(format!("could not start `{line}`: {e}"))),
    };
    if let Some(out) = child.stdout.take() {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{l}");
            tally.line(&l);
        }
    }
    let error = match child.wait() {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("`{line}` failed ({s})")),
        Err(e) => Some(format!("waiting for `{line}`: {e}")),
    };
    (tally, error)
}

pub fn test() -> anyhow::Result<()> {
    // Plain `cargo build` builds the workspace's default members: every host crate. The eBPF
    // crate only builds for bpfel (voipfilter/build.rs does that), so it is left out here and in
    // the host tests.
    run(cmd::cargo().arg("build")).context("building the workspace for the end-to-end tests")?;
    let mut steps = Vec::new();
    // --no-fail-fast: one failing test binary must not hide the results of the others.
    let (tally, error) = run_tests(cmd::cargo().args([
        "test",
        "--no-fail-fast",
        "--workspace",
        "--exclude",
        "voipfilter-tests",
        "--exclude",
        "voipfilter-ebpf",
        "--exclude",
        "voipfilter-bench-ebpf",
    ]));
    steps.push(Step {
        name: "host unit tests",
        tally,
        error,
    });
    let (tally, error) = run_tests(cmd::cargo().args([
        "test",
        "--no-fail-fast",
        "-p",
        "voipfilter-tests",
        "--",
        "--test-threads=1",
    ]));
    steps.push(Step {
        name: "kernel and netns tests",
        tally,
        error,
    });

    println!("\nsummary:");
    let mut failed = false;
    for s in &steps {
        let t = &s.tally;
        let status = if s.error.is_some() { "FAILED" } else { "ok" };
        println!(
            "  {:<24}{status:<8}{} passed, {} failed, {} ignored ({} test binaries)",
            s.name, t.passed, t.failed, t.ignored, t.binaries
        );
        for f in &t.failures {
            println!("    failed: {f}");
        }
        if let Some(e) = &s.error {
            println!("    {e}");
            failed = true;
        }
    }
    if failed {
        bail!("some tests failed (see the summary above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_sums_result_lines_and_names_failures() {
        let mut t = Tally::default();
        for l in [
            "running 3 tests",
            "test a::ok_one ... ok",
            "test b::broken ... FAILED",
            "test c::skipped ... ignored",
            "test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s",
            "test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 2 filtered out; finished in 1.20s",
        ] {
            t.line(l);
        }
        assert_eq!(
            t,
            Tally {
                passed: 13,
                failed: 1,
                ignored: 1,
                binaries: 2,
                failures: vec!["b::broken".to_string()]
            }
        );
    }
}
