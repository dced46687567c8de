//! A real SIP call with SIPp (package `sip-tester`): its built-in UAS scenario on the far side,
//! its UAC scenario (INVITE with SDP, ACK, BYE) from the subscriber, one call.

use std::{
    net::SocketAddrV4,
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use super::interrupt;
use crate::cmd::describe;

/// `sipp` on the PATH, if installed.
pub fn find() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("sipp"))
            .find(|f| f.is_file())
    })
}

/// `nsenter --net=/var/run/netns/NS -- sipp ARGS`, in its own process group (Ctrl-C reaches
/// only xtask), killed by the kernel if xtask dies.
fn command(sipp: &PathBuf, netns: &str, args: &[String]) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/var/run/netns/{netns}"))
        .arg("--")
        .arg(sipp)
        .args(args)
        .stdin(Stdio::null())
        .process_group(0);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

/// The UAS, answering calls until dropped.
pub struct Uas {
    child: Child,
}

impl Uas {
    pub fn start(sipp: &PathBuf, netns: &str, at: SocketAddrV4) -> anyhow::Result<Uas> {
        let args: Vec<String> = [
            "-sn",
            "uas",
            "-i",
            &at.ip().to_string(),
            "-p",
            &at.port().to_string(),
            "-nostdin",
        ]
        .map(String::from)
        .to_vec();
        let mut c = command(sipp, netns, &args);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        println!("$ {}", describe(&c));
        let mut child = c
            .spawn()
            .with_context(|| format!("could not start `{}`", describe(&c)))?;
        // Give it a moment to bind; an early exit is an error.
        std::thread::sleep(Duration::from_millis(300));
        if let Some(status) = child.try_wait().context("checking on sipp")? {
            bail!("the SIPp UAS exited at once ({status})");
        }
        Ok(Uas { child })
    }
}

impl Drop for Uas {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signalling our own child, not reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(2);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How one UAC call went.
pub struct Call {
    pub status: ExitStatus,
    pub elapsed: Duration,
    /// INVITEs sent, retransmissions included (from SIPp's final screen).
    pub invites: Option<u64>,
    /// Messages received (responses to the INVITE and the BYE), from SIPp's final screen.
    pub received: Option<u64>,
}

impl Call {
    /// SIPp exits 0 when every call succeeded.
    pub fn succeeded(&self) -> bool {
        self.status.success()
    }
}

/// One call from `from` (address and local port) to `to`; the call fails when no answer comes
/// within `recv_timeout`.
pub fn call(
    sipp: &PathBuf,
    netns: &str,
    from: SocketAddrV4,
    to: SocketAddrV4,
    recv_timeout: Duration,
) -> anyhow::Result<Call> {
    let args: Vec<String> = [
        "-sn".to_string(),
        "uac".to_string(),
        to.to_string(),
        "-i".to_string(),
        from.ip().to_string(),
        "-p".to_string(),
        from.port().to_string(),
        "-m".to_string(),
        "1".to_string(),
        "-nostdin".to_string(),
        "-recv_timeout".to_string(),
        format!("{}", recv_timeout.as_millis()),
        "-timeout".to_string(),
        format!("{}s", recv_timeout.as_secs() + 3),
    ]
    .to_vec();
    let mut c = command(sipp, netns, &args);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    println!("$ {}", describe(&c));
    let start = Instant::now();
    let mut child = c
        .spawn()
        .with_context(|| format!("could not start `{}`", describe(&c)))?;
    let deadline = start + recv_timeout + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = child.try_wait().context("waiting for sipp")? {
            break s;
        }
        if interrupt::interrupted() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            interrupt::check()?;
            bail!(
                "the SIPp UAC did not finish within {deadline:?}",
                deadline = deadline - start
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut o, &mut out);
    }
    Ok(Call {
        status,
        elapsed,
        invites: screen_count(last_screen(&out), "INVITE ---------->", true),
        received: received(last_screen(&out)),
    })
}

/// The numbers among the words of `s` (`E-RTD1` is not one).
fn numbers(s: &str) -> Vec<u64> {
    s.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

fn first_number(s: &str) -> Option<u64> {
    numbers(s).first().copied()
}

/// The last scenario screen SIPp printed.
fn last_screen(out: &str) -> &str {
    out.rfind("Scenario Screen").map_or(out, |i| &out[i..])
}

/// Messages received, summed over the screen's `<----------` lines.
fn received(screen: &str) -> Option<u64> {
    let lines: Vec<&str> = screen
        .lines()
        .filter(|l| l.contains("<----------"))
        .collect();
    if lines.is_empty() {
        return None;
    }
    let mut n = 0;
    for l in lines {
        let (_, rest) = l.split_once("<----------")?;
        n += first_number(rest)?;
    }
    Some(n)
}

/// From a scenario screen, the first line starting with `what`: Messages (plus Retrans if
/// `with_retrans`). The line reads `INVITE ---------->  1  3  0` or `200 <----------  E-RTD1 1 ...`.
fn screen_count(out: &str, what: &str, with_retrans: bool) -> Option<u64> {
    let line = out.lines().find(|l| l.trim_start().starts_with(what))?;
    let nums = numbers(&line.trim_start()[what.len()..]);
    let messages = *nums.first()?;
    Some(if with_retrans {
        messages + nums.get(1).copied().unwrap_or(0)
    } else {
        messages
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_scenario_screen() {
        let screen = "\
                                 Messages  Retrans   Timeout   Unexpected-Msg
      INVITE ---------->         1         3         0
         100 <----------         0         0         0         0
         180 <----------         1         0         0         0
         200 <----------  E-RTD1 1         0         0         0
         ACK ---------->         1         0
";
        assert_eq!(screen_count(screen, "INVITE ---------->", true), Some(4));
        assert_eq!(screen_count(screen, "180 <----------", false), Some(1));
        assert_eq!(screen_count(screen, "200 <----------", false), Some(1));
        assert_eq!(screen_count(screen, "BYE ---------->", false), None);
        assert_eq!(received(screen), Some(2));
        assert_eq!(
            last_screen("a Scenario Screen x Scenario Screen y"),
            "Scenario Screen y"
        );
    }
}
