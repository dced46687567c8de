//! What the XDP programs in the object call, read from the ELF file.
//!
//! The engine's detectors are BPF subprograms of their own (in `.text`), so BPF-to-BPF calls to
//! our functions are expected. bpf-linker also links `memcpy`/`memset`/`memcmp`/`bcmp` into
//! `.text` as BPF functions when LLVM emits them (struct copies, zeroing, slice compares): those
//! must not be called (each costs a call and verifier state on the hot path), and the object
//! must not contain panic paths (the verifier rejects those, so they would be load errors).

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
    /// `.text`: the BPF functions the programs call (our own subprograms, and whatever
    /// bpf-linker linked in, such as `memset`).
    pub text: Option<ProgramSection>,
    /// Every symbol name.
    pub symbols: Vec<String>,
    /// Every function symbol, in any section (`memcpy` & co. live in `.text`).
    pub functions: Vec<String>,
    /// (section name, byte offset, function name) of every function symbol.
    function_at: Vec<(String, u64, String)>,
}

/// One BPF-to-BPF call, resolved to the function it reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// Section and function the call is in.
    pub section: String,
    pub caller: String,
    /// Instruction index in the section.
    pub insn: usize,
    /// The called function (or `section+offset` if no symbol starts there).
    pub callee: String,
}

impl ObjectInfo {
    fn function_starting(&self, section: &str, offset: u64) -> Option<&str> {
        self.function_at.iter().find(|(s, o, _)| s == section && *o == offset).map(|(_, _, n)| n.as_str())
    }

    fn function_containing(&self, section: &str, offset: u64) -> String {
        self.function_at
            .iter()
            .filter(|(s, o, _)| s == section && *o <= offset)
            .max_by_key(|(_, o, _)| *o)
            .map_or_else(|| format!("{section}+{offset:#x}"), |(_, _, n)| n.clone())
    }

    /// Every BPF-to-BPF call in every executable section, with its target. A call into another
    /// section carries a relocation: against the callee's symbol, or against the section symbol
    /// with the target's instruction offset in the immediate (+1); a call inside a section has
    /// no relocation and is PC-relative.
    pub fn calls(&self) -> Vec<Call> {
        let mut out = Vec::new();
        for s in self.programs.iter().chain(self.text.iter()) {
            for i in pseudo_calls(&s.code) {
                let imm = i32::from_le_bytes([s.code[i * 8 + 4], s.code[i * 8 + 5], s.code[i * 8 + 6], s.code[i * 8 + 7]]);
                let callee = match s.symbol_at(i) {
                    Some(sym) if self.functions.iter().any(|f| f == sym) => sym.to_string(),
                    Some(sec) => {
                        let off = (i64::from(imm) + 1) * 8;
                        self.function_starting(sec, off as u64).map_or_else(|| format!("{sec}+{off:#x}"), str::to_string)
                    }
                    None => {
                        let off = (i as i64 + i64::from(imm) + 1) * 8;
                        self.function_starting(&s.name, off as u64).map_or_else(|| format!("{}+{off:#x}", s.name), str::to_string)
                    }
                };
                out.push(Call { section: s.name.clone(), caller: self.function_containing(&s.name, (i * 8) as u64), insn: i, callee });
            }
        }
        out
    }
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
    let mut function_at = Vec::new();
    for s in file.symbols().filter(|s| s.kind() == object::SymbolKind::Text) {
        if let (Some(idx), Ok(name)) = (s.section_index(), s.name()) {
            function_at.push((file.section_by_index(idx)?.name()?.to_string(), s.address(), name.to_string()));
        }
    }
    let mut programs = Vec::new();
    let mut text = None;
    for sec in file.sections() {
        let name = sec.name()?.to_string();
        if sec.kind() != SectionKind::Text {
            continue;
        }
        let mut relocated = Vec::new();
        for (offset, rel) in sec.relocations() {
            match rel.target() {
                RelocationTarget::Symbol(idx) => {
                    let sym = file.symbol_by_index(idx)?;
                    let sym_name = match sym.kind() {
                        object::SymbolKind::Section => file.section_by_index(sym.section_index().expect("a section symbol"))?.name()?.to_string(),
                        _ => sym.name()?.to_string(),
                    };
                    relocated.push(((offset / 8) as usize, sym_name));
                }
                RelocationTarget::Section(idx) => relocated.push(((offset / 8) as usize, file.section_by_index(idx)?.name()?.to_string())),
                _ => {}
            }
        }
        let functions = file
            .symbols()
            .filter(|s| s.section_index() == Some(sec.index()) && s.kind() == object::SymbolKind::Text)
            .filter_map(|s| s.name().ok().map(str::to_string))
            .collect();
        let section = ProgramSection { name: name.clone(), code: sec.data()?.to_vec(), relocated, functions };
        if name == ".text" {
            text = Some(section);
        } else {
            programs.push(section);
        }
    }
    Ok(ObjectInfo { programs, text, symbols, functions, function_at })
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
