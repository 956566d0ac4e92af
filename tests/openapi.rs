//! `/api/v1/openapi.json` against the running server. The first test probes every documented
//! operation with placeholder ids: it must reach a real route (not the fallback, not a 405)
//! with a documented answer, a documented path must refuse every other method with 405, the
//! paths outside `/api/v1` must be the public endpoints, every `$ref` must resolve, and
//! `security` must match what the server enforces. The second runs the happy paths with real
//! objects and checks every JSON answer against its schema, strictly. The last reads the
//! source of the API and of the public endpoints: their routes are mounted only from their
//! descriptions, so a route without one cannot be added.

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{Value, json};

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Stands in for every path parameter: an id, name or file that does not exist.
const PLACEHOLDER: &str = "does-not-exist";

/// One documented operation.
#[derive(Debug)]
struct Op {
    path: String,
    method: String,
    op: Value,
    /// `servers` of the path item, if any.
    servers: Option<Value>,
}

/// A response as seen by the client.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn detail(&self) -> String {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Whether the request fell through to a fallback instead of reaching a route.
    fn is_fallback(&self) -> bool {
        let d = self.detail();
        self.status == 404 && (d.starts_with("no API endpoint at") || d.starts_with("nothing at"))
    }
}

fn operations(doc: &Value) -> Vec<Op> {
    let paths = doc["paths"].as_object().expect("paths is an object");
    let mut ops = Vec::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for m in METHODS {
            if let Some(op) = item.get(*m) {
                ops.push(Op {
                    path: path.clone(),
                    method: m.to_string(),
                    op: op.clone(),
                    servers: item.get("servers").cloned(),
                });
            }
        }
    }
    ops
}

/// Every `$ref` in `v`, with where it was found.
fn collect_refs(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == "$ref" {
                    if let Some(r) = child.as_str() {
                        out.push((at.to_string(), r.to_string()));
                    }
                } else {
                    collect_refs(child, &format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                collect_refs(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Follow a local `$ref` chain to the object it names.
fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..16 {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let pointer = r.strip_prefix('#').expect("local $ref");
                v = doc
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("$ref {r} resolves"));
            }
            None => return v,
        }
    }
    panic!("$ref chain too long");
}

fn template_params(path: &str) -> BTreeSet<String> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(str::to_string)
        .collect()
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                PLACEHOLDER
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A request body.
enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

/// A probe: `{}` for POST and PUT, nothing otherwise.
async fn call(s: &TestServer, method: &str, url: &str, token: Option<&str>) -> Answer {
    let body = if matches!(method, "post" | "put") {
        Body::Json(json!({}))
    } else {
        Body::None
    };
    send(s, method, url, token, body).await
}

