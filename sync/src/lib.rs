//! Push certificate versions to where load balancers and services read them: AWS
//! Certificate Manager ([`AwsAcm`]), AWS Secrets Manager ([`AwsSecretsManager`]), the
//! listeners of AWS load balancers ([`AwsElb`]), Azure Key Vault ([`AzureKeyVault`]) and
//! Cloudflare custom certificates ([`Cloudflare`]).
//!
//! The server drives every destination through one [`Destination`] trait: push a version
//! (the answer names the remote object and its version), delete, and check the connection
//! without changing anything. Destinations refuse
//! up front what the remote store would refuse, and sort failures into those worth retrying
//! later (throttling, transport) and those that are not ([`SyncError::retryable`]).
//!
//! ```no_run
//! # async fn demo(version: certkeeper_sync::CertificateVersion) -> Result<(), certkeeper_sync::SyncError> {
//! use certkeeper_sync::{AzureKeyVault, AzureKeyVaultConfig, Destination};
//! let cfg: AzureKeyVaultConfig = serde_json::from_value(serde_json::json!({
//!     "vault_url": "https://example.vault.azure.net",
//!     "certificate_name": "web",
//!     "tenant_id": "00000000-0000-0000-0000-000000000000",
//!     "client_id": "11111111-1111-1111-1111-111111111111",
//! })).expect("valid configuration");
//! let vault = AzureKeyVault::new(cfg, Some("client secret".into()))?;
//! let pushed = vault.push(&version, None, time::OffsetDateTime::now_utc()).await?;
//! println!("{} version {:?}", pushed.remote_id, pushed.remote_version);
//! # Ok(()) }
//! ```

mod aws;
mod azure;
mod cloudflare;
mod error;
mod http;
mod version;

use std::future::Future;
use std::pin::Pin;

pub use aws::{
    AwsAcm, AwsAcmConfig, AwsCredentials, AwsElb, AwsElbConfig, AwsSecretsManager,
    AwsSecretsManagerConfig, ListenerSlot, SecretFormat, sdk_config as aws_sdk_config,
    sdk_error as aws_sdk_error,
};
pub use azure::{
    API_VERSION as AZURE_API_VERSION, AzureCredentialKind, AzureKeyVault, AzureKeyVaultConfig,
    DEFAULT_AUTHORITY as AZURE_DEFAULT_AUTHORITY, SCOPE as AZURE_SCOPE, validate_certificate_name,
};
pub use cloudflare::{Cloudflare, CloudflareConfig, DEFAULT_API_URL as CLOUDFLARE_API_URL};
pub use error::SyncError;
pub use version::{CertificateVersion, PublicKeyKind};

/// A boxed future, so destinations can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a version landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The remote object: an ACM certificate ARN (for load balancers, the one attached to
    /// the listener), a Secrets Manager secret ARN, a Key Vault certificate URL without its
    /// version, or a Cloudflare custom certificate id.
    pub remote_id: String,
    /// The remote version: Key Vault's version id, the Secrets Manager version id; ACM and
    /// Cloudflare keep no versions, so the serial (hex) of the certificate now stored.
    pub remote_version: Option<String>,
}

/// A cloud certificate store that receives every version of a managed certificate.
pub trait Destination: Send + Sync + std::fmt::Debug {
    /// A short name of the kind of store (`aws_acm`, `aws_secrets_manager`, `aws_elb`,
    /// `azure_key_vault`, `cloudflare`).
    fn kind(&self) -> &'static str;

    /// Push `version`. `remote_id` is what an earlier push returned, so the new version
    /// replaces the old one in place (same ARN, or a new version of the same Key Vault
    /// certificate). `now` comes from the caller's clock.
    fn push<'a>(
        &'a self,
        version: &'a CertificateVersion,
        remote_id: Option<&'a str>,
        now: time::OffsetDateTime,
    ) -> BoxFuture<'a, Result<Pushed, SyncError>>;

    /// Remove what an earlier push put there (`remote_id` is what it returned).
    fn delete<'a>(&'a self, remote_id: &'a str) -> BoxFuture<'a, Result<(), SyncError>>;

    /// Check the credentials, the permissions and that the configured place exists, with
    /// read-only calls; the answer says what was checked. A failure names the missing
    /// permission, or the region or zone that was wrong.
    fn check(&self) -> BoxFuture<'_, Result<Vec<String>, SyncError>>;
}
