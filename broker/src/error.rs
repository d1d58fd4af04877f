//! The broker's error type and the one place errors become wire status codes.
//!
//! Codes are upstream's (`iggy_common::IggyError`); SDKs map them back to
//! their own error types, so a code is never invented or reused here. A test
//! pins every code against the upstream enum.

use crate::storage::batch::BatchError;
use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid command")]
    InvalidCommand,
    #[error("invalid format: {0}")]
    InvalidFormat(String),
    #[error("feature unavailable: {0}")]
    FeatureUnavailable(&'static str),
    #[error("unauthenticated")]
    Unauthenticated,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("unauthorized")]
    Unauthorized,
    #[error("{0} not found")]
    ResourceNotFound(String),
    #[error("invalid username")]
    InvalidUsername,
    #[error("invalid password")]
    InvalidPassword,
    #[error("invalid user status")]
    InvalidUserStatus,
    #[error("user already exists")]
    UserAlreadyExists,
    #[error("user inactive")]
    UserInactive,
    #[error("the root user cannot be deleted")]
    CannotDeleteUser(u32),
    #[error("the root user's permissions cannot be changed")]
    CannotChangePermissions(u32),
    #[error("invalid personal access token name")]
    InvalidPersonalAccessTokenName,
    #[error("personal access token `{0}` already exists")]
    PersonalAccessTokenAlreadyExists(String),
    #[error("personal access tokens limit reached")]
    PersonalAccessTokensLimitReached,
    #[error("invalid personal access token")]
    InvalidPersonalAccessToken,
    #[error("personal access token `{0}` has expired")]
    PersonalAccessTokenExpired(String),
    #[error("stream {0} not found")]
    StreamIdNotFound(u32),
    #[error("stream `{0}` not found")]
    StreamNameNotFound(String),
    #[error("stream `{0}` already exists")]
    StreamNameAlreadyExists(String),
    #[error("invalid stream name")]
    InvalidStreamName,
    #[error("topic {0} not found")]
    TopicIdNotFound(u32),
    #[error("topic `{0}` not found")]
    TopicNameNotFound(String),
    #[error("topic `{0}` already exists")]
    TopicNameAlreadyExists(String),
    #[error("invalid topic name")]
    InvalidTopicName,
    #[error("too many partitions")]
    TooManyPartitions,
    #[error("invalid partitions count")]
    InvalidPartitionsCount,
    #[error("partition {0} not found")]
    PartitionNotFound(u32),
    #[error("topic has no partitions")]
    NoPartitions,
    #[error("unsupported option `{0}`")]
    UnsupportedOptionKey(String),
    #[error("invalid value for option `{0}`")]
    InvalidOptionValue(String),
    #[error("invalid messages count")]
    InvalidMessagesCount,
    #[error("message payload is empty")]
    EmptyMessagePayload,
    #[error("message payload too big")]
    TooBigMessagePayload,
    #[error("user headers too big")]
    TooBigUserHeaders,
    #[error("invalid message checksum")]
    InvalidMessageChecksum,
    #[error("offset {0} is beyond the end of the partition")]
    InvalidOffset(u64),
    #[error("no stored offset for this consumer in partition {0}")]
    ConsumerOffsetNotFound(u32),
    #[error("consumer group {0} not found")]
    ConsumerGroupIdNotFound(u32),
    #[error("consumer group `{0}` not found")]
    ConsumerGroupNameNotFound(String),
    #[error("consumer group `{0}` already exists")]
    ConsumerGroupNameAlreadyExists(String),
    #[error("not a member of the consumer group")]
    ConsumerGroupMemberNotFound,
    #[error("partition {0} is not assigned to this member of the consumer group")]
    ConsumerGroupPartitionNotOwned(u32),
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
    /// A write the data directory cannot take now: the filesystem is full
    /// down to the reserve, read-only or failing (`storage::space`).
    /// Nothing was written; reads go on.
    #[error("cannot save {kind}: {reason}")]
    CannotSave { kind: SaveKind, reason: String },
    /// A metadata command the replicated state machine rejected: the same
    /// code on every broker.
    #[error("{message}")]
    Rejected { code: u32, message: String },
    /// A metadata change that was not committed in time (no metadata
    /// leader, or no quorum behind it). It may still commit: a retry of the
    /// same request gets its outcome rather than applying it twice.
    #[error("not committed: {0}")]
    NotCommitted(String),
    /// A metadata change refused before it was proposed: this broker is
    /// cut off from the cluster's majority. Nothing was applied; the SDK
    /// retries, then moves to another broker of the roster.
    #[error("not accepted: {0}")]
    NotAccepted(String),
    /// A partition's broker could not be reached.
    #[error("partition unavailable: {0}")]
    PartitionUnavailable(String),
    /// A replication factor or replica set that cannot be placed.
    #[error("invalid replication: {0}")]
    InvalidReplicaSet(String),
    /// A partition change decided in an older leader epoch.
    #[error("stale leader epoch {given} (the partition is in epoch {current})")]
    StaleLeaderEpoch { current: u32, given: u32 },
    /// A send refused before anything was appended: the partition has no
    /// leader right now, this broker no longer leads it, or fewer replicas
    /// than the topic's minimum are in sync. Safe to retry anywhere.
    #[error("not enough replicas: {0}")]
    NotEnoughReplicas(String),
}

