//! Link layers: every captured frame becomes the Ethernet frame a NIC would hand to XDP.
//!
//! Ethernet frames are used as they are. Linux cooked captures (SLL, SLL2), raw IP and BSD
//! loopback frames get a 14-byte Ethernet header with the frame's protocol as the ethertype (the
//! cooked header's protocol, or 0x0800/0x86DD from the IP version). VLAN tags that libpcap put
//! back into a cooked frame (protocol 0x8100) stay in front of the payload, where Ethernet has
//! them too.

use voipfilter_common::packet::{ETH_P_IPV4, ETH_P_IPV6};

pub const LINKTYPE_NULL: u32 = 0;
pub const LINKTYPE_ETHERNET: u32 = 1;
/// `DLT_RAW` as some writers store it (the number differs between systems).
pub const LINKTYPE_RAW_12: u32 = 12;
pub const LINKTYPE_RAW_14: u32 = 14;
pub const LINKTYPE_RAW: u32 = 101;
pub const LINKTYPE_LOOP: u32 = 108;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_IPV4: u32 = 228;
pub const LINKTYPE_IPV6: u32 = 229;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// Source and destination MAC of synthesised headers (locally administered).
const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// Name of a link type, for reports.
pub fn name(linktype: u32) -> String {
    match linktype {
        LINKTYPE_NULL => "bsd-loopback".into(),
        LINKTYPE_ETHERNET => "ethernet".into(),
        LINKTYPE_RAW | LINKTYPE_RAW_12 | LINKTYPE_RAW_14 => "raw-ip".into(),
        LINKTYPE_LOOP => "openbsd-loopback".into(),
        LINKTYPE_LINUX_SLL => "linux-sll".into(),
        LINKTYPE_IPV4 => "ipv4".into(),
        LINKTYPE_IPV6 => "ipv6".into(),
        LINKTYPE_LINUX_SLL2 => "linux-sll2".into(),
        n => format!("linktype-{n}"),
    }
}

/// Whether frames of this link type can be replayed.
pub fn supported(linktype: u32) -> bool {
    matches!(
        linktype,
        LINKTYPE_NULL
            | LINKTYPE_ETHERNET
            | LINKTYPE_RAW
            | LINKTYPE_RAW_12
            | LINKTYPE_RAW_14
            | LINKTYPE_LOOP
            | LINKTYPE_LINUX_SLL
            | LINKTYPE_IPV4
            | LINKTYPE_IPV6
            | LINKTYPE_LINUX_SLL2
    )
}

/// Why a frame could not be turned into Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Shorter than its link-layer header.
    Short { need: usize, have: usize },
    Unsupported(u32),
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Short { need, have } => write!(f, "frame of {have} bytes is shorter than its {need}-byte link header"),
            LinkError::Unsupported(l) => write!(f, "unsupported link type {l} ({})", name(*l)),
        }
    }
}

/// The ethertype for a bare IP packet, from its version nibble (0 when it is not IP: the
/// program then counts it as not-IP, as a NIC would deliver it).
fn ip_ethertype(payload: &[u8]) -> u16 {
    match payload.first().map(|b| b >> 4) {
        Some(4) => ETH_P_IPV4,
        Some(6) => ETH_P_IPV6,
        _ => 0,
    }
}

