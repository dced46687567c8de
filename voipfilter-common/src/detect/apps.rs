//! The one-packet app detectors (Zoom, Discord, TeamSpeak, Telegram, Mumble, Viber, Agora,
//! IMO), run on UDP payloads that no protocol detector claimed.
//!
//! In the kernel this is the `voipfilter_apps` program (a budget of its own); its result goes
//! to the inspection program like the protocol detectors'. The multi-packet app detectors are in
//! [`super::track`].
//!
//! Order: the exact, cheap forms first (Discord, TeamSpeak Init1, Mumble on its port, IMO's
//! exact lengths, Agora), then the port-gated ones (Zoom, Viber), and last Telegram, whose scan
//! is the costliest. The patterns exclude one another (different lengths or first bytes), so the
//! order only matters for cost.

use super::{agora, discord, imo, mumble, teamspeak, telegram, viber, zoom};
use crate::{App, Bytes};

/// The app a UDP payload belongs to, by the app detectors that need one packet; 0 when none.
#[inline(always)]
pub fn detect<B: Bytes + ?Sized>(pl: &B, sport: u16, dport: u16) -> u16 {
    if discord::detect(pl) {
        return App::Discord as u16;
    }
    if teamspeak::init1(pl) {
        return App::TeamSpeak as u16;
    }
    if mumble::detect(pl, sport, dport) {
        return App::Mumble as u16;
    }
    if agora::detect(pl) {
        return App::Agora as u16;
    }
    if imo::detect(pl) {
        return App::Imo as u16;
    }
    if zoom::detect(pl, sport, dport) {
        return App::Zoom as u16;
    }
    if viber::detect(pl, sport, dport) {
        return App::Viber as u16;
    }
    if telegram::detect(pl, sport, dport) {
        return App::Telegram as u16;
    }
    0
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::detect::rtp::tests::{DNS_2, NTP_1, QUIC_4, RAKNET_46, RTCP_SR_1, SIP_RTP_95};
    use crate::testing::hex;
    use std::vec::Vec;

    // A QUIC v1 Initial (RFC 9001 A.2, the client's first 32 bytes; the rest is protected).
    const QUIC_V1: &str = "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11";
    // A DTLS 1.2 ClientHello record header and handshake header (the rest zero).
    const DTLS_CH: &str = "16fefd0000000000000000009c010000900000000000000090fefd";
    // STUN binding request, RFC 5769 §2.1 (first 20 bytes, attributes cut: length 0).
    const STUN_REQ: &str = "000100002112a442b7e7a701bc34d686fa87dfae";
    // A WireGuard handshake initiation's first bytes (type 1, reserved zero).
    const WG_INIT: &str = "01000000 a1b2c3d4 00112233445566778899aabbccddeeff";

    /// Payloads of neighbouring protocols that no app detector may claim.
    pub(crate) fn neighbours() -> Vec<(&'static str, Vec<u8>)> {
        let mut dtls = hex(DTLS_CH);
        dtls.resize(13 + 0x9c, 0);
        let mut quic = hex(QUIC_V1);
        quic.resize(1200, 0);
        let mut wg = hex(WG_INIT);
        wg.resize(148, 0);
        std::vec![
            ("dns", hex(DNS_2)),
            ("ntp", hex(NTP_1)),
            ("gquic", hex(QUIC_4)),
            ("quic-v1", quic),
            ("dtls", dtls),
            ("stun", hex(STUN_REQ)),
            ("rtp", hex(SIP_RTP_95)),
            ("rtcp", hex(RTCP_SR_1)),
            ("raknet", hex(RAKNET_46)),
            ("wireguard", wg),
            ("empty", Vec::new()),
            ("one byte", std::vec![0xff]),
        ]
    }

    /// Runs `f` on 20,000 pseudo-random payloads of 0-160 bytes (fixed seed).
    pub(crate) fn fuzz(mut f: impl FnMut(&[u8])) {
        let mut x: u64 = 0xD1B5_4A32_D192_ED03;
        let mut buf = [0u8; 160];
        for _ in 0..20_000u32 {
            for b in buf.iter_mut() {
                x = crate::testing::xorshift(x);
                *b = x as u8;
            }
            let len = (x >> 40) as usize % (buf.len() + 1);
            f(&buf[..len]);
        }
    }

    #[test]
    fn dispatch() {
        let ts = hex(crate::detect::teamspeak::tests::INIT1_1);
        assert_eq!(detect(&ts[..], 53187, 9987), App::TeamSpeak as u16);
        assert_eq!(detect(&hex("1337cafe0e000000")[..], 56271, 50004), App::Discord as u16);
        let ping = hex(crate::detect::mumble::tests::PING_1);
        assert_eq!(detect(&ping[..], 50085, 64738), App::Mumble as u16);
        assert_eq!(detect(&ping[..], 50085, 64739), 0);
        let zoom = hex(crate::detect::zoom::tests::SFU2_2);
        assert_eq!(detect(&zoom[..], 8801, 58327), App::Zoom as u16);
        assert_eq!(detect(&zoom[..], 9801, 58327), 0);
        let mut tg = std::vec![0x42u8; 40];
        tg[16..28].fill(0xFF);
        assert_eq!(detect(&tg[..], 23174, 521), App::Telegram as u16);
        assert_eq!(detect(&tg[..], 23174, 1521), 0);
        let mut v = std::vec![0u8; 50];
        v[2] = 3;
        assert_eq!(detect(&v[..], 40000, 5243), App::Viber as u16);
        let mut imo = std::vec![0u8; 11];
        imo[1] = 9;
        imo[2] = 3;
        assert_eq!(detect(&imo[..], 1, 2), App::Imo as u16);
        let mut sd = std::vec![0u8; 24];
        sd[6] = 0x21;
        sd[12..16].copy_from_slice(b"\x04SNI");
        assert_eq!(detect(&sd[..], 1, 2), App::Agora as u16);
    }

    #[test]
    fn neighbours_are_not_apps() {
        for (name, p) in neighbours() {
            for (s, d) in [(40000, 40001), (8801, 40000), (64738, 40000), (443, 40000), (521, 40000), (7985, 40000), (5243, 40000)] {
                // A STUN binding request on a Viber port: Viber's `03 00`/`01 00 05 00` are not
                // at 2 in it, so nothing is claimed.
                assert_eq!(detect(&p[..], s, d), 0, "{name} {s}->{d}");
            }
        }
    }

    #[test]
    fn random_payloads_are_rarely_apps() {
        // Without ports, only the exact patterns can match random bytes: expect none in 20k.
        let mut hits = 0;
        fuzz(|p| {
            if detect(p, 40000, 40001) != 0 {
                hits += 1;
            }
        });
        assert_eq!(hits, 0);
    }
}
