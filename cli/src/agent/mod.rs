//! `certkeeper agent`: keep a host's certificate files current. Each pass fetches the
//! current version of every managed certificate in the configuration (with an `agent`
//! token given them), writes the files that changed atomically with the owner and mode
//! asked, runs the reload command, and reports to the server which version the host holds
//! and whether the reload succeeded. Passes repeat on an interval with random jitter.

pub mod config;
pub mod files;
pub mod reload;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::json;

pub use config::{AgentConfig, CertificateConfig};
use files::{Ownership, write_atomic};

/// The largest answer read from the server.
const MAX_RESPONSE: usize = 1 << 20;

/// `certkeeper agent` (its configuration file is the global `--config`).
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// One pass, then exit (non-zero if any certificate failed).
    #[arg(long)]
    pub once: bool,
}

/// What the server answers for a certificate.
#[derive(Debug, Deserialize)]
struct Fetched {
    name: String,
    version: i64,
    certificate: String,
    chain: String,
    full_chain: String,
    private_key: String,
    /// What this host last reported, if anything.
    reported: Option<Reported>,
}

/// A host's last report, as the server keeps it.
#[derive(Debug, Deserialize)]
struct Reported {
    version: i64,
    reload_ok: bool,
}

/// One certificate's outcome in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The version the host holds now.
    pub version: i64,
    /// Whether files were written this pass.
    pub written: bool,
    /// Whether the reload (if any was run) succeeded.
    pub reload_ok: bool,
}

/// The agent: its settings, HTTP client, and what it deployed so far.
pub struct Agent {
    config: AgentConfig,
    http: reqwest::Client,
    /// Per certificate: the version deployed and whether its last reload succeeded.
    state: HashMap<String, (i64, bool)>,
}

