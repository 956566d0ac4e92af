//! Profiles: the issuance templates with their policy, each bound to one active CA.

use std::sync::Arc;

use certkeeper_ca::Profile;
use serde_json::Value;

use crate::error::Error;
use crate::services::pki::{Actor, Pki};
use crate::services::ports::ProfileStore;
use crate::store::{ProfileRecord, StoreError, new_id};

/// Split a profile document into its `ca` and a validated policy. With `name`, the
/// document's `name` must be absent or equal (a profile cannot be renamed).
fn parse_document(mut body: Value, name: Option<&str>) -> Result<(Option<String>, Profile), Error> {
    let obj = body
        .as_object_mut()
        .ok_or_else(|| Error::BadRequest("the body must be a JSON object".into()))?;
    let ca = match obj.remove("ca") {
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            return Err(Error::BadRequest(
                "\"ca\" must be a string (CA id or name)".into(),
            ));
        }
        None => None,
    };
    if let Some(name) = name {
        match obj.get("name") {
            Some(Value::String(n)) if n != name => {
                return Err(Error::BadRequest(
                    "a profile cannot be renamed: \"name\" differs from the path".into(),
                ));
            }
            _ => {
                obj.insert("name".into(), Value::String(name.to_string()));
            }
        }
    }
    let policy: Profile = serde_json::from_value(body)
        .map_err(|e| Error::BadRequest(format!("invalid profile: {e}")))?;
    policy
        .validate()
        .map_err(|v| Error::BadRequest(format!("invalid profile: {}: {}", v.rule, v.detail)))?;
    Ok((ca, policy))
}

/// Profiles: create, change, delete, read; every change clears the issuance cache.
#[derive(Debug, Clone)]
pub struct ProfileService {
    pki: Arc<Pki>,
}

impl ProfileService {
    /// The service over the registration authority's store and caches.
    pub fn new(pki: Arc<Pki>) -> ProfileService {
        ProfileService { pki }
    }

    fn store(&self) -> &(impl ProfileStore + use<>) {
        self.pki.store()
    }

    /// Every profile.
    pub async fn list(&self) -> Result<Vec<ProfileRecord>, Error> {
        Ok(self.store().list_profiles().await?)
    }

    /// A profile by name or id.
    pub async fn get(&self, name: &str) -> Result<ProfileRecord, Error> {
        Ok(self.store().get_profile(name).await?)
    }

    /// The id of the active CA or external issuer a profile is bound to; an unknown CA is
    /// the caller's mistake.
    async fn resolve_ca(&self, ca: &str) -> Result<String, Error> {
        match self.pki.store().get_ca(ca).await {
            Ok(c) if c.name == crate::services::pki::SERVER_CA => Err(Error::BadRequest(format!(
                "CA {:?} signs only the server's own HTTPS certificate; no profile may use it",
                c.name
            ))),
            Ok(c) if c.status == "active" => Ok(c.id),
            // An external issuer (an upstream CA) stands as a CA row of its own.
            Ok(c) if c.kind == "external" && self.pki.store().get_issuer(&c.id).await.is_ok() => {
                Ok(c.id)
            }
            Ok(c) => Err(Error::BadRequest(format!(
                "CA {:?} is {}, not active",
                c.name, c.status
            ))),
            Err(StoreError::NotFound(_)) => Err(Error::BadRequest(format!("no CA {ca:?}"))),
            Err(e) => Err(e.into()),
        }
    }

    /// Now, to the second, as it is stored (so the answer is what a later read shows).
    fn now_stored(&self) -> time::OffsetDateTime {
        let now = self.pki.now();
        now.replace_nanosecond(0).unwrap_or(now)
    }

    /// Create a profile from its document: the policy fields plus `ca` (id or name).
    pub async fn create(&self, document: Value, actor: &Actor) -> Result<ProfileRecord, Error> {
        let (ca, policy) = parse_document(document, None)?;
        let ca = ca.ok_or_else(|| {
            Error::BadRequest("\"ca\" (the signing CA's id or name) is required".into())
        })?;
        let ca_id = self.resolve_ca(&ca).await?;
        let now = self.now_stored();
        let rec = ProfileRecord {
            id: new_id(),
            ca_id,
            policy,
            created_at: now,
            updated_at: now,
        };
        let ev = actor
            .event("profile.create", "profile")
            .object(&rec.id)
            .detail(serde_json::json!({"name": rec.policy.name}));
        self.store().insert_profile(&rec, &ev).await?;
        self.pki.invalidate_profiles();
        Ok(rec)
    }

    /// Replace the policy (and, with `ca`, the CA) of the profile `name` (name or id).
    pub async fn update(
        &self,
        name: &str,
        document: Value,
        actor: &Actor,
    ) -> Result<ProfileRecord, Error> {
        let existing = self.store().get_profile(name).await?;
        let (ca, policy) = parse_document(document, Some(&existing.policy.name))?;
        let ca_id = match ca {
            Some(c) => self.resolve_ca(&c).await?,
            None => existing.ca_id.clone(),
        };
        let rec = ProfileRecord {
            id: existing.id,
            ca_id,
            policy,
            created_at: existing.created_at,
            updated_at: self.now_stored(),
        };
        let ev = actor
            .event("profile.update", "profile")
            .object(&rec.id)
            .detail(serde_json::json!({"name": rec.policy.name}));
        self.store().update_profile(&rec, &ev).await?;
        self.pki.invalidate_profiles();
        Ok(rec)
    }

    /// Delete the profile `name` (name or id).
    pub async fn delete(&self, name: &str, actor: &Actor) -> Result<(), Error> {
        let existing = self.store().get_profile(name).await?;
        let ev = actor
            .event("profile.delete", "profile")
            .object(&existing.id)
            .detail(serde_json::json!({"name": existing.policy.name}));
        self.store()
            .delete_profile(&existing.policy.name, &ev, self.pki.now())
            .await?;
        self.pki.invalidate_profiles();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_split_into_ca_and_policy() {
        let (ca, p) = parse_document(json!({"name": "web", "ca": "root"}), None).unwrap();
        assert_eq!(ca.as_deref(), Some("root"));
        assert_eq!(p.name, "web");
        assert!(parse_document(json!({"name": "web", "ca": 1}), None).is_err());
        assert!(parse_document(json!([]), None).is_err());
    }

    #[test]
    fn a_profile_keeps_its_name() {
        let (_, p) = parse_document(json!({}), Some("web")).unwrap();
        assert_eq!(p.name, "web");
        assert!(parse_document(json!({"name": "other"}), Some("web")).is_err());
    }
}
