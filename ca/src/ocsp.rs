//! OCSP (placeholder until the responder module lands).
/// OCSP errors.
#[derive(Debug, thiserror::Error)]
pub enum OcspError {
    /// Malformed.
    #[error("malformed")]
    Malformed,
}
