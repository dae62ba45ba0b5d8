//! [`ImageFolder`]: a folder of image files played back as a frame source.

use std::cmp::Ordering;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat};
use tracing::{debug, warn};

use crate::clock::{Clock, SystemClock};
use crate::convert::jpeg_is_complete;
use crate::pacing::{check_fps, Pacer, Pacing};
use crate::{Frame, FrameSource, SourceError};

/// The frame rate used for timestamps of a folder paced as fast as possible, unless
/// [`ImageFolderOptions::fps`] says otherwise.
pub const DEFAULT_FOLDER_FPS: f64 = 30.0;

/// The file extensions read as frames (compared case-insensitively).
pub const FRAME_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "tif", "tiff"];

/// Options of an [`ImageFolder`].
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFolderOptions {
    pub pacing: Pacing,
    /// Skip frames that cannot be read or decoded (counted by [`ImageFolder::skipped`] and
    /// logged) instead of returning an error for them.
    pub skip_corrupt: bool,
    /// Nominal frame rate for the timestamps (`start + index * 1000 / fps`). Default: the
    /// real-time pacing rate, else [`DEFAULT_FOLDER_FPS`].
    pub fps: Option<f64>,
    /// Timestamp of frame 0 in ms since the Unix epoch. Default: the wall clock when frame 0 is
    /// delivered.
    pub start_time_ms: Option<u64>,
}

impl Default for ImageFolderOptions {
    fn default() -> Self {
        ImageFolderOptions { pacing: Pacing::AsFastAsPossible, skip_corrupt: false, fps: None, start_time_ms: None }
    }
}

impl ImageFolderOptions {
    /// The frame rate used for timestamps.
    pub fn timestamp_fps(&self) -> f64 {
        self.fps.or(self.pacing.fps()).unwrap_or(DEFAULT_FOLDER_FPS)
    }
}

/// The frames of a folder, in playback order: regular files (not hidden: no leading `.`) with
/// a frame extension; sorted numerically by file stem when every stem is a number (`9.png`
/// before `10.png`; equal numbers such as `7.png`/`007.png` by name), else by name.
pub fn list_frame_files(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let io_err = |source| SourceError::Io { path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') || !has_frame_extension(&name) {
            continue;
        }
        let path = entry.path();
        // Follows symbolic links: a link to a frame is a frame.
        if path.is_file() {
            files.push(path);
        }
    }
    sort_frames(&mut files);
    Ok(files)
}

