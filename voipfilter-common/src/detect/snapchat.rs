//! Snapchat calls: a gQUIC (version Q046) handshake without a server name, then the call's
//! media on the same flow.
//!
//! Mirrors nDPI `src/lib/protocols/quic.c:1733-1830` (facts §21). XDP class: **F**
//! ([`crate::detect::track`]); this module has the one-packet tests it needs.
//!
//! nDPI labels a flow SnapchatCall when a QUIC Q046 Initial carries a client hello (CHLO)
//! **without** an SNI tag (or a QUIC v1 Initial with SNI `*.addlive.io`, which needs the
//! Initial's decryption: not done here), and a later packet of the flow, not QUIC, has an RTP or
//! RTCP header. In `snapchat_call.pcapng` that RTCP packet is the 20th of 50: too late to drop
//! 80% of the flow. The tracker therefore decides on the CHLO without SNI followed by the
//! server's Q046 long-header answer (the REJ, packet 2), or by an RTP/RTCP header as nDPI.
//!
//! gQUIC Q046 (Chromium's `quic_packets`/`crypto_handshake_message` formats): a long header
//! `1 1 TT 00 PP` (type TT, 0 for Initial; packet-number length `PP + 1`), the version `Q046`
//! (ASCII, at 1), a byte of connection-id lengths (`DCIL << 4 | SCIL`, each `n + 3` bytes when
//! `n != 0`), the ids, the packet number, then (null encryption) a 12-byte message hash and the
//! frames. The client's first packet holds one STREAM frame (type `1FDOOOSS`: stream id of
//! `SS + 1` bytes, offset of `OOO + 1` bytes unless 0, a 2-byte data length if D) on the crypto
//! stream, whose data is the handshake message: tag `CHLO`, a 16-bit little-endian tag count,
//! 2 bytes of padding, then (tag, end offset) pairs of 4 bytes each. [`chlo_without_sni`] reads
//! at most [`MAX_TAGS`] tags looking for `SNI\0`; a CHLO with more tags is not taken.
//!
//! Chrome and Cronet always name the server; the Snapchat CHLO of the capture has twelve tags
//! (`PAD VER CCS PDMD SMHL ICSL NONP MIDS SCLS CSCT CFCW SFCW`) and no SNI.

use super::tag4;
use crate::Bytes;

/// The version tag.
pub const Q046: u32 = tag4(b"Q046");
/// The handshake message tags looked at.
pub const CHLO: u32 = tag4(b"CHLO");
pub const SNI: u32 = tag4(b"SNI\0");
/// Tags read from a CHLO (constant trip count).
pub const MAX_TAGS: usize = 32;
/// Length of the null-encryption message hash before the frames.
const HASH_LEN: usize = 12;

/// Whether a UDP payload is a gQUIC Q046 long-header packet (any type, either direction).
#[inline(always)]
pub fn q046_long<B: Bytes + ?Sized>(pl: &B) -> bool {
    match pl.array::<5>(0) {
        Some(h) => h[0] & 0xC0 == 0xC0 && u32::from_be_bytes([h[1], h[2], h[3], h[4]]) == Q046,
        None => false,
    }
}

/// Whether a UDP payload is a gQUIC Q046 Initial whose client hello names no server.
#[inline(always)]
pub fn chlo_without_sni<B: Bytes + ?Sized>(pl: &B) -> bool {
    match chlo_tags(pl) {
        Some((at, n)) => !has_tag(pl, at, n, SNI),
        None => false,
    }
}

/// Offset of the CHLO's first tag entry and the number of tags (at most [`MAX_TAGS`]).
#[inline(always)]
fn chlo_tags<B: Bytes + ?Sized>(pl: &B) -> Option<(usize, usize)> {
    let h = pl.array::<6>(0)?;
    // Long header, fixed bit, Initial.
    if h[0] & 0xF0 != 0xC0 || u32::from_be_bytes([h[1], h[2], h[3], h[4]]) != Q046 {
        return None;
    }
    let cid = |n: u8| if n == 0 { 0 } else { n as usize + 3 };
    let pn = (h[0] & 3) as usize + 1;
    let frame = 6 + cid(h[5] >> 4) + cid(h[5] & 0xF) + pn + HASH_LEN;
    let ft = pl.u8_at(frame)?;
    if ft & 0x80 == 0 {
        return None;
    }
    let ooo = ((ft >> 2) & 7) as usize;
    let data = frame + 1 + (ft & 3) as usize + 1 + if ooo == 0 { 0 } else { ooo + 1 } + if ft & 0x20 != 0 { 2 } else { 0 };
    let m = pl.array::<6>(data)?;
    if u32::from_be_bytes([m[0], m[1], m[2], m[3]]) != CHLO {
        return None;
    }
    let n = u16::from_le_bytes([m[4], m[5]]) as usize;
    if n > MAX_TAGS {
        return None;
    }
    Some((data + 8, n))
}

