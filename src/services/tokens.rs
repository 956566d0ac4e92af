//! API tokens: create (the secret shown once), list, revoke, authenticate.

use std::sync::Arc;

use crate::error::Error;
use crate::services::pki::{Actor, Pki};
use crate::services::ports::{ProfileStore, TokenStore};
use crate::store::{Role, TokenRecord, new_id};

/// Prefix of every API token, so leaked tokens are easy to spot.
pub const TOKEN_PREFIX: &str = "ck_";

/// A new random token and its stored hash.
pub fn new_token() -> Result<(String, String), Error> {
    use aws_lc_rs::rand::SecureRandom;
    use base64::Engine;
    let mut raw = [0u8; 32];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| Error::Internal("random generator failed".into()))?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let hash = hash_token(&token);
    Ok((token, hash))
}

/// Whether `bearer` has the shape of a token [`new_token`] makes: the prefix and 43
/// URL-safe base64 characters (32 bytes).
fn well_formed(bearer: &str) -> bool {
    bearer.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The stored form of a token: SHA-256, hex. Tokens carry 256 random bits, so a fast hash
/// is enough (there is nothing to brute-force).
pub fn hash_token(token: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        token.as_bytes(),
    ))
}

/// What a new token is made with.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Human name, 1 to 100 characters.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The profiles an issuer token may use (issuer tokens only, at least one).
    pub profiles: Vec<String>,
    /// The managed certificates (names or ids) an agent token may fetch and report on
    /// (agent tokens only, 1 to [`MAX_AGENT_CERTIFICATES`]).
    pub managed: Vec<String>,
    /// Lifetime in days (1 to [`super::MAX_LIFETIME_DAYS`]); none for a token that does not
    /// expire.
    pub expires_in_days: Option<u32>,
}

/// The most managed certificates one agent token may be given.
pub const MAX_AGENT_CERTIFICATES: usize = 100;

/// The rules a new token must follow that need no database.
fn check_new(new: &NewToken) -> Result<(), Error> {
    if new.name.trim().is_empty() || new.name.len() > 100 {
        return Err(Error::BadRequest("name must be 1 to 100 characters".into()));
    }
    match (new.role, new.managed.len()) {
        (Role::Agent, 0) => {
            return Err(Error::BadRequest(
                "an agent token needs \"managed\": the managed certificates it may fetch".into(),
            ));
        }
        (Role::Agent, n) if n > MAX_AGENT_CERTIFICATES => {
            return Err(Error::BadRequest(format!(
                "an agent token may be given at most {MAX_AGENT_CERTIFICATES} managed certificates"
            )));
        }
        (Role::Agent, _) => {}
        (_, 0) => {}
        _ => {
            return Err(Error::BadRequest(
                "\"managed\" applies to agent tokens only".into(),
            ));
        }
    }
    match (new.role, new.profiles.is_empty()) {
        (Role::Issuer, true) => Err(Error::BadRequest(
            "an issuer token needs \"profiles\": the profiles it may use".into(),
        )),
        (Role::Admin | Role::Viewer | Role::Agent, false) => Err(Error::BadRequest(
            "\"profiles\" applies to issuer tokens only".into(),
        )),
        _ => Ok(()),
    }
}

/// An authenticated caller: its token and the actor the audit log names.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token used.
    pub token: TokenRecord,
    /// For the audit log.
    pub actor: Actor,
}

impl Caller {
    /// Admins only.
    pub fn require_admin(&self) -> Result<(), Error> {
        if self.token.role == Role::Admin {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "this action needs an admin token; token {:?} is {}",
                self.token.name,
                self.token.role.as_str()
            )))
        }
    }

    /// May issue or revoke under `profile`.
    pub fn require_issuer_for(&self, profile: &str) -> Result<(), Error> {
        match self.token.role {
            Role::Admin => Ok(()),
            Role::Issuer if self.token.profiles.iter().any(|p| p == profile) => Ok(()),
            Role::Issuer => Err(Error::Forbidden(format!(
                "token {:?} may not use profile {profile:?} (allowed: {})",
                self.token.name,
                self.token.profiles.join(", ")
            ))),
            Role::Viewer => Err(Error::Forbidden(format!(
                "token {:?} is read-only (viewer)",
                self.token.name
            ))),
            Role::Agent => Err(Error::Forbidden(agent_only(&self.token.name))),
        }
    }

    /// Anything but an agent token (agents reach only their own endpoints).
    pub fn require_not_agent(&self) -> Result<(), Error> {
        match self.token.role {
            Role::Agent => Err(Error::Forbidden(agent_only(&self.token.name))),
            _ => Ok(()),
        }
    }

    /// An agent token.
    pub fn require_agent(&self) -> Result<(), Error> {
        match self.token.role {
            Role::Agent => Ok(()),
            other => Err(Error::Forbidden(format!(
                "this endpoint is for agent tokens; token {:?} is {}",
                self.token.name,
                other.as_str()
            ))),
        }
    }

    /// An agent token given the managed certificate `managed_id`.
    pub fn require_agent_for(&self, managed_id: &str) -> Result<(), Error> {
        self.require_agent()?;
        if self.token.managed.iter().any(|m| m == managed_id) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "agent token {:?} was not given this managed certificate",
                self.token.name
            )))
        }
    }
}