/// The Ethernet frame for `data` of link type `linktype`: `data` itself for Ethernet, else a
/// frame built in `scratch`.
pub fn to_ethernet<'a>(linktype: u32, data: &'a [u8], scratch: &'a mut Vec<u8>) -> Result<&'a [u8], LinkError> {
    let (ethertype, src, payload): (u16, Option<&[u8]>, &[u8]) = match linktype {
        LINKTYPE_ETHERNET => return Ok(data),
        LINKTYPE_RAW | LINKTYPE_RAW_12 | LINKTYPE_RAW_14 | LINKTYPE_IPV4 | LINKTYPE_IPV6 => {
            (ip_ethertype(data), None, data)
        }
        LINKTYPE_NULL | LINKTYPE_LOOP => {
            // A 4-byte address family in the writer's (NULL) or network (LOOP) byte order; the
            // IP version nibble says the same more reliably.
            let p = data.get(4..).ok_or(LinkError::Short { need: 4, have: data.len() })?;
            (ip_ethertype(p), None, p)
        }
        LINKTYPE_LINUX_SLL => {
            // packet type(2) ARPHRD(2) address length(2) address(8) protocol(2)
            let h = data.get(..16).ok_or(LinkError::Short { need: 16, have: data.len() })?;
            let alen = usize::from(u16::from_be_bytes([h[4], h[5]]));
            (u16::from_be_bytes([h[14], h[15]]), (alen == 6).then(|| &h[6..12]), &data[16..])
        }
        LINKTYPE_LINUX_SLL2 => {
            // protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) address length(1) address(8)
            let h = data.get(..20).ok_or(LinkError::Short { need: 20, have: data.len() })?;
            (u16::from_be_bytes([h[0], h[1]]), (h[11] == 6).then(|| &h[12..18]), &data[20..])
        }
        other => return Err(LinkError::Unsupported(other)),
    };
    scratch.clear();
    scratch.extend_from_slice(&DST_MAC);
    scratch.extend_from_slice(src.unwrap_or(&SRC_MAC));
    scratch.extend_from_slice(&ethertype.to_be_bytes());
    scratch.extend_from_slice(payload);
    Ok(scratch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use voipfilter_common::{packet, user::frame::Frame};

    fn ip_part(eth: &[u8]) -> &[u8] {
        &eth[14..]
    }

    #[test]
    fn every_link_type_gives_the_same_ip_packet() {
        let eth4 = Frame::udp4([10, 0, 0, 1], 5060, [10, 0, 0, 2], 5060, b"INVITE").build();
        let eth6 = Frame::udp6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 3478,
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 40000, b"stun").build();
        for eth in [&eth4, &eth6] {
            let ip = ip_part(eth);
            let ethertype = [eth[12], eth[13]];
            let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
            sll.extend_from_slice(&ethertype);
            sll.extend_from_slice(ip);
            let mut sll2 = ethertype.to_vec();
            sll2.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 4, 6, 1, 2, 3, 4, 5, 6, 0, 0]);
            sll2.extend_from_slice(ip);
            let mut null = 2u32.to_le_bytes().to_vec();
            null.extend_from_slice(ip);
            let cases: [(u32, &[u8]); 6] = [
                (LINKTYPE_ETHERNET, eth),
                (LINKTYPE_RAW, ip),
                (LINKTYPE_IPV4, ip),
                (LINKTYPE_LINUX_SLL, &sll),
                (LINKTYPE_LINUX_SLL2, &sll2),
                (LINKTYPE_NULL, &null),
            ];
            let want = packet::parse(&eth[..]).unwrap();
            for (lt, data) in cases {
                let mut scratch = Vec::new();
                let out = to_ethernet(lt, data, &mut scratch).unwrap();
                assert_eq!(out.len(), eth.len(), "{}", name(lt));
                assert_eq!(&out[12..], &eth[12..], "{}", name(lt));
                assert_eq!(packet::parse(out).unwrap(), want, "{}", name(lt));
            }
            // The cooked header's link address becomes the source MAC.
            let mut scratch = Vec::new();
            let out = to_ethernet(LINKTYPE_LINUX_SLL, &sll, &mut scratch).unwrap();
            assert_eq!(&out[6..12], &[1, 2, 3, 4, 5, 6]);
        }
    }

    #[test]
    fn cooked_vlan_tags_are_kept() {
        let tagged = Frame::udp4([10, 0, 0, 1], 1, [10, 0, 0, 2], 5060, b"x").vlan(0x8100, 42).build();
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
        sll.extend_from_slice(&tagged[12..]);
        let mut scratch = Vec::new();
        let out = to_ethernet(LINKTYPE_LINUX_SLL, &sll, &mut scratch).unwrap();
        let h = packet::parse(out).unwrap();
        assert_eq!((h.vlans, h.dport), (1, 5060));
    }

    #[test]
    fn short_and_unknown_frames() {
        let mut s = Vec::new();
        assert_eq!(to_ethernet(LINKTYPE_LINUX_SLL, &[0; 15], &mut s), Err(LinkError::Short { need: 16, have: 15 }));
        assert_eq!(to_ethernet(LINKTYPE_LINUX_SLL2, &[0; 3], &mut s), Err(LinkError::Short { need: 20, have: 3 }));
        assert_eq!(to_ethernet(105, &[0; 30], &mut s), Err(LinkError::Unsupported(105)));
        assert_eq!(LinkError::Unsupported(105).to_string(), "unsupported link type 105 (linktype-105)");
        // Not IP: ethertype 0, which the program counts as not-IP.
        let out = to_ethernet(LINKTYPE_RAW, &[0x10, 0, 0], &mut s).unwrap();
        assert_eq!(&out[12..14], &[0, 0]);
    }
}
