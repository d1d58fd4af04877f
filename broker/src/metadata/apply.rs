//! Applying a command to the metadata: resolve what it names, check it
//! against the current state, then change the state.
//!
//! `MetadataState::apply` is deterministic: the outcome depends only on the
//! state, the command and the entry's log position, never on the clock,
//! randomness or which broker runs it. Every broker applying the same log
//! reaches the same state and gives the same answer to each entry — what
//! replication relies on. Time stamps, hashes and minted secrets are
//! chosen by the proposer and travel inside the command.

use super::command::{
    Applied, Effect, Envelope, Ident, MetadataCommand, Rejection, Response, TopicUpdate,
};
use super::state::{
    ConsumerGroupMeta, MetadataState, NodeMeta, PartitionKey, PartitionMeta, StreamMeta, TopicMeta,
    UserMeta,
};
use crate::auth::{ROOT_USER_ID, tokens};
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

/// Names are 1..=255 bytes (the wire limit) and not blank.
pub fn valid_name(name: &str) -> bool {
    !name.trim().is_empty() && name.len() <= 255
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

    fn apply_command(
        &mut self,
        command: &MetadataCommand,
        ctx: &ApplyContext,
        effects: &mut Vec<Effect>,
    ) -> Result<Applied> {
        use MetadataCommand as C;
        match command {
            C::CreateStream {
                name,
                options,
                created_at,
            } => {
                if !valid_name(name) {
                    return Err(Error::InvalidStreamName);
                }
                if self.stream_by_name(name).is_some() {
                    return Err(Error::StreamNameAlreadyExists(name.clone()));
                }
                let id = self.next_stream_id;
                self.streams.insert(
                    id,
                    StreamMeta {
                        id,
                        name: name.clone(),
                        created_at: *created_at,
                        topics: BTreeMap::new(),
                        next_topic_id: 0,
                        options: options.clone(),
                    },
                );
                self.next_stream_id = id + 1;
                Ok(Applied::Stream(id))
            }
            C::UpdateStream {
                stream,
                name,
                options,
            } => {
                if !valid_name(name) {
                    return Err(Error::InvalidStreamName);
                }
                let id = self.resolve_stream(stream)?;
                if self.stream_by_name(name).is_some_and(|s| s.id != id) {
                    return Err(Error::StreamNameAlreadyExists(name.clone()));
                }
                let meta = self.streams.get_mut(&id).expect("resolved");
                meta.name = name.clone();
                if let Some(options) = options {
                    meta.options = options.clone();
                }
                Ok(Applied::Done)
            }
            C::DeleteStream { stream } => {
                let id = self.resolve_stream(stream)?;
                let removed = self.streams.remove(&id).expect("resolved");
                let partitions = removed
                    .topics
                    .values()
                    .flat_map(|t| t.partitions.iter().map(move |p| (id, t.id, p.id)))
                    .collect();
                effects.push(Effect::RemovePartitions {
                    partitions,
                    before: ctx.index,
                });
                Ok(Applied::Done)
            }
            C::PurgeStream { stream } => {
                let id = self.resolve_stream(stream)?;
                let stream = self.streams.get_mut(&id).expect("resolved");
                let mut partitions = Vec::new();
                for topic in stream.topics.values_mut() {
                    for partition in &mut topic.partitions {
                        partition.offsets.clear();
                        partitions.push((id, topic.id, partition.id));
                    }
                }
                effects.push(Effect::PurgePartitions { partitions });
                Ok(Applied::Done)
            }
            C::CreateTopic {
                stream,
                name,
                partitions,
                settings,
                options,
                created_at,
            } => {
                if !valid_name(name) {
                    return Err(Error::InvalidTopicName);
                }
                if *partitions > MAX_PARTITIONS_PER_TOPIC {
                    return Err(Error::TooManyPartitions);
                }
                let stream_id = self.resolve_stream(stream)?;
                let stream_meta = &self.streams[&stream_id];
                if stream_meta.topics.values().any(|t| t.name == *name) {
                    return Err(Error::TopicNameAlreadyExists(name.clone()));
                }
                let topic_id = stream_meta.next_topic_id;
                let new_partitions = self.new_partitions(
                    ctx,
                    (stream_id, topic_id),
                    0..*partitions,
                    *created_at,
                    settings,
                    effects,
                );
                let stream_meta = self.streams.get_mut(&stream_id).expect("resolved");
                stream_meta.topics.insert(
                    topic_id,
                    TopicMeta {
                        id: topic_id,
                        name: name.clone(),
                        created_at: *created_at,
                        partitions: new_partitions,
                        settings: settings.clone(),
                        options: options.clone(),
                        consumer_groups: BTreeMap::new(),
                        next_group_id: 0,
                    },
                );
                stream_meta.next_topic_id = topic_id + 1;
                Ok(Applied::Topic(stream_id, topic_id))
            }
            C::UpdateTopic {
                stream,
                topic,
                name,
                update,
                options,
            } => {
                if !valid_name(name) {
                    return Err(Error::InvalidTopicName);
                }
                let (stream_id, topic_id) = self.resolve_topic(stream, topic)?;
                if self.streams[&stream_id]
                    .topics
                    .values()
                    .any(|t| t.name == *name && t.id != topic_id)
                {
                    return Err(Error::TopicNameAlreadyExists(name.clone()));
                }
                let meta = self.topic_mut(stream_id, topic_id).expect("resolved");
                meta.name = name.clone();
                apply_topic_update(&mut meta.settings, update);
                if let Some(options) = options {
                    meta.options = options.clone();
                }
                effects.push(Effect::ConfigurePartitions {
                    partitions: meta
                        .partitions
                        .iter()
                        .map(|p| (stream_id, topic_id, p.id))
                        .collect(),
                    settings: meta.settings.clone(),
                });
                Ok(Applied::Done)
            }
            C::DeleteTopic { stream, topic } => {
                let (stream_id, topic_id) = self.resolve_topic(stream, topic)?;
                let removed = self
                    .streams
                    .get_mut(&stream_id)
                    .expect("resolved")
                    .topics
                    .remove(&topic_id)
                    .expect("resolved");
                effects.push(Effect::RemovePartitions {
                    partitions: removed
                        .partitions
                        .iter()
                        .map(|p| (stream_id, topic_id, p.id))
                        .collect(),
                    before: ctx.index,
                });
                Ok(Applied::Done)
            }
            C::PurgeTopic { stream, topic } => {
                let (stream_id, topic_id) = self.resolve_topic(stream, topic)?;
                let meta = self.topic_mut(stream_id, topic_id).expect("resolved");
                for partition in &mut meta.partitions {
                    partition.offsets.clear();
                }
                effects.push(Effect::PurgePartitions {
                    partitions: meta
                        .partitions
                        .iter()
                        .map(|p| (stream_id, topic_id, p.id))
                        .collect(),
                });
                Ok(Applied::Done)
            }
            C::CreatePartitions {
                stream,
                topic,
                count,
                created_at,
            } => {
                if *count == 0 || *count > MAX_PARTITIONS_PER_TOPIC {
                    return Err(Error::InvalidPartitionsCount);
                }
                let (stream_id, topic_id) = self.resolve_topic(stream, topic)?;
                let meta = self.topic(stream_id, topic_id).expect("resolved");
                let existing = meta.partitions.len() as u32;
                if existing + count > MAX_PARTITIONS_PER_TOPIC {
                    return Err(Error::TooManyPartitions);
                }
                let settings = meta.settings.clone();
                let new_partitions = self.new_partitions(
                    ctx,
                    (stream_id, topic_id),
                    existing..existing + count,
                    *created_at,
                    &settings,
                    effects,
                );
                let meta = self.topic_mut(stream_id, topic_id).expect("resolved");
                meta.partitions.extend(new_partitions);
                bump_groups(meta);
                Ok(Applied::Done)
            }
            C::DeletePartitions {
                stream,
                topic,
                count,
            } => {
                let (stream_id, topic_id) = self.resolve_topic(stream, topic)?;
                let meta = self.topic_mut(stream_id, topic_id).expect("resolved");
                let existing = meta.partitions.len() as u32;
                if *count == 0 || *count > existing {
                    return Err(Error::InvalidPartitionsCount);
                }
                let removed = meta.partitions.split_off((existing - count) as usize);
                bump_groups(meta);
                effects.push(Effect::RemovePartitions {
                    partitions: removed
                        .iter()
                        .map(|p| (stream_id, topic_id, p.id))
                        .collect(),
                    before: ctx.index,
                });
                Ok(Applied::Done)
            }
            C::CreateRootUser { user } => {
                if !self.users.is_empty() {
                    return Ok(Applied::RootUser(false));
                }
                let mut user = user.clone();
                user.id = ROOT_USER_ID;
                self.users.insert(ROOT_USER_ID, user);
                self.next_user_id = self.next_user_id.max(ROOT_USER_ID + 1);
                Ok(Applied::RootUser(true))
            }
            C::CreateUser { user } => {
                if self.user_by_name(&user.username).is_some() {
                    return Err(Error::UserAlreadyExists);
                }
                let id = self.next_user_id;
                let mut user = user.clone();
                user.id = id;
                user.tokens.clear();
                self.users.insert(id, user);
                self.next_user_id = id + 1;
                Ok(Applied::User(id))
            }
            C::UpdateUser {
                user,
                username,
                status,
            } => {
                let id = self.resolve_user(user)?;
                if id == ROOT_USER_ID && status.is_some_and(|s| s != USER_ACTIVE) {
                    return Err(Error::InvalidUserStatus);
                }
                if let Some(name) = username
                    && self.user_by_name(name).is_some_and(|u| u.id != id)
                {
                    return Err(Error::UserAlreadyExists);
                }
                let meta = self.users.get_mut(&id).expect("resolved");
                if let Some(name) = username {
                    meta.username = name.clone();
                }
                if let Some(status) = status {
                    meta.status = *status;
                }
                Ok(Applied::Done)
            }
            C::DeleteUser { user } => {
                let id = self.resolve_user(user)?;
                if id == ROOT_USER_ID {
                    return Err(Error::CannotDeleteUser(id));
                }
                self.users.remove(&id);
                Ok(Applied::Done)
            }
            C::ChangePassword {
                user_id,
                expected_hash,
                password_hash,
            } => {
                let user = self
                    .users
                    .get_mut(user_id)
                    .ok_or_else(|| Error::ResourceNotFound(format!("user {user_id}")))?;
                if user.password_hash != *expected_hash {
                    // Changed by someone else since the proposer checked it.
                    return Err(Error::InvalidCredentials);
                }
                user.password_hash = password_hash.clone();
                Ok(Applied::Done)
            }
            C::UpdatePermissions { user, permissions } => {
                let id = self.resolve_user(user)?;
                if id == ROOT_USER_ID {
                    return Err(Error::CannotChangePermissions(id));
                }
                self.users.get_mut(&id).expect("resolved").permissions = permissions.clone();
                Ok(Applied::Done)
            }
            C::CreateToken {
                user_id,
                name,
                token,
            } => {
                let user: &mut UserMeta =
                    self.users.get_mut(user_id).ok_or(Error::Unauthenticated)?;
                if user.tokens.contains_key(name) {
                    return Err(Error::PersonalAccessTokenAlreadyExists(name.clone()));
                }
                if user.tokens.len() >= tokens::MAX_TOKENS_PER_USER {
                    return Err(Error::PersonalAccessTokensLimitReached);
                }
                user.tokens.insert(name.clone(), token.clone());
                Ok(Applied::Done)
            }
            C::DeleteToken { user_id, name } => {
                let removed = self
                    .users
                    .get_mut(user_id)
                    .and_then(|u| u.tokens.remove(name));
                match removed {
                    Some(_) => Ok(Applied::Done),
                    None => Err(Error::ResourceNotFound(format!(
                        "personal access token `{name}`"
                    ))),
                }
            }
            C::DeleteExpiredTokens { now } => {
                let mut removed = 0;
                for user in self.users.values_mut() {
                    let before = user.tokens.len();
                    user.tokens
                        .retain(|_, t| t.expiry_at.is_none_or(|at| at > *now));
                    removed += before - user.tokens.len();
                }
                Ok(Applied::Removed(removed))
            }
            C::CreateConsumerGroup {
                stream,
                topic,
                name,
            } => {
                let (stream_id, topic_id) = self.resolve_topic(stream, topic)?;
                let meta = self.topic_mut(stream_id, topic_id).expect("resolved");
                if meta.consumer_groups.values().any(|g| g.name == *name) {
                    return Err(Error::ConsumerGroupNameAlreadyExists(name.clone()));
                }
                let id = meta.next_group_id;
                meta.consumer_groups.insert(
                    id,
                    ConsumerGroupMeta {
                        id,
                        name: name.clone(),
                        members: BTreeMap::new(),
                        generation: 0,
                    },
                );
                meta.next_group_id = id + 1;
                Ok(Applied::Group(stream_id, topic_id, id))
            }
            C::DeleteConsumerGroup {
                stream,
                topic,
                group,
            } => {
                let (s, t, g) = self.resolve_group(stream, topic, group)?;
                let meta = self.topic_mut(s, t).expect("resolved");
                meta.consumer_groups.remove(&g);
                for partition in &mut meta.partitions {
                    partition
                        .offsets
                        .remove(&super::state::ConsumerKey::Group(g));
                }
                Ok(Applied::Done)
            }
            C::JoinConsumerGroup {
                stream,
                topic,
                group,
                member,
            } => {
                let key = self.resolve_group(stream, topic, group)?;
                let meta = self.group_mut(key);
                if meta.members.insert(member.client_id, *member) != Some(*member) {
                    meta.generation += 1;
                }
                Ok(Applied::Group(key.0, key.1, key.2))
            }
            C::LeaveConsumerGroup {
                stream,
                topic,
                group,
                member,
            } => {
                let key = self.resolve_group(stream, topic, group)?;
                let meta = self.group_mut(key);
                match meta.members.get(&member.client_id) {
                    Some(m) if m == member => {
                        meta.members.remove(&member.client_id);
                        meta.generation += 1;
                        Ok(Applied::Done)
                    }
                    _ => Err(Error::ConsumerGroupMemberNotFound),
                }
            }
            C::LeaveConsumerGroups { member } => {
                self.remove_members(|m| m == member);
                Ok(Applied::Done)
            }
            C::StoreConsumerOffset {
                partition,
                consumer,
                offset,
            } => {
                let meta = self.partition_mut(*partition)?;
                meta.offsets.insert(consumer.clone(), *offset);
                Ok(Applied::Done)
            }
            C::StoreConsumerOffsets { offsets } => {
                for (partition, consumer, offset) in offsets {
                    if let Ok(meta) = self.partition_mut(*partition) {
                        meta.offsets.insert(consumer.clone(), *offset);
                    }
                }
                Ok(Applied::Done)
            }
            C::DeleteConsumerOffset {
                partition,
                consumer,
            } => {
                let meta = self.partition_mut(*partition)?;
                match meta.offsets.remove(consumer) {
                    Some(_) => Ok(Applied::Done),
                    None => Err(Error::ConsumerOffsetNotFound(partition.2)),
                }
            }
            C::ElectLeader {
                partition,
                epoch,
                leader,
                in_sync,
            } => {
                let meta = self.partition_in_epoch(*partition, *epoch)?;
                // An election only ever narrows the in-sync set (replicas
                // join it through its leader, ChangeInSync): a proposal
                // made from an older view, naming a replica that has left
                // the set since — in this same epoch — must not bring it
                // back, let alone make it leader with a log that may lack
                // committed messages.
                if !in_sync.contains(leader) || !in_sync.iter().all(|r| meta.in_sync.contains(r)) {
                    return Err(Error::InvalidReplicaSet(format!(
                        "leader {leader} and in-sync set {in_sync:?} must be in the in-sync set {:?}",
                        meta.in_sync
                    )));
                }
                meta.leader = Some(*leader);
                meta.leader_epoch += 1;
                meta.in_sync = in_sync.clone();
                effects.push(Effect::PartitionStateChanged {
                    partitions: vec![*partition],
                });
                Ok(Applied::Done)
            }
            C::ChangeInSync {
                partition,
                epoch,
                in_sync,
            } => {
                let meta = self.partition_in_epoch(*partition, *epoch)?;
                let leader_kept = meta.leader.is_some_and(|l| in_sync.contains(&l));
                if !leader_kept || !in_sync.iter().all(|r| meta.replicas.contains(r)) {
                    return Err(Error::InvalidReplicaSet(format!(
                        "in-sync set {in_sync:?} must hold the leader and only replicas of {:?}",
                        meta.replicas
                    )));
                }
                meta.in_sync = in_sync.clone();
                effects.push(Effect::PartitionStateChanged {
                    partitions: vec![*partition],
                });
                Ok(Applied::Done)
            }
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
            } => {
                let brokers = ctx.nodes.len().max(1);
                if *factor == 0 || *factor as usize > brokers {
                    return Err(Error::InvalidReplicaSet(format!(
                        "a replication factor of {factor} on {brokers} brokers"
                    )));
                }
                let topic = self
                    .topic_mut(*stream_id, *topic_id)
                    .ok_or(Error::TopicIdNotFound(*topic_id))?;
                if let Some(moving) = topic.partitions.iter().find(|p| p.reassigning.is_some()) {
                    return Err(Error::InvalidReplicaSet(format!(
                        "partition {} is being reassigned already",
                        moving.id
                    )));
                }
                let nodes = if ctx.nodes.is_empty() {
                    vec![0]
                } else {
                    ctx.nodes.clone()
                };
                let moves =
                    super::placement::change_factor(self, &nodes, (*stream_id, *topic_id), *factor);
                let topic = self
                    .topic_mut(*stream_id, *topic_id)
                    .expect("checked above");
                topic.settings.replication_factor = *factor;
                let min_in_sync = (*min_in_sync).clamp(1, *factor);
                if min_in_sync > topic.settings.min_in_sync && !moves.is_empty() {
                    // Raised once the new replicas are in sync.
                    topic.settings.pending_min_in_sync = Some(min_in_sync);
                } else {
                    topic.settings.min_in_sync = min_in_sync;
                    topic.settings.pending_min_in_sync = None;
                }
                let every_partition = topic
                    .partitions
                    .iter()
                    .map(|p| (*stream_id, *topic_id, p.id))
                    .collect();
                for (partition, replicas) in &moves {
                    self.start_reassignment(ctx, *partition, replicas, effects)?;
                }
                // The minimum of in-sync replicas changed for every one.
                effects.push(Effect::PartitionStateChanged {
                    partitions: every_partition,
                });
                Ok(Applied::Done)
            }
            C::CompleteReassignment { partition, epoch } => {
                let meta = self.partition_in_epoch(*partition, *epoch)?;
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
                    partition: *partition,
                    nodes: removed,
                    before: ctx.index,
                });
                let (stream_id, topic_id, _) = *partition;
                let topic = self
                    .topic_mut(stream_id, topic_id)
                    .expect("the partition's topic");
                let settled = topic.partitions.iter().all(|p| p.reassigning.is_none());
                let partitions = match topic.settings.pending_min_in_sync.take_if(|_| settled) {
                    Some(raised) => {
                        topic.settings.min_in_sync = raised;
                        topic
                            .partitions
                            .iter()
                            .map(|p| (stream_id, topic_id, p.id))
                            .collect()
                    }
                    None => vec![*partition],
                };
                effects.push(Effect::PartitionStateChanged { partitions });
                Ok(Applied::Done)
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
                self.remove_members(|m| m.node == *node && m.epoch != *epoch);
                // A broker back from a restart (a new process epoch) or with
                // another disk leaves every in-sync set, and leadership
                // where it led: it rejoins by fetching up to the committed
                // offset. Until then it cannot be elected — what it has may
                // be less than the metadata says (a log cut at its last
                // fetch, a disk that lost data) and a leader's log is the
                // truth its followers cut theirs to.
                let restarted = self
                    .nodes
                    .get(node)
                    .is_some_and(|known| known.epoch != *epoch);
                let lost_disk = self
                    .nodes
                    .get(node)
                    .is_some_and(|known| known.storage != 0 && known.storage != *storage);
                if restarted || lost_disk {
                    let fenced = self.fence_from_in_sync(*node);
                    if !fenced.is_empty() {
                        effects.push(Effect::PartitionStateChanged { partitions: fenced });
                    }
                }
                self.nodes.insert(
                    *node,
                    NodeMeta {
                        epoch: *epoch,
                        advertised: advertised.clone(),
                        version: version.clone(),
                        storage: *storage,
                        zone: zone.clone(),
                        metadata_version: *metadata_version,
                    },
                );
                Ok(Applied::Done)
            }
        }
    }

    fn group_mut(&mut self, (s, t, g): (u32, u32, u32)) -> &mut ConsumerGroupMeta {
        self.topic_mut(s, t)
            .and_then(|t| t.consumer_groups.get_mut(&g))
            .expect("resolved group")
    }

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

    /// Remove every group member matching `gone`, bumping the generation
    /// of each group that lost one.
    fn remove_members(&mut self, gone: impl Fn(&super::state::Member) -> bool) {
        for stream in self.streams.values_mut() {
            for topic in stream.topics.values_mut() {
                for group in topic.consumer_groups.values_mut() {
                    let before = group.members.len();
                    group.members.retain(|_, m| !gone(m));
                    if group.members.len() != before {
                        group.generation += 1;
                    }
                }
            }
        }
    }

    /// Start moving `partition` to `replicas`: the new ones are added (and
    /// opened where they are placed) and copy the log;
    /// `CompleteReassignment` drops the old ones once the new are in sync.
    fn start_reassignment(
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

    /// Take `node` (which lost its disk) out of every in-sync set, and
    /// out of leadership where another in-sync replica can take over (in
    /// the next epoch). A partition whose only in-sync replica it was
    /// keeps it: there is no better copy. Returns the partitions changed.
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

    /// Partitions `ids` of a topic, placed on brokers, and the effect that
    /// opens them where they are placed.
    fn new_partitions(
        &self,
        ctx: &ApplyContext,
        (stream_id, topic_id): (u32, u32),
        ids: std::ops::Range<u32>,
        created_at: u64,
        settings: &super::state::TopicSettings,
        effects: &mut Vec<Effect>,
    ) -> Vec<PartitionMeta> {
        let nodes = if ctx.nodes.is_empty() {
            vec![0]
        } else {
            ctx.nodes.clone()
        };
        let placed =
            super::placement::place(self, &nodes, settings.replication_factor, ids.len() as u32);
        let partitions: Vec<PartitionMeta> = ids
            .zip(placed)
            .map(|(id, replicas)| PartitionMeta {
                id,
                created_at,
                leader: replicas.first().copied(),
                leader_epoch: 1,
                in_sync: replicas.clone(),
                reassigning: None,
                replicas,
                incarnation: ctx.index,
                added_at: BTreeMap::new(),
                offsets: BTreeMap::new(),
            })
            .collect();
        effects.push(Effect::CreatePartitions {
            partitions: partitions
                .iter()
                .map(|p| ((stream_id, topic_id, p.id), p.replicas.clone()))
                .collect(),
            incarnation: ctx.index,
            assigned_at: ctx.index,
            settings: settings.clone(),
        });
        partitions
    }
}

