//! `voipfilter stats`: the counters of a running instance as a table or JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};
use voipfilter_common::{
    Action, App, Reason,
    maps::{MODE_NATIVE, Meta},
    stats::Counter,
};

use crate::{
    fmt::{bytes, duration, si},
    maps::Snapshot,
    sys::ifname,
};

/// A snapshot with what is needed to turn counts into rates.
pub struct Report<'a> {
    pub meta: &'a Meta,
    pub now: &'a Snapshot,
    /// Earlier snapshot and the seconds since it (for `--watch`); `None`: average since start.
    pub prev: Option<(&'a Snapshot, f64)>,
    pub uptime_s: f64,
}

fn mode_name(m: u8) -> &'static str {
    if m == MODE_NATIVE { "native" } else { "skb" }
}

fn app_name(id: u16) -> &'static str {
    App::from_u16(id).map_or("?", App::name)
}

impl Report<'_> {
    fn window(&self) -> f64 {
        match self.prev {
            Some((_, secs)) => secs,
            None => self.uptime_s,
        }
        .max(1e-9)
    }

    /// (packets/s, bits/s) of `now - prev` (or `now` since start).
    fn rate(&self, now: Counter, prev: impl Fn(&Snapshot) -> Counter) -> (f64, f64) {
        let base = self.prev.map(|(p, _)| prev(p)).unwrap_or_default();
        let w = self.window();
        (
            now.packets.saturating_sub(base.packets) as f64 / w,
            now.bytes.saturating_sub(base.bytes) as f64 * 8.0 / w,
        )
    }

    fn interfaces(&self) -> Vec<(String, &'static str)> {
        let n = (self.meta.n_ifaces as usize).min(self.meta.ifindex.len());
        (0..n).map(|i| (ifname(self.meta.ifindex[i]), mode_name(self.meta.mode[i]))).collect()
    }

    pub fn text(&self) -> String {
        let mut o = String::new();
        let rate_kind = if self.prev.is_some() { "over the last interval" } else { "average since start" };
        let _ = writeln!(o, "voipfilter status: pid {}, up {}", self.meta.pid, duration(self.uptime_s as u64));
        let _ = writeln!(o, "\nLoaded on interfaces:");
        for (name, mode) in self.interfaces() {
            let _ = writeln!(o, "  {name:<40}{mode}");
        }
        let _ = writeln!(o, "\nTotals (rates: {rate_kind}):");
        let _ = writeln!(o, "  {:<12}{:>14}{:>14}{:>12}{:>12}", "action", "packets", "bytes", "pps", "bit/s");
        for action in [Action::Drop, Action::Monitor, Action::Pass] {
            let c = self.now.by_action(action);
            let (pps, bps) = self.rate(c, |p| p.by_action(action));
            let _ = writeln!(o, "  {:<12}{:>14}{:>14}{:>12}{:>12}", action.name(), c.packets, bytes(c.bytes), si(pps), si(bps));
        }
        let c = self.now.total();
        let (pps, bps) = self.rate(c, Snapshot::total);
        let _ = writeln!(o, "  {:<12}{:>14}{:>14}{:>12}{:>12}", "all", c.packets, bytes(c.bytes), si(pps), si(bps));
        let _ = writeln!(o, "\nPer app:");
        let _ = writeln!(o, "  {:<14}{:<15}{:<9}{:>14}{:>14}{:>12}", "app", "class", "action", "packets", "bytes", "pps");
        for &(id, action, c) in &self.now.apps {
            let app = App::from_u16(id);
            let (pps, _) = self.rate(c, |p| app.map_or(Counter::default(), |a| p.get(a, action)));
            let class = app.map_or("?", |a| a.class().name());
            let _ = writeln!(o, "  {:<14}{:<15}{:<9}{:>14}{:>14}{:>12}", app_name(id), class, action.name(), c.packets, bytes(c.bytes), si(pps));
        }
        if self.now.apps.is_empty() {
            let _ = writeln!(o, "  (no packets yet)");
        }
        let _ = writeln!(o, "\nNot parsed to L4 ports (counted, rules on addresses still apply):");
        let mut any = false;
        for r in Reason::ALL.into_iter().skip(1) {
            let n = self.now.reason(r);
            if n > 0 {
                any = true;
                let _ = writeln!(o, "  {:<40}{n}", r.name());
            }
        }
        if !any {
            let _ = writeln!(o, "  (none)");
        }
        o
    }

    pub fn json(&self) -> Value {
        let counter = |c: Counter, (pps, bps): (f64, f64)| json!({"packets": c.packets, "bytes": c.bytes, "pps": pps, "bps": bps});
        let mut totals = serde_json::Map::new();
        for action in Action::ALL {
            let c = self.now.by_action(action);
            totals.insert(action.name().into(), counter(c, self.rate(c, |p| p.by_action(action))));
        }
        let all = self.now.total();
        totals.insert("all".into(), counter(all, self.rate(all, Snapshot::total)));
        let apps: Vec<Value> = self
            .now
            .apps
            .iter()
            .map(|&(id, action, c)| {
                let app = App::from_u16(id);
                let r = self.rate(c, |p| app.map_or(Counter::default(), |a| p.get(a, action)));
                let mut v = counter(c, r);
                v["app"] = json!(app_name(id));
                v["class"] = json!(app.map_or("?", |a| a.class().name()));
                v["action"] = json!(action.name());
                v
            })
            .collect();
        let reasons: serde_json::Map<String, Value> =
            Reason::ALL.into_iter().skip(1).map(|r| (r.name().to_string(), json!(self.now.reason(r)))).collect();
        json!({
            "pid": self.meta.pid,
            "uptime_s": self.uptime_s,
            "rates": if self.prev.is_some() { "interval" } else { "since_start" },
            "interval_s": self.prev.map(|p| p.1),
            "interfaces": self.interfaces().into_iter().map(|(n, m)| json!({"name": n, "mode": m})).collect::<Vec<_>>(),
            "totals": totals,
            "apps": apps,
            "not_parsed": reasons,
        })
    }
}
