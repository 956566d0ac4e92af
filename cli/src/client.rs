//! Client commands: talk to a running server over HTTPS with a bearer token, print tables
//! for people or JSON for scripts.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

mod admin;
mod issuers;
mod managed;
pub use admin::{
    AcmeCmd, AlertCmd, ChannelCmd, DiscoveryCmd, EabCmd, EstAdminCmd, EstCredentialCmd,
    EstLabelCmd, NewChannelArgs, NewRuleArgs, RuleCmd, ScheduleCmd,
};
pub use issuers::{CreateAcmeArgs, CreateAwsPcaArgs, IssuerCmd};
pub use managed::{DestinationCmd, ManagedCmd};

/// Connection options shared by every client command.
#[derive(Debug, Clone, Args)]
pub struct ConnOpts {
    /// Server URL.
    #[arg(
        long,
        global = true,
        env = "CERTKEEPER_SERVER",
        default_value = "https://127.0.0.1:8443"
    )]
    pub server: String,
    /// API token (default: the contents of DATA_DIR/admin.token).
    #[arg(long, global = true, env = "CERTKEEPER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The server CA certificate to trust, alone, for the server's HTTPS (default:
    /// DATA_DIR/server-ca.pem, which the server writes; not root.pem, which is what
    /// profiles issue under).
    #[arg(long, global = true, env = "CERTKEEPER_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Client commands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Certificate authorities.
    #[command(subcommand)]
    Ca(CaCmd),
    /// Profiles.
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// Certificates.
    #[command(subcommand)]
    Cert(CertCmd),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Managed certificates: renewed by the server and pushed to cloud destinations.
    #[command(subcommand)]
    Managed(ManagedCmd),
    /// Cloud destinations (AWS Certificate Manager, Azure Key Vault).
    #[command(subcommand)]
    Destination(DestinationCmd),
    /// Issuers: our CAs and external ACME CAs certificates are ordered from.
    #[command(subcommand)]
    Issuer(IssuerCmd),
    /// Expiry alerts: channels, rules, the delivery outbox (admin).
    #[command(subcommand)]
    Alert(AlertCmd),
    /// ACME administration: external account binding keys, renewal windows (admin).
    #[command(subcommand)]
    Acme(AcmeCmd),
    /// The discovery inventory, scans and scan schedules.
    #[command(subcommand)]
    Discovery(DiscoveryCmd),
    /// Read the audit log (admin).
    Audit {
        /// Entries to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only this action (for example certificate.issue).
        #[arg(long)]
        action: Option<String>,
    },
}

