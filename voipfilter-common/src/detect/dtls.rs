//! DTLS record header (RFC 6347 §4.1, RFC 9147 §4): the DTLS-SRTP key exchange of WebRTC calls.
//!
//! Mirrors nDPI `src/lib/protocols/tls.c` `is_dtls()` (facts file §3, "DTLS record check").
//! XDP class: **S** (fixed offsets, one packet). Which app a DTLS flow belongs to comes from the
//! STUN that preceded it on the flow (F, the engine) or from its certificate (user space).
//!
//! [`is_record`] checks the first record of the datagram:
//! * content type at 0: 0x14 change_cipher_spec, 0x15 alert, 0x16 handshake, 0x17 application_data;
//! * version at 1: `FE FF` (DTLS 1.0), `FE FD` (1.2, and 1.3's legacy field), `FE FC`, or
//!   `01 00` (the pre-standard OpenSSL/AnyConnect DTLS), as nDPI;
//! * epoch (2 bytes) and sequence number (6 bytes) are not checked;
//! * record length at 11 non-zero and `len + 13 <= payload_len` (nDPI: `len + 12 < payload_len`);
//!   several records may follow in the same datagram, so the record need not fill it.
//!
//! [`is_client_hello`] adds: handshake record in epoch 0 holding at least a handshake header
//! (12 bytes) whose type at 13 is 1 (ClientHello). nDPI hands such packets to its TLS code
//! instead; the check here is what that code starts with.
//!
//! Packets needed: 1.

use crate::Bytes;

/// DTLS record header: type, version, epoch, sequence number, length.
pub const RECORD_HDR_LEN: usize = 13;
/// DTLS handshake header: type, length, message_seq, fragment_offset, fragment_length.
pub const HANDSHAKE_HDR_LEN: usize = 12;

pub mod content {
    pub const CHANGE_CIPHER_SPEC: u8 = 0x14;
    pub const ALERT: u8 = 0x15;
    pub const HANDSHAKE: u8 = 0x16;
    pub const APPLICATION_DATA: u8 = 0x17;
}

/// Handshake type of a ClientHello.
pub const CLIENT_HELLO: u8 = 1;

/// The payload starts with a DTLS record header (nDPI `is_dtls`).
#[inline(always)]
pub fn is_record<B: Bytes + ?Sized>(pl: &B) -> bool {
    // One read at a time (a tuple of `Option`s once compiled to a read of an uninitialised
    // register in a test program, which the verifier rejects).
    let Some(b0) = pl.u8_at(0) else {
        return false;
    };
    let Some(version) = pl.be16(1) else {
        return false;
    };
    let Some(rlen) = pl.be16(11) else {
        return false;
    };
    (content::CHANGE_CIPHER_SPEC..=content::APPLICATION_DATA).contains(&b0)
        && matches!(version, 0xFEFF | 0xFEFD | 0xFEFC | 0x0100)
        && rlen != 0
        && rlen as usize + RECORD_HDR_LEN <= pl.len()
}

