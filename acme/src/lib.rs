//! # certkeeper-acme
//!
//! The RFC 8555 (ACME) protocol core of certkeeper, with no HTTP framework and no SQL:
//!
//! - [`Jws`] and [`PublicJwk`]: flattened-JSON JWS parsing and signature verification
//!   (ES256, ES384, RS256, PS256, EdDSA for accounts; HS256 only for external account
//!   binding), JWK thumbprints (RFC 7638);
//! - [`Problem`]: RFC 8555 problem documents (`urn:ietf:params:acme:error:*`) with
//!   subproblems;
//! - [`Identifier`], [`Status`], [`order_status`], [`authz_status`]: identifiers (DNS,
//!   wildcard, IP per RFC 8738) and the order/authorization state machines as pure functions;
//! - [`key_authorization`], [`ChallengeType`] and [`validate`]: challenge validation, the only
//!   code here that dials out;
//! - [`Caps`]: caps on work in flight, over all keys and per key ([`ValidationLimits`] for
//!   validations per account);
//! - [`NonceKey`]: self-authenticating anti-replay nonces, so that only used nonces need
//!   to be stored;
//! - [`check_caa`] looks up CAA (RFC 8659) and [`caa_decision`] decides from the records
//!   whether this CA may issue;
//! - [`Engine`]: the whole flow (accounts, key change, orders, authorizations, challenges,
//!   finalization, revocation, renewal information, and the recovery of validations and
//!   finalizations a stopped process left unfinished) as one method per request over two
//!   ports: [`AcmeStore`], the storage it needs, and [`Issuer`], what it needs from the
//!   registration authority. Time comes from an injected [`certkeeper_ca::Clock`]; a
//!   challenge to validate is handed back as a [`Validation`] for the caller's background
//!   runner. Failures are one [`AcmeError`], which maps itself to a [`Problem`].
//!
//! ```
//! use certkeeper_acme::*;
//! let id = Identifier::dns("www.example.com").unwrap();
//! assert_eq!(id.challenge_types(), vec![ChallengeType::Http01, ChallengeType::Dns01, ChallengeType::TlsAlpn01]);
//! let wild = Identifier::dns("*.example.com").unwrap();
//! assert_eq!(wild.challenge_types(), vec![ChallengeType::Dns01]);
//! assert_eq!(order_status(Status::Pending, &[Status::Valid, Status::Valid], 10, 5), Status::Ready);
//! ```

mod caa;
mod engine;
mod identifier;
mod jws;
mod limits;
mod nonce;
mod problem;
mod state;
mod store;
mod validate;

pub use caa::{CaaDecision, CaaRecord, caa_decision};
pub use engine::{AcmeError, Answer, Body, Call, Config, Engine, Reclaimed, Validation, rfc3339};
pub use identifier::{ChallengeType, Identifier, IdentifierKind};
pub use jws::{Jws, JwsHeader, KeyRef, PublicJwk, b64, b64_decode, hmac_sha256_verify};
pub use limits::{Caps, LimitReached, Permit, ValidationLimits, ValidationPermit};
pub use nonce::{NonceKey, NonceRejection, UsedNonces};
pub use problem::{Problem, ProblemType, Subproblem};
pub use state::{Status, authz_status, order_status};
pub use store::{
    AcmeAccount, AcmeAuthz, AcmeChallenge, AcmeOrder, AcmeStore, Actor, Audit, EabKey,
    IssuedForOrder, Issuer, IssuerError, NewAcmeAuthz, StoreError, StoredCertificate,
};
pub use validate::{
    HTTP01_MAX_BODY, HTTP01_MAX_REDIRECTS, ValidationConfig, check_caa, dns01_txt_value,
    key_authorization, validate,
};
