//! Per-packet cost of the real XDP programs by traffic class (`voipfilter::perf`; the same as
//! `voipfilter bench`): `sudo -E cargo run --release -p voipfilter --example perf [-- REPEAT [ROUNDS]]`.

use anyhow::Context as _;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let repeat: u32 = args.next().map(|s| s.parse()).transpose().context("REPEAT")?.unwrap_or(voipfilter::perf::DEFAULT_REPEAT);
    let rounds: usize = args.next().map(|s| s.parse()).transpose().context("ROUNDS")?.unwrap_or(voipfilter::perf::DEFAULT_ROUNDS);
    voipfilter::perf::run(repeat, rounds)
}
