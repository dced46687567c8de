//! SDP (RFC 4566 / RFC 8866) inside a SIP message: where the call's media will flow.
//!
//! [`parse`] finds, in the first [`SCAN_LEN`] bytes of a payload of at least [`MIN_LEN`] bytes:
//! * the first connection line `c=IN IP4 a.b.c.d` or `c=IN IP6 <addr>` (RFC 4566 §5.7;
//!   a multicast `/ttl` suffix is allowed), and
//! * the port of the first `m=audio PORT ...` and of the first `m=video PORT ...` line
//!   (§5.14; `PORT/count` is allowed; port 0 means the stream is disabled, RFC 3264 §6).
//!
//! Anything malformed (400.1.2.3, port 99999, a host name instead of an address, a line cut
//! by the end of the payload) gives `None`/0.
//!
//! How, for the verifier (measured: kernel 6.18, this crate's `Payload` over an XDP packet,
//! `parse` alone in a program): 128k instructions processed, ~100k of them the three scans.
//! * `find` looks for the first `\nc=I`, `\nm=a` or `\nm=v`: 8 bytes read per 4-byte step,
//!   the one window that can hold a tag (the one at the step's last newline, found by SWAR
//!   without a branch) compared, and a hit leaves the loop with its offset and nothing else.
//!   Three scans, not one loop recording three offsets as first planned: recorded offsets are
//!   constants on each path, so the verifier keeps one state per combination of offsets seen
//!   so far, and LLVM moved the code meant to merge them past the loop's back edge.
//! * Small fixed-size loops then parse the lines found: a dotted IPv4 address (at most 15
//!   characters), an IPv6 address (at most 39, with `::`), a decimal port (at most 5 digits).
//! * `Verifier::forget` turns the scans' offsets and the parsers' counters (digits, dots,
//!   groups) into ranges the verifier cannot tell apart, while leaving them unchanged at run
//!   time: without it the verifier walks the code after a loop once per place the loop could
//!   have stopped (over its 1M-instruction budget here).
//! * The payload must be [`MIN_LEN`] bytes long, checked first, so that reads made while
//!   parsing tell the verifier nothing new about the length.
//!
//! In the engine (`engine::sip_app`, an `#[inline(never)]` function of `voipfilter_detect`),
//! three more things were needed:
//! * [`parse_into`] writes plain fields ([`Media`]) only where something was found; no value
//!   is built from an `Option`'s payload (a returned `Sdp` was assembled from a register
//!   holding a packet pointer on the `None` path: "R5 bitwise operator &= on pointer").
//! * The loops read bytes with `byte_at` (a 16-bit read), not `u8_at` (LLVM computed the
//!   pointer twice: "offset is outside of the packet").
//! * The IPv6 accumulator is laundered (`Bytes::launder`) after each character; without it
//!   the program went over 1M processed instructions.
//!
//! Callers: after `parse` the payload length known to the verifier depends on where the
//! scans stopped; code that then reads the same payload at constant offsets makes the
//! verifier walk it once per stopping point. Call `parse` last, or give later code a payload
//! window built anew.
//!
//! SDP is case-sensitive (`IN`, `IP4`, `audio`); lines may end in CRLF or a bare LF.
//!
//! Packets needed: the one SIP message that carries the offer or answer (INVITE, 183, 200,
//! ACK, PRACK, UPDATE: `Sip::may_carry_sdp`). The engine turns [`Sdp::endpoints`] into
//! expectations for the media flows (state shared across flows: XDP class X). nDPI has no
//! equivalent (it finds RTP by its own 3-packet heuristic, `rtp.c`); this is ours.
//!
//! Not handled: a media-level `c=` line that differs from the first `c=` line (only the first
//! is read), `a=rtcp:` (RFC 3605) and `a=rtcp-mux` (RFC 5761): RTCP is assumed on port + 1,
//! host names in `c=`, and SDP beyond the first [`SCAN_LEN`] bytes of the payload.

use crate::Bytes;

use super::{Endpoint, tag4};

/// SDP lines are looked for when they start (their newline) in the first `SCAN_LEN` bytes.
pub const SCAN_LEN: usize = 1500;
/// Shorter payloads carry no SDP worth reading: a SIP start line plus SDP's mandatory `v=`,
/// `o=`, `s=`, `t=` and a `c=` and `m=` line are longer.
pub const MIN_LEN: usize = 64;

const C_LINE: u32 = tag4(b"\nc=I");
const M_AUDIO: u32 = tag4(b"\nm=a");
const M_VIDEO: u32 = tag4(b"\nm=v");

/// What [`parse`] found. `Default` is "nothing".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sdp {
    /// The connection address and whether it is IPv6 (an IPv4 address uses the first 4 bytes).
    pub addr: Option<([u8; 16], bool)>,
    /// RTP ports of the first audio and the first video stream; 0 = none or disabled.
    pub ports: [u16; 2],
}

