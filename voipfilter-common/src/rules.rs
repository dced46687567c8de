//! Rule map layouts.
//!
//! Two kinds of rule: L4 port rules (`PORT_RULES`, a hash of (protocol, port)) and IP prefix rules
//! (`PREFIX4_RULES` / `PREFIX6_RULES`, LPM tries). Each maps to a [`Rule`]: an app id and an action.
//!
//! The engine (`engine::user_rule`) applies them before any detector, first match wins: prefix
//! rule on the destination address, then on the source address, then port rule on the
//! destination port, then on the source port. So a `pass` prefix rule makes an exception to a
//! port rule, and a rule matches both directions of a flow.

use crate::{Action, App};

/// Key of `PORT_RULES`. `proto` is 6 (TCP) or 17 (UDP); `port` in host byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey {
    pub proto: u8,
    pub _pad: u8,
    pub port: u16,
}

/// Value of every rule map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// An [`App`] id; ids the program does not know are counted under [`App::Custom`].
    pub app: u16,
    /// An [`Action`]; unknown values act as `pass`.
    pub action: u8,
    pub _pad: u8,
}

const _: () = assert!(core::mem::size_of::<PortKey>() == 4);
const _: () = assert!(core::mem::size_of::<Rule>() == 4);

impl PortKey {
    #[inline(always)]
    pub const fn new(proto: u8, port: u16) -> Self {
        PortKey { proto, _pad: 0, port }
    }
}

impl Rule {
    #[inline(always)]
    pub const fn new(app: App, action: Action) -> Self {
        Rule { app: app as u16, action: action as u8, _pad: 0 }
    }
}

/// Where rules are looked up: the BPF maps in the kernel, plain collections on the host.
pub trait RuleLookup {
    fn port(&self, key: PortKey) -> Option<Rule>;
    /// Longest-prefix match of an IPv4 address (network order bytes).
    fn prefix4(&self, addr: [u8; 4]) -> Option<Rule>;
    /// Longest-prefix match of an IPv6 address.
    fn prefix6(&self, addr: [u8; 16]) -> Option<Rule>;
}

/// The classic VoIP port rules (config `port_defaults = true`; the detectors find these
/// protocols on any port without them): SIP 5060/5061, IAX2 4569, H.323 1719/1720, SCCP 2000,
/// STUN/TURN 3478; all `drop`.
pub const DEFAULT_PORT_RULES: &[(u8, u16, App)] = &[
    (crate::packet::proto::UDP, 5060, App::Sip),
    (crate::packet::proto::TCP, 5060, App::Sip),
    (crate::packet::proto::UDP, 5061, App::Sip),
    (crate::packet::proto::TCP, 5061, App::Sip),
    (crate::packet::proto::UDP, 4569, App::Iax2),
    (crate::packet::proto::UDP, 1719, App::H323),
    (crate::packet::proto::TCP, 1720, App::H323),
    (crate::packet::proto::TCP, 2000, App::Sccp),
    (crate::packet::proto::UDP, 3478, App::Stun),
    (crate::packet::proto::TCP, 3478, App::Stun),
];
