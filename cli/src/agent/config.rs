//! The agent's configuration file (TOML): the server, the token, and per managed
//! certificate the files to write and the command that reloads what uses them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// The largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// The largest token, CA bundle or password file read.
pub(crate) const MAX_SMALL_FILE: u64 = 1 << 20;
/// The most certificates one agent deploys.
const MAX_CERTIFICATES: usize = 100;

fn default_interval() -> u64 {
    3600
}
fn default_jitter() -> u64 {
    300
}
fn default_timeout() -> u64 {
    30
}
fn default_reload_timeout() -> u64 {
    60
}
fn default_mode() -> String {
    "0644".into()
}
fn default_key_mode() -> String {
    "0600".into()
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    server: String,
    token_file: PathBuf,
    ca_bundle: Option<PathBuf>,
    host: Option<String>,
    #[serde(default = "default_interval")]
    interval_seconds: u64,
    #[serde(default = "default_jitter")]
    jitter_seconds: u64,
    #[serde(default = "default_timeout")]
    timeout_seconds: u64,
    #[serde(default, rename = "certificate")]
    certificates: Vec<RawCertificate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertificate {
    name: String,
    certificate: Option<PathBuf>,
    chain: Option<PathBuf>,
    full_chain: Option<PathBuf>,
    key: Option<PathBuf>,
    pkcs12: Option<PathBuf>,
    pkcs12_password_file: Option<PathBuf>,
    owner: Option<String>,
    group: Option<String>,
    #[serde(default = "default_mode")]
    mode: String,
    #[serde(default = "default_key_mode")]
    key_mode: String,
    #[serde(default)]
    reload: Vec<String>,
    #[serde(default = "default_reload_timeout")]
    reload_timeout_seconds: u64,
}

/// One managed certificate to deploy.
#[derive(Debug, Clone)]
pub struct CertificateConfig {
    /// The managed certificate's name (or id).
    pub name: String,
    /// Where to write the certificate alone (PEM).
    pub certificate: Option<PathBuf>,
    /// Where to write the issuing CAs (PEM).
    pub chain: Option<PathBuf>,
    /// Where to write the certificate followed by the chain (PEM).
    pub full_chain: Option<PathBuf>,
    /// Where to write the private key (PKCS#8 PEM).
    pub key: Option<PathBuf>,
    /// Where to write key, certificate and chain as PKCS#12.
    pub pkcs12: Option<PathBuf>,
    /// The file holding the PKCS#12 password.
    pub pkcs12_password_file: Option<PathBuf>,
    /// Owner of the written files (user name or uid).
    pub owner: Option<String>,
    /// Group of the written files (group name or gid).
    pub group: Option<String>,
    /// Mode of the certificate, chain and full-chain files.
    pub mode: u32,
    /// Mode of the key and PKCS#12 files.
    pub key_mode: u32,
    /// The reload command (program and arguments, no shell); empty: none.
    pub reload: Vec<String>,
    /// How long the reload command may run.
    pub reload_timeout: Duration,
}

/// The agent's settings.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The server's base URL (`https://host:port`).
    pub server: String,
    /// The agent token.
    pub token: String,
    /// PEM certificates trusted for the server's HTTPS (instead of the system's roots).
    pub ca_bundle: Option<Vec<u8>>,
    /// The host name reported.
    pub host: String,
    /// Time between passes.
    pub interval: Duration,
    /// Up to this much is added to each wait, at random.
    pub jitter: Duration,
    /// Limit on each request to the server.
    pub timeout: Duration,
    /// What to deploy.
    pub certificates: Vec<CertificateConfig>,
}

/// Read a small file, refusing one over [`MAX_SMALL_FILE`] bytes.
pub(crate) fn read_small(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    read_bounded(path, MAX_SMALL_FILE, what)
}

fn read_bounded(path: &Path, max: u64, what: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)
        .with_context(|| format!("reading the {what} {}", path.display()))?;
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading the {what} {}", path.display()))?;
    if buf.len() as u64 > max {
        bail!("the {what} {} is over {max} bytes", path.display());
    }
    Ok(buf)
}

fn mode(value: &str, key: &str) -> anyhow::Result<u32> {
    let m = u32::from_str_radix(value.trim_start_matches("0o"), 8)
        .with_context(|| format!("{key} {value:?} is not an octal mode such as \"0640\""))?;
    if m > 0o777 {
        bail!("{key} {value:?}: only permission bits (at most 0777)");
    }
    Ok(m)
}

fn seconds(v: u64, key: &str, min: u64, max: u64) -> anyhow::Result<Duration> {
    if !(min..=max).contains(&v) {
        bail!("{key} must be between {min} and {max} seconds");
    }
    Ok(Duration::from_secs(v))
}

