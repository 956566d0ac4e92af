//! The `certkeeper` command: `serve`, `init`, and client commands for a running server.

use std::io::Write;
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
    /// Settings file (default: DATA_DIR/certkeeper.toml when it exists); for `agent`, the
    /// agent's configuration file.
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
    /// Keep this host's certificate files current: fetch managed certificates with an agent
    /// token, write them, reload, report (see the README's "Host agent"). The agent's
    /// configuration file is --config.
    Agent(certkeeper_cli::agent::AgentArgs),
    /// Scan networks for TLS certificates: here, or on the server with --server.
    Scan(certkeeper_cli::scan::ScanArgs),
    /// Write a consistent backup of the SQLite data directory to a tar file (safe while
    /// servers run). The master key is left out unless --with-master-key is given.
    Backup {
        /// The archive to write (it must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Put the master key in the archive too (then guard the archive like the key).
        #[arg(long)]
        with_master_key: bool,
    },
    /// Restore a backup into an empty (or new) data directory; the master key must open
    /// every CA key in it.
    Restore {
        /// The archive written by `certkeeper backup`.
        archive: PathBuf,
        /// The master key file, when the archive does not hold it.
        #[arg(long)]
        master_key: Option<PathBuf>,
    },
    /// The master key that seals every private key and secret in the database.
    #[command(subcommand)]
    MasterKey(MasterKeyCmd),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff, section 1) to stdout: `certkeeper man > certkeeper.1`.
    Man,
    /// Talk to a running server.
    #[command(flatten)]
    Client(ClientCommand),
}

/// `certkeeper master-key ...`
#[derive(Debug, Subcommand)]
enum MasterKeyCmd {
    /// Seal everything under a new key in one transaction; the old key stops working. Stop
    /// every server of the deployment first.
    Rotate {
        /// Where to write the new key when the current one comes from the ca.master_key
        /// setting (then change the setting to it).
        #[arg(long)]
        new_key_out: Option<PathBuf>,
    },
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
    match &cli.command {
        Command::Completions { shell } => {
            // Written whole, so a closed pipe (`| head`) is an error, not a panic.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "certkeeper", &mut script);
            return Ok(std::io::stdout().write_all(&script)?);
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            return Ok(std::io::stdout().write_all(&page)?);
        }
        _ => {}
    }
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let settings = match cli.command {
        Command::Serve | Command::Init => Some(Arc::new(Settings::load(
            &cli.data_dir,
            cli.config.as_deref(),
        )?)),
        _ => None,
    };
    if matches!(cli.command, Command::Serve)
        && settings.as_ref().is_some_and(|s| s.server.batch_scheduling)
    {
        // Before any other thread starts, so that every one inherits it.
        certkeeper::sched::run_as_batch_work();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve | Command::Init => {
            let settings = settings.expect("loaded above for serve and init");
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
        Command::Est(certkeeper_cli::est::EstCommand::Admin(cmd)) => {
            let args = ClientArgs::resolve(&cli.data_dir, &cli.conn).context("client settings")?;
            rt.block_on(client::run_est_admin(args, cmd))
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
        Command::Agent(args) => {
            let config = cli
                .config
                .context("certkeeper agent needs --config <agent.toml>")?;
            rt.block_on(certkeeper_cli::agent::run(&config, args))
        }
        Command::Scan(mut args) => {
            args.json = cli.conn.json;
            if server_given {
                let client_args =
                    ClientArgs::resolve(&cli.data_dir, &cli.conn).context("client settings")?;
                rt.block_on(client::scan_remote(client_args, &args))
            } else {
                // On a worker of the runtime, beside the probes: each result then passes
                // between tasks on the same threads instead of waking the main thread.
                let data_dir = cli.data_dir.clone();
                rt.block_on(async move {
                    tokio::spawn(
                        async move { certkeeper_cli::scan::run_local(args, &data_dir).await },
                    )
                    .await?
                })
            }
        }
        Command::Client(cmd) => {
            let args = ClientArgs::resolve(&cli.data_dir, &cli.conn).context("client settings")?;
            rt.block_on(client::run(args, cmd))
        }
        Command::Backup {
            out,
            with_master_key,
        } => {
            let settings = Settings::load(&cli.data_dir, cli.config.as_deref())?;
            let m = rt.block_on(certkeeper::backup::backup(&settings, &out, with_master_key))?;
            println!(
                "backup written to {} ({}; master key {})",
                out.display(),
                m.files.join(", "),
                if m.master_key_included {
                    "included: guard this file like the key"
                } else {
                    "not included: keep it apart"
                }
            );
            Ok(())
        }
        Command::Restore {
            archive,
            master_key,
        } => {
            let settings = Arc::new(Settings::load(&cli.data_dir, cli.config.as_deref())?);
            let r = rt.block_on(certkeeper::backup::restore(
                settings.clone(),
                &archive,
                master_key.as_deref(),
            ))?;
            println!(
                "restored the backup of {} into {}; the master key opened all {} CA keys",
                r.manifest.created_at,
                settings.data_dir.display(),
                r.keys_opened
            );
            Ok(())
        }
        Command::MasterKey(MasterKeyCmd::Rotate { new_key_out }) => {
            let settings = Settings::load(&cli.data_dir, cli.config.as_deref())?;
            let r = rt.block_on(certkeeper::master_key::rotate(
                &settings,
                new_key_out.as_deref(),
            ))?;
            println!(
                "re-sealed {} values under a new master key, now in {}",
                r.resealed,
                r.key_file.display()
            );
            if r.setting_to_change {
                println!("change the ca.master_key setting to the new key before starting servers");
            }
            Ok(())
        }
        Command::Completions { .. } | Command::Man => unreachable!("answered before start-up"),
    }
}
