//! Room on the data directory's filesystem, and whether it takes writes.
//!
//! Every write that grows the data directory asks [`DataDirectory::admit`]
//! first, so a filling disk is met with a clear refusal *before* a write
//! half-happens:
//! - messages (a producer's send, a follower's copy) are refused once less
//!   than the reserve (`system.reserved_space`) would be left;
//! - metadata changes that add something are refused once less than half
//!   the reserve is left; deletions and purges, which free space, are
//!   always let through — that is what the reserve is kept for, along with
//!   the broker's own small writes (metadata log, snapshots, vote, the
//!   runtime file at start-up), so a broker that filled its disk still
//!   starts and serves reads.
//!
//! A write that fails anyway goes through [`DataDirectory::write_failed`]:
//! `ENOSPC` refreshes the free-space figure; any other error (a read-only
//! remount, `EIO`) marks the directory as failing — sends are refused,
//! `/readyz` says why, `iggy_broker_storage_writable` drops to 0 — until a
//! probe write and fsync succeed again ([`DataDirectory::watch`]).
//! Refusals are logged at most once per [`LOG_EVERY`].
//!
//! Before it comes to refusals, a broker *running low* — under twice the
//! reserve free, or failing — hands the leadership of its partitions to
//! replicas with room ([`DataDirectory::is_low`],
//! `replication::low_space`), so producers rarely meet a full disk in a
//! cluster.

use crate::error::{Error, SaveKind};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often free space is re-read and a failing directory probed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// At most one log line per kind of refusal in this period.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Written, fsynced and removed to find out whether writes work again.
const PROBE_FILE: &str = ".write-probe";

pub struct DataDirectory {
    dir: PathBuf,
    reserve: u64,
    /// Bytes available at the last `statvfs`, less what was admitted since
    /// (so a burst between two refreshes cannot run past the reserve).
    available: AtomicU64,
    capacity: AtomicU64,
    /// Why the directory does not take writes (`None`: it does).
    failure: Mutex<Option<String>>,
    /// When a refusal was last logged, per kind (full, failing).
    last_logged: Mutex<[Option<Instant>; 2]>,
    /// Woken when an admitted write or a failure makes the directory low.
    ran_low: tokio::sync::Notify,
}

/// What a refusal was about, for logs and metrics.
#[derive(Clone, Copy)]
enum Refusal {
    Full = 0,
    Failing = 1,
}

impl DataDirectory {
    pub fn new(dir: &Path, reserve: u64) -> Self {
        let space = Self {
            dir: dir.to_owned(),
            reserve,
            available: AtomicU64::new(u64::MAX),
            capacity: AtomicU64::new(0),
            failure: Mutex::new(None),
            last_logged: Mutex::new([None, None]),
            ran_low: tokio::sync::Notify::new(),
        };
        space.refresh();
        space
    }

    /// Bytes kept free for deletions and the broker's own metadata.
    pub fn reserve(&self) -> u64 {
        self.reserve
    }

    /// Bytes available on the filesystem (as of the last refresh).
    pub fn available(&self) -> u64 {
        self.available.load(Ordering::Relaxed)
    }

