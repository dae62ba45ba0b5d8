//! When file frames are delivered: in real time at a frame rate, or as fast as possible.

use std::time::Duration;

use crate::clock::Clock;
use crate::SourceError;

/// How a file source paces its frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Frame `i` is delivered `i / fps` seconds after frame 0 (measured from frame 0, so
    /// waiting errors never accumulate; a source that falls behind delivers at once until it
    /// has caught up, it never drops frames).
    RealTime { fps: f64 },
    /// No waiting.
    AsFastAsPossible,
}

impl Pacing {
    /// The frame rate of `RealTime`, `None` for `AsFastAsPossible`.
    pub fn fps(&self) -> Option<f64> {
        match *self {
            Pacing::RealTime { fps } => Some(fps),
            Pacing::AsFastAsPossible => None,
        }
    }

    /// Rejects a `RealTime` frame rate that is not a finite positive number.
    pub fn validate(&self) -> Result<(), SourceError> {
        match *self {
            Pacing::RealTime { fps } => check_fps("real-time pacing", fps),
            Pacing::AsFastAsPossible => Ok(()),
        }
    }
}

impl std::fmt::Display for Pacing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pacing::RealTime { fps } => write!(f, "real time at {fps} fps"),
            Pacing::AsFastAsPossible => write!(f, "as fast as possible"),
        }
    }
}

pub(crate) fn check_fps(what: &str, fps: f64) -> Result<(), SourceError> {
    if fps.is_finite() && fps > 0.0 {
        Ok(())
    } else {
        Err(SourceError::Config { what: what.to_string(), reason: format!("frame rate must be a positive number, got {fps}") })
    }
}

/// Computes when each frame is due, from the time frame 0 was delivered (the anchor), and
/// waits for it on an injected [`Clock`].
#[derive(Debug, Clone)]
pub struct Pacer {
    pacing: Pacing,
    start: Option<Duration>,
}

impl Pacer {
    pub fn new(pacing: Pacing) -> Self {
        Pacer { pacing, start: None }
    }

    pub fn pacing(&self) -> Pacing {
        self.pacing
    }

    /// The anchor (monotonic time of frame 0), once set.
    pub fn start(&self) -> Option<Duration> {
        self.start
    }

    /// Forget the anchor: the next frame becomes a new frame 0.
    pub fn reset(&mut self) {
        self.start = None;
    }

    /// Monotonic time at which frame `index` is due: `start + index / fps`. `None` before the
    /// anchor is set or when pacing as fast as possible.
    pub fn due(&self, index: u64) -> Option<Duration> {
        match (self.pacing, self.start) {
            (Pacing::RealTime { fps }, Some(start)) => Some(start + Duration::from_secs_f64(index as f64 / fps)),
            _ => None,
        }
    }

    /// How long to wait at monotonic time `now` before delivering frame `index`; the first call
    /// sets the anchor to `now` (so that frame is due at once). Zero when late.
    pub fn delay(&mut self, index: u64, now: Duration) -> Duration {
        if self.pacing == Pacing::AsFastAsPossible {
            return Duration::ZERO;
        }
        if self.start.is_none() {
            // Anchor such that `index` is due now (normally index 0).
            let offset = self.pacing.fps().map(|fps| Duration::from_secs_f64(index as f64 / fps)).unwrap_or_default();
            self.start = Some(now.saturating_sub(offset));
        }
        self.due(index).map(|due| due.saturating_sub(now)).unwrap_or_default()
    }

    /// Sleep on `clock` until frame `index` is due; returns how long it slept.
    pub fn wait(&mut self, index: u64, clock: &dyn Clock) -> Duration {
        let d = self.delay(index, clock.now());
        if !d.is_zero() {
            clock.sleep(d);
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn real_time_waits_from_the_anchor() {
        let clock = ManualClock::new(0);
        clock.advance(ms(1_000));
        let mut p = Pacer::new(Pacing::RealTime { fps: 10.0 });
        assert_eq!(p.due(0), None);
        assert_eq!(p.wait(0, &clock), Duration::ZERO, "frame 0 is due at once");
        assert_eq!(p.start(), Some(ms(1_000)));
        assert_eq!(p.wait(1, &clock), ms(100));
        assert_eq!(clock.now(), ms(1_100));
        // 30 ms of work: the next wait is shorter, the schedule does not slide.
        clock.advance(ms(30));
        assert_eq!(p.wait(2, &clock), ms(70));
        assert_eq!(clock.now(), ms(1_200));
        assert_eq!(p.due(10), Some(ms(2_000)));
    }

    #[test]
    fn late_frames_go_at_once_and_the_schedule_catches_up() {
        let clock = ManualClock::new(0);
        let mut p = Pacer::new(Pacing::RealTime { fps: 4.0 });
        p.wait(0, &clock);
        clock.advance(ms(600)); // frames 1 (250 ms) and 2 (500 ms) are late
        assert_eq!(p.wait(1, &clock), Duration::ZERO);
        assert_eq!(p.wait(2, &clock), Duration::ZERO);
        assert_eq!(p.wait(3, &clock), ms(150)); // due at 750 ms
        assert_eq!(clock.now(), ms(750));
    }

    #[test]
    fn no_drift_over_many_frames() {
        // 30 fps has a non-integral period; after 3000 frames we must be at exactly 100 s.
        let clock = ManualClock::new(0);
        let mut p = Pacer::new(Pacing::RealTime { fps: 30.0 });
        for i in 0..=3000 {
            p.wait(i, &clock);
            clock.advance(Duration::from_micros(1_234)); // work per frame
        }
        let expected = Duration::from_secs(100) + Duration::from_micros(1_234);
        let got = clock.now();
        let diff = got.abs_diff(expected);
        assert!(diff < Duration::from_micros(2), "at {got:?}, expected {expected:?}");
    }

    #[test]
    fn as_fast_as_possible_never_sleeps() {
        let clock = ManualClock::new(0);
        let mut p = Pacer::new(Pacing::AsFastAsPossible);
        for i in 0..100 {
            assert_eq!(p.wait(i, &clock), Duration::ZERO);
        }
        assert!(clock.sleeps().is_empty());
        assert_eq!(p.due(5), None);
    }

    #[test]
    fn reset_starts_a_new_schedule() {
        let clock = ManualClock::new(0);
        let mut p = Pacer::new(Pacing::RealTime { fps: 2.0 });
        p.wait(0, &clock);
        p.wait(1, &clock);
        assert_eq!(clock.now(), ms(500));
        p.reset();
        clock.advance(ms(10_000));
        assert_eq!(p.wait(0, &clock), Duration::ZERO);
        assert_eq!(p.start(), Some(ms(10_500)));
    }

    #[test]
    fn invalid_fps_is_rejected() {
        assert!(Pacing::RealTime { fps: 0.0 }.validate().is_err());
        assert!(Pacing::RealTime { fps: f64::NAN }.validate().is_err());
        assert!(Pacing::RealTime { fps: -1.0 }.validate().is_err());
        assert!(Pacing::RealTime { fps: 29.97 }.validate().is_ok());
        assert!(Pacing::AsFastAsPossible.validate().is_ok());
    }
}
