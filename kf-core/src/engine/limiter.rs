//! Request rate limits: one token bucket per identity, shared by all its connections and HTTP requests.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tokio::time::Instant;

use crate::auth::Identity;

/// Buckets kept before full (idle) ones are forgotten: a forgotten bucket starts full again, so this only bounds
/// memory and never lets anyone burst beyond the limit.
const PRUNE_ABOVE: usize = 4096;

/// A token bucket: `rate` requests per second, bursts up to twice that.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets by identity.
#[derive(Debug)]
pub(crate) struct RateLimits {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<Identity, Bucket>>,
}

impl RateLimits {
    pub(crate) fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second.max(1));
        Self {
            rate,
            burst: rate * 2.0,
            buckets: Mutex::default(),
        }
    }

    fn buckets(&self) -> MutexGuard<'_, HashMap<Identity, Bucket>> {
        self.buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a token from the identity's bucket; false when it is empty.
    pub(crate) fn allow(&self, identity: &Identity) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets();
        if buckets.len() > PRUNE_ABOVE && !buckets.contains_key(identity) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, bucket| {
                bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(identity.clone()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.updated = now;
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Principal;
    use crate::model::{TenantId, VisitorId};

    fn visitor(id: &str) -> Identity {
        Identity {
            tenant: TenantId::new("t").expect("id"),
            principal: Principal::Visitor(VisitorId::new(id).expect("id")),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_then_refills_per_identity() {
        let limits = RateLimits::new(5);
        let (a, b) = (visitor("a"), visitor("b"));
        assert_eq!(
            (0..12).filter(|_| limits.allow(&a)).count(),
            10,
            "burst of twice the rate"
        );
        assert!(limits.allow(&b), "another identity has its own bucket");
        tokio::time::advance(std::time::Duration::from_millis(400)).await;
        assert_eq!(
            (0..5).filter(|_| limits.allow(&a)).count(),
            2,
            "refills at the rate"
        );
    }
}
