//! Bad input gets a clear answer and costs only the connection that sent it:
//! garbage, truncated and oversize frames, unauthenticated commands and a
//! wrong password, while a second client keeps working.

mod common;

use common::{TestBroker, create_stream_and_topic, id, messages, send, wait_for};
use iggy::prelude::*;
use iggy_binary_protocol::codes::{GET_STREAMS_CODE, PING_CODE};
use iggy_binary_protocol::consensus::{Command, HEADER_SIZE, Operation, RequestHeader};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A well-formed non-replicated request for `code` with `body`.
fn request(code: u32, body: &[u8]) -> Vec<u8> {
    let mut reserved = [0u8; 60];
    reserved[0..4].copy_from_slice(&code.to_le_bytes());
    let header = RequestHeader {
        command: Command::Request,
        operation: Operation::NonReplicated,
        size: (HEADER_SIZE + body.len()) as u32,
        client: 42,
        reserved,
        ..Default::default()
    };
    let mut frame = bytemuck::bytes_of(&header).to_vec();
    frame.extend_from_slice(body);
    frame
}

/// Send `bytes` on a new connection and return everything the server sent
/// before closing it.
async fn send_raw(broker: &TestBroker, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(broker.address).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    read_to_close(&mut stream).await
}

/// Read until the server closes the connection; returns what it sent.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("server closes the connection")
        .ok();
    out
}

