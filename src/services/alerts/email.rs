//! Email over SMTP with lettre: STARTTLS or implicit TLS, optional authentication, a
//! plain-text and an HTML body.

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

/// Send one event as an email; the SMTP reply code on success.
pub(crate) async fn send(
    cfg: &EmailConfig,
    sec: &ChannelSecrets,
    e: &NewEvent,
) -> Result<u16, String> {
    let (subject, text, html) = render::email(&render::summarize(e));
    let from: Mailbox = cfg.from.parse().map_err(|e| format!("from: {e}"))?;
    let mut m = Message::builder().from(from).subject(subject);
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
    let resp = tokio::time::timeout(std::time::Duration::from_secs(60), transport.send(message))
        .await
        .map_err(|_| "SMTP: no answer within 60 s".to_string())?
        .map_err(|e| format!("SMTP: {e}"))?;
    Ok(u16::from(resp.code()))
}
