//! IAX2 (Inter-Asterisk eXchange, RFC 5456): the full frame that opens a call or a
//! registration.
//!
//! Mirrors nDPI `src/lib/protocols/iax.c` (facts §15). XDP class: **S**, one packet.
//!
//! Checked, on the UDP payload (full-frame header, RFC 5456 §8.1.1):
//! * at least 12 bytes; F bit `p[0] & 0x80` set (full frame);
//! * outbound sequence number `p[8] == 0` and inbound `p[9]` in {0, 1}: the first frames of a
//!   call (NEW and its ACK/ACCEPT/AUTHREQ) or of a registration;
//! * frame type `p[10] == 0x06` (IAX control) and subclass `p[11] <= 15` (NEW .. REGACK);
//! * then either the payload is exactly 12 bytes, or a walk over at most 15 information elements
//!   (type byte, length byte, value) from offset 12 lands exactly on the payload end.
//!
//! Ports: nDPI requires UDP port 4569 on either side; we do too for the weak forms (a bare
//! 12-byte frame, an IE walk of any shape). On **any other port** we accept the frame only when it
//! is stronger: at least one IE, the walk ending exactly at the payload end, and a non-zero
//! source call number (`be16(0) & 0x7FFF`, which RFC 5456 §8.1.1 never sets to 0 for a call).
//! That catches IAX2 peers moved off 4569 (Asterisk's `bindport`) by their NEW or REGREQ, which
//! always carry IEs, while the bare 12-byte ACKs stay port-bound. Random data passes the header
//! bytes with probability about 2^-29, before the walk.
//!
//! Verifier notes: one loop of 15 iterations; the running offset is clamped with a constant
//! ([`MAX_IE_OFF`]) before each read. Measured on kernel 6.18 (a test XDP program calling the
//! detectors of this crate): about 1.9k processed instructions alone, but the walk's exits leave
//! different bounds on live registers (the payload length, packet pointers), so code placed
//! *after* it in the same program is verified once per exit: RTP header + flow state after IAX
//! cost 160k processed instructions, before it 13k. Call this detector last, or in its own
//! tail-called program.
//!
//! `iax.pcap` (82.110.36.84:4569 <-> 192.168.2.120:4566) is found on its first packet (a NEW with
//! seven IEs), as by nDPI.

use crate::Bytes;

/// The IAX2 UDP port.
pub const PORT: u16 = 4569;
/// Information elements walked (nDPI's `NDPI_IAX_MAX_INFORMATION_ELEMENTS`).
pub const MAX_IES: usize = 15;
/// Constant bound on the IE walk offset for the verifier (12 + 15 * 257 = 3867 is the most the
/// walk can reach).
pub const MAX_IE_OFF: usize = 4096;

const FULL_HDR: usize = 12;
const FRAME_IAX: u8 = 0x06;

/// Whether a UDP payload is an IAX2 call or registration setup frame.
#[inline(always)]
pub fn detect<B: Bytes + ?Sized>(pl: &B, sport: u16, dport: u16) -> bool {
    let Some(h) = pl.array::<12>(0) else {
        return false;
    };
    if h[0] & 0x80 == 0 || h[8] != 0 || h[9] > 1 || h[10] != FRAME_IAX || h[11] > 15 {
        return false;
    }
    let on_port = sport == PORT || dport == PORT;
    let len = pl.len();
    if len == FULL_HDR {
        return on_port;
    }
    if !on_port && u16::from_be_bytes([h[0], h[1]]) & 0x7FFF == 0 {
        return false;
    }
    ies_end_exactly(pl, len)
}

