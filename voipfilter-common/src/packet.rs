//! Ethernet / VLAN / IPv4 / IPv6 / UDP / TCP parsing, generic over [`Bytes`].
//!
//! The parser never fails hard: a frame it cannot read to the L4 ports yields a [`Reason`]
//! (counted by the XDP program), and whatever it did read (the IP addresses) is still returned so
//! that prefix rules apply to, say, later fragments and ICMP. All offsets stay below constant
//! bounds so that the verifier can follow them.

use crate::{Bytes, Reason};

pub const ETH_HLEN: usize = 14;
pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
/// 802.1Q C-tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// 802.1ad S-tag (QinQ outer tag).
pub const ETH_P_8021AD: u16 = 0x88A8;
/// Pre-standard QinQ outer tag still seen on some gear.
pub const ETH_P_QINQ_9100: u16 = 0x9100;
/// VLAN tags read before giving up (802.1ad outer + 802.1Q inner).
pub const MAX_VLANS: usize = 2;
/// IPv6 extension headers walked before giving up.
pub const MAX_IPV6_EXT: usize = 8;
/// Largest L4 header offset followed. Bounds every offset for the verifier.
pub const MAX_L4_OFF: usize = 512;

pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const GRE: u8 = 47;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const SCTP: u8 = 132;
    // IPv6 extension headers.
    pub const HOPOPT: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const NONE: u8 = 59;
    pub const DSTOPTS: u8 = 60;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
}

/// Fragment position of the IP datagram.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Frag {
    /// Not fragmented.
    #[default]
    None = 0,
    /// First fragment (offset 0, more fragments follow): carries the L4 header.
    First = 1,
    /// Any later fragment: no L4 header.
    Later = 2,
}

/// Tunnel the returned headers were found in (the headers are the inner ones).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Tunnel {
    #[default]
    None = 0,
    /// GTP-U G-PDU (3GPP TS 29.281) on UDP 2152: the user plane of 3G/4G/5G mobile cores.
    GtpU = 1,
    /// GRE (RFC 2784/2890) carrying IPv4, IPv6 or Ethernet (transparent bridging).
    Gre = 2,
}

/// UDP port of GTP-U.
pub const GTPU_PORT: u16 = 2152;
const GRE_P_TEB: u16 = 0x6558;

/// What the parser read. Addresses are 16 bytes; an IPv4 address uses the first 4.
/// `repr(C)`: the XDP program hands it from one program to the next in a per-CPU map slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Headers {
    /// `Reason::Ok` when the L4 ports were read; otherwise why not.
    pub reason: Reason,
    pub vlans: u8,
    pub ipv6: bool,
    /// L4 protocol number (after IPv6 extension headers).
    pub proto: u8,
    pub frag: Frag,
    /// IPv4 identification or IPv6 fragment id (0 when not fragmented).
    pub frag_id: u32,
    pub l3_off: usize,
    pub l4_off: usize,
    /// Start of the L4 payload (only meaningful when `reason` is `Ok`).
    pub payload_off: usize,
    /// End of the IP datagram in the frame (excludes Ethernet padding).
    pub end: usize,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    /// Set when these are the inner headers of a tunnelled packet.
    pub tunnel: Tunnel,
}

// `src_words` and `dst_words` read the addresses as aligned words.
const _: () = assert!(
    core::mem::align_of::<Headers>() >= 8
        && core::mem::offset_of!(Headers, src) % 8 == 0
        && core::mem::offset_of!(Headers, dst) % 8 == 0
);

impl Headers {
    /// All zero (as `Headers::default()`), without a memset call in BPF.
    #[inline(always)]
    pub fn zeroed() -> Headers {
        // SAFETY: all-zero is `Headers::default()`: every enum's zero is its default variant,
        // `false`, and zero numbers; repr(C), 8-aligned, a multiple of 8 bytes.
        unsafe { crate::bytes::zeroed() }
    }

    /// Back to all zero, except `vlans`.
    #[inline(always)]
    fn reset(&mut self) {
        let vlans = self.vlans;
        *self = Headers::zeroed();
        self.vlans = vlans;
    }

    /// The source address as two native-endian words (memory order), without byte loads.
    #[inline(always)]
    pub fn src_words(&self) -> [u64; 2] {
        // SAFETY: `src` is 16 bytes at an 8-aligned offset of an 8-aligned struct (checked
        // below); every bit pattern is a valid u64.
        unsafe { core::ptr::read(self.src.as_ptr().cast::<[u64; 2]>()) }
    }

    /// Sets the first word of each address to an IPv4 address followed by four zero bytes
    /// (the second words stay as they are: zero).
    #[inline(always)]
    fn set_v4_addrs(&mut self, src: [u8; 4], dst: [u8; 4]) {
        let word = |[a, b, c, d]: [u8; 4]| u64::from_ne_bytes([a, b, c, d, 0, 0, 0, 0]);
        // SAFETY: `src` and `dst` are 8-aligned (asserted below); 8 of their 16 bytes.
        unsafe {
            core::ptr::write(self.src.as_mut_ptr().cast::<u64>(), word(src));
            core::ptr::write(self.dst.as_mut_ptr().cast::<u64>(), word(dst));
        }
    }

    /// Sets both addresses from their words in memory order (as loaded from the packet):
    /// word stores (a `[u8; 16]` assignment is stored a byte at a time in BPF).
    #[inline(always)]
    fn set_v6_addrs(&mut self, src: [u64; 2], dst: [u64; 2]) {
        // SAFETY: `src` and `dst` are 8-aligned 16-byte fields (asserted below).
        unsafe {
            core::ptr::write(self.src.as_mut_ptr().cast::<[u64; 2]>(), src);
            core::ptr::write(self.dst.as_mut_ptr().cast::<[u64; 2]>(), dst);
        }
    }

