//! A local stand-in for Cloudflare's v4 API for custom certificates, written from
//! Cloudflare's API documentation (no Cloudflare server can run here):
//! - every answer is the envelope `{"success", "errors": [{"code", "message"}], "messages",
//!   "result"}` (lists add `result_info`);
//! - API tokens go in `Authorization: Bearer`; `GET /user/tokens/verify` answers
//!   `{"id", "status": "active"}` for a known token and 401 with error 1000 "Invalid API
//!   Token" otherwise; zone calls with an unknown token or one without the needed
//!   permission answer 403 with error 10000 "Authentication error";
//! - `GET /zones/{zone_id}/custom_certificates` (SSL and Certificates Read) lists them;
//!   `POST` (SSL and Certificates Edit) uploads `certificate`, `private_key`, and optionally
//!   `bundle_method` (`ubiquitous`, `optimal`, `force`), `geo_restrictions: {"label": "us" |
//!   "eu" | "highest_security"}`, `type` (`legacy_custom`, the default, or `sni_custom`);
//!   `PATCH .../{id}` takes the same fields but `type`, keeps the id of a `legacy_custom`
//!   certificate and, as documented, gives an `sni_custom` one a new id and deletes the
//!   old; `DELETE .../{id}` answers `{"id"}`;
//! - an unknown zone answers 400 with errors 7003 "Could not route to ..., perhaps your
//!   object identifier is invalid?" and 7000 "No route for that URI".
//!
//! Every request is recorded; requests that break the contract are recorded as violations.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use serde_json::{Value, json};

pub const ZONE_ID: &str = "023e105f4ecef8ad9ca31a8372d0c353";
/// A token with SSL and Certificates Edit (and Read) on the zone.
pub const EDIT_TOKEN: &str = "Sn3lZJTBX6kkg7OdcBUAxOO963GEIyGQqnFTOFYY";
/// A token with SSL and Certificates Read only.
pub const READ_TOKEN: &str = "R3adOnlyTBX6kkg7OdcBUAxOO963GEIyGQqnFTO";

/// A request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authorization: String,
    pub body: Value,
}

/// A stored custom certificate.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: String,
    pub cert_type: String,
    pub bundle_method: String,
    pub geo: Option<String>,
    /// The uploaded certificate field (leaf, then chain), PEM.
    pub certificate: String,
    pub private_key: String,
}

impl Stored {
    /// The leaf certificate, DER.
    pub fn leaf_der(&self) -> Vec<u8> {
        pem::parse_many(&self.certificate).unwrap()[0]
            .contents()
            .to_vec()
    }
}

#[derive(Debug, Default)]
pub struct Seen {
    pub requests: Vec<Request>,
    pub certificates: Vec<Stored>,
    pub violations: Vec<String>,
    next_id: u64,
}

#[derive(Clone)]
struct Fake {
    seen: Arc<Mutex<Seen>>,
}

/// The running fake (stopped on drop); the API base is its URL + `/client/v4`.
pub struct FakeCloudflare {
    served: super::Served,
    seen: Arc<Mutex<Seen>>,
}

impl FakeCloudflare {
    pub async fn start() -> FakeCloudflare {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let served = super::serve_tls(|_| {
            Router::new()
                .route("/client/v4/user/tokens/verify", get(verify))
                .route(
                    "/client/v4/zones/{zone}/custom_certificates",
                    get(list).post(create),
                )
                .route(
                    "/client/v4/zones/{zone}/custom_certificates/{id}",
                    patch(edit).delete(remove),
                )
                .with_state(Fake { seen: seen.clone() })
        })
        .await;
        FakeCloudflare { served, seen }
    }

    pub fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }

    /// A destination configuration pointing at this fake.
    pub fn config(&self, zone_id: &str) -> Value {
        json!({
            "zone_id": zone_id,
            "api_url": format!("{}/client/v4", self.served.url),
            "ca_certificate": self.served.ca_pem,
        })
    }
}

fn envelope(status: StatusCode, result: Value, errors: &[(i64, &str)]) -> Response {
    let errors: Vec<Value> = errors
        .iter()
        .map(|(c, m)| json!({"code": c, "message": m}))
        .collect();
    (
        status,
        axum::Json(json!({
            "success": errors.is_empty(), "errors": errors, "messages": [], "result": result,
        })),
    )
        .into_response()
}

fn token_of(headers: &HeaderMap) -> (String, Option<&'static str>) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let scope = match auth.strip_prefix("Bearer ") {
        Some(EDIT_TOKEN) => Some("edit"),
        Some(READ_TOKEN) => Some("read"),
        _ => None,
    };
    (auth, scope)
}

