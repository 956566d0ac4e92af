//! First start and every start: data directory, master key, database, the default CA
//! hierarchy and profile, the server CA, the admin token, `root.pem` (what profiles issue
//! under), `server-ca.pem` (what the server's HTTPS certificate is issued under: the file
//! clients pin), and the server's own certificate. Nothing that exists is ever overwritten.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use base64::Engine;
use certkeeper_ca::{
    CaSpec, Clock, DnsRule, IssuanceRequest, KeyAlgorithm, MasterKey, Profile, PublicKeyData,
};
use ipnetwork::IpNetwork;
use time::Duration;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::services::pki::{Actor, KeyStorage, Pki};
use crate::services::tokens::new_token;
use crate::store::{ProfileRecord, Role, Store, StoreError, TokenRecord, new_id};

/// Name of the root CA made on first start.
pub const DEFAULT_ROOT: &str = "root";
/// Name of the intermediate CA made on first start.
pub const DEFAULT_INTERMEDIATE: &str = "intermediate";
/// The profile made on first start: 90 days, signed by the default intermediate, for the
/// names `ca.default_profile_names` gave at first start (none by default).
pub const DEFAULT_PROFILE: &str = "default";
/// The profile that issued the server's HTTPS certificate before it had a CA of its own;
/// removed at start where an older version made it.
pub const LEGACY_SERVER_PROFILE: &str = "certkeeper-server";
pub use crate::services::pki::SERVER_CA;
/// The file, in the data directory, holding the server CA's certificate: what the CLI, the
/// EST client and other clients of the server itself trust.
pub const SERVER_CA_FILE: &str = "server-ca.pem";
const SERVER_TLS_STATE: &str = "server_tls_certificate";

/// What start-up produced.
#[derive(Debug)]
pub struct Booted {
    /// The CA service.
    pub pki: Arc<Pki>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The admin token, when it was created by this start (shown once).
    pub new_admin_token: Option<String>,
}

/// Write a new file only its owner may read (it must not exist).
pub fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

fn load_master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(key) = read_master_key(settings)? {
        return Ok(key);
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let path = settings.data_dir.join("master.key");
    let (key, raw) = MasterKey::generate()?;
    write_private(&path, format!("{}\n", b64.encode(raw)).as_bytes())?;
    tracing::info!(path = %path.display(), "created master key");
    Ok(key)
}

/// The master key from the `ca.master_key` setting or `<data_dir>/master.key`, if there is
/// one; a key file others may read is refused.
pub fn read_master_key(settings: &Settings) -> anyhow::Result<Option<MasterKey>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(s) = &settings.ca.master_key {
        let raw = b64
            .decode(s.expose().trim())
            .context("ca.master_key (CERTKEEPER_CA__MASTER_KEY) must be base64 of 32 bytes")?;
        return Ok(Some(
            MasterKey::from_bytes(&raw).context("ca.master_key must be 32 bytes")?,
        ));
    }
    let path = settings.data_dir.join("master.key");
    if path.exists() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by others (mode {mode:o}); chmod 600 it",
                path.display()
            );
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let raw = b64
            .decode(text.trim())
            .context("master.key must hold base64 of 32 bytes")?;
        return Ok(Some(
            MasterKey::from_bytes(&raw).context("master.key must hold 32 bytes")?,
        ));
    }
    Ok(None)
}

/// Prepare everything a server or `init` needs.
pub async fn boot(settings: Arc<Settings>, clock: Arc<dyn Clock>) -> anyhow::Result<Booted> {
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&settings.data_dir)
            .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    }
    let master = Arc::new(load_master_key(&settings)?);
    let store = Store::connect(&settings)
        .await
        .context("opening the database")?;
    let metrics = Arc::new(Metrics::default());
    let token = match &settings.hsm {
        Some(hsm) => {
            let token =
                crate::hsm::Token::open(hsm).context("opening the PKCS#11 token ([hsm])")?;
            tracing::info!(token = %token.label(), module = %hsm.module.display(), "PKCS#11 token opened");
            Some(token)
        }
        None => None,
    };
    let pki = Arc::new(
        Pki::new(store, master, clock, settings.clone(), metrics.clone()).with_token(token),
    );
    pki.check_token_keys()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("finding the CA keys kept in the PKCS#11 token")?;
    ensure_default_hierarchy(&pki).await?;
    ensure_server_ca(&pki).await?;
    remove_legacy_server_profile(&pki).await?;
    let new_admin_token = ensure_admin_token(&pki).await?;
    write_ca_pem(&pki, DEFAULT_ROOT, "root.pem").await?;
    write_ca_pem(&pki, SERVER_CA, SERVER_CA_FILE).await?;
    Ok(Booted {
        pki,
        metrics,
        new_admin_token,
    })
}

