//! Personal access tokens: long-lived secrets a user mints for programs.
//!
//! The raw token is returned once, at creation; only its BLAKE3 hash is
//! stored (upstream's scheme, via `iggy_common`), so a leaked data directory
//! does not leak usable tokens. Logging in with a token looks it up by hash.

use iggy_common::PersonalAccessToken;

/// Most tokens one user may hold (upstream's default cap).
pub const MAX_TOKENS_PER_USER: usize = 100;

/// A fresh raw token and the hash to store.
pub fn mint() -> (String, String) {
    PersonalAccessToken::mint_raw_and_hash()
}

pub fn hash(raw: &str) -> String {
    PersonalAccessToken::hash_token(raw)
}

/// When a token created at `now_us` with the wire `expiry` (µs; 0 = server
/// default, `u64::MAX` = never) expires; `None` = never. The server default
/// is "never", as upstream.
pub fn expiry_at(now_us: u64, expiry: u64) -> Option<u64> {
    match expiry {
        0 | u64::MAX => None,
        duration => Some(now_us.saturating_add(duration)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_the_hash_matches() {
        let (raw, stored) = mint();
        let (other, _) = mint();
        assert_ne!(raw, other);
        assert_ne!(raw, stored);
        assert_eq!(hash(&raw), stored);
    }

    #[test]
    fn expiry_is_relative_to_creation() {
        assert_eq!(expiry_at(1_000, 0), None);
        assert_eq!(expiry_at(1_000, u64::MAX), None);
        assert_eq!(expiry_at(1_000, 500), Some(1_500));
    }
}