fn record(seen: &mut Seen, method: &Method, path: String, headers: &HeaderMap, body: &[u8]) {
    let (authorization, _) = token_of(headers);
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).unwrap_or_else(|_| {
            seen.violations
                .push(format!("{method} {path}: body is not JSON"));
            Value::Null
        })
    };
    if !body.is_null()
        && !headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/json"))
    {
        seen.violations
            .push(format!("{method} {path}: content-type is not JSON"));
    }
    seen.requests.push(Request {
        method: method.to_string(),
        path,
        authorization,
        body,
    });
}

/// The zone and permission checks every zone call makes; the refusal, if any.
fn zone_refusal(zone: &str, scope: Option<&str>, need_edit: bool) -> Option<Response> {
    if zone != ZONE_ID {
        let route = format!(
            "Could not route to /zones/{zone}/custom_certificates, perhaps your object identifier is invalid?"
        );
        return Some(envelope(
            StatusCode::BAD_REQUEST,
            Value::Null,
            &[(7003, &route), (7000, "No route for that URI")],
        ));
    }
    match scope {
        Some("edit") => None,
        Some("read") if !need_edit => None,
        _ => Some(envelope(
            StatusCode::FORBIDDEN,
            Value::Null,
            &[(10000, "Authentication error")],
        )),
    }
}

fn view(c: &Stored) -> Value {
    let mut hosts = Vec::new();
    let mut expires = String::new();
    if let Ok((_, cert)) = x509_parser::parse_x509_certificate(&c.leaf_der()) {
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                    hosts.push(d.to_string());
                }
            }
        }
        expires = cert.validity().not_after.to_string();
    }
    let mut v = json!({
        "id": c.id, "zone_id": ZONE_ID, "hosts": hosts, "issuer": "certkeeper",
        "signature": "ECDSAWithSHA256", "status": "active", "bundle_method": c.bundle_method,
        "expires_on": expires, "uploaded_on": "2026-01-01T00:00:00Z",
        "modified_on": "2026-01-01T00:00:00Z", "priority": 0, "type": c.cert_type,
    });
    if let Some(g) = &c.geo {
        v["geo_restrictions"] = json!({ "label": g });
    }
    v
}

async fn verify(State(f): State<Fake>, method: Method, headers: HeaderMap) -> Response {
    let mut seen = f.seen.lock().unwrap();
    record(
        &mut seen,
        &method,
        "/user/tokens/verify".into(),
        &headers,
        &[],
    );
    match token_of(&headers).1 {
        Some(_) => envelope(
            StatusCode::OK,
            json!({"id": "ed17574386854bf78a67040be0a770b0", "status": "active"}),
            &[],
        ),
        None => envelope(
            StatusCode::UNAUTHORIZED,
            Value::Null,
            &[(1000, "Invalid API Token")],
        ),
    }
}

async fn list(
    State(f): State<Fake>,
    method: Method,
    Path(zone): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut seen = f.seen.lock().unwrap();
    let path = format!("/zones/{zone}/custom_certificates");
    if let Err(r) = admit(&mut seen, &method, path, &zone, &headers, &[], false, None) {
        return *r;
    }
    let items: Vec<Value> = seen.certificates.iter().map(view).collect();
    let n = items.len();
    axum::Json(json!({
        "success": true, "errors": [], "messages": [], "result": items,
        "result_info": {"page": 1, "per_page": 20, "count": n, "total_count": n},
    }))
    .into_response()
}

/// The checks on an upload or edit body; the refusal, if any.
fn check_body(seen: &mut Seen, body: &Value, edit: bool) -> Option<Response> {
    let mut problems = Vec::new();
    let certificate = body["certificate"].as_str().unwrap_or("");
    let certs = pem::parse_many(certificate).unwrap_or_default();
    if certs.is_empty() || certs.iter().any(|c| c.tag() != "CERTIFICATE") {
        problems.push("certificate is not PEM certificates".to_string());
    }
    let key = pem::parse(body["private_key"].as_str().unwrap_or(""));
    if !key.is_ok_and(|k| k.tag().ends_with("PRIVATE KEY")) {
        problems.push("private_key is not a PEM private key".into());
    }
    if !body["bundle_method"].is_null()
        && !matches!(
            body["bundle_method"].as_str(),
            Some("ubiquitous" | "optimal" | "force")
        )
    {
        problems.push(format!("bundle_method {}", body["bundle_method"]));
    }
    if !body["geo_restrictions"].is_null()
        && !matches!(
            body["geo_restrictions"]["label"].as_str(),
            Some("us" | "eu" | "highest_security")
        )
    {
        problems.push(format!("geo_restrictions {}", body["geo_restrictions"]));
    }
    if edit && !body["type"].is_null() {
        problems.push("type is not an edit parameter".into());
    }
    if !edit
        && !body["type"].is_null()
        && !matches!(body["type"].as_str(), Some("legacy_custom" | "sni_custom"))
    {
        problems.push(format!("type {}", body["type"]));
    }
    if problems.is_empty() {
        return None;
    }
    seen.violations.extend(problems.clone());
    Some(envelope(
        StatusCode::BAD_REQUEST,
        Value::Null,
        &[(1002, &problems.join("; "))],
    ))
}

