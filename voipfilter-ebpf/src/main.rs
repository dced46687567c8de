//! The voipfilter XDP program: parse, look up, decide, count. The logic lives in
//! `voipfilter_common::classify`; this crate only binds it to the packet and the maps.
#![no_std]
#![no_main]

mod maps;
mod pkt;

use aya_ebpf::{bindings::xdp_action, helpers::bpf_xdp_adjust_meta, macros::xdp, programs::XdpContext};
use voipfilter_common::{
    Action,
    classify::{Verdict, VerdictRecord, classify},
};

/// Load-time switch (see `VerdictRecord`): 1 makes the program prepend its verdict to the frame
/// as XDP metadata, for replay and tests. 0 on live interfaces: the verifier prunes the branch.
#[unsafe(no_mangle)]
static REPORT_VERDICT: u8 = 0;

#[xdp]
pub fn voipfilter(ctx: XdpContext) -> u32 {
    let pkt = pkt::Packet::new(&ctx);
    let verdict = classify(&pkt, &maps::Rules);
    // The single exit: every packet is counted under its (app, action).
    maps::count(&verdict, pkt.frame_len());
    // SAFETY: a plain read of a load-time constant.
    if unsafe { core::ptr::read_volatile(&REPORT_VERDICT) } != 0 {
        report(&ctx, &verdict);
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
