//! The page frame, the error page and small rendering helpers shared by the pages.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;

use crate::error::Error;
use crate::problem::HttpError;
use crate::services::sessions::Session;
use crate::store::Role;

/// The dashboard's sections, in the order of the navigation bar: (path, title, who sees it).
const SECTIONS: [(&str, &str, bool); 11] = [
    ("/", "Overview", false),
    ("/hierarchy", "CA hierarchy", false),
    ("/certificates", "Certificates", false),
    ("/profiles", "Profiles", false),
    ("/discovery", "Discovery", false),
    ("/managed", "Managed", false),
    ("/alerts", "Alerts", true),
    ("/enrollment/acme", "ACME", true),
    ("/enrollment/est", "EST", true),
    ("/tokens", "Tokens", true),
    ("/audit", "Audit log", true),
];

/// Whether the session's token is an admin token.
pub(super) fn is_admin(s: &Session) -> bool {
    s.caller.token.role == Role::Admin
}

/// Whether the session's token may issue or revoke under `profile`.
pub(super) fn may_issue(s: &Session, profile: &str) -> bool {
    s.caller.require_issuer_for(profile).is_ok()
}

/// Whether the session's token may issue under some profile.
pub(super) fn may_issue_any(s: &Session) -> bool {
    s.caller.token.role != Role::Viewer
}

/// The hidden field every form of a session carries.
pub(super) fn csrf_field(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

/// A form that sends nothing but its CSRF token.
#[derive(Debug, serde::Deserialize)]
pub(super) struct CsrfOnly {
    /// The session's CSRF token, as the form carried it.
    #[serde(default)]
    pub(super) csrf: String,
}

/// A POST's CSRF token must be the session's; anything else is refused.
pub(super) fn check_csrf(s: &Session, sent: &str) -> Result<(), WebError> {
    if s.csrf_matches(sent) {
        Ok(())
    } else {
        Err(WebError::Page(Error::Forbidden(
            "this form's CSRF token is missing or wrong: reload the page and try again".into(),
        )))
    }
}

/// A time as the pages show it (UTC, to the minute).
pub(super) fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// A Unix time as the pages show it.
pub(super) fn when_unix(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .map(when)
        .unwrap_or_else(|_| t.to_string())
}

/// A full page of a signed-in session: navigation (only what its role may open), who is
/// signed in, sign-out, and `body`.
pub(super) fn page(s: &Session, title: &str, active: &str, body: Markup) -> Markup {
    let admin = is_admin(s);
    frame(
        title,
        html! {
            header {
                nav {
                    span.brand { "certkeeper" }
                    @for (path, name, admin_only) in SECTIONS {
                        @if admin || !admin_only {
                            a href=(path) class=[(path == active).then_some("active")] { (name) }
                        }
                    }
                }
                div.who {
                    span { (s.caller.token.name) " (" (s.caller.token.role.as_str()) ")" }
                    form method="post" action="/sign-out" {
                        (csrf_field(s))
                        button type="submit" id="sign-out" { "Sign out" }
                    }
                }
            }
            main {
                h1 { (title) }
                (body)
            }
        },
    )
}

/// The document around any body.
pub(super) fn frame(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · certkeeper" }
                link rel="stylesheet" href="/assets/dashboard.css";
                script src="/assets/dashboard.js" defer {}
            }
            body { (body) }
        }
    }
}

/// A page answered with a status other than 200.
pub(super) fn with_status(status: StatusCode, m: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

/// Why a dashboard request did not get its page.
#[derive(Debug)]
pub enum WebError {
    /// No valid session: go to the sign-in page.
    SignIn,
    /// A refusal or failure of the service, shown as a page with its status.
    Page(Error),
}

impl From<Error> for WebError {
    fn from(e: Error) -> Self {
        WebError::Page(e)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignIn => Redirect::to("/sign-in").into_response(),
            WebError::Page(e) => {
                let message = match &e {
                    Error::Internal(msg) => {
                        tracing::error!(error = %msg, "dashboard request failed");
                        "something failed inside the server; the details are logged".to_string()
                    }
                    other => other.to_string(),
                };
                let status = HttpError::from(e).status();
                with_status(
                    status,
                    frame(
                        status.canonical_reason().unwrap_or("Error"),
                        html! {
                            main {
                                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                                p.error role="alert" { (message) }
                                p { a href="/" { "Back to the overview" } }
                            }
                        },
                    ),
                )
            }
        }
    }
}

/// A horizontal bar chart as inline SVG: one bar per (label, value).
pub(super) fn bar_chart(bars: &[(&str, i64)]) -> Markup {
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let row = 28;
    let height = row * bars.len() + 8;
    html! {
        svg.chart width="480" height=(height)
            viewBox=(format!("0 0 480 {height}")) role="img" aria-label="Certificates expiring soon" {
            @for (i, (label, value)) in bars.iter().enumerate() {
                @let y = i * row + 4;
                @let w = (*value * 300 / max).max(if *value > 0 { 2 } else { 0 });
                text x="0" y=(y + 17) class="label" { (label) }
                rect x="110" y=(y) width=(w) height="20" rx="3" class="bar" {}
                text x=(118 + w) y=(y + 15) class="value" { (value) }
            }
        }
    }
}

/// A page of a keyset-paged list read with one row more than `size`: the first `size`
/// rows and, when more follow, the cursor that continues after the last of them (`key`
/// gives a row's sort time and id).
pub(super) fn paged<T>(
    mut rows: Vec<T>,
    size: usize,
    key: impl Fn(&T) -> (i64, &str),
) -> (Vec<T>, Option<String>) {
    if rows.len() <= size {
        return (rows, None);
    }
    rows.truncate(size);
    let cursor = rows.last().map(|r| {
        let (at, id) = key(r);
        crate::services::certificates::encode_keyset(at, id)
    });
    (rows, cursor)
}

/// The "Next page" link of a paged list: `path` with the non-empty `pairs` and the
/// `cursor`; nothing on the last page.
pub(super) fn next_page(path: &str, pairs: &[(&str, &str)], cursor: Option<&str>) -> Markup {
    let Some(cursor) = cursor else {
        return html! {};
    };
    let mut u = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        u.append_pair(k, v);
    }
    u.append_pair("cursor", cursor);
    html! { p { a href=(format!("{path}?{}", u.finish())) rel="next" #next-page { "Next page" } } }
}

/// The keyset position a `cursor` query parameter holds; none when it is empty.
pub(super) fn cursor_of(s: &str) -> Result<Option<(i64, String)>, Error> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    crate::services::certificates::decode_cursor(t).map(Some)
}
