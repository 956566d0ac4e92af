//! The public plain-HTTP surface (also served over HTTPS): CA certificates for AIA, CRLs,
//! OCSP, health, readiness and metrics. No authentication: relying parties need these.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;

use crate::api::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;

use crate::error::Error;
use crate::server::AppState;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ca/{file}", get(ca_certificate))
        .route("/crl/{file}", get(crl))
        .route("/ocsp", post(ocsp_post))
        .route("/ocsp/{*request}", get(ocsp_get))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
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

async fn crl(State(state): State<AppState>, Path(file): Path<String>) -> Result<Response, Error> {
    let (id, _) = split_file(&file, &["crl"])?;
    let der = state.services.cas.crl(id).await?;
    Ok(([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response())
}

fn ocsp_response(der: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/ocsp-response")], der).into_response()
}

async fn ocsp_post(State(state): State<AppState>, body: Bytes) -> Response {
    ocsp_response(state.services.cas.ocsp(&body).await)
}

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

async fn healthz() -> &'static str {
    "ok\n"
}

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

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
