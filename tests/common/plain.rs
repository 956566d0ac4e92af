//! A browser without scripts for the dashboard tests: follows no redirects, keeps the
//! cookies it is told to, signs in through the form.

use reqwest::Method;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use super::TestServer;

/// The dashboard's session cookie.
pub const SESSION: &str = "__Host-certkeeper_session";

/// A browser without scripts: follows no redirects, keeps the cookies it is told to.
pub struct Plain {
    http: reqwest::Client,
    base: String,
    /// The cookies it holds, as (name, value).
    pub cookies: Vec<(String, String)>,
}

/// An answer, as the browser saw it.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// The first CSRF token in the page's forms.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("a form with a CSRF field in:\n{}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

impl Plain {
    pub fn new(s: &TestServer) -> Plain {
        let cert = reqwest::Certificate::from_pem(s.server_ca_pem.as_bytes()).unwrap();
        Plain {
            http: reqwest::Client::builder()
                .tls_certs_only([cert])
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: s.url(""),
            cookies: Vec::new(),
        }
    }

    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> Page {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            let header: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header(COOKIE, header.join("; "));
        }
        if let Some(f) = form {
            let mut body = url::form_urlencoded::Serializer::new(String::new());
            body.extend_pairs(f.iter());
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.finish());
        }
        let resp = req.send().await.unwrap();
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for c in &set_cookies {
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !attrs.contains("Max-Age=0") {
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
        Page {
            status: resp.status().as_u16(),
            location: resp
                .headers()
                .get(LOCATION)
                .map(|l| l.to_str().unwrap().to_string()),
            headers: resp.headers().clone(),
            set_cookies,
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(form)).await
    }

    /// Sign in with `token` through the form; returns the answer to the form's POST.
    pub async fn sign_in(&mut self, token: &str) -> Page {
        let form = self.get("/sign-in").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.csrf();
        self.post("/sign-in", &[("csrf", &csrf), ("token", token)])
            .await
    }

    pub fn session(&self) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(k, _)| k == SESSION)
            .map(|(_, v)| v.as_str())
    }
}
