//! The payload of each channel flavour, built from an event. Pure functions: no I/O.

use serde_json::{Value, json};

use super::events::EventKind;
use super::rules::rfc3339;
use crate::store::NewEvent;

/// Slack: header text limit.
const SLACK_HEADER_MAX: usize = 150;
/// Slack: section text limit.
const SLACK_SECTION_MAX: usize = 3000;
/// Slack: blocks per message.
const SLACK_BLOCKS_MAX: usize = 50;
/// Discord: `content` limit.
const DISCORD_CONTENT_MAX: usize = 2000;
/// Discord: embeds per message.
const DISCORD_EMBEDS_MAX: usize = 10;
/// Discord: embed title limit.
const DISCORD_TITLE_MAX: usize = 256;
/// Discord: embed description limit.
const DISCORD_DESCRIPTION_MAX: usize = 4096;
/// Discord: all embed text of one message.
const DISCORD_EMBED_TOTAL_MAX: usize = 6000;
/// Teams: certificates shown in one card (the whole message must stay under 28 KB).
const TEAMS_CERTS_MAX: usize = 25;

/// A certificate as listed in a message.
#[derive(Debug, Clone)]
pub struct CertLine {
    /// Subject DN.
    pub subject: String,
    /// Expiry, RFC 3339.
    pub not_after: String,
    /// Days left.
    pub days_left: i64,
    /// SHA-256 fingerprint.
    pub fingerprint: String,
}

impl CertLine {
    /// One line of text.
    pub fn text(&self) -> String {
        format!(
            "{}: expires {} ({} days left), fingerprint {}",
            self.subject, self.not_after, self.days_left, self.fingerprint
        )
    }
}

/// The human side of an event: a title and the certificates it concerns.
#[derive(Debug, Clone)]
pub struct Summary {
    /// One line.
    pub title: String,
    /// The certificates, if any.
    pub certs: Vec<CertLine>,
    /// Other facts (for events without certificates).
    pub detail: Option<String>,
}

fn certs_of(data: &Value) -> Vec<CertLine> {
    data.get("certificates")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|c| CertLine {
                    subject: c["subject"].as_str().unwrap_or_default().to_string(),
                    not_after: c["not_after"].as_str().unwrap_or_default().to_string(),
                    days_left: c["days_left"].as_i64().unwrap_or_default(),
                    fingerprint: c["fingerprint"].as_str().unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Title and certificates of an event.
pub fn summarize(e: &NewEvent) -> Summary {
    let certs = certs_of(&e.data);
    let first = certs.first().map(|c| c.subject.clone()).unwrap_or_default();
    let days = certs.first().map(|c| c.days_left).unwrap_or_default();
    let kind = EventKind::from_type(&e.kind);
    let title = match kind {
        Some(EventKind::CertificateExpiring) => {
            let prefix = if e.data["reminder"].as_bool() == Some(true) {
                "Reminder: c"
            } else {
                "C"
            };
            format!("{prefix}ertificate {first} expires in {days} days")
        }
        Some(EventKind::ExpiryDigest) => {
            format!("{} certificates are expiring or expired", certs.len())
        }
        Some(EventKind::CertificateExpired) => format!("Certificate {first} has expired"),
        Some(EventKind::CertificateIssued) => format!("Certificate {first} was issued"),
        Some(EventKind::CertificateRenewed) => format!("Certificate {first} was renewed"),
        Some(EventKind::CertificateRevoked) => format!("Certificate {first} was revoked"),
        Some(EventKind::CaExpiring) => format!("CA {first} expires in {days} days"),
        Some(EventKind::SyncFailed) => {
            "A certificate could not be pushed to a destination".to_string()
        }
        Some(EventKind::RenewalFailed) => "A managed certificate could not be renewed".to_string(),
        Some(EventKind::IssuanceFailed) => {
            "An upstream CA did not issue a managed certificate".to_string()
        }
        Some(EventKind::DiscoveryNew) => "Discovery found a new certificate".to_string(),
        Some(EventKind::DiscoveryChanged) => "Discovery found a changed certificate".to_string(),
        Some(EventKind::DiscoveryExpired) => "Discovery found an expired certificate".to_string(),
        Some(EventKind::DeploymentFailed) => format!(
            "Reloading {} failed on {}",
            e.data["managed_certificate_name"]
                .as_str()
                .unwrap_or_default(),
            e.data["host"].as_str().unwrap_or_default()
        ),
        Some(EventKind::DeploymentStale) => format!(
            "{} still serves version {} of {}",
            e.data["place"].as_str().unwrap_or_default(),
            e.data["version"].as_i64().unwrap_or_default(),
            e.data["managed_certificate_name"]
                .as_str()
                .unwrap_or_default()
        ),
        Some(EventKind::Test) => "certkeeper test notification".to_string(),
        _ => format!("certkeeper event {}", e.kind),
    };
    let detail = if certs.is_empty() {
        Some(e.data.to_string())
    } else {
        None
    };
    Summary {
        title,
        certs,
        detail,
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The CloudEvents 1.0 (structured JSON) body of the generic webhook.
pub fn cloudevent(e: &NewEvent, source: &str) -> Value {
    let mut v = json!({
        "specversion": "1.0",
        "id": e.id,
        "source": source,
        "type": e.kind,
        "time": rfc3339(e.created_at),
        "datacontenttype": "application/json",
        "data": e.data,
    });
    if let Some(s) = &e.subject {
        v["subject"] = json!(s);
    }
    v
}

/// A Slack incoming-webhook message: `text` (the notification fallback) and `blocks`.
pub fn slack(s: &Summary) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": cut(&s.title, SLACK_HEADER_MAX)},
    })];
    let mut lines: Vec<String> = s.certs.iter().map(|c| format!("• {}", c.text())).collect();
    if let Some(d) = &s.detail {
        lines.push(d.clone());
    }
    let mut section = String::new();
    let mut shown = 0;
    for line in &lines {
        let line = cut(line, SLACK_SECTION_MAX);
        if !section.is_empty() && section.len() + line.len() + 1 > SLACK_SECTION_MAX {
            if blocks.len() >= SLACK_BLOCKS_MAX - 2 {
                break;
            }
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": section}}));
            section = String::new();
        }
        if !section.is_empty() {
            section.push('\n');
        }
        section.push_str(&line);
        shown += 1;
    }
    if !section.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": section}}));
    }
    if shown < lines.len() {
        blocks.push(json!({"type": "context", "elements": [
            {"type": "mrkdwn", "text": format!("…and {} more", lines.len() - shown)}
        ]}));
    }
    json!({"text": s.title, "blocks": blocks})
}

