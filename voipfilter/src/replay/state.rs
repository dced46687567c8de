//! Forgetting the program's per-flow state between captures, so that one capture's flows do not
//! leak verdicts into the next while the program and its maps are reused.
//!
//! Which maps are state:
//! - the flow table `FLOWS` (an LRU hash map), which [`Maps`] holds as `maps.flows`;
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
    flow::{FlowKey, TcpSlot},
    maps::{FLOWS, TCP_CALLS},
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
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
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

/// Zeroes the non-empty slots of `TCP_CALLS` (an array of [`TcpSlot`]); returns how many there
/// were. One BPF_MAP_LOOKUP_BATCH reads the whole array, one BPF_MAP_UPDATE_BATCH writes zeroes
/// over the slots in use: two syscalls instead of one per slot.
fn clear_tcp_calls(map: &MapData) -> anyhow::Result<u64> {
    let info = map.info().context("reading the info of map TCP_CALLS")?;
    let value_size = info.value_size() as usize;
    anyhow::ensure!(
        value_size == std::mem::size_of::<TcpSlot>() && info.key_size() == 4,
        "map TCP_CALLS has key size {} and value size {value_size}; expected 4 and {}",
        info.key_size(),
        std::mem::size_of::<TcpSlot>()
    );
    let n = info.max_entries() as usize;
    let fd = map.fd().as_fd().as_raw_fd() as u32;
    let mut keys = vec![0u32; n];
    let mut values = vec![0u8; n * value_size];
    let mut read = 0usize;
    let mut next = 0u32;
    while read < n {
        let mut attr = BatchAttr {
            in_batch: if read == 0 { 0 } else { &next as *const u32 as u64 },
            out_batch: &mut next as *mut u32 as u64,
            keys: keys[read..].as_mut_ptr() as u64,
            values: values[read * value_size..].as_mut_ptr() as u64,
            count: (n - read) as u32,
            map_fd: fd,
            ..Default::default()
        };
        let r = bpf(BPF_MAP_LOOKUP_BATCH, &mut attr);
        read += attr.count as usize;
        match r {
            Ok(()) if attr.count > 0 => {}
            // ENOENT: the last batch (its `count` elements are valid).
            Ok(()) => break,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
            Err(e) => return Err(e).context("reading map TCP_CALLS (BPF_MAP_LOOKUP_BATCH)"),
        }
    }
    let used: Vec<u32> = (0..read).filter(|&i| values[i * value_size..(i + 1) * value_size].iter().any(|&b| b != 0)).map(|i| keys[i]).collect();
    if used.is_empty() {
        return Ok(0);
    }
    let zeroes = vec![0u8; used.len() * value_size];
    let mut attr = BatchAttr {
        keys: used.as_ptr() as u64,
        values: zeroes.as_ptr() as u64,
        count: used.len() as u32,
        map_fd: fd,
        ..Default::default()
    };
    bpf(BPF_MAP_UPDATE_BATCH, &mut attr).context("zeroing slots of map TCP_CALLS (BPF_MAP_UPDATE_BATCH)")?;
    anyhow::ensure!(attr.count as usize == used.len(), "zeroed {} of {} slots of TCP_CALLS", attr.count, used.len());
    Ok(used.len() as u64)
}

/// Empties the flow table held by `maps`, the state hash maps left in `ebpf`, and the slots of
/// `TCP_CALLS`; returns (map name, entries deleted or zeroed) per map.
pub fn reset(ebpf: &mut Ebpf, maps: &mut Maps) -> anyhow::Result<Vec<(String, u64)>> {
    let mut done = Vec::new();
    // FLOWS: keys first (deleting while walking the keys would restart the walk), then deletes.
    let keys: Vec<FlowKey> = maps.flows.keys().collect::<Result<_, _>>().context("listing the keys of map FLOWS")?;
    for k in &keys {
        match maps.flows.remove(k) {
            Ok(()) => {}
            Err(aya::maps::MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e).context("deleting from map FLOWS"),
        }
    }
    anyhow::ensure!(maps.flows.keys().next().is_none(), "map FLOWS did not empty");
    done.push((FLOWS.to_string(), keys.len() as u64));
    for (name, map) in ebpf.maps_mut() {
        let n = match map {
            Map::HashMap(d) | Map::LruHashMap(d) | Map::PerCpuHashMap(d) | Map::PerCpuLruHashMap(d) => clear(name, d)?,
            Map::Array(d) if name == TCP_CALLS => clear_tcp_calls(d)?,
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
