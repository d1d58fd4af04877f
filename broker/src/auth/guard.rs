//! Keeping password logins from taking the broker away from everyone.
//!
//! Argon2 is slow on purpose (tens of milliseconds of a core per check);
//! dozens of clients retrying a wrong password used to keep every core
//! busy hashing, so logged-in clients stalled and a right password took
//! seconds. Here:
//! - hashing runs off the async workers, at most one check per two cores
//!   at once, first come first served — and at most one at a time per
//!   source address, so one host cycling through many different wrong
//!   passwords queues behind itself, and a login from anywhere else waits
//!   for at most one of its checks;
//! - a password just refused for a user is refused again for
//!   [`REFUSED_FOR`] without hashing: repeating it costs nothing, and it
//!   never delays a different (the right) password, which is checked as
//!   usual — nobody is locked out;
//! - the same password for the same user checked by several clients at
//!   once is hashed once, and they all get that answer;
//! - a refusal is answered after [`REFUSAL_DELAY`] (a cheap async wait),
//!   which slows a client retrying in a loop to a few attempts a second;
//! - an unknown user name gets the same work as a known one (a check
//!   against a hash of nothing), so timing does not tell which names exist.
//!
//! A refused password is remembered as an HMAC (a key made at start-up)
//! of the user's stored hash and the password: never the password, and a
//! new password for the user (a new stored hash) makes the entries for the
//! old one useless.

use super::password::{hash_password, verify_password};
use ring::hmac;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, Semaphore};

/// How long after a wrong password the refusal is sent.
pub const REFUSAL_DELAY: Duration = Duration::from_millis(200);
/// How long a refused password is refused without hashing.
pub const REFUSED_FOR: Duration = Duration::from_secs(60);
/// At most this many refused passwords are remembered (the oldest go).
const REMEMBERED: usize = 16_384;

pub struct LoginGuard {
    hashing: Semaphore,
    /// One check at a time per source address (entries live while used).
    sources: Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
    key: hmac::Key,
    refused: Mutex<Refused>,
    /// Checks under way, by fingerprint: a second identical one waits for
    /// the first one's answer.
    in_flight: Mutex<HashMap<[u8; 32], Arc<OnceCell<bool>>>>,
    /// What an unknown user's password is checked against.
    nobody: String,
    /// Refused logins not logged yet, and when one last was.
    unlogged: Mutex<(u64, Option<Instant>)>,
}

/// Refused logins are logged at most this often (a storm would fill the
/// log); each line says how many others there were.
pub const LOG_REFUSALS_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Refused {
    at: HashMap<[u8; 32], Instant>,
    order: VecDeque<([u8; 32], Instant)>,
}

/// How a password check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    Right,
    Wrong,
    /// The same wrong password again within [`REFUSED_FOR`]: not hashed.
    WrongAgain,
}

