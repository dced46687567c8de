//! Section 1: program cost per packet class with BPF_PROG_TEST_RUN, next to the baselines.
//!
//! "steady": the same frame `repeat` times; classes that create state (a flow, an expectation,
//! a fragment entry) are warmed up first, so this is the established-flow path.
//! "new flow": `bench_newflow` writes a fresh counter into the source address before
//! tail-calling voipfilter, so every run is the first packet of a new flow; the wrapper's own
//! cost (measured by tail-calling `bench_pass` instead, in the same run) is subtracted and the
//! empty program's cost added back, so the figure compares directly with the empty program.
//! The same wrapper around `bench_ref_new` (parse, lookup miss, insert into the full 1M LRU
//! hash) gives the new-flow reference: what any flow table pays for a flow's first packet.

use aya::programs::ProgramFd;
use voipfilter::load::{Filter, LoadOptions};
use voipfilter_common::{
    packet::{ETH_P_8021AD, ETH_P_8021Q, proto},
    user::frame::Frame,
};
use voipfilter_tests::voip;

use crate::{
    objects::{self, Baselines, CONF_STAMP},
    util::progress,
};

pub const CLIENT: [u8; 4] = [192, 0, 2, 10];
pub const SERVER: [u8; 4] = [198, 51, 100, 20];
const TEXT: &[u8] = b"application data that is not voip at all, just bytes";
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;

pub struct Class {
    pub name: &'static str,
    pub frame: Vec<u8>,
    /// Frames run once before timing (signalling that announces the media, first fragments).
    pub warm: Vec<Vec<u8>>,
    /// Offset of 4 bytes that make the flow new when changed (new-flow figure), if any.
    pub stamp: Option<u32>,
    /// The XDP action expected in steady state (checked, reported).
    pub expect: u32,
}

fn v6(last: u8) -> [u8; 16] {
    let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    a[15] = last;
    a
}

pub fn gtpu(ip_packet: &[u8]) -> Vec<u8> {
    let mut g = vec![0x30, 0xFF, 0, 0, 0, 0, 0, 1];
    g[2..4].copy_from_slice(&(ip_packet.len() as u16).to_be_bytes());
    g.extend_from_slice(ip_packet);
    g
}

/// A STUN binding request as ICE sends it: USERNAME, PRIORITY, ICE-CONTROLLING,
/// MESSAGE-INTEGRITY, FINGERPRINT.
pub fn stun_ice(tid: u32) -> Vec<u8> {
    let mut attrs = Vec::new();
    let mut attr = |t: u16, v: &[u8]| {
        attrs.extend_from_slice(&t.to_be_bytes());
        attrs.extend_from_slice(&(v.len() as u16).to_be_bytes());
        attrs.extend_from_slice(v);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
    };
    attr(0x0006, b"a1b2:c3d4");
    attr(0x0024, &0x6e7f_1eff_u32.to_be_bytes());
    attr(0x802A, &[1, 2, 3, 4, 5, 6, 7, 8]);
    attr(0x0008, &[0xAB; 20]);
    attr(0x8028, &[0x12, 0x34, 0x56, 0x78]);
    let mut m = vec![0x00, 0x01];
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    m.extend_from_slice(b"vfbench!");
    m.extend_from_slice(&tid.to_be_bytes());
    m.extend_from_slice(&attrs);
    m
}

/// TURN ChannelData (RFC 8656 §12.4) on channel 0x4001 carrying an RTP packet.
pub fn channel_data() -> Vec<u8> {
    let rtp = voip::rtp(0, 1, 160, 0x1234_5678);
    let mut m = vec![0x40, 0x01];
    m.extend_from_slice(&(rtp.len() as u16).to_be_bytes());
    m.extend_from_slice(&rtp);
    m
}

/// A QUIC v1 Initial (long header) padded to 1200 bytes as clients send it.
pub fn quic_initial() -> Vec<u8> {
    let mut q = vec![0xC3, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0x44, 0xD0];
    let mut x: u32 = 0x9E37_79B9;
    while q.len() < 1200 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        q.push(x as u8);
    }
    q
}

