//! A local stand-in for Microsoft Entra ID's token endpoint, the managed identity endpoint
//! and Azure Key Vault's certificate operations, written from Microsoft's REST
//! documentation (certkeeper reaches it through the official Azure SDK for Rust):
//! - `POST {authority}/{tenant}/oauth2/v2.0/token` (client credentials grant, form body
//!   `client_id`, `scope`, `grant_type=client_credentials`, and either `client_secret` or,
//!   for workload identity federation, `client_assertion_type=urn:ietf:params:oauth:
//!   client-assertion-type:jwt-bearer` with the federated token as `client_assertion`)
//!   answers `{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
//!   "access_token"}` or `{"error": "invalid_client", "error_description", ...}` with 401.
//! - The managed identity endpoint (App Service / container flavour of IMDS, plain HTTP on
//!   the host): `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=...[&client_id=]`
//!   with the `X-IDENTITY-HEADER` secret answers `{"access_token", "expires_on",
//!   "resource", "token_type"}`; 400 when the identity is not assigned.
//! - A Key Vault request without a bearer token answers 401 with a `WWW-Authenticate`
//!   challenge naming the authority and resource (the SDK's first request is such a one).
//! - `POST {vault}/certificates/{name}/import?api-version=7.4` with a bearer token and a
//!   JSON `CertificateImportParameters` body answers a `CertificateBundle` (`id`, `kid`,
//!   `sid`, `x5t`, `cer`, `attributes`, `policy`, `tags`); errors are
//!   `{"error": {"code", "message"}}`; throttling is 429 or 503 with `Retry-After`.
//! - `DELETE {vault}/certificates/{name}?api-version=7.4` answers a `DeletedCertificateBundle`.
//! - `GET {vault}/certificates/{name}/?api-version=7.4` (an empty version: the newest) answers the newest version's
//!   `CertificateBundle`, 404 `CertificateNotFound`, or 403 `Forbidden` for an identity
//!   without `certificates/get`.
//!
//! Every request is recorded so tests can assert exactly what was sent; requests that break
//! the contract are answered with the documented error and recorded as violations.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine;
use serde_json::{Value, json};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
pub const CLIENT_SECRET: &str = "s3cret~value";
/// The Kubernetes service account token the workload identity tests project.
pub const FEDERATED_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6Y2VydGtlZXBlcjpjZXJ0a2VlcGVyIn0.c2ln";
/// The user-assigned managed identity the managed identity endpoint knows.
pub const MANAGED_CLIENT_ID: &str = "0b9d2ea4-5a4f-4c43-9a3b-2f6b4e1f7c11";
/// The secret the managed identity endpoint expects in `X-IDENTITY-HEADER`.
pub const IDENTITY_HEADER: &str = "identity-header-secret";

/// What an import request carried.
#[derive(Debug, Clone)]
pub struct Import {
    pub name: String,
    pub query: BTreeMap<String, String>,
    pub authorization: String,
    pub content_type: String,
    pub body: Value,
    /// The version id given out (None when the request was refused).
    pub version: Option<String>,
    /// The leaf certificate of the bundle, DER.
    pub certificate_der: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Seen {
    pub token_requests: Vec<BTreeMap<String, String>>,
    pub tokens: Vec<String>,
    /// Queries of managed identity token requests.
    pub identity_requests: Vec<BTreeMap<String, String>>,
    /// Key Vault requests without a bearer token (answered with the challenge).
    pub challenges: u32,
    pub imports: Vec<Import>,
    pub deletes: Vec<String>,
    /// Names read with `GET`.
    pub gets: Vec<String>,
    /// Answer reads with 403, as a vault does to an identity without `certificates/get`.
    pub forbid_gets: bool,
    pub violations: Vec<String>,
    /// Answer this many coming imports with 503 and `Retry-After: 30`.
    pub fail_imports: u32,
}

#[derive(Clone)]
struct Fake {
    base: String,
    seen: Arc<Mutex<Seen>>,
}

/// The running fake (stopped on drop); both the authority and the vault live at `url`.
pub struct FakeAzure {
    pub url: String,
    pub ca_pem: String,
    pub seen: Arc<Mutex<Seen>>,
    _served: super::Served,
}

impl FakeAzure {
    pub async fn start() -> FakeAzure {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let served = super::serve_tls(|url| {
            Router::new()
                .route("/{tenant}/oauth2/v2.0/token", post(token))
                .route("/certificates/{name}/import", post(import))
                .route("/certificates/{name}", delete(remove).get(get_one))
                // `GET {vault}/certificates/{name}/{version}` with an empty version is the
                // newest version (the SDK's form of the read).
                .route("/certificates/{name}/", get(get_one))
                .with_state(Fake {
                    base: url.to_string(),
                    seen: seen.clone(),
                })
        })
        .await;
        FakeAzure {
            url: served.url.clone(),
            ca_pem: served.ca_pem.clone(),
            seen,
            _served: served,
        }
    }

