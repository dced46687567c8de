//! Human-readable numbers for tables.

/// 1234567 -> "1.23M"; below 10k the number itself.
pub fn si(v: f64) -> String {
    let a = v.abs();
    if a < 10_000.0 {
        if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.1}") }
    } else if a < 1e6 {
        format!("{:.1}k", v / 1e3)
    } else if a < 1e9 {
        format!("{:.2}M", v / 1e6)
    } else {
        format!("{:.2}G", v / 1e9)
    }
}

/// Bytes with binary units: 1536 -> "1.5 KiB".
pub fn bytes(v: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = v as f64;
    let mut u = 0;
    while x >= 1024.0 && u < UNITS.len() - 1 {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{v} B") } else { format!("{x:.1} {}", UNITS[u]) }
}

/// Seconds as `1d02h03m04s` / `03m04s`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h{m:02}m{s:02}s")
    } else if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else {
        format!("{m:02}m{s:02}s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::si(999.0), "999");
        assert_eq!(super::si(14_880_000.0), "14.88M");
        assert_eq!(super::bytes(1536), "1.5 KiB");
        assert_eq!(super::bytes(10), "10 B");
        assert_eq!(super::duration(3725), "1h02m05s");
        assert_eq!(super::duration(65), "01m05s");
    }
}
