//! STUN (RFC 5389/8489), classic STUN (RFC 3489), TURN (RFC 5766/8656) with ChannelData, the
//! RFC 7983/9443 first-byte demultiplexer, and the call-app fingerprints carried in STUN.
//!
//! Mirrors nDPI `src/lib/protocols/stun.c` (`is_stun`, `stun_search_again`; facts file §3-§8,
//! §11). XDP class: **S** for everything here (one packet, bounded walks). The flow-level uses
//! are the engine's: STUN then DTLS/SRTP on the same 5-tuple (F), the STUN peer cache (X), the
//! Google prefix heuristic (L), excluding broadcast/multicast destinations, Signal's port-10000
//! rule and Telegram's "flow already Telegram" rule (flow state).
//!
//! # [`detect`]: one packet
//! * payload at least 20 bytes;
//! * TCP: an RFC 4571 2-byte length prefix is skipped when the cookie is not at offset 4 and the
//!   prefix fits in the segment; the framed message must then fit inside its frame;
//! * an MS multiplexed TURN header (MS-TURN 2.2.3: `FF 10`, length at 2 with `len + 4` equal to
//!   the unit, 12 bytes in all) is skipped;
//! * `msg_type != 0`, top two bits 0, type sanity `(msg_type & 0x3EEF) <= 0x000B` except the
//!   WhatsApp types 0x0800-0x0802 and 0x0804-0x0805;
//! * `msg_len + 20 == unit length` on UDP; `<=` on TCP, where several messages share a segment
//!   (only the first is read, as in nDPI);
//! * magic cookie 0x2112A442 at 4, mandatory on TCP. Without it (classic RFC 3489) only the
//!   message types of nDPI's list are accepted, and only if the attribute TLV walk (padded to 4)
//!   ends exactly at the message end;
//! * the legacy text form `RSP/x.y STUN_` (at 0 and 7) is STUN, as in nDPI;
//! * TURN: methods 0x003-0x00C (Allocate, Refresh, old Data indication, Send, Data,
//!   CreatePermission, ChannelBind, Connect, ConnectionBind, ConnectionAttempt) set
//!   [`Stun::turn`] and give [`App::Turn`] unless an app fingerprint applies;
//! * one attribute walk, at most [`MAX_ATTRS`] attributes, offsets clamped to [`MAX_ATTR_OFF`],
//!   notes where the fingerprints, the REALM (0x0014), the DATA (0x0013) and the XOR addresses
//!   are; the app is then decided from them:
//!
//!   | signal | app |
//!   |---|---|
//!   | message type 0x0800-0x0802, 0x0804, 0x0805 | WhatsApp |
//!   | attribute 0x0101 or 0x0103 | Zoom |
//!   | attribute 0x4000-0x4004, 0x4007 | WhatsApp |
//!   | attribute 0x8054, 0x24DF, 0x3802, 0x8036, 0x8095, 0x0800, 0x8006, 0x8070, 0x8055 | Teams |
//!   | attribute 0xFF03 | GoogleMeet |
//!   | REALM containing `google.com` / `whispersystems.org`, `signal.org` / `facebook` / `telegram` / `viber` | GoogleMeet / Signal / Messenger / Telegram / Viber |
//!   | SOFTWARE (0x8022) starting `ice4j` (Jitsi Videobridge; no nDPI rule), when nothing else names an app | Jitsi |
//!
//!   Precedence as in nDPI: a WhatsApp message type, then a Zoom attribute anywhere (nDPI returns
//!   on it), then the later of the REALM and the last other fingerprint attribute. The realm is
//!   matched case-insensitively (`| 0x20` per byte) over its first [`MAX_REALM`] bytes, a 4-byte
//!   word compared at each position;
//! * addresses: XOR-PEER-ADDRESS (0x0012), XOR-RELAYED-ADDRESS (0x0016) and XOR-MAPPED-ADDRESS
//!   (0x0020) are decoded (port XOR the cookie's high half, IPv4 XOR the cookie, IPv6 XOR
//!   cookie‖transaction id): the last two of the message, in message order, a peer address
//!   first, each with the attribute it came from ([`Stun::addr_attrs`]);
//! * DATA: where the value of the last DATA attribute is (a Send/Data indication's datagram,
//!   which the engine can demultiplex again; nDPI recurses into it).
//!
//! Packets needed: 1. nDPI says STUN after its extra dissection (usually 7 packets); the
//! message itself is decided on its first packet, which is what this function does.
//!
//! Where this deliberately differs from nDPI 4.11 (`3b1286ab`):
//! * the message length need not be a multiple of 4: nDPI does not check it, and real WhatsApp
//!   (msg_len 106, `whatsapp_voice_and_message.pcap` #26/#88) and Skype/Teams TURN (msg_len
//!   167/194/133, `teams.pcap` #1245/#1250/#1275) messages are not;
//! * message types 0x0804/0x0805 are WhatsApp, as in later nDPI (`stun_wa_call.pcapng` #460/#461
//!   carry them, with WhatsApp attributes 0x4007/0x4002);
//! * TCP: a segment holding several RFC 4571 frames is read (nDPI skips the prefix only when it
//!   covers the whole segment);
//! * the walk stops after [`MAX_ATTRS`] attributes (verifier bound): a later fingerprint is
//!   missed, and a classic message with more attributes is not accepted; nDPI walks them all;
//! * REALM: the last one counts (nDPI: the first; no message carries two), the first name found
//!   in it decides (nDPI: a fixed order of names; no realm names two apps), a realm with
//!   non-printable bytes is not set aside (nDPI discards it), and `stripcdn.com` (nDPI:
//!   AdultContent, not a call) is not matched;
//! * addresses are decoded only when the cookie is present (XOR with a missing cookie is
//!   meaningless); MAPPED-ADDRESS, RESPONSE-ORIGIN and OTHER-ADDRESS (metadata only) are not.
//!
//! # [`channel_data`], [`demux`]
//! ChannelData: first byte 0x40-0x7F (channels 0x4000-0x7FFF, RFC 5766), length at 2; on UDP the
//! payload is exactly `4 + len`, or `4 + len` padded to 4 (RFC 8656 §12.5 allows the padding on
//! UDP); on TCP the padded frame must fit (`<=`, several frames may share a segment).
//! [`demux`] is the RFC 9443 first-byte split, for flows already confirmed by STUN.
//!
//! # Verifier notes
//! Written as plainly, `detect` took the verifier past its 1M-instruction limit: it explores
//! what follows a loop once per distinct state leaving it, and every flag, every "found/not
//! found" constant and every bound learnt differently on two paths makes states distinct. So:
//! * the walk keeps attribute offsets only, never types, apps or flags, and "not found" is an
//!   opaque zero (0 at run time, unknown to the verifier: `opaque_zero`) in the same masked
//!   range as a found offset, so found and not found look alike; what is needed from an
//!   attribute is read again at its offset after the walk;
//! * every read after the first goes through `Rd`, at an offset XORed with that opaque zero
//!   and masked, so that no read teaches the verifier a least payload length another path did
//!   not learn; a failed read ends `detect` (it cannot fail at run time: the message lies in the
//!   payload) instead of going on with what the failure taught;
//! * comparisons with lengths that stay live go through `unlinked` copies, and type checks
//!   that would leave the type a constant per path are bit tricks (`classic_type`,
//!   `whatsapp_type`);
//! * the app is decided right after the walk (the realm scan is the costly part and is explored
//!   once per state reaching it), the rest after.
//!
//! Measured on this machine (kernel 6.18, LLVM 22) with a test XDP program that reads
//! Ethernet/IPv4 and calls `detect` on the UDP or TCP payload through a `Bytes` impl like
//! `voipfilter-ebpf`'s `Packet`: 100k processed instructions for the UDP call, 152k with a TCP
//! call as well (162k for one call with a run-time `tcp`), stack 160-184 bytes. With
//! `black_box` on every read's end pointer in `Packet::load` (not only 1-byte reads): 58k and
//! 113k. [`channel_data`] and `dtls` together: under 1k.
//!
//! Stack: in the real program (`voipfilter_detect`, where `engine::stun_udp`/`stun_tcp` are BPF
//! functions of their own) the frame was ~504 bytes, past the 512 a program has with its caller:
//! `detect` returned an `Option<Stun>` holding two 16-byte addresses, each assembled byte by
//! byte, so LLVM kept the 32 address bytes (and the other fields) as separate values, one 8-byte
//! spill slot each, copied at every join between the address decoding and the return. The kernel
//! therefore calls [`detect_each`], which hands each address to a callback as soon as it is
//! decoded (in place, into one [`Endpoint`], as two 64-bit words) and returns only a [`Head`];
//! [`detect`] gathers the same into a [`Stun`] for the host. Measured (kernel 6.18, LLVM 22):
//! 128-byte frames for `stun_udp` and `stun_tcp`, 144k processed instructions for the whole of
//! `voipfilter_detect` (8k without STUN).

use super::{Endpoint, tag2, tag4};
use crate::{App, Bytes};

/// RFC 5389 magic cookie.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// STUN header: type, length, cookie, 96-bit transaction id.
pub const HDR_LEN: usize = 20;
/// MS multiplexed TURN header type (MS-TURN 2.2.3) and its length.
pub const MS_TURN_TYPE: u16 = 0xFF10;
pub const MS_TURN_HDR_LEN: usize = 12;
/// Attributes read per message (constant trip count for the verifier).
pub const MAX_ATTRS: usize = 16;
/// Largest attribute offset (from the message start) that is read; bounds every offset.
pub const MAX_ATTR_OFF: usize = 1500;
/// Bytes of the REALM value searched for app names.
pub const MAX_REALM: usize = 64;

/// Attribute types used here (IANA "STUN Attributes", plus vendor ones from nDPI).
pub mod attr {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    pub const DATA: u16 = 0x0013;
    pub const REALM: u16 = 0x0014;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// Zoom (classic STUN) attributes.
    pub const ZOOM_A: u16 = 0x0101;
    pub const ZOOM_B: u16 = 0x0103;
    /// Google: seen on Meet/Duo calls.
    pub const GOOGLE: u16 = 0xFF03;
    /// SOFTWARE (RFC 8489 §14.14): Jitsi's videobridge (ice4j) names itself there.
    pub const SOFTWARE: u16 = 0x8022;
}

/// What one STUN/TURN message said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stun {
    /// [`App::Stun`], [`App::Turn`], or the call app a fingerprint names.
    pub app: App,
    /// The last two XOR addresses of the message, decoded, in message order unless the later
    /// is an XOR-PEER-ADDRESS (a peer address comes first); `n_addrs` of them are valid.
    pub addrs: [Endpoint; 2],
    pub n_addrs: u8,
    /// Attribute type each address came from (0x0012 peer, 0x0016 relayed, 0x0020 mapped).
    pub addr_attrs: [u16; 2],
    /// The message type (class and method bits).
    pub msg_type: u16,
    /// A TURN method (the flow is TURN: ChannelData may follow on it).
    pub turn: bool,
    /// Offset in the payload window and length of the last DATA attribute's value (the peer's
    /// datagram inside a Send/Data indication); both 0 when there is none.
    pub data_off: u16,
    pub data_len: u16,
}

