//! Small OS helpers: privileges, interfaces, bpffs, the instance lock.

use std::{
    ffi::CString,
    fs::File,
    os::{fd::AsRawFd as _, unix::ffi::OsStrExt as _},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Fails with a one-line hint unless the process may load BPF programs and attach XDP.
pub fn require_bpf_privileges() -> anyhow::Result<()> {
    let caps = effective_caps();
    let has = |c: u32| caps & (1 << c) != 0;
    if (has(CAP_BPF) || has(CAP_SYS_ADMIN)) && has(CAP_NET_ADMIN) {
        return Ok(());
    }
    bail!("voipfilter needs root (CAP_BPF and CAP_NET_ADMIN) to load and read XDP programs: run it with sudo")
}

/// Index of a network interface in this thread's namespace, with a clear error.
pub fn ifindex(iface: &str) -> anyhow::Result<u32> {
    let name = CString::new(iface).context("interface name contains a NUL byte")?;
    // SAFETY: valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if idx == 0 {
        bail!("unknown interface '{iface}' (see `ip link` for the interfaces of this network namespace)");
    }
    Ok(idx)
}

/// Name of the interface with this index, or the index as text.
pub fn ifname(index: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buffer of IF_NAMESIZE bytes as the call requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return format!("if#{index}");
    }
    // SAFETY: if_indextoname wrote a NUL-terminated name.
    unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: zeroed statfs is a valid out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out-pointer.
    unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == BPF_FS_MAGIC }
}

/// Makes sure `pin_dir`'s parent is on a bpffs, mounting one at /sys/fs/bpf if that is where
/// it should be and nothing is mounted there yet.
pub fn ensure_bpffs(pin_dir: &Path) -> anyhow::Result<()> {
    let parent = pin_dir.parent().unwrap_or(Path::new("/"));
    if is_bpffs(parent) {
        return Ok(());
    }
    let sys_bpf = Path::new("/sys/fs/bpf");
    if parent == sys_bpf {
        log::info!("mounting a bpf filesystem at /sys/fs/bpf");
        let (src, target, fstype) = (c"bpf", c"/sys/fs/bpf", c"bpf");
        // SAFETY: valid NUL-terminated strings; no data argument.
        let rc = unsafe { libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).context("mount -t bpf bpf /sys/fs/bpf");
        }
        return Ok(());
    }
    bail!(
        "{} is not on a bpf filesystem; mount one first (`mount -t bpf bpf {}`)",
        parent.display(),
        parent.display()
    )
}

/// An exclusive lock on the pin directory, held while a daemon runs.
pub struct InstanceLock {
    _dir: File,
    pub path: PathBuf,
}

impl InstanceLock {
    /// Creates `dir` if needed and locks it; fails if another process holds the lock.
    pub fn acquire(dir: &Path) -> anyhow::Result<InstanceLock> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let f = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
        // SAFETY: valid fd.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                bail!(
                    "another voipfilter instance is running with pin directory {} (stop it first, or use another --pin-dir)",
                    dir.display()
                );
            }
            return Err(e).context(format!("locking {}", dir.display()));
        }
        Ok(InstanceLock { _dir: f, path: dir.to_path_buf() })
    }
}

/// Wall-clock time in nanoseconds since the Unix epoch.
pub fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Whether the running kernel is at least `major.minor`.
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = release.trim().split(|c: char| !c.is_ascii_digit()).filter_map(|x| x.parse::<u32>().ok());
    let (ma, mi) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}
