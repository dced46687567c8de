//! Helpers shared by the integration tests (all need root):
//!
//! - [`harness`]: the XDP programs loaded with verdict reporting, run on frames through
//!   BPF_PROG_TEST_RUN beside the engine's host model (same rules, policy and state), with a
//!   model of the counters they must end with;
//! - [`netns`]: network namespaces and veth pairs that remove themselves, and running code
//!   inside a namespace;
//! - [`cli`] and [`daemon`]: the real `voipfilter` binary as a command and as a running daemon;
//! - [`elf`]: what the XDP section of the object calls;
//! - [`voip`]: real VoIP payloads (SIP INVITE with SDP, RTP, IAX2, STUN) and frames from the
//!   corpus captures;
//! - [`rng`], [`tempdir`] and [`unique`]: deterministic randomness, scratch directories and
//!   collision-free names.

pub mod cli;
pub mod daemon;
pub mod elf;
pub mod harness;
pub mod netns;
pub mod rng;
pub mod tempdir;
pub mod unique;
pub mod voip;
