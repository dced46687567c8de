//! The per-packet decision: parse, user rules, flow state, detectors, policy.
//!
//! ```text
//! plain IPv4 UDP/TCP, no user rules ─ express lane ([`express`]) ─► established flow / stateless: app
//!                                                                   anything else: the full path below
//! frame ─ parse (VLAN, IPv4/IPv6, GTP-U/GRE inner) ─┬─ not IP / truncated ──────────────► pass, count reason
//!                                                    ├─ prefix rule, port rule (user) ────► rule's app+action
//!                                                    ├─ later fragment ─ FRAGS ───────────► first fragment's app
//!                                                    ├─ UDP ─ FLOWS hit: decided/not-call ► app (fast path)
//!                                                    │        miss: EXPECT (SDP/STUN/call endpoints) ► app
//!                                                    │        inspect: STUN, RTP/RTCP, SIP(+SDP), IAX2,
//!                                                    │                 H.323 RAS, MGCP, Megaco ─► app
//!                                                    └─ TCP ─ TCP_CALLS hit ─────────────► app
//!                                                             payload: SIP, H.323, SCCP, STUN, RTP/4571
//! app ─ POLICY[app] ─► drop / monitor / pass
//! ```
//!
//! Everything here is generic over [`Bytes`] (the packet) and [`Tables`] (the maps), so the same
//! code runs in the XDP program and in host tests with [`crate::user::tables::HostTables`].

use crate::{
    Action, App, Bytes, Reason,
    app::MAX_APPS,
    classify::Verdict,
    detect::{self, Endpoint, Payload},
    lists::{ListEntry, Listed},
    flow::{
        Config, CONFIG_LISTS4, CONFIG_LISTS6, CONFIG_PORT_RULES, CONFIG_PREFIX4_RULES, CONFIG_PREFIX6_RULES, Flow, FlowKey,
        FlowKey4, FlowState, FragKey, HINT_STUN, udp_untracked,
    },
    packet::{self, Frag, GTPU_PORT, Headers, Plain4, proto},
    rtp_state::{self, RtpVerdict},
    rules::{PortKey, Rule, RuleLookup},
};

/// The maps the engine reads and writes.
pub trait Tables: RuleLookup {
    fn config(&self) -> Config;
    /// Action for an app id (below `MAX_APPS`).
    fn policy(&self, app: u16) -> Action;
    /// Runs `f` on the flow's record in place; `None` when the flow is not in the table.
    fn flow_update<R, F: FnOnce(&mut Flow) -> R>(&self, key: &FlowKey, f: F) -> Option<R>;
    fn flow_insert(&self, key: &FlowKey, flow: &Flow);
    /// [`Tables::flow_update`] of the packet's flow, found from its headers: an IPv4 flow by
    /// its 16-byte `FLOWS4` key, built directly ([`Tables::flow4_update`]), without the 40-byte
    /// `FlowKey`.
    #[inline(always)]
    fn flow_update_headers<R, F: FnOnce(&mut Flow) -> R>(&self, h: &Headers, f: F) -> Option<R> {
        if h.ipv6 { self.flow_update(&FlowKey::new(h).0, f) } else { self.flow4_update(&FlowKey4::new(h), f) }
    }
    /// The app expected on an endpoint (address, port, L4 protocol), if any. (Parts, not an
    /// `EndpointKey`: the kernel side builds the key in a per-CPU scratch slot to save stack.)
    fn expect_get(&self, addr: &[u8; 16], port: u16, proto: u8) -> Option<u16>;
    fn expect_insert(&self, addr: &[u8; 16], port: u16, proto: u8, app: u16);
    fn frag_get(&self, key: &FragKey) -> Option<u16>;
    fn frag_insert(&self, key: &FragKey, app: u16);
    /// The app of the packet's TCP connection in `TCP_CALLS`, if it is a call. From the headers:
    /// the kernel finds the slot with `flow::tcp_slot` and builds the key only to compare it
    /// with a taken slot's.
    fn tcp_get(&self, h: &Headers) -> Option<u16>;
    /// [`Tables::flow_update`] of an IPv4 flow by its `FLOWS4` key (the express lane).
    #[inline(always)]
    fn flow4_update<R, F: FnOnce(&mut Flow) -> R>(&self, key: &FlowKey4, f: F) -> Option<R> {
        self.flow_update(&key.widen(), f)
    }
    /// [`Tables::tcp_get`] of a plain IPv4 TCP segment (the express lane; the kernel finds the
    /// slot from the addresses and ports, and builds the key only to compare it in a taken slot).
    #[inline(always)]
    fn tcp_get4(&self, v: &Plain4) -> Option<u16> {
        let mut h = Headers::zeroed();
        v.fill(&mut h);
        self.tcp_get(&h)
    }
    fn tcp_insert(&self, key: &FlowKey, app: u16);
    /// The app-list entry of an address's longest matching prefix (IPv4 in the first 4 bytes).
    fn list_entry(&self, addr: &[u8; 16], ipv6: bool) -> Option<ListEntry>;
    /// What the port-scoped list in `slot` says of a UDP flow with these ports.
    fn list_ported(&self, slot: u8, sport: u16, dport: u16) -> Listed;
}

/// The result of the fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fast {
    /// Decided without inspecting the payload.
    Done(Verdict),
    /// The packet needs the detectors: run [`stateless`], then [`inspect_parsed`] with its
    /// result, on the headers [`fast`] parsed (in the kernel: two more programs reached by tail
    /// calls, each with its own stack and verifier budget; the headers and the result go
    /// through per-CPU slots).
    Inspect,
}

/// Decides what to do with one frame: the fast path, then inspection if needed.
#[inline(always)]
pub fn process<B: Bytes + ?Sized, T: Tables>(p: &B, t: &T) -> Verdict {
    // As the XDP program: the express lane first for plain IPv4 packets.
    if let Some(v) = packet::plain_v4(p).and_then(|v| express(p, t, &v)) {
        return v;
    }
    let mut h = Headers::zeroed();
    if let Err(reason) = packet::parse_into(p, &mut h, true) {
        return Verdict { app: App::Unknown as u16, action: Action::Pass, reason };
    }
    match fast(p, t, &h) {
        Fast::Done(v) => v,
        Fast::Inspect => {
            let found = stateless(p, &h, t);
            inspect_parsed(p, &h, t, found)
        }
    }
}

