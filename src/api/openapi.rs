//! `GET /api/v1/openapi.json`: an OpenAPI 3.1 description of every route the server has,
//! the REST API under `/api/v1` and the public endpoints (AIA, CRL, OCSP, health, metrics).
//!
//! The operations are derived from the handlers: each one carries a `#[utoipa::path]`
//! attribute and is mounted with `utoipa_axum::routes!` (the API by `super::router`, the
//! public endpoints by `crate::public::described`), which takes the method and path from
//! that attribute, so the routers and the document cannot list different routes. The
//! request and answer schemas are derived from the Rust types (`#[derive(ToSchema)]`).
//!
//! This module adds what no handler or type owns: the document's header, the tags, the
//! bearer security scheme, the shared RFC 7807 responses, the defaults that come from the
//! settings, and the schemas that cannot be derived:
//! - `KeyAlgorithm`, `KeyType`: the values are `certkeeper_ca::KeyAlgorithm`'s list
//!   (built in Rust in [`schemas`]);
//! - the profile bodies and `Profile`: the server's answer adds the id, the CA and the times
//!   to the ca crate's `Profile` (the defaults are read from `Profile` itself), and the
//!   request bodies are read as JSON values; `KeyUsage` and `ExtKeyUsage`, which only these
//!   schemas refer to, are derived in the ca crate and added here;
//! - `RevocationReason`: names and codes taken as a JSON value and read by `parse_reason`;
//! - the alert channel, rule and outbox schemas: their answers are built as JSON values
//!   (times rewritten, secrets left out) rather than typed structs.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json, Router};
use certkeeper_ca::{CaSpec, KeyAlgorithm, Profile};
use serde_json::{Map, Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::server::AppState;

/// Routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(serve))
}

/// What the handlers and their types describe, as mounted under `/api/v1`.
#[derive(Clone, Debug)]
pub(super) struct Derived(Arc<Described>);

/// The parts of the document derived from the code.
#[derive(Debug)]
struct Described {
    /// `paths` of the API, keyed by the full path.
    paths: Map<String, Value>,
    /// `paths` of the public endpoints (`crate::public`), served on both listeners.
    public: Map<String, Value>,
    /// `components/schemas` of the request and response types.
    schemas: Map<String, Value>,
}

impl Derived {
    /// The paths of `api` (the description the `/api/v1` router was built with), under
    /// `prefix`, the paths of `public` (the description of the public router, at the root),
    /// and their component schemas.
    pub(super) fn new(
        prefix: &str,
        api: &utoipa::openapi::OpenApi,
        public: &utoipa::openapi::OpenApi,
    ) -> Derived {
        let mut schemas = component_schemas(api);
        schemas.extend(component_schemas(public));
        Derived(Arc::new(Described {
            paths: document_paths(prefix, api),
            public: document_paths("", public),
            schemas,
        }))
    }
}

/// The paths of `api` under `prefix`, as the document writes them. A catch-all segment
/// (axum's `{*request}`) is a plain parameter in the document (`{request}`). Each problem
/// response that only says why it happens becomes a reference to the shared response of
/// its status, and an operation anyone may call says `security: []` (the attribute's
/// `security(())` is `[{}]`).
fn document_paths(prefix: &str, api: &utoipa::openapi::OpenApi) -> Map<String, Value> {
    let Ok(Value::Object(paths)) = serde_json::to_value(&api.paths) else {
        unreachable!("paths serialize to an object")
    };
    paths
        .into_iter()
        .map(|(path, mut item)| {
            for op in item
                .as_object_mut()
                .into_iter()
                .flat_map(|m| m.values_mut())
            {
                share_problem_responses(op);
                if op.get("security") == Some(&json!([{}])) {
                    op["security"] = json!([]);
                }
            }
            (format!("{prefix}{}", path.replace("{*", "{")), item)
        })
        .collect()
}

