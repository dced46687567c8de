//! Per-packet cost of the real XDP programs, by traffic class, with BPF_PROG_TEST_RUN.
//!
//! ```sh
//! sudo voipfilter bench [--repeat N] [--rounds N]
//! sudo -E cargo run --release -p voipfilter --example perf [-- REPEAT [ROUNDS]]
//! ```
//!
//! (`cargo xtask bench` is the full benchmark: live throughput, peers, scaling, a report.)
//!
//! Prints the kernel's average ns per packet for each class, next to two reference programs
//! measured in the same run (`voipfilter-ebpf/src/reference.rs`, in the same object but never
//! loaded by the daemon): an empty XDP program, and one that parses Ethernet/IPv4/UDP and does
//! one lookup in an LRU hash of 1M entries. Each class is timed `ROUNDS` times (default 9) with
//! `REPEAT` runs of the same frame (default 1,000,000); the best (lowest) is shown, since
//! other load on the machine only ever adds time. The programs are
//! loaded with the daemon's defaults (flow table of 1M entries, default policy, no rules, no
//! verdict record).
//!
//! The first packet of a new flow cannot be repeated (the second run finds the flow), so those
//! classes run once on each of many distinct frames; the kernel's timer then adds its own
//! overhead, measured on the empty program in the same way and subtracted (the line shows the
//! raw figure too). The reference program measured the same way (a lookup miss and an insert
//! into its 1M-entry LRU hash) shows what a new flow costs any flow table on this machine.
//!
//! With `PERF_HOLD=1` the programs stay loaded for 10 minutes after the run, and their ids are
//! printed (for `bpftool prog dump xlated id N`).
//!
//! With `PERF_OBJECTS=a.o,b.o,...` it compares built objects (e.g. copies of
//! `voipfilter-ebpf`'s output before and after a change) in one run instead: each is loaded like
//! the daemon loads the embedded one, and the rounds of every class alternate between them, so
//! that the machine's load affects all of them alike. Only the repeatable classes are timed;
//! the verifier counts of each object are printed after them.

use anyhow::Context as _;
use aya::{
    Ebpf, EbpfLoader,
    programs::{TestRun, TestRunOptions, Xdp},
};
use crate::load::{Filter, LoadOptions, OBJECT};
use voipfilter_common::{
    maps::{FLOWS, FLOWS4},
    user::frame::Frame,
};

const CLIENT: [u8; 4] = [10, 1, 0, 5];
const SERVER: [u8; 4] = [198, 51, 100, 7];
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

/// Distinct frames run once each for the new-flow classes.
const NEW_FLOWS: u32 = 20_000;

/// Default runs of each frame per round.
pub const DEFAULT_REPEAT: u32 = 1_000_000;
/// Default rounds (the best is shown).
pub const DEFAULT_ROUNDS: usize = 9;

