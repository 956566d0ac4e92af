//! OCSP responder core (RFC 6960): request parsing and response building.
//!
//! This module does no I/O. It turns the DER bytes of an `OCSPRequest` into an
//! [`OcspRequest`] ([`parse_request`]), and turns the statuses decided by the caller
//! into a signed, DER-encoded `OCSPResponse` ([`build_response`]) or an unsuccessful
//! one ([`error_response`]).
//!
//! Typical flow for a responder:
//!
//! 1. [`parse_request`] the body (POST) or the base64-decoded path (GET). On error,
//!    answer with [`error_response`] using [`OcspError::response_status`]
//!    (normally [`OcspResponseStatus::MalformedRequest`]).
//! 2. For each [`CertId`], check [`CertId::matches_issuer`] against the CA certificate and
//!    look the serial number up; produce a [`SingleResponse`] with [`CertStatus::Good`],
//!    [`CertStatus::Revoked`] or [`CertStatus::Unknown`].
//! 3. [`build_response`] with the CA key (or a delegated OCSP signing certificate issued by
//!    the CA), echoing [`OcspRequest::nonce`].
//!
//! Encoding choices: responses are `BasicOCSPResponse` (`id-pkix-ocsp-basic`), version v1,
//! `responderID` is `byKey` (SHA-1 of the responder's `subjectPublicKey` BIT STRING value),
//! all times are `GeneralizedTime` in UTC truncated to whole seconds, the CertID hash
//! `AlgorithmIdentifier` is written with NULL parameters (as OpenSSL and Go do), and the
//! responder certificate is included in `certs` only for delegated responders.
//!
//! Request parsing is strict DER. Unknown non-critical request extensions are ignored;
//! unknown *critical* request extensions are rejected, as are duplicate extensions.

use std::cell::Cell;
use std::fmt;

use time::{OffsetDateTime, UtcOffset};
use yasna::models::{GeneralizedTime, ObjectIdentifier};
use yasna::{ASN1Error, ASN1ErrorKind, ASN1Result, BERReader, DERWriter, Tag};

/// Maximum number of CertIDs accepted in one request.
pub const MAX_CERT_IDS: usize = 64;

/// Maximum number of extensions accepted in one `Extensions` list of a request.
pub const MAX_EXTENSIONS: usize = 16;

/// Maximum nonce length in octets (RFC 9654: `Nonce ::= OCTET STRING (SIZE(1..128))`).
pub const MAX_NONCE_LEN: usize = 128;

// Hash algorithms (CertID).
const OID_SHA1: &[u64] = &[1, 3, 14, 3, 2, 26];
const OID_SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
const OID_SHA384: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 2];
const OID_SHA512: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 3];

// OCSP (id-pkix-ocsp = 1.3.6.1.5.5.7.48.1).
const OID_OCSP_BASIC: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 1];
const OID_OCSP_NONCE: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 2];
const OID_OCSP_RESPONSE: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 4];
const OID_OCSP_SERVICE_LOCATOR: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 7];
const OID_OCSP_PREF_SIG_ALGS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 8];

// Signature algorithms.
const OID_ECDSA_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
const OID_ECDSA_SHA384: &[u64] = &[1, 2, 840, 10045, 4, 3, 3];
const OID_ECDSA_SHA512: &[u64] = &[1, 2, 840, 10045, 4, 3, 4];
const OID_ED25519: &[u64] = &[1, 3, 101, 112];
const OID_RSA_SHA256: &[u64] = &[1, 2, 840, 113549, 1, 1, 11];
const OID_RSA_SHA384: &[u64] = &[1, 2, 840, 113549, 1, 1, 12];
const OID_RSA_SHA512: &[u64] = &[1, 2, 840, 113549, 1, 1, 13];
const OID_ML_DSA_44: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 3, 17];
const OID_ML_DSA_65: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 3, 18];
const OID_ML_DSA_87: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 3, 19];

/// DER encoding of an ASN.1 NULL.
const DER_NULL: &[u8] = &[0x05, 0x00];

/// Hash algorithm named in a CertID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OcspHash {
    /// SHA-1 (1.3.14.3.2.26), the default used by most clients.
    Sha1,
    /// SHA-256 (2.16.840.1.101.3.4.2.1).
    Sha256,
    /// SHA-384 (2.16.840.1.101.3.4.2.2).
    Sha384,
    /// SHA-512 (2.16.840.1.101.3.4.2.3).
    Sha512,
}

impl OcspHash {
    /// The algorithm's object identifier components.
    pub fn oid(self) -> &'static [u64] {
        match self {
            Self::Sha1 => OID_SHA1,
            Self::Sha256 => OID_SHA256,
            Self::Sha384 => OID_SHA384,
            Self::Sha512 => OID_SHA512,
        }
    }

    /// The algorithm for an object identifier, or `None` when it is not supported.
    pub fn from_oid(oid: &[u64]) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|h| h.oid() == oid)
    }

    /// Length of the digest in octets.
    pub fn output_len(self) -> usize {
        self.algorithm().output_len()
    }

    /// Digest of `data` with this algorithm.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        aws_lc_rs::digest::digest(self.algorithm(), data)
            .as_ref()
            .to_vec()
    }

    fn algorithm(self) -> &'static aws_lc_rs::digest::Algorithm {
        match self {
            Self::Sha1 => &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &aws_lc_rs::digest::SHA256,
            Self::Sha384 => &aws_lc_rs::digest::SHA384,
            Self::Sha512 => &aws_lc_rs::digest::SHA512,
        }
    }
}

/// One CertID from a request (RFC 6960 §4.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertId {
    /// Hash algorithm used for `issuer_name_hash` and `issuer_key_hash`.
    pub hash: OcspHash,
    /// Hash of the issuer's DN (the DER of the issuer certificate's `subject`).
    pub issuer_name_hash: Vec<u8>,
    /// Hash of the issuer's public key (the value of its `subjectPublicKey` BIT STRING).
    pub issuer_key_hash: Vec<u8>,
    /// serial number as unsigned big-endian bytes, no leading zero bytes
    /// (so serial number 0 is the empty vector)
    pub serial: Vec<u8>,
}

impl CertId {
    /// Builds the CertID naming certificate `serial` issued by `issuer_cert_der`.
    ///
    /// `serial` is unsigned big-endian; leading zero bytes are stripped, so the DER content
    /// octets of a (positive) serial number INTEGER may be passed as-is.
    pub fn new(hash: OcspHash, issuer_cert_der: &[u8], serial: &[u8]) -> Result<Self, OcspError> {
        let (name_hash, key_hash) = issuer_hashes(hash, issuer_cert_der)?;
        Ok(Self {
            hash,
            issuer_name_hash: name_hash,
            issuer_key_hash: key_hash,
            serial: strip_leading_zeros(serial).to_vec(),
        })
    }

    /// true when this CertID names the given issuer certificate (DER): compare H(issuer subject DER)
    /// and H(issuer subjectPublicKey BIT STRING value) using self.hash
    ///
    /// Returns false when `issuer_cert_der` is not a parseable certificate.
    pub fn matches_issuer(&self, issuer_cert_der: &[u8]) -> bool {
        match issuer_hashes(self.hash, issuer_cert_der) {
            Ok((name_hash, key_hash)) => {
                name_hash == self.issuer_name_hash && key_hash == self.issuer_key_hash
            }
            Err(_) => false,
        }
    }
}

/// A parsed OCSPRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspRequest {
    /// The CertIDs asked about, in request order (1 to [`MAX_CERT_IDS`] entries).
    pub cert_ids: Vec<CertId>,
    /// The extnValue OCTET STRING contents of id-pkix-ocsp-nonce, re-emitted verbatim in
    /// the response (pass it to [`build_response`]). For RFC 9654 clients such as OpenSSL
    /// this is itself the DER of an OCTET STRING holding the nonce octets.
    pub nonce: Option<Vec<u8>>,
}

/// Certificate status reported in a [`SingleResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertStatus {
    /// The certificate is not revoked.
    Good,
    /// The certificate is revoked.
    Revoked {
        /// When the certificate was revoked.
        revoked_at: OffsetDateTime,
        /// RFC 5280 reason code 0..=10 (7 unused), written as `revocationReason`
        /// (`[0] EXPLICIT CRLReason`); `None` omits it.
        reason: Option<u8>,
    },
    /// The responder does not know about the certificate.
    Unknown,
}

/// The status of one certificate, as it goes into the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleResponse {
    /// The CertID, normally copied from the request.
    pub cert_id: CertId,
    /// The status of the certificate.
    pub status: CertStatus,
    /// Time at which the status is known to be correct.
    pub this_update: OffsetDateTime,
    /// Time by which newer status information will be available, if any.
    pub next_update: Option<OffsetDateTime>,
}

/// Who signs: the CA itself or a delegated responder certificate issued by the CA
/// (with EKU id-kp-OCSPSigning); its certificate is included in the response `certs` when delegated.
#[derive(Clone, Copy)]
pub struct Responder<'a> {
    /// DER of the responder's certificate (the CA certificate when not delegated).
    pub cert_der: &'a [u8],
    /// The private key matching `cert_der` (a key pair, or a CA's [`CaKey`](crate::CaKey)).
    pub key: &'a dyn rcgen::SigningKey,
    /// Whether `cert_der` is a delegated OCSP signing certificate rather than the CA.
    pub delegated: bool,
}

impl fmt::Debug for Responder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("cert_der_len", &self.cert_der.len())
            .field("key_algorithm", self.key.algorithm())
            .field("delegated", &self.delegated)
            .finish()
    }
}

/// Status of an unsuccessful OCSPResponse, for [`error_response`].
///
/// The discriminants are the RFC 6960 `OCSPResponseStatus` codes (`successful` (0) is
/// produced only by [`build_response`]; 4 is unused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OcspResponseStatus {
    /// Illegal confirmation request.
    MalformedRequest = 1,
    /// Internal error in issuer.
    InternalError = 2,
    /// Try again later.
    TryLater = 3,
    /// Must sign the request.
    SigRequired = 5,
    /// Request unauthorized.
    Unauthorized = 6,
}

