//! Flow-table and cross-flow map layouts: the bidirectional flow key, the per-flow record,
//! expectation and fragment keys, and the engine's runtime config. Pure data, shared by both
//! sides (the maps are declared in the eBPF crate; user space reads them for `voipfilter flows`).

use crate::{
    detect::track::AppTrack,
    packet::Headers,
    rtp_state::RtpState,
};

/// A bidirectional 5-tuple: endpoint 0 is the lower (address, port), so both directions of a
/// flow give the same key. IPv4 addresses use the first 4 bytes. Inner tuple for tunnels.
/// 8-aligned so that it compares as five `u64` words (a derived `==` would call memcmp).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Hash, Default)]
pub struct FlowKey {
    pub addr: [[u8; 16]; 2],
    pub port: [u16; 2],
    pub proto: u8,
    pub ipv6: u8,
    pub _pad: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 40);

impl PartialEq for FlowKey {
    #[inline(always)]
    fn eq(&self, other: &Self) -> bool {
        let a = (self as *const FlowKey).cast::<u64>();
        let b = (other as *const FlowKey).cast::<u64>();
        let mut i = 0;
        let mut diff = 0;
        while i < 5 {
            // SAFETY: both are 40-byte, 8-aligned plain integers.
            diff |= unsafe { *a.add(i) ^ *b.add(i) };
            i += 1;
        }
        diff == 0
    }
}

impl Eq for FlowKey {}

impl FlowKey {
    /// The key of a packet's flow and the packet's direction (0: from endpoint 0).
    /// Word by word: the addresses are compared and copied as 8-byte words (as byte arrays
    /// they were read, compared and written a byte at a time in BPF).
    #[inline(always)]
    pub fn new(h: &Headers) -> (FlowKey, u8) {
        let (s, d) = (h.src_words(), h.dst_words());
        // (addr, port) ordering: the addresses as big-endian numbers, then the port.
        let src_first = (u64::from_be(s[0]), u64::from_be(s[1]), h.sport) <= (u64::from_be(d[0]), u64::from_be(d[1]), h.dport);
        let (a, ap, b, bp, dir) = if src_first { (s, h.sport, d, h.dport, 0) } else { (d, h.dport, s, h.sport, 1) };
        let mut k = core::mem::MaybeUninit::<FlowKey>::uninit();
        let p = k.as_mut_ptr();
        // SAFETY: every byte of the key is written: four address words (the addresses are
        // 8-aligned in the 8-aligned key), then the ports, protocol, family and padding.
        unsafe {
            let w = p.cast::<u64>();
            w.write(a[0]);
            w.add(1).write(a[1]);
            w.add(2).write(b[0]);
            w.add(3).write(b[1]);
            (&raw mut (*p).port).write([ap, bp]);
            (&raw mut (*p).proto).write(h.proto);
            (&raw mut (*p).ipv6).write(h.ipv6 as u8);
            (&raw mut (*p)._pad).write([0; 2]);
            (k.assume_init(), dir)
        }
    }
}

/// Key of `FLOWS4`, the IPv4 flow table: the IPv4 part of a [`FlowKey`] in 16 bytes (the
/// kernel hashes and compares the whole key on every lookup: 16 bytes cost less than 40).
/// Same endpoint order as `FlowKey`, so both directions share it. As two words: the two
/// addresses (endpoint 0 in the low half, in memory order), then ports, protocol and padding,
/// which is word 4 of the `FlowKey` of an IPv4 flow.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Hash, Default, PartialEq, Eq)]
pub struct FlowKey4 {
    pub addr: [[u8; 4]; 2],
    pub port: [u16; 2],
    pub proto: u8,
    pub _pad: [u8; 3],
}

const _: () = assert!(core::mem::size_of::<FlowKey4>() == 16);

