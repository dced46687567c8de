//! Every map of the program, and the [`Tables`] view of them that the engine uses. Names and
//! capacities come from `voipfilter_common::maps`.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, ProgramArray, lpm_trie::Key},
    programs::XdpContext,
};
use voipfilter_common::{
    Action, Reason,
    app::MAX_APPS,
    classify::Verdict,
    engine::{Found, Tables},
    flow::{CONFIG_LISTS_B, Config, EndpointKey, Flow, FlowKey, FlowKey4, FragKey, TCP_CALLS_SLOTS, TcpSlot, tcp_slot, tcp_slot4},
    lists::{ListEntry, ListTable, Listed, MAX_LISTS, slash16},
    packet::{Headers, Plain4, proto},
    maps::{
        EXPECT_CAPACITY, FLOWS_CAPACITY, FRAGS_CAPACITY, LIST4_CAPACITY, LIST6_CAPACITY, LIST16_WORDS, Meta, PORT_RULES_CAPACITY, PREFIX4_RULES_CAPACITY,
        PREFIX6_RULES_CAPACITY,
    },
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

/// Action per app id (an `Action` as u8), written by user space.
#[map]
static POLICY: Array<u8> = Array::with_max_entries(MAX_APPS, 0);

#[map]
static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

/// IPv6 flows (40-byte key).
#[map]
static FLOWS: LruHashMap<FlowKey, Flow> = LruHashMap::with_max_entries(FLOWS_CAPACITY, 0);

/// IPv4 flows, with a 16-byte key: the kernel hashes and compares the key on every lookup.
#[map]
static FLOWS4: LruHashMap<FlowKey4, Flow> = LruHashMap::with_max_entries(FLOWS_CAPACITY, 0);

#[map]
static EXPECT: LruHashMap<EndpointKey, u16> = LruHashMap::with_max_entries(EXPECT_CAPACITY, 0);

#[map]
static FRAGS: LruHashMap<FragKey, u16> = LruHashMap::with_max_entries(FRAGS_CAPACITY, 0);

#[map]
static TCP_CALLS: Array<TcpSlot> = Array::with_max_entries(TCP_CALLS_SLOTS, 0);

/// App prefix lists (`voipfilter_common::lists`): prefix -> lists containing it.
#[map]
static LIST4: LpmTrie<[u8; 4], ListEntry> = LpmTrie::with_max_entries(LIST4_CAPACITY, 0);

#[map]
static LIST6: LpmTrie<[u8; 16], ListEntry> = LpmTrie::with_max_entries(LIST6_CAPACITY, 0);

/// One bit per IPv4 /16 holding a list prefix: `LIST4` is looked up only under a set bit.
#[map]
static LIST16: Array<u64> = Array::with_max_entries(LIST16_WORDS, 0);

/// The list slots (app, scope, version): two tables, the one in use named by `CONFIG_LISTS_B`.
#[map]
static LISTS: Array<ListTable> = Array::with_max_entries(2, 0);

/// A per-CPU scratch slot where expectation keys are built (the 512-byte BPF stack is the
/// scarce resource of the inspection program).
#[map]
static SCRATCH_ENDPOINT: PerCpuArray<EndpointKey> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
fn endpoint_key(addr: &[u8; 16], port: u16, proto: u8) -> Option<&'static EndpointKey> {
    let k = SCRATCH_ENDPOINT.get_ptr_mut(0)?;
    // SAFETY: this CPU's slot; XDP programs do not nest on a CPU.
    unsafe {
        (*k).addr = *addr;
        (*k).port = port;
        (*k).proto = proto;
        (*k)._pad = 0;
        Some(&*k)
    }
}

/// The programs reached by tail calls, indexed by [`Jump`] (set by user space after loading).
#[map]
static JUMP: ProgramArray = ProgramArray::with_max_entries(6, 0);

