//! The demo's network: three namespaces joined by two veth pairs.
//!
//! ```text
//!  vfd-sub-PID                 vfd-edge-PID                          vfd-far-PID
//!  eth0 10.201.1.2 <--veth--> to-sub 10.201.1.1 | to-far 10.201.2.1 <--veth--> eth0 10.201.2.2
//!                             (forwards; voipfilter on to-sub and to-far)
//! ```
//!
//! IPv6 is off and neighbours are permanent, so the only packets are the ones the demo sends.
//! Dropping the [`Lab`] deletes the namespaces (and with them the veths).

use std::{
    fs::File,
    net::Ipv4Addr,
    os::{fd::AsRawFd as _, unix::process::CommandExt as _},
    path::Path,
    process::Command,
};

use anyhow::{Context as _, anyhow};

use crate::cmd::output;

pub const SUB_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 1, 2);
pub const EDGE_SUB_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 1, 1);
pub const EDGE_FAR_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 2, 1);
pub const FAR_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 2, 2);
/// The edge's interfaces, where voipfilter runs.
pub const EDGE_SUB_IF: &str = "to-sub";
pub const EDGE_FAR_IF: &str = "to-far";
const HOST_IF: &str = "eth0";
const MAC_SUB: &str = "02:76:66:01:00:02";
const MAC_EDGE_SUB: &str = "02:76:66:01:00:01";
const MAC_EDGE_FAR: &str = "02:76:66:02:00:01";
const MAC_FAR: &str = "02:76:66:02:00:02";

const NETNS_DIR: &str = "/var/run/netns";
const ROLES: [&str; 3] = ["sub", "edge", "far"];

pub fn ns_name(role: &str, pid: u32) -> String {
    format!("vfd-{role}-{pid}")
}

pub fn pin_dir(pid: u32) -> String {
    format!("/sys/fs/bpf/voipfilter-demo-{pid}")
}

/// `ip` in its own process group, so that Ctrl-C at the terminal does not kill a clean-up step.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    output(Command::new("ip").args(args).process_group(0)).map(drop)
}

pub struct Lab {
    pub sub: String,
    pub edge: String,
    pub far: String,
    created: Vec<String>,
}

