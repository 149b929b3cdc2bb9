//! Login throttling with a growing delay, keyed by source address or user name.
//!
//! Sans-IO: the caller passes the clock in milliseconds. Memory is bounded by
//! `max_entries`; when full, expired entries go first, then the oldest.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures allowed before any delay applies.
    pub free_attempts: u32,
    /// Delay after the first failure past the free ones; doubles with each further one.
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    pub max_entries: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    blocked_until_ms: u64,
    last_failure_ms: u64,
}

#[derive(Debug)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    entries: HashMap<String, Entry>,
}

impl LoginThrottle {
    pub fn new(config: ThrottleConfig) -> LoginThrottle {
        LoginThrottle {
            config,
            entries: HashMap::new(),
        }
    }

    /// `Err(ms)` when the key must wait that long before its next attempt.
    pub fn check(&self, key: &str, now_ms: u64) -> Result<(), u64> {
        match self.entries.get(key) {
            Some(entry) if entry.blocked_until_ms > now_ms => Err(entry.blocked_until_ms - now_ms),
            _ => Ok(()),
        }
    }

    pub fn record_failure(&mut self, key: &str, now_ms: u64) {
        if !self.entries.contains_key(key) && self.entries.len() >= self.config.max_entries {
            self.evict(now_ms);
        }
        let entry = self.entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            blocked_until_ms: 0,
            last_failure_ms: now_ms,
        });
        // A key that stayed quiet for the longest delay starts afresh.
        if now_ms.saturating_sub(entry.last_failure_ms) > self.config.max_delay_ms {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure_ms = now_ms;
        if entry.failures > self.config.free_attempts {
            let doublings = (entry.failures - self.config.free_attempts - 1).min(32);
            let delay = self
                .config
                .base_delay_ms
                .saturating_mul(1u64 << doublings)
                .min(self.config.max_delay_ms);
            entry.blocked_until_ms = now_ms + delay;
        }
    }

    pub fn record_success(&mut self, key: &str) {
        self.entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn evict(&mut self, now_ms: u64) {
        let horizon = self.config.max_delay_ms;
        self.entries
            .retain(|_, e| now_ms.saturating_sub(e.last_failure_ms) <= horizon);
        if self.entries.len() >= self.config.max_entries
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_failure_ms)
                .map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ThrottleConfig {
        ThrottleConfig {
            free_attempts: 3,
            base_delay_ms: 1000,
            max_delay_ms: 8000,
            max_entries: 4,
        }
    }

    #[test]
    fn delay_grows_after_free_attempts_and_is_capped() {
        let mut t = LoginThrottle::new(config());
        for _ in 0..3 {
            assert_eq!(t.check("a", 0), Ok(()));
            t.record_failure("a", 0);
        }
        assert_eq!(t.check("a", 0), Ok(()));
        t.record_failure("a", 0);
        assert_eq!(t.check("a", 0), Err(1000));
        t.record_failure("a", 1000);
        assert_eq!(t.check("a", 1000), Err(2000));
        for _ in 0..10 {
            t.record_failure("a", 1000);
        }
        assert_eq!(t.check("a", 1000), Err(8000));
        assert_eq!(t.check("a", 9000), Ok(()));
        assert_eq!(t.check("b", 1000), Ok(()));
        t.record_success("a");
        assert_eq!(t.check("a", 1000), Ok(()));
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = LoginThrottle::new(config());
        for i in 0..100u64 {
            t.record_failure(&format!("k{i}"), i);
        }
        assert!(t.len() <= 4);
    }
}
