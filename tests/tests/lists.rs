//! The app prefix lists in the kernel: the built-in lists that `Filter::load` installs, scopes
//! (UDP only, ports, signal), replacing a list while packets flow (no window, counters kept),
//! and `voipfilter lists` against a running daemon and its errors. Needs root.

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use aya::maps::{Array, IterableMap, LpmTrie, Map, MapData};
use voipfilter::lists::{ListMaps, builtin_set, table_in_use};
use voipfilter_common::{
    Action, App, Reason,
    classify::VerdictRecord,
    flow::{CONFIG_LISTS_B, Config, udp_untracked},
    lists::ListEntry,
    user::{
        frame::Frame,
        lists::{ListFile, ListSet, parse_list},
    },
};
use voipfilter_tests::{
    cli,
    daemon::{Daemon, fresh_pin_dir},
    harness::{Harness, XDP_DROP, XDP_PASS, describe},
    netns::Netns,
    tempdir::TempDir,
    voip,
};

use Action::{Drop, Pass};
use Reason::Ok as Parsed;

const CLIENT: [u8; 4] = [192, 0, 2, 10];
/// A payload no detector mistakes for VoIP.
const TEXT: &[u8] = b"voipfilter test payload";

fn v4(s: &str) -> [u8; 4] {
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a.octets(),
        _ => panic!("{s} is not an IPv4 address"),
    }
}

fn list(app: &str, scope: &str, version: &str, prefixes: &[&str]) -> ListFile {
    let text = format!("# app: {app}\n# scope: {scope}\n# version: {version}\n# source: test\n{}\n", prefixes.join("\n"));
    parse_list("test.cidr", &text).unwrap_or_else(|e| panic!("{e}"))
}

/// A host in the first IPv4 prefix shorter than /32 of the built-in list of `app` (the
/// prefix's first address + 1).
fn builtin_host(app: App) -> [u8; 4] {
    let set = builtin_set();
    let l = set.lists().find(|(_, l)| l.app == app).unwrap_or_else(|| panic!("no built-in {} list", app.name())).1;
    let (mut a, _) = *l.v4.iter().find(|(_, len)| *len < 32).unwrap_or(&l.v4[0]);
    a[3] |= 1;
    a
}

#[test]
fn udp_to_a_listed_address_is_dropped_from_its_first_packet_tcp_passes() {
    let mut h = Harness::new();
    let zoom = builtin_host(App::Zoom);
    // UDP, any port (zoom's scope is `udp`): the app from the first packet, every packet after.
    for i in 0..3 {
        let f = Frame::udp4(CLIENT, 40000, zoom, 8801, TEXT).build();
        h.expect(&format!("UDP to zoom {i}"), &f, App::Zoom, Drop, Parsed);
    }
    let back = Frame::udp4(zoom, 8801, CLIENT, 40000, TEXT).build();
    h.expect("UDP back from zoom", &back, App::Zoom, Drop, Parsed);
    // TCP to the same address: chat and HTTPS pass (a prefix never speaks for TCP).
    for (flags, payload) in [(0x02, &b""[..]), (0x18, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), (0x18, TEXT)] {
        let f = Frame::tcp4(CLIENT, 40001, zoom, 443, flags, payload).build();
        h.expect("TCP to zoom:443", &f, App::Unknown, Pass, Parsed);
    }
    // DNS to or from a listed address is never tracked.
    let f = Frame::udp4(CLIENT, 40002, zoom, 53, &voip::dns_query(7)).build();
    h.expect("DNS to zoom", &f, App::Unknown, Pass, Parsed);
    // Every UDP-scoped built-in list without ports drops UDP to its first prefix.
    for app in [App::Discord, App::Line, App::Telegram, App::Viber, App::Webex, App::WhatsApp, App::KakaoTalk] {
        let f = Frame::udp4(CLIENT, 41000, builtin_host(app), 9999, TEXT).build();
        h.expect(&format!("UDP to {}", app.name()), &f, app, Drop, Parsed);
        let f = Frame::tcp4(CLIENT, 41000, builtin_host(app), 443, 0x02, b"").build();
        h.expect(&format!("TCP to {}", app.name()), &f, App::Unknown, Pass, Parsed);
    }
    // Teams: only on its call ports.
    let teams = builtin_host(App::Teams);
    h.expect("UDP to teams:50010", &Frame::udp4(CLIENT, 42000, teams, 50010, TEXT).build(), App::Teams, Drop, Parsed);
    h.expect("UDP to teams:443", &Frame::udp4(CLIENT, 42001, teams, 443, TEXT).build(), App::Unknown, Pass, Parsed);
    // IPv6: the first IPv6 prefix of a UDP-scoped list without ports.
    let set = builtin_set();
    let (_, l6) = set
        .lists()
        .find(|(_, l)| l.scope == voipfilter_common::lists::SCOPE_UDP && l.ranges.is_empty() && !l.v6.is_empty())
        .expect("a built-in UDP list with IPv6 prefixes");
    let (mut a6, _) = l6.v6[0];
    a6[15] |= 1;
    let mut c6 = [0u8; 16];
    c6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    c6[15] = 10;
    h.expect("UDP6 to a listed address", &Frame::udp6(c6, 40000, a6, 9999, TEXT).build(), l6.app, Drop, Parsed);
    h.expect("TCP6 to a listed address", &Frame::tcp6(c6, 40000, a6, 443, 0x02, b"").build(), App::Unknown, Pass, Parsed);
    h.check_state();
    h.check_counters();
}

