//! Real VoIP payloads for the tests: a SIP INVITE built like the RFC 3261 §4 example (with or
//! without an SDP offer), RTP packets, an IAX2 NEW, a STUN binding request, ordinary HTTP, and
//! whole frames taken from the captures of `../shared/corpus/pcap` (each names its capture and
//! packet number, as tcpdump counts them).

/// A SIP INVITE as in RFC 3261 §4 (Alice at atlanta.com calls Bob at biloxi.com), with an SDP
/// offer (RFC 4566, as in RFC 3264 §10.1) of one PCMU audio stream on `media_ip`:`media_port`
/// when `media_port` is non-zero, and no body otherwise.
pub fn sip_invite(call: u32, media_ip: &str, media_port: u16) -> Vec<u8> {
    let body = if media_port == 0 {
        String::new()
    } else {
        format!(
            "v=0\r\n\
             o=alice 2890844526 2890844526 IN IP4 {media_ip}\r\n\
             s=-\r\n\
             c=IN IP4 {media_ip}\r\n\
             t=0 0\r\n\
             m=audio {media_port} RTP/AVP 0\r\n\
             a=rtpmap:0 PCMU/8000\r\n"
        )
    };
    let content_type = if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" };
    format!(
        "INVITE sip:bob@biloxi.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds{call}\r\n\
         Max-Forwards: 70\r\n\
         To: Bob <sip:bob@biloxi.com>\r\n\
         From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710{call}@pc33.atlanta.com\r\n\
         CSeq: 314159 INVITE\r\n\
         Contact: <sip:alice@pc33.atlanta.com>\r\n\
         {content_type}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Bob's `180 Ringing` to [`sip_invite`] (RFC 3261 §24.2, F8 shape).
pub fn sip_ringing(call: u32) -> Vec<u8> {
    format!(
        "SIP/2.0 180 Ringing\r\n\
         Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds{call}\r\n\
         To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\r\n\
         From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710{call}@pc33.atlanta.com\r\n\
         CSeq: 314159 INVITE\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// An RTP packet (RFC 3550): version 2, payload type `pt`, 160 bytes of PCMU silence (20 ms).
pub fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, pt & 0x7F];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xFF; 160]);
    p
}

/// The `i`-th packet of a PCMU stream (sequence numbers and timestamps advancing as a phone's).
pub fn rtp_stream(ssrc: u32, first_seq: u16, i: u16) -> Vec<u8> {
    rtp(0, first_seq.wrapping_add(i), 8000 + 160 * u32::from(i), ssrc)
}

/// An IAX2 full frame NEW (RFC 5456 §8.1.1, §6.2.1): source call number with the F bit,
/// destination call 0, timestamp, sequence numbers, frame type IAX (6), subclass NEW (1), then
/// the VERSION (11) and CALLED NUMBER (1) IEs.
pub fn iax2_new(call: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(24);
    f.extend_from_slice(&(0x8000 | (call & 0x7FFF)).to_be_bytes());
    f.extend_from_slice(&0u16.to_be_bytes());
    f.extend_from_slice(&(u32::from(call) * 20).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x06, 0x01]);
    f.extend_from_slice(&[0x0B, 2, 0x00, 0x02]);
    f.extend_from_slice(&[0x01, 3, b'1', b'0', b'0']);
    f
}

/// A STUN binding request (RFC 8489) without attributes; `tid` fills the transaction id.
pub fn stun_binding(tid: u32) -> Vec<u8> {
    let mut f = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    f.extend_from_slice(b"vftest");
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&tid.to_be_bytes());
    f
}

pub const HTTP_GET: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";
pub const HTTP_OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";

/// A DNS query for `example.org. IN A`.
pub fn dns_query(id: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(b"\x07example\x03org\x00\x00\x01\x00\x01");
    f
}

/// Decodes hex (whitespace ignored).
pub fn hex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    s.chunks(2).map(|c| u8::from_str_radix(std::str::from_utf8(c).expect("ascii"), 16).expect("hex digits")).collect()
}

/// A whole Ethernet frame from a corpus capture.
pub struct CorpusFrame {
    pub capture: &'static str,
    /// Packet number in the capture (1-based, as tcpdump and Wireshark count).
    pub packet: u32,
    pub what: &'static str,
    pub hex: &'static str,
}

impl CorpusFrame {
    pub fn bytes(&self) -> Vec<u8> {
        hex(self.hex)
    }

