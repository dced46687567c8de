//! Typed handles on the program's maps, from a freshly loaded object or from the pins of a
//! running instance, and the operations the CLI needs on them.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use aya::{
    Ebpf,
    maps::{Array, HashMap, LpmTrie, Map, MapData, PerCpuArray, lpm_trie::Key},
};
use voipfilter_common::{
    Action, App, Reason,
    app::MAX_APPS,
    flow::{CONFIG_LISTS_B, CONFIG_LISTS4, CONFIG_LISTS6, CONFIG_PORT_RULES, CONFIG_PREFIX4_RULES, CONFIG_PREFIX6_RULES, Config, Flow, FlowKey, FlowKey4},
    maps::{self as names, LAYOUT_VERSION, META_MAGIC, Meta},
    reason::NUM_REASONS,
    rules::{PortKey, Rule},
    stats::{APP_STATS_LEN, Counter, app_stat_index},
    user::lists::ListSet,
};

use crate::{
    config::Settings,
    lists::{Change, ListMaps},
    policy::Policy,
    rulespec::{PortRule, Prefix, PrefixRule},
};

pub struct Maps {
    pub port_rules: HashMap<MapData, PortKey, Rule>,
    pub prefix4: LpmTrie<MapData, [u8; 4], Rule>,
    pub prefix6: LpmTrie<MapData, [u8; 16], Rule>,
    pub app_stats: PerCpuArray<MapData, Counter>,
    pub reason_stats: PerCpuArray<MapData, u64>,
    pub meta: Array<MapData, Meta>,
    pub policy: Array<MapData, u8>,
    pub config: Array<MapData, Config>,
    /// IPv6 flows (`FLOWS`).
    pub flows: HashMap<MapData, FlowKey, Flow>,
    /// IPv4 flows (`FLOWS4`, 16-byte keys).
    pub flows4: HashMap<MapData, FlowKey4, Flow>,
    /// The app prefix lists (`LIST4`, `LIST6`, `LISTS`).
    pub lists: ListMaps<MapData>,
}

/// Counters summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// (app id, action) -> counter, only non-zero ones, sorted by app then action.
    pub apps: Vec<(u16, Action, Counter)>,
    /// Indexed by `Reason as usize`.
    pub reasons: Vec<u64>,
}

impl Snapshot {
    pub fn by_action(&self, action: Action) -> Counter {
        let mut c = Counter::default();
        for (_, a, v) in &self.apps {
            if *a == action {
                c.add(v);
            }
        }
        c
    }

    pub fn total(&self) -> Counter {
        let mut c = Counter::default();
        for (_, _, v) in &self.apps {
            c.add(v);
        }
        c
    }

    pub fn get(&self, app: App, action: Action) -> Counter {
        self.apps
            .iter()
            .find(|(id, a, _)| *id == app as u16 && *a == action)
            .map(|x| x.2)
            .unwrap_or_default()
    }

    pub fn reason(&self, r: Reason) -> u64 {
        self.reasons.get(r as usize).copied().unwrap_or(0)
    }
}

fn take(ebpf: &mut Ebpf, name: &str) -> anyhow::Result<Map> {
    ebpf.take_map(name).with_context(|| format!("the object has no map {name}"))
}

fn pinned(dir: &Path, name: &str) -> anyhow::Result<Map> {
    let path = dir.join(name);
    let data = MapData::from_pin(&path).with_context(|| {
        format!("opening {}; is `voipfilter run` running with this pin directory?", path.display())
    })?;
    Map::from_map_data(data).with_context(|| format!("{}: unexpected map type", path.display()))
}

impl Maps {
    pub fn from_ebpf(ebpf: &mut Ebpf) -> anyhow::Result<Maps> {
        Self::build(|name| take(ebpf, name))
    }

