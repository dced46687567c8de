//! Host-side additions (feature `user`, and unit tests): frame building, an in-memory rule set
//! implementing [`crate::rules::RuleLookup`], and `aya::Pod` for the map types.

pub mod frame;
#[cfg(feature = "user")]
mod pod;
pub mod rules;
pub mod tables;
