//! The fault checker: a seeded, repeatable series of faults against three
//! real brokers (`scripts/cluster.sh`) while the official SDK produces to
//! a partition replicated on all three; afterwards every broker must serve
//! the same log, holding every acknowledged message once, in order.
//!
//! Faults, one per round, chosen by the seed: `kill -9` of the partition's
//! leader or of a follower (restarted after a pause), a follower restarted
//! with its data directory wiped, a broker cut off from the others
//! (iptables) for a while, a paused broker (SIGSTOP, then SIGCONT), and a
//! slow, lossy network for a while: loopback rate-limited (tc tbf) and 2 %
//! of the packets to the brokers dropped at random (iptables statistic) —
//! this machine's kernel has no netem, which would do both — and a full
//! volume: each broker's data directory is its own tmpfs, and a ballast
//! file leaves the leader or a follower under twice its reserve (sometimes
//! under the reserve) for a while; the cluster must go on acknowledging
//! (the leader hands its partition to a replica with room).
//!
//! `IGGY_FAULT_SEED` (default 1) and `IGGY_FAULT_ROUNDS` (default 4, the
//! short run `make test` makes; `make chaos` runs 200). A failure prints
//! the seed and the faults so far, to run it again.

mod common;

use common::replicated::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
enum Fault {
    KillLeader,
    KillFollower,
    WipeFollower,
    Isolate,
    Pause,
    SlowNetwork,
    FillDisk,
}

const FAULTS: [Fault; 7] = [
    Fault::KillLeader,
    Fault::KillFollower,
    Fault::WipeFollower,
    Fault::Isolate,
    Fault::Pause,
    Fault::SlowNetwork,
    Fault::FillDisk,
];

/// Each broker's volume, and the reserve it keeps on it.
const VOLUME_MIB: &str = "192";
const RESERVE_MIB: u64 = 16;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap();
    assert!(status.success(), "{program} {args:?} failed");
}

/// A slow, lossy network to the brokers while alive (undone on drop, also
/// when the test fails).
struct SlowLossyNetwork {
    loss_rules: Vec<Vec<String>>,
}

impl SlowLossyNetwork {
    fn start(cluster: &common::cluster::TestCluster) -> Self {
        run(
            "tc",
            &[
                "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "100mbit", "burst", "128kb",
                "latency", "50ms",
            ],
        );
        let loss_rules: Vec<Vec<String>> = cluster
            .nodes
            .iter()
            .map(|node| {
                [
                    "INPUT",
                    "-d",
                    &node.replica.ip().to_string(),
                    "-p",
                    "tcp",
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    "0.02",
                    "-j",
                    "DROP",
                ]
                .iter()
                .map(|a| a.to_string())
                .collect()
            })
            .collect();
        for rule in &loss_rules {
            let mut args = vec!["-w", "-I"];
            args.extend(rule.iter().map(String::as_str));
            run("iptables", &args);
        }
        Self { loss_rules }
    }
}

impl Drop for SlowLossyNetwork {
    fn drop(&mut self) {
        let _ = Command::new("tc")
            .args(["qdisc", "del", "dev", "lo", "root"])
            .status();
        for rule in &self.loss_rules {
            let _ = Command::new("iptables")
                .args(["-w", "-D"])
                .args(rule)
                .status();
        }
    }
}

/// A file taking all but `leave` bytes of the volume `dir` is on (removed
/// on drop, also when the test fails).
struct Ballast {
    path: std::path::PathBuf,
}

impl Ballast {
    fn leaving(dir: &std::path::Path, leave: u64) -> Self {
        let fs = rustix::fs::statvfs(dir).unwrap();
        let size = (fs.f_bavail * fs.f_frsize).saturating_sub(leave);
        let path = dir.join("chaos-ballast");
        let file = std::fs::File::create(&path).unwrap();
        rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, size).unwrap();
        Self { path }
    }
}

