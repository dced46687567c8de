//! SIP (RFC 3261) over UDP or TCP, on any port. Mirrors nDPI `src/lib/protocols/sip.c`.
//!
//! What one packet must show, at payload offset 0 (or 4, behind a TURN ChannelData header):
//! * a request line: a method, one space, then a `sip:`, `sips:` or `tel:` URI scheme, letters
//!   in any case. Methods: INVITE, REGISTER, OPTIONS, BYE, ACK, CANCEL, UPDATE, PRACK, INFO,
//!   REFER, NOTIFY, SUBSCRIBE, PUBLISH, MESSAGE (`"INVITE sip:"` is tested as the words
//!   `invi`, `te ·`, `sip:` with `| 0x20` on the letter bytes only);
//! * or a status line: `SIP/2.0 ` (letters in any case), three digits whose first is 1-6
//!   (RFC 3261 §7.2), then a space (or CR/LF for a reason phrase left out).
//!
//! The payload must be at least 14 bytes (nDPI's bound; `SIP/2.0 200 OK` is 14).
//! TURN ChannelData (RFC 8656 §12.4): channel number 0x4000-0x7FFF in bytes 0-1 and a length in
//! bytes 2-3 equal to `payload_len - 4` (UDP), or to it minus the 0-3 bytes of padding that TCP
//! framing adds; the SIP message then starts at offset 4 ([`Sip::offset`] = 4).
//!
//! Packets needed: 1. XDP class: S (the default ports 5060/5061 are only nDPI's give-up guess, P).
//! Verifier: 7k instructions processed for `detect` and `ping_on_sip_port` (kernel 6.18).
//!
//! Where we differ from nDPI, and why:
//! * UPDATE (RFC 3311) is accepted: it is a normal in-dialog request that carries SDP, and a flow
//!   that starts with it (a flow table entry expired mid-call) is still SIP. nDPI omits it.
//! * Any case (`Invite`, `iNVITE`) is accepted, as nDPI's newer `strncasecmp` code does; the
//!   nDPI commit of the facts file accepts only all-upper or all-lower case.
//! * `sips:` is accepted for every method and `tel:` (RFC 3966) too, not only for ACK, CANCEL
//!   and OPTIONS: IMS and SIP trunks send `INVITE tel:+1...`. `urn:` Request-URIs (emergency
//!   calls, `INVITE urn:service:sos`) are not accepted, as in nDPI.
//! * The status line must have three digits; nDPI accepts anything after `SIP/2.0 `.
//! * nDPI also accepts a 5-byte `hello` payload as SIP. That alone is weak (any port, any
//!   app could send it), so [`detect`] does not; [`is_ping`] recognises it and
//!   [`ping_on_sip_port`] accepts it only when either port is 5060 or 5061, which is what
//!   `sip_hello.pcapng` needs (its flow opens with 8 `hello` pings on 5060 before the REGISTER).
//!
//! HTTP on port 5060 (`GET / HTTP/1.1`, `HTTP/1.1 200 OK`) is not SIP: neither starts with a
//! SIP method or `SIP/2.0`.

use crate::Bytes;

use super::tag4;

/// Shortest SIP message nDPI looks at (`SIP/2.0 200 OK`).
pub const MIN_LEN: usize = 14;

/// The SIP well-known ports (UDP/TCP 5060, TLS 5061), used only to accept the `hello` ping.
pub const SIP_PORTS: [u16; 2] = [5060, 5061];

/// A SIP request method.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Invite = 1,
    Register = 2,
    Options = 3,
    Bye = 4,
    Ack = 5,
    Cancel = 6,
    Update = 7,
    Prack = 8,
    Info = 9,
    Refer = 10,
    Notify = 11,
    Subscribe = 12,
    Publish = 13,
    Message = 14,
}

impl Method {
    /// The method as written on the wire (upper case).
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Invite => "INVITE",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Bye => "BYE",
            Method::Ack => "ACK",
            Method::Cancel => "CANCEL",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Publish => "PUBLISH",
            Method::Message => "MESSAGE",
        }
    }
}

/// What the first line of the message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SipKind {
    Request(Method),
    /// The status code, 100-699.
    Response(u16),
}

