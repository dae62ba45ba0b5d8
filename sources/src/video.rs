//! [`VideoFile`]: a video file decoded with FFmpeg (`ffmpeg-next`, cargo feature `video`).

use std::path::{Path, PathBuf};

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg::util::frame::video::Video as VideoFrame;
use ffmpeg_next as ffmpeg;
use image::{DynamicImage, GrayImage, RgbImage};
use tracing::debug;

use crate::clock::{Clock, SystemClock};
use crate::pacing::{Pacer, Pacing};
use crate::{Frame, FrameSource, SourceError};

/// The frame rate assumed when a file does not say.
pub const DEFAULT_VIDEO_FPS: f64 = 25.0;

/// Pixel layout of the delivered frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoPixels {
    /// `Rgb8`.
    Rgb8,
    /// `Luma8`.
    Gray8,
}

/// Options of a [`VideoFile`].
#[derive(Debug, Clone, PartialEq)]
pub struct VideoFileOptions {
    pub pacing: Pacing,
    pub pixels: VideoPixels,
    /// Timestamp of frame 0 in ms since the Unix epoch. Default: the wall clock when frame 0 is
    /// delivered. Frame `i` is stamped `start + i * 1000 / fps` with the file's frame rate.
    pub start_time_ms: Option<u64>,
}

impl Default for VideoFileOptions {
    fn default() -> Self {
        VideoFileOptions { pacing: Pacing::AsFastAsPossible, pixels: VideoPixels::Rgb8, start_time_ms: None }
    }
}

/// The swscale context, which ffmpeg-next does not mark `Send`.
struct Scaler(scaling::Context);

// SAFETY: an SwsContext is a plain heap object with no thread affinity; it is owned by one
// VideoFile and only used through `&mut self`, never from two threads at once.
unsafe impl Send for Scaler {}

/// An opened FFmpeg input's best video stream, decoded picture by picture and converted to `Rgb8` or
/// `Luma8`: what [`VideoFile`] and the network stream source share. Errors are plain messages that
/// the owner prefixes with its file or URL.
pub(crate) struct Decoding {
    // Decoder and scaler before the demuxer (drop order).
    decoder: ffmpeg::decoder::Video,
    scaler: Option<(Scaler, Pixel, u32, u32)>,
    input: ffmpeg::format::context::Input,
    stream_index: usize,
    pixels: VideoPixels,
    /// The stream's frame rate (average, else its base rate, else [`DEFAULT_VIDEO_FPS`]).
    pub fps: f64,
    pub codec: String,
    sent_eof: bool,
    /// Pictures decoded so far (named in messages).
    pub decoded: u64,
}

impl Decoding {
    /// Set up the decoder for the best video stream of `input`.
    pub fn new(input: ffmpeg::format::context::Input, pixels: VideoPixels) -> Result<Self, String> {
        let stream = input.streams().best(ffmpeg::media::Type::Video).ok_or("no video stream")?;
        let stream_index = stream.index();
        let fps = [stream.avg_frame_rate(), stream.rate()]
            .into_iter()
            .filter(|r| r.numerator() > 0 && r.denominator() > 0)
            .map(f64::from)
            .find(|f| f.is_finite() && *f > 0.0 && *f < 1_000.0)
            .unwrap_or(DEFAULT_VIDEO_FPS);
        let context = ffmpeg::codec::context::Context::from_parameters(stream.parameters()).map_err(|e| format!("decoder parameters: {e}"))?;
        let decoder = context.decoder().video().map_err(|e| format!("no decoder for the video stream: {e}"))?;
        let codec = decoder.codec().map(|c| c.name().to_string()).unwrap_or_else(|| format!("{:?}", decoder.id()));
        Ok(Decoding { decoder, scaler: None, input, stream_index, pixels, fps, codec, sent_eof: false, decoded: 0 })
    }

    /// Frame size as the decoder reports it.
    pub fn dimensions(&self) -> (u32, u32) {
        (self.decoder.width(), self.decoder.height())
    }

    /// The next picture, `None` at the end of the input.
    pub fn next_image(&mut self) -> Result<Option<DynamicImage>, String> {
        let Some(decoded) = self.decode_next()? else { return Ok(None) };
        let image = self.convert(&decoded)?;
        self.decoded += 1;
        Ok(Some(image))
    }

    /// Feed the decoder: the next packet of our stream, or end of file.
    fn feed(&mut self) -> Result<(), String> {
        loop {
            let mut packet = ffmpeg::Packet::empty();
            match packet.read(&mut self.input) {
                Ok(()) => {
                    if packet.stream() != self.stream_index {
                        continue;
                    }
                    return self.decoder.send_packet(&packet).map_err(|e| format!("decoding (after frame {}): {e}", self.decoded));
                }
                Err(ffmpeg::Error::Eof) => {
                    self.sent_eof = true;
                    return self.decoder.send_eof().map_err(|e| format!("flushing the decoder: {e}"));
                }
                Err(e) => return Err(format!("reading after frame {}: {e}", self.decoded)),
            }
        }
    }

