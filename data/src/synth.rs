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
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dataset::WINDOW;

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

/// The two kinds of intruder.
#[derive(Clone, Copy, Debug, PartialEq)]
enum IntruderKind {
    /// A 7x12 (HxW) block along the walkway at 3-4 px a frame.
    Cart,
    /// A 6x5 block crossing diagonally at 3 px a frame across, 0.5-1 px down or up.
    Cyclist,
}

impl IntruderKind {
    fn name(self) -> &'static str {
        match self {
            IntruderKind::Cart => "cart",
            IntruderKind::Cyclist => "cyclist",
        }
    }
}

/// One rendered clip: 8-bit frames (row-major) and a label per frame.
struct RenderedClip {
    frames: Vec<Vec<u8>>,
    labels: Vec<u8>,
    /// The intruder's box in each frame where it is visible.
    boxes: Vec<Option<[u32; 4]>>,
}

/// The fixed parts of the scene.
struct Scene {
    cfg: SynthConfig,
    h: usize,
    w: usize,
    /// Walkway rows `band.0..band.1`.
    band: (usize, usize),
    /// Background gray levels, row-major.
    background: Vec<f32>,
}

/// A uniform draw in `[0, 1)`.
fn unit(rng: &mut ChaCha8Rng) -> f32 {
    rng.random::<f32>()
}

/// A uniform draw in `[lo, hi)`.
fn between(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * unit(rng)
}

/// Approximately standard-normal noise: the centred sum of four uniforms, scaled to unit variance.
fn noise(rng: &mut ChaCha8Rng) -> f32 {
    const SQRT_3: f32 = 1.732_050_8;
    (unit(rng) + unit(rng) + unit(rng) + unit(rng) - 2.0) * SQRT_3
}

/// A moving rectangle: top-left corner, size, gray level.
#[derive(Clone, Debug)]
struct Blob {
    x: f32,
    y: f32,
    h: f32,
    w: f32,
    shade: f32,
}

/// A walker: a blob, its velocity, and a pause counter while off screen.
struct Walker {
    blob: Blob,
    vx: f32,
    /// Frames left before re-entering; `None` while on screen.
    away: Option<u32>,
}

/// An intruder's straight path, on a half-pixel grid so that it is never a sliver when visible.
struct Intruder {
    blob: Blob,
    vx: f32,
    vy: f32,
    start: usize,
}

impl Scene {
    fn new(cfg: &SynthConfig) -> Self {
        let (h, w) = (cfg.height, cfg.width);
        let band = (h * 3 / 10, h * 8 / 10);
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(BACKGROUND_STREAM);
        // Paving tiles of random size along the walkway (each with its own shade), fine grain noise
        // everywhere, rougher darker grass above and below, a bright kerb on both sides.
        let mut tile_edges = Vec::new();
        let mut x = 0usize;
        while x < w {
            tile_edges.push(x);
            x += 5 + (rng.random::<u32>() % 4) as usize;
        }
        let tile_shade: Vec<f32> = tile_edges.iter().map(|_| between(&mut rng, -6.0, 6.0)).collect();
        let mut background = vec![0.0f32; h * w];
        for y in 0..h {
            for x in 0..w {
                let grain = noise(&mut rng);
                let v = if y == band.0 || y + 1 == band.1 {
                    205.0 + 2.0 * grain
                } else if (band.0..band.1).contains(&y) {
                    let tile = tile_edges.iter().rposition(|&e| e <= x).unwrap_or(0);
                    let seam = if tile_edges[tile] == x || (y - band.0) % 6 == 0 { -14.0 } else { 0.0 };
                    170.0 + tile_shade[tile] + seam + 3.0 * grain
                } else {
                    // Grass: vertical streaks plus grain.
                    let streak = if (x * 7 + y / 3) % 5 == 0 { 10.0 } else { 0.0 };
                    95.0 + streak + 8.0 * grain
                };
                background[y * w + x] = v;
            }
        }
        Self { cfg: cfg.clone(), h, w, band, background }
    }

    /// A walker entering at an edge (or, at the start of a clip, anywhere along the walkway).
    fn spawn(&self, rng: &mut ChaCha8Rng, anywhere: bool) -> Walker {
        let (wh, ww) = WALKER;
        let right = rng.random::<bool>();
        let speed = between(rng, 0.5, 1.0);
        let x = if anywhere {
            between(rng, 0.0, self.w as f32 - ww)
        } else if right {
            -ww
        } else {
            self.w as f32
        };
        let lanes = (self.band.1 - self.band.0) as f32 - wh - 2.0;
        let y = self.band.0 as f32 + 1.0 + between(rng, 0.0, lanes.max(0.0));
        Walker { blob: Blob { x, y, h: wh, w: ww, shade: between(rng, 35.0, 75.0) }, vx: if right { speed } else { -speed }, away: None }
    }

