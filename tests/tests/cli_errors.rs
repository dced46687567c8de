//! Every way the CLI is told to do something it cannot: it exits 1 with a clear one-line reason
//! and leaves nothing behind. Runs the real binary; needs root, `ip`, `nsenter`, `setpriv` and
//! `xdp-filter` (xdp-tools).

use std::path::Path;

use voipfilter_tests::{
    cli::{self, CliOutput},
    daemon::{Daemon, fresh_pin_dir},
    netns::{Netns, Veth},
    tempdir::TempDir,
};

fn assert_gone(pin_dir: &Path) {
    assert!(!pin_dir.exists(), "{} was left behind by a failed command", pin_dir.display());
}

#[test]
fn unknown_interface() {
    let ns = Netns::new("ifx");
    let pin_dir = fresh_pin_dir();
    let err = cli::run_in(&ns, &pin_dir, &["run", "-i", "nosuchif0"])
        .fails_with(&["unknown interface 'nosuchif0'", "ip link"]);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    // A good interface next to a bad one: nothing is attached to the good one.
    let err = cli::run_in(&ns, &pin_dir, &["run", "-i", "lo", "-i", "nosuchif1"]).fails_with(&["unknown interface 'nosuchif1'"]);
    assert!(!err.contains("attached"), "{err}");
    assert!(!ns.link_show("lo").contains("xdp"));
    assert_gone(&pin_dir);
}

#[test]
fn not_root() {
    let ns = Netns::new("user");
    let pin_dir = fresh_pin_dir();
    for args in [&["run", "-i", "lo"][..], &["stats"], &["stats", "--json"], &["rules", "list"], &["rules", "add", "port", "5060"]] {
        let inner = cli::command(&pin_dir, args);
        let mut c = ns.command("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--"]);
        c.arg(inner.get_program()).args(inner.get_args());
        let err = CliOutput::run(c).fails_with(&["needs root", "run it with sudo"]);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    assert!(!ns.link_show("lo").contains("xdp"));
    assert_gone(&pin_dir);
}

/// `xdp-filter load <if>` in a namespace, unloaded on drop. libxdp keeps its own state in a
/// private directory (`LIBXDP_BPFFS`); xdp-filter pins its maps under /sys/fs/bpf/xdp-filter
/// while loaded, as it always does.
struct XdpFilter<'a> {
    ns: &'a Netns,
    ifname: String,
    libxdp_dir: std::path::PathBuf,
    loaded: bool,
}

impl<'a> XdpFilter<'a> {
    fn command(ns: &Netns, libxdp_dir: &Path, args: &[&str]) -> CliOutput {
        let mut c = ns.command("xdp-filter");
        c.args(args).env("LIBXDP_BPFFS", libxdp_dir);
        CliOutput::run(c)
    }

    fn load(ns: &'a Netns, ifname: &str) -> XdpFilter<'a> {
        let libxdp_dir = fresh_pin_dir();
        std::fs::create_dir(&libxdp_dir).unwrap_or_else(|e| panic!("creating {}: {e}", libxdp_dir.display()));
        let mut g = XdpFilter { ns, ifname: ifname.to_string(), libxdp_dir, loaded: false };
        Self::command(ns, &g.libxdp_dir, &["load", ifname]).ok();
        g.loaded = true;
        g
    }

    fn unload(&mut self) -> CliOutput {
        self.loaded = false;
        Self::command(self.ns, &self.libxdp_dir, &["unload", &self.ifname])
    }
}

impl Drop for XdpFilter<'_> {
    fn drop(&mut self) {
        if self.loaded {
            let out = self.unload();
            if !out.status.success() {
                eprintln!("warning: xdp-filter unload {}: {}", self.ifname, out.stderr);
            }
        }
        let _ = std::fs::remove_dir_all(&self.libxdp_dir);
    }
}

