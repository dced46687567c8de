//! What a rule does with the packets it matches.

/// A rule's action. Stored as `u8` in map values; index into the per-(app, action) counters.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Let the packet through (also: no rule matched).
    Pass = 0,
    /// Drop the packet (`XDP_DROP`).
    Drop = 1,
    /// Count the packet under its app, then let it through.
    Monitor = 2,
}

/// Slots per app in the counter array (one spare for a future action).
pub const NUM_ACTIONS: u32 = 4;

impl Action {
    pub const ALL: [Action; 3] = [Action::Pass, Action::Drop, Action::Monitor];

    #[inline(always)]
    pub const fn from_u8(v: u8) -> Option<Action> {
        match v {
            0 => Some(Action::Pass),
            1 => Some(Action::Drop),
            2 => Some(Action::Monitor),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Action::Pass => "pass",
            Action::Drop => "drop",
            Action::Monitor => "monitor",
        }
    }

    pub fn from_name(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == s)
    }
}
