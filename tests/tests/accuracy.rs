//! Accuracy on real traffic: every capture of `../shared/corpus` replayed through the real XDP
//! program (BPF_PROG_TEST_RUN, the daemon's default policy) and scored against its labels.
//!
//! Asserts no more false-positive flows than `tests/accuracy/floor.toml` allows (the goal, and
//! the engine issue's end state, is zero), and block recall by flows and by packets at or above
//! the floor kept there, which is only ever raised. Flows whose label is wrong after reading the
//! packets are listed, with the reason, in `tests/accuracy/disagreements.tsv`; nothing else is
//! exempt. Prints the full score table. Also checks how `replay` and `eval` report a truncated
//! capture and unmet thresholds. Needs root.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use voipfilter::replay::{
    Replayer,
    cli::evaluate,
    eval::parse_disagreements,
    expand_captures,
    progress::Progress,
    report,
};
use voipfilter_tests::cli::{CliOutput, voipfilter_bin};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn accuracy_dir() -> PathBuf {
    repo().join("tests/accuracy")
}

/// `<repo>/../shared/corpus`; fails with a clear message when it is missing.
fn corpus() -> PathBuf {
    let c = repo().join("../shared/corpus");
    assert!(
        c.join("pcap").is_dir() && c.join("labels").is_dir(),
        "the accuracy corpus is missing: expected captures in {0}/pcap and labels in {0}/labels \
         (the repository's sibling directory shared/corpus; CI provides it)",
        c.display()
    );
    std::fs::canonicalize(&c).unwrap_or(c)
}

/// The floor: `key = value` lines of `tests/accuracy/floor.toml` (comments after `#`).
struct Floor {
    recall_flows: f64,
    recall_packets: f64,
    max_fp_flows: u64,
}

fn floor() -> Floor {
    let path = accuracy_dir().join("floor.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let (mut rf, mut rp, mut fp) = (None, None, None);
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("{}:{}: expected key = value", path.display(), i + 1));
        let v = v.trim();
        let bad = || -> ! { panic!("{}:{}: bad value {v:?} for {}", path.display(), i + 1, k.trim()) };
        match k.trim() {
            "recall_flows" => rf = Some(v.parse::<f64>().unwrap_or_else(|_| bad())),
            "recall_packets" => rp = Some(v.parse::<f64>().unwrap_or_else(|_| bad())),
            "max_fp_flows" => fp = Some(v.parse::<u64>().unwrap_or_else(|_| bad())),
            other => panic!("{}:{}: unknown key {other}", path.display(), i + 1),
        }
    }
    let missing = |k: &str| -> ! { panic!("{}: {k} is missing", path.display()) };
    Floor {
        recall_flows: rf.unwrap_or_else(|| missing("recall_flows")),
        recall_packets: rp.unwrap_or_else(|| missing("recall_packets")),
        max_fp_flows: fp.unwrap_or_else(|| missing("max_fp_flows")),
    }
}

