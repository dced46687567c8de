//! Forgetting the program's per-flow state between captures, so that one capture's flows do not
//! leak verdicts into the next while the program and its maps are reused.
//!
//! Which maps are state:
//! - the flow tables `FLOWS4` (IPv4) and `FLOWS` (IPv6), LRU hash maps that [`Maps`] holds as
//!   `maps.flows4` and `maps.flows`;
//! - every hash map (plain, LRU, per-CPU) of the object that [`Maps`] did not take: `EXPECT`
//!   (endpoints announced by signalling or decided flows) and `FRAGS` (first-fragment
//!   verdicts);
//! - `TCP_CALLS`, an array of direct-mapped slots (TCP connections classified as calls): its
//!   non-empty slots are zeroed.
//!
//! Rule, policy and config maps are never touched, so the policy stays installed. Counters are
//! left alone: the replay reads verdicts from the verdict record. The per-CPU hand-over slots
//! (`HANDOVER`, `FOUND`, `SCRATCH_ENDPOINT`) only carry one packet from a program to the next.
//!
//! [`Maps`]: crate::maps::Maps

use std::os::fd::{AsFd as _, AsRawFd as _};

use anyhow::Context as _;
use aya::{
    Ebpf,
    maps::{Map, MapData},
};
use voipfilter_common::{
    flow::{Flow, TcpSlot},
    maps::{FLOWS, FLOWS4, TCP_CALLS},
};

use crate::maps::Maps;

/// `union bpf_attr` as BPF_MAP_GET_NEXT_KEY and BPF_MAP_DELETE_ELEM read it.
#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    next_key: u64,
    flags: u64,
}

/// `union bpf_attr` as the BPF_MAP_*_BATCH commands read it.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;

fn bpf<A>(cmd: libc::c_long, attr: &mut A) -> std::io::Result<()> {
    // SAFETY: `attr` is a valid, initialised bpf_attr prefix of the size passed (`ElemAttr` or
    // `BatchAttr`), and every pointer in it points to a buffer of the size the command expects.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut A, std::mem::size_of::<A>() as libc::c_uint) };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

/// Deletes every entry of a hash map; returns how many were deleted.
fn clear(name: &str, map: &MapData) -> anyhow::Result<u64> {
    let info = map.info().with_context(|| format!("reading the info of map {name}"))?;
    let fd = map.fd().as_fd().as_raw_fd() as u32;
    let mut key = vec![0u8; info.key_size() as usize];
    let mut deleted = 0u64;
    // Each round takes the first key and deletes it; bounded by the capacity (plus slack for
    // entries the program might add concurrently, which it does not during a replay).
    for _ in 0..=u64::from(info.max_entries()) + 1 {
        let mut attr = ElemAttr { map_fd: fd, key: 0, next_key: key.as_mut_ptr() as u64, ..Default::default() };
        match bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(deleted),
            Err(e) => return Err(e).with_context(|| format!("listing the keys of map {name}")),
        }
        let mut attr = ElemAttr { map_fd: fd, key: key.as_ptr() as u64, ..Default::default() };
        match bpf(BPF_MAP_DELETE_ELEM, &mut attr) {
            Ok(()) => deleted += 1,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("deleting from map {name}")),
        }
    }
    anyhow::bail!("map {name} did not empty after {} deletions", info.max_entries())
}

/// Zeroes the given slots of `TCP_CALLS` (an array of [`TcpSlot`]) in one
/// BPF_MAP_UPDATE_BATCH; returns how many. The slots are those of the TCP connections the last
/// capture had (the program writes no other): reading the whole array back instead costs ~15 ms
/// a capture.
fn clear_tcp_calls(map: &MapData, slots: &std::collections::BTreeSet<u32>) -> anyhow::Result<u64> {
    let info = map.info().context("reading the info of map TCP_CALLS")?;
    let value_size = info.value_size() as usize;
    anyhow::ensure!(
        value_size == std::mem::size_of::<TcpSlot>() && info.key_size() == 4,
        "map TCP_CALLS has key size {} and value size {value_size}; expected 4 and {}",
        info.key_size(),
        std::mem::size_of::<TcpSlot>()
    );
    if slots.is_empty() {
        return Ok(0);
    }
    let fd = map.fd().as_fd().as_raw_fd() as u32;
    let keys: Vec<u32> = slots.iter().copied().collect();
    let zeroes = vec![0u8; keys.len() * value_size];
    let mut attr = BatchAttr {
        keys: keys.as_ptr() as u64,
        values: zeroes.as_ptr() as u64,
        count: keys.len() as u32,
        map_fd: fd,
        ..Default::default()
    };
    bpf(BPF_MAP_UPDATE_BATCH, &mut attr).context("zeroing slots of map TCP_CALLS (BPF_MAP_UPDATE_BATCH)")?;
    anyhow::ensure!(attr.count as usize == keys.len(), "zeroed {} of {} slots of TCP_CALLS", attr.count, keys.len());
    Ok(keys.len() as u64)
}

/// Empties a flow table: keys first (deleting while walking the keys would restart the walk),
/// then deletes. Returns the entries deleted.
fn clear_flows<K: aya::Pod>(map: &mut aya::maps::HashMap<MapData, K, Flow>, name: &str) -> anyhow::Result<u64> {
    let keys: Vec<K> = map.keys().collect::<Result<_, _>>().with_context(|| format!("listing the keys of map {name}"))?;
    for k in &keys {
        match map.remove(k) {
            Ok(()) => {}
            Err(aya::maps::MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("deleting from map {name}")),
        }
    }
    anyhow::ensure!(map.keys().next().is_none(), "map {name} did not empty");
    Ok(keys.len() as u64)
}

/// Empties the flow tables held by `maps`, the state hash maps left in `ebpf`, and the given
/// slots of `TCP_CALLS` (those of the TCP connections replayed since the last reset); returns
/// (map name, entries deleted or zeroed) per map.
pub fn reset(ebpf: &mut Ebpf, maps: &mut Maps, tcp_slots: &std::collections::BTreeSet<u32>) -> anyhow::Result<Vec<(String, u64)>> {
    let mut done = Vec::new();
    done.push((FLOWS4.to_string(), clear_flows(&mut maps.flows4, FLOWS4)?));
    done.push((FLOWS.to_string(), clear_flows(&mut maps.flows, FLOWS)?));
    for (name, map) in ebpf.maps_mut() {
        let n = match map {
            Map::HashMap(d) | Map::LruHashMap(d) | Map::PerCpuHashMap(d) | Map::PerCpuLruHashMap(d) => clear(name, d)?,
            Map::Array(d) if name == TCP_CALLS => clear_tcp_calls(d, tcp_slots)?,
            _ => continue,
        };
        done.push((name.to_string(), n));
    }
    anyhow::ensure!(
        done.iter().any(|(n, _)| n == TCP_CALLS),
        "the object has no TCP_CALLS array to clear"
    );
    Ok(done)
}