    pub fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }

    /// The destination configuration pointing at this fake.
    pub fn config(&self, certificate_name: &str) -> Value {
        json!({
            "vault_url": self.url,
            "certificate_name": certificate_name,
            "tenant_id": TENANT,
            "client_id": CLIENT_ID,
            "authority": self.url,
            "tags": {"owner": "certkeeper-tests"},
            "ca_certificate": self.ca_pem,
            "verify_challenge_resource": false,
        })
    }

    /// A configuration for workload identity federation with the token in `token_file`.
    pub fn workload_config(&self, certificate_name: &str, token_file: &str) -> Value {
        let mut cfg = self.config(certificate_name);
        cfg["credential"] = json!("workload_identity");
        cfg["federated_token_file"] = json!(token_file);
        cfg
    }

    /// A configuration for the user-assigned managed identity `client_id`.
    pub fn managed_config(&self, certificate_name: &str, client_id: &str) -> Value {
        json!({
            "vault_url": self.url,
            "certificate_name": certificate_name,
            "credential": "managed_identity",
            "client_id": client_id,
            "tags": {"owner": "certkeeper-tests"},
            "ca_certificate": self.ca_pem,
            "verify_challenge_resource": false,
        })
    }

    /// Serve the managed identity endpoint over plain HTTP on the loopback (as App Service
    /// and the AKS identity sidecar do); its URL is `IDENTITY_ENDPOINT`.
    pub async fn start_identity_endpoint(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://127.0.0.1:{}/msi/token",
            listener.local_addr().unwrap().port()
        );
        let app = Router::new()
            .route("/msi/token", get(managed_identity))
            .with_state(Fake {
                base: self.url.clone(),
                seen: self.seen.clone(),
            });
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        url
    }
}

fn vault_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        json!({"error": {"code": code, "message": message}}).to_string(),
    )
        .into_response()
}

async fn token(
    State(f): State<Fake>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let mut seen = f.seen.lock().unwrap();
    seen.token_requests.push(form.clone());
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut problems = Vec::new();
    if !ct.starts_with("application/x-www-form-urlencoded") {
        problems.push(format!("token content-type {ct:?}"));
    }
    if tenant != TENANT {
        problems.push(format!("tenant {tenant}"));
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        problems.push("grant_type".into());
    }
    if form.get("scope").map(String::as_str) != Some("https://vault.azure.net/.default") {
        problems.push(format!("scope {:?}", form.get("scope")));
    }
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        problems.push("client_id".into());
    }
    if !problems.is_empty() {
        seen.violations.extend(problems.clone());
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "error": "invalid_request",
                "error_description": format!("AADSTS900144: {}", problems.join(", ")),
                "error_codes": [900144],
            })),
        )
            .into_response();
    }
    let assertion_type = form.get("client_assertion_type").map(String::as_str);
    let refused = match (form.get("client_secret"), assertion_type) {
        (Some(secret), None) => (secret != CLIENT_SECRET)
            .then_some(("AADSTS7000215: Invalid client secret provided.", 7000215)),
        (None, Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")) => {
            (form.get("client_assertion").map(String::as_str) != Some(FEDERATED_TOKEN)).then_some((
                "AADSTS70021: No matching federated identity record found for presented assertion.",
                70021,
            ))
        }
        other => {
            seen.violations
                .push(format!("token request credential {other:?}"));
            Some((
                "AADSTS7000216: client_assertion or client_secret is required.",
                7000216,
            ))
        }
    };
    if let Some((description, code)) = refused {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({
                "error": "invalid_client",
                "error_description": description,
                "error_codes": [code],
            })),
        )
            .into_response();
    }
    let tok = format!("eyJ0eXAiOiJKV1QifQ.token-{}", seen.token_requests.len());
    seen.tokens.push(tok.clone());
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": tok,
    }))
    .into_response()
}

