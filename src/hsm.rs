//! CA keys in a PKCS#11 token (a hardware security module, or SoftHSM): the adapter behind
//! [`certkeeper_ca::RemoteKey`].
//!
//! A key is generated in the token, private, sensitive and not extractable, and never
//! leaves it: the database keeps only a reference to it, an RFC 7512 PKCS#11 URI naming the
//! token and the key's `CKA_ID`. Signing opens no session per signature: sessions are
//! pooled, and each is used by one thread at a time (a PKCS#11 session must not be shared),
//! so any number of requests may sign at once.

use std::path::Path;
use std::sync::{Arc, Mutex};

use certkeeper_ca::{CaError, KeyAlgorithm, RemoteKey, ecdsa_signature_der};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use crate::config::HsmSettings;

/// How many idle sessions are kept open for reuse.
const MAX_IDLE_SESSIONS: usize = 16;

/// DER of the named-curve OIDs (`CKA_EC_PARAMS`).
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// Whether a key of type `alg` can be generated in a token (ECDSA P-256 and P-384, RSA).
pub fn can_generate(alg: KeyAlgorithm) -> bool {
    matches!(
        alg,
        KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 | KeyAlgorithm::Rsa(2048 | 3072 | 4096)
    )
}

/// What went wrong with the token. The PIN is never part of a message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HsmError(String);

impl From<HsmError> for crate::error::Error {
    fn from(e: HsmError) -> Self {
        crate::error::Error::Internal(e.0)
    }
}

/// Where a CA's key is: the token's label and the key's `CKA_ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    /// The token's label.
    pub token: String,
    /// The key's `CKA_ID`.
    pub id: Vec<u8>,
}

impl KeyRef {
    /// The RFC 7512 URI of the private key (`pkcs11:token=...;id=%..;type=private`), as
    /// the database stores it and as `pkcs11-tool` or OpenSSL's PKCS#11 provider take it.
    pub fn uri(&self) -> String {
        let mut id = String::new();
        for b in &self.id {
            id.push_str(&format!("%{b:02x}"));
        }
        format!(
            "pkcs11:token={};id={id};type=private",
            percent_encode(&self.token)
        )
    }

    /// Read a URI written by [`KeyRef::uri`].
    pub fn parse(uri: &str) -> Result<KeyRef, HsmError> {
        let bad = |why: &str| HsmError(format!("bad PKCS#11 key reference {uri:?}: {why}"));
        let path = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| bad("not a pkcs11: URI"))?;
        let (mut token, mut id) = (None, None);
        for attr in path.split(';') {
            match attr.split_once('=') {
                Some(("token", v)) => {
                    token = Some(
                        String::from_utf8(percent_decode(v).ok_or_else(|| bad("token"))?)
                            .map_err(|_| bad("token is not UTF-8"))?,
                    );
                }
                Some(("id", v)) => id = Some(percent_decode(v).ok_or_else(|| bad("id"))?),
                _ => {}
            }
        }
        Ok(KeyRef {
            token: token.ok_or_else(|| bad("no token"))?,
            id: id.filter(|i| !i.is_empty()).ok_or_else(|| bad("no id"))?,
        })
    }
}

/// RFC 7512 percent-encoding of a path attribute value: unreserved characters stay.
fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The token, logged in, with its pool of sessions.
struct Inner {
    ctx: Pkcs11,
    slot: Slot,
    label: String,
    pin: AuthPin,
    idle: Mutex<Vec<Session>>,
}

/// An open, logged-in PKCS#11 token.
#[derive(Clone)]
pub struct Token {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.inner.label)
            .finish_non_exhaustive()
    }
}

fn ck(what: &str) -> impl Fn(CkError) -> HsmError + '_ {
    move |e| HsmError(format!("PKCS#11 {what}: {e}"))
}

