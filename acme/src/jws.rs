//! Flattened-JSON JWS (RFC 7515 §7.2.2) as ACME uses it (RFC 8555 §6.2), JWKs and their
//! thumbprints (RFC 7638). Signatures are checked with aws-lc-rs directly.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

use crate::{Problem, ProblemType};

/// base64url without padding.
pub fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decode base64url without padding; `what` names the field for the error.
pub fn b64_decode(s: &str, what: &str) -> Result<Vec<u8>, Problem> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| Problem::malformed(format!("{what} is not base64url without padding")))
}

/// A public key as a JWK. Only asymmetric keys: `oct` keys are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicJwk {
    /// NIST P-256 (`ES256`).
    P256 {
        /// X coordinate (32 bytes).
        x: Vec<u8>,
        /// Y coordinate (32 bytes).
        y: Vec<u8>,
    },
    /// NIST P-384 (`ES384`).
    P384 {
        /// X coordinate (48 bytes).
        x: Vec<u8>,
        /// Y coordinate (48 bytes).
        y: Vec<u8>,
    },
    /// RSA (`RS256`, `PS256`).
    Rsa {
        /// Modulus, big-endian.
        n: Vec<u8>,
        /// Public exponent, big-endian.
        e: Vec<u8>,
    },
    /// Ed25519 (`EdDSA`).
    Ed25519 {
        /// The 32-byte public key.
        x: Vec<u8>,
    },
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

fn field(v: &Option<String>, name: &str) -> Result<Vec<u8>, Problem> {
    let s = v
        .as_deref()
        .ok_or_else(|| Problem::new(ProblemType::BadPublicKey, format!("JWK has no {name:?}")))?;
    b64_decode(s, &format!("JWK {name:?}"))
}

fn sized(v: Vec<u8>, len: usize, what: &str) -> Result<Vec<u8>, Problem> {
    if v.len() != len {
        return Err(Problem::new(
            ProblemType::BadPublicKey,
            format!("JWK {what} must be {len} bytes"),
        ));
    }
    Ok(v)
}

fn strip_zeros(v: &[u8]) -> &[u8] {
    let i = v
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(v.len().saturating_sub(1));
    &v[i..]
}

impl PublicJwk {
    /// Parse a JWK object.
    pub fn from_json(v: &Value) -> Result<PublicJwk, Problem> {
        let raw: RawJwk = serde_json::from_value(v.clone())
            .map_err(|e| Problem::new(ProblemType::BadPublicKey, format!("JWK: {e}")))?;
        match (raw.kty.as_str(), raw.crv.as_deref()) {
            ("EC", Some("P-256")) => Ok(PublicJwk::P256 {
                x: sized(field(&raw.x, "x")?, 32, "x")?,
                y: sized(field(&raw.y, "y")?, 32, "y")?,
            }),
            ("EC", Some("P-384")) => Ok(PublicJwk::P384 {
                x: sized(field(&raw.x, "x")?, 48, "x")?,
                y: sized(field(&raw.y, "y")?, 48, "y")?,
            }),
            ("OKP", Some("Ed25519")) => Ok(PublicJwk::Ed25519 {
                x: sized(field(&raw.x, "x")?, 32, "x")?,
            }),
            ("RSA", _) => {
                let n = field(&raw.n, "n")?;
                let e = field(&raw.e, "e")?;
                let bits = strip_zeros(&n).len() * 8;
                if !(2048..=8192).contains(&bits) {
                    return Err(Problem::new(
                        ProblemType::BadPublicKey,
                        format!("RSA keys must be 2048 to 8192 bits, not {bits}"),
                    ));
                }
                Ok(PublicJwk::Rsa { n, e })
            }
            ("oct", _) => Err(Problem::new(
                ProblemType::BadPublicKey,
                "symmetric (oct) keys cannot be account keys",
            )),
            (kty, crv) => Err(Problem::new(
                ProblemType::BadPublicKey,
                format!("unsupported key type {kty} {}", crv.unwrap_or("")),
            )),
        }
    }