/// Errors from parsing requests and building responses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OcspError {
    /// The request is not valid DER for an OCSPRequest (garbage, truncated, trailing data...).
    #[error("malformed OCSP request: invalid DER structure ({0})")]
    MalformedDer(ASN1Error),
    /// The request's version is not v1.
    #[error("malformed OCSP request: unsupported version {0} (only v1 = 0 is defined)")]
    UnsupportedVersion(i64),
    /// The request list is empty.
    #[error("malformed OCSP request: the request list contains no CertID")]
    EmptyRequestList,
    /// More CertIDs than [`MAX_CERT_IDS`].
    #[error("malformed OCSP request: more than {max} CertIDs")]
    TooManyCertIds {
        /// The limit.
        max: usize,
    },
    /// The CertID hash algorithm is not SHA-1/256/384/512.
    #[error("malformed OCSP request: unsupported CertID hash algorithm {0}")]
    UnsupportedHashAlgorithm(String),
    /// The CertID hash AlgorithmIdentifier has parameters other than absent or NULL.
    #[error("malformed OCSP request: CertID hash algorithm parameters must be absent or NULL")]
    InvalidHashParameters,
    /// A CertID hash has the wrong length for its algorithm.
    #[error(
        "malformed OCSP request: CertID {field} is {actual} bytes, {hash:?} digests are {expected} bytes"
    )]
    HashLengthMismatch {
        /// `issuerNameHash` or `issuerKeyHash`.
        field: &'static str,
        /// The declared hash algorithm.
        hash: OcspHash,
        /// The digest length of `hash`.
        expected: usize,
        /// The length found.
        actual: usize,
    },
    /// A CertID serial number is negative.
    #[error("malformed OCSP request: CertID serial number is negative")]
    NegativeSerial,
    /// The same extension appears twice in one extension list.
    #[error("malformed OCSP request: duplicate extension {0}")]
    DuplicateExtension(String),
    /// More extensions than [`MAX_EXTENSIONS`] in one list.
    #[error("malformed OCSP request: more than {max} extensions")]
    TooManyExtensions {
        /// The limit.
        max: usize,
    },
    /// A critical extension this responder does not understand.
    #[error("malformed OCSP request: unsupported critical extension {0}")]
    UnsupportedCriticalExtension(String),
    /// The nonce is empty or longer than [`MAX_NONCE_LEN`].
    #[error("malformed OCSP request: nonce length {0} is outside 1..={MAX_NONCE_LEN}")]
    InvalidNonceLength(usize),
    /// `build_response` was called without any single response.
    #[error("cannot build an OCSP response without any single response")]
    NoResponses,
    /// A time cannot be encoded as a GeneralizedTime (year outside 0..=9999).
    #[error("time {0} cannot be encoded as an OCSP GeneralizedTime")]
    TimeOutOfRange(OffsetDateTime),
    /// `nextUpdate` is earlier than `thisUpdate`.
    #[error("nextUpdate {next_update} is earlier than thisUpdate {this_update}")]
    NextUpdateBeforeThisUpdate {
        /// The thisUpdate value.
        this_update: OffsetDateTime,
        /// The nextUpdate value.
        next_update: OffsetDateTime,
    },
    /// The revocation reason is not a valid RFC 5280 CRLReason.
    #[error("invalid revocation reason code {0} (valid: 0..=10 except 7)")]
    InvalidRevocationReason(u8),
    /// The nonce passed to `build_response` is empty.
    #[error("the nonce to echo is empty")]
    EmptyNonce,
    /// A certificate (responder or issuer) could not be parsed.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// The responder key does not belong to the responder certificate.
    #[error("the responder key does not match the responder certificate's public key")]
    ResponderKeyMismatch,
    /// A delegated responder certificate without the id-kp-OCSPSigning extended key usage.
    #[error("delegated responder certificate lacks the id-kp-OCSPSigning extended key usage")]
    ResponderNotAuthorized,
    /// The responder key's algorithm has no OCSP signature encoding here.
    #[error("unsupported responder signature algorithm {0}")]
    UnsupportedSignatureAlgorithm(String),
    /// Signing the response failed.
    #[error("signing the OCSP response failed: {0}")]
    Signing(rcgen::Error),
}

impl OcspError {
    /// True when the error describes a bad request (as opposed to a responder-side failure).
    pub fn is_malformed_request(&self) -> bool {
        matches!(
            self,
            Self::MalformedDer(_)
                | Self::UnsupportedVersion(_)
                | Self::EmptyRequestList
                | Self::TooManyCertIds { .. }
                | Self::UnsupportedHashAlgorithm(_)
                | Self::InvalidHashParameters
                | Self::HashLengthMismatch { .. }
                | Self::NegativeSerial
                | Self::DuplicateExtension(_)
                | Self::TooManyExtensions { .. }
                | Self::UnsupportedCriticalExtension(_)
                | Self::InvalidNonceLength(_)
        )
    }

    /// The unsuccessful response status to answer with: `MalformedRequest` for request errors,
    /// `InternalError` otherwise.
    pub fn response_status(&self) -> OcspResponseStatus {
        if self.is_malformed_request() {
            OcspResponseStatus::MalformedRequest
        } else {
            OcspResponseStatus::InternalError
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Request parsing
// ---------------------------------------------------------------------------------------------

/// Carries a semantic error out of yasna's callbacks (which can only return `ASN1Error`).
#[derive(Default)]
struct Failure(Cell<Option<OcspError>>);

impl Failure {
    fn raise(&self, error: OcspError) -> ASN1Error {
        self.0.set(Some(error));
        ASN1Error::new(ASN1ErrorKind::Invalid)
    }
}

struct RawExtension {
    oid: ObjectIdentifier,
    critical: bool,
    value: Vec<u8>,
}

/// Parses a DER `OCSPRequest`.
///
/// Rejects (with a malformed-request error) trailing data, an empty request list, more than
/// [`MAX_CERT_IDS`] CertIDs, unknown hash algorithms, negative serial numbers, duplicate
/// extensions, unknown critical extensions and nonces of 0 or more than [`MAX_NONCE_LEN`]
/// octets. `requestorName`, `optionalSignature` (unverified) and non-critical extensions are
/// accepted and ignored.
pub fn parse_request(der: &[u8]) -> Result<OcspRequest, OcspError> {
    // yasna skips elements without checking their lengths (crate::der).
    if !crate::der::lengths_fit(der, false) {
        return Err(OcspError::MalformedDer(ASN1Error::new(
            ASN1ErrorKind::Invalid,
        )));
    }
    let failure = Failure::default();
    let parsed = yasna::parse_der(der, |reader| read_ocsp_request(reader, &failure));
    let request = match parsed {
        Ok(request) => request,
        Err(e) => return Err(failure.0.take().unwrap_or(OcspError::MalformedDer(e))),
    };
    if request.cert_ids.is_empty() {
        return Err(OcspError::EmptyRequestList);
    }
    Ok(request)
}

// OCSPRequest ::= SEQUENCE {
//     tbsRequest                  TBSRequest,
//     optionalSignature   [0]     EXPLICIT Signature OPTIONAL }
fn read_ocsp_request(reader: BERReader<'_, '_>, f: &Failure) -> ASN1Result<OcspRequest> {
    reader.read_sequence(|seq| {
        let request = read_tbs_request(seq.next(), f)?;
        // The signature is neither required nor verified by this responder.
        seq.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_der()))?;
        Ok(request)
    })
}

// TBSRequest ::= SEQUENCE {
//     version             [0]     EXPLICIT Version DEFAULT v1,
//     requestorName       [1]     EXPLICIT GeneralName OPTIONAL,
//     requestList                 SEQUENCE OF Request,
//     requestExtensions   [2]     EXPLICIT Extensions OPTIONAL }
fn read_tbs_request(reader: BERReader<'_, '_>, f: &Failure) -> ASN1Result<OcspRequest> {
    reader.read_sequence(|seq| {
        let version = seq.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_i64()))?;
        if let Some(v) = version
            && v != 0
        {
            return Err(f.raise(OcspError::UnsupportedVersion(v)));
        }
        seq.read_optional(|r| r.read_tagged(Tag::context(1), |r| r.read_der()))?;

        let mut cert_ids = Vec::new();
        seq.next().read_sequence_of(|r| {
            let cert_id = read_single_request(r, f)?;
            if cert_ids.len() >= MAX_CERT_IDS {
                return Err(f.raise(OcspError::TooManyCertIds { max: MAX_CERT_IDS }));
            }
            cert_ids.push(cert_id);
            Ok(())
        })?;

        let extensions =
            seq.read_optional(|r| r.read_tagged(Tag::context(2), |r| read_extensions(r, f)))?;
        let mut nonce = None;
        for ext in extensions.unwrap_or_default() {
            let oid = ext.oid.components().as_slice();
            if oid == OID_OCSP_NONCE {
                check_nonce(&ext.value).map_err(|e| f.raise(e))?;
                nonce = Some(ext.value);
            } else if ext.critical && oid != OID_OCSP_RESPONSE && oid != OID_OCSP_PREF_SIG_ALGS {
                // Acceptable responses: we always answer with id-pkix-ocsp-basic.
                // Preferred signature algorithms: advisory, the responder key decides.
                return Err(f.raise(OcspError::UnsupportedCriticalExtension(ext.oid.to_string())));
            }
        }
        Ok(OcspRequest { cert_ids, nonce })
    })
}

// Request ::= SEQUENCE {
//     reqCert                     CertID,
//     singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
fn read_single_request(reader: BERReader<'_, '_>, f: &Failure) -> ASN1Result<CertId> {
    reader.read_sequence(|seq| {
        let cert_id = read_cert_id(seq.next(), f)?;
        let extensions =
            seq.read_optional(|r| r.read_tagged(Tag::context(0), |r| read_extensions(r, f)))?;
        for ext in extensions.unwrap_or_default() {
            // The service locator (RFC 6960 §4.4.6) is only meaningful to forwarding
            // responders; ignoring it is correct for an authoritative one.
            if ext.critical && ext.oid.components().as_slice() != OID_OCSP_SERVICE_LOCATOR {
                return Err(f.raise(OcspError::UnsupportedCriticalExtension(ext.oid.to_string())));
            }
        }
        Ok(cert_id)
    })
}