impl Agent {
    /// An agent for `config`.
    pub fn new(config: AgentConfig) -> anyhow::Result<Agent> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &config.ca_bundle {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).context("reading the CA bundle")?;
            if certs.is_empty() {
                bail!("the CA bundle holds no certificate");
            }
            builder = builder.tls_certs_only(certs);
        }
        Ok(Agent {
            http: builder.build()?,
            config,
            state: HashMap::new(),
        })
    }

    async fn call(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> anyhow::Result<serde_json::Value> {
        let mut resp = req
            .bearer_auth(&self.config.token)
            .send()
            .await
            .with_context(|| format!("{what}: connecting to {}", self.config.server))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.with_context(|| what.to_string())? {
            if body.len() + chunk.len() > MAX_RESPONSE {
                bail!("{what}: the answer is over {MAX_RESPONSE} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if !status.is_success() {
            let detail = v["detail"].as_str().unwrap_or("no detail").to_string();
            bail!("{what}: {status}: {detail}");
        }
        Ok(v)
    }

    fn url(&self, name: &str) -> String {
        format!(
            "{}/api/v1/agent/certificates/{}",
            self.config.server,
            percent(name)
        )
    }

    /// Deploy one certificate: fetch, write what changed, reload, report.
    pub async fn deploy(&mut self, c: &CertificateConfig) -> anyhow::Result<Outcome> {
        let v = self
            .call(
                self.http.get(format!(
                    "{}?host={}",
                    self.url(&c.name),
                    percent(&self.config.host)
                )),
                &format!("fetching {:?}", c.name),
            )
            .await?;
        let f: Fetched = serde_json::from_value(v).context("an unexpected answer")?;
        let owner = Ownership::resolve(c.owner.as_deref(), c.group.as_deref())?;
        let files = render(c, &f)?;
        let stale: Vec<&Output> = files.iter().filter(|o| !o.holds(&f)).collect();
        let changed = !stale.is_empty();
        // What this process did last, else what the server says this host reported (a
        // reload that failed before a restart is tried again).
        let previous = self
            .state
            .get(&c.name)
            .copied()
            .or_else(|| f.reported.as_ref().map(|r| (r.version, r.reload_ok)));
        let mut reload_ok = previous.is_none_or(|(v, ok)| ok || v != f.version);
        for o in &stale {
            write_atomic(&o.path, &o.data, o.mode, owner)?;
        }
        if changed {
            tracing_line(&format!(
                "{}: wrote version {} ({} files)",
                f.name,
                f.version,
                stale.len()
            ));
        }
        let mut output = None;
        if changed || !reload_ok {
            let r = reload::run(&c.reload, c.reload_timeout).await;
            reload_ok = r.ok;
            if !r.ok {
                tracing_line(&format!("{}: reload failed: {}", f.name, r.output));
                output = Some(r.output);
            }
        }
        self.state.insert(c.name.clone(), (f.version, reload_ok));
        let body = json!({
            "host": self.config.host,
            "version": f.version,
            "reload_ok": reload_ok,
            "output": output,
        });
        self.call(
            self.http
                .post(format!("{}/deployments", self.url(&c.name)))
                .json(&body),
            &format!("reporting {:?}", c.name),
        )
        .await?;
        Ok(Outcome {
            version: f.version,
            written: changed,
            reload_ok,
        })
    }

    /// One pass over every certificate; returns how many failed (each is printed).
    pub async fn pass(&mut self) -> usize {
        let mut failed = 0;
        for c in self.config.certificates.clone() {
            match self.deploy(&c).await {
                Ok(o) if o.reload_ok => {}
                Ok(_) => failed += 1,
                Err(e) => {
                    failed += 1;
                    tracing_line(&format!("{}: {e:#}", c.name));
                }
            }
        }
        failed
    }

    /// The wait before the next pass: the interval plus up to the jitter, at random.
    pub fn next_wait(&self) -> Duration {
        let jitter = self.config.jitter.as_millis() as u64;
        self.config.interval + Duration::from_millis(fastrand::u64(0..=jitter))
    }
}

/// One file to write.
struct Output {
    path: std::path::PathBuf,
    data: Vec<u8>,
    mode: u32,
    /// For a PKCS#12 file, its password: the same version encodes to new bytes every time
    /// (fresh salts), so what it holds is compared instead.
    pkcs12_password: Option<String>,
}

impl Output {
    /// Whether the file on disk already holds this version.
    fn holds(&self, f: &Fetched) -> bool {
        let Ok(on_disk) = std::fs::read(&self.path) else {
            return false;
        };
        let Some(password) = &self.pkcs12_password else {
            return on_disk == self.data;
        };
        let Ok(cert) = pem::parse(&f.certificate) else {
            return false;
        };
        p12_keystore::KeyStore::from_pkcs12(
            &on_disk,
            password,
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .ok()
        .and_then(|ks| {
            ks.private_key_chain()
                .and_then(|(_, chain)| chain.certs().first().map(|c| c.as_der() == cert.contents()))
        })
        .unwrap_or(false)
    }
}

/// What to write for `c`: each file it names.
fn render(c: &CertificateConfig, f: &Fetched) -> anyhow::Result<Vec<Output>> {
    let mut out = Vec::new();
    for (path, text, mode) in [
        (&c.certificate, &f.certificate, c.mode),
        (&c.chain, &f.chain, c.mode),
        (&c.full_chain, &f.full_chain, c.mode),
        (&c.key, &f.private_key, c.key_mode),
    ] {
        if let Some(p) = path {
            out.push(Output {
                path: p.clone(),
                data: text.clone().into_bytes(),
                mode,
                pkcs12_password: None,
            });
        }
    }
    if let (Some(p), Some(pw)) = (&c.pkcs12, &c.pkcs12_password_file) {
        let password = String::from_utf8(config::read_small(pw, "PKCS#12 password file")?)
            .context("the PKCS#12 password file is not UTF-8")?;
        let password = password.trim_end_matches(['\r', '\n']);
        if password.len() < 4 {
            bail!("the PKCS#12 password must be at least 4 characters");
        }
        let key = pem::parse(&f.private_key).context("the private key is not PEM")?;
        let cert = pem::parse(&f.certificate).context("the certificate is not PEM")?;
        let chain: Vec<Vec<u8>> = pem::parse_many(&f.chain)
            .context("the chain is not PEM")?
            .into_iter()
            .map(|p| p.into_contents())
            .collect();
        let p12 = certkeeper_ca::export_pkcs12(
            key.contents(),
            cert.contents(),
            &chain,
            password,
            &f.name,
        )?;
        out.push(Output {
            path: p.clone(),
            data: p12,
            mode: c.key_mode,
            pkcs12_password: Some(password.to_string()),
        });
    }
    Ok(out)
}

/// `name` with everything but unreserved URL characters percent-encoded.
fn percent(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn tracing_line(msg: &str) {
    eprintln!("certkeeper agent: {msg}");
}

/// Run the agent with the configuration file at `config`: one pass with `--once`, else
/// passes forever (until Ctrl-C or SIGTERM).
pub async fn run(config: &std::path::Path, args: AgentArgs) -> anyhow::Result<()> {
    let config = AgentConfig::load(config)?;
    let mut agent = Agent::new(config)?;
    if args.once {
        let failed = agent.pass().await;
        if failed > 0 {
            bail!("{failed} certificate(s) failed");
        }
        return Ok(());
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    loop {
        agent.pass().await;
        let wait = agent.next_wait();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = term.recv() => return Ok(()),
        }
    }
}
