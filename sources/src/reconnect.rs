//! Camera reconnection: a small state machine over a [`CameraDevice`] that notices a lost
//! device (read error or timeout, reported by the device as [`ReadError::Disconnected`]),
//! closes it and reopens it with capped exponential backoff, counting reconnects. Time comes
//! from an injected [`Clock`], so the logic is tested with a fake device and a fake clock.

use std::time::Duration;

use image::DynamicImage;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::{Frame, FrameSource, SourceError};

/// Capped exponential backoff between reopen attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// Wait before the first reopen attempt.
    pub initial: Duration,
    /// Each further wait is the previous one times `factor` (at least 1)...
    pub factor: f64,
    /// ...but never more than `max`.
    pub max: Duration,
    /// Give up (return [`SourceError::ReconnectFailed`]) after this many failed attempts in a
    /// row; `None`: keep trying (a camera runtime waits for its camera to come back).
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_millis(100), factor: 2.0, max: Duration::from_secs(5), max_attempts: None }
    }
}

impl Backoff {
    /// The wait before attempt `attempt` (0-based): `initial * factor^attempt`, capped at `max`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = if self.factor.is_finite() { self.factor.max(1.0) } else { 1.0 };
        let secs = self.initial.as_secs_f64() * factor.powi(attempt.min(1_000) as i32);
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(secs).min(self.max)
        }
    }
}

/// A picture read from a camera, with its capture time.
#[derive(Debug, Clone)]
pub struct Captured {
    pub image: DynamicImage,
    /// Capture time, ms since the Unix epoch.
    pub timestamp_ms: u64,
}

/// Why [`CameraDevice::read`] returned no picture.
#[derive(Debug)]
pub enum ReadError {
    /// The device is gone or stuck (read error, timeout): close it and reopen.
    Disconnected(SourceError),
    /// This frame is unusable (flagged bad by the driver, corrupt MJPG, short buffer), the
    /// device still works: skip it.
    BadFrame(SourceError),
}

/// A camera that can be opened, read and closed again: the V4L2 device, or a fake in tests.
pub trait CameraDevice: Send {
    /// Names the device in messages (e.g. `/dev/video0`).
    fn name(&self) -> String;
    /// Open and configure the device and get it ready to deliver frames.
    fn open(&mut self) -> Result<(), SourceError>;
    /// The next picture; must not block much longer than the device's read timeout.
    fn read(&mut self) -> Result<Captured, ReadError>;
    /// Release the device (no-op when closed).
    fn close(&mut self);
    /// The device's current configuration, for [`FrameSource::describe`].
    fn describe(&self) -> String {
        self.name()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Never opened: the first open is tried at once, and its failure is returned as it is.
    Fresh,
    Up,
    Down,
}

/// A [`FrameSource`] over a [`CameraDevice`] that reopens the device with [`Backoff`] when it
/// is lost. `next_frame` blocks while reconnecting (sleeping on the clock), and returns
/// [`SourceError::ReconnectFailed`] only when `max_attempts` is set and exhausted (the next call
/// starts a new round of attempts).
pub struct ReconnectingCamera<D: CameraDevice, C: Clock> {
    device: D,
    clock: C,
    backoff: Backoff,
    link: Link,
    delivered: u64,
    /// A frame was lost (bad frame, disconnect) since the last delivered one: the next index
    /// skips one, so the pipeline sees the gap and restarts its window.
    gap: bool,
    reconnects: u64,
    disconnects: u64,
    bad_frames: u64,
    consecutive_bad: u32,
    max_consecutive_bad: u32,
}

impl<D: CameraDevice, C: Clock> ReconnectingCamera<D, C> {
    /// Wrap `device` (not opened yet: see [`ReconnectingCamera::connect`]).
    pub fn new(device: D, backoff: Backoff, clock: C) -> Self {
        ReconnectingCamera { device, clock, backoff, link: Link::Fresh, delivered: 0, gap: false, reconnects: 0, disconnects: 0, bad_frames: 0, consecutive_bad: 0, max_consecutive_bad: 30 }
    }

    /// After this many bad frames in a row the device is treated as lost and reopened
    /// (default 30; at least 1).
    pub fn with_max_consecutive_bad(mut self, n: u32) -> Self {
        self.max_consecutive_bad = n.max(1);
        self
    }

