//! OpenAPI schemas of the types that do not derive theirs (feature `openapi`).
//!
//! [`KeyAlgorithm`] is written as a string (`ecdsa-p256`, `rsa-3072`, ...) through its
//! `Display` and `FromStr`, so its schema is written here from the same lists the code
//! uses: as a subscriber key type (`KeyType`), or, through [`GeneratableKey`], as a key type
//! certkeeper makes (`KeyAlgorithm`).

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::KeyAlgorithm;

/// The names of the key types certkeeper generates.
fn generatable() -> Vec<String> {
    KeyAlgorithm::GENERATABLE
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A subscriber key type: the `KeyType` component.
impl PartialSchema for KeyAlgorithm {
    fn schema() -> RefOr<Schema> {
        let mut recognised = generatable();
        recognised.push(KeyAlgorithm::EcdsaP521.to_string());
        AnyOfBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A subscriber key type: one certkeeper can generate, `ecdsa-p521`, or RSA of \
                 another size (`rsa-<bits>`, 1024-16384), as found in CSRs.",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::AnyValue)
                    .enum_values(Some(recognised)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::AnyValue)
                    .pattern(Some("^rsa-[0-9]+$")),
            )
            .into()
    }
}

impl ToSchema for KeyAlgorithm {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("KeyType")
    }
}

/// A [`KeyAlgorithm`] certkeeper can generate, for fields whose keys the server makes
/// (`#[schema(value_type = GeneratableKey)]`): the `KeyAlgorithm` component.
pub struct GeneratableKey;

impl PartialSchema for GeneratableKey {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A key type certkeeper can generate. Aliases such as `p256` or `rsa2048` are \
                 accepted on input; answers use these names.",
            ))
            .enum_values(Some(generatable()))
            .into()
    }
}

impl ToSchema for GeneratableKey {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("KeyAlgorithm")
    }
}