/// RFC 9443 §3 demultiplexing by the first payload byte.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Demux {
    /// 4-15, 80-127 (QUIC), 192-255.
    Unknown = 0,
    /// 0-3.
    Stun = 1,
    /// 16-19.
    Zrtp = 2,
    /// 20-63.
    Dtls = 3,
    /// 64-79.
    TurnChannel = 4,
    /// 128-191: RTP, RTCP, SRTP, SRTCP.
    Rtp = 5,
}

/// RFC 9443 first-byte demultiplexing (meaningful on flows already confirmed by STUN).
#[inline(always)]
pub fn demux(first_byte: u8) -> Demux {
    match first_byte {
        0..=3 => Demux::Stun,
        16..=19 => Demux::Zrtp,
        20..=63 => Demux::Dtls,
        64..=79 => Demux::TurnChannel,
        128..=191 => Demux::Rtp,
        _ => Demux::Unknown,
    }
}

/// TURN ChannelData (RFC 8656 §12.4): channel number 0x4000-0x7FFF, length at 2.
#[inline(always)]
pub fn channel_data<B: Bytes + ?Sized>(pl: &B, tcp: bool) -> bool {
    let len = pl.len();
    let Some(b0) = pl.u8_at(0) else {
        return false;
    };
    let Some(clen) = pl.be16(2) else {
        return false;
    };
    let clen = clen as usize;
    if !(0x40..=0x7F).contains(&b0) {
        return false;
    }
    let padded = (clen + 3) & !3;
    if tcp { 4 + padded <= len } else { 4 + clen == len || 4 + padded == len }
}

/// Classic (RFC 3489, no cookie) message types nDPI accepts (its list, from Wireshark):
/// Binding 0x0001/0x0101/0x0111, Shared secret 0x0002/0x0102/0x0112, Allocate
/// 0x0003/0x0103/0x0113, Send 0x0004/0x0104/0x0114, Data indication 0x0115, Set active
/// destination 0x0006/0x0106/0x0116.
///
/// Written as a bitmap lookup, not a comparison per type: comparisons would leave the verifier
/// with the type as a different constant on each path, and it would explore the rest of
/// [`detect`] once per type.
#[inline(always)]
fn classic_type(t: u16) -> bool {
    // Only bits 0x0100, 0x0010 and 0x0007 may be set; they index a 32-bit map.
    const ALLOWED: u32 = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 6) // 0x000x
        | (1 << 17) | (1 << 18) | (1 << 19) | (1 << 20) | (1 << 22) // 0x010x
        | (1 << 25) | (1 << 26) | (1 << 27) | (1 << 28) | (1 << 29) | (1 << 30); // 0x011x
    let t = t as u32;
    let idx = (t & 0x7) | ((t >> 1) & 0x8) | ((t >> 4) & 0x10);
    t & !0x0117 == 0 && (ALLOWED >> idx) & 1 != 0
}

/// Message types WhatsApp uses outside the STUN type space: 0x0800-0x0802, 0x0804, 0x0805
/// (tested on a copy, for the reason given at [`classic_type`]).
#[inline(always)]
fn whatsapp_type(t: u16) -> bool {
    let x = t ^ 0x0800;
    x <= 5 && x != 3
}

/// One STUN/TURN message; `None` if the payload is not one. See the module header.
///
/// [`detect_each`] gathered into one value (host tests, replay). The kernel uses
/// [`detect_each`] directly: a [`Stun`] with its two addresses is too big for a BPF frame.
#[inline(always)]
pub fn detect<B: Bytes + ?Sized>(pl: &B, tcp: bool) -> Option<Stun> {
    let mut addrs = [Endpoint { addr: [0; 16], port: 0, ipv6: false }; 2];
    let mut addr_attrs = [0; 2];
    let mut n_addrs = 0;
    let h = detect_each(pl, tcp, |_, ep, ty| {
        let i = if n_addrs == 0 { 0 } else { 1 };
        addrs[i] = *ep;
        addr_attrs[i] = ty;
        n_addrs = i as u8 + 1;
    })?;
    Some(Stun {
        app: h.app,
        addrs,
        n_addrs,
        addr_attrs,
        msg_type: h.msg_type,
        turn: h.turn,
        data_off: h.data_off,
        data_len: h.data_len,
    })
}

/// A STUN/TURN message without its addresses: [`Stun`] less `addrs`, `n_addrs`, `addr_attrs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub app: App,
    pub msg_type: u16,
    pub turn: bool,
    pub data_off: u16,
    pub data_len: u16,
}

/// One STUN/TURN message, as [`detect`], but each decoded XOR address (at most two, in the
/// order of [`Stun::addrs`]) is handed to `each` with the message's app and the attribute type
/// it came from, as soon as it is decoded, instead of being gathered.
///
/// For the BPF stack: one [`Endpoint`] is decoded at a time, in place, and never copied; the
/// result is a few bytes. (Gathering both addresses into a returned `Option<Stun>` made LLVM
/// keep its 32 address bytes as separate values, one 8-byte stack slot each, copied at every
/// join: a 500-byte frame.) `each` is called only for a message `detect` accepts: the one read
/// that follows a call (the second address) cannot fail, the message lying in the payload.
#[inline(always)]
pub fn detect_each<B: Bytes + ?Sized, F: FnMut(App, &Endpoint, u16)>(pl: &B, tcp: bool, mut each: F) -> Option<Head> {
    let len = pl.len();
    if len < HDR_LEN {
        return None;
    }
    let rd = Rd { pl, z: opaque_zero(pl)? };

    // `m`: where the message starts; `avail`: bytes of its unit (segment, frame, datagram).
    let mut m = 0usize;
    let mut avail = len;
    if tcp && rd.be32(4)? != MAGIC_COOKIE {
        // RFC 4571 framing. An unframed message has its cookie at 4; a framed one at 6.
        let frame = rd.be16(0)? as usize;
        if frame + 2 <= len {
            m = 2;
            avail = frame;
        }
    }
    if rd.be16(m)? == MS_TURN_TYPE
        && unlinked(avail) >= HDR_LEN + MS_TURN_HDR_LEN
        && rd.be16(m + 2)? as usize + 4 == unlinked(avail)
    {
        m += MS_TURN_HDR_LEN;
        avail -= MS_TURN_HDR_LEN;
    }

    let msg_type = rd.be16(m)?;
    let end = HDR_LEN + rd.be16(m + 2)? as usize;
    let cookie = rd.be32(m + 4)? == MAGIC_COOKIE;
    if msg_type == 0 || msg_type & 0xC000 != 0 {
        return legacy(&rd);
    }
    if tcp {
        if !cookie || end > avail {
            return None;
        }
    } else if end != avail {
        return None;
    }
    if msg_type & 0x3EEF > 0x000B && !whatsapp_type(msg_type) {
        return None;
    }
    if !cookie && !(classic_type(msg_type) && walk_ends_at(&rd, m, end)) {
        return None;
    }

    // From here the verifier sees `m` and `end` as the same ranges whichever way the header was
    // read, and the walk's "nothing found" as a value it cannot tell from "found" (see `Walk`):
    // otherwise it explores what follows once per combination.
    let m = (m ^ rd.z) & 0xF;
    let end = (end ^ rd.z) & 0x1_FFFF;
    let w = walk(&rd, m, end, rd.z & OFF_MASK)?;

    // The app's fingerprints first: the realm scan is the costly part, and the verifier explores
    // it once per different state that reaches it (so: before anything else is decided).
    let app = if whatsapp_type(msg_type) {
        Some(App::WhatsApp)
    } else if valid(w.zoom) {
        Some(App::Zoom)
    } else if !(valid(unlinked(w.fp)) && unlinked(w.fp) > unlinked(w.realm))
        && let Some(a) = realm_app(&rd, m, w.realm, end)?
    {
        // The realm, unless a fingerprint attribute follows it (nDPI: the later one wins).
        Some(a)
    } else if let Some(a) = fingerprint_app(&rd, m, w.fp)? {
        Some(a)
    } else {
        // Last, and only when nothing else named an app: Jitsi's SOFTWARE.
        software_app(&rd, m, w.software, end)?
    };
    let method = (msg_type & 0x000F) | ((msg_type & 0x00E0) >> 1) | ((msg_type & 0x3E00) >> 2);
    let turn = (0x003..=0x00C).contains(&method);
    let default = if turn { App::Turn } else { App::Stun };
    let mut out = Head { app: app.unwrap_or(default), msg_type, turn, data_off: 0, data_len: 0 };
    if valid(w.data) {
        let l = rd.be16(m + w.data + 2)?;
        if w.data + 4 + l as usize <= unlinked(end) {
            out.data_off = (m + w.data + 4) as u16;
            out.data_len = l;
        }
    }
    // XOR addresses, with the cookie only (read again: a flag kept from above would split the
    // verifier's paths). `walk` keeps the last two, the latest in `addr[0]`.
    if rd.be32(m + 4) == Some(MAGIC_COOKIE) {
        let (older, newer) = (w.addr[1], w.addr[0]);
        let t_old = attr_type(&rd, m, older)?;
        let t_new = attr_type(&rd, m, newer)?;
        // Message order, a peer address first.
        let swap = t_new == attr::XOR_PEER_ADDRESS && t_old != attr::XOR_PEER_ADDRESS;
        let (first, second, f_ty, s_ty) =
            if swap { (newer, older, t_new, t_old) } else { (older, newer, t_old, t_new) };
        // One endpoint, decoded in place for each address in turn.
        let mut ep = Endpoint { addr: [0; 16], port: 0, ipv6: false };
        if xor_address(&rd, m, first, end, &mut ep)? {
            each(out.app, &ep, f_ty);
        }
        if xor_address(&rd, m, second, end, &mut ep)? {
            each(out.app, &ep, s_ty);
        }
    }
    Some(out)
}

/// The legacy text form `RSP/x.y STUN_...` (nDPI keeps it; no metadata).
#[inline(always)]
fn legacy<B: Bytes + ?Sized>(rd: &Rd<'_, B>) -> Option<Head> {
    if rd.be32(0)? == tag4(b"RSP/") && rd.be32(7)? == tag4(b" STU") && rd.be16(11)? == tag2(b"N_") {
        Some(Head { app: App::Stun, msg_type: 0, turn: false, data_off: 0, data_len: 0 })
    } else {
        None
    }
}

/// Whether the attribute TLV walk (at most [`MAX_ATTRS`] attributes) ends exactly at the message
/// end: nDPI's classic-STUN check. A bool, not the final offset, so that the verifier does not
/// carry a different offset out of every iteration.
#[inline(always)]
fn walk_ends_at<B: Bytes + ?Sized>(rd: &Rd<'_, B>, m: usize, end: usize) -> bool {
    let mut off = HDR_LEN;
    for _ in 0..MAX_ATTRS {
        if off > MAX_ATTR_OFF {
            return false;
        }
        if off + 4 >= unlinked(end) {
            return off == unlinked(end);
        }
        match rd.be16(m + off + 2) {
            Some(l) => off += 4 + ((l as usize + 3) & !3),
            None => return false,
        }
    }
    off == unlinked(end)
}

/// 0 at run time, but a value the verifier cannot know: two reads of the same two packet bytes
/// (through `black_box`, so that LLVM reads twice), XORed.
#[inline(always)]
fn opaque_zero<B: Bytes + ?Sized>(pl: &B) -> Option<usize> {
    let a = pl.be16(core::hint::black_box(0))?;
    let b = pl.be16(core::hint::black_box(0))?;
    // Spread over 32 bits, so that masking the XOR of it with any offset or length leaves every
    // masked bit unknown to the verifier.
    Some(((a ^ b) as usize).wrapping_mul(0x1_0001))
}

