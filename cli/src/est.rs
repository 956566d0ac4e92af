//! An EST (RFC 7030) client, and `certkeeper est enroll`: enroll a host once with HTTP
//! Basic credentials, then renew it with `simplereenroll` (authenticated by the current
//! certificate over TLS) whenever the command runs near expiry.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use certkeeper_ca::KeyAlgorithm;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use time::OffsetDateTime;

use certkeeper_ca::est_wire as wire;

/// An EST failure as the server answered it, or a transport or format problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EstClientError {
    /// The server refused, with its explanation.
    #[error("EST server answered {status}: {detail}")]
    Status {
        /// HTTP status.
        status: StatusCode,
        /// The problem document's `detail`, or the body.
        detail: String,
    },
    /// The request did not reach the server, or the answer did not arrive.
    #[error("EST request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The answer is not what RFC 7030 says it should be.
    #[error("malformed EST answer: {0}")]
    Format(String),
}

/// A client for one EST base path (`https://host/.well-known/est[/<label>]`).
#[derive(Debug, Clone)]
pub struct EstClient {
    base: String,
    http: reqwest::Client,
}

/// Basic credentials.
#[derive(Debug, Clone, Copy)]
pub struct Basic<'a> {
    /// User name.
    pub username: &'a str,
    /// Password.
    pub password: &'a str,
}

impl EstClient {
    /// A client for `server` (`https://host:port`) and an optional label, trusting
    /// `ca_pem` (else the system roots), presenting `identity_pem` (certificate chain and
    /// private key, PEM) as TLS client certificate when given.
    pub fn new(
        server: &str,
        label: Option<&str>,
        ca_pem: Option<&[u8]>,
        identity_pem: Option<&[u8]>,
    ) -> Result<EstClient, EstClientError> {
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60));
        if let Some(pem) = ca_pem {
            builder = builder.tls_certs_only(reqwest::Certificate::from_pem_bundle(pem)?);
        }
        if let Some(id) = identity_pem {
            builder = builder.identity(reqwest::Identity::from_pem(id)?);
        }
        let mut base = format!("{}/.well-known/est", server.trim_end_matches('/'));
        if let Some(l) = label {
            base.push('/');
            base.push_str(l);
        }
        Ok(EstClient {
            base,
            http: builder.build()?,
        })
    }

    fn url(&self, op: &str) -> String {
        format!("{}/{op}", self.base)
    }

    async fn checked(resp: reqwest::Response) -> Result<reqwest::Response, EstClientError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_string))
            .unwrap_or(text);
        Err(EstClientError::Status { status, detail })
    }

    async fn base64_body(resp: reqwest::Response) -> Result<Vec<u8>, EstClientError> {
        let body = resp.bytes().await?;
        wire::decode_base64_body(&body).map_err(EstClientError::Format)
    }

    /// `cacerts`: the CA certificates (DER), roots last (a SET OF has no order).
    pub async fn cacerts(&self) -> Result<Vec<Vec<u8>>, EstClientError> {
        let resp = Self::checked(self.http.get(self.url("cacerts")).send().await?).await?;
        let der = Self::base64_body(resp).await?;
        let mut certs = wire::parse_certs_only(&der).map_err(EstClientError::Format)?;
        certs.sort_by_key(|c| certkeeper_ca::is_self_issued(c));
        Ok(certs)
    }

    /// `csrattrs`: the DER CsrAttrs, or `None` when the server asks for nothing (204).
    pub async fn csrattrs(&self) -> Result<Option<Vec<u8>>, EstClientError> {
        let resp = Self::checked(self.http.get(self.url("csrattrs")).send().await?).await?;
        if resp.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        Self::base64_body(resp).await.map(Some)
    }

    async fn post_csr(
        &self,
        op: &str,
        csr_der: &[u8],
        basic: Option<Basic<'_>>,
    ) -> Result<reqwest::Response, EstClientError> {
        let mut req = self
            .http
            .post(self.url(op))
            .header(CONTENT_TYPE, "application/pkcs10")
            .body(wire::base64_lines(csr_der));
        if let Some(b) = basic {
            req = req.basic_auth(b.username, Some(b.password));
        }
        Self::checked(req.send().await?).await
    }

    async fn one_cert(resp: reqwest::Response) -> Result<Vec<u8>, EstClientError> {
        let der = Self::base64_body(resp).await?;
        let mut certs = wire::parse_certs_only(&der).map_err(EstClientError::Format)?;
        match certs.len() {
            1 => Ok(certs.remove(0)),
            n => Err(EstClientError::Format(format!(
                "expected one certificate, got {n}"
            ))),
        }
    }

    /// `simpleenroll`: the issued certificate (DER).
    pub async fn simpleenroll(
        &self,
        csr_der: &[u8],
        basic: Option<Basic<'_>>,
    ) -> Result<Vec<u8>, EstClientError> {
        Self::one_cert(self.post_csr("simpleenroll", csr_der, basic).await?).await
    }

    /// `simplereenroll`: renewal, authenticated by this client's TLS identity.
    pub async fn simplereenroll(&self, csr_der: &[u8]) -> Result<Vec<u8>, EstClientError> {
        Self::one_cert(self.post_csr("simplereenroll", csr_der, None).await?).await
    }

    /// `serverkeygen`: (PKCS#8 private key, certificate), both DER.
    pub async fn serverkeygen(
        &self,
        csr_der: &[u8],
        basic: Option<Basic<'_>>,
    ) -> Result<(Vec<u8>, Vec<u8>), EstClientError> {
        let resp = self.post_csr("serverkeygen", csr_der, basic).await?;
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let boundary = ct
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("boundary="))
            .filter(|_| ct.starts_with("multipart/mixed"))
            .ok_or_else(|| EstClientError::Format(format!("expected multipart/mixed, got {ct}")))?
            .trim_matches('"')
            .to_string();
        let body = resp.text().await?;
        let mut key = None;
        let mut cert = None;
        for part in body.split(&format!("--{boundary}")) {
            let Some((head, content)) = part.split_once("\r\n\r\n") else {
                continue;
            };
            let head = head.to_ascii_lowercase();
            let der = wire::decode_base64_body(content.as_bytes()).map_err(EstClientError::Format);
            if head.contains("application/pkcs8") {
                key = Some(der?);
            } else if head.contains("application/pkcs7-mime") {
                let mut certs = wire::parse_certs_only(&der?).map_err(EstClientError::Format)?;
                if certs.len() != 1 {
                    return Err(EstClientError::Format("expected one certificate".into()));
                }
                cert = Some(certs.remove(0));
            }
        }
        match (key, cert) {
            (Some(k), Some(c)) => Ok((k, c)),
            _ => Err(EstClientError::Format(
                "the multipart answer lacks the key or the certificate".into(),
            )),
        }
    }
}

