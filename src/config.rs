//! Settings: defaults < `certkeeper.toml` < `CERTKEEPER_<SECTION>__<NAME>` environment
//! variables, then validated into a typed [`Settings`]. The file has one table per section
//! (`[server]`, `[database]`, `[ca]`, `[acme]`, `[est]`, `[discovery]`, `[alerts]`, `[jobs]`,
//! `[hsm]`); every duration is a string with a unit (`"30s"`, `"24h"`, `"7d"`). A key that is
//! not a setting, in the file or the environment, is refused with its full name.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use certkeeper_ca::KeyAlgorithm;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod duration;

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

/// Raw settings as read from the layers, before validation: one table per section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    server: RawServer,
    database: RawDatabase,
    ca: RawCa,
    acme: RawAcme,
    est: RawEst,
    discovery: RawDiscovery,
    alerts: RawAlerts,
    jobs: RawJobs,
    hsm: RawHsm,
}

/// Raw `[server]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    https_listen: String,
    http_listen: String,
    acme_challenge_listen: Option<String>,
    public_url: Option<String>,
    cert_names: Vec<String>,
    #[serde(with = "duration")]
    cert_validity: Duration,
    max_body_bytes: usize,
    log_format: LogFormat,
    log_level: String,
    #[serde(with = "duration")]
    header_read_timeout: Duration,
    #[serde(with = "duration")]
    idle_timeout: Duration,
    #[serde(with = "duration")]
    keep_alive_interval: Duration,
    max_connections: usize,
    max_connections_per_ip: usize,
    #[serde(with = "duration")]
    shutdown_grace: Duration,
    batch_scheduling: bool,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            https_listen: "127.0.0.1:8443".into(),
            http_listen: "127.0.0.1:8080".into(),
            acme_challenge_listen: None,
            public_url: None,
            cert_names: Vec::new(),
            cert_validity: DAY * 30,
            max_body_bytes: 1 << 20,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            header_read_timeout: SECOND * 10,
            idle_timeout: MINUTE,
            keep_alive_interval: SECOND * 30,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            shutdown_grace: SECOND * 20,
            batch_scheduling: true,
        }
    }
}

/// Raw `[database]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDatabase {
    url: Option<String>,
    max_connections: u32,
}

impl Default for RawDatabase {
    fn default() -> Self {
        RawDatabase {
            url: None,
            max_connections: 8,
        }
    }
}

/// Raw `[ca]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCa {
    master_key: Option<Secret>,
    key_algorithm: String,
    #[serde(with = "duration")]
    crl_validity: Duration,
    ocsp_signer: OcspSigner,
    default_profile_names: Vec<String>,
}

impl Default for RawCa {
    fn default() -> Self {
        RawCa {
            master_key: None,
            key_algorithm: "ecdsa-p256".into(),
            crl_validity: HOUR * 24,
            ocsp_signer: OcspSigner::Ca,
            default_profile_names: Vec::new(),
        }
    }
}

/// Raw `[hsm]` settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHsm {
    module: Option<PathBuf>,
    token_label: Option<String>,
    pin: Option<Secret>,
    pin_file: Option<PathBuf>,
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
    #[serde(with = "duration")]
    validation_timeout: Duration,
    #[serde(with = "duration")]
    nonce_lifetime: Duration,
    #[serde(with = "duration")]
    order_lifetime: Duration,
    #[serde(with = "duration")]
    authz_lifetime: Duration,
    terms_of_service: Option<String>,
    website: Option<String>,
    caa_identities: Vec<String>,
    new_orders_per_account_per_hour: u32,
    new_accounts_per_ip_per_hour: u32,
    eab_required: Vec<String>,
    max_concurrent_validations: usize,
    max_concurrent_validations_per_account: usize,
    max_pending_authorizations_per_account: u32,
    #[serde(with = "duration")]
    retention: Duration,
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
            validation_timeout: SECOND * 10,
            nonce_lifetime: HOUR,
            order_lifetime: HOUR * 24,
            authz_lifetime: DAY * 7,
            terms_of_service: None,
            website: None,
            caa_identities: Vec::new(),
            new_orders_per_account_per_hour: 300,
            new_accounts_per_ip_per_hour: 50,
            eab_required: Vec::new(),
            max_concurrent_validations: 200,
            max_concurrent_validations_per_account: 100,
            max_pending_authorizations_per_account: 300,
            retention: DAY * 30,
        }
    }
}

/// Raw `[est]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawEst {
    default_profile: String,
    mtls_listen: Option<String>,
    client_ca_file: Option<PathBuf>,
    trust_own_cas: bool,
    max_auth_failures: u32,
    #[serde(with = "duration")]
    auth_failure_window: Duration,
}

impl Default for RawEst {
    fn default() -> Self {
        RawEst {
            default_profile: "default".into(),
            mtls_listen: None,
            client_ca_file: None,
            trust_own_cas: true,
            max_auth_failures: 10,
            auth_failure_window: MINUTE * 15,
        }
    }
}

/// Raw `[discovery]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDiscovery {
    allow: String,
    concurrency: usize,
    #[serde(with = "duration")]
    timeout: Duration,
    packets_per_second: u32,
    #[serde(with = "duration")]
    alert_window: Duration,
    max_endpoints: u64,
}

impl Default for RawDiscovery {
    fn default() -> Self {
        RawDiscovery {
            allow: String::new(),
            concurrency: 256,
            timeout: SECOND * 3,
            packets_per_second: 0,
            alert_window: DAY * 30,
            max_endpoints: 65_536,
        }
    }
}

/// Raw `[alerts]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAlerts {
    max_attempts: u32,
    #[serde(with = "duration")]
    retry_base: Duration,
    concurrency: usize,
}

impl Default for RawAlerts {
    fn default() -> Self {
        RawAlerts {
            max_attempts: 8,
            retry_base: SECOND * 30,
            concurrency: 8,
        }
    }
}

