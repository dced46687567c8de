//! The prefix lists on the host: list files (parsing, with errors that name the file and line),
//! sets of lists in their slots, the entries user space writes into the kernel's `LIST4`/`LIST6`
//! LPM tries and `LISTS` table, and the same lookups as the kernel on them (engine tests, replay
//! checks).
//!
//! # List files
//!
//! One app per file, UTF-8 text, one CIDR a line (IPv4 or IPv6; a bare address is a /32 or
//! /128), `#` starts a comment (also after a prefix). The header is the comment block before the
//! first prefix; four of its lines are read:
//!
//! ```text
//! # app: zoom                                   a voipfilter app name (`voipfilter apps`)
//! # scope: udp ports 8801-8810,3478 signal      where a prefix counts; see below
//! # version: 2026-11-28                         date, or date.rev (at most 32 bytes)
//! # source: https://...                         where the prefixes come from (repeatable)
//! ```
//!
//! Scope: `udp` (always: a prefix never speaks for TCP), then optionally `ports P,P-P,...`
//! (at most [`MAX_RANGES`] ranges; one of the flow's ports must be in them) and `signal`
//! (the prefix only names the app of a call that another detector found: STUN, TURN, RTP,
//! DTLS). Other header comments are free text. A prefix with host bits set (`10.1.2.3/8`) is an
//! error: it is most likely a typo, and the message names the prefix it would have been.
//! The same prefix twice in one file counts once.

use std::{
    collections::HashMap,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use crate::{
    App,
    lists::{ListEntry, ListInfo, ListTable, MAX_LISTS, MAX_RANGES, PortRange, SCOPE_NONE, SCOPE_SIGNAL, SCOPE_UDP, VERSION_LEN},
    user::rules::mask,
};

/// Prefix entries (as user space writes them into the tries) and the list table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostLists {
    /// (prefix length, masked address) -> entry
    pub v4: HashMap<(u8, [u8; 4]), ListEntry>,
    pub v6: HashMap<(u8, [u8; 16]), ListEntry>,
    pub table: ListTable,
}

fn longest<const N: usize>(map: &HashMap<(u8, [u8; N]), ListEntry>, addr: [u8; N]) -> Option<ListEntry> {
    (0..=(N * 8) as u8).rev().find_map(|len| map.get(&(len, mask(addr, len))).copied())
}

impl HostLists {
    /// The entry of the longest matching prefix of an address (IPv4 in the first 4 bytes).
    pub fn entry(&self, addr: &[u8; 16], ipv6: bool) -> Option<ListEntry> {
        if ipv6 {
            longest(&self.v6, *addr)
        } else {
            longest(&self.v4, [addr[0], addr[1], addr[2], addr[3]])
        }
    }

    /// `LIST16`: the bit of every /16 that an IPv4 entry intersects (a superset of the
    /// addresses with a match).
    pub fn slash16(&self) -> Vec<u64> {
        let mut words = vec![0u64; crate::maps::LIST16_WORDS as usize];
        for &(len, a) in self.v4.keys() {
            let base = ((a[0] as u32) << 8) | a[1] as u32;
            let span = if len >= 16 { 1 } else { 1u32 << (16 - len) };
            for n in base..base + span {
                let (w, bit) = crate::lists::slash16((n >> 8) as u8, n as u8);
                words[w as usize] |= bit;
            }
        }
        words
    }

    /// `covering` of an address's longest match: the lists containing it (0 when none).
    pub fn mask(&self, addr: &[u8; 16], ipv6: bool) -> u32 {
        self.entry(addr, ipv6).map_or(0, |e| e.covering)
    }

    /// The slots of every list containing an address (`covering` of its longest match).
    pub fn slots_containing(&self, addr: IpAddr) -> Vec<usize> {
        let m = match addr {
            IpAddr::V4(a) => {
                let mut b = [0; 16];
                b[..4].copy_from_slice(&a.octets());
                self.mask(&b, false)
            }
            IpAddr::V6(a) => self.mask(&a.octets(), true),
        };
        (0..MAX_LISTS).filter(|i| m & (1 << i) != 0).collect()
    }
}