/// A recognised SIP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sip {
    pub kind: SipKind,
    /// Where the SIP message starts in the payload: 0, or 4 behind a TURN ChannelData header.
    pub offset: u8,
}

impl Sip {
    /// Whether this message may carry an SDP offer or answer (RFC 3261 §13, RFC 3262, RFC 3311):
    /// INVITE, ACK, PRACK, UPDATE, and 1xx (except 100) and 2xx responses. The engine runs the
    /// SDP parser (`sdp::parse`) only on these.
    #[inline(always)]
    pub fn may_carry_sdp(&self) -> bool {
        match self.kind {
            SipKind::Request(m) => matches!(m, Method::Invite | Method::Ack | Method::Prack | Method::Update),
            SipKind::Response(code) => (101..300).contains(&code),
        }
    }
}

/// The first word of a message that [`Sip::may_carry_sdp`] may accept: `INVI`, `ACK `, `PRAC`,
/// `UPDA` or `SIP/`, in any case as [`detect`] matches them, at offset 0 or, behind a TURN
/// ChannelData header (as [`detect`] recognises one: channel 0x4000-0x7FFF, the length of the
/// rest, padded or not), at offset 4. One load and five compares (two loads and ten behind a
/// ChannelData header), for paths that cannot afford the whole detector (the XDP fast path on
/// decided SIP flows); a superset (every response, any word that merely starts like these
/// methods), so the detector decides.
#[inline(always)]
pub fn may_start_sdp_message<B: Bytes + ?Sized>(pl: &B) -> bool {
    let Some(w) = pl.be32(0) else { return false };
    // A ChannelData header, as `channel_data_len` sees one, from the word already loaded. The
    // first letter of most SIP words is a channel number too, but their next two bytes are
    // text, not the length of the rest: no second load for them.
    sdp_word(w) || (is_channel((w >> 16) as u16) && frames_rest((w & 0xFFFF) as usize, pl) && sdp_word_in_channel(pl))
}

/// `INVI`, `ACK `, `PRAC`, `UPDA` or `SIP/` in any case (see [`may_start_sdp_message`]).
#[inline(always)]
fn sdp_word(w: u32) -> bool {
    const WORDS: [Ci4; 5] = [Ci4::new(b"invi"), Ci4::new(b"ack "), Ci4::new(b"prac"), Ci4::new(b"upda"), Ci4::new(b"sip/")];
    WORDS[0].eq(w) || WORDS[1].eq(w) || WORDS[2].eq(w) || WORDS[3].eq(w) || WORDS[4].eq(w)
}

/// An [`sdp_word`] behind a ChannelData header. A BPF function of its own: inlined, the check
/// made LLVM move the fast path's flow-update closure out of line instead.
#[inline(never)]
fn sdp_word_in_channel<B: Bytes + ?Sized>(pl: &B) -> bool {
    pl.be32(4).is_some_and(sdp_word)
}

/// A 1-4 byte pattern compared with one 32-bit word, letters in any case:
/// `((w | fold) & keep) == want`, where `fold` has 0x20 on letter bytes only (so a space never
/// matches a NUL) and `keep` masks off the bytes past the pattern.
#[derive(Clone, Copy)]
pub(crate) struct Ci4 {
    want: u32,
    fold: u32,
    keep: u32,
}

impl Ci4 {
    /// `s` holds 1 to 4 bytes, matched against the leading bytes of the word.
    pub(crate) const fn new(s: &[u8]) -> Ci4 {
        assert!(!s.is_empty() && s.len() <= 4);
        let (mut want, mut fold, mut keep) = (0u32, 0u32, 0u32);
        let mut i = 0;
        while i < 4 {
            let shift = 24 - 8 * i;
            if i < s.len() {
                let c = s[i];
                keep |= 0xFF << shift;
                if c.is_ascii_alphabetic() {
                    want |= (c.to_ascii_lowercase() as u32) << shift;
                    fold |= 0x20 << shift;
                } else {
                    want |= (c as u32) << shift;
                }
            }
            i += 1;
        }
        Ci4 { want, fold, keep }
    }