impl FlowKey {
    /// The `FLOWS4` key of an IPv4 flow's key (`ipv6 == 0`).
    #[inline(always)]
    pub fn v4(&self) -> FlowKey4 {
        // SAFETY: the 8-aligned 40-byte key read as five words; an IPv4 address is the low 4
        // bytes (in memory) of words 0 and 2; word 4 holds ports, protocol and (zero) family
        // and padding. The result is 16 plain bytes, 8-aligned.
        unsafe {
            let w = (self as *const FlowKey).cast::<u64>();
            let lo = u64::from_le(*w) & 0xffff_ffff;
            let hi = u64::from_le(*w.add(2)) << 32;
            core::mem::transmute::<[u64; 2], FlowKey4>([u64::to_le(lo | hi), *w.add(4)])
        }
    }
}

impl FlowKey4 {
    /// The key of an IPv4 packet's flow, straight from its headers: equal to
    /// `FlowKey::new(h).0.v4()`, without building the 40-byte key.
    #[inline(always)]
    pub fn new(h: &Headers) -> FlowKey4 {
        // The IPv4 address is the low half (in memory) of the first address word.
        let s = u64::from_le(h.src_words()[0]) & 0xffff_ffff;
        let d = u64::from_le(h.dst_words()[0]) & 0xffff_ffff;
        Self::from_words(s, h.sport, d, h.dport, h.proto)
    }

    /// The key of the flow of a packet from `src:sport` to `dst:dport` (addresses as in the
    /// packet): equal to [`FlowKey4::new`] of its headers.
    #[inline(always)]
    pub fn of(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, proto: u8) -> FlowKey4 {
        Self::from_words(u32::from_le_bytes(src) as u64, sport, u32::from_le_bytes(dst) as u64, dport, proto)
    }

    /// Both directions share the key: the endpoint that sorts first (address in network order,
    /// then port) comes first. Addresses as the low halves of little-endian words.
    #[inline(always)]
    fn from_words(s: u64, sport: u16, d: u64, dport: u16, proto: u8) -> FlowKey4 {
        let src_first = ((s as u32).swap_bytes(), sport) <= ((d as u32).swap_bytes(), dport);
        let (a, ap, b, bp) = if src_first { (s, sport, d, dport) } else { (d, dport, s, sport) };
        let w1 = ap as u64 | (bp as u64) << 16 | (proto as u64) << 32;
        // SAFETY: two plain words, the key's layout on a little-endian machine (to_le elsewhere).
        unsafe { core::mem::transmute::<[u64; 2], FlowKey4>([u64::to_le(a | b << 32), u64::to_le(w1)]) }
    }

    /// The [`FlowKey`] this key was made from.
    #[inline(always)]
    pub fn widen(&self) -> FlowKey {
        // SAFETY: the inverse of `FlowKey::v4`: the addresses go to the low 4 bytes (in memory)
        // of words 0 and 2, and the second word (ports, protocol, zero family and padding) is
        // word 4. Plain words, sizes checked by `transmute`.
        unsafe {
            let [w0, w1] = core::mem::transmute::<FlowKey4, [u64; 2]>(*self);
            let w0 = u64::from_le(w0);
            core::mem::transmute::<[u64; 5], FlowKey>([u64::to_le(w0 & 0xffff_ffff), 0, u64::to_le(w0 >> 32), 0, w1])
        }
    }
}

/// Where a flow is in its life.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowState {
    /// Detectors still look at its packets.
    Inspecting = 0,
    /// Classified as `app`: every later packet gets that app's policy without inspection.
    Decided = 1,
    /// Inspected long enough without finding a call: passes without inspection.
    NotCall = 2,
}

