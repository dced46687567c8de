//! The voipfilter daemon in the edge namespace, and its counters read through the CLI.

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader, Read},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::{interrupt, lab};
use crate::cmd::{describe, output};

pub struct Daemon {
    child: Option<Child>,
    bin: PathBuf,
    netns: String,
    pub pin_dir: PathBuf,
}

/// Prints each line of a child's output with a prefix; sends the lines on `tx`.
fn forward(out: impl Read + Send + 'static, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            println!("    | {l}");
            let _ = tx.send(l);
        }
    });
}

impl Daemon {
    /// `nsenter --net=…` switches only the network namespace, so voipfilter pins into the host's
    /// /sys/fs/bpf and the CLI (run the same way) finds the pins.
    fn command(bin: &Path, netns: &str, pin_dir: &Path) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/var/run/netns/{netns}"))
            .arg("--")
            .arg(bin)
            .arg("--pin-dir")
            .arg(pin_dir);
        c
    }

    /// Starts `voipfilter run` on `ifaces` and waits until it logs that it is running.
    pub fn start(
        bin: &Path,
        netns: &str,
        pin_dir: &Path,
        ifaces: &[&str],
    ) -> anyhow::Result<Daemon> {
        let mut c = Daemon::command(bin, netns, pin_dir);
        c.arg("run");
        for i in ifaces {
            c.args(["-i", i]);
        }
        // Own process group: Ctrl-C reaches only xtask, which then stops the daemon itself.
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // If xtask is killed outright (SIGKILL: no guard runs), the kernel sends voipfilter
        // SIGTERM, and it detaches and removes its pins itself.
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: prctl and getppid are async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            c.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(std::io::Error::other(
                        "xtask exited while starting voipfilter",
                    ));
                }
                Ok(())
            });
        }
        println!("$ {}", describe(&c));
        let mut child = c
            .spawn()
            .with_context(|| format!("could not start `{}`", describe(&c)))?;
        let (tx, rx) = mpsc::channel();
        if let Some(o) = child.stdout.take() {
            forward(o, tx.clone());
        }
        if let Some(e) = child.stderr.take() {
            forward(e, tx);
        }
        let mut d = Daemon {
            child: Some(child),
            bin: bin.to_path_buf(),
            netns: netns.to_string(),
            pin_dir: pin_dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            interrupt::check()?;
            if rx
                .recv_timeout(Duration::from_millis(100))
                .is_ok_and(|l| l.contains("] running"))
            {
                return Ok(d);
            }
            if let Some(child) = d.child.as_mut()
                && let Some(status) = child.try_wait().context("checking on voipfilter")?
            {
                d.child = None;
                bail!("voipfilter exited ({status}) before it was running; its log is above");
            }
            if Instant::now() > deadline {
                bail!("voipfilter did not log \"running\" within 60 s; its log is above");
            }
        }
    }

    /// `voipfilter --pin-dir … <args>` in the edge namespace.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut c = Daemon::command(&self.bin, &self.netns, &self.pin_dir);
        c.args(args);
        c
    }

    /// The per-(app, action) counters from `voipfilter stats --json`.
    pub fn counters(&self) -> anyhow::Result<Counters> {
        let out = output(&mut self.cli(&["stats", "--json"]))?;
        Counters::from_stats_json(&out)
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            bail!("voipfilter is not running")
        };
        println!("stopping voipfilter (SIGTERM to pid {})", child.id());
        terminate(&mut child, Duration::from_secs(10)).and_then(|s| {
            if s.success() {
                Ok(())
            } else {
                bail!("voipfilter exited with {s} after SIGTERM")
            }
        })
    }
}

