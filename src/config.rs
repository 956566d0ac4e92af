//! Settings: defaults < `certkeeper.toml` < `CERTKEEPER_*` environment variables, then
//! validated into a typed [`Settings`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use certkeeper_ca::KeyAlgorithm;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// A secret string that never prints itself.
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret's value; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Who signs OCSP responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OcspSigner {
    /// The CA key itself.
    Ca,
    /// A delegated responder certificate issued by the CA (id-kp-OCSPSigning).
    Delegated,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Raw settings as read from the layers, before validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    database_url: Option<String>,
    https_listen: String,
    http_listen: String,
    public_url: Option<String>,
    server_names: Vec<String>,
    master_key: Option<Secret>,
    crl_validity_hours: u32,
    ocsp_signer: OcspSigner,
    ca_key_algorithm: String,
    log_format: LogFormat,
    log_level: String,
    max_body_bytes: usize,
    db_max_connections: u32,
    server_cert_days: u32,
    est_default_profile: String,
    est_client_ca_file: Option<PathBuf>,
    est_trust_own_cas: bool,
    discovery_allow: String,
    discovery_concurrency: usize,
    discovery_timeout_ms: u64,
    discovery_pps: u32,
    discovery_alert_days: u32,
    discovery_schedule_secs: u64,
    alert_sweep_seconds: u32,
    alert_delivery_seconds: u32,
    alert_max_attempts: u32,
    alert_retry_base_seconds: u32,
    acme: RawAcme,
}

/// Raw `[acme]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAcme {
    enabled: bool,
    default_profile: String,
    profiles: Vec<String>,
    http01_port: u16,
    tls_alpn01_port: u16,
    dns_resolvers: Vec<String>,
    validation_timeout_secs: u64,
    nonce_lifetime_secs: u64,
    order_lifetime_hours: u64,
    authz_lifetime_hours: u64,
    terms_of_service: Option<String>,
    website: Option<String>,
    caa_identities: Vec<String>,
    new_orders_per_account_per_hour: u32,
    new_accounts_per_ip_per_hour: u32,
    eab_required: Vec<String>,
}

impl Default for RawAcme {
    fn default() -> Self {
        RawAcme {
            enabled: true,
            default_profile: "default".into(),
            profiles: Vec::new(),
            http01_port: 80,
            tls_alpn01_port: 443,
            dns_resolvers: Vec::new(),
            validation_timeout_secs: 10,
            nonce_lifetime_secs: 3600,
            order_lifetime_hours: 24,
            authz_lifetime_hours: 24 * 7,
            terms_of_service: None,
            website: None,
            caa_identities: Vec::new(),
            new_orders_per_account_per_hour: 300,
            new_accounts_per_ip_per_hour: 50,
            eab_required: Vec::new(),
        }
    }
}

/// Validated ACME settings (the `[acme]` section; environment `CERTKEEPER_ACME__<NAME>`).
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// Whether the ACME server is mounted at all.
    pub enabled: bool,
    /// The profile served at `/acme/directory`.
    pub default_profile: String,
    /// Further profiles served at `/acme/<profile>/directory`.
    pub profiles: Vec<String>,
    /// Port http-01 validation connects to.
    pub http01_port: u16,
    /// Port tls-alpn-01 validation connects to.
    pub tls_alpn01_port: u16,
    /// DNS servers for validation lookups (empty: the system's).
    pub dns_resolvers: Vec<SocketAddr>,
    /// Limit for one validation attempt.
    pub validation_timeout: std::time::Duration,
    /// How long a nonce stays usable.
    pub nonce_lifetime_secs: i64,
    /// How long an order may take to complete.
    pub order_lifetime_secs: i64,
    /// How long an authorization (pending or valid) lasts and may be reused.
    pub authz_lifetime_secs: i64,
    /// `meta.termsOfService`.
    pub terms_of_service: Option<String>,
    /// `meta.website`.
    pub website: Option<String>,
    /// This CA's issuer domain names for CAA (RFC 8659), published as `meta.caaIdentities`.
    /// When set, an authorization for a DNS name becomes valid only if the name's CAA records
    /// (looked up through `dns_resolvers`, climbing towards the root) are absent or name one
    /// of these in an `issue` (or, for wildcards, `issuewild`) property. Empty (the default)
    /// turns CAA checking off.
    pub caa_identities: Vec<String>,
    /// New orders per account per hour (0: unlimited).
    pub new_orders_per_account_per_hour: u32,
    /// New accounts per client IP per hour (0: unlimited).
    pub new_accounts_per_ip_per_hour: u32,
    /// Profiles whose directory requires external account binding.
    pub eab_required: Vec<String>,
}