#[test]
fn corpus_accuracy() {
    let corpus = corpus();
    let floor = floor();
    let known_path = accuracy_dir().join("disagreements.tsv");
    let known_text =
        std::fs::read_to_string(&known_path).unwrap_or_else(|e| panic!("reading {}: {e}", known_path.display()));
    let known = parse_disagreements(&known_path, &known_text).unwrap_or_else(|e| panic!("{e:#}"));

    let captures = expand_captures(&[corpus.join("pcap")]).unwrap_or_else(|e| panic!("{e:#}"));
    let mut replayer = Replayer::new(None).unwrap_or_else(|e| panic!("loading the program: {e:#}"));
    let start = std::time::Instant::now();
    let (e, cs) = evaluate(&mut replayer, &captures, &corpus.join("labels"), &known, Progress::disabled())
        .unwrap_or_else(|e| panic!("{e:#}"));
    let wall = start.elapsed().as_secs_f64();

    println!("{}", report::summary_table(&cs, &replayer.policy, wall));
    println!("{}", report::eval_text(&e, &replayer.policy, false));

    let errors: Vec<String> =
        cs.iter().filter_map(|c| c.error.as_ref().map(|err| format!("{}: {err}", c.name))).collect();
    assert!(errors.is_empty(), "captures of the corpus could not be replayed to the end:\n{}", errors.join("\n"));
    let names: Vec<&str> = cs.iter().map(|c| c.name.as_str()).collect();
    for d in &known {
        assert!(
            names.contains(&d.capture.as_str()),
            "{}:{}: capture {} is not in the corpus",
            known_path.display(),
            d.line,
            d.capture
        );
    }
    assert!(
        e.unused_disagreements.is_empty(),
        "{} lists flows that are neither in the replay nor in the labels: {:?}",
        known_path.display(),
        e.unused_disagreements
    );

    println!("per-app block recall (app of nDPI's label; flows with >= 80% of packets dropped, and packets):");
    let mut apps: Vec<_> = e.apps.iter().filter(|(_, s)| s.block_flows > 0).collect();
    apps.sort_by(|a, b| a.1.recall_flows().partial_cmp(&b.1.recall_flows()).unwrap_or(std::cmp::Ordering::Equal).then(a.0.cmp(b.0)));
    for (app, s) in apps {
        println!(
            "  {app:<20} flows {:>3}/{:<3} {:>6}   packets {:>5}/{:<5} {:>6}   fp flows {}",
            s.blocked_flows,
            s.block_flows,
            s.recall_flows().map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
            s.block_dropped,
            s.block_packets,
            s.recall_packets().map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
            s.fp_flows
        );
    }

    let t = &e.total;
    let recall_flows = t.recall_flows().expect("the corpus has block flows");
    let recall_packets = t.recall_packets().expect("the corpus has block packets");
    println!(
        "accuracy: recall {recall_flows:.4} by flows ({}/{}), {recall_packets:.4} by packets ({}/{}); \
         {} false-positive flows; floor: {} / {} / at most {} false-positive flows",
        t.blocked_flows, t.block_flows, t.block_dropped, t.block_packets, t.fp_flows,
        floor.recall_flows, floor.recall_packets, floor.max_fp_flows
    );
    assert!(
        t.fp_flows <= floor.max_fp_flows,
        "{} pass flows had packets dropped (false positives), more than the {} that floor.toml allows; \
         see the false-positive table above",
        t.fp_flows,
        floor.max_fp_flows
    );
    assert!(
        recall_flows >= floor.recall_flows,
        "block recall by flows fell to {recall_flows:.4}, below the floor {}",
        floor.recall_flows
    );
    assert!(
        recall_packets >= floor.recall_packets,
        "block recall by packets fell to {recall_packets:.4}, below the floor {}",
        floor.recall_packets
    );
    if t.fp_flows < floor.max_fp_flows || recall_flows >= floor.recall_flows + 0.0001 || recall_packets >= floor.recall_packets + 0.0001 {
        println!(
            "accuracy improved: tighten tests/accuracy/floor.toml to recall_flows = {}, recall_packets = {}, max_fp_flows = {}",
            (recall_flows * 10_000.0).floor() / 10_000.0,
            (recall_packets * 10_000.0).floor() / 10_000.0,
            t.fp_flows
        );
    }
}

/// Replay resets the program's flow state between captures: a capture replayed after others
/// gives the verdicts it gave first (otherwise its flows would be decided from their first
/// packet by what the earlier replay left in FLOWS, EXPECT, FRAGS or TCP_CALLS).
#[test]
fn replaying_a_capture_again_gives_the_same_verdicts() {
    let c = corpus().join("pcap");
    // RTP confirmed over packets, SIP and its expectations, H.323 over TCP (TCP_CALLS).
    let captures = ["rtp.pcapng", "sip.pcap", "h323.pcap"].map(|n| c.join(n));
    let mut replayer = Replayer::new(None).unwrap_or_else(|e| panic!("loading the program: {e:#}"));
    let first: Vec<_> = captures.iter().map(|p| replayer.replay(p, &mut Progress::disabled(), "first")).collect();
    let again: Vec<_> = captures.iter().map(|p| replayer.replay(p, &mut Progress::disabled(), "again")).collect();
    for (a, b) in first.iter().zip(&again) {
        assert!(a.error.is_none(), "{}: {:?}", a.name, a.error);
        assert!(a.dropped > 0, "{}: nothing dropped, the comparison would mean little", a.name);
        assert_eq!((a.packets, a.dropped, a.flows.len()), (b.packets, b.dropped, b.flows.len()), "{}", a.name);
        for (fa, fb) in a.flows.iter().zip(&b.flows) {
            assert_eq!(fa, fb, "{}: flow {} differs on the second replay", a.name, fa.key);
        }
        println!("{}: {} packets, {} flows, {} dropped, twice the same", a.name, a.packets, a.flows.len(), a.dropped);
    }
}

/// Byte offset of the start of packet `n` (1-based) of a classic pcap in little-endian order.
fn pcap_record_offset(bytes: &[u8], n: usize) -> usize {
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "expected a little-endian microsecond pcap");
    let mut off = 24;
    for _ in 1..n {
        let incl = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().expect("4 bytes")) as usize;
        off += 16 + incl;
    }
    off
}

