//! Telegram: the UDP packets between a Telegram client and Telegram's call relays.
//!
//! Mirrors nDPI `src/lib/protocols/telegram.c:65-99` (facts §8). XDP class: **S**, one packet,
//! a bounded scan.
//!
//! Checked: either UDP port in **500..=600** (`telegram.c:40-46`), a payload of at least 40
//! bytes, and the **first** run of `0xFF` bytes in it exactly **12** long. In `telegram.pcap`
//! the relay packets carry a 16-byte tag (peer tag), then twelve `0xFF` and a `0xFE` (or the
//! rest of the packet): `dc4c0029 1565b7ac bc236da9 eda0d597 ffffffff ffffffff ffffffff fe...`.
//!
//! Bounded for the verifier: the first `0xFF` is looked for in the first [`MAX_SCAN`] bytes
//! (nDPI scans with an 8-bit index, so at most 255), one 16-bit word per step (the one that
//! starts at the byte: a one-byte read in a loop fails the verifier, docs/verifier.md); the run
//! is then one 12-byte read and the byte after it.
//!
//! Telegram calls through STUN are found by `detect::stun` (REALM `telegram`).

use crate::Bytes;

/// The relays' port range.
pub const PORT_FIRST: u16 = 500;
pub const PORT_LAST: u16 = 600;
/// Least payload length.
pub const MIN_LEN: usize = 40;
/// Bytes searched for the first `0xFF`.
pub const MAX_SCAN: usize = 128;
/// Length of the run.
pub const RUN: usize = 12;

#[inline(always)]
fn relay_port(p: u16) -> bool {
    (PORT_FIRST..=PORT_LAST).contains(&p)
}

/// Whether a UDP payload is a Telegram relay packet.
#[inline(always)]
pub fn detect<B: Bytes + ?Sized>(pl: &B, sport: u16, dport: u16) -> bool {
    if !(relay_port(sport) || relay_port(dport)) || pl.len() < MIN_LEN {
        return false;
    }
    match first_ff(pl) {
        Some(s) => run_of_12(pl, s),
        None => false,
    }
}

/// Offset of the first `0xFF` among the first [`MAX_SCAN`] bytes (the last byte of the payload
/// is not looked at: a run starting there has length 1).
#[inline(always)]
fn first_ff<B: Bytes + ?Sized>(pl: &B) -> Option<usize> {
    for i in 0..MAX_SCAN {
        let w = pl.be16(i)?;
        if w >> 8 == 0xFF {
            return Some(i);
        }
    }
    None
}

/// Whether exactly 12 `0xFF` start at `s`: bytes `s..s + 12` are `0xFF` and byte `s + 12` is not
/// (or is past the end).
#[inline(always)]
fn run_of_12<B: Bytes + ?Sized>(pl: &B, s: usize) -> bool {
    if s >= MAX_SCAN {
        return false;
    }
    let Some(r) = pl.array::<12>(s) else { return false };
    let lo = u64::from_ne_bytes([r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]]);
    let hi = u32::from_ne_bytes([r[8], r[9], r[10], r[11]]);
    if lo != u64::MAX || hi != u32::MAX {
        return false;
    }
    // The byte after the run: the low byte of the word ending there (readable exactly when it is).
    match pl.be16(s + RUN - 1) {
        Some(w) => w as u8 != 0xFF,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::apps::tests::neighbours;
    use crate::testing::hex;

    // telegram.pcap: 192.168.1.77:23174 -> 91.108.8.7:521, whole 40-byte payload.
    const RELAY_1: &str = "dc4c00291565b7acbc236da9eda0d597 ffffffffffffffffffffffff feffffff 28f9461126 01a2f0";
    // The relay's answer, 91.108.8.7:521 -> 192.168.1.77:23174, whole 64-byte payload.
    const RELAY_7: &str = "dc4c00291565b7acbc236da9eda0d597 ffffffffffffffffffffffff c77215c060dab25e 28f946112601a2f0 000000000000000000000000ffff570bcdc35ddc0000";
    // The first 96-byte packet that follows (91.108.8.7:521 -> client): no 0xFF run of 12.
    const DATA_13: &str = "dc4c00291565b7acbc236da9eda0d597592e46c3eb5bd2847e7cd8cd020b8522556709b8c9d1889d177c2ba7e5e09713dd9605ab221e9c077d200d2a80211dec63d0ea6255fda69905003d8fefebd316587c4d5e31f28c8ebc3b0cf655645dd8";

    #[test]
    fn real_packets() {
        let p = hex(RELAY_1);
        assert_eq!(p.len(), 40);
        assert!(detect(&p[..], 23174, 521));
        assert!(detect(&p[..], 521, 23174));
        assert!(!detect(&p[..], 23174, 601), "port out of range");
        assert!(!detect(&p[..], 23174, 499));
        assert!(!detect(&p[..39], 23174, 521), "39 bytes");
        let q = hex(RELAY_7);
        assert!(detect(&q[..], 521, 23174));
        assert!(!detect(&hex(DATA_13)[..], 521, 23174));
    }

    #[test]
    fn run_must_be_exactly_twelve() {
        let base = hex(RELAY_7);
        // 11: shorten the run by one.
        let mut p = base.clone();
        p[27] = 0x00;
        assert!(!detect(&p[..], 521, 1));
        // 13: lengthen it.
        let mut p = base.clone();
        p[28] = 0xFF;
        assert!(!detect(&p[..], 521, 1));
        // An earlier, shorter run decides (nDPI looks at the first run only).
        let mut p = base.clone();
        p[3] = 0xFF;
        assert!(!detect(&p[..], 521, 1));
        // A run of twelve that ends the payload.
        let mut p = [0x11u8; 40];
        p[28..].fill(0xFF);
        assert!(detect(&p[..], 521, 1));
        // First 0xFF beyond the scan window.
        let mut p = [0x11u8; MAX_SCAN + 20];
        p[MAX_SCAN + 1..MAX_SCAN + 13].fill(0xFF);
        assert!(!detect(&p[..], 521, 1));
        let mut p = [0x11u8; MAX_SCAN + 20];
        p[MAX_SCAN - 1..MAX_SCAN + 11].fill(0xFF);
        assert!(detect(&p[..], 521, 1));
    }

    #[test]
    fn other_protocols() {
        for (name, p) in neighbours() {
            assert!(!detect(&p[..], 40000, 530), "{name}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        crate::detect::apps::tests::fuzz(|p| {
            let _ = detect(p, 521, 1);
        });
    }
}