/// The component schemas of `api`; the names that stand for themselves (the marker types
/// of [`schemas`]) are left to this module.
fn component_schemas(api: &utoipa::openapi::OpenApi) -> Map<String, Value> {
    api.components
        .iter()
        .flat_map(|c| &c.schemas)
        .filter_map(|(name, schema)| {
            let schema = serde_json::to_value(schema).ok()?;
            let own = format!("#/components/schemas/{name}");
            (schema.get("$ref").and_then(Value::as_str) != Some(own.as_str()))
                .then(|| (name.clone(), schema))
        })
        .collect()
}

/// Replace each inline `application/problem+json` response of `op` by a reference to the
/// shared response of its status, keeping the operation's own description.
fn share_problem_responses(op: &mut Value) {
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for (status, response) in responses.iter_mut() {
        let Some(name) = shared_response(status) else {
            continue;
        };
        let only_problem = response.get("headers").is_none()
            && response["content"]
                .as_object()
                .is_some_and(|c| c.len() == 1 && c.contains_key("application/problem+json"));
        if only_problem {
            *response = json!({
                "$ref": format!("#/components/responses/{name}"),
                "description": response["description"],
            });
        }
    }
}

/// The shared problem response for an HTTP status, by its name in `components/responses`.
fn shared_response(status: &str) -> Option<&'static str> {
    Some(match status {
        "400" => "BadRequest",
        "401" => "Unauthorized",
        "403" => "Forbidden",
        "404" => "NotFound",
        "409" => "Conflict",
        "413" => "PayloadTooLarge",
        "415" => "UnsupportedMediaType",
        "500" => "InternalError",
        _ => return None,
    })
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "getOpenApi",
    tag = "Meta",
    summary = "This OpenAPI document",
    description = "No authentication.",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document.", content((inline(schemas::AnyObject) = "application/json"))),
    )
)]
async fn serve(
    State(state): State<AppState>,
    Extension(derived): Extension<Derived>,
) -> Json<Value> {
    let s = state.pki.settings();
    Json(document(
        &Facts {
            public_url: &s.server.public_url,
            ca_key_algorithm: s.ca.key_algorithm,
            max_body_bytes: s.server.max_body_bytes,
        },
        &derived,
    ))
}

/// The server settings the document mentions.
struct Facts<'a> {
    /// Base URL of the public endpoints (the `public_url` setting).
    public_url: &'a str,
    /// Key type of new CAs when the request names none.
    ca_key_algorithm: KeyAlgorithm,
    /// Largest request body accepted.
    max_body_bytes: usize,
}

