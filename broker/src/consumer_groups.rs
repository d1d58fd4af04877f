//! Consumer-group membership and partition assignment.
//!
//! Groups themselves are metadata (created and deleted through the WAL);
//! their members are connected sessions, so membership is runtime state and
//! a member that disconnects leaves its groups. Partitions are spread over
//! the members round-robin in member order; every membership change bumps
//! the group's generation so clients know to re-sync.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// (stream id, topic id, group id)
pub type GroupKey = (u32, u32, u32);

#[derive(Debug, Default)]
struct Membership {
    members: BTreeSet<u32>,
    generation: u64,
}

#[derive(Debug, Default)]
pub struct Groups {
    inner: Mutex<HashMap<GroupKey, Membership>>,
}

/// Partitions `0..partitions` spread round-robin over `members` (sorted):
/// member `i` gets every partition `p` with `p % n == i`.
pub fn assign(members: &[u32], partitions: u32) -> Vec<(u32, Vec<u32>)> {
    let n = members.len() as u32;
    members
        .iter()
        .enumerate()
        .map(|(i, member)| {
            let owned = (0..partitions)
                .filter(|p| n > 0 && p % n == i as u32)
                .collect();
            (*member, owned)
        })
        .collect()
}

impl Groups {
    pub fn join(&self, key: GroupKey, client: u32) {
        let mut inner = self.inner.lock().expect("groups lock");
        let group = inner.entry(key).or_default();
        if group.members.insert(client) {
            group.generation += 1;
        }
    }

    /// Returns false when `client` was not a member.
    pub fn leave(&self, key: GroupKey, client: u32) -> bool {
        let mut inner = self.inner.lock().expect("groups lock");
        let Some(group) = inner.get_mut(&key) else {
            return false;
        };
        let removed = group.members.remove(&client);
        if removed {
            group.generation += 1;
        }
        removed
    }

    /// A disconnected client leaves every group it was in.
    pub fn remove_client(&self, client: u32) {
        let mut inner = self.inner.lock().expect("groups lock");
        for group in inner.values_mut() {
            if group.members.remove(&client) {
                group.generation += 1;
            }
        }
    }

    pub fn remove_group(&self, key: GroupKey) {
        self.inner.lock().expect("groups lock").remove(&key);
    }

    /// Every member with its partitions.
    pub fn assignment(&self, key: GroupKey, partitions: u32) -> Vec<(u32, Vec<u32>)> {
        let inner = self.inner.lock().expect("groups lock");
        let members: Vec<u32> = inner
            .get(&key)
            .map(|g| g.members.iter().copied().collect())
            .unwrap_or_default();
        assign(&members, partitions)
    }

    /// `(generation, partitions)` of `client` in the group, `None` if it is
    /// not a member.
    pub fn sync(&self, key: GroupKey, client: u32, partitions: u32) -> Option<(u64, Vec<u32>)> {
        let generation = {
            let inner = self.inner.lock().expect("groups lock");
            let group = inner.get(&key)?;
            if !group.members.contains(&client) {
                return None;
            }
            group.generation
        };
        self.assignment(key, partitions)
            .into_iter()
            .find(|(member, _)| *member == client)
            .map(|(_, owned)| (generation, owned))
    }

    /// The groups `client` is a member of.
    pub fn groups_of(&self, client: u32) -> Vec<GroupKey> {
        let inner = self.inner.lock().expect("groups lock");
        let mut keys: Vec<GroupKey> = inner
            .iter()
            .filter(|(_, g)| g.members.contains(&client))
            .map(|(k, _)| *k)
            .collect();
        keys.sort_unstable();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_has_exactly_one_member_and_load_is_even() {
        let assignment = assign(&[3, 7, 9], 10);
        let mut all: Vec<u32> = assignment.iter().flat_map(|(_, p)| p.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        let sizes: Vec<usize> = assignment.iter().map(|(_, p)| p.len()).collect();
        assert_eq!(sizes, vec![4, 3, 3]);
        assert!(assign(&[], 5).is_empty());
    }

    #[test]
    fn membership_changes_bump_the_generation_and_move_partitions() {
        let groups = Groups::default();
        let key = (0, 0, 0);
        groups.join(key, 1);
        groups.join(key, 2);
        let (generation, owned) = groups.sync(key, 1, 4).unwrap();
        assert_eq!(owned, vec![0, 2]);
        assert!(groups.sync(key, 3, 4).is_none());
        groups.remove_client(2);
        let (after, owned) = groups.sync(key, 1, 4).unwrap();
        assert!(after > generation);
        assert_eq!(owned, vec![0, 1, 2, 3]);
        assert!(!groups.leave(key, 2));
        assert_eq!(groups.groups_of(1), vec![key]);
    }
}