impl LoginGuard {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_hashers((cores / 2).max(1))
    }

    /// A guard hashing at most `hashers` passwords at once.
    pub fn with_hashers(hashers: usize) -> Self {
        let key_bytes: [u8; 32] = rand::random();
        Self {
            hashing: Semaphore::new(hashers),
            sources: Mutex::default(),
            key: hmac::Key::new(hmac::HMAC_SHA256, &key_bytes),
            refused: Mutex::default(),
            in_flight: Mutex::default(),
            nobody: hash_password(""),
            unlogged: Mutex::default(),
        }
    }

    /// A login was refused: `Some(others)` when it should be logged now
    /// (with how many others were not since the last line), else `None`.
    pub fn log_refusal(&self, now: Instant) -> Option<u64> {
        let mut unlogged = self.unlogged.lock().unwrap_or_else(|e| e.into_inner());
        let (count, last) = &mut *unlogged;
        if last.is_some_and(|at| now.duration_since(at) < LOG_REFUSALS_EVERY) {
            *count += 1;
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(count))
    }

    /// Check `password` against `stored` (a PHC hash), or, for an unknown
    /// user (`None`), do the same work and refuse. `source` is the
    /// client's address.
    pub async fn check(&self, source: IpAddr, stored: Option<&str>, password: &str) -> Checked {
        let hash = stored.unwrap_or(&self.nobody);
        let fingerprint = self.fingerprint(hash, password);
        if self.refused_recently(&fingerprint, Instant::now()) {
            return Checked::WrongAgain;
        }
        let check = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(fingerprint)
            .or_default()
            .clone();
        let right = *check
            .get_or_init(|| async {
                // Refused by a check that ended since the look above.
                let right = if self.refused_recently(&fingerprint, Instant::now()) {
                    false
                } else {
                    let gate = self.source_gate(source);
                    let right = {
                        let _turn = gate.acquire().await.expect("never closed");
                        let _permit = self.hashing.acquire().await.expect("never closed");
                        let (hash, password) = (hash.to_string(), password.to_string());
                        tokio::task::spawn_blocking(move || verify_password(&password, &hash))
                            .await
                            .unwrap_or(false)
                    };
                    self.release_source_gate(source, gate);
                    right
                };
                if !right {
                    self.remember_refused(fingerprint, Instant::now());
                }
                self.in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&fingerprint);
                right
            })
            .await;
        if right && stored.is_some() {
            Checked::Right
        } else {
            Checked::Wrong
        }
    }

    fn source_gate(&self, source: IpAddr) -> Arc<Semaphore> {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(source)
            .or_insert_with(|| Arc::new(Semaphore::new(1)))
            .clone()
    }

    /// Forget `source`'s gate once nobody else holds or waits on it.
    fn release_source_gate(&self, source: IpAddr, gate: Arc<Semaphore>) {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        // Ours and the map's: clones are only made under this lock.
        if Arc::strong_count(&gate) == 2 {
            sources.remove(&source);
        }
    }

    fn fingerprint(&self, hash: &str, password: &str) -> [u8; 32] {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(hash.as_bytes());
        context.update(&[0]);
        context.update(password.as_bytes());
        context
            .sign()
            .as_ref()
            .try_into()
            .expect("HMAC-SHA256 is 32 bytes")
    }

    fn refused_recently(&self, fingerprint: &[u8; 32], now: Instant) -> bool {
        let refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        refused
            .at
            .get(fingerprint)
            .is_some_and(|at| now.duration_since(*at) < REFUSED_FOR)
    }

    fn remember_refused(&self, fingerprint: [u8; 32], now: Instant) {
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        // Forget what expired, and the oldest beyond the cap.
        while let Some((oldest, at)) = refused.order.front().copied() {
            if now.duration_since(at) < REFUSED_FOR && refused.order.len() < REMEMBERED {
                break;
            }
            refused.order.pop_front();
            if refused.at.get(&oldest) == Some(&at) {
                refused.at.remove(&oldest);
            }
        }
        refused.at.insert(fingerprint, now);
        refused.order.push_back((fingerprint, now));
    }
}

