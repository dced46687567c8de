//! Two reference programs for the per-packet cost measurements (`cargo run --release -p
//! voipfilter --example perf`). They are in the object so that they are built by the same
//! toolchain and measured in the same run as the real programs; the daemon never loads or
//! attaches them (aya loads only the programs it is asked for), and their map is created with
//! a single entry unless the measuring harness resizes it.

use aya_ebpf::{bindings::xdp_action, macros::{map, xdp}, maps::LruHashMap, programs::XdpContext};
use voipfilter_common::Bytes as _;

/// An empty program: the fixed cost of running any XDP program.
#[xdp]
pub fn voipfilter_ref_empty(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// A compact IPv4 5-tuple (16 bytes): (saddr, daddr), (sport, dport, proto). Two words, so
/// that building it is two stores (a struct literal with padding becomes a memset call).
pub type RefKey = [u64; 2];

/// The reference flow table (1 entry in the object; the harness sizes it to 1M).
#[map]
static REF_FLOWS: LruHashMap<RefKey, u64> = LruHashMap::with_max_entries(1, 0);

/// Parses Ethernet / IPv4 (with options) / UDP and does one LRU-hash lookup of the 5-tuple,
/// counting the flow's packets in place (inserting it on a miss).
#[xdp]
pub fn voipfilter_ref_lookup(ctx: XdpContext) -> u32 {
    lookup(&ctx).unwrap_or(xdp_action::XDP_PASS)
}

#[inline(always)]
fn lookup(ctx: &XdpContext) -> Option<u32> {
    // Single-instruction loads, checked against data_end, as the real programs load.
    let p = crate::pkt::Packet::new(ctx);
    if p.load::<u16>(12)? != 0x0008u16 {
        return None; // not IPv4 (0x0800 in network order)
    }
    let vihl = p.load::<u8>(14)?;
    let ihl = ((vihl & 0x0F) as usize) * 4;
    if p.load::<u8>(14 + 9)? != 17 || ihl < 20 {
        return None;
    }
    let addrs = p.load::<u64>(26)?;
    let ports = p.load::<u32>(14 + ihl)?;
    let key: RefKey = [addrs, ports as u64 | 17 << 32];
    match REF_FLOWS.get_ptr_mut(&key) {
        Some(n) => {
            // SAFETY: a valid map value.
            unsafe { *n += 1 };
            Some(xdp_action::XDP_DROP)
        }
        None => {
            let _ = REF_FLOWS.insert(&key, &1, 0);
            Some(xdp_action::XDP_PASS)
        }
    }
}
