//! Reconnect delays, a pure function of the attempts so far.

use std::time::Duration;

/// Exponential reconnect backoff: `min`, `2*min`, `4*min`, ... capped at `max`; `reset` after a
/// successful connection. (No jitter: one device, one broker.)
#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let max = max.max(min);
        Backoff { min, max, next: min }
    }

    /// The delay before the next attempt; doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// Back to `min` (call after a successful connection).
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}
