//! `/api/v1/issuers`: where certificates come from: our CAs and external (upstream) CAs.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, Reader};
use super::extract::{Json, Path};
use super::openapi::{responses, schemas};
use crate::error::Error;
use crate::server::AppState;
use crate::services::issuers::{
    IssuerView, KIND_ACME, KIND_AWS_PCA, NewAcmeIssuer, NewAwsPcaIssuer,
};
use crate::upstream::acme::AcmeConfig;
use crate::upstream::aws_pca::AwsPcaConfig;

/// Routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, remove))
        .routes(routes!(test))
        .routes(routes!(rollover_key))
}

/// Body of `POST /issuers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateIssuerRequest)]
struct CreateIssuer {
    /// Unique name (shared with the CAs): what a profile's `ca` names.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    name: String,
    /// The kind of upstream: `acme` (any ACME CA) or `aws_pca` (AWS Private CA).
    #[schema(pattern = "^(acme|aws_pca)$")]
    kind: String,
    /// ACME: the directory URL (https); required.
    #[schema(max_length = 2048)]
    directory_url: Option<String>,
    /// ACME: contact URIs (`mailto:...`), at most 10.
    contact: Option<Vec<String>>,
    /// External account binding key id; with `eab_hmac_key`.
    eab_kid: Option<String>,
    /// External account binding HMAC key, base64url as the CA hands it out; sealed at rest
    /// and never shown again.
    eab_hmac_key: Option<String>,
    /// Root certificate (PEM) of a private ACME server's TLS certificate; the system's
    /// roots when absent.
    trust_bundle: Option<String>,
    /// ACME profile to order under (servers that offer profiles).
    profile: Option<String>,
    /// The chain to keep when the CA offers several (RFC 8555 §7.4.2): the common name of
    /// the CA that issued the chain's topmost certificate; the CA's default chain when
    /// absent or when none matches.
    #[schema(max_length = 256)]
    preferred_chain: Option<String>,
    /// How names are proven: `http-01` (default; answered by certkeeper's listeners) or
    /// `dns-01` (needed for wildcards; through one of `rfc2136`, `cloudflare`, `route53`).
    #[schema(pattern = "^(http-01|dns-01)$")]
    challenge: Option<String>,
    /// dns-01 through RFC 2136 dynamic updates: `{"server": "192.0.2.53:53", "zone":
    /// "example.com", "key_name": "certkeeper", "algorithm": "hmac-sha256",
    /// "nameservers": []}`.
    #[schema(value_type = Option<Object>)]
    rfc2136: Option<crate::upstream::rfc2136::Rfc2136Config>,
    /// The TSIG secret (base64) for `rfc2136`; sealed at rest and never shown again.
    tsig_secret: Option<String>,
    /// dns-01 through Cloudflare's DNS records API: `{"zone_id": "...", "nameservers":
    /// ["173.245.58.51:53"], "api_url": "https://api.cloudflare.com/client/v4"}`.
    #[schema(value_type = Option<Object>)]
    cloudflare: Option<crate::upstream::cloudflare::CloudflareConfig>,
    /// The Cloudflare API token (Zone.DNS:Edit) for `cloudflare`; sealed at rest and never
    /// shown again.
    cloudflare_api_token: Option<String>,
    /// dns-01 through AWS Route 53: `{"hosted_zone_id": "Z1D633PJN98FT9", "region":
    /// "us-east-1", "endpoint_url": null, "profile": null, "nameservers": []}`, all
    /// optional. Without `hosted_zone_id` the zone is the public hosted zone with the
    /// longest name that ends the challenge name; without `nameservers`, the zone's
    /// delegation set is waited for.
    #[schema(value_type = Option<Object>)]
    route53: Option<crate::upstream::route53::Route53Config>,
    /// Static AWS credentials for `route53`: `{"access_key_id": "...", "secret_access_key":
    /// "...", "session_token": "..."}` (needs `route53:GetHostedZone`,
    /// `route53:ListHostedZonesByName`, `route53:ListResourceRecordSets`,
    /// `route53:ChangeResourceRecordSets`, `route53:GetChange`); sealed at rest and never
    /// shown again. Without them, the `profile` or the standard AWS chain.
    #[schema(value_type = Option<Object>)]
    route53_credentials: Option<certkeeper_sync::AwsCredentials>,
    /// AWS Private CA: the CA's ARN (`arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID`);
    /// required.
    #[schema(max_length = 200)]
    ca_arn: Option<String>,
    /// AWS Private CA: the region; the ARN's when absent.
    region: Option<String>,
    /// AWS Private CA: the signing algorithm, one of PCA's (`SHA256WITHECDSA`,
    /// `SHA256WITHRSA`, ...) fitting the CA's key; required.
    signing_algorithm: Option<String>,
    /// AWS Private CA: the certificate template ARN; the end-entity template when absent.
    template_arn: Option<String>,
    /// AWS Private CA: a custom endpoint (VPC endpoint, test server).
    endpoint_url: Option<String>,
    /// AWS Private CA: a profile of the shared AWS config files to take credentials from.
    aws_profile: Option<String>,
    /// AWS Private CA: static access keys (`access_key_id`, `secret_access_key`, optional
    /// `session_token`), sealed at rest and never shown again; without them, `aws_profile`
    /// or the standard AWS chain.
    #[schema(value_type = Option<Object>)]
    credentials: Option<certkeeper_sync::AwsCredentials>,
}

