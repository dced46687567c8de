//! The benchmark's own XDP programs: never attached by the daemon, only by `voipfilter-bench`.
//!
//! - `bench_pass`, `bench_drop`: the empty programs every figure is compared with.
//! - `bench_ref`: the reference a real filter is held to: parse Ethernet/IPv4/UDP and look the
//!   5-tuple up once in an LRU hash of 1M entries (drop on a hit, pass on a miss).
//! - `bench_ref_new`: the same, and on a miss it inserts the 5-tuple (the least a flow table
//!   does for the first packet of a flow); run under `bench_newflow`, this is the new-flow
//!   reference.
//! - `bench_newflow`: writes a per-CPU counter into the frame (at `CONF[STAMP]`, e.g. the IPv4
//!   source address) and tail-calls `NEXT[0]`, so that BPF_PROG_TEST_RUN with a repeat count
//!   sees a new flow on every run. Timed against itself tail-calling `bench_pass`.
//! - `bench_gen`: the live-frames traffic generator (BPF_F_TEST_XDP_LIVE_FRAMES): optionally
//!   overwrites the frame with the next of `CONF[TEMPLATES]` 64-byte templates (a traffic mix),
//!   optionally stamps the counter (a new flow per frame), then redirects the frame to
//!   `CONF[IFINDEX]`.
#![no_std]
#![no_main]
// One-instruction packet loads (`read`); bench/build.rs builds this crate with RUSTC_BOOTSTRAP=1.
#![feature(asm_experimental_arch)]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::generated::bpf_redirect,
    macros::{map, xdp},
    maps::{Array, LruHashMap, PerCpuArray, ProgramArray},
    programs::XdpContext,
};

/// Slots of `CONF`.
const STAMP: u32 = 0;
const IFINDEX: u32 = 1;
const TEMPLATES: u32 = 2;
/// Length of every template frame of the generator's mix.
const TEMPLATE_LEN: usize = 64;
const MAX_TEMPLATES: u32 = 64;

#[map]
static CONF: Array<u32> = Array::with_max_entries(4, 0);
#[map]
static SEQ: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);
#[map]
static NEXT: ProgramArray = ProgramArray::with_max_entries(1, 0);
#[map]
static MIX: Array<[u8; TEMPLATE_LEN]> = Array::with_max_entries(MAX_TEMPLATES, 0);

/// The reference's key: IPv4 5-tuple (16 bytes): source and destination address as loaded,
/// then source port, destination port (as loaded) and protocol (17) in a u32. Built as two
/// 8-byte words: with a store per field, the kernel's 4- and 8-byte reads of the key (hash,
/// compare) straddle the stores and stall (store-to-load forwarding fails), which cost the
/// reference some 15 ns. Its bytes are `objects::RefKey`'s in user space.
type RefKey = [u64; 2];

#[map]
static REF_FLOWS: LruHashMap<RefKey, u64> = LruHashMap::with_max_entries(1 << 20, 0);

#[xdp]
pub fn bench_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[xdp]
pub fn bench_drop(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_DROP
}

/// A `T` (1, 2, 4 or 8 bytes) at `off`, bounds-checked, in one load instruction: packet fields
/// are not aligned, and `read_unaligned` compiles to a load per byte on BPF (which made the
/// reference several times longer than a C one with word loads; voipfilter's programs load the
/// same way, `voipfilter-ebpf/src/pkt.rs`).
#[inline(always)]
fn read<T: Copy>(ctx: &XdpContext, off: usize) -> Option<T> {
    let p = ctx.data() + off;
    if p + core::mem::size_of::<T>() > ctx.data_end() {
        return None;
    }
    let v: u64;
    // SAFETY: inside the packet, checked above; a plain load of packet memory, which the
    // verifier and the JIT accept unaligned on x86-64 and arm64.
    unsafe {
        match core::mem::size_of::<T>() {
            1 => core::arch::asm!("{0} = *(u8 *)({1} + 0)", lateout(reg) v, in(reg) p, options(readonly, nostack, preserves_flags)),
            2 => core::arch::asm!("{0} = *(u16 *)({1} + 0)", lateout(reg) v, in(reg) p, options(readonly, nostack, preserves_flags)),
            4 => core::arch::asm!("{0} = *(u32 *)({1} + 0)", lateout(reg) v, in(reg) p, options(readonly, nostack, preserves_flags)),
            8 => core::arch::asm!("{0} = *(u64 *)({1} + 0)", lateout(reg) v, in(reg) p, options(readonly, nostack, preserves_flags)),
            _ => return Some(core::ptr::read_unaligned(p as *const T)),
        }
        Some(core::mem::transmute_copy(&v))
    }
}

