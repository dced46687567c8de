//! Map names (also the pin file names under the pin directory), capacities and the metadata
//! record. Written once here for both sides.

/// Default pin directory of a running instance.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/voipfilter";

/// Name of the XDP program in the object (the one attached).
pub const PROGRAM: &str = "voipfilter";
/// The programs reached by tail calls through `JUMP`, at these indexes.
pub const TAIL_PROGRAMS: &[(&str, u32)] =
    &[("voipfilter_inspect", 0), ("voipfilter_tunnel", 1), ("voipfilter_fast", 2), ("voipfilter_detect", 3), ("voipfilter_text", 4), ("voipfilter_apps", 5)];
/// The program array of the tail calls.
pub const JUMP: &str = "JUMP";

pub const PORT_RULES: &str = "PORT_RULES";
pub const PREFIX4_RULES: &str = "PREFIX4_RULES";
pub const PREFIX6_RULES: &str = "PREFIX6_RULES";
pub const APP_STATS: &str = "APP_STATS";
pub const REASON_STATS: &str = "REASON_STATS";
pub const META: &str = "META";
pub const POLICY: &str = "POLICY";
pub const CONFIG: &str = "CONFIG";
/// IPv6 flows (40-byte `FlowKey`).
pub const FLOWS: &str = "FLOWS";
/// IPv4 flows (16-byte `FlowKey4`).
pub const FLOWS4: &str = "FLOWS4";
pub const EXPECT: &str = "EXPECT";
pub const FRAGS: &str = "FRAGS";
pub const TCP_CALLS: &str = "TCP_CALLS";
pub const LIST4: &str = "LIST4";
pub const LIST6: &str = "LIST6";
pub const LISTS: &str = "LISTS";
pub const LIST16: &str = "LIST16";

/// Every map the program declares, in pin order.
pub const ALL: &[&str] = &[
    PORT_RULES, PREFIX4_RULES, PREFIX6_RULES, APP_STATS, REASON_STATS, META, POLICY, CONFIG, FLOWS, FLOWS4, EXPECT, FRAGS,
    TCP_CALLS, LIST4, LIST6, LISTS, LIST16,
];

/// Default size of the flow table (`--flows` / `flows =` changes it at load time): the
/// capacity of `FLOWS4`; the IPv6 table `FLOWS` gets a quarter of it ([`flows6_capacity`]).
pub const FLOWS_CAPACITY: u32 = 1 << 20;

/// Capacity of the IPv6 flow table `FLOWS` for a flow-table size of `flows` (the IPv4 table
/// `FLOWS4`): a quarter, at least 1024.
pub const fn flows6_capacity(flows: u32) -> u32 {
    if flows / 4 > 1024 { flows / 4 } else { 1024 }
}
/// Endpoints announced by signalling or by classified call flows.
pub const EXPECT_CAPACITY: u32 = 65_536;
/// First fragments whose later fragments are still expected.
pub const FRAGS_CAPACITY: u32 = 16_384;

/// (protocol, port) pairs: UDP and TCP, every port.
pub const PORT_RULES_CAPACITY: u32 = 2 * 65536;
pub const PREFIX4_RULES_CAPACITY: u32 = 262_144;
pub const PREFIX6_RULES_CAPACITY: u32 = 131_072;
/// Prefixes of the app lists (all lists together).
pub const LIST4_CAPACITY: u32 = 65_536;
pub const LIST6_CAPACITY: u32 = 16_384;
/// Words of `LIST16`: one bit per IPv4 /16.
pub const LIST16_WORDS: u32 = 1024;

/// Bumped whenever a key or value layout changes; a CLI refuses maps of another layout.
pub const LAYOUT_VERSION: u32 = 5;
/// "VOIP" in ASCII.
pub const META_MAGIC: u32 = 0x564F_4950;
/// Interfaces one instance records in its metadata.
pub const MAX_IFACES: usize = 16;

/// The single record in `META`, written by the daemon when it starts.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub magic: u32,
    pub layout: u32,
    /// Wall-clock load time, nanoseconds since the Unix epoch.
    pub loaded_unix_ns: u64,
    /// Process id of the daemon.
    pub pid: u32,
    pub n_ifaces: u32,
    pub ifindex: [u32; MAX_IFACES],
    /// Attach mode per interface: 1 native (driver), 2 skb (generic).
    pub mode: [u8; MAX_IFACES],
}

const _: () = assert!(core::mem::size_of::<Meta>() == 24 + 4 * MAX_IFACES + MAX_IFACES);

pub const MODE_NATIVE: u8 = 1;
pub const MODE_SKB: u8 = 2;
