//! Rebuild the program when bpf-linker changes (a new LLVM can change the output), and let
//! LLVM use unaligned loads: packet fields sit at arbitrary offsets, and without this every
//! multi-byte read of one is split into single-byte loads (more instructions for the verifier
//! to walk, more stack). Every BPF JIT of the kernels we support handles unaligned access.
fn main() {
    if let Ok(path) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rustc-link-arg-bins=--llvm-args=-bpf-stack-size=4096");
}
