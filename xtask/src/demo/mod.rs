//! `cargo xtask demo`: voipfilter on a small ISP edge.
//!
//! A subscriber namespace sends VoIP and ordinary traffic through an edge namespace, where
//! voipfilter runs on both interfaces with its defaults (no port rules; every call the
//! detectors find is dropped), to a far-side namespace that counts what arrives. The VoIP
//! traffic is real: SIP INVITEs with SDP (on the SIP port and another one), IAX2 NEW frames,
//! STUN binding requests, an RTP stream without signalling, a SIP call over TCP, and a whole
//! SIPp call (which completes before voipfilter starts and fails once it runs). Each kind of traffic is sent on its own
//! and compared with what voipfilter's counters say about it; for UDP, sent = delivered +
//! dropped must hold exactly. Namespaces, pins, SIPp and the XDP program are removed at the
//! end, on failure and on Ctrl-C.

mod daemon;
mod interrupt;
mod lab;
mod sipp;
mod traffic;

use std::{
    net::SocketAddrV4,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::bail;

use crate::cmd::{self, output, run};
use daemon::{Counters, Daemon};
use lab::{EDGE_FAR_IF, EDGE_SUB_IF, Lab};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Every packet dropped.
    Drop,
    /// Dropped from at most this many packets on (RTP is confirmed over packets).
    DropAfter(u64),
    Pass,
}

struct UdpKind {
    name: &'static str,
    port: u16,
    count: u32,
    payload: fn(u32, u16) -> Vec<u8>,
    /// The app voipfilter must count the dropped packets under.
    app: &'static str,
    expect: Expect,
}

const UDP_KINDS: &[UdpKind] = &[
    UdpKind {
        name: "SIP INVITE with SDP",
        port: 5060,
        count: 20,
        payload: traffic::sip_invite,
        app: "sip",
        expect: Expect::Drop,
    },
    UdpKind {
        name: "SIP INVITE, other port",
        port: 15060,
        count: 20,
        payload: traffic::sip_invite,
        app: "sip",
        expect: Expect::Drop,
    },
    UdpKind {
        name: "IAX2 NEW",
        port: 4569,
        count: 20,
        payload: traffic::iax2_new,
        app: "iax2",
        expect: Expect::Drop,
    },
    UdpKind {
        name: "RTP stream, no signalling",
        port: 16386,
        count: 50,
        payload: traffic::rtp_pcmu,
        app: "rtp",
        expect: Expect::DropAfter(2),
    },
    UdpKind {
        name: "STUN binding request",
        port: 3478,
        count: 20,
        payload: traffic::stun_binding,
        app: "stun",
        expect: Expect::Drop,
    },
    UdpKind {
        name: "Zoom audio (SFU encapsulation)",
        port: 8801,
        count: 20,
        payload: traffic::zoom_audio,
        app: "zoom",
        expect: Expect::Drop,
    },
    UdpKind {
        name: "TeamSpeak 3 handshake",
        port: 9987,
        count: 20,
        payload: traffic::teamspeak_init,
        app: "teamspeak",
        expect: Expect::Drop,
    },
    UdpKind {
        name: "DNS query",
        port: 53,
        count: 20,
        payload: traffic::dns_query,
        app: "unknown",
        expect: Expect::Pass,
    },
    UdpKind {
        name: "application data",
        port: 8080,
        count: 20,
        payload: traffic::app_data,
        app: "unknown",
        expect: Expect::Pass,
    },
];
const TCP_SIP_PORT: u16 = 5060;
const TCP_ECHO_PORT: u16 = 8080;
/// The SIPp UAS on the far side, and the UAC's port on the subscriber.
const SIPP_UAS_PORT: u16 = 5080;
const SIPP_UAC_PORT: u16 = 5061;
/// How long the SIPp UAC waits for an answer before the call fails.
const SIPP_TIMEOUT: Duration = Duration::from_secs(2);

/// One line of the result table.
struct Row {
    traffic: String,
    sent: String,
    delivered: String,
    counted: Counters,
    ok: bool,
    note: String,
}

pub fn demo() -> anyhow::Result<()> {
    run(cmd::cargo().args(["build", "--release", "-p", "voipfilter"]))?;
    let bin = cmd::target_dir()?.join("release/voipfilter");
    if !bin.exists() {
        bail!("{} was not built", bin.display());
    }
    interrupt::install();
    lab::remove_stale();
    let pid = std::process::id();
    let result = simulate(&bin, pid);
    // The guards inside `simulate` have run by now, whatever happened.
    let leftovers = leftovers(pid);
    match (result, leftovers) {
        (Ok(()), None) => {
            println!(
                "\ndemo finished: counters agree with the traffic, and nothing is left behind"
            );
            Ok(())
        }
        (Ok(()), Some(l)) => bail!("demo cleanup incomplete: {l}"),
        (Err(e), None) => Err(e.context("demo failed (cleaned up)")),
        (Err(e), Some(l)) => Err(e.context(format!("demo failed, and cleanup is incomplete: {l}"))),
    }
}

