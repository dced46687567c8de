//! The `replay` and `eval` subcommands: their options and what they print.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context as _, bail};
use clap::Args;

use super::{
    CaptureReplay, Replayer,
    eval::{Disagreement, Evaluation, Thresholds, parse_disagreements},
    expand_captures,
    labels::Labels,
    progress::Progress,
    report,
};

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// pcap or pcapng files (a directory stands for the files in it).
    #[arg(value_name = "CAPTURE", required = true)]
    pub captures: Vec<PathBuf>,
    /// Rules as for `voipfilter run --config`; without it, the daemon's default policy.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// One JSON object per line: every flow, then a summary per capture and a total.
    #[arg(long)]
    pub json: bool,
    /// No progress line, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Directory of label files (`<capture file name>.labels.tsv`).
    #[arg(short, long, value_name = "DIR")]
    pub labels: PathBuf,
    /// pcap or pcapng files (a directory stands for the files in it).
    #[arg(value_name = "CAPTURE", required = true)]
    pub captures: Vec<PathBuf>,
    /// Rules as for `voipfilter run --config`; without it, the daemon's default policy.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Flows whose label is known to be wrong (capture, l4, endpoint_a, endpoint_b, reason;
    /// tab-separated): left out of the scores and listed with their reason.
    #[arg(long, value_name = "FILE")]
    pub disagreements: Option<PathBuf>,
    /// One JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also list every flow with its label and outcome.
    #[arg(long)]
    pub details: bool,
    /// Fail unless total block recall by flows (0-1) is at least this.
    #[arg(long, value_name = "F", value_parser = fraction)]
    pub min_recall_flows: Option<f64>,
    /// Fail unless total block recall by packets (0-1) is at least this.
    #[arg(long, value_name = "F", value_parser = fraction)]
    pub min_recall_packets: Option<f64>,
    /// Fail if more than N pass flows had a packet dropped.
    #[arg(long, value_name = "N")]
    pub max_fp_flows: Option<u64>,
    /// No progress line, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

fn fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("{v} is not a fraction between 0 and 1 (write 0.95 for 95%)"));
    }
    Ok(v)
}

/// Replays every capture with one loaded program; calls `each` after each capture.
fn replay_all(
    replayer: &mut Replayer,
    captures: &[PathBuf],
    mut progress: Progress,
    mut each: impl FnMut(&mut Progress, &CaptureReplay),
) -> (Vec<CaptureReplay>, f64) {
    let start = Instant::now();
    let mut out = Vec::with_capacity(captures.len());
    for (i, path) in captures.iter().enumerate() {
        let label = format!("{}/{} {}", i + 1, captures.len(), path.display());
        let c = replayer.replay(path, &mut progress, &label);
        each(&mut progress, &c);
        out.push(c);
    }
    progress.clear();
    (out, start.elapsed().as_secs_f64())
}

/// The errors of the captures that were cut short, as one error (`None` if there were none).
fn capture_errors(cs: &[CaptureReplay]) -> Option<anyhow::Error> {
    let errs: Vec<String> =
        cs.iter().filter_map(|c| c.error.as_ref().map(|e| format!("{}: {e}", c.path.display()))).collect();
    match errs.len() {
        0 => None,
        1 => Some(anyhow::anyhow!("{}", errs[0])),
        n => Some(anyhow::anyhow!("{n} captures could not be read to the end:\n  {}", errs.join("\n  "))),
    }
}

/// `voipfilter replay`.
pub fn replay(a: &ReplayArgs) -> anyhow::Result<()> {
    let captures = expand_captures(&a.captures)?;
    let mut replayer = Replayer::new(a.config.as_deref())?;
    let progress = if a.no_progress { Progress::disabled() } else { Progress::new(true) };
    let json = a.json;
    let (cs, wall) = replay_all(&mut replayer, &captures, progress, |p, c| {
        p.clear();
        if json {
            for f in &c.flows {
                println!("{}", report::flow_json(c, f));
            }
        } else {
            println!("{}", report::flow_table(c));
        }
    });
    if json {
        for c in &cs {
            println!("{}", report::capture_json(c));
        }
        println!("{}", report::total_json(&cs, &replayer.policy, wall));
    } else {
        print!("{}", report::summary_table(&cs, &replayer.policy, wall));
    }
    capture_errors(&cs).map_or(Ok(()), Err)
}

/// Loads the labels of every capture before anything is replayed, so that a missing file
/// fails fast.
fn load_labels(dir: &Path, captures: &[PathBuf]) -> anyhow::Result<Vec<Labels>> {
    if !dir.is_dir() {
        bail!("label directory {} does not exist", dir.display());
    }
    captures
        .iter()
        .map(|c| {
            let p = Labels::path_for(dir, c);
            if !p.exists() {
                bail!("no labels for {}: {} does not exist", c.display(), p.display());
            }
            Labels::load(&p)
        })
        .collect()
}

/// Replays and scores; the shared core of `voipfilter eval` and the accuracy test.
pub fn evaluate(
    replayer: &mut Replayer,
    captures: &[PathBuf],
    labels_dir: &Path,
    known: &[Disagreement],
    progress: Progress,
) -> anyhow::Result<(Evaluation, Vec<CaptureReplay>)> {
    let labels = load_labels(labels_dir, captures)?;
    let (cs, _) = replay_all(replayer, captures, progress, |_, _| {});
    let mut e = Evaluation::default();
    for (c, l) in cs.iter().zip(&labels) {
        e.add_capture(&c.name, &c.flows, l, known, c.error.clone());
    }
    Ok((e, cs))
}

/// `voipfilter eval`.
pub fn eval(a: &EvalArgs) -> anyhow::Result<()> {
    let captures = expand_captures(&a.captures)?;
    let known = match &a.disagreements {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            parse_disagreements(p, &text)?
        }
        None => Vec::new(),
    };
    let mut replayer = Replayer::new(a.config.as_deref())?;
    let progress = if a.no_progress { Progress::disabled() } else { Progress::new(true) };
    let (e, cs) = evaluate(&mut replayer, &captures, &a.labels, &known, progress)?;
    let thresholds = Thresholds {
        min_recall_flows: a.min_recall_flows,
        min_recall_packets: a.min_recall_packets,
        max_fp_flows: a.max_fp_flows,
    };
    let unmet = thresholds.unmet(&e.total);
    if a.json {
        let mut v = e.json(a.details);
        v["policy"] = serde_json::json!(replayer.policy);
        v["thresholds_unmet"] = serde_json::json!(unmet);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", report::eval_text(&e, &replayer.policy, a.details));
    }
    let mut problems = Vec::new();
    if let Some(err) = capture_errors(&cs) {
        problems.push(format!("{err:#}"));
    }
    if !unmet.is_empty() {
        problems.push(format!("threshold not met: {}", unmet.join("; ")));
    }
    if problems.is_empty() { Ok(()) } else { bail!("{}", problems.join("\n")) }
}