/// Whether one of the `n` tag entries from `at` is `tag`.
#[inline(always)]
fn has_tag<B: Bytes + ?Sized>(pl: &B, at: usize, n: usize, tag: u32) -> bool {
    for i in 0..MAX_TAGS {
        if i >= n {
            return false;
        }
        match pl.be32(at + 8 * i) {
            Some(t) if t == tag => return true,
            Some(_) => {}
            None => return false,
        }
    }
    false
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::detect::apps::tests::neighbours;
    use crate::testing::hex;

    // snapchat_call.pcapng packet 1: 192.168.12.169:42083 -> 18.184.138.142:443, the first 130 of
    // 1350 bytes (the rest is the PAD value, '-' bytes, and the other values).
    pub(crate) const CHLO_1: &str = "c35130343650c38046e77aa306ea00000001 64f5352fb539b7224c543d62 a0010400 43484c4f0c000000 \
        5041440048030000 564552004c030000 434353005c030000 50444d4460030000 534d484c64030000 \
        4943534c68030000 4e4f4e5088030000 4d4944538c030000 53434c5390030000 4353435490030000 \
        4346435794030000 5346435798030000";
    // Packet 2, the server's REJ: first 20 of 1350 bytes.
    pub(crate) const REJ_2: &str = "c35130343605c38046e77aa306ea000000011c79";

    /// The CHLO, padded to its real length with '-'.
    pub(crate) fn chlo_1() -> Vec<u8> {
        let mut v = hex(CHLO_1);
        v.resize(1350, b'-');
        v
    }

    /// The same CHLO with the `tag` entry replaced.
    fn with_tag(i: usize, tag: &[u8; 4]) -> Vec<u8> {
        let mut v = chlo_1();
        let at = 42 + 8 * i;
        v[at..at + 4].copy_from_slice(tag);
        v
    }

    #[test]
    fn real_chlo_has_no_sni() {
        let p = chlo_1();
        assert!(q046_long(&p[..]));
        assert!(chlo_without_sni(&p[..]));
        assert!(q046_long(&hex(REJ_2)[..]));
        assert!(!chlo_without_sni(&hex(REJ_2)[..]), "a REJ is not a CHLO");
        // With an SNI tag, first or last.
        assert!(!chlo_without_sni(&with_tag(0, b"SNI\0")[..]));
        assert!(!chlo_without_sni(&with_tag(11, b"SNI\0")[..]));
        assert!(chlo_without_sni(&with_tag(11, b"SNIX")[..]));
    }

    #[test]
    fn header_variants() {
        // Other versions, short headers, non-Initial types.
        for (i, v) in [(1usize, b'T'), (4, b'3'), (0, 0x43), (0, 0xd3), (0, 0xe3)] {
            let mut p = chlo_1();
            p[i] = v;
            assert!(!chlo_without_sni(&p[..]), "p[{i}] = {v:#x}");
        }
        // Not CHLO.
        let mut p = chlo_1();
        p[34] = b'X';
        assert!(!chlo_without_sni(&p[..]));
        // Too many tags to read.
        let mut p = chlo_1();
        p[38] = 33;
        assert!(!chlo_without_sni(&p[..]));
        // Truncations: never a CHLO before the tag count is in.
        let p = chlo_1();
        for n in 0..40 {
            assert!(!chlo_without_sni(&p[..n]), "truncated to {n}");
        }
        // A one-byte packet number with a 2-byte stream offset moves everything.
        let mut q = vec![0xc0u8];
        q.extend(b"Q046");
        q.push(0x50);
        q.extend([1u8; 8]);
        q.push(1);
        q.extend([0u8; 12]);
        q.extend([0xa4, 0x01, 0x00, 0x00, 0x00, 0x10]);
        q.extend(b"CHLO");
        q.extend([1, 0, 0, 0]);
        q.extend(b"PAD\0");
        q.extend([0, 0, 0, 0]);
        assert!(chlo_without_sni(&q[..]));
        let n = q.len();
        q[n - 8..n - 4].copy_from_slice(b"SNI\0");
        assert!(!chlo_without_sni(&q[..]));
    }

    #[test]
    fn other_protocols() {
        for (name, p) in neighbours() {
            assert!(!chlo_without_sni(&p[..]), "{name}");
            assert!(!q046_long(&p[..]), "{name}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        crate::detect::apps::tests::fuzz(|p| {
            let _ = (chlo_without_sni(p), q046_long(p));
        });
    }
}
