//! One client connection. The first bytes tell which protocol generation
//! the client speaks — the 0.11 framing (256-byte headers) or the legacy
//! 0.10 framing (`[length][code]`) — and the matching session loop serves
//! it on the same port. Connection bookkeeping (client registry, metrics,
//! leaving consumer groups) is shared.

mod idle;
mod legacy;
pub mod quic;
mod vsr;
pub mod websocket;

use crate::broker::Broker;
use crate::clients::Transport;
use crate::metadata::{Member, MetadataCommand};
use crate::session::Session;
use iggy_binary_protocol::lookup_command;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Read-buffer size: a small request (a poll, a login, a send of a few
/// kilobytes) arrives with its header in one read. Kept small on purpose:
/// whatever the buffer holds of a large body is copied out of it again,
/// while a body larger than the buffer is read straight into the request
/// buffer (tokio's `BufReader` steps aside for a read it cannot hold). A
/// 256 KiB buffer copied a quarter of every 1 MB batch once more and cost
/// each connection 256 KiB.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Turns true when the broker shuts down.
pub type Shutdown = tokio::sync::watch::Receiver<bool>;

/// Serve one TCP connection until the client leaves, its input is
/// malformed, or the broker shuts down.
pub async fn serve<S>(broker: Arc<Broker>, stream: S, address: SocketAddr, shutdown: Shutdown)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    serve_as(broker, stream, address, shutdown, Transport::Tcp).await;
}

/// Serve a byte stream arriving over `transport`.
async fn serve_as<S>(
    broker: Arc<Broker>,
    stream: S,
    address: SocketAddr,
    shutdown: Shutdown,
    transport: Transport,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut session = open_session(&broker, address, transport);
    let client_id = session.client_id;
    let _close = SessionCloser::new(&broker, client_id, transport);

    let served = async {
        let (reader, writer) = tokio::io::split(stream);
        let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, reader);
        let mut prefix = [0u8; PREFIX_BYTES];
        if reader.read_exact(&mut prefix).await.is_ok() {
            let legacy = crate::protocol::legacy::is_legacy_prefix(&prefix);
            // Put the sniffed bytes back in front of the stream.
            let reader = std::io::Cursor::new(prefix).chain(reader);
            if legacy {
                legacy::serve(&broker, &mut session, reader, writer, shutdown).await;
            } else {
                vsr::serve(&broker, &mut session, reader, writer, shutdown).await;
            }
        }
    };
    tokio::select! {
        () = served => {}
        () = login_deadline(&broker, client_id) => {
            tracing::info!(
                client_id, %address,
                "closed a connection that did not log in within {:?} (limits.login_timeout)",
                broker.effective.login_timeout
            );
        }
    }
}

/// Ends `limits.login_timeout` after the connection opened if the client
/// has not logged in by then; never otherwise.
async fn login_deadline(broker: &Broker, client_id: u32) {
    tokio::time::sleep(broker.effective.login_timeout).await;
    if broker
        .clients
        .get(client_id)
        .is_some_and(|client| client.user_id.is_some())
    {
        std::future::pending::<()>().await;
    }
}

/// Register a new client connection.
fn open_session(broker: &Broker, address: SocketAddr, transport: Transport) -> Session {
    let client_id = broker.clients.register(address, transport);
    broker
        .metrics
        .connections
        .with_label_values(&[transport.label()])
        .inc();
    tracing::debug!(client_id, %address, ?transport, "client connected");
    Session::new(client_id, address)
}

/// Closes a session when dropped: at the end of its connection, and also
/// when a request panics and unwinds the connection's task (the client is
/// forgotten and leaves its groups either way).
pub struct SessionCloser {
    broker: Arc<Broker>,
    client_id: u32,
    transport: Transport,
}

impl SessionCloser {
    pub fn new(broker: &Arc<Broker>, client_id: u32, transport: Transport) -> Self {
        Self {
            broker: broker.clone(),
            client_id,
            transport,
        }
    }
}

impl Drop for SessionCloser {
    fn drop(&mut self) {
        close_session(&self.broker, self.client_id, self.transport);
    }
}

/// Forget a client: it leaves its consumer groups (in the background: the
/// change goes through the metadata group).
fn close_session(broker: &Arc<Broker>, client_id: u32, transport: Transport) {
    broker.clients.remove(client_id);
    leave_groups(broker, client_id);
    broker
        .metrics
        .connections
        .with_label_values(&[transport.label()])
        .dec();
    tracing::debug!(client_id, "client disconnected");
}

/// Take a disconnected client out of every consumer group it is in.
pub fn leave_groups(broker: &Arc<Broker>, client_id: u32) {
    let member = Member {
        client_id,
        node: broker.node_id(),
        epoch: broker.metadata.epoch(),
    };
    let is_member = broker.metadata.read(|m| {
        m.streams
            .values()
            .flat_map(|s| s.topics.values())
            .flat_map(|t| t.consumer_groups.values())
            .any(|g| g.members.get(&client_id) == Some(&member))
    });
    if is_member {
        let broker = broker.clone();
        tokio::spawn(async move {
            if let Err(e) = broker
                .metadata
                .write(MetadataCommand::LeaveConsumerGroups { member })
                .await
            {
                tracing::warn!(
                    client_id,
                    "removing a disconnected client from its groups: {e}"
                );
            }
        });
    }
}

/// Bytes read before choosing a protocol: the legacy length and code.
const PREFIX_BYTES: usize = crate::protocol::legacy::HEADER_BYTES;

/// Write a whole reply. The flush matters for TLS: the stream keeps the
/// tail of the last record buffered until flushed, which would leave the
/// client waiting for the end of its reply.
async fn send_reply<W: AsyncWrite + Unpin>(writer: &mut W, reply: &[u8]) -> std::io::Result<()> {
    writer.write_all(reply).await?;
    writer.flush().await
}

/// Request latency and errors, per command, for either protocol.
fn record_request(broker: &Broker, code: u32, started: Instant, status: u32) {
    let command = lookup_command(code).map_or("unknown", |meta| meta.name);
    broker
        .metrics
        .request_duration
        .with_label_values(&[command])
        .observe(started.elapsed().as_secs_f64());
    if status != 0 {
        broker
            .metrics
            .errors
            .with_label_values(&[&status.to_string()])
            .inc();
    }
}
