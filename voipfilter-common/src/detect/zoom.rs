//! Zoom: the SFU encapsulation between clients and Zoom's multimedia routers (UDP 8801-8810),
//! and the first packet of a peer-to-peer call.
//!
//! Mirrors nDPI `src/lib/protocols/zoom.c` (facts §9; the headers follow Princeton-Cabernet's
//! zoom-analysis and Citizen Lab's "Move fast and roll your own crypto"). XDP class: **S**, plus
//! **F** for the weak SFU types 3/4 ([`crate::detect::track`]).
//!
//! The SFU encapsulation is 8 bytes: type (1), sequence number (2), 4 unknown bytes, direction
//! (1). Zoom media encapsulation (ZME) follows: media type (1), 8 unknown bytes, sequence
//! number (2), timestamp (4), then for media an RTP or RTCP header at a fixed offset from the
//! ZME start.
//!
//! [`detect`], one packet:
//! * either UDP port in **8801..=8810** (Zoom's documented media ports) and a payload longer
//!   than 8 bytes, with
//!   * SFU types 1/2: the first three bytes `01 00 03`, `01 00 02`, `02 00 03` or `02 00 02`
//!     (the first packet from the client, the first from the server);
//!   * SFU type 5 (`p[0] == 5`, payload longer than 8 + 15): the ZME media type at 8 and
//!
//!     | ZME type | media | header at ZME + |
//!     |---|---|---|
//!     | 13 | screen share | (nDPI: accepted when the packet is longer than ZME + 27, RTP or not) |
//!     | 15 | audio | RTP at 19 |
//!     | 16 | video | RTP at 24 |
//!     | 30 | P2P screen share | RTP at 20 |
//!     | 33, 34, 35 | RTCP | RTCP at 16 |
//!
//!     (RTP/RTCP by `detect::rtp::header`, which is stricter than nDPI's `is_rtp_or_rtcp` on
//!     RTCP packet types);
//! * **P2P**, any port: payload longer than 36 bytes, prefix `1f 02 01`, last four bytes zero,
//!   and two length-value fields from 24 (an IP address as text, then a UUID; 4-byte big-endian
//!   lengths) whose lengths add up exactly to the payload: `len == 24 + 4 + ip + 4 + uuid + 4`.
//!
//! [`sfu_weak`]: SFU types 3/4 (`p[0]` 3 or 4) on 8801-8810. nDPI accepts them only from the
//! flow's fourth packet; the tracker decides on the second such packet when both have a zero
//! sequence number (bytes 1..4 zero, as in every type 3/4 packet of `zoom.pcap` and
//! `zoom2.pcap`), else from the fourth packet as nDPI.
//!
//! Corpus: the SFU flows of `zoom.pcap` and `zoom2.pcap` open with `01 00 02`/`01 00 03` (packet
//! 1); the GTP-tunnelled flow 10.140.117.35:45634 <-> 193.122.35.237:8801 of `zoom.pcap` opens
//! with type 3/4 packets (`03 00 00 00 ...`, `04 00 00 00 ...`) and is found by the tracker.

use super::Payload;
use super::rtp::{self, RtpKind};
use crate::Bytes;

/// Zoom's media port range (UDP).
pub const PORT_FIRST: u16 = 8801;
pub const PORT_LAST: u16 = 8810;
/// SFU encapsulation length.
pub const SFU_LEN: usize = 8;
/// ZME header length (type, 8 unknown, sequence, timestamp).
pub const ZME_LEN: usize = 15;
/// Largest IP-text length the P2P check reads past (keeps the UUID offset bounded).
pub const MAX_P2P_FIELD: usize = 1024;

/// Whether either port is one of Zoom's media ports.
#[inline(always)]
pub fn on_port(sport: u16, dport: u16) -> bool {
    (PORT_FIRST..=PORT_LAST).contains(&sport) || (PORT_FIRST..=PORT_LAST).contains(&dport)
}

