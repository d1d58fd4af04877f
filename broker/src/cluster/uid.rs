//! The cluster's uid: which cluster of a name this broker belongs to.
//!
//! A name says which cluster a broker was configured for; it does not tell
//! the cluster apart from a second one formed under the same name. That
//! happens when a lone founder comes back on an empty volume while the rest
//! of its cluster is down (`cluster::founding` cannot tell that from a new
//! cluster): it founds again, and its first log entries carry the same log
//! ids as the first cluster's. Were the two to meet, the first cluster's
//! leader would find the founder's log "matching" and stream its entries
//! on top of what the founder applied on its own — two brokers with
//! different metadata for good.
//!
//! So every cluster gets a random uid once it runs: the metadata leader
//! proposes `NameCluster` when the state holds none (the first applied
//! wins), and the state machine keeps it here for the handshake, which
//! refuses a peer that names another uid (`transport::handshake`). A lone
//! founder — the one that can fork — chooses its uid before it founds
//! (`choose_for_founding`, kept durably beside its metadata log and
//! recalled after a restart) and names the cluster with that one, so that
//! it refuses its old cluster's brokers from its first log entry on, not
//! only once the name is applied. A broker
//! that does not know its cluster's uid yet (one joining, or on a build
//! from before uids) is let in by everyone, and learns the uid from the
//! log it catches up with.
//!
//! The broker founded apart can tell it is the odd one out: the cluster's
//! leader keeps calling it (it is one of the cluster's voters), while its
//! own group does not count the caller. It then reports itself not ready
//! (`/readyz`), so that a load balancer or Kubernetes Service sends no
//! client to the fork, says why, and refuses the writes of clients
//! connected to it directly (they would go with its volume).

use crate::broker::Broker;
use crate::error::Error;
use crate::metadata::command::MetadataCommand;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a lone founder keeps the uid it chose, in its metadata directory.
const FOUNDING_UID_FILE: &str = "founding-uid";
/// How often the metadata leader checks whether the cluster needs a uid.
const NAMING_INTERVAL: Duration = Duration::from_millis(250);
/// How long after refusing a caller of another uid this broker still
/// counts as called by it (a leader calls several times a second).
const CALLED_LATELY: Duration = Duration::from_secs(10);

/// The uid of the cluster this broker belongs to, once known (shared by
/// the state machine, which learns it, and the handshake, which checks it).
#[derive(Debug, Default)]
pub struct ClusterUid {
    /// The uid, 0 while unknown: applied from the metadata log, or chosen
    /// by a lone founder ahead of that.
    uid: AtomicU64,
    /// Whether the metadata state holds the uid (it was applied here).
    named: AtomicBool,
    /// The last broker refused for naming another uid, and when.
    refused: Mutex<Option<(u32, Instant)>>,
    /// Whether any was, ever: every client write asks whether this broker
    /// was founded apart, and almost always none was.
    ever_refused: AtomicBool,
    /// Client writes refused while founded apart: warned of now and then.
    refused_writes: super::transport::repeats::Repeats<()>,
}

impl ClusterUid {
    /// `None` until the cluster has been named and this broker applied it
    /// (or, on a lone founder, until it chose the uid it names it with).
    pub fn get(&self) -> Option<u64> {
        match self.uid.load(Ordering::Relaxed) {
            0 => None,
            uid => Some(uid),
        }
    }

    /// The replica listener refused broker `peer`, which names another uid.
    pub fn refused(&self, peer: u32) {
        self.ever_refused.store(true, Ordering::Relaxed);
        *self
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((peer, Instant::now()));
    }

    /// The broker of another uid refused lately, if any.
    fn refused_lately(&self) -> Option<u32> {
        if !self.ever_refused.load(Ordering::Relaxed) {
            return None;
        }
        let refused = *self
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        refused
            .filter(|(_, at)| at.elapsed() < CALLED_LATELY)
            .map(|(peer, _)| peer)
    }

    /// Whether the metadata state holds the uid yet.
    pub fn is_named(&self) -> bool {
        self.named.load(Ordering::Relaxed)
    }

