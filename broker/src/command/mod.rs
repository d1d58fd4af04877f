//! Command handlers: decode a request body with the wire crate, act on the
//! broker, encode the reply body.
//!
//! [`dispatch`] is the single place that maps a command (see [`table`]) to
//! its handler, enforces that only ping and login work before
//! authentication, and lets metadata reads catch up with the leader first.
//! Handlers are grouped by area as `iggy_binary_protocol::requests` is;
//! [`forward`] sends partition commands to the broker that leads the
//! partition, [`routing`] answers the 0.11 SDK's cluster routing commands.

mod consumer_groups;
mod consumer_offsets;
pub mod forward;
pub mod legacy;
pub mod login;
mod messages;
mod partitions;
mod personal_access_tokens;
mod routing;
mod streams;
mod system;
pub mod table;
pub mod topic_options;
mod topics;
mod users;

pub use messages::split_send_body;

use crate::auth::{Action, ROOT_USER_ID};
use crate::broker::Broker;
use crate::broker::users::check_permission;
use crate::error::{Error, Result, SaveKind};
use crate::metadata::{Applied, Ident, Member, MetadataCommand};
use crate::session::{PendingWrite, Session};
use bytes::BytesMut;
use futures::FutureExt;
use iggy_binary_protocol::batch::BatchIntegrity;
use iggy_binary_protocol::{WireDecode, WireIdentifier, WireOptions};
use std::future::Future;
use std::time::{Duration, Instant};
pub use table::{Command, Kind};

/// What a handler works with.
pub struct Context<'a> {
    pub broker: &'a Broker,
    pub session: &'a mut Session,
}

impl Context<'_> {
    fn user_id(&self) -> Result<u32> {
        self.session.user_id.ok_or(Error::Unauthenticated)
    }

    /// Fail with `Unauthorized` unless the logged-in user may do `action`.
    pub fn authorize(&self, action: Action) -> Result<()> {
        self.broker.authorize(self.user_id()?, action)
    }

    /// Authorize an action on a stream. An unknown stream passes, so the
    /// handler reports "not found" as upstream does (not-found before
    /// unauthorized). Resolution and check share one metadata read.
    pub fn authorize_stream(
        &self,
        stream: &WireIdentifier,
        action: fn(u32) -> Action,
    ) -> Result<()> {
        let user_id = self.user_id()?;
        if user_id == ROOT_USER_ID {
            return Ok(());
        }
        let stream = Ident::from(stream);
        self.broker
            .metadata
            .read(|m| match m.resolve_stream(&stream) {
                Ok(s) => check_permission(m, user_id, action(s)),
                Err(_) => Ok(()),
            })
    }

    /// Authorize an action on a topic; unknown topics pass as above.
    pub fn authorize_topic(
        &self,
        stream: &WireIdentifier,
        topic: &WireIdentifier,
        action: fn(u32, u32) -> Action,
    ) -> Result<()> {
        let user_id = self.user_id()?;
        if user_id == ROOT_USER_ID {
            return Ok(());
        }
        let (stream, topic) = (Ident::from(stream), Ident::from(topic));
        self.broker
            .metadata
            .read(|m| match m.resolve_topic(&stream, &topic) {
                Ok((s, t)) => check_permission(m, user_id, action(s, t)),
                Err(_) => Ok(()),
            })
    }

    /// The consumer-group member this connection acts as.
    pub fn member(&self) -> Member {
        self.session.acting_for.unwrap_or(Member {
            client_id: self.session.client_id,
            node: self.broker.node_id(),
            epoch: self.broker.metadata.epoch(),
        })
    }

    /// Refuse a change that adds to the metadata while this broker's data
    /// directory is short of space or failing (deletions go through), and
    /// any change on a broker founded apart from its cluster.
    fn admit(&self, command: &MetadataCommand) -> Result<()> {
        crate::cluster::uid::refuse_if_founded_apart(self.broker)?;
        if command.frees_space() {
            return Ok(());
        }
        self.broker.space.admit(SaveKind::Metadata, 0)
    }

    /// Refuse at once, as [`Context::write`] would, a change that adds to
    /// the metadata while this broker cannot make it (cut off from the
    /// majority, founded apart, short of space): for changes committed behind the reply
    /// (`broker::offset_commits`).
    pub fn check_writable(&self) -> Result<()> {
        if !self.broker.metadata.in_contact() {
            return Err(cut_off());
        }
        crate::cluster::uid::refuse_if_founded_apart(self.broker)?;
        self.broker.space.admit(SaveKind::Metadata, 0)
    }

    /// Commit a metadata change for the current request.
    pub async fn write(&mut self, command: MetadataCommand) -> Result<Applied> {
        self.write_with(|| async { Ok((command, None)) })
            .await
            .map(|(applied, _)| applied)
    }

    /// Commit the metadata change `build` makes (with a note the handler
    /// needs later, such as a minted token). For a replicated 0.11 request
    /// the change runs in the background: if it has not committed within
    /// `cluster.write_timeout` the client is told "not committed yet" (57),
    /// and the SDK's replays of the request wait on the same change —
    /// `build` runs once, the change is proposed once.
    pub async fn write_with<F, Fut>(&mut self, build: F) -> Result<(Applied, Option<String>)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(MetadataCommand, Option<String>)>>,
    {
        let metadata = &self.broker.metadata;
        let refuse = || Err(cut_off());
        let Some(request) = self.session.request else {
            if !metadata.in_contact() {
                return refuse();
            }
            let (command, note) = build().await?;
            self.admit(&command)?;
            return Ok((metadata.write(command).await?, note));
        };
        let (pending, wait) = match self.session.take_pending() {
            Some(pending) => (pending, REPLAY_WAIT),
            None => {
                if !metadata.in_contact() {
                    return refuse();
                }
                let (command, note) = build().await?;
                self.admit(&command)?;
                let metadata = metadata.clone();
                let proposal = metadata.proposal();
                // Spawned: it goes on while the client is told to replay.
                let task = tokio::spawn(async move {
                    metadata
                        .write_until(proposal, command, Instant::now() + BACKGROUND_WRITE)
                        .await
                        .map_err(|e| (e.code(), e.to_string()))
                });
                let outcome = async move {
                    task.await.unwrap_or_else(|e| {
                        Err((Error::NotCommitted(String::new()).code(), e.to_string()))
                    })
                }
                .boxed()
                .shared();
                let pending = PendingWrite {
                    request,
                    outcome,
                    note,
                };
                (pending, metadata_write_timeout(self.broker))
            }
        };
        match tokio::time::timeout(wait, pending.outcome.clone()).await {
            Ok(Ok(applied)) => Ok((applied, pending.note)),
            // Given up, outcome unknown: further replays are told so at
            // once (never proposed again), until the client gives up too.
            Ok(Err((code, message))) if code == Error::NotCommitted(String::new()).code() => {
                self.session.pending = Some(pending);
                Err(Error::NotCommitted(message))
            }
            Ok(Err((code, message))) => Err(Error::Rejected { code, message }),
            Err(_) => {
                self.session.pending = Some(pending);
                Err(Error::NotCommitted(
                    "the metadata change has not committed yet; replay to learn its outcome".into(),
                ))
            }
        }
    }
}

