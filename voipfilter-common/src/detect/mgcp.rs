//! MGCP, the Media Gateway Control Protocol (RFC 3435), over UDP. Mirrors nDPI
//! `src/lib/protocols/mgcp.c`.
//!
//! A command ([`detect`]) is recognised from one packet whose payload
//! * is 8 bytes or longer and ends in `\n` or `\r` (the corpus has gateways ending lines in a
//!   bare CR: `mgcp.pcap` frames 27-29);
//! * starts with a verb, `AUEP AUCX CRCX DLCX EPCF MDCX NTFY RQNT RSIP` (letters in any case,
//!   RFC 3435 §3.2.1.1), and one space;
//! * goes on with the command line `transaction-id SP endpoint SP "MGCP" SP version`: a
//!   transaction id of 1-9 digits (§3.2.1.2), an endpoint name of visible ASCII (§2.1.1,
//!   `aaln/1@rgw.example.net`, `*@vg224`) ending before offset [`MAX_SCAN`], and `MGCP ` plus a
//!   `major.minor` version (§3.2.1.4, `MGCP 1.0`). The endpoint is read 4 bytes at a time
//!   from a fixed offset, a SWAR test finding its end, so the verifier's work does not depend
//!   on where the transaction id ended.
//!
//! Responses ([`response`]): nDPI does not look at them (it sees the command in the same flow
//! first). We accept one only with a port check, because on its own `200 1234 OK` is a short
//! text line that other line protocols could produce: either port must be 2427 (gateway) or
//! 2727 (call agent), and the payload must be a response line, `code SP transaction-id` then
//! SP/CR/LF, with a code from RFC 3435 §2.4 (000-199, 200-299, 400-599, 800-899) and 1-9 digits
//! of transaction id, ending in `\n` or `\r`. This classifies a flow whose first packet the
//! filter sees is a response (a filter restarted mid-flow, asymmetric routing).
//!
//! Packets needed: 1. XDP class: S (a bounded scan of the command line); responses: S + P.
//!
//! Verifier (kernel 6.18, each function alone in an XDP program): `detect` 11k instructions
//! processed, `response` 0.5k. `detect` returns from one of ~70 places in its scan, each
//! leaving a different payload length known to the verifier; code after it that reads the
//! same payload at constant offsets is walked once per place (MGCP then SIP on the same
//! window: 84k instead of 20k). Run it last, or give later code a payload window built anew.
//!
//! Where we differ from nDPI, and why: verbs and `MGCP` in any case (RFC 3435 makes them
//! case-insensitive; nDPI wants upper case); the transaction id must be digits and the
//! endpoint non-empty and visible ASCII, and `MGCP ` must be followed by `digit.digit` (nDPI
//! takes any token), which keeps prose such as `RSIP this is not MGCP at all\n` out; one space
//! (not any run of spaces and tabs) separates the fields, as in nDPI. The
//! extension verbs (`MESG`, `X...`) are not accepted, as in nDPI.

use crate::Bytes;

use super::sip::Ci4;

/// The space that ends the endpoint name must come before this offset: verb (5) + transaction
/// id (10) + an endpoint name of up to 264 bytes (RFC 3435 §3.2.1.3 allows 255 for the domain).
pub const MAX_SCAN: usize = 279;
/// Longest payload looked at; also the constant bound the verifier needs on `len - 1`.
pub const MAX_LEN: usize = 4096;
/// MGCP's well-known UDP ports: 2427 on gateways, 2727 on call agents (RFC 3435 §3.5).
pub const MGCP_PORTS: [u16; 2] = [2427, 2727];

const VERBS: [Ci4; 9] = [
    Ci4::new(b"AUEP"),
    Ci4::new(b"AUCX"),
    Ci4::new(b"CRCX"),
    Ci4::new(b"DLCX"),
    Ci4::new(b"EPCF"),
    Ci4::new(b"MDCX"),
    Ci4::new(b"NTFY"),
    Ci4::new(b"RQNT"),
    Ci4::new(b"RSIP"),
];
const MGCP: Ci4 = Ci4::new(b"MGCP");

