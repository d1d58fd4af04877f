//! Cluster metadata: the state machine and its durable log.

mod state;
mod store;

pub use state::{
    ConsumerGroupMeta, MetadataOp, MetadataState, PartitionMeta, StreamMeta, TokenMeta, TopicMeta,
    TopicSettings, UserMeta,
};
pub use store::MetadataStore;
