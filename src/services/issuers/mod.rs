//! Issuers: where certificates come from. An issuer is one of our own CAs or an external
//! CA that certkeeper asks on its users' behalf (a registration authority in front of it):
//! any ACME CA, or an AWS Private CA. An external issuer stands in the inventory as a CA row of kind
//! `external` and status `disabled` (certkeeper holds no key of it), so a profile names it
//! like any CA, and what it issues is recorded, alerted on, renewed and synced like our
//! own certificates.
//!
//! Policy first: a request is checked against the profile before anything is sent
//! upstream ([`certkeeper_ca::Profile::approve_for_upstream`]); the key is made and sealed
//! here and only a CSR leaves the process. The upstream's answer is checked too: the
//! certificate must be for our key and the approved names.
//!
//! Revocation of a certificate an external issuer signed goes upstream first
//! ([`IssuerService::revoke`]): only once the upstream has revoked it is it marked revoked
//! here, so a refusal there changes nothing.

pub mod port;

use std::sync::Arc;

use base64::Engine;
use certkeeper_ca::{CertInfo, IssuanceRequest, IssuedCertificate, KeyPair, PublicKeyData};
use serde::Serialize;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;

use crate::error::Error;
use crate::services::pki::{Actor, Issued, Pki, key_context};
use crate::store::{
    CertRecord, IssuerRecord, NewCaRecord, NewCertificate, ProfileRecord, StoreError, new_id,
};
use crate::upstream::acme::{AcmeConfig, AcmeUpstream, DNS_01, HTTP_01};
use crate::upstream::aws_pca::{AwsPcaConfig, AwsPcaUpstream};
use crate::upstream::cloudflare::Cloudflare;
use crate::upstream::rfc2136::Rfc2136;
use crate::upstream::route53::Route53;
use certkeeper_sync::{AwsCredentials, SyncError};
use port::{BoxFuture, ChallengeBoard, DnsProvider, RenewalAdvice, UpstreamCa, UpstreamOrder};

/// The kind of an ACME issuer.
pub const KIND_ACME: &str = "acme";
/// The kind of an AWS Private CA issuer.
pub const KIND_AWS_PCA: &str = "aws_pca";
/// Longest EAB HMAC key accepted, in bytes.
const MAX_EAB_KEY: usize = 256;
/// Longest trust bundle accepted, in bytes.
const MAX_TRUST_BUNDLE: usize = 64 * 1024;
/// Most contact URIs.
const MAX_CONTACTS: usize = 10;
/// How long an http-01 answer stays published at most.
const HTTP01_LIFETIME: Duration = Duration::minutes(10);

/// The seal context of an issuer's secret (`eab`, `account` or `dns`). The `eab` context
/// seals the issuer's own secret column whatever its kind: the EAB key of an ACME issuer,
/// the access keys of an AWS Private CA issuer.
pub fn seal_context(what: &str, id: &str) -> Vec<u8> {
    format!("issuer:{what}:{id}").into_bytes()
}

/// A new AWS Private CA issuer.
#[derive(Debug, Clone)]
pub struct NewAwsPcaIssuer {
    /// Unique name (shared with the CAs).
    pub name: String,
    /// Its settings.
    pub config: AwsPcaConfig,
    /// Static access keys, sealed with the issuer; without them, the named profile or the
    /// standard AWS chain.
    pub credentials: Option<certkeeper_sync::AwsCredentials>,
}

/// A new ACME issuer.
#[derive(Debug, Clone)]
pub struct NewAcmeIssuer {
    /// Unique name (shared with the CAs).
    pub name: String,
    /// Its settings.
    pub config: AcmeConfig,
    /// The EAB HMAC key, base64url as CAs hand it out; with `config.eab_kid` only.
    pub eab_hmac_key: Option<String>,
    /// The TSIG secret (base64, as `tsig-keygen` writes it) of `config.rfc2136`.
    pub tsig_secret: Option<String>,
    /// The API token of `config.cloudflare`.
    pub cloudflare_api_token: Option<String>,
    /// Static AWS credentials of `config.route53`; the profile or the standard AWS chain
    /// when absent.
    pub route53_credentials: Option<AwsCredentials>,
}

