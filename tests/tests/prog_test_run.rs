//! The real XDP program in the kernel, run on crafted frames with BPF_PROG_TEST_RUN.
//!
//! Every run asserts the XDP return value (never XDP_ABORTED), the verdict the program reports
//! in the frame's metadata (app, action, reason), and that the host classifier with the same
//! rules gives the same verdict; every test ends by comparing all counters with a model.
//! Needs root.

use voipfilter::{
    load::{Filter, LoadOptions, OBJECT},
    rulespec::Proto,
};
use voipfilter_common::{
    Action, App, Reason,
    classify::classify,
    maps::PROGRAM,
    packet::{ETH_P_8021AD, ETH_P_8021Q, ETH_P_QINQ_9100, MAX_IPV6_EXT, proto},
    rules::{PortKey, Rule},
    user::frame::{DST_MAC, Frame, SRC_MAC},
};
use voipfilter_tests::{
    elf,
    harness::{Harness, XDP_DROP, XDP_PASS, verdict},
    rng::Rng,
};

use Action::{Drop, Monitor, Pass};
use App::{Custom, Sip, Unknown};
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
    let mut h = Harness::with_defaults();
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
    let mut h = Harness::with_defaults();
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
    h.rules.ports.insert(PortKey::new(proto::UDP, 9), odd);
    let known_app_odd_action = Rule { app: Sip as u16, action: 3, _pad: 0 };
    h.maps.port_rules.insert(&PortKey::new(proto::UDP, 10), &known_app_odd_action, 0).unwrap();
    h.rules.ports.insert(PortKey::new(proto::UDP, 10), known_app_odd_action);
    h.expect("unknown app id and action", &udp(9), Custom, Pass, Parsed);
    h.expect("unknown action", &udp(10), Sip, Pass, Parsed);
    h.check_counters();
}

