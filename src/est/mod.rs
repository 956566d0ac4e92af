//! EST (RFC 7030) under `/.well-known/est/` and `/.well-known/est/<label>/` on the HTTPS
//! listener: `cacerts`, `simpleenroll`, `simplereenroll`, `csrattrs` and `serverkeygen`.
//!
//! A label selects a profile (and so the CA); the bare path uses `est.default_profile`.
//! Clients authenticate with HTTP Basic credentials made over the REST API, or with a TLS
//! client certificate: one from a bootstrap CA (`est.client_ca_file`) to enroll, or the
//! certificate being renewed (issued by us under the same profile) to re-enroll.
//! This module parses HTTP and encodes the wire format; who may enroll, the checks on a
//! request, server-made keys and issuance are [`crate::services::est`]'s. Errors are
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

use crate::error::Error;
use crate::problem::HttpError;
use crate::server::AppState;
use crate::services::est::{EstOp, Peer, requester};
use crate::services::pki::Actor;
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
        let est = &state.services.est;
        let chain = est.ca_chain(&est.target(label.0.as_deref()).await?).await?;
        let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
        Ok::<_, HttpError>(base64_response(PKCS7, &wire::certs_only(&refs)))
    };
    run.await.unwrap_or_else(est_error)
}

async fn csrattrs(State(state): State<AppState>, label: Label) -> Response {
    let run = async {
        let t = state.services.est.target(label.0.as_deref()).await?;
        Ok::<_, HttpError>(
            match wire::csr_attrs(&t.profile.policy.allowed_key_types, t.channel_binding) {
                Some(der) => base64_response("application/csrattrs", &der),
                None => StatusCode::NO_CONTENT.into_response(),
            },
        )
    };
    run.await.unwrap_or_else(est_error)
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
    enroll(&state, EstOp::Enroll, req).await
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
    enroll(&state, EstOp::Reenroll, req).await
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
    enroll(&state, EstOp::ServerKeygen, req).await
}

/// Who asked, as far as known: for the audit log of refusals and issuances.
#[derive(Debug, Default)]
struct Requester {
    name: Option<String>,
}

/// An enrollment: authenticate, read and check the CSR, issue. Refusals (401/403) are
/// written to the audit log.
async fn enroll(state: &AppState, op: EstOp, req: EnrollRequest) -> Response {
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
                state
                    .services
                    .est
                    .audit_refusal(op, &label, &actor, status.as_u16(), &e.to_string())
                    .await;
            }
            est_error(e)
        }
    }
}

async fn enroll_inner(
    state: &AppState,
    op: EstOp,
    req: EnrollRequest,
    who: &mut Requester,
) -> Result<Response, HttpError> {
    let est = &state.services.est;
    let t = est.target(req.label.0.as_deref()).await?;
    let peer = Peer {
        chain: &req.peer.chain,
        channel_binding: req.peer.channel_binding,
    };
    who.name = requester(peer.chain.first().map(Vec::as_slice), None);
    let basic = auth::basic_credentials(&req.headers)?;
    if op != EstOp::Reenroll
        && let Some((user, _)) = &basic
    {
        who.name = requester(None, Some(user));
    }
    let authn = est
        .authenticate(op, &t, basic, peer, req.source.as_deref())
        .await?;

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
    let actor = Actor {
        name: who.name.clone().unwrap_or_else(|| "est:anonymous".into()),
        source: req.source.clone(),
    };
    let enrolled = est.enroll(op, &t, &authn, &der, peer, &actor).await?;
    let issued = enrolled.issued;
    let cms = wire::certs_only(&[issued.cert.der.as_slice()]);
    match enrolled.key_pkcs8 {
        None => Ok(base64_response(PKCS7_CERTS_ONLY, &cms)),
        Some(pkcs8) => {
            let boundary = format!("est-{}", &issued.cert.info.serial);
            let (ct, body) = wire::serverkeygen_multipart(&pkcs8, &cms, &boundary);
            Ok(([(header::CONTENT_TYPE, ct)], body).into_response())
        }
    }
}
