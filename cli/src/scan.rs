//! `certkeeper scan`: scan networks for TLS certificates, locally (no server needed) or by
//! submitting the scan to a running server.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use certkeeper_discovery::{
    AnalysisContext, Observation, ProbeConfig, ScanOptions, parse_target_list,
};
use clap::Args;
use serde_json::{Value, json};

use certkeeper_discovery::ScanSpec;

/// `certkeeper scan ...`
#[derive(Debug, Clone, Args)]
pub struct ScanArgs {
    /// Targets: addresses, CIDR blocks, ranges (a-b), host names, host:port items.
    pub targets: Vec<String>,
    /// Read more targets from a file (`-` for stdin), one or more per line, `#` comments.
    #[arg(long, short = 'i')]
    pub input: Option<PathBuf>,
    /// Ports: a list and ranges (443,8443,9000-9010), or `default` for common TLS ports.
    #[arg(long, short = 'p', default_value = "default")]
    pub ports: String,
    /// Server name to try on every address (repeatable); host name targets send their own.
    #[arg(long = "sni")]
    pub sni: Vec<String>,
    /// Send no server name at all.
    #[arg(long, conflicts_with = "sni")]
    pub no_sni: bool,
    /// Speak a STARTTLS protocol on a port, or plain TLS with `none` (repeatable):
    /// `smtp:2525`, `none:25`.
    #[arg(long = "starttls", value_name = "PROTO:PORT")]
    pub starttls: Vec<String>,
    /// Probes in flight at once.
    #[arg(long, default_value_t = 512)]
    pub concurrency: usize,
    /// Probes in flight against one address at once.
    #[arg(long, default_value_t = 16)]
    pub per_host: usize,
    /// New connections per second at most.
    #[arg(long)]
    pub pps: Option<u32>,
    /// Seconds allowed for each step (connect, STARTTLS, handshake).
    #[arg(long, default_value_t = 3.0)]
    pub timeout: f64,
    /// Days before expiry at which a certificate counts as expiring.
    #[arg(long, default_value_t = 30)]
    pub alert_days: u32,
    /// certkeeper's CA certificates (PEM) for "issued by certkeeper" (default:
    /// <data-dir>/root.pem when it exists).
    #[arg(long)]
    pub our_cas: Option<PathBuf>,
    /// Also list endpoints that gave no certificate (refused, timed out, not TLS).
    #[arg(long)]
    pub all: bool,
    /// Print CSV instead of a table.
    #[arg(long)]
    pub csv: bool,
    /// Print one JSON object per line instead of a table (the global `--json`).
    #[arg(skip)]
    pub json: bool,
    /// With --server: return at once with the scan's id instead of waiting for results.
    #[arg(long)]
    pub no_wait: bool,
}

impl ScanArgs {
    fn spec(&self) -> anyhow::Result<ScanSpec> {
        let mut targets = self.targets.clone();
        if let Some(p) = &self.input {
            let text = if p.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
                s
            } else {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
            };
            // Parse here so a bad line is reported with the file's content, not later.
            parse_target_list(&text)?;
            targets.extend(
                text.lines()
                    .map(|l| l.split('#').next().unwrap_or(""))
                    .flat_map(|l| l.split([',', ' ', '\t']))
                    .filter(|t| !t.trim().is_empty())
                    .map(str::to_string),
            );
        }
        if targets.is_empty() {
            bail!("no targets: name some, or give --input");
        }
        Ok(ScanSpec {
            targets,
            ports: Some(self.ports.clone()),
            sni: self.sni.clone(),
            no_sni: self.no_sni,
            starttls: self.starttls.clone(),
        })
    }

    fn options(&self) -> anyhow::Result<ScanOptions> {
        if !(self.timeout > 0.0 && self.timeout <= 600.0) {
            bail!("--timeout must be between 0 and 600 seconds");
        }
        let step = Duration::from_secs_f64(self.timeout);
        Ok(ScanOptions {
            concurrency: self.concurrency,
            per_host: self.per_host,
            packets_per_second: self.pps,
            probe: ProbeConfig {
                connect_timeout: step,
                starttls_timeout: step,
                handshake_timeout: step,
                ..ProbeConfig::default()
            },
        })
    }
}

/// Read every certificate in a PEM file as DER.
fn read_pem_certs(path: &std::path::Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    certkeeper_ca::parse_pem_or_der_certs(&data)
        .with_context(|| format!("reading certificates from {}", path.display()))
}

