//! Certificate revocation lists.

use ::time::OffsetDateTime;
use rcgen::{
    CertificateRevocationListParams, CrlDistributionPoint, CrlIssuingDistributionPoint,
    KeyIdMethod, RevocationReason, RevokedCertParams, SerialNumber,
};

use crate::{CaError, SigningCa};

/// One revoked certificate as a CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial number, hex.
    pub serial_hex: String,
    /// When the CA processed the revocation.
    pub revoked_at: OffsetDateTime,
    /// RFC 5280 reason code.
    pub reason: Option<RevocationReason>,
}

/// Build and sign a CRL (DER) for `ca`.
pub fn build_crl(
    ca: &SigningCa,
    entries: &[RevokedEntry],
    crl_number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    crl_url: Option<&str>,
) -> Result<Vec<u8>, CaError> {
    let revoked_certs = entries
        .iter()
        .map(|e| {
            let serial = hex::decode(&e.serial_hex)
                .map_err(|_| CaError::BadCertificate(format!("bad serial {:?}", e.serial_hex)))?;
            Ok(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&serial),
                revocation_time: e.revoked_at,
                reason_code: e.reason,
                invalidity_date: None,
            })
        })
        .collect::<Result<Vec<_>, CaError>>()?;
    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from_slice(&crl_number.to_be_bytes()),
        issuing_distribution_point: crl_url.map(|u| CrlIssuingDistributionPoint {
            distribution_point: CrlDistributionPoint {
                uris: vec![u.to_string()],
            },
            scope: None,
        }),
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(ca.issuer())?;
    Ok(crl.der().to_vec())
}

/// Map an RFC 5280 reason code number to the enum; 7 and anything above 10 are invalid.
pub fn reason_from_code(code: u8) -> Option<RevocationReason> {
    use RevocationReason::*;
    Some(match code {
        0 => Unspecified,
        1 => KeyCompromise,
        2 => CaCompromise,
        3 => AffiliationChanged,
        4 => Superseded,
        5 => CessationOfOperation,
        6 => CertificateHold,
        8 => RemoveFromCrl,
        9 => PrivilegeWithdrawn,
        10 => AaCompromise,
        _ => return None,
    })
}
