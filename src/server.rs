//! The running server: router assembly, the HTTPS and plain-HTTP listeners, the jobs
//! runner's tasks, and graceful shutdown. How each connection is bounded (caps, timeouts,
//! the open-file limit) is in the `conn` submodule.

mod conn;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::Uri;
use axum::middleware::{self, Next};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::bootstrap::{Booted, server_certificate};
use crate::error::Error;
use crate::jobs::{JobIntervals, Jobs};
use crate::metrics::Metrics;
use crate::problem::HttpError;
use crate::services::Services;
use crate::services::pki::Pki;
use conn::{Activity, ConnPolicy, Watched};

/// The least time the jobs runner is given to stop at shutdown, when the connections took
/// all of `server.shutdown_grace`: enough to hand back the job leases.
const JOBS_STOP_MIN: Duration = Duration::from_secs(3);

/// Shared state of every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The CA service.
    pub pki: Arc<Pki>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Whether start-up finished.
    pub ready: Arc<AtomicBool>,
    /// Every service; handlers call one method of one of them.
    pub services: Arc<Services>,
    /// The ACME engine.
    pub acme: Arc<crate::acme::AcmeEngine>,
}

impl AppState {
    /// The state of a server over `pki`, with a fresh background runner, not yet ready.
    pub fn new(pki: Arc<Pki>, metrics: Arc<Metrics>) -> AppState {
        AppState {
            services: Arc::new(Services::new(pki.clone(), Jobs::new())),
            acme: Arc::new(crate::acme::engine(&pki)),
            pki,
            metrics,
            ready: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// The front end a request path belongs to, as the metrics label it.
fn front_end(path: &str) -> &'static str {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "api" => "api",
        "acme" => "acme",
        ".well-known" if path.starts_with("/.well-known/est") => "est",
        ".well-known" => "acme",
        "ca" | "crl" | "ocsp" | "healthz" | "readyz" | "metrics" => "public",
        _ => "web",
    }
}

async fn count_responses(
    State(metrics): State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let front_end = front_end(req.uri().path());
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    metrics.observe_http(
        front_end,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

async fn not_found(uri: Uri) -> Error {
    Error::NotFound(format!("nothing at {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> HttpError {
    HttpError::MethodNotAllowed(format!("method {method} is not allowed on {}", uri.path()))
}

fn common_layers(router: Router<AppState>, state: &AppState) -> Router {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(
            state.pki.settings().server.max_body_bytes,
        ))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            count_responses,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .with_state(state.clone())
}

/// The HTTPS application: the API, EST, the ACME server and the public endpoints.
pub fn https_app(state: &AppState) -> Router {
    let mut router = crate::api::router()
        .merge(crate::est::router())
        .merge(crate::public::router())
        .merge(crate::web::router());
    if state.pki.settings().acme.enabled {
        router = router.merge(crate::acme::router());
    }
    common_layers(router, state)
}

/// The EST mutual-TLS application (`est.mtls_listen`): EST and the public endpoints only
/// (CA certificates, CRLs, OCSP, health), so that no API or dashboard is served where
/// clients are asked for a certificate.
pub fn est_app(state: &AppState) -> Router {
    common_layers(crate::est::router().merge(crate::public::router()), state)
}

/// The plain-HTTP application: public endpoints only.
pub fn http_app(state: &AppState) -> Router {
    common_layers(crate::public::router(), state)
}

/// Serves the current server certificate; swapped in place on renewal.
#[derive(Debug)]
pub struct ServerCert(RwLock<Arc<CertifiedKey>>);

impl ServerCert {
    fn build(chain: Vec<Vec<u8>>, key: Vec<u8>) -> anyhow::Result<Arc<CertifiedKey>> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
        let signing =
            rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).context("server key")?;
        let certs = chain.into_iter().map(CertificateDer::from).collect();
        Ok(Arc::new(CertifiedKey::new(certs, signing)))
    }

    fn replace(&self, ck: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = ck;
    }

    /// Serve the server certificate `pki` has now (renewed when due): the periodic
    /// `server-certificate` job.
    pub async fn renew(&self, pki: &Pki) -> anyhow::Result<()> {
        let (chain, key) = server_certificate(pki).await?;
        self.replace(ServerCert::build(chain, key)?);
        Ok(())
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

async fn serve_listener(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    policy: ConnPolicy,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Over a connection cap: closed at once, before any work or buffer.
                let Some(slot) = policy.admit(peer.ip()) else {
                    tracing::debug!(%peer, "connection refused: server.max_connections or server.max_connections_per_ip reached");
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let activity = Activity::new();
                let seen = activity.clone();
                let svc = app.clone().map_request(move |mut r: Request<hyper::body::Incoming>| {
                    seen.requested();
                    r.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    r
                });
                let watcher = graceful.watcher();
                let tls = tls.clone();
                let policy = policy.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let builder = policy.builder();
                    let io = Watched::new(stream, activity.clone());
                    let serve = async move {
                        match tls {
                            Some(acceptor) => {
                                let stream = match acceptor.accept(io).await {
                                    Ok(s) => s,
                                    Err(e) => {
                                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                        return;
                                    }
                                };
                                // EST reads the client's certificate chain and channel binding.
                                let peer_tls = crate::est::tls::TlsPeer::of(stream.get_ref().1);
                                let svc = TowerToHyperService::new(svc.map_request(move |mut r: Request<hyper::body::Incoming>| {
                                    r.extensions_mut().insert(peer_tls.clone());
                                    r
                                }));
                                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                                let _ = watcher.watch(conn.into_owned()).await;
                            }
                            None => {
                                let svc = TowerToHyperService::new(svc);
                                let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
                                let _ = watcher.watch(conn.into_owned()).await;
                            }
                        }
                    };
                    tokio::select! {
                        _ = serve => {}
                        why = policy.expired(&activity) => tracing::debug!(%peer, why, "connection closed"),
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    // New connections are refused from here on (a load balancer moves to another
    // replica). Each open connection is told to close: an idle HTTP/1 one at once, one
    // with a request in flight after its response (which says `Connection: close`),
    // HTTP/2 with GOAWAY once its streams are done.
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace = ?grace,
            "connections still open after server.shutdown_grace; closing them"
        );
    }
}

/// Run the server until `shutdown` resolves.
pub async fn run(
    booted: Booted,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let Booted {
        pki,
        metrics,
        new_admin_token,
    } = booted;
    let settings = pki.settings().clone();
    let policy = ConnPolicy::new(&settings.server, conn::raise_open_file_limit());
    if let Some(token) = new_admin_token {
        println!(
            "certkeeper: admin token (shown once; also in {}):\n{token}",
            settings.data_dir.join("admin.token").display()
        );
    }
    let (chain, key) = server_certificate(&pki).await?;
    let cert = Arc::new(ServerCert(RwLock::new(ServerCert::build(chain, key)?)));
    // The main listener never asks for a client certificate, so browsers opening the
    // dashboard are not prompted; the EST listener (`est.mtls_listen`) asks every client
    // and accepts connections without one; EST decides per request whether to trust it.
    let mut tls_config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(cert.clone());
    tls_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls_config));
    let mut est_tls = rustls::ServerConfig::builder()
        .with_client_cert_verifier(Arc::new(crate::est::tls::RequestClientCert::new()))
        .with_cert_resolver(cert.clone());
    est_tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let est_acceptor = TlsAcceptor::from(Arc::new(est_tls));

    let state = AppState::new(pki.clone(), metrics);
    let https = TcpListener::bind(settings.server.https_listen)
        .await
        .with_context(|| format!("binding HTTPS listener {}", settings.server.https_listen))?;
    let http = TcpListener::bind(settings.server.http_listen)
        .await
        .with_context(|| format!("binding HTTP listener {}", settings.server.http_listen))?;
    let est_mtls = match settings.est.mtls_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding EST mutual-TLS listener {addr}"))?,
        ),
        None => None,
    };
    tracing::info!(https = %https.local_addr()?, http = %http.local_addr()?, est_mtls = ?settings.est.mtls_listen, public_url = %settings.server.public_url, "certkeeper listening");