/// The whole document.
fn document(f: &Facts<'_>, derived: &Derived) -> Value {
    let mut paths = derived.0.paths.clone();
    let servers = json!([
        {"url": "/", "description": "The HTTPS listener."},
        {"url": f.public_url, "description": "The plain-HTTP listener (the `public_url` written into certificates)."}
    ]);
    paths.extend(derived.0.public.iter().map(|(path, item)| {
        let mut item = item.clone();
        item["servers"] = servers.clone();
        (path.clone(), item)
    }));
    let mut schemas = derived.0.schemas.clone();
    for (name, schema) in described_here() {
        schemas.entry(name).or_insert(schema);
    }
    // A new CA's key type and lifetime default to the settings, known only at run time.
    if let Some(p) = schemas
        .get_mut("CreateCaRequest")
        .and_then(|s| s.get_mut("properties"))
    {
        p["key_algorithm"]["default"] = json!(f.ca_key_algorithm.to_string());
        p["validity_days"]["default"] = json!(CaSpec::new("x", f.ca_key_algorithm).validity_days);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "certkeeper",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "X.509 certificate lifecycle manager: private CA, REST API, CRLs and OCSP.",
            "description": info_description(f),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "servers": [{
            "url": "/",
            "description": format!(
                "The HTTPS listener: the API under /api/v1 and the public endpoints. The public \
                 endpoints (/ca, /crl, /ocsp, /healthz, /readyz, /metrics) are also served on the \
                 plain-HTTP listener, reachable at {}.",
                f.public_url
            )
        }],
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": "CAs", "description": "The CA hierarchy: roots, intermediates, imported and externally signed CAs."},
            {"name": "ACME", "description": "Administration of the ACME server (RFC 8555) served at /acme/directory (admin only)."},
            {"name": "Profiles", "description": "Issuance templates with policy."},
            {"name": "Alerts", "description": "Expiry alerts and lifecycle events: channels, rules, the delivery outbox."},
            {"name": "Certificates", "description": "Issue, search, fetch and revoke end-entity certificates."},
            {"name": "Tokens", "description": "API tokens (admin only)."},
            {"name": "EST", "description": "EST (RFC 7030) labels and credentials (admin only); enrollment itself is under /.well-known/est/ on the HTTPS listener."},
            {"name": "Managed certificates", "description": "Certificates the server issues, renews and pushes to cloud destinations."},
            {"name": "Destinations", "description": "Cloud certificate stores (AWS Certificate Manager, Azure Key Vault)."},
            {"name": "Audit", "description": "The audit log (admin only)."},
            {"name": "Discovery", "description": "Scans of networks for TLS certificates, the inventory they build, and scans on a cron schedule. Scans started here are limited to the networks in the `discovery.allow` setting."},
            {"name": "Meta", "description": "This document."},
            {"name": "Public", "description": "Unauthenticated endpoints for relying parties and operators; also on the plain-HTTP listener."}
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (`ck_...`) in `Authorization: Bearer <token>`. Roles: `admin` may do everything; `issuer` may read CAs, profiles and certificates and issue or revoke under its `profiles`; `viewer` may read CAs, profiles and certificates. The admin token made on first start is in `<data_dir>/admin.token`."
                }
            },
            "responses": error_responses(f.max_body_bytes),
            "schemas": schemas
        }
    })
}

fn info_description(f: &Facts<'_>) -> String {
    format!(
        "REST API of certkeeper. Every `/api/v1` operation except this document needs a bearer \
         token. Request and response bodies are JSON (`Content-Type: application/json`; other \
         content types get 415), request objects reject unknown fields, and bodies over \
         {} bytes get 413. Errors are RFC 7807 problem documents \
         (`application/problem+json`) whose `type` is `urn:certkeeper:problem:<kind>`; a \
         method that a path does not support gets a 405 problem and an unknown path under \
         `/api/v1` a 404 problem. Times are RFC 3339 in UTC.\n\n\
         The public endpoints (CA certificates for AIA, CRLs, OCSP, health, readiness, \
         metrics) need no authentication and are served on both the HTTPS listener and the \
         plain-HTTP listener ({}).",
        f.max_body_bytes, f.public_url
    )
}