fn agent_only(name: &str) -> String {
    format!(
        "token {name:?} is an agent token: it may only fetch its managed certificates and report their deployment (/api/v1/agent/...)"
    )
}

/// API tokens: create (the secret shown once), list, revoke, authenticate.
#[derive(Debug, Clone)]
pub struct TokenService {
    pki: Arc<Pki>,
}

impl TokenService {
    /// The service over the registration authority's store and caches.
    pub fn new(pki: Arc<Pki>) -> TokenService {
        TokenService { pki }
    }

    fn store(&self) -> &(impl TokenStore + ProfileStore + use<>) {
        self.pki.store()
    }

    /// Create a token; returns its record and its secret, which is never shown again.
    pub async fn create(
        &self,
        new: NewToken,
        actor: &Actor,
    ) -> Result<(TokenRecord, String), Error> {
        check_new(&new)?;
        for p in &new.profiles {
            self.store()
                .get_profile(p)
                .await
                .map_err(|_| Error::BadRequest(format!("no profile {p:?}")))?;
        }
        let mut managed = Vec::with_capacity(new.managed.len());
        for m in &new.managed {
            match self.pki.store().get_managed(m).await {
                Ok(rec) => managed.push(rec.id),
                Err(crate::store::StoreError::NotFound(_)) => {
                    return Err(Error::BadRequest(format!("no managed certificate {m:?}")));
                }
                Err(e) => return Err(e.into()),
            }
        }
        managed.sort();
        managed.dedup();
        let now = self.pki.now();
        let expires_at = super::expiry_after_days("expires_in_days", new.expires_in_days, now)?;
        let (token, hash) = new_token()?;
        let rec = TokenRecord::new(
            new_id(),
            new.name,
            new.role,
            new.profiles,
            managed,
            hash,
            now,
            expires_at,
            actor.name.clone(),
        );
        let ev = actor.event("token.create", "token").object(&rec.id).detail(
            serde_json::json!({"name": rec.name, "role": rec.role, "profiles": rec.profiles, "managed": rec.managed}),
        );
        self.store().insert_token(&rec, &ev).await?;
        Ok((rec, token))
    }

    /// Every token, without secrets.
    pub async fn list(&self) -> Result<Vec<TokenRecord>, Error> {
        Ok(self.store().list_tokens().await?)
    }

    /// Revoke a token; it stops working at once on this replica, within seconds on others.
    pub async fn revoke(&self, id: &str, actor: &Actor) -> Result<(), Error> {
        let ev = actor.event("token.revoke", "token").object(id);
        self.store().revoke_token(id, &ev, self.pki.now()).await?;
        self.pki.invalidate_tokens();
        Ok(())
    }

    /// The caller presenting `bearer` (the secret of a token), from `source`.
    pub async fn authenticate(
        &self,
        bearer: &str,
        source: Option<String>,
    ) -> Result<Caller, Error> {
        // Not one of ours by its shape: answered without touching the database.
        if !well_formed(bearer) {
            return Err(Error::Unauthorized("unknown token".into()));
        }
        self.authenticate_hash(&hash_token(bearer), source).await
    }

