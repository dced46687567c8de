//! Per-app IP prefix lists (call relays, media servers) as the kernel sees them.
//!
//! Each list is one app's prefixes with a *scope*: the traffic in which a prefix counts as a
//! call signal. A prefix never blocks TCP (chat, HTTPS); it only speaks for UDP, optionally only
//! on some ports, and optionally only together with another call signal (STUN, RTP, DTLS) in
//! the same flow.
//!
//! Kernel layout: two LPM tries (`LIST4`, `LIST6`) map a prefix to a [`ListEntry`] (bit sets of
//! list slots and their resolved answer), `LIST16` has a bit per IPv4 /16 holding a listed
//! prefix, and the one-slot array `LISTS` holds the [`ListTable`]: per slot, the app, the scope
//! and a short version text. User space computes `covering` so that the longest match alone
//! answers "which lists contain this address" (an LPM trie returns one entry), and from it the
//! entry's answer ([`ListEntry::resolve`]).
//!
//! The engine looks the lists up once per UDP flow, on its first packet: one entry per address
//! ([`ListEntry::listed`]) and at most one port-scoped slot ([`ListInfo::listed`]).

/// List slots (bits of [`ListEntry`]).
pub const MAX_LISTS: usize = 32;
/// Port ranges a scope may name.
pub const MAX_RANGES: usize = 4;
/// Bytes of version text kept per list (`# version:` of the file, truncated).
pub const VERSION_LEN: usize = 32;

/// The `LIST16` word and bit of an IPv4 address's /16: the kernel looks an address up in
/// `LIST4` only when its bit is set (an LPM lookup costs tens of nanoseconds; the bitmap is one
/// array read), so unlisted addresses (subscribers, most of the Internet) skip the trie.
#[inline(always)]
pub fn slash16(a0: u8, a1: u8) -> (u32, u64) {
    let n = ((a0 as u32) << 8) | a1 as u32;
    (n >> 6, 1u64 << (n & 63))
}

/// Slot unused.
pub const SCOPE_NONE: u8 = 0;
/// UDP to or from a listed address is the app's call traffic (on the scope's ports, if any).
pub const SCOPE_UDP: u8 = 1;
/// UDP to or from a listed address names the app of a call that another detector recognised
/// (STUN, TURN, RTP/RTCP, DTLS): alone it is no signal.
pub const SCOPE_SIGNAL: u8 = 2;

/// Value of `LIST4` / `LIST6`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ListEntry {
    /// Lists that contain this very prefix (what `lists show` reads back).
    pub own: u32,
    /// Lists with a prefix containing this one (`own` included).
    pub covering: u32,
    /// What the engine reads, derived from `covering` by [`ListEntry::resolve`] so that the
    /// kernel never walks the 32 slots (a loop the verifier follows path by path): the app of
    /// the lowest covering `SCOPE_UDP` list without port ranges, 0 if none;
    pub app: u8,
    /// the same for `SCOPE_SIGNAL`;
    pub signal: u8,
    /// 1 + the slot of the lowest covering list with port ranges, 0 if none (the engine
    /// checks the flow's ports against that one list: an address in two port-scoped lists
    /// follows the lower slot's).
    pub ported: u8,
    pub _pad: [u8; 5],
}

const _: () = assert!(core::mem::size_of::<ListEntry>() == 16);

impl ListEntry {
    /// Fills `app`, `signal` and `ported` from `covering` and the list table.
    pub fn resolve(&mut self, table: &ListTable) {
        self.app = 0;
        self.signal = 0;
        self.ported = 0;
        for (i, l) in table.lists.iter().enumerate() {
            if self.covering & (1 << i) == 0 || l.scope == SCOPE_NONE {
                continue;
            }
            if l.nranges != 0 {
                if self.ported == 0 {
                    self.ported = i as u8 + 1;
                }
            } else if l.scope == SCOPE_UDP && self.app == 0 {
                self.app = l.app;
            } else if l.scope == SCOPE_SIGNAL && self.signal == 0 {
                self.signal = l.app;
            }
        }
    }

    /// What this entry says of a UDP flow with these ports; `ported` is the port-scoped list's
    /// verdict for them ([`ListInfo::listed`] of slot `ported - 1`).
    #[inline(always)]
    pub fn listed(&self, ported: Listed) -> Listed {
        Listed {
            app: if self.app != 0 { self.app as u16 } else { ported.app },
            signal: if self.signal != 0 { self.signal as u16 } else { ported.signal },
        }
    }
}

/// An inclusive port range; `lo == 0 && hi == 0` is unused.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

/// One list slot of [`ListTable`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListInfo {
    /// An `App` id.
    pub app: u8,
    /// `SCOPE_*`.
    pub scope: u8,
    /// Port ranges in use (0: any port).
    pub nranges: u8,
    pub _pad: u8,
    /// Prefixes in the list (IPv4 and IPv6).
    pub prefixes: u32,
    pub ranges: [PortRange; MAX_RANGES],
    /// The file's `# version:` (NUL-padded).
    pub version: [u8; VERSION_LEN],
}

