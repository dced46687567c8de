//! The XDP programs loaded with verdict reporting and run on single frames through
//! BPF_PROG_TEST_RUN, beside a host model of the same engine: `engine::process` over a
//! [`HostTables`] that holds the kernel's rules and policy. Every frame goes to both, in the same
//! order, so the host's flow, expectation, fragment and TCP-call tables evolve exactly as the
//! kernel maps do; a model of the counters says what the kernel must end with.

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
};

use aya::maps::{Array, HashMap as BpfHashMap, MapData};
use voipfilter::{
    load::{Filter, LoadOptions},
    maps::Maps,
    policy::Policy,
    rulespec::{PortRule, Prefix, PrefixRule, Proto, RuleList},
};
use voipfilter_common::{
    Action, App, Reason,
    classify::{Verdict, VerdictRecord},
    engine::{self, Tables},
    flow::{CONFIG_LISTS_B, CONFIG_LISTS4, CONFIG_LISTS6, Config, EndpointKey, Flow, FlowKey, FragKey, TcpSlot},
    maps::{EXPECT, FRAGS, TCP_CALLS},
    reason::NUM_REASONS,
    rules::{PortKey, Rule, RuleLookup},
    stats::Counter,
    user::{lists::ListSet, tables::HostTables},
};

pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;

/// Flow-table entries of a test instance: small, so that loading is fast.
pub const TEST_FLOWS: u32 = 65_536;

/// The XDP return value a verdict's action must produce.
pub fn xdp_action(a: Action) -> u32 {
    match a {
        Action::Drop => XDP_DROP,
        Action::Pass | Action::Monitor => XDP_PASS,
    }
}

/// The counters the program must have: per (app id, action) and per reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    pub apps: BTreeMap<(u16, Action), Counter>,
    pub reasons: [u64; NUM_REASONS as usize],
}

impl Model {
    /// One frame of `len` bytes with verdict `v`.
    pub fn count(&mut self, v: &Verdict, len: usize) {
        let c = self.apps.entry((v.app, v.action)).or_default();
        c.packets += 1;
        c.bytes += len as u64;
        if v.reason != Reason::Ok {
            self.reasons[v.reason as usize] += 1;
        }
    }
}

pub fn verdict(app: App, action: Action, reason: Reason) -> Verdict {
    Verdict { app: app as u16, action, reason }
}

fn record_matches(r: &VerdictRecord, v: &Verdict) -> bool {
    r.app == v.app && r.action == v.action as u8 && r.reason == v.reason as u8
}

pub fn describe(r: &VerdictRecord) -> String {
    let app = App::from_u16(r.app).map_or_else(|| format!("app#{}", r.app), |a| a.name().to_string());
    let action = Action::from_u8(r.action).map_or_else(|| format!("action#{}", r.action), |a| a.name().to_string());
    let reason = Reason::ALL.get(r.reason as usize).map_or_else(|| format!("reason#{}", r.reason), |x| x.name().to_string());
    format!("{app}/{action}/{reason}")
}

pub fn describe_verdict(v: &Verdict) -> String {
    describe(&VerdictRecord::new(v))
}

/// The host model with the kernel's default policy, written out app by app.
pub fn host_tables(policy: &Policy) -> HostTables {
    let mut t = HostTables::new();
    set_host_policy(&mut t, policy);
    t
}

fn set_host_policy(t: &mut HostTables, policy: &Policy) {
    t.policy = policy
        .bytes()
        .iter()
        .enumerate()
        .map(|(i, &a)| (i as u16, Action::from_u8(a).unwrap_or(Action::Pass)))
        .collect();
    t.default_action = Some(Action::Pass);
}

