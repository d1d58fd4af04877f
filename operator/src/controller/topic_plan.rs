//! What an `IggyTopic` asks of the broker, compared with what the broker
//! has: a pure decision, so every case is a unit test.
//!
//! The sync is one way, resource → broker. A topic this resource did not
//! create (its id is not in the status) is adopted only when it already
//! has the declared settings; otherwise it is a conflict and left alone.

use crate::crd::IggyTopicSpec;
use crate::crd::topic::Compression;
use iggy::prelude::{CompressionAlgorithm, IggyExpiry, MaxTopicSize};
use std::str::FromStr;

/// The topic as the spec declares it, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u8,
    pub message_expiry: IggyExpiry,
    pub max_topic_size: MaxTopicSize,
    pub compression: CompressionAlgorithm,
}

impl Desired {
    /// Parse the spec; the error says which field is wrong and why.
    pub fn from_spec(spec: &IggyTopicSpec, resource_name: &str) -> Result<Self, String> {
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| resource_name.to_string());
        let partitions = u32::try_from(spec.partitions)
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| format!("partitions must be at least 1, not {}", spec.partitions))?;
        let replication_factor = u8::try_from(spec.replication_factor)
            .ok()
            .filter(|f| *f >= 1)
            .ok_or_else(|| {
                format!(
                    "replicationFactor must be 1 to 255, not {}",
                    spec.replication_factor
                )
            })?;
        let message_expiry = match &spec.message_expiry {
            None => IggyExpiry::NeverExpire,
            Some(text) => IggyExpiry::from_str(text)
                .map_err(|e| format!("messageExpiry {text:?} is not a duration like 7d: {e}"))?,
        };
        let max_topic_size = match &spec.max_topic_size {
            None => MaxTopicSize::Unlimited,
            Some(text) => MaxTopicSize::from_str(text)
                .map_err(|e| format!("maxTopicSize {text:?} is not a size like 10GiB: {e}"))?,
        };
        let compression = match spec.compression {
            Compression::None => CompressionAlgorithm::None,
            Compression::Gzip => CompressionAlgorithm::Gzip,
        };
        Ok(Self {
            name,
            partitions,
            replication_factor,
            message_expiry,
            max_topic_size,
            compression,
        })
    }
}

/// The topic as the broker has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub id: u32,
    pub partitions: u32,
    /// `None`: not reported (a broker without the cluster admin API).
    pub replication_factor: Option<u8>,
    pub message_expiry: IggyExpiry,
    pub max_topic_size: MaxTopicSize,
    pub compression: CompressionAlgorithm,
    /// A partition is being moved to other replicas.
    pub moving: bool,
}

/// One step that brings the broker's topic to the spec.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Message expiry, size cap or compression differ.
    Settings,
    /// Add this many partitions.
    AddPartitions(u32),
    /// Change every partition's replica count.
    ReplicationFactor(u8),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Create,
    /// Left alone; the message says what differs.
    Conflict(String),
    /// Bring an owned (or just adopted) topic to the spec.
    Sync {
        changes: Vec<Change>,
        /// Things the sync cannot fix (more partitions than declared:
        /// partitions are never removed).
        problems: Vec<String>,
    },
}

/// Decide what to do. `owned_id` is the topic id this resource created or
/// adopted before (from its status).
pub fn plan(desired: &Desired, observed: Option<&Observed>, owned_id: Option<u32>) -> Plan {
    let Some(observed) = observed else {
        return Plan::Create;
    };
    let differences = differences(desired, observed);
    if owned_id != Some(observed.id) && !differences.is_empty() {
        return Plan::Conflict(format!(
            "topic {:?} exists with other settings ({}) and was not created by this resource; \
             it is left alone (delete it, or declare its settings to adopt it)",
            desired.name,
            differences.join(", ")
        ));
    }
    let mut changes = Vec::new();
    let mut problems = Vec::new();
    if desired.message_expiry != observed.message_expiry
        || desired.max_topic_size != observed.max_topic_size
        || desired.compression != observed.compression
    {
        changes.push(Change::Settings);
    }
    match desired.partitions.cmp(&observed.partitions) {
        std::cmp::Ordering::Greater => changes.push(Change::AddPartitions(
            desired.partitions - observed.partitions,
        )),
        std::cmp::Ordering::Less => problems.push(format!(
            "the topic has {} partitions, more than the {} declared (partitions are never removed)",
            observed.partitions, desired.partitions
        )),
        std::cmp::Ordering::Equal => {}
    }
    if observed
        .replication_factor
        .is_some_and(|f| f != desired.replication_factor)
        && !observed.moving
    {
        changes.push(Change::ReplicationFactor(desired.replication_factor));
    }
    Plan::Sync { changes, problems }
}