#[xdp]
pub fn bench_ref(ctx: XdpContext) -> u32 {
    match reference(&ctx) {
        Some(true) => xdp_action::XDP_DROP,
        _ => xdp_action::XDP_PASS,
    }
}

#[xdp]
pub fn bench_ref_new(ctx: XdpContext) -> u32 {
    let Some(key) = ref_key(&ctx) else { return xdp_action::XDP_PASS };
    // SAFETY: the value is only tested for presence.
    if unsafe { REF_FLOWS.get(&key) }.is_some() {
        return xdp_action::XDP_DROP;
    }
    // A full table evicts its least recently used entry; an error is not expected and would
    // only make the reference cheaper.
    let _ = REF_FLOWS.insert(&key, &1, 0);
    xdp_action::XDP_PASS
}

#[inline(always)]
fn reference(ctx: &XdpContext) -> Option<bool> {
    let Some(key) = ref_key(ctx) else { return Some(false) };
    // SAFETY: the value is only tested for presence.
    Some(unsafe { REF_FLOWS.get(&key) }.is_some())
}

/// The IPv4/UDP 5-tuple of the frame, if it is one.
#[inline(always)]
fn ref_key(ctx: &XdpContext) -> Option<RefKey> {
    let ethertype: u16 = read(ctx, 12)?;
    if ethertype != 0x0800u16.to_be() {
        return None;
    }
    let vihl: u8 = read(ctx, 14)?;
    let proto: u8 = read(ctx, 14 + 9)?;
    if vihl >> 4 != 4 || proto != 17 {
        return None;
    }
    let addrs: u64 = read(ctx, 14 + 12)?;
    let l4 = 14 + usize::from(vihl & 0x0F) * 4;
    let ports: u32 = read(ctx, l4)?;
    Some([addrs, u64::from(ports) | 17 << 32])
}

/// The next value of the per-CPU counter.
#[inline(always)]
fn next_seq() -> u32 {
    let Some(seq) = SEQ.get_ptr_mut(0) else { return 0 };
    // SAFETY: a per-CPU slot, only this CPU's program touches it.
    unsafe {
        *seq = (*seq).wrapping_add(1);
        *seq
    }
}

/// Writes `n`, big-endian, at `CONF[STAMP]` (0: nowhere).
#[inline(always)]
fn stamp(ctx: &XdpContext, n: u32) {
    let off = CONF.get(STAMP).copied().unwrap_or(0) as usize;
    if off == 0 || off > 512 {
        return;
    }
    let p = ctx.data() + off;
    if p + 4 <= ctx.data_end() {
        // SAFETY: inside the packet, checked above.
        unsafe { core::ptr::write_unaligned(p as *mut u32, n.to_be()) };
    }
}

#[xdp]
pub fn bench_newflow(ctx: XdpContext) -> u32 {
    stamp(&ctx, next_seq());
    // SAFETY: NEXT[0] is an XDP program set by user space.
    unsafe { NEXT.tail_call(&ctx, 0) };
    xdp_action::XDP_ABORTED
}

#[xdp]
pub fn bench_gen(ctx: XdpContext) -> u32 {
    let n = CONF.get(TEMPLATES).copied().unwrap_or(0);
    let seq = next_seq();
    if n > 0 && n <= MAX_TEMPLATES {
        let i = seq % n;
        if let Some(t) = MIX.get(i) {
            let p = ctx.data();
            if p + TEMPLATE_LEN <= ctx.data_end() {
                // SAFETY: TEMPLATE_LEN bytes inside the packet, checked above.
                unsafe { core::ptr::write_unaligned(p as *mut [u8; TEMPLATE_LEN], *t) };
            }
        }
    }
    stamp(&ctx, seq);
    let ifindex = CONF.get(IFINDEX).copied().unwrap_or(0);
    // SAFETY: plain helper call.
    unsafe { bpf_redirect(ifindex, 0) as u32 }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
