//! The public plain-HTTP surface (also served over HTTPS): CA certificates for AIA, CRLs,
//! OCSP, health, readiness and metrics. No authentication: relying parties need these.
//!
//! Every route is mounted by `utoipa_axum::routes!` from its handler's `#[utoipa::path]`
//! attribute, which is also what `/api/v1/openapi.json` describes under the `Public` tag.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;

use crate::api::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::openapi::schemas::Problem;
use crate::error::Error;
use crate::server::AppState;

/// The public routes with their description (paths as axum writes them: the OCSP GET
/// path is `/ocsp/{*request}`).
pub fn described() -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::new()
        .routes(routes!(ca_certificate))
        .routes(routes!(crl))
        .routes(routes!(ocsp_post))
        .routes(routes!(ocsp_get))
        .routes(routes!(acme_challenge))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics));
    // The OCSP request is DER, a body with no schema, and `#[utoipa::path]` only marks a
    // body required through its schema's type.
    if let Some(utoipa::openapi::RefOr::T(body)) = router
        .get_openapi_mut()
        .paths
        .paths
        .get_mut("/ocsp")
        .and_then(|item| item.post.as_mut())
        .and_then(|op| op.request_body.as_mut())
    {
        body.required = Some(utoipa::openapi::Required::True);
    }
    router
}

/// The routes of `server.acme_challenge_listen`: the http-01 answers alone.
pub fn acme_challenge_router() -> Router<AppState> {
    OpenApiRouter::new().routes(routes!(acme_challenge)).into()
}

/// Routes.
pub fn router() -> Router<AppState> {
    described().into()
}

fn split_file<'a>(file: &'a str, exts: &[&str]) -> Result<(&'a str, &'a str), Error> {
    let (id, ext) = file
        .rsplit_once('.')
        .ok_or_else(|| Error::NotFound(format!("no file {file:?}")))?;
    if !exts.contains(&ext) {
        return Err(Error::NotFound(format!(
            "no file {file:?} (use .{})",
            exts.join(" or .")
        )));
    }
    Ok((id, ext))
}

#[utoipa::path(
    get,
    path = "/ca/{file}",
    operation_id = "getPublicCaCertificate",
    tag = "Public",
    summary = "Download a CA certificate (AIA caIssuers)",
    description = "The URL written into issued certificates' Authority Information Access extension. No authentication.",
    security(()),
    params(
        ("file" = String, Path, description = "`<ca>.crt` or `<ca>.der` for DER, `<ca>.pem` for PEM, where `<ca>` is the CA's id or name.", pattern = r"^.+\.(crt|der|pem)$", example = "root.crt"),
    ),
    responses(
        (status = 200, description = "The CA certificate: DER for `.crt` and `.der`, PEM for `.pem`.", content(("application/pkix-cert"), (String = "application/x-pem-file"))),
        (status = 404, description = "A file name without `.crt`, `.der` or `.pem`, no such CA, or a CA that has no certificate yet.", content((Problem = "application/problem+json"))),
        (status = 500, description = "Something failed inside the server (`internal`); the details are logged, not sent.", content((Problem = "application/problem+json"))),
    )
)]
async fn ca_certificate(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, Error> {
    let (id, ext) = split_file(&file, &["crt", "der", "pem"])?;
    let der = state.services.cas.certificate(id).await?;
    Ok(match ext {
        "pem" => (
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            certkeeper_ca::pem_encode_certs([der.as_slice()]),
        )
            .into_response(),
        _ => ([(header::CONTENT_TYPE, "application/pkix-cert")], der).into_response(),
    })
}

#[utoipa::path(
    get,
    path = "/crl/{file}",
    operation_id = "getPublicCrl",
    tag = "Public",
    summary = "Download a CA's CRL (CRL distribution point)",
    description = "The CA's current CRL, regenerated first when it is missing or past half its life. The URL written into issued certificates' CRL distribution points. No authentication.",
    security(()),
    params(
        ("file" = String, Path, description = "`<ca>.crl`, where `<ca>` is the CA's id or name.", pattern = r"^.+\.crl$", example = "root.crl"),
    ),
    responses(
        (status = 200, description = "The CRL, DER.", content(("application/pkix-crl"))),
        (status = 404, description = "A file name without `.crl`, or no such CA.", content((Problem = "application/problem+json"))),
        (status = 409, description = "The CA is not active (a pending CA has no CRL).", content((Problem = "application/problem+json"))),
        (status = 500, description = "Something failed inside the server (`internal`); the details are logged, not sent.", content((Problem = "application/problem+json"))),
    )
)]
async fn crl(State(state): State<AppState>, Path(file): Path<String>) -> Result<Response, Error> {
    let (id, _) = split_file(&file, &["crl"])?;
    let der = state.services.cas.crl(id).await?;
    Ok(([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response())
}

fn ocsp_response(der: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/ocsp-response")], der).into_response()
}

#[utoipa::path(
    post,
    path = "/ocsp",
    operation_id = "ocspPost",
    tag = "Public",
    summary = "OCSP (RFC 6960), POST",
    description = "Answers a DER OCSP request. Problems are answered with OCSP error statuses (`malformedRequest`, `unauthorized` for certificates of no CA here, `internalError`) in a 200 response, never with an HTTP error. The request's Content-Type is not checked. No authentication.",
    security(()),
    request_body(content(("application/ocsp-request")), description = "The DER OCSP request."),
    responses(
        (status = 200, description = "The DER OCSP response.", content(("application/ocsp-response"))),
        (status = 413, description = "The request body is larger than `server.max_body_bytes` (a plain-text message, not a problem document).", content((String = "text/plain"))),
    )
)]
async fn ocsp_post(State(state): State<AppState>, body: Bytes) -> Response {
    ocsp_response(state.services.cas.ocsp(&body).await)
}

