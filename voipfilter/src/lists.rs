//! The app prefix lists in user space: the lists shipped in the binary (`lists/*.cidr` of the
//! repository), list sources (config file, `run --lists`), and the kernel's `LIST4`, `LIST6`
//! and `LISTS` maps: read back, and replaced without a moment in which no list is active.
//!
//! The file format and the scopes are in `voipfilter_common::user::lists` and `docs/lists.md`.

use std::{
    borrow::{Borrow, BorrowMut},
    collections::HashMap,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, anyhow, bail};
use aya::maps::{Array, LpmTrie, MapData, lpm_trie::Key};
use voipfilter_common::{
    App,
    flow::{CONFIG_LISTS_B, CONFIG_LISTS4, CONFIG_LISTS6, Config},
    lists::{ListEntry, ListTable, MAX_LISTS},
    maps::{LIST4_CAPACITY, LIST6_CAPACITY},
    user::lists::{HostLists, ListFile, ListSet, parse_list},
};

/// The lists shipped with voipfilter (file name, text), embedded so that the binary works from
/// any directory.
pub static BUILTIN: &[(&str, &str)] = &[
    ("discord.cidr", include_str!("../../lists/discord.cidr")),
    ("facetime.cidr", include_str!("../../lists/facetime.cidr")),
    ("google-meet.cidr", include_str!("../../lists/google-meet.cidr")),
    ("kakaotalk.cidr", include_str!("../../lists/kakaotalk.cidr")),
    ("line.cidr", include_str!("../../lists/line.cidr")),
    ("messenger.cidr", include_str!("../../lists/messenger.cidr")),
    ("teams.cidr", include_str!("../../lists/teams.cidr")),
    ("telegram.cidr", include_str!("../../lists/telegram.cidr")),
    ("viber.cidr", include_str!("../../lists/viber.cidr")),
    ("webex.cidr", include_str!("../../lists/webex.cidr")),
    ("whatsapp.cidr", include_str!("../../lists/whatsapp.cidr")),
    ("zoom.cidr", include_str!("../../lists/zoom.cidr")),
];

/// The built-in lists, parsed (a unit test checks that they parse).
pub fn builtin() -> Vec<ListFile> {
    BUILTIN
        .iter()
        .map(|(name, text)| parse_list(&format!("built-in {name}"), text).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// The built-in lists in their slots (file order).
pub fn builtin_set() -> ListSet {
    let mut set = ListSet::default();
    for l in builtin() {
        set.put(l).unwrap_or_else(|e| panic!("built-in lists: {e}"));
    }
    set
}

/// One line for logs: `zoom (85), discord (86), ...` or `none`.
pub fn summary(lists: &[ListFile]) -> String {
    if lists.is_empty() {
        return "none".into();
    }
    lists.iter().map(|l| format!("{} ({})", l.app.name(), l.prefixes())).collect::<Vec<_>>().join(", ")
}

/// Reads and parses one list file.
pub fn read_file(path: &Path) -> anyhow::Result<ListFile> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(parse_list(&path.display().to_string(), &text)?)
}

/// Where lists come from: the config's `lists` entries and `run --lists`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The lists shipped in the binary.
    Builtin,
    /// No list (`none`).
    None,
    /// A list file, or a directory: every `*.cidr` file in it, by name.
    Path(PathBuf),
}

impl Source {
    /// `builtin`, `none`, else a path (relative paths are taken from `base` when given).
    pub fn parse(s: &str, base: Option<&Path>) -> Source {
        match s {
            "builtin" => return Source::Builtin,
            "none" => return Source::None,
            _ => {}
        }
        let p = Path::new(s);
        match base {
            Some(b) if p.is_relative() => Source::Path(b.join(p)),
            _ => Source::Path(p.to_path_buf()),
        }
    }

    fn read(&self) -> anyhow::Result<Vec<ListFile>> {
        match self {
            Source::Builtin => Ok(builtin()),
            Source::None => Ok(Vec::new()),
            Source::Path(p) if p.is_dir() => {
                let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                    .map_err(|e| anyhow!("{}: {e}", p.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "cidr"))
                    .collect();
                files.sort();
                if files.is_empty() {
                    bail!("{}: no list files (*.cidr) in this directory", p.display());
                }
                files.iter().map(|f| read_file(f)).collect()
            }
            Source::Path(p) => Ok(vec![read_file(p)?]),
        }
    }
}