/// `certkeeper ca ...`
#[derive(Debug, Subcommand)]
pub enum CaCmd {
    /// List CAs.
    List,
    /// Show one CA (by id or name) with its chain.
    Get {
        /// CA id or name.
        id: String,
    },
    /// Create a self-signed root CA.
    CreateRoot(NewCaArgs),
    /// Create an intermediate CA signed by one of ours.
    CreateIntermediate {
        /// Parent CA id or name.
        #[arg(long)]
        parent: String,
        /// The new CA.
        #[command(flatten)]
        ca: NewCaArgs,
    },
    /// Create a CA to be signed elsewhere; prints its CSR.
    CreateExternal(NewCaArgs),
    /// Import an existing CA certificate and key.
    Import {
        /// Name for the CA.
        name: String,
        /// Certificate PEM file (optionally followed by its chain).
        #[arg(long)]
        cert: PathBuf,
        /// Private key PEM file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Print the CSR of a pending CA.
    Csr {
        /// CA id or name.
        id: String,
    },
    /// Install the signed certificate of a pending CA.
    Install {
        /// CA id or name.
        id: String,
        /// Certificate PEM file (optionally followed by its chain).
        #[arg(long)]
        cert: PathBuf,
    },
    /// Roll a CA over: a successor with a new key issues in its place from `--from` (now by
    /// default); a root's successor is cross-signed both ways.
    Rollover {
        /// CA id or name.
        id: String,
        /// Name of the successor to make.
        #[arg(long, conflicts_with = "successor")]
        name: Option<String>,
        /// Roll over onto this existing active CA instead (id or name).
        #[arg(long)]
        successor: Option<String>,
        /// The successor's common name (the current one's next generation by default).
        #[arg(long)]
        cn: Option<String>,
        /// The successor's key type (the current one's by default).
        #[arg(long)]
        key_type: Option<String>,
        /// The successor's lifetime in days (the current one's by default).
        #[arg(long)]
        days: Option<u32>,
        /// When the successor starts issuing, RFC 3339 (now by default).
        #[arg(long)]
        from: Option<String>,
        /// For an intermediate: the CA that signs its successor (id or name).
        #[arg(long)]
        parent: Option<String>,
    },
    /// List the cross certificates a CA is the subject or the issuer of.
    CrossCertificates {
        /// CA id or name.
        id: String,
    },
    /// Fetch a CA's current CRL (PEM).
    Crl {
        /// CA id or name.
        id: String,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Options of a new CA.
#[derive(Debug, Args)]
pub struct NewCaArgs {
    /// Unique name.
    pub name: String,
    /// Subject common name.
    #[arg(long)]
    pub cn: String,
    /// Key type (ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096).
    #[arg(long)]
    pub key_type: Option<String>,
    /// Lifetime in days.
    #[arg(long)]
    pub days: Option<u32>,
    /// Path length constraint.
    #[arg(long)]
    pub path_len: Option<u8>,
    /// Permitted DNS subtree (name constraint); repeatable.
    #[arg(long = "permit-dns")]
    pub permit_dns: Vec<String>,
    /// Permitted IP range (name constraint); repeatable.
    #[arg(long = "permit-ip")]
    pub permit_ip: Vec<String>,
    /// Where the CA key is kept: `sealed` (in the database, under the master key) or
    /// `pkcs11` (generated in the server's PKCS#11 token, never leaving it).
    #[arg(long, value_parser = ["sealed", "pkcs11"])]
    pub key_storage: Option<String>,
}

/// `certkeeper profile ...`
#[derive(Debug, Subcommand)]
pub enum ProfileCmd {
    /// List profiles.
    List,
    /// Show a profile.
    Get {
        /// Profile name.
        name: String,
    },
    /// Create a profile from a JSON file (fields as in the API; `name` and `ca` required).
    Create {
        /// JSON file, or - for stdin.
        #[arg(long)]
        file: PathBuf,
    },
    /// Replace a profile's policy from a JSON file.
    Update {
        /// Profile name.
        name: String,
        /// JSON file, or - for stdin.
        #[arg(long)]
        file: PathBuf,
    },
    /// Delete a profile.
    Delete {
        /// Profile name.
        name: String,
    },
}

/// `certkeeper cert ...`
#[derive(Debug, Subcommand)]
pub enum CertCmd {
    /// Issue a certificate for a CSR.
    Issue {
        /// Profile.
        #[arg(long, default_value = "default")]
        profile: String,
        /// CSR PEM file.
        #[arg(long)]
        csr: PathBuf,
        /// Lifetime in days.
        #[arg(long)]
        days: Option<u32>,
        /// Write the certificate and chain (PEM) here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Issue a certificate with a server-generated key.
    Generate {
        /// Profile.
        #[arg(long, default_value = "default")]
        profile: String,
        /// DNS name; repeatable.
        #[arg(long = "dns")]
        dns: Vec<String>,
        /// IP address; repeatable.
        #[arg(long = "ip")]
        ip: Vec<String>,
        /// Key type.
        #[arg(long)]
        key_type: Option<String>,
        /// Lifetime in days.
        #[arg(long)]
        days: Option<u32>,
        /// Keep the key (sealed) on the server as a managed certificate.
        #[arg(long)]
        managed: bool,
        /// Directory for cert.pem, chain.pem and key.pem (0600).
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
    },
    /// Search certificates.
    List {
        /// CA id or name.
        #[arg(long)]
        ca: Option<String>,
        /// Profile.
        #[arg(long)]
        profile: Option<String>,
        /// valid, expired or revoked.
        #[arg(long)]
        status: Option<String>,
        /// A name in the certificate (`*.example.com` for every name below).
        #[arg(long)]
        san: Option<String>,
        /// RFC 3339 time.
        #[arg(long)]
        expiring_before: Option<String>,
        /// Page size.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Cursor from a previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show a certificate.
    Get {
        /// Certificate id.
        id: String,
        /// json, pem, der or chain.
        #[arg(long, default_value = "json")]
        format: String,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Revoke a certificate.
    Revoke {
        /// Certificate id.
        id: String,
        /// RFC 5280 reason (keyCompromise, superseded, ...).
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
}

/// `certkeeper token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a token; prints its secret once.
    Create {
        /// Human name.
        #[arg(long)]
        name: String,
        /// admin, issuer, viewer or agent.
        #[arg(long)]
        role: String,
        /// Profiles an issuer token may use; repeatable.
        #[arg(long = "profile")]
        profiles: Vec<String>,
        /// Managed certificates (names or ids) an agent token may fetch and report on;
        /// repeatable.
        #[arg(long = "managed")]
        managed: Vec<String>,
        /// Expiry in days.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List tokens.
    List,
    /// Revoke a token.
    Revoke {
        /// Token id.
        id: String,
    },
}

/// Resolved client settings.
#[derive(Debug)]
pub struct ClientArgs {
    server: String,
    token: String,
    ca_pem: Option<Vec<u8>>,
    json: bool,
}

impl ClientArgs {
    /// Fill in defaults from the data directory.
    pub fn resolve(data_dir: &Path, opts: &ConnOpts) -> anyhow::Result<ClientArgs> {
        let token = match &opts.token {
            Some(t) => t.clone(),
            None => {
                let p = data_dir.join("admin.token");
                std::fs::read_to_string(&p)
                    .with_context(|| {
                        format!("no --token given and {} is not readable", p.display())
                    })?
                    .trim()
                    .to_string()
            }
        };
        let ca_path = opts
            .ca_file
            .clone()
            .unwrap_or_else(|| data_dir.join("server-ca.pem"));
        let ca_pem = match std::fs::read(&ca_path) {
            Ok(b) => Some(b),
            Err(_) if opts.ca_file.is_none() => None,
            Err(e) => bail!("reading {}: {e}", ca_path.display()),
        };
        Ok(ClientArgs {
            server: opts.server.trim_end_matches('/').to_string(),
            token,
            ca_pem,
            json: opts.json,
        })
    }
}

struct Client {
    http: reqwest::Client,
    args: ClientArgs,
}

impl Client {
    fn new(args: ClientArgs) -> anyhow::Result<Client> {
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(120));
        if let Some(pem) = &args.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .context("reading the root certificate")?;
            builder = builder.tls_certs_only(certs);
        }
        Ok(Client {
            http: builder.build()?,
            args,
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        query: &[(&str, String)],
    ) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}/api/v1{path}", self.args.server);
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(&self.args.token)
            .query(query);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("connecting to {}", self.args.server))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_string))
            .unwrap_or(text);
        bail!("{status}: {detail}")
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        query: &[(&str, String)],
    ) -> anyhow::Result<Value> {
        let resp = self.send(method, path, body, query).await?;
        if resp.status() == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        Ok(resp.json().await?)
    }
}

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

/// The rows of an answer: an `{"items": [...]}` page, a list, or one object.
fn rows(v: &Value) -> Vec<Value> {
    match v {
        Value::Object(o) if o.contains_key("items") => {
            o["items"].as_array().cloned().unwrap_or_default()
        }
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

/// Print an answer: pretty JSON, or a table of `cols`.
fn show(v: &Value, json_out: bool, cols: &[&str]) {
    if json_out {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        print!("{}", table(&rows(v), cols));
    }
}

fn table(rows: &[Value], cols: &[&str]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| cols.iter().map(|c| s(r, c)).collect())
        .collect();
    table_of(cols, &cells)
}

/// A plain-text table: upper-cased headers, columns padded to their widest cell.
pub(crate) fn table_of(cols: &[&str], cells: &[Vec<String>]) -> String {
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |vals: Vec<String>, out: &mut String| {
        let padded: Vec<String> = vals
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(cols.iter().map(|c| c.to_uppercase()).collect(), &mut out);
    for r in cells {
        line(r.clone(), &mut out);
    }
    out
}

fn read_input(p: &Path) -> anyhow::Result<String> {
    if p == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    }
}

fn emit(out: Option<&Path>, data: &[u8]) -> anyhow::Result<()> {
    match out {
        Some(p) => std::fs::write(p, data).with_context(|| format!("writing {}", p.display())),
        None => {
            use std::io::Write;
            std::io::stdout().write_all(data)?;
            Ok(())
        }
    }
}

fn new_ca_body(kind: &str, a: &NewCaArgs, parent: Option<&str>) -> Value {
    let mut body = json!({"name": a.name, "type": kind, "common_name": a.cn});
    if let Some(p) = parent {
        body["parent"] = json!(p);
    }
    if let Some(k) = &a.key_type {
        body["key_algorithm"] = json!(k);
    }
    if let Some(d) = a.days {
        body["validity_days"] = json!(d);
    }
    if let Some(p) = a.path_len {
        body["path_len"] = json!(p);
    }
    if let Some(s) = &a.key_storage {
        body["key_storage"] = json!(s);
    }
    if !a.permit_dns.is_empty() || !a.permit_ip.is_empty() {
        body["name_constraints"] =
            json!({"permitted_dns": a.permit_dns, "permitted_ips": a.permit_ip});
    }
    body
}

const CA_COLS: &[&str] = &[
    "name",
    "kind",
    "status",
    "subject",
    "key_algorithm",
    "not_after",
    "id",
];
/// Columns of cross certificates.
const CROSS_COLS: &[&str] = &["subject_ca_id", "issuer_ca_id", "serial", "not_after", "id"];
/// `ca list` (as a table) also shows how many days each CA has left.
const CA_LIST_COLS: &[&str] = &[
    "name",
    "kind",
    "status",
    "subject",
    "key_algorithm",
    "key_storage",
    "not_after",
    "days_left",
    "successor_id",
    "id",
];

/// Add `days_left` (whole days until `not_after`, negative once expired) to each CA of a
/// list, so people and scripts see at a glance which CA needs a rollover.
fn with_days_left(cas: &mut Value) {
    let now = time::OffsetDateTime::now_utc();
    for ca in cas.as_array_mut().into_iter().flatten() {
        let left = ca
            .get("not_after")
            .and_then(Value::as_str)
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|end| (end - now).whole_days());
        if let (Some(left), Some(obj)) = (left, ca.as_object_mut()) {
            obj.insert("days_left".into(), json!(left));
        }
    }
}

const CERT_COLS: &[&str] = &[
    "id",
    "status",
    "common_name",
    "sans",
    "profile",
    "not_after",
    "serial",
];

/// Run `certkeeper est label|credential ...`.
pub async fn run_est_admin(args: ClientArgs, cmd: EstAdminCmd) -> anyhow::Result<()> {
    let json_out = args.json;
    admin::run_est_admin(&Client::new(args)?, json_out, cmd).await
}

/// Run one client command.
pub async fn run(args: ClientArgs, cmd: ClientCommand) -> anyhow::Result<()> {
    let json_out = args.json;
    let c = Client::new(args)?;
    let print = |v: &Value, cols: &[&str]| {
        show(v, json_out, cols);
        if !json_out && let Some(next) = v.get("next_cursor").and_then(Value::as_str) {
            println!("(more: --cursor {next})");
        }
    };
    match cmd {
        ClientCommand::Ca(cmd) => match cmd {
            CaCmd::List => {
                let mut v = c.json(Method::GET, "/cas", None, &[]).await?;
                if !json_out {
                    with_days_left(&mut v);
                }
                print(&v, CA_LIST_COLS)
            }
            CaCmd::Get { id } => {
                let v = c
                    .json(Method::GET, &format!("/cas/{id}"), None, &[])
                    .await?;
                print(&v, CA_COLS);
                if !json_out && let Some(chain) = v.get("chain").and_then(Value::as_str) {
                    print!("{chain}");
                }
            }
            CaCmd::CreateRoot(a) => print(
                &c.json(
                    Method::POST,
                    "/cas",
                    Some(new_ca_body("root", &a, None)),
                    &[],
                )
                .await?,
                CA_COLS,
            ),
            CaCmd::CreateIntermediate { parent, ca } => print(
                &c.json(
                    Method::POST,
                    "/cas",
                    Some(new_ca_body("intermediate", &ca, Some(&parent))),
                    &[],
                )
                .await?,
                CA_COLS,
            ),
            CaCmd::CreateExternal(a) => {
                let v = c
                    .json(
                        Method::POST,
                        "/cas",
                        Some(new_ca_body("external", &a, None)),
                        &[],
                    )
                    .await?;
                if json_out {
                    print(&v, CA_COLS);
                } else {
                    print!("{}", s(&v, "csr"));
                }
            }
            CaCmd::Import { name, cert, key } => {
                let body = json!({"name": name, "certificate": read_input(&cert)?, "private_key": read_input(&key)?});
                print(
                    &c.json(Method::POST, "/cas/import", Some(body), &[]).await?,
                    CA_COLS,
                )
            }
            CaCmd::Csr { id } => print!(
                "{}",
                c.send(Method::GET, &format!("/cas/{id}/csr"), None, &[])
                    .await?
                    .text()
                    .await?
            ),
            CaCmd::Install { id, cert } => {
                let body = json!({"certificate": read_input(&cert)?});
                print(
                    &c.json(
                        Method::POST,
                        &format!("/cas/{id}/certificate"),
                        Some(body),
                        &[],
                    )
                    .await?,
                    CA_COLS,
                )
            }
            CaCmd::Rollover {
                id,
                name,
                successor,
                cn,
                key_type,
                days,
                from,
                parent,
            } => {
                let mut body = serde_json::Map::new();
                let fields = [
                    ("name", name.map(Value::from)),
                    ("successor", successor.map(Value::from)),
                    ("common_name", cn.map(Value::from)),
                    ("key_algorithm", key_type.map(Value::from)),
                    ("validity_days", days.map(Value::from)),
                    ("from", from.map(Value::from)),
                    ("parent", parent.map(Value::from)),
                ];
                for (k, v) in fields {
                    if let Some(v) = v {
                        body.insert(k.into(), v);
                    }
                }
                let v = c
                    .json(
                        Method::POST,
                        &format!("/cas/{id}/rollover"),
                        Some(Value::Object(body)),
                        &[],
                    )
                    .await?;
                if json_out {
                    print(&v, CA_COLS);
                } else {
                    show(&v["successor"], false, CA_COLS);
                    show(&v["cross_certificates"], false, CROSS_COLS);
                }
            }
            CaCmd::CrossCertificates { id } => print(
                &c.json(
                    Method::GET,
                    &format!("/cas/{id}/cross-certificates"),
                    None,
                    &[],
                )
                .await?,
                CROSS_COLS,
            ),
            CaCmd::Crl { id, out } => {
                let pem = c
                    .send(
                        Method::GET,
                        &format!("/cas/{id}/crl"),
                        None,
                        &[("format", "pem".into())],
                    )
                    .await?
                    .bytes()
                    .await?;
                emit(out.as_deref(), &pem)?
            }
        },
        ClientCommand::Profile(cmd) => {
            let cols = &[
                "name",
                "ca",
                "max_validity_days",
                "allowed_dns_names",
                "allowed_key_types",
            ];
            match cmd {
                ProfileCmd::List => {
                    print(&c.json(Method::GET, "/profiles", None, &[]).await?, cols)
                }
                ProfileCmd::Get { name } => {
                    let v = c
                        .json(Method::GET, &format!("/profiles/{name}"), None, &[])
                        .await?;
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
                ProfileCmd::Create { file } => {
                    let body: Value = serde_json::from_str(&read_input(&file)?)
                        .context("the profile file must be JSON")?;
                    print(
                        &c.json(Method::POST, "/profiles", Some(body), &[]).await?,
                        cols,
                    )
                }
                ProfileCmd::Update { name, file } => {
                    let body: Value = serde_json::from_str(&read_input(&file)?)
                        .context("the profile file must be JSON")?;
                    print(
                        &c.json(Method::PUT, &format!("/profiles/{name}"), Some(body), &[])
                            .await?,
                        cols,
                    )
                }
                ProfileCmd::Delete { name } => {
                    c.json(Method::DELETE, &format!("/profiles/{name}"), None, &[])
                        .await?;
                    if !json_out {
                        println!("deleted profile {name}");
                    }
                }
            }
        }
        ClientCommand::Cert(cmd) => match cmd {
            CertCmd::Issue {
                profile,
                csr,
                days,
                out,
            } => {
                let mut body = json!({"profile": profile, "csr": read_input(&csr)?});
                if let Some(d) = days {
                    body["validity_days"] = json!(d);
                }
                let v = c
                    .json(Method::POST, "/certificates", Some(body), &[])
                    .await?;
                if let Some(p) = out {
                    emit(
                        Some(&p),
                        format!("{}{}", s(&v, "certificate"), s(&v, "chain")).as_bytes(),
                    )?;
                }
                print(&v, &["id", "serial", "subject", "sans", "not_after"]);
            }
            CertCmd::Generate {
                profile,
                dns,
                ip,
                key_type,
                days,
                managed,
                out_dir,
            } => {
                let mut body = json!({"profile": profile, "dns_names": dns, "ip_addresses": ip, "managed": managed});
                if let Some(k) = key_type {
                    body["key_algorithm"] = json!(k);
                }
                if let Some(d) = days {
                    body["validity_days"] = json!(d);
                }
                let v = c
                    .json(Method::POST, "/certificates/generate", Some(body), &[])
                    .await?;
                std::fs::create_dir_all(&out_dir)?;
                std::fs::write(out_dir.join("cert.pem"), s(&v, "certificate"))?;
                std::fs::write(out_dir.join("chain.pem"), s(&v, "chain"))?;
                {
                    use std::io::Write;
                    use std::os::unix::fs::OpenOptionsExt;
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .mode(0o600)
                        .open(out_dir.join("key.pem"))?;
                    f.write_all(s(&v, "private_key").as_bytes())?;
                }
                let mut shown = v.clone();
                if let Some(o) = shown.as_object_mut() {
                    o.remove("private_key");
                }
                print(&shown, &["id", "serial", "subject", "sans", "not_after"]);
                if !json_out {
                    println!(
                        "wrote cert.pem, chain.pem and key.pem to {}",
                        out_dir.display()
                    );
                }
            }
            CertCmd::List {
                ca,
                profile,
                status,
                san,
                expiring_before,
                limit,
                cursor,
            } => {
                let mut q: Vec<(&str, String)> = vec![("limit", limit.to_string())];
                for (k, v) in [
                    ("ca", ca),
                    ("profile", profile),
                    ("status", status),
                    ("san", san),
                    ("expiring_before", expiring_before),
                    ("cursor", cursor),
                ] {
                    if let Some(v) = v {
                        q.push((k, v));
                    }
                }
                print(
                    &c.json(Method::GET, "/certificates", None, &q).await?,
                    CERT_COLS,
                )
            }
            CertCmd::Get { id, format, out } => match format.as_str() {
                "json" => {
                    let v = c
                        .json(Method::GET, &format!("/certificates/{id}"), None, &[])
                        .await?;
                    emit(
                        out.as_deref(),
                        format!("{}\n", serde_json::to_string_pretty(&v)?).as_bytes(),
                    )?
                }
                "pem" | "der" | "chain" => {
                    let b = c
                        .send(
                            Method::GET,
                            &format!("/certificates/{id}/{format}"),
                            None,
                            &[],
                        )
                        .await?
                        .bytes()
                        .await?;
                    emit(out.as_deref(), &b)?
                }
                other => bail!("--format {other:?} is not one of json, pem, der, chain"),
            },
            CertCmd::Revoke { id, reason } => print(
                &c.json(
                    Method::POST,
                    &format!("/certificates/{id}/revoke"),
                    Some(json!({"reason": reason})),
                    &[],
                )
                .await?,
                CERT_COLS,
            ),
        },
        ClientCommand::Token(cmd) => {
            let cols = &["id", "name", "role", "profiles", "expires_at", "revoked_at"];
            match cmd {
                TokenCmd::Create {
                    name,
                    role,
                    profiles,
                    managed,
                    expires_in_days,
                } => {
                    let mut body = json!({"name": name, "role": role, "profiles": profiles, "managed": managed});
                    if let Some(d) = expires_in_days {
                        body["expires_in_days"] = json!(d);
                    }
                    let v = c.json(Method::POST, "/tokens", Some(body), &[]).await?;
                    if json_out {
                        print(&v, cols);
                    } else {
                        println!("{}", s(&v, "token"));
                        eprintln!(
                            "token {} created; the secret above is shown only once",
                            s(&v, "id")
                        );
                    }
                }
                TokenCmd::List => print(&c.json(Method::GET, "/tokens", None, &[]).await?, cols),
                TokenCmd::Revoke { id } => {
                    c.json(Method::DELETE, &format!("/tokens/{id}"), None, &[])
                        .await?;
                    if !json_out {
                        println!("revoked token {id}");
                    }
                }
            }
        }
        ClientCommand::Managed(cmd) => managed::run_managed(&c, json_out, cmd).await?,
        ClientCommand::Alert(cmd) => admin::run_alert(&c, json_out, cmd).await?,
        ClientCommand::Acme(cmd) => admin::run_acme(&c, json_out, cmd).await?,
        ClientCommand::Discovery(cmd) => admin::run_discovery(&c, json_out, cmd).await?,
        ClientCommand::Destination(cmd) => managed::run_destination(&c, json_out, cmd).await?,
        ClientCommand::Issuer(cmd) => issuers::run_issuer(&c, json_out, cmd).await?,
        ClientCommand::Audit { limit, action } => {
            let mut q = vec![("limit", limit.to_string())];
            if let Some(a) = action {
                q.push(("action", a));
            }
            print(
                &c.json(Method::GET, "/audit", None, &q).await?,
                &[
                    "id",
                    "at",
                    "actor",
                    "action",
                    "object_type",
                    "object_id",
                    "source",
                ],
            )
        }
    }
    Ok(())
}

/// `certkeeper scan --server ...`: submit the scan, wait for it, print its results.
pub async fn scan_remote(args: ClientArgs, scan: &crate::scan::ScanArgs) -> anyhow::Result<()> {
    let body = crate::scan::remote_body(scan)?;
    let c = Client::new(args)?;
    let job = c
        .json(Method::POST, "/discovery/scans", Some(body), &[])
        .await?;
    let id = s(&job, "id");
    if scan.no_wait {
        println!("{}", if scan.json { job.to_string() } else { id });
        return Ok(());
    }
    let job = loop {
        let job = c
            .json(Method::GET, &format!("/discovery/scans/{id}"), None, &[])
            .await?;
        match job.get("status").and_then(Value::as_str) {
            Some("queued" | "running") => {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
            _ => break job,
        }
    };
    if job.get("status").and_then(Value::as_str) != Some("succeeded") {
        bail!("scan {id} {}: {}", s(&job, "status"), s(&job, "error"));
    }
    let results = c
        .json(
            Method::GET,
            &format!("/discovery/scans/{id}/results"),
            None,
            &[],
        )
        .await?;
    let obs: Vec<certkeeper_discovery::Observation> =
        serde_json::from_value(results.get("items").cloned().unwrap_or_default())
            .context("reading the scan results")?;
    emit(
        None,
        crate::scan::print_observations(scan, &obs)?.as_bytes(),
    )?;
    eprintln!("scan {id}: {}", s(&job, "summary"));
    Ok(())
}
