//! Reading a video-anomaly dataset stored as folders of frames.
//!
//! Layout (the one most video-anomaly code bases use):
//!
//! ```text
//! <root>/<split>/frames/<clip>/<NNN>.{jpg,jpeg,png,tif,tiff}    split = "training" | "testing"
//! <root>/testing/labels.json                                    {clip: [0|1 per frame]}
//! ```
//!
//! * Clips are sorted by name; names need not be contiguous (`01, 03, 04`).
//! * Frames are sorted by the numeric value of the file stem (`7.png` before `10.png`); if some stem in
//!   a clip is not a number, the clip is sorted lexicographically by file name instead. Two files with
//!   the same number (`001.jpg` and `1.png`) are an error.
//! * Files with another extension, hidden files (name starting with `.`) and sub-folders inside a clip
//!   are ignored.
//! * Every frame is decoded with `image`, converted to gray (luma, Rec. 709 weights as `image` does) or
//!   RGB, resized to the [`FrameFormat`] with a triangle filter (in f32, no 8-bit rounding), and stored
//!   as f32 in `[-1, 1]` (`2 * v / max - 1`), CHW layout.
//! * All frames of one clip must have the same native size (clips may differ from each other).
//!
//! A training sample is a window of [`WINDOW`] consecutive frames: inputs `t-3..=t`, target `t+1`. A window
//! is named by `(clip index, index of its target frame)`, so target indices start at 4.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::{ImageFormat, ImageReader};
use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Frames per window: [`INPUT_FRAMES`] inputs and one target.
pub const WINDOW: usize = 5;
/// Input frames per window.
pub const INPUT_FRAMES: usize = WINDOW - 1;
/// Frame file extensions read (compared case-insensitively).
pub const EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "tif", "tiff"];