/// The host model: [`HostTables`], except that TCP calls live in a direct-mapped table of
/// `TCP_CALLS_SLOTS` slots as in the kernel (a connection that lands on a taken slot replaces
/// its occupant), so that the model stays exact when two connections collide.
#[derive(Default)]
pub struct HostModel {
    pub t: HostTables,
    /// Slot index -> occupant, for the non-empty slots.
    pub tcp_slots: RefCell<HashMap<u32, TcpSlot>>,
}

impl HostModel {
    pub fn new(policy: &Policy) -> HostModel {
        HostModel { t: host_tables(policy), tcp_slots: RefCell::default() }
    }
}

impl RuleLookup for HostModel {
    fn port(&self, key: PortKey) -> Option<Rule> {
        self.t.port(key)
    }
    fn prefix4(&self, addr: [u8; 4]) -> Option<Rule> {
        self.t.prefix4(addr)
    }
    fn prefix6(&self, addr: [u8; 16]) -> Option<Rule> {
        self.t.prefix6(addr)
    }
}

impl Tables for HostModel {
    fn config(&self) -> Config {
        self.t.config()
    }
    fn policy(&self, app: u16) -> Action {
        Tables::policy(&self.t, app)
    }
    fn flow_update<R, F: FnOnce(&mut Flow) -> R>(&self, key: &FlowKey, f: F) -> Option<R> {
        self.t.flow_update(key, f)
    }
    fn flow_insert(&self, key: &FlowKey, flow: &Flow) {
        self.t.flow_insert(key, flow)
    }
    fn expect_get(&self, addr: &[u8; 16], port: u16, proto: u8) -> Option<u16> {
        self.t.expect_get(addr, port, proto)
    }
    fn expect_insert(&self, addr: &[u8; 16], port: u16, proto: u8, app: u16) {
        self.t.expect_insert(addr, port, proto, app)
    }
    fn frag_get(&self, key: &FragKey) -> Option<u16> {
        self.t.frag_get(key)
    }
    fn frag_insert(&self, key: &FragKey, app: u16) {
        self.t.frag_insert(key, app)
    }
    fn tcp_get(&self, h: &voipfilter_common::packet::Headers) -> Option<u16> {
        // As the kernel: the slot from the headers, the key compared only in a taken slot.
        let slots = self.tcp_slots.borrow();
        let slot = slots.get(&voipfilter_common::flow::tcp_slot(h))?;
        (slot.app != 0 && slot.key == FlowKey::new(h).0).then_some(slot.app)
    }
    fn tcp_insert(&self, key: &FlowKey, app: u16) {
        self.tcp_slots.borrow_mut().insert(key.tcp_slot(), TcpSlot { key: *key, app, _pad: [0; 6] });
        self.t.tcp_insert(key, app);
    }
    fn list_entry(&self, addr: &[u8; 16], ipv6: bool) -> Option<voipfilter_common::lists::ListEntry> {
        self.t.list_entry(addr, ipv6)
    }
    fn list_ported(&self, slot: u8, sport: u16, dport: u16) -> voipfilter_common::lists::Listed {
        self.t.list_ported(slot, sport, dport)
    }
}

pub struct Harness {
    pub filter: Filter,
    pub maps: Maps,
    /// The engine's host model: the same rules and policy as the kernel maps, and flow state
    /// that every frame updates in the same order as the kernel's.
    pub host: HostModel,
    /// The policy installed in both.
    pub policy: Policy,
    pub model: Model,
}

