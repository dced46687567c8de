//! Section 2: live throughput on one core. `bench_gen` (BPF_PROG_TEST_RUN with
//! BPF_F_TEST_XDP_LIVE_FRAMES) redirects frames into `vfba`; they arrive on `vfbb`, where the
//! filter under test runs in native XDP. Generator, veth and receiver all run on one pinned CPU
//! (the veth NAPI poll runs in the softirq the generator's flush raises), so the figure is what
//! one core sustains for generator + filter; the empty program in the same setting is the
//! ceiling. Received = Δ rx_packets of `vfbb`; passed = Δ rx "otherhost" drops (the frames'
//! destination MAC is not `vfbb`'s, so every frame the filter passes is discarded by the stack
//! at its first check, after the skb was built); dropped = received - passed.

use std::{process::Command, time::Duration};

use anyhow::Context as _;
use voipfilter::load::{Filter, LoadOptions, Mode};
use voipfilter_common::user::frame::Frame;
use voipfilter_tests::voip;

use crate::{
    classes::{CLIENT, SERVER},
    netns::{DUT_IF, GEN_IF, Lab},
    objects::{self, Baselines, CONF_IFINDEX, CONF_STAMP, CONF_TEMPLATES, TEMPLATE_LEN},
    util::{pin_to_cpu, progress, sh},
};

const MEDIA_CALLS: u16 = 6;
fn media_port(i: u16) -> u16 {
    30100 + 2 * i
}

fn fixed(f: Vec<u8>) -> anyhow::Result<[u8; TEMPLATE_LEN]> {
    f.as_slice().try_into().map_err(|_| anyhow::anyhow!("template of {} bytes, want {TEMPLATE_LEN}", f.len()))
}

/// 64-byte RTP frame of call `i` (12-byte header, 10 bytes of payload).
fn rtp_frame(i: u16) -> anyhow::Result<[u8; TEMPLATE_LEN]> {
    let mut p = voip::rtp(0, 100, 16000, 0xCA11_0000 + u32::from(i));
    p.truncate(12 + 10);
    fixed(Frame::udp4(CLIENT, 42000 + i, SERVER, media_port(i), &p).build())
}

/// 64-byte web frames: a TCP segment to 443 (10 bytes of TLS data) or a QUIC short-header
/// datagram to udp/443.
fn web_frame(i: u16) -> anyhow::Result<[u8; TEMPLATE_LEN]> {
    if i.is_multiple_of(2) {
        fixed(Frame::tcp4(CLIENT, 43000 + i, SERVER, 443, 0x18, &[0x17, 3, 3, 0, 5, 1, 2, 3, 4, 5]).build())
    } else {
        let mut q = vec![0x41, 8, 7, 6, 5, 4, 3, 2, 1];
        q.resize(22, 0x5A);
        fixed(Frame::udp4(CLIENT, 43000 + i, SERVER, 443, &q).build())
    }
}

/// A traffic pattern for the generator.
pub struct Traffic {
    pub name: &'static str,
    templates: Vec<[u8; TEMPLATE_LEN]>,
    /// Stamp the source address with a counter (every frame a new flow).
    stamp: bool,
}

pub fn traffics() -> anyhow::Result<Vec<Traffic>> {
    let media: Vec<_> = (0..MEDIA_CALLS).map(rtp_frame).collect::<Result<_, _>>()?;
    let web: Vec<_> = (0..4).map(web_frame).collect::<Result<_, _>>()?;
    let mut mix = media.clone();
    mix.extend(web.iter().copied());
    let mut text = b"new flow payload, not voip".to_vec();
    text.truncate(22);
    let newflow = fixed(Frame::udp4(CLIENT, 44000, SERVER, 8080, &text).build())?;
    Ok(vec![
        Traffic { name: "call media (RTP of blocked calls)", templates: media, stamp: false },
        Traffic { name: "mix: 60% call media, 40% web", templates: mix, stamp: false },
        Traffic { name: "worst case: every packet a new flow", templates: vec![newflow], stamp: true },
    ])
}

/// What runs on `vfbb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    EmptyDrop,
    EmptyPass,
    Voipfilter,
    XdpFilter,
    Nftables,
}