/// The value of `FLOWS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    /// App id once decided (or while inspecting: the best guess so far, 0 when none).
    pub app: u16,
    /// A [`FlowState`].
    pub state: u8,
    /// Packets inspected by detectors (saturating).
    pub inspected: u8,
    /// Bit set of hints from earlier packets (`HINT_*`).
    pub hints: u8,
    /// Index (1-based, saturating) of the packet that decided the flow; 0 if undecided.
    pub decided_at: u8,
    /// App of a signal-scoped prefix list matching the flow (`lists::SCOPE_SIGNAL`), 0 if
    /// none: a generic call detected on the flow (STUN, RTP, ...) is this app's.
    pub listed: u8,
    pub _pad: u8,
    /// RTP/RTCP confirmation state (see `rtp_state`).
    pub media: RtpState,
    /// State of the app detectors that need several packets (see `detect::track`).
    pub track: AppTrack,
    pub packets: u64,
    pub bytes: u64,
}

const _: () = assert!(core::mem::size_of::<Flow>() == 72);

/// The flow carried a STUN message (so DTLS, ChannelData and SRTP may follow: RFC 7983).
pub const HINT_STUN: u8 = 1;

/// Key of `EXPECT`: an endpoint that signalling (SDP, STUN) or a classified call flow
/// announced; a new flow touching it inherits the app.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct EndpointKey {
    pub addr: [u8; 16],
    pub port: u16,
    pub proto: u8,
    pub _pad: u8,
}

const _: () = assert!(core::mem::size_of::<EndpointKey>() == 20);

impl EndpointKey {
    #[inline(always)]
    pub fn new(addr: [u8; 16], port: u16, proto: u8) -> Self {
        EndpointKey { addr, port, proto, _pad: 0 }
    }
}

/// Key of `FRAGS`: later IPv4/IPv6 fragments follow the verdict of their first fragment.
/// 8-aligned: built with `bytes::zeroed` (a struct literal with padding becomes a memset call).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FragKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub id: u32,
    pub proto: u8,
    pub _pad: [u8; 3],
}

const _: () = assert!(core::mem::size_of::<FragKey>() == 40);

impl FragKey {
    #[inline(always)]
    pub fn new(h: &Headers) -> Self {
        // SAFETY: all zero is a valid key; repr(C), 8-aligned, 40 bytes.
        let mut k: FragKey = unsafe { crate::bytes::zeroed() };
        k.src = h.src;
        k.dst = h.dst;
        k.id = h.frag_id;
        k.proto = h.proto;
        k
    }
}

/// A slot of `TCP_CALLS`, a direct-mapped cache of TCP connections classified as calls (so that
/// TCP, which needs no flow state otherwise, pays one array read instead of a hash lookup).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSlot {
    pub key: FlowKey,
    pub app: u16,
    pub _pad: [u8; 6],
}

const _: () = assert!(core::mem::size_of::<TcpSlot>() == 48);

/// Slots in `TCP_CALLS` (a power of two).
pub const TCP_CALLS_SLOTS: u32 = 65536;

impl FlowKey {
    /// Slot of this connection in `TCP_CALLS` (the same as [`tcp_slot`] of either direction's
    /// headers).
    #[inline(always)]
    pub fn tcp_slot(&self) -> u32 {
        // SAFETY: `addr` is the first field of the 8-aligned key, 32 bytes.
        let w = unsafe { core::ptr::read((&raw const self.addr).cast::<[u64; 4]>()) };
        slot_of([w[0], w[1]], [w[2], w[3]], self.port[0], self.port[1])
    }
}

/// Slot of a TCP connection in `TCP_CALLS`, from the headers of a packet in either direction,
/// without building its [`FlowKey`]. Equal to `FlowKey::new(h).0.tcp_slot()`.
#[inline(always)]
pub fn tcp_slot(h: &Headers) -> u32 {
    slot_of(h.src_words(), h.dst_words(), h.sport, h.dport)
}

/// [`tcp_slot`] of an IPv4 segment from `a:pa` to `b:pb` (either direction gives the same).
#[inline(always)]
pub fn tcp_slot4(a: [u8; 4], pa: u16, b: [u8; 4], pb: u16) -> u32 {
    let word = |[w, x, y, z]: [u8; 4]| u64::from_ne_bytes([w, x, y, z, 0, 0, 0, 0]);
    slot_of([word(a), 0], [word(b), 0], pa, pb)
}

