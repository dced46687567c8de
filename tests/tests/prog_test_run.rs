//! The real XDP programs in the kernel, run on crafted frames with BPF_PROG_TEST_RUN.
//!
//! Every run asserts the XDP return value (never XDP_ABORTED), the verdict the program reports
//! in the frame's metadata (app, action, reason), and that the engine's host model
//! (`engine::process` over `HostTables` with the same rules, policy and state, fed the same
//! frames in the same order) gives the same verdict; every test ends by comparing all counters
//! with a model, and the engine tests also compare the flow, expectation, fragment and TCP-call
//! tables. Needs root.
//!
//! Every detector runs in the kernel, SDP expectations included (`SDP_IN_ENGINE` in engine.rs).

use voipfilter::{
    config::Settings,
    load::{Filter, LoadOptions, OBJECT},
    rulespec::{Proto, RuleList},
};
use voipfilter_common::{
    Action, App, Reason,
    classify::Verdict,
    engine,
    flow::{DEFAULT_INSPECT_LIMIT, EndpointKey, FlowKey, FlowState},
    maps::{PROGRAM, TAIL_PROGRAMS},
    packet::{self, ETH_P_8021AD, ETH_P_8021Q, ETH_P_QINQ_9100, MAX_IPV6_EXT, proto},
    rules::{PortKey, Rule},
    user::frame::{DST_MAC, Frame, SRC_MAC},
};
use voipfilter_tests::{
    elf,
    harness::{Harness, TEST_FLOWS, XDP_DROP, XDP_PASS, describe_verdict, host_tables, verdict},
    rng::Rng,
    voip::{self, CorpusFrame},
};

use Action::{Drop, Monitor, Pass};
use App::{Custom, Rtp, Sip, Unknown};
use Reason::Ok as Parsed;

const CLIENT: [u8; 4] = [192, 0, 2, 10];
const SERVER: [u8; 4] = [192, 0, 2, 20];
/// A payload no detector mistakes for VoIP (ASCII text, not RTP/STUN/SIP).
const TEXT: &[u8] = b"voipfilter test payload";

fn v6(last: u16) -> [u8; 16] {
    let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    a[14..].copy_from_slice(&last.to_be_bytes());
    a
}

fn v6_in(prefix: [u8; 6], last: u16) -> [u8; 16] {
    let mut a = [0; 16];
    a[..6].copy_from_slice(&prefix);
    a[14..].copy_from_slice(&last.to_be_bytes());
    a
}

fn udp(dport: u16) -> Vec<u8> {
    Frame::udp4(CLIENT, 40000, SERVER, dport, TEXT).build()
}

fn tcp(dport: u16) -> Vec<u8> {
    Frame::tcp4(CLIENT, 40000, SERVER, dport, 0x02, b"").build()
}

/// An ARP request (ethertype 0x0806).
fn arp() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&CLIENT);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&SERVER);
    f
}

fn is_einval(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().and_then(std::io::Error::raw_os_error) == Some(libc::EINVAL))
}

#[test]
fn kernel_refuses_frames_shorter_than_an_ethernet_header() {
    let mut h = Harness::new();
    for len in 0..14 {
        match h.filter.run(&vec![0u8; len]) {
            Err(e) => assert!(is_einval(&e), "{len}-byte frame: expected EINVAL, got {e:#}"),
            Ok(r) => panic!("{len}-byte frame: the kernel ran the program ({r:?}); the suite assumes it refuses"),
        }
    }
    // 14 bytes is the smallest frame the kernel runs: ethertype 0 is not IP.
    h.expect("14 zero bytes", &[0u8; 14], Unknown, Pass, Reason::NotIp);
    h.check_counters();
}

#[test]
fn udp_and_tcp_port_rules() {
    let mut h = Harness::with_port_defaults();
    h.expect("udp to 5060", &udp(5060), Sip, Drop, Parsed);
    h.expect("udp to 5061", &udp(5061), Sip, Drop, Parsed);
    let reply = Frame::udp4(SERVER, 5060, CLIENT, 40000, TEXT).build();
    h.expect("udp from 5060 (source port)", &reply, Sip, Drop, Parsed);
    h.expect("udp to 4569", &udp(4569), App::Iax2, Drop, Parsed);
    h.expect("udp to 1719", &udp(1719), App::H323, Drop, Parsed);
    h.expect("udp to 3478", &udp(3478), App::Stun, Drop, Parsed);
    h.expect("udp to 53", &udp(53), Unknown, Pass, Parsed);
    h.expect("tcp to 5060", &tcp(5060), Sip, Drop, Parsed);
    h.expect("tcp to 1720", &tcp(1720), App::H323, Drop, Parsed);
    h.expect("tcp to 2000", &tcp(2000), App::Sccp, Drop, Parsed);
    h.expect("tcp to 3478", &tcp(3478), App::Stun, Drop, Parsed);
    // Port rules are per protocol.
    h.expect("udp to 1720 (only tcp has a rule)", &udp(1720), Unknown, Pass, Parsed);
    h.expect("tcp to 1719 (only udp has a rule)", &tcp(1719), Unknown, Pass, Parsed);
    h.expect("udp to 2000 (only tcp has a rule)", &udp(2000), Unknown, Pass, Parsed);
    h.expect("tcp to 4569 (only udp has a rule)", &tcp(4569), Unknown, Pass, Parsed);
    h.expect("tcp to 443", &tcp(443), Unknown, Pass, Parsed);
    let f = Frame::udp6(v6(1), 40000, v6(2), 5060, TEXT).build();
    h.expect("udp/ipv6 to 5060", &f, Sip, Drop, Parsed);
    let f = Frame::tcp6(v6(1), 40000, v6(2), 1720, 0x02, b"").build();
    h.expect("tcp/ipv6 to 1720", &f, App::H323, Drop, Parsed);
    h.check_counters();
}

#[test]
fn port_range_rule_and_deletion() {
    let mut h = Harness::new();
    assert_eq!(h.port(Proto::Udp, "50000-50059", App::Teams, Drop), 60, "one map key per port");
    assert_eq!(h.port(Proto::Both, "8000-8001", App::Zoom, Monitor), 4, "udp and tcp keys");
    for (port, ruled) in [(49999, false), (50000, true), (50030, true), (50059, true), (50060, false)] {
        let what = format!("udp to {port}");
        if ruled {
            h.expect(&what, &udp(port), App::Teams, Drop, Parsed);
        } else {
            h.expect(&what, &udp(port), Unknown, Pass, Parsed);
        }
    }
    h.expect("tcp to 50000 (the range is udp only)", &tcp(50000), Unknown, Pass, Parsed);
    h.expect("tcp to 8001", &tcp(8001), App::Zoom, Monitor, Parsed);
    h.expect("udp to 8000", &udp(8000), App::Zoom, Monitor, Parsed);

    // Deleting part of the range: those ports pass again, the rest still drop.
    assert_eq!(h.del_port(Proto::Udp, "50000-50009"), 10);
    assert_eq!(h.del_port(Proto::Udp, "50000-50009"), 0, "deleting again finds nothing");
    h.expect("udp to 50005 after delete", &udp(50005), Unknown, Pass, Parsed);
    h.expect("udp to 50010 after delete", &udp(50010), App::Teams, Drop, Parsed);
    h.check_counters();
}

#[test]
fn ipv4_prefix_rules_match_source_and_destination() {
    let mut h = Harness::new();
    h.prefix("198.51.100.0/24", Custom, Drop);
    let to = Frame::udp4(CLIENT, 40000, [198, 51, 100, 9], 53, TEXT).build();
    h.expect("to a dropped prefix", &to, Custom, Drop, Parsed);
    let from = Frame::udp4([198, 51, 100, 9], 53, CLIENT, 40000, TEXT).build();
    h.expect("from a dropped prefix", &from, Custom, Drop, Parsed);
    let tcp_from = Frame::tcp4([198, 51, 100, 255], 443, CLIENT, 40000, 0x12, b"").build();
    h.expect("tcp from a dropped prefix", &tcp_from, Custom, Drop, Parsed);
    let outside = Frame::udp4(CLIENT, 40000, [198, 51, 101, 9], 53, TEXT).build();
    h.expect("the next /24", &outside, Unknown, Pass, Parsed);

    // Destination before source: a packet between two ruled prefixes gets the destination's.
    h.prefix("203.0.113.0/24", App::WhatsApp, Monitor);
    let there = Frame::udp4([198, 51, 100, 9], 1, [203, 0, 113, 5], 2, TEXT).build();
    h.expect("dst rule before src rule", &there, App::WhatsApp, Monitor, Parsed);
    let back = Frame::udp4([203, 0, 113, 5], 2, [198, 51, 100, 9], 1, TEXT).build();
    h.expect("and the other way", &back, Custom, Drop, Parsed);

    assert!(h.del_prefix("198.51.100.0/24"));
    assert!(!h.del_prefix("198.51.100.0/24"), "deleting again finds nothing");
    h.expect("after deleting the prefix", &to, Unknown, Pass, Parsed);
    h.expect("after deleting the dst prefix, the src prefix", &back, App::WhatsApp, Monitor, Parsed);
    h.check_counters();
}

#[test]
fn ipv6_prefix_rules() {
    let mut h = Harness::new();
    h.prefix("2001:db8::/32", App::Zoom, Drop);
    let to = Frame::udp6(v6_in([0xfd, 0, 0, 0, 0, 1], 1), 40000, v6(7), 443, TEXT).build();
    h.expect("udp to 2001:db8::7", &to, App::Zoom, Drop, Parsed);
    let from = Frame::tcp6(v6(7), 443, v6_in([0xfd, 0, 0, 0, 0, 1], 1), 40000, 0x12, b"").build();
    h.expect("tcp from 2001:db8::7", &from, App::Zoom, Drop, Parsed);
    let outside = Frame::udp6(v6_in([0xfd, 0, 0, 0, 0, 1], 1), 1, v6_in([0x20, 0x01, 0x0d, 0xb9, 0, 0], 7), 2, TEXT).build();
    h.expect("2001:db9::7 is outside", &outside, Unknown, Pass, Parsed);
    // An IPv4 rule never matches IPv6 and the other way round.
    h.prefix("0.0.0.0/0", Custom, Monitor);
    h.expect("v4 catch-all does not match v6", &outside, Unknown, Pass, Parsed);
    h.expect("v4 catch-all matches v4", &udp(53), Custom, Monitor, Parsed);
    h.check_counters();
}

