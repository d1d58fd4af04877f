//! The metadata group's state machine: committed entries are applied to
//! the shared [`MetadataState`], and their side effects are carried out on
//! the partitions this broker holds.
//!
//! The state lives in memory and is made durable by snapshots (file
//! `snapshot` in the Raft directory, replaced atomically and fsynced):
//! at start-up the state machine loads the last snapshot and openraft
//! replays the committed entries after it. Side effects are written to be
//! replayed (see `partitions`).

use super::{Entry, LogId, StorageError, StoredMembership, TypeConfig};
use crate::cluster::uid::ClusterUid;
use crate::metadata::MetadataState;
use crate::metadata::apply::ApplyContext;
use crate::metadata::command::{Applied, Effect, Response};
use crate::partitions::PartitionRegistry;
use crate::storage::fs::write_atomic;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageIOError};
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

const SNAPSHOT_FILE: &str = "snapshot";

pub type SnapshotMetaData = SnapshotMeta<u64, openraft::BasicNode>;

/// The metadata shared by the state machine (writer) and every reader.
pub type SharedState = Arc<RwLock<MetadataState>>;

pub struct StateMachine {
    state: SharedState,
    partitions: Arc<PartitionRegistry>,
    snapshots: Arc<SnapshotFile>,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    /// Where the handshake finds the cluster's uid once it is applied.
    uid: Arc<ClusterUid>,
}

/// The one stored snapshot: `[meta length u32][meta JSON][state JSON]`.
struct SnapshotFile {
    path: PathBuf,
    /// Serializes writers, so an older snapshot never replaces a newer one.
    write: Mutex<()>,
}

impl SnapshotFile {
    fn load(&self) -> io::Result<Option<(SnapshotMetaData, Vec<u8>)>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let corrupt = || io::Error::other(format!("{} is corrupt", self.path.display()));
        let len =
            u32::from_le_bytes(bytes.get(..4).ok_or_else(corrupt)?.try_into().expect("4")) as usize;
        let meta_bytes = bytes.get(4..4 + len).ok_or_else(corrupt)?;
        let meta: SnapshotMetaData = serde_json::from_slice(meta_bytes).map_err(|_| corrupt())?;
        Ok(Some((meta, bytes[4 + len..].to_vec())))
    }

    fn store(&self, meta: &SnapshotMetaData, data: &[u8]) -> io::Result<()> {
        let _guard = self
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((current, _)) = self.load()?
            && current.last_log_id > meta.last_log_id
        {
            return Ok(());
        }
        let meta_bytes = serde_json::to_vec(meta).map_err(io::Error::other)?;
        let mut file = Vec::with_capacity(4 + meta_bytes.len() + data.len());
        file.extend_from_slice(&(meta_bytes.len() as u32).to_le_bytes());
        file.extend_from_slice(&meta_bytes);
        file.extend_from_slice(data);
        write_atomic(&self.path, &file, true)
    }
}

impl StateMachine {
    /// Load the last snapshot into `state` and bring the local partitions
    /// in line with it.
    pub fn open(
        dir: &Path,
        state: SharedState,
        partitions: Arc<PartitionRegistry>,
        uid: Arc<ClusterUid>,
    ) -> io::Result<Self> {
        let snapshots = Arc::new(SnapshotFile {
            path: dir.join(SNAPSHOT_FILE),
            write: Mutex::new(()),
        });
        let mut machine = Self {
            state,
            partitions,
            snapshots,
            last_applied: None,
            last_membership: StoredMembership::default(),
            uid,
        };
        if let Some((meta, data)) = machine.snapshots.load()? {
            machine.restore(&meta, &data)?;
        } else {
            machine.partitions.reconcile(&MetadataState::default(), 0)?;
        }
        Ok(machine)
    }

