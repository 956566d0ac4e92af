//! `certkeeper managed ...` and `certkeeper destination ...`: managed certificates and the
//! cloud destinations they are pushed to.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Client, read_input, show, table};

/// `certkeeper managed ...`
#[derive(Debug, Subcommand)]
pub enum ManagedCmd {
    /// Create a managed certificate (issues version 1 with a server-side key).
    Create {
        /// Unique name.
        name: String,
        /// Issuing profile.
        #[arg(long)]
        profile: String,
        /// DNS name; repeatable.
        #[arg(long = "dns")]
        dns_names: Vec<String>,
        /// IP address; repeatable.
        #[arg(long = "ip")]
        ip_addresses: Vec<String>,
        /// Subject common name.
        #[arg(long)]
        cn: Option<String>,
        /// Key type (ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, ...).
        #[arg(long)]
        key_type: Option<String>,
        /// Validity of each version in days.
        #[arg(long)]
        days: Option<u32>,
        /// Renew when this percentage of a version's life has passed (default: two thirds).
        #[arg(long)]
        renew_at_percent: Option<u32>,
        /// Destination to bind at once; repeatable (admin).
        #[arg(long = "destination")]
        destinations: Vec<String>,
    },
    /// List managed certificates.
    List,
    /// Show one: versions, next renewal, sync status per destination.
    Get {
        /// Id or name.
        id: String,
    },
    /// Renew now.
    Renew {
        /// Id or name.
        id: String,
    },
    /// Push the current version to its destinations now.
    Sync {
        /// Id or name.
        id: String,
    },
    /// Revoke every version and stop renewing.
    Revoke {
        /// Id or name.
        id: String,
        /// RFC 5280 reason (keyCompromise, superseded, ... or a number).
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
    /// Stop managing (versions stay on record; copies at destinations stay).
    Delete {
        /// Id or name.
        id: String,
    },
    /// Bind to a destination (admin).
    Bind {
        /// Id or name.
        id: String,
        /// Destination id or name.
        #[arg(long)]
        destination: String,
    },
    /// Remove a binding (admin).
    Unbind {
        /// Id or name.
        id: String,
        /// Destination id or name.
        #[arg(long)]
        destination: String,
        /// Also delete the copy at the destination.
        #[arg(long)]
        delete_remote: bool,
    },
}

/// `certkeeper destination ...`
#[derive(Debug, Subcommand)]
pub enum DestinationCmd {
    /// Create a destination (admin).
    Create {
        /// Unique name.
        name: String,
        /// aws_acm or azure_key_vault.
        #[arg(long)]
        kind: String,
        /// Configuration JSON file ('-' for stdin).
        #[arg(long)]
        config: PathBuf,
        /// Credentials JSON file ('-' for stdin); kept out of the command line.
        #[arg(long)]
        credentials: Option<PathBuf>,
    },
    /// List destinations.
    List,
    /// Show one (never its credentials).
    Get {
        /// Id or name.
        id: String,
    },
    /// Delete one no certificate is bound to (admin).
    Delete {
        /// Id or name.
        id: String,
    },
}

const MANAGED_COLS: &[&str] = &[
    "name",
    "status",
    "profile",
    "dns_names",
    "current_version",
    "next_renewal_at",
    "last_error",
    "id",
];
const VERSION_COLS: &[&str] = &["version", "status", "serial", "not_after", "certificate_id"];
const BINDING_COLS: &[&str] = &[
    "destination",
    "kind",
    "pushed_version",
    "in_sync",
    "remote_id",
    "remote_version",
    "last_error",
    "next_attempt_at",
];
const DEST_COLS: &[&str] = &["name", "kind", "has_credentials", "created_at", "id"];

/// A managed certificate with its versions and bindings.
fn show_managed(v: &Value, json_out: bool) {
    show(v, json_out, MANAGED_COLS);
    if json_out {
        return;
    }
    if let Some(versions) = v.get("versions").and_then(Value::as_array) {
        println!("\nversions:");
        print!("{}", table(versions, VERSION_COLS));
    }
    if let Some(bindings) = v.get("bindings").and_then(Value::as_array)
        && !bindings.is_empty()
    {
        println!("\ndestinations:");
        print!("{}", table(bindings, BINDING_COLS));
    }
}

fn json_file(p: &std::path::Path, what: &str) -> anyhow::Result<Value> {
    serde_json::from_str(&read_input(p)?).with_context(|| format!("{what}: not JSON"))
}

pub(super) async fn run_managed(c: &Client, json_out: bool, cmd: ManagedCmd) -> anyhow::Result<()> {
    match cmd {
        ManagedCmd::Create {
            name,
            profile,
            dns_names,
            ip_addresses,
            cn,
            key_type,
            days,
            renew_at_percent,
            destinations,
        } => {
            let mut body = json!({
                "name": name, "profile": profile, "dns_names": dns_names,
                "ip_addresses": ip_addresses, "destinations": destinations,
            });
            for (k, v) in [
                ("common_name", cn.map(Value::from)),
                ("key_algorithm", key_type.map(Value::from)),
                ("validity_days", days.map(Value::from)),
                ("renew_at_percent", renew_at_percent.map(Value::from)),
            ] {
                if let Some(v) = v {
                    body[k] = v;
                }
            }
            let v = c.json(Method::POST, "/managed", Some(body), &[]).await?;
            show_managed(&v, json_out);
        }
        ManagedCmd::List => show(
            &c.json(Method::GET, "/managed", None, &[]).await?,
            json_out,
            MANAGED_COLS,
        ),
        ManagedCmd::Get { id } => show_managed(
            &c.json(Method::GET, &format!("/managed/{id}"), None, &[])
                .await?,
            json_out,
        ),
        ManagedCmd::Renew { id } => show_managed(
            &c.json(Method::POST, &format!("/managed/{id}/renew"), None, &[])
                .await?,
            json_out,
        ),
        ManagedCmd::Sync { id } => show_managed(
            &c.json(Method::POST, &format!("/managed/{id}/sync"), None, &[])
                .await?,
            json_out,
        ),
        ManagedCmd::Revoke { id, reason } => {
            let reason = reason
                .parse::<u64>()
                .map(Value::from)
                .unwrap_or(Value::from(reason));
            show_managed(
                &c.json(
                    Method::POST,
                    &format!("/managed/{id}/revoke"),
                    Some(json!({ "reason": reason })),
                    &[],
                )
                .await?,
                json_out,
            )
        }
        ManagedCmd::Delete { id } => {
            c.json(Method::DELETE, &format!("/managed/{id}"), None, &[])
                .await?;
            if !json_out {
                println!("deleted managed certificate {id}");
            }
        }
        ManagedCmd::Bind { id, destination } => show_managed(
            &c.json(
                Method::POST,
                &format!("/managed/{id}/bindings"),
                Some(json!({ "destination": destination })),
                &[],
            )
            .await?,
            json_out,
        ),
        ManagedCmd::Unbind {
            id,
            destination,
            delete_remote,
        } => {
            c.json(
                Method::DELETE,
                &format!("/managed/{id}/bindings/{destination}"),
                None,
                &[("delete_remote", delete_remote.to_string())],
            )
            .await?;
            if !json_out {
                println!("unbound {id} from {destination}");
            }
        }
    }
    Ok(())
}

pub(super) async fn run_destination(
    c: &Client,
    json_out: bool,
    cmd: DestinationCmd,
) -> anyhow::Result<()> {
    match cmd {
        DestinationCmd::Create {
            name,
            kind,
            config,
            credentials,
        } => {
            let mut body = json!({
                "name": name, "kind": kind, "config": json_file(&config, "--config")?,
            });
            if let Some(p) = credentials {
                body["credentials"] = json_file(&p, "--credentials")?;
            }
            show(
                &c.json(Method::POST, "/destinations", Some(body), &[])
                    .await?,
                json_out,
                DEST_COLS,
            )
        }
        DestinationCmd::List => show(
            &c.json(Method::GET, "/destinations", None, &[]).await?,
            json_out,
            DEST_COLS,
        ),
        DestinationCmd::Get { id } => show(
            &c.json(Method::GET, &format!("/destinations/{id}"), None, &[])
                .await?,
            json_out,
            DEST_COLS,
        ),
        DestinationCmd::Delete { id } => {
            c.json(Method::DELETE, &format!("/destinations/{id}"), None, &[])
                .await?;
            if !json_out {
                println!("deleted destination {id}");
            }
        }
    }
    Ok(())
}
