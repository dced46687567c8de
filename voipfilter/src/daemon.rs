//! `voipfilter run`: load, install rules, pin maps, attach, wait for a signal, detach.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use voipfilter_common::maps::{self as names, LAYOUT_VERSION, MAX_IFACES, META_MAGIC, Meta};

use crate::{
    config::{self, Settings},
    lists::Source,
    load::{Filter, LoadOptions, Mode},
    sys,
};

pub struct RunOptions {
    pub ifaces: Vec<String>,
    pub mode: Mode,
    pub config: Option<PathBuf>,
    pub pin_dir: PathBuf,
    /// `--lists`: list sources replacing the config's `lists` (empty: the config's, else the
    /// built-in lists).
    pub lists: Vec<String>,
}

/// Removes the pins (and the directory) when dropped, so that an instance leaves nothing behind
/// however it ends.
struct Pins<'a>(&'a Path);

impl Pins<'_> {
    fn clear(dir: &Path) {
        for name in names::ALL {
            let p = dir.join(name);
            if p.exists() && let Err(e) = std::fs::remove_file(&p) {
                log::warn!("could not remove {}: {e}", p.display());
            }
        }
    }
}

impl Drop for Pins<'_> {
    fn drop(&mut self) {
        Pins::clear(self.0);
        let _ = std::fs::remove_dir(self.0);
    }
}

pub async fn run(opts: RunOptions) -> anyhow::Result<()> {
    // Take SIGINT/SIGTERM from the start: one that arrives while the program is being loaded and
    // pinned then stops the daemon once set-up is done, through the same clean-up, instead of
    // killing it with its pins in place.
    let mut signals = Signals::new()?;
    sys::require_bpf_privileges()?;
    if opts.ifaces.is_empty() {
        anyhow::bail!("no interface given: use --iface IF (repeatable)");
    }
    if opts.ifaces.len() > MAX_IFACES {
        anyhow::bail!("at most {MAX_IFACES} interfaces per instance");
    }
    let mut settings = match &opts.config {
        Some(p) => config::load(p)?,
        None => Settings::default(),
    };
    if !opts.lists.is_empty() {
        let sources: Vec<Source> = opts.lists.iter().map(|s| Source::parse(s, None)).collect();
        settings.lists = crate::lists::read_sources(&sources).context("--lists")?;
    }
    for i in &opts.ifaces {
        sys::ifindex(i)?;
    }
    sys::ensure_bpffs(&opts.pin_dir)?;
    let _lock = sys::InstanceLock::acquire(&opts.pin_dir)?;
    if names::ALL.iter().any(|n| opts.pin_dir.join(n).exists()) {
        log::warn!("removing stale pins in {} left by an instance that did not exit cleanly", opts.pin_dir.display());
        Pins::clear(&opts.pin_dir);
    }
    let _pins = Pins(&opts.pin_dir);

    let mut filter = Filter::load(&LoadOptions { flows: Some(settings.flows), ..LoadOptions::default() })?;
    filter.pin_maps(&opts.pin_dir)?;
    let mut maps = filter.maps()?;
    let (n_ports, n_prefixes) = maps.install(&settings)?;
    log::info!(
        "installed the policy, {n_ports} port rules and {n_prefixes} prefix rules{}; flow tables: {} IPv4 and {} IPv6 entries",
        opts.config.as_ref().map(|p| format!(" from {}", p.display())).unwrap_or_else(|| " (built-in default: block every call)".into()),
        settings.flows,
        voipfilter_common::maps::flows6_capacity(settings.flows)
    );
    log::info!("prefix lists: {}", crate::lists::summary(&settings.lists));

    let mut attached = Vec::new();
    for iface in &opts.ifaces {
        let a = filter.attach(iface, opts.mode)?;
        log::info!("attached to {} ({} mode)", a.iface, if a.mode == names::MODE_NATIVE { "native" } else { "skb" });
        attached.push(a);
    }
    let mut meta = Meta {
        magic: META_MAGIC,
        layout: LAYOUT_VERSION,
        loaded_unix_ns: sys::unix_ns(),
        pid: std::process::id(),
        n_ifaces: attached.len() as u32,
        ifindex: [0; MAX_IFACES],
        mode: [0; MAX_IFACES],
    };
    for (i, a) in attached.iter().enumerate() {
        meta.ifindex[i] = a.ifindex;
        meta.mode[i] = a.mode;
    }
    maps.set_meta(&meta)?;
    log::info!("running; maps pinned under {}; stop with Ctrl-C or SIGTERM", opts.pin_dir.display());

    signals.wait().await;

    for a in attached {
        let name = a.iface.clone();
        match filter.detach(a) {
            Ok(()) => log::info!("detached from {name}"),
            Err(e) => log::warn!("{e:#}"),
        }
    }
    drop(maps);
    drop(filter);
    log::info!("stopped; removed pins under {}", opts.pin_dir.display());
    Ok(())
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => log::info!("SIGTERM received"),
            _ = self.int.recv() => log::info!("SIGINT received"),
        }
    }
}
