//! The XDP program loaded with verdict reporting and run on single frames through
//! BPF_PROG_TEST_RUN, with the rules mirrored into a host [`RuleSet`] and a model of the counters
//! the kernel must end with.

use std::collections::BTreeMap;

use voipfilter::{
    load::{Filter, LoadOptions},
    maps::Maps,
    rulespec::{PortRule, Prefix, PrefixRule, Proto, RuleList},
};
use voipfilter_common::{
    Action, App, Reason,
    classify::{Verdict, VerdictRecord, classify},
    reason::NUM_REASONS,
    rules::Rule,
    stats::Counter,
    user::rules::RuleSet,
};

pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;

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

fn describe(r: &VerdictRecord) -> String {
    let app = App::from_u16(r.app).map_or_else(|| format!("app#{}", r.app), |a| a.name().to_string());
    let action = Action::from_u8(r.action).map_or_else(|| format!("action#{}", r.action), |a| a.name().to_string());
    let reason = Reason::ALL.get(r.reason as usize).map_or_else(|| format!("reason#{}", r.reason), |x| x.name().to_string());
    format!("{app}/{action}/{reason}")
}

fn describe_verdict(v: &Verdict) -> String {
    describe(&VerdictRecord::new(v))
}

pub struct Harness {
    pub filter: Filter,
    pub maps: Maps,
    /// The same rules as the kernel maps, for the host classifier.
    pub rules: RuleSet,
    pub model: Model,
}

impl Harness {
    /// The program with empty rule maps, reporting verdicts.
    pub fn new() -> Harness {
        let mut filter = Filter::load(&LoadOptions { report_verdict: true }).expect("loading the XDP program");
        let maps = filter.maps().expect("opening the maps");
        Harness { filter, maps, rules: RuleSet::default(), model: Model::default() }
    }

    /// The program with the built-in default rules.
    pub fn with_defaults() -> Harness {
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

    /// Adds a port rule to the kernel and the host rules; returns the number of map keys.
    pub fn add_port_rule(&mut self, r: &PortRule) -> usize {
        let n = self.maps.add_port_rule(r).expect("adding a port rule");
        for key in r.keys() {
            self.rules.ports.insert(key, Rule::new(r.app, r.action));
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
            Prefix::V4(a, len) => self.rules.add_prefix4(a, len, rule),
            Prefix::V6(a, len) => self.rules.add_prefix6(a, len, rule),
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
            self.rules.ports.remove(&key);
        }
        n
    }

    /// Deletes the rule on exactly `cidr`; returns whether there was one.
    pub fn del_prefix(&mut self, cidr: &str) -> bool {
        let prefix: Prefix = cidr.parse().expect("a valid prefix");
        let existed = self.maps.del_prefix_rule(&prefix).expect("deleting a prefix rule");
        match prefix {
            Prefix::V4(a, len) => self.rules.prefix4.remove(&(len, a)),
            Prefix::V6(a, len) => self.rules.prefix6.remove(&(len, a)),
        };
        existed
    }

    /// Runs one frame: asserts it was not aborted and that the program reported a verdict
    /// whose action matches the XDP return value.
    pub fn run(&mut self, what: &str, frame: &[u8]) -> (u32, VerdictRecord) {
        let (ret, record) = self
            .filter
            .run(frame)
            .unwrap_or_else(|e| panic!("{what}: BPF_PROG_TEST_RUN on {} bytes: {e:#}", frame.len()));
        assert_ne!(ret, XDP_ABORTED, "{what}: XDP_ABORTED on {frame:02x?}");
        let record = record.unwrap_or_else(|| panic!("{what}: no verdict record in front of the output (ret {ret})"));
        let action = Action::from_u8(record.action)
            .unwrap_or_else(|| panic!("{what}: the record has an unknown action {}", record.action));
        assert_eq!(ret, xdp_action(action), "{what}: XDP return value disagrees with the recorded {}", describe(&record));
        (ret, record)
    }

    /// Runs one frame and asserts the kernel's verdict is `want`, that the host classifier with
    /// the same rules agrees, and counts it in the model.
    pub fn expect_verdict(&mut self, what: &str, frame: &[u8], want: Verdict) {
        let (ret, record) = self.run(what, frame);
        assert!(
            record_matches(&record, &want),
            "{what}: kernel verdict {} (XDP {ret}), expected {}",
            describe(&record),
            describe_verdict(&want)
        );
        let host = classify(frame, &self.rules);
        assert_eq!(host, want, "{what}: the host classifier disagrees with the expectation");
        self.model.count(&want, frame.len());
    }

    pub fn expect(&mut self, what: &str, frame: &[u8], app: App, action: Action, reason: Reason) {
        self.expect_verdict(what, frame, verdict(app, action, reason));
    }

    /// Runs one frame and asserts the kernel agrees with the host classifier; counts it.
    pub fn expect_host(&mut self, what: &str, frame: &[u8]) -> Verdict {
        let want = classify(frame, &self.rules);
        self.expect_verdict(what, frame, want);
        want
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
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}
