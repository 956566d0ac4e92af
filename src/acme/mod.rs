//! The ACME (RFC 8555) front end: `/acme/directory` for the default profile and
//! `/acme/<profile>/directory` for each profile listed in `acme.profiles`.
//!
//! Handlers parse and authenticate (JWS, nonce, URL) with `certkeeper_acme`, keep their
//! state in the database (so any replica can answer any request), and issue only through
//! [`crate::services::pki::Pki::issue`] with the directory's profile.

mod account;
mod cert;
mod nonce;
mod order;

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use certkeeper_acme::{Jws, KeyRef, Problem, ProblemType, PublicJwk};
use serde_json::{Value, json};

pub use nonce::Nonces;

use crate::server::AppState;
use crate::services::pki::{Actor, Pki};
use crate::store::{AcmeAccount, ProfileRecord};

pub(crate) use order::{fail_interrupted_orders, reclaim_stuck_validations};

/// The ACME routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/acme/directory", get(directory_default))
        .route("/acme/{profile}/directory", get(directory))
        .route("/acme/{profile}/new-nonce", get(new_nonce).head(new_nonce))
        .route("/acme/{profile}/new-account", post(account::new_account))
        .route("/acme/{profile}/acct/{id}", post(account::account))
        .route("/acme/{profile}/acct/{id}/orders", post(account::orders))
        .route("/acme/{profile}/key-change", post(account::key_change))
        .route("/acme/{profile}/new-order", post(order::new_order))
        .route("/acme/{profile}/order/{id}", post(order::order))
        .route("/acme/{profile}/order/{id}/finalize", post(order::finalize))
        .route("/acme/{profile}/authz/{id}", post(order::authz))
        .route("/acme/{profile}/chall/{id}", post(order::challenge))
        .route("/acme/{profile}/cert/{id}", post(cert::certificate))
        .route("/acme/{profile}/revoke-cert", post(cert::revoke))
        .route("/acme/{profile}/renewal-info/{id}", get(cert::renewal_info))
}

/// The client's address, when the listener recorded it.
pub(crate) struct Peer(Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// Log an internal failure and hide it from the client.
pub(crate) fn internal(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "ACME request failed");
    Problem::internal()
}

/// A successful ACME answer before the common headers are added.
pub(crate) struct Reply {
    status: StatusCode,
    headers: Vec<(header::HeaderName, String)>,
    body: Option<(&'static str, Vec<u8>)>,
}

impl Reply {
    /// A JSON answer.
    pub(crate) fn json(status: StatusCode, v: &Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Some(("application/json", v.to_string().into_bytes())),
        }
    }

    /// An answer with another body type.
    pub(crate) fn bytes(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Some((content_type, body)),
        }
    }

    /// An empty answer.
    pub(crate) fn empty(status: StatusCode) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Add a header.
    pub(crate) fn header(mut self, name: header::HeaderName, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// One request's context: the profile, the URLs, the client.
pub(crate) struct Ctx {
    pub(crate) state: AppState,
    pub(crate) profile: ProfileRecord,
    /// `https://host/acme/<profile>`.
    pub(crate) base: String,
    /// The directory URL the client used.
    pub(crate) directory: String,
    /// The full URL of this request.
    pub(crate) url: String,
    pub(crate) client_ip: Option<String>,
}

fn authority(uri: &Uri, headers: &HeaderMap) -> String {
    uri.authority()
        .map(|a| a.to_string())
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "localhost".into())
}

impl Ctx {
    async fn new(
        state: &AppState,
        profile: &str,
        uri: &Uri,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
        default_dir: bool,
    ) -> Result<Ctx, Problem> {
        let settings = &state.pki.settings().acme;
        if !settings.serves(profile) {
            return Err(Problem::malformed(format!(
                "there is no ACME directory for profile {profile:?}"
            )));
        }
        let profile = state.pki.profile(profile).await.map_err(|e| {
            tracing::error!(error = %e, profile, "ACME profile is configured but not usable");
            Problem::new(
                ProblemType::ServerInternal,
                "this ACME directory's profile does not exist",
            )
        })?;
        let host = authority(uri, headers);
        let base = format!("https://{host}/acme/{}", profile.policy.name);
        let directory = if default_dir {
            format!("https://{host}/acme/directory")
        } else {
            format!("{base}/directory")
        };
        Ok(Ctx {
            state: state.clone(),
            profile,
            base,
            directory,
            url: format!("https://{host}{}", uri.path()),
            client_ip: peer.map(|p| p.ip().to_string()),
        })
    }

    pub(crate) fn pki(&self) -> &Pki {
        &self.state.pki
    }

    pub(crate) fn now(&self) -> i64 {
        self.state.pki.now().unix_timestamp()
    }

    /// The URL of a resource under this directory.
    pub(crate) fn link(&self, kind: &str, id: &str) -> String {
        format!("{}/{kind}/{id}", self.base)
    }

