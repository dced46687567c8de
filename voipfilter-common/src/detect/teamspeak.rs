//! TeamSpeak 3: the unencrypted Init1 handshake that opens every client connection, and the
//! licence / weblist exchange between a server and the TeamSpeak accounting servers.
//!
//! Mirrors nDPI `src/lib/protocols/teamspeak.c` (facts §13). XDP class: **S** for Init1, **F**
//! for the licence exchange (three packets, [`crate::detect::track`]).
//!
//! * [`init1`], one packet, any port: a payload of at least 20 bytes starting with the 8-byte
//!   MAC `TS3INIT1` (`teamspeak.c:40-47`). Every Init1 packet of the low-level handshake carries
//!   that fixed MAC (packet id 101, flags 0x88); the shortest, the server's step 1, is 8 + 2 + 1
//!   + 21 = 32 bytes, so 20 keeps them all.
//! * [`licence`], the shape of one packet of the licence exchange: 4, 5, 8 or 16 bytes with
//!   `p[0] == 0x01` and `p[3]` 1 or 2 (`teamspeak.c:61-93`). nDPI decides on the third such
//!   packet of a flow; so does the tracker.
//!
//! * [`tcp`], one segment: the TCP prefixes `f4 be 03 00`, `f4 be 02 00` and `f4 be 01 00`
//!   (`teamspeak.c:48-57`: the TeamSpeak 2 era's TCP query/file-transfer framing, still
//!   matched by nDPI), on a segment of at least 4 bytes.
//!
//! No ports: 9987 (voice), 2010/2011 (accounting) are not used, as in nDPI.
//!
//! `teamspeak3.pcap`: 10.0.0.1:53187 -> 10.0.0.2:9987 opens with a 34-byte `TS3INIT1` packet
//! (found on packet 1); 193.31.25.70:2011 <-> 51.68.181.92:2010 repeats, every ten minutes,
//! `01 80 84 01` (4 bytes), `01 80 84 01 ..` (8), `01 81 84 02 ..` (16), `01 81 84 02 00` (5):
//! found on its third packet.

use super::tag4;
use crate::Bytes;

/// Least payload length of an Init1 packet that nDPI accepts.
pub const INIT1_MIN_LEN: usize = 20;

/// Whether a UDP payload is a TeamSpeak 3 Init1 handshake packet.
#[inline(always)]
pub fn init1<B: Bytes + ?Sized>(pl: &B) -> bool {
    if pl.len() < INIT1_MIN_LEN {
        return false;
    }
    let Some(m) = pl.array::<8>(0) else { return false };
    u32::from_be_bytes([m[0], m[1], m[2], m[3]]) == tag4(b"TS3I") && u32::from_be_bytes([m[4], m[5], m[6], m[7]]) == tag4(b"NIT1")
}

/// Whether a TCP segment starts with one of TeamSpeak's TCP prefixes (`f4 be 0{1,2,3} 00`).
#[inline(always)]
pub fn tcp<B: Bytes + ?Sized>(pl: &B) -> bool {
    matches!(pl.be32(0), Some(w) if w == 0xF4BE_0300 || w == 0xF4BE_0200 || w == 0xF4BE_0100)
}

/// Whether a UDP payload has the shape of a licence-exchange packet (one of the three the
/// tracker needs).
#[inline(always)]
pub fn licence<B: Bytes + ?Sized>(pl: &B) -> bool {
    let len = pl.len();
    if !(len == 4 || len == 5 || len == 8 || len == 16) {
        return false;
    }
    let Some(h) = pl.array::<4>(0) else { return false };
    h[0] == 0x01 && (h[3] == 1 || h[3] == 2)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::detect::apps::tests::neighbours;
    use crate::testing::hex;

    // teamspeak3.pcap packet 1: 10.0.0.1:53187 -> 10.0.0.2:9987, whole 34-byte payload.
    pub(crate) const INIT1_1: &str = "54533349 4e495431 00650000 880dd057 66005f59 16e0ade7 6b610000 00000000 0000";
    // teamspeak3.pcap, 193.31.25.70:2011 <-> 51.68.181.92:2010, whole payloads, in order.
    pub(crate) const LIC_4: &str = "01808401";
    pub(crate) const LIC_8: &str = "018084017c65d9a7";
    pub(crate) const LIC_16: &str = "018184027c65d9a7 0327200000000000";
    pub(crate) const LIC_5: &str = "0181840200";

    #[test]
    fn real_init1() {
        let p = hex(INIT1_1);
        assert_eq!(p.len(), 34);
        assert_eq!(&p[..8], b"TS3INIT1");
        assert!(init1(&p[..]));
        assert!(init1(&p[..20]));
        assert!(!init1(&p[..19]), "shorter than 20");
        let mut q = p.clone();
        q[7] = b'2';
        assert!(!init1(&q[..]), "TS3INIT2");
        q = p.clone();
        q[0] = b't';
        assert!(!init1(&q[..]), "case matters");
    }

    #[test]
    fn real_licence_packets() {
        for s in [LIC_4, LIC_8, LIC_16, LIC_5] {
            assert!(licence(&hex(s)[..]), "{s}");
        }
        // Other lengths, p[0], p[3].
        let mut p = hex(LIC_16);
        p.push(0);
        assert!(!licence(&p[..]), "17 bytes");
        assert!(!licence(&hex("018084")[..]), "3 bytes");
        assert!(!licence(&hex("02808401")[..]));
        assert!(!licence(&hex("01808403")[..]));
        assert!(!licence(&hex("01808400")[..]));
    }

    #[test]
    fn tcp_prefixes() {
        for v in [1u8, 2, 3] {
            let p = [0xF4, 0xBE, v, 0x00, 0x12, 0x34];
            assert!(tcp(&p[..]), "f4 be {v:02x} 00");
        }
        assert!(!tcp(&[0xF4, 0xBE, 0x04, 0x00][..]));
        assert!(!tcp(&[0xF4, 0xBE, 0x03, 0x01][..]));
        assert!(!tcp(&[0xF4, 0xBE, 0x03][..]), "too short");
    }

    #[test]
    fn other_protocols() {
        for (name, p) in neighbours() {
            assert!(!init1(&p[..]), "{name}");
            assert!(!licence(&p[..]), "{name}");
            assert!(!tcp(&p[..]), "{name}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        crate::detect::apps::tests::fuzz(|p| {
            let _ = (init1(p), licence(p), tcp(p));
        });
    }
}
