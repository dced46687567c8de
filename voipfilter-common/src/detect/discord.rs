//! Discord voice: the UDP keepalive and the IP-discovery exchange that opens every voice
//! connection.
//!
//! Mirrors nDPI `src/lib/protocols/discord.c` (facts §12). XDP class: **S**, one packet.
//!
//! Checked, on the UDP payload, any port:
//! * **keepalive**: exactly 8 bytes starting with `13 37 ca fe` (`discord.c:46-51`);
//! * **IP discovery** (Discord developer docs, "Voice connections: IP discovery"): a 74-byte
//!   packet, type 1 (request) or 2 (response) in the first 16 bits, then the length 70 (`00 46`),
//!   the SSRC at 4, the client's address as a NUL-padded string at 8 (64 bytes) and its port at
//!   72. nDPI wants the request as the flow's first packet and the response as its second
//!   (`discord.c:53-72`, F); we take either alone from its length and its first four bytes
//!   (facts §12: "it can be relaxed to S by checking length plus prefix"), so that a capture or
//!   a path that misses one of them is still found, and the response is dropped as well.
//!
//! Neighbours: STUN also starts `00 01` (Binding request), but its length field would say 54
//! (`00 36`) for a 74-byte message, never 70, and the STUN detector runs first anyway.
//!
//! `discord.pcap`: the six keepalive flows (66.22.x.x:50004, 8-byte `1337cafe0e000000`) are
//! found on their first packet, as is the voice flow 66.22.196.173:50004 <-> :57955 whose first
//! packet is the discovery request (its RTP would otherwise need three packets).

use crate::Bytes;

/// The keepalive magic (`13 37 ca fe`).
pub const KEEPALIVE: u32 = 0x1337_CAFE;
/// IP discovery request and response: type in the high 16 bits, length 70 in the low.
pub const DISCOVERY_REQUEST: u32 = 0x0001_0046;
pub const DISCOVERY_RESPONSE: u32 = 0x0002_0046;
/// Payload length of both discovery packets (2 + 2 + 4 + 64 + 2).
pub const DISCOVERY_LEN: usize = 74;

/// Whether a UDP payload is a Discord voice keepalive or IP discovery packet.
#[inline(always)]
pub fn detect<B: Bytes + ?Sized>(pl: &B) -> bool {
    let len = pl.len();
    let Some(w) = pl.be32(0) else { return false };
    (len == 8 && w == KEEPALIVE) || (len == DISCOVERY_LEN && (w == DISCOVERY_REQUEST || w == DISCOVERY_RESPONSE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::apps::tests::neighbours;
    use crate::testing::hex;

    // discord.pcap: 192.168.2.100:56271 -> 66.22.244.154:50004, whole payload.
    const KEEPALIVE_1: &str = "1337cafe0e000000";
    // discord.pcap: 192.168.2.100:57955 -> 66.22.196.173:50004, the first 12 bytes of the 74
    // (the rest is zero but for the last two, 6f 74).
    const REQUEST_PREFIX: &str = "00010046 0000ace3 00000000";
    // The answer: type 2, same SSRC, "84.59.132.100" NUL-padded, port 0xe263 last.
    const RESPONSE_PREFIX: &str = "00020046 0000ace3 38342e35392e3133322e313030";

    fn discovery(prefix: &str, tail: [u8; 2]) -> Vec<u8> {
        let mut v = hex(prefix);
        v.resize(72, 0);
        v.extend(tail);
        v
    }

    #[test]
    fn real_packets() {
        assert!(detect(&hex(KEEPALIVE_1)[..]));
        assert!(detect(&discovery(REQUEST_PREFIX, [0x6f, 0x74])[..]));
        assert!(detect(&discovery(RESPONSE_PREFIX, [0xe2, 0x63])[..]));
    }

    #[test]
    fn exact_length_and_prefix() {
        let mut k = hex(KEEPALIVE_1);
        k.push(0);
        assert!(!detect(&k[..]), "9-byte keepalive");
        assert!(!detect(&k[..7]), "7-byte keepalive");
        let r = discovery(REQUEST_PREFIX, [0, 0]);
        for n in 0..r.len() {
            assert!(!detect(&r[..n]), "truncated to {n}");
        }
        let mut r2 = r.clone();
        r2.push(0);
        assert!(!detect(&r2[..]), "75 bytes");
        for (i, v) in [(1usize, 3u8), (3, 0x36), (0, 1), (2, 1)] {
            let mut x = r.clone();
            x[i] = v;
            assert!(!detect(&x[..]), "p[{i}] = {v:#x}");
        }
        let mut x = hex(KEEPALIVE_1);
        x[3] = 0xff;
        assert!(!detect(&x[..]));
    }

    #[test]
    fn other_protocols() {
        for (name, p) in neighbours() {
            assert!(!detect(&p[..]), "{name}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        crate::detect::apps::tests::fuzz(|p| {
            let _ = detect(p);
        });
    }
}