/// The refusal of a metadata change while this broker cannot reach the
/// metadata group's majority.
fn cut_off() -> Error {
    tracing::warn!("refused a metadata change: this broker is cut off from the cluster's majority");
    Error::NotAccepted(
        "this broker is cut off from the cluster's majority; nothing was changed".into(),
    )
}

/// How long a metadata change started by a client request keeps trying to
/// commit: less than the 30 s the 0.11 SDK replays a request, so its last
/// replays learn the outcome.
const BACKGROUND_WRITE: Duration = Duration::from_secs(25);
/// How long a replay waits for the change before answering "not committed
/// yet" again: briefly, so the SDK's last replay is answered inside its
/// 30 s budget.
const REPLAY_WAIT: Duration = Duration::from_millis(5);

fn metadata_write_timeout(broker: &Broker) -> Duration {
    broker
        .cluster
        .as_ref()
        .map_or(Duration::from_secs(5), |c| c.write_timeout)
}

/// Refuse option keys outside `allowed`, naming the first one: a key that
/// is stored but ignored would silently give the client defaults.
pub fn reject_option_keys(options: &WireOptions, allowed: &[&str]) -> Result<()> {
    for entry in options {
        let key = String::from_utf8_lossy(entry.key);
        if !allowed.contains(&key.as_ref()) {
            return Err(Error::UnsupportedOptionKey(key.into_owned()));
        }
    }
    Ok(())
}

/// Decode a whole request body as `T`; trailing bytes are an error.
pub fn decode<T: WireDecode>(body: &[u8]) -> Result<T> {
    let (value, consumed) = T::decode(body)?;
    if consumed != body.len() {
        return Err(Error::InvalidFormat(format!(
            "{} trailing bytes after the request",
            body.len() - consumed
        )));
    }
    Ok(value)
}

/// Store a SendMessages body this broker encoded itself (from a 0.10
/// send or a REST body) and acknowledge it into `out`, as
/// [`dispatch`] would a client's: its layout and limits are checked, its
/// checksums not hashed again — they were computed from its payloads a
/// moment ago.
pub async fn send_encoded(
    ctx: &mut Context<'_>,
    body: &mut [u8],
    out: &mut BytesMut,
) -> Result<()> {
    if !ctx.session.is_authenticated() {
        return Err(Error::Unauthenticated);
    }
    messages::send_messages(ctx, body, out, BatchIntegrity::LayoutOnly).await
}