/// The slot hash: the two endpoints are combined with sums first, so the order of the endpoints
/// does not matter, then one multiplicative hash (its top bits depend on every input bit).
/// Every TCP segment pays for it, so it is kept to one multiplication; a collision only shares
/// a slot (the key is compared), and the endpoints' words are read in memory order as
/// little-endian so that the BPF target and any host agree.
#[inline(always)]
fn slot_of(a: [u64; 2], b: [u64; 2], pa: u16, pb: u16) -> u32 {
    let lo = u64::from_le(a[0]).wrapping_add(u64::from_le(b[0]));
    let hi = u64::from_le(a[1]).wrapping_add(u64::from_le(b[1]));
    let ports = (pa as u64).wrapping_add(pb as u64);
    let x = lo ^ hi.rotate_left(32) ^ (ports << 40);
    ((x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 48) as u32) & (TCP_CALLS_SLOTS - 1)
}

/// The single record of `CONFIG`, written by user space.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// `CONFIG_*` bits.
    pub flags: u32,
    /// Packets of a flow that detectors inspect before the flow is declared not a call.
    pub inspect_limit: u32,
}

const _: () = assert!(core::mem::size_of::<Config>() == 8);

/// There are port rules (else their lookups are skipped).
pub const CONFIG_PORT_RULES: u32 = 1;
/// There are IPv4 prefix rules.
pub const CONFIG_PREFIX4_RULES: u32 = 2;
/// There are IPv6 prefix rules.
pub const CONFIG_PREFIX6_RULES: u32 = 4;
/// There are IPv4 app list prefixes (`LIST4`).
pub const CONFIG_LISTS4: u32 = 8;
/// There are IPv6 app list prefixes (`LIST6`).
pub const CONFIG_LISTS6: u32 = 16;
/// The list table in use is `LISTS[1]` (else `LISTS[0]`). User space writes a new table into
/// the other entry and then flips this bit, so the program never reads a table being written
/// (an array update is a copy that a reader on another CPU could see half done).
pub const CONFIG_LISTS_B: u32 = 32;

/// Default packets inspected per flow (nDPI's per-flow budget is 32 DPI packets; VoIP signals
/// show within the first few).
pub const DEFAULT_INSPECT_LIMIT: u32 = 12;

impl Default for Config {
    fn default() -> Self {
        Config { flags: 0, inspect_limit: DEFAULT_INSPECT_LIMIT }
    }
}