/// What a refused write would have saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveKind {
    /// A producer's batch or a follower's copy of one.
    Messages,
    /// A metadata change (stream, topic, user, offset, ...).
    Metadata,
}

impl std::fmt::Display for SaveKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SaveKind::Messages => "messages",
            SaveKind::Metadata => "a metadata change",
        })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The upstream status code sent on the wire.
    pub fn code(&self) -> u32 {
        match self {
            Error::InvalidCommand => 3,
            Error::InvalidFormat(_) => 4,
            Error::FeatureUnavailable(_) => 5,
            Error::Unauthenticated => 40,
            Error::InvalidCredentials => 42,
            Error::Unauthorized => 41,
            Error::ResourceNotFound(_) => 20,
            Error::InvalidUsername => 43,
            Error::InvalidPassword => 44,
            Error::InvalidUserStatus => 45,
            Error::UserAlreadyExists => 46,
            Error::UserInactive => 47,
            Error::CannotDeleteUser(_) => 48,
            Error::CannotChangePermissions(_) => 49,
            Error::InvalidPersonalAccessTokenName => 50,
            Error::PersonalAccessTokenAlreadyExists(_) => 51,
            Error::PersonalAccessTokensLimitReached => 52,
            Error::InvalidPersonalAccessToken => 53,
            Error::PersonalAccessTokenExpired(_) => 54,
            Error::StreamIdNotFound(_) => 1009,
            Error::StreamNameNotFound(_) => 1010,
            Error::StreamNameAlreadyExists(_) => 1012,
            Error::InvalidStreamName => 1013,
            Error::TopicIdNotFound(_) => 2010,
            Error::TopicNameNotFound(_) => 2011,
            Error::TopicNameAlreadyExists(_) => 2013,
            Error::InvalidTopicName => 2014,
            Error::TooManyPartitions => 2015,
            Error::InvalidPartitionsCount => 2019,
            Error::PartitionNotFound(_) => 3007,
            Error::NoPartitions => 3008,
            Error::UnsupportedOptionKey(_) => 4041,
            Error::InvalidOptionValue(_) => 4042,
            Error::InvalidMessagesCount => 4009,
            Error::EmptyMessagePayload => 4024,
            Error::TooBigMessagePayload => 4022,
            Error::TooBigUserHeaders => 4017,
            Error::InvalidMessageChecksum => 4027,
            Error::InvalidOffset(_) => 4100,
            Error::ConsumerOffsetNotFound(_) => 3021,
            Error::ConsumerGroupIdNotFound(_) => 5000,
            Error::ConsumerGroupNameNotFound(_) => 5003,
            Error::ConsumerGroupNameAlreadyExists(_) => 5004,
            Error::ConsumerGroupMemberNotFound => 5006,
            Error::ConsumerGroupPartitionNotOwned(_) => 5009,
            Error::Rejected { code, .. } => *code,
            // The SDK replays a request answered with this code under the
            // same request number (`TransientNotCommitted`).
            Error::NotCommitted(_) => 57,
            // `TransientNotAccepted`: never admitted, safe to retry anywhere.
            Error::NotAccepted(_) => 58,
            // Upstream's generic `Error`: the client learns the request failed,
            // the log says why.
            Error::Io(_) | Error::PartitionUnavailable(_) => 1,
            Error::InvalidReplicaSet(_) => 2018,
            // `CannotSaveMessagesToSegment`, `CannotWriteToFile`.
            Error::CannotSave {
                kind: SaveKind::Messages,
                ..
            } => 4006,
            Error::CannotSave {
                kind: SaveKind::Metadata,
                ..
            } => 10006,
            // Nothing was appended: the SDK retries, re-checking the roster.
            Error::StaleLeaderEpoch { .. } | Error::NotEnoughReplicas(_) => 58,
        }
    }
}

