//! `certkeeper backup` and `certkeeper restore`: a consistent online copy of an SQLite data
//! directory in one tar file, and its restore into an empty data directory.
//!
//! The archive holds `manifest.json`, the database snapshot (`certkeeper.db`, taken with
//! `VACUUM INTO` while servers keep running), the public files of the data directory (the
//! CA certificates written there, `certkeeper.toml` when it exists) and, only when asked,
//! `master.key`. Without the master key the archive holds no usable secret: every private
//! key and credential in the database is sealed under it, so it must be kept elsewhere.
//! The admin token file is never copied (the database keeps only its hash).
//!
//! PostgreSQL databases are backed up with `pg_dump`; README's "Operating certkeeper"
//! gives the recipe.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::store::snapshot;

/// The archive's format version.
const FORMAT: u32 = 1;
/// The database file's name, in the archive and in the data directory.
const DATABASE: &str = "certkeeper.db";
/// The master key file's name, in the archive and in the data directory.
const MASTER_KEY: &str = "master.key";
/// The manifest's name in the archive.
const MANIFEST: &str = "manifest.json";
/// The largest file restored from an archive (the database included).
const MAX_ENTRY_BYTES: u64 = 64 << 30;
/// The most entries an archive may have.
const MAX_ENTRIES: usize = 1000;

/// What an archive says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The version of certkeeper that wrote it.
    pub certkeeper_version: String,
    /// When the snapshot was taken (RFC 3339).
    pub created_at: String,
    /// The files in the archive besides the manifest.
    pub files: Vec<String>,
    /// Whether `master.key` is among them.
    pub master_key_included: bool,
}

/// Whether `name` may be a file of an archive: a plain file name of the data directory.
fn allowed_name(name: &str) -> bool {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    plain
        && (name == DATABASE
            || name == MASTER_KEY
            || name == "certkeeper.toml"
            || name.ends_with(".pem"))
}

/// Write a backup of the SQLite data directory of `settings` to `out` (which must not
/// exist). With `with_master_key`, the master key goes in too (from `master.key`, or from
/// the `ca.master_key` setting). Safe while servers run on the same data directory.
pub async fn backup(
    settings: &Settings,
    out: &Path,
    with_master_key: bool,
) -> anyhow::Result<Manifest> {
    if settings.is_postgres() {
        bail!(
            "the database is PostgreSQL: back it up with pg_dump (README, \"Operating \
             certkeeper\"), and keep the master key with it"
        );
    }
    if out.exists() {
        bail!("{} exists; choose a new file", out.display());
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let staging = tempfile::Builder::new()
        .prefix(".certkeeper-backup-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a staging directory in {}", parent.display()))?;
    let db = staging.path().join(DATABASE);
    snapshot::sqlite_snapshot(&settings.database.url, &db)
        .await
        .context("taking the database snapshot")?;

    let mut files: Vec<(String, PathBuf)> = vec![(DATABASE.into(), db)];
    let mut names: Vec<String> = std::fs::read_dir(&settings.data_dir)
        .with_context(|| format!("reading {}", settings.data_dir.display()))?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| allowed_name(n) && n != DATABASE && n != MASTER_KEY)
        .collect();
    names.sort();
    for n in names {
        let path = settings.data_dir.join(&n);
        files.push((n, path));
    }
    if with_master_key {
        let key = match &settings.ca.master_key {
            Some(b64) => {
                let path = staging.path().join(MASTER_KEY);
                std::fs::write(&path, format!("{}\n", b64.expose().trim()))?;
                path
            }
            None => settings.data_dir.join(MASTER_KEY),
        };
        if !key.exists() {
            bail!("no master key at {}", key.display());
        }
        files.push((MASTER_KEY.into(), key));
    }

    let manifest = Manifest {
        format: FORMAT,
        certkeeper_version: env!("CARGO_PKG_VERSION").into(),
        created_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        files: files.iter().map(|(n, _)| n.clone()).collect(),
        master_key_included: with_master_key,
    };
    let partial = staging.path().join("archive.tar");
    {
        let file = std::fs::File::create(&partial)?;
        let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
        let json = serde_json::to_vec_pretty(&manifest)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        tar.append_data(&mut header, MANIFEST, json.as_slice())?;
        for (name, path) in &files {
            let mut f =
                std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
            tar.append_file(name, &mut f)?;
        }
        tar.into_inner()?.into_inner()?.sync_all()?;
    }
    // Private to the owner: the database holds sealed keys, and perhaps the master key.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&partial, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(manifest)
}

/// What a restore found.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The archive's manifest.
    pub manifest: Manifest,
    /// Sealed keys the master key opened (every CA key and OCSP responder key).
    pub keys_opened: usize,
}

