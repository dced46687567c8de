//! Viber: the UDP packets of its own media/relay protocol, on Viber's UDP ports only.
//!
//! Mirrors nDPI `src/lib/protocols/viber.c:78-94` (facts §6). XDP class: **S**, one packet.
//!
//! nDPI accepts, on any port, a UDP payload with one of
//! * `p[2..4] == 03 00`;
//! * 20 bytes and `p[2..4] == 09 00`;
//! * `p[2..6] == 01 00 05 00`;
//! * 34 bytes and `p[2..4] == 19 00` or `1b 00`.
//!
//! Those are 16- or 32-bit patterns: alone they would match one random payload in 65,536. We
//! accept them only when either UDP port is one of Viber's (7985, 7987, 5242, 5243, 4244, nDPI's
//! default UDP ports, `ndpi_main.c:1743-1745`), and the payload holds at least the bytes the
//! pattern reads. Viber calls are also found by STUN (REALM `viber`, `detect::stun`).
//!
//! `viber.pcap` has no UDP flow on those ports (its calls go through STUN); the tests use
//! packets built from the patterns.

use crate::Bytes;

/// Viber's UDP ports (nDPI's defaults).
pub const PORTS: [u16; 5] = [7985, 7987, 5242, 5243, 4244];

#[inline(always)]
fn viber_port(p: u16) -> bool {
    p == 7985 || p == 7987 || p == 5242 || p == 5243 || p == 4244
}

/// Whether a UDP payload on a Viber port matches one of Viber's byte patterns.
#[inline(always)]
pub fn detect<B: Bytes + ?Sized>(pl: &B, sport: u16, dport: u16) -> bool {
    if !(viber_port(sport) || viber_port(dport)) {
        return false;
    }
    let len = pl.len();
    let Some(w) = pl.be16(2) else { return false };
    if w == 0x0300 || (len == 20 && w == 0x0900) || (len == 34 && (w == 0x1900 || w == 0x1b00)) {
        return true;
    }
    w == 0x0100 && pl.be16(4) == Some(0x0500)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::apps::tests::neighbours;

    fn pkt(len: usize, at2: &[u8]) -> Vec<u8> {
        let mut v = vec![0xa5u8; len];
        v[2..2 + at2.len()].copy_from_slice(at2);
        v
    }

    #[test]
    fn patterns_on_viber_ports() {
        for port in PORTS {
            assert!(detect(&pkt(60, &[3, 0])[..], 40000, port));
            assert!(detect(&pkt(4, &[3, 0])[..], port, 40000));
            assert!(detect(&pkt(20, &[9, 0])[..], 40000, port));
            assert!(detect(&pkt(90, &[1, 0, 5, 0])[..], 40000, port));
            assert!(detect(&pkt(34, &[0x19, 0])[..], 40000, port));
            assert!(detect(&pkt(34, &[0x1b, 0])[..], 40000, port));
        }
    }

    #[test]
    fn exact_lengths_and_ports() {
        assert!(!detect(&pkt(60, &[3, 0])[..], 40000, 7986), "not a Viber port");
        assert!(!detect(&pkt(21, &[9, 0])[..], 40000, 7985));
        assert!(!detect(&pkt(19, &[9, 0])[..], 40000, 7985));
        assert!(!detect(&pkt(35, &[0x19, 0])[..], 40000, 7985));
        assert!(!detect(&pkt(33, &[0x1b, 0])[..], 40000, 7985));
        assert!(!detect(&pkt(5, &[1, 0, 5])[..], 40000, 7985), "pattern cut short");
        assert!(!detect(&pkt(60, &[1, 0, 6, 0])[..], 40000, 7985));
        assert!(!detect(&[3u8, 0][..], 40000, 7985));
        assert!(!detect(&[][..], 7985, 7985));
    }

    #[test]
    fn other_protocols() {
        for (name, p) in neighbours() {
            assert!(!detect(&p[..], 40000, 7985), "{name}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        crate::detect::apps::tests::fuzz(|p| {
            let _ = detect(p, 7985, 1);
        });
    }
}