/// An issuer as shown: never a secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuerView {
    /// Id (of the CA row for our CAs).
    pub id: String,
    /// Unique name: what a profile's `ca` names.
    pub name: String,
    /// `ca` (one of ours), `acme` or `aws_pca`.
    pub kind: String,
    /// Our CAs: `active`, `pending` or `disabled`; external issuers: `registered`.
    pub status: String,
    /// The ACME directory URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory_url: Option<String>,
    /// ACME contact URIs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<Vec<String>>,
    /// The EAB key id (the key itself is sealed and never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eab_kid: Option<String>,
    /// Whether a trust bundle for the ACME server's TLS is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_bundle: Option<bool>,
    /// The ACME profile orders ask for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The chain kept when the CA offers several: the issuer of its topmost certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_chain: Option<String>,
    /// How names are proven: `http-01` or `dns-01`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    /// dns-01 through RFC 2136: server, zone, TSIG key name and algorithm (the secret is
    /// sealed and never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub rfc2136: Option<Value>,
    /// dns-01 through Cloudflare: zone id, API URL, nameservers (the token is sealed and
    /// never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub cloudflare: Option<Value>,
    /// dns-01 through AWS Route 53: hosted zone id, region, endpoint URL, profile,
    /// nameservers (static credentials are sealed and never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub route53: Option<Value>,
    /// The ACME account URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_url: Option<String>,
    /// AWS Private CA: the CA's ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_arn: Option<String>,
    /// AWS Private CA: the region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// AWS Private CA: the signing algorithm (`SHA256WITHECDSA`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_algorithm: Option<String>,
    /// AWS Private CA: the certificate template ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_arn: Option<String>,
    /// AWS Private CA: the custom endpoint, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// AWS Private CA: the shared-config profile credentials come from, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_profile: Option<String>,
    /// AWS Private CA: whether access keys are stored (sealed; never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_credentials: Option<bool>,
    /// When created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The settings of an external issuer, by kind.
enum Settings {
    Acme(Box<AcmeConfig>),
    AwsPca(AwsPcaConfig),
}

impl Settings {
    fn of(rec: &IssuerRecord) -> Result<Settings, Error> {
        let bad = |e: serde_json::Error| Error::Internal(format!("issuer {} config: {e}", rec.id));
        match rec.kind.as_str() {
            KIND_ACME => Ok(Settings::Acme(Box::new(
                serde_json::from_value(rec.config.clone()).map_err(bad)?,
            ))),
            KIND_AWS_PCA => Ok(Settings::AwsPca(
                serde_json::from_value(rec.config.clone()).map_err(bad)?,
            )),
            other => Err(Error::Internal(format!(
                "issuer {} has an unknown kind {other:?}",
                rec.id
            ))),
        }
    }
}

impl IssuerView {
    fn of(rec: &IssuerRecord) -> Result<IssuerView, Error> {
        let base = IssuerView {
            id: rec.id.clone(),
            name: rec.name.clone(),
            kind: rec.kind.clone(),
            status: "registered".into(),
            created_at: rec.created_at,
            ..IssuerView::empty()
        };
        Ok(match Settings::of(rec)? {
            Settings::Acme(cfg) => IssuerView {
                directory_url: Some(cfg.directory_url),
                contact: Some(cfg.contact),
                eab_kid: cfg.eab_kid,
                trust_bundle: Some(cfg.trust_bundle.is_some()),
                profile: cfg.profile,
                preferred_chain: cfg.preferred_chain,
                challenge: Some(cfg.challenge),
                rfc2136: cfg.rfc2136.map(|r| json!(r)),
                cloudflare: cfg.cloudflare.map(|c| json!(c)),
                route53: cfg.route53.map(|r| json!(r)),
                account_url: rec.account_url.clone(),
                ..base
            },
            Settings::AwsPca(cfg) => IssuerView {
                region: Some(cfg.validate()?),
                template_arn: Some(cfg.template()),
                ca_arn: Some(cfg.ca_arn),
                signing_algorithm: Some(cfg.signing_algorithm),
                endpoint_url: cfg.endpoint_url,
                aws_profile: cfg.profile,
                has_credentials: Some(rec.secret_sealed.is_some()),
                ..base
            },
        })
    }

    fn empty() -> IssuerView {
        IssuerView {
            id: String::new(),
            name: String::new(),
            kind: String::new(),
            status: String::new(),
            directory_url: None,
            contact: None,
            eab_kid: None,
            trust_bundle: None,
            profile: None,
            preferred_chain: None,
            challenge: None,
            rfc2136: None,
            cloudflare: None,
            route53: None,
            account_url: None,
            ca_arn: None,
            region: None,
            signing_algorithm: None,
            template_arn: None,
            endpoint_url: None,
            aws_profile: None,
            has_credentials: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn of_ca(ca: &crate::store::CaRecord) -> IssuerView {
        IssuerView {
            id: ca.id.clone(),
            name: ca.name.clone(),
            kind: "ca".into(),
            status: ca.status.clone(),
            created_at: ca.created_at,
            ..IssuerView::empty()
        }
    }
}

/// The issuers service.
#[derive(Debug, Clone)]
pub struct IssuerService {
    pki: Arc<Pki>,
}

/// http-01 answers published in the database, so that any replica serves them.
struct StoreBoard<'a>(&'a Pki);

impl ChallengeBoard for StoreBoard<'_> {
    fn publish<'a>(
        &'a self,
        token: &'a str,
        key_authorization: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let until = self.0.now() + HTTP01_LIFETIME;
            Ok(self
                .0
                .store()
                .put_http01(token, key_authorization, until)
                .await?)
        })
    }

    fn withdraw<'a>(&'a self, token: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = self.0.store().delete_http01(token, self.0.now()).await {
                tracing::warn!(error = %e, "withdrawing an http-01 answer failed; it expires on its own");
            }
        })
    }
}