    /// Moves a walker one frame: along the walkway with slight jitter; off screen it pauses, then
    /// re-enters at an edge.
    fn step(&self, rng: &mut ChaCha8Rng, walker: &mut Walker) {
        if let Some(left) = walker.away {
            if left == 0 {
                *walker = self.spawn(rng, false);
            } else {
                walker.away = Some(left - 1);
            }
            return;
        }
        let b = &mut walker.blob;
        b.x += walker.vx + between(rng, -0.1, 0.1);
        let top = self.band.0 as f32 + 1.0;
        let bottom = self.band.1 as f32 - 1.0 - b.h;
        b.y = (b.y + between(rng, -0.15, 0.15)).clamp(top, bottom.max(top));
        let gone = (walker.vx > 0.0 && b.x >= self.w as f32) || (walker.vx < 0.0 && b.x + b.w <= 0.0);
        if gone {
            walker.away = Some(rng.random::<u32>() % 16);
        }
    }

    /// The intruder of a test clip: enters at an edge, on screen from its first frame.
    fn intruder(&self, rng: &mut ChaCha8Rng, kind: IntruderKind) -> Intruder {
        let n = self.cfg.frames_per_clip;
        let lo = WINDOW.max(n / 5);
        let hi = lo.max(n / 3);
        let start = lo + (rng.random::<u32>() as usize) % (hi - lo + 1);
        let right = rng.random::<bool>();
        let (bh, bw, speed, vy, shade) = match kind {
            IntruderKind::Cart => {
                let speed = [3.0, 3.5, 4.0][(rng.random::<u32>() % 3) as usize];
                (7.0, 12.0, speed, 0.0, 15.0)
            }
            IntruderKind::Cyclist => {
                let vy = [0.5, 1.0][(rng.random::<u32>() % 2) as usize];
                (6.0, 5.0, 3.0, vy, 40.0)
            }
        };
        let room = (self.band.1 - self.band.0).saturating_sub(bh as usize).max(1);
        let mut y = (self.band.0 + (rng.random::<u32>() as usize) % room) as f32;
        let mut vy = vy;
        if kind == IntruderKind::Cyclist {
            // Head for the far side of the picture from where it enters.
            if y + bh / 2.0 > self.h as f32 / 2.0 {
                vy = -vy;
            }
            y = y.min(self.h as f32 - bh);
        }
        let (x, vx) = if right { (-bw + speed, speed) } else { (self.w as f32 - speed, -speed) };
        Intruder { blob: Blob { x, y, h: bh, w: bw, shade }, vx, vy, start }
    }

    /// Whether any part of a blob lies inside the picture.
    fn visible(&self, b: &Blob) -> bool {
        b.x < self.w as f32 && b.x + b.w > 0.0 && b.y < self.h as f32 && b.y + b.h > 0.0
    }

    /// Paints a blob over `canvas` with area-coverage anti-aliasing.
    fn paint(&self, canvas: &mut [f32], b: &Blob) {
        if !self.visible(b) {
            return;
        }
        let x0 = b.x.max(0.0);
        let x1 = (b.x + b.w).min(self.w as f32);
        let y0 = b.y.max(0.0);
        let y1 = (b.y + b.h).min(self.h as f32);
        for py in (y0.floor() as usize)..(y1.ceil() as usize).min(self.h) {
            let cy = (y1.min(py as f32 + 1.0) - y0.max(py as f32)).max(0.0);
            for px in (x0.floor() as usize)..(x1.ceil() as usize).min(self.w) {
                let cx = (x1.min(px as f32 + 1.0) - x0.max(px as f32)).max(0.0);
                let c = cx * cy;
                let v = &mut canvas[py * self.w + px];
                *v = *v * (1.0 - c) + b.shade * c;
            }
        }
    }