impl Sdp {
    /// The media endpoints to expect: for each stream with a port, RTP on the port and RTCP on
    /// port + 1 (RFC 3550 §11). Nothing without a connection address, and nothing for the
    /// unspecified address 0.0.0.0 / :: (RFC 3264 §8.4: the stream is on hold).
    pub fn endpoints(&self) -> impl Iterator<Item = Endpoint> {
        let sdp = *self;
        (0..4).filter_map(move |k| sdp.endpoint(k))
    }

    /// One of [`Sdp::endpoints`] by index: 0 audio RTP, 1 audio RTCP, 2 video RTP, 3 video
    /// RTCP; `None` where there is none. For BPF code, where `for k in 0..4` over this costs the
    /// verifier less than the iterator.
    #[inline(always)]
    pub fn endpoint(&self, k: usize) -> Option<Endpoint> {
        let (addr, ipv6) = self.addr?;
        let port = *self.ports.get(k / 2)?;
        if addr == [0; 16] || port == 0 {
            return None;
        }
        let port = if k.is_multiple_of(2) { port } else { port.checked_add(1)? };
        Some(Endpoint { addr, port, ipv6 })
    }

    /// Neither an address nor a port was found.
    pub fn is_empty(&self) -> bool {
        self.addr.is_none() && self.ports == [0, 0]
    }
}

/// [`parse`]'s result as plain fields, for BPF code ([`parse_into`]): no `Option`, every field
/// defined on every path. `Default` is "nothing".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Media {
    /// The connection address (an IPv4 address uses the first 4 bytes); zeros without one.
    pub addr: [u8; 16],
    /// 4 or 6: the family of `addr`; 0: no address found.
    pub family: u8,
    /// RTP ports of the first audio and the first video stream; 0 = none or disabled.
    pub ports: [u16; 2],
}

impl Media {
    /// The same as an [`Sdp`].
    pub fn sdp(&self) -> Sdp {
        Sdp { addr: if self.family == 0 { None } else { Some((self.addr, self.family == 6)) }, ports: self.ports }
    }
}

/// Finds the media address and ports announced by the SDP body of a SIP message.
#[inline(always)]
pub fn parse<B: Bytes + ?Sized>(pl: &B) -> Sdp {
    let mut m = Media::default();
    parse_into(pl, &mut m);
    m.sdp()
}

/// [`parse`] for BPF code: writes what it finds into `out` (which should start as
/// `Media::default()`), field by field and only where found.
///
/// Why not a returned `Sdp`: its `addr` is an `Option` whose payload is undefined on the
/// `None` path, and LLVM assembled the returned struct from whatever register was there (a
/// packet pointer), masking it (`&=`): the verifier refuses any arithmetic on a pointer, even
/// when the result is never used. Here no value is built from an `Option`'s payload: every
/// helper below returns plain values (0 / `false` for "none") or writes `out` on success.
#[inline(always)]
pub fn parse_into<B: Bytes + ?Sized>(pl: &B, out: &mut Media) {
    // The first read at a high constant offset, here where it can only fail: the reads
    // below then never tell the verifier more about the payload length than that it is at
    // least MIN_LEN, whichever character a parser stopped at (it would otherwise keep one
    // state per stopping point).
    if pl.u8_at(MIN_LEN - 1).is_none() {
        return;
    }
    let Some(v) = Verifier::new(pl) else { return };
    // All three scans first: each returns an offset that the verifier sees as the same value
    // whether the line was found or not, and wherever it was.
    let c = find(pl, v, C_LINE);
    let audio = find(pl, v, M_AUDIO);
    let video = find(pl, v, M_VIDEO);
    connection(pl, v, c, out);
    out.ports[0] = media_port(pl, v, audio, M_AUDIO, tag4(b"udio"));
    out.ports[1] = media_port(pl, v, video, M_VIDEO, tag4(b"ideo"));
}

/// Offsets found by `find` are below this constant (the verifier then bounds the reads at
/// them).
const OFFSET_MASK: usize = 0x7FF;
const _: () = assert!(SCAN_LEN <= OFFSET_MASK);

/// Helps the BPF verifier merge states. It walks every path of the program, and keeps apart
/// two states at the same instruction when a register it needs exactly (a loop counter, an
/// offset, the payload length an earlier read narrowed) holds different values. A loop that
/// counts digits, or stops at a data-dependent offset, makes it walk the rest of the code once
/// per value. `Verifier::forget` turns such a value into a range: at run time `zero` is 0 and
/// `forget(x, mask)` is `x`; to the verifier, `zero` is some number in `0..=OFFSET_MASK`, so
/// the result is "anything in `0..=mask`", the same on every path.
#[derive(Clone, Copy)]
struct Verifier {
    zero: usize,
}

impl Verifier {
    /// From the first two payload bytes (any value; `None` if there are not two): data the
    /// verifier cannot know on any path. (The payload length will not do: on the path where
    /// it is 0 it is a known constant.)
    #[inline(always)]
    fn new<B: Bytes + ?Sized>(pl: &B) -> Option<Self> {
        let w = pl.be16(0)? as usize;
        // `black_box` keeps LLVM from folding w ^ w; the verifier does not fold it either.
        Some(Verifier { zero: (core::hint::black_box(w) ^ w) & OFFSET_MASK })
    }