    /// The JWK's required members in RFC 7638 canonical form.
    pub fn canonical_json(&self) -> String {
        match self {
            PublicJwk::P256 { x, y } => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                b64(x),
                b64(y)
            ),
            PublicJwk::P384 { x, y } => format!(
                r#"{{"crv":"P-384","kty":"EC","x":"{}","y":"{}"}}"#,
                b64(x),
                b64(y)
            ),
            PublicJwk::Rsa { n, e } => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64(strip_zeros(e)),
                b64(strip_zeros(n))
            ),
            PublicJwk::Ed25519 { x } => {
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x))
            }
        }
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url.
    pub fn thumbprint(&self) -> String {
        b64(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.canonical_json().as_bytes())
                .as_ref(),
        )
    }

    /// The key as the contents of an X.509 SubjectPublicKeyInfo's `subjectPublicKey` bit
    /// string, to compare with a certificate's key.
    pub fn subject_public_key(&self) -> Vec<u8> {
        match self {
            PublicJwk::P256 { x, y } | PublicJwk::P384 { x, y } => {
                let mut v = vec![4u8];
                v.extend_from_slice(x);
                v.extend_from_slice(y);
                v
            }
            PublicJwk::Ed25519 { x } => x.clone(),
            PublicJwk::Rsa { n, e } => {
                let mut body = der_uint(n);
                body.extend(der_uint(e));
                let mut out = vec![0x30];
                out.extend(der_len(body.len()));
                out.extend(body);
                out
            }
        }
    }

    fn verify(&self, alg: &str, message: &[u8], sig: &[u8]) -> Result<(), Problem> {
        let ok = match (alg, self) {
            ("ES256", PublicJwk::P256 { .. }) => UnparsedPublicKey::new(
                &signature::ECDSA_P256_SHA256_FIXED,
                self.subject_public_key(),
            )
            .verify(message, sig)
            .is_ok(),
            ("ES384", PublicJwk::P384 { .. }) => UnparsedPublicKey::new(
                &signature::ECDSA_P384_SHA384_FIXED,
                self.subject_public_key(),
            )
            .verify(message, sig)
            .is_ok(),
            ("EdDSA", PublicJwk::Ed25519 { x }) => UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(message, sig)
                .is_ok(),
            ("RS256", PublicJwk::Rsa { n, e }) => RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            ("PS256", PublicJwk::Rsa { n, e }) => RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PSS_2048_8192_SHA256, message, sig)
                .is_ok(),
            ("ES256" | "ES384" | "EdDSA" | "RS256" | "PS256", _) => {
                return Err(Problem::new(
                    ProblemType::BadSignatureAlgorithm,
                    format!("algorithm {alg} does not match the key's type or curve"),
                ));
            }
            _ => {
                return Err(Problem::new(
                    ProblemType::BadSignatureAlgorithm,
                    format!(
                        "unsupported algorithm {alg:?}; use ES256, ES384, RS256, PS256 or EdDSA"
                    ),
                ));
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Problem::malformed("JWS signature verification failed"))
        }
    }
}

fn der_len(len: usize) -> Vec<u8> {
    if len < 128 {
        vec![len as u8]
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        let mut v = vec![0x80 | bytes.len() as u8];
        v.extend(bytes);
        v
    }
}

fn der_uint(v: &[u8]) -> Vec<u8> {
    let v = strip_zeros(v);
    let mut content = Vec::with_capacity(v.len() + 1);
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(v);
    let mut out = vec![0x02];
    out.extend(der_len(content.len()));
    out.extend(content);
    out
}

/// Check an HS256 MAC (external account binding only).
pub fn hmac_sha256_verify(key: &[u8], message: &[u8], mac: &[u8]) -> bool {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::verify(&k, message, mac).is_ok()
}

