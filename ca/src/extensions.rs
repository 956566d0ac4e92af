//! Extensions rcgen does not build itself: Authority Information Access.

use rcgen::CustomExtension;

/// The URLs stamped into every certificate a CA issues: where to fetch the issuer's
/// certificate (AIA caIssuers), where to ask OCSP, and where the CRL lives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    /// AIA caIssuers URL (the issuing CA's certificate, DER).
    pub ca_issuers_url: Option<String>,
    /// AIA OCSP responder URL.
    pub ocsp_url: Option<String>,
    /// CRL distribution point URL.
    pub crl_url: Option<String>,
}

impl Links {
    /// No URLs (used for roots and in examples).
    pub fn none() -> Links {
        Links::default()
    }

    pub(crate) fn apply(&self, params: &mut rcgen::CertificateParams) {
        if let Some(crl) = &self.crl_url {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![crl.clone()],
            }];
        }
        if let Some(ext) = self.aia_extension() {
            params.custom_extensions.push(ext);
        }
    }

    /// The AIA extension (RFC 5280 §4.2.2.1), if any URL is set.
    fn aia_extension(&self) -> Option<CustomExtension> {
        const OCSP: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1];
        const CA_ISSUERS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 2];
        let mut entries: Vec<(&[u64], &str)> = Vec::new();
        if let Some(u) = &self.ocsp_url {
            entries.push((OCSP, u));
        }
        if let Some(u) = &self.ca_issuers_url {
            entries.push((CA_ISSUERS, u));
        }
        if entries.is_empty() {
            return None;
        }
        let der = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                for (oid, url) in &entries {
                    w.next().write_sequence(|w| {
                        w.next()
                            .write_oid(&yasna::models::ObjectIdentifier::from_slice(oid));
                        // GeneralName uniformResourceIdentifier [6] IMPLICIT IA5String
                        w.next().write_tagged_implicit(yasna::Tag::context(6), |w| {
                            w.write_ia5_string(url)
                        });
                    });
                }
            })
        });
        Some(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 1],
            der,
        ))
    }
}
