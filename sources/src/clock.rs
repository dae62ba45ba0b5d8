//! Time, injected: [`SystemClock`] for real sources, [`ManualClock`] for tests (its `sleep`
//! advances virtual time and returns at once).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A monotonic clock, a wall clock and a way to wait.
pub trait Clock: Send {
    /// Monotonic time since an arbitrary origin (fixed for the clock's lifetime).
    fn now(&self) -> Duration;
    /// Wall-clock time in milliseconds since the Unix epoch.
    fn unix_ms(&self) -> u64;
    /// Block the calling thread for `d`.
    fn sleep(&self, d: Duration);
}

/// The real clocks: [`Instant`], [`SystemTime`] and [`std::thread::sleep`].
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock { origin: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn unix_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }

    fn sleep(&self, d: Duration) {
        if !d.is_zero() {
            std::thread::sleep(d);
        }
    }
}

#[derive(Debug)]
struct ManualState {
    now: Duration,
    unix_origin_ms: u64,
    sleeps: Vec<Duration>,
}

/// A fake clock for tests: time only moves through [`ManualClock::advance`] and `sleep`, which
/// advances it by the requested amount and returns at once (and is recorded). Clones share
/// the same time, so a test can keep one and hand another to a source.
#[derive(Debug, Clone)]
pub struct ManualClock {
    state: Arc<Mutex<ManualState>>,
}

impl ManualClock {
    /// A clock at monotonic time zero whose wall clock reads `unix_origin_ms`.
    pub fn new(unix_origin_ms: u64) -> Self {
        ManualClock { state: Arc::new(Mutex::new(ManualState { now: Duration::ZERO, unix_origin_ms, sleeps: Vec::new() })) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Move time forward without recording a sleep (time spent working, e.g. decoding).
    pub fn advance(&self, d: Duration) {
        self.lock().now += d;
    }

    /// Every `sleep` so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().sleeps.clone()
    }

    /// The sum of all sleeps so far.
    pub fn total_slept(&self) -> Duration {
        self.lock().sleeps.iter().sum()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        self.lock().now
    }

    fn unix_ms(&self) -> u64 {
        let s = self.lock();
        s.unix_origin_ms + s.now.as_millis() as u64
    }

    fn sleep(&self, d: Duration) {
        let mut s = self.lock();
        s.now += d;
        s.sleeps.push(d);
    }
}

impl<C: Clock + Sync + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Duration {
        (**self).now()
    }

    fn unix_ms(&self) -> u64 {
        (**self).unix_ms()
    }

    fn sleep(&self, d: Duration) {
        (**self).sleep(d)
    }
}

impl<C: Clock + ?Sized> Clock for Box<C> {
    fn now(&self) -> Duration {
        (**self).now()
    }

    fn unix_ms(&self) -> u64 {
        (**self).unix_ms()
    }

    fn sleep(&self, d: Duration) {
        (**self).sleep(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_sleep_advances_and_records() {
        let c = ManualClock::new(1_000);
        let shared = c.clone();
        c.advance(Duration::from_millis(5));
        shared.sleep(Duration::from_millis(10));
        assert_eq!(c.now(), Duration::from_millis(15));
        assert_eq!(c.unix_ms(), 1_015);
        assert_eq!(c.sleeps(), vec![Duration::from_millis(10)]);
        assert_eq!(c.total_slept(), Duration::from_millis(10));
    }

    #[test]
    fn system_clock_is_monotonic_and_near_wall_time() {
        let c = SystemClock::new();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
        assert!(c.unix_ms() > 1_600_000_000_000);
    }
}