/// Which key a JWS names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// An embedded key (newAccount, revocation by certificate key, key change inner JWS).
    Jwk(PublicJwk),
    /// An account URL.
    Kid(String),
}

/// The protected header.
#[derive(Debug, Clone)]
pub struct JwsHeader {
    /// `alg`.
    pub alg: String,
    /// `nonce` (absent only in inner JWSs).
    pub nonce: Option<String>,
    /// `url`.
    pub url: String,
    /// `jwk` or `kid`.
    pub key: KeyRef,
    /// The raw `jwk` object, when there is one.
    pub jwk_json: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
    #[serde(default)]
    header: Option<Value>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    nonce: Option<String>,
    url: Option<String>,
    jwk: Option<Value>,
    kid: Option<String>,
    crit: Option<Value>,
}

/// A parsed (not yet verified) flattened JWS.
#[derive(Debug, Clone)]
pub struct Jws {
    /// The protected header.
    pub header: JwsHeader,
    /// The payload bytes; empty for POST-as-GET.
    pub payload: Vec<u8>,
    protected_b64: String,
    payload_b64: String,
    signature: Vec<u8>,
}

impl Jws {
    /// Parse a request body. `allow_hmac` permits HS256 with a `kid` (the EAB inner JWS).
    pub fn parse(body: &[u8], allow_hmac: bool) -> Result<Jws, Problem> {
        let f: Flattened = serde_json::from_slice(body)
            .map_err(|e| Problem::malformed(format!("request is not a flattened JWS: {e}")))?;
        if f.header.is_some() {
            return Err(Problem::malformed(
                "unprotected JWS headers are not allowed",
            ));
        }
        let protected = b64_decode(&f.protected, "protected header")?;
        let raw: RawHeader = serde_json::from_slice(&protected)
            .map_err(|e| Problem::malformed(format!("protected header: {e}")))?;
        // RFC 7515 §4.1.11: a recipient must refuse `crit` extensions it does not
        // understand, and this server understands none.
        if raw.crit.is_some() {
            return Err(Problem::malformed(
                "the protected header has a crit member; no JWS extensions are supported",
            ));
        }
        let alg = raw
            .alg
            .ok_or_else(|| Problem::malformed("protected header has no alg"))?;
        let hmac = alg.starts_with("HS");
        if alg == "none" || (hmac && !(allow_hmac && alg == "HS256")) {
            return Err(Problem::new(
                ProblemType::BadSignatureAlgorithm,
                format!("algorithm {alg:?} is not allowed here"),
            ));
        }
        let url = raw
            .url
            .ok_or_else(|| Problem::malformed("protected header has no url"))?;
        let key = match (&raw.jwk, raw.kid) {
            (Some(_), Some(_)) => {
                return Err(Problem::malformed("protected header has both jwk and kid"));
            }
            (Some(j), None) => KeyRef::Jwk(PublicJwk::from_json(j)?),
            (None, Some(k)) => KeyRef::Kid(k),
            (None, None) => {
                return Err(Problem::malformed(
                    "protected header has neither jwk nor kid",
                ));
            }
        };
        let payload = b64_decode(&f.payload, "payload")?;
        let signature = b64_decode(&f.signature, "signature")?;
        Ok(Jws {
            header: JwsHeader {
                alg,
                nonce: raw.nonce,
                url,
                key,
                jwk_json: raw.jwk,
            },
            payload,
            protected_b64: f.protected,
            payload_b64: f.payload,
            signature,
        })
    }

    fn signing_input(&self) -> Vec<u8> {
        format!("{}.{}", self.protected_b64, self.payload_b64).into_bytes()
    }

    /// Verify the signature with an account key.
    pub fn verify(&self, key: &PublicJwk) -> Result<(), Problem> {
        key.verify(&self.header.alg, &self.signing_input(), &self.signature)
    }