/// A copy of `sip.pcap` cut 10 bytes into the data of packet 50.
fn truncated_sip(dir: &Path) -> PathBuf {
    let bytes = std::fs::read(corpus().join("pcap/sip.pcap")).expect("reading sip.pcap");
    let cut = pcap_record_offset(&bytes, 50) + 16 + 10;
    let path = dir.join("sip-truncated.pcap");
    std::fs::write(&path, &bytes[..cut]).expect("writing the truncated copy");
    path
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("voipfilter-accuracy-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("creating a temporary directory");
    d
}

#[test]
fn truncated_capture_reports_the_packet_and_the_flows_so_far() {
    let dir = temp_dir("truncated");
    let path = truncated_sip(&dir);

    let mut replayer = Replayer::new(None).unwrap_or_else(|e| panic!("loading the program: {e:#}"));
    let c = replayer.replay(&path, &mut Progress::disabled(), "sip-truncated");
    let err = c.error.clone().expect("a truncated capture is an error");
    assert!(err.starts_with("packet 50 (byte "), "{err}");
    assert!(err.contains("capture truncated: the packet data has 10 of"), "{err}");
    assert_eq!(c.packets, 49, "the 49 whole packets are replayed");
    assert!(c.flows.iter().any(|f| f.key.to_string() == "UDP 192.168.1.2:5060 212.242.33.35:5060"), "{:?}", c.flows);

    let out = CliOutput::run({
        let mut cmd = Command::new(voipfilter_bin());
        cmd.arg("replay").arg(&path);
        cmd
    });
    let stdout = out.stdout.clone();
    out.fails_with(&[&format!("{}: packet 50 (byte ", path.display()), "capture truncated"]);
    assert!(stdout.contains("192.168.1.2:5060"), "the flows read so far are printed:\n{stdout}");
    assert!(stdout.contains("Summary"), "{stdout}");

    let json = CliOutput::run({
        let mut cmd = Command::new(voipfilter_bin());
        cmd.arg("replay").arg("--json").arg(&path);
        cmd
    });
    assert_eq!(json.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let capture = lines.iter().find(|v| v["type"] == "capture").expect("a capture summary line");
    assert_eq!(capture["packets"], 49);
    assert!(capture["error"].as_str().is_some_and(|e| e.starts_with("packet 50")), "{capture}");
    assert!(lines.iter().any(|v| v["type"] == "flow" && v["b"] == "212.242.33.35:5060"), "{}", json.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_json_counts_every_packet() {
    let sip = corpus().join("pcap/sip.pcap");
    let out = CliOutput::run({
        let mut cmd = Command::new(voipfilter_bin());
        cmd.arg("replay").arg("--json").arg(&sip);
        cmd
    })
    .ok();
    let lines: Vec<serde_json::Value> =
        out.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let flows: Vec<_> = lines.iter().filter(|v| v["type"] == "flow").collect();
    let total = lines.last().expect("output");
    assert_eq!(total["type"], "total");
    assert_eq!(total["packets"], 112, "sip.pcap has 112 packets");
    let sum: u64 = flows.iter().map(|f| f["packets"].as_u64().expect("packets")).sum();
    let capture = lines.iter().find(|v| v["type"] == "capture").expect("a capture line");
    assert_eq!(sum + capture["no_flow"].as_u64().expect("no_flow"), 112, "every packet is in a flow or counted as no-flow");
    for f in &flows {
        for k in ["proto", "a", "b", "app", "class", "packets", "dropped", "first_drop"] {
            assert!(f.get(k).is_some(), "flow without {k}: {f}");
        }
        let dropped = f["dropped"].as_u64().expect("dropped");
        assert_eq!(f["first_drop"].is_null(), dropped == 0, "{f}");
    }
}

#[test]
fn eval_thresholds_set_the_exit_status() {
    let c = corpus();
    let eval = |args: &[&str]| {
        let mut cmd = Command::new(voipfilter_bin());
        cmd.arg("eval").arg("--labels").arg(c.join("labels")).args(args).arg(c.join("pcap/dns.pcap"));
        CliOutput::run(cmd)
    };
    // dns.pcap has only pass flows: no DNS packet may be dropped, and there is no recall to score.
    let ok = eval(&["--max-fp-flows", "0"]).ok();
    assert!(ok.stdout.contains("Scores per capture"), "{}", ok.stdout);
    assert!(ok.stdout.contains("False positives: none"), "{}", ok.stdout);
    eval(&["--min-recall-flows", "0.5"])
        .fails_with(&["threshold not met", "block recall by flows: no block flows to score (minimum 0.5)"]);
    let json = eval(&["--json", "--max-fp-flows", "0"]).ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("eval --json prints one JSON document");
    assert_eq!(v["total"]["fp_flows"], 0);
    assert!(v["captures"][0]["capture"] == "dns.pcap", "{v}");
    let bad = {
        let mut cmd = Command::new(voipfilter_bin());
        cmd.args(["eval", "--labels", "/nonexistent", "--min-recall-flows", "95"]).arg(c.join("pcap/dns.pcap"));
        CliOutput::run(cmd)
    };
    assert!(!bad.status.success());
    assert!(bad.stderr.contains("not a fraction between 0 and 1"), "{}", bad.stderr);
}
