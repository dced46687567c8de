//! The app detectors (`detect::apps` in the `voipfilter_apps` program, `detect::track` in the
//! inspection program, Jitsi's STUN SOFTWARE in `voipfilter_detect`) in the kernel, with
//! BPF_PROG_TEST_RUN: each flow is a sequence of frames built from the protocol facts (the
//! payloads of the corpus captures), and the test asserts at which packet the flow is first
//! dropped, as which app. Every frame's verdict is also compared with the engine's host model
//! (`Harness::expect_host`), and each test ends by comparing the tables and counters. Needs root.

use voipfilter_common::{Action, App, user::frame::Frame};
use voipfilter_tests::{
    harness::{Harness, describe_verdict},
    voip::hex,
};

/// Runs `(from client?, payload)` packets of one UDP flow between `c` and `s`; returns the
/// 0-based index of the first drop, asserting that every packet from there on is dropped as
/// `app` and every packet before it passed as unknown.
fn flow(h: &mut Harness, what: &str, c: ([u8; 4], u16), s: ([u8; 4], u16), packets: &[(bool, Vec<u8>)], app: App) -> Option<usize> {
    let mut first = None;
    for (i, (up, p)) in packets.iter().enumerate() {
        let f = if *up { Frame::udp4(c.0, c.1, s.0, s.1, p).build() } else { Frame::udp4(s.0, s.1, c.0, c.1, p).build() };
        let v = h.expect_host(&format!("{what} #{i}"), &f);
        match (first, v.action) {
            (None, Action::Drop) => {
                assert_eq!(v.app, app as u16, "{what} #{i}: dropped as {}", describe_verdict(&v));
                first = Some(i);
            }
            (None, _) => assert_eq!(v.app, App::Unknown as u16, "{what} #{i}: {}", describe_verdict(&v)),
            (Some(d), _) => assert_eq!((v.app, v.action), (app as u16, Action::Drop), "{what} #{i}: after the first drop at #{d}"),
        }
    }
    first
}

fn padded(prefix: &str, len: usize, fill: u8) -> Vec<u8> {
    let mut v = hex(prefix);
    v.resize(len, fill);
    v
}

const CLIENT: [u8; 4] = [192, 0, 2, 10];
const SERVER: [u8; 4] = [198, 51, 100, 20];

#[test]
fn one_packet_apps_are_dropped_from_their_first_packet() {
    let mut h = Harness::new();
    // Zoom SFU type 1 (zoom.pcap), then the server's type 2 (zoom2.pcap).
    let zoom = [(true, padded("0100027d464d35fffda234495d0d6d3b51e8960000000000", 107, 0)), (false, hex("020003c84ac4528718cda2b8477a1b899f3383004f8378006f613f0000000000000000004000400003e00300"))];
    assert_eq!(flow(&mut h, "zoom sfu", (CLIENT, 58327), (SERVER, 8801), &zoom, App::Zoom), Some(0));
    // Discord keepalive and IP discovery (discord.pcap).
    let ka = [(true, hex("1337cafe0e000000")), (false, hex("1337cafe0e000000"))];
    assert_eq!(flow(&mut h, "discord keepalive", (CLIENT, 56271), (SERVER, 50004), &ka, App::Discord), Some(0));
    let disco = [(true, padded("000100460000ace3", 74, 0)), (false, padded("000200460000ace338342e35392e3133322e313030", 74, 0))];
    assert_eq!(flow(&mut h, "discord ip discovery", (CLIENT, 57955), (SERVER, 50005), &disco, App::Discord), Some(0));
    // TeamSpeak Init1 (teamspeak3.pcap).
    let ts = [(true, hex("545333494e49543100650000880dd05766005f5916e0ade76b61000000000000000000"))];
    assert_eq!(flow(&mut h, "teamspeak init1", (CLIENT, 53187), (SERVER, 9987), &ts, App::TeamSpeak), Some(0));
    // Mumble ping and answer on 64738 (mumble.pcapng).
    let mumble = [(true, hex("0000000003d72000fa76287e")), (false, hex("0001030403d72000fa76287e000000000000006400011940"))];
    assert_eq!(flow(&mut h, "mumble on 64738", (CLIENT, 50085), (SERVER, 64738), &mumble, App::Mumble), Some(0));
    // Telegram relay (telegram.pcap).
    let tg = [(true, hex("dc4c00291565b7acbc236da9eda0d597ffffffffffffffffffffffff feffffff28f946112601a2f0"))];
    assert_eq!(flow(&mut h, "telegram relay", (CLIENT, 23174), (SERVER, 521), &tg, App::Telegram), Some(0));
    h.check_state();
    h.check_counters();
}

