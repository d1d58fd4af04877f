//! The 0.10 protocol generation, served by the 0.11 handlers.
//!
//! Most 0.10 request and reply bodies are byte-identical to 0.11's, so they
//! go straight to [`super::dispatch`]. The rest ([`Legacy::Adapted`] in the
//! command table) are translated here, once, at the edge — the broker itself
//! only knows 0.11:
//!
//! - requests: CreateTopic/UpdateTopic carry fixed settings instead of an
//!   options block ([`topics`]); Store/DeleteConsumerOffset lack the trailing
//!   ack byte; SendMessages uses 64-byte message headers ([`messages`]);
//! - replies: stream, topic and user records have no options blocks, topic
//!   headers carry a replication factor, GetTopics has no count ([`replies`]);
//!   PollMessages returns 64-byte message headers ([`messages`]);
//! - group polls name no partition: the broker picks the member's
//!   partitions round-robin ([`messages`]);
//! - status codes that 0.10 does not know are mapped to ones it does.
//!
//! Translation allocates nothing per request once the [`Scratch`] buffers
//! have grown, except SendMessages, which builds its message list.

mod messages;
mod replies;
mod topics;

pub use messages::reencode_send;

use super::login::{login_user_legacy, login_with_token_legacy, logout};
use super::table::{Command, Legacy};
use super::{Context, dispatch as dispatch_011};
use crate::error::{Error, Result};
use bytes::{BufMut, BytesMut};

/// Buffers reused across the requests of one connection: a translated
/// 0.11 request and the 0.11 reply before it is translated back.
#[derive(Default)]
pub struct Scratch {
    request: BytesMut,
    reply: BytesMut,
}

impl Scratch {
    /// Both buffers, for a connection that gives back what grew while it
    /// is idle (their contents do not outlive a request).
    pub fn buffers(&mut self) -> [&mut BytesMut; 2] {
        [&mut self.request, &mut self.reply]
    }
}

/// Run legacy command `code`, appending the 0.10 reply body to `out`.
pub async fn dispatch(
    ctx: &mut Context<'_>,
    code: u32,
    body: &mut BytesMut,
    scratch: &mut Scratch,
    out: &mut BytesMut,
) -> Result<()> {
    let command = Command::from_code(code);
    match command.map(Command::legacy) {
        Some(Legacy::Unsupported) => return Err(Error::InvalidCommand),
        // Unknown to this broker: the 0.11 dispatcher says so.
        None => return dispatch_011(ctx, code, body, out).await,
        Some(Legacy::Same) => {
            if command == Some(Command::Logout) {
                logout(ctx);
                return Ok(());
            }
            return dispatch_011(ctx, code, body, out).await;
        }
        Some(Legacy::Adapted) => {}
    }
    let command = command.expect("adapted commands are known");
    use Command as C;
    match command {
        C::LoginUser => return login_user_legacy(ctx, body, out).await,
        C::LoginWithPat => return login_with_token_legacy(ctx, body, out).await,
        _ if !ctx.session.is_authenticated() => return Err(Error::Unauthenticated),
        _ => {}
    }
    match command {
        C::SendMessages => messages::send(ctx, body, scratch).await,
        C::PollMessages => messages::poll(ctx, body, scratch, out).await,
        // 0.11 added an acknowledgement level; 1 = quorum, the default.
        C::StoreConsumerOffset | C::DeleteConsumerOffset => {
            body.put_u8(1);
            dispatch_011(ctx, code, body, out).await
        }
        // Every acknowledged batch is already written as the fsync policy
        // says; there is no unsaved buffer to flush.
        C::FlushUnsavedBuffer => Ok(()),
        C::CreateTopic => topics::create(ctx, body, scratch, out).await,
        C::UpdateTopic => topics::update(ctx, body, scratch).await,
        C::GetStream
        | C::GetStreams
        | C::CreateStream
        | C::GetTopic
        | C::GetTopics
        | C::GetUser
        | C::GetUsers
        | C::CreateUser => {
            scratch.reply.clear();
            dispatch_011(ctx, code, body, &mut scratch.reply).await?;
            replies::translate(ctx, code, body, &scratch.reply, out)
        }
        other => unreachable!("{other:?} is marked Adapted without an adapter"),
    }
}

/// Encode a 0.11 `request` and run it with the 0.11 handler; the reply is
/// left in `scratch.reply`.
async fn run_011(
    ctx: &mut Context<'_>,
    code: u32,
    request: &impl iggy_binary_protocol::WireEncode,
    scratch: &mut Scratch,
) -> Result<()> {
    scratch.request.clear();
    request.encode(&mut scratch.request);
    scratch.reply.clear();
    dispatch_011(ctx, code, &mut scratch.request, &mut scratch.reply).await
}

/// The status a 0.10 client understands for `e`. Codes added in 0.11 would
/// reach it as a generic error, so they are mapped to their 0.10 meaning.
pub fn status_code(e: &Error) -> u32 {
    const UNSUPPORTED_OPTION_KEY: u32 = 4041;
    const INVALID_OPTION_VALUE: u32 = 4042;
    const TRANSIENT_NOT_COMMITTED: u32 = 57;
    const TRANSIENT_NOT_ACCEPTED: u32 = 58;
    match e.code() {
        UNSUPPORTED_OPTION_KEY | INVALID_OPTION_VALUE => Error::InvalidFormat(String::new()).code(),
        // No replay in 0.10: a generic error; the log says why.
        TRANSIENT_NOT_COMMITTED | TRANSIENT_NOT_ACCEPTED => 1,
        other => other,
    }
}
