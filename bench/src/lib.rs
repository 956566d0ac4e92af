//! Shared pieces of certkeeper's side-by-side benchmarks: per-worker counters, latency
//! percentiles and error formatting, used by every load generator in this crate.

use std::fmt::Write as _;
use std::time::Duration;

/// How many distinct error messages are kept per target for the report.
pub const MAX_ERROR_SAMPLES: usize = 5;

/// Counters gathered by one worker during the measured window.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Successful operations completed inside the window.
    pub successes: u64,
    /// Failed operations completed inside the window.
    pub errors: u64,
    /// Latencies of the successful operations.
    pub latencies: Vec<Duration>,
    /// A few distinct error messages.
    pub error_samples: Vec<String>,
}

impl WorkerStats {
    /// Records one operation's outcome and, when it succeeded, its latency.
    pub fn record(&mut self, outcome: Result<(), String>, latency: Duration) {
        match outcome {
            Ok(()) => {
                self.successes += 1;
                self.latencies.push(latency);
            }
            Err(message) => {
                self.errors += 1;
                record_error_sample(&mut self.error_samples, message);
            }
        }
    }

    /// Merges another worker's counters into this one.
    pub fn merge(&mut self, other: WorkerStats) {
        self.successes += other.successes;
        self.errors += other.errors;
        self.latencies.extend(other.latencies);
        for sample in other.error_samples {
            record_error_sample(&mut self.error_samples, sample);
        }
    }
}

/// Keeps up to [`MAX_ERROR_SAMPLES`] distinct error messages.
pub fn record_error_sample(samples: &mut Vec<String>, message: String) {
    if samples.len() < MAX_ERROR_SAMPLES && !samples.contains(&message) {
        samples.push(message);
    }
}

/// Nearest-rank percentile of a sorted slice, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], pct: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    Some(sorted[index].as_secs_f64() * 1000.0)
}

/// Formats an optional millisecond value for a table.
pub fn fmt_ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

/// Renders an error together with its chain of sources on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(out, ": {cause}");
        source = cause.source();
    }
    out
}

/// `rate(numerator) / rate(denominator)` from `(target, rate)` pairs, when both ran and the
/// denominator did something.
pub fn ratio(rates: &[(&str, f64)], numerator: &str, denominator: &str) -> Option<f64> {
    let rate = |name: &str| rates.iter().find(|(n, _)| *n == name).map(|(_, r)| *r);
    match (rate(numerator), rate(denominator)) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Prints the result table, writes the report as JSON when asked, and fails when a target
/// completed nothing in its measured window (`completed`: `(target, count)` pairs).
pub fn publish<R: serde::Serialize>(
    table: &str,
    report: &R,
    json_out: Option<&std::path::Path>,
    completed: &[(&str, u64)],
) -> anyhow::Result<()> {
    let idle: Vec<&str> = completed
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(name, _)| *name)
        .collect();
    print!("{table}");
    if let Some(path) = json_out {
        let json = serde_json::to_string_pretty(report)?;
        std::fs::write(path, json + "\n")
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    if !idle.is_empty() {
        anyhow::bail!(
            "nothing completed in the measured window by: {}",
            idle.join(", ")
        );
    }
    Ok(())
}

/// certkeeper booted in this process on a fresh data directory (SQLite there, or the
/// PostgreSQL database at `database_url`) with a clock the benchmark can move. Keep the
/// directory until the end.
pub async fn boot_in_process(
    database_url: Option<&str>,
) -> anyhow::Result<(
    tempfile::TempDir,
    std::sync::Arc<certkeeper_ca::ManualClock>,
    certkeeper::bootstrap::Booted,
)> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    if let Some(url) = database_url {
        std::fs::write(
            dir.path().join("certkeeper.toml"),
            format!("[database]\nurl = {url:?}\n"),
        )?;
    }
    let settings = std::sync::Arc::new(certkeeper::config::Settings::load(dir.path(), None)?);
    let clock = std::sync::Arc::new(certkeeper_ca::ManualClock::new(
        time::OffsetDateTime::now_utc(),
    ));
    let booted = certkeeper::bootstrap::boot(settings, clock.clone()).await?;
    Ok((dir, clock, booted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let close = |got: Option<f64>, want: f64| got.is_some_and(|g| (g - want).abs() < 1e-6);
        assert!(close(percentile_ms(&sorted, 50.0), 50.0));
        assert!(close(percentile_ms(&sorted, 99.0), 99.0));
        assert!(close(percentile_ms(&sorted[..1], 99.0), 1.0));
        assert_eq!(percentile_ms(&[], 50.0), None);
    }

    #[test]
    fn ratio_needs_both_and_a_nonzero_denominator() {
        let rates = [("a", 6.0), ("b", 2.0), ("z", 0.0)];
        assert_eq!(ratio(&rates, "a", "b"), Some(3.0));
        assert_eq!(ratio(&rates, "a", "z"), None);
        assert_eq!(ratio(&rates, "a", "missing"), None);
    }

    #[test]
    fn stats_count_outcomes_and_keep_distinct_samples() {
        let mut a = WorkerStats::default();
        a.record(Ok(()), Duration::from_millis(3));
        a.record(Err("boom".into()), Duration::from_millis(1));
        let mut b = WorkerStats::default();
        b.record(Err("boom".into()), Duration::ZERO);
        b.record(Err("bang".into()), Duration::ZERO);
        a.merge(b);
        assert_eq!((a.successes, a.errors), (1, 3));
        assert_eq!(a.latencies, vec![Duration::from_millis(3)]);
        assert_eq!(a.error_samples, vec!["boom".to_owned(), "bang".to_owned()]);
    }
}
