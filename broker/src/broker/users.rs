//! Users, their permissions and personal access tokens: validation against
//! the metadata, then one metadata operation per change.

use super::{Broker, now_micros};
use crate::auth::{self, Action, Permissions, ROOT_USER_ID, tokens};
use crate::error::{Error, Result};
use crate::metadata::{MetadataOp, MetadataState, TokenMeta, UserMeta};
use iggy_binary_protocol::WireIdentifier;

/// Length limits, as upstream's servers and SDKs enforce them.
const USERNAME_LENGTH: std::ops::RangeInclusive<usize> = 3..=50;
const PASSWORD_LENGTH: std::ops::RangeInclusive<usize> = 3..=100;
const TOKEN_NAME_LENGTH: std::ops::RangeInclusive<usize> = 3..=30;

/// Upstream user status codes.
pub const USER_ACTIVE: u8 = 1;
pub const USER_INACTIVE: u8 = 2;

fn validate_username(name: &str) -> Result<()> {
    if USERNAME_LENGTH.contains(&name.len()) {
        Ok(())
    } else {
        Err(Error::InvalidUsername)
    }
}

fn validate_password(password: &str) -> Result<()> {
    if PASSWORD_LENGTH.contains(&password.len()) {
        Ok(())
    } else {
        Err(Error::InvalidPassword)
    }
}

fn validate_status(status: u8) -> Result<()> {
    match status {
        USER_ACTIVE | USER_INACTIVE => Ok(()),
        _ => Err(Error::InvalidUserStatus),
    }
}

/// `authorize` against a metadata view the caller already holds.
pub fn check_permission(m: &MetadataState, user_id: u32, action: Action) -> Result<()> {
    if user_id == ROOT_USER_ID {
        return Ok(());
    }
    let user = m.users.get(&user_id).ok_or(Error::Unauthenticated)?;
    if user.status != USER_ACTIVE {
        return Err(Error::Unauthenticated);
    }
    if user.permissions.as_ref().is_some_and(|p| p.allows(action)) {
        Ok(())
    } else {
        Err(Error::Unauthorized)
    }
}

fn user_not_found(id: &WireIdentifier) -> Error {
    Error::ResourceNotFound(format!("user {id}"))
}

impl Broker {
    /// Create the root user on first start.
    pub fn ensure_root_user(&self, username: &str, password: &str) -> Result<bool> {
        let mut inner = self.inner.write().expect("broker lock");
        if !inner.metadata.state().users.is_empty() {
            return Ok(false);
        }
        let user = UserMeta {
            id: ROOT_USER_ID,
            username: username.to_string(),
            password_hash: auth::hash_password(password),
            status: USER_ACTIVE,
            created_at: now_micros(),
            permissions: None,
            tokens: Default::default(),
        };
        self.commit(&mut inner, MetadataOp::CreateUser { user })?;
        Ok(true)
    }

    /// Check a username and password; returns the user id.
    pub fn authenticate(&self, username: &str, password: &str) -> Result<u32> {
        let user = self
            .with_metadata(|m| m.user_by_name(username).cloned())
            .ok_or(Error::InvalidCredentials)?;
        if !auth::verify_password(password, &user.password_hash) {
            return Err(Error::InvalidCredentials);
        }
        if user.status != USER_ACTIVE {
            return Err(Error::UserInactive);
        }
        Ok(user.id)
    }

    /// Check a raw personal access token; returns its user's id.
    pub fn authenticate_token(&self, raw: &str) -> Result<u32> {
        let hash = tokens::hash(raw);
        self.with_metadata(|m| {
            let (user, name, token) = m
                .token_by_hash(&hash)
                .ok_or(Error::InvalidPersonalAccessToken)?;
            if token.expiry_at.is_some_and(|at| at <= now_micros()) {
                return Err(Error::PersonalAccessTokenExpired(name.to_string()));
            }
            if user.status != USER_ACTIVE {
                return Err(Error::UserInactive);
            }
            Ok(user.id)
        })
    }

    /// May `user_id` do `action`? Root always may. A user deleted or
    /// deactivated since logging in is no longer authenticated.
    pub fn authorize(&self, user_id: u32, action: Action) -> Result<()> {
        if user_id == ROOT_USER_ID {
            return Ok(());
        }
        self.with_metadata(|m| check_permission(m, user_id, action))
    }

    pub fn resolve_user(&self, m: &MetadataState, id: &WireIdentifier) -> Result<u32> {
        match id {
            WireIdentifier::Numeric(id) => m.users.contains_key(id).then_some(*id),
            WireIdentifier::String(name) => m.user_by_name(name).map(|u| u.id),
        }
        .ok_or_else(|| user_not_found(id))
    }

    pub fn user(&self, id: &WireIdentifier) -> Option<UserMeta> {
        self.with_metadata(|m| {
            let id = self.resolve_user(m, id).ok()?;
            m.users.get(&id).cloned()
        })
    }

    pub fn create_user(
        &self,
        username: &str,
        password: &str,
        status: u8,
        permissions: Option<Permissions>,
    ) -> Result<UserMeta> {
        validate_username(username)?;
        validate_password(password)?;
        validate_status(status)?;
        // Hash before taking the lock: Argon2 is deliberately slow.
        let password_hash = auth::hash_password(password);
        let mut inner = self.inner.write().expect("broker lock");
        let m = inner.metadata.state();
        if m.user_by_name(username).is_some() {
            return Err(Error::UserAlreadyExists);
        }
        let id = m.next_user_id;
        let user = UserMeta {
            id,
            username: username.to_string(),
            password_hash,
            status,
            created_at: now_micros(),
            permissions,
            tokens: Default::default(),
        };
        self.commit(&mut inner, MetadataOp::CreateUser { user })?;
        Ok(inner.metadata.state().users[&id].clone())
    }

