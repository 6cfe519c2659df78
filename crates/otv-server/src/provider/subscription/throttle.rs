//! A token bucket per connector: each request takes a token, tokens come back at a steady
//! rate up to a burst. A connector that runs dry is answered 429 with `Retry-After` until its
//! bucket holds a token again; other connectors are not affected.
//!
//! Buckets are kept per connector id, and only allow-listed connectors reach the throttle, so
//! the map is as large as the allow-list and never grows with traffic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The rate and burst of a [`Throttle`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleSettings {
    /// Tokens that come back per second (may be below 1: 0.1 is one request per 10 seconds).
    pub rate_per_second: f64,
    /// The most tokens a bucket holds, which is also what a new connector starts with.
    pub burst: u32,
}

impl Default for ThrottleSettings {
    /// Generous: 1000 requests per second with bursts of 2000 per connector.
    fn default() -> Self {
        ThrottleSettings {
            rate_per_second: 1000.0,
            burst: 2000,
        }
    }
}

/// Per-connector token buckets.
#[derive(Debug)]
pub struct Throttle {
    settings: ThrottleSettings,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    filled_at: Instant,
    /// Whether the last request was refused, so that a run of refusals is audited once.
    refusing: bool,
}

/// Whether a request may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead; a token was taken.
    Admitted,
    /// Throttled.
    Refused {
        /// When a token will be there again, in whole seconds, at least 1 (`Retry-After`).
        retry_after_seconds: u64,
        /// Whether this is the first refusal since the connector's last admitted request.
        first: bool,
    },
}

impl Throttle {
    /// A throttle with these settings. A rate that is not a positive number or a burst of 0
    /// would refuse everything; configuration validation keeps them out, and here they are
    /// raised to the smallest workable values rather than trusted.
    pub fn new(settings: ThrottleSettings) -> Throttle {
        let rate_per_second =
            if settings.rate_per_second.is_finite() && settings.rate_per_second > 0.0 {
                settings.rate_per_second
            } else {
                f64::MIN_POSITIVE
            };
        Throttle {
            settings: ThrottleSettings {
                rate_per_second,
                burst: settings.burst.max(1),
            },
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> ThrottleSettings {
        self.settings
    }

    /// Takes a token for `connector` now.
    pub fn admit(&self, connector: &str) -> Admission {
        self.admit_at(connector, Instant::now())
    }

    /// Takes a token for `connector` at `now` (a parameter, so the arithmetic can be tested
    /// without waiting).
    pub fn admit_at(&self, connector: &str, now: Instant) -> Admission {
        let ThrottleSettings {
            rate_per_second,
            burst,
        } = self.settings;
        let burst = f64::from(burst);
        // A poisoned lock only means another request panicked mid-update; the buckets are
        // still numbers, so carry on with them.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(connector.to_owned()).or_insert(Bucket {
            tokens: burst,
            filled_at: now,
            refusing: false,
        });
        let elapsed = now
            .saturating_duration_since(bucket.filled_at)
            .as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate_per_second).min(burst);
        bucket.filled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.refusing = false;
            return Admission::Admitted;
        }
        let wait = Duration::try_from_secs_f64((1.0 - bucket.tokens) / rate_per_second)
            .unwrap_or(Duration::MAX);
        let first = !bucket.refusing;
        bucket.refusing = true;
        Admission::Refused {
            retry_after_seconds: whole_seconds(wait),
            first,
        }
    }
}

/// `wait` rounded up to whole seconds, at least 1.
fn whole_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(rate_per_second: f64, burst: u32) -> Throttle {
        Throttle::new(ThrottleSettings {
            rate_per_second,
            burst,
        })
    }

    #[test]
    fn a_connector_may_use_its_burst_and_is_then_refused_until_a_token_returns() {
        let t = throttle(2.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.admit_at("lsp", start), Admission::Admitted);
        }
        assert_eq!(
            t.admit_at("lsp", start),
            Admission::Refused {
                retry_after_seconds: 1,
                first: true
            }
        );
        assert_eq!(
            t.admit_at("lsp", start),
            Admission::Refused {
                retry_after_seconds: 1,
                first: false
            }
        );
        // Half a second at two tokens per second brings one back.
        let later = start + Duration::from_millis(500);
        assert_eq!(t.admit_at("lsp", later), Admission::Admitted);
        assert!(matches!(
            t.admit_at("lsp", later),
            Admission::Refused { first: true, .. }
        ));
    }

    #[test]
    fn connectors_have_their_own_buckets() {
        let t = throttle(1.0, 1);
        let now = Instant::now();
        assert_eq!(t.admit_at("lsp", now), Admission::Admitted);
        assert!(matches!(t.admit_at("lsp", now), Admission::Refused { .. }));
        assert_eq!(t.admit_at("huisarts", now), Admission::Admitted);
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        let t = throttle(0.01, 1);
        let now = Instant::now();
        assert_eq!(t.admit_at("lsp", now), Admission::Admitted);
        assert_eq!(
            t.admit_at("lsp", now),
            Admission::Refused {
                retry_after_seconds: 100,
                first: true
            }
        );
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
    }

    #[test]
    fn a_bucket_never_holds_more_than_its_burst() {
        let t = throttle(1000.0, 2);
        let start = Instant::now();
        assert_eq!(t.admit_at("lsp", start), Admission::Admitted);
        let much_later = start + Duration::from_secs(3600);
        assert_eq!(t.admit_at("lsp", much_later), Admission::Admitted);
        assert_eq!(t.admit_at("lsp", much_later), Admission::Admitted);
        assert!(matches!(
            t.admit_at("lsp", much_later),
            Admission::Refused { .. }
        ));
    }
}