/// The managed identity endpoint (App Service flavour, API version 2019-08-01).
async fn managed_identity(
    State(f): State<Fake>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut seen = f.seen.lock().unwrap();
    seen.identity_requests.push(query.clone());
    let secret = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    if secret != Some(IDENTITY_HEADER) {
        seen.violations
            .push("managed identity request without X-IDENTITY-HEADER".into());
        return (StatusCode::UNAUTHORIZED, "missing X-IDENTITY-HEADER").into_response();
    }
    if query.get("api-version").map(String::as_str) != Some("2019-08-01")
        || query.get("resource").map(String::as_str) != Some("https://vault.azure.net")
    {
        seen.violations
            .push(format!("managed identity query {query:?}"));
        return (StatusCode::BAD_REQUEST, "bad request").into_response();
    }
    if query.get("client_id").map(String::as_str) != Some(MANAGED_CLIENT_ID) {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "statusCode": 400,
                "message": "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.",
            })),
        )
            .into_response();
    }
    let tok = format!(
        "eyJ0eXAiOiJKV1QifQ.managed-{}",
        seen.identity_requests.len()
    );
    seen.tokens.push(tok.clone());
    let expires_on = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    axum::Json(json!({
        "access_token": tok,
        "expires_on": expires_on.to_string(),
        "resource": "https://vault.azure.net",
        "token_type": "Bearer",
        "client_id": MANAGED_CLIENT_ID,
    }))
    .into_response()
}

fn bearer_ok(seen: &Seen, headers: &HeaderMap) -> (String, bool) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let ok = auth
        .strip_prefix("Bearer ")
        .is_some_and(|t| seen.tokens.iter().any(|k| k == t));
    (auth, ok)
}

fn unauthorized(base: &str) -> Response {
    let mut r = vault_error(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "AKV10000: Request is missing a Bearer or PoP token.",
    );
    r.headers_mut().insert(
        "www-authenticate",
        format!("Bearer authorization=\"{base}/{TENANT}\", resource=\"https://vault.azure.net\"")
            .parse()
            .unwrap(),
    );
    r
}