async fn second_client_still_works(client: &IggyClient) {
    client.ping().await.unwrap();
    let polled = client
        .poll_messages(
            &id("s"),
            &id("t"),
            Some(0),
            &Consumer::new(Identifier::numeric(1).unwrap()),
            &PollingStrategy::first(),
            10,
            false,
        )
        .await
        .unwrap();
    assert_eq!(polled.messages.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_only_their_connection() {
    let broker = TestBroker::start();
    let client = broker.client().await;
    create_stream_and_topic(&client, "s", "t", 1).await;
    send(&client, "s", "t", &Partitioning::partition_id(0), 1, 10).await;

    // Garbage: 256 bytes that are not a request header.
    let mut garbage = vec![0xA5u8; HEADER_SIZE];
    garbage[48..52].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
    let reply = send_raw(&broker, &garbage).await;
    assert_eq!(reply.len(), HEADER_SIZE, "an eviction, then close");
    assert_eq!(reply[60], Command::Eviction as u8);
    second_client_still_works(&client).await;

    // Oversize: a header declaring 2 GiB is refused before any allocation.
    let mut frame = request(GET_STREAMS_CODE, &[]);
    frame[48..52].copy_from_slice(&(1u32 << 31).to_le_bytes());
    let reply = send_raw(&broker, &frame).await;
    assert_eq!(reply[60], Command::Eviction as u8);
    second_client_still_works(&client).await;

    // Truncated: a header promising a body that never comes.
    let mut stream = TcpStream::connect(broker.address).await.unwrap();
    let mut frame = request(GET_STREAMS_CODE, &[0u8; 100]);
    frame.truncate(HEADER_SIZE + 10);
    stream.write_all(&frame).await.unwrap();
    stream.shutdown().await.unwrap();
    assert!(read_to_close(&mut stream).await.is_empty());
    second_client_still_works(&client).await;

    // A size smaller than the header itself.
    let mut frame = request(GET_STREAMS_CODE, &[]);
    frame[48..52].copy_from_slice(&10u32.to_le_bytes());
    let reply = send_raw(&broker, &frame).await;
    assert_eq!(reply[60], Command::Eviction as u8);
    second_client_still_works(&client).await;
    assert!(broker.log().contains("closing connection"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_before_login_are_unauthenticated_and_ping_works() {
    let broker = TestBroker::start();
    let mut stream = TcpStream::connect(broker.address).await.unwrap();

    stream
        .write_all(&request(GET_STREAMS_CODE, &[]))
        .await
        .unwrap();
    let mut reply = vec![0u8; HEADER_SIZE];
    stream.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[60], Command::Reply as u8);
    let status = u32::from_le_bytes(reply[216..220].try_into().unwrap());
    assert_eq!(status, IggyError::Unauthenticated.as_code());

    // The connection stays usable: ping works before login.
    stream.write_all(&request(1, &[])).await.unwrap();
    stream.read_exact(&mut reply).await.unwrap();
    assert_eq!(u32::from_le_bytes(reply[216..220].try_into().unwrap()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_invalid_messages_get_clear_errors() {
    let broker = TestBroker::start();
    let client = broker.anonymous_client().await;
    let err = client
        .login_user("iggy", "wrong-password")
        .await
        .unwrap_err();
    assert_eq!(err.as_code(), IggyError::InvalidCredentials.as_code());
    // The same client can then log in properly.
    client.login_user("iggy", "iggy").await.unwrap();
    create_stream_and_topic(&client, "s", "t", 1).await;

    // Unknown stream, topic and partition.
    let mut batch = messages(1, 1);
    let err = client
        .send_messages(
            &id("nope"),
            &id("t"),
            &Partitioning::partition_id(0),
            &mut batch,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.as_code(),
        IggyError::StreamNameNotFound(String::new()).as_code()
    );
    let mut batch = messages(1, 1);
    let err = client
        .send_messages(
            &id("s"),
            &id("t"),
            &Partitioning::partition_id(9),
            &mut batch,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.as_code(),
        IggyError::PartitionNotFound(0, Identifier::default(), Identifier::default()).as_code()
    );
    // Duplicate names.
    let err = client.create_stream("s").await.unwrap_err();
    assert_eq!(
        err.as_code(),
        IggyError::StreamNameAlreadyExists(String::new()).as_code()
    );
}

/// A legacy (0.10) frame: `[length][code][payload]`.
fn legacy_request(code: u32, body: &[u8]) -> Vec<u8> {
    let mut frame = ((body.len() + 4) as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&code.to_le_bytes());
    frame.extend_from_slice(body);
    frame
}

/// Read one legacy reply; returns (status, body).
async fn legacy_reply(stream: &mut TcpStream) -> (u32, Vec<u8>) {
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).await.unwrap();
    let status = u32::from_le_bytes(header[0..4].try_into().unwrap());
    let mut body = vec![0u8; u32::from_le_bytes(header[4..8].try_into().unwrap()) as usize];
    stream.read_exact(&mut body).await.unwrap();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_connections_get_clear_errors_and_keep_working() {
    let broker = TestBroker::start();
    let client = broker.client().await;
    create_stream_and_topic(&client, "s", "t", 1).await;
    send(&client, "s", "t", &Partitioning::partition_id(0), 1, 10).await;
    let mut stream = TcpStream::connect(broker.address).await.unwrap();

    // Before login: ping works, everything else is Unauthenticated.
    stream.write_all(&legacy_request(1, &[])).await.unwrap();
    assert_eq!(legacy_reply(&mut stream).await, (0, vec![]));
    stream.write_all(&legacy_request(201, &[])).await.unwrap();
    let (status, body) = legacy_reply(&mut stream).await;
    assert_eq!(status, IggyError::Unauthenticated.as_code());
    assert!(body.is_empty());

    // A wrong password, then the right one: `[user_id u32]`.
    let login = |password: &str| {
        let mut body = vec![4];
        body.extend_from_slice(b"iggy");
        body.push(password.len() as u8);
        body.extend_from_slice(password.as_bytes());
        body.extend_from_slice(&0u32.to_le_bytes()); // no version
        body.extend_from_slice(&0u32.to_le_bytes()); // no context
        legacy_request(38, &body)
    };
    stream.write_all(&login("nope")).await.unwrap();
    assert_eq!(
        legacy_reply(&mut stream).await.0,
        IggyError::InvalidCredentials.as_code()
    );
    stream.write_all(&login("iggy")).await.unwrap();
    assert_eq!(
        legacy_reply(&mut stream).await,
        (0, 0u32.to_le_bytes().to_vec())
    );

    // A garbage body is InvalidFormat and the connection stays usable.
    stream
        .write_all(&legacy_request(200, &[9, 9, 9]))
        .await
        .unwrap();
    assert_eq!(
        legacy_reply(&mut stream).await.0,
        IggyError::InvalidFormat.as_code()
    );
    stream.write_all(&legacy_request(1, &[])).await.unwrap();
    assert_eq!(legacy_reply(&mut stream).await.0, 0);

    // A frame declaring 2 GiB closes only that connection.
    let mut oversize = 0x7fff_ffffu32.to_le_bytes().to_vec();
    oversize.extend_from_slice(&1u32.to_le_bytes());
    let reply = send_raw(&broker, &oversize).await;
    assert!(reply.is_empty());
    second_client_still_works(&client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_does_not_log_in_is_closed_and_one_that_does_is_kept() {
    let broker = TestBroker::start_with(&[("IGGY_LIMITS_LOGIN_TIMEOUT", "1s")]);
    // Sends nothing at all.
    let mut silent = TcpStream::connect(broker.address).await.unwrap();
    // Pings (and gets an answer), but never logs in.
    let mut pinging = TcpStream::connect(broker.address).await.unwrap();
    pinging.write_all(&request(PING_CODE, &[])).await.unwrap();
    let mut answer = [0u8; 1];
    pinging.read_exact(&mut answer).await.unwrap();
    // Logs in.
    let client = broker.client().await;
    assert!(read_to_close(&mut silent).await.is_empty());
    read_to_close(&mut pinging).await;
    // The line is written as the connection closes, not before: wait for it.
    wait_for(
        "the closed connection to be logged",
        Duration::from_secs(10),
        || {
            broker
                .log()
                .contains("did not log in within 1s (limits.login_timeout)")
        },
    )
    .await;
    // The logged-in client is past the deadline and still served.
    client.ping().await.unwrap();
    create_stream_and_topic(&client, "s", "t", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection() {
    let broker = TestBroker::start_with(&[("IGGY_LIMITS_MAX_CONNECTIONS_PER_ADDRESS", "3")]);
    let client = broker.client().await;
    let _two = TcpStream::connect(broker.address).await.unwrap();
    let _three = TcpStream::connect(broker.address).await.unwrap();
    // The fourth from 127.0.0.1 is closed at once, and logged.
    let mut fourth = TcpStream::connect(broker.address).await.unwrap();
    assert!(read_to_close(&mut fourth).await.is_empty());
    assert!(
        broker.log().contains(
            "3 connections from this address already (limits.max_connections_per_address)"
        )
    );
    // Another address of this host still gets in, and the first client
    // is served.
    let other = tokio::net::TcpSocket::new_v4().unwrap();
    other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = other.connect(broker.address).await.unwrap();
    other
        .write_all(&request(GET_STREAMS_CODE, &[]))
        .await
        .unwrap();
    let mut reply = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(10), other.read_exact(&mut reply))
        .await
        .expect("an answer to another address")
        .unwrap();
    client.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_panics_closes_only_its_connection_and_wedges_nothing() {
    // Debug builds panic on a send carrying this payload, while holding the
    // partition's log lock (`command::messages::panic_if_asked`).
    const MARKER: &str = "panic-marker-7f3a";
    let broker = TestBroker::start_with(&[("IGGY_DEBUG_PANIC_ON_PAYLOAD", MARKER)]);
    let client = broker.client().await;
    create_stream_and_topic(&client, "s", "t", 1).await;
    send(&client, "s", "t", &Partitioning::partition_id(0), 1, 10).await;

    let victim = broker.client().await;
    let mut batch = vec![
        IggyMessage::builder()
            .id(100)
            .payload(bytes::Bytes::from(MARKER))
            .build()
            .unwrap(),
    ];
    let sent = tokio::time::timeout(
        Duration::from_secs(30),
        victim.send_messages(
            &id("s"),
            &id("t"),
            &Partitioning::partition_id(0),
            &mut batch,
        ),
    )
    .await
    .expect("the panicking send got an answer");
    assert!(sent.is_err(), "a send that panicked was acknowledged");
    victim.disconnect().await.unwrap();

    // The same partition takes sends and polls from everyone else.
    send(&client, "s", "t", &Partitioning::partition_id(0), 11, 10).await;
    let ids: Vec<u128> = common::poll_all(&client, "s", "t", 0)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(ids, (1..=20).collect::<Vec<u128>>());
    let other = broker.client().await;
    second_client_still_works(&other).await;
    other.disconnect().await.unwrap();
    assert!(
        broker
            .log()
            .contains("a request panicked; its connection was closed"),
        "{}",
        broker.log()
    );
    // The panicked connections' sessions were closed on the way out: the
    // one client still connected is all that is listed.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let clients = client.get_clients().await.unwrap();
        if clients.len() == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sessions left behind: {clients:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A raw QUIC connection to the broker (its certificate is self-signed
/// in tests, so this client trusts any).
async fn quic_connect(broker: &TestBroker) -> quinn::Connection {
    #[derive(Debug)]
    struct TrustAny(std::sync::Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for TrustAny {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(TrustAny(provider)))
        .with_no_client_auth();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(std::sync::Arc::new(crypto)));
    let address = broker.quic_address.expect("QUIC is enabled by default");
    endpoint
        .connect(address, "localhost")
        .unwrap()
        .await
        .unwrap()
}

/// One request on its own stream, as the SDK sends them; the reply.
async fn quic_request(connection: &quinn::Connection, frame: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    send.write_all(frame).await.unwrap();
    send.finish().unwrap();
    tokio::time::timeout(Duration::from_secs(10), recv.read_to_end(1 << 20))
        .await
        .expect("the broker answers")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_requests_are_read_whole_and_bad_ones_cost_only_themselves() {
    let broker = TestBroker::start();
    let status = |reply: &[u8]| u32::from_le_bytes(reply[216..220].try_into().unwrap());
    let connection = quic_connect(&broker).await;
    let reply = quic_request(&connection, &request(PING_CODE, &[])).await;
    assert_eq!(
        (reply.len(), reply[60]),
        (HEADER_SIZE, Command::Reply as u8)
    );
    assert_eq!(status(&reply), 0);

    // A request with a body larger than one QUIC stream frame arrives whole
    // (the broker reads the stream into its request buffer as it comes).
    let reply = quic_request(&connection, &request(GET_STREAMS_CODE, &[0u8; 300_000])).await;
    assert_eq!(reply[60], Command::Reply as u8);
    assert_eq!(status(&reply), IggyError::Unauthenticated.as_code());

    // A stream the client abandons half-way (header promising a body that
    // never comes, then a reset) gets no answer and costs only itself.
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    let mut frame = request(GET_STREAMS_CODE, &[0u8; 100]);
    frame.truncate(HEADER_SIZE + 10);
    send.write_all(&frame).await.unwrap();
    send.reset(0u32.into()).unwrap();
    let abandoned = tokio::time::timeout(Duration::from_secs(10), recv.read_to_end(1 << 20))
        .await
        .expect("the broker drops the stream");
    assert!(abandoned.is_err() || abandoned.unwrap().is_empty());
    let reply = quic_request(&connection, &request(PING_CODE, &[])).await;
    assert_eq!(status(&reply), 0, "the connection keeps working");

    // Oversize: a header declaring 2 GiB is refused with an eviction, and
    // the broker closes that connection.
    let mut frame = request(GET_STREAMS_CODE, &[]);
    frame[48..52].copy_from_slice(&(1u32 << 31).to_le_bytes());
    let reply = quic_request(&connection, &frame).await;
    assert_eq!(reply[60], Command::Eviction as u8);
    tokio::time::timeout(Duration::from_secs(10), connection.closed())
        .await
        .expect("the broker closes an evicted connection");
    assert!(broker.log().contains("closing connection"));

    // Everyone else is unaffected.
    let other = quic_connect(&broker).await;
    assert_eq!(
        status(&quic_request(&other, &request(PING_CODE, &[])).await),
        0
    );
}
