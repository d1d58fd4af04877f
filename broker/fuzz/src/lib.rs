//! What each fuzz target does with its input, as plain functions: the
//! `fuzz_targets/` binaries call them under libFuzzer, and the tests below
//! replay every committed corpus and regression input on stable Rust.
//!
//! A target passes an input when nothing panics (no out-of-bounds slice, no
//! overflow, no `expect` on outside data) and, where a decoder promises
//! more, the promise holds (recovery is idempotent, a decoded batch
//! re-validates).

use bytes::BytesMut;
use iggy_binary_protocol::batch::BatchIntegrity;
use iggy_binary_protocol::consensus::HEADER_SIZE;
use iggy_binary_protocol::requests::consumer_groups::{
    CreateConsumerGroupRequest, DeleteConsumerGroupRequest, GetConsumerGroupRequest,
    GetConsumerGroupsRequest, JoinConsumerGroupRequest, LeaveConsumerGroupRequest,
    SyncConsumerGroupRequest,
};
use iggy_binary_protocol::requests::consumer_offsets::{
    DeleteConsumerOffsetRequest, GetConsumerOffsetRequest, StoreConsumerOffsetRequest,
};
use iggy_binary_protocol::requests::messages::poll_messages::PollMessagesRequest;
use iggy_binary_protocol::requests::partitions::{
    CreatePartitionsRequest, DeletePartitionsRequest,
};
use iggy_binary_protocol::requests::personal_access_tokens::{
    CreatePersonalAccessTokenRequest, DeletePersonalAccessTokenRequest,
    LoginWithPersonalAccessTokenRequest,
};
use iggy_binary_protocol::requests::segments::DeleteSegmentsRequest;
use iggy_binary_protocol::requests::streams::{
    CreateStreamRequest, DeleteStreamRequest, GetStreamRequest, PurgeStreamRequest,
    UpdateStreamRequest,
};
use iggy_binary_protocol::requests::system::attach_consumer_session::AttachConsumerSessionRequest;
use iggy_binary_protocol::requests::system::describe_options::DescribeOptionsRequest;
use iggy_binary_protocol::requests::system::get_client::GetClientRequest;
use iggy_binary_protocol::requests::topics::{
    CreateTopicRequest, DeleteTopicRequest, GetTopicRequest, GetTopicsRequest, PurgeTopicRequest,
    UpdateTopicRequest,
};
use iggy_binary_protocol::requests::users::login_register_with_pat::LoginRegisterWithPatRequest;
use iggy_binary_protocol::requests::users::{
    ChangePasswordRequest, CreateUserRequest, DeleteUserRequest, GetUserRequest,
    LoginRegisterRequest, LoginUserRequest, UpdatePermissionsRequest, UpdateUserRequest,
};
use iggy_binary_protocol::{ClientVersionInfo, WireDecode};
use iggy_broker::command::decode;
use iggy_broker::storage::{batch, recovery};
use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// The frame size limit the targets read with (small, so that libFuzzer
/// also explores "too large").
const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Run a future that reads only from memory (a `&[u8]` reader never waits).
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => unreachable!("reading from memory never waits"),
    }
}

/// Every request body decoder the 0.11 command layer uses.
fn decode_request_body(body: &[u8]) {
    macro_rules! each {
        ($($t:ty),* $(,)?) => { $( let _ = decode::<$t>(body); )* };
    }
    each!(
        CreateConsumerGroupRequest,
        DeleteConsumerGroupRequest,
        GetConsumerGroupRequest,
        GetConsumerGroupsRequest,
        JoinConsumerGroupRequest,
        LeaveConsumerGroupRequest,
        SyncConsumerGroupRequest,
        DeleteConsumerOffsetRequest,
        GetConsumerOffsetRequest,
        StoreConsumerOffsetRequest,
        PollMessagesRequest,
        CreatePartitionsRequest,
        DeletePartitionsRequest,
        CreatePersonalAccessTokenRequest,
        DeletePersonalAccessTokenRequest,
        LoginWithPersonalAccessTokenRequest,
        DeleteSegmentsRequest,
        CreateStreamRequest,
        DeleteStreamRequest,
        GetStreamRequest,
        PurgeStreamRequest,
        UpdateStreamRequest,
        AttachConsumerSessionRequest,
        DescribeOptionsRequest,
        GetClientRequest,
        CreateTopicRequest,
        DeleteTopicRequest,
        GetTopicRequest,
        GetTopicsRequest,
        PurgeTopicRequest,
        UpdateTopicRequest,
        ChangePasswordRequest,
        CreateUserRequest,
        DeleteUserRequest,
        GetUserRequest,
        LoginRegisterRequest,
        LoginUserRequest,
        UpdatePermissionsRequest,
        UpdateUserRequest,
        LoginRegisterWithPatRequest,
    );
    let _ = ClientVersionInfo::decode(body);
    let mut copy = body.to_vec();
    send_body(&mut copy);
}

