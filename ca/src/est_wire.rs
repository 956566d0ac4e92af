//! EST wire formats (RFC 7030): certs-only CMS SignedData, CSR attributes, base64 bodies,
//! and the `multipart/mixed` answer of server-side key generation.

use crate::KeyAlgorithm;
use base64::Engine;
use yasna::models::ObjectIdentifier;
use yasna::{DERWriter, Tag};

const OID_SIGNED_DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 2];
const OID_DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 1];
const OID_EC_PUBLIC_KEY: &[u64] = &[1, 2, 840, 10045, 2, 1];
const OID_SECP256R1: &[u64] = &[1, 2, 840, 10045, 3, 1, 7];
const OID_SECP384R1: &[u64] = &[1, 3, 132, 0, 34];
const OID_SECP521R1: &[u64] = &[1, 3, 132, 0, 35];
const OID_RSA_ENCRYPTION: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];
const OID_ED25519: &[u64] = &[1, 3, 101, 112];
const OID_ECDSA_WITH_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
const OID_SHA256_WITH_RSA: &[u64] = &[1, 2, 840, 113549, 1, 1, 11];
/// PKCS#9 challengePassword: where a client puts its channel-binding value.
const OID_CHALLENGE_PASSWORD: &[u64] = &[1, 2, 840, 113549, 1, 9, 7];

fn oid(arcs: &[u64]) -> ObjectIdentifier {
    ObjectIdentifier::from_slice(arcs)
}

/// A degenerate ("certs-only") CMS SignedData (RFC 5652 §5, RFC 7030 §4.1.3) carrying
/// `certs`: no content, no signers.
pub fn certs_only(certs: &[&[u8]]) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_oid(&oid(OID_SIGNED_DATA));
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|w| {
                    w.next().write_u8(1);
                    w.next().write_set(|_| {});
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&oid(OID_DATA));
                    });
                    w.next().write_tagged_implicit(Tag::context(0), |w| {
                        w.write_set_of(|w| {
                            for c in certs {
                                w.next().write_der(c);
                            }
                        });
                    });
                    w.next().write_set(|_| {});
                });
            });
        });
    })
}

/// The certificates of a certs-only CMS SignedData (BER or DER), in the order sent.
pub fn parse_certs_only(cms: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    // yasna skips elements without checking their lengths (crate::der).
    if !crate::der::lengths_fit(cms, true) {
        return Err("malformed CMS: an element's length does not fit".into());
    }
    yasna::parse_ber(cms, |r| {
        r.read_sequence(|r| {
            let content_type = r.next().read_oid()?;
            if content_type != oid(OID_SIGNED_DATA) {
                return Err(yasna::ASN1Error::new(yasna::ASN1ErrorKind::Invalid));
            }
            r.next().read_tagged(Tag::context(0), |r| {
                r.read_sequence(|r| {
                    let _version = r.next().read_u64()?;
                    let _digests = r.next().read_der()?;
                    let _content = r.next().read_der()?;
                    let certs = r
                        .read_optional(|r| {
                            r.read_tagged_implicit(Tag::context(0), |r| {
                                r.collect_set_of(|r| r.read_der())
                            })
                        })?
                        .unwrap_or_default();
                    let _crls = r.read_optional(|r| {
                        if r.lookahead_tag()? == Tag::context(1) {
                            r.read_der()
                        } else {
                            Err(yasna::ASN1Error::new(yasna::ASN1ErrorKind::Invalid))
                        }
                    })?;
                    let _signers = r.next().read_der()?;
                    Ok(certs)
                })
            })
        })
    })
    .map_err(|e| format!("not a certs-only CMS SignedData: {e}"))
}

fn write_key_type(w: DERWriter<'_>, alg: KeyAlgorithm) {
    let curve = match alg {
        KeyAlgorithm::EcdsaP256 => OID_SECP256R1,
        KeyAlgorithm::EcdsaP384 => OID_SECP384R1,
        KeyAlgorithm::EcdsaP521 => OID_SECP521R1,
        KeyAlgorithm::Ed25519 => return w.write_oid(&oid(OID_ED25519)),
        KeyAlgorithm::Rsa(_) => return w.write_oid(&oid(OID_RSA_ENCRYPTION)),
    };
    // Attribute { id-ecPublicKey, { namedCurve } } (RFC 7030 §4.5.2's example).
    w.write_sequence(|w| {
        w.next().write_oid(&oid(OID_EC_PUBLIC_KEY));
        w.next().write_set(|w| w.next().write_oid(&oid(curve)));
    });
}

