#![no_std]
// This file exists so that the crate has a library target: voipfilter lists it as a
// build-dependency so that edits here re-run voipfilter/build.rs.
