//! LINE calls: the packet counter of LINE's own media protocol, without LINE's IP list.
//!
//! Mirrors nDPI `src/lib/protocols/line.c:74-107` (facts §20). XDP class: **F**; the state and
//! the decision live in [`crate::detect::track`], the per-packet tests here.
//!
//! nDPI's one-packet LINE patterns (`line.c:45-72`) apply only to LINE's ASN prefixes; without
//! the list it falls back to a counter: LINE's packets before the RTP stream carry a per-direction
//! packet number whose low byte is `p[3]` (big-endian 16 bits at 2 in `line.pcap`), incremented
//! by one per packet; after four consecutive numbers in each direction, with different starting
//! values, the flow is LINE. RTP/RTCP packets in between are skipped.
//!
//! That needs eight packets (23 in `line.pcap`'s longest flow, whose reverse direction is
//! silent for 19 packets). The tracker adds a faster form from the shape of LINE's handshake,
//! the packets nDPI's IP-gated patterns describe: the first packet of a direction has a first
//! byte `0xD0..=0xDF` (nDPI: `D8`/`D9`/`DA`/`DB`) and `p[4..6] == 06 02` ([`handshake`], at
//! least [`HANDSHAKE_MIN_LEN`] bytes). Then either
//! * the other direction opens with a handshake too (two packets), or
//! * the next packet of the same direction is a LINE packet ([`packet`]: first byte
//!   `0xD0..=0xDF`) carrying the next number (`p[3]` one more than in the first packet),
//!
//! decides. In `line.pcap`: 10.0.2.15:50835 -> 125.209.252.210:20610 opens `db 64 00 b9 06 02`,
//! `db 64 00 ba 06 02` (packet 2); 10.200.3.125:51170 <-> 147.92.169.90:29070 opens
//! `d8 9c 00 72 06 02` then `d8 d0 02 09 06 02` from the other side (packet 2);
//! 10.200.3.125:51161 -> 147.92.169.90:29070 opens `db 51 03 7f 06 02`, `d9 83 01 03 06 02` from
//! the server (packet 2).

use crate::Bytes;

/// Least payload length of a handshake packet (nDPI's shortest IP-gated form is 150 bytes).
pub const HANDSHAKE_MIN_LEN: usize = 100;
/// Least payload length of a packet the counter heuristic looks at (nDPI: more than 10).
pub const COUNTER_MIN_LEN: usize = 11;

/// The counter (big-endian 16 bits at 2) of a LINE handshake packet.
#[inline(always)]
pub fn handshake<B: Bytes + ?Sized>(pl: &B) -> Option<u16> {
    if pl.len() < HANDSHAKE_MIN_LEN {
        return None;
    }
    let h = pl.array::<6>(0)?;
    if h[0] & 0xF0 != 0xD0 || h[4] != 0x06 || h[5] != 0x02 {
        return None;
    }
    Some(u16::from_be_bytes([h[2], h[3]]))
}

/// The counter of a packet with LINE's first-byte shape (`0xD0..=0xDF`).
#[inline(always)]
pub fn packet<B: Bytes + ?Sized>(pl: &B) -> Option<u16> {
    if pl.len() < COUNTER_MIN_LEN {
        return None;
    }
    let h = pl.array::<4>(0)?;
    if h[0] & 0xF0 != 0xD0 {
        return None;
    }
    Some(u16::from_be_bytes([h[2], h[3]]))
}

/// nDPI's counter byte `p[3]` of a packet the counter heuristic looks at (more than 10 bytes,
/// not RTP/RTCP).
#[inline(always)]
pub fn counter_byte<B: Bytes + ?Sized>(pl: &B) -> Option<u8> {
    if pl.len() < COUNTER_MIN_LEN || super::rtp::header(pl).is_some() {
        return None;
    }
    pl.u8_at(3)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::detect::apps::tests::neighbours;
    use crate::testing::hex;

    /// `prefix` then `fill` bytes up to `len`.
    pub(crate) fn pkt(prefix: &str, len: usize) -> Vec<u8> {
        let mut v = hex(prefix);
        v.resize(len, 0x5c);
        v
    }

    // line.pcap, 10.200.3.125:51170 <-> 147.92.169.90:29070: first 6 bytes of packets 1 (160
    // bytes), 2 (212, reverse), 3 (132).
    pub(crate) const L51170_1: &str = "d89c00720602";
    pub(crate) const L51170_2: &str = "d8d002090602";

    #[test]
    fn shapes() {
        assert_eq!(handshake(&pkt(L51170_1, 160)[..]), Some(0x0072));
        assert_eq!(handshake(&pkt(L51170_2, 212)[..]), Some(0x0209));
        assert_eq!(handshake(&pkt("db51037f0602", 853)[..]), Some(0x037f));
        assert_eq!(handshake(&pkt(L51170_1, 99)[..]), None, "short");
        assert_eq!(handshake(&pkt("d89c00720603", 160)[..]), None);
        assert_eq!(handshake(&pkt("c89c00720602", 160)[..]), None);
        assert_eq!(packet(&pkt("d0800073186e", 132)[..]), Some(0x0073));
        assert_eq!(packet(&pkt("d0800073186e", 10)[..]), None);
        assert_eq!(packet(&pkt("e0800073186e", 132)[..]), None);
        assert_eq!(counter_byte(&pkt("d0800073186e", 132)[..]), Some(0x73));
        // RTP is skipped by the counter.
        assert_eq!(counter_byte(&hex(crate::detect::rtp::tests::SIP_RTP_95)[..]), None);
    }

    #[test]
    fn other_protocols() {
        for (name, p) in neighbours() {
            assert_eq!(handshake(&p[..]), None, "{name}");
            assert_eq!(packet(&p[..]), None, "{name}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        crate::detect::apps::tests::fuzz(|p| {
            let _ = (handshake(p), packet(p), counter_byte(p));
        });
    }
}
