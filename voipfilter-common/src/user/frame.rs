//! Builds Ethernet frames for tests, demos, benchmarks and replay: VLAN tags, IPv4 (options,
//! fragments) and IPv6 (extension headers, fragments), UDP, TCP or a raw L4 payload, with valid
//! IPv4 header, UDP and TCP checksums.

use crate::packet::{ETH_P_IPV4, ETH_P_IPV6, proto};

/// Source and destination MAC of built frames (locally administered).
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

#[derive(Clone, Debug)]
pub enum Ip {
    V4 { src: [u8; 4], dst: [u8; 4] },
    V6 { src: [u8; 16], dst: [u8; 16] },
}

#[derive(Clone, Debug)]
enum L4 {
    Udp { sport: u16, dport: u16 },
    Tcp { sport: u16, dport: u16, flags: u8, options: Vec<u8> },
    Raw(u8),
}

/// A frame under construction. Start with [`Frame::udp4`] and friends, add layers, then
/// [`Frame::build`].
#[derive(Clone, Debug)]
pub struct Frame {
    vlans: Vec<(u16, u16)>,
    ip: Ip,
    ipv4_options: Vec<u8>,
    ipv6_ext: Vec<(u8, Vec<u8>)>,
    /// (id, offset in bytes, more fragments)
    fragment: Option<(u32, u16, bool)>,
    l4: L4,
    payload: Vec<u8>,
    ttl: u8,
}

impl Frame {
    fn new(ip: Ip, l4: L4, payload: &[u8]) -> Frame {
        Frame {
            vlans: Vec::new(),
            ip,
            ipv4_options: Vec::new(),
            ipv6_ext: Vec::new(),
            fragment: None,
            l4,
            payload: payload.to_vec(),
            ttl: 64,
        }
    }

    pub fn udp(ip: Ip, sport: u16, dport: u16, payload: &[u8]) -> Frame {
        Frame::new(ip, L4::Udp { sport, dport }, payload)
    }

    pub fn udp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Frame {
        Frame::udp(Ip::V4 { src, dst }, sport, dport, payload)
    }

    pub fn udp6(src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16, payload: &[u8]) -> Frame {
        Frame::udp(Ip::V6 { src, dst }, sport, dport, payload)
    }

    pub fn tcp(ip: Ip, sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Frame {
        Frame::new(ip, L4::Tcp { sport, dport, flags, options: Vec::new() }, payload)
    }

    pub fn tcp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, flags: u8, payload: &[u8]) -> Frame {
        Frame::tcp(Ip::V4 { src, dst }, sport, dport, flags, payload)
    }

    pub fn tcp6(src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16, flags: u8, payload: &[u8]) -> Frame {
        Frame::tcp(Ip::V6 { src, dst }, sport, dport, flags, payload)
    }

    /// An IPv4 datagram whose L4 bytes (header included) are `payload`.
    pub fn raw4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Frame {
        Frame::new(Ip::V4 { src, dst }, L4::Raw(proto), payload)
    }

    pub fn raw6(src: [u8; 16], dst: [u8; 16], proto: u8, payload: &[u8]) -> Frame {
        Frame::new(Ip::V6 { src, dst }, L4::Raw(proto), payload)
    }

    /// Adds a VLAN tag (outermost first): `tpid` 0x8100 or 0x88A8, `vid` 0-4095.
    pub fn vlan(mut self, tpid: u16, vid: u16) -> Frame {
        self.vlans.push((tpid, vid & 0x0FFF));
        self
    }

    /// IPv4 options, padded to a multiple of 4 bytes with End-of-list.
    pub fn ipv4_options(mut self, opts: &[u8]) -> Frame {
        self.ipv4_options = opts.to_vec();
        while !self.ipv4_options.len().is_multiple_of(4) {
            self.ipv4_options.push(0);
        }
        self
    }

