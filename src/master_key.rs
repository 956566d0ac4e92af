//! `certkeeper master-key rotate`: seal every secret of the database under a new master key,
//! in one transaction, so the old key opens nothing any more.
//!
//! Run it with every server of the deployment stopped: a running server keeps the old key in
//! memory and could not open what is sealed under the new one. Order of steps, so that no
//! crash leaves the database sealed under a key that is nowhere: the new key is written to
//! `master.key.new` first (synced), then the transaction re-seals everything and commits,
//! then `master.key.new` replaces `master.key`. If the command is cut off after the commit,
//! `master.key.new` is the key. When the key comes from the `ca.master_key` setting, the new
//! key is written to the file the operator names instead, and the setting must be changed.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use certkeeper_ca::MasterKey;

use crate::bootstrap::{read_master_key, write_private};
use crate::config::Settings;
use crate::store::Store;

/// What a rotation did.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// Sealed values re-sealed.
    pub resealed: usize,
    /// Where the new key is.
    pub key_file: PathBuf,
    /// Whether the `ca.master_key` setting must now be changed to the new key.
    pub setting_to_change: bool,
}

/// Re-seal every sealed value under a new master key. `new_key_out` names where the new key
/// goes when the current one comes from the `ca.master_key` setting (it must not exist).
pub async fn rotate(settings: &Settings, new_key_out: Option<&Path>) -> anyhow::Result<Rotated> {
    let old = read_master_key(settings)?.context("there is no master key to rotate")?;
    let from_setting = settings.ca.master_key.is_some();
    let (staged, final_file) = match (from_setting, new_key_out) {
        (true, Some(out)) => (out.to_path_buf(), None),
        (true, None) => bail!(
            "the master key comes from the ca.master_key setting: give --new-key-out FILE for \
             the new one, then change the setting"
        ),
        (false, None) => (
            settings.data_dir.join("master.key.new"),
            Some(settings.data_dir.join("master.key")),
        ),
        (false, Some(_)) => bail!(
            "the master key is {}/master.key; it is replaced there (leave out --new-key-out)",
            settings.data_dir.display()
        ),
    };
    let (new, raw) = MasterKey::generate()?;
    let b64 = base64::engine::general_purpose::STANDARD;
    write_private(&staged, format!("{}\n", b64.encode(raw)).as_bytes())
        .with_context(|| format!("{} must not exist", staged.display()))?;

    let store = Store::connect(settings)
        .await
        .context("opening the database")?;
    let columns = crate::services::sealed::columns();
    let result = store
        .reseal_all(&columns, |context, sealed| {
            let plain = old
                .open(sealed, context)
                .map_err(|_| "the current master key does not open it".to_string())?;
            new.seal(&plain, context).map_err(|e| e.to_string())
        })
        .await;
    store.close().await;
    let resealed = match result {
        Ok(n) => n,
        Err(e) => {
            // Nothing was committed: the old key stays the key.
            let _ = std::fs::remove_file(&staged);
            return Err(e).context("re-sealing (nothing was changed)");
        }
    };
    let key_file = match final_file {
        Some(f) => {
            std::fs::rename(&staged, &f)
                .with_context(|| format!("moving {} to {}", staged.display(), f.display()))?;
            f
        }
        None => staged,
    };
    Ok(Rotated {
        resealed,
        key_file,
        setting_to_change: from_setting,
    })
}
