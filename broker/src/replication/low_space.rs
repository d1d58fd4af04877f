//! A partition leader whose data directory runs low on space — under twice
//! its reserve, or failing (`DataDirectory::is_low`) — hands each partition
//! it leads to an in-sync replica with room, before its own sends would be
//! refused: producers go on writing at that replica, and this broker
//! follows it, copying until its reserve and then falling out of the
//! in-sync set like any full follower (it catches up once it has room
//! again). Elections and rebalances pass over brokers running low (each
//! broker says so in its pings), so leadership does not come back while
//! the disk stays low.
//!
//! A partition with no in-sync replica with room (one replica only, or
//! every one low) stays here: sends are refused with
//! `CannotSaveMessagesToSegment` once the reserve is reached, reads go on.
//! Like any change of leader, a send in flight at the handover may fail
//! with "may or may not be kept".

use super::controller::{Election, elect, has_room, may_lead};
use crate::broker::Broker;
use crate::metadata::MetadataState;
use crate::storage::space::REFRESH_EVERY;
use std::sync::Arc;

/// The handovers broker `me` makes while it runs low: each partition it
/// leads goes to its first in-sync replica that `may_take` it (alive,
/// registered, with room), in the next epoch; the in-sync set stays as it
/// is (this broker still has every acknowledged message).
pub fn handovers(state: &MetadataState, me: u32, may_take: impl Fn(u32) -> bool) -> Vec<Election> {
    state
        .partitions()
        .filter(|(_, _, p)| p.leader == Some(me))
        .filter_map(|(key, _, p)| {
            let successor = p
                .replicas
                .iter()
                .copied()
                .find(|r| *r != me && p.in_sync.contains(r) && may_take(*r))?;
            Some(Election {
                partition: key,
                epoch: p.leader_epoch,
                leader: successor,
                in_sync: p.in_sync.clone(),
            })
        })
        .collect()
}

/// Hand partitions on whenever this broker runs low (runs until dropped):
/// at once when a write takes it below the mark, and at every refresh of
/// the free space.
pub async fn run(broker: Arc<Broker>) {
    let Some(peers) = broker.peers.clone() else {
        return;
    };
    let me = broker.node_id();
    loop {
        tokio::select! {
            () = broker.space.ran_low() => {}
            () = tokio::time::sleep(REFRESH_EVERY) => {}
        }
        if !broker.space.is_low() {
            continue;
        }
        let needed = broker.metadata.read(|m| {
            handovers(m, me, |node| {
                may_lead(m, me, &peers, node) && has_room(&broker, &peers, node)
            })
        });
        for handover in needed {
            tracing::warn!(
                partition = ?handover.partition,
                epoch = handover.epoch,
                leader = handover.leader,
                available = broker.space.available(),
                reserve = broker.space.reserve(),
                "handing the partition's leadership to a replica with room: this broker's data directory runs low"
            );
            elect(&broker, handover, "low_disk_space").await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::PartitionMeta;

    #[test]
    fn a_broker_running_low_hands_what_it_leads_to_an_in_sync_replica_with_room() {
        let mut state = MetadataState::default();
        state.insert_test_topic(
            0,
            0,
            vec![
                PartitionMeta::for_test(0, &[0, 1, 2], 0, &[0, 1, 2]),
                // Broker 1 is behind: 2 takes it.
                PartitionMeta::for_test(1, &[0, 1, 2], 0, &[0, 2]),
                // Led by another broker.
                PartitionMeta::for_test(2, &[1, 0, 2], 1, &[1, 0, 2]),
                // Nobody else in sync: it stays.
                PartitionMeta::for_test(3, &[0, 1], 0, &[0]),
                // One replica: it stays.
                PartitionMeta::for_test(4, &[0], 0, &[0]),
            ],
        );
        let all = handovers(&state, 0, |_| true);
        let made: Vec<_> = all.iter().map(|h| (h.partition.2, h.leader)).collect();
        assert_eq!(made, vec![(0, 1), (1, 2)]);
        assert_eq!(all[0].in_sync, vec![0, 1, 2], "the in-sync set stays");
        assert_eq!(all[0].epoch, 4);
        // Broker 1 runs low too: only 2 takes anything.
        let made: Vec<_> = handovers(&state, 0, |node| node != 1)
            .iter()
            .map(|h| (h.partition.2, h.leader))
            .collect();
        assert_eq!(made, vec![(0, 2), (1, 2)]);
        assert!(handovers(&state, 0, |_| false).is_empty());
    }
}