impl AgentConfig {
    /// Read and check the file at `path` (and the token and CA files it names).
    pub fn load(path: &Path) -> anyhow::Result<AgentConfig> {
        let text = read_bounded(path, MAX_CONFIG_BYTES, "configuration file")?;
        let text = String::from_utf8(text).context("the configuration file is not UTF-8")?;
        let raw: Raw = toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: Raw) -> anyhow::Result<AgentConfig> {
        if !raw.server.starts_with("https://") {
            bail!("server must be an https:// URL");
        }
        if raw.certificates.is_empty() {
            bail!("no [[certificate]] to deploy");
        }
        if raw.certificates.len() > MAX_CERTIFICATES {
            bail!("at most {MAX_CERTIFICATES} [[certificate]] sections");
        }
        let token = String::from_utf8(read_small(&raw.token_file, "token file")?)
            .context("the token file is not UTF-8")?
            .trim()
            .to_string();
        if token.is_empty() {
            bail!("the token file {} is empty", raw.token_file.display());
        }
        let ca_bundle = raw
            .ca_bundle
            .as_deref()
            .map(|p| read_small(p, "CA bundle"))
            .transpose()?;
        let host = match raw.host {
            Some(h) => h,
            None => hostname::get()
                .context("reading the host name (set `host`)")?
                .to_string_lossy()
                .into_owned(),
        };
        if host.is_empty() || host.len() > 253 || !host.chars().all(|c| c.is_ascii_graphic()) {
            bail!("host must be 1 to 253 printable ASCII characters without spaces");
        }
        let mut certificates = Vec::new();
        for c in raw.certificates {
            let what = format!("[[certificate]] {:?}", c.name);
            if c.name.is_empty() {
                bail!("a [[certificate]] without a name");
            }
            let outputs = [&c.certificate, &c.chain, &c.full_chain, &c.key, &c.pkcs12];
            if outputs.iter().all(|o| o.is_none()) {
                bail!(
                    "{what}: nothing to write (set certificate, chain, full_chain, key or pkcs12)"
                );
            }
            for p in outputs.into_iter().flatten() {
                if !p.is_absolute() || p.file_name().is_none() {
                    bail!("{what}: {} must be an absolute file path", p.display());
                }
            }
            if c.pkcs12.is_some() != c.pkcs12_password_file.is_some() {
                bail!("{what}: pkcs12 and pkcs12_password_file go together");
            }
            if c.reload.first().is_some_and(|p| p.is_empty()) {
                bail!("{what}: reload names no program");
            }
            certificates.push(CertificateConfig {
                mode: mode(&c.mode, "mode").with_context(|| what.clone())?,
                key_mode: mode(&c.key_mode, "key_mode").with_context(|| what.clone())?,
                reload_timeout: seconds(
                    c.reload_timeout_seconds,
                    "reload_timeout_seconds",
                    1,
                    3600,
                )
                .with_context(|| what.clone())?,
                name: c.name,
                certificate: c.certificate,
                chain: c.chain,
                full_chain: c.full_chain,
                key: c.key,
                pkcs12: c.pkcs12,
                pkcs12_password_file: c.pkcs12_password_file,
                owner: c.owner,
                group: c.group,
                reload: c.reload,
            });
        }
        Ok(AgentConfig {
            server: raw.server.trim_end_matches('/').to_string(),
            token,
            ca_bundle,
            host,
            interval: seconds(raw.interval_seconds, "interval_seconds", 10, 7 * 86_400)?,
            jitter: seconds(raw.jitter_seconds, "jitter_seconds", 0, 86_400)?,
            timeout: seconds(raw.timeout_seconds, "timeout_seconds", 1, 600)?,
            certificates,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(dir: &Path, body: &str) -> anyhow::Result<AgentConfig> {
        std::fs::write(dir.join("token"), "ck_secret\n").unwrap();
        let text = format!(
            "server = \"https://ck.example:8443\"\ntoken_file = \"{}\"\nhost = \"web-1\"\n{body}",
            dir.join("token").display()
        );
        let path = dir.join("agent.toml");
        std::fs::write(&path, text).unwrap();
        AgentConfig::load(&path)
    }

    #[test]
    fn a_full_file_is_read_and_defaults_apply() {
        let dir = tempfile::tempdir().unwrap();
        let c = load(
            dir.path(),
            "[[certificate]]\nname = \"web\"\nfull_chain = \"/etc/tls/web.pem\"\nkey = \"/etc/tls/web.key\"\nmode = \"0640\"\nreload = [\"nginx\", \"-s\", \"reload\"]\n",
        )
        .unwrap();
        assert_eq!(c.token, "ck_secret");
        assert_eq!(c.host, "web-1");
        assert_eq!(c.interval, Duration::from_secs(3600));
        assert_eq!(c.certificates[0].mode, 0o640);
        assert_eq!(c.certificates[0].key_mode, 0o600);
        assert_eq!(c.certificates[0].reload, ["nginx", "-s", "reload"]);
    }

    #[test]
    fn mistakes_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        for (body, why) in [
            ("", "no [[certificate]]"),
            ("[[certificate]]\nname = \"web\"\n", "nothing to write"),
            (
                "[[certificate]]\nname = \"web\"\nkey = \"relative.key\"\n",
                "absolute",
            ),
            (
                "[[certificate]]\nname = \"web\"\npkcs12 = \"/x.p12\"\n",
                "go together",
            ),
            (
                "[[certificate]]\nname = \"web\"\nkey = \"/k\"\nmode = \"rw\"\n",
                "octal",
            ),
            (
                "interval_seconds = 1\n[[certificate]]\nname = \"web\"\nkey = \"/k\"\n",
                "interval_seconds",
            ),
            ("colour = \"blue\"\n", "unknown field"),
        ] {
            let e = format!("{:#}", load(dir.path(), body).unwrap_err());
            assert!(e.contains(why), "{body}: {e}");
        }
    }
}
