//! EST (RFC 7030) under `/.well-known/est/` and `/.well-known/est/<label>/` on the HTTPS
//! listener: `cacerts`, `simpleenroll`, `simplereenroll`, `csrattrs` and `serverkeygen`.
//!
//! A label selects a profile (and so the CA); the bare path uses `est.default_profile`.
//! Clients authenticate with HTTP Basic credentials made over the REST API, or with a TLS
//! client certificate: one from a bootstrap CA (`est_client_ca_file`) to enroll, or the
//! certificate being renewed (issued by us under the same profile) to re-enroll.
//! Issuance goes through [`crate::services::pki::Pki::issue`] like every other front end. Errors are
//! RFC 7807 problem documents with the status RFC 7030 asks for; refusals are audited.

pub mod auth;
pub mod tls;

/// EST wire formats, shared with the CLI's EST client.
pub use certkeeper_ca::est_wire as wire;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use certkeeper_ca::{IssuanceRequest, KeyAlgorithm, ParsedCsr, PublicKeyData};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::Error;
use crate::problem::HttpError;
use crate::server::AppState;
use crate::services::pki::Actor;
use crate::store::{EstCredential, ProfileRecord, StoreError};
use tls::TlsPeer;

/// Largest EST request body (a PKCS#10 request is a few KiB at most).
pub const MAX_BODY: usize = 64 * 1024;

const PKCS7: &str = "application/pkcs7-mime";
const PKCS7_CERTS_ONLY: &str = "application/pkcs7-mime; smime-type=certs-only";

/// Routes, with and without a label.
pub fn router() -> Router<AppState> {
    let ops = || {
        Router::new()
            .route("/cacerts", get(cacerts))
            .route("/csrattrs", get(csrattrs))
            .route("/simpleenroll", post(simpleenroll))
            .route("/simplereenroll", post(simplereenroll))
            .route("/serverkeygen", post(serverkeygen))
    };
    Router::new()
        .nest("/.well-known/est", ops())
        .nest("/.well-known/est/{label}", ops())
}

/// The optional `{label}` path segment.
#[derive(Debug, Clone)]
struct Label(Option<String>);

impl FromRequestParts<AppState> for Label {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| Error::BadRequest(e.body_text()))?;
        Ok(Label(
            params
                .iter()
                .find(|(k, _)| *k == "label")
                .map(|(_, v)| v.to_string()),
        ))
    }
}

/// Where a request enrolls: the label's profile and its channel-binding rule.
struct Target {
    label: String,
    profile: ProfileRecord,
    channel_binding: bool,
}

async fn target(state: &AppState, label: &Label) -> Result<Target, HttpError> {
    let (name, profile, channel_binding) = match &label.0 {
        None => (
            String::new(),
            state.pki.settings().est.default_profile.clone(),
            false,
        ),
        Some(l) => {
            let rec = state
                .pki
                .store()
                .get_est_label(l)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound(_) => {
                        Error::NotFound(format!("no EST label {l:?} on this server"))
                    }
                    other => other.into(),
                })?;
            (rec.label, rec.profile, rec.require_channel_binding)
        }
    };
    let profile = state.pki.profile(&profile).await.map_err(|e| match e {
        StoreError::NotFound(_) => Error::NotFound(format!(
            "EST is not usable here: profile {profile:?} no longer exists (an administrator must change est.default_profile or the label)"
        )),
        other => other.into(),
    })?;
    Ok(Target {
        label: name,
        profile,
        channel_binding,
    })
}

/// An error as EST answers it: a problem document, with an HTTP Basic challenge on 401.
fn est_error(e: HttpError) -> Response {
    let unauthorized = e.status() == StatusCode::UNAUTHORIZED;
    let mut resp = e.into_response();
    if unauthorized {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"certkeeper EST\", charset=\"UTF-8\""),
        );
    }
    resp
}