// CertID ::= SEQUENCE {
//     hashAlgorithm       AlgorithmIdentifier,
//     issuerNameHash      OCTET STRING,
//     issuerKeyHash       OCTET STRING,
//     serialNumber        CertificateSerialNumber }
fn read_cert_id(reader: BERReader<'_, '_>, f: &Failure) -> ASN1Result<CertId> {
    reader.read_sequence(|seq| {
        let (oid, params) = seq.next().read_sequence(|alg| {
            let oid = alg.next().read_oid()?;
            let params = alg.read_optional(|r| r.read_der())?;
            Ok((oid, params))
        })?;
        let issuer_name_hash = seq.next().read_bytes()?;
        let issuer_key_hash = seq.next().read_bytes()?;
        let (serial, non_negative) = seq.next().read_bigint_bytes()?;

        let hash = OcspHash::from_oid(oid.components())
            .ok_or_else(|| f.raise(OcspError::UnsupportedHashAlgorithm(oid.to_string())))?;
        if params.is_some_and(|p| p != DER_NULL) {
            return Err(f.raise(OcspError::InvalidHashParameters));
        }
        for (field, value) in [
            ("issuerNameHash", &issuer_name_hash),
            ("issuerKeyHash", &issuer_key_hash),
        ] {
            if value.len() != hash.output_len() {
                return Err(f.raise(OcspError::HashLengthMismatch {
                    field,
                    hash,
                    expected: hash.output_len(),
                    actual: value.len(),
                }));
            }
        }
        if !non_negative {
            return Err(f.raise(OcspError::NegativeSerial));
        }
        Ok(CertId {
            hash,
            issuer_name_hash,
            issuer_key_hash,
            serial: strip_leading_zeros(&serial).to_vec(),
        })
    })
}

// Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension
// Extension ::= SEQUENCE {
//     extnID      OBJECT IDENTIFIER,
//     critical    BOOLEAN DEFAULT FALSE,
//     extnValue   OCTET STRING }
fn read_extensions(reader: BERReader<'_, '_>, f: &Failure) -> ASN1Result<Vec<RawExtension>> {
    let mut extensions: Vec<RawExtension> = Vec::new();
    reader.read_sequence_of(|r| {
        let ext = r.read_sequence(|seq| {
            let oid = seq.next().read_oid()?;
            // DEFAULT FALSE: DER omits it, but accept an explicit FALSE.
            let critical = seq.read_optional(|r| r.read_bool())?.unwrap_or(false);
            let value = seq.next().read_bytes()?;
            Ok(RawExtension {
                oid,
                critical,
                value,
            })
        })?;
        if extensions.len() >= MAX_EXTENSIONS {
            return Err(f.raise(OcspError::TooManyExtensions {
                max: MAX_EXTENSIONS,
            }));
        }
        if extensions.iter().any(|e| e.oid == ext.oid) {
            return Err(f.raise(OcspError::DuplicateExtension(ext.oid.to_string())));
        }
        extensions.push(ext);
        Ok(())
    })?;
    Ok(extensions)
}

/// Checks the nonce length. RFC 9654 clients send the nonce octets wrapped in an OCTET STRING
/// inside extnValue; older ones put the raw octets there. Either way the nonce itself must be
/// 1..=MAX_NONCE_LEN octets.
fn check_nonce(ext_value: &[u8]) -> Result<(), OcspError> {
    let nonce_len = match yasna::parse_der(ext_value, |r| r.read_bytes()) {
        Ok(inner) => inner.len(),
        Err(_) => ext_value.len(),
    };
    if nonce_len == 0 || nonce_len > MAX_NONCE_LEN {
        return Err(OcspError::InvalidNonceLength(nonce_len));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Response building
// ---------------------------------------------------------------------------------------------

/// A fully validated status, ready to be written without any fallible step.
enum PreparedStatus {
    Good,
    Revoked {
        revoked_at: GeneralizedTime,
        reason: Option<u8>,
    },
    Unknown,
}

struct PreparedResponse<'r> {
    cert_id: &'r CertId,
    status: PreparedStatus,
    this_update: GeneralizedTime,
    next_update: Option<GeneralizedTime>,
}

/// Signature AlgorithmIdentifier: OID and whether parameters are an explicit NULL.
struct SignatureAlgorithmId {
    oid: &'static [u64],
    null_params: bool,
}

/// Build a successful BasicOCSPResponse wrapped in OCSPResponse (responseStatus successful),
/// responderID byKey (SHA-1 of the responder's subjectPublicKey BIT STRING value), producedAt,
/// responses, the nonce extension echoed if present, signed with the responder key.
///
/// Checks that the key matches `responder.cert_der`, that a delegated responder certificate
/// carries id-kp-OCSPSigning, that revocation reasons are valid and that all times are
/// encodable (times are converted to UTC and truncated to whole seconds). It does not check
/// that the CertIDs name the CA behind the responder; callers answer only for their own CA
/// (see [`CertId::matches_issuer`]).
pub fn build_response(
    responder: &Responder<'_>,
    responses: &[SingleResponse],
    nonce: Option<&[u8]>,
    produced_at: OffsetDateTime,
) -> Result<Vec<u8>, OcspError> {
    if responses.is_empty() {
        return Err(OcspError::NoResponses);
    }
    if nonce.is_some_and(<[u8]>::is_empty) {
        return Err(OcspError::EmptyNonce);
    }

    let cert = parse_certificate(responder.cert_der)?;
    let public_key = &cert.public_key().subject_public_key.data;
    if public_key.as_ref() != responder.key.der_bytes() {
        return Err(OcspError::ResponderKeyMismatch);
    }
    if responder.delegated {
        let eku = cert
            .extended_key_usage()
            .map_err(|e| OcspError::InvalidCertificate(e.to_string()))?;
        if !eku.is_some_and(|eku| eku.value.ocsp_signing) {
            return Err(OcspError::ResponderNotAuthorized);
        }
    }
    let responder_key_hash = OcspHash::Sha1.digest(public_key);
    let signature_algorithm = signature_algorithm(responder.key.algorithm())?;

    let produced_at = generalized_time(produced_at)?;
    let prepared = responses
        .iter()
        .map(prepare_response)
        .collect::<Result<Vec<_>, _>>()?;

    // ResponseData ::= SEQUENCE {
    //     version             [0] EXPLICIT Version DEFAULT v1,
    //     responderID             ResponderID,
    //     producedAt              GeneralizedTime,
    //     responses               SEQUENCE OF SingleResponse,
    //     responseExtensions  [1] EXPLICIT Extensions OPTIONAL }
    let tbs_response_data = yasna::construct_der(|w| {
        w.write_sequence(|seq| {
            // ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }
            seq.next()
                .write_tagged(Tag::context(2), |w| w.write_bytes(&responder_key_hash));
            seq.next().write_generalized_time(&produced_at);
            seq.next().write_sequence_of(|list| {
                for response in &prepared {
                    write_single_response(list.next(), response);
                }
            });
            if let Some(nonce) = nonce {
                seq.next().write_tagged(Tag::context(1), |w| {
                    w.write_sequence_of(|exts| {
                        exts.next().write_sequence(|ext| {
                            ext.next()
                                .write_oid(&ObjectIdentifier::from_slice(OID_OCSP_NONCE));
                            ext.next().write_bytes(nonce);
                        });
                    });
                });
            }
        });
    });

    let signature = responder
        .key
        .sign(&tbs_response_data)
        .map_err(OcspError::Signing)?;

    // BasicOCSPResponse ::= SEQUENCE {
    //     tbsResponseData      ResponseData,
    //     signatureAlgorithm   AlgorithmIdentifier,
    //     signature            BIT STRING,
    //     certs            [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
    let basic = yasna::construct_der(|w| {
        w.write_sequence(|seq| {
            seq.next().write_der(&tbs_response_data);
            seq.next().write_sequence(|alg| {
                alg.next()
                    .write_oid(&ObjectIdentifier::from_slice(signature_algorithm.oid));
                if signature_algorithm.null_params {
                    alg.next().write_null();
                }
            });
            seq.next()
                .write_bitvec_bytes(&signature, signature.len() * 8);
            if responder.delegated {
                seq.next().write_tagged(Tag::context(0), |w| {
                    w.write_sequence_of(|certs| certs.next().write_der(responder.cert_der));
                });
            }
        });
    });

    // OCSPResponse ::= SEQUENCE {
    //     responseStatus      OCSPResponseStatus,
    //     responseBytes   [0] EXPLICIT ResponseBytes OPTIONAL }
    // ResponseBytes ::= SEQUENCE { responseType OBJECT IDENTIFIER, response OCTET STRING }
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|seq| {
            seq.next().write_enum(0); // successful
            seq.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|rb| {
                    rb.next()
                        .write_oid(&ObjectIdentifier::from_slice(OID_OCSP_BASIC));
                    rb.next().write_bytes(&basic);
                });
            });
        });
    }))
}

/// An unsuccessful OCSPResponse (no responseBytes) with the given status.
///
/// For example `error_response(OcspResponseStatus::MalformedRequest)` is `30 03 0a 01 01`.
pub fn error_response(status: OcspResponseStatus) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|seq| seq.next().write_enum(status as i64));
    })
}

fn prepare_response(response: &SingleResponse) -> Result<PreparedResponse<'_>, OcspError> {
    let status = match &response.status {
        CertStatus::Good => PreparedStatus::Good,
        CertStatus::Unknown => PreparedStatus::Unknown,
        CertStatus::Revoked { revoked_at, reason } => {
            if let Some(code) = *reason
                && (code > 10 || code == 7)
            {
                return Err(OcspError::InvalidRevocationReason(code));
            }
            PreparedStatus::Revoked {
                revoked_at: generalized_time(*revoked_at)?,
                reason: *reason,
            }
        }
    };
    if let Some(next_update) = response.next_update
        && next_update < response.this_update
    {
        return Err(OcspError::NextUpdateBeforeThisUpdate {
            this_update: response.this_update,
            next_update,
        });
    }
    Ok(PreparedResponse {
        cert_id: &response.cert_id,
        status,
        this_update: generalized_time(response.this_update)?,
        next_update: response.next_update.map(generalized_time).transpose()?,
    })
}