    #[inline(always)]
    pub(crate) fn eq(self, w: u32) -> bool {
        (w | self.fold) & self.keep == self.want
    }
}

// Request-line words. A method's first 4 bytes are matched on `w0 | 0x20202020` (exact for
// letters, and 3-letter methods check their space separately); the rest with `Ci4`.
const INVI: u32 = tag4(b"invi");
const INFO: u32 = tag4(b"info");
const REGI: u32 = tag4(b"regi");
const REFE: u32 = tag4(b"refe");
const OPTI: u32 = tag4(b"opti");
const BYE_: u32 = tag4(b"bye ");
const ACK_: u32 = tag4(b"ack ");
const CANC: u32 = tag4(b"canc");
const UPDA: u32 = tag4(b"upda");
const PRAC: u32 = tag4(b"prac");
const NOTI: u32 = tag4(b"noti");
const SUBS: u32 = tag4(b"subs");
const PUBL: u32 = tag4(b"publ");
const MESS: u32 = tag4(b"mess");

const TE_: Ci4 = Ci4::new(b"te ");
const SP: Ci4 = Ci4::new(b" ");
const STER: Ci4 = Ci4::new(b"ster");
const R_: Ci4 = Ci4::new(b"r ");
const ONS_: Ci4 = Ci4::new(b"ons ");
const EL_: Ci4 = Ci4::new(b"el ");
const K_: Ci4 = Ci4::new(b"k ");
const FY_: Ci4 = Ci4::new(b"fy ");
const CRIB: Ci4 = Ci4::new(b"crib");
const E_: Ci4 = Ci4::new(b"e ");
const ISH_: Ci4 = Ci4::new(b"ish ");
const AGE_: Ci4 = Ci4::new(b"age ");

const SIP_COLON: Ci4 = Ci4::new(b"sip:");
const SIPS: Ci4 = Ci4::new(b"sips");
const TEL_COLON: Ci4 = Ci4::new(b"tel:");
const SIP_SLASH: Ci4 = Ci4::new(b"SIP/");
const VERSION: u32 = tag4(b"2.0 ");

/// Recognises a SIP request or response at the start of the payload, or behind a TURN
/// ChannelData header. `None` for anything else, including every truncation of a valid message
/// shorter than [`MIN_LEN`].
#[inline(always)]
pub fn detect<B: Bytes + ?Sized>(pl: &B) -> Option<Sip> {
    if let Some(kind) = message(pl, 0, pl.len()) {
        return Some(Sip { kind, offset: 0 });
    }
    let inner = channel_data_len(pl)?;
    let kind = message(pl, 4, inner)?;
    Some(Sip { kind, offset: 4 })
}

/// nDPI's `hello` keep-alive: a payload of exactly `hello` (or `hello` behind a TURN
/// ChannelData header). Weak on its own; see [`ping_on_sip_port`].
#[inline(always)]
pub fn is_ping<B: Bytes + ?Sized>(pl: &B) -> bool {
    let base = match pl.len() {
        5 => 0,
        9 if channel_data_len(pl) == Some(5) => 4,
        _ => return false,
    };
    pl.be32(base) == Some(tag4(b"hell")) && pl.u8_at(base + 4) == Some(b'o')
}

/// The `hello` ping, accepted as SIP only when either port is a SIP port ([`SIP_PORTS`]).
#[inline(always)]
pub fn ping_on_sip_port<B: Bytes + ?Sized>(pl: &B, sport: u16, dport: u16) -> bool {
    let sip_port = |p: u16| p == SIP_PORTS[0] || p == SIP_PORTS[1];
    (sip_port(sport) || sip_port(dport)) && is_ping(pl)
}

/// The length of the message inside a TURN ChannelData frame, if the payload is one.
#[inline(always)]
fn channel_data_len<B: Bytes + ?Sized>(pl: &B) -> Option<usize> {
    let channel = pl.be16(0)?;
    let len = pl.be16(2)? as usize;
    (is_channel(channel) && frames_rest(len, pl)).then_some(len)
}

/// A TURN channel number (0x4000-0x7FFF: the top bits 01).
#[inline(always)]
fn is_channel(c: u16) -> bool {
    (0x4000..=0x7FFF).contains(&c)
}