/// Whether the payload is an MGCP command.
#[inline(always)]
pub fn detect<B: Bytes + ?Sized>(pl: &B) -> bool {
    if !framed(pl, 8) {
        return false;
    }
    let Some(verb) = pl.be32(0) else { return false };
    if pl.u8_at(4) != Some(b' ') || !VERBS.iter().any(|v| v.eq(verb)) {
        return false;
    }
    // The transaction id: 1-9 digits from offset 5, then a space.
    let mut sp1 = 0;
    for at in 5..=TXID_END {
        let Some(c) = pl.u8_at(at) else { return false };
        if c == b' ' && at > 5 {
            sp1 = at;
            break;
        }
        if !c.is_ascii_digit() {
            return false;
        }
    }
    // The endpoint: a non-empty run of visible ASCII, then a space and the version. Its bytes
    // before offset ENDPOINT_WORDS_AT are read one by one (they depend on where the transaction
    // id ended), the rest a word at a time from a fixed offset, so that the verifier walks the
    // long part once, whatever the transaction id's length was.
    if sp1 == 0 || !pl.u8_at(sp1 + 1).is_some_and(visible) {
        return false;
    }
    for at in 7..ENDPOINT_WORDS_AT {
        if at <= sp1 + 1 {
            continue;
        }
        let Some(c) = pl.u8_at(at) else { return false };
        if c == b' ' {
            return version_at(pl, at + 1);
        }
        if !visible(c) {
            return false;
        }
    }
    for k in 0..ENDPOINT_WORDS {
        // `opaque`: keeps LLVM from turning the loop into a running packet pointer with a
        // negative constant offset, which the verifier refuses.
        let off = crate::bytes::opaque(ENDPOINT_WORDS_AT + 4 * k);
        // A message cut inside the endpoint has no room left for the version anyway.
        let Some(w) = pl.array::<4>(off) else { return false };
        let special = space_or_invisible(u32::from_le_bytes(w));
        if special == 0 {
            continue;
        }
        let at = off + first_flagged_byte(special);
        return pl.u8_at(at) == Some(b' ') && version_at(pl, at + 1);
    }
    false
}

/// Last offset of the space that ends a 1-9 digit transaction id.
const TXID_END: usize = 14;
/// Where [`detect`] starts reading the endpoint a word at a time.
const ENDPOINT_WORDS_AT: usize = TXID_END + 1;
/// Words of endpoint read: the command line up to offset [`MAX_SCAN`].
const ENDPOINT_WORDS: usize = (MAX_SCAN - ENDPOINT_WORDS_AT) / 4;

/// `MGCP`, one space, and a `major.minor` version (RFC 3435 §3.2.1.4: `MGCP 1.0`).
#[inline(always)]
fn version_at<B: Bytes + ?Sized>(pl: &B, at: usize) -> bool {
    let Some(v) = pl.array::<8>(at) else { return false };
    let [m, g, c, p, sp, major, dot, minor] = v;
    MGCP.eq(u32::from_be_bytes([m, g, c, p]))
        && sp == b' '
        && major.is_ascii_digit()
        && dot == b'.'
        && minor.is_ascii_digit()
}

/// Flags (bit 7 of each byte) the bytes of `w` that are a space or not visible ASCII
/// (< 0x21, 0x7F, >= 0x80), SWAR style. The lowest flag is exact; flags above it may be
/// spurious (borrows run upwards), so `w` is loaded little-endian and only the first flagged
/// byte in memory order is used.
#[inline(always)]
fn space_or_invisible(w: u32) -> u32 {
    const ONES: u32 = 0x0101_0101;
    const HIGH: u32 = 0x8080_8080;
    let below_0x21 = w.wrapping_sub(0x21 * ONES) & !w;
    let x = w ^ (0x7F * ONES);
    let del = x.wrapping_sub(ONES) & !x;
    (w | below_0x21 | del) & HIGH
}

/// Index (0-3) of the lowest flagged byte of a non-zero flag word, without branches (so the
/// verifier does not split its state four ways).
#[inline(always)]
fn first_flagged_byte(flags: u32) -> usize {
    // The lowest flag alone: bit 7, 15, 23 or 31. `black_box`: knowing it is a power of two,
    // LLVM would turn the arithmetic below into selects, which are branches on BPF.
    let low = core::hint::black_box(flags.isolate_lowest_one());
    // Its byte index from shifts only: bit 0 set for bits 15 and 31, bit 1 for 23 and 31.
    (((low >> 15 | low >> 31) & 1) | ((low >> 22 | low >> 30) & 2)) as usize
}

