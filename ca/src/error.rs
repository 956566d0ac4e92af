//! The crate's one error type.

use crate::profile::PolicyViolation;

/// Everything that can go wrong in the CA core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The request breaks a rule of the profile.
    #[error(transparent)]
    Policy(#[from] PolicyViolation),
    /// A CSR could not be parsed or its signature did not verify.
    #[error("bad CSR: {0}")]
    BadCsr(String),
    /// A certificate could not be parsed or is unsuitable.
    #[error("bad certificate: {0}")]
    BadCertificate(String),
    /// A private key could not be parsed, or does not match its certificate.
    #[error("bad key: {0}")]
    BadKey(String),
    /// The requested CA parameters are invalid (for example a path length the parent forbids).
    #[error("invalid CA request: {0}")]
    InvalidCa(String),
    /// Sealed key material could not be decrypted (wrong master key or tampered data).
    #[error("sealed data could not be opened: wrong master key or corrupted data")]
    Unseal,
    /// An unsupported or unknown key algorithm name.
    #[error("unsupported key algorithm: {0}")]
    UnsupportedKey(String),
    /// Signing or encoding failed inside the crypto library.
    #[error("crypto failure: {0}")]
    Crypto(String),
    /// An OCSP encoding problem.
    #[error(transparent)]
    Ocsp(#[from] crate::ocsp::OcspError),
}

impl From<rcgen::Error> for CaError {
    fn from(e: rcgen::Error) -> Self {
        CaError::Crypto(e.to_string())
    }
}
