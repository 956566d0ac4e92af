//! Helpers for the ACME tests: `pebble-challtestsrv` as the DNS server, an http-01
//! responder, and a small ACME client that can also send deliberately bad requests.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use certkeeper_acme::{PublicJwk, b64};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::free_port;

/// `pebble-challtestsrv` serving DNS on a free port; A queries answer 127.0.0.1.
pub struct ChallSrv {
    child: Child,
    pub dns_port: u16,
    pub mgmt_port: u16,
}

impl ChallSrv {
    pub fn start() -> ChallSrv {
        let dns_port = free_port();
        let mgmt_port = free_port();
        let child = Command::new("pebble-challtestsrv")
            .args([
                "-dns01",
                &format!("127.0.0.1:{dns_port}"),
                "-management",
                &format!("127.0.0.1:{mgmt_port}"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-defaultIPv6",
                "",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv (Debian package pebble) runs");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", mgmt_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "pebble-challtestsrv did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ChallSrv {
            child,
            dns_port,
            mgmt_port,
        }
    }

    /// The server setting that points validation at this DNS server.
    pub fn resolvers_setting(&self) -> String {
        format!("[\"127.0.0.1:{}\"]", self.dns_port)
    }

    /// Call the management API.
    pub async fn manage(&self, endpoint: &str, body: Value) {
        let r = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/{endpoint}", self.mgmt_port))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "challtestsrv {endpoint}: {}",
            r.status()
        );
    }
}

impl Drop for ChallSrv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP server answering `/.well-known/acme-challenge/<token>`.
#[derive(Clone)]
pub struct Http01 {
    pub port: u16,
    tokens: Arc<Mutex<HashMap<String, String>>>,
}

impl Http01 {
    pub async fn start() -> Http01 {
        Http01::start_slow(Duration::ZERO).await
    }

    /// A responder that waits `delay` before each answer, so that validations stay in
    /// flight for a while.
    pub async fn start_slow(delay: Duration) -> Http01 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tokens: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let t = tokens.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    continue;
                };
                let t = t.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf);
                    let path = head.split_whitespace().nth(1).unwrap_or("");
                    let token = path
                        .strip_prefix("/.well-known/acme-challenge/")
                        .unwrap_or("");
                    let body = t.lock().unwrap().get(token).cloned();
                    tokio::time::sleep(delay).await;
                    let resp = match body {
                        Some(b) => format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
                            b.len()
                        ),
                        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
                    };
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        Http01 { port, tokens }
    }

    pub fn put(&self, token: &str, body: &str) {
        self.tokens
            .lock()
            .unwrap()
            .insert(token.into(), body.into());
    }
}

/// An ES256 account key.
pub struct AccountKey {
    key: EcdsaKeyPair,
    pub jwk: Value,
}

impl AccountKey {
    pub fn generate() -> AccountKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let p = key.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..])});
        AccountKey { key, jwk }
    }

    pub fn thumbprint(&self) -> String {
        PublicJwk::from_json(&self.jwk).unwrap().thumbprint()
    }

    /// A flattened JWS with exactly this protected header and payload.
    pub fn sign(&self, protected: &Value, payload: Option<&Value>) -> Value {
        let protected = b64(protected.to_string().as_bytes());
        let payload = payload
            .map(|p| b64(p.to_string().as_bytes()))
            .unwrap_or_default();
        let sig = self
            .key
            .sign(
                &SystemRandom::new(),
                format!("{protected}.{payload}").as_bytes(),
            )
            .unwrap();
        json!({"protected": protected, "payload": payload, "signature": b64(sig.as_ref())})
    }
}

/// An answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn location(&self) -> String {
        self.headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    pub fn problem_type(&self) -> String {
        self.body["type"].as_str().unwrap_or("").to_string()
    }

    /// Assert a problem of this ACME type.
    pub fn assert_problem(&self, name: &str) {
        assert_eq!(
            self.problem_type(),
            format!("urn:ietf:params:acme:error:{name}"),
            "status {} {}",
            self.status,
            self.text
        );
        assert_eq!(
            self.headers.get("content-type").unwrap(),
            "application/problem+json"
        );
        assert!(
            self.headers.contains_key("replay-nonce"),
            "problems carry a fresh nonce"
        );
    }
}

/// A small ACME client.
pub struct Acme {
    pub http: reqwest::Client,
    pub dir: Value,
    pub key: AccountKey,
    pub kid: Option<String>,
}

impl Acme {
    pub async fn new(http: reqwest::Client, directory: &str) -> Acme {
        let dir = http
            .get(directory)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Acme {
            http,
            dir,
            key: AccountKey::generate(),
            kid: None,
        }
    }

    pub fn url(&self, name: &str) -> String {
        self.dir[name].as_str().unwrap().to_string()
    }