#[test]
fn longest_prefix_wins() {
    let mut h = Harness::new();
    h.prefix("198.51.100.0/24", Custom, Drop);
    h.prefix("198.51.100.128/25", App::Teams, Pass);
    h.prefix("198.51.100.200/32", App::Zoom, Monitor);
    h.prefix("2001:db8::/32", Custom, Drop);
    h.prefix("2001:db8:1::/48", App::Teams, Monitor);
    for (last, app, action) in [(1, Custom, Drop), (127, Custom, Drop), (128, App::Teams, Pass), (199, App::Teams, Pass), (200, App::Zoom, Monitor), (201, App::Teams, Pass)] {
        let f = Frame::udp4(CLIENT, 1, [198, 51, 100, last], 2, TEXT).build();
        h.expect(&format!("to 198.51.100.{last}"), &f, app, action, Parsed);
    }
    let f = Frame::udp6(v6_in([0xfd, 0, 0, 0, 0, 1], 1), 1, v6_in([0x20, 0x01, 0x0d, 0xb8, 0, 1], 9), 2, TEXT).build();
    h.expect("to 2001:db8:1::9", &f, App::Teams, Monitor, Parsed);
    let f = Frame::udp6(v6_in([0xfd, 0, 0, 0, 0, 1], 1), 1, v6_in([0x20, 0x01, 0x0d, 0xb8, 0, 2], 9), 2, TEXT).build();
    h.expect("to 2001:db8:2::9", &f, Custom, Drop, Parsed);
    h.check_counters();
}

#[test]
fn pass_prefix_is_an_exception_to_a_drop_port() {
    let mut h = Harness::with_port_defaults();
    h.prefix("198.51.100.0/24", Custom, Pass);
    h.prefix("2001:db8::/32", App::Teams, Pass);
    let trusted = Frame::udp4(CLIENT, 40000, [198, 51, 100, 5], 5060, TEXT).build();
    h.expect("sip to a trusted prefix", &trusted, Custom, Pass, Parsed);
    let trusted_src = Frame::tcp4([198, 51, 100, 5], 40000, SERVER, 5060, 0x02, b"").build();
    h.expect("sip from a trusted prefix", &trusted_src, Custom, Pass, Parsed);
    let trusted6 = Frame::udp6(v6(1), 40000, v6(2), 5060, TEXT).build();
    h.expect("sip to a trusted v6 prefix", &trusted6, App::Teams, Pass, Parsed);
    h.expect("sip elsewhere still drops", &udp(5060), Sip, Drop, Parsed);
    h.check_counters();
}

#[test]
fn monitor_counts_then_passes() {
    let mut h = Harness::new();
    h.port(Proto::Udp, "5060", Sip, Monitor);
    h.prefix("198.51.100.0/24", App::Teams, Monitor);
    for i in 0..5u16 {
        let f = Frame::udp4(CLIENT, 40000 + i, SERVER, 5060, &TEXT[..10 + i as usize]).build();
        h.expect(&format!("monitored sip #{i}"), &f, Sip, Monitor, Parsed);
    }
    let f = Frame::tcp4(CLIENT, 1, [198, 51, 100, 1], 443, 0x10, TEXT).build();
    h.expect("monitored prefix", &f, App::Teams, Monitor, Parsed);
    h.expect("tcp 5060 has no rule here", &tcp(5060), Unknown, Pass, Parsed);
    h.check_counters();
    let snap = h.maps.snapshot().unwrap();
    assert_eq!(snap.by_action(Monitor).packets, 6);
    assert_eq!(snap.by_action(Drop).packets, 0);
}

#[test]
fn rule_values_the_program_does_not_know_are_safe() {
    let mut h = Harness::new();
    let odd = Rule { app: 999, action: 77, _pad: 0 };
    h.maps.port_rules.insert(&PortKey::new(proto::UDP, 9), &odd, 0).unwrap();
    h.host.t.rules.ports.insert(PortKey::new(proto::UDP, 9), odd);
    let known_app_odd_action = Rule { app: Sip as u16, action: 3, _pad: 0 };
    h.maps.port_rules.insert(&PortKey::new(proto::UDP, 10), &known_app_odd_action, 0).unwrap();
    h.host.t.rules.ports.insert(PortKey::new(proto::UDP, 10), known_app_odd_action);
    // Written behind the back of `Maps::add_port_rule`: tell the program the table is not empty.
    h.maps.sync_config().unwrap();
    h.expect("unknown app id and action", &udp(9), Custom, Pass, Parsed);
    h.expect("unknown action", &udp(10), Sip, Pass, Parsed);
    h.check_counters();
}

#[test]
fn vlan_and_qinq() {
    let mut h = Harness::with_port_defaults();
    let base = Frame::udp4(CLIENT, 40000, SERVER, 5060, TEXT);
    let one = base.clone().vlan(ETH_P_8021Q, 100).build();
    assert_eq!(one.len(), udp(5060).len() + 4);
    h.expect("802.1Q", &one, Sip, Drop, Parsed);
    let qinq = base.clone().vlan(ETH_P_8021AD, 200).vlan(ETH_P_8021Q, 100).build();
    h.expect("802.1ad + 802.1Q", &qinq, Sip, Drop, Parsed);
    let old_qinq = base.clone().vlan(ETH_P_QINQ_9100, 200).vlan(ETH_P_8021Q, 100).build();
    h.expect("0x9100 + 802.1Q", &old_qinq, Sip, Drop, Parsed);
    let v6 = Frame::tcp6(v6(1), 40000, v6(2), 5061, 0x02, b"").vlan(ETH_P_8021AD, 1).vlan(ETH_P_8021Q, 2).build();
    h.expect("QinQ IPv6 tcp", &v6, Sip, Drop, Parsed);
    h.expect("802.1Q, other port", &Frame::udp4(CLIENT, 1, SERVER, 53, TEXT).vlan(ETH_P_8021Q, 7).build(), Unknown, Pass, Parsed);
    let three = base.clone().vlan(ETH_P_8021AD, 1).vlan(ETH_P_8021Q, 2).vlan(ETH_P_8021Q, 3).build();
    h.expect("three tags", &three, Unknown, Pass, Reason::VlanTooDeep);
    h.expect("three tags again", &three, Unknown, Pass, Reason::VlanTooDeep);
    // A prefix rule cannot apply either: the IP header is never reached.
    h.prefix("192.0.2.0/24", Custom, Drop);
    h.expect("three tags, prefix rule on the address", &three, Unknown, Pass, Reason::VlanTooDeep);
    h.expect("one tag, prefix rule on the address", &one, Custom, Drop, Parsed);
    h.check_counters();
}

