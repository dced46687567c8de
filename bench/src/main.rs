//! `voipfilter-bench`: per-packet cost, live throughput, corpus classification, scaling and
//! control-plane figures for voipfilter, each next to a baseline measured in the same run, as a
//! markdown report with PNG charts. `cargo xtask bench` builds and runs it; it needs root.

mod classes;
mod corpus;
mod live;
mod netns;
mod objects;
mod report;
mod scaling;
mod util;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

#[derive(Parser)]
#[command(name = "voipfilter-bench", about = "Benchmark voipfilter against baselines and peers (needs root)")]
struct Args {
    /// Fewer runs and repetitions: under a minute, for checking the plumbing.
    #[arg(long)]
    quick: bool,
    /// Runs of each measurement (min/median/max are over these); default 5 (quick: 3).
    #[arg(long)]
    runs: Option<usize>,
    /// Directory for the report and its charts.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// The corpus (pcap/ and labels/).
    #[arg(long, default_value = "../shared/corpus")]
    corpus: PathBuf,
    /// Sections to run, comma-separated: cost, live, corpus, scaling, control.
    #[arg(long, default_value = "cost,live,corpus,scaling,control", value_delimiter = ',')]
    only: Vec<String>,
    /// Cost section: only the classes whose name contains one of these (comma-separated),
    /// e.g. `--classes "new,TCP"` for a quick look while profiling.
    #[arg(long, value_delimiter = ',')]
    classes: Vec<String>,
    /// Report file name (default `<date>-<host>.md`).
    #[arg(long)]
    name: Option<String>,
}

fn main() -> std::process::ExitCode {
    netns::install_signal_cleanup();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match run(&Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            util::progress_done();
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(a: &Args) -> anyhow::Result<()> {
    voipfilter::sys::require_bpf_privileges()?;
    let runs = a.runs.unwrap_or(if a.quick { 3 } else { 5 });
    let (repeat, new_repeat, frames, scale_repeat) = if a.quick { (100_000, 10_000, 300_000, 50_000) } else { (1_000_000, 50_000, 2_000_000, 200_000) };
    let want = |s: &str| a.only.iter().any(|x| x == s);
    let cpu = util::bench_cpu();
    let mut rep = report::Report {
        machine: machine(),
        settings: format!(
            "{}; {runs} runs; test-run repeat {repeat}, new-flow repeat {new_repeat}; {frames} live frames a run; threads pinned to CPU {cpu}",
            if a.quick { "--quick" } else { "default settings" }
        ),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let err = |e: anyhow::Error| format!("{e:#}");
    if want("cost") {
        util::pin_to_cpu(cpu)?;
        rep.cost = Some((|| {
            let mut f = classes::load_filter()?;
            let mut b = objects::Baselines::load()?;
            classes::run(&mut f, &mut b, runs, repeat, new_repeat, &a.classes)
        })()
        .map_err(err));
    }
    if want("live") {
        rep.live = Some(live::run(runs.min(3), frames, cpu).map_err(err));
    }
    if want("corpus") {
        util::pin_to_cpu(cpu)?;
        rep.corpus = Some(corpus::run(&a.corpus, runs.min(3)).map_err(err));
    }
    if want("scaling") {
        util::pin_to_cpu(cpu)?;
        rep.scaling = Some(scaling::run(runs.min(3), scale_repeat, a.quick).map_err(err));
    }
    if want("control") {
        rep.control = Some(scaling::control(if a.quick { 1 } else { 3 }).map_err(err));
    }
    util::progress_done();
    rep.settings.push_str(&format!("; took {:.0} s", started.elapsed().as_secs_f64()));
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let stem = a.name.clone().unwrap_or_else(|| format!("{}-{}", today(), host()));
    let stem = stem.trim_end_matches(".md").to_string();
    if let Err(e) = rep.charts(&a.out, &stem) {
        eprintln!("warning: no charts: {e:#}");
    }
    let md = rep.markdown();
    let path = a.out.join(format!("{stem}.md"));
    std::fs::write(&path, &md).with_context(|| format!("writing {}", path.display()))?;
    println!("\nTargets:");
    for (t, m, ok) in rep.targets() {
        let v = match ok {
            Some(true) => "pass",
            Some(false) => "MISS",
            None => "-",
        };
        println!("  {v:4}  {t}: {m}");
    }
    println!("report: {}", path.display());
    Ok(())
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    util::sh(std::process::Command::new(cmd).args(args))
        .map(|s| s.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string())
        .unwrap_or_else(|_| "not installed".into())
}

fn machine() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())).unwrap_or_default();
    let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default().lines().next().unwrap_or("").split_whitespace().nth(1).and_then(|k| k.parse::<u64>().ok()).unwrap_or(0);
    let ndpi = util::sh(std::process::Command::new("sh").args(["-c", "dpkg-query -W -f '${Version}' libndpi-bin 2>/dev/null"])).unwrap_or_default();
    vec![
        ("host".into(), host()),
        ("CPU".into(), format!("{model} × {ncpu}")),
        ("memory".into(), format!("{:.1} GiB", mem as f64 / 1048576.0)),
        ("kernel".into(), first_line("uname", &["-r"])),
        ("voipfilter".into(), format!("{} ({})", env!("CARGO_PKG_VERSION"), first_line("git", &["rev-parse", "--short", "HEAD"]))),
        ("rustc".into(), first_line("rustc", &["--version"])),
        ("aya".into(), "0.16.0 (aya-ebpf 0.3.0)".into()),
        ("xdp-filter".into(), first_line("sh", &["-c", "dpkg-query -W -f '${Version}' xdp-tools 2>/dev/null"])),
        ("nftables".into(), first_line("nft", &["--version"])),
        ("ndpiReader".into(), if ndpi.is_empty() { "not installed".into() } else { format!("libndpi-bin {ndpi}") }),
    ]
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "host".into())
}

fn today() -> String {
    first_line("date", &["+%Y-%m-%d"])
}
