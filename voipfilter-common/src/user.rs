//! Host-side additions (feature `user`, and unit tests): frame building, an in-memory rule set
//! implementing [`crate::rules::RuleLookup`], and `aya::Pod` for the map types.

pub mod frame;
pub mod lists;
#[cfg(feature = "user")]
mod pod;
pub mod rules;
pub mod tables;
