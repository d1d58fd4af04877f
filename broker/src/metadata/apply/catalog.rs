//! Streams, topics and a topic's partitions: creating, renaming,
//! reconfiguring, purging and deleting them. Deleting or purging only
//! changes the metadata; the partitions' logs are removed or emptied by
//! the effects, on every broker holding a replica.

use super::{ApplyContext, MAX_PARTITIONS_PER_TOPIC, partition_keys, valid_name};
use crate::error::{Error, Result};
use crate::metadata::command::{Applied, Effect, Ident, TopicUpdate};
use crate::metadata::placement;
use crate::metadata::state::{MetadataState, PartitionMeta, StreamMeta, TopicMeta, TopicSettings};
use std::collections::BTreeMap;

impl MetadataState {
    pub(super) fn create_stream(&mut self, mut stream: StreamMeta) -> Result<Applied> {
        if !valid_name(&stream.name) {
            return Err(Error::InvalidStreamName);
        }
        if self.stream_by_name(&stream.name).is_some() {
            return Err(Error::StreamNameAlreadyExists(stream.name));
        }
        let id = self.next_stream_id;
        stream.id = id;
        self.streams.insert(id, stream);
        self.next_stream_id = id + 1;
        Ok(Applied::Stream(id))
    }

    pub(super) fn update_stream(
        &mut self,
        stream: &Ident,
        name: &str,
        options: Option<&Vec<u8>>,
    ) -> Result<Applied> {
        if !valid_name(name) {
            return Err(Error::InvalidStreamName);
        }
        let id = self.resolve_stream(stream)?;
        if self.stream_by_name(name).is_some_and(|s| s.id != id) {
            return Err(Error::StreamNameAlreadyExists(name.to_owned()));
        }
        let meta = self.streams.get_mut(&id).expect("resolved");
        meta.name = name.to_owned();
        if let Some(options) = options {
            meta.options = options.clone();
        }
        Ok(Applied::Done)
    }

    pub(super) fn delete_stream(
        &mut self,
        stream: &Ident,
        ctx: &ApplyContext,
        effects: &mut Vec<Effect>,
    ) -> Result<Applied> {
        let id = self.resolve_stream(stream)?;
        let removed = self.streams.remove(&id).expect("resolved");
        let partitions = removed
            .topics
            .values()
            .flat_map(|t| partition_keys(id, t.id, &t.partitions))
            .collect();
        effects.push(Effect::RemovePartitions {
            partitions,
            before: ctx.index,
        });
        Ok(Applied::Done)
    }

    pub(super) fn purge_stream(
        &mut self,
        stream: &Ident,
        effects: &mut Vec<Effect>,
    ) -> Result<Applied> {
        let id = self.resolve_stream(stream)?;
        let stream = self.streams.get_mut(&id).expect("resolved");
        let mut partitions = Vec::new();
        for topic in stream.topics.values_mut() {
            for partition in &mut topic.partitions {
                partition.offsets.clear();
            }
            partitions.extend(partition_keys(id, topic.id, &topic.partitions));
        }
        effects.push(Effect::PurgePartitions { partitions });
        Ok(Applied::Done)
    }

    /// `topic` with `partitions` partitions, placed on the brokers.
    pub(super) fn create_topic(
        &mut self,
        stream: &Ident,
        mut topic: TopicMeta,
        partitions: u32,
        ctx: &ApplyContext,
        effects: &mut Vec<Effect>,
    ) -> Result<Applied> {
        if !valid_name(&topic.name) {
            return Err(Error::InvalidTopicName);
        }
        if partitions > MAX_PARTITIONS_PER_TOPIC {
            return Err(Error::TooManyPartitions);
        }
        let stream_id = self.resolve_stream(stream)?;
        let stream_meta = &self.streams[&stream_id];
        if stream_meta.topics.values().any(|t| t.name == topic.name) {
            return Err(Error::TopicNameAlreadyExists(topic.name));
        }
        let topic_id = stream_meta.next_topic_id;
        topic.id = topic_id;
        topic.partitions = self.new_partitions(
            ctx,
            (stream_id, topic_id),
            0..partitions,
            topic.created_at,
            &topic.settings,
            effects,
        );
        let stream_meta = self.streams.get_mut(&stream_id).expect("resolved");
        stream_meta.topics.insert(topic_id, topic);
        stream_meta.next_topic_id = topic_id + 1;
        Ok(Applied::Topic(stream_id, topic_id))
    }

