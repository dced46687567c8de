//! The benchmark's network namespace: one namespace `vfb-<pid>` holding a veth pair
//! (`vfba` -> `vfbb`). Nothing leaves it: the generator redirects into `vfba`, the filter under
//! test runs on `vfbb`. Deleted on drop, on SIGINT/SIGTERM (a signal thread), and by the next
//! run if this one was killed (namespaces whose pid is gone).

use std::{
    os::fd::AsRawFd as _,
    process::Command,
    sync::Mutex,
};

use anyhow::Context as _;

use crate::util::sh;

static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub const GEN_IF: &str = "vfba";
pub const DUT_IF: &str = "vfbb";

pub struct Lab {
    pub ns: String,
}

/// Blocks SIGINT/SIGTERM in this thread (and the threads it starts later) and starts a thread
/// that, on either signal, deletes the namespaces still alive and exits. Call first in main.
pub fn install_signal_cleanup() {
    // SAFETY: plain libc signal-mask calls on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let set2 = set;
        std::thread::spawn(move || {
            let mut sig = 0;
            libc::sigwait(&set2, &mut sig);
            crate::util::progress_done();
            eprintln!("interrupted: removing the benchmark's namespaces");
            cleanup_all();
            std::process::exit(130);
        });
    }
}

fn cleanup_all() {
    let names: Vec<String> = LIVE.lock().map(|v| v.clone()).unwrap_or_default();
    for n in names {
        let _ = Command::new("ip").args(["netns", "del", &n]).status();
    }
}

/// Removes namespaces left by benchmark runs that were killed (their pid is gone).
pub fn remove_stale() {
    let Ok(list) = sh(Command::new("ip").args(["netns", "list"])) else { return };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if let Some(pid) = name.strip_prefix("vfb-").and_then(|p| p.parse::<u32>().ok())
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            eprintln!("removing namespace {name} left by an earlier benchmark run");
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

impl Lab {
    pub fn new() -> anyhow::Result<Lab> {
        let ns = format!("vfb-{}", std::process::id());
        sh(Command::new("ip").args(["netns", "add", &ns])).context("creating the benchmark namespace")?;
        LIVE.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(ns.clone());
        let lab = Lab { ns };
        lab.ip(&["link", "set", "lo", "up"])?;
        lab.ip(&["link", "add", GEN_IF, "type", "veth", "peer", "name", DUT_IF])?;
        for i in [GEN_IF, DUT_IF] {
            lab.exec(&["sysctl", "-qw", &format!("net.ipv6.conf.{i}.disable_ipv6=1")]).ok();
            lab.ip(&["link", "set", i, "up"])?;
        }
        Ok(lab)
    }

    pub fn ip(&self, args: &[&str]) -> anyhow::Result<String> {
        sh(Command::new("ip").arg("-n").arg(&self.ns).args(args))
    }

    /// `nsenter --net=` (keeps this mount namespace).
    pub fn exec(&self, args: &[&str]) -> anyhow::Result<String> {
        sh(Command::new("nsenter").arg(format!("--net=/var/run/netns/{}", self.ns)).arg("--").args(args))
    }

    /// Moves the calling thread into the namespace.
    pub fn enter(&self) -> anyhow::Result<()> {
        let f = std::fs::File::open(format!("/var/run/netns/{}", self.ns)).context("opening the namespace")?;
        // SAFETY: valid fd; affects only this thread.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            anyhow::bail!("setns: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// (rx packets, rx otherhost-dropped) of the device under test.
    pub fn dut_counters(&self) -> anyhow::Result<(u64, u64)> {
        let out = self.ip(&["-j", "-s", "-s", "link", "show", "dev", DUT_IF])?;
        let v: serde_json::Value = serde_json::from_str(&out).context("ip -j output")?;
        let rx = &v[0]["stats64"]["rx"];
        let packets = rx["packets"].as_u64().context("no rx packets in `ip -s link`")?;
        // iproute2 leaves the field out while it is zero.
        let otherhost = rx["otherhost"].as_u64().or_else(|| rx["otherhost_dropped"].as_u64()).unwrap_or(0);
        Ok((packets, otherhost))
    }

    pub fn xdp_off(&self) {
        let _ = self.ip(&["link", "set", "dev", DUT_IF, "xdp", "off"]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        if let Ok(mut v) = LIVE.lock() {
            v.retain(|n| n != &self.ns);
        }
    }
}