impl Token {
    /// Load the module, find the token by its label and log in. Each failure names what is
    /// missing: the module file, the token, or a PIN the token refused.
    pub fn open(settings: &HsmSettings) -> Result<Token, HsmError> {
        let module = &settings.module;
        if !module.exists() {
            return Err(HsmError(format!(
                "the PKCS#11 module {} (hsm.module) does not exist",
                module.display()
            )));
        }
        let ctx = Pkcs11::new(module).map_err(|e| {
            HsmError(format!(
                "loading the PKCS#11 module {}: {e}",
                module.display()
            ))
        })?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(ck("initialize")(e)),
        }
        let slot = find_token(&ctx, module, &settings.token_label)?;
        let pin = AuthPin::from(settings.pin.expose().to_string());
        let session = ctx.open_rw_session(slot).map_err(ck("opening a session"))?;
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid, _)) => {
                return Err(HsmError(format!(
                    "the PKCS#11 token {:?} refused the PIN (hsm.pin or hsm.pin_file)",
                    settings.token_label
                )));
            }
            Err(e) => return Err(ck("login")(e)),
        }
        Ok(Token {
            inner: Arc::new(Inner {
                ctx,
                slot,
                label: settings.token_label.clone(),
                pin,
                idle: Mutex::new(vec![session]),
            }),
        })
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// Generate a key pair of type `alg` in the token: the private key is a token object,
    /// private, sensitive, never extractable, for signing only; `label` names both halves.
    pub fn generate(&self, alg: KeyAlgorithm, label: &str) -> Result<(KeyRef, TokenKey), HsmError> {
        let id = {
            use aws_lc_rs::rand::SecureRandom;
            let mut id = vec![0u8; 16];
            aws_lc_rs::rand::SystemRandom::new()
                .fill(&mut id)
                .map_err(|_| HsmError("random generator failed".into()))?;
            id
        };
        let common = [
            Attribute::Token(true),
            Attribute::Id(id.clone()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let (mechanism, mut public) = match alg {
            KeyAlgorithm::EcdsaP256 => (
                Mechanism::EccKeyPairGen,
                vec![Attribute::EcParams(P256_PARAMS.to_vec())],
            ),
            KeyAlgorithm::EcdsaP384 => (
                Mechanism::EccKeyPairGen,
                vec![Attribute::EcParams(P384_PARAMS.to_vec())],
            ),
            KeyAlgorithm::Rsa(bits @ (2048 | 3072 | 4096)) => (
                Mechanism::RsaPkcsKeyPairGen,
                vec![
                    Attribute::ModulusBits(u64::from(bits).into()),
                    Attribute::PublicExponent(vec![1, 0, 1]),
                ],
            ),
            other => {
                return Err(HsmError(format!(
                    "a {other} key cannot be generated in the token (use ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096)"
                )));
            }
        };
        public.extend(common.iter().cloned());
        public.extend([
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::Derive(false),
        ]);
        let mut private = common.to_vec();
        private.extend([
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
        ]);
        let (_, handle) = self.inner.with_session("generating a key pair", |s| {
            s.generate_key_pair(&mechanism, &public, &private)
        })?;
        let key_ref = KeyRef {
            token: self.inner.label.clone(),
            id,
        };
        let key = self.load(&key_ref, handle)?;
        Ok((key_ref, key))
    }

    /// The key a reference names; refused when it names another token or the token does
    /// not hold it.
    pub fn key(&self, key_ref: &KeyRef) -> Result<TokenKey, HsmError> {
        if key_ref.token != self.inner.label {
            return Err(HsmError(format!(
                "the key is in the PKCS#11 token {:?}, but hsm.token_label is {:?}",
                key_ref.token, self.inner.label
            )));
        }
        let handle = self
            .find(ObjectClass::PRIVATE_KEY, &key_ref.id)?
            .ok_or_else(|| {
                HsmError(format!(
                    "the PKCS#11 token {:?} has no private key {}",
                    self.inner.label,
                    key_ref.uri()
                ))
            })?;
        self.load(key_ref, handle)
    }

    /// Remove both halves of a key (a CA whose creation failed after its key was made).
    pub fn destroy(&self, key_ref: &KeyRef) -> Result<(), HsmError> {
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
            if let Some(h) = self.find(class, &key_ref.id)? {
                self.inner
                    .with_session("destroying a key", |s| s.destroy_object(h))?;
            }
        }
        Ok(())
    }

    fn find(&self, class: ObjectClass, id: &[u8]) -> Result<Option<ObjectHandle>, HsmError> {
        let template = [Attribute::Class(class), Attribute::Id(id.to_vec())];
        let found = self
            .inner
            .with_session("searching the token", |s| s.find_objects(&template))?;
        Ok(found.into_iter().next())
    }

    /// The key behind a private key handle: its type and, from its public half, the public
    /// key as X.509 writes it.
    fn load(&self, key_ref: &KeyRef, handle: ObjectHandle) -> Result<TokenKey, HsmError> {
        let public = self
            .find(ObjectClass::PUBLIC_KEY, &key_ref.id)?
            .ok_or_else(|| {
                HsmError(format!(
                    "the PKCS#11 token {:?} has no public key beside {}",
                    self.inner.label,
                    key_ref.uri()
                ))
            })?;
        let attrs = self.inner.with_session("reading the public key", |s| {
            s.get_attributes(
                public,
                &[
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::EcPoint,
                    AttributeType::Modulus,
                    AttributeType::PublicExponent,
                ],
            )
        })?;
        let (mut key_type, mut params, mut point, mut modulus, mut exponent) =
            (None, None, None, None, None);
        for a in attrs {
            match a {
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                Attribute::Modulus(m) => modulus = Some(m),
                Attribute::PublicExponent(e) => exponent = Some(e),
                _ => {}
            }
        }
        let unsupported = || HsmError(format!("{} is not a supported CA key", key_ref.uri()));
        let (alg, public_raw) = match key_type {
            Some(KeyType::EC) => {
                let (alg, len) = match params.as_deref() {
                    Some(P256_PARAMS) => (KeyAlgorithm::EcdsaP256, 65),
                    Some(P384_PARAMS) => (KeyAlgorithm::EcdsaP384, 97),
                    _ => return Err(unsupported()),
                };
                (alg, ec_point(point.ok_or_else(unsupported)?, len)?)
            }
            Some(KeyType::RSA) => {
                let (m, e) = (
                    modulus.ok_or_else(unsupported)?,
                    exponent.ok_or_else(unsupported)?,
                );
                let bits = (m.iter().skip_while(|b| **b == 0).count() * 8) as u32;
                let der = yasna::construct_der(|w| {
                    w.write_sequence(|seq| {
                        seq.next().write_bigint_bytes(&m, true);
                        seq.next().write_bigint_bytes(&e, true);
                    })
                });
                (KeyAlgorithm::Rsa(bits), der)
            }
            _ => return Err(unsupported()),
        };
        Ok(TokenKey {
            inner: self.inner.clone(),
            handle,
            alg,
            public_raw,
        })
    }
}

