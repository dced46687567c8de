//! Section 3: classification throughput on the corpus captures, next to ndpiReader on the same
//! files, and the share of `block` flows each one catches.
//!
//! voipfilter: every frame of every capture through the real program with BPF_PROG_TEST_RUN
//! (repeat 1, in order, one program instance for all captures); packets per second per core is
//! packets / the sum of the kernel's per-run durations (each includes the test-run timer's own
//! overhead, which also makes the empty program look ~4x slower than at large repeat counts).
//! Recall is `voipfilter eval`'s. ndpiReader: one process over a playlist of the same captures
//! (one thread); pps is its own "nDPI throughput" line; recall is the share of the labels'
//! `block` flows to which it gives the labels' nDPI protocol (the labels were made with another
//! nDPI version).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;
use voipfilter::{
    load::Filter,
    replay::{self, Replayer, link, pcap::Reader, progress::Progress},
};

use crate::util::{progress, sh};

pub struct CorpusResult {
    pub captures: usize,
    pub packets: u64,
    pub vf_pps: Vec<f64>,
    pub vf_block_flows: u64,
    pub vf_blocked_flows: u64,
    pub vf_fp_flows: u64,
    pub ndpi_version: String,
    pub ndpi_pps: Vec<f64>,
    pub ndpi_block_flows: u64,
    pub ndpi_caught: u64,
    pub ndpi_error: Option<String>,
}

pub fn captures(corpus: &Path) -> anyhow::Result<Vec<PathBuf>> {
    replay::expand_captures(&[corpus.join("pcap")])
}

fn frames(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut r = Reader::new(std::io::BufReader::new(f)).map_err(|e| anyhow::anyhow!("{}: {e:?}", path.display()))?;
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    while let Ok(Some(rec)) = r.next() {
        if let Ok(eth) = link::to_ethernet(rec.linktype, rec.data, &mut scratch)
            && eth.len() >= 14
        {
            out.push(eth.to_vec());
        }
    }
    Ok(out)
}

pub fn run(corpus: &Path, runs: usize) -> anyhow::Result<CorpusResult> {
    let caps = captures(corpus)?;
    let all: Vec<Vec<Vec<u8>>> = caps.iter().map(|c| frames(c)).collect::<Result<_, _>>()?;
    let packets: u64 = all.iter().map(|c| c.len() as u64).sum();
    let mut vf_pps = Vec::new();
    for r in 0..runs {
        progress("corpus", &format!("voipfilter on {} captures, run {}/{runs}", caps.len(), r + 1));
        let mut f = Filter::load(&Default::default())?;
        let mut ns = 0.0;
        for c in &all {
            for fr in c {
                ns += f.time(fr, 1)?.1;
            }
        }
        vf_pps.push(packets as f64 / (ns / 1e9));
    }
    progress("corpus", "voipfilter eval (recall)");
    let mut replayer = Replayer::new(None)?;
    let (e, _) = replay::cli::evaluate(&mut replayer, &caps, &corpus.join("labels"), &[], Progress::disabled())?;
    let mut res = CorpusResult {
        captures: caps.len(),
        packets,
        vf_pps,
        vf_block_flows: e.total.block_flows,
        vf_blocked_flows: e.total.blocked_flows,
        vf_fp_flows: e.total.fp_flows,
        ndpi_version: String::new(),
        ndpi_pps: vec![],
        ndpi_block_flows: 0,
        ndpi_caught: 0,
        ndpi_error: None,
    };
    if let Err(err) = ndpi(corpus, &caps, runs, &mut res) {
        res.ndpi_error = Some(format!("{err:#}"));
    }
    Ok(res)
}

fn ndpi(corpus: &Path, caps: &[PathBuf], runs: usize, res: &mut CorpusResult) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("vfbench-ndpi-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> anyhow::Result<()> {
        let playlist = dir.join("playlist.txt");
        let list: Vec<String> = caps.iter().map(|c| c.display().to_string()).collect();
        std::fs::write(&playlist, list.join("\n") + "\n")?;
        let csv = dir.join("flows.csv");
        for r in 0..runs {
            progress("corpus", &format!("ndpiReader on the same captures, run {}/{runs}", r + 1));
            let out = sh(Command::new("ndpiReader").arg("-i").arg(&playlist).arg("-C").arg(&csv)).context("ndpiReader (cargo xtask setup installs libndpi-bin)")?;
            if let Some(v) = out.lines().find_map(|l| l.split("Using nDPI (").nth(1)) {
                res.ndpi_version = v.split(')').next().unwrap_or("").to_string();
            }
            let line = out.lines().find(|l| l.contains("nDPI throughput:")).context("no `nDPI throughput` line in ndpiReader's output")?;
            let v: Vec<&str> = line.split_whitespace().collect();
            // "nDPI throughput: 195.45 K pps / 478.08 Mb/sec"
            let n: f64 = v.get(2).and_then(|s| s.parse().ok()).context("ndpi throughput")?;
            let mult = match v.get(3).copied() {
                Some("K") => 1e3,
                Some("M") => 1e6,
                Some("G") => 1e9,
                _ => 1.0,
            };
            res.ndpi_pps.push(n * mult);
        }
        // Recall against the labels.
        let text = std::fs::read_to_string(&csv)?;
        let mut header: Vec<&str> = vec![];
        let mut ndpi_flows: HashMap<(String, String, String), String> = HashMap::new();
        for line in text.lines() {
            if let Some(h) = line.strip_prefix('#') {
                header = h.split(',').collect();
                continue;
            }
            let f: Vec<&str> = line.split(',').collect();
            let col = |name: &str| header.iter().position(|h| *h == name).and_then(|i| f.get(i)).copied().unwrap_or("");
            let ep = |ip: &str, port: &str| if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") };
            let l4 = match col("protocol") {
                "6" => "TCP",
                "17" => "UDP",
                p => p,
            };
            let (a, b) = (ep(col("src_ip"), col("src_port")), ep(col("dst_ip"), col("dst_port")));
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            ndpi_flows.insert((l4.to_string(), a, b), col("ndpi_proto").to_string());
        }
        for entry in std::fs::read_dir(corpus.join("labels"))?.flatten() {
            let text = std::fs::read_to_string(entry.path())?;
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split('\t').collect();
                if f.len() < 6 || f[5] != "block" {
                    continue;
                }
                res.ndpi_block_flows += 1;
                let (a, b) = if f[1] <= f[2] { (f[1], f[2]) } else { (f[2], f[1]) };
                if let Some(p) = ndpi_flows.get(&(f[0].to_string(), a.to_string(), b.to_string()))
                    && same_protocol(p, f[3])
                {
                    res.ndpi_caught += 1;
                }
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// nDPI names such as `STUN.WhatsAppCall`: equal, or sharing a component that is not a
/// generic transport.
fn same_protocol(a: &str, b: &str) -> bool {
    const GENERIC: [&str; 6] = ["Unknown", "TLS", "HTTP", "DNS", "QUIC", "DTLS"];
    a == b || a.split('.').any(|x| !GENERIC.contains(&x) && b.split('.').any(|y| y == x))
}