    /// The next decoded picture, `None` at the end.
    fn decode_next(&mut self) -> Result<Option<VideoFrame>, String> {
        let mut decoded = VideoFrame::empty();
        loop {
            match self.decoder.receive_frame(&mut decoded) {
                Ok(()) => return Ok(Some(decoded)),
                Err(ffmpeg::Error::Eof) => return Ok(None),
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                    if self.sent_eof {
                        return Ok(None);
                    }
                    self.feed()?;
                }
                Err(e) => return Err(format!("decoding frame {}: {e}", self.decoded)),
            }
        }
    }

    fn convert(&mut self, decoded: &VideoFrame) -> Result<DynamicImage, String> {
        let (format, w, h) = (decoded.format(), decoded.width(), decoded.height());
        let target = match self.pixels {
            VideoPixels::Rgb8 => Pixel::RGB24,
            VideoPixels::Gray8 => Pixel::GRAY8,
        };
        // (Re)build the scaler when the stream's format or size changes.
        if !matches!(&self.scaler, Some((_, f, sw, sh)) if *f == format && *sw == w && *sh == h) {
            let ctx = scaling::Context::get(format, w, h, target, w, h, scaling::Flags::BILINEAR).map_err(|e| format!("frame {}: no conversion from {format:?} {w}x{h}: {e}", self.decoded))?;
            self.scaler = Some((Scaler(ctx), format, w, h));
        }
        let mut out = VideoFrame::empty();
        let decoded_so_far = self.decoded;
        let (scaler, ..) = self.scaler.as_mut().expect("scaler just set");
        scaler.0.run(decoded, &mut out).map_err(|e| format!("frame {decoded_so_far}: pixel conversion: {e}"))?;
        let bpp = if target == Pixel::RGB24 { 3 } else { 1 };
        let row = w as usize * bpp;
        let stride = out.stride(0);
        let data = out.data(0);
        let mut pixels = Vec::with_capacity(row * h as usize);
        for y in 0..h as usize {
            pixels.extend_from_slice(&data[y * stride..y * stride + row]);
        }
        Ok(match target {
            Pixel::RGB24 => DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, pixels).expect("size matches")),
            _ => DynamicImage::ImageLuma8(GrayImage::from_raw(w, h, pixels).expect("size matches")),
        })
    }
}

/// A video file decoded frame by frame (first/best video stream) to `Rgb8` or `Luma8`, paced
/// like [`crate::ImageFolder`]. Errors name the file (and the frame, for decoding errors).
pub struct VideoFile {
    path: PathBuf,
    dec: Decoding,
    options: VideoFileOptions,
    finished: bool,
    pacer: Pacer,
    clock: Box<dyn Clock>,
    start_ms: Option<u64>,
}

/// FFmpeg set up once; its own log is silenced: every failure comes back as an error naming the file or
/// the URL without credentials, while FFmpeg's messages could quote a URL whole.
pub(crate) fn init() -> Result<(), ffmpeg::Error> {
    static INIT: std::sync::OnceLock<Result<(), ffmpeg::Error>> = std::sync::OnceLock::new();
    *INIT.get_or_init(|| {
        ffmpeg::init()?;
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Quiet);
        Ok(())
    })
}

impl VideoFile {
    /// Open `path` and set up the decoder for its best video stream.
    pub fn open(path: impl AsRef<Path>, options: VideoFileOptions) -> Result<Self, SourceError> {
        let path = path.as_ref().to_path_buf();
        let err = |message: String| SourceError::Video { path: path.clone(), message };
        options.pacing.validate().map_err(|e| err(e.to_string()))?;
        init().map_err(|e| err(format!("initialising FFmpeg: {e}")))?;
        if !path.is_file() {
            // FFmpeg's own message for a missing file is a bare errno.
            return Err(match std::fs::metadata(&path) {
                Err(source) => SourceError::Io { path, source },
                Ok(_) => err("not a file".into()),
            });
        }
        let input = ffmpeg::format::input(&path).map_err(|e| err(format!("open: {e}")))?;
        let dec = Decoding::new(input, options.pixels).map_err(err)?;
        debug!(file = %path.display(), codec = %dec.codec, width = dec.dimensions().0, height = dec.dimensions().1, fps = dec.fps, "video opened");
        Ok(VideoFile { path, dec, pacer: Pacer::new(options.pacing), options, finished: false, clock: Box::new(SystemClock::new()), start_ms: None })
    }

    /// Use another clock (tests: [`crate::ManualClock`]).
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// The file's frame rate (average, else the stream's base rate, else 25).
    pub fn fps(&self) -> f64 {
        self.dec.fps
    }

    /// Frame size as the decoder reports it.
    pub fn dimensions(&self) -> (u32, u32) {
        self.dec.dimensions()
    }

    /// Frames delivered so far.
    pub fn delivered(&self) -> u64 {
        self.dec.decoded
    }
}

impl FrameSource for VideoFile {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.finished {
            return Ok(None);
        }
        let index = self.dec.decoded;
        let Some(image) = self.dec.next_image().map_err(|message| SourceError::Video { path: self.path.clone(), message })? else {
            self.finished = true;
            debug!(file = %self.path.display(), frames = index, "end of video");
            return Ok(None);
        };
        let fps = self.dec.fps;
        Ok(Some(crate::paced_frame(&mut self.pacer, self.clock.as_ref(), &mut self.start_ms, self.options.start_time_ms, index, fps, image)))
    }

    fn describe(&self) -> String {
        let (w, h) = self.dimensions();
        format!("video {} ({w}x{h} {} @ {:.3} fps, {})", self.path.display(), self.dec.codec, self.dec.fps, self.options.pacing)
    }
}
