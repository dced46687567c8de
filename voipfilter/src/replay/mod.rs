//! `voipfilter replay` and `voipfilter eval`: run captures through the real XDP program with
//! BPF_PROG_TEST_RUN, one packet at a time in capture order, and report or score what it did
//! to each flow.
//!
//! One program is loaded (with the verdict record on) and reused for every capture; its flow
//! state (flow table, expectations, fragments, TCP calls) is cleared between captures
//! ([`state`]) while the installed rules, policy and config stay. Per packet
//! there is exactly one syscall, the test run, whose output carries the verdict record.

pub mod cli;
pub mod eval;
pub mod flows;
pub mod labels;
pub mod link;
pub mod pcap;
pub mod progress;
pub mod report;
pub mod state;
pub mod table;

use std::{
    collections::HashMap,
    fs::File,
    io::BufReader,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use voipfilter_common::{Action, packet::ETH_HLEN};

use self::{
    flows::{Flow, Keyer},
    link::LinkError,
    pcap::{Format, Reader},
    progress::Progress,
};
use crate::{
    config,
    load::{Filter, LoadOptions},
    maps::Maps,
    config::Settings,
};

const XDP_ABORTED: u32 = 0;
const XDP_DROP: u32 = 1;

/// How many packets between progress updates.
const PROGRESS_EVERY: u64 = 4096;

/// What a replay of one capture found.
#[derive(Clone, Debug, Default)]
pub struct CaptureReplay {
    pub path: PathBuf,
    /// File name, as label files and reports refer to the capture.
    pub name: String,
    pub format: Option<Format>,
    /// Link types seen, in order of appearance.
    pub linktypes: Vec<u32>,
    /// Flows in order of their first packet.
    pub flows: Vec<Flow>,
    /// Packets read from the capture (including those that could not be run).
    pub packets: u64,
    /// Packets run through the program.
    pub run: u64,
    pub bytes: u64,
    /// Packets the program dropped (XDP_DROP or XDP_ABORTED).
    pub dropped: u64,
    pub aborted: u64,
    pub monitored: u64,
    /// Packets run that belong to no flow (not IP: ARP, LLDP...), and how many were dropped.
    pub no_flow: u64,
    pub no_flow_dropped: u64,
    /// Packets not run: shorter than their link header or than an Ethernet header.
    pub unreadable: u64,
    /// Packets the capture holds only part of (snap length).
    pub snapped: u64,
    /// Packets whose output had no verdict record.
    pub no_record: u64,
    pub elapsed: Duration,
    /// What cut the replay short: `packet N (byte X): ...` or an open error.
    pub error: Option<String>,
}

impl CaptureReplay {
    pub fn packets_per_second(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.packets as f64 / s } else { 0.0 }
    }

    pub fn dropped_flows(&self) -> usize {
        self.flows.iter().filter(|f| f.dropped > 0).count()
    }
}

/// The policy a replay installs: the daemon's (`--config FILE`, else the built-in default:
/// block every call).
pub fn policy(config: Option<&Path>) -> anyhow::Result<(Settings, String)> {
    Ok(match config {
        Some(p) => (config::load(p)?, p.display().to_string()),
        None => (Settings::default(), "built-in default (block every call)".to_string()),
    })
}

/// A loaded program with the daemon's policy, and the buffers reused for every packet.
pub struct Replayer {
    filter: Filter,
    maps: Maps,
    /// Description of the installed policy, for reports.
    pub policy: String,
    out: Vec<u8>,
    eth: Vec<u8>,
    keyer: Keyer,
}

impl Replayer {
    /// Loads the program with the verdict record on and installs the policy of `voipfilter run
    /// --config FILE` (the built-in defaults without a file).
    pub fn new(config: Option<&Path>) -> anyhow::Result<Replayer> {
        let (settings, policy) = policy(config)?;
        let mut filter = Filter::load(&LoadOptions { report_verdict: true, flows: Some(settings.flows) })?;
        let mut maps = filter.maps()?;
        maps.install(&settings).context("installing the policy")?;
        Ok(Replayer { filter, maps, policy, out: vec![0; 65_536 + 256], eth: Vec::with_capacity(65_536), keyer: Keyer::default() })
    }

