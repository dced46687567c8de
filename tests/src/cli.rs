//! The real `voipfilter` binary: where it is, running it, reading `stats --json`.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
};

use serde_json::Value;

/// `target/<profile>/voipfilter`, next to this test executable (`target/<profile>/deps/..`).
/// Panics with a hint if it is missing: `cargo test` builds the library, not the binary.
pub fn voipfilter_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("unexpected test executable path {}", exe.display()));
    let bin = profile_dir.join("voipfilter");
    if !bin.is_file() {
        panic!(
            "{} is missing: run `cargo build -p voipfilter` first (the integration tests run the real binary)",
            bin.display()
        );
    }
    warn_if_stale(&bin, &profile_dir.join("deps"));
    bin
}

/// `cargo test` rebuilds the voipfilter library but not its binary: say so when the binary is
/// older than the newest build of the library, once per test process.
fn warn_if_stale(bin: &Path, deps: &Path) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let newest_lib = std::fs::read_dir(deps)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("libvoipfilter-"))
            .filter_map(|e| modified(&e.path()))
            .max();
        if let (Some(lib), Some(b)) = (newest_lib, modified(bin))
            && lib > b
        {
            eprintln!(
                "warning: {} is older than the newest build of the voipfilter library; \
                 if these tests fail, run `cargo build -p voipfilter` and try again",
                bin.display()
            );
        }
    });
}

/// What a finished command printed.
#[derive(Debug)]
pub struct CliOutput {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn run(mut cmd: Command) -> CliOutput {
        let what = format!("{cmd:?}");
        let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        CliOutput {
            what,
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with everything it printed unless the command succeeded.
    pub fn ok(self) -> CliOutput {
        assert!(self.status.success(), "{} failed ({}):\nstdout:\n{}\nstderr:\n{}", self.what, self.status, self.stdout, self.stderr);
        self
    }

    /// Asserts that the command failed with exit status 1 and that its error, on stderr,
    /// contains every one of `needles`; returns the error text.
    pub fn fails_with(self, needles: &[&str]) -> String {
        assert!(
            !self.status.success(),
            "{} should have failed but succeeded:\nstdout:\n{}\nstderr:\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        assert_eq!(self.status.code(), Some(1), "{}: exit status {} (stderr: {})", self.what, self.status, self.stderr);
        for n in needles {
            assert!(self.stderr.contains(n), "{}: stderr should contain {n:?} but is:\n{}", self.what, self.stderr);
        }
        assert!(
            !self.stderr.contains("panicked"),
            "{}: the binary panicked instead of reporting an error:\n{}",
            self.what,
            self.stderr
        );
        self.stderr
    }
}

/// `voipfilter --pin-dir DIR ARGS` as a command (not run yet), with logging at the default
/// level whatever the caller's RUST_LOG says.
pub fn command(pin_dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(voipfilter_bin());
    c.arg("--pin-dir").arg(pin_dir).args(args).env("RUST_LOG", "info");
    c
}

/// Runs `voipfilter --pin-dir DIR ARGS` inside the network namespace `ns` (`nsenter --net`).
pub fn run_in(ns: &crate::netns::Netns, pin_dir: &Path, args: &[&str]) -> CliOutput {
    let inner = command(pin_dir, args);
    let mut c = ns.command(inner.get_program());
    c.args(inner.get_args()).env("RUST_LOG", "info");
    CliOutput::run(c)
}

/// `stats --json` output, with accessors that return 0 for counters that are absent.
#[derive(Clone, Debug)]
pub struct Stats(pub Value);

impl Stats {
    pub fn parse(text: &str) -> Stats {
        Stats(serde_json::from_str(text).unwrap_or_else(|e| panic!("stats --json printed invalid JSON ({e}):\n{text}")))
    }

    /// (packets, bytes) counted under (app, action).
    pub fn app(&self, app: &str, action: &str) -> (u64, u64) {
        let apps = self.0["apps"].as_array().unwrap_or_else(|| panic!("no apps array in {}", self.0));
        let rows: Vec<_> = apps.iter().filter(|r| r["app"] == app && r["action"] == action).collect();
        assert!(rows.len() <= 1, "more than one row for {app}/{action}: {}", self.0);
        rows.first().map_or((0, 0), |r| (num(&r["packets"]), num(&r["bytes"])))
    }

    /// (packets, bytes) of `totals.<action>` (`drop`, `monitor`, `pass` or `all`).
    pub fn total(&self, action: &str) -> (u64, u64) {
        let t = &self.0["totals"][action];
        (num(&t["packets"]), num(&t["bytes"]))
    }

    /// A `not_parsed` counter by reason name.
    pub fn not_parsed(&self, reason: &str) -> u64 {
        num(&self.0["not_parsed"][reason])
    }

    /// Sum of every `not_parsed` counter.
    pub fn not_parsed_total(&self) -> u64 {
        self.0["not_parsed"].as_object().map_or(0, |m| m.values().map(num).sum())
    }

    /// (name, mode) of every interface.
    pub fn interfaces(&self) -> Vec<(String, String)> {
        self.0["interfaces"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| (i["name"].as_str().unwrap_or("?").to_string(), i["mode"].as_str().unwrap_or("?").to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("expected a count, got {v}"))
}
