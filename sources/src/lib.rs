//! Frame sources for the SFN-VAD edge runtime, all behind one trait, [`FrameSource`]:
//!
//! - [`ImageFolder`]: a folder of `*.jpg|jpeg|png|tif|tiff` frames (always available);
//! - [`VideoFile`]: a video file decoded with FFmpeg (cargo feature `video`);
//! - network streams (RTSP, HTTP MJPEG, MPEG-TS over TCP / UDP) through FFmpeg with reconnection
//!   ([`stream`], cargo feature `video`);
//! - [`V4l2Camera`]: a V4L2 camera with unplug detection and reconnection (cargo feature `v4l`).
//!
//! The parts that need no device or library are always compiled and tested on their own:
//! the pixel-format conversions ([`convert`]), the pacing of file sources ([`Pacer`] with an
//! injected [`Clock`]) and the reconnect/backoff state machine ([`ReconnectingCamera`] over the
//! [`CameraDevice`] trait).
//!
//! Cargo features (both off by default; `scripts/setup.sh` installs the Debian packages):
//! - `video`: `ffmpeg-next` 9 (codec, format, swscale) against the system FFmpeg (bookworm: 5.1);
//!   needs `libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libclang-dev pkg-config`.
//! - `v4l`: `v4l` 0.14 (bindgen over `linux/videodev2.h`); needs `libclang-dev linux-libc-dev`.

pub mod camera;
pub mod clock;
pub mod convert;
mod error;
pub mod folder;
pub mod pacing;
pub mod reconnect;
#[cfg(feature = "video")]
pub mod stream;
#[cfg(feature = "video")]
pub mod video;

pub use camera::{capture_time_unix_ms, choose_format};
#[cfg(feature = "v4l")]
pub use camera::{V4l2Camera, V4l2Config, V4l2Negotiated};
pub use clock::{Clock, ManualClock, SystemClock};
pub use convert::{ConvertError, PixelFormat};
pub use error::SourceError;
pub use folder::{ImageFolder, ImageFolderOptions};
pub use pacing::{Pacer, Pacing};
pub use reconnect::{Backoff, CameraDevice, Captured, ReadError, ReconnectingCamera};
#[cfg(feature = "video")]
pub use stream::{open_stream, redact, StreamDevice, StreamOptions};
#[cfg(feature = "video")]
pub use video::{VideoFile, VideoFileOptions, VideoPixels};

/// One frame delivered by a [`FrameSource`].
#[derive(Debug, Clone)]
pub struct Frame {
    /// Number of frames this source delivered before this one (the first frame is 0). Frames a
    /// source skipped (corrupt files, camera frames flagged bad) do not count.
    pub index: u64,
    /// Milliseconds since the Unix epoch: the capture time for cameras; for files, the start time
    /// of the source plus `index * 1000 / fps` (the source's nominal frame rate).
    pub timestamp_ms: u64,
    /// The picture: `Luma8` for grey sources, `Rgb8` for colour (PNG/TIFF files keep what the
    /// file holds, e.g. `Rgba8` or 16-bit).
    pub image: image::DynamicImage,
}

/// A source of frames: a camera, a folder of images, a video file.
pub trait FrameSource: Send {
    /// The next frame; `Ok(None)` is the end of the stream (files; cameras never end). An
    /// error names the device, file or frame; after an error the source stays usable and the
    /// caller decides whether to call again (file sources then go on with the next frame).
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError>;

    /// A one-line, human-readable description (kind, path/device, format).
    fn describe(&self) -> String;

    /// Times the source lost its device or stream and got it back (cameras and streams; 0 for files).
    fn reconnects(&self) -> u64 {
        0
    }
}

impl<S: FrameSource + ?Sized> FrameSource for Box<S> {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        (**self).next_frame()
    }

    fn describe(&self) -> String {
        (**self).describe()
    }

    fn reconnects(&self) -> u64 {
        (**self).reconnects()
    }
}

/// Frame `index` of a file source, once it is due: waits on `pacer`, fixes the start time at the
/// first frame (`start_option` or the clock's wall time) and stamps `start + index * 1000 / fps`.
pub(crate) fn paced_frame(pacer: &mut Pacer, clock: &dyn Clock, start_ms: &mut Option<u64>, start_option: Option<u64>, index: u64, fps: f64, image: image::DynamicImage) -> Frame {
    pacer.wait(index, clock);
    let start = *start_ms.get_or_insert_with(|| start_option.unwrap_or_else(|| clock.unix_ms()));
    Frame { index, timestamp_ms: file_timestamp_ms(start, index, fps), image }
}

/// Timestamp of frame `index` of a file source: `start_ms + index * 1000 / fps`, rounded down.
pub fn file_timestamp_ms(start_ms: u64, index: u64, fps: f64) -> u64 {
    start_ms + (index as f64 * 1000.0 / fps).floor() as u64
}
