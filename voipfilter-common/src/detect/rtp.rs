//! RTP and RTCP header recognition (RFC 3550), one packet at a time.
//!
//! Mirrors nDPI `src/lib/protocols/rtp.c` (`is_valid_rtp_payload_type`, `is_rtp_or_rtcp`, the
//! RFC 4571 TCP framing and the port exclusions; facts §2). XDP class: **S** for the header check
//! here; deciding that a *flow* is RTP needs a few packets and lives in [`crate::rtp_state`] (F).
//!
//! What [`header`] checks, on the first bytes of the UDP payload:
//! * version: `b0 & 0xC0 == 0x80` (2);
//! * **RTP**: payload type `PT = b1 & 0x7F` is `<= 34` or in `96..=127`, and the payload holds the
//!   fixed header, the CSRC list and the header extension: `len >= 12 + 4*CC`, plus
//!   `4 + 4*be16(14 + 4*CC)` when X (`b0 & 0x10`) is set. Seq at 2, timestamp at 4, SSRC at 8.
//!   Padding (P) is not checked: in SRTP the padding count sits under the authentication tag.
//! * **RTCP**: the packet type `b1` is in `200..=213` (SR, RR, SDES, BYE, APP, RTPFB, PSFB, XR,
//!   AVB, RSI, TOKEN, IDMS, RGRS, SNM), the length field `len` (32-bit words minus one, at 2) is
//!   at least 1 (so a sender SSRC is present, at 4) and `(len + 1) * 4 <= payload_len`. Only the
//!   first packet of a compound datagram is read, so SRTCP (which appends an index and a tag) and
//!   compound SR+SDES+BYE pass alike. SR and RR must also be long enough for the report blocks
//!   their count field announces (`len >= 6 + 6*RC` and `len >= 1 + 6*RC`).
//!
//! The two ranges cannot overlap: `b1` in 200..=213 is PT 72..=85 with the marker bit, which is
//! not an RTP payload type here (RFC 5761 §4 reserves 64..=95 for exactly this reason).
//!
//! Differences from nDPI, on purpose:
//! * RTCP packet types: nDPI accepts `b1` in 192..=213; we start at 200. 192/193 (FIR/NACK of
//!   RFC 2032) are obsolete, 194/195 (SMPTE time code, inter-arrival jitter) only ever follow an
//!   SR or RR inside a compound packet, and 196..=199 are unassigned: RFC 3550 §6.1 makes SR or RR
//!   the first packet of a compound datagram, and the reduced-size RTCP of RFC 5506 carries only
//!   feedback (205/206). Accepting 192..=199 as a first packet would only add false positives.
//! * The SR/RR report-count check and the `len >= 1` check are ours (cheap, and they reject
//!   RTCP-looking noise that nDPI keeps).
//! * Port exclusions ([`excluded_ports`]) are symmetric and keep 443: see there.
//!
//! RFC 4571 framing on TCP ([`header_tcp`]): a 2-byte length equal to `payload_len - 2`, then an
//! RTP or RTCP header. A segment holding several frames, or part of one, is not recognised (as
//! in nDPI).
//!
//! Packets needed: 1 for the header. Verifier notes: no loops; the fixed header is read with one
//! 12-byte (or, for an 8-byte RTCP packet, 8-byte) load; the only other read is the extension
//! length at `14 + 4*CC` with CC < 16; the extension length only enters a comparison.

use super::Payload;
use crate::Bytes;

/// RTP or RTCP.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtpKind {
    Rtp = 1,
    Rtcp = 2,
}

/// The fields of an RTP or RTCP header that flow confirmation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpHeader {
    pub kind: RtpKind,
    /// RTP: the payload type (`b1 & 0x7F`, marker bit removed). RTCP: the packet type (`b1`,
    /// 200..=213).
    pub pt: u8,
    /// RTP sequence number; 0 for RTCP.
    pub seq: u16,
    /// RTP: the SSRC at 8. RTCP: the sender SSRC at 4 of the first packet.
    pub ssrc: u32,
    /// RTP timestamp; 0 for RTCP.
    pub ts: u32,
}

