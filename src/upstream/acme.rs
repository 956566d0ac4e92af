//! Any ACME CA (RFC 8555) as an upstream, through `instant-acme`: account registration
//! (with external account binding), orders answered by http-01 or dns-01, finalization
//! with our CSR,
//! and the certificate with its chain. Every call to the upstream is bounded in time;
//! `badNonce` answers are retried (by the client, then again here for every signed request)
//! and order polling honours `Retry-After`.

use std::time::Duration;

use instant_acme::{
    Account, AccountBuilder, AccountCredentials, AuthorizationStatus, CertificateIdentifier,
    ChallengeType, ExternalAccountKey, Identifier, NewAccount, NewOrder, OrderStatus, Problem,
    RetryPolicy, RevocationReason, RevocationRequest,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::services::issuers::port::{
    BoxFuture, ChallengeBoard, DnsProvider, RenewalAdvice, UpstreamCa, UpstreamCertificate,
    UpstreamFailure, UpstreamOrder,
};
use crate::upstream::acme_chains;
use crate::upstream::acme_http::{RetrySlot, WatchingClient};
use crate::upstream::cloudflare::CloudflareConfig;
use crate::upstream::propagation::wait_visible;
use crate::upstream::rfc2136::Rfc2136Config;
use crate::upstream::route53::Route53Config;

/// How many more times a call whose nonce was refused is made once the client's own
/// retries (two, each with the nonce of the refusal) are spent.
const BAD_NONCE_ROUNDS: usize = 2;

/// Make the upstream call `$call` (an expression of a future) again when the CA refused
/// its nonce even after the client's own retries: a CA may refuse any share of good nonces
/// (RFC 8555 §6.5; Pebble refuses 5 % by default), and a request refused for its nonce was
/// not acted on, so repeating it is safe. A macro rather than a function so that the call
/// may borrow the order mutably each round.
macro_rules! again_on_bad_nonce {
    ($call:expr) => {{
        let mut rounds = 0;
        loop {
            match $call.await {
                Err(e) if rounds < BAD_NONCE_ROUNDS && is_bad_nonce(&e) => rounds += 1,
                r => break r,
            }
        }
    }};
}

/// Whether the CA refused the request for its nonce (`badNonce`).
fn is_bad_nonce(e: &instant_acme::Error) -> bool {
    matches!(e, instant_acme::Error::Api(p) if p.r#type.as_deref() == Some(acme_chains::BAD_NONCE))
}

/// Longest wait for one account call (directory, registration, check).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a whole order, validation and download included.
const ORDER_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest wait for the upstream to validate every authorization.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest wait for a dns-01 record to show on the zone's authoritative servers.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(120);

/// The http-01 challenge (the default).
pub const HTTP_01: &str = "http-01";
/// The dns-01 challenge (needed for wildcard names).
pub const DNS_01: &str = "dns-01";

fn default_challenge() -> String {
    HTTP_01.into()
}

/// The settings of an ACME issuer (no secrets).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AcmeConfig {
    /// The directory URL (`https://acme-staging-v02.api.letsencrypt.org/directory`).
    pub directory_url: String,
    /// Contact URIs (`mailto:ops@example.com`).
    #[serde(default)]
    pub contact: Vec<String>,
    /// External account binding key id, when the CA requires one.
    #[serde(default)]
    pub eab_kid: Option<String>,
    /// The root certificate (PEM) of the ACME server's own TLS certificate, for a private
    /// ACME server; the system's roots when absent.
    #[serde(default)]
    pub trust_bundle: Option<String>,
    /// The ACME profile to order under, for servers that offer profiles.
    #[serde(default)]
    pub profile: Option<String>,
    /// The chain to keep when the CA offers several (RFC 8555 §7.4.2): the common name of
    /// the CA that issued the chain's topmost certificate (certbot's `--preferred-chain`).
    /// The CA's default chain when absent or when none matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_chain: Option<String>,
    /// How names are proven: `http-01` (answered by certkeeper's listeners) or `dns-01`
    /// (TXT records through the DNS provider; needed for wildcard names).
    #[serde(default = "default_challenge")]
    pub challenge: String,
    /// dns-01 through RFC 2136 dynamic updates.
    #[serde(default)]
    pub rfc2136: Option<Rfc2136Config>,
    /// dns-01 through Cloudflare's DNS records API.
    #[serde(default)]
    pub cloudflare: Option<CloudflareConfig>,
    /// dns-01 through AWS Route 53.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route53: Option<Route53Config>,
}

impl AcmeConfig {
    /// A client for this server, over the trust bundle when one is set, that leaves the
    /// `Retry-After` of a refusal in `slot`.
    fn builder(&self, slot: RetrySlot) -> Result<AccountBuilder, UpstreamFailure> {
        let roots = match &self.trust_bundle {
            None => Vec::new(),
            Some(pem) => certkeeper_ca::parse_pem_or_der_certs(pem.as_bytes())
                .map_err(|e| UpstreamFailure::plain(format!("trust bundle: {e}")))?,
        };
        let client = WatchingClient::new(&roots, slot)
            .map_err(|e| UpstreamFailure::plain(format!("ACME client: {e}")))?;
        Ok(Account::builder_with_http(Box::new(client)))
    }

    /// Register an account (with EAB when `eab` is given: key id and raw HMAC key).
    /// Answers the credentials to seal and the account URL.
    pub async fn register(
        &self,
        eab: Option<(&str, &[u8])>,
    ) -> Result<(String, String), UpstreamFailure> {
        let contact: Vec<&str> = self.contact.iter().map(String::as_str).collect();
        let eab = eab.map(|(kid, key)| ExternalAccountKey::new(kid.to_string(), key));
        let new = NewAccount {
            contact: &contact,
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        // `create` consumes its builder: one for each round.
        let mut builders = (0..=BAD_NONCE_ROUNDS)
            .map(|_| self.builder(RetrySlot::default()))
            .collect::<Result<Vec<_>, _>>()?;
        let (account, creds) = bounded(CALL_TIMEOUT, "registering the account", async {
            again_on_bad_nonce!(builders.pop().expect("one builder per round").create(
                &new,
                self.directory_url.clone(),
                eab.as_ref(),
            ))
        })
        .await?;
        let json = serde_json::to_string(&creds)
            .map_err(|e| UpstreamFailure::plain(format!("account credentials: {e}")))?;
        Ok((json, account.id().to_string()))
    }
}

/// An ACME issuer with its registered account.
pub struct AcmeUpstream {
    config: AcmeConfig,
    credentials: String,
    dns: Option<Box<dyn DnsProvider>>,
    /// The `Retry-After` of the last refusal this upstream sent.
    retry: RetrySlot,
}

impl std::fmt::Debug for AcmeUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeUpstream")
            .field("directory_url", &self.config.directory_url)
            .finish_non_exhaustive()
    }
}