fn apply_topic_update(settings: &mut super::state::TopicSettings, update: &TopicUpdate) {
    if let Some(c) = update.compression_algorithm {
        settings.compression_algorithm = c;
    }
    if let Some(expiry) = update.message_expiry_us {
        settings.message_expiry_us = expiry;
    }
    if let Some(size) = update.max_topic_size {
        settings.max_topic_size = size;
    }
}

/// The partition count changed: every group's assignment does too.
fn bump_groups(topic: &mut TopicMeta) {
    for group in topic.consumer_groups.values_mut() {
        group.generation += 1;
    }
}

/// `Ident` for a numeric id (commands built from resolved ids).
pub fn id(id: u32) -> Ident {
    Ident::Id(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::command::ProposalId;
    use crate::metadata::state::{Member, TopicSettings};
    use crate::storage::FsyncPolicy;

    fn settings(factor: u8) -> TopicSettings {
        TopicSettings {
            compression_algorithm: 1,
            message_expiry_us: u64::MAX,
            max_topic_size: u64::MAX,
            segment_size_bytes: 1 << 30,
            replication_factor: factor,
            min_in_sync: 1,
            pending_min_in_sync: None,
            fsync: FsyncPolicy::Always,
        }
    }

    #[derive(Clone)]
    struct Log {
        index: u64,
        nodes: Vec<u32>,
    }

    impl Log {
        fn new(nodes: &[u32]) -> Self {
            Self {
                index: 0,
                nodes: nodes.to_vec(),
            }
        }

        fn apply(&mut self, state: &mut MetadataState, command: MetadataCommand) -> Response {
            self.index += 1;
            let envelope = Envelope {
                proposal: ProposalId {
                    node: 0,
                    epoch: 1,
                    seq: self.index,
                },
                command,
            };
            let ctx = ApplyContext {
                index: self.index,
                nodes: self.nodes.clone(),
            };
            state.apply(&envelope, &ctx).0
        }
    }

    fn create_stream(name: &str) -> MetadataCommand {
        MetadataCommand::CreateStream {
            name: name.into(),
            options: vec![],
            created_at: 1,
        }
    }

    fn create_topic(stream: &str, name: &str, partitions: u32, factor: u8) -> MetadataCommand {
        MetadataCommand::CreateTopic {
            stream: Ident::Name(stream.into()),
            name: name.into(),
            partitions,
            settings: settings(factor),
            options: vec![],
            created_at: 2,
        }
    }

    #[test]
    fn replaying_the_log_rebuilds_the_same_state_and_answers() {
        let commands = [
            create_stream("s"),
            create_topic("s", "t", 3, 1),
            create_stream("s"),
            MetadataCommand::DeletePartitions {
                stream: Ident::Name("s".into()),
                topic: Ident::Name("t".into()),
                count: 1,
            },
        ];
        let (mut a, mut b) = (MetadataState::default(), MetadataState::default());
        let (mut log_a, mut log_b) = (Log::new(&[0, 1, 2]), Log::new(&[0, 1, 2]));
        let answers_a: Vec<Response> = commands
            .iter()
            .map(|c| log_a.apply(&mut a, c.clone()))
            .collect();
        let answers_b: Vec<Response> = commands
            .iter()
            .map(|c| log_b.apply(&mut b, c.clone()))
            .collect();
        assert_eq!(a, b);
        assert_eq!(answers_a, answers_b);
        assert_eq!(answers_a[2].as_ref().unwrap_err().code, 1012);
        assert_eq!(a.streams[&0].topics[&0].partitions.len(), 2);
    }

    #[test]
    fn a_retried_proposal_gets_its_first_answer_and_changes_nothing() {
        let mut state = MetadataState::default();
        let envelope = Envelope {
            proposal: ProposalId {
                node: 1,
                epoch: 9,
                seq: 1,
            },
            command: create_stream("s"),
        };
        let ctx = ApplyContext {
            index: 1,
            nodes: vec![0],
        };
        let (first, _) = state.apply(&envelope, &ctx);
        let (again, effects) = state.apply(&envelope, &ctx);
        assert_eq!(first, Ok(Applied::Stream(0)));
        assert_eq!(again, first);
        assert!(effects.is_empty());
        assert_eq!(state.streams.len(), 1);
    }

    #[test]
    fn partitions_and_leaders_spread_over_the_brokers() {
        let mut state = MetadataState::default();
        let mut log = Log::new(&[0, 1, 2]);
        log.apply(&mut state, create_stream("s")).unwrap();
        log.apply(&mut state, create_topic("s", "a", 4, 1)).unwrap();
        log.apply(&mut state, create_topic("s", "b", 5, 3)).unwrap();
        let mut leaders = [0usize; 3];
        let mut replicas = [0usize; 3];
        for (_, _, p) in state.partitions() {
            leaders[p.leader().unwrap() as usize] += 1;
            for r in &p.replicas {
                replicas[*r as usize] += 1;
            }
            let mut distinct = p.replicas.clone();
            distinct.dedup();
            assert_eq!(distinct.len(), p.replicas.len());
        }
        assert_eq!(leaders, [3, 3, 3]);
        assert_eq!(replicas, [7, 6, 6]);
    }

    /// A replica moved off a partition and back is a new copy: its
    /// assignment names the command that added it back, so what its
    /// earlier copy still sends can be told apart (and is refused).
    #[test]
    fn a_replica_removed_and_added_back_is_assigned_anew() {
        let mut state = MetadataState::default();
        let mut log = Log::new(&[0, 1, 2]);
        log.apply(&mut state, create_stream("s")).unwrap();
        log.apply(&mut state, create_topic("s", "t", 1, 3)).unwrap();
        let created = state.partition((0, 0, 0)).unwrap().clone();
        assert_eq!(created.assigned_at(2), created.incarnation);
        let complete = |state: &mut MetadataState, log: &mut Log| {
            let p = state.partition((0, 0, 0)).unwrap().clone();
            let target = p.reassigning.clone().unwrap();
            log.apply(
                state,
                MetadataCommand::ChangeInSync {
                    partition: (0, 0, 0),
                    epoch: p.leader_epoch,
                    in_sync: target,
                },
            )
            .unwrap();
            log.apply(
                state,
                MetadataCommand::CompleteReassignment {
                    partition: (0, 0, 0),
                    epoch: p.leader_epoch,
                },
            )
            .unwrap();
        };
        let reassign = |replicas: Vec<u32>| MetadataCommand::ReassignReplicas {
            partition: (0, 0, 0),
            replicas,
        };
        let leader = created.leader.unwrap();
        let moved = *created.replicas.iter().find(|r| **r != leader).unwrap();
        let kept: Vec<u32> = created
            .replicas
            .iter()
            .copied()
            .filter(|r| *r != moved)
            .collect();
        log.apply(&mut state, reassign(kept)).unwrap();
        complete(&mut state, &mut log);
        assert!(state.partition((0, 0, 0)).unwrap().added_at.is_empty());
        log.apply(&mut state, reassign(created.replicas.clone()))
            .unwrap();
        let added_back_at = log.index;
        let back = state.partition((0, 0, 0)).unwrap().clone();
        assert_eq!(back.assigned_at(moved), added_back_at);
        assert_eq!(back.assigned_at(leader), created.incarnation);
        complete(&mut state, &mut log);
        assert_eq!(
            state.partition((0, 0, 0)).unwrap().assigned_at(moved),
            added_back_at,
            "kept once the reassignment completes"
        );
    }

    /// Found by the 100-round churn run: a leader move planned while a
    /// replica was in sync, applied after it had left the set (same
    /// epoch), made it leader with a log short of committed messages.
    #[test]
    fn an_election_from_an_older_view_cannot_bring_back_a_replica_that_left_the_in_sync_set() {
        let mut state = MetadataState::default();
        let mut log = Log::new(&[0, 1, 2]);
        log.apply(&mut state, create_stream("s")).unwrap();
        log.apply(&mut state, create_topic("s", "t", 1, 3)).unwrap();
        let p = state.partition((0, 0, 0)).unwrap().clone();
        let leader = p.leader.unwrap();
        let behind = *p.replicas.iter().find(|r| **r != leader).unwrap();
        let planned = MetadataCommand::ElectLeader {
            partition: (0, 0, 0),
            epoch: p.leader_epoch,
            leader: behind,
            in_sync: p.in_sync.clone(),
        };
        let shrunk: Vec<u32> = p.in_sync.iter().copied().filter(|r| *r != behind).collect();
        log.apply(
            &mut state,
            MetadataCommand::ChangeInSync {
                partition: (0, 0, 0),
                epoch: p.leader_epoch,
                in_sync: shrunk.clone(),
            },
        )
        .unwrap();
        assert!(log.apply(&mut state, planned).is_err());
        let now = state.partition((0, 0, 0)).unwrap();
        assert_eq!((now.leader, &now.in_sync), (Some(leader), &shrunk));
        // An election among those still in sync goes through.
        let other = *shrunk.iter().find(|r| **r != leader).unwrap();
        log.apply(
            &mut state,
            MetadataCommand::ElectLeader {
                partition: (0, 0, 0),
                epoch: p.leader_epoch,
                leader: other,
                in_sync: shrunk,
            },
        )
        .unwrap();
        assert_eq!(state.partition((0, 0, 0)).unwrap().leader, Some(other));
    }

    #[test]
    fn the_cluster_reads_the_least_metadata_version_of_its_members() {
        let mut state = MetadataState::default();
        let mut log = Log::new(&[0, 1, 2]);
        for node in 0..2 {
            log.apply(&mut state, register(node, 1, 100)).unwrap();
        }
        let newest = crate::metadata::command::METADATA_VERSION;
        assert_eq!(state.metadata_version_of([0, 1]), newest);
        assert_eq!(state.metadata_version_of([0, 1, 2]), 0, "2 not registered");
        // A build from before metadata versions registers without one.
        let older: MetadataCommand = serde_json::from_str(
            r#"{"RegisterNode":{"node":2,"epoch":1,"advertised":{"host":"","tcp":0,
                "quic":0,"http":0,"websocket":0},"version":"0.1.0","storage":102,"zone":""}}"#,
        )
        .unwrap();
        log.apply(&mut state, older).unwrap();
        assert_eq!(state.metadata_version_of([0, 1, 2]), 0);
        log.apply(&mut state, register(2, 2, 102)).unwrap();
        assert_eq!(state.metadata_version_of([0, 1, 2]), newest, "2 upgraded");
    }

    #[test]
    fn a_restarted_broker_drops_its_old_group_members() {
        let mut state = MetadataState::default();
        let mut log = Log::new(&[0, 1]);
        log.apply(&mut state, create_stream("s")).unwrap();
        log.apply(&mut state, create_topic("s", "t", 2, 1)).unwrap();
        log.apply(
            &mut state,
            MetadataCommand::CreateConsumerGroup {
                stream: Ident::Name("s".into()),
                topic: Ident::Name("t".into()),
                name: "g".into(),
            },
        )
        .unwrap();
        let join = |client_id, node, epoch| MetadataCommand::JoinConsumerGroup {
            stream: Ident::Name("s".into()),
            topic: Ident::Name("t".into()),
            group: Ident::Name("g".into()),
            member: Member {
                client_id,
                node,
                epoch,
            },
        };
        log.apply(&mut state, join(1, 0, 1)).unwrap();
        log.apply(&mut state, join(1 << 24 | 1, 1, 1)).unwrap();
        let generation = state.group((0, 0, 0)).unwrap().generation;
        log.apply(&mut state, register(1, 2, 7)).unwrap();
        let group = state.group((0, 0, 0)).unwrap();
        assert_eq!(group.members.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert!(group.generation > generation);
        assert_eq!(group.partitions_of(1, 2), Some(vec![0, 1]));
    }

    fn register(node: u32, epoch: u64, storage: u64) -> MetadataCommand {
        MetadataCommand::RegisterNode {
            node,
            epoch,
            advertised: Default::default(),
            version: "test".into(),
            storage,
            zone: String::new(),
            metadata_version: crate::metadata::command::METADATA_VERSION,
        }
    }

    #[test]
    fn a_broker_back_from_a_restart_or_with_an_empty_disk_leaves_every_in_sync_set_and_leadership()
    {
        let mut state = MetadataState::default();
        let mut log = Log::new(&[0, 1, 2]);
        for node in 0..3 {
            log.apply(&mut state, register(node, 1, 100 + u64::from(node)))
                .unwrap();
        }
        log.apply(&mut state, create_stream("s")).unwrap();
        log.apply(&mut state, create_topic("s", "t", 3, 3)).unwrap();
        let before = state.topic(0, 0).unwrap().partitions.clone();
        let led_by_0 = before.iter().find(|p| p.leader == Some(0)).unwrap().id;

        // Registering again in the same process changes nothing.
        log.apply(&mut state, register(0, 1, 100)).unwrap();
        assert_eq!(state.topic(0, 0).unwrap().partitions, before);

        // Back from a restart on the same disk, or with another disk: out
        // of every in-sync set; where it led, another in-sync replica leads
        // in the next epoch.
        for (epoch, storage) in [(2, 100), (3, 999)] {
            let mut state = state.clone();
            let mut log = log.clone();
            log.apply(&mut state, register(0, epoch, storage)).unwrap();
            for p in &state.topic(0, 0).unwrap().partitions {
                assert!(!p.in_sync.contains(&0), "{p:?}");
                assert_ne!(p.leader, Some(0), "{p:?}");
            }
            let moved = &state.topic(0, 0).unwrap().partitions[led_by_0 as usize];
            assert_eq!(
                moved.leader_epoch,
                before[led_by_0 as usize].leader_epoch + 1
            );
        }
    }

    #[test]
    fn growing_the_factor_raises_the_minimum_only_once_the_new_replicas_are_in_sync() {
        let mut state = MetadataState::default();
        let mut log = Log::new(&[0, 1, 2]);
        log.apply(&mut state, create_stream("s")).unwrap();
        log.apply(&mut state, create_topic("s", "t", 2, 1)).unwrap();
        let grow = MetadataCommand::ChangeReplicationFactor {
            stream_id: 0,
            topic_id: 0,
            factor: 3,
            min_in_sync: 2,
        };
        log.apply(&mut state, grow.clone()).unwrap();
        let topic = state.topic(0, 0).unwrap();
        assert_eq!(topic.settings.replication_factor, 3);
        assert_eq!(topic.settings.min_in_sync, 1, "not before they catch up");
        assert_eq!(topic.settings.pending_min_in_sync, Some(2));
        for p in &topic.partitions {
            assert_eq!(p.replicas.len(), 3, "{p:?}");
            assert_eq!(p.reassigning.as_ref().map(Vec::len), Some(3), "{p:?}");
        }
        // A second change while these move is refused.
        assert!(log.apply(&mut state, grow).is_err());

        // The new replicas join each partition's in-sync set; once the
        // last partition completes, the minimum goes up.
        for id in 0..2 {
            let p = state.partition((0, 0, id)).unwrap().clone();
            log.apply(
                &mut state,
                MetadataCommand::ChangeInSync {
                    partition: (0, 0, id),
                    epoch: p.leader_epoch,
                    in_sync: p.replicas.clone(),
                },
            )
            .unwrap();
            log.apply(
                &mut state,
                MetadataCommand::CompleteReassignment {
                    partition: (0, 0, id),
                    epoch: p.leader_epoch,
                },
            )
            .unwrap();
            let expected = if id == 0 { 1 } else { 2 };
            assert_eq!(state.topic(0, 0).unwrap().settings.min_in_sync, expected);
        }
        assert_eq!(
            state.topic(0, 0).unwrap().settings.pending_min_in_sync,
            None
        );

        // Shrinking lowers it at once.
        log.apply(
            &mut state,
            MetadataCommand::ChangeReplicationFactor {
                stream_id: 0,
                topic_id: 0,
                factor: 1,
                min_in_sync: 1,
            },
        )
        .unwrap();
        assert_eq!(state.topic(0, 0).unwrap().settings.min_in_sync, 1);
    }

    mod properties {
        //! Random command sequences over a few names (so that they collide,
        //! refer to what was deleted, and so on): applying is deterministic,
        //! and a snapshot taken anywhere, restored and replayed from there
        //! ends in the same state with the same answers.
        use super::*;
        use crate::metadata::state::ConsumerKey;
        use proptest::prelude::*;

        const NAMES: [&str; 3] = ["a", "b", "c"];

        fn name() -> impl Strategy<Value = String> {
            prop::sample::select(&NAMES[..]).prop_map(str::to_string)
        }

        fn ident() -> impl Strategy<Value = Ident> {
            prop_oneof![name().prop_map(Ident::Name), (0u32..3).prop_map(Ident::Id)]
        }

        fn member() -> impl Strategy<Value = Member> {
            (1u32..4).prop_map(|client_id| Member {
                client_id,
                node: 0,
                epoch: 1,
            })
        }

        fn command() -> impl Strategy<Value = MetadataCommand> {
            prop_oneof![
                name().prop_map(|name| MetadataCommand::CreateStream {
                    name,
                    options: vec![],
                    created_at: 1,
                }),
                ident().prop_map(|stream| MetadataCommand::DeleteStream { stream }),
                ident().prop_map(|stream| MetadataCommand::PurgeStream { stream }),
                (ident(), name(), 0u32..4).prop_map(|(stream, name, partitions)| {
                    MetadataCommand::CreateTopic {
                        stream,
                        name,
                        partitions,
                        settings: settings(1),
                        options: vec![],
                        created_at: 2,
                    }
                }),
                (ident(), ident())
                    .prop_map(|(stream, topic)| MetadataCommand::DeleteTopic { stream, topic }),
                (ident(), ident(), 1u32..3).prop_map(|(stream, topic, count)| {
                    MetadataCommand::CreatePartitions {
                        stream,
                        topic,
                        count,
                        created_at: 3,
                    }
                }),
                (ident(), ident(), 1u32..3).prop_map(|(stream, topic, count)| {
                    MetadataCommand::DeletePartitions {
                        stream,
                        topic,
                        count,
                    }
                }),
                (ident(), ident(), name()).prop_map(|(stream, topic, name)| {
                    MetadataCommand::CreateConsumerGroup {
                        stream,
                        topic,
                        name,
                    }
                }),
                (ident(), ident(), ident(), member()).prop_map(|(stream, topic, group, member)| {
                    MetadataCommand::JoinConsumerGroup {
                        stream,
                        topic,
                        group,
                        member,
                    }
                }),
                (ident(), ident(), ident(), member()).prop_map(|(stream, topic, group, member)| {
                    MetadataCommand::LeaveConsumerGroup {
                        stream,
                        topic,
                        group,
                        member,
                    }
                }),
                ((0u32..3, 0u32..3, 0u32..3), name(), 0u64..100).prop_map(
                    |(partition, consumer, offset)| MetadataCommand::StoreConsumerOffset {
                        partition,
                        consumer: ConsumerKey::Consumer(consumer),
                        offset,
                    }
                ),
                prop::collection::vec(((0u32..3, 0u32..3, 0u32..3), name(), 0u64..100), 1..4)
                    .prop_map(|offsets| MetadataCommand::StoreConsumerOffsets {
                        offsets: offsets
                            .into_iter()
                            .map(|(partition, consumer, offset)| {
                                (partition, ConsumerKey::Consumer(consumer), offset)
                            })
                            .collect(),
                    }),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            #[test]
            fn a_snapshot_anywhere_then_replay_equals_the_full_replay(
                commands in prop::collection::vec(command(), 1..40),
                cut in any::<prop::sample::Index>(),
            ) {
                let cut = cut.index(commands.len());
                let (mut full, mut again) = (MetadataState::default(), MetadataState::default());
                let (mut log, mut log_again) = (Log::new(&[0]), Log::new(&[0]));
                let answers: Vec<Response> =
                    commands.iter().map(|c| log.apply(&mut full, c.clone())).collect();
                let answers_again: Vec<Response> =
                    commands.iter().map(|c| log_again.apply(&mut again, c.clone())).collect();
                prop_assert_eq!(&full, &again);
                prop_assert_eq!(&answers, &answers_again);

                // Snapshot after `cut` commands (as the state machine
                // writes one), restore, replay the rest.
                let mut prefix = MetadataState::default();
                let mut log_prefix = Log::new(&[0]);
                for c in &commands[..cut] {
                    let _ = log_prefix.apply(&mut prefix, c.clone());
                }
                let snapshot = serde_json::to_vec(&prefix).unwrap();
                let mut restored: MetadataState = serde_json::from_slice(&snapshot).unwrap();
                prop_assert_eq!(&restored, &prefix);
                let rest: Vec<Response> = commands[cut..]
                    .iter()
                    .map(|c| log_prefix.apply(&mut restored, c.clone()))
                    .collect();
                prop_assert_eq!(&restored, &full);
                prop_assert_eq!(&rest[..], &answers[cut..]);
            }
        }
    }
}