fn base64_response(content_type: &'static str, der: &[u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::HeaderName::from_static("content-transfer-encoding"),
                "base64",
            ),
        ],
        wire::base64_lines(der),
    )
        .into_response()
}

async fn cacerts(State(state): State<AppState>, label: Label) -> Response {
    let run = async {
        let t = target(&state, &label).await?;
        let ca = state.pki.ca(&t.profile.ca_id).await?;
        let chain = state.pki.chain_of(&ca).await?;
        let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
        Ok::<_, HttpError>(base64_response(PKCS7, &wire::certs_only(&refs)))
    };
    run.await.unwrap_or_else(est_error)
}

async fn csrattrs(State(state): State<AppState>, label: Label) -> Response {
    let run = async {
        let t = target(&state, &label).await?;
        Ok::<_, HttpError>(
            match wire::csr_attrs(&t.profile.policy.allowed_key_types, t.channel_binding) {
                Some(der) => base64_response("application/csrattrs", &der),
                None => StatusCode::NO_CONTENT.into_response(),
            },
        )
    };
    run.await.unwrap_or_else(est_error)
}

/// The three operations that issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Enroll,
    Reenroll,
    ServerKeygen,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Enroll => "simpleenroll",
            Op::Reenroll => "simplereenroll",
            Op::ServerKeygen => "serverkeygen",
        }
    }
}

/// Everything an enrollment request brings.
struct EnrollRequest {
    label: Label,
    peer: TlsPeer,
    source: Option<String>,
    headers: HeaderMap,
    body: Body,
}

impl FromRequestParts<AppState> for TlsPeer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<TlsPeer>()
            .cloned()
            .unwrap_or_default())
    }
}

/// The client's address, for the audit log.
#[derive(Debug, Clone)]
struct Source(Option<String>);

impl FromRequestParts<AppState> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Source(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
        ))
    }
}

async fn simpleenroll(
    State(state): State<AppState>,
    label: Label,
    peer: TlsPeer,
    Source(source): Source,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let req = EnrollRequest {
        label,
        peer,
        source,
        headers,
        body,
    };
    enroll(&state, Op::Enroll, req).await
}

async fn simplereenroll(
    State(state): State<AppState>,
    label: Label,
    peer: TlsPeer,
    Source(source): Source,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let req = EnrollRequest {
        label,
        peer,
        source,
        headers,
        body,
    };
    enroll(&state, Op::Reenroll, req).await
}

async fn serverkeygen(
    State(state): State<AppState>,
    label: Label,
    peer: TlsPeer,
    Source(source): Source,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let req = EnrollRequest {
        label,
        peer,
        source,
        headers,
        body,
    };
    enroll(&state, Op::ServerKeygen, req).await
}

/// Who asked, as far as known: for the audit log of refusals and issuances.
#[derive(Debug, Default)]
struct Requester {
    name: Option<String>,
}

/// An enrollment: authenticate, read and check the CSR, take a credential use, issue.
/// Refusals (401/403) are written to the audit log.
async fn enroll(state: &AppState, op: Op, req: EnrollRequest) -> Response {
    let mut who = Requester::default();
    let label = req.label.0.clone().unwrap_or_default();
    let source = req.source.clone();
    match enroll_inner(state, op, req, &mut who).await {
        Ok(resp) => resp,
        Err(e) => {
            let status = e.status();
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let actor = Actor {
                    name: who.name.unwrap_or_else(|| "est:anonymous".into()),
                    source,
                };
                let ev = actor.event("est.refuse", "est").detail(serde_json::json!({
                    "operation": op.name(), "label": label, "status": status.as_u16(),
                    "reason": e.to_string(),
                }));
                if let Err(ae) = state
                    .pki
                    .store()
                    .audit(&ev, state.pki.now().unix_timestamp())
                    .await
                {
                    tracing::error!(error = %ae, "could not audit an EST refusal");
                }
            }
            est_error(e)
        }
    }
}

/// How the client proved who it is.
enum Authn {
    Password(EstCredential),
    Certificate,
}