// SingleResponse ::= SEQUENCE {
//     certID                       CertID,
//     certStatus                   CertStatus,
//     thisUpdate                   GeneralizedTime,
//     nextUpdate         [0]       EXPLICIT GeneralizedTime OPTIONAL,
//     singleExtensions   [1]       EXPLICIT Extensions OPTIONAL }
// CertStatus ::= CHOICE {
//     good        [0]     IMPLICIT NULL,
//     revoked     [1]     IMPLICIT RevokedInfo,
//     unknown     [2]     IMPLICIT UnknownInfo }
// RevokedInfo ::= SEQUENCE {
//     revocationTime              GeneralizedTime,
//     revocationReason    [0]     EXPLICIT CRLReason OPTIONAL }
fn write_single_response(writer: DERWriter<'_>, response: &PreparedResponse<'_>) {
    writer.write_sequence(|seq| {
        write_cert_id(seq.next(), response.cert_id);
        match &response.status {
            PreparedStatus::Good => seq
                .next()
                .write_tagged_implicit(Tag::context(0), |w| w.write_null()),
            PreparedStatus::Revoked { revoked_at, reason } => {
                seq.next().write_tagged_implicit(Tag::context(1), |w| {
                    w.write_sequence(|info| {
                        info.next().write_generalized_time(revoked_at);
                        if let Some(reason) = reason {
                            info.next().write_tagged(Tag::context(0), |w| {
                                w.write_enum(i64::from(*reason))
                            });
                        }
                    });
                });
            }
            PreparedStatus::Unknown => seq
                .next()
                .write_tagged_implicit(Tag::context(2), |w| w.write_null()),
        }
        seq.next().write_generalized_time(&response.this_update);
        if let Some(next_update) = &response.next_update {
            seq.next()
                .write_tagged(Tag::context(0), |w| w.write_generalized_time(next_update));
        }
    });
}

fn write_cert_id(writer: DERWriter<'_>, cert_id: &CertId) {
    writer.write_sequence(|seq| {
        seq.next().write_sequence(|alg| {
            alg.next()
                .write_oid(&ObjectIdentifier::from_slice(cert_id.hash.oid()));
            alg.next().write_null();
        });
        seq.next().write_bytes(&cert_id.issuer_name_hash);
        seq.next().write_bytes(&cert_id.issuer_key_hash);
        seq.next().write_bigint_bytes(&cert_id.serial, true);
    });
}

/// UTC, whole seconds, year 0..=9999.
fn generalized_time(t: OffsetDateTime) -> Result<GeneralizedTime, OcspError> {
    let utc = t
        .checked_to_offset(UtcOffset::UTC)
        .and_then(|utc| utc.replace_nanosecond(0).ok())
        .ok_or(OcspError::TimeOutOfRange(t))?;
    GeneralizedTime::from_datetime_opt(utc).ok_or(OcspError::TimeOutOfRange(t))
}

fn signature_algorithm(
    alg: &'static rcgen::SignatureAlgorithm,
) -> Result<SignatureAlgorithmId, OcspError> {
    let table: [(&rcgen::SignatureAlgorithm, &'static [u64], bool); 12] = [
        (&rcgen::PKCS_ECDSA_P256_SHA256, OID_ECDSA_SHA256, false),
        (&rcgen::PKCS_ECDSA_P384_SHA384, OID_ECDSA_SHA384, false),
        (&rcgen::PKCS_ECDSA_P521_SHA256, OID_ECDSA_SHA256, false),
        (&rcgen::PKCS_ECDSA_P521_SHA384, OID_ECDSA_SHA384, false),
        (&rcgen::PKCS_ECDSA_P521_SHA512, OID_ECDSA_SHA512, false),
        (&rcgen::PKCS_ED25519, OID_ED25519, false),
        (&rcgen::PKCS_RSA_SHA256, OID_RSA_SHA256, true),
        (&rcgen::PKCS_RSA_SHA384, OID_RSA_SHA384, true),
        (&rcgen::PKCS_RSA_SHA512, OID_RSA_SHA512, true),
        (&rcgen::PKCS_ML_DSA_44, OID_ML_DSA_44, false),
        (&rcgen::PKCS_ML_DSA_65, OID_ML_DSA_65, false),
        (&rcgen::PKCS_ML_DSA_87, OID_ML_DSA_87, false),
    ];
    table
        .into_iter()
        .find(|(known, _, _)| *known == alg)
        .map(|(_, oid, null_params)| SignatureAlgorithmId { oid, null_params })
        .ok_or_else(|| OcspError::UnsupportedSignatureAlgorithm(format!("{alg:?}")))
}

// ---------------------------------------------------------------------------------------------
// Certificate helpers
// ---------------------------------------------------------------------------------------------

fn parse_certificate(
    der: &[u8],
) -> Result<x509_parser::certificate::X509Certificate<'_>, OcspError> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| OcspError::InvalidCertificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(OcspError::InvalidCertificate(
            "trailing data after the certificate".into(),
        ));
    }
    Ok(cert)
}