/// The DNS provider secret of a dns-01 issuer (the TSIG key, the Cloudflare token, or
/// Route 53's static credentials as JSON), checked with its settings; none for http-01 and
/// for Route 53 through the AWS chain.
fn validate_dns(new: &NewAcmeIssuer) -> Result<Option<Vec<u8>>, Error> {
    let c = &new.config;
    let bad = |m: String| Error::BadRequest(m);
    let any = c.rfc2136.is_some()
        || c.cloudflare.is_some()
        || c.route53.is_some()
        || new.tsig_secret.is_some()
        || new.cloudflare_api_token.is_some()
        || new.route53_credentials.is_some();
    match c.challenge.as_str() {
        HTTP_01 if any => Err(bad(
            "rfc2136, cloudflare, route53 and their secrets are for the dns-01 challenge".into(),
        )),
        HTTP_01 => Ok(None),
        DNS_01 => match (
            (&c.rfc2136, &new.tsig_secret),
            (&c.cloudflare, &new.cloudflare_api_token),
            (&c.route53, &new.route53_credentials),
        ) {
            ((Some(r), Some(secret)), (None, None), (None, None)) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(secret.trim())
                    .map_err(|_| bad("tsig_secret is not base64".into()))?;
                r.validate(&raw).map_err(|e| bad(format!("rfc2136: {e}")))?;
                Ok(Some(raw))
            }
            ((None, None), (Some(cf), Some(token)), (None, None)) => {
                cf.validate(token)
                    .map_err(|e| bad(format!("cloudflare: {e}")))?;
                Ok(Some(token.as_bytes().to_vec()))
            }
            ((None, None), (None, None), (Some(r53), creds)) => {
                r53.validate(creds.as_ref())
                    .map_err(|e| bad(format!("route53: {e}")))?;
                creds
                    .as_ref()
                    .map(|c| serde_json::to_vec(c).map_err(|e| Error::Internal(e.to_string())))
                    .transpose()
            }
            _ => Err(bad(
                "dns-01 needs one DNS provider: rfc2136 with tsig_secret, cloudflare with \
                 cloudflare_api_token, or route53 (with route53_credentials, or credentials \
                 from the AWS chain)"
                    .into(),
            )),
        },
        other => Err(bad(format!(
            "challenge {other:?} is not one of http-01, dns-01"
        ))),
    }
}

/// The DNS provider of a dns-01 issuer with `cfg`, and its opened `secret`; none for
/// http-01.
async fn dns_provider(
    cfg: &AcmeConfig,
    secret: Option<Vec<u8>>,
) -> Result<Option<Box<dyn DnsProvider>>, Error> {
    let provider: Box<dyn DnsProvider> = match (&cfg.rfc2136, &cfg.cloudflare, &cfg.route53) {
        (Some(r), _, _) => {
            let secret = secret
                .ok_or_else(|| Error::Internal("the RFC 2136 issuer has no TSIG secret".into()))?;
            Box::new(Rfc2136::new(r.clone(), secret))
        }
        (_, Some(cf), _) => {
            let token = secret
                .and_then(|t| String::from_utf8(t).ok())
                .ok_or_else(|| Error::Internal("the Cloudflare token is missing".into()))?;
            Box::new(Cloudflare::new(cf.clone(), token)?)
        }
        (_, _, Some(r53)) => {
            let creds: Option<AwsCredentials> = secret
                .map(|c| serde_json::from_slice(&c))
                .transpose()
                .map_err(|e| Error::Internal(format!("the Route 53 credentials: {e}")))?;
            let provider = Route53::new(r53.clone(), creds)
                .await
                .map_err(|e| match e {
                    SyncError::Config(m) => Error::BadRequest(format!("route53: {m}")),
                    other => Error::Upstream {
                        message: format!("Route 53: {other}"),
                        problem: None,
                        retry_after: None,
                    },
                })?;
            Box::new(provider)
        }
        _ => return Ok(None),
    };
    Ok(Some(provider))
}

