//! H.323: H.225.0 call signalling and H.245 control over TCP (TPKT framing), and H.225.0 RAS over
//! UDP.
//!
//! Mirrors nDPI `src/lib/protocols/h323.c` and `tpkt_verify_hdr` in `src/lib/ndpi_utils.c`
//! (facts §16). XDP class: **S**, one packet.
//!
//! [`detect_tcp`], any port (H.245 runs on dynamic ports; H.225 on 1720 by default):
//! * TPKT (RFC 1006): `p[0] == 3`, `p[1] == 0`, `be16(p[2..4]) == payload_len`, and the payload
//!   is longer than 20 bytes (TPKT + a Q.931 header with at least one IE);
//! * then either **H.245**: `p[7] == 0x06` (OID length) and `be32(p[8..12]) == 0x00088175`, the
//!   start of the protocolIdentifier `0.0.8.245.0.v` of a TerminalCapabilitySet;
//! * or **H.225.0 / Q.931**: protocol discriminator `p[4] == 0x08` and call-reference length
//!   `p[5] <= 3`.
//!
//! Difference from nDPI: nDPI tests `(p[5] & 0x0F) <= 3` and ignores the high nibble, which
//! Q.931 (§4.3) defines as spare, always 0. We require it to be 0. This is the byte where an
//! ISO 8073 (COTP) TPDU, the other big TPKT user (RDP on 3389, S7comm and MMS on 102), carries its
//! TPDU code (0xE0 CR, 0xD0 CC, 0xF0 DT, 0x80 DR ...), after its length indicator in `p[4]`; a
//! COTP TPDU with length indicator 8 would pass nDPI's test and does not pass ours.
//!
//! [`detect_ras`], UDP: `p[4] == 0x06` and `be32(p[5..9]) == 0x0008914A`, the start of the
//! protocolIdentifier `0.0.8.2250.0.v` that opens GRQ/RRQ/GCF/RCF..., payload longer than 20
//! bytes. On ports 1718 (gatekeeper discovery) and 1719 (RAS), either side, that is all, as in
//! nDPI (which checks 1719). On other ports we also require the rest of the OID: `p[9] == 0` and
//! the H.225.0 version `p[10]` in 1..=7, which makes 7 fixed bytes at a fixed offset.
//!
//! Packets needed: 1. Several H.323 TCP segments do not match on their own (a TPKT header alone
//! in a 4-byte segment, later H.245 messages); the flow is decided by its first matching one.
//! Verifier notes: no loops; all offsets constant.

use crate::Bytes;

/// H.225.0 RAS port.
pub const RAS_PORT: u16 = 1719;
/// H.225.0 gatekeeper discovery (multicast GRQ) port.
pub const DISCOVERY_PORT: u16 = 1718;

const MIN_LEN: usize = 21;
const H245_OID: u32 = 0x0008_8175;
const H225_OID: u32 = 0x0008_914A;

/// Whether a TCP payload is a TPKT-framed H.225.0 (Q.931) or H.245 message.
#[inline(always)]
pub fn detect_tcp<B: Bytes + ?Sized>(pl: &B) -> bool {
    let len = pl.len();
    if len < MIN_LEN {
        return false;
    }
    let Some(h) = pl.array::<12>(0) else {
        return false;
    };
    if h[0] != 3 || h[1] != 0 || u16::from_be_bytes([h[2], h[3]]) as usize != len {
        return false;
    }
    if h[7] == 0x06 && u32::from_be_bytes([h[8], h[9], h[10], h[11]]) == H245_OID {
        return true;
    }
    h[4] == 0x08 && h[5] <= 3
}

