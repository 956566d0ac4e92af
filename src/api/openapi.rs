//! `GET /api/v1/openapi.json`: an OpenAPI 3.1 description of every route the server has,
//! the REST API under `/api/v1` and the public endpoints (AIA, CRL, OCSP, health, metrics).
//!
//! The document is written by hand from the handlers in this module's siblings and in
//! `crate::public`; `tests/openapi.rs` checks that every documented operation is answered by
//! a real route and that every registered route is documented. Defaults are taken from the
//! code they describe (`Profile`, `CaSpec`, `KeyAlgorithm::GENERATABLE`, the settings) so
//! that they cannot drift.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use certkeeper_ca::{CaSpec, KeyAlgorithm, Profile};
use serde_json::{Map, Value, json};

use crate::server::AppState;

/// Routes.
pub(super) fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(serve))
}

async fn serve(State(state): State<AppState>) -> axum::Json<Value> {
    let s = state.pki.settings();
    axum::Json(document(&Facts {
        public_url: &s.server.public_url,
        ca_key_algorithm: s.ca.key_algorithm,
        max_body_bytes: s.server.max_body_bytes,
    }))
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
fn document(f: &Facts<'_>) -> Value {
    let mut paths = Map::new();
    for group in [
        ca_paths(),
        profile_paths(),
        certificate_paths(),
        token_paths(),
        est_paths(),
        acme_paths(),
        alert_paths(),
        audit_paths(),
        managed_paths(),
        discovery_paths(),
        meta_paths(),
        public_paths(f.public_url),
    ] {
        paths.extend(group);
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
            "schemas": schemas(f)
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

/// A reference to a shared error response, with an operation-specific description.
fn err(name: &str, why: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}"), "description": why})
}

fn unauthorized() -> Value {
    json!({"$ref": "#/components/responses/Unauthorized"})
}

fn internal() -> Value {
    json!({"$ref": "#/components/responses/InternalError"})
}

fn payload_too_large() -> Value {
    json!({"$ref": "#/components/responses/PayloadTooLarge"})
}

fn unsupported_media_type() -> Value {
    json!({"$ref": "#/components/responses/UnsupportedMediaType"})
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// A response whose body is text (PEM, metrics, health).
fn text_response(description: &str, media_type: &str) -> Value {
    json!({"description": description, "content": {media_type: {"schema": {"type": "string"}}}})
}

/// A response whose body is binary DER.
fn binary_response(description: &str, media_type: &str) -> Value {
    json!({"description": description, "content": {media_type: {}}})
}

fn json_body(schema: &str, description: &str) -> Value {
    json!({
        "required": true,
        "description": description,
        "content": {"application/json": {"schema": schema_ref(schema)}}
    })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": {"type": "string"}
    })
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({
        "name": name,
        "in": "query",
        "required": false,
        "description": description,
        "schema": schema
    })
}

fn object(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn generatable_key_types() -> Vec<String> {
    KeyAlgorithm::GENERATABLE
        .iter()
        .map(ToString::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------
// /api/v1/cas

fn ca_id_param() -> Value {
    path_param("id", "The CA's id or its name.")
}

fn ca_paths() -> Map<String, Value> {
    object(vec![
        (
            "/api/v1/cas",
            json!({
                "get": {
                    "operationId": "listCas",
                    "tags": ["CAs"],
                    "summary": "List CAs",
                    "description": "Every CA, oldest first, without certificates, chains or CSRs. Any valid token.",
                    "responses": {
                        "200": json_response("The CAs.", json!({"type": "array", "items": schema_ref("Ca")})),
                        "401": unauthorized(),
                        "500": internal()
                    }
                },
                "post": {
                    "operationId": "createCa",
                    "tags": ["CAs"],
                    "summary": "Create a CA",
                    "description": "Creates a self-signed root (`type: root`, no `parent`), an intermediate signed by one of our active CAs (`type: intermediate` with `parent`), or a pending CA whose certificate will be signed elsewhere (`type: external`, no `parent`; the answer has `status: pending` and a `csr`). Admin token.",
                    "requestBody": json_body("CreateCaRequest", "The new CA."),
                    "responses": {
                        "201": json_response("The new CA, with its certificate and chain (or, for `external`, its CSR).", schema_ref("Ca")),
                        "400": err("BadRequest", "Invalid body: missing or unknown fields, empty `common_name`, a bad `name`, `parent` missing for an intermediate or given for another type, a key type that cannot be generated, `validity_days` outside 1-36500, or a `path_len` the parent forbids."),
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token is not an admin token."),
                        "404": err("NotFound", "The `parent` CA does not exist."),
                        "409": err("Conflict", "A CA with this name exists, or the `parent` CA is not active."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/cas/import",
            json!({
                "post": {
                    "operationId": "importCa",
                    "tags": ["CAs"],
                    "summary": "Import a CA",
                    "description": "Imports an existing CA certificate (optionally followed by its chain) and its private key; the CA gets `kind: imported`. Admin token.",
                    "requestBody": json_body("ImportCaRequest", "The CA certificate and key."),
                    "responses": {
                        "201": json_response("The imported CA.", schema_ref("Ca")),
                        "400": err("BadRequest", "Invalid body or name, an unparseable certificate or key, a key that does not match the certificate, or a certificate that is not a usable CA."),
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token is not an admin token."),
                        "409": err("Conflict", "A CA with this name exists."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/cas/{id}",
            json!({
                "parameters": [ca_id_param()],
                "get": {
                    "operationId": "getCa",
                    "tags": ["CAs"],
                    "summary": "Get a CA",
                    "description": "One CA with its certificate and chain (when it has a certificate) and its CSR (while pending). Any valid token.",
                    "responses": {
                        "200": json_response("The CA.", schema_ref("Ca")),
                        "401": unauthorized(),
                        "404": err("NotFound", "No such CA."),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/cas/{id}/csr",
            json!({
                "parameters": [ca_id_param()],
                "get": {
                    "operationId": "getCaCsr",
                    "tags": ["CAs"],
                    "summary": "Get a pending CA's CSR",
                    "description": "The certificate signing request of a pending (`external`) CA, to be signed by another CA. Any valid token.",
                    "responses": {
                        "200": text_response("The CSR, PEM (`-----BEGIN CERTIFICATE REQUEST-----`).", "application/x-pem-file"),
                        "401": unauthorized(),
                        "404": err("NotFound", "No such CA."),
                        "409": err("Conflict", "The CA is not pending, so it has no CSR."),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/cas/{id}/certificate",
            json!({
                "parameters": [ca_id_param()],
                "post": {
                    "operationId": "installCaCertificate",
                    "tags": ["CAs"],
                    "summary": "Install a pending CA's certificate",
                    "description": "Installs the externally signed certificate of a pending CA, which becomes active. Admin token.",
                    "requestBody": json_body("InstallCaCertificateRequest", "The signed certificate."),
                    "responses": {
                        "200": json_response("The CA, now active.", schema_ref("Ca")),
                        "400": err("BadRequest", "Invalid body, an unparseable certificate, a certificate that does not match the CA's key, or one that is not a usable CA."),
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token is not an admin token."),
                        "404": err("NotFound", "No such CA."),
                        "409": err("Conflict", "The CA is not pending a certificate."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/cas/{id}/crl",
            json!({
                "parameters": [ca_id_param()],
                "get": {
                    "operationId": "getCaCrl",
                    "tags": ["CAs"],
                    "summary": "Get a CA's CRL",
                    "description": "The CA's current CRL, regenerated first when it is missing or past half its life. Any valid token. The same CRL is public at `/crl/{id}.crl`.",
                    "parameters": [
                        query_param("format", "`der` (default) or `pem`.", json!({"type": "string", "enum": ["der", "pem"], "default": "der"}))
                    ],
                    "responses": {
                        "200": {
                            "description": "The CRL: DER for `format=der`, PEM (`-----BEGIN X509 CRL-----`) for `format=pem`.",
                            "content": {
                                "application/pkix-crl": {},
                                "application/x-pem-file": {"schema": {"type": "string"}}
                            }
                        },
                        "400": err("BadRequest", "`format` is not `der` or `pem`."),
                        "401": unauthorized(),
                        "404": err("NotFound", "No such CA."),
                        "409": err("Conflict", "The CA is not active (a pending CA has no CRL)."),
                        "500": internal()
                    }
                }
            }),
        ),
    ])
}

// ---------------------------------------------------------------------------------------
// /api/v1/profiles

fn profile_paths() -> Map<String, Value> {
    object(vec![
        (
            "/api/v1/profiles",
            json!({
                "get": {
                    "operationId": "listProfiles",
                    "tags": ["Profiles"],
                    "summary": "List profiles",
                    "description": "Every profile, by name. Any valid token.",
                    "responses": {
                        "200": json_response("The profiles.", json!({"type": "array", "items": schema_ref("Profile")})),
                        "401": unauthorized(),
                        "500": internal()
                    }
                },
                "post": {
                    "operationId": "createProfile",
                    "tags": ["Profiles"],
                    "summary": "Create a profile",
                    "description": "Creates a profile signed by an active CA. Every policy field has a default. Admin token.",
                    "requestBody": json_body("CreateProfileRequest", "The profile's CA and policy."),
                    "responses": {
                        "201": json_response("The new profile.", schema_ref("Profile")),
                        "400": err("BadRequest", "Not a JSON object, `ca` missing or not a string, no such CA, the CA is not active, invalid or unknown policy fields, or a policy that contradicts itself (`name`, `max_validity_days`, `default_validity_days`, `allowed_key_types`, `max_names`)."),
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token is not an admin token."),
                        "409": err("Conflict", "A profile with this name exists."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/profiles/{name}",
            json!({
                "parameters": [path_param("name", "The profile's name or id.")],
                "get": {
                    "operationId": "getProfile",
                    "tags": ["Profiles"],
                    "summary": "Get a profile",
                    "description": "Any valid token.",
                    "responses": {
                        "200": json_response("The profile.", schema_ref("Profile")),
                        "401": unauthorized(),
                        "404": err("NotFound", "No such profile."),
                        "500": internal()
                    }
                },
                "put": {
                    "operationId": "updateProfile",
                    "tags": ["Profiles"],
                    "summary": "Replace a profile's policy",
                    "description": "Replaces the whole policy: fields left out take their defaults again (this is not a merge). The name cannot change; `ca` is kept when left out. Admin token.",
                    "requestBody": json_body("UpdateProfileRequest", "The new policy, and optionally a new CA."),
                    "responses": {
                        "200": json_response("The updated profile.", schema_ref("Profile")),
                        "400": err("BadRequest", "Not a JSON object, `ca` not a string, no such CA, the CA is not active, `name` differs from the profile's name, invalid or unknown policy fields, or a policy that contradicts itself."),
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token is not an admin token."),
                        "404": err("NotFound", "No such profile."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                },
                "delete": {
                    "operationId": "deleteProfile",
                    "tags": ["Profiles"],
                    "summary": "Delete a profile",
                    "description": "Certificates issued under it keep its name. Admin token.",
                    "responses": {
                        "204": {"description": "Deleted."},
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token is not an admin token."),
                        "404": err("NotFound", "No such profile."),
                        "500": internal()
                    }
                }
            }),
        ),
    ])
}

// ---------------------------------------------------------------------------------------
// /api/v1/certificates

fn cert_id_param() -> Value {
    path_param("id", "The certificate's id.")
}

fn certificate_paths() -> Map<String, Value> {
    object(vec![
        (
            "/api/v1/certificates",
            json!({
                "get": {
                    "operationId": "listCertificates",
                    "tags": ["Certificates"],
                    "summary": "Search certificates",
                    "description": "Certificates matching every given filter, newest first, a page at a time (without the PEM). Unknown query parameters are refused. Any valid token.",
                    "parameters": [
                        query_param("ca", "Issuing CA, by id or name (an unknown CA is a 400).", json!({"type": "string"})),
                        query_param("profile", "Profile name.", json!({"type": "string"})),
                        query_param("status", "`valid`: not revoked and not expired; `expired`: not revoked but past `not_after`; `revoked`.", json!({"type": "string", "enum": ["valid", "expired", "revoked"]})),
                        query_param("san", "A DNS name or IP address in the certificate; `*.example.com` or `.example.com` matches every name below `example.com`.", json!({"type": "string"})),
                        query_param("serial", "Serial number in hex; colons and upper case are accepted.", json!({"type": "string"})),
                        query_param("expiring_before", "Only certificates whose `not_after` is before this time (RFC 3339; percent-encode a `+` offset).", json!({"type": "string", "format": "date-time"})),
                        query_param("limit", "Page size.", json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": 1000, "default": 50})),
                        query_param("cursor", "The `next_cursor` of the previous page (opaque).", json!({"type": "string"}))
                    ],
                    "responses": {
                        "200": json_response("A page of certificates.", schema_ref("CertificatePage")),
                        "400": err("BadRequest", "A malformed or unknown query parameter, `limit` outside 1-1000, an unknown `status` or `ca`, or a malformed cursor."),
                        "401": unauthorized(),
                        "500": internal()
                    }
                },
                "post": {
                    "operationId": "issueCertificate",
                    "tags": ["Certificates"],
                    "summary": "Issue a certificate for a CSR",
                    "description": "Signs a CSR under a profile. The names come from the CSR's subjectAltName extension (and its CN); the profile decides what is allowed. An admin token, or an issuer token that lists the profile.",
                    "requestBody": json_body("IssueCertificateRequest", "The CSR and profile."),
                    "responses": {
                        "201": json_response("The issued certificate with its chain.", schema_ref("IssuedCertificate")),
                        "400": err("BadRequest", "Invalid body, no such profile, an unusable CSR (`bad-csr`), both `validity_days` and `not_after`, or `validity_days` 0."),
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token may not use this profile (`forbidden`), or the profile refused the request (`policy-violation`, with `profile` and `rule`)."),
                        "409": err("Conflict", "The profile's CA is not active."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/certificates/generate",
            json!({
                "post": {
                    "operationId": "generateCertificate",
                    "tags": ["Certificates"],
                    "summary": "Generate a key and issue a certificate for it",
                    "description": "Generates the subscriber key on the server and issues a certificate for the given names. The key is returned once, as PEM (`format: pem`) or inside a password-protected PKCS#12 (`format: pkcs12`); with `managed: true` the server also keeps it, sealed. An admin token, or an issuer token that lists the profile.",
                    "requestBody": json_body("GenerateCertificateRequest", "The names, key type and profile."),
                    "responses": {
                        "201": json_response("The issued certificate with its chain and the new key (`private_key` or `pkcs12`).", schema_ref("IssuedCertificate")),
                        "400": err("BadRequest", "Invalid body, no such profile, `format: pkcs12` without a `password` of at least 4 characters, a `password` with `format: pem`, a key type that cannot be generated, both `validity_days` and `not_after`, or `validity_days` 0."),
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token may not use this profile (`forbidden`), or the profile refused the request (`policy-violation`, with `profile` and `rule`)."),
                        "409": err("Conflict", "The profile's CA is not active."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/certificates/{id}",
            json!({
                "parameters": [cert_id_param()],
                "get": {
                    "operationId": "getCertificate",
                    "tags": ["Certificates"],
                    "summary": "Get a certificate",
                    "description": "One certificate with its PEM. Any valid token.",
                    "responses": {
                        "200": json_response("The certificate.", schema_ref("Certificate")),
                        "401": unauthorized(),
                        "404": err("NotFound", "No such certificate."),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/certificates/{id}/pem",
            json!({
                "parameters": [cert_id_param()],
                "get": {
                    "operationId": "getCertificatePem",
                    "tags": ["Certificates"],
                    "summary": "Download a certificate as PEM",
                    "description": "Any valid token.",
                    "responses": {
                        "200": text_response("The certificate, PEM.", "application/x-pem-file"),
                        "401": unauthorized(),
                        "404": err("NotFound", "No such certificate."),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/certificates/{id}/der",
            json!({
                "parameters": [cert_id_param()],
                "get": {
                    "operationId": "getCertificateDer",
                    "tags": ["Certificates"],
                    "summary": "Download a certificate as DER",
                    "description": "Any valid token.",
                    "responses": {
                        "200": binary_response("The certificate, DER.", "application/pkix-cert"),
                        "401": unauthorized(),
                        "404": err("NotFound", "No such certificate."),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/certificates/{id}/chain",
            json!({
                "parameters": [cert_id_param()],
                "get": {
                    "operationId": "getCertificateChain",
                    "tags": ["Certificates"],
                    "summary": "Download a certificate with its chain",
                    "description": "The certificate followed by its issuer chain, nearest first, without the root (the client's trust anchor) when the chain ends in one. Any valid token.",
                    "responses": {
                        "200": text_response("The certificate and intermediates, PEM.", "application/pem-certificate-chain"),
                        "401": unauthorized(),
                        "404": err("NotFound", "No such certificate."),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/certificates/{id}/revoke",
            json!({
                "parameters": [cert_id_param()],
                "post": {
                    "operationId": "revokeCertificate",
                    "tags": ["Certificates"],
                    "summary": "Revoke a certificate",
                    "description": "Revokes the certificate and regenerates its CA's CRL. A JSON body is required; `{}` revokes with reason `unspecified`. An admin token, or an issuer token that lists the certificate's profile.",
                    "requestBody": json_body("RevokeRequest", "The revocation reason."),
                    "responses": {
                        "200": json_response("The revoked certificate (without its PEM).", schema_ref("Certificate")),
                        "400": err("BadRequest", "Invalid body, or an unknown or disallowed reason (7 is unassigned, 8 is removeFromCRL)."),
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token may not use the certificate's profile."),
                        "404": err("NotFound", "No such certificate."),
                        "409": err("Conflict", "The certificate is already revoked, or its CA is not active so no CRL can be signed."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
    ])
}

// ---------------------------------------------------------------------------------------
// /api/v1/tokens, /api/v1/audit, /api/v1/openapi.json

fn token_paths() -> Map<String, Value> {
    object(vec![
        (
            "/api/v1/tokens",
            json!({
                "get": {
                    "operationId": "listTokens",
                    "tags": ["Tokens"],
                    "summary": "List tokens",
                    "description": "Every token, revoked and expired ones included, oldest first; never the secrets. Admin token.",
                    "responses": {
                        "200": json_response("The tokens.", json!({"type": "array", "items": schema_ref("Token")})),
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token is not an admin token."),
                        "500": internal()
                    }
                },
                "post": {
                    "operationId": "createToken",
                    "tags": ["Tokens"],
                    "summary": "Create a token",
                    "description": "Creates a token; its secret is in the answer and never shown again. Admin token.",
                    "requestBody": json_body("CreateTokenRequest", "The new token."),
                    "responses": {
                        "201": json_response("The token and its secret.", schema_ref("TokenCreated")),
                        "400": err("BadRequest", "Invalid body, a name that is empty or over 100 characters, an issuer token without `profiles`, `profiles` on another role, an unknown profile, or `expires_in_days` 0."),
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token is not an admin token."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/tokens/{id}",
            json!({
                "parameters": [path_param("id", "The token's id (not its secret).")],
                "delete": {
                    "operationId": "revokeToken",
                    "tags": ["Tokens"],
                    "summary": "Revoke a token",
                    "description": "The token stops working at once; it stays listed with `revoked_at`. Admin token.",
                    "responses": {
                        "204": {"description": "Revoked."},
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token is not an admin token."),
                        "404": err("NotFound", "No such token, or it is already revoked."),
                        "500": internal()
                    }
                }
            }),
        ),
    ])
}

fn audit_paths() -> Map<String, Value> {
    object(vec![(
        "/api/v1/audit",
        json!({
            "get": {
                "operationId": "listAudit",
                "tags": ["Audit"],
                "summary": "Read the audit log",
                "description": "Audit entries, newest first, a page at a time. Unknown query parameters are refused. Admin token.",
                "parameters": [
                    query_param("action", "Only this action (`ca.create`, `certificate.issue`, `certificate.revoke`, `profile.update`, `token.create`, ...).", json!({"type": "string"})),
                    query_param("before", "Only entries with an id below this (the previous page's `next_before`).", json!({"type": "integer", "format": "int64"})),
                    query_param("limit", "Page size.", json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": 1000, "default": 100}))
                ],
                "responses": {
                    "200": json_response("A page of audit entries.", schema_ref("AuditPage")),
                    "400": err("BadRequest", "A malformed or unknown query parameter, or `limit` outside 1-1000."),
                    "401": unauthorized(),
                    "403": err("Forbidden", "The token is not an admin token."),
                    "500": internal()
                }
            }
        }),
    )])
}

// ---------------------------------------------------------------------------------------
// /api/v1/discovery

fn items_of(name: &str) -> Value {
    json!({
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": schema_ref(name)}}
    })
}

fn reader_get(id: &str, summary: &str, description: &str, ok: Value, not_found: bool) -> Value {
    let mut responses = json!({
        "200": ok,
        "401": unauthorized(),
        "500": internal()
    });
    if not_found {
        responses["404"] = err("NotFound", "No such scan.");
    }
    json!({
        "operationId": id,
        "tags": ["Discovery"],
        "summary": summary,
        "description": format!("{description} Any token."),
        "responses": responses
    })
}

fn discovery_paths() -> Map<String, Value> {
    object(vec![
        (
            "/api/v1/discovery/scans",
            json!({
                "get": {
                    "operationId": "listScans",
                    "tags": ["Discovery"],
                    "summary": "List scans",
                    "description": "Scans, newest first. Any token.",
                    "parameters": [
                        query_param("limit", "How many.", json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": 1000, "default": 100}))
                    ],
                    "responses": {
                        "200": json_response("The scans.", items_of("Scan")),
                        "400": err("BadRequest", "A malformed or unknown query parameter, or `limit` outside 1-1000."),
                        "401": unauthorized(),
                        "500": internal()
                    }
                },
                "post": {
                    "operationId": "startScan",
                    "tags": ["Discovery"],
                    "summary": "Start a scan",
                    "description": "Resolves host names, checks every target against the `discovery.allow` networks, records the scan and runs it in the background; poll the scan for progress. When it finishes, the inventory is updated and the scan's `changes` say what changed at the endpoints it covered. Admin token.",
                    "requestBody": json_body("ScanRequest", "What to scan."),
                    "responses": {
                        "202": json_response("The scan, running.", schema_ref("Scan")),
                        "400": err("BadRequest", "Invalid body, no targets, a malformed target, port list or STARTTLS override, or a host name that does not resolve."),
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token is not an admin token, or a target lies outside the `discovery.allow` networks."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/discovery/scans/{id}",
            json!({
                "parameters": [path_param("id", "The scan's id.")],
                "get": reader_get("getScan", "Get a scan", "Status, progress, and (when finished) the changes.", json_response("The scan.", schema_ref("Scan")), true)
            }),
        ),
        (
            "/api/v1/discovery/scans/{id}/results",
            json!({
                "parameters": [path_param("id", "The scan's id.")],
                "get": reader_get("getScanResults", "Get a scan's results", "What the scan saw at every endpoint that accepted a connection (refused ones are not kept), by address, port and name; empty until the scan finishes.", json_response("The results.", items_of("Observation")), true)
            }),
        ),
        (
            "/api/v1/discovery/certificates",
            json!({
                "get": reader_get("listDiscoveredCertificates", "List discovered certificates", "Every certificate any scan has found, once per fingerprint, soonest expiry first.", json_response("The certificates.", items_of("DiscoveredCertificate")), false)
            }),
        ),
        (
            "/api/v1/discovery/endpoints",
            json!({
                "get": reader_get("listDiscoveredEndpoints", "List discovered endpoints", "Every address, port and server name where a scan found a certificate, with the certificate it served when last seen.", json_response("The endpoints.", items_of("DiscoveredEndpoint")), false)
            }),
        ),
        (
            "/api/v1/discovery/schedules",
            json!({
                "get": {
                    "operationId": "listScanSchedules",
                    "tags": ["Discovery"],
                    "summary": "List scheduled scans",
                    "description": "By name. Any token.",
                    "responses": {
                        "200": json_response("The schedules.", items_of("ScanSchedule")),
                        "401": unauthorized(),
                        "500": internal()
                    }
                },
                "post": {
                    "operationId": "createScanSchedule",
                    "tags": ["Discovery"],
                    "summary": "Save a scan with a cron schedule",
                    "description": "The server runs it at each time the cron expression (UTC) names; with several replicas, one of them runs each occurrence (a lease on the schedule's row). Admin token.",
                    "requestBody": json_body("ScanScheduleRequest", "The schedule."),
                    "responses": {
                        "201": json_response("The schedule.", schema_ref("ScanSchedule")),
                        "400": err("BadRequest", "Invalid body, an empty or over-long name, a malformed cron expression, or an invalid scan."),
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token is not an admin token, or a target lies outside the `discovery.allow` networks."),
                        "409": err("Conflict", "A schedule with this name exists."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/discovery/schedules/{id}",
            json!({
                "parameters": [path_param("id", "The schedule's id.")],
                "delete": {
                    "operationId": "deleteScanSchedule",
                    "tags": ["Discovery"],
                    "summary": "Delete a scheduled scan",
                    "description": "Its past scans stay. Admin token.",
                    "responses": {
                        "204": {"description": "Deleted."},
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token is not an admin token."),
                        "404": err("NotFound", "No such schedule."),
                        "500": internal()
                    }
                }
            }),
        ),
    ])
}

fn discovery_schemas() -> Map<String, Value> {
    let unix = |d: &str| json!({"type": "integer", "format": "int64", "description": format!("{d} (Unix seconds).")});
    let nullable_unix = |d: &str| json!({"type": ["integer", "null"], "format": "int64", "description": format!("{d} (Unix seconds).")});
    let count =
        |d: &str| json!({"type": "integer", "format": "int64", "minimum": 0, "description": d});
    let strings = |d: &str| json!({"type": "array", "items": {"type": "string"}, "description": d});
    let findings = json!({
        "type": "array",
        "description": "Findings about the chain.",
        "items": {"type": "string", "enum": ["expired", "not_yet_valid", "expiring", "self_signed", "hostname_mismatch", "weak_key", "weak_signature", "incomplete_chain", "untrusted_chain", "chain_truncated"]}
    });
    object(vec![
        (
            "ScanRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["targets"],
                "properties": {
                    "targets": strings("Addresses, CIDR blocks, ranges (`a-b`), host names (every address scanned, the name sent as SNI) and `host:port` items."),
                    "ports": {"type": ["string", "null"], "description": "Ports and ranges (`443,8443,9000-9010`), or `default` (common TLS ports, the default)."},
                    "sni": strings("Server names to try on every address target."),
                    "no_sni": {"type": "boolean", "default": false, "description": "Send no server name at all."},
                    "starttls": strings("Overrides of the protocol spoken before TLS, `proto:port` (`smtp:2525`, `none:25`). Ports 25/587 (SMTP), 143 (IMAP), 110 (POP3) and 389 (LDAP) use STARTTLS by default.")
                }
            }),
        ),
        (
            "Scan",
            json!({
                "type": "object",
                "required": ["id", "schedule_id", "spec", "status", "total", "done", "handshakes", "error", "changes", "created_at", "started_at", "finished_at", "created_by"],
                "properties": {
                    "id": {"type": "string"},
                    "schedule_id": nullable_string("The scheduled scan that started it."),
                    "spec": schema_ref("ScanRequest"),
                    "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
                    "total": count("Endpoints to probe."),
                    "done": count("Endpoints probed so far."),
                    "handshakes": count("TLS handshakes completed so far."),
                    "error": nullable_string("Why it failed."),
                    "changes": {"anyOf": [schema_ref("ScanChanges"), {"type": "null"}]},
                    "created_at": unix("When created"),
                    "started_at": nullable_unix("When it started"),
                    "finished_at": nullable_unix("When it finished"),
                    "created_by": {"type": "string", "description": "The token that started it, or `system`."}
                }
            }),
        ),
        (
            "ScanChanges",
            json!({
                "type": "object",
                "description": "What changed at the endpoints the scan covered since they were last scanned.",
                "required": ["new_certificates", "new_endpoints", "changed", "gone", "expired"],
                "properties": {
                    "new_certificates": {"type": "array", "description": "Certificates never seen before: `fingerprint`, `subject`, `endpoint`.", "items": {"type": "object"}},
                    "new_endpoints": strings("Endpoints never seen before."),
                    "changed": {"type": "array", "description": "Endpoints now serving another certificate: `endpoint`, `previous`, `current` fingerprints.", "items": {"type": "object"}},
                    "gone": {"type": "array", "description": "Endpoints that no longer present a certificate: `endpoint`, `fingerprint`.", "items": {"type": "object"}},
                    "expired": {"type": "array", "description": "Certificates that expired since last seen: `fingerprint`, `subject`, `not_after`.", "items": {"type": "object"}}
                }
            }),
        ),
        (
            "Observation",
            json!({
                "type": "object",
                "required": ["address", "port", "sni", "starttls", "status", "error", "tls_version", "cipher_suite", "chain"],
                "properties": {
                    "address": {"type": "string"},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "sni": nullable_string("Server name sent."),
                    "starttls": {"type": ["string", "null"], "enum": ["smtp", "imap", "pop3", "ldap", null]},
                    "status": {"type": "string", "enum": ["ok", "timeout", "starttls", "tls", "io"], "description": "`ok`, or why no certificate was obtained. TLS 1.2 and 1.3 only: a server that speaks nothing newer than TLS 1.1 shows as `tls`."},
                    "error": nullable_string("The error, when not `ok`."),
                    "tls_version": nullable_string("Negotiated version (`TLSv1_3`, `TLSv1_2`)."),
                    "cipher_suite": nullable_string("Negotiated cipher suite."),
                    "chain": {"anyOf": [schema_ref("ChainReport"), {"type": "null"}]}
                }
            }),
        ),
        (
            "ChainReport",
            json!({
                "type": "object",
                "required": ["certificates", "findings", "issued_by_certkeeper", "trusted"],
                "properties": {
                    "certificates": {"type": "array", "items": schema_ref("PresentedCertificate"), "description": "As presented, leaf first."},
                    "findings": findings,
                    "issued_by_certkeeper": {"type": "boolean", "description": "The leaf chains to one of certkeeper's CAs."},
                    "trusted": {"type": "boolean", "description": "The leaf chains to a known anchor (certkeeper's CAs)."}
                }
            }),
        ),
        (
            "PresentedCertificate",
            json!({
                "type": "object",
                "required": ["fingerprint_sha256", "subject", "common_name", "issuer", "serial", "not_before", "not_after", "dns_names", "ip_addresses", "key_type", "key_bits", "signature_algorithm", "is_ca", "self_signed"],
                "properties": {
                    "fingerprint_sha256": {"type": "string"},
                    "subject": {"type": "string"},
                    "common_name": nullable_string("Subject CN."),
                    "issuer": {"type": "string"},
                    "serial": {"type": "string", "description": "Hex."},
                    "not_before": unix("Validity start"),
                    "not_after": unix("Validity end"),
                    "dns_names": strings("DNS names."),
                    "ip_addresses": strings("IP addresses."),
                    "key_type": {"type": "string", "description": "`RSA`, `EC`, `Ed25519`, ..."},
                    "key_bits": {"type": "integer", "minimum": 0},
                    "signature_algorithm": {"type": "string"},
                    "is_ca": {"type": "boolean"},
                    "self_signed": {"type": "boolean"}
                }
            }),
        ),
        (
            "DiscoveredCertificate",
            json!({
                "type": "object",
                "required": ["fingerprint", "subject", "issuer", "serial", "not_before", "not_after", "dns_names", "key_type", "key_bits", "signature_algorithm", "issued_by_certkeeper", "certificate_id", "first_seen", "last_seen"],
                "properties": {
                    "fingerprint": {"type": "string", "description": "SHA-256 of the DER, hex."},
                    "subject": {"type": "string"},
                    "issuer": {"type": "string"},
                    "serial": {"type": "string"},
                    "not_before": unix("Validity start"),
                    "not_after": unix("Validity end"),
                    "dns_names": strings("DNS names."),
                    "key_type": {"type": "string"},
                    "key_bits": {"type": "integer", "minimum": 0},
                    "signature_algorithm": {"type": "string"},
                    "issued_by_certkeeper": {"type": "boolean"},
                    "certificate_id": nullable_string("certkeeper's record of it, when certkeeper issued it."),
                    "first_seen": unix("First seen"),
                    "last_seen": unix("Last seen")
                }
            }),
        ),
        (
            "DiscoveredEndpoint",
            json!({
                "type": "object",
                "required": ["id", "address", "port", "sni", "fingerprint", "findings", "tls_version", "cipher_suite", "first_seen", "last_seen", "gone_at", "last_scan_id"],
                "properties": {
                    "id": {"type": "string"},
                    "address": {"type": "string"},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "sni": {"type": "string", "description": "Server name sent; empty for none."},
                    "fingerprint": {"type": "string", "description": "The certificate served when last seen."},
                    "findings": findings,
                    "tls_version": {"type": "string"},
                    "cipher_suite": {"type": "string"},
                    "first_seen": unix("First seen"),
                    "last_seen": unix("Last seen with a certificate"),
                    "gone_at": nullable_unix("When a scan covering it last found no certificate; null while it answers"),
                    "last_scan_id": {"type": "string"}
                }
            }),
        ),
        (
            "ScanScheduleRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "cron", "scan"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 100},
                    "cron": {"type": "string", "description": "Cron expression, 5 fields or 6 with seconds, UTC (`0 3 * * *`)."},
                    "enabled": {"type": "boolean", "default": true},
                    "scan": schema_ref("ScanRequest")
                }
            }),
        ),
        (
            "ScanSchedule",
            json!({
                "type": "object",
                "required": ["id", "name", "spec", "cron", "enabled", "next_run", "last_scan_id", "created_at", "created_by"],
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "spec": schema_ref("ScanRequest"),
                    "cron": {"type": "string"},
                    "enabled": {"type": "boolean"},
                    "next_run": unix("Next run"),
                    "last_scan_id": nullable_string("The scan it started last."),
                    "created_at": unix("When created"),
                    "created_by": {"type": "string"}
                }
            }),
        ),
    ])
}

// ---------------------------------------------------------------------------------------
// /api/v1/managed and /api/v1/destinations

fn managed_id_param() -> Value {
    path_param("id", "The managed certificate's id or name.")
}

fn managed_paths() -> Map<String, Value> {
    let admin_only = || err("Forbidden", "The token is not an admin token.");
    let issuer_for = || {
        err(
            "Forbidden",
            "The token may not use the managed certificate's profile, or profile policy refused the request.",
        )
    };
    object(vec![
        (
            "/api/v1/managed",
            json!({
                "get": {
                    "operationId": "listManaged",
                    "tags": ["Managed certificates"],
                    "summary": "List managed certificates",
                    "description": "Every managed certificate, by name, without versions, bindings or events. Any token.",
                    "responses": {
                        "200": json_response("The managed certificates.", schema_ref("ManagedList")),
                        "401": unauthorized(),
                        "500": internal()
                    }
                },
                "post": {
                    "operationId": "createManaged",
                    "tags": ["Managed certificates"],
                    "summary": "Create a managed certificate",
                    "description": "Issues version 1 with a key generated and kept (sealed) by the server, and schedules renewals. Binding `destinations` at once needs an admin token; otherwise an issuer token for the profile.",
                    "requestBody": json_body("CreateManagedRequest", "The managed certificate."),
                    "responses": {
                        "201": json_response("The managed certificate with version 1.", schema_ref("ManagedCertificate")),
                        "400": err("BadRequest", "Invalid body, name, profile, key type, validity or renewal point, or an unknown destination."),
                        "401": unauthorized(),
                        "403": issuer_for(),
                        "409": err("Conflict", "A managed certificate with this name exists."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/managed/{id}",
            json!({
                "parameters": [managed_id_param()],
                "get": {
                    "operationId": "getManaged",
                    "tags": ["Managed certificates"],
                    "summary": "Get a managed certificate",
                    "description": "With its versions (newest first), next renewal, sync status per destination and recent lifecycle events. Any token.",
                    "responses": {
                        "200": json_response("The managed certificate.", schema_ref("ManagedCertificate")),
                        "401": unauthorized(),
                        "404": err("NotFound", "No such managed certificate."),
                        "500": internal()
                    }
                },
                "delete": {
                    "operationId": "deleteManaged",
                    "tags": ["Managed certificates"],
                    "summary": "Stop managing a certificate",
                    "description": "Forgets the managed certificate, its bindings and events. Issued versions stay on record as certificates; copies at destinations are left alone. Issuer token for the profile.",
                    "responses": {
                        "204": {"description": "Deleted."},
                        "401": unauthorized(),
                        "403": issuer_for(),
                        "404": err("NotFound", "No such managed certificate."),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/managed/{id}/renew",
            json!({
                "parameters": [managed_id_param()],
                "post": {
                    "operationId": "renewManaged",
                    "tags": ["Managed certificates"],
                    "summary": "Renew now",
                    "description": "Issues a new version with a fresh key at once; destinations receive it on the next sync. Issuer token for the profile.",
                    "responses": {
                        "200": json_response("The managed certificate with its new version.", schema_ref("ManagedCertificate")),
                        "400": err("BadRequest", "The stored request is no longer valid for the profile."),
                        "401": unauthorized(),
                        "403": issuer_for(),
                        "404": err("NotFound", "No such managed certificate."),
                        "409": err("Conflict", "The certificate is revoked, or another renewal is under way."),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/managed/{id}/sync",
            json!({
                "parameters": [managed_id_param()],
                "post": {
                    "operationId": "syncManaged",
                    "tags": ["Managed certificates"],
                    "summary": "Push to destinations now",
                    "description": "Pushes the current version to every bound destination that is behind, whatever the retry schedule says. Failures are recorded on the bindings (see `bindings[].last_error`), not returned as errors. Issuer token for the profile.",
                    "responses": {
                        "200": json_response("The managed certificate with its sync status.", schema_ref("ManagedCertificate")),
                        "401": unauthorized(),
                        "403": issuer_for(),
                        "404": err("NotFound", "No such managed certificate."),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/managed/{id}/revoke",
            json!({
                "parameters": [managed_id_param()],
                "post": {
                    "operationId": "revokeManaged",
                    "tags": ["Managed certificates"],
                    "summary": "Revoke and stop renewing",
                    "description": "Revokes every valid version and stops renewals and pushes. Issuer token for the profile.",
                    "requestBody": json_body("RevokeRequest", "The revocation reason."),
                    "responses": {
                        "200": json_response("The revoked managed certificate.", schema_ref("ManagedCertificate")),
                        "400": err("BadRequest", "Invalid body or reason."),
                        "401": unauthorized(),
                        "403": issuer_for(),
                        "404": err("NotFound", "No such managed certificate."),
                        "409": err("Conflict", "Already revoked."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/managed/{id}/bindings",
            json!({
                "parameters": [managed_id_param()],
                "post": {
                    "operationId": "bindManaged",
                    "tags": ["Managed certificates"],
                    "summary": "Bind to a destination",
                    "description": "The current version is pushed to the destination by the next sync, and every later version after it. Admin token.",
                    "requestBody": json_body("BindRequest", "The destination."),
                    "responses": {
                        "201": json_response("The managed certificate with its bindings.", schema_ref("ManagedCertificate")),
                        "400": err("BadRequest", "Invalid body or unknown destination."),
                        "401": unauthorized(),
                        "403": admin_only(),
                        "404": err("NotFound", "No such managed certificate."),
                        "409": err("Conflict", "Already bound to this destination."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/managed/{id}/bindings/{destination}",
            json!({
                "parameters": [managed_id_param(), path_param("destination", "The destination's id or name.")],
                "delete": {
                    "operationId": "unbindManaged",
                    "tags": ["Managed certificates"],
                    "summary": "Remove a binding",
                    "description": "No more versions are pushed there. The copy at the destination is left alone unless `delete_remote` is true. Admin token.",
                    "parameters": [
                        query_param("delete_remote", "Delete the copy at the destination first (the ACM certificate, or the Key Vault certificate with all its versions).", json!({"type": "boolean", "default": false}))
                    ],
                    "responses": {
                        "204": {"description": "Removed."},
                        "400": err("BadRequest", "A malformed or unknown query parameter."),
                        "401": unauthorized(),
                        "403": admin_only(),
                        "404": err("NotFound", "No such managed certificate, destination or binding."),
                        "409": err("Conflict", "The destination refused or failed the delete; the binding is kept."),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/destinations",
            json!({
                "get": {
                    "operationId": "listDestinations",
                    "tags": ["Destinations"],
                    "summary": "List destinations",
                    "description": "Every cloud destination, by name; never their credentials. Any token.",
                    "responses": {
                        "200": json_response("The destinations.", schema_ref("DestinationList")),
                        "401": unauthorized(),
                        "500": internal()
                    }
                },
                "post": {
                    "operationId": "createDestination",
                    "tags": ["Destinations"],
                    "summary": "Create a destination",
                    "description": "An AWS Certificate Manager account and region, or an Azure Key Vault certificate. The configuration is checked; credentials are sealed with the master key and never shown again. Admin token.",
                    "requestBody": json_body("CreateDestinationRequest", "The destination."),
                    "responses": {
                        "201": json_response("The destination (without credentials).", schema_ref("Destination")),
                        "400": err("BadRequest", "Invalid body, kind, configuration or credentials."),
                        "401": unauthorized(),
                        "403": admin_only(),
                        "409": err("Conflict", "A destination with this name exists."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/destinations/{id}",
            json!({
                "parameters": [path_param("id", "The destination's id or name.")],
                "get": {
                    "operationId": "getDestination",
                    "tags": ["Destinations"],
                    "summary": "Get a destination",
                    "description": "Never its credentials. Any token.",
                    "responses": {
                        "200": json_response("The destination.", schema_ref("Destination")),
                        "401": unauthorized(),
                        "404": err("NotFound", "No such destination."),
                        "500": internal()
                    }
                },
                "delete": {
                    "operationId": "deleteDestination",
                    "tags": ["Destinations"],
                    "summary": "Delete a destination",
                    "description": "Only when no managed certificate is bound to it. Admin token.",
                    "responses": {
                        "204": {"description": "Deleted."},
                        "401": unauthorized(),
                        "403": admin_only(),
                        "404": err("NotFound", "No such destination."),
                        "409": err("Conflict", "Managed certificates are still bound to it."),
                        "500": internal()
                    }
                }
            }),
        ),
    ])
}

fn managed_schemas() -> Map<String, Value> {
    let managed_properties = json!({
        "id": {"type": "string", "description": "Id (UUID)."},
        "name": {"type": "string", "description": "Unique name."},
        "profile": {"type": "string", "description": "The issuing profile."},
        "status": {"type": "string", "enum": ["active", "revoked"], "description": "`revoked`: no more renewals or pushes."},
        "dns_names": {"type": "array", "items": {"type": "string"}, "description": "DNS names of every version."},
        "ip_addresses": {"type": "array", "items": {"type": "string"}, "description": "IP addresses of every version."},
        "common_name": nullable_string("Subject common name."),
        "key_algorithm": schema_ref("KeyAlgorithm"),
        "validity_days": {"type": ["integer", "null"], "description": "Validity of each version; null: the profile's maximum."},
        "renew_at_percent": {"type": ["integer", "null"], "description": "Renewal point in percent of each version's life; null: two thirds."},
        "current_version": {"type": "integer", "format": "int64", "description": "The newest version."},
        "next_renewal_at": nullable_date_time("When the next renewal (or retry after a failure) is due; null once revoked."),
        "renewal_failures": {"type": "integer", "format": "int64", "description": "Renewal failures in a row."},
        "last_error": nullable_string("The last renewal error."),
        "created_at": date_time("When created."),
        "created_by": {"type": "string", "description": "Who created it."},
        "versions": {"type": "array", "items": schema_ref("ManagedVersion"), "description": "Every version, newest first (single-object answers only)."},
        "bindings": {"type": "array", "items": schema_ref("Binding"), "description": "Sync status per destination (single-object answers only)."},
        "events": {"type": "array", "items": schema_ref("ManagedEvent"), "description": "The 50 newest lifecycle events (single-object answers only)."}
    });
    let managed_required = json!([
        "id",
        "name",
        "profile",
        "status",
        "dns_names",
        "ip_addresses",
        "common_name",
        "key_algorithm",
        "validity_days",
        "renew_at_percent",
        "current_version",
        "next_renewal_at",
        "renewal_failures",
        "last_error",
        "created_at",
        "created_by"
    ]);
    object(vec![
        (
            "CreateManagedRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "profile"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 64, "description": "Unique name: letters, digits, `-`, `_`, `.`."},
                    "profile": {"type": "string", "description": "The issuing profile (name or id)."},
                    "dns_names": {"type": "array", "items": {"type": "string"}, "default": []},
                    "ip_addresses": {"type": "array", "items": {"type": "string"}, "default": []},
                    "common_name": {"type": ["string", "null"]},
                    "key_algorithm": {"anyOf": [schema_ref("KeyAlgorithm"), {"type": "null"}], "description": "Key type of every version; default ecdsa-p256."},
                    "validity_days": {"type": ["integer", "null"], "minimum": 1, "description": "Validity of each version; default: the profile's maximum."},
                    "renew_at_percent": {"type": ["integer", "null"], "minimum": 1, "maximum": 99, "description": "Renew when this percentage of a version's life has passed; default: two thirds."},
                    "destinations": {"type": "array", "items": {"type": "string"}, "default": [], "description": "Destinations (ids or names) to bind at once; admin token."}
                }
            }),
        ),
        (
            "ManagedCertificate",
            json!({
                "type": "object",
                "description": "A managed certificate.",
                "required": managed_required,
                "properties": managed_properties
            }),
        ),
        (
            "ManagedList",
            json!({
                "type": "object",
                "required": ["items"],
                "properties": {"items": {"type": "array", "items": schema_ref("ManagedCertificate")}}
            }),
        ),
        (
            "ManagedVersion",
            json!({
                "type": "object",
                "required": ["version", "certificate_id", "serial", "not_before", "not_after", "status", "created_at"],
                "properties": {
                    "version": {"type": "integer", "format": "int64", "description": "1, 2, ..."},
                    "certificate_id": {"type": "string", "description": "The certificate (see /certificates/{id})."},
                    "serial": {"type": "string", "description": "Serial number, hex."},
                    "not_before": date_time("Start of validity."),
                    "not_after": date_time("End of validity."),
                    "status": {"type": "string", "enum": ["valid", "expired", "revoked"]},
                    "created_at": date_time("When issued.")
                }
            }),
        ),
        (
            "Binding",
            json!({
                "type": "object",
                "required": ["destination_id", "destination", "kind", "pushed_version", "in_sync", "remote_id", "remote_version", "last_error", "failures", "next_attempt_at", "updated_at"],
                "properties": {
                    "destination_id": {"type": "string"},
                    "destination": {"type": "string", "description": "The destination's name."},
                    "kind": {"type": "string", "enum": ["aws_acm", "azure_key_vault"]},
                    "pushed_version": {"type": ["integer", "null"], "description": "The newest version the destination holds."},
                    "in_sync": {"type": "boolean", "description": "Whether the destination holds the current version."},
                    "remote_id": nullable_string("The ACM certificate ARN, or the Key Vault certificate URL."),
                    "remote_version": nullable_string("The Key Vault version id, or for ACM the serial (hex) of the certificate under the ARN."),
                    "last_error": nullable_string("The last push error."),
                    "failures": {"type": "integer", "format": "int64", "description": "Push failures in a row."},
                    "next_attempt_at": nullable_date_time("When the next push is tried (null when in sync)."),
                    "updated_at": date_time("Last change.")
                }
            }),
        ),
        (
            "ManagedEvent",
            json!({
                "type": "object",
                "required": ["at", "kind", "detail"],
                "properties": {
                    "at": date_time("When."),
                    "kind": {"type": "string", "enum": ["issued", "renewed", "renewal_failed", "synced", "sync_failed", "revoked"]},
                    "detail": {"description": "Facts (any JSON value)."}
                }
            }),
        ),
        (
            "BindRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["destination"],
                "properties": {"destination": {"type": "string", "description": "The destination's id or name."}}
            }),
        ),
        (
            "CreateDestinationRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "kind", "config"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 64, "description": "Unique name: letters, digits, `-`, `_`, `.`."},
                    "kind": {"type": "string", "enum": ["aws_acm", "azure_key_vault"]},
                    "config": {
                        "type": "object",
                        "description": "aws_acm: `region`, `endpoint_url`, `tags` (all optional; region and credentials otherwise from the standard AWS chain). azure_key_vault: `vault_url`, `certificate_name` (1-127 letters, digits, `-`), `tenant_id`, `client_id`, and optionally `authority` (default https://login.microsoftonline.com), `tags`, `ca_certificate` (an extra PEM trust anchor for private endpoints)."
                    },
                    "credentials": {
                        "type": ["object", "null"],
                        "description": "aws_acm: `access_key_id`, `secret_access_key`, `session_token`? (optional). azure_key_vault: `client_secret` (required). Sealed at rest, never shown again."
                    }
                }
            }),
        ),
        (
            "Destination",
            json!({
                "type": "object",
                "required": ["id", "name", "kind", "config", "has_credentials", "created_at", "created_by"],
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "kind": {"type": "string", "enum": ["aws_acm", "azure_key_vault"]},
                    "config": {"type": "object", "description": "The configuration (no secrets)."},
                    "has_credentials": {"type": "boolean", "description": "Whether credentials are stored (they are never shown)."},
                    "created_at": date_time("When created."),
                    "created_by": {"type": "string"}
                }
            }),
        ),
        (
            "DestinationList",
            json!({
                "type": "object",
                "required": ["items"],
                "properties": {"items": {"type": "array", "items": schema_ref("Destination")}}
            }),
        ),
    ])
}

fn acme_paths() -> Map<String, Value> {
    object(vec![
        (
            "/api/v1/acme/eab-keys",
            json!({
                "get": {
                    "operationId": "listAcmeEabKeys",
                    "tags": ["ACME"],
                    "summary": "List external account binding keys",
                    "description": "Every EAB key, newest first, without its MAC key. Admin token.",
                    "responses": {
                        "200": json_response("The keys.", json!({"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": schema_ref("EabKey")}}})),
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token is not an admin token."),
                        "500": internal()
                    }
                },
                "post": {
                    "operationId": "createAcmeEabKey",
                    "tags": ["ACME"],
                    "summary": "Create an external account binding key",
                    "description": "An HS256 key that registers one ACME account in the directory of `profile` (RFC 8555 §7.3.4). The MAC key is returned once and stored sealed. Directories listed in the `acme.eab_required` setting accept only accounts registered with such a key. Admin token.",
                    "requestBody": json_body("CreateEabKeyRequest", "The profile the key is for."),
                    "responses": {
                        "201": json_response("The key, with its MAC key (shown once).", schema_ref("CreatedEabKey")),
                        "400": err("BadRequest", "The profile has no ACME directory, or the name is too long."),
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token is not an admin token."),
                        "404": err("NotFound", "No such profile."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/acme/renewal-windows",
            json!({
                "post": {
                    "operationId": "moveAcmeRenewalWindow",
                    "tags": ["ACME"],
                    "summary": "Move the ACME renewal window of certificates",
                    "description": "Sets the `suggestedWindow` that ACME Renewal Information (RFC 9773) reports for one certificate, or for every certificate a CA issued, so that ACME clients renew early. The newest window for a certificate or its CA wins. Admin token.",
                    "requestBody": json_body("RenewalWindowRequest", "The certificates and the new window."),
                    "responses": {
                        "201": json_response("The window was recorded.", schema_ref("RenewalWindow")),
                        "400": err("BadRequest", "Neither or both of `ca` and `certificate`, or `end` not after `start`."),
                        "401": unauthorized(),
                        "403": err("Forbidden", "The token is not an admin token."),
                        "404": err("NotFound", "No such CA or certificate."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
    ])
}

fn meta_paths() -> Map<String, Value> {
    object(vec![(
        "/api/v1/openapi.json",
        json!({
            "get": {
                "operationId": "getOpenApi",
                "tags": ["Meta"],
                "summary": "This OpenAPI document",
                "description": "No authentication.",
                "security": [],
                "responses": {
                    "200": json_response("The OpenAPI 3.1 document.", json!({"type": "object"}))
                }
            }
        }),
    )])
}

// ---------------------------------------------------------------------------------------
// Public endpoints (crate::public), on both listeners.

fn public_paths(public_url: &str) -> Map<String, Value> {
    let servers = json!([
        {"url": "/", "description": "The HTTPS listener."},
        {"url": public_url, "description": "The plain-HTTP listener (the `public_url` written into certificates)."}
    ]);
    let mut paths = object(vec![
        (
            "/ca/{file}",
            json!({
                "get": {
                    "operationId": "getPublicCaCertificate",
                    "tags": ["Public"],
                    "summary": "Download a CA certificate (AIA caIssuers)",
                    "description": "The URL written into issued certificates' Authority Information Access extension. No authentication.",
                    "security": [],
                    "parameters": [{
                        "name": "file",
                        "in": "path",
                        "required": true,
                        "description": "`<ca>.crt` or `<ca>.der` for DER, `<ca>.pem` for PEM, where `<ca>` is the CA's id or name.",
                        "schema": {"type": "string", "pattern": "^.+\\.(crt|der|pem)$"},
                        "example": "root.crt"
                    }],
                    "responses": {
                        "200": {
                            "description": "The CA certificate: DER for `.crt` and `.der`, PEM for `.pem`.",
                            "content": {
                                "application/pkix-cert": {},
                                "application/x-pem-file": {"schema": {"type": "string"}}
                            }
                        },
                        "404": err("NotFound", "A file name without `.crt`, `.der` or `.pem`, no such CA, or a CA that has no certificate yet."),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/crl/{file}",
            json!({
                "get": {
                    "operationId": "getPublicCrl",
                    "tags": ["Public"],
                    "summary": "Download a CA's CRL (CRL distribution point)",
                    "description": "The CA's current CRL, regenerated first when it is missing or past half its life. The URL written into issued certificates' CRL distribution points. No authentication.",
                    "security": [],
                    "parameters": [{
                        "name": "file",
                        "in": "path",
                        "required": true,
                        "description": "`<ca>.crl`, where `<ca>` is the CA's id or name.",
                        "schema": {"type": "string", "pattern": "^.+\\.crl$"},
                        "example": "root.crl"
                    }],
                    "responses": {
                        "200": binary_response("The CRL, DER.", "application/pkix-crl"),
                        "404": err("NotFound", "A file name without `.crl`, or no such CA."),
                        "409": err("Conflict", "The CA is not active (a pending CA has no CRL)."),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/ocsp",
            json!({
                "post": {
                    "operationId": "ocspPost",
                    "tags": ["Public"],
                    "summary": "OCSP (RFC 6960), POST",
                    "description": "Answers a DER OCSP request. Problems are answered with OCSP error statuses (`malformedRequest`, `unauthorized` for certificates of no CA here, `internalError`) in a 200 response, never with an HTTP error. The request's Content-Type is not checked. No authentication.",
                    "security": [],
                    "requestBody": {
                        "required": true,
                        "description": "The DER OCSP request.",
                        "content": {"application/ocsp-request": {}}
                    },
                    "responses": {
                        "200": binary_response("The DER OCSP response.", "application/ocsp-response"),
                        "413": text_response("The request body is larger than `server.max_body_bytes` (a plain-text message, not a problem document).", "text/plain")
                    }
                }
            }),
        ),
        (
            "/ocsp/{request}",
            json!({
                "get": {
                    "operationId": "ocspGet",
                    "tags": ["Public"],
                    "summary": "OCSP (RFC 6960), GET",
                    "description": "Answers an OCSP request carried in the URL (RFC 6960 appendix A.1). Problems are answered with OCSP error statuses in a 200 response. No authentication.",
                    "security": [],
                    "parameters": [{
                        "name": "request",
                        "in": "path",
                        "required": true,
                        "description": "The base64 (standard or URL-safe, padded or not) of the DER OCSP request, URL-encoded. It may contain `/`: the rest of the path is taken.",
                        "schema": {"type": "string"}
                    }],
                    "responses": {
                        "200": binary_response("The DER OCSP response.", "application/ocsp-response")
                    }
                }
            }),
        ),
        (
            "/healthz",
            json!({
                "get": {
                    "operationId": "healthz",
                    "tags": ["Public"],
                    "summary": "Liveness",
                    "description": "Always `ok` while the process serves requests. No authentication.",
                    "security": [],
                    "responses": {
                        "200": text_response("`ok`.", "text/plain")
                    }
                }
            }),
        ),
        (
            "/readyz",
            json!({
                "get": {
                    "operationId": "readyz",
                    "tags": ["Public"],
                    "summary": "Readiness",
                    "description": "Ready when start-up has finished, the server is not shutting down, and the database answers. No authentication.",
                    "security": [],
                    "responses": {
                        "200": text_response("`ready`.", "text/plain"),
                        "503": text_response("`starting` (start-up not finished, or shutting down) or `database unreachable`.", "text/plain")
                    }
                }
            }),
        ),
        (
            "/metrics",
            json!({
                "get": {
                    "operationId": "metrics",
                    "tags": ["Public"],
                    "summary": "Prometheus metrics",
                    "description": "Counters in the Prometheus text exposition format 0.0.4 (`Content-Type: text/plain; version=0.0.4`). No authentication.",
                    "security": [],
                    "responses": {
                        "200": text_response("The metrics.", "text/plain")
                    }
                }
            }),
        ),
    ]);
    for item in paths.values_mut() {
        item["servers"] = servers.clone();
    }
    paths
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

fn schemas(f: &Facts<'_>) -> Value {
    let mut s = Map::new();
    s.insert("Problem".into(), problem_schema());
    s.extend(key_schemas());
    s.extend(ca_schemas(f.ca_key_algorithm));
    s.extend(profile_schemas());
    s.extend(certificate_schemas());
    s.extend(token_schemas());
    s.extend(est_schemas());
    s.extend(acme_schemas());
    s.extend(audit_schemas());
    s.extend(managed_schemas());
    s.extend(discovery_schemas());
    s.extend(alert_schemas());
    Value::Object(s)
}

fn problem_schema() -> Value {
    let kinds = [
        "bad-request",
        "bad-csr",
        "policy-violation",
        "unauthorized",
        "forbidden",
        "not-found",
        "conflict",
        "method-not-allowed",
        "payload-too-large",
        "unsupported-media-type",
        "internal",
    ];
    let types: Vec<String> = kinds
        .iter()
        .map(|k| format!("urn:certkeeper:problem:{k}"))
        .collect();
    json!({
        "type": "object",
        "description": "An RFC 7807 problem document.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "format": "uri", "enum": types, "description": "The kind of problem."},
            "title": {"type": "string", "description": "A fixed summary of the kind of problem."},
            "status": {"type": "integer", "description": "The HTTP status code."},
            "detail": {"type": "string", "description": "What went wrong in this case."},
            "profile": {"type": "string", "description": "Policy violations only: the profile whose rule was broken."},
            "rule": {
                "type": "string",
                "description": "Policy violations only: the rule, as named in the profile's JSON (or `ca_name_constraints`, `issuer`).",
                "examples": ["allowed_dns_names", "max_validity_days", "allowed_key_types", "ca_name_constraints"]
            }
        }
    })
}

fn key_schemas() -> Map<String, Value> {
    let generatable = generatable_key_types();
    let mut recognised = generatable.clone();
    recognised.push(KeyAlgorithm::EcdsaP521.to_string());
    object(vec![
        (
            "KeyAlgorithm",
            json!({
                "type": "string",
                "description": "A key type certkeeper can generate. Aliases such as `p256` or `rsa2048` are accepted on input; answers use these names.",
                "enum": generatable
            }),
        ),
        (
            "KeyType",
            json!({
                "type": "string",
                "description": "A subscriber key type: one certkeeper can generate, `ecdsa-p521`, or RSA of another size (`rsa-<bits>`, 1024-16384), as found in CSRs.",
                "anyOf": [
                    {"enum": recognised},
                    {"pattern": "^rsa-[0-9]+$"}
                ]
            }),
        ),
    ])
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

fn ca_schemas(ca_key_algorithm: KeyAlgorithm) -> Map<String, Value> {
    let default_validity = CaSpec::new("x", ca_key_algorithm).validity_days;
    object(vec![
        (
            "CaType",
            json!({
                "type": "string",
                "enum": ["root", "intermediate", "external"],
                "description": "`root`: self-signed; `intermediate`: signed by `parent`; `external`: pending, to be signed elsewhere."
            }),
        ),
        (
            "NameConstraints",
            json!({
                "type": "object",
                "description": "RFC 5280 name constraints written into the CA certificate.",
                "additionalProperties": false,
                "properties": {
                    "permitted_dns": {"type": "array", "items": {"type": "string"}, "default": [], "description": "DNS subtrees the CA may issue for (`example.com` covers it and every name below)."},
                    "excluded_dns": {"type": "array", "items": {"type": "string"}, "default": [], "description": "DNS subtrees the CA must not issue for."},
                    "permitted_ips": {"type": "array", "items": {"type": "string", "description": "CIDR, e.g. `10.0.0.0/8`."}, "default": [], "description": "IP ranges the CA may issue for."},
                    "excluded_ips": {"type": "array", "items": {"type": "string", "description": "CIDR."}, "default": [], "description": "IP ranges the CA must not issue for."}
                }
            }),
        ),
        (
            "CreateCaRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "type", "common_name"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$", "description": "Unique name: 1 to 64 letters, digits, `-`, `_` or `.`."},
                    "type": schema_ref("CaType"),
                    "parent": nullable_string("The signing CA's id or name; required for `intermediate`, refused for the other types."),
                    "common_name": {"type": "string", "minLength": 1, "description": "Subject CN (not blank)."},
                    "organization": nullable_string("Subject O."),
                    "country": nullable_string("Subject C (two letters)."),
                    "key_algorithm": {
                        "description": "Key type of the CA key.",
                        "default": ca_key_algorithm.to_string(),
                        "anyOf": [schema_ref("KeyAlgorithm"), {"type": "null"}]
                    },
                    "validity_days": {"type": ["integer", "null"], "minimum": 1, "maximum": 36500, "default": default_validity, "description": "Lifetime in days (an intermediate's is clamped to its parent's)."},
                    "path_len": {"type": ["integer", "null"], "minimum": 0, "maximum": 255, "description": "pathLenConstraint: how many CA levels may follow below. Unlimited when left out, or one less than the parent's limit for an intermediate."},
                    "name_constraints": {"anyOf": [schema_ref("NameConstraints"), {"type": "null"}]}
                }
            }),
        ),
        (
            "ImportCaRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "certificate", "private_key"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$", "description": "Unique name: 1 to 64 letters, digits, `-`, `_` or `.`."},
                    "certificate": {"type": "string", "description": "The CA certificate, PEM, optionally followed by the certificates above it."},
                    "private_key": {"type": "string", "description": "Its private key, PEM (PKCS#8, PKCS#1 or SEC1)."}
                }
            }),
        ),
        (
            "InstallCaCertificateRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["certificate"],
                "properties": {
                    "certificate": {"type": "string", "description": "The signed CA certificate, PEM, optionally followed by the certificates above it."}
                }
            }),
        ),
        (
            "Ca",
            json!({
                "type": "object",
                "description": "A CA. `certificate` and `chain` are present (in single-CA answers) when the CA has a certificate, `csr` while it is pending.",
                "required": ["id", "name", "kind", "status", "parent_id", "subject", "key_algorithm", "serial", "fingerprint_sha256", "not_before", "not_after", "path_len", "created_at", "certificate_url", "crl_url"],
                "properties": {
                    "id": {"type": "string", "description": "Id (UUID)."},
                    "name": {"type": "string", "description": "Unique name."},
                    "kind": {"type": "string", "enum": ["root", "intermediate", "imported", "external"], "description": "How the CA came to be (the `type` it was created with, or `imported`)."},
                    "status": {"type": "string", "enum": ["active", "pending", "disabled"], "description": "`pending`: an `external` CA waiting for its certificate. Only `active` CAs sign."},
                    "parent_id": nullable_string("The issuing CA when it is one of ours."),
                    "subject": {"type": "string", "description": "Subject DN."},
                    "key_algorithm": {"type": "string", "description": "Key type (`ecdsa-p256`, ...)."},
                    "serial": nullable_string("Serial number, lower-case hex; null while pending."),
                    "fingerprint_sha256": nullable_string("SHA-256 of the DER certificate, lower-case hex; null while pending."),
                    "not_before": nullable_date_time("Start of validity; null while pending."),
                    "not_after": nullable_date_time("End of validity; null while pending."),
                    "path_len": {"type": ["integer", "null"], "description": "pathLenConstraint."},
                    "created_at": date_time("When created."),
                    "certificate_url": {"type": ["string", "null"], "format": "uri", "description": "Public URL of the CA certificate (AIA), for active CAs."},
                    "crl_url": {"type": ["string", "null"], "format": "uri", "description": "Public URL of the CRL, for active CAs."},
                    "certificate": {"type": "string", "description": "The CA certificate, PEM."},
                    "chain": {"type": "string", "description": "The CA certificate and the certificates above it, nearest first, PEM."},
                    "csr": {"type": "string", "description": "The CSR of a pending CA, PEM."}
                }
            }),
        ),
    ])
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
            "KeyUsage",
            json!({"type": "string", "enum": ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement"]}),
        ),
        (
            "ExtKeyUsage",
            json!({"type": "string", "enum": ["server_auth", "client_auth", "code_signing", "email_protection", "time_stamping", "ocsp_signing"]}),
        ),
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

fn validity_properties() -> Map<String, Value> {
    object(vec![
        (
            "validity_days",
            json!({"type": ["integer", "null"], "minimum": 1, "maximum": u32::MAX, "description": "Requested validity in days (not with `not_after`). Default: the profile's `default_validity_days`, else its `max_validity_days`."}),
        ),
        (
            "not_after",
            json!({"type": ["string", "null"], "format": "date-time", "description": "Requested end of validity (not with `validity_days`)."}),
        ),
    ])
}

fn certificate_schemas() -> Map<String, Value> {
    let mut issue = object(vec![
        (
            "profile",
            json!({"type": "string", "description": "The profile's name or id."}),
        ),
        (
            "csr",
            json!({"type": "string", "description": "The CSR, PEM. Names are taken from its subjectAltName extension and CN."}),
        ),
    ]);
    issue.extend(validity_properties());

    let mut generate = object(vec![
        (
            "profile",
            json!({"type": "string", "description": "The profile's name or id."}),
        ),
        (
            "dns_names",
            json!({"type": "array", "items": {"type": "string"}, "default": [], "description": "DNS names for subjectAltName."}),
        ),
        (
            "ip_addresses",
            json!({"type": "array", "items": {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}, "default": [], "description": "IP addresses for subjectAltName."}),
        ),
        (
            "common_name",
            nullable_string(
                "Subject CN; kept only if it is one of the requested names, otherwise the first name is used.",
            ),
        ),
        (
            "key_algorithm",
            json!({"anyOf": [schema_ref("KeyAlgorithm"), {"type": "null"}], "default": KeyAlgorithm::EcdsaP256.to_string(), "description": "Type of the key to generate; the profile must allow it."}),
        ),
    ]);
    generate.extend(validity_properties());
    generate.extend(object(vec![
        (
            "format",
            json!({"type": "string", "enum": ["pem", "pkcs12"], "default": "pem", "description": "`pem`: the key is returned as `private_key`; `pkcs12`: key, certificate and chain are returned as `pkcs12`, protected by `password`."}),
        ),
        (
            "password",
            json!({"type": ["string", "null"], "minLength": 4, "description": "PKCS#12 password (at least 4 characters); required for `pkcs12`, refused for `pem`."}),
        ),
        (
            "managed",
            json!({"type": "boolean", "default": false, "description": "Keep the private key on the server, sealed with the master key."}),
        ),
    ]));

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

    object(vec![
        (
            "IssueCertificateRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["profile", "csr"],
                "properties": issue
            }),
        ),
        (
            "GenerateCertificateRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["profile"],
                "properties": generate
            }),
        ),
        (
            "IssuedCertificate",
            json!({
                "type": "object",
                "description": "A certificate just issued. `private_key` or `pkcs12` only come from `/certificates/generate`.",
                "required": ["id", "ca_id", "profile", "serial", "subject", "sans", "not_before", "not_after", "fingerprint_sha256", "certificate", "chain", "root"],
                "properties": {
                    "id": {"type": "string", "description": "Id (UUID)."},
                    "ca_id": {"type": "string", "description": "The issuing CA's id."},
                    "profile": {"type": "string", "description": "The profile's name."},
                    "serial": {"type": "string", "description": "Serial number, lower-case hex."},
                    "subject": {"type": "string", "description": "Subject DN."},
                    "sans": {"type": "array", "items": {"type": "string"}, "description": "DNS names, then IP addresses."},
                    "not_before": date_time("Start of validity."),
                    "not_after": date_time("End of validity."),
                    "fingerprint_sha256": {"type": "string", "description": "SHA-256 of the DER certificate, lower-case hex."},
                    "certificate": {"type": "string", "description": "The certificate, PEM."},
                    "chain": {"type": "string", "description": "The issuer chain without its last certificate (the root), nearest first, PEM; empty when the root issued it."},
                    "root": {"type": "string", "description": "The last certificate of the issuer chain the server knows (the root when that chain is complete), PEM."},
                    "private_key": {"type": "string", "description": "The generated key, PKCS#8 PEM (`format: pem`)."},
                    "pkcs12": {"type": "string", "contentEncoding": "base64", "contentMediaType": "application/pkcs12", "description": "Key, certificate and chain as PKCS#12, base64 (`format: pkcs12`)."}
                }
            }),
        ),
        (
            "Certificate",
            json!({
                "type": "object",
                "description": "A stored certificate. `certificate` (PEM) is only in `GET /certificates/{id}`.",
                "required": ["id", "ca_id", "profile", "serial", "subject", "common_name", "sans", "issuer", "not_before", "not_after", "key_algorithm", "fingerprint_sha256", "status", "managed", "revoked_at", "revocation_reason", "created_at", "created_by"],
                "properties": {
                    "id": {"type": "string", "description": "Id (UUID)."},
                    "ca_id": {"type": "string", "description": "The issuing CA's id."},
                    "profile": nullable_string("The profile it was issued under."),
                    "serial": {"type": "string", "description": "Serial number, lower-case hex."},
                    "subject": {"type": "string", "description": "Subject DN."},
                    "common_name": nullable_string("Subject CN."),
                    "sans": {"type": "array", "items": {"type": "string"}, "description": "DNS names and IP addresses."},
                    "issuer": {"type": "string", "description": "Issuer DN."},
                    "not_before": date_time("Start of validity."),
                    "not_after": date_time("End of validity."),
                    "key_algorithm": nullable_string("Subject key type, when recognised."),
                    "fingerprint_sha256": {"type": "string", "description": "SHA-256 of the DER certificate, lower-case hex."},
                    "status": {"type": "string", "enum": ["valid", "expired", "revoked"], "description": "`expired`: not revoked but past `not_after`."},
                    "managed": {"type": "boolean", "description": "Whether the server keeps the private key."},
                    "revoked_at": nullable_date_time("When revoked."),
                    "revocation_reason": {"type": ["integer", "null"], "description": "RFC 5280 reason code."},
                    "created_at": date_time("When issued."),
                    "created_by": {"type": "string", "description": "Who asked (`token:<name>:<id>` or `system`)."},
                    "certificate": {"type": "string", "description": "The certificate, PEM."}
                }
            }),
        ),
        (
            "CertificatePage",
            json!({
                "type": "object",
                "required": ["items", "next_cursor"],
                "properties": {
                    "items": {"type": "array", "items": schema_ref("Certificate")},
                    "next_cursor": nullable_string("Pass as `cursor` for the next page; null on the last page.")
                }
            }),
        ),
        (
            "RevocationReason",
            json!({
                "description": "An RFC 5280 reason: its name (camelCase as in the RFC or snake_case; case and punctuation are ignored) or its code (0-6, 9, 10). Null or left out: `unspecified`.",
                "anyOf": [
                    {"type": "string", "enum": reason_names},
                    {"type": "integer", "enum": [0, 1, 2, 3, 4, 5, 9, 10]},
                    {"type": "null"}
                ]
            }),
        ),
        (
            "RevokeRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "reason": schema_ref("RevocationReason")
                }
            }),
        ),
    ])
}

fn token_schemas() -> Map<String, Value> {
    let token_properties = json!({
        "id": {"type": "string", "description": "Id (UUID)."},
        "name": {"type": "string", "description": "Human name."},
        "role": schema_ref("Role"),
        "profiles": {"type": "array", "items": {"type": "string"}, "description": "Profiles an issuer token may use."},
        "created_at": date_time("When created."),
        "expires_at": nullable_date_time("When it stops working; null: never."),
        "revoked_at": nullable_date_time("When it was revoked."),
        "created_by": {"type": "string", "description": "Who created it."}
    });
    let token_required = json!([
        "id",
        "name",
        "role",
        "profiles",
        "created_at",
        "expires_at",
        "revoked_at",
        "created_by"
    ]);
    let mut created_properties = token_properties.clone();
    created_properties["token"] =
        json!({"type": "string", "description": "The secret (`ck_...`), shown only now."});
    let mut created_required = token_required.clone();
    if let Some(r) = created_required.as_array_mut() {
        r.push(json!("token"));
    }
    object(vec![
        (
            "Role",
            json!({
                "type": "string",
                "enum": ["admin", "issuer", "viewer"],
                "description": "`admin`: everything; `issuer`: issue and revoke under its `profiles`, read CAs, profiles and certificates; `viewer`: read CAs, profiles and certificates."
            }),
        ),
        (
            "CreateTokenRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "role"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 100, "description": "Human name, 1 to 100 characters, not blank."},
                    "role": schema_ref("Role"),
                    "profiles": {"type": "array", "items": {"type": "string"}, "default": [], "description": "Names (or ids) of existing profiles the token may use; required for `issuer`, refused for the other roles."},
                    "expires_in_days": {"type": ["integer", "null"], "minimum": 1, "maximum": u32::MAX, "description": "Lifetime in days; null or left out: never expires."}
                }
            }),
        ),
        (
            "Token",
            json!({
                "type": "object",
                "description": "An API token (never its secret).",
                "required": token_required,
                "properties": token_properties
            }),
        ),
        (
            "TokenCreated",
            json!({
                "type": "object",
                "description": "A new token with its secret.",
                "required": created_required,
                "properties": created_properties
            }),
        ),
    ])
}

fn audit_schemas() -> Map<String, Value> {
    object(vec![
        (
            "AuditEntry",
            json!({
                "type": "object",
                "required": ["id", "at", "actor", "action", "object_type", "object_id", "source", "detail"],
                "properties": {
                    "id": {"type": "integer", "format": "int64", "description": "Sequence number."},
                    "at": date_time("When."),
                    "actor": {"type": "string", "description": "`token:<name>:<id>` or `system`."},
                    "action": {"type": "string", "description": "`object.verb`: `ca.create`, `certificate.issue`, ..."},
                    "object_type": {"type": "string", "description": "Kind of object (`ca`, `profile`, `certificate`, `token`, ...)."},
                    "object_id": nullable_string("Which object."),
                    "source": nullable_string("Client IP address."),
                    "detail": {"description": "Extra facts (any JSON value, or null)."}
                }
            }),
        ),
        (
            "AuditPage",
            json!({
                "type": "object",
                "required": ["items", "next_before"],
                "properties": {
                    "items": {"type": "array", "items": schema_ref("AuditEntry")},
                    "next_before": {"type": ["integer", "null"], "format": "int64", "description": "Pass as `before` for the next page; null when this page is not full."}
                }
            }),
        ),
    ])
}

// ---------------------------------------------------------------------------------------
// /api/v1/est: EST labels and credentials (the EST protocol itself, RFC 7030, is under
// /.well-known/est/ and is not a JSON API)

fn est_paths() -> Map<String, Value> {
    let admin_only = || err("Forbidden", "The token is not an admin token.");
    object(vec![
        (
            "/api/v1/est/labels",
            json!({
                "get": {
                    "operationId": "listEstLabels",
                    "tags": ["EST"],
                    "summary": "List EST labels",
                    "description": "Every label, by name. Admin token.",
                    "responses": {
                        "200": json_response("The labels.", json!({"type": "array", "items": schema_ref("EstLabel")})),
                        "401": unauthorized(),
                        "403": admin_only(),
                        "500": internal()
                    }
                },
                "post": {
                    "operationId": "createEstLabel",
                    "tags": ["EST"],
                    "summary": "Create an EST label",
                    "description": "`/.well-known/est/<label>/` then enrolls under the label's profile (and so its CA). Admin token.",
                    "requestBody": json_body("CreateEstLabelRequest", "The new label."),
                    "responses": {
                        "201": json_response("The label.", schema_ref("EstLabel")),
                        "400": err("BadRequest", "Invalid body, a malformed label, a label named like an EST operation, or an unknown profile."),
                        "401": unauthorized(),
                        "403": admin_only(),
                        "409": err("Conflict", "The label exists."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/est/labels/{label}",
            json!({
                "parameters": [path_param("label", "The label.")],
                "delete": {
                    "operationId": "deleteEstLabel",
                    "tags": ["EST"],
                    "summary": "Delete an EST label",
                    "description": "The label's path stops working and its credentials are revoked. Admin token.",
                    "responses": {
                        "204": {"description": "Deleted."},
                        "401": unauthorized(),
                        "403": admin_only(),
                        "404": err("NotFound", "No such label."),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/est/credentials",
            json!({
                "get": {
                    "operationId": "listEstCredentials",
                    "tags": ["EST"],
                    "summary": "List EST credentials",
                    "description": "Every EST credential, revoked and used-up ones included, oldest first; never the passwords. Admin token.",
                    "responses": {
                        "200": json_response("The credentials.", json!({"type": "array", "items": schema_ref("EstCredential")})),
                        "401": unauthorized(),
                        "403": admin_only(),
                        "500": internal()
                    }
                },
                "post": {
                    "operationId": "createEstCredential",
                    "tags": ["EST"],
                    "summary": "Create an EST credential",
                    "description": "HTTP Basic credentials for EST enrollment under one label (or the bare path). The password is in the answer and never shown again; it is stored as a PBKDF2 hash. `max_uses: 1` makes a one-time bootstrap password. Admin token.",
                    "requestBody": json_body("CreateEstCredentialRequest", "The new credential."),
                    "responses": {
                        "201": json_response("The credential and its password.", schema_ref("EstCredentialCreated")),
                        "400": err("BadRequest", "Invalid body, a malformed user name, an unknown label, a password under 12 characters, or `expires_in_days` or `max_uses` 0."),
                        "401": unauthorized(),
                        "403": admin_only(),
                        "409": err("Conflict", "A credential with this user name exists."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/est/credentials/{id}",
            json!({
                "parameters": [path_param("id", "The credential's id.")],
                "delete": {
                    "operationId": "revokeEstCredential",
                    "tags": ["EST"],
                    "summary": "Revoke an EST credential",
                    "description": "The credential stops working at once; it stays listed with `revoked_at`. Admin token.",
                    "responses": {
                        "204": {"description": "Revoked."},
                        "401": unauthorized(),
                        "403": admin_only(),
                        "404": err("NotFound", "No such credential, or it is already revoked."),
                        "500": internal()
                    }
                }
            }),
        ),
    ])
}

fn est_schemas() -> Map<String, Value> {
    let cred_properties = json!({
        "id": {"type": "string", "description": "Id."},
        "username": {"type": "string", "description": "The HTTP Basic user name."},
        "label": {"type": "string", "description": "The label it enrolls under; empty for the bare `/.well-known/est/` path."},
        "expires_at": nullable_date_time("When it stops working; null: never."),
        "uses_left": {"type": ["integer", "null"], "format": "int64", "description": "Enrollments left; null: unlimited."},
        "revoked_at": nullable_date_time("When it was revoked."),
        "created_at": date_time("When it was created."),
        "created_by": {"type": "string", "description": "Who created it."}
    });
    let cred_required = json!([
        "id",
        "username",
        "label",
        "expires_at",
        "uses_left",
        "revoked_at",
        "created_at",
        "created_by"
    ]);
    let mut created_properties = cred_properties.clone();
    created_properties["password"] =
        json!({"type": "string", "description": "The password, shown only now."});
    let mut created_required = cred_required.clone();
    if let Some(r) = created_required.as_array_mut() {
        r.push(json!("password"));
    }
    object(vec![
        (
            "CreateEstLabelRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["label", "profile"],
                "properties": {
                    "label": {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$", "description": "The path segment; not an EST operation name."},
                    "profile": {"type": "string", "description": "Name or id of an existing profile."},
                    "require_channel_binding": {"type": "boolean", "default": false, "description": "Refuse enrollments whose CSR lacks the connection's tls-exporter channel binding (RFC 9266) in challengePassword."}
                }
            }),
        ),
        (
            "EstLabel",
            json!({
                "type": "object",
                "required": ["label", "profile", "require_channel_binding", "created_at", "created_by"],
                "properties": {
                    "label": {"type": "string", "description": "The path segment."},
                    "profile": {"type": "string", "description": "The profile EST issues under."},
                    "require_channel_binding": {"type": "boolean", "description": "Whether channel binding is required."},
                    "created_at": date_time("When it was created."),
                    "created_by": {"type": "string", "description": "Who created it."}
                }
            }),
        ),
        (
            "CreateEstCredentialRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["username"],
                "properties": {
                    "username": {"type": "string", "minLength": 1, "maxLength": 100, "description": "Unique user name, without `:`."},
                    "label": {"type": ["string", "null"], "description": "An existing label; null or left out: the bare `/.well-known/est/` path."},
                    "password": {"type": ["string", "null"], "minLength": 12, "description": "A chosen password; null or left out: one is generated."},
                    "expires_in_days": {"type": ["integer", "null"], "minimum": 1, "maximum": u32::MAX, "description": "Lifetime in days; null or left out: never expires."},
                    "max_uses": {"type": ["integer", "null"], "minimum": 1, "maximum": u32::MAX, "description": "Enrollments allowed; null or left out: unlimited."}
                }
            }),
        ),
        (
            "EstCredential",
            json!({
                "type": "object",
                "description": "An EST credential (never its password).",
                "required": cred_required,
                "properties": cred_properties
            }),
        ),
        (
            "EstCredentialCreated",
            json!({
                "type": "object",
                "description": "A new EST credential with its password.",
                "required": created_required,
                "properties": created_properties
            }),
        ),
    ])
}

// ---------------------------------------------------------------------------------------
// /api/v1/alerts

fn forbidden_admin() -> Value {
    err("Forbidden", "The token is not an admin token.")
}

fn alert_paths() -> Map<String, Value> {
    let id = |what: &str| path_param("id", &format!("The {what}'s id or name."));
    object(vec![
        (
            "/api/v1/alerts/channels",
            json!({
                "get": {
                    "operationId": "listAlertChannels",
                    "tags": ["Alerts"],
                    "summary": "List alert channels",
                    "description": "Every channel, oldest first; never their secrets (URLs, HMAC keys, header values, SMTP passwords).",
                    "responses": {
                        "200": json_response("The channels.", json!({"type": "array", "items": schema_ref("AlertChannel")})),
                        "401": unauthorized(),
                        "500": internal()
                    }
                },
                "post": {
                    "operationId": "createAlertChannel",
                    "tags": ["Alerts"],
                    "summary": "Create an alert channel",
                    "description": "A generic webhook (CloudEvents 1.0, optional HMAC-SHA256 signature in `X-Certkeeper-Signature: t=<unix>,v1=<hex of HMAC(key, \"<t>.<body>\")>` and custom headers), a Slack, Teams (Workflows) or Discord webhook, or email over SMTP. Secrets are sealed at rest and never shown again. Admin token.",
                    "requestBody": json_body("CreateAlertChannelRequest", "The channel."),
                    "responses": {
                        "201": json_response("The channel, without its secrets.", schema_ref("AlertChannel")),
                        "400": err("BadRequest", "Invalid body: unknown kind, a missing or non-HTTP URL, fields of another kind, bad header names or values, or incomplete SMTP settings."),
                        "401": unauthorized(),
                        "403": forbidden_admin(),
                        "409": err("Conflict", "A channel with this name exists."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/alerts/channels/{id}",
            json!({
                "parameters": [id("channel")],
                "get": {
                    "operationId": "getAlertChannel",
                    "tags": ["Alerts"],
                    "summary": "Get an alert channel",
                    "responses": {
                        "200": json_response("The channel, without its secrets.", schema_ref("AlertChannel")),
                        "401": unauthorized(),
                        "404": err("NotFound", "No such channel."),
                        "500": internal()
                    }
                },
                "delete": {
                    "operationId": "deleteAlertChannel",
                    "tags": ["Alerts"],
                    "summary": "Delete an alert channel",
                    "description": "Refused while a rule names the channel. Its outbox rows go with it. Admin token.",
                    "responses": {
                        "204": {"description": "Deleted."},
                        "401": unauthorized(),
                        "403": forbidden_admin(),
                        "404": err("NotFound", "No such channel."),
                        "409": err("Conflict", "A rule still uses the channel."),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/alerts/channels/{id}/test",
            json!({
                "parameters": [id("channel")],
                "post": {
                    "operationId": "testAlertChannel",
                    "tags": ["Alerts"],
                    "summary": "Send a test message",
                    "description": "Sends a test event to the channel at once (not through the outbox) and reports what the receiver answered. Admin token.",
                    "responses": {
                        "200": json_response("The outcome.", schema_ref("AlertSendOutcome")),
                        "401": unauthorized(),
                        "403": forbidden_admin(),
                        "404": err("NotFound", "No such channel."),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/alerts/rules",
            json!({
                "get": {
                    "operationId": "listAlertRules",
                    "tags": ["Alerts"],
                    "summary": "List alert rules",
                    "responses": {
                        "200": json_response("The rules, oldest first.", json!({"type": "array", "items": schema_ref("AlertRule")})),
                        "401": unauthorized(),
                        "500": internal()
                    }
                },
                "post": {
                    "operationId": "createAlertRule",
                    "tags": ["Alerts"],
                    "summary": "Create an alert rule",
                    "description": "Which certificates (selector), thresholds in days before expiry (default 30, 14, 7, 1; each fires once per certificate, a renewed certificate starts fresh), optional daily reminder below the last threshold, digest mode, lifecycle events, and the channels to notify. Admin token.",
                    "requestBody": json_body("CreateAlertRuleRequest", "The rule."),
                    "responses": {
                        "201": json_response("The rule.", schema_ref("AlertRule")),
                        "400": err("BadRequest", "Invalid body, unknown channels, CAs or events, or thresholds out of range."),
                        "401": unauthorized(),
                        "403": forbidden_admin(),
                        "409": err("Conflict", "A rule with this name exists."),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/alerts/rules/{id}",
            json!({
                "parameters": [id("rule")],
                "get": {
                    "operationId": "getAlertRule",
                    "tags": ["Alerts"],
                    "summary": "Get an alert rule",
                    "responses": {
                        "200": json_response("The rule.", schema_ref("AlertRule")),
                        "401": unauthorized(),
                        "404": err("NotFound", "No such rule."),
                        "500": internal()
                    }
                },
                "delete": {
                    "operationId": "deleteAlertRule",
                    "tags": ["Alerts"],
                    "summary": "Delete an alert rule",
                    "description": "With its record of thresholds already fired. Admin token.",
                    "responses": {
                        "204": {"description": "Deleted."},
                        "401": unauthorized(),
                        "403": forbidden_admin(),
                        "404": err("NotFound", "No such rule."),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/alerts/outbox",
            json!({
                "get": {
                    "operationId": "listAlertOutbox",
                    "tags": ["Alerts"],
                    "summary": "List notifications",
                    "description": "The durable outbox, newest first: pending (with the next attempt), delivered, or dead (failed `alerts.max_attempts` times).",
                    "parameters": [
                        query_param("status", "Only rows in this state.", json!({"type": "string", "enum": ["pending", "delivered", "dead"]})),
                        query_param("limit", "Page size (default 100).", json!({"type": "integer", "minimum": 1, "maximum": 1000}))
                    ],
                    "responses": {
                        "200": json_response("The rows.", json!({"type": "array", "items": schema_ref("AlertOutboxEntry")})),
                        "400": err("BadRequest", "Unknown status or limit out of range."),
                        "401": unauthorized(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/alerts/sweep",
            json!({
                "post": {
                    "operationId": "sweepAlerts",
                    "tags": ["Alerts"],
                    "summary": "Evaluate alert rules now",
                    "description": "Runs the expiry sweep (as the scheduled job does) and then one pass over the outbox. Admin token.",
                    "responses": {
                        "200": json_response("What was done.", schema_ref("AlertSweepResult")),
                        "401": unauthorized(),
                        "403": forbidden_admin(),
                        "500": internal()
                    }
                }
            }),
        ),
        (
            "/api/v1/alerts/tags/{fingerprint}",
            json!({
                "parameters": [path_param("fingerprint", "The certificate's SHA-256 fingerprint, 64 hex digits (ours or discovered).")],
                "get": {
                    "operationId": "getCertificateTags",
                    "tags": ["Alerts"],
                    "summary": "A certificate's tags",
                    "description": "The tags that alert rules with a `tags` selector match. Any valid token.",
                    "responses": {
                        "200": json_response("The tags.", schema_ref("CertificateTags")),
                        "400": err("BadRequest", "The fingerprint is not 64 hex digits."),
                        "401": unauthorized(),
                        "500": internal()
                    }
                },
                "put": {
                    "operationId": "setCertificateTags",
                    "tags": ["Alerts"],
                    "summary": "Replace a certificate's tags",
                    "description": "Replaces the tags of a certificate, ours or one discovery found; alert rules with a `tags` selector match them. Admin token.",
                    "requestBody": json_body("SetCertificateTagsRequest", "The new tags."),
                    "responses": {
                        "200": json_response("The tags now.", schema_ref("CertificateTags")),
                        "400": err("BadRequest", "The fingerprint is not 64 hex digits, more than 32 tags, or a tag outside 1 to 64 letters, digits or - _ . : /."),
                        "401": unauthorized(),
                        "403": forbidden_admin(),
                        "413": payload_too_large(),
                        "415": unsupported_media_type(),
                        "500": internal()
                    }
                }
            }),
        ),
    ])
}

fn alert_schemas() -> Map<String, Value> {
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let tag_schemas = [
        (
            "CertificateTags",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["fingerprint", "tags"],
                "properties": {"fingerprint": {"type": "string"}, "tags": strings.clone()}
            }),
        ),
        (
            "SetCertificateTagsRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["tags"],
                "properties": {"tags": {"type": "array", "maxItems": 32, "items": {"type": "string", "minLength": 1, "maxLength": 64}}}
            }),
        ),
    ];
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
    let mut schemas = object(vec![
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
        (
            "AlertSendOutcome",
            json!({
                "type": "object",
                "required": ["result"],
                "properties": {
                    "result": {"type": "string", "enum": ["delivered", "failed"]},
                    "status": {"type": ["integer", "null"], "description": "HTTP status or SMTP reply code."},
                    "error": {"type": "string"},
                    "retry_after": {"type": ["integer", "null"]}
                }
            }),
        ),
        (
            "AlertSweepResult",
            json!({
                "type": "object",
                "required": ["sweep", "delivery"],
                "properties": {
                    "sweep": {"type": "object", "required": ["rules", "fired"], "properties": {
                        "rules": {"type": "integer", "minimum": 0},
                        "fired": {"type": "integer", "minimum": 0}
                    }},
                    "delivery": {"type": "object", "required": ["delivered", "retried", "dead"], "properties": {
                        "delivered": {"type": "integer", "minimum": 0},
                        "retried": {"type": "integer", "minimum": 0},
                        "dead": {"type": "integer", "minimum": 0}
                    }}
                }
            }),
        ),
    ]);
    schemas.extend(tag_schemas.into_iter().map(|(k, v)| (k.to_string(), v)));
    schemas
}

fn acme_schemas() -> Map<String, Value> {
    let eab_props = json!({
        "id": {"type": "string", "description": "The key id (the EAB `kid`)."},
        "profile": {"type": "string", "description": "The profile whose ACME directory accepts it."},
        "name": {"type": "string", "description": "A label."},
        "account_id": nullable_string("The account registered with it, once used."),
        "created_at": {"type": "integer", "format": "int64", "description": "Unix seconds."},
        "created_by": {"type": "string", "description": "Who created it."}
    });
    let mut created_props = eab_props.clone();
    created_props["hmac_key"] =
        json!({"type": "string", "description": "base64url HMAC-SHA256 key; shown only here."});
    object(vec![
        (
            "CreateEabKeyRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["profile"],
                "properties": {
                    "profile": {"type": "string", "description": "A profile with an ACME directory."},
                    "name": {"type": "string", "maxLength": 100, "description": "A label.", "default": ""}
                }
            }),
        ),
        (
            "EabKey",
            json!({"type": "object", "required": ["id", "profile", "name", "account_id", "created_at", "created_by"], "properties": eab_props}),
        ),
        (
            "CreatedEabKey",
            json!({"type": "object", "required": ["id", "profile", "name", "account_id", "created_at", "created_by", "hmac_key"], "properties": created_props}),
        ),
        (
            "RenewalWindowRequest",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["start", "end"],
                "properties": {
                    "ca": {"type": "string", "description": "A CA id or name: every certificate it issued. Give this or `certificate`."},
                    "certificate": {"type": "string", "description": "One certificate id. Give this or `ca`."},
                    "start": date_time("Start of the suggested renewal window."),
                    "end": date_time("End of the suggested renewal window (after `start`).")
                }
            }),
        ),
        (
            "RenewalWindow",
            json!({
                "type": "object",
                "required": ["id", "ca", "certificate", "start", "end"],
                "properties": {
                    "id": {"type": "string"},
                    "ca": nullable_string("The CA id, for a CA-wide window."),
                    "certificate": nullable_string("The certificate id, for one certificate."),
                    "start": date_time("Start of the window."),
                    "end": date_time("End of the window.")
                }
            }),
        ),
    ])
}
