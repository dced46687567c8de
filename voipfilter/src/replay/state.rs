//! Forgetting the program's per-flow state between captures, so that one capture's flows do not
//! leak verdicts into the next while the program and its maps are reused.
//!
//! Which maps are state: every hash map (plain, LRU, per-CPU) of the object that [`Maps`]
//! (rules, counters, metadata) did not take. Rule maps are never touched, so the policy stays
//! installed. Counters are left alone: the replay reads verdicts from the verdict record.
//!
//! [`Maps`]: crate::maps::Maps

use std::os::fd::{AsFd as _, AsRawFd as _};

use anyhow::Context as _;
use aya::{
    Ebpf,
    maps::{Map, MapData},
};

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

const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;

fn bpf(cmd: libc::c_long, attr: &mut ElemAttr) -> std::io::Result<()> {
    // SAFETY: `attr` is a valid, initialised bpf_attr prefix of the size passed.
    let r = unsafe {
        libc::syscall(libc::SYS_bpf, cmd, attr as *mut ElemAttr, std::mem::size_of::<ElemAttr>() as libc::c_uint)
    };
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

/// Empties the state maps left in `ebpf`; returns (map name, entries deleted) per map.
pub fn reset(ebpf: &mut Ebpf) -> anyhow::Result<Vec<(String, u64)>> {
    let mut done = Vec::new();
    for (name, map) in ebpf.maps_mut() {
        let data = match map {
            Map::HashMap(d) | Map::LruHashMap(d) | Map::PerCpuHashMap(d) | Map::PerCpuLruHashMap(d) => d,
            _ => continue,
        };
        let n = clear(name, data)?;
        done.push((name.to_string(), n));
    }
    Ok(done)
}
