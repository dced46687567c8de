//! The real daemon on a real link: two network namespaces joined by a veth pair, `voipfilter
//! run` attached to the receiving end, traffic sent from the other end, and the CLI reading the
//! counters, the flow table, and changing rules and policy. Needs root, `ip`, and `nsenter`.
//!
//! The daemon runs with its defaults (no port rules: the detectors find calls on any port, and
//! every app they find is dropped), so the VoIP traffic is real: SIP INVITEs with SDP built like
//! the RFC 3261 example, RTP streams, IAX2 NEW frames, a SIP call over TCP. Ordinary traffic
//! (text datagrams, a TCP echo, also on the SIP port) must pass.
//!
//! Namespaces have IPv6 off and static neighbour entries, so the only frames on the link are the
//! test's own and every counter can be compared exactly. XDP runs on the receiving end only:
//! the counters see what `a` sends.
//!
//! A decided UDP flow's endpoints are expected to carry its app (ICE reuses a local endpoint
//! towards other peers), so VoIP and ordinary traffic are sent from different sockets.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    time::{Duration, Instant},
};

use voipfilter_tests::{
    cli::Stats,
    daemon::Daemon,
    netns::{Netns, Veth, udp4_frame_len},
    tempdir::TempDir,
    voip,
};

/// Payload bytes of every ordinary test datagram (ASCII text: no detector takes it for VoIP).
const PAYLOAD: usize = 32;
const FRAME: u64 = udp4_frame_len(PAYLOAD) as u64;
/// A port no detector or rule cares about.
const OPEN_PORT: u16 = 7000;
const SIP_PORT: u16 = 5060;

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

/// `n` ordinary datagrams.
fn texts(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(payload).collect()
}

/// `n` SIP INVITEs with an SDP offer, from `from` (one call each: Call-ID and branch differ).
fn invites(n: usize, from: &Link) -> Vec<Vec<u8>> {
    let ip = from.veth.a.addr.to_string();
    (0..n).map(|i| voip::sip_invite(i as u32, &ip, 49170)).collect()
}

/// Frame bytes of these UDP payloads on the link, as the counters add them up.
fn frame_bytes(ps: &[Vec<u8>]) -> u64 {
    ps.iter().map(|p| udp4_frame_len(p.len()) as u64).sum()
}

/// Sends each list of datagrams to its destination, interleaved, paced so that no queue on the
/// way overflows (a frame lost before XDP would make the counts wrong for the wrong reason).
fn send(dsts: &[(&UdpSocket, SocketAddr, &[Vec<u8>])]) {
    let most = dsts.iter().map(|d| d.2.len()).max().unwrap_or(0);
    let mut sent = 0;
    for i in 0..most {
        for &(tx, dst, ps) in dsts {
            if let Some(p) = ps.get(i) {
                tx.send_to(p, dst).unwrap_or_else(|e| panic!("sending to {dst}: {e}"));
                sent += 1;
                if sent % 16 == 0 {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        }
    }
}

/// Receives until nothing arrives for `quiet` (or 5 s pass); returns the datagrams.
fn drain(rx: &UdpSocket, quiet: Duration) -> Vec<Vec<u8>> {
    rx.set_read_timeout(Some(quiet)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 2048];
    let mut got = Vec::new();
    while Instant::now() < deadline {
        match rx.recv(&mut buf) {
            Ok(len) => got.push(buf[..len].to_vec()),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
            Err(e) => panic!("receiving: {e}"),
        }
    }
    got
}

/// Receives like [`drain`]; returns how many datagrams came, checking they are the test's
/// ordinary ones.
fn drain_texts(rx: &UdpSocket, quiet: Duration) -> usize {
    let got = drain(rx, quiet);
    for d in &got {
        assert!(d.len() == PAYLOAD && d.starts_with(b"voipfilter e2e datagram"), "unexpected datagram {d:?}");
    }
    got.len()
}

const QUIET: Duration = Duration::from_millis(300);

/// Asserts an (app, action) counter for ordinary datagrams of [`PAYLOAD`] bytes.
fn assert_app(s: &Stats, app: &str, action: &str, packets: u64) {
    assert_eq!(s.app(app, action), (packets, packets * FRAME), "{app}/{action} (packets, bytes) in {}", s.0);
}

/// The flow table of the daemon (`voipfilter flows --json`).
fn flows(daemon: &Daemon) -> Vec<serde_json::Value> {
    let out = daemon.cli(&["flows", "--json", "-n", "1000"]).ok();
    serde_json::from_str::<serde_json::Value>(&out.stdout)
        .unwrap_or_else(|e| panic!("flows --json is not JSON ({e}): {}", out.stdout))
        .as_array()
        .cloned()
        .expect("an array of flows")
}

/// The flow between two endpoints (either order).
fn flow<'a>(flows: &'a [serde_json::Value], x: &str, y: &str) -> &'a serde_json::Value {
    flows
        .iter()
        .find(|f| (f["a"] == x && f["b"] == y) || (f["a"] == y && f["b"] == x))
        .unwrap_or_else(|| panic!("no flow {x} <-> {y} in {flows:#?}"))
}

