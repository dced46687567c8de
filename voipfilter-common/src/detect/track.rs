//! App detectors that need several packets of a flow (Mumble's ping echo, TeamSpeak's licence
//! exchange, LINE's per-direction counter, Snapchat's QUIC-then-media, Zoom's weak SFU types):
//! their state lives in the flow record ([`AppTrack`], 8 bytes).
//!
//! [`update`] runs for each packet of an undecided UDP flow that no one-packet detector claimed
//! and that the RTP/RTCP confirmation did not decide. A flow is a candidate for one app at a
//! time, chosen by its first packet that fits one (`cand`):
//!
//! | candidate | opened by | decides on | packets passed |
//! |---|---|---|---|
//! | Snapchat | a gQUIC Q046 CHLO without SNI (`snapchat`) | a Q046 long header from the other side, or an RTP/RTCP header | 1 |
//! | Mumble | a 12-byte ping (`mumble::ping`): `aux` = low 32 bits of the ident | a 24-byte answer from the other side echoing it | 1 |
//! | TeamSpeak | a licence-exchange packet (`teamspeak::licence`) | the third in a row (nDPI) | 2 |
//! | Zoom | SFU type 3/4 on 8801-8810 (`zoom::sfu_weak`) | a second one with zero sequence numbers in both, or any one from packet 4 on (nDPI) | 1 (3) |
//! | LINE | any other packet of more than 10 bytes | see below | 1-2 (up to 7) |
//!
//! A packet that breaks the candidate's pattern (a non-licence packet in a TeamSpeak exchange,
//! a LINE counter that does not follow) ends it: the flow is then no candidate ([`CAND_NONE`])
//! and the RTP/RTCP confirmation goes on alone, until the engine's inspection limit.
//!
//! LINE (`line`): `aux` holds, per direction `d`, the counter byte of the direction's first
//! packet (byte `d`) and how many consecutive numbers it has seen (byte `2 + d`); `hits` holds
//! per direction whether it opened with a LINE handshake (bit `d`). Decided when both directions
//! opened with a handshake, or when a direction that did sees its next number in a LINE-shaped
//! packet (the fast forms), or after four consecutive numbers in each direction with different
//! starting values (nDPI's rule; RTP/RTCP packets skipped).
//!
//! Verifier: no loop here but the CHLO tag scan (`snapchat`, 32 iterations, on a flow's first
//! packets only); every read is a `Bytes` load at a constant or bounded offset.

use super::{line, mumble, rtp, snapchat, teamspeak, zoom};
use crate::{App, Bytes};

/// Per-flow state of the multi-packet app detectors.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppTrack {
    /// Which candidate the flow is (`CAND_*`), 0 when none yet.
    pub cand: u8,
    /// Packets that matched the candidate so far (LINE: handshake flags per direction).
    pub hits: u8,
    pub _pad: [u8; 2],
    /// Candidate data (e.g. the low 32 bits of a Mumble ping ident, LINE counters).
    pub aux: u32,
}

const _: () = assert!(core::mem::size_of::<AppTrack>() == 8);

impl AppTrack {
    /// The state of a new flow.
    pub const NEW: AppTrack = AppTrack { cand: 0, hits: 0, _pad: [0; 2], aux: 0 };
}

/// No candidate yet: the next packet may open one.
pub const CAND_NONE: u8 = 0;
pub const CAND_SNAPCHAT: u8 = 1;
pub const CAND_MUMBLE: u8 = 2;
pub const CAND_TEAMSPEAK: u8 = 3;
pub const CAND_ZOOM: u8 = 4;
pub const CAND_LINE: u8 = 5;
/// The candidate failed: nothing more is looked for on this flow.
pub const CAND_OFF: u8 = 0xFF;

/// Licence-exchange packets TeamSpeak needs (nDPI: the third).
pub const TEAMSPEAK_PACKETS: u8 = 3;
/// Consecutive counter values per direction LINE needs without a handshake (nDPI).
pub const LINE_PACKETS: u8 = 4;
/// From this packet of the flow on, one SFU type 3/4 packet is Zoom (nDPI's `packet_counter >= 4`).
pub const ZOOM_WEAK_INDEX: u64 = 4;

