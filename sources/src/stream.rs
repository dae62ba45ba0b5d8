//! Network video streams through FFmpeg (cargo feature `video`): `rtsp://` (over TCP by default),
//! `http(s)://` (e.g. MJPEG), `tcp://` and `udp://` (e.g. MPEG-TS). A [`StreamDevice`] is a
//! [`CameraDevice`], so [`open_stream`] wraps it in the same reconnect-with-backoff state machine as
//! V4L2 cameras: a stream that errors, ends or stays silent for the read timeout is closed and
//! reopened. Credentials in the URL never appear in messages or logs ([`redact`]).

use std::time::Duration;

use ffmpeg_next as ffmpeg;
use tracing::debug;

use crate::clock::{Clock, SystemClock};
use crate::reconnect::{Backoff, CameraDevice, Captured, ReadError, ReconnectingCamera};
use crate::video::{init, Decoding, VideoPixels};
use crate::SourceError;

/// URL schemes a stream may use.
pub const STREAM_SCHEMES: [&str; 6] = ["rtsp", "rtsps", "http", "https", "tcp", "udp"];

/// How to open a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamOptions {
    /// Opening, and every read, give up after this long without data (the camera is then reconnected).
    pub timeout: Duration,
    /// RTSP over TCP (interleaved; passes NAT and firewalls) rather than UDP.
    pub rtsp_tcp: bool,
    pub pixels: VideoPixels,
    pub backoff: Backoff,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions { timeout: Duration::from_secs(5), rtsp_tcp: true, pixels: VideoPixels::Rgb8, backoff: Backoff::default() }
    }
}

/// The URL with any `user:password@` replaced by `***@`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Checks the URL's form: a supported scheme and a host.
pub fn check_url(url: &str) -> Result<(), SourceError> {
    let bad = |reason: String| SourceError::Config { what: format!("stream URL {}", redact(url)), reason };
    let Some((scheme, rest)) = url.split_once("://") else { return Err(bad("not a URL (scheme://host...)".into())) };
    if !STREAM_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        return Err(bad(format!("scheme {scheme:?} is not one of {}", STREAM_SCHEMES.join(", "))));
    }
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(bad("no host".into()));
    }
    Ok(())
}

/// One network stream, opened on demand (see the module docs).
pub struct StreamDevice {
    url: String,
    shown: String,
    options: StreamOptions,
    dec: Option<Decoding>,
    clock: SystemClock,
}

impl StreamDevice {
    /// A closed device for `url` (checked: [`check_url`]).
    pub fn new(url: &str, options: StreamOptions) -> Result<Self, SourceError> {
        check_url(url)?;
        Ok(StreamDevice { url: url.to_string(), shown: redact(url), options, dec: None, clock: SystemClock::new() })
    }

    fn fail(&self, message: String) -> SourceError {
        SourceError::Camera { device: self.shown.clone(), message }
    }

    /// FFmpeg options: socket timeouts (µs) for every protocol, RTSP transport.
    fn dictionary(&self) -> ffmpeg::Dictionary<'static> {
        let us = self.options.timeout.as_micros().max(1).to_string();
        let mut d = ffmpeg::Dictionary::new();
        // `timeout`: socket I/O timeout for rtsp, tcp, http (and udp reads); `rw_timeout`: any protocol.
        d.set("timeout", &us);
        d.set("rw_timeout", &us);
        if self.url.starts_with("rtsp") {
            d.set("rtsp_transport", if self.options.rtsp_tcp { "tcp" } else { "udp" });
        }
        d
    }
}

impl CameraDevice for StreamDevice {
    fn name(&self) -> String {
        self.shown.clone()
    }

    fn open(&mut self) -> Result<(), SourceError> {
        self.dec = None;
        init().map_err(|e| self.fail(format!("initialising FFmpeg: {e}")))?;
        let input = ffmpeg::format::input_with_dictionary(&self.url, self.dictionary()).map_err(|e| self.fail(format!("open: {e}")))?;
        let dec = Decoding::new(input, self.options.pixels).map_err(|m| self.fail(m))?;
        debug!(stream = %self.shown, codec = %dec.codec, fps = dec.fps, "stream opened");
        self.dec = Some(dec);
        Ok(())
    }

    fn read(&mut self) -> Result<Captured, ReadError> {
        let shown = self.shown.clone();
        let fail = |message: String| SourceError::Camera { device: shown.clone(), message };
        let Some(dec) = self.dec.as_mut() else { return Err(ReadError::Disconnected(fail("not open".into()))) };
        match dec.next_image() {
            Ok(Some(image)) => Ok(Captured { image, timestamp_ms: self.clock.unix_ms() }),
            // A live stream that ends has lost its server: reconnect.
            Ok(None) => Err(ReadError::Disconnected(fail("the stream ended".into()))),
            Err(m) => Err(ReadError::Disconnected(fail(m))),
        }
    }

    fn close(&mut self) {
        self.dec = None;
    }

    fn describe(&self) -> String {
        match &self.dec {
            Some(d) => {
                let (w, h) = d.dimensions();
                format!("stream {} ({w}x{h} {} @ {:.3} fps)", self.shown, d.codec, d.fps)
            }
            None => format!("stream {} (not connected)", self.shown),
        }
    }
}

/// A network stream that reconnects with backoff; the first connection is made here, so an
/// unreachable or malformed URL is an error at once (naming the URL without credentials).
pub fn open_stream(url: &str, options: StreamOptions) -> Result<ReconnectingCamera<StreamDevice, SystemClock>, SourceError> {
    let backoff = options.backoff.clone();
    let mut cam = ReconnectingCamera::new(StreamDevice::new(url, options)?, backoff, SystemClock::new());
    cam.connect()?;
    Ok(cam)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(redact("rtsp://admin:hunter2@10.0.0.5:554/stream1"), "rtsp://***@10.0.0.5:554/stream1");
        assert_eq!(redact("rtsp://10.0.0.5/live?user=a"), "rtsp://10.0.0.5/live?user=a");
        assert_eq!(redact("http://u:p@cam/a@b"), "http://***@cam/a@b");
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn urls_are_checked_and_named_without_credentials() {
        check_url("rtsp://cam.local/stream").unwrap();
        check_url("udp://127.0.0.1:1234").unwrap();
        for bad in ["ftp://host/x", "cam.local/stream", "rtsp://", "tcp://:5000", "rtsp://user:secret@/x"] {
            let e = check_url(bad).unwrap_err().to_string();
            assert!(!e.contains("secret"), "{e}");
            assert!(e.contains("stream URL"), "{e}");
        }
    }
}
