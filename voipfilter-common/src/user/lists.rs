//! The prefix lists on the host: the same lookups as the kernel's `LIST4`/`LIST6` LPM tries and
//! `LISTS` table, for engine tests and replay checks.

use std::collections::HashMap;

use crate::{
    lists::{ListEntry, ListTable},
    user::rules::mask,
};

/// Prefix entries (as user space writes them into the tries) and the list table.
#[derive(Clone, Debug, Default)]
pub struct HostLists {
    /// (prefix length, masked address) -> entry
    pub v4: HashMap<(u8, [u8; 4]), ListEntry>,
    pub v6: HashMap<(u8, [u8; 16]), ListEntry>,
    pub table: ListTable,
}

fn longest<const N: usize>(map: &HashMap<(u8, [u8; N]), ListEntry>, addr: [u8; N]) -> Option<ListEntry> {
    (0..=(N * 8) as u8).rev().find_map(|len| map.get(&(len, mask(addr, len))).copied())
}

impl HostLists {
    /// The entry of the longest matching prefix of an address (IPv4 in the first 4 bytes).
    pub fn entry(&self, addr: &[u8; 16], ipv6: bool) -> Option<ListEntry> {
        if ipv6 {
            longest(&self.v6, *addr)
        } else {
            longest(&self.v4, [addr[0], addr[1], addr[2], addr[3]])
        }
    }
}
