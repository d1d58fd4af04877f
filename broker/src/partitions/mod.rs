//! The partitions this broker holds a replica of, and the side effects of
//! metadata changes on them.
//!
//! The registry follows the replicated metadata: when the state machine
//! applies a command that creates, removes, purges or reconfigures
//! partitions, it calls the matching method here for the partitions
//! assigned to this broker. Those calls also run when the log is replayed
//! after a restart, so each is safe to repeat: a partition directory's name
//! carries its incarnation (the log index that created it), and a
//! directory of a later incarnation than the command being replayed is
//! left alone — it belongs to the log's future.
//!
//! Locking: the map is behind a `RwLock` taken only to look up or swap an
//! `Arc<Partition>`; message I/O runs under each partition's own lock.
//! Directory removal is a rename into the trash, emptied in the background.

mod layout;
mod partition;

pub use layout::Layout;
pub use partition::{Partition, Synced};

use crate::metadata::{MetadataState, PartitionKey, TopicSettings};
use crate::storage::LogConfig;
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, RwLock};

pub fn log_config(settings: &TopicSettings) -> LogConfig {
    LogConfig {
        segment_size_bytes: settings.segment_size_bytes,
        fsync: settings.fsync,
    }
}

pub struct PartitionRegistry {
    node_id: u32,
    layout: Layout,
    partitions: RwLock<HashMap<PartitionKey, Arc<Partition>>>,
    /// Wakes the background task that empties the trash.
    trash_added: tokio::sync::Notify,
}

impl PartitionRegistry {
    pub fn new(node_id: u32, layout: Layout) -> Self {
        Self {
            node_id,
            layout,
            partitions: RwLock::new(HashMap::new()),
            trash_added: tokio::sync::Notify::new(),
        }
    }

    pub fn node_id(&self) -> u32 {
        self.node_id
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn get(&self, key: PartitionKey) -> Option<Arc<Partition>> {
        self.read().get(&key).cloned()
    }

    /// Every local partition.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.read().values().cloned().collect()
    }

