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
        public_url: &s.public_url,
        ca_key_algorithm: s.ca_key_algorithm,
        max_body_bytes: s.max_body_bytes,
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
        audit_paths(),
        acme_paths(),
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
            {"name": "Profiles", "description": "Issuance templates with policy."},
            {"name": "Certificates", "description": "Issue, search, fetch and revoke end-entity certificates."},
            {"name": "Tokens", "description": "API tokens (admin only)."},
            {"name": "Audit", "description": "The audit log (admin only)."},
            {"name": "ACME", "description": "Administration of the ACME server (RFC 8555) served at /acme/directory (admin only)."},
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
                        "413": text_response("The request body is larger than `max_body_bytes` (a plain-text message, not a problem document).", "text/plain")
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
    s.extend(audit_schemas());
    s.extend(acme_schemas());
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