/// Errors of dataset reading. Each names the file, folder or clip concerned.
#[derive(thiserror::Error, Debug)]
pub enum DataError {
    /// Invalid [`FrameFormat`].
    #[error("invalid frame format {height}x{width}x{channels}: height and width must be > 0, channels 1 (gray) or 3 (RGB)")]
    BadFormat {
        /// Requested height.
        height: usize,
        /// Requested width.
        width: usize,
        /// Requested channels.
        channels: usize,
    },
    /// The dataset root does not exist.
    #[error("dataset root {} does not exist or is not a folder", path.display())]
    MissingRoot {
        /// The root.
        path: PathBuf,
    },
    /// `<root>/<split>/frames` does not exist.
    #[error("split folder {} does not exist or is not a folder (expected <root>/<split>/frames/<clip>/, or video files <root>/<split>/*.mp4|mkv|avi|mov)", path.display())]
    MissingSplit {
        /// The missing folder.
        path: PathBuf,
    },
    /// The frames folder holds no clip folder.
    #[error("no clip folders in {}", path.display())]
    NoClips {
        /// The frames folder.
        path: PathBuf,
    },
    /// A clip folder without any frame of a supported extension.
    #[error("clip {clip} ({}) has no frames (supported extensions: jpg, jpeg, png, tif, tiff)", path.display())]
    EmptyClip {
        /// Clip name.
        clip: String,
        /// Clip folder.
        path: PathBuf,
    },
    /// A clip too short to hold one window.
    #[error("clip {clip} ({}) has {frames} frames; at least {WINDOW} are needed (4 inputs + 1 target)", path.display())]
    TooFewFrames {
        /// Clip name.
        clip: String,
        /// Clip folder.
        path: PathBuf,
        /// Frames found.
        frames: usize,
    },
    /// Two frame files with the same frame number.
    #[error("clip {clip}: frames {} and {} have the same frame number", first.display(), second.display())]
    DuplicateFrame {
        /// Clip name.
        clip: String,
        /// One file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// A frame whose native size differs from the clip's first frame.
    #[error("clip {clip}: frame {} is {width}x{height} (WxH) but the clip's first frame {} is {first_width}x{first_height}", path.display(), first_path.display())]
    MixedSizes {
        /// Clip name.
        clip: String,
        /// The clip's first frame.
        first_path: PathBuf,
        /// Its width.
        first_width: u32,
        /// Its height.
        first_height: u32,
        /// The offending frame.
        path: PathBuf,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
    },
    /// A file that cannot be decoded (corrupt, truncated, not an image).
    #[error("cannot decode frame {}: {reason}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A file or folder that cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A clip asked for by name (a selection subset) that the split does not hold.
    #[error("no clip {clip:?} in {}", dir.display())]
    NoSuchClip {
        /// The name asked for.
        clip: String,
        /// The split's frames folder.
        dir: PathBuf,
    },
    /// No labels file.
    #[error("labels file {} does not exist", path.display())]
    LabelsMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A labels file that is not `{clip: [0|1, ...]}` JSON.
    #[error("labels file {} is malformed (expected {{\"clip\": [0|1 per frame]}}): {source}", path.display())]
    LabelsMalformed {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A label other than 0 or 1 in a labels file.
    #[error("labels file {}: clip {clip} frame {index} has label {value}; only 0 and 1 are allowed", path.display())]
    LabelValueInFile {
        /// The file.
        path: PathBuf,
        /// Clip name.
        clip: String,
        /// Frame index.
        index: usize,
        /// The value as written.
        value: String,
    },
    /// A label other than 0 or 1.
    #[error("labels: clip {clip} frame {index} has label {value}; only 0 and 1 are allowed")]
    LabelValue {
        /// Clip name.
        clip: String,
        /// Frame index.
        index: usize,
        /// The value.
        value: u8,
    },
    /// A clip without labels.
    #[error("labels: clip {clip} has no labels")]
    LabelsMissingClip {
        /// Clip name.
        clip: String,
    },
    /// A clip whose label count differs from its frame count.
    #[error("labels: clip {clip} has {labels} labels but {frames} frames")]
    LabelsLength {
        /// Clip name.
        clip: String,
        /// Number of labels.
        labels: usize,
        /// Number of frames.
        frames: usize,
    },
    /// A window that does not exist in the dataset.
    #[error("window (clip {clip}, target frame {target}) does not exist in the dataset")]
    BadWindow {
        /// Clip index.
        clip: usize,
        /// Target frame index.
        target: usize,
    },
}

/// Size and colour of the frames as the network sees them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FrameFormat {
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// 1 (gray) or 3 (RGB).
    pub channels: usize,
}

impl FrameFormat {
    /// Floats per frame, `channels * height * width`.
    pub fn frame_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Checks that the sizes are positive and channels 1 or 3.
    pub fn validate(&self) -> Result<(), DataError> {
        let ok = self.height > 0 && self.width > 0 && (self.channels == 1 || self.channels == 3) && u32::try_from(self.height).is_ok() && u32::try_from(self.width).is_ok();
        if ok {
            Ok(())
        } else {
            Err(DataError::BadFormat { height: self.height, width: self.width, channels: self.channels })
        }
    }
}

/// One clip: its frames in time order.
#[derive(Clone)]
pub struct Clip {
    /// Folder name.
    pub name: String,
    /// Frames, each `C*H*W` floats in `[-1, 1]`.
    pub frames: Vec<Vec<f32>>,
    /// The file of each frame.
    pub paths: Vec<PathBuf>,
}

impl fmt::Debug for Clip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clip").field("name", &self.name).field("frames", &self.frames.len()).field("first", &self.paths.first()).finish()
    }
}

/// The clips of one split, decoded into memory.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Frame format of every frame.
    pub format: FrameFormat,
    /// Clips, sorted by name.
    pub clips: Vec<Clip>,
}

/// A frame file found on disk, before decoding.
struct FrameFile {
    path: PathBuf,
    number: Option<u64>,
    name: String,
}

