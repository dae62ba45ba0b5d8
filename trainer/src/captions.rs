//! `sfn-train captions`: caption every 4-frame clip of a dataset once and embed the captions, into a
//! cache file that `train` and `eval` read.
//!
//! The caption of frame t is the caption of the clip t-3..t (t >= 3). A training window with inputs
//! t-3..t and target t+1 gets the caption of t as its text input and the caption of t+1 (the next clip)
//! as its text target; at evaluation the semantic error of frame t+1 is 1 - cos(predicted text, caption
//! embedding of t+1).
//!
//! Cache (JSON): provider, encoder, frame size, per split and clip the index of each frame's caption
//! (null for t < 3 or a clip no provider could caption), the distinct captions and their embeddings.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sfn_captions::{CaptionProvider, Clip, Fallback, FallbackStats};

use crate::checkpoint::{self, CheckpointError};
use crate::data::{Dataset, FrameFormat};
use crate::TrainerError;

/// Caption cache written by `sfn-train captions`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CaptionCache {
    /// The provider's name (with its settings).
    pub provider: String,
    /// Sentence encoder and its width.
    pub encoder: String,
    pub dim: usize,
    /// Frames were given to the provider at this size (height, width, channels).
    pub frame_size: [usize; 3],
    /// split -> clip -> per frame t: index into `texts` of the caption of clip t-3..t.
    pub splits: BTreeMap<String, BTreeMap<String, Vec<Option<u32>>>>,
    pub texts: Vec<String>,
    /// Unit-norm embedding of each text.
    pub embeddings: Vec<Vec<f32>>,
    pub stats: FallbackStats,
    /// Mean provider time per caption, and encoder time per distinct caption (ms).
    pub provider_ms: f64,
    pub encoder_ms: f64,
}

impl CaptionCache {
    pub fn read(path: &Path) -> Result<Self, TrainerError> {
        let c: CaptionCache = checkpoint::read_json(path)?;
        let bad = |reason: String| TrainerError::Checkpoint(CheckpointError::Mismatch { path: path.into(), reason });
        if c.texts.len() != c.embeddings.len() {
            return Err(bad(format!("{} texts but {} embeddings", c.texts.len(), c.embeddings.len())));
        }
        if let Some((i, e)) = c.embeddings.iter().enumerate().find(|(_, e)| e.len() != c.dim || e.iter().any(|v| !v.is_finite())) {
            return Err(bad(format!("embedding {i} has {} values (dim {}) or a non-finite one", e.len(), c.dim)));
        }
        for (split, clips) in &c.splits {
            for (clip, idx) in clips {
                if let Some(k) = idx.iter().position(|i| i.is_some_and(|i| i as usize >= c.texts.len())) {
                    return Err(bad(format!("{split}/{clip} frame {k}: caption index out of range")));
                }
            }
        }
        Ok(c)
    }
}

/// Caption input and target embeddings of a dataset's windows.
pub struct WindowTexts {
    pub dim: usize,
    /// Per clip of the dataset (same order), per frame t: caption index.
    per_clip: Vec<Vec<Option<u32>>>,
    embeddings: Vec<Vec<f32>>,
    names: Vec<String>,
    path: PathBuf,
}

impl WindowTexts {
    /// The captions of `split` for the clips of `ds`; every clip must be in the cache with one entry per frame.
    pub fn new(cache: &CaptionCache, path: &Path, split: &str, ds: &Dataset) -> Result<Self, TrainerError> {
        let bad = |reason: String| TrainerError::Checkpoint(CheckpointError::Mismatch { path: path.into(), reason });
        let clips = cache.splits.get(split).ok_or_else(|| bad(format!("no captions for split {split:?} (run `sfn-train captions` on this dataset)")))?;
        let mut per_clip = Vec::new();
        for clip in &ds.clips {
            let idx = clips.get(&clip.name).ok_or_else(|| bad(format!("no captions for {split}/{}", clip.name)))?;
            if idx.len() != clip.frames.len() {
                return Err(bad(format!("{split}/{}: {} caption entries for {} frames", clip.name, idx.len(), clip.frames.len())));
            }
            per_clip.push(idx.clone());
        }
        Ok(WindowTexts { dim: cache.dim, per_clip, embeddings: cache.embeddings.clone(), names: ds.clips.iter().map(|c| c.name.clone()).collect(), path: path.into() })
    }

    /// Embedding of the caption of clip `c`'s frames t-3..t.
    pub fn caption_of(&self, c: usize, t: usize) -> Result<&[f32], TrainerError> {
        self.get(c, t)
    }