#[test]
fn a_signal_list_names_a_stun_flow_and_is_no_signal_alone() {
    let mut h = Harness::new();
    let meet = builtin_host(App::GoogleMeet);
    // Alone the prefix is no signal: other UDP on the scope's ports passes. (First: a call
    // flow decided to the same endpoint would announce it, and later flows would inherit.)
    for i in 0..3 {
        h.expect(&format!("text to meet:19302 {i}"), &Frame::udp4(CLIENT, 40003, meet, 19302, TEXT).build(), App::Unknown, Pass, Parsed);
    }
    // STUN to a Google Meet relay on its ports: the STUN detector finds a call, the list names it.
    h.expect("STUN to meet:19302", &Frame::udp4(CLIENT, 40000, meet, 19302, &voip::stun_binding(1)).build(), App::GoogleMeet, Drop, Parsed);
    h.expect("STUN to meet:3478", &Frame::udp4(CLIENT, 40001, meet, 3478, &voip::stun_binding(2)).build(), App::GoogleMeet, Drop, Parsed);
    // Off the scope's ports it stays generic STUN.
    h.expect("STUN to meet:5000", &Frame::udp4(CLIENT, 40002, meet, 5000, &voip::stun_binding(3)).build(), App::Stun, Drop, Parsed);
    // The Messenger list (signal, any port) does the same for Meta's prefixes.
    let meta = builtin_host(App::Messenger);
    h.expect("text to meta", &Frame::udp4(CLIENT, 40005, meta, 3478, TEXT).build(), App::Unknown, Pass, Parsed);
    h.expect("STUN to meta", &Frame::udp4(CLIENT, 40004, meta, 3478, &voip::stun_binding(4)).build(), App::Messenger, Drop, Parsed);
    // Without lists, the same STUN flow is generic.
    h.set_lists(&ListSet::default());
    assert_eq!(h.maps.config().unwrap().flags, 0, "no list, no lookups");
    let mut meet2 = meet;
    meet2[3] += 1;
    h.expect("STUN to meet, no lists", &Frame::udp4(CLIENT, 40006, meet2, 19302, &voip::stun_binding(5)).build(), App::Stun, Drop, Parsed);
    h.check_state();
    h.check_counters();
}

