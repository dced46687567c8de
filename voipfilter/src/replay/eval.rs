//! Scoring a replay against label files (rules in the corpus README).
//!
//! - A `block` flow counts as blocked when at least 80% of its packets were dropped. Block
//!   recall by flows counts labelled block flows the replay never saw as not blocked; recall by
//!   packets is over the packets of the block flows the replay saw.
//! - A `pass` flow is a false positive when even one of its packets was dropped.
//! - `any` flows are reported, not scored; flows no label names are reported as unlabelled.
//! - "Packets before the first drop" is, for each blocked flow, how many of its packets passed
//!   before the first one was dropped; median and 95th percentile use the nearest-rank method.
//! - Known disagreements (a label that is wrong after reading the packets) are excluded from
//!   scoring and listed with their reason.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use voipfilter_common::App;

use super::{
    flows::{Endpoint, Flow, FlowKey, parse_proto},
    labels::{Expect, Labels},
};

/// Fraction of a block flow's packets that must be dropped for it to count as blocked.
pub const BLOCKED_FRACTION: (u64, u64) = (4, 5);

pub fn is_blocked(packets: u64, dropped: u64) -> bool {
    packets > 0 && dropped * BLOCKED_FRACTION.1 >= packets * BLOCKED_FRACTION.0
}

/// Counts for one capture, one app or the total.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Score {
    /// Flows the replay saw (excluded ones included).
    pub flows: u64,
    /// Labelled `block`, seen or not.
    pub block_flows: u64,
    pub blocked_flows: u64,
    /// Labelled `block` but not seen in the replay.
    pub block_missing: u64,
    pub block_packets: u64,
    pub block_dropped: u64,
    pub pass_flows: u64,
    pub pass_missing: u64,
    pub pass_packets: u64,
    pub fp_flows: u64,
    pub fp_packets: u64,
    pub any_flows: u64,
    pub any_packets: u64,
    pub any_dropped: u64,
    pub unlabelled_flows: u64,
    pub unlabelled_packets: u64,
    pub unlabelled_dropped: u64,
    /// Known disagreements left out of the scores.
    pub excluded_flows: u64,
    /// Packets passed before the first drop, one entry per blocked flow.
    pub before_drop: Vec<u64>,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Nearest-rank percentile (`p` in 0..=100) of `v`; `None` when empty.
pub fn percentile(v: &[u64], p: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    Some(s[rank.clamp(1, s.len()) - 1])
}

impl Score {
    pub fn recall_flows(&self) -> Option<f64> {
        ratio(self.blocked_flows, self.block_flows)
    }

    pub fn recall_packets(&self) -> Option<f64> {
        ratio(self.block_dropped, self.block_packets)
    }

    pub fn median_before_drop(&self) -> Option<u64> {
        percentile(&self.before_drop, 50.0)
    }

    pub fn p95_before_drop(&self) -> Option<u64> {
        percentile(&self.before_drop, 95.0)
    }

    pub fn add(&mut self, o: &Score) {
        self.flows += o.flows;
        self.block_flows += o.block_flows;
        self.blocked_flows += o.blocked_flows;
        self.block_missing += o.block_missing;
        self.block_packets += o.block_packets;
        self.block_dropped += o.block_dropped;
        self.pass_flows += o.pass_flows;
        self.pass_missing += o.pass_missing;
        self.pass_packets += o.pass_packets;
        self.fp_flows += o.fp_flows;
        self.fp_packets += o.fp_packets;
        self.any_flows += o.any_flows;
        self.any_packets += o.any_packets;
        self.any_dropped += o.any_dropped;
        self.unlabelled_flows += o.unlabelled_flows;
        self.unlabelled_packets += o.unlabelled_packets;
        self.unlabelled_dropped += o.unlabelled_dropped;
        self.excluded_flows += o.excluded_flows;
        self.before_drop.extend_from_slice(&o.before_drop);
    }

    pub fn json(&self) -> Value {
        json!({
            "flows": self.flows,
            "block_flows": self.block_flows,
            "blocked_flows": self.blocked_flows,
            "block_flows_not_seen": self.block_missing,
            "block_packets": self.block_packets,
            "block_packets_dropped": self.block_dropped,
            "recall_flows": self.recall_flows(),
            "recall_packets": self.recall_packets(),
            "pass_flows": self.pass_flows,
            "pass_flows_not_seen": self.pass_missing,
            "pass_packets": self.pass_packets,
            "fp_flows": self.fp_flows,
            "fp_packets": self.fp_packets,
            "any_flows": self.any_flows,
            "any_packets": self.any_packets,
            "any_packets_dropped": self.any_dropped,
            "unlabelled_flows": self.unlabelled_flows,
            "unlabelled_packets": self.unlabelled_packets,
            "unlabelled_packets_dropped": self.unlabelled_dropped,
            "excluded_flows": self.excluded_flows,
            "before_first_drop_median": self.median_before_drop(),
            "before_first_drop_p95": self.p95_before_drop(),
        })
    }
}