/// One app's list, as read from a file (or back from the kernel, where `source` is empty and
/// `version` is cut to [`VERSION_LEN`] bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListFile {
    pub app: App,
    /// [`SCOPE_UDP`] or [`SCOPE_SIGNAL`].
    pub scope: u8,
    /// Port ranges (empty: any port).
    pub ranges: Vec<PortRange>,
    pub version: String,
    /// The `# source:` lines, joined with "; ".
    pub source: String,
    /// (address, prefix length), host bits clear, in file order, no duplicates.
    pub v4: Vec<([u8; 4], u8)>,
    pub v6: Vec<([u8; 16], u8)>,
}

/// A list file that could not be read: `file:line: message` (line 0: the whole file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 { write!(f, "{}: {}", self.file, self.msg) } else { write!(f, "{}:{}: {}", self.file, self.line, self.msg) }
    }
}

impl std::error::Error for ParseError {}

/// The scope as a header writes it: `udp`, `udp ports 3478,19302-19309 signal`.
pub fn scope_text(scope: u8, ranges: &[PortRange]) -> String {
    let mut s = String::from(match scope {
        SCOPE_UDP | SCOPE_SIGNAL => "udp",
        _ => "none",
    });
    if !ranges.is_empty() {
        s.push_str(" ports ");
        s.push_str(&ports_text(ranges));
    }
    if scope == SCOPE_SIGNAL {
        s.push_str(" signal");
    }
    s
}

/// `3478,19302-19309`; empty for no ranges.
pub fn ports_text(ranges: &[PortRange]) -> String {
    ranges
        .iter()
        .map(|r| if r.lo == r.hi { r.lo.to_string() } else { format!("{}-{}", r.lo, r.hi) })
        .collect::<Vec<_>>()
        .join(",")
}

const SCOPE_SYNTAX: &str = "expected `udp [ports P,P-P,...] [signal]`";

/// Parses a scope: `udp`, then `ports LIST` and/or `signal` in any order.
pub fn parse_scope(s: &str) -> Result<(u8, Vec<PortRange>), String> {
    let mut words = s.split_whitespace();
    match words.next() {
        Some(w) if w.eq_ignore_ascii_case("udp") => {}
        Some(w) if w.eq_ignore_ascii_case("tcp") || w.eq_ignore_ascii_case("both") => {
            return Err(format!("bad scope '{s}': a prefix list only ever applies to UDP (it must never block TCP chat or HTTPS); {SCOPE_SYNTAX}"));
        }
        _ => return Err(format!("bad scope '{s}': {SCOPE_SYNTAX}")),
    }
    let (mut signal, mut ranges) = (false, None);
    while let Some(w) = words.next() {
        if w.eq_ignore_ascii_case("signal") && !signal {
            signal = true;
        } else if w.eq_ignore_ascii_case("ports") && ranges.is_none() {
            let list = words.next().ok_or_else(|| format!("bad scope '{s}': `ports` needs a list such as 3478,50000-50059"))?;
            ranges = Some(parse_ports(list).map_err(|e| format!("bad scope '{s}': {e}"))?);
        } else {
            return Err(format!("bad scope '{s}': unexpected '{w}'; {SCOPE_SYNTAX}"));
        }
    }
    Ok((if signal { SCOPE_SIGNAL } else { SCOPE_UDP }, ranges.unwrap_or_default()))
}

fn parse_ports(list: &str) -> Result<Vec<PortRange>, String> {
    let one = |p: &str| -> Result<u16, String> {
        match p.parse::<u32>() {
            Ok(v) if (1..=65535).contains(&v) => Ok(v as u16),
            _ => Err(format!("bad port '{p}': expected a number from 1 to 65535")),
        }
    };
    let mut v = Vec::new();
    for item in list.split(',') {
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (one(a)?, one(b)?),
            None => (one(item)?, one(item)?),
        };
        if lo > hi {
            return Err(format!("bad port range '{item}': the first port is above the last"));
        }
        v.push(PortRange { lo, hi });
    }
    if v.len() > MAX_RANGES {
        return Err(format!("too many port ranges ({}; at most {MAX_RANGES})", v.len()));
    }
    Ok(v)
}

/// A prefix of a list file: `Ok((addr, len))` with host bits clear, or a message.
pub fn parse_prefix(s: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| format!("bad CIDR '{s}': '{addr}' is not an IPv4 or IPv6 address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(v) if v <= max && !l.starts_with('+') => v,
            _ => return Err(format!("bad CIDR '{s}': the length must be 0 to {max}")),
        },
    };
    let masked = match ip {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(mask(a.octets(), len))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(mask(a.octets(), len))),
    };
    if masked != ip {
        return Err(format!("host bits set in '{s}' (the network is {masked}/{len}; write that, or the /{max} if one host was meant)"));
    }
    Ok((ip, len))
}