    /// A lone founder about to found: the uid it will name its cluster
    /// with, known (and checked by the handshake) from now on, and written
    /// to `metadata_dir` so that a restart before the name is applied
    /// recalls it ([`Self::recall_founding`]). `None` if this broker knows
    /// a uid already (a running group reached it first).
    pub fn choose_for_founding(&self, metadata_dir: &Path) -> Option<u64> {
        if self.get().is_some() {
            return None;
        }
        let chosen = new_uid();
        let file = metadata_dir.join(FOUNDING_UID_FILE);
        if let Err(e) = crate::storage::fs::write_atomic(&file, format_uid(chosen).as_bytes(), true)
        {
            // Founding goes on: the uid is still checked until a restart.
            tracing::warn!(
                "could not keep the chosen cluster uid in {}: {e}",
                file.display()
            );
        }
        if self.remember(chosen) {
            Some(chosen)
        } else {
            self.abandon_founding(chosen, metadata_dir);
            None
        }
    }

    /// At start-up, after the metadata log was read: the uid this broker
    /// chose when it founded its cluster, if the log has not named the
    /// cluster yet (a restart between founding and naming).
    pub fn recall_founding(&self, metadata_dir: &Path) -> std::io::Result<()> {
        let file = metadata_dir.join(FOUNDING_UID_FILE);
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let chosen = u64::from_str_radix(text.trim(), 16)
            .ok()
            .filter(|uid| *uid != 0)
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: not a cluster uid: {text:?}", file.display()),
                )
            })?;
        if self.remember(chosen) {
            tracing::info!(uid = %format_uid(chosen), "recalled the uid chosen when this broker founded its cluster");
        }
        Ok(())
    }

    /// The founding did not happen after all (a running group's leader
    /// reached this broker first): forget the uid chosen for it, unless
    /// the group's own was applied meanwhile.
    pub fn abandon_founding(&self, chosen: u64, metadata_dir: &Path) {
        let _ = self
            .uid
            .compare_exchange(chosen, 0, Ordering::Relaxed, Ordering::Relaxed);
        let file = metadata_dir.join(FOUNDING_UID_FILE);
        match std::fs::remove_file(&file) {
            Ok(()) => {
                let _ = crate::storage::fs::fsync_dir(metadata_dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("could not remove {}: {e}", file.display()),
        }
    }

    /// Known from now on unless a uid is known already; whether it is.
    fn remember(&self, chosen: u64) -> bool {
        self.uid
            .compare_exchange(0, chosen, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// The uid to propose for naming the cluster: the chosen one, if any.
    fn to_propose(&self) -> u64 {
        self.get().unwrap_or_else(new_uid)
    }

    /// The state machine applied the cluster's uid (or restored it from a
    /// snapshot).
    pub fn learn(&self, uid: u64) {
        let before = self.uid.swap(uid, Ordering::Relaxed);
        let named_before = self.named.swap(true, Ordering::Relaxed);
        if before != 0 && before != uid {
            tracing::error!(
                before = %format_uid(before),
                now = %format_uid(uid),
                "the cluster's uid changed: this broker took metadata of another cluster"
            );
        } else if !named_before {
            tracing::info!(uid = %format_uid(uid), "this broker's cluster is named");
        }
    }
}

/// A uid as it is shown (logs, `GET /cluster`).
pub fn format_uid(uid: u64) -> String {
    format!("{uid:016x}")
}

/// A new uid: random and never 0 (which means "not named").
fn new_uid() -> u64 {
    rand::random::<u64>().max(1)
}

/// Why this broker is the one founded apart, if it is: a broker of another
/// uid called it lately, and this broker's group does not count the
/// caller. A broker of a running group calls only its group's members (its
/// address book too while its log is empty, but then it knows no uid), so
/// the caller's group counts this broker: that group is the cluster this
/// broker was once part of, and this broker founded its own since.
pub fn founded_apart(broker: &Broker) -> Option<String> {
    let caller = broker.peers.as_ref()?.uid_ref().refused_lately()?;
    if broker.metadata.members().contains(&caller) {
        return None;
    }
    Some(format!(
        "founded apart: broker {caller}, of another cluster of this name that counts this \
         broker as a member, calls it; this broker's data is not that cluster's (it founded a \
         cluster of its own, as a lone founder does on an empty volume while the rest of its \
         cluster is down). Empty its data directory and it joins that cluster"
    ))
}

/// Refuse a client's write on the broker founded apart: its data is not
/// its cluster's, and goes when its volume is emptied to let it join, so
/// whatever it acknowledged now would be lost. Reads go on.
pub fn refuse_if_founded_apart(broker: &Broker) -> Result<(), Error> {
    let Some(why) = founded_apart(broker) else {
        return Ok(());
    };
    let why = format!("refused a client's write: {why}; nothing was changed");
    let warn = broker
        .peers
        .as_ref()
        .is_some_and(|peers| peers.uid_ref().refused_writes.is_news(()));
    if warn {
        tracing::warn!("{why} (logged at most every 10 s)");
    }
    Err(Error::NotAccepted(why))
}

/// On the metadata leader, name the cluster if it has no uid yet: a new
/// cluster once its founders registered, one upgraded from a build
/// without uids once every member reads `NameCluster`. Runs until the uid
/// is applied here.
pub async fn name_unless_named(broker: Arc<Broker>, uid: Arc<ClusterUid>) {
    let needed = MetadataCommand::NameCluster { uid: 0 }.since_version();
    let mut ticker = tokio::time::interval(NAMING_INTERVAL);
    let mut waiting_logged = false;
    while !uid.is_named() {
        ticker.tick().await;
        if !broker.metadata.is_leader() {
            continue;
        }
        let version = broker.metadata.metadata_version();
        if version < needed {
            if !waiting_logged {
                waiting_logged = true;
                tracing::info!(
                    version,
                    needed,
                    "the cluster stays unnamed until every broker reads metadata version {needed}"
                );
            }
            continue;
        }
        let command = MetadataCommand::NameCluster {
            uid: uid.to_propose(),
        };
        if let Err(e) = broker.metadata.write(command).await {
            tracing::debug!("naming the cluster: {e}; retrying");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_founders_uid_is_known_before_it_is_named_and_is_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let uid = ClusterUid::default();
        assert_eq!(uid.get(), None);
        let chosen = uid.choose_for_founding(dir.path()).unwrap();
        assert_eq!(uid.get(), Some(chosen), "the handshake checks it already");
        assert!(!uid.is_named());
        assert_eq!(uid.to_propose(), chosen);
        uid.learn(chosen);
        assert!(uid.is_named());
        assert_eq!(uid.get(), Some(chosen));
    }

    #[test]
    fn a_uid_applied_before_founding_is_kept() {
        let uid = ClusterUid::default();
        uid.learn(7);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(uid.choose_for_founding(dir.path()), None);
        assert_eq!(uid.get(), Some(7));
        assert!(!dir.path().join(FOUNDING_UID_FILE).exists());
    }

    #[test]
    fn the_chosen_uid_is_recalled_after_a_restart_unless_the_log_named_one() {
        let dir = tempfile::tempdir().unwrap();
        let chosen = ClusterUid::default()
            .choose_for_founding(dir.path())
            .unwrap();
        let restarted = ClusterUid::default();
        restarted.recall_founding(dir.path()).unwrap();
        assert_eq!(restarted.get(), Some(chosen));
        assert!(!restarted.is_named());

        let named = ClusterUid::default();
        named.learn(chosen);
        named.recall_founding(dir.path()).unwrap();
        assert_eq!(named.get(), Some(chosen));

        let empty = tempfile::tempdir().unwrap();
        let fresh = ClusterUid::default();
        fresh.recall_founding(empty.path()).unwrap();
        assert_eq!(fresh.get(), None);

        std::fs::write(dir.path().join(FOUNDING_UID_FILE), "not hex").unwrap();
        assert!(ClusterUid::default().recall_founding(dir.path()).is_err());
    }

    #[test]
    fn a_founding_that_did_not_happen_forgets_its_uid() {
        let dir = tempfile::tempdir().unwrap();
        let uid = ClusterUid::default();
        let chosen = uid.choose_for_founding(dir.path()).unwrap();
        uid.abandon_founding(chosen, dir.path());
        assert_eq!(uid.get(), None);
        assert!(!dir.path().join(FOUNDING_UID_FILE).exists());

        // The running group's uid, applied meanwhile, is kept.
        let chosen = uid.choose_for_founding(dir.path()).unwrap();
        uid.learn(chosen ^ 1);
        uid.abandon_founding(chosen, dir.path());
        assert_eq!(uid.get(), Some(chosen ^ 1));
    }

    #[test]
    fn a_broker_that_chose_nothing_proposes_a_new_uid() {
        let uid = ClusterUid::default();
        assert_ne!(uid.to_propose(), 0);
        assert_eq!(uid.get(), None, "proposing is not knowing");
    }
}
