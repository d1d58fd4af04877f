//! Applying a command to the metadata: resolve what it names, check it
//! against the current state, then change the state.
//!
//! `MetadataState::apply` is deterministic: the outcome depends only on the
//! state, the command and the entry's log position, never on the clock,
//! randomness or which broker runs it. Every broker applying the same log
//! reaches the same state and gives the same answer to each entry — what
//! replication relies on. Time stamps, hashes and minted secrets are
//! chosen by the proposer and travel inside the command.
//!
//! [`MetadataState::apply`] routes each command to the step that applies
//! it, one family per module:
//! - [`catalog`]: streams, topics and a topic's partitions;
//! - [`users`]: users, passwords, permissions and personal access tokens;
//! - [`groups`]: consumer groups, their members and consumer offsets;
//! - [`replicas`]: partition leaders, in-sync sets, reassignments, the
//!   replication factor and the brokers' registrations.

mod catalog;
mod groups;
mod replicas;
mod users;

use super::command::{Applied, Effect, Envelope, MetadataCommand, Rejection, Response};
use super::state::{MetadataState, NodeMeta, PartitionKey, PartitionMeta, StreamMeta, TopicMeta};
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// Most partitions one topic may have (upstream's per-request cap).
pub const MAX_PARTITIONS_PER_TOPIC: u32 = iggy_binary_protocol::MAX_PARTITIONS_PER_REQUEST;

/// Upstream user status codes.
pub const USER_ACTIVE: u8 = 1;
pub const USER_INACTIVE: u8 = 2;

/// Where in the log an entry is applied, and who is in the cluster.
#[derive(Debug, Clone)]
pub struct ApplyContext {
    /// The entry's log index.
    pub index: u64,
    /// The brokers partitions can be placed on (voting members), sorted.
    pub nodes: Vec<u32>,
}

impl ApplyContext {
    /// The brokers to place replicas on: a broker outside a cluster (no
    /// voting members known) is node 0.
    fn placement_nodes(&self) -> Vec<u32> {
        if self.nodes.is_empty() {
            vec![0]
        } else {
            self.nodes.clone()
        }
    }
}

/// Names are 1..=255 bytes (the wire limit) and not blank.
pub fn valid_name(name: &str) -> bool {
    !name.trim().is_empty() && name.len() <= 255
}

/// The keys of a topic's `partitions`.
fn partition_keys(
    stream_id: u32,
    topic_id: u32,
    partitions: &[PartitionMeta],
) -> Vec<PartitionKey> {
    partitions
        .iter()
        .map(|p| (stream_id, topic_id, p.id))
        .collect()
}

impl MetadataState {
    /// Apply one log entry. A proposal seen before (a retry of one that
    /// committed) gets its first outcome and changes nothing.
    pub fn apply(&mut self, envelope: &Envelope, ctx: &ApplyContext) -> (Response, Vec<Effect>) {
        if let Some(previous) = self.recent.get(&envelope.proposal) {
            return (previous.clone(), Vec::new());
        }
        let mut effects = Vec::new();
        let response = self
            .apply_command(&envelope.command, ctx, &mut effects)
            .map_err(|e| Rejection::from(&e));
        if response.is_err() {
            effects.clear();
        }
        self.recent.remember(envelope.proposal, response.clone());
        (response, effects)
    }