impl AcmeUpstream {
    /// The issuer `config` with the account `credentials` (as [`AcmeConfig::register`]
    /// answered them) and, for dns-01, its DNS provider.
    pub fn new(
        config: AcmeConfig,
        credentials: String,
        dns: Option<Box<dyn DnsProvider>>,
    ) -> AcmeUpstream {
        AcmeUpstream {
            config,
            credentials,
            dns,
            retry: RetrySlot::default(),
        }
    }

    async fn account(&self) -> Result<Account, UpstreamFailure> {
        let creds: AccountCredentials = serde_json::from_str(&self.credentials)
            .map_err(|e| UpstreamFailure::plain(format!("stored account credentials: {e}")))?;
        let builder = self.config.builder(self.retry.clone())?;
        bounded(
            CALL_TIMEOUT,
            "loading the directory",
            builder.from_credentials(creds),
        )
        .await
    }

    async fn issue_inner(
        &self,
        order: UpstreamOrder<'_>,
        board: &dyn ChallengeBoard,
        published: &mut Vec<String>,
        records: &mut Vec<(String, String)>,
        order_url: &mut Option<String>,
    ) -> Result<String, UpstreamFailure> {
        let dns = match self.config.challenge.as_str() {
            DNS_01 => Some(self.dns.as_deref().ok_or_else(|| {
                UpstreamFailure::plain(
                    "dns-01 needs a DNS provider (rfc2136, cloudflare or route53)",
                )
            })?),
            _ => None,
        };
        let account = self.account().await?;
        let ids: Vec<Identifier> = order
            .dns_names
            .iter()
            .cloned()
            .map(Identifier::Dns)
            .collect();
        let mut new = NewOrder::new(&ids);
        if let Some(p) = &self.config.profile {
            new = new.profile(p);
        }
        // `replaces` only where the server offers renewal information: instant-acme (and
        // RFC 9773) treat it as an error elsewhere.
        let replaced = match order.replaces {
            Some(old) => match certificate_identifier(old) {
                Some(id) => match account.renewal_info(&id).await {
                    Ok(_) => Some(id),
                    Err(instant_acme::Error::Unsupported(_)) => None,
                    Err(e) => {
                        tracing::info!(error = %e, "renewal information unavailable; ordering without replaces");
                        None
                    }
                },
                None => None,
            },
            None => None,
        };
        if let Some(id) = replaced {
            new = new.replaces(id);
        }
        let csr_der = order.csr_der;
        let mut order = again_on_bad_nonce!(account.new_order(&new)).map_err(failure)?;
        *order_url = Some(order.url().to_string());
        // A fetch of an authorization refused for its nonce ends a pass over them: the
        // next pass fetches it again and skips those already answered.
        let mut answered = std::collections::HashSet::new();
        let mut refused = 0;
        'passes: loop {
            let mut authzs = order.authorizations();
            while let Some(authz) = authzs.next().await {
                let mut authz = match authz {
                    Ok(authz) => authz,
                    Err(e) if refused < BAD_NONCE_ROUNDS && is_bad_nonce(&e) => {
                        refused += 1;
                        continue 'passes;
                    }
                    Err(e) => return Err(failure(e)),
                };
                if !answered.insert(authz.url().to_string()) {
                    continue;
                }
                match authz.status {
                    AuthorizationStatus::Valid => continue,
                    AuthorizationStatus::Pending => {}
                    other => {
                        return Err(UpstreamFailure::plain(format!(
                            "authorization for {} is {other:?}",
                            authz.identifier()
                        )));
                    }
                }
                let name = authz.identifier().to_string();
                let base = match authz.identifier().identifier {
                    Identifier::Dns(n) => n.clone(),
                    other => {
                        return Err(UpstreamFailure::plain(format!(
                            "unexpected identifier {other:?}"
                        )));
                    }
                };
                let kind = match dns {
                    Some(_) => ChallengeType::Dns01,
                    None => ChallengeType::Http01,
                };
                let mut challenge = authz.challenge(kind.clone()).ok_or_else(|| {
                    UpstreamFailure::plain(format!(
                        "the upstream offers no {kind:?} challenge for {name}"
                    ))
                })?;
                match dns {
                    Some(dns) => {
                        let record = format!("_acme-challenge.{base}.");
                        let value = challenge.key_authorization().dns_value();
                        dns.set_txt(&record, &value).await?;
                        records.push((record.clone(), value.clone()));
                        let servers = dns.authoritative(&record).await?;
                        wait_visible(&servers, &record, &value, PROPAGATION_TIMEOUT).await?;
                    }
                    None => {
                        let token = challenge.token.clone();
                        board
                            .publish(&token, challenge.key_authorization().as_str())
                            .await
                            .map_err(|e| {
                                UpstreamFailure::plain(format!(
                                    "publishing the http-01 answer: {e}"
                                ))
                            })?;
                        published.push(token);
                    }
                }
                again_on_bad_nonce!(challenge.set_ready()).map_err(failure)?;
            }
            break;
        }
        let retries = RetryPolicy::new()
            .initial_delay(Duration::from_millis(500))
            .timeout(VALIDATION_TIMEOUT);
        let status = again_on_bad_nonce!(order.poll_ready(&retries)).map_err(failure)?;
        if status != OrderStatus::Ready {
            return Err(invalid_order(&mut order).await);
        }
        again_on_bad_nonce!(order.finalize_csr(csr_der)).map_err(failure)?;
        let pem = again_on_bad_nonce!(order.poll_certificate(&retries)).map_err(failure)?;
        let Some(preferred) = &self.config.preferred_chain else {
            return Ok(pem);
        };
        if acme_chains::is_preferred(&pem, preferred) {
            return Ok(pem);
        }
        let cert_url = order.state().certificate.clone();
        // The certificate is issued: a failure to fetch an alternate keeps the default
        // chain rather than throwing the certificate away.
        match self.alternate(account.id(), cert_url, preferred).await {
            Ok(Some(alt)) => Ok(alt),
            Ok(None) => {
                tracing::info!(preferred = %preferred, "the upstream offers no chain under the preferred issuer; keeping its default chain");
                Ok(pem)
            }
            Err(e) => {
                tracing::warn!(error = %e.message, "fetching alternate chains failed; keeping the default chain");
                Ok(pem)
            }
        }
    }

    /// The chain at `cert_url` (or one of its alternates) under `preferred`.
    async fn alternate(
        &self,
        account_url: &str,
        cert_url: Option<String>,
        preferred: &str,
    ) -> Result<Option<String>, UpstreamFailure> {
        let cert_url = cert_url.ok_or_else(|| UpstreamFailure::plain("no certificate URL"))?;
        let creds: AccountCredentials = serde_json::from_str(&self.credentials)
            .map_err(|e| UpstreamFailure::plain(format!("stored account credentials: {e}")))?;
        let fetcher = acme_chains::ChainFetcher::new(
            &self.config.directory_url,
            self.config.trust_bundle.as_deref(),
            account_url,
            creds.private_key().secret_pkcs8_der(),
        )
        .await?;
        fetcher.preferred(&cert_url, preferred).await
    }
}

