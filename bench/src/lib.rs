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

/// User plus system CPU time used so far by process `pid` (all of its threads), from
/// `/proc/<pid>/stat` (Linux).
pub fn process_cpu(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| anyhow::anyhow!("reading /proc/{pid}/stat: {e}"))?;
    parse_stat_cpu(&stat, clock_ticks_per_second())
}

/// The CPU time in one `/proc/<pid>/stat` line: fields 14 and 15 (`utime`, `stime`, in
/// clock ticks), counted after the command name, which may itself hold spaces and `)`.
fn parse_stat_cpu(stat: &str, ticks_per_second: u64) -> anyhow::Result<Duration> {
    let after_name = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| anyhow::anyhow!("no command name in {stat:?}"))?;
    // Field 3 (state) is the first after the name; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let tick = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("field {} missing in {stat:?}", i + 3))
    };
    let ticks = tick(11)? + tick(12)?;
    Ok(Duration::from_secs_f64(
        ticks as f64 / ticks_per_second.max(1) as f64,
    ))
}

/// The kernel's clock tick (`sysconf(_SC_CLK_TCK)`), 100 where it cannot be read.
fn clock_ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(100)
}

/// Samples a server's CPU time over a measured window: `start` at its beginning, `finish`
/// at its end; `None` throughout when no process was named.
#[derive(Debug, Clone, Copy)]
pub struct ServerCpu {
    pid: Option<u32>,
    at_start: Option<Duration>,
}

impl ServerCpu {
    /// For process `pid`, if any.
    pub fn new(pid: Option<u32>) -> ServerCpu {
        ServerCpu {
            pid,
            at_start: None,
        }
    }

    /// Take the first sample.
    pub fn start(&mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.pid {
            self.at_start = Some(process_cpu(pid)?);
        }
        Ok(())
    }

    /// The CPU time used since [`ServerCpu::start`].
    pub fn finish(&self) -> anyhow::Result<Option<Duration>> {
        match (self.pid, self.at_start) {
            (Some(pid), Some(t0)) => Ok(Some(process_cpu(pid)?.saturating_sub(t0))),
            _ => Ok(None),
        }
    }
}

/// Microseconds of `cpu` per operation, when both are known.
pub fn cpu_per_op_us(cpu: Option<Duration>, ops: u64) -> Option<f64> {
    cpu.filter(|_| ops > 0)
        .map(|c| c.as_secs_f64() * 1e6 / ops as f64)
}

/// certkeeper booted in this process on a fresh data directory (SQLite there, or the
/// PostgreSQL database at `database_url`) with a clock the benchmark can move. Keep the
/// directory until the end. `config` is more of `certkeeper.toml` (whole tables, after
/// `[database]`).
pub async fn boot_in_process(
    database_url: Option<&str>,
    config: &str,
) -> anyhow::Result<(
    tempfile::TempDir,
    std::sync::Arc<certkeeper_ca::ManualClock>,
    certkeeper::bootstrap::Booted,
)> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    let mut toml = String::new();
    if let Some(url) = database_url {
        toml.push_str(&format!("[database]\nurl = {url:?}\n"));
    }
    toml.push_str(config);
    if !toml.is_empty() {
        std::fs::write(dir.path().join("certkeeper.toml"), toml)?;
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
    fn stat_cpu_is_utime_plus_stime_after_the_name() {
        // A command name with a space and a parenthesis; utime 250, stime 50 ticks.
        let line = "4242 (cert keeper) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat_cpu(line, 100).unwrap(), Duration::from_secs(3));
        assert!(parse_stat_cpu("4242 (short) S 1", 100).is_err());
        assert_eq!(
            cpu_per_op_us(Some(Duration::from_millis(3)), 1000),
            Some(3.0)
        );
        assert_eq!(cpu_per_op_us(Some(Duration::from_millis(3)), 0), None);
        assert_eq!(cpu_per_op_us(None, 10), None);
        // This process has used some CPU.
        assert!(process_cpu(std::process::id()).is_ok());
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