/// Raw `[jobs]` settings: the same fields as [`JobSettings`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawJobs {
    #[serde(with = "duration")]
    crl_refresh: Duration,
    #[serde(with = "duration")]
    managed_certificates: Duration,
    #[serde(with = "duration")]
    acme_reclaim: Duration,
    #[serde(with = "duration")]
    server_certificate: Duration,
    #[serde(with = "duration")]
    discovery_schedules: Duration,
    #[serde(with = "duration")]
    alert_sweep: Duration,
    #[serde(with = "duration")]
    alert_delivery: Duration,
    #[serde(with = "duration")]
    acme_prune: Duration,
}

impl Default for RawJobs {
    fn default() -> Self {
        RawJobs {
            crl_refresh: MINUTE,
            managed_certificates: MINUTE,
            acme_reclaim: SECOND * 30,
            server_certificate: MINUTE * 10,
            discovery_schedules: SECOND * 30,
            alert_sweep: MINUTE * 5,
            alert_delivery: SECOND * 5,
            acme_prune: HOUR,
        }
    }
}

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// Validated settings, one field per section of `certkeeper.toml`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the database (SQLite), master key, admin token and root certificate live.
    pub data_dir: PathBuf,
    /// The listeners, the server's own certificate, request limits and logging (`[server]`).
    pub server: ServerSettings,
    /// The database (`[database]`).
    pub database: DatabaseSettings,
    /// Keys, CRLs and OCSP (`[ca]`).
    pub ca: CaSettings,
    /// The ACME server (`[acme]`).
    pub acme: AcmeSettings,
    /// The EST server (`[est]`).
    pub est: EstSettings,
    /// Discovery scans submitted through the API or run on a schedule (`[discovery]`).
    pub discovery: DiscoverySettings,
    /// Delivery of expiry alerts (`[alerts]`).
    pub alerts: AlertSettings,
    /// How often each background task runs (`[jobs]`).
    pub jobs: JobSettings,
    /// The PKCS#11 token CA keys may be kept in (`[hsm]`), when `hsm.module` is set.
    pub hsm: Option<HsmSettings>,
}

/// The `[hsm]` section (environment `CERTKEEPER_HSM__<NAME>`): the PKCS#11 token that
/// holds the keys of the CAs created with `key_storage: pkcs11`.
#[derive(Debug, Clone)]
pub struct HsmSettings {
    /// The PKCS#11 module (shared library) of the token's vendor.
    pub module: PathBuf,
    /// The label of the token.
    pub token_label: String,
    /// The user PIN, from `hsm.pin` (better: `CERTKEEPER_HSM__PIN`) or `hsm.pin_file`.
    pub pin: Secret,
}

/// The `[server]` section (environment `CERTKEEPER_SERVER__<NAME>`).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// HTTPS listener (API, and everything else).
    pub https_listen: SocketAddr,
    /// Plain-HTTP listener: CA certificates, CRLs, OCSP, health (and the http-01 answers
    /// for external ACME issuers).
    pub http_listen: SocketAddr,
    /// A further plain-HTTP listener that serves only `/.well-known/acme-challenge/` (the
    /// http-01 answers while an external ACME CA validates), e.g. `0.0.0.0:80`; none by
    /// default.
    pub acme_challenge_listen: Option<SocketAddr>,
    /// Base URL written into certificates for AIA, CRL and OCSP (default `http://<http_listen>`).
    pub public_url: String,
    /// Extra names for the server's own HTTPS certificate.
    pub cert_names: Vec<String>,
    /// Lifetime of the server's own HTTPS certificate (whole days).
    pub cert_validity: Duration,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (tracing `EnvFilter` syntax).
    pub log_level: String,
    /// How long a new connection has to finish its TLS handshake and send its first request
    /// head, and an HTTP/1 connection each further request head (so also how long an idle
    /// keep-alive connection waits for its next request).
    pub header_read_timeout: Duration,
    /// A connection with no bytes moving either way for this long is closed (HTTP/1 and
    /// HTTP/2).
    pub idle_timeout: Duration,
    /// HTTP/2: a PING after this long without frames; no answer within
    /// `header_read_timeout` closes the connection.
    pub keep_alive_interval: Duration,
    /// Open connections over both listeners; more are closed at accept (0: no cap).
    pub max_connections: usize,
    /// Open connections from one client address; more are closed at accept (0: no cap).
    pub max_connections_per_ip: usize,
    /// On SIGTERM: how long requests in flight (and job runs under way) may take to finish
    /// once the listeners stopped accepting; connections still open then are closed.
    pub shutdown_grace: Duration,
    /// Linux: run the server's threads under `SCHED_BATCH` (see [`crate::sched`]).
    pub batch_scheduling: bool,
}

impl ServerSettings {
    /// [`ServerSettings::cert_validity`] in days.
    pub fn cert_validity_days(&self) -> u32 {
        u32::try_from(self.cert_validity.as_secs() / DAY.as_secs()).unwrap_or(u32::MAX)
    }
}

/// The `[database]` section (environment `CERTKEEPER_DATABASE__<NAME>`).
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `sqlite://...` (default, in the data directory) or `postgres://...`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
}

/// The `[ca]` section (environment `CERTKEEPER_CA__<NAME>`).
#[derive(Debug, Clone)]
pub struct CaSettings {
    /// Master key (base64 of 32 bytes) from settings or environment; else the data-dir file.
    pub master_key: Option<Secret>,
    /// Key type of the CAs made on first start.
    pub key_algorithm: KeyAlgorithm,
    /// How long a CRL is valid; it is regenerated when half of that has passed.
    pub crl_validity: Duration,
    /// Who signs OCSP responses.
    pub ocsp_signer: OcspSigner,
    /// DNS name rules the `default` profile allows when first start creates it (none:
    /// it allows no names until an operator sets them).
    pub default_profile_dns: Vec<certkeeper_ca::DnsRule>,
    /// IP ranges the `default` profile allows when first start creates it.
    pub default_profile_ips: Vec<ipnetwork::IpNetwork>,
}

