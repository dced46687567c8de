//! `cargo xtask demo`: voipfilter on a small ISP edge.
//!
//! A subscriber namespace sends VoIP-like and ordinary traffic through an edge namespace, where
//! voipfilter runs on both interfaces with its built-in rules, to a far-side namespace that
//! counts what arrives. Each kind of traffic is sent on its own and compared with what
//! voipfilter's counters say about it; for UDP, sent = delivered + dropped must hold exactly.
//! Namespaces, pins and the XDP program are removed at the end, on failure and on Ctrl-C.

mod daemon;
mod interrupt;
mod lab;
mod traffic;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::bail;

use crate::cmd::{self, output, run};
use daemon::{Counters, Daemon};
use lab::{EDGE_FAR_IF, EDGE_SUB_IF, Lab};

/// Datagrams per UDP kind.
const COUNT: u32 = 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Drop,
    Pass,
}

struct UdpKind {
    name: &'static str,
    port: u16,
    payload: fn(u32, u16) -> Vec<u8>,
    expect: Expect,
}

const UDP_KINDS: &[UdpKind] = &[
    UdpKind {
        name: "SIP INVITE",
        port: 5060,
        payload: traffic::sip_invite,
        expect: Expect::Drop,
    },
    UdpKind {
        name: "IAX2 NEW",
        port: 4569,
        payload: traffic::iax2_new,
        expect: Expect::Drop,
    },
    UdpKind {
        name: "STUN binding request",
        port: 3478,
        payload: traffic::stun_binding,
        expect: Expect::Drop,
    },
    UdpKind {
        name: "DNS query",
        port: 53,
        payload: traffic::dns_query,
        expect: Expect::Pass,
    },
    UdpKind {
        name: "application data",
        port: 8080,
        payload: traffic::app_data,
        expect: Expect::Pass,
    },
];
const TCP_SIP_PORT: u16 = 5060;
const TCP_ECHO_PORT: u16 = 8080;

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

fn simulate(bin: &Path, pid: u32) -> anyhow::Result<()> {
    let lab = Lab::create(pid)?;
    print_topology(&lab);
    let udp_ports: Vec<u16> = UDP_KINDS.iter().map(|k| k.port).collect();
    let far = traffic::Far::start(
        &lab.far,
        &udp_ports,
        &[(TCP_SIP_PORT, false), (TCP_ECHO_PORT, true)],
    )?;
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
    rows.push(tcp_blocked_row(&lab, &far, &daemon)?);
    rows.push(tcp_echo_row(&lab, &far, &daemon)?);
    print_table(&rows);

    println!("\nvoipfilter's own view (`voipfilter stats`):");
    let stats = output(&mut daemon.cli(&["stats"]))?;
    for l in stats.lines() {
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
        "  {:<18}          voipfilter (XDP) on both, built-in rules",
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
    println!("  {COUNT} x {} to udp/{}", k.name, k.port);
    let before = daemon.counters()?;
    let rx0 = far.count("udp", k.port);
    let sent = traffic::send_udp(&lab.sub, k.port, COUNT, k.payload)?;
    let d = settle(daemon, &before, |d| d.total() >= sent)?;
    let delivered = wait_for(d.passed(), || far.count("udp", k.port) - rx0)?;
    // Nothing may arrive after the counters settled; look once more.
    interrupt::sleep(Duration::from_millis(100))?;
    let delivered = delivered.max(far.count("udp", k.port) - rx0);
    let (dropped, passed) = (d.dropped(), d.passed());
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
        Expect::Drop if dropped != sent => problems.push(format!(
            "the built-in rules drop udp/{}, but {dropped} of {sent} were dropped",
            k.port
        )),
        Expect::Pass if passed != sent => problems.push(format!(
            "no rule covers udp/{}, but {passed} of {sent} were passed",
            k.port
        )),
        _ => {}
    }
    let ok = problems.is_empty();
    let note = if ok {
        format!("{sent} sent = {delivered} delivered + {dropped} dropped")
    } else {
        problems.join("; ")
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

fn tcp_blocked_row(lab: &Lab, far: &traffic::Far, daemon: &Daemon) -> anyhow::Result<Row> {
    println!(
        "  a TCP connection to the SIP port tcp/{TCP_SIP_PORT} (waits for the connect to time out)"
    );
    let before = daemon.counters()?;
    let acc0 = far.count("tcp", TCP_SIP_PORT);
    let timeout = Duration::from_millis(2500);
    let outcome = traffic::tcp_connect(&lab.sub, TCP_SIP_PORT, timeout)?;
    let d = settle(daemon, &before, |d| d.total() >= 1)?;
    let accepted = far.count("tcp", TCP_SIP_PORT) - acc0;
    let (dropped, passed) = (d.dropped(), d.passed());
    let connect = match &outcome {
        Ok(_) => "connected".to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            format!("no answer in {:.1} s", timeout.as_secs_f64())
        }
        Err(e) => format!("connect failed: {e}"),
    };
    drop(outcome);
    let ok = connect.starts_with("no answer") && accepted == 0 && dropped >= 1 && passed == 0;
    let note = if ok {
        format!(
            "{connect}; all {dropped} SYNs (with retransmissions) dropped, none reached the far side"
        )
    } else {
        format!(
            "the built-in rules drop tcp/{TCP_SIP_PORT}, but: {connect}, {accepted} accepted, {dropped} dropped, {passed} passed"
        )
    };
    Ok(Row {
        traffic: format!("SIP over TCP tcp/{TCP_SIP_PORT}"),
        sent: "1 conn".into(),
        delivered: format!("{accepted} accepted"),
        counted: d,
        ok,
        note,
    })
}

fn tcp_echo_row(lab: &Lab, far: &traffic::Far, daemon: &Daemon) -> anyhow::Result<Row> {
    println!("  a TCP connection to an echo server on tcp/{TCP_ECHO_PORT}");
    let before = daemon.counters()?;
    let acc0 = far.count("tcp", TCP_ECHO_PORT);
    let msg = b"ordinary tcp data through the edge\n";
    let echo = traffic::tcp_echo(&lab.sub, TCP_ECHO_PORT, msg);
    // Handshake, data, echo and both FINs with their ACKs: at least 8 segments.
    let d = settle(daemon, &before, |d| d.total() >= 8)?;
    let accepted = far.count("tcp", TCP_ECHO_PORT) - acc0;
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
        traffic: format!("TCP echo tcp/{TCP_ECHO_PORT}"),
        sent: "1 conn".into(),
        delivered: format!("{accepted} echoed"),
        counted: d,
        ok,
        note,
    })
}

fn print_table(rows: &[Row]) {
    println!(
        "\nresults (dropped/passed: packets counted by voipfilter on the edge; TCP rows count both directions):\n"
    );
    println!(
        "  {:<30}{:>8}{:>12}{:>9}{:>8}  {:<22}check",
        "traffic", "sent", "delivered", "dropped", "passed", "voipfilter counted"
    );
    for r in rows {
        println!(
            "  {:<30}{:>8}{:>12}{:>9}{:>8}  {:<22}{} {}",
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
    fn demo_ports_match_what_it_claims() {
        // VoIP kinds sit on default-rule ports; ordinary kinds on ports no default rule covers.
        let voip = [5060, 4569, 3478];
        for k in UDP_KINDS {
            assert_eq!(
                k.expect == Expect::Drop,
                voip.contains(&k.port),
                "{}",
                k.name
            );
        }
    }
}