/// A SendMessages body: metadata, then the batch validated as the broker
/// validates it before storing; a batch that passes validates again.
fn send_body(body: &mut [u8]) {
    if let Ok((header, record)) = iggy_broker::command::split_send_body(body)
        && batch::validate_incoming(record, header.messages_count, BatchIntegrity::Verify).is_ok()
    {
        assert!(
            batch::validate_incoming(record, header.messages_count, BatchIntegrity::Verify).is_ok()
        );
    }
}

/// A 0.11 connection's bytes: the 256-byte request header, then the body
/// through every decoder.
pub fn request_frame(data: &[u8]) {
    let mut reader = data;
    let mut buf = BytesMut::new();
    if let Ok(frame) = now(iggy_broker::protocol::frame::read_frame(
        &mut reader,
        &mut buf,
        MAX_FRAME_BYTES,
    )) {
        assert!(buf.len() >= HEADER_SIZE);
        let _ = frame.code;
        decode_request_body(&buf[HEADER_SIZE..]);
    }
}

/// A 0.10 connection's bytes: the legacy prefix check, the `[length][code]`
/// framing, and the SendMessages re-encoding into a 0.11 body (which must
/// then pass the 0.11 send checks).
pub fn legacy_frame(data: &[u8]) {
    use iggy_broker::protocol::legacy;
    if let Some(prefix) = data.first_chunk::<{ legacy::HEADER_BYTES }>() {
        let _ = legacy::is_legacy_prefix(prefix);
    }
    let mut reader = data;
    let mut body = BytesMut::new();
    if now(legacy::read_request(
        &mut reader,
        &mut body,
        MAX_FRAME_BYTES,
    ))
    .is_ok()
    {
        let mut reencoded = BytesMut::new();
        if iggy_broker::command::legacy::reencode_send(&body, &mut reencoded).is_ok() {
            // The 0.11 checks may still refuse its content (an empty
            // payload, which 0.10 allowed): an error for the client, as
            // for any send — found by this target, kept as a regression.
            assert_encoded_send(&mut reencoded);
        }
    }
}

/// A SendMessages body alone (the bytes after the frame header).
pub fn send_batch(data: &[u8]) {
    send_body(&mut data.to_vec());
}

/// Where the disk-reading targets put their files: memory when possible.
fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

/// A segment as found on disk after anything at all: `[index length u16]
/// [index bytes][log bytes]`. Recovery keeps a prefix of whole batches,
/// never grows the log, and a second recovery finds nothing to repair.
pub fn segment_recovery(data: &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let index_len = (u16::from_le_bytes(*len) as usize).min(rest.len());
    let (index, log) = rest.split_at(index_len);
    let dir = scratch_dir();
    std::fs::write(iggy_broker::storage::segment::log_path(dir.path(), 0), log).unwrap();
    std::fs::write(
        iggy_broker::storage::segment::index_path(dir.path(), 0),
        index,
    )
    .unwrap();
    let first = recovery::recover_segment(dir.path(), 0).expect("recovery of readable files");
    assert!(first.valid_bytes <= log.len() as u64);
    assert_eq!(first.valid_bytes + first.truncated_bytes, log.len() as u64);
    assert!(
        first
            .entries
            .windows(2)
            .all(|w| w[0].base_offset < w[1].base_offset && w[0].position < w[1].position)
    );
    let second = recovery::recover_segment(dir.path(), 0).expect("second recovery");
    assert_eq!(second.truncated_bytes, 0);
    assert!(!second.index_rebuilt, "recovery is idempotent");
    assert_eq!(second.entries, first.entries);
    assert_eq!(second.next_offset, first.next_offset);
}