async fn enroll_inner(
    state: &AppState,
    op: Op,
    req: EnrollRequest,
    who: &mut Requester,
) -> Result<Response, HttpError> {
    let t = target(state, &req.label).await?;
    let client_cert = match req.peer.chain.first() {
        Some(leaf) => {
            who.name = Some(format!("est-cert:{}", subject_of(leaf)));
            Some(leaf.clone())
        }
        None => None,
    };
    let basic = auth::basic_credentials(&req.headers)?;
    let authn = match (op, basic) {
        (Op::Reenroll, _) => {
            if client_cert.is_none() {
                return Err(HttpError::from(Error::Unauthorized(
                    "simplereenroll needs the certificate being renewed as the TLS client certificate".into(),
                )));
            }
            trusted_client_cert(state, &t, &req.peer, true).await?;
            Authn::Certificate
        }
        (_, Some((user, password))) => {
            who.name = Some(format!("est:{user}"));
            Authn::Password(check_password(state, &t, &user, &password).await?)
        }
        (_, None) if client_cert.is_some() => {
            trusted_client_cert(state, &t, &req.peer, false).await?;
            Authn::Certificate
        }
        (_, None) => {
            return Err(HttpError::from(Error::Unauthorized(
                "authentication required: HTTP Basic credentials for this EST label, or a trusted TLS client certificate".into(),
            )));
        }
    };

    let content_type = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if content_type.as_deref() != Some("application/pkcs10") {
        return Err(HttpError::UnsupportedMediaType(format!(
            "{} takes Content-Type: application/pkcs10 (base64 DER), not {}",
            op.name(),
            content_type.as_deref().unwrap_or("none")
        )));
    }
    let too_large = || {
        HttpError::PayloadTooLarge(format!(
            "EST request bodies are at most {} KiB",
            MAX_BODY / 1024
        ))
    };
    if req
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY)
    {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(req.body, MAX_BODY)
        .await
        .map_err(|_| too_large())?;
    let der = wire::decode_base64_body(&bytes).map_err(Error::BadRequest)?;
    if der.first() != Some(&0x30) {
        return Err(HttpError::from(Error::BadCsr(
            "the body decodes to something that is not DER; expected a PKCS#10 request".into(),
        )));
    }
    let csr = certkeeper_ca::parse_csr(&der)?;
    check_channel_binding(&t, &csr, &req.peer)?;
    if op == Op::Reenroll {
        let leaf = client_cert.as_deref().unwrap_or_default();
        same_names(&csr, leaf)?;
    }

    let mut issuance = IssuanceRequest::from_csr(&csr);
    let generated = if op == Op::ServerKeygen {
        let alg = csr.key_algorithm;
        if !KeyAlgorithm::GENERATABLE.contains(&alg) {
            return Err(HttpError::from(Error::BadRequest(format!(
                "the server cannot generate {alg} keys; send a CSR with another key type"
            ))));
        }
        if !t.profile.policy.allowed_key_types.contains(&alg) {
            return Err(certkeeper_ca::PolicyViolation {
                profile: t.profile.policy.name.clone(),
                rule: "allowed_key_types",
                detail: format!("key type {alg} is not allowed"),
            })
            .map_err(|v| HttpError::from(Error::from(v)));
        }
        let key = tokio::task::spawn_blocking(move || alg.generate())
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        issuance.public_key_der = key.subject_public_key_info();
        Some(key.serialize_der())
    } else {
        None
    };

    // Take one use of the credential only now that the request is known to be good, and
    // give it back if issuance fails.
    let credential = match &authn {
        Authn::Password(c) => {
            if !state
                .pki
                .store()
                .take_est_credential_use(&c.id, state.pki.now())
                .await?
            {
                return Err(HttpError::from(Error::Unauthorized(format!(
                    "EST credential {:?} is used up, expired or revoked",
                    c.username
                ))));
            }
            Some(c)
        }
        Authn::Certificate => None,
    };
    let actor = Actor {
        name: who.name.clone().unwrap_or_else(|| "est:anonymous".into()),
        source: req.source.clone(),
    };
    let issued = match state.pki.issue(&t.profile, issuance, None, &actor).await {
        Ok(i) => i,
        Err(e) => {
            if let Some(c) = credential.filter(|c| c.uses_left.is_some()) {
                state.pki.store().return_est_credential_use(&c.id).await?;
            }
            return Err(e.into());
        }
    };
    let cms = wire::certs_only(&[issued.cert.der.as_slice()]);
    match generated {
        None => Ok(base64_response(PKCS7_CERTS_ONLY, &cms)),
        Some(pkcs8) => {
            let boundary = format!("est-{}", &issued.cert.info.serial);
            let (ct, body) = wire::serverkeygen_multipart(&pkcs8, &cms, &boundary);
            Ok(([(header::CONTENT_TYPE, ct)], body).into_response())
        }
    }
}