impl Peer {
    pub const ALL: [Peer; 5] = [Peer::EmptyDrop, Peer::EmptyPass, Peer::Voipfilter, Peer::XdpFilter, Peer::Nftables];
    pub fn name(self) -> &'static str {
        match self {
            Peer::EmptyDrop => "empty XDP program (XDP_DROP)",
            Peer::EmptyPass => "empty XDP program (XDP_PASS)",
            Peer::Voipfilter => "voipfilter (native XDP)",
            Peer::XdpFilter => "xdp-filter (port rules, native)",
            Peer::Nftables => "nftables (netdev ingress: ports + \"INVITE sip:\")",
        }
    }
}

pub struct LiveRow {
    pub peer: Peer,
    pub traffic: &'static str,
    /// Per run: Mpps received by vfbb, dropped, passed.
    pub received: Vec<f64>,
    pub dropped: Vec<f64>,
    pub passed: Vec<f64>,
    pub note: Option<String>,
}

pub struct LiveResult {
    pub frames: u32,
    pub cpu: usize,
    pub rows: Vec<LiveRow>,
}

/// The ports xdp-filter and nftables drop: SIP, STUN and the calls' media ports.
fn drop_ports() -> Vec<u16> {
    let mut p = vec![5060, 5061, 3478];
    p.extend((0..MEDIA_CALLS).map(media_port));
    p
}