/// The metadata directory after anything at all: `[selector u8][bytes]`
/// written as the Raft log, vote, purge marker or snapshot. Opening must
/// either succeed or fail with an error — never panic — and an opened log
/// opens again unchanged.
pub fn metadata_files(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let dir = scratch_dir();
    let raft = dir.path().join("metadata");
    std::fs::create_dir_all(&raft).unwrap();
    let name = ["log", "vote", "purged", "committed"][selector as usize % 4];
    std::fs::write(raft.join(name), bytes).unwrap();
    open_log_twice(&raft);
    // The snapshot's state, as `restore` decodes it.
    let _ = serde_json::from_slice::<iggy_broker::metadata::MetadataState>(bytes);
}

fn open_log_twice(dir: &Path) {
    use iggy_broker::cluster::raft::log_store::LogStore;
    let Ok((_, first)) = LogStore::open(dir) else {
        return;
    };
    let (_, second) = LogStore::open(dir).expect("a log that opened once opens again");
    assert_eq!(second.truncated_bytes, 0);
    assert_eq!(second.entries, first.entries);
}

/// An HTTP request body, as the REST API's JSON extractors decode it (and,
/// for SendMessages, as its handler encodes it into a binary request).
pub fn http_json(data: &[u8]) {
    use iggy_common::{
        change_password::ChangePassword, create_consumer_group::CreateConsumerGroup,
        create_partitions::CreatePartitions,
        create_personal_access_token::CreatePersonalAccessToken, create_stream::CreateStream,
        create_topic::CreateTopic, create_user::CreateUser, login_user::LoginUser,
        login_with_personal_access_token::LoginWithPersonalAccessToken,
        store_consumer_offset::StoreConsumerOffset, update_permissions::UpdatePermissions,
        update_stream::UpdateStream, update_topic::UpdateTopic, update_user::UpdateUser,
    };
    macro_rules! each {
        ($($t:ty),* $(,)?) => { $( let _ = serde_json::from_slice::<$t>(data); )* };
    }
    each!(
        ChangePassword,
        CreateConsumerGroup,
        CreatePartitions,
        CreatePersonalAccessToken,
        CreateStream,
        CreateTopic,
        CreateUser,
        LoginUser,
        LoginWithPersonalAccessToken,
        StoreConsumerOffset,
        UpdatePermissions,
        UpdateStream,
        UpdateTopic,
        UpdateUser,
    );
    // SendMessages goes straight to a binary body.
    if let Ok(body) = iggy_broker::http::SendBody::parse(data) {
        let stream = iggy_common::Identifier::numeric(1).expect("a valid id");
        let mut encoded = BytesMut::new();
        if body.encode(&stream, &stream, &mut encoded).is_ok() {
            assert_encoded_send(&mut encoded);
        }
    }
}

/// A SendMessages body the broker encoded itself (from a 0.10 send or a
/// REST one): its metadata is valid, and wherever the send's layout checks
/// pass, its checksums are right too.
fn assert_encoded_send(encoded: &mut [u8]) {
    let (header, record) =
        iggy_broker::command::split_send_body(encoded).expect("an encoded send has valid metadata");
    if batch::validate_incoming(record, header.messages_count, BatchIntegrity::LayoutOnly).is_ok() {
        assert!(
            batch::validate_incoming(record, header.messages_count, BatchIntegrity::Verify).is_ok()
        );
    }
}

#[cfg(test)]
mod seeds {
    //! `cargo test -- --ignored write_seed_corpus` writes the starting
    //! corpus: well-formed inputs libFuzzer mutates from.

    use bytes::BytesMut;
    use iggy_binary_protocol::codes::{
        CREATE_STREAM_CODE, PING_CODE, POLL_MESSAGES_CODE, SEND_MESSAGES_CODE,
    };
    use iggy_binary_protocol::consensus::{Command, Operation, RequestHeader};
    use iggy_binary_protocol::requests::messages::send_messages::{
        RawMessage, SendMessagesEncoder,
    };
    use iggy_binary_protocol::{WireIdentifier, WirePartitioning};
    use iggy_broker::storage::{FsyncPolicy, LogConfig, PartitionLog};
    use std::path::PathBuf;