/// The uncompressed point of `CKA_EC_POINT`, which holds it DER-wrapped in an OCTET STRING
/// (PKCS#11 2.40 §2.3.3); some modules give the bare point.
fn ec_point(value: Vec<u8>, len: usize) -> Result<Vec<u8>, HsmError> {
    if value.len() == len + 2 && value[0] == 0x04 && usize::from(value[1]) == len {
        return Ok(value[2..].to_vec());
    }
    if value.len() == len + 3 && value[..2] == [0x04, 0x81] && usize::from(value[2]) == len {
        return Ok(value[3..].to_vec());
    }
    if value.len() == len && value[0] == 0x04 {
        return Ok(value);
    }
    Err(HsmError(format!(
        "the token's EC point ({} bytes) is not an uncompressed point",
        value.len()
    )))
}

impl Inner {
    /// Run `f` on an idle session (or a new one), logging in again once if the token
    /// forgot the login (it was reset), then keep the session for the next caller.
    fn with_session<T>(
        &self,
        what: &str,
        f: impl Fn(&Session) -> Result<T, CkError>,
    ) -> Result<T, HsmError> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let session = match pooled {
            Some(s) => s,
            None => self
                .ctx
                .open_rw_session(self.slot)
                .map_err(ck("opening a session"))?,
        };
        let result = match f(&session) {
            Err(CkError::Pkcs11(RvError::UserNotLoggedIn, _)) => {
                match session.login(UserType::User, Some(&self.pin)) {
                    Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => f(&session),
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_SESSIONS {
            idle.push(session);
        }
        result.map_err(ck(what))
    }
}

fn find_token(ctx: &Pkcs11, module: &Path, label: &str) -> Result<Slot, HsmError> {
    let mut seen = Vec::new();
    for slot in ctx
        .get_slots_with_initialized_token()
        .map_err(ck("listing slots"))?
    {
        let info = ctx
            .get_token_info(slot)
            .map_err(ck("reading token information"))?;
        let found = info.label().trim_end();
        if found == label {
            return Ok(slot);
        }
        seen.push(format!("{found:?}"));
    }
    Err(HsmError(format!(
        "no PKCS#11 token labelled {label:?} (hsm.token_label) in {}; tokens present: {}",
        module.display(),
        if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join(", ")
        }
    )))
}

/// A CA key in the token: signs through a pooled session.
pub struct TokenKey {
    inner: Arc<Inner>,
    handle: ObjectHandle,
    alg: KeyAlgorithm,
    public_raw: Vec<u8>,
}

impl RemoteKey for TokenKey {
    fn key_algorithm(&self) -> KeyAlgorithm {
        self.alg
    }