impl CreateIssuer {
    /// The fields given that belong to the other kind of issuer.
    fn foreign(&self) -> Vec<&'static str> {
        let acme = [
            ("directory_url", self.directory_url.is_some()),
            ("contact", self.contact.is_some()),
            ("eab_kid", self.eab_kid.is_some()),
            ("eab_hmac_key", self.eab_hmac_key.is_some()),
            ("trust_bundle", self.trust_bundle.is_some()),
            ("profile", self.profile.is_some()),
            ("preferred_chain", self.preferred_chain.is_some()),
            ("challenge", self.challenge.is_some()),
            ("rfc2136", self.rfc2136.is_some()),
            ("tsig_secret", self.tsig_secret.is_some()),
            ("cloudflare", self.cloudflare.is_some()),
            ("cloudflare_api_token", self.cloudflare_api_token.is_some()),
            ("route53", self.route53.is_some()),
            ("route53_credentials", self.route53_credentials.is_some()),
        ];
        let pca = [
            ("ca_arn", self.ca_arn.is_some()),
            ("region", self.region.is_some()),
            ("signing_algorithm", self.signing_algorithm.is_some()),
            ("template_arn", self.template_arn.is_some()),
            ("endpoint_url", self.endpoint_url.is_some()),
            ("aws_profile", self.aws_profile.is_some()),
            ("credentials", self.credentials.is_some()),
        ];
        let other: &[(&'static str, bool)] = if self.kind == KIND_ACME { &pca } else { &acme };
        other
            .iter()
            .filter(|(_, set)| *set)
            .map(|(n, _)| *n)
            .collect()
    }
}

/// `field` of an issuer of `kind`, refused when missing.
fn required(kind: &str, field: &str, v: Option<String>) -> Result<String, Error> {
    v.ok_or_else(|| Error::BadRequest(format!("kind {kind} needs {field}")))
}

#[utoipa::path(
    post,
    path = "/issuers",
    operation_id = "createIssuer",
    tag = "Issuers",
    summary = "Create an external issuer",
    description = "`acme`: registers an ACME account at `directory_url` (with external account binding when `eab_kid` and `eab_hmac_key` are given), then stores the issuer; for `dns-01` the DNS provider is checked first (for `route53`, that the hosted zone exists and the credentials are accepted). `aws_pca`: describes the AWS Private CA `ca_arn` (it must exist and be ACTIVE) with the given credentials, then stores the issuer. An unreachable upstream, a refused key, a wrong zone or refused credentials is an error and nothing is stored. Admin token.",
    request_body(content((CreateIssuer = "application/json")), description = "The new issuer."),
    responses(
        (status = 201, description = "The issuer (no secrets).", content((IssuerView = "application/json"))),
        (status = 400, description = "Invalid body: a bad name, a non-https directory URL, a bad contact, half an EAB pair, a bad trust bundle, no DNS provider (or two) for dns-01, bad DNS provider settings, a malformed CA ARN, an unknown signing algorithm, a region that is not the ARN's, settings of the other kind.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "A CA or issuer with this name exists.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
        (status = 502, description = "The upstream could not be reached or refused: the ACME server refused the account (its problem document is in `upstream`), the DNS provider refused the settings (a hosted zone it does not have, credentials it does not accept), or AWS refused the credentials, does not know the Private CA, or the CA is not ACTIVE.", content((schemas::Problem = "application/problem+json"))),
    )
)]
async fn create(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<CreateIssuer>,
) -> Result<Response, Error> {
    if body.kind != KIND_ACME && body.kind != KIND_AWS_PCA {
        return Err(Error::BadRequest(format!(
            "kind {:?} is not one of {KIND_ACME}, {KIND_AWS_PCA}",
            body.kind
        )));
    }
    let foreign = body.foreign();
    if !foreign.is_empty() {
        return Err(Error::BadRequest(format!(
            "kind {} does not take {}",
            body.kind,
            foreign.join(", ")
        )));
    }
    let issuers = &state.services.issuers;
    if body.kind == KIND_AWS_PCA {
        let new = NewAwsPcaIssuer {
            name: body.name,
            config: AwsPcaConfig {
                ca_arn: required(KIND_AWS_PCA, "ca_arn", body.ca_arn)?,
                region: body.region,
                signing_algorithm: required(
                    KIND_AWS_PCA,
                    "signing_algorithm",
                    body.signing_algorithm,
                )?,
                template_arn: body.template_arn,
                endpoint_url: body.endpoint_url,
                profile: body.aws_profile,
            },
            credentials: body.credentials,
        };
        let view = issuers.create_aws_pca(new, &auth.actor).await?;
        return Ok((StatusCode::CREATED, Json(view)).into_response());
    }
    let new = NewAcmeIssuer {
        name: body.name,
        config: AcmeConfig {
            directory_url: required(KIND_ACME, "directory_url", body.directory_url)?,
            contact: body.contact.unwrap_or_default(),
            eab_kid: body.eab_kid,
            trust_bundle: body.trust_bundle,
            profile: body.profile,
            preferred_chain: body.preferred_chain,
            challenge: body
                .challenge
                .unwrap_or_else(|| crate::upstream::acme::HTTP_01.into()),
            rfc2136: body.rfc2136,
            cloudflare: body.cloudflare,
            route53: body.route53,
        },
        eab_hmac_key: body.eab_hmac_key,
        tsig_secret: body.tsig_secret,
        cloudflare_api_token: body.cloudflare_api_token,
        route53_credentials: body.route53_credentials,
    };
    let view = issuers.create_acme(new, &auth.actor).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(
    get,
    path = "/issuers",
    operation_id = "listIssuers",
    tag = "Issuers",
    summary = "List issuers",
    description = "Our CAs (`kind: ca`), then the external issuers; never a secret.",
    responses(
        (status = 200, description = "The issuers.", content((Vec<IssuerView> = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
async fn list(State(state): State<AppState>, _r: Reader) -> Result<Json<Vec<IssuerView>>, Error> {
    Ok(Json(state.services.issuers.list().await?))
}

#[utoipa::path(
    get,
    path = "/issuers/{name}",
    operation_id = "getIssuer",
    tag = "Issuers",
    summary = "Show an issuer",
    params(("name" = String, Path, description = "The issuer's name or id.")),
    responses(
        (status = 200, description = "The issuer (no secrets).", content((IssuerView = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such issuer.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn get(
    State(state): State<AppState>,
    _r: Reader,
    Path(name): Path<String>,
) -> Result<Json<IssuerView>, Error> {
    Ok(Json(state.services.issuers.get(&name).await?))
}

#[utoipa::path(
    post,
    path = "/issuers/{name}/test",
    operation_id = "testIssuer",
    tag = "Issuers",
    summary = "Test an issuer",
    description = "ACME issuers: verifies the account upstream (a signed request to the account URL) and, for dns-01 through Route 53, that the hosted zone is reachable with the stored credentials. AWS Private CA: describes the CA, which must exist and be ACTIVE. Our CAs: that the CA can sign. Admin token.",
    params(("name" = String, Path, description = "The issuer's name or id.")),
    responses(
        (status = 200, description = "What the test found.", content((inline(schemas::AnyObject) = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such issuer.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "Our CA cannot sign (pending or disabled).", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
        (status = 502, description = "The upstream could not be reached or refused the account, or the DNS provider refused the settings.", content((schemas::Problem = "application/problem+json"))),
    )
)]
async fn test(
    State(state): State<AppState>,
    _a: Admin,
    Path(name): Path<String>,
) -> Result<Json<Value>, Error> {
    Ok(Json(state.services.issuers.test(&name).await?))
}

#[utoipa::path(
    delete,
    path = "/issuers/{name}",
    operation_id = "deleteIssuer",
    tag = "Issuers",
    summary = "Remove an external issuer",
    description = "Deactivates the ACME account upstream (nothing to do at AWS Private CA) and removes the issuer; refused while a profile names it. Certificates it issued stay in the inventory. Admin token.",
    params(("name" = String, Path, description = "The issuer's name or id.")),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such external issuer.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "A profile issues through it.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn remove(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, Error> {
    state.services.issuers.remove(&name, &auth.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/issuers/{name}/account-key",
    operation_id = "rolloverIssuerAccountKey",
    tag = "Issuers",
    summary = "Roll an ACME issuer's account key over",
    description = "Moves the upstream ACME account to a new key made here (RFC 8555 §7.3.5); the new key is sealed in place of the old. If the upstream refuses, nothing changes. Admin token.",
    params(("name" = String, Path, description = "The issuer's name or id.")),
    responses(
        (status = 200, description = "The issuer, on its new key (no secrets).", content((IssuerView = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such external issuer.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
        (status = 502, description = "The upstream could not be reached or refused the new key.", content((schemas::Problem = "application/problem+json"))),
    )
)]
async fn rollover_key(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(name): Path<String>,
) -> Result<Json<IssuerView>, Error> {
    Ok(Json(
        state
            .services
            .issuers
            .rollover_key(&name, &auth.actor)
            .await?,
    ))
}
