//! Server-side partitioning. The Rust SDK resolves balanced and key
//! partitioning itself, so these frames are built by hand, as another SDK
//! could send them: the broker must route balanced sends round-robin and the
//! same key always to the same partition.

mod common;

use common::{TestBroker, create_stream_and_topic};
use iggy_binary_protocol::consensus::{Command, HEADER_SIZE, Operation, RequestHeader};
use iggy_binary_protocol::requests::messages::send_messages::{RawMessage, SendMessagesEncoder};
use iggy_binary_protocol::requests::users::LoginRegisterRequest;
use iggy_binary_protocol::responses::messages::send_messages::SendMessagesResponse;
use iggy_binary_protocol::responses::users::login_register::LoginRegisterResponse;
use iggy_binary_protocol::version::IGGY_PROTOCOL_VERSION;
use iggy_binary_protocol::{
    ClientVersionInfo, WireDecode, WireEncode, WireIdentifier, WireName, WirePartitioning,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CLIENT: u128 = 0xC0FFEE;

/// Send one request and return the reply body (after checking status 0).
async fn roundtrip(
    stream: &mut TcpStream,
    operation: Operation,
    request: u64,
    session: u64,
    body: &[u8],
) -> Vec<u8> {
    let header = RequestHeader {
        command: Command::Request,
        operation,
        size: (HEADER_SIZE + body.len()) as u32,
        client: CLIENT,
        request,
        session,
        ..Default::default()
    };
    stream.write_all(bytemuck::bytes_of(&header)).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut reply = vec![0u8; HEADER_SIZE];
    stream.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[60], Command::Reply as u8);
    assert_eq!(
        u32::from_le_bytes(reply[216..220].try_into().unwrap()),
        0,
        "status"
    );
    let size = u32::from_le_bytes(reply[48..52].try_into().unwrap()) as usize;
    let mut body = vec![0u8; size - HEADER_SIZE];
    stream.read_exact(&mut body).await.unwrap();
    body
}

async fn login(stream: &mut TcpStream) -> u64 {
    let request = LoginRegisterRequest {
        version_info: ClientVersionInfo {
            protocol_version: IGGY_PROTOCOL_VERSION,
            sdk_name: WireName::new("raw-test").unwrap(),
            sdk_version: WireName::new("0.0.0").unwrap(),
        },
        username: WireName::new("iggy").unwrap(),
        password: secrecy::SecretString::from("iggy"),
        client_context: None,
    };
    let body = roundtrip(stream, Operation::Register, 0, 0, &request.to_bytes()).await;
    // Result-framed: `[count = 0]` then the response.
    assert_eq!(&body[0..4], &[0, 0, 0, 0]);
    LoginRegisterResponse::decode_from(&body[4..])
        .unwrap()
        .session
}

async fn send(
    stream: &mut TcpStream,
    session: u64,
    request: u64,
    partitioning: WirePartitioning,
) -> u32 {
    let messages = [RawMessage {
        id: u128::from(request),
        origin_timestamp: 1,
        headers: None,
        payload: b"payload",
    }];
    let mut body = bytes::BytesMut::new();
    SendMessagesEncoder::encode(
        &mut body,
        &WireIdentifier::named("s").unwrap(),
        &WireIdentifier::named("t").unwrap(),
        &partitioning,
        &messages,
    )
    .unwrap();
    let reply = roundtrip(stream, Operation::SendMessages, request, session, &body).await;
    SendMessagesResponse::decode_from(&reply)
        .unwrap()
        .confirmations[0]
        .partition_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balanced_is_round_robin_and_a_key_always_lands_on_one_partition() {
    let broker = TestBroker::start();
    let client = broker.client().await;
    create_stream_and_topic(&client, "s", "t", 3).await;

    let mut stream = TcpStream::connect(broker.address).await.unwrap();
    let session = login(&mut stream).await;
    let mut request = 0;
    let mut next = || {
        request += 1;
        request
    };

    let mut balanced = Vec::new();
    for _ in 0..6 {
        balanced.push(send(&mut stream, session, next(), WirePartitioning::Balanced).await);
    }
    assert_eq!(balanced, vec![0, 1, 2, 0, 1, 2]);

    for key in [b"alice".as_slice(), b"bob", b"carol"] {
        let expected = iggy_common::calculate_32(key) % 3;
        for _ in 0..3 {
            let partitioning = WirePartitioning::messages_key(key.to_vec()).unwrap();
            assert_eq!(
                send(&mut stream, session, next(), partitioning).await,
                expected
            );
        }
    }
}
