//! The ACME (RFC 8555) front end: `/acme/directory` for the default profile and
//! `/acme/<profile>/directory` for each profile listed in `acme.profiles`.
//!
//! Only HTTP lives here: each handler finds the directory's profile, checks the content
//! type, calls one method of the [`certkeeper_acme::Engine`] (which runs the protocol over
//! the database through [`AcmeDb`] and issues through [`Pki`]) and renders its answer or
//! problem, with a fresh nonce. Challenge validations run on the jobs runner.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use certkeeper_acme::{AcmeError, Answer, Call, IssuerError, Problem, ProblemType};
use futures::future::BoxFuture;

use crate::error::Error;
use crate::jobs::Jobs;
use crate::server::AppState;
use crate::services::pki::Pki;
use crate::store::{AcmeDb, ProfileRecord};

/// The ACME engine of this server: the database as its store, the registration authority
/// as its issuer.
pub type AcmeEngine = certkeeper_acme::Engine<AcmeDb, Arc<Pki>>;

/// The engine over `pki`, with the `[acme]` settings.
pub fn engine(pki: &Arc<Pki>) -> AcmeEngine {
    let s = &pki.settings().acme;
    let config = certkeeper_acme::Config {
        nonce_lifetime_secs: s.nonce_lifetime.as_secs() as i64,
        order_lifetime_secs: s.order_lifetime.as_secs() as i64,
        authz_lifetime_secs: s.authz_lifetime.as_secs() as i64,
        terms_of_service: s.terms_of_service.clone(),
        website: s.website.clone(),
        new_orders_per_account_per_hour: s.new_orders_per_account_per_hour,
        new_accounts_per_ip_per_hour: s.new_accounts_per_ip_per_hour,
        stuck_validation_after_secs: s.stuck_validation_after().as_secs() as i64,
        max_concurrent_validations: s.max_concurrent_validations,
        max_concurrent_validations_per_account: s.max_concurrent_validations_per_account,
        max_pending_authorizations_per_account: s.max_pending_authorizations_per_account,
        validation: certkeeper_acme::ValidationConfig {
            http01_port: s.http01_port,
            tls_alpn01_port: s.tls_alpn01_port,
            dns_resolvers: s.dns_resolvers.clone(),
            timeout: s.validation_timeout,
            caa_identities: s.caa_identities.clone(),
        },
    };
    certkeeper_acme::Engine::new(pki.acme_db(), pki.clone(), pki.clock(), config)
}

/// The services' error in the engine's terms: the one place where ACME maps it. The
/// engine turns these into RFC 8555 problems (a refusal at finalize is `badCSR`, a
/// conflict at revocation `alreadyRevoked`, anything internal `serverInternal`).
impl From<Error> for IssuerError {
    fn from(e: Error) -> Self {
        match e {
            Error::Policy(v) => IssuerError::Refused(v.detail),
            Error::BadCsr(d) | Error::BadRequest(d) => IssuerError::Refused(d),
            Error::Conflict(d) => IssuerError::Conflict(d),
            Error::NotFound(d) => IssuerError::NotFound(d),
            other => IssuerError::Internal(other.to_string()),
        }
    }
}

/// Hand a challenge validation to the jobs runner.
fn submit_validation(jobs: &Jobs, engine: Arc<AcmeEngine>, v: certkeeper_acme::Validation) {
    jobs.submit("acme.validate", async move {
        match engine.validate(&v).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(challenge = %v.challenge.id, "another validation of this challenge was recorded first");
            }
            Err(e) => {
                tracing::error!(error = %e, challenge = %v.challenge.id, "recording a validation result failed");
            }
        }
    });
}

/// Validate again the challenges left `processing` by a process that died mid-validation
/// (on the jobs runner); of several replicas exactly one takes each. Returns how many this
/// pass took over.
pub(crate) async fn reclaim_stuck_validations(
    engine: &Arc<AcmeEngine>,
    jobs: &Jobs,
) -> Result<usize, AcmeError> {
    let taken = engine.reclaim_stuck_validations().await?;
    for id in &taken.ended {
        tracing::error!(challenge = %id, "a stuck challenge's authorization or account key is unusable; it is now invalid");
    }
    let n = taken.validations.len();
    for v in taken.validations {
        tracing::warn!(challenge = %v.challenge.id, "a validation was left unfinished; validating again");
        submit_validation(jobs, engine.clone(), v);
    }
    Ok(n)
}