/// Whether a UDP packet with these ports can be left out of flow tracking: protocols that are
/// never calls and never carry them (DNS, DHCP, NTP, NetBIOS, SNMP, mDNS, LLMNR, SSDP).
#[inline(always)]
pub fn udp_untracked(sport: u16, dport: u16) -> bool {
    #[inline(always)]
    fn infra(p: u16) -> bool {
        matches!(p, 53 | 67 | 68 | 123 | 137 | 138 | 161 | 162 | 5353 | 5355 | 1900)
    }
    infra(sport) || infra(dport)
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::frame::Frame;

    #[test]
    fn both_directions_share_a_key() {
        let a = crate::packet::parse(&Frame::udp4([10, 0, 0, 9], 5000, [10, 0, 0, 1], 6000, b"x").build()[..]).unwrap();
        let b = crate::packet::parse(&Frame::udp4([10, 0, 0, 1], 6000, [10, 0, 0, 9], 5000, b"x").build()[..]).unwrap();
        let (ka, da) = FlowKey::new(&a);
        let (kb, db) = FlowKey::new(&b);
        assert_eq!(ka, kb);
        assert_ne!(da, db);
        assert_eq!(ka.port, [6000, 5000]);
        assert_eq!(ka.tcp_slot(), kb.tcp_slot());
        assert_eq!((tcp_slot(&a), tcp_slot(&b)), (ka.tcp_slot(), ka.tcp_slot()));
        // Same addresses, ports decide the order.
        let c = crate::packet::parse(&Frame::udp4([10, 0, 0, 1], 7000, [10, 0, 0, 1], 6000, b"x").build()[..]).unwrap();
        assert_eq!(FlowKey::new(&c).1, 1);
    }

    #[test]
    fn ipv4_keys_narrow_and_widen() {
        let a = crate::packet::parse(&Frame::udp4([10, 0, 0, 9], 5000, [192, 0, 2, 1], 6000, b"x").build()[..]).unwrap();
        let b = crate::packet::parse(&Frame::udp4([192, 0, 2, 1], 6000, [10, 0, 0, 9], 5000, b"x").build()[..]).unwrap();
        let (k, _) = FlowKey::new(&a);
        let k4 = k.v4();
        assert_eq!(k4, FlowKey::new(&b).0.v4());
        assert_eq!(k4, FlowKey4 { addr: [[10, 0, 0, 9], [192, 0, 2, 1]], port: [5000, 6000], proto: 17, _pad: [0; 3] });
        assert_eq!(k4.widen(), k);
        assert_eq!((FlowKey4::new(&a), FlowKey4::new(&b)), (k4, k4));
    }

    #[test]
    fn v4_keys_match_their_headers() {
        for (a, ap, b, bp) in [([10, 0, 0, 9], 5000, [10, 0, 0, 1], 6000), ([192, 0, 2, 1], 443, [192, 0, 2, 1], 80), ([1, 2, 3, 4], 9, [1, 2, 3, 4], 9)] {
            for (proto, frame) in [(17, Frame::udp4(a, ap, b, bp, b"x").build()), (6, Frame::tcp4(a, ap, b, bp, 0x10, b"").build())] {
                let h = crate::packet::parse(&frame[..]).unwrap();
                let k = FlowKey4::of(a, ap, b, bp, proto);
                assert_eq!(k, FlowKey4::new(&h));
                assert_eq!(k, FlowKey4::of(b, bp, a, ap, proto));
                assert_eq!(k.widen(), FlowKey::new(&h).0);
                assert_eq!(tcp_slot4(a, ap, b, bp), tcp_slot(&h));
                assert_eq!(tcp_slot4(b, bp, a, ap), tcp_slot(&h));
            }
        }
    }

    #[test]
    fn tcp_slots_spread() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000u16 {
            let h = crate::packet::parse(&Frame::tcp4([10, 0, (i >> 8) as u8, i as u8], 40000 + i, [192, 0, 2, 1], 5060, 2, b"").build()[..]).unwrap();
            seen.insert(FlowKey::new(&h).0.tcp_slot());
        }
        assert!(seen.len() > 980, "{} distinct slots of 1000", seen.len());
        // Ports only (one client, many source ports), and IPv6 clients of one /64.
        let mut ports = std::collections::HashSet::new();
        let mut v6 = std::collections::HashSet::new();
        for i in 0..1000u16 {
            let h = crate::packet::parse(&Frame::tcp4([10, 0, 0, 1], 40000 + i, [192, 0, 2, 1], 443, 2, b"").build()[..]).unwrap();
            ports.insert(tcp_slot(&h));
            let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
            a[14..].copy_from_slice(&i.to_be_bytes());
            let b = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 9];
            let h = crate::packet::parse(&Frame::tcp6(a, 40000, b, 5060, 2, b"").build()[..]).unwrap();
            v6.insert(tcp_slot(&h));
            assert_eq!(tcp_slot(&h), FlowKey::new(&h).0.tcp_slot());
        }
        assert!(ports.len() > 980 && v6.len() > 980, "{} and {} distinct slots of 1000", ports.len(), v6.len());
    }
}
