//! Personal access tokens of the logged-in user: list, create, delete.
//! They need no permission: a user manages only their own tokens.

use super::{Context, decode};
use crate::error::{Error, Result};
use bytes::BytesMut;
use iggy_binary_protocol::requests::personal_access_tokens::{
    CreatePersonalAccessTokenRequest, DeletePersonalAccessTokenRequest,
};
use iggy_binary_protocol::responses::personal_access_tokens::{
    GetPersonalAccessTokensResponse, PersonalAccessTokenResponse, RawPersonalAccessTokenResponse,
};
use iggy_binary_protocol::{WireEncode, WireName};

fn current_user(ctx: &Context<'_>) -> Result<u32> {
    ctx.session.user_id.ok_or(Error::Unauthenticated)
}

pub fn get_tokens(ctx: &mut Context<'_>, out: &mut BytesMut) -> Result<()> {
    let user_id = current_user(ctx)?;
    let tokens = ctx.broker.metadata.read(|m| {
        m.users.get(&user_id).map_or_else(Vec::new, |user| {
            user.tokens
                .iter()
                .map(|(name, token)| PersonalAccessTokenResponse {
                    name: WireName::new(name.as_str()).expect("stored names are valid"),
                    // 0 means "never expires" on the wire.
                    expiry_at: token.expiry_at.unwrap_or(0),
                })
                .collect()
        })
    });
    GetPersonalAccessTokensResponse { tokens }.encode(out);
    Ok(())
}

pub async fn create_token(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let user_id = current_user(ctx)?;
    let request: CreatePersonalAccessTokenRequest = decode(body)?;
    let proposal = ctx.proposal();
    let raw = ctx
        .broker
        .create_token(proposal, user_id, request.name.as_str(), request.expiry)
        .await?;
    RawPersonalAccessTokenResponse {
        token: WireName::new(raw).expect("minted tokens are valid names"),
    }
    .encode(out);
    Ok(())
}

pub async fn delete_token(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let user_id = current_user(ctx)?;
    let request: DeletePersonalAccessTokenRequest = decode(body)?;
    let proposal = ctx.proposal();
    ctx.broker
        .delete_token(proposal, user_id, request.name.as_str())
        .await
}
