//! An in-memory rule set with the same semantics as the BPF maps (hash for ports, longest
//! prefix match for addresses), for host tests and tools.

use std::collections::HashMap;

use crate::rules::{PortKey, Rule, RuleLookup};

#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    pub ports: HashMap<PortKey, Rule>,
    /// (prefix length, masked address) -> rule
    pub prefix4: HashMap<(u8, [u8; 4]), Rule>,
    pub prefix6: HashMap<(u8, [u8; 16]), Rule>,
}

/// `addr` with every bit past `len` cleared.
pub fn mask<const N: usize>(mut addr: [u8; N], len: u8) -> [u8; N] {
    for (i, b) in addr.iter_mut().enumerate() {
        let keep = (len as usize).saturating_sub(i * 8).min(8);
        *b &= if keep == 0 { 0 } else { 0xFFu8 << (8 - keep) };
    }
    addr
}

impl RuleSet {
    pub fn add_prefix4(&mut self, addr: [u8; 4], len: u8, rule: Rule) {
        self.prefix4.insert((len, mask(addr, len)), rule);
    }

    pub fn add_prefix6(&mut self, addr: [u8; 16], len: u8, rule: Rule) {
        self.prefix6.insert((len, mask(addr, len)), rule);
    }
}

fn longest<const N: usize>(map: &HashMap<(u8, [u8; N]), Rule>, addr: [u8; N]) -> Option<Rule> {
    (0..=(N * 8) as u8).rev().find_map(|len| map.get(&(len, mask(addr, len))).copied())
}

impl RuleLookup for RuleSet {
    fn port(&self, key: PortKey) -> Option<Rule> {
        self.ports.get(&key).copied()
    }

    fn prefix4(&self, addr: [u8; 4]) -> Option<Rule> {
        longest(&self.prefix4, addr)
    }

    fn prefix6(&self, addr: [u8; 16]) -> Option<Rule> {
        longest(&self.prefix6, addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask([192, 168, 255, 255], 17), [192, 168, 128, 0]);
        assert_eq!(mask([255; 4], 0), [0; 4]);
        assert_eq!(mask([255; 4], 32), [255; 4]);
    }
}