/// The counters' difference between two snapshots: (packets, bytes) of an (app, action).
fn delta(after: &Stats, before: &Stats, app: &str, action: &str) -> (u64, u64) {
    let (a, b) = (after.app(app, action), before.app(app, action));
    (a.0 - b.0, a.1 - b.1)
}

#[test]
fn sip_invites_are_dropped_on_any_port_and_counted_exactly() {
    const N: usize = 150; // INVITEs to 5060 and 15060: dropped
    const M: usize = 100; // text to the open port: delivered
    let link = Link::new("sip");
    let daemon = link.daemon(&["--mode", "native"]);
    let shown = link.link_b();
    assert!(shown.contains(" xdp ") && shown.contains("prog/xdp"), "no native XDP program on the link:\n{shown}");

    let (rx_sip, rx_alt, rx_open) = (link.receiver(SIP_PORT), link.receiver(15060), link.receiver(OPEN_PORT));
    let (tx_sip, tx_alt, tx_text) = (link.sender(), link.sender(), link.sender());
    let (inv, inv_alt, text) = (invites(N, &link), invites(N, &link), texts(M));
    send(&[
        (&tx_sip, link.server(SIP_PORT), &inv),
        (&tx_alt, link.server(15060), &inv_alt),
        (&tx_text, link.server(OPEN_PORT), &text),
    ]);
    assert_eq!(drain_texts(&rx_open, QUIET), M, "every ordinary datagram arrives");
    assert_eq!(drain(&rx_sip, Duration::from_millis(50)).len(), 0, "no INVITE to 5060 arrives");
    assert_eq!(drain(&rx_alt, Duration::from_millis(50)).len(), 0, "no INVITE to 15060 arrives");

    let s = daemon.stats_when(|s| s.total("all").0 >= (2 * N + M) as u64);
    let sip_bytes = frame_bytes(&inv) + frame_bytes(&inv_alt);
    assert_eq!(s.app("sip", "drop"), (2 * N as u64, sip_bytes), "{}", s.0);
    assert_app(&s, "unknown", "pass", M as u64);
    assert_eq!(s.total("drop"), (2 * N as u64, sip_bytes));
    assert_eq!(s.total("pass"), (M as u64, M as u64 * FRAME));
    assert_eq!(s.total("monitor"), (0, 0));
    assert_eq!(s.total("all"), ((2 * N + M) as u64, sip_bytes + M as u64 * FRAME));
    assert_eq!(s.0["apps"].as_array().map(Vec::len), Some(2), "only sip/drop and unknown/pass: {}", s.0);
    assert_eq!(s.not_parsed_total(), 0, "{}", s.0);
    assert_eq!(s.interfaces(), vec![(link.veth.b.ifname.clone(), "native".to_string())]);
    assert_eq!(s.0["pid"].as_u64(), Some(u64::from(daemon.pid())));
    let classes: Vec<_> = s.0["apps"].as_array().unwrap().iter().map(|r| (r["app"].clone(), r["class"].clone())).collect();
    assert_eq!(classes, [("unknown".into(), "none".into()), ("sip".into(), "signalling".into())], "{}", s.0);
    // The human-readable form shows the same numbers.
    let text_stats = daemon.cli(&["stats"]).ok().stdout;
    assert!(text_stats.contains(&link.veth.b.ifname) && text_stats.contains("native"), "{text_stats}");
    assert!(
        text_stats.lines().any(|l| l.split_whitespace().collect::<Vec<_>>().starts_with(&["sip", "signalling", "drop", "300"])),
        "{text_stats}"
    );

    // The flow table: each SIP flow decided on its first packet, the text flow given up on.
    let fl = flows(&daemon);
    let ep = |sock: &UdpSocket| sock.local_addr().unwrap().to_string();
    for (tx, port) in [(&tx_sip, SIP_PORT), (&tx_alt, 15060)] {
        let f = flow(&fl, &ep(tx), &link.server(port).to_string());
        assert_eq!((&f["app"], &f["state"], &f["decided_at"], &f["packets"]), (&"sip".into(), &"decided".into(), &1.into(), &(N as u64).into()), "{f}");
    }
    let f = flow(&fl, &ep(&tx_text), &link.server(OPEN_PORT).to_string());
    assert_eq!((&f["app"], &f["state"], &f["packets"]), (&"unknown".into(), &"not-call".into(), &(M as u64).into()), "{f}");

    let pin_dir = daemon.pin_dir().to_path_buf();
    assert!(pin_dir.join("APP_STATS").exists());
    let stopped = daemon.stop();
    assert!(stopped.status.success(), "the daemon should exit 0 on SIGTERM ({}):\n{}", stopped.status, stopped.log);
    assert!(stopped.log.contains("detached from"), "{}", stopped.log);
    let shown = link.link_b();
    assert!(!shown.contains("xdp"), "an XDP program is still attached after the daemon stopped:\n{shown}");
    assert!(!pin_dir.exists(), "{} is still there after the daemon stopped", pin_dir.display());

    // With the filter gone, INVITEs arrive.
    send(&[(&tx_sip, link.server(SIP_PORT), &inv[..10])]);
    let got = drain(&rx_sip, QUIET);
    assert_eq!(got.len(), 10, "INVITEs arrive once the filter is detached");
    assert!(got[0].starts_with(b"INVITE sip:bob@biloxi.com SIP/2.0\r\n"));
}

