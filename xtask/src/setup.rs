//! `cargo xtask setup`: check every prerequisite and install what is missing, one line per item.
//! A second run installs nothing.

use std::{
    ffi::CString,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{
    cmd::{self, output, run},
    privileges::require_root_to_install,
};

/// Debian packages: what they are for.
pub const APT_PACKAGES: &[(&str, &str)] = &[
    ("llvm-22-dev", "bpf-linker links against LLVM 22"),
    ("libpolly-22-dev", "LLVM 22's cmake exports reference Polly"),
    ("iproute2", "ip: namespaces, veth pairs, XDP status"),
    ("util-linux", "nsenter: run voipfilter in a namespace"),
    ("sip-tester", "sipp: SIP peers"),
    ("coturn", "STUN/TURN server and client tools"),
    ("curl", "HTTP client in the peer tests"),
    ("python3", "python3 -m http.server in the peer tests"),
    ("tcpreplay", "replaying captures"),
    ("libndpi-bin", "ndpiReader: the reference classifier"),
    ("xdp-tools", "xdp-loader, xdpdump"),
    ("nftables", "nft"),
    ("tcpdump", "captures"),
    ("fonts-dejavu-core", "the font of the benchmark charts"),
];

/// The toolchain must match bpf-linker's LLVM (rust-toolchain.toml, docs/toolchain.md).
pub const TOOLCHAIN: &str = "1.98.0";
pub const TOOLCHAIN_COMPONENTS: &[&str] = &["rust-src", "clippy", "rustfmt"];
pub const BPF_LINKER_VERSION: &str = "0.13.0";
pub const LLVM_MAJOR: u32 = 22;
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

fn ok(item: &str) {
    println!("  ok          {item}");
}

fn installing(item: &str) {
    println!("  installing  {item}");
}

pub fn setup() -> anyhow::Result<()> {
    println!("checking prerequisites:");
    apt_packages()?;
    toolchain()?;
    bpf_linker()?;
    bpffs()?;
    println!("prerequisites: all present");
    Ok(())
}

fn dpkg_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).trim() == "install ok installed"
        })
}

fn apt_packages() -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for (pkg, why) in APT_PACKAGES {
        if dpkg_installed(pkg) {
            ok(&format!("apt {pkg}"));
        } else {
            println!("  missing     apt {pkg} ({why})");
            missing.push(*pkg);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    require_root_to_install(&format!("apt packages {list}"))?;
    installing(&format!("apt {list}"));
    run(Command::new("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    let still: Vec<_> = missing.iter().filter(|p| !dpkg_installed(p)).collect();
    if !still.is_empty() {
        bail!("apt-get install finished but these packages are still not installed: {still:?}");
    }
    Ok(())
}

/// Whether `rustup toolchain list` names the toolchain (`1.98.0-x86_64-unknown-linux-gnu (active)`).
fn has_toolchain(list: &str, name: &str) -> bool {
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .any(|t| t == name || t.starts_with(&format!("{name}-")))
}

/// Components from `component` missing in `rustup component list --installed` output
/// (`rust-src`, `clippy-x86_64-unknown-linux-gnu`).
fn missing_components<'a>(installed: &str, wanted: &[&'a str]) -> Vec<&'a str> {
    wanted
        .iter()
        .copied()
        .filter(|c| {
            !installed
                .lines()
                .map(str::trim)
                .any(|l| l == *c || l.starts_with(&format!("{c}-")))
        })
        .collect()
}

fn toolchain() -> anyhow::Result<()> {
    let rustup = || {
        let mut c = Command::new("rustup");
        c.current_dir(cmd::workspace_root());
        c
    };
    let list = output(rustup().args(["toolchain", "list"]))
        .context("running rustup, which installs the pinned toolchain (https://rustup.rs)")?;
    if !has_toolchain(&list, TOOLCHAIN) {
        installing(&format!(
            "rust toolchain {TOOLCHAIN} with {}",
            TOOLCHAIN_COMPONENTS.join(", ")
        ));
        let mut c = rustup();
        c.args(["toolchain", "install", TOOLCHAIN, "--profile", "minimal"]);
        for comp in TOOLCHAIN_COMPONENTS {
            c.args(["--component", comp]);
        }
        return run(&mut c);
    }
    let installed =
        output(rustup().args(["component", "list", "--toolchain", TOOLCHAIN, "--installed"]))?;
    let missing = missing_components(&installed, TOOLCHAIN_COMPONENTS);
    if missing.is_empty() {
        ok(&format!(
            "rust toolchain {TOOLCHAIN} ({})",
            TOOLCHAIN_COMPONENTS.join(", ")
        ));
        return Ok(());
    }
    installing(&format!(
        "rust {TOOLCHAIN} components {}",
        missing.join(", ")
    ));
    run(rustup()
        .args(["component", "add", "--toolchain", TOOLCHAIN])
        .args(&missing))
}