    /// Appends an IPv6 extension header of type `kind` whose body after the next-header and
    /// length bytes is `body`, padded to a multiple of 8 bytes (AH: 4).
    pub fn ipv6_ext(mut self, kind: u8, body: &[u8]) -> Frame {
        self.ipv6_ext.push((kind, body.to_vec()));
        self
    }

    /// IPv4 fragment fields, or an IPv6 fragment header when the frame is IPv6. `offset` is in
    /// bytes and must be a multiple of 8.
    pub fn fragment(mut self, id: u32, offset: u16, more: bool) -> Frame {
        self.fragment = Some((id, offset, more));
        self
    }

    pub fn ipv6_fragment(self, id: u32, offset: u16, more: bool) -> Frame {
        self.fragment(id, offset, more)
    }

    pub fn tcp_options(mut self, opts: &[u8]) -> Frame {
        if let L4::Tcp { options, .. } = &mut self.l4 {
            *options = opts.to_vec();
            while options.len() % 4 != 0 {
                options.push(1);
            }
        }
        self
    }

    pub fn ttl(mut self, ttl: u8) -> Frame {
        self.ttl = ttl;
        self
    }

    fn l4_proto(&self) -> u8 {
        match self.l4 {
            L4::Udp { .. } => proto::UDP,
            L4::Tcp { .. } => proto::TCP,
            L4::Raw(p) => p,
        }
    }

