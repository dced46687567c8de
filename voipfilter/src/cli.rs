//! The command line (clap derive). Doc comments are the `--help` text.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use voipfilter_common::{Action, App, maps::Meta};

use crate::{
    daemon::{self, RunOptions},
    load::Mode,
    maps::{Maps, pin_dir, proto_name},
    rulespec::{self, PortRange, PortRule, Prefix, PrefixRule, Proto},
    stats::Report,
    sys,
};

/// Classify VoIP traffic (SIP, RTP, STUN/TURN, IAX2, H.323, SCCP, call apps) in XDP and drop,
/// monitor or pass it at line rate.
#[derive(Parser, Debug)]
#[command(name = "voipfilter", version, propagate_version = true)]
pub struct Cli {
    /// bpffs directory of the instance's pinned maps [env: VOIPFILTER_PIN_DIR]
    /// [default: /sys/fs/bpf/voipfilter]
    #[arg(long, global = true, value_name = "DIR")]
    pub pin_dir: Option<PathBuf>,

    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Load the XDP program, attach it to interfaces and filter until SIGINT/SIGTERM.
    ///
    /// Without --config, the default policy drops every call the detectors recognise (SIP, RTP,
    /// STUN/TURN, IAX2, H.323, MGCP, Megaco, SCCP and the call apps) and passes everything else.
    /// WARNING: rules you add can drop any traffic; on a remote machine a prefix or port rule
    /// with `drop` can lock you out.
    Run(RunArgs),
    /// Show the counters of a running instance: totals per action, per app, parse exceptions.
    Stats(StatsArgs),
    /// Show or change the port and prefix rules of a running instance.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Show, load or remove the app prefix lists of a running instance (call relays and media
    /// servers of Zoom, Teams, Discord...).
    ///
    /// Each list is one app's prefixes with a scope: a prefix only ever speaks for UDP (never
    /// TCP chat or HTTPS), optionally only on some ports, optionally only to name the app of a
    /// call another detector found (`signal`). The daemon starts with the built-in lists
    /// unless its config or `run --lists` says otherwise. File format: docs/lists.md.
    Lists {
        #[command(subcommand)]
        command: ListsCommand,
    },
    /// Show or change what happens to each app's traffic (drop, monitor or pass).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// List the flow table of a running instance: each tracked flow with its app and state.
    Flows {
        /// JSON output (one array).
        #[arg(long)]
        json: bool,
        /// Show at most N flows.
        #[arg(short = 'n', long, default_value_t = 100)]
        limit: usize,
    },
    /// Measure the per-packet cost of the XDP programs on this machine (BPF_PROG_TEST_RUN, no
    /// interface touched): ns per packet for TCP, TLS, DNS, established and new UDP flows and
    /// dropped SIP, next to an empty program and a parse+lookup reference measured in the same
    /// run. Needs root (or CAP_BPF). `cargo xtask bench` in the source tree is the full
    /// benchmark (live throughput, xdp-filter/nftables/ndpiReader, scaling, a report).
    Bench {
        /// Runs of each frame per round.
        #[arg(long, default_value_t = crate::perf::DEFAULT_REPEAT)]
        repeat: u32,
        /// Rounds per class; the lowest figure is shown (load on the machine only adds time).
        #[arg(long, default_value_t = crate::perf::DEFAULT_ROUNDS)]
        rounds: usize,
    },
    /// List the app names that rules and counters use.
    Apps {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Run pcap/pcapng captures through the real XDP program (BPF_PROG_TEST_RUN) and show what
    /// it did to each flow.
    ///
    /// Every packet goes through one loaded program in capture order, with the daemon's policy
    /// (--config, else the built-in defaults). Prints one line per flow (protocol, endpoints,
    /// app, class, packets, dropped, index of the first dropped packet) and a summary. A
    /// truncated or corrupt capture is reported with the packet number; the flows read before
    /// it are still shown, and the exit status is 1.
    Replay(crate::replay::cli::ReplayArgs),
    /// Replay captures and score the verdicts against label files: block recall, false
    /// positives, packets before the first drop, per capture, per app and in total.
    ///
    /// Exits with status 1 when a --min-*/--max-* threshold is not met.
    Eval(crate::replay::cli::EvalArgs),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Interface to attach to (repeatable).
    #[arg(short, long = "iface", value_name = "IF", required = true)]
    pub ifaces: Vec<String>,
    /// XDP attach mode: auto tries native (driver) XDP and falls back to skb with a warning.
    #[arg(short, long, value_enum, default_value_t = Mode::Auto)]
    pub mode: Mode,
    /// TOML file with the policy, port and prefix rules, prefix lists and engine settings (see
    /// README: Configuration). Without it: block every call, no port or prefix rules, the
    /// built-in prefix lists.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// App prefix lists to install instead of the config's `lists` (default: the built-in
    /// lists): `builtin`, `none`, a list file or a directory of *.cidr files. Repeatable; a
    /// later list of an app replaces an earlier one.
    #[arg(long, value_name = "SRC")]
    pub lists: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ListsCommand {
    /// Show every list: slot, app, scope, ports, IPv4 and IPv6 prefixes, version. With APP, that
    /// list's prefixes too, as the kernel holds them.
    Show {
        /// An app name (`voipfilter apps`).
        app: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Load list files into the running instance: each replaces its app's list (keeping its
    /// slot) or adds one. The new prefixes are written before the old ones are deleted, so no
    /// moment passes without an active list; counters and decided flows stay.
    Load {
        /// List files (`# app:`, `# scope:`, `# version:`, `# source:` header, one CIDR a line).
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// Remove an app's list from the running instance.
    Del {
        /// An app name.
        app: String,
    },
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// JSON output (one object; with --watch one object per line).
    #[arg(long)]
    pub json: bool,
    /// Print again every SECS seconds, with rates over that interval, until Ctrl-C.
    #[arg(short, long, value_name = "SECS")]
    pub watch: Option<f64>,
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// List every port and prefix rule.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Add (or replace) a rule.
    Add {
        #[command(subcommand)]
        rule: RuleArg,
    },
    /// Delete a rule.
    Del {
        #[command(subcommand)]
        rule: RuleTarget,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Show the action of every app.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Set the action of an app, a class (signalling, media, nat-traversal, call-app, custom) or
    /// `all`. Takes effect on the next packet, also for flows already classified.
    Set {
        /// App name (`voipfilter apps`), class name, or `all`.
        target: String,
        /// drop, monitor or pass.
        action: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RuleArg {
    /// A rule on an L4 port or port range (matches source or destination port).
    Port {
        /// Port or inclusive range: 5060, 50000-50059.
        ports: String,
        #[command(flatten)]
        opts: RuleOpts,
        /// Protocol(s) the rule covers.
        #[arg(short, long, value_enum, default_value_t = Proto::Both)]
        proto: Proto,
    },
    /// A rule on an IPv4 or IPv6 prefix (matches source or destination address).
    Prefix {
        /// CIDR prefix: 192.0.2.0/24, 2001:db8::/32 (a bare address is a /32 or /128).
        cidr: String,
        #[command(flatten)]
        opts: RuleOpts,
    },
}

#[derive(Args, Debug)]
pub struct RuleOpts {
    /// App the matched packets are counted under (`voipfilter apps`).
    #[arg(short, long, default_value = "custom")]
    pub app: String,
    /// What to do with matched packets: drop, monitor (count, then pass) or pass.
    #[arg(short = 'x', long, default_value = "drop")]
    pub action: String,
}

#[derive(Subcommand, Debug)]
pub enum RuleTarget {
    /// Delete the rules on these ports.
    Port {
        /// Port or inclusive range.
        ports: String,
        #[arg(short, long, value_enum, default_value_t = Proto::Both)]
        proto: Proto,
    },
    /// Delete the rule on exactly this prefix.
    Prefix {
        cidr: String,
    },
}

pub async fn main(cli: Cli) -> anyhow::Result<()> {
    let dir = pin_dir(cli.pin_dir.as_deref());
    match cli.command {
        Command::Run(a) => {
            daemon::run(RunOptions { ifaces: a.ifaces, mode: a.mode, config: a.config, pin_dir: dir, lists: a.lists }).await
        }
        Command::Stats(a) => stats(&dir, &a).await,
        Command::Rules { command } => rules(&dir, command),
        Command::Lists { command } => crate::lists::cli(&dir, command),
        Command::Policy { command } => policy(&dir, command),
        Command::Flows { json, limit } => flows(&dir, json, limit),
        Command::Bench { repeat, rounds } => crate::perf::run(repeat, rounds),
        Command::Apps { json } => {
            apps(json);
            Ok(())
        }
        Command::Replay(a) => crate::replay::cli::replay(&a),
        Command::Eval(a) => crate::replay::cli::eval(&a),
    }
}

pub(crate) fn open(dir: &std::path::Path) -> anyhow::Result<Maps> {
    sys::require_bpf_privileges()?;
    Maps::from_pins(dir)
}

fn uptime(meta: &Meta) -> f64 {
    sys::unix_ns().saturating_sub(meta.loaded_unix_ns) as f64 / 1e9
}

async fn stats(dir: &std::path::Path, a: &StatsArgs) -> anyhow::Result<()> {
    let maps = open(dir)?;
    let meta = maps.meta()?;
    let mut prev = maps.snapshot()?;
    let print = |r: &Report| {
        if a.json {
            println!("{}", if a.watch.is_some() { r.json().to_string() } else { serde_json::to_string_pretty(&r.json()).unwrap_or_default() });
        } else {
            println!("{}", r.text());
        }
    };
    let Some(secs) = a.watch else {
        print(&Report { meta: &meta, now: &prev, prev: None, uptime_s: uptime(&meta) });
        return Ok(());
    };
    if !(secs > 0.0 && secs.is_finite()) {
        anyhow::bail!("--watch needs a positive number of seconds");
    }
    let mut last = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(secs)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        let now = maps.snapshot().context("the instance went away")?;
        let elapsed = last.elapsed().as_secs_f64();
        last = std::time::Instant::now();
        print(&Report { meta: &meta, now: &now, prev: Some((&prev, elapsed)), uptime_s: uptime(&meta) });
        prev = now;
    }
}

fn rules(dir: &std::path::Path, cmd: RulesCommand) -> anyhow::Result<()> {
    let mut maps = open(dir)?;
    match cmd {
        RulesCommand::List { json } => {
            let ports = maps.port_rules()?;
            let prefixes = maps.prefix_rules()?;
            let app = |id: u16| App::from_u16(id).map_or("?", App::name);
            let action = |a: u8| Action::from_u8(a).map_or("?", Action::name);
            if json {
                let v = json!({
                    "ports": ports.iter().map(|(k, r)| json!({"proto": proto_name(k.proto), "port": k.port, "app": app(r.app), "action": action(r.action)})).collect::<Vec<_>>(),
                    "prefixes": prefixes.iter().map(|(p, r)| json!({"prefix": p.to_string(), "app": app(r.app), "action": action(r.action)})).collect::<Vec<_>>(),
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("Port rules ({}):", ports.len());
                println!("  {:<8}{:<8}{:<14}{}", "proto", "port", "app", "action");
                for (k, r) in &ports {
                    println!("  {:<8}{:<8}{:<14}{}", proto_name(k.proto), k.port, app(r.app), action(r.action));
                }
                println!("\nPrefix rules ({}):", prefixes.len());
                println!("  {:<44}{:<14}{}", "prefix", "app", "action");
                for (p, r) in &prefixes {
                    println!("  {:<44}{:<14}{}", p.to_string(), app(r.app), action(r.action));
                }
            }
        }
        RulesCommand::Add { rule } => match rule {
            RuleArg::Port { ports, opts, proto } => {
                let r = PortRule {
                    proto,
                    ports: ports.parse::<PortRange>()?,
                    app: rulespec::parse_app(&opts.app)?,
                    action: rulespec::parse_action(&opts.action)?,
                };
                let n = maps.add_port_rule(&r)?;
                println!("added {n} port rule(s): {:?} {} -> {} {}", proto, r.ports, r.app.name(), r.action.name());
            }
            RuleArg::Prefix { cidr, opts } => {
                let r = PrefixRule {
                    prefix: cidr.parse::<Prefix>()?,
                    app: rulespec::parse_app(&opts.app)?,
                    action: rulespec::parse_action(&opts.action)?,
                };
                maps.add_prefix_rule(&r)?;
                println!("added prefix rule: {} -> {} {}", r.prefix, r.app.name(), r.action.name());
            }
        },
        RulesCommand::Del { rule } => match rule {
            RuleTarget::Port { ports, proto } => {
                let r = PortRule { proto, ports: ports.parse()?, app: App::Custom, action: Action::Pass };
                let n = maps.del_port_rule(&r)?;
                if n == 0 {
                    anyhow::bail!("no port rule on {proto:?} {}", r.ports);
                }
                println!("deleted {n} port rule(s)");
            }
            RuleTarget::Prefix { cidr } => {
                let p: Prefix = cidr.parse()?;
                if !maps.del_prefix_rule(&p)? {
                    anyhow::bail!("no prefix rule on {p}");
                }
                println!("deleted prefix rule {p}");
            }
        },
    }
    Ok(())
}

fn apps(json: bool) {
    if json {
        let v: Vec<_> = App::ALL
            .iter()
            .map(|a| json!({"id": *a as u16, "name": a.name(), "class": a.class().name(), "description": a.description()}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    println!("  {:<4}{:<14}{:<15}{}", "id", "app", "class", "description");
    for a in App::ALL {
        println!("  {:<4}{:<14}{:<15}{}", *a as u16, a.name(), a.class().name(), a.description());
    }
}

fn policy(dir: &std::path::Path, cmd: PolicyCommand) -> anyhow::Result<()> {
    let mut maps = open(dir)?;
    match cmd {
        PolicyCommand::List { json } => {
            let p = maps.policy()?;
            if json {
                let v: Vec<_> = p
                    .iter()
                    .map(|(app, a)| json!({"app": app.name(), "class": app.class().name(), "action": a.name()}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("  {:<14}{:<15}{}", "app", "class", "action");
                for (app, a) in p {
                    println!("  {:<14}{:<15}{}", app.name(), app.class().name(), a.name());
                }
            }
        }
        PolicyCommand::Set { target, action } => {
            let t = crate::policy::Target::parse(&target)?;
            let a = rulespec::parse_action(&action)?;
            let mut p = crate::policy::Policy::default();
            for (app, act) in maps.policy()? {
                p.set(crate::policy::Target::App(app), act);
            }
            p.set(t, a);
            maps.set_policy(&p)?;
            println!("policy: {t} -> {}", a.name());
        }
    }
    Ok(())
}

fn flows(dir: &std::path::Path, json: bool, limit: usize) -> anyhow::Result<()> {
    use voipfilter_common::flow::FlowState;
    let maps = open(dir)?;
    let flows = maps.flows(limit)?;
    let ep = |k: &voipfilter_common::flow::FlowKey, i: usize| -> String {
        if k.ipv6 != 0 {
            format!("[{}]:{}", std::net::Ipv6Addr::from(k.addr[i]), k.port[i])
        } else {
            let a = k.addr[i];
            format!("{}:{}", std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]), k.port[i])
        }
    };
    let state = |s: u8| match s {
        x if x == FlowState::Decided as u8 => "decided",
        x if x == FlowState::NotCall as u8 => "not-call",
        _ => "inspecting",
    };
    let app = |id: u16| App::from_u16(id).map_or("?", App::name);
    if json {
        let v: Vec<_> = flows
            .iter()
            .map(|(k, f)| {
                json!({"proto": proto_name(k.proto), "a": ep(k, 0), "b": ep(k, 1), "app": app(f.app),
                       "state": state(f.state), "packets": f.packets, "bytes": f.bytes, "inspected": f.inspected,
                       "decided_at": f.decided_at})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("  {:<6}{:<46}{:<46}{:<12}{:<11}{:>10}{:>12}", "proto", "endpoint a", "endpoint b", "app", "state", "packets", "bytes");
    for (k, f) in &flows {
        println!(
            "  {:<6}{:<46}{:<46}{:<12}{:<11}{:>10}{:>12}",
            proto_name(k.proto), ep(k, 0), ep(k, 1), app(f.app), state(f.state), f.packets, crate::fmt::bytes(f.bytes)
        );
    }
    println!("{} flow(s) shown (UDP flows; TCP calls are tracked in TCP_CALLS)", flows.len());
    Ok(())
}