#[test]
fn rtp_and_iax2_are_dropped_and_ordinary_traffic_passes() {
    const RTP: usize = 50;
    const IAX: usize = 20;
    const M: usize = 40;
    let link = Link::new("media");
    let daemon = link.daemon(&[]);
    let (rx_rtp, rx_iax, rx_open) = (link.receiver(16386), link.receiver(4569), link.receiver(OPEN_PORT));
    let (tx_rtp, tx_iax, tx_text) = (link.sender(), link.sender(), link.sender());
    // A phone's PCMU stream without its signalling (20 ms packets, one SSRC), IAX2 call set-ups,
    // and text datagrams.
    let rtp: Vec<Vec<u8>> = (0..RTP as u16).map(|i| voip::rtp_stream(0x1234_5678, 1000, i)).collect();
    let iax: Vec<Vec<u8>> = (0..IAX as u16).map(|i| voip::iax2_new(i + 1)).collect();
    let text = texts(M);
    send(&[(&tx_rtp, link.server(16386), &rtp), (&tx_iax, link.server(4569), &iax), (&tx_text, link.server(OPEN_PORT), &text)]);
    let delivered_rtp = drain(&rx_rtp, QUIET);
    assert!(delivered_rtp.len() <= 2, "RTP without signalling is dropped by its 3rd packet; {} of {RTP} arrived", delivered_rtp.len());
    assert_eq!(delivered_rtp, rtp[..delivered_rtp.len()].to_vec(), "only the first packets of the stream arrive");
    assert_eq!(drain(&rx_iax, Duration::from_millis(50)).len(), 0, "no IAX2 NEW arrives");
    assert_eq!(drain_texts(&rx_open, Duration::from_millis(50)), M);

    let d = delivered_rtp.len();
    let s = daemon.stats_when(|s| s.total("all").0 >= (RTP + IAX + M) as u64);
    assert_eq!(s.app("rtp", "drop"), ((RTP - d) as u64, frame_bytes(&rtp[d..])), "{}", s.0);
    assert_eq!(s.app("iax2", "drop"), (IAX as u64, frame_bytes(&iax)), "{}", s.0);
    assert_eq!(s.app("unknown", "pass"), ((M + d) as u64, M as u64 * FRAME + frame_bytes(&rtp[..d])), "{}", s.0);
    assert_eq!(s.total("all").0, (RTP + IAX + M) as u64, "nothing else counted: {}", s.0);

    let fl = flows(&daemon);
    let ep = |sock: &UdpSocket| sock.local_addr().unwrap().to_string();
    let f = flow(&fl, &ep(&tx_rtp), &link.server(16386).to_string());
    assert_eq!((&f["app"], &f["state"], &f["decided_at"]), (&"rtp".into(), &"decided".into(), &((d + 1) as u64).into()), "{f}");
    assert!(daemon.stop().status.success());
}

