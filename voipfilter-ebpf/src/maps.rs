//! Every map of the program. Names and capacities come from `voipfilter_common::maps`.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, PerCpuArray, lpm_trie::Key},
};
use voipfilter_common::{
    Reason,
    classify::Verdict,
    maps::{Meta, PORT_RULES_CAPACITY, PREFIX4_RULES_CAPACITY, PREFIX6_RULES_CAPACITY},
    reason::NUM_REASONS,
    rules::{PortKey, Rule, RuleLookup},
    stats::{APP_STATS_LEN, Counter, app_stat_index},
};

#[map]
static PORT_RULES: HashMap<PortKey, Rule> = HashMap::with_max_entries(PORT_RULES_CAPACITY, 0);

#[map]
static PREFIX4_RULES: LpmTrie<[u8; 4], Rule> = LpmTrie::with_max_entries(PREFIX4_RULES_CAPACITY, 0);

#[map]
static PREFIX6_RULES: LpmTrie<[u8; 16], Rule> = LpmTrie::with_max_entries(PREFIX6_RULES_CAPACITY, 0);

#[map]
static APP_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(APP_STATS_LEN, 0);

#[map]
static REASON_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(NUM_REASONS, 0);

/// Written by user space only; declared here so that it is pinned beside the others.
#[map]
static META: Array<Meta> = Array::with_max_entries(1, 0);

/// The rule maps as a [`RuleLookup`].
pub struct Rules;

impl RuleLookup for Rules {
    #[inline(always)]
    fn port(&self, key: PortKey) -> Option<Rule> {
        // SAFETY: the value is copied out at once; user space may update it concurrently, which
        // can only give the old or the new rule.
        unsafe { PORT_RULES.get(&key).copied() }
    }

    #[inline(always)]
    fn prefix4(&self, addr: [u8; 4]) -> Option<Rule> {
        PREFIX4_RULES.get(&Key::new(32, addr)).copied()
    }

    #[inline(always)]
    fn prefix6(&self, addr: [u8; 16]) -> Option<Rule> {
        PREFIX6_RULES.get(&Key::new(128, addr)).copied()
    }
}

/// Counts the packet under its (app, action), and its parse reason if it has one.
#[inline(always)]
pub fn count(v: &Verdict, bytes: u64) {
    if let Some(c) = APP_STATS.get_ptr_mut(app_stat_index(v.app, v.action)) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        }
    }
    if v.reason != Reason::Ok {
        if let Some(n) = REASON_STATS.get_ptr_mut(v.reason as u32) {
            // SAFETY: as above.
            unsafe { *n += 1 };
        }
    }
}