    pub fn capacity(&self) -> u64 {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Whether the directory runs low: less than twice the reserve free
    /// (as of the last refresh, less what was admitted since), or failing.
    /// A broker running low leads no partition that a replica with room
    /// can lead.
    pub fn is_low(&self) -> bool {
        self.available() < self.low_mark() || self.failure().is_some()
    }

    fn low_mark(&self) -> u64 {
        self.reserve.saturating_mul(2)
    }

    /// Wait until an admitted write takes the directory below the low
    /// mark, or a write fails (other changes — space used by something
    /// else — are seen at the next refresh, by polling [`Self::is_low`]).
    pub async fn ran_low(&self) {
        self.ran_low.notified().await;
    }

    /// Why writes are refused regardless of space (`None`: they are not).
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Re-read the filesystem's free space.
    pub fn refresh(&self) {
        match rustix::fs::statvfs(&self.dir) {
            Ok(fs) => {
                self.available
                    .store(fs.f_bavail.saturating_mul(fs.f_frsize), Ordering::Relaxed);
                self.capacity
                    .store(fs.f_blocks.saturating_mul(fs.f_frsize), Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(path = %self.dir.display(), "statvfs: {e}"),
        }
    }

    /// May a write of about `bytes` of `kind` go ahead? Refused — with the
    /// reason, nothing written — if the directory is failing or the write
    /// would leave less than `kind`'s share of the reserve.
    pub fn admit(&self, kind: SaveKind, bytes: u64) -> Result<(), Error> {
        if let Some(failure) = self.failure() {
            return Err(self.refuse(kind, Refusal::Failing, failure));
        }
        let floor = match kind {
            SaveKind::Messages => self.reserve,
            // Rare: worth a fresh look every time.
            SaveKind::Metadata => {
                self.refresh();
                self.reserve / 2
            }
        };
        let needed = floor.saturating_add(bytes);
        if self.available() < needed {
            // The estimate may be stale: look again before refusing. (It
            // may also run high when something else filled the disk since
            // the last refresh; the write then fails with ENOSPC, which
            // `write_failed` turns into the same refusal.)
            self.refresh();
            let available = self.available();
            if available < needed {
                return Err(self.refuse(
                    kind,
                    Refusal::Full,
                    format!(
                        "the data directory's filesystem has {} free and {} are kept in reserve",
                        human(available),
                        human(floor)
                    ),
                ));
            }
        }
        let before = self
            .available
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |a| {
                Some(a.saturating_sub(bytes))
            })
            .unwrap_or_else(|a| a);
        let mark = self.low_mark();
        if before >= mark && before.saturating_sub(bytes) < mark {
            self.ran_low.notify_one();
        }
        Ok(())
    }

    /// Turn a failed write of `kind` into the error the client gets. A
    /// full filesystem refreshes the free-space figure (later writes are
    /// refused up front); any other error marks the directory failing.
    pub fn write_failed(&self, kind: SaveKind, error: io::Error) -> Error {
        if is_out_of_space(&error) {
            self.refresh();
            return self.refuse(
                kind,
                Refusal::Full,
                format!("the data directory's filesystem is full ({error})"),
            );
        }
        let reason = format!("the data directory does not take writes: {error}");
        let newly = {
            let mut failure = self
                .failure
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let newly = failure.is_none();
            *failure = Some(reason.clone());
            newly
        };
        if newly {
            self.ran_low.notify_one();
            tracing::error!(
                path = %self.dir.display(),
                "{reason}; writes are refused until a test write succeeds"
            );
        }
        self.refuse(kind, Refusal::Failing, reason)
    }

    /// Every [`REFRESH_EVERY`]: re-read free space, and while failing,
    /// probe whether writes work again.
    pub async fn watch(self: std::sync::Arc<Self>) {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        loop {
            tick.tick().await;
            self.refresh();
            if self.failure().is_some() {
                let this = self.clone();
                let _ = tokio::task::spawn_blocking(move || this.recheck()).await;
            }
        }
    }

    /// While failing: clear the failure once a probe write and fsync work.
    pub fn recheck(&self) {
        if self.failure().is_none() || self.probe().is_err() {
            return;
        }
        *self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        tracing::info!(path = %self.dir.display(), "the data directory takes writes again");
    }

    /// A small durable write: does the directory take writes?
    fn probe(&self) -> io::Result<()> {
        use std::io::Write;
        let path = self.dir.join(PROBE_FILE);
        let mut file = std::fs::File::create(&path)?;
        file.write_all(b"probe")?;
        file.sync_all()?;
        drop(file);
        std::fs::remove_file(&path)
    }

    fn refuse(&self, kind: SaveKind, refusal: Refusal, reason: String) -> Error {
        let now = Instant::now();
        let log = {
            let mut last = self
                .last_logged
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let slot = &mut last[refusal as usize];
            let due = slot.is_none_or(|at| now.duration_since(at) >= LOG_EVERY);
            if due {
                *slot = Some(now);
            }
            due
        };
        if log {
            tracing::warn!(
                path = %self.dir.display(),
                "refusing to save {kind}: {reason} (logged at most every {}s)",
                LOG_EVERY.as_secs()
            );
        }
        Error::CannotSave { kind, reason }
    }
}

/// `ENOSPC` or `EDQUOT`: the write needs room the filesystem does not have.
pub fn is_out_of_space(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

fn human(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stop_at_the_reserve_and_metadata_at_half_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let probe = DataDirectory::new(dir.path(), 0);
        let available = probe.available();
        assert!(available > 0 && available < u64::MAX);
        // A reserve just above what is free: messages are refused, a small
        // metadata change still fits in the half kept for it.
        let space = DataDirectory::new(dir.path(), available + available / 4);
        let refused = space.admit(SaveKind::Messages, 1).unwrap_err();
        assert!(matches!(
            refused,
            Error::CannotSave {
                kind: SaveKind::Messages,
                ..
            }
        ));
        assert_eq!(refused.code(), 4006);
        space.admit(SaveKind::Metadata, 1).unwrap();
        // Admitted bytes count against the estimate until the next refresh.
        let space = DataDirectory::new(dir.path(), 0);
        space.admit(SaveKind::Messages, available / 2).unwrap();
        assert!(space.available() <= available - available / 2 + (64 << 20));
    }

    #[test]
    fn a_failed_write_refuses_until_a_probe_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let space = DataDirectory::new(dir.path(), 0);
        let full = space.write_failed(SaveKind::Messages, io::Error::from_raw_os_error(28));
        assert!(full.to_string().contains("full"), "{full}");
        assert!(space.failure().is_none(), "ENOSPC is not a failing disk");

        let error = space.write_failed(SaveKind::Messages, io::Error::from_raw_os_error(30));
        assert!(error.to_string().contains("Read-only"), "{error}");
        assert!(space.failure().is_some());
        let refused = space.admit(SaveKind::Metadata, 1).unwrap_err();
        assert_eq!(refused.code(), 10006);
        assert!(space.is_low(), "a failing directory counts as low");
        space.recheck();
        assert!(space.failure().is_none());
        assert!(!dir.path().join(PROBE_FILE).exists());
        space.admit(SaveKind::Metadata, 1).unwrap();
    }

    #[tokio::test]
    async fn a_write_that_leaves_less_than_twice_the_reserve_makes_the_directory_low() {
        let dir = tempfile::tempdir().unwrap();
        let available = DataDirectory::new(dir.path(), 0).available();
        // Low below half of what is free now.
        let space = DataDirectory::new(dir.path(), available / 4);
        let estimate = space.available();
        assert!(!space.is_low());
        space.admit(SaveKind::Messages, estimate / 3).unwrap();
        assert!(!space.is_low(), "two thirds left");
        space.admit(SaveKind::Messages, estimate / 4).unwrap();
        assert!(space.is_low(), "five twelfths left");
        tokio::time::timeout(Duration::from_secs(1), space.ran_low())
            .await
            .expect("crossing the low mark wakes whoever waits for it");
    }
}
