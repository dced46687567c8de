//! Section 4 (scaling: rules, flow-table fill, map memory) and section 5 (control plane).

use std::{collections::BTreeMap, time::Instant};

use voipfilter::{
    config::Settings,
    load::Filter,
    rulespec::{PortRange, PortRule, Prefix, PrefixRule, Proto},
};
use voipfilter_common::{Action, App, maps::FLOWS_CAPACITY};

use crate::{
    classes::{Class, classes},
    objects::{self, Baselines, CONF_STAMP},
    util::progress,
};

/// The classes whose cost is followed as tables grow: indexes into `classes()`.
pub const FOLLOWED: [&str; 3] = ["established UDP flow (not a call)", "RTP of a blocked call", "DNS query"];

fn followed() -> Vec<Class> {
    classes().into_iter().filter(|c| FOLLOWED.contains(&c.name)).collect()
}

fn warm(f: &mut Filter, cs: &[Class]) -> anyhow::Result<()> {
    for c in cs {
        for w in &c.warm {
            f.run(w)?;
        }
    }
    Ok(())
}

pub struct Point {
    pub x: u64,
    /// Per followed class: ns per run, per repetition.
    pub ns: Vec<Vec<f64>>,
}

pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
}

pub struct MapMem {
    pub name: String,
    pub kind: String,
    pub max_entries: u32,
    pub key: u32,
    pub value: u32,
    pub memlock: u64,
}

pub struct ScalingResult {
    pub classes: Vec<String>,
    pub rules: Vec<Series>,
    pub flows: Series,
    pub new_flow: Vec<(u64, Vec<f64>)>,
    pub memory: Vec<(String, Vec<MapMem>)>,
}

/// Ports no followed frame uses (a rule matches the source or the destination port).
fn free_ports(n: usize) -> Vec<(Proto, u16)> {
    let used = [53u16, 443, 5060, 5061, 5062, 5063, 8080, 30004, 40000, 40001, 40002, 40006];
    let mut v = Vec::with_capacity(n);
    for proto in [Proto::Udp, Proto::Tcp] {
        for p in 1..=65535u16 {
            if v.len() == n {
                return v;
            }
            if !used.contains(&p) {
                v.push((proto, p));
            }
        }
    }
    v
}

pub fn prefixes(n: usize) -> Vec<PrefixRule> {
    (0..n as u32)
        .map(|i| {
            // 10.0.0.0/8 and up: no followed frame's address (192.0.2.0/24, 198.51.100.0/24).
            let a = (0x0A00_0000u32 + i * 4).to_be_bytes();
            PrefixRule { prefix: Prefix::V4(a, if i % 2 == 0 { 32 } else { 30 }), app: App::Custom, action: Action::Drop }
        })
        .collect()
}

fn time_followed(f: &mut Filter, cs: &[Class], repeat: u32, out: &mut [Vec<f64>]) -> anyhow::Result<()> {
    for (c, o) in cs.iter().zip(out.iter_mut()) {
        o.push(f.time(&c.frame, repeat)?.1);
    }
    Ok(())
}

