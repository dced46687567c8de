//! Flows of a replay: the key a frame belongs to, and what happened to each flow's packets.
//!
//! A flow is an L4 protocol plus an unordered pair of endpoints (address and port; port 0 for
//! protocols without ports), the same key the label files use. The key comes from ONE function,
//! [`flow_headers`], the host-side twin of what the XDP program parses: it looks through one
//! level of GTP-U or GRE, so tunnelled flows are keyed (and labelled) by their inner tuple.

use std::{
    collections::HashMap,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use voipfilter_common::{
    Action, App,
    app::Class,
    packet::{self, Frag, Headers, proto},
    reason::Reason,
};

/// The headers a flow is keyed on: the program's own parser, which returns the inner headers of
/// a GTP-U or GRE packet (one level deep) and the outer ones otherwise. Every report takes its
/// flow tuple from here, and only here.
pub fn flow_headers(frame: &[u8]) -> Result<Headers, Reason> {
    packet::parse(frame)
}

/// One end of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    /// `1.2.3.4:5060` or `[2001:db8::1]:5060`.
    fn from_str(s: &str) -> Result<Endpoint, String> {
        let bad = || format!("bad endpoint {s:?}: expected ADDR:PORT or [IPV6]:PORT");
        let (addr, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let addr: IpAddr = match addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
            Some(v6) => IpAddr::V6(v6.parse().map_err(|_| bad())?),
            None => IpAddr::V4(addr.parse().map_err(|_| bad())?),
        };
        Ok(Endpoint { addr, port })
    }
}

/// Protocol names as nDPI and the label files write them.
pub fn proto_name(p: u8) -> String {
    match p {
        proto::TCP => "TCP".into(),
        proto::UDP => "UDP".into(),
        proto::ICMP => "ICMP".into(),
        proto::ICMPV6 => "ICMPV6".into(),
        proto::GRE => "GRE".into(),
        proto::ESP => "ESP".into(),
        proto::AH => "AH".into(),
        proto::SCTP => "SCTP".into(),
        2 => "IGMP".into(),
        n => format!("IP-{n}"),
    }
}

/// Inverse of [`proto_name`]; also takes a plain protocol number.
pub fn parse_proto(s: &str) -> Option<u8> {
    let u = s.to_ascii_uppercase();
    match u.as_str() {
        "TCP" => Some(proto::TCP),
        "UDP" => Some(proto::UDP),
        "ICMP" => Some(proto::ICMP),
        "ICMPV6" | "IPV6-ICMP" => Some(proto::ICMPV6),
        "GRE" => Some(proto::GRE),
        "ESP" => Some(proto::ESP),
        "AH" => Some(proto::AH),
        "SCTP" => Some(proto::SCTP),
        "IGMP" => Some(2),
        _ => u.strip_prefix("IP-").unwrap_or(&u).parse().ok(),
    }
}

/// Protocol and unordered endpoint pair (`a <= b`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub proto: u8,
    pub a: Endpoint,
    pub b: Endpoint,
}

impl FlowKey {
    pub fn new(proto: u8, x: Endpoint, y: Endpoint) -> FlowKey {
        let (a, b) = if x <= y { (x, y) } else { (y, x) };
        FlowKey { proto, a, b }
    }
}

impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", proto_name(self.proto), self.a, self.b)
    }
}

fn addr(h: &Headers, a: &[u8; 16]) -> IpAddr {
    if h.ipv6 {
        IpAddr::V6(Ipv6Addr::from(*a))
    } else {
        IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
    }
}

/// Fragment id: (protocol, source, destination, IP id).
type FragId = (u8, [u8; 16], [u8; 16], u32);

/// Most first fragments remembered (a capture full of lost fragments cannot grow memory).
const MAX_FRAGS: usize = 65_536;

/// Turns frames into (flow key, source endpoint). Later IP fragments carry no ports: they are
/// given the ports of their first fragment when it was seen, port 0 otherwise.
#[derive(Default)]
pub struct Keyer {
    frags: HashMap<FragId, (u16, u16)>,
    tcp_slots: std::collections::BTreeSet<u32>,
}