    pub async fn nonce(&self) -> String {
        let r = self.http.head(self.url("newNonce")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.headers()["replay-nonce"].to_str().unwrap().to_string()
    }

    /// The protected header this client would use.
    pub async fn header(&self, url: &str) -> Value {
        let mut h = json!({"alg": "ES256", "nonce": self.nonce().await, "url": url});
        match &self.kid {
            Some(k) => h["kid"] = json!(k),
            None => h["jwk"] = self.key.jwk.clone(),
        }
        h
    }

    pub async fn post_body(&self, url: &str, body: &Value) -> Resp {
        let r = self
            .http
            .post(url)
            .header("content-type", "application/jose+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        Resp {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    /// A signed POST (`payload: None` is POST-as-GET).
    pub async fn post(&self, url: &str, payload: Option<Value>) -> Resp {
        let body = self.key.sign(&self.header(url).await, payload.as_ref());
        self.post_body(url, &body).await
    }

    pub async fn register(&mut self) -> Resp {
        let r = self
            .post(
                &self.url("newAccount"),
                Some(json!({"termsOfServiceAgreed": true, "contact": ["mailto:ops@example.com"]})),
            )
            .await;
        assert!(r.status == 201 || r.status == 200, "{}", r.text);
        self.kid = Some(r.location());
        r
    }

    pub async fn new_order(&self, ids: &[(&str, &str)]) -> Resp {
        let ids: Vec<Value> = ids
            .iter()
            .map(|(t, v)| json!({"type": t, "value": v}))
            .collect();
        self.post(&self.url("newOrder"), Some(json!({"identifiers": ids})))
            .await
    }

    /// Poll a resource until its status is no longer pending or processing.
    pub async fn wait(&self, url: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.post(url, None).await;
            let st = r.body["status"].as_str().unwrap_or("").to_string();
            if st != "pending" && st != "processing" {
                return r.body;
            }
            assert!(Instant::now() < deadline, "{url} stayed {st}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Complete every authorization of an order with http-01 through `responder`.
    pub async fn solve_http01(&self, order: &Value, responder: &Http01) {
        for a in order["authorizations"].as_array().unwrap() {
            let a = a.as_str().unwrap();
            let authz = self.post(a, None).await.body;
            if authz["status"] == "valid" {
                continue;
            }
            let ch = authz["challenges"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "http-01")
                .expect("http-01 offered")
                .clone();
            let token = ch["token"].as_str().unwrap();
            responder.put(token, &format!("{token}.{}", self.key.thumbprint()));
            let r = self
                .post(ch["url"].as_str().unwrap(), Some(json!({})))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            let done = self.wait(a).await;
            assert_eq!(done["status"], "valid", "{done}");
        }
    }
}

/// A CSR (DER) for the given names (DNS names or IP addresses), with a fresh P-256 key.
pub fn csr(names: &[&str]) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.serialize_request(&key).unwrap().der().to_vec()
}

/// A tls-alpn-01 responder (RFC 8737): per SNI name, a self-signed certificate with the
/// acmeIdentifier extension, offered only with ALPN `acme-tls/1`.
#[derive(Clone)]
pub struct TlsAlpn01 {
    pub port: u16,
    certs: Arc<Mutex<HashMap<String, Arc<rustls::sign::CertifiedKey>>>>,
}

#[derive(Debug)]
struct BySni(Arc<Mutex<HashMap<String, Arc<rustls::sign::CertifiedKey>>>>);

impl std::fmt::Debug for TlsAlpn01 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsAlpn01")
    }
}

impl rustls::server::ResolvesServerCert for BySni {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let name = hello.server_name()?.to_string();
        self.0.lock().unwrap().get(&name).cloned()
    }
}

impl TlsAlpn01 {
    pub async fn start() -> TlsAlpn01 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let certs: Arc<Mutex<HashMap<String, Arc<rustls::sign::CertifiedKey>>>> = Arc::default();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni(certs.clone())));
        config.alpn_protocols = vec![b"acme-tls/1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(sock).await {
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        TlsAlpn01 { port, certs }
    }

    /// Answer for `identifier` (a DNS name or an IP address) with this key authorization.
    pub fn put(&self, identifier: &str, key_authorization: &str) {
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authorization.as_bytes());
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![identifier.to_string()]).unwrap();
        params.custom_extensions =
            vec![rcgen::CustomExtension::new_acme_identifier(digest.as_ref())];
        let cert = params.self_signed(&key).unwrap();
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&der).unwrap();
        let ck = Arc::new(rustls::sign::CertifiedKey::new(
            vec![cert.der().clone()],
            signing,
        ));
        let sni = match identifier.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(v4)) => {
                let o = v4.octets();
                format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
            }
            _ => identifier.to_string(),
        };
        self.certs.lock().unwrap().insert(sni, ck);
    }
}

impl Acme {
    /// Complete one authorization with the given challenge type; `prepare` receives the
    /// token and key authorization and sets up the response.
    pub async fn solve(
        &self,
        authz_url: &str,
        kind: &str,
        prepare: impl FnOnce(&str, &str),
    ) -> Value {
        let authz = self.post(authz_url, None).await.body;
        let ch = authz["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == kind)
            .unwrap_or_else(|| panic!("{kind} offered: {authz}"))
            .clone();
        let token = ch["token"].as_str().unwrap();
        prepare(token, &format!("{token}.{}", self.key.thumbprint()));
        let r = self
            .post(ch["url"].as_str().unwrap(), Some(json!({})))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        self.wait(authz_url).await
    }
}