pub fn run(runs: usize, repeat: u32, quick: bool) -> anyhow::Result<ScalingResult> {
    let cs = followed();
    let counts: &[usize] = &[10, 1_000, 100_000];
    let mut rules = Vec::new();
    let mut memory = Vec::new();
    for kind in ["prefix", "port"] {
        let mut series = Series { name: format!("{kind} rules"), points: vec![] };
        let mut f = Filter::load(&Default::default())?;
        let mut maps = f.maps()?;
        warm(&mut f, &cs)?;
        let mut have = 0usize;
        for &n in counts {
            progress("scaling", &format!("installing {n} {kind} rules"));
            let mut s = Settings::default();
            if kind == "prefix" {
                s.rules.prefixes = prefixes(n).split_off(have);
            } else {
                s.rules.ports = free_ports(n)
                    .split_off(have)
                    .into_iter()
                    .map(|(proto, p)| PortRule { proto, ports: PortRange { first: p, last: p }, app: App::Custom, action: Action::Drop })
                    .collect();
            }
            maps.install(&s)?;
            have = n;
            let mut ns = vec![vec![]; cs.len()];
            for r in 0..runs {
                progress("scaling", &format!("{n} {kind} rules, run {}/{runs}", r + 1));
                time_followed(&mut f, &cs, repeat, &mut ns)?;
            }
            series.points.push(Point { x: n as u64, ns });
            if n == 100_000 {
                memory.push((format!("100,000 {kind} rules"), map_memory()?));
            }
        }
        rules.push(series);
    }

    // Flow table: fill with new non-call flows through bench_newflow, measure at each level.
    let mut f = Filter::load(&Default::default())?;
    let mut base = Baselines::load()?;
    warm(&mut f, &cs)?;
    memory.insert(0, ("default tables, empty".into(), map_memory()?));
    let vf_fd = {
        let p: &mut aya::programs::Xdp = f.ebpf_mut().program_mut(voipfilter_common::maps::PROGRAM).ok_or_else(|| anyhow::anyhow!("no program"))?.try_into()?;
        p.fd()?.try_clone()?
    };
    let pass_fd = base.fd(objects::PASS)?;
    let filler = classes().into_iter().next().ok_or_else(|| anyhow::anyhow!("no class"))?.frame;
    let cap = u64::from(FLOWS_CAPACITY);
    let levels: Vec<u64> = if quick { vec![1_000, 100_000, cap, cap * 3 / 2] } else { vec![1_000, 10_000, 100_000, 500_000, cap, cap * 3 / 2, cap * 2] };
    let mut flows = Series { name: "flows in the table".into(), points: vec![] };
    let mut new_flow = Vec::new();
    let mut inserted = 0u64;
    let probe = 10_000u32;
    for &level in &levels {
        progress("scaling", &format!("filling the flow table to {level} flows"));
        base.set_conf(CONF_STAMP, 26)?;
        base.set_next(&vf_fd)?;
        while inserted < level {
            let n = (level - inserted).min(1 << 20) as u32;
            base.time(objects::NEWFLOW, &filler, n)?;
            inserted += u64::from(n);
        }
        let mut ns = vec![vec![]; cs.len()];
        let mut nf = Vec::new();
        for r in 0..runs {
            progress("scaling", &format!("{level} flows, run {}/{runs}", r + 1));
            warm(&mut f, &cs)?;
            time_followed(&mut f, &cs, repeat, &mut ns)?;
            base.set_next(&pass_fd)?;
            let (_, wrap) = base.time(objects::NEWFLOW, &filler, probe)?;
            base.set_next(&vf_fd)?;
            let (_, full) = base.time(objects::NEWFLOW, &filler, probe)?;
            inserted += u64::from(probe);
            let (_, empty) = base.time(objects::PASS, &filler, repeat)?;
            nf.push(full - wrap + empty);
        }
        base.set_conf(CONF_STAMP, 0)?;
        flows.points.push(Point { x: level, ns });
        new_flow.push((level, nf));
    }
    memory.push((format!("{} flows inserted", inserted), map_memory()?));
    Ok(ScalingResult { classes: cs.iter().map(|c| c.name.to_string()).collect(), rules, flows, new_flow, memory })
}