fn fill(c: &mut Stored, body: &Value) {
    c.certificate = body["certificate"].as_str().unwrap_or("").to_string();
    c.private_key = body["private_key"].as_str().unwrap_or("").to_string();
    if let Some(b) = body["bundle_method"].as_str() {
        c.bundle_method = b.to_string();
    }
    if let Some(g) = body["geo_restrictions"]["label"].as_str() {
        c.geo = Some(g.to_string());
    }
}

/// What every zone call does first: record the request, check the zone and the token's
/// permission (edit for writes), and for an upload (`Some(false)`) or edit (`Some(true)`)
/// the body. The body, or the refusal.
#[allow(clippy::too_many_arguments)]
fn admit(
    seen: &mut Seen,
    method: &Method,
    path: String,
    zone: &str,
    headers: &HeaderMap,
    body: &[u8],
    need_edit: bool,
    body_check: Option<bool>,
) -> Result<Value, Box<Response>> {
    record(seen, method, path, headers, body);
    if let Some(r) = zone_refusal(zone, token_of(headers).1, need_edit) {
        return Err(Box::new(r));
    }
    let body = seen.requests.last().unwrap().body.clone();
    if let Some(edit) = body_check
        && let Some(r) = check_body(seen, &body, edit)
    {
        return Err(Box::new(r));
    }
    Ok(body)
}

fn new_id(seen: &mut Seen) -> String {
    seen.next_id += 1;
    format!("{:032x}", 0x2a_u64 * 1_000_003 + seen.next_id)
}

async fn create(
    State(f): State<Fake>,
    method: Method,
    Path(zone): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut seen = f.seen.lock().unwrap();
    let path = format!("/zones/{zone}/custom_certificates");
    let body = match admit(
        &mut seen,
        &method,
        path,
        &zone,
        &headers,
        &body,
        true,
        Some(false),
    ) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let mut c = Stored {
        id: new_id(&mut seen),
        cert_type: body["type"].as_str().unwrap_or("legacy_custom").to_string(),
        bundle_method: "ubiquitous".into(),
        geo: None,
        certificate: String::new(),
        private_key: String::new(),
    };
    fill(&mut c, &body);
    let v = view(&c);
    seen.certificates.push(c);
    envelope(StatusCode::OK, v, &[])
}

async fn edit(
    State(f): State<Fake>,
    method: Method,
    Path((zone, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut seen = f.seen.lock().unwrap();
    let path = format!("/zones/{zone}/custom_certificates/{id}");
    let body = match admit(
        &mut seen,
        &method,
        path,
        &zone,
        &headers,
        &body,
        true,
        Some(true),
    ) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(at) = seen.certificates.iter().position(|c| c.id == id) else {
        return envelope(
            StatusCode::NOT_FOUND,
            Value::Null,
            &[(1404, "Certificate not found")],
        );
    };
    let mut c = seen.certificates[at].clone();
    fill(&mut c, &body);
    if c.cert_type == "sni_custom" {
        // Documented: a PATCH of an sni_custom certificate returns a new resource id and
        // deletes the previous one.
        c.id = new_id(&mut seen);
    }
    let v = view(&c);
    seen.certificates[at] = c;
    envelope(StatusCode::OK, v, &[])
}

async fn remove(
    State(f): State<Fake>,
    method: Method,
    Path((zone, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut seen = f.seen.lock().unwrap();
    let path = format!("/zones/{zone}/custom_certificates/{id}");
    if let Err(r) = admit(&mut seen, &method, path, &zone, &headers, &[], true, None) {
        return *r;
    }
    let before = seen.certificates.len();
    seen.certificates.retain(|c| c.id != id);
    if seen.certificates.len() == before {
        return envelope(
            StatusCode::NOT_FOUND,
            Value::Null,
            &[(1404, "Certificate not found")],
        );
    }
    envelope(StatusCode::OK, json!({ "id": id }), &[])
}