/// Why an order became invalid: the first failed challenge's problem, with the others as
/// subproblems.
async fn invalid_order(order: &mut instant_acme::Order) -> UpstreamFailure {
    let mut problems = Vec::new();
    let mut authzs = order.authorizations();
    while let Some(Ok(mut authz)) = authzs.next().await {
        if let Ok(state) = authz.refresh().await {
            for c in &state.challenges {
                if let Some(p) = &c.error {
                    problems.push((state.identifier().to_string(), p.clone()));
                }
            }
        }
    }
    match problems.first() {
        Some((name, p)) => UpstreamFailure {
            message: format!("validation of {name} failed: {p}"),
            problem: Some(problem_json(p)),
            retry_after: None,
        },
        None => UpstreamFailure::plain("the order became invalid"),
    }
}

/// An RFC 7807 problem as JSON.
fn problem_json(p: &Problem) -> Value {
    let mut v = json!({});
    if let Some(t) = &p.r#type {
        v["type"] = json!(t);
    }
    if let Some(d) = &p.detail {
        v["detail"] = json!(d);
    }
    if let Some(s) = p.status {
        v["status"] = json!(s);
    }
    if !p.subproblems.is_empty() {
        v["subproblems"] = p
            .subproblems
            .iter()
            .map(|s| {
                json!({
                    "type": s.r#type,
                    "detail": s.detail,
                    "identifier": s.identifier,
                })
            })
            .collect();
    }
    v
}