/// What the stateless detectors found, for the inspection program (per CPU, like `HANDOVER`).
#[map]
static FOUND: PerCpuArray<Found> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
pub fn store_found(f: &Found) {
    if let Some(slot) = FOUND.get_ptr_mut(0) {
        // SAFETY: this CPU's slot; 8 plain bytes.
        unsafe { *slot = *f };
    }
}

#[inline(always)]
pub fn found() -> Option<Found> {
    FOUND.get(0).copied()
}

/// The parsed headers handed from the fast path to the inspection program (per CPU: a tail
/// call runs on the CPU that made it, before any other packet).
#[map]
static HANDOVER: PerCpuArray<Headers> = PerCpuArray::with_max_entries(1, 0);

/// Indexes of the programs in `JUMP` (user space fills it after loading).
#[repr(u32)]
pub enum Jump {
    Inspect = 0,
    Tunnel = 1,
    Fast = 2,
    Detect = 3,
    Text = 4,
    Apps = 5,
}

/// Continues in another program; returns only if the tail call fails.
#[inline(always)]
pub fn jump(ctx: &XdpContext, to: Jump) {
    // SAFETY: a tail call does not return on success; on failure execution continues here.
    unsafe { JUMP.tail_call(ctx, to as u32) };
}

/// Copies parsed headers into this CPU's hand-over slot (XDP programs do not nest on a CPU,
/// and the tail-called program runs before the next packet).
#[inline(always)]
pub fn hand_over(h: &Headers) {
    if let Some(slot) = HANDOVER.get_ptr_mut(0) {
        // SAFETY: this CPU's slot.
        unsafe { copy_headers(h, slot) };
    }
}

/// Copies headers (e.g. those handed over) to the stack, where the verifier tracks bounds.
#[inline(always)]
pub fn copy_into(src: &Headers, dst: &mut Headers) {
    // SAFETY: both are valid, 8-aligned `Headers`.
    unsafe { copy_headers(src, dst) };
}

/// The headers handed over, in place. The verifier knows nothing of values in map memory:
/// the engine checks the packet offsets against constants before any packet access.
#[inline(always)]
pub fn handed_over() -> Option<&'static Headers> {
    HANDOVER.get(0)
}

/// Copies word by word: `Headers` is repr(C), a whole number of u64 words, and a struct
/// assignment of this size would become a memcpy call.
///
/// # Safety
/// Both pointers valid for `size_of::<Headers>()` bytes and 8-byte aligned.
#[inline(always)]
unsafe fn copy_headers(src: *const Headers, dst: *mut Headers) {
    let (src, dst) = (src.cast::<u64>(), dst.cast::<u64>());
    let mut i = 0;
    while i < core::mem::size_of::<Headers>() / 8 {
        // SAFETY: within both objects (caller's contract).
        unsafe { *dst.add(i) = *src.add(i) };
        i += 1;
    }
}

const _: () = assert!(core::mem::size_of::<Headers>() % 8 == 0);

/// The maps as the engine's [`Tables`].
pub struct Maps;

