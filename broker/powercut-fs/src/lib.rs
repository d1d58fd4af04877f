//! A filesystem for power-loss tests.
//!
//! Mounted with FUSE, it holds everything in memory and remembers, for
//! every file, which bytes were fsynced and, for every directory, which
//! entries were. [`PowerCutFs::power_cut`] then does what pulling the plug
//! does: everything not made durable is gone (or, for a torn cut, partly
//! there), and the filesystem is mounted again with no kernel cache left
//! over. A program that survives that — `kill -9` first, then the cut —
//! survives a machine losing power; one that forgets an fsync loses data
//! here, which `kill -9` alone can never show (the page cache survives it).
//!
//! In the style of Jepsen's LazyFS. Mounting needs root and `/dev/fuse`.

mod fuse;
mod volume;

pub use volume::{Cut, CutReport, libc_errno};

use fuser::{BackgroundSession, Config, MountOption};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use volume::Volume;

/// A mounted power-cut filesystem; unmounted when dropped.
pub struct PowerCutFs {
    mountpoint: PathBuf,
    volume: Arc<Mutex<Volume>>,
    session: Option<BackgroundSession>,
}

impl PowerCutFs {
    /// Mount an empty filesystem on `mountpoint` (an existing directory).
    pub fn mount(mountpoint: &Path) -> io::Result<Self> {
        let mut fs = Self {
            mountpoint: mountpoint.to_owned(),
            volume: Arc::default(),
            session: None,
        };
        fs.session = Some(fs.spawn()?);
        Ok(fs)
    }

    fn spawn(&self) -> io::Result<BackgroundSession> {
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("powercut".into()),
            MountOption::Subtype("powercut".into()),
        ];
        fuser::spawn_mount(
            fuse::Fs::new(self.volume.clone()),
            &self.mountpoint,
            &config,
        )
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Cut the power: unmount (which waits until the kernel has handed over
    /// every request it had), keep only what was durable (per `cut`), and
    /// mount again. Stop every process using the filesystem first (`kill
    /// -9` is the realistic way): the unmount waits for their files to be
    /// closed. Fsyncs held by [`Self::hold_syncs`] fail (`EIO`) without
    /// effect, which also lets a process killed while in one exit.
    pub fn power_cut(&mut self, cut: Cut) -> io::Result<CutReport> {
        self.fail_held_syncs();
        if let Some(session) = self.session.take() {
            session.umount_and_join()?;
        }
        let report = {
            let mut volume = self.volume.lock().unwrap_or_else(PoisonError::into_inner);
            volume.set_held_syncs_lost(false);
            volume.power_cut(cut)
        };
        self.session = Some(self.spawn()?);
        Ok(report)
    }

    /// Fail every change from now on with `errno` (e.g. `EIO`, `EROFS`) —
    /// a disk that stops taking writes while reads go on — or, with `None`,
    /// take writes again. Nothing already written is lost.
    pub fn fail_writes(&self, errno: Option<i32>) {
        self.volume
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .set_failing(errno);
    }

    /// A stalled disk: from now on every file fsync waits, making nothing
    /// durable and not returning, until this is called with `false`. Other
    /// requests are served meanwhile.
    pub fn hold_syncs(&self, hold: bool) {
        self.volume
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .set_hold_syncs(hold);
    }

    /// The power goes out: fsyncs held by [`Self::hold_syncs`] fail
    /// (`EIO`) without effect, and holding stops. Lets a process killed
    /// while in a held fsync exit, to take a power cut under it.
    pub fn fail_held_syncs(&self) {
        let mut volume = self.volume.lock().unwrap_or_else(PoisonError::into_inner);
        volume.set_held_syncs_lost(true);
        volume.set_hold_syncs(false);
    }

    /// File fsyncs under way and held by [`Self::hold_syncs`].
    pub fn syncs_held(&self) -> u64 {
        self.volume
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .syncs_held()
    }

    /// Bytes written to files but not fsynced yet.
    pub fn unsynced_bytes(&self) -> u64 {
        self.volume
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unsynced_bytes()
    }
}

impl Drop for PowerCutFs {
    fn drop(&mut self) {
        // Held fsyncs would keep the unmount waiting for their answers.
        self.hold_syncs(false);
        if let Some(session) = self.session.take() {
            let _ = session.umount_and_join();
        }
    }
}