    /// The actor for audit events of an account.
    pub(crate) fn actor(&self, account_id: Option<&str>) -> Actor {
        Actor {
            name: match account_id {
                Some(id) => format!("acme:{id}"),
                None => "acme".into(),
            },
            source: self.client_ip.clone(),
        }
    }

    /// Parse and check a JWS request: content type, signature, URL and nonce. Returns the
    /// JWS and, for `kid` requests, the (valid) account.
    pub(crate) async fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(Jws, Option<AcmeAccount>), Problem> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if ct != "application/jose+json" {
            return Err(Problem::malformed(
                "requests must have Content-Type application/jose+json",
            ));
        }
        let jws = Jws::parse(body, false)?;
        if jws.header.url != self.url {
            return Err(Problem::unauthorized(format!(
                "the JWS url {:?} is not the request URL {:?}",
                jws.header.url, self.url
            )));
        }
        let (account, key) = match &jws.header.key {
            KeyRef::Jwk(k) => (None, k.clone()),
            KeyRef::Kid(kid) => {
                let acct = self.account_by_kid(kid).await?;
                let key = account_key(&acct)?;
                (Some(acct), key)
            }
        };
        jws.verify(&key)?;
        let nonce = jws
            .header
            .nonce
            .as_deref()
            .ok_or_else(|| Problem::new(ProblemType::BadNonce, "the JWS has no nonce"))?;
        self.state.nonces.redeem(self.pki(), nonce).await?;
        if let Some(a) = &account
            && a.status != "valid"
        {
            return Err(Problem::unauthorized(format!(
                "the account is {}",
                a.status
            )));
        }
        Ok((jws, account))
    }

    /// The account id in an account URL of this directory. Only the path is compared, so
    /// replicas reached under different host names accept each other's URLs.
    pub(crate) fn account_id_in<'a>(&self, url: &'a str) -> Option<&'a str> {
        let rest = url.strip_prefix("https://")?;
        let path = &rest[rest.find('/')?..];
        let id = path.strip_prefix(&format!("/acme/{}/acct/", self.profile.policy.name))?;
        (!id.is_empty() && !id.contains('/')).then_some(id)
    }

    async fn account_by_kid(&self, kid: &str) -> Result<AcmeAccount, Problem> {
        let id = self.account_id_in(kid).ok_or_else(|| {
            Problem::new(
                ProblemType::AccountDoesNotExist,
                format!("{kid:?} is not an account URL of this directory"),
            )
        })?;
        self.pki()
            .store()
            .acme_account(id)
            .await
            .map_err(internal)?
            .filter(|a| a.profile == self.profile.policy.name)
            .ok_or_else(|| {
                Problem::new(
                    ProblemType::AccountDoesNotExist,
                    format!("no account {kid:?}"),
                )
            })
    }

    /// [`Ctx::verify`] for a request that must be signed by an account (`kid`): most of them.
    pub(crate) async fn verify_kid(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(Jws, AcmeAccount), Problem> {
        let (jws, account) = self.verify(headers, body).await?;
        let account = account.ok_or_else(|| {
            Problem::malformed("this request must be signed with the account key (kid)")
        })?;
        Ok((jws, account))
    }

    async fn new_nonce_value(&self) -> Result<String, Problem> {
        self.state.nonces.issue(self.pki()).await
    }

    /// Turn a result into the response, with a fresh Replay-Nonce and the index link.
    pub(crate) async fn finish(&self, result: Result<Reply, Problem>) -> Response {
        let nonce = self.new_nonce_value().await;
        let mut resp = match result {
            Ok(r) => reply_response(r),
            Err(p) => problem_response(&p),
        };
        let h = resp.headers_mut();
        if let Ok(n) = nonce
            && let Ok(v) = HeaderValue::from_str(&n)
        {
            h.insert("replay-nonce", v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("<{}>;rel=\"index\"", self.directory)) {
            h.append(header::LINK, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

/// The account's key.
pub(crate) fn account_key(a: &AcmeAccount) -> Result<PublicJwk, Problem> {
    let v: Value = serde_json::from_str(&a.jwk).map_err(internal)?;
    PublicJwk::from_json(&v).map_err(internal)
}

fn reply_response(r: Reply) -> Response {
    let mut b = Response::builder().status(r.status);
    for (k, v) in r.headers {
        b = b.header(k, v);
    }
    let resp = match r.body {
        Some((ct, body)) => b.header(header::CONTENT_TYPE, ct).body(Body::from(body)),
        None => b.body(Body::empty()),
    };
    resp.unwrap_or_else(|e| problem_response(&internal(e)))
}

fn problem_response(p: &Problem) -> Response {
    let mut b = Response::builder()
        .status(StatusCode::from_u16(p.status()).unwrap_or(StatusCode::BAD_REQUEST))
        .header(header::CONTENT_TYPE, "application/problem+json");
    if let Some(l) = &p.location {
        b = b.header(header::LOCATION, l);
    }
    if let Some(secs) = p.retry_after() {
        b = b.header(header::RETRY_AFTER, secs.to_string());
    }
    b.body(Body::from(p.to_json().to_string()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// Build the context, or answer at once with a problem (with a nonce when possible).
async fn ctx_or_problem(
    state: &AppState,
    profile: &str,
    uri: &Uri,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    default_dir: bool,
) -> Result<Ctx, Response> {
    match Ctx::new(state, profile, uri, headers, peer, default_dir).await {
        Ok(c) => Ok(c),
        Err(p) => {
            let mut r = problem_response(&p);
            *r.status_mut() = StatusCode::NOT_FOUND;
            Err(r)
        }
    }
}

/// One ACME POST, extracted once for every handler: the directory's profile, the resource
/// id from the path (empty where the route has none), and the request itself.
pub(crate) struct AcmePost {
    state: AppState,
    profile: String,
    uri: Uri,
    peer: Peer,
    /// `{id}` of routes such as `acct/{id}` and `order/{id}`.
    pub(crate) id: String,
    /// The request headers.
    pub(crate) headers: HeaderMap,
    /// The JWS body.
    pub(crate) body: Bytes,
}

impl FromRequest<AppState> for AcmePost {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Path(mut params) =
            Path::<std::collections::HashMap<String, String>>::from_request_parts(
                &mut parts, state,
            )
            .await
            .map_err(IntoResponse::into_response)?;
        let Ok(peer) = Peer::from_request_parts(&mut parts, state).await;
        let (uri, headers) = (parts.uri.clone(), parts.headers.clone());
        let body = Bytes::from_request(axum::extract::Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(AcmePost {
            state: state.clone(),
            profile: params.remove("profile").unwrap_or_default(),
            id: params.remove("id").unwrap_or_default(),
            uri,
            peer,
            headers,
            body,
        })
    }
}

/// The part of a POST handler that is its own: it reads the request and answers.
pub(crate) type Answer =
    for<'a> fn(&'a Ctx, &'a AcmePost) -> futures::future::BoxFuture<'a, Result<Reply, Problem>>;

impl AcmePost {
    /// Build the context, run `answer`, add the common headers (nonce, index link).
    pub(crate) async fn answer(self, answer: Answer) -> Response {
        let ctx = match ctx_or_problem(
            &self.state,
            &self.profile,
            &self.uri,
            &self.headers,
            self.peer.0,
            false,
        )
        .await
        {
            Ok(c) => c,
            Err(r) => return r,
        };
        let result = answer(&ctx, &self).await;
        ctx.finish(result).await
    }
}

/// Every POST handler: build the context, run `f`, add the common headers.
pub(crate) async fn handle<F, Fut>(
    state: AppState,
    profile: String,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
    f: F,
) -> Response
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = (Ctx, Result<Reply, Problem>)>,
{
    let ctx = match ctx_or_problem(&state, &profile, &uri, &headers, peer.0, false).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (ctx, result) = f(ctx).await;
    ctx.finish(result).await
}

async fn directory_default(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
) -> Response {
    let profile = state.pki.settings().acme.default_profile.clone();
    directory_for(state, profile, uri, headers, peer, true).await
}

async fn directory(
    State(state): State<AppState>,
    Path(profile): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
) -> Response {
    directory_for(state, profile, uri, headers, peer, false).await
}

async fn directory_for(
    state: AppState,
    profile: String,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
    default_dir: bool,
) -> Response {
    let ctx = match ctx_or_problem(&state, &profile, &uri, &headers, peer.0, default_dir).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let s = &ctx.pki().settings().acme;
    let mut meta = json!({
        "externalAccountRequired": s.eab_required(&ctx.profile.policy.name),
        "profiles": { ctx.profile.policy.name.clone(): format!("certificates under the {:?} profile", ctx.profile.policy.name) },
    });
    if let Some(t) = &s.terms_of_service {
        meta["termsOfService"] = json!(t);
    }
    if let Some(w) = &s.website {
        meta["website"] = json!(w);
    }
    if !s.caa_identities.is_empty() {
        meta["caaIdentities"] = json!(s.caa_identities);
    }
    let b = &ctx.base;
    let body = json!({
        "newNonce": format!("{b}/new-nonce"),
        "newAccount": format!("{b}/new-account"),
        "newOrder": format!("{b}/new-order"),
        "revokeCert": format!("{b}/revoke-cert"),
        "keyChange": format!("{b}/key-change"),
        "renewalInfo": format!("{b}/renewal-info"),
        "meta": meta,
    });
    let mut r = reply_response(Reply::json(StatusCode::OK, &body));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=0, no-cache"),
    );
    r
}

async fn new_nonce(
    State(state): State<AppState>,
    Path(profile): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
) -> Response {
    handle(state, profile, uri, headers, peer, |ctx| async move {
        let status = if method == Method::HEAD {
            StatusCode::OK
        } else {
            StatusCode::NO_CONTENT
        };
        (ctx, Ok(Reply::empty(status)))
    })
    .await
}