impl Lab {
    pub fn create(pid: u32) -> anyhow::Result<Lab> {
        let mut lab = Lab {
            sub: ns_name("sub", pid),
            edge: ns_name("edge", pid),
            far: ns_name("far", pid),
            created: Vec::new(),
        };
        println!("creating namespaces {}, {}, {}", lab.sub, lab.edge, lab.far);
        for ns in [lab.sub.clone(), lab.edge.clone(), lab.far.clone()] {
            ip(&["netns", "add", &ns])?;
            lab.created.push(ns.clone());
            in_netns(&ns, || {
                write_sysctl("net/ipv6/conf/all/disable_ipv6", "1")?;
                write_sysctl("net/ipv6/conf/default/disable_ipv6", "1")
            })?;
        }
        in_netns(&lab.edge, || write_sysctl("net/ipv4/ip_forward", "1"))?;
        let (sub, edge, far) = (lab.sub.as_str(), lab.edge.as_str(), lab.far.as_str());
        for (ns, mac, peer, peer_mac) in [
            (sub, MAC_SUB, EDGE_SUB_IF, MAC_EDGE_SUB),
            (far, MAC_FAR, EDGE_FAR_IF, MAC_EDGE_FAR),
        ] {
            ip(&[
                "-n", ns, "link", "add", HOST_IF, "address", mac, "type", "veth", "peer", "name",
                peer, "address", peer_mac, "netns", edge,
            ])?;
        }
        let cidr = |a: Ipv4Addr| format!("{a}/24");
        for (ns, dev, addr, neigh, neigh_mac) in [
            (sub, HOST_IF, SUB_IP, EDGE_SUB_IP, MAC_EDGE_SUB),
            (edge, EDGE_SUB_IF, EDGE_SUB_IP, SUB_IP, MAC_SUB),
            (edge, EDGE_FAR_IF, EDGE_FAR_IP, FAR_IP, MAC_FAR),
            (far, HOST_IF, FAR_IP, EDGE_FAR_IP, MAC_EDGE_FAR),
        ] {
            ip(&["-n", ns, "addr", "add", &cidr(addr), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            let n = neigh.to_string();
            ip(&[
                "-n",
                ns,
                "neigh",
                "replace",
                &n,
                "lladdr",
                neigh_mac,
                "dev",
                dev,
                "nud",
                "permanent",
            ])?;
        }
        for ns in [sub, edge, far] {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        ip(&[
            "-n",
            sub,
            "route",
            "add",
            "default",
            "via",
            &EDGE_SUB_IP.to_string(),
        ])?;
        ip(&[
            "-n",
            far,
            "route",
            "add",
            "default",
            "via",
            &EDGE_FAR_IP.to_string(),
        ])?;
        Ok(lab)
    }

    /// Whether an XDP program is attached to `dev` in the edge namespace (`ip link` shows
    /// `xdp`, `xdpgeneric` or `prog/xdp`).
    pub fn edge_has_xdp(&self, dev: &str) -> anyhow::Result<bool> {
        let out =
            output(Command::new("ip").args(["-n", &self.edge, "-d", "link", "show", "dev", dev]))?;
        Ok(out.contains("xdp"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.created.drain(..).rev() {
            match ip(&["netns", "del", &ns]) {
                Ok(()) => println!("deleted namespace {ns}"),
                Err(e) => eprintln!("warning: could not delete namespace {ns}: {e:#}"),
            }
        }
    }
}

/// Removes namespaces and pin directories of earlier demos whose process no longer exists
/// (killed with SIGKILL, so their guards never ran).
pub fn remove_stale() {
    let alive = |pid: &str| Path::new("/proc").join(pid).exists();
    if let Ok(dir) = std::fs::read_dir(NETNS_DIR) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = ROLES
                .iter()
                .find_map(|r| name.strip_prefix(&format!("vfd-{r}-")))
            else {
                continue;
            };
            if pid.parse::<u32>().is_ok() && !alive(pid) {
                match ip(&["netns", "del", &name]) {
                    Ok(()) => println!(
                        "removed namespace {name} left by an earlier demo (pid {pid} is gone)"
                    ),
                    Err(e) => eprintln!("warning: could not remove stale namespace {name}: {e:#}"),
                }
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/sys/fs/bpf") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix("voipfilter-demo-") else {
                continue;
            };
            if pid.parse::<u32>().is_ok() && !alive(pid) {
                remove_pins(&e.path());
                println!(
                    "removed pins {} left by an earlier demo (pid {pid} is gone)",
                    e.path().display()
                );
            }
        }
    }
}

/// Deletes a pin directory and the pins in it.
pub fn remove_pins(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Runs `f` on a thread that has entered network namespace `ns`. Sockets opened there stay in
/// `ns` and can be used from any thread afterwards (setns affects only the calling thread).
pub fn in_netns<T: Send>(
    ns: &str,
    f: impl FnOnce() -> anyhow::Result<T> + Send,
) -> anyhow::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter(ns)?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(anyhow!("a thread in namespace {ns} panicked")))
    })
}

fn enter(ns: &str) -> anyhow::Result<()> {
    let path = Path::new(NETNS_DIR).join(ns);
    let f = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: a valid namespace fd; affects only this thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("entering network namespace {ns}"));
    }
    Ok(())
}

/// Writes a sysctl of the calling thread's network namespace (/proc/sys/net follows the thread).
fn write_sysctl(key: &str, value: &str) -> anyhow::Result<()> {
    let path = Path::new("/proc/sys").join(key);
    std::fs::write(&path, value)
        .with_context(|| format!("writing {value} to {}", path.display()))?;
    let back =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    if back.trim() != value {
        return Err(anyhow!(
            "{} is {} after writing {value}",
            path.display(),
            back.trim()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_kernel_limits() {
        // Namespace names are files; interface names must stay below IFNAMSIZ (16 with the NUL).
        for role in ROLES {
            assert!(ns_name(role, u32::MAX).starts_with("vfd-"));
        }
        for dev in [HOST_IF, EDGE_SUB_IF, EDGE_FAR_IF] {
            assert!(dev.len() < 16 && !dev.contains("xdp"), "{dev}");
        }
        assert_eq!(pin_dir(42), "/sys/fs/bpf/voipfilter-demo-42");
    }
}
