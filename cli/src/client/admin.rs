//! `certkeeper alert ...`, `certkeeper acme ...`, `certkeeper discovery ...` and
//! `certkeeper est label|credential ...`: the administration the REST API offers for alerts,
//! ACME, discovery and EST, from the command line.
//!
//! Secrets (webhook URLs, HMAC keys, SMTP passwords) are read from files (`-` for stdin), so
//! they stay out of the process list and shell history; secrets the server creates (EAB
//! keys, EST passwords) are printed once, as the API shows them once.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::{Client, read_input, show};
use crate::scan::ScanArgs;

/// `certkeeper alert ...`
#[derive(Debug, Subcommand)]
pub enum AlertCmd {
    /// Where notifications go: webhooks, Slack, Teams, Discord, email.
    #[command(subcommand)]
    Channel(ChannelCmd),
    /// Which certificates to watch, when, and which channels to tell.
    #[command(subcommand)]
    Rule(RuleCmd),
    /// The delivery outbox, newest first.
    Outbox {
        /// Only rows in this state: pending, delivered or dead.
        #[arg(long)]
        status: Option<String>,
        /// Rows to show (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Evaluate the rules now; the delivery job sends what they queue.
    Sweep,
}

/// `certkeeper alert channel ...`
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
pub enum ChannelCmd {
    /// List channels (never their secrets).
    List,
    /// Create a channel.
    Create(NewChannelArgs),
    /// Send a test message at once and show what the receiver answered.
    Test {
        /// Channel id or name.
        id: String,
    },
    /// Delete a channel (refused while a rule uses it).
    Delete {
        /// Channel id or name.
        id: String,
    },
}

/// A new channel.
#[derive(Debug, Args)]
pub struct NewChannelArgs {
    /// Unique name.
    name: String,
    /// webhook, slack, teams, discord or email.
    #[arg(long)]
    kind: String,
    /// File holding the webhook URL (`-`: stdin); Slack, Teams and Discord URLs are secrets.
    #[arg(long)]
    url_file: Option<PathBuf>,
    /// File holding the HMAC-SHA256 key that signs generic webhook requests.
    #[arg(long)]
    hmac_key_file: Option<PathBuf>,
    /// Extra header of a generic webhook, `Name=value`; repeatable.
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Email: SMTP server host.
    #[arg(long)]
    smtp_host: Option<String>,
    /// Email: SMTP server port.
    #[arg(long, default_value_t = 587)]
    smtp_port: u16,
    /// Email: starttls, tls or none.
    #[arg(long, default_value = "starttls")]
    smtp_tls: String,
    /// Email: login name.
    #[arg(long)]
    smtp_username: Option<String>,
    /// Email: file holding the SMTP password.
    #[arg(long)]
    smtp_password_file: Option<PathBuf>,
    /// Email: sender address.
    #[arg(long)]
    from: Option<String>,
    /// Email: recipient; repeatable.
    #[arg(long = "to")]
    to: Vec<String>,
}

/// `certkeeper alert rule ...`
#[derive(Debug, Subcommand)]
pub enum RuleCmd {
    /// List rules.
    List,
    /// Create a rule.
    Create(NewRuleArgs),
    /// Delete a rule.
    Delete {
        /// Rule id or name.
        id: String,
    },
}

/// A new rule.
#[derive(Debug, Args)]
pub struct NewRuleArgs {
    /// Unique name.
    name: String,
    /// Channel id or name to notify; repeatable, at least one.
    #[arg(long = "channel", required = true)]
    channels: Vec<String>,
    /// Days before expiry to alert at; repeatable (default 30, 14, 7, 1).
    #[arg(long = "threshold")]
    thresholds: Vec<u32>,
    /// Lifecycle event to forward (certificate.revoked, ...); repeatable.
    #[arg(long = "event")]
    events: Vec<String>,
    /// Only certificates of this issuing CA (id or name).
    #[arg(long)]
    ca: Option<String>,
    /// Only certificates of this profile.
    #[arg(long)]
    profile: Option<String>,
    /// Only certificates with this name (`*.example.com`: every name below).
    #[arg(long)]
    san: Option<String>,
    /// Only certificates with one of these inventory tags; repeatable.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Only certificates found by discovery.
    #[arg(long)]
    discovered_only: bool,
    /// Below the last threshold, remind once a day until expiry.
    #[arg(long)]
    daily_reminder: bool,
    /// One message per sweep listing every crossing.
    #[arg(long)]
    digest: bool,
    /// Create the rule switched off.
    #[arg(long)]
    disabled: bool,
}

/// `certkeeper acme ...`
#[derive(Debug, Subcommand)]
pub enum AcmeCmd {
    /// External account binding keys.
    #[command(subcommand)]
    Eab(EabCmd),
    /// Move the suggested renewal window (RFC 9773) of a CA's or one certificate's
    /// certificates, so ACME clients renew early.
    RenewalWindow {
        /// Every certificate of this CA (id or name).
        #[arg(
            long,
            conflicts_with = "certificate",
            required_unless_present = "certificate"
        )]
        ca: Option<String>,
        /// One certificate (id).
        #[arg(long)]
        certificate: Option<String>,
        /// Window start (RFC 3339).
        #[arg(long)]
        start: String,
        /// Window end (RFC 3339).
        #[arg(long)]
        end: String,
    },
}