impl AcmeSettings {
    /// Whether `profile` has an ACME directory.
    pub fn serves(&self, profile: &str) -> bool {
        self.enabled
            && (profile == self.default_profile || self.profiles.iter().any(|p| p == profile))
    }

    /// How long after its validation started a challenge still `processing` counts as left
    /// behind by a process that died: the longest a validation can take (the challenge,
    /// then the CAA lookup, each limited by `validation_timeout`) plus 30 s for the database
    /// and scheduling.
    pub fn stuck_validation_after(&self) -> std::time::Duration {
        self.validation_timeout * 2 + std::time::Duration::from_secs(30)
    }

    /// Whether `profile`'s directory requires external account binding.
    pub fn eab_required(&self, profile: &str) -> bool {
        self.eab_required.iter().any(|p| p == profile)
    }
}

fn validate_acme(raw: RawAcme) -> Result<AcmeSettings, ConfigError> {
    let mut dns_resolvers = Vec::new();
    for r in &raw.dns_resolvers {
        let addr = r
            .parse::<SocketAddr>()
            .or_else(|_| {
                r.parse::<std::net::IpAddr>()
                    .map(|ip| SocketAddr::new(ip, 53))
            })
            .map_err(|_| {
                invalid(
                    "acme.dns_resolvers",
                    format!("{r:?} is not an address or address:port"),
                )
            })?;
        dns_resolvers.push(addr);
    }
    if raw.validation_timeout_secs == 0 || raw.validation_timeout_secs > 300 {
        return Err(invalid(
            "acme.validation_timeout_secs",
            "must be between 1 and 300",
        ));
    }
    if raw.nonce_lifetime_secs < 10 {
        return Err(invalid("acme.nonce_lifetime_secs", "must be at least 10"));
    }
    if raw.order_lifetime_hours == 0 || raw.authz_lifetime_hours == 0 {
        return Err(invalid(
            "acme.order_lifetime_hours",
            "order and authorization lifetimes must be at least 1 hour",
        ));
    }
    for p in std::iter::once(&raw.default_profile).chain(&raw.profiles) {
        if p.is_empty()
            || !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(invalid(
                "acme.profiles",
                format!("{p:?} is not a profile name"),
            ));
        }
    }
    let mut caa_identities = Vec::new();
    for i in &raw.caa_identities {
        let domain = i.trim().trim_end_matches('.').to_ascii_lowercase();
        if domain.is_empty() || domain.contains(|c: char| c.is_whitespace() || c == ';') {
            return Err(invalid(
                "acme.caa_identities",
                format!("{i:?} is not an issuer domain name"),
            ));
        }
        caa_identities.push(domain);
    }
    Ok(AcmeSettings {
        enabled: raw.enabled,
        default_profile: raw.default_profile,
        profiles: raw.profiles,
        http01_port: raw.http01_port,
        tls_alpn01_port: raw.tls_alpn01_port,
        dns_resolvers,
        validation_timeout: std::time::Duration::from_secs(raw.validation_timeout_secs),
        nonce_lifetime_secs: raw.nonce_lifetime_secs as i64,
        order_lifetime_secs: raw.order_lifetime_hours as i64 * 3600,
        authz_lifetime_secs: raw.authz_lifetime_hours as i64 * 3600,
        terms_of_service: raw.terms_of_service,
        website: raw.website,
        caa_identities,
        new_orders_per_account_per_hour: raw.new_orders_per_account_per_hour,
        new_accounts_per_ip_per_hour: raw.new_accounts_per_ip_per_hour,
        eab_required: raw.eab_required,
    })
}