impl Keyer {
    /// The flow of `frame` and the endpoint that sent it; `None` for frames without an IP
    /// header the parser can read (ARP, LLDP, runts...).
    pub fn key(&mut self, frame: &[u8]) -> Option<(FlowKey, Endpoint)> {
        let h = flow_headers(frame).ok()?;
        if h.proto == voipfilter_common::packet::proto::TCP && h.has_ports() {
            // The slot the program would use for this connection in TCP_CALLS (reset between
            // captures: only these slots can have been written).
            self.tcp_slots.insert(voipfilter_common::flow::FlowKey::new(&h).0.tcp_slot());
        }
        let (mut sport, mut dport) = if h.has_ports() { (h.sport, h.dport) } else { (0, 0) };
        match h.frag {
            Frag::First if h.has_ports() => {
                if self.frags.len() >= MAX_FRAGS {
                    self.frags.clear();
                }
                self.frags.insert((h.proto, h.src, h.dst, h.frag_id), (sport, dport));
            }
            Frag::Later => {
                if let Some(&(s, d)) = self.frags.get(&(h.proto, h.src, h.dst, h.frag_id)) {
                    (sport, dport) = (s, d);
                }
            }
            _ => {}
        }
        let src = Endpoint { addr: addr(&h, &h.src), port: sport };
        let dst = Endpoint { addr: addr(&h, &h.dst), port: dport };
        Some((FlowKey::new(h.proto, src, dst), src))
    }

    /// Forgets every fragment and TCP slot (between captures).
    pub fn clear(&mut self) {
        self.frags.clear();
        self.tcp_slots.clear();
    }

    /// The `TCP_CALLS` slots of the TCP connections seen since the last [`Keyer::clear`].
    pub fn tcp_slots(&self) -> &std::collections::BTreeSet<u32> {
        &self.tcp_slots
    }
}

/// Packets of one app inside a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppCount {
    pub packets: u64,
    pub dropped: u64,
}

/// What the replay saw of one flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    pub key: FlowKey,
    /// Sender of the flow's first packet (shown as endpoint A).
    pub initiator: Endpoint,
    /// Capture packet number (1-based) of the flow's first packet.
    pub first_packet: u64,
    pub packets: u64,
    /// Bytes of the frames as the program saw them.
    pub bytes: u64,
    /// Packets the program dropped (XDP_DROP or XDP_ABORTED).
    pub dropped: u64,
    /// Packets the program passed with the monitor action.
    pub monitored: u64,
    /// Index within the flow (0 = its first packet) of the first dropped packet.
    pub first_drop: Option<u64>,
    /// Capture packet number of the first dropped packet.
    pub first_drop_packet: Option<u64>,
    /// Per app id (as reported by the program): packets and drops.
    pub apps: Vec<(u16, AppCount)>,
}

/// How much an app says about a flow: a call app over its protocol, a protocol over NAT
/// traversal, anything over custom rules.
fn specificity(app: App) -> u8 {
    match app.class() {
        Class::CallApp => 4,
        Class::Signalling | Class::Media => 3,
        Class::NatTraversal => 2,
        Class::Custom => 1,
        Class::None => 0,
    }
}

impl Flow {
    pub fn new(key: FlowKey, initiator: Endpoint, first_packet: u64) -> Flow {
        Flow {
            key,
            initiator,
            first_packet,
            packets: 0,
            bytes: 0,
            dropped: 0,
            monitored: 0,
            first_drop: None,
            first_drop_packet: None,
            apps: Vec::new(),
        }
    }

    /// Endpoint B: the one that is not the initiator.
    pub fn responder(&self) -> Endpoint {
        if self.initiator == self.key.a { self.key.b } else { self.key.a }
    }

    /// Records one packet: capture packet `number`, `len` bytes, the program's verdict.
    pub fn record(&mut self, number: u64, len: usize, dropped: bool, app: u16, action: Option<Action>) {
        if dropped && self.first_drop.is_none() {
            self.first_drop = Some(self.packets);
            self.first_drop_packet = Some(number);
        }
        self.packets += 1;
        self.bytes += len as u64;
        self.dropped += u64::from(dropped);
        self.monitored += u64::from(action == Some(Action::Monitor));
        let c = match self.apps.iter_mut().find(|(a, _)| *a == app) {
            Some((_, c)) => c,
            None => {
                self.apps.push((app, AppCount::default()));
                &mut self.apps.last_mut().expect("just pushed").1
            }
        };
        c.packets += 1;
        c.dropped += u64::from(dropped);
    }