/// What differs between the spec and the broker's topic, for people.
fn differences(desired: &Desired, observed: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    if desired.partitions != observed.partitions {
        out.push(format!(
            "{} partitions, not {}",
            observed.partitions, desired.partitions
        ));
    }
    if let Some(factor) = observed.replication_factor
        && factor != desired.replication_factor
    {
        out.push(format!(
            "replication factor {factor}, not {}",
            desired.replication_factor
        ));
    }
    if desired.message_expiry != observed.message_expiry {
        out.push(format!(
            "message expiry {}, not {}",
            observed.message_expiry, desired.message_expiry
        ));
    }
    if desired.max_topic_size != observed.max_topic_size {
        out.push(format!(
            "max size {}, not {}",
            observed.max_topic_size, desired.max_topic_size
        ));
    }
    if desired.compression != observed.compression {
        out.push(format!(
            "compression {}, not {}",
            observed.compression, desired.compression
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::topic::DeletionPolicy;

    fn spec() -> IggyTopicSpec {
        IggyTopicSpec {
            cluster_ref: "demo".into(),
            stream: "orders".into(),
            name: None,
            partitions: 3,
            replication_factor: 3,
            message_expiry: Some("7d".into()),
            max_topic_size: Some("10GiB".into()),
            compression: Compression::None,
            deletion_policy: DeletionPolicy::Delete,
        }
    }

    fn observed_as(desired: &Desired, id: u32) -> Observed {
        Observed {
            id,
            partitions: desired.partitions,
            replication_factor: Some(desired.replication_factor),
            message_expiry: desired.message_expiry,
            max_topic_size: desired.max_topic_size,
            compression: desired.compression,
            moving: false,
        }
    }

    #[test]
    fn the_spec_parses_and_names_default_to_the_resource() {
        let desired = Desired::from_spec(&spec(), "events").unwrap();
        assert_eq!(desired.name, "events");
        assert_eq!(desired.partitions, 3);
        assert_ne!(desired.message_expiry, IggyExpiry::NeverExpire);
        assert_ne!(desired.max_topic_size, MaxTopicSize::Unlimited);
        let bad = IggyTopicSpec {
            message_expiry: Some("a week".into()),
            ..spec()
        };
        let error = Desired::from_spec(&bad, "events").unwrap_err();
        assert!(error.contains("messageExpiry"), "{error}");
        let bad = IggyTopicSpec {
            max_topic_size: Some("huge".into()),
            ..spec()
        };
        assert!(
            Desired::from_spec(&bad, "e")
                .unwrap_err()
                .contains("maxTopicSize")
        );
    }

    #[test]
    fn a_missing_topic_is_created_and_a_matching_one_needs_nothing() {
        let desired = Desired::from_spec(&spec(), "events").unwrap();
        assert_eq!(plan(&desired, None, None), Plan::Create);
        let same = observed_as(&desired, 4);
        let nothing = Plan::Sync {
            changes: vec![],
            problems: vec![],
        };
        assert_eq!(plan(&desired, Some(&same), Some(4)), nothing);
        // Someone else's topic with exactly these settings is adopted.
        assert_eq!(plan(&desired, Some(&same), None), nothing);
    }

    #[test]
    fn someone_elses_topic_with_other_settings_is_a_conflict_and_left_alone() {
        let desired = Desired::from_spec(&spec(), "events").unwrap();
        let other = Observed {
            partitions: 1,
            compression: CompressionAlgorithm::Gzip,
            ..observed_as(&desired, 9)
        };
        match plan(&desired, Some(&other), None) {
            Plan::Conflict(message) => {
                assert!(message.contains("1 partitions, not 3"), "{message}");
                assert!(message.contains("compression"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // A topic of that name recreated behind this resource's back (a
        // new id) is someone else's too.
        assert!(matches!(
            plan(&desired, Some(&other), Some(4)),
            Plan::Conflict(_)
        ));
    }

    #[test]
    fn an_owned_topic_is_brought_to_the_spec_and_never_loses_partitions() {
        let desired = Desired::from_spec(&spec(), "events").unwrap();
        let drifted = Observed {
            partitions: 2,
            replication_factor: Some(1),
            message_expiry: IggyExpiry::NeverExpire,
            ..observed_as(&desired, 4)
        };
        assert_eq!(
            plan(&desired, Some(&drifted), Some(4)),
            Plan::Sync {
                changes: vec![
                    Change::Settings,
                    Change::AddPartitions(1),
                    Change::ReplicationFactor(3)
                ],
                problems: vec![],
            }
        );
        // While partitions move, the factor is not changed again.
        let moving = Observed {
            replication_factor: Some(1),
            moving: true,
            ..observed_as(&desired, 4)
        };
        assert_eq!(
            plan(&desired, Some(&moving), Some(4)),
            Plan::Sync {
                changes: vec![],
                problems: vec![]
            }
        );
        let more = Observed {
            partitions: 5,
            ..observed_as(&desired, 4)
        };
        match plan(&desired, Some(&more), Some(4)) {
            Plan::Sync { changes, problems } => {
                assert!(changes.is_empty());
                assert!(problems[0].contains("5 partitions"), "{problems:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}