/// A TLS 1.2 record header and the start of a ClientHello with an SNI.
pub fn tls_client_hello() -> Vec<u8> {
    let mut h = vec![0x16, 0x03, 0x01, 0x00, 0xC0, 0x01, 0x00, 0x00, 0xBC, 0x03, 0x03];
    h.extend_from_slice(&[0x5A; 32]);
    h.extend_from_slice(&[0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00]);
    h.extend_from_slice(&[0x00, 0x15, 0x00, 0x00, 0x00, 0x11, 0x00, 0x0F, 0x00, 0x00, 0x0C]);
    h.extend_from_slice(b"example.com.");
    h.resize(197, 0);
    h
}

pub fn classes() -> Vec<Class> {
    use voipfilter_tests::harness::{XDP_DROP, XDP_PASS};
    let udp = |sport, dport, p: &[u8]| Frame::udp4(CLIENT, sport, SERVER, dport, p);
    let invite = |call, port| voip::sip_invite(call, "198.51.100.20", port);
    let rtp = voip::rtp(0, 7, 1120, 0xCAFE_0001);
    // The inner packet of the GTP-U class: RTP to media that an inner SIP INVITE announced.
    let inner_sip = Frame::udp4([10, 9, 0, 1], 5060, [10, 9, 0, 2], 5060, &voip::sip_invite(9, "10.9.0.2", 40000)).build();
    let inner_rtp = Frame::udp4([10, 9, 0, 1], 40002, [10, 9, 0, 2], 40000, &rtp).build();
    let gtp = |inner: &[u8]| Frame::udp4([172, 16, 0, 1], 2152, [172, 16, 0, 2], 2152, &gtpu(&inner[14..])).build();
    let big_invite = invite(3, 30010);
    let frag_first = udp(5062, 5060, &big_invite).fragment(77, 0, true).build();
    let frag_later = Frame::raw4(CLIENT, SERVER, proto::UDP, b"rest of the datagram, the end of the SDP").fragment(77, 1480, false).build();
    let mut truncated = udp(40000, 8080, TEXT).build();
    truncated.truncate(14 + 16);
    vec![
        Class {
            name: "established UDP flow (not a call)",
            frame: udp(40000, 8080, TEXT).build(),
            warm: vec![udp(40000, 8080, TEXT).build(); 16],
            stamp: Some(26),
            expect: XDP_PASS,
        },
        Class {
            name: "established TCP flow (TLS data)",
            frame: Frame::tcp4(CLIENT, 40001, SERVER, 443, TCP_ACK | TCP_PSH, &[0x17, 3, 3, 0, 32, 1, 2, 3, 4, 5, 6, 7, 8]).build(),
            warm: vec![],
            stamp: None,
            expect: XDP_PASS,
        },
        Class { name: "DNS query", frame: udp(40002, 53, &voip::dns_query(7)).build(), warm: vec![], stamp: Some(26), expect: XDP_PASS },
        Class {
            name: "QUIC Initial (udp/443)",
            frame: udp(40003, 443, &quic_initial()).build(),
            warm: vec![udp(40003, 443, &quic_initial()).build(); 16],
            stamp: Some(26),
            expect: XDP_PASS,
        },
        Class {
            name: "TLS ClientHello (tcp/443)",
            frame: Frame::tcp4(CLIENT, 40004, SERVER, 443, TCP_ACK | TCP_PSH, &tls_client_hello()).build(),
            warm: vec![],
            stamp: None,
            expect: XDP_PASS,
        },
        Class {
            name: "SIP INVITE with SDP, first packet",
            frame: udp(5060, 5060, &invite(1, 30000)).build(),
            warm: vec![],
            stamp: Some(26),
            expect: XDP_DROP,
        },
        Class {
            // An in-dialog request without a body stays on the fast path; messages that may
            // carry SDP (INVITE, ACK, PRACK, UPDATE, responses) go back to the detectors, so that
            // every call of a trunk announces its media (the first-INVITE row shows that cost).
            name: "SIP on an established flow (BYE)",
            frame: udp(5061, 5060, &bye()).build(),
            warm: vec![udp(5061, 5060, &invite(2, 30002)).build()],
            stamp: None,
            expect: XDP_DROP,
        },
        Class {
            name: "RTP of a blocked call",
            frame: udp(40006, 30004, &rtp).build(),
            warm: vec![udp(5063, 5060, &invite(4, 30004)).build(), udp(40006, 30004, &rtp).build()],
            stamp: None,
            expect: XDP_DROP,
        },
        Class {
            name: "STUN binding request (ICE attributes)",
            frame: udp(40007, 3478, &stun_ice(1)).build(),
            warm: vec![],
            stamp: Some(26),
            expect: XDP_DROP,
        },
        Class {
            name: "TURN ChannelData",
            frame: udp(40008, 3478, &channel_data()).build(),
            warm: vec![udp(40008, 3478, &stun_ice(2)).build()],
            stamp: Some(26),
            expect: XDP_DROP,
        },
        Class {
            name: "IPv6 + hop-by-hop + dest. options",
            frame: Frame::udp6(v6(10), 40009, v6(20), 8080, TEXT).ipv6_ext(proto::HOPOPT, &[0; 6]).ipv6_ext(60, &[0; 6]).build(),
            warm: vec![Frame::udp6(v6(10), 40009, v6(20), 8080, TEXT).ipv6_ext(proto::HOPOPT, &[0; 6]).ipv6_ext(60, &[0; 6]).build(); 16],
            stamp: Some(34),
            expect: XDP_PASS,
        },
        Class {
            name: "QinQ VLAN, UDP flow",
            frame: udp(40010, 8080, TEXT).vlan(ETH_P_8021AD, 100).vlan(ETH_P_8021Q, 200).build(),
            warm: vec![udp(40010, 8080, TEXT).vlan(ETH_P_8021AD, 100).vlan(ETH_P_8021Q, 200).build(); 16],
            stamp: Some(34),
            expect: XDP_PASS,
        },
        Class { name: "GTP-U carrying RTP of a call", frame: gtp(&inner_rtp), warm: vec![gtp(&inner_sip), gtp(&inner_rtp)], stamp: None, expect: XDP_DROP },
        Class { name: "later IPv4 fragment of a call", frame: frag_later, warm: vec![frag_first], stamp: None, expect: XDP_DROP },
        Class { name: "truncated packet", frame: truncated, warm: vec![], stamp: None, expect: XDP_PASS },
    ]
}

