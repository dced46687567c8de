//! Small helpers: min/median/max, the progress line, CPU pinning.

use std::io::Write as _;

/// min / median / max of several runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub min: f64,
    pub median: f64,
    pub max: f64,
    pub n: usize,
}

impl Stats {
    pub fn of(v: &[f64]) -> Stats {
        let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Stats { min: f64::NAN, median: f64::NAN, max: f64::NAN, n: 0 };
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Stats { min: v[0], median, max: v[n - 1], n }
    }

    /// `median (min–max)` with `digits` decimals.
    pub fn show(&self, digits: usize) -> String {
        if self.n == 0 {
            return "n/a".into();
        }
        format!("{:.digits$} ({:.digits$}–{:.digits$})", self.median, self.min, self.max)
    }
}

/// Per-run ratios a[i] / b[i] (both measured in the same run).
pub fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x / y).collect()
}

/// One progress line on stderr, rewritten in place.
pub fn progress(section: &str, what: &str) {
    let mut e = std::io::stderr();
    let line: String = format!("[bench] {section}: {what}").chars().take(110).collect();
    let _ = write!(e, "\r\x1b[2K{line}");
    let _ = e.flush();
}

pub fn progress_done() {
    let _ = write!(std::io::stderr(), "\r\x1b[2K");
}

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> anyhow::Result<()> {
    // SAFETY: a zeroed cpu_set_t is valid; the calls only read/write it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            anyhow::bail!("pinning to CPU {cpu}: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The CPU the benchmark threads run on: the last one (CPU 0 takes most interrupts).
pub fn bench_cpu() -> usize {
    std::thread::available_parallelism().map(|n| n.get() - 1).unwrap_or(0)
}

/// Runs a command, returns stdout; an error names the command and carries stderr.
pub fn sh(cmd: &mut std::process::Command) -> anyhow::Result<String> {
    let out = cmd.stdin(std::process::Stdio::null()).output().map_err(|e| anyhow::anyhow!("running {cmd:?}: {e}"))?;
    if !out.status.success() {
        anyhow::bail!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