    /// Replays one capture. Errors (unreadable file, corrupt capture) end up in
    /// [`CaptureReplay::error`], after the flows read before them.
    pub fn replay(&mut self, path: &Path, progress: &mut Progress, label: &str) -> CaptureReplay {
        let start = Instant::now();
        let mut c = CaptureReplay {
            path: path.to_path_buf(),
            name: path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
            ..Default::default()
        };
        if let Err(e) = self.run_capture(path, &mut c, progress, label) {
            c.error = Some(format!("{e:#}"));
        }
        c.elapsed = start.elapsed();
        c
    }

    fn run_capture(&mut self, path: &Path, c: &mut CaptureReplay, progress: &mut Progress, label: &str) -> anyhow::Result<()> {
        let cleared = state::reset(self.filter.ebpf_mut(), &mut self.maps, self.keyer.tcp_slots())
            .context("clearing the program's flow state")?;
        log::debug!("cleared state maps before {}: {cleared:?}", c.name);
        self.keyer.clear();
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut reader = Reader::new(BufReader::with_capacity(1 << 20, file))?;
        c.format = Some(reader.format());
        let mut index: HashMap<flows::FlowKey, usize> = HashMap::new();
        let Replayer { filter, out, eth, keyer, .. } = self;
        loop {
            if c.packets.is_multiple_of(PROGRESS_EVERY) {
                progress.update(label, c.packets, reader.position(), size);
            }
            let Some(rec) = reader.next()? else { break };
            let number = rec.number;
            c.packets += 1;
            c.snapped += u64::from((rec.data.len() as u64) < u64::from(rec.orig_len));
            if !c.linktypes.contains(&rec.linktype) {
                c.linktypes.push(rec.linktype);
            }
            let frame = match link::to_ethernet(rec.linktype, rec.data, eth) {
                Ok(f) if f.len() >= ETH_HLEN => f,
                // The kernel refuses frames shorter than an Ethernet header; no NIC delivers one.
                Ok(_) | Err(LinkError::Short { .. }) => {
                    c.unreadable += 1;
                    continue;
                }
                Err(e @ LinkError::Unsupported(_)) => anyhow::bail!("packet {number}: {e}"),
            };
            if out.len() < frame.len() + 256 {
                out.resize(frame.len() + 256, 0);
            }
            let (action, record) =
                filter.run_into(frame, out).with_context(|| format!("packet {number}: running the program on it"))?;
            c.run += 1;
            c.bytes += frame.len() as u64;
            let dropped = action == XDP_DROP || action == XDP_ABORTED;
            c.dropped += u64::from(dropped);
            c.aborted += u64::from(action == XDP_ABORTED);
            c.no_record += u64::from(record.is_none());
            let verdict_action = record.and_then(|r| Action::from_u8(r.action));
            c.monitored += u64::from(verdict_action == Some(Action::Monitor));
            let app = record.map_or(0, |r| r.app);
            match keyer.key(frame) {
                Some((key, src)) => {
                    let i = *index.entry(key).or_insert_with(|| {
                        c.flows.push(Flow::new(key, src, number));
                        c.flows.len() - 1
                    });
                    c.flows[i].record(number, frame.len(), dropped, app, verdict_action);
                }
                None => {
                    c.no_flow += 1;
                    c.no_flow_dropped += u64::from(dropped);
                }
            }
        }
        Ok(())
    }
}

/// Expands the command line's captures: files as given, directories to the files in them
/// (sorted by name, not recursive).
pub fn expand_captures(args: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for a in args {
        if a.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(a)
                .with_context(|| format!("listing {}", a.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            if files.is_empty() {
                anyhow::bail!("{} has no files", a.display());
            }
            v.extend(files);
        } else {
            v.push(a.clone());
        }
    }
    Ok(v)
}
