//! `aya::Pod` for every type stored in a map. All are `repr(C)`, integers only, no implicit
//! padding (each has a size assertion beside its definition).

use crate::{
    flow::{Config, EndpointKey, Flow, FlowKey, FlowKey4, FragKey, TcpSlot},
    lists::{ListEntry, ListTable},
    rtp_state::RtpState,
    maps::Meta,
    rules::{PortKey, Rule},
    stats::Counter,
};

// SAFETY: repr(C) structs of integers and integer arrays with explicit padding fields; every bit
// pattern is a valid value.
unsafe impl aya::Pod for PortKey {}
// SAFETY: as above.
unsafe impl aya::Pod for Rule {}
// SAFETY: as above.
unsafe impl aya::Pod for Counter {}
// SAFETY: as above.
unsafe impl aya::Pod for Meta {}
// SAFETY: as above.
unsafe impl aya::Pod for FlowKey {}
// SAFETY: as above.
unsafe impl aya::Pod for FlowKey4 {}
// SAFETY: as above.
unsafe impl aya::Pod for Flow {}
// SAFETY: as above.
unsafe impl aya::Pod for RtpState {}
// SAFETY: as above.
unsafe impl aya::Pod for EndpointKey {}
// SAFETY: as above.
unsafe impl aya::Pod for FragKey {}
// SAFETY: as above.
unsafe impl aya::Pod for TcpSlot {}
// SAFETY: as above.
unsafe impl aya::Pod for Config {}
// SAFETY: as above.
unsafe impl aya::Pod for ListEntry {}
// SAFETY: as above.
unsafe impl aya::Pod for ListTable {}
