//! The daemon's config file (TOML). Every error names the file and line.
//!
//! ```toml
//! # What to do per app or class (see `voipfilter apps`). Default: every call app and class
//! # drops; an app setting wins over its class, `all` applies first.
//! [policy]
//! media = "monitor"
//! sip = "pass"
//!
//! # Flow-table size (entries, LRU: IPv4 flows; IPv6 flows get a quarter) and packets
//! # inspected per flow before it is declared not a call. Defaults: 1048576 and 12.
//! flows = 1048576
//! inspect_limit = 12
//!
//! # The app prefix lists (docs/lists.md): "builtin" (the default: the lists shipped in the
//! # binary), a list file or a directory of them (*.cidr), or an array of these, read in order
//! # (a later list of an app replaces an earlier one). `lists = []` installs no list. Relative
//! # paths are taken from the config file's directory.
//! lists = ["builtin", "/etc/voipfilter/lists/zoom.cidr"]
//!
//! # Also install the classic port rules (SIP 5060/5061, IAX2 4569, H.323 1719/1720, SCCP 2000,
//! # STUN 3478: drop) on top of the detectors. Default: false (the detectors find these
//! # protocols on any port, and port rules would also drop non-VoIP traffic on those ports).
//! port_defaults = false
//!
//! [[port]]
//! port = "50000-50059"   # or a number
//! proto = "udp"          # udp, tcp or both (default both)
//! app = "teams"          # an app name (`voipfilter apps`); default custom
//! action = "drop"        # drop, monitor or pass (default drop)
//!
//! [[prefix]]
//! cidr = "52.112.0.0/14"
//! app = "teams"
//! action = "monitor"
//! ```
//!
//! Port and prefix rules take precedence over the detectors (they are explicit). A `[[port]]`
//! rule on a port that `port_defaults` also covers replaces the default one.

use std::{collections::BTreeMap, ops::Range, path::Path};

use anyhow::anyhow;
use serde::Deserialize;
use toml::Spanned;
use voipfilter_common::{
    Action, App,
    flow::DEFAULT_INSPECT_LIMIT,
    maps::FLOWS_CAPACITY,
    user::lists::ListFile,
};

use crate::{
    lists::{self, Source},
    policy::{Policy, Target},
    rulespec::{self, PortRule, Prefix, PrefixRule, Proto, RuleList},
};

/// Everything a daemon (or a replay) runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub rules: RuleList,
    pub policy: Policy,
    /// Flow-table entries: the capacity of `FLOWS4` (IPv4); `FLOWS` (IPv6) gets
    /// `maps::flows6_capacity` of it (a quarter).
    pub flows: u32,
    pub inspect_limit: u32,
    /// The app prefix lists, at most one per app.
    pub lists: Vec<ListFile>,
}