/// Whether a UDP payload is Zoom's, from this packet alone.
#[inline(always)]
pub fn detect<B: Bytes + ?Sized>(pl: &B, sport: u16, dport: u16) -> bool {
    let len = pl.len();
    if on_port(sport, dport) && len > SFU_LEN {
        let Some(h) = pl.array::<3>(0) else { return false };
        if (h[0] == 1 || h[0] == 2) && h[1] == 0 && (h[2] == 2 || h[2] == 3) {
            return true;
        }
        if h[0] == 5 && sfu5(pl) {
            return true;
        }
    }
    p2p(pl)
}

/// SFU type 5 carrying ZME media with its RTP/RTCP header where the media type puts it.
#[inline(always)]
fn sfu5<B: Bytes + ?Sized>(pl: &B) -> bool {
    let len = pl.len();
    if len <= SFU_LEN + ZME_LEN {
        return false;
    }
    let Some(t) = pl.u8_at(SFU_LEN) else { return false };
    // Offset of the RTP/RTCP header from the payload start, and which of the two.
    let (off, kind) = match t {
        13 => return len > SFU_LEN + 27,
        15 => (SFU_LEN + 19, RtpKind::Rtp),
        16 => (SFU_LEN + 24, RtpKind::Rtp),
        30 => (SFU_LEN + 20, RtpKind::Rtp),
        33..=35 => (SFU_LEN + 16, RtpKind::Rtcp),
        _ => return false,
    };
    matches!(rtp::header(&Payload::new(pl, off, len)), Some(h) if h.kind == kind)
}

/// The first packet of a P2P call (ZME type 0x1f, see the module header).
#[inline(always)]
pub fn p2p<B: Bytes + ?Sized>(pl: &B) -> bool {
    let len = pl.len();
    if len <= 36 || len > 24 + 4 + MAX_P2P_FIELD + 4 + MAX_P2P_FIELD + 4 {
        return false;
    }
    let Some(h) = pl.array::<3>(0) else { return false };
    if h != [0x1f, 0x02, 0x01] {
        return false;
    }
    if pl.be32(crate::bytes::opaque(len - 4)) != Some(0) {
        return false;
    }
    let Some(ip_len) = pl.be32(24) else { return false };
    let ip_len = ip_len as usize;
    if ip_len > MAX_P2P_FIELD || 24 + 4 + ip_len + 4 >= len {
        return false;
    }
    let Some(uuid_len) = pl.be32(28 + ip_len) else { return false };
    let uuid_len = uuid_len as usize;
    uuid_len <= MAX_P2P_FIELD && len == 24 + 4 + ip_len + 4 + uuid_len + 4
}

