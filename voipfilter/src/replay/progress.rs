//! A one-line progress report on stderr, only when stderr is a terminal and only once a replay
//! has run for more than a second.

use std::{
    io::{IsTerminal as _, Write as _},
    time::{Duration, Instant},
};

const DELAY: Duration = Duration::from_secs(1);
const EVERY: Duration = Duration::from_millis(200);

pub struct Progress {
    enabled: bool,
    start: Instant,
    last: Option<Instant>,
    shown: bool,
}

impl Progress {
    /// A progress line on stderr if it is a terminal and `wanted`.
    pub fn new(wanted: bool) -> Progress {
        Progress { enabled: wanted && std::io::stderr().is_terminal(), start: Instant::now(), last: None, shown: false }
    }

    pub fn disabled() -> Progress {
        Progress { enabled: false, start: Instant::now(), last: None, shown: false }
    }

    /// Called every few thousand packets: `done` of `total` bytes of capture `name`.
    pub fn update(&mut self, name: &str, packets: u64, done: u64, total: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.start);
        if elapsed < DELAY || self.last.is_some_and(|l| now.duration_since(l) < EVERY) {
            return;
        }
        self.last = Some(now);
        self.shown = true;
        let pct = if total > 0 { done as f64 * 100.0 / total as f64 } else { 0.0 };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[Kreplay: {name}: {packets} packets, {pct:.0}% ({:.1} s)", elapsed.as_secs_f64());
        let _ = err.flush();
    }

    /// Clears the line (before anything else is printed).
    pub fn clear(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
            self.shown = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