    /// Verify an HS256 MAC (the EAB inner JWS).
    pub fn verify_hmac(&self, key: &[u8]) -> Result<(), Problem> {
        if self.header.alg != "HS256" {
            return Err(Problem::new(
                ProblemType::BadSignatureAlgorithm,
                "external account binding must use HS256",
            ));
        }
        if hmac_sha256_verify(key, &self.signing_input(), &self.signature) {
            Ok(())
        } else {
            Err(Problem::unauthorized(
                "external account binding MAC does not verify",
            ))
        }
    }

    /// Whether the payload is empty (POST-as-GET).
    pub fn is_post_as_get(&self) -> bool {
        self.payload_b64.is_empty()
    }

    /// The payload as JSON (an empty payload is refused).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Problem> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| Problem::malformed(format!("payload: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_thumbprint() {
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"
        });
        let k = PublicJwk::from_json(&jwk).unwrap();
        assert_eq!(
            k.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn refuses_symmetric_and_mismatched() {
        assert_eq!(
            PublicJwk::from_json(&serde_json::json!({"kty":"oct","k":"AAAA"}))
                .unwrap_err()
                .kind,
            ProblemType::BadPublicKey
        );
        let k = PublicJwk::Ed25519 { x: vec![0; 32] };
        assert_eq!(
            k.verify("ES256", b"m", b"s").unwrap_err().kind,
            ProblemType::BadSignatureAlgorithm
        );
        assert_eq!(
            k.verify("HS256", b"m", b"s").unwrap_err().kind,
            ProblemType::BadSignatureAlgorithm
        );
    }

    #[test]
    fn es256_round_trip() {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let kp =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let pubk = kp.public_key().as_ref();
        let jwk = serde_json::json!({"kty":"EC","crv":"P-256","x": b64(&pubk[1..33]), "y": b64(&pubk[33..])});
        let protected = b64(serde_json::json!({"alg":"ES256","jwk":jwk,"nonce":"n","url":"https://x/acme/new-account"}).to_string().as_bytes());
        let payload = b64(b"{}");
        let sig = kp
            .sign(&rng, format!("{protected}.{payload}").as_bytes())
            .unwrap();
        let body = serde_json::json!({"protected": protected, "payload": payload, "signature": b64(sig.as_ref())});
        let jws = Jws::parse(body.to_string().as_bytes(), false).unwrap();
        let KeyRef::Jwk(k) = &jws.header.key else {
            panic!()
        };
        jws.verify(k).unwrap();
        let mut forged = body.clone();
        forged["payload"] = b64(b"{\"x\":1}").into();
        let jws = Jws::parse(forged.to_string().as_bytes(), false).unwrap();
        assert_eq!(jws.verify(k).unwrap_err().kind, ProblemType::Malformed);
    }

    #[test]
    fn a_crit_header_is_refused() {
        let jwk =
            serde_json::json!({"kty":"EC","crv":"P-256","x": b64(&[1; 32]), "y": b64(&[2; 32])});
        let body = |header: serde_json::Value| {
            serde_json::json!({"protected": b64(header.to_string().as_bytes()), "payload": "", "signature": b64(b"sig")})
                .to_string()
        };
        let plain = serde_json::json!({"alg":"ES256","jwk":jwk,"nonce":"n","url":"https://x/a"});
        Jws::parse(body(plain.clone()).as_bytes(), false).unwrap();
        for crit in [
            serde_json::json!(["b64"]),
            serde_json::json!([]),
            serde_json::json!("exp"),
        ] {
            let mut h = plain.clone();
            h["crit"] = crit;
            if h["crit"] == serde_json::json!(["b64"]) {
                h["b64"] = false.into();
            }
            let p = Jws::parse(body(h).as_bytes(), false).unwrap_err();
            assert_eq!(p.kind, ProblemType::Malformed, "{p}");
            assert!(p.detail.contains("crit"), "{p}");
        }
    }
}