/// Everything that needs no payload inspection: user rules, later fragments, established
/// flows (UDP in `FLOWS`, TCP in `TCP_CALLS`), and traffic that cannot carry calls. `h` are
/// the packet's parsed headers (in the kernel possibly read back from the hand-over slot:
/// offsets are checked against constants before use).
#[inline(always)]
pub fn fast<B: Bytes + ?Sized, T: Tables>(p: &B, t: &T, h: &Headers) -> Fast {
    let Some(pl) = payload(p, h) else {
        return Fast::Done(verdict(t, 0, h.reason));
    };
    let cfg = t.config();
    if let Some(rule) = user_rule(h, t, cfg.flags) {
        return Fast::Done(rule_verdict(rule, h.reason));
    }
    if h.frag == Frag::Later {
        let app = t.frag_get(&FragKey::new(h)).unwrap_or(0);
        return Fast::Done(verdict(t, app, h.reason));
    }
    if !h.has_ports() {
        return Fast::Done(verdict(t, 0, h.reason));
    }
    let known = match h.proto {
        proto::UDP => {
            if untracked(h) {
                Some(0)
            } else {
                let (len, limit) = (p.len() as u64, cfg.inspect_limit);
                t.flow_update_headers(h, |f| established(f, len, limit, || detect::sip::may_start_sdp_message(&pl))).flatten()
            }
        }
        proto::TCP => tcp_known(t.tcp_get(h), &pl, h.sport, h.dport),
        _ => Some(0),
    };
    match known {
        Some(app) => Fast::Done(verdict(t, app, h.reason)),
        None => Fast::Inspect,
    }
}

/// The express lane of plain IPv4 UDP and TCP ([`packet::plain_v4`]): the [`fast`] path's
/// decisions (user rules included) on headers held in registers, without filling [`Headers`].
/// `None` hands the packet to the full path: a GTP-U port, an undecided or unknown UDP flow, a
/// TCP segment that may start a call, or a taken `TCP_CALLS` slot that is not the
/// connection's. Its verdicts are the full path's (host tests compare them on every packet).
#[inline(always)]
pub fn express<B: Bytes + ?Sized, T: Tables>(p: &B, t: &T, v: &Plain4) -> Option<Verdict> {
    let pl = payload_at(p, v.payload_off, v.end)?;
    let cfg = t.config();
    if let Some(rule) = user_rule_v4(t, cfg.flags, v.src, v.dst, true, v.proto, v.sport, v.dport) {
        return Some(rule_verdict(rule, Reason::Ok));
    }
    let app = if v.proto == proto::UDP {
        if v.sport == GTPU_PORT || v.dport == GTPU_PORT {
            return None;
        }
        if untracked_to(v.dst[0], false, v.sport, v.dport) {
            0
        } else {
            let (len, limit) = (p.len() as u64, cfg.inspect_limit);
            let key = FlowKey4::of(v.src, v.sport, v.dst, v.dport, proto::UDP);
            t.flow4_update(&key, |f| established(f, len, limit, || detect::sip::may_start_sdp_message(&pl)))??
        }
    } else {
        tcp_known(t.tcp_get4(v), &pl, v.sport, v.dport)?
    };
    Some(verdict(t, app, Reason::Ok))
}

/// A TCP segment's app from its connection's `TCP_CALLS` entry, or `None` when the detectors
/// must see it: SIP messages of a known SIP connection still go to them for their SDP (see
/// `established`), and so does a segment of an unknown connection that could start a call.
#[inline(always)]
fn tcp_known<B: Bytes + ?Sized>(call: Option<u16>, pl: &Payload<'_, B>, sport: u16, dport: u16) -> Option<u16> {
    match call {
        Some(app) if app == App::Sip as u16 && detect::sip::may_start_sdp_message(pl) => None,
        Some(app) => Some(app),
        None if tcp_candidate(pl, sport, dport) => None,
        None => Some(0),
    }
}

/// UDP that is never a call and never tracked: infrastructure ports ([`udp_untracked`]), and
/// datagrams to a group address (IPv4 multicast 224.0.0.0/4 and limited broadcast, IPv6
/// multicast ff00::/8: SSDP, mDNS, IPTV, discovery protocols). Calls are unicast; a STUN or
/// RTP-shaped multicast stream must not turn a LAN's discovery traffic into "calls", nor fill
/// the flow table.
#[inline(always)]
fn untracked(h: &Headers) -> bool {
    untracked_to(h.dst_words()[0].to_ne_bytes()[0], h.ipv6, h.sport, h.dport)
}

/// [`untracked`] from the destination address's first byte and the ports.
#[inline(always)]
fn untracked_to(d0: u8, ipv6: bool, sport: u16, dport: u16) -> bool {
    let group = if ipv6 { d0 == 0xFF } else { d0 >= 224 };
    group || udp_untracked(sport, dport)
}

/// The app of an established UDP flow (counting the packet), or `None` when the packet
/// must be inspected: the flow is still undecided, a generic STUN flow may reveal its app, or
/// a SIP flow carries a message whose SDP may announce the media of another call (a trunk
/// carries many calls on one 5-tuple). `sdp` tells whether the payload may be such a message;
/// only SIP flows ask.
#[inline(always)]
fn established<F: FnOnce() -> bool>(f: &mut Flow, len: u64, limit: u32, sdp: F) -> Option<u16> {
    let refinable = f.app == App::Stun as u16 || f.app == App::Turn as u16;
    if f.state == FlowState::Decided as u8 && f.app == App::Sip as u16 && sdp() {
        return None;
    }
    if f.state == FlowState::NotCall as u8 || (f.state == FlowState::Decided as u8 && !(refinable && (f.inspected as u32) < limit)) {
        f.packets += 1;
        f.bytes += len;
        return Some(if f.state == FlowState::Decided as u8 { f.app } else { 0 });
    }
    None
}

/// Whether a TCP segment without a known call verdict could start a call protocol: a
/// payload whose first byte fits STUN/short RFC 4571 frames/TPKT (0-3), SIP text (a letter),
/// TeamSpeak's TCP prefix (0xF4), anything on the SCCP port, or an RFC 4571 frame of any length
/// covering the segment.
#[inline(always)]
fn tcp_candidate<B: Bytes + ?Sized>(pl: &Payload<'_, B>, sport: u16, dport: u16) -> bool {
    let Some(b0) = first_byte(pl) else { return false };
    b0 < 4 || (b0 | 0x20).is_ascii_lowercase() || sport == 2000 || dport == 2000 || b0 == 0xF4 || detect::rtp::rfc4571_frame(pl)
}