/// The IE walk from offset 12 ends exactly at `len` within [`MAX_IES`] elements.
#[inline(always)]
fn ies_end_exactly<B: Bytes + ?Sized>(pl: &B, len: usize) -> bool {
    let mut off = FULL_HDR;
    for _ in 0..MAX_IES {
        if off > MAX_IE_OFF || off + 1 >= len {
            return false;
        }
        let Some(ie_len) = pl.u8_at(off + 1) else {
            return false;
        };
        off += 2 + ie_len as usize;
        if off == len {
            return true;
        }
        if off > len {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rtp::tests::{DNS_2, NTP_1, QUIC_4, SIP_RTP_95, hex};

    // iax.pcap packet 1: 82.110.36.84:4569 -> 192.168.2.120:4566, NEW (subclass 1), source call
    // 4, IEs: version 2, called number, calling number, 0x04 (empty), language "en", 0xff,
    // 0x0c, 0x1f (66 bytes, whole payload).
    const NEW_1: &str = "8004000000000001000006010b020002010c343432303838323035313535020c34343737383232363739343904000a02656eff04000000020c0200001f040b0c55d6";
    // iax.pcap packet 2: 192.168.2.120:4566 -> 82.110.36.84:4569, ACK (subclass 4), iseq 1.
    const ACK_2: &str = "801700040000000100010604";
    // iax.pcap packet 3: ACCEPT-like control frame (subclass 7), 12 bytes.
    const CTL_3: &str = "801700040000000800010607";
    // iax.pcap packet 5: a voice full frame (type 2), oseq 1: not a setup frame.
    const VOICE_5: &str = "801700040000001f01010404";
    // iax.pcap packet 7: a mini frame (F bit clear) carrying voice.
    const MINI_7: &str = "00040038d5d5d5d5d5d5d5d5d5d5d5d5";

    #[test]
    fn real_setup_frames() {
        assert!(detect(&hex(NEW_1)[..], 4569, 4566));
        assert!(detect(&hex(ACK_2)[..], 4566, 4569));
        assert!(detect(&hex(CTL_3)[..], 4566, 4569));
        // The NEW carries IEs and a source call number: found on any port.
        assert!(detect(&hex(NEW_1)[..], 40000, 4566));
        // The bare 12-byte frames need port 4569.
        assert!(!detect(&hex(ACK_2)[..], 4566, 40000));
        assert!(!detect(&hex(CTL_3)[..], 4566, 40000));
    }

    #[test]
    fn later_frames_are_not_setup() {
        assert!(!detect(&hex(VOICE_5)[..], 4566, 4569));
        assert!(!detect(&hex(MINI_7)[..], 4569, 4566));
        // iax.pcap packet 8: voice full frame, 172 bytes (payload zeroed past 12 bytes).
        let mut p = hex("800400170000004901020202");
        p.resize(172, 0xd5);
        assert!(!detect(&p[..], 4569, 4566));
    }

    #[test]
    fn every_truncation_of_the_new_fails() {
        let p = hex(NEW_1);
        for k in 0..p.len() {
            // Cutting after 12 bytes leaves a valid bare frame (on 4569 only); cutting anywhere
            // else breaks the walk, except at an IE boundary.
            let boundary = [12, 16, 30, 44, 46, 50, 56, 60].contains(&k);
            assert_eq!(detect(&p[..k], 4569, 4566), boundary, "truncated to {k}");
            assert_eq!(
                detect(&p[..k], 40000, 4566),
                boundary && k != 12,
                "any port, truncated to {k}"
            );
        }
        // One byte too many.
        let mut q = p.clone();
        q.push(0);
        assert!(!detect(&q[..], 4569, 4566));
    }

    #[test]
    fn header_near_misses() {
        let base = hex(NEW_1);
        let cases: [(usize, u8); 7] = [
            (0, 0x00),  // mini frame
            (8, 1),     // outbound seq 1
            (9, 2),     // inbound seq 2
            (10, 0x02), // voice
            (10, 0x04), // control (any type other than IAX)
            (11, 16),   // subclass REGREJ and above
            (11, 0x1e), // POKE
        ];
        for (off, v) in cases {
            let mut p = base.clone();
            p[off] = v;
            assert!(!detect(&p[..], 4569, 4566), "p[{off}] = {v:#x}");
        }
        // Source call number 0: fine on 4569 (as nDPI), not elsewhere.
        let mut p = base.clone();
        p[0] = 0x80;
        p[1] = 0;
        assert!(detect(&p[..], 4569, 4566));
        assert!(!detect(&p[..], 40000, 4566));
        // An IE length that overshoots by one.
        let mut p = base.clone();
        p[13] = 3;
        assert!(!detect(&p[..], 4569, 4566));
    }

    #[test]
    fn more_than_fifteen_ies_is_not_walked() {
        // 15 empty IEs end exactly; 16 do not fit the walk (nDPI gives up likewise).
        let mut p = hex(ACK_2);
        p.extend([0x01, 0x00].repeat(15));
        assert!(detect(&p[..], 4569, 4566));
        p.extend([0x01, 0x00]);
        assert!(!detect(&p[..], 4569, 4566));
        // Long IEs: the walk reaches far offsets and stays bounded.
        let mut p = hex(ACK_2);
        for _ in 0..15 {
            p.push(0x01);
            p.push(255);
            p.extend([0u8; 255]);
        }
        assert_eq!(p.len(), 12 + 15 * 257);
        assert!(detect(&p[..], 4569, 4566));
    }

    #[test]
    fn other_protocols() {
        for (name, p) in [
            ("dns", DNS_2),
            ("ntp", NTP_1),
            ("quic", QUIC_4),
            ("rtp", SIP_RTP_95),
        ] {
            assert!(!detect(&hex(p)[..], 4569, 4566), "{name}");
            assert!(!detect(&hex(p)[..], 40000, 40001), "{name}");
        }
        assert!(!detect(&[][..], 4569, 4569));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0xD1B5_4A32_D192_ED03;
        let mut buf = [0u8; 80];
        for i in 0..20_000u32 {
            for b in buf.iter_mut() {
                x = crate::testing::xorshift(x);
                *b = x as u8;
            }
            // Make the header pass half the time, so that the walk runs.
            if i & 1 == 0 {
                buf[..12].copy_from_slice(&hex(ACK_2));
            }
            let len = (x >> 40) as usize % buf.len();
            let _ = detect(&buf[..len], 4569, 4566);
            let _ = detect(&buf[..len], 40000, 40001);
        }
    }
}
