//! Personal access tokens of the logged-in user: list, create, delete.
//! They need no permission: a user manages only their own tokens.

use super::{Context, decode};
use crate::broker::Broker;
use crate::error::{Error, Result};
use crate::metadata::MetadataCommand;
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
    let build = || async {
        let (command, raw) =
            Broker::create_token_command(user_id, request.name.as_str(), request.expiry)?;
        Ok((command, Some(raw)))
    };
    let (_, raw) = ctx.write_with(build).await?;
    let raw = raw.expect("the raw token travels with the command");
    RawPersonalAccessTokenResponse {
        token: WireName::new(raw).expect("minted tokens are valid names"),
    }
    .encode(out);
    Ok(())
}

pub async fn delete_token(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let user_id = current_user(ctx)?;
    let request: DeletePersonalAccessTokenRequest = decode(body)?;
    let command = MetadataCommand::DeleteToken {
        user_id,
        name: request.name.to_string(),
    };
    ctx.write(command).await.map(drop)
}