/// The `[acme]` section (environment `CERTKEEPER_ACME__<NAME>`).
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
    pub validation_timeout: Duration,
    /// How long a nonce stays usable.
    pub nonce_lifetime: Duration,
    /// How long an order may take to complete.
    pub order_lifetime: Duration,
    /// How long an authorization (pending or valid) lasts and may be reused.
    pub authz_lifetime: Duration,
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
    /// Challenge validations in flight at once in one process (0: no cap); past it a
    /// challenge request is answered `rateLimited` and the challenge stays pending.
    pub max_concurrent_validations: usize,
    /// The same for one account (0: no cap).
    pub max_concurrent_validations_per_account: usize,
    /// Pending authorizations one account may hold; a new order that needs more is answered
    /// `rateLimited` (0: no cap).
    pub max_pending_authorizations_per_account: u32,
    /// How long orders and authorizations are kept after they expire (orders whose
    /// certificate is still valid are kept longer) before the `acme-prune` job deletes them.
    pub retention: Duration,
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
    pub fn stuck_validation_after(&self) -> Duration {
        self.validation_timeout * 2 + SECOND * 30
    }

    /// Whether `profile`'s directory requires external account binding.
    pub fn eab_required(&self, profile: &str) -> bool {
        self.eab_required.iter().any(|p| p == profile)
    }
}

/// The `[est]` section (environment `CERTKEEPER_EST__<NAME>`).
#[derive(Debug, Clone)]
pub struct EstSettings {
    /// Profile used by EST on the bare `/.well-known/est/` path (no label).
    pub default_profile: String,
    /// An HTTPS listener for EST that asks clients for a TLS client certificate (enrollment
    /// by a bootstrap certificate, re-enrollment by the certificate being renewed). The
    /// main HTTPS listener never asks, so browsers opening the dashboard are not prompted.
    /// `None`: EST runs on the main listener with HTTP Basic credentials only.
    pub mtls_listen: Option<SocketAddr>,
    /// Bootstrap (manufacturer) CAs, DER, whose certificates authenticate EST enrollment as
    /// TLS client certificates; read from `est.client_ca_file` (PEM) at start.
    pub client_cas: Vec<Vec<u8>>,
    /// Whether certificates issued by this server may renew themselves over EST.
    pub trust_own_cas: bool,
    /// Failed HTTP Basic logins from one address, or for one user name, after which further
    /// attempts are refused (429) until the window ends.
    pub max_auth_failures: u32,
    /// How long failed logins are counted (from the first one).
    pub auth_failure_window: Duration,
}

/// The `[discovery]` section (environment `CERTKEEPER_DISCOVERY__<NAME>`): limits for
/// server-side discovery scans.
#[derive(Debug, Clone)]
pub struct DiscoverySettings {
    /// Networks the server may scan (`discovery.allow`, comma-separated CIDRs; empty: none).
    pub allow: Vec<ipnetwork::IpNetwork>,
    /// Probes in flight at once per scan.
    pub concurrency: usize,
    /// Timeout of each probe step.
    pub timeout: Duration,
    /// New connections per second per scan (`None`: no budget).
    pub packets_per_second: Option<u32>,
    /// How long before expiry a found certificate counts as expiring.
    pub alert_window: Duration,
    /// Endpoints (address × port × name) one scan may probe at most; a larger plan is
    /// refused.
    pub max_endpoints: u64,
}

/// The `[alerts]` section (environment `CERTKEEPER_ALERTS__<NAME>`). How often alerts are
/// swept and delivered is in [`JobSettings`].
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// Delivery attempts before an alert is marked dead.
    pub max_attempts: u32,
    /// First retry delay of a failed alert delivery (doubling on each further failure).
    pub retry_base: Duration,
    /// Channels delivered to at once (each channel's alerts go out one after another).
    pub concurrency: usize,
}

/// The `[jobs]` section (environment `CERTKEEPER_JOBS__<NAME>`): the interval of every
/// periodic background task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSettings {
    /// Regenerate CRLs that passed half their validity.
    pub crl_refresh: Duration,
    /// Renew managed certificates and push them to their destinations.
    pub managed_certificates: Duration,
    /// Take over ACME validations left unfinished by a stopped process, and end orders
    /// they interrupted.
    pub acme_reclaim: Duration,
    /// Check whether the server's own HTTPS certificate needs renewal.
    pub server_certificate: Duration,
    /// Look for due scheduled discovery scans.
    pub discovery_schedules: Duration,
    /// Sweep certificates for expiry alerts.
    pub alert_sweep: Duration,
    /// Pass over the alert outbox.
    pub alert_delivery: Duration,
    /// Delete expired ACME orders, authorizations, challenges, rate-limit windows and
    /// used-nonce records (see `acme.retention`).
    pub acme_prune: Duration,
}

/// Why settings were refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A layer could not be read or has a value of the wrong type.
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A key that is not a setting (misspelled, or a name from before the sections).
    #[error("configuration: unknown setting `{key}` ({origin}){hint}")]
    Unknown {
        /// The key's full name (`server.htps_listen`).
        key: String,
        /// Where it was found: the file or the environment variable.
        origin: String,
        /// The setting probably meant, as `; ...` text, or empty.
        hint: String,
    },
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

/// `value` if it lies within `min..=max`, else an error naming `key` and the range.
fn within(
    key: &'static str,
    value: Duration,
    min: Duration,
    max: Duration,
) -> Result<Duration, ConfigError> {
    if value < min || value > max {
        return Err(invalid(
            key,
            format!(
                "must be between {} and {}",
                duration::format(min),
                duration::format(max)
            ),
        ));
    }
    Ok(value)
}

