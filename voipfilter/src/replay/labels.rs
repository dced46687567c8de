//! Label files: what a VoIP filter with its default policy must do with each flow of a capture.
//!
//! Format (`<capture file name>.labels.tsv`, tab-separated, one header line):
//! `l4  endpoint_a  endpoint_b  ndpi_label  ndpi_category  expect`, where `expect` is `block`,
//! `pass` or `any`, endpoints are `ip:port` or `[ipv6]:port` in no particular order, and
//! `ndpi_label` is nDPI's `Master.App` verdict. Empty lines and lines starting with `#` are
//! skipped. Errors name the file and line.
//!
//! A row whose endpoint is not a valid address is set aside in [`Labels::unreadable`] rather
//! than failing the whole file: nDPI sometimes prints an IPv6 address with two `::`
//! (`2600:1900:4160:5999::19::` for `2600:1900:4160:5999:0:19::`), which names no single
//! address. Such rows are reported and not scored; their flow shows up as unlabelled.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};

use super::flows::{Endpoint, FlowKey, parse_proto};

/// What the filter must do with a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Expect {
    /// Call media or control: must be dropped.
    Block,
    /// Must keep working: no packet may be dropped.
    Pass,
    /// A matter of policy, or unknown: reported, not scored.
    Any,
}

impl Expect {
    pub fn name(self) -> &'static str {
        match self {
            Expect::Block => "block",
            Expect::Pass => "pass",
            Expect::Any => "any",
        }
    }
}

/// One labelled flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub key: FlowKey,
    /// Endpoints in the order the file gives them.
    pub endpoints: (Endpoint, Endpoint),
    /// nDPI's `Master.App` label.
    pub ndpi: String,
    pub category: String,
    pub expect: Expect,
    pub line: usize,
}

impl Label {
    /// The app part of the nDPI label: `WhatsAppCall` for `STUN.WhatsAppCall`, `SIP` for `SIP`.
    pub fn app(&self) -> &str {
        self.ndpi.rsplit_once('.').map_or(&self.ndpi, |(_, app)| app)
    }
}

/// The labels of one capture, by flow key.
#[derive(Clone, Debug, Default)]
pub struct Labels {
    pub path: PathBuf,
    pub rows: Vec<Label>,
    /// Rows set aside because an endpoint is not a valid address: `file:line: what`.
    pub unreadable: Vec<String>,
    index: HashMap<FlowKey, usize>,
}

const HEADER: [&str; 6] = ["l4", "endpoint_a", "endpoint_b", "ndpi_label", "ndpi_category", "expect"];

