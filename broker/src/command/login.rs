//! Login (register a session, with a password or a personal access token)
//! and logout.
//!
//! Login shapes the session itself, so the connection calls it directly
//! rather than through `dispatch`. Failures that end the session are
//! evictions; a wrong password is an ordinary error so the client can retry.

use super::{Context, decode};
use crate::error::{Error, Result};
use bytes::BytesMut;
use iggy_binary_protocol::consensus::EvictionReason;
use iggy_binary_protocol::requests::personal_access_tokens::LoginWithPersonalAccessTokenRequest;
use iggy_binary_protocol::requests::users::LoginRegisterRequest;
use iggy_binary_protocol::requests::users::LoginUserRequest;
use iggy_binary_protocol::requests::users::login_register_with_pat::LoginRegisterWithPatRequest;
use iggy_binary_protocol::responses::users::IdentityResponse;
use iggy_binary_protocol::responses::users::login_register::LoginRegisterResponse;
use iggy_binary_protocol::version::{IGGY_PROTOCOL_VERSION, is_protocol_compatible};
use iggy_binary_protocol::{ClientVersionInfo, WireDecode, WireEncode, WireName};
use secrecy::ExposeSecret;

/// How a login attempt ended.
pub enum LoginOutcome {
    /// Logged in; the reply body has been written.
    Ok,
    /// Refused with an error status; the session stays open.
    Refused(Error),
    /// The session must end with this eviction.
    Evict(EvictionReason),
}

pub async fn login_register(
    ctx: &mut Context<'_>,
    vsr_client: u128,
    body: &[u8],
    out: &mut BytesMut,
) -> LoginOutcome {
    let Ok((version, prefix_len)) = ClientVersionInfo::decode(body) else {
        return LoginOutcome::Evict(EvictionReason::MalformedLogin);
    };
    if !is_protocol_compatible(version.protocol_version) {
        return LoginOutcome::Evict(EvictionReason::IncompatibleProtocol);
    }
    let tail = &body[prefix_len..];
    // Both login kinds share the prefix; the password shape must consume the
    // body exactly, otherwise it is the token shape.
    let attempt = match LoginRegisterRequest::decode_after_prefix(version.clone(), tail) {
        Ok((request, used)) if used == tail.len() => {
            ctx.broker
                .authenticate(
                    ctx.session.address.ip(),
                    request.username.as_str(),
                    request.password.expose_secret(),
                )
                .await
        }
        _ => match LoginRegisterWithPatRequest::decode_after_prefix(version, tail) {
            Ok((request, used)) if used == tail.len() => {
                ctx.broker
                    .authenticate_token(request.token.expose_secret())
                    .await
            }
            _ => return LoginOutcome::Evict(EvictionReason::MalformedLogin),
        },
    };
    let user_id = match attempt {
        Ok(id) => id,
        Err(e) => {
            refused(ctx, &e);
            return LoginOutcome::Refused(e);
        }
    };
    start_session(ctx, user_id);
    ctx.session.vsr_client = vsr_client;
    LoginRegisterResponse {
        user_id,
        session: ctx.session.session,
        server_protocol_version: IGGY_PROTOCOL_VERSION,
        server_version: WireName::new(env!("CARGO_PKG_VERSION")).expect("version is a valid name"),
    }
    .encode(out);
    LoginOutcome::Ok
}

fn start_session(ctx: &mut Context<'_>, user_id: u32) {
    ctx.session.user_id = Some(user_id);
    ctx.session.session = ctx.broker.clients.new_session();
    ctx.session.acting_for = None;
    ctx.broker
        .clients
        .set_user(ctx.session.client_id, Some(user_id));
}

/// Legacy (0.10) LoginUser: username and password, reply `[user_id u32]`.
pub async fn login_user_legacy(
    ctx: &mut Context<'_>,
    body: &[u8],
    out: &mut BytesMut,
) -> Result<()> {
    let request: LoginUserRequest = decode(body)?;
    let user_id = ctx
        .broker
        .authenticate(
            ctx.session.address.ip(),
            request.username.as_str(),
            &request.password,
        )
        .await
        .inspect_err(|e| refused(ctx, e))?;
    start_session(ctx, user_id);
    IdentityResponse { user_id }.encode(out);
    Ok(())
}

/// Legacy (0.10) LoginWithPersonalAccessToken, reply `[user_id u32]`.
pub async fn login_with_token_legacy(
    ctx: &mut Context<'_>,
    body: &[u8],
    out: &mut BytesMut,
) -> Result<()> {
    let request: LoginWithPersonalAccessTokenRequest = decode(body)?;
    let user_id = ctx
        .broker
        .authenticate_token(request.token.as_str())
        .await
        .inspect_err(|e| refused(ctx, e))?;
    start_session(ctx, user_id);
    IdentityResponse { user_id }.encode(out);
    Ok(())
}

/// Log a refused login, at most once a second (a storm of them would
/// fill the log), saying how many others there were meanwhile.
fn refused(ctx: &Context<'_>, e: &Error) {
    if let Some(others) = ctx
        .broker
        .login_guard
        .log_refusal(std::time::Instant::now())
    {
        tracing::info!(
            client = ctx.session.client_id,
            address = %ctx.session.address,
            "login refused: {e} ({others} other logins refused since the last such line)"
        );
    }
}

pub fn logout(ctx: &mut Context<'_>) {
    ctx.session.user_id = None;
    ctx.session.session = 0;
    ctx.session.acting_for = None;
    ctx.broker.clients.set_user(ctx.session.client_id, None);
}