impl RuleLookup for Maps {
    #[inline(always)]
    fn port(&self, key: PortKey) -> Option<Rule> {
        // SAFETY: the value is copied out at once; a concurrent update gives the old or new rule.
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

impl Tables for Maps {
    #[inline(always)]
    fn config(&self) -> Config {
        CONFIG.get(0).copied().unwrap_or_default()
    }

    #[inline(always)]
    fn policy(&self, app: u16) -> Action {
        match POLICY.get(app as u32) {
            Some(a) => Action::from_u8(*a).unwrap_or(Action::Pass),
            None => Action::Pass,
        }
    }

    #[inline(always)]
    fn flow_update<R, F: FnOnce(&mut Flow) -> R>(&self, key: &FlowKey, f: F) -> Option<R> {
        let ptr = if key.ipv6 == 0 { FLOWS4.get_ptr_mut(&key.v4()) } else { FLOWS.get_ptr_mut(key) }?;
        // SAFETY: a valid map value; another CPU may update the same flow concurrently, which
        // at worst loses a counter increment or a detector step (never memory safety).
        Some(f(unsafe { &mut *ptr }))
    }

    #[inline(always)]
    fn flow_insert(&self, key: &FlowKey, flow: &Flow) {
        if key.ipv6 == 0 {
            let _ = FLOWS4.insert(&key.v4(), flow, 0);
        } else {
            let _ = FLOWS.insert(key, flow, 0);
        }
    }

    #[inline(always)]
    fn expect_get(&self, addr: &[u8; 16], port: u16, proto: u8) -> Option<u16> {
        let key = endpoint_key(addr, port, proto)?;
        // SAFETY: copied out at once.
        unsafe { EXPECT.get(key).copied() }
    }

    #[inline(always)]
    fn expect_insert(&self, addr: &[u8; 16], port: u16, proto: u8, app: u16) {
        if let Some(key) = endpoint_key(addr, port, proto) {
            let _ = EXPECT.insert(key, &app, 0);
        }
    }

    #[inline(always)]
    fn frag_get(&self, key: &FragKey) -> Option<u16> {
        // SAFETY: copied out at once.
        unsafe { FRAGS.get(key).copied() }
    }

    #[inline(always)]
    fn frag_insert(&self, key: &FragKey, app: u16) {
        let _ = FRAGS.insert(key, &app, 0);
    }

    #[inline(always)]
    fn tcp_get(&self, h: &Headers) -> Option<u16> {
        let slot = TCP_CALLS.get(tcp_slot(h))?;
        // Most slots are empty: the key is built only for a taken one.
        if slot.app == 0 {
            return None;
        }
        (slot.key == FlowKey::new(h).0).then_some(slot.app)
    }

    #[inline(always)]
    fn flow4_update<R, F: FnOnce(&mut Flow) -> R>(&self, key: &FlowKey4, f: F) -> Option<R> {
        let ptr = FLOWS4.get_ptr_mut(key)?;
        // SAFETY: as in `flow_update`.
        Some(f(unsafe { &mut *ptr }))
    }

    #[inline(always)]
    fn tcp_get4(&self, v: &Plain4) -> Option<u16> {
        let slot = TCP_CALLS.get(tcp_slot4(v.src, v.sport, v.dst, v.dport))?;
        // Most slots are empty: the key is built only for a taken one.
        if slot.app == 0 {
            return None;
        }
        (slot.key == FlowKey4::of(v.src, v.sport, v.dst, v.dport, proto::TCP).widen()).then_some(slot.app)
    }

    #[inline(always)]
    fn tcp_insert(&self, key: &FlowKey, app: u16) {
        if let Some(slot) = TCP_CALLS.get_ptr_mut(key.tcp_slot()) {
            // SAFETY: a valid array slot; a torn concurrent write fails the key comparison and
            // the connection passes (fail open). Fields are written in place (no stack copy).
            unsafe {
                (*slot).key = *key;
                (*slot).app = app;
            }
        }
    }

    #[inline(always)]
    fn list_entry(&self, addr: &[u8; 16], ipv6: bool) -> Option<ListEntry> {
        let e = if ipv6 {
            LIST6.get(&Key::new(128, *addr))
        } else {
            let (w, bit) = slash16(addr[0], addr[1]);
            match LIST16.get(w) {
                Some(word) if *word & bit != 0 => LIST4.get(&Key::new(32, [addr[0], addr[1], addr[2], addr[3]])),
                _ => None,
            }
        };
        e.copied()
    }

    #[inline(always)]
    fn list_ported(&self, slot: u8, sport: u16, dport: u16) -> Listed {
        // The table in use (`CONFIG_LISTS_B`); the other one may be being written.
        let table = u32::from(self.config().flags & CONFIG_LISTS_B != 0);
        match LISTS.get(table) {
            Some(t) if (slot as usize) < MAX_LISTS => t.lists[slot as usize].listed(sport, dport),
            _ => Listed::default(),
        }
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