/// Covers every attribute offset up to [`MAX_ATTR_OFF`] (they are multiples of 4).
const OFF_MASK: usize = 0x7FC;
const _: () = assert!(MAX_ATTR_OFF <= OFF_MASK && MAX_ATTR_OFF.is_multiple_of(4));

/// An attribute offset from [`Walk`] that names an attribute (its "none" is 0).
#[inline(always)]
fn valid(off: usize) -> bool {
    (HDR_LEN..=MAX_ATTR_OFF).contains(&off)
}

/// What one walk over the attributes found: offsets from the message start.
///
/// Only offsets are kept, never types, apps or flags, and "none" is an opaque 0 (see
/// `opaque_zero`) masked like the offsets: to the verifier every field is then the same range
/// whether found or not, so the loop's paths merge instead of being explored once per
/// combination of findings. What is needed from an attribute is read again at its offset.
#[derive(Clone, Copy)]
struct Walk {
    /// The last Teams, WhatsApp or Google fingerprint attribute.
    fp: usize,
    /// The last Zoom attribute (Zoom wins wherever it is, as in nDPI).
    zoom: usize,
    /// The last REALM.
    realm: usize,
    /// The last DATA.
    data: usize,
    /// The last SOFTWARE.
    software: usize,
    /// The last two XOR-PEER/RELAYED/MAPPED-ADDRESS attributes, the latest first.
    addr: [usize; 2],
}

/// Walks at most [`MAX_ATTRS`] attributes (padded to 4), offsets clamped to [`MAX_ATTR_OFF`].
///
/// `None` if a read fails. That cannot happen at run time (the message lies inside the payload,
/// checked by `detect`), but the verifier cannot see it: ending there, rather than going on
/// with what a failed read taught it about the payload length, keeps its paths few. The other
/// helpers below do the same.
#[inline(always)]
fn walk<B: Bytes + ?Sized>(rd: &Rd<'_, B>, m: usize, end: usize, none: usize) -> Option<Walk> {
    // Each field gets its own copy: fields holding one value would be linked for the verifier,
    // and a check on one would narrow them all.
    let mut w = Walk {
        fp: unlinked(none),
        zoom: unlinked(none),
        realm: unlinked(none),
        data: unlinked(none),
        software: unlinked(none),
        addr: [unlinked(none), unlinked(none)],
    };
    let mut off = HDR_LEN;
    for _ in 0..MAX_ATTRS {
        if off > MAX_ATTR_OFF || off + 4 >= unlinked(end) {
            break;
        }
        // Reads go through `here`, whose range is the same in every iteration, so that the
        // bounds checks teach the verifier the same thing whichever iteration it is in.
        let here = core::hint::black_box(off) & OFF_MASK;
        // Type and length as two reads: comparisons on the type then leave the length's range
        // alone, so every kind of attribute reaches the next one in the same verifier state.
        let ty = rd.be16(m + here)?;
        let len = rd.be16(m + here + 2)?;
        match ty {
            attr::ZOOM_A | attr::ZOOM_B => w.zoom = here,
            0x4000..=0x4004
            | 0x4007
            | 0x8054
            | 0x24DF
            | 0x3802
            | 0x8036
            | 0x8095
            | 0x0800
            | 0x8006
            | 0x8070
            | 0x8055
            | attr::GOOGLE => w.fp = here,
            attr::REALM => w.realm = here,
            attr::DATA => w.data = here,
            attr::SOFTWARE => w.software = here,
            attr::XOR_PEER_ADDRESS | attr::XOR_RELAYED_ADDRESS | attr::XOR_MAPPED_ADDRESS => {
                w.addr[1] = w.addr[0];
                w.addr[0] = here;
            }
            _ => {}
        }
        off += 4 + ((len as usize + 3) & !3);
    }
    Some(w)
}

/// Type of the attribute at `off` (0 for none); `None` if a read fails.
#[inline(always)]
fn attr_type<B: Bytes + ?Sized>(rd: &Rd<'_, B>, m: usize, off: usize) -> Option<u16> {
    if !valid(off) {
        return Some(0);
    }
    rd.be16(m + off)
}

/// The app the fingerprint attribute at `off` names (0: none); `None` if a read fails.
#[inline(always)]
fn fingerprint_app<B: Bytes + ?Sized>(rd: &Rd<'_, B>, m: usize, off: usize) -> Option<Option<App>> {
    Some(match attr_type(rd, m, off)? {
        0x4000..=0x4004 | 0x4007 => Some(App::WhatsApp),
        0x8054 | 0x24DF | 0x3802 | 0x8036 | 0x8095 | 0x0800 | 0x8006 | 0x8070 | 0x8055 => Some(App::Teams),
        attr::GOOGLE => Some(App::GoogleMeet),
        _ => None,
    })
}

/// Jitsi Meet: a SOFTWARE attribute (at `off`, 0: none) whose value starts `ice4j` (the ICE
/// library of Jitsi Videobridge, whose STUN stack writes `ice4j.org` there by default).
#[inline(always)]
fn software_app<B: Bytes + ?Sized>(rd: &Rd<'_, B>, m: usize, off: usize, end: usize) -> Option<Option<App>> {
    if !valid(off) {
        return Some(None);
    }
    let alen = rd.be16(m + off + 2)? as usize;
    if unlinked(alen) < 5 || off + 4 + 5 > unlinked(end) {
        return Some(None);
    }
    let v = m + off + 4;
    // "ice4" then "4j" (a two-byte read for the fifth byte: see docs/verifier.md).
    let jitsi = rd.be32(v)? == tag4(b"ice4") && rd.be16(v + 3)? == tag2(b"4j");
    Some(if jitsi { Some(App::Jitsi) } else { None })
}

/// Decodes the XOR address attribute at `off` (0: none) into `ep`: `Some(false)` when there is
/// none or it is malformed (`ep` is then left partly written), `None` if a read fails.
///
/// Written field by field into the caller's endpoint, the address as whole words: no second
/// copy of it exists, and no byte of it is a value of its own.
#[inline(always)]
fn xor_address<B: Bytes + ?Sized>(
    rd: &Rd<'_, B>,
    m: usize,
    off: usize,
    end: usize,
    ep: &mut Endpoint,
) -> Option<bool> {
    if !valid(off) {
        return Some(false);
    }
    let alen = rd.be16(m + off + 2)? as usize;
    let v = m + off + 4;
    // Value: reserved, family, port, address (4 or 16 bytes).
    let fits = |n: usize| alen == n && off + 4 + n <= unlinked(end);
    if !fits(8) && !fits(20) {
        return Some(false);
    }
    let head = rd.be32(v)?;
    let family = (head >> 16) as u8;
    if family == 1 && alen == 8 {
        let a = rd.be32(v + 4)? ^ MAGIC_COOKIE;
        put_words(&mut ep.addr, (a as u64) << 32, 0);
        ep.ipv6 = false;
    } else if family == 2 && alen == 20 {
        // Key: cookie, then the 96-bit transaction id (message bytes 4..20).
        let hi = rd.be64(v + 4)? ^ rd.be64(m + 4)?;
        let lo = rd.be64(v + 12)? ^ rd.be64(m + 12)?;
        put_words(&mut ep.addr, hi, lo);
        ep.ipv6 = true;
    } else {
        return Some(false);
    }
    ep.port = (head as u16) ^ ((MAGIC_COOKIE >> 16) as u16);
    Some(true)
}

/// Stores two big-endian 64-bit words as the 16 bytes of an address.
#[inline(always)]
fn put_words(addr: &mut [u8; 16], hi: u64, lo: u64) {
    let (h, l) = addr.split_at_mut(8);
    h.copy_from_slice(&hi.to_be_bytes());
    l.copy_from_slice(&lo.to_be_bytes());
}

/// ASCII lower-casing of 4 (or 2) packed bytes; harmless on digits, `.` and `-`.
const LOWER4: u32 = 0x2020_2020;
const LOWER2: u16 = 0x2020;

/// The call app the REALM at `off` names (its first [`MAX_REALM`] bytes are searched); `None`
/// if a read fails.
///
/// Every bound is checked on an [`unlinked`] copy, and nothing is kept from one position to the
/// next: the loop then reaches each position in one verifier state.
#[inline(always)]
fn realm_app<B: Bytes + ?Sized>(rd: &Rd<'_, B>, m: usize, off: usize, end: usize) -> Option<Option<App>> {
    if !valid(off) {
        return Some(None);
    }
    let alen = rd.be16(m + off + 2)? as usize;
    let start = m + off + 4;
    // Whether `k` bytes from position `i` lie in the window, the value and the message.
    let fits = |i: usize, k: usize| {
        i + k <= MAX_REALM && i + k <= unlinked(alen) && off + 4 + i + k <= unlinked(end)
    };
    // The first name found decides (nDPI: a fixed order of names; no realm names two apps).
    // "viber" (5 bytes) is the shortest name.
    for i in 0..MAX_REALM - 4 {
        if !fits(i, 5) {
            break;
        }
        let p = start + i;
        let w = rd.be32(p)? | LOWER4;
        if w == tag4(b"goog") {
            if fits(i, 10) && word(rd, p + 4)? == tag4(b"le.c") && half(rd, p + 8)? == tag2(b"om") {
                return Some(Some(App::GoogleMeet));
            }
        } else if w == tag4(b"whis") {
            if fits(i, 18)
                && word(rd, p + 4)? == tag4(b"pers")
                && word(rd, p + 8)? == tag4(b"yste")
                && word(rd, p + 12)? == tag4(b"ms.o")
                && half(rd, p + 16)? == tag2(b"rg")
            {
                return Some(Some(App::Signal));
            }
        } else if w == tag4(b"sign") {
            if fits(i, 10) && word(rd, p + 4)? == tag4(b"al.o") && half(rd, p + 8)? == tag2(b"rg") {
                return Some(Some(App::Signal));
            }
        } else if w == tag4(b"face") {
            if fits(i, 8) && word(rd, p + 4)? == tag4(b"book") {
                return Some(Some(App::Messenger));
            }
        } else if w == tag4(b"tele") {
            if fits(i, 8) && word(rd, p + 4)? == tag4(b"gram") {
                return Some(Some(App::Telegram));
            }
        } else if w == tag4(b"vibe") && rd.u8(p + 4)? | 0x20 == b'r' {
            return Some(Some(App::Viber));
        }
    }
    Some(None)
}

/// Largest offset (from the payload start) that [`Rd`] reads at.
const READ_MASK: usize = 0xFFF;
const _: () = assert!(MS_TURN_HDR_LEN + 2 + MAX_ATTR_OFF + 4 + MAX_REALM + 20 < READ_MASK);

/// Reads at offsets the verifier cannot tell apart.
///
/// Each offset is XORed with an opaque zero (see [`opaque_zero`]) and masked to `READ_MASK`, so
/// that to the verifier every read is at "some offset in `0..=READ_MASK`": the bounds check of
/// one read then teaches it nothing the others did not, whichever path it is on. Without this,
/// each path learns a different least payload length and verified packet range, and paths that
/// should merge are explored separately (measured: past the 1M-instruction limit). Every offset
/// read here is below `READ_MASK` by construction (the clamps and the assert above).
struct Rd<'a, B: ?Sized> {
    pl: &'a B,
    z: usize,
}

