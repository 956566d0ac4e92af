//! `certkeeper issuer ...`: where certificates come from: our CAs, external ACME CAs and
//! AWS Private CAs.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use super::{Client, read_input, show};

/// `certkeeper issuer ...`
#[derive(Debug, Subcommand)]
pub enum IssuerCmd {
    /// Create an external ACME issuer: registers an account at the directory first
    /// (admin).
    CreateAcme(Box<CreateAcmeArgs>),
    /// Create an AWS Private CA issuer: the CA must exist and be ACTIVE (admin).
    CreateAwsPca(Box<CreateAwsPcaArgs>),
    /// List issuers: our CAs, then the external ones.
    List,
    /// Show one issuer (never a secret).
    Get {
        /// Name or id.
        name: String,
    },
    /// Test an issuer: verify the ACME account upstream, that the AWS Private CA is
    /// ACTIVE, or that our CA can sign (admin).
    Test {
        /// Name or id.
        name: String,
    },
    /// Roll an ACME issuer's account key over to a new key (admin).
    RolloverKey {
        /// Name or id.
        name: String,
    },
    /// Remove an external issuer: deactivates its ACME account (admin).
    Remove {
        /// Name or id.
        name: String,
    },
}

/// `certkeeper issuer create-acme ...`
#[derive(Debug, Args)]
pub struct CreateAcmeArgs {
    /// Unique name (shared with the CAs): what a profile's `ca` names.
    name: String,
    /// ACME directory URL (https).
    #[arg(long)]
    directory: String,
    /// Contact URI (mailto:...); repeatable.
    #[arg(long = "contact")]
    contact: Vec<String>,
    /// External account binding key id.
    #[arg(long, requires = "eab_hmac_key_file")]
    eab_kid: Option<String>,
    /// File holding the EAB HMAC key (base64url), `-` for stdin; never on the command
    /// line.
    #[arg(long, requires = "eab_kid")]
    eab_hmac_key_file: Option<PathBuf>,
    /// PEM root of a private ACME server's TLS certificate.
    #[arg(long)]
    trust_bundle: Option<PathBuf>,
    /// ACME profile to order under.
    #[arg(long)]
    acme_profile: Option<String>,
    /// The chain to keep when the CA offers several: the common name of the CA that
    /// issued the chain's topmost certificate.
    #[arg(long)]
    preferred_chain: Option<String>,
    /// Prove names with dns-01 (needed for wildcards) through RFC 2136: a JSON file
    /// with server, zone, key_name, algorithm and nameservers.
    #[arg(long, requires = "tsig_secret_file")]
    rfc2136: Option<PathBuf>,
    /// File holding the TSIG secret (base64), `-` for stdin.
    #[arg(long, requires = "rfc2136")]
    tsig_secret_file: Option<PathBuf>,
    /// Prove names with dns-01 through Cloudflare: a JSON file with zone_id,
    /// nameservers and (optionally) api_url.
    #[arg(long, requires = "cloudflare_token_file", conflicts_with = "rfc2136")]
    cloudflare: Option<PathBuf>,
    /// File holding the Cloudflare API token (Zone.DNS:Edit), `-` for stdin.
    #[arg(long, requires = "cloudflare")]
    cloudflare_token_file: Option<PathBuf>,
    /// Prove names with dns-01 through AWS Route 53: a JSON file with (all optional)
    /// hosted_zone_id, region, endpoint_url, profile and nameservers.
    #[arg(long, conflicts_with_all = ["rfc2136", "cloudflare"])]
    route53: Option<PathBuf>,
    /// File holding static AWS credentials for Route 53 (JSON: access_key_id,
    /// secret_access_key, session_token), `-` for stdin; the profile or the standard AWS
    /// chain without it.
    #[arg(long, requires = "route53")]
    route53_credentials_file: Option<PathBuf>,
}

/// `certkeeper issuer create-aws-pca ...`
#[derive(Debug, Args)]
pub struct CreateAwsPcaArgs {
    /// Unique name (shared with the CAs): what a profile's `ca` names.
    name: String,
    /// The CA's ARN (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID).
    #[arg(long)]
    ca_arn: String,
    /// How PCA signs: SHA256WITHECDSA, SHA384WITHECDSA, SHA256WITHRSA, ... (of the CA
    /// key's family).
    #[arg(long)]
    signing_algorithm: String,
    /// The region (the ARN's when absent).
    #[arg(long)]
    region: Option<String>,
    /// The certificate template ARN (the end-entity template when absent).
    #[arg(long)]
    template_arn: Option<String>,
    /// A custom endpoint (VPC endpoint, test server).
    #[arg(long)]
    endpoint_url: Option<String>,
    /// A profile of the shared AWS config files to take credentials from.
    #[arg(long, conflicts_with = "credentials")]
    aws_profile: Option<String>,
    /// A JSON file with access_key_id, secret_access_key (and session_token), `-` for
    /// stdin; sealed by the server. Without it, the profile or the standard AWS chain.
    #[arg(long)]
    credentials: Option<PathBuf>,
}