/// What became of one flow (seen, labelled, or both).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Block flow, at least 80% dropped.
    Blocked,
    /// Block flow, less than 80% dropped.
    NotBlocked,
    /// Pass flow with no drop.
    Passed,
    /// Pass flow with a drop.
    FalsePositive,
    /// `any` flow.
    Any,
    /// A flow no label names.
    Unlabelled,
    /// A labelled flow the replay did not see.
    NotSeen,
    /// A known disagreement, with its reason.
    Excluded(String),
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Blocked => "blocked",
            Verdict::NotBlocked => "not-blocked",
            Verdict::Passed => "passed",
            Verdict::FalsePositive => "false-positive",
            Verdict::Any => "any",
            Verdict::Unlabelled => "unlabelled",
            Verdict::NotSeen => "not-seen",
            Verdict::Excluded(_) => "excluded",
        }
    }
}

/// One flow's line in the detailed report.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub capture: String,
    pub key: FlowKey,
    pub expect: Option<Expect>,
    /// nDPI label, when labelled.
    pub ndpi: Option<String>,
    /// voipfilter's app for the flow (unknown when not seen).
    pub app: App,
    pub packets: u64,
    pub dropped: u64,
    pub first_drop: Option<u64>,
    pub verdict: Verdict,
}

impl Outcome {
    pub fn json(&self) -> Value {
        let mut v = json!({
            "capture": self.capture,
            "proto": super::flows::proto_name(self.key.proto),
            "a": self.key.a.to_string(),
            "b": self.key.b.to_string(),
            "expect": self.expect.map(Expect::name),
            "ndpi_label": self.ndpi,
            "app": self.app.name(),
            "packets": self.packets,
            "dropped": self.dropped,
            "first_drop": self.first_drop,
            "verdict": self.verdict.name(),
        });
        if let Verdict::Excluded(reason) = &self.verdict {
            v["reason"] = json!(reason);
        }
        v
    }
}

/// A flow whose label is known to be wrong, with the reason (one line of the disagreements file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disagreement {
    pub capture: String,
    pub key: FlowKey,
    pub reason: String,
    pub line: usize,
}

/// Parses a known-disagreements file: `capture  l4  endpoint_a  endpoint_b  reason`,
/// tab-separated; `#` comments and empty lines are skipped. The reason is required.
pub fn parse_disagreements(name: &Path, text: &str) -> anyhow::Result<Vec<Disagreement>> {
    let mut v: Vec<Disagreement> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let at = || format!("{}:{n}", name.display());
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.splitn(5, '\t').collect();
        if cols.len() != 5 || cols[4].trim().is_empty() {
            bail!("{}: expected 5 tab-separated columns: capture, l4, endpoint_a, endpoint_b, reason", at());
        }
        let proto = parse_proto(cols[1]).with_context(|| format!("{}: unknown protocol {:?}", at(), cols[1]))?;
        let a: Endpoint = cols[2].parse().map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
        let b: Endpoint = cols[3].parse().map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
        let d = Disagreement { capture: cols[0].to_string(), key: FlowKey::new(proto, a, b), reason: cols[4].trim().to_string(), line: n };
        if let Some(prev) = v.iter().find(|p| p.capture == d.capture && p.key == d.key) {
            bail!("{}: {} {} is already listed on line {}", at(), d.capture, d.key, prev.line);
        }
        v.push(d);
    }
    Ok(v)
}

/// Scores of a whole evaluation.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    /// Per capture: name, score, and the error that cut its replay short if any.
    pub captures: Vec<(String, Score, Option<String>)>,
    pub total: Score,
    /// Per app part of the nDPI label.
    pub apps: BTreeMap<String, Score>,
    pub outcomes: Vec<Outcome>,
    /// Disagreement entries that matched no flow or label (stale).
    pub unused_disagreements: Vec<Disagreement>,
    /// Label rows that name no valid address (see [`Labels::unreadable`]); not scored.
    pub unreadable_labels: Vec<String>,
}

