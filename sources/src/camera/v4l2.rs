//! [`V4l2Camera`]: a V4L2 capture device (single-planar, mmap streaming) behind
//! [`ReconnectingCamera`].
//!
//! v4l 0.14 pitfalls handled here: `CaptureStream::next` polls without a timeout unless one is
//! set (it would block forever on an unplugged camera), so the stream gets `set_timeout`; the
//! stream is never started by hand (`next` queues every buffer before `STREAMON`; a manual
//! `start()` would leave only one queued); multi-planar devices are refused with a clear error;
//! and the crate's destructors panic on some ioctl failures of a vanished device, so the stream
//! is released inside `catch_unwind`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Duration;

use tracing::{debug, info, warn};
use v4l::buffer::{Flags as BufferFlags, Type};
use v4l::capability::Flags as CapabilityFlags;
use v4l::device::Device;
use v4l::format::{Format, FourCC};
use v4l::io::mmap::Stream;
use v4l::io::traits::{CaptureStream, Stream as _};
use v4l::video::capture::Parameters;
use v4l::video::Capture;

use crate::camera::{capture_time_unix_ms, choose_format};
use crate::clock::{Clock, SystemClock};
use crate::convert::{fourcc_string, to_image, PixelFormat};
use crate::reconnect::{Backoff, CameraDevice, Captured, ReadError, ReconnectingCamera};
use crate::{Frame, FrameSource, SourceError};

/// What to open and how.
#[derive(Debug, Clone, PartialEq)]
pub struct V4l2Config {
    /// Device node, e.g. `/dev/video0`.
    pub device: PathBuf,
    /// Requested frame size; the driver may pick the nearest it supports.
    pub width: u32,
    pub height: u32,
    /// Requested frame rate; drivers that cannot set it keep theirs.
    pub fps: u32,
    /// Requested pixel format; if the device does not offer it another convertible one is used.
    pub format: PixelFormat,
    /// Number of mmap buffers (at least 2).
    pub buffers: u32,
    /// A read that yields no frame within this time counts as a lost camera.
    pub read_timeout: Duration,
    /// Waits between reopen attempts.
    pub backoff: Backoff,
    /// After this many unusable frames in a row the camera is reopened.
    pub max_consecutive_bad: u32,
}

impl V4l2Config {
    /// 640x480 YUYV at 30 fps, 4 buffers, 2 s read timeout, default backoff.
    pub fn new(device: impl Into<PathBuf>) -> Self {
        V4l2Config {
            device: device.into(),
            width: 640,
            height: 480,
            fps: 30,
            format: PixelFormat::Yuyv,
            buffers: 4,
            read_timeout: Duration::from_secs(2),
            backoff: Backoff::default(),
            max_consecutive_bad: 30,
        }
    }

    /// `/dev/video{index}` with the defaults of [`V4l2Config::new`].
    pub fn index(index: usize) -> Self {
        Self::new(format!("/dev/video{index}"))
    }

    fn validate(&self) -> Result<(), SourceError> {
        let bad = |message: String| Err(SourceError::Camera { device: self.device.display().to_string(), message });
        if self.width == 0 || self.height == 0 {
            return bad(format!("invalid frame size {}x{}", self.width, self.height));
        }
        if self.fps == 0 {
            return bad("frame rate must be at least 1".into());
        }
        if self.buffers < 2 {
            return bad(format!("need at least 2 buffers, got {}", self.buffers));
        }
        if self.read_timeout.is_zero() || self.read_timeout.as_millis() > i32::MAX as u128 {
            return bad(format!("invalid read timeout {:?}", self.read_timeout));
        }
        Ok(())
    }
}

/// What the driver accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct V4l2Negotiated {
    pub width: u32,
    pub height: u32,
    /// Bytes per line (0 for compressed formats).
    pub stride: u32,
    pub format: PixelFormat,
    /// Frame rate the driver reports, if any.
    pub fps: Option<f64>,
    /// Number of buffers the driver allocated.
    pub buffers: u32,
    pub driver: String,
    pub card: String,
}

