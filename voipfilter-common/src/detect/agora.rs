//! Agora SD-RTN (the real-time network behind many apps' calls and live rooms): the packet
//! that names the service it connects to.
//!
//! Mirrors nDPI `src/lib/protocols/sd_rtn.c:66-80` (facts §21). XDP class: **S**, one packet.
//!
//! Checked, any port: `p[6] == 0x21` and `p[12..16] == 04 'S' 'N' 'I'` (nDPI then reads a
//! server name at 19, its length at 16). We also want the payload to reach past that length
//! field (at least 20 bytes), which nDPI's read of the name needs too.

use super::tag4;
use crate::Bytes;

/// The 32-bit word at 12: a length-4 tag "SNI".
pub const SNI_TAG: u32 = tag4(b"\x04SNI");
/// Least payload length accepted.
pub const MIN_LEN: usize = 20;

/// Whether a UDP payload is an Agora SD-RTN packet carrying its SNI tag.
#[inline(always)]
pub fn detect<B: Bytes + ?Sized>(pl: &B) -> bool {
    if pl.len() < MIN_LEN {
        return false;
    }
    let Some(h) = pl.array::<16>(0) else { return false };
    h[6] == 0x21 && u32::from_be_bytes([h[12], h[13], h[14], h[15]]) == SNI_TAG
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::apps::tests::neighbours;

    /// A packet built from the rule: 6 bytes of header, 0x21, 5 more, the tag, a 3-byte length
    /// field and the name.
    fn sdrtn(name: &[u8]) -> Vec<u8> {
        let mut v = vec![0x11, 0x00, 0x7a, 0x3c, 0x00, 0x02, 0x21, 0x00, 0x00, 0x01, 0x00, 0x00];
        v.extend(b"\x04SNI");
        v.extend([0x00, 0x00, name.len() as u8]);
        v.extend(name);
        v
    }

    #[test]
    fn built_packet() {
        let p = sdrtn(b"ap1.agora.io");
        assert!(detect(&p[..]));
        assert!(detect(&p[..20]));
        assert!(!detect(&p[..19]), "too short");
        let mut q = p.clone();
        q[6] = 0x20;
        assert!(!detect(&q[..]));
        let mut q = p.clone();
        q[12] = 0x05;
        assert!(!detect(&q[..]));
        let mut q = p.clone();
        q[15] = b'i';
        assert!(!detect(&q[..]), "case matters");
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