async fn send(s: &TestServer, method: &str, url: &str, token: Option<&str>, body: Body) -> Answer {
    let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let mut req = s.client.request(m, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req = match body {
        Body::None => req,
        Body::Json(v) => req.json(&v),
        Body::Raw(ct, bytes) => req.header("content-type", ct).body(bytes),
    };
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_string());
    let body = resp.bytes().await.unwrap().to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

/// Check that `a` is a documented response of `op`, with a documented content type.
fn check_documented(doc: &Value, o: &Op, what: &str, a: &Answer) {
    let responses = &o.op["responses"];
    let key = a.status.to_string();
    let Some(resp) = responses.get(&key).or_else(|| responses.get("default")) else {
        panic!(
            "{what}: status {} is not documented (documented: {:?}); body: {}",
            a.status,
            responses.as_object().map(|m| m.keys().collect::<Vec<_>>()),
            String::from_utf8_lossy(&a.body)
        );
    };
    let resp = resolve(doc, resp);
    match resp.get("content").and_then(Value::as_object) {
        Some(content) => {
            let ct = a.content_type.clone().unwrap_or_default();
            assert!(
                content.contains_key(&ct),
                "{what}: status {} came as {ct:?}, documented as {:?}",
                a.status,
                content.keys().collect::<Vec<_>>()
            );
            if ct.ends_with("json")
                && let Some(schema) = content[&ct].get("schema")
            {
                let body: Value = serde_json::from_slice(&a.body)
                    .unwrap_or_else(|e| panic!("{what}: {ct} body is not JSON: {e}"));
                let mut errors = Vec::new();
                validate(doc, schema, &body, "$", true, &mut errors);
                assert!(
                    errors.is_empty(),
                    "{what}: status {} body does not match its schema: {errors:#?}\n{body:#}",
                    a.status
                );
            }
        }
        None => assert!(
            a.body.is_empty(),
            "{what}: status {} is documented without content but has a body",
            a.status
        ),
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        other => panic!("unknown schema type {other}"),
    }
}

/// Check `v` against the subset of JSON Schema the document uses (`$ref`, `type`, `enum`,
/// `anyOf`, `oneOf` (checked as `anyOf`: some alternatives overlap on `null`), `required`, `properties`, `additionalProperties: false`, `items`, `minimum`,
/// `maximum`, `minLength`, `maxLength`; formats and patterns are not checked). With
/// `strict`, objects may only have documented properties: answers must not carry fields
/// the document does not describe.
fn validate(
    doc: &Value,
    schema: &Value,
    v: &Value,
    at: &str,
    strict: bool,
    errors: &mut Vec<String>,
) {
    let schema = resolve(doc, schema);
    for keyword in ["anyOf", "oneOf"] {
        if let Some(any) = schema.get(keyword).and_then(Value::as_array) {
            let ok = any.iter().any(|sub| {
                let mut e = Vec::new();
                validate(doc, sub, v, at, strict, &mut e);
                e.is_empty()
            });
            if !ok {
                errors.push(format!("{at}: {v} matches no alternative of {keyword}"));
            }
        }
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => panic!("bad type {other}"),
        };
        if !types.iter().any(|t| type_matches(t, v)) {
            errors.push(format!("{at}: {v} is not of type {t}"));
            return;
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errors.push(format!("{at}: {v} is not one of {e:?}"));
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            errors.push(format!("{at}: {n} < minimum {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            errors.push(format!("{at}: {n} > maximum {max}"));
        }
    }
    if let Some(text) = v.as_str() {
        let len = text.chars().count() as u64;
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
        {
            errors.push(format!("{at}: shorter than minLength"));
        }
        if schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len > m)
        {
            errors.push(format!("{at}: longer than maxLength"));
        }
    }
    if let Value::Object(m) = v {
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap();
            if !m.contains_key(r) {
                errors.push(format!("{at}: required property {r} is missing"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        let closed = schema.get("additionalProperties") == Some(&Value::Bool(false))
            || (strict && props.is_some());
        for (k, child) in m {
            match props.and_then(|p| p.get(k)) {
                Some(sub) => validate(doc, sub, child, &format!("{at}.{k}"), strict, errors),
                None if closed => errors.push(format!("{at}: property {k} is not documented")),
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(sub)) = (v, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            validate(doc, sub, item, &format!("{at}[{i}]"), strict, errors);
        }
    }
}

async fn fetch_document(s: &TestServer) -> Value {
    let a = call(s, "get", &s.url("/api/v1/openapi.json"), None).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.content_type.as_deref(), Some("application/json"));
    serde_json::from_slice(&a.body).expect("the document is JSON")
}

#[tokio::test]
async fn openapi_document_matches_the_server() {
    let s = TestServer::start(Db::Sqlite).await;

    // Served without authentication, as JSON.
    let doc = fetch_document(&s).await;
    let version = doc["openapi"].as_str().expect("openapi is a string");
    assert!(version.starts_with("3.1"), "openapi {version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer",
        "a bearer security scheme"
    );
    assert_eq!(doc["security"], json!([{"bearerAuth": []}]));

    // Every $ref resolves.
    let mut refs = Vec::new();
    collect_refs(&doc, "#", &mut refs);
    assert!(!refs.is_empty());
    for (at, r) in &refs {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: $ref {r} is not local"));
        assert!(
            doc.pointer(pointer).is_some(),
            "{at}: $ref {r} does not resolve"
        );
    }

    let ops = operations(&doc);

    // The document describes the public endpoints the source mounts, and nothing else
    // outside `/api/v1`.
    let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for o in &ops {
        documented
            .entry(o.path.clone())
            .or_default()
            .insert(o.method.clone());
    }
    // Outside `/api/v1` the document describes only the public endpoints (mounted from
    // their descriptions, like the API: see
    // `api_routes_are_mounted_only_from_their_descriptions`), served on both listeners.
    for o in &ops {
        if o.path.starts_with("/api/v1/") {
            continue;
        }
        assert_eq!(o.op["tags"], json!(["Public"]), "{} {}", o.method, o.path);
        assert_eq!(o.op["security"], json!([]), "{} {}", o.method, o.path);
        let servers = o.servers.as_ref().and_then(Value::as_array);
        assert_eq!(
            servers.map(Vec::len),
            Some(2),
            "{} {} is served on both listeners",
            o.method,
            o.path
        );
    }
    // The public endpoints are described; axum's catch-all `{*request}` is a plain
    // parameter in the document.
    for (path, method) in [
        ("/ca/{file}", "get"),
        ("/crl/{file}", "get"),
        ("/ocsp", "post"),
        ("/ocsp/{request}", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            documented.get(path).is_some_and(|m| m.contains(method)),
            "{method} {path} is documented"
        );
    }
    // The API itself is described: every module's operations and this document.
    for (path, method) in [
        ("/api/v1/cas", "post"),
        ("/api/v1/certificates/{id}/revoke", "post"),
        ("/api/v1/acme/eab-keys", "get"),
        ("/api/v1/alerts/tags/{fingerprint}", "put"),
        ("/api/v1/openapi.json", "get"),
    ] {
        assert!(
            documented.get(path).is_some_and(|m| m.contains(method)),
            "{method} {path} is documented"
        );
    }

    // A documented path answers every method the document does not list with 405: a
    // method mounted on it without a description would answer something else.
    for (path, methods) in &documented {
        let url = s.url(&concrete(path));
        for m in ["get", "put", "post", "delete", "patch"] {
            if methods.contains(m) {
                continue;
            }
            let a = call(&s, m, &url, Some(&s.token)).await;
            assert_eq!(
                a.status,
                405,
                "{} {path} is not documented, yet it answered {}: {}",
                m.to_uppercase(),
                a.status,
                String::from_utf8_lossy(&a.body)
            );
        }
    }

    // Every operation is well-formed.
    let mut ids = BTreeSet::new();
    for o in &ops {
        let what = format!("{} {}", o.method.to_uppercase(), o.path);
        let id = o.op["operationId"].as_str().unwrap_or("");
        assert!(!id.is_empty(), "{what}: operationId");
        assert!(
            ids.insert(id.to_string()),
            "{what}: duplicate operationId {id}"
        );
        assert!(
            o.op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{what}: summary"
        );
        assert!(
            o.op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{what}: responses"
        );
        let item = &doc["paths"][&o.path];
        let declared: BTreeSet<String> = [&item["parameters"], &o.op["parameters"]]
            .into_iter()
            .filter_map(Value::as_array)
            .flatten()
            .map(|p| resolve(&doc, p))
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(p["required"], true, "{what}: path parameters are required");
                p["name"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(
            declared,
            template_params(&o.path),
            "{what}: path parameters"
        );
    }

    // The agent endpoints take agent tokens only: they are probed with one.
    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({"name": "probe", "profile": "default", "dns_names": ["probe.example.com"], "validity_days": 5})),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    let (st, agent) = s
        .api(
            Method::POST,
            "/tokens",
            Some(json!({"name": "probe-agent", "role": "agent", "managed": ["probe"]})),
        )
        .await;
    assert_eq!(st, 201, "{agent}");
    let agent = agent["token"].as_str().unwrap().to_string();

    // Every documented operation reaches a real route, with a documented answer, and
    // authentication is enforced exactly where the document says.
    let public_url = s.http_url("");
    for o in &ops {
        let what = format!("{} {}", o.method.to_uppercase(), o.path);
        let path = concrete(&o.path);
        let public = !o.path.starts_with("/api/v1/");
        let token = if o.path.starts_with("/api/v1/agent/") {
            &agent
        } else {
            &s.token
        };

        let a = call(&s, &o.method, &s.url(&path), Some(token)).await;
        assert!(
            !a.is_fallback(),
            "{what}: answered by the fallback: {}",
            a.detail()
        );
        assert_ne!(a.status, 405, "{what}: 405");
        check_documented(&doc, o, &what, &a);

        // `{}` must be refused exactly when the body schema has required fields.
        let body_schema =
            o.op.get("requestBody")
                .map(|b| resolve(&doc, b))
                .and_then(|b| {
                    b["content"]
                        .get("application/json")
                        .map(|c| resolve(&doc, &c["schema"]))
                });
        if let Some(schema) = body_schema {
            let required = schema["required"].as_array().is_some_and(|r| !r.is_empty());
            assert_eq!(
                a.status == 400,
                required,
                "{what}: an empty object was answered {} ({}), yet the body schema {} required fields",
                a.status,
                a.detail(),
                if required { "has" } else { "has no" }
            );
        }

        let open = o.op.get("security").or_else(|| doc.get("security")) == Some(&json!([]));
        let anon = call(&s, &o.method, &s.url(&path), None).await;
        if open {
            assert_ne!(
                anon.status, 401,
                "{what}: documented as open but needs a token"
            );
            assert!(!anon.is_fallback(), "{what}: answered by the fallback");
            check_documented(&doc, o, &format!("{what} (no token)"), &anon);
        } else {
            assert_eq!(
                anon.status, 401,
                "{what}: documented as needing a token but answered {} without one",
                anon.status
            );
            check_documented(&doc, o, &format!("{what} (no token)"), &anon);
        }
        assert_eq!(
            open,
            public || o.path == "/api/v1/openapi.json",
            "{what}: security"
        );

        // The public endpoints are also on the plain-HTTP listener; the API is not.
        if public {
            let servers = o.servers.as_ref().unwrap_or(&doc["servers"]);
            let urls: Vec<&str> = servers
                .as_array()
                .expect("servers is an array")
                .iter()
                .filter_map(|s| s["url"].as_str())
                .collect();
            assert!(
                urls.contains(&public_url.as_str()) && urls.contains(&"/"),
                "{what}: servers {urls:?} name both listeners"
            );
            let plain = call(&s, &o.method, &s.http_url(&path), None).await;
            assert!(
                !plain.is_fallback(),
                "{what} on plain HTTP: answered by the fallback"
            );
            assert_ne!(plain.status, 405, "{what} on plain HTTP: 405");
            check_documented(&doc, o, &format!("{what} (plain HTTP)"), &plain);
        } else {
            let plain = call(&s, &o.method, &s.http_url(&path), Some(&s.token)).await;
            assert!(
                plain.is_fallback(),
                "{what}: the plain-HTTP listener must not serve the API (got {})",
                plain.status
            );
        }
    }
}

/// The operation `method template` of the document.
fn op_of(doc: &Value, method: &str, template: &str) -> Op {
    let item = doc["paths"]
        .get(template)
        .unwrap_or_else(|| panic!("{template} is documented"));
    let op = item
        .get(method)
        .unwrap_or_else(|| panic!("{method} {template} is documented"))
        .clone();
    Op {
        path: template.to_string(),
        method: method.to_string(),
        op,
        servers: item.get("servers").cloned(),
    }
}

/// Runs requests and checks them against the document.
struct Ctx<'a> {
    s: &'a TestServer,
    doc: &'a Value,
}

impl Ctx<'_> {
    /// Send `method path` (an instance of the documented `template`) to the HTTPS listener
    /// and check: a JSON body of a request expected to succeed matches the documented
    /// request schema; the status is `expect`; the answer is documented (status, content
    /// type, and JSON body against its schema, strictly).
    async fn run(
        &self,
        method: &str,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Body,
        expect: u16,
    ) -> Answer {
        let o = op_of(self.doc, method, template);
        let what = format!("{} {path}", method.to_uppercase());
        if let Body::Json(b) = &body
            && (200..300).contains(&expect)
        {
            let rb = resolve(self.doc, &o.op["requestBody"]);
            let schema = rb["content"]
                .get("application/json")
                .map(|c| &c["schema"])
                .unwrap_or_else(|| panic!("{what}: a JSON request body is documented"));
            let mut errors = Vec::new();
            validate(self.doc, schema, b, "$", false, &mut errors);
            assert!(
                errors.is_empty(),
                "{what}: the request body does not match its schema: {errors:#?}"
            );
        }
        let a = send(self.s, method, &self.s.url(path), token, body).await;
        assert_eq!(
            a.status,
            expect,
            "{what}: {}",
            String::from_utf8_lossy(&a.body)
        );
        check_documented(self.doc, &o, &what, &a);
        a
    }

    /// [`Ctx::run`] with the admin token and a JSON body or none; returns the JSON answer.
    async fn json(
        &self,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Value>,
        expect: u16,
    ) -> Value {
        let body = body.map_or(Body::None, Body::Json);
        let a = self
            .run(method, template, path, Some(&self.s.token), body, expect)
            .await;
        serde_json::from_slice(&a.body).unwrap_or(Value::Null)
    }
}

fn run_openssl(args: &[&str]) {
    let (ok, out) = openssl(args);
    assert!(ok, "openssl {args:?}: {out}");
}

fn rfc3339_in_days(days: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(days))
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The happy paths (and the documented failures) of every operation with real objects:
/// every answer must be documented, and every JSON answer must match its schema exactly.
#[tokio::test]
async fn documented_schemas_match_real_answers() {
    let s = TestServer::start(Db::Sqlite).await;
    let doc = fetch_document(&s).await;
    let c = Ctx { s: &s, doc: &doc };
    let admin = Some(s.token.as_str());
    let dir = s.dir.path().to_path_buf();

    // CAs made on first start.
    let cas = c.json("get", "/api/v1/cas", "/api/v1/cas", None, 200).await;
    assert!(cas.as_array().unwrap().len() >= 2, "{cas}");
    let root = c
        .json("get", "/api/v1/cas/{id}", "/api/v1/cas/root", None, 200)
        .await;
    assert!(root["certificate"].is_string() && root["chain"].is_string());
    let crl = "/api/v1/cas/{id}/crl";
    let a = c
        .run("get", crl, "/api/v1/cas/root/crl", admin, Body::None, 200)
        .await;
    assert_eq!(a.content_type.as_deref(), Some("application/pkix-crl"));
    let a = c
        .run(
            "get",
            crl,
            "/api/v1/cas/root/crl?format=pem",
            admin,
            Body::None,
            200,
        )
        .await;
    assert_eq!(a.content_type.as_deref(), Some("application/x-pem-file"));
    c.run(
        "get",
        crl,
        "/api/v1/cas/root/crl?format=xml",
        admin,
        Body::None,
        400,
    )
    .await;
    let csr = "/api/v1/cas/{id}/csr";
    c.run("get", csr, "/api/v1/cas/root/csr", admin, Body::None, 409)
        .await;

    // An external CA, signed by an imported one.
    let ext = c
        .json(
            "post",
            "/api/v1/cas",
            "/api/v1/cas",
            Some(json!({"name": "openapi-ext", "type": "external", "common_name": "OpenAPI External CA", "organization": "Example", "country": "NL", "key_algorithm": "ecdsa-p256"})),
            201,
        )
        .await;
    assert_eq!(ext["status"], "pending");
    assert!(ext["csr"].is_string() && ext.get("certificate").is_none());
    let ext_csr = c
        .run(
            "get",
            csr,
            "/api/v1/cas/openapi-ext/csr",
            admin,
            Body::None,
            200,
        )
        .await;
    c.run(
        "get",
        crl,
        "/api/v1/cas/openapi-ext/crl",
        admin,
        Body::None,
        409,
    )
    .await;
    c.run(
        "get",
        "/crl/{file}",
        "/crl/openapi-ext.crl",
        None,
        Body::None,
        409,
    )
    .await;
    c.run(
        "get",
        "/ca/{file}",
        "/ca/openapi-ext.crt",
        None,
        Body::None,
        404,
    )
    .await;
    let imp_key = dir.join("imported.key");
    let imp_pem = dir.join("imported.pem");
    run_openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=OpenAPI Imported CA",
        "-keyout",
        p(&imp_key),
        "-out",
        p(&imp_pem),
        "-days",
        "365",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    let imported_pem = std::fs::read_to_string(&imp_pem).unwrap();
    let imported = c
        .json(
            "post",
            "/api/v1/cas/import",
            "/api/v1/cas/import",
            Some(json!({"name": "openapi-imported", "certificate": imported_pem, "private_key": std::fs::read_to_string(&imp_key).unwrap()})),
            201,
        )
        .await;
    assert_eq!(imported["kind"], "imported");
    let ext_csr_path = s.write("ext.csr", &ext_csr.body);
    let ext_cnf = s.write(
        "ext.cnf",
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
    );
    let ext_pem = dir.join("ext.pem");
    run_openssl(&[
        "x509",
        "-req",
        "-in",
        p(&ext_csr_path),
        "-CA",
        p(&imp_pem),
        "-CAkey",
        p(&imp_key),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        p(&ext_cnf),
        "-out",
        p(&ext_pem),
    ]);
    let signed = std::fs::read_to_string(&ext_pem).unwrap() + &imported_pem;
    let install = "/api/v1/cas/{id}/certificate";
    let installed = c
        .json(
            "post",
            install,
            "/api/v1/cas/openapi-ext/certificate",
            Some(json!({"certificate": signed})),
            200,
        )
        .await;
    assert_eq!(installed["status"], "active");
    assert_eq!(installed["kind"], "external");
    c.run(
        "post",
        install,
        "/api/v1/cas/openapi-ext/certificate",
        admin,
        Body::Json(json!({"certificate": signed})),
        409,
    )
    .await;
    c.run(
        "get",
        "/crl/{file}",
        "/crl/openapi-ext.crl",
        None,
        Body::None,
        200,
    )
    .await;

    // An intermediate with every field.
    let int_body = json!({
        "name": "openapi-int", "type": "intermediate", "parent": "root",
        "common_name": "OpenAPI Intermediate CA", "organization": null, "country": null,
        "key_algorithm": "ecdsa-p384", "validity_days": 365, "path_len": 0,
        "name_constraints": {"permitted_dns": ["example.com"], "excluded_dns": [], "permitted_ips": ["10.0.0.0/8"], "excluded_ips": []}
    });
    let int = c
        .json(
            "post",
            "/api/v1/cas",
            "/api/v1/cas",
            Some(int_body.clone()),
            201,
        )
        .await;
    assert_eq!(int["kind"], "intermediate");
    c.run(
        "post",
        "/api/v1/cas",
        "/api/v1/cas",
        admin,
        Body::Json(int_body),
        409,
    )
    .await;
    c.run(
        "post",
        "/api/v1/cas",
        "/api/v1/cas",
        admin,
        Body::Json(json!({"name": "openapi-orphan", "type": "intermediate", "parent": "no-such-ca", "common_name": "x"})),
        404,
    )
    .await;

    // Profiles.
    c.json("get", "/api/v1/profiles", "/api/v1/profiles", None, 200)
        .await;
    let one = "/api/v1/profiles/{name}";
    c.json("get", one, "/api/v1/profiles/default", None, 200)
        .await;
    let created = c
        .json(
            "post",
            "/api/v1/profiles",
            "/api/v1/profiles",
            Some(json!({"ca": "openapi-int", "name": "openapi", "allowed_dns_names": [".example.com"], "allowed_ip_ranges": ["10.0.0.0/8"], "max_validity_days": 30})),
            201,
        )
        .await;
    let props = &resolve(&doc, &doc["components"]["schemas"]["Profile"])["properties"];
    for field in [
        "key_usages",
        "ext_key_usages",
        "default_validity_days",
        "allowed_key_types",
        "allow_wildcards",
        "copy_subject",
        "max_names",
    ] {
        assert_eq!(
            created[field], props[field]["default"],
            "default of {field}"
        );
    }
    let bad = c
        .run(
            "post",
            "/api/v1/profiles",
            "/api/v1/profiles",
            admin,
            Body::Json(json!({"ca": "openapi-int", "name": "openapi-bad", "max_validity_days": 0})),
            400,
        )
        .await;
    let bad: Value = serde_json::from_slice(&bad.body).unwrap();
    assert_eq!(bad["type"], "urn:certkeeper:problem:bad-request");
    assert!(
        bad["detail"]
            .as_str()
            .unwrap()
            .contains("max_validity_days"),
        "{bad}"
    );
    c.run(
        "post",
        "/api/v1/profiles",
        "/api/v1/profiles",
        admin,
        Body::Json(json!({"ca": "openapi-int", "name": "openapi"})),
        409,
    )
    .await;
    let updated = c
        .json(
            "put",
            one,
            "/api/v1/profiles/openapi",
            Some(json!({"allowed_dns_names": ["*"], "allowed_ip_ranges": ["10.0.0.0/8"], "max_validity_days": 60})),
            200,
        )
        .await;
    assert_eq!(updated["ca"], int["id"]);
    c.run(
        "put",
        one,
        "/api/v1/profiles/openapi",
        admin,
        Body::Json(json!({"name": "renamed"})),
        400,
    )
    .await;

    // Certificates.
    let generate = "/api/v1/certificates/generate";
    let generated = c
        .json(
            "post",
            generate,
            generate,
            Some(json!({"profile": "openapi", "dns_names": ["a.example.com"], "ip_addresses": ["10.1.2.3"], "common_name": "a.example.com", "key_algorithm": "ecdsa-p256", "validity_days": 10, "format": "pem", "password": null, "managed": true})),
            201,
        )
        .await;
    assert!(generated["private_key"].is_string() && generated.get("pkcs12").is_none());
    let p12 = c
        .json(
            "post",
            generate,
            generate,
            Some(json!({"profile": "openapi", "dns_names": ["b.example.com"], "format": "pkcs12", "password": "secret"})),
            201,
        )
        .await;
    assert!(p12["pkcs12"].is_string() && p12.get("private_key").is_none());
    let refused = c
        .run(
            "post",
            generate,
            generate,
            admin,
            Body::Json(json!({"profile": "openapi", "dns_names": ["evil.org"]})),
            403,
        )
        .await;
    let refused: Value = serde_json::from_slice(&refused.body).unwrap();
    assert_eq!(refused["rule"], "ca_name_constraints");
    c.run(
        "post",
        generate,
        generate,
        admin,
        Body::Json(
            json!({"profile": "openapi", "dns_names": ["c.example.com"], "format": "pkcs12"}),
        ),
        400,
    )
    .await;
    let (_, leaf_csr) = openssl_csr(
        &dir,
        "leaf",
        "/CN=d.example.com",
        "DNS:d.example.com",
        EC_P256,
    );
    let issued = c
        .json(
            "post",
            "/api/v1/certificates",
            "/api/v1/certificates",
            Some(json!({"profile": "openapi", "csr": leaf_csr, "validity_days": null, "not_after": rfc3339_in_days(5)})),
            201,
        )
        .await;
    assert!(issued.get("private_key").is_none());
    c.run(
        "post",
        "/api/v1/certificates",
        "/api/v1/certificates",
        admin,
        Body::Json(json!({"profile": "openapi", "csr": "not a CSR"})),
        400,
    )
    .await;

    let list = "/api/v1/certificates";
    c.json("get", list, list, None, 200).await;
    let page = c
        .json(
            "get",
            list,
            "/api/v1/certificates?profile=openapi&status=valid&limit=1",
            None,
            200,
        )
        .await;
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    c.json(
        "get",
        list,
        &format!("/api/v1/certificates?profile=openapi&limit=1&cursor={cursor}"),
        None,
        200,
    )
    .await;
    let serial = generated["serial"].as_str().unwrap();
    let found = c
        .json(
            "get",
            list,
            &format!(
                "/api/v1/certificates?ca=openapi-int&san=a.example.com&serial={serial}&expiring_before={}",
                rfc3339_in_days(365)
            ),
            None,
            200,
        )
        .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");
    c.run(
        "get",
        list,
        "/api/v1/certificates?bogus=1",
        admin,
        Body::None,
        400,
    )
    .await;
    c.run(
        "get",
        list,
        "/api/v1/certificates?limit=0",
        admin,
        Body::None,
        400,
    )
    .await;
    c.run(
        "get",
        list,
        "/api/v1/certificates?status=old",
        admin,
        Body::None,
        400,
    )
    .await;

    let id = generated["id"].as_str().unwrap();
    let cert = c
        .json(
            "get",
            "/api/v1/certificates/{id}",
            &format!("/api/v1/certificates/{id}"),
            None,
            200,
        )
        .await;
    assert!(cert["certificate"].is_string());
    assert_eq!(cert["managed"], true);
    for (suffix, ct) in [
        ("pem", "application/x-pem-file"),
        ("der", "application/pkix-cert"),
        ("chain", "application/pem-certificate-chain"),
    ] {
        let a = c
            .run(
                "get",
                &format!("/api/v1/certificates/{{id}}/{suffix}"),
                &format!("/api/v1/certificates/{id}/{suffix}"),
                admin,
                Body::None,
                200,
            )
            .await;
        assert_eq!(a.content_type.as_deref(), Some(ct));
    }
    let revoke = "/api/v1/certificates/{id}/revoke";
    let revoked = c
        .json(
            "post",
            revoke,
            &format!("/api/v1/certificates/{id}/revoke"),
            Some(json!({"reason": "keyCompromise"})),
            200,
        )
        .await;
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["revocation_reason"], 1);
    c.run(
        "post",
        revoke,
        &format!("/api/v1/certificates/{id}/revoke"),
        admin,
        Body::Json(json!({})),
        409,
    )
    .await;
    let issued_id = issued["id"].as_str().unwrap();
    c.run(
        "post",
        revoke,
        &format!("/api/v1/certificates/{issued_id}/revoke"),
        admin,
        Body::Json(json!({"reason": 7})),
        400,
    )
    .await;
    c.json(
        "post",
        revoke,
        &format!("/api/v1/certificates/{issued_id}/revoke"),
        Some(json!({"reason": 4})),
        200,
    )
    .await;

    // Public endpoints.
    for (file, ct) in [
        ("root.crt", "application/pkix-cert"),
        ("root.der", "application/pkix-cert"),
        ("openapi-int.pem", "application/x-pem-file"),
    ] {
        let a = c
            .run(
                "get",
                "/ca/{file}",
                &format!("/ca/{file}"),
                None,
                Body::None,
                200,
            )
            .await;
        assert_eq!(a.content_type.as_deref(), Some(ct));
    }
    c.run("get", "/crl/{file}", "/crl/root.crl", None, Body::None, 200)
        .await;
    let int_pem = s.write("int.pem", int["certificate"].as_str().unwrap());
    let leaf_pem = s.write("leaf.pem", generated["certificate"].as_str().unwrap());
    let req_der = dir.join("ocsp.req");
    run_openssl(&[
        "ocsp",
        "-issuer",
        p(&int_pem),
        "-cert",
        p(&leaf_pem),
        "-no_nonce",
        "-reqout",
        p(&req_der),
    ]);
    let der = std::fs::read(&req_der).unwrap();
    c.run(
        "post",
        "/ocsp",
        "/ocsp",
        None,
        Body::Raw("application/ocsp-request", der.clone()),
        200,
    )
    .await;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der);
    c.run(
        "get",
        "/ocsp/{request}",
        &format!("/ocsp/{b64}"),
        None,
        Body::None,
        200,
    )
    .await;
    let huge = vec![b'0'; (1 << 20) + 64];
    c.run(
        "post",
        "/ocsp",
        "/ocsp",
        None,
        Body::Raw("application/ocsp-request", huge.clone()),
        413,
    )
    .await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        c.run("get", path, path, None, Body::None, 200).await;
    }

    // Tokens.
    let tokens = "/api/v1/tokens";
    c.json("get", tokens, tokens, None, 200).await;
    let viewer = c
        .json(
            "post",
            tokens,
            tokens,
            Some(json!({"name": "openapi-viewer", "role": "viewer", "expires_in_days": 1})),
            201,
        )
        .await;
    let issuer = c
        .json(
            "post",
            tokens,
            tokens,
            Some(json!({"name": "openapi-issuer", "role": "issuer", "profiles": ["openapi"], "expires_in_days": null})),
            201,
        )
        .await;
    let viewer_token = viewer["token"].as_str().unwrap();
    let issuer_token = issuer["token"].as_str().unwrap();
    c.run(
        "post",
        generate,
        generate,
        Some(viewer_token),
        Body::Json(json!({"profile": "openapi", "dns_names": ["e.example.com"]})),
        403,
    )
    .await;
    c.run("get", tokens, tokens, Some(viewer_token), Body::None, 403)
        .await;
    c.run(
        "post",
        generate,
        generate,
        Some(issuer_token),
        Body::Json(json!({"profile": "default", "dns_names": ["e.example.com"]})),
        403,
    )
    .await;
    c.run(
        "post",
        generate,
        generate,
        Some(issuer_token),
        Body::Json(json!({"profile": "openapi", "dns_names": ["e.example.com"]})),
        201,
    )
    .await;
    c.run(
        "post",
        tokens,
        tokens,
        admin,
        Body::Raw("text/plain", b"{}".to_vec()),
        415,
    )
    .await;
    c.run(
        "post",
        tokens,
        tokens,
        admin,
        Body::Raw("application/json", huge),
        413,
    )
    .await;
    c.run(
        "post",
        tokens,
        tokens,
        admin,
        Body::Json(json!({"name": "x", "role": "issuer"})),
        400,
    )
    .await;
    let viewer_id = viewer["id"].as_str().unwrap();
    let one_token = "/api/v1/tokens/{id}";
    let path = format!("/api/v1/tokens/{viewer_id}");
    c.run("delete", one_token, &path, admin, Body::None, 204)
        .await;
    c.run("delete", one_token, &path, admin, Body::None, 404)
        .await;
    c.run(
        "get",
        "/api/v1/cas",
        "/api/v1/cas",
        Some(viewer_token),
        Body::None,
        401,
    )
    .await;

    // Audit.
    let audit = "/api/v1/audit";
    let page = c
        .json("get", audit, "/api/v1/audit?limit=2", None, 200)
        .await;
    let before = page["next_before"].as_i64().expect("a next page");
    let issues = c
        .json(
            "get",
            audit,
            &format!("/api/v1/audit?before={before}&action=certificate.issue&limit=1000"),
            None,
            200,
        )
        .await;
    assert!(!issues["items"].as_array().unwrap().is_empty());
    c.run(
        "get",
        audit,
        "/api/v1/audit?limit=5000",
        admin,
        Body::None,
        400,
    )
    .await;

    // Profile deletion last: certificates keep the name.
    c.run(
        "delete",
        one,
        "/api/v1/profiles/openapi",
        admin,
        Body::None,
        204,
    )
    .await;
    c.run(
        "delete",
        one,
        "/api/v1/profiles/openapi",
        admin,
        Body::None,
        404,
    )
    .await;

    // Alerts: a channel (its secrets never answered), a rule, the outbox after a test event.
    let channels = "/api/v1/alerts/channels";
    let channel = c
        .json(
            "post",
            channels,
            channels,
            Some(json!({"name": "openapi-hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook", "hmac_key": "s3cret", "headers": {"X-Key": "hidden"}})),
            201,
        )
        .await;
    assert!(
        !channel.to_string().contains("s3cret") && !channel.to_string().contains("hidden"),
        "a channel's secrets are never answered: {channel}"
    );
    let listed = c.json("get", channels, channels, None, 200).await;
    assert_eq!(listed[0]["id"], channel["id"]);
    let rules = "/api/v1/alerts/rules";
    let rule = c
        .json(
            "post",
            rules,
            rules,
            Some(json!({"name": "openapi-rule", "channels": ["openapi-hook"], "selector": {"san": "*.example.com"}, "thresholds": [10, 3], "events": ["certificate.revoked"]})),
            201,
        )
        .await;
    assert_eq!(rule["thresholds"], json!([10, 3]));
    assert_eq!(rule["enabled"], json!(true));
    c.json("get", rules, rules, None, 200).await;
    let outbox = "/api/v1/alerts/outbox";
    let rows = c
        .json("get", outbox, &format!("{outbox}?limit=10"), None, 200)
        .await;
    assert!(rows.is_array(), "{rows}");
    let retry = "/api/v1/alerts/outbox/retry";
    let retried = c.json("post", retry, retry, None, 202).await;
    assert_eq!(retried, json!({"retried": 0}));
    let one = "/api/v1/alerts/outbox/{id}/retry";
    c.json(
        "post",
        one,
        "/api/v1/alerts/outbox/no-such-row/retry",
        None,
        404,
    )
    .await;

    // A host agent: a managed certificate, an agent token given it, the current version with
    // its key, a report, and where it is deployed.
    let managed = c
        .json(
            "post",
            "/api/v1/managed",
            "/api/v1/managed",
            Some(json!({"name": "openapi-agent", "profile": "default", "dns_names": ["agent.example.com"], "validity_days": 5})),
            201,
        )
        .await;
    let tokens = "/api/v1/tokens";
    let tok = c
        .json(
            "post",
            tokens,
            tokens,
            Some(json!({"name": "openapi-agent", "role": "agent", "managed": ["openapi-agent"]})),
            201,
        )
        .await;
    assert_eq!(tok["managed"], json!([managed["id"]]));
    let agent = tok["token"].as_str().unwrap().to_string();
    let fetch = "/api/v1/agent/certificates/{id}";
    let a = c
        .run(
            "get",
            fetch,
            "/api/v1/agent/certificates/openapi-agent",
            Some(&agent),
            Body::None,
            200,
        )
        .await;
    let fetched: Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(fetched["version"], 1);
    c.run(
        "get",
        fetch,
        "/api/v1/agent/certificates/openapi-agent",
        admin,
        Body::None,
        403,
    )
    .await;
    let report = "/api/v1/agent/certificates/{id}/deployments";
    let a = c
        .run(
            "post",
            report,
            "/api/v1/agent/certificates/openapi-agent/deployments",
            Some(&agent),
            Body::Json(
                json!({"host": "web-1", "version": 1, "reload_ok": false, "output": "bad config"}),
            ),
            200,
        )
        .await;
    let reported: Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(reported["output"], "bad config");
    let deployed = c
        .json(
            "get",
            "/api/v1/managed/{id}/deployments",
            "/api/v1/managed/openapi-agent/deployments",
            None,
            200,
        )
        .await;
    assert_eq!(deployed["versions"][0]["places"][0]["name"], "web-1");
}

