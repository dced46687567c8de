//! Shared between the voipfilter XDP program (`bpfel-unknown-none`, `no_std`) and user space.
//!
//! Everything that crosses the kernel/user boundary (map names, capacities, `#[repr(C)]` keys and
//! values, app and action ids) is defined once here. So is the classification logic that can be
//! written as pure functions over bytes: it is generic over [`Bytes`], implemented for `[u8]` here
//! (host unit tests, replay) and for the XDP context in `voipfilter-ebpf`, and compiled unchanged
//! into both.
#![cfg_attr(not(any(test, feature = "user")), no_std)]

pub mod action;
pub mod app;
pub mod bytes;
pub mod classify;
pub mod detect;
pub mod engine;
pub mod flow;
pub mod lists;
pub mod rtp_state;
pub mod maps;
pub mod packet;
pub mod reason;
pub mod rules;
pub mod stats;
#[cfg(test)]
mod testing;
#[cfg(any(test, feature = "user"))]
pub mod user;

pub use action::Action;
pub use app::{App, Class};
pub use bytes::Bytes;
pub use reason::Reason;