/// The lists of several sources, in order; a later list of the same app replaces an earlier
/// one (so `["builtin", "my-zoom.cidr"]` is the built-in lists with another Zoom list).
pub fn read_sources(sources: &[Source]) -> anyhow::Result<Vec<ListFile>> {
    let mut out: Vec<ListFile> = Vec::new();
    for s in sources {
        for l in s.read()? {
            match out.iter_mut().find(|o| o.app == l.app) {
                Some(o) => *o = l,
                None => out.push(l),
            }
        }
    }
    if out.len() > MAX_LISTS {
        bail!("{} lists, at most {MAX_LISTS} (one per app)", out.len());
    }
    Ok(out)
}

/// `set` with exactly these lists: apps not among them lose their list, the others keep their
/// slot or take a free one. A new app never takes the slot of a list removed in the same
/// change (while the entries are replaced, the table would still name the old app).
pub fn with_exactly(mut set: ListSet, lists: &[ListFile]) -> anyhow::Result<ListSet> {
    let gone: Vec<App> = set.lists().map(|(_, l)| l.app).filter(|app| !lists.iter().any(|l| l.app == *app)).collect();
    for l in lists {
        set.put(l.clone()).map_err(|e| anyhow!(e))?;
    }
    for app in gone {
        set.remove(app);
    }
    Ok(set)
}

/// What a replacement did to the tries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Entries written (new, or a new value).
    pub written: usize,
    /// Entries deleted (prefixes no list holds any more).
    pub removed: usize,
    /// Entries left as they were.
    pub kept: usize,
    /// Whether the table (`LISTS`) changed.
    pub table: bool,
}

/// The list maps, from a loaded object (`&mut MapData`) or from pins (`MapData`).
pub struct ListMaps<T> {
    pub v4: LpmTrie<T, [u8; 4], ListEntry>,
    pub v6: LpmTrie<T, [u8; 16], ListEntry>,
    /// `LISTS`: two tables, the one in use named by `CONFIG_LISTS_B` (see [`ListMaps::replace`]).
    pub table: Array<T, ListTable>,
    /// `LIST16`, the /16 bitmap in front of `v4`.
    pub v16: Array<T, u64>,
}

impl<T: Borrow<MapData>> ListMaps<T> {
    /// Every entry and the table in use, as the kernel holds them (`flags`: CONFIG's, which
    /// name the table in use).
    pub fn read(&self, flags: u32) -> anyhow::Result<HostLists> {
        let mut h = HostLists::default();
        for kv in self.v4.iter() {
            let (k, e) = kv.context("reading LIST4")?;
            h.v4.insert((k.prefix_len() as u8, k.data()), e);
        }
        for kv in self.v6.iter() {
            let (k, e) = kv.context("reading LIST6")?;
            h.v6.insert((k.prefix_len() as u8, k.data()), e);
        }
        h.table = self.table.get(&table_in_use(flags), 0).context("reading LISTS")?;
        Ok(h)
    }
}

/// The `LISTS` entry the program reads under these CONFIG flags.
pub fn table_in_use(flags: u32) -> u32 {
    u32::from(flags & CONFIG_LISTS_B != 0)
}

/// The CONFIG bits that say which tries have entries.
pub fn flags_of(h: &HostLists) -> u32 {
    (if h.v4.is_empty() { 0 } else { CONFIG_LISTS4 }) | (if h.v6.is_empty() { 0 } else { CONFIG_LISTS6 })
}

/// Sets CONFIG's list bits (`CONFIG_LISTS4`, `CONFIG_LISTS6`, `CONFIG_LISTS_B`) to `bits`, in
/// one write of the record.
fn set_list_flags<C: BorrowMut<MapData>>(config: &mut Array<C, Config>, bits: u32) -> anyhow::Result<()> {
    let c = config_of(config)?;
    let mut c = if c.inspect_limit == 0 { Config { flags: c.flags, ..Config::default() } } else { c };
    c.flags = (c.flags & !(CONFIG_LISTS4 | CONFIG_LISTS6 | CONFIG_LISTS_B)) | bits;
    config.set(0, &c, 0).context("writing CONFIG")
}

fn config_of<C: Borrow<MapData>>(config: &Array<C, Config>) -> anyhow::Result<Config> {
    config.get(&0, 0).context("reading CONFIG")
}

