//! A synthetic "walkway" scene: the zero-download dataset of the default job.
//!
//! A fixed camera looks at a paved walkway crossing the picture (a textured band between two strips of
//! rougher "grass"). Pedestrians ("walkers", dark 4x2 px upright blobs) stroll along it at 0.5-1 px a
//! frame with a little jitter, entering and leaving at the left and right edges. Every test clip also
//! holds one "intruder" for an interval: a cart (a larger block crossing at 3-4 px a frame) or a cyclist
//! (crossing diagonally at about 3 px a frame), the synthetic counterpart of UCSD Ped2's anomalies.
//!
//! Written in the layout [`crate::dataset`] reads:
//!
//! ```text
//! <root>/training/frames/<clip>/<NNN>.png   normal clips only
//! <root>/testing/frames/<clip>/<NNN>.png
//! <root>/testing/labels.json                {clip: [0|1 per frame]}, 1 exactly where the intruder is visible
//! <root>/synth.json                         generator, config and summary (marks the folder as synthetic)
//! ```
//!
//! Frames are 8-bit gray PNGs, rendered with sub-pixel (area-coverage) anti-aliasing plus mild sensor
//! noise. Everything is a function of [`SynthConfig`]: the same config gives the same bytes. Each clip
//! draws from its own ChaCha8 stream, so a clip does not change when clips are added, and only basic
//! float arithmetic is used (no transcendental functions), so the output is the same on every platform.
//! The intruder starts at frame 5 or later, so every test clip holds normal frames first (and, for
//! clips of 25 frames or more, after it too).

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{GrayImage, ImageFormat};
use serde::{Deserialize, Serialize};

use crate::dataset::WINDOW;

mod render;

use render::{IntruderKind, Scene};

/// Name of the marker file at the dataset root.
pub const MARKER: &str = "synth.json";
/// The `generator` value of the marker file.
pub const GENERATOR: &str = "sfn-trainer walkway";

/// Walker size in pixels (height, width).
const WALKER: (f32, f32) = (4.0, 2.0);
/// Shortest clip accepted: 5 normal frames, then the intruder for at least 3.
const MIN_FRAMES: usize = WINDOW + 3;
/// Smallest picture side accepted.
const MIN_SIDE: usize = 16;
/// Largest picture side accepted.
const MAX_SIDE: usize = 4096;
/// Stream of the background texture (clips use their own index).
const BACKGROUND_STREAM: u64 = u64::MAX;
/// Streams of test clips start here (training clips start at 0).
const TEST_STREAM: u64 = 1 << 32;

