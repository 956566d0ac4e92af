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
//! settings, and two builders for the few schemas written in Rust beside their type:
//! [`extend_object`] (a record's schema with more fields, e.g. a profile's policy with its
//! id and CA) and the string enumerations of fields the code keeps as plain strings
//! ([`schemas`]).

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json, Router};
use certkeeper_ca::{CaSpec, KeyAlgorithm};
use serde_json::{Map, Value, json};
use utoipa::PartialSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, Type};
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
            {"name": "Issuers", "description": "Where certificates come from: our CAs and external ACME CAs that certkeeper orders from on its users' behalf."},
            {"name": "EST", "description": "EST (RFC 7030) labels and credentials (admin only); enrollment itself is under /.well-known/est/ on the HTTPS listener."},
            {"name": "Managed certificates", "description": "Certificates the server issues, renews and pushes to cloud destinations."},
            {"name": "Agents", "description": "Host agents (`certkeeper agent`) with an `agent` token: fetch the current version of the managed certificates the token was given, with their keys, and report what they deployed."},
            {"name": "Destinations", "description": "Where managed certificates are pushed: AWS Certificate Manager, AWS Secrets Manager, AWS load balancer listeners, Azure Key Vault, Cloudflare custom certificates."},
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
                    "description": "An API token (`ck_...`) in `Authorization: Bearer <token>`. Roles: `admin` may do everything; `issuer` may read CAs, profiles and certificates and issue or revoke under its `profiles`; `viewer` may read CAs, profiles and certificates; `agent` may only fetch the managed certificates in its `managed` list (with their keys) and report their deployment under `/agent`. The admin token made on first start is in `<data_dir>/admin.token`."
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
// components/responses

fn error_responses(max_body_bytes: usize) -> Value {
    let problem = |description: String| {
        json!({
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
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

/// The object schema of `T` with more properties, each `(name, schema, required)`: the
/// schema of a body that adds fields to a record's. (A `#[serde(flatten)]` field would give
/// an `allOf`, which a record that refuses unknown fields could never satisfy.)
pub(super) fn extend_object<T: PartialSchema>(
    properties: impl IntoIterator<Item = (&'static str, RefOr<Schema>, bool)>,
    description: &str,
) -> Object {
    let RefOr::T(Schema::Object(mut object)) = T::schema() else {
        unreachable!("a record derives an object schema")
    };
    for (name, schema, required) in properties {
        object.properties.insert(name.to_string(), schema);
        if required && !object.required.iter().any(|r| r == name) {
            object.required.push(name.to_string());
        }
    }
    object.description = Some(description.to_string());
    object
}

/// A string property with a description (`format`: `date-time` for times).
pub(super) fn string_property(description: &str, date_time: bool) -> RefOr<Schema> {
    let s = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description));
    if date_time {
        s.format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into()
    } else {
        s.into()
    }
}

/// The schema of a record as it is answered when it is created: the record's schema with
/// one more required string property, the secret that is shown only then.
pub(super) fn with_secret<T: PartialSchema>(
    secret: &'static str,
    secret_description: &str,
    description: &str,
) -> RefOr<Schema> {
    let object = extend_object::<T>(
        [(secret, string_property(secret_description, false), true)],
        description,
    );
    RefOr::T(Schema::Object(object))
}

/// Names under which operations refer to the component schemas of the document.
///
/// Each type stands for the schema of the same name in `components/schemas`; an attribute
/// that names one (`content((schemas::Ca = "application/json"))`) refers to that component.
pub(crate) mod schemas {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::{PartialSchema, ToSchema};

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
        CreateDestinationRequestKind: ["aws_acm", "aws_secrets_manager", "aws_elb", "azure_key_vault", "cloudflare"],
        CaKind: ["root", "intermediate", "imported", "external"] = "How the CA came to be (the `type` it was created with, or `imported`).",
        CaStatus: ["active", "pending", "disabled"] = "`pending`: an `external` CA waiting for its certificate. Only `active` CAs sign.",
        CertificateStatus: ["valid", "expired", "revoked"] = "`expired`: not revoked but past `not_after`.",
        ManagedVersionStatus: ["valid", "expired", "revoked"],
        BindingKind: ["aws_acm", "aws_secrets_manager", "aws_elb", "azure_key_vault", "cloudflare"],
        ManagedEventKind: ["issued", "renewed", "renewal_failed", "issuance_failed", "synced", "sync_failed", "revoked", "deployed", "deployment_failed", "deployment_stale"],
        ManagedCertificateStatus: ["active", "revoked"] = "`revoked`: no more renewals or pushes.",
        DestinationKind: ["aws_acm", "aws_secrets_manager", "aws_elb", "azure_key_vault", "cloudflare"],
        OutboxStatus: ["pending", "delivered", "dead"],
        DeploymentPlaceKind: ["destination", "host", "endpoint"],
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