#[test]
fn tcp_sip_call_is_cut_at_its_invite_and_other_tcp_works() {
    let link = Link::new("tcp");
    let daemon = link.daemon(&[]);
    let (sip, open, http) = (link.server(SIP_PORT), link.server(OPEN_PORT), link.server(8080));
    let listeners = link.b.run(move || (TcpListener::bind(sip), TcpListener::bind(open), TcpListener::bind(http)));
    let l_sip = listeners.0.expect("listening on 5060");
    let l_open = listeners.1.expect("listening on the open port");
    let l_http = listeners.2.expect("listening on 8080");

    // The handshake carries no payload: the connection is established...
    let before = daemon.stats();
    let mut call = link.a.run(move || TcpStream::connect_timeout(&sip, Duration::from_secs(2))).expect("the SIP connection is established");
    let (mut accepted, _) = l_sip.accept().expect("accepting the SIP connection");
    // ... but the INVITE and everything after it on the connection is dropped.
    call.write_all(&invites(1, &link)[0]).expect("writing the INVITE");
    accepted.set_read_timeout(Some(Duration::from_millis(800))).unwrap();
    let mut buf = [0u8; 2048];
    match accepted.read(&mut buf) {
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
        other => panic!("the INVITE should never arrive: {other:?}"),
    }
    let s = daemon.stats_when(|s| delta(s, &before, "sip", "drop").0 >= 1);
    // SYN (with options: 14 + 20 + 40 bytes) and the handshake's ACK (timestamps: 14 + 20 + 32).
    assert_eq!(delta(&s, &before, "unknown", "pass"), (2, 74 + 66), "SYN and ACK pass: {}", s.0);
    let (dropped, _) = delta(&s, &before, "sip", "drop");
    assert!(dropped >= 1, "the INVITE segment (and its retransmissions) are dropped: {}", s.0);
    assert_eq!(s.total("all").0 - before.total("all").0, 2 + dropped, "nothing else counted: {}", s.0);
    // Abort (RST) rather than close: a closed socket with unacknowledged data would keep
    // retransmitting into the filter.
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt on an open socket with a valid `linger`.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&call),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    drop(call);

    // Ordinary TCP: an echo on an open port, and HTTP on 8080.
    let before = daemon.stats();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l_open.accept().expect("accepting");
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).expect("reading");
        s.write_all(b"world").expect("writing");
        let (mut h, _) = l_http.accept().expect("accepting HTTP");
        let mut req = vec![0u8; voip::HTTP_GET.len()];
        h.read_exact(&mut req).expect("reading the request");
        h.write_all(voip::HTTP_OK).expect("writing the response");
        (buf, req)
    });
    let mut c = link.a.run(move || TcpStream::connect_timeout(&open, Duration::from_secs(3))).expect("connecting to the open port");
    c.write_all(b"hello").unwrap();
    let mut reply = [0u8; 5];
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    c.read_exact(&mut reply).expect("reading the reply");
    let mut h = link.a.run(move || TcpStream::connect_timeout(&http, Duration::from_secs(3))).expect("connecting to 8080");
    h.write_all(voip::HTTP_GET).unwrap();
    let mut resp = vec![0u8; voip::HTTP_OK.len()];
    h.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    h.read_exact(&mut resp).expect("reading the HTTP response");
    let (hello, req) = server.join().unwrap();
    assert_eq!((&hello, &reply), (b"hello", b"world"));
    assert_eq!((req.as_slice(), resp.as_slice()), (voip::HTTP_GET, voip::HTTP_OK));
    let s = daemon.stats_when(|s| delta(s, &before, "unknown", "pass").0 >= 6);
    assert!(delta(&s, &before, "unknown", "pass").0 >= 6, "SYN, ACK and data of both connections pass: {}", s.0);
    // (The aborted SIP connection's RST may still be counted, as sip/drop.)
    let other_drops = s.total("drop").0 - before.total("drop").0 - delta(&s, &before, "sip", "drop").0;
    assert_eq!(other_drops, 0, "nothing of the ordinary connections is dropped: {}", s.0);
    assert!(daemon.stop().status.success());
}