/// `certkeeper est ...`.
#[derive(Debug, clap::Subcommand)]
pub enum EstCommand {
    /// Enroll this host (simpleenroll with HTTP Basic credentials) when it has no
    /// certificate yet; renew it (simplereenroll over mutual TLS, with a new key) when
    /// its certificate is near expiry; else do nothing. Safe to run from cron.
    Enroll(EnrollArgs),
    /// Administration of EST labels and credentials on a server (admin token).
    #[command(flatten)]
    Admin(crate::client::EstAdminCmd),
}

/// Options of `certkeeper est enroll`.
#[derive(Debug, clap::Args)]
pub struct EnrollArgs {
    /// EST label (`/.well-known/est/<label>/`); none for the bare path.
    #[arg(long)]
    pub label: Option<String>,
    /// Subject common name for the first enrollment (default: the first --dns name).
    #[arg(long)]
    pub cn: Option<String>,
    /// DNS names for the first enrollment (renewals keep the current certificate's names).
    #[arg(long = "dns")]
    pub dns: Vec<String>,
    /// Where the private key is written (PEM, PKCS#8, mode 0600).
    #[arg(long)]
    pub key: PathBuf,
    /// Where the certificate is written (PEM).
    #[arg(long)]
    pub cert: PathBuf,
    /// Key type of new keys.
    #[arg(long, default_value = "ecdsa-p256")]
    pub key_type: KeyAlgorithm,
    /// EST user name (first enrollment).
    #[arg(long, env = "CERTKEEPER_EST_USERNAME")]
    pub username: Option<String>,
    /// EST password (first enrollment).
    #[arg(long, env = "CERTKEEPER_EST_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// A bootstrap (manufacturer) certificate, PEM, to authenticate the first enrollment
    /// over TLS instead of a password.
    #[arg(long, requires = "bootstrap_key")]
    pub bootstrap_cert: Option<PathBuf>,
    /// The bootstrap certificate's private key, PEM.
    #[arg(long, requires = "bootstrap_cert")]
    pub bootstrap_key: Option<PathBuf>,
    /// Renew when less than this many days are left (default: a third of the lifetime).
    #[arg(long)]
    pub renew_days: Option<u32>,
}

fn write_atomically(path: &Path, data: &[u8], private: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let tmp = path.with_extension("tmp-certkeeper");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    if let Some(d) = dir
        && let Ok(d) = std::fs::File::open(d)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

fn make_csr(
    alg: KeyAlgorithm,
    subject: &[(String, String)],
    dns: &[String],
    ips: &[std::net::IpAddr],
) -> anyhow::Result<(rcgen::KeyPair, Vec<u8>)> {
    let key = alg.generate()?;
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    for (k, v) in subject {
        let ty = match k.as_str() {
            "CN" => rcgen::DnType::CommonName,
            "O" => rcgen::DnType::OrganizationName,
            "OU" => rcgen::DnType::OrganizationalUnitName,
            "C" => rcgen::DnType::CountryName,
            "ST" => rcgen::DnType::StateOrProvinceName,
            "L" => rcgen::DnType::LocalityName,
            other => bail!("cannot put subject attribute {other} into a CSR"),
        };
        dn.push(ty, v.as_str());
    }
    params.distinguished_name = dn;
    for d in dns {
        params
            .subject_alt_names
            .push(rcgen::SanType::DnsName(d.as_str().try_into()?));
    }
    for ip in ips {
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(*ip));
    }
    let csr = params.serialize_request(&key)?;
    Ok((key, csr.der().to_vec()))
}

