//! IMO calls: three fixed packet shapes.
//!
//! Mirrors nDPI `src/lib/protocols/imo.c:41-67` (facts §21). XDP class: **S**, one packet.
//!
//! Checked, any port, each **exact** on the payload length:
//! * 10 bytes starting `09 02`;
//! * 11 bytes starting `00 09 03`;
//! * 1099 bytes starting `88 49 1a 00`.
//!
//! These are weak (16 to 32 bits of pattern plus a length), which is why the length must match
//! exactly. nDPI's fourth rule, two consecutive one-byte packets with the same value, is not
//! taken: one-byte datagrams carry far too little to tell apps apart.

use crate::Bytes;

/// Whether a UDP payload has one of IMO's packet shapes.
#[inline(always)]
pub fn detect<B: Bytes + ?Sized>(pl: &B) -> bool {
    let len = pl.len();
    let Some(w) = pl.be32(0) else { return false };
    (len == 10 && w >> 16 == 0x0902) || (len == 11 && w >> 8 == 0x0000_0903) || (len == 1099 && w == 0x8849_1a00)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::apps::tests::neighbours;

    fn pkt(len: usize, prefix: &[u8]) -> Vec<u8> {
        let mut v = vec![0x5au8; len];
        v[..prefix.len()].copy_from_slice(prefix);
        v
    }

    #[test]
    fn shapes() {
        assert!(detect(&pkt(10, &[9, 2])[..]));
        assert!(detect(&pkt(11, &[0, 9, 3])[..]));
        assert!(detect(&pkt(1099, &[0x88, 0x49, 0x1a, 0])[..]));
        for (len, prefix) in [(10usize, &[9u8, 2][..]), (11, &[0, 9, 3][..]), (1099, &[0x88, 0x49, 0x1a, 0][..])] {
            assert!(!detect(&pkt(len - 1, prefix)[..]), "{len} - 1");
            assert!(!detect(&pkt(len + 1, prefix)[..]), "{len} + 1");
            let mut p = pkt(len, prefix);
            p[prefix.len() - 1] ^= 1;
            assert!(!detect(&p[..]), "{len}, last prefix byte changed");
        }
        assert!(!detect(&[9u8, 2][..]));
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