// ---------------------------------------------------------------------------------------
// Small builders.

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn object(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

// ---------------------------------------------------------------------------------------
// components/responses

fn error_responses(max_body_bytes: usize) -> Value {
    let problem = |description: String| {
        json!({
            "description": description,
            "content": {"application/problem+json": {"schema": schema_ref("Problem")}}
        })
    };
    let mut unauthorized =
        problem("No, malformed, unknown, revoked or expired bearer token (`unauthorized`).".into());
    unauthorized["headers"] = json!({
        "WWW-Authenticate": {
            "description": "Always `Bearer realm=\"certkeeper\"`.",
            "schema": {"type": "string"}
        }
    });
    json!({
        "BadRequest": problem("Malformed or invalid input (`bad-request`), or an unusable CSR (`bad-csr`).".into()),
        "Unauthorized": unauthorized,
        "Forbidden": problem("The token's role does not allow this (`forbidden`), or profile policy refused the request (`policy-violation`, with `profile` and `rule`).".into()),
        "NotFound": problem("No such object (`not-found`).".into()),
        "Conflict": problem("The request conflicts with the current state (`conflict`).".into()),
        "PayloadTooLarge": problem(format!("The body is larger than {max_body_bytes} bytes (`payload-too-large`).")),
        "UnsupportedMediaType": problem("The body was not sent with `Content-Type: application/json` (`unsupported-media-type`).".into()),
        "InternalError": problem("Something failed inside the server (`internal`); the details are logged, not sent.".into())
    })
}

// ---------------------------------------------------------------------------------------
// components/schemas

/// The component schemas not derived from a Rust type.
fn described_here() -> Map<String, Value> {
    let mut s = Map::new();
    for (name, schema) in [
        (
            "KeyAlgorithm",
            <schemas::KeyAlgorithm as utoipa::PartialSchema>::schema(),
        ),
        (
            "KeyType",
            <schemas::KeyType as utoipa::PartialSchema>::schema(),
        ),
        (
            "KeyUsage",
            <certkeeper_ca::KeyUsage as utoipa::PartialSchema>::schema(),
        ),
        (
            "ExtKeyUsage",
            <certkeeper_ca::ExtKeyUsage as utoipa::PartialSchema>::schema(),
        ),
    ] {
        s.insert(
            name.into(),
            serde_json::to_value(schema).expect("a schema serializes"),
        );
    }
    s.extend(profile_schemas());
    s.extend(certificate_schemas());
    s.extend(alert_schemas());
    s
}

fn nullable_string(description: &str) -> Value {
    json!({"type": ["string", "null"], "description": description})
}

fn date_time(description: &str) -> Value {
    json!({"type": "string", "format": "date-time", "description": description})
}

fn nullable_date_time(description: &str) -> Value {
    json!({"type": ["string", "null"], "format": "date-time", "description": description})
}

/// The policy fields of a profile, with the defaults `Profile` deserialises to.
fn profile_policy_properties() -> Map<String, Value> {
    let defaults = serde_json::from_value::<Profile>(json!({"name": "defaults"}))
        .and_then(serde_json::to_value)
        .expect("a profile with only a name deserialises");
    let d = |field: &str| defaults.get(field).cloned().unwrap_or(Value::Null);
    object(vec![
        (
            "name",
            json!({"type": "string", "pattern": "^[A-Za-z0-9._-]+$", "description": "Unique name: letters, digits, `-`, `_` and `.`."}),
        ),
        (
            "key_usages",
            json!({"type": "array", "items": schema_ref("KeyUsage"), "default": d("key_usages"), "description": "Key usages set in issued certificates."}),
        ),
        (
            "ext_key_usages",
            json!({"type": "array", "items": schema_ref("ExtKeyUsage"), "default": d("ext_key_usages"), "description": "Extended key usages set in issued certificates."}),
        ),
        (
            "max_validity_days",
            json!({"type": "integer", "minimum": 1, "maximum": 3650, "default": d("max_validity_days"), "description": "Longest validity a request may ask for, in days."}),
        ),
        (
            "default_validity_days",
            json!({"type": ["integer", "null"], "minimum": 1, "maximum": 3650, "default": d("default_validity_days"), "description": "Validity when the request names none, in days; at most `max_validity_days`. Null: `max_validity_days`."}),
        ),
        (
            "allowed_key_types",
            json!({"type": "array", "items": schema_ref("KeyType"), "minItems": 1, "default": d("allowed_key_types"), "description": "Subscriber key types accepted."}),
        ),
        (
            "allowed_dns_names",
            json!({
                "type": "array",
                "items": {"type": "string", "description": "`*` (any name), `host.example.com` (exactly), `*.example.com` (one label below), `.example.com` (any depth below)."},
                "default": d("allowed_dns_names"),
                "description": "DNS name rules; no DNS names are allowed while this is empty."
            }),
        ),
        (
            "allow_wildcards",
            json!({"type": "boolean", "default": d("allow_wildcards"), "description": "Whether wildcard names (`*.example.com`) may be requested at all."}),
        ),
        (
            "allowed_ip_ranges",
            json!({"type": "array", "items": {"type": "string", "description": "CIDR, e.g. `10.0.0.0/8` (a bare address is one host)."}, "default": d("allowed_ip_ranges"), "description": "IP ranges whose addresses may appear in subjectAltName."}),
        ),
        (
            "copy_subject",
            json!({"type": "boolean", "default": d("copy_subject"), "description": "Copy O, OU, C, ST and L from the CSR's subject (the CN is always a requested name)."}),
        ),
        (
            "max_names",
            json!({"type": "integer", "minimum": 1, "maximum": u32::MAX, "default": d("max_names"), "description": "Most names (DNS and IP) in one certificate."}),
        ),
    ])
}

fn profile_schemas() -> Map<String, Value> {
    let policy = profile_policy_properties();
    let policy_names: Vec<&String> = policy.keys().collect();

    let mut create = policy.clone();
    create.insert(
        "ca".into(),
        json!({"type": "string", "description": "The signing CA's id or name; it must be active."}),
    );
    let mut update = policy.clone();
    update.insert(
        "ca".into(),
        json!({"type": "string", "description": "A new signing CA's id or name (it must be active); the current CA is kept when left out."}),
    );
    update["name"]["description"] =
        json!("May be left out; if given it must be the profile's current name.");
    let mut view = Map::new();
    view.insert(
        "id".into(),
        json!({"type": "string", "description": "Id (UUID)."}),
    );
    view.insert(
        "ca".into(),
        json!({"type": "string", "description": "The signing CA's id."}),
    );
    view.extend(policy.clone());
    view.insert("created_at".into(), date_time("When created."));
    view.insert("updated_at".into(), date_time("When last changed."));
    let mut view_required: Vec<&str> = vec!["id", "ca"];
    view_required.extend(policy_names.iter().map(|s| s.as_str()));
    view_required.extend(["created_at", "updated_at"]);

    object(vec![
        (
            "CreateProfileRequest",
            json!({
                "type": "object",
                "description": "A profile's signing CA and policy. Every policy field but `name` has a default.",
                "additionalProperties": false,
                "required": ["ca", "name"],
                "properties": create
            }),
        ),
        (
            "UpdateProfileRequest",
            json!({
                "type": "object",
                "description": "The complete new policy: fields left out take their defaults.",
                "additionalProperties": false,
                "properties": update
            }),
        ),
        (
            "Profile",
            json!({
                "type": "object",
                "description": "A profile: its id, signing CA and policy.",
                "required": view_required,
                "properties": view
            }),
        ),
    ])
}

fn certificate_schemas() -> Map<String, Value> {
    let reason_names = [
        "unspecified",
        "keyCompromise",
        "cACompromise",
        "affiliationChanged",
        "superseded",
        "cessationOfOperation",
        "privilegeWithdrawn",
        "aACompromise",
        "key_compromise",
        "ca_compromise",
        "affiliation_changed",
        "cessation_of_operation",
        "privilege_withdrawn",
        "aa_compromise",
    ];

    object(vec![(
        "RevocationReason",
        json!({
            "description": "An RFC 5280 reason: its name (camelCase as in the RFC or snake_case; case and punctuation are ignored) or its code (0-6, 9, 10). Null or left out: `unspecified`.",
            "anyOf": [
                {"type": "string", "enum": reason_names},
                {"type": "integer", "enum": [0, 1, 2, 3, 4, 5, 9, 10]},
                {"type": "null"}
            ]
        }),
    )])
}

// ---------------------------------------------------------------------------------------
// /api/v1/alerts

fn alert_schemas() -> Map<String, Value> {
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let selector = json!({
        "type": "object",
        "additionalProperties": false,
        "description": "Which certificates; every field given must match; none means all.",
        "properties": {
            "ca_id": {"type": "string", "description": "Issuing CA (id or name)."},
            "profile": {"type": "string", "description": "Profile name."},
            "san": {"type": "string", "description": "A DNS name or IP address in the certificate; `*.example.com` matches every name below example.com."},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "At least one of these inventory tags."},
            "discovered_only": {"type": "boolean", "description": "Only certificates found by discovery."}
        }
    });
    let events: Vec<&str> = crate::services::alerts::events::SUBSCRIBABLE
        .iter()
        .map(|k| k.short())
        .collect();
    let rule_props = json!({
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "selector": selector,
        "thresholds": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 3650}, "description": "Days before expiry; default [30, 14, 7, 1]."},
        "channels": {"type": "array", "items": {"type": "string"}, "description": "Channel ids or names."},
        "events": {"type": "array", "items": {"type": "string", "enum": events}, "description": "Lifecycle events to forward."},
        "daily_reminder": {"type": "boolean", "description": "Below the last threshold, remind once a day until expiry."},
        "digest": {"type": "boolean", "description": "One message per sweep listing every crossing."},
        "enabled": {"type": "boolean"}
    });
    let mut rule = rule_props.clone();
    rule["id"] = json!({"type": "string"});
    rule["created_at"] = date_time("When it was created.");
    object(vec![
        (
            "AlertChannel",
            json!({
                "type": "object",
                "required": ["id", "name", "kind", "config", "created_at"],
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "kind": {"type": "string", "enum": crate::services::alerts::channels::KINDS},
                    "config": {"type": "object", "description": "Settings that are not secret: the URL's host, whether requests are signed, custom header names, SMTP settings."},
                    "created_at": date_time("When it was created.")
                }
            }),
        ),
        (
            "CreateAlertChannelRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "kind"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 100},
                    "kind": {"type": "string", "enum": crate::services::alerts::channels::KINDS},
                    "url": {"type": "string", "description": "Webhook URL (secret)."},
                    "hmac_key": {"type": "string", "description": "Generic webhook: HMAC-SHA256 key (secret)."},
                    "headers": {"type": "object", "description": "Generic webhook: extra headers (values are secret)."},
                    "smtp": {
                        "type": "object",
                        "required": ["host", "port", "tls", "from", "to"],
                        "properties": {
                            "host": {"type": "string"},
                            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                            "tls": {"type": "string", "enum": ["starttls", "tls", "none"]},
                            "username": {"type": "string"},
                            "from": {"type": "string"},
                            "to": strings,
                            "ca_pem": {"type": "string", "description": "An extra trusted root for the SMTP server's certificate."}
                        }
                    },
                    "password": {"type": "string", "description": "SMTP password (secret)."}
                }
            }),
        ),
        (
            "CreateAlertRuleRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "channels"],
                "properties": rule_props
            }),
        ),
        (
            "AlertRule",
            json!({
                "type": "object",
                "required": ["id", "name", "selector", "thresholds", "channels", "events", "daily_reminder", "digest", "enabled", "created_at"],
                "properties": rule
            }),
        ),
        (
            "AlertOutboxEntry",
            json!({
                "type": "object",
                "required": ["id", "event_id", "event_type", "channel_id", "status", "attempts", "created_at"],
                "properties": {
                    "id": {"type": "string"},
                    "event_id": {"type": "string", "description": "The CloudEvents id (the same on every retry)."},
                    "event_type": {"type": "string"},
                    "channel_id": {"type": "string"},
                    "status": {"type": "string", "enum": ["pending", "delivered", "dead"]},
                    "attempts": {"type": "integer", "minimum": 0},
                    "next_attempt_at": nullable_date_time("Next attempt, while pending."),
                    "last_error": nullable_string("The last failure."),
                    "last_status": {"type": ["integer", "null"], "description": "The last HTTP status or SMTP reply code."},
                    "created_at": date_time("When it was queued."),
                    "delivered_at": nullable_date_time("When it was delivered.")
                }
            }),
        ),
    ])
}