    /// Opens the maps pinned by a running instance under `dir`, checking their layout version.
    pub fn from_pins(dir: &Path) -> anyhow::Result<Maps> {
        if !dir.join(names::META).exists() {
            bail!(
                "no voipfilter instance found: nothing pinned at {} (is `voipfilter run` running? \
                 use --pin-dir if it was started with another pin directory)",
                dir.display()
            );
        }
        let maps = Self::build(|name| pinned(dir, name))?;
        let meta = maps.meta()?;
        if meta.magic != META_MAGIC || meta.layout != LAYOUT_VERSION {
            bail!(
                "the maps at {} have layout {} but this voipfilter uses layout {LAYOUT_VERSION}; \
                 restart the daemon with this version",
                dir.display(),
                meta.layout
            );
        }
        Ok(maps)
    }

    fn build(mut get: impl FnMut(&str) -> anyhow::Result<Map>) -> anyhow::Result<Maps> {
        macro_rules! typed {
            ($name:expr) => {
                get($name)?.try_into().with_context(|| format!("map {} has an unexpected type", $name))?
            };
        }
        Ok(Maps {
            port_rules: typed!(names::PORT_RULES),
            prefix4: typed!(names::PREFIX4_RULES),
            prefix6: typed!(names::PREFIX6_RULES),
            app_stats: typed!(names::APP_STATS),
            reason_stats: typed!(names::REASON_STATS),
            meta: typed!(names::META),
            policy: typed!(names::POLICY),
            config: typed!(names::CONFIG),
            flows: typed!(names::FLOWS),
            flows4: typed!(names::FLOWS4),
            lists: ListMaps { v4: typed!(names::LIST4), v6: typed!(names::LIST6), table: typed!(names::LISTS), v16: typed!(names::LIST16) },
        })
    }

    pub fn meta(&self) -> anyhow::Result<Meta> {
        self.meta.get(&0, 0).context("reading META")
    }

    pub fn set_meta(&mut self, meta: &Meta) -> anyhow::Result<()> {
        self.meta.set(0, meta, 0).context("writing META")
    }