    /// The destination address as two native-endian words (memory order).
    #[inline(always)]
    pub fn dst_words(&self) -> [u64; 2] {
        // SAFETY: as in `src_words`.
        unsafe { core::ptr::read(self.dst.as_ptr().cast::<[u64; 2]>()) }
    }

    #[inline(always)]
    pub fn has_ports(&self) -> bool {
        matches!(self.reason, Reason::Ok)
    }

    #[inline(always)]
    pub fn src4(&self) -> [u8; 4] {
        // From the first word (four byte reads made LLVM split the address into pieces).
        let [a, b, c, d, ..] = self.src_words()[0].to_ne_bytes();
        [a, b, c, d]
    }

    #[inline(always)]
    pub fn dst4(&self) -> [u8; 4] {
        let [a, b, c, d, ..] = self.dst_words()[0].to_ne_bytes();
        [a, b, c, d]
    }

    /// Length of the L4 payload inside the IP datagram.
    #[inline(always)]
    pub fn payload_len(&self) -> usize {
        self.end.saturating_sub(self.payload_off)
    }
}

/// Parses a frame that starts with an Ethernet header, looking through one level of GTP-U or
/// GRE tunnel: for a tunnelled packet the inner headers are returned (`tunnel` says which
/// tunnel). If the inner packet cannot be read, the result is `Err(Truncated)` (or the reason
/// the inner header is bad).
///
/// `Err` means no IP header could be read (the reason says why); `Ok` carries the addresses
/// and, when `reason` is `Ok`, the ports.
#[inline(always)]
pub fn parse<B: Bytes + ?Sized>(p: &B) -> Result<Headers, Reason> {
    let mut h = Headers::zeroed();
    parse_into(p, &mut h, true).map(|_| h)
}

/// [`parse`] into a caller's `Headers`. With `decap` false, tunnels are not looked into: the
/// result is the outer headers and `Ok(true)` says that the packet is a GTP-U or GRE tunnel
/// packet (the XDP program continues such packets in a separate program, so that each
/// program stays within the verifier's budget). On `Err`, `h` holds partial results.
/// `h` must come in all zero ([`Headers::zeroed`]): it is not cleared again here (the 11
/// stores showed in the per-packet cost).
#[inline(always)]
pub fn parse_into<B: Bytes + ?Sized>(p: &B, h: &mut Headers, decap: bool) -> Result<bool, Reason> {
    if !parse_plain_v4(p, h) {
        parse_general(p, h)?;
    }
    after_outer(p, h, decap)
}

/// [`parse_into`] for a frame that [`parse_plain_v4`] refused (the XDP program tries that
/// first itself, so that the fast path is compiled once for its known constants).
#[inline(always)]
pub fn parse_into_general<B: Bytes + ?Sized>(p: &B, h: &mut Headers, decap: bool) -> Result<bool, Reason> {
    parse_general(p, h)?;
    after_outer(p, h, decap)
}

#[inline(always)]
fn after_outer<B: Bytes + ?Sized>(p: &B, h: &mut Headers, decap: bool) -> Result<bool, Reason> {
    if !decap {
        return Ok(is_tunnel(h));
    }
    parse_inner(p, h)?;
    Ok(false)
}

/// Largest frame offset the parser produces (jumbo frames included).
pub const MAX_FRAME: usize = 16384;

/// Replaces the outer headers of a GTP-U or GRE packet (as [`parse_into`] without `decap`
/// left them in `h`) with the inner packet's; leaves them as they are when the packet is no
/// tunnel after all. `h` may come from map memory (the XDP program hands the outer headers to
/// the tunnel program, which so verifies only the inner parse): its offsets are checked
/// against constants first.
#[inline(always)]
pub fn parse_inner<B: Bytes + ?Sized>(p: &B, h: &mut Headers) -> Result<(), Reason> {
    if h.l4_off > MAX_L4_OFF + 60 || h.payload_off > MAX_L4_OFF + 60 || h.end > MAX_FRAME {
        return Err(Reason::Truncated);
    }
    let Some((l3_off, ethertype, tunnel)) = decap_at(p, h) else {
        return Ok(());
    };
    // Parse the inner packet over the outer headers. If it cannot be read, the packet is
    // reported as truncated (a tunnel whose payload is cut or not IP): rules on addresses do
    // not apply to it, and it passes.
    let outer_end = h.end;
    h.reset();
    h.l3_off = l3_off;
    h.tunnel = tunnel;
    match ethertype {
        ETH_P_IPV4 => parse_ipv4(p, h)?,
        ETH_P_IPV6 => parse_ipv6(p, h)?,
        _ => return Err(Reason::NotIp),
    }
    // The inner datagram cannot extend past the outer one.
    h.end = min(h.end, outer_end);
    parse_l4(p, h);
    Ok(())
}

/// Whether outer headers are those of a GTP-U or GRE packet (before looking inside).
#[inline(always)]
pub fn is_tunnel(h: &Headers) -> bool {
    h.frag != Frag::Later
        && ((h.proto == proto::UDP && h.reason == Reason::Ok && (h.dport == GTPU_PORT || h.sport == GTPU_PORT))
            || (h.proto == proto::GRE && h.reason == Reason::OtherL4))
}