// SDP expectations on (both in the kernel and in the host model). Switch kept so that SDP can be
// taken out again should the parser ever stop passing the verifier: its result is written into
// plain fields (`detect::sdp::parse_into`, `Media`), never built from an `Option` (LLVM then
// reused a packet pointer for the undefined payload and masked it, which the verifier refuses).
const SDP_IN_ENGINE: bool = true;

/// What the stateless detectors found in one packet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// App id, 0 when none.
    pub app: u16,
    /// The packet was a STUN message.
    pub stun: u8,
    pub _pad: [u8; 5],
}

/// Slow path, first half: the detectors that need no flow state (STUN, SIP and its SDP,
/// MGCP, Megaco, IAX2, H.323, SCCP, RTP over TCP). Expectations they imply (SDP media, STUN
/// addresses) are recorded here. [`stateless_binary`], then [`stateless_text`] if it asks.
#[inline(always)]
pub fn stateless<B: Bytes + ?Sized, T: Tables>(p: &B, h: &Headers, t: &T) -> Found {
    let found = match stateless_binary(p, h, t) {
        Stateless::Done(f) => f,
        Stateless::Text => stateless_text(p, h, t),
    };
    if wants_apps(h, &found) { stateless_apps(p, h) } else { found }
}

/// Whether a packet the protocol detectors left unclaimed goes on to the app detectors
/// ([`stateless_apps`]; in the kernel a program of its own): UDP only.
#[inline(always)]
pub fn wants_apps(h: &Headers, found: &Found) -> bool {
    found.app == 0 && h.proto == proto::UDP
}

/// The one-packet app detectors (Zoom, Discord, TeamSpeak, Telegram, ...; `detect::apps`) on a
/// UDP payload the protocol detectors did not claim.
#[inline(always)]
pub fn stateless_apps<B: Bytes + ?Sized>(p: &B, h: &Headers) -> Found {
    let Some(pl) = payload(p, h).filter(|_| h.proto == proto::UDP) else { return Found::default() };
    Found { app: detect::apps::detect(&pl, h.sport, h.dport), ..Found::default() }
}

/// What [`stateless_binary`] leaves to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stateless {
    Done(Found),
    /// The payload starts like text: run [`stateless_text`] (in the kernel: a tail call into a
    /// program of its own, so that the text detectors, SDP above all, have their own verifier
    /// budget).
    Text,
}

/// The binary detectors: STUN/TURN, H.323 and RTP over TCP, SCCP, and (for payloads that do not
/// start like text) IAX2 and H.323 RAS.
#[inline(always)]
pub fn stateless_binary<B: Bytes + ?Sized, T: Tables>(p: &B, h: &Headers, t: &T) -> Stateless {
    let Some(pl) = payload(p, h).filter(|_| h.has_ports()) else { return Stateless::Done(Found::default()) };
    let Some(b0) = first_byte(&pl) else { return Stateless::Done(Found::default()) };
    let tcp = h.proto == proto::TCP;
    if b0 < 4 || b0 == 0xFF {
        let app = if tcp { stun_tcp(t, &pl) } else { stun_udp(t, &pl) };
        if app != 0 {
            return Stateless::Done(Found { app, stun: 1, ..Found::default() });
        }
    }
    let text = (0x21..0x80).contains(&b0);
    let app = if tcp {
        let mut app = 0;
        if b0 < 4 || detect::rtp::rfc4571_frame(&pl) {
            app = binary_tcp(&pl);
        }
        if app == 0 && detect::sccp::detect(&pl, h.sport, h.dport) {
            app = App::Sccp as u16;
        }
        if app == 0 && b0 == 0xF4 && detect::teamspeak::tcp(&pl) {
            app = App::TeamSpeak as u16;
        }
        app
    } else if text {
        0
    } else {
        legacy_udp(&pl, h.sport, h.dport)
    };
    if app == 0 && text {
        return Stateless::Text;
    }
    Stateless::Done(Found { app, ..Found::default() })
}

/// The text detectors: SIP (with SDP) on UDP and TCP; MGCP, Megaco and last IAX2 / H.323 RAS
/// on UDP (the order of the single-program engine).
#[inline(always)]
pub fn stateless_text<B: Bytes + ?Sized, T: Tables>(p: &B, h: &Headers, t: &T) -> Found {
    let Some(pl) = payload(p, h).filter(|_| h.has_ports()) else { return Found::default() };
    let mut app = sip_app(t, &pl);
    if app == 0 && detect::sip::ping_on_sip_port(&pl, h.sport, h.dport) {
        app = App::Sip as u16;
    }
    if h.proto != proto::TCP {
        if app == 0 {
            app = text_udp(&pl);
        }
        if app == 0 {
            // Last: the IAX2 element walk multiplies the verifier's work for whatever follows it.
            app = legacy_udp(&pl, h.sport, h.dport);
        }
    }
    Found { app, ..Found::default() }
}

/// Slow path, second half: flow state. The packet's flow is new or undecided (or a STUN flow
/// whose app may be refined), or it is a candidate TCP segment; `found` is what
/// [`stateless`] saw in it. Runs the stateful detectors (RTP/RTCP) and updates the tables.
/// `h` may live in map memory (offsets are checked before packet access).
#[inline(always)]
pub fn inspect_parsed<B: Bytes + ?Sized, T: Tables>(p: &B, h: &Headers, t: &T, found: Found) -> Verdict {
    let Some(pl) = payload(p, h).filter(|_| h.has_ports()) else {
        return verdict(t, 0, h.reason);
    };
    let cfg = t.config();
    let app = match h.proto {
        proto::UDP => udp(p, &pl, h, t, &cfg, &found),
        proto::TCP => tcp(h, t, found.app),
        _ => 0,
    };
    if h.frag == Frag::First && app != 0 {
        t.frag_insert(&FragKey::new(h), app);
    }
    verdict(t, app, h.reason)
}

/// The packet's L4 payload, with its offsets checked against constants: `h` may live in map
/// memory (the hand-over slot), whose values carry no bounds for the verifier. The offsets are
/// read once here; everything after uses the returned window.
#[inline(always)]
fn payload<'a, B: Bytes + ?Sized>(p: &'a B, h: &Headers) -> Option<Payload<'a, B>> {
    payload_at(p, h.payload_off, h.end)
}

/// The payload window `[off, end)`, if both are within the parser's bounds.
#[inline(always)]
fn payload_at<B: Bytes + ?Sized>(p: &B, off: usize, end: usize) -> Option<Payload<'_, B>> {
    if off > MAX_PAYLOAD_OFF || end > MAX_FRAME {
        return None;
    }
    Some(Payload::new(p, off, end))
}

