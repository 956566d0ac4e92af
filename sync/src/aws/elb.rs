//! The HTTPS or TLS listener of an AWS Application or Network Load Balancer, through the
//! official SDKs: every version is imported into ACM as a certificate of its own, attached
//! to the listener (as its default certificate, or as an extra SNI certificate), and only
//! then is the previous version detached and deleted from ACM.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;
use aws_sdk_elasticloadbalancingv2::types::Certificate;
use serde::{Deserialize, Serialize};

use super::{AwsCredentials, acm, check_tags, sdk_config, sdk_error};
use crate::{BoxFuture, CertificateVersion, Destination, Pushed, SyncError};

/// Where on the listener the certificate goes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ListenerSlot {
    /// The listener's default certificate (`ModifyListener`).
    #[default]
    Default,
    /// An extra certificate the listener picks by SNI (`AddListenerCertificates`).
    Sni,
}

/// Which listener, and how (everything but the credentials).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AwsElbConfig {
    /// The listener's ARN (an HTTPS or TLS listener).
    pub listener_arn: String,
    /// `default` (the default certificate) or `sni` (an extra certificate).
    #[serde(default)]
    pub slot: ListenerSlot,
    /// The region; when absent, the listener ARN's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A custom endpoint for both ELB and ACM (VPC endpoint, or a test server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// A profile of the shared AWS config and credentials files (`AWS_CONFIG_FILE`,
    /// `~/.aws/config`) to take credentials from: static keys, `credential_process`, SSO,
    /// or a role to assume. Without it (and without stored credentials), the default chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Tags on the ACM certificates.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A load balancer listener destination.
#[derive(Debug, Clone)]
pub struct AwsElb {
    elb: aws_sdk_elasticloadbalancingv2::Client,
    acm: aws_sdk_acm::Client,
    cfg: AwsElbConfig,
}

/// The region in an ELB listener ARN
/// (`arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/...`).
fn listener_region(arn: &str) -> Result<&str, SyncError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "elasticloadbalancing", region, _, rest]
            if !region.is_empty() && rest.starts_with("listener/") && arn.len() <= 2048 =>
        {
            Ok(region)
        }
        _ => Err(SyncError::Config(format!(
            "listener_arn {arn:?} is not an Elastic Load Balancing listener ARN"
        ))),
    }
}

