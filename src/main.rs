//! The `certkeeper` command: `serve`, `init`, and client commands for a running server.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use certkeeper::config::{LogFormat, Settings};
use certkeeper_cli::client::{self, ClientArgs, ClientCommand, ConnOpts};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// mimalloc: issuance allocates many small buffers across threads, where it beats glibc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "certkeeper",
    version,
    about = "X.509 certificate lifecycle manager: private CA, REST API, CRL and OCSP"
)]
struct Cli {
    /// Data directory (database, master key, admin token, root certificate).
    #[arg(
        long,
        global = true,
        env = "CERTKEEPER_DATA_DIR",
        default_value = "./certkeeper-data"
    )]
    data_dir: PathBuf,
    /// Settings file (default: DATA_DIR/certkeeper.toml when it exists).
    #[arg(long, global = true, env = "CERTKEEPER_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    conn: ConnOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the server (creates everything it needs on first start).
    Serve,
    /// Do the first-start work (data directory, CAs, admin token) without serving.
    Init,
    /// EST (RFC 7030) client: enroll and renew this host's certificate.
    #[command(subcommand)]
    Est(certkeeper_cli::est::EstCommand),
    /// Scan networks for TLS certificates: here, or on the server with --server.
    Scan(certkeeper_cli::scan::ScanArgs),
    /// Talk to a running server.
    #[command(flatten)]
    Client(ClientCommand),
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&settings.server.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.server.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let server_given = matches!(
        matches
            .subcommand()
            .and_then(|(_, m)| m.value_source("server")),
        Some(ValueSource::CommandLine)
    );
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve | Command::Init => {
            let settings = Arc::new(Settings::load(&cli.data_dir, cli.config.as_deref())?);
            init_logging(&settings);
            rt.block_on(async {
                let clock: Arc<dyn certkeeper_ca::Clock> = Arc::new(certkeeper_ca::SystemClock);
                let booted = certkeeper::bootstrap::boot(settings.clone(), clock).await?;
                if matches!(cli.command, Command::Serve) {
                    certkeeper::server::run(booted, certkeeper::server::shutdown_signal()).await
                } else {
                    if let Some(t) = &booted.new_admin_token {
                        println!(
                            "admin token (shown once; also in {}):\n{t}",
                            settings.data_dir.join("admin.token").display()
                        );
                    }
                    println!(
                        "root certificate (what profiles issue under): {}",
                        settings.data_dir.join("root.pem").display()
                    );
                    println!(
                        "server CA (what clients of this server trust for its HTTPS): {}",
                        settings
                            .data_dir
                            .join(certkeeper::bootstrap::SERVER_CA_FILE)
                            .display()
                    );
                    booted.pki.close().await;
                    Ok(())
                }
            })
        }
        Command::Est(cmd) => {
            // The server CA alone: --ca-file, else the data directory's server-ca.pem when
            // this machine has one (on a device without either, the system roots).
            let ca_pem = match &cli.conn.ca_file {
                Some(f) => {
                    Some(std::fs::read(f).with_context(|| format!("reading {}", f.display()))?)
                }
                None => {
                    std::fs::read(cli.data_dir.join(certkeeper::bootstrap::SERVER_CA_FILE)).ok()
                }
            };
            rt.block_on(certkeeper_cli::est::run(
                &cli.conn.server,
                ca_pem.as_deref(),
                cmd,
            ))
        }
        Command::Scan(mut args) => {
            args.json = cli.conn.json;
            if server_given {
                let client_args =
                    ClientArgs::resolve(&cli.data_dir, &cli.conn).context("client settings")?;
                rt.block_on(client::scan_remote(client_args, &args))
            } else {
                rt.block_on(certkeeper_cli::scan::run_local(args, &cli.data_dir))
            }
        }
        Command::Client(cmd) => {
            let args = ClientArgs::resolve(&cli.data_dir, &cli.conn).context("client settings")?;
            rt.block_on(client::run(args, cmd))
        }
    }
}