    fn send_body(count: usize) -> BytesMut {
        let payloads: Vec<Vec<u8>> = (0..count).map(|i| format!("message-{i}").into()).collect();
        let messages: Vec<RawMessage<'_>> = payloads
            .iter()
            .enumerate()
            .map(|(i, payload)| RawMessage {
                id: i as u128 + 1,
                origin_timestamp: 1_000 + i as u64,
                headers: None,
                payload,
            })
            .collect();
        let mut body = BytesMut::new();
        SendMessagesEncoder::encode(
            &mut body,
            &WireIdentifier::numeric(1),
            &WireIdentifier::named("t").unwrap(),
            &WirePartitioning::PartitionId(0),
            &messages,
        )
        .unwrap();
        body
    }

    fn frame(code: u32, body: &[u8]) -> Vec<u8> {
        let operation = Operation::from_command_code(code).unwrap_or(Operation::NonReplicated);
        let mut reserved = [0u8; 60];
        if operation == Operation::NonReplicated {
            reserved[0..4].copy_from_slice(&code.to_le_bytes());
        }
        let header = RequestHeader {
            command: Command::Request,
            operation,
            size: (256 + body.len()) as u32,
            client: 7,
            request: 1,
            session: 1,
            reserved,
            ..Default::default()
        };
        let mut out = bytemuck::bytes_of(&header).to_vec();
        out.extend_from_slice(body);
        out
    }

    fn legacy_send(count: usize) -> Vec<u8> {
        let body011 = send_body(count);
        let metadata_len = u32::from_le_bytes(body011[0..4].try_into().unwrap()) as usize;
        let mut body = body011[..4 + metadata_len].to_vec();
        body.extend(std::iter::repeat_n(0u8, 16 * count));
        for i in 0..count {
            let payload = format!("message-{i}");
            body.extend_from_slice(&0u64.to_le_bytes()); // checksum
            body.extend_from_slice(&(i as u128 + 1).to_le_bytes());
            body.extend_from_slice(&0u64.to_le_bytes()); // offset
            body.extend_from_slice(&0u64.to_le_bytes()); // timestamp
            body.extend_from_slice(&5u64.to_le_bytes()); // origin timestamp
            body.extend_from_slice(&0u32.to_le_bytes()); // headers length
            body.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            body.extend_from_slice(&0u64.to_le_bytes()); // reserved
            body.extend_from_slice(payload.as_bytes());
        }
        let mut out = ((body.len() + 4) as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&SEND_MESSAGES_CODE.to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn segment(batches: usize) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_size_bytes: 1 << 30,
            fsync: FsyncPolicy::Never,
        };
        let (mut log, _) = PartitionLog::open(dir.path(), config).unwrap();
        for i in 0..batches {
            let mut body = send_body(1 + i);
            let (header, record) = iggy_broker::command::split_send_body(&mut body).unwrap();
            log.append(record, header.messages_count, 0, 1_000 + i as u64)
                .unwrap();
        }
        drop(log);
        let read = |ext: &str| std::fs::read(dir.path().join(format!("{:020}.{ext}", 0))).unwrap();
        let index = read("index");
        let mut out = (index.len() as u16).to_le_bytes().to_vec();
        out.extend_from_slice(&index);
        out.extend_from_slice(&read("log"));
        out
    }