/// Whether a ChannelData length field `len` covers the rest of `pl` after its 4-byte header,
/// exactly or padded to 4 bytes (over TCP).
#[inline(always)]
fn frames_rest<B: Bytes + ?Sized>(len: usize, pl: &B) -> bool {
    let body = pl.len().saturating_sub(4);
    body == len || body == (len + 3) & !3
}

/// A request or status line at `base`, in a message of `len` bytes starting there.
#[inline(always)]
fn message<B: Bytes + ?Sized>(pl: &B, base: usize, len: usize) -> Option<SipKind> {
    if len < MIN_LEN {
        return None;
    }
    // len >= 14, so bytes base..base+12 are there.
    let w0 = pl.be32(base)?;
    let w1 = pl.be32(base + 4)?;
    if SIP_SLASH.eq(w0) {
        return status(w1, pl.be32(base + 8)?).map(SipKind::Response);
    }
    let w2 = pl.be32(base + 8)?;
    let (method, uri) = match w0 | 0x2020_2020 {
        INVI if TE_.eq(w1) => (Method::Invite, 7),
        INFO if SP.eq(w1) => (Method::Info, 5),
        REGI if STER.eq(w1) && SP.eq(w2) => (Method::Register, 9),
        REFE if R_.eq(w1) => (Method::Refer, 6),
        OPTI if ONS_.eq(w1) => (Method::Options, 8),
        BYE_ if w0 & 0xFF == 0x20 => (Method::Bye, 4),
        ACK_ if w0 & 0xFF == 0x20 => (Method::Ack, 4),
        CANC if EL_.eq(w1) => (Method::Cancel, 7),
        UPDA if TE_.eq(w1) => (Method::Update, 7),
        PRAC if K_.eq(w1) => (Method::Prack, 6),
        NOTI if FY_.eq(w1) => (Method::Notify, 7),
        SUBS if CRIB.eq(w1) && E_.eq(w2) => (Method::Subscribe, 10),
        PUBL if ISH_.eq(w1) => (Method::Publish, 8),
        MESS if AGE_.eq(w1) => (Method::Message, 8),
        _ => return None,
    };
    // uri <= 10 and len >= 14: the scheme word is inside the message.
    let scheme = pl.be32(base + uri)?;
    let ok = SIP_COLON.eq(scheme)
        || TEL_COLON.eq(scheme)
        || (SIPS.eq(scheme) && uri + 4 < len && pl.u8_at(base + uri + 4) == Some(b':'));
    ok.then_some(SipKind::Request(method))
}