#[test]
fn multi_packet_apps_are_dropped_within_two_packets() {
    let mut h = Harness::new();
    // Mumble on another port: the ping passes, the answer is dropped.
    let mumble = [(true, hex("0000000003d72000fa76287e")), (false, hex("0001030403d72000fa76287e000000000000006400011940"))];
    assert_eq!(flow(&mut h, "mumble echo", (CLIENT, 50086), (SERVER, 40000), &mumble, App::Mumble), Some(1));
    // TeamSpeak licence exchange (teamspeak3.pcap, 2011 <-> 2010): the third packet.
    let lic = [(true, hex("01808401")), (false, hex("018084017c65d9a7")), (true, hex("018184027c65d9a703272000 00000000")), (false, hex("0181840200"))];
    assert_eq!(flow(&mut h, "teamspeak licence", (CLIENT, 2011), (SERVER, 2010), &lic, App::TeamSpeak), Some(2));
    // LINE (line.pcap, 51170 <-> 29070): a handshake each way.
    let line = [(true, padded("d89c00720602", 160, 0x5c)), (false, padded("d8d002090602", 212, 0x5c)), (true, padded("d0800073186e", 132, 0x5c))];
    assert_eq!(flow(&mut h, "line", (CLIENT, 51170), (SERVER, 29070), &line, App::Line), Some(1));
    // Zoom SFU types 3/4 (zoom.pcap's GTP-U flow): the second.
    let z = [(true, padded("03000000120ffe98d200272ec9010540", 89, 0x11)), (false, padded("03000000156d6e7c0000272ec9010540", 89, 0x22))];
    assert_eq!(flow(&mut h, "zoom sfu 3/4", (CLIENT, 45634), (SERVER, 8801), &z, App::Zoom), Some(1));
    // Snapchat (snapchat_call.pcapng): the CHLO without SNI, then the server's Q046 REJ.
    let mut chlo = hex(
        "c35130343650c38046e77aa306ea0000000164f5352fb539b7224c543d62a001040043484c4f0c000000\
         5041440048030000564552004c030000434353005c03000050444d4460030000534d484c64030000\
         4943534c680300004e4f4e50880300004d4944538c03000053434c53900300004353435490030000\
         43464357940300005346435798030000",
    );
    chlo.resize(1350, b'-');
    let snap = [(true, chlo.clone()), (false, padded("c35130343605c38046e77aa306ea000000011c79", 1350, 0x33))];
    assert_eq!(flow(&mut h, "snapchat", (CLIENT, 42083), (SERVER, 443), &snap, App::Snapchat), Some(1));
    // The same CHLO with an SNI tag is ordinary gQUIC: nothing is dropped.
    let mut sni = chlo;
    sni[42..46].copy_from_slice(b"SNI\0");
    let gquic = [(true, sni), (false, padded("c35130343605c38046e77aa306ea000000011c79", 1350, 0x33))];
    assert_eq!(flow(&mut h, "gquic with sni", (CLIENT, 42084), (SERVER, 443), &gquic, App::Unknown), None);
    h.check_state();
    h.check_counters();
}

#[test]
fn jitsi_stun_software_is_dropped() {
    let mut h = Harness::new();
    // Binding success response, SOFTWARE "ice4j.org", XOR-MAPPED-ADDRESS (RFC 5769's).
    let m = hex("0101001c2112a442b7e7a701bc34d686fa87dfae 80220009 696365346a2e6f7267000000 00200008 0001a147e112a643");
    let f = [(false, m)];
    assert_eq!(flow(&mut h, "jitsi stun", (CLIENT, 50100), (SERVER, 10000), &f, App::Jitsi), Some(0));
    h.check_state();
    h.check_counters();
}

#[test]
fn neighbours_on_app_ports_pass() {
    let mut h = Harness::new();
    let dns = hex("bc1f0100000100000000000003777777076578616d706c6503636f6d00001c0001");
    let quic = padded("c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11", 1200, 0);
    let text = b"voipfilter test payload, long enough for every detector".to_vec();
    for (i, port) in [8801u16, 64738, 521, 7985, 2010, 443, 29070].into_iter().enumerate() {
        let packets: Vec<(bool, Vec<u8>)> =
            (0..6).map(|k| (k % 2 == 0, [&dns, &quic, &text][k % 3].clone())).collect();
        assert_eq!(flow(&mut h, &format!("neighbours on {port}"), (CLIENT, 41000 + i as u16), (SERVER, port), &packets, App::Unknown), None);
    }
    h.check_state();
    h.check_counters();
}
