//! Rules as the user writes them (CLI and config file): parsing and validation with clear
//! errors, and expansion into map keys.

use std::{fmt, net::IpAddr, str::FromStr};

use anyhow::{anyhow, bail};
use voipfilter_common::{
    Action, App,
    packet::proto,
    rules::{DEFAULT_PORT_RULES, PortKey},
    user::rules::mask,
};

/// Which L4 protocols a port rule covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Udp,
    Tcp,
    Both,
}

impl Proto {
    pub fn numbers(self) -> &'static [u8] {
        match self {
            Proto::Udp => &[proto::UDP],
            Proto::Tcp => &[proto::TCP],
            Proto::Both => &[proto::UDP, proto::TCP],
        }
    }
}

impl FromStr for Proto {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Proto> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(Proto::Udp),
            "tcp" => Ok(Proto::Tcp),
            "both" | "udp+tcp" | "tcp+udp" => Ok(Proto::Both),
            _ => bail!("bad protocol '{s}': expected udp, tcp or both"),
        }
    }
}

/// An inclusive port range, `5060` or `50000-50059`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl FromStr for PortRange {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<PortRange> {
        let one = |p: &str| -> anyhow::Result<u16> {
            let v: u32 = p.trim().parse().map_err(|_| anyhow!("bad port '{p}': expected a number from 1 to 65535"))?;
            if v == 0 || v > 65535 {
                bail!("bad port '{p}': expected a number from 1 to 65535");
            }
            Ok(v as u16)
        };
        let (first, last) = match s.split_once('-') {
            Some((a, b)) => (one(a)?, one(b)?),
            None => (one(s)?, one(s)?),
        };
        if first > last {
            bail!("bad port range '{s}': the first port is above the last");
        }
        Ok(PortRange { first, last })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last { write!(f, "{}", self.first) } else { write!(f, "{}-{}", self.first, self.last) }
    }
}

/// An IPv4 or IPv6 prefix, normalised (host bits cleared).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Prefix {
    V4([u8; 4], u8),
    V6([u8; 16], u8),
}

impl FromStr for Prefix {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Prefix> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| anyhow!("bad prefix '{s}': '{addr}' is not an IPv4 or IPv6 address"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => match l.trim().parse::<u8>() {
                Ok(v) if v <= max => v,
                _ => bail!("bad prefix '{s}': length must be 0 to {max}"),
            },
        };
        Ok(match ip {
            IpAddr::V4(a) => Prefix::V4(mask(a.octets(), len), len),
            IpAddr::V6(a) => Prefix::V6(mask(a.octets(), len), len),
        })
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Prefix::V4(a, l) => write!(f, "{}/{l}", std::net::Ipv4Addr::from(a)),
            Prefix::V6(a, l) => write!(f, "{}/{l}", std::net::Ipv6Addr::from(a)),
        }
    }
}

pub fn parse_app(s: &str) -> anyhow::Result<App> {
    App::from_name(s).ok_or_else(|| {
        let names: Vec<_> = App::ALL.iter().filter(|a| **a != App::Unknown).map(|a| a.name()).collect();
        anyhow!("unknown app '{s}': expected one of {}", names.join(", "))
    })
}

pub fn parse_action(s: &str) -> anyhow::Result<Action> {
    Action::from_name(&s.to_ascii_lowercase())
        .ok_or_else(|| anyhow!("unknown action '{s}': expected drop, monitor or pass"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRule {
    pub proto: Proto,
    pub ports: PortRange,
    pub app: App,
    pub action: Action,
}

impl PortRule {
    pub fn keys(&self) -> impl Iterator<Item = PortKey> + '_ {
        self.proto
            .numbers()
            .iter()
            .flat_map(move |&p| (self.ports.first..=self.ports.last).map(move |port| PortKey::new(p, port)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixRule {
    pub prefix: Prefix,
    pub app: App,
    pub action: Action,
}

/// The rules a daemon installs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleList {
    pub ports: Vec<PortRule>,
    pub prefixes: Vec<PrefixRule>,
}

impl RuleList {
    /// The built-in defaults: the VoIP signalling and STUN ports, all `drop`.
    pub fn defaults() -> RuleList {
        RuleList {
            ports: DEFAULT_PORT_RULES
                .iter()
                .map(|&(p, port, app)| PortRule {
                    proto: if p == proto::UDP { Proto::Udp } else { Proto::Tcp },
                    ports: PortRange { first: port, last: port },
                    app,
                    action: Action::Drop,
                })
                .collect(),
            prefixes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixes() {
        assert_eq!("192.0.2.77/24".parse::<Prefix>().unwrap(), Prefix::V4([192, 0, 2, 0], 24));
        assert_eq!("192.0.2.77".parse::<Prefix>().unwrap(), Prefix::V4([192, 0, 2, 77], 32));
        assert_eq!("2001:db8::1/32".parse::<Prefix>().unwrap().to_string(), "2001:db8::/32");
        for bad in ["192.0.2.0/33", "10.0.0/8", "x/1", "::/129", "1.2.3.4/-1", ""] {
            let e = bad.parse::<Prefix>().unwrap_err().to_string();
            assert!(e.starts_with("bad prefix"), "{bad}: {e}");
        }
    }

    #[test]
    fn parses_ports() {
        assert_eq!("5060".parse::<PortRange>().unwrap(), PortRange { first: 5060, last: 5060 });
        assert_eq!("50000-50059".parse::<PortRange>().unwrap(), PortRange { first: 50000, last: 50059 });
        for bad in ["0", "65536", "x", "10-5", "-1", ""] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
        let r = PortRule {
            proto: Proto::Both,
            ports: "10-12".parse().unwrap(),
            app: App::Sip,
            action: Action::Drop,
        };
        assert_eq!(r.keys().count(), 6);
    }

    #[test]
    fn names() {
        assert_eq!(parse_app("whatsapp").unwrap(), App::WhatsApp);
        assert!(parse_app("skipe").unwrap_err().to_string().contains("expected one of"));
        assert_eq!(parse_action("DROP").unwrap(), Action::Drop);
        assert!(parse_action("reject").is_err());
        assert_eq!(RuleList::defaults().ports.len(), DEFAULT_PORT_RULES.len());
    }
}