async fn ensure_default_hierarchy(pki: &Pki) -> anyhow::Result<()> {
    let system = Actor::system();
    let alg = pki.settings().ca.key_algorithm;
    if !pki.store().list_cas().await?.is_empty() {
        return Ok(());
    }
    let mut root_spec = CaSpec::new("certkeeper Root CA", alg);
    root_spec.validity_days = 3650;
    match pki
        .create_root(DEFAULT_ROOT, &root_spec, KeyStorage::Sealed, &system)
        .await
    {
        Ok(ca) => tracing::info!(id = %ca.id, subject = %ca.subject, "created root CA"),
        // Another replica sharing the database got there first.
        Err(crate::error::Error::Conflict(_)) => return Ok(()),
        Err(e) => return Err(anyhow::anyhow!("creating the root CA: {e}")),
    }
    let mut int_spec = CaSpec::new("certkeeper Intermediate CA", alg);
    int_spec.validity_days = 1825;
    int_spec.path_len = Some(0);
    let int = pki
        .create_intermediate(
            DEFAULT_INTERMEDIATE,
            DEFAULT_ROOT,
            &int_spec,
            KeyStorage::Sealed,
            &system,
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating the intermediate CA: {e}"))?;
    tracing::info!(id = %int.id, subject = %int.subject, "created intermediate CA");
    let ca = &pki.settings().ca;
    let mut policy = Profile::tls_server(DEFAULT_PROFILE);
    policy.allowed_dns_names = ca.default_profile_dns.clone();
    policy.allowed_ip_ranges = ca.default_profile_ips.clone();
    insert_profile(pki, &int.id, policy).await
}

/// The server CA: a root of its own (path length 0) that signs only the server's HTTPS
/// certificate, made at first start and at the first start of a version that has it.
async fn ensure_server_ca(pki: &Pki) -> anyhow::Result<()> {
    match pki.store().get_ca(SERVER_CA).await {
        Ok(_) => return Ok(()),
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let mut spec = CaSpec::new("certkeeper Server CA", pki.settings().ca.key_algorithm);
    spec.validity_days = 3650;
    spec.path_len = Some(0);
    match pki
        .create_root(SERVER_CA, &spec, KeyStorage::Sealed, &Actor::system())
        .await
    {
        Ok(ca) => {
            tracing::info!(id = %ca.id, subject = %ca.subject, "created the server CA");
            Ok(())
        }
        // Another replica sharing the database got there first.
        Err(crate::error::Error::Conflict(_)) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("creating the server CA: {e}")),
    }
}

/// Remove the profile older versions issued the server's certificate through: under the
/// default intermediate, it let anyone holding a token for it obtain the server's names.
async fn remove_legacy_server_profile(pki: &Pki) -> anyhow::Result<()> {
    if pki
        .store()
        .get_profile(LEGACY_SERVER_PROFILE)
        .await
        .is_err()
    {
        return Ok(());
    }
    let ev = Actor::system()
        .event("profile.delete", "profile")
        .object(LEGACY_SERVER_PROFILE)
        .detail(serde_json::json!({"reason": "the server certificate has its own CA"}));
    match pki
        .store()
        .delete_profile(LEGACY_SERVER_PROFILE, &ev, pki.now())
        .await
    {
        Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Record a profile made by the server itself; a profile another replica made first wins.
async fn insert_profile(pki: &Pki, ca_id: &str, policy: Profile) -> anyhow::Result<()> {
    let now = pki.now();
    let name = policy.name.clone();
    let rec = ProfileRecord {
        id: new_id(),
        ca_id: ca_id.to_string(),
        policy,
        created_at: now,
        updated_at: now,
    };
    let ev = Actor::system()
        .event("profile.create", "profile")
        .object(&rec.id)
        .detail(serde_json::json!({ "name": name }));
    match pki.store().insert_profile(&rec, &ev).await {
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What the server's own certificate may be: TLS server only, P-256, exactly its names.
fn server_policy(settings: &Settings, dns: &[String], ips: &[std::net::IpAddr]) -> Profile {
    let mut p = Profile::tls_server(crate::services::pki::SERVER_CERT_POLICY);
    p.max_validity_days = settings.server.cert_validity_days();
    p.ext_key_usages = vec![certkeeper_ca::ExtKeyUsage::ServerAuth];
    p.allowed_key_types = vec![KeyAlgorithm::EcdsaP256];
    p.allowed_dns_names = dns.iter().map(|d| DnsRule::Exact(d.clone())).collect();
    p.allowed_ip_ranges = ips.iter().map(|ip| IpNetwork::from(*ip)).collect();
    p
}

async fn ensure_admin_token(pki: &Pki) -> anyhow::Result<Option<String>> {
    if !pki.store().list_tokens().await?.is_empty() {
        return Ok(None);
    }
    let (token, hash) = new_token().map_err(|e| anyhow::anyhow!("{e}"))?;
    let rec = TokenRecord::new(
        new_id(),
        "admin".into(),
        Role::Admin,
        vec![],
        vec![],
        hash,
        pki.now(),
        None,
        "system".into(),
    );
    let ev = Actor::system()
        .event("token.create", "token")
        .object(&rec.id)
        .detail(serde_json::json!({"name": "admin", "role": "admin"}));
    pki.store().insert_token(&rec, &ev).await?;
    let path = pki.settings().data_dir.join("admin.token");
    let _ = std::fs::remove_file(&path);
    write_private(&path, format!("{token}\n").as_bytes())?;
    Ok(Some(token))
}

/// Write a CA's certificate to `file` in the data directory when it differs.
async fn write_ca_pem(pki: &Pki, ca: &str, file: &str) -> anyhow::Result<()> {
    let rec = pki
        .store()
        .get_ca(ca)
        .await
        .with_context(|| format!("the CA {ca:?} is missing"))?;
    let der = rec
        .cert_der
        .with_context(|| format!("the CA {ca:?} has no certificate"))?;
    let path = pki.settings().data_dir.join(file);
    let pem = certkeeper_ca::pem_encode_certs([der.as_slice()]);
    if std::fs::read_to_string(&path).ok().as_deref() != Some(pem.as_str()) {
        std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The server's HTTPS certificate chain (leaf first) and PKCS#8 key, issued under the
/// server CA (through the registration authority's own path for it, recorded like any
/// certificate) when missing, not under the server CA, not covering the configured names,
/// or past two thirds of its life.
pub async fn server_certificate(pki: &Pki) -> anyhow::Result<(Vec<Vec<u8>>, Vec<u8>)> {
    let settings = pki.settings();
    let (dns, ips) = pki.server_names().map_err(|e| anyhow::anyhow!("{e}"))?;
    let server_ca = pki
        .store()
        .get_ca(SERVER_CA)
        .await
        .context("the server CA is missing")?;
    let now = pki.now();
    if let Some(id) = pki.store().get_state(SERVER_TLS_STATE).await? {
        let id = String::from_utf8_lossy(&id).to_string();
        if let Ok(rec) = pki.store().get_certificate(&id).await {
            let life = rec.not_after - rec.not_before;
            let covers = dns
                .iter()
                .chain(ips.iter().map(|i| i.to_string()).collect::<Vec<_>>().iter())
                .all(|n| rec.sans.contains(n));
            if rec.status == "valid"
                && rec.ca_id == server_ca.id
                && covers
                && rec.not_after - now > life / 3
                && let Some(sealed) = pki.store().get_certificate_key(&id).await?
            {
                {
                    let key = pki
                        .master()
                        .open(&sealed, format!("cert:{id}").as_bytes())?;
                    let ca = pki.store().get_ca(&rec.ca_id).await?;
                    let mut chain = vec![rec.der.clone()];
                    let above = pki
                        .chain_of(&ca)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    chain.extend(above);
                    chain.pop_if(|c| {
                        certkeeper_ca::inspect_certificate(c).is_ok_and(|i| i.self_signed)
                    });
                    return Ok((chain, key));
                }
            }
        }
    }
    let policy = server_policy(settings, &dns, &ips);
    let key = KeyAlgorithm::EcdsaP256.generate()?;
    let mut req = IssuanceRequest::for_key(&key.subject_public_key_info());
    req.dns_names = dns;
    req.ip_addresses = ips;
    req.validity = Some(Duration::days(settings.server.cert_validity_days().into()));
    let pkcs8 = key.serialize_der();
    let issued = pki
        .issue_server_certificate(policy, req, &pkcs8)
        .await
        .map_err(|e| anyhow::anyhow!("issuing the server certificate: {e}"))?;
    pki.store()
        .put_state(SERVER_TLS_STATE, issued.id.as_bytes(), now.unix_timestamp())
        .await?;
    tracing::info!(serial = %issued.cert.info.serial, not_after = %issued.cert.info.not_after, "issued server HTTPS certificate");
    let mut chain = vec![issued.cert.der.clone()];
    chain.extend(issued.chain.iter().cloned());
    chain.pop_if(|c| certkeeper_ca::inspect_certificate(c).is_ok_and(|i| i.self_signed));
    Ok((chain, pkcs8))
}