/// Parses a list file's text; `file` names it in errors.
pub fn parse_list(file: &str, text: &str) -> Result<ListFile, ParseError> {
    let err = |line: usize, msg: String| ParseError { file: file.to_string(), line, msg };
    let (mut app, mut scope, mut version, mut sources) = (None, None, None, Vec::new());
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    let (mut seen4, mut seen6) = (std::collections::HashSet::new(), std::collections::HashSet::new());
    let mut in_header = true;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if let Some(comment) = line.strip_prefix('#') {
            if !in_header {
                continue;
            }
            let Some((key, value)) = comment.split_once(':') else { continue };
            let value = value.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "app" => {
                    if app.is_some() {
                        return Err(err(n, "a second `# app:` line".into()));
                    }
                    let a = App::from_name(value).filter(|a| *a != App::Unknown).ok_or_else(|| {
                        let names: Vec<_> = App::ALL.iter().filter(|a| **a != App::Unknown).map(|a| a.name()).collect();
                        err(n, format!("unknown app '{value}': expected one of {}", names.join(", ")))
                    })?;
                    app = Some(a);
                }
                "scope" => {
                    if scope.is_some() {
                        return Err(err(n, "a second `# scope:` line".into()));
                    }
                    scope = Some(parse_scope(value).map_err(|m| err(n, m))?);
                }
                "version" => {
                    if version.is_some() {
                        return Err(err(n, "a second `# version:` line".into()));
                    }
                    if value.is_empty() || value.len() > VERSION_LEN || value.contains(char::is_whitespace) {
                        return Err(err(n, format!("bad version '{value}': one word of 1 to {VERSION_LEN} bytes, e.g. 2026-11-28 or 2026-11-28.2")));
                    }
                    version = Some(value.to_string());
                }
                "source" if !value.is_empty() => sources.push(value.to_string()),
                _ => {}
            }
            continue;
        }
        let cidr = line.split('#').next().unwrap_or("").trim();
        if cidr.is_empty() {
            continue;
        }
        in_header = false;
        match parse_prefix(cidr).map_err(|m| err(n, m))? {
            (IpAddr::V4(a), len) => {
                if seen4.insert((a.octets(), len)) {
                    v4.push((a.octets(), len));
                }
            }
            (IpAddr::V6(a), len) => {
                if seen6.insert((a.octets(), len)) {
                    v6.push((a.octets(), len));
                }
            }
        }
    }
    let missing = |what: &str| err(0, format!("the header has no `# {what}:` line (see docs/lists.md)"));
    let app = app.ok_or_else(|| missing("app"))?;
    let (scope, ranges) = scope.ok_or_else(|| missing("scope"))?;
    let version = version.ok_or_else(|| missing("version"))?;
    if sources.is_empty() {
        return Err(missing("source"));
    }
    if v4.is_empty() && v6.is_empty() {
        return Err(err(0, "no prefixes".into()));
    }
    Ok(ListFile { app, scope, ranges, version, source: sources.join("; "), v4, v6 })
}

impl ListFile {
    pub fn prefixes(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn scope_text(&self) -> String {
        scope_text(self.scope, &self.ranges)
    }

    /// The prefixes as text, IPv4 first.
    pub fn prefix_strings(&self) -> Vec<String> {
        let v4 = self.v4.iter().map(|(a, l)| format!("{}/{l}", Ipv4Addr::from(*a)));
        let v6 = self.v6.iter().map(|(a, l)| format!("{}/{l}", Ipv6Addr::from(*a)));
        v4.chain(v6).collect()
    }

    /// The slot's entry of the kernel table.
    pub fn info(&self) -> ListInfo {
        let mut info = ListInfo {
            app: self.app as u8,
            scope: self.scope,
            nranges: self.ranges.len().min(MAX_RANGES) as u8,
            prefixes: self.prefixes() as u32,
            ..Default::default()
        };
        for (slot, r) in info.ranges.iter_mut().zip(&self.ranges) {
            *slot = *r;
        }
        let v = self.version.as_bytes();
        let n = v.len().min(VERSION_LEN);
        info.version[..n].copy_from_slice(&v[..n]);
        info
    }
}

/// The version text of a table slot.
pub fn version_text(info: &ListInfo) -> String {
    let end = info.version.iter().position(|&b| b == 0).unwrap_or(VERSION_LEN);
    String::from_utf8_lossy(&info.version[..end]).into_owned()
}

/// Lists in their slots: one slot per app; a list that replaces another of its app keeps the
/// slot, a new app takes the lowest free one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListSet {
    pub slots: [Option<ListFile>; MAX_LISTS],
}