/// The payload starts with a DTLS record carrying (the start of) a ClientHello.
#[inline(always)]
pub fn is_client_hello<B: Bytes + ?Sized>(pl: &B) -> bool {
    is_record(pl)
        && pl.u8_at(0) == Some(content::HANDSHAKE)
        && pl.be16(3) == Some(0)
        && pl.be16(11).is_some_and(|l| l as usize >= HANDSHAKE_HDR_LEN)
        && pl.u8_at(RECORD_HDR_LEN) == Some(CLIENT_HELLO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    use crate::testing::hex as hx;

    /// stun_dtls_rtp.pcapng #3: the Google Meet client's DTLS 1.2 ClientHello (record version
    /// FE FF, epoch 0), 157 bytes.
    const CLIENT_HELLO: &str =
        "16feff00000000000000000090010000840000000000000084fefd4bf46b94af3b20dcb7ca52337eef1b8b3b
        149996c9b35800d1e92a7fa8ab407d00000016c02bc02fcca9cca8c009c013c00ac014009c002f0035010000440017
        0000ff01000100000a00080006001d00170018000b0002010000230000000d00140012040308040401050308050501
        080606010201000e0009000600010008000700";
    /// stun_dtls_rtp.pcapng #8: application data (SRTP keys agreed), epoch 1.
    const APP_DATA: &str =
        "17fefd0001000000000001004400010000000000017344356d813a2533b48b7707c104f5841ae95ec3df21
        55c44f21c06f1583a1ddd8313f17c06a3255a68db1d0e1c768542e3a110e5948cf3d2f460ca0";
    /// dtls.pcap #6: an alert (2-byte body), DTLS 1.0.
    const ALERT: &str = "15feff00000000000000020002020a";
    /// stun_dtls_rtp.pcapng #4: the first 100 of 1203 bytes, the ServerHello record (80 bytes)
    /// and the start of the next record.
    const SERVER_HELLO_PREFIX: &str =
        "16fefd00000000000000000050020000440000000000000044fefd638a06259c856f925e
        a407bdb332638c1caf299dfb70fa9512b619c8cefae58000c02f00001c00170000ff01000100000b000201000023
        0000000e0005000200080016fefd00000000";

    #[test]
    fn real_records() {
        let ch = hx(CLIENT_HELLO);
        assert_eq!(ch.len(), 157);
        assert!(is_record(&ch[..]));
        assert!(is_client_hello(&ch[..]));
        for h in [APP_DATA, ALERT, SERVER_HELLO_PREFIX] {
            let p = hx(h);
            assert!(is_record(&p[..]), "{h}");
            assert!(!is_client_hello(&p[..]), "{h}");
        }
    }

    #[test]
    fn record_header_fields() {
        let ch = hx(CLIENT_HELLO);
        for b0 in 0..=255u8 {
            let mut p = ch.clone();
            p[0] = b0;
            assert_eq!(is_record(&p[..]), (0x14..=0x17).contains(&b0), "type {b0:02x}");
        }
        for (v, ok) in [
            ([0xFE, 0xFF], true),
            ([0xFE, 0xFD], true),
            ([0xFE, 0xFC], true),
            ([0x01, 0x00], true),
            ([0xFE, 0xFE], false),
            ([0x03, 0x03], false), // TLS 1.2
            ([0xFF, 0xFD], false),
            ([0x01, 0x01], false),
        ] {
            let mut p = ch.clone();
            p[1..3].copy_from_slice(&v);
            assert_eq!(is_record(&p[..]), ok, "version {v:02x?}");
        }
        // Length 0, one byte too long, and exactly the payload (the record may be followed by
        // others, so a shorter record is fine).
        let mut p = ch.clone();
        p[11..13].copy_from_slice(&[0, 0]);
        assert!(!is_record(&p[..]));
        let mut p = ch.clone();
        p[11..13].copy_from_slice(&145u16.to_be_bytes());
        assert!(!is_record(&p[..]));
        p[11..13].copy_from_slice(&144u16.to_be_bytes());
        assert!(is_record(&p[..]));
        p[11..13].copy_from_slice(&1u16.to_be_bytes());
        assert!(is_record(&p[..]));
    }

    #[test]
    fn client_hello_checks() {
        let ch = hx(CLIENT_HELLO);
        // Handshake type: ServerHello (2), Certificate (11) are not ClientHello.
        for t in [0u8, 2, 3, 11, 16, 20] {
            let mut p = ch.clone();
            p[13] = t;
            assert!(is_record(&p[..]) && !is_client_hello(&p[..]), "handshake type {t}");
        }
        // A ClientHello is sent in epoch 0, in a handshake record.
        let mut p = ch.clone();
        p[3..5].copy_from_slice(&[0, 1]);
        assert!(!is_client_hello(&p[..]));
        let mut p = ch.clone();
        p[0] = 0x17;
        assert!(!is_client_hello(&p[..]));
        // Too short for a handshake header.
        let mut p = ch[..13 + 11].to_vec();
        p[11..13].copy_from_slice(&11u16.to_be_bytes());
        assert!(is_record(&p[..]) && !is_client_hello(&p[..]));
    }

    #[test]
    fn every_truncation_is_false() {
        for h in [CLIENT_HELLO, APP_DATA, ALERT] {
            let p = hx(h);
            let rlen = u16::from_be_bytes([p[11], p[12]]) as usize;
            for cut in 0..p.len() {
                assert_eq!(is_record(&p[..cut]), cut >= RECORD_HDR_LEN + rlen, "{h} cut {cut}");
                assert!(!is_client_hello(&p[..cut]) || cut >= RECORD_HDR_LEN + rlen);
            }
        }
    }

    #[test]
    fn other_protocols() {
        let cases: &[&str] = &[
            // RFC 5769 STUN Binding request.
            "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e2074657374",
            // rtp.pcapng #11 (RTP), stun_dtls_rtp.pcapng #24 (RTCP).
            "80a2011a000a2f300000164600700000617f5b582f42d9d0",
            "80cf0004eda706e65b0b93915eb3cd23bf23e75635883e412fef49bb4c75860f6a41612e80000001",
            // dns.pcap #2.
            "bc1f0100000100000000000003777777076578616d706c6503636f6d00001c0001",
            // NTPv4.pcap #1.
            "230207eb00000450000003ab83bc03dfd94f51c33165b860d944575530336fd0d944575531b4e978d94f51f4",
            // telegram.pcap #726, gQUIC Q050 (first 48 bytes).
            "c35130343650752434271815fbf000000001a53b56196a08e1ad8ee70a06a001040043484c4f1900000050414400f501",
            // A TLS 1.2 record (TCP): version 03 03, 5-byte header.
            "160303007a020000760303",
            // TURN ChannelData.
            "400100088000000100000000",
        ];
        for h in cases {
            let p = hx(h);
            assert!(!is_record(&p[..]), "{h}");
            assert!(!is_client_hello(&p[..]), "{h}");
        }
        assert!(!is_record(&[][..]));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x853C_49E6_748F_EA9B;
        let mut hits = 0;
        for round in 0..100_000 {
            x = crate::testing::xorshift(x);
            let len = (x % 64) as usize;
            let mut p: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8 ^ i as u8).collect();
            if len > 3 && round % 2 == 0 {
                p[0] = 0x14 + (x % 4) as u8;
                p[1] = 0xFE;
                p[2] = 0xFD;
            }
            if is_record(&p[..]) {
                hits += 1;
                let rlen = u16::from_be_bytes([p[11], p[12]]) as usize;
                assert!(rlen > 0 && rlen + RECORD_HDR_LEN <= p.len());
            }
            let _ = is_client_hello(&p[..]);
        }
        assert!(hits > 0);
    }
}
