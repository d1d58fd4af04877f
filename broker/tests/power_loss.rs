//! Power loss: the broker's data directory is on a filesystem that keeps
//! unsynced writes in memory (`powercut-fs`), the broker is `kill -9`ed
//! under load and then the power is cut — everything not fsynced is gone,
//! and writes in flight may be torn. Unlike `kill -9` alone (the page
//! cache survives it), this fails when an fsync is missing: with
//! `fsync = never` the same run loses acknowledged messages.

mod common;

use common::{
    TestBroker, create_stream_and_topic, poll_all, produce_until_stopped, send, wait_for,
};
use iggy::prelude::*;
use powercut_fs::{Cut, PowerCutFs};
use std::collections::HashSet;
use std::time::Duration;

/// A broker whose data directory is on a power-cut filesystem. Fields drop
/// in order: the broker stops before the filesystem is unmounted, which
/// happens before its mount point is removed.
struct OnPowerCutFs {
    broker: TestBroker,
    fs: PowerCutFs,
    _mountpoint: tempfile::TempDir,
}

impl OnPowerCutFs {
    fn start(fsync: &str) -> Self {
        Self::start_with(&[("IGGY_TOPIC_FSYNC", fsync)])
    }

    fn start_with(env: &[(&str, &str)]) -> Self {
        let mountpoint = tempfile::tempdir().unwrap();
        let fs = PowerCutFs::mount(mountpoint.path()).expect("mount powercut-fs (root, /dev/fuse)");
        let broker = TestBroker::start_on(&mountpoint.path().join("data"), env);
        Self {
            broker,
            fs,
            _mountpoint: mountpoint,
        }
    }

    /// Cut the power under the (stopped) broker and start it again.
    fn cut_and_restart(&mut self, cut: Cut) -> powercut_fs::CutReport {
        let report = self.fs.power_cut(cut).unwrap();
        self.broker.start_again();
        report
    }
}

impl Drop for OnPowerCutFs {
    fn drop(&mut self) {
        // A broker blocked in a held fsync cannot exit (not even on kill -9)
        // until the fsync is answered: release before the fields drop.
        self.fs.hold_syncs(false);
    }
}

/// Ids of acknowledged messages missing from partition 0 of `stream`/t;
/// asserts the partition's offsets are dense.
async fn missing(client: &IggyClient, stream: &str, acked: &[u128]) -> usize {
    let stored = poll_all(client, stream, "t", 0).await;
    assert!(
        stored.iter().enumerate().all(|(i, (o, _))| *o == i as u64),
        "offsets are dense"
    );
    let stored: HashSet<u128> = stored.into_iter().map(|(_, id)| id).collect();
    acked.iter().filter(|id| !stored.contains(id)).count()
}