impl ListSet {
    /// Puts `list` in its app's slot (replacing the app's list), else in the lowest free slot;
    /// returns the slot.
    pub fn put(&mut self, list: ListFile) -> Result<usize, String> {
        let slot = self
            .slot_of(list.app)
            .or_else(|| self.slots.iter().position(Option::is_none))
            .ok_or_else(|| format!("no free list slot for {}: at most {MAX_LISTS} lists (one per app)", list.app.name()))?;
        self.slots[slot] = Some(list);
        Ok(slot)
    }

    /// Removes the app's list; returns its slot.
    pub fn remove(&mut self, app: App) -> Option<usize> {
        let slot = self.slot_of(app)?;
        self.slots[slot] = None;
        Some(slot)
    }

    pub fn slot_of(&self, app: App) -> Option<usize> {
        self.slots.iter().position(|s| s.as_ref().is_some_and(|l| l.app == app))
    }

    /// (slot, list) of the lists in use.
    pub fn lists(&self) -> impl Iterator<Item = (usize, &ListFile)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|l| (i, l)))
    }

    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// The tries' entries and the table: for every prefix of every list, `own` = the lists
    /// holding exactly this prefix, `covering` = the lists holding a prefix that contains it
    /// (`own` included), so that the longest match alone names every list containing an
    /// address.
    pub fn entries(&self) -> HostLists {
        let mut h = HostLists::default();
        for (slot, l) in self.lists() {
            let bit = 1u32 << slot;
            for &(a, len) in &l.v4 {
                h.v4.entry((len, a)).or_default().own |= bit;
            }
            for &(a, len) in &l.v6 {
                h.v6.entry((len, a)).or_default().own |= bit;
            }
            h.table.lists[slot] = l.info();
        }
        fn cover<const N: usize>(map: &mut HashMap<(u8, [u8; N]), ListEntry>) {
            let own: HashMap<(u8, [u8; N]), u32> = map.iter().map(|(k, e)| (*k, e.own)).collect();
            for (&(len, addr), e) in map.iter_mut() {
                e.covering = (0..=len).filter_map(|l| own.get(&(l, mask(addr, l)))).fold(0, |m, o| m | o);
            }
        }
        cover(&mut h.v4);
        cover(&mut h.v6);
        let table = h.table;
        for e in h.v4.values_mut().chain(h.v6.values_mut()) {
            e.resolve(&table);
        }
        h
    }

    /// The lists that entries read back from the kernel hold: each slot's prefixes are the
    /// entries whose `own` has its bit; the source is unknown (empty).
    pub fn from_entries(h: &HostLists) -> ListSet {
        let mut set = ListSet::default();
        for (slot, info) in h.table.lists.iter().enumerate() {
            if info.scope == SCOPE_NONE {
                continue;
            }
            let Some(app) = App::from_u16(info.app as u16) else { continue };
            let bit = 1u32 << slot;
            let mut v4: Vec<([u8; 4], u8)> = h.v4.iter().filter(|(_, e)| e.own & bit != 0).map(|(&(l, a), _)| (a, l)).collect();
            let mut v6: Vec<([u8; 16], u8)> = h.v6.iter().filter(|(_, e)| e.own & bit != 0).map(|(&(l, a), _)| (a, l)).collect();
            v4.sort();
            v6.sort();
            let n = (info.nranges as usize).min(MAX_RANGES);
            set.slots[slot] = Some(ListFile {
                app,
                scope: info.scope,
                ranges: info.ranges[..n].to_vec(),
                version: version_text(info),
                source: String::new(),
                v4,
                v6,
            });
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::Listed;

    fn list(app: &str, scope: &str, prefixes: &[&str]) -> ListFile {
        let text = format!("# app: {app}\n# scope: {scope}\n# version: 2026-11-28\n# source: test\n{}\n", prefixes.join("\n"));
        parse_list("t.cidr", &text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn v4(s: &str) -> [u8; 16] {
        let a: Ipv4Addr = s.parse().unwrap();
        let mut b = [0; 16];
        b[..4].copy_from_slice(&a.octets());
        b
    }

    fn v6(s: &str) -> [u8; 16] {
        s.parse::<Ipv6Addr>().unwrap().octets()
    }

    #[test]
    fn parses_a_file() {
        let text = "# zoom: Zoom's published ranges\n# app: zoom\n# scope: udp ports 8801-8810,3478 signal\n\
                    # version: 2026-11-28.2\n# source: https://example.invalid/zoom\n# source: nDPI\n\n\
                    3.7.35.0/25\n3.7.35.0/25   # again, counted once\n192.0.2.1\n2001:db8::/32\n# a comment: not a header\n";
        let l = parse_list("zoom.cidr", text).unwrap();
        assert_eq!(l.app, App::Zoom);
        assert_eq!(l.scope, SCOPE_SIGNAL);
        assert_eq!(l.ranges, vec![PortRange { lo: 8801, hi: 8810 }, PortRange { lo: 3478, hi: 3478 }]);
        assert_eq!(l.version, "2026-11-28.2");
        assert_eq!(l.source, "https://example.invalid/zoom; nDPI");
        assert_eq!(l.v4, vec![([3, 7, 35, 0], 25), ([192, 0, 2, 1], 32)]);
        assert_eq!(l.v6.len(), 1);
        assert_eq!(l.scope_text(), "udp ports 8801-8810,3478 signal");
        assert_eq!(l.prefix_strings(), ["3.7.35.0/25", "192.0.2.1/32", "2001:db8::/32"]);
        let info = l.info();
        assert_eq!((info.app, info.scope, info.nranges, info.prefixes), (App::Zoom as u8, SCOPE_SIGNAL, 2, 3));
        assert_eq!(version_text(&info), "2026-11-28.2");
        assert_eq!(parse_scope("udp").unwrap(), (SCOPE_UDP, vec![]));
        assert_eq!(parse_scope("UDP signal ports 1-2").unwrap(), (SCOPE_SIGNAL, vec![PortRange { lo: 1, hi: 2 }]));
    }

    #[test]
    fn parse_errors_name_file_and_line() {
        let head = "# app: zoom\n# scope: udp\n# version: 2026-11-28\n# source: s\n";
        let cases: &[(&str, &str)] = &[
            ("# app: zoom\n# scope: udp\n# version: 1\n# source: s\n10.0.0.0/33\n", "f:5: bad CIDR '10.0.0.0/33': the length must be 0 to 32"),
            ("# app: skipe\n", "f:1: unknown app 'skipe': expected one of"),
            ("# app: unknown\n", "f:1: unknown app 'unknown'"),
            ("# app: zoom\n\n# scope: tcp\n", "f:3: bad scope 'tcp': a prefix list only ever applies to UDP"),
            ("# scope: udp ports 1,2,3,4,5\n", "f:1: bad scope 'udp ports 1,2,3,4,5': too many port ranges (5; at most 4)"),
            ("# scope: udp ports 70000\n", "f:1: bad scope 'udp ports 70000': bad port '70000'"),
            ("# scope: udp ports 9-8\n", "f:1: bad scope 'udp ports 9-8': bad port range '9-8'"),
            ("# scope: udp ports\n", "f:1: bad scope 'udp ports': `ports` needs a list"),
            ("# scope: udp always\n", "f:1: bad scope 'udp always': unexpected 'always'"),
            ("# version: 2026-11-28 and more\n", "f:1: bad version"),
            ("# version: 0123456789012345678901234567890123\n", "f:1: bad version"),
            ("1.2.3.4/24\n", "f:1: host bits set in '1.2.3.4/24' (the network is 1.2.3.0/24"),
            ("# app: zoom\n2001:db8::1/32\n", "f:2: host bits set in '2001:db8::1/32' (the network is 2001:db8::/32"),
            ("# app: zoom\n\n\nzoom.us\n", "f:4: bad CIDR 'zoom.us': 'zoom.us' is not an IPv4 or IPv6 address"),
            ("1.2.3.0/+24\n", "f:1: bad CIDR"),
            ("# app: zoom\n# app: line\n", "f:2: a second `# app:` line"),
            ("# scope: udp\n# version: 1\n# source: s\n1.0.0.0/8\n", "f: the header has no `# app:` line"),
            ("# app: zoom\n# version: 1\n# source: s\n1.0.0.0/8\n", "f: the header has no `# scope:` line"),
            ("# app: zoom\n# scope: udp\n# source: s\n1.0.0.0/8\n", "f: the header has no `# version:` line"),
            ("# app: zoom\n# scope: udp\n# version: 1\n1.0.0.0/8\n", "f: the header has no `# source:` line"),
        ];
        for (text, want) in cases {
            let e = parse_list("f", text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: got {e:?}, want {want:?}");
        }
        assert_eq!(parse_list("f", head).unwrap_err().to_string(), "f: no prefixes");
        // Header keys after the first prefix are comments.
        let l = parse_list("f", &format!("{head}1.0.0.0/8\n# app: line\n")).unwrap();
        assert_eq!(l.app, App::Zoom);
    }

    #[test]
    fn slash16_bitmap_covers_every_listed_address() {
        let mut set = ListSet::default();
        set.put(list("zoom", "udp", &["17.0.0.0/8", "198.51.100.0/24", "203.0.113.7/32"])).unwrap();
        let h = set.entries();
        let words = h.slash16();
        let has = |a: [u8; 4]| {
            let (w, bit) = crate::lists::slash16(a[0], a[1]);
            words[w as usize] & bit != 0
        };
        for a in [[17, 0, 0, 1], [17, 255, 9, 9], [198, 51, 100, 200], [198, 51, 7, 7], [203, 0, 113, 7]] {
            assert!(has(a), "{a:?}");
        }
        for a in [[16, 255, 0, 1], [18, 0, 0, 1], [198, 52, 100, 1], [10, 0, 0, 1]] {
            assert!(!has(a), "{a:?}");
        }
        assert_eq!(words.iter().map(|w| w.count_ones()).sum::<u32>(), 256 + 1 + 1);
    }

    #[test]
    fn overlapping_and_nested_prefixes_across_lists() {
        let mut set = ListSet::default();
        // slot 0: a /8 with a nested /16 and /24 of the same list.
        assert_eq!(set.put(list("zoom", "udp", &["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24"])), Ok(0));
        // slot 1: the same /16 and a /32 inside zoom's /24, and an unrelated prefix.
        assert_eq!(set.put(list("teams", "udp ports 50000-50059", &["10.1.0.0/16", "10.1.2.3/32", "192.0.2.0/24"])), Ok(1));
        // slot 2: a signal list covering everything above.
        assert_eq!(set.put(list("messenger", "udp signal", &["0.0.0.0/0"])), Ok(2));
        let h = set.entries();
        let e = |len: u8, a: [u8; 4]| {
            let e = h.v4[&(len, a)];
            ListEntry { own: e.own, covering: e.covering, ..Default::default() }
        };
        assert_eq!(e(0, [0; 4]), ListEntry { own: 4, covering: 4, ..Default::default() });
        assert_eq!(e(8, [10, 0, 0, 0]), ListEntry { own: 1, covering: 5, ..Default::default() });
        assert_eq!(e(16, [10, 1, 0, 0]), ListEntry { own: 3, covering: 7, ..Default::default() });
        assert_eq!(e(24, [10, 1, 2, 0]), ListEntry { own: 1, covering: 7, ..Default::default() });
        assert_eq!(e(32, [10, 1, 2, 3]), ListEntry { own: 2, covering: 7, ..Default::default() });
        assert_eq!(e(24, [192, 0, 2, 0]), ListEntry { own: 2, covering: 6, ..Default::default() });
        assert_eq!(h.v4.len(), 6, "one entry per distinct prefix");
        // The longest match alone gives every list containing the address.
        for (addr, want) in [
            ("10.200.0.1", vec![0, 2]),
            ("10.1.9.9", vec![0, 1, 2]),
            ("10.1.2.4", vec![0, 1, 2]),
            ("10.1.2.3", vec![0, 1, 2]),
            ("192.0.2.9", vec![1, 2]),
            ("11.0.0.1", vec![2]),
        ] {
            assert_eq!(h.slots_containing(addr.parse().unwrap()), want, "{addr}");
        }
        // A brute-force check: mask == union of the lists with a prefix containing the address.
        let mut x = 0x1234_5678u32;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let a = [10, (x >> 24) as u8 & 3, (x >> 8) as u8 & 3, x as u8 & 7];
            let want = set
                .lists()
                .filter(|(_, l)| l.v4.iter().any(|&(p, len)| mask(a, len) == p))
                .fold(0u32, |m, (s, _)| m | 1 << s);
            assert_eq!(h.mask(&v4(&Ipv4Addr::from(a).to_string()), false), want, "{a:?}");
        }
        // What the engine makes of it: the lowest UDP slot wins, the signal list names.
        let m = h.mask(&v4("10.1.2.3"), false);
        assert_eq!(h.table.lookup(m, 40000, 50010), Listed { app: App::Zoom as u16, signal: App::Messenger as u16 });
        let m = h.mask(&v4("192.0.2.9"), false);
        assert_eq!(h.table.lookup(m, 40000, 443), Listed { app: 0, signal: App::Messenger as u16 });
        assert_eq!(h.table.lookup(m, 50001, 443), Listed { app: App::Teams as u16, signal: App::Messenger as u16 });
        assert_eq!(h.mask(&v6("2001:db8::1"), true), 0);
    }

    #[test]
    fn ipv6_entries() {
        let mut set = ListSet::default();
        set.put(list("google-meet", "udp ports 3478,19302-19309 signal", &["2001:4860:4864:5::/64", "74.125.250.0/24"])).unwrap();
        set.put(list("teams", "udp", &["2001:4860::/32", "2001:4860:4864:5::1"])).unwrap();
        let h = set.entries();
        assert_eq!(h.v4.len(), 1);
        assert_eq!(h.v6.len(), 3);
        assert_eq!(h.mask(&v6("2001:4860:4864:5::1"), true), 3);
        assert_eq!(h.mask(&v6("2001:4860:4864:5::2"), true), 3);
        assert_eq!(h.mask(&v6("2001:4860:4864:6::2"), true), 2);
        assert_eq!(h.mask(&v6("2001:4861::"), true), 0);
        // IPv4 and IPv6 tries are separate: 74.125.250.1 as the first bytes of an IPv6 address.
        assert_eq!(h.mask(&v4("74.125.250.1"), false), 1);
        assert_eq!(h.mask(&v4("74.125.250.1"), true), 0);
        let m = h.mask(&v6("2001:4860:4864:5::1"), true);
        assert_eq!(h.table.lookup(m, 19305, 40000), Listed { app: App::Teams as u16, signal: App::GoogleMeet as u16 });
        assert_eq!(h.table.lookup(m, 443, 40000), Listed { app: App::Teams as u16, signal: 0 });
    }

    #[test]
    fn slots_are_kept_on_replace_and_read_back() {
        let mut set = ListSet::default();
        set.put(list("zoom", "udp", &["10.0.0.0/8"])).unwrap();
        set.put(list("line", "udp", &["11.0.0.0/8"])).unwrap();
        set.put(list("webex", "udp", &["12.0.0.0/8"])).unwrap();
        assert_eq!(set.remove(App::Line), Some(1));
        assert_eq!(set.remove(App::Line), None);
        // A new app takes the free slot; a new version of zoom keeps slot 0.
        assert_eq!(set.put(list("discord", "udp", &["13.0.0.0/8"])), Ok(1));
        assert_eq!(set.put(list("zoom", "udp ports 8801-8810", &["14.0.0.0/8", "2001:db8::/32"])), Ok(0));
        assert_eq!(set.slot_of(App::Webex), Some(2));
        let h = set.entries();
        assert_eq!(h.mask(&v4("10.0.0.1"), false), 0, "the old zoom prefix is gone");
        assert_eq!(h.mask(&v4("14.0.0.1"), false), 1);
        // Read back as the kernel holds it: the same lists, without the source.
        let back = ListSet::from_entries(&h);
        for (slot, l) in set.lists() {
            let b = back.slots[slot].as_ref().expect("slot in use");
            assert_eq!((b.app, b.scope, &b.ranges, &b.version, &b.v4, &b.v6), (l.app, l.scope, &l.ranges, &l.version, &l.v4, &l.v6));
            assert_eq!(b.source, "");
        }
        assert_eq!(back.lists().count(), 3);
        assert_eq!(back.entries(), h);
        // 32 apps at most.
        let mut full = ListSet::default();
        let apps: Vec<App> = App::ALL.iter().copied().filter(|a| *a != App::Unknown).collect();
        for (i, a) in apps.iter().take(MAX_LISTS).enumerate() {
            assert_eq!(full.put(list(a.name(), "udp", &["10.0.0.0/8"])), Ok(i));
        }
        let e = full.put(list(apps[MAX_LISTS].name(), "udp", &["10.0.0.0/8"])).unwrap_err();
        assert!(e.contains("at most 32 lists"), "{e}");
    }
}
