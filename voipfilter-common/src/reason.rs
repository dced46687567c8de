//! Why a packet was not parsed down to its L4 ports. Each reason has a counter (`REASON_STATS`);
//! such packets are never aborted: they get the verdict of the rules that still apply (prefix
//! rules when the IP header was read) or pass.

#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Reason {
    /// Fully parsed: IP addresses and L4 ports are known. Not counted.
    #[default]
    Ok = 0,
    /// The frame ends inside a header (Ethernet, VLAN, IP, extension header, UDP or TCP).
    Truncated = 1,
    /// Not IPv4 or IPv6 (ARP, LLDP, ...).
    NotIp = 2,
    /// More than two VLAN tags.
    VlanTooDeep = 3,
    /// IP version or header length field inconsistent with the ethertype or the frame.
    BadIpHeader = 4,
    /// IPv6 extension chain longer than we walk, or past the offset we can follow.
    Ipv6ExtChain = 5,
    /// A non-first IP fragment: no L4 header to read.
    LaterFragment = 6,
    /// Neither UDP nor TCP (ICMP, ESP, SCTP, ...): no ports.
    OtherL4 = 7,
    /// The packet needed inspection but the inspection program could not be reached (tail
    /// call failed): passed uninspected. Should stay 0; anything else is a bug to report.
    InspectFailed = 8,
}

/// Slots in the reason counter array.
pub const NUM_REASONS: u32 = 9;

impl Reason {
    pub const ALL: [Reason; NUM_REASONS as usize] = [
        Reason::Ok,
        Reason::Truncated,
        Reason::NotIp,
        Reason::VlanTooDeep,
        Reason::BadIpHeader,
        Reason::Ipv6ExtChain,
        Reason::LaterFragment,
        Reason::OtherL4,
        Reason::InspectFailed,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Reason::Ok => "parsed",
            Reason::Truncated => "truncated",
            Reason::NotIp => "not-ip",
            Reason::VlanTooDeep => "vlan-too-deep",
            Reason::BadIpHeader => "bad-ip-header",
            Reason::Ipv6ExtChain => "ipv6-ext-chain",
            Reason::LaterFragment => "later-fragment",
            Reason::OtherL4 => "other-l4",
            Reason::InspectFailed => "inspect-failed",
        }
    }
}