    /// Open the device now (once; a no-op when open). The first open is not retried: its error,
    /// naming the device, is returned to the caller.
    pub fn connect(&mut self) -> Result<(), SourceError> {
        if self.link == Link::Up {
            return Ok(());
        }
        self.device.open()?;
        self.link = Link::Up;
        Ok(())
    }

    /// How many times the device was reopened after being lost.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// How many times the device was found lost.
    pub fn disconnects(&self) -> u64 {
        self.disconnects
    }

    /// Frames skipped as bad.
    pub fn bad_frames(&self) -> u64 {
        self.bad_frames
    }

    /// Whether the device is open.
    pub fn is_connected(&self) -> bool {
        self.link == Link::Up
    }

    pub fn device(&self) -> &D {
        &self.device
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    pub fn clock(&self) -> &C {
        &self.clock
    }

    fn lose(&mut self, error: &SourceError) {
        self.disconnects += 1;
        warn!(device = %self.device.name(), %error, disconnects = self.disconnects, "camera lost, reconnecting");
        self.device.close();
        self.link = Link::Down;
        self.consecutive_bad = 0;
        self.gap = self.delivered > 0;
    }

    /// Reopen with backoff until it works or `max_attempts` failed attempts.
    fn reconnect(&mut self) -> Result<(), SourceError> {
        let mut attempt = 0u32;
        loop {
            let delay = self.backoff.delay(attempt);
            self.clock.sleep(delay);
            attempt += 1;
            match self.device.open() {
                Ok(()) => {
                    self.reconnects += 1;
                    self.link = Link::Up;
                    info!(device = %self.device.name(), attempt, reconnects = self.reconnects, "camera reconnected");
                    return Ok(());
                }
                Err(error) => {
                    self.device.close();
                    warn!(device = %self.device.name(), attempt, %error, "camera reopen failed");
                    if self.backoff.max_attempts.is_some_and(|max| attempt >= max) {
                        return Err(SourceError::ReconnectFailed { device: self.device.name(), attempts: attempt, last: Box::new(error) });
                    }
                }
            }
        }
    }
}

impl<D: CameraDevice, C: Clock> FrameSource for ReconnectingCamera<D, C> {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        loop {
            match self.link {
                Link::Fresh => self.connect()?,
                Link::Down => self.reconnect()?,
                Link::Up => {}
            }
            match self.device.read() {
                Ok(Captured { image, timestamp_ms }) => {
                    self.consecutive_bad = 0;
                    if std::mem::take(&mut self.gap) {
                        self.delivered += 1;
                    }
                    let index = self.delivered;
                    self.delivered += 1;
                    return Ok(Some(Frame { index, timestamp_ms, image }));
                }
                Err(ReadError::BadFrame(error)) => {
                    self.gap = self.delivered > 0;
                    self.bad_frames += 1;
                    self.consecutive_bad += 1;
                    warn!(device = %self.device.name(), %error, bad_frames = self.bad_frames, "skipping bad camera frame");
                    if self.consecutive_bad >= self.max_consecutive_bad {
                        let error = SourceError::Camera { device: self.device.name(), message: format!("{} bad frames in a row", self.consecutive_bad) };
                        self.lose(&error);
                    }
                }
                Err(ReadError::Disconnected(error)) => self.lose(&error),
            }
        }
    }

    fn reconnects(&self) -> u64 {
        self.reconnects
    }

