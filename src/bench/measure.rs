//! How one measurement is taken and recorded: warm-up, synchronised repeats, the JSON record,
//! and the runner that turns failures and a spent budget into records instead of an abort.

use super::BenchOptions;
use anyhow::Result;
use candle_core::Device;
use serde_json::{json, Value};
use std::time::Instant;

fn sync(device: &Device) -> Result<()> {
    device.synchronize()?;
    Ok(())
}

/// The `repeats` synchronised call times after `warmup` untimed ones, in seconds.
pub(super) fn time(
    device: &Device,
    o: &BenchOptions,
    mut f: impl FnMut() -> Result<()>,
) -> Result<Vec<f64>> {
    for _ in 0..o.warmup {
        f()?;
    }
    sync(device)?;
    let mut ts = Vec::with_capacity(o.repeats);
    for _ in 0..o.repeats.max(1) {
        let t = Instant::now();
        f()?;
        sync(device)?;
        ts.push(t.elapsed().as_secs_f64());
    }
    Ok(ts)
}

pub(super) fn record(
    name: &str,
    section: &str,
    ts: &[f64],
    items: Option<(usize, &str)>,
    extra: Value,
) -> Value {
    let mut s = ts.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let med = s[s.len() / 2];
    let mut rec = json!({
        "name": name,
        "section": section,
        "median_ms": (med * 1e6).round() / 1e3,
        "min_ms": (s[0] * 1e6).round() / 1e3,
        "max_ms": (s[s.len() - 1] * 1e6).round() / 1e3,
        "n": s.len(),
        "wall_median_ms": (med * 1e6).round() / 1e3,
    });
    if let Some((n, what)) = items {
        rec[format!("{what}_per_s")] = json!((n as f64 / med * 1e3).round() / 1e3);
    }
    if let (Value::Object(r), Value::Object(e)) = (&mut rec, extra) {
        r.extend(e);
    }
    rec
}

fn unix_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Runs one measurement at a time: a failure (out of memory, say) becomes an `error` record and
/// the rest go on; past the budget they become `skipped` records. Each record carries its start
/// and end (Unix seconds), so a device-memory log can be lined up with it.
pub(super) struct Runner<'a> {
    pub o: &'a BenchOptions,
    pub started: Instant,
    pub out: Vec<Value>,
    pub emit: &'a mut dyn FnMut(&Value),
}

impl Runner<'_> {
    fn wants(&self, name: &str) -> bool {
        self.o.filter.as_deref().is_none_or(|f| name.contains(f))
    }

    /// The budget, once it is spent.
    fn over_budget(&self) -> Option<f64> {
        self.o
            .budget_s
            .filter(|b| self.started.elapsed().as_secs_f64() > *b)
    }

    pub fn measure(&mut self, name: &str, section: &str, f: impl FnOnce() -> Result<Value>) {
        if !self.wants(name) {
            return;
        }
        let mut rec = match self.over_budget() {
            Some(b) => {
                json!({"name": name, "section": section, "skipped": format!("budget ({b:.0} s) spent")})
            }
            None => {
                let t0 = unix_s();
                let mut r = f().unwrap_or_else(
                    |e| json!({"name": name, "section": section, "error": format!("{e:#}")}),
                );
                r["start_unix_s"] = json!(t0);
                r["end_unix_s"] = json!(unix_s());
                r
            }
        };
        rec["elapsed_s"] = json!((self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0);
        (self.emit)(&rec);
        self.out.push(rec);
    }

    /// Builds a model for the measurements in `names`; when that fails they all get its error.
    pub fn build<T>(&mut self, names: &[String], f: impl FnOnce() -> Result<T>) -> Option<T> {
        if !names.iter().any(|n| self.wants(n)) {
            return None;
        }
        if self.over_budget().is_some() {
            for n in names {
                self.measure(n, "build", || anyhow::bail!("unreachable: over budget"));
            }
            return None;
        }
        match f() {
            Ok(m) => Some(m),
            Err(e) => {
                let msg = format!("building the model: {e:#}");
                for n in names {
                    self.measure(n, "build", || anyhow::bail!("{msg}"));
                }
                None
            }
        }
    }
}