const _: () = assert!(core::mem::size_of::<ListInfo>() == 8 + 4 * MAX_RANGES + VERSION_LEN);

/// The single value of `LISTS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListTable {
    pub lists: [ListInfo; MAX_LISTS],
}

impl Default for ListTable {
    fn default() -> Self {
        ListTable { lists: [ListInfo::default(); MAX_LISTS] }
    }
}

/// What the lists say of one UDP flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Listed {
    /// App whose `SCOPE_UDP` list matched (0: none): the flow is that app's call traffic.
    pub app: u16,
    /// App whose `SCOPE_SIGNAL` list matched (0: none): names a call found by a detector.
    pub signal: u16,
}

impl ListInfo {
    /// Whether one of the flow's ports is in the scope's ranges (any port when there are none).
    #[inline(always)]
    pub fn ports_match(&self, sport: u16, dport: u16) -> bool {
        if self.nranges == 0 {
            return true;
        }
        let mut i = 0;
        while i < MAX_RANGES {
            let r = self.ranges[i];
            if (i as u8) < self.nranges
                && ((r.lo <= sport && sport <= r.hi) || (r.lo <= dport && dport <= r.hi))
            {
                return true;
            }
            i += 1;
        }
        false
    }
}

impl ListInfo {
    /// What this list says of a UDP flow with these ports.
    #[inline(always)]
    pub fn listed(&self, sport: u16, dport: u16) -> Listed {
        if !self.ports_match(sport, dport) {
            return Listed::default();
        }
        match self.scope {
            SCOPE_UDP => Listed { app: self.app as u16, signal: 0 },
            SCOPE_SIGNAL => Listed { app: 0, signal: self.app as u16 },
            _ => Listed::default(),
        }
    }
}

#[cfg(test)]
impl ListTable {
    /// The lists in `mask` (a `covering` set, or the union of both addresses' sets) that apply
    /// to a UDP flow with these ports; the lowest slot wins within each scope. The walk over
    /// every slot that resolved entries replace in the kernel: the tests' reference.
    pub fn lookup(&self, mask: u32, sport: u16, dport: u16) -> Listed {
        let mut out = Listed::default();
        let mut i = 0;
        while i < MAX_LISTS {
            if mask & (1 << i) != 0 {
                let l = &self.lists[i];
                if l.ports_match(sport, dport) {
                    if l.scope == SCOPE_UDP && out.app == 0 {
                        out.app = l.app as u16;
                    } else if l.scope == SCOPE_SIGNAL && out.signal == 0 {
                        out.signal = l.app as u16;
                    }
                }
            }
            i += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ListTable {
        let mut t = ListTable::default();
        t.lists[0] = ListInfo { app: 18, scope: SCOPE_UDP, prefixes: 1, ..Default::default() };
        t.lists[1] = ListInfo {
            app: 16,
            scope: SCOPE_SIGNAL,
            nranges: 2,
            ranges: [PortRange { lo: 3478, hi: 3478 }, PortRange { lo: 19302, hi: 19309 }, PortRange::default(), PortRange::default()],
            ..Default::default()
        };
        t.lists[2] = ListInfo { app: 14, scope: SCOPE_UDP, nranges: 1, ranges: [PortRange { lo: 50000, hi: 50059 }; 4], ..Default::default() };
        t
    }

    #[test]
    fn scopes_and_ports() {
        let t = table();
        assert_eq!(t.lookup(0, 1, 2), Listed::default());
        assert_eq!(t.lookup(1, 40000, 8801), Listed { app: 18, signal: 0 });
        assert_eq!(t.lookup(2, 40000, 19305), Listed { app: 0, signal: 16 });
        assert_eq!(t.lookup(2, 40000, 443), Listed::default(), "signal list off its ports");
        assert_eq!(t.lookup(4, 50010, 3478), Listed { app: 14, signal: 0 });
        assert_eq!(t.lookup(4, 40000, 3478), Listed::default());
        assert_eq!(t.lookup(7, 50010, 3478), Listed { app: 18, signal: 16 }, "lowest slot wins");
        // Unused slots (scope 0) never match.
        assert_eq!(t.lookup(1 << 9, 1, 2), Listed::default());
    }

    /// The kernel's way (resolved entry + at most one port-scoped list) agrees with the walk
    /// over every slot, for every mask of the first three slots.
    #[test]
    fn resolved_entries_agree_with_the_walk() {
        let t = table();
        // Masks with at most one port-scoped list (slots 1 and 2 both have ranges): an address in
        // two port-scoped lists gets the lower slot's only (user space warns when loading).
        for mask in [0u32, 1, 2, 3, 4, 5] {
            let mut e = ListEntry { covering: mask, ..Default::default() };
            e.resolve(&t);
            for (sport, dport) in [(40000, 8801), (40000, 19305), (50010, 3478), (40000, 3478), (1, 2)] {
                let ported = if e.ported == 0 { Listed::default() } else { t.lists[e.ported as usize - 1].listed(sport, dport) };
                let walk = t.lookup(mask, sport, dport);
                let fast = e.listed(ported);
                assert_eq!(fast, walk, "mask {mask:#b} ports {sport}/{dport}");
            }
        }
    }
}
