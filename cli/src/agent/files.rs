//! Writing a file atomically: a temporary file in the same directory (created with the
//! mode asked, given the owner asked, flushed to disk), renamed over the target, then the
//! directory flushed, so a reader sees the old file or the new one, never a mix.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};

/// Owner and group to give a file, as numeric ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ownership {
    /// The user id, if one was asked for.
    pub uid: Option<u32>,
    /// The group id, if one was asked for.
    pub gid: Option<u32>,
}

impl Ownership {
    /// Resolve a user and group, each a name or a number.
    pub fn resolve(owner: Option<&str>, group: Option<&str>) -> anyhow::Result<Ownership> {
        let uid = owner
            .map(|o| match o.parse::<u32>() {
                Ok(n) => Ok(n),
                Err(_) => nix::unistd::User::from_name(o)
                    .with_context(|| format!("looking up user {o:?}"))?
                    .map(|u| u.uid.as_raw())
                    .with_context(|| format!("no user {o:?}")),
            })
            .transpose()?;
        let gid = group
            .map(|g| match g.parse::<u32>() {
                Ok(n) => Ok(n),
                Err(_) => nix::unistd::Group::from_name(g)
                    .with_context(|| format!("looking up group {g:?}"))?
                    .map(|g| g.gid.as_raw())
                    .with_context(|| format!("no group {g:?}")),
            })
            .transpose()?;
        Ok(Ownership { uid, gid })
    }
}

/// Write `data` to `path` atomically with `mode` and `owner`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32, owner: Ownership) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .with_context(|| format!("{} has no directory", path.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.certkeeper-{}-{:016x}",
        name.to_string_lossy(),
        std::process::id(),
        fastrand::u64(..)
    ));
    let result = write_then_rename(&tmp, path, data, mode, owner);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("flushing the directory {}", dir.display()))
}

fn write_then_rename(
    tmp: &Path,
    path: &Path,
    data: &[u8],
    mode: u32,
    owner: Ownership,
) -> anyhow::Result<()> {
    // Created with no access for others before anything is in it; the mode asked is set
    // once the owner is right (the umask does not apply to an explicit chmod).
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", tmp.display()))?;
    if owner.uid.is_some() || owner.gid.is_some() {
        std::os::unix::fs::fchown(&f, owner.uid, owner.gid).with_context(|| {
            format!(
                "giving {} to uid {:?} gid {:?}",
                tmp.display(),
                owner.uid,
                owner.gid
            )
        })?;
    }
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", tmp.display()))?;
    f.sync_all()
        .with_context(|| format!("flushing {}", tmp.display()))?;
    drop(f);
    if path.is_dir() {
        bail!("{} is a directory", path.display());
    }
    std::fs::rename(tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn replaces_the_file_with_the_mode_asked_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.key");
        std::fs::write(&path, "old").unwrap();
        let me = Ownership {
            uid: Some(nix::unistd::getuid().as_raw()),
            gid: Some(nix::unistd::getgid().as_raw()),
        };
        write_atomic(&path, b"new", 0o640, me).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o640);
        assert_eq!(Some(meta.uid()), me.uid);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "a temporary file was left: {names:?}");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub");
        std::fs::create_dir(&path).unwrap();
        assert!(write_atomic(&path, b"x", 0o644, Ownership::default()).is_err());
        assert!(path.is_dir());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn owners_resolve_by_name_or_number() {
        let root = Ownership::resolve(Some("root"), Some("0")).unwrap();
        assert_eq!(
            root,
            Ownership {
                uid: Some(0),
                gid: Some(0)
            }
        );
        assert!(Ownership::resolve(Some("no-such-user-here"), None).is_err());
    }
}
