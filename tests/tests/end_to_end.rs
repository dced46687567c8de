//! The real daemon on a real link: two network namespaces joined by a veth pair, `voipfilter
//! run` attached to the receiving end, traffic sent from the other end, and the CLI reading the
//! counters and changing rules. Needs root, `ip`, and `nsenter`.
//!
//! Namespaces have IPv6 off and static neighbour entries, so the only frames on the link are the
//! test's own and every counter can be compared exactly.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    time::{Duration, Instant},
};

use voipfilter_tests::{
    cli::Stats,
    daemon::Daemon,
    netns::{Netns, Veth, udp4_frame_len},
};

/// Payload bytes of every test datagram (ASCII text: no detector takes it for VoIP).
const PAYLOAD: usize = 32;
const FRAME: u64 = udp4_frame_len(PAYLOAD) as u64;
/// A port no default rule covers.
const OPEN_PORT: u16 = 7000;

/// Sender namespace `a`, receiver namespace `b` (where the daemon runs), the link between them.
/// Fields drop in order: a daemon declared after this in a test is stopped before the
/// namespaces go.
struct Link {
    veth: Veth,
    a: Netns,
    b: Netns,
}

impl Link {
    fn new(tag: &str) -> Link {
        let a = Netns::new(&format!("{tag}a"));
        let b = Netns::new(&format!("{tag}b"));
        let veth = Veth::new(&a, &b);
        Link { veth, a, b }
    }

    fn server(&self, port: u16) -> SocketAddr {
        SocketAddr::from((self.veth.b.addr, port))
    }

    /// A UDP socket bound in `b` on `port`.
    fn receiver(&self, port: u16) -> UdpSocket {
        let addr = self.server(port);
        self.b.run(move || UdpSocket::bind(addr)).unwrap_or_else(|e| panic!("binding {addr} in b: {e}"))
    }

    /// A UDP socket in `a`.
    fn sender(&self) -> UdpSocket {
        let addr = SocketAddr::from((self.veth.a.addr, 0));
        self.a.run(move || UdpSocket::bind(addr)).expect("binding the sender in a")
    }

    /// The daemon on `b`'s end of the link.
    fn daemon(&self, extra: &[&str]) -> Daemon {
        Daemon::start(&self.b, &[&self.veth.b.ifname], extra)
    }

    fn link_b(&self) -> String {
        self.b.link_show(&self.veth.b.ifname)
    }
}

fn payload(i: usize) -> Vec<u8> {
    let mut p = format!("voipfilter e2e datagram {i:06}").into_bytes();
    p.resize(PAYLOAD, b'.');
    p
}

