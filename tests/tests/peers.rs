//! Real VoIP software from Debian across a veth pair, with and without voipfilter: a SIPp call
//! (package `sip-tester`) over UDP and over TCP on a non-standard port, a STUN binding and a
//! TURN allocation against coturn's `turnserver` (`turnutils_stunclient`, `turnutils_uclient`),
//! and an HTTP fetch (`python3 -m http.server`, `curl`). Needs root, `ip` and `nsenter`.
//!
//! Each test makes its own namespaces: the client in `a`, the server in `b`, and `voipfilter
//! run` (defaults: every call app dropped) attached natively to `b`'s end of the link. Each VoIP
//! exchange first succeeds without voipfilter, then fails with it, and the counters say which
//! app was dropped; HTTP keeps working with voipfilter attached. A test whose peer program is
//! missing says so and returns (`xtask setup` installs them all).
//!
//! Every program is bounded in time: a client that does not finish in time is killed and counts
//! as failed (`turnutils_stunclient` and `turnutils_uclient` wait for ever for an answer that
//! never comes).

use std::{
    fs::File,
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::{Child, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use voipfilter_tests::{
    cli::Stats,
    daemon::Daemon,
    netns::{Netns, Veth},
    tempdir::TempDir,
};

/// Non-standard ports, so the detectors (not port defaults) must find the traffic.
const SIP_PORT: u16 = 15060;
const TURN_PORT: u16 = 13478;
const HTTP_PORT: u16 = 18080;

/// Client namespace `a`, server namespace `b` (where the daemon runs), the link between them.
/// Fields drop in order: processes and daemons declared after this in a test go first.
struct Pair {
    veth: Veth,
    a: Netns,
    b: Netns,
    /// Where the programs' output goes.
    logs: TempDir,
}

impl Pair {
    fn new(tag: &str) -> Pair {
        let a = Netns::new(&format!("{tag}a"));
        let b = Netns::new(&format!("{tag}b"));
        let veth = Veth::new(&a, &b);
        Pair { veth, a, b, logs: TempDir::new(&format!("peers-{tag}")) }
    }

    fn near(&self) -> String {
        self.veth.a.addr.to_string()
    }

    fn far(&self) -> String {
        self.veth.b.addr.to_string()
    }

    /// The daemon on `b`'s end of the link, default policy.
    fn daemon(&self) -> Daemon {
        let d = Daemon::start(&self.b, &[&self.veth.b.ifname], &[]);
        let ifaces = d.stats().interfaces();
        assert_eq!(ifaces, vec![(self.veth.b.ifname.clone(), "native".to_string())], "voipfilter should be attached natively");
        d
    }

    /// Starts `program ARGS` in `ns`, output to a log file; killed when the guard drops.
    fn spawn(&self, ns: &Netns, name: &str, program: &PathBuf, args: &[String]) -> Proc {
        let log = self.logs.path().join(format!("{name}.log"));
        let out = File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let err = out.try_clone().expect("cloning a log file handle");
        let mut c = ns.command(program);
        c.args(args).stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let what = format!("{} {}", program.display(), args.join(" "));
        let child = c.spawn().unwrap_or_else(|e| panic!("starting {what}: {e}"));
        Proc { child: Some(child), what, log }
    }

    /// Runs `program ARGS` in `ns` for at most `limit`; a run still going then is killed.
    fn run(&self, ns: &Netns, name: &str, program: &PathBuf, args: &[String], limit: Duration) -> Ran {
        let start = Instant::now();
        let mut p = self.spawn(ns, name, program, args);
        let status = p.wait_for(limit);
        p.stop();
        Ran { what: p.what.clone(), status, output: p.output(), elapsed: start.elapsed() }
    }

    /// Waits until something in `b` listens on `port` (`ss` with `-t` or `-u`), or panics
    /// with the server's output after 5 s.
    fn wait_listening(&self, server: &mut Proc, proto: &str, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let out = self
                .b
                .command("ss")
                .args([&format!("-Hln{proto}"), "sport", "=", &format!(":{port}")])
                .output()
                .expect("running ss");
            if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return;
            }
            if let Some(status) = server.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("{} exited ({status}) before listening:\n{}", server.what, server.output());
            }
            if Instant::now() > deadline {
                panic!("{} is not listening on {proto}/{port} after 5 s:\n{}", server.what, server.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A running program, stopped (SIGTERM, then SIGKILL) on drop.
struct Proc {
    child: Option<Child>,
    what: String,
    log: PathBuf,
}

impl Proc {
    /// Waits up to `limit` for the program to exit.
    fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for a child") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: signalling our own child, not reaped yet.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(2);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How a bounded client run ended.
struct Ran {
    what: String,
    /// None: killed at its time limit.
    status: Option<ExitStatus>,
    output: String,
    elapsed: Duration,
}

impl Ran {
    fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    fn describe(&self) -> String {
        let how = self.status.map_or_else(|| "killed at its time limit".to_string(), |s| s.to_string());
        format!("`{}`: {how} after {:.1?}; output:\n{}", self.what, self.elapsed, self.output)
    }
}

/// `name` on the PATH, or None after saying that the test is skipped.
fn peer(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()));
    if found.is_none() {
        println!("SKIPPED: `{name}` is not installed (Debian package {package}; `cargo xtask setup` installs it)");
        eprintln!("SKIPPED: `{name}` is not installed (Debian package {package}; `cargo xtask setup` installs it)");
    }
    found
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Packets dropped under `apps`.
fn dropped(s: &Stats, apps: &[&str]) -> u64 {
    apps.iter().map(|a| s.app(a, "drop").0).sum()
}

/// One SIPp call (INVITE with SDP, ACK, BYE) over `transport` (`u1` or `t1`) on a non-standard
/// port: completes without voipfilter, fails with it, and the INVITE is counted as dropped SIP.
fn sipp_call(tag: &str, transport: &str) {
    let Some(sipp) = peer("sipp", "sip-tester") else { return };
    let t0 = Instant::now();
    let pair = Pair::new(tag);
    let (near, far) = (pair.near(), pair.far());
    let mut uas = pair.spawn(
        &pair.b,
        "uas",
        &sipp,
        &strings(&["-sn", "uas", "-i", &far, "-p", &SIP_PORT.to_string(), "-t", transport, "-nostdin"]),
    );
    pair.wait_listening(&mut uas, if transport == "t1" { "t" } else { "u" }, SIP_PORT);
    let call = |name: &str, local_port: u16| {
        let args = strings(&[
            "-sn",
            "uac",
            &format!("{far}:{SIP_PORT}"),
            "-t",
            transport,
            "-i",
            &near,
            "-p",
            &local_port.to_string(),
            "-m",
            "1",
            "-nostdin",
            "-recv_timeout",
            "2000",
            "-timeout",
            "4s",
            "-timeout_error",
        ]);
        pair.run(&pair.a, name, &sipp, &args, Duration::from_secs(8))
    };

    let before = call("uac-before", 25060);
    assert!(before.succeeded(), "without voipfilter the call should complete: {}", before.describe());

    let daemon = pair.daemon();
    let after = call("uac-after", 25061);
    assert!(!after.succeeded(), "with voipfilter the call should fail: {}", after.describe());
    let s = daemon.stats_when(|s| s.app("sip", "drop").0 > 0);
    assert!(s.app("sip", "drop").0 > 0, "voipfilter should count dropped SIP packets: {}", s.0);
    println!(
        "sipp {transport} port {SIP_PORT}: call in {:.1?} without voipfilter; with it: {} after {:.1?}, sip/drop {:?}; test {:.1?}",
        before.elapsed,
        after.status.map_or_else(|| "killed".to_string(), |s| s.to_string()),
        after.elapsed,
        s.app("sip", "drop"),
        t0.elapsed()
    );
}

#[test]
fn sipp_udp_call_fails_only_with_voipfilter() {
    sipp_call("sipu", "u1");
}

#[test]
fn sipp_tcp_call_fails_only_with_voipfilter() {
    sipp_call("sipt", "t1");
}

/// coturn's `turnserver` in `b` on a non-standard port, long-term credentials `u:p`.
fn turnserver(pair: &Pair, turnserver: &PathBuf) -> Proc {
    let mut p = pair.spawn(
        &pair.b,
        "turnserver",
        turnserver,
        &strings(&[
            "-L",
            &pair.far(),
            "--listening-port",
            &TURN_PORT.to_string(),
            "--no-tls",
            "--no-dtls",
            "--lt-cred-mech",
            "--user",
            "u:p",
            "--realm",
            "example.org",
            "--no-cli",
            "--log-file",
            "stdout",
        ]),
    );
    pair.wait_listening(&mut p, "u", TURN_PORT);
    p
}

#[test]
fn stun_binding_fails_only_with_voipfilter() {
    let (Some(server), Some(client)) = (peer("turnserver", "coturn"), peer("turnutils_stunclient", "coturn")) else {
        return;
    };
    let t0 = Instant::now();
    let pair = Pair::new("stun");
    let _server = turnserver(&pair, &server);
    let args = strings(&["-p", &TURN_PORT.to_string(), &pair.far()]);
    // It answers from the reflexive address it learnt; without an answer it waits for ever.
    let reflexive = format!("reflexive addr: {}:", pair.near());

    let before = pair.run(&pair.a, "stun-before", &client, &args, Duration::from_secs(5));
    assert!(
        before.succeeded() && before.output.contains(&reflexive),
        "without voipfilter the binding should succeed: {}",
        before.describe()
    );

    let daemon = pair.daemon();
    let after = pair.run(&pair.a, "stun-after", &client, &args, Duration::from_secs(3));
    assert!(
        !after.succeeded() && !after.output.contains(&reflexive),
        "with voipfilter the binding should fail: {}",
        after.describe()
    );
    let s = daemon.stats_when(|s| dropped(s, &["stun", "turn"]) > 0);
    assert!(dropped(&s, &["stun", "turn"]) > 0, "voipfilter should count dropped STUN packets: {}", s.0);
    println!(
        "stun binding: {:.1?} without voipfilter; with it: no answer in {:.1?}, stun/drop {:?}, turn/drop {:?}; test {:.1?}",
        before.elapsed,
        after.elapsed,
        s.app("stun", "drop"),
        s.app("turn", "drop"),
        t0.elapsed()
    );
}

#[test]
fn turn_allocation_fails_only_with_voipfilter() {
    let (Some(server), Some(client)) = (peer("turnserver", "coturn"), peer("turnutils_uclient", "coturn")) else {
        return;
    };
    let t0 = Instant::now();
    let pair = Pair::new("turn");
    let _server = turnserver(&pair, &server);
    // Two clients (-y) that each allocate a relay, then send one 100-byte message to each
    // other through it (-n 1 -m 1 -l 100), no RTCP (-c). "Total connect time" is printed once
    // the allocations are done.
    let args =
        strings(&["-y", "-c", "-n", "1", "-m", "1", "-l", "100", "-u", "u", "-w", "p", "-p", &TURN_PORT.to_string(), &pair.far()]);
    let allocated = "Total connect time";

    let before = pair.run(&pair.a, "turn-before", &client, &args, Duration::from_secs(15));
    assert!(
        before.succeeded() && before.output.contains(allocated),
        "without voipfilter the allocation should succeed: {}",
        before.describe()
    );

    let daemon = pair.daemon();
    let after = pair.run(&pair.a, "turn-after", &client, &args, Duration::from_secs(3));
    assert!(
        !after.succeeded() && !after.output.contains(allocated),
        "with voipfilter the allocation should fail: {}",
        after.describe()
    );
    let s = daemon.stats_when(|s| dropped(s, &["stun", "turn"]) > 0);
    assert!(dropped(&s, &["stun", "turn"]) > 0, "voipfilter should count dropped STUN/TURN packets: {}", s.0);
    println!(
        "turn allocation: {:.1?} without voipfilter (client run); with it: none in {:.1?}, stun/drop {:?}, turn/drop {:?}; test {:.1?}",
        before.elapsed,
        after.elapsed,
        s.app("stun", "drop"),
        s.app("turn", "drop"),
        t0.elapsed()
    );
}

#[test]
fn http_fetch_works_with_voipfilter_attached() {
    let (Some(python), Some(curl)) = (peer("python3", "python3"), peer("curl", "curl")) else { return };
    let t0 = Instant::now();
    let pair = Pair::new("http");
    let root = TempDir::new("peers-www");
    let body = "voipfilter peers test: plain HTTP passes\n";
    root.write("index.txt", body);
    let root_dir = root.path().display().to_string();
    let mut server = pair.spawn(
        &pair.b,
        "http-server",
        &python,
        &strings(&["-m", "http.server", "--bind", &pair.far(), "--directory", &root_dir, &HTTP_PORT.to_string()]),
    );
    pair.wait_listening(&mut server, "t", HTTP_PORT);
    let url = format!("http://{}:{HTTP_PORT}/index.txt", pair.far());
    let args = strings(&["-sS", "-m", "5", &url]);

    let before = pair.run(&pair.a, "curl-before", &curl, &args, Duration::from_secs(8));
    assert!(before.succeeded() && before.output == body, "without voipfilter the fetch should work: {}", before.describe());

    let daemon = pair.daemon();
    for i in 0..3 {
        let after = pair.run(&pair.a, &format!("curl-after-{i}"), &curl, &args, Duration::from_secs(8));
        assert!(after.succeeded() && after.output == body, "with voipfilter the fetch should work: {}", after.describe());
    }
    let s = daemon.stats_when(|s| s.app("unknown", "pass").0 > 0);
    assert!(s.app("unknown", "pass").0 > 0, "voipfilter should have seen the HTTP packets pass: {}", s.0);
    assert_eq!(s.total("drop").0, 0, "voipfilter should drop nothing: {}", s.0);
    println!("http: fetched before and 3 times with voipfilter ({:?} unknown/pass); test {:.1?}", s.app("unknown", "pass"), t0.elapsed());
}