    /// `x` (which must be <= `mask`, a power of two minus one), as a range `0..=mask`.
    /// `black_box`: LLVM would otherwise mask later, leaving the exact value in a register.
    #[inline(always)]
    fn forget(self, x: usize, mask: usize) -> usize {
        core::hint::black_box((x + self.zero) & mask)
    }
}

/// Offset of the first `tag` (`\n` and three bytes that are not `\n`) that starts in the
/// first [`SCAN_LEN`] bytes, or [`NOT_FOUND`]. The parsers check the offset and the tag again
/// where they read, so "not found" is not a different state for the verifier.
///
/// Reads 8 bytes per 4-byte step (from `zero`, so that no read has an outcome the verifier
/// knows in advance). A tag that starts among the first 4 of them starts at their last `\n`,
/// which SWAR finds without a branch; that one window is compared. The loop leaves at the
/// first hit with a widened offset (`Verifier::forget`), so every exit looks the same to the
/// verifier.
#[inline(always)]
fn find<B: Bytes + ?Sized>(pl: &B, v: Verifier, tag: u32) -> usize {
    for k in 0..SCAN_LEN / 4 {
        let i = v.zero + 4 * k;
        // A tag in the last 7 bytes has no room for a value after it.
        let Some(b) = pl.array::<8>(i) else { break };
        let word = u64::from_be_bytes(b);
        // 0-3: how far the last `\n` of bytes i..i+4 is from byte i + 3 (0 when there is none;
        // the window at i + 3 then does not start with `\n` and cannot match).
        let back = last_newline(word >> 32);
        if (word >> (8 + 8 * back)) as u32 == tag {
            return v.forget(i + 3 - back, OFFSET_MASK);
        }
    }
    v.forget(NOT_FOUND, OFFSET_MASK)
}

/// `find`'s "not found": an offset past [`SCAN_LEN`].
const NOT_FOUND: usize = OFFSET_MASK;

/// For the 4 bytes in the low half of `w` (big-endian: the last byte is the lowest): how many
/// bytes before the last one the last `\n` is, 0-3 (0 if there is none). SWAR zero-byte test on
/// `w ^ 0x0a0a0a0a`: its lowest flag is always exact (borrows only run upwards), and it marks
/// the last `\n`.
#[inline(always)]
fn last_newline(w: u64) -> usize {
    let x = (w as u32) ^ 0x0A0A_0A0A;
    let flags = x.wrapping_sub(0x0101_0101) & !x & 0x8080_8080;
    // The lowest flag alone: 0, or bit 7, 15, 23 or 31. `black_box`: knowing it is a power of
    // two, LLVM would turn the arithmetic below into selects, which are branches on BPF.
    let low = core::hint::black_box(flags.isolate_lowest_one());
    // Its byte index, 0-3, from shifts only: bit 0 set for bits 15 and 31, bit 1 for 23 and 31.
    (((low >> 15 | low >> 31) & 1) | ((low >> 22 | low >> 30) & 2)) as usize
}

/// `\nc=IN IP4 addr` or `\nc=IN IP6 addr` at `at` (the newline): the address and its family
/// into `out`, which is left as it is when there is none.
#[inline(always)]
fn connection<B: Bytes + ?Sized>(pl: &B, v: Verifier, at: usize, out: &mut Media) {
    if at >= SCAN_LEN
        || pl.be32(at) != Some(C_LINE)
        || pl.be32(at + 4) != Some(tag4(b"N IP"))
        || pl.u8_at(at + 9) != Some(b' ')
    {
        return;
    }
    match pl.u8_at(at + 8) {
        Some(b'4') => ipv4(pl, v, at + 10, out),
        Some(b'6') => ipv6(pl, v, at + 10, out),
        _ => {}
    }
}

/// The port of `\nm=audio PORT` / `\nm=video PORT` at `at` (`tag` is `\nm=a` or `\nm=v`,
/// `rest` the word after it); 0 if malformed.
#[inline(always)]
fn media_port<B: Bytes + ?Sized>(pl: &B, v: Verifier, at: usize, tag: u32, rest: u32) -> u16 {
    if at >= SCAN_LEN || pl.be32(at) != Some(tag) || pl.be32(at + 4) != Some(rest) || pl.u8_at(at + 8) != Some(b' ') {
        return 0;
    }
    port(pl, v, at + 9)
}

/// A decimal port of 1-5 digits at `at`, ended by a space or `/` (`PORT/count`), <= 65535;
/// 0 if malformed.
#[inline(always)]
fn port<B: Bytes + ?Sized>(pl: &B, v: Verifier, at: usize) -> u16 {
    let mut value = 0usize;
    for k in 0..6 {
        let Some(c) = byte_at(pl, at + k) else { return 0 };
        if !c.is_ascii_digit() || k == 5 {
            return if k > 0 && matches!(c, b' ' | b'/') && value <= 0xFFFF { value as u16 } else { 0 };
        }
        value = v.forget(value * 10 + (c - b'0') as usize, 0x1_FFFF);
    }
    0
}