/// FaceTime (no nDPI rule; Apple HT202078): its relays are in Apple's 17.0.0.0/8, on UDP
/// 3478-3497 and 16384-16387/16393-16402. The list is `signal`-scoped: iCloud, iMessage and the
/// App Store share the network, so the prefix only names a call another detector found.
#[test]
fn facetime_calls_are_named_by_apples_network_and_ports() {
    let mut h = Harness::new();
    let apple = [17, 188, 160, 45];
    // HTTPS (TCP) and other UDP to Apple pass.
    h.expect("TLS to Apple", &Frame::tcp4(CLIENT, 41000, apple, 443, 0x18, &[0x17, 3, 3, 0, 2, 1, 2]).build(), App::Unknown, Pass, Parsed);
    h.expect("text to apple:16393", &Frame::udp4(CLIENT, 41001, apple, 16393, TEXT).build(), App::Unknown, Pass, Parsed);
    // A FaceTime call setup: STUN to a relay on 3478-3497, then RTP to the media ports.
    h.expect("STUN to apple:3480", &Frame::udp4(CLIENT, 41002, apple, 3480, &voip::stun_binding(11)).build(), App::FaceTime, Drop, Parsed);
    let media: Vec<Vec<u8>> = (0..4).map(|i| Frame::udp4(CLIENT, 41003, apple, 16393, &voip::rtp_stream(0xFACE_0001, 100, i)).build()).collect();
    let mut first = None;
    for (i, f) in media.iter().enumerate() {
        let v = h.expect_host(&format!("RTP to apple:16393 #{i}"), f);
        if v.action == Drop && first.is_none() {
            assert_eq!(v.app, App::FaceTime as u16, "RTP named by the list");
            first = Some(i);
        }
    }
    assert!(first.is_some_and(|i| i <= 2), "FaceTime media dropped by its 3rd packet: {first:?}");
    // STUN to Apple off FaceTime's ports stays generic.
    h.expect("STUN to apple:5000", &Frame::udp4(CLIENT, 41004, apple, 5000, &voip::stun_binding(12)).build(), App::Stun, Drop, Parsed);
    h.check_state();
    h.check_counters();
}

/// Test addresses in no built-in list.
const KEPT: &str = "198.51.100.7"; // in A's /24; in B's /24 and its nested /26
const NESTED: &str = "100.64.1.1"; // in A's 100.64.0.0/16, in B's 100.64.1.0/24
const OLD_ONLY: &str = "203.0.113.1"; // A's 203.0.113.0/25
const NEW_ONLY: &str = "203.0.113.200"; // B's 203.0.113.128/25

fn version_a() -> ListFile {
    list("zoom", "udp", "2026-11-28", &["198.51.100.0/24", "203.0.113.0/25", "100.64.0.0/16"])
}

fn version_b() -> ListFile {
    list("zoom", "udp", "2026-11-29", &["198.51.100.0/24", "198.51.100.0/26", "203.0.113.128/25", "100.64.1.0/24"])
}

fn with_zoom(l: ListFile) -> ListSet {
    let mut set = builtin_set();
    set.put(l).expect("a slot");
    set
}

#[test]
fn replacing_a_list_keeps_its_slot_and_the_counters() {
    let mut h = Harness::new();
    let zoom_slot = builtin_set().slot_of(App::Zoom).unwrap();
    h.set_lists(&with_zoom(version_a()));
    let mut port = 30000;
    let mut send = |h: &mut Harness, dst: &str, app: App| {
        port += 1;
        let action = if app == App::Unknown { Pass } else { Drop };
        h.expect(&format!("UDP to {dst}"), &Frame::udp4(CLIENT, port, v4(dst), 9000, TEXT).build(), app, action, Parsed);
    };
    for dst in [KEPT, NESTED, OLD_ONLY] {
        send(&mut h, dst, App::Zoom);
    }
    send(&mut h, NEW_ONLY, App::Unknown);
    let decided_old = Frame::udp4(CLIENT, 29999, v4(OLD_ONLY), 9000, TEXT).build();
    h.expect("a flow to OLD_ONLY before the change", &decided_old, App::Zoom, Drop, Parsed);
    h.check_counters();
    let before = h.maps.snapshot().unwrap();

    let change = h.set_lists(&with_zoom(version_b()));
    assert_eq!(h.maps.snapshot().unwrap(), before, "replacing a list leaves every counter as it was");
    assert!(change.table && change.written > 0 && change.removed > 0, "{change:?}");
    let kernel = h.maps.list_set().unwrap();
    assert_eq!(kernel.slot_of(App::Zoom), Some(zoom_slot), "the new version keeps the slot");
    assert_eq!(kernel.slots[zoom_slot].as_ref().unwrap().version, "2026-11-29");
    assert_eq!(kernel.lists().count(), builtin_set().lists().count());

    for dst in [KEPT, NESTED, NEW_ONLY] {
        send(&mut h, dst, App::Zoom);
    }
    send(&mut h, OLD_ONLY, App::Unknown);
    // A flow decided before the change keeps its app (lists are looked up on a flow's first
    // packet).
    h.expect("the flow to OLD_ONLY decided before the change", &decided_old, App::Zoom, Drop, Parsed);
    h.check_state();
    h.check_counters();
}