/// `voipfilter bench` and `cargo run --example perf`: times every class with `repeat` runs per
/// round, best of `rounds`, and prints the table (environment knobs in the module docs).
pub fn run(repeat: u32, rounds: usize) -> anyhow::Result<()> {
    crate::sys::require_bpf_privileges()?;
    anyhow::ensure!(repeat > 0 && rounds > 0, "--repeat and --rounds must be at least 1");

    if let Ok(list) = std::env::var("PERF_OBJECTS") {
        return compare(&list.split(',').map(String::from).collect::<Vec<_>>(), repeat, rounds);
    }
    let mut refs = References::load()?;
    let mut f = Filter::load(&LoadOptions::default())?;

    let empty = best(rounds, || refs.time("voipfilter_ref_empty", &udp(40000, 443, &[0x43; 40]), repeat))?;
    let reference = best(rounds, || refs.time("voipfilter_ref_lookup", &udp(40000, 443, &[0x43; 40]), repeat))?;
    println!("per-packet cost (BPF_PROG_TEST_RUN, repeat {repeat}, best of {rounds}), ns/packet");
    println!("  {:<40} {:>7.1}", "empty XDP program (reference)", empty);
    println!("  {:<40} {:>7.1}", "parse + 1M LRU lookup (reference)", reference);
    println!("  {:<40} {:>7}  {:>6}  {:>8}  {}", "class", "ns", "ratio", "target", "verdict");

    let show = |name: &str, ns: f64, base: f64, base_name: &str, limit: f64, ret: u32| {
        let ratio = ns / base;
        let ok = if ratio <= limit { "ok" } else { "OVER" };
        let action = match ret {
            XDP_DROP => "drop",
            XDP_PASS => "pass",
            _ => "other",
        };
        println!("  {name:<40} {ns:>7.1}  {ratio:>5.2}x  {limit:>4.1}x {base_name:<6} {ok:<4} {action}");
    };

    // Traffic that needs no flow state.
    let tcp_ack = Frame::tcp4(CLIENT, 40000, SERVER, 443, 0x10, b"").build();
    let mut tls = vec![0x17, 0x03, 0x03, 0x04, 0x00];
    tls.extend_from_slice(&[0xA5; 1024]);
    let tls = Frame::tcp4(SERVER, 443, CLIENT, 40000, 0x18, &tls).build();
    let dns = udp(53000, 53, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01");
    for (name, frame) in [("TCP ACK", &tcp_ack), ("TLS segment (1 KiB)", &tls), ("DNS query", &dns)] {
        if !want(name) {
            continue;
        }
        let (ret, ns) = f.best(rounds, frame, repeat)?;
        show(name, ns, empty, "empty", 2.0, ret);
    }

    // Established flows: prime the flow table, then repeat a packet of the flow.
    let quic = udp(51000, 443, &quic_short(0));
    for _ in 0..20 {
        f.run(&quic)?;
    }
    let (ret, ns) = f.best(rounds, &quic, if want("established") { repeat } else { 1 })?;
    show("established non-call UDP flow", ns, reference, "lookup", 1.3, ret);

    f.run(&udp(40000, 5060, &invite()))?;
    let sip = udp(40000, 5060, &bye());
    let (ret, ns) = f.best(rounds, &sip, if want("decided") { repeat } else { 1 })?;
    show("decided SIP flow (BYE, dropped)", ns, reference, "lookup", 1.3, ret);

    let rtp = udp(30000, 30002, &rtp_shaped());
    for _ in 0..20 {
        f.run(&rtp)?;
    }
    let (ret, ns) = f.best(rounds, &rtp, if want("RTP-shaped not") { repeat } else { 1 })?;
    show("RTP-shaped not-a-call flow", ns, reference, "lookup", 1.3, ret);

    // First packets of new flows: each frame once.
    let once = |p: &mut dyn FnMut(&[u8]) -> anyhow::Result<(u32, f64)>, make: &dyn Fn(u32) -> Vec<u8>| {
        let frames: Vec<Vec<u8>> = (0..NEW_FLOWS).map(make).collect();
        let mut total = 0.0;
        let mut ret = 0;
        for fr in &frames {
            let (r, ns) = p(fr)?;
            total += ns;
            ret = r;
        }
        anyhow::Ok((ret, total / NEW_FLOWS as f64))
    };
    let (_, empty_once) = once(&mut |fr| refs.time("voipfilter_ref_empty", fr, 1), &|i| new_udp(i, 1, &quic_short(i)))?;
    println!("  (run once per frame: empty program {empty_once:.1} ns; subtracted from the new-flow lines below, then the empty program's repeated cost added back)");
    // What any flow table pays for a new flow: the reference's parse, lookup miss and insert.
    let (_, ref_once) = once(&mut |fr| refs.time("voipfilter_ref_lookup", fr, 1), &|i| new_udp(i, 5, &quic_short(i)))?;
    let ref_new = ref_once - empty_once + empty;
    println!(
        "  {:<40} {:>7.1}  {:>5.2}x  (parse + lookup miss + insert into the 1M LRU hash, run once per frame)",
        "new flow in the reference", ref_new, ref_new / empty
    );
    let new_flow_classes: [(&str, &dyn Fn(u32) -> Vec<u8>); 3] = [
        ("new UDP flow, not a call (QUIC-like)", &|i| new_udp(i, 2, &quic_short(i))),
        ("new UDP flow, RTP-shaped", &|i| new_udp(i, 3, &rtp_shaped())),
        ("new UDP flow, SIP INVITE (dropped)", &|i| new_udp(i, 4, &invite())),
    ];
    for (name, make) in new_flow_classes {
        if !want(name) {
            continue;
        }
        let (ret, raw) = once(&mut |fr| f.time(fr, 1), make)?;
        let ns = raw - empty_once + empty;
        show(name, ns, empty, "empty", 10.0, ret);
        println!("  {:<40} {:>7.1}  (raw, run once per frame); {:.2}x the reference's new flow", "", raw, ns / ref_new);
    }
    if std::env::var_os("PERF_HOLD").is_some() {
        // Keep the programs loaded for `bpftool prog dump xlated/jited id N`.
        for name in ["voipfilter", "voipfilter_tunnel", "voipfilter_fast", "voipfilter_detect", "voipfilter_text", "voipfilter_inspect"] {
            let info = f.ebpf_mut().program(name).context("program")?.info()?;
            println!("  {name}: id {}", info.id());
        }
        std::thread::sleep(std::time::Duration::from_secs(600));
    }
    Ok(())
}

/// The repeatable classes: name, frame, frames to run first (to prime the flow table).
fn repeatable() -> Vec<(&'static str, Vec<u8>, Vec<u8>, usize)> {
    let tcp_ack = Frame::tcp4(CLIENT, 40000, SERVER, 443, 0x10, b"").build();
    let mut tls = vec![0x17, 0x03, 0x03, 0x04, 0x00];
    tls.extend_from_slice(&[0xA5; 1024]);
    let tls = Frame::tcp4(SERVER, 443, CLIENT, 40000, 0x18, &tls).build();
    let dns = udp(53000, 53, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01");
    let quic = udp(51000, 443, &quic_short(0));
    let invite = udp(40000, 5060, &invite());
    let sip = udp(40000, 5060, &bye());
    let rtp = udp(30000, 30002, &rtp_shaped());
    vec![
        ("TCP ACK", tcp_ack.clone(), tcp_ack, 0),
        ("TLS segment (1 KiB)", tls.clone(), tls, 0),
        ("DNS query", dns.clone(), dns, 0),
        ("established non-call UDP flow", quic.clone(), quic, 20),
        ("decided SIP flow (BYE, dropped)", sip, invite, 1),
        ("RTP-shaped not-a-call flow", rtp.clone(), rtp, 20),
    ]
}

/// `PERF_OBJECTS`: the repeatable classes on several objects, rounds alternating.
fn compare(paths: &[String], repeat: u32, rounds: usize) -> anyhow::Result<()> {
    let mut objs = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
        objs.push(load_object(&bytes).with_context(|| format!("loading {path}"))?);
    }
    let mut refs = References::load()?;
    let classes: Vec<_> = repeatable().into_iter().filter(|c| want(c.0)).collect();
    for (_, _, prime, n) in &classes {
        for o in objs.iter_mut() {
            for _ in 0..*n {
                run_prog(o, "voipfilter", prime, 1)?;
            }
        }
    }
    let mut best = vec![vec![f64::MAX; objs.len()]; classes.len() + 2];
    let mut ret = vec![vec![0; objs.len()]; classes.len()];
    let empty_frame = udp(40000, 443, &[0x43; 40]);
    for _ in 0..rounds.max(1) {
        for (r, name) in ["voipfilter_ref_empty", "voipfilter_ref_lookup"].iter().enumerate() {
            let ns = refs.time(name, &empty_frame, repeat)?.1;
            for b in best[r].iter_mut() {
                *b = b.min(ns);
            }
        }
        for (c, (_, frame, _, _)) in classes.iter().enumerate() {
            for (i, o) in objs.iter_mut().enumerate() {
                let (r, ns) = run_prog(o, "voipfilter", frame, repeat)?;
                best[c + 2][i] = best[c + 2][i].min(ns);
                ret[c][i] = r;
            }
        }
    }
    println!("per-packet cost (BPF_PROG_TEST_RUN, repeat {repeat}, best of {rounds}, rounds alternating), ns/packet");
    for (i, p) in paths.iter().enumerate() {
        println!("  [{i}] {p}");
    }
    print!("  {:<40}", "class");
    for i in 0..objs.len() {
        print!(" {:>7}", format!("[{i}]"));
    }
    println!();
    let names = ["empty XDP program (reference)", "parse + 1M LRU lookup (reference)"];
    for (r, name) in names.iter().enumerate() {
        println!("  {name:<40} {:>7.1}", best[r][0]);
    }
    for (c, (name, _, _, _)) in classes.iter().enumerate() {
        print!("  {name:<40}");
        for i in 0..objs.len() {
            print!(" {:>7.1}", best[c + 2][i]);
        }
        let rets: Vec<_> = ret[c].iter().map(|r| if *r == XDP_DROP { "drop" } else { "pass" }).collect();
        println!("  {}", rets.join(" "));
    }
    println!("  instructions processed by the verifier");
    let names = std::iter::once(voipfilter_common::maps::PROGRAM).chain(voipfilter_common::maps::TAIL_PROGRAMS.iter().map(|p| p.0));
    for name in names {
        print!("  {name:<40}");
        for o in objs.iter() {
            let n = o.program(name).and_then(|p| p.info().ok()).and_then(|i| i.verified_instruction_count());
            print!(" {:>7}", n.map_or("-".to_string(), |n| n.to_string()));
        }
        println!();
    }
    Ok(())
}

/// Loads an object as `Filter::load` does (default policy and config, 1M-entry flow table).
fn load_object(bytes: &[u8]) -> anyhow::Result<Ebpf> {
    use aya::maps::{Array, ProgramArray};
    use voipfilter_common::maps::{CONFIG, JUMP, POLICY, PROGRAM, TAIL_PROGRAMS};
    let mut ebpf = EbpfLoader::new().load(bytes)?;
    let p: &mut Xdp = ebpf.program_mut(PROGRAM).context("program")?.try_into()?;
    p.load()?;
    let mut jump: ProgramArray<_> = ebpf.take_map(JUMP).context("JUMP")?.try_into()?;
    for &(name, index) in TAIL_PROGRAMS {
        let p: &mut Xdp = ebpf.program_mut(name).context("program")?.try_into()?;
        p.load().with_context(|| format!("loading {name}"))?;
        jump.set(index, p.fd()?, 0)?;
    }
    // Keep the program array alive with the object.
    std::mem::forget(jump);
    let mut policy: Array<_, u8> = ebpf.map_mut(POLICY).context("POLICY")?.try_into()?;
    for (i, a) in crate::policy::Policy::default().bytes().iter().enumerate() {
        policy.set(i as u32, a, 0)?;
    }
    if let Some(m) = ebpf.map_mut(CONFIG) {
        let mut config: Array<_, voipfilter_common::flow::Config> = m.try_into()?;
        config.set(0, &voipfilter_common::flow::Config::default(), 0)?;
    }
    Ok(ebpf)
}

fn run_prog(ebpf: &mut Ebpf, name: &str, frame: &[u8], repeat: u32) -> anyhow::Result<(u32, f64)> {
    let p: &mut Xdp = ebpf.program_mut(name).context("program")?.try_into()?;
    let r = p.test_run(TestRunOptions { data_in: Some(frame), repeat, ..Default::default() })?;
    Ok((r.return_value, r.duration.as_nanos() as f64))
}

/// With `PERF_ONLY=TEXT`, only the classes whose name contains TEXT run their repeats (for
/// `perf record`).
fn want(name: &str) -> bool {
    std::env::var("PERF_ONLY").map_or(true, |w| name.contains(&w))
}

/// The reference programs, loaded from the same object with their own maps.
struct References {
    ebpf: Ebpf,
}

impl References {
    fn load() -> anyhow::Result<References> {
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("REF_FLOWS", 1 << 20)
            .map_max_entries(FLOWS, 1)
            .map_max_entries(FLOWS4, 1)
            .load(OBJECT)
            .context("loading the object")?;
        for name in ["voipfilter_ref_empty", "voipfilter_ref_lookup"] {
            let p: &mut Xdp = ebpf.program_mut(name).with_context(|| format!("no program {name}"))?.try_into()?;
            p.load().with_context(|| format!("loading {name}"))?;
        }
        Ok(References { ebpf })
    }

    fn time(&mut self, name: &str, frame: &[u8], repeat: u32) -> anyhow::Result<(u32, f64)> {
        let p: &mut Xdp = self.ebpf.program_mut(name).context("program")?.try_into()?;
        let r = p.test_run(TestRunOptions { data_in: Some(frame), repeat, ..Default::default() })?;
        Ok((r.return_value, r.duration.as_nanos() as f64))
    }
}

trait Best {
    fn best(&mut self, rounds: usize, frame: &[u8], repeat: u32) -> anyhow::Result<(u32, f64)>;
}

impl Best for Filter {
    fn best(&mut self, rounds: usize, frame: &[u8], repeat: u32) -> anyhow::Result<(u32, f64)> {
        let mut ret = 0;
        let ns = best(rounds, || {
            let (r, ns) = self.time(frame, repeat)?;
            ret = r;
            Ok((r, ns))
        })?;
        Ok((ret, ns))
    }
}

fn best(rounds: usize, mut f: impl FnMut() -> anyhow::Result<(u32, f64)>) -> anyhow::Result<f64> {
    let mut v = Vec::with_capacity(rounds);
    for _ in 0..rounds.max(1) {
        v.push(f()?.1);
    }
    v.sort_by(f64::total_cmp);
    Ok(v[0])
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    Frame::udp4(CLIENT, sport, SERVER, dport, payload).build()
}

/// A new flow per `i`: distinct client address and port, high server port.
fn new_udp(i: u32, class: u8, payload: &[u8]) -> Vec<u8> {
    let src = [10, class, (i >> 8) as u8, i as u8];
    Frame::udp4(src, 20000 + (i % 30000) as u16, SERVER, 40000 + class as u16, payload).build()
}

/// A QUIC short-header packet (not a call).
fn quic_short(i: u32) -> Vec<u8> {
    let mut p = vec![0x43];
    p.extend_from_slice(&i.to_be_bytes());
    p.extend(std::iter::repeat_n(0x5A, 1195));
    p
}

/// An RTP header (PT 0) followed by 160 bytes: the same packet repeated never confirms a stream.
fn rtp_shaped() -> Vec<u8> {
    let mut p = vec![0x80, 0x00, 0x12, 0x34, 0, 0, 0x10, 0, 0xDE, 0xAD, 0xBE, 0xEF];
    p.extend_from_slice(&[0xD5; 160]);
    p
}

/// A BYE in the dialog of [`invite`] (no body: decided SIP flows answer it on the fast path;
/// messages that may carry SDP go back to the detectors, see `engine::established`).
fn bye() -> Vec<u8> {
    b"BYE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.0.5:5060;branch=z9hG4bKbye\r\nTo: <sip:bob@example.com>;tag=a6c85cf\r\nFrom: <sip:alice@example.com>;tag=1928301774\r\nCall-ID: a84b4c76e66710\r\nCSeq: 314160 BYE\r\nContent-Length: 0\r\n\r\n".to_vec()
}

fn invite() -> Vec<u8> {
    let sdp = "v=0\r\no=- 1 1 IN IP4 10.1.0.5\r\ns=-\r\nc=IN IP4 10.1.0.5\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n";
    format!(
        "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.0.5:5060;branch=z9hG4bK776asdhds\r\nMax-Forwards: 70\r\nTo: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=1928301774\r\nCall-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nContact: <sip:alice@10.1.0.5>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}