impl Evaluation {
    /// Scores one capture's flows against its labels. `known` holds the disagreements of every
    /// capture; only those naming `capture` apply.
    pub fn add_capture(&mut self, capture: &str, flows: &[Flow], labels: &Labels, known: &[Disagreement], error: Option<String>) {
        let excluded: HashMap<FlowKey, &Disagreement> =
            known.iter().filter(|d| d.capture == capture).map(|d| (d.key, d)).collect();
        let mut used: Vec<FlowKey> = Vec::new();
        let mut score = Score::default();
        let mut seen = std::collections::HashSet::new();
        for f in flows {
            seen.insert(f.key);
            score.flows += 1;
            let label = labels.get(&f.key);
            let mut o = Outcome {
                capture: capture.to_string(),
                key: f.key,
                expect: label.map(|l| l.expect),
                ndpi: label.map(|l| l.ndpi.clone()),
                app: f.app(),
                packets: f.packets,
                dropped: f.dropped,
                first_drop: f.first_drop,
                verdict: Verdict::Unlabelled,
            };
            if let Some(d) = excluded.get(&f.key) {
                score.excluded_flows += 1;
                used.push(f.key);
                o.verdict = Verdict::Excluded(d.reason.clone());
                self.outcomes.push(o);
                continue;
            }
            let mut s = Score::default();
            match label.map(|l| l.expect) {
                None => {
                    s.unlabelled_flows = 1;
                    s.unlabelled_packets = f.packets;
                    s.unlabelled_dropped = f.dropped;
                }
                Some(Expect::Block) => {
                    s.block_flows = 1;
                    s.block_packets = f.packets;
                    s.block_dropped = f.dropped;
                    if is_blocked(f.packets, f.dropped) {
                        s.blocked_flows = 1;
                        s.before_drop.push(f.first_drop.unwrap_or(0));
                        o.verdict = Verdict::Blocked;
                    } else {
                        o.verdict = Verdict::NotBlocked;
                    }
                }
                Some(Expect::Pass) => {
                    s.pass_flows = 1;
                    s.pass_packets = f.packets;
                    if f.dropped > 0 {
                        s.fp_flows = 1;
                        s.fp_packets = f.dropped;
                        o.verdict = Verdict::FalsePositive;
                    } else {
                        o.verdict = Verdict::Passed;
                    }
                }
                Some(Expect::Any) => {
                    s.any_flows = 1;
                    s.any_packets = f.packets;
                    s.any_dropped = f.dropped;
                    o.verdict = Verdict::Any;
                }
            }
            if let Some(l) = label {
                self.apps.entry(l.app().to_string()).or_default().add(&Score { flows: 1, ..s.clone() });
            }
            score.add(&s);
            self.outcomes.push(o);
        }
        for l in labels.rows.iter().filter(|l| !seen.contains(&l.key)) {
            let mut o = Outcome {
                capture: capture.to_string(),
                key: l.key,
                expect: Some(l.expect),
                ndpi: Some(l.ndpi.clone()),
                app: App::Unknown,
                packets: 0,
                dropped: 0,
                first_drop: None,
                verdict: Verdict::NotSeen,
            };
            if let Some(d) = excluded.get(&l.key) {
                used.push(l.key);
                o.verdict = Verdict::Excluded(d.reason.clone());
                self.outcomes.push(o);
                continue;
            }
            let mut s = Score::default();
            match l.expect {
                Expect::Block => {
                    s.block_flows = 1;
                    s.block_missing = 1;
                }
                Expect::Pass => s.pass_missing = 1,
                Expect::Any => {}
            }
            self.apps.entry(l.app().to_string()).or_default().add(&s);
            score.add(&s);
            self.outcomes.push(o);
        }
        for d in excluded.values() {
            if !used.contains(&d.key) {
                self.unused_disagreements.push((*d).clone());
            }
        }
        self.unreadable_labels.extend(labels.unreadable.iter().cloned());
        self.total.add(&score);
        self.captures.push((capture.to_string(), score, error));
    }

