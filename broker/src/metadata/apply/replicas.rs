//! Where partitions live and who leads them: leader elections, in-sync
//! sets, reassignments (add → catch up → switch → remove), the replication
//! factor, and brokers registering after a start.
//!
//! Changes a partition's leader decides name the leader epoch they were
//! decided in; one from an older epoch is stale and refused, so a leader
//! cut off from the cluster cannot change anything once a new one leads.

use super::{ApplyContext, partition_keys};
use crate::error::{Error, Result};
use crate::metadata::command::{Applied, Effect};
use crate::metadata::placement;
use crate::metadata::state::{MetadataState, NodeMeta, PartitionKey, PartitionMeta};

impl MetadataState {
    /// A new leader for a partition whose leader is lost, bumping its
    /// epoch.
    pub(super) fn elect_leader(
        &mut self,
        partition: PartitionKey,
        epoch: u32,
        leader: u32,
        in_sync: &[u32],
        effects: &mut Vec<Effect>,
    ) -> Result<Applied> {
        let meta = self.partition_in_epoch(partition, epoch)?;
        // An election only ever narrows the in-sync set (replicas join it
        // through its leader, ChangeInSync): a proposal made from an older
        // view, naming a replica that has left the set since — in this
        // same epoch — must not bring it back, let alone make it leader
        // with a log that may lack committed messages.
        if !in_sync.contains(&leader) || !in_sync.iter().all(|r| meta.in_sync.contains(r)) {
            return Err(Error::InvalidReplicaSet(format!(
                "leader {leader} and in-sync set {in_sync:?} must be in the in-sync set {:?}",
                meta.in_sync
            )));
        }
        meta.leader = Some(leader);
        meta.leader_epoch += 1;
        meta.in_sync = in_sync.to_vec();
        effects.push(Effect::PartitionStateChanged {
            partitions: vec![partition],
        });
        Ok(Applied::Done)
    }

    /// The partition's leader shrinks or grows its in-sync set.
    pub(super) fn change_in_sync(
        &mut self,
        partition: PartitionKey,
        epoch: u32,
        in_sync: &[u32],
        effects: &mut Vec<Effect>,
    ) -> Result<Applied> {
        let meta = self.partition_in_epoch(partition, epoch)?;
        let leader_kept = meta.leader.is_some_and(|l| in_sync.contains(&l));
        if !leader_kept || !in_sync.iter().all(|r| meta.replicas.contains(r)) {
            return Err(Error::InvalidReplicaSet(format!(
                "in-sync set {in_sync:?} must hold the leader and only replicas of {:?}",
                meta.replicas
            )));
        }
        meta.in_sync = in_sync.to_vec();
        effects.push(Effect::PartitionStateChanged {
            partitions: vec![partition],
        });
        Ok(Applied::Done)
    }

    /// Start moving `partition` to `replicas`: the new ones are added (and
    /// opened where they are placed) and copy the log;
    /// `CompleteReassignment` drops the old ones once the new are in sync.
    pub(super) fn start_reassignment(
        &mut self,
        ctx: &ApplyContext,
        partition: PartitionKey,
        replicas: &[u32],
        effects: &mut Vec<Effect>,
    ) -> Result<()> {
        let mut distinct = replicas.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if replicas.is_empty()
            || distinct.len() != replicas.len()
            || !replicas
                .iter()
                .all(|r| ctx.nodes.is_empty() || ctx.nodes.contains(r))
        {
            return Err(Error::InvalidReplicaSet(format!(
                "{replicas:?} is not a set of distinct brokers of {:?}",
                ctx.nodes
            )));
        }
        let settings = self
            .topic_mut(partition.0, partition.1)
            .ok_or(Error::TopicIdNotFound(partition.1))?
            .settings
            .clone();
        let meta = self.partition_mut(partition)?;
        if let Some(target) = &meta.reassigning {
            return Err(Error::InvalidReplicaSet(format!(
                "partition {} is already moving to {target:?}",
                partition.2
            )));
        }
        let added: Vec<u32> = replicas
            .iter()
            .copied()
            .filter(|r| !meta.replicas.contains(r))
            .collect();
        meta.replicas.extend(&added);
        for node in &added {
            meta.added_at.insert(*node, ctx.index);
        }
        meta.reassigning = Some(replicas.to_vec());
        effects.push(Effect::CreatePartitions {
            partitions: vec![(partition, added)],
            incarnation: meta.incarnation,
            assigned_at: ctx.index,
            settings,
        });
        effects.push(Effect::PartitionStateChanged {
            partitions: vec![partition],
        });
        Ok(())
    }

    /// Every partition of a topic gets `factor` replicas, as one change:
    /// the new replica sets are planned here and each partition that moves
    /// is reassigned. A higher minimum of in-sync replicas takes effect
    /// once the new replicas are in sync.
    pub(super) fn change_replication_factor(
        &mut self,
        (stream_id, topic_id): (u32, u32),
        factor: u8,
        min_in_sync: u8,
        ctx: &ApplyContext,
        effects: &mut Vec<Effect>,
    ) -> Result<Applied> {
        let brokers = ctx.nodes.len().max(1);
        if factor == 0 || factor as usize > brokers {
            return Err(Error::InvalidReplicaSet(format!(
                "a replication factor of {factor} on {brokers} brokers"
            )));
        }
        let topic = self
            .topic_mut(stream_id, topic_id)
            .ok_or(Error::TopicIdNotFound(topic_id))?;
        if let Some(moving) = topic.partitions.iter().find(|p| p.reassigning.is_some()) {
            return Err(Error::InvalidReplicaSet(format!(
                "partition {} is being reassigned already",
                moving.id
            )));
        }
        let moves =
            placement::change_factor(self, &ctx.placement_nodes(), (stream_id, topic_id), factor);
        let topic = self.topic_mut(stream_id, topic_id).expect("checked above");
        topic.settings.replication_factor = factor;
        let min_in_sync = min_in_sync.clamp(1, factor);
        if min_in_sync > topic.settings.min_in_sync && !moves.is_empty() {
            // Raised once the new replicas are in sync.
            topic.settings.pending_min_in_sync = Some(min_in_sync);
        } else {
            topic.settings.min_in_sync = min_in_sync;
            topic.settings.pending_min_in_sync = None;
        }
        let every_partition = partition_keys(stream_id, topic_id, &topic.partitions);
        for (partition, replicas) in &moves {
            self.start_reassignment(ctx, *partition, replicas, effects)?;
        }
        // The minimum of in-sync replicas changed for every one.
        effects.push(Effect::PartitionStateChanged {
            partitions: every_partition,
        });
        Ok(Applied::Done)
    }