struct OpenDevice {
    // Field order matters: the stream (unmaps, STREAMOFF) goes before the device (close).
    stream: Stream<'static>,
    _device: Device,
}

/// The V4L2 device as a [`CameraDevice`] (open / read / close); [`V4l2Camera`] adds reconnection.
struct V4l2Device {
    config: V4l2Config,
    name: String,
    open: Option<OpenDevice>,
    negotiated: Option<V4l2Negotiated>,
    clock: SystemClock,
}

/// Run `f`, turning a panic inside the v4l crate (it unwraps in a few places) into `None`.
fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

fn monotonic_us() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC always exists.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// A V4L2 buffer timestamp in µs (0 when unset or negative).
// `time_t` is i64 on 64-bit targets but i32 on 32-bit ARM boards: the conversion is not useless there.
#[allow(clippy::useless_conversion)]
fn timestamp_us(t: &v4l::timestamp::Timestamp) -> u64 {
    let sec = i64::from(t.sec).max(0);
    let usec = i64::from(t.usec).max(0);
    sec.saturating_mul(1_000_000).saturating_add(usec) as u64
}

impl V4l2Device {
    fn new(config: V4l2Config) -> Self {
        V4l2Device { name: config.device.display().to_string(), config, open: None, negotiated: None, clock: SystemClock::new() }
    }

    fn err(&self, message: String) -> SourceError {
        SourceError::Camera { device: self.name.clone(), message }
    }

    fn try_open(&self) -> Result<(OpenDevice, V4l2Negotiated), SourceError> {
        let c = &self.config;
        let device = Device::with_path(&c.device).map_err(|e| self.err(format!("open: {e}")))?;

        let (driver, card) = match guarded(|| device.query_caps()) {
            Some(Ok(caps)) => {
                let flags = caps.capabilities;
                if !flags.contains(CapabilityFlags::VIDEO_CAPTURE) {
                    let why = if flags.contains(CapabilityFlags::VIDEO_CAPTURE_MPLANE) { "multi-planar capture devices are not supported" } else { "not a video capture device (a metadata node?)" };
                    return Err(self.err(format!("{why} (driver {}, card {})", caps.driver, caps.card)));
                }
                if !flags.contains(CapabilityFlags::STREAMING) {
                    return Err(self.err(format!("no streaming I/O (driver {})", caps.driver)));
                }
                (caps.driver, caps.card)
            }
            Some(Err(e)) => return Err(self.err(format!("VIDIOC_QUERYCAP: {e}"))),
            None => (String::from("?"), String::from("?")),
        };

        let offered: Vec<[u8; 4]> = match guarded(|| device.enum_formats()) {
            Some(Ok(list)) => list.iter().map(|d| d.fourcc.repr).collect(),
            _ => Vec::new(),
        };
        let wanted = choose_format(c.format, &offered);
        if wanted != c.format {
            info!(device = %self.name, requested = %c.format, using = %wanted,
                offered = ?offered.iter().map(|&f| fourcc_string(f)).collect::<Vec<_>>(),
                "requested pixel format not offered");
        }
        let request = Format::new(c.width, c.height, FourCC::new(&wanted.fourcc()));
        let actual = device.set_format(&request).map_err(|e| self.err(format!("VIDIOC_S_FMT {}x{} {wanted}: {e}", c.width, c.height)))?;
        let format = PixelFormat::from_fourcc(actual.fourcc.repr)
            .ok_or_else(|| self.err(format!("driver chose pixel format {} which cannot be converted (supported: GREY, YUYV, MJPG)", fourcc_string(actual.fourcc.repr))))?;
        if actual.width == 0 || actual.height == 0 {
            return Err(self.err(format!("driver chose an empty frame size {}x{}", actual.width, actual.height)));
        }
        if (actual.width, actual.height) != (c.width, c.height) {
            info!(device = %self.name, requested = %format!("{}x{}", c.width, c.height),
                got = %format!("{}x{}", actual.width, actual.height), "driver adjusted the frame size");
        }

        let fps = match device.set_params(&Parameters::with_fps(c.fps)) {
            Ok(p) if p.interval.numerator > 0 => Some(p.interval.denominator as f64 / p.interval.numerator as f64),
            Ok(_) => None,
            Err(e) => {
                warn!(device = %self.name, error = %e, fps = c.fps, "cannot set the frame rate, keeping the driver's");
                None
            }
        };

        let mut stream = Stream::with_buffers(&device, Type::VideoCapture, c.buffers).map_err(|e| self.err(format!("allocating {} mmap buffers: {e}", c.buffers)))?;
        stream.set_timeout(c.read_timeout);
        let negotiated =
            V4l2Negotiated { width: actual.width, height: actual.height, stride: if format == PixelFormat::Mjpg { 0 } else { actual.stride }, format, fps, buffers: c.buffers, driver, card };
        debug!(device = %self.name, ?negotiated, "camera opened");
        Ok((OpenDevice { stream, _device: device }, negotiated))
    }
}

