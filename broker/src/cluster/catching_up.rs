//! A broker back with an empty metadata log does not vote until it has
//! caught up.
//!
//! Raft counts on every voter remembering what it acknowledged and whom it
//! voted for. A broker whose volume was lost (or replaced) remembers
//! neither, yet it is still a voter of its cluster. Were it to vote, it
//! could elect a broker that missed entries it had itself helped commit:
//! with the broker that led them wiped and another restarted on an older
//! log, the two form a majority and the cluster's acknowledged metadata is
//! gone (found by `make chaos`, seed 24: the third broker, which still had
//! the entries, then stopped on the conflict).
//!
//! So a broker of a cluster that starts with an empty metadata log marks
//! itself on its volume, before its peers can reach it, and answers every
//! vote request with a refusal until it has caught up — until its own
//! registration, proposed after it started, has committed and been applied
//! here: the log it then holds has every entry committed before, since the
//! leader that committed the registration has them all. The mark survives
//! a restart in the meantime. A founder that forms a new cluster votes at
//! once (`cluster::founding`). Elections go on among the brokers that
//! remember; while the wiped ones and those down make a majority, none is
//! elected until one that remembers is back, instead of losing
//! acknowledged metadata.

use crate::broker::Broker;
use crate::cluster::raft::Raft;
use openraft::raft::VoteResponse;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

fn marker(metadata_dir: &Path) -> PathBuf {
    metadata_dir.join("catching-up")
}

/// At start, before peers can reach this broker: with an empty metadata
/// log (`pristine`), mark it catching up, durably. Whether it is catching
/// up (marked now or by an earlier start).
pub fn begin(metadata_dir: &Path, pristine: bool) -> std::io::Result<bool> {
    let marker = marker(metadata_dir);
    if pristine && !marker.exists() {
        crate::storage::fs::write_atomic(
            &marker,
            b"started with an empty metadata log: not voting until caught up\n",
            true,
        )?;
    }
    Ok(marker.exists())
}

/// Caught up (or founding a new cluster): vote again from now on.
pub fn finish(broker: &Broker) {
    if !broker.catching_up.swap(false, Ordering::AcqRel) {
        return;
    }
    let dir = broker.metadata_dir();
    let marker = marker(&dir);
    if let Err(e) = std::fs::remove_file(&marker).and_then(|()| crate::storage::fs::fsync_dir(&dir))
    {
        // Until it is gone, a restart abstains again until caught up: safe.
        tracing::warn!("could not clear {}: {e}", marker.display());
    }
    tracing::info!(
        node = broker.node_id(),
        "caught up with the metadata log: voting in elections"
    );
}

/// The answer to a vote request while catching up: not granted, with the
/// vote this broker holds (its log is not offered as evidence: it is not
/// complete).
pub fn abstain(raft: &Raft) -> VoteResponse<u64> {
    let vote = raft.metrics().borrow().vote;
    VoteResponse::new(vote, None, false)
}