    /// Every new replica is in sync and one of them leads: drop the
    /// replicas that are not in the new set.
    pub(super) fn complete_reassignment(
        &mut self,
        partition: PartitionKey,
        epoch: u32,
        ctx: &ApplyContext,
        effects: &mut Vec<Effect>,
    ) -> Result<Applied> {
        let meta = self.partition_in_epoch(partition, epoch)?;
        let Some(target) = meta.reassigning.clone() else {
            return Err(Error::InvalidReplicaSet(format!(
                "partition {} is not being reassigned",
                partition.2
            )));
        };
        let ready = target.iter().all(|r| meta.in_sync.contains(r))
            && meta.leader.is_some_and(|l| target.contains(&l));
        if !ready {
            return Err(Error::InvalidReplicaSet(format!(
                "not every new replica of partition {} is in sync and leading yet",
                partition.2
            )));
        }
        let removed: Vec<u32> = meta
            .replicas
            .iter()
            .copied()
            .filter(|r| !target.contains(r))
            .collect();
        meta.in_sync.retain(|r| target.contains(r));
        meta.added_at.retain(|node, _| target.contains(node));
        meta.replicas = target;
        meta.reassigning = None;
        effects.push(Effect::RemoveReplicas {
            partition,
            nodes: removed,
            before: ctx.index,
        });
        let (stream_id, topic_id, _) = partition;
        let topic = self
            .topic_mut(stream_id, topic_id)
            .expect("the partition's topic");
        let settled = topic.partitions.iter().all(|p| p.reassigning.is_none());
        let partitions = match topic.settings.pending_min_in_sync.take_if(|_| settled) {
            Some(raised) => {
                topic.settings.min_in_sync = raised;
                partition_keys(stream_id, topic_id, &topic.partitions)
            }
            None => vec![partition],
        };
        effects.push(Effect::PartitionStateChanged { partitions });
        Ok(Applied::Done)
    }

    /// A broker (re)started: record how clients reach it and drop the
    /// group members of its earlier processes.
    pub(super) fn register_node(
        &mut self,
        node: u32,
        registration: NodeMeta,
        effects: &mut Vec<Effect>,
    ) -> Result<Applied> {
        self.remove_members(|m| m.node == node && m.epoch != registration.epoch);
        // A broker back from a restart (a new process epoch) or with
        // another disk leaves every in-sync set, and leadership where it
        // led: it rejoins by fetching up to the committed offset. Until
        // then it cannot be elected — what it has may be less than the
        // metadata says (a log cut at its last fetch, a disk that lost
        // data) and a leader's log is the truth its followers cut theirs
        // to.
        let known = self.nodes.get(&node);
        let restarted = known.is_some_and(|known| known.epoch != registration.epoch);
        let lost_disk =
            known.is_some_and(|known| known.storage != 0 && known.storage != registration.storage);
        if restarted || lost_disk {
            let fenced = self.fence_from_in_sync(node);
            if !fenced.is_empty() {
                effects.push(Effect::PartitionStateChanged { partitions: fenced });
            }
        }
        self.nodes.insert(node, registration);
        Ok(Applied::Done)
    }

    /// Take `node` out of every in-sync set, and out of leadership where
    /// another in-sync replica can take over (in the next epoch). A
    /// partition whose only in-sync replica it is keeps it: there is no
    /// better copy. Returns the partitions changed.
    fn fence_from_in_sync(&mut self, node: u32) -> Vec<PartitionKey> {
        let mut changed = Vec::new();
        for stream in self.streams.values_mut() {
            for topic in stream.topics.values_mut() {
                for partition in &mut topic.partitions {
                    if !partition.in_sync.contains(&node) || partition.in_sync.len() == 1 {
                        continue;
                    }
                    partition.in_sync.retain(|r| *r != node);
                    if partition.leader == Some(node) {
                        partition.leader = partition.in_sync.first().copied();
                        partition.leader_epoch += 1;
                    }
                    changed.push((stream.id, topic.id, partition.id));
                }
            }
        }
        changed
    }

    /// A partition that must still be in leader epoch `epoch` (a change
    /// decided in an older epoch is stale and refused).
    fn partition_in_epoch(&mut self, key: PartitionKey, epoch: u32) -> Result<&mut PartitionMeta> {
        let meta = self
            .streams
            .get_mut(&key.0)
            .and_then(|s| s.topics.get_mut(&key.1))
            .and_then(|t| t.partitions.get_mut(key.2 as usize))
            .ok_or(Error::PartitionNotFound(key.2))?;
        if meta.leader_epoch != epoch {
            return Err(Error::StaleLeaderEpoch {
                current: meta.leader_epoch,
                given: epoch,
            });
        }
        Ok(meta)
    }
}