/// The schema of a record as it is answered when it is created: the object schema of
/// `T` (the record as stored) with one more required string property, the secret that is
/// shown only then. The record type's schema is reused, so the two cannot drift.
pub(super) fn with_secret<T: utoipa::PartialSchema>(
    secret: &str,
    secret_description: &str,
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

    let RefOr::T(Schema::Object(mut object)) = T::schema() else {
        unreachable!("a record derives an object schema")
    };
    object.properties.insert(
        secret.to_string(),
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(secret_description))
            .into(),
    );
    object.required.push(secret.to_string());
    object.description = Some(description.to_string());
    RefOr::T(Schema::Object(object))
}

/// Names under which operations refer to the component schemas of the document.
///
/// Each type stands for the schema of the same name in `components/schemas`; an attribute
/// that names one (`content((schemas::Ca = "application/json"))`) refers to that component.
pub(crate) mod schemas {
    use std::borrow::Cow;

    use utoipa::openapi::schema::{
        AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type,
    };
    use utoipa::openapi::{Ref, RefOr};
    use utoipa::{PartialSchema, ToSchema};

    /// Declare the component schemas operations refer to by name.
    macro_rules! named {
        ($($name:ident),* $(,)?) => {$(
            #[doc = concat!("The `", stringify!($name), "` component schema.")]
            pub(crate) struct $name;

            impl PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    Ref::from_schema_name(stringify!($name)).into()
                }
            }

            impl ToSchema for $name {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($name))
                }
            }
        )*};
    }

    /// Declare `{"items": [<component>]}` list objects, inlined where they are used; the
    /// item type's component is registered with them.
    macro_rules! items_of {
        ($($list:ident: $item:ty),* $(,)?) => {$(
            #[doc = concat!("`{\"items\": [", stringify!($item), "]}`.")]
            pub(crate) struct $list;

            impl PartialSchema for $list {
                fn schema() -> RefOr<Schema> {
                    ObjectBuilder::new()
                        .property(
                            "items",
                            ArrayBuilder::new()
                                .items(Ref::from_schema_name(<$item as ToSchema>::name())),
                        )
                        .required("items")
                        .into()
                }
            }

            impl ToSchema for $list {
                fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                    schemas.push((
                        <$item as ToSchema>::name().into_owned(),
                        <$item as PartialSchema>::schema(),
                    ));
                    <$item as ToSchema>::schemas(schemas);
                }
            }
        )*};
    }

    /// Declare the string enumerations of fields the code keeps as plain strings, with the
    /// field's description, inlined where they are used
    /// (`#[schema(value_type = schemas::CaKind, inline)]`; the field's own comment is not a
    /// doc comment, which would wrap the enumeration in an `allOf`).
    macro_rules! string_enum {
        ($($name:ident: [$($value:literal),* $(,)?] $(= $description:literal)?),* $(,)?) => {$(
            #[doc = concat!("One of: ", $("`", $value, "` ",)* ".")]
            pub(crate) struct $name;

            impl PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([$($value),*]))
                        .description(None::<&str>$(.or(Some($description)))?)
                        .into()
                }
            }

            impl ToSchema for $name {}
        )*};
    }

    string_enum!(
        CreateDestinationRequestKind: ["aws_acm", "azure_key_vault"],
        CaKind: ["root", "intermediate", "imported", "external"] = "How the CA came to be (the `type` it was created with, or `imported`).",
        CaStatus: ["active", "pending", "disabled"] = "`pending`: an `external` CA waiting for its certificate. Only `active` CAs sign.",
        CertificateStatus: ["valid", "expired", "revoked"] = "`expired`: not revoked but past `not_after`.",
        ManagedVersionStatus: ["valid", "expired", "revoked"],
        BindingKind: ["aws_acm", "azure_key_vault"],
        ManagedEventKind: ["issued", "renewed", "renewal_failed", "synced", "sync_failed", "revoked"],
        ManagedCertificateStatus: ["active", "revoked"] = "`revoked`: no more renewals or pushes.",
        DestinationKind: ["aws_acm", "azure_key_vault"],
    );

    /// The state of a scan, a component of its own (the field keeps its doc comment).
    pub(crate) struct ScanStatus;

    impl PartialSchema for ScanStatus {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([
                    "queued",
                    "running",
                    "succeeded",
                    "failed",
                    "cancelled",
                ]))
                .into()
        }
    }

    impl ToSchema for ScanStatus {}

    /// A key type certkeeper can generate: the names of `KeyAlgorithm::GENERATABLE`.
    pub(crate) struct KeyAlgorithm;

    impl PartialSchema for KeyAlgorithm {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "A key type certkeeper can generate. Aliases such as `p256` or `rsa2048` \
                     are accepted on input; answers use these names.",
                ))
                .enum_values(Some(generatable()))
                .into()
        }
    }

    impl ToSchema for KeyAlgorithm {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("KeyAlgorithm")
        }
    }

    /// A subscriber key type: a generatable one, `ecdsa-p521`, or RSA of another size.
    pub(crate) struct KeyType;

    impl PartialSchema for KeyType {
        fn schema() -> RefOr<Schema> {
            let mut recognised = generatable();
            recognised.push(certkeeper_ca::KeyAlgorithm::EcdsaP521.to_string());
            AnyOfBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "A subscriber key type: one certkeeper can generate, `ecdsa-p521`, or RSA \
                     of another size (`rsa-<bits>`, 1024-16384), as found in CSRs.",
                ))
                .item(
                    ObjectBuilder::new()
                        .schema_type(SchemaType::AnyValue)
                        .enum_values(Some(recognised)),
                )
                .item(
                    ObjectBuilder::new()
                        .schema_type(SchemaType::AnyValue)
                        .pattern(Some("^rsa-[0-9]+$")),
                )
                .into()
        }
    }

    impl ToSchema for KeyType {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("KeyType")
        }
    }

    /// The names of the key types certkeeper generates.
    fn generatable() -> Vec<String> {
        certkeeper_ca::KeyAlgorithm::GENERATABLE
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Any JSON object.
    pub(crate) struct AnyObject;

    impl PartialSchema for AnyObject {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new().schema_type(Type::Object).into()
        }
    }

    impl ToSchema for AnyObject {}

    /// The RFC 7807 problem document, derived from the type `crate::problem` answers with.
    pub(crate) use crate::problem::Problem;

    named!(
        RevokeRequest,
        RevocationReason,
        AlertChannel,
        AlertOutboxEntry,
        AlertRule,
        CreateAlertChannelRequest,
        CreateAlertRuleRequest,
        CreateProfileRequest,
        Profile,
        UpdateProfileRequest,
    );

    items_of!(
        ItemsOfDiscoveredCertificate: crate::store::InventoryCertificate,
        ItemsOfDiscoveredEndpoint: crate::store::InventoryEndpoint,
        ItemsOfObservation: certkeeper_discovery::Observation,
        ItemsOfScan: crate::store::ScanRecord,
        ItemsOfScanSchedule: crate::store::ScheduleRecord,
    );
}

/// Names under which operations refer to the shared responses in `components/responses`.
pub(super) mod responses {
    use utoipa::ToResponse;
    use utoipa::openapi::response::Response;
    use utoipa::openapi::{Ref, RefOr};

    /// Declare the shared responses operations refer to by name.
    macro_rules! named {
        ($($name:ident),* $(,)?) => {$(
            #[doc = concat!("The `", stringify!($name), "` shared response.")]
            pub(crate) struct $name;

            impl ToResponse<'static> for $name {
                fn response() -> (&'static str, RefOr<Response>) {
                    let name = stringify!($name);
                    (name, Ref::from_response_name(name).into())
                }
            }
        )*};
    }

    named!(
        Unauthorized,
        PayloadTooLarge,
        UnsupportedMediaType,
        InternalError,
    );
}

/// The API reference page: Swagger UI, served from the files built into the binary, drawing
/// the document at `document_url`.
pub(super) fn reference_page(path: &'static str, document_url: &'static str) -> Router<AppState> {
    Router::from(SwaggerUi::new(path).config(Config::from(document_url)))
}