/// (H(subject DER), H(subjectPublicKey BIT STRING value)) of a certificate.
fn issuer_hashes(hash: OcspHash, issuer_cert_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), OcspError> {
    let cert = parse_certificate(issuer_cert_der)?;
    Ok((
        hash.digest(cert.tbs_certificate.subject.as_raw()),
        hash.digest(&cert.public_key().subject_public_key.data),
    ))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {

    /// Found by the `ocsp_request` fuzz target: a requestorName whose length is near
    /// usize::MAX made yasna's element skipping overflow (a panic with overflow checks, a
    /// wrapped position without).
    #[test]
    fn a_length_beyond_the_input_is_malformed_not_a_panic() {
        let req = include_bytes!("testdata/ocsp-huge-length.der");
        assert!(matches!(
            super::parse_request(req),
            Err(super::OcspError::MalformedDer(_))
        ));
    }
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SerialNumber,
    };
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use time::Duration;
    use time::macros::datetime;

    const OPENSSL: &str = "/usr/bin/openssl";

    // --- scratch directory -------------------------------------------------------------------

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(label: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "certkeeper-ocsp-test-{label}-{}-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst),
                OffsetDateTime::now_utc().unix_timestamp_nanos()
            ));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        fn write(&self, name: &str, contents: impl AsRef<[u8]>) {
            std::fs::write(self.0.join(name), contents).unwrap();
        }

        fn read(&self, name: &str) -> Vec<u8> {
            std::fs::read(self.0.join(name)).unwrap()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    struct Run {
        success: bool,
        stdout: String,
        stderr: String,
    }

    impl fmt::Debug for Run {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "success={}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.success, self.stdout, self.stderr
            )
        }
    }

    /// Runs `/usr/bin/openssl <command_line>` inside `dir` (arguments split on whitespace).
    fn openssl(dir: &TempDir, command_line: &str) -> Run {
        let out = Command::new(OPENSSL)
            .args(command_line.split_whitespace())
            .current_dir(&dir.0)
            .output()
            .expect("cannot run /usr/bin/openssl");
        Run {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn assert_verified(run: &Run, expected_status_line: &str) {
        assert!(run.success, "openssl failed: {run:?}");
        assert!(
            run.stderr.contains("Response verify OK"),
            "no 'Response verify OK': {run:?}"
        );
        assert!(
            run.stdout.contains(expected_status_line),
            "missing {expected_status_line:?}: {run:?}"
        );
        assert!(
            !run.stderr.contains("WARNING"),
            "unexpected warning: {run:?}"
        );
    }

    // --- PKI fixtures --------------------------------------------------------------------------

    struct Ca {
        key: KeyPair,
        params: CertificateParams,
        der: Vec<u8>,
        pem: String,
    }

    fn make_ca(common_name: &str, key: KeyPair) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Ca {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key,
            params,
        }
    }

    struct Issued {
        key: KeyPair,
        der: Vec<u8>,
        pem: String,
    }

    fn issue(
        ca: &Ca,
        common_name: &str,
        serial: &[u8],
        eku: Vec<ExtendedKeyUsagePurpose>,
    ) -> Issued {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(vec![format!("{common_name}.example")]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.serial_number = Some(SerialNumber::from_slice(serial));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = eku;
        let issuer = Issuer::from_params(&ca.params, &ca.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        Issued {
            key,
            der: cert.der().to_vec(),
            pem: cert.pem(),
        }
    }

    fn issue_leaf(ca: &Ca, common_name: &str, serial: &[u8]) -> Issued {
        issue(
            ca,
            common_name,
            serial,
            vec![ExtendedKeyUsagePurpose::ServerAuth],
        )
    }

    fn serial_of(cert_der: &[u8]) -> Vec<u8> {
        let (_, cert) = x509_parser::parse_x509_certificate(cert_der).unwrap();
        strip_leading_zeros(cert.raw_serial()).to_vec()
    }

    fn as_ca(responder: &Ca) -> Responder<'_> {
        Responder {
            cert_der: &responder.der,
            key: &responder.key,
            delegated: false,
        }
    }

    fn single(cert_id: &CertId, status: CertStatus) -> SingleResponse {
        let now = OffsetDateTime::now_utc();
        SingleResponse {
            cert_id: cert_id.clone(),
            status,
            this_update: now - Duration::minutes(1),
            next_update: Some(now + Duration::days(1)),
        }
    }

    fn revoked_key_compromise() -> CertStatus {
        CertStatus::Revoked {
            revoked_at: OffsetDateTime::now_utc() - Duration::hours(2),
            reason: Some(1),
        }
    }

    // --- response decoding for assertions (test-only) ----------------------------------------

    #[derive(Debug)]
    struct Decoded {
        tbs: Vec<u8>,
        sig_alg: Vec<u64>,
        sig_alg_params: Option<Vec<u8>>,
        signature: Vec<u8>,
        certs: Vec<Vec<u8>>,
        responder_key_hash: Vec<u8>,
        produced_at: Vec<u8>,
        responses: Vec<Vec<u8>>,
        extensions: Vec<(Vec<u64>, bool, Vec<u8>)>,
    }

    impl Decoded {
        fn nonce(&self) -> Option<&[u8]> {
            self.extensions
                .iter()
                .find(|(oid, _, _)| oid == OID_OCSP_NONCE)
                .map(|(_, _, v)| v.as_slice())
        }
    }

    fn decode_response(der: &[u8]) -> Decoded {
        let basic = yasna::parse_der(der, |r| {
            r.read_sequence(|seq| {
                assert_eq!(seq.next().read_enum()?, 0);
                seq.next().read_tagged(Tag::context(0), |r| {
                    r.read_sequence(|rb| {
                        let oid = rb.next().read_oid()?;
                        assert_eq!(oid.components().as_slice(), OID_OCSP_BASIC);
                        rb.next().read_bytes()
                    })
                })
            })
        })
        .unwrap();
        let (tbs, sig_alg, sig_alg_params, signature, certs) = yasna::parse_der(&basic, |r| {
            r.read_sequence(|seq| {
                let tbs = seq.next().read_der()?;
                let (oid, params) = seq.next().read_sequence(|alg| {
                    let oid = alg.next().read_oid()?;
                    Ok((oid, alg.read_optional(|r| r.read_der())?))
                })?;
                let (signature, bits) = seq.next().read_bitvec_bytes()?;
                assert_eq!(bits, signature.len() * 8);
                let certs = seq
                    .read_optional(|r| {
                        r.read_tagged(Tag::context(0), |r| r.collect_sequence_of(|r| r.read_der()))
                    })?
                    .unwrap_or_default();
                Ok((tbs, oid.components().clone(), params, signature, certs))
            })
        })
        .unwrap();
        let (responder_key_hash, produced_at, responses, extensions) =
            yasna::parse_der(&tbs, |r| {
                r.read_sequence(|seq| {
                    let key_hash = seq
                        .next()
                        .read_tagged(Tag::context(2), |r| r.read_bytes())?;
                    let produced_at = seq.next().read_der()?;
                    let responses = seq.next().collect_sequence_of(|r| r.read_der())?;
                    let extensions = seq
                        .read_optional(|r| {
                            r.read_tagged(Tag::context(1), |r| {
                                r.collect_sequence_of(|r| {
                                    r.read_sequence(|ext| {
                                        let oid = ext.next().read_oid()?;
                                        let critical =
                                            ext.read_optional(|r| r.read_bool())?.unwrap_or(false);
                                        let value = ext.next().read_bytes()?;
                                        Ok((oid.components().clone(), critical, value))
                                    })
                                })
                            })
                        })?
                        .unwrap_or_default();
                    Ok((key_hash, produced_at, responses, extensions))
                })
            })
            .unwrap();
        Decoded {
            tbs,
            sig_alg,
            sig_alg_params,
            signature,
            certs,
            responder_key_hash,
            produced_at,
            responses,
            extensions,
        }
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    // --- end-to-end with the openssl binary -----------------------------------------------------

    /// Requests from `openssl ocsp`, responses checked by `openssl ocsp -respin`.
    fn openssl_roundtrip(label: &str, ca_key: KeyPair, expected_sig_alg: &[u64]) {
        let dir = TempDir::new(label);
        let ca = make_ca(&format!("Test {label} CA"), ca_key);
        let other_ca = make_ca(
            "Other CA",
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        );
        let leaf = issue_leaf(
            &ca,
            "leaf",
            &[0xc5, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07],
        );
        dir.write("ca.pem", &ca.pem);
        dir.write("other.pem", &other_ca.pem);
        dir.write("leaf.pem", &leaf.pem);

        // Request without nonce.
        let run = openssl(
            &dir,
            "ocsp -issuer ca.pem -cert leaf.pem -reqout req.der -no_nonce",
        );
        assert!(run.success, "{run:?}");
        let request = parse_request(&dir.read("req.der")).unwrap();
        assert_eq!(request.nonce, None);
        assert_eq!(request.cert_ids.len(), 1);
        let cert_id = &request.cert_ids[0];
        assert_eq!(cert_id.hash, OcspHash::Sha1);
        assert!(cert_id.matches_issuer(&ca.der));
        assert!(!cert_id.matches_issuer(&other_ca.der));
        assert!(!cert_id.matches_issuer(&leaf.der));
        assert!(!cert_id.matches_issuer(b"not a certificate"));
        assert_eq!(cert_id.serial, serial_of(&leaf.der));
        assert_eq!(
            cert_id.serial,
            [0xc5, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07]
        );
        assert_eq!(
            *cert_id,
            CertId::new(OcspHash::Sha1, &ca.der, &serial_of(&leaf.der)).unwrap()
        );

        // Request with nonce (openssl's default): 16 random octets wrapped in an OCTET STRING.
        let run = openssl(
            &dir,
            "ocsp -issuer ca.pem -cert leaf.pem -reqout req_nonce.der",
        );
        assert!(run.success, "{run:?}");
        let nonce_request = parse_request(&dir.read("req_nonce.der")).unwrap();
        assert_eq!(nonce_request.cert_ids, request.cert_ids);
        let nonce = nonce_request.nonce.clone().expect("nonce");
        assert_eq!(nonce.len(), 18);
        assert_eq!(&nonce[..2], &[0x04, 0x10]);

        // good / revoked (keyCompromise) / unknown, signed by the CA itself.
        let cases = [
            (CertStatus::Good, "leaf.pem: good"),
            (revoked_key_compromise(), "leaf.pem: revoked"),
            (CertStatus::Unknown, "leaf.pem: unknown"),
        ];
        for (status, expected) in cases {
            let is_revoked = matches!(status, CertStatus::Revoked { .. });
            let response = build_response(
                &as_ca(&ca),
                &[single(cert_id, status)],
                None,
                OffsetDateTime::now_utc(),
            )
            .unwrap();
            let decoded = decode_response(&response);
            assert_eq!(decoded.sig_alg, expected_sig_alg);
            assert!(
                decoded.certs.is_empty(),
                "CA-signed responses carry no certs"
            );
            assert_eq!(decoded.nonce(), None);
            dir.write("resp.der", &response);
            let run = openssl(
                &dir,
                "ocsp -respin resp.der -issuer ca.pem -CAfile ca.pem -cert leaf.pem -no_nonce -resp_text",
            );
            assert_verified(&run, expected);
            if is_revoked {
                assert!(run.stdout.contains("Reason: keyCompromise"), "{run:?}");
            }
            // The CA certificate given as the trusted responder certificate works too.
            let run = openssl(
                &dir,
                "ocsp -respin resp.der -VAfile ca.pem -issuer ca.pem -cert leaf.pem -no_nonce",
            );
            assert_verified(&run, expected);
        }

        // Nonce echo: openssl compares the request's nonce with the response's.
        let response = build_response(
            &as_ca(&ca),
            &[single(&nonce_request.cert_ids[0], CertStatus::Good)],
            nonce_request.nonce.as_deref(),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert_eq!(decode_response(&response).nonce(), Some(nonce.as_slice()));
        dir.write("resp_nonce.der", &response);
        let run = openssl(
            &dir,
            "ocsp -reqin req_nonce.der -respin resp_nonce.der -issuer ca.pem -CAfile ca.pem -resp_text",
        );
        assert!(run.success, "{run:?}");
        assert!(run.stderr.contains("Response verify OK"), "{run:?}");
        assert!(!run.stderr.contains("Nonce Verify error"), "{run:?}");
        assert!(!run.stderr.contains("WARNING"), "{run:?}");
    }

    #[test]
    fn openssl_roundtrip_p256_ca() {
        openssl_roundtrip(
            "p256",
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
            OID_ECDSA_SHA256,
        );
    }

    #[test]
    fn openssl_roundtrip_p384_ca() {
        openssl_roundtrip(
            "p384",
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
            OID_ECDSA_SHA384,
        );
    }

    #[test]
    fn openssl_roundtrip_ed25519_ca() {
        openssl_roundtrip(
            "ed25519",
            KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
            OID_ED25519,
        );
    }

    #[test]
    fn openssl_roundtrip_rsa2048_ca() {
        openssl_roundtrip(
            "rsa2048",
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap(),
            OID_RSA_SHA256,
        );
    }

    #[test]
    fn rsa_signature_algorithm_has_null_parameters() {
        let ca = make_ca(
            "RSA CA",
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap(),
        );
        let cert_id = CertId::new(OcspHash::Sha1, &ca.der, &[1]).unwrap();
        let response = build_response(
            &as_ca(&ca),
            &[single(&cert_id, CertStatus::Good)],
            None,
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        let decoded = decode_response(&response);
        assert_eq!(decoded.sig_alg, OID_RSA_SHA256);
        assert_eq!(decoded.sig_alg_params.as_deref(), Some(DER_NULL));

        let ec = make_ca(
            "EC CA",
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        );
        let response = build_response(
            &as_ca(&ec),
            &[single(&cert_id, CertStatus::Good)],
            None,
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert_eq!(decode_response(&response).sig_alg_params, None);
    }

    #[test]
    fn openssl_delegated_responder() {
        let dir = TempDir::new("delegated");
        let ca = make_ca(
            "Delegating CA",
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
        );
        let leaf = issue_leaf(&ca, "leaf", &[0x01, 0x23, 0x45]);
        let responder = issue(
            &ca,
            "ocsp-responder",
            &[0x77],
            vec![ExtendedKeyUsagePurpose::OcspSigning],
        );
        dir.write("ca.pem", &ca.pem);
        dir.write("leaf.pem", &leaf.pem);
        dir.write("responder.pem", &responder.pem);

        let run = openssl(&dir, "ocsp -issuer ca.pem -cert leaf.pem -reqout req.der");
        assert!(run.success, "{run:?}");
        let request = parse_request(&dir.read("req.der")).unwrap();
        assert!(request.cert_ids[0].matches_issuer(&ca.der));
        assert!(!request.cert_ids[0].matches_issuer(&responder.der));

        let delegated = Responder {
            cert_der: &responder.der,
            key: &responder.key,
            delegated: true,
        };
        for (status, expected) in [
            (CertStatus::Good, "leaf.pem: good"),
            (revoked_key_compromise(), "leaf.pem: revoked"),
            (CertStatus::Unknown, "leaf.pem: unknown"),
        ] {
            let response = build_response(
                &delegated,
                &[single(&request.cert_ids[0], status)],
                request.nonce.as_deref(),
                OffsetDateTime::now_utc(),
            )
            .unwrap();
            let decoded = decode_response(&response);
            assert_eq!(decoded.certs, vec![responder.der.clone()]);
            assert_eq!(decoded.sig_alg, OID_ECDSA_SHA256);
            let (_, responder_cert) = x509_parser::parse_x509_certificate(&responder.der).unwrap();
            assert_eq!(
                decoded.responder_key_hash,
                OcspHash::Sha1.digest(&responder_cert.public_key().subject_public_key.data)
            );
            dir.write("resp.der", &response);

            // Chain to the CA: openssl checks the responder is issued by the CertID's issuer
            // and carries id-kp-OCSPSigning.
            let run = openssl(
                &dir,
                "ocsp -respin resp.der -issuer ca.pem -CAfile ca.pem -cert leaf.pem -no_nonce -resp_text",
            );
            assert_verified(&run, expected);

            // Explicitly trusted responder certificate.
            let run = openssl(
                &dir,
                "ocsp -respin resp.der -VAfile responder.pem -issuer ca.pem -cert leaf.pem -no_nonce",
            );
            assert_verified(&run, expected);

            // Nonce binding against the original request.
            let run = openssl(
                &dir,
                "ocsp -reqin req.der -respin resp.der -issuer ca.pem -CAfile ca.pem",
            );
            assert!(
                run.success && run.stderr.contains("Response verify OK"),
                "{run:?}"
            );
            assert!(!run.stderr.contains("Nonce Verify error"), "{run:?}");
        }

        // A certificate without id-kp-OCSPSigning cannot be a delegated responder.
        let not_ocsp = Responder {
            cert_der: &leaf.der,
            key: &leaf.key,
            delegated: true,
        };
        let err = build_response(
            &not_ocsp,
            &[single(&request.cert_ids[0], CertStatus::Good)],
            None,
            OffsetDateTime::now_utc(),
        )
        .unwrap_err();
        assert!(matches!(err, OcspError::ResponderNotAuthorized), "{err}");
        assert_eq!(err.response_status(), OcspResponseStatus::InternalError);
    }

    #[test]
    fn openssl_rejects_wrong_signer_and_wrong_nonce() {
        let dir = TempDir::new("negative");
        let ca = make_ca(
            "Real CA",
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        );
        let impostor = make_ca(
            "Real CA",
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        );
        let leaf = issue_leaf(&ca, "leaf", &[0x42]);
        dir.write("ca.pem", &ca.pem);
        dir.write("leaf.pem", &leaf.pem);
        let run = openssl(&dir, "ocsp -issuer ca.pem -cert leaf.pem -reqout req.der");
        assert!(run.success, "{run:?}");
        let request = parse_request(&dir.read("req.der")).unwrap();
        assert!(!request.cert_ids[0].matches_issuer(&impostor.der));

        // Signed by a different key with the same name: verification must fail.
        let response = build_response(
            &as_ca(&impostor),
            &[single(&request.cert_ids[0], CertStatus::Good)],
            None,
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        dir.write("resp_bad_signer.der", &response);
        let run = openssl(
            &dir,
            "ocsp -respin resp_bad_signer.der -issuer ca.pem -CAfile ca.pem -cert leaf.pem -no_nonce",
        );
        assert!(!run.success, "{run:?}");
        assert!(run.stderr.contains("Response Verify Failure"), "{run:?}");

        // Correct signer but a different nonce: openssl must notice.
        let response = build_response(
            &as_ca(&ca),
            &[single(&request.cert_ids[0], CertStatus::Good)],
            Some(&[0x04, 0x04, 1, 2, 3, 4]),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        dir.write("resp_bad_nonce.der", &response);
        let run = openssl(
            &dir,
            "ocsp -reqin req.der -respin resp_bad_nonce.der -issuer ca.pem -CAfile ca.pem",
        );
        assert!(run.stderr.contains("Nonce Verify error"), "{run:?}");
    }

    #[test]
    fn openssl_sha2_certids_multiple_certs_and_signed_request() {
        let dir = TempDir::new("variants");
        let ca = make_ca(
            "Variant CA",
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        );
        let leaf = issue_leaf(&ca, "leaf", &[0x00, 0xff, 0x10]);
        let leaf2 = issue_leaf(&ca, "leaf2", &[0x7f, 0xee]);
        dir.write("ca.pem", &ca.pem);
        dir.write("leaf.pem", &leaf.pem);
        dir.write("leaf2.pem", &leaf2.pem);
        dir.write("leaf.key", leaf.key.serialize_pem());

        for (flag, hash) in [
            ("-sha256", OcspHash::Sha256),
            ("-sha384", OcspHash::Sha384),
            ("-sha512", OcspHash::Sha512),
        ] {
            let run = openssl(
                &dir,
                &format!("ocsp {flag} -issuer ca.pem -cert leaf.pem -reqout req.der"),
            );
            assert!(run.success, "{run:?}");
            let request = parse_request(&dir.read("req.der")).unwrap();
            let cert_id = &request.cert_ids[0];
            assert_eq!(cert_id.hash, hash);
            assert_eq!(cert_id.issuer_name_hash.len(), hash.output_len());
            assert!(cert_id.matches_issuer(&ca.der));
            assert_eq!(cert_id.serial, [0xff, 0x10]);
            assert_eq!(*cert_id, CertId::new(hash, &ca.der, &[0xff, 0x10]).unwrap());
            let response = build_response(
                &as_ca(&ca),
                &[single(cert_id, revoked_key_compromise())],
                request.nonce.as_deref(),
                OffsetDateTime::now_utc(),
            )
            .unwrap();
            dir.write("resp.der", &response);
            let run = openssl(
                &dir,
                &format!(
                    "ocsp {flag} -respin resp.der -issuer ca.pem -CAfile ca.pem -cert leaf.pem -no_nonce"
                ),
            );
            assert_verified(&run, "leaf.pem: revoked");
        }

        // Two certificates in one request, answered in one response.
        let run = openssl(
            &dir,
            "ocsp -issuer ca.pem -cert leaf.pem -cert leaf2.pem -reqout req2.der",
        );
        assert!(run.success, "{run:?}");
        let request = parse_request(&dir.read("req2.der")).unwrap();
        assert_eq!(request.cert_ids.len(), 2);
        assert_eq!(request.cert_ids[1].serial, serial_of(&leaf2.der));
        let response = build_response(
            &as_ca(&ca),
            &[
                single(&request.cert_ids[0], CertStatus::Good),
                single(&request.cert_ids[1], revoked_key_compromise()),
            ],
            request.nonce.as_deref(),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert_eq!(decode_response(&response).responses.len(), 2);
        dir.write("resp2.der", &response);
        let run = openssl(
            &dir,
            "ocsp -respin resp2.der -issuer ca.pem -CAfile ca.pem -cert leaf.pem -cert leaf2.pem -no_nonce",
        );
        assert_verified(&run, "leaf.pem: good");
        assert!(run.stdout.contains("leaf2.pem: revoked"), "{run:?}");

        // A signed request (requestorName + optionalSignature with certs) is accepted.
        let run = openssl(
            &dir,
            "ocsp -issuer ca.pem -cert leaf.pem -signer leaf.pem -signkey leaf.key -reqout req_signed.der",
        );
        assert!(run.success, "{run:?}");
        let signed = dir.read("req_signed.der");
        let request = parse_request(&signed).unwrap();
        assert_eq!(request.cert_ids.len(), 1);
        assert!(request.cert_ids[0].matches_issuer(&ca.der));
        assert!(request.nonce.is_some());
        assert!(
            contains(&signed, &leaf.der),
            "signed request should carry the signer cert"
        );
    }

    // --- request parsing edge cases ----------------------------------------------------------

    fn oid(components: &[u64]) -> ObjectIdentifier {
        ObjectIdentifier::from_slice(components)
    }

    fn cert_id_der(
        hash_oid: &[u64],
        params: Option<&[u8]>,
        name_hash: &[u8],
        key_hash: &[u8],
        serial: &[u8],
        positive: bool,
    ) -> Vec<u8> {
        yasna::construct_der(|w| {
            w.write_sequence(|seq| {
                seq.next().write_sequence(|alg| {
                    alg.next().write_oid(&oid(hash_oid));
                    if let Some(params) = params {
                        alg.next().write_der(params);
                    }
                });
                seq.next().write_bytes(name_hash);
                seq.next().write_bytes(key_hash);
                seq.next().write_bigint_bytes(serial, positive);
            });
        })
    }

    fn sha1_cert_id(serial: &[u8]) -> Vec<u8> {
        cert_id_der(
            OID_SHA1,
            Some(DER_NULL),
            &[0x11; 20],
            &[0x22; 20],
            serial,
            true,
        )
    }

    type Ext<'a> = (&'a [u64], bool, &'a [u8]);

    fn write_extensions(w: DERWriter<'_>, exts: &[Ext<'_>]) {
        w.write_sequence_of(|list| {
            for (ext_oid, critical, value) in exts {
                list.next().write_sequence(|ext| {
                    ext.next().write_oid(&oid(ext_oid));
                    if *critical {
                        ext.next().write_bool(true);
                    }
                    ext.next().write_bytes(value);
                });
            }
        });
    }

    /// One `Request` (CertID + optional singleRequestExtensions).
    fn single_request(cert_id: &[u8], exts: Option<&[Ext<'_>]>) -> Vec<u8> {
        yasna::construct_der(|w| {
            w.write_sequence(|seq| {
                seq.next().write_der(cert_id);
                if let Some(exts) = exts {
                    seq.next()
                        .write_tagged(Tag::context(0), |w| write_extensions(w, exts));
                }
            });
        })
    }

    struct RequestSpec<'a> {
        version: Option<i64>,
        requestor_name: bool,
        requests: Vec<Vec<u8>>,
        extensions: Option<&'a [Ext<'a>]>,
        signature: bool,
    }

    impl Default for RequestSpec<'_> {
        fn default() -> Self {
            Self {
                version: None,
                requestor_name: false,
                requests: vec![single_request(&sha1_cert_id(&[0x01]), None)],
                extensions: None,
                signature: false,
            }
        }
    }

    fn encode_request(spec: &RequestSpec<'_>) -> Vec<u8> {
        yasna::construct_der(|w| {
            w.write_sequence(|outer| {
                outer.next().write_sequence(|tbs| {
                    if let Some(v) = spec.version {
                        tbs.next().write_tagged(Tag::context(0), |w| w.write_i64(v));
                    }
                    if spec.requestor_name {
                        // GeneralName dNSName [2] IMPLICIT IA5String
                        tbs.next().write_tagged(Tag::context(1), |w| {
                            w.write_tagged_implicit(Tag::context(2), |w| {
                                w.write_ia5_string("client.example")
                            })
                        });
                    }
                    tbs.next().write_sequence_of(|list| {
                        for request in &spec.requests {
                            list.next().write_der(request);
                        }
                    });
                    if let Some(exts) = spec.extensions {
                        tbs.next()
                            .write_tagged(Tag::context(2), |w| write_extensions(w, exts));
                    }
                });
                if spec.signature {
                    outer.next().write_tagged(Tag::context(0), |w| {
                        w.write_sequence(|sig| {
                            sig.next().write_sequence(|alg| {
                                alg.next().write_oid(&oid(OID_ECDSA_SHA256));
                            });
                            sig.next().write_bitvec_bytes(&[0xab; 8], 64);
                            sig.next().write_tagged(Tag::context(0), |w| {
                                w.write_sequence_of(|certs| {
                                    certs.next().write_sequence(|c| c.next().write_null());
                                });
                            });
                        });
                    });
                }
            });
        })
    }

    const NONCE_VALUE: &[u8] = &[
        0x04, 0x10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    ];

    #[test]
    fn parses_all_optional_request_fields() {
        let unknown_oid: &[u64] = &[1, 2, 3, 4, 5];
        let single_exts: &[Ext<'_>] = &[
            (unknown_oid, false, &[0x05, 0x00]),
            (OID_OCSP_SERVICE_LOCATOR, true, &[0x30, 0x00]),
        ];
        let request_exts: &[Ext<'_>] = &[
            (unknown_oid, false, &[0x01, 0x01, 0xff]),
            (OID_OCSP_NONCE, false, NONCE_VALUE),
            (OID_OCSP_RESPONSE, true, &[0x30, 0x00]),
        ];
        let der = encode_request(&RequestSpec {
            version: Some(0),
            requestor_name: true,
            requests: vec![
                single_request(&sha1_cert_id(&[0x00, 0x80, 0x01]), Some(single_exts)),
                single_request(
                    &cert_id_der(OID_SHA256, None, &[0x33; 32], &[0x44; 32], &[0x02], true),
                    None,
                ),
                single_request(
                    &cert_id_der(OID_SHA512, Some(DER_NULL), &[5; 64], &[6; 64], &[0], true),
                    None,
                ),
            ],
            extensions: Some(request_exts),
            signature: true,
        });
        let request = parse_request(&der).unwrap();
        assert_eq!(request.nonce.as_deref(), Some(NONCE_VALUE));
        assert_eq!(
            request.cert_ids,
            vec![
                CertId {
                    hash: OcspHash::Sha1,
                    issuer_name_hash: vec![0x11; 20],
                    issuer_key_hash: vec![0x22; 20],
                    serial: vec![0x80, 0x01],
                },
                CertId {
                    hash: OcspHash::Sha256,
                    issuer_name_hash: vec![0x33; 32],
                    issuer_key_hash: vec![0x44; 32],
                    serial: vec![0x02],
                },
                CertId {
                    hash: OcspHash::Sha512,
                    issuer_name_hash: vec![5; 64],
                    issuer_key_hash: vec![6; 64],
                    serial: vec![],
                },
            ]
        );

        // Raw (pre-RFC 8954 style) nonce octets are accepted and kept verbatim too.
        let raw_nonce: &[Ext<'_>] = &[(OID_OCSP_NONCE, false, &[9; 20])];
        let der = encode_request(&RequestSpec {
            extensions: Some(raw_nonce),
            ..Default::default()
        });
        assert_eq!(parse_request(&der).unwrap().nonce, Some(vec![9; 20]));
    }

    fn expect_err(der: &[u8]) -> OcspError {
        let err = parse_request(der).expect_err("request should be rejected");
        assert!(err.is_malformed_request(), "{err:?}");
        assert_eq!(err.response_status(), OcspResponseStatus::MalformedRequest);
        assert!(!err.to_string().is_empty());
        err
    }

    #[test]
    fn rejects_semantically_invalid_requests() {
        let err = expect_err(&encode_request(&RequestSpec {
            version: Some(1),
            ..Default::default()
        }));
        assert!(matches!(err, OcspError::UnsupportedVersion(1)), "{err}");

        let err = expect_err(&encode_request(&RequestSpec {
            requests: vec![],
            ..Default::default()
        }));
        assert!(matches!(err, OcspError::EmptyRequestList), "{err}");

        let many = |n: usize| RequestSpec {
            requests: (0..n)
                .map(|i| single_request(&sha1_cert_id(&(i as u32 + 1).to_be_bytes()), None))
                .collect(),
            ..Default::default()
        };
        assert_eq!(
            parse_request(&encode_request(&many(64)))
                .unwrap()
                .cert_ids
                .len(),
            64
        );
        let err = expect_err(&encode_request(&many(65)));
        assert!(
            matches!(err, OcspError::TooManyCertIds { max: 64 }),
            "{err}"
        );

        let md5: &[u64] = &[1, 2, 840, 113549, 2, 5];
        let err = expect_err(&encode_request(&RequestSpec {
            requests: vec![single_request(
                &cert_id_der(md5, Some(DER_NULL), &[0; 16], &[0; 16], &[1], true),
                None,
            )],
            ..Default::default()
        }));
        assert!(
            matches!(err, OcspError::UnsupportedHashAlgorithm(ref o) if o == "1.2.840.113549.2.5"),
            "{err}"
        );

        let err = expect_err(&encode_request(&RequestSpec {
            requests: vec![single_request(
                &cert_id_der(
                    OID_SHA1,
                    Some(&[0x02, 0x01, 0x00]),
                    &[0; 20],
                    &[0; 20],
                    &[1],
                    true,
                ),
                None,
            )],
            ..Default::default()
        }));
        assert!(matches!(err, OcspError::InvalidHashParameters), "{err}");

        let err = expect_err(&encode_request(&RequestSpec {
            requests: vec![single_request(
                &cert_id_der(OID_SHA256, None, &[0; 20], &[0; 32], &[1], true),
                None,
            )],
            ..Default::default()
        }));
        assert!(
            matches!(
                err,
                OcspError::HashLengthMismatch {
                    field: "issuerNameHash",
                    expected: 32,
                    actual: 20,
                    ..
                }
            ),
            "{err}"
        );

        let err = expect_err(&encode_request(&RequestSpec {
            requests: vec![single_request(
                &cert_id_der(OID_SHA1, Some(DER_NULL), &[0; 20], &[0; 20], &[0x85], false),
                None,
            )],
            ..Default::default()
        }));
        assert!(matches!(err, OcspError::NegativeSerial), "{err}");

        let unknown_oid: &[u64] = &[1, 2, 3, 4, 5];
        let critical_unknown: &[Ext<'_>] = &[(unknown_oid, true, &[0x05, 0x00])];
        let err = expect_err(&encode_request(&RequestSpec {
            extensions: Some(critical_unknown),
            ..Default::default()
        }));
        assert!(
            matches!(err, OcspError::UnsupportedCriticalExtension(ref o) if o == "1.2.3.4.5"),
            "{err}"
        );
        let err = expect_err(&encode_request(&RequestSpec {
            requests: vec![single_request(&sha1_cert_id(&[1]), Some(critical_unknown))],
            ..Default::default()
        }));
        assert!(
            matches!(err, OcspError::UnsupportedCriticalExtension(_)),
            "{err}"
        );

        let duplicate: &[Ext<'_>] = &[
            (OID_OCSP_NONCE, false, NONCE_VALUE),
            (OID_OCSP_NONCE, false, NONCE_VALUE),
        ];
        let err = expect_err(&encode_request(&RequestSpec {
            extensions: Some(duplicate),
            ..Default::default()
        }));
        assert!(matches!(err, OcspError::DuplicateExtension(_)), "{err}");

        let too_many: Vec<Vec<u64>> = (0..=MAX_EXTENSIONS as u64)
            .map(|i| vec![1, 2, 3, i])
            .collect();
        let too_many: Vec<Ext<'_>> = too_many
            .iter()
            .map(|o| (o.as_slice(), false, &[5u8, 0][..]))
            .collect();
        let err = expect_err(&encode_request(&RequestSpec {
            extensions: Some(&too_many),
            ..Default::default()
        }));
        assert!(matches!(err, OcspError::TooManyExtensions { .. }), "{err}");

        for bad_nonce in [vec![0x04, 0x00], vec![], {
            let mut v = vec![0x04, 0x81, 129];
            v.extend([7u8; 129]);
            v
        }] {
            let exts: &[Ext<'_>] = &[(OID_OCSP_NONCE, false, &bad_nonce)];
            let err = expect_err(&encode_request(&RequestSpec {
                extensions: Some(exts),
                ..Default::default()
            }));
            assert!(matches!(err, OcspError::InvalidNonceLength(_)), "{err}");
        }
        let mut max_nonce = vec![0x04, 0x81, 128];
        max_nonce.extend([7u8; 128]);
        let exts: &[Ext<'_>] = &[(OID_OCSP_NONCE, false, &max_nonce)];
        let request = parse_request(&encode_request(&RequestSpec {
            extensions: Some(exts),
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(request.nonce, Some(max_nonce));
    }

    #[test]
    fn rejects_malformed_der() {
        let good = encode_request(&RequestSpec {
            version: Some(0),
            requestor_name: true,
            extensions: Some(&[(OID_OCSP_NONCE, false, NONCE_VALUE)]),
            signature: true,
            ..Default::default()
        });
        assert!(parse_request(&good).is_ok());

        // Every truncation fails.
        for len in 0..good.len() {
            let err = expect_err(&good[..len]);
            assert!(
                matches!(err, OcspError::MalformedDer(_)),
                "len {len}: {err}"
            );
        }
        // Trailing data fails.
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(expect_err(&trailing), OcspError::MalformedDer(_)));
        let mut doubled = good.clone();
        doubled.extend_from_slice(&good);
        assert!(matches!(expect_err(&doubled), OcspError::MalformedDer(_)));
        // Garbage fails.
        for garbage in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            &[0xff; 64][..],
            &[0x30, 0x80, 0x00, 0x00][..], // indefinite length is not DER
            &[0x30, 0x00][..],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..],
            &error_response(OcspResponseStatus::MalformedRequest)[..],
        ] {
            expect_err(garbage);
        }
        // Every single-byte corruption either fails or still yields a well-formed result.
        for i in 0..good.len() {
            let mut corrupted = good.clone();
            corrupted[i] ^= 0xff;
            if let Ok(request) = parse_request(&corrupted) {
                assert!(!request.cert_ids.is_empty());
            }
        }
    }

    // --- response building details -------------------------------------------------------------

    #[test]
    fn error_responses_are_minimal_der() {
        assert_eq!(
            error_response(OcspResponseStatus::MalformedRequest),
            [0x30, 0x03, 0x0a, 0x01, 0x01]
        );
        assert_eq!(
            error_response(OcspResponseStatus::InternalError),
            [0x30, 0x03, 0x0a, 0x01, 0x02]
        );
        assert_eq!(
            error_response(OcspResponseStatus::TryLater),
            [0x30, 0x03, 0x0a, 0x01, 0x03]
        );
        assert_eq!(
            error_response(OcspResponseStatus::SigRequired),
            [0x30, 0x03, 0x0a, 0x01, 0x05]
        );
        assert_eq!(
            error_response(OcspResponseStatus::Unauthorized),
            [0x30, 0x03, 0x0a, 0x01, 0x06]
        );
    }

    #[test]
    fn openssl_parses_error_response() {
        let dir = TempDir::new("errresp");
        dir.write("err.der", error_response(OcspResponseStatus::TryLater));
        let run = openssl(&dir, "ocsp -respin err.der -resp_text -noverify");
        assert!(
            run.stdout.contains("Responder Error: trylater (3)"),
            "{run:?}"
        );
    }

    fn p256_ca() -> Ca {
        make_ca(
            "Unit CA",
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        )
    }

    #[test]
    fn encodes_times_serials_and_statuses_exactly() {
        let ca = p256_ca();
        let produced_at = datetime!(2024-02-29 23:59:59.999_999 -01:00);
        let this_update = datetime!(2024-02-29 12:00:00.5 UTC);
        let next_update = datetime!(2024-03-07 12:00:00 UTC);
        let cert_id = |serial: &[u8]| CertId::new(OcspHash::Sha1, &ca.der, serial).unwrap();
        let responses = [
            SingleResponse {
                cert_id: cert_id(&[0x80]),
                status: CertStatus::Good,
                this_update,
                next_update: Some(next_update),
            },
            SingleResponse {
                cert_id: cert_id(&[]),
                status: CertStatus::Revoked {
                    revoked_at: datetime!(2024-01-02 03:04:05.678 +01:00),
                    reason: Some(1),
                },
                this_update,
                next_update: None,
            },
            SingleResponse {
                cert_id: cert_id(&[0x00, 0x00, 0x7f]),
                status: CertStatus::Revoked {
                    revoked_at: datetime!(2024-01-02 03:04:05 UTC),
                    reason: None,
                },
                this_update,
                next_update: None,
            },
            SingleResponse {
                cert_id: cert_id(&[0x01]),
                status: CertStatus::Unknown,
                this_update,
                next_update: None,
            },
        ];
        let response = build_response(&as_ca(&ca), &responses, None, produced_at).unwrap();
        let decoded = decode_response(&response);
        assert_eq!(&decoded.produced_at[..], b"\x18\x0f20240301005959Z");
        assert!(decoded.extensions.is_empty());
        assert_eq!(decoded.sig_alg, OID_ECDSA_SHA256);
        assert!(!decoded.signature.is_empty());
        assert_eq!(
            decoded.responder_key_hash,
            OcspHash::Sha1.digest(ca.key.public_key_raw())
        );

        let this_update_der = b"\x18\x0f20240229120000Z";
        let cert_id_der = |id: &CertId| yasna::construct_der(|w| write_cert_id(w, id));
        let expect = |id: &CertId, status: &[u8], tail: &[u8]| {
            let mut body = cert_id_der(id);
            body.extend_from_slice(status);
            body.extend_from_slice(this_update_der);
            body.extend_from_slice(tail);
            yasna::construct_der(|w| w.write_sequence(|s| s.next().write_der(&body)))
        };
        // good [0] IMPLICIT NULL, nextUpdate [0] EXPLICIT GeneralizedTime
        assert_eq!(
            decoded.responses[0],
            expect(
                &responses[0].cert_id,
                &[0x80, 0x00],
                b"\xa0\x11\x18\x0f20240307120000Z"
            )
        );
        // revoked [1] IMPLICIT SEQUENCE { time, [0] EXPLICIT ENUMERATED 1 }
        let mut revoked = b"\xa1\x16\x18\x0f20240102020405Z\xa0\x03\x0a\x01\x01".to_vec();
        assert_eq!(
            decoded.responses[1],
            expect(&responses[1].cert_id, &revoked, b"")
        );
        revoked = b"\xa1\x11\x18\x0f20240102030405Z".to_vec();
        assert_eq!(
            decoded.responses[2],
            expect(&responses[2].cert_id, &revoked, b"")
        );
        // unknown [2] IMPLICIT NULL
        assert_eq!(
            decoded.responses[3],
            expect(&responses[3].cert_id, &[0x82, 0x00], b"")
        );

        // Serial numbers: high bit gets a 0x00 pad, zero is a single 0x00, leading zeros gone.
        assert!(contains(&decoded.responses[0], &[0x02, 0x02, 0x00, 0x80]));
        assert!(contains(&decoded.responses[1], &[0x02, 0x01, 0x00, 0xa1]));
        assert!(contains(&decoded.responses[2], &[0x02, 0x01, 0x7f, 0xa1]));
        // CertID hash AlgorithmIdentifier: sha1 with NULL parameters.
        assert!(contains(
            &decoded.responses[0],
            &[
                0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00
            ]
        ));
        // The CertIDs we emit parse back into the same values.
        for (raw, expected) in decoded.responses.iter().zip(&responses) {
            let parsed = yasna::parse_der(raw, |r| {
                r.read_sequence(|s| {
                    let failure = Failure::default();
                    let id = read_cert_id(s.next(), &failure)?;
                    s.next().read_der()?;
                    s.next().read_der()?;
                    s.read_optional(|r| r.read_der())?;
                    Ok(id)
                })
            })
            .unwrap();
            assert_eq!(parsed, expected.cert_id);
        }

        // The ECDSA signature verifies over tbsResponseData.
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca.der).unwrap();
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
            ca_cert.public_key().subject_public_key.data.as_ref(),
        )
        .verify(&decoded.tbs, &decoded.signature)
        .unwrap();
    }

    #[test]
    fn build_response_validates_its_inputs() {
        let ca = p256_ca();
        let other = p256_ca();
        let cert_id = CertId::new(OcspHash::Sha256, &ca.der, &[5]).unwrap();
        let now = OffsetDateTime::now_utc();
        let build = |status: CertStatus, next: Option<OffsetDateTime>, nonce: Option<&[u8]>| {
            build_response(
                &as_ca(&ca),
                &[SingleResponse {
                    cert_id: cert_id.clone(),
                    status,
                    this_update: now,
                    next_update: next,
                }],
                nonce,
                now,
            )
        };
        for reason in [0u8, 1, 2, 3, 4, 5, 6, 8, 9, 10] {
            let status = CertStatus::Revoked {
                revoked_at: now,
                reason: Some(reason),
            };
            assert!(build(status, None, None).is_ok(), "reason {reason}");
        }
        for reason in [7u8, 11, 255] {
            let status = CertStatus::Revoked {
                revoked_at: now,
                reason: Some(reason),
            };
            let err = build(status, None, None).unwrap_err();
            assert!(matches!(err, OcspError::InvalidRevocationReason(r) if r == reason));
            assert!(!err.is_malformed_request());
        }
        let err = build(CertStatus::Good, Some(now - Duration::seconds(1)), None).unwrap_err();
        assert!(
            matches!(err, OcspError::NextUpdateBeforeThisUpdate { .. }),
            "{err}"
        );
        let err = build(CertStatus::Good, None, Some(&[])).unwrap_err();
        assert!(matches!(err, OcspError::EmptyNonce), "{err}");

        let far_future = datetime!(9999-12-31 23:30:00 -01:00);
        let err = build(CertStatus::Good, Some(far_future), None).unwrap_err();
        assert!(matches!(err, OcspError::TimeOutOfRange(_)), "{err}");
        let status = CertStatus::Revoked {
            revoked_at: datetime!(-0001-01-01 00:00:00 UTC),
            reason: None,
        };
        let err = build(status, None, None).unwrap_err();
        assert!(matches!(err, OcspError::TimeOutOfRange(_)), "{err}");

        let err = build_response(&as_ca(&ca), &[], None, now).unwrap_err();
        assert!(matches!(err, OcspError::NoResponses), "{err}");

        let mismatched = Responder {
            cert_der: &ca.der,
            key: &other.key,
            delegated: false,
        };
        let err = build_response(
            &mismatched,
            &[single(&cert_id, CertStatus::Good)],
            None,
            now,
        )
        .unwrap_err();
        assert!(matches!(err, OcspError::ResponderKeyMismatch), "{err}");

        let garbage = Responder {
            cert_der: b"garbage",
            key: &ca.key,
            delegated: false,
        };
        let err =
            build_response(&garbage, &[single(&cert_id, CertStatus::Good)], None, now).unwrap_err();
        assert!(matches!(err, OcspError::InvalidCertificate(_)), "{err}");
        assert!(matches!(
            CertId::new(OcspHash::Sha1, b"garbage", &[1]),
            Err(OcspError::InvalidCertificate(_))
        ));
        let mut trailing = ca.der.clone();
        trailing.push(0);
        assert!(
            !CertId::new(OcspHash::Sha1, &ca.der, &[1])
                .unwrap()
                .matches_issuer(&trailing)
        );
    }

    #[test]
    fn ml_dsa_responses_verify() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ML_DSA_44).unwrap();
        let ca = make_ca("ML-DSA CA", key);
        let cert_id = CertId::new(OcspHash::Sha256, &ca.der, &[9]).unwrap();
        let response = build_response(
            &as_ca(&ca),
            &[single(&cert_id, CertStatus::Good)],
            Some(NONCE_VALUE),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        let decoded = decode_response(&response);
        assert_eq!(decoded.sig_alg, OID_ML_DSA_44);
        assert_eq!(decoded.sig_alg_params, None);
        assert_eq!(decoded.nonce(), Some(NONCE_VALUE));
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ML_DSA_44,
            ca.key.public_key_raw(),
        )
        .verify(&decoded.tbs, &decoded.signature)
        .unwrap();
    }

    #[test]
    fn hash_helpers() {
        for hash in [
            OcspHash::Sha1,
            OcspHash::Sha256,
            OcspHash::Sha384,
            OcspHash::Sha512,
        ] {
            assert_eq!(OcspHash::from_oid(hash.oid()), Some(hash));
            assert_eq!(hash.digest(b"abc").len(), hash.output_len());
        }
        assert_eq!(OcspHash::from_oid(&[1, 2, 3]), None);
        assert_eq!(
            OcspHash::Sha1.digest(b"abc"),
            [
                0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e, 0x25, 0x71, 0x78, 0x50,
                0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d
            ]
        );
        assert_eq!(strip_leading_zeros(&[0, 0, 1, 0]), [1, 0]);
        assert_eq!(strip_leading_zeros(&[0, 0]), [0u8; 0]);
        let ca = p256_ca();
        let responder = as_ca(&ca);
        let debug = format!("{responder:?}");
        assert!(debug.contains("delegated: false"), "{debug}");
        assert!(!debug.contains("serialized_der"), "{debug}");
    }
}