/// Every BPF map this process holds, with the kernel's `memlock` (fdinfo).
pub fn map_memory() -> anyhow::Result<Vec<MapMem>> {
    let mut names = BTreeMap::new();
    for m in aya::maps::loaded_maps().flatten() {
        names.insert(m.id(), (m.name_as_str().unwrap_or("?").to_string(), m.map_type().map(|t| format!("{t:?}")).unwrap_or_default()));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc/self/fdinfo")?.flatten() {
        let Ok(text) = std::fs::read_to_string(e.path()) else { continue };
        let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k).map(|r| r.trim().to_string()));
        let (Some(id), Some(memlock)) = (field("map_id:"), field("memlock:")) else { continue };
        let id: u32 = id.parse().unwrap_or(0);
        if !seen.insert(id) {
            continue;
        }
        let (name, kind) = names.get(&id).cloned().unwrap_or_default();
        // voipfilter's own maps (the kernel truncates names to 15 bytes).
        if !voipfilter_common::maps::ALL.iter().any(|n| n.starts_with(name.as_str()) && !name.is_empty()) {
            continue;
        }
        v.push(MapMem {
            name,
            kind,
            max_entries: field("max_entries:").and_then(|s| s.parse().ok()).unwrap_or(0),
            key: field("key_size:").and_then(|s| s.parse().ok()).unwrap_or(0),
            value: field("value_size:").and_then(|s| s.parse().ok()).unwrap_or(0),
            memlock: memlock.parse().unwrap_or(0),
        });
    }
    v.sort_by(|a, b| b.memlock.cmp(&a.memlock));
    Ok(v)
}

pub struct ControlResult {
    pub load_ms: Vec<f64>,
    pub install_100k_prefix_ms: Vec<f64>,
    pub rule_change_us: Vec<f64>,
    pub rule_change_effective: bool,
    pub policy_change_us: Vec<f64>,
    pub policy_change_effective: bool,
}

/// Section 5.
pub fn control(runs: usize) -> anyhow::Result<ControlResult> {
    let mut r = ControlResult {
        load_ms: vec![],
        install_100k_prefix_ms: vec![],
        rule_change_us: vec![],
        rule_change_effective: true,
        policy_change_us: vec![],
        policy_change_effective: true,
    };
    let rules = prefixes(100_000);
    let frame = classes().into_iter().next().ok_or_else(|| anyhow::anyhow!("no class"))?.frame;
    for i in 0..runs {
        progress("control", &format!("load, install 100k prefix rules, rule change: run {}/{runs}", i + 1));
        let t = Instant::now();
        let mut f = Filter::load(&Default::default())?;
        r.load_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let mut maps = f.maps()?;
        let mut s = Settings::default();
        s.rules.prefixes = rules.clone();
        let t = Instant::now();
        maps.install(&s)?;
        r.install_100k_prefix_ms.push(t.elapsed().as_secs_f64() * 1e3);
        // A rule change: the established flow passes, a drop rule on its port is added, and
        // the very next packet must be dropped.
        for _ in 0..16 {
            f.run(&frame)?;
        }
        let before = f.run(&frame)?.0;
        let rule = PortRule { proto: Proto::Udp, ports: PortRange { first: 8080, last: 8080 }, app: App::Custom, action: Action::Drop };
        let t = Instant::now();
        maps.add_port_rule(&rule)?;
        let after = f.run(&frame)?.0;
        r.rule_change_us.push(t.elapsed().as_secs_f64() * 1e6);
        r.rule_change_effective &= before == 2 && after == 1;
        // A policy change: SIP to pass, on a SIP flow already decided (dropped).
        let sip = classes().into_iter().find(|c| c.name.starts_with("SIP on an established flow")).ok_or_else(|| anyhow::anyhow!("no SIP class"))?;
        for w in &sip.warm {
            f.run(w)?;
        }
        let sip_before = f.run(&sip.frame)?.0;
        let mut p = voipfilter::policy::Policy::default();
        p.set(voipfilter::policy::Target::App(App::Sip), Action::Pass);
        let t = Instant::now();
        maps.set_policy(&p)?;
        let after_policy = f.run(&sip.frame)?.0;
        r.policy_change_us.push(t.elapsed().as_secs_f64() * 1e6);
        r.policy_change_effective &= sip_before == 1 && after_policy == 2;
    }
    Ok(r)
}
