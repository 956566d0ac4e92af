//! AWS Private CA (ACM PCA) as an upstream, through the official SDK: the CA is checked
//! with `DescribeCertificateAuthority` (it must exist and be `ACTIVE`), certificates are
//! asked for with `IssueCertificate` (our CSR, the profile's end of validity, an
//! idempotency token) and fetched with `GetCertificate` until ready, and revocations go to
//! `RevokeCertificate`. The SDK is configured as the AWS destinations are
//! ([`certkeeper_sync::aws_sdk_config`]): region, custom endpoint, and sealed access keys,
//! a named profile, or the standard AWS chain. Every call is bounded in time.

use std::time::Duration;

use aws_sdk_acmpca::primitives::Blob;
use aws_sdk_acmpca::types::{
    CertificateAuthorityStatus, RevocationReason, SigningAlgorithm, Validity, ValidityPeriodType,
};
use certkeeper_sync::{AwsCredentials, SyncError, aws_sdk_config, aws_sdk_error};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::error::Error;
use crate::services::issuers::port::{
    BoxFuture, ChallengeBoard, UpstreamCa, UpstreamCertificate, UpstreamFailure, UpstreamOrder,
};

/// Longest wait for one call (describe, issue, one poll, revoke), SDK retries included.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for an issued certificate to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest certificate with chain accepted from `GetCertificate`, in bytes.
const MAX_ANSWER: usize = 256 * 1024;
/// Longest ARN accepted (AWS allows 200 characters).
const MAX_ARN: usize = 200;
/// The end-entity template, used when the issuer names none (without the partition).
const END_ENTITY_TEMPLATE: &str = "acm-pca:::template/EndEntityCertificate/V1";

/// The settings of an AWS Private CA issuer (no secrets: access keys are sealed apart).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AwsPcaConfig {
    /// The CA's ARN (`arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID`).
    pub ca_arn: String,
    /// The region; the CA ARN's region when absent (and it must agree with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// How PCA signs (`SHA256WITHECDSA`, `SHA256WITHRSA`, ...): one of PCA's
    /// `SigningAlgorithm` values, of the CA key's family.
    pub signing_algorithm: String,
    /// The certificate template ARN; `arn:aws:acm-pca:::template/EndEntityCertificate/V1`
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_arn: Option<String>,
    /// A custom endpoint (a VPC endpoint, or a test server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// A profile of the shared AWS config files to take credentials from; without it (and
    /// without sealed access keys), the standard AWS chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// The parts of a PCA ARN: partition and region.
struct CaArn<'a> {
    partition: &'a str,
    region: &'a str,
}

/// Parse `arn:PARTITION:acm-pca:REGION:ACCOUNT:certificate-authority/ID`.
fn parse_ca_arn(arn: &str) -> Result<CaArn<'_>, String> {
    let bad = || {
        format!(
            "ca_arn {arn:?} is not an AWS Private CA ARN \
             (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID)"
        )
    };
    if arn.len() > MAX_ARN || !arn.is_ascii() {
        return Err(bad());
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else {
        return Err(bad());
    };
    let id = resource
        .strip_prefix("certificate-authority/")
        .ok_or_else(bad)?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if prefix != "arn"
        || service != "acm-pca"
        || !plain(partition)
        || !plain(region)
        || account.len() != 12
        || !account.bytes().all(|b| b.is_ascii_digit())
        || id.is_empty()
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(bad());
    }
    Ok(CaArn { partition, region })
}