/// First RTCP packet type accepted as the start of an RTCP datagram (SR).
pub const RTCP_FIRST: u8 = 200;
/// Last RTCP packet type accepted (SNM, RFC 8861).
pub const RTCP_LAST: u8 = 213;
const RTCP_SR: u8 = 200;
const RTCP_RR: u8 = 201;

/// Payload types nDPI accepts as RTP: the static types up to 34 and the dynamic range 96..=127.
#[inline(always)]
pub fn is_rtp_pt(pt: u8) -> bool {
    pt <= 34 || (96..=127).contains(&pt)
}

/// The RTP or RTCP header at the start of `pl` (a UDP payload), if it is one.
#[inline(always)]
pub fn header<B: Bytes + ?Sized>(pl: &B) -> Option<RtpHeader> {
    // One bounds check for the fixed header (12 bytes for RTP, 8 for the shortest RTCP packet),
    // then plain reads from the copy: separate loads let LLVM rebuild the packet pointer after
    // the check, and the verifier then rejects the read ("offset is outside of the packet").
    let h: [u8; 12] = match pl.array::<12>(0) {
        Some(h) => h,
        None => {
            let [a0, a1, a2, a3, a4, a5, a6, a7] = pl.array::<8>(0)?;
            [a0, a1, a2, a3, a4, a5, a6, a7, 0, 0, 0, 0]
        }
    };
    let (b0, b1) = (h[0], h[1]);
    if b0 & 0xC0 != 0x80 {
        return None;
    }
    let len = pl.len();
    let pt = b1 & 0x7F;
    if is_rtp_pt(pt) {
        let cc = (b0 & 0x0F) as usize;
        let mut hlen = 12 + 4 * cc;
        if len < hlen {
            return None;
        }
        if b0 & 0x10 != 0 {
            // Extension: 16-bit profile, 16-bit length in 32-bit words, then the words.
            let words = pl.be16(hlen + 2)? as usize;
            hlen += 4 + 4 * words;
            if len < hlen {
                return None;
            }
        }
        return Some(RtpHeader {
            kind: RtpKind::Rtp,
            pt,
            seq: u16::from_be_bytes([h[2], h[3]]),
            ssrc: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
            ts: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        });
    }
    if !(RTCP_FIRST..=RTCP_LAST).contains(&b1) {
        return None;
    }
    let words = u16::from_be_bytes([h[2], h[3]]) as usize;
    if words == 0 || (words + 1) * 4 > len {
        return None;
    }
    let count = (b0 & 0x1F) as usize;
    if (b1 == RTCP_SR && words < 6 + 6 * count) || (b1 == RTCP_RR && words < 1 + 6 * count) {
        return None;
    }
    Some(RtpHeader {
        kind: RtpKind::Rtcp,
        pt: b1,
        seq: 0,
        ssrc: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        ts: 0,
    })
}

/// Sub-packets of a compound RTCP datagram walked by [`compound_rtcp`].
pub const MAX_COMPOUND: usize = 8;

/// A compound RTCP datagram (RFC 3550 §6.1): at least two RTCP packets, the first a sender or
/// receiver report, each with version 2 and a packet type in 200..=213, whose lengths chain
/// exactly to the end of the payload. Random data passes with a chance of about 2^-40, so one
/// datagram decides (nDPI waits for four RTCP packets; FreeSWITCH and most SIP phones send
/// SR/RR + SDES in every datagram).
#[inline(always)]
pub fn compound_rtcp<B: Bytes + ?Sized>(pl: &B) -> bool {
    let len = pl.len();
    match pl.array::<2>(0) {
        Some([b0, b1]) if b0 & 0xC0 == 0x80 && (b1 == RTCP_SR || b1 == RTCP_RR) => {}
        _ => return false,
    }
    let mut off = 0usize;
    let mut i = 0;
    while i < MAX_COMPOUND {
        // Constant clamp for the verifier: MAX_COMPOUND packets of at most 256 KiB each.
        if off > 1 << 16 {
            return false;
        }
        let Some([b0, b1, l0, l1]) = pl.array::<4>(off) else { return false };
        if b0 & 0xC0 != 0x80 || !(RTCP_FIRST..=RTCP_LAST).contains(&b1) {
            return false;
        }
        off += (u16::from_be_bytes([l0, l1]) as usize + 1) * 4;
        if off == len {
            return i >= 1;
        }
        if off > len {
            return false;
        }
        i += 1;
    }
    false
}