impl From<iggy_binary_protocol::WireError> for Error {
    fn from(e: iggy_binary_protocol::WireError) -> Self {
        Error::InvalidFormat(e.to_string())
    }
}

impl From<BatchError> for Error {
    fn from(e: BatchError) -> Self {
        use iggy_binary_protocol::WireError;
        match e {
            BatchError::Malformed(WireError::InvalidMessageChecksum { .. })
            | BatchError::Malformed(WireError::InvalidBatchChecksum { .. }) => {
                Error::InvalidMessageChecksum
            }
            BatchError::Malformed(other) => Error::InvalidFormat(other.to_string()),
            BatchError::CountMismatch { .. } | BatchError::Empty => Error::InvalidMessagesCount,
            BatchError::EmptyPayload => Error::EmptyMessagePayload,
            BatchError::PayloadTooBig(_) => Error::TooBigMessagePayload,
            BatchError::HeadersTooBig(_) => Error::TooBigUserHeaders,
            BatchError::BadOffsetDelta { .. } => Error::InvalidFormat(e.to_string()),
        }
    }
}

impl From<iggy_common::IggyError> for Error {
    fn from(e: iggy_common::IggyError) -> Self {
        match e {
            iggy_common::IggyError::UnsupportedOptionKey(key) => Error::UnsupportedOptionKey(key),
            iggy_common::IggyError::InvalidOptionValue(key) => Error::InvalidOptionValue(key),
            other => Error::InvalidFormat(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_common::{Identifier, IggyError};

    #[test]
    fn codes_match_upstream() {
        let id = Identifier::default();
        let pairs = [
            (Error::InvalidCommand, IggyError::InvalidCommand),
            (
                Error::InvalidFormat(String::new()),
                IggyError::InvalidFormat,
            ),
            (Error::FeatureUnavailable(""), IggyError::FeatureUnavailable),
            (
                Error::InvalidReplicaSet(String::new()),
                IggyError::InvalidReplicationFactor,
            ),
            (
                Error::NotEnoughReplicas(String::new()),
                IggyError::TransientNotAccepted,
            ),
            (Error::Unauthenticated, IggyError::Unauthenticated),
            (Error::InvalidCredentials, IggyError::InvalidCredentials),
            (Error::Unauthorized, IggyError::Unauthorized),
            (
                Error::ResourceNotFound(String::new()),
                IggyError::ResourceNotFound(String::new()),
            ),
            (Error::InvalidUsername, IggyError::InvalidUsername),
            (Error::InvalidPassword, IggyError::InvalidPassword),
            (Error::InvalidUserStatus, IggyError::InvalidUserStatus),
            (Error::UserAlreadyExists, IggyError::UserAlreadyExists),
            (Error::UserInactive, IggyError::UserInactive),
            (Error::CannotDeleteUser(0), IggyError::CannotDeleteUser(0)),
            (
                Error::CannotChangePermissions(0),
                IggyError::CannotChangePermissions(0),
            ),
            (
                Error::InvalidPersonalAccessTokenName,
                IggyError::InvalidPersonalAccessTokenName,
            ),
            (
                Error::PersonalAccessTokenAlreadyExists(String::new()),
                IggyError::PersonalAccessTokenAlreadyExists(String::new(), 0),
            ),
            (
                Error::PersonalAccessTokensLimitReached,
                IggyError::PersonalAccessTokensLimitReached(0, 0),
            ),
            (
                Error::InvalidPersonalAccessToken,
                IggyError::InvalidPersonalAccessToken,
            ),
            (
                Error::PersonalAccessTokenExpired(String::new()),
                IggyError::PersonalAccessTokenExpired(String::new(), 0),
            ),
            (
                Error::StreamIdNotFound(0),
                IggyError::StreamIdNotFound(id.clone()),
            ),
            (
                Error::StreamNameNotFound(String::new()),
                IggyError::StreamNameNotFound(String::new()),
            ),
            (
                Error::StreamNameAlreadyExists(String::new()),
                IggyError::StreamNameAlreadyExists(String::new()),
            ),
            (Error::InvalidStreamName, IggyError::InvalidStreamName),
            (
                Error::TopicIdNotFound(0),
                IggyError::TopicIdNotFound(id.clone(), id.clone()),
            ),
            (
                Error::TopicNameNotFound(String::new()),
                IggyError::TopicNameNotFound(String::new(), String::new()),
            ),
            (
                Error::TopicNameAlreadyExists(String::new()),
                IggyError::TopicNameAlreadyExists(String::new(), id.clone()),
            ),
            (Error::InvalidTopicName, IggyError::InvalidTopicName),
            (Error::TooManyPartitions, IggyError::TooManyPartitions),
            (
                Error::InvalidPartitionsCount,
                IggyError::InvalidPartitionsCount,
            ),
            (
                Error::PartitionNotFound(0),
                IggyError::PartitionNotFound(0, id.clone(), id.clone()),
            ),
            (
                Error::NoPartitions,
                IggyError::NoPartitions(id.clone(), id.clone()),
            ),
            (
                Error::UnsupportedOptionKey(String::new()),
                IggyError::UnsupportedOptionKey(String::new()),
            ),
            (
                Error::InvalidOptionValue(String::new()),
                IggyError::InvalidOptionValue(String::new()),
            ),
            (Error::InvalidMessagesCount, IggyError::InvalidMessagesCount),
            (Error::EmptyMessagePayload, IggyError::EmptyMessagePayload),
            (Error::TooBigMessagePayload, IggyError::TooBigMessagePayload),
            (Error::TooBigUserHeaders, IggyError::TooBigUserHeaders),
            (
                Error::InvalidMessageChecksum,
                IggyError::InvalidMessageChecksum(0, 0, 0),
            ),
            (Error::InvalidOffset(0), IggyError::InvalidOffset(0)),
            (
                Error::ConsumerOffsetNotFound(0),
                IggyError::ConsumerOffsetNotFound(0),
            ),
            (
                Error::ConsumerGroupIdNotFound(0),
                IggyError::ConsumerGroupIdNotFound(id.clone(), id.clone()),
            ),
            (
                Error::ConsumerGroupNameNotFound(String::new()),
                IggyError::ConsumerGroupNameNotFound(String::new(), id.clone()),
            ),
            (
                Error::ConsumerGroupNameAlreadyExists(String::new()),
                IggyError::ConsumerGroupNameAlreadyExists(String::new(), id.clone()),
            ),
            (
                Error::ConsumerGroupMemberNotFound,
                IggyError::ConsumerGroupMemberNotFound(0, id.clone(), id.clone()),
            ),
            (
                Error::ConsumerGroupPartitionNotOwned(0),
                IggyError::ConsumerGroupPartitionNotOwned(0, 0),
            ),
            (Error::Io(io::Error::other("x")), IggyError::Error),
            (
                Error::CannotSave {
                    kind: SaveKind::Messages,
                    reason: String::new(),
                },
                IggyError::CannotSaveMessagesToSegment,
            ),
            (
                Error::CannotSave {
                    kind: SaveKind::Metadata,
                    reason: String::new(),
                },
                IggyError::CannotWriteToFile,
            ),
        ];
        for (ours, upstream) in pairs {
            assert_eq!(ours.code(), upstream.as_code(), "{ours:?} vs {upstream:?}");
        }
    }
}