    fn restore(&mut self, meta: &SnapshotMetaData, data: &[u8]) -> io::Result<()> {
        let restored: MetadataState = serde_json::from_slice(data).map_err(io::Error::other)?;
        let applied = meta.last_log_id.map_or(0, |id| id.index);
        self.partitions.reconcile(&restored, applied)?;
        if let Some(uid) = restored.cluster_uid {
            self.uid.learn(uid);
        }
        *self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = restored;
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        Ok(())
    }

    fn context(&self, index: u64) -> ApplyContext {
        let mut nodes: Vec<u32> = self
            .last_membership
            .voter_ids()
            .map(|id| id as u32)
            .collect();
        nodes.sort_unstable();
        ApplyContext { index, nodes }
    }

    /// Carry out effects for the partitions assigned to this broker. A
    /// failure is logged, not fatal: the metadata stays consistent, and the
    /// next start-up reconciles the partitions again.
    fn run_effects(&self, effects: Vec<Effect>) {
        let partitions = &self.partitions;
        for effect in effects {
            let result = match &effect {
                Effect::CreatePartitions {
                    partitions: created,
                    incarnation,
                    assigned_at,
                    settings,
                } => created.iter().try_for_each(|(key, replicas)| {
                    partitions.create(*key, replicas, (*incarnation, *assigned_at), settings)
                }),
                Effect::RemovePartitions {
                    partitions: removed,
                    before,
                } => removed
                    .iter()
                    .try_for_each(|key| partitions.remove(*key, *before)),
                Effect::RemoveReplicas {
                    partition,
                    nodes,
                    before,
                } => {
                    if nodes.contains(&partitions.node_id()) {
                        partitions.remove(*partition, *before)
                    } else {
                        Ok(())
                    }
                }
                Effect::PartitionStateChanged {
                    partitions: changed,
                } => {
                    for key in changed {
                        partitions.state_changed(*key);
                    }
                    Ok(())
                }
                Effect::PurgePartitions { partitions: purged } => {
                    purged.iter().try_for_each(|key| partitions.purge(*key))
                }
                Effect::ConfigurePartitions {
                    partitions: configured,
                    settings,
                } => {
                    for key in configured {
                        partitions.configure(*key, settings);
                    }
                    Ok(())
                }
            };
            if let Err(e) = result {
                tracing::error!(
                    ?effect,
                    "applying a metadata change to local partitions failed: {e}"
                );
            }
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut responses = Vec::new();
        for entry in entries {
            let index = entry.log_id.index;
            self.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => responses.push(Ok(Applied::Done)),
                EntryPayload::Normal(envelope) => {
                    let ctx = self.context(index);
                    let (response, effects, uid) = {
                        let mut state = self
                            .state
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        let (response, effects) = state.apply(&envelope, &ctx);
                        (response, effects, state.cluster_uid)
                    };
                    if let Some(uid) = uid {
                        self.uid.learn(uid);
                    }
                    if !effects.is_empty() {
                        tokio::task::block_in_place(|| self.run_effects(effects));
                    }
                    responses.push(response);
                }
                EntryPayload::Membership(membership) => {
                    self.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                    responses.push(Ok(Applied::Done));
                }
            }
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let state = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        SnapshotBuilder {
            state,
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaData,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        tokio::task::block_in_place(|| {
            self.snapshots.store(meta, &data)?;
            self.restore(meta, &data)
        })
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        tracing::info!(last = ?meta.last_log_id, "installed a metadata snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let loaded = tokio::task::block_in_place(|| self.snapshots.load())
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(loaded.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// Writes a snapshot of the state as it was when the builder was made.
pub struct SnapshotBuilder {
    state: MetadataState,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    snapshots: Arc<SnapshotFile>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let data = serde_json::to_vec(&self.state)
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let snapshot_id = match self.last_applied {
            Some(id) => format!(
                "{}-{}-{}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot_id,
        };
        let snapshots = self.snapshots.clone();
        let to_store = data.clone();
        let stored_meta = meta.clone();
        tokio::task::spawn_blocking(move || snapshots.store(&stored_meta, &to_store))
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}
