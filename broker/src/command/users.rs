//! Users: get, list, create, update, delete, change password, update
//! permissions.

use super::{Context, decode, reject_option_keys};
use crate::auth::{Action, Permissions};
use crate::broker::Broker;
use crate::broker::users::unexpected;
use crate::error::Result;
use crate::metadata::{Applied, Ident, MetadataCommand, UserMeta};
use bytes::BytesMut;
use iggy_binary_protocol::requests::users::{
    ChangePasswordRequest, CreateUserRequest, DeleteUserRequest, GetUserRequest,
    UpdatePermissionsRequest, UpdateUserRequest,
};
use iggy_binary_protocol::responses::users::{GetUsersResponse, UserDetailsResponse, UserResponse};
use iggy_binary_protocol::{WireEncode, WireName, WireOptions, WirePermissions};
use iggy_common::UPDATABLE_USER_OPTION_KEYS;

fn user_response(user: &UserMeta) -> UserResponse {
    UserResponse {
        id: user.id,
        created_at: user.created_at,
        status: user.status,
        username: WireName::new(user.username.as_str()).expect("stored usernames are valid"),
        // Users have no option keys yet (upstream's catalog is empty), so
        // there is never a block to echo.
        options: WireOptions::empty(),
    }
}

fn encode_details(user: &UserMeta, out: &mut BytesMut) {
    UserDetailsResponse {
        user: user_response(user),
        permissions: user.permissions.as_ref().map(WirePermissions::from),
    }
    .encode(out);
}

pub fn get_user(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let request: GetUserRequest = decode(body)?;
    let Some(user) = ctx.broker.user(&Ident::from(&request.user_id)) else {
        // Not found: an empty body, which the SDK reads as `None`.
        return Ok(());
    };
    // Everyone may read their own user; others need read_users.
    if Some(user.id) != ctx.session.user_id {
        ctx.authorize(Action::ReadUsers)?;
    }
    encode_details(&user, out);
    Ok(())
}

pub fn get_users(ctx: &mut Context<'_>, out: &mut BytesMut) -> Result<()> {
    ctx.authorize(Action::ReadUsers)?;
    let users = ctx
        .broker
        .metadata
        .read(|m| m.users.values().map(user_response).collect());
    GetUsersResponse { users }.encode(out);
    Ok(())
}

pub async fn create_user(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    ctx.authorize(Action::ManageUsers)?;
    let request: CreateUserRequest = decode(body)?;
    reject_option_keys(&request.options, UPDATABLE_USER_OPTION_KEYS)?;
    let permissions = request.permissions.as_ref().map(Permissions::from);
    let build = || async {
        let command = Broker::create_user_command(
            request.username.as_str(),
            &request.password,
            request.status,
            permissions,
        )
        .await?;
        Ok((command, None))
    };
    let id = match ctx.write_with(build).await? {
        (Applied::User(id), _) => id,
        (other, _) => return Err(unexpected(other)),
    };
    if let Some(user) = ctx.broker.metadata.read(|m| m.users.get(&id).cloned()) {
        encode_details(&user, out);
    }
    Ok(())
}

pub async fn update_user(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    ctx.authorize(Action::ManageUsers)?;
    let request: UpdateUserRequest = decode(body)?;
    reject_option_keys(&request.options, UPDATABLE_USER_OPTION_KEYS)?;
    let command = Broker::update_user_command(
        &Ident::from(&request.user_id),
        request.username.as_ref().map(|n| n.as_str()),
        request.status,
    )?;
    ctx.write(command).await.map(drop)
}

pub async fn delete_user(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    ctx.authorize(Action::ManageUsers)?;
    let request: DeleteUserRequest = decode(body)?;
    let user = Ident::from(&request.user_id);
    ctx.write(MetadataCommand::DeleteUser { user })
        .await
        .map(drop)
}

pub async fn update_permissions(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    ctx.authorize(Action::ManageUsers)?;
    let request: UpdatePermissionsRequest = decode(body)?;
    let command = MetadataCommand::UpdatePermissions {
        user: Ident::from(&request.user_id),
        permissions: request.permissions.as_ref().map(Permissions::from),
    };
    ctx.write(command).await.map(drop)
}

/// Users may change their own password; changing another's needs
/// manage_users. Either way the current password must match.
pub async fn change_password(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: ChangePasswordRequest = decode(body)?;
    let user = Ident::from(&request.user_id);
    let target = ctx.broker.metadata.read(|m| m.resolve_user(&user))?;
    if Some(target) != ctx.session.user_id {
        ctx.authorize(Action::ManageUsers)?;
    }
    let broker = ctx.broker;
    let build = || async {
        let command = broker
            .change_password_command(&user, &request.current_password, &request.new_password)
            .await?;
        Ok((command, None))
    };
    ctx.write_with(build).await.map(drop)
}