/// What is still there of run `pid`: namespaces, pins.
fn leftovers(pid: u32) -> Option<String> {
    let mut left: Vec<String> = ["sub", "edge", "far"]
        .iter()
        .map(|r| lab::ns_name(r, pid))
        .filter(|ns| Path::new("/var/run/netns").join(ns).exists())
        .map(|ns| format!("namespace {ns}"))
        .collect();
    if Path::new(&lab::pin_dir(pid)).exists() {
        left.push(lab::pin_dir(pid));
    }
    (!left.is_empty()).then(|| left.join(", "))
}

/// The SIPp call before and through voipfilter: the UAS, and the control call's outcome.
struct Sipp {
    bin: PathBuf,
    /// Answers calls until dropped.
    _uas: sipp::Uas,
    control: sipp::Call,
}

fn sipp_uas_addr() -> SocketAddrV4 {
    SocketAddrV4::new(lab::FAR_IP, SIPP_UAS_PORT)
}

fn sipp_uac_addr() -> SocketAddrV4 {
    SocketAddrV4::new(lab::SUB_IP, SIPP_UAC_PORT)
}

/// Starts the SIPp UAS and makes one call without voipfilter, which must complete.
fn sipp_control(lab: &Lab) -> anyhow::Result<Option<Sipp>> {
    let Some(bin) = sipp::find() else {
        println!("sipp is not installed (apt-get install sip-tester): no SIPp call in this demo");
        return Ok(None);
    };
    println!("\na SIPp call before voipfilter runs (it must complete):");
    let uas = sipp::Uas::start(&bin, &lab.far, sipp_uas_addr())?;
    let control = sipp::call(
        &bin,
        &lab.sub,
        sipp_uac_addr(),
        sipp_uas_addr(),
        SIPP_TIMEOUT,
    )?;
    println!(
        "  {} in {:.2} s",
        if control.succeeded() {
            "call completed".to_string()
        } else {
            format!("call FAILED ({})", control.status)
        },
        control.elapsed.as_secs_f64()
    );
    Ok(Some(Sipp {
        bin,
        _uas: uas,
        control,
    }))
}

fn simulate(bin: &Path, pid: u32) -> anyhow::Result<()> {
    let lab = Lab::create(pid)?;
    print_topology(&lab);
    let udp_ports: Vec<u16> = UDP_KINDS.iter().map(|k| k.port).collect();
    let far = traffic::Far::start(&lab.far, &udp_ports, &[TCP_SIP_PORT, TCP_ECHO_PORT])?;
    let sipp = sipp_control(&lab)?;
    for dev in [EDGE_SUB_IF, EDGE_FAR_IF] {
        if lab.edge_has_xdp(dev)? {
            bail!(
                "{dev} in {} has an XDP program before voipfilter started",
                lab.edge
            );
        }
    }
    let pin_dir = PathBuf::from(lab::pin_dir(pid));
    let mut daemon = Daemon::start(bin, &lab.edge, &pin_dir, &[EDGE_SUB_IF, EDGE_FAR_IF])?;
    for dev in [EDGE_SUB_IF, EDGE_FAR_IF] {
        if !lab.edge_has_xdp(dev)? {
            bail!("voipfilter says it is running, but `ip link` shows no XDP program on {dev}");
        }
    }

    println!(
        "\nsending traffic from the subscriber ({}) to the far side ({}):",
        lab::SUB_IP,
        lab::FAR_IP
    );
    let mut rows = Vec::new();
    for k in UDP_KINDS {
        rows.push(udp_row(&lab, &far, &daemon, k)?);
    }
    rows.push(tcp_sip_row(&lab, &far, &daemon)?);
    rows.push(tcp_echo_row(
        &lab,
        &far,
        &daemon,
        "HTTP GET on the SIP port",
        TCP_SIP_PORT,
        HTTP_GET,
    )?);
    rows.push(tcp_echo_row(
        &lab,
        &far,
        &daemon,
        "TCP echo",
        TCP_ECHO_PORT,
        b"ordinary tcp data through the edge\n",
    )?);
    if let Some(s) = &sipp {
        rows.push(sipp_row(&lab, &daemon, s)?);
    }
    print_table(&rows);

    println!("\nvoipfilter's own view (`voipfilter stats`):");
    let stats = output(&mut daemon.cli(&["stats"]))?;
    for l in stats.lines() {
        println!("    {l}");
    }
    println!("\nits flow table (`voipfilter flows`):");
    let flows = output(&mut daemon.cli(&["flows"]))?;
    for l in flows.lines() {
        println!("    {l}");
    }

    daemon.stop()?;
    if pin_dir.exists() {
        bail!(
            "voipfilter exited but left its pins in {}",
            pin_dir.display()
        );
    }
    println!("pins under {} are gone", pin_dir.display());
    for dev in [EDGE_SUB_IF, EDGE_FAR_IF] {
        if lab.edge_has_xdp(dev)? {
            bail!("voipfilter exited but an XDP program is still attached to {dev}");
        }
    }
    println!("no XDP program left on {EDGE_SUB_IF} or {EDGE_FAR_IF}");
    drop(daemon);
    drop(sipp);
    drop(far);
    drop(lab);

    let bad: Vec<&Row> = rows.iter().filter(|r| !r.ok).collect();
    if !bad.is_empty() {
        let list: Vec<String> = bad
            .iter()
            .map(|r| format!("{}: {}", r.traffic, r.note))
            .collect();
        bail!(
            "voipfilter's counters disagree with the traffic: {}",
            list.join("; ")
        );
    }
    Ok(())
}

