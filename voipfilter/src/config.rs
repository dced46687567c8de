//! The daemon's config file (TOML). Every error names the file and line.
//!
//! ```toml
//! # Install the built-in rules (SIP, IAX2, H.323, SCCP, STUN ports: drop). Default: true.
//! defaults = true
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
//! A rule in the file for a port or prefix that a default rule also covers replaces the default.

use std::{ops::Range, path::Path};

use anyhow::anyhow;
use serde::Deserialize;
use toml::Spanned;
use voipfilter_common::{Action, App};

use crate::rulespec::{self, PortRule, Prefix, PrefixRule, Proto, RuleList};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    defaults: Option<bool>,
    #[serde(default)]
    port: Vec<RawPort>,
    #[serde(default)]
    prefix: Vec<RawPrefix>,
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

/// Parses a config file's text; `name` is used in error messages.
pub fn parse(name: &str, text: &str) -> anyhow::Result<RuleList> {
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
    let mut list = if raw.defaults.unwrap_or(true) { RuleList::defaults() } else { RuleList::default() };
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
    Ok(list)
}

/// Reads and parses a config file.
pub fn load(path: &Path) -> anyhow::Result<RuleList> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    parse(&path.display().to_string(), &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_config() {
        let l = parse(
            "c.toml",
            r#"
defaults = false
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
        assert_eq!(l.ports.len(), 2);
        assert_eq!(l.ports[0].keys().count(), 1);
        assert_eq!(l.ports[1].keys().count(), 120);
        assert_eq!(l.ports[1].action, Action::Monitor);
        assert_eq!(l.prefixes[0].prefix, "52.112.0.0/14".parse().unwrap());
        assert_eq!(l.prefixes[0].action, Action::Pass);
    }

    #[test]
    fn file_rules_replace_defaults() {
        let l = parse("c", "[[port]]\nport = 5060\nproto = \"udp\"\napp = \"sip\"\naction = \"monitor\"\n").unwrap();
        let sip_udp: Vec<_> = l.ports.iter().filter(|r| r.keys().any(|k| k.port == 5060 && k.proto == 17)).collect();
        assert_eq!(sip_udp.len(), 1);
        assert_eq!(sip_udp[0].action, Action::Monitor);
        assert!(l.ports.iter().any(|r| r.keys().any(|k| k.port == 5060 && k.proto == 6)));
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            ("defaults = true\n[[port]]\nport = 70000\n", "c.toml:3: bad port"),
            ("[[prefix]]\ncidr = \"10.0.0.0/8\"\n\napp = \"skipe\"\n", "c.toml:4: unknown app 'skipe'"),
            ("[[prefix]]\ncidr = \"10.0.0.0/40\"\n", "c.toml:2: bad prefix"),
            ("[[port]]\nport = 1\naction = \"reject\"\n", "c.toml:3: unknown action"),
            ("[[port]]\nport = 1\nproto = \"sctp\"\n", "c.toml:3: bad protocol"),
            ("[[port]]\nport = 1\ncolour = 2\n", "c.toml:3: unknown field `colour`"),
            ("\n\nport = 5\n", "c.toml:3"),
            ("defaults = \"yes\"\n", "c.toml:1"),
        ];
        for (text, want) in cases {
            let e = parse("c.toml", text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: got {e:?}, want {want:?}");
        }
    }
}
