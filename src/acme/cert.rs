//! Certificate download, revocation and renewal information (RFC 9773).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use certkeeper_acme::{KeyRef, Problem, ProblemType};
use serde::Deserialize;
use serde_json::json;
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

use super::order::rfc3339;
use super::{AcmePost, Ctx, Peer, Reply, handle, internal};
use crate::error::Error;
use crate::server::AppState;
use crate::store::CertRecord;

pub(super) async fn certificate(post: AcmePost) -> Response {
    post.answer(|ctx, p| Box::pin(certificate_inner(ctx, &p.id, &p.headers, &p.body)))
        .await
}

async fn certificate_inner(
    ctx: &Ctx,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, Problem> {
    let (jws, account) = ctx.verify_kid(headers, body).await?;
    if !jws.is_post_as_get() {
        return Err(Problem::malformed(
            "certificates are downloaded with POST-as-GET",
        ));
    }
    let (ca_id, der) = ctx
        .pki()
        .store()
        .acme_account_certificate(id, &account.id)
        .await
        .map_err(internal)?
        .ok_or_else(|| Problem::unauthorized("no such certificate for this account"))?;
    let ca = ctx.pki().ca(&ca_id).await.map_err(internal)?;
    let chain = ctx.pki().chain_of(&ca).await.map_err(internal)?;
    // The leaf and the intermediates; the root is the trust anchor the client already has.
    let mut ders: Vec<&[u8]> = vec![&der];
    ders.extend(
        chain
            .iter()
            .filter(|c| !certkeeper_ca::is_self_issued(c))
            .map(Vec::as_slice),
    );
    let pem = certkeeper_ca::pem_encode_certs(ders);
    Ok(Reply::bytes(
        StatusCode::OK,
        "application/pem-certificate-chain",
        pem.into_bytes(),
    ))
}

pub(super) async fn revoke(post: AcmePost) -> Response {
    post.answer(|ctx, p| Box::pin(revoke_inner(ctx, &p.headers, &p.body)))
        .await
}

#[derive(Deserialize)]
struct RevokePayload {
    certificate: String,
    #[serde(default)]
    reason: Option<u8>,
}

/// RFC 8555 §7.6: by the account that ordered the certificate, by an account holding valid
/// authorizations for all its names, or signed with the certificate's own key.
async fn revoke_inner(ctx: &Ctx, headers: &HeaderMap, body: &[u8]) -> Result<Reply, Problem> {
    let (jws, account) = ctx.verify(headers, body).await?;
    let p: RevokePayload = jws.json()?;
    let der = certkeeper_acme::b64_decode(&p.certificate, "certificate")?;
    let info = certkeeper_ca::inspect_certificate(&der)
        .map_err(|e| Problem::malformed(format!("certificate: {e}")))?;
    let reason = p.reason.unwrap_or(0);
    if certkeeper_ca::reason_from_code(reason).is_none() || reason == 6 || reason == 8 {
        return Err(Problem::new(
            ProblemType::BadRevocationReason,
            format!("reason {reason} is not allowed: use 0-5, 9 or 10"),
        ));
    }
    let store = ctx.pki().store();
    let cert_id = store
        .acme_certificate_id_by_fingerprint(&info.fingerprint_sha256)
        .await
        .map_err(internal)?
        .ok_or_else(|| Problem::unauthorized("this certificate was not issued here"))?;
    let actor = match (&jws.header.key, &account) {
        (KeyRef::Jwk(key), _) => {
            let (_, cert) = X509Certificate::from_der(&der)
                .map_err(|e| Problem::malformed(format!("certificate: {e}")))?;
            if cert.public_key().subject_public_key.data.as_ref()
                != key.subject_public_key().as_slice()
            {
                return Err(Problem::unauthorized(
                    "the JWS key is not the certificate's key",
                ));
            }
            ctx.actor(None)
        }
        (KeyRef::Kid(_), Some(a)) => {
            let owner = store
                .acme_order_by_certificate(&cert_id)
                .await
                .map_err(internal)?
                .is_some_and(|o| o.account_id == a.id);
            if !owner && !holds_authorizations(ctx, &a.id, &info).await? {
                return Err(Problem::unauthorized(
                    "the account neither ordered this certificate nor holds valid authorizations for all its names",
                ));
            }
            ctx.actor(Some(&a.id))
        }
        (KeyRef::Kid(_), None) => return Err(internal("kid without account")),
    };
    let rec = store.get_certificate(&cert_id).await.map_err(internal)?;
    if rec.status == "revoked" {
        return Err(Problem::new(
            ProblemType::AlreadyRevoked,
            "the certificate is already revoked",
        ));
    }
    match ctx.pki().revoke(&cert_id, reason, &actor).await {
        Ok(_) => Ok(Reply::empty(StatusCode::OK)),
        Err(Error::Conflict(_)) => Err(Problem::new(
            ProblemType::AlreadyRevoked,
            "the certificate is already revoked",
        )),
        Err(Error::BadRequest(d)) => Err(Problem::new(ProblemType::BadRevocationReason, d)),
        Err(e) => Err(internal(e)),
    }
}

async fn holds_authorizations(
    ctx: &Ctx,
    account_id: &str,
    info: &certkeeper_ca::CertInfo,
) -> Result<bool, Problem> {
    let store = ctx.pki().store();
    let now = ctx.now();
    let mut names: Vec<(&str, String)> =
        info.dns_names.iter().map(|n| ("dns", n.clone())).collect();
    names.extend(info.ip_addresses.iter().map(|i| ("ip", i.to_string())));
    if names.is_empty() {
        return Ok(false);
    }
    for (kind, value) in names {
        if store
            .acme_reusable_authz(account_id, kind, &value, now)
            .await
            .map_err(internal)?
            .is_none()
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Find the certificate an RFC 9773 CertID names: `base64url(AKI keyIdentifier)` `.`
/// `base64url(serial)`.
pub(crate) async fn cert_by_ari_id(ctx: &Ctx, cert_id: &str) -> Result<CertRecord, Problem> {
    let (aki, serial) = cert_id
        .split_once('.')
        .ok_or_else(|| Problem::malformed("a CertID is base64url(AKI) '.' base64url(serial)"))?;
    let aki = certkeeper_acme::b64_decode(aki, "CertID keyIdentifier")?;
    let serial = certkeeper_acme::b64_decode(serial, "CertID serial")?;
    let store = ctx.pki().store();
    for id in store
        .acme_certificate_id_by_serial(&hex::encode(&serial))
        .await
        .map_err(internal)?
    {
        let rec = store.get_certificate(&id).await.map_err(internal)?;
        let Ok((_, cert)) = X509Certificate::from_der(&rec.der) else {
            continue;
        };
        let matches = cert
            .extensions()
            .iter()
            .any(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(a) => a
                    .key_identifier
                    .as_ref()
                    .is_some_and(|k| k.0 == aki.as_slice()),
                _ => false,
            });
        if matches {
            return Ok(rec);
        }
    }
    Err(Problem::new(
        ProblemType::Malformed,
        "no certificate with this CertID was issued here",
    )
    .with_status(404))
}

/// The suggested renewal window: an administrator's override, else the last third of the
/// lifetime from two thirds to five sixths.
async fn window(ctx: &Ctx, rec: &CertRecord) -> Result<(i64, i64), Problem> {
    if let Some(w) = ctx
        .pki()
        .store()
        .acme_renewal_override(&rec.id, &rec.ca_id)
        .await
        .map_err(internal)?
    {
        return Ok(w);
    }
    let nb = rec.not_before.unix_timestamp();
    let life = rec.not_after.unix_timestamp() - nb;
    Ok((nb + life * 2 / 3, nb + life * 5 / 6))
}

pub(super) async fn renewal_info(
    State(state): State<AppState>,
    Path((profile, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
) -> Response {
    handle(state, profile, uri, headers, peer, |ctx| async move {
        let r = async {
            let rec = cert_by_ari_id(&ctx, &id).await?;
            let (start, end) = window(&ctx, &rec).await?;
            let body = json!({"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}});
            Ok(Reply::json(StatusCode::OK, &body).header(axum::http::header::RETRY_AFTER, "21600"))
        }
        .await;
        (ctx, r)
    })
    .await
}