    fn describe(&self) -> String {
        let state = match self.link {
            Link::Up => "connected",
            Link::Down => "reconnecting",
            Link::Fresh => "not opened",
        };
        format!("{} ({state}, {} reconnects)", self.device.describe(), self.reconnects)
    }
}

impl<D: CameraDevice, C: Clock> Drop for ReconnectingCamera<D, C> {
    fn drop(&mut self) {
        self.device.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use image::{GrayImage, Luma};
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    /// What the fake device does on each call, scripted.
    #[derive(Debug, Clone)]
    enum Step {
        OpenOk,
        OpenFail,
        Frame(u8),
        Bad,
        Unplugged,
    }

    #[derive(Default)]
    struct Log {
        opens: u32,
        closes: u32,
        open_times: Vec<Duration>,
    }

    struct FakeDevice {
        script: VecDeque<Step>,
        open: bool,
        clock: ManualClock,
        log: Arc<Mutex<Log>>,
    }

    impl FakeDevice {
        fn new(script: &[Step], clock: &ManualClock) -> (Self, Arc<Mutex<Log>>) {
            let log = Arc::new(Mutex::new(Log::default()));
            (FakeDevice { script: script.iter().cloned().collect(), open: false, clock: clock.clone(), log: log.clone() }, log)
        }
    }

    impl CameraDevice for FakeDevice {
        fn name(&self) -> String {
            "/dev/fake0".into()
        }

        fn open(&mut self) -> Result<(), SourceError> {
            assert!(!self.open, "opened twice without close");
            let mut log = self.log.lock().unwrap();
            log.opens += 1;
            log.open_times.push(self.clock.now());
            match self.script.pop_front() {
                Some(Step::OpenOk) => {
                    self.open = true;
                    Ok(())
                }
                Some(Step::OpenFail) => Err(SourceError::Camera { device: self.name(), message: "open: No such file or directory (os error 2)".into() }),
                other => panic!("open() called, script says {other:?}"),
            }
        }

        fn read(&mut self) -> Result<Captured, ReadError> {
            assert!(self.open, "read while closed");
            // Reading takes a frame period of virtual time.
            self.clock.advance(Duration::from_millis(40));
            let err = |m: &str| SourceError::Camera { device: "/dev/fake0".into(), message: m.into() };
            match self.script.pop_front() {
                Some(Step::Frame(v)) => Ok(Captured { image: DynamicImage::ImageLuma8(GrayImage::from_pixel(2, 2, Luma([v]))), timestamp_ms: self.clock.unix_ms() }),
                Some(Step::Bad) => Err(ReadError::BadFrame(err("corrupt MJPG"))),
                Some(Step::Unplugged) => Err(ReadError::Disconnected(err("no frame within 2s"))),
                other => panic!("read() called, script says {other:?}"),
            }
        }

        fn close(&mut self) {
            if self.open {
                self.log.lock().unwrap().closes += 1;
            }
            self.open = false;
        }
    }

    fn value(frame: &Frame) -> u8 {
        frame.image.to_luma8().get_pixel(0, 0)[0]
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff { initial: ms(100), factor: 2.0, max: ms(1_000), max_attempts: None };
        let delays: Vec<_> = (0..7).map(|a| b.delay(a)).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000, 1_000].map(ms));
        assert_eq!(b.delay(u32::MAX), ms(1_000));
        let flat = Backoff { factor: 0.5, ..b.clone() };
        assert_eq!(flat.delay(5), ms(100), "factor below 1 is treated as 1");
    }

    #[test]
    fn reconnects_after_unplug_with_backoff() {
        use Step::*;
        let clock = ManualClock::new(1_700_000_000_000);
        let (dev, log) = FakeDevice::new(&[OpenOk, Frame(1), Frame(2), Unplugged, OpenFail, OpenFail, OpenFail, OpenFail, OpenFail, OpenOk, Frame(3)], &clock);
        let backoff = Backoff { initial: ms(100), factor: 2.0, max: ms(1_000), max_attempts: None };
        let mut cam = ReconnectingCamera::new(dev, backoff, clock.clone());
        cam.connect().unwrap();
        let f0 = cam.next_frame().unwrap().unwrap();
        let f1 = cam.next_frame().unwrap().unwrap();
        assert_eq!((f0.index, value(&f0)), (0, 1));
        assert_eq!((f1.index, value(&f1)), (1, 2));
        assert!(clock.sleeps().is_empty());

        let f2 = cam.next_frame().unwrap().unwrap();
        assert_eq!((f2.index, value(&f2)), (3, 3), "the frame after a reconnect leaves a gap in the indices");
        // Waits before attempts 1..=6: 100, 200, 400, 800, then capped at 1000.
        assert_eq!(clock.sleeps(), [100, 200, 400, 800, 1_000, 1_000].map(ms));
        assert_eq!(cam.reconnects(), 1);
        assert_eq!(cam.disconnects(), 1);
        assert!(cam.is_connected());
        let log = log.lock().unwrap();
        assert_eq!(log.opens, 7);
        assert_eq!(log.closes, 1, "closed once after the unplug (failed opens leave nothing open)");
        // Open attempts happen at the scheduled virtual times (after 3 reads of 40 ms).
        let t0 = ms(120);
        let expected: Vec<_> = [0, 100, 300, 700, 1_500, 2_500, 3_500].iter().map(|&d| t0 + ms(d)).collect();
        assert_eq!(log.open_times[1..], expected[1..]);
        assert_eq!(f2.timestamp_ms, 1_700_000_000_000 + 3_500 + 120 + 40);
    }