/// Restore the archive at `archive` into `settings.data_dir`, which must be empty or
/// absent. The master key comes from the archive, from `master_key` (a file), or from the
/// `ca.master_key` setting; it must open every sealed CA key, or nothing is left behind.
pub async fn restore(
    settings: Arc<Settings>,
    archive: &Path,
    master_key: Option<&Path>,
) -> anyhow::Result<Restored> {
    if settings.is_postgres() {
        bail!("the database setting is PostgreSQL: restore with pg_restore (README)");
    }
    let dir = &settings.data_dir;
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty: restore into a new data directory",
            dir.display()
        );
    }
    let created_dir = !dir.exists();
    let result = unpack_and_check(settings.clone(), archive, master_key).await;
    if result.is_err() {
        // Leave nothing half-restored.
        if created_dir {
            let _ = std::fs::remove_dir_all(dir);
        } else if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    result
}

async fn unpack_and_check(
    settings: Arc<Settings>,
    archive: &Path,
    master_key: Option<&Path>,
) -> anyhow::Result<Restored> {
    let dir = &settings.data_dir;
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let file =
        std::fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut tar = tar::Archive::new(file);
    let mut manifest: Option<Manifest> = None;
    let mut written: Vec<String> = Vec::new();
    for (i, entry) in tar.entries()?.enumerate() {
        if i >= MAX_ENTRIES {
            bail!("the archive has more than {MAX_ENTRIES} entries");
        }
        let mut entry = entry.context("reading the archive")?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if !entry.header().entry_type().is_file() {
            bail!("the archive entry {name:?} is not a plain file");
        }
        if entry.size() > MAX_ENTRY_BYTES {
            bail!("the archive entry {name:?} is larger than {MAX_ENTRY_BYTES} bytes");
        }
        if name == MANIFEST {
            let mut json = Vec::new();
            entry.by_ref().take(1 << 20).read_to_end(&mut json)?;
            let m: Manifest =
                serde_json::from_slice(&json).context("the archive's manifest is not valid")?;
            if m.format != FORMAT {
                bail!("archive format {} is not known to this version", m.format);
            }
            manifest = Some(m);
            continue;
        }
        if !allowed_name(&name) || written.contains(&name) {
            bail!("the archive entry {name:?} is not a file of a data directory");
        }
        let target = dir.join(&name);
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(if name.ends_with(".pem") { 0o644 } else { 0o600 })
                .open(&target)
                .with_context(|| format!("writing {}", target.display()))?;
            std::io::copy(&mut entry.by_ref().take(MAX_ENTRY_BYTES), &mut out)?;
            out.sync_all()?;
        }
        written.push(name);
    }
    let manifest = manifest.context("the archive has no manifest: not a certkeeper backup")?;
    if !written.iter().any(|n| n == DATABASE) {
        bail!("the archive holds no database");
    }
    let problems = snapshot::sqlite_integrity(&dir.join(DATABASE))
        .await
        .context("checking the restored database")?;
    if !problems.is_empty() {
        bail!("the restored database is damaged: {}", problems.join("; "));
    }
    let key_file = dir.join(MASTER_KEY);
    match (written.iter().any(|n| n == MASTER_KEY), master_key) {
        (true, Some(_)) => bail!("the archive holds a master key; leave out --master-key"),
        (true, None) => {}
        (false, Some(path)) => {
            use std::os::unix::fs::OpenOptionsExt;
            let key = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&key_file)?;
            std::io::Write::write_all(&mut out, &key)?;
        }
        (false, None) if settings.ca.master_key.is_some() => {}
        (false, None) => bail!(
            "the archive holds no master key: give the one it was sealed with \
             (--master-key FILE, or the ca.master_key setting)"
        ),
    }

    // Open it as a server would (migrating an older snapshot forward), then prove the key.
    let clock: Arc<dyn certkeeper_ca::Clock> = Arc::new(certkeeper_ca::SystemClock);
    let booted = crate::bootstrap::boot(settings, clock).await?;
    let checked = booted.pki.check_sealed_keys().await;
    booted.pki.close().await;
    let keys_opened = checked.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Restored {
        manifest,
        keys_opened,
    })
}

#[cfg(test)]
mod tests {
    use super::allowed_name;

    #[test]
    fn only_plain_data_directory_files_are_restored() {
        for ok in [
            "certkeeper.db",
            "master.key",
            "root.pem",
            "server-ca.pem",
            "certkeeper.toml",
        ] {
            assert!(allowed_name(ok), "{ok}");
        }
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "a/root.pem",
            ".pem",
            "admin.token",
            "",
            "x.db",
            "root.pem\n",
        ] {
            assert!(!allowed_name(bad), "{bad:?}");
        }
    }
}
