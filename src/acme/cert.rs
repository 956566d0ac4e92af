//! Certificate download, revocation and renewal information (RFC 9773).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use certkeeper_acme::{Problem, ProblemType};

use super::{Ctx, Peer, Reply, handle, internal};
use crate::server::AppState;

pub(super) async fn certificate(
    State(state): State<AppState>,
    Path((profile, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
    body: Bytes,
) -> Response {
    handle(state, profile, uri, headers.clone(), peer, |ctx| async move {
        let r = certificate_inner(&ctx, &id, &headers, &body).await;
        (ctx, r)
    })
    .await
}

async fn certificate_inner(ctx: &Ctx, id: &str, headers: &HeaderMap, body: &[u8]) -> Result<Reply, Problem> {
    let (jws, account) = ctx.verify(headers, body).await?;
    let account = Ctx::require_account(account)?;
    if !jws.is_post_as_get() {
        return Err(Problem::malformed("certificates are downloaded with POST-as-GET"));
    }
    let store = ctx.pki().store();
    let order = store
        .acme_order_by_certificate(id)
        .await
        .map_err(internal)?
        .filter(|o| o.account_id == account.id)
        .ok_or_else(|| Problem::unauthorized("no such certificate for this account"))?;
    let cert = store
        .get_certificate(order.certificate_id.as_deref().unwrap_or(id))
        .await
        .map_err(internal)?;
    let ca = ctx.pki().ca(&cert.ca_id).await.map_err(internal)?;
    let chain = ctx.pki().chain_of(&ca).await.map_err(internal)?;
    // The leaf and the intermediates; the root is the trust anchor the client already has.
    let mut ders: Vec<&[u8]> = vec![&cert.der];
    ders.extend(
        chain
            .iter()
            .filter(|c| !certkeeper_ca::is_self_issued(c))
            .map(Vec::as_slice),
    );
    let pem = certkeeper_ca::pem_encode_certs(ders.into_iter());
    Ok(Reply::bytes(
        StatusCode::OK,
        "application/pem-certificate-chain",
        pem.into_bytes(),
    ))
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    Path(profile): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
    _body: Bytes,
) -> Response {
    handle(state, profile, uri, headers, peer, |ctx| async move {
        (ctx, Err(Problem::new(ProblemType::Malformed, "revocation is not available yet")))
    })
    .await
}

pub(super) async fn renewal_info(
    State(_state): State<AppState>,
    Path((_profile, _id)): Path<(String, String)>,
) -> Response {
    let mut r = Response::new(axum::body::Body::from(
        Problem::malformed("renewal information is not available yet")
            .to_json()
            .to_string(),
    ));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}