    #[test]
    fn backoff_restarts_after_a_successful_reconnect() {
        use Step::*;
        let clock = ManualClock::new(0);
        let (dev, _log) = FakeDevice::new(&[OpenOk, Unplugged, OpenFail, OpenOk, Frame(1), Unplugged, OpenOk, Frame(2)], &clock);
        let mut cam = ReconnectingCamera::new(dev, Backoff::default(), clock.clone());
        assert_eq!(value(&cam.next_frame().unwrap().unwrap()), 1);
        assert_eq!(value(&cam.next_frame().unwrap().unwrap()), 2);
        assert_eq!(clock.sleeps(), [100, 200, 100].map(ms));
        assert_eq!(cam.reconnects(), 2);
        assert_eq!(cam.disconnects(), 2);
    }

    #[test]
    fn gives_up_after_max_attempts_naming_the_device() {
        use Step::*;
        let clock = ManualClock::new(0);
        let (dev, _log) = FakeDevice::new(&[OpenOk, Unplugged, OpenFail, OpenFail, OpenFail, OpenOk, Frame(7)], &clock);
        let backoff = Backoff { max_attempts: Some(3), ..Backoff::default() };
        let mut cam = ReconnectingCamera::new(dev, backoff, clock.clone());
        let err = cam.next_frame().unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SourceError::ReconnectFailed { attempts: 3, .. }), "{err:?}");
        assert!(msg.contains("/dev/fake0") && msg.contains("3 reconnect attempts"), "{msg}");
        assert!(!cam.is_connected());
        assert!(cam.describe().contains("reconnecting"));
        // The caller may try again: a fresh round of attempts.
        let f = cam.next_frame().unwrap().unwrap();
        assert_eq!((f.index, value(&f)), (0, 7));
        assert_eq!(clock.sleeps(), [100, 200, 400, 100].map(ms));
        assert_eq!(cam.reconnects(), 1);
    }

    #[test]
    fn first_open_failure_is_returned_at_once() {
        use Step::*;
        let clock = ManualClock::new(0);
        let (dev, log) = FakeDevice::new(&[OpenFail, OpenOk, Frame(5)], &clock);
        let mut cam = ReconnectingCamera::new(dev, Backoff::default(), clock.clone());
        let err = cam.connect().unwrap_err();
        assert!(err.to_string().contains("/dev/fake0"), "{err}");
        assert!(clock.sleeps().is_empty());
        assert_eq!(value(&cam.next_frame().unwrap().unwrap()), 5);
        assert_eq!(cam.reconnects(), 0, "a first open is not a reconnect");
        assert_eq!(log.lock().unwrap().opens, 2);
    }

    #[test]
    fn bad_frames_are_skipped_and_too_many_in_a_row_reopen() {
        use Step::*;
        let clock = ManualClock::new(0);
        let (dev, _log) = FakeDevice::new(&[OpenOk, Bad, Frame(1), Bad, Bad, Bad, OpenOk, Frame(2)], &clock);
        let mut cam = ReconnectingCamera::new(dev, Backoff::default(), clock.clone()).with_max_consecutive_bad(3);
        let f = cam.next_frame().unwrap().unwrap();
        assert_eq!((f.index, value(&f)), (0, 1));
        assert_eq!(cam.bad_frames(), 1);
        assert_eq!(cam.disconnects(), 0);
        let f = cam.next_frame().unwrap().unwrap();
        assert_eq!((f.index, value(&f)), (2, 2), "frames lost in between leave a gap of one index");
        assert_eq!(cam.bad_frames(), 4);
        assert_eq!(cam.disconnects(), 1);
        assert_eq!(cam.reconnects(), 1);
        assert_eq!(clock.sleeps(), [ms(100)]);
    }

    #[test]
    fn drop_closes_the_device() {
        use Step::*;
        let clock = ManualClock::new(0);
        let (dev, log) = FakeDevice::new(&[OpenOk], &clock);
        let mut cam = ReconnectingCamera::new(dev, Backoff::default(), clock);
        cam.connect().unwrap();
        assert!(cam.describe().contains("/dev/fake0 (connected, 0 reconnects)"));
        drop(cam);
        assert_eq!(log.lock().unwrap().closes, 1);
    }
}