const COLS: &[&str] = &[
    "id",
    "name",
    "kind",
    "status",
    "directory_url",
    "ca_arn",
    "account_url",
];

pub(super) async fn run_issuer(c: &Client, json_out: bool, cmd: IssuerCmd) -> anyhow::Result<()> {
    match cmd {
        IssuerCmd::CreateAcme(args) => {
            let CreateAcmeArgs {
                name,
                directory,
                contact,
                eab_kid,
                eab_hmac_key_file,
                trust_bundle,
                acme_profile,
                preferred_chain,
                rfc2136,
                tsig_secret_file,
                cloudflare,
                cloudflare_token_file,
                route53,
                route53_credentials_file,
            } = *args;
            let mut body = json!({
                "name": name, "kind": "acme", "directory_url": directory, "contact": contact,
            });
            if let Some(kid) = eab_kid {
                body["eab_kid"] = json!(kid);
            }
            if let Some(p) = eab_hmac_key_file {
                body["eab_hmac_key"] = json!(read_input(&p)?.trim());
            }
            if let Some(p) = trust_bundle {
                body["trust_bundle"] = json!(read_input(&p)?);
            }
            if let Some(p) = acme_profile {
                body["profile"] = json!(p);
            }
            if let Some(p) = preferred_chain {
                body["preferred_chain"] = json!(p);
            }
            if let Some(p) = route53_credentials_file {
                body["route53_credentials"] = serde_json::from_str(&read_input(&p)?)
                    .map_err(|e| anyhow::anyhow!("--route53-credentials-file: {e}"))?;
            }
            for (key, file, secret_key, secret) in [
                ("rfc2136", rfc2136, "tsig_secret", tsig_secret_file),
                (
                    "cloudflare",
                    cloudflare,
                    "cloudflare_api_token",
                    cloudflare_token_file,
                ),
                ("route53", route53, "", None),
            ] {
                if let Some(p) = file {
                    let cfg: serde_json::Value = serde_json::from_str(&read_input(&p)?)
                        .map_err(|e| anyhow::anyhow!("--{key} {}: {e}", p.display()))?;
                    body["challenge"] = json!("dns-01");
                    body[key] = cfg;
                }
                if let Some(p) = secret {
                    body[secret_key] = json!(read_input(&p)?.trim());
                }
            }
            show(
                &c.json(Method::POST, "/issuers", Some(body), &[]).await?,
                json_out,
                COLS,
            )
        }
        IssuerCmd::CreateAwsPca(args) => {
            let CreateAwsPcaArgs {
                name,
                ca_arn,
                signing_algorithm,
                region,
                template_arn,
                endpoint_url,
                aws_profile,
                credentials,
            } = *args;
            let mut body = json!({
                "name": name, "kind": "aws_pca", "ca_arn": ca_arn,
                "signing_algorithm": signing_algorithm,
            });
            for (key, v) in [
                ("region", region),
                ("template_arn", template_arn),
                ("endpoint_url", endpoint_url),
                ("aws_profile", aws_profile),
            ] {
                if let Some(v) = v {
                    body[key] = json!(v);
                }
            }
            if let Some(p) = credentials {
                let creds: serde_json::Value = serde_json::from_str(&read_input(&p)?)
                    .map_err(|e| anyhow::anyhow!("--credentials {}: {e}", p.display()))?;
                body["credentials"] = creds;
            }
            show(
                &c.json(Method::POST, "/issuers", Some(body), &[]).await?,
                json_out,
                COLS,
            )
        }
        IssuerCmd::List => show(
            &c.json(Method::GET, "/issuers", None, &[]).await?,
            json_out,
            COLS,
        ),
        IssuerCmd::Get { name } => show(
            &c.json(Method::GET, &format!("/issuers/{name}"), None, &[])
                .await?,
            json_out,
            COLS,
        ),
        IssuerCmd::Test { name } => {
            let v = c
                .json(Method::POST, &format!("/issuers/{name}/test"), None, &[])
                .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        IssuerCmd::RolloverKey { name } => show(
            &c.json(
                Method::POST,
                &format!("/issuers/{name}/account-key"),
                None,
                &[],
            )
            .await?,
            json_out,
            COLS,
        ),
        IssuerCmd::Remove { name } => {
            c.json(Method::DELETE, &format!("/issuers/{name}"), None, &[])
                .await?;
            if !json_out {
                println!("removed issuer {name}");
            }
        }
    }
    Ok(())
}