/// End orders whose finalization was interrupted: they become invalid with a
/// `serverInternal` error. Returns how many.
pub(crate) async fn fail_interrupted_orders(engine: &AcmeEngine) -> Result<usize, AcmeError> {
    let ids = engine.fail_interrupted_orders().await?;
    for id in &ids {
        tracing::warn!(order = %id, "an order's finalization was interrupted; it is now invalid");
    }
    Ok(ids.len())
}

/// The ACME routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/acme/directory", get(directory_default))
        .route("/acme/{profile}/directory", get(directory))
        .route("/acme/{profile}/new-nonce", get(new_nonce).head(new_nonce))
        .route("/acme/{profile}/new-account", post(new_account))
        .route("/acme/{profile}/acct/{id}", post(account))
        .route("/acme/{profile}/acct/{id}/orders", post(orders))
        .route("/acme/{profile}/key-change", post(key_change))
        .route("/acme/{profile}/new-order", post(new_order))
        .route("/acme/{profile}/order/{id}", post(order))
        .route("/acme/{profile}/order/{id}/finalize", post(finalize))
        .route("/acme/{profile}/authz/{id}", post(authz))
        .route("/acme/{profile}/chall/{id}", post(challenge))
        .route("/acme/{profile}/cert/{id}", post(certificate))
        .route("/acme/{profile}/revoke-cert", post(revoke))
        .route("/acme/{profile}/renewal-info/{id}", get(renewal_info))
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

/// The problem a client gets for a failure; internal failures are logged and hidden.
fn problem_of(e: &AcmeError) -> Problem {
    if e.is_internal() {
        tracing::error!(error = %e, "ACME request failed");
    }
    e.to_problem()
}

/// One request's context: the profile, the URLs, the client.
struct Ctx {
    state: AppState,
    profile: ProfileRecord,
    /// `https://host/acme/<profile>`.
    base: String,
    /// The directory URL the client used.
    directory: String,
    /// The full URL of this request.
    url: String,
    client_ip: Option<String>,
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
        if !state.pki.settings().acme.serves(profile) {
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

    fn engine(&self) -> &AcmeEngine {
        &self.state.acme
    }

    fn call(&self) -> Call<'_> {
        Call {
            profile: &self.profile.policy,
            base: &self.base,
            url: &self.url,
            client_ip: self.client_ip.as_deref(),
            eab_required: self
                .state
                .pki
                .settings()
                .acme
                .eab_required(&self.profile.policy.name),
        }
    }

