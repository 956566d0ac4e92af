//! Weak keys and weak signatures are found in real certificates made by `openssl`: an
//! RSA-1024 leaf signed with SHA-1 by an RSA-2048 CA (rustls cannot serve such a key, so the
//! chain is analysed directly, as a scan would after the handshake).

use std::path::Path;
use std::process::Command;

use certkeeper_discovery::{AnalysisContext, Finding, analyze_chain};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn der(dir: &Path, pem: &str) -> Vec<u8> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(["x509", "-in", pem, "-outform", "DER"])
        .output()
        .expect("openssl runs");
    assert!(out.status.success());
    out.stdout
}

#[test]
fn rsa_1024_and_sha1_are_weak() {
    let dir = std::env::temp_dir().join(format!("ck-weak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=Weak Test CA",
            "-days",
            "30",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-subj",
            "/CN=weak.test",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
        ],
    );
    openssl(
        &dir,
        &[
            "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "20",
            "-sha1", "-out", "leaf.pem",
        ],
    );
    let chain = vec![der(&dir, "leaf.pem"), der(&dir, "ca.pem")];
    let ctx = AnalysisContext {
        now: time::OffsetDateTime::now_utc().unix_timestamp(),
        alert_window: 0,
        our_cas: vec![],
        trust_anchors: vec![chain[1].clone()],
    };
    let r = analyze_chain(&chain, Some("weak.test"), false, &ctx);
    assert!(r.findings.contains(&Finding::WeakKey), "{:?}", r.findings);
    assert!(
        r.findings.contains(&Finding::WeakSignature),
        "{:?}",
        r.findings
    );
    assert_eq!(r.certificates[0].key_bits, 1024);
    // The same CA signing a 2048-bit key with SHA-256 raises neither.
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=strong.test",
            "-keyout",
            "s.key",
            "-out",
            "s.csr",
        ],
    );
    openssl(
        &dir,
        &[
            "x509", "-req", "-in", "s.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "20",
            "-sha256", "-out", "s.pem",
        ],
    );
    let strong = vec![der(&dir, "s.pem"), der(&dir, "ca.pem")];
    let r = analyze_chain(&strong, Some("strong.test"), false, &ctx);
    assert!(
        !r.findings.contains(&Finding::WeakKey) && !r.findings.contains(&Finding::WeakSignature),
        "{:?}",
        r.findings
    );
    let _ = std::fs::remove_dir_all(&dir);
}
