//! Cisco SCCP ("Skinny Client Control Protocol"), phone to CallManager over TCP.
//!
//! Mirrors nDPI `src/lib/protocols/skinny.c` (facts §19). XDP class: **S**, one packet.
//!
//! Checked, on a TCP payload with port 2000 on either side:
//! * at least 12 bytes: message length (le32 at 0), header version (le32 at 4), message id (le32
//!   at 8);
//! * `length + 8 == payload_len` (the length counts the message id and the data, not itself nor
//!   the version): one whole message in the segment;
//! * header version 0 (basic), 0x0A, 0x0B, or 0x0F..=0x16 (the versions CallManager and phones
//!   announce since CCM 5);
//! * message id in 0x0000..=0x009F (station to CallManager), 0x0100..=0x0160 (CallManager to
//!   station), 0x8000 or 0x8100..=0x8101.
//!
//! The rule is weak without the port (three small little-endian integers), so, like nDPI, it
//! runs on TCP/2000 only. A segment holding several messages (a phone's capabilities burst) or
//! part of one is not recognised; the registration exchange that opens a connection is one
//! message per segment (`sccp_hw_conf_register.pcapng` is found on its first data packet, a
//! RegisterMessage). SCCP over TLS (port 2443) is not visible here.
//!
//! Verifier notes: no loops; all offsets constant.

use crate::Bytes;

/// The SCCP TCP port.
pub const PORT: u16 = 2000;

/// Whether a TCP payload is one SCCP message (on port 2000).
#[inline(always)]
pub fn detect<B: Bytes + ?Sized>(pl: &B, sport: u16, dport: u16) -> bool {
    if sport != PORT && dport != PORT {
        return false;
    }
    let Some(h) = pl.array::<12>(0) else {
        return false;
    };
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let version = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let id = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    len as u64 + 8 == pl.len() as u64
        && matches!(version, 0 | 0x0A | 0x0B | 0x0F..=0x16)
        && matches!(id, 0..=0x9F | 0x100..=0x160 | 0x8000 | 0x8100..=0x8101)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rtp::tests::{DNS_2, NTP_1, QUIC_4, SIP_RTP_95, hex};

    // sccp_hw_conf_register.pcapng, 10.180.110.58:46461 <-> 10.180.110.48:2000.
    // Packet 4: RegisterMessage (0x0001), length 0x80, version 0, "NONSECURE_CONF" device name;
    // first 64 of 136 bytes.
    const REGISTER_4: &str = "8000000000000000010000004e4f4e5345435552455f434f4e4600000000000001000000ac126e3a3400000008000000000000001202010080007f3a555981c0";
    // Packet 6: IpPortMessage (0x0002), whole 16 bytes.
    const IPPORT_6: &str = "08000000000000000200000000000000";
    // Packet 8: RegisterAckMessage (0x0081) from CallManager, whole 32 bytes.
    const REGACK_8: &str = "1800000000000000810000001e000000556e7573656400003c00000012008028";
    // Packet 9: CapabilitiesReqMessage (0x009b), whole 12 bytes.
    const CAPREQ_9: &str = "04000000000000009b000000";
    // Packet 11: header version 0x12 (CCM 7+), message 0x002c, whole 28 bytes.
    const V12_11: &str = "14000000120000002c00000034000000080000000800000000000000";
    // Packet 13: two messages in one 316-byte segment (first one 12 bytes long).
    const TWO_MSGS_13: &str = "04000000120000000f00000028010000120000001000000009000000040000001e0000000000000000000000020000001e00000000000000000000000c000000";

    fn padded(p: &str, len: usize) -> Vec<u8> {
        let mut v = hex(p);
        v.resize(len, 0);
        v
    }

    #[test]
    fn real_messages() {
        assert!(detect(&padded(REGISTER_4, 136)[..], 46461, 2000));
        assert!(detect(&hex(IPPORT_6)[..], 46461, 2000));
        assert!(detect(&hex(REGACK_8)[..], 2000, 46461));
        assert!(detect(&hex(CAPREQ_9)[..], 2000, 46461));
        assert!(detect(&hex(V12_11)[..], 46461, 2000));
        // Several messages in one segment: not one message.
        assert!(!detect(&padded(TWO_MSGS_13, 316)[..], 46461, 2000));
    }

    #[test]
    fn port_2000_only() {
        assert!(!detect(&hex(REGACK_8)[..], 2001, 46461));
        assert!(!detect(&hex(IPPORT_6)[..], 46461, 20000));
    }

    #[test]
    fn every_truncation_fails() {
        for p in [
            padded(REGISTER_4, 136),
            hex(REGACK_8),
            hex(CAPREQ_9),
            hex(V12_11),
        ] {
            for k in 0..p.len() {
                assert!(!detect(&p[..k], 2000, 46461), "truncated to {k}");
            }
            let mut q = p.clone();
            q.push(0);
            assert!(!detect(&q[..], 2000, 46461), "one byte more");
        }
    }

    #[test]
    fn versions_and_message_ids() {
        let base = hex(REGACK_8);
        let with = |version: u32, id: u32| {
            let mut p = base.clone();
            p[4..8].copy_from_slice(&version.to_le_bytes());
            p[8..12].copy_from_slice(&id.to_le_bytes());
            detect(&p[..], 2000, 46461)
        };
        for v in [0u32, 0x0A, 0x0B, 0x0F, 0x11, 0x12, 0x16] {
            assert!(with(v, 0x81), "version {v:#x}");
        }
        for v in [1u32, 9, 0x0C, 0x0E, 0x17, 0x100, 0x0A00_0000] {
            assert!(!with(v, 0x81), "version {v:#x}");
        }
        for id in [0u32, 0x9F, 0x100, 0x160, 0x8000, 0x8100, 0x8101] {
            assert!(with(0, id), "id {id:#x}");
        }
        for id in [
            0xA0u32,
            0xFF,
            0x161,
            0x7FFF,
            0x8001,
            0x80FF,
            0x8102,
            0x0001_0001,
        ] {
            assert!(!with(0, id), "id {id:#x}");
        }
    }

    #[test]
    fn length_field_extremes() {
        // 0xFFFFFFF8 + 8 overflows a u32: must not wrap to a match.
        let mut p = hex(CAPREQ_9);
        p[..4].copy_from_slice(&0xFFFF_FFF8u32.to_le_bytes());
        assert!(!detect(&p[..], 2000, 46461));
        p[..4].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        assert!(!detect(&p[..], 2000, 46461));
    }

    #[test]
    fn other_protocols_on_port_2000() {
        for (name, p) in [
            ("dns", DNS_2),
            ("ntp", NTP_1),
            ("quic", QUIC_4),
            ("rtp", SIP_RTP_95),
        ] {
            assert!(!detect(&hex(p)[..], 2000, 40000), "{name}");
        }
        // An HTTP request and a TLS ClientHello start to port 2000.
        assert!(!detect(
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            40000,
            2000
        ));
        assert!(!detect(
            &hex("160301020001000200fe03030000000000000000")[..],
            40000,
            2000
        ));
        assert!(!detect(&[][..], 2000, 2000));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0xBF58_476D_1CE4_E5B9;
        let mut buf = [0u8; 64];
        for _ in 0..20_000u32 {
            for b in buf.iter_mut() {
                x = crate::testing::xorshift(x);
                *b = x as u8;
            }
            let len = (x >> 40) as usize % buf.len();
            buf[..4].copy_from_slice(&(len as u32).wrapping_sub(8).to_le_bytes());
            let _ = detect(&buf[..len], 2000, 2000);
        }
    }
}
