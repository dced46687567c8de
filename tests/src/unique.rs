//! Names that do not collide with other tests, other test processes or earlier runs.

use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A short lower-case hex token: this process id, a per-process counter and a few clock bits.
/// At most 10 characters, so that `vfa` + token still fits an interface name (15 bytes).
pub fn token() -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mixed = (std::process::id() << 12) ^ (n << 4) ^ (nanos >> 10);
    format!("{:x}{:x}", mixed & 0xff_ffff, n & 0xf)
}