/// `LISTS` holds two tables: a replacement that changes the table writes the entry the program
/// does not read and then flips `CONFIG_LISTS_B` (so no packet reads a table half written); the
/// entry it left keeps the table before, intact; a replacement that changes only prefixes, and
/// a rule change, leave the bit alone.
#[test]
fn a_new_list_table_goes_into_the_entry_not_in_use() {
    let mut h = Harness::new();
    let flags = |h: &Harness| h.maps.config().expect("CONFIG").flags;
    let table = |h: &Harness, i: u32| h.maps.lists.table.get(&i, 0).expect("LISTS");
    let before = flags(&h);
    let builtin = table(&h, table_in_use(before));
    let change = h.set_lists(&with_zoom(version_a()));
    assert!(change.table, "{change:?}");
    let after = flags(&h);
    assert_eq!(after ^ before, CONFIG_LISTS_B, "only the table bit changed");
    assert_eq!(table(&h, table_in_use(before)), builtin, "the entry left keeps the table before");
    assert_ne!(table(&h, table_in_use(after)), builtin);
    // Zoom's addresses match under the new table.
    let f = Frame::udp4(CLIENT, 40000, v4("198.51.100.9"), 9000, TEXT).build();
    h.expect("to a listed Zoom address", &f, App::Zoom, Drop, Parsed);
    // The same set again: nothing to write, the bit stays.
    let change = h.set_lists(&with_zoom(version_a()));
    assert!(!change.table && change.written == 0, "{change:?}");
    assert_eq!(flags(&h), after);
    // Rule changes recompute CONFIG's rule bits, not the table in use.
    h.maps.sync_config().expect("sync_config");
    assert_eq!(flags(&h) & CONFIG_LISTS_B, after & CONFIG_LISTS_B);
    // Back to the built-in lists: the other entry again.
    let change = h.set_lists(&builtin_set());
    assert!(change.table, "{change:?}");
    assert_eq!(flags(&h) & CONFIG_LISTS_B, before & CONFIG_LISTS_B);
    assert_eq!(table(&h, table_in_use(flags(&h))), builtin);
    h.check_state();
    h.check_counters();
}

/// The list maps of a loaded program through fds of their own, for another thread.
fn list_maps_of(h: &Harness) -> (ListMaps<MapData>, Array<MapData, Config>) {
    fn dup(m: &MapData) -> Map {
        use std::os::fd::AsFd as _;
        let fd = m.fd().as_fd().try_clone_to_owned().expect("dup of a map fd");
        Map::from_map_data(MapData::from_fd(fd).expect("MapData from fd")).expect("a map")
    }
    let l = &h.maps.lists;
    let v4: LpmTrie<MapData, [u8; 4], ListEntry> = dup(IterableMap::map(&l.v4)).try_into().expect("LIST4");
    let v6: LpmTrie<MapData, [u8; 16], ListEntry> = dup(IterableMap::map(&l.v6)).try_into().expect("LIST6");
    let table = dup(IterableMap::map(&l.table)).try_into().expect("LISTS");
    let v16 = dup(IterableMap::map(&l.v16)).try_into().expect("LIST16");
    let config = dup(IterableMap::map(&h.maps.config)).try_into().expect("CONFIG");
    (ListMaps { v4, v6, table, v16 }, config)
}

/// The next source port after `port` that flow tracking does not skip (SSDP, mDNS, ...).
fn next_port(port: u16) -> u16 {
    let mut p = port;
    loop {
        p = if p == u16::MAX { 1024 } else { p + 1 };
        if !udp_untracked(p, 9000) {
            return p;
        }
    }
}

fn run(h: &mut Harness, src_port: u16, dst: [u8; 4]) -> (u32, VerdictRecord) {
    let f = Frame::udp4(CLIENT, src_port, dst, 9000, TEXT).build();
    let (ret, rec) = h.filter.run(&f).expect("BPF_PROG_TEST_RUN");
    (ret, rec.expect("a verdict record"))
}