/// Run a scan here, printing results as they arrive (JSON, CSV) or at the end (table).
pub async fn run_local(args: ScanArgs, data_dir: &std::path::Path) -> anyhow::Result<()> {
    if args.csv && args.json {
        bail!("--csv and --json exclude each other");
    }
    let spec = args.spec()?;
    let options = args.options()?;
    let plan = spec.plan().await?;
    let our_cas = match &args.our_cas {
        Some(p) => read_pem_certs(p)?,
        None => {
            let p = data_dir.join("root.pem");
            if p.exists() {
                read_pem_certs(&p)?
            } else {
                Vec::new()
            }
        }
    };
    let ctx = Arc::new(AnalysisContext {
        now: time::OffsetDateTime::now_utc().unix_timestamp(),
        alert_window: i64::from(args.alert_days) * 86_400,
        our_cas,
        trust_anchors: Vec::new(),
    });
    let total = plan.len();
    let (mut rx, progress) = certkeeper_discovery::observe(Arc::new(plan), options, ctx)?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} endpoints, {msg} certificates, {per_sec}, eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    // Not a `StdoutLock`: the scan runs as a task that may move between threads.
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut rows = Vec::new();
    if args.csv {
        writeln!(out, "{}", CSV_COLUMNS.join(","))?;
    }
    while let Some(obs) = rx.recv().await {
        if let Some(b) = &bar {
            b.set_position(progress.done());
            b.set_message(progress.handshakes().to_string());
        }
        if !args.all && !obs.has_certificate() {
            continue;
        }
        if args.json {
            serde_json::to_writer(&mut out, &obs)?;
            writeln!(out)?;
        } else if args.csv {
            writeln!(out, "{}", csv_row(&row_of(&obs)))?;
        } else {
            rows.push(row_of(&obs));
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if !args.json && !args.csv {
        rows.sort_by(|a, b| a[0].cmp(&b[0]));
        out.write_all(crate::client::table_of(&TABLE_COLUMNS, &rows).as_bytes())?;
    }
    out.flush()?;
    eprintln!(
        "{} endpoints probed, {} with certificates",
        progress.done(),
        progress.handshakes()
    );
    Ok(())
}

pub(crate) const CSV_COLUMNS: [&str; 12] = [
    "endpoint",
    "sni",
    "status",
    "tls_version",
    "subject",
    "issuer",
    "not_after",
    "key",
    "fingerprint_sha256",
    "ours",
    "findings",
    "error",
];
pub(crate) const TABLE_COLUMNS: [&str; 12] = CSV_COLUMNS;

fn date(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ts.to_string())
}

/// One printable row per observation (table and CSV share it).
pub(crate) fn row_of(o: &Observation) -> Vec<String> {
    let endpoint = if o.address.contains(':') {
        format!("[{}]:{}", o.address, o.port)
    } else {
        format!("{}:{}", o.address, o.port)
    };
    let leaf = o.chain.as_ref().and_then(|c| c.leaf());
    let dash = || "-".to_string();
    vec![
        endpoint,
        o.sni.clone().unwrap_or_else(dash),
        o.status.to_string(),
        o.tls_version.clone().unwrap_or_else(dash),
        leaf.map(|l| l.subject.clone()).unwrap_or_else(dash),
        leaf.map(|l| l.issuer.clone()).unwrap_or_else(dash),
        leaf.map(|l| date(l.not_after)).unwrap_or_else(dash),
        leaf.map(|l| format!("{} {}", l.key_type, l.key_bits))
            .unwrap_or_else(dash),
        leaf.map(|l| l.fingerprint_sha256.clone())
            .unwrap_or_else(dash),
        o.chain
            .as_ref()
            .map(|c| if c.issued_by_certkeeper { "yes" } else { "no" }.to_string())
            .unwrap_or_else(dash),
        o.chain
            .as_ref()
            .map(|c| {
                let f: Vec<String> = c
                    .findings
                    .iter()
                    .map(|f| json!(f).as_str().unwrap_or_default().to_string())
                    .collect();
                if f.is_empty() {
                    "-".into()
                } else {
                    f.join(" ")
                }
            })
            .unwrap_or_else(dash),
        o.error.clone().unwrap_or_else(dash),
    ]
}

pub(crate) fn csv_row(cells: &[String]) -> String {
    cells
        .iter()
        .map(|c| {
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The scan body the server's `POST /api/v1/discovery/scans` takes.
pub(crate) fn remote_body(args: &ScanArgs) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(args.spec()?)?)
}

/// Print observations returned by a server like a local scan prints them.
pub(crate) fn print_observations(
    args: &ScanArgs,
    results: &[Observation],
) -> anyhow::Result<String> {
    let mut out = String::new();
    let shown = results.iter().filter(|o| args.all || o.has_certificate());
    if args.json {
        for o in shown {
            out.push_str(&serde_json::to_string(o)?);
            out.push('\n');
        }
    } else if args.csv {
        out.push_str(&CSV_COLUMNS.join(","));
        out.push('\n');
        for o in shown {
            out.push_str(&csv_row(&row_of(o)));
            out.push('\n');
        }
    } else {
        let rows: Vec<Vec<String>> = shown.map(row_of).collect();
        out.push_str(&crate::client::table_of(&TABLE_COLUMNS, &rows));
    }
    Ok(out)
}