/// Errors of [`write_walkway`].
#[derive(thiserror::Error, Debug)]
pub enum SynthError {
    /// A config value out of range.
    #[error("invalid synthetic dataset config: {field} {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The root exists but is not a folder.
    #[error("cannot write a synthetic dataset to {}: it exists and is not a folder", path.display())]
    NotADir {
        /// The root.
        path: PathBuf,
    },
    /// The root holds files and is not a dataset written by this generator.
    #[error("refusing to write a synthetic dataset into {}: the folder is not empty and holds no {MARKER} from an earlier generation; choose an empty or new folder", path.display())]
    NotEmpty {
        /// The root.
        path: PathBuf,
    },
    /// A file or folder that cannot be written, read or removed.
    #[error("synthetic dataset: cannot write {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A frame that cannot be encoded.
    #[error("synthetic dataset: cannot encode {}: {reason}", path.display())]
    Encode {
        /// The frame file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// What to generate. Missing fields of a JSON config take their [`Default`] values.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SynthConfig {
    /// Frame height in pixels (>= 16).
    pub height: usize,
    /// Frame width in pixels (>= 16).
    pub width: usize,
    /// Normal clips in `training/`.
    pub train_clips: usize,
    /// Clips in `testing/`, each with one intruder.
    pub test_clips: usize,
    /// Frames of every clip (>= 8).
    pub frames_per_clip: usize,
    /// Walkers on the walkway at a time (at most; one that leaves is replaced after a short pause).
    pub walkers: usize,
    /// Standard deviation of the per-frame sensor noise, in gray levels (0..=255 scale).
    pub noise_std: f32,
    /// Seed of everything (background, walkers, intruders, noise).
    pub seed: u64,
}

impl Default for SynthConfig {
    /// 48x72 frames, 6 training and 3 test clips of 60 frames, 4 walkers, noise 1.0: generated in
    /// well under a second; the `tiny` preset (32x48) trains a few epochs on it in minutes on 2 cores.
    fn default() -> Self {
        Self { height: 48, width: 72, train_clips: 6, test_clips: 3, frames_per_clip: 60, walkers: 4, noise_std: 1.0, seed: 7 }
    }
}

impl SynthConfig {
    /// Checks the ranges documented on the fields.
    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |field, reason: String| Err(SynthError::Config { field, reason });
        for (field, v) in [("height", self.height), ("width", self.width)] {
            if !(MIN_SIDE..=MAX_SIDE).contains(&v) {
                return bad(field, format!("is {v}; must be in {MIN_SIDE}..={MAX_SIDE}"));
            }
        }
        if self.train_clips == 0 || self.train_clips > 9999 {
            return bad("train_clips", format!("is {}; must be in 1..=9999", self.train_clips));
        }
        if self.test_clips == 0 || self.test_clips > 9999 {
            return bad("test_clips", format!("is {}; must be in 1..=9999", self.test_clips));
        }
        if !(MIN_FRAMES..=1_000_000).contains(&self.frames_per_clip) {
            return bad("frames_per_clip", format!("is {}; must be in {MIN_FRAMES}..=1000000 ({WINDOW} normal frames come before the intruder)", self.frames_per_clip));
        }
        if self.walkers > 1000 {
            return bad("walkers", format!("is {}; must be at most 1000", self.walkers));
        }
        if !(self.noise_std.is_finite() && (0.0..=64.0).contains(&self.noise_std)) {
            return bad("noise_std", format!("is {}; must be in 0..=64", self.noise_std));
        }
        Ok(())
    }
}

/// Where and when one test clip's intruder is visible.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct IntruderSpan {
    /// Test clip name.
    pub clip: String,
    /// `cart` (fast, along the walkway) or `cyclist` (fast, diagonal).
    pub kind: String,
    /// First frame labelled 1.
    pub first_frame: usize,
    /// Last frame labelled 1.
    pub last_frame: usize,
    /// The intruder's bounding box in each frame `first_frame..=last_frame`: x, y, width, height in
    /// pixels (clipped to the frame).
    #[serde(default)]
    pub boxes: Vec<[u32; 4]>,
}

/// What [`write_walkway`] wrote.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SynthSummary {
    /// Clips in `training/`.
    pub train_clips: usize,
    /// Clips in `testing/`.
    pub test_clips: usize,
    /// Frames in `training/`.
    pub train_frames: usize,
    /// Frames in `testing/`.
    pub test_frames: usize,
    /// Test frames labelled 1 (intruder visible).
    pub abnormal_frames: usize,
    /// One entry per test clip.
    pub intruders: Vec<IntruderSpan>,
}

/// Contents of `<root>/synth.json`.
#[derive(Serialize, Deserialize)]
struct Marker {
    generator: String,
    config: SynthConfig,
    /// None while the dataset is being written.
    summary: Option<SynthSummary>,
}