/// Sends `n` datagrams to each of `dsts`, interleaved, paced so that no queue on the way
/// overflows (a frame lost before XDP would make the counts wrong for the wrong reason).
fn send(tx: &UdpSocket, dsts: &[(SocketAddr, usize)]) {
    let most = dsts.iter().map(|d| d.1).max().unwrap_or(0);
    let mut sent = 0;
    for i in 0..most {
        for &(dst, n) in dsts {
            if i < n {
                tx.send_to(&payload(i), dst).unwrap_or_else(|e| panic!("sending to {dst}: {e}"));
                sent += 1;
                if sent % 16 == 0 {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        }
    }
}

/// Receives until nothing arrives for `quiet` (or 5 s pass); returns the number of datagrams,
/// checking each has the test's length.
fn drain(rx: &UdpSocket, quiet: Duration) -> usize {
    rx.set_read_timeout(Some(quiet)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while Instant::now() < deadline {
        match rx.recv(&mut buf) {
            Ok(len) => {
                assert_eq!(len, PAYLOAD, "unexpected datagram {:?}", &buf[..len]);
                n += 1;
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
            Err(e) => panic!("receiving: {e}"),
        }
    }
    n
}

const QUIET: Duration = Duration::from_millis(300);

fn assert_app(s: &Stats, app: &str, action: &str, packets: u64) {
    assert_eq!(s.app(app, action), (packets, packets * FRAME), "{app}/{action} (packets, bytes) in {}", s.0);
}

#[test]
fn udp_to_a_blocked_port_is_dropped_and_counted_exactly() {
    const N: usize = 150; // to 5060: dropped
    const M: usize = 100; // to OPEN_PORT: delivered
    let link = Link::new("udp");
    let daemon = link.daemon(&["--mode", "native"]);
    let shown = link.link_b();
    assert!(shown.contains(" xdp ") && shown.contains("prog/xdp"), "no native XDP program on the link:\n{shown}");

    let (rx_sip, rx_open, tx) = (link.receiver(5060), link.receiver(OPEN_PORT), link.sender());
    send(&tx, &[(link.server(5060), N), (link.server(OPEN_PORT), M)]);
    assert_eq!(drain(&rx_open, QUIET), M, "every datagram to the open port arrives");
    assert_eq!(drain(&rx_sip, Duration::from_millis(50)), 0, "no datagram to 5060 arrives");

    let s = daemon.stats_when(|s| s.total("all").0 >= (N + M) as u64);
    assert_app(&s, "sip", "drop", N as u64);
    assert_app(&s, "unknown", "pass", M as u64);
    assert_eq!(s.total("drop"), (N as u64, N as u64 * FRAME));
    assert_eq!(s.total("pass"), (M as u64, M as u64 * FRAME));
    assert_eq!(s.total("monitor"), (0, 0));
    assert_eq!(s.total("all"), ((N + M) as u64, (N + M) as u64 * FRAME));
    assert_eq!(s.0["apps"].as_array().map(Vec::len), Some(2), "only sip/drop and unknown/pass: {}", s.0);
    assert_eq!(s.not_parsed_total(), 0, "{}", s.0);
    assert_eq!(s.interfaces(), vec![(link.veth.b.ifname.clone(), "native".to_string())]);
    assert_eq!(s.0["pid"].as_u64(), Some(u64::from(daemon.pid())));
    let classes: Vec<_> = s.0["apps"].as_array().unwrap().iter().map(|r| (r["app"].clone(), r["class"].clone())).collect();
    assert_eq!(classes, [("unknown".into(), "none".into()), ("sip".into(), "signalling".into())], "{}", s.0);
    // The human-readable form shows the same numbers.
    let text = daemon.cli(&["stats"]).ok().stdout;
    assert!(text.contains(&link.veth.b.ifname) && text.contains("native"), "{text}");
    assert!(text.lines().any(|l| l.split_whitespace().collect::<Vec<_>>().starts_with(&["sip", "signalling", "drop", "150"])), "{text}");

    let pin_dir = daemon.pin_dir().to_path_buf();
    assert!(pin_dir.join("APP_STATS").exists());
    let stopped = daemon.stop();
    assert!(stopped.status.success(), "the daemon should exit 0 on SIGTERM ({}):\n{}", stopped.status, stopped.log);
    assert!(stopped.log.contains("detached from"), "{}", stopped.log);
    let shown = link.link_b();
    assert!(!shown.contains("xdp"), "an XDP program is still attached after the daemon stopped:\n{shown}");
    assert!(!pin_dir.exists(), "{} is still there after the daemon stopped", pin_dir.display());

    // With the filter gone, 5060 is reachable again.
    send(&tx, &[(link.server(5060), 10)]);
    assert_eq!(drain(&rx_sip, QUIET), 10, "datagrams to 5060 arrive once the filter is detached");
}

#[test]
fn tcp_to_a_blocked_port_fails_and_other_ports_work() {
    let link = Link::new("tcp");
    let daemon = link.daemon(&[]);
    let (blocked, open) = (link.server(5060), link.server(OPEN_PORT));
    let listeners = link.b.run(move || (TcpListener::bind(blocked), TcpListener::bind(open)));
    let (l_blocked, l_open) = (listeners.0.expect("listening on 5060"), listeners.1.expect("listening on the open port"));
    l_blocked.set_nonblocking(true).unwrap();

    let err = link
        .a
        .run(move || TcpStream::connect_timeout(&blocked, Duration::from_millis(400)))
        .expect_err("connecting to 5060 should fail: its SYN is dropped");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(l_blocked.accept().is_err(), "nothing reached the 5060 listener");

    let server = std::thread::spawn(move || {
        let (mut s, _) = l_open.accept().expect("accepting");
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).expect("reading");
        s.write_all(b"world").expect("writing");
        buf
    });
    let mut c = link
        .a
        .run(move || TcpStream::connect_timeout(&open, Duration::from_secs(3)))
        .expect("connecting to the open port");
    c.write_all(b"hello").unwrap();
    let mut reply = [0u8; 5];
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    c.read_exact(&mut reply).expect("reading the reply");
    assert_eq!((&server.join().unwrap(), &reply), (b"hello", b"world"));

    let s = daemon.stats_when(|s| s.app("unknown", "pass").0 >= 3);
    let (syn, syn_bytes) = s.app("sip", "drop");
    // One SYN within 400 ms (the first retransmission comes after 1 s); a Linux SYN is
    // 14 + 20 + 40 bytes (MSS, SACK permitted, timestamps, window scale).
    assert_eq!((syn, syn_bytes), (1, 74), "{}", s.0);
    let (pass, _) = s.app("unknown", "pass");
    assert!(pass >= 3, "SYN, ACK and data of the open connection pass: {}", s.0);
    assert_eq!(s.total("all").0, syn + pass, "nothing else counted: {}", s.0);
}

#[test]
fn rules_changed_at_run_time_change_what_is_dropped() {
    const K: usize = 20;
    let link = Link::new("rules");
    let daemon = link.daemon(&[]);
    let (rx, tx) = (link.receiver(9999), link.sender());
    let to_9999 = [(link.server(9999), K)];

    send(&tx, &to_9999);
    assert_eq!(drain(&rx, QUIET), K, "no rule on 9999 yet");

    let out = daemon.cli(&["rules", "add", "port", "9999", "-p", "udp", "-x", "drop"]).ok();
    assert!(out.stdout.contains("added 1 port rule"), "{}", out.stdout);
    let list: serde_json::Value = serde_json::from_str(&daemon.cli(&["rules", "list", "--json"]).ok().stdout).unwrap();
    let rule = list["ports"].as_array().unwrap().iter().find(|r| r["port"] == 9999).cloned();
    assert_eq!(
        rule,
        Some(serde_json::json!({"proto": "udp", "port": 9999, "app": "custom", "action": "drop"})),
        "{list}"
    );
    send(&tx, &to_9999);
    assert_eq!(drain(&rx, QUIET), 0, "the new rule drops 9999");
    assert_app(&daemon.stats_when(|s| s.app("custom", "drop").0 >= K as u64), "custom", "drop", K as u64);

    daemon.cli(&["rules", "del", "port", "9999", "-p", "udp"]).ok();
    send(&tx, &to_9999);
    assert_eq!(drain(&rx, QUIET), K, "9999 is open again after the delete");

    // A prefix rule on the sender's address, under an app name.
    let sender = format!("{}/32", link.veth.a.addr);
    daemon.cli(&["rules", "add", "prefix", &sender, "-a", "zoom", "-x", "drop"]).ok();
    send(&tx, &to_9999);
    assert_eq!(drain(&rx, QUIET), 0, "the prefix rule drops everything from the sender");
    daemon.cli(&["rules", "del", "prefix", &sender]).ok();
    send(&tx, &to_9999);
    assert_eq!(drain(&rx, QUIET), K, "delivered again after deleting the prefix rule");

    let s = daemon.stats_when(|s| s.total("all").0 >= 5 * K as u64);
    assert_app(&s, "unknown", "pass", 3 * K as u64);
    assert_app(&s, "custom", "drop", K as u64);
    assert_app(&s, "zoom", "drop", K as u64);
    assert_eq!(s.total("all").0, 5 * K as u64, "{}", s.0);
    assert!(daemon.stop().status.success());
}

#[test]
fn skb_mode_attaches_generic_xdp() {
    const N: usize = 30;
    const M: usize = 20;
    let link = Link::new("skb");
    let daemon = link.daemon(&["--mode", "skb"]);
    let shown = link.link_b();
    assert!(shown.contains("xdpgeneric"), "no generic XDP program on the link:\n{shown}");
    assert!(!shown.contains(" xdp "), "attached natively despite --mode skb:\n{shown}");

    let (rx_open, tx) = (link.receiver(OPEN_PORT), link.sender());
    send(&tx, &[(link.server(5060), N), (link.server(OPEN_PORT), M)]);
    assert_eq!(drain(&rx_open, QUIET), M);
    let s = daemon.stats_when(|s| s.total("all").0 >= (N + M) as u64);
    assert_eq!(s.interfaces(), vec![(link.veth.b.ifname.clone(), "skb".to_string())]);
    assert_app(&s, "sip", "drop", N as u64);
    assert_app(&s, "unknown", "pass", M as u64);
    assert_eq!(s.total("all").0, (N + M) as u64, "{}", s.0);

    let stopped = daemon.stop();
    assert!(stopped.status.success(), "{}", stopped.log);
    let shown = link.link_b();
    assert!(!shown.contains("xdp"), "still attached after the daemon stopped:\n{shown}");
}