impl Harness {
    /// The program as a fresh daemon has it (no rules, the default policy: every app the
    /// detectors find dropped), reporting verdicts, with a [`TEST_FLOWS`]-entry flow table.
    pub fn new() -> Harness {
        let mut filter = Filter::load(&LoadOptions { report_verdict: true, flows: Some(TEST_FLOWS) })
            .unwrap_or_else(|e| panic!("loading the XDP program: {e:#}"));
        let maps = filter.maps().expect("opening the maps");
        let policy = Policy::default();
        let kernel: Vec<(App, Action)> = maps.policy().expect("reading POLICY");
        for (app, action) in &kernel {
            assert_eq!(*action, policy.action(*app), "a freshly loaded filter has the default policy for {}", app.name());
        }
        let mut host = HostModel::new(&policy);
        let flags = maps.config().expect("reading CONFIG").flags;
        let lists = maps.list_entries().expect("reading the lists");
        assert!(lists == voipfilter::lists::builtin_set().entries(), "a freshly loaded filter has the built-in lists");
        // The built-in table went into the second entry of LISTS (the first was the empty one in use).
        assert_eq!(flags, CONFIG_LISTS4 | CONFIG_LISTS6 | CONFIG_LISTS_B, "a fresh filter looks the lists up and has no rules");
        host.t.lists = lists;
        Harness { filter, maps, host, policy, model: Model::default() }
    }

    /// Makes the kernel's lists `set` (as `voipfilter lists load` does: no gap) and the host
    /// model's the same.
    pub fn set_lists(&mut self, set: &ListSet) -> voipfilter::lists::Change {
        let change = self.maps.set_lists(set).expect("replacing the lists");
        self.host.t.lists = set.entries();
        let kernel = self.maps.list_entries().expect("reading the lists");
        assert!(kernel == self.host.t.lists, "the kernel's lists are the set's entries");
        change
    }

    /// The program with the classic port rules (`port_defaults = true`) on top of the detectors.
    pub fn with_port_defaults() -> Harness {
        let mut h = Harness::new();
        h.install(&RuleList::defaults());
        h
    }

    pub fn install(&mut self, list: &RuleList) {
        for r in &list.ports {
            self.add_port_rule(r);
        }
        for r in &list.prefixes {
            self.add_prefix_rule(r);
        }
    }

    /// Sets the action for one app in the kernel's POLICY and in the host model.
    pub fn set_policy(&mut self, app: App, action: Action) {
        self.policy.set(voipfilter::policy::Target::App(app), action);
        self.maps.set_policy(&self.policy).expect("writing POLICY");
        set_host_policy(&mut self.host.t, &self.policy);
    }

    /// Adds a port rule to the kernel and the host rules; returns the number of map keys.
    pub fn add_port_rule(&mut self, r: &PortRule) -> usize {
        let n = self.maps.add_port_rule(r).expect("adding a port rule");
        for key in r.keys() {
            self.host.t.rules.ports.insert(key, Rule::new(r.app, r.action));
        }
        n
    }

    /// `ports` as "5060" or "50000-50059".
    pub fn port(&mut self, proto: Proto, ports: &str, app: App, action: Action) -> usize {
        let ports = ports.parse().expect("a valid port range");
        self.add_port_rule(&PortRule { proto, ports, app, action })
    }

    pub fn add_prefix_rule(&mut self, r: &PrefixRule) {
        self.maps.add_prefix_rule(r).expect("adding a prefix rule");
        let rule = Rule::new(r.app, r.action);
        match r.prefix {
            Prefix::V4(a, len) => self.host.t.rules.add_prefix4(a, len, rule),
            Prefix::V6(a, len) => self.host.t.rules.add_prefix6(a, len, rule),
        }
    }

    pub fn prefix(&mut self, cidr: &str, app: App, action: Action) {
        let prefix = cidr.parse().expect("a valid prefix");
        self.add_prefix_rule(&PrefixRule { prefix, app, action });
    }

    /// Deletes the port rules on `ports` from the kernel and the host rules; returns how many
    /// map keys existed.
    pub fn del_port(&mut self, proto: Proto, ports: &str) -> usize {
        let r = PortRule { proto, ports: ports.parse().expect("a valid port range"), app: App::Custom, action: Action::Pass };
        let n = self.maps.del_port_rule(&r).expect("deleting a port rule");
        for key in r.keys() {
            self.host.t.rules.ports.remove(&key);
        }
        n
    }

