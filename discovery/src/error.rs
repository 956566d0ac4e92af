//! Errors: bad scan input ([`Error`]) and why one probe failed ([`ProbeError`]).

/// A scan could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A target is not an address, network, range or host name.
    #[error("invalid target {0}")]
    Target(String),
    /// A port list is malformed.
    #[error("invalid ports: {0}")]
    Ports(String),
    /// A host name did not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// A target lies outside the allowed ranges.
    #[error("{0} is outside the ranges this scanner may scan")]
    NotAllowed(String),
    /// A scan option is out of range.
    #[error("invalid option: {0}")]
    Option(String),
}

/// One endpoint could not be probed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The TCP connection was refused (nothing listens).
    #[error("connection refused")]
    Refused,
    /// A step did not finish in time.
    #[error("timed out during {0}")]
    Timeout(&'static str),
    /// The STARTTLS dialogue failed.
    #[error("STARTTLS failed: {0}")]
    StartTls(String),
    /// The TLS handshake failed.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// Any other network error.
    #[error("{0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for ProbeError {
    fn from(e: std::io::Error) -> ProbeError {
        match e.kind() {
            std::io::ErrorKind::ConnectionRefused => ProbeError::Refused,
            _ => ProbeError::Io(e),
        }
    }
}

impl ProbeError {
    /// A short machine-readable kind: `refused`, `timeout`, `starttls`, `tls` or `io`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeError::Refused => "refused",
            ProbeError::Timeout(_) => "timeout",
            ProbeError::StartTls(_) => "starttls",
            ProbeError::Tls(_) => "tls",
            ProbeError::Io(_) => "io",
        }
    }
}