/// Where the inner packet of a GTP-U or GRE tunnel starts: (offset, ethertype, tunnel).
#[inline(always)]
fn decap_at<B: Bytes + ?Sized>(p: &B, h: &Headers) -> Option<(usize, u16, Tunnel)> {
    if h.frag == Frag::Later {
        return None;
    }
    if h.proto == proto::UDP && h.reason == Reason::Ok && (h.dport == GTPU_PORT || h.sport == GTPU_PORT) {
        return gtpu(p, h.payload_off).map(|(off, et)| (off, et, Tunnel::GtpU));
    }
    if h.proto == proto::GRE && h.reason == Reason::OtherL4 {
        return gre(p, h.l4_off).map(|(off, et)| (off, et, Tunnel::Gre));
    }
    None
}

/// GTPv1-U G-PDU header at `off`: returns the inner packet's offset and ethertype.
#[inline(always)]
fn gtpu<B: Bytes + ?Sized>(p: &B, off: usize) -> Option<(usize, u16)> {
    let [flags, msg_type] = p.array::<2>(off)?;
    // Version 1, protocol type GTP (not GTP'), message type 255 (G-PDU: user data).
    if flags >> 5 != 1 || flags & 0x10 == 0 || msg_type != 0xFF {
        return None;
    }
    let mut inner = off + 8;
    if flags & 0x07 != 0 {
        // Sequence number, N-PDU number and next-extension-type fields are present.
        let mut next = p.u8_at(off + 11)?;
        inner = off + 12;
        if flags & 0x04 != 0 {
            // Extension headers: length in 4-byte units, next type in the last byte.
            let mut i = 0;
            while i < 4 && next != 0 {
                let len = (p.u8_at(inner)? as usize) * 4;
                if len == 0 {
                    return None;
                }
                // `opaque`: keep LLVM from folding the `- 1` into the packet pointer, which
                // the verifier cannot follow (a negative constant offset).
                next = p.u8_at(crate::bytes::opaque(inner + len - 1))?;
                inner += len;
                i += 1;
            }
            if next != 0 {
                return None;
            }
        }
    }
    let version = p.u8_at(inner)? >> 4;
    match version {
        4 => Some((inner, ETH_P_IPV4)),
        6 => Some((inner, ETH_P_IPV6)),
        _ => None,
    }
}

/// GRE header at `off`: returns the inner packet's offset and ethertype. Version 0 (RFC
/// 2784/2890) carries IPv4, IPv6 or Ethernet; version 1 is PPTP's enhanced GRE ([`pptp`]).
#[inline(always)]
fn gre<B: Bytes + ?Sized>(p: &B, off: usize) -> Option<(usize, u16)> {
    let flags = p.be16(off)?;
    match flags & 0x0007 {
        0 => {}
        1 => return pptp(p, off, flags),
        _ => return None,
    }
    let ptype = p.be16(off + 2)?;
    let mut inner = off + 4;
    for bit in [0x8000u16, 0x2000, 0x1000] {
        // checksum(+reserved), key, sequence number
        if flags & bit != 0 {
            inner += 4;
        }
    }
    match ptype {
        ETH_P_IPV4 | ETH_P_IPV6 => Some((inner, ptype)),
        GRE_P_TEB => {
            // Transparent Ethernet bridging: an untagged inner Ethernet frame.
            let et = p.be16(inner + 12)?;
            matches!(et, ETH_P_IPV4 | ETH_P_IPV6).then_some((inner + ETH_HLEN, et))
        }
        _ => None,
    }
}

/// PPP protocol numbers of IPv4 and IPv6 (RFC 1332, RFC 5072).
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
/// GRE protocol type of PPP.
const GRE_P_PPP: u16 = 0x880B;

/// PPTP's enhanced GRE (RFC 2637 §4.1): flags and version 1, protocol 0x880B, the key field
/// (payload length, call id), optional sequence and acknowledgement numbers, then a PPP frame:
/// optional address and control bytes (0xFF 0x03), then the protocol, one byte when
/// compressed (RFC 1661 §6.5), IPv4 or IPv6.
#[inline(always)]
fn pptp<B: Bytes + ?Sized>(p: &B, off: usize, flags: u16) -> Option<(usize, u16)> {
    // Key present, no checksum or routing; PPP inside.
    if flags & 0x2000 == 0 || flags & 0xC000 != 0 || p.be16(off + 2)? != GRE_P_PPP {
        return None;
    }
    let mut ppp = off + 8;
    if flags & 0x1000 != 0 {
        ppp += 4;
    }
    if flags & 0x0080 != 0 {
        ppp += 4;
    }
    let [a, b, c, d] = p.array::<4>(ppp)?;
    let (proto, at) = if a == 0xFF && b == 0x03 {
        if c & 1 == 1 { (c as u16, ppp + 3) } else { (u16::from_be_bytes([c, d]), ppp + 4) }
    } else if a & 1 == 1 {
        (a as u16, ppp + 1)
    } else {
        (u16::from_be_bytes([a, b]), ppp + 2)
    };
    match proto {
        PPP_IPV4 => Some((at, ETH_P_IPV4)),
        PPP_IPV6 => Some((at, ETH_P_IPV6)),
        _ => None,
    }
}

/// The headers of a plain IPv4 packet (see [`plain_v4`]), in registers: the express lane
/// (`engine::express`) decides most packets from these alone, and [`Plain4::fill`] writes them
/// into [`Headers`] for the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plain4 {
    /// UDP or TCP.
    pub proto: u8,
    pub tcp_flags: u8,
    pub sport: u16,
    pub dport: u16,
    /// Addresses as loaded (network byte order in memory).
    pub src: [u8; 4],
    pub dst: [u8; 4],
    /// Start of the L4 payload.
    pub payload_off: usize,
    /// End of the IP datagram in the frame.
    pub end: usize,
}

