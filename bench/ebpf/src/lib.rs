#![no_std]
// This file exists so that the crate has a library target: voipfilter-bench lists it as a
// build-dependency so that edits here re-run bench/build.rs.