/// An instant-acme error as a failure, with the problem document when there is one.
fn failure(e: instant_acme::Error) -> UpstreamFailure {
    match e {
        instant_acme::Error::Api(p) => UpstreamFailure {
            message: p.to_string(),
            problem: Some(problem_json(&p)),
            retry_after: None,
        },
        other => UpstreamFailure::plain(other.to_string()),
    }
}

/// Run an upstream call with a time limit.
async fn bounded<T>(
    limit: Duration,
    what: &str,
    call: impl Future<Output = Result<T, instant_acme::Error>>,
) -> Result<T, UpstreamFailure> {
    match tokio::time::timeout(limit, call).await {
        Ok(r) => r.map_err(|e| {
            let mut f = failure(e);
            f.message = format!("{what}: {}", f.message);
            f
        }),
        Err(_) => Err(UpstreamFailure::plain(format!(
            "{what}: no answer within {}s",
            limit.as_secs()
        ))),
    }
}

impl UpstreamCa for AcmeUpstream {
    fn issue<'a>(
        &'a self,
        order: UpstreamOrder<'a>,
        board: &'a dyn ChallengeBoard,
    ) -> BoxFuture<'a, Result<UpstreamCertificate, UpstreamFailure>> {
        Box::pin(async move {
            let mut published = Vec::new();
            let mut records = Vec::new();
            let mut order_url = None;
            let r = tokio::time::timeout(
                ORDER_TIMEOUT,
                self.issue_inner(order, board, &mut published, &mut records, &mut order_url),
            )
            .await
            .unwrap_or_else(|_| {
                Err(UpstreamFailure::plain(format!(
                    "the order was not done within {}s",
                    ORDER_TIMEOUT.as_secs()
                )))
            });
            for token in &published {
                board.withdraw(token).await;
            }
            if let Some(dns) = &self.dns {
                for (name, value) in &records {
                    if let Err(e) = dns.remove_txt(name, value).await {
                        tracing::warn!(record = %name, error = %e.message, "removing a dns-01 record failed");
                    }
                }
            }
            // A refusal that said when to come back (a rate limit, an outage) is waited
            // out: the retry is scheduled no earlier.
            let waited = self.retry.take();
            r.map(|pem| UpstreamCertificate {
                pem,
                reference: order_url,
            })
            .map_err(|mut f| {
                f.retry_after = f.retry_after.or(waited);
                f
            })
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<Value, UpstreamFailure>> {
        Box::pin(async move {
            let account = self.account().await?;
            // Setting the contacts to what they are is a signed request to the account
            // URL: it fails unless the account exists and is valid.
            let contact: Vec<&str> = self.config.contact.iter().map(String::as_str).collect();
            bounded(CALL_TIMEOUT, "checking the account", async {
                again_on_bad_nonce!(account.update_contacts(&contact))
            })
            .await?;
            let mut found = json!({
                "account_url": account.id(),
                "profiles": account.profiles().map(|p| p.name.to_string()).collect::<Vec<_>>(),
            });
            if let Some(dns) = &self.dns {
                let checked = dns.check().await?;
                if !checked.is_null() {
                    found["dns"] = checked;
                }
            }
            Ok(found)
        })
    }

    fn renewal_info<'a>(
        &'a self,
        cert_der: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<RenewalAdvice>, UpstreamFailure>> {
        Box::pin(async move {
            let Some(id) = certificate_identifier(cert_der) else {
                return Ok(None);
            };
            let account = self.account().await?;
            match tokio::time::timeout(CALL_TIMEOUT, account.renewal_info(&id)).await {
                Err(_) => Err(UpstreamFailure::plain(format!(
                    "renewal information: no answer within {}s",
                    CALL_TIMEOUT.as_secs()
                ))),
                Ok(Err(instant_acme::Error::Unsupported(_))) => Ok(None),
                Ok(Err(e)) => {
                    let mut f = failure(e);
                    f.message = format!("renewal information: {}", f.message);
                    Err(f)
                }
                Ok(Ok((info, retry_after))) => Ok(Some(RenewalAdvice {
                    start: info.suggested_window.start,
                    end: info.suggested_window.end,
                    explanation_url: info.explanation_url,
                    retry_after,
                })),
            }
        })
    }

    fn rollover_key(&self) -> BoxFuture<'_, Result<String, UpstreamFailure>> {
        Box::pin(async move {
            let mut account = self.account().await?;
            let creds = bounded(CALL_TIMEOUT, "rolling the account key over", async {
                again_on_bad_nonce!(account.update_key())
            })
            .await?;
            serde_json::to_string(&creds)
                .map_err(|e| UpstreamFailure::plain(format!("account credentials: {e}")))
        })
    }

    fn revoke<'a>(
        &'a self,
        cert_der: &'a [u8],
        reason: u8,
    ) -> BoxFuture<'a, Result<(), UpstreamFailure>> {
        Box::pin(async move {
            let reason = match reason {
                0 => RevocationReason::Unspecified,
                1 => RevocationReason::KeyCompromise,
                2 => RevocationReason::CaCompromise,
                3 => RevocationReason::AffiliationChanged,
                4 => RevocationReason::Superseded,
                5 => RevocationReason::CessationOfOperation,
                9 => RevocationReason::PrivilegeWithdrawn,
                10 => RevocationReason::AaCompromise,
                other => {
                    return Err(UpstreamFailure::plain(format!(
                        "revocation reason {other} is not sent to ACME CAs"
                    )));
                }
            };
            let account = self.account().await?;
            let der = rustls::pki_types::CertificateDer::from(cert_der);
            // RFC 8555 section 7.6, signed with the account key that ordered it.
            let request = RevocationRequest {
                certificate: &der,
                reason: Some(reason),
            };
            bounded(CALL_TIMEOUT, "revoking the certificate", async {
                again_on_bad_nonce!(account.revoke(&request))
            })
            .await
        })
    }

    fn deactivate(&self) -> BoxFuture<'_, Result<(), UpstreamFailure>> {
        Box::pin(async move {
            let account = self.account().await?;
            bounded(CALL_TIMEOUT, "deactivating the account", async {
                again_on_bad_nonce!(account.clone().deactivate())
            })
            .await
        })
    }
}

/// The RFC 9773 identifier of a certificate: its authority key identifier and serial
/// number (both without their DER tag and length); `None` when it has no key identifier.
fn certificate_identifier(cert_der: &[u8]) -> Option<CertificateIdentifier<'static>> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })?;
    let serial = cert.tbs_certificate.raw_serial().to_vec();
    Some(
        CertificateIdentifier::new(
            rustls::pki_types::Der::from(aki.as_slice()),
            rustls::pki_types::Der::from(serial.as_slice()),
        )
        .into_owned(),
    )
}