/// One packet of an undecided UDP flow through the multi-packet app detectors: the app once
/// they decide, else 0. `dir` is the packet's direction (0 or 1, as `FlowKey::new` gives it),
/// `index` the packet's 1-based position in the flow.
#[inline(always)]
pub fn update<B: Bytes + ?Sized>(t: &mut AppTrack, pl: &B, sport: u16, dport: u16, dir: u8, index: u64) -> u16 {
    let dir = dir & 1;
    match t.cand {
        CAND_NONE => open(t, pl, sport, dport, dir),
        CAND_SNAPCHAT => {
            // `hits`: 1 + the direction of the CHLO.
            let other = t.hits != dir + 1;
            if (other && snapchat::q046_long(pl)) || rtp::header(pl).is_some() {
                App::Snapchat as u16
            } else {
                0
            }
        }
        CAND_MUMBLE => {
            if let Some(ident) = mumble::ping(pl) {
                // A new ping (same or other direction): its ident is the one to echo.
                t.aux = ident;
                t.hits = dir + 1;
                0
            } else if t.hits != dir + 1 && mumble::answer(pl, t.aux) {
                App::Mumble as u16
            } else {
                0
            }
        }
        CAND_TEAMSPEAK => {
            if !teamspeak::licence(pl) {
                t.cand = CAND_OFF;
                return 0;
            }
            t.hits = t.hits.saturating_add(1);
            if t.hits >= TEAMSPEAK_PACKETS { App::TeamSpeak as u16 } else { 0 }
        }
        CAND_ZOOM => match zoom::sfu_weak(pl, sport, dport) {
            Some(zero) => {
                if (zero && t.hits != 0) || index >= ZOOM_WEAK_INDEX {
                    App::Zoom as u16
                } else {
                    t.hits = zero as u8;
                    0
                }
            }
            None => 0,
        },
        CAND_LINE => line_step(t, pl, dir),
        _ => 0,
    }
}

/// The first packet that fits a candidate opens it (and may already decide, for LINE).
#[inline(always)]
fn open<B: Bytes + ?Sized>(t: &mut AppTrack, pl: &B, sport: u16, dport: u16, dir: u8) -> u16 {
    if snapchat::chlo_without_sni(pl) {
        t.cand = CAND_SNAPCHAT;
        t.hits = dir + 1;
        return 0;
    }
    if let Some(ident) = mumble::ping(pl) {
        t.cand = CAND_MUMBLE;
        t.aux = ident;
        t.hits = dir + 1;
        return 0;
    }
    if teamspeak::licence(pl) {
        t.cand = CAND_TEAMSPEAK;
        t.hits = 1;
        return 0;
    }
    if let Some(zero) = zoom::sfu_weak(pl, sport, dport) {
        t.cand = CAND_ZOOM;
        t.hits = zero as u8;
        return 0;
    }
    if pl.len() >= line::COUNTER_MIN_LEN {
        t.cand = CAND_LINE;
        t.hits = 0;
        t.aux = 0;
        return line_step(t, pl, dir);
    }
    0
}