    pub fn json(&self, details: bool) -> Value {
        let mut v = json!({
            "captures": self.captures.iter().map(|(name, s, err)| {
                let mut j = s.json();
                j["capture"] = json!(name);
                j["error"] = json!(err);
                j
            }).collect::<Vec<_>>(),
            "total": self.total.json(),
            "apps": self.apps.iter().map(|(app, s)| {
                let mut j = s.json();
                j["app"] = json!(app);
                j
            }).collect::<Vec<_>>(),
            "false_positives": self.outcomes.iter().filter(|o| o.verdict == Verdict::FalsePositive).map(Outcome::json).collect::<Vec<_>>(),
            "excluded": self.outcomes.iter().filter(|o| matches!(o.verdict, Verdict::Excluded(_))).map(Outcome::json).collect::<Vec<_>>(),
            "unreadable_labels": self.unreadable_labels,
            "unused_disagreements": self.unused_disagreements.iter().map(|d| json!({
                "capture": d.capture, "flow": d.key.to_string(), "line": d.line,
            })).collect::<Vec<_>>(),
        });
        if details {
            v["flows"] = json!(self.outcomes.iter().map(Outcome::json).collect::<Vec<_>>());
        }
        v
    }
}

/// Thresholds given on the command line.
#[derive(Clone, Debug, Default)]
pub struct Thresholds {
    pub min_recall_flows: Option<f64>,
    pub min_recall_packets: Option<f64>,
    pub max_fp_flows: Option<u64>,
}

