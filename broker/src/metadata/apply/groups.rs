//! Consumer groups, their members, and the offsets consumers and groups
//! have stored. A change of a group's members bumps its generation: the
//! members' partition assignment is computed from the member list, so the
//! generation tells a member its assignment may have moved.

use crate::error::{Error, Result};
use crate::metadata::command::{Applied, Ident};
use crate::metadata::state::{
    ConsumerGroupMeta, ConsumerKey, GroupKey, Member, MetadataState, PartitionKey,
};
use std::collections::BTreeMap;

impl MetadataState {
    pub(super) fn create_consumer_group(
        &mut self,
        stream: &Ident,
        topic: &Ident,
        name: &str,
    ) -> Result<Applied> {
        let (stream_id, topic_id) = self.resolve_topic(stream, topic)?;
        let meta = self.topic_mut(stream_id, topic_id).expect("resolved");
        if meta.consumer_groups.values().any(|g| g.name == name) {
            return Err(Error::ConsumerGroupNameAlreadyExists(name.to_owned()));
        }
        let id = meta.next_group_id;
        meta.consumer_groups.insert(
            id,
            ConsumerGroupMeta {
                id,
                name: name.to_owned(),
                members: BTreeMap::new(),
                generation: 0,
            },
        );
        meta.next_group_id = id + 1;
        Ok(Applied::Group(stream_id, topic_id, id))
    }

    /// Removes the group and the offsets it stored.
    pub(super) fn delete_consumer_group(
        &mut self,
        stream: &Ident,
        topic: &Ident,
        group: &Ident,
    ) -> Result<Applied> {
        let (s, t, g) = self.resolve_group(stream, topic, group)?;
        let meta = self.topic_mut(s, t).expect("resolved");
        meta.consumer_groups.remove(&g);
        for partition in &mut meta.partitions {
            partition.offsets.remove(&ConsumerKey::Group(g));
        }
        Ok(Applied::Done)
    }

    /// Joining again as the same member changes nothing.
    pub(super) fn join_consumer_group(
        &mut self,
        stream: &Ident,
        topic: &Ident,
        group: &Ident,
        member: &Member,
    ) -> Result<Applied> {
        let key = self.resolve_group(stream, topic, group)?;
        let meta = self.group_mut(key);
        if meta.members.insert(member.client_id, *member) != Some(*member) {
            meta.generation += 1;
        }
        Ok(Applied::Group(key.0, key.1, key.2))
    }

    /// Only the member that joined can leave: the same client id from
    /// another process of its broker (another epoch) is another member.
    pub(super) fn leave_consumer_group(
        &mut self,
        stream: &Ident,
        topic: &Ident,
        group: &Ident,
        member: &Member,
    ) -> Result<Applied> {
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

    /// Remove every group member matching `gone`, bumping the generation
    /// of each group that lost one.
    pub(super) fn remove_members(&mut self, gone: impl Fn(&Member) -> bool) {
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

    pub(super) fn store_consumer_offset(
        &mut self,
        partition: PartitionKey,
        consumer: &ConsumerKey,
        offset: u64,
    ) -> Result<Applied> {
        let meta = self.partition_mut(partition)?;
        meta.offsets.insert(consumer.clone(), offset);
        Ok(Applied::Done)
    }

    /// Offsets committed together; one whose partition is gone by now is
    /// skipped.
    pub(super) fn store_consumer_offsets(
        &mut self,
        offsets: &[(PartitionKey, ConsumerKey, u64)],
    ) -> Applied {
        for (partition, consumer, offset) in offsets {
            if let Ok(meta) = self.partition_mut(*partition) {
                meta.offsets.insert(consumer.clone(), *offset);
            }
        }
        Applied::Done
    }

    pub(super) fn delete_consumer_offset(
        &mut self,
        partition: PartitionKey,
        consumer: &ConsumerKey,
    ) -> Result<Applied> {
        let meta = self.partition_mut(partition)?;
        match meta.offsets.remove(consumer) {
            Some(_) => Ok(Applied::Done),
            None => Err(Error::ConsumerOffsetNotFound(partition.2)),
        }
    }

    fn group_mut(&mut self, (s, t, g): GroupKey) -> &mut ConsumerGroupMeta {
        self.topic_mut(s, t)
            .and_then(|t| t.consumer_groups.get_mut(&g))
            .expect("resolved group")
    }
}