impl Plain4 {
    /// Fills `h` (all zero before) exactly as the general parser would for this packet.
    #[inline(always)]
    pub fn fill(&self, h: &mut Headers) {
        h.proto = self.proto;
        h.l3_off = ETH_HLEN;
        h.l4_off = ETH_HLEN + 20;
        h.end = self.end;
        h.set_v4_addrs(self.src, self.dst);
        h.sport = self.sport;
        h.dport = self.dport;
        h.tcp_flags = self.tcp_flags;
        h.payload_off = self.payload_off;
    }
}

/// The common case in one go: untagged Ethernet, IPv4 without options, not a fragment, UDP or
/// TCP with its whole header inside the datagram; `None` for anything else. Constant offsets
/// and five loads: the general parser's variable offsets (VLAN tags, IPv4 options) cost a
/// bounds check and a pointer computation per field.
#[inline(always)]
pub fn plain_v4<B: Bytes + ?Sized>(p: &B) -> Option<Plain4> {
    const L4: usize = ETH_HLEN + 20;
    // The farthest bytes first: in the kernel this one bounds check then covers every load
    // up to it (see the XDP crate's `Packet::load`). Bytes 34..38: the L4 ports.
    let [s0, s1, d0, d1] = p.array::<4>(L4)?;
    // Bytes 12..20: ethertype, version/IHL, TOS, total length, identification.
    let [e0, e1, vihl, _, t0, t1, _, _] = p.array::<8>(12)?;
    // Bytes 20..24: flags/fragment offset, TTL, protocol.
    let [f0, f1, _, proto] = p.array::<4>(20)?;
    // Not a fragment: no more-fragments bit, offset 0 (the flags' other bits do not matter).
    if u16::from_be_bytes([e0, e1]) != ETH_P_IPV4 || vihl != 0x45 || f0 & 0x3F != 0 || f1 != 0 {
        return None;
    }
    let total = u16::from_be_bytes([t0, t1]) as usize;
    let end = min(ETH_HLEN + total, p.len());
    let (hdr, payload_off, tcp_flags) = match proto {
        proto::UDP => (8, L4 + 8, 0),
        proto::TCP => {
            let [doff, flags] = p.array::<2>(L4 + 12)?;
            let hlen = ((doff >> 4) as usize) * 4;
            (20, L4 + if hlen < 20 { 20 } else { hlen }, flags)
        }
        _ => return None,
    };
    if L4 + hdr > end {
        return None;
    }
    // Bytes 26..34: addresses.
    let src = p.array::<4>(26)?;
    let dst = p.array::<4>(30)?;
    Some(Plain4 {
        proto,
        tcp_flags,
        sport: u16::from_be_bytes([s0, s1]),
        dport: u16::from_be_bytes([d0, d1]),
        src,
        dst,
        payload_off,
        end,
    })
}

/// [`plain_v4`] into `h` (all zero before): true when it took the packet, false (and `h`
/// untouched) otherwise.
#[inline(always)]
pub fn parse_plain_v4<B: Bytes + ?Sized>(p: &B, h: &mut Headers) -> bool {
    match plain_v4(p) {
        Some(v) => {
            v.fill(h);
            true
        }
        None => false,
    }
}

/// Any frame the plain IPv4 path does not take (VLAN tags, IPv6, IPv4 options, fragments,
/// other protocols, truncated or malformed headers).
#[inline(always)]
fn parse_general<B: Bytes + ?Sized>(p: &B, h: &mut Headers) -> Result<(), Reason> {
    let mut off = ETH_HLEN - 2;
    let mut ethertype = p.be16(off).ok_or(Reason::Truncated)?;
    let mut tags = 0;
    while tags < MAX_VLANS + 1 {
        if !matches!(ethertype, ETH_P_8021Q | ETH_P_8021AD | ETH_P_QINQ_9100) {
            break;
        }
        if tags == MAX_VLANS {
            return Err(Reason::VlanTooDeep);
        }
        off += 4;
        ethertype = p.be16(off).ok_or(Reason::Truncated)?;
        tags += 1;
    }
    h.vlans = tags as u8;
    h.l3_off = off + 2;
    match ethertype {
        ETH_P_IPV4 => parse_ipv4(p, h)?,
        ETH_P_IPV6 => parse_ipv6(p, h)?,
        _ => return Err(Reason::NotIp),
    }
    parse_l4(p, h);
    Ok(())
}

#[inline(always)]
fn parse_ipv4<B: Bytes + ?Sized>(p: &B, h: &mut Headers) -> Result<(), Reason> {
    let l3 = h.l3_off;
    let b0 = p.u8_at(l3).ok_or(Reason::Truncated)?;
    let ihl = ((b0 & 0x0F) as usize) * 4;
    if b0 >> 4 != 4 || ihl < 20 {
        return Err(Reason::BadIpHeader);
    }
    // The whole header, options included, must be in the frame.
    p.u8_at(l3 + ihl - 1).ok_or(Reason::Truncated)?;
    let total = p.be16(l3 + 2).ok_or(Reason::Truncated)? as usize;
    if total < ihl {
        return Err(Reason::BadIpHeader);
    }
    let frag = p.be16(l3 + 6).ok_or(Reason::Truncated)?;
    h.proto = p.u8_at(l3 + 9).ok_or(Reason::Truncated)?;
    let src: [u8; 4] = p.array(l3 + 12).ok_or(Reason::Truncated)?;
    let dst: [u8; 4] = p.array(l3 + 16).ok_or(Reason::Truncated)?;
    // Whole first words (the rest of each address is zero): the addresses stay two words each
    // for `FlowKey::new` and `flow::tcp_slot` instead of being reassembled from pieces.
    h.set_v4_addrs(src, dst);
    h.frag = if frag & 0x1FFF != 0 {
        Frag::Later
    } else if frag & 0x2000 != 0 {
        Frag::First
    } else {
        Frag::None
    };
    if h.frag != Frag::None {
        h.frag_id = p.be16(l3 + 4).ok_or(Reason::Truncated)? as u32;
    }
    h.l4_off = l3 + ihl;
    h.end = min(l3 + total, p.len());
    Ok(())
}