fn subject_of(der: &[u8]) -> String {
    X509Certificate::from_der(der)
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_else(|_| "unparseable certificate".into())
}

async fn check_password(
    state: &AppState,
    t: &Target,
    user: &str,
    password: &str,
) -> Result<EstCredential, Error> {
    let wrong = || Error::Unauthorized("unknown EST user name or wrong password".into());
    let cred = state.pki.store().find_est_credential(user).await?;
    let hash = cred.as_ref().map(|c| c.password_hash().to_string());
    let password = password.to_string();
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(h) => auth::verify_password(&password, &h),
        None => false,
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?;
    let cred = match cred {
        Some(c) if ok => c,
        _ => return Err(wrong()),
    };
    if cred.revoked_at.is_some() {
        return Err(Error::Unauthorized(format!(
            "EST credential {user:?} has been revoked"
        )));
    }
    if cred.expires_at.is_some_and(|e| e <= state.pki.now()) {
        return Err(Error::Unauthorized(format!(
            "EST credential {user:?} has expired"
        )));
    }
    if cred.uses_left.is_some_and(|n| n <= 0) {
        return Err(Error::Unauthorized(format!(
            "EST credential {user:?} has no enrollments left"
        )));
    }
    if cred.label != t.label {
        let path = |l: &str| {
            if l.is_empty() {
                "/.well-known/est/".to_string()
            } else {
                format!("/.well-known/est/{l}/")
            }
        };
        return Err(Error::Forbidden(format!(
            "EST credential {user:?} is for {}, not {}",
            path(&cred.label),
            path(&t.label)
        )));
    }
    Ok(cred)
}

/// Check the client's certificate chain for an operation.
///
/// - Enrollment (`simpleenroll`, `serverkeygen`) by certificate is for devices holding a
///   bootstrap (manufacturer) certificate: the chain must lead to a CA of
///   `est_client_ca_file`. A certificate of ours does not let its holder enroll for new
///   names.
/// - Renewal (`simplereenroll`) is for certificates this server issued (when
///   `est_trust_own_cas`): valid, unrevoked, and issued under the label's profile.
async fn trusted_client_cert(
    state: &AppState,
    t: &Target,
    peer: &TlsPeer,
    renewal: bool,
) -> Result<(), Error> {
    let settings = state.pki.settings();
    let now = state.pki.now();
    if !renewal {
        if settings.est.client_cas.is_empty() {
            return Err(Error::Forbidden(
                "enrollment by TLS client certificate needs a bootstrap CA (est_client_ca_file); use HTTP Basic credentials, or simplereenroll to renew".into(),
            ));
        }
        auth::verify_chain(&peer.chain, &settings.est.client_cas, now)?;
        return Ok(());
    }
    let mut anchors: Vec<Vec<u8>> = Vec::new();
    if settings.est.trust_own_cas {
        for ca in state.pki.store().list_cas().await? {
            if ca.status == "active"
                && let Some(der) = ca.cert_der
            {
                anchors.push(der);
            }
        }
    }
    auth::verify_chain(&peer.chain, &anchors, now)?;
    let leaf = peer.chain.first().map(Vec::as_slice).unwrap_or_default();
    let fingerprint = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf));
    let Some(id) = state
        .pki
        .store()
        .certificate_id_by_fingerprint(&fingerprint)
        .await?
    else {
        return Err(Error::Forbidden(
            "simplereenroll renews certificates this server issued; the TLS client certificate is not one of them".into(),
        ));
    };
    let rec = state.pki.store().get_certificate(&id).await?;
    if rec.status != "valid" {
        return Err(Error::Forbidden(
            "the TLS client certificate has been revoked".into(),
        ));
    }
    if rec.profile_name.as_deref() != Some(t.profile.policy.name.as_str()) {
        return Err(Error::Forbidden(format!(
            "the TLS client certificate was issued under profile {:?}; this EST path renews under {:?}",
            rec.profile_name.unwrap_or_default(),
            t.profile.policy.name
        )));
    }
    Ok(())
}

