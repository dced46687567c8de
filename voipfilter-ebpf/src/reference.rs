//! Two reference programs for the per-packet cost measurements (`cargo run --release -p
//! voipfilter --example perf`). They are in the object so that they are built by the same
//! toolchain and measured in the same run as the real programs; the daemon never loads or
//! attaches them (aya loads only the programs it is asked for), and their map is created with
//! a single entry unless the measuring harness resizes it.

use aya_ebpf::{bindings::xdp_action, macros::{map, xdp}, maps::LruHashMap, programs::XdpContext};

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

#[inline(always)]
fn at<T>(ctx: &XdpContext, off: usize) -> Option<*const T> {
    let p = ctx.data() + off;
    if p + core::mem::size_of::<T>() > ctx.data_end() {
        return None;
    }
    Some(p as *const T)
}

/// Parses Ethernet / IPv4 (with options) / UDP and does one LRU-hash lookup of the 5-tuple,
/// counting the flow's packets in place (inserting it on a miss).
#[xdp]
pub fn voipfilter_ref_lookup(ctx: XdpContext) -> u32 {
    lookup(&ctx).unwrap_or(xdp_action::XDP_PASS)
}

#[inline(always)]
fn lookup(ctx: &XdpContext) -> Option<u32> {
    // SAFETY: every pointer is checked against data_end by `at`.
    unsafe {
        if *at::<u16>(ctx, 12)? != 0x0008u16 {
            return None; // not IPv4 (0x0800 in network order)
        }
        let ip = at::<[u8; 20]>(ctx, 14)?;
        let ihl = (((*ip)[0] & 0x0F) as usize) * 4;
        if (*ip)[9] != 17 || ihl < 20 {
            return None;
        }
        let ports = at::<[u16; 2]>(ctx, 14 + ihl)?;
        let addrs = core::ptr::read_unaligned(at::<[u32; 2]>(ctx, 26)?);
        let ports = core::ptr::read_unaligned(ports);
        let key: RefKey = [
            addrs[0] as u64 | (addrs[1] as u64) << 32,
            ports[0] as u64 | (ports[1] as u64) << 16 | 17 << 32,
        ];
        match REF_FLOWS.get_ptr_mut(&key) {
            Some(n) => {
                *n += 1;
                Some(xdp_action::XDP_DROP)
            }
            None => {
                let _ = REF_FLOWS.insert(&key, &1, 0);
                Some(xdp_action::XDP_PASS)
            }
        }
    }
}