    pub(super) fn update_topic(
        &mut self,
        stream: &Ident,
        topic: &Ident,
        name: &str,
        update: &TopicUpdate,
        options: Option<&Vec<u8>>,
        effects: &mut Vec<Effect>,
    ) -> Result<Applied> {
        if !valid_name(name) {
            return Err(Error::InvalidTopicName);
        }
        let (stream_id, topic_id) = self.resolve_topic(stream, topic)?;
        if self.streams[&stream_id]
            .topics
            .values()
            .any(|t| t.name == name && t.id != topic_id)
        {
            return Err(Error::TopicNameAlreadyExists(name.to_owned()));
        }
        let meta = self.topic_mut(stream_id, topic_id).expect("resolved");
        meta.name = name.to_owned();
        apply_topic_update(&mut meta.settings, update);
        if let Some(options) = options {
            meta.options = options.clone();
        }
        effects.push(Effect::ConfigurePartitions {
            partitions: partition_keys(stream_id, topic_id, &meta.partitions),
            settings: meta.settings.clone(),
        });
        Ok(Applied::Done)
    }

    pub(super) fn delete_topic(
        &mut self,
        stream: &Ident,
        topic: &Ident,
        ctx: &ApplyContext,
        effects: &mut Vec<Effect>,
    ) -> Result<Applied> {
        let (stream_id, topic_id) = self.resolve_topic(stream, topic)?;
        let removed = self
            .streams
            .get_mut(&stream_id)
            .expect("resolved")
            .topics
            .remove(&topic_id)
            .expect("resolved");
        effects.push(Effect::RemovePartitions {
            partitions: partition_keys(stream_id, topic_id, &removed.partitions),
            before: ctx.index,
        });
        Ok(Applied::Done)
    }

    pub(super) fn purge_topic(
        &mut self,
        stream: &Ident,
        topic: &Ident,
        effects: &mut Vec<Effect>,
    ) -> Result<Applied> {
        let (stream_id, topic_id) = self.resolve_topic(stream, topic)?;
        let meta = self.topic_mut(stream_id, topic_id).expect("resolved");
        for partition in &mut meta.partitions {
            partition.offsets.clear();
        }
        effects.push(Effect::PurgePartitions {
            partitions: partition_keys(stream_id, topic_id, &meta.partitions),
        });
        Ok(Applied::Done)
    }

    /// `count` more partitions for a topic, placed on the brokers.
    pub(super) fn create_partitions(
        &mut self,
        stream: &Ident,
        topic: &Ident,
        count: u32,
        created_at: u64,
        ctx: &ApplyContext,
        effects: &mut Vec<Effect>,
    ) -> Result<Applied> {
        if count == 0 || count > MAX_PARTITIONS_PER_TOPIC {
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
            created_at,
            &settings,
            effects,
        );
        let meta = self.topic_mut(stream_id, topic_id).expect("resolved");
        meta.partitions.extend(new_partitions);
        bump_groups(meta);
        Ok(Applied::Done)
    }

    /// Removes a topic's last `count` partitions.
    pub(super) fn delete_partitions(
        &mut self,
        stream: &Ident,
        topic: &Ident,
        count: u32,
        ctx: &ApplyContext,
        effects: &mut Vec<Effect>,
    ) -> Result<Applied> {
        let (stream_id, topic_id) = self.resolve_topic(stream, topic)?;
        let meta = self.topic_mut(stream_id, topic_id).expect("resolved");
        let existing = meta.partitions.len() as u32;
        if count == 0 || count > existing {
            return Err(Error::InvalidPartitionsCount);
        }
        let removed = meta.partitions.split_off((existing - count) as usize);
        bump_groups(meta);
        effects.push(Effect::RemovePartitions {
            partitions: partition_keys(stream_id, topic_id, &removed),
            before: ctx.index,
        });
        Ok(Applied::Done)
    }

    /// Partitions `ids` of a topic, placed on brokers, and the effect that
    /// opens them where they are placed.
    fn new_partitions(
        &self,
        ctx: &ApplyContext,
        (stream_id, topic_id): (u32, u32),
        ids: std::ops::Range<u32>,
        created_at: u64,
        settings: &TopicSettings,
        effects: &mut Vec<Effect>,
    ) -> Vec<PartitionMeta> {
        let placed = placement::place(
            self,
            &ctx.placement_nodes(),
            settings.replication_factor,
            ids.len() as u32,
        );
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

fn apply_topic_update(settings: &mut TopicSettings, update: &TopicUpdate) {
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