    /// One step per command. A new stream or topic, or a broker's
    /// registration, is built here from the command; its step checks it,
    /// gives it its id and inserts it.
    fn apply_command(
        &mut self,
        command: &MetadataCommand,
        ctx: &ApplyContext,
        effects: &mut Vec<Effect>,
    ) -> Result<Applied> {
        use MetadataCommand as C;
        match command {
            // Streams, topics and partitions: `catalog`.
            C::CreateStream {
                name,
                options,
                created_at,
            } => self.create_stream(StreamMeta {
                id: 0,
                name: name.clone(),
                created_at: *created_at,
                topics: BTreeMap::new(),
                next_topic_id: 0,
                options: options.clone(),
            }),
            C::UpdateStream {
                stream,
                name,
                options,
            } => self.update_stream(stream, name, options.as_ref()),
            C::DeleteStream { stream } => self.delete_stream(stream, ctx, effects),
            C::PurgeStream { stream } => self.purge_stream(stream, effects),
            C::CreateTopic {
                stream,
                name,
                partitions,
                settings,
                options,
                created_at,
            } => {
                let topic = TopicMeta {
                    id: 0,
                    name: name.clone(),
                    created_at: *created_at,
                    partitions: Vec::new(),
                    settings: settings.clone(),
                    options: options.clone(),
                    consumer_groups: BTreeMap::new(),
                    next_group_id: 0,
                };
                self.create_topic(stream, topic, *partitions, ctx, effects)
            }
            C::UpdateTopic {
                stream,
                topic,
                name,
                update,
                options,
            } => self.update_topic(stream, topic, name, update, options.as_ref(), effects),
            C::DeleteTopic { stream, topic } => self.delete_topic(stream, topic, ctx, effects),
            C::PurgeTopic { stream, topic } => self.purge_topic(stream, topic, effects),
            C::CreatePartitions {
                stream,
                topic,
                count,
                created_at,
            } => self.create_partitions(stream, topic, *count, *created_at, ctx, effects),
            C::DeletePartitions {
                stream,
                topic,
                count,
            } => self.delete_partitions(stream, topic, *count, ctx, effects),

            // Users and tokens: `users`.
            C::CreateRootUser { user } => self.create_root_user(user),
            C::CreateUser { user } => self.create_user(user),
            C::UpdateUser {
                user,
                username,
                status,
            } => self.update_user(user, username.as_deref(), *status),
            C::DeleteUser { user } => self.delete_user(user),
            C::ChangePassword {
                user_id,
                expected_hash,
                password_hash,
            } => self.change_password(*user_id, expected_hash, password_hash),
            C::UpdatePermissions { user, permissions } => {
                self.update_permissions(user, permissions.as_ref())
            }
            C::CreateToken {
                user_id,
                name,
                token,
            } => self.create_token(*user_id, name, token),
            C::DeleteToken { user_id, name } => self.delete_token(*user_id, name),
            C::DeleteExpiredTokens { now } => Ok(self.delete_expired_tokens(*now)),

            // Consumer groups and offsets: `groups`.
            C::CreateConsumerGroup {
                stream,
                topic,
                name,
            } => self.create_consumer_group(stream, topic, name),
            C::DeleteConsumerGroup {
                stream,
                topic,
                group,
            } => self.delete_consumer_group(stream, topic, group),
            C::JoinConsumerGroup {
                stream,
                topic,
                group,
                member,
            } => self.join_consumer_group(stream, topic, group, member),
            C::LeaveConsumerGroup {
                stream,
                topic,
                group,
                member,
            } => self.leave_consumer_group(stream, topic, group, member),
            C::LeaveConsumerGroups { member } => {
                self.remove_members(|m| m == member);
                Ok(Applied::Done)
            }
            C::StoreConsumerOffset {
                partition,
                consumer,
                offset,
            } => self.store_consumer_offset(*partition, consumer, *offset),
            C::StoreConsumerOffsets { offsets } => Ok(self.store_consumer_offsets(offsets)),
            C::DeleteConsumerOffset {
                partition,
                consumer,
            } => self.delete_consumer_offset(*partition, consumer),

            // Leaders, in-sync sets, reassignments and brokers: `replicas`.
            C::ElectLeader {
                partition,
                epoch,
                leader,
                in_sync,
            } => self.elect_leader(*partition, *epoch, *leader, in_sync, effects),
            C::ChangeInSync {
                partition,
                epoch,
                in_sync,
            } => self.change_in_sync(*partition, *epoch, in_sync, effects),
            C::ReassignReplicas {
                partition,
                replicas,
            } => {
                self.start_reassignment(ctx, *partition, replicas, effects)?;
                Ok(Applied::Done)
            }
            C::ChangeReplicationFactor {
                stream_id,
                topic_id,
                factor,
                min_in_sync,
            } => self.change_replication_factor(
                (*stream_id, *topic_id),
                *factor,
                *min_in_sync,
                ctx,
                effects,
            ),
            C::CompleteReassignment { partition, epoch } => {
                self.complete_reassignment(*partition, *epoch, ctx, effects)
            }
            C::RegisterNode {
                node,
                epoch,
                advertised,
                version,
                storage,
                zone,
                metadata_version,
            } => {
                let registration = NodeMeta {
                    epoch: *epoch,
                    advertised: advertised.clone(),
                    version: version.clone(),
                    storage: *storage,
                    zone: zone.clone(),
                    metadata_version: *metadata_version,
                };
                self.register_node(*node, registration, effects)
            }
            // The first uid applied names the cluster for good.
            C::NameCluster { uid } => {
                self.cluster_uid.get_or_insert(*uid);
                Ok(Applied::Done)
            }
        }
    }

    /// The partition `key` names, or why there is none.
    fn partition_mut(&mut self, (s, t, p): PartitionKey) -> Result<&mut PartitionMeta> {
        let topic = self
            .streams
            .get_mut(&s)
            .ok_or(Error::StreamIdNotFound(s))?
            .topics
            .get_mut(&t)
            .ok_or(Error::TopicIdNotFound(t))?;
        topic
            .partitions
            .get_mut(p as usize)
            .ok_or(Error::PartitionNotFound(p))
    }
}

#[cfg(test)]
mod tests;