/// Whether a UDP payload is an H.225.0 RAS message carrying the H.225.0 protocol identifier.
#[inline(always)]
pub fn detect_ras<B: Bytes + ?Sized>(pl: &B, sport: u16, dport: u16) -> bool {
    if pl.len() < MIN_LEN {
        return false;
    }
    let Some(h) = pl.array::<11>(0) else {
        return false;
    };
    if h[4] != 0x06 || u32::from_be_bytes([h[5], h[6], h[7], h[8]]) != H225_OID {
        return false;
    }
    let ras_port = |p: u16| p == RAS_PORT || p == DISCOVERY_PORT;
    ras_port(sport) || ras_port(dport) || (h[9] == 0 && (1..=7).contains(&h[10]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rtp::tests::{DNS_2, NTP_1, QUIC_4, SIP_RTP_95, hex};

    // h323.pcap packet 6: 10.1.3.143:32803 -> 10.1.6.18:1720, TPKT + Q.931 SETUP (CRV length 2,
    // message type 0x05), first 40 of 160 bytes (the rest is H.225 UUIE, zeroed here).
    const SETUP_6: &str =
        "030000a0080277f40504038090a528086d2e6a656d6563007e00850520a8060008914a0004014006";
    // h323.pcap packet 25: 10.1.6.18:1232 -> 10.1.3.143:32804, TPKT + H.245
    // TerminalCapabilitySet with protocolIdentifier 0.0.8.245.0.5, whole 28-byte payload.
    const H245_25: &str = "0300001c0230010600088175000500801bc520401d00800000001bc5";
    // h323.pcap packet 66: 17.2.0.122:1720 -> 17.2.0.124:3032, Q.931 RELEASE COMPLETE (0x5a),
    // whole 46-byte payload.
    const RELCOMP_66: &str = "0300002e080280015a7e00220525c0060008914a00045808110024ab157276fa18109a58001321f0699002800100";
    // h323.pcap packet 59: 17.2.0.124:2034 -> 17.2.0.161:1719, RAS with the H.225.0 OID
    // 0.0.8.2250.0.4, whole 38-byte payload.
    const RAS_59: &str =
        "02200000060008914a0004001102007c07f22200ae01003d0001030085c89a51208003014000";
    // h323.pcap packet 71: 10.47.208.204:1719 -> 10.47.208.50:1719, RAS (OID version 6), first
    // 40 of 337 bytes.
    const RAS_71: &str =
        "0e804692060008914a00060001000a2fd0cc06b801000a2fd0cc06b722c0820101000754616e6462";

    fn padded(p: &str, len: usize) -> Vec<u8> {
        let mut v = hex(p);
        v.resize(len, 0);
        v
    }

    #[test]
    fn real_tcp_messages() {
        assert!(detect_tcp(&padded(SETUP_6, 160)[..]));
        assert!(detect_tcp(&hex(H245_25)[..]));
        assert!(detect_tcp(&hex(RELCOMP_66)[..]));
        // h323.pcap packet 47 (192.168.0.208:56837 -> 192.168.0.1:1720): SETUP, 126 bytes (first
        // 40 here, the rest zeroed).
        assert!(detect_tcp(
            &padded(
                "0300007e0802000105040388c0a56c04018031377e00670520a8060008914a000301400e00410042",
                126
            )[..]
        ));
    }

    #[test]
    fn tcp_segments_that_do_not_match_alone() {
        // h323.pcap packet 48: a TPKT header alone (length 0x2b) in a 4-byte segment, and packet
        // 50: the Q.931 message without its TPKT header.
        assert!(!detect_tcp(&hex("0300002b")[..]));
        assert!(!detect_tcp(
            &padded(
                "08028001017e001f050380060008914a0002020120110000000000000000000000000000000000",
                39
            )[..]
        ));
        // Packets 27 and 38: H.245 messages of 11 and 24 bytes that are neither (short, or
        // p[4] = 0x03).
        assert!(!detect_tcp(&hex("0300000b01000080924fd5")[..]));
        assert!(!detect_tcp(
            &hex("03000018030000640c201d800b0d0001000a01038f138980")[..]
        ));
        // h323-overflow.pcap packet 1 (192.168.1.1:31337 -> 192.168.1.2:80): the 4-byte TPKT
        // header 03 00 00 04 that once overflowed nDPI.
        assert!(!detect_tcp(&hex("03000004")[..]));
        assert!(!detect_ras(&hex("03000004")[..], 1719, 1719));
    }

    #[test]
    fn every_truncation_fails() {
        for p in [hex(H245_25), hex(RELCOMP_66), padded(SETUP_6, 160)] {
            for k in 0..p.len() {
                assert!(!detect_tcp(&p[..k]), "truncated to {k}");
            }
        }
        for p in [hex(RAS_59)] {
            for k in 0..MIN_LEN {
                assert!(!detect_ras(&p[..k], 1719, 2034), "truncated to {k}");
            }
            // RAS has no length field: any prefix longer than 20 still carries the OID.
            for k in MIN_LEN..=p.len() {
                assert!(detect_ras(&p[..k], 1719, 2034), "truncated to {k}");
            }
        }
    }

    #[test]
    fn tcp_near_misses() {
        let base = hex(RELCOMP_66);
        // TPKT version, reserved byte, length +-1.
        for (off, v) in [(0usize, 2u8), (1, 1), (3, 0x2d), (3, 0x2f)] {
            let mut p = base.clone();
            p[off] = v;
            assert!(!detect_tcp(&p[..]), "p[{off}] = {v:#x}");
        }
        // Q.931: other discriminators, CRV lengths 4..=15, and a non-zero spare nibble (what
        // nDPI's `& 0xF` lets through: COTP TPDU codes).
        for (off, v) in [
            (4usize, 0x09u8),
            (4, 0x02),
            (5, 4),
            (5, 0x0f),
            (5, 0x12),
            (5, 0xe0),
            (5, 0xf0),
        ] {
            let mut p = base.clone();
            p[off] = v;
            assert!(!detect_tcp(&p[..]), "p[{off}] = {v:#x}");
        }
        // CRV lengths 0..=3 pass.
        for v in 0..=3u8 {
            let mut p = base.clone();
            p[5] = v;
            assert!(detect_tcp(&p[..]), "crv length {v}");
        }
        // H.245: a wrong OID byte.
        let mut p = hex(H245_25);
        p[11] = 0x76;
        assert!(!detect_tcp(&p[..]));
        // TPKT but not H.323, built from the specs: an RDP X.224 Connection Request (LI 0x26,
        // CR 0xe0, "Cookie: mstshash=user1", RDP_NEG_REQ; MS-RDPBCGR 2.2.1.1) and an S7comm
        // Setup Communication in a COTP DT TPDU (02 f0 80).
        let mut rdp = hex(
            "0300002b26e00000000000436f6f6b69653a206d737473686173683d75736572310d0a0100080003000000",
        );
        rdp.truncate(0x2b);
        assert_eq!(rdp.len(), 0x2b);
        assert!(!detect_tcp(&rdp[..]));
        let s7 = padded("0300001902f08032010000000000080000f0000001000101e0", 25);
        assert!(!detect_tcp(&s7[..]));
    }

    #[test]
    fn real_ras() {
        assert!(detect_ras(&hex(RAS_59)[..], 2034, 1719));
        assert!(detect_ras(&padded(RAS_71, 337)[..], 1719, 1719));
        // Off the RAS ports the whole OID must be there (it is in both captures).
        assert!(detect_ras(&hex(RAS_59)[..], 2034, 40000));
        assert!(detect_ras(&padded(RAS_71, 337)[..], 40000, 40001));
        // h323.pcap packet 64 (17.2.0.161:1719 -> 17.2.0.124:2034): a RAS message without the OID.
        assert!(!detect_ras(
            &hex("2b000002400a00001102007a06b8003b1400c001800b9801f80100010001000100")[..],
            1719,
            2034
        ));
    }

    #[test]
    fn ras_near_misses() {
        let base = hex(RAS_59);
        for (off, v) in [(4usize, 0x05u8), (5, 1), (6, 0x09), (7, 0x90), (8, 0x4b)] {
            let mut p = base.clone();
            p[off] = v;
            assert!(!detect_ras(&p[..], 2034, 1719), "p[{off}] = {v:#x}");
        }
        // Version 0 or 8, or a non-zero 5th OID arc: fine on 1719, not elsewhere.
        for (off, v) in [(10usize, 0u8), (10, 8), (9, 1)] {
            let mut p = base.clone();
            p[off] = v;
            assert!(detect_ras(&p[..], 2034, 1719), "p[{off}] = {v:#x} on 1719");
            assert!(detect_ras(&p[..], 1718, 2034), "p[{off}] = {v:#x} on 1718");
            assert!(
                !detect_ras(&p[..], 2034, 40000),
                "p[{off}] = {v:#x} off-port"
            );
        }
    }

    #[test]
    fn other_protocols() {
        for (name, p) in [
            ("dns", DNS_2),
            ("ntp", NTP_1),
            ("quic", QUIC_4),
            ("rtp", SIP_RTP_95),
        ] {
            assert!(!detect_tcp(&hex(p)[..]), "{name}");
            assert!(!detect_ras(&hex(p)[..], 1719, 1719), "{name}");
        }
        assert!(!detect_tcp(&[][..]));
        assert!(!detect_ras(&[][..], 1719, 1719));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x94D0_49BB_1331_11EB;
        let mut buf = [0u8; 64];
        for i in 0..20_000u32 {
            for b in buf.iter_mut() {
                x = crate::testing::xorshift(x);
                *b = x as u8;
            }
            let len = (x >> 40) as usize % buf.len();
            if i & 1 == 0 {
                buf[..4].copy_from_slice(&[3, 0, 0, len as u8]);
            }
            let _ = detect_tcp(&buf[..len]);
            let _ = detect_ras(&buf[..len], 1719, 1719);
        }
    }
}