#[test]
fn policy_changed_at_run_time_changes_what_is_dropped() {
    const K: usize = 20;
    let link = Link::new("policy");
    let daemon = link.daemon(&[]);
    let (rx, tx) = (link.receiver(SIP_PORT), link.sender());
    let inv = invites(K, &link);
    let to_sip = |ps: &[Vec<u8>]| send(&[(&tx, link.server(SIP_PORT), ps)]);

    to_sip(&inv);
    assert_eq!(drain(&rx, QUIET).len(), 0, "the default policy drops SIP");
    let out = daemon.cli(&["policy", "set", "sip", "monitor"]).ok();
    assert!(out.stdout.contains("sip -> monitor"), "{}", out.stdout);
    let list: serde_json::Value = serde_json::from_str(&daemon.cli(&["policy", "list", "--json"]).ok().stdout).unwrap();
    let sip = list.as_array().unwrap().iter().find(|r| r["app"] == "sip").cloned();
    assert_eq!(sip, Some(serde_json::json!({"app": "sip", "class": "signalling", "action": "monitor"})), "{list}");
    // The flow was decided before the change: its next packets follow the new policy.
    to_sip(&inv);
    assert_eq!(drain(&rx, QUIET).len(), K, "monitored INVITEs are delivered");
    daemon.cli(&["policy", "set", "signalling", "drop"]).ok();
    to_sip(&inv);
    assert_eq!(drain(&rx, QUIET).len(), 0, "dropped again");

    let s = daemon.stats_when(|s| s.total("all").0 >= 3 * K as u64);
    let b = frame_bytes(&inv);
    assert_eq!(s.app("sip", "drop"), (2 * K as u64, 2 * b), "{}", s.0);
    assert_eq!(s.app("sip", "monitor"), (K as u64, b), "{}", s.0);
    assert_eq!(s.total("all").0, 3 * K as u64, "{}", s.0);
    assert!(daemon.stop().status.success());
}

