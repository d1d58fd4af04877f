//! File-system helpers that every durable write goes through.
//!
//! Owns the crash-safety rules: a file that is rewritten is written to a
//! temporary sibling, fsynced, renamed over the original, and the directory is
//! fsynced so the rename itself survives a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Replace `path` with `contents` atomically: after a crash the file holds
/// either the old or the new bytes, never a mix.
pub fn write_atomic(path: &Path, contents: &[u8], durable: bool) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(contents)?;
        if durable {
            file.sync_all()?;
        }
    }
    fs::rename(&tmp, path)?;
    if durable && let Some(parent) = path.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

/// Fsync a directory so that entries created, renamed or removed in it are
/// durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Create a directory and any missing parents, and make every entry it
/// created durable: each new directory's name is fsynced in its parent,
/// from the deepest directory that already existed down (a crash can
/// otherwise keep `a/b/c` in the cache but lose `b` from `a`).
pub fn create_dir_durable(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut existing = Some(dir);
    while let Some(path) = existing.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(path);
        existing = path.parent();
    }
    if missing.is_empty() {
        // It may have been created by a run that died before the sync.
        missing.push(dir);
    } else {
        fs::create_dir_all(dir)?;
    }
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsync_dir(parent)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_contents_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"first", true).unwrap();
        write_atomic(&path, b"second", true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn create_dir_durable_makes_missing_parents_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        create_dir_durable(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_durable(&deep).unwrap();
        create_dir_durable(&dir.path().join("a/d")).unwrap();
        assert!(dir.path().join("a/d").is_dir());
    }
}