/// RFC 7030 §3.5: a challengePassword that looks like a channel-binding value must match
/// this connection's `tls-exporter` value (RFC 9266); a label may require one.
fn check_channel_binding(t: &Target, csr: &ParsedCsr, peer: &TlsPeer) -> Result<(), Error> {
    let expected = peer
        .channel_binding
        .map(|cb| base64::engine::general_purpose::STANDARD.encode(cb));
    let given = csr.challenge_password.as_deref().map(str::trim);
    let looks_like_binding = given.is_some_and(|g| {
        base64::engine::general_purpose::STANDARD
            .decode(g)
            .is_ok_and(|b| b.len() == 32)
    });
    match (given, expected) {
        (Some(g), Some(e)) if g == e => Ok(()),
        (Some(_), _) if looks_like_binding || t.channel_binding => Err(Error::Forbidden(
            "the CSR's challengePassword does not match this TLS connection's channel binding (base64 of the RFC 9266 tls-exporter value); the request may have been relayed".into(),
        )),
        (None, _) if t.channel_binding => Err(Error::Forbidden(
            "this EST label requires channel binding: put base64 of the TLS connection's tls-exporter value (RFC 9266) in the CSR's challengePassword".into(),
        )),
        _ => Ok(()),
    }
}

/// RFC 7030 §4.2.2: a renewal's subject and subjectAltName must be those of the
/// certificate being renewed.
fn same_names(csr: &ParsedCsr, cert_der: &[u8]) -> Result<(), Error> {
    let info = certkeeper_ca::inspect_certificate(cert_der)?;
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| Error::BadRequest(format!("client certificate: {e}")))?;
    let mut cert_subject: Vec<(String, String)> = Vec::new();
    for rdn in cert.subject().iter() {
        for attr in rdn.iter() {
            let oid = attr.attr_type();
            let key = x509_parser::objects::oid2abbrev(oid, x509_parser::objects::oid_registry())
                .map(str::to_string)
                .unwrap_or_else(|_| oid.to_id_string());
            cert_subject.push((key, attr.as_str().unwrap_or_default().to_string()));
        }
    }
    let mut csr_subject = csr.subject.clone();
    cert_subject.sort();
    csr_subject.sort();
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|s| s.to_ascii_lowercase()).collect();
        v.sort();
        v.dedup();
        v
    };
    let mut cert_ips = info.ip_addresses.clone();
    let mut csr_ips = csr.ip_addresses.clone();
    cert_ips.sort();
    csr_ips.sort();
    if cert_subject != csr_subject
        || norm(&info.dns_names) != norm(&csr.dns_names)
        || cert_ips != csr_ips
    {
        return Err(Error::BadRequest(format!(
            "simplereenroll must keep the subject and subjectAltName of the certificate being renewed ({}; {})",
            info.subject,
            info.dns_names
                .iter()
                .cloned()
                .chain(info.ip_addresses.iter().map(|i| i.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}
