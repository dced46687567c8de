//! Loading the embedded XDP object, attaching it, and running it on buffers (BPF_PROG_TEST_RUN).

use anyhow::{Context as _, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, ProgramArray},
    programs::{ProgramError, TestRun, TestRunOptions, Xdp, XdpMode, xdp::XdpLinkId},
};
use voipfilter_common::{
    classify::VerdictRecord,
    maps::{CONFIG, FLOWS, FLOWS4, FLOWS_CAPACITY, flows6_capacity, JUMP, LIST4, LIST6, LIST16, LISTS, MODE_NATIVE, MODE_SKB, POLICY, PROGRAM, TAIL_PROGRAMS},
};

use crate::maps::Maps;

/// The XDP object built by build.rs from voipfilter-ebpf.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/voipfilter"));

/// How to attach: the CLI's `--mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Native (driver) XDP if the driver supports it, else generic (skb) XDP with a warning.
    Auto,
    /// Native (driver) XDP only.
    Native,
    /// Generic XDP in the network stack (slower; works on any interface).
    Skb,
}

/// Options for [`Filter::load`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Prepend a [`VerdictRecord`] to each frame (replay and tests only).
    pub report_verdict: bool,
    /// Flow-table entries (default [`FLOWS_CAPACITY`]): the capacity of `FLOWS4` (IPv4 flows);
    /// `FLOWS` (IPv6 flows) gets a quarter ([`flows6_capacity`]).
    pub flows: Option<u32>,
}

/// A loaded instance of the programs and their maps.
pub struct Filter {
    ebpf: Ebpf,
    /// The programs reached by tail calls. Kept open: the kernel empties a program array when
    /// its last user-space reference goes away.
    _jump: ProgramArray<MapData>,
}

/// One attachment: interface, index and the mode that was used.
#[derive(Debug)]
pub struct Attached {
    pub iface: String,
    pub ifindex: u32,
    pub mode: u8,
    pub link: XdpLinkId,
}

/// Raises RLIMIT_MEMLOCK for kernels that still charge BPF maps to it (before 5.11; later
/// kernels account BPF memory to the cgroup, and a failure here does not matter).
fn raise_memlock() {
    let rlim = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: plain syscall with a valid pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) } != 0 {
        let e = std::io::Error::last_os_error();
        if crate::sys::kernel_at_least(5, 11) {
            log::debug!("could not raise RLIMIT_MEMLOCK ({e}); not needed on this kernel");
        } else {
            log::warn!("could not raise RLIMIT_MEMLOCK ({e}); map creation may fail on kernels before 5.11");
        }
    }
}

impl Filter {
    /// Loads the program into the kernel (not attached) with the default policy and engine
    /// config, the built-in prefix lists (`lists/*.cidr`, embedded) and no rules.
    /// [`Maps::install`] or [`Maps::set_lists`] replace the lists.
    pub fn load(opts: &LoadOptions) -> anyhow::Result<Filter> {
        if OBJECT.is_empty() {
            bail!("this binary was built with AYA_BUILD_SKIP=1 and has no XDP program; rebuild without it");
        }
        crate::sys::require_bpf_privileges()?;
        raise_memlock();
        let report: u8 = opts.report_verdict.into();
        let mut ebpf = EbpfLoader::new()
            .override_global(VerdictRecord::GLOBAL, &report, true)
            .map_max_entries(FLOWS4, opts.flows.unwrap_or(FLOWS_CAPACITY))
            .map_max_entries(FLOWS, flows6_capacity(opts.flows.unwrap_or(FLOWS_CAPACITY)))
            .load(OBJECT)
            .context("loading the voipfilter object into the kernel")?;
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .context("the object has no `voipfilter` program")?
            .try_into()
            .context("the `voipfilter` program is not XDP")?;
        prog.load().map_err(verifier_error).context("the kernel refused the XDP program `voipfilter`")?;
        let mut jump: ProgramArray<MapData> = ebpf
            .take_map(JUMP)
            .context("the object has no JUMP map")?
            .try_into()
            .context("JUMP is not a program array")?;
        for &(name, index) in TAIL_PROGRAMS {
            let prog: &mut Xdp = ebpf
                .program_mut(name)
                .with_context(|| format!("the object has no `{name}` program"))?
                .try_into()
                .with_context(|| format!("the `{name}` program is not XDP"))?;
            prog.load().map_err(verifier_error).with_context(|| format!("the kernel refused the XDP program `{name}`"))?;
            let fd = prog.fd().context("program fd")?;
            jump.set(index, fd, 0).with_context(|| format!("installing `{name}` in JUMP"))?;
        }
        let mut filter = Filter { ebpf, _jump: jump };
        filter.set_defaults()?;
        Ok(filter)
    }

