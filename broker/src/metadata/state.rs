//! The metadata state machine: streams, topics, partitions and users.
//!
//! `MetadataState::apply` is a pure, infallible function of the state and one
//! operation. Handlers validate a request against the state first and only
//! then log and apply the operation, so every node that replays the same log
//! reaches the same state — the property replication relies on.

use crate::auth::Permissions;
use crate::storage::FsyncPolicy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionMeta {
    pub id: u32,
    pub created_at: u64,
}

/// Settings of a topic, resolved against the broker defaults at creation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicSettings {
    pub compression_algorithm: u8,
    /// Message expiry in µs; `u64::MAX` = never.
    pub message_expiry_us: u64,
    /// Byte cap of the topic; `u64::MAX` = unlimited.
    pub max_topic_size: u64,
    pub segment_size_bytes: u64,
    pub replication_factor: u8,
    pub fsync: FsyncPolicy,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicMeta {
    pub id: u32,
    pub name: String,
    pub created_at: u64,
    pub partitions: Vec<PartitionMeta>,
    pub settings: TopicSettings,
    /// The options block the client sent, echoed back by GetTopic.
    pub options: Vec<u8>,
    /// Consumer groups of the topic (membership is runtime state).
    #[serde(default)]
    pub consumer_groups: BTreeMap<u32, ConsumerGroupMeta>,
    #[serde(default)]
    pub next_group_id: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsumerGroupMeta {
    pub id: u32,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamMeta {
    pub id: u32,
    pub name: String,
    pub created_at: u64,
    pub topics: BTreeMap<u32, TopicMeta>,
    pub next_topic_id: u32,
    pub options: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserMeta {
    pub id: u32,
    pub username: String,
    /// Argon2 PHC string; the password itself is never stored.
    pub password_hash: String,
    /// 1 active, 2 inactive (upstream codes).
    pub status: u8,
    pub created_at: u64,
    /// `None`: no rights beyond the self-service commands.
    #[serde(default)]
    pub permissions: Option<Permissions>,
    /// Personal access tokens by name.
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenMeta>,
}

/// A personal access token: only the hash of the secret is kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenMeta {
    pub hash: String,
    /// Expiry in µs since the epoch; `None` = never.
    pub expiry_at: Option<u64>,
}

/// One change to the metadata. Serialized into the metadata WAL.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum MetadataOp {
    CreateStream {
        id: u32,
        name: String,
        created_at: u64,
        options: Vec<u8>,
    },
    UpdateStream {
        id: u32,
        name: String,
        options: Vec<u8>,
    },
    DeleteStream {
        id: u32,
    },
    CreateTopic {
        stream_id: u32,
        topic: TopicMeta,
    },
    UpdateTopic {
        stream_id: u32,
        topic_id: u32,
        name: String,
        settings: TopicSettings,
        options: Vec<u8>,
    },
    DeleteTopic {
        stream_id: u32,
        topic_id: u32,
    },
    CreatePartitions {
        stream_id: u32,
        topic_id: u32,
        count: u32,
        created_at: u64,
    },
    DeletePartitions {
        stream_id: u32,
        topic_id: u32,
        count: u32,
    },
    CreateUser {
        user: UserMeta,
    },
    UpdateUser {
        id: u32,
        username: String,
        status: u8,
    },
    DeleteUser {
        id: u32,
    },
    ChangePassword {
        id: u32,
        password_hash: String,
    },
    UpdatePermissions {
        id: u32,
        permissions: Option<Permissions>,
    },
    CreateToken {
        user_id: u32,
        name: String,
        token: TokenMeta,
    },
    DeleteToken {
        user_id: u32,
        name: String,
    },
    CreateConsumerGroup {
        stream_id: u32,
        topic_id: u32,
        group: ConsumerGroupMeta,
    },
    DeleteConsumerGroup {
        stream_id: u32,
        topic_id: u32,
        group_id: u32,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MetadataState {
    pub streams: BTreeMap<u32, StreamMeta>,
    pub next_stream_id: u32,
    pub users: BTreeMap<u32, UserMeta>,
    pub next_user_id: u32,
}

impl MetadataState {
    pub fn apply(&mut self, op: &MetadataOp) {
        match op.clone() {
            MetadataOp::CreateStream {
                id,
                name,
                created_at,
                options,
            } => {
                self.streams.insert(
                    id,
                    StreamMeta {
                        id,
                        name,
                        created_at,
                        topics: BTreeMap::new(),
                        next_topic_id: 0,
                        options,
                    },
                );
                self.next_stream_id = self.next_stream_id.max(id + 1);
            }
            MetadataOp::UpdateStream { id, name, options } => {
                if let Some(stream) = self.streams.get_mut(&id) {
                    stream.name = name;
                    stream.options = options;
                }
            }
            MetadataOp::DeleteStream { id } => {
                self.streams.remove(&id);
            }
            MetadataOp::CreateTopic { stream_id, topic } => {
                if let Some(stream) = self.streams.get_mut(&stream_id) {
                    stream.next_topic_id = stream.next_topic_id.max(topic.id + 1);
                    stream.topics.insert(topic.id, topic);
                }
            }
            MetadataOp::UpdateTopic {
                stream_id,
                topic_id,
                name,
                settings,
                options,
            } => {
                if let Some(topic) = self.topic_mut(stream_id, topic_id) {
                    topic.name = name;
                    topic.settings = settings;
                    topic.options = options;
                }
            }
            MetadataOp::DeleteTopic {
                stream_id,
                topic_id,
            } => {
                if let Some(stream) = self.streams.get_mut(&stream_id) {
                    stream.topics.remove(&topic_id);
                }
            }
            MetadataOp::CreatePartitions {
                stream_id,
                topic_id,
                count,
                created_at,
            } => {
                if let Some(topic) = self.topic_mut(stream_id, topic_id) {
                    let first = topic.partitions.len() as u32;
                    topic
                        .partitions
                        .extend((first..first + count).map(|id| PartitionMeta { id, created_at }));
                }
            }
            MetadataOp::DeletePartitions {
                stream_id,
                topic_id,
                count,
            } => {
                if let Some(topic) = self.topic_mut(stream_id, topic_id) {
                    let keep = topic.partitions.len().saturating_sub(count as usize);
                    topic.partitions.truncate(keep);
                }
            }
            MetadataOp::CreateConsumerGroup {
                stream_id,
                topic_id,
                group,
            } => {
                if let Some(topic) = self.topic_mut(stream_id, topic_id) {
                    topic.next_group_id = topic.next_group_id.max(group.id + 1);
                    topic.consumer_groups.insert(group.id, group);
                }
            }
            MetadataOp::DeleteConsumerGroup {
                stream_id,
                topic_id,
                group_id,
            } => {
                if let Some(topic) = self.topic_mut(stream_id, topic_id) {
                    topic.consumer_groups.remove(&group_id);
                }
            }
            MetadataOp::CreateUser { user } => {
                self.next_user_id = self.next_user_id.max(user.id + 1);
                self.users.insert(user.id, user);
            }
            MetadataOp::UpdateUser {
                id,
                username,
                status,
            } => {
                if let Some(user) = self.users.get_mut(&id) {
                    user.username = username;
                    user.status = status;
                }
            }
            MetadataOp::DeleteUser { id } => {
                self.users.remove(&id);
            }
            MetadataOp::ChangePassword { id, password_hash } => {
                if let Some(user) = self.users.get_mut(&id) {
                    user.password_hash = password_hash;
                }
            }
            MetadataOp::UpdatePermissions { id, permissions } => {
                if let Some(user) = self.users.get_mut(&id) {
                    user.permissions = permissions;
                }
            }
            MetadataOp::CreateToken {
                user_id,
                name,
                token,
            } => {
                if let Some(user) = self.users.get_mut(&user_id) {
                    user.tokens.insert(name, token);
                }
            }
            MetadataOp::DeleteToken { user_id, name } => {
                if let Some(user) = self.users.get_mut(&user_id) {
                    user.tokens.remove(&name);
                }
            }
        }
    }

    pub fn topic_mut(&mut self, stream_id: u32, topic_id: u32) -> Option<&mut TopicMeta> {
        self.streams.get_mut(&stream_id)?.topics.get_mut(&topic_id)
    }

    pub fn stream_by_name(&self, name: &str) -> Option<&StreamMeta> {
        self.streams.values().find(|s| s.name == name)
    }

    pub fn user_by_name(&self, name: &str) -> Option<&UserMeta> {
        self.users.values().find(|u| u.username == name)
    }

    /// The user holding the token with this hash, and the token's name.
    pub fn token_by_hash(&self, hash: &str) -> Option<(&UserMeta, &str, &TokenMeta)> {
        self.users.values().find_map(|user| {
            user.tokens
                .iter()
                .find(|(_, token)| token.hash == hash)
                .map(|(name, token)| (user, name.as_str(), token))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TopicSettings {
        TopicSettings {
            compression_algorithm: 1,
            message_expiry_us: u64::MAX,
            max_topic_size: u64::MAX,
            segment_size_bytes: 1 << 30,
            replication_factor: 1,
            fsync: FsyncPolicy::Always,
        }
    }

    #[test]
    fn replaying_ops_rebuilds_the_same_state() {
        let ops = vec![
            MetadataOp::CreateStream {
                id: 0,
                name: "s".into(),
                created_at: 1,
                options: vec![],
            },
            MetadataOp::CreateTopic {
                stream_id: 0,
                topic: TopicMeta {
                    id: 0,
                    name: "t".into(),
                    created_at: 2,
                    partitions: vec![],
                    settings: settings(),
                    options: vec![],
                    consumer_groups: BTreeMap::new(),
                    next_group_id: 0,
                },
            },
            MetadataOp::CreatePartitions {
                stream_id: 0,
                topic_id: 0,
                count: 3,
                created_at: 3,
            },
            MetadataOp::DeletePartitions {
                stream_id: 0,
                topic_id: 0,
                count: 1,
            },
        ];
        let mut a = MetadataState::default();
        let mut b = MetadataState::default();
        for op in &ops {
            a.apply(op);
            b.apply(op);
        }
        assert_eq!(a, b);
        let topic = &a.streams[&0].topics[&0];
        assert_eq!(topic.partitions.len(), 2);
        assert_eq!(a.next_stream_id, 1);
        assert_eq!(a.streams[&0].next_topic_id, 1);
    }
}
