//! Helpers shared by the unit tests of the parser and the detectors.

use std::vec::Vec;

/// One step of Marsaglia's xorshift64 generator: the deterministic "random" bytes of the
/// never-panic tests (a fixed seed makes every failure reproducible).
pub(crate) fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Hex text to bytes, ignoring whitespace (payloads copied from captures).
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    s.chunks(2).map(|c| u8::from_str_radix(core::str::from_utf8(c).unwrap(), 16).unwrap()).collect()
}