    /// The caller whose token hashes to `hash` (see [`hash_token`]), from `source`: what a
    /// dashboard session carries instead of the secret.
    pub async fn authenticate_hash(
        &self,
        hash: &str,
        source: Option<String>,
    ) -> Result<Caller, Error> {
        let rec = self
            .pki
            .token_by_hash(hash)
            .await?
            .ok_or_else(|| Error::Unauthorized("unknown token".into()))?;
        if rec.revoked_at.is_some() {
            return Err(Error::Unauthorized("this token has been revoked".into()));
        }
        if rec.expires_at.is_some_and(|e| e <= self.pki.now()) {
            return Err(Error::Unauthorized("this token has expired".into()));
        }
        let actor = Actor {
            name: format!("token:{}:{}", rec.name, rec.id),
            source,
        };
        Ok(Caller { token: rec, actor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str, role: Role, profiles: &[&str]) -> NewToken {
        NewToken {
            name: name.into(),
            role,
            profiles: profiles.iter().map(|p| p.to_string()).collect(),
            managed: if role == Role::Agent {
                vec!["web".into()]
            } else {
                vec![]
            },
            expires_in_days: None,
        }
    }

    #[test]
    fn names_are_one_to_a_hundred_characters() {
        assert!(check_new(&new("ci", Role::Admin, &[])).is_ok());
        assert!(check_new(&new("  ", Role::Admin, &[])).is_err());
        assert!(check_new(&new(&"x".repeat(101), Role::Admin, &[])).is_err());
        assert!(check_new(&new(&"x".repeat(100), Role::Viewer, &[])).is_ok());
    }

    #[test]
    fn profiles_are_for_issuer_tokens_and_required_there() {
        assert!(check_new(&new("a", Role::Issuer, &["web"])).is_ok());
        assert!(check_new(&new("a", Role::Issuer, &[])).is_err());
        assert!(check_new(&new("a", Role::Admin, &["web"])).is_err());
        assert!(check_new(&new("a", Role::Viewer, &["web"])).is_err());
    }

    #[test]
    fn tokens_carry_the_prefix_and_hash_to_hex() {
        let (token, hash) = new_token().unwrap();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(hash, hash_token(&token));
        assert_eq!(hash.len(), 64);
        assert_ne!(new_token().unwrap().0, token);
        assert!(well_formed(&token));
        assert!(!well_formed("ck_short"));
        assert!(!well_formed(&token[1..]));
        assert!(!well_formed(&format!("{token}x")));
    }

    fn caller(role: Role, profiles: &[&str]) -> Caller {
        let rec = TokenRecord::new(
            "id".into(),
            "t".into(),
            role,
            profiles.iter().map(|p| p.to_string()).collect(),
            if role == Role::Agent {
                vec!["m-1".into()]
            } else {
                vec![]
            },
            "h".into(),
            time::OffsetDateTime::UNIX_EPOCH,
            None,
            "system".into(),
        );
        Caller {
            token: rec,
            actor: Actor::system(),
        }
    }

    #[test]
    fn roles_decide_what_a_caller_may_do() {
        assert!(caller(Role::Admin, &[]).require_admin().is_ok());
        assert!(caller(Role::Issuer, &["web"]).require_admin().is_err());
        assert!(caller(Role::Admin, &[]).require_issuer_for("web").is_ok());
        assert!(
            caller(Role::Issuer, &["web"])
                .require_issuer_for("web")
                .is_ok()
        );
        assert!(
            caller(Role::Issuer, &["web"])
                .require_issuer_for("db")
                .is_err()
        );
        assert!(caller(Role::Viewer, &[]).require_issuer_for("web").is_err());
    }

    #[test]
    fn agents_reach_only_their_managed_certificates() {
        let agent = caller(Role::Agent, &[]);
        assert!(agent.require_agent_for("m-1").is_ok());
        assert!(agent.require_agent_for("m-2").is_err());
        assert!(agent.require_admin().is_err());
        assert!(agent.require_issuer_for("web").is_err());
        assert!(agent.require_not_agent().is_err());
        assert!(caller(Role::Admin, &[]).require_agent_for("m-1").is_err());
        assert!(caller(Role::Viewer, &[]).require_not_agent().is_ok());
        let mut too_many = new("a", Role::Agent, &[]);
        too_many.managed = (0..=MAX_AGENT_CERTIFICATES)
            .map(|i| i.to_string())
            .collect();
        assert!(check_new(&too_many).is_err());
        assert!(check_new(&new("a", Role::Agent, &[])).is_ok());
        let mut unscoped = new("a", Role::Agent, &[]);
        unscoped.managed.clear();
        assert!(check_new(&unscoped).is_err());
        let mut viewer = new("a", Role::Viewer, &[]);
        viewer.managed = vec!["web".into()];
        assert!(check_new(&viewer).is_err());
    }
}