impl Drop for Ballast {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Remove everything in `dir` (a volume's mount point stays).
fn empty(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_faults_lose_nothing_acknowledged() {
    let seed = env_number("IGGY_FAULT_SEED", 1);
    let rounds = env_number("IGGY_FAULT_ROUNDS", 4);
    let mut rng = StdRng::seed_from_u64(seed);
    let reserve = format!("{RESERVE_MIB} MiB");
    let (mut cluster, _) = replicated_topic(
        3,
        &[
            ("IGGY_CLUSTER_WRITE_TIMEOUT", "2s"),
            ("CLUSTER_VOLUME_MIB", VOLUME_MIB),
            ("IGGY_SYSTEM_RESERVED_SPACE", &reserve),
        ],
    )
    .await;
    let producer = Producer::start(&cluster);
    let mut done = Vec::new();
    for round in 0..rounds {
        let status = wait_for_partition(&cluster, 3).await;
        producer.more_acks(50).await;
        let leader = status.leader.unwrap();
        let followers: Vec<u32> = (0..3).filter(|n| *n != leader).collect();
        let follower = followers[rng.random_range(0..followers.len())];
        let fault = FAULTS[rng.random_range(0..FAULTS.len())];
        let hold = Duration::from_millis(rng.random_range(200..2000));
        eprintln!(
            "seed {seed} round {round}: {fault:?} (leader {leader}, follower {follower}, {hold:?})"
        );
        match fault {
            Fault::KillLeader | Fault::KillFollower => {
                let victim = if matches!(fault, Fault::KillLeader) {
                    leader
                } else {
                    follower
                };
                cluster.kill(victim);
                tokio::time::sleep(hold).await;
                cluster.start(victim);
            }
            Fault::WipeFollower => {
                cluster.kill(follower);
                empty(&cluster.node(follower).data);
                cluster.start(follower);
            }
            Fault::Isolate => {
                let victim = if rng.random_bool(0.5) {
                    leader
                } else {
                    follower
                };
                let isolation = cluster.isolate(victim);
                tokio::time::sleep(hold).await;
                drop(isolation);
            }
            Fault::Pause => {
                let victim = if rng.random_bool(0.5) {
                    leader
                } else {
                    follower
                };
                let pid = cluster.node(victim).pid.to_string();
                run("kill", &["-STOP", &pid]);
                tokio::time::sleep(hold).await;
                run("kill", &["-CONT", &pid]);
            }
            Fault::SlowNetwork => {
                let slow = SlowLossyNetwork::start(&cluster);
                producer.more_acks(20).await;
                tokio::time::sleep(hold).await;
                drop(slow);
            }
            Fault::FillDisk => {
                let victim = if rng.random_bool(0.5) {
                    leader
                } else {
                    follower
                };
                let mib = 1 << 20;
                let leave = rng.random_range(RESERVE_MIB * mib / 2..2 * RESERVE_MIB * mib);
                eprintln!("  broker {victim} left with {} KiB free", leave >> 10);
                let ballast = Ballast::leaving(&cluster.node(victim).data, leave);
                if victim == leader {
                    wait_until(&cluster, None, "handed to another leader", |p| {
                        p.leader.is_some_and(|l| l != victim)
                    })
                    .await;
                }
                producer.more_acks(20).await;
                tokio::time::sleep(hold).await;
                drop(ballast);
            }
        }
        done.push(fault);
    }
    wait_for_partition(&cluster, 3).await;
    producer.more_acks(50).await;
    let outcomes = producer.finish().await;

    let log = read_through_every_broker(&cluster).await;
    let ids: Vec<u128> = log.iter().map(|(_, id)| *id).collect();
    let acknowledged = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Acked(..)))
        .count();
    eprintln!(
        "seed {seed}: {rounds} rounds {done:?}; {} sends, {acknowledged} acknowledged, {} stored",
        outcomes.len(),
        ids.len()
    );
    assert_every_acknowledged_message_once_in_order(&outcomes, &ids);
}