impl Thresholds {
    /// One message per threshold that `s` does not meet.
    pub fn unmet(&self, s: &Score) -> Vec<String> {
        let mut v = Vec::new();
        let mut check = |what: &str, min: Option<f64>, got: Option<f64>| {
            if let Some(min) = min {
                match got {
                    None => v.push(format!("{what}: no block flows to score (minimum {min})")),
                    Some(g) if g < min => v.push(format!("{what} is {g:.4}, below the minimum {min}")),
                    Some(_) => {}
                }
            }
        };
        check("block recall by flows", self.min_recall_flows, s.recall_flows());
        check("block recall by packets", self.min_recall_packets, s.recall_packets());
        if let Some(max) = self.max_fp_flows
            && s.fp_flows > max
        {
            v.push(format!("{} false-positive flows, above the maximum {max}", s.fp_flows));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::flows::Endpoint;
    use voipfilter_common::Action;

    fn ep(s: &str) -> Endpoint {
        s.parse().unwrap()
    }

    /// A flow of `packets` packets whose packets at the given indices were dropped.
    fn flow(a: &str, b: &str, packets: u64, drops: &[u64]) -> Flow {
        let mut f = Flow::new(FlowKey::new(17, ep(a), ep(b)), ep(a), 1);
        for i in 0..packets {
            let d = drops.contains(&i);
            f.record(i + 1, 100, d, if d { App::Sip as u16 } else { 0 }, Some(if d { Action::Drop } else { Action::Pass }));
        }
        f
    }

    const LABELS: &str = "l4\tendpoint_a\tendpoint_b\tndpi_label\tndpi_category\texpect\n\
        UDP\t10.0.0.1:5060\t10.0.0.2:5060\tSIP\tVoIP\tblock\n\
        UDP\t10.0.0.1:4000\t10.0.0.2:4000\tRTP\tMedia\tblock\n\
        UDP\t10.0.0.1:4002\t10.0.0.2:4002\tRTP\tMedia\tblock\n\
        UDP\t10.0.0.1:4004\t10.0.0.2:4004\tSTUN.WhatsAppCall\tVoIP\tblock\n\
        UDP\t10.0.0.1:53\t10.0.0.2:53\tDNS\tNetwork\tpass\n\
        UDP\t10.0.0.1:443\t10.0.0.2:443\tQUIC.Google\tWeb\tpass\n\
        UDP\t10.0.0.1:9\t10.0.0.2:9\tUnknown\t-\tany\n";

    #[test]
    fn scoring_math() {
        let labels = Labels::parse(Path::new("t"), LABELS).unwrap();
        let flows = vec![
            // Blocked from its 3rd packet: 8 of 10 dropped = 80%, blocked, 2 before the drop.
            flow("10.0.0.1:5060", "10.0.0.2:5060", 10, &[2, 3, 4, 5, 6, 7, 8, 9]),
            // 7 of 10 dropped: not blocked.
            flow("10.0.0.2:4000", "10.0.0.1:4000", 10, &[3, 4, 5, 6, 7, 8, 9]),
            // All dropped from the first: blocked, 0 before the drop.
            flow("10.0.0.1:4002", "10.0.0.2:4002", 4, &[0, 1, 2, 3]),
            // STUN.WhatsAppCall is not seen at all.
            flow("10.0.0.1:53", "10.0.0.2:53", 5, &[]),
            flow("10.0.0.1:443", "10.0.0.2:443", 6, &[5]),
            flow("10.0.0.1:9", "10.0.0.2:9", 3, &[1]),
            flow("10.0.0.1:7", "10.0.0.2:7", 2, &[0, 1]),
        ];
        let mut e = Evaluation::default();
        e.add_capture("t.pcap", &flows, &labels, &[], None);
        let s = &e.total;
        assert_eq!((s.flows, s.block_flows, s.blocked_flows, s.block_missing), (7, 4, 2, 1));
        assert_eq!(s.recall_flows(), Some(0.5));
        assert_eq!((s.block_packets, s.block_dropped), (24, 19));
        assert_eq!(s.recall_packets(), Some(19.0 / 24.0));
        assert_eq!((s.pass_flows, s.pass_packets, s.fp_flows, s.fp_packets), (2, 11, 1, 1));
        assert_eq!((s.any_flows, s.any_packets, s.any_dropped), (1, 3, 1));
        assert_eq!((s.unlabelled_flows, s.unlabelled_packets, s.unlabelled_dropped), (1, 2, 2));
        assert_eq!((s.median_before_drop(), s.p95_before_drop()), (Some(0), Some(2)));
        let rtp = &e.apps["RTP"];
        assert_eq!((rtp.flows, rtp.block_flows, rtp.blocked_flows), (2, 2, 1));
        let wa = &e.apps["WhatsAppCall"];
        assert_eq!((wa.flows, wa.block_flows, wa.block_missing), (0, 1, 1));
        assert_eq!(e.apps["Google"].fp_flows, 1);
        let fp: Vec<_> = e.outcomes.iter().filter(|o| o.verdict == Verdict::FalsePositive).collect();
        assert_eq!(fp.len(), 1);
        assert_eq!(fp[0].key.to_string(), "UDP 10.0.0.1:443 10.0.0.2:443");

        let t = Thresholds { min_recall_flows: Some(0.5), min_recall_packets: Some(0.8), max_fp_flows: Some(0) };
        assert_eq!(
            t.unmet(s),
            vec![
                "block recall by packets is 0.7917, below the minimum 0.8".to_string(),
                "1 false-positive flows, above the maximum 0".to_string()
            ]
        );
        assert!(Thresholds { max_fp_flows: Some(1), ..Default::default() }.unmet(s).is_empty());
        let empty = Score::default();
        assert_eq!(t.unmet(&empty).len(), 2, "no block flows cannot meet a recall minimum");
    }

    #[test]
    fn disagreements_exclude_flows() {
        let labels = Labels::parse(Path::new("t"), LABELS).unwrap();
        let flows = vec![flow("10.0.0.1:443", "10.0.0.2:443", 6, &[5])];
        let known = parse_disagreements(
            Path::new("d"),
            "# capture\tl4\ta\tb\treason\n\
             t.pcap\tUDP\t10.0.0.2:443\t10.0.0.1:443\tthe payload is RTP, not QUIC\n\
             other.pcap\tUDP\t10.0.0.2:443\t10.0.0.1:443\tanother capture\n\
             t.pcap\tTCP\t1.1.1.1:1\t2.2.2.2:2\tstale\n",
        )
        .unwrap();
        let mut e = Evaluation::default();
        e.add_capture("t.pcap", &flows, &labels, &known, None);
        assert_eq!((e.total.fp_flows, e.total.excluded_flows), (0, 1));
        assert!(e.outcomes.iter().any(|o| o.verdict == Verdict::Excluded("the payload is RTP, not QUIC".into())));
        assert_eq!(e.unused_disagreements.len(), 1);
        assert_eq!(e.unused_disagreements[0].reason, "stale");

        let bad = parse_disagreements(Path::new("d"), "t.pcap\tUDP\t1.1.1.1:1\t2.2.2.2:2\n").unwrap_err();
        assert!(bad.to_string().starts_with("d:1: expected 5 tab-separated columns"), "{bad}");
        let bad = parse_disagreements(Path::new("d"), "t\tUDP\t1.1.1.1:1\t2.2.2.2:2\tr\nt\tUDP\t2.2.2.2:2\t1.1.1.1:1\tr\n").unwrap_err();
        assert!(bad.to_string().contains("already listed on line 1"), "{bad}");
    }

    #[test]
    fn percentiles_nearest_rank() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7], 95.0), Some(7));
        assert_eq!(percentile(&[4, 1, 3, 2], 50.0), Some(2));
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!((percentile(&v, 50.0), percentile(&v, 95.0), percentile(&v, 100.0)), (Some(50), Some(95), Some(100)));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert!(is_blocked(5, 4) && !is_blocked(5, 3) && !is_blocked(0, 0));
    }
}
