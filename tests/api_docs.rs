//! `/api/docs`, the API reference page, rendered by a real browser: headless Chromium loads
//! the page from the running server, Swagger UI (served by the server itself, nothing from
//! the network) fetches `/api/v1/openapi.json` and draws the operations, and the DOM it
//! leaves must show operations of the document. CI installs Chromium (`.ci/test`); without
//! it this test fails, it does not skip.

mod common;
use common::*;

use std::process::Command;

use serde_json::Value;

/// The Chromium binary: `CERTKEEPER_TEST_CHROMIUM`, or the first of the usual names found
/// on `PATH`.
fn chromium() -> String {
    if let Ok(path) = std::env::var("CERTKEEPER_TEST_CHROMIUM") {
        return path;
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            return name.to_string();
        }
    }
    panic!(
        "Chromium is not installed: this test renders /api/docs in headless Chromium. \
         Install it (`apt-get install -y chromium`, as .ci/test does) or point \
         CERTKEEPER_TEST_CHROMIUM at a Chromium binary."
    );
}

/// The DOM Chromium has after running the page's scripts.
fn rendered_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // The HTTPS listener's chain is made by the server on first start.
            "--ignore-certificate-errors",
            &format!("--user-data-dir={}", profile.path().display()),
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ])
        .output()
        .expect("Chromium runs");
    assert!(
        out.status.success(),
        "Chromium failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn api_docs_page_renders_the_document_in_chromium() {
    let s = TestServer::start(Db::Sqlite).await;

    // The operations the page must show, taken from the served document.
    let doc: Value = s
        .client
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list_cas = &doc["paths"]["/api/v1/cas"]["get"]["summary"];
    let create_ca = &doc["paths"]["/api/v1/cas"]["post"]["summary"];
    let (list_cas, create_ca) = (list_cas.as_str().unwrap(), create_ca.as_str().unwrap());

    // The page itself is static: the operations are not in it until its scripts run.
    let page = s.client.get(s.url("/api/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(!html.contains(list_cas) && !html.contains("/api/v1/cas"));
    // Every asset the page loads is served by certkeeper, none from another host.
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        let a = s
            .client
            .get(s.url(&format!("/api/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(a.status(), 200, "{asset}");
    }
    assert!(
        !html.contains("//cdn") && !html.contains("unpkg.com"),
        "{html}"
    );
    let init = s
        .client
        .get(s.url("/api/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/api/v1/openapi.json"), "{init}");

    let dom = rendered_dom(&s.url("/api/docs/"));
    for expected in [
        list_cas,
        create_ca,
        "/api/v1/cas",
        "/api/v1/certificates/{id}",
    ] {
        assert!(
            dom.contains(expected),
            "the rendered page shows {expected:?}; it is:\n{dom}"
        );
    }
    // Swagger UI drew operation blocks from the document, with their methods.
    assert!(dom.contains("opblock-summary-method"), "{dom}");
    assert!(dom.contains("certkeeper"), "the document's title is shown");
}