#[test]
fn program_already_attached_by_another_tool() {
    let (a, b) = (Netns::new("busya"), Netns::new("busyb"));
    let veth = Veth::new(&a, &b);
    let ifname = veth.b.ifname.as_str();
    let mut other = XdpFilter::load(&b, ifname);
    let before = b.link_show(ifname);
    assert!(before.contains("xdpfilt"), "xdp-filter did not attach:\n{before}");

    let pin_dir = fresh_pin_dir();
    for mode in ["auto", "native", "skb"] {
        let err = cli::run_in(&b, &pin_dir, &["run", "-i", ifname, "--mode", mode])
            .fails_with(&[&format!("{ifname} already has an XDP program attached"), "xdp-filter unload"]);
        assert!(!err.contains("try --mode skb"), "--mode {mode}: a busy interface needs no other mode: {err}");
        assert_gone(&pin_dir);
        assert_eq!(b.link_show(ifname), before, "--mode {mode}: the other tool's program must stay as it was");
    }

    other.unload().ok();
    assert!(!b.link_show(ifname).contains("xdp"), "xdp-filter unload left a program");
    // Now the interface is free.
    let d = Daemon::start_with_pin_dir(&b, &pin_dir, &[ifname], &[]);
    assert!(d.stop().status.success());
    assert_gone(&pin_dir);
}

