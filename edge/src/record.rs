//! `sfn-edge record`: normal footage from the configured source into the training layout
//! (`OUT/training/frames/<clip>/<NNN>.jpg`), in clips of fixed length numbered after the clips already
//! there, every frame written atomically (a crash or a full disk never leaves a torn frame), bounded by
//! a disk budget.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::DynamicImage;
use serde::Serialize;
use sfn_sources::FrameSource;

/// JPEG quality of recorded frames (Ped2's frames are JPEG too).
pub const JPEG_QUALITY: u8 = 95;

/// The shortest clip training reads: one window, 4 input frames and the target.
pub const MIN_CLIP_FRAMES: u64 = 5;

/// What to record.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    /// Data root: frames go to `out/training/frames/<clip>/`.
    pub out: PathBuf,
    /// Frames per clip (after `every`).
    pub clip_frames: u64,
    /// Keep one source frame in `every`.
    pub every: u64,
    /// Stop after this many source frames (None: until the source ends).
    pub max_source_frames: Option<u64>,
    /// Stop before the frames written exceed this many bytes.
    pub max_bytes: Option<u64>,
}

/// What a recording did.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct RecordSummary {
    pub source_frames: u64,
    pub frames_written: u64,
    pub bytes_written: u64,
    /// Clip folders written, in order (the last one may be shorter than `clip_frames`).
    pub clips: Vec<String>,
    pub source_errors: u64,
    /// Why the recording stopped.
    pub stopped: String,
    /// Frames of a last clip shorter than [`MIN_CLIP_FRAMES`], removed (training could not read it).
    pub dropped_short_clip_frames: u64,
}

/// Recording errors name the file or the source.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// Writing a frame failed (a full disk, say): what was recorded before stays, readable as a dataset.
    #[error("{}: frame {frame}: {source}; the {kept} frames recorded before it are kept{}", path.display(), if *dropped > 0 { format!(" (the last {dropped}, too few for a clip, were removed)") } else { String::new() })]
    Write { path: PathBuf, frame: u64, source: std::io::Error, kept: u64, dropped: u64 },
    #[error("frame {frame}: cannot encode as JPEG: {reason}")]
    Encode { frame: u64, reason: String },
    #[error("source: {0}")]
    Source(sfn_sources::SourceError),
    #[error("{0}")]
    Usage(String),
}