#[inline(always)]
fn parse_ipv6<B: Bytes + ?Sized>(p: &B, h: &mut Headers) -> Result<(), Reason> {
    let l3 = h.l3_off;
    let b0 = p.u8_at(l3).ok_or(Reason::Truncated)?;
    if b0 >> 4 != 6 {
        return Err(Reason::BadIpHeader);
    }
    let plen = p.be16(l3 + 4).ok_or(Reason::Truncated)? as usize;
    let mut next = p.u8_at(l3 + 6).ok_or(Reason::Truncated)?;
    let src: [u64; 2] = p.load(l3 + 8).ok_or(Reason::Truncated)?;
    let dst: [u64; 2] = p.load(l3 + 24).ok_or(Reason::Truncated)?;
    h.set_v6_addrs(src, dst);
    h.ipv6 = true;
    h.end = min(l3 + 40 + plen, p.len());
    let mut off = l3 + 40;
    // From here the addresses are known: failures are reported in `h.reason`.
    let mut walked = 0;
    while walked < MAX_IPV6_EXT {
        let len = match next {
            proto::HOPOPT
            | proto::ROUTING
            | proto::DSTOPTS
            | proto::MOBILITY
            | proto::HIP
            | proto::SHIM6 => match p.u8_at(off + 1) {
                Some(l) => (l as usize + 1) * 8,
                None => break,
            },
            proto::AH => match p.u8_at(off + 1) {
                Some(l) => (l as usize + 2) * 4,
                None => break,
            },
            proto::FRAGMENT => match p.be16(off + 2) {
                Some(fo) => {
                    h.frag = if fo & 0xFFF8 != 0 {
                        Frag::Later
                    } else if fo & 1 != 0 {
                        Frag::First
                    } else {
                        // An atomic fragment (RFC 8021): a whole datagram.
                        Frag::None
                    };
                    h.frag_id = match p.be32(off + 4) {
                        Some(id) => id,
                        None => break,
                    };
                    8
                }
                None => break,
            },
            _ => {
                h.proto = next;
                h.l4_off = off;
                return Ok(());
            }
        };
        next = match p.u8_at(off) {
            Some(n) => n,
            None => break,
        };
        off += len;
        if off > MAX_L4_OFF {
            h.reason = Reason::Ipv6ExtChain;
            h.proto = next;
            return Ok(());
        }
        walked += 1;
    }
    h.proto = next;
    h.l4_off = off;
    h.reason = if walked == MAX_IPV6_EXT {
        Reason::Ipv6ExtChain
    } else {
        Reason::Truncated
    };
    Ok(())
}

#[inline(always)]
fn parse_l4<B: Bytes + ?Sized>(p: &B, h: &mut Headers) {
    if h.reason != Reason::Ok {
        return;
    }
    if h.frag == Frag::Later {
        h.reason = Reason::LaterFragment;
        return;
    }
    let l4 = h.l4_off;
    match h.proto {
        proto::UDP => match p.array::<4>(l4) {
            Some(ports) if l4 + 8 <= h.end => {
                h.sport = u16::from_be_bytes([ports[0], ports[1]]);
                h.dport = u16::from_be_bytes([ports[2], ports[3]]);
                h.payload_off = l4 + 8;
            }
            _ => h.reason = Reason::Truncated,
        },
        proto::TCP => match (p.array::<4>(l4), p.array::<2>(l4 + 12)) {
            (Some(ports), Some([doff, flags])) if l4 + 20 <= h.end => {
                h.sport = u16::from_be_bytes([ports[0], ports[1]]);
                h.dport = u16::from_be_bytes([ports[2], ports[3]]);
                h.tcp_flags = flags;
                let hlen = ((doff >> 4) as usize) * 4;
                h.payload_off = l4 + if hlen < 20 { 20 } else { hlen };
            }
            _ => h.reason = Reason::Truncated,
        },
        _ => h.reason = Reason::OtherL4,
    }
}