fn validate_config(new: &NewAcmeIssuer) -> Result<Option<Vec<u8>>, Error> {
    crate::services::validate_name("issuer name", &new.name)?;
    let c = &new.config;
    let url = url::Url::parse(&c.directory_url)
        .map_err(|e| Error::BadRequest(format!("directory_url is not a URL: {e}")))?;
    if url.scheme() != "https" {
        return Err(Error::BadRequest(
            "directory_url must be an https URL (RFC 8555 requires TLS)".into(),
        ));
    }
    if c.contact.len() > MAX_CONTACTS {
        return Err(Error::BadRequest(format!(
            "at most {MAX_CONTACTS} contact URIs"
        )));
    }
    for m in &c.contact {
        let ok = m
            .strip_prefix("mailto:")
            .is_some_and(|a| a.len() <= 254 && a.contains('@') && !a.contains(','));
        if !ok {
            return Err(Error::BadRequest(format!(
                "contact {m:?} is not a mailto: URI with one address"
            )));
        }
    }
    if let Some(p) = &c.profile
        && !crate::services::is_plain_name(p)
    {
        return Err(Error::BadRequest(
            "profile must be 1 to 64 letters, digits, '-', '_' or '.'".into(),
        ));
    }
    if let Some(p) = &c.preferred_chain
        && (p.trim().is_empty() || p.len() > 256 || p.chars().any(char::is_control))
    {
        return Err(Error::BadRequest(
            "preferred_chain must be a common name of 1 to 256 characters".into(),
        ));
    }
    if let Some(tb) = &c.trust_bundle {
        if tb.len() > MAX_TRUST_BUNDLE {
            return Err(Error::BadRequest(format!(
                "trust_bundle is over {MAX_TRUST_BUNDLE} bytes"
            )));
        }
        let certs = certkeeper_ca::parse_pem_or_der_certs(tb.as_bytes())
            .map_err(|e| Error::BadRequest(format!("trust_bundle: {e}")))?;
        if certs.is_empty() || !tb.contains("-----BEGIN CERTIFICATE-----") {
            return Err(Error::BadRequest(
                "trust_bundle must hold a PEM certificate".into(),
            ));
        }
    }
    match (&c.eab_kid, &new.eab_hmac_key) {
        (None, None) => Ok(None),
        (Some(kid), Some(key)) => {
            if kid.is_empty() || kid.len() > 256 {
                return Err(Error::BadRequest(
                    "eab_kid must be 1 to 256 characters".into(),
                ));
            }
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(key.trim_end_matches('='))
                .map_err(|_| Error::BadRequest("eab_hmac_key is not base64url".into()))?;
            if raw.is_empty() || raw.len() > MAX_EAB_KEY {
                return Err(Error::BadRequest(format!(
                    "eab_hmac_key must be 1 to {MAX_EAB_KEY} bytes"
                )));
            }
            Ok(Some(raw))
        }
        _ => Err(Error::BadRequest(
            "give eab_kid and eab_hmac_key together, or neither".into(),
        )),
    }
}

impl IssuerService {
    /// The service over the registration authority.
    pub fn new(pki: Arc<Pki>) -> IssuerService {
        IssuerService { pki }
    }

    /// Create an ACME issuer: a dns-01 provider is checked (the zone exists, the
    /// credentials are accepted) and the account is registered upstream (with EAB when
    /// given) first, so a wrong zone, an unreachable directory or a refused key is an
    /// error here and nothing is stored.
    pub async fn create_acme(
        &self,
        new: NewAcmeIssuer,
        actor: &Actor,
    ) -> Result<IssuerView, Error> {
        let eab = validate_config(&new)?;
        let dns_secret = validate_dns(&new)?;
        self.name_is_free(&new.name).await?;
        if let Some(dns) = dns_provider(&new.config, dns_secret.clone()).await? {
            dns.check().await?;
        }
        let (creds, account_url) = new
            .config
            .register(new.config.eab_kid.as_deref().zip(eab.as_deref()))
            .await?;
        let id = new_id();
        let master = self.pki.master();
        let now = self.pki.now();
        let rec = IssuerRecord {
            id: id.clone(),
            name: new.name.clone(),
            kind: KIND_ACME.into(),
            config: serde_json::to_value(&new.config)
                .map_err(|e| Error::Internal(e.to_string()))?,
            secret_sealed: eab
                .map(|k| master.seal(&k, &seal_context("eab", &id)))
                .transpose()?,
            dns_secret_sealed: dns_secret
                .map(|k| master.seal(&k, &seal_context("dns", &id)))
                .transpose()?,
            account_sealed: Some(master.seal(creds.as_bytes(), &seal_context("account", &id))?),
            account_url: Some(account_url.clone()),
            created_at: now,
        };
        let detail = json!({
            "name": new.name, "kind": KIND_ACME, "directory_url": new.config.directory_url,
            "account_url": account_url, "eab": new.config.eab_kid.is_some(),
            "challenge": new.config.challenge,
        });
        let subject = format!("upstream ACME CA at {}", new.config.directory_url);
        self.insert(rec, subject, detail, actor).await
    }

