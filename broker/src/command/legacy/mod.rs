//! The 0.10 protocol generation, served by the 0.11 handlers.
//!
//! Most 0.10 request and reply bodies are byte-identical to 0.11's, so they
//! go straight to [`super::dispatch`]. The rest are translated here, once,
//! at the edge — the broker itself only knows 0.11:
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

use super::login::{login_user_legacy, login_with_token_legacy, logout};
use super::{Context, dispatch as dispatch_011};
use crate::error::{Error, Result};
use bytes::{BufMut, BytesMut};
use iggy_binary_protocol::codes::*;

/// Buffers reused across the requests of one connection: a translated
/// 0.11 request and the 0.11 reply before it is translated back.
#[derive(Default)]
pub struct Scratch {
    request: BytesMut,
    reply: BytesMut,
}

/// Run legacy command `code`, appending the 0.10 reply body to `out`.
pub fn dispatch(
    ctx: &mut Context<'_>,
    code: u32,
    body: &mut BytesMut,
    scratch: &mut Scratch,
    out: &mut BytesMut,
) -> Result<()> {
    match code {
        PING_CODE => Ok(()),
        LOGIN_USER_CODE => login_user_legacy(ctx, body, out),
        LOGIN_WITH_PERSONAL_ACCESS_TOKEN_CODE => login_with_token_legacy(ctx, body, out),
        LOGOUT_USER_CODE => {
            logout(ctx);
            Ok(())
        }
        _ if !ctx.session.is_authenticated() => Err(Error::Unauthenticated),

        SEND_MESSAGES_CODE => messages::send(ctx, body, scratch),
        POLL_MESSAGES_CODE => messages::poll(ctx, body, scratch, out),
        // 0.11 added an acknowledgement level; 1 = quorum, the default.
        STORE_CONSUMER_OFFSET_CODE | DELETE_CONSUMER_OFFSET_CODE => {
            body.put_u8(1);
            dispatch_011(ctx, code, body, out)
        }
        // Every acknowledged batch is already written as the fsync policy
        // says; there is no unsaved buffer to flush.
        FLUSH_UNSAVED_BUFFER_CODE => Ok(()),

        CREATE_TOPIC_CODE => topics::create(ctx, body, scratch, out),
        UPDATE_TOPIC_CODE => topics::update(ctx, body, scratch),

        GET_STREAM_CODE | GET_STREAMS_CODE | CREATE_STREAM_CODE | GET_TOPIC_CODE
        | GET_TOPICS_CODE | GET_USER_CODE | GET_USERS_CODE | CREATE_USER_CODE => {
            scratch.reply.clear();
            dispatch_011(ctx, code, body, &mut scratch.reply)?;
            replies::translate(ctx, code, body, &scratch.reply, out)
        }

        // Commands of the 0.11 generation only.
        LOGIN_REGISTER_CODE | LOGIN_REGISTER_WITH_PAT_CODE | SYNC_CONSUMER_GROUP_CODE => {
            Err(Error::InvalidCommand)
        }
        _ => dispatch_011(ctx, code, body, out),
    }
}

/// Encode a 0.11 `request` and run it with the 0.11 handler; the reply is
/// left in `scratch.reply`.
fn run_011(
    ctx: &mut Context<'_>,
    code: u32,
    request: &impl iggy_binary_protocol::WireEncode,
    scratch: &mut Scratch,
) -> Result<()> {
    scratch.request.clear();
    request.encode(&mut scratch.request);
    scratch.reply.clear();
    dispatch_011(ctx, code, &mut scratch.request, &mut scratch.reply)
}

/// The status a 0.10 client understands for `e`. Codes added in 0.11 would
/// reach it as a generic error, so they are mapped to their 0.10 meaning.
pub fn status_code(e: &Error) -> u32 {
    match e {
        Error::UnsupportedOptionKey(_) | Error::InvalidOptionValue(_) => {
            Error::InvalidFormat(String::new()).code()
        }
        other => other.code(),
    }
}
