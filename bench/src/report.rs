//! The markdown report and its PNG charts.

use std::{fmt::Write as _, path::Path};

use crate::{
    classes::CostResult,
    corpus::CorpusResult,
    live::{LiveResult, Peer},
    scaling::{ControlResult, ScalingResult},
    util::{Stats, ratios},
};

pub const LINE_RATE_MPPS: f64 = 14.88;

#[derive(Default)]
pub struct Report {
    pub machine: Vec<(String, String)>,
    pub settings: String,
    pub cost: Option<Result<CostResult, String>>,
    pub live: Option<Result<LiveResult, String>>,
    pub corpus: Option<Result<CorpusResult, String>>,
    pub scaling: Option<Result<ScalingResult, String>>,
    pub control: Option<Result<ControlResult, String>>,
    pub charts: Vec<(String, String)>,
}

fn s(v: &[f64]) -> Stats {
    Stats::of(v)
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "**pass**",
        Some(false) => "**miss**",
        None => "not measured",
    }
}

fn action(a: u32) -> &'static str {
    match a {
        0 => "ABORTED",
        1 => "DROP",
        2 => "PASS",
        3 => "TX",
        4 => "REDIRECT",
        _ => "?",
    }
}

const STATELESS: [&str; 4] = ["DNS query", "TLS ClientHello (tcp/443)", "established TCP flow (TLS data)", "truncated packet"];