/// Runs the section on a thread that has entered the lab's namespace and is pinned to `cpu`.
pub fn run(runs: usize, frames: u32, cpu: usize) -> anyhow::Result<LiveResult> {
    crate::netns::remove_stale();
    let lab = Lab::new()?;
    let ns = lab.ns.clone();
    let res = std::thread::scope(|s| {
        s.spawn(|| -> anyhow::Result<LiveResult> {
            lab.enter()?;
            pin_to_cpu(cpu)?;
            measure(&lab, runs, frames, cpu)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the live benchmark thread panicked"))?
    });
    drop(lab);
    anyhow::ensure!(!Command::new("ip").args(["netns", "list"]).output()?.stdout.starts_with(ns.as_bytes()), "namespace {ns} left behind");
    res
}

fn measure(lab: &Lab, runs: usize, frames: u32, cpu: usize) -> anyhow::Result<LiveResult> {
    let mut base = Baselines::load()?;
    let gen_ifindex = voipfilter::sys::ifindex(GEN_IF)?;
    let dut_ifindex = voipfilter::sys::ifindex(DUT_IF)?;
    base.set_conf(CONF_IFINDEX, gen_ifindex)?;
    let traffics = traffics()?;
    let mut rows = Vec::new();
    for peer in Peer::ALL {
        progress("live", &format!("setting up {}", peer.name()));
        let setup = match setup_peer(lab, &mut base, peer, dut_ifindex) {
            Ok(s) => s,
            Err(e) => {
                for t in &traffics {
                    rows.push(LiveRow { peer, traffic: t.name, received: vec![], dropped: vec![], passed: vec![], note: Some(format!("not measured: {e:#}")) });
                }
                continue;
            }
        };
        for t in &traffics {
            let mut row = LiveRow { peer, traffic: t.name, received: vec![], dropped: vec![], passed: vec![], note: None };
            base.set_mix(&t.templates)?;
            base.set_conf(CONF_STAMP, if t.stamp { 26 } else { 0 })?;
            // Warm-up: establishes the web flows (inspected, then "not a call").
            send(&mut base, &t.templates[0], (frames / 10).max(10_000))?;
            for r in 0..runs {
                progress("live", &format!("{} / {} run {}/{runs}", peer.name(), t.name, r + 1));
                let (rx0, oh0) = lab.dut_counters()?;
                let wall = send(&mut base, &t.templates[0], frames)?;
                // Let the last NAPI poll finish.
                std::thread::sleep(Duration::from_millis(20));
                let (rx1, oh1) = lab.dut_counters()?;
                let s = wall.as_secs_f64() * 1e6;
                let rx = (rx1 - rx0) as f64;
                let passed = if oh0 == u64::MAX { f64::NAN } else { (oh1 - oh0) as f64 };
                row.received.push(rx / s);
                row.passed.push(passed / s);
                row.dropped.push((rx - passed) / s);
                if rx < f64::from(frames) * 0.9 {
                    row.note = Some(format!("vfbb received {rx} of {frames} frames"));
                }
            }
            rows.push(row);
        }
        setup.teardown(lab, &mut base);
        base.set_conf(CONF_TEMPLATES, 0)?;
    }
    Ok(LiveResult { frames, cpu, rows })
}

fn send(base: &mut Baselines, first: &[u8; TEMPLATE_LEN], n: u32) -> anyhow::Result<Duration> {
    objects::live(base.prog(objects::GEN)?, first, n)
}

enum Setup {
    Bench(aya::programs::xdp::XdpLinkId, &'static str),
    Voipfilter(Box<Filter>, Option<voipfilter::load::Attached>),
    External,
}

impl Setup {
    fn teardown(self, lab: &Lab, base: &mut Baselines) {
        let _ = lab.exec(&["nft", "delete", "table", "netdev", "vfbench"]);
        match self {
            Setup::Voipfilter(mut f, Some(a)) => {
                let _ = f.detach(a);
            }
            Setup::Bench(link, name) => {
                if let Ok(p) = base.prog(name) {
                    let _ = p.detach(link);
                }
            }
            _ => {}
        }
        // xdp-filter (attached through netlink by libxdp), and anything left.
        lab.xdp_off();
    }
}

fn attach_bench(base: &mut Baselines, name: &'static str, ifindex: u32) -> anyhow::Result<Setup> {
    let link = base.prog(name)?.attach(ifindex, aya::programs::XdpMode::Driver).with_context(|| format!("attaching {name} to {DUT_IF}"))?;
    Ok(Setup::Bench(link, name))
}

fn setup_peer(lab: &Lab, base: &mut Baselines, peer: Peer, dut: u32) -> anyhow::Result<Setup> {
    match peer {
        Peer::EmptyDrop => attach_bench(base, objects::DROP, dut),
        Peer::EmptyPass => attach_bench(base, objects::PASS, dut),
        Peer::Voipfilter => {
            let mut f = Box::new(Filter::load(&LoadOptions::default())?);
            // Signalling first: each call's INVITE announces its media port. One SIP flow per
            // call: on a SIP flow already decided, later INVITEs take the fast path and their
            // SDP is not read (engine behaviour at the time of writing).
            for i in 0..MEDIA_CALLS {
                let inv = voip::sip_invite(u32::from(i), "198.51.100.20", media_port(i));
                f.run(&Frame::udp4(CLIENT, 5100 + i, SERVER, 5060, &inv).build())?;
            }
            let a = f.attach(DUT_IF, Mode::Native)?;
            Ok(Setup::Voipfilter(f, Some(a)))
        }
        Peer::XdpFilter => {
            let mut script = format!("mount -t bpf bpf /sys/fs/bpf && xdp-filter load {DUT_IF} -m native -f udp,tcp");
            for p in drop_ports() {
                script.push_str(&format!(" && xdp-filter port {p} -m dst -p udp"));
            }
            which("xdp-filter")?;
            // A private mount namespace: xdp-filter's pins live in a bpffs of their own, so
            // they never meet another xdp-filter on this machine.
            lab.exec(&["unshare", "-m", "--propagation", "private", "sh", "-c", &script]).context("xdp-filter load")?;
            Ok(Setup::External)
        }
        Peer::Nftables => {
            which("nft")?;
            let setup = attach_bench(base, objects::PASS, dut)?;
            let ports: Vec<String> = drop_ports().iter().map(u16::to_string).collect();
            let rules = format!(
                "table netdev vfbench {{\n chain ingress {{\n  type filter hook ingress device \"{DUT_IF}\" priority 0; policy accept;\n  \
                 udp dport {{ {} }} counter drop\n  @th,64,88 0x494e56495445207369703a counter drop\n }}\n}}\n",
                ports.join(", ")
            );
            let path = std::env::temp_dir().join(format!("vfbench-{}.nft", std::process::id()));
            std::fs::write(&path, rules)?;
            let r = lab.exec(&["nft", "-f", path.to_str().unwrap_or_default()]);
            let _ = std::fs::remove_file(&path);
            r.context("nft -f")?;
            Ok(setup)
        }
    }
}

fn which(tool: &str) -> anyhow::Result<()> {
    sh(Command::new("sh").args(["-c", &format!("command -v {tool}")])).map(|_| ()).with_context(|| format!("{tool} is not installed (cargo xtask setup installs it)"))
}