impl Default for RawSettings {
    fn default() -> Self {
        RawSettings {
            database_url: None,
            https_listen: "127.0.0.1:8443".into(),
            http_listen: "127.0.0.1:8080".into(),
            public_url: None,
            server_names: Vec::new(),
            master_key: None,
            crl_validity_hours: 24,
            ocsp_signer: OcspSigner::Ca,
            ca_key_algorithm: "ecdsa-p256".into(),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            max_body_bytes: 1 << 20,
            db_max_connections: 8,
            server_cert_days: 30,
            est_default_profile: "default".into(),
            est_client_ca_file: None,
            est_trust_own_cas: true,
            discovery_allow: String::new(),
            discovery_concurrency: 256,
            discovery_timeout_ms: 3000,
            discovery_pps: 0,
            discovery_alert_days: 30,
            discovery_schedule_secs: 30,
            alert_sweep_seconds: 300,
            alert_delivery_seconds: 5,
            alert_max_attempts: 8,
            alert_retry_base_seconds: 30,
            acme: RawAcme::default(),
        }
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the database (SQLite), master key, admin token and root certificate live.
    pub data_dir: PathBuf,
    /// `sqlite://...` (default, in the data directory) or `postgres://...`.
    pub database_url: String,
    /// HTTPS listener (API, and everything else).
    pub https_listen: SocketAddr,
    /// Plain-HTTP listener: CA certificates, CRLs, OCSP, health.
    pub http_listen: SocketAddr,
    /// Base URL written into certificates for AIA, CRL and OCSP (default `http://<http_listen>`).
    pub public_url: String,
    /// Extra names for the server's own HTTPS certificate.
    pub server_names: Vec<String>,
    /// Master key (base64 of 32 bytes) from settings or environment; else the data-dir file.
    pub master_key: Option<Secret>,
    /// How long a CRL is valid; it is regenerated when half of that has passed.
    pub crl_validity_hours: u32,
    /// Who signs OCSP responses.
    pub ocsp_signer: OcspSigner,
    /// Key type of the CAs made on first start.
    pub ca_key_algorithm: KeyAlgorithm,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (tracing `EnvFilter` syntax).
    pub log_level: String,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Database pool size.
    pub db_max_connections: u32,
    /// Lifetime of the server's own HTTPS certificate.
    pub server_cert_days: u32,
    /// Profile used by EST on the bare `/.well-known/est/` path (no label).
    pub est_default_profile: String,
    /// Bootstrap (manufacturer) CAs, DER, whose certificates authenticate EST enrollment as
    /// TLS client certificates; read from `est_client_ca_file` (PEM) at start.
    pub est_client_cas: Vec<Vec<u8>>,
    /// Whether certificates issued by this server may renew themselves over EST.
    pub est_trust_own_cas: bool,
    /// Seconds between expiry-alert sweeps.
    pub alert_sweep_seconds: u32,
    /// Seconds between passes over the alert outbox.
    pub alert_delivery_seconds: u32,
    /// Delivery attempts before an alert is marked dead.
    pub alert_max_attempts: u32,
    /// First retry delay of a failed alert delivery (doubling on each further failure).
    pub alert_retry_base_seconds: u32,
    /// The ACME server.
    pub acme: AcmeSettings,
    /// Discovery scans submitted through the API or run on a schedule.
    pub discovery: DiscoverySettings,
}

/// Limits for server-side discovery scans.
#[derive(Debug, Clone)]
pub struct DiscoverySettings {
    /// Networks the server may scan (`discovery_allow`, comma-separated CIDRs; empty: none).
    pub allow: Vec<ipnetwork::IpNetwork>,
    /// Probes in flight at once per scan.
    pub concurrency: usize,
    /// Timeout of each probe step.
    pub timeout: std::time::Duration,
    /// New connections per second per scan (`None`: no budget).
    pub packets_per_second: Option<u32>,
    /// Days before expiry at which a found certificate counts as expiring.
    pub alert_days: u32,
    /// How often due scheduled scans are looked for.
    pub schedule_interval: std::time::Duration,
}

/// Why settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A layer could not be read or has a wrong type or an unknown key.
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value is out of range or malformed.
    #[error("configuration: {key}: {message}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

impl Settings {
    /// Load the layers: defaults, then `config_file` (or `<data_dir>/certkeeper.toml` if it
    /// exists), then `CERTKEEPER_*` environment variables; then validate.
    pub fn load(data_dir: &Path, config_file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(RawSettings::default()));
        match config_file {
            Some(f) => {
                if !f.exists() {
                    return Err(invalid(
                        "config",
                        format!("file {} does not exist", f.display()),
                    ));
                }
                fig = fig.merge(Toml::file(f));
            }
            None => fig = fig.merge(Toml::file(data_dir.join("certkeeper.toml"))),
        }
        fig = fig.merge(
            Env::prefixed("CERTKEEPER_")
                .ignore(&["DATA_DIR", "CONFIG", "SERVER", "TOKEN", "CA_FILE"])
                .lowercase(true)
                .split("__"),
        );
        let raw: RawSettings = fig.extract().map_err(Box::new)?;
        Self::validate(data_dir, raw)
    }