/// A Teams Workflows message with one Adaptive Card (version 1.4) attachment.
pub fn teams(s: &Summary) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock", "text": s.title, "weight": "Bolder", "size": "Medium", "wrap": true,
    })];
    for c in s.certs.iter().take(TEAMS_CERTS_MAX) {
        body.push(json!({
            "type": "FactSet",
            "separator": true,
            "facts": [
                {"title": "Subject", "value": c.subject},
                {"title": "Expires", "value": c.not_after},
                {"title": "Days left", "value": c.days_left.to_string()},
                {"title": "Fingerprint", "value": c.fingerprint},
            ],
        }));
    }
    if s.certs.len() > TEAMS_CERTS_MAX {
        body.push(json!({"type": "TextBlock", "wrap": true,
            "text": format!("…and {} more", s.certs.len() - TEAMS_CERTS_MAX)}));
    }
    if let Some(d) = &s.detail {
        body.push(json!({"type": "TextBlock", "text": d, "wrap": true}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            },
        }],
    })
}

/// A Discord webhook message: `content` and up to ten `embeds`, within Discord's limits.
pub fn discord(s: &Summary) -> Value {
    let mut embeds = Vec::new();
    let mut total = 0;
    let mut shown = 0;
    for c in &s.certs {
        let title = cut(&c.subject, DISCORD_TITLE_MAX);
        let description = cut(
            &format!(
                "Expires {} ({} days left)\nFingerprint {}",
                c.not_after, c.days_left, c.fingerprint
            ),
            DISCORD_DESCRIPTION_MAX,
        );
        let size = title.chars().count() + description.chars().count();
        if embeds.len() >= DISCORD_EMBEDS_MAX || total + size > DISCORD_EMBED_TOTAL_MAX {
            break;
        }
        total += size;
        shown += 1;
        embeds.push(json!({"title": title, "description": description, "color": 0xE67E22}));
    }
    let mut content = s.title.clone();
    if shown < s.certs.len() {
        content.push_str(&format!(" (…and {} more)", s.certs.len() - shown));
    }
    if let Some(d) = &s.detail {
        content.push('\n');
        content.push_str(d);
    }
    json!({"content": cut(&content, DISCORD_CONTENT_MAX), "embeds": embeds})
}

/// An email: subject, plain text and HTML.
pub fn email(s: &Summary) -> (String, String, String) {
    let mut text = format!("{}\n\n", s.title);
    let mut html = format!("<h2>{}</h2>\n", escape(&s.title));
    if !s.certs.is_empty() {
        html.push_str("<table border=\"1\" cellpadding=\"4\"><tr><th>Subject</th><th>Expires</th><th>Days left</th><th>Fingerprint</th></tr>\n");
    }
    for c in &s.certs {
        text.push_str(&format!("- {}\n", c.text()));
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>\n",
            escape(&c.subject),
            escape(&c.not_after),
            c.days_left,
            escape(&c.fingerprint)
        ));
    }
    if !s.certs.is_empty() {
        html.push_str("</table>\n");
    }
    if let Some(d) = &s.detail {
        text.push_str(d);
        text.push('\n');
        html.push_str(&format!("<pre>{}</pre>\n", escape(d)));
    }
    (cut(&s.title, 200), text, html)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn many(n: usize) -> Summary {
        Summary {
            title: "t".repeat(300),
            certs: (0..n)
                .map(|i| CertLine {
                    subject: format!("CN=host{i}.example.com"),
                    not_after: "2026-12-01T00:00:00Z".into(),
                    days_left: 7,
                    fingerprint: "ab".repeat(32),
                })
                .collect(),
            detail: None,
        }
    }

    #[test]
    fn discord_stays_within_limits() {
        let v = discord(&many(500));
        let embeds = v["embeds"].as_array().unwrap();
        assert_eq!(embeds.len(), DISCORD_EMBEDS_MAX);
        assert!(v["content"].as_str().unwrap().chars().count() <= DISCORD_CONTENT_MAX);
        let total: usize = embeds
            .iter()
            .map(|e| {
                e["title"].as_str().unwrap().chars().count()
                    + e["description"].as_str().unwrap().chars().count()
            })
            .sum();
        assert!(total <= DISCORD_EMBED_TOTAL_MAX);
        assert!(v["content"].as_str().unwrap().contains("and 490 more"));
    }

    #[test]
    fn slack_stays_within_limits() {
        let v = slack(&many(5000));
        let blocks = v["blocks"].as_array().unwrap();
        assert!(blocks.len() <= SLACK_BLOCKS_MAX);
        assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= SLACK_HEADER_MAX);
        for b in &blocks[1..blocks.len() - 1] {
            assert!(b["text"]["text"].as_str().unwrap().len() <= SLACK_SECTION_MAX);
        }
        assert_eq!(blocks.last().unwrap()["type"], "context");
    }
}