    let (stop_tx, stop_rx) = watch::channel(false);
    let jobs = state.services.jobs.clone();
    crate::jobs::tasks::start(
        &jobs,
        &state.services,
        state.acme.clone(),
        cert.clone(),
        &JobIntervals::from_settings(&settings),
    );
    // Everything is initialised: ready before the first connection is accepted, so no
    // client ever sees a "starting" 503 from a server that is serving.
    state.ready.store(true, Ordering::Relaxed);
    let https_task = tokio::spawn(serve_listener(
        https,
        https_app(&state),
        Some(acceptor),
        policy.clone(),
        stop_rx.clone(),
        settings.server.shutdown_grace,
    ));
    let est_task = est_mtls.map(|l| {
        tokio::spawn(serve_listener(
            l,
            est_app(&state),
            Some(est_acceptor),
            policy.clone(),
            stop_rx.clone(),
            settings.server.shutdown_grace,
        ))
    });
    // The http-01 answers for external ACME issuers, alone on a listener of their own
    // when one is set (port 80 of the names being ordered, typically).
    let challenge_task = match settings.server.acme_challenge_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the ACME challenge listener {addr}"))?;
            tracing::info!(addr = %listener.local_addr()?, "serving http-01 answers");
            Some(tokio::spawn(serve_listener(
                listener,
                common_layers(crate::public::acme_challenge_router(), &state),
                None,
                policy.clone(),
                stop_rx.clone(),
                settings.server.shutdown_grace,
            )))
        }
        None => None,
    };
    let http_task = tokio::spawn(serve_listener(
        http,
        http_app(&state),
        None,
        policy,
        stop_rx,
        settings.server.shutdown_grace,
    ));
    println!(
        "certkeeper: ready on https://{} (API) and http://{} (CRL, OCSP, AIA)",
        settings.server.https_listen, settings.server.http_listen
    );

    shutdown.await;
    let grace = settings.server.shutdown_grace;
    tracing::info!(grace = ?grace, "shutting down: draining connections and jobs");
    state.ready.store(false, Ordering::Relaxed);
    // The listeners stop accepting and drain their connections, then the jobs finish
    // their runs and hand back their leases, all within the grace; then the database
    // is closed.
    let deadline = tokio::time::Instant::now() + grace;
    let _ = stop_tx.send(true);
    let est_task = async {
        if let Some(t) = est_task {
            let _ = t.await;
        }
    };
    let challenge_task = async {
        if let Some(t) = challenge_task {
            let _ = t.await;
        }
    };
    let _ = tokio::join!(https_task, http_task, est_task, challenge_task);
    // The runner stops only once no request can hand it more work (a request drained
    // above may have started a validation). Its tasks get what is left of the grace, and
    // at least a few seconds to hand back their leases.
    let left = deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .max(JOBS_STOP_MIN);
    if tokio::time::timeout(left, jobs.shutdown()).await.is_err() {
        tracing::warn!(
            grace = ?grace,
            "background jobs still running after server.shutdown_grace; their leases lapse"
        );
    }
    // A connection or job cut off at the grace may still hold a database connection.
    if tokio::time::timeout(Duration::from_secs(5), pki.close())
        .await
        .is_err()
    {
        tracing::warn!("database connections still in use at exit");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
