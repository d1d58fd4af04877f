//! Access tokens for the REST API: HS256 JSON Web Tokens (`jsonwebtoken`)
//! naming the user, with an expiry. Logging out or refreshing revokes the
//! presented token (its id is remembered until it would have expired).
//! The signing key is `http.jwt_secret`; unset, a cluster's brokers derive
//! one from the cluster's shared secret (so a token issued by one broker
//! works on every other, as clients behind one Service need), and a
//! standalone broker picks a random one per process. Revocation is
//! remembered by the broker that revoked the token.

use crate::broker::now_micros;
use crate::error::Error;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id.
    sub: u32,
    /// Expiry, seconds since the epoch.
    exp: u64,
    iat: u64,
    /// Token id, for revocation.
    jti: String,
}

/// A verified token: who, and which token (for revocation).
pub struct Bearer {
    pub user_id: u32,
    jti: String,
    exp: u64,
}

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    lifetime: Duration,
    /// Revoked token ids and when they expire anyway.
    revoked: Mutex<BTreeMap<String, u64>>,
}

fn now_secs() -> u64 {
    now_micros() / 1_000_000
}

impl Tokens {
    pub fn new(secret: &str, cluster_secret: Option<&[u8]>, lifetime: Duration) -> Self {
        let secret: Vec<u8> = match (secret.is_empty(), cluster_secret) {
            (false, _) => secret.as_bytes().to_vec(),
            (true, Some(cluster)) => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, cluster);
                ring::hmac::sign(&key, b"iggy http access tokens")
                    .as_ref()
                    .to_vec()
            }
            (true, None) => (0..32).map(|_| rand::random::<u8>()).collect(),
        };
        Self {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            lifetime,
            revoked: Mutex::new(BTreeMap::new()),
        }
    }

    /// A new token for `user_id`; returns it and its expiry (epoch seconds).
    pub fn issue(&self, user_id: u32) -> (String, u64) {
        let iat = now_secs();
        let exp = iat + self.lifetime.as_secs().max(1);
        let claims = Claims {
            sub: user_id,
            exp,
            iat,
            jti: format!("{:032x}", rand::random::<u128>()),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail");
        (token, exp)
    }

    /// Check signature, expiry and revocation.
    pub fn verify(&self, token: &str) -> Result<Bearer, Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| Error::Unauthenticated)?;
        let claims = data.claims;
        if self
            .revoked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(&claims.jti)
        {
            return Err(Error::Unauthenticated);
        }
        Ok(Bearer {
            user_id: claims.sub,
            jti: claims.jti,
            exp: claims.exp,
        })
    }

    /// Revoke a verified token; forget revocations that have expired.
    pub fn revoke(&self, bearer: &Bearer) {
        let now = now_secs();
        let mut revoked = self
            .revoked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        revoked.retain(|_, exp| *exp >= now);
        revoked.insert(bearer.jti.clone(), bearer.exp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_revoked_and_other_keys_are_refused() {
        let tokens = Tokens::new("", None, Duration::from_secs(60));
        let (token, exp) = tokens.issue(7);
        assert!(exp > now_secs());
        let bearer = tokens.verify(&token).unwrap();
        assert_eq!(bearer.user_id, 7);
        tokens.revoke(&bearer);
        assert!(tokens.verify(&token).is_err());

        let other = Tokens::new("", None, Duration::from_secs(60));
        let (foreign, _) = other.issue(7);
        assert!(tokens.verify(&foreign).is_err());
        assert!(tokens.verify("not.a.token").is_err());
    }
}
