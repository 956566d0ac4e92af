//! Every value sealed under the master key, with its seal context: what a master key
//! rotation re-seals. A new sealed column must be added here (the rotation test opens
//! every kind after a rotation).

use crate::store::reseal::SealedColumn;
use crate::store::{eab_seal_context, nonces};

use super::alerts::channels;
use super::managed::destinations;
use super::pki::key_context;

/// The sealed columns of the database.
pub fn columns() -> Vec<SealedColumn> {
    vec![
        SealedColumn {
            table: "cas",
            id: "id",
            column: "key_sealed",
            only: None,
            context: |id| key_context("ca", id),
        },
        SealedColumn {
            table: "cas",
            id: "id",
            column: "ocsp_key_sealed",
            only: None,
            context: |id| key_context("ocsp", id),
        },
        SealedColumn {
            table: "certificates",
            id: "id",
            column: "key_sealed",
            only: None,
            context: |id| key_context("cert", id),
        },
        SealedColumn {
            table: "alert_channels",
            id: "id",
            column: "secret_sealed",
            only: None,
            context: channels::seal_context,
        },
        SealedColumn {
            table: "acme_eab_keys",
            id: "id",
            column: "hmac_sealed",
            only: None,
            context: eab_seal_context,
        },
        SealedColumn {
            table: "sync_destinations",
            id: "id",
            column: "secret_sealed",
            only: None,
            context: destinations::seal_context,
        },
        SealedColumn {
            table: "issuers",
            id: "id",
            column: "secret_sealed",
            only: None,
            context: |id| super::issuers::seal_context("eab", id),
        },
        SealedColumn {
            table: "issuers",
            id: "id",
            column: "account_sealed",
            only: None,
            context: |id| super::issuers::seal_context("account", id),
        },
        SealedColumn {
            table: "issuers",
            id: "id",
            column: "dns_secret_sealed",
            only: None,
            context: |id| super::issuers::seal_context("dns", id),
        },
        SealedColumn {
            table: "server_state",
            id: "key",
            column: "value",
            only: Some(("key", nonces::STATE_KEY)),
            context: |_| nonces::SEAL_CONTEXT.to_vec(),
        },
    ]
}