#[inline(always)]
fn min(a: usize, b: usize) -> usize {
    if a < b { a } else { b }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::frame::{Frame, Ip};

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut x = [0; 16];
        x[..4].copy_from_slice(&a);
        x
    }

    /// The plain IPv4 path gives exactly what the general parser gives, on every frame it takes:
    /// well-formed frames of each kind, then random corruptions and truncations of them.
    #[test]
    fn plain_ipv4_path_agrees_with_the_general_parser() {
        let mut frames = vec![
            Frame::udp4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 5060, b"INVITE sip:x").build(),
            Frame::udp4([10, 0, 0, 1], 2152, [10, 0, 0, 2], 2152, &[0x30, 0xFF, 0, 4, 0, 0, 0, 1, 0x45, 0, 0, 0]).build(),
            Frame::udp4([224, 0, 0, 251], 5353, [10, 0, 0, 2], 53, b"").build(),
            Frame::tcp4([192, 0, 2, 1], 443, [10, 9, 8, 7], 51000, 0x10, b"").build(),
            Frame::tcp4([192, 0, 2, 1], 5060, [10, 9, 8, 7], 51000, 0x18, b"REGISTER sip:x SIP/2.0\r\n").build(),
            Frame::udp4([1, 2, 3, 4], 1, [5, 6, 7, 8], 2, b"x").fragment(7, 0, true).build(),
            Frame::raw4([1, 2, 3, 4], [5, 6, 7, 8], proto::UDP, b"later").fragment(7, 64, false).build(),
            Frame::raw4([1, 2, 3, 4], [5, 6, 7, 8], proto::ICMP, &[8, 0, 0, 0]).build(),
            Frame::udp6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 5060, [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 5060, b"x").build(),
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let base = frames.clone();
        for _ in 0..200_000 {
            let mut f = base[(rand() % base.len() as u64) as usize].clone();
            // A few bytes of the headers changed, biased towards the fields the path checks.
            for _ in 0..1 + rand() % 3 {
                let i = match rand() % 4 {
                    0 => [12, 13, 14, 16, 17, 20, 21, 23][(rand() % 8) as usize],
                    1 => 46 + (rand() % 2) as usize,
                    _ => 12 + (rand() % 48) as usize,
                };
                if i < f.len() {
                    f[i] = match rand() % 3 {
                        0 => rand() as u8,
                        1 => f[i] ^ (1 << (rand() % 8)),
                        _ => [0, 0x45, 0x46, 0x08, 0x00, 0x11, 0x06, 0x20, 0xFF][(rand() % 9) as usize],
                    };
                }
            }
            if rand() % 3 == 0 {
                f.truncate((rand() % (f.len() as u64 + 1)) as usize);
            }
            frames.push(f);
        }
        let mut taken = 0;
        for f in &frames {
            let mut fast = Headers::zeroed();
            if !parse_plain_v4(&f[..], &mut fast) {
                assert_eq!(fast, Headers::zeroed(), "a frame the plain path refuses is left untouched: {f:02x?}");
                continue;
            }
            taken += 1;
            let mut general = Headers::zeroed();
            assert_eq!(parse_general(&f[..], &mut general), Ok(()), "{f:02x?}");
            assert_eq!(fast, general, "{f:02x?}");
        }
        assert!(taken > 30_000, "the plain path took {taken} frames");
    }

    #[test]
    fn udp_over_ipv4() {
        let f = Frame::udp4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 5060, b"INVITE sip:x").build();
        let h = parse(&f[..]).unwrap();
        assert_eq!(h.reason, Reason::Ok);
        assert_eq!((h.proto, h.sport, h.dport), (proto::UDP, 40000, 5060));
        assert_eq!((h.src, h.dst), (v4([10, 0, 0, 1]), v4([10, 0, 0, 2])));
        assert_eq!((h.l3_off, h.l4_off, h.payload_off), (14, 34, 42));
        assert_eq!(&f[h.payload_off..h.end], b"INVITE sip:x");
        assert!(!h.ipv6);
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut f = Frame::udp4([1, 1, 1, 1], 1, [2, 2, 2, 2], 2, b"ab").build();
        f.resize(60, 0);
        let h = parse(&f[..]).unwrap();
        assert_eq!(h.payload_len(), 2);
    }

    #[test]
    fn tcp_with_options() {
        let f = Frame::tcp4([10, 0, 0, 1], 1234, [10, 0, 0, 2], 1720, 0x18, b"\x03\x00\x00\x08")
            .tcp_options(&[1, 1, 1, 1, 1, 1, 1, 1])
            .build();
        let h = parse(&f[..]).unwrap();
        assert_eq!((h.proto, h.sport, h.dport, h.tcp_flags), (proto::TCP, 1234, 1720, 0x18));
        assert_eq!(h.payload_off, 34 + 28);
        assert_eq!(&f[h.payload_off..h.end], b"\x03\x00\x00\x08");
    }

    #[test]
    fn vlan_and_qinq() {
        let f = Frame::udp4([10, 0, 0, 1], 1, [10, 0, 0, 2], 3478, b"x").vlan(ETH_P_8021Q, 7).build();
        let h = parse(&f[..]).unwrap();
        assert_eq!((h.vlans, h.l3_off, h.dport), (1, 18, 3478));
        let f = Frame::udp4([10, 0, 0, 1], 1, [10, 0, 0, 2], 3478, b"x")
            .vlan(ETH_P_8021AD, 100)
            .vlan(ETH_P_8021Q, 7)
            .build();
        let h = parse(&f[..]).unwrap();
        assert_eq!((h.vlans, h.l3_off, h.dport), (2, 22, 3478));
        let f = Frame::udp4([10, 0, 0, 1], 1, [10, 0, 0, 2], 3478, b"x")
            .vlan(ETH_P_8021AD, 100)
            .vlan(ETH_P_8021Q, 7)
            .vlan(ETH_P_8021Q, 8)
            .build();
        assert_eq!(parse(&f[..]), Err(Reason::VlanTooDeep));
    }

    #[test]
    fn ipv4_options_and_bad_headers() {
        let f = Frame::udp4([10, 0, 0, 1], 1, [10, 0, 0, 2], 5060, b"x")
            .ipv4_options(&[0x94, 0x04, 0, 0, 1, 1, 1, 0])
            .build();
        let h = parse(&f[..]).unwrap();
        assert_eq!((h.l4_off, h.dport), (14 + 28, 5060));
        let mut bad = f.clone();
        bad[14] = 0x44; // IHL 16 bytes
        assert_eq!(parse(&bad[..]), Err(Reason::BadIpHeader));
        let mut bad = f.clone();
        bad[14] = 0x65; // version 6 under an IPv4 ethertype
        assert_eq!(parse(&bad[..]), Err(Reason::BadIpHeader));
        let mut bad = f;
        bad[16] = 0;
        bad[17] = 10; // total length below the header length
        assert_eq!(parse(&bad[..]), Err(Reason::BadIpHeader));
    }

    #[test]
    fn ipv4_fragments() {
        let first = Frame::udp4([10, 0, 0, 1], 1, [10, 0, 0, 2], 5060, b"x").fragment(77, 0, true).build();
        let h = parse(&first[..]).unwrap();
        assert_eq!((h.frag, h.frag_id, h.reason, h.dport), (Frag::First, 77, Reason::Ok, 5060));
        let later = Frame::raw4([10, 0, 0, 1], [10, 0, 0, 2], proto::UDP, b"continuation")
            .fragment(77, 185, false)
            .build();
        let h = parse(&later[..]).unwrap();
        assert_eq!((h.frag, h.frag_id, h.reason), (Frag::Later, 77, Reason::LaterFragment));
        assert_eq!(h.dst, v4([10, 0, 0, 2]));
    }

    #[test]
    fn ipv6_extension_headers() {
        let src = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let f = Frame::udp6(src, 5000, dst, 5060, b"REGISTER sip:x")
            .ipv6_ext(proto::HOPOPT, &[1, 4, 0, 0, 0, 0])
            .ipv6_ext(proto::DSTOPTS, &[1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            .ipv6_ext(proto::ROUTING, &[0, 0, 0, 0, 0, 0])
            .build();
        let h = parse(&f[..]).unwrap();
        assert!(h.ipv6);
        assert_eq!((h.reason, h.proto, h.dport), (Reason::Ok, proto::UDP, 5060));
        assert_eq!(h.l4_off, 14 + 40 + 8 + 16 + 8);
        assert_eq!(&f[h.payload_off..h.end], b"REGISTER sip:x");
        assert_eq!((h.src, h.dst), (src, dst));
    }

    #[test]
    fn ipv6_fragment_and_long_chain() {
        let a = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let first = Frame::udp6(a, 1, a, 3478, b"x").ipv6_fragment(9, 0, true).build();
        let h = parse(&first[..]).unwrap();
        assert_eq!((h.frag, h.frag_id, h.reason, h.dport), (Frag::First, 9, Reason::Ok, 3478));
        let later = Frame::udp6(a, 1, a, 3478, b"x").ipv6_fragment(9, 100, false).build();
        let h = parse(&later[..]).unwrap();
        assert_eq!((h.frag, h.reason), (Frag::Later, Reason::LaterFragment));
        let mut chain = Frame::udp6(a, 1, a, 3478, b"x");
        for _ in 0..MAX_IPV6_EXT + 1 {
            chain = chain.ipv6_ext(proto::DSTOPTS, &[1, 4, 0, 0, 0, 0]);
        }
        let h = parse(&chain.build()[..]).unwrap();
        assert_eq!(h.reason, Reason::Ipv6ExtChain);
        let mut far = Frame::udp6(a, 1, a, 3478, b"x");
        for _ in 0..3 {
            far = far.ipv6_ext(proto::DSTOPTS, &[0; 254]);
        }
        assert_eq!(parse(&far.build()[..]).unwrap().reason, Reason::Ipv6ExtChain);
    }

    #[test]
    fn other_l4_and_not_ip() {
        let f = Frame::raw4([10, 0, 0, 1], [10, 0, 0, 2], proto::ICMP, &[8, 0, 0, 0, 0, 0, 0, 0]).build();
        assert_eq!(parse(&f[..]).unwrap().reason, Reason::OtherL4);
        let mut arp = f.clone();
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(parse(&arp[..]), Err(Reason::NotIp));
        assert_eq!(parse(&[][..]), Err(Reason::Truncated));
    }

    fn gtpu_header(ext: bool, inner: &[u8]) -> Vec<u8> {
        let mut g = if ext {
            // E flag, one PDU-session-container extension (4 bytes), then no more.
            vec![0x34, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0x10, 0x09, 0]
        } else {
            vec![0x30, 0xFF, 0, 0, 0, 0, 0, 1]
        };
        let len = (g.len() - 8 + inner.len()) as u16;
        g[2..4].copy_from_slice(&len.to_be_bytes());
        g.extend_from_slice(inner);
        g
    }

    #[test]
    fn gtpu_inner_headers() {
        let inner = Frame::udp4([10, 45, 0, 7], 40000, [192, 0, 2, 9], 5060, b"INVITE sip:a SIP/2.0").build();
        for ext in [false, true] {
            let outer = Frame::udp4([172, 16, 0, 1], GTPU_PORT, [172, 16, 0, 2], GTPU_PORT, &gtpu_header(ext, &inner[14..]))
                .build();
            let h = parse(&outer[..]).unwrap();
            assert_eq!(h.tunnel, Tunnel::GtpU);
            assert_eq!((h.src, h.dst), (v4([10, 45, 0, 7]), v4([192, 0, 2, 9])));
            assert_eq!((h.sport, h.dport, h.reason), (40000, 5060, Reason::Ok));
            assert_eq!(&outer[h.payload_off..h.end], b"INVITE sip:a SIP/2.0");
        }
        // A GTP-C message (type 1, echo) on 2152 is not decapsulated.
        let echo = Frame::udp4([172, 16, 0, 1], GTPU_PORT, [172, 16, 0, 2], GTPU_PORT, &[0x32, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]).build();
        let h = parse(&echo[..]).unwrap();
        assert_eq!((h.tunnel, h.dport), (Tunnel::None, GTPU_PORT));
    }

    #[test]
    fn gre_inner_headers() {
        let inner = Frame::udp6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 5062, [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 5060, b"OPTIONS sip:x SIP/2.0")
            .build();
        // GRE with key, carrying IPv6.
        let mut gre = vec![0x20, 0, 0x86, 0xDD, 0, 0, 0, 42];
        gre.extend_from_slice(&inner[14..]);
        let outer = Frame::raw4([198, 51, 100, 1], [198, 51, 100, 2], proto::GRE, &gre).build();
        let h = parse(&outer[..]).unwrap();
        assert_eq!((h.tunnel, h.ipv6, h.dport, h.reason), (Tunnel::Gre, true, 5060, Reason::Ok));
        // Transparent Ethernet bridging.
        let v4inner = Frame::udp4([10, 0, 0, 1], 1000, [10, 0, 0, 2], 3478, b"x").build();
        let mut teb = vec![0, 0, 0x65, 0x58];
        teb.extend_from_slice(&v4inner);
        let outer = Frame::raw4([198, 51, 100, 1], [198, 51, 100, 2], proto::GRE, &teb).build();
        let h = parse(&outer[..]).unwrap();
        assert_eq!((h.tunnel, h.dport, h.src), (Tunnel::Gre, 3478, v4([10, 0, 0, 1])));
        // A truncated inner packet is a truncated packet.
        let cut = &outer[..outer.len() - v4inner.len() + 20];
        assert_eq!(parse(cut), Err(Reason::Truncated));
    }

    /// Every prefix of a valid frame parses without panicking, to the right reason.
    #[test]
    fn pptp_enhanced_gre() {
        // As in gre.pcapng: flags 0x3081 (key, sequence, acknowledgement, version 1), PPP with
        // address and control bytes, IPv4 inside.
        let inner = Frame::udp4([192, 168, 10, 210], 5060, [192, 168, 103, 40], 5060, b"SIP/2.0 100 Trying\r\n\r\n").build();
        let ip = &inner[14..];
        let gre = crate::user::frame::pptp_gre(ip);
        let outer = Frame::raw4([109, 105, 228, 253], [10, 177, 98, 84], proto::GRE, &gre).build();
        let h = parse(&outer[..]).unwrap();
        assert_eq!((h.tunnel, h.proto, h.sport, h.dport), (Tunnel::Gre, proto::UDP, 5060, 5060));
        assert_eq!(h.src4(), [192, 168, 10, 210]);
        // Compressed: no sequence/ack, no address/control, one protocol byte.
        let mut gre = vec![0x20, 0x01, 0x88, 0x0B, 0, 0, 0x98, 0x50, 0x21];
        gre.extend_from_slice(ip);
        let outer = Frame::raw4([109, 105, 228, 253], [10, 177, 98, 84], proto::GRE, &gre).build();
        assert_eq!(parse(&outer[..]).unwrap().tunnel, Tunnel::Gre);
        // PPP control protocols (LCP 0xC021) are not IP: the outer headers stay.
        let lcp = [0x20, 0x01, 0x88, 0x0B, 0, 4, 0x98, 0x50, 0xC0, 0x21, 1, 1];
        let outer = Frame::raw4([109, 105, 228, 253], [10, 177, 98, 84], proto::GRE, &lcp).build();
        assert_eq!(parse(&outer[..]).unwrap().tunnel, Tunnel::None);
    }

    #[test]
    fn every_truncation_is_safe() {
        let frames = [
            Frame::udp4([10, 0, 0, 1], 1, [10, 0, 0, 2], 5060, b"INVITE sip:a SIP/2.0")
                .vlan(ETH_P_8021AD, 1)
                .vlan(ETH_P_8021Q, 2)
                .ipv4_options(&[1, 1, 1, 1])
                .build(),
            Frame::udp6([1; 16], 1, [2; 16], 5060, b"x")
                .ipv6_ext(proto::HOPOPT, &[0; 6])
                .ipv6_fragment(1, 0, true)
                .build(),
            Frame::tcp4([10, 0, 0, 1], 1, [10, 0, 0, 2], 5060, 2, b"").build(),
        ];
        for f in frames {
            let full = parse(&f[..]).unwrap();
            assert_eq!(full.reason, Reason::Ok);
            for cut in 0..f.len() {
                let r = match parse(&f[..cut]) {
                    Ok(h) => h.reason,
                    Err(r) => r,
                };
                if cut < full.payload_off {
                    assert_eq!(r, Reason::Truncated, "cut at {cut} of {}", f.len());
                } else {
                    assert_eq!(r, Reason::Ok);
                }
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in 0..300 {
            for _ in 0..50 {
                let buf: std::vec::Vec<u8> = (0..len)
                    .map(|i| {
                        x = crate::testing::xorshift(x);
                        // Make IP ethertypes likely so deeper code runs.
                        match i {
                            12 => [0x08, 0x86, 0x81][(x % 3) as usize],
                            13 => [0x00, 0xDD][(x % 2) as usize],
                            _ => x as u8,
                        }
                    })
                    .collect();
                if let Ok(h) = parse(&buf[..]) {
                    assert!(h.l4_off <= MAX_L4_OFF + 60);
                    assert!(h.end <= buf.len());
                }
            }
        }
        let _ = Ip::V4 { src: [0; 4], dst: [0; 4] };
    }
}