    fn get(&self, c: usize, t: usize) -> Result<&[f32], TrainerError> {
        match self.per_clip[c].get(t).copied().flatten() {
            Some(i) => Ok(&self.embeddings[i as usize]),
            None => Err(TrainerError::Checkpoint(CheckpointError::Mismatch {
                path: self.path.clone(),
                reason: format!("clip {} frame {t} has no caption (the provider failed there with nothing to fall back on)", self.names[c]),
            })),
        }
    }

    /// For windows (clip, target t): text inputs (caption of t-1, i.e. clip t-4..t-1) and targets
    /// (caption of t), each `[B * dim]`.
    pub fn batch(&self, idx: &[(usize, usize)]) -> Result<(Vec<f32>, Vec<f32>), TrainerError> {
        let (mut input, mut target) = (Vec::with_capacity(idx.len() * self.dim), Vec::with_capacity(idx.len() * self.dim));
        for &(c, t) in idx {
            input.extend_from_slice(self.get(c, t - 1)?);
            target.extend_from_slice(self.get(c, t)?);
        }
        Ok((input, target))
    }
}

/// What `sfn-train captions` does.
pub struct CaptionOptions {
    pub data: PathBuf,
    pub out: PathBuf,
    /// Frames handed to the provider.
    pub format: FrameFormat,
    /// Sentence encoder folder (default: `sfn_text::default_dir()`).
    pub encoder: Option<PathBuf>,
    pub progress: bool,
}

/// Captions both splits of `opts.data` (those present) with `provider`, embeds the distinct captions and
/// writes the cache.
pub fn compute(opts: &CaptionOptions, provider: Box<dyn CaptionProvider>) -> Result<CaptionCache, TrainerError> {
    let encoder_dir = opts.encoder.clone().unwrap_or_else(sfn_text::default_dir);
    let encoder = sfn_text::SentenceEncoder::load(&encoder_dir).map_err(|e| TrainerError::Usage(e.to_string()))?;
    let name = provider.name();
    let mut provider = Fallback::new(provider);
    let mut splits = BTreeMap::new();
    let mut texts: Vec<String> = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    let (mut n_captions, mut provider_s) = (0usize, 0f64);
    for split in ["training", "testing"] {
        if !opts.data.join(split).exists() {
            continue;
        }
        let ds = Dataset::open(&opts.data, split, &opts.format)?;
        let total: usize = ds.clips.iter().map(|c| c.frames.len().saturating_sub(3)).sum();
        let pb = if opts.progress { ProgressBar::new(total as u64) } else { ProgressBar::hidden() };
        pb.set_style(ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} ETA {eta}").unwrap_or_else(|_| ProgressStyle::default_bar()));
        pb.set_message(format!("captioning {split}"));
        let mut clips = BTreeMap::new();
        for clip in &ds.clips {
            provider.reset();
            let mut idx = vec![None; clip.frames.len()];
            for (t, slot) in idx.iter_mut().enumerate().skip(3) {
                let c = Clip {
                    clip: &clip.name,
                    frame: t,
                    frames: [&clip.frames[t - 3], &clip.frames[t - 2], &clip.frames[t - 1], &clip.frames[t]],
                    channels: opts.format.channels,
                    height: opts.format.height,
                    width: opts.format.width,
                };
                let t0 = Instant::now();
                let caption = provider.caption(&c);
                provider_s += t0.elapsed().as_secs_f64();
                n_captions += 1;
                pb.inc(1);
                let Ok(caption) = caption else { continue };
                let i = *index.entry(caption.clone()).or_insert_with(|| {
                    texts.push(caption);
                    (texts.len() - 1) as u32
                });
                *slot = Some(i);
            }
            clips.insert(clip.name.clone(), idx);
        }
        pb.finish_and_clear();
        splits.insert(split.to_string(), clips);
    }
    if splits.is_empty() {
        return Err(TrainerError::Usage(format!("{}: neither training/ nor testing/ found", opts.data.display())));
    }
    let t0 = Instant::now();
    let mut embeddings = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(32) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        embeddings.extend(encoder.embed(&refs).map_err(|e| TrainerError::Usage(e.to_string()))?);
    }
    let encoder_ms = 1e3 * t0.elapsed().as_secs_f64() / texts.len().max(1) as f64;
    let cache = CaptionCache {
        provider: name,
        encoder: sfn_text::MINILM.into(),
        dim: encoder.dim(),
        frame_size: [opts.format.height, opts.format.width, opts.format.channels],
        splits,
        texts,
        embeddings,
        stats: provider.stats.clone(),
        provider_ms: 1e3 * provider_s / n_captions.max(1) as f64,
        encoder_ms,
    };
    if let Some(dir) = opts.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Io { path: dir.into(), source })?;
    }
    checkpoint::write_json(&opts.out, &cache)?;
    Ok(cache)
}