impl<B: Bytes + ?Sized> Rd<'_, B> {
    #[inline(always)]
    fn at(&self, off: usize) -> usize {
        (off ^ self.z) & READ_MASK
    }

    #[inline(always)]
    fn u8(&self, off: usize) -> Option<u8> {
        self.pl.u8_at(self.at(off))
    }

    #[inline(always)]
    fn be16(&self, off: usize) -> Option<u16> {
        self.pl.be16(self.at(off))
    }

    #[inline(always)]
    fn be32(&self, off: usize) -> Option<u32> {
        self.pl.be32(self.at(off))
    }

    #[inline(always)]
    fn be64(&self, off: usize) -> Option<u64> {
        self.pl.array::<8>(self.at(off)).map(u64::from_be_bytes)
    }
}

/// `v`, as a value the verifier does not link to `v`: a comparison on the copy then narrows the
/// copy only, and a loop that keeps `v` reaches its next iteration in the same state whichever
/// comparisons this one made.
#[inline(always)]
fn unlinked(v: usize) -> usize {
    core::hint::black_box(v) ^ core::hint::black_box(0)
}

/// Lower-cased 4-byte word at `off`.
#[inline(always)]
fn word<B: Bytes + ?Sized>(rd: &Rd<'_, B>, off: usize) -> Option<u32> {
    rd.be32(off).map(|w| w | LOWER4)
}