fn write_entries<T: BorrowMut<MapData>, const N: usize>(
    trie: &mut LpmTrie<T, [u8; N], ListEntry>,
    cur: &HashMap<(u8, [u8; N]), ListEntry>,
    new: &HashMap<(u8, [u8; N]), ListEntry>,
    name: &str,
    capacity: u32,
    c: &mut Change,
) -> anyhow::Result<()> {
    // Longest prefixes first. Then at any moment an address's longest match is either an
    // entry already written, and then no longer new entry is still missing, so it is the
    // address's longest match among the new entries (its new lists); or an entry not yet
    // rewritten, which is its longest match among the old ones (its old lists).
    let mut keys: Vec<_> = new.iter().collect();
    keys.sort_by(|a, b| b.0.0.cmp(&a.0.0).then(a.0.1.cmp(&b.0.1)));
    for (&(len, addr), e) in keys {
        if cur.get(&(len, addr)) == Some(e) {
            c.kept += 1;
            continue;
        }
        trie.insert(&Key::new(len as u32, addr), e, 0)
            .with_context(|| format!("writing {name} (full? it holds {capacity} prefixes, old and new together while a list is replaced)"))?;
        c.written += 1;
    }
    Ok(())
}

fn remove_entries<T: BorrowMut<MapData>, const N: usize>(
    trie: &mut LpmTrie<T, [u8; N], ListEntry>,
    cur: &HashMap<(u8, [u8; N]), ListEntry>,
    new: &HashMap<(u8, [u8; N]), ListEntry>,
    name: &str,
    c: &mut Change,
) -> anyhow::Result<()> {
    for &(len, addr) in cur.keys() {
        if !new.contains_key(&(len, addr)) {
            match trie.remove(&Key::new(len as u32, addr)) {
                Ok(()) => c.removed += 1,
                Err(e) if crate::maps::is_not_found(&e) => {}
                Err(e) => return Err(e).with_context(|| format!("removing an entry of {name}")),
            }
        }
    }
    Ok(())
}

impl<T: BorrowMut<MapData>> ListMaps<T> {
    /// Makes the kernel hold `new` (entries and table), with no moment in which an address
    /// that both the old and the new lists contain matches no list:
    ///
    /// 1. every entry of `new` that is missing or different is written (longest prefixes
    ///    first), so that from then on the longest match of any address is either a new entry
    ///    (with the new lists) or an old entry about to go (with the old lists);
    /// 2. the table (`LISTS`: app, scope, ports, version per slot) is written into the entry the
    ///    program does not read, then one CONFIG write makes it the one in use
    ///    (`CONFIG_LISTS_B`) and turns on the bits of a trie that gains its first entries (a
    ///    program already reading the old table finishes with it intact: the next replacement,
    ///    which writes that entry again, comes long after);
    /// 3. the entries no list holds any more are deleted, and the CONFIG bits are made exact.
    ///
    /// The counters (`APP_STATS`) and flows already decided are not touched.
    pub fn replace<C: BorrowMut<MapData>>(&mut self, config: &mut Array<C, Config>, new: &HostLists) -> anyhow::Result<Change> {
        let flags = config_of(config)?.flags;
        let cur = self.read(flags)?;
        let mut in_use = flags & CONFIG_LISTS_B;
        let mut c = Change::default();
        // The bitmap only lets lookups through: first the bits of both, at the end the new ones.
        // (The kernel's words are those of the entries just read: `replace` is their only writer.)
        let (old16, new16) = (cur.slash16(), new.slash16());
        let both: Vec<u64> = old16.iter().zip(&new16).map(|(a, b)| a | b).collect();
        self.write16(&old16, &both)?;
        write_entries(&mut self.v4, &cur.v4, &new.v4, "LIST4", LIST4_CAPACITY, &mut c)?;
        write_entries(&mut self.v6, &cur.v6, &new.v6, "LIST6", LIST6_CAPACITY, &mut c)?;
        if cur.table != new.table {
            let other = in_use ^ CONFIG_LISTS_B;
            self.table.set(table_in_use(other), &new.table, 0).context("writing LISTS")?;
            in_use = other;
            c.table = true;
        }
        set_list_flags(config, flags_of(&cur) | flags_of(new) | in_use)?;
        remove_entries(&mut self.v4, &cur.v4, &new.v4, "LIST4", &mut c)?;
        remove_entries(&mut self.v6, &cur.v6, &new.v6, "LIST6", &mut c)?;
        set_list_flags(config, flags_of(new) | in_use)?;
        self.write16(&both, &new16)?;
        Ok(c)
    }

