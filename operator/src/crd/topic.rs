//! `IggyTopic`: a topic declared as a Kubernetes resource and kept in sync
//! one way, resource → broker.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a topic.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "iggy.rs",
    version = "v1alpha1",
    kind = "IggyTopic",
    plural = "iggytopics",
    shortname = "itopic",
    namespaced,
    status = "IggyTopicStatus",
    printcolumn = r#"{"name": "Cluster", "type": "string", "jsonPath": ".spec.clusterRef"}"#,
    printcolumn = r#"{"name": "Partitions", "type": "integer", "jsonPath": ".spec.partitions"}"#,
    printcolumn = r#"{"name": "Replication", "type": "integer", "jsonPath": ".spec.replicationFactor"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Status", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.name) == has(oldSelf.name) && (!has(self.name) || self.name == oldSelf.name)").message("the topic name cannot be changed"))]
pub struct IggyTopicSpec {
    /// Name of the IggyCluster (same namespace) that holds the topic.
    #[x_kube(validation = Rule::new("self == oldSelf").message("clusterRef cannot be changed"))]
    pub cluster_ref: String,
    /// Stream the topic belongs to (created if missing).
    #[x_kube(validation = Rule::new("self == oldSelf").message("the stream of a topic cannot be changed"))]
    #[x_kube(validation = Rule::new("size(self) >= 1 && size(self) <= 255").message("stream must be 1 to 255 characters"))]
    pub stream: String,
    /// Topic name in the broker; defaults to `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Number of partitions; can grow, never shrink.
    #[x_kube(validation = Rule::new("self >= 1").message("partitions must be at least 1"))]
    #[x_kube(validation = Rule::new("self >= oldSelf").message("partitions cannot be decreased"))]
    pub partitions: i32,
    /// Replicas of each partition.
    #[serde(default = "one")]
    #[x_kube(validation = Rule::new("self >= 1").message("replicationFactor must be at least 1"))]
    pub replication_factor: i32,
    /// Messages older than this are deleted, e.g. `7d`; unset = never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_expiry: Option<String>,
    /// Oldest segments are deleted above this size, e.g. `10GiB`; unset = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_topic_size: Option<String>,
    #[serde(default)]
    pub compression: Compression,
    /// What happens to the topic in the broker when this resource is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn one() -> i32 {
    1
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Gzip,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Delete the topic and its messages.
    #[default]
    Delete,
    /// Keep the topic in the broker.
    Retain,
}

/// Observed state of a topic.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct IggyTopicStatus {
    /// Ready, Conflict (a topic of that name exists that this resource did
    /// not create, with other settings: left alone), Degraded.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Stream and topic ids in the broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<u32>,
    /// Each partition's replicas (broker ids = pod ordinals), leader and
    /// in-sync replicas, as the brokers report them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<TopicPartitionStatus>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicPartitionStatus {
    pub id: u32,
    pub replicas: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<u32>,
    pub in_sync: Vec<u32>,
    /// The replica set it is moving to, while it moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moving_to: Option<Vec<u32>>,
}