/// What is wrong with an installed bpf-linker, or `None` if it is the right one.
#[derive(Debug, PartialEq, Eq)]
enum LinkerProblem {
    Missing,
    Version(String),
    Llvm(String),
}

/// Decides from `bpf-linker --version`, `ldd bpf-linker` and cargo's install record
/// (`.crates2.json`, for a statically linked build) whether the linker fits.
fn judge_linker(version: &str, ldd: &str, crates2: Option<&str>) -> Option<LinkerProblem> {
    let v = version.split_whitespace().nth(1).unwrap_or("");
    if v != BPF_LINKER_VERSION {
        return Some(LinkerProblem::Version(version.trim().to_string()));
    }
    let llvm_lines: Vec<&str> = ldd.lines().filter(|l| l.contains("libLLVM")).collect();
    let want = [
        format!("libLLVM.so.{LLVM_MAJOR}"),
        format!("libLLVM-{LLVM_MAJOR}"),
    ];
    if let Some(l) = llvm_lines.first() {
        let l = l.trim();
        if !want.iter().any(|w| l.starts_with(w.as_str())) {
            return Some(LinkerProblem::Llvm(format!("linked against {l}")));
        }
        if l.contains("not found") {
            return Some(LinkerProblem::Llvm(format!(
                "its LLVM library is missing ({l})"
            )));
        }
        return None;
    }
    // Statically linked: trust cargo's record of the features it was built with.
    let feature = format!("\"llvm-{LLVM_MAJOR}\"");
    let key = format!("\"bpf-linker {BPF_LINKER_VERSION} ");
    let built_for_ours = crates2.is_some_and(|j| {
        j.find(&key).is_some_and(|i| {
            let rest = &j[i..];
            let end = rest.find('}').unwrap_or(rest.len());
            rest[..end].contains(&feature)
        })
    });
    if built_for_ours {
        None
    } else {
        Some(LinkerProblem::Llvm(
            "no sign it was built for LLVM 22".into(),
        ))
    }
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
        })
}

fn check_linker() -> (Option<PathBuf>, Option<LinkerProblem>) {
    let Some(path) = cmd::which("bpf-linker") else {
        return (None, Some(LinkerProblem::Missing));
    };
    let version = output(Command::new(&path).arg("--version")).unwrap_or_default();
    let ldd = output(Command::new("ldd").arg(&path)).unwrap_or_default();
    let crates2 = std::fs::read_to_string(cargo_home().join(".crates2.json")).ok();
    let problem = judge_linker(&version, &ldd, crates2.as_deref());
    (Some(path), problem)
}

fn bpf_linker() -> anyhow::Result<()> {
    let Some(problem) = check_linker().1 else {
        ok(&format!(
            "bpf-linker {BPF_LINKER_VERSION} for LLVM {LLVM_MAJOR}"
        ));
        return Ok(());
    };
    let why = match &problem {
        LinkerProblem::Missing => "not found".to_string(),
        LinkerProblem::Version(v) => format!("found {v}"),
        LinkerProblem::Llvm(s) => s.clone(),
    };
    installing(&format!(
        "bpf-linker {BPF_LINKER_VERSION} for LLVM {LLVM_MAJOR} ({why}; takes a few minutes)"
    ));
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![PathBuf::from(LLVM_PREFIX).join("bin")];
    paths.extend(std::env::split_paths(&path_var));
    let mut c = cmd::cargo();
    c.env(
        "PATH",
        std::env::join_paths(paths).context("building PATH")?,
    )
    .env("LLVM_PREFIX", LLVM_PREFIX)
    .arg(format!("+{TOOLCHAIN}"))
    .args([
        "install",
        &format!("bpf-linker@{BPF_LINKER_VERSION}"),
        "--locked",
        "--no-default-features",
    ])
    .args(["--features", &format!("llvm-{LLVM_MAJOR}")]);
    if problem != LinkerProblem::Missing {
        c.arg("--force");
    }
    run(&mut c)?;
    let bin = cargo_home().join("bin");
    match check_linker() {
        (_, None) => {
            ok(&format!(
                "bpf-linker {BPF_LINKER_VERSION} for LLVM {LLVM_MAJOR} (installed)"
            ));
            Ok(())
        }
        (Some(p), Some(problem)) => bail!(
            "installed bpf-linker {BPF_LINKER_VERSION} into {}, but the bpf-linker first in PATH ({}) still does not fit ({problem:?}): remove it or put {} first in PATH",
            bin.display(),
            p.display(),
            bin.display()
        ),
        (None, Some(_)) => bail!(
            "installed bpf-linker, but it is not in PATH: add {} to PATH",
            bin.display()
        ),
    }
}

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