    /// The seeds get past the outer checks, so the fuzzer starts deep.
    #[test]
    fn seeds_are_well_formed() {
        let mut reader = &frame(SEND_MESSAGES_CODE, &send_body(3))[..];
        let mut buf = BytesMut::new();
        super::now(iggy_broker::protocol::frame::read_frame(
            &mut reader,
            &mut buf,
            1 << 20,
        ))
        .expect("a well-formed frame");
        let legacy = legacy_send(3);
        let mut reencoded = BytesMut::new();
        iggy_broker::command::legacy::reencode_send(&legacy[8..], &mut reencoded)
            .expect("a well-formed 0.10 send");
        let mut body = send_body(3);
        let (header, record) = iggy_broker::command::split_send_body(&mut body).unwrap();
        iggy_broker::storage::batch::validate_incoming(
            record,
            header.messages_count,
            iggy_binary_protocol::batch::BatchIntegrity::Verify,
        )
        .unwrap();
        let segment = segment(3);
        let dir = tempfile::tempdir().unwrap();
        let index_len = u16::from_le_bytes([segment[0], segment[1]]) as usize;
        let (index, log) = segment[2..].split_at(index_len);
        std::fs::write(dir.path().join(format!("{:020}.index", 0)), index).unwrap();
        std::fs::write(dir.path().join(format!("{:020}.log", 0)), log).unwrap();
        let recovered = iggy_broker::storage::recovery::recover_segment(dir.path(), 0).unwrap();
        assert_eq!(recovered.entries.len(), 3);
        assert_eq!(recovered.next_offset, 6);
    }

    #[test]
    #[ignore = "writes the seed corpus"]
    fn write_seed_corpus() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
        let write = |target: &str, name: &str, bytes: &[u8]| {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        };
        write(
            "request_frame",
            "send",
            &frame(SEND_MESSAGES_CODE, &send_body(3)),
        );
        write("request_frame", "ping", &frame(PING_CODE, &[]));
        write(
            "request_frame",
            "poll",
            &frame(POLL_MESSAGES_CODE, &[0; 40]),
        );
        write(
            "request_frame",
            "create-stream",
            &frame(CREATE_STREAM_CODE, b"\x06orders"),
        );
        write("legacy_frame", "send", &legacy_send(3));
        write("send_batch", "one", &send_body(1));
        write("send_batch", "three", &send_body(3));
        write("segment_recovery", "three-batches", &segment(3));
        let metadata = PathBuf::from(
            std::env::var("METADATA_SEED_DIR").unwrap_or_else(|_| "/tmp/dd2/data/metadata".into()),
        );
        for (selector, name) in [(0u8, "log"), (1, "vote"), (3, "committed")] {
            if let Ok(bytes) = std::fs::read(metadata.join(name)) {
                let mut input = vec![selector];
                input.extend_from_slice(&bytes);
                write("metadata_files", name, &input);
            }
        }
        let state = serde_json::to_vec(&iggy_broker::metadata::MetadataState::default()).unwrap();
        write("metadata_files", "state", &[&[2u8][..], &state].concat());
        for (name, json) in [
            ("stream", r#"{"name":"orders"}"#),
            (
                "user",
                r#"{"username":"alice","password":"secret123","status":"active"}"#,
            ),
            (
                "send",
                r#"{"partitioning":{"kind":"partition_id","value":"AAAAAA=="},"messages":[{"id":1,"payload":"aGVsbG8=","headers":{"k":{"kind":"string","value":"dg=="}}}]}"#,
            ),
            (
                "offset",
                r#"{"consumer":{"kind":"consumer","id":1},"partition_id":0,"offset":5}"#,
            ),
        ] {
            write("http_json", name, json.as_bytes());
        }
    }
}

#[cfg(test)]
mod replay {
    //! Every committed corpus and regression input, replayed on stable.

    use std::path::PathBuf;

    fn replay(target: &str, run: fn(&[u8])) {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut inputs = 0;
        for dir in [
            root.join("corpus").join(target),
            root.join("regressions").join(target),
        ] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                run(&std::fs::read(&path).unwrap());
                inputs += 1;
            }
        }
        assert!(inputs > 0, "no corpus for {target}");
    }

    #[test]
    fn request_frame() {
        replay("request_frame", super::request_frame);
    }

    #[test]
    fn legacy_frame() {
        replay("legacy_frame", super::legacy_frame);
    }

    #[test]
    fn send_batch() {
        replay("send_batch", super::send_batch);
    }

    #[test]
    fn segment_recovery() {
        replay("segment_recovery", super::segment_recovery);
    }

    #[test]
    fn metadata_files() {
        replay("metadata_files", super::metadata_files);
    }

    #[test]
    fn http_json() {
        replay("http_json", super::http_json);
    }
}
