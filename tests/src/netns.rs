//! Network namespaces and veth pairs for tests, removed on drop (also when a test panics), and
//! running code inside a namespace.
//!
//! Every namespace starts with IPv6 disabled, and veth ends get static neighbour entries, so the
//! only frames on a link are the ones a test sends (no ARP, ND, MLD or router solicitations):
//! counters can then be compared exactly.

use std::{
    fs::File,
    net::Ipv4Addr,
    os::fd::AsRawFd as _,
    path::PathBuf,
    process::{Command, Output},
};

use crate::unique;

/// Runs a command and panics with its output unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// A network namespace `vft-<tag>-<token>`, deleted on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace, disables IPv6 in it and brings `lo` up.
    pub fn new(tag: &str) -> Netns {
        let name = format!("vft-{tag}-{}", unique::token());
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        for key in ["net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"] {
            ns.sysctl(key, "1");
        }
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/var/run/netns/<name>`: what `nsenter --net=` and `setns` take.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }

    /// `ip -n <ns> ARGS`; panics on failure; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let out = run_ok(Command::new("ip").arg("-n").arg(&self.name).args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn sysctl(&self, key: &str, value: &str) {
        run_ok(Command::new("ip").args(["netns", "exec", &self.name, "sysctl", "-qw", &format!("{key}={value}")]));
    }

    /// A command that runs `program` in this network namespace only (`nsenter --net`), so that
    /// it shares this process's mount namespace and with it /sys/fs/bpf. nsenter execs the
    /// program: the child's pid is the program's.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display())).arg("--").arg(program);
        c
    }

    /// Runs `f` on a new thread that has entered this namespace and returns its result. Sockets
    /// created in `f` stay in the namespace when returned and used elsewhere.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        in_netns(&self.name, f)
    }

    /// `ip link show <ifname>` in this namespace.
    pub fn link_show(&self, ifname: &str) -> String {
        self.ip(&["link", "show", "dev", ifname])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let out = Command::new("ip").args(["netns", "del", &self.name]).output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!("warning: ip netns del {}: {}", self.name, String::from_utf8_lossy(&o.stderr)),
            Err(e) => eprintln!("warning: ip netns del {}: {e}", self.name),
        }
    }
}

/// Runs `f` on a new thread inside the network namespace `/var/run/netns/<name>`; a panic in `f`
/// is re-raised here.
pub fn in_netns<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = PathBuf::from("/var/run/netns").join(name);
    let handle = std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
        // SAFETY: a valid namespace fd; setns only affects this thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            panic!("setns into {}: {}", path.display(), std::io::Error::last_os_error());
        }
        f()
    });
    match handle.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// One end of a veth pair.
#[derive(Clone, Debug)]
pub struct End {
    /// Namespace the end lives in.
    pub ns: String,
    pub ifname: String,
    pub mac: [u8; 6],
    pub addr: Ipv4Addr,
}

/// A veth pair between two namespaces, addressed in 198.18.0.0/24 (RFC 2544's benchmarking
/// range), up, with permanent neighbour entries. Removed with its namespaces.
#[derive(Clone, Debug)]
pub struct Veth {
    pub a: End,
    pub b: End,
}

/// Frame length of a UDP/IPv4 datagram with `payload` bytes on an untagged Ethernet link, as
/// XDP sees it (no FCS).
pub const fn udp4_frame_len(payload: usize) -> usize {
    14 + 20 + 8 + payload
}

fn mac_text(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

impl Veth {
    /// Creates `vfa<token>` in `a` (198.18.0.1) and its peer `vfb<token>` in `b` (198.18.0.2).
    pub fn new(a: &Netns, b: &Netns) -> Veth {
        let token = unique::token();
        let end = |ns: &Netns, side: &str, last: u8| End {
            ns: ns.name().to_string(),
            ifname: format!("vf{side}{token}"),
            mac: [0x02, 0x76, 0x66, 0x74, 0x00, last],
            addr: Ipv4Addr::new(198, 18, 0, last),
        };
        let (ea, eb) = (end(a, "a", 1), end(b, "b", 2));
        a.ip(&[
            "link", "add", &ea.ifname, "address", &mac_text(&ea.mac), "type", "veth", "peer", "name", &eb.ifname,
            "address", &mac_text(&eb.mac), "netns", b.name(),
        ]);
        for (ns, me, peer) in [(a, &ea, &eb), (b, &eb, &ea)] {
            ns.ip(&["addr", "add", &format!("{}/24", me.addr), "dev", &me.ifname]);
            ns.ip(&[
                "neigh", "add", &peer.addr.to_string(), "lladdr", &mac_text(&peer.mac), "dev", &me.ifname, "nud",
                "permanent",
            ]);
            ns.ip(&["link", "set", "dev", &me.ifname, "up"]);
        }
        Veth { a: ea, b: eb }
    }
}