pub fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: a zeroed statfs is a valid out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid NUL-terminated path and out-pointer.
    unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == BPF_FS_MAGIC }
}

fn bpffs() -> anyhow::Result<()> {
    let dir = Path::new("/sys/fs/bpf");
    if is_bpffs(dir) {
        ok("bpf filesystem at /sys/fs/bpf");
        return Ok(());
    }
    require_root_to_install("a bpf filesystem at /sys/fs/bpf")?;
    installing("bpf filesystem at /sys/fs/bpf");
    run(Command::new("mount").args(["-t", "bpf", "bpf", "/sys/fs/bpf"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LDD_22: &str = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibLLVM.so.22.1 => /usr/lib/llvm-22/lib/libLLVM.so.22.1 (0x00007fe3)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fe2)\n";

    #[test]
    fn linker_checks() {
        assert_eq!(judge_linker("bpf-linker 0.13.0\n", LDD_22, None), None);
        assert_eq!(
            judge_linker("bpf-linker 0.12.1\n", LDD_22, None),
            Some(LinkerProblem::Version("bpf-linker 0.12.1".into()))
        );
        let ldd_21 = LDD_22.replace("so.22.1", "so.21.1");
        assert!(matches!(
            judge_linker("bpf-linker 0.13.0", &ldd_21, None),
            Some(LinkerProblem::Llvm(_))
        ));
        let gone = "\tlibLLVM.so.22.1 => not found\n";
        assert!(matches!(
            judge_linker("bpf-linker 0.13.0", gone, None),
            Some(LinkerProblem::Llvm(_))
        ));
        assert!(matches!(
            judge_linker("", "", None),
            Some(LinkerProblem::Version(_))
        ));
    }

    #[test]
    fn static_linker_is_judged_by_cargo_record() {
        let static_ldd = "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6\n";
        let ours = r#"{"installs":{"bpf-linker 0.13.0 (registry+https://github.com/rust-lang/crates.io-index)":{"version_req":"=0.13.0","bins":["bpf-linker"],"features":["llvm-22"],"all_features":false}}}"#;
        assert_eq!(
            judge_linker("bpf-linker 0.13.0", static_ldd, Some(ours)),
            None
        );
        let default = ours.replace("llvm-22", "llvm-23");
        assert!(judge_linker("bpf-linker 0.13.0", static_ldd, Some(&default)).is_some());
        assert!(judge_linker("bpf-linker 0.13.0", static_ldd, None).is_some());
    }

    #[test]
    fn toolchain_listing() {
        let list = "stable-x86_64-unknown-linux-gnu (default)\n1.95.0-x86_64-unknown-linux-gnu\n1.98.0-x86_64-unknown-linux-gnu (active)\n";
        assert!(has_toolchain(list, "1.98.0"));
        assert!(!has_toolchain(list, "1.98.1"));
        assert!(!has_toolchain("1.98.0x-foo\n", "1.98.0"));
        let comps = "cargo-x86_64-unknown-linux-gnu\nclippy-x86_64-unknown-linux-gnu\nrust-src\nrust-std-x86_64-unknown-linux-gnu\n";
        assert_eq!(
            missing_components(comps, &["rust-src", "clippy", "rustfmt"]),
            vec!["rustfmt"]
        );
    }
}