/// The byte at `at` (which must be >= 1), or `None` past the payload: the low byte of the
/// 16-bit word that ends there, which is readable exactly when the byte is.
///
/// For the parsers' loops, where `pl.u8_at(at + k)` failed the verifier in the engine: for a
/// one-byte read the packet's `load` hides the size from LLVM (`black_box(1)`), and LLVM then
/// computed the packet pointer twice, `off + (start + 1)` for the bounds check and
/// `off + start` for the read; the verifier knows the check only for the first ("R7 offset
/// is outside of the packet"). A two-byte read has a constant size, and one pointer.
/// `opaque`: LLVM would fold the `- 1` into the pointer (docs/verifier.md).
#[inline(always)]
fn byte_at<B: Bytes + ?Sized>(pl: &B, at: usize) -> Option<u8> {
    let w = pl.be16(crate::bytes::opaque(at - 1))?;
    Some(w as u8)
}

/// Whether `c` may follow an address in a `c=` line: end of line, a space, or `/` (TTL or
/// address count).
#[inline(always)]
fn ends_address(c: u8) -> bool {
    matches!(c, b'\r' | b'\n' | b' ' | b'/')
}

/// A dotted-quad IPv4 address at `at`: four decimal octets of 1-3 digits, each <= 255, at most
/// 15 characters, then [`ends_address`]. Into `out` (family 4) if well-formed.
#[inline(always)]
fn ipv4<B: Bytes + ?Sized>(pl: &B, v: Verifier, at: usize, out: &mut Media) {
    let (mut addr, mut octet, mut digits, mut dots) = (0u32, 0usize, 0usize, 0usize);
    for k in 0..16 {
        let Some(c) = byte_at(pl, at + k) else { return };
        if c.is_ascii_digit() {
            octet = octet * 10 + (c - b'0') as usize;
            digits += 1;
            if digits > 3 || octet > 255 {
                return;
            }
        } else {
            if digits == 0 {
                return;
            }
            addr = addr << 8 | octet as u32;
            if ends_address(c) {
                if dots == 3 {
                    let [a, b, c, d] = addr.to_be_bytes();
                    (out.addr[0], out.addr[1], out.addr[2], out.addr[3]) = (a, b, c, d);
                    out.family = 4;
                }
                return;
            }
            if c != b'.' || dots == 3 {
                return;
            }
            (octet, digits, dots) = (0, 0, dots + 1);
        }
        (octet, digits, dots) = (v.forget(octet, 0xFF), v.forget(digits, 3), v.forget(dots, 3));
    }
}

/// An IPv6 address in text form (RFC 4291 §2.2) at `at`: up to 8 groups of 1-4 hex digits,
/// one `::` at most, at most 39 characters, then [`ends_address`]. The embedded-IPv4 form
/// (`::ffff:192.0.2.1`) is not accepted. Into `out` (family 6) if well-formed.
#[inline(always)]
fn ipv6<B: Bytes + ?Sized>(pl: &B, v: Verifier, at: usize, out: &mut Media) {
    // Closed groups are shifted into a 128-bit accumulator (hi, lo); at `::` it moves to
    // `head` (with `head_n` groups) and collects the tail from then on.
    let (mut hi, mut lo, mut head_hi, mut head_lo) = (0u64, 0u64, 0u64, 0u64);
    let (mut group, mut digits, mut groups, mut head_n) = (0usize, 0usize, 0usize, 0usize);
    // Flags as 0/1 numbers, so that they can be widened like the counters.
    let (mut compressed, mut prev_colon) = (0usize, 0usize);
    for k in 0..40 {
        let Some(c) = byte_at(pl, at + k) else { return };
        let nibble = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => 0xFF,
        };
        let end = ends_address(c);
        if nibble != 0xFF {
            // A lone leading ':' is not an address; a group has 4 digits at most.
            if (k == 1 && prev_colon == 1) || digits == 4 {
                return;
            }
            (group, digits, prev_colon) = (group << 4 | nibble as usize, digits + 1, 0);
        } else if c != b':' && !end {
            return;
        } else if digits > 0 {
            // The group is closed by ':' or by the end of the address.
            if groups == 8 {
                return;
            }
            (hi, lo) = (hi << 16 | lo >> 48, lo << 16 | group as u64);
            (group, digits, groups, prev_colon) = (0, 0, groups + 1, 1);
        } else if c == b':' && prev_colon == 1 {
            // `::`, once.
            if compressed == 1 {
                return;
            }
            (head_hi, head_lo, hi, lo) = (hi, lo, 0, 0);
            (head_n, compressed) = (groups, 1);
        } else if c == b':' && k == 0 {
            // The first ':' of a leading `::`.
            prev_colon = 1;
        } else if !(end && prev_colon == 1 && compressed == 1 && head_n == groups && k > 1) {
            // An empty group (`1:`, `1::2:`); only `::` may end the address.
            return;
        }
        if end {
            return assemble(compressed == 1, head_n, groups, (head_hi, head_lo), (hi, lo), out);
        }
        group = v.forget(group, 0xFFFF);
        digits = v.forget(digits, 7);
        groups = v.forget(groups, 15);
        head_n = v.forget(head_n, 15);
        compressed = v.forget(compressed, 1);
        prev_colon = v.forget(prev_colon, 1);
        // The accumulator's known bits (how many groups were shifted in) would keep one
        // verifier state per count; laundered, it is an unknown number on every path.
        let Some(h) = pl.launder(hi as usize, usize::MAX) else { return };
        let Some(l) = pl.launder(lo as usize, usize::MAX) else { return };
        (hi, lo) = (h as u64, l as u64);
    }
}

