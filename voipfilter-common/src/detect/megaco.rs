//! Megaco / H.248 text encoding (RFC 3525, ITU-T H.248.1 Annex B) over UDP. Mirrors nDPI
//! `src/lib/protocols/megaco.c`.
//!
//! A text Megaco message starts with its header `MegacopToken "/" Version SEP mId`:
//! * `MegacopToken` is `MEGACO` (any case; ABNF strings are case-insensitive) or its compact
//!   form `!`;
//! * `Version` is one digit, 1-3;
//! * `SEP` is one space or tab;
//! * `mId` starts with `[` (an IPv4/IPv6 address, `[192.0.2.1]:2944`) or `<` (a domain name,
//!   `<mg1.example.net>`).
//!
//! So the payload starts with `!/1 [`, `!/1 <`, `MEGACO/1 [` or `MEGACO/1 <` (5 or 10 bytes at
//! least). Packets needed: 1. XDP class: S (UDP port 2944 is only nDPI's give-up guess, P).
//!
//! Where we differ from nDPI, and why: nDPI accepts only version 1, `<` only after `!`, and
//! upper-case `MEGACO`; we also accept versions 2 and 3 (H.248.1 v2/v3 gateways announce them),
//! `<` after `MEGACO`, and any case, since all are valid headers and the pattern stays as strong.
//! Not recognised, as in nDPI: the binary (ASN.1) encoding, `mId`s that are device names or MTP
//! addresses (free text, too weak), more than one separator character, and Megaco over TCP
//! (RFC 3525 Annex D.2 frames it in TPKT; the engine calls this detector on UDP payloads).

use crate::Bytes;

use super::{sip::Ci4, tag2};

const MEGA: Ci4 = Ci4::new(b"MEGA");
const CO_SLASH: Ci4 = Ci4::new(b"CO/");

/// Whether the payload starts with a text Megaco message header.
#[inline(always)]
pub fn detect<B: Bytes + ?Sized>(pl: &B) -> bool {
    let Some(w0) = pl.be32(0) else { return false };
    // Offset of the version digit.
    let v = if (w0 >> 16) as u16 == tag2(b"!/") {
        2
    } else if MEGA.eq(w0) && pl.be32(4).is_some_and(|w| CO_SLASH.eq(w)) {
        7
    } else {
        return false;
    };
    // Version, separator, first byte of the mId, in one load.
    let Some([version, sep, mid]) = pl.array::<3>(v) else { return false };
    matches!(version, b'1'..=b'3') && matches!(sep, b' ' | b'\t') && matches!(mid, b'[' | b'<')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(p: &[u8]) -> bool {
        detect(p)
    }

    // RFC 3525 Annex A.1.1, message 1 (MG1 to MGC, ServiceChange), as printed in the
    // Erlang/OTP megaco guide (pretty text, long keywords).
    const RFC3525_A1: &[u8] = b"MEGACO/1 [124.124.124.222]\n  Transaction = 9998 {\n    Context = - {\n      \
ServiceChange = ROOT {\n        Services {\n          Method = Restart,\n          \
ServiceChangeAddress = 55555,\n          Profile = ResGW/1,\n          Reason = \"901 MG Cold Boot\"\n        \
}\n      }\n    }\n  }\n";
    // The same message in the compact text encoding (short keywords, `!` token).
    const COMPACT: &[u8] =
        b"!/1 [124.124.124.222] T=9998{\n  C=-{SC=ROOT{SV{MT=RS,AD=55555,PF=ResGW/1,RE=\"901 MG Cold Boot\"}}}}\n";
    // RFC 3525 Annex A.1.1, the MGC's reply (its mId is the MGC's address and port).
    const RFC3525_A1_REPLY: &[u8] =
        b"MEGACO/1 [123.123.123.4]:55555\nReply = 9998 {\n   Context = - {ServiceChange = ROOT {\n      \
Services {ServiceChangeAddress=55555, Profile=ResGW/1} } }\n}\n";

    #[test]
    fn headers() {
        assert!(d(RFC3525_A1));
        assert!(d(RFC3525_A1_REPLY));
        assert!(d(COMPACT));
        assert!(d(b"!/1 <mg1.example.net>:2944 T=1{C=-{AV=ROOT}}"));
        assert!(d(b"MEGACO/1 <mgc.example.net>\nTransaction = 1 {}"));
        assert!(d(b"MEGACO/2 [2001:db8::1]:2944\nTransaction = 7 {}"));
        assert!(d(b"megaco/3\t[192.0.2.1]:2944\n"));
        assert!(d(b"Megaco/1 [192.0.2.1]"));
        assert!(d(b"!/1 ["), "the shortest header nDPI takes");
        assert!(d(b"MEGACO/1 ["));
    }

    #[test]
    fn near_misses() {
        for p in [
            &b"!/1[192.0.2.1]"[..],
            b"!/1 192.0.2.1",
            b"!/0 [192.0.2.1]",
            b"!/4 [192.0.2.1]",
            b"!/1  [192.0.2.1]",
            b"!\\1 [192.0.2.1]",
            b"?/1 [192.0.2.1]",
            b"MEGACO/1 mg1/line/1\n",
            b"MEGACO/1 MTP{0A1B}\n",
            b"MEGACO 1 [192.0.2.1]",
            b"MEGACO/ [192.0.2.1]",
            b"MEGAC0/1 [192.0.2.1]",
            b"MEGACOO/1 [192.0.2.1]",
            b"MEGAC\x0f/1 [192.0.2.1]",
            b" MEGACO/1 [192.0.2.1]",
            b"GET / HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n",
            b"INVITE sip:bob@biloxi.com SIP/2.0\r\n",
            b"RSIP 1 *@gw MGCP 1.0\n",
        ] {
            assert!(!d(p), "{}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn other_protocols() {
        let dns = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
        let quic = b"\xc3\x00\x00\x00\x01\x08\x83\x94\xc8\xf0\x3e\x51\x57\x08\x00\x00\x44\x9e";
        let mut ntp = [0u8; 48];
        ntp[0] = 0x23;
        for p in [&dns[..], quic, &ntp, b"", b"!", b"!/"] {
            assert!(!d(p), "{p:02x?}");
        }
    }

    #[test]
    fn every_truncation_is_false() {
        for (p, min) in [(RFC3525_A1, 10), (COMPACT, 5), (RFC3525_A1_REPLY, 10)] {
            for n in 0..=p.len() {
                assert_eq!(d(&p[..n]), n >= min, "{n} bytes of {}", String::from_utf8_lossy(p));
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for len in 0..300 {
            let v: Vec<u8> = (0..len)
                .map(|_| {
                    x = crate::testing::xorshift(x);
                    x as u8
                })
                .collect();
            assert!(!d(&v), "{v:02x?}");
        }
    }
}
