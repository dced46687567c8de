//! The voipfilter XDP programs: parse, look up, decide, count. The logic lives in
//! `voipfilter_common::engine`; this crate only binds it to the packet and the maps.
//!
//! Seven programs, chained by tail calls so that each has its own 512-byte stack and verifier
//! budget: `voipfilter` (attached) parses the outer headers and runs the engine's fast path
//! (parse errors, user rules, established flows); GTP-U and GRE packets continue in
//! `voipfilter_tunnel` (inner headers) and `voipfilter_fast` (the fast path on them); packets
//! that need the detectors continue in `voipfilter_detect` (binary stateless detectors),
//! `voipfilter_text` (SIP/SDP, MGCP, Megaco) for text payloads, `voipfilter_apps` (one-packet
//! app detectors) for UDP that no protocol detector claimed, and then `voipfilter_inspect`
//! (flow state, prefix lists, RTP, multi-packet app detectors). Parsed headers and detector results go from one
//! program to the next in per-CPU slots.
#![no_std]
#![no_main]
// BPF inline assembly (pkt.rs: one-instruction unaligned packet loads); the nested build of
// this crate runs with RUSTC_BOOTSTRAP=1 (voipfilter/build.rs).
#![feature(asm_experimental_arch)]

mod maps;
mod reference;
mod pkt;

use aya_ebpf::{bindings::xdp_action, helpers::bpf_xdp_adjust_meta, macros::xdp, programs::XdpContext};
use voipfilter_common::{
    Action, App, Reason,
    classify::{Verdict, VerdictRecord},
    engine::{self, Fast, Stateless},
    packet::{self, Headers},
};

/// Load-time switch (see `VerdictRecord`): 1 makes the programs prepend their verdict to the
/// frame as XDP metadata, for replay and tests. 0 on live interfaces: the verifier prunes it.
#[unsafe(no_mangle)]
static REPORT_VERDICT: u8 = 0;

/// The attached program: parse (outer headers), then the fast path.
#[xdp]
pub fn voipfilter(ctx: XdpContext) -> u32 {
    let pkt = pkt::Packet::new(&ctx);
    // Parsed on the stack (the verifier keeps the bounds of stack values, not of map memory),
    // zeroed in place (see `zero_in_place`).
    let mut h = core::mem::MaybeUninit::<Headers>::uninit();
    // The plain IPv4 path first: the express lane decides most of it from headers held in
    // registers; the rest takes the fast path compiled separately for it (LLVM then knows its
    // constant offsets and flags: no VLAN, IPv4, not a fragment, ports read).
    let verdict = match packet::plain_v4(&pkt) {
        Some(v4) => match engine::express(&pkt, &maps::Maps, &v4) {
            Some(verdict) => verdict,
            None => {
                let h = zero_in_place(&mut h);
                v4.fill(h);
                after_parse(&ctx, &pkt, h, packet::is_tunnel(h))
            }
        },
        None => {
            let h = zero_in_place(&mut h);
            match packet::parse_into_general(&pkt, h, false) {
                Err(reason) => Verdict { app: App::Unknown as u16, action: Action::Pass, reason },
                Ok(tunnel) => after_parse(&ctx, &pkt, h, tunnel),
            }
        }
    };
    finish(&ctx, &verdict, pkt.frame_len())
}

/// The outer headers are parsed: a tunnel packet continues in the tunnel program, any other
/// takes the fast path, and continues in the detectors if it needs them.
#[inline(always)]
fn after_parse(ctx: &XdpContext, pkt: &pkt::Packet, h: &Headers, tunnel: bool) -> Verdict {
    if tunnel {
        maps::hand_over(h);
        maps::jump(ctx, maps::Jump::Tunnel);
        return failed();
    }
    match engine::fast(pkt, &maps::Maps, h) {
        Fast::Done(v) => v,
        Fast::Inspect => {
            maps::hand_over(h);
            maps::jump(ctx, maps::Jump::Detect);
            failed()
        }
    }
}

/// Zeroes headers in place with volatile stores. This keeps them in memory: LLVM does not
/// split a stack object with volatile accesses into registers, which it otherwise does with a
/// `Headers::zeroed()` value, and then the twenty-odd fields, live until the hand-over, spill
/// and get reassembled around every use (2-3 ns per packet).
#[inline(always)]
fn zero_in_place(h: &mut core::mem::MaybeUninit<Headers>) -> &mut Headers {
    let p = h.as_mut_ptr().cast::<u64>();
    let mut i = 0;
    while i < core::mem::size_of::<Headers>() / 8 {
        // SAFETY: within `h`, aligned.
        unsafe { core::ptr::write_volatile(p.add(i), 0) };
        i += 1;
    }
    // SAFETY: all zero is a valid Headers.
    unsafe { h.assume_init_mut() }
}

/// GTP-U and GRE packets: parse the inner packet (from the outer headers handed over), then
/// the fast path on it.
#[xdp]
pub fn voipfilter_tunnel(ctx: XdpContext) -> u32 {
    let pkt = pkt::Packet::new(&ctx);
    // On the stack: the verifier keeps the bounds that `parse_inner` checks.
    let mut h = Headers::zeroed();
    let Some(outer) = maps::handed_over() else {
        return finish(&ctx, &failed(), pkt.frame_len());
    };
    maps::copy_into(outer, &mut h);
    let verdict = match packet::parse_inner(&pkt, &mut h) {
        Err(reason) => Verdict { app: App::Unknown as u16, action: Action::Pass, reason },
        Ok(_) => {
            maps::hand_over(&h);
            maps::jump(&ctx, maps::Jump::Fast);
            failed()
        }
    };
    finish(&ctx, &verdict, pkt.frame_len())
}