/// Subject attributes of a certificate as (short name, value).
fn subject_pairs(cert_der: &[u8]) -> anyhow::Result<Vec<(String, String)>> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| anyhow::anyhow!("current certificate: {e}"))?;
    let mut out = Vec::new();
    for rdn in cert.subject().iter() {
        for attr in rdn.iter() {
            let key = x509_parser::objects::oid2abbrev(
                attr.attr_type(),
                x509_parser::objects::oid_registry(),
            )
            .map(str::to_string)
            .unwrap_or_else(|_| attr.attr_type().to_id_string());
            out.push((key, attr.as_str().unwrap_or_default().to_string()));
        }
    }
    Ok(out)
}

/// Run `certkeeper est ...` against `server`, trusting `ca_pem` for its HTTPS.
pub async fn run(server: &str, ca_pem: Option<&[u8]>, cmd: EstCommand) -> anyhow::Result<()> {
    let args = match cmd {
        EstCommand::Enroll(args) => args,
        EstCommand::Admin(_) => bail!("EST administration runs through the REST API client"),
    };
    let label = args.label.as_deref();
    let existing = match (std::fs::read(&args.cert), std::fs::read(&args.key)) {
        (Ok(c), Ok(k)) => Some((c, k)),
        _ => None,
    };
    let Some((cert_pem, key_pem)) = existing else {
        // First enrollment, with a password or a bootstrap certificate.
        let basic = match (&args.username, &args.password) {
            (Some(username), Some(password)) => Some(Basic { username, password }),
            _ => None,
        };
        let bootstrap = match (&args.bootstrap_cert, &args.bootstrap_key) {
            (Some(c), Some(k)) => {
                let mut id =
                    std::fs::read(c).with_context(|| format!("reading {}", c.display()))?;
                id.push(b'\n');
                id.extend(std::fs::read(k).with_context(|| format!("reading {}", k.display()))?);
                Some(id)
            }
            _ => None,
        };
        if basic.is_none() && bootstrap.is_none() {
            bail!(
                "{} does not exist yet: the first enrollment needs --username and --password (or CERTKEEPER_EST_USERNAME / CERTKEEPER_EST_PASSWORD), or --bootstrap-cert and --bootstrap-key",
                args.cert.display()
            );
        }
        let cn = args
            .cn
            .clone()
            .or_else(|| args.dns.first().cloned())
            .context("give --cn or at least one --dns name")?;
        let (key, csr) = make_csr(args.key_type, &[("CN".into(), cn)], &args.dns, &[])?;
        let client = EstClient::new(server, label, ca_pem, bootstrap.as_deref())?;
        let cert = client.simpleenroll(&csr, basic).await?;
        write_atomically(&args.key, key.serialize_pem().as_bytes(), true)?;
        write_atomically(
            &args.cert,
            certkeeper_ca::pem_encode_certs([cert.as_slice()]).as_bytes(),
            false,
        )?;
        let info = certkeeper_ca::inspect_certificate(&cert)?;
        println!(
            "enrolled: {} (serial {}), valid until {}; key in {}, certificate in {}",
            info.subject,
            info.serial,
            info.not_after,
            args.key.display(),
            args.cert.display()
        );
        return Ok(());
    };

    let current = certkeeper_ca::parse_pem_or_der_certs(&cert_pem)
        .with_context(|| format!("reading {}", args.cert.display()))?;
    let leaf = current
        .first()
        .with_context(|| format!("{} holds no certificate", args.cert.display()))?;
    let info = certkeeper_ca::inspect_certificate(leaf)?;
    let now = OffsetDateTime::now_utc();
    let threshold = match args.renew_days {
        Some(d) => time::Duration::days(d.into()),
        None => (info.not_after - info.not_before) / 3,
    };
    if info.not_after - now > threshold {
        println!(
            "{} is valid until {}; renewal starts {} days before; nothing to do",
            args.cert.display(),
            info.not_after,
            threshold.whole_days()
        );
        return Ok(());
    }
    // Renew with a new key, keeping the subject and names (RFC 7030 §4.2.2).
    let mut identity = cert_pem.clone();
    identity.push(b'\n');
    identity.extend_from_slice(&key_pem);
    let client = EstClient::new(server, label, ca_pem, Some(&identity))?;
    let alg = info
        .key_algorithm
        .as_deref()
        .and_then(|a| a.parse().ok())
        .unwrap_or(args.key_type);
    let (key, csr) = make_csr(
        alg,
        &subject_pairs(leaf)?,
        &info.dns_names,
        &info.ip_addresses,
    )?;
    let cert = client.simplereenroll(&csr).await?;
    write_atomically(&args.key, key.serialize_pem().as_bytes(), true)?;
    write_atomically(
        &args.cert,
        certkeeper_ca::pem_encode_certs([cert.as_slice()]).as_bytes(),
        false,
    )?;
    let new = certkeeper_ca::inspect_certificate(&cert)?;
    println!(
        "renewed: {} (serial {}), valid until {}",
        new.subject, new.serial, new.not_after
    );
    Ok(())
}