/// The 16 address bytes from the groups read by [`ipv6`]: all 8 groups in `tail`, or
/// `head_n` groups in `head`, then zeros, then the rest of the groups in `tail`. Into `out`
/// (family 6) if the groups make an address.
#[inline(always)]
fn assemble(compressed: bool, head_n: usize, groups: usize, head: (u64, u64), tail: (u64, u64), out: &mut Media) {
    let (hi, lo) = if !compressed {
        if groups != 8 {
            return;
        }
        tail
    } else {
        if groups > 7 {
            return;
        }
        // Shift the head left by one group per group it does not have.
        let (mut hi, mut lo) = head;
        for k in 0..8 {
            if k >= head_n {
                (hi, lo) = (hi << 16 | lo >> 48, lo << 16);
            }
        }
        (hi | tail.0, lo | tail.1)
    };
    out.addr = bytes128((hi, lo));
    out.family = 6;
}

#[inline(always)]
fn bytes128((hi, lo): (u64, u64)) -> [u8; 16] {
    let (h, l) = (hi.to_be_bytes(), lo.to_be_bytes());
    [h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7]]
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn v4(a: [u8; 4]) -> Option<([u8; 16], bool)> {
        let mut b = [0; 16];
        b[..4].copy_from_slice(&a);
        Some((b, false))
    }

    fn v6(s: &str) -> Option<([u8; 16], bool)> {
        Some((s.parse::<Ipv6Addr>().unwrap().octets(), true))
    }

    fn p(s: &[u8]) -> Sdp {
        parse(s)
    }

    /// `body` behind the first lines of an INVITE (RFC 3261 §24.2 F1), as SDP travels.
    fn sip(body: &str) -> Vec<u8> {
        let mut v = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\nContent-Type: application/sdp\r\n\r\n".to_vec();
        v.extend_from_slice(body.as_bytes());
        v
    }

    /// A `c=` line's address as `parse` reads it.
    fn addr_of(text: &str) -> Option<([u8; 16], bool)> {
        p(&sip(&format!("v=0\r\nc=IN {text}\r\nt=0 0\r\n"))).addr
    }

    // RFC 4566 §5 example session description (LF line ends, as printed there).
    const RFC4566: &[u8] = b"\nv=0\no=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\ns=SDP Seminar\n\
i=A Seminar on the session description protocol\nu=http://www.example.com/seminars/sdp.pdf\n\
e=j.doe@example.com (Jane Doe)\nc=IN IP4 224.2.17.12/127\nt=2873397496 2873404696\n\
a=recvonly\nm=audio 49170 RTP/AVP 0\nm=video 51372 RTP/AVP 99\na=rtpmap:99 h263-1998/90000\n";

    // RFC 3264 §10.1, Alice's offer (audio and video), behind the SIP headers of an INVITE.
    const RFC3264_INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\nMax-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\nFrom: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\nCSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\nContent-Type: application/sdp\r\nContent-Length: 244\r\n\r\n\