    /// Deletes the rule on exactly `cidr`; returns whether there was one.
    pub fn del_prefix(&mut self, cidr: &str) -> bool {
        let prefix: Prefix = cidr.parse().expect("a valid prefix");
        let existed = self.maps.del_prefix_rule(&prefix).expect("deleting a prefix rule");
        match prefix {
            Prefix::V4(a, len) => self.host.t.rules.prefix4.remove(&(len, a)),
            Prefix::V6(a, len) => self.host.t.rules.prefix6.remove(&(len, a)),
        };
        existed
    }

    /// Runs one frame through the kernel and the host model (both update their state): asserts
    /// it was not aborted and that the program reported a verdict whose action matches the XDP
    /// return value. Returns (XDP action, kernel record, host verdict); does not compare them.
    pub fn run(&mut self, what: &str, frame: &[u8]) -> (u32, VerdictRecord, Verdict) {
        let (ret, record) = self
            .filter
            .run(frame)
            .unwrap_or_else(|e| panic!("{what}: BPF_PROG_TEST_RUN on {} bytes: {e:#}", frame.len()));
        let host = engine::process(frame, &self.host);
        assert_ne!(ret, XDP_ABORTED, "{what}: XDP_ABORTED on {frame:02x?}");
        let record = record.unwrap_or_else(|| panic!("{what}: no verdict record in front of the output (ret {ret})"));
        let action = Action::from_u8(record.action)
            .unwrap_or_else(|| panic!("{what}: the record has an unknown action {}", record.action));
        assert_eq!(ret, xdp_action(action), "{what}: XDP return value disagrees with the recorded {}", describe(&record));
        (ret, record, host)
    }

    /// Runs one frame and asserts the kernel's verdict is `want`, that the host model (same
    /// rules, policy and state) agrees, and counts it in the model.
    pub fn expect_verdict(&mut self, what: &str, frame: &[u8], want: Verdict) {
        let (ret, record, host) = self.run(what, frame);
        assert!(
            record_matches(&record, &want),
            "{what}: kernel verdict {} (XDP {ret}), expected {} (host model: {})",
            describe(&record),
            describe_verdict(&want),
            describe_verdict(&host),
        );
        assert!(
            host == want,
            "{what}: the host model gives {}, the kernel and the expectation {}",
            describe_verdict(&host),
            describe_verdict(&want)
        );
        self.model.count(&want, frame.len());
    }

    pub fn expect(&mut self, what: &str, frame: &[u8], app: App, action: Action, reason: Reason) {
        self.expect_verdict(what, frame, verdict(app, action, reason));
    }

    /// Runs one frame and asserts the kernel agrees with the host model; counts it and returns
    /// the verdict.
    pub fn expect_host(&mut self, what: &str, frame: &[u8]) -> Verdict {
        let (ret, record, host) = self.run(what, frame);
        assert!(
            record_matches(&record, &host),
            "{what}: kernel verdict {} (XDP {ret}), host model {}",
            describe(&record),
            describe_verdict(&host)
        );
        self.model.count(&host, frame.len());
        host
    }

    /// Asserts that every counter in the kernel equals the model: no packet missing, none extra.
    pub fn check_counters(&self) {
        let snap = self.maps.snapshot().expect("reading the counters");
        let got: BTreeMap<(u16, Action), Counter> = snap.apps.iter().map(|&(app, a, c)| ((app, a), c)).collect();
        let name = |(app, a): &(u16, Action)| {
            format!("{}/{}", App::from_u16(*app).map_or("?", App::name), a.name())
        };
        let fmt = |m: &BTreeMap<(u16, Action), Counter>| {
            m.iter().map(|(k, c)| format!("{}={}p/{}B", name(k), c.packets, c.bytes)).collect::<Vec<_>>().join(" ")
        };
        assert_eq!(got, self.model.apps, "per-(app, action) counters\n kernel: {}\n model:  {}", fmt(&got), fmt(&self.model.apps));
        let reasons: Vec<String> =
            Reason::ALL.iter().map(|r| format!("{}={}", r.name(), snap.reason(*r))).collect();
        for r in Reason::ALL.into_iter().skip(1) {
            assert_eq!(
                snap.reason(r),
                self.model.reasons[r as usize],
                "reason counter {} (kernel: {})",
                r.name(),
                reasons.join(" ")
            );
        }
        assert_eq!(snap.reason(Reason::Ok), 0, "parsed packets are not counted as a reason");
    }