/// Writes the walkway dataset described by `cfg` to `root` (see the module docs).
///
/// `root` must be missing, empty, or a dataset written earlier by this function (its `synth.json`
/// is present); in the last case its `training/` and `testing/` folders are replaced.
pub fn write_walkway(root: &Path, cfg: &SynthConfig) -> Result<SynthSummary, SynthError> {
    cfg.validate()?;
    prepare_root(root)?;
    let mut marker = Marker { generator: GENERATOR.into(), config: cfg.clone(), summary: None };
    write_json(&root.join(MARKER), &marker)?;

    let scene = Scene::new(cfg);
    let digits = (cfg.frames_per_clip - 1).to_string().len().max(3);
    let clip_name = |k: usize, n: usize| format!("{:0w$}", k + 1, w = n.to_string().len().max(2));
    let mut summary = SynthSummary { train_clips: cfg.train_clips, test_clips: cfg.test_clips, train_frames: 0, test_frames: 0, abnormal_frames: 0, intruders: Vec::with_capacity(cfg.test_clips) };
    for k in 0..cfg.train_clips {
        let dir = root.join("training/frames").join(clip_name(k, cfg.train_clips));
        let clip = scene.render_clip(k as u64, None);
        write_frames(&dir, &clip.frames, cfg, digits)?;
        summary.train_frames += clip.frames.len();
    }
    let mut labels = BTreeMap::new();
    for k in 0..cfg.test_clips {
        let name = clip_name(k, cfg.test_clips);
        let dir = root.join("testing/frames").join(&name);
        let kind = if k % 2 == 0 { IntruderKind::Cart } else { IntruderKind::Cyclist };
        let clip = scene.render_clip(TEST_STREAM + k as u64, Some(kind));
        write_frames(&dir, &clip.frames, cfg, digits)?;
        summary.test_frames += clip.frames.len();
        summary.abnormal_frames += clip.labels.iter().filter(|&&l| l == 1).count();
        let first = clip.labels.iter().position(|&l| l == 1);
        let last = clip.labels.iter().rposition(|&l| l == 1);
        if let (Some(first_frame), Some(last_frame)) = (first, last) {
            let boxes = clip.boxes[first_frame..=last_frame].iter().map(|b| b.unwrap_or([0; 4])).collect();
            summary.intruders.push(IntruderSpan { clip: name.clone(), kind: kind.name().into(), first_frame, last_frame, boxes });
        }
        labels.insert(name, clip.labels);
    }
    let labels_path = root.join("testing/labels.json");
    let text = serde_json::to_string(&labels).map_err(|e| SynthError::Encode { path: labels_path.clone(), reason: e.to_string() })?;
    write_file(&labels_path, text.as_bytes())?;
    marker.summary = Some(summary.clone());
    write_json(&root.join(MARKER), &marker)?;
    tracing::info!(
        root = %root.display(),
        train_frames = summary.train_frames,
        test_frames = summary.test_frames,
        abnormal_frames = summary.abnormal_frames,
        "synthetic walkway dataset written"
    );
    Ok(summary)
}

/// Makes `root` an empty folder, or clears the data folders of an earlier synthetic dataset.
fn prepare_root(root: &Path) -> Result<(), SynthError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SynthError::Io { path, source }
    };
    if !root.exists() {
        return std::fs::create_dir_all(root).map_err(io(root));
    }
    if !root.is_dir() {
        return Err(SynthError::NotADir { path: root.to_path_buf() });
    }
    let mut entries = std::fs::read_dir(root).map_err(io(root))?;
    if entries.next().is_none() {
        return Ok(());
    }
    let marker = root.join(MARKER);
    let ours = std::fs::read_to_string(&marker).ok().and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok()).is_some_and(|v| v.get("generator").and_then(|g| g.as_str()) == Some(GENERATOR));
    if !ours {
        return Err(SynthError::NotEmpty { path: root.to_path_buf() });
    }
    for split in ["training", "testing"] {
        let dir = root.join(split);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SynthError> {
    std::fs::write(path, bytes).map_err(|source| SynthError::Io { path: path.to_path_buf(), source })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), SynthError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| SynthError::Encode { path: path.to_path_buf(), reason: e.to_string() })?;
    write_file(path, text.as_bytes())
}

/// Writes the frames of one clip as `<dir>/<NNN>.png`.
fn write_frames(dir: &Path, frames: &[Vec<u8>], cfg: &SynthConfig, digits: usize) -> Result<(), SynthError> {
    std::fs::create_dir_all(dir).map_err(|source| SynthError::Io { path: dir.to_path_buf(), source })?;
    for (t, pixels) in frames.iter().enumerate() {
        let path = dir.join(format!("{t:0digits$}.png"));
        let encode_err = |reason: String| SynthError::Encode { path: path.clone(), reason };
        let img = GrayImage::from_raw(cfg.width as u32, cfg.height as u32, pixels.clone()).ok_or_else(|| encode_err("internal: frame buffer of the wrong size".into()))?;
        let mut bytes = Cursor::new(Vec::new());
        img.write_to(&mut bytes, ImageFormat::Png).map_err(|e| encode_err(e.to_string()))?;
        write_file(&path, bytes.get_ref())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