impl Default for Settings {
    /// The built-in default: no port or prefix rules, every call blocked by the detectors, the
    /// built-in prefix lists.
    fn default() -> Self {
        Settings {
            rules: RuleList::default(),
            policy: Policy::default(),
            flows: FLOWS_CAPACITY,
            inspect_limit: DEFAULT_INSPECT_LIMIT,
            lists: lists::builtin(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    port_defaults: Option<bool>,
    flows: Option<Spanned<i64>>,
    inspect_limit: Option<Spanned<i64>>,
    #[serde(default)]
    policy: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    port: Vec<RawPort>,
    #[serde(default)]
    prefix: Vec<RawPrefix>,
    lists: Option<Spanned<ListsValue>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ListsValue {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PortValue {
    Num(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    port: Spanned<PortValue>,
    proto: Option<Spanned<String>>,
    app: Option<Spanned<String>>,
    action: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrefix {
    cidr: Spanned<String>,
    app: Option<Spanned<String>>,
    action: Option<Spanned<String>>,
}

/// Parses a config file's text; `name` is used in error messages, relative list paths are
/// taken from the current directory.
pub fn parse(name: &str, text: &str) -> anyhow::Result<Settings> {
    parse_in(name, text, None)
}

/// [`parse`], with relative list paths taken from `base` (the config file's directory).
pub fn parse_in(name: &str, text: &str, base: Option<&Path>) -> anyhow::Result<Settings> {
    let line_of = |span: Range<usize>| text[..span.start.min(text.len())].matches('\n').count() + 1;
    let at = |span: Range<usize>, e: anyhow::Error| anyhow!("{name}:{}: {e}", line_of(span));
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let msg = e.message().to_string();
        match e.span() {
            Some(span) => anyhow!("{name}:{}: {msg}", line_of(span)),
            None => anyhow!("{name}: {msg}"),
        }
    })?;
    let app = |a: &Option<Spanned<String>>| -> anyhow::Result<App> {
        match a {
            Some(s) => rulespec::parse_app(s.get_ref()).map_err(|e| at(s.span(), e)),
            None => Ok(App::Custom),
        }
    };
    let action = |a: &Option<Spanned<String>>| -> anyhow::Result<Action> {
        match a {
            Some(s) => rulespec::parse_action(s.get_ref()).map_err(|e| at(s.span(), e)),
            None => Ok(Action::Drop),
        }
    };
    let number = |v: &Option<Spanned<i64>>, what: &str, min: i64, max: i64, default: u32| -> anyhow::Result<u32> {
        match v {
            None => Ok(default),
            Some(s) if (min..=max).contains(s.get_ref()) => Ok(*s.get_ref() as u32),
            Some(s) => Err(at(s.span(), anyhow!("{what} must be between {min} and {max}"))),
        }
    };
    let mut settings = Settings {
        rules: if raw.port_defaults.unwrap_or(false) { RuleList::defaults() } else { RuleList::default() },
        flows: number(&raw.flows, "flows", 1024, 1 << 26, FLOWS_CAPACITY)?,
        inspect_limit: number(&raw.inspect_limit, "inspect_limit", 1, 255, DEFAULT_INSPECT_LIMIT)?,
        ..Settings::default()
    };
    let mut policy = Vec::new();
    for (k, v) in &raw.policy {
        let target = Target::parse(k.get_ref()).map_err(|e| at(k.span(), e))?;
        let act = rulespec::parse_action(v.get_ref()).map_err(|e| at(v.span(), e))?;
        policy.push((target, act));
    }
    settings.policy = Policy::with(&policy);
    let list = &mut settings.rules;
    for p in &raw.port {
        let text = match p.port.get_ref() {
            PortValue::Num(n) => n.to_string(),
            PortValue::Text(s) => s.clone(),
        };
        let ports = text.parse().map_err(|e| at(p.port.span(), e))?;
        let proto = match &p.proto {
            Some(s) => s.get_ref().parse::<Proto>().map_err(|e| at(s.span(), e))?,
            None => Proto::Both,
        };
        let rule = PortRule { proto, ports, app: app(&p.app)?, action: action(&p.action)? };
        // A file rule replaces defaults on the same (protocol, port).
        list.ports.retain(|d| !rule.keys().any(|k| d.keys().any(|dk| dk == k)));
        list.ports.push(rule);
    }
    for p in &raw.prefix {
        let prefix: Prefix = p.cidr.get_ref().parse().map_err(|e| at(p.cidr.span(), e))?;
        list.prefixes.push(PrefixRule { prefix, app: app(&p.app)?, action: action(&p.action)? });
    }
    if let Some(l) = &raw.lists {
        let names = match l.get_ref() {
            ListsValue::One(s) => vec![s.clone()],
            ListsValue::Many(v) => v.clone(),
        };
        let sources: Vec<Source> = names.iter().map(|n| Source::parse(n, base)).collect();
        settings.lists = lists::read_sources(&sources).map_err(|e| at(l.span(), anyhow!("lists: {e:#}")))?;
    }
    Ok(settings)
}

/// Reads and parses a config file.
pub fn load(path: &Path) -> anyhow::Result<Settings> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    parse_in(&path.display().to_string(), &text, path.parent())
}

#[cfg(test)]
mod tests {
    use voipfilter_common::Class;

    use super::*;

    #[test]
    fn full_config() {
        let s = parse(
            "c.toml",
            r#"
flows = 65536
inspect_limit = 8
[policy]
media = "monitor"
sip = "pass"
[[port]]
port = 5062
proto = "udp"
app = "sip"
[[port]]
port = "50000-50059"
app = "teams"
action = "monitor"
[[prefix]]
cidr = "52.112.0.0/14"
app = "teams"
action = "pass"
"#,
        )
        .unwrap();
        let l = &s.rules;
        assert_eq!((s.flows, s.inspect_limit), (65536, 8));
        assert_eq!(s.policy.action(App::Rtp), Action::Monitor);
        assert_eq!(s.policy.action(App::Sip), Action::Pass);
        assert_eq!(s.policy.action(App::Zoom), Action::Drop);
        assert_eq!(App::Rtp.class(), Class::Media);
        assert_eq!(l.ports.len(), 2);
        assert_eq!(l.ports[0].keys().count(), 1);
        assert_eq!(l.ports[1].keys().count(), 120);
        assert_eq!(l.ports[1].action, Action::Monitor);
        assert_eq!(l.prefixes[0].prefix, "52.112.0.0/14".parse().unwrap());
        assert_eq!(l.prefixes[0].action, Action::Pass);
    }

    #[test]
    fn empty_config_is_the_default() {
        assert_eq!(parse("c", "").unwrap(), Settings::default());
        assert!(Settings::default().rules.ports.is_empty());
    }

    #[test]
    fn lists_key() {
        let builtin = Settings::default().lists;
        assert!(builtin.iter().any(|l| l.app == App::Zoom));
        assert_eq!(parse("c", "lists = \"builtin\"\n").unwrap().lists, builtin);
        assert_eq!(parse("c", "lists = []\n").unwrap().lists, vec![]);
        let dir = std::env::temp_dir().join(format!("voipfilter-config-lists-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("l")).unwrap();
        std::fs::write(dir.join("l/zoom.cidr"), "# app: zoom\n# scope: udp\n# version: 9\n# source: t\n192.0.2.0/24\n").unwrap();
        std::fs::write(dir.join("c.toml"), "lists = [\"builtin\", \"l\"]\n").unwrap();
        let s = load(&dir.join("c.toml")).unwrap();
        assert_eq!(s.lists.len(), builtin.len(), "a relative directory, from the config's directory");
        assert_eq!(s.lists.iter().find(|l| l.app == App::Zoom).unwrap().version, "9");
        std::fs::write(dir.join("l/zoom.cidr"), "# app: zoom\n# scope: tcp\n").unwrap();
        std::fs::write(dir.join("c.toml"), "\nlists = \"l/zoom.cidr\"\n").unwrap();
        let e = load(&dir.join("c.toml")).unwrap_err().to_string();
        let want = format!("{0}/c.toml:2: lists: {0}/l/zoom.cidr:2: bad scope 'tcp'", dir.display());
        assert!(e.starts_with(&want), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn file_rules_replace_port_defaults() {
        let s = parse("c", "port_defaults = true\n[[port]]\nport = 5060\nproto = \"udp\"\napp = \"sip\"\naction = \"monitor\"\n").unwrap();
        let l = s.rules;
        let sip_udp: Vec<_> = l.ports.iter().filter(|r| r.keys().any(|k| k.port == 5060 && k.proto == 17)).collect();
        assert_eq!(sip_udp.len(), 1);
        assert_eq!(sip_udp[0].action, Action::Monitor);
        assert!(l.ports.iter().any(|r| r.keys().any(|k| k.port == 5060 && k.proto == 6)));
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            ("port_defaults = true\n[[port]]\nport = 70000\n", "c.toml:3: bad port"),
            ("[[prefix]]\ncidr = \"10.0.0.0/8\"\n\napp = \"skipe\"\n", "c.toml:4: unknown app 'skipe'"),
            ("[[prefix]]\ncidr = \"10.0.0.0/40\"\n", "c.toml:2: bad prefix"),
            ("[[port]]\nport = 1\naction = \"reject\"\n", "c.toml:3: unknown action"),
            ("[[port]]\nport = 1\nproto = \"sctp\"\n", "c.toml:3: bad protocol"),
            ("[[port]]\nport = 1\ncolour = 2\n", "c.toml:3: unknown field `colour`"),
            ("\n\nport = 5\n", "c.toml:3"),
            ("port_defaults = \"yes\"\n", "c.toml:1"),
            ("\n[policy]\nmedia = \"monitor\"\nskipe = \"drop\"\n", "c.toml:4: unknown app or class 'skipe'"),
            ("[policy]\nsip = \"reject\"\n", "c.toml:2: unknown action"),
            ("flows = 10\n", "c.toml:1: flows must be between"),
            ("\ninspect_limit = 0\n", "c.toml:2: inspect_limit must be between"),
            ("flows = 65536\nlists = \"/nonexistent/zoom.cidr\"\n", "c.toml:2: lists: /nonexistent/zoom.cidr: No such file"),
            ("lists = 3\n", "c.toml:1"),
        ];
        for (text, want) in cases {
            let e = parse("c.toml", text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: got {e:?}, want {want:?}");
        }
    }
}
