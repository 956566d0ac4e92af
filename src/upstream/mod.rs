//! Adapters for the upstream-CA port ([`crate::services::issuers::port`]): the CAs that
//! sign certificates certkeeper asks for on its users' behalf.

pub mod acme;
pub mod acme_chains;
pub mod acme_http;
pub mod aws_pca;
pub mod cloudflare;
pub mod propagation;
pub mod rfc2136;
pub mod route53;
