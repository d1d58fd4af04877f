//! The replicated metadata.
//!
//! - [`state`]: the data (streams, topics, partitions and their replicas,
//!   consumer offsets and groups, users, tokens, brokers) and its queries.
//! - [`command`]: the log's entries — commands, their outcomes, their side
//!   effects.
//! - [`apply`]: the deterministic state machine step.
//! - [`service`]: reading and writing it from the rest of the broker.

pub mod apply;
pub mod command;
pub mod placement;
pub mod service;
mod state;

pub use command::{Applied, Ident, MetadataCommand, ProposalId};
pub use service::MetadataService;
pub use state::{
    Advertised, ConsumerGroupMeta, ConsumerKey, GroupKey, Member, MetadataState, NodeMeta,
    PartitionKey, PartitionMeta, StreamMeta, TokenMeta, TopicMeta, TopicSettings, UserMeta, assign,
};
