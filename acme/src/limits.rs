//! Caps on work in flight in this process: over all keys and per key. The engine caps
//! challenge validations per account ([`ValidationLimits`]); the server uses the same type
//! for connections per client address. A [`Permit`] holds one place until the last copy
//! of it is dropped.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// What is in flight now.
#[derive(Debug)]
struct InFlight<K> {
    total: usize,
    by_key: HashMap<K, usize>,
}

/// Caps over all keys and per key (0: no cap), shared by every clone.
#[derive(Debug, Clone)]
pub struct Caps<K> {
    in_flight: Arc<Mutex<InFlight<K>>>,
    global: usize,
    per_key: usize,
}

/// The caps on challenge validations in flight, per account id.
pub type ValidationLimits = Caps<String>;

/// One validation's place under [`ValidationLimits`].
pub type ValidationPermit = Permit<String>;

/// Which cap refused a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitReached {
    /// The cap over all keys.
    Global(usize),
    /// The cap of one key.
    PerKey(usize),
}

impl<K: Hash + Eq + Clone> Caps<K> {
    /// At most `global` places at once, and `per_key` for one key (0: no cap).
    pub fn new(global: usize, per_key: usize) -> Caps<K> {
        Caps {
            in_flight: Arc::new(Mutex::new(InFlight {
                total: 0,
                by_key: HashMap::new(),
            })),
            global,
            per_key,
        }
    }

    /// A place for `key`, unless a cap is reached.
    pub fn try_acquire(&self, key: &K) -> Result<Permit<K>, LimitReached> {
        let mut f = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if self.global > 0 && f.total >= self.global {
            return Err(LimitReached::Global(self.global));
        }
        let mine = f.by_key.get(key).copied().unwrap_or(0);
        if self.per_key > 0 && mine >= self.per_key {
            return Err(LimitReached::PerKey(self.per_key));
        }
        f.total += 1;
        *f.by_key.entry(key.clone()).or_default() += 1;
        Ok(Permit(Arc::new(Held {
            in_flight: self.in_flight.clone(),
            key: key.clone(),
        })))
    }

    /// How many places are taken now.
    pub fn in_flight(&self) -> usize {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .total
    }
}

#[derive(Debug)]
struct Held<K: Hash + Eq> {
    in_flight: Arc<Mutex<InFlight<K>>>,
    key: K,
}

impl<K: Hash + Eq> Drop for Held<K> {
    fn drop(&mut self) {
        let mut f = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        f.total = f.total.saturating_sub(1);
        if let Some(n) = f.by_key.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                f.by_key.remove(&self.key);
            }
        }
    }
}

/// One place under [`Caps`]; given back when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Permit<K: Hash + Eq>(Arc<Held<K>>);

impl<K: Hash + Eq> Permit<K> {
    /// The key it counts against.
    pub fn key(&self) -> &K {
        &self.0.key
    }
}

/// Permits compare by key: two validations of the same account hold equal permits.
impl<K: Hash + Eq> PartialEq for Permit<K> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}

impl<K: Hash + Eq> Eq for Permit<K> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_key_and_overall_and_gives_back_on_drop() {
        let l = ValidationLimits::new(3, 2);
        let (a, b, c) = ("a".to_string(), "b".to_string(), "c".to_string());
        let a1 = l.try_acquire(&a).unwrap();
        let a2 = l.try_acquire(&a).unwrap();
        assert_eq!(l.try_acquire(&a).unwrap_err(), LimitReached::PerKey(2));
        let b1 = l.try_acquire(&b).unwrap();
        assert_eq!(l.try_acquire(&c).unwrap_err(), LimitReached::Global(3));
        assert_eq!(l.in_flight(), 3);
        // A clone holds the same place; the place is free once every copy is gone.
        let a1_copy = a1.clone();
        drop(a1);
        assert!(l.try_acquire(&c).is_err());
        drop(a1_copy);
        let c1 = l.try_acquire(&c).unwrap();
        assert_eq!(c1.key(), "c");
        drop((a2, b1, c1));
        assert_eq!(l.in_flight(), 0);
        let unlimited = Caps::<u8>::new(0, 0);
        let many: Vec<_> = (0..100)
            .map(|_| unlimited.try_acquire(&1).unwrap())
            .collect();
        assert_eq!(unlimited.in_flight(), 100);
        drop(many);
        assert_eq!(unlimited.in_flight(), 0);
    }
}
