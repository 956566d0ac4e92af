//! Failed EST logins, counted per client address and per user name, so that password
//! guessing is refused after a few tries instead of costing the server a key derivation per
//! guess. The counts live in a bounded cache: a flood of addresses or names evicts old
//! entries and never grows memory past the bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use time::OffsetDateTime;

/// How many addresses and user names are tracked at once.
const CAPACITY: u64 = 50_000;

/// Failures of one key since `since`.
#[derive(Debug)]
struct Failures {
    since: OffsetDateTime,
    count: AtomicU32,
}

/// Failed logins per address and per user within a window.
#[derive(Debug)]
pub(super) struct LoginThrottle {
    max: u32,
    window: time::Duration,
    seen: moka::sync::Cache<String, Arc<Failures>>,
}

fn keys(source: Option<&str>, user: &str) -> impl Iterator<Item = String> {
    source
        .map(|s| format!("addr:{s}"))
        .into_iter()
        .chain(std::iter::once(format!("user:{user}")))
}

impl LoginThrottle {
    /// Refuse after `max` failures within `window` (time from the injected clock; the
    /// cache also drops an entry after `window` of wall time on its own).
    pub(super) fn new(max: u32, window: std::time::Duration) -> LoginThrottle {
        LoginThrottle {
            max,
            window: time::Duration::try_from(window).unwrap_or(time::Duration::MINUTE),
            seen: moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(window)
                .build(),
        }
    }

    /// Whether a login from `source` for `user` may be tried at `now`.
    pub(super) fn allows(&self, source: Option<&str>, user: &str, now: OffsetDateTime) -> bool {
        keys(source, user).all(|k| {
            self.seen.get(&k).is_none_or(|f| {
                now - f.since >= self.window || f.count.load(Ordering::Relaxed) < self.max
            })
        })
    }

    /// Count a failed login.
    pub(super) fn failed(&self, source: Option<&str>, user: &str, now: OffsetDateTime) {
        for k in keys(source, user) {
            let f = self.seen.get_with(k.clone(), || {
                Arc::new(Failures {
                    since: now,
                    count: AtomicU32::new(0),
                })
            });
            if now - f.since >= self.window {
                // The window ended: start a new one with this failure.
                self.seen.insert(
                    k,
                    Arc::new(Failures {
                        since: now,
                        count: AtomicU32::new(1),
                    }),
                );
            } else {
                f.count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Forget a user's failures after a successful login (its address's stay counted).
    pub(super) fn succeeded(&self, user: &str) {
        self.seen.invalidate(&format!("user:{user}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_max_failures_per_address_and_per_user_until_the_window_ends() {
        let t = LoginThrottle::new(3, std::time::Duration::from_secs(600));
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        for _ in 0..3 {
            assert!(t.allows(Some("10.0.0.1"), "alice", now));
            t.failed(Some("10.0.0.1"), "alice", now);
        }
        assert!(!t.allows(Some("10.0.0.1"), "alice", now));
        assert!(!t.allows(Some("10.0.0.1"), "bob", now), "per address");
        assert!(!t.allows(Some("10.0.0.2"), "alice", now), "per user");
        assert!(t.allows(Some("10.0.0.2"), "bob", now));
        let later = now + time::Duration::minutes(10);
        assert!(
            t.allows(Some("10.0.0.1"), "alice", later),
            "the window ended"
        );
        t.failed(Some("10.0.0.1"), "alice", later);
        assert!(t.allows(Some("10.0.0.1"), "alice", later), "counting anew");
    }

    #[test]
    fn success_clears_the_users_count() {
        let t = LoginThrottle::new(2, std::time::Duration::from_secs(600));
        let now = OffsetDateTime::UNIX_EPOCH;
        t.failed(Some("10.0.0.1"), "alice", now);
        t.failed(Some("10.0.0.2"), "alice", now);
        assert!(!t.allows(Some("10.0.0.3"), "alice", now));
        t.succeeded("alice");
        assert!(t.allows(Some("10.0.0.3"), "alice", now));
    }
}
