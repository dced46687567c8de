//! Text and JSON output of `replay` and `eval`.

use serde_json::{Value, json};

use super::{
    CaptureReplay,
    eval::{Evaluation, Score, Verdict},
    flows::{Flow, proto_name},
    link,
    table::{Table, opt, pct},
};
use crate::fmt::si;

/// "pcapng/ethernet", "pcap-be-ns/linux-sll".
fn describe(c: &CaptureReplay) -> String {
    let format = c.format.map_or_else(|| "?".to_string(), |f| f.short());
    let links: Vec<String> = c.linktypes.iter().map(|l| link::name(*l)).collect();
    if links.is_empty() { format } else { format!("{format}/{}", links.join("+")) }
}

/// The per-flow table of one capture, with a heading line.
pub fn flow_table(c: &CaptureReplay) -> String {
    let mut out = format!(
        "{}: {}, {} packets, {} flows, {} dropped\n",
        c.name,
        describe(c),
        c.packets,
        c.flows.len(),
        c.dropped
    );
    if c.flows.is_empty() {
        return out;
    }
    let mut t = Table::new(&["proto", "endpoint A", "endpoint B", "app", "class", ">pkts", ">dropped", ">first drop"]);
    for f in &c.flows {
        let app = f.app();
        t.row(vec![
            proto_name(f.key.proto),
            f.initiator.to_string(),
            f.responder().to_string(),
            app.name().to_string(),
            app.class().name().to_string(),
            f.packets.to_string(),
            f.dropped.to_string(),
            opt(f.first_drop),
        ]);
    }
    out.push_str(&t.render());
    out
}

/// One flow as a JSON object.
pub fn flow_json(c: &CaptureReplay, f: &Flow) -> Value {
    let app = f.app();
    json!({
        "type": "flow",
        "capture": c.name,
        "proto": proto_name(f.key.proto),
        "a": f.initiator.to_string(),
        "b": f.responder().to_string(),
        "app": app.name(),
        "class": app.class().name(),
        "packets": f.packets,
        "bytes": f.bytes,
        "dropped": f.dropped,
        "monitored": f.monitored,
        "first_drop": f.first_drop,
        "first_drop_packet": f.first_drop_packet,
        "first_packet": f.first_packet,
    })
}

/// The summary of one capture as a JSON object (`"type": "capture"`).
pub fn capture_json(c: &CaptureReplay) -> Value {
    json!({
        "type": "capture",
        "capture": c.name,
        "path": c.path.display().to_string(),
        "format": c.format.map(|f| f.to_string()),
        "link_types": c.linktypes.iter().map(|l| link::name(*l)).collect::<Vec<_>>(),
        "packets": c.packets,
        "packets_run": c.run,
        "bytes": c.bytes,
        "flows": c.flows.len(),
        "dropped": c.dropped,
        "dropped_flows": c.dropped_flows(),
        "aborted": c.aborted,
        "monitored": c.monitored,
        "no_flow": c.no_flow,
        "no_flow_dropped": c.no_flow_dropped,
        "unreadable": c.unreadable,
        "snapped": c.snapped,
        "no_verdict_record": c.no_record,
        "seconds": c.elapsed.as_secs_f64(),
        "packets_per_second": c.packets_per_second(),
        "error": c.error,
    })
}

/// Totals over captures, as a JSON object (`"type": "total"`).
pub fn total_json(cs: &[CaptureReplay], policy: &str, wall: f64) -> Value {
    let sum = |f: fn(&CaptureReplay) -> u64| cs.iter().map(f).sum::<u64>();
    let packets = sum(|c| c.packets);
    json!({
        "type": "total",
        "policy": policy,
        "captures": cs.len(),
        "captures_with_errors": cs.iter().filter(|c| c.error.is_some()).count(),
        "packets": packets,
        "flows": cs.iter().map(|c| c.flows.len() as u64).sum::<u64>(),
        "dropped": sum(|c| c.dropped),
        "dropped_flows": cs.iter().map(|c| c.dropped_flows() as u64).sum::<u64>(),
        "seconds": wall,
        "packets_per_second": if wall > 0.0 { packets as f64 / wall } else { 0.0 },
    })
}

/// The summary table: one row per capture and a total.
pub fn summary_table(cs: &[CaptureReplay], policy: &str, wall: f64) -> String {
    let mut t = Table::new(&[
        "capture", "format", ">packets", ">flows", ">dropped", ">dropped flows", ">no flow", ">not run", ">ms", ">pkt/s",
    ]);
    for c in cs {
        t.row(vec![
            c.name.clone(),
            describe(c),
            c.packets.to_string(),
            c.flows.len().to_string(),
            c.dropped.to_string(),
            c.dropped_flows().to_string(),
            c.no_flow.to_string(),
            c.unreadable.to_string(),
            format!("{:.1}", c.elapsed.as_secs_f64() * 1e3),
            si(c.packets_per_second()),
        ]);
    }
    let sum = |f: fn(&CaptureReplay) -> u64| cs.iter().map(f).sum::<u64>();
    let packets = sum(|c| c.packets);
    t.total_row(vec![
        format!("total ({} captures)", cs.len()),
        String::new(),
        packets.to_string(),
        cs.iter().map(|c| c.flows.len()).sum::<usize>().to_string(),
        sum(|c| c.dropped).to_string(),
        cs.iter().map(CaptureReplay::dropped_flows).sum::<usize>().to_string(),
        sum(|c| c.no_flow).to_string(),
        sum(|c| c.unreadable).to_string(),
        format!("{:.1}", wall * 1e3),
        si(if wall > 0.0 { packets as f64 / wall } else { 0.0 }),
    ]);
    let mut out = format!("Summary (policy: {policy}):\n");
    out.push_str(&t.render());
    let records: u64 = sum(|c| c.no_record);
    if records > 0 {
        out.push_str(&format!(
            "  note: {records} packets came back without a verdict record; their app is unknown\n"
        ));
    }
    out
}