v=0\r\no=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com\r\ns=\r\n\
c=IN IP4 192.0.2.101\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 51372 RTP/AVP 31\r\na=rtpmap:31 H261/90000\r\n";

    // sip.pcap, frame 87: INVITE from 192.168.1.2:5060 to 212.242.33.35:5060 (SIP headers
    // shortened, SDP body complete).
    const PCAP_INVITE: &[u8] = b"INVITE sip:35104724@sip.cybercity.dk SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKnp11888298-448e3777192.168.1.2;rport\r\n\
From: \"arik\" <sip:35104723@sip.cybercity.dk>;tag=b56e6e\r\nTo: <sip:35104724@sip.cybercity.dk>\r\n\
Call-ID: 11894297-4432a9f8@192.168.1.2\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n\
Content-Length: 270\r\n\r\nv=0\r\no=SIPPS 11888330 11888327 IN IP4 192.168.1.2\r\ns=SIP call\r\n\
c=IN IP4 192.168.1.2\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0 8 97 2 3\r\na=rtpmap:0 pcmu/8000\r\n\
a=rtpmap:8 pcma/8000\r\na=rtpmap:97 iLBC/8000\r\na=rtpmap:2 G726-32/8000\r\na=rtpmap:3 GSM/8000\r\n\
a=fmtp:97 mode=20\r\na=sendrecv\r\n";

    // sip.pcap, frame 92: the 183 answer from 212.242.33.35 (SDP body complete). Its media
    // leg, 192.168.1.2:30000 <-> 212.242.33.36:40392, is the capture's RTP flow.
    const PCAP_183: &[u8] = b"SIP/2.0 183 In band info available\r\nAllow: UPDATE,REFER\r\n\
Call-ID: 11894297-4432a9f8@192.168.1.2\r\nContact: <sip:212.242.33.35:5060>\r\n\
Content-Type: application/sdp\r\nCSeq: 2 INVITE\r\nContent-Length: 199\r\n\r\nv=0\r\n\
o=cp10 112047106116 112047106116 IN IP4 212.242.33.75\r\ns=SIP Call\r\nc=IN IP4 212.242.33.36\r\n\
t=0 0\r\nm=audio 40392 RTP/AVP 8 0\r\nb=AS:64\r\na=rtpmap:8 PCMA/8000/1\r\na=rtpmap:0 PCMU/8000/1\r\n\
a=ptime:20\r\n";

    #[test]
    fn rfc_examples() {
        let s = p(RFC4566);
        assert_eq!(s, Sdp { addr: v4([224, 2, 17, 12]), ports: [49170, 51372] });
        let s = p(RFC3264_INVITE);
        assert_eq!(s, Sdp { addr: v4([192, 0, 2, 101]), ports: [49172, 51372] });
        let a = [192, 0, 2, 101, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let e: Vec<_> = s.endpoints().collect();
        assert_eq!(
            e,
            [49172, 49173, 51372, 51373].map(|port| Endpoint { addr: a, port, ipv6: false }),
            "RTP and RTCP of audio, then video"
        );
        assert_eq!((0..4).map(|k| s.endpoint(k)).collect::<Vec<_>>(), e.iter().copied().map(Some).collect::<Vec<_>>());
        assert_eq!(s.endpoint(4), None);
        let audio_only = Sdp { ports: [49172, 0], ..s };
        assert_eq!(audio_only.endpoint(2), None);
        assert_eq!(audio_only.endpoints().count(), 2);
    }

    #[test]
    fn corpus_invite_and_answer() {
        assert_eq!(p(PCAP_INVITE), Sdp { addr: v4([192, 168, 1, 2]), ports: [30000, 0] });
        let s = p(PCAP_183);
        assert_eq!(s, Sdp { addr: v4([212, 242, 33, 36]), ports: [40392, 0] });
        let ports: Vec<_> = s.endpoints().map(|e| e.port).collect();
        assert_eq!(ports, [40392, 40393]);
    }

    #[test]
    fn ipv6_connection() {
        // RFC 4566 §5.7 example address forms, and RFC 4291 §2.2 text forms.
        for (text, want) in [
            ("2001:db8::1", "2001:db8::1"),
            ("FF15::101", "ff15::101"),
            ("2001:DB8:0:0:8:800:200C:417A", "2001:db8::8:800:200c:417a"),
            ("1080::8:800:200c:417a", "1080::8:800:200c:417a"),
            ("::1", "::1"),
            ("::", "::"),
            ("fe80::", "fe80::"),
            ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
            ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ("1::8", "1::8"),
            ("1:2::7:8", "1:2::7:8"),
            ("0000:0000:0000:0000:0000:0000:0000:0001", "::1"),
        ] {
            assert_eq!(addr_of(&format!("IP6 {text}")), v6(want), "{text}");
        }
        let s = p(&sip("v=0\nc=IN IP6 2001:db8::c0a8:102/3\nm=audio 5004 RTP/AVP 0\n"));
        assert_eq!(s.addr, v6("2001:db8::c0a8:102"), "LF line ends, address count");
        assert_eq!(s.endpoints().count(), 2);
        assert!(s.endpoints().all(|e| e.ipv6));
    }

    #[test]
    fn ipv6_garbage_is_none() {
        for text in [
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7",
            "1::2::3",
            ":::",
            "1:::2",
            ":1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:",
            "1:2:3:4:5:6:7:8::",
            "::1:2:3:4:5:6:7:8",
            "12345::1",
            "g::1",
            "::ffff:192.0.2.1",
            ":",
            "",
            "2001:db8::1%eth0",
            "2001:0db8:0000:0000:0000:ff00:0042:8329:",
            "host.example.com",
        ] {
            assert_eq!(addr_of(&format!("IP6 {text}")), None, "{text:?}");
        }
        // More than 39 characters before the end of the address.
        assert_eq!(addr_of("IP6 0000:0000:0000:0000:0000:0000:0000:00001"), None);
    }

    #[test]
    fn ipv4_forms() {
        assert_eq!(addr_of("IP4 0.0.0.0"), v4([0, 0, 0, 0]));
        assert_eq!(addr_of("IP4 255.255.255.255"), v4([255; 4]));
        assert_eq!(addr_of("IP4 224.2.1.1/127/3"), v4([224, 2, 1, 1]));
        assert_eq!(addr_of("IP4 10.0.0.1 "), v4([10, 0, 0, 1]));
        assert_eq!(addr_of("IP4 010.001.000.009"), v4([10, 1, 0, 9]));
        for text in [
            "IP4 400.1.2.3",
            "IP4 256.1.2.3",
            "IP4 1.2.3.256",
            "IP4 1.2.3",
            "IP4 1.2.3.4.5",
            "IP4 1..2.3",
            "IP4 .1.2.3",
            "IP4 1.2.3.",
            "IP4 1.2.3.4x",
            "IP4 0001.2.3.4",
            "IP4 host.atlanta.example.com",
            "IP4 ",
            "IP5 1.2.3.4",
            "ip4 1.2.3.4",
            "IPX 1.2.3.4",
        ] {
            assert_eq!(addr_of(text), None, "{text:?}");
        }
        assert_eq!(p(&sip("v=0\r\nc=IN  IP4 1.2.3.4\r\n")).addr, None);
        assert_eq!(p(&sip("v=0\r\nc=in IP4 1.2.3.4\r\n")).addr, None);
    }

    #[test]
    fn ports() {
        let port = |line: &str| p(&sip(&format!("v=0\r\nc=IN IP4 1.2.3.4\r\n{line}\r\n"))).ports;
        assert_eq!(port("m=audio 0 RTP/AVP 0"), [0, 0], "disabled");
        assert_eq!(port("m=audio 65535 RTP/AVP 0"), [65535, 0]);
        assert_eq!(port("m=audio 65536 RTP/AVP 0"), [0, 0]);
        assert_eq!(port("m=audio 99999 RTP/AVP 0"), [0, 0]);
        assert_eq!(port("m=audio 123456 RTP/AVP 0"), [0, 0]);
        assert_eq!(port("m=video 49170/2 RTP/AVP 31"), [0, 49170], "port/count");
        assert_eq!(port("m=audio RTP/AVP 0"), [0, 0]);
        assert_eq!(port("m=audio -1 RTP/AVP 0"), [0, 0]);
        assert_eq!(port("m=audio 5004\tRTP/AVP 0"), [0, 0]);
        assert_eq!(port("m=audiox 5004 RTP/AVP 0"), [0, 0]);
        assert_eq!(port("m=application 5004 UDP/BFCP *"), [0, 0]);
        assert_eq!(port("m=text 5004 RTP/AVP 98"), [0, 0]);
        // First of each kind wins; a disabled first stream is not replaced by a later one.
        assert_eq!(port("m=audio 1000 RTP/AVP 0\r\nm=audio 2000 RTP/AVP 0"), [1000, 0]);
        assert_eq!(port("m=video 3000 RTP/AVP 0\r\nm=audio 2000 RTP/AVP 0"), [2000, 3000]);
        assert_eq!(port("m=audio 0 RTP/AVP 0\r\nm=audio 2000 RTP/AVP 0"), [0, 0]);
        // The 65535 port has no RTCP port above it.
        let s = p(&sip("c=IN IP4 1.2.3.4\nm=audio 65535 RTP/AVP 0\n"));
        assert_eq!(s.endpoints().map(|e| e.port).collect::<Vec<_>>(), [65535]);
    }

    #[test]
    fn endpoints_need_an_address() {
        let s = p(&sip("v=0\r\nm=audio 5004 RTP/AVP 0\r\n"));
        assert_eq!(s, Sdp { addr: None, ports: [5004, 0] });
        assert_eq!(s.endpoints().count(), 0);
        let hold = p(&sip("v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 5004 RTP/AVP 0\r\n"));
        assert_eq!(hold.endpoints().count(), 0, "on hold");
        assert!(p(b"").is_empty());
        assert!(!s.is_empty());
    }

    #[test]
    fn first_connection_line_wins() {
        let s = p(&sip("v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 5004 RTP/AVP 0\r\nc=IN IP4 192.0.2.2\r\n"));
        assert_eq!(s.addr, v4([192, 0, 2, 1]));
        // A malformed first c= line is not replaced by a later one.
        let s = p(&sip("v=0\r\nc=IN IP4 999.0.2.1\r\nm=audio 5004 RTP/AVP 0\r\nc=IN IP4 192.0.2.2\r\n"));
        assert_eq!(s.addr, None);
    }

    #[test]
    fn lines_at_the_edges_of_the_window() {
        // A line is found when its newline is among the first SCAN_LEN bytes.
        for pad in [0, 1, 2, 3, 100, SCAN_LEN - 30, SCAN_LEN - 5, SCAN_LEN - 4, SCAN_LEN - 3, SCAN_LEN - 1, SCAN_LEN] {
            let mut v = vec![b'x'; pad];
            let line_at = v.len();
            v.extend_from_slice(b"\nm=audio 5004 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n");
            let want = if line_at < SCAN_LEN { 5004 } else { 0 };
            assert_eq!(p(&v).ports[0], want, "line at {line_at}");
        }
    }

    #[test]
    fn last_newline_matches_bytewise() {
        let probe = [b'\n', b'\r', 0, 0x0B, 0x8A, b'x', 0xFF];
        for a in probe {
            for b in probe {
                for c in probe {
                    for d in probe {
                        let w = u32::from_be_bytes([a, b, c, d]) as u64 | 0xDEAD_BEEF_0000_0000;
                        let want = [d, c, b, a].iter().position(|&x| x == b'\n').unwrap_or(0);
                        assert_eq!(last_newline(w), want, "{:02x?}", [a, b, c, d]);
                    }
                }
            }
        }
    }

    #[test]
    fn tags_at_every_alignment() {
        for pad in 0..12 {
            for lf in ["\n", "\r\n", "\n\n", "\r\n\n"] {
                let mut v = vec![b'x'; pad];
                v.extend_from_slice(
                    format!("v=0{lf}c=IN IP4 192.0.2.7{lf}m=video 7000 RTP/AVP 96{lf}m=audio 6000 RTP/AVP 0{lf}")
                        .as_bytes(),
                );
                assert_eq!(p(&v), Sdp { addr: v4([192, 0, 2, 7]), ports: [6000, 7000] }, "pad {pad}, {lf:?}");
            }
        }
    }

    #[test]
    fn shorter_than_min_len_is_not_read() {
        let mut v = b"v=0\nc=IN IP4 192.0.2.1\nm=audio 5004 RTP/AVP 0\n".to_vec();
        v.resize(MIN_LEN - 1, b'\n');
        assert!(p(&v).is_empty());
        v.push(b'\n');
        assert_eq!(p(&v), Sdp { addr: v4([192, 0, 2, 1]), ports: [5004, 0] });
    }

    #[test]
    fn nothing_past_the_window() {
        // "Not found" is offset OFFSET_MASK; a real line there is still outside the window.
        let mut v = vec![b'x'; OFFSET_MASK];
        v.extend_from_slice(b"\nc=IN IP4 192.0.2.1\r\nm=audio 5004 RTP/AVP 0\r\nm=video 5006 RTP/AVP 0\r\n");
        assert!(p(&v).is_empty());
    }

    #[test]
    fn no_sdp() {
        for pl in [
            &b"REGISTER sip:sip.cybercity.dk SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.2\r\nContent-Length: 0\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01",
            b"",
            b"\n",
            b"\nc=I",
            b"\nm=a",
        ] {
            assert!(p(pl).is_empty(), "{pl:?}");
        }
    }

    #[test]
    fn every_truncation_is_safe() {
        // A cut payload never panics and never yields a value the full payload does not have:
        // an address or port cut short must not parse as a shorter one.
        for full in [RFC4566, RFC3264_INVITE, PCAP_INVITE, PCAP_183] {
            let whole = p(full);
            for n in 0..full.len() {
                let cut = p(&full[..n]);
                assert!(cut.addr.is_none() || cut.addr == whole.addr, "{n}: {cut:?}");
                for k in 0..2 {
                    assert!(cut.ports[k] == 0 || cut.ports[k] == whole.ports[k], "{n}: {cut:?}");
                }
            }
        }
        // Cut right after the address or port digits: they could go on, so nothing.
        assert_eq!(p(&sip("c=IN IP4 192.0.2.1")).addr, None);
        assert_eq!(p(&sip("c=IN IP6 2001:db8::1")).addr, None);
        assert_eq!(p(&sip("m=audio 5004")).ports, [0, 0]);
        assert_eq!(p(&sip("c=IN IP4 192.0.2.1\n")).addr, v4([192, 0, 2, 1]));
        assert_eq!(p(&sip("m=audio 5004 ")).ports, [5004, 0]);
    }

    #[test]
    fn agrees_with_std_on_generated_addresses() {
        let mut x = 0x0123_4567_89AB_CDEFu64;
        let mut next = || {
            x = crate::testing::xorshift(x);
            x
        };
        for _ in 0..3000 {
            let r = next();
            let a4 = Ipv4Addr::from((r >> 32) as u32);
            assert_eq!(addr_of(&format!("IP4 {a4}")), v4(a4.octets()), "{a4}");
            // Sparse IPv6 addresses so that `::` compression shows up in many places.
            let mut g = [0u16; 8];
            for (k, v) in g.iter_mut().enumerate() {
                if (r >> (k * 3)) & 3 != 0 {
                    *v = (next() & 0xFFFF) as u16;
                }
            }
            let a6 = Ipv6Addr::from(g);
            assert_eq!(addr_of(&format!("IP6 {a6}")), v6(&a6.to_string()), "{a6}");
            let full = g.iter().map(|v| format!("{v:x}")).collect::<Vec<_>>().join(":");
            assert_eq!(addr_of(&format!("IP6 {full}")), v6(&a6.to_string()), "{full}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x = 0xA076_1D64_78BD_642Fu64;
        let mut next = || {
            x = crate::testing::xorshift(x);
            x as u8
        };
        let alphabet = b"\r\n :./0123456789abcdefABCDEF=cmIPNaudiovideo46";
        for len in [0, 1, 3, 4, 10, 50, 200, 1499, 1500, 1501, 2000] {
            for _ in 0..50 {
                let v: Vec<u8> = (0..len).map(|_| alphabet[next() as usize % alphabet.len()]).collect();
                let s = p(&v);
                let _ = s.endpoints().count();
            }
        }
    }
}