const HTTP_GET: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nAccept: */*\r\n\r\n";

fn print_topology(lab: &Lab) {
    let sub = format!("eth0 {}", lab::SUB_IP);
    let edge = format!(
        "{EDGE_SUB_IF} {} | {EDGE_FAR_IF} {}",
        lab::EDGE_SUB_IP,
        lab::EDGE_FAR_IP
    );
    let far = format!("eth0 {}", lab::FAR_IP);
    let w = edge.len();
    println!();
    println!(
        "  {:<18}          {:<w$}          far side",
        "subscriber", "edge"
    );
    println!(
        "  {:<18}          {:<w$}          {}",
        lab.sub, lab.edge, lab.far
    );
    println!("  {sub:<18} <-veth-> {edge} <-veth-> {far}");
    println!(
        "  {:<18}          voipfilter (XDP) on both, default policy: no port rules, every call dropped",
        ""
    );
    println!();
}

/// Waits until the counters have moved past `enough` and stopped changing, and returns what was
/// counted since `before`.
fn settle(
    daemon: &Daemon,
    before: &Counters,
    enough: impl Fn(&Counters) -> bool,
) -> anyhow::Result<Counters> {
    let start = Instant::now();
    let mut last = daemon.counters()?;
    let mut stable_since = Instant::now();
    loop {
        interrupt::sleep(Duration::from_millis(100))?;
        let now = daemon.counters()?;
        if now != last {
            last = now;
            stable_since = Instant::now();
            continue;
        }
        let d = now.since(before);
        let stable = stable_since.elapsed() >= Duration::from_millis(300);
        if (stable && enough(&d)) || start.elapsed() > Duration::from_secs(5) {
            return Ok(d);
        }
    }
}

/// Waits up to a second for `f` to reach `want`; returns its last value.
fn wait_for(want: u64, f: impl Fn() -> u64) -> anyhow::Result<u64> {
    let start = Instant::now();
    loop {
        let v = f();
        if v >= want || start.elapsed() > Duration::from_secs(1) {
            return Ok(v);
        }
        interrupt::sleep(Duration::from_millis(20))?;
    }
}

fn udp_row(lab: &Lab, far: &traffic::Far, daemon: &Daemon, k: &UdpKind) -> anyhow::Result<Row> {
    println!("  {} x {} to udp/{}", k.count, k.name, k.port);
    let before = daemon.counters()?;
    let rx0 = far.count("udp", k.port);
    let sent = traffic::send_udp(&lab.sub, k.port, k.count, k.payload)?;
    let d = settle(daemon, &before, |d| d.total() >= sent)?;
    let delivered = wait_for(d.passed(), || far.count("udp", k.port) - rx0)?;
    // Nothing may arrive after the counters settled; look once more.
    interrupt::sleep(Duration::from_millis(100))?;
    let delivered = delivered.max(far.count("udp", k.port) - rx0);
    let (dropped, passed) = (d.dropped(), d.passed());
    let as_app = d.get(k.app, "drop");
    let mut problems = Vec::new();
    if d.total() != sent {
        problems.push(format!(
            "voipfilter counted {} packets for {sent} sent",
            d.total()
        ));
    }
    if sent != delivered + dropped {
        problems.push(format!(
            "{sent} sent != {delivered} delivered + {dropped} dropped"
        ));
    }
    if delivered != passed {
        problems.push(format!(
            "{passed} passed by voipfilter but {delivered} delivered"
        ));
    }
    match k.expect {
        Expect::Drop if dropped != sent || as_app != sent => problems.push(format!(
            "the detectors find {} on any port, but {as_app} of {sent} were dropped as {}",
            k.app, k.app
        )),
        Expect::DropAfter(n) if passed > n || as_app != dropped => problems.push(format!(
            "{} is confirmed within {} packets, but {passed} of {sent} passed and {as_app} were dropped as {}",
            k.app,
            n + 1,
            k.app
        )),
        Expect::Pass if passed != sent => problems.push(format!(
            "no detector or rule covers this traffic, but only {passed} of {sent} were passed"
        )),
        _ => {}
    }
    let ok = problems.is_empty();
    let note = if !ok {
        problems.join("; ")
    } else if matches!(k.expect, Expect::DropAfter(_)) {
        format!(
            "{sent} sent = {delivered} delivered + {dropped} dropped (dropped from packet {})",
            passed + 1
        )
    } else {
        format!("{sent} sent = {delivered} delivered + {dropped} dropped")
    };
    Ok(Row {
        traffic: format!("{} udp/{}", k.name, k.port),
        sent: sent.to_string(),
        delivered: delivered.to_string(),
        counted: d,
        ok,
        note,
    })
}

fn tcp_sip_row(lab: &Lab, far: &traffic::Far, daemon: &Daemon) -> anyhow::Result<Row> {
    println!(
        "  a SIP call over TCP: connect to tcp/{TCP_SIP_PORT}, send an INVITE, wait 1.5 s for an answer"
    );
    let before = daemon.counters()?;
    let (acc0, bytes0) = (
        far.count("tcp", TCP_SIP_PORT),
        far.bytes("tcp", TCP_SIP_PORT),
    );
    let invite = traffic::sip_invite(0, 5060);
    let outcome =
        traffic::tcp_send_and_abort(&lab.sub, TCP_SIP_PORT, &invite, Duration::from_millis(1500))?;
    let d = settle(daemon, &before, |d| d.dropped() >= 1)?;
    let accepted = far.count("tcp", TCP_SIP_PORT) - acc0;
    let received = far.bytes("tcp", TCP_SIP_PORT) - bytes0;
    let (dropped, passed, as_sip) = (d.dropped(), d.passed(), d.get("sip", "drop"));
    let connect = match &outcome {
        Ok(back) if back.is_empty() => "connected, no answer".to_string(),
        Ok(back) => format!("connected, {} bytes came back", back.len()),
        Err(e) => format!("connect failed: {e}"),
    };
    // SYN, SYN-ACK and ACK carry no payload and pass; the INVITE, its retransmissions and the
    // RST that ends the connection are dropped.
    let ok = connect == "connected, no answer"
        && accepted == 1
        && received == 0
        && passed == 3
        && dropped >= 1
        && as_sip == dropped;
    let note = if ok {
        format!(
            "handshake passed (3 segments); INVITE, retransmissions and RST dropped ({dropped}); 0 of its {} bytes reached the far side",
            invite.len()
        )
    } else {
        format!(
            "expected the handshake to pass and everything from the INVITE on to be dropped, but: {connect}, {accepted} accepted, {received} bytes received, {passed} passed, {dropped} dropped ({as_sip} as sip)"
        )
    };
    Ok(Row {
        traffic: format!("SIP call over TCP tcp/{TCP_SIP_PORT}"),
        sent: "1 conn".into(),
        delivered: format!("{received} bytes"),
        counted: d,
        ok,
        note,
    })
}

fn tcp_echo_row(
    lab: &Lab,
    far: &traffic::Far,
    daemon: &Daemon,
    what: &str,
    port: u16,
    msg: &[u8],
) -> anyhow::Result<Row> {
    println!("  {what}: a TCP connection to an echo server on tcp/{port}");
    let before = daemon.counters()?;
    let acc0 = far.count("tcp", port);
    let echo = traffic::tcp_echo(&lab.sub, port, msg);
    // Handshake, data, echo and both FINs with their ACKs: at least 8 segments.
    let d = settle(daemon, &before, |d| d.total() >= 8)?;
    let accepted = far.count("tcp", port) - acc0;
    let (dropped, passed) = (d.dropped(), d.passed());
    let echo_ok = matches!(&echo, Ok(b) if b.as_slice() == msg);
    let ok = echo_ok && accepted == 1 && dropped == 0 && passed >= 8;
    let note = match &echo {
        _ if ok => format!("echo intact; {passed} segments passed (both directions), none dropped"),
        Ok(b) => format!(
            "echo {} ({} of {} bytes); {accepted} accepted, {dropped} dropped, {passed} passed",
            if echo_ok { "intact" } else { "differs" },
            b.len(),
            msg.len()
        ),
        Err(e) => format!("{e:#}; {accepted} accepted, {dropped} dropped, {passed} passed"),
    };
    Ok(Row {
        traffic: format!("{what} tcp/{port}"),
        sent: "1 conn".into(),
        delivered: format!("{accepted} echoed"),
        counted: d,
        ok,
        note,
    })
}

fn sipp_row(lab: &Lab, daemon: &Daemon, s: &Sipp) -> anyhow::Result<Row> {
    println!(
        "  a SIPp call (uac {} -> uas {}), waiting {} s for an answer",
        sipp_uac_addr(),
        sipp_uas_addr(),
        SIPP_TIMEOUT.as_secs()
    );
    let before = daemon.counters()?;
    let call = sipp::call(
        &s.bin,
        &lab.sub,
        sipp_uac_addr(),
        sipp_uas_addr(),
        SIPP_TIMEOUT,
    )?;
    let d = settle(daemon, &before, |d| d.total() >= 1)?;
    let (dropped, passed, as_sip) = (d.dropped(), d.passed(), d.get("sip", "drop"));
    let invites = call.invites.unwrap_or(0);
    let received = call.received.unwrap_or(0);
    let control = if s.control.succeeded() {
        format!(
            "without voipfilter the call completed in {:.2} s",
            s.control.elapsed.as_secs_f64()
        )
    } else {
        format!(
            "the call without voipfilter FAILED ({}): the lab is broken",
            s.control.status
        )
    };
    let ok = s.control.succeeded()
        && !call.succeeded()
        && invites >= 1
        && received == 0
        && dropped == invites
        && as_sip == dropped
        && passed == 0;
    let note = if ok {
        format!(
            "{control}; with it the call failed after {:.1} s: {invites} INVITEs (with retransmissions) sent, all dropped, no answer",
            call.elapsed.as_secs_f64()
        )
    } else {
        format!(
            "{control}; with voipfilter: sipp exit {}, {invites} INVITEs sent, {received} messages received, {dropped} dropped ({as_sip} as sip), {passed} passed",
            call.status
        )
    };
    Ok(Row {
        traffic: format!("SIPp call udp/{SIPP_UAS_PORT}"),
        sent: "1 call".into(),
        delivered: if call.succeeded() {
            "answered".into()
        } else {
            "failed".into()
        },
        counted: d,
        ok,
        note,
    })
}

fn print_table(rows: &[Row]) {
    println!(
        "\nresults (dropped/passed: packets counted by voipfilter on the edge; TCP rows count both directions):\n"
    );
    let w = rows
        .iter()
        .map(|r| r.traffic.len())
        .max()
        .unwrap_or(0)
        .max(7)
        + 2;
    let c = rows
        .iter()
        .map(|r| r.counted.describe().len())
        .max()
        .unwrap_or(0)
        .max(18)
        + 2;
    println!(
        "  {:<w$}{:>8}{:>11}{:>9}{:>8}  {:<c$}check",
        "traffic", "sent", "delivered", "dropped", "passed", "voipfilter counted"
    );
    for r in rows {
        println!(
            "  {:<w$}{:>8}{:>11}{:>9}{:>8}  {:<c$}{} {}",
            r.traffic,
            r.sent,
            r.delivered,
            r.counted.dropped(),
            r.counted.passed(),
            r.counted.describe(),
            if r.ok { "ok:" } else { "MISMATCH:" },
            r.note
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_kinds_are_consistent() {
        // Drop kinds name the app the detectors find; pass kinds are counted as unknown.
        for k in UDP_KINDS {
            assert_eq!(k.expect == Expect::Pass, k.app == "unknown", "{}", k.name);
        }
        // VoIP is detected on any port: one SIP kind is off the SIP port.
        assert!(UDP_KINDS.iter().any(|k| k.app == "sip" && k.port != 5060));
        let ports: std::collections::BTreeSet<u16> = UDP_KINDS.iter().map(|k| k.port).collect();
        assert_eq!(
            ports.len(),
            UDP_KINDS.len(),
            "one far-side receiver per kind"
        );
        assert!(!ports.contains(&SIPP_UAS_PORT));
    }
}