/// Largest payload offset the parser produces (L4 offset bound plus a full TCP header).
const MAX_PAYLOAD_OFF: usize = packet::MAX_L4_OFF + 60;
/// Largest frame length XDP hands us (jumbo frames included).
const MAX_FRAME: usize = packet::MAX_FRAME;

#[inline(always)]
fn verdict<T: Tables>(t: &T, app: u16, reason: Reason) -> Verdict {
    if app == 0 || app as u32 >= MAX_APPS {
        return Verdict { app: 0, action: Action::Pass, reason };
    }
    Verdict { app, action: t.policy(app), reason }
}

/// User prefix and port rules, skipping the lookups of empty tables.
#[inline(always)]
fn user_rule<T: Tables>(h: &Headers, t: &T, flags: u32) -> Option<Rule> {
    if h.ipv6 {
        if flags & CONFIG_PREFIX6_RULES != 0 && let Some(r) = t.prefix6(h.dst).or_else(|| t.prefix6(h.src)) {
            return Some(r);
        }
        return port_rule(t, flags, h.has_ports(), h.proto, h.sport, h.dport);
    }
    user_rule_v4(t, flags, h.src4(), h.dst4(), h.has_ports(), h.proto, h.sport, h.dport)
}

/// [`user_rule`] of an IPv4 packet, from its parts (the express lane has no [`Headers`]).
#[inline(always)]
#[allow(clippy::too_many_arguments, reason = "the parts of the headers the express lane keeps in registers")]
fn user_rule_v4<T: Tables>(t: &T, flags: u32, src: [u8; 4], dst: [u8; 4], ports: bool, proto: u8, sport: u16, dport: u16) -> Option<Rule> {
    if flags & CONFIG_PREFIX4_RULES != 0 && let Some(r) = t.prefix4(dst).or_else(|| t.prefix4(src)) {
        return Some(r);
    }
    port_rule(t, flags, ports, proto, sport, dport)
}

#[inline(always)]
fn port_rule<T: Tables>(t: &T, flags: u32, ports: bool, proto: u8, sport: u16, dport: u16) -> Option<Rule> {
    if flags & CONFIG_PORT_RULES != 0 && ports {
        return t.port(PortKey::new(proto, dport)).or_else(|| t.port(PortKey::new(proto, sport)));
    }
    None
}

/// The verdict of a user rule (an app id the program does not know counts as `Custom`, an
/// unknown action as pass).
#[inline(always)]
fn rule_verdict(rule: Rule, reason: Reason) -> Verdict {
    let app = if (rule.app as u32) < MAX_APPS { rule.app } else { App::Custom as u16 };
    let action = Action::from_u8(rule.action).unwrap_or(Action::Pass);
    Verdict { app, action, reason }
}

#[inline(always)]
fn udp<B: Bytes + ?Sized, T: Tables>(p: &B, pl: &Payload<'_, B>, h: &Headers, t: &T, cfg: &Config, found: &Found) -> u16 {
    if untracked(h) {
        return 0;
    }
    let (key, dir) = FlowKey::new(h);
    let len = p.len() as u64;
    let limit = cfg.inspect_limit;
    // Set when this packet decided (or refined) the flow's app.
    let mut decided = 0;
    let app = match t.flow_update(&key, |f| {
        f.packets += 1;
        f.bytes += len;
        step(f, pl, h, dir, limit, found, &mut decided)
    }) {
        Some(app) => app,
        None => {
            // A new flow: insert an empty record, then update it in place. (Building the record
            // on the stack costs 64 bytes of the inspection program's 512, and LLVM zeroes it
            // with a memset call.)
            let mut inherited = expected(t, h);
            let listed = listed(t, h, cfg.flags);
            if inherited == 0 {
                inherited = listed.app;
            }
            let inherited = named(inherited, listed.signal as u8);
            t.flow_insert(&key, &NEW_FLOW);
            t.flow_update(&key, |f| {
                f.packets = 1;
                f.bytes = len;
                f.listed = listed.signal as u8;
                if inherited != 0 {
                    f.state = FlowState::Decided as u8;
                    f.app = inherited;
                    f.decided_at = 1;
                    inherited
                } else {
                    step(f, pl, h, dir, limit, found, &mut decided)
                }
            })
            .unwrap_or(0)
        }
    };
    if decided != 0 {
        publish_endpoints(t, h, decided);
    }
    app
}

/// The record a new flow starts from (a static: in the kernel it lives in read-only map memory,
/// which the map helpers accept as a value).
static NEW_FLOW: Flow = Flow {
    app: 0,
    state: FlowState::Inspecting as u8,
    inspected: 0,
    hints: 0,
    decided_at: 0,
    listed: 0,
    _pad: 0,
    media: crate::rtp_state::RtpState::NEW,
    track: detect::track::AppTrack::NEW,
    packets: 0,
    bytes: 0,
};

/// An app that signalling or an earlier call flow announced for one of the packet's endpoints.
#[inline(always)]
fn expected<T: Tables>(t: &T, h: &Headers) -> u16 {
    if let Some(app) = t.expect_get(&h.dst, h.dport, h.proto) {
        return app;
    }
    t.expect_get(&h.src, h.sport, h.proto).unwrap_or(0)
}

/// What the app prefix lists say of a new UDP flow (lookups skipped while no list is loaded).
#[inline(always)]
fn listed<T: Tables>(t: &T, h: &Headers, flags: u32) -> Listed {
    let family = if h.ipv6 { CONFIG_LISTS6 } else { CONFIG_LISTS4 };
    if flags & family == 0 {
        return Listed::default();
    }
    let a = listed_addr(t, &h.dst, h);
    let b = listed_addr(t, &h.src, h);
    Listed { app: if a.app != 0 { a.app } else { b.app }, signal: if a.signal != 0 { a.signal } else { b.signal } }
}

/// What the lists containing one address of the flow say of it.
#[inline(always)]
fn listed_addr<T: Tables>(t: &T, addr: &[u8; 16], h: &Headers) -> Listed {
    match t.list_entry(addr, h.ipv6) {
        Some(mut e) => {
            let ported = if e.ported != 0 { t.list_ported(e.ported - 1, h.sport, h.dport) } else { Listed::default() };
            // UDP 443 is HTTP/3 (QUIC) as often as it is a relay: a list without ports never
            // decides it alone (HTTPS must pass); a list naming 443 in its ports still does.
            if h.sport == 443 || h.dport == 443 {
                e.app = 0;
            }
            e.listed(ported)
        }
        None => Listed::default(),
    }
}