/// SFU types 3/4 on a Zoom port: `Some(true)` when the sequence number is zero (bytes 1..4
/// zero), `Some(false)` otherwise, `None` when the packet is not one.
#[inline(always)]
pub fn sfu_weak<B: Bytes + ?Sized>(pl: &B, sport: u16, dport: u16) -> Option<bool> {
    if !on_port(sport, dport) || pl.len() <= SFU_LEN {
        return None;
    }
    let w = pl.be32(0)?;
    let t = w >> 24;
    if t != 3 && t != 4 {
        return None;
    }
    Some(w & 0x00FF_FFFF == 0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::detect::apps::tests::neighbours;
    use crate::detect::rtp::tests::{SIP_RTCP_104, SIP_RTP_95};
    use crate::testing::hex;

    // zoom.pcap: 192.168.1.117:58327 -> 109.94.160.99:8801, first 24 of 107 bytes.
    pub(crate) const SFU1_1: &str = "0100027d464d35fffda234495d0d6d3b51e8960000000000";
    // zoom2.pcap: 144.195.73.154:8801 -> 192.168.1.178:60653, the server's first packet (44
    // bytes, whole).
    pub(crate) const SFU2_2: &str = "020003c84ac4528718cda2b8477a1b899f3383004f8378006f613f00000000000000000040004000 03e00300";
    // zoom.pcap: the server's answer to SFU1_1 (35 bytes, whole): `02 00 01` is not one of the
    // four prefixes (nor nDPI's); the client's packet has decided the flow already.
    pub(crate) const SFU2_201: &str = "0200017d464d35fffda234495d0d6d3b51e896005a0e3e007a002a0000000000000000";
    // The type 3 and 4 packets that follow (13 bytes, whole).
    pub(crate) const SFU3_3: &str = "03000000 01762a8d74005a0e3e";
    pub(crate) const SFU4_4: &str = "04000000 01762a8d74005a0e3e";
    // zoom.pcap, GTP-U inner flow 10.140.117.35:45634 -> 193.122.35.237:8801: a type 5 packet
    // whose ZME type (0x15) carries no media: first 24 of 96 bytes.
    pub(crate) const SFU5_CTL: &str = "050f3100272ec904 1501000000000000 0035010201001f5a";

    fn padded(prefix: &str, len: usize) -> Vec<u8> {
        let mut v = hex(prefix);
        v.resize(len, 0);
        v
    }

    /// SFU 5 + ZME of type `t` with the given header (RTP or RTCP) at `at` from the ZME start.
    fn sfu5_pkt(t: u8, at: usize, hdr: &[u8]) -> Vec<u8> {
        let mut v = vec![0x05, 0x12, 0x34, 0, 0, 0, 0, 0x00];
        let mut zme = vec![0u8; at];
        zme[0] = t;
        v.extend(zme);
        v.extend(hdr);
        v
    }

    #[test]
    fn sfu_first_packets() {
        assert!(detect(&padded(SFU1_1, 107)[..], 58327, 8801));
        assert!(detect(&hex(SFU2_2)[..], 8801, 58327));
        assert!(detect(&hex(SFU2_2)[..], 8810, 58327));
        assert!(!detect(&hex(SFU2_2)[..], 8811, 58327), "port 8811");
        assert!(!detect(&hex(SFU2_2)[..], 8800, 58327), "port 8800");
        assert!(!detect(&hex(SFU2_2)[..8], 8801, 58327), "8 bytes");
        assert!(detect(&hex(SFU2_2)[..9], 8801, 58327));
        assert!(!detect(&hex(SFU2_201)[..], 8801, 58327));
        for (b, ok) in [([1u8, 0, 2], true), ([2, 0, 3], true), ([1, 1, 3], false), ([1, 0, 4], false), ([0, 0, 3], false)] {
            let mut p = hex(SFU2_2);
            p[..3].copy_from_slice(&b);
            assert_eq!(detect(&p[..], 8801, 1), ok, "{b:?}");
        }
        // Types 3/4 need the tracker; a type 5 control packet is not media.
        assert!(!detect(&hex(SFU3_3)[..], 8801, 58327));
        assert!(!detect(&hex(SFU4_4)[..], 58327, 8801));
        assert!(!detect(&padded(SFU5_CTL, 96)[..], 45634, 8801));
    }

    #[test]
    fn sfu5_media() {
        let rtp = hex(SIP_RTP_95);
        let rtcp = hex(SIP_RTCP_104);
        assert!(detect(&sfu5_pkt(15, 19, &rtp)[..], 8801, 50000));
        assert!(detect(&sfu5_pkt(16, 24, &rtp)[..], 50000, 8802));
        assert!(detect(&sfu5_pkt(30, 20, &rtp)[..], 50000, 8802));
        for t in [33, 34, 35] {
            assert!(detect(&sfu5_pkt(t, 16, &rtcp)[..], 8801, 50000), "{t}");
            assert!(!detect(&sfu5_pkt(t, 16, &rtp)[..], 8801, 50000), "{t} with RTP");
        }
        // Header at the wrong offset, RTCP where RTP belongs, wrong port, other ZME types.
        assert!(!detect(&sfu5_pkt(15, 20, &rtp)[..], 8801, 50000));
        assert!(!detect(&sfu5_pkt(16, 24, &rtcp)[..], 8801, 50000));
        assert!(!detect(&sfu5_pkt(15, 19, &rtp)[..], 8800, 50000));
        assert!(!detect(&sfu5_pkt(14, 19, &rtp)[..], 8801, 50000));
        // Screen share: length only (nDPI).
        assert!(detect(&sfu5_pkt(13, 28, &[])[..], 8801, 50000));
        assert!(!detect(&sfu5_pkt(13, 27, &[])[..], 8801, 50000));
        // Truncated media packets.
        let p = sfu5_pkt(15, 19, &rtp);
        for n in 0..SFU_LEN + 19 + 12 {
            assert!(!detect(&p[..n], 8801, 50000), "truncated to {n}");
        }
    }

    /// A P2P opening packet: 24-byte header, IP text, UUID, 4 zero bytes.
    fn p2p_pkt(ip: &[u8], uuid: &[u8]) -> Vec<u8> {
        let mut v = vec![0x1f, 0x02, 0x01];
        v.resize(24, 0x33);
        v.extend((ip.len() as u32).to_be_bytes());
        v.extend(ip);
        v.extend((uuid.len() as u32).to_be_bytes());
        v.extend(uuid);
        v.extend([0, 0, 0, 0]);
        v
    }

    #[test]
    fn p2p_layout() {
        let p = p2p_pkt(b"192.168.1.20", b"3f2504e0-4f89-11d3-9a0c-0305e82c3301");
        assert!(detect(&p[..], 50000, 50001), "any port");
        assert!(detect(&p[..], 8801, 50001));
        for n in 0..p.len() {
            assert!(!detect(&p[..n], 50000, 50001), "truncated to {n}");
        }
        let mut q = p.clone();
        q.push(0);
        assert!(!detect(&q[..], 50000, 50001), "one byte more");
        let mut q = p.clone();
        let n = q.len();
        q[n - 1] = 1;
        assert!(!detect(&q[..], 50000, 50001), "last byte not zero");
        let mut q = p.clone();
        q[2] = 2;
        assert!(!detect(&q[..], 50000, 50001), "prefix");
        let mut q = p.clone();
        q[27] += 1;
        assert!(!detect(&q[..], 50000, 50001), "IP length off by one");
        let mut q = p.clone();
        q[24] = 0x7f;
        assert!(!detect(&q[..], 50000, 50001), "huge IP length");
        // Empty fields still add up.
        assert!(detect(&p2p_pkt(b"", b"0123456789")[..], 1, 2));
    }

    #[test]
    fn weak_types() {
        assert_eq!(sfu_weak(&hex(SFU3_3)[..], 8801, 58327), Some(true));
        assert_eq!(sfu_weak(&hex(SFU4_4)[..], 58327, 8801), Some(true));
        assert_eq!(sfu_weak(&hex(SFU3_3)[..], 8800, 58327), None);
        assert_eq!(sfu_weak(&hex(SFU3_3)[..8], 8801, 58327), None);
        assert_eq!(sfu_weak(&hex("03000100 01762a8d74005a0e3e")[..], 8801, 1), Some(false));
        assert_eq!(sfu_weak(&hex(SFU2_2)[..], 8801, 1), None);
    }

    #[test]
    fn other_protocols() {
        for (name, p) in neighbours() {
            assert!(!detect(&p[..], 8801, 50000), "{name}");
            assert!(!detect(&p[..], 50000, 50001), "{name}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        crate::detect::apps::tests::fuzz(|p| {
            let _ = (detect(p, 8801, 1), detect(p, 1, 2), sfu_weak(p, 8801, 1));
        });
        // With the P2P prefix, so that the length walk runs.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..5000 {
            let mut buf = [0u8; 80];
            for b in buf.iter_mut() {
                x = crate::testing::xorshift(x);
                *b = x as u8;
            }
            buf[..3].copy_from_slice(&[0x1f, 2, 1]);
            buf[24..27].fill(0);
            let len = 37 + (x >> 50) as usize % 43;
            buf[len - 4..len].fill(0);
            let _ = detect(&buf[..len], 1, 2);
        }
    }
}