/// Whether the payload is an MGCP response line on an MGCP port (see the module header).
#[inline(always)]
pub fn response<B: Bytes + ?Sized>(pl: &B, sport: u16, dport: u16) -> bool {
    let mgcp_port = |p: u16| p == MGCP_PORTS[0] || p == MGCP_PORTS[1];
    if !(mgcp_port(sport) || mgcp_port(dport)) || !framed(pl, 6) {
        return false;
    }
    let Some([a, b, c, sp]) = pl.array::<4>(0) else { return false };
    if !matches!(a, b'0' | b'1' | b'2' | b'4' | b'5' | b'8') || !b.is_ascii_digit() || !c.is_ascii_digit() || sp != b' '
    {
        return false;
    }
    // 1-9 digits at 4..=12, then the separator.
    for i in 4..14 {
        let Some(c) = pl.u8_at(i) else { return false };
        if !c.is_ascii_digit() {
            return i > 4 && matches!(c, b' ' | b'\r' | b'\n');
        }
    }
    false
}

/// At least `min` and at most [`MAX_LEN`] bytes, ending in LF or CR.
#[inline(always)]
fn framed<B: Bytes + ?Sized>(pl: &B, min: usize) -> bool {
    let n = pl.len();
    if n < min || n > MAX_LEN {
        return false;
    }
    matches!(pl.u8_at(crate::bytes::opaque(n - 1)), Some(b'\n' | b'\r'))
}

