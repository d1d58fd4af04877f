//! Sizes and message counts of partitions, wherever they are held: what
//! GetStream, GetTopic and GetStats report. Partitions held here are read
//! directly; the others are asked of the brokers leading them, all at once
//! and briefly — a broker that does not answer in time has its partitions
//! reported empty rather than delaying the reply.

use super::Broker;
use crate::cluster::transport::{Lane, Request, Response};
use crate::metadata::PartitionKey;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// How long a reply waits for other brokers' partition figures.
const STATS_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStats {
    pub size_bytes: u64,
    pub messages: u64,
    pub segments: u32,
    /// Offset of the last message (0 when empty).
    pub current_offset: u64,
}

pub type Stats = HashMap<PartitionKey, PartitionStats>;

/// The sum of `stats` over the partitions `filter` selects.
pub fn total(stats: &Stats, filter: impl Fn(&PartitionKey) -> bool) -> PartitionStats {
    stats
        .iter()
        .filter(|(key, _)| filter(key))
        .fold(PartitionStats::default(), |sum, (_, s)| PartitionStats {
            size_bytes: sum.size_bytes + s.size_bytes,
            messages: sum.messages + s.messages,
            segments: sum.segments + s.segments,
            current_offset: 0,
        })
}

impl Broker {
    /// Figures of the partitions held here among `keys`.
    pub fn local_stats(&self, keys: &[PartitionKey]) -> Vec<(PartitionKey, PartitionStats)> {
        keys.iter()
            .filter_map(|key| {
                let partition = self.partitions.get(*key)?;
                let log = partition
                    .log
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                Some((
                    *key,
                    PartitionStats {
                        size_bytes: log.size_bytes(),
                        messages: log.messages_count(),
                        segments: log.segments_count() as u32,
                        current_offset: log.next_offset().saturating_sub(1),
                    },
                ))
            })
            .collect()
    }

    /// Figures of every partition `filter` selects, from the brokers
    /// leading them.
    pub async fn partition_stats(&self, filter: impl Fn(&PartitionKey) -> bool) -> Stats {
        let me = self.node_id();
        let mut by_leader: BTreeMap<u32, Vec<PartitionKey>> = BTreeMap::new();
        self.metadata.read(|m| {
            for (key, _, partition) in m.partitions() {
                if filter(&key) {
                    by_leader
                        .entry(partition.leader().unwrap_or(me))
                        .or_default()
                        .push(key);
                }
            }
        });
        let mut stats: Stats = by_leader
            .remove(&me)
            .map(|keys| self.local_stats(&keys).into_iter().collect())
            .unwrap_or_default();
        let Some(peers) = &self.peers else {
            return stats;
        };
        let asked = by_leader.into_iter().map(|(leader, keys)| async move {
            let request = Request::PartitionStats { keys };
            match peers
                .call(leader, Lane::Control, &request, Bytes::new(), STATS_TIMEOUT)
                .await
            {
                Ok((Response::PartitionStats { stats }, _)) => stats,
                Ok(_) | Err(_) => Vec::new(),
            }
        });
        for answered in futures::future::join_all(asked).await {
            stats.extend(answered);
        }
        stats
    }
}