    /// The flow's app: that of its dropped packets if any were dropped, else the most specific
    /// app seen, else unknown. Ties go to the app with more packets, then to the first seen.
    pub fn app(&self) -> App {
        let pick = |weight: fn(&AppCount) -> u64| {
            let mut best: Option<(App, u8, u64)> = None;
            for (id, c) in &self.apps {
                let Some(app) = App::from_u16(*id) else { continue };
                let w = weight(c);
                if app == App::Unknown || w == 0 {
                    continue;
                }
                let s = specificity(app);
                if best.is_none_or(|(_, bs, bw)| (s, w) > (bs, bw)) {
                    best = Some((app, s, w));
                }
            }
            best.map(|b| b.0)
        };
        pick(|c| c.dropped).or_else(|| pick(|c| c.packets)).unwrap_or(App::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voipfilter_common::user::frame::Frame;

    fn ep(s: &str) -> Endpoint {
        s.parse().unwrap()
    }

    #[test]
    fn endpoints_round_trip() {
        for s in ["192.168.1.2:5060", "[2001:db8::1]:443", "[fe80::3207:4dff:fea3:5fa7]:0"] {
            assert_eq!(ep(s).to_string(), s);
        }
        for bad in ["1.2.3.4", "1.2.3.4:70000", "[1.2.3.4]:1", "2001:db8::1:80", "x:1", ""] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
        assert_eq!(parse_proto("udp"), Some(17));
        assert_eq!(parse_proto("ICMPV6"), Some(58));
        assert_eq!(parse_proto("IP-99"), Some(99));
        assert_eq!(proto_name(99), "IP-99");
    }

    #[test]
    fn both_directions_are_one_flow() {
        let mut k = Keyer::default();
        let fwd = Frame::udp4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 5060, b"x").build();
        let rev = Frame::udp4([10, 0, 0, 2], 5060, [10, 0, 0, 1], 40000, b"y").build();
        let (k1, s1) = k.key(&fwd).unwrap();
        let (k2, s2) = k.key(&rev).unwrap();
        assert_eq!(k1, k2);
        assert_eq!(k1.to_string(), "UDP 10.0.0.1:40000 10.0.0.2:5060");
        assert_eq!((s1, s2), (ep("10.0.0.1:40000"), ep("10.0.0.2:5060")));
        let tcp = Frame::tcp4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 5060, 2, b"").build();
        assert_ne!(k.key(&tcp).unwrap().0, k1, "the protocol is part of the key");
        let icmp = Frame::raw4([10, 0, 0, 1], [10, 0, 0, 2], proto::ICMP, &[8, 0, 0, 0]).build();
        assert_eq!(k.key(&icmp).unwrap().0.to_string(), "ICMP 10.0.0.1:0 10.0.0.2:0");
        let mut arp = fwd.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(k.key(&arp), None);
    }

    #[test]
    fn later_fragments_join_their_first_fragment() {
        let mut k = Keyer::default();
        let first = Frame::udp4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 5060, &[0; 64]).fragment(7, 0, true).build();
        let later = Frame::raw4([10, 0, 0, 1], [10, 0, 0, 2], proto::UDP, &[0; 64]).fragment(7, 72, false).build();
        let orphan = Frame::raw4([10, 0, 0, 1], [10, 0, 0, 2], proto::UDP, &[0; 64]).fragment(8, 72, false).build();
        let (k1, _) = k.key(&first).unwrap();
        assert_eq!(k.key(&later).unwrap().0, k1);
        assert_eq!(k.key(&orphan).unwrap().0.to_string(), "UDP 10.0.0.1:0 10.0.0.2:0");
    }

    #[test]
    fn flow_counts_and_app_choice() {
        let key = FlowKey::new(17, ep("10.0.0.2:5060"), ep("10.0.0.1:40000"));
        assert_eq!(key.a, ep("10.0.0.1:40000"));
        let mut f = Flow::new(key, ep("10.0.0.2:5060"), 3);
        assert_eq!(f.responder(), ep("10.0.0.1:40000"));
        f.record(3, 100, false, App::Unknown as u16, Some(Action::Pass));
        f.record(4, 100, false, App::Stun as u16, Some(Action::Monitor));
        assert_eq!(f.app(), App::Stun, "a named app beats unknown");
        f.record(5, 100, false, App::WhatsApp as u16, Some(Action::Pass));
        assert_eq!(f.app(), App::WhatsApp, "a call app is more specific than STUN");
        f.record(9, 100, true, App::Rtp as u16, Some(Action::Drop));
        f.record(10, 100, true, App::Rtp as u16, Some(Action::Drop));
        assert_eq!(f.app(), App::Rtp, "the app of the dropped packets wins");
        assert_eq!((f.packets, f.dropped, f.monitored, f.bytes), (5, 2, 1, 500));
        assert_eq!((f.first_drop, f.first_drop_packet), (Some(3), Some(9)));
        let g = Flow::new(key, ep("10.0.0.1:40000"), 1);
        assert_eq!(g.app(), App::Unknown);
    }
}