/// The status code of `SIP/` + `w1` + `w2`: `2.0 ` then `DDD` and a space (or CR/LF).
#[inline(always)]
fn status(w1: u32, w2: u32) -> Option<u16> {
    if w1 != VERSION {
        return None;
    }
    let [a, b, c, end] = w2.to_be_bytes();
    let (a, b, c) = (a.wrapping_sub(b'0'), b.wrapping_sub(b'0'), c.wrapping_sub(b'0'));
    if !(1..=6).contains(&a) || b > 9 || c > 9 || !matches!(end, b' ' | b'\r' | b'\n') {
        return None;
    }
    Some(a as u16 * 100 + b as u16 * 10 + c as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(m: Method) -> Option<Sip> {
        Some(Sip { kind: SipKind::Request(m), offset: 0 })
    }

    fn resp(code: u16) -> Option<Sip> {
        Some(Sip { kind: SipKind::Response(code), offset: 0 })
    }

    fn d(p: &[u8]) -> Option<Sip> {
        detect(p)
    }

    /// A TURN ChannelData frame around `inner`, padded to 4 bytes when `pad`.
    fn channel(ch: u16, inner: &[u8], pad: bool) -> Vec<u8> {
        let mut v = ch.to_be_bytes().to_vec();
        v.extend_from_slice(&(inner.len() as u16).to_be_bytes());
        v.extend_from_slice(inner);
        while pad && !v.len().is_multiple_of(4) {
            v.push(0);
        }
        v
    }

    // RFC 3261 §24.2 (the Alice-to-Bob call flow), message F1, first lines.
    const RFC3261_F1: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n\
Max-Forwards: 70\r\nFrom: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\nCall-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 1 INVITE\r\nContact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n\
Content-Type: application/sdp\r\nContent-Length: 151\r\n\r\n";

    // sip.pcap, frame 1 (192.168.1.2:5060 -> 212.242.33.35:5060), first 120 payload bytes.
    const PCAP_REGISTER: &[u8] = b"REGISTER sip:sip.cybercity.dk SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.1.2;branch=z9hG4bKnp112903503-43a64480192.168.1.2;rport\r\n";
    // sip.pcap, frame 2 (212.242.33.35:5060 -> 192.168.1.2:5060), first line.
    const PCAP_401: &[u8] = b"SIP/2.0 401 Unauthorized\r\nCall-ID: 578222729-4665d775@578222732-4665d772\r\n";
    // gre.pcapng, frame 1: SIP inside PPTP GRE (192.168.10.210:5060 -> 192.168.103.40:5060).
    const PCAP_GRE_100: &[u8] = b"SIP/2.0 100 Trying\r\nVia: SIP/2.0/UDP 192.168.10.210:5060;";
    // sip_hello.pcapng, frame 10 (10.239.156.235:5060 -> 172.29.38.91:5060), first line.
    const PCAP_HELLO_401: &[u8] = b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 10.231.142.84:5060;";

    #[test]
    fn every_method() {
        let cases: &[(&[u8], Method)] = &[
            (b"INVITE sip:bob@biloxi.com SIP/2.0\r\n", Method::Invite),
            (b"REGISTER sip:registrar.biloxi.com SIP/2.0\r\n", Method::Register),
            (b"OPTIONS sip:carol@chicago.com SIP/2.0\r\n", Method::Options),
            (b"BYE sip:alice@pc33.atlanta.com SIP/2.0\r\n", Method::Bye),
            (b"ACK sip:bob@192.0.2.4 SIP/2.0\r\n", Method::Ack),
            (b"CANCEL sip:bob@biloxi.com SIP/2.0\r\n", Method::Cancel),
            (b"UPDATE sip:alice@pc33.atlanta.com SIP/2.0\r\n", Method::Update),
            (b"PRACK sip:bob@biloxi.com SIP/2.0\r\n", Method::Prack),
            (b"INFO sip:alice@pc33.example.com SIP/2.0\r\n", Method::Info),
            (b"REFER sip:b@atlanta.example.com SIP/2.0\r\n", Method::Refer),
            (b"NOTIFY sip:a@atlanta.example.com SIP/2.0\r\n", Method::Notify),
            (b"SUBSCRIBE sip:bob@biloxi.com SIP/2.0\r\n", Method::Subscribe),
            (b"PUBLISH sip:presentity@example.com SIP/2.0\r\n", Method::Publish),
            (b"MESSAGE sip:user2@domain.com SIP/2.0\r\n", Method::Message),
        ];
        for &(p, m) in cases {
            assert_eq!(d(p), req(m), "{}", String::from_utf8_lossy(p));
            assert_eq!(m.as_str().as_bytes(), &p[..m.as_str().len()]);
        }
        assert_eq!(d(RFC3261_F1), req(Method::Invite));
        assert_eq!(d(PCAP_REGISTER), req(Method::Register));
    }

    #[test]
    fn schemes_and_case() {
        assert_eq!(d(b"INVITE sips:bob@biloxi.com SIP/2.0\r\n"), req(Method::Invite));
        assert_eq!(d(b"INVITE tel:+12125551212 SIP/2.0\r\n"), req(Method::Invite));
        assert_eq!(d(b"OPTIONS TEL:+358-555-1234567 SIP/2.0\r\n"), req(Method::Options));
        assert_eq!(d(b"invite sip:bob@biloxi.com SIP/2.0\r\n"), req(Method::Invite));
        assert_eq!(d(b"Invite SIP:bob@biloxi.com SIP/2.0\r\n"), req(Method::Invite));
        assert_eq!(d(b"subscribe SiPs:bob@biloxi.com SIP/2.0\r\n"), req(Method::Subscribe));
        assert_eq!(d(b"bye sip:alice@pc33.atlanta.com SIP/2.0\r\n"), req(Method::Bye));
        assert_eq!(d(b"sip/2.0 180 Ringing\r\n"), resp(180));
    }

    #[test]
    fn responses() {
        assert_eq!(d(b"SIP/2.0 200 OK"), resp(200), "14 bytes, the shortest");
        assert_eq!(d(b"SIP/2.0 100 Trying\r\n"), resp(100));
        assert_eq!(d(b"SIP/2.0 183 Session Progress\r\n"), resp(183));
        assert_eq!(d(b"SIP/2.0 603 Decline\r\n"), resp(603));
        assert_eq!(d(b"SIP/2.0 486\r\nVia: x\r\n"), resp(486), "empty reason phrase");
        assert_eq!(d(PCAP_401), resp(401));
        assert_eq!(d(PCAP_GRE_100), resp(100));
        assert_eq!(d(PCAP_HELLO_401), resp(401));
    }

    #[test]
    fn may_carry_sdp() {
        let r = |p: &[u8]| d(p).unwrap().may_carry_sdp();
        assert!(r(b"INVITE sip:bob@biloxi.com SIP/2.0\r\n"));
        assert!(r(b"ACK sip:bob@192.0.2.4 SIP/2.0\r\n"));
        assert!(r(b"UPDATE sip:alice@pc33.atlanta.com SIP/2.0\r\n"));
        assert!(r(b"PRACK sip:bob@biloxi.com SIP/2.0\r\n"));
        assert!(r(b"SIP/2.0 183 Session Progress\r\n"));
        assert!(r(b"SIP/2.0 200 OK\r\n"));
        assert!(!r(b"SIP/2.0 100 Trying\r\n"));
        assert!(!r(b"SIP/2.0 401 Unauthorized\r\n"));
        assert!(!r(b"REGISTER sip:registrar.biloxi.com SIP/2.0\r\n"));
        assert!(!r(b"BYE sip:alice@pc33.atlanta.com SIP/2.0\r\n"));
    }

    #[test]
    fn the_one_word_check_covers_every_message_that_may_carry_sdp() {
        let msgs: [&[u8]; 12] = [
            b"INVITE sip:bob@biloxi.com SIP/2.0\r\n",
            b"invite sip:bob@biloxi.com SIP/2.0\r\n",
            b"ACK sip:bob@192.0.2.4 SIP/2.0\r\n",
            b"UPDATE sip:alice@pc33.atlanta.com SIP/2.0\r\n",
            b"PRACK sip:bob@biloxi.com SIP/2.0\r\n",
            b"SIP/2.0 183 Session Progress\r\n",
            b"sip/2.0 200 OK\r\n",
            b"SIP/2.0 100 Trying\r\n",
            b"REGISTER sip:registrar.biloxi.com SIP/2.0\r\n",
            b"BYE sip:alice@pc33.atlanta.com SIP/2.0\r\n",
            b"OPTIONS sip:carol@chicago.com SIP/2.0\r\n",
            b"NOTIFY sip:alice@pc33.atlanta.com SIP/2.0\r\n",
        ];
        // Each also behind a TURN ChannelData header (channel 0x4001, exact length).
        let framed = |m: &[u8]| [&[0x40, 0x01][..], &(m.len() as u16).to_be_bytes(), m].concat();
        for m in msgs {
            let f = framed(m);
            assert_eq!(d(&f).map(|s| s.kind), d(m).map(|s| s.kind));
            if d(m).unwrap().may_carry_sdp() {
                assert!(may_start_sdp_message(m), "{}", String::from_utf8_lossy(m));
                assert!(may_start_sdp_message(&f[..]), "framed {}", String::from_utf8_lossy(m));
            }
        }
        for m in &msgs[8..] {
            assert!(!may_start_sdp_message(*m), "{}", String::from_utf8_lossy(m));
            assert!(!may_start_sdp_message(&framed(m)[..]), "framed {}", String::from_utf8_lossy(m));
        }
        assert!(!may_start_sdp_message(&b"\r\n\r\n"[..]), "keep-alive");
        assert!(!may_start_sdp_message(&b"ACK"[..]), "short");
    }

    #[test]
    fn turn_channel_data() {
        let inner = b"INVITE sip:bob@biloxi.com SIP/2.0\r\n"; // 35 bytes: padded on TCP
        let want = Some(Sip { kind: SipKind::Request(Method::Invite), offset: 4 });
        assert_eq!(d(&channel(0x4000, inner, false)), want);
        assert_eq!(d(&channel(0x7FFF, inner, false)), want);
        assert_eq!(d(&channel(0x4001, inner, true)), want, "TCP padding");
        let ok = channel(0x4000, b"SIP/2.0 200 OK\r\n", false);
        assert_eq!(d(&ok), Some(Sip { kind: SipKind::Response(200), offset: 4 }));
        // Channel numbers outside 0x4000-0x7FFF, or a length that does not fit, are not TURN.
        assert_eq!(d(&channel(0x3FFF, inner, false)), None);
        assert_eq!(d(&channel(0x8000, inner, false)), None);
        let mut long = channel(0x4000, inner, false);
        long[3] += 1;
        assert_eq!(d(&long), None);
        let mut extra = channel(0x4000, inner, true);
        extra.extend_from_slice(&[0; 4]);
        assert_eq!(d(&extra), None, "more than 3 bytes of padding");
        // A ChannelData frame whose SIP message is too short.
        assert_eq!(d(&channel(0x4000, b"SIP/2.0 200 O", false)), None);
    }

    #[test]
    fn ping() {
        // sip_hello.pcapng, frames 1-8: 5-byte "hello" both ways between ports 5060.
        assert!(is_ping(&b"hello"[..]));
        assert!(ping_on_sip_port(&b"hello"[..], 5060, 5060));
        assert!(ping_on_sip_port(&b"hello"[..], 40000, 5061));
        assert!(!ping_on_sip_port(&b"hello"[..], 40000, 8080), "not on a SIP port");
        assert!(is_ping(&channel(0x4000, b"hello", false)[..]));
        assert_eq!(d(b"hello"), None, "detect never takes the ping");
        for p in [&b"hell"[..], b"hello!", b"HELLO", b"hellO", b"     ", b"\r\n\r\n"] {
            assert!(!is_ping(p), "{p:?}");
        }
        assert!(!is_ping(&channel(0x4000, b"hello", true)[..]), "padded: 8+4 bytes, not 9");
    }

    #[test]
    fn negatives() {
        let no: &[&[u8]] = &[
            // HTTP on port 5060 (http_on_sip_port.pcap frames 3 and 4, first bytes).
            b"GET /star-123456/index.m3u8?token=89b198b8844824ca15b8b379 HTTP/1.1\r\n",
            b"HTTP/1.1 403 Forbidden\r\nConnection: keep-alive\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: x\r\n",
            b"OPTIONS rtsp://192.0.2.1/a RTSP/1.0\r\n",
            b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n",
            b"SUBSCRIBE /upnp/event HTTP/1.1\r\n",
            // Near misses.
            b"INVITE  sip:bob@biloxi.com SIP/2.0\r\n",
            b"INVITEsip:bob@biloxi.com SIP/2.0\r\n",
            b"INVITE\0sip:bob@biloxi.com SIP/2.0\r\n",
            b"INVITE sipx:bob@biloxi.com SIP/2.0\r\n",
            b"INVITE sips;bob@biloxi.com SIP/2.0\r\n",
            b"INVITE http://biloxi.com SIP/2.0\r\n",
            b"INVITE urn:service:sos SIP/2.0\r\n",
            b"BYE\0sip:alice@pc33.atlanta.com SIP/2.0\r\n",
            b"ACKNOWLEDGE sip:bob@192.0.2.4\r\n",
            b"REGISTERS sip:bob@biloxi.com SIP/2.0\r\n",
            b"REGISTER\tsip:bob@biloxi.com SIP/2.0\r\n",
            b"SUBSCRIBEsip:bob@biloxi.com SIP/2.0\r\n",
            b"FOO sip:bob@biloxi.com SIP/2.0\r\n",
            b"SIP/2.0200 OK\r\n\r\n\r\n",
            b"SIP/1.0 200 OK\r\n\r\n",
            b"SIP/2.0 OK 200\r\n\r\n",
            b"SIP/2.0 20 OK\r\n\r\n\r\n",
            b"SIP/2.0 2000 OK\r\n\r\n",
            b"SIP/2.0 700 Nope\r\n\r\n",
            b"SIP/2.0 099 Nope\r\n\r\n",
            b"SIP\\2.0 200 OK\r\n\r\n",
        ];
        for p in no {
            assert_eq!(d(p), None, "{}", String::from_utf8_lossy(p));
        }
        assert_eq!(d(b"SIP/2.0 200 O"), None);
        assert_eq!(d(b"ACK sip:a@b"), None, "11 bytes");
        assert_eq!(d(b""), None);
    }

    #[test]
    fn other_protocols() {
        // DNS query for example.com (RFC 1035 layout).
        let dns = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
        // QUIC v1 long header (RFC 9000 §17.2), Initial.
        let quic = b"\xc3\x00\x00\x00\x01\x08\x83\x94\xc8\xf0\x3e\x51\x57\x08\x00\x00\x44\x9e\x7b\x9a\xec\x34";
        // NTPv4 client request (RFC 5905): LI 0, VN 4, mode 3.
        let mut ntp = [0u8; 48];
        ntp[0] = 0x23;
        // RTP PCMU (RFC 3550 header) and a STUN binding request (RFC 8489).
        let rtp = b"\x80\x00\x12\x34\x00\x00\x00\xa0\xde\xad\xbe\xef\xff\xff\xff\xff";
        let stun = b"\x00\x01\x00\x00\x21\x12\xa4\x42\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c";
        for p in [&dns[..], quic, &ntp, rtp, stun] {
            assert_eq!(d(p), None, "{p:02x?}");
        }
    }

    #[test]
    fn every_truncation_is_none() {
        // A request is recognised from 14 bytes on (its scheme is complete by then); the one
        // with `sips:` needs byte 14 too.
        let full: &[(&[u8], usize)] = &[
            (RFC3261_F1, MIN_LEN),
            (b"SUBSCRIBE sip:bob@biloxi.com SIP/2.0\r\n", MIN_LEN),
            (b"REGISTER sips:registrar.biloxi.com SIP/2.0\r\n", MIN_LEN),
            (b"SUBSCRIBE sips:bob@biloxi.com SIP/2.0\r\n", 15),
            (PCAP_401, MIN_LEN),
        ];
        for &(p, min) in full {
            for n in 0..p.len() {
                let got = d(&p[..n]);
                assert_eq!(got.is_some(), n >= min, "{n} bytes of {}", String::from_utf8_lossy(p));
            }
            let framed = channel(0x4000, p, false);
            for n in 0..framed.len() {
                // Cut frames no longer have a matching length: no TURN, and no SIP at 0.
                assert_eq!(d(&framed[..n]), None, "{n} bytes of framed {}", String::from_utf8_lossy(p));
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut hits = 0;
        for len in 0..600 {
            let mut v = Vec::with_capacity(len);
            for _ in 0..len {
                x = crate::testing::xorshift(x);
                v.push(x as u8);
            }
            hits += d(&v).is_some() as usize;
            let _ = is_ping(&v[..]);
            // Random bytes behind a valid SIP prefix still need the whole first word right.
            if len > 8 {
                v[..4].copy_from_slice(b"INVI");
                hits += d(&v).is_some() as usize;
            }
        }
        assert_eq!(hits, 0);
    }

    #[test]
    fn works_through_the_payload_window() {
        // The engine hands detectors a `Payload` window, not a slice.
        let mut frame = vec![0xAAu8; 42];
        frame.extend_from_slice(b"ACK sip:bob@192.0.2.4 SIP/2.0\r\n");
        let pl = super::super::Payload::new(&frame[..], 42, frame.len());
        assert_eq!(detect(&pl), req(Method::Ack));
        let short = super::super::Payload::new(&frame[..], 42, 42 + 13);
        assert_eq!(detect(&short), None);
    }
}