/// The clip names after those already in `frames_dir`: numeric names continue from the largest
/// (zero-padded to the widest existing name, at least 2 digits); non-numeric names are left alone.
pub fn next_clip_number(frames_dir: &Path) -> Result<(u64, usize), RecordError> {
    let mut next = 1u64;
    let mut width = 2usize;
    match std::fs::read_dir(frames_dir) {
        Ok(entries) => {
            for e in entries {
                let e = e.map_err(|source| RecordError::Io { path: frames_dir.into(), source })?;
                let name = e.file_name().to_string_lossy().into_owned();
                if let (true, Ok(n)) = (e.path().is_dir(), name.parse::<u64>()) {
                    next = next.max(n + 1);
                    width = width.max(name.len());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(RecordError::Io { path: frames_dir.into(), source }),
    }
    Ok((next, width))
}

/// The JPEG bytes of a frame (grey frames stay grey; colour and 16-bit frames become 8-bit RGB).
pub fn encode_jpeg(image: &DynamicImage, frame: u64) -> Result<Vec<u8>, RecordError> {
    let img = match image {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => image.clone(),
        DynamicImage::ImageLuma16(_) | DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLumaA16(_) => DynamicImage::ImageLuma8(image.to_luma8()),
        _ => DynamicImage::ImageRgb8(image.to_rgb8()),
    };
    let mut bytes = Vec::new();
    img.write_with_encoder(JpegEncoder::new_with_quality(Cursor::new(&mut bytes), JPEG_QUALITY)).map_err(|e| RecordError::Encode { frame, reason: e.to_string() })?;
    Ok(bytes)
}

/// Records from `source` until it ends, `max_source_frames`, the disk budget, or `stop` is set.
/// Source errors are counted and skipped (`max_consecutive_errors` in a row end the recording with
/// the last one). Everything written before an error stays.
pub fn record(source: &mut dyn FrameSource, opts: &RecordOptions, stop: Option<&std::sync::atomic::AtomicBool>, max_consecutive_errors: u32) -> Result<RecordSummary, RecordError> {
    if opts.clip_frames < MIN_CLIP_FRAMES || opts.every == 0 {
        return Err(RecordError::Usage(format!("a clip must hold at least {MIN_CLIP_FRAMES} frames (it has {}) and --every must be at least 1", opts.clip_frames)));
    }
    let frames_dir = opts.out.join("training/frames");
    let (mut clip_no, width) = next_clip_number(&frames_dir)?;
    let digits = opts.clip_frames.to_string().len().max(3);
    let mut s = RecordSummary::default();
    let mut in_clip = opts.clip_frames; // start a new clip at the first frame
    let mut clip_dir = PathBuf::new();
    let mut consecutive = 0u32;
    loop {
        if opts.max_source_frames.is_some_and(|m| s.source_frames >= m) {
            s.stopped = "recorded the requested length".into();
            break;
        }
        if stop.is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst)) {
            s.stopped = "stop requested".into();
            break;
        }
        let frame = match source.next_frame() {
            Ok(Some(f)) => {
                consecutive = 0;
                f
            }
            Ok(None) => {
                s.stopped = "the source ended".into();
                break;
            }
            Err(e) => {
                s.source_errors += 1;
                consecutive += 1;
                tracing::warn!(error = %e, consecutive, "source error");
                if consecutive >= max_consecutive_errors.max(1) {
                    return Err(RecordError::Source(e));
                }
                continue;
            }
        };
        s.source_frames += 1;
        if (s.source_frames - 1) % opts.every != 0 {
            continue;
        }
        let bytes = encode_jpeg(&frame.image, frame.index)?;
        if opts.max_bytes.is_some_and(|m| s.bytes_written + bytes.len() as u64 > m) {
            s.stopped = format!("the disk budget of {} bytes is reached", opts.max_bytes.unwrap_or(0));
            break;
        }
        let written = (|| {
            if in_clip == opts.clip_frames {
                let name = format!("{clip_no:0width$}");
                clip_no += 1;
                clip_dir = frames_dir.join(&name);
                std::fs::create_dir_all(&clip_dir).map_err(|e| (clip_dir.clone(), e))?;
                sfn_fsio::sync_dir(&frames_dir).map_err(|e| (frames_dir.clone(), e))?;
                s.clips.push(name);
                in_clip = 0;
            }
            let path = clip_dir.join(format!("{:0digits$}.jpg", in_clip + 1));
            sfn_fsio::write_atomic(&path, &bytes).map_err(|e| (path, e))
        })();
        if let Err((path, source)) = written {
            // The frames before stay; a last clip too short to train on goes, as at a normal stop.
            let dropped = drop_short_last_clip(&mut s, &clip_dir, in_clip).unwrap_or(0);
            return Err(RecordError::Write { path, frame: frame.index, source, kept: s.frames_written, dropped });
        }
        in_clip += 1;
        s.frames_written += 1;
        s.bytes_written += bytes.len() as u64;
    }
    drop_short_last_clip(&mut s, &clip_dir, in_clip)?;
    Ok(s)
}

/// Removes the last clip if it holds fewer than [`MIN_CLIP_FRAMES`] frames (the dataset reader would
/// refuse the whole split for it); returns how many frames went.
fn drop_short_last_clip(s: &mut RecordSummary, clip_dir: &Path, in_clip: u64) -> Result<u64, RecordError> {
    if in_clip >= MIN_CLIP_FRAMES || s.clips.is_empty() {
        return Ok(0);
    }
    std::fs::remove_dir_all(clip_dir).map_err(|source| RecordError::Io { path: clip_dir.to_path_buf(), source })?;
    tracing::info!(clip = %clip_dir.display(), frames = in_clip, "removed the last clip: shorter than one training window");
    s.clips.pop();
    s.frames_written -= in_clip;
    s.dropped_short_clip_frames = in_clip;
    Ok(in_clip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::GrayImage;
    use sfn_sources::{Frame, SourceError};

    /// Frames of a known pattern, with an error after frame `fail_at` (counted, skipped).
    struct Pattern {
        n: u64,
        len: u64,
        fail_at: Option<u64>,
    }

    impl FrameSource for Pattern {
        fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
            if self.fail_at == Some(self.n) {
                self.fail_at = None;
                return Err(SourceError::Video { path: "pattern".into(), message: "glitch".into() });
            }
            if self.n == self.len {
                return Ok(None);
            }
            let k = self.n as u8;
            self.n += 1;
            Ok(Some(Frame {
                index: self.n - 1,
                timestamp_ms: self.n * 100,
                image: DynamicImage::ImageLuma8(GrayImage::from_fn(48, 32, |x, y| image::Luma([(x as u8).wrapping_mul(5).wrapping_add(y as u8 * 3).wrapping_add(k * 7)]))),
            }))
        }
        fn describe(&self) -> String {
            "pattern".into()
        }
    }

    fn opts(out: &Path) -> RecordOptions {
        RecordOptions { out: out.into(), clip_frames: 6, every: 2, max_source_frames: None, max_bytes: None }
    }

    #[test]
    fn clips_of_fixed_length_numbered_after_existing_ones_readable_as_a_dataset() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(MIN_CLIP_FRAMES, sfn_data::dataset::WINDOW as u64);
        std::fs::create_dir_all(tmp.path().join("training/frames/07")).unwrap();
        for i in 1..=5 {
            std::fs::write(tmp.path().join(format!("training/frames/07/{i:03}.jpg")), encode_jpeg(&DynamicImage::ImageLuma8(GrayImage::new(48, 32)), 0).unwrap()).unwrap();
        }
        let s = record(&mut Pattern { n: 0, len: 27, fail_at: Some(5) }, &opts(tmp.path()), None, 3).unwrap();
        // 27 frames, every 2nd: 14 written, clips of 6 -> 08 (6), 09 (6), then 10 with 2, too short: removed.
        assert_eq!((s.source_frames, s.frames_written, s.source_errors, s.dropped_short_clip_frames), (27, 12, 1, 2));
        assert_eq!(s.clips, ["08", "09"]);
        assert_eq!(s.stopped, "the source ended");
        assert!(!tmp.path().join("training/frames/10").exists());
        let names: Vec<String> = std::fs::read_dir(tmp.path().join("training/frames/09")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names.len(), 6, "{names:?}");
        // The training reader opens what was recorded, grey, frame sizes kept.
        let fmt = sfn_data_format();
        let ds = sfn_data::dataset::Dataset::open(tmp.path(), "training", &fmt).unwrap();
        assert_eq!(ds.clips.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["07", "08", "09"]);
        // A second recording goes on after 09.
        let s = record(&mut Pattern { n: 0, len: 12, fail_at: None }, &opts(tmp.path()), None, 3).unwrap();
        assert_eq!(s.clips, ["10"]);
    }

    fn sfn_data_format() -> sfn_data::dataset::FrameFormat {
        sfn_data::dataset::FrameFormat { height: 32, width: 48, channels: 1 }
    }

    #[test]
    fn disk_budget_and_length_stop_cleanly() {
        let tmp = tempfile::tempdir().unwrap();
        let one = encode_jpeg(&Pattern { n: 0, len: 1, fail_at: None }.next_frame().unwrap().unwrap().image, 0).unwrap().len() as u64;
        let mut o = opts(tmp.path());
        o.every = 1;
        o.max_bytes = Some(one * 15 / 2);
        let s = record(&mut Pattern { n: 0, len: 100, fail_at: None }, &o, None, 3).unwrap();
        assert!(s.frames_written >= 5 && s.bytes_written <= one * 15 / 2, "{s:?}");
        assert!(s.stopped.contains("disk budget"), "{s:?}");
        let o = RecordOptions { max_bytes: None, max_source_frames: Some(14), ..opts(&tmp.path().join("b")) };
        let s = record(&mut Pattern { n: 0, len: 100, fail_at: None }, &o, None, 3).unwrap();
        assert_eq!((s.source_frames, s.frames_written, s.dropped_short_clip_frames), (14, 6, 1));
        // No temporary file is left anywhere.
        for e in walk(tmp.path()) {
            assert!(!e.file_name().unwrap().to_string_lossy().starts_with('.'), "{e:?}");
        }
    }

    #[test]
    fn an_unwritable_output_names_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("training"), b"a file, not a folder").unwrap();
        let e = record(&mut Pattern { n: 0, len: 3, fail_at: None }, &opts(tmp.path()), None, 3).unwrap_err();
        assert!(e.to_string().contains("training"), "{e}");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
