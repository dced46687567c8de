//! Counter layouts. Every counter is a per-CPU array slot; user space sums the CPUs.

use crate::{Action, action::NUM_ACTIONS, app::MAX_APPS};

/// Packets and bytes (whole frames, as the XDP program sees them).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

const _: () = assert!(core::mem::size_of::<Counter>() == 16);

/// Slots in `APP_STATS`: one per (app, action).
pub const APP_STATS_LEN: u32 = MAX_APPS * NUM_ACTIONS;

/// Index of the (app, action) counter in `APP_STATS`. `app` must be below `MAX_APPS`.
#[inline(always)]
pub const fn app_stat_index(app: u16, action: Action) -> u32 {
    app as u32 * NUM_ACTIONS + action as u32
}

impl Counter {
    pub fn add(&mut self, other: &Counter) {
        self.packets = self.packets.wrapping_add(other.packets);
        self.bytes = self.bytes.wrapping_add(other.bytes);
    }
}