    pub fn name(&self) -> String {
        format!("{} packet {} ({})", self.capture, self.packet, self.what)
    }
}

/// `iax.pcap` packet 1: UDP 82.110.36.84:4569 -> 192.168.2.120:4566, an IAX2 full frame NEW
/// (frame type 6, subclass 1) with VERSION, CALLED NUMBER, CALLING NUMBER, ... IEs.
pub const IAX2_NEW: CorpusFrame = CorpusFrame {
    capture: "iax.pcap",
    packet: 1,
    what: "IAX2 NEW, udp 4569 -> 4566",
    hex: "00c0f0962e6b00e08127627008004510005e000040004011009d526e2454c0a8027811d911d6004a92cc80040000\
          00000001000006010b020002010c343432303838323035313535020c34343737383232363739343904000a02656e\
          ff04000000020c0200001f040b0c55d6",
};

/// `h323.pcap` packet 6: TCP 10.1.3.143:32803 -> 10.1.6.18:1720 (PSH), a TPKT (RFC 1006) with
/// an H.225.0 Q.931 SETUP (protocol discriminator 8), 160 bytes.
pub const H323_SETUP: CorpusFrame = CorpusFrame {
    capture: "h323.pcap",
    packet: 6,
    what: "H.225.0 SETUP in TPKT, tcp 32803 -> 1720",
    hex: "00d0501001660004762220170800450000c8a4ab4000400677e20a01038f0a010612802306b8cb712562dd6bafbe50\
          1816d0085c0000030000a0080277f40504038090a528086d2e6a656d6563007e00850520a8060008914a00040140\
          06006d002e006a0065006d0065006322c00900003d1443616c6c67656e33323320706f67616373616d00000a302e\
          39616c706861340000000a01061206b800f8fdf93ecd9ed6119ab2000476222017005d0d8007000a01038f802311\
          00c0fef93ecd9ed6119ab2000476222017010001000100010002800100",
};

/// `mgcp.pcap` packet 3: UDP 172.16.1.116:2427 -> 172.16.1.119:2427, the MGCP command
/// `RQNT 1 *@gateway44.myplace.com MGCP 0.1`.
pub const MGCP_RQNT: CorpusFrame = CorpusFrame {
    capture: "mgcp.pcap",
    packet: 3,
    what: "MGCP RQNT, udp 2427 -> 2427",
    hex: "0090f80032ec0010a4eb60b3080045000059000040004011df88ac100174ac100177097b097b0045efeb52514e5420\
          31202a406761746577617934342e6d79706c6163652e636f6d204d47435020302e310d0a523a206c2f6864286e29\
          0d0a583a20320d0a0d0a",
};

/// `sccp_hw_conf_register.pcapng` packet 4: TCP 10.180.110.58:46461 -> 10.180.110.48:2000, an
/// SCCP RegisterMessage (0x0001) of the NONSECURE_CONF device, 136 bytes.
pub const SCCP_REGISTER: CorpusFrame = CorpusFrame {
    capture: "sccp_hw_conf_register.pcapng",
    packet: 4,
    what: "SCCP RegisterMessage, tcp 46461 -> 2000",
    hex: "005056eada92b838618875c40800456000b038c60000ff06904f0ab46e3a0ab46e30b57d07d060537f020a3dc93a5010\
          1020540e00008000000000000000010000004e4f4e5345435552455f434f4e4600000000000001000000ac126e3a3400\
          000008000000000000001202010080007f3a555981c000000000000000000000000002000000006616f9000000000000\
          00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_has_a_consistent_content_length() {
        for port in [0, 49172] {
            let inv = String::from_utf8(sip_invite(1, "192.0.2.101", port)).unwrap();
            let (head, body) = inv.split_once("\r\n\r\n").unwrap();
            let cl: usize = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap().parse().unwrap();
            assert_eq!(cl, body.len());
            assert_eq!(port == 0, body.is_empty());
            assert!(inv.starts_with("INVITE sip:bob@biloxi.com SIP/2.0\r\n"));
        }
    }

    #[test]
    fn corpus_frames_have_their_ip_lengths() {
        for f in [IAX2_NEW, H323_SETUP, MGCP_RQNT, SCCP_REGISTER] {
            let b = f.bytes();
            let ip_len = u16::from_be_bytes([b[16], b[17]]) as usize;
            assert_eq!(b.len(), 14 + ip_len, "{}", f.name());
        }
    }
}