impl CameraDevice for V4l2Device {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn open(&mut self) -> Result<(), SourceError> {
        self.close();
        let (open, negotiated) = self.try_open()?;
        self.open = Some(open);
        self.negotiated = Some(negotiated);
        Ok(())
    }

    fn read(&mut self) -> Result<Captured, ReadError> {
        let timeout = self.config.read_timeout;
        let (Some(open), Some(neg)) = (self.open.as_mut(), self.negotiated.as_ref()) else {
            return Err(ReadError::Disconnected(self.err("not open".into())));
        };
        let name = &self.name;
        let cam_err = |message: String| SourceError::Camera { device: name.clone(), message };
        // The first call queues all buffers and starts streaming; a timed-out poll returns
        // ErrorKind::TimedOut instead of blocking forever.
        let (buf, meta) = match CaptureStream::next(&mut open.stream) {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(ReadError::Disconnected(cam_err(format!("no frame within {timeout:?} (unplugged or stalled)")))),
            Err(e) => return Err(ReadError::Disconnected(cam_err(format!("capture: {e}")))),
        };
        let now_mono = monotonic_us();
        let now_unix = self.clock.unix_ms();
        if meta.flags.contains(BufferFlags::ERROR) {
            return Err(ReadError::BadFrame(cam_err(format!("frame {}: driver flagged the buffer as corrupt", meta.sequence))));
        }
        let used = meta.bytesused as usize;
        let data: &[u8] = if used == 0 || used > buf.len() { buf } else { &buf[..used] };
        let image = to_image(neg.format, data, neg.width, neg.height, neg.stride as usize).map_err(|e| ReadError::BadFrame(cam_err(format!("frame {}: {e}", meta.sequence))))?;
        let stamp_us = timestamp_us(&meta.timestamp);
        Ok(Captured { image, timestamp_ms: capture_time_unix_ms(stamp_us, now_mono, now_unix) })
    }

    fn close(&mut self) {
        if let Some(mut open) = self.open.take() {
            // STREAMOFF now; the destructors unmap the buffers and close the fd. They panic on
            // some errors of a vanished device: contain that, the device is gone either way.
            if let Err(e) = open.stream.stop() {
                debug!(device = %self.name, error = %e, "STREAMOFF failed");
            }
            if guarded(move || drop(open)).is_none() {
                warn!(device = %self.name, "releasing the device failed (ignored)");
            }
        }
    }

