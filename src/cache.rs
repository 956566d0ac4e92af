//! A small time-bounded cache for hot, rarely changing rows (tokens, profiles, CAs).
//!
//! Entries expire after a short TTL so that changes made by another replica sharing the
//! database are seen within that time; changes made by this process invalidate at once.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// A map whose entries expire `ttl` after they were inserted.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    map: RwLock<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// An empty cache.
    pub fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            map: RwLock::new(HashMap::new()),
        }
    }

    /// A fresh entry, if any.
    pub fn get(&self, k: &K) -> Option<V> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(k)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// Insert or replace; old entries are dropped when the map grows large.
    pub fn put(&self, k: K, v: V) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= 10_000 {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        map.insert(k, (Instant::now(), v));
    }

    /// The cached value, or `load()`'s, which is kept when `keep` says so.
    pub async fn get_or_load<Fut, E>(
        &self,
        key: &str,
        load: impl FnOnce() -> Fut,
        keep: impl FnOnce(&V) -> bool,
    ) -> Result<V, E>
    where
        K: From<String>,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        let k = K::from(key.to_string());
        if let Some(v) = self.get(&k) {
            return Ok(v);
        }
        let v = load().await?;
        if keep(&v) {
            self.put(k, v.clone());
        }
        Ok(v)
    }

    /// Forget one entry (after a local change).
    pub fn remove(&self, k: &K) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(k);
    }

    /// Forget everything (after a local change).
    pub fn clear(&self) {
        self.map.write().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_clear() {
        let c = TtlCache::new(Duration::from_millis(30));
        c.put("a", 1);
        assert_eq!(c.get(&"a"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get(&"a"), None);
        c.put("b", 2);
        c.clear();
        assert_eq!(c.get(&"b"), None);
    }
}
