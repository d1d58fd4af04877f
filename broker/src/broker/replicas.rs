//! How many replicas a topic's partitions get and how many must be in
//! sync, from the cluster's settings.

use super::Broker;
use crate::error::{Error, Result};
use std::time::Duration;

impl Broker {
    /// The number of brokers partitions can be placed on: the metadata
    /// group's voters.
    pub fn brokers_count(&self) -> usize {
        self.brokers().len().max(1)
    }

    /// The brokers partitions can be placed on, by id.
    pub fn brokers(&self) -> Vec<u32> {
        if self.cluster.is_none() {
            return vec![0];
        }
        crate::cluster::membership::voters(self)
    }

    /// The replication factor of a new topic: `asked` (0 or `None`: the
    /// cluster's default). More replicas than brokers is refused.
    pub fn replication_factor(&self, asked: Option<u8>) -> Result<u8> {
        let default = self
            .cluster
            .as_ref()
            .map_or(1, |c| c.default_replication_factor);
        let factor = asked.filter(|f| *f > 0).unwrap_or(default);
        let brokers = self.brokers_count();
        if factor as usize > brokers {
            return Err(Error::InvalidReplicaSet(format!(
                "replication factor {factor} exceeds the number of brokers ({brokers})"
            )));
        }
        Ok(factor)
    }

    /// Replicas that must be in sync for a topic with `factor` replicas to
    /// accept sends: the configured minimum, or a majority.
    pub fn min_in_sync(&self, factor: u8) -> u8 {
        match self.cluster.as_ref().map_or(0, |c| c.min_in_sync_replicas) {
            0 => factor / 2 + 1,
            configured => configured.min(factor),
        }
    }

    /// How long a follower may lag before it leaves the in-sync set.
    pub fn replica_max_lag(&self) -> Duration {
        self.cluster
            .as_ref()
            .map_or(Duration::from_secs(1), |c| c.replica_max_lag)
    }
}

impl Broker {
    /// What keeps this broker from being ready for clients (`None`: ready):
    /// its data directory does not take writes, it is the broker founded
    /// apart from its cluster (`cluster::uid`), it has not joined the
    /// metadata group or lost contact with it, or a
    /// partition replica it holds is out of sync while its leader is up
    /// (it is still copying the log).
    pub fn not_ready_because(&self) -> Option<String> {
        if let Some(failure) = self.space.failure() {
            return Some(failure);
        }
        if let Some(why) = crate::cluster::uid::founded_apart(self) {
            return Some(why);
        }
        if !self.is_ready() {
            return Some("not registered with, or not in contact with, the metadata group".into());
        }
        let me = self.node_id();
        let leader_up =
            |leader: u32| leader == me || self.peers.as_ref().is_some_and(|p| !p.is_down(leader));
        self.metadata.read(|m| {
            m.partitions()
                .find(|(_, _, p)| {
                    p.replicas.len() > 1
                        && p.replicas.contains(&me)
                        && !p.in_sync.contains(&me)
                        && p.leader.is_some_and(leader_up)
                })
                .map(|((s, t, p), _, _)| {
                    format!("catching up: partition {p} of topic {t} in stream {s}")
                })
        })
    }
}
