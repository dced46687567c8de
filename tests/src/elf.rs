//! What the XDP program in the object calls, read from the ELF file.
//!
//! bpf-linker links `memcpy`/`memset`/`memcmp`/`bcmp` into `.text` as BPF functions; the XDP
//! program must not call them (a BPF-to-BPF call costs time and verifier state) and must not
//! contain panic paths (the verifier rejects those, so they would be load errors).

use object::{Object as _, ObjectSection as _, ObjectSymbol as _, RelocationTarget, SectionKind};

/// `BPF_JMP | BPF_CALL`.
pub const OP_CALL: u8 = 0x85;
/// `BPF_LD | BPF_IMM | BPF_DW`: a 16-byte instruction.
pub const OP_LD_IMM64: u8 = 0x18;
/// `src_reg` of a call to another BPF function (`BPF_PSEUDO_CALL`); 0 is a helper call.
pub const BPF_PSEUDO_CALL: u8 = 1;

/// An executable section that holds programs (every one but `.text`).
#[derive(Debug)]
pub struct ProgramSection {
    pub name: String,
    pub code: Vec<u8>,
    /// (instruction index, symbol name) of every relocation: maps, globals, called functions.
    pub relocated: Vec<(usize, String)>,
    /// Names of the function symbols defined in it.
    pub functions: Vec<String>,
}

impl ProgramSection {
    /// The symbol a relocation at instruction `insn` names, if any.
    pub fn symbol_at(&self, insn: usize) -> Option<&str> {
        self.relocated.iter().find(|(i, _)| *i == insn).map(|(_, n)| n.as_str())
    }
}

/// Instruction indices of BPF-to-BPF calls in `code` (little-endian BPF).
pub fn pseudo_calls(code: &[u8]) -> Vec<usize> {
    let mut calls = Vec::new();
    let mut i = 0;
    while (i + 1) * 8 <= code.len() {
        let (op, regs) = (code[i * 8], code[i * 8 + 1]);
        if op == OP_CALL && regs >> 4 == BPF_PSEUDO_CALL {
            calls.push(i);
        }
        i += if op == OP_LD_IMM64 { 2 } else { 1 };
    }
    calls
}

/// Helper ids called in `code` (`call` with `src_reg` 0; the id is the immediate).
pub fn helper_calls(code: &[u8]) -> Vec<i32> {
    let mut ids = Vec::new();
    let mut i = 0;
    while (i + 1) * 8 <= code.len() {
        let insn = &code[i * 8..i * 8 + 8];
        if insn[0] == OP_CALL && insn[1] >> 4 == 0 {
            ids.push(i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]));
        }
        i += if insn[0] == OP_LD_IMM64 { 2 } else { 1 };
    }
    ids
}

/// What [`read`] finds in an object.
#[derive(Debug)]
pub struct ObjectInfo {
    /// Every executable section but `.text`.
    pub programs: Vec<ProgramSection>,
    /// Every symbol name.
    pub symbols: Vec<String>,
    /// Every function symbol, in any section (`memcpy` & co. live in `.text`).
    pub functions: Vec<String>,
}

/// Reads the program sections, symbols and functions of a BPF object.
pub fn read(object: &[u8]) -> anyhow::Result<ObjectInfo> {
    let file = object::File::parse(object)?;
    let symbols: Vec<String> = file.symbols().filter_map(|s| s.name().ok().map(str::to_string)).collect();
    let functions = file
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text)
        .filter_map(|s| s.name().ok().map(str::to_string))
        .collect();
    let mut programs = Vec::new();
    for sec in file.sections() {
        let name = sec.name()?.to_string();
        if sec.kind() != SectionKind::Text || name == ".text" {
            continue;
        }
        let mut relocated = Vec::new();
        for (offset, rel) in sec.relocations() {
            if let RelocationTarget::Symbol(idx) = rel.target() {
                relocated.push(((offset / 8) as usize, file.symbol_by_index(idx)?.name()?.to_string()));
            }
        }
        let functions = file
            .symbols()
            .filter(|s| s.section_index() == Some(sec.index()) && s.kind() == object::SymbolKind::Text)
            .filter_map(|s| s.name().ok().map(str::to_string))
            .collect();
        programs.push(ProgramSection { name, code: sec.data()?.to_vec(), relocated, functions });
    }
    Ok(ObjectInfo { programs, symbols, functions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_pseudo_calls_and_skips_wide_loads() {
        let mut code = Vec::new();
        code.extend_from_slice(&[0xb7, 0x00, 0, 0, 2, 0, 0, 0]); // r0 = 2
        code.extend_from_slice(&[OP_LD_IMM64, 0x11, 0, 0, 0, 0, 0, 0]); // r1 = map (wide)
        code.extend_from_slice(&[OP_CALL, 0x10, 0, 0, 0, 0, 0, 0]); // second half: not an insn
        code.extend_from_slice(&[OP_CALL, 0x00, 0, 0, 1, 0, 0, 0]); // helper 1
        code.extend_from_slice(&[OP_CALL, 0x10, 0, 0, 0xff, 0xff, 0xff, 0xff]); // pseudo call
        code.extend_from_slice(&[0x95, 0, 0, 0, 0, 0, 0, 0]); // exit
        assert_eq!(pseudo_calls(&code), vec![4]);
        assert_eq!(helper_calls(&code), vec![1]);
    }
}