    /// The kernel's flow tables (`FLOWS4` with keys widened to `FlowKey`, and `FLOWS`).
    pub fn kernel_flows(&self) -> HashMap<FlowKey, Flow> {
        self.maps.flows(usize::MAX).expect("reading FLOWS").into_iter().collect()
    }

    /// The kernel's expectations (EXPECT).
    pub fn kernel_expect(&mut self) -> HashMap<EndpointKey, u16> {
        let map = self.filter.ebpf_mut().map(EXPECT).expect("the object has EXPECT");
        let m: BpfHashMap<&MapData, EndpointKey, u16> = BpfHashMap::try_from(map).expect("EXPECT is a hash map");
        m.iter().collect::<Result<_, _>>().expect("reading EXPECT")
    }

    /// The kernel's first-fragment verdicts (FRAGS).
    pub fn kernel_frags(&mut self) -> HashMap<FragKey, u16> {
        let map = self.filter.ebpf_mut().map(FRAGS).expect("the object has FRAGS");
        let m: BpfHashMap<&MapData, FragKey, u16> = BpfHashMap::try_from(map).expect("FRAGS is a hash map");
        m.iter().collect::<Result<_, _>>().expect("reading FRAGS")
    }

    /// The TCP_CALLS slot of a connection.
    pub fn kernel_tcp_slot(&mut self, key: &FlowKey) -> TcpSlot {
        let map = self.filter.ebpf_mut().map(TCP_CALLS).expect("the object has TCP_CALLS");
        let a: Array<&MapData, TcpSlot> = Array::try_from(map).expect("TCP_CALLS is an array");
        a.get(&key.tcp_slot(), 0).expect("reading TCP_CALLS")
    }

    /// Asserts that the kernel's engine state equals the host model's: every flow record
    /// (state, app, counts, RTP confirmation state), every expectation, every fragment verdict,
    /// and every TCP_CALLS slot the host model has filled.
    pub fn check_state(&mut self) {
        let kernel = self.kernel_flows();
        let host = self.host.t.flows.borrow().clone();
        let mut diffs = Vec::new();
        for (k, f) in &host {
            match kernel.get(k) {
                Some(kf) if kf == f => {}
                Some(kf) => diffs.push(format!("{k:?}:\n  kernel {kf:?}\n  host   {f:?}")),
                None => diffs.push(format!("{k:?}: only in the host model: {f:?}")),
            }
        }
        for (k, f) in &kernel {
            if !host.contains_key(k) {
                diffs.push(format!("{k:?}: only in the kernel: {f:?}"));
            }
        }
        assert!(diffs.is_empty(), "flow tables differ ({} kernel, {} host):\n{}", kernel.len(), host.len(), diffs.join("\n"));
        let expect = self.kernel_expect();
        assert_eq!(expect, *self.host.t.expect.borrow(), "EXPECT (kernel) vs the host model's expectations");
        let frags = self.kernel_frags();
        assert_eq!(frags, *self.host.t.frags.borrow(), "FRAGS (kernel) vs the host model's fragments");
        let slots: Vec<(u32, TcpSlot)> = self.host.tcp_slots.borrow().iter().map(|(i, s)| (*i, *s)).collect();
        for (i, want) in slots {
            let got = self.kernel_tcp_slot(&want.key);
            assert!(got == want, "TCP_CALLS slot {i}: kernel {got:?}, host model {want:?}");
        }
    }
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}