/// `certkeeper acme eab ...`
#[derive(Debug, Subcommand)]
pub enum EabCmd {
    /// Create a key for an ACME client; its HMAC key is printed once.
    Create {
        /// The profile accounts bound with it issue under.
        #[arg(long)]
        profile: String,
        /// A label for people.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List keys (never their HMAC keys).
    List,
}

/// `certkeeper discovery ...`
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
pub enum DiscoveryCmd {
    /// Scans, newest first.
    Scans {
        /// Scans to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// The certificates in the inventory.
    Certificates,
    /// The endpoints in the inventory and what each serves.
    Endpoints,
    /// Scans on a cron schedule.
    #[command(subcommand)]
    Schedule(ScheduleCmd),
}

/// `certkeeper discovery schedule ...`
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
pub enum ScheduleCmd {
    /// List schedules.
    List,
    /// Create a schedule: a cron expression and what to scan.
    Create {
        /// Unique name.
        #[arg(long)]
        name: String,
        /// Cron expression (`0 3 * * *`: every day at 03:00 UTC).
        #[arg(long)]
        cron: String,
        /// Create it switched off.
        #[arg(long)]
        disabled: bool,
        /// What to scan, as for `certkeeper scan`.
        #[command(flatten)]
        scan: ScanArgs,
    },
    /// Delete a schedule.
    Delete {
        /// Schedule id.
        id: String,
    },
}

/// `certkeeper est label|credential ...`
#[derive(Debug, Subcommand)]
pub enum EstAdminCmd {
    /// EST labels (`/.well-known/est/<label>/`): each issues under one profile.
    #[command(subcommand)]
    Label(EstLabelCmd),
    /// Bootstrap credentials for devices (HTTP Basic); the password is printed once.
    #[command(subcommand)]
    Credential(EstCredentialCmd),
}

/// `certkeeper est label ...`
#[derive(Debug, Subcommand)]
pub enum EstLabelCmd {
    /// List labels.
    List,
    /// Create a label.
    Create {
        /// The label (the path segment).
        label: String,
        /// The profile enrollments under it use.
        #[arg(long)]
        profile: String,
        /// Require the TLS channel binding of RFC 7030 section 3.5 in CSRs.
        #[arg(long)]
        require_channel_binding: bool,
    },
    /// Delete a label: its path stops working and its credentials are revoked.
    Delete {
        /// The label.
        label: String,
    },
}

/// `certkeeper est credential ...`
#[derive(Debug, Subcommand)]
pub enum EstCredentialCmd {
    /// List credentials (never their passwords).
    List,
    /// Create a credential; the server picks the password unless --password-file is given.
    Create {
        /// The user name the device sends.
        username: String,
        /// Only this label.
        #[arg(long)]
        label: Option<String>,
        /// File holding the password to set.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Expiry, in days.
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Enrollments allowed.
        #[arg(long)]
        max_uses: Option<u32>,
    },
    /// Revoke a credential: it stops working at once.
    Revoke {
        /// Credential id.
        id: String,
    },
}

const CHANNEL_COLS: &[&str] = &["name", "kind", "config", "created_at", "id"];
const RULE_COLS: &[&str] = &["name", "thresholds", "channels", "events", "enabled", "id"];
const OUTBOX_COLS: &[&str] = &[
    "status",
    "event_type",
    "channel_id",
    "attempts",
    "last_status",
    "last_error",
    "created_at",
];
const EAB_COLS: &[&str] = &["id", "profile", "name", "account_id", "created_at"];
const SCAN_COLS: &[&str] = &["id", "status", "done", "total", "handshakes", "created_at"];
const INVENTORY_CERT_COLS: &[&str] = &[
    "subject",
    "dns_names",
    "not_after",
    "issued_by_certkeeper",
    "fingerprint",
];
const ENDPOINT_COLS: &[&str] = &["address", "port", "sni", "findings", "fingerprint"];
const SCHEDULE_COLS: &[&str] = &["name", "cron", "enabled", "next_run", "id"];
const LABEL_COLS: &[&str] = &["label", "profile", "require_channel_binding"];
const CREDENTIAL_COLS: &[&str] = &[
    "id",
    "username",
    "label",
    "uses_left",
    "expires_at",
    "revoked_at",
];

/// The trimmed contents of a secret file (`-`: stdin).
fn secret(path: &std::path::Path) -> anyhow::Result<String> {
    let s = read_input(path)?.trim().to_string();
    if s.is_empty() {
        bail!("{} is empty", path.display());
    }
    Ok(s)
}

/// Set `body[key]` when there is a value.
fn set(body: &mut Value, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        body[key] = v;
    }
}

fn channel_body(a: NewChannelArgs) -> anyhow::Result<Value> {
    let mut body = json!({"name": a.name, "kind": a.kind});
    set(
        &mut body,
        "url",
        a.url_file
            .as_deref()
            .map(secret)
            .transpose()?
            .map(Value::from),
    );
    set(
        &mut body,
        "hmac_key",
        a.hmac_key_file
            .as_deref()
            .map(secret)
            .transpose()?
            .map(Value::from),
    );
    if !a.headers.is_empty() {
        let mut headers = serde_json::Map::new();
        for h in &a.headers {
            let (k, v) = h
                .split_once('=')
                .with_context(|| format!("--header {h:?}: expected Name=value"))?;
            headers.insert(k.trim().into(), v.trim().into());
        }
        body["headers"] = Value::Object(headers);
    }
    if let Some(host) = a.smtp_host {
        let from = a.from.context("--from is required with --smtp-host")?;
        let mut smtp =
            json!({"host": host, "port": a.smtp_port, "tls": a.smtp_tls, "from": from, "to": a.to});
        set(&mut smtp, "username", a.smtp_username.map(Value::from));
        body["smtp"] = smtp;
        set(
            &mut body,
            "password",
            a.smtp_password_file
                .as_deref()
                .map(secret)
                .transpose()?
                .map(Value::from),
        );
    }
    Ok(body)
}

fn rule_body(a: NewRuleArgs) -> Value {
    let mut selector = json!({});
    set(&mut selector, "ca_id", a.ca.map(Value::from));
    set(&mut selector, "profile", a.profile.map(Value::from));
    set(&mut selector, "san", a.san.map(Value::from));
    if !a.tags.is_empty() {
        selector["tags"] = json!(a.tags);
    }
    if a.discovered_only {
        selector["discovered_only"] = json!(true);
    }
    let mut body = json!({
        "name": a.name, "channels": a.channels, "selector": selector, "events": a.events,
        "daily_reminder": a.daily_reminder, "digest": a.digest, "enabled": !a.disabled,
    });
    if !a.thresholds.is_empty() {
        body["thresholds"] = json!(a.thresholds);
    }
    body
}

/// Run `certkeeper alert ...`.
pub(super) async fn run_alert(c: &Client, json_out: bool, cmd: AlertCmd) -> anyhow::Result<()> {
    match cmd {
        AlertCmd::Channel(ChannelCmd::List) => show(
            &c.json(Method::GET, "/alerts/channels", None, &[]).await?,
            json_out,
            CHANNEL_COLS,
        ),
        AlertCmd::Channel(ChannelCmd::Create(a)) => show(
            &c.json(
                Method::POST,
                "/alerts/channels",
                Some(channel_body(a)?),
                &[],
            )
            .await?,
            json_out,
            CHANNEL_COLS,
        ),
        AlertCmd::Channel(ChannelCmd::Test { id }) => show(
            &c.json(
                Method::POST,
                &format!("/alerts/channels/{id}/test"),
                None,
                &[],
            )
            .await?,
            json_out,
            &["delivered", "status", "error"],
        ),
        AlertCmd::Channel(ChannelCmd::Delete { id }) => {
            c.json(Method::DELETE, &format!("/alerts/channels/{id}"), None, &[])
                .await?;
        }
        AlertCmd::Rule(RuleCmd::List) => show(
            &c.json(Method::GET, "/alerts/rules", None, &[]).await?,
            json_out,
            RULE_COLS,
        ),
        AlertCmd::Rule(RuleCmd::Create(a)) => show(
            &c.json(Method::POST, "/alerts/rules", Some(rule_body(a)), &[])
                .await?,
            json_out,
            RULE_COLS,
        ),
        AlertCmd::Rule(RuleCmd::Delete { id }) => {
            c.json(Method::DELETE, &format!("/alerts/rules/{id}"), None, &[])
                .await?;
        }
        AlertCmd::Outbox { status, limit } => {
            let mut q = vec![("limit", limit.to_string())];
            if let Some(s) = status {
                q.push(("status", s));
            }
            show(
                &c.json(Method::GET, "/alerts/outbox", None, &q).await?,
                json_out,
                OUTBOX_COLS,
            )
        }
        AlertCmd::Sweep => {
            let v = c.json(Method::POST, "/alerts/sweep", None, &[]).await?;
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
    }
    Ok(())
}

/// Run `certkeeper acme ...`.
pub(super) async fn run_acme(c: &Client, json_out: bool, cmd: AcmeCmd) -> anyhow::Result<()> {
    match cmd {
        AcmeCmd::Eab(EabCmd::Create { profile, name }) => {
            let v = c
                .json(
                    Method::POST,
                    "/acme/eab-keys",
                    Some(json!({"profile": profile, "name": name})),
                    &[],
                )
                .await?;
            if json_out {
                show(&v, true, &[]);
            } else {
                println!("key id:   {}", super::s(&v, "id"));
                println!("hmac key: {} (shown once)", super::s(&v, "hmac_key"));
            }
        }
        AcmeCmd::Eab(EabCmd::List) => show(
            &c.json(Method::GET, "/acme/eab-keys", None, &[]).await?,
            json_out,
            EAB_COLS,
        ),
        AcmeCmd::RenewalWindow {
            ca,
            certificate,
            start,
            end,
        } => {
            let mut body = json!({"start": start, "end": end});
            set(&mut body, "ca", ca.map(Value::from));
            set(&mut body, "certificate", certificate.map(Value::from));
            show(
                &c.json(Method::POST, "/acme/renewal-windows", Some(body), &[])
                    .await?,
                json_out,
                &["id", "ca", "certificate", "start", "end"],
            )
        }
    }
    Ok(())
}

/// Run `certkeeper discovery ...`.
pub(super) async fn run_discovery(
    c: &Client,
    json_out: bool,
    cmd: DiscoveryCmd,
) -> anyhow::Result<()> {
    match cmd {
        DiscoveryCmd::Scans { limit } => show(
            &c.json(
                Method::GET,
                "/discovery/scans",
                None,
                &[("limit", limit.to_string())],
            )
            .await?,
            json_out,
            SCAN_COLS,
        ),
        DiscoveryCmd::Certificates => show(
            &c.json(Method::GET, "/discovery/certificates", None, &[])
                .await?,
            json_out,
            INVENTORY_CERT_COLS,
        ),
        DiscoveryCmd::Endpoints => show(
            &c.json(Method::GET, "/discovery/endpoints", None, &[])
                .await?,
            json_out,
            ENDPOINT_COLS,
        ),
        DiscoveryCmd::Schedule(ScheduleCmd::List) => show(
            &c.json(Method::GET, "/discovery/schedules", None, &[])
                .await?,
            json_out,
            SCHEDULE_COLS,
        ),
        DiscoveryCmd::Schedule(ScheduleCmd::Create {
            name,
            cron,
            disabled,
            scan,
        }) => {
            let body = json!({
                "name": name, "cron": cron, "enabled": !disabled,
                "scan": crate::scan::remote_body(&scan)?,
            });
            show(
                &c.json(Method::POST, "/discovery/schedules", Some(body), &[])
                    .await?,
                json_out,
                SCHEDULE_COLS,
            )
        }
        DiscoveryCmd::Schedule(ScheduleCmd::Delete { id }) => {
            c.json(
                Method::DELETE,
                &format!("/discovery/schedules/{id}"),
                None,
                &[],
            )
            .await?;
        }
    }
    Ok(())
}

/// Run `certkeeper est label|credential ...`.
pub(super) async fn run_est_admin(
    c: &Client,
    json_out: bool,
    cmd: EstAdminCmd,
) -> anyhow::Result<()> {
    match cmd {
        EstAdminCmd::Label(EstLabelCmd::List) => show(
            &c.json(Method::GET, "/est/labels", None, &[]).await?,
            json_out,
            LABEL_COLS,
        ),
        EstAdminCmd::Label(EstLabelCmd::Create {
            label,
            profile,
            require_channel_binding,
        }) => show(
            &c.json(
                Method::POST,
                "/est/labels",
                Some(json!({"label": label, "profile": profile, "require_channel_binding": require_channel_binding})),
                &[],
            )
            .await?,
            json_out,
            LABEL_COLS,
        ),
        EstAdminCmd::Label(EstLabelCmd::Delete { label }) => {
            c.json(Method::DELETE, &format!("/est/labels/{label}"), None, &[])
                .await?;
        }
        EstAdminCmd::Credential(EstCredentialCmd::List) => show(
            &c.json(Method::GET, "/est/credentials", None, &[]).await?,
            json_out,
            CREDENTIAL_COLS,
        ),
        EstAdminCmd::Credential(EstCredentialCmd::Create {
            username,
            label,
            password_file,
            expires_in_days,
            max_uses,
        }) => {
            let mut body = json!({"username": username});
            set(&mut body, "label", label.map(Value::from));
            set(
                &mut body,
                "password",
                password_file.as_deref().map(secret).transpose()?.map(Value::from),
            );
            set(&mut body, "expires_in_days", expires_in_days.map(Value::from));
            set(&mut body, "max_uses", max_uses.map(Value::from));
            let v = c.json(Method::POST, "/est/credentials", Some(body), &[]).await?;
            if json_out {
                show(&v, true, &[]);
            } else {
                show(&v, false, CREDENTIAL_COLS);
                println!("password: {} (shown once)", super::s(&v, "password"));
            }
        }
        EstAdminCmd::Credential(EstCredentialCmd::Revoke { id }) => {
            c.json(Method::DELETE, &format!("/est/credentials/{id}"), None, &[])
                .await?;
        }
    }
    Ok(())
}