    /// Rename and/or (de)activate a user. The root user cannot be
    /// deactivated: that would lock everyone out of administration.
    pub fn update_user(
        &self,
        id: &WireIdentifier,
        username: Option<&str>,
        status: Option<u8>,
    ) -> Result<()> {
        if let Some(name) = username {
            validate_username(name)?;
        }
        if let Some(status) = status {
            validate_status(status)?;
        }
        let mut inner = self.inner.write().expect("broker lock");
        let m = inner.metadata.state();
        let id = self.resolve_user(m, id)?;
        let user = &m.users[&id];
        if id == ROOT_USER_ID && status.is_some_and(|s| s != USER_ACTIVE) {
            return Err(Error::InvalidUserStatus);
        }
        let username = username.unwrap_or(&user.username).to_string();
        if m.user_by_name(&username).is_some_and(|u| u.id != id) {
            return Err(Error::UserAlreadyExists);
        }
        let status = status.unwrap_or(user.status);
        self.commit(
            &mut inner,
            MetadataOp::UpdateUser {
                id,
                username,
                status,
            },
        )
    }

    pub fn delete_user(&self, id: &WireIdentifier) -> Result<()> {
        let mut inner = self.inner.write().expect("broker lock");
        let id = self.resolve_user(inner.metadata.state(), id)?;
        if id == ROOT_USER_ID {
            return Err(Error::CannotDeleteUser(id));
        }
        self.commit(&mut inner, MetadataOp::DeleteUser { id })
    }

    /// Change a password; the current one must be given, even by an admin
    /// (as upstream).
    pub fn change_password(&self, id: &WireIdentifier, current: &str, new: &str) -> Result<()> {
        validate_password(new)?;
        let (id, hash) = self.with_metadata(|m| {
            let id = self.resolve_user(m, id)?;
            Ok::<_, Error>((id, m.users[&id].password_hash.clone()))
        })?;
        if !auth::verify_password(current, &hash) {
            return Err(Error::InvalidCredentials);
        }
        let password_hash = auth::hash_password(new);
        let mut inner = self.inner.write().expect("broker lock");
        if !inner.metadata.state().users.contains_key(&id) {
            return Err(Error::ResourceNotFound(format!("user {id}")));
        }
        self.commit(&mut inner, MetadataOp::ChangePassword { id, password_hash })
    }

    pub fn update_permissions(
        &self,
        id: &WireIdentifier,
        permissions: Option<Permissions>,
    ) -> Result<()> {
        let mut inner = self.inner.write().expect("broker lock");
        let id = self.resolve_user(inner.metadata.state(), id)?;
        if id == ROOT_USER_ID {
            return Err(Error::CannotChangePermissions(id));
        }
        self.commit(
            &mut inner,
            MetadataOp::UpdatePermissions { id, permissions },
        )
    }

    // ---- personal access tokens ----

    /// Mint a token for `user_id`; returns the raw token (shown once).
    pub fn create_token(&self, user_id: u32, name: &str, expiry: u64) -> Result<String> {
        if !TOKEN_NAME_LENGTH.contains(&name.len()) {
            return Err(Error::InvalidPersonalAccessTokenName);
        }
        let mut inner = self.inner.write().expect("broker lock");
        let user = inner
            .metadata
            .state()
            .users
            .get(&user_id)
            .ok_or(Error::Unauthenticated)?;
        if user.tokens.contains_key(name) {
            return Err(Error::PersonalAccessTokenAlreadyExists(name.to_string()));
        }
        if user.tokens.len() >= tokens::MAX_TOKENS_PER_USER {
            return Err(Error::PersonalAccessTokensLimitReached);
        }
        let (raw, hash) = tokens::mint();
        let token = TokenMeta {
            hash,
            expiry_at: tokens::expiry_at(now_micros(), expiry),
        };
        self.commit(
            &mut inner,
            MetadataOp::CreateToken {
                user_id,
                name: name.to_string(),
                token,
            },
        )?;
        Ok(raw)
    }

    pub fn delete_token(&self, user_id: u32, name: &str) -> Result<()> {
        let mut inner = self.inner.write().expect("broker lock");
        let exists = inner
            .metadata
            .state()
            .users
            .get(&user_id)
            .is_some_and(|u| u.tokens.contains_key(name));
        if !exists {
            return Err(Error::ResourceNotFound(format!(
                "personal access token `{name}`"
            )));
        }
        self.commit(
            &mut inner,
            MetadataOp::DeleteToken {
                user_id,
                name: name.to_string(),
            },
        )
    }

    /// Remove every expired token (the housekeeping loop calls this).
    /// Returns how many were removed.
    pub fn delete_expired_tokens(&self) -> Result<usize> {
        let now = now_micros();
        let mut inner = self.inner.write().expect("broker lock");
        let expired: Vec<(u32, String)> = inner
            .metadata
            .state()
            .users
            .values()
            .flat_map(|u| {
                u.tokens
                    .iter()
                    .filter(|(_, t)| t.expiry_at.is_some_and(|at| at <= now))
                    .map(|(name, _)| (u.id, name.clone()))
            })
            .collect();
        for (user_id, name) in &expired {
            self.commit(
                &mut inner,
                MetadataOp::DeleteToken {
                    user_id: *user_id,
                    name: name.clone(),
                },
            )?;
        }
        Ok(expired.len())
    }
}