    fn validate(data_dir: &Path, raw: RawSettings) -> Result<Settings, ConfigError> {
        let https_listen: SocketAddr = raw.https_listen.parse().map_err(|_| {
            invalid(
                "https_listen",
                format!("{:?} is not an address:port", raw.https_listen),
            )
        })?;
        let http_listen: SocketAddr = raw.http_listen.parse().map_err(|_| {
            invalid(
                "http_listen",
                format!("{:?} is not an address:port", raw.http_listen),
            )
        })?;
        let database_url = match raw.database_url {
            Some(u)
                if u.starts_with("postgres://")
                    || u.starts_with("postgresql://")
                    || u.starts_with("sqlite:") =>
            {
                u
            }
            Some(u) => {
                return Err(invalid(
                    "database_url",
                    format!(
                        "{:?} must start with sqlite:, postgres:// or postgresql://",
                        redact_url(&u)
                    ),
                ));
            }
            None => format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("certkeeper.db").display()
            ),
        };
        let public_url = raw
            .public_url
            .unwrap_or_else(|| format!("http://{http_listen}"))
            .trim_end_matches('/')
            .to_string();
        let parsed =
            url::Url::parse(&public_url).map_err(|e| invalid("public_url", e.to_string()))?;
        if parsed.scheme() != "http" {
            return Err(invalid(
                "public_url",
                "must be an http:// URL (CRL and OCSP clients fetch over plain HTTP, RFC 5280 / RFC 6960)",
            ));
        }
        let ca_key_algorithm: KeyAlgorithm = raw
            .ca_key_algorithm
            .parse()
            .map_err(|e: certkeeper_ca::CaError| invalid("ca_key_algorithm", e.to_string()))?;
        if !KeyAlgorithm::GENERATABLE.contains(&ca_key_algorithm) {
            return Err(invalid(
                "ca_key_algorithm",
                format!("{ca_key_algorithm} cannot be generated"),
            ));
        }
        if raw.crl_validity_hours == 0 || raw.crl_validity_hours > 24 * 31 {
            return Err(invalid("crl_validity_hours", "must be between 1 and 744"));
        }
        if raw.max_body_bytes < 1024 {
            return Err(invalid("max_body_bytes", "must be at least 1024"));
        }
        if raw.db_max_connections == 0 {
            return Err(invalid("db_max_connections", "must be at least 1"));
        }
        if raw.server_cert_days == 0 || raw.server_cert_days > 397 {
            return Err(invalid("server_cert_days", "must be between 1 and 397"));
        }
        if raw.alert_sweep_seconds < 10 || raw.alert_sweep_seconds > 86_400 {
            return Err(invalid(
                "alert_sweep_seconds",
                "must be between 10 and 86400",
            ));
        }
        if raw.alert_delivery_seconds == 0 || raw.alert_delivery_seconds > 3600 {
            return Err(invalid(
                "alert_delivery_seconds",
                "must be between 1 and 3600",
            ));
        }
        if raw.alert_max_attempts == 0 || raw.alert_max_attempts > 100 {
            return Err(invalid("alert_max_attempts", "must be between 1 and 100"));
        }
        if raw.alert_retry_base_seconds == 0 || raw.alert_retry_base_seconds > 3600 {
            return Err(invalid(
                "alert_retry_base_seconds",
                "must be between 1 and 3600",
            ));
        }
        for n in &raw.server_names {
            if n.parse::<std::net::IpAddr>().is_err() {
                certkeeper_ca::normalize_dns_name(n).map_err(|e| invalid("server_names", e))?;
            }
        }
        if raw.est_default_profile.trim().is_empty() {
            return Err(invalid("est_default_profile", "must name a profile"));
        }
        let est_client_cas = match &raw.est_client_ca_file {
            None => Vec::new(),
            Some(f) => {
                let bytes = std::fs::read(f)
                    .map_err(|e| invalid("est_client_ca_file", format!("{}: {e}", f.display())))?;
                let certs = certkeeper_ca::parse_pem_or_der_certs(&bytes)
                    .map_err(|e| invalid("est_client_ca_file", format!("{}: {e}", f.display())))?;
                if certs.is_empty() {
                    return Err(invalid(
                        "est_client_ca_file",
                        format!("{} holds no certificate", f.display()),
                    ));
                }
                certs
            }
        };
        let allow = raw
            .discovery_allow
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                n.parse::<ipnetwork::IpNetwork>()
                    .map_err(|e| invalid("discovery_allow", format!("{n:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if raw.discovery_concurrency == 0 || raw.discovery_concurrency > 100_000 {
            return Err(invalid(
                "discovery_concurrency",
                "must be between 1 and 100000",
            ));
        }
        if raw.discovery_timeout_ms < 10 || raw.discovery_timeout_ms > 600_000 {
            return Err(invalid(
                "discovery_timeout_ms",
                "must be between 10 and 600000",
            ));
        }
        if raw.discovery_schedule_secs == 0 {
            return Err(invalid("discovery_schedule_secs", "must be at least 1"));
        }
        let discovery = DiscoverySettings {
            allow,
            concurrency: raw.discovery_concurrency,
            timeout: std::time::Duration::from_millis(raw.discovery_timeout_ms),
            packets_per_second: (raw.discovery_pps > 0).then_some(raw.discovery_pps),
            alert_days: raw.discovery_alert_days,
            schedule_interval: std::time::Duration::from_secs(raw.discovery_schedule_secs),
        };
        tracing_subscriber::EnvFilter::try_new(&raw.log_level)
            .map_err(|e| invalid("log_level", e.to_string()))?;
        Ok(Settings {
            data_dir: data_dir.to_path_buf(),
            database_url,
            https_listen,
            http_listen,
            public_url,
            server_names: raw.server_names,
            master_key: raw.master_key,
            crl_validity_hours: raw.crl_validity_hours,
            ocsp_signer: raw.ocsp_signer,
            ca_key_algorithm,
            log_format: raw.log_format,
            log_level: raw.log_level,
            max_body_bytes: raw.max_body_bytes,
            db_max_connections: raw.db_max_connections,
            server_cert_days: raw.server_cert_days,
            est_default_profile: raw.est_default_profile,
            est_client_cas,
            est_trust_own_cas: raw.est_trust_own_cas,
            discovery,
            alert_sweep_seconds: raw.alert_sweep_seconds,
            alert_delivery_seconds: raw.alert_delivery_seconds,
            alert_max_attempts: raw.alert_max_attempts,
            alert_retry_base_seconds: raw.alert_retry_base_seconds,
            acme: validate_acme(raw.acme)?,
        })
    }

    /// Whether the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }
}

/// A database URL with any password replaced, for messages.
pub fn redact_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        _ => u.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let s = Settings::validate(Path::new("/tmp/x"), RawSettings::default()).unwrap();
        assert_eq!(s.https_listen.to_string(), "127.0.0.1:8443");
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        assert!(s.database_url.starts_with("sqlite:///tmp/x/certkeeper.db"));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let raw = RawSettings {
            https_listen: "nope".into(),
            ..Default::default()
        };
        let e = Settings::validate(Path::new("/tmp"), raw).unwrap_err();
        assert!(e.to_string().contains("https_listen"), "{e}");
        let raw = RawSettings {
            database_url: Some("mysql://u:pw@h/db".into()),
            ..Default::default()
        };
        let e = Settings::validate(Path::new("/tmp"), raw)
            .unwrap_err()
            .to_string();
        assert!(e.contains("database_url") && !e.contains("pw@"), "{e}");
        let raw = RawSettings {
            ca_key_algorithm: "dsa".into(),
            ..Default::default()
        };
        assert!(Settings::validate(Path::new("/tmp"), raw).is_err());
        let raw = RawSettings {
            public_url: Some("https://x".into()),
            ..Default::default()
        };
        assert!(Settings::validate(Path::new("/tmp"), raw).is_err());
        let raw = RawSettings {
            discovery_allow: "10.0.0.0/8, nonsense".into(),
            ..Default::default()
        };
        let e = Settings::validate(Path::new("/tmp"), raw)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("discovery_allow") && e.contains("nonsense"),
            "{e}"
        );
        let raw = RawSettings {
            discovery_allow: "10.0.0.0/8, 127.0.0.0/8".into(),
            ..Default::default()
        };
        let s = Settings::validate(Path::new("/tmp"), raw).unwrap();
        assert_eq!(s.discovery.allow.len(), 2);
    }

    #[test]
    fn est_client_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let raw = RawSettings {
            est_client_ca_file: Some(dir.path().join("missing.pem")),
            ..Default::default()
        };
        let e = Settings::validate(dir.path(), raw).unwrap_err().to_string();
        assert!(e.contains("est_client_ca_file"), "{e}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let raw = RawSettings {
            est_client_ca_file: Some(junk),
            ..Default::default()
        };
        let e = Settings::validate(dir.path(), raw).unwrap_err().to_string();
        assert!(e.contains("est_client_ca_file"), "{e}");
        let raw = RawSettings {
            est_default_profile: " ".into(),
            ..Default::default()
        };
        assert!(Settings::validate(dir.path(), raw).is_err());
    }

    #[test]
    fn caa_identities_are_issuer_domain_names() {
        let with = |ids: &[&str]| RawSettings {
            acme: RawAcme {
                caa_identities: ids.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            ..Default::default()
        };
        let s = Settings::validate(Path::new("/tmp"), with(&[" CA.Example. "])).unwrap();
        assert_eq!(s.acme.caa_identities, ["ca.example"]);
        for bad in ["", "ca.example; accounturi=x", "ca example"] {
            let e = Settings::validate(Path::new("/tmp"), with(&[bad]))
                .unwrap_err()
                .to_string();
            assert!(e.contains("acme.caa_identities"), "{e}");
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s:?}"), "<redacted>");
    }
}
