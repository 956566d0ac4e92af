//! STARTTLS upgrades: the plaintext dialogue some protocols need before the TLS handshake.
//!
//! Every read is bounded (line length, line count, message size); the caller puts a timeout
//! around the whole dialogue.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::ProbeError;

/// A protocol that upgrades a plaintext connection to TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// SMTP (RFC 3207): ports 25 and 587.
    Smtp,
    /// IMAP (RFC 2595): port 143.
    Imap,
    /// POP3 (RFC 2595): port 110.
    Pop3,
    /// LDAP StartTLS extended operation (RFC 4511): port 389.
    Ldap,
}

impl StartTls {
    /// Parse `smtp`, `imap`, `pop3` or `ldap`.
    pub fn from_name(name: &str) -> Option<StartTls> {
        match name.to_ascii_lowercase().as_str() {
            "smtp" => Some(StartTls::Smtp),
            "imap" => Some(StartTls::Imap),
            "pop3" => Some(StartTls::Pop3),
            "ldap" => Some(StartTls::Ldap),
            _ => None,
        }
    }

    /// The protocol a well-known port calls for.
    pub fn for_port(port: u16) -> Option<StartTls> {
        match port {
            25 | 587 => Some(StartTls::Smtp),
            143 => Some(StartTls::Imap),
            110 => Some(StartTls::Pop3),
            389 => Some(StartTls::Ldap),
            _ => None,
        }
    }

    /// Run the dialogue; on success the stream is ready for a TLS ClientHello.
    pub async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
        self,
        stream: &mut S,
    ) -> Result<(), ProbeError> {
        let mut lines = LineReader::default();
        match self {
            StartTls::Smtp => {
                lines.reply(stream, "220").await?;
                stream.write_all(b"EHLO certkeeper.invalid\r\n").await?;
                let ehlo = lines.reply(stream, "250").await?;
                if !ehlo.iter().any(|l| {
                    l.get(4..)
                        .is_some_and(|x| x.eq_ignore_ascii_case("STARTTLS"))
                }) {
                    return Err(ProbeError::StartTls(
                        "server does not offer STARTTLS".into(),
                    ));
                }
                stream.write_all(b"STARTTLS\r\n").await?;
                lines.reply(stream, "220").await?;
            }
            StartTls::Imap => {
                lines.line_starting(stream, "* OK").await?;
                stream.write_all(b"ck1 STARTTLS\r\n").await?;
                lines.line_starting(stream, "ck1 OK").await?;
            }
            StartTls::Pop3 => {
                lines.line_starting(stream, "+OK").await?;
                stream.write_all(b"STLS\r\n").await?;
                lines.line_starting(stream, "+OK").await?;
            }
            StartTls::Ldap => ldap(stream).await?,
        }
        Ok(())
    }
}

const MAX_LINE: usize = 2048;
const MAX_LINES: usize = 64;

#[derive(Default)]
struct LineReader {
    buf: Vec<u8>,
    lines_read: usize,
}

impl LineReader {
    async fn line<S: AsyncRead + Unpin>(&mut self, s: &mut S) -> Result<String, ProbeError> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                self.lines_read += 1;
                if self.lines_read > MAX_LINES {
                    return Err(ProbeError::StartTls("too many lines".into()));
                }
                return Ok(String::from_utf8_lossy(&line).trim_end().to_string());
            }
            if self.buf.len() > MAX_LINE {
                return Err(ProbeError::StartTls("line too long".into()));
            }
            let mut chunk = [0u8; 512];
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Err(ProbeError::StartTls("connection closed".into()));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// An SMTP reply (possibly multi-line) with the expected code.
    async fn reply<S: AsyncRead + Unpin>(
        &mut self,
        s: &mut S,
        code: &str,
    ) -> Result<Vec<String>, ProbeError> {
        let mut out = Vec::new();
        loop {
            let l = self.line(s).await?;
            if !l.starts_with(code) {
                return Err(ProbeError::StartTls(format!("expected {code}, got {l:?}")));
            }
            let last = l.as_bytes().get(3) != Some(&b'-');
            out.push(l);
            if last {
                return Ok(out);
            }
        }
    }

    /// Skip untagged lines until one starts with `prefix`; a tagged failure is an error.
    async fn line_starting<S: AsyncRead + Unpin>(
        &mut self,
        s: &mut S,
        prefix: &str,
    ) -> Result<(), ProbeError> {
        loop {
            let l = self.line(s).await?;
            if l.starts_with(prefix) {
                return Ok(());
            }
            if !l.starts_with("* ") {
                return Err(ProbeError::StartTls(format!(
                    "expected {prefix:?}, got {l:?}"
                )));
            }
        }
    }
}

async fn ldap<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> Result<(), ProbeError> {
    const OID: &[u8] = b"1.3.6.1.4.1.1466.20037";
    // LDAPMessage { messageID 1, extendedReq [APPLICATION 23] { requestName [0] OID } }
    let mut req = vec![0x30, (3 + 2 + 2 + OID.len()) as u8, 0x02, 0x01, 0x01];
    req.extend([0x77, (2 + OID.len()) as u8, 0x80, OID.len() as u8]);
    req.extend(OID);
    s.write_all(&req).await?;
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await?;
    if head[0] != 0x30 {
        return Err(ProbeError::StartTls("not an LDAP message".into()));
    }
    let len = match head[1] {
        n if n < 0x80 => usize::from(n),
        0x81 => usize::from(s.read_u8().await?),
        0x82 => usize::from(s.read_u16().await?),
        _ => return Err(ProbeError::StartTls("LDAP response too long".into())),
    };
    if len > 4096 {
        return Err(ProbeError::StartTls("LDAP response too long".into()));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    // messageID (02 01 01), then extendedResp [APPLICATION 24] whose first element is the
    // resultCode ENUMERATED.
    let rest = body
        .strip_prefix(&[0x02, 0x01, 0x01])
        .and_then(|r| r.strip_prefix(&[0x78]))
        .ok_or_else(|| ProbeError::StartTls("unexpected LDAP response".into()))?;
    let skip = match rest.first() {
        Some(n) if *n < 0x80 => 1,
        Some(n) => 1 + usize::from(n & 0x7f),
        None => return Err(ProbeError::StartTls("short LDAP response".into())),
    };
    match rest.get(skip..skip + 3) {
        Some([0x0a, 0x01, 0x00]) => Ok(()),
        Some([0x0a, 0x01, code]) => Err(ProbeError::StartTls(format!(
            "LDAP StartTLS refused (result {code})"
        ))),
        _ => Err(ProbeError::StartTls("unexpected LDAP response".into())),
    }
}