/// The fast path on headers handed over (tunnelled packets).
#[xdp]
pub fn voipfilter_fast(ctx: XdpContext) -> u32 {
    let pkt = pkt::Packet::new(&ctx);
    let verdict = match maps::handed_over() {
        None => failed(),
        Some(h) => match engine::fast(&pkt, &maps::Maps, h) {
            Fast::Done(v) => v,
            Fast::Inspect => {
                // The headers are already in the hand-over slot.
                maps::jump(&ctx, maps::Jump::Detect);
                failed()
            }
        },
    };
    finish(&ctx, &verdict, pkt.frame_len())
}

/// The binary stateless detectors (STUN, H.323, SCCP, IAX2, RTP over TCP), on headers handed
/// over; payloads that start like text continue in `voipfilter_text`. The result goes to
/// `voipfilter_inspect` in a per-CPU slot.
#[xdp]
pub fn voipfilter_detect(ctx: XdpContext) -> u32 {
    let pkt = pkt::Packet::new(&ctx);
    if let Some(h) = maps::handed_over() {
        match engine::stateless_binary(&pkt, h, &maps::Maps) {
            Stateless::Done(found) => next_after_detectors(&ctx, h, &found),
            Stateless::Text => maps::jump(&ctx, maps::Jump::Text),
        }
    }
    finish(&ctx, &failed(), pkt.frame_len())
}

/// The text stateless detectors (SIP with SDP, MGCP, Megaco), on headers handed over.
#[xdp]
pub fn voipfilter_text(ctx: XdpContext) -> u32 {
    let pkt = pkt::Packet::new(&ctx);
    if let Some(h) = maps::handed_over() {
        let found = engine::stateless_text(&pkt, h, &maps::Maps);
        next_after_detectors(&ctx, h, &found);
    }
    finish(&ctx, &failed(), pkt.frame_len())
}

/// After the protocol detectors: unclaimed UDP goes to the app detectors, the rest (with what
/// was found) to the inspection program.
#[inline(always)]
fn next_after_detectors(ctx: &XdpContext, h: &Headers, found: &engine::Found) {
    if engine::wants_apps(h, found) {
        maps::jump(ctx, maps::Jump::Apps);
    } else {
        maps::store_found(found);
        maps::jump(ctx, maps::Jump::Inspect);
    }
}

/// The one-packet app detectors (Zoom, Discord, TeamSpeak, Telegram, ...) on UDP payloads the
/// protocol detectors did not claim, on headers handed over.
#[xdp]
pub fn voipfilter_apps(ctx: XdpContext) -> u32 {
    let pkt = pkt::Packet::new(&ctx);
    if let Some(h) = maps::handed_over() {
        let found = engine::stateless_apps(&pkt, h);
        maps::store_found(&found);
        maps::jump(&ctx, maps::Jump::Inspect);
    }
    finish(&ctx, &failed(), pkt.frame_len())
}

/// Flow state and the stateful detectors (RTP/RTCP), on headers and detector results handed
/// over.
#[xdp]
pub fn voipfilter_inspect(ctx: XdpContext) -> u32 {
    let pkt = pkt::Packet::new(&ctx);
    let verdict = match (maps::handed_over(), maps::found()) {
        (Some(h), Some(found)) => engine::inspect_parsed(&pkt, h, &maps::Maps, found),
        _ => failed(),
    };
    finish(&ctx, &verdict, pkt.frame_len())
}

/// The verdict when a tail call failed (only if user space did not fill the program array):
/// fail open, and say so in the counters.
#[inline(always)]
fn failed() -> Verdict {
    Verdict { app: App::Unknown as u16, action: Action::Pass, reason: Reason::InspectFailed }
}

/// The single exit of every program: count the packet under its (app, action), report the
/// verdict if asked to, and turn the action into an XDP action.
#[inline(always)]
fn finish(ctx: &XdpContext, verdict: &Verdict, len: u64) -> u32 {
    maps::count(verdict, len);
    // SAFETY: a plain read of a load-time constant.
    if unsafe { core::ptr::read_volatile(&REPORT_VERDICT) } != 0 {
        report(ctx, verdict);
    }
    match verdict.action {
        Action::Drop => xdp_action::XDP_DROP,
        Action::Pass | Action::Monitor => xdp_action::XDP_PASS,
    }
}

/// Writes the verdict record into the XDP metadata area in front of the frame.
#[inline(always)]
fn report(ctx: &XdpContext, v: &Verdict) {
    const LEN: usize = core::mem::size_of::<VerdictRecord>();
    // SAFETY: the helper checks the headroom; a failure leaves the frame as it was.
    if unsafe { bpf_xdp_adjust_meta(ctx.ctx, -(LEN as i32)) } != 0 {
        return;
    }
    let meta = ctx.metadata();
    if meta + LEN > ctx.data() {
        return;
    }
    // SAFETY: [meta, meta + LEN) is inside the metadata area, checked above.
    unsafe { core::ptr::write_unaligned(meta as *mut VerdictRecord, VerdictRecord::new(v)) };
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // A panic path that survives optimisation makes the verifier reject the program
    // ("last insn is not an exit or jmp"), so a hidden panic is a load error, not UB.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
