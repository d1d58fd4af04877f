//! Membership churn, seeded: what the operator does to a cluster — rolling
//! restarts, brokers joining and being rebalanced onto, brokers drained and
//! removed — mixed with crashes, on real broker processes
//! (`scripts/cluster.sh`) while the official SDK producer sends to
//! partition 0 (three replicas, minimum in sync two) and, as the operator
//! does, a rebalance is asked for every second. Afterwards every broker
//! must serve the same log, holding every acknowledged message once, in
//! order.
//!
//! One change per round, chosen by the seed:
//! - `MoveAndBack`: one of partition 0's followers moved off the partition
//!   and straight back (or to another broker and back), within one leader
//!   epoch. A replica added back this way once joined the in-sync set on
//!   its removed log's progress and was elected leader with an empty log.
//! - `Join`: a spare broker (or a removed one, on its old volume) starts
//!   and joins; the rebalance spreads partitions onto it.
//! - `Leave`: the highest joined broker is drained, removed and stopped
//!   (the rebalance paused meanwhile, as the operator does).
//! - `Restart`: a broker that is safe to restart is stopped with SIGTERM
//!   and started again (one step of a rolling restart).
//! - `Crash`: `kill -9` of a broker, restarted after 0.2–2 s.
//!
//! `IGGY_CHURN_SEED` (default 1) and `IGGY_CHURN_ROUNDS` (default 6, the
//! short run `make test` makes; `make chaos` runs 100). A failure prints
//! the seed and the changes so far, to run it again.

mod common;

use common::cluster::TestCluster;
use common::replicated::*;
use common::try_http_json;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
enum Change {
    MoveAndBack,
    Join,
    Leave,
    Restart,
    Crash,
}

const CHANGES: [Change; 5] = [
    Change::MoveAndBack,
    Change::Join,
    Change::Leave,
    Change::Restart,
    Change::Crash,
];

