//! Mumble: the UDP ping a client sends to a server before (and while) it connects, and the
//! server's answer.
//!
//! Mirrors nDPI `src/lib/protocols/mumble.c` (facts §14). XDP class: **F** (two packets), with
//! a one-packet form on Mumble's registered port.
//!
//! The ping (Mumble protocol documentation, "UDP ping packet"): 12 bytes, a 32-bit request type
//! 0, then a 64-bit ident the client chooses. The answer: 24 bytes, the server's version (4),
//! the same ident (8), then users, maximum users and allowed bandwidth (4 each).
//!
//! * [`ping`]: a 12-byte payload whose first four bytes are zero; gives the low 32 bits of the
//!   ident (bytes 8..12), which is all the flow record has room for.
//! * [`answer`]: a 24-byte payload echoing that value at 8..12. nDPI compares all 64 bits of the
//!   ident (`mumble.c:39-58`); the tracker ([`crate::detect::track`]) keeps 32, and decides on
//!   the answer, on any port.
//! * [`detect`], one packet: the ping with UDP port **64738** (IANA "mumble") on either side.
//!   A 12-byte packet with four zero bytes is too weak alone; on 64738 it decides at once, so
//!   that the ping and the answer are both dropped. nDPI uses no port.
//!
//! `mumble.pcapng`: 192.168.88.208:50085 pings 5.39.185.162:64738 and 87.122.110.156:64738 (one
//! ping, one answer each): found on the ping, by [`detect`], and on the answer by the tracker.

use crate::Bytes;

/// Mumble's registered port.
pub const PORT: u16 = 64738;
/// Length of the ping and of its answer.
pub const PING_LEN: usize = 12;
pub const ANSWER_LEN: usize = 24;

/// The low 32 bits of the ident, if the payload is a ping.
#[inline(always)]
pub fn ping<B: Bytes + ?Sized>(pl: &B) -> Option<u32> {
    if pl.len() != PING_LEN {
        return None;
    }
    let h = pl.array::<12>(0)?;
    if u32::from_be_bytes([h[0], h[1], h[2], h[3]]) != 0 {
        return None;
    }
    Some(u32::from_be_bytes([h[8], h[9], h[10], h[11]]))
}

/// Whether the payload is the answer to a ping whose ident ends in `ident` (low 32 bits).
#[inline(always)]
pub fn answer<B: Bytes + ?Sized>(pl: &B, ident: u32) -> bool {
    pl.len() == ANSWER_LEN && pl.be32(8) == Some(ident)
}

/// A ping on the Mumble port.
#[inline(always)]
pub fn detect<B: Bytes + ?Sized>(pl: &B, sport: u16, dport: u16) -> bool {
    (sport == PORT || dport == PORT) && ping(pl).is_some()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::detect::apps::tests::neighbours;
    use crate::testing::hex;

    // mumble.pcapng: 192.168.88.208:50085 -> 5.39.185.162:64738 and its answer, whole payloads.
    pub(crate) const PING_1: &str = "00000000 03d72000fa76287e";
    pub(crate) const ANSWER_3: &str = "00010304 03d72000fa76287e 00000000 00000064 00011940";

    #[test]
    fn real_exchange() {
        let p = hex(PING_1);
        assert_eq!(ping(&p[..]), Some(0xfa76_287e));
        assert!(detect(&p[..], 50085, 64738));
        assert!(detect(&p[..], 64738, 50085));
        assert!(!detect(&p[..], 50085, 64739), "another port");
        let a = hex(ANSWER_3);
        assert!(answer(&a[..], 0xfa76_287e));
        assert!(!answer(&a[..], 0xfa76_287f));
        assert_eq!(ping(&a[..]), None);
        assert!(!detect(&a[..], 64738, 50085), "the answer alone is not enough");
    }

    #[test]
    fn exact_shapes() {
        let p = hex(PING_1);
        for n in 0..p.len() {
            assert_eq!(ping(&p[..n]), None, "truncated to {n}");
        }
        let mut q = p.clone();
        q.push(0);
        assert_eq!(ping(&q[..]), None, "13 bytes");
        for i in 0..4 {
            let mut q = p.clone();
            q[i] = 1;
            assert_eq!(ping(&q[..]), None, "p[{i}] != 0");
        }
        let a = hex(ANSWER_3);
        assert!(!answer(&a[..23], 0xfa76_287e));
        let mut b = a.clone();
        b.push(0);
        assert!(!answer(&b[..], 0xfa76_287e));
    }

    #[test]
    fn other_protocols() {
        for (name, p) in neighbours() {
            assert!(!detect(&p[..], 64738, 40000), "{name}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        crate::detect::apps::tests::fuzz(|p| {
            let _ = (detect(p, 64738, 1), answer(p, 0));
        });
    }
}
