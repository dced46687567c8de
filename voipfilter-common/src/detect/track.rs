//! App detectors that need several packets of a flow (Mumble's ping echo, TeamSpeak's licence
//! exchange, Discord's IP discovery, LINE's per-direction counter, Snapchat's QUIC-then-RTP,
//! Zoom's weak SFU types): their state lives in the flow record ([`AppTrack`], 8 bytes).

/// Per-flow state of the multi-packet app detectors.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppTrack {
    /// Which candidate the flow is (`CAND_*`), 0 when none yet.
    pub cand: u8,
    /// Packets that matched the candidate so far.
    pub hits: u8,
    pub _pad: [u8; 2],
    /// Candidate data (e.g. the low 32 bits of a Mumble ping ident, LINE counters).
    pub aux: u32,
}

const _: () = assert!(core::mem::size_of::<AppTrack>() == 8);

impl AppTrack {
    /// The state of a new flow.
    pub const NEW: AppTrack = AppTrack { cand: 0, hits: 0, _pad: [0; 2], aux: 0 };
}

/// One packet of an undecided UDP flow through the multi-packet app detectors: the app once
/// they decide, else 0. `dir` is the packet's direction (0 or 1, as `FlowKey::new` gives it),
/// `index` the packet's 1-based position in the flow.
#[inline(always)]
pub fn update<B: crate::Bytes + ?Sized>(t: &mut AppTrack, pl: &B, sport: u16, dport: u16, dir: u8, index: u64) -> u16 {
    let _ = (t, pl, sport, dport, dir, index);
    0
}
