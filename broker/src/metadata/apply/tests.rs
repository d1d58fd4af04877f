use super::*;
use crate::metadata::command::{Ident, ProposalId};
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
fn the_first_uid_applied_names_the_cluster_for_good() {
    let mut state = MetadataState::default();
    let mut log = Log::new(&[0, 1, 2]);
    assert_eq!(state.cluster_uid, None);
    // Two leaders in turn may both find the cluster unnamed.
    for uid in [7, 8] {
        let answer = log.apply(&mut state, MetadataCommand::NameCluster { uid });
        assert_eq!(answer, Ok(Applied::Done));
    }
    assert_eq!(state.cluster_uid, Some(7));
    let restored: MetadataState =
        serde_json::from_slice(&serde_json::to_vec(&state).unwrap()).unwrap();
    assert_eq!(restored.cluster_uid, Some(7), "the snapshot keeps it");
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
fn a_broker_back_from_a_restart_or_with_an_empty_disk_leaves_every_in_sync_set_and_leadership() {
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
    //! Random command sequences — every kind of command, over a few names
    //! and ids so that they collide, refer to what was deleted, and so on —
    //! after a prelude that creates streams, topics and groups for them to
    //! hit: applying is deterministic, and a snapshot taken anywhere,
    //! restored and replayed from there ends in the same state with the
    //! same answers.
    use super::*;
    use crate::metadata::command::TopicUpdate;
    use crate::metadata::state::{Advertised, ConsumerKey, TokenMeta, UserMeta};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const NAMES: [&str; 3] = ["a", "b", "c"];
    const BROKERS: [u32; 3] = [0, 1, 2];

    fn name() -> impl Strategy<Value = String> {
        prop::sample::select(&NAMES[..]).prop_map(str::to_string)
    }

    fn ident() -> impl Strategy<Value = Ident> {
        prop_oneof![name().prop_map(Ident::Name), (0u32..3).prop_map(Ident::Id)]
    }

    fn partition() -> impl Strategy<Value = PartitionKey> {
        (0u32..3, 0u32..3, 0u32..3)
    }

    /// Broker ids, sometimes one outside the cluster, sometimes repeated.
    fn brokers() -> impl Strategy<Value = Vec<u32>> {
        prop::collection::vec(0u32..4, 0..4)
    }

    fn member() -> impl Strategy<Value = Member> {
        (1u32..4, 0u32..3, 1u64..3).prop_map(|(client_id, node, epoch)| Member {
            client_id,
            node,
            epoch,
        })
    }

    fn consumer() -> impl Strategy<Value = ConsumerKey> {
        name().prop_map(ConsumerKey::Consumer)
    }

    fn user() -> impl Strategy<Value = UserMeta> {
        (0u32..5, name(), name(), 1u8..3).prop_map(|(id, username, password_hash, status)| {
            UserMeta {
                id,
                username,
                password_hash,
                status,
                created_at: 1,
                permissions: None,
                tokens: BTreeMap::new(),
            }
        })
    }

    fn catalog_command() -> impl Strategy<Value = MetadataCommand> {
        prop_oneof![
            name().prop_map(|name| MetadataCommand::CreateStream {
                name,
                options: vec![],
                created_at: 1,
            }),
            (ident(), name(), prop::option::of(Just(vec![1u8]))).prop_map(
                |(stream, name, options)| MetadataCommand::UpdateStream {
                    stream,
                    name,
                    options,
                }
            ),
            ident().prop_map(|stream| MetadataCommand::PurgeStream { stream }),
            (ident(), name(), 0u32..4, 1u8..4).prop_map(|(stream, name, partitions, factor)| {
                MetadataCommand::CreateTopic {
                    stream,
                    name,
                    partitions,
                    settings: settings(factor),
                    options: vec![],
                    created_at: 2,
                }
            }),
            (ident(), ident(), name(), prop::option::of(0u64..5)).prop_map(
                |(stream, topic, name, expiry)| MetadataCommand::UpdateTopic {
                    stream,
                    topic,
                    name,
                    update: TopicUpdate {
                        compression_algorithm: None,
                        message_expiry_us: expiry,
                        max_topic_size: None,
                    },
                    options: None,
                }
            ),
            (ident(), ident())
                .prop_map(|(stream, topic)| MetadataCommand::PurgeTopic { stream, topic }),
            (ident(), ident(), 0u32..3).prop_map(|(stream, topic, count)| {
                MetadataCommand::CreatePartitions {
                    stream,
                    topic,
                    count,
                    created_at: 3,
                }
            }),
            (ident(), ident(), 0u32..3).prop_map(|(stream, topic, count)| {
                MetadataCommand::DeletePartitions {
                    stream,
                    topic,
                    count,
                }
            }),
        ]
    }

    /// Kept rarer than the rest, so that the prelude's streams and topics
    /// last long enough to be used.
    fn delete_command() -> impl Strategy<Value = MetadataCommand> {
        prop_oneof![
            ident().prop_map(|stream| MetadataCommand::DeleteStream { stream }),
            (ident(), ident())
                .prop_map(|(stream, topic)| MetadataCommand::DeleteTopic { stream, topic }),
        ]
    }

    fn user_command() -> impl Strategy<Value = MetadataCommand> {
        prop_oneof![
            user().prop_map(|user| MetadataCommand::CreateRootUser { user }),
            user().prop_map(|user| MetadataCommand::CreateUser { user }),
            (ident(), prop::option::of(name()), prop::option::of(1u8..3)).prop_map(
                |(user, username, status)| MetadataCommand::UpdateUser {
                    user,
                    username,
                    status,
                }
            ),
            ident().prop_map(|user| MetadataCommand::DeleteUser { user }),
            (0u32..4, name(), name()).prop_map(|(user_id, expected_hash, password_hash)| {
                MetadataCommand::ChangePassword {
                    user_id,
                    expected_hash,
                    password_hash,
                }
            }),
            ident().prop_map(|user| MetadataCommand::UpdatePermissions {
                user,
                permissions: None,
            }),
            (0u32..4, name(), prop::option::of(0u64..10)).prop_map(|(user_id, name, expiry_at)| {
                MetadataCommand::CreateToken {
                    user_id,
                    name,
                    token: TokenMeta {
                        hash: "hash".into(),
                        expiry_at,
                    },
                }
            }),
            (0u32..4, name())
                .prop_map(|(user_id, name)| MetadataCommand::DeleteToken { user_id, name }),
            (0u64..10).prop_map(|now| MetadataCommand::DeleteExpiredTokens { now }),
        ]
    }

    fn group_command() -> impl Strategy<Value = MetadataCommand> {
        prop_oneof![
            (ident(), ident(), name()).prop_map(|(stream, topic, name)| {
                MetadataCommand::CreateConsumerGroup {
                    stream,
                    topic,
                    name,
                }
            }),
            (ident(), ident(), ident()).prop_map(|(stream, topic, group)| {
                MetadataCommand::DeleteConsumerGroup {
                    stream,
                    topic,
                    group,
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
            member().prop_map(|member| MetadataCommand::LeaveConsumerGroups { member }),
            (partition(), consumer(), 0u64..100).prop_map(|(partition, consumer, offset)| {
                MetadataCommand::StoreConsumerOffset {
                    partition,
                    consumer,
                    offset,
                }
            }),
            prop::collection::vec((partition(), consumer(), 0u64..100), 1..4)
                .prop_map(|offsets| MetadataCommand::StoreConsumerOffsets { offsets }),
            (partition(), consumer()).prop_map(|(partition, consumer)| {
                MetadataCommand::DeleteConsumerOffset {
                    partition,
                    consumer,
                }
            }),
        ]
    }

    fn replica_command() -> impl Strategy<Value = MetadataCommand> {
        prop_oneof![
            (partition(), 0u32..4, 0u32..3, brokers()).prop_map(
                |(partition, epoch, leader, in_sync)| MetadataCommand::ElectLeader {
                    partition,
                    epoch,
                    leader,
                    in_sync,
                }
            ),
            (partition(), 0u32..4, brokers()).prop_map(|(partition, epoch, in_sync)| {
                MetadataCommand::ChangeInSync {
                    partition,
                    epoch,
                    in_sync,
                }
            }),
            (partition(), brokers()).prop_map(|(partition, replicas)| {
                MetadataCommand::ReassignReplicas {
                    partition,
                    replicas,
                }
            }),
            (0u32..3, 0u32..3, 0u8..4, 0u8..4).prop_map(
                |(stream_id, topic_id, factor, min_in_sync)| {
                    MetadataCommand::ChangeReplicationFactor {
                        stream_id,
                        topic_id,
                        factor,
                        min_in_sync,
                    }
                }
            ),
            (partition(), 0u32..4).prop_map(|(partition, epoch)| {
                MetadataCommand::CompleteReassignment { partition, epoch }
            }),
            (1u64..4).prop_map(|uid| MetadataCommand::NameCluster { uid }),
            (0u32..3, 1u64..3, 0u64..3, name()).prop_map(|(node, epoch, storage, zone)| {
                MetadataCommand::RegisterNode {
                    node,
                    epoch,
                    advertised: Advertised::default(),
                    version: "test".into(),
                    storage,
                    zone,
                    metadata_version: 1,
                }
            }),
        ]
    }

    fn command() -> impl Strategy<Value = MetadataCommand> {
        prop_oneof![
            3 => catalog_command(),
            3 => user_command(),
            4 => group_command(),
            6 => replica_command(),
            1 => delete_command(),
        ]
    }

    /// Streams `a` and `b`, each with topics `a`, `b` and `c` of three
    /// partitions (factors 3, 2 and 1), each topic with groups `a` and `b`.
    fn prelude() -> Vec<MetadataCommand> {
        let mut commands = Vec::new();
        for stream in ["a", "b"] {
            commands.push(create_stream(stream));
            for (topic, factor) in [("a", 3), ("b", 2), ("c", 1)] {
                commands.push(create_topic(stream, topic, 3, factor));
                for group in ["a", "b"] {
                    commands.push(MetadataCommand::CreateConsumerGroup {
                        stream: Ident::Name(stream.into()),
                        topic: Ident::Name(topic.into()),
                        name: group.into(),
                    });
                }
            }
        }
        commands
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn a_snapshot_anywhere_then_replay_equals_the_full_replay(
            random in prop::collection::vec(command(), 1..60),
            cut in any::<prop::sample::Index>(),
        ) {
            let commands: Vec<MetadataCommand> = prelude().into_iter().chain(random).collect();
            let cut = cut.index(commands.len());
            let (mut full, mut again) = (MetadataState::default(), MetadataState::default());
            let (mut log, mut log_again) = (Log::new(&BROKERS), Log::new(&BROKERS));
            let answers: Vec<Response> =
                commands.iter().map(|c| log.apply(&mut full, c.clone())).collect();
            let answers_again: Vec<Response> =
                commands.iter().map(|c| log_again.apply(&mut again, c.clone())).collect();
            prop_assert_eq!(&full, &again);
            prop_assert_eq!(&answers, &answers_again);

            // Snapshot after `cut` commands (as the state machine
            // writes one), restore, replay the rest.
            let mut prefix = MetadataState::default();
            let mut log_prefix = Log::new(&BROKERS);
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