#[test]
fn ipv6_extension_headers_and_fragments() {
    let mut h = Harness::with_port_defaults();
    let base = Frame::udp6(v6(1), 40000, v6(2), 5060, TEXT);
    let ext = base
        .clone()
        .ipv6_ext(proto::HOPOPT, &[1, 4, 0, 0, 0, 0])
        .ipv6_ext(proto::DSTOPTS, &[1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        .ipv6_ext(proto::ROUTING, &[0, 0, 0, 0, 0, 0])
        .build();
    assert_eq!(ext.len(), 14 + 40 + 8 + 16 + 8 + 8 + TEXT.len());
    h.expect("hop-by-hop + destination options + routing", &ext, Sip, Drop, Parsed);
    let first = base.clone().ipv6_ext(proto::HOPOPT, &[0; 6]).ipv6_fragment(7, 0, true).build();
    h.expect("first fragment: ports visible", &first, Sip, Drop, Parsed);
    let later = base.clone().ipv6_fragment(7, 1448, false).build();
    h.expect("later fragment: no ports", &later, Unknown, Pass, Reason::LaterFragment);
    let atomic = base.clone().ipv6_fragment(8, 0, false).build();
    h.expect("atomic fragment (RFC 8021) is a whole datagram", &atomic, Sip, Drop, Parsed);
    let mut long = base.clone();
    for _ in 0..=MAX_IPV6_EXT {
        long = long.ipv6_ext(proto::DSTOPTS, &[1, 4, 0, 0, 0, 0]);
    }
    h.expect("longer chain than the program walks", &long.build(), Unknown, Pass, Reason::Ipv6ExtChain);
    let esp = Frame::raw6(v6(1), v6(2), proto::ESP, &[0, 0, 0, 1, 0, 0, 0, 1]).build();
    h.expect("esp", &esp, Unknown, Pass, Reason::OtherL4);

    // Prefix rules still apply where the ports are unknown.
    h.prefix("2001:db8::/32", App::Zoom, Drop);
    h.expect("later fragment to a dropped prefix", &later, App::Zoom, Drop, Reason::LaterFragment);
    h.expect("long chain to a dropped prefix", &long.build(), App::Zoom, Drop, Reason::Ipv6ExtChain);
    let icmp6 = Frame::raw6(v6(1), v6(2), proto::ICMPV6, &[128, 0, 0, 0, 0, 1, 0, 1]).build();
    h.expect("icmpv6 to a dropped prefix", &icmp6, App::Zoom, Drop, Reason::OtherL4);
    h.check_counters();
}

#[test]
fn ipv4_options_and_fragments() {
    let mut h = Harness::with_port_defaults();
    let base = Frame::udp4(CLIENT, 40000, SERVER, 5060, TEXT);
    // Router alert (4 bytes) and a record-route option (7 bytes + padding).
    let opts = base.clone().ipv4_options(&[0x94, 0x04, 0, 0, 0x07, 0x07, 0x04, 0, 0, 0, 0]).build();
    assert_eq!(opts.len(), udp(5060).len() + 12);
    h.expect("ipv4 options", &opts, Sip, Drop, Parsed);
    let max_opts = base.clone().ipv4_options(&[1; 40]).build();
    h.expect("40 bytes of options (IHL 15)", &max_opts, Sip, Drop, Parsed);
    let first = base.clone().fragment(99, 0, true).build();
    h.expect("first fragment: ports visible", &first, Sip, Drop, Parsed);
    let later = Frame::raw4(CLIENT, SERVER, proto::UDP, b"rest of the datagram").fragment(99, 1480, false).build();
    h.expect("later fragment: no ports", &later, Unknown, Pass, Reason::LaterFragment);
    let last_with_ports = Frame::raw4(CLIENT, SERVER, proto::UDP, &udp(5060)[34..]).fragment(99, 8, true).build();
    h.expect("a later fragment whose bytes look like ports", &last_with_ports, Unknown, Pass, Reason::LaterFragment);
    h.prefix("192.0.2.20/32", Custom, Drop);
    h.expect("later fragment to a dropped prefix", &later, Custom, Drop, Reason::LaterFragment);
    h.check_counters();
}

#[test]
fn other_protocols_and_bad_headers() {
    let mut h = Harness::with_port_defaults();
    let icmp = Frame::raw4(CLIENT, SERVER, proto::ICMP, &[8, 0, 0xf7, 0xff, 0, 0, 0, 0]).build();
    h.expect("icmp echo", &icmp, Unknown, Pass, Reason::OtherL4);
    let sctp = Frame::raw4(CLIENT, SERVER, proto::SCTP, &[0x13, 0xc4, 0x13, 0xc4, 0, 0, 0, 0, 0, 0, 0, 0]).build();
    h.expect("sctp to 5060 has no udp/tcp port rule", &sctp, Unknown, Pass, Reason::OtherL4);
    h.expect("arp", &arp(), Unknown, Pass, Reason::NotIp);
    let mut lldp = arp();
    lldp[12..14].copy_from_slice(&[0x88, 0xcc]);
    h.expect("lldp", &lldp, Unknown, Pass, Reason::NotIp);

    let good = udp(5060);
    let mut small_ihl = good.clone();
    small_ihl[14] = 0x44;
    h.expect("IHL below 5", &small_ihl, Unknown, Pass, Reason::BadIpHeader);
    let mut v6_in_v4 = good.clone();
    v6_in_v4[14] = 0x65;
    h.expect("version 6 under the IPv4 ethertype", &v6_in_v4, Unknown, Pass, Reason::BadIpHeader);
    let mut short_total = good.clone();
    short_total[16..18].copy_from_slice(&10u16.to_be_bytes());
    h.expect("total length below the header", &short_total, Unknown, Pass, Reason::BadIpHeader);
    let mut v4_in_v6 = Frame::udp6(v6(1), 1, v6(2), 5060, TEXT).build();
    v4_in_v6[14] = 0x45;
    h.expect("version 4 under the IPv6 ethertype", &v4_in_v6, Unknown, Pass, Reason::BadIpHeader);
    let mut udp_len_past_ip = good.clone();
    // IP total length ends inside the UDP header: the ports are not part of the datagram.
    udp_len_past_ip[16..18].copy_from_slice(&24u16.to_be_bytes());
    h.expect("ip datagram ends inside the udp header", &udp_len_past_ip, Unknown, Pass, Reason::Truncated);
    let mut padded = good.clone();
    padded.resize(60.max(good.len() + 20), 0);
    h.expect("ethernet padding after the datagram", &padded, Sip, Drop, Parsed);

    h.prefix("192.0.2.20/32", Custom, Drop);
    h.expect("icmp to a dropped prefix", &icmp, Custom, Drop, Reason::OtherL4);
    h.expect("bad header to a dropped prefix: no address read", &small_ihl, Unknown, Pass, Reason::BadIpHeader);
    h.check_counters();
}

/// One full frame and what every prefix of it must give.
struct Cut {
    name: &'static str,
    frame: Vec<u8>,
    /// Shortest prefix with both IP addresses (and for IPv4 the whole header, options included).
    addrs_at: usize,
    /// Shortest prefix with the whole L4 header (the ports).
    ports_at: usize,
    /// Verdict once the addresses are known (prefix rules only).
    by_prefix: (App, Action),
    /// Verdict of the whole frame.
    full: (App, Action),
}

#[test]
fn every_truncation_is_counted_never_aborted() {
    let mut h = Harness::with_port_defaults();
    h.prefix("2001:db8::/32", App::Zoom, Monitor);
    h.prefix("198.51.100.0/24", Custom, Drop);
    let cuts = [
        Cut {
            name: "QinQ + IPv4 options + UDP",
            frame: Frame::udp4(CLIENT, 40000, SERVER, 5060, b"INVITE sip:bob@example.com SIP/2.0")
                .vlan(ETH_P_8021AD, 1)
                .vlan(ETH_P_8021Q, 2)
                .ipv4_options(&[0x94, 0x04, 0, 0])
                .build(),
            addrs_at: 14 + 8 + 24,
            ports_at: 14 + 8 + 24 + 8,
            by_prefix: (Unknown, Pass),
            full: (Sip, Drop),
        },
        Cut {
            name: "IPv6 + hop-by-hop + fragment + UDP",
            frame: Frame::udp6(v6(1), 40000, v6(2), 5060, TEXT)
                .ipv6_ext(proto::HOPOPT, &[0; 6])
                .ipv6_fragment(1, 0, true)
                .build(),
            addrs_at: 14 + 40,
            ports_at: 14 + 40 + 8 + 8 + 8,
            by_prefix: (App::Zoom, Monitor),
            full: (App::Zoom, Monitor),
        },
        Cut {
            name: "IPv4 + TCP",
            frame: Frame::tcp4(CLIENT, 40000, SERVER, 5060, 0x18, b"OPTIONS sip:x SIP/2.0\r\n").build(),
            addrs_at: 14 + 20,
            ports_at: 14 + 20 + 20,
            by_prefix: (Unknown, Pass),
            full: (Sip, Drop),
        },
        Cut {
            name: "IPv4 + UDP to a dropped prefix",
            frame: Frame::udp4(CLIENT, 40000, [198, 51, 100, 1], 53, TEXT).build(),
            addrs_at: 14 + 20,
            ports_at: 14 + 20 + 8,
            by_prefix: (Custom, Drop),
            full: (Custom, Drop),
        },
    ];
    let mut truncated = 0;
    for c in &cuts {
        for len in 14..=c.frame.len() {
            let (app, action, reason) = if len >= c.ports_at {
                (c.full.0, c.full.1, Parsed)
            } else if len >= c.addrs_at {
                (c.by_prefix.0, c.by_prefix.1, Reason::Truncated)
            } else {
                (Unknown, Pass, Reason::Truncated)
            };
            truncated += u64::from(reason == Reason::Truncated);
            h.expect(&format!("{} cut to {len} of {} bytes", c.name, c.frame.len()), &c.frame[..len], app, action, reason);
        }
    }
    h.check_counters();
    assert_eq!(h.model.reasons[Reason::Truncated as usize], truncated);
    println!("ran {} truncated frames", truncated);
}


// ---------------------------------------------------------------------------------------------
// The detection engine through the real programs, without port rules (the daemon's default).

/// The flow-table key of a frame's (inner) 5-tuple.
fn key_of(frame: &[u8]) -> FlowKey {
    FlowKey::new(&packet::parse(frame).expect("a parsable frame")).0
}

/// A SIP INVITE without a body (its SDP would announce media; see the `sdp` tests).
fn invite(call: u32) -> Vec<u8> {
    voip::sip_invite(call, "", 0)
}

/// GTP-U G-PDU (version 1, PT 1, TEID 1) around an IP packet.
fn gtpu(ip_packet: &[u8]) -> Vec<u8> {
    let mut g = vec![0x30, 0xFF, 0, 0, 0, 0, 0, 1];
    g[2..4].copy_from_slice(&(ip_packet.len() as u16).to_be_bytes());
    g.extend_from_slice(ip_packet);
    g
}

fn state(s: FlowState) -> u8 {
    s as u8
}

#[test]
fn sip_invite_is_dropped_on_any_port_from_its_first_packet() {
    let mut h = Harness::new();
    let inv = Frame::udp4(CLIENT, 40000, SERVER, 15060, &invite(1)).build();
    h.expect("INVITE to udp/15060", &inv, Sip, Drop, Parsed);
    let ringing = Frame::udp4(SERVER, 15060, CLIENT, 40000, &voip::sip_ringing(1)).build();
    h.expect("180 Ringing back on the decided flow", &ringing, Sip, Drop, Parsed);
    let later = Frame::udp4(CLIENT, 40000, SERVER, 15060, TEXT).build();
    h.expect("anything later on the decided flow", &later, Sip, Drop, Parsed);

    let flows = h.kernel_flows();
    assert_eq!(flows.len(), 1, "one flow: {flows:?}");
    assert_eq!(h.kernel_expect().get(&EndpointKey::new(v4(CLIENT), 40000, proto::UDP)), Some(&(Sip as u16)), "the client endpoint expects SIP");
    let f = flows.get(&key_of(&inv)).expect("the INVITE's flow is in FLOWS");
    assert_eq!(
        (f.state, f.app, f.decided_at, f.packets, f.bytes),
        (state(FlowState::Decided), Sip as u16, 1, 3, (inv.len() + ringing.len() + later.len()) as u64),
        "{f:?}"
    );

    // The decided flow's endpoints are expected to carry SIP: another flow from the client's
    // endpoint (a SIP client talking to a second server) is SIP from its first packet.
    let second_server = Frame::udp4(CLIENT, 40000, [203, 0, 113, 5], 5060, b"OPTIONS-like keepalive").build();
    h.expect("new flow from the SIP endpoint", &second_server, Sip, Drop, Parsed);
    // The standard port, and IPv6.
    h.expect("INVITE to udp/5060", &Frame::udp4(CLIENT, 40001, SERVER, 5060, &invite(2)).build(), Sip, Drop, Parsed);
    h.expect("INVITE over IPv6", &Frame::udp6(v6(1), 40000, v6(2), 5062, &invite(3)).build(), Sip, Drop, Parsed);
    h.check_state();
    h.check_counters();
}

#[test]
fn ordinary_traffic_on_the_sip_port_passes_without_a_port_rule() {
    let mut h = Harness::new();
    h.expect("text to udp/5060", &udp(5060), Unknown, Pass, Parsed);
    h.expect("'x' to udp/5060", &Frame::udp4(CLIENT, 40002, SERVER, 5060, b"x").build(), Unknown, Pass, Parsed);
    let c = |flags: u8, pl: &[u8]| Frame::tcp4(CLIENT, 40001, SERVER, 5060, flags, pl).build();
    let s = |flags: u8, pl: &[u8]| Frame::tcp4(SERVER, 5060, CLIENT, 40001, flags, pl).build();
    let conversation = [
        ("SYN", c(0x02, b"")),
        ("SYN-ACK", s(0x12, b"")),
        ("ACK", c(0x10, b"")),
        ("GET", c(0x18, voip::HTTP_GET)),
        ("ACK of the GET", s(0x10, b"")),
        ("200 OK", s(0x18, voip::HTTP_OK)),
        ("FIN", c(0x11, b"")),
    ];
    for (what, f) in &conversation {
        h.expect(&format!("HTTP on tcp/5060: {what}"), f, Unknown, Pass, Parsed);
    }
    assert_eq!(h.kernel_tcp_slot(&key_of(&conversation[0].1)).app, 0, "the HTTP connection is not a call");
    // A port rule is an explicit override: it applies before the detectors.
    h.port(Proto::Tcp, "5060", Sip, Drop);
    h.expect("GET with a tcp/5060 drop rule", &c(0x18, voip::HTTP_GET), Sip, Drop, Parsed);
    h.check_state();
    h.check_counters();
}

#[test]
fn tcp_sip_call_is_dropped_from_its_invite_on() {
    let mut h = Harness::new();
    let c = |flags: u8, pl: &[u8]| Frame::tcp4(CLIENT, 40100, SERVER, 5080, flags, pl).build();
    let s = |flags: u8, pl: &[u8]| Frame::tcp4(SERVER, 5080, CLIENT, 40100, flags, pl).build();
    // The handshake carries no payload: nothing to detect, it passes.
    h.expect("SYN", &c(0x02, b""), Unknown, Pass, Parsed);
    h.expect("SYN-ACK", &s(0x12, b""), Unknown, Pass, Parsed);
    h.expect("ACK", &c(0x10, b""), Unknown, Pass, Parsed);
    h.expect("INVITE segment", &c(0x18, &invite(7)), Sip, Drop, Parsed);
    // Every later segment of the connection, pure ACKs included, comes from TCP_CALLS.
    h.expect("the server's pure ACK", &s(0x10, b""), Sip, Drop, Parsed);
    h.expect("180 Ringing", &s(0x18, &voip::sip_ringing(7)), Sip, Drop, Parsed);
    h.expect("binary data later", &c(0x18, &[0u8; 40]), Sip, Drop, Parsed);
    h.expect("FIN", &c(0x11, b""), Sip, Drop, Parsed);
    let key = key_of(&c(0x02, b""));
    let slot = h.kernel_tcp_slot(&key);
    assert!(slot.key == key && slot.app == Sip as u16, "TCP_CALLS slot {}: {slot:?}", key.tcp_slot());
    // Another connection between the same hosts is not a call.
    h.expect("SYN of another connection", &Frame::tcp4(CLIENT, 40101, SERVER, 5080, 0x02, b"").build(), Unknown, Pass, Parsed);
    assert!(h.kernel_flows().is_empty(), "TCP is not in FLOWS");
    h.check_state();
    h.check_counters();
}

/// Runs a stream of frames; returns the index of the first drop, asserting every frame from
/// there on is dropped as `app` and every frame before it passed as unknown.
fn first_drop(h: &mut Harness, what: &str, frames: &[Vec<u8>], app: App) -> Option<usize> {
    let mut first = None;
    for (i, f) in frames.iter().enumerate() {
        let v = h.expect_host(&format!("{what} #{i}"), f);
        match (first, v.action) {
            (None, Drop) => {
                assert_eq!(v.app, app as u16, "{what} #{i}: dropped as {}", describe_verdict(&v));
                first = Some(i);
            }
            (None, _) => assert_eq!(v.app, Unknown as u16, "{what} #{i}: {}", describe_verdict(&v)),
            (Some(d), _) => assert_eq!((v.app, v.action), (app as u16, Drop), "{what} #{i}: after the first drop at #{d}"),
        }
    }
    first
}

#[test]
fn rtp_without_signalling_is_dropped_by_its_third_packet() {
    let mut h = Harness::new();
    // Both directions, one SSRC each, interleaved: the worst case confirms on the 3rd packet.
    let (a, b) = ((CLIENT, 16384), (SERVER, 16386));
    let both: Vec<Vec<u8>> = (0..10u16)
        .map(|i| {
            let ((s, sp), (d, dp), ssrc, seq) = if i % 2 == 0 { (a, b, 0x1111_1111, 100) } else { (b, a, 0x2222_2222, 5000) };
            Frame::udp4(s, sp, d, dp, &voip::rtp_stream(ssrc, seq, i / 2)).build()
        })
        .collect();
    let first = first_drop(&mut h, "two-way RTP", &both, Rtp).expect("the RTP stream is dropped");
    assert!(first <= 2, "first drop at packet {} (1-based), later than the 3rd", first + 1);
    let f = h.kernel_flows()[&key_of(&both[0])];
    assert_eq!((f.state, f.app, f.decided_at as usize, f.packets), (state(FlowState::Decided), Rtp as u16, first + 1, 10), "{f:?}");

    // One direction only: confirmed by the 2nd packet.
    let one: Vec<Vec<u8>> =
        (0..5u16).map(|i| Frame::udp4(CLIENT, 20000, SERVER, 20002, &voip::rtp_stream(0x3333_3333, 65534, i)).build()).collect();
    let first = first_drop(&mut h, "one-way RTP", &one, Rtp).expect("the one-way stream is dropped");
    assert!(first <= 1, "first drop at packet {}", first + 1);

    // A decided flow's endpoints are expected to carry its app: a new flow from another peer
    // to the client's RTP port is dropped from its first packet, whatever it carries.
    let other_peer = Frame::udp4([203, 0, 113, 9], 30000, CLIENT, 16384, TEXT).build();
    h.expect("new flow to the decided RTP endpoint", &other_peer, Rtp, Drop, Parsed);
    let f = h.kernel_flows()[&key_of(&other_peer)];
    assert_eq!((f.state, f.app, f.decided_at), (state(FlowState::Decided), Rtp as u16, 1), "{f:?}");
    assert_eq!(h.kernel_expect().get(&EndpointKey::new(v4(CLIENT), 16384, proto::UDP)), Some(&(Rtp as u16)));
    h.check_state();
    h.check_counters();
}

fn v4(a: [u8; 4]) -> [u8; 16] {
    let mut x = [0; 16];
    x[..4].copy_from_slice(&a);
    x
}

#[test]
fn flow_table_shows_what_the_engine_decided() {
    let mut h = Harness::new();
    // QUIC-like datagrams: inspected up to the limit, then the flow is not a call.
    let n = DEFAULT_INSPECT_LIMIT as u8 + 8;
    let mut quic_bytes = 0;
    for i in 0..n {
        let f = Frame::udp4(CLIENT, 51000, SERVER, 443, &[0xC3, 0, 0, 0, 1, i, 2, 3, 4, 5, 6, 7, 8, 9]).build();
        quic_bytes += f.len() as u64;
        h.expect(&format!("QUIC-like #{i}"), &f, Unknown, Pass, Parsed);
    }
    // DNS is never tracked.
    let dns = Frame::udp4(CLIENT, 53000, SERVER, 53, &voip::dns_query(1)).build();
    h.expect("DNS", &dns, Unknown, Pass, Parsed);
    let inv = Frame::udp4(CLIENT, 40000, SERVER, 5060, &invite(1)).build();
    h.expect("INVITE", &inv, Sip, Drop, Parsed);

    let flows = h.kernel_flows();
    assert_eq!(flows.len(), 2, "QUIC and SIP, no DNS: {flows:?}");
    let quic = flows[&key_of(&Frame::udp4(CLIENT, 51000, SERVER, 443, b"").build())];
    assert_eq!(
        (quic.state, quic.app, quic.inspected as u32, quic.packets, quic.bytes),
        (state(FlowState::NotCall), 0, DEFAULT_INSPECT_LIMIT, n as u64, quic_bytes),
        "{quic:?}"
    );
    let sip = flows[&key_of(&inv)];
    assert_eq!((sip.state, sip.app, sip.inspected, sip.decided_at), (state(FlowState::Decided), Sip as u16, 1, 1), "{sip:?}");
    h.check_state();
    h.check_counters();
}

#[test]
fn policy_monitor_counts_and_passes() {
    let mut h = Harness::new();
    h.set_policy(Sip, Monitor);
    assert!(h.maps.policy().unwrap().contains(&(Sip, Monitor)), "POLICY shows sip monitor");
    let inv = Frame::udp4(CLIENT, 40000, SERVER, 15060, &invite(1)).build();
    h.expect("INVITE under sip = monitor", &inv, Sip, Monitor, Parsed);
    h.expect("the rest of the call", &Frame::udp4(SERVER, 15060, CLIENT, 40000, &voip::sip_ringing(1)).build(), Sip, Monitor, Parsed);

    h.set_policy(Rtp, Pass);
    let stream: Vec<Vec<u8>> =
        (0..4u16).map(|i| Frame::udp4(CLIENT, 20000, SERVER, 20002, &voip::rtp_stream(0x4444_4444, 1, i)).build()).collect();
    let mut rtp_passed = 0;
    for (i, f) in stream.iter().enumerate() {
        let v = h.expect_host(&format!("RTP under rtp = pass #{i}"), f);
        assert_ne!(v.action, Drop);
        rtp_passed += u64::from(v.app == Rtp as u16);
    }
    assert!(rtp_passed >= 2, "the stream is still recognised (counted under rtp/pass)");

    // A policy change applies at once, to flows decided before it too.
    h.set_policy(Sip, Drop);
    h.expect("the SIP flow after sip = drop", &inv, Sip, Drop, Parsed);
    h.check_counters();
    let snap = h.maps.snapshot().unwrap();
    assert_eq!(snap.get(Sip, Monitor).packets, 2);
    assert_eq!(snap.get(Rtp, Pass).packets, rtp_passed);
    assert_eq!(snap.by_action(Drop).packets, 1);
    h.check_state();
}

#[test]
fn later_fragments_of_a_sip_datagram_are_dropped() {
    let mut h = Harness::new();
    let first = Frame::udp4(CLIENT, 40000, SERVER, 5060, &invite(1)).fragment(77, 0, true).build();
    h.expect("first fragment: ports and INVITE visible", &first, Sip, Drop, Parsed);
    let later = Frame::raw4(CLIENT, SERVER, proto::UDP, b"a=sendrecv\r\n").fragment(77, 1480, false).build();
    h.expect("later fragment of the same datagram", &later, Sip, Drop, Reason::LaterFragment);
    let other = Frame::raw4(CLIENT, SERVER, proto::UDP, b"a=sendrecv\r\n").fragment(78, 1480, false).build();
    h.expect("later fragment of another datagram", &other, Unknown, Pass, Reason::LaterFragment);
    let first6 = Frame::udp6(v6(1), 40000, v6(2), 15060, &invite(2)).ipv6_fragment(9, 0, true).build();
    h.expect("IPv6 first fragment", &first6, Sip, Drop, Parsed);
    let later6 = Frame::udp6(v6(1), 40000, v6(2), 15060, TEXT).ipv6_fragment(9, 1448, false).build();
    h.expect("IPv6 later fragment", &later6, Sip, Drop, Reason::LaterFragment);
    assert_eq!(h.kernel_frags().len(), 2, "FRAGS holds both first fragments");
    h.check_state();
    h.check_counters();
}

#[test]
fn tunnelled_calls_are_classified_by_their_inner_packet() {
    let mut h = Harness::new();
    let ue = [10, 45, 0, 7];
    let inner = Frame::udp4(ue, 40000, SERVER, 5060, &invite(1)).build();
    let outer = Frame::udp4([172, 16, 0, 1], 2152, [172, 16, 0, 2], 2152, &gtpu(&inner[14..])).build();
    h.expect("GTP-U carrying a SIP INVITE", &outer, Sip, Drop, Parsed);
    let web = Frame::tcp4(ue, 40001, SERVER, 80, 0x18, voip::HTTP_GET).build();
    let outer_web = Frame::udp4([172, 16, 0, 1], 2152, [172, 16, 0, 2], 2152, &gtpu(&web[14..])).build();
    h.expect("GTP-U carrying HTTP", &outer_web, Unknown, Pass, Parsed);
    let inner_rtp: Vec<Vec<u8>> = (0..4u16)
        .map(|i| {
            let f = Frame::udp4(ue, 30000, SERVER, 30002, &voip::rtp_stream(0x5555_5555, 9, i)).build();
            Frame::udp4([172, 16, 0, 1], 2152, [172, 16, 0, 2], 2152, &gtpu(&f[14..])).build()
        })
        .collect();
    assert!(first_drop(&mut h, "GTP-U carrying RTP", &inner_rtp, Rtp).is_some_and(|i| i <= 1));

    let inner2 = Frame::udp4([10, 46, 0, 7], 40000, SERVER, 15060, &invite(2)).build();
    let mut gre = vec![0, 0, 0x08, 0x00];
    gre.extend_from_slice(&inner2[14..]);
    let outer2 = Frame::raw4([172, 16, 0, 1], [172, 16, 0, 3], proto::GRE, &gre).build();
    h.expect("GRE carrying a SIP INVITE", &outer2, Sip, Drop, Parsed);

    let flows = h.kernel_flows();
    for f in [&inner, &inner2] {
        assert!(flows.contains_key(&key_of(f)), "FLOWS is keyed by the inner 5-tuple: {flows:?}");
    }
    h.check_state();
    h.check_counters();
}

#[test]
fn pptp_enhanced_gre_carries_detected_calls() {
    let mut h = Harness::new();
    let inner = Frame::udp4([192, 168, 10, 210], 5060, [192, 168, 103, 40], 5060, &voip::sip_ringing(7)).build();
    let ip = &inner[14..];
    // Key, sequence and acknowledgement present, PPP with address/control and a 2-byte protocol
    // (gre.pcapng's layout).
    let gre = voipfilter_common::user::frame::pptp_gre(ip);
    let outer = Frame::raw4([109, 105, 228, 253], [10, 177, 98, 84], proto::GRE, &gre).build();
    h.expect("PPTP GRE carrying SIP", &outer, Sip, Drop, Parsed);
    // PPP's own control traffic (LCP) is no call: the outer packet passes.
    let lcp = Frame::raw4([109, 105, 228, 253], [10, 177, 98, 84], proto::GRE, &[0x20, 0x01, 0x88, 0x0B, 0, 4, 0x98, 0x50, 0xC0, 0x21, 1, 1]).build();
    h.expect("PPTP GRE carrying LCP", &lcp, Unknown, Pass, Reason::OtherL4);
    assert!(h.kernel_flows().contains_key(&key_of(&inner)), "FLOWS is keyed by the inner 5-tuple");
    h.check_state();
    h.check_counters();
}

#[test]
fn media_and_keepalives_recognised_in_one_packet() {
    let mut h = Harness::new();
    // FreeSWITCH's compound RTCP (SR + SDES), as in rtcp_multiple_pkts_in_the_same_datagram.pcap.
    let mut rtcp = vec![0x81, 200, 0, 12];
    rtcp.extend_from_slice(&[0x11; 48]);
    rtcp.extend_from_slice(&[0x81, 202, 0, 2, 0x5D, 0x93, 0x15, 0x34, 1, 2, b'a', b'b']);
    let f = Frame::udp4(CLIENT, 25963, SERVER, 31601, &rtcp).build();
    h.expect("compound RTCP datagram", &f, App::Rtcp, Drop, Parsed);
    // A SIP phone's `hello` keep-alive on 5060 (sip_hello.pcapng); not on other ports.
    let hello = Frame::udp4(CLIENT, 5060, SERVER, 5060, b"hello").build();
    h.expect("hello on 5060", &hello, Sip, Drop, Parsed);
    let hello_elsewhere = Frame::udp4(CLIENT, 41000, SERVER, 7000, b"hello").build();
    h.expect("hello on 7000", &hello_elsewhere, Unknown, Pass, Parsed);
    // RTP over TCP (RFC 4571) in frames of 1 KiB and more: the length's first byte is above 3.
    let mut rtp = voip::rtp_stream(0x0193_2DB4, 8, 1);
    rtp.resize(1212, 0xD5);
    let mut framed = (rtp.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&rtp);
    let seg = Frame::tcp4(CLIENT, 40252, SERVER, 5000, 0x18, &framed).build();
    h.expect("RFC 4571 RTP frame of 1212 bytes", &seg, Rtp, Drop, Parsed);
    h.check_state();
    h.check_counters();
}

#[test]
fn vlan_and_qinq_carry_detected_calls() {
    let mut h = Harness::new();
    let inv = |sport: u16| Frame::udp4(CLIENT, sport, SERVER, 15060, &invite(u32::from(sport)));
    h.expect("802.1Q", &inv(41000).vlan(ETH_P_8021Q, 100).build(), Sip, Drop, Parsed);
    h.expect("802.1ad + 802.1Q", &inv(41001).vlan(ETH_P_8021AD, 200).vlan(ETH_P_8021Q, 100).build(), Sip, Drop, Parsed);
    h.expect("0x9100 + 802.1Q", &inv(41002).vlan(ETH_P_QINQ_9100, 200).vlan(ETH_P_8021Q, 100).build(), Sip, Drop, Parsed);
    let v6tcp = Frame::tcp6(v6(1), 41003, v6(2), 5070, 0x18, &invite(4)).vlan(ETH_P_8021AD, 1).vlan(ETH_P_8021Q, 2).build();
    h.expect("QinQ IPv6 TCP", &v6tcp, Sip, Drop, Parsed);
    let three = inv(41004).vlan(ETH_P_8021AD, 1).vlan(ETH_P_8021Q, 2).vlan(ETH_P_8021Q, 3).build();
    h.expect("three tags: not parsed", &three, Unknown, Pass, Reason::VlanTooDeep);
    h.check_state();
    h.check_counters();
}

#[test]
fn call_signalling_from_the_corpus_captures_is_dropped() {
    let mut h = Harness::new();
    let frames: [(CorpusFrame, App); 3] = [(voip::IAX2_NEW, App::Iax2), (voip::H323_SETUP, App::H323), (voip::SCCP_REGISTER, App::Sccp)];
    for (f, app) in frames {
        h.expect(&f.name(), &f.bytes(), app, Drop, Parsed);
    }
    // An IAX2 NEW carries IEs: found on any port, not only 4569.
    let iax = Frame::udp4(CLIENT, 40000, SERVER, 14569, &voip::iax2_new(5)).build();
    h.expect("IAX2 NEW to udp/14569", &iax, App::Iax2, Drop, Parsed);
    h.check_state();
    h.check_counters();
}

/// A test case of [`truncated_payloads`]: name, app of the whole frame, frame builder (by
/// source port).
type CutCase = (&'static str, App, Box<dyn Fn(u16) -> Vec<u8>>);

/// Every cut of frames carrying VoIP payloads (each cut its own flow): never aborted, and the
/// kernel agrees with the host model on each; the whole frame is dropped as its app.
fn truncated_payloads(h: &mut Harness, cases: &[CutCase]) {
    let mut sport = 10_000u16;
    let mut runs = 0;
    for (name, app, build) in cases {
        let full = build(sport);
        let mut detected_from = None;
        for len in 14..=full.len() {
            sport += 1;
            let f = build(sport);
            let v = h.expect_host(&format!("{name} cut to {len} of {} bytes", f.len()), &f[..len]);
            runs += 1;
            if v.app == *app as u16 && detected_from.is_none() {
                detected_from = Some(len);
            }
            if len == f.len() {
                assert_eq!((v.app, v.action), (*app as u16, Drop), "{name}: the whole frame");
            }
        }
        println!("{name}: {} bytes, detected from a cut of {detected_from:?} bytes", full.len());
    }
    println!("{runs} cut frames");
    h.check_state();
    h.check_counters();
}

fn payload_of(f: &CorpusFrame, hdr: usize) -> Vec<u8> {
    f.bytes()[hdr..].to_vec()
}

#[test]
fn truncated_voip_payloads_agree_with_the_host_model() {
    let mut h = Harness::new();
    let payload = payload_of;
    let cases: Vec<CutCase> = vec![
        ("SIP INVITE", Sip, Box::new(|sp| Frame::udp4(CLIENT, sp, SERVER, 5060, &invite(1)).build())),
        ("SIP INVITE over TCP", Sip, Box::new(|sp| Frame::tcp4(CLIENT, sp, SERVER, 5060, 0x18, &invite(1)).build())),
        ("IAX2 NEW", App::Iax2, Box::new(|sp| Frame::udp4(CLIENT, sp, SERVER, 4569, &voip::iax2_new(3)).build())),
        ("H.225 SETUP", App::H323, {
            let p = payload(&voip::H323_SETUP, 54);
            Box::new(move |sp| Frame::tcp4(CLIENT, sp, SERVER, 1720, 0x18, &p).build())
        }),
        ("SCCP register", App::Sccp, {
            let p = payload(&voip::SCCP_REGISTER, 54);
            Box::new(move |sp| Frame::tcp4(CLIENT, sp, SERVER, 2000, 0x10, &p).build())
        }),
    ];
    truncated_payloads(&mut h, &cases);
}

#[test]
fn mgcp_from_the_corpus_capture_is_dropped() {
    let mut h = Harness::new();
    let f = voip::MGCP_RQNT;
    h.expect(&f.name(), &f.bytes(), App::Mgcp, Drop, Parsed);
    h.check_state();
    h.check_counters();
    let p = payload_of(&f, 42);
    let cases: Vec<CutCase> = vec![("MGCP RQNT", App::Mgcp, Box::new(move |sp| Frame::udp4(CLIENT, sp, SERVER, 2427, &p).build()))];
    truncated_payloads(&mut h, &cases);
}

#[test]
fn stun_binding_request_is_dropped_on_any_port() {
    let mut h = Harness::new();
    let req = Frame::udp4(CLIENT, 50000, SERVER, 3478, &voip::stun_binding(1)).build();
    h.expect("STUN binding request to udp/3478", &req, App::Stun, Drop, Parsed);
    let other = Frame::udp4(CLIENT, 50001, SERVER, 19302, &voip::stun_binding(2)).build();
    h.expect("STUN binding request to udp/19302", &other, App::Stun, Drop, Parsed);
    // Its endpoints are expected: another flow of the same client endpoint (an ICE candidate
    // pair) inherits the app from its first packet.
    let peer = Frame::udp4(CLIENT, 50000, [203, 0, 113, 50], 61000, &[0x17, 0xFE, 0xFD, 0, 0]).build();
    h.expect("DTLS from the STUN endpoint to a peer", &peer, App::Stun, Drop, Parsed);
    let tcp = Frame::tcp4(CLIENT, 50002, SERVER, 443, 0x18, &voip::stun_binding(3)).build();
    h.expect("STUN over TCP", &tcp, App::Stun, Drop, Parsed);
    h.check_state();
    h.check_counters();
}

/// An SDP offer in an INVITE makes the kernel expect its media (`SDP_IN_ENGINE`, engine.rs):
/// the first RTP packet to the announced port is dropped.
#[test]
fn sdp_announced_media_is_dropped_from_its_first_packet() {
    let mut h = Harness::new();
    let inv = Frame::udp4(CLIENT, 5060, SERVER, 5060, &voip::sip_invite(1, "192.0.2.10", 49170)).build();
    h.expect("INVITE with an SDP offer", &inv, Sip, Drop, Parsed);
    let expect = h.kernel_expect();
    assert_eq!(expect.get(&EndpointKey::new(v4(CLIENT), 49170, proto::UDP)), Some(&(Rtp as u16)), "RTP expected: {expect:?}");
    assert_eq!(expect.get(&EndpointKey::new(v4(CLIENT), 49171, proto::UDP)), Some(&(App::Rtcp as u16)), "RTCP expected");
    let media = Frame::udp4([203, 0, 113, 9], 30000, CLIENT, 49170, &voip::rtp_stream(0x6666_6666, 1, 0)).build();
    h.expect("first RTP packet to the announced port", &media, Rtp, Drop, Parsed);
    h.check_state();
    h.check_counters();
}

/// A SIP trunk carries many calls on one 5-tuple: once the flow (or TCP connection) is decided,
/// later INVITEs still have their SDP read, also when the SIP is relayed in TURN ChannelData.
#[test]
fn every_invite_of_a_decided_sip_flow_announces_its_media() {
    let mut h = Harness::new();
    let cases: [(&str, fn(Vec<u8>) -> Vec<u8>); 3] = [
        ("UDP", |m| Frame::udp4(CLIENT, 5060, SERVER, 5060, &m).build()),
        ("TCP", |m| Frame::tcp4(CLIENT, 45000, SERVER, 5060, 0x18, &m).build()),
        ("TURN ChannelData", |m| Frame::udp4(CLIENT, 50000, SERVER, 3478, &[&[0x40, 0x01][..], &(m.len() as u16).to_be_bytes(), &m].concat()).build()),
    ];
    for (i, (what, frame)) in cases.iter().enumerate() {
        for call in 0..2u16 {
            let port = 40000 + 1000 * i as u16 + 2 * call;
            let inv = frame(voip::sip_invite(u32::from(call) + 10 * i as u32, "192.0.2.10", port));
            let v = h.expect_host(&format!("{what} INVITE {call}"), &inv);
            assert_eq!(v.action, Drop, "{what} INVITE {call}: {v:?}");
            let expect = h.kernel_expect();
            assert_eq!(expect.get(&EndpointKey::new(v4(CLIENT), port, proto::UDP)), Some(&(Rtp as u16)), "{what} call {call}: {expect:?}");
        }
    }
    h.check_state();
    h.check_counters();
}

// ---------------------------------------------------------------------------------------------
// Kernel and host model on random frames, with the same state.

/// Payloads for random frames: VoIP messages (so that detectors and flow state are exercised)
/// and plain bytes. `gated` adds the payloads whose detectors were the last to pass the
/// verifier in the real program: STUN messages, SDP offers and MGCP.
fn random_payload(r: &mut Rng, gated: bool) -> Vec<u8> {
    const MEDIA: &[&str] = &["192.0.2.10", "192.0.2.20", "198.51.100.7", "203.0.113.8"];
    match r.below(if gated { 15 } else { 12 }) {
        0 => invite(r.below(4) as u32),
        1 => voip::sip_ringing(r.below(4) as u32),
        2..=4 => voip::rtp_stream(*r.pick(&[0x1111_1111, 0x2222_2222]), 100, r.below(6) as u16),
        5 => voip::iax2_new(1 + r.below(8) as u16),
        6 => {
            let (f, hdr) = match r.below(3) {
                0 => (voip::IAX2_NEW, 42),
                1 => (voip::H323_SETUP, 54),
                _ => (voip::SCCP_REGISTER, 54),
            };
            f.bytes()[hdr..].to_vec()
        }
        7 => voip::HTTP_GET.to_vec(),
        8 => payload_of(&voip::H323_SETUP, 54),
        12 => voip::sip_invite(r.below(4) as u32, r.pick(MEDIA), *r.pick(&[16384u16, 49170, 50000])),
        13 => voip::stun_binding(r.below(1000) as u32),
        14 => payload_of(&voip::MGCP_RQNT, 42),
        _ => {
            let n = r.below(64);
            r.bytes(n)
        }
    }
}

/// Builds a random frame: a valid template (with rule-relevant addresses and ports and often a
/// VoIP payload), often mutated (bytes changed, cut, padded), or plain random bytes.
fn random_frame(r: &mut Rng, rtp_seq: &mut [u16; 4], gated: bool) -> Vec<u8> {
    const V4: &[[u8; 4]] = &[[198, 51, 100, 7], [198, 51, 100, 200], [203, 0, 113, 7], [203, 0, 113, 8], CLIENT, SERVER];
    const PORTS: &[u16] =
        &[5060, 5061, 4569, 1719, 1720, 2000, 2427, 3478, 50000, 50059, 50060, 8000, 8010, 8011, 53, 443, 16384, 16386];
    let v6s: [[u8; 16]; 5] = [
        v6(1),
        v6_in([0x20, 0x01, 0x0d, 0xb8, 0, 1], 5),
        v6_in([0xfe, 0x80, 0, 0, 0, 0], 1),
        v6_in([0x20, 0x01, 0x0d, 0xb9, 0, 0], 1),
        v6_in([0xfd, 0, 0, 0, 0, 1], 2),
    ];
    let port = |r: &mut Rng| if r.chance(3, 4) { *r.pick(PORTS) } else { r.next_u64() as u16 };
    let ip4 = |r: &mut Rng| *r.pick(V4);
    let ip6 = |r: &mut Rng| *r.pick(&v6s);
    let (sp, dp, pl) = (port(r), port(r), random_payload(r, gated));
    let mut f = match r.below(14) {
        0 => Frame::udp4(ip4(r), sp, ip4(r), dp, &pl),
        1 => {
            let opts = r.below(3) * 4;
            Frame::tcp4(ip4(r), sp, ip4(r), dp, r.byte(), &pl).tcp_options(&r.bytes(opts))
        }
        2 => Frame::udp6(ip6(r), sp, ip6(r), dp, &pl),
        3 => Frame::tcp6(ip6(r), sp, ip6(r), dp, r.byte(), &pl),
        4 => Frame::raw4(ip4(r), ip4(r), *r.pick(&[proto::ICMP, proto::GRE, proto::UDP, proto::TCP]), &pl),
        5 => Frame::raw6(ip6(r), ip6(r), *r.pick(&[proto::ICMPV6, proto::ESP, proto::NONE, proto::UDP]), &pl),
        6 => {
            let opts = r.below(11) * 4;
            Frame::udp4(ip4(r), sp, ip4(r), dp, &pl).ipv4_options(&r.bytes(opts))
        }
        7 => {
            let more = r.chance(1, 2);
            let offset = if r.chance(1, 2) { 0 } else { (r.below(200) * 8) as u16 };
            Frame::udp4(ip4(r), sp, ip4(r), dp, &pl).fragment(r.below(4) as u32, offset, more)
        }
        8 | 9 => {
            let mut f = if r.chance(1, 2) { Frame::udp6(ip6(r), sp, ip6(r), dp, &pl) } else { Frame::tcp6(ip6(r), sp, ip6(r), dp, 2, &pl) };
            for _ in 0..r.below(MAX_IPV6_EXT + 3) {
                let kind = *r.pick(&[proto::HOPOPT, proto::DSTOPTS, proto::ROUTING, proto::AH, proto::MOBILITY]);
                let len = r.below(30);
                let body = r.bytes(len);
                f = f.ipv6_ext(kind, &body);
            }
            if r.chance(1, 3) {
                let offset = if r.chance(1, 2) { 0 } else { (r.below(200) * 8) as u16 };
                f = f.ipv6_fragment(r.below(4) as u32, offset, r.chance(1, 2));
            }
            f
        }
        10 => {
            // GTP-U or GRE around a UDP or TCP packet.
            let inner = if r.chance(1, 2) { Frame::udp4(ip4(r), sp, ip4(r), dp, &pl) } else { Frame::tcp4(ip4(r), sp, ip4(r), dp, 0x18, &pl) };
            let ip = inner.build()[14..].to_vec();
            if r.chance(1, 2) {
                Frame::udp4(ip4(r), 2152, ip4(r), 2152, &gtpu(&ip))
            } else {
                let mut gre = vec![0, 0, 0x08, 0x00];
                gre.extend_from_slice(&ip);
                Frame::raw4(ip4(r), ip4(r), proto::GRE, &gre)
            }
        }
        11 => return arp(),
        12 => {
            // One of four RTP streams whose sequence numbers advance: confirmations happen.
            type Endpoint = ([u8; 4], u16);
            const RTP_FLOWS: [(Endpoint, Endpoint); 4] = [
                ((CLIENT, 16384), (SERVER, 16386)),
                ((SERVER, 16386), (CLIENT, 16384)),
                (([203, 0, 113, 8], 20000), (CLIENT, 20002)),
                ((CLIENT, 30000), ([203, 0, 113, 8], 30002)),
            ];
            let i = r.below(4);
            let ((s, sp), (d, dp)) = RTP_FLOWS[i];
            rtp_seq[i] = rtp_seq[i].wrapping_add(1);
            Frame::udp4(s, sp, d, dp, &voip::rtp_stream(0xABC0 + i as u32, 0, rtp_seq[i]))
        }
        _ => {
            let len = 14 + r.below(120);
            let mut b = r.bytes(len);
            let et = *r.pick(&[[0x08, 0x00], [0x86, 0xdd], [0x81, 0x00], [0x88, 0xa8], [0x91, 0x00], [0x08, 0x06]]);
            b[12..14].copy_from_slice(&et);
            if r.chance(1, 2) && b.len() > 18 {
                let et2 = *r.pick(&[[0x08, 0x00], [0x86, 0xdd], [0x81, 0x00]]);
                b[16..18].copy_from_slice(&et2);
            }
            return b;
        }
    };
    // No tag mostly; one, two (QinQ) or three (one too many) sometimes.
    let tags: &[u16] = match r.below(20) {
        0..=11 => &[],
        12..=15 => &[ETH_P_8021Q],
        16..=18 => &[ETH_P_8021AD, ETH_P_8021Q],
        _ => &[ETH_P_8021AD, ETH_P_8021Q, ETH_P_8021Q],
    };
    for &tpid in tags {
        f = f.vlan(tpid, r.below(4096) as u16);
    }
    let mut b = f.build();
    if r.chance(1, 2) {
        for _ in 0..1 + r.below(3) {
            match r.below(4) {
                0 => {
                    let at = r.below(b.len().min(100));
                    b[at] = r.byte();
                }
                1 => b.truncate(14 + r.below(b.len() - 13)),
                2 => {
                    let len = 1 + r.below(40);
                    let extra = r.bytes(len);
                    b.extend_from_slice(&extra);
                }
                _ => {
                    let at = 14 + r.below(b.len().saturating_sub(14).clamp(1, 60));
                    if at < b.len() {
                        b[at] = *r.pick(&[0x00, 0xff, 0x45, 0x60, 0x4f, 0x2c]);
                    }
                }
            }
        }
    }
    b
}

/// Rules for the random tests: prefixes of every kind, and (with `ports`) the classic port
/// rules and two ranges.
fn random_rules(h: &mut Harness, ports: bool) {
    if ports {
        h.install(&RuleList::defaults());
        h.port(Proto::Udp, "50000-50059", App::Teams, Monitor);
        h.port(Proto::Tcp, "8000-8010", Custom, Pass);
    }
    h.prefix("198.51.100.0/24", Custom, Drop);
    h.prefix("198.51.100.128/25", App::WhatsApp, Monitor);
    h.prefix("203.0.113.7/32", App::Zoom, Pass);
    h.prefix("2001:db8::/32", App::Teams, Drop);
    h.prefix("2001:db8:1::/48", App::Teams, Monitor);
    h.prefix("fe80::/10", Custom, Pass);
}

/// Runs `n` random frames through both; returns the counts per reason and per action.
fn random_agreement(h: &mut Harness, seed_default: u64, n: usize, gated: bool) -> ([u64; Reason::ALL.len()], [u64; 3], Vec<(u16, u64)>) {
    let (mut r, seed) = Rng::from_env_or(seed_default);
    println!("seed {seed:#x} (set VFT_SEED to rerun with another)");
    let mut seen_reasons = [0u64; Reason::ALL.len()];
    let mut seen_actions = [0u64; 3];
    let mut apps = std::collections::BTreeMap::new();
    let mut rtp_seq = [0u16; 4];
    for i in 0..n {
        let f = random_frame(&mut r, &mut rtp_seq, gated);
        let v = h.expect_host(&format!("random frame #{i} (seed {seed:#x}): {f:02x?}"), &f);
        seen_reasons[v.reason as usize] += 1;
        seen_actions[v.action as usize] += 1;
        *apps.entry(v.app).or_insert(0u64) += 1;
    }
    h.check_counters();
    h.check_state();
    let apps: Vec<(u16, u64)> = apps.into_iter().collect();
    println!("{n} frames; verdicts: {:?}", Action::ALL.iter().map(|a| (a.name(), seen_actions[*a as usize])).collect::<Vec<_>>());
    println!("reasons: {:?}", Reason::ALL.iter().map(|x| (x.name(), seen_reasons[*x as usize])).collect::<Vec<_>>());
    println!("apps: {:?}", apps.iter().map(|(a, n)| (App::from_u16(*a).map_or("?", App::name), *n)).collect::<Vec<_>>());
    println!("flows: {}, expectations: {}, fragments: {}", h.host.t.flows.borrow().len(), h.host.t.expect.borrow().len(), h.host.t.frags.borrow().len());
    (seen_reasons, seen_actions, apps)
}

fn assert_coverage(reasons: &[u64], actions: &[u64], apps: &[(u16, u64)], want_apps: &[App]) {
    // The generator must reach every branch, or the agreement means little.
    // (`inspect-failed` only happens when a tail call fails: never with the programs installed.)
    for x in Reason::ALL.into_iter().filter(|x| *x != Reason::InspectFailed) {
        assert!(reasons[x as usize] >= 10, "only {} frames with reason {}", reasons[x as usize], x.name());
    }
    for a in Action::ALL {
        assert!(actions[a as usize] >= 50, "only {} frames with action {}", actions[a as usize], a.name());
    }
    for app in want_apps {
        assert!(apps.iter().any(|(a, n)| *a == *app as u16 && *n >= 3), "fewer than 3 frames classified {}: {apps:?}", app.name());
    }
}

#[test]
fn kernel_and_host_agree_on_random_frames() {
    let mut h = Harness::new();
    random_rules(&mut h, true);
    let (reasons, actions, apps) = random_agreement(&mut h, 0x5EED_0FF1_17E5, 4000, false);
    assert_coverage(&reasons, &actions, &apps, &[Sip, Rtp, App::Iax2, App::H323]);
}

#[test]
fn kernel_and_host_agree_on_random_frames_without_port_rules() {
    let mut h = Harness::new();
    random_rules(&mut h, false);
    h.set_policy(App::Iax2, Monitor);
    h.set_policy(App::Sccp, Pass);
    let (reasons, actions, apps) = random_agreement(&mut h, 0xD7EC_7085, 4000, false);
    assert_coverage(&reasons, &actions, &apps, &[Sip, Rtp, App::Iax2, App::H323]);
}

/// STUN, SIP (with SDP, which the engine does not use yet) and MGCP payloads, mutated: kernel
/// and host agree.
#[test]
fn kernel_and_host_agree_on_random_frames_with_stun_sdp_and_mgcp() {
    let mut h = Harness::new();
    random_rules(&mut h, false);
    let (_, _, apps) = random_agreement(&mut h, 0x057D_05D9, 4000, true);
    assert!(apps.iter().any(|(a, _)| *a == App::Stun as u16), "no frame classified stun: {apps:?}");
}

// ---------------------------------------------------------------------------------------------
// The object and the verifier.

#[test]
fn verifier_accepts_both_variants() {
    for report_verdict in [false, true] {
        let mut f = Filter::load(&LoadOptions { report_verdict, flows: Some(TEST_FLOWS) })
            .unwrap_or_else(|e| panic!("the verifier accepts the programs: {e:#}"));
        println!("report_verdict={report_verdict}:");
        let mut total_verified = 0;
        for name in std::iter::once(PROGRAM).chain(TAIL_PROGRAMS.iter().map(|(n, _)| *n)) {
            let info = f.ebpf_mut().program(name).expect("the program").info().expect("program info");
            let xlated = info.size_translated().unwrap_or(0);
            let verified = info.verified_instruction_count();
            total_verified += verified.unwrap_or(0);
            println!(
                "  {name:<20} {:>7} instructions processed by the verifier, {:>6} translated instructions ({xlated} bytes), {:>6} bytes jited",
                verified.map_or("?".into(), |n| n.to_string()),
                xlated / 8,
                info.size_jitted(),
            );
            assert!(xlated > 0, "the kernel reports no translated program for {name}");
        }
        println!("  {:<20} {total_verified:>7} processed instructions in all", "total");
        let mut maps = f.maps().unwrap();
        maps.install(&Settings::default()).unwrap();
        let invite = Frame::udp4(CLIENT, 40000, SERVER, 15060, &invite(1)).build();
        let (ret, record) = f.run(&invite).unwrap();
        assert_eq!(ret, XDP_DROP, "a SIP INVITE on udp/15060 is dropped by the detectors");
        assert_eq!(record.is_some(), report_verdict, "a verdict record only when asked for");
        let (ret, _) = f.run(&udp(53)).unwrap();
        assert_eq!(ret, XDP_PASS);
        // (From another source port: the INVITE's endpoints now expect SIP.)
        let text_5060 = Frame::udp4(CLIENT, 40001, SERVER, 5060, TEXT).build();
        let (ret, _) = f.run(&text_5060).unwrap();
        assert_eq!(ret, XDP_PASS, "text to udp/5060 is not SIP and there is no port rule");
        let snap = maps.snapshot().unwrap();
        assert_eq!((snap.get(Sip, Drop).packets, snap.get(Unknown, Pass).packets), (1, 2));
        // With the classic port rules installed (`port_defaults = true`), the port decides.
        maps.install(&Settings { rules: RuleList::defaults(), ..Settings::default() }).unwrap();
        let (ret, _) = f.run(&text_5060).unwrap();
        assert_eq!(ret, XDP_DROP, "udp/5060 is dropped by the port rule");
    }
}

/// Functions bpf-linker links in when LLVM emits them: never to be called.
const MEM_FUNCTIONS: &[&str] = &["memset", "memcpy", "memmove", "memcmp", "bcmp"];

#[test]
fn object_calls_no_mem_functions_and_has_no_panics() {
    let obj = elf::read(OBJECT).expect("parsing the embedded XDP object");
    let prog = obj
        .programs
        .iter()
        .find(|s| s.functions.iter().any(|f| f == PROGRAM))
        .unwrap_or_else(|| panic!("no section defines the `{PROGRAM}` program: {:?}", obj.programs));
    assert_eq!(prog.name, "xdp");
    for s in obj.programs.iter().chain(obj.text.iter()) {
        let mut helpers = elf::helper_calls(&s.code);
        helpers.sort_unstable();
        helpers.dedup();
        let mut refs: Vec<_> = s.relocated.iter().map(|(_, n)| n.as_str()).collect();
        refs.sort_unstable();
        refs.dedup();
        println!("section {}: {} instructions, functions {:?}, helpers {helpers:?}, refers to {refs:?}", s.name, s.code.len() / 8, s.functions);
    }
    let calls = obj.calls();
    let mut edges = std::collections::BTreeMap::new();
    for c in &calls {
        *edges.entry((c.caller.clone(), c.callee.clone())).or_insert(0) += 1;
    }
    println!("BPF-to-BPF calls (caller -> callee: count):");
    for ((from, to), n) in &edges {
        println!("  {from} -> {to}: {n}");
    }
    let mut problems = Vec::new();
    for c in &calls {
        if MEM_FUNCTIONS.contains(&c.callee.as_str()) {
            problems.push(format!("{} instruction {} (in {}) calls {}", c.section, c.insn, c.caller, c.callee));
        } else if !obj.functions.contains(&c.callee) {
            problems.push(format!("{} instruction {} (in {}) calls {}, which is no function", c.section, c.insn, c.caller, c.callee));
        }
    }
    assert!(problems.is_empty(), "the object calls functions it must not (LLVM emitted them for a struct copy, zeroing or compare):\n{}", problems.join("\n"));
    let panics: Vec<_> = obj.symbols.iter().filter(|s| s.contains("panic")).collect();
    assert!(panics.is_empty(), "panic symbols in the object: {panics:?}");
}

#[test]
fn host_model_and_frame_builder_are_consistent() {
    // A sanity check of the test's own tools, without the kernel: what the harness compares
    // against must itself be right on known frames.
    let f = udp(5060);
    assert_eq!(f.len(), 14 + 20 + 8 + TEXT.len());
    assert_eq!(&f[..6], &DST_MAC);
    assert_eq!(&f[6..12], &SRC_MAC);
    let policy = voipfilter::policy::Policy::default();
    let t = host_tables(&policy);
    let v: Verdict = engine::process(&f[..], &t);
    assert_eq!(v, verdict(Unknown, Pass, Parsed), "text to udp/5060 without rules");
    let inv = Frame::udp4(CLIENT, 40000, SERVER, 15060, &invite(1)).build();
    assert_eq!(engine::process(&inv[..], &t), verdict(Sip, Drop, Parsed));
    let mut t = host_tables(&policy);
    t.rules.ports.insert(PortKey::new(proto::UDP, 5060), Rule::new(Sip, Drop));
    assert_eq!(engine::process(&f[..], &t), verdict(Sip, Drop, Parsed));
}

/// What `replay` does between captures: every flow-state map empties (FLOWS4, FLOWS, EXPECT, FRAGS,
/// TCP_CALLS), the rules and policy stay, and a flow decided before is inspected afresh.
#[test]
fn replay_state_reset_forgets_every_flow() {
    let mut h = Harness::new();
    h.port(Proto::Udp, "9", Custom, Drop);
    let rtp: Vec<Vec<u8>> = (0..3u16).map(|i| Frame::udp4(CLIENT, 20000, SERVER, 20002, &voip::rtp_stream(0x7777_7777, 1, i)).build()).collect();
    assert!(first_drop(&mut h, "RTP", &rtp, Rtp).is_some());
    h.expect("first fragment", &Frame::udp4(CLIENT, 40000, SERVER, 5060, &invite(1)).fragment(5, 0, true).build(), Sip, Drop, Parsed);
    let tcp_invite = Frame::tcp4(CLIENT, 40001, SERVER, 5060, 0x18, &invite(2)).build();
    h.expect("TCP INVITE", &tcp_invite, Sip, Drop, Parsed);
    h.check_state();
    let (flows, expect, frags) = (h.kernel_flows().len() as u64, h.kernel_expect().len() as u64, h.kernel_frags().len() as u64);
    assert!(flows >= 2 && expect >= 2 && frags == 1, "state before the reset: {flows} flows, {expect} expectations, {frags} fragments");

    // The slots of the TCP connections replayed (what `Keyer` collects), plus one the program
    // never wrote: zeroing it is harmless.
    let slots: std::collections::BTreeSet<u32> = [key_of(&tcp_invite).tcp_slot(), 7].into();
    let Harness { filter, maps, .. } = &mut h;
    let cleared = voipfilter::replay::state::reset(filter.ebpf_mut(), maps, &slots).expect("resetting the state");
    println!("cleared: {cleared:?}");
    let count = |name: &str| cleared.iter().find(|(n, _)| n == name).map(|(_, c)| *c);
    assert_eq!(count("FLOWS4"), Some(flows), "the flows are IPv4");
    assert_eq!(count("FLOWS"), Some(0));
    assert_eq!(count("EXPECT"), Some(expect));
    assert_eq!(count("FRAGS"), Some(frags));
    assert_eq!(count("TCP_CALLS"), Some(2));
    assert!(h.kernel_flows().is_empty() && h.kernel_expect().is_empty() && h.kernel_frags().is_empty());
    assert_eq!(h.kernel_tcp_slot(&key_of(&tcp_invite)), Default::default(), "the TCP call's slot is zeroed");
    // A second reset finds nothing.
    let Harness { filter, maps, .. } = &mut h;
    let again = voipfilter::replay::state::reset(filter.ebpf_mut(), maps, &Default::default()).unwrap();
    assert!(again.iter().all(|(_, n)| *n == 0), "{again:?}");

    // The host model forgets too; then both see the RTP flow as new, and the rule stays.
    h.host = voipfilter_tests::harness::HostModel::new(&h.policy);
    h.host.t.rules.ports.insert(PortKey::new(proto::UDP, 9), Rule::new(Custom, Drop));
    let v = h.expect_host("RTP packet after the reset", &rtp[2]);
    assert_eq!((v.app, v.action), (Unknown as u16, Pass), "a new flow: its first packet is not enough");
    h.expect("the port rule stays", &udp(9), Custom, Drop, Parsed);
    let ack = Frame::tcp4(SERVER, 5060, CLIENT, 40001, 0x10, b"").build();
    h.expect("the TCP call is forgotten", &ack, Unknown, Pass, Parsed);
    h.check_state();
    h.check_counters();
}
