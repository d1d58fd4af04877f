//! Rolling upgrades with a real broker of an older build: a cluster with
//! brokers of two builds keeps one metadata log that every broker reads.
//!
//! Not part of `make test`: it needs a second build of the broker.
//! `make upgrade-test` builds the one before metadata versions (or
//! `OLD_REF=<git ref>`) and runs it; without `IGGY_OLD_BROKER_BIN` it
//! fails rather than passes.

mod common;

use common::cluster::TestCluster;
use common::upgrade::*;

/// The older build does not register a metadata version: with one broker
/// on it the cluster stays at 0 and writes one offset command per offset,
/// which that broker replicates. Once it runs this build too, offsets go
/// together, to it as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a broker of an older build: make upgrade-test"]
async fn a_half_upgraded_cluster_writes_what_the_older_broker_reads() {
    let old = std::env::var("IGGY_OLD_BROKER_BIN")
        .expect("IGGY_OLD_BROKER_BIN: the older build's broker (make upgrade-test)");
    // Founded as the build before would have: no metadata command newer
    // than version 1 in the log (`NameCluster` is 2).
    let mut cluster = TestCluster::up_with(3, &[("IGGY_CLUSTER_METADATA_VERSION", "1")]);
    // Broker 2 as it ran before the roll reached it.
    cluster.stop(2);
    cluster.start_binary(2, &old);
    wait_for_metadata_version(&cluster, 0).await;
    let client = offsets_go_one_each(&cluster).await;

    cluster.stop(2);
    cluster.start(2);
    wait_for_metadata_version(&cluster, 1).await;
    offsets_go_together(&cluster, &client).await;

    // The roll done and the pin lifted, the cluster gets its uid.
    roll_to_newest(&mut cluster).await;
    wait_for_uid(&cluster, 2).await;
}
