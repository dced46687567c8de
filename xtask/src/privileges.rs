//! Who may do what: installing needs root, kernel tests and the demo need CAP_BPF and
//! CAP_NET_ADMIN (root has both). The decisions are pure functions so they can be unit-tested.

use anyhow::bail;

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// The effective capability set of this process (`CapEff` in /proc/self/status); 0 if unreadable.
pub fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether these capabilities allow loading BPF programs and attaching XDP, and managing
/// network namespaces (CAP_SYS_ADMIN stands in for CAP_BPF on older kernels).
pub fn caps_allow_xdp(caps: u64) -> bool {
    let has = |c: u32| caps & (1 << c) != 0;
    (has(CAP_BPF) || has(CAP_SYS_ADMIN)) && has(CAP_NET_ADMIN)
}

/// The one-line error when `setup` must install `what` but is not root.
pub fn install_error(root: bool, what: &str) -> Option<String> {
    (!root).then(|| {
        format!("voipfilter setup must install {what}: run as root (sudo -E cargo xtask setup)")
    })
}

pub fn require_root_to_install(what: &str) -> anyhow::Result<()> {
    match install_error(is_root(), what) {
        Some(e) => bail!(e),
        None => Ok(()),
    }
}

/// What `cargo xtask <task>` needs privileges for, and the error if it does not have them.
pub fn kernel_task_error(caps: u64, task: &str) -> Option<String> {
    if caps_allow_xdp(caps) {
        return None;
    }
    let why = match task {
        "test" => "kernel tests load XDP programs",
        "demo" => "the demo creates network namespaces and loads XDP programs",
        _ => "this loads XDP programs",
    };
    Some(format!(
        "{why}: run as root, e.g. sudo -E cargo xtask {task}"
    ))
}

pub fn require_kernel_privileges(task: &str) -> anyhow::Result<()> {
    match kernel_task_error(effective_caps(), task) {
        Some(e) => bail!(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT_CAPS: u64 = 0x000001ff_ffffffff;

    #[test]
    fn root_may_run_kernel_tasks() {
        assert_eq!(kernel_task_error(ROOT_CAPS, "test"), None);
        // CAP_BPF + CAP_NET_ADMIN is enough without CAP_SYS_ADMIN; so is CAP_SYS_ADMIN + CAP_NET_ADMIN.
        assert_eq!(
            kernel_task_error((1 << CAP_BPF) | (1 << CAP_NET_ADMIN), "demo"),
            None
        );
        assert_eq!(
            kernel_task_error((1 << CAP_SYS_ADMIN) | (1 << CAP_NET_ADMIN), "demo"),
            None
        );
    }

    #[test]
    fn unprivileged_gets_one_line_hint() {
        let e = kernel_task_error(0, "test").unwrap();
        assert_eq!(
            e,
            "kernel tests load XDP programs: run as root, e.g. sudo -E cargo xtask test"
        );
        let e = kernel_task_error(1 << CAP_BPF, "demo").unwrap();
        assert!(
            e.ends_with("sudo -E cargo xtask demo") && !e.contains('\n'),
            "{e}"
        );
        // CAP_NET_ADMIN alone cannot load programs.
        assert!(kernel_task_error(1 << CAP_NET_ADMIN, "test").is_some());
    }

    #[test]
    fn installing_needs_root() {
        assert_eq!(install_error(true, "apt packages llvm-22-dev"), None);
        assert_eq!(
            install_error(false, "apt packages llvm-22-dev").unwrap(),
            "voipfilter setup must install apt packages llvm-22-dev: run as root (sudo -E cargo xtask setup)"
        );
    }
}