/// The app of a call that a generic detector recognised, as a signal-scoped prefix list names it
/// (STUN to a Google Meet relay is Google Meet's).
#[inline(always)]
fn named(app: u16, listed: u8) -> u16 {
    let generic = app == App::Stun as u16
        || app == App::Turn as u16
        || app == App::Rtp as u16
        || app == App::Rtcp as u16
        || app == App::Srtp as u16
        || app == App::Dtls as u16;
    if generic && listed != 0 { listed as u16 } else { app }
}

/// One packet of a tracked UDP flow: the flow's app, inspecting the packet if the flow is
/// still undecided.
#[inline(always)]
fn step<B: Bytes + ?Sized>(
    f: &mut Flow,
    pl: &Payload<'_, B>,
    h: &Headers,
    dir: u8,
    limit: u32,
    found: &Found,
    decided: &mut u16,
) -> u16 {
    if f.state == FlowState::Decided as u8 {
        // A generic STUN/TURN flow may reveal its app in a later message (attributes).
        if (f.app == App::Stun as u16 || f.app == App::Turn as u16) && (f.inspected as u32) < limit {
            f.inspected += 1;
            let app = found.app;
            if found.stun != 0 && app != App::Stun as u16 && app != App::Turn as u16 {
                f.app = app;
                *decided = app;
            }
        }
        return f.app;
    }
    if f.state == FlowState::NotCall as u8 {
        return 0;
    }
    f.inspected = f.inspected.saturating_add(1);
    let app = if found.app != 0 {
        if found.stun != 0 {
            f.hints |= HINT_STUN;
        }
        found.app
    } else {
        let m = media(pl, h, dir, f);
        if m != 0 { m } else { detect::track::update(&mut f.track, pl, h.sport, h.dport, dir, f.packets) }
    };
    let app = named(app, f.listed);
    if app != 0 {
        f.state = FlowState::Decided as u8;
        f.app = app;
        f.decided_at = f.inspected;
        *decided = app;
    } else if f.inspected as u32 >= limit {
        f.state = FlowState::NotCall as u8;
    }
    app
}

/// RTP/RTCP, confirmed over a few packets of the flow.
#[inline(always)]
fn media<B: Bytes + ?Sized>(pl: &Payload<'_, B>, h: &Headers, dir: u8, f: &mut Flow) -> u16 {
    match first_byte(pl) {
        Some(b0) if b0 & 0xC0 == 0x80 && !detect::rtp::excluded_ports(h.sport, h.dport) => {
            // A compound RTCP datagram (RFC 3550 §6.1) proves itself in one packet.
            if detect::rtp::compound_rtcp(pl) {
                return App::Rtcp as u16;
            }
            rtp_app(pl, dir, &mut f.media)
        }
        _ => 0,
    }
}

#[inline(always)]
fn first_byte<B: Bytes + ?Sized>(pl: &Payload<'_, B>) -> Option<u8> {
    pl.u8_at(0)
}

/// Detector families run in BPF functions of their own (`#[inline(never)]`): their stack
/// frames are then siblings instead of adding up in the 512 bytes a BPF program has.
/// STUN/TURN over UDP (one function per transport: the detector specialises on it).
#[inline(never)]
fn stun_udp<B: Bytes + ?Sized, T: Tables>(t: &T, pl: &Payload<'_, B>) -> u16 {
    stun_app(t, pl, false)
}

/// STUN/TURN over TCP (RFC 4571 framing, several messages per segment).
#[inline(never)]
fn stun_tcp<B: Bytes + ?Sized, T: Tables>(t: &T, pl: &Payload<'_, B>) -> u16 {
    stun_app(t, pl, true)
}

/// STUN/TURN: the app, with the endpoints the message announced expected to carry it.
#[inline(always)]
fn stun_app<B: Bytes + ?Sized, T: Tables>(t: &T, pl: &Payload<'_, B>, tcp: bool) -> u16 {
    // Each announced address is published as it is decoded (no array of them on the stack).
    match detect::stun::detect_each(pl, tcp, |app, ep, _| publish_stun(t, ep, app as u16)) {
        Some(s) => s.app as u16,
        None => 0,
    }
}

/// IAX2 and H.323 RAS (binary, port-gated).
#[inline(never)]
fn legacy_udp<B: Bytes + ?Sized>(pl: &Payload<'_, B>, sport: u16, dport: u16) -> u16 {
    if detect::iax::detect(pl, sport, dport) {
        return App::Iax2 as u16;
    }
    if detect::h323::detect_ras(pl, sport, dport) {
        return App::H323 as u16;
    }
    0
}

/// MGCP and Megaco (text).
#[inline(never)]
fn text_udp<B: Bytes + ?Sized>(pl: &Payload<'_, B>) -> u16 {
    if detect::mgcp::detect(pl) {
        return App::Mgcp as u16;
    }
    if detect::megaco::detect(pl) {
        return App::Megaco as u16;
    }
    0
}

/// One packet of RTP/RTCP confirmation.
#[inline(never)]
fn rtp_app<B: Bytes + ?Sized>(pl: &Payload<'_, B>, dir: u8, media: &mut crate::rtp_state::RtpState) -> u16 {
    let hdr = detect::rtp::header(pl);
    match rtp_state::update(media, dir, hdr.as_ref()) {
        RtpVerdict::Confirmed(detect::rtp::RtpKind::Rtp) => App::Rtp as u16,
        RtpVerdict::Confirmed(detect::rtp::RtpKind::Rtcp) => App::Rtcp as u16,
        _ => 0,
    }
}

/// SIP, on UDP or TCP; the media its SDP announces are expected as RTP and RTCP.
#[inline(never)]
fn sip_app<B: Bytes + ?Sized, T: Tables>(t: &T, pl: &Payload<'_, B>) -> u16 {
    let Some(sip) = detect::sip::detect(pl) else { return 0 };
    // SDP only in messages that can carry an offer or answer, parsed from one place (the
    // verifier walks each call site of the costly scan separately).
    let carries_sdp = sip.may_carry_sdp();
    let body = pl.skip(sip.offset as usize);
    let mut sdp = detect::sdp::Media::default();
    if SDP_IN_ENGINE && carries_sdp {
        detect::sdp::parse_into(&body, &mut sdp);
    }
    // The media endpoints (`Sdp::endpoints`, without building its array on the BPF stack):
    // RTP on each stream's port, RTCP on the next (RFC 3550 §11); nothing for the unspecified
    // address (a stream on hold, RFC 3264 §8.4).
    if sdp.family != 0 {
        let addr = sdp.addr;
        if addr != [0; 16] {
            let mut i = 0;
            while i < 2 {
                let port = sdp.ports[i];
                if port != 0 {
                    t.expect_insert(&addr, port, proto::UDP, App::Rtp as u16);
                    if port < u16::MAX {
                        t.expect_insert(&addr, port + 1, proto::UDP, App::Rtcp as u16);
                    }
                }
                i += 1;
            }
        }
    }
    App::Sip as u16
}