    /// Reads every counter, summed over CPUs.
    pub fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let mut apps = Vec::new();
        for &app in App::ALL {
            for action in Action::ALL {
                let per_cpu = self
                    .app_stats
                    .get(&app_stat_index(app as u16, action), 0)
                    .context("reading APP_STATS")?;
                let mut sum = Counter::default();
                for c in per_cpu.iter() {
                    sum.add(c);
                }
                if sum.packets != 0 {
                    apps.push((app as u16, action, sum));
                }
            }
        }
        debug_assert!(app_stat_index(App::Custom as u16, Action::Monitor) < APP_STATS_LEN);
        let mut reasons = vec![0; NUM_REASONS as usize];
        for (i, slot) in reasons.iter_mut().enumerate() {
            let per_cpu = self.reason_stats.get(&(i as u32), 0).context("reading REASON_STATS")?;
            *slot = per_cpu.iter().sum();
        }
        Ok(Snapshot { apps, reasons })
    }

    /// Installs what a daemon runs with: rules, policy, engine config and exactly the lists of
    /// the settings (lists already in the kernel keep their slots); returns (port keys,
    /// prefixes) added.
    pub fn install(&mut self, s: &Settings) -> anyhow::Result<(usize, usize)> {
        let lists = crate::lists::with_exactly(self.list_set()?, &s.lists)?;
        self.set_lists(&lists)?;
        let mut n_ports = 0;
        for r in &s.rules.ports {
            n_ports += self.insert_port_rule(r)?;
        }
        for r in &s.rules.prefixes {
            self.insert_prefix_rule(r)?;
        }
        self.set_policy(&s.policy)?;
        let cfg = Config { inspect_limit: s.inspect_limit, ..self.config()? };
        self.config.set(0, &cfg, 0).context("writing CONFIG")?;
        // Once for the whole list, not once per rule (five syscalls each).
        self.sync_config()?;
        Ok((n_ports, s.rules.prefixes.len()))
    }

    /// Every app-list entry and the list table in use (the one CONFIG names), as the kernel
    /// holds them.
    pub fn list_entries(&self) -> anyhow::Result<voipfilter_common::user::lists::HostLists> {
        self.lists.read(self.config()?.flags)
    }

    /// The lists in the kernel, in their slots (without their source text).
    pub fn list_set(&self) -> anyhow::Result<voipfilter_common::user::lists::ListSet> {
        Ok(voipfilter_common::user::lists::ListSet::from_entries(&self.list_entries()?))
    }

    pub fn config(&self) -> anyhow::Result<Config> {
        let c = self.config.get(&0, 0).context("reading CONFIG")?;
        // A fresh map is all zeroes: give it the defaults.
        Ok(if c.inspect_limit == 0 { Config { flags: c.flags, ..Config::default() } } else { c })
    }

    /// Tells the program which rule tables are non-empty (it skips the lookups of empty ones).
    /// Every rule change calls it.
    pub fn sync_config(&mut self) -> anyhow::Result<()> {
        let mut flags = 0;
        if self.port_rules.keys().next().is_some() {
            flags |= CONFIG_PORT_RULES;
        }
        if self.prefix4.keys().next().is_some() {
            flags |= CONFIG_PREFIX4_RULES;
        }
        if self.prefix6.keys().next().is_some() {
            flags |= CONFIG_PREFIX6_RULES;
        }
        if self.lists.v4.keys().next().is_some() {
            flags |= CONFIG_LISTS4;
        }
        if self.lists.v6.keys().next().is_some() {
            flags |= CONFIG_LISTS6;
        }
        // Which list table is in use is not the rules' to change.
        let cur = self.config()?;
        let cfg = Config { flags: flags | (cur.flags & CONFIG_LISTS_B), ..cur };
        self.config.set(0, &cfg, 0).context("writing CONFIG")
    }

    /// Makes the kernel's lists `set`, without a gap (see [`ListMaps::replace`]); CONFIG's
    /// list bits follow.
    pub fn set_lists(&mut self, set: &ListSet) -> anyhow::Result<Change> {
        self.lists.replace(&mut self.config, &set.entries())
    }

    pub fn set_policy(&mut self, p: &Policy) -> anyhow::Result<()> {
        for (i, a) in p.bytes().iter().enumerate() {
            self.policy.set(i as u32, a, 0).context("writing POLICY")?;
        }
        Ok(())
    }

    /// The action per app id as the program sees it.
    pub fn policy(&self) -> anyhow::Result<Vec<(App, Action)>> {
        let mut v = Vec::new();
        for &app in App::ALL {
            if app == App::Unknown || app as u32 >= MAX_APPS {
                continue;
            }
            let a = self.policy.get(&(app as u32), 0).context("reading POLICY")?;
            v.push((app, Action::from_u8(a).unwrap_or(Action::Pass)));
        }
        Ok(v)
    }

    /// Up to `limit` entries of the flow tables: the IPv4 flows of `FLOWS4` (keys widened to
    /// [`FlowKey`]s), then the IPv6 flows of `FLOWS`.
    pub fn flows(&self, limit: usize) -> anyhow::Result<Vec<(FlowKey, Flow)>> {
        let mut v = Vec::new();
        for kv in self.flows4.iter().take(limit) {
            let (k, f) = kv.context("reading FLOWS4")?;
            v.push((k.widen(), f));
        }
        for kv in self.flows.iter().take(limit - v.len()) {
            v.push(kv.context("reading FLOWS")?);
        }
        Ok(v)
    }

    pub fn add_port_rule(&mut self, r: &PortRule) -> anyhow::Result<usize> {
        let n = self.insert_port_rule(r)?;
        self.sync_config()?;
        Ok(n)
    }

    /// [`Maps::add_port_rule`] without updating CONFIG.
    fn insert_port_rule(&mut self, r: &PortRule) -> anyhow::Result<usize> {
        let value = Rule::new(r.app, r.action);
        let mut n = 0;
        for key in r.keys() {
            self.port_rules.insert(&key, &value, 0).with_context(|| {
                format!("adding port rule {}/{} (table full? it holds {} rules)", proto_name(key.proto), key.port, names::PORT_RULES_CAPACITY)
            })?;
            n += 1;
        }
        Ok(n)
    }

    /// Removes the rules for these ports; returns how many existed.
    pub fn del_port_rule(&mut self, r: &PortRule) -> anyhow::Result<usize> {
        let mut n = 0;
        for key in r.keys() {
            match self.port_rules.remove(&key) {
                Ok(()) => n += 1,
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e).context("removing a port rule"),
            }
        }
        self.sync_config()?;
        Ok(n)
    }

    pub fn add_prefix_rule(&mut self, r: &PrefixRule) -> anyhow::Result<()> {
        self.insert_prefix_rule(r)?;
        self.sync_config()
    }

    /// [`Maps::add_prefix_rule`] without updating CONFIG.
    fn insert_prefix_rule(&mut self, r: &PrefixRule) -> anyhow::Result<()> {
        let value = Rule::new(r.app, r.action);
        match r.prefix {
            Prefix::V4(a, len) => self.prefix4.insert(&Key::new(len as u32, a), &value, 0),
            Prefix::V6(a, len) => self.prefix6.insert(&Key::new(len as u32, a), &value, 0),
        }
        .with_context(|| format!("adding prefix rule {} (table full?)", r.prefix))
    }

    /// Removes the rule for exactly this prefix; `false` if there was none.
    pub fn del_prefix_rule(&mut self, p: &Prefix) -> anyhow::Result<bool> {
        let r = match *p {
            Prefix::V4(a, len) => self.prefix4.remove(&Key::new(len as u32, a)),
            Prefix::V6(a, len) => self.prefix6.remove(&Key::new(len as u32, a)),
        };
        let existed = match r {
            Ok(()) => true,
            Err(e) if is_not_found(&e) => false,
            Err(e) => return Err(e).context("removing a prefix rule"),
        };
        self.sync_config()?;
        Ok(existed)
    }

    /// Every port rule, sorted by protocol and port.
    pub fn port_rules(&self) -> anyhow::Result<Vec<(PortKey, Rule)>> {
        let mut v = self.port_rules.iter().collect::<Result<Vec<_>, _>>().context("reading PORT_RULES")?;
        v.sort_by_key(|(k, _)| (k.proto, k.port));
        Ok(v)
    }

    /// Every prefix rule, IPv4 first, sorted.
    pub fn prefix_rules(&self) -> anyhow::Result<Vec<(Prefix, Rule)>> {
        let mut v = Vec::new();
        for kv in self.prefix4.iter() {
            let (k, r) = kv.context("reading PREFIX4_RULES")?;
            v.push((Prefix::V4(k.data(), k.prefix_len() as u8), r));
        }
        for kv in self.prefix6.iter() {
            let (k, r) = kv.context("reading PREFIX6_RULES")?;
            v.push((Prefix::V6(k.data(), k.prefix_len() as u8), r));
        }
        v.sort_by_key(|(p, _)| *p);
        Ok(v)
    }
}

/// Whether a map operation failed because the key was absent: aya reports a failed delete as the
/// syscall's ENOENT, not as `KeyNotFound`.
pub(crate) fn is_not_found(e: &aya::maps::MapError) -> bool {
    match e {
        aya::maps::MapError::KeyNotFound => true,
        aya::maps::MapError::SyscallError(s) => s.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}

pub fn proto_name(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        _ => "?",
    }
}

/// The pin directory: `--pin-dir`, else `$VOIPFILTER_PIN_DIR`, else the default.
pub fn pin_dir(opt: Option<&Path>) -> PathBuf {
    opt.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("VOIPFILTER_PIN_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(names::DEFAULT_PIN_DIR))
}