impl Report {
    /// (target, measured, pass/miss) rows.
    pub fn targets(&self) -> Vec<(String, String, Option<bool>)> {
        let mut t = Vec::new();
        let cost = self.cost.as_ref().and_then(|r| r.as_ref().ok());
        let class = |name: &str| cost.and_then(|c| c.classes.iter().find(|x| x.name == name));
        // 1. stateless <= 2x empty.
        let worst = STATELESS.iter().filter_map(|n| class(n).map(|c| (n, s(&c.steady_vs_empty).median))).max_by(|a, b| a.1.total_cmp(&b.1));
        t.push((
            "stateless traffic ≤ 2× the empty program".into(),
            worst.map(|(n, r)| format!("worst: {n}, {r:.2}×")).unwrap_or_default(),
            worst.map(|(_, r)| r <= 2.0),
        ));
        for (n, label) in [("established UDP flow (not a call)", "established UDP flow"), ("RTP of a blocked call", "dropped call packet (RTP)")] {
            let r = class(n).map(|c| s(&c.steady_vs_ref));
            t.push((format!("{label} ≤ 1.3× the parse+lookup reference"), r.map(|r| format!("{}×", r.show(2))).unwrap_or_default(), r.map(|r| r.median <= 1.3)));
        }
        let worst_new = cost
            .map(|c| c.classes.iter().filter(|c| !c.new_vs_empty.is_empty()).map(|c| (c.name.clone(), s(&c.new_vs_empty).median)).collect::<Vec<_>>())
            .and_then(|v| v.into_iter().max_by(|a, b| a.1.total_cmp(&b.1)));
        // What a bare flow table pays for a new flow, for scale.
        let floor = cost.filter(|c| !c.reference_new.is_empty()).map(|c| s(&ratios(&c.reference_new, &c.empty_pass)).median);
        t.push((
            "first packet of a new flow ≤ 10× the empty program".into(),
            worst_new
                .as_ref()
                .map(|(n, r)| {
                    let f = floor.map(|f| format!(" (parse + lookup + insert alone: {f:.1}×)")).unwrap_or_default();
                    format!("worst: {n}, {r:.1}×{f}")
                })
                .unwrap_or_default(),
            worst_new.map(|(_, r)| r <= 10.0),
        ));
        let sc = self.scaling.as_ref().and_then(|r| r.as_ref().ok());
        if let Some(sc) = sc {
            let at = |x: u64| sc.flows.points.iter().find(|p| p.x == x);
            let full = at(u64::from(voipfilter_common::maps::FLOWS_CAPACITY));
            let first = sc.flows.points.first();
            let m = full.zip(first).map(|(f, l)| {
                let r: Vec<String> = sc.classes.iter().enumerate().map(|(i, n)| format!("{n}: {:.1} ns ({:.2}× of 1k flows)", s(&f.ns[i]).median, s(&f.ns[i]).median / s(&l.ns[i]).median)).collect();
                r.join("; ")
            });
            t.push(("with 1M live flows (reported, no threshold)".into(), m.unwrap_or_default(), None));
        }
        let live = self.live.as_ref().and_then(|r| r.as_ref().ok());
        let media = live.and_then(|l| l.rows.iter().find(|r| r.peer == Peer::Voipfilter && r.traffic.starts_with("call media")));
        t.push((
            format!("live drop of call media on one core ≥ {LINE_RATE_MPPS} Mpps"),
            media.map(|r| format!("{} Mpps dropped", s(&r.dropped).show(2))).unwrap_or_default(),
            media.and_then(|r| (!r.dropped.is_empty()).then(|| s(&r.dropped).median >= LINE_RATE_MPPS)),
        ));
        let corpus = self.corpus.as_ref().and_then(|r| r.as_ref().ok());
        if let Some(c) = corpus {
            let ratio = s(&c.vf_pps).median / s(&c.ndpi_pps).median;
            let vr = c.vf_blocked_flows as f64 / c.vf_block_flows.max(1) as f64;
            let nr = c.ndpi_caught as f64 / c.ndpi_block_flows.max(1) as f64;
            t.push((
                "≥ 20× ndpiReader's pps with equal or better recall".into(),
                format!("{ratio:.1}× the pps; recall {:.1}% vs {:.1}%", vr * 100.0, nr * 100.0),
                (!c.ndpi_pps.is_empty()).then_some(ratio >= 20.0 && vr >= nr),
            ));
        } else {
            t.push(("≥ 20× ndpiReader's pps with equal or better recall".into(), String::new(), None));
        }
        if let Some(sc) = sc {
            let mut worst = 0.0f64;
            for series in &sc.rules {
                if let (Some(a), Some(b)) = (series.points.first(), series.points.last()) {
                    for i in 0..sc.classes.len() {
                        worst = worst.max(s(&b.ns[i]).median / s(&a.ns[i]).median);
                    }
                }
            }
            t.push(("cost flat within 10% from 10 to 100k rules".into(), format!("worst 100k/10 ratio {worst:.2}"), Some(worst <= 1.10)));
        }
        t
    }

    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "# voipfilter benchmark\n");
        let _ = writeln!(o, "Produced by `cargo xtask bench` ({}). Every figure is median (min–max) over the runs; ratios are computed per run against a baseline measured in the same run, then summarised. Targets are reported, not asserted.\n", self.settings);
        let _ = writeln!(o, "## Machine\n\n| | |\n|---|---|");
        for (k, v) in &self.machine {
            let _ = writeln!(o, "| {k} | {v} |");
        }
        let _ = writeln!(o, "\n## Targets\n\n| target | measured | result |\n|---|---|---|");
        for (name, m, ok) in self.targets() {
            let v = if ok.is_none() && !m.is_empty() { "reported" } else { verdict(ok) };
            let _ = writeln!(o, "| {name} | {m} | {v} |");
        }
        self.cost_md(&mut o);
        self.live_md(&mut o);
        self.corpus_md(&mut o);
        self.scaling_md(&mut o);
        self.control_md(&mut o);
        o
    }

    fn cost_md(&self, o: &mut String) {
        let _ = writeln!(o, "\n## 1. Program cost per packet (BPF_PROG_TEST_RUN)\n");
        let c = match &self.cost {
            None => return,
            Some(Err(e)) => {
                let _ = writeln!(o, "Not measured: {e}");
                return;
            }
            Some(Ok(c)) => c,
        };
        let _ = writeln!(
            o,
            "Steady state: the same frame {} times (state-creating classes warmed up first, so this is their established path). New flow: `bench_newflow` stamps a fresh source address on each of {} runs and tail-calls voipfilter; its own cost (tail-calling the empty program instead, same run) is subtracted and the empty program's cost added back.\n",
            c.repeat, c.new_repeat
        );
        let _ = writeln!(o, "| program | ns per packet | × empty |\n|---|---|---|");
        let _ = writeln!(o, "| empty XDP_PASS | {} | 1 |", s(&c.empty_pass).show(1));
        let _ = writeln!(o, "| empty XDP_DROP | {} | {} |", s(&c.empty_drop).show(1), s(&ratios(&c.empty_drop, &c.empty_pass)).show(2));
        let _ = writeln!(o, "| reference: parse Eth/IPv4/UDP + 1 lookup in a full 1M LRU hash | {} | {} |", s(&c.reference).show(1), s(&ratios(&c.reference, &c.empty_pass)).show(2));
        if !c.reference_new.is_empty() {
            let _ = writeln!(o, "| new-flow reference: parse + lookup miss + insert into the full 1M LRU hash, under the wrapper | {} | {} |", s(&c.reference_new).show(1), s(&ratios(&c.reference_new, &c.empty_pass)).show(2));
        }
        let _ = writeln!(o, "\n| class | verdict | steady ns | × empty | × reference | new flow ns | new flow × empty | new flow × new-flow reference |\n|---|---|---|---|---|---|---|---|");
        for x in &c.classes {
            let mark = if x.action == x.expect { "" } else { " (unexpected)" };
            let (nf, nfr, nfn) = if x.new_flow.is_empty() {
                ("–".into(), "–".into(), "–".into())
            } else {
                (s(&x.new_flow).show(1), s(&x.new_vs_empty).show(1), s(&ratios(&x.new_flow, &c.reference_new)).show(1))
            };
            let _ = writeln!(o, "| {} | {}{mark} | {} | {} | {} | {nf} | {nfr} | {nfn} |", x.name, action(x.action), s(&x.steady).show(1), s(&x.steady_vs_empty).show(2), s(&x.steady_vs_ref).show(2));
        }
    }

    fn live_md(&self, o: &mut String) {
        let _ = writeln!(o, "\n## 2. Live throughput on one core (veth, live-frames generator)\n");
        let l = match &self.live {
            None => return,
            Some(Err(e)) => {
                let _ = writeln!(o, "Not measured: {e}");
                return;
            }
            Some(Ok(l)) => l,
        };
        let _ = writeln!(
            o,
            "`bench_gen` (BPF_PROG_TEST_RUN, BPF_F_TEST_XDP_LIVE_FRAMES, batch 64) redirects {} 64-byte frames per run into `vfba` in namespace `vfb-PID`; the program under test runs on its peer `vfbb` in native XDP mode. Generator, veth and filter share CPU {} (the veth NAPI poll runs in the softirq the generator's flush raises), so every figure is one core doing generation and filtering: compare each row with the empty program's in the same traffic. Passed frames go up to the stack (their destination MAC is not `vfbb`'s, so the stack discards them at its first check, after building the skb). xdp-filter and nftables drop udp dst ports 5060, 5061, 3478 and the six calls' media ports; nftables also drops UDP payloads starting with `INVITE sip:` (a fixed-offset match: nftables has no substring search) and needs an XDP_PASS program on the veth to receive redirected frames.\n",
            l.frames, l.cpu
        );
        let _ = writeln!(o, "| peer | traffic | received Mpps | dropped Mpps | passed Mpps | × empty (received) |\n|---|---|---|---|---|---|");
        for r in &l.rows {
            let empty = l.rows.iter().find(|e| e.peer == Peer::EmptyDrop && e.traffic == r.traffic);
            let rel = empty.map(|e| s(&ratios(&r.received, &e.received)).show(2)).unwrap_or_default();
            let note = r.note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default();
            let _ = writeln!(o, "| {}{note} | {} | {} | {} | {} | {rel} |", r.peer.name(), r.traffic, s(&r.received).show(2), s(&r.dropped).show(2), s(&r.passed).show(2));
        }
    }

    fn corpus_md(&self, o: &mut String) {
        let _ = writeln!(o, "\n## 3. Classification of the corpus captures, next to ndpiReader\n");
        let c = match &self.corpus {
            None => return,
            Some(Err(e)) => {
                let _ = writeln!(o, "Not measured: {e}");
                return;
            }
            Some(Ok(c)) => c,
        };
        let _ = writeln!(o, "{} captures, {} packets. voipfilter: every frame through the real program (BPF_PROG_TEST_RUN, repeat 1, in order); pps = packets / sum of the kernel's per-run durations (which include the test-run timer's overhead). ndpiReader {}: one thread over a playlist of the same files, its own `nDPI throughput` figure. Recall: share of the labels' `block` flows caught (voipfilter: dropped as `voipfilter eval` counts it; nDPI: given the labels' nDPI protocol — the labels were made with a newer nDPI).\n", c.captures, c.packets, c.ndpi_version);
        let _ = writeln!(o, "| classifier | packets/s per core | block flows caught | false positives |\n|---|---|---|---|");
        let _ = writeln!(o, "| voipfilter (XDP) | {} | {}/{} ({:.1}%) | {} flows |", s(&c.vf_pps).show(0), c.vf_blocked_flows, c.vf_block_flows, 100.0 * c.vf_blocked_flows as f64 / c.vf_block_flows.max(1) as f64, c.vf_fp_flows);
        match &c.ndpi_error {
            Some(e) => {
                let _ = writeln!(o, "| ndpiReader | not measured: {e} | | |");
            }
            None => {
                let _ = writeln!(o, "| ndpiReader | {} | {}/{} ({:.1}%) | not scored |", s(&c.ndpi_pps).show(0), c.ndpi_caught, c.ndpi_block_flows, 100.0 * c.ndpi_caught as f64 / c.ndpi_block_flows.max(1) as f64);
                let _ = writeln!(o, "\nvoipfilter / ndpiReader: {}× the packets per second (per-run medians).", format!("{:.1}", s(&c.vf_pps).median / s(&c.ndpi_pps).median));
            }
        }
    }

    fn scaling_md(&self, o: &mut String) {
        let _ = writeln!(o, "\n## 4. Scaling\n");
        let sc = match &self.scaling {
            None => return,
            Some(Err(e)) => {
                let _ = writeln!(o, "Not measured: {e}");
                return;
            }
            Some(Ok(s)) => s,
        };
        for series in &sc.rules {
            let _ = writeln!(o, "### Cost per packet (ns) vs {}\n", series.name);
            let _ = write!(o, "| {} |", series.name);
            for c in &sc.classes {
                let _ = write!(o, " {c} |");
            }
            let _ = writeln!(o, "\n|---|{}", "---|".repeat(sc.classes.len()));
            for p in &series.points {
                let _ = write!(o, "| {} |", p.x);
                for v in &p.ns {
                    let _ = write!(o, " {} |", s(v).show(1));
                }
                let _ = writeln!(o);
            }
            let _ = writeln!(o);
        }
        let _ = writeln!(o, "### Cost per packet (ns) as the flow table fills (capacity {}; beyond it the LRU evicts)\n", voipfilter_common::maps::FLOWS_CAPACITY);
        let _ = write!(o, "| flows inserted |");
        for c in &sc.classes {
            let _ = write!(o, " {c} |");
        }
        let _ = writeln!(o, " new flow (first packet) |\n|---|{}---|", "---|".repeat(sc.classes.len()));
        for (p, (_, nf)) in sc.flows.points.iter().zip(&sc.new_flow) {
            let _ = write!(o, "| {} |", p.x);
            for v in &p.ns {
                let _ = write!(o, " {} |", s(v).show(1));
            }
            let _ = writeln!(o, " {} |", s(nf).show(1));
        }
        for (name, path) in &self.charts {
            let _ = writeln!(o, "\n![{name}]({path})");
        }
        let _ = writeln!(o, "\n### Map memory (kernel `memlock`, /proc/self/fdinfo)\n");
        for (when, maps) in &sc.memory {
            let _ = writeln!(o, "{when}:\n\n| map | type | max entries | key+value bytes | memlock | bytes per entry |\n|---|---|---|---|---|---|");
            for m in maps.iter().filter(|m| m.memlock > 0 && !m.name.is_empty()) {
                let per = if m.max_entries > 0 { m.memlock as f64 / f64::from(m.max_entries) } else { f64::NAN };
                let _ = writeln!(o, "| {} | {} | {} | {} | {} | {:.1} |", m.name, m.kind, m.max_entries, m.key + m.value, m.memlock, per);
            }
            if let Some(m) = maps.iter().find(|m| m.name == "PREFIX4_RULES" && when.contains("prefix")) {
                let _ = writeln!(o, "The LPM trie allocates per rule: {:.1} bytes per prefix rule.\n", m.memlock as f64 / 100_000.0);
            }
            let _ = writeln!(o);
        }
    }

    fn control_md(&self, o: &mut String) {
        let _ = writeln!(o, "\n## 5. Control plane\n");
        let c = match &self.control {
            None => return,
            Some(Err(e)) => {
                let _ = writeln!(o, "Not measured: {e}");
                return;
            }
            Some(Ok(c)) => c,
        };
        let _ = writeln!(o, "| operation | time |\n|---|---|");
        let _ = writeln!(o, "| load the seven programs (verifier included) and set defaults | {} ms |", s(&c.load_ms).show(0));
        let _ = writeln!(o, "| install 100,000 IPv4 prefix rules (`Maps::install`) | {} ms |", s(&c.install_100k_prefix_ms).show(0));
        let _ = writeln!(o, "| add a drop rule on an established flow's port, then the next packet (effective: {}) | {} µs |", c.rule_change_effective, s(&c.rule_change_us).show(0));
        let _ = writeln!(o, "| set SIP's policy to pass on a SIP flow already dropped, then the next packet (effective: {}) | {} µs |", c.policy_change_effective, s(&c.policy_change_us).show(0));
        let _ = writeln!(o, "\nMap updates are synchronous: the packet after the update syscall returns sees the change (checked above by its verdict), so the time is the syscalls' plus one test run.");
    }

    /// Writes the scaling charts next to the report; returns (title, file name).
    pub fn charts(&mut self, dir: &Path, stem: &str) -> anyhow::Result<()> {
        let Some(Ok(sc)) = &self.scaling else { return Ok(()) };
        let font = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").map_err(|e| anyhow::anyhow!("no DejaVuSans.ttf for chart labels ({e}); apt-get install fonts-dejavu-core"))?;
        let font: &'static [u8] = Box::leak(font.into_boxed_slice());
        plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, font).map_err(|_| anyhow::anyhow!("bad font"))?;
        let mut out = Vec::new();
        let mut rule_lines = Vec::new();
        for series in &sc.rules {
            for (i, c) in sc.classes.iter().enumerate() {
                rule_lines.push((format!("{c}, {}", series.name), series.points.iter().map(|p| (p.x as f64, s(&p.ns[i]).median)).collect::<Vec<_>>()));
            }
        }
        let f = format!("{stem}-rules.png");
        chart(&dir.join(&f), "Cost per packet vs number of rules", "rules", &rule_lines)?;
        out.push(("cost vs rules".to_string(), f));
        let mut flow_lines: Vec<(String, Vec<(f64, f64)>)> =
            sc.classes.iter().enumerate().map(|(i, c)| (c.clone(), sc.flows.points.iter().map(|p| (p.x as f64, s(&p.ns[i]).median)).collect())).collect();
        flow_lines.push(("new flow (first packet)".into(), sc.new_flow.iter().map(|(x, v)| (*x as f64, s(v).median)).collect()));
        let f = format!("{stem}-flows.png");
        chart(&dir.join(&f), "Cost per packet vs flows in the table (1M capacity, LRU)", "flows inserted", &flow_lines)?;
        out.push(("cost vs flows".to_string(), f));
        self.charts = out;
        Ok(())
    }
}

fn chart(path: &Path, title: &str, xlabel: &str, lines: &[(String, Vec<(f64, f64)>)]) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let xs: Vec<f64> = lines.iter().flat_map(|l| l.1.iter().map(|p| p.0)).collect();
    let ys: Vec<f64> = lines.iter().flat_map(|l| l.1.iter().map(|p| p.1)).filter(|y| y.is_finite()).collect();
    let (x0, x1) = (xs.iter().copied().fold(f64::MAX, f64::min).max(1.0), xs.iter().copied().fold(1.0, f64::max));
    let y1 = ys.iter().copied().fold(1.0, f64::max) * 1.15;
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((x0 * 0.8..x1 * 1.25).log_scale(), 0.0..y1)?;
    c.configure_mesh().x_desc(xlabel).y_desc("ns per packet (median)").draw()?;
    for (i, (name, pts)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        c.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?.label(name.as_str()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        c.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    c.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).position(SeriesLabelPosition::UpperLeft).draw()?;
    root.present()?;
    Ok(())
}