    /// Renders one clip from its own random stream.
    fn render_clip(&self, stream: u64, intruder: Option<IntruderKind>) -> RenderedClip {
        let n = self.cfg.frames_per_clip;
        let mut rng = ChaCha8Rng::seed_from_u64(self.cfg.seed);
        rng.set_stream(stream);
        let mut walkers: Vec<Walker> = (0..self.cfg.walkers).map(|_| self.spawn(&mut rng, true)).collect();
        let intruder = intruder.map(|k| self.intruder(&mut rng, k));
        let mut frames = Vec::with_capacity(n);
        let mut labels = Vec::with_capacity(n);
        let mut boxes = Vec::with_capacity(n);
        for t in 0..n {
            let mut canvas = self.background.clone();
            for walker in walkers.iter().filter(|w| w.away.is_none()) {
                self.paint(&mut canvas, &walker.blob);
            }
            let mut label = 0u8;
            let mut bbox = None;
            if let Some(i) = intruder.as_ref().filter(|i| t >= i.start) {
                let dt = (t - i.start) as f32;
                let blob = Blob { x: i.blob.x + i.vx * dt, y: i.blob.y + i.vy * dt, ..i.blob.clone() };
                if self.visible(&blob) {
                    label = 1;
                    self.paint(&mut canvas, &blob);
                    let (x0, y0) = (blob.x.floor().max(0.0) as u32, blob.y.floor().max(0.0) as u32);
                    let (x1, y1) = ((blob.x + blob.w).ceil().min(self.w as f32) as u32, (blob.y + blob.h).ceil().min(self.h as f32) as u32);
                    bbox = Some([x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0)]);
                }
            }
            boxes.push(bbox);
            let sd = self.cfg.noise_std;
            let pixels = canvas.iter().map(|&v| (v + sd * noise(&mut rng)).round().clamp(0.0, 255.0) as u8).collect();
            frames.push(pixels);
            labels.push(label);
            for walker in &mut walkers {
                self.step(&mut rng, walker);
            }
        }
        RenderedClip { frames, labels, boxes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{load_labels, Dataset, FrameFormat};
    use std::fs;

    fn small() -> SynthConfig {
        SynthConfig { train_clips: 2, test_clips: 3, frames_per_clip: 30, ..SynthConfig::default() }
    }

    /// Every file under `dir`, relative path -> bytes.
    fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), fs::read(&p).unwrap());
                }
            }
        }
        out
    }

    #[test]
    fn same_seed_same_bytes() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cfg = small();
        let sa = write_walkway(a.path(), &cfg).unwrap();
        let sb = write_walkway(b.path(), &cfg).unwrap();
        assert_eq!(sa, sb);
        let (ta, tb) = (tree(a.path()), tree(b.path()));
        // 2 + 3 clips of 30 frames, labels, marker.
        assert_eq!(ta.len(), 5 * 30 + 2);
        assert!(ta == tb, "same config, different files");
        // Writing again over a synthetic dataset replaces it with the same bytes.
        write_walkway(a.path(), &cfg).unwrap();
        assert!(tree(a.path()) == tb);
        // Another seed gives other frames.
        let c = tempfile::tempdir().unwrap();
        write_walkway(c.path(), &SynthConfig { seed: 8, ..cfg }).unwrap();
        let tc = tree(c.path());
        let frame = Path::new("training/frames/01/000.png");
        assert_ne!(ta[frame], tc[frame]);
    }

    #[test]
    fn labels_cover_both_classes_and_match_frames() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = SynthConfig::default();
        let s = write_walkway(tmp.path(), &cfg).unwrap();
        assert_eq!((s.train_clips, s.test_clips), (6, 3));
        assert_eq!((s.train_frames, s.test_frames), (6 * 60, 3 * 60));
        let labels = load_labels(tmp.path()).unwrap();
        assert_eq!(labels.len(), 3);
        let mut abnormal = 0;
        for (k, (clip, l)) in labels.iter().enumerate() {
            assert_eq!(l.len(), 60, "clip {clip}");
            let frames = fs::read_dir(tmp.path().join("testing/frames").join(clip)).unwrap().count();
            assert_eq!(frames, l.len(), "clip {clip}");
            // Normal, then one abnormal interval, then normal again (60 frames leave room).
            let first = l.iter().position(|&v| v == 1).unwrap();
            let last = l.iter().rposition(|&v| v == 1).unwrap();
            assert!(first >= WINDOW && last + 1 < l.len(), "clip {clip}: {l:?}");
            assert!(l[first..=last].iter().all(|&v| v == 1), "clip {clip}: {l:?}");
            assert!(last - first >= 5, "clip {clip}: {l:?}");
            let span = &s.intruders[k];
            assert_eq!((&span.clip, span.first_frame, span.last_frame), (clip, first, last));
            abnormal += l.iter().filter(|&&v| v == 1).count();
        }
        assert_eq!(abnormal, s.abnormal_frames);
        // Both kinds of intruder appear.
        assert_eq!(s.intruders[0].kind, "cart");
        assert_eq!(s.intruders[1].kind, "cyclist");
        // Even the shortest clips hold both classes among the scored frames (4 onwards).
        let tmp = tempfile::tempdir().unwrap();
        let short = SynthConfig { frames_per_clip: MIN_FRAMES, test_clips: 4, ..SynthConfig::default() };
        write_walkway(tmp.path(), &short).unwrap();
        for (clip, l) in load_labels(tmp.path()).unwrap() {
            assert!(l[4..].contains(&0) && l[4..].contains(&1), "clip {clip}: {l:?}");
        }
    }

    /// Mean absolute difference between consecutive frames, per frame (entry 0 is 0).
    fn frame_diffs(ds: &Dataset, clip: usize) -> Vec<f32> {
        let f = &ds.clips[clip].frames;
        let mut out = vec![0.0];
        for t in 1..f.len() {
            let d: f32 = f[t].iter().zip(&f[t - 1]).map(|(a, b)| (a - b).abs()).sum();
            out.push(d / f[t].len() as f32);
        }
        out
    }

    #[test]
    fn intruder_moves_more_than_walkers() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = SynthConfig::default();
        write_walkway(tmp.path(), &cfg).unwrap();
        let native = FrameFormat { height: cfg.height, width: cfg.width, channels: 1 };
        let ds = Dataset::open(tmp.path(), "testing", &native).unwrap();
        let labels = load_labels(tmp.path()).unwrap();
        for (c, clip) in ds.clips.iter().enumerate() {
            let l = &labels[&clip.name];
            let d = frame_diffs(&ds, c);
            let mean = |keep: &dyn Fn(usize) -> bool| {
                let v: Vec<f32> = (1..d.len()).filter(|&t| keep(t)).map(|t| d[t]).collect();
                v.iter().sum::<f32>() / v.len() as f32
            };
            let abnormal = mean(&|t| l[t] == 1);
            let normal = mean(&|t| l[t] == 0 && l[t - 1] == 0);
            assert!(abnormal > 1.4 * normal, "clip {}: mean frame difference {abnormal} with the intruder, {normal} without", clip.name);
        }
        // The training clips (walkers only) move like the normal test frames.
        let train = Dataset::open(tmp.path(), "training", &native).unwrap();
        let d = frame_diffs(&train, 0);
        let m = d[1..].iter().sum::<f32>() / (d.len() - 1) as f32;
        assert!(m > 0.0 && m < 0.05, "{m}");
    }

    #[test]
    fn dataset_reader_reads_it() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = small();
        write_walkway(tmp.path(), &cfg).unwrap();
        let tiny = FrameFormat { height: 32, width: 48, channels: 1 };
        let train = Dataset::open(tmp.path(), "training", &tiny).unwrap();
        assert_eq!(train.clips.len(), 2);
        assert_eq!(train.num_frames(), 60);
        assert_eq!(train.clips[0].name, "01");
        assert!(train.clips[0].paths[0].ends_with("000.png"));
        let test = Dataset::open(tmp.path(), "testing", &tiny).unwrap();
        assert_eq!(test.clips.len(), 3);
        test.check_labels(&load_labels(tmp.path()).unwrap()).unwrap();
        // Walkway, grass and walkers give a real spread of gray levels.
        let f = &train.clips[0].frames[0];
        let (lo, hi) = f.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(lo < -0.1 && hi > 0.4, "{lo}..{hi}");
    }

    #[test]
    fn refuses_foreign_folders_and_bad_configs() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("notes.txt"), b"mine").unwrap();
        let e = write_walkway(tmp.path(), &small()).unwrap_err();
        assert!(matches!(e, SynthError::NotEmpty { .. }), "{e}");
        assert!(e.to_string().contains(&tmp.path().display().to_string()), "{e}");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1, "nothing may be written");
        // A marker from someone else does not count.
        fs::write(tmp.path().join(MARKER), br#"{"generator": "other"}"#).unwrap();
        assert!(matches!(write_walkway(tmp.path(), &small()), Err(SynthError::NotEmpty { .. })));
        // A file as root.
        let file = tmp.path().join("notes.txt");
        assert!(matches!(write_walkway(&file, &small()), Err(SynthError::NotADir { .. })));
        // A root that cannot be created names itself.
        let below = file.join("sub");
        let e = write_walkway(&below, &small()).unwrap_err();
        assert!(matches!(&e, SynthError::Io { path, .. } if path == &below), "{e}");
        for cfg in [SynthConfig { height: 8, ..small() }, SynthConfig { frames_per_clip: 7, ..small() }, SynthConfig { test_clips: 0, ..small() }, SynthConfig { noise_std: f32::NAN, ..small() }] {
            assert!(matches!(write_walkway(&tmp.path().join("x"), &cfg), Err(SynthError::Config { .. })));
        }
        assert!(!tmp.path().join("x").exists());
        // JSON configs may leave fields out.
        let cfg: SynthConfig = serde_json::from_str(r#"{"seed": 3}"#).unwrap();
        assert_eq!(cfg, SynthConfig { seed: 3, ..SynthConfig::default() });
    }
}