    /// A fresh instance behaves like the daemon's default: the default policy (block every
    /// call), engine config and the built-in lists, without taking the maps out of the object.
    fn set_defaults(&mut self) -> anyhow::Result<()> {
        let mut policy: aya::maps::Array<_, u8> =
            self.ebpf.map_mut(POLICY).context("no POLICY map")?.try_into().context("POLICY is not an array")?;
        for (i, a) in crate::policy::Policy::default().bytes().iter().enumerate() {
            policy.set(i as u32, a, 0).context("writing POLICY")?;
        }
        let mut config: aya::maps::Array<_, voipfilter_common::flow::Config> =
            self.ebpf.map_mut(CONFIG).context("no CONFIG map")?.try_into().context("CONFIG is not an array")?;
        config.set(0, &voipfilter_common::flow::Config::default(), 0).context("writing CONFIG")?;
        let [Some(v4), Some(v6), Some(table), Some(v16), Some(config)] = self.ebpf.maps_disjoint_mut([LIST4, LIST6, LISTS, LIST16, CONFIG]) else {
            bail!("the object lacks one of the maps {LIST4}, {LIST6}, {LISTS}, {LIST16}, {CONFIG}");
        };
        let mut lists = crate::lists::ListMaps {
            v4: v4.try_into().context("LIST4 is not an LPM trie")?,
            v6: v6.try_into().context("LIST6 is not an LPM trie")?,
            table: table.try_into().context("LISTS is not an array")?,
            v16: v16.try_into().context("LIST16 is not an array")?,
        };
        let mut config: aya::maps::Array<_, voipfilter_common::flow::Config> = config.try_into().context("CONFIG is not an array")?;
        lists.replace(&mut config, &crate::lists::builtin_set().entries()).context("installing the built-in lists")?;
        Ok(())
    }

    fn program(&mut self) -> anyhow::Result<&mut Xdp> {
        Ok(self.ebpf.program_mut(PROGRAM).context("no `voipfilter` program")?.try_into()?)
    }

    /// Typed handles on the maps (they stay usable after `self` is dropped, but then the program
    /// is gone).
    pub fn maps(&mut self) -> anyhow::Result<Maps> {
        Maps::from_ebpf(&mut self.ebpf)
    }

    /// Pins every map under `dir` (which must exist, on a bpffs).
    pub fn pin_maps(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        for name in voipfilter_common::maps::ALL {
            let map = self.ebpf.map(name).with_context(|| format!("no map {name} in the object"))?;
            let path = dir.join(name);
            map.pin(&path).with_context(|| format!("pinning {name} at {}", path.display()))?;
        }
        Ok(())
    }

    /// Attaches to `iface` (a name in the calling thread's network namespace).
    pub fn attach(&mut self, iface: &str, mode: Mode) -> anyhow::Result<Attached> {
        let ifindex = crate::sys::ifindex(iface)?;
        let prog = self.program()?;
        let try_mode = |prog: &mut Xdp, m: XdpMode| prog.attach(ifindex, m);
        let (link, used) = match mode {
            Mode::Native => (try_mode(prog, XdpMode::Driver), MODE_NATIVE),
            Mode::Skb => (try_mode(prog, XdpMode::Skb), MODE_SKB),
            Mode::Auto => match try_mode(prog, XdpMode::Driver) {
                Ok(l) => (Ok(l), MODE_NATIVE),
                Err(e) if is_busy(&e) => (Err(e), MODE_NATIVE),
                Err(e) => {
                    log::warn!("{iface}: native XDP not available ({e}); using generic (skb) mode, which is slower");
                    (try_mode(prog, XdpMode::Skb), MODE_SKB)
                }
            },
        };
        let link = link.map_err(|e| attach_error(iface, mode, e))?;
        Ok(Attached { iface: iface.to_string(), ifindex, mode: used, link })
    }

