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
    /// Where each version is deployed (destinations, hosts, endpoints) and what is stale.
    Deployments {
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
        /// Also remove what certkeeper put at the destination.
        #[arg(long, conflicts_with = "keep_remote")]
        delete_remote: bool,
        /// Leave what certkeeper put at the destination, whatever the destination's
        /// remove-on-unbind setting says.
        #[arg(long)]
        keep_remote: bool,
    },
}

/// `certkeeper destination ...`
#[derive(Debug, Subcommand)]
pub enum DestinationCmd {
    /// Create a destination (admin).
    Create {
        /// Unique name.
        name: String,
        /// aws_acm, aws_secrets_manager, aws_elb, azure_key_vault or cloudflare.
        #[arg(long)]
        kind: String,
        /// Configuration JSON file ('-' for stdin).
        #[arg(long)]
        config: PathBuf,
        /// Credentials JSON file ('-' for stdin); kept out of the command line.
        #[arg(long)]
        credentials: Option<PathBuf>,
        /// Remove what certkeeper put there when a binding to it is deleted.
        #[arg(long)]
        remove_on_unbind: bool,
    },
    /// Test the connection: credentials, permissions, region or zone, with read-only
    /// calls (admin). Exits 1 when a check fails.
    Test {
        /// Id or name.
        id: String,
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
const PLACE_COLS: &[&str] = &[
    "version",
    "kind",
    "name",
    "since",
    "last_seen",
    "ok",
    "stale_since",
    "detail",
];
const DEST_COLS: &[&str] = &[
    "name",
    "kind",
    "has_credentials",
    "remove_on_unbind",
    "created_at",
    "id",
];

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
        ManagedCmd::Deployments { id } => {
            let v = c
                .json(
                    Method::GET,
                    &format!("/managed/{id}/deployments"),
                    None,
                    &[],
                )
                .await?;
            // One row per place, every version's places in a single table.
            let places: Vec<Value> = v["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|ver| ver["places"].as_array().cloned().unwrap_or_default())
                .collect();
            if json_out {
                show(&v, true, PLACE_COLS);
            } else {
                print!("{}", table(&places, PLACE_COLS));
                let stale = v["stale"].as_array().map_or(0, Vec::len);
                if stale > 0 {
                    println!(
                        "
{stale} place(s) still serve an old version (see stale_since)"
                    );
                }
            }
        }
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
            keep_remote,
        } => {
            let mut query = Vec::new();
            if delete_remote || keep_remote {
                query.push(("delete_remote", delete_remote.to_string()));
            }
            c.json(
                Method::DELETE,
                &format!("/managed/{id}/bindings/{destination}"),
                None,
                &query,
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
            remove_on_unbind,
        } => {
            let mut body = json!({
                "name": name, "kind": kind, "config": json_file(&config, "--config")?,
                "remove_on_unbind": remove_on_unbind,
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
        DestinationCmd::Test { id } => {
            let v = c
                .json(Method::POST, &format!("/destinations/{id}/test"), None, &[])
                .await?;
            if json_out {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for check in v["checks"].as_array().into_iter().flatten() {
                    println!("ok: {}", check.as_str().unwrap_or_default());
                }
            }
            if v["ok"].as_bool() != Some(true) {
                anyhow::bail!(
                    "destination {id}: {}",
                    v["error"].as_str().unwrap_or("the test failed")
                );
            }
            if !json_out {
                println!("destination {id}: connection ok");
            }
        }
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