/// Whether a TCP payload is exactly one RFC 4571 frame: a 2-byte length that covers exactly
/// the rest of the segment (how RTP and RTCP travel over TCP).
#[inline(always)]
pub fn rfc4571_frame<B: Bytes + ?Sized>(pl: &B) -> bool {
    matches!(pl.be16(0), Some(n) if n as usize + 2 == pl.len())
}

/// The RTP or RTCP header of a TCP payload framed as in RFC 4571 ([`rfc4571_frame`]).
#[inline(always)]
pub fn header_tcp<B: Bytes + ?Sized>(pl: &B) -> Option<RtpHeader> {
    if !rfc4571_frame(pl) {
        return None;
    }
    header(&Payload::new(pl, 2, pl.len()))
}

/// UDP port pairs on which RTP is never looked for (the engine applies this before calling
/// [`header`]).
///
/// nDPI (`rtp.c`) excludes a packet whose destination port is `<= 1023`, 5353 (mDNS), 5355
/// (LLMNR) or 9600 (Omron FINS), or with either port 30303 (Ethereum discovery). We differ in two
/// ways:
/// * **Symmetric**: each rule applies to either port. nDPI decides on a flow's first packet
///   (client to server), so its `dst` is the service port; a per-packet filter sees the replies
///   too, whose destination is the client's port, and must give both directions the same answer.
/// * **443 is not excluded**: TURN servers listen on UDP/TCP 443 to get through firewalls, and
///   media relays (TURN ChannelData, whose RTP header the engine reads 4 bytes in) run there.
///   QUIC on 443 can never pass the RTP version check (its fixed bit 0x40 makes `b0 & 0xC0`
///   0x40 or 0xC0), and DTLS starts with 20..=63.
///
/// Port 0 (invalid as a UDP service port) counts as `<= 1023`.
#[inline(always)]
pub fn excluded_ports(sport: u16, dport: u16) -> bool {
    #[inline(always)]
    fn excluded(p: u16) -> bool {
        (p <= 1023 && p != 443) || p == 5353 || p == 5355 || p == 9600 || p == 30303
    }
    excluded(sport) || excluded(dport)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) use crate::testing::hex;

    /// `prefix` (real bytes) followed by zeros up to `len` (the real payload length): for long
    /// captured packets whose bytes past the header do not matter to the check.
    pub(crate) fn padded(prefix: &str, len: usize) -> Vec<u8> {
        let mut v = hex(prefix);
        assert!(v.len() <= len);
        v.resize(len, 0);
        v
    }

    // sip.pcap packet 95: 192.168.1.2:30000 -> 212.242.33.36:40392, G.711 A-law (PT 8), whole
    // 172-byte payload.
    pub(crate) const SIP_RTP_95: &str = "80086fae000004d83796cb71d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d511041c181812121e1014176a131c18040405060101000705051913051b1910131905040407030203030000020d0d0d0001030d0c0d0000010203010606010f0e0e0c030007060003030607010406061b1f1c11696062151110146a13156069617d74525b59d7475c565255444b42755973785a7c6e68146a";
    // rtp.pcapng packet 84: 10.140.67.167:55402 -> 148.153.85.97:6008, PT 111 (Opus), CC=1,
    // whole 24-byte payload.
    pub(crate) const OPUS_CC1_84: &str = "816fcdd21e5131ffb80974d80000011c480be455bf14987c";
    // rtp.pcapng packet 55 (the Discord flow): 150.219.118.19:54234 -> 192.113.193.227:50003,
    // PT 120, X=1 with a one-word RFC 8285 one-byte extension (0xBEDE), whole 160-byte payload.
    pub(crate) const DISCORD_EXT_55: &str = "907848b6d17f3d75001a7e73bede000130a179db6a7f08e159cfa11985a39573ad30d84e56ebe4012a31078cb0a37883bae147445246d003a427bd4880f12c5554a249facd880df058d5cb6e2bfc2bd7177122059e9ea8715ad8bee8be2e8a7379da6b480909343232a431daf2ad38944dc65eb7ea89859b4b35475914777c20d273ba2e845765ebd7047534f6d12f9e716819fad4d712126dc1e313ed350180";
    // rtp.pcapng packet 56, same flow: an SRTCP transport-layer feedback packet (PT 205, FMT 15).
    pub(crate) const DISCORD_RTCP_56: &str = "afcd0008001a7e73bf0ee62e93b426ec04bc17f9918c08567fca1727c88a206d6f6e2046fc21fcb1cdc99b642cd7f85d44baa0d1ee350180";
    // rtcp_multiple_pkts_in_the_same_datagram.pcap packet 1: 217.12.244.34:25963 ->
    // 217.12.247.98:31601, SR (RC=1) + SDES in one datagram.
    pub(crate) const RTCP_SR_1: &str = "81c8000c5d931534dd3ac1704d614df800007d00000000c800007d0000000000000000010000000000000000000000000000000081ca000e5d931534010835643933313533340725467265655357495443482e6f7267202d2d20436f6d6520746f20436c7565436f6e2e636f6d000000";
    // Same capture, packet 2, the reverse direction: RR (RC=1) + SDES.
    pub(crate) const RTCP_RR_2: &str = "81c9000701932db400000000010000010000bec200000001000000000000000081ca000e01932db40107313933326462340725467265655357495443482e6f7267202d2d20436f6d6520746f20436c7565436f6e2e636f6d00000000";
    // sip.pcap packet 104: 192.168.1.2:30001 -> 212.242.33.36:40393, SR (RC=0) + SDES + BYE.
    pub(crate) const SIP_RTCP_104: &str = "80c800063796cb7142c907ca5efac603000024c3000000090000060c81ca000b3796cb71011d31313839343239372d3434333261396638403139322e3136382e312e3206055349505053000081cb00063796cb711073657373696f6e2073687574646f776e000000";

    // Negatives, all whole payloads.
    // dns.pcap packet 2: a query for www.example.com (AAAA).
    pub(crate) const DNS_2: &str =
        "bc1f0100000100000000000003777777076578616d706c6503636f6d00001c0001";
    // NTPv4.pcap packet 1: NTPv4 server reply, first byte 0x23.
    pub(crate) const NTP_1: &str = "230207eb00000450000003ab83bc03dfd94f51c33165b860d944575530336fd0d944575531b4e978d94f51f42d26e2f4";
    // quic.pcap packet 4: gQUIC (Q024) public header, first byte 0x0c.
    pub(crate) const QUIC_4: &str =
        "0cb2de5df14f5545eb03aeefe482ad86ee5d68a80f43271bd48f8ff97d36cc3ee7309e2066";
    // raknet.pcap packet 46: RakNet datagram flags 0x84 (which looks like RTP version 2, PT 2).
    pub(crate) const RAKNET_46: &str = "8402000000008803000000000015e95e000000130c201546";
    // raknet.pcap packet 55 (192.168.2.100:32953 -> 148.153.35.205:60021), 28 bytes.
    pub(crate) const RAKNET_55: &str = "840000004000900000000900000000490f027c000000000015e93b00";
    // rtp.pcapng packet 83: the 16-byte non-RTP packet that opens the 55402/6008 flow.
    pub(crate) const KEEPALIVE_83: &str = "0100000000000000000000000000011c";

    #[test]
    fn real_rtp_headers() {
        assert_eq!(
            header(&hex(SIP_RTP_95)[..]),
            Some(RtpHeader {
                kind: RtpKind::Rtp,
                pt: 8,
                seq: 0x6fae,
                ssrc: 0x3796_cb71,
                ts: 0x04d8
            })
        );
        assert_eq!(
            header(&hex(OPUS_CC1_84)[..]),
            Some(RtpHeader {
                kind: RtpKind::Rtp,
                pt: 111,
                seq: 0xcdd2,
                ssrc: 0xb809_74d8,
                ts: 0x1e51_31ff
            })
        );
        assert_eq!(
            header(&hex(DISCORD_EXT_55)[..]),
            Some(RtpHeader {
                kind: RtpKind::Rtp,
                pt: 120,
                seq: 0x48b6,
                ssrc: 0x001a_7e73,
                ts: 0xd17f_3d75
            })
        );
        // rtp.pcapng packet 1 (1444 bytes; the H.263 payload past the header is zeroed here):
        // PT 34, no marker.
        let p1 = padded("802201100009e8860000164600700000", 1444);
        assert_eq!(
            header(&p1[..]),
            Some(RtpHeader {
                kind: RtpKind::Rtp,
                pt: 34,
                seq: 0x0110,
                ssrc: 0x1646,
                ts: 0x0009_e886
            })
        );
        // rtp.pcapng packet 7 (124 bytes): padding bit and marker set (0xa0 0xa2).
        let p7 = padded("a0a20116000a16940000164600700000", 124);
        assert_eq!(
            header(&p7[..]).map(|h| (h.kind, h.pt, h.seq)),
            Some((RtpKind::Rtp, 34, 0x0116))
        );
    }

    #[test]
    fn real_rtcp_headers() {
        assert_eq!(
            header(&hex(RTCP_SR_1)[..]),
            Some(RtpHeader {
                kind: RtpKind::Rtcp,
                pt: 200,
                seq: 0,
                ssrc: 0x5d93_1534,
                ts: 0
            })
        );
        assert_eq!(
            header(&hex(RTCP_RR_2)[..]),
            Some(RtpHeader {
                kind: RtpKind::Rtcp,
                pt: 201,
                seq: 0,
                ssrc: 0x0193_2db4,
                ts: 0
            })
        );
        assert_eq!(
            header(&hex(SIP_RTCP_104)[..]).map(|h| (h.kind, h.pt, h.ssrc)),
            Some((RtpKind::Rtcp, 200, 0x3796_cb71))
        );
        assert_eq!(
            header(&hex(DISCORD_RTCP_56)[..]).map(|h| (h.kind, h.pt, h.ssrc)),
            Some((RtpKind::Rtcp, 205, 0x001a_7e73))
        );
    }

    #[test]
    fn short_srtcp_receiver_report() {
        // lru_ipv6_caches.pcapng packet 1 ([..face:b00c:0:74fd]:3478, a Messenger relay): an RR
        // with no report blocks (length 1: 8 bytes) followed by the SRTCP index (0x80000005)
        // and a 10-byte tag, 22 bytes in all.
        let p = hex("80c90001734e7b28800000051150ddd7bafeb9cbd7ce");
        let want = Some(RtpHeader {
            kind: RtpKind::Rtcp,
            pt: 201,
            seq: 0,
            ssrc: 0x734e_7b28,
            ts: 0,
        });
        assert_eq!(header(&p[..]), want);
        // The bare 8-byte RR (read through the 8-byte path), and nothing shorter.
        for k in 8..12 {
            assert_eq!(header(&p[..k]), want, "truncated to {k}");
        }
        for k in 0..8 {
            assert_eq!(header(&p[..k]), None, "truncated to {k}");
        }
    }

    #[test]
    fn rfc4571_over_tcp() {
        // rtp.pcapng packet 19: 172.16.168.24:40252 -> 172.16.168.64:5000, length 0x04bc = 1212
        // then RTP PT 8 with the marker (0x88); 1214 bytes (the A-law payload, all 0xd5 in the
        // first 32 bytes, is zeroed past the header here).
        let p = padded("04bc8088c6236448eca900000000d5d5", 1214);
        assert_eq!(
            header_tcp(&p[..]),
            Some(RtpHeader {
                kind: RtpKind::Rtp,
                pt: 8,
                seq: 0xc623,
                ssrc: 0,
                ts: 0x6448_eca9
            })
        );
        // Same header without the framing is not RTP over TCP (first byte 0x04: version 0).
        assert_eq!(header(&p[..]), None);
        // Length off by one either way.
        let mut q = p.clone();
        q.push(0);
        assert_eq!(header_tcp(&q[..]), None);
        assert_eq!(header_tcp(&p[..1213]), None);
        // Framed RTCP (sip.pcap packet 104 with an RFC 4571 length in front).
        let mut r = vec![0, hex(SIP_RTCP_104).len() as u8];
        r.extend(hex(SIP_RTCP_104));
        assert_eq!(header_tcp(&r[..]).map(|h| h.kind), Some(RtpKind::Rtcp));
        // Every truncation: the length no longer matches.
        for k in 0..r.len() {
            assert_eq!(header_tcp(&r[..k]), None, "truncated to {k}");
        }
        // A framed non-RTP payload (DNS) stays None.
        let mut d = vec![0, hex(DNS_2).len() as u8];
        d.extend(hex(DNS_2));
        assert_eq!(header_tcp(&d[..]), None);
    }

    #[test]
    fn truncations_are_rejected_below_the_header() {
        // (payload, shortest length that still holds the whole header)
        let cases: [(Vec<u8>, usize); 7] = [
            (hex(SIP_RTP_95), 12),
            (hex(OPUS_CC1_84), 16),     // 12 + one CSRC
            (hex(DISCORD_EXT_55), 20),  // 12 + 4 (extension header) + 4 (one word)
            (hex(RTCP_SR_1), 52),       // (12 + 1) * 4
            (hex(RTCP_RR_2), 32),       // (7 + 1) * 4
            (hex(SIP_RTCP_104), 28),    // (6 + 1) * 4
            (hex(DISCORD_RTCP_56), 36), // (8 + 1) * 4
        ];
        for (p, min) in &cases {
            let full = header(&p[..]).unwrap();
            for k in 0..p.len() {
                let got = header(&p[..k]);
                if k < *min {
                    assert_eq!(got, None, "{:02x?}.. truncated to {k}", &p[..2]);
                } else {
                    assert_eq!(got, Some(full), "{:02x?}.. truncated to {k}", &p[..2]);
                }
            }
        }
    }

    #[test]
    fn other_protocols_are_not_rtp() {
        for (name, p) in [
            ("dns", DNS_2),
            ("ntp", NTP_1),
            ("quic", QUIC_4),
            ("keepalive", KEEPALIVE_83),
        ] {
            assert_eq!(header(&hex(p)[..]), None, "{name}");
        }
        // dtls.pcap packet 8: DTLS 1.2 ServerHello record (0x16 0xfe 0xfd), first 32 bytes.
        assert_eq!(
            header(
                &hex("16fefd00000000000000000083020000770000000000000077fefdcf21ad74e59a61")[..]
            ),
            None
        );
        // wireguard.pcap packet 3: transport data (type 4), first 32 bytes; types 1..=3 alike.
        for t in 1..=4u8 {
            let mut w = hex("0400000006f47dab0000000000000000a4ebc12ee3f990da18033a0789c04e27");
            w[0] = t;
            assert_eq!(header(&w[..]), None, "wireguard type {t}");
        }
        // NTP: the usual first bytes (LI 0, versions 3/4, modes 3/4: 0x1b 0x1c 0x23 0x24) and
        // LI 3 (unsynchronised, 0xe3 0xe4) never have RTP's version bits.
        for b0 in [0x1bu8, 0x1c, 0x23, 0x24, 0xe3, 0xe4] {
            let mut n = hex(NTP_1);
            n[0] = b0;
            assert_eq!(header(&n[..]), None, "ntp {b0:#x}");
        }
        // LI 2 ("last minute has 59 s", 0xa3/0xa4) does, and stratum 0..=15 is an RTP PT: one
        // such packet is RTP-shaped. Port 123 is excluded in both directions, and the flow state
        // rejects it anyway (its "seq", poll and precision, never changes).
        let mut n = hex(NTP_1);
        n[0] = 0xa4;
        assert_eq!(header(&n[..]).map(|h| (h.pt, h.seq)), Some((2, 0x07eb)));
        assert!(excluded_ports(123, 40000) && excluded_ports(40000, 123));
        // STUN binding request (first byte 0x00) and TURN ChannelData (0x40).
        assert_eq!(
            header(&hex("000100002112a442000000000000000000000000")[..]),
            None
        );
        assert_eq!(
            header(&hex("4000001480086fae000004d83796cb71d5d5d5d5d5d5d5d5")[..]),
            None
        );
        // RakNet datagrams start with flags 0x84: version 2 with CC=4, so the 24-byte one is
        // too short for its CSRC list, while a 28-byte one (raknet.pcap packet 55) is
        // RTP-shaped; the flow state rejects those (see rtp_state).
        assert_eq!(header(&hex(RAKNET_46)[..]), None);
        assert_eq!(
            header(&hex(RAKNET_55)[..]).map(|h| (h.pt, h.seq)),
            Some((0, 0))
        );
    }

    #[test]
    fn near_misses() {
        let base = hex(SIP_RTP_95);
        // Versions 0, 1, 3.
        for b0 in [0x00u8, 0x40, 0xC0] {
            let mut p = base.clone();
            p[0] = b0;
            assert_eq!(header(&p[..]), None, "b0 {b0:#x}");
        }
        // Payload types 35..=95 (marker clear and set) are not RTP, and only 200..=213 of the
        // marker-set ones are RTCP.
        for pt in 35u8..=95 {
            for m in [0u8, 0x80] {
                let mut p = base.clone();
                p[1] = pt | m;
                // An RTCP length that fits (7 words), so that only the type decides.
                p[2] = 0;
                p[3] = 6;
                let b1 = pt | m;
                let want = if (200..=213).contains(&b1) {
                    Some(RtpKind::Rtcp)
                } else {
                    None
                };
                assert_eq!(header(&p[..]).map(|h| h.kind), want, "b1 {b1}");
            }
        }
        // RTCP types nDPI accepts and we do not (192..=199), and 214+.
        let sr = hex(SIP_RTCP_104);
        for b1 in [192u8, 193, 194, 195, 196, 199, 214, 223] {
            let mut p = sr.clone();
            p[1] = b1;
            assert_eq!(header(&p[..]), None, "rtcp b1 {b1}");
        }
        // RTCP length 0 (no sender SSRC) and length past the datagram.
        let mut p = sr.clone();
        p[2] = 0;
        p[3] = 0;
        assert_eq!(header(&p[..]), None);
        let mut p = sr.clone();
        p[3] = (sr.len() / 4) as u8; // (len + 1) * 4 = payload_len + 4
        assert_eq!(header(&p[..]), None);
        p[3] = (sr.len() / 4 - 1) as u8; // exactly the whole datagram
        assert!(header(&p[..]).is_some());
        // SR announcing more report blocks than its length holds (RC=1 with len 6).
        let mut p = sr.clone();
        p[0] = 0x81;
        assert_eq!(header(&p[..]), None);
        // RR announcing 2 blocks with length 7 (room for one).
        let mut p = hex(RTCP_RR_2);
        p[0] = 0x82;
        assert_eq!(header(&p[..]), None);
        // CSRC count larger than the payload: CC=15 needs 72 bytes.
        let mut p = base[..71].to_vec();
        p[0] = 0x8F;
        assert_eq!(header(&p[..]), None);
        p.push(0);
        assert!(header(&p[..]).is_some());
        // Extension length pointing past the payload (Discord packet, ext words 0x0001 -> 0x0026).
        let mut p = hex(DISCORD_EXT_55);
        p[15] = 0x26; // 16 + 4 * 38 = 168 > 160
        assert_eq!(header(&p[..]), None);
        p[15] = 0x24; // 16 + 4 * 36 = 160: exactly fits
        assert!(header(&p[..]).is_some());
    }

    #[test]
    fn random_bytes_never_panic() {
        // xorshift: any pattern, any length, never a panic; RTP-shaped ones must be consistent.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut buf = [0u8; 96];
        for _ in 0..20_000 {
            for b in buf.iter_mut() {
                x = crate::testing::xorshift(x);
                *b = x as u8;
            }
            let len = (x >> 40) as usize % buf.len();
            let p = &buf[..len];
            if let Some(h) = header(p) {
                assert_eq!(p[0] & 0xC0, 0x80);
                match h.kind {
                    RtpKind::Rtp => assert!(is_rtp_pt(p[1] & 0x7F) && len >= 12),
                    RtpKind::Rtcp => assert!((200..=213).contains(&p[1]) && len >= 8),
                }
            }
            let _ = header_tcp(p);
        }
    }

    #[test]
    fn port_exclusions() {
        // nDPI's list, in both directions.
        for p in [53u16, 123, 0, 1023, 5353, 5355, 9600, 30303] {
            assert!(excluded_ports(p, 40000), "sport {p}");
            assert!(excluded_ports(40000, p), "dport {p}");
        }
        // Kept: TURN on 443, the usual media ranges, STUN/TURN ports, 1024.
        for p in [443u16, 1024, 3478, 5004, 10000, 16384, 19302, 40392, 50003] {
            assert!(!excluded_ports(p, 40000), "sport {p}");
            assert!(!excluded_ports(40000, p), "dport {p}");
        }
        // The corpus RTP flows.
        assert!(!excluded_ports(30000, 40392)); // sip.pcap
        assert!(!excluded_ports(6000, 6000)); // rtp.pcapng
        assert!(!excluded_ports(25963, 31601)); // rtcp_multiple_pkts_in_the_same_datagram.pcap
    }
}#[cfg(test)]
mod compound_tests {
    use super::*;