impl Dataset {
    /// Reads `<root>/<split>/frames/*/` (see the module docs for the rules).
    pub fn open(root: &Path, split: &str, format: &FrameFormat) -> Result<Dataset, DataError> {
        let start = Instant::now();
        format.validate()?;
        if !root.is_dir() {
            return Err(DataError::MissingRoot { path: root.to_path_buf() });
        }
        let frames_dir = root.join(split).join("frames");
        if !frames_dir.is_dir() {
            // A split given as video files instead (one clip per file).
            let videos = crate::video::video_files(&root.join(split));
            if !videos.is_empty() {
                let ds = Dataset { format: format.clone(), clips: crate::video::video_clips(&videos, format)? };
                tracing::info!(root = %root.display(), split, clips = ds.clips.len(), frames = ds.num_frames(), seconds = start.elapsed().as_secs_f64(), "dataset loaded from video files");
                return Ok(ds);
            }
            return Err(DataError::MissingSplit { path: frames_dir });
        }

        // Clip folders.
        let mut clip_dirs: Vec<(String, PathBuf)> = read_dir(&frames_dir)?.into_iter().filter(|(name, path)| !name.starts_with('.') && path.is_dir()).collect();
        clip_dirs.sort();
        if clip_dirs.is_empty() {
            return Err(DataError::NoClips { path: frames_dir });
        }

        // Frame files of each clip, in order.
        let mut listed: Vec<(String, Vec<PathBuf>)> = Vec::with_capacity(clip_dirs.len());
        for (clip, dir) in clip_dirs {
            let files = list_frames(&clip, &dir)?;
            if files.is_empty() {
                return Err(DataError::EmptyClip { clip, path: dir });
            }
            if files.len() < WINDOW {
                return Err(DataError::TooFewFrames { clip, path: dir, frames: files.len() });
            }
            listed.push((clip, files));
        }

        // Decode everything in parallel; results come back in order.
        let jobs: Vec<&Path> = listed.iter().flat_map(|(_, f)| f.iter().map(PathBuf::as_path)).collect();
        let mut decoded = jobs.par_iter().map(|p| load_frame(p, format)).collect::<Vec<_>>().into_iter();

        let mut clips = Vec::with_capacity(listed.len());
        for (name, paths) in listed {
            let mut frames = Vec::with_capacity(paths.len());
            let mut first: Option<(u32, u32)> = None;
            for path in &paths {
                let Some(result) = decoded.next() else {
                    return Err(DataError::Decode { path: path.clone(), reason: "internal: frame lost".into() });
                };
                let (width, height, data) = result?;
                match first {
                    None => first = Some((width, height)),
                    Some((fw, fh)) if (fw, fh) != (width, height) => {
                        return Err(DataError::MixedSizes { clip: name, first_path: paths[0].clone(), first_width: fw, first_height: fh, path: path.clone(), width, height });
                    }
                    Some(_) => {}
                }
                frames.push(data);
            }
            clips.push(Clip { name, frames, paths });
        }
        let ds = Dataset { format: format.clone(), clips };
        tracing::info!(
            root = %root.display(),
            split,
            clips = ds.clips.len(),
            frames = ds.num_frames(),
            secs = start.elapsed().as_secs_f32(),
            "dataset loaded"
        );
        Ok(ds)
    }

    /// Total number of frames.
    pub fn num_frames(&self) -> usize {
        self.clips.iter().map(|c| c.frames.len()).sum()
    }

    /// Every window `(clip index, target frame index)`, clip by clip, in time order. Targets run
    /// from 4 to the clip's last frame.
    pub fn windows(&self) -> Vec<(usize, usize)> {
        self.clips.iter().enumerate().flat_map(|(c, clip)| (INPUT_FRAMES..clip.frames.len()).map(move |t| (c, t))).collect()
    }