    /// Detaches one attachment.
    pub fn detach(&mut self, a: Attached) -> anyhow::Result<()> {
        let prog = self.program()?;
        prog.detach(a.link).with_context(|| format!("detaching from {}", a.iface))
    }

    /// Runs the program once on `frame` with BPF_PROG_TEST_RUN. Returns the XDP action and, when
    /// loaded with `report_verdict`, the verdict record.
    pub fn run(&mut self, frame: &[u8]) -> anyhow::Result<(u32, Option<VerdictRecord>)> {
        let mut out = vec![0u8; frame.len() + 64];
        self.run_into(frame, &mut out)
    }

    /// [`Filter::run`] into a caller's buffer (replay reuses one), which must hold the frame plus
    /// the 8-byte verdict record.
    pub fn run_into(&mut self, frame: &[u8], out: &mut [u8]) -> anyhow::Result<(u32, Option<VerdictRecord>)> {
        let prog = self.program()?;
        let r = prog
            .test_run(TestRunOptions { data_in: Some(frame), data_out: Some(&mut *out), ..Default::default() })
            .context("BPF_PROG_TEST_RUN")?;
        let n = r.data_size_out as usize;
        let record = (n >= frame.len() + 8)
            .then(|| {
                // SAFETY: 8 initialised bytes; VerdictRecord is plain integers.
                unsafe { std::ptr::read_unaligned(out.as_ptr().cast::<VerdictRecord>()) }
            })
            .filter(|v| v.magic == VerdictRecord::MAGIC);
        Ok((r.return_value, record))
    }

    /// Runs `frame` `repeat` times and returns the kernel's average duration per run (ns).
    pub fn time(&mut self, frame: &[u8], repeat: u32) -> anyhow::Result<(u32, f64)> {
        let prog = self.program()?;
        let r = prog
            .test_run(TestRunOptions { data_in: Some(frame), repeat, ..Default::default() })
            .context("BPF_PROG_TEST_RUN")?;
        Ok((r.return_value, r.duration.as_nanos() as f64))
    }

    /// The underlying aya object (for tools that need more than this API).
    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }
}

fn is_busy(e: &ProgramError) -> bool {
    errno_of(e) == Some(libc::EBUSY) || errno_of(e) == Some(libc::EEXIST)
}

fn errno_of(e: &ProgramError) -> Option<i32> {
    match e {
        ProgramError::SyscallError(s) => s.io_error.raw_os_error(),
        ProgramError::IOError(io) => io.raw_os_error(),
        _ => {
            // Netlink errors carry the errno in their text only.
            let s = format!("{e:?}");
            if s.contains("EBUSY") || s.contains("Device or resource busy") {
                Some(libc::EBUSY)
            } else if s.contains("EEXIST") || s.contains("File exists") {
                Some(libc::EEXIST)
            } else {
                None
            }
        }
    }
}

fn attach_error(iface: &str, mode: Mode, e: ProgramError) -> anyhow::Error {
    if is_busy(&e) {
        anyhow::anyhow!(
            "{iface} already has an XDP program attached by another tool; detach it first \
             (see `ip link show dev {iface}`; e.g. `ip link set dev {iface} xdp off` or `xdp-filter unload {iface}`)"
        )
    } else if mode == Mode::Native {
        anyhow::Error::new(e).context(format!("attaching XDP to {iface} in native mode; try --mode skb or --mode auto"))
    } else {
        anyhow::Error::new(e).context(format!("attaching XDP to {iface}"))
    }
}

/// Turns a load error into one that carries the verifier log.
fn verifier_error(e: ProgramError) -> anyhow::Error {
    match e {
        ProgramError::LoadError { io_error, verifier_log } => {
            anyhow::anyhow!("{io_error}\nverifier log:\n{verifier_log}")
        }
        e => e.into(),
    }
}
