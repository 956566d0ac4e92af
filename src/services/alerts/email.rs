//! Email over SMTP with lettre: STARTTLS or implicit TLS, optional authentication, a
//! plain-text and an HTML body. Every message carries `Date` and a `Message-ID` made from
//! the event and channel ids, so a repeated delivery of one event is recognisably the same
//! message.

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::channels::{ChannelSecrets, EmailConfig, SmtpTls};
use super::render;
use crate::store::NewEvent;

fn tls_parameters(cfg: &EmailConfig) -> Result<TlsParameters, String> {
    let mut b = TlsParameters::builder(cfg.host.clone());
    if let Some(pem) = &cfg.ca_pem {
        let cert =
            Certificate::from_pem(pem.as_bytes()).map_err(|e| format!("smtp.ca_pem: {e}"))?;
        b = b.add_root_certificate(cert);
    }
    b.build_rustls().map_err(|e| format!("TLS settings: {e}"))
}

/// The longest one SMTP conversation may take, whatever the server does.
pub(crate) const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// `<event.channel@domain>`, the domain being the sender's (RFC 5322 §3.6.4: the right
/// side names a domain the sender controls).
fn message_id(e: &NewEvent, channel_id: &str, from: &Mailbox) -> String {
    format!("<{}.{}@{}>", e.id, channel_id, from.email.domain())
}

/// Send one event as an email to the channel `channel_id`; the SMTP reply code on success.
pub(crate) async fn send(
    channel_id: &str,
    cfg: &EmailConfig,
    sec: &ChannelSecrets,
    e: &NewEvent,
) -> Result<u16, String> {
    let (subject, text, html) = render::email(&render::summarize(e));
    let from: Mailbox = cfg.from.parse().map_err(|e| format!("from: {e}"))?;
    let mut m = Message::builder()
        .message_id(Some(message_id(e, channel_id, &from)))
        .date_now()
        .from(from)
        .subject(subject);
    for to in &cfg.to {
        m = m.to(to.parse().map_err(|e| format!("to {to:?}: {e}"))?);
    }
    let message = m
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| format!("building the message: {e}"))?;
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
        .port(cfg.port)
        .timeout(Some(std::time::Duration::from_secs(20)));
    b = match cfg.tls {
        SmtpTls::Starttls => b.tls(Tls::Required(tls_parameters(cfg)?)),
        SmtpTls::Tls => b.tls(Tls::Wrapper(tls_parameters(cfg)?)),
        SmtpTls::None => b,
    };
    if let (Some(user), Some(pass)) = (&cfg.username, &sec.password) {
        b = b.credentials(Credentials::new(user.clone(), pass.clone()));
    }
    let transport = b.build();
    // One bound for the whole conversation, whatever the server does.
    let resp = tokio::time::timeout(SEND_TIMEOUT, transport.send(message))
        .await
        .map_err(|_| format!("SMTP: no answer within {} s", SEND_TIMEOUT.as_secs()))?
        .map_err(|e| format!("SMTP: {e}"))?;
    Ok(u16::from(resp.code()))
}