fn score_cells(s: &Score) -> Vec<String> {
    vec![
        s.flows.to_string(),
        format!("{}/{}", s.blocked_flows, s.block_flows),
        pct(s.recall_flows()),
        pct(s.recall_packets()),
        s.fp_flows.to_string(),
        s.fp_packets.to_string(),
        opt(s.median_before_drop()),
        opt(s.p95_before_drop()),
        s.any_flows.to_string(),
        s.unlabelled_flows.to_string(),
        (s.block_missing + s.pass_missing).to_string(),
    ]
}

const SCORE_COLUMNS: [&str; 11] = [
    ">flows", ">blocked", ">recall flows", ">recall pkts", ">fp flows", ">fp pkts", ">p50", ">p95", ">any",
    ">unlabelled", ">not seen",
];

const LEGEND: &str = "  blocked: block flows with >= 80% of packets dropped / block flows; fp: pass flows (packets) \
with a drop;\n  p50, p95: packets passed before the first drop of a blocked flow; not seen: labelled flows \
the replay did not see\n";

/// The score tables: per capture with a total, per app, then the false positives and the
/// known disagreements. With `details`, every flow's outcome too.
pub fn eval_text(e: &Evaluation, policy: &str, details: bool) -> String {
    let mut out = format!("Scores per capture (policy: {policy}):\n");
    let mut cols = vec!["capture"];
    cols.extend(SCORE_COLUMNS);
    let mut t = Table::new(&cols);
    for (name, s, err) in &e.captures {
        let mut row = vec![if err.is_some() { format!("{name} (cut short)") } else { name.clone() }];
        row.extend(score_cells(s));
        t.row(row);
    }
    let mut row = vec![format!("total ({} captures)", e.captures.len())];
    row.extend(score_cells(&e.total));
    t.total_row(row);
    out.push_str(&t.render());
    out.push_str(LEGEND);

    out.push_str("\nScores per app (the app part of nDPI's label):\n");
    let mut t = Table::new(&["app", ">flows", ">blocked", ">recall pkts", ">pass", ">fp flows", ">any", ">not seen", ">pkts", ">dropped"]);
    for (app, s) in &e.apps {
        t.row(vec![
            app.clone(),
            s.flows.to_string(),
            format!("{}/{}", s.blocked_flows, s.block_flows),
            pct(s.recall_packets()),
            s.pass_flows.to_string(),
            s.fp_flows.to_string(),
            s.any_flows.to_string(),
            (s.block_missing + s.pass_missing).to_string(),
            (s.block_packets + s.pass_packets + s.any_packets).to_string(),
            (s.block_dropped + s.fp_packets + s.any_dropped).to_string(),
        ]);
    }
    out.push_str(&t.render());

    let outcome_table = |pick: &dyn Fn(&Verdict) -> bool, with_reason: bool| {
        let mut cols = vec!["capture", "proto", "endpoint A", "endpoint B", "expect", "nDPI", "app", ">pkts", ">dropped", ">first drop", "outcome"];
        if with_reason {
            cols.push("reason");
        }
        let mut t = Table::new(&cols);
        for o in e.outcomes.iter().filter(|o| pick(&o.verdict)) {
            let mut row = vec![
                o.capture.clone(),
                proto_name(o.key.proto),
                o.key.a.to_string(),
                o.key.b.to_string(),
                o.expect.map_or("-", |x| x.name()).to_string(),
                o.ndpi.clone().unwrap_or_else(|| "-".into()),
                o.app.name().to_string(),
                o.packets.to_string(),
                o.dropped.to_string(),
                opt(o.first_drop),
                o.verdict.name().to_string(),
            ];
            if let Verdict::Excluded(r) = &o.verdict {
                row.push(r.clone());
            }
            t.row(row);
        }
        t
    };
    let fp = outcome_table(&|v| *v == Verdict::FalsePositive, false);
    if fp.is_empty() {
        out.push_str("\nFalse positives: none\n");
    } else {
        out.push_str("\nFalse positives (pass flows with a dropped packet):\n");
        out.push_str(&fp.render());
    }
    let ex = outcome_table(&|v| matches!(v, Verdict::Excluded(_)), true);
    if !ex.is_empty() {
        out.push_str("\nKnown disagreements (left out of the scores):\n");
        out.push_str(&ex.render());
    }
    if !e.unused_disagreements.is_empty() {
        out.push_str("\nKnown disagreements that match no flow (stale):\n");
        for d in &e.unused_disagreements {
            out.push_str(&format!("  line {}: {} {}\n", d.line, d.capture, d.key));
        }
    }
    if !e.unreadable_labels.is_empty() {
        out.push_str("\nLabel rows that name no valid address (not scored):\n");
        for l in &e.unreadable_labels {
            out.push_str(&format!("  {l}\n"));
        }
    }
    if details {
        out.push_str("\nEvery flow:\n");
        out.push_str(&outcome_table(&|_| true, false).render());
    }
    out
}