fn has_frame_extension(name: &OsStr) -> bool {
    Path::new(name).extension().and_then(OsStr::to_str).is_some_and(|e| FRAME_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn numeric_stem(path: &Path) -> Option<u128> {
    let stem = path.file_stem()?.to_str()?;
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Leading zeros do not count; absurdly long numbers saturate (then the name decides).
    let digits = stem.trim_start_matches('0');
    Some(digits.parse::<u128>().unwrap_or(if digits.is_empty() { 0 } else { u128::MAX }))
}

/// Sort frame paths: numerically by stem when all stems are numbers, else by file name.
pub fn sort_frames(files: &mut [PathBuf]) {
    let by_name = |a: &PathBuf, b: &PathBuf| a.file_name().cmp(&b.file_name());
    let numbers: Option<Vec<u128>> = files.iter().map(|p| numeric_stem(p)).collect();
    if numbers.is_some() {
        files.sort_by(|a, b| match numeric_stem(a).cmp(&numeric_stem(b)) {
            Ordering::Equal => by_name(a, b),
            o => o,
        });
    } else {
        files.sort_by(by_name);
    }
}

/// Read and decode one frame file. JPEG data (recognised by content, else by extension) must end
/// with the end-of-image marker (trailing zero bytes ignored): the decoder would silently fill
/// a truncated scan with grey.
pub fn decode_frame_file(path: &Path) -> Result<DynamicImage, SourceError> {
    let bytes = std::fs::read(path).map_err(|source| SourceError::Io { path: path.to_path_buf(), source })?;
    let corrupt = |reason: String| SourceError::CorruptFrame { path: path.to_path_buf(), reason };
    if bytes.is_empty() {
        return Err(corrupt("empty file".into()));
    }
    let format = image::guess_format(&bytes).ok().or_else(|| ImageFormat::from_path(path).ok()).ok_or_else(|| corrupt("unknown image format".into()))?;
    if format == ImageFormat::Jpeg && !jpeg_is_complete(&bytes) {
        return Err(corrupt("truncated JPEG (no end-of-image marker 0xFFD9)".into()));
    }
    image::load_from_memory_with_format(&bytes, format).map_err(|e| corrupt(e.to_string()))
}

/// A folder of frames (`*.jpg|jpeg|png|tif|tiff`, see [`list_frame_files`] for the order),
/// listed once when opened.
///
/// A frame that cannot be read or decoded is an error naming the file (the next call goes on
/// with the following file), or, with [`ImageFolderOptions::skip_corrupt`], is skipped, counted
/// and logged. A frame's index is its file's position in the listing, so a lost frame leaves a
/// gap in the indices.
pub struct ImageFolder {
    dir: PathBuf,
    files: Vec<PathBuf>,
    next_file: usize,
    delivered: u64,
    skipped: u64,
    options: ImageFolderOptions,
    pacer: Pacer,
    clock: Box<dyn Clock>,
    start_ms: Option<u64>,
}

impl ImageFolder {
    /// List the frames of `dir`. Errors: the folder cannot be read, holds no frames, or the
    /// options hold an invalid frame rate.
    pub fn open(dir: impl AsRef<Path>, options: ImageFolderOptions) -> Result<Self, SourceError> {
        let dir = dir.as_ref().to_path_buf();
        let what = format!("image folder {}", dir.display());
        options.pacing.validate().map_err(|e| rename(e, &what))?;
        if let Some(fps) = options.fps {
            check_fps(&what, fps)?;
        }
        let files = list_frame_files(&dir)?;
        if files.is_empty() {
            return Err(SourceError::NoFrames { path: dir });
        }
        debug!(dir = %dir.display(), frames = files.len(), pacing = %options.pacing, "image folder opened");
        Ok(ImageFolder { dir, files, next_file: 0, delivered: 0, skipped: 0, pacer: Pacer::new(options.pacing), options, clock: Box::new(SystemClock::new()), start_ms: None })
    }

    /// Use another clock (tests: [`crate::ManualClock`]).
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// The frame files, in playback order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// How many frame files the folder holds.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Never true: an empty folder cannot be opened.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Frames skipped as unreadable or corrupt (with `skip_corrupt`).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Frames delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }
}

fn rename(e: SourceError, what: &str) -> SourceError {
    match e {
        SourceError::Config { reason, .. } => SourceError::Config { what: what.to_string(), reason },
        e => e,
    }
}

impl FrameSource for ImageFolder {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        let image = loop {
            let Some(path) = self.files.get(self.next_file) else {
                return Ok(None);
            };
            self.next_file += 1;
            match decode_frame_file(path) {
                Ok(image) => break image,
                Err(e) if self.options.skip_corrupt => {
                    self.skipped += 1;
                    warn!(file = %path.display(), error = %e, skipped = self.skipped, "skipping unreadable frame");
                }
                Err(e) => return Err(e),
            }
        };
        // The file's position in the listing, not a count of delivered frames: a frame lost to
        // an error leaves a gap the pipeline sees (it restarts its window instead of computing
        // motion across the gap), and indices stay aligned with per-frame labels.
        let index = (self.next_file - 1) as u64;
        let fps = self.options.timestamp_fps();
        let frame = crate::paced_frame(&mut self.pacer, self.clock.as_ref(), &mut self.start_ms, self.options.start_time_ms, index, fps, image);
        self.delivered += 1;
        Ok(Some(frame))
    }

    fn describe(&self) -> String {
        format!("image folder {} ({} frames, {}{})", self.dir.display(), self.files.len(), self.options.pacing, if self.options.skip_corrupt { ", skipping corrupt frames" } else { "" })
    }
}
