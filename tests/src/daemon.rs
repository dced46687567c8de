//! The real `voipfilter run` as a child process inside a test namespace.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use crate::{
    cli::{self, CliOutput, Stats},
    netns::Netns,
    unique,
};

/// What the daemon logs once it has attached and pinned its maps.
const READY: &str = "running;";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh pin directory path under /sys/fs/bpf (not created).
pub fn fresh_pin_dir() -> PathBuf {
    PathBuf::from(format!("/sys/fs/bpf/vft-{}", unique::token()))
}

/// `voipfilter --pin-dir /sys/fs/bpf/vft-<token> run -i IF ...`, started with
/// `nsenter --net=<ns>` (so it shares /sys/fs/bpf with the tests). On drop: SIGTERM, wait, and
/// remove whatever it left.
pub struct Daemon {
    child: Option<Child>,
    ns_path: PathBuf,
    ns_name: String,
    pin_dir: PathBuf,
    /// False for a daemon that failed to start: the pin directory may belong to another one.
    owns_pins: bool,
    log: PathBuf,
}

/// How a daemon ended.
#[derive(Debug)]
pub struct Stopped {
    pub status: ExitStatus,
    pub log: String,
}

impl Daemon {
    /// Starts a daemon on `ifaces` with extra `run` arguments and waits until it is running;
    /// panics with its log if it exits or does not get there.
    pub fn start(ns: &Netns, ifaces: &[&str], extra: &[&str]) -> Daemon {
        Self::start_with_pin_dir(ns, &fresh_pin_dir(), ifaces, extra)
    }

    pub fn start_with_pin_dir(ns: &Netns, pin_dir: &Path, ifaces: &[&str], extra: &[&str]) -> Daemon {
        match Self::try_start(ns, pin_dir, ifaces, extra) {
            Ok(d) => d,
            Err(stopped) => panic!("voipfilter run exited early ({}):\n{}", stopped.status, stopped.log),
        }
    }

    /// Like [`Daemon::start`] but returns how the daemon ended if it exits before running.
    pub fn try_start(ns: &Netns, pin_dir: &Path, ifaces: &[&str], extra: &[&str]) -> Result<Daemon, Stopped> {
        let log = std::env::temp_dir().join(format!("vft-daemon-{}.log", unique::token()));
        let log_file = File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let log_err = log_file.try_clone().expect("cloning the log file handle");
        let mut args = vec!["--pin-dir".to_string(), pin_dir.display().to_string(), "run".to_string()];
        for i in ifaces {
            args.extend(["-i".to_string(), i.to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = ns
            .command(cli::voipfilter_bin())
            .args(&args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting voipfilter run: {e}"));
        let mut d = Daemon {
            child: Some(child),
            ns_path: ns.path(),
            ns_name: ns.name().to_string(),
            pin_dir: pin_dir.to_path_buf(),
            owns_pins: true,
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if d.log().contains(READY) {
                return Ok(d);
            }
            let child = d.child.as_mut().expect("child present until stopped");
            if let Some(status) = child.try_wait().expect("waiting for voipfilter run") {
                d.child = None;
                d.owns_pins = false;
                return Err(Stopped { status, log: d.log() });
            }
            if Instant::now() > deadline {
                panic!("voipfilter run did not report {READY:?} within {START_TIMEOUT:?}:\n{}", d.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `voipfilter --pin-dir <this daemon's> ARGS`, run in the daemon's namespace.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        let inner = cli::command(&self.pin_dir, args);
        let mut c = std::process::Command::new("nsenter");
        c.arg(format!("--net={}", self.ns_path.display())).arg("--").arg(inner.get_program()).args(inner.get_args());
        c.env("RUST_LOG", "info");
        CliOutput::run(c)
    }

    /// `stats --json` of this daemon.
    pub fn stats(&self) -> Stats {
        Stats::parse(&self.cli(&["stats", "--json"]).ok().stdout)
    }

    /// Polls `stats` until `done` holds (counters are updated as the kernel processes frames,
    /// which can lag the sender a little), or 3 s pass; returns the last stats either way.
    pub fn stats_when(&self, done: impl Fn(&Stats) -> bool) -> Stats {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let s = self.stats();
            if done(&s) || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the daemon to exit; panics if it does not within 10 s.
    pub fn stop(mut self) -> Stopped {
        let status = self.terminate().expect("the daemon was running");
        Stopped { status, log: self.log() }
    }

    fn terminate(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    panic!(
                        "voipfilter run (netns {}) did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed it ({status:?}):\n{}",
                        self.ns_name,
                        self.log()
                    );
                }
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Not stopped by the test (it failed, or did not care): stop it, without panicking
            // inside a panic.
            if let Some(mut child) = self.child.take() {
                // SAFETY: kill(2) on our own child's pid.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
                let deadline = Instant::now() + STOP_TIMEOUT;
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Whatever a killed daemon left behind.
        if !self.owns_pins {
            let _ = std::fs::remove_file(&self.log);
            return;
        }
        if let Ok(entries) = std::fs::read_dir(&self.pin_dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
            let _ = std::fs::remove_dir(&self.pin_dir);
        }
        let _ = std::fs::remove_file(&self.log);
    }
}