#[test]
fn no_running_instance() {
    let pin_dir = fresh_pin_dir();
    for args in [&["stats"][..], &["stats", "--json"], &["rules", "list"], &["rules", "add", "port", "5060"], &["rules", "del", "prefix", "10.0.0.0/8"]] {
        let err = CliOutput::run(cli::command(&pin_dir, args)).fails_with(&["no voipfilter instance found", &pin_dir.display().to_string()]);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    assert_gone(&pin_dir);
}

#[test]
fn pin_dir_not_on_bpffs() {
    let ns = Netns::new("pinfs");
    let tmp = TempDir::new("pin");
    let pin_dir = tmp.path().join("voipfilter");
    cli::run_in(&ns, &pin_dir, &["run", "-i", "lo"]).fails_with(&["is not on a bpf filesystem", "mount -t bpf"]);
    assert_gone(&pin_dir);
    assert!(!ns.link_show("lo").contains("xdp"));
}

#[test]
fn config_file_errors_name_file_and_line() {
    let ns = Netns::new("conf");
    let tmp = TempDir::new("conf");
    let pin_dir = fresh_pin_dir();
    let cases = [
        ("bad.toml", "port_defaults = true\n[[port]]\nport = 70000\n", ":3: bad port '70000'"),
        ("app.toml", "[[prefix]]\ncidr = \"192.0.2.0/24\"\n\napp = \"skipe\"\n", ":4: unknown app 'skipe'"),
        ("cidr.toml", "# a comment\n[[prefix]]\ncidr = \"192.0.2.0/33\"\n", ":3: bad prefix '192.0.2.0/33'"),
        ("action.toml", "[[port]]\nport = \"5060\"\naction = \"reject\"\n", ":3: unknown action 'reject'"),
        ("field.toml", "[[port]]\nport = 1\ncolour = \"red\"\n", ":3: unknown field `colour`"),
        ("syntax.toml", "port_defaults = true\n\n[[port]\nport = 1\n", ":3:"),
        ("old.toml", "defaults = true\n", ":1: unknown field `defaults`"),
        ("policy.toml", "[policy]\nmedia = \"monitor\"\nskipe = \"drop\"\n", ":3: unknown app or class 'skipe'"),
        ("policy_action.toml", "[policy]\nsip = \"reject\"\n", ":2: unknown action 'reject'"),
        ("flows.toml", "\nflows = 10\n", ":2: flows must be between 1024 and"),
        ("range.toml", "[[port]]\nport = \"6000-5000\"\n", ":2: bad port range '6000-5000'"),
    ];
    for (name, text, want) in cases {
        let path = tmp.write(name, text);
        let full = format!("{}{want}", path.display());
        let err = cli::run_in(&ns, &pin_dir, &["run", "-i", "lo", "--config", &path.display().to_string()]).fails_with(&[&full]);
        assert!(err.starts_with(&format!("voipfilter: error: {}", path.display())), "{name}: the file comes first: {err}");
        assert_gone(&pin_dir);
    }
    let missing = tmp.path().join("missing.toml");
    cli::run_in(&ns, &pin_dir, &["run", "-i", "lo", "--config", &missing.display().to_string()])
        .fails_with(&[&missing.display().to_string(), "No such file"]);
    assert!(!ns.link_show("lo").contains("xdp"));
    assert_gone(&pin_dir);
}

#[test]
fn bad_rules_and_a_second_instance_are_refused_by_a_running_one() {
    let (a, b) = (Netns::new("rulesa"), Netns::new("rulesb"));
    let veth = Veth::new(&a, &b);
    let daemon = Daemon::start(&b, &[&veth.b.ifname], &[]);
    let list = || daemon.cli(&["rules", "list", "--json"]).ok().stdout;
    let before = list();

    let cases: &[(&[&str], &str)] = &[
        (&["rules", "add", "port", "70000"], "bad port '70000'"),
        (&["rules", "add", "port", "0"], "bad port '0'"),
        (&["rules", "add", "port", "sip"], "bad port 'sip'"),
        (&["rules", "add", "port", "6000-5000"], "bad port range '6000-5000'"),
        (&["rules", "add", "port", "5000-70000"], "bad port '70000'"),
        (&["rules", "add", "prefix", "192.0.2.0/33"], "bad prefix '192.0.2.0/33'"),
        (&["rules", "add", "prefix", "192.0.2/24"], "bad prefix '192.0.2/24'"),
        (&["rules", "add", "prefix", "2001:db8::/129"], "bad prefix '2001:db8::/129'"),
        (&["rules", "add", "port", "5062", "-a", "skipe"], "unknown app 'skipe'"),
        (&["rules", "add", "prefix", "192.0.2.0/24", "-x", "reject"], "unknown action 'reject'"),
        (&["rules", "del", "port", "12345"], "no port rule"),
        (&["rules", "del", "prefix", "192.0.2.0/24"], "no prefix rule on 192.0.2.0/24"),
        (&["rules", "del", "prefix", "192.0.2.0/40"], "bad prefix"),
    ];
    for (args, want) in cases {
        let err = daemon.cli(args).fails_with(&[want]);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    assert_eq!(list(), before, "failed commands changed the rules");

    // A second daemon on the same pin directory is refused and leaves the first one's pins.
    let second = Daemon::try_start(&b, daemon.pin_dir(), &["lo"], &[]);
    let stopped = match second {
        Ok(_) => panic!("a second daemon on {} started", daemon.pin_dir().display()),
        Err(s) => s,
    };
    assert_eq!(stopped.status.code(), Some(1), "{}", stopped.log);
    assert!(stopped.log.contains("another voipfilter instance is running"), "{}", stopped.log);
    assert!(!b.link_show("lo").contains("xdp"), "the refused daemon attached to lo");
    assert!(daemon.pin_dir().join("META").exists(), "the refused daemon removed the running one's pins");
    assert_eq!(daemon.stats().0["pid"].as_u64(), Some(u64::from(daemon.pid())));

    let stopped = daemon.stop();
    assert!(stopped.status.success(), "{}", stopped.log);
}

/// `voipfilter bench` times the real programs on this machine (no interface, no instance):
/// every class gets a figure, with the references measured in the same run.
#[test]
fn bench_measures_every_class() {
    let pin_dir = fresh_pin_dir();
    let out = CliOutput::run(cli::command(&pin_dir, &["bench", "--repeat", "2000", "--rounds", "1"])).ok();
    for class in [
        "empty XDP program",
        "parse + 1M LRU lookup",
        "TCP ACK",
        "DNS query",
        "established non-call UDP flow",
        "decided SIP flow",
        "new UDP flow, not a call",
        "new UDP flow, SIP INVITE",
    ] {
        let line = out.stdout.lines().find(|l| l.contains(class)).unwrap_or_else(|| panic!("no line for {class}:\n{}", out.stdout));
        let ns: f64 = line[line.find(class).unwrap() + class.len()..]
            .split_whitespace()
            .find_map(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no figure in {line:?}"));
        assert!(ns > 0.0 && ns < 1e6, "{class}: {ns} ns");
    }
    // The verdicts are the engine's: the SIP flow is dropped, the rest passes.
    assert!(out.stdout.lines().any(|l| l.contains("decided SIP flow") && l.ends_with("drop")), "{}", out.stdout);
    CliOutput::run(cli::command(&pin_dir, &["bench", "--repeat", "0"])).fails_with(&["at least 1"]);
    assert_gone(&pin_dir);
}
