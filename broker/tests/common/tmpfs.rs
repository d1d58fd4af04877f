//! A size-limited tmpfs: a volume that really fills up. Mounting needs
//! root.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs, unmounted when dropped.
pub struct Tmpfs {
    path: PathBuf,
    /// The directory it is mounted on, when it made one.
    _dir: Option<tempfile::TempDir>,
}

impl Tmpfs {
    /// A tmpfs of `size_mib` MiB on a new temporary directory.
    pub fn mount(size_mib: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut tmpfs = Self::mount_at(dir.path(), size_mib);
        tmpfs._dir = Some(dir);
        tmpfs
    }

    /// A tmpfs of `size_mib` MiB on `path`, an existing directory (a
    /// broker's data directory before it starts).
    pub fn mount_at(path: &Path, size_mib: u64) -> Self {
        mount(
            &["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"],
            path,
        );
        Self {
            path: path.to_path_buf(),
            _dir: None,
        }
    }

    /// Grow (or shrink) it to `size_mib` MiB in place, as an expanded
    /// volume does, files kept.
    pub fn resize(&self, size_mib: u64) {
        mount(&["-o", &format!("remount,size={size_mib}m")], &self.path);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes free for an unprivileged writer.
    pub fn available(&self) -> u64 {
        let fs = rustix::fs::statvfs(self.path()).unwrap();
        fs.f_bavail * fs.f_frsize
    }
}

fn mount(args: &[&str], path: &Path) {
    let status = Command::new("mount")
        .args(args)
        .arg(path)
        .status()
        .expect("run mount");
    assert!(status.success(), "mount {args:?} (needs root): {status}");
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