/// A candidate TCP segment: a connection the stateless detectors recognised is remembered in
/// `TCP_CALLS` for its later segments (pure ACKs included).
#[inline(always)]
fn tcp<T: Tables>(h: &Headers, t: &T, found: u16) -> u16 {
    if let Some(app) = t.tcp_get(h) {
        return app;
    }
    if found != 0 {
        t.tcp_insert(&FlowKey::new(h).0, found);
    }
    found
}

/// H.323 (TPKT) and RTP over TCP (RFC 4571).
#[inline(never)]
fn binary_tcp<B: Bytes + ?Sized>(pl: &Payload<'_, B>) -> u16 {
    if detect::h323::detect_tcp(pl) {
        return App::H323 as u16;
    }
    if detect::rtp::header_tcp(pl).is_some() {
        return App::Rtp as u16;
    }
    0
}

/// Expects the endpoints a STUN message announced (peer, relayed, mapped addresses) to carry
/// the same app: the relayed and peer-to-peer legs of a call.
#[inline(always)]
fn publish_stun<T: Tables>(t: &T, ep: &Endpoint, app: u16) {
    if ep.port != 0 {
        t.expect_insert(&ep.addr, ep.port, proto::UDP, app);
    }
}

/// Expects a decided UDP flow's own endpoints to carry its app (ICE reuses a local endpoint
/// towards other peers), except well-known ports that other services share.
#[inline(always)]
fn publish_endpoints<T: Tables>(t: &T, h: &Headers, app: u16) {
    if h.sport >= 1024 {
        t.expect_insert(&h.src, h.sport, h.proto, app);
    }
    if h.dport >= 1024 {
        t.expect_insert(&h.dst, h.dport, h.proto, app);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        flow::{CONFIG_PORT_RULES, EndpointKey},
        user::{frame::Frame, tables::HostTables},
    };

    const CLIENT: [u8; 4] = [10, 1, 0, 5];
    const SERVER: [u8; 4] = [198, 51, 100, 7];

    /// `process`, after checking that the express lane, where it decides, decides as the full
    /// fast path does (every engine test below goes through here).
    fn run(t: &HostTables, f: &[u8]) -> Verdict {
        // Each on its own copy of the tables (both count the packet in its flow).
        if let Some(e) = express_of(&t.clone(), f) {
            let mut h = Headers::zeroed();
            packet::parse_into(f, &mut h, true).unwrap();
            assert_eq!(fast(f, &t.clone(), &h), Fast::Done(e), "the express lane and the fast path disagree");
        }
        process(f, t)
    }

    fn express_of(t: &HostTables, f: &[u8]) -> Option<Verdict> {
        packet::plain_v4(f).and_then(|v| express(f, t, &v))
    }

    #[test]
    fn the_express_lane_takes_established_flows_and_stateless_tcp() {
        let t = HostTables::new();
        // A call: the INVITE and the first media packet need the detectors, later ones do not.
        let invite = Frame::udp4(CLIENT, 5060, SERVER, 5060, &invite_with_sdp("10.1.0.5", 4000)).build();
        assert_eq!(express_of(&t, &invite), None);
        assert_eq!(run(&t, &invite).action, Action::Drop);
        let bye = Frame::udp4(CLIENT, 5060, SERVER, 5060, b"BYE sip:bob@example.com SIP/2.0\r\nCall-ID: a84b4c76e66710\r\n\r\n").build();
        assert_eq!(express_of(&t, &bye).map(|v| (v.app, v.action)), Some((App::Sip as u16, Action::Drop)));
        // A re-INVITE of the decided dialog may announce new media: the full path reads it.
        assert_eq!(express_of(&t, &invite), None);
        let media = Frame::udp4(SERVER, 30000, CLIENT, 4000, &rtp(1, 7)).build();
        assert_eq!(express_of(&t, &media), None);
        run(&t, &media);
        assert_eq!(express_of(&t, &Frame::udp4(CLIENT, 4000, SERVER, 30000, &rtp(2, 7)).build()).map(|v| v.action), Some(Action::Drop));
        // Stateless TCP, DNS and multicast; a TCP segment that could start a call is inspected.
        let ack = Frame::tcp4(CLIENT, 40000, SERVER, 443, 0x10, b"").build();
        assert_eq!(express_of(&t, &ack).map(|v| (v.app, v.action)), Some((0, Action::Pass)));
        assert_eq!(express_of(&t, &Frame::tcp4(CLIENT, 40000, SERVER, 5060, 0x18, b"OPTIONS sip:x SIP/2.0\r\n\r\n").build()), None);
        assert!(express_of(&t, &Frame::udp4(CLIENT, 40000, SERVER, 53, b"\x12\x34\x01\x00").build()).is_some());
        assert!(express_of(&t, &Frame::udp4(CLIENT, 40000, [239, 1, 2, 3], 5004, &rtp(1, 9)).build()).is_some());
        // A GTP-U packet goes to the tunnel parser.
        assert_eq!(express_of(&t, &Frame::udp4(CLIENT, 2152, SERVER, 2152, &[0x30, 0xFF, 0, 0, 0, 0, 0, 1]).build()), None);
        // User rules decide in the express lane too, before flow state.
        let mut t = HostTables::new();
        t.rules.ports.insert(PortKey::new(proto::TCP, 443), Rule::new(App::Custom, Action::Drop));
        t.rules.add_prefix4([198, 51, 100, 0], 24, Rule::new(App::Custom, Action::Monitor));
        assert_eq!(express_of(&t, &ack).map(|v| (v.app, v.action)), Some((App::Custom as u16, Action::Monitor)), "prefix rules first");
        let elsewhere = Frame::tcp4(CLIENT, 40000, [203, 0, 113, 5], 443, 0x10, b"").build();
        assert_eq!(express_of(&t, &elsewhere).map(|v| (v.app, v.action)), Some((App::Custom as u16, Action::Drop)));
        assert_eq!(express_of(&t, &Frame::tcp4(CLIENT, 40000, [203, 0, 113, 5], 80, 0x10, b"").build()).map(|v| v.action), Some(Action::Pass));
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut x = [0; 16];
        x[..4].copy_from_slice(&a);
        x
    }

    fn invite_with_sdp(media_ip: &str, port: u16) -> Vec<u8> {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 {media_ip}\r\ns=-\r\nc=IN IP4 {media_ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n"
        );
        format!(
            "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.0.5:5060;branch=z9hG4bK776asdhds\r\nMax-Forwards: 70\r\nTo: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=1928301774\r\nCall-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nContact: <sip:alice@10.1.0.5>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )
        .into_bytes()
    }

    fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(seq as u32 * 160).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xD5; 160]);
        p
    }

    fn stun_binding() -> Vec<u8> {
        // RFC 5769 §2.1 sample request, without its attributes (a bare binding request).
        let mut p = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
        p.extend_from_slice(&[0xB7, 0xE7, 0xA7, 0x01, 0xBC, 0x34, 0xD6, 0x86, 0xFA, 0x87, 0xDF, 0xAE]);
        p
    }

    #[test]
    fn sip_is_dropped_from_its_first_packet_on_any_port() {
        let t = HostTables::new();
        let f = Frame::udp4(CLIENT, 40000, SERVER, 15060, &invite_with_sdp("10.1.0.5", 49170)).build();
        let v = run(&t, &f);
        assert_eq!((v.app, v.action), (App::Sip as u16, Action::Drop));
        // The rest of the flow follows without inspection.
        let reply = Frame::udp4(SERVER, 15060, CLIENT, 40000, b"SIP/2.0 100 Trying\r\n\r\n").build();
        assert_eq!(run(&t, &reply).app, App::Sip as u16);
        let (key, _) = FlowKey::new(&packet::parse(&f[..]).unwrap());
        let flow = t.flows.borrow()[&key];
        assert_eq!((flow.state, flow.packets, flow.decided_at), (FlowState::Decided as u8, 2, 1));
    }

    #[test]
    fn rtp_announced_by_sdp_is_dropped_from_its_first_packet() {
        let t = HostTables::new();
        run(&t, &Frame::udp4(CLIENT, 5060, SERVER, 5060, &invite_with_sdp("10.1.0.5", 49170)).build());
        assert_eq!(t.expect.borrow().get(&EndpointKey::new(v4(CLIENT), 49170, proto::UDP)), Some(&(App::Rtp as u16)));
        assert_eq!(t.expect.borrow().get(&EndpointKey::new(v4(CLIENT), 49171, proto::UDP)), Some(&(App::Rtcp as u16)));
        let media = Frame::udp4([203, 0, 113, 9], 30000, CLIENT, 49170, &rtp(1, 7)).build();
        let v = run(&t, &media);
        assert_eq!((v.app, v.action), (App::Rtp as u16, Action::Drop));
    }

    #[test]
    fn rtp_without_signalling_is_dropped_within_three_packets() {
        let t = HostTables::new();
        let mut first_drop = None;
        for i in 0..6u16 {
            let f = Frame::udp4(CLIENT, 16384, SERVER, 16386, &rtp(100 + i, 0xDEAD_BEEF)).build();
            if run(&t, &f).action == Action::Drop && first_drop.is_none() {
                first_drop = Some(i);
            }
        }
        assert!(matches!(first_drop, Some(0..=2)), "first drop at {first_drop:?}");
    }

    #[test]
    fn stun_is_dropped_and_its_endpoints_are_expected() {
        let t = HostTables::new();
        let f = Frame::udp4(CLIENT, 50000, SERVER, 3478, &stun_binding()).build();
        let v = run(&t, &f);
        assert_eq!((v.app, v.action), (App::Stun as u16, Action::Drop));
        // Another flow from the same client endpoint (an ICE candidate pair) inherits the app.
        let peer = Frame::udp4(CLIENT, 50000, [203, 0, 113, 50], 61000, &[0x17, 0xFE, 0xFD, 0, 0]).build();
        assert_eq!(run(&t, &peer).app, App::Stun as u16);
    }

    #[test]
    fn ordinary_traffic_passes_and_gives_up_after_the_inspect_limit() {
        let t = HostTables::new();
        for i in 0..20u8 {
            let quic = Frame::udp4(CLIENT, 51000, SERVER, 443, &[0xC3, 0, 0, 0, 1, i, 2, 3, 4, 5, 6, 7, 8, 9]).build();
            assert_eq!(run(&t, &quic).action, Action::Pass);
        }
        let flow = *t.flows.borrow().values().next().unwrap();
        assert_eq!((flow.state, flow.packets), (FlowState::NotCall as u8, 20));
        // DNS is never tracked.
        let dns = Frame::udp4(CLIENT, 53000, SERVER, 53, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00").build();
        assert_eq!(run(&t, &dns).action, Action::Pass);
        assert_eq!(t.flows.borrow().len(), 1);
        // HTTP on the SIP port is not SIP.
        let http = Frame::tcp4(CLIENT, 40001, SERVER, 5060, 0x18, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").build();
        assert_eq!(run(&t, &http).action, Action::Pass);
    }

    #[test]
    fn group_addressed_udp_is_never_a_call() {
        let t = HostTables::new();
        for dst in [[239, 255, 255, 250], [224, 0, 0, 251], [255, 255, 255, 255]] {
            let f = Frame::udp4(CLIENT, 50000, dst, 3478, &stun_binding()).build();
            assert_eq!(run(&t, &f).action, Action::Pass, "STUN to {dst:?}");
        }
        assert!(t.flows.borrow().is_empty(), "no flow tracked");
        // Unicast STUN from the same endpoint still is.
        let f = Frame::udp4(CLIENT, 50000, SERVER, 3478, &stun_binding()).build();
        assert_eq!(run(&t, &f).action, Action::Drop);
    }

    #[test]
    fn udp_lists_decide_new_flows_but_not_https() {
        use crate::user::lists::{ListSet, parse_list};
        let mut set = ListSet::default();
        set.put(parse_list("zoom", "# app: zoom\n# scope: udp\n# version: 1\n# source: test\n198.51.100.0/24\n").unwrap()).unwrap();
        let mut t = HostTables::new();
        t.lists = set.entries();
        let media = Frame::udp4(CLIENT, 50000, SERVER, 8801, &[0x55; 60]).build();
        assert_eq!(run(&t, &media).app, App::Zoom as u16);
        let quic = Frame::udp4(CLIENT, 50001, SERVER, 443, &[0xC3, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8]).build();
        assert_eq!(run(&t, &quic).action, Action::Pass, "HTTP/3 to a listed network");
        let tls = Frame::tcp4(CLIENT, 50002, SERVER, 443, 0x18, &[0x17, 3, 3, 0, 1, 0]).build();
        assert_eq!(run(&t, &tls).action, Action::Pass, "TCP to a listed network");
    }

    #[test]
    fn every_call_of_a_sip_trunk_announces_its_media() {
        let t = HostTables::new();
        // Two calls on one UDP 5-tuple (a trunk): the second INVITE's SDP counts too.
        for (call, port) in [(1u16, 40000u16), (2, 40002)] {
            let f = Frame::udp4(CLIENT, 5060, SERVER, 5060, &invite_with_sdp("10.1.0.5", port)).build();
            assert_eq!(run(&t, &f).app, App::Sip as u16, "INVITE {call}");
            assert_eq!(t.expect.borrow().get(&EndpointKey::new(v4(CLIENT), port, proto::UDP)), Some(&(App::Rtp as u16)), "call {call}");
        }
        // The same over TCP.
        for (call, port) in [(1u16, 41000u16), (2, 41002)] {
            let f = Frame::tcp4(CLIENT, 45000, SERVER, 5060, 0x18, &invite_with_sdp("10.1.0.5", port)).build();
            assert_eq!(run(&t, &f).app, App::Sip as u16, "TCP INVITE {call}");
            assert_eq!(t.expect.borrow().get(&EndpointKey::new(v4(CLIENT), port, proto::UDP)), Some(&(App::Rtp as u16)), "TCP call {call}");
        }
        // The same behind TURN ChannelData (SIP relayed through a TURN server).
        for (call, port) in [(1u16, 42000u16), (2, 42002)] {
            let sip = invite_with_sdp("10.1.0.5", port);
            let framed = [&[0x40, 0x01][..], &(sip.len() as u16).to_be_bytes(), &sip].concat();
            let f = Frame::udp4(CLIENT, 50000, SERVER, 3478, &framed).build();
            assert_ne!(run(&t, &f).app, 0, "TURN-relayed INVITE {call}");
            assert_eq!(t.expect.borrow().get(&EndpointKey::new(v4(CLIENT), port, proto::UDP)), Some(&(App::Rtp as u16)), "TURN-relayed call {call}");
        }
        // Keep-alives (CRLF) of the decided flow stay on the fast path.
        let ka = Frame::udp4(CLIENT, 5060, SERVER, 5060, b"\r\n\r\n").build();
        assert_eq!(run(&t, &ka).app, App::Sip as u16);
        let (key, _) = FlowKey::new(&packet::parse(&ka[..]).unwrap());
        assert_eq!(t.flows.borrow()[&key].packets, 3, "every packet counted once");
    }

    #[test]
    fn teamspeak_tcp_is_recognised() {
        let t = HostTables::new();
        let f = Frame::tcp4(CLIENT, 40100, SERVER, 51234, 0x18, &[0xF4, 0xBE, 0x03, 0x00, 1, 2, 3, 4]).build();
        assert_eq!(run(&t, &f).app, App::TeamSpeak as u16);
        let ack = Frame::tcp4(SERVER, 51234, CLIENT, 40100, 0x10, b"").build();
        assert_eq!(run(&t, &ack).app, App::TeamSpeak as u16, "the rest of the connection");
        let other = Frame::tcp4(CLIENT, 40101, SERVER, 51234, 0x18, &[0xF4, 0xBE, 0x09, 0x00]).build();
        assert_eq!(run(&t, &other).action, Action::Pass);
    }

    #[test]
    fn tcp_calls_are_remembered_for_the_whole_connection() {
        let t = HostTables::new();
        let invite = Frame::tcp4(CLIENT, 40002, SERVER, 5060, 0x18, &invite_with_sdp("10.1.0.5", 4000)).build();
        assert_eq!(run(&t, &invite).action, Action::Drop);
        let ack = Frame::tcp4(SERVER, 5060, CLIENT, 40002, 0x10, b"").build();
        assert_eq!(run(&t, &ack).app, App::Sip as u16, "a pure ACK of the connection");
    }

    #[test]
    fn policy_and_user_rules() {
        let mut t = HostTables::new();
        t.policy.insert(App::Sip as u16, Action::Monitor);
        let f = Frame::udp4(CLIENT, 5060, SERVER, 5060, &invite_with_sdp("10.1.0.5", 4000)).build();
        assert_eq!(run(&t, &f).action, Action::Monitor);
        // A user pass rule on the server's prefix wins over detection.
        let mut t = HostTables::new();
        t.rules.add_prefix4([198, 51, 100, 0], 24, Rule::new(App::Custom, Action::Pass));
        assert_eq!(run(&t, &f).action, Action::Pass);
        assert_ne!(t.config().flags & CONFIG_PREFIX4_RULES, 0);
        assert_eq!(t.config().flags & CONFIG_PORT_RULES, 0);
    }

    #[test]
    fn later_fragments_follow_their_first_fragment() {
        let t = HostTables::new();
        let first = Frame::udp4(CLIENT, 5060, SERVER, 5060, &invite_with_sdp("10.1.0.5", 4000)).fragment(99, 0, true).build();
        assert_eq!(run(&t, &first).app, App::Sip as u16);
        let later = Frame::raw4(CLIENT, SERVER, proto::UDP, b"a=sendrecv\r\n").fragment(99, 1480, false).build();
        let v = run(&t, &later);
        assert_eq!((v.app, v.action, v.reason), (App::Sip as u16, Action::Drop, Reason::LaterFragment));
        let other = Frame::raw4(CLIENT, SERVER, proto::UDP, b"x").fragment(100, 1480, false).build();
        assert_eq!(run(&t, &other).action, Action::Pass);
    }

    #[test]
    fn gtpu_tunnelled_calls_are_classified_by_their_inner_packet() {
        let t = HostTables::new();
        let inner = Frame::udp4(CLIENT, 40000, SERVER, 5060, &invite_with_sdp("10.1.0.5", 4000)).build();
        let mut gtp = vec![0x30, 0xFF, 0, 0, 0, 0, 0, 1];
        gtp[2..4].copy_from_slice(&((inner.len() - 14) as u16).to_be_bytes());
        gtp.extend_from_slice(&inner[14..]);
        let outer = Frame::udp4([172, 16, 0, 1], 2152, [172, 16, 0, 2], 2152, &gtp).build();
        let v = run(&t, &outer);
        assert_eq!((v.app, v.action), (App::Sip as u16, Action::Drop));
    }
}