/// The brokers that found the cluster; the others are spares.
const FOUNDERS: u32 = 3;
const SPARES: usize = 2;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `POST /cluster/rebalance` every second through the first founder that
/// answers, unless paused; stops when dropped.
struct Rebalancer {
    paused: Arc<AtomicBool>,
    /// Held while a rebalance call is in flight, so that `pause` can wait
    /// for it: a call already sent would otherwise land after the pause.
    calling: Arc<tokio::sync::Mutex<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Rebalancer {
    fn start(founders: Vec<SocketAddr>) -> Self {
        let paused = Arc::new(AtomicBool::new(false));
        let calling = Arc::new(tokio::sync::Mutex::new(()));
        let task = tokio::spawn({
            let paused = paused.clone();
            let calling = calling.clone();
            async move {
                loop {
                    {
                        let _calling = calling.lock().await;
                        if !paused.load(Ordering::SeqCst) {
                            for http in &founders {
                                if rebalance_once(*http).await {
                                    break;
                                }
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        });
        Self {
            paused,
            calling,
            task,
        }
    }

    /// Pause (or resume) the rebalancing; a pause returns once no call is
    /// in flight.
    async fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
        drop(self.calling.lock().await);
    }
}

impl Drop for Rebalancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One rebalance call; whether the broker answered it.
async fn rebalance_once(http: SocketAddr) -> bool {
    let call = async {
        let login = try_http_json(
            http,
            "POST",
            "/users/login",
            None,
            r#"{"username":"iggy","password":"iggy"}"#,
        )
        .await
        .ok()?;
        let body = login.split("\r\n\r\n").nth(1)?;
        let json: serde_json::Value = serde_json::from_str(body).ok()?;
        let token = json["access_token"]["token"].as_str()?.to_string();
        let answer = try_http_json(
            http,
            "POST",
            "/cluster/rebalance",
            Some(&token),
            r#"{"max_moves":4}"#,
        )
        .await
        .ok()?;
        answer.contains(" 202 ").then_some(())
    };
    tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .ok()
        .flatten()
        .is_some()
}

/// A running founder to ask.
fn via(cluster: &TestCluster) -> u32 {
    cluster
        .running()
        .map(|n| n.id)
        .find(|id| *id < FOUNDERS)
        .expect("a running founder")
}

/// `POST` until it is accepted (another reassignment may be running).
async fn post_accepted(cluster: &TestCluster, path: &str, body: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, response) = admin_post(cluster, via(cluster), path, body).await;
        if code == 202 {
            return;
        }
        assert!(Instant::now() < deadline, "{path} {body}: {response}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Wait until nothing is being reassigned and every replica is in sync.
async fn wait_settled(cluster: &TestCluster, also: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let partitions = admin_get(cluster, via(cluster), "/cluster/partitions").await;
        if settled(&partitions) && also(&partitions) {
            return;
        }
        assert!(Instant::now() < deadline, "not settled: {partitions}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn reassign_partition_0(cluster: &TestCluster, replicas: &[u32]) {
    let body = serde_json::json!({ "replicas": replicas }).to_string();
    post_accepted(cluster, "/cluster/partitions/s/t/0/reassign", &body).await;
    wait_settled(cluster, |partitions| {
        partitions.as_array().unwrap().iter().any(|p| {
            p["partition_id"] == 0
                && p["replicas"]
                    .as_array()
                    .is_some_and(|r| r.len() == replicas.len())
        })
    })
    .await;
}

/// Wait until broker `id` answers that a restart is safe now.
async fn wait_safe_to_restart(cluster: &TestCluster, id: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = admin_get(
            cluster,
            via(cluster),
            &format!("/cluster/nodes/{id}/safe-to-restart"),
        )
        .await;
        if answer["safe"] == true {
            return;
        }
        assert!(Instant::now() < deadline, "never safe: {answer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_membership_churn_loses_nothing_acknowledged() {
    let seed = env_number("IGGY_CHURN_SEED", 1);
    let rounds = env_number("IGGY_CHURN_ROUNDS", 6);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cluster = TestCluster::up_with_spare(
        FOUNDERS as usize,
        SPARES,
        &[
            ("IGGY_CLUSTER_DEFAULT_REPLICATION_FACTOR", "3"),
            ("IGGY_CLUSTER_WRITE_TIMEOUT", "2s"),
        ],
    );
    create_topic_with_partitions(&cluster, 3).await;
    let producer = Producer::start(&cluster);
    let rebalancer = Rebalancer::start(cluster.nodes.iter().map(|n| n.http).collect());
    let all = FOUNDERS + SPARES as u32;
    let mut done = Vec::new();
    for round in 0..rounds {
        let status = wait_for_partition(&cluster, 3).await;
        producer.more_acks(30).await;
        let members = voters(&cluster, via(&cluster)).await;
        let change = CHANGES[rng.random_range(0..CHANGES.len())];
        eprintln!(
            "seed {seed} round {round}: {change:?} (voters {members:?}, partition 0 {status:?})"
        );
        match change {
            Change::MoveAndBack => {
                // The rebalancer may be moving partition 0 right now (after a
                // join): pause it and start from a settled assignment, or
                // "back" would restore a transitional replica set.
                rebalancer.pause(true).await;
                wait_settled(&cluster, |_| true).await;
                let status = wait_for_partition(&cluster, 3).await;
                let leader = status.leader.unwrap();
                let followers: Vec<u32> = status
                    .replicas
                    .iter()
                    .copied()
                    .filter(|r| *r != leader)
                    .collect();
                let moved = followers[rng.random_range(0..followers.len())];
                let kept: Vec<u32> = status
                    .replicas
                    .iter()
                    .copied()
                    .filter(|r| *r != moved)
                    .collect();
                let elsewhere: Vec<u32> = members
                    .iter()
                    .copied()
                    .filter(|m| !status.replicas.contains(m))
                    .collect();
                let mut away = kept.clone();
                if !elsewhere.is_empty() && rng.random_bool(0.5) {
                    away.push(elsewhere[rng.random_range(0..elsewhere.len())]);
                }
                reassign_partition_0(&cluster, &away).await;
                reassign_partition_0(&cluster, &status.replicas).await;
                rebalancer.pause(false).await;
            }
            Change::Join => {
                let Some(id) = (FOUNDERS..all).find(|id| !members.contains(id)) else {
                    eprintln!("  every broker is a member already");
                    continue;
                };
                // Joins take the lowest spare and leaves the highest
                // member, so spares start in order.
                assert!(
                    id as usize <= cluster.nodes.len(),
                    "spare {id} out of order"
                );
                cluster.start(id);
                let mut want = members.clone();
                want.push(id);
                want.sort_unstable();
                wait_for_voters(&cluster, via(&cluster), &want).await;
            }
            Change::Leave => {
                let Some(id) = members.iter().copied().filter(|m| *m >= FOUNDERS).max() else {
                    eprintln!("  only the founders are members");
                    continue;
                };
                rebalancer.pause(true).await;
                wait_settled(&cluster, |_| true).await;
                post_accepted(&cluster, &format!("/cluster/nodes/{id}/drain"), "").await;
                wait_settled(&cluster, |partitions| !holds(partitions, id.into())).await;
                let (code, response) =
                    admin_delete(&cluster, via(&cluster), &format!("/cluster/nodes/{id}")).await;
                assert_eq!(code, 200, "{response}");
                let remaining: Vec<u32> = members.iter().copied().filter(|m| *m != id).collect();
                wait_for_voters(&cluster, via(&cluster), &remaining).await;
                cluster.stop(id);
                rebalancer.pause(false).await;
            }
            Change::Restart => {
                let running: Vec<u32> = cluster.running().map(|n| n.id).collect();
                let id = running[rng.random_range(0..running.len())];
                wait_safe_to_restart(&cluster, id).await;
                cluster.stop(id);
                cluster.start(id);
            }
            Change::Crash => {
                let running: Vec<u32> = cluster.running().map(|n| n.id).collect();
                let id = running[rng.random_range(0..running.len())];
                cluster.kill(id);
                tokio::time::sleep(Duration::from_millis(rng.random_range(200..2000))).await;
                cluster.start(id);
            }
        }
        done.push(change);
    }
    drop(rebalancer);
    wait_for_partition(&cluster, 3).await;
    producer.more_acks(30).await;
    let (outcomes, ids) = finish_and_check(producer, &cluster).await;
    eprintln!(
        "seed {seed}: {rounds} rounds {done:?}; {} sends, {} acknowledged, {} stored",
        outcomes.len(),
        outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Acked(..)))
            .count(),
        ids.len()
    );
}