/// One packet of a LINE candidate (state layout in the module header).
#[inline(always)]
fn line_step<B: Bytes + ?Sized>(t: &mut AppTrack, pl: &B, dir: u8) -> u16 {
    let [b0, b1, n0, n1] = t.aux.to_le_bytes();
    let (base, n) = if dir == 0 { (b0, n0) } else { (b1, n1) };
    let flag = 1u8 << dir;
    if n == 0 {
        // The direction's first packet: its counter is the base.
        let Some(c) = line::counter_byte(pl) else { return 0 };
        if line::handshake(pl).is_some() {
            t.hits |= flag;
        }
        t.aux = if dir == 0 { u32::from_le_bytes([c, b1, 1, n1]) } else { u32::from_le_bytes([b0, c, n0, 1]) };
        // Both directions opened with a handshake.
        return if t.hits == 3 { App::Line as u16 } else { 0 };
    }
    let Some(c) = line::counter_byte(pl) else { return 0 };
    if c != base.wrapping_add(n) {
        t.cand = CAND_OFF;
        return 0;
    }
    // The fast form: a direction that opened with a handshake sees its next number in a
    // LINE-shaped packet.
    if n == 1 && t.hits & flag != 0 && line::packet(pl).is_some() {
        return App::Line as u16;
    }
    let n = n.saturating_add(1);
    let (n0, n1) = if dir == 0 { (n, n1) } else { (n0, n) };
    t.aux = u32::from_le_bytes([b0, b1, n0, n1]);
    if n0 >= LINE_PACKETS && n1 >= LINE_PACKETS && b0 != b1 { App::Line as u16 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::line::tests::pkt;
    use crate::testing::hex;
    use std::vec::Vec;

    /// Feeds `(dir, payload)` packets through one tracker; returns the 1-based index of the
    /// packet that decided and the app, or `None`.
    fn run(packets: &[(u8, Vec<u8>)], sport: u16, dport: u16) -> Option<(usize, u16)> {
        let mut t = AppTrack::NEW;
        for (i, (dir, p)) in packets.iter().enumerate() {
            let (s, d) = if *dir == 0 { (sport, dport) } else { (dport, sport) };
            let app = update(&mut t, &p[..], s, d, *dir, i as u64 + 1);
            if app != 0 {
                return Some((i + 1, app));
            }
        }
        None
    }

    #[test]
    fn mumble_echo_any_port() {
        let ping = hex(crate::detect::mumble::tests::PING_1);
        let answer = hex(crate::detect::mumble::tests::ANSWER_3);
        assert_eq!(run(&[(0, ping.clone()), (1, answer.clone())], 40000, 40001), Some((2, App::Mumble as u16)));
        // The echo must come from the other side and carry the ident.
        assert_eq!(run(&[(0, ping.clone()), (0, answer.clone())], 40000, 40001), None);
        let mut other = answer.clone();
        other[11] ^= 1;
        assert_eq!(run(&[(0, ping.clone()), (1, other)], 40000, 40001), None);
        // A second ping replaces the ident.
        let mut ping2 = ping.clone();
        ping2[11] ^= 1;
        let mut answer2 = answer.clone();
        answer2[11] ^= 1;
        assert_eq!(run(&[(0, ping.clone()), (0, ping2), (1, answer2)], 40000, 40001), Some((3, App::Mumble as u16)));
    }

    #[test]
    fn teamspeak_licence_on_third() {
        use crate::detect::teamspeak::tests::{LIC_4, LIC_5, LIC_8, LIC_16};
        let ex: Vec<(u8, Vec<u8>)> = std::vec![(0, hex(LIC_4)), (1, hex(LIC_8)), (0, hex(LIC_16)), (1, hex(LIC_5))];
        assert_eq!(run(&ex, 2011, 2010), Some((3, App::TeamSpeak as u16)));
        // A different packet in between ends it.
        let broken: Vec<(u8, Vec<u8>)> = std::vec![(0, hex(LIC_4)), (1, std::vec![0x55; 30]), (0, hex(LIC_16)), (1, hex(LIC_5))];
        assert_eq!(run(&broken, 2011, 2010), None);
        assert_eq!(run(&ex[..2], 2011, 2010), None);
    }

    #[test]
    fn zoom_weak_types() {
        use crate::detect::zoom::tests::{SFU3_3, SFU4_4};
        // zoom.pcap's GTP-U flow: 03, 03, 04, 04 with zero sequence numbers: decided on packet 2.
        let z: Vec<(u8, Vec<u8>)> = std::vec![(0, hex(SFU3_3)), (1, hex(SFU3_3)), (1, hex(SFU4_4)), (0, hex(SFU4_4))];
        assert_eq!(run(&z, 45634, 8801), Some((2, App::Zoom as u16)));
        assert_eq!(run(&z, 45634, 8800), None, "not a Zoom port");
        // Non-zero sequence numbers: nDPI's rule, from packet 4.
        let nz = |t: u8| {
            let mut p = hex(SFU3_3);
            p[0] = t;
            p[2] = 7;
            p
        };
        let z: Vec<(u8, Vec<u8>)> = std::vec![(0, nz(3)), (1, nz(4)), (1, std::vec![0x99; 40]), (0, nz(4))];
        assert_eq!(run(&z, 45634, 8801), Some((4, App::Zoom as u16)));
    }

    #[test]
    fn snapchat_quic_then_answer_or_media() {
        use crate::detect::snapchat::tests::{REJ_2, chlo_1};
        let rej = hex(REJ_2);
        assert_eq!(run(&[(0, chlo_1()), (1, rej.clone())], 42083, 443), Some((2, App::Snapchat as u16)));
        // The client's own retransmission is not the answer; RTCP later is (nDPI's rule).
        let rtcp = hex(crate::detect::rtp::tests::RTCP_RR_2);
        let short = hex("400508 7bd4c8cdad32d6da2c339b9ff9");
        assert_eq!(run(&[(0, chlo_1()), (0, chlo_1()), (1, short.clone()), (0, rtcp)], 42083, 443), Some((4, App::Snapchat as u16)));
        assert_eq!(run(&[(0, chlo_1()), (0, chlo_1()), (1, short)], 42083, 443), None);
        // With an SNI it is ordinary gQUIC: no candidate.
        let mut sni = chlo_1();
        sni[42..46].copy_from_slice(b"SNI\0");
        assert_eq!(run(&[(0, sni), (1, rej)], 42083, 443), None);
    }

    #[test]
    fn line_fast_forms() {
        // line.pcap 10.0.2.15:50835 -> 125.209.252.210:20610: two handshakes in one direction,
        // consecutive counters.
        let a: Vec<(u8, Vec<u8>)> = std::vec![(0, pkt("db6400b90602", 872)), (0, pkt("db6400ba0602", 872))];
        assert_eq!(run(&a, 50835, 20610), Some((2, App::Line as u16)));
        // 10.200.3.125:51170 <-> 147.92.169.90:29070: a handshake each way.
        let b: Vec<(u8, Vec<u8>)> = std::vec![(0, pkt("d89c00720602", 160)), (1, pkt("d8d002090602", 212))];
        assert_eq!(run(&b, 51170, 29070), Some((2, App::Line as u16)));
        // 10.200.3.125:51161: handshake, server handshake (decides).
        let c: Vec<(u8, Vec<u8>)> = std::vec![(0, pkt("db51037f0602", 853)), (1, pkt("d98301030602", 391)), (0, pkt("d21903804a07", 541))];
        assert_eq!(run(&c, 51161, 29070), Some((2, App::Line as u16)));
        // Handshake then a LINE packet with the next number (one direction only).
        let d: Vec<(u8, Vec<u8>)> = std::vec![(0, pkt("db51037f0602", 853)), (0, pkt("d21903804a07", 541))];
        assert_eq!(run(&d, 51161, 29070), Some((2, App::Line as u16)));
        // ... but not with a number that does not follow, nor without the handshake.
        let e: Vec<(u8, Vec<u8>)> = std::vec![(0, pkt("db51037f0602", 853)), (0, pkt("d21903814a07", 541))];
        assert_eq!(run(&e, 51161, 29070), None);
        let f: Vec<(u8, Vec<u8>)> = std::vec![(0, pkt("d251037f0702", 853)), (0, pkt("d21903804a07", 541))];
        assert_eq!(run(&f, 51161, 29070), None);
    }

    #[test]
    fn line_counter_rule() {
        // nDPI's rule: four consecutive numbers each way, different bases, RTP skipped.
        let p = |c: u8| {
            let mut v = std::vec![0x31u8; 60];
            v[3] = c;
            v
        };
        let rtp = hex(crate::detect::rtp::tests::SIP_RTP_95);
        let flow: Vec<(u8, Vec<u8>)> = std::vec![
            (0, p(10)),
            (1, p(200)),
            (0, p(11)),
            (0, rtp.clone()),
            (1, p(201)),
            (0, p(12)),
            (1, p(202)),
            (0, p(13)),
            (1, p(203)),
        ];
        assert_eq!(run(&flow, 40000, 40001), Some((9, App::Line as u16)));
        // Counters wrap.
        let wrap: Vec<(u8, Vec<u8>)> = (0..4u8).flat_map(|i| [(0u8, p(254u8.wrapping_add(i))), (1, p(100 + i))]).collect();
        assert_eq!(run(&wrap, 40000, 40001), Some((8, App::Line as u16)));
        // Same base both ways: not LINE (nDPI's false-positive guard).
        let same: Vec<(u8, Vec<u8>)> = (0..5u8).flat_map(|i| [(0u8, p(7 + i)), (1, p(7 + i))]).collect();
        assert_eq!(run(&same, 40000, 40001), None);
        // A break ends the candidate.
        let broken: Vec<(u8, Vec<u8>)> = std::vec![(0, p(10)), (1, p(200)), (0, p(12)), (1, p(201)), (0, p(13)), (1, p(202)), (0, p(14)), (1, p(203))];
        assert_eq!(run(&broken, 40000, 40001), None);
    }

    #[test]
    fn neighbours_never_decide() {
        use crate::detect::apps::tests::neighbours;
        for (name, p) in neighbours() {
            // Ten copies of the same packet, alternating directions.
            let flow: Vec<(u8, Vec<u8>)> = (0..10).map(|i| ((i & 1) as u8, p.clone())).collect();
            for (s, d) in [(40000, 40001), (8801, 40000), (443, 40000)] {
                assert_eq!(run(&flow, s, d), None, "{name} {s}->{d}");
            }
        }
        // An RTP stream (one SSRC, growing sequence numbers) is RTP's, not LINE's.
        let mut flow = Vec::new();
        for i in 0..10u16 {
            let mut r = hex(crate::detect::rtp::tests::SIP_RTP_95);
            r[2..4].copy_from_slice(&(0x6fae + i).to_be_bytes());
            flow.push(((i & 1) as u8, r));
        }
        assert_eq!(run(&flow, 40000, 40001), None);
    }

    #[test]
    fn random_flows_never_panic_and_rarely_decide() {
        let mut x: u64 = 0x0123_4567_89AB_CDEF;
        let mut decided = 0;
        for _ in 0..2000 {
            let mut t = AppTrack::NEW;
            for i in 0..12u64 {
                x = crate::testing::xorshift(x);
                let len = (x >> 50) as usize % 200;
                let mut buf = std::vec![0u8; len];
                for b in buf.iter_mut() {
                    x = crate::testing::xorshift(x);
                    *b = x as u8;
                }
                if update(&mut t, &buf[..], 40000, 40001, (x & 1) as u8, i + 1) != 0 {
                    decided += 1;
                    break;
                }
            }
        }
        assert_eq!(decided, 0);
    }
}