    /// Create an AWS Private CA issuer: the CA is described first (with the given
    /// credentials), so a CA that does not exist or is not `ACTIVE`, refused credentials
    /// or an unreachable endpoint are an error here and nothing is stored.
    pub async fn create_aws_pca(
        &self,
        new: NewAwsPcaIssuer,
        actor: &Actor,
    ) -> Result<IssuerView, Error> {
        crate::services::validate_name("issuer name", &new.name)?;
        self.name_is_free(&new.name).await?;
        let secret = new
            .credentials
            .as_ref()
            .map(|c| serde_json::to_vec(c).map_err(|e| Error::Internal(e.to_string())))
            .transpose()?;
        let found = AwsPcaUpstream::new(new.config.clone(), new.credentials)
            .await?
            .describe()
            .await?;
        let id = new_id();
        let rec = IssuerRecord {
            id: id.clone(),
            name: new.name.clone(),
            kind: KIND_AWS_PCA.into(),
            config: serde_json::to_value(&new.config)
                .map_err(|e| Error::Internal(e.to_string()))?,
            secret_sealed: secret
                .map(|k| self.pki.master().seal(&k, &seal_context("eab", &id)))
                .transpose()?,
            dns_secret_sealed: None,
            account_sealed: None,
            account_url: None,
            created_at: self.pki.now(),
        };
        let detail = json!({
            "name": new.name, "kind": KIND_AWS_PCA, "ca_arn": new.config.ca_arn,
            "signing_algorithm": new.config.signing_algorithm,
            "credentials": rec.secret_sealed.is_some(), "found": found,
        });
        let subject = format!("AWS Private CA {}", new.config.ca_arn);
        self.insert(rec, subject, detail, actor).await
    }

