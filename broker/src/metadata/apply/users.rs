//! Users, their passwords and permissions, and personal access tokens.
//! Password hashes and token secrets are made by the proposer (hashing is
//! slow and salted, so it cannot be part of a deterministic step); only
//! their hashes travel in the log.

use super::USER_ACTIVE;
use crate::auth::{Permissions, ROOT_USER_ID, tokens};
use crate::error::{Error, Result};
use crate::metadata::command::{Applied, Ident};
use crate::metadata::state::{MetadataState, TokenMeta, UserMeta};

impl MetadataState {
    /// The root user, unless any user exists already (a first start).
    pub(super) fn create_root_user(&mut self, user: &UserMeta) -> Result<Applied> {
        if !self.users.is_empty() {
            return Ok(Applied::RootUser(false));
        }
        let mut user = user.clone();
        user.id = ROOT_USER_ID;
        self.users.insert(ROOT_USER_ID, user);
        self.next_user_id = self.next_user_id.max(ROOT_USER_ID + 1);
        Ok(Applied::RootUser(true))
    }

    /// `user` under the next free id, without tokens.
    pub(super) fn create_user(&mut self, user: &UserMeta) -> Result<Applied> {
        if self.user_by_name(&user.username).is_some() {
            return Err(Error::UserAlreadyExists);
        }
        let id = self.next_user_id;
        let mut user = user.clone();
        user.id = id;
        user.tokens.clear();
        self.users.insert(id, user);
        self.next_user_id = id + 1;
        Ok(Applied::User(id))
    }

    pub(super) fn update_user(
        &mut self,
        user: &Ident,
        username: Option<&str>,
        status: Option<u8>,
    ) -> Result<Applied> {
        let id = self.resolve_user(user)?;
        if id == ROOT_USER_ID && status.is_some_and(|s| s != USER_ACTIVE) {
            return Err(Error::InvalidUserStatus);
        }
        if let Some(name) = username
            && self.user_by_name(name).is_some_and(|u| u.id != id)
        {
            return Err(Error::UserAlreadyExists);
        }
        let meta = self.users.get_mut(&id).expect("resolved");
        if let Some(name) = username {
            meta.username = name.to_owned();
        }
        if let Some(status) = status {
            meta.status = status;
        }
        Ok(Applied::Done)
    }

    pub(super) fn delete_user(&mut self, user: &Ident) -> Result<Applied> {
        let id = self.resolve_user(user)?;
        if id == ROOT_USER_ID {
            return Err(Error::CannotDeleteUser(id));
        }
        self.users.remove(&id);
        Ok(Applied::Done)
    }

    /// The proposer checked the old password against `expected_hash`: a
    /// change made by someone else since then makes this one fail.
    pub(super) fn change_password(
        &mut self,
        user_id: u32,
        expected_hash: &str,
        password_hash: &str,
    ) -> Result<Applied> {
        let user = self
            .users
            .get_mut(&user_id)
            .ok_or_else(|| Error::ResourceNotFound(format!("user {user_id}")))?;
        if user.password_hash != expected_hash {
            return Err(Error::InvalidCredentials);
        }
        user.password_hash = password_hash.to_owned();
        Ok(Applied::Done)
    }

    pub(super) fn update_permissions(
        &mut self,
        user: &Ident,
        permissions: Option<&Permissions>,
    ) -> Result<Applied> {
        let id = self.resolve_user(user)?;
        if id == ROOT_USER_ID {
            return Err(Error::CannotChangePermissions(id));
        }
        self.users.get_mut(&id).expect("resolved").permissions = permissions.cloned();
        Ok(Applied::Done)
    }

    pub(super) fn create_token(
        &mut self,
        user_id: u32,
        name: &str,
        token: &TokenMeta,
    ) -> Result<Applied> {
        let user = self.users.get_mut(&user_id).ok_or(Error::Unauthenticated)?;
        if user.tokens.contains_key(name) {
            return Err(Error::PersonalAccessTokenAlreadyExists(name.to_owned()));
        }
        if user.tokens.len() >= tokens::MAX_TOKENS_PER_USER {
            return Err(Error::PersonalAccessTokensLimitReached);
        }
        user.tokens.insert(name.to_owned(), token.clone());
        Ok(Applied::Done)
    }

    pub(super) fn delete_token(&mut self, user_id: u32, name: &str) -> Result<Applied> {
        let removed = self
            .users
            .get_mut(&user_id)
            .and_then(|u| u.tokens.remove(name));
        match removed {
            Some(_) => Ok(Applied::Done),
            None => Err(Error::ResourceNotFound(format!(
                "personal access token `{name}`"
            ))),
        }
    }

    /// Removes every token expired at `now` (the proposer's clock).
    pub(super) fn delete_expired_tokens(&mut self, now: u64) -> Applied {
        let mut removed = 0;
        for user in self.users.values_mut() {
            let before = user.tokens.len();
            user.tokens
                .retain(|_, t| t.expiry_at.is_none_or(|at| at > now));
            removed += before - user.tokens.len();
        }
        Applied::Removed(removed)
    }
}