    /// Turn a result into the response, with a fresh Replay-Nonce and the index link.
    async fn finish(&self, result: Result<Answer, AcmeError>) -> Response {
        let nonce = self.engine().new_nonce().await;
        let mut resp = match result {
            Ok(a) => answer_response(a),
            Err(e) => problem_response(&problem_of(&e)),
        };
        let h = resp.headers_mut();
        match nonce {
            Ok(n) => {
                if let Ok(v) = HeaderValue::from_str(&n) {
                    h.insert("replay-nonce", v);
                }
            }
            Err(e) => {
                problem_of(&e);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&format!("<{}>;rel=\"index\"", self.directory)) {
            h.append(header::LINK, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

fn answer_response(a: Answer) -> Response {
    let mut b = Response::builder().status(a.status);
    if let Some(l) = &a.location {
        b = b.header(header::LOCATION, l);
    }
    if let Some(up) = &a.up {
        b = b.header(header::LINK, format!("<{up}>;rel=\"up\""));
    }
    if let Some(secs) = a.retry_after {
        b = b.header(header::RETRY_AFTER, secs.to_string());
    }
    let resp = match a.body {
        certkeeper_acme::Body::Json(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string())),
        certkeeper_acme::Body::PemChain(pem) => b
            .header(header::CONTENT_TYPE, "application/pem-certificate-chain")
            .body(Body::from(pem)),
        certkeeper_acme::Body::Empty => b.body(Body::empty()),
    };
    resp.unwrap_or_else(|e| {
        tracing::error!(error = %e, "building an ACME response failed");
        problem_response(&Problem::internal())
    })
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

/// Build the context, or answer at once with a 404 problem.
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
struct AcmePost {
    state: AppState,
    profile: String,
    uri: Uri,
    peer: Peer,
    /// `{id}` of routes such as `acct/{id}` and `order/{id}`.
    id: String,
    headers: HeaderMap,
    /// The JWS body.
    body: Bytes,
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

/// The engine call a POST handler makes.
type Step = for<'a> fn(
    &'a AcmeEngine,
    &'a Call<'a>,
    &'a AcmePost,
) -> BoxFuture<'a, Result<Answer, AcmeError>>;

impl AcmePost {
    /// Build the context, check the content type, run `step`, add the common headers.
    async fn answer(self, step: Step) -> Response {
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
        let ct = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let result = if ct != "application/jose+json" {
            Err(Problem::malformed("requests must have Content-Type application/jose+json").into())
        } else {
            step(ctx.engine(), &ctx.call(), &self).await
        };
        ctx.finish(result).await
    }
}

async fn new_account(post: AcmePost) -> Response {
    post.answer(|e, c, p| Box::pin(e.new_account(c, &p.body)))
        .await
}

async fn account(post: AcmePost) -> Response {
    post.answer(|e, c, p| Box::pin(e.account(c, &p.id, &p.body)))
        .await
}

async fn orders(post: AcmePost) -> Response {
    post.answer(|e, c, p| Box::pin(e.orders(c, &p.id, &p.body)))
        .await
}

async fn key_change(post: AcmePost) -> Response {
    post.answer(|e, c, p| Box::pin(e.key_change(c, &p.body)))
        .await
}

async fn new_order(post: AcmePost) -> Response {
    post.answer(|e, c, p| Box::pin(e.new_order(c, &p.body)))
        .await
}

async fn order(post: AcmePost) -> Response {
    post.answer(|e, c, p| Box::pin(e.order(c, &p.id, &p.body)))
        .await
}

async fn finalize(post: AcmePost) -> Response {
    post.answer(|e, c, p| Box::pin(e.finalize(c, &p.id, &p.body)))
        .await
}

async fn authz(post: AcmePost) -> Response {
    post.answer(|e, c, p| Box::pin(e.authz(c, &p.id, &p.body)))
        .await
}

async fn challenge(post: AcmePost) -> Response {
    post.answer(|e, c, p| {
        Box::pin(async move {
            let (answer, validation) = e.challenge(c, &p.id, &p.body).await?;
            if let Some(v) = validation {
                submit_validation(&p.state.services.jobs, p.state.acme.clone(), v);
            }
            Ok(answer)
        })
    })
    .await
}

async fn certificate(post: AcmePost) -> Response {
    post.answer(|e, c, p| Box::pin(e.certificate(c, &p.id, &p.body)))
        .await
}

async fn revoke(post: AcmePost) -> Response {
    post.answer(|e, c, p| Box::pin(e.revoke(c, &p.body))).await
}

async fn renewal_info(
    State(state): State<AppState>,
    Path((profile, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
) -> Response {
    let ctx = match ctx_or_problem(&state, &profile, &uri, &headers, peer.0, false).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let result = ctx.engine().renewal_info(&id).await;
    ctx.finish(result).await
}

async fn new_nonce(
    State(state): State<AppState>,
    Path(profile): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
) -> Response {
    let ctx = match ctx_or_problem(&state, &profile, &uri, &headers, peer.0, false).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let status = if method == Method::HEAD { 200 } else { 204 };
    ctx.finish(Ok(Answer::empty(status))).await
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
    let mut r = answer_response(ctx.engine().directory(&ctx.call()));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=0, no-cache"),
    );
    r
}