impl AwsPcaConfig {
    /// Check the settings without calling AWS; answers the region to use.
    pub fn validate(&self) -> Result<String, Error> {
        let bad = |m: String| Error::BadRequest(m);
        let arn = parse_ca_arn(&self.ca_arn).map_err(bad)?;
        let region = match &self.region {
            Some(r) if r != arn.region => {
                return Err(bad(format!(
                    "region {r:?} is not the CA ARN's region {:?}",
                    arn.region
                )));
            }
            _ => arn.region.to_string(),
        };
        if !SigningAlgorithm::values().contains(&self.signing_algorithm.as_str()) {
            return Err(bad(format!(
                "signing_algorithm {:?} is not one of {}",
                self.signing_algorithm,
                SigningAlgorithm::values().join(", ")
            )));
        }
        if let Some(t) = &self.template_arn {
            let ok = t.len() <= MAX_ARN
                && t.starts_with("arn:")
                && t.contains(":acm-pca:::template/")
                && t.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(bad(format!(
                    "template_arn {t:?} is not a PCA template ARN \
                     (arn:aws:acm-pca:::template/NAME/VERSION)"
                )));
            }
        }
        Ok(region)
    }

    /// The template to issue under.
    pub fn template(&self) -> String {
        self.template_arn.clone().unwrap_or_else(|| {
            let partition = parse_ca_arn(&self.ca_arn)
                .map(|a| a.partition)
                .unwrap_or("aws");
            format!("arn:{partition}:{END_ENTITY_TEMPLATE}")
        })
    }
}

/// An AWS Private CA issuer.
#[derive(Debug)]
pub struct AwsPcaUpstream {
    config: AwsPcaConfig,
    client: aws_sdk_acmpca::Client,
}

/// A sync-crate error as a failure of ours: bad settings are the caller's, the rest the
/// upstream's.
fn sync_failure(e: SyncError) -> UpstreamFailure {
    let code = match &e {
        SyncError::Remote { code, .. } => Some(code.clone()),
        _ => None,
    };
    UpstreamFailure {
        message: format!("AWS Private CA: {e}"),
        problem: code.map(|c| json!({"code": c})),
        retry_after: None,
    }
}

/// Run a call with a time limit.
async fn bounded<T>(
    what: &str,
    call: impl Future<Output = Result<T, UpstreamFailure>>,
) -> Result<T, UpstreamFailure> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(UpstreamFailure::plain(format!(
                "AWS Private CA: {what}: no answer within {}s",
                CALL_TIMEOUT.as_secs()
            )))
        })
}

/// PCA's revocation reason for an RFC 5280 reason code (those certkeeper offers).
fn reason(code: u8) -> Result<RevocationReason, UpstreamFailure> {
    Ok(match code {
        0 => RevocationReason::Unspecified,
        1 => RevocationReason::KeyCompromise,
        2 => RevocationReason::CertificateAuthorityCompromise,
        3 => RevocationReason::AffiliationChanged,
        4 => RevocationReason::Superseded,
        5 => RevocationReason::CessationOfOperation,
        9 => RevocationReason::PrivilegeWithdrawn,
        10 => RevocationReason::AaCompromise,
        other => {
            return Err(UpstreamFailure::plain(format!(
                "AWS Private CA has no revocation reason for code {other}"
            )));
        }
    })
}

/// The key family a PCA key algorithm (`EC_prime256v1`, `RSA_2048`, `SM2`) or signing
/// algorithm (`SHA256WITHECDSA`, `SHA256WITHRSA`, `SM3WITHSM2`) is of.
fn key_family(name: &str) -> &'static str {
    if name.contains("ECDSA") || name.starts_with("EC_") {
        "EC"
    } else if name.contains("RSA") {
        "RSA"
    } else if name.contains("SM2") {
        "SM2"
    } else if name.contains("ML_DSA") || name.contains("MLDSA") {
        "ML-DSA"
    } else {
        "other"
    }
}