#[test]
fn port_defaults_in_the_config_drop_the_classic_ports() {
    const K: usize = 20;
    let dir = TempDir::new("e2e-config");
    let config = dir.path().join("voipfilter.toml");
    std::fs::write(&config, "port_defaults = true\n").unwrap();
    let link = Link::new("portdef");
    let daemon = link.daemon(&["--config", config.to_str().unwrap()]);
    let (rx, tx) = (link.receiver(SIP_PORT), link.sender());
    // Text to 5060 is not SIP, but the classic port rule drops it all the same.
    send(&[(&tx, link.server(SIP_PORT), &texts(K))]);
    assert_eq!(drain_texts(&rx, QUIET), 0);
    let s = daemon.stats_when(|s| s.total("all").0 >= K as u64);
    assert_app(&s, "sip", "drop", K as u64);
    let list: serde_json::Value = serde_json::from_str(&daemon.cli(&["rules", "list", "--json"]).ok().stdout).unwrap();
    assert!(list["ports"].as_array().is_some_and(|p| p.iter().any(|r| r["port"] == 5060 && r["proto"] == "udp")), "{list}");
    assert!(daemon.stop().status.success());
}

#[test]
fn rules_changed_at_run_time_change_what_is_dropped() {
    const K: usize = 20;
    let link = Link::new("rules");
    let daemon = link.daemon(&[]);
    let (rx, tx) = (link.receiver(9999), link.sender());
    let text = texts(K);
    let to_9999 = [(&tx, link.server(9999), text.as_slice())];

    send(&to_9999);
    assert_eq!(drain_texts(&rx, QUIET), K, "no rule on 9999 yet");

    let out = daemon.cli(&["rules", "add", "port", "9999", "-p", "udp", "-x", "drop"]).ok();
    assert!(out.stdout.contains("added 1 port rule"), "{}", out.stdout);
    let list: serde_json::Value = serde_json::from_str(&daemon.cli(&["rules", "list", "--json"]).ok().stdout).unwrap();
    let rule = list["ports"].as_array().unwrap().iter().find(|r| r["port"] == 9999).cloned();
    assert_eq!(
        rule,
        Some(serde_json::json!({"proto": "udp", "port": 9999, "app": "custom", "action": "drop"})),
        "{list}"
    );
    send(&to_9999);
    assert_eq!(drain_texts(&rx, QUIET), 0, "the new rule drops 9999");
    assert_app(&daemon.stats_when(|s| s.app("custom", "drop").0 >= K as u64), "custom", "drop", K as u64);

    daemon.cli(&["rules", "del", "port", "9999", "-p", "udp"]).ok();
    send(&to_9999);
    assert_eq!(drain_texts(&rx, QUIET), K, "9999 is open again after the delete");

    // A prefix rule on the sender's address, under an app name.
    let sender = format!("{}/32", link.veth.a.addr);
    daemon.cli(&["rules", "add", "prefix", &sender, "-a", "zoom", "-x", "drop"]).ok();
    send(&to_9999);
    assert_eq!(drain_texts(&rx, QUIET), 0, "the prefix rule drops everything from the sender");
    daemon.cli(&["rules", "del", "prefix", &sender]).ok();
    send(&to_9999);
    assert_eq!(drain_texts(&rx, QUIET), K, "delivered again after deleting the prefix rule");

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

    let (rx_open, tx_sip, tx_text) = (link.receiver(OPEN_PORT), link.sender(), link.sender());
    let (inv, text) = (invites(N, &link), texts(M));
    send(&[(&tx_sip, link.server(SIP_PORT), &inv), (&tx_text, link.server(OPEN_PORT), &text)]);
    assert_eq!(drain_texts(&rx_open, QUIET), M);
    let s = daemon.stats_when(|s| s.total("all").0 >= (N + M) as u64);
    assert_eq!(s.interfaces(), vec![(link.veth.b.ifname.clone(), "skb".to_string())]);
    assert_eq!(s.app("sip", "drop"), (N as u64, frame_bytes(&inv)), "{}", s.0);
    assert_app(&s, "unknown", "pass", M as u64);
    assert_eq!(s.total("all").0, (N + M) as u64, "{}", s.0);

    let stopped = daemon.stop();
    assert!(stopped.status.success(), "{}", stopped.log);
    let shown = link.link_b();
    assert!(!shown.contains("xdp"), "still attached after the daemon stopped:\n{shown}");
}