    fn l4_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.l4 {
            L4::Udp { sport, dport } => {
                out.extend_from_slice(&sport.to_be_bytes());
                out.extend_from_slice(&dport.to_be_bytes());
                out.extend_from_slice(&((8 + self.payload.len()) as u16).to_be_bytes());
                out.extend_from_slice(&[0, 0]);
            }
            L4::Tcp { sport, dport, flags, options } => {
                out.extend_from_slice(&sport.to_be_bytes());
                out.extend_from_slice(&dport.to_be_bytes());
                out.extend_from_slice(&1u32.to_be_bytes()); // seq
                out.extend_from_slice(&0u32.to_be_bytes()); // ack
                out.push((((20 + options.len()) / 4) as u8) << 4);
                out.push(*flags);
                out.extend_from_slice(&65535u16.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent
                out.extend_from_slice(options);
            }
            L4::Raw(_) => {}
        }
        out.extend_from_slice(&self.payload);
        let csum_at = match self.l4 {
            L4::Udp { .. } => Some(6),
            L4::Tcp { .. } => Some(16),
            L4::Raw(_) => None,
        };
        if let Some(at) = csum_at {
            let mut pseudo = Vec::new();
            match &self.ip {
                Ip::V4 { src, dst } => {
                    pseudo.extend_from_slice(src);
                    pseudo.extend_from_slice(dst);
                    pseudo.extend_from_slice(&[0, self.l4_proto()]);
                    pseudo.extend_from_slice(&(out.len() as u16).to_be_bytes());
                }
                Ip::V6 { src, dst } => {
                    pseudo.extend_from_slice(src);
                    pseudo.extend_from_slice(dst);
                    pseudo.extend_from_slice(&(out.len() as u32).to_be_bytes());
                    pseudo.extend_from_slice(&[0, 0, 0, self.l4_proto()]);
                }
            }
            pseudo.extend_from_slice(&out);
            let mut c = checksum(&pseudo);
            if c == 0 && at == 6 {
                c = 0xFFFF;
            }
            out[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        out
    }

    /// The finished frame.
    pub fn build(&self) -> Vec<u8> {
        let mut f = Vec::with_capacity(64 + self.payload.len());
        f.extend_from_slice(&DST_MAC);
        f.extend_from_slice(&SRC_MAC);
        for (tpid, vid) in &self.vlans {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        let l4 = self.l4_bytes();
        match &self.ip {
            Ip::V4 { src, dst } => {
                f.extend_from_slice(&ETH_P_IPV4.to_be_bytes());
                let ihl = 20 + self.ipv4_options.len();
                let start = f.len();
                f.push(0x40 | (ihl / 4) as u8);
                f.push(0);
                f.extend_from_slice(&((ihl + l4.len()) as u16).to_be_bytes());
                let (id, frag) = match self.fragment {
                    Some((id, off, more)) => (id as u16, (off / 8) | if more { 0x2000 } else { 0 }),
                    None => (0, 0x4000), // DF
                };
                f.extend_from_slice(&id.to_be_bytes());
                f.extend_from_slice(&frag.to_be_bytes());
                f.push(self.ttl);
                f.push(self.l4_proto());
                f.extend_from_slice(&[0, 0]);
                f.extend_from_slice(src);
                f.extend_from_slice(dst);
                f.extend_from_slice(&self.ipv4_options);
                let c = checksum(&f[start..]);
                f[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
            }
            Ip::V6 { src, dst } => {
                f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
                let mut ext: Vec<(u8, Vec<u8>)> = self.ipv6_ext.clone();
                if let Some((id, off, more)) = self.fragment {
                    let mut body = Vec::new();
                    body.extend_from_slice(&(off | more as u16).to_be_bytes());
                    body.extend_from_slice(&id.to_be_bytes());
                    ext.push((proto::FRAGMENT, body));
                }
                let mut chain = Vec::new();
                for (i, (kind, body)) in ext.iter().enumerate() {
                    let next = ext.get(i + 1).map_or(self.l4_proto(), |e| e.0);
                    let mut hdr = vec![next, 0];
                    hdr.extend_from_slice(body);
                    let unit = if *kind == proto::AH { 4 } else { 8 };
                    while hdr.len() % unit != 0 || hdr.len() < 8 {
                        hdr.push(0);
                    }
                    hdr[1] = match *kind {
                        proto::AH => (hdr.len() / 4 - 2) as u8,
                        proto::FRAGMENT => 0,
                        _ => (hdr.len() / 8 - 1) as u8,
                    };
                    chain.extend_from_slice(&hdr);
                }
                f.extend_from_slice(&[0x60, 0, 0, 0]);
                f.extend_from_slice(&((chain.len() + l4.len()) as u16).to_be_bytes());
                f.push(ext.first().map_or(self.l4_proto(), |e| e.0));
                f.push(self.ttl);
                f.extend_from_slice(src);
                f.extend_from_slice(dst);
                f.extend_from_slice(&chain);
            }
        }
        f.extend_from_slice(&l4);
        f
    }
}

/// The Internet checksum (RFC 1071) of `data`.
/// A PPTP enhanced GRE payload (RFC 2637 §4.1) carrying an IPv4 packet, in gre.pcapng's layout:
/// key, sequence and acknowledgement present, PPP with address/control bytes and a 2-byte
/// protocol. Send it with `Frame::raw4(.., proto::GRE, ..)`.
pub fn pptp_gre(ipv4_packet: &[u8]) -> Vec<u8> {
    let mut gre = vec![0x30, 0x81, 0x88, 0x0B];
    gre.extend_from_slice(&(ipv4_packet.len() as u16 + 4).to_be_bytes());
    gre.extend_from_slice(&[0x98, 0x50, 0, 0, 0, 0x6A, 0, 0, 0, 0x8C, 0xFF, 0x03, 0x00, 0x21]);
    gre.extend_from_slice(ipv4_packet);
    gre
}

pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += word as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_checksum_verifies() {
        let f = Frame::udp4([10, 0, 0, 1], 1, [10, 0, 0, 2], 2, b"hello").ipv4_options(&[1]).build();
        assert_eq!(checksum(&f[14..14 + 24]), 0);
        // UDP checksum over the pseudo-header verifies too.
        let mut pseudo = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 13];
        pseudo.extend_from_slice(&f[38..]);
        assert_eq!(checksum(&pseudo), 0);
    }
}