impl Labels {
    /// Parses label text; `name` is used in error messages.
    pub fn parse(name: &Path, text: &str) -> anyhow::Result<Labels> {
        let mut labels = Labels { path: name.to_path_buf(), ..Default::default() };
        let mut header_seen = false;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let at = || format!("{}:{n}", name.display());
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            if !header_seen {
                header_seen = true;
                if cols.first() == Some(&HEADER[0]) {
                    if cols != HEADER {
                        bail!("{}: unexpected header; expected the columns {}", at(), HEADER.join(" "));
                    }
                    continue;
                }
            }
            if cols.len() != HEADER.len() {
                bail!("{}: {} tab-separated columns, expected {} ({})", at(), cols.len(), HEADER.len(), HEADER.join(" "));
            }
            let proto = parse_proto(cols[0]).with_context(|| format!("{}: unknown protocol {:?}", at(), cols[0]))?;
            let expect = match cols[5] {
                "block" => Expect::Block,
                "pass" => Expect::Pass,
                "any" => Expect::Any,
                other => bail!("{}: expect is {other:?}; expected block, pass or any", at()),
            };
            let (a, b) = match (cols[1].parse::<Endpoint>(), cols[2].parse::<Endpoint>()) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => {
                    labels.unreadable.push(format!("{}: {e} ({} flow labelled {})", at(), expect.name(), cols[3]));
                    continue;
                }
            };
            let key = FlowKey::new(proto, a, b);
            if let Some(&j) = labels.index.get(&key) {
                bail!("{}: flow {key} is already labelled on line {}", at(), labels.rows[j].line);
            }
            labels.index.insert(key, labels.rows.len());
            labels.rows.push(Label {
                key,
                endpoints: (a, b),
                ndpi: cols[3].to_string(),
                category: cols[4].to_string(),
                expect,
                line: n,
            });
        }
        Ok(labels)
    }

    pub fn load(path: &Path) -> anyhow::Result<Labels> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading labels {}", path.display()))?;
        Labels::parse(path, &text)
    }

    /// The label file of `capture` in `dir`: `<dir>/<capture file name>.labels.tsv`.
    pub fn path_for(dir: &Path, capture: &Path) -> PathBuf {
        let name = capture.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        dir.join(format!("{name}.labels.tsv"))
    }

    pub fn get(&self, key: &FlowKey) -> Option<&Label> {
        self.index.get(key).map(|&i| &self.rows[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "l4\tendpoint_a\tendpoint_b\tndpi_label\tndpi_category\texpect\n\
        UDP\t192.168.1.2:5060\t212.242.33.35:5060\tSIP\tVoIP\tblock\n\
        \n\
        # a comment\n\
        UDP\t[32fb:f967::74fd]:3478\t[20ed::b080]:45658\tSTUN.WhatsAppCall\tVoIP\tblock\n\
        ICMP\t192.168.2.17:0\t192.168.2.1:0\tICMP\tNetwork\tpass\n\
        TCP\t10.0.0.1:443\t10.0.0.2:5000\tTLS.Teams\tCollaborative\tany\r\n";

    #[test]
    fn parses_rows() {
        let l = Labels::parse(Path::new("x.labels.tsv"), TEXT).unwrap();
        assert_eq!(l.rows.len(), 4);
        assert_eq!(l.rows[0].expect, Expect::Block);
        assert_eq!(l.rows[1].app(), "WhatsAppCall");
        assert_eq!(l.rows[0].app(), "SIP");
        assert_eq!(l.rows[2].key.to_string(), "ICMP 192.168.2.1:0 192.168.2.17:0");
        assert_eq!((l.rows[3].expect, l.rows[3].line, l.rows[3].category.as_str()), (Expect::Any, 7, "Collaborative"));
        let reversed = FlowKey::new(17, "212.242.33.35:5060".parse().unwrap(), "192.168.1.2:5060".parse().unwrap());
        assert_eq!(l.get(&reversed).unwrap().ndpi, "SIP");
        assert_eq!(Labels::path_for(Path::new("/l"), Path::new("/c/sip.pcap")), PathBuf::from("/l/sip.pcap.labels.tsv"));
    }

    #[test]
    fn rows_with_bad_addresses_are_set_aside() {
        let text = "UDP\t[2600:1900:4160:5999::19::]:3478\t[2001:b07::1]:48094\tSTUN\tNetwork\tany\n\
            UDP\t1.2.3.4:1\t1.2.3.5:2\tSIP\tVoIP\tblock\n\
            UDP\t1.2.3.4\t1.2.3.5:2\tSIP\tVoIP\tblock\n";
        let l = Labels::parse(Path::new("x"), text).unwrap();
        assert_eq!(l.rows.len(), 1);
        assert_eq!(
            l.unreadable,
            vec![
                "x:1: bad endpoint \"[2600:1900:4160:5999::19::]:3478\": expected ADDR:PORT or [IPV6]:PORT (any flow labelled STUN)",
                "x:3: bad endpoint \"1.2.3.4\": expected ADDR:PORT or [IPV6]:PORT (block flow labelled SIP)",
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("UDP\t1.2.3.4:1\t1.2.3.5:2\tSIP\tVoIP\tdrop\n", "x:1: expect is \"drop\""),
            ("l4\tendpoint_a\n", "x:1: unexpected header"),
            ("UDP\t1.2.3.4:1\t1.2.3.5:2\tSIP\n", "x:1: 4 tab-separated columns, expected 6"),
            ("XTP\t1.2.3.4:1\t1.2.3.5:2\tSIP\tVoIP\tblock\n", "x:1: unknown protocol \"XTP\""),
            (
                "UDP\t1.2.3.4:1\t1.2.3.5:2\tSIP\tVoIP\tblock\nUDP\t1.2.3.5:2\t1.2.3.4:1\tRTP\tMedia\tblock\n",
                "x:2: flow UDP 1.2.3.4:1 1.2.3.5:2 is already labelled on line 1",
            ),
        ];
        for (text, want) in cases {
            let e = Labels::parse(Path::new("x"), text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e:?} should start with {want:?}");
        }
    }
}