/// Another thread swaps version A and B of the Zoom list back and forth while this one sends
/// new flows: an address that both versions (or an unchanged list) contain is matched by every
/// single packet, whatever moment of a replacement it meets.
#[test]
fn no_window_while_a_list_is_replaced_under_traffic() {
    let mut h = Harness::new();
    h.set_lists(&with_zoom(version_a()));
    let (a, b) = (with_zoom(version_a()).entries(), with_zoom(version_b()).entries());
    let (mut maps, mut config) = list_maps_of(&h);
    let done = Arc::new(AtomicBool::new(false));
    const SWAPS: usize = 60;
    let swapper = {
        let done = done.clone();
        std::thread::spawn(move || {
            for i in 0..SWAPS {
                let to = if i % 2 == 0 { &b } else { &a };
                maps.replace(&mut config, to).expect("replacing the lists");
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let discord = builtin_host(App::Discord);
    let targets = [(KEPT, App::Zoom), (NESTED, App::Zoom), ("", App::Discord)];
    let mut sent = 0u64;
    let mut port: u16 = 1024;
    let mut drops = 0u64;
    let mut either = [0u64; 2];
    while !done.load(Ordering::SeqCst) || sent == 0 {
        for (dst, app) in targets {
            port = next_port(port);
            let addr = if dst.is_empty() { discord } else { v4(dst) };
            let (ret, rec) = run(&mut h, port, addr);
            sent += 1;
            assert!(
                ret == XDP_DROP && rec.app == app as u16,
                "packet {sent} to {addr:?} during a replacement: {} (XDP {ret}), expected {}/drop",
                describe(&rec),
                app.name()
            );
            drops += 1;
        }
        // Addresses in only one version: zoom or nothing, never anything else.
        for (i, dst) in [OLD_ONLY, NEW_ONLY].into_iter().enumerate() {
            port = next_port(port);
            let (ret, rec) = run(&mut h, port, v4(dst));
            sent += 1;
            if ret == XDP_DROP {
                assert_eq!(rec.app, App::Zoom as u16, "{dst}: {}", describe(&rec));
                drops += 1;
                either[i] += 1;
            } else {
                assert_eq!((ret, rec.app), (XDP_PASS, 0), "{dst}: {}", describe(&rec));
            }
        }
    }
    swapper.join().expect("the swapping thread");
    println!("{sent} packets during {SWAPS} replacements; OLD_ONLY matched {} times, NEW_ONLY {}", either[0], either[1]);
    // The counters saw every packet: nothing reset them.
    let snap = h.maps.snapshot().unwrap();
    assert_eq!(snap.total().packets, sent);
    assert_eq!(snap.by_action(Drop).packets, drops);
    // SWAPS is even: version A is back.
    assert_eq!(h.maps.list_entries().unwrap(), with_zoom(version_a()).entries());
}

#[test]
fn lists_cli_against_a_running_daemon() {
    let ns = Netns::new("lists");
    let d = Daemon::start(&ns, &["lo"], &[]);
    assert!(d.log().contains("prefix lists: discord ("), "{}", d.log());
    let show = d.cli(&["lists", "show", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&show.stdout).expect("JSON");
    assert_eq!(v["lists"].as_array().unwrap().len(), builtin_set().lists().count());
    assert_eq!((v["ipv4_lookups"].as_bool(), v["ipv6_lookups"].as_bool()), (Some(true), Some(true)));
    let text = d.cli(&["lists", "show"]).ok().stdout;
    assert!(text.contains("google-meet") && text.contains("3478,19302-19309") && text.contains("signal"), "{text}");

    let dir = TempDir::new("lists-cli");
    let file = dir.write("zoom-b.cidr", "# app: zoom\n# scope: udp ports 8801-8810\n# version: 2026-11-29\n# source: test\n198.51.100.0/24\n2001:db8:1::/48\n");
    let out = d.cli(&["lists", "load", &file.display().to_string()]).ok();
    assert!(out.stdout.contains("zoom: replaced version 2026-11-28 by 2026-11-29 in slot"), "{}", out.stdout);
    let zoom = d.cli(&["lists", "show", "zoom", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&zoom.stdout).expect("JSON");
    let l = &v["lists"][0];
    assert_eq!(l["prefixes"], serde_json::json!(["198.51.100.0/24", "2001:db8:1::/48"]), "read back from the kernel: {v}");
    assert_eq!((l["scope"].as_str(), l["ports"].as_str(), l["v4"].as_u64(), l["v6"].as_u64()), (Some("udp"), Some("8801-8810"), Some(1), Some(1)));

    // A bad file changes nothing.
    let bad = dir.write("bad.cidr", "# app: zoom\n# scope: udp\n# version: 3\n# source: t\n198.51.100.1/24\n");
    d.cli(&["lists", "load", &bad.display().to_string()]).fails_with(&["bad.cidr:5: host bits set in '198.51.100.1/24'"]);
    let again = d.cli(&["lists", "show", "zoom", "--json"]).ok();
    assert_eq!(again.stdout, zoom.stdout);

    d.cli(&["lists", "del", "zoom"]).ok();
    d.cli(&["lists", "show", "zoom"]).fails_with(&["zoom has no list"]);
    d.cli(&["lists", "del", "zoom"]).fails_with(&["zoom has no list"]);
    d.stop();

    // `run --lists none`: no list, no lookups.
    let d = Daemon::start(&ns, &["lo"], &["--lists", "none"]);
    let v: serde_json::Value = serde_json::from_str(&d.cli(&["lists", "show", "--json"]).ok().stdout).expect("JSON");
    assert_eq!(v["lists"].as_array().unwrap().len(), 0);
    assert_eq!((v["ipv4_lookups"].as_bool(), v["ipv6_lookups"].as_bool()), (Some(false), Some(false)));
    d.cli(&["lists", "load", &file.display().to_string()]).ok();
    let v: serde_json::Value = serde_json::from_str(&d.cli(&["lists", "show", "--json"]).ok().stdout).expect("JSON");
    assert_eq!((v["ipv4_lookups"].as_bool(), v["ipv6_lookups"].as_bool()), (Some(true), Some(true)), "loading turns the lookups on");
    d.stop();
}

#[test]
fn lists_cli_errors() {
    let pin_dir = fresh_pin_dir();
    let dir = TempDir::new("lists-errors");
    let good = dir.write("zoom.cidr", "# app: zoom\n# scope: udp\n# version: 1\n# source: t\n198.51.100.0/24\n");
    let good2 = dir.write("zoom2.cidr", "# app: zoom\n# scope: udp\n# version: 2\n# source: t\n198.51.100.0/24\n");
    let path = |p: &std::path::Path| p.display().to_string();
    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        (vec!["lists".into(), "load".into(), path(&good)], vec!["no voipfilter instance found".into()]),
        (vec!["lists".into(), "show".into()], vec!["no voipfilter instance found".into()]),
        (vec!["lists".into(), "del".into(), "zoom".into()], vec!["no voipfilter instance found".into()]),
        (vec!["lists".into(), "show".into(), "skipe".into()], vec!["unknown app 'skipe'".into()]),
        (vec!["lists".into(), "load".into(), path(&dir.path().join("missing.cidr"))], vec![format!("{}: No such file", path(&dir.path().join("missing.cidr")))]),
        (
            vec!["lists".into(), "load".into(), path(&dir.write("a.cidr", "# app: zoom\n# scope: udp\n# version: 1\n# source: t\n\n198.51.100.0/33\n"))],
            vec!["a.cidr:6: bad CIDR '198.51.100.0/33'".into()],
        ),
        (
            vec!["lists".into(), "load".into(), path(&dir.write("b.cidr", "# app: zooom\n"))],
            vec!["b.cidr:1: unknown app 'zooom'".into()],
        ),
        (
            vec!["lists".into(), "load".into(), path(&dir.write("c.cidr", "# app: zoom\n# scope: tcp\n"))],
            vec!["c.cidr:2: bad scope 'tcp'".into(), "never block TCP".into()],
        ),
        (
            vec!["lists".into(), "load".into(), path(&dir.write("d.cidr", "# app: zoom\n# scope: udp ports 1,2,3,4,5\n"))],
            vec!["d.cidr:2: bad scope".into(), "too many port ranges (5; at most 4)".into()],
        ),
        (
            vec!["lists".into(), "load".into(), path(&dir.write("e.cidr", "# app: zoom\n# scope: udp\n1.0.0.0/8\n"))],
            vec!["e.cidr: the header has no `# version:` line".into()],
        ),
        (vec!["lists".into(), "load".into(), path(&good), path(&good2)], vec!["are both lists of zoom".into()]),
    ];
    for (args, needles) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        let err = cli::CliOutput::run(cli::command(&pin_dir, &args)).fails_with(&needles);
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
    }
    assert!(!pin_dir.exists());
    // --help says what the subcommands do.
    let help = cli::CliOutput::run(cli::command(&pin_dir, &["lists", "--help"])).ok().stdout;
    for w in ["show", "load", "del"] {
        assert!(help.contains(w), "lists --help lacks {w:?}:\n{help}");
    }
}