impl AwsElb {
    /// A destination; credentials fall back to the standard AWS chain. The region must be
    /// the listener's.
    pub async fn new(
        cfg: AwsElbConfig,
        credentials: Option<AwsCredentials>,
    ) -> Result<Self, SyncError> {
        check_tags(&cfg.tags)?;
        let arn_region = listener_region(&cfg.listener_arn)?;
        let region = match &cfg.region {
            Some(r) if r != arn_region => {
                return Err(SyncError::Config(format!(
                    "wrong region: the listener is in {arn_region}, the destination names {r}"
                )));
            }
            _ => arn_region.to_string(),
        };
        let conf = sdk_config(
            Some(&region),
            cfg.endpoint_url.as_deref(),
            cfg.profile.as_deref(),
            credentials,
        )
        .await?;
        Ok(AwsElb {
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&conf),
            acm: aws_sdk_acm::Client::new(&conf),
            cfg,
        })
    }

    /// The ELB client, for callers that want to read the listener back.
    pub fn elb_client(&self) -> &aws_sdk_elasticloadbalancingv2::Client {
        &self.elb
    }

    /// The ACM client, for callers that want to read the certificates back.
    pub fn acm_client(&self) -> &aws_sdk_acm::Client {
        &self.acm
    }

    fn certificate(arn: &str) -> Certificate {
        Certificate::builder().certificate_arn(arn).build()
    }

    /// The listener's certificates: (ARN, is default).
    async fn attached(&self) -> Result<Vec<(String, bool)>, SyncError> {
        let out = self
            .elb
            .describe_listener_certificates()
            .listener_arn(&self.cfg.listener_arn)
            .send()
            .await
            .map_err(|e| {
                self.listener_error("elasticloadbalancing:DescribeListenerCertificates", e)
            })?;
        Ok(out
            .certificates()
            .iter()
            .filter_map(|c| {
                c.certificate_arn()
                    .map(|a| (a.to_string(), c.is_default().unwrap_or(false)))
            })
            .collect())
    }

    fn listener_error<E>(
        &self,
        action: &str,
        e: aws_sdk_elasticloadbalancingv2::error::SdkError<
            E,
            aws_sdk_elasticloadbalancingv2::config::http::HttpResponse,
        >,
    ) -> SyncError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        if e.code() == Some("ListenerNotFound") {
            let region = self
                .elb
                .config()
                .region()
                .map(|r| r.to_string())
                .unwrap_or_default();
            return SyncError::Config(format!(
                "listener {} not found in {region}",
                self.cfg.listener_arn
            ));
        }
        sdk_error(action, e)
    }

    async fn attach(&self, new_arn: &str) -> Result<(), SyncError> {
        match self.cfg.slot {
            ListenerSlot::Default => {
                self.elb
                    .modify_listener()
                    .listener_arn(&self.cfg.listener_arn)
                    .certificates(Self::certificate(new_arn))
                    .send()
                    .await
                    .map_err(|e| self.listener_error("elasticloadbalancing:ModifyListener", e))?;
            }
            ListenerSlot::Sni => {
                self.elb
                    .add_listener_certificates()
                    .listener_arn(&self.cfg.listener_arn)
                    .certificates(Self::certificate(new_arn))
                    .send()
                    .await
                    .map_err(|e| {
                        self.listener_error("elasticloadbalancing:AddListenerCertificates", e)
                    })?;
            }
        }
        Ok(())
    }

    /// Take `arn` off the listener (unless it is the default certificate, which a listener
    /// cannot be without) and delete it from ACM.
    async fn detach(&self, arn: &str) -> Result<(), SyncError> {
        let attached = self.attached().await?;
        match attached.iter().find(|(a, _)| a == arn) {
            Some((_, true)) => {
                return Err(SyncError::Refused(format!(
                    "{arn} is the listener's default certificate; a listener cannot be left \
                     without one, so make another certificate its default first"
                )));
            }
            Some((_, false)) => {
                self.elb
                    .remove_listener_certificates()
                    .listener_arn(&self.cfg.listener_arn)
                    .certificates(Self::certificate(arn))
                    .send()
                    .await
                    .map_err(|e| {
                        self.listener_error("elasticloadbalancing:RemoveListenerCertificates", e)
                    })?;
            }
            None => {}
        }
        acm::delete(&self.acm, arn).await
    }

    async fn deploy(
        &self,
        v: &CertificateVersion,
        previous: Option<&str>,
        now: time::OffsetDateTime,
    ) -> Result<Pushed, SyncError> {
        let pushed = acm::import(&self.acm, &self.cfg.tags, v, None, now).await?;
        if let Err(e) = self.attach(&pushed.remote_id).await {
            // Not attached: the new certificate goes again, so nothing is left behind.
            let _ = acm::delete(&self.acm, &pushed.remote_id).await;
            return Err(e);
        }
        if let Some(old) = previous.filter(|old| *old != pushed.remote_id)
            && let Err(e) = self.detach(old).await
        {
            // The new version serves already; the old one is left for an operator.
            tracing::warn!(
                listener = %self.cfg.listener_arn, attached = %pushed.remote_id,
                previous = %old, error = %e,
                "the previous certificate could not be detached and deleted"
            );
        }
        Ok(pushed)
    }

    async fn probe(&self) -> Result<Vec<String>, SyncError> {
        let out = self
            .elb
            .describe_listeners()
            .listener_arns(&self.cfg.listener_arn)
            .send()
            .await
            .map_err(|e| self.listener_error("elasticloadbalancing:DescribeListeners", e))?;
        let listener = out.listeners().first().ok_or_else(|| {
            SyncError::Config(format!("listener {} not found", self.cfg.listener_arn))
        })?;
        let protocol = listener
            .protocol()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        if !matches!(protocol.as_str(), "HTTPS" | "TLS") {
            return Err(SyncError::Config(format!(
                "the listener's protocol is {protocol}; certificates attach to HTTPS or TLS \
                 listeners only"
            )));
        }
        let attached = self.attached().await?;
        Ok(vec![
            format!(
                "elasticloadbalancing:DescribeListeners: {protocol} listener on port {}",
                listener.port().unwrap_or(0)
            ),
            format!(
                "elasticloadbalancing:DescribeListenerCertificates: {} certificate(s) attached",
                attached.len()
            ),
            acm::check(&self.acm).await?,
        ])
    }
}

impl Destination for AwsElb {
    fn kind(&self) -> &'static str {
        "aws_elb"
    }

    fn push<'a>(
        &'a self,
        version: &'a CertificateVersion,
        remote_id: Option<&'a str>,
        now: time::OffsetDateTime,
    ) -> BoxFuture<'a, Result<Pushed, SyncError>> {
        Box::pin(self.deploy(version, remote_id, now))
    }

    fn delete<'a>(&'a self, remote_id: &'a str) -> BoxFuture<'a, Result<(), SyncError>> {
        Box::pin(self.detach(remote_id))
    }

    fn check(&self) -> BoxFuture<'_, Result<Vec<String>, SyncError>> {
        Box::pin(self.probe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_arns_are_read() {
        let arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/lb/50dc6c495c0c9188/f2f7dc8efc522ab2";
        assert_eq!(listener_region(arn).unwrap(), "eu-west-1");
        for bad in [
            "arn:aws:acm:eu-west-1:123456789012:certificate/x",
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/lb/1",
            "listener",
        ] {
            assert!(listener_region(bad).is_err(), "{bad}");
        }
    }
}