/// One class's figures over the runs.
pub struct ClassResult {
    pub name: String,
    pub action: u32,
    pub expect: u32,
    pub steady: Vec<f64>,
    /// Per run: steady / empty program.
    pub steady_vs_empty: Vec<f64>,
    pub steady_vs_ref: Vec<f64>,
    pub new_flow: Vec<f64>,
    pub new_vs_empty: Vec<f64>,
}

pub struct CostResult {
    pub repeat: u32,
    pub new_repeat: u32,
    pub empty_pass: Vec<f64>,
    pub empty_drop: Vec<f64>,
    pub reference: Vec<f64>,
    /// The new-flow reference (`bench_ref_new` under the wrapper, wrapper subtracted).
    pub reference_new: Vec<f64>,
    pub wrapper: Vec<f64>,
    pub classes: Vec<ClassResult>,
}

/// Times the classes whose name contains one of `only` (all if empty).
pub fn run(filter: &mut Filter, base: &mut Baselines, runs: usize, repeat: u32, new_repeat: u32, only: &[String]) -> anyhow::Result<CostResult> {
    let mut classes = classes();
    let ref_frame = classes[0].frame.clone();
    let ref_frame = &ref_frame;
    classes.retain(|c| only.is_empty() || only.iter().any(|o| c.name.contains(o.as_str())));
    progress("cost", "filling the reference's LRU hash (1M entries)");
    base.ref_fill(if repeat >= 1_000_000 { (1 << 20) - 1 } else { 100_000 })?;
    base.ref_insert(ref_frame)?;
    for c in &classes {
        for w in &c.warm {
            filter.run(w)?;
        }
    }
    let vf_fd = {
        let p: &mut aya::programs::Xdp = filter.ebpf_mut().program_mut(voipfilter_common::maps::PROGRAM).ok_or_else(|| anyhow::anyhow!("no program"))?.try_into()?;
        p.fd()?.try_clone()?
    };
    let pass_fd = base.fd(objects::PASS)?;
    let ref_new_fd = base.fd(objects::REF_NEW)?;
    let mut res = CostResult {
        repeat,
        new_repeat,
        empty_pass: vec![],
        empty_drop: vec![],
        reference: vec![],
        reference_new: vec![],
        wrapper: vec![],
        classes: classes
            .iter()
            .map(|c| ClassResult {
                name: c.name.into(),
                action: 0,
                expect: c.expect,
                steady: vec![],
                steady_vs_empty: vec![],
                steady_vs_ref: vec![],
                new_flow: vec![],
                new_vs_empty: vec![],
            })
            .collect(),
    };
    for r in 0..runs {
        progress("cost", &format!("run {}/{runs}: baselines", r + 1));
        let (_, pass) = base.time(objects::PASS, ref_frame, repeat)?;
        let (_, drop) = base.time(objects::DROP, ref_frame, repeat)?;
        let (act, reference) = base.time(objects::REF, ref_frame, repeat)?;
        anyhow::ensure!(act == 1, "the reference did not find its key (returned {act})");
        res.empty_pass.push(pass);
        res.empty_drop.push(drop);
        res.reference.push(reference);
        let (_, ns) = new_flow(base, &pass_fd, &ref_new_fd, ref_frame, 26, new_repeat, pass)?;
        res.reference_new.push(ns);
        // The inserts evict the least recently used entries; keep the steady reference's key.
        base.ref_insert(ref_frame)?;
        for (c, out) in classes.iter().zip(&mut res.classes) {
            progress("cost", &format!("run {}/{runs}: {}", r + 1, c.name));
            let (act, ns) = filter.time(&c.frame, repeat)?;
            out.action = act;
            out.steady.push(ns);
            out.steady_vs_empty.push(ns / pass);
            out.steady_vs_ref.push(ns / reference);
            if let Some(off) = c.stamp {
                let (wrap, ns) = new_flow(base, &pass_fd, &vf_fd, &c.frame, off, new_repeat, pass)?;
                res.wrapper.push(wrap);
                out.new_flow.push(ns);
                out.new_vs_empty.push(ns / pass);
            }
        }
    }
    Ok(res)
}