/// Environment variables with the `CERTKEEPER_` prefix that are not server settings: the
/// command line's own (data directory, settings file, the client's server, token, CA file
/// and EST credentials). `CERTKEEPER_TEST_*` belong to the test suite.
const NOT_SETTINGS: [&str; 7] = [
    "data_dir",
    "config",
    "server",
    "token",
    "ca_file",
    "est_username",
    "est_password",
];

/// The flat names used before the sections, and what each became (durations now carry
/// their unit in the value).
const RENAMED: [(&str, &str); 29] = [
    ("database_url", "database.url"),
    ("db_max_connections", "database.max_connections"),
    ("https_listen", "server.https_listen"),
    ("http_listen", "server.http_listen"),
    ("public_url", "server.public_url"),
    ("server_names", "server.cert_names"),
    ("server_cert_days", "server.cert_validity"),
    ("max_body_bytes", "server.max_body_bytes"),
    ("log_format", "server.log_format"),
    ("log_level", "server.log_level"),
    ("master_key", "ca.master_key"),
    ("ca_key_algorithm", "ca.key_algorithm"),
    ("crl_validity_hours", "ca.crl_validity"),
    ("ocsp_signer", "ca.ocsp_signer"),
    ("est_default_profile", "est.default_profile"),
    ("est_client_ca_file", "est.client_ca_file"),
    ("est_trust_own_cas", "est.trust_own_cas"),
    ("discovery_allow", "discovery.allow"),
    ("discovery_concurrency", "discovery.concurrency"),
    ("discovery_timeout_ms", "discovery.timeout"),
    ("discovery_pps", "discovery.packets_per_second"),
    ("discovery_alert_days", "discovery.alert_window"),
    ("discovery_schedule_secs", "jobs.discovery_schedules"),
    ("alert_sweep_seconds", "jobs.alert_sweep"),
    ("alert_delivery_seconds", "jobs.alert_delivery"),
    ("alert_max_attempts", "alerts.max_attempts"),
    ("alert_retry_base_seconds", "alerts.retry_base"),
    ("acme.validation_timeout_secs", "acme.validation_timeout"),
    ("acme.nonce_lifetime_secs", "acme.nonce_lifetime"),
];

/// The same for the `[acme]` lifetimes given in hours before.
const RENAMED_ACME_HOURS: [(&str, &str); 2] = [
    ("acme.order_lifetime_hours", "acme.order_lifetime"),
    ("acme.authz_lifetime_hours", "acme.authz_lifetime"),
];

/// The environment variable that sets `key` (`server.https_listen` →
/// `CERTKEEPER_SERVER__HTTPS_LISTEN`).
pub fn env_var(key: &str) -> String {
    format!("CERTKEEPER_{}", key.replace('.', "__").to_ascii_uppercase())
}

/// Every key [`RawSettings`] knows, sections and settings, as dotted names.
fn known_keys() -> Vec<String> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        if let serde_json::Value::Object(map) = v {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(&key, v, out);
                out.push(key);
            }
        }
    }
    let mut out = Vec::new();
    let defaults =
        serde_json::to_value(RawSettings::default()).expect("default settings serialize");
    walk("", &defaults, &mut out);
    out
}

/// The first key in `fig` that is not a setting, as an error saying where it came from and
/// what was probably meant.
fn refuse_unknown_keys(fig: &Figment) -> Result<(), ConfigError> {
    fn walk(
        fig: &Figment,
        known: &[String],
        prefix: &str,
        dict: &figment::value::Dict,
    ) -> Result<(), ConfigError> {
        for (k, v) in dict {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if !known.contains(&key) {
                let origin = match fig.find_metadata(&key).and_then(|m| m.source.as_ref()) {
                    Some(figment::Source::File(f)) => format!("in {}", f.display()),
                    _ => format!("environment variable {}", env_var(&key)),
                };
                return Err(ConfigError::Unknown {
                    hint: hint(&key, known),
                    key,
                    origin,
                });
            }
            if let figment::value::Value::Dict(_, inner) = v {
                walk(fig, known, &key, inner)?;
            }
        }
        Ok(())
    }
    let data: figment::value::Dict = fig.extract().map_err(Box::new)?;
    walk(fig, &known_keys(), "", &data)
}

/// What an unknown `key` probably meant: the new name of an old flat name, or a known key
/// one or two edits away.
fn hint(key: &str, known: &[String]) -> String {
    let renamed = RENAMED
        .iter()
        .chain(&RENAMED_ACME_HOURS)
        .find(|(old, _)| *old == key);
    if let Some((old, new)) = renamed {
        let unit = if old.ends_with("_secs")
            || old.ends_with("_seconds")
            || old.ends_with("_ms")
            || old.ends_with("_hours")
            || old.ends_with("_days")
        {
            format!(", {}", duration::EXPECTED)
        } else {
            String::new()
        };
        return format!("; it is now `{new}` ({}){unit}", env_var(new));
    }
    known
        .iter()
        .filter(|k| k.contains('.') == key.contains('.'))
        .map(|k| (edit_distance(k, key), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

/// Levenshtein distance between two short ASCII keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

impl Settings {
    /// Load the layers: defaults, then `config_file` (or `<data_dir>/certkeeper.toml` if it
    /// exists), then `CERTKEEPER_<SECTION>__<NAME>` environment variables; refuse unknown
    /// keys; then validate.
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
                .filter(|k| {
                    let k = k.as_str().to_ascii_lowercase();
                    !k.starts_with("test_") && !NOT_SETTINGS.contains(&k.as_str())
                })
                .lowercase(true)
                .split("__"),
        );
        refuse_unknown_keys(&fig)?;
        let raw: RawSettings = fig.extract().map_err(Box::new)?;
        Self::validate(data_dir, raw)
    }

    fn validate(data_dir: &Path, raw: RawSettings) -> Result<Settings, ConfigError> {
        Ok(Settings {
            data_dir: data_dir.to_path_buf(),
            server: validate_server(raw.server)?,
            database: validate_database(data_dir, raw.database)?,
            ca: validate_ca(raw.ca)?,
            acme: validate_acme(raw.acme)?,
            est: validate_est(raw.est)?,
            discovery: validate_discovery(raw.discovery)?,
            alerts: validate_alerts(raw.alerts)?,
            jobs: validate_jobs(raw.jobs)?,
            hsm: validate_hsm(raw.hsm)?,
        })
    }

    /// Whether the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.database.url.starts_with("postgres")
    }
}