#[test]
fn vlan_and_qinq() {
    let mut h = Harness::with_defaults();
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
    let mut h = Harness::with_defaults();
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
    let mut h = Harness::with_defaults();
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
    let mut h = Harness::with_defaults();
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
    let mut h = Harness::with_defaults();
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

/// Builds a random frame: a valid template (with rule-relevant addresses and ports), often
/// mutated (bytes changed, cut, padded), or plain random bytes.
fn random_frame(r: &mut Rng) -> Vec<u8> {
    const V4: &[[u8; 4]] = &[[198, 51, 100, 7], [198, 51, 100, 200], [203, 0, 113, 7], [203, 0, 113, 8], CLIENT, SERVER];
    const PORTS: &[u16] = &[5060, 5061, 4569, 1719, 1720, 2000, 3478, 50000, 50059, 50060, 8000, 8010, 8011, 53, 443];
    let v6s: [[u8; 16]; 5] = [
        v6(1),
        v6_in([0x20, 0x01, 0x0d, 0xb8, 0, 1], 5),
        v6_in([0xfe, 0x80, 0, 0, 0, 0], 1),
        v6_in([0x20, 0x01, 0x0d, 0xb9, 0, 0], 1),
        v6_in([0xfd, 0, 0, 0, 0, 1], 2),
    ];
    let port = |r: &mut Rng| if r.chance(3, 4) { *r.pick(PORTS) } else { r.next_u64() as u16 };
    let payload = |r: &mut Rng| {
        let n = r.below(64);
        r.bytes(n)
    };
    let ip4 = |r: &mut Rng| *r.pick(V4);
    let ip6 = |r: &mut Rng| *r.pick(&v6s);
    let (sp, dp, pl) = (port(r), port(r), payload(r));
    let mut f = match r.below(12) {
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
            Frame::udp4(ip4(r), sp, ip4(r), dp, &pl).fragment(r.next_u64() as u32, offset, more)
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
                f = f.ipv6_fragment(r.next_u64() as u32, offset, r.chance(1, 2));
            }
            f
        }
        10 => return arp(),
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

#[test]
fn kernel_and_host_agree_on_random_frames() {
    let (mut r, seed) = Rng::from_env_or(0x5EED_0FF1_17E5);
    println!("seed {seed:#x} (set VFT_SEED to rerun with another)");
    let mut h = Harness::with_defaults();
    h.port(Proto::Udp, "50000-50059", App::Teams, Monitor);
    h.port(Proto::Tcp, "8000-8010", Custom, Pass);
    h.prefix("198.51.100.0/24", Custom, Drop);
    h.prefix("198.51.100.128/25", App::WhatsApp, Monitor);
    h.prefix("203.0.113.7/32", App::Zoom, Pass);
    h.prefix("2001:db8::/32", App::Teams, Drop);
    h.prefix("2001:db8:1::/48", App::Teams, Monitor);
    h.prefix("fe80::/10", Custom, Pass);
    const N: usize = 4000;
    let mut seen_reasons = [0u64; Reason::ALL.len()];
    let mut seen_actions = [0u64; 3];
    for i in 0..N {
        let f = random_frame(&mut r);
        let v = h.expect_host(&format!("random frame #{i} (seed {seed:#x}): {f:02x?}"), &f);
        seen_reasons[v.reason as usize] += 1;
        seen_actions[v.action as usize] += 1;
    }
    h.check_counters();
    println!("{N} frames; verdicts: {:?}", Action::ALL.iter().map(|a| (a.name(), seen_actions[*a as usize])).collect::<Vec<_>>());
    println!("reasons: {:?}", Reason::ALL.iter().map(|x| (x.name(), seen_reasons[*x as usize])).collect::<Vec<_>>());
    // The generator must reach every branch, or the agreement means little.
    for x in Reason::ALL {
        assert!(seen_reasons[x as usize] >= 10, "only {} frames with reason {}", seen_reasons[x as usize], x.name());
    }
    for a in Action::ALL {
        assert!(seen_actions[a as usize] >= 50, "only {} frames with action {}", seen_actions[a as usize], a.name());
    }
}

#[test]
fn verifier_accepts_both_variants() {
    let frame = udp(5060);
    for report_verdict in [false, true] {
        let mut f = Filter::load(&LoadOptions { report_verdict }).expect("the verifier accepts the program");
        let info = f.ebpf_mut().program(PROGRAM).expect("the program").info().expect("program info");
        let xlated = info.size_translated().unwrap_or(0);
        println!(
            "voipfilter XDP (report_verdict={report_verdict}): {} instructions processed by the verifier, \
             {} translated instructions ({xlated} bytes), {} bytes jited",
            info.verified_instruction_count().map_or("?".into(), |n| n.to_string()),
            xlated / 8,
            info.size_jitted(),
        );
        assert!(xlated > 0, "the kernel reports no translated program");
        let mut maps = f.maps().unwrap();
        maps.install(&voipfilter::rulespec::RuleList::defaults()).unwrap();
        let (ret, record) = f.run(&frame).unwrap();
        assert_eq!(ret, XDP_DROP);
        assert_eq!(record.is_some(), report_verdict, "a verdict record only when asked for");
        let (ret, _) = f.run(&udp(53)).unwrap();
        assert_eq!(ret, XDP_PASS);
        let snap = maps.snapshot().unwrap();
        assert_eq!((snap.get(Sip, Drop).packets, snap.get(Unknown, Pass).packets), (1, 1));
    }
}

#[test]
fn xdp_section_makes_no_bpf_to_bpf_calls_and_has_no_panics() {
    let obj = elf::read(OBJECT).expect("parsing the embedded XDP object");
    let prog = obj
        .programs
        .iter()
        .find(|s| s.functions.iter().any(|f| f == PROGRAM))
        .unwrap_or_else(|| panic!("no section defines the `{PROGRAM}` program: {:?}", obj.programs));
    assert_eq!(prog.name, "xdp");
    let mut problems = Vec::new();
    for s in &obj.programs {
        let mut helpers = elf::helper_calls(&s.code);
        helpers.sort_unstable();
        helpers.dedup();
        let mut maps: Vec<_> = s.relocated.iter().map(|(_, n)| n.as_str()).collect();
        maps.sort_unstable();
        maps.dedup();
        println!("section {}: {} instructions, helpers {helpers:?}, refers to {maps:?}", s.name, s.code.len() / 8);
        for i in elf::pseudo_calls(&s.code) {
            problems.push(format!("{}: instruction {i} calls {}", s.name, s.symbol_at(i).unwrap_or("a BPF function")));
        }
        for (i, name) in &s.relocated {
            if obj.functions.contains(name) && !elf::pseudo_calls(&s.code).contains(i) {
                problems.push(format!("{}: instruction {i} refers to function {name}", s.name));
            }
        }
    }
    assert!(problems.is_empty(), "the XDP program makes BPF-to-BPF calls (inline them):\n{}", problems.join("\n"));
    let panics: Vec<_> = obj.symbols.iter().filter(|s| s.contains("panic")).collect();
    assert!(panics.is_empty(), "panic symbols in the object: {panics:?}");
}

#[test]
fn host_classifier_and_frame_builder_are_consistent() {
    // A sanity check of the test's own tools, without the kernel: what the harness compares
    // against must itself be right on a known frame.
    let f = udp(5060);
    assert_eq!(f.len(), 14 + 20 + 8 + TEXT.len());
    assert_eq!(&f[..6], &DST_MAC);
    let mut rules = voipfilter_common::user::rules::RuleSet::default();
    rules.ports.insert(PortKey::new(proto::UDP, 5060), Rule::new(Sip, Drop));
    assert_eq!(classify(&f[..], &rules), verdict(Sip, Drop, Parsed));
}