    /// [`Dataset::windows`] in a random order that depends only on `(seed, epoch)` (ChaCha8 seeded with
    /// `seed`, stream `epoch`, Fisher-Yates with unbiased bounded draws), the same on every platform.
    pub fn shuffled_windows(&self, seed: u64, epoch: u64) -> Vec<(usize, usize)> {
        let mut w = self.windows();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(epoch);
        for i in (1..w.len()).rev() {
            let j = bounded(&mut rng, i as u64 + 1) as usize;
            w.swap(i, j);
        }
        w
    }

    /// Assembles windows into one flat buffer of shape `[B, 5, C, H, W]`: for each window the frames
    /// `t-4..=t` (the 4 inputs, then the target); a window outside the dataset is an error.
    pub fn try_batch(&self, idx: &[(usize, usize)]) -> Result<Vec<f32>, DataError> {
        let fl = self.format.frame_len();
        let mut out = Vec::with_capacity(idx.len() * WINDOW * fl);
        for &(c, t) in idx {
            let clip = self.clips.get(c).ok_or(DataError::BadWindow { clip: c, target: t })?;
            if t < INPUT_FRAMES || t >= clip.frames.len() {
                return Err(DataError::BadWindow { clip: c, target: t });
            }
            for frame in &clip.frames[t - INPUT_FRAMES..=t] {
                out.extend_from_slice(frame);
            }
        }
        Ok(out)
    }

    /// Keeps only the clips named (a selection subset), in dataset order. `dir` (the split's frames
    /// folder) names where they were looked for when one is missing; then nothing is dropped.
    pub fn retain_clips<S: AsRef<str>>(&mut self, names: &[S], dir: &Path) -> Result<(), DataError> {
        if let Some(missing) = names.iter().find(|n| !self.clips.iter().any(|c| c.name == n.as_ref())) {
            return Err(DataError::NoSuchClip { clip: missing.as_ref().to_string(), dir: dir.to_path_buf() });
        }
        self.clips.retain(|c| names.iter().any(|n| n.as_ref() == c.name));
        Ok(())
    }

    /// Removes the clips named (footage held out of training), leaving the others in order. Every name
    /// must be a clip here (`dir` names where it was looked for), and at least one clip must remain.
    pub fn remove_clips<S: AsRef<str>>(&mut self, names: &[S], dir: &Path) -> Result<(), DataError> {
        if let Some(missing) = names.iter().find(|n| !self.clips.iter().any(|c| c.name == n.as_ref())) {
            return Err(DataError::NoSuchClip { clip: missing.as_ref().to_string(), dir: dir.to_path_buf() });
        }
        if self.clips.iter().all(|c| names.iter().any(|n| n.as_ref() == c.name)) {
            return Err(DataError::NoClips { path: dir.to_path_buf() });
        }
        self.clips.retain(|c| !names.iter().any(|n| n.as_ref() == c.name));
        Ok(())
    }

    /// Checks that every clip has labels, exactly one per frame, each 0 or 1. Labels of clips that are
    /// not in the dataset are ignored.
    pub fn check_labels(&self, labels: &BTreeMap<String, Vec<u8>>) -> Result<(), DataError> {
        for clip in &self.clips {
            let l = labels.get(&clip.name).ok_or_else(|| DataError::LabelsMissingClip { clip: clip.name.clone() })?;
            if l.len() != clip.frames.len() {
                return Err(DataError::LabelsLength { clip: clip.name.clone(), labels: l.len(), frames: clip.frames.len() });
            }
            if let Some((index, &value)) = l.iter().enumerate().find(|(_, &v)| v > 1) {
                return Err(DataError::LabelValue { clip: clip.name.clone(), index, value });
            }
        }
        Ok(())
    }
}