fn validate_server(raw: RawServer) -> Result<ServerSettings, ConfigError> {
    let https_listen: SocketAddr = raw.https_listen.parse().map_err(|_| {
        invalid(
            "server.https_listen",
            format!("{:?} is not an address:port", raw.https_listen),
        )
    })?;
    let http_listen: SocketAddr = raw.http_listen.parse().map_err(|_| {
        invalid(
            "server.http_listen",
            format!("{:?} is not an address:port", raw.http_listen),
        )
    })?;
    let public_url = raw
        .public_url
        .unwrap_or_else(|| format!("http://{http_listen}"))
        .trim_end_matches('/')
        .to_string();
    let parsed =
        url::Url::parse(&public_url).map_err(|e| invalid("server.public_url", e.to_string()))?;
    if parsed.scheme() != "http" {
        return Err(invalid(
            "server.public_url",
            "must be an http:// URL (CRL and OCSP clients fetch over plain HTTP, RFC 5280 / RFC 6960)",
        ));
    }
    for n in &raw.cert_names {
        if n.parse::<std::net::IpAddr>().is_err() {
            certkeeper_ca::normalize_dns_name(n).map_err(|e| invalid("server.cert_names", e))?;
        }
    }
    let cert_validity = within("server.cert_validity", raw.cert_validity, DAY, DAY * 397)?;
    if cert_validity.as_secs() % DAY.as_secs() != 0 || cert_validity.subsec_nanos() != 0 {
        return Err(invalid(
            "server.cert_validity",
            "must be a whole number of days (\"30d\")",
        ));
    }
    if raw.max_body_bytes < 1024 {
        return Err(invalid("server.max_body_bytes", "must be at least 1024"));
    }
    tracing_subscriber::EnvFilter::try_new(&raw.log_level)
        .map_err(|e| invalid("server.log_level", e.to_string()))?;
    let acme_challenge_listen = raw
        .acme_challenge_listen
        .as_deref()
        .map(|a| {
            a.parse::<SocketAddr>().map_err(|_| {
                invalid(
                    "server.acme_challenge_listen",
                    format!("{a:?} is not an address:port"),
                )
            })
        })
        .transpose()?;
    Ok(ServerSettings {
        https_listen,
        http_listen,
        acme_challenge_listen,
        public_url,
        cert_names: raw.cert_names,
        cert_validity,
        max_body_bytes: raw.max_body_bytes,
        log_format: raw.log_format,
        log_level: raw.log_level,
        header_read_timeout: within(
            "server.header_read_timeout",
            raw.header_read_timeout,
            SECOND,
            MINUTE * 5,
        )?,
        idle_timeout: within("server.idle_timeout", raw.idle_timeout, SECOND, HOUR)?,
        keep_alive_interval: within(
            "server.keep_alive_interval",
            raw.keep_alive_interval,
            SECOND,
            HOUR,
        )?,
        max_connections: raw.max_connections,
        max_connections_per_ip: raw.max_connections_per_ip,
        shutdown_grace: within(
            "server.shutdown_grace",
            raw.shutdown_grace,
            Duration::ZERO,
            HOUR,
        )?,
        batch_scheduling: raw.batch_scheduling,
    })
}