    /// Refuse a name a CA or issuer already has.
    async fn name_is_free(&self, name: &str) -> Result<(), Error> {
        match self.pki.store().get_ca(name).await {
            Ok(_) => Err(Error::Conflict(
                "a CA or issuer with this name already exists".into(),
            )),
            Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Store an external issuer with the CA row that stands for it (about `subject`), and
    /// its audit event (`detail`), in one transaction.
    async fn insert(
        &self,
        rec: IssuerRecord,
        subject: String,
        detail: Value,
        actor: &Actor,
    ) -> Result<IssuerView, Error> {
        // No key is held for the upstream (an empty sealed value keeps master-key checks
        // and rotation uniform).
        let ca = NewCaRecord {
            id: rec.id.clone(),
            name: rec.name.clone(),
            parent_id: None,
            kind: "external",
            status: "disabled",
            subject,
            key_algorithm: "upstream".into(),
            cert_der: None,
            chain_pem: None,
            csr_der: None,
            key_sealed: self.pki.master().seal(&[], &key_context("ca", &rec.id))?,
            key_ref: None,
            info: None,
        };
        let ev = actor
            .event("issuer.create", "issuer")
            .object(&rec.id)
            .detail(detail);
        self.pki.store().insert_issuer(&ca, &rec, &ev).await?;
        self.pki.invalidate_issuers();
        IssuerView::of(&rec)
    }

    /// Every issuer: our CAs, then the external ones.
    pub async fn list(&self) -> Result<Vec<IssuerView>, Error> {
        let store = self.pki.store();
        let external = store.list_issuers().await?;
        let mut out: Vec<IssuerView> = store
            .list_cas()
            .await?
            .iter()
            .filter(|c| !external.iter().any(|e| e.id == c.id))
            .map(IssuerView::of_ca)
            .collect();
        for e in &external {
            out.push(IssuerView::of(e)?);
        }
        Ok(out)
    }

    /// One issuer by name or id.
    pub async fn get(&self, name: &str) -> Result<IssuerView, Error> {
        let store = self.pki.store();
        match store.get_issuer(name).await {
            Ok(rec) => IssuerView::of(&rec),
            Err(StoreError::NotFound(_)) => {
                Ok(IssuerView::of_ca(&store.get_ca(name).await.map_err(
                    |_| Error::NotFound(format!("no issuer {name:?}")),
                )?))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The adapter for an external issuer, by its kind.
    async fn upstream(&self, rec: &IssuerRecord) -> Result<Box<dyn UpstreamCa>, Error> {
        match Settings::of(rec)? {
            Settings::Acme(cfg) => self.acme_upstream(rec, *cfg).await,
            Settings::AwsPca(cfg) => {
                let creds = rec
                    .secret_sealed
                    .as_ref()
                    .map(|sealed| {
                        let raw = self
                            .pki
                            .master()
                            .open(sealed, &seal_context("eab", &rec.id))?;
                        serde_json::from_slice(&raw).map_err(|_| {
                            Error::Internal(format!("issuer {} credentials do not parse", rec.id))
                        })
                    })
                    .transpose()?;
                Ok(Box::new(AwsPcaUpstream::new(cfg, creds).await?))
            }
        }
    }

    async fn acme_upstream(
        &self,
        rec: &IssuerRecord,
        cfg: AcmeConfig,
    ) -> Result<Box<dyn UpstreamCa>, Error> {
        let sealed = rec
            .account_sealed
            .as_ref()
            .ok_or_else(|| Error::Internal(format!("issuer {} has no account", rec.id)))?;
        let creds = self
            .pki
            .master()
            .open(sealed, &seal_context("account", &rec.id))?;
        let creds = String::from_utf8(creds)
            .map_err(|_| Error::Internal(format!("issuer {} account is not text", rec.id)))?;
        let secret = rec
            .dns_secret_sealed
            .as_ref()
            .map(|sealed| {
                self.pki
                    .master()
                    .open(sealed, &seal_context("dns", &rec.id))
            })
            .transpose()?;
        let dns = dns_provider(&cfg, secret).await?;
        Ok(Box::new(AcmeUpstream::new(cfg, creds, dns)))
    }

    /// Test an issuer: for an ACME issuer, that the account exists and is valid upstream;
    /// for an AWS Private CA, that the CA exists and is `ACTIVE`; for our CAs, that the CA
    /// can sign.
    pub async fn test(&self, name: &str) -> Result<Value, Error> {
        let store = self.pki.store();
        match store.get_issuer(name).await {
            Ok(rec) => Ok(self.upstream(&rec).await?.check().await?),
            Err(StoreError::NotFound(_)) => {
                let ca = store
                    .get_ca(name)
                    .await
                    .map_err(|_| Error::NotFound(format!("no issuer {name:?}")))?;
                self.pki.signer(&ca)?;
                Ok(json!({"ca": ca.id, "status": ca.status}))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Remove an external issuer: refused while a profile names it; its ACME account is
    /// deactivated upstream first (a refusal there is recorded in the audit event, and the
    /// issuer is removed anyway). Certificates it issued stay in the inventory.
    pub async fn remove(&self, name: &str, actor: &Actor) -> Result<(), Error> {
        let store = self.pki.store();
        let rec = match store.get_issuer(name).await {
            Ok(r) => r,
            Err(StoreError::NotFound(_)) => {
                return Err(Error::NotFound(format!(
                    "no external issuer {name:?} (our own CAs are not removed here)"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(p) = store
            .list_profiles()
            .await?
            .iter()
            .find(|p| p.ca_id == rec.id)
        {
            return Err(Error::Conflict(format!(
                "profile {:?} issues through this issuer; change or delete it first",
                p.policy.name
            )));
        }
        let mut detail = json!({"name": rec.name, "kind": rec.kind});
        if rec.kind == KIND_ACME {
            detail["account_deactivated"] = match self.upstream(&rec).await?.deactivate().await {
                Ok(()) => json!(true),
                Err(f) => {
                    tracing::warn!(issuer = %rec.name, error = %f.message, "deactivating the ACME account failed");
                    json!(f.message)
                }
            };
        }
        let ev = actor
            .event("issuer.delete", "issuer")
            .object(&rec.id)
            .detail(detail);
        store.delete_issuer(&rec.id, &ev, self.pki.now()).await?;
        Ok(())
    }

    /// When the external issuer `issuer_id` suggests renewing `cert_der`, one it issued
    /// (RFC 9773); `None` when it offers no renewal information.
    pub async fn renewal_info(
        &self,
        issuer_id: &str,
        cert_der: &[u8],
    ) -> Result<Option<RenewalAdvice>, Error> {
        let rec = self.pki.store().get_issuer(issuer_id).await?;
        Ok(self.upstream(&rec).await?.renewal_info(cert_der).await?)
    }

    /// Replace the ACME account key of the external issuer `name` (RFC 8555 §7.3.5, on
    /// demand: a key that may have leaked, or a key's age). The upstream moves the account
    /// to a new key made here; the new credentials are sealed in place of the old in the
    /// same transaction as the audit event. If the upstream refuses, nothing changes.
    pub async fn rollover_key(&self, name: &str, actor: &Actor) -> Result<IssuerView, Error> {
        let store = self.pki.store();
        let rec = match store.get_issuer(name).await {
            Ok(r) => r,
            Err(StoreError::NotFound(_)) => {
                return Err(Error::NotFound(format!(
                    "no external issuer {name:?} (our own CAs roll over with POST /cas/{{id}}/rollover)"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let creds = self.upstream(&rec).await?.rollover_key().await?;
        let sealed = self
            .pki
            .master()
            .seal(creds.as_bytes(), &seal_context("account", &rec.id))?;
        let ev = actor
            .event("issuer.account_key.rollover", "issuer")
            .object(&rec.id)
            .detail(json!({"name": rec.name, "account_url": rec.account_url}));
        store
            .replace_issuer_account(&rec.id, &sealed, &ev, self.pki.now())
            .await?;
        IssuerView::of(&store.get_issuer(&rec.id).await?)
    }

    /// Revoke a certificate with an RFC 5280 reason code: the one door every front end
    /// uses. A certificate one of our CAs signed is revoked by [`Pki::revoke`]; one an
    /// external issuer signed is revoked upstream first (PCA `RevokeCertificate`, ACME
    /// `revokeCert`), and only then here, so an upstream refusal changes nothing and is the
    /// caller's error with the upstream's message.
    pub async fn revoke(
        &self,
        cert_id: &str,
        reason: u8,
        actor: &Actor,
    ) -> Result<CertRecord, Error> {
        crate::services::pki::check_revocation_reason(reason)?;
        let store = self.pki.store();
        let cert = store.get_certificate(cert_id).await?;
        let rec = match store.get_issuer(&cert.ca_id).await {
            Ok(rec) => rec,
            Err(StoreError::NotFound(_)) => return self.pki.revoke(cert_id, reason, actor).await,
            Err(e) => return Err(e.into()),
        };
        if cert.status != "valid" {
            return Err(Error::Conflict(format!(
                "certificate {cert_id} is {}, not valid",
                cert.status
            )));
        }
        self.upstream(&rec)
            .await?
            .revoke(&cert.der, reason)
            .await
            .map_err(|f| Error::Upstream {
                message: format!(
                    "the upstream CA {:?} refused the revocation: {}",
                    rec.name, f.message
                ),
                problem: f.problem,
                retry_after: f.retry_after,
            })?;
        self.pki
            .record_revocation(cert_id, reason, Some(&rec.name), actor)
            .await
    }

    /// The http-01 answer published for `token`, if any.
    pub async fn http01_answer(&self, token: &str) -> Result<Option<String>, Error> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        Ok(self.pki.store().get_http01(token, self.pki.now()).await?)
    }

    /// Issue under `profile` for `key` (made here): by our CA through [`Pki::issue`], or by
    /// the profile's external issuer. `keep_key` keeps the key sealed with the certificate;
    /// `replaces` is the certificate (DER) a renewal replaces, which an ACME upstream that
    /// offers renewal information is told about.
    pub async fn issue_with_key(
        &self,
        profile: &ProfileRecord,
        request: IssuanceRequest,
        key: &KeyPair,
        keep_key: bool,
        replaces: Option<&[u8]>,
        actor: &Actor,
    ) -> Result<Issued, Error> {
        let pkcs8 = key.serialize_der();
        let managed = keep_key.then_some(pkcs8.as_slice());
        let Some(rec) = self.external(profile).await? else {
            return self.pki.issue(profile, request, managed, actor).await;
        };
        // Our rules first: nothing leaves for a request the profile refuses.
        let approved = self.approve(profile, &rec, request)?;
        let mut params = rcgen::CertificateParams::new(approved.dns_names.clone())
            .map_err(|e| Error::BadRequest(format!("names: {e}")))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = &approved.common_name {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn.clone());
        }
        let csr = params
            .serialize_request(key)
            .map_err(|e| Error::Internal(format!("building the CSR: {e}")))?;
        let spki = key.subject_public_key_info();
        let order = UpstreamOrder {
            csr_der: csr.der(),
            dns_names: &approved.dns_names,
            replaces,
            not_after: approved.not_after,
        };
        self.issue_upstream(profile, &rec, &approved, order, &spki, managed, actor)
            .await
    }

    /// Issue under `profile` for a client's PKCS#10 request (`csr`, PEM or DER, already
    /// parsed into `request`): by our CA, or forwarded as it is to the profile's external
    /// issuer once policy approved it. An ACME CA takes a CSR that names exactly the
    /// approved names.
    pub async fn issue_for_csr(
        &self,
        profile: &ProfileRecord,
        request: IssuanceRequest,
        csr: &[u8],
        actor: &Actor,
    ) -> Result<Issued, Error> {
        let Some(rec) = self.external(profile).await? else {
            return self.pki.issue(profile, request, None, actor).await;
        };
        let spki = request.public_key_der.clone();
        let mut asked: Vec<String> = request
            .dns_names
            .iter()
            .map(|n| n.to_ascii_lowercase().trim_end_matches('.').to_string())
            .collect();
        let approved = self.approve(profile, &rec, request)?;
        asked.sort();
        asked.dedup();
        let mut names = approved.dns_names.clone();
        names.sort();
        if asked != names {
            return Err(Error::BadCsr(format!(
                "issuer {:?} orders exactly the CSR's names: give them normalized, without \
                 repeats ({names:?})",
                rec.name
            )));
        }
        let der = match pem::parse(csr) {
            Ok(p) if p.tag().ends_with("CERTIFICATE REQUEST") => p.into_contents(),
            Ok(_) => return Err(Error::BadCsr("not a certificate request".into())),
            Err(_) => csr.to_vec(),
        };
        let order = UpstreamOrder {
            csr_der: &der,
            dns_names: &approved.dns_names,
            replaces: None,
            not_after: approved.not_after,
        };
        self.issue_upstream(profile, &rec, &approved, order, &spki, None, actor)
            .await
    }

    /// The external issuer a profile names, if it names one.
    async fn external(&self, profile: &ProfileRecord) -> Result<Option<IssuerRecord>, Error> {
        Ok(self.pki.external_issuer(&profile.ca_id).await?)
    }

    /// The profile's approval of `request` for the upstream `rec`.
    fn approve(
        &self,
        profile: &ProfileRecord,
        rec: &IssuerRecord,
        request: IssuanceRequest,
    ) -> Result<certkeeper_ca::UpstreamApproved, Error> {
        let approved = profile
            .policy
            .approve_for_upstream(request, self.pki.now())?;
        if !approved.ip_addresses.is_empty() {
            return Err(Error::BadRequest(format!(
                "issuer {:?} is an external CA: IP addresses are not ordered upstream",
                rec.name
            )));
        }
        Ok(approved)
    }

    /// Send `order` (for `spki`) to the upstream `rec`, check its answer, and record the
    /// certificate (with `managed`, the key to keep sealed beside it).
    #[allow(clippy::too_many_arguments)]
    async fn issue_upstream(
        &self,
        profile: &ProfileRecord,
        rec: &IssuerRecord,
        approved: &certkeeper_ca::UpstreamApproved,
        order: UpstreamOrder<'_>,
        spki: &[u8],
        managed: Option<&[u8]>,
        actor: &Actor,
    ) -> Result<Issued, Error> {
        let board = StoreBoard(&self.pki);
        let answer = self.upstream(rec).await?.issue(order, &board).await?;
        let pem = answer.pem;
        let chain =
            certkeeper_ca::parse_pem_or_der_certs(pem.as_bytes()).map_err(|e| Error::Upstream {
                message: format!("the upstream's certificate does not parse: {e}"),
                problem: None,
                retry_after: None,
            })?;
        let Some((leaf, above)) = chain.split_first() else {
            return Err(Error::Upstream {
                message: "the upstream sent no certificate".into(),
                problem: None,
                retry_after: None,
            });
        };
        let longest = self.pki.now() + Duration::days(profile.policy.max_validity_days.into());
        let info = check_answer(leaf, spki, &approved.dns_names, longest)?;
        let id = new_id();
        let key_sealed = managed
            .map(|k| self.pki.master().seal(k, &key_context("cert", &id)))
            .transpose()?;
        let record = NewCertificate {
            id: id.clone(),
            ca_id: rec.id.clone(),
            profile_name: Some(profile.policy.name.clone()),
            info: info.clone(),
            der: leaf.clone(),
            key_sealed,
            created_by: actor.name.clone(),
            created_at: self.pki.now(),
        };
        let ev = actor
            .event("certificate.issue", "certificate")
            .object(&id)
            .detail(json!({
                "profile": profile.policy.name, "serial": info.serial, "ca": rec.id,
                "issuer": rec.name, "names": record.names(), "managed": managed.is_some(),
                "upstream_ref": answer.reference,
            }));
        let store = self.pki.store();
        store.insert_certificate(record, ev, None).await?;
        if let Some((issuing, rest)) = above.split_first() {
            let issuing_info = certkeeper_ca::inspect_certificate(issuing)?;
            let rest_pem = (!rest.is_empty())
                .then(|| certkeeper_ca::pem_encode_certs(rest.iter().map(Vec::as_slice)));
            store
                .set_issuer_chain(&rec.id, issuing, &issuing_info, rest_pem.as_deref())
                .await?;
        }
        crate::services::alerts::events::on_issued(&self.pki, &id, &info, &profile.policy.name)
            .await;
        Ok(Issued {
            id,
            cert: IssuedCertificate {
                der: leaf.clone(),
                info,
            },
            ca_id: rec.id.clone(),
            chain: above.to_vec(),
        })
    }
}

/// What the upstream sent must be a certificate for the key asked for (`spki`), for exactly the names policy
/// approved, and end no later than the profile allows (`longest`, with an hour for the
/// clocks).
fn check_answer(
    leaf: &[u8],
    spki: &[u8],
    names: &[String],
    longest: OffsetDateTime,
) -> Result<CertInfo, Error> {
    let refused = |why: String| Error::Upstream {
        message: why,
        problem: None,
        retry_after: None,
    };
    let info = certkeeper_ca::inspect_certificate(leaf)
        .map_err(|e| refused(format!("the upstream's certificate does not parse: {e}")))?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| refused(format!("the upstream's certificate does not parse: {e}")))?;
    if cert.public_key().raw != spki {
        return Err(refused(
            "the upstream's certificate is not for the key we sent".into(),
        ));
    }
    let mut got: Vec<String> = info
        .dns_names
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    let mut want: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    got.sort();
    got.dedup();
    want.sort();
    want.dedup();
    if got != want {
        return Err(refused(format!(
            "the upstream's certificate names {got:?}, not the names ordered {want:?}"
        )));
    }
    if info.not_after > longest + Duration::hours(1) {
        return Err(refused(format!(
            "the upstream's certificate is valid until {}, longer than the profile's \
             max_validity_days allows",
            info.not_after
        )));
    }
    Ok(info)
}
