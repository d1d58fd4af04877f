//! Users, their permissions and personal access tokens: authentication
//! against the replicated users, and the changes that become metadata
//! commands. Checks that need no state (lengths, hashing) happen here,
//! before proposing; checks against the state happen when the command is
//! applied (`metadata::apply`).

use super::{Broker, now_micros};
use crate::auth::guard::Checked;
use crate::auth::{self, Action, Permissions, ROOT_USER_ID, tokens};
use crate::error::{Error, Result};
use crate::metadata::apply::{USER_ACTIVE, USER_INACTIVE};
use crate::metadata::{Applied, Ident, MetadataCommand, MetadataState, TokenMeta, UserMeta};

/// Length limits, as upstream's servers and SDKs enforce them.
const USERNAME_LENGTH: std::ops::RangeInclusive<usize> = 3..=50;
const PASSWORD_LENGTH: std::ops::RangeInclusive<usize> = 3..=100;
const TOKEN_NAME_LENGTH: std::ops::RangeInclusive<usize> = 3..=30;

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

impl Broker {
    /// Create the root user on the cluster's first start. Returns whether
    /// this call created it.
    pub async fn ensure_root_user(&self, username: &str, password: &str) -> Result<bool> {
        if self.metadata.read(|m| !m.users.is_empty()) {
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
        match self
            .metadata
            .write(MetadataCommand::CreateRootUser { user })
            .await?
        {
            Applied::RootUser(created) => Ok(created),
            _ => Ok(false),
        }
    }

    /// Check a username and password from a client at `source`; returns
    /// the user id. A user this
    /// broker does not know yet (created through another broker a moment
    /// ago) is looked up again after catching up with the leader.
    pub async fn authenticate(
        &self,
        source: std::net::IpAddr,
        username: &str,
        password: &str,
    ) -> Result<u32> {
        let mut user = self.metadata.read(|m| m.user_by_name(username).cloned());
        if user.is_none() {
            self.metadata.sync().await;
            user = self.metadata.read(|m| m.user_by_name(username).cloned());
        }
        // Argon2 is deliberately slow: bounded, off the async workers, and
        // the same work for a name nobody has (auth::guard).
        let stored = user.as_ref().map(|u| u.password_hash.as_str());
        if self.login_guard.check(source, stored, password).await != Checked::Right {
            tokio::time::sleep(auth::guard::REFUSAL_DELAY).await;
            return Err(Error::InvalidCredentials);
        }
        let user = user.ok_or(Error::InvalidCredentials)?;
        if user.status != USER_ACTIVE {
            return Err(Error::UserInactive);
        }
        Ok(user.id)
    }

    /// Check a raw personal access token; returns its user's id.
    pub async fn authenticate_token(&self, raw: &str) -> Result<u32> {
        let hash = tokens::hash(raw);
        let check = |m: &MetadataState| {
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
        };
        match self.metadata.read(check) {
            Err(Error::InvalidPersonalAccessToken) => {
                self.metadata.sync().await;
                self.metadata.read(check)
            }
            other => other,
        }
    }

    /// May `user_id` do `action`? Root always may. A user deleted or
    /// deactivated since logging in is no longer authenticated.
    pub fn authorize(&self, user_id: u32, action: Action) -> Result<()> {
        if user_id == ROOT_USER_ID {
            return Ok(());
        }
        self.metadata.read(|m| check_permission(m, user_id, action))
    }

    pub fn user(&self, id: &Ident) -> Option<UserMeta> {
        self.metadata.read(|m| {
            let id = m.resolve_user(id).ok()?;
            m.users.get(&id).cloned()
        })
    }

    /// The command creating a user (the password hashed off the async
    /// workers: Argon2 is deliberately slow).
    pub async fn create_user_command(
        username: &str,
        password: &str,
        status: u8,
        permissions: Option<Permissions>,
    ) -> Result<MetadataCommand> {
        validate_username(username)?;
        validate_password(password)?;
        validate_status(status)?;
        let password = password.to_string();
        let password_hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        Ok(MetadataCommand::CreateUser {
            user: UserMeta {
                id: 0,
                username: username.to_string(),
                password_hash,
                status,
                created_at: now_micros(),
                permissions,
                tokens: Default::default(),
            },
        })
    }

    /// Rename and/or (de)activate a user. The root user cannot be
    /// deactivated: that would lock everyone out of administration.
    pub fn update_user_command(
        id: &Ident,
        username: Option<&str>,
        status: Option<u8>,
    ) -> Result<MetadataCommand> {
        if let Some(name) = username {
            validate_username(name)?;
        }
        if let Some(status) = status {
            validate_status(status)?;
        }
        Ok(MetadataCommand::UpdateUser {
            user: id.clone(),
            username: username.map(str::to_string),
            status,
        })
    }

    /// Change a password; the current one must be given, even by an admin
    /// (as upstream).
    pub async fn change_password_command(
        &self,
        id: &Ident,
        current: &str,
        new: &str,
    ) -> Result<MetadataCommand> {
        validate_password(new)?;
        let (user_id, expected_hash) = self.metadata.read(|m| {
            let id = m.resolve_user(id)?;
            Ok::<_, Error>((id, m.users[&id].password_hash.clone()))
        })?;
        let (current, new, hash) = (current.to_string(), new.to_string(), expected_hash.clone());
        let password_hash = tokio::task::spawn_blocking(move || {
            auth::verify_password(&current, &hash).then(|| auth::hash_password(&new))
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?
        .ok_or(Error::InvalidCredentials)?;
        Ok(MetadataCommand::ChangePassword {
            user_id,
            expected_hash,
            password_hash,
        })
    }

    /// A new token for `user_id`: the command storing its hash, and the
    /// raw token (shown once).
    pub fn create_token_command(
        user_id: u32,
        name: &str,
        expiry: u64,
    ) -> Result<(MetadataCommand, String)> {
        if !TOKEN_NAME_LENGTH.contains(&name.len()) {
            return Err(Error::InvalidPersonalAccessTokenName);
        }
        let (raw, hash) = tokens::mint();
        let token = TokenMeta {
            hash,
            expiry_at: tokens::expiry_at(now_micros(), expiry),
        };
        let command = MetadataCommand::CreateToken {
            user_id,
            name: name.to_string(),
            token,
        };
        Ok((command, raw))
    }

    /// Remove every expired token (the metadata leader's housekeeping).
    /// Returns how many were removed.
    pub async fn delete_expired_tokens(&self) -> Result<usize> {
        let now = now_micros();
        let any = self.metadata.read(|m| {
            m.users.values().any(|u| {
                u.tokens
                    .values()
                    .any(|t| t.expiry_at.is_some_and(|at| at <= now))
            })
        });
        if !any {
            return Ok(0);
        }
        match self
            .metadata
            .write(MetadataCommand::DeleteExpiredTokens { now })
            .await?
        {
            Applied::Removed(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }
}

pub(crate) fn unexpected(applied: Applied) -> Error {
    Error::Io(std::io::Error::other(format!(
        "unexpected metadata outcome {applied:?}"
    )))
}