impl Default for LoginGuard {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const HOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_host_cycling_wrong_passwords_does_not_hold_up_a_login_from_another() {
        let guard = Arc::new(LoginGuard::with_hashers(1));
        let stored = Arc::new(hash_password("right"));
        let done = Arc::new(AtomicUsize::new(0));
        let attacker = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 66));
        let storm: Vec<_> = (0..8)
            .map(|n| {
                let (guard, stored, done) = (guard.clone(), stored.clone(), done.clone());
                tokio::spawn(async move {
                    let wrong = format!("wrong-{n}");
                    let checked = guard.check(attacker, Some(&stored), &wrong).await;
                    done.fetch_add(1, Ordering::SeqCst);
                    checked
                })
            })
            .collect();
        // Every check of the storm is under way (one hashing, the others
        // queued) before the right password arrives.
        while guard.in_flight.lock().unwrap().len() < 8 || guard.hashing.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            guard.check(HOST, Some(&stored), "right").await,
            Checked::Right
        );
        let before = done.load(Ordering::SeqCst);
        assert!(
            before <= 2,
            "the right password waited for {before} of the other host's checks"
        );
        for check in storm {
            assert_eq!(check.await.unwrap(), Checked::Wrong);
        }
        assert!(
            guard.sources.lock().unwrap().is_empty(),
            "gates left behind"
        );
    }

    #[tokio::test]
    async fn a_wrong_password_is_refused_again_without_hashing_and_the_right_one_still_works() {
        let guard = LoginGuard::new();
        let stored = hash_password("right");
        assert_eq!(
            guard.check(HOST, Some(&stored), "wrong").await,
            Checked::Wrong
        );
        assert_eq!(
            guard.check(HOST, Some(&stored), "wrong").await,
            Checked::WrongAgain
        );
        assert_eq!(
            guard.check(HOST, Some(&stored), "right").await,
            Checked::Right
        );
        assert_eq!(
            guard.check(HOST, Some(&stored), "other").await,
            Checked::Wrong
        );
    }

    #[tokio::test]
    async fn a_new_password_is_not_refused_for_having_been_wrong_before() {
        let guard = LoginGuard::new();
        let old = hash_password("old");
        assert_eq!(guard.check(HOST, Some(&old), "new").await, Checked::Wrong);
        let changed = hash_password("new");
        assert_eq!(
            guard.check(HOST, Some(&changed), "new").await,
            Checked::Right
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_same_password_checked_at_once_by_many_is_hashed_once() {
        let guard = Arc::new(LoginGuard::new());
        let stored = Arc::new(hash_password("right"));
        let checks: Vec<_> = (0..16)
            .map(|_| {
                let (guard, stored) = (guard.clone(), stored.clone());
                tokio::spawn(async move { guard.check(HOST, Some(&stored), "wrong").await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for check in checks {
            outcomes.push(check.await.unwrap());
        }
        assert!(outcomes.iter().all(|o| *o != Checked::Right));
        assert!(guard.in_flight.lock().unwrap().is_empty());
        assert_eq!(
            guard.refused.lock().unwrap().order.len(),
            1,
            "hashed more than once"
        );
    }

    #[tokio::test]
    async fn an_unknown_user_is_refused_after_the_same_work() {
        let guard = LoginGuard::new();
        assert_eq!(guard.check(HOST, None, "").await, Checked::Wrong);
        assert_eq!(guard.check(HOST, None, "anything").await, Checked::Wrong);
        assert_eq!(
            guard.check(HOST, None, "anything").await,
            Checked::WrongAgain
        );
    }

    #[test]
    fn refusals_are_logged_once_a_second_with_the_count_of_the_others() {
        let guard = LoginGuard::new();
        let start = Instant::now();
        assert_eq!(guard.log_refusal(start), Some(0));
        assert_eq!(guard.log_refusal(start + Duration::from_millis(10)), None);
        assert_eq!(guard.log_refusal(start + Duration::from_millis(20)), None);
        assert_eq!(guard.log_refusal(start + LOG_REFUSALS_EVERY), Some(2));
    }

    #[test]
    fn refusals_are_forgotten_after_their_time_and_beyond_the_cap() {
        let guard = LoginGuard::new();
        let start = Instant::now();
        let first = guard.fingerprint("h", "p");
        guard.remember_refused(first, start);
        assert!(guard.refused_recently(&first, start + REFUSED_FOR / 2));
        assert!(!guard.refused_recently(&first, start + REFUSED_FOR));
        for n in 0..REMEMBERED + 10 {
            guard.remember_refused(guard.fingerprint("h", &n.to_string()), start);
        }
        let refused = guard.refused.lock().unwrap();
        assert!(refused.order.len() <= REMEMBERED);
        assert!(!refused.at.contains_key(&first));
    }
}
