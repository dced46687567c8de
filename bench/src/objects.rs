//! The benchmark's own XDP object (bench/ebpf): baselines, the new-flow wrapper and the
//! live-frames generator.

use anyhow::{Context as _, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, ProgramArray},
    programs::{ProgramFd, TestRun, TestRunAttrs, TestRunOptions, Xdp},
};

pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/voipfilter-bench"));

pub const PASS: &str = "bench_pass";
pub const DROP: &str = "bench_drop";
pub const REF: &str = "bench_ref";
pub const REF_NEW: &str = "bench_ref_new";
pub const NEWFLOW: &str = "bench_newflow";
pub const GEN: &str = "bench_gen";
const ALL: [&str; 6] = [PASS, DROP, REF, REF_NEW, NEWFLOW, GEN];

/// CONF slots (bench/ebpf/src/main.rs).
pub const CONF_STAMP: u32 = 0;
pub const CONF_IFINDEX: u32 = 1;
pub const CONF_TEMPLATES: u32 = 2;
pub const TEMPLATE_LEN: usize = 64;

/// The reference's key (RefKey in the eBPF crate).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RefKey {
    pub src: u32,
    pub dst: u32,
    pub sport: u16,
    pub dport: u16,
    pub proto: u32,
}
// SAFETY: plain integers, no padding.
unsafe impl aya::Pod for RefKey {}

pub struct Baselines {
    ebpf: Ebpf,
    next: ProgramArray<MapData>,
    conf: Array<MapData, u32>,
}

impl Baselines {
    pub fn load() -> anyhow::Result<Baselines> {
        if OBJECT.is_empty() {
            bail!("this binary was built with AYA_BUILD_SKIP=1 and has no baseline programs; rebuild without it");
        }
        let mut ebpf = EbpfLoader::new().load(OBJECT).context("loading the benchmark object (bench/ebpf)")?;
        for name in ALL {
            let p: &mut Xdp = ebpf.program_mut(name).with_context(|| format!("no program {name}"))?.try_into()?;
            p.load().with_context(|| format!("the kernel refused {name}"))?;
        }
        let next = ebpf.take_map("NEXT").context("no NEXT map")?.try_into()?;
        let conf = ebpf.take_map("CONF").context("no CONF map")?.try_into()?;
        Ok(Baselines { ebpf, next, conf })
    }

    pub fn prog(&mut self, name: &str) -> anyhow::Result<&mut Xdp> {
        Ok(self.ebpf.program_mut(name).with_context(|| format!("no program {name}"))?.try_into()?)
    }

    pub fn fd(&mut self, name: &str) -> anyhow::Result<ProgramFd> {
        Ok(self.prog(name)?.fd()?.try_clone()?)
    }

    /// Average ns per run of `name` on `frame`, over `repeat` runs.
    pub fn time(&mut self, name: &str, frame: &[u8], repeat: u32) -> anyhow::Result<(u32, f64)> {
        time(self.prog(name)?, frame, repeat)
    }

    pub fn set_conf(&mut self, slot: u32, v: u32) -> anyhow::Result<()> {
        self.conf.set(slot, &v, 0).context("writing CONF")
    }

    /// The program `bench_newflow` tail-calls.
    pub fn set_next(&mut self, fd: &ProgramFd) -> anyhow::Result<()> {
        self.next.set(0, fd, 0).context("writing NEXT")
    }

    /// The generator's mix: each template is one 64-byte frame; frames cycle through them.
    pub fn set_mix(&mut self, templates: &[[u8; TEMPLATE_LEN]]) -> anyhow::Result<()> {
        let mut mix: Array<_, [u8; TEMPLATE_LEN]> = self.ebpf.map_mut("MIX").context("no MIX map")?.try_into()?;
        for (i, t) in templates.iter().enumerate() {
            mix.set(i as u32, t, 0).context("writing MIX")?;
        }
        self.set_conf(CONF_TEMPLATES, templates.len() as u32)
    }

    /// Inserts the 5-tuple of an Ethernet/IPv4/UDP frame into the reference's table.
    pub fn ref_insert(&mut self, frame: &[u8]) -> anyhow::Result<()> {
        let key = ref_key(frame).context("the reference needs an Ethernet/IPv4/UDP frame")?;
        let mut m: HashMap<_, RefKey, u64> = self.ebpf.map_mut("REF_FLOWS").context("no REF_FLOWS")?.try_into()?;
        m.insert(&key, &1, 0).context("REF_FLOWS insert")
    }

    /// Fills the reference's table with `n` other keys (a full 1M-entry table by default).
    pub fn ref_fill(&mut self, n: u32) -> anyhow::Result<()> {
        let mut m: HashMap<_, RefKey, u64> = self.ebpf.map_mut("REF_FLOWS").context("no REF_FLOWS")?.try_into()?;
        for i in 0..n {
            let k = RefKey { src: 0x0A00_0000 | i, dst: 0xC633_6414u32.to_be(), sport: 7, dport: 9, proto: 17 };
            m.insert(&k, &1, 0).context("REF_FLOWS insert")?;
        }
        Ok(())
    }
}

pub fn ref_key(f: &[u8]) -> Option<RefKey> {
    if f.len() < 42 || f[12..14] != [0x08, 0x00] || f[23] != 17 {
        return None;
    }
    let l4 = 14 + usize::from(f[14] & 0x0F) * 4;
    let ne = |o: usize| u32::from_ne_bytes(f[o..o + 4].try_into().unwrap_or_default());
    let ne16 = |o: usize| u16::from_ne_bytes(f.get(o..o + 2).and_then(|s| s.try_into().ok()).unwrap_or_default());
    Some(RefKey { src: ne(26), dst: ne(30), sport: ne16(l4), dport: ne16(l4 + 2), proto: 17 })
}

pub fn time(prog: &mut Xdp, frame: &[u8], repeat: u32) -> anyhow::Result<(u32, f64)> {
    let r = prog.test_run(TestRunOptions { data_in: Some(frame), repeat, ..Default::default() }).context("BPF_PROG_TEST_RUN")?;
    Ok((r.return_value, r.duration.as_nanos() as f64))
}

/// Sends `count` copies of `frame` through `prog` in live-frames mode (the program redirects
/// them); returns the wall time.
pub fn live(prog: &mut Xdp, frame: &[u8], count: u32) -> anyhow::Result<std::time::Duration> {
    let t = std::time::Instant::now();
    prog.test_run(TestRunOptions {
        data_in: Some(frame),
        repeat: count,
        attrs: TestRunAttrs::new().xdp_live_frames(64),
        ..Default::default()
    })
    .context("BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES")?;
    Ok(t.elapsed())
}