/// Reads `<root>/testing/labels.json`: `{clip: [0|1 per frame]}`, 1 = abnormal, index k = frame k.
pub fn load_labels(root: &Path) -> Result<BTreeMap<String, Vec<u8>>, DataError> {
    let path = root.join("testing").join("labels.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(DataError::LabelsMissing { path }),
        Err(source) => return Err(DataError::Io { path, source }),
    };
    let raw: BTreeMap<String, Vec<serde_json::Value>> = serde_json::from_str(&text).map_err(|source| DataError::LabelsMalformed { path: path.clone(), source })?;
    let mut out = BTreeMap::new();
    for (clip, values) in raw {
        let mut labels = Vec::with_capacity(values.len());
        for (index, v) in values.iter().enumerate() {
            match v.as_u64() {
                Some(x @ (0 | 1)) => labels.push(x as u8),
                _ => return Err(DataError::LabelValueInFile { path, clip, index, value: v.to_string() }),
            }
        }
        out.insert(clip, labels);
    }
    Ok(out)
}

/// `(name, path)` of the entries of a folder.
fn read_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>, DataError> {
    let io = |source| DataError::Io { path: dir.to_path_buf(), source };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        out.push((entry.file_name().to_string_lossy().into_owned(), entry.path()));
    }
    Ok(out)
}

/// The frame files of a clip folder, in time order.
fn list_frames(clip: &str, dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut files: Vec<FrameFile> = read_dir(dir)?
        .into_iter()
        .filter(|(name, path)| {
            let ext_ok = Path::new(name).extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)));
            ext_ok && !name.starts_with('.') && path.is_file()
        })
        .map(|(name, path)| {
            let number = Path::new(&name).file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<u64>().ok());
            FrameFile { path, number, name }
        })
        .collect();
    if files.iter().all(|f| f.number.is_some()) {
        files.sort_by(|a, b| a.number.cmp(&b.number).then_with(|| a.name.cmp(&b.name)));
        if let Some(pair) = files.windows(2).find(|p| p[0].number == p[1].number) {
            return Err(DataError::DuplicateFrame { clip: clip.to_string(), first: pair[0].path.clone(), second: pair[1].path.clone() });
        }
    } else {
        files.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(files.into_iter().map(|f| f.path).collect())
}

/// Decodes one frame: `(native width, native height, CHW floats in [-1, 1])`.
fn load_frame(path: &Path, format: &FrameFormat) -> Result<(u32, u32, Vec<f32>), DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let decode_err = |reason: String| DataError::Decode { path: path.to_path_buf(), reason };
    let mut reader = ImageReader::new(Cursor::new(&bytes[..]));
    if let Ok(f) = ImageFormat::from_path(path) {
        reader.set_format(f);
    }
    // The content decides when it is recognisable (a PNG named .jpg still loads).
    let reader = reader.with_guessed_format().map_err(|e| decode_err(e.to_string()))?;
    if reader.format() == Some(ImageFormat::Jpeg) && !jpeg_complete(&bytes) {
        // The JPEG decoder fills a truncated scan with grey instead of failing.
        return Err(decode_err("truncated JPEG (no end-of-image marker)".into()));
    }
    let img = reader.decode().map_err(|e| decode_err(e.to_string()))?;
    let (w0, h0) = (img.width(), img.height());
    // The same conversion the edge runtime applies to camera frames.
    let data = sfn_infer::preprocess::to_model_input(&img, format.channels, format.height, format.width);
    Ok((w0, h0, data))
}

/// Whether JPEG data ends with the end-of-image marker (trailing zero padding allowed).
fn jpeg_complete(bytes: &[u8]) -> bool {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    end >= 2 && bytes[end - 2..end] == [0xFF, 0xD9]
}

/// Uniform draw in `0..n` (`n > 0`) without modulo bias (Lemire's multiply-and-reject).
fn bounded(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(n);
        let low = m as u64;
        if low >= n || low >= n.wrapping_neg() % n {
            return (m >> 64) as u64;
        }
    }
}

#[cfg(test)]
mod tests;