/// Cost of a new flow's first packet in `next`: `bench_newflow` stamps a fresh counter at
/// `stamp` on each of `repeat` runs of `frame` and tail-calls `next`; its own cost (tail-calling
/// the empty program `pass_fd` instead) is subtracted and the empty program's, `pass` ns, added
/// back. Returns (the wrapper's own cost, the new flow's).
fn new_flow(base: &mut Baselines, pass_fd: &ProgramFd, next: &ProgramFd, frame: &[u8], stamp: u32, repeat: u32, pass: f64) -> anyhow::Result<(f64, f64)> {
    base.set_conf(CONF_STAMP, stamp)?;
    base.set_next(pass_fd)?;
    let (_, wrap) = base.time(objects::NEWFLOW, frame, repeat)?;
    base.set_next(next)?;
    let (_, full) = base.time(objects::NEWFLOW, frame, repeat)?;
    base.set_conf(CONF_STAMP, 0)?;
    Ok((wrap, full - wrap + pass))
}

/// Loads a filter as the daemon runs it (default policy, 1M flows).
pub fn load_filter() -> anyhow::Result<Filter> {
    Filter::load(&LoadOptions::default())
}

/// A BYE of the dialog `invite(2, ..)` opened (RFC 3261 §15.1.1): no body.
fn bye() -> Vec<u8> {
    b"BYE sip:bob@198.51.100.20 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5061;branch=z9hG4bKbye2\r\nMax-Forwards: 70\r\nTo: <sip:bob@example.com>;tag=8321234356\r\nFrom: <sip:alice@example.com>;tag=1928301774\r\nCall-ID: bench-2\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n".to_vec()
}
