//! Warnings about failures that repeat. A broker refused by a peer (or
//! refusing one) for a setting to fix — another cluster's name, a wrong
//! secret, a cluster founded apart — sees the same failure on every retry,
//! several times a second: worth a warning the first time and once in a
//! while after, a debug line otherwise.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often one repeated failure is logged as a warning.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(10);
/// Failures remembered at most (keys come from remote addresses, which a
/// scan of the port could make many of).
const MAX_KEYS: usize = 1024;

/// When each kind of failure was last warned of.
#[derive(Debug)]
pub struct Repeats<K> {
    warned: Mutex<HashMap<K, Instant>>,
}

impl<K> Default for Repeats<K> {
    fn default() -> Self {
        Self {
            warned: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash> Repeats<K> {
    /// Whether this failure deserves a warning: the first of its key, or
    /// the first since [`WARNING_INTERVAL`] passed.
    pub fn is_news(&self, key: K) -> bool {
        let mut warned = self
            .warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if warned.len() >= MAX_KEYS {
            warned.retain(|_, at| now.duration_since(*at) < WARNING_INTERVAL);
        }
        match warned.get(&key) {
            Some(at) if now.duration_since(*at) < WARNING_INTERVAL => false,
            _ => {
                // Still full of recent keys: warn without remembering.
                if warned.len() < MAX_KEYS {
                    warned.insert(key, now);
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_is_news_once_per_key_within_the_interval() {
        let repeats = Repeats::default();
        assert!(repeats.is_news("wrong secret"));
        assert!(!repeats.is_news("wrong secret"));
        assert!(repeats.is_news("another cluster"));
        assert!(!repeats.is_news("another cluster"));
    }

    #[test]
    fn old_failures_make_room_for_new_ones() {
        let repeats = Repeats::default();
        for key in 0..MAX_KEYS {
            assert!(repeats.is_news(key));
        }
        // Full of recent keys: a new one is still warned of, and not kept.
        assert!(repeats.is_news(MAX_KEYS));
        assert!(repeats.is_news(MAX_KEYS));
        let past = Instant::now() - WARNING_INTERVAL;
        for at in repeats.warned.lock().unwrap().values_mut() {
            *at = past;
        }
        assert!(repeats.is_news(MAX_KEYS));
        assert!(!repeats.is_news(MAX_KEYS));
        assert_eq!(repeats.warned.lock().unwrap().len(), 1);
    }
}