    fn public_key_raw(&self) -> &[u8] {
        &self.public_raw
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CaError> {
        use aws_lc_rs::digest::{SHA256, SHA384, digest};
        let (mechanism, data) = match self.alg {
            KeyAlgorithm::EcdsaP256 => {
                (Mechanism::Ecdsa, digest(&SHA256, message).as_ref().to_vec())
            }
            KeyAlgorithm::EcdsaP384 => {
                (Mechanism::Ecdsa, digest(&SHA384, message).as_ref().to_vec())
            }
            _ => (Mechanism::Sha256RsaPkcs, message.to_vec()),
        };
        let signed = self
            .inner
            .with_session("signing", |s| s.sign(&mechanism, self.handle, &data));
        let raw = signed.map_err(|e| {
            tracing::error!(token = %self.inner.label, error = %e, "the CA key's token failed to sign");
            CaError::Crypto(e.to_string())
        })?;
        match self.alg {
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => ecdsa_signature_der(&raw),
            _ => Ok(raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_references_round_trip_as_pkcs11_uris() {
        let r = KeyRef {
            token: "certkeeper CAs".into(),
            id: vec![0x00, 0xab, 0x10],
        };
        assert_eq!(
            r.uri(),
            "pkcs11:token=certkeeper%20CAs;id=%00%ab%10;type=private"
        );
        assert_eq!(KeyRef::parse(&r.uri()).unwrap(), r);
        assert!(KeyRef::parse("pkcs11:token=x").is_err());
        assert!(KeyRef::parse("file:x").is_err());
        assert!(KeyRef::parse("pkcs11:token=x;id=%zz").is_err());
    }

    #[test]
    fn ec_points_are_unwrapped() {
        let point: Vec<u8> = std::iter::once(4).chain([7u8; 64]).collect();
        let mut wrapped = vec![0x04, 65];
        wrapped.extend(&point);
        assert_eq!(ec_point(wrapped, 65).unwrap(), point);
        assert_eq!(ec_point(point.clone(), 65).unwrap(), point);
        assert!(ec_point(vec![4, 1, 2], 65).is_err());
    }
}