#[inline(always)]
fn visible(c: u8) -> bool {
    (0x21..=0x7E).contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(p: &[u8]) -> bool {
        detect(p)
    }

    fn r(p: &[u8]) -> bool {
        response(p, 2427, 2427)
    }

    /// mgcp.pcap: every command in the capture (frame number, payload).
    const PCAP_COMMANDS: &[(u32, &[u8])] = &[
        (3, b"RQNT 1 *@gateway44.myplace.com MGCP 0.1\r\nR: l/hd(n)\r\nX: 2\r\n\r\n"),
        (7, b"RSIP 31656860 *@gateway44.myplace.com MGCP 1.0\nRM: restart\n"),
        (11, b"RQNT 2 *@gateway44.myplace.com MGCP 0.1\r\nR: l/hd(n)\r\nX: 3\r\n\r\n"),
        (15, b"RSIP 262662134 *@vg224 MGCP 0.1\nRM: graceful\nRD: 0\n"),
        (17, b"RSIP 262662136 *@vg224 MGCP 0.1\nRM: restart\n"),
        (19, b"RQNT 80 AALN/S2/1@vg224 MGCP 0.1\nX: 2\nR: L/hd\nQ: process,loop\n"),
        (21, b"AUEP 81 AALN/S2/1@vg224 MGCP 0.1\nF: X, A, I\n"),
        (23, b"NTFY 262662138 *@vg224 MGCP 0.1\nX: 0\nO: \n"),
        (25, b"RSIP 262662135 *@vg224 MGCP 0.1\nRM: restart\n"),
        // Frames 27-29: three flows from high ports to 2427, lines ended by a bare CR.
        (27, b"RQNT 1 *@gateway44.myplace.com MGCP 0.1\rR: l/hd(n)\rX: 1\r"),
    ];

    /// mgcp.pcap: responses (frame number, payload).
    const PCAP_RESPONSES: &[(u32, &[u8])] = &[
        (4, b"510 1 Protocol Error: Forbidden parameter line present.\n"),
        (8, b"200 31656860 ok\r\n\r\n"),
        (16, b"200 262662134 \n"),
        (20, b"200 80 OK\n"),
    ];

    #[test]
    fn corpus_commands() {
        for &(frame, p) in PCAP_COMMANDS {
            assert!(d(p), "mgcp.pcap frame {frame}");
            assert!(!r(p), "frame {frame} is not a response");
        }
    }

    #[test]
    fn corpus_responses() {
        for &(frame, p) in PCAP_RESPONSES {
            assert!(r(p), "mgcp.pcap frame {frame}");
            assert!(response(p, 40798, 2427), "frame {frame}, gateway side");
            assert!(response(p, 2727, 50000), "frame {frame}, call agent side");
            assert!(!response(p, 40798, 5060), "frame {frame}, no MGCP port");
            assert!(!d(p), "frame {frame} is not a command");
        }
    }

    #[test]
    fn rfc3435_examples() {
        // RFC 3435 §3.2.2 and appendix E examples (command lines and a piggybacked message).
        for p in [
            &b"CRCX 1204 aaln/1@rgw-2567.whatever.net MGCP 1.0\nC: A3C47F21456789F0\nL: p:10, a:PCMU\n\
M: recvonly\n"[..],
            b"MDCX 1210 aaln/1@rgw-2567.whatever.net MGCP 1.0\nC: A3C47F21456789F0\nI: FDE234C8\nM: recvonly\n",
            b"DLCX 1210 aaln/1@rgw-2567.whatever.net MGCP 1.0\r\nC: A3C47F21456789F0\r\nI: FDE234C8\r\n",
            b"RQNT 1205 aaln/1@rgw-2567.whatever.net MGCP 1.0\nN: ca@ca1.whatever.net:5678\nX: 0123456789AC\nR: hd\n",
            b"NTFY 2002 aaln/1@rgw-2567.whatever.net MGCP 1.0\nN: ca@ca1.whatever.net:5678\nX: 0123456789AC\nO: L/hu\n",
            b"AUCX 1210 aaln/1@rgw.whatever.net MGCP 1.0\nI: 32F345E2\nF: C,N,L,M,LC,P\n",
            b"EPCF 2012 ds/tr1/[1-24]@tgw.whatever.net MGCP 1.0\nB: e:mu\n",
            b"RSIP 5200 aaln/1@rgw.whatever.net MGCP 1.0\nRM: restart\n",
            b"rqnt 1205 aaln/1@rgw.whatever.net mgcp 1.0\nX: 1\n",
            b"RQNT 999999999 x MGCP 1.0\n",
        ] {
            assert!(d(p), "{}", String::from_utf8_lossy(p));
        }
        for p in
            [&b"200 1204 OK\nI: FDE234C8\n"[..], b"200 1203 OK\n.\nRQNT 1205 aaln/1@rgw.example.net MGCP 1.0\nX: 0\n"]
        {
            assert!(r(p), "{}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn command_near_misses() {
        for p in [
            &b"RQNT 1 *@gateway44.myplace.com MGCP 0.1\r\nX: 1"[..], // no final CR/LF
            b"RQNT 1 *@gateway44.myplace.com MGCP 0.1",
            b"RQNX 1 *@gw MGCP 1.0\n",
            b"MESG 1 *@gw MGCP 1.0\n",
            b"RQNT  1 *@gw MGCP 1.0\n",
            b"RQNT1 *@gw MGCP 1.0\n",
            b"RQNT 1  *@gw MGCP 1.0\n",
            b"RQNT x1 *@gw MGCP 1.0\n",
            b"RQNT 1234567890 *@gw MGCP 1.0\n", // 10-digit transaction id
            b"RQNT 1 *@gw\tMGCP 1.0\n",
            b"RQNT 1 *@gw MGCP\n",
            b"RQNT 1 *@gw MGCP x.0\n",
            b"RQNT 1 *@gw MGCP 1\n",
            b"RQNT 1 *@gw MGCP 1.\n",
            b"RQNT 1 *@gw MGCP 1,0\n",
            b"RQNT 1 *@gw MGCP  1.0\n",
            b"RQNT 1 *@gw  MGCP 1.0\n",
            b"RQNT 1 *@g\x7fw MGCP 1.0\n",
            b"RQNT 1 *@g\xc3\xa9w MGCP 1.0\n",
            b"RQNT 1 *@gw MGCPx1.0\n",
            b"RQNT 1 *@gw SIP/2.0\n",
            b"RQNT 1 *@gw\n",
            b"RSIP this is not MGCP at all\n",
            b"RQNT 1 *@gw \x01MGCP 1.0\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"INVITE sip:bob@biloxi.com SIP/2.0\r\n\r\n",
            b"!/1 [124.124.124.222] T=9998{}\n",
            b"AUEP\n\n\n\n\n",
        ] {
            assert!(!d(p), "{}", String::from_utf8_lossy(p));
        }
        // Every transaction id and endpoint length: the endpoint must end before MAX_SCAN.
        for txid in 1..=10 {
            for ep in 0..300 {
                let mut p = b"MDCX ".to_vec();
                p.extend(std::iter::repeat_n(b'7', txid));
                p.push(b' ');
                p.extend(std::iter::repeat_n(b'e', ep));
                let space = p.len();
                p.extend_from_slice(b" MGCP 1.0\nC: A3C47F21456789F0\n");
                let want = txid <= 9 && ep > 0 && space < MAX_SCAN;
                assert_eq!(d(&p), want, "txid {txid}, endpoint {ep}");
            }
        }
        // Longer than MAX_LEN.
        let mut big = b"RQNT 1 *@gw MGCP 1.0\n".to_vec();
        big.resize(MAX_LEN, b'\n');
        assert!(d(&big));
        big.push(b'\n');
        assert!(!d(&big));
    }

    #[test]
    fn response_near_misses() {
        for p in [
            &b"200 1204 OK"[..], // no final CR/LF
            b"200 OK\n",
            b"200  1204 OK\n",
            b"2001 1204 OK\n",
            b"20 1204 OK\n",
            b"300 1204 OK\n",
            b"600 1204 OK\n",
            b"200 1234567890 OK\n",
            b"200 12x4 OK\n",
            b"250 2.1.0 Ok\r\n",            // SMTP
            b"220 ftp.example.com FTP\r\n", // FTP
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"SIP/2.0 200 OK\r\n\r\n",
            b"200 1\x00\n",
        ] {
            assert!(!r(p), "{}", String::from_utf8_lossy(p));
        }
        assert!(r(b"200 1\n"), "the shortest response");
        assert!(r(b"000 1\r"), "an acknowledgement code");
        assert!(r(b"899 123456789 x\n"));
    }

    #[test]
    fn swar_finds_the_first_space_or_invisible_byte() {
        let bad = |c: u8| c == b' ' || !visible(c);
        let probes = [0u8, 0x09, 0x20, 0x21, 0x41, 0x7E, 0x7F, 0x80, 0xFF];
        for a in 0..=255u8 {
            for b in probes {
                for w in [[a, b, b'x', b'y'], [b'x', a, b, b'y'], [b'x', b'y', a, b], [b, b'x', b'y', a], [a, a, b, b]]
                {
                    let flags = space_or_invisible(u32::from_le_bytes(w));
                    match w.iter().position(|&c| bad(c)) {
                        None => assert_eq!(flags, 0, "{w:02x?}"),
                        Some(i) => assert_eq!(first_flagged_byte(flags), i, "{w:02x?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn other_protocols() {
        let dns = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
        let quic = b"\xc3\x00\x00\x00\x01\x08\x83\x94\xc8\xf0\x3e\x51\x57\x08\x00\x00\x44\x9e\x0a";
        let mut ntp = [0u8; 48];
        ntp[0] = 0x23;
        for p in [&dns[..], quic, &ntp, b"", b"\n"] {
            assert!(!d(p) && !r(p), "{p:02x?}");
        }
    }

    #[test]
    fn every_truncation_is_false() {
        // A cut payload that still ends in a line break can be a whole command again (the
        // first line alone is a valid command); every other cut must be refused.
        for &(frame, p) in PCAP_COMMANDS.iter().chain(PCAP_RESPONSES) {
            let first_line = p.iter().position(|&c| c == b'\n' || c == b'\r').unwrap() + 1;
            for n in 0..p.len() {
                let cut = &p[..n];
                let whole = n >= first_line && matches!(p[n - 1], b'\n' | b'\r');
                assert_eq!(d(cut), whole && d(p), "frame {frame}, {n} bytes");
                assert_eq!(r(cut), whole && r(p), "frame {frame}, {n} bytes");
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x = 0xD1B5_4A32_D192_ED03u64;
        let mut next = || {
            x = crate::testing::xorshift(x);
            x as u8
        };
        for len in 0..400 {
            let mut v: Vec<u8> = (0..len).map(|_| next()).collect();
            if let Some(last) = v.last_mut() {
                *last = b'\n';
            }
            assert!(!d(&v) && !r(&v), "{v:02x?}");
            // A valid verb and transaction id in front of random bytes.
            if len > 12 {
                v[..7].copy_from_slice(b"RQNT 1 ");
                let _ = d(&v);
            }
        }
    }
}