/// Lower-cased 2-byte word at `off`.
#[inline(always)]
fn half<B: Bytes + ?Sized>(rd: &Rd<'_, B>, off: usize) -> Option<u16> {
    rd.be16(off).map(|w| w | LOWER2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{net::Ipv6Addr, vec, vec::Vec};

    use crate::testing::hex as hx;

    fn ep4(a: [u8; 4], port: u16) -> Endpoint {
        let mut addr = [0; 16];
        addr[..4].copy_from_slice(&a);
        Endpoint { addr, port, ipv6: false }
    }

    fn ep6(s: &str, port: u16) -> Endpoint {
        Endpoint { addr: s.parse::<Ipv6Addr>().unwrap().octets(), port, ipv6: true }
    }

    const TXID: [u8; 12] = [0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae];

    /// An RFC 5389 message: header with cookie, then attributes padded to 4.
    fn msg(t: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (at, v) in attrs {
            body.extend_from_slice(&at.to_be_bytes());
            body.extend_from_slice(&(v.len() as u16).to_be_bytes());
            body.extend_from_slice(v);
            body.resize(body.len().div_ceil(4) * 4, 0);
        }
        let mut m = Vec::new();
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&(body.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        m.extend_from_slice(&TXID);
        m.extend_from_slice(&body);
        m
    }

    /// XOR-*-ADDRESS value for an IPv4 endpoint (RFC 8489 §14.2), encoded by the spec's rule.
    fn xor4(a: [u8; 4], port: u16) -> Vec<u8> {
        let mut v = vec![0, 1];
        v.extend_from_slice(&(port ^ 0x2112).to_be_bytes());
        v.extend_from_slice(&(u32::from_be_bytes(a) ^ MAGIC_COOKIE).to_be_bytes());
        v
    }

    fn xor6(s: &str, port: u16) -> Vec<u8> {
        let mut key = MAGIC_COOKIE.to_be_bytes().to_vec();
        key.extend_from_slice(&TXID);
        let mut v = vec![0, 2];
        v.extend_from_slice(&(port ^ 0x2112).to_be_bytes());
        v.extend(s.parse::<Ipv6Addr>().unwrap().octets().iter().zip(&key).map(|(a, k)| a ^ k));
        v
    }

    /// RFC 4571 framing.
    fn framed(m: &[u8]) -> Vec<u8> {
        let mut f = (m.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(m);
        f
    }

    fn app(p: &[u8], tcp: bool) -> Option<App> {
        detect(p, tcp).map(|s| s.app)
    }

    /// Every proper prefix of `p` is rejected (and none panics).
    fn truncations_rejected(p: &[u8], tcp: bool) {
        for cut in 0..p.len() {
            assert_eq!(detect(&p[..cut], tcp), None, "prefix {cut} of {} (tcp {tcp})", p.len());
        }
    }

    /// CRC-32 (IEEE) for checking the FINGERPRINT of the transcribed RFC 5769 vectors.
    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in data {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
            }
        }
        !c
    }

    // RFC 5769 §2.1-2.3 test vectors.
    const RFC5769_REQUEST: &str = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e2074657374
        20636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a683676592020200008
        00149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf";
    const RFC5769_RESPONSE_V4: &str = "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b74657374207665
        63746f7220002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004
        c07d4c96";
    const RFC5769_RESPONSE_V6: &str = "010100482112a442b7e7a701bc34d686fa87dfae8022000b74657374207665
        63746f722000200014 0002a1470113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c9
        7c8292c275bfe3ed4180280004c8fb0b4c";

    #[test]
    fn rfc5769_vectors_are_transcribed_exactly() {
        for v in [RFC5769_REQUEST, RFC5769_RESPONSE_V4, RFC5769_RESPONSE_V6] {
            let m = hx(v);
            let fp = u32::from_be_bytes(m[m.len() - 4..].try_into().unwrap());
            assert_eq!(crc32(&m[..m.len() - 8]) ^ 0x5354_554E, fp);
        }
    }

    #[test]
    fn rfc5769_request() {
        let m = hx(RFC5769_REQUEST);
        let s = detect(&m[..], false).unwrap();
        assert_eq!((s.app, s.msg_type, s.turn, s.n_addrs), (App::Stun, 0x0001, false, 0));
        // Bare and RFC 4571-framed on TCP too.
        assert_eq!(app(&m, true), Some(App::Stun));
        assert_eq!(app(&framed(&m), true), Some(App::Stun));
        truncations_rejected(&m, false);
        truncations_rejected(&m, true);
        truncations_rejected(&framed(&m), true);
    }

    #[test]
    fn rfc5769_ipv4_response_mapped_address() {
        let m = hx(RFC5769_RESPONSE_V4);
        let s = detect(&m[..], false).unwrap();
        assert_eq!((s.app, s.msg_type, s.n_addrs), (App::Stun, 0x0101, 1));
        // RFC 5769 §2.2: 192.0.2.1 port 32853.
        assert_eq!(s.addrs[0], ep4([192, 0, 2, 1], 32853));
        assert_eq!(s.addr_attrs[0], attr::XOR_MAPPED_ADDRESS);
        truncations_rejected(&m, false);
    }

    #[test]
    fn rfc5769_ipv6_response_mapped_address() {
        let m = hx(RFC5769_RESPONSE_V6);
        let s = detect(&m[..], false).unwrap();
        assert_eq!((s.app, s.n_addrs), (App::Stun, 1));
        // RFC 5769 §2.3: 2001:db8:1234:5678:11:2233:4455:6677 port 32853.
        assert_eq!(s.addrs[0], ep6("2001:db8:1234:5678:11:2233:4455:6677", 32853));
        truncations_rejected(&m, false);
    }

    #[test]
    fn turn_allocate_request_and_response() {
        // RFC 8656 §7.1: Allocate request with REQUESTED-TRANSPORT (UDP).
        let req = msg(0x0003, &[(0x0019, &[17, 0, 0, 0])]);
        let s = detect(&req[..], false).unwrap();
        assert_eq!((s.app, s.turn, s.n_addrs), (App::Turn, true, 0));
        // §7.3: success response with XOR-RELAYED-ADDRESS, LIFETIME, XOR-MAPPED-ADDRESS.
        let relayed = xor4([203, 0, 113, 5], 49152);
        let mapped = xor6("2001:db8::7", 40000);
        let resp = msg(
            0x0103,
            &[
                (attr::XOR_RELAYED_ADDRESS, &relayed),
                (0x000D, &600u32.to_be_bytes()),
                (attr::XOR_MAPPED_ADDRESS, &mapped),
            ],
        );
        let s = detect(&resp[..], false).unwrap();
        assert_eq!((s.app, s.turn, s.msg_type, s.n_addrs), (App::Turn, true, 0x0103, 2));
        assert_eq!(s.addrs, [ep4([203, 0, 113, 5], 49152), ep6("2001:db8::7", 40000)]);
        assert_eq!(s.addr_attrs, [attr::XOR_RELAYED_ADDRESS, attr::XOR_MAPPED_ADDRESS]);
        // Error response (401) and the other TURN methods.
        for t in
            [0x0113, 0x0004, 0x0104, 0x0016, 0x0017, 0x0008, 0x0108, 0x0009, 0x0109, 0x000A, 0x000B, 0x010B]
        {
            let s = detect(&msg(t, &[])[..], false).unwrap();
            assert_eq!((s.app, s.turn), (App::Turn, true), "type {t:04x}");
        }
        for t in [0x0001, 0x0101, 0x0111, 0x0011, 0x0002] {
            let s = detect(&msg(t, &[])[..], false).unwrap();
            assert_eq!((s.app, s.turn), (App::Stun, false), "type {t:04x}");
        }
        truncations_rejected(&resp, false);
        truncations_rejected(&resp, true);
    }

    #[test]
    fn turn_peer_addresses_come_first() {
        // CreatePermission (RFC 8656 §9) with two XOR-PEER-ADDRESS.
        let p1 = xor4([198, 51, 100, 1], 0);
        let p2 = xor6("2001:db8:1::2", 0);
        let s =
            detect(&msg(0x0008, &[(attr::XOR_PEER_ADDRESS, &p1), (attr::XOR_PEER_ADDRESS, &p2)])[..], false)
                .unwrap();
        assert_eq!((s.app, s.n_addrs), (App::Turn, 2));
        assert_eq!(s.addrs, [ep4([198, 51, 100, 1], 0), ep6("2001:db8:1::2", 0)]);
        // The last two addresses are kept, in message order unless the later is a peer address.
        let mapped = xor4([192, 0, 2, 9], 1000);
        let relayed = xor4([192, 0, 2, 10], 2000);
        let peer = xor4([198, 51, 100, 7], 3000);
        let m = msg(
            0x0103,
            &[
                (attr::XOR_MAPPED_ADDRESS, &mapped),
                (attr::XOR_RELAYED_ADDRESS, &relayed),
                (attr::XOR_PEER_ADDRESS, &peer),
            ],
        );
        let s = detect(&m[..], false).unwrap();
        assert_eq!(s.n_addrs, 2);
        assert_eq!(s.addrs, [ep4([198, 51, 100, 7], 3000), ep4([192, 0, 2, 10], 2000)]);
        assert_eq!(s.addr_attrs, [attr::XOR_PEER_ADDRESS, attr::XOR_RELAYED_ADDRESS]);
        let m = msg(0x0103, &[(attr::XOR_PEER_ADDRESS, &peer), (attr::XOR_MAPPED_ADDRESS, &mapped)]);
        let s = detect(&m[..], false).unwrap();
        assert_eq!(s.addrs, [ep4([198, 51, 100, 7], 3000), ep4([192, 0, 2, 9], 1000)]);
        let m = msg(
            0x0103,
            &[
                (attr::XOR_PEER_ADDRESS, &peer),
                (attr::XOR_MAPPED_ADDRESS, &mapped),
                (attr::XOR_RELAYED_ADDRESS, &relayed),
            ],
        );
        let s = detect(&m[..], false).unwrap();
        assert_eq!(s.addrs, [ep4([192, 0, 2, 9], 1000), ep4([192, 0, 2, 10], 2000)]);
        assert_eq!(s.addr_attrs, [attr::XOR_MAPPED_ADDRESS, attr::XOR_RELAYED_ADDRESS]);
        // A malformed address (wrong length, unknown family) is skipped.
        let bad_len = [0u8, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        let bad_family = [0u8, 3, 0, 0, 1, 2, 3, 4];
        let m = msg(0x0008, &[(attr::XOR_PEER_ADDRESS, &bad_len), (attr::XOR_PEER_ADDRESS, &peer)]);
        let s = detect(&m[..], false).unwrap();
        assert_eq!((s.n_addrs, s.addrs[0]), (1, ep4([198, 51, 100, 7], 3000)));
        let s = detect(&msg(0x0101, &[(attr::XOR_MAPPED_ADDRESS, &bad_family)])[..], false).unwrap();
        assert_eq!(s.n_addrs, 0);
    }

    #[test]
    fn turn_channel_bind_and_send_indication() {
        // ChannelBind (RFC 8656 §11): CHANNEL-NUMBER 0x4000 and XOR-PEER-ADDRESS.
        let peer = xor4([198, 51, 100, 20], 5004);
        let cb = msg(0x0009, &[(0x000C, &[0x40, 0, 0, 0]), (attr::XOR_PEER_ADDRESS, &peer)]);
        let s = detect(&cb[..], false).unwrap();
        assert_eq!(
            (s.app, s.turn, s.n_addrs, s.addrs[0]),
            (App::Turn, true, 1, ep4([198, 51, 100, 20], 5004))
        );
        // Send indication (§10) with XOR-PEER-ADDRESS and DATA holding a STUN Binding request.
        let inner = hx(RFC5769_REQUEST);
        let send = msg(0x0016, &[(attr::XOR_PEER_ADDRESS, &peer), (attr::DATA, &inner)]);
        let s = detect(&send[..], false).unwrap();
        assert_eq!((s.app, s.turn), (App::Turn, true));
        assert_eq!((s.data_off, s.data_len), (20 + 12 + 4, inner.len() as u16));
        let d = &send[s.data_off as usize..][..s.data_len as usize];
        assert_eq!(d, &inner[..]);
        assert_eq!(app(d, false), Some(App::Stun));
        // A DATA attribute whose length runs past the message is not reported.
        let mut bad = msg(0x0016, &[(attr::DATA, &[1, 2, 3, 4])]);
        bad[22..24].copy_from_slice(&200u16.to_be_bytes());
        let s = detect(&bad[..], false).unwrap();
        assert_eq!((s.data_off, s.data_len), (0, 0));
    }

    #[test]
    fn channel_data_frames() {
        // RFC 8656 §12.4: channel 0x4001, 8 bytes of data.
        let cd = hx("4001 0008 8000 0001 0000 0000");
        assert!(channel_data(&cd[..], false));
        assert!(channel_data(&cd[..], true));
        for cut in 0..cd.len() {
            assert!(!channel_data(&cd[..cut], false), "prefix {cut}");
            assert!(!channel_data(&cd[..cut], true), "prefix {cut}");
        }
        // Channel numbers 0x4000-0x7FFF only.
        for (b0, ok) in
            [(0x3F, false), (0x40, true), (0x4F, true), (0x7F, true), (0x80, false), (0x00, false)]
        {
            let mut f = cd.clone();
            f[0] = b0;
            assert_eq!(channel_data(&f[..], false), ok, "first byte {b0:02x}");
        }
        // Odd length: unpadded or padded on UDP; on TCP the padding is required.
        let odd = hx("4000 0005 0102030405");
        assert!(channel_data(&odd[..], false));
        assert!(!channel_data(&odd[..], true));
        let odd_padded = hx("4000 0005 0102030405 000000");
        assert!(channel_data(&odd_padded[..], false));
        assert!(channel_data(&odd_padded[..], true));
        // Length mismatch on UDP; several frames in one TCP segment.
        let long = hx("4001 0008 8000 0001 0000 0000 00000000");
        assert!(!channel_data(&long[..], false));
        assert!(channel_data(&long[..], true));
        let two = [cd.clone(), cd.clone()].concat();
        assert!(channel_data(&two[..], true));
        assert!(!channel_data(&two[..], false));
        let short = hx("4001 0010 8000 0001 0000 0000");
        assert!(!channel_data(&short[..], false));
        assert!(!channel_data(&short[..], true));
        // A STUN message is not ChannelData.
        assert!(!channel_data(&hx(RFC5769_REQUEST)[..], false));
    }

    #[test]
    fn demux_ranges() {
        let expect = |b: u8| match b {
            0..=3 => Demux::Stun,
            16..=19 => Demux::Zrtp,
            20..=63 => Demux::Dtls,
            64..=79 => Demux::TurnChannel,
            128..=191 => Demux::Rtp,
            _ => Demux::Unknown,
        };
        for b in 0..=255u8 {
            assert_eq!(demux(b), expect(b));
        }
        assert_eq!(
            [
                demux(3),
                demux(4),
                demux(15),
                demux(16),
                demux(19),
                demux(20),
                demux(63),
                demux(64),
                demux(79),
                demux(80)
            ],
            [
                Demux::Stun,
                Demux::Unknown,
                Demux::Unknown,
                Demux::Zrtp,
                Demux::Zrtp,
                Demux::Dtls,
                Demux::Dtls,
                Demux::TurnChannel,
                Demux::TurnChannel,
                Demux::Unknown
            ]
        );
        assert_eq!(
            [demux(127), demux(128), demux(191), demux(192), demux(255)],
            [Demux::Unknown, Demux::Rtp, Demux::Rtp, Demux::Unknown, Demux::Unknown]
        );
    }

    /// Real payloads from /work/shared/corpus/pcap: (capture #packet, payload, tcp, app, turn).
    /// Packet numbers are 1-based frame numbers in the capture.
    const REAL: &[(&str, &str, bool, App, bool)] = &[
        // Google Meet call (label STUN.GoogleCall): plain Binding request, then 401 with REALM.
        ("stun.pcap #16", "000100002112a44253486b6846386f6477677956", false, App::Stun, false),
        (
            "stun.pcap #19",
            "0113003c2112a442536e4c665278533665516e540009000400000401001400117475726e2e6c2e676f6f676c652e636f6d000000001500186d6168366f4f746c33364c46346d774b3061775559413d3d",
            false,
            App::GoogleMeet,
            true,
        ),
        // Same, TURN over TCP (stun_dtls_rtp: STUN.GoogleCall).
        (
            "stun_dtls_rtp.pcapng #44",
            "000300082112a4424d7a4a354c76737264656c630019000411000000",
            true,
            App::Turn,
            true,
        ),
        (
            "stun_dtls_rtp.pcapng #46",
            "0113003c2112a4424d7a4a354c76737264656c630009000400000401001400117475726e2e6c2e676f6f676c652e636f6d0000000015001843744753477733634c32756b30346b4e5869516e44413d3d",
            true,
            App::GoogleMeet,
            true,
        ),
        // Messenger call (STUN.FacebookVoip): REALM "turner.facebook".
        (
            "stun.pcap #68",
            "011300542112a442414b37515079504b396575560009001000000401756e617574686f72697a656400150028626230333164363163636331626538326532343031343433356564353266323666626136323438330014000f7475726e65722e66616365626f6f6b00",
            false,
            App::Messenger,
            true,
        ),
        // Teams over TCP with RFC 4571 framing (STUN.Skype_TeamsCall): 0x8054, 0x8070.
        (
            "stun.pcap #3",
            "0068000100542112a442f3439453b698fb2950bb06ed000600092f7049303a546f4564000000002400046e6bfcff80290008000000000004c2d18054000132000000807000040000000300080014fe92876ad46d7b797d42eb8d79a805faf31d72d1802800040200fc47",
            true,
            App::Teams,
            false,
        ),
        // Teams (stun_msteams_unidir: STUN.Skype_TeamsCall): 0x8070.
        (
            "stun_msteams_unidir.pcapng #1",
            "010100342112a442567009c2ae00e698d98f01908070000400000007002000080001e24473a09b3900080014081c187c4cf903476de30538dee3554682a1e5d080280004513d0c54",
            false,
            App::Teams,
            false,
        ),
        // Teams TURN Allocate with 0x8006/0x8055, and MS multiplexed TURN (FF10 header).
        (
            "teams.pcap #1238",
            "000300302112a442b2343f6e67f41d58acba639f000f000472c64bc68037000400000002800800040000000680060004000000010010000400002ee08055000400020002",
            false,
            App::Teams,
            true,
        ),
        (
            "teams.pcap #1424",
            "ff100060deaa296708f708fc010100442112a44281275a7e28b364d88f3d14f980700004000000070020000800012c851560584a8037000400000002803600040000000100080014998b53fec81f7d913f18f8cc4c645293987537ed802800043ea7ac36",
            false,
            App::Teams,
            false,
        ),
        // Zoom (STUN.Zoom): classic STUN (no cookie) with attributes 0x0101 and 0x0103.
        (
            "zoom.pcap #34",
            "00010018c15dae63585d14392e582c260403bf30010100143132333435363738393031323334353637383900",
            false,
            App::Zoom,
            false,
        ),
        (
            "zoom.pcap #60",
            "0002000cc15dae63585d14392e582c260403bf30010300080001ff7550b4dcef",
            false,
            App::Zoom,
            false,
        ),
        // WhatsApp (STUN.WhatsAppCall): attribute 0x4000; type 0x0801; type 0x0804.
        (
            "stun_wa_call.pcapng #1",
            "000300c02112a44270758b44c723a74ed1934a25400000960902b6281ef343ba8bcaaa266adadab1012ef432f7c19ee10ad595c8cba15da9f0345e42f822506711fa3185671936c5ea318573c45aeeafad513adad2fb47059a0fb2a8035ce7e0079c75ffa7bf7a4a01d42783eccb118a97198f3e2e16806b5519a1f2dfeb4880a877a92dba4bc8899eb222d2d0ed8f244c991b8cf4f238a60fb05f8b8c345bba1301107c5379c15594cf1f3616c100000016000800012c847c2bdfa10008001424ce1048b6f505eb0030b75478471335d666576f",
            false,
            App::WhatsApp,
            true,
        ),
        ("stun_wa_call.pcapng #47", "080100002112a44270758b44c723a74ed1934a3b", false, App::WhatsApp, false),
        (
            "stun_wa_call.pcapng #460",
            "0804002c2112a4423d4dfb65296240094ddef9504007000201f400000016000800012c84bce26f7c00080014e05431613401a5b674244c258efc5407398728b0",
            false,
            App::WhatsApp,
            false,
        ),
        // WhatsApp with msg_len 106 (not a multiple of 4): Allocate + 0x4000, and type 0x0800.
        (
            "whatsapp_voice_and_message.pcap #26",
            "0003006a2112a4420000d160e0ec785eac996a6c400000660100b2f3a431734fd3adf65555afde4c4643a213e87912e8459735685561ac67357fc456daf3234f93fcac0b22c19fa9f4d9685c8b484f4c4f06ca62c415a187cdeb3a8ebbdc5a977ca86c9aa09b81c632b045f14b51b40509664cd6b0dc4cca87bc0545adcd",
            false,
            App::WhatsApp,
            true,
        ),
        (
            "whatsapp_voice_and_message.pcap #88",
            "0800006a2112a4420000d160e0ec785eac996a6d400000660100b2f3a431734fd3adf65555afde4c4643a213e87912e8459735685561ac67357fc456daf3234f93fcac0b22c19fa9f4d9685c8b484f4c4f06ca62c415a187cdeb3a8ebbdc5a977ca86c9aa09b81c632b045f14b51b40509664cd6b0dc4cca87bc0545adcd",
            false,
            App::WhatsApp,
            false,
        ),
        // WhatsApp over IPv6 (lru_ipv6_caches: STUN.WhatsAppCall).
        (
            "lru_ipv6_caches.pcapng #56",
            "000300842112a44253374674512f76366b2f4f3240000066091053ea344ed5247e63b1c7d736c6216fdf04dd4fbede2a14c20641f167920420c4f07bf4aa543b558b5590ab2492fa911f588bc33a081a2ec3cffb73aaf0a99f085d915caa84a6f377c35f5d944d6e30777f40723dd1458aba272876925d438ec561429f5d000000080014bceb0155b4126fe5a00d5a12e5cef255b3178d7e",
            false,
            App::WhatsApp,
            true,
        ),
        // Viber (STUN.ViberVoip): REALM "viber.com".
        (
            "viber.pcap #455",
            "011300402112a44231612b5a42584b4e3138795a0009001000000401556e617574686f72697a656400150010363966346561313034323439626431650014000976696265722e636f6d000000802800047379de90",
            false,
            App::Viber,
            true,
        ),
        // Classic STUN (stun_classic: STUN.RTP): Binding request and response, no cookie.
        (
            "stun_classic.pcap #1",
            "000100089429ef88294dd52632c72931cb8dbb4c0003000400000000",
            false,
            App::Stun,
            false,
        ),
        (
            "stun_classic.pcap #2",
            "0101000c9429ef88294dd52632c72931cb8dbb4c000100080001d70aac103fe0",
            false,
            App::Stun,
            false,
        ),
        // Skype/Teams TURN old-style Data indication 0x0115 without cookie (teams.pcap).
        (
            "teams.pcap #1416",
            "01150088c2d6764f53f1d813305855947dbe126b000f000472c64bc60012000800013fcc5d476ecd001300700001005c2112a4429393ee2aa84f9a30724106d600060009465933323a6f352f490000008029000800007fed5e058e0080700004000000078036000400000001002400046efffdfe80370004000000020008001430b3207fdc071534616680862d7c738ed159b9e2802800047dd1bf47",
            false,
            App::Turn,
            true,
        ),
        // Plain STUN over IPv6 with MAPPED-ADDRESS only (stun.pcap, label STUN).
        (
            "stun.pcap #26",
            "010100182112a44242717143766336792f6b4965000100140002de3020011670000ceb0470aff67f8e49f603",
            false,
            App::Stun,
            false,
        ),
        // TURN over TCP, label STUN: three Allocate requests in one segment.
        (
            "stun_tcp_multiple_msgs_same_pkt.pcap #5",
            "000300082112a442704b6e453952586746596c590019000411000000000300082112a442704b6e453952586746596c590019000411000000000300082112a442704b6e453952586746596c590019000411000000",
            true,
            App::Turn,
            true,
        ),
    ];

    #[test]
    fn real_packets_give_their_app() {
        for &(name, h, tcp, want, turn) in REAL {
            let p = hx(h);
            let s = detect(&p[..], tcp).unwrap_or_else(|| panic!("{name}: not detected"));
            assert_eq!((s.app, s.turn), (want, turn), "{name}");
        }
    }

    #[test]
    fn real_packets_truncated_are_rejected() {
        for &(name, h, tcp, _, _) in REAL {
            let p = hx(h);
            if name.starts_with("stun_tcp_multiple") {
                continue; // complete messages remain in most prefixes; see below
            }
            for cut in 0..p.len() {
                assert_eq!(detect(&p[..cut], tcp), None, "{name} cut at {cut}");
            }
        }
        // Three 28-byte messages: a prefix holds a whole first message from 28 bytes on.
        let p = hx(REAL.iter().find(|r| r.0.starts_with("stun_tcp_multiple")).unwrap().1);
        for cut in 0..p.len() {
            assert_eq!(detect(&p[..cut], true).is_some(), cut >= 28, "cut at {cut}");
        }
    }

    #[test]
    fn real_packet_addresses() {
        let get = |name: &str| {
            let r = REAL.iter().find(|r| r.0 == name).unwrap();
            detect(&hx(r.1)[..], r.2).unwrap()
        };
        // stun.pcap #21: Allocate success, XOR-RELAYED then XOR-MAPPED (decoded with python).
        let p = hx(
            "010300382112a442494343786141736b5a4a54740016000800018e7e2b10a414000d0004000000780020000800017d527c3d45a30008001477cf2e9849f6a529bef11df87598fc35db94339e",
        );
        let s = detect(&p[..], false).unwrap();
        assert_eq!((s.app, s.turn, s.n_addrs), (App::Turn, true, 2));
        assert_eq!(s.addrs, [ep4([10, 2, 0, 86], 44908), ep4([93, 47, 225, 225], 23616)]);
        assert_eq!(s.addr_attrs, [attr::XOR_RELAYED_ADDRESS, attr::XOR_MAPPED_ADDRESS]);
        // stun.pcap #71: CreatePermission with XOR-PEER-ADDRESS and REALM turner.facebook.
        let p = hx(
            "000800782112a44246622f5231503570504d59640012000800018cb9e1baa424000600104d6632683948693561504d52706c46310014000f7475726e65722e66616365626f6f6b000015002862623033316436316363633162653832653234303134343335656435326632366662613632343833000800144c66dbfa44ca94a2a6628fbf270e5e844598753f",
        );
        let s = detect(&p[..], false).unwrap();
        assert_eq!((s.app, s.n_addrs, s.addrs[0]), (App::Messenger, 1, ep4([192, 168, 0, 102], 44459)));
        assert_eq!(s.addr_attrs[0], attr::XOR_PEER_ADDRESS);
        // stun.pcap #201: Binding response over IPv6; XOR-MAPPED-ADDRESS is the packet's own
        // destination [2001:b07:a3d:c112:48a1:1094:1227:281e]:48094.
        let p = hx(
            "010100682112a442377136702b4b4a37425343300020001400029acc0113af453d4cf76263ea5aa350746b2e000100140002bbde20010b070a3dc11248a110941227281e802b001400020d9626001900416059990000001900000000802c0014000200502600190041605999000000190000000080280004ce61014c",
        );
        let s = detect(&p[..], false).unwrap();
        assert_eq!((s.app, s.n_addrs), (App::Stun, 1));
        assert_eq!(s.addrs[0], ep6("2001:b07:a3d:c112:48a1:1094:1227:281e", 48094));
        // stun.pcap #151: two CreatePermission messages in one TCP segment; the first is read.
        let p = hx(
            "0008007c2112a442707245496a6b556c62625349001200080001b6795e12a4430006002c313634333632393532373a524f554c4f4d333030312b74373879494b69796664453341564e37616b737458770014000d617070732d686f73742e636f6d000000001500106362636463636366373335336137313000080014812f5b3f4f3da93071081f2a810ae65ff81c3ca90008007c2112a44275592f564334376553584267001200080001632124b0264c0006002c313634333632393532373a524f554c4f4d333030312b74373879494b69796664453341564e37616b737458770014000d617070732d686f73742e636f6d0000000015001063626364636363663733353361373130000800144c8f28876dc7dc7d37a70f35efc536924366e691",
        );
        let s = detect(&p[..], true).unwrap();
        assert_eq!((s.app, s.turn, s.n_addrs, s.addrs[0]), (App::Turn, true, 1, ep4([127, 0, 0, 1], 38763)));
        let s2 = detect(&p[144..], true).unwrap();
        assert_eq!(s2.addrs[0], ep4([5, 162, 130, 14], 16947));
        assert_eq!(detect(&p[..], false), None, "two messages are not one datagram");
        // stun_msteams_unidir #1: XOR-MAPPED-ADDRESS 82.178.63.123:50006 (client port 50006).
        let s = get("stun_msteams_unidir.pcapng #1");
        assert_eq!((s.n_addrs, s.addrs[0]), (1, ep4([82, 178, 63, 123], 50006)));
        // teams.pcap #1424, inside the MS-TURN header: mapped 52.114.252.8:3479 (the server).
        let s = get("teams.pcap #1424");
        assert_eq!((s.n_addrs, s.addrs[0]), (1, ep4([52, 114, 252, 8], 3479)));
        // stun_wa_call #460: XOR-RELAYED-ADDRESS 157.240.203.62:3478, the relay itself.
        let s = get("stun_wa_call.pcapng #460");
        assert_eq!((s.n_addrs, s.addrs[0]), (1, ep4([157, 240, 203, 62], 3478)));
        // Classic STUN: no cookie, so no XOR decoding (teams #1416 has an XOR-PEER-ADDRESS).
        let s = get("teams.pcap #1416");
        assert_eq!(s.n_addrs, 0);
    }

    #[test]
    fn data_indication_inner_message() {
        // stun.pcap #77: Send indication to the Messenger relay; DATA holds an ICE check.
        let p = hx(
            "001600742112a4427a66435744622f7a424732430012000800018cb998b82f4300130064000100502112a442475365334b756d334e684950000600096b5374793a58704a73000000c05700040003000a802a0008f4d3bd50aee2dde700250000002400046e7f23ff00080014481f76730401d4c44eb86a455b8910d84d04b7928028000401477a4d",
        );
        let s = detect(&p[..], false).unwrap();
        assert_eq!((s.app, s.turn, s.data_off, s.data_len), (App::Turn, true, 36, 100));
        assert_eq!(s.addrs[0], ep4([185, 170, 139, 1], 44459));
        let inner = &p[36..136];
        assert_eq!(app(inner, false), Some(App::Stun));
        // teams.pcap #1416 (classic Data indication): the inner ICE check is Teams (0x8070).
        let r = REAL.iter().find(|r| r.0 == "teams.pcap #1416").unwrap();
        let p = hx(r.1);
        let s = detect(&p[..], false).unwrap();
        assert_eq!((s.data_off, s.data_len), (44, 112));
        assert_eq!(app(&p[44..156], false), Some(App::Teams));
    }

    #[test]
    fn whatsapp_message_types() {
        for t in [0x0800u16, 0x0801, 0x0802, 0x0804, 0x0805] {
            let s = detect(&msg(t, &[])[..], false).unwrap();
            assert_eq!((s.app, s.turn), (App::WhatsApp, false), "type {t:04x}");
        }
        for t in [0x0803u16, 0x0806, 0x0810, 0x0900, 0x000C, 0x3EEF, 0x0020] {
            assert_eq!(detect(&msg(t, &[])[..], false), None, "type {t:04x}");
        }
        // A WhatsApp type wins over any attribute.
        let m = msg(0x0801, &[(attr::ZOOM_A, &[0; 4]), (0x8070, &[0, 0, 0, 2])]);
        assert_eq!(app(&m, false), Some(App::WhatsApp));
        // stun_wa_call.pcapng #467: msg_len 452 in a 500-byte datagram; nDPI rejects it on UDP.
        let mut p = hx("080101c42112a4423d4dfb65296240094ddef95440030001ff000000400401b8");
        p.resize(500, 0);
        assert_eq!(detect(&p[..], false), None);
        // On TCP the same bytes are one message followed by more data.
        assert_eq!(app(&p, true), Some(App::WhatsApp));
    }

    #[test]
    fn attribute_fingerprints() {
        for at in [0x4000u16, 0x4001, 0x4002, 0x4003, 0x4004, 0x4007] {
            assert_eq!(app(&msg(0x0001, &[(at, &[0; 4])]), false), Some(App::WhatsApp), "{at:04x}");
        }
        for at in [0x8054u16, 0x24DF, 0x3802, 0x8036, 0x8095, 0x0800, 0x8006, 0x8070, 0x8055] {
            assert_eq!(app(&msg(0x0001, &[(at, &[0; 4])]), false), Some(App::Teams), "{at:04x}");
        }
        assert_eq!(app(&msg(0x0101, &[(attr::ZOOM_A, &[0; 4])]), false), Some(App::Zoom));
        assert_eq!(app(&msg(0x0003, &[(attr::ZOOM_B, &[0; 4])]), false), Some(App::Zoom));
        assert_eq!(app(&msg(0x0001, &[(attr::GOOGLE, &[0; 4])]), false), Some(App::GoogleMeet));
        for at in [0x4005u16, 0x4006, 0x4008, 0x8053, 0x8056, 0x0102, 0xFF04, 0x8022, 0x0006] {
            assert_eq!(app(&msg(0x0001, &[(at, &[0; 4])]), false), Some(App::Stun), "{at:04x}");
        }
        // Last fingerprint wins; Zoom wins over all attributes; a TURN method stays `turn`.
        let m = msg(0x0003, &[(0x4000, &[0; 4]), (0x8070, &[0; 4])]);
        let s = detect(&m[..], false).unwrap();
        assert_eq!((s.app, s.turn), (App::Teams, true));
        assert_eq!(app(&msg(0x0001, &[(0x8070, &[0; 4]), (0x4000, &[0; 4])]), false), Some(App::WhatsApp));
        assert_eq!(app(&msg(0x0001, &[(attr::ZOOM_A, &[0; 4]), (0x8070, &[0; 4])]), false), Some(App::Zoom));
        assert_eq!(app(&msg(0x0001, &[(0x8070, &[0; 4]), (attr::ZOOM_B, &[0; 4])]), false), Some(App::Zoom));
    }

    fn realm(r: &str) -> Vec<u8> {
        msg(0x0113, &[(0x0009, &[0, 0, 4, 1]), (attr::REALM, r.as_bytes()), (0x0015, b"nonce")])
    }

    #[test]
    fn realm_names() {
        let cases = [
            ("turn.l.google.com", Some(App::GoogleMeet)),
            ("google.com", Some(App::GoogleMeet)),
            ("turn.signal.org", Some(App::Signal)),
            ("signal.org", Some(App::Signal)),
            ("turn2.whispersystems.org", Some(App::Signal)),
            ("turner.facebook", Some(App::Messenger)),
            ("facebook", Some(App::Messenger)),
            ("turn.telegram.org", Some(App::Telegram)),
            ("telegram", Some(App::Telegram)),
            ("viber.com", Some(App::Viber)),
            ("viber", Some(App::Viber)),
            // Case-insensitive, as nDPI lower-cases the host name.
            ("TURN.Telegram.ORG", Some(App::Telegram)),
            ("Turn.L.GOOGLE.Com", Some(App::GoogleMeet)),
            ("WhisperSystems.Org", Some(App::Signal)),
            ("VIBER", Some(App::Viber)),
            // Near misses.
            ("", None),
            ("example.org", None),
            ("apps-host.com", None),
            ("google.co", None),
            ("googlecom", None),
            ("google.org", None),
            ("signal.com", None),
            ("signalorg", None),
            ("whispersystems.com", None),
            ("faceboo", None),
            ("face-book", None),
            ("telegra", None),
            ("tele.gram", None),
            ("vibe", None),
            ("vibes", None),
            ("stripcdn.com", None),
        ];
        for (r, want) in cases {
            let m = realm(r);
            let s = detect(&m[..], false).unwrap();
            assert_eq!(s.app, want.unwrap_or(App::Turn), "realm {r:?}");
            truncations_rejected(&m, false);
        }
    }

    #[test]
    fn realm_window_and_precedence() {
        // The name must lie within the first MAX_REALM bytes of the value.
        let pad = "x".repeat(MAX_REALM - 5);
        assert_eq!(app(&realm(&format!("{pad}viber")), false), Some(App::Viber));
        assert_eq!(app(&realm(&format!("{pad}xviber")), false), Some(App::Turn));
        assert_eq!(
            app(&realm(&format!("{}telegram", "y".repeat(MAX_REALM - 8))), false),
            Some(App::Telegram)
        );
        assert_eq!(app(&realm(&format!("{}telegram", "y".repeat(MAX_REALM - 7))), false), Some(App::Turn));
        // The name must lie within the attribute: REALM "vibe" followed by an attribute whose
        // type starts with 'r' (0x72..).
        let m = msg(0x0001, &[(attr::REALM, b"vibe"), (0x7200, &[0; 4])]);
        assert_eq!(app(&m, false), Some(App::Stun));
        // Several names: the first found decides (nDPI: google.com, Signal, facebook, telegram,
        // viber, in that order; no real realm names two).
        assert_eq!(app(&realm("viber.facebook.telegram.signal.org"), false), Some(App::Viber));
        assert_eq!(app(&realm("facebook.google.com"), false), Some(App::Messenger));
        assert_eq!(app(&realm("x.telegram-viber"), false), Some(App::Telegram));
        // The last REALM counts (nDPI: the first; no message carries two).
        let m = msg(0x0001, &[(attr::REALM, b"viber.com"), (attr::REALM, b"example.org")]);
        assert_eq!(app(&m, false), Some(App::Stun));
        let m = msg(0x0001, &[(attr::REALM, b"example.org"), (attr::REALM, b"viber.com")]);
        assert_eq!(app(&m, false), Some(App::Viber));
        // Realm against attribute fingerprints: the later one wins; Zoom and WA types win always.
        let m = msg(0x0001, &[(0x8070, &[0; 4]), (attr::REALM, b"viber.com")]);
        assert_eq!(app(&m, false), Some(App::Viber));
        let m = msg(0x0001, &[(attr::REALM, b"viber.com"), (0x8070, &[0; 4])]);
        assert_eq!(app(&m, false), Some(App::Teams));
        let m = msg(0x0001, &[(attr::REALM, b"example.org"), (0x4000, &[0; 4])]);
        assert_eq!(app(&m, false), Some(App::WhatsApp));
        let m = msg(0x0001, &[(attr::ZOOM_A, &[0; 4]), (attr::REALM, b"viber.com")]);
        assert_eq!(app(&m, false), Some(App::Zoom));
        // A realm longer than the message is read only as far as the message goes.
        let mut m = realm("telegram");
        m[30..32].copy_from_slice(&0x0400u16.to_be_bytes());
        m.truncate(20 + 8 + 4 + 8);
        let n = (m.len() - 20) as u16;
        m[2..4].copy_from_slice(&n.to_be_bytes());
        assert_eq!(app(&m, false), Some(App::Telegram));
        m.truncate(m.len() - 1);
        m[3] -= 1;
        assert_eq!(app(&m, false), Some(App::Turn));
    }

    #[test]
    fn classic_stun() {
        // RFC 3489 Binding request with CHANGE-REQUEST; 16-byte transaction id, no cookie.
        let ok = hx("0001 0008 00112233445566778899aabbccddeeff 0003 0004 00000006");
        assert_eq!(app(&ok, false), Some(App::Stun));
        truncations_rejected(&ok, false);
        // Never on TCP.
        assert_eq!(detect(&ok[..], true), None);
        assert_eq!(detect(&framed(&ok)[..], true), None);
        // The TLV walk must end at the message end.
        let bad_walk = hx("0001 0008 00112233445566778899aabbccddeeff 0003 0008 00000006");
        assert_eq!(detect(&bad_walk[..], false), None);
        let short_walk = hx("0001 0008 00112233445566778899aabbccddeeff 0003 0000 00000000");
        assert_eq!(detect(&short_walk[..], false), None, "a 4-byte tail is not walked (nDPI)");
        // Only the listed message types.
        for t in [0x0005u16, 0x0007, 0x0008, 0x0009, 0x0011, 0x0105, 0x0800] {
            let mut m = ok.clone();
            m[..2].copy_from_slice(&t.to_be_bytes());
            assert_eq!(detect(&m[..], false), None, "type {t:04x}");
        }
        for t in [
            0x0001u16, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112, 0x0003, 0x0103, 0x0113, 0x0004, 0x0104,
            0x0114, 0x0115, 0x0006, 0x0106, 0x0116,
        ] {
            let mut m = ok.clone();
            m[..2].copy_from_slice(&t.to_be_bytes());
            assert!(detect(&m[..], false).is_some(), "type {t:04x}");
        }
        // Header only.
        assert_eq!(app(&hx("0001 0000 00112233445566778899aabbccddeeff"), false), Some(App::Stun));
    }

    #[test]
    fn attribute_walk_is_bounded() {
        let filler: Vec<(u16, &[u8])> = (0..MAX_ATTRS - 1).map(|_| (0x8022u16, &b"abcd"[..])).collect();
        // Fingerprint as the last attribute read, and one past it (missed, by design).
        let mut attrs = filler.clone();
        attrs.push((0x8070, &[0; 4]));
        assert_eq!(app(&msg(0x0001, &attrs), false), Some(App::Teams));
        let mut attrs = filler.clone();
        attrs.push((0x8022, b"abcd"));
        attrs.push((0x8070, &[0; 4]));
        assert_eq!(app(&msg(0x0001, &attrs), false), Some(App::Stun));
        // Classic: MAX_ATTRS attributes are walked, one more is not accepted.
        let classic = |n: usize| {
            let mut m = hx("0001 0000 00112233445566778899aabbccddeeff");
            for _ in 0..n {
                m.extend_from_slice(&hx("0003 0004 00000000"));
            }
            let l = (m.len() - 20) as u16;
            m[2..4].copy_from_slice(&l.to_be_bytes());
            m
        };
        assert!(detect(&classic(MAX_ATTRS)[..], false).is_some());
        assert_eq!(detect(&classic(MAX_ATTRS + 1)[..], false), None);
        // A huge attribute ends the walk (offset clamp) without harm.
        let big = vec![0u8; 2000];
        let m = msg(0x0016, &[(attr::DATA, &big), (0x8070, &[0; 4])]);
        let s = detect(&m[..], false).unwrap();
        assert_eq!((s.app, s.data_off, s.data_len), (App::Turn, 24, 2000));
    }

    #[test]
    fn header_checks() {
        let ok = msg(0x0001, &[(0x8022, b"test")]);
        assert!(detect(&ok[..], false).is_some());
        // Length mismatch on UDP (one byte more, one less); trailing bytes are fine on TCP.
        let mut long = ok.clone();
        long.push(0);
        assert_eq!(detect(&long[..], false), None);
        assert!(detect(&long[..], true).is_some());
        let mut wrong = ok.clone();
        wrong[3] += 4;
        assert_eq!(detect(&wrong[..], false), None);
        assert_eq!(detect(&wrong[..], true), None);
        // Zero type, top bits set, out-of-range method.
        for t in [0x0000u16, 0x4001, 0x8001, 0xC001, 0x000C, 0x0020, 0x0200] {
            let mut m = ok.clone();
            m[..2].copy_from_slice(&t.to_be_bytes());
            assert_eq!(detect(&m[..], false), None, "type {t:04x}");
        }
        // Bad cookie: never on TCP; on UDP only as classic STUN (whose walk must then fit).
        let mut bad = ok.clone();
        bad[7] ^= 1;
        assert_eq!(detect(&bad[..], true), None);
        assert_eq!(detect(&framed(&bad)[..], true), None);
        assert_eq!(app(&bad, false), Some(App::Stun), "valid as classic STUN");
        let mut bad = msg(0x0009, &[(0x8022, b"test")]);
        bad[7] ^= 1;
        assert_eq!(detect(&bad[..], false), None, "ChannelBind is not a classic type");
        // TCP framing: the message must fit its frame; several frames per segment.
        let mut f = framed(&ok);
        f[1] -= 1;
        assert_eq!(detect(&f[..], true), None);
        let two = [framed(&ok), framed(&ok)].concat();
        assert_eq!(app(&two, true), Some(App::Stun));
        let s = detect(&framed(&msg(0x0008, &[(attr::XOR_PEER_ADDRESS, &xor4([1, 2, 3, 4], 5))]))[..], true)
            .unwrap();
        assert_eq!((s.app, s.addrs[0]), (App::Turn, ep4([1, 2, 3, 4], 5)));
        // The legacy text form.
        assert_eq!(app(b"RSP/1.0 STUN_SERVER ok", false), Some(App::Stun));
        assert_eq!(app(b"RSP/1.0 STUX_SERVER ok", false), None);
        assert_eq!(app(b"RSP/1.0 STUN_", false), None, "shorter than a header");
    }

    #[test]
    fn ms_multiplexed_turn_header() {
        let r = REAL.iter().find(|r| r.0 == "teams.pcap #1424").unwrap();
        let p = hx(r.1);
        // Wrong MS length, or a different first word: not STUN.
        let mut bad = p.clone();
        bad[3] += 1;
        assert_eq!(detect(&bad[..], false), None);
        let mut bad = p.clone();
        bad[1] = 0x11;
        assert_eq!(detect(&bad[..], false), None);
        // The inner message alone is still STUN; and framed on TCP.
        assert_eq!(app(&p[12..], false), Some(App::Teams));
        assert_eq!(app(&framed(&p), true), Some(App::Teams));
        assert_eq!(app(&p, true), Some(App::Teams));
    }

    #[test]
    fn not_stun() {
        let cases: &[(&str, Vec<u8>)] = &[
            // dns.pcap #2: AAAA query for www.example.com.
            ("dns", hx("bc1f0100000100000000000003777777076578616d706c6503636f6d00001c0001")),
            // NTPv4.pcap #1: NTP v4 symmetric; first byte 0x23 leaves the top bits clear.
            (
                "ntp",
                hx(
                    "230207eb00000450000003ab83bc03dfd94f51c33165b860d944575530336fd0d944575531b4e978d94f51f42d26e2f4",
                ),
            ),
            // rtp.pcapng #11 and stun_dtls_rtp.pcapng #24 (RTCP).
            ("rtp", hx("80a2011a000a2f300000164600700000617f5b582f42d9d0")),
            ("rtcp", hx("80cf0004eda706e65b0b93915eb3cd23bf23e75635883e412fef49bb4c75860f6a41612e80000001")),
            // dtls.pcap #6: DTLS alert.
            ("dtls", hx("15feff00000000000000020002020a")),
            // ChannelData.
            ("channeldata", hx("4001 0008 8000 0001 0000 0000")),
        ];
        for (name, p) in cases {
            for tcp in [false, true] {
                assert_eq!(detect(&p[..], tcp), None, "{name} tcp {tcp}");
            }
        }
        // QUIC, first 48 bytes of real 1350-byte datagrams, zero-filled to their length:
        // telegram.pcap #726 (gQUIC Q050 long header) and quic.pcap #3 (gQUIC Q024 server
        // packet starting 00 01, a Binding-request look-alike whose length does not match).
        for h in [
            "c35130343650752434271815fbf000000001a53b56196a08e1ad8ee70a06a001040043484c4f1900000050414400f501",
            "000103ef25ce9f07bba450c37de91c289477272daca8ef8eac430192b9a5039e3ad0f2d2b1058bc503f7a2263977c53d",
        ] {
            let mut p = hx(h);
            p.resize(1350, 0);
            assert_eq!(detect(&p[..], false), None, "{h}");
        }
        // raknet.pcap #4: 0x0800 (a WhatsApp type) with length 0xffff.
        let mut p = hx("0800ffff00fefefefefdfdfdfd12345678000591a5360522");
        p.resize(35, 0);
        assert_eq!(detect(&p[..], false), None);
    }

    #[test]
    fn type_checks_match_their_lists() {
        const CLASSIC: [u16; 16] = [
            0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112, 0x0003, 0x0103, 0x0113, 0x0004, 0x0104, 0x0114,
            0x0115, 0x0006, 0x0106, 0x0116,
        ];
        const WHATSAPP: [u16; 5] = [0x0800, 0x0801, 0x0802, 0x0804, 0x0805];
        for t in 0..=u16::MAX {
            assert_eq!(classic_type(t), CLASSIC.contains(&t), "classic {t:04x}");
            assert_eq!(whatsapp_type(t), WHATSAPP.contains(&t), "whatsapp {t:04x}");
        }
    }

    #[test]
    fn verifier_helpers_keep_values() {
        let p = hx(RFC5769_REQUEST);
        let z = opaque_zero(&p[..]).unwrap();
        assert_eq!(z, 0);
        assert_eq!(opaque_zero(&p[..1]), None);
        let rd = Rd { pl: &p[..], z };
        for off in [0, 2, 20, 100, 104] {
            assert_eq!(rd.at(off), off);
            assert_eq!(rd.be16(off), p[..].be16(off));
        }
        assert_eq!(rd.be32(p.len()), None);
        for v in [0, 1, 20, MAX_ATTR_OFF, READ_MASK] {
            assert_eq!(unlinked(v), v);
        }
    }

    /// Signal and Telegram: the corpus has no STUN with their realms (signal.pcap holds only
    /// TLS/DNS, telegram.pcap only the relay protocol). These are viber.pcap #455 (a real 401
    /// Allocate error with REALM "viber.com") with the realm replaced, lengths fixed up.
    /// A Binding success response as Jitsi Videobridge (ice4j) sends it: SOFTWARE `software`,
    /// XOR-MAPPED-ADDRESS 192.0.2.1:32853, then `extra` attributes (already padded).
    fn ice4j_response(software: &[u8], extra: &[u8]) -> Vec<u8> {
        let mut m = hx("01010000 2112a442 b7e7a701bc34d686fa87dfae");
        m.extend_from_slice(&attr::SOFTWARE.to_be_bytes());
        m.extend_from_slice(&(software.len() as u16).to_be_bytes());
        m.extend_from_slice(software);
        m.resize(m.len().div_ceil(4) * 4, 0);
        m.extend_from_slice(&hx("00200008 0001 a147 e112a643"));
        m.extend_from_slice(extra);
        let l = (m.len() - 20) as u16;
        m[2..4].copy_from_slice(&l.to_be_bytes());
        m
    }

    #[test]
    fn jitsi_software() {
        let m = ice4j_response(b"ice4j.org", &[]);
        let s = detect(&m[..], false).unwrap();
        assert_eq!(s.app, App::Jitsi);
        assert_eq!(s.n_addrs, 1);
        assert_eq!(s.addrs[0], ep4([192, 0, 2, 1], 32853));
        assert_eq!(detect(&ice4j_response(b"ice4j", &[])[..], false).unwrap().app, App::Jitsi);
        // Other software, or too short a value: plain STUN.
        for sw in [&b"ice4"[..], b"ice4x.org", b"Ice4j.org", b"test vector", b""] {
            assert_eq!(detect(&ice4j_response(sw, &[])[..], false).unwrap().app, App::Stun, "{sw:?}");
        }
        // Any other fingerprint wins: a Google attribute, a REALM.
        assert_eq!(detect(&ice4j_response(b"ice4j.org", &hx("ff030004 00000000"))[..], false).unwrap().app, App::GoogleMeet);
        let mut r = Vec::from(&attr::REALM.to_be_bytes()[..]);
        r.extend_from_slice(&10u16.to_be_bytes());
        r.extend_from_slice(b"signal.org\0\0");
        assert_eq!(detect(&ice4j_response(b"ice4j.org", &r)[..], false).unwrap().app, App::Signal);
        // Cut inside the SOFTWARE value: not a message.
        assert_eq!(detect(&m[..26], false), None);
    }

    #[test]
    fn realm_apps_on_a_real_message() {
        let base = hx(REAL.iter().find(|r| r.0 == "viber.pcap #455").unwrap().1);
        // Attributes: ERROR-CODE (20..40), NONCE (40..60), REALM (60..76), FINGERPRINT (76..84).
        assert_eq!(base[..].be16(60), Some(attr::REALM));
        for (realm, want) in [
            (&b"signal.org"[..], App::Signal),
            (b"turn.whispersystems.org", App::Signal),
            (b"telegram.org", App::Telegram),
            (b"turn.l.google.com", App::GoogleMeet),
            (b"turner.facebook", App::Messenger),
            (b"example.org", App::Turn),
        ] {
            let mut m = base[..60].to_vec();
            m.extend_from_slice(&attr::REALM.to_be_bytes());
            m.extend_from_slice(&(realm.len() as u16).to_be_bytes());
            m.extend_from_slice(realm);
            m.resize(m.len().div_ceil(4) * 4, 0);
            m.extend_from_slice(&base[76..]);
            let l = (m.len() - 20) as u16;
            m[2..4].copy_from_slice(&l.to_be_bytes());
            assert_eq!(app(&m, false), Some(want), "{}", String::from_utf8_lossy(realm));
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x = crate::testing::xorshift(x);
            x
        };
        let mut hits = 0;
        for round in 0..200_000 {
            let len = (next() % 160) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Bias towards plausible headers so the deeper code runs.
            if len >= 20 && round % 2 == 0 {
                b[0] &= 0x01;
                let body = (len - 20) as u16;
                b[2..4].copy_from_slice(&body.to_be_bytes());
                if round % 4 == 0 {
                    b[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
                }
            }
            for tcp in [false, true] {
                if let Some(s) = detect(&b[..], tcp) {
                    hits += 1;
                    assert!(s.n_addrs <= 2);
                    assert!((s.data_off as usize) + (s.data_len as usize) <= b.len());
                    if !tcp && !b.starts_with(b"RSP/") {
                        // UDP: one whole message, possibly behind an MS-TURN header.
                        let m = if b[0] == 0xFF { 12 } else { 0 };
                        assert_eq!(u16::from_be_bytes([b[m + 2], b[m + 3]]) as usize + 20 + m, b.len());
                    }
                }
                let _ = channel_data(&b[..], tcp);
            }
        }
        assert!(hits > 1000, "the fuzz reached accepted messages ({hits})");
    }
}