/// Fail on any line of `text` (the source file `name`) that mounts a route with axum's own
/// routing, bypassing `utoipa_axum::routes!` and so the document.
fn assert_no_undescribed_routes(name: &str, text: &str) {
    for (n, line) in text.lines().enumerate() {
        for bypass in [
            ".route(",
            ".route_service(",
            ".nest_service(",
            "axum::routing",
            "MethodRouter",
        ] {
            assert!(
                !line.contains(bypass),
                "{name}:{}: `{bypass}` mounts a route the OpenAPI document does not \
                 describe; give the handler a #[utoipa::path] attribute and mount it with \
                 `.routes(routes!(handler))`",
                n + 1
            );
        }
    }
}

/// The routes under `/api/v1` are mounted only by `utoipa_axum::routes!`, which takes each
/// handler's method and path from its `#[utoipa::path]` attribute, the same attribute the
/// document is built from: the router and the document cannot list different routes, so
/// `openapi_document_matches_the_server` probing every documented operation covers every
/// route. What could still mount an undescribed route is axum's own routing (`.route(...)`,
/// `get(handler)`, a plain `Router` merged in after the description is taken); this test
/// fails on any of them in src/api, naming the file and line.
#[test]
fn api_routes_are_mounted_only_from_their_descriptions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    assert!(files.len() > 10, "the API modules are in {}", dir.display());
    let mut routers = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        assert_no_undescribed_routes(&format!("src/api/{name}"), &text);
        if let Some(at) = text.find("fn router()") {
            routers += 1;
            let signature = &text[at..at + text[at..].find('{').unwrap()];
            let routes = name == "mod.rs" || signature.contains("-> OpenApiRouter<AppState>");
            assert!(
                routes,
                "src/api/{name}: router() returns an OpenApiRouter built with routes!"
            );
        }
    }
    assert!(routers > 10, "every API module has a router()");

    // In src/api/mod.rs, once the description is split from the router, nothing but the
    // fallbacks, the nesting under /api/v1 and the reference page outside it is added.
    let root = std::fs::read_to_string(dir.join("mod.rs")).unwrap();
    let after = &root[root
        .find(".split_for_parts()")
        .expect("mod.rs splits the router")..];
    let after = &after[..after.find("\n}\n").unwrap()];
    for (at, _) in after.match_indices(".merge(") {
        assert!(
            after[at..].starts_with(".merge(openapi::reference_page("),
            "src/api/mod.rs merges a router after the description was taken: {}",
            &after[at..after[at..].find('\n').map_or(after.len(), |e| at + e)]
        );
    }
    for (at, _) in after.match_indices(".nest(") {
        assert!(
            after[at..].starts_with(".nest(\"/api/v1\", v1)"),
            "src/api/mod.rs nests a router after the description was taken"
        );
    }
}

/// The public endpoints (src/public.rs, outside `/api/v1`) are mounted the same way: the
/// router is the one `routes!` builds from the handlers' `#[utoipa::path]` attributes, and
/// the document describes that router's paths, so no list of them is kept anywhere.
#[test]
fn public_routes_are_mounted_only_from_their_descriptions() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/public.rs");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_no_undescribed_routes("src/public.rs", &text);
    assert!(
        text.contains("pub fn described() -> OpenApiRouter<AppState>"),
        "src/public.rs: described() returns an OpenApiRouter built with routes!"
    );
    let at = text
        .find("pub fn router()")
        .expect("src/public.rs has router()");
    let body = &text[at..at + text[at..].find("\n}\n").unwrap()];
    let body = &body[body.find('{').unwrap() + 1..];
    assert_eq!(
        body.trim(),
        "described().into()",
        "src/public.rs: router() is the described router, nothing added"
    );
}