    fn describe(&self) -> String {
        match &self.negotiated {
            Some(n) => format!(
                "V4L2 camera {} ({}x{} {}{}, {} buffers, {} / {})",
                self.name,
                n.width,
                n.height,
                n.format,
                n.fps.map(|f| format!(" @ {f:.2} fps")).unwrap_or_default(),
                n.buffers,
                n.driver,
                n.card
            ),
            None => format!("V4L2 camera {} (requested {}x{} {} @ {} fps)", self.name, self.config.width, self.config.height, self.config.format, self.config.fps),
        }
    }
}

/// A V4L2 camera as a [`FrameSource`]: opens the device with the requested size, rate and
/// format (taking what the driver gives and converting it), captures through `buffers` mmap
/// buffers, and, when a read fails or times out, reopens it with capped exponential backoff
/// ([`V4l2Config::backoff`]), counting reconnects. Frames are `Luma8` (GREY) or `Rgb8` (YUYV,
/// MJPG) with the capture time from the driver's monotonic buffer timestamp.
pub struct V4l2Camera {
    inner: ReconnectingCamera<V4l2Device, SystemClock>,
}

impl V4l2Camera {
    /// Open and configure the camera now; errors (naming the device) are returned at once, not
    /// retried.
    pub fn open(config: V4l2Config) -> Result<Self, SourceError> {
        config.validate()?;
        let backoff = config.backoff.clone();
        let max_bad = config.max_consecutive_bad;
        let mut inner = ReconnectingCamera::new(V4l2Device::new(config), backoff, SystemClock::new()).with_max_consecutive_bad(max_bad);
        inner.connect()?;
        info!(camera = %inner.device().describe(), "camera ready");
        Ok(V4l2Camera { inner })
    }

    /// What the driver accepted at the last (re)open.
    pub fn negotiated(&self) -> Option<&V4l2Negotiated> {
        self.inner.device().negotiated.as_ref()
    }

    pub fn config(&self) -> &V4l2Config {
        &self.inner.device().config
    }

    /// Reopens after a lost device.
    pub fn reconnects(&self) -> u64 {
        self.inner.reconnects()
    }

    /// Times the device was found lost.
    pub fn disconnects(&self) -> u64 {
        self.inner.disconnects()
    }

    /// Frames skipped as unusable.
    pub fn bad_frames(&self) -> u64 {
        self.inner.bad_frames()
    }

    pub fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }
}

impl FrameSource for V4l2Camera {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        self.inner.next_frame()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn reconnects(&self) -> u64 {
        self.inner.reconnects()
    }
}

// Compile-time check: the camera can move to a capture thread.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<V4l2Camera>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_validation() {
        let c = V4l2Config::index(3);
        assert_eq!(c.device, PathBuf::from("/dev/video3"));
        assert!(c.validate().is_ok());
        let bad = V4l2Config { buffers: 1, ..c.clone() };
        let msg = bad.validate().unwrap_err().to_string();
        assert!(msg.contains("/dev/video3") && msg.contains("2 buffers"), "{msg}");
        assert!(V4l2Config { width: 0, ..c.clone() }.validate().is_err());
        assert!(V4l2Config { fps: 0, ..c }.validate().is_err());
    }

    #[test]
    fn missing_device_is_an_error_naming_it() {
        // No /dev/video* on the build machines: opening a missing node must fail cleanly.
        let err = V4l2Camera::open(V4l2Config::new("/dev/video-does-not-exist-42")).err().expect("no such device");
        let msg = err.to_string();
        assert!(msg.contains("/dev/video-does-not-exist-42") && msg.contains("open"), "{msg}");
    }

    #[test]
    fn a_non_v4l2_file_is_refused() {
        // /dev/null opens, but VIDIOC_QUERYCAP fails: an error naming the device, no panic.
        let err = V4l2Camera::open(V4l2Config::new("/dev/null")).err().expect("not a camera");
        let msg = err.to_string();
        assert!(msg.contains("/dev/null"), "{msg}");
    }

    #[test]
    fn monotonic_clock_ticks() {
        let a = monotonic_us();
        let b = monotonic_us();
        assert!(a > 0 && b >= a);
    }
}