fn validate_database(data_dir: &Path, raw: RawDatabase) -> Result<DatabaseSettings, ConfigError> {
    let url = match raw.url {
        Some(u)
            if u.starts_with("postgres://")
                || u.starts_with("postgresql://")
                || u.starts_with("sqlite:") =>
        {
            u
        }
        Some(u) => {
            return Err(invalid(
                "database.url",
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
    if raw.max_connections == 0 {
        return Err(invalid("database.max_connections", "must be at least 1"));
    }
    Ok(DatabaseSettings {
        url,
        max_connections: raw.max_connections,
    })
}

fn validate_ca(raw: RawCa) -> Result<CaSettings, ConfigError> {
    let key_algorithm: KeyAlgorithm = raw
        .key_algorithm
        .parse()
        .map_err(|e: certkeeper_ca::CaError| invalid("ca.key_algorithm", e.to_string()))?;
    if !KeyAlgorithm::GENERATABLE.contains(&key_algorithm) {
        return Err(invalid(
            "ca.key_algorithm",
            format!("{key_algorithm} cannot be generated"),
        ));
    }
    let mut default_profile_dns = Vec::new();
    let mut default_profile_ips = Vec::new();
    for n in &raw.default_profile_names {
        if let Ok(net) = n.trim().parse::<ipnetwork::IpNetwork>() {
            default_profile_ips.push(net);
        } else {
            default_profile_dns.push(n.parse::<certkeeper_ca::DnsRule>().map_err(|e| {
                invalid(
                    "ca.default_profile_names",
                    format!("{n:?} is neither a DNS rule nor an IP range: {e}"),
                )
            })?);
        }
    }
    Ok(CaSettings {
        default_profile_dns,
        default_profile_ips,
        master_key: raw.master_key,
        key_algorithm,
        crl_validity: within("ca.crl_validity", raw.crl_validity, HOUR, DAY * 31)?,
        ocsp_signer: raw.ocsp_signer,
    })
}

fn validate_hsm(raw: RawHsm) -> Result<Option<HsmSettings>, ConfigError> {
    let Some(module) = raw.module else {
        if raw.token_label.is_some() || raw.pin.is_some() || raw.pin_file.is_some() {
            return Err(invalid(
                "hsm.module",
                "the PKCS#11 module must be set with the other [hsm] settings",
            ));
        }
        return Ok(None);
    };
    let token_label = raw
        .token_label
        .filter(|l| !l.trim().is_empty())
        .ok_or_else(|| invalid("hsm.token_label", "the token's label must be set"))?;
    if token_label.len() > 32 {
        return Err(invalid(
            "hsm.token_label",
            "a PKCS#11 token label has at most 32 bytes",
        ));
    }
    let pin = match (raw.pin, raw.pin_file) {
        (Some(pin), None) => pin,
        (None, Some(file)) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| invalid("hsm.pin_file", format!("{}: {e}", file.display())))?;
            Secret(text.trim_end_matches(['\r', '\n']).to_string())
        }
        (None, None) => {
            return Err(invalid(
                "hsm.pin",
                "set the token's user PIN with hsm.pin (CERTKEEPER_HSM__PIN) or hsm.pin_file",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(invalid("hsm.pin", "set hsm.pin or hsm.pin_file, not both"));
        }
    };
    if pin.expose().is_empty() || pin.expose().len() > 255 {
        return Err(invalid("hsm.pin", "the PIN must be 1 to 255 bytes"));
    }
    Ok(Some(HsmSettings {
        module,
        token_label,
        pin,
    }))
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
    let validation_timeout = within(
        "acme.validation_timeout",
        raw.validation_timeout,
        SECOND,
        MINUTE * 5,
    )?;
    let nonce_lifetime = within("acme.nonce_lifetime", raw.nonce_lifetime, SECOND * 10, DAY)?;
    let order_lifetime = within("acme.order_lifetime", raw.order_lifetime, HOUR, DAY * 365)?;
    let authz_lifetime = within("acme.authz_lifetime", raw.authz_lifetime, HOUR, DAY * 365)?;
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
        validation_timeout,
        nonce_lifetime,
        order_lifetime,
        authz_lifetime,
        terms_of_service: raw.terms_of_service,
        website: raw.website,
        caa_identities,
        new_orders_per_account_per_hour: raw.new_orders_per_account_per_hour,
        new_accounts_per_ip_per_hour: raw.new_accounts_per_ip_per_hour,
        eab_required: raw.eab_required,
        max_concurrent_validations: raw.max_concurrent_validations,
        max_concurrent_validations_per_account: raw.max_concurrent_validations_per_account,
        max_pending_authorizations_per_account: raw.max_pending_authorizations_per_account,
        retention: within("acme.retention", raw.retention, HOUR, DAY * 3650)?,
    })
}

fn validate_est(raw: RawEst) -> Result<EstSettings, ConfigError> {
    if raw.default_profile.trim().is_empty() {
        return Err(invalid("est.default_profile", "must name a profile"));
    }
    let client_cas = match &raw.client_ca_file {
        None => Vec::new(),
        Some(f) => {
            let bytes = std::fs::read(f)
                .map_err(|e| invalid("est.client_ca_file", format!("{}: {e}", f.display())))?;
            let certs = certkeeper_ca::parse_pem_or_der_certs(&bytes)
                .map_err(|e| invalid("est.client_ca_file", format!("{}: {e}", f.display())))?;
            if certs.is_empty() {
                return Err(invalid(
                    "est.client_ca_file",
                    format!("{} holds no certificate", f.display()),
                ));
            }
            certs
        }
    };
    if !(1..=1000).contains(&raw.max_auth_failures) {
        return Err(invalid(
            "est.max_auth_failures",
            "must be between 1 and 1000",
        ));
    }
    let mtls_listen = match raw.mtls_listen.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(a) => Some(a.parse::<SocketAddr>().map_err(|e| {
            invalid(
                "est.mtls_listen",
                format!("{a:?} is not an address and port: {e}"),
            )
        })?),
    };
    Ok(EstSettings {
        default_profile: raw.default_profile,
        mtls_listen,
        client_cas,
        trust_own_cas: raw.trust_own_cas,
        max_auth_failures: raw.max_auth_failures,
        auth_failure_window: within(
            "est.auth_failure_window",
            raw.auth_failure_window,
            SECOND,
            DAY,
        )?,
    })
}

fn validate_discovery(raw: RawDiscovery) -> Result<DiscoverySettings, ConfigError> {
    let allow = raw
        .allow
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            n.parse::<ipnetwork::IpNetwork>()
                .map_err(|e| invalid("discovery.allow", format!("{n:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if raw.concurrency == 0 || raw.concurrency > 100_000 {
        return Err(invalid(
            "discovery.concurrency",
            "must be between 1 and 100000",
        ));
    }
    Ok(DiscoverySettings {
        allow,
        concurrency: raw.concurrency,
        timeout: within(
            "discovery.timeout",
            raw.timeout,
            Duration::from_millis(10),
            MINUTE * 10,
        )?,
        packets_per_second: (raw.packets_per_second > 0).then_some(raw.packets_per_second),
        alert_window: within(
            "discovery.alert_window",
            raw.alert_window,
            Duration::ZERO,
            DAY * 3650,
        )?,
        max_endpoints: if (1..=16_777_216).contains(&raw.max_endpoints) {
            raw.max_endpoints
        } else {
            return Err(invalid(
                "discovery.max_endpoints",
                "must be between 1 and 16777216",
            ));
        },
    })
}

fn validate_alerts(raw: RawAlerts) -> Result<AlertSettings, ConfigError> {
    if raw.max_attempts == 0 || raw.max_attempts > 100 {
        return Err(invalid("alerts.max_attempts", "must be between 1 and 100"));
    }
    if raw.concurrency == 0 || raw.concurrency > 256 {
        return Err(invalid("alerts.concurrency", "must be between 1 and 256"));
    }
    Ok(AlertSettings {
        max_attempts: raw.max_attempts,
        retry_base: within("alerts.retry_base", raw.retry_base, SECOND, HOUR)?,
        concurrency: raw.concurrency,
    })
}

fn validate_jobs(raw: RawJobs) -> Result<JobSettings, ConfigError> {
    Ok(JobSettings {
        crl_refresh: within("jobs.crl_refresh", raw.crl_refresh, SECOND, DAY)?,
        managed_certificates: within(
            "jobs.managed_certificates",
            raw.managed_certificates,
            SECOND,
            DAY,
        )?,
        acme_reclaim: within("jobs.acme_reclaim", raw.acme_reclaim, SECOND, DAY)?,
        server_certificate: within(
            "jobs.server_certificate",
            raw.server_certificate,
            SECOND,
            DAY,
        )?,
        discovery_schedules: within(
            "jobs.discovery_schedules",
            raw.discovery_schedules,
            SECOND,
            DAY,
        )?,
        alert_sweep: within("jobs.alert_sweep", raw.alert_sweep, SECOND * 10, DAY)?,
        alert_delivery: within("jobs.alert_delivery", raw.alert_delivery, SECOND, HOUR)?,
        acme_prune: within("jobs.acme_prune", raw.acme_prune, SECOND, DAY)?,
    })
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

    /// Load `toml` as the settings file (the process environment still applies, as at
    /// start; the test suite sets no `CERTKEEPER_*` settings).
    fn load_toml(toml: &str) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("certkeeper.toml"), toml).unwrap();
        Settings::load(dir.path(), None)
    }

    #[test]
    fn defaults_validate() {
        let s = Settings::validate(Path::new("/tmp/x"), RawSettings::default()).unwrap();
        assert_eq!(s.server.https_listen.to_string(), "127.0.0.1:8443");
        assert_eq!(s.server.public_url, "http://127.0.0.1:8080");
        assert!(s.database.url.starts_with("sqlite:///tmp/x/certkeeper.db"));
        assert_eq!(s.server.cert_validity_days(), 30);
        assert_eq!(s.ca.crl_validity, HOUR * 24);
        assert_eq!(
            s.jobs,
            JobSettings {
                crl_refresh: SECOND * 60,
                managed_certificates: SECOND * 60,
                acme_reclaim: SECOND * 30,
                server_certificate: SECOND * 600,
                discovery_schedules: SECOND * 30,
                alert_sweep: SECOND * 300,
                alert_delivery: SECOND * 5,
                acme_prune: HOUR,
            }
        );
        assert_eq!(s.server.header_read_timeout, SECOND * 10);
        assert_eq!(s.server.max_connections_per_ip, 256);
        assert!(s.server.batch_scheduling);
        let off = load_toml("[server]\nbatch_scheduling = false\n").unwrap();
        assert!(!off.server.batch_scheduling);
        assert_eq!(s.acme.max_concurrent_validations, 200);
        assert_eq!(s.acme.max_pending_authorizations_per_account, 300);
        assert_eq!(s.acme.retention, DAY * 30);
    }

    #[test]
    fn sections_and_durations_load_from_the_file() {
        let s = load_toml(
            r#"
[server]
https_listen = "127.0.0.1:9443"
cert_validity = "10d"
[database]
url = "postgres://u@h/db"
[ca]
crl_validity = "12h"
[acme]
validation_timeout = "3000ms"
order_lifetime = "2h"
[discovery]
timeout = "3s"
alert_window = "14d"
[alerts]
retry_base = "1m"
[jobs]
crl_refresh = "2m"
alert_sweep = "1h30m"
"#,
        )
        .unwrap();
        assert_eq!(s.server.https_listen.port(), 9443);
        assert_eq!(s.server.cert_validity_days(), 10);
        assert!(s.is_postgres());
        assert_eq!(s.ca.crl_validity, HOUR * 12);
        assert_eq!(s.acme.validation_timeout, SECOND * 3);
        assert_eq!(s.acme.order_lifetime, HOUR * 2);
        assert_eq!(s.discovery.timeout, SECOND * 3);
        assert_eq!(s.discovery.alert_window, DAY * 14);
        assert_eq!(s.alerts.retry_base, MINUTE);
        assert_eq!(s.jobs.crl_refresh, MINUTE * 2);
        assert_eq!(s.jobs.alert_sweep, MINUTE * 90);
    }

    #[test]
    fn unknown_keys_are_refused_with_their_full_name() {
        let e = load_toml("[server]\nhtps_listen = \"127.0.0.1:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown setting `server.htps_listen`"), "{e}");
        assert!(e.contains("certkeeper.toml"), "{e}");
        assert!(e.contains("did you mean `server.https_listen`"), "{e}");

        let e = load_toml("no_such_setting = 1\n").unwrap_err().to_string();
        assert!(e.contains("unknown setting `no_such_setting`"), "{e}");
        assert!(!e.contains("did you mean"), "{e}");

        let e = load_toml("[nope]\nx = 1\n").unwrap_err().to_string();
        assert!(e.contains("unknown setting `nope`"), "{e}");
    }

    #[test]
    fn old_flat_names_point_to_the_new_ones() {
        let e = load_toml("est_default_profile = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown setting `est_default_profile`"), "{e}");
        assert!(
            e.contains("`est.default_profile` (CERTKEEPER_EST__DEFAULT_PROFILE)"),
            "{e}"
        );
        let e = load_toml("alert_sweep_seconds = 60\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`jobs.alert_sweep` (CERTKEEPER_JOBS__ALERT_SWEEP)")
                && e.contains("duration with a unit"),
            "{e}"
        );
        let e = load_toml("[acme]\nauthz_lifetime_hours = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown setting `acme.authz_lifetime_hours`")
                && e.contains("`acme.authz_lifetime`"),
            "{e}"
        );
        // Every new name in the table exists.
        let known = known_keys();
        for (_, new) in RENAMED.iter().chain(&RENAMED_ACME_HOURS) {
            assert!(known.iter().any(|k| k == new), "{new}");
        }
    }

    #[test]
    fn durations_need_a_unit_and_a_range() {
        let e = load_toml("[jobs]\ncrl_refresh = 60\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("crl_refresh"), "{e}");
        let e = load_toml("[jobs]\ncrl_refresh = \"60\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("crl_refresh") && e.contains("duration with a unit"),
            "{e}"
        );
        let e = load_toml("[jobs]\nalert_sweep = \"5s\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("jobs.alert_sweep: must be between 10s and 1d"),
            "{e}"
        );
        let e = load_toml("[server]\ncert_validity = \"36h\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("server.cert_validity") && e.contains("whole"),
            "{e}"
        );
        let e = load_toml("[ca]\ncrl_validity = \"32d\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ca.crl_validity"), "{e}");
    }

    #[test]
    fn environment_variable_names_follow_the_sections() {
        assert_eq!(
            env_var("server.https_listen"),
            "CERTKEEPER_SERVER__HTTPS_LISTEN"
        );
        assert_eq!(env_var("acme.http01_port"), "CERTKEEPER_ACME__HTTP01_PORT");
        assert_eq!(env_var("log_level"), "CERTKEEPER_LOG_LEVEL");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let mut raw = RawSettings::default();
        raw.server.https_listen = "nope".into();
        let e = Settings::validate(Path::new("/tmp"), raw).unwrap_err();
        assert!(e.to_string().contains("server.https_listen"), "{e}");
        let mut raw = RawSettings::default();
        raw.database.url = Some("mysql://u:pw@h/db".into());
        let e = Settings::validate(Path::new("/tmp"), raw)
            .unwrap_err()
            .to_string();
        assert!(e.contains("database.url") && !e.contains("pw@"), "{e}");
        let mut raw = RawSettings::default();
        raw.ca.key_algorithm = "dsa".into();
        assert!(Settings::validate(Path::new("/tmp"), raw).is_err());
        let mut raw = RawSettings::default();
        raw.server.public_url = Some("https://x".into());
        assert!(Settings::validate(Path::new("/tmp"), raw).is_err());
        let mut raw = RawSettings::default();
        raw.discovery.allow = "10.0.0.0/8, nonsense".into();
        let e = Settings::validate(Path::new("/tmp"), raw)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("discovery.allow") && e.contains("nonsense"),
            "{e}"
        );
        let mut raw = RawSettings::default();
        raw.discovery.allow = "10.0.0.0/8, 127.0.0.0/8".into();
        let s = Settings::validate(Path::new("/tmp"), raw).unwrap();
        assert_eq!(s.discovery.allow.len(), 2);
    }

    #[test]
    fn hsm_settings_name_module_token_and_one_pin() {
        let dir = tempfile::tempdir().unwrap();
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, "1234\n").unwrap();
        let s = load_toml(&format!(
            "[hsm]\nmodule = \"/usr/lib/x.so\"\ntoken_label = \"ca\"\npin_file = {:?}\n",
            pin_file.display().to_string()
        ))
        .unwrap();
        let hsm = s.hsm.expect("[hsm] is configured");
        assert_eq!(hsm.token_label, "ca");
        assert_eq!(
            hsm.pin.expose(),
            "1234",
            "the file's newline is not part of the PIN"
        );
        assert!(
            !format!("{hsm:?}").contains("1234"),
            "the PIN is never printed"
        );
        assert!(load_toml("").unwrap().hsm.is_none());
        for (toml, key) in [
            ("[hsm]\ntoken_label = \"ca\"\npin = \"1\"\n", "hsm.module"),
            (
                "[hsm]\nmodule = \"/x.so\"\npin = \"1\"\n",
                "hsm.token_label",
            ),
            (
                "[hsm]\nmodule = \"/x.so\"\ntoken_label = \"ca\"\n",
                "hsm.pin",
            ),
            (
                "[hsm]\nmodule = \"/x.so\"\ntoken_label = \"ca\"\npin = \"1\"\npin_file = \"/p\"\n",
                "hsm.pin",
            ),
            (
                "[hsm]\nmodule = \"/x.so\"\ntoken_label = \"ca\"\npin_file = \"/nonexistent/pin\"\n",
                "hsm.pin_file",
            ),
        ] {
            let e = load_toml(toml).unwrap_err().to_string();
            assert!(e.contains(key), "{toml}: {e}");
        }
    }

    #[test]
    fn est_client_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let mut raw = RawSettings::default();
        raw.est.client_ca_file = Some(dir.path().join("missing.pem"));
        let e = Settings::validate(dir.path(), raw).unwrap_err().to_string();
        assert!(e.contains("est.client_ca_file"), "{e}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let mut raw = RawSettings::default();
        raw.est.client_ca_file = Some(junk);
        let e = Settings::validate(dir.path(), raw).unwrap_err().to_string();
        assert!(e.contains("est.client_ca_file"), "{e}");
        let mut raw = RawSettings::default();
        raw.est.default_profile = " ".into();
        assert!(Settings::validate(dir.path(), raw).is_err());
    }

    #[test]
    fn caa_identities_are_issuer_domain_names() {
        let with = |ids: &[&str]| {
            let mut raw = RawSettings::default();
            raw.acme.caa_identities = ids.iter().map(|s| s.to_string()).collect();
            raw
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