    /// Rewrites the words of `LIST16` that go from `from` (what it holds) to something else in
    /// `want`: one syscall per changed word, none to read.
    fn write16(&mut self, from: &[u64], want: &[u64]) -> anyhow::Result<()> {
        for (i, (old, w)) in from.iter().zip(want).enumerate() {
            if old != w {
                self.v16.set(i as u32, w, 0).context("writing LIST16")?;
            }
        }
        Ok(())
    }
}

/// `voipfilter lists ...`.
pub fn cli(dir: &Path, cmd: crate::cli::ListsCommand) -> anyhow::Result<()> {
    use crate::cli::ListsCommand;
    match cmd {
        ListsCommand::Show { app, json } => {
            let app = app.map(|a| crate::rulespec::parse_app(&a)).transpose()?;
            let maps = crate::cli::open(dir)?;
            let cfg = maps.config()?;
            show(&maps.list_set()?, app, json, cfg.flags)
        }
        ListsCommand::Load { files } => {
            // Every file is read before the instance is touched: a bad file changes nothing.
            let mut new: Vec<(PathBuf, ListFile)> = Vec::new();
            for f in files {
                let l = read_file(&f)?;
                if let Some((other, _)) = new.iter().find(|(_, o)| o.app == l.app) {
                    bail!("{} and {} are both lists of {}: load one list per app", other.display(), f.display(), l.app.name());
                }
                new.push((f, l));
            }
            let mut maps = crate::cli::open(dir)?;
            let cur = maps.list_set()?;
            let mut set = cur.clone();
            for (f, l) in &new {
                set.put(l.clone()).map_err(|e| anyhow!("{}: {e}", f.display()))?;
            }
            let change = maps.set_lists(&set)?;
            for (f, l) in &new {
                let slot = set.slot_of(l.app).unwrap_or(0);
                let what = match cur.slots[slot].as_ref() {
                    Some(old) => {
                        let (added, removed) = diff(old, l);
                        format!("replaced version {} by {} in slot {slot} ({} prefixes: {added} added, {removed} removed)", old.version, l.version, l.prefixes())
                    }
                    None => format!("added in slot {slot} ({} prefixes)", l.prefixes()),
                };
                println!("{}: {}: {what}; scope {}", f.display(), l.app.name(), l.scope_text());
            }
            log::debug!("{change:?}");
            Ok(())
        }
        ListsCommand::Del { app } => {
            let app = crate::rulespec::parse_app(&app)?;
            let mut maps = crate::cli::open(dir)?;
            let mut set = maps.list_set()?;
            let Some(slot) = set.remove(app) else {
                bail!("{} has no list (see `voipfilter lists show`)", app.name());
            };
            maps.set_lists(&set)?;
            println!("removed the list of {} (slot {slot})", app.name());
            Ok(())
        }
    }
}

/// Prefixes of `new` not in `old`, and of `old` not in `new`.
fn diff(old: &ListFile, new: &ListFile) -> (usize, usize) {
    let o: std::collections::HashSet<String> = old.prefix_strings().into_iter().collect();
    let n: std::collections::HashSet<String> = new.prefix_strings().into_iter().collect();
    (n.difference(&o).count(), o.difference(&n).count())
}