/// Run the command `code` with request `body`, writing the reply body to
/// `out`. Login is handled by the connection (it shapes the session).
pub async fn dispatch(
    ctx: &mut Context<'_>,
    code: u32,
    body: &mut [u8],
    out: &mut BytesMut,
) -> Result<()> {
    let command = Command::from_code(code);
    if command != Some(Command::Ping) && !ctx.session.is_authenticated() {
        return Err(Error::Unauthenticated);
    }
    let Some(command) = command else {
        return Err(Error::FeatureUnavailable(
            "command not supported by this broker yet",
        ));
    };
    if command.kind() == Kind::Read {
        ctx.broker.metadata.sync().await;
    }
    use Command as C;
    match command {
        C::Ping => Ok(()),
        C::LoginRegister | C::LoginRegisterWithPat | C::LoginUser | C::LoginWithPat | C::Logout => {
            // The connection handles these before dispatching.
            Err(Error::InvalidCommand)
        }
        C::GetStats => system::get_stats(ctx, out).await,
        C::GetClusterMetadata => system::get_cluster_metadata(ctx, out),
        C::GetMe => system::get_me(ctx, out),
        C::GetClient => system::get_client(ctx, body, out),
        C::GetClients => system::get_clients(ctx, out),
        C::DescribeOptions => system::describe_options(body, out),

        C::GetStream => streams::get_stream(ctx, body, out).await,
        C::GetStreams => streams::get_streams(ctx, out).await,
        C::CreateStream => streams::create_stream(ctx, body, out).await,
        C::UpdateStream => streams::update_stream(ctx, body).await,
        C::DeleteStream => streams::delete_stream(ctx, body).await,
        C::PurgeStream => streams::purge_stream(ctx, body).await,

        C::GetTopic => topics::get_topic(ctx, body, out).await,
        C::GetTopics => topics::get_topics(ctx, body, out).await,
        C::CreateTopic => topics::create_topic(ctx, body, out).await,
        C::UpdateTopic => topics::update_topic(ctx, body).await,
        C::DeleteTopic => topics::delete_topic(ctx, body).await,
        C::PurgeTopic => topics::purge_topic(ctx, body).await,

        C::CreatePartitions => partitions::create_partitions(ctx, body).await,
        C::DeletePartitions => partitions::delete_partitions(ctx, body).await,
        C::DeleteSegments => partitions::delete_segments(ctx, body, out).await,

        C::GetUser => users::get_user(ctx, body, out),
        C::GetUsers => users::get_users(ctx, out),
        C::CreateUser => users::create_user(ctx, body, out).await,
        C::UpdateUser => users::update_user(ctx, body).await,
        C::DeleteUser => users::delete_user(ctx, body).await,
        C::UpdatePermissions => users::update_permissions(ctx, body).await,
        C::ChangePassword => users::change_password(ctx, body).await,

        C::GetPersonalAccessTokens => personal_access_tokens::get_tokens(ctx, out),
        C::CreatePersonalAccessToken => personal_access_tokens::create_token(ctx, body, out).await,
        C::DeletePersonalAccessToken => personal_access_tokens::delete_token(ctx, body).await,

        C::SendMessages => messages::send_messages(ctx, body, out, BatchIntegrity::Verify).await,
        C::PollMessages | C::PollMessagesOnPrimary => {
            messages::poll_messages(ctx, code, body, out).await
        }
        C::FlushUnsavedBuffer => Err(Error::FeatureUnavailable(
            "every acknowledged batch is already written; FlushUnsavedBuffer is not part of 0.11",
        )),

        C::GetConsumerOffset => consumer_offsets::get_consumer_offset(ctx, body, out).await,
        C::StoreConsumerOffset => consumer_offsets::store_consumer_offset(ctx, body, out).await,
        C::DeleteConsumerOffset => consumer_offsets::delete_consumer_offset(ctx, body, out).await,

        C::GetConsumerGroup => consumer_groups::get_consumer_group(ctx, body, out),
        C::GetConsumerGroups => consumer_groups::get_consumer_groups(ctx, body, out),
        C::CreateConsumerGroup => consumer_groups::create_consumer_group(ctx, body, out).await,
        C::DeleteConsumerGroup => consumer_groups::delete_consumer_group(ctx, body).await,
        C::JoinConsumerGroup => consumer_groups::join_consumer_group(ctx, body).await,
        C::LeaveConsumerGroup => consumer_groups::leave_consumer_group(ctx, body).await,
        C::SyncConsumerGroup => consumer_groups::sync_consumer_group(ctx, body, out),

        C::GetPollRouting => routing::get_poll_routing(ctx, body, out),
        C::GetConsumerOffsetRouting => routing::get_consumer_offset_routing(ctx, body, out),
        C::AttachConsumerSession => routing::attach_consumer_session(ctx, body).await,
    }
}
