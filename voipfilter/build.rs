//! Builds the XDP program (voipfilter-ebpf) for bpfel-unknown-none with the pinned toolchain and
//! bpf-linker, so that `cargo build` at the root yields a binary with the object embedded.
//!
//! `AYA_BUILD_SKIP=1` skips it (clippy/check without bpf-linker); the binary then embeds an empty
//! object and says so when it runs.

use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    let out_dir = std::env::var("OUT_DIR")?;
    if std::env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v == "true") {
        std::fs::write(format!("{out_dir}/voipfilter"), b"")?;
        return Ok(());
    }
    // aya-build adds -Z build-std=core when RUSTC_BOOTSTRAP is set; the nested cargo inherits
    // our environment, and only it sees this (the outer build is already running).
    // SAFETY: build scripts are single-threaded at this point.
    unsafe { std::env::set_var("RUSTC_BOOTSTRAP", "1") };
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().context("workspace root")?;
    let ebpf_dir = root.join("voipfilter-ebpf");
    let ebpf = aya_build::Package {
        name: "voipfilter-ebpf",
        root_dir: ebpf_dir.to_str().ok_or_else(|| anyhow!("non-UTF-8 path"))?,
        ..Default::default()
    };
    aya_build::build_ebpf([ebpf], aya_build::Toolchain::Custom("1.98.0"))
        .context("building the XDP program (voipfilter-ebpf); run `cargo xtask setup` if bpf-linker is missing")
}
