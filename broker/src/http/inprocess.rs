//! The official client's command implementations, run in process.
//!
//! `iggy_common` implements every domain call (`create_stream`,
//! `poll_messages`, …) once, for any `BinaryClient`: it encodes the wire
//! request, sends it, and decodes the reply into the SDK's types. This
//! client "sends" by running the broker's own command dispatch for the
//! user of an HTTP request. So the REST API gets exactly the semantics,
//! validation and permission checks of the binary protocol, and returns
//! the very types the SDK's HTTP client deserializes.

use crate::broker::Broker;
use crate::clients::Transport;
use crate::command::{Context, dispatch, send_encoded};
use crate::session::Session;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use iggy_common::{
    BinaryClient, BinaryTransport, Client, ClientState, ConsumerGroupClientState, DiagnosticEvent,
    IggyError, NonZeroIggyDuration, VsrSessionControl, VsrSessionSealed,
};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

pub struct InProcessClient {
    broker: Arc<Broker>,
    /// One request at a time, like a connection (the SDK's calls await).
    session: tokio::sync::Mutex<Session>,
    consumer_groups: Arc<ConsumerGroupClientState>,
    events: async_broadcast::Sender<DiagnosticEvent>,
}

impl InProcessClient {
    /// A client acting as `user_id`, registered for the request's lifetime.
    pub fn new(broker: Arc<Broker>, address: SocketAddr, user_id: u32) -> Self {
        let client_id = broker.clients.register(address, Transport::Http);
        broker.clients.set_user(client_id, Some(user_id));
        let mut session = Session::new(client_id, address);
        session.user_id = Some(user_id);
        let (events, _) = async_broadcast::broadcast(1);
        Self {
            broker,
            session: tokio::sync::Mutex::new(session),
            consumer_groups: Arc::new(ConsumerGroupClientState::new()),
            events,
        }
    }

    /// Store a SendMessages body the broker encoded itself
    /// ([`send_encoded`]: its checksums are not hashed a second time).
    pub async fn send_encoded(&self, body: &mut BytesMut) -> Result<Bytes, IggyError> {
        self.execute(Request::EncodedSend, body).await
    }

    /// Run `request` with body `body` (which the command may rewrite in
    /// place) and return its reply body.
    async fn execute(&self, request: Request, body: &mut BytesMut) -> Result<Bytes, IggyError> {
        let mut reply = BytesMut::new();
        let mut session = self.session.lock().await;
        let mut ctx = Context {
            broker: &self.broker,
            session: &mut session,
        };
        let done = match request {
            Request::Command(code) => dispatch(&mut ctx, code, body, &mut reply).await,
            Request::EncodedSend => send_encoded(&mut ctx, body, &mut reply).await,
        };
        done.map(|()| reply.freeze()).map_err(|e| {
            tracing::debug!(?request, "HTTP request failed: {e}");
            IggyError::from_code(e.code())
        })
    }
}

/// What [`InProcessClient::execute`] runs.
#[derive(Debug, Clone, Copy)]
enum Request {
    /// A binary command, by code.
    Command(u32),
    /// A SendMessages body encoded by the broker ([`send_encoded`]).
    EncodedSend,
}

impl std::fmt::Debug for InProcessClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessClient").finish_non_exhaustive()
    }
}

impl Drop for InProcessClient {
    fn drop(&mut self) {
        let client_id = self.session.get_mut().client_id;
        self.broker.clients.remove(client_id);
        crate::connection::leave_groups(&self.broker, client_id);
    }
}

#[async_trait]
impl BinaryTransport for InProcessClient {
    async fn get_state(&self) -> ClientState {
        ClientState::Authenticated
    }

    async fn set_state(&self, _state: ClientState) {}

    async fn publish_event(&self, _event: DiagnosticEvent) {}

    async fn send_raw_with_response(&self, code: u32, payload: Bytes) -> Result<Bytes, IggyError> {
        self.execute(Request::Command(code), &mut BytesMut::from(&payload[..]))
            .await
    }

    fn get_heartbeat_interval(&self) -> NonZeroIggyDuration {
        NonZeroIggyDuration::from_str("5s").expect("valid duration")
    }

    fn consumer_group_state(&self) -> Arc<ConsumerGroupClientState> {
        self.consumer_groups.clone()
    }
}

impl VsrSessionSealed for InProcessClient {}

#[async_trait]
impl VsrSessionControl for InProcessClient {
    async fn bind_vsr_session(&self, _session: u64) -> Result<(), IggyError> {
        Ok(())
    }

    async fn reset_vsr_session(&self) -> Result<(), IggyError> {
        Ok(())
    }

    fn sdk_version(&self) -> &'static str {
        "0.11.0"
    }
}

#[async_trait]
impl Client for InProcessClient {
    async fn connect(&self) -> Result<(), IggyError> {
        Ok(())
    }

    async fn disconnect(&self) -> Result<(), IggyError> {
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), IggyError> {
        Ok(())
    }

    async fn subscribe_events(&self) -> async_broadcast::Receiver<DiagnosticEvent> {
        self.events.new_receiver()
    }
}

impl BinaryClient for InProcessClient {}