#[utoipa::path(
    get,
    path = "/ocsp/{*request}",
    operation_id = "ocspGet",
    tag = "Public",
    summary = "OCSP (RFC 6960), GET",
    description = "Answers an OCSP request carried in the URL (RFC 6960 appendix A.1). Problems are answered with OCSP error statuses in a 200 response. No authentication.",
    security(()),
    params(
        ("request" = String, Path, description = "The base64 (standard or URL-safe, padded or not) of the DER OCSP request, URL-encoded. It may contain `/`: the rest of the path is taken."),
    ),
    responses(
        (status = 200, description = "The DER OCSP response.", content(("application/ocsp-response"))),
    )
)]
async fn ocsp_get(State(state): State<AppState>, Path(request): Path<String>) -> Response {
    // RFC 6960 appendix A.1: the path is the URL-encoded base64 of the DER request.
    let b64 = request.trim_start_matches('/');
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(b64))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64))
        .unwrap_or_default();
    ocsp_response(state.services.cas.ocsp(&der).await)
}

#[utoipa::path(
    get,
    path = "/.well-known/acme-challenge/{token}",
    operation_id = "getAcmeChallengeAnswer",
    tag = "Public",
    summary = "http-01 answer for an upstream ACME CA",
    description = "While certkeeper orders a certificate from an external ACME issuer, the CA fetches the key authorization of each http-01 challenge here (RFC 8555 section 8.3). Point the names at this listener, or forward `/.well-known/acme-challenge/` to it from an existing web server. No authentication.",
    security(()),
    params(("token" = String, Path, description = "The challenge token.")),
    responses(
        (status = 200, description = "The key authorization.", content((String = "text/plain"))),
        (status = 404, description = "No answer is published for this token.", content((Problem = "application/problem+json"))),
    )
)]
async fn acme_challenge(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, Error> {
    match state.services.issuers.http01_answer(&token).await? {
        Some(answer) => Ok(([(header::CONTENT_TYPE, "text/plain")], answer).into_response()),
        None => Err(Error::NotFound(format!(
            "no challenge answer for token {token:?}"
        ))),
    }
}

#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "Public",
    summary = "Liveness",
    description = "Always `ok` while the process serves requests. No authentication.",
    security(()),
    responses(
        (status = 200, description = "`ok`.", content((String = "text/plain"))),
    )
)]
async fn healthz() -> &'static str {
    "ok\n"
}

#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "Public",
    summary = "Readiness",
    description = "Ready when start-up has finished, the server is not shutting down, and the database answers. No authentication.",
    security(()),
    responses(
        (status = 200, description = "`ready`.", content((String = "text/plain"))),
        (status = 503, description = "`starting` (start-up not finished, or shutting down) or `database unreachable`.", content((String = "text/plain"))),
    )
)]
async fn readyz(State(state): State<AppState>) -> Response {
    if !state.ready.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response();
    }
    match state.pki.ping().await {
        Ok(()) => "ready\n".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
        }
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "Public",
    summary = "Prometheus metrics",
    description = "Counters, histograms and gauges in the OpenMetrics text format (`Content-Type: application/openmetrics-text; version=1.0.0`), which Prometheus reads: certificates issued and revoked, OCSP requests, HTTP responses by class and latency by front end, and from the database at each scrape the earliest certificate expiry and counts expiring within 7, 30 and 90 days per CA and profile, CA expiry, the alert outbox by status, ACME orders and challenges by status, managed-certificate events by kind, discovery scans, the store writer's transactions and the writes they held (their ratio: the mean group-commit batch), and `certkeeper_build_info`. No authentication.",
    security(()),
    responses(
        (status = 200, description = "The metrics.", content((String = "application/openmetrics-text"))),
    )
)]
async fn metrics(State(state): State<AppState>) -> Response {
    match state.pki.gauges().await {
        Ok(g) => state.metrics.set_gauges(&g),
        // The counters still say something; the gauges keep their last values.
        Err(e) => tracing::warn!(error = %e, "metrics: reading the gauges failed"),
    }
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}