async fn import(
    State(f): State<Fake>,
    Path(name): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut seen = f.seen.lock().unwrap();
    if !headers.contains_key("authorization") {
        seen.challenges += 1;
        return unauthorized(&f.base);
    }
    let (authorization, auth_ok) = bearer_ok(&seen, &headers);
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut rec = Import {
        name: name.clone(),
        query: query.clone(),
        authorization,
        content_type: content_type.clone(),
        body: parsed.clone(),
        version: None,
        certificate_der: Vec::new(),
    };
    if query.get("api-version").map(String::as_str) != Some("7.4") {
        seen.violations
            .push(format!("api-version {:?}", query.get("api-version")));
        seen.imports.push(rec);
        return vault_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The specified version is not supported.",
        );
    }
    if !auth_ok {
        seen.violations
            .push("import without a valid bearer token".into());
        seen.imports.push(rec);
        return unauthorized(&f.base);
    }
    if !content_type.starts_with("application/json") {
        seen.violations
            .push(format!("import content-type {content_type:?}"));
    }
    let value = parsed["value"].as_str().unwrap_or("");
    let blocks = pem::parse_many(value).unwrap_or_default();
    let leaf = blocks.iter().find(|b| b.tag() == "CERTIFICATE");
    let has_pkcs8 = blocks.iter().any(|b| b.tag() == "PRIVATE KEY");
    let pem_type = parsed["policy"]["secret_props"]["contentType"].as_str();
    if leaf.is_none() || !has_pkcs8 || pem_type != Some("application/x-pem-file") {
        seen.violations.push(format!(
            "import body: pkcs8={has_pkcs8} contentType={pem_type:?}"
        ));
        seen.imports.push(rec);
        return vault_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The specified PEM X.509 certificate content is in an unexpected format.",
        );
    }
    if seen.fail_imports > 0 {
        seen.fail_imports -= 1;
        seen.imports.push(rec);
        let mut r = vault_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is temporarily unavailable.",
        );
        r.headers_mut().insert("retry-after", "30".parse().unwrap());
        return r;
    }
    let der = leaf.map(|l| l.contents().to_vec()).unwrap_or_default();
    let version = format!("{:032x}", seen.imports.len() as u128 * 7919 + 0xabc);
    rec.version = Some(version.clone());
    rec.certificate_der = der.clone();
    seen.imports.push(rec);
    let b64 = base64::engine::general_purpose::STANDARD;
    let x5t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        &der,
    ));
    let base = &f.base;
    axum::Json(json!({
        "id": format!("{base}/certificates/{name}/{version}"),
        "kid": format!("{base}/keys/{name}/{version}"),
        "sid": format!("{base}/secrets/{name}/{version}"),
        "x5t": x5t,
        "cer": b64.encode(&der),
        "attributes": {
            "enabled": true, "nbf": 1_700_000_000, "exp": 1_900_000_000,
            "created": 1_700_000_000, "updated": 1_700_000_000,
            "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90,
        },
        "policy": {
            "id": format!("{base}/certificates/{name}/policy"),
            "secret_props": {"contentType": "application/x-pem-file"},
            "issuer": {"name": "Unknown"},
        },
        "tags": parsed["tags"],
    }))
    .into_response()
}

/// The bearer token and api-version checks of a read or delete; the refusal, if any.
fn admit(
    f: &Fake,
    seen: &mut Seen,
    what: &str,
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Option<Response> {
    let (_, ok) = bearer_ok(seen, headers);
    if !headers.contains_key("authorization") {
        seen.challenges += 1;
    }
    if !ok {
        return Some(unauthorized(&f.base));
    }
    if query.get("api-version").map(String::as_str) != Some("7.4") {
        seen.violations.push(format!("{what} api-version"));
    }
    None
}

async fn remove(
    State(f): State<Fake>,
    Path(name): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut seen = f.seen.lock().unwrap();
    if let Some(r) = admit(&f, &mut seen, "delete", &query, &headers) {
        return r;
    }
    seen.deletes.push(name.clone());
    let base = &f.base;
    axum::Json(json!({
        "id": format!("{base}/certificates/{name}"),
        "recoveryId": format!("{base}/deletedcertificates/{name}"),
        "deletedDate": 1_700_000_100,
        "scheduledPurgeDate": 1_707_776_100,
    }))
    .into_response()
}

async fn get_one(
    State(f): State<Fake>,
    Path(name): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut seen = f.seen.lock().unwrap();
    if let Some(r) = admit(&f, &mut seen, "get", &query, &headers) {
        return r;
    }
    seen.gets.push(name.clone());
    if seen.forbid_gets {
        return vault_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "The user, group or application 'appid={CLIENT_ID}' does not have certificates \
                 get permission on key vault. For help resolving this issue, please see \
                 https://go.microsoft.com/fwlink/?linkid=2125287"
            ),
        );
    }
    let deleted = seen.deletes.contains(&name);
    let newest = seen
        .imports
        .iter()
        .rev()
        .find(|i| i.name == name && i.version.is_some());
    match newest {
        Some(i) if !deleted => {
            let base = &f.base;
            let version = i.version.clone().unwrap_or_default();
            axum::Json(json!({
                "id": format!("{base}/certificates/{name}/{version}"),
                "cer": base64::engine::general_purpose::STANDARD.encode(&i.certificate_der),
                "attributes": {"enabled": true},
            }))
            .into_response()
        }
        _ => vault_error(
            StatusCode::NOT_FOUND,
            "CertificateNotFound",
            &format!("A certificate with (name/id) {name} was not found in this key vault."),
        ),
    }
}
