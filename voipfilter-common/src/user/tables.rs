//! [`Tables`] over plain collections: the engine's maps on the host, for unit tests and tools.
//! Same semantics as the kernel maps, without LRU eviction.

use std::{cell::RefCell, collections::HashMap};

use crate::{
    Action,
    engine::Tables,
    flow::{Config, EndpointKey, Flow, FlowKey, FragKey},
    rules::{PortKey, Rule, RuleLookup},
    lists::Listed,
    user::{lists::HostLists, rules::RuleSet},
};

#[derive(Clone, Default)]
pub struct HostTables {
    pub rules: RuleSet,
    pub config: Config,
    /// Action per app id; apps not listed get `default_action`.
    pub policy: HashMap<u16, Action>,
    pub default_action: Option<Action>,
    pub flows: RefCell<HashMap<FlowKey, Flow>>,
    pub expect: RefCell<HashMap<EndpointKey, u16>>,
    pub frags: RefCell<HashMap<FragKey, u16>>,
    pub tcp: RefCell<HashMap<FlowKey, u16>>,
    pub lists: HostLists,
}

impl HostTables {
    /// Empty tables with the default policy: every app dropped.
    pub fn new() -> Self {
        HostTables { default_action: Some(Action::Drop), ..Default::default() }
    }
}

impl RuleLookup for HostTables {
    fn port(&self, key: PortKey) -> Option<Rule> {
        self.rules.port(key)
    }
    fn prefix4(&self, addr: [u8; 4]) -> Option<Rule> {
        self.rules.prefix4(addr)
    }
    fn prefix6(&self, addr: [u8; 16]) -> Option<Rule> {
        self.rules.prefix6(addr)
    }
}

impl Tables for HostTables {
    fn config(&self) -> Config {
        let mut c = self.config;
        use crate::flow::{CONFIG_LISTS4, CONFIG_LISTS6, CONFIG_PORT_RULES, CONFIG_PREFIX4_RULES, CONFIG_PREFIX6_RULES};
        for (bit, present) in [
            (CONFIG_LISTS4, !self.lists.v4.is_empty()),
            (CONFIG_LISTS6, !self.lists.v6.is_empty()),
            (CONFIG_PORT_RULES, !self.rules.ports.is_empty()),
            (CONFIG_PREFIX4_RULES, !self.rules.prefix4.is_empty()),
            (CONFIG_PREFIX6_RULES, !self.rules.prefix6.is_empty()),
        ] {
            if present {
                c.flags |= bit;
            }
        }
        c
    }
    fn policy(&self, app: u16) -> Action {
        self.policy.get(&app).copied().or(self.default_action).unwrap_or(Action::Pass)
    }
    fn flow_update<R, F: FnOnce(&mut Flow) -> R>(&self, key: &FlowKey, f: F) -> Option<R> {
        self.flows.borrow_mut().get_mut(key).map(f)
    }
    fn flow_insert(&self, key: &FlowKey, flow: &Flow) {
        self.flows.borrow_mut().insert(*key, *flow);
    }
    fn expect_get(&self, addr: &[u8; 16], port: u16, proto: u8) -> Option<u16> {
        self.expect.borrow().get(&EndpointKey::new(*addr, port, proto)).copied()
    }
    fn expect_insert(&self, addr: &[u8; 16], port: u16, proto: u8, app: u16) {
        self.expect.borrow_mut().insert(EndpointKey::new(*addr, port, proto), app);
    }
    fn frag_get(&self, key: &FragKey) -> Option<u16> {
        self.frags.borrow().get(key).copied()
    }
    fn frag_insert(&self, key: &FragKey, app: u16) {
        self.frags.borrow_mut().insert(*key, app);
    }
    fn tcp_get(&self, h: &crate::packet::Headers) -> Option<u16> {
        self.tcp.borrow().get(&FlowKey::new(h).0).copied()
    }
    fn tcp_insert(&self, key: &FlowKey, app: u16) {
        self.tcp.borrow_mut().insert(*key, app);
    }
    fn list_entry(&self, addr: &[u8; 16], ipv6: bool) -> Option<crate::lists::ListEntry> {
        self.lists.entry(addr, ipv6)
    }
    fn list_ported(&self, slot: u8, sport: u16, dport: u16) -> Listed {
        self.lists.table.lists.get(slot as usize).map_or(Listed::default(), |l| l.listed(sport, dport))
    }
}