    /// Local partitions whose key matches `filter`.
    pub fn matching(&self, filter: impl Fn(&PartitionKey) -> bool) -> Vec<Arc<Partition>> {
        self.read()
            .iter()
            .filter(|(key, _)| filter(key))
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<PartitionKey, Arc<Partition>>> {
        self.partitions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<PartitionKey, Arc<Partition>>> {
        self.partitions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A partition was created at log index `incarnation` with `replicas`
    /// (or these replicas were added to it at `assigned_at`). Opens it if
    /// this broker holds a replica.
    pub fn create(
        &self,
        key: PartitionKey,
        replicas: &[u32],
        (incarnation, assigned_at): (u64, u64),
        settings: &TopicSettings,
    ) -> io::Result<()> {
        if !replicas.contains(&self.node_id) {
            return Ok(());
        }
        if self
            .get(key)
            .is_some_and(|p| (p.incarnation, p.assigned_at) >= (incarnation, assigned_at))
        {
            return Ok(());
        }
        if self.get(key).is_some_and(|p| p.incarnation == incarnation) {
            // The copy this broker held before it was removed from the
            // partition and added back: not this copy's data.
            self.write().remove(&key);
            if self.layout.trash(key, incarnation)? {
                self.trash_added.notify_one();
            }
        }
        let on_disk = self.layout.incarnations(key)?;
        // A later incarnation is the log's future while replaying: met
        // again when the replay reaches the command that created it.
        if on_disk.iter().any(|found| *found > incarnation) {
            return Ok(());
        }
        // Older incarnations (a crash between making this one and removing
        // them) are not this partition's data.
        for old in on_disk.iter().filter(|found| **found < incarnation) {
            self.layout.trash(key, *old)?;
            self.trash_added.notify_one();
        }
        let dir = self.layout.partition_dir(key, incarnation);
        let partition = Partition::open(
            &dir,
            key,
            (incarnation, assigned_at),
            log_config(settings),
            replicas.len() > 1,
        )?;
        self.write().insert(key, Arc::new(partition));
        Ok(())
    }

    /// A partition was removed by the command at log index `before`:
    /// remove every incarnation older than that.
    pub fn remove(&self, key: PartitionKey, before: u64) -> io::Result<()> {
        {
            let mut partitions = self.write();
            if partitions.get(&key).is_some_and(|p| p.incarnation < before) {
                partitions.remove(&key);
            }
        }
        for incarnation in self.layout.incarnations(key)? {
            if incarnation < before && self.layout.trash(key, incarnation)? {
                self.trash_added.notify_one();
            }
        }
        Ok(())
    }

    /// Empty a partition's log (PurgeStream, PurgeTopic).
    pub fn purge(&self, key: PartitionKey) -> io::Result<()> {
        match self.get(key) {
            Some(partition) => {
                let mut log = partition.lock_log();
                log.purge()?;
                partition.replica.purged(&log)
            }
            None => Ok(()),
        }
    }

    /// The partition's leader, epoch or in-sync set changed.
    pub fn state_changed(&self, key: PartitionKey) {
        if let Some(partition) = self.get(key) {
            partition.replica.note_state_changed();
            partition.replica.changed.notify_waiters();
        }
    }

    pub fn configure(&self, key: PartitionKey, settings: &TopicSettings) {
        if let Some(partition) = self.get(key) {
            partition
                .log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .set_config(log_config(settings));
        }
    }

    /// Make the local partitions match `state` as of log index `applied`
    /// (at start-up and after installing a snapshot): open every partition
    /// assigned here, drop every other one — except directories of a later
    /// incarnation than `applied`, which the log has yet to replay.
    pub fn reconcile(&self, state: &MetadataState, applied: u64) -> io::Result<()> {
        let mut desired = HashSet::new();
        for (key, topic, partition) in state.partitions() {
            if partition.replicas.contains(&self.node_id) {
                desired.insert(key);
                self.create(
                    key,
                    &partition.replicas,
                    (partition.incarnation, partition.assigned_at(self.node_id)),
                    &topic.settings,
                )?;
            }
        }
        let stale: Vec<PartitionKey> = self
            .read()
            .keys()
            .filter(|key| !desired.contains(key))
            .copied()
            .collect();
        for key in stale {
            self.remove(key, applied + 1)?;
        }
        for (key, incarnation) in self.layout.scan()? {
            if !desired.contains(&key) && incarnation <= applied {
                self.remove(key, applied + 1)?;
            }
        }
        Ok(())
    }

    /// Delete what was moved into the trash, whenever something is added
    /// (and once at start). Runs until the task is dropped.
    pub async fn empty_trash_forever(self: Arc<Self>) {
        loop {
            let registry = self.clone();
            match tokio::task::spawn_blocking(move || registry.layout.empty_trash()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::debug!(directories = n, "emptied the trash"),
                Ok(Err(e)) => tracing::warn!("emptying the trash failed: {e}"),
                Err(e) => tracing::warn!("trash task failed: {e}"),
            }
            self.trash_added.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::FsyncPolicy;

    fn settings() -> TopicSettings {
        TopicSettings {
            compression_algorithm: 1,
            message_expiry_us: u64::MAX,
            max_topic_size: u64::MAX,
            segment_size_bytes: 1 << 20,
            replication_factor: 1,
            min_in_sync: 1,
            pending_min_in_sync: None,
            fsync: FsyncPolicy::Never,
        }
    }

    fn registry(dir: &std::path::Path) -> PartitionRegistry {
        PartitionRegistry::new(0, Layout::new(dir))
    }

    fn write_message(partition: &Partition) {
        let mut batch = crate::storage::batch::tests::encoded_batch(&[b"hello"]);
        partition
            .log
            .lock()
            .unwrap()
            .append(&mut batch, 1, partition.id, 1)
            .unwrap();
    }

    #[test]
    fn replaying_a_delete_and_recreate_of_one_partition_id_keeps_the_new_data() {
        let dir = tempfile::tempdir().unwrap();
        let key = (0, 0, 4);
        // Live: created at index 10, deleted at 11, created again at 12
        // and written to.
        let live = registry(dir.path());
        live.create(key, &[0], (10, 10), &settings()).unwrap();
        live.remove(key, 11).unwrap();
        live.create(key, &[0], (12, 12), &settings()).unwrap();
        write_message(&live.get(key).unwrap());
        drop(live);

        // Replay after a crash, one entry at a time.
        let replay = registry(dir.path());
        replay.create(key, &[0], (10, 10), &settings()).unwrap();
        assert!(replay.get(key).is_none(), "the directory is the future's");
        replay.remove(key, 11).unwrap();
        replay.create(key, &[0], (12, 12), &settings()).unwrap();
        let partition = replay.get(key).unwrap();
        assert_eq!(partition.log.lock().unwrap().messages_count(), 1);
    }

    #[test]
    fn a_stale_directory_is_replaced_and_only_assigned_partitions_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = (1, 2, 0);
        let first = registry(dir.path());
        first.create(key, &[0], (5, 5), &settings()).unwrap();
        write_message(&first.get(key).unwrap());
        drop(first);
        let second = registry(dir.path());
        second.create(key, &[0], (9, 9), &settings()).unwrap();
        assert_eq!(
            second
                .get(key)
                .unwrap()
                .log
                .lock()
                .unwrap()
                .messages_count(),
            0
        );
        second
            .create((1, 2, 1), &[1, 2], (9, 9), &settings())
            .unwrap();
        assert!(second.get((1, 2, 1)).is_none());
        assert_eq!(second.layout().empty_trash().unwrap(), 1);
    }
}
