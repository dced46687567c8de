//! Running external commands: print what runs, and turn a failure into an error that names it.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

/// The command line as a shell would show it, with the environment variables it sets.
pub fn describe(cmd: &Command) -> String {
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| format!("{}={}", k.to_string_lossy(), quote(v))))
        .collect();
    parts.push(quote(cmd.get_program()));
    parts.extend(cmd.get_args().map(quote));
    parts.join(" ")
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@+,%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` with inherited stdio after printing it; a non-zero exit is an error naming it.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let line = describe(cmd);
    println!("$ {line}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its stdout; a failure is an error with the command and its
/// stderr.
pub fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let line = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!("`{line}` failed ({}): {}", out.status, err.trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
}

/// `cargo` run from the workspace root, so that rust-toolchain.toml picks the toolchain.
pub fn cargo() -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(workspace_root());
    c
}

/// The target directory cargo uses for this workspace.
pub fn target_dir() -> anyhow::Result<PathBuf> {
    let out = output(cargo().args(["metadata", "--format-version", "1", "--no-deps"]))?;
    let v: serde_json::Value =
        serde_json::from_str(&out).context("parsing `cargo metadata` output")?;
    v["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("`cargo metadata` output has no target_directory")
}

/// Finds an executable in PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_quotes_what_a_shell_would_split() {
        let mut c = Command::new("cargo");
        c.env("LLVM_PREFIX", "/usr/lib/llvm-22").args([
            "install",
            "bpf-linker@0.13.0",
            "a b",
            "it's",
        ]);
        assert_eq!(
            describe(&c),
            r"LLVM_PREFIX=/usr/lib/llvm-22 cargo install bpf-linker@0.13.0 'a b' 'it'\''s'"
        );
    }

    #[test]
    fn failing_command_is_named_in_the_error() {
        let e = run(Command::new("false").arg("--flag"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`false --flag` failed"), "{e}");
        let e = output(Command::new("sh").args(["-c", "echo oops >&2; exit 3"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("exit status: 3") && e.contains("oops"), "{e}");
    }
}
