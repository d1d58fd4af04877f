//! Consumer groups through the official high-level consumer: three members
//! share a topic's partitions and consume every message exactly once with
//! auto-commit; when one member dies its partitions move to the others and
//! nothing is lost.

mod common;

use common::{TestBroker, create_stream_and_topic, send};
use futures::StreamExt;
use iggy::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Seen = Arc<Mutex<Vec<(usize, u128)>>>;

async fn member(broker: &TestBroker) -> (IggyClient, IggyConsumer) {
    let client = broker.client().await;
    let mut consumer = client
        .consumer_group("workers", "s", "t")
        .unwrap()
        .auto_commit(AutoCommit::When(AutoCommitWhen::PollingMessages))
        .create_consumer_group_if_not_exists()
        .auto_join_consumer_group()
        .polling_strategy(PollingStrategy::next())
        .batch_length(100)
        .poll_interval(IggyDuration::from(10_000))
        .build();
    consumer.init().await.unwrap();
    (client, consumer)
}

/// Consume into `seen` until the task is aborted.
fn run_member(index: usize, mut consumer: IggyConsumer, seen: Seen) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(message) = consumer.next().await {
            if let Ok(message) = message {
                seen.lock()
                    .unwrap()
                    .push((index, message.message.header.id));
            }
        }
    })
}

/// `count` members consuming into `seen`: their tasks and their clients.
async fn start_members(
    broker: &TestBroker,
    count: usize,
    seen: &Seen,
) -> (Vec<tokio::task::JoinHandle<()>>, Vec<IggyClient>) {
    let (mut tasks, mut clients) = (Vec::new(), Vec::new());
    for index in 0..count {
        let (client, consumer) = member(broker).await;
        tasks.push(run_member(index, consumer, seen.clone()));
        clients.push(client);
    }
    (tasks, clients)
}

async fn wait_for_count(seen: &Seen, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let unique: std::collections::HashSet<u128> =
            seen.lock().unwrap().iter().map(|(_, id)| *id).collect();
        if unique.len() >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {count} messages consumed",
            unique.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn produce(client: &IggyClient, first_id: u128, count: usize) {
    for batch in 0..count / 100 {
        send(
            client,
            "s",
            "t",
            &Partitioning::balanced(),
            first_id + (batch * 100) as u128,
            100,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_consume_every_message_exactly_once() {
    let broker = TestBroker::start();
    let producer = broker.client().await;
    create_stream_and_topic(&producer, "s", "t", 6).await;
    let seen: Seen = Arc::default();
    let (tasks, _clients) = start_members(&broker, 3, &seen).await;
    // All three are members and split the six partitions.
    let group = producer
        .get_consumer_group(
            &Identifier::named("s").unwrap(),
            &Identifier::named("t").unwrap(),
            &Identifier::named("workers").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(group.members_count, 3);
    assert!(group.members.iter().all(|m| m.partitions_count == 2));

    produce(&producer, 1, 3000).await;
    wait_for_count(&seen, 3000).await;
    // A duplicate would come before a later message of its partition: one
    // more message per partition, and once all six are consumed, whatever
    // was delivered twice has been.
    const SENTINELS: u128 = 1_000_000;
    for partition in 0..6u32 {
        send(
            &producer,
            "s",
            "t",
            &Partitioning::partition_id(partition),
            SENTINELS + u128::from(partition),
            1,
        )
        .await;
    }
    wait_for_count(&seen, 3006).await;
    let seen: Vec<(usize, u128)> = seen
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|(_, id)| *id < SENTINELS)
        .collect();
    let mut per_id: HashMap<u128, usize> = HashMap::new();
    for (_, id) in &seen {
        *per_id.entry(*id).or_default() += 1;
    }
    assert_eq!(per_id.len(), 3000);
    let duplicates: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "{} messages delivered twice",
        duplicates.len()
    );
    for index in 0..3 {
        assert!(
            seen.iter().any(|(i, _)| *i == index),
            "member {index} consumed nothing"
        );
    }
    for task in tasks {
        task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_members_partitions_move_to_the_others_without_loss() {
    let broker = TestBroker::start();
    let producer = broker.client().await;
    create_stream_and_topic(&producer, "s", "t", 6).await;
    let seen: Seen = Arc::default();
    let (mut tasks, mut clients) = start_members(&broker, 3, &seen).await;
    produce(&producer, 1, 1500).await;
    wait_for_count(&seen, 1500).await;

    // Kill member 0: it stops consuming and its connection closes without
    // leaving the group, as when its process dies.
    tasks.remove(0).abort();
    clients.remove(0).shutdown().await.unwrap();
    let ids = (
        Identifier::named("s").unwrap(),
        Identifier::named("t").unwrap(),
        Identifier::named("workers").unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let group = producer
            .get_consumer_group(&ids.0, &ids.1, &ids.2)
            .await
            .unwrap()
            .unwrap();
        if group.members_count == 2 {
            assert_eq!(
                group
                    .members
                    .iter()
                    .map(|m| m.partitions_count)
                    .sum::<u32>(),
                6
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dead member was never removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let consumed_by_dead = seen.lock().unwrap().iter().filter(|(i, _)| *i == 0).count();

    produce(&producer, 1501, 1500).await;
    wait_for_count(&seen, 3000).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|(i, _)| *i == 0).count(),
        consumed_by_dead
    );
    let unique: std::collections::HashSet<u128> = seen.iter().map(|(_, id)| *id).collect();
    assert_eq!(unique.len(), 3000, "every message consumed at least once");
    for task in tasks {
        task.abort();
    }
}