fn show(set: &ListSet, app: Option<App>, json: bool, flags: u32) -> anyhow::Result<()> {
    use voipfilter_common::user::lists::ports_text;
    let rows: Vec<(usize, &ListFile)> = set.lists().filter(|(_, l)| app.is_none_or(|a| l.app == a)).collect();
    if let Some(a) = app
        && rows.is_empty()
    {
        bail!("{} has no list (see `voipfilter lists show`)", a.name());
    }
    let kind = |l: &ListFile| if l.scope == voipfilter_common::lists::SCOPE_SIGNAL { "signal" } else { "udp" };
    let ports = |l: &ListFile| if l.ranges.is_empty() { "any".to_string() } else { ports_text(&l.ranges) };
    let on = |bit: u32| flags & bit != 0;
    if json {
        let lists: Vec<_> = rows
            .iter()
            .map(|(slot, l)| {
                let mut v = serde_json::json!({
                    "slot": slot, "app": l.app.name(), "scope": kind(l), "ports": ports(l),
                    "v4": l.v4.len(), "v6": l.v6.len(), "version": l.version,
                });
                if app.is_some() {
                    v["prefixes"] = serde_json::json!(l.prefix_strings());
                }
                v
            })
            .collect();
        let v = serde_json::json!({"ipv4_lookups": on(CONFIG_LISTS4), "ipv6_lookups": on(CONFIG_LISTS6), "lists": lists});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let state = |bit: u32| if on(bit) { "on" } else { "off" };
    if app.is_none() {
        println!("Prefix lists ({}; lookups: IPv4 {}, IPv6 {}):", rows.len(), state(CONFIG_LISTS4), state(CONFIG_LISTS6));
    }
    println!("  {:<6}{:<13}{:<8}{:<34}{:>6}{:>6}  version", "slot", "app", "scope", "ports", "v4", "v6");
    for (slot, l) in &rows {
        println!("  {:<6}{:<13}{:<8}{:<34}{:>6}{:>6}  {}", slot, l.app.name(), kind(l), ports(l), l.v4.len(), l.v6.len(), l.version);
    }
    if app.is_some() {
        for (_, l) in &rows {
            println!("\nPrefixes ({}):", l.prefixes());
            for p in l.prefix_strings() {
                println!("  {p}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_lists_parse_and_match_the_directory() {
        let lists = builtin();
        assert_eq!(lists.len(), BUILTIN.len());
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lists");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".cidr"))
            .collect();
        files.sort();
        let embedded: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        assert_eq!(files, embedded, "every file of lists/ is embedded (voipfilter/src/lists.rs BUILTIN), in name order");
        for ((name, _), l) in BUILTIN.iter().zip(&lists) {
            assert_eq!(format!("{}.cidr", l.app.name()), *name, "a list file is named after its app");
        }
        // One slot per app, each list's prefixes present.
        let set = builtin_set();
        assert_eq!(set.lists().count(), lists.len());
        let h = set.entries();
        assert!(!h.v4.is_empty() && !h.v6.is_empty());
        assert_eq!(flags_of(&h), CONFIG_LISTS4 | CONFIG_LISTS6);
        // Directory and file sources read the same lists.
        let from_dir = read_sources(&[Source::Path(dir.clone())]).unwrap();
        assert_eq!(from_dir.iter().map(|l| (l.app, l.prefixes())).collect::<Vec<_>>(), lists.iter().map(|l| (l.app, l.prefixes())).collect::<Vec<_>>());
    }

    #[test]
    fn sources() {
        assert_eq!(Source::parse("builtin", None), Source::Builtin);
        assert!(read_sources(&[Source::Builtin, Source::None]).unwrap().len() == BUILTIN.len());
        assert!(read_sources(&[Source::None]).unwrap().is_empty());
        assert_eq!(Source::parse("x/zoom.cidr", Some(Path::new("/etc/voipfilter"))), Source::Path("/etc/voipfilter/x/zoom.cidr".into()));
        assert_eq!(Source::parse("/l", Some(Path::new("/etc"))), Source::Path("/l".into()));
        let dir = std::env::temp_dir().join(format!("voipfilter-lists-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let zoom = dir.join("zoom.cidr");
        std::fs::write(&zoom, "# app: zoom\n# scope: udp\n# version: 2\n# source: test\n192.0.2.0/24\n").unwrap();
        let l = read_sources(&[Source::Builtin, Source::Path(zoom.clone())]).unwrap();
        assert_eq!(l.len(), BUILTIN.len(), "the file replaces the built-in zoom list");
        let z = l.iter().find(|l| l.app == App::Zoom).unwrap();
        assert_eq!((z.version.as_str(), z.prefixes()), ("2", 1));
        std::fs::write(&zoom, "# app: zoom\n# scope: udp\n# version: 2\n# source: test\n192.0.2.1/24\n").unwrap();
        let e = read_sources(&[Source::Path(dir.clone())]).unwrap_err().to_string();
        assert_eq!(e, format!("{}:5: host bits set in '192.0.2.1/24' (the network is 192.0.2.0/24; write that, or the /32 if one host was meant)", zoom.display()));
        let e = read_sources(&[Source::Path(dir.join("nothing"))]).unwrap_err().to_string();
        assert!(e.contains("nothing: No such file"), "{e}");
        std::fs::remove_file(&zoom).unwrap();
        let e = read_sources(&[Source::Path(dir.clone())]).unwrap_err().to_string();
        assert!(e.contains("no list files"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
        // Exactly these lists: slots kept.
        let set = builtin_set();
        let zoom_slot = set.slot_of(App::Zoom).unwrap();
        let only = with_exactly(set, &[builtin().into_iter().find(|l| l.app == App::Zoom).unwrap()]).unwrap();
        assert_eq!(only.lists().map(|(s, l)| (s, l.app)).collect::<Vec<_>>(), vec![(zoom_slot, App::Zoom)]);
    }
}