    fn sr_sdes() -> Vec<u8> {
        // FreeSWITCH's SR (6 + 6 words: one report block) and SDES CNAME, as in
        // rtcp_multiple_pkts_in_the_same_datagram.pcap.
        let mut p = vec![0x81, 200, 0, 12];
        p.extend_from_slice(&[0x11; 48]);
        p.extend_from_slice(&[0x81, 202, 0, 2, 0x5D, 0x93, 0x15, 0x34, 1, 2, b'a', b'b']);
        p
    }

    #[test]
    fn compound_datagrams_decide_in_one_packet() {
        let p = sr_sdes();
        assert!(compound_rtcp(&p[..]));
        // A lone report is not compound; nor is a chain that misses the end by a byte.
        assert!(!compound_rtcp(&p[..52]));
        let mut longer = p.clone();
        longer.push(0);
        assert!(!compound_rtcp(&longer[..]));
        // It must start with SR or RR.
        let mut sdes_first = p.clone();
        sdes_first[1] = 202;
        assert!(!compound_rtcp(&sdes_first[..]));
        // RTP is not RTCP.
        let mut rtp = p.clone();
        rtp[1] = 0;
        assert!(!compound_rtcp(&rtp[..]));
    }

    #[test]
    fn random_bytes_are_not_compound_rtcp() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            x = crate::testing::xorshift(x);
            x
        };
        for _ in 0..20_000 {
            let n = (next() % 200) as usize;
            let mut p: Vec<u8> = (0..n).map(|_| next() as u8).collect();
            if p.len() > 1 {
                p[0] = 0x80;
                p[1] = 200;
            }
            if compound_rtcp(&p[..]) {
                // Possible only when the lengths chain exactly; check that they do.
                let mut off = 0;
                let mut n = 0;
                while off + 4 <= p.len() {
                    off += (u16::from_be_bytes([p[off + 2], p[off + 3]]) as usize + 1) * 4;
                    n += 1;
                }
                assert!(off == p.len() && n >= 2);
            }
        }
    }
}