/// SIGTERM, then SIGKILL if the child is still there after `grace`.
fn terminate(child: &mut Child, grace: Duration) -> anyhow::Result<std::process::ExitStatus> {
    let pid = child.id() as libc::pid_t;
    // SAFETY: signalling our own child, which has not been reaped yet.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    loop {
        if let Some(s) = child.try_wait().context("waiting for voipfilter")? {
            return Ok(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let s = child.wait().context("waiting for voipfilter")?;
            bail!(
                "voipfilter did not exit within {} s of SIGTERM; killed it ({s})",
                grace.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            println!("stopping voipfilter (pid {})", child.id());
            if let Err(e) = terminate(&mut child, Duration::from_secs(5)) {
                eprintln!("warning: {e:#}");
            }
        }
        if self.pin_dir.exists() {
            // It was stopped before it finished starting (its own clean-up was not armed yet).
            lab::remove_pins(&self.pin_dir);
            println!(
                "removed the pins voipfilter left in {}",
                self.pin_dir.display()
            );
        }
    }
}

/// Packet counts per (app, action), as `voipfilter stats --json` reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters(pub BTreeMap<(String, String), u64>);

impl Counters {
    pub fn from_stats_json(text: &str) -> anyhow::Result<Counters> {
        let v: Value = serde_json::from_str(text).context("parsing `voipfilter stats --json`")?;
        let apps = v["apps"]
            .as_array()
            .context("`voipfilter stats --json` has no \"apps\" list")?;
        let mut m = BTreeMap::new();
        for a in apps {
            let (Some(app), Some(action), Some(n)) = (
                a["app"].as_str(),
                a["action"].as_str(),
                a["packets"].as_u64(),
            ) else {
                bail!("unexpected entry in `voipfilter stats --json` apps: {a}");
            };
            *m.entry((app.to_string(), action.to_string())).or_default() += n;
        }
        Ok(Counters(m))
    }

    /// What was counted since `before`.
    pub fn since(&self, before: &Counters) -> Counters {
        Counters(
            self.0
                .iter()
                .map(|(k, &n)| {
                    (
                        k.clone(),
                        n.saturating_sub(before.0.get(k).copied().unwrap_or(0)),
                    )
                })
                .filter(|&(_, n)| n > 0)
                .collect(),
        )
    }

    pub fn action(&self, action: &str) -> u64 {
        self.0
            .iter()
            .filter(|((_, a), _)| a == action)
            .map(|(_, n)| n)
            .sum()
    }

    /// Packets counted under (app, action).
    pub fn get(&self, app: &str, action: &str) -> u64 {
        self.0
            .get(&(app.to_string(), action.to_string()))
            .copied()
            .unwrap_or(0)
    }

    pub fn dropped(&self) -> u64 {
        self.action("drop")
    }

    /// Passed on: `pass` and `monitor` (counted, then passed).
    pub fn passed(&self) -> u64 {
        self.action("pass") + self.action("monitor")
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// "sip drop 20, unknown pass 3".
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|((app, action), n)| format!("{app} {action} {n}"))
            .collect();
        if parts.is_empty() {
            "nothing counted".into()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_from_json_and_deltas() {
        let before = Counters::from_stats_json(
            r#"{"apps":[{"app":"sip","class":"signalling","action":"drop","packets":5,"bytes":900}]}"#,
        )
        .unwrap();
        let after = Counters::from_stats_json(
            r#"{"apps":[{"app":"sip","action":"drop","packets":25,"bytes":1},{"app":"unknown","action":"pass","packets":7,"bytes":1},{"app":"h323","action":"monitor","packets":2,"bytes":1}]}"#,
        )
        .unwrap();
        let d = after.since(&before);
        assert_eq!((d.dropped(), d.passed(), d.total()), (20, 9, 29));
        assert_eq!(d.describe(), "h323 monitor 2, sip drop 20, unknown pass 7");
        assert_eq!(after.since(&after).describe(), "nothing counted");
        assert!(Counters::from_stats_json(r#"{"apps":[{"app":"sip"}]}"#).is_err());
        assert!(Counters::from_stats_json("not json").is_err());
    }
}