/// The DER `CsrAttrs` (RFC 7030 §4.5.2) for a profile's key types, and the
/// challengePassword OID when channel binding is wanted. `None` when there is nothing to ask.
pub fn csr_attrs(key_types: &[KeyAlgorithm], channel_binding: bool) -> Option<Vec<u8>> {
    let mut kinds: Vec<KeyAlgorithm> = Vec::new();
    for k in key_types {
        // One entry for RSA, whatever the sizes: the attribute names the algorithm only.
        let k = match k {
            KeyAlgorithm::Rsa(_) => KeyAlgorithm::Rsa(0),
            other => *other,
        };
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    if kinds.is_empty() && !channel_binding {
        return None;
    }
    let any_ec = kinds
        .iter()
        .any(|k| matches!(k, KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384));
    let any_rsa = kinds.iter().any(|k| matches!(k, KeyAlgorithm::Rsa(_)));
    Some(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            if channel_binding {
                w.next().write_oid(&oid(OID_CHALLENGE_PASSWORD));
            }
            for k in &kinds {
                write_key_type(w.next(), *k);
            }
            if any_ec {
                w.next().write_oid(&oid(OID_ECDSA_WITH_SHA256));
            }
            if any_rsa {
                w.next().write_oid(&oid(OID_SHA256_WITH_RSA));
            }
        });
    }))
}

/// Base64 with a line break every 64 characters (RFC 2045 allows 76). Lines end in LF, not
/// CRLF, so that `curl ... | base64 -d` works as operators expect.
pub fn base64_lines(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 32 + 2);
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Decode a base64 body, ignoring line breaks and other whitespace.
pub fn decode_base64_body(body: &[u8]) -> Result<Vec<u8>, String> {
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err("the body is empty; expected a base64 DER PKCS#10 request".into());
    }
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|e| format!("the body is not base64 ({e}); EST bodies are base64 DER"))
}

/// The `multipart/mixed` body of a serverkeygen answer (RFC 7030 §4.4.2): the PKCS#8 key,
/// then the certificate as certs-only CMS. Returns (content type, body).
pub fn serverkeygen_multipart(pkcs8: &[u8], cert_cms: &[u8], boundary: &str) -> (String, String) {
    let body = format!(
        "--{boundary}\r\nContent-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--{boundary}\r\nContent-Type: application/pkcs7-mime; smime-type=certs-only\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--{boundary}--\r\n",
        base64_lines(pkcs8),
        base64_lines(cert_cms),
    );
    (format!("multipart/mixed; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certs_only_round_trip() {
        let a = yasna::construct_der(|w| w.write_sequence(|w| w.next().write_u8(1)));
        let b = yasna::construct_der(|w| w.write_sequence(|w| w.next().write_u8(2)));
        let back = parse_certs_only(&certs_only(&[&a, &b])).unwrap();
        assert_eq!(back.len(), 2);
        assert!(back.contains(&a) && back.contains(&b));
        assert!(parse_certs_only(b"\x30\x00").is_err());
    }

    /// Found by the `est_body` fuzz target: a length near usize::MAX inside the SET OF
    /// certificates overflowed yasna's element skipping.
    #[test]
    fn a_length_beyond_the_input_is_refused_not_a_panic() {
        let cms = include_bytes!("testdata/cms-huge-length.der");
        assert!(parse_certs_only(cms).is_err());
    }

    #[test]
    fn certs_only_parses_back() {
        let cms = certs_only(&[b"\x30\x03\x02\x01\x05".as_slice()]);
        // ContentInfo SEQUENCE, signedData OID, [0] explicit.
        assert_eq!(cms[0], 0x30);
        let parsed = yasna::parse_der(&cms, |r| {
            r.read_sequence(|r| {
                let o = r.next().read_oid()?;
                assert_eq!(o, oid(OID_SIGNED_DATA));
                r.next().read_tagged_der()
            })
        })
        .unwrap();
        assert_eq!(parsed.tag(), Tag::context(0));
    }

    #[test]
    fn csr_attrs_for_ec_and_rsa() {
        let der = csr_attrs(
            &[
                KeyAlgorithm::EcdsaP256,
                KeyAlgorithm::Rsa(2048),
                KeyAlgorithm::Rsa(3072),
            ],
            true,
        )
        .unwrap();
        let items = yasna::parse_der(&der, |r| r.collect_sequence_of(|r| r.read_der())).unwrap();
        // challengePassword, the EC attribute, rsaEncryption, and one signature OID each.
        assert_eq!(items.len(), 5);
        assert!(csr_attrs(&[], false).is_none());
    }

    #[test]
    fn base64_bodies() {
        assert_eq!(
            decode_base64_body(b"AAEC\r\nAw==\n").unwrap(),
            vec![0, 1, 2, 3]
        );
        assert!(decode_base64_body(b"not base64!").is_err());
        assert!(decode_base64_body(b"  ").is_err());
    }
}