fn consumer() -> Consumer {
    Consumer::new(Identifier::named("reader").unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fsync_always_everything_acknowledged_survives_power_cuts() {
    const CUTS: u64 = 4;
    let mut node = OnPowerCutFs::start("always");
    let mut acked: Vec<u128> = Vec::new();
    let mut stored_offset = None;
    let mut unsynced_at_cuts = 0;
    for round in 0..CUTS {
        let client = node.broker.client().await;
        // Metadata changes of every kind, each acknowledged before the cut.
        create_stream_and_topic(&client, &format!("s{round}"), "t", 1).await;
        client
            .create_user(
                &format!("user{round}"),
                &format!("secret-{round}"),
                UserStatus::Active,
                None,
            )
            .await
            .unwrap();
        if round > 0 {
            let offset = acked.len() as u64 / 2;
            client
                .store_consumer_offset(&consumer(), &id("s0"), &id("t"), Some(0), offset)
                .await
                .unwrap();
            stored_offset = Some(offset);
        }
        // Messages from two producers into one partition, so sends also
        // wait for another's fsync and find their batches covered by it
        // (group commit), cut off mid-stream.
        let round_ids = u128::from(round) << 36;
        let (first, acked_first) = produce_until_stopped(client, "s0", round_ids + 1, 1_000).await;
        let second_client = node.broker.client().await;
        let (second, acked_second) =
            produce_until_stopped(second_client, "s0", round_ids + (1 << 35), 1_000).await;
        node.broker.kill9();
        first.await.unwrap();
        second.await.unwrap();
        acked.extend(acked_first.lock().unwrap().iter());
        acked.extend(acked_second.lock().unwrap().iter());
        unsynced_at_cuts += node.fs.unsynced_bytes();
        let report = node.cut_and_restart(Cut::Torn { seed: round });
        eprintln!("cut {round}: {report:?}");

        let client = node.broker.client().await;
        assert_eq!(
            missing(&client, "s0", &acked).await,
            0,
            "acknowledged messages lost at cut {round}"
        );
        for earlier in 0..=round {
            assert!(
                common::topic(&client, &format!("s{earlier}"), "t")
                    .await
                    .is_some(),
                "stream s{earlier} and its topic survive cut {round}"
            );
            let user = node
                .broker
                .anonymous_client()
                .await
                .login_user(&format!("user{earlier}"), &format!("secret-{earlier}"))
                .await;
            assert!(user.is_ok(), "user{earlier} logs in after cut {round}");
        }
        if let Some(offset) = stored_offset {
            let stored = client
                .get_consumer_offset(&consumer(), &id("s0"), &id("t"), Some(0))
                .await
                .unwrap()
                .expect("the stored offset survives");
            assert_eq!(stored.stored_offset, offset);
        }
    }
    assert!(
        unsynced_at_cuts > 0,
        "the cuts threw something away (else this test could not fail)"
    );
    // The partition takes writes again after the last cut.
    let client = node.broker.client().await;
    let before = poll_all(&client, "s0", "t", 0).await.len();
    common::send(
        &client,
        "s0",
        "t",
        &Partitioning::partition_id(0),
        1 << 40,
        10,
    )
    .await;
    assert_eq!(poll_all(&client, "s0", "t", 0).await.len(), before + 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fsync_never_a_power_cut_loses_acknowledged_messages() {
    let mut node = OnPowerCutFs::start("never");
    let client = node.broker.client().await;
    create_stream_and_topic(&client, "s", "t", 1).await;
    let (producer, acked) = produce_until_stopped(client, "s", 1, 2_000).await;
    node.broker.kill9();
    producer.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    let report = node.cut_and_restart(Cut::LoseUnsynced);
    assert!(report.bytes_lost > 0, "{report:?}");

    let client = node.broker.client().await;
    assert!(
        common::topic(&client, "s", "t").await.is_some(),
        "metadata is fsynced whatever the topic's policy"
    );
    let lost = missing(&client, "s", &acked).await;
    assert!(
        lost > 0,
        "fsync = never loses what was only in the page cache ({} acknowledged)",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fsync_never_a_clean_shutdown_still_makes_everything_durable() {
    let mut node = OnPowerCutFs::start("never");
    let client = node.broker.client().await;
    create_stream_and_topic(&client, "s", "t", 1).await;
    let (producer, acked) = produce_until_stopped(client, "s", 1, 2_000).await;
    let (status, _) = tokio::task::block_in_place(|| node.broker.terminate());
    assert!(status.success(), "exit status {status}");
    producer.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    node.cut_and_restart(Cut::LoseUnsynced);

    let client = node.broker.client().await;
    assert_eq!(
        missing(&client, "s", &acked).await,
        0,
        "the shutdown flush synced every acknowledged message"
    );
}

/// Under fsync `never` a full segment is sealed (fsynced) on a thread of
/// its own:
/// - with every file fsync held, sends go on across a segment roll (the
///   producer that filled a segment used to wait for its fsync, about a
///   second for 1 GiB);
/// - a power cut while that seal is still under way loses the sealed
///   segment's unsynced bytes while the next segment exists: recovery drops
///   what follows the torn segment, so the offsets stay dense and the log
///   takes writes right after what it kept;
/// - power cuts that tear every file at random, taken while a producer
///   fills tiny segments and their seals run, each leave a dense log too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fsync_never_segments_are_sealed_in_the_background() {
    let mut node = OnPowerCutFs::start_with(&[
        ("IGGY_TOPIC_FSYNC", "never"),
        ("IGGY_TOPIC_SEGMENT_SIZE", "4 KiB"),
    ]);
    let client = node.broker.client().await;
    create_stream_and_topic(&client, "s", "t", 1).await;
    node.fs.hold_syncs(true);
    // One batch of 100 (~10 KB) fills a 4 KiB segment: the second send
    // rolls, sealing the first segment. (A third would wait: one seal at a
    // time.)
    for first_id in [1, 101] {
        tokio::time::timeout(
            Duration::from_secs(5),
            send(
                &client,
                "s",
                "t",
                &Partitioning::partition_id(0),
                first_id,
                100,
            ),
        )
        .await
        .expect("a send waited for a segment's fsync");
    }
    wait_for(
        "the seal's fsync to be held",
        Duration::from_secs(10),
        || node.fs.syncs_held() > 0,
    )
    .await;

    // The power goes with the seal's fsync unanswered: the broker dies in
    // it, and it never takes effect.
    // SAFETY: kill(2) on the broker's pid; no memory is involved.
    assert_eq!(
        unsafe { libc::kill(node.broker.pid() as i32, libc::SIGKILL) },
        0
    );
    node.fs.fail_held_syncs();
    node.broker.kill9();
    let report = node.cut_and_restart(Cut::LoseUnsynced);
    eprintln!("cut during the seal: {report:?}");
    let log = node.broker.log();
    assert!(
        log.contains("dropped the segments after a sealed segment torn"),
        "recovery found the sealed segment short of the next one; broker log:\n{log}"
    );
    let client = node.broker.client().await;
    let mut first_id = 1_000;
    assert_takes_writes_after_what_it_kept(&client, first_id, "the cut during the seal").await;

    let mut lost = 0;
    for round in 0..4u64 {
        first_id += 1_000_000;
        let producing = node.broker.client().await;
        let (producer, acked) = produce_until_stopped(producing, "s", first_id, 1_000).await;
        node.broker.kill9();
        producer.await.unwrap();
        let acked = acked.lock().unwrap().clone();
        let report = node.cut_and_restart(Cut::Torn { seed: round });
        eprintln!("cut {round}: {report:?}");
        let reconnected = node.broker.client().await;
        lost += missing(&reconnected, "s", &acked).await;
        assert_takes_writes_after_what_it_kept(&reconnected, first_id + 900_000, "a torn cut")
            .await;
    }
    let gaps = node
        .broker
        .log()
        .matches("dropped the segments after a sealed segment torn")
        .count();
    eprintln!(
        "acknowledged messages lost over the torn cuts (fsync never): {lost}; \
         recoveries that found a torn sealed segment, the first cut's included: {gaps}"
    );
}

/// Partition 0 of s/t has dense offsets, and 10 more messages (ids from
/// `first_id`) land right after what it holds.
async fn assert_takes_writes_after_what_it_kept(client: &IggyClient, first_id: u128, after: &str) {
    missing(client, "s", &[]).await; // asserts the offsets are dense
    let kept = poll_all(client, "s", "t", 0).await.len();
    send(
        client,
        "s",
        "t",
        &Partitioning::partition_id(0),
        first_id,
        10,
    )
    .await;
    missing(client, "s", &[]).await;
    assert_eq!(
        poll_all(client, "s", "t", 0).await.len(),
        kept + 10,
        "the log takes writes right after what it kept ({after})"
    );
}

/// A stalled disk under fsync `always`: a send waits for its fsync, but a
/// poll of the same partition does not — the fsync runs outside the
/// partition's lock — and it sees only what is durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_is_answered_while_a_sends_fsync_is_stalled() {
    let node = OnPowerCutFs::start("always");
    let client = node.broker.client().await;
    create_stream_and_topic(&client, "slow", "t", 1).await;
    send(&client, "slow", "t", &Partitioning::partition_id(0), 1, 10).await;

    node.fs.hold_syncs(true);
    let sender = node.broker.client().await;
    let sending = tokio::spawn(async move {
        send(&sender, "slow", "t", &Partitioning::partition_id(0), 11, 10).await;
    });
    wait_for(
        "the send's fsync to be held",
        Duration::from_secs(10),
        || node.fs.syncs_held() > 0,
    )
    .await;

    // Bounded only so that a poll stuck behind the fsync fails the test
    // instead of hanging it (the fsync is held until released below).
    let polled = tokio::time::timeout(Duration::from_secs(10), poll_all(&client, "slow", "t", 0))
        .await
        .expect("the poll waited for the held fsync");
    let ids: Vec<u128> = polled.into_iter().map(|(_, id)| id).collect();
    assert_eq!(
        ids,
        (1..=10).collect::<Vec<u128>>(),
        "only durable messages"
    );
    assert!(
        node.fs.syncs_held() > 0 && !sending.is_finished(),
        "the poll was answered only after the fsync"
    );

    node.fs.hold_syncs(false);
    sending.await.unwrap();
    assert_eq!(poll_all(&client, "slow", "t", 0).await.len(), 20);
}

/// A stalled metadata log (its fsyncs held): auto-commit polls are
/// answered while their offsets' commit is held, each going on from the
/// offset the one before answered; an offset request reads that offset at
/// once; an explicit store waits for the held commit and lands after it,
/// so a late auto-commit does not overwrite it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_commit_polls_do_not_wait_for_their_offsets_to_commit() {
    let node = OnPowerCutFs::start("always");
    let client = node.broker.client().await;
    create_stream_and_topic(&client, "auto", "t", 1).await;
    send(&client, "auto", "t", &Partitioning::partition_id(0), 1, 20).await;
    node.fs.hold_syncs(true);
    // Bounded below the metadata write timeout (5 s), after which a commit
    // stuck behind the held fsync gives up.
    let promptly = Duration::from_secs(2);
    let first = tokio::time::timeout(promptly, poll_next(&client, 10))
        .await
        .expect("the poll waited for its offset to commit");
    assert_eq!(first, 10);
    wait_for(
        "the offset's commit to be held",
        Duration::from_secs(10),
        || node.fs.syncs_held() > 0,
    )
    .await;
    let second = tokio::time::timeout(promptly, poll_next(&client, 100))
        .await
        .expect("the next poll waited for the offset before it to commit");
    assert_eq!(second, 10, "the next poll goes on where the first ended");
    let reader = node.broker.client().await;
    let asked = tokio::time::timeout(
        promptly,
        reader.get_consumer_offset(&consumer(), &id("auto"), &id("t"), Some(0)),
    )
    .await
    .expect("the offset request waited for the commit")
    .unwrap()
    .map(|o| o.stored_offset);
    assert_eq!(asked, Some(19), "the offset the last poll answered");

    let mut storing = tokio::spawn(async move {
        reader
            .store_consumer_offset(&consumer(), &id("auto"), &id("t"), Some(0), 4)
            .await
    });
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut storing)
            .await
            .is_err(),
        "the store went through with the metadata log stalled"
    );
    node.fs.hold_syncs(false);
    storing.await.unwrap().unwrap();
    assert_eq!(
        poll_next(&client, 100).await,
        15,
        "the stored offset 4 stands (not the auto-commit of 19): 5..=19 again"
    );
}

/// Poll up to `count` messages of partition 0 of auto/t for consumer
/// "reader", `next` with auto-commit; how many came.
async fn poll_next(client: &IggyClient, count: u32) -> usize {
    client
        .poll_messages(
            &id("auto"),
            &id("t"),
            Some(0),
            &consumer(),
            &PollingStrategy::next(),
            count,
            true,
        )
        .await
        .unwrap()
        .messages
        .len()
}

fn id(name: &str) -> Identifier {
    Identifier::named(name).unwrap()
}