/// A certificate's serial as PCA's `RevokeCertificate` takes it: hexadecimal bytes
/// separated by colons (`4C:1F:...`), as `openssl x509 -text` prints it.
pub fn colon_serial(der: &[u8]) -> Result<String, UpstreamFailure> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| UpstreamFailure::plain(format!("the certificate does not parse: {e}")))?;
    let raw = cert.raw_serial();
    let start = raw
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    Ok(raw[start..]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

impl AwsPcaUpstream {
    /// A client for the issuer `config` (validated here) with its sealed access keys, if
    /// any. Builds the SDK configuration only; nothing is sent.
    pub async fn new(
        config: AwsPcaConfig,
        credentials: Option<AwsCredentials>,
    ) -> Result<AwsPcaUpstream, Error> {
        let region = config.validate()?;
        let conf = aws_sdk_config(
            Some(&region),
            config.endpoint_url.as_deref(),
            config.profile.as_deref(),
            credentials,
        )
        .await
        .map_err(|e| match e {
            SyncError::Config(m) => Error::BadRequest(m),
            other => Error::from(sync_failure(other)),
        })?;
        Ok(AwsPcaUpstream {
            client: aws_sdk_acmpca::Client::new(&conf),
            config,
        })
    }

    /// `DescribeCertificateAuthority`: the CA must exist and be `ACTIVE`, and its key must
    /// fit the signing algorithm. Answers what was found.
    pub async fn describe(&self) -> Result<Value, UpstreamFailure> {
        let out = bounded("describing the CA", async {
            self.client
                .describe_certificate_authority()
                .certificate_authority_arn(&self.config.ca_arn)
                .send()
                .await
                .map_err(|e| sync_failure(aws_sdk_error("acm-pca:DescribeCertificateAuthority", e)))
        })
        .await?;
        let ca = out.certificate_authority().ok_or_else(|| {
            UpstreamFailure::plain("AWS Private CA: DescribeCertificateAuthority answered no CA")
        })?;
        let status = ca.status().map(|s| s.as_str().to_string());
        if ca.status() != Some(&CertificateAuthorityStatus::Active) {
            return Err(UpstreamFailure {
                message: format!(
                    "AWS Private CA {} is {}, not ACTIVE",
                    self.config.ca_arn,
                    status.as_deref().unwrap_or("of unknown status")
                ),
                problem: Some(json!({"status": status})),
                retry_after: None,
            });
        }
        let key = ca
            .certificate_authority_configuration()
            .map(|c| c.key_algorithm().as_str().to_string());
        if let Some(key) = &key {
            let alg = self.config.signing_algorithm.as_str();
            if key_family(key) != key_family(alg) {
                return Err(UpstreamFailure::plain(format!(
                    "AWS Private CA {} has a {key} key: it cannot sign with {alg}",
                    self.config.ca_arn
                )));
            }
        }
        Ok(json!({
            "ca_arn": self.config.ca_arn,
            "status": status,
            "type": ca.r#type().map(|t| t.as_str().to_string()),
            "key_algorithm": key,
            "serial": ca.serial(),
            "not_after": ca.not_after().map(|t| t.secs()),
        }))
    }

    async fn issue_inner(
        &self,
        csr_der: &[u8],
        not_after: OffsetDateTime,
    ) -> Result<UpstreamCertificate, UpstreamFailure> {
        let csr = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", csr_der.to_vec()));
        // One token per request: the SDK's retries of this call get the one certificate,
        // while a client sending the same CSR again gets a new one (a repeated answer would
        // repeat a serial certkeeper already recorded).
        let token = crate::store::new_id();
        let validity = Validity::builder()
            .r#type(ValidityPeriodType::Absolute)
            .value(not_after.unix_timestamp())
            .build()
            .map_err(|e| UpstreamFailure::plain(format!("AWS Private CA validity: {e}")))?;
        let issued = bounded("issuing", async {
            self.client
                .issue_certificate()
                .certificate_authority_arn(&self.config.ca_arn)
                .csr(Blob::new(csr.into_bytes()))
                .signing_algorithm(SigningAlgorithm::from(
                    self.config.signing_algorithm.as_str(),
                ))
                .template_arn(self.config.template())
                .validity(validity)
                .idempotency_token(token)
                .send()
                .await
                .map_err(|e| sync_failure(aws_sdk_error("acm-pca:IssueCertificate", e)))
        })
        .await?;
        let arn = issued
            .certificate_arn()
            .ok_or_else(|| {
                UpstreamFailure::plain(
                    "AWS Private CA: IssueCertificate answered no certificate ARN",
                )
            })?
            .to_string();
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let mut wait = Duration::from_millis(200);
        loop {
            let got = bounded("fetching the certificate", async {
                Ok(self
                    .client
                    .get_certificate()
                    .certificate_authority_arn(&self.config.ca_arn)
                    .certificate_arn(&arn)
                    .send()
                    .await)
            })
            .await?;
            match got {
                Ok(out) => {
                    let cert = out.certificate().ok_or_else(|| {
                        UpstreamFailure::plain(
                            "AWS Private CA: GetCertificate answered no certificate",
                        )
                    })?;
                    let chain_len = out.certificate_chain().map_or(0, str::len);
                    if cert.len() + chain_len > MAX_ANSWER {
                        return Err(UpstreamFailure::plain(format!(
                            "AWS Private CA: the certificate with its chain is over {MAX_ANSWER} bytes"
                        )));
                    }
                    let mut pem = format!("{}\n", cert.trim());
                    if let Some(chain) = out.certificate_chain() {
                        pem.push_str(chain.trim());
                        pem.push('\n');
                    }
                    return Ok(UpstreamCertificate {
                        pem,
                        reference: Some(arn),
                    });
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_request_in_progress_exception()) =>
                {
                    if tokio::time::Instant::now() + wait > deadline {
                        return Err(UpstreamFailure::plain(format!(
                            "AWS Private CA: certificate {arn} was not ready within {}s",
                            READY_TIMEOUT.as_secs()
                        )));
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    return Err(sync_failure(aws_sdk_error("acm-pca:GetCertificate", e)));
                }
            }
        }
    }
}

impl UpstreamCa for AwsPcaUpstream {
    fn issue<'a>(
        &'a self,
        order: UpstreamOrder<'a>,
        _board: &'a dyn ChallengeBoard,
    ) -> BoxFuture<'a, Result<UpstreamCertificate, UpstreamFailure>> {
        // PCA keeps no renewal chain: `replaces` is for ACME CAs.
        Box::pin(self.issue_inner(order.csr_der, order.not_after))
    }

    fn check(&self) -> BoxFuture<'_, Result<Value, UpstreamFailure>> {
        Box::pin(self.describe())
    }

    fn revoke<'a>(
        &'a self,
        cert_der: &'a [u8],
        reason_code: u8,
    ) -> BoxFuture<'a, Result<(), UpstreamFailure>> {
        Box::pin(async move {
            let serial = colon_serial(cert_der)?;
            let reason = reason(reason_code)?;
            bounded("revoking", async {
                self.client
                    .revoke_certificate()
                    .certificate_authority_arn(&self.config.ca_arn)
                    .certificate_serial(&serial)
                    .revocation_reason(reason)
                    .send()
                    .await
                    .map_err(|e| sync_failure(aws_sdk_error("acm-pca:RevokeCertificate", e)))
            })
            .await?;
            Ok(())
        })
    }

    fn deactivate(&self) -> BoxFuture<'_, Result<(), UpstreamFailure>> {
        // Nothing to leave: certkeeper holds no account at PCA.
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(arn: &str, alg: &str) -> AwsPcaConfig {
        AwsPcaConfig {
            ca_arn: arn.into(),
            region: None,
            signing_algorithm: alg.into(),
            template_arn: None,
            endpoint_url: None,
            profile: None,
        }
    }

    const ARN: &str = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0b1c-22";

    #[test]
    fn settings_are_checked() {
        assert_eq!(cfg(ARN, "SHA256WITHECDSA").validate().unwrap(), "eu-west-1");
        assert_eq!(
            cfg(ARN, "SHA256WITHRSA").template(),
            "arn:aws:acm-pca:::template/EndEntityCertificate/V1"
        );
        for arn in [
            "arn:aws:acm:eu-west-1:123456789012:certificate/0b1c",
            "arn:aws:acm-pca:eu-west-1:1234:certificate-authority/0b1c",
            "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/",
            "not an arn",
        ] {
            assert!(cfg(arn, "SHA256WITHRSA").validate().is_err(), "{arn}");
        }
        assert!(cfg(ARN, "SHA256WITHDSA").validate().is_err());
        let mut c = cfg(ARN, "SHA256WITHRSA");
        c.region = Some("us-east-1".into());
        assert!(c.validate().is_err());
        c.region = None;
        c.template_arn = Some("arn:aws:s3:::bucket".into());
        assert!(c.validate().is_err());
    }

    #[test]
    fn reasons_and_serials() {
        for code in [0, 1, 2, 3, 4, 5, 9, 10] {
            assert!(reason(code).is_ok(), "{code}");
        }
        assert!(reason(6).is_err());
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0x8a, 0x01, 0xff]));
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(colon_serial(cert.der()).unwrap(), "8A:01:FF");
    }
}
