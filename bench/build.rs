//! Builds the benchmark's XDP programs (bench/ebpf: baselines and the live-frames generator)
//! for bpfel-unknown-none, as voipfilter/build.rs does for the filter itself.
//! `AYA_BUILD_SKIP=1` skips it (the binary then has no baselines and says so).

use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    let out_dir = std::env::var("OUT_DIR")?;
    if std::env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v == "true") {
        std::fs::write(format!("{out_dir}/voipfilter-bench"), b"")?;
        return Ok(());
    }
    // SAFETY: build scripts are single-threaded at this point.
    unsafe { std::env::set_var("RUSTC_BOOTSTRAP", "1") };
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let ebpf_dir = manifest.join("ebpf");
    let ebpf = aya_build::Package {
        name: "voipfilter-bench-ebpf",
        root_dir: ebpf_dir.to_str().ok_or_else(|| anyhow!("non-UTF-8 path"))?,
        ..Default::default()
    };
    aya_build::build_ebpf([ebpf], aya_build::Toolchain::Custom("1.98.0"))
        .context("building the benchmark XDP programs (bench/ebpf); run `cargo xtask setup` if bpf-linker is missing")
}
