//! voipfilter user space: load the XDP program, manage its rule maps, read its counters, and
//! replay captures through it. The `voipfilter` binary is a thin CLI over this library; the
//! integration tests and xtask use it too.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod fmt;
pub mod lists;
pub mod load;
pub mod maps;
pub mod perf;
pub mod policy;
pub mod replay;
pub mod rulespec;
pub mod stats;
pub mod sys;
