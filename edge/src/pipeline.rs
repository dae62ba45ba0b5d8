//! The streaming pipeline: each frame is encoded once (`encoder.onnx`, with its difference to the
//! previous frame) into a 5-slot window; from the fifth frame on, `decoder.onnx` predicts frame t from
//! the cached encodings of t-4..t-1, and the prediction error of t (pooled as the model was calibrated)
//! plus the semantic error go through the causal scorer, then the alarm hysteresis. Where the
//! calibration joins the appearance cue, `appearance.onnx` scores the moving boxes of (t-1, t) and
//! the largest box error joins the visual error first.
//!
//! A gap in frame indices (a dropped or skipped frame) restarts the window: motion across a gap would be
//! wrong. The first 4 frames after a (re)start produce no score.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use sfn_infer::{BackendKind, ExportedModel, InferError, Manifest};
use sfn_scoring::{CausalCalibration, CausalScorer, Cue, ErrorPooling, PooledHistory, Region, RegionStats};

use crate::alarm::{AlarmConfig, AlarmEvent, AlarmState, Hysteresis};

/// One frame's cached encoding.
struct Cached {
    index: u64,
    frame: Vec<f32>,
    tokens: Vec<f32>,
    patch_embed: Vec<f32>,
    motion: Vec<f32>,
}

/// What the pipeline says about a scored frame.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct FrameOutput {
    pub index: u64,
    pub timestamp_ms: u64,
    /// Pooled prediction error of this frame (with the speed and appearance cues the calibration joins).
    pub visual_error: f32,
    /// The appearance cue's frame error (largest moving-box error), where the calibration joins it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appearance_error: Option<f32>,
    /// 1 - cos(predicted text, latest caption), with captions.
    pub semantic_error: Option<f32>,
    /// z-scores of the two errors against the calibration (before smoothing).
    pub visual_z: f32,
    pub semantic_z: Option<f32>,
    /// The causal score (smoothed weighted z).
    pub score: f32,
    pub alarm: AlarmState,
    pub event: Option<AlarmEvent>,
    /// The cue that set the visual error, and its highest-scoring box in the source frame's pixels
    /// (the model's when the source size is unknown; absent for the frame-mean pooling): from the
    /// scoring itself, no extra inference.
    pub cue: Cue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    /// Encoder + decoder (+ appearance) time for this frame, microseconds.
    pub infer_us: u64,
}

/// Errors of the pipeline; each names the frame or file.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Model(#[from] InferError),
    #[error("{path}: {reason}")]
    Setup { path: String, reason: String },
    #[error("frame {index}: {reason}")]
    Frame { index: u64, reason: String },
}

/// Counters of the batchers every camera of the process shares (`model.max_batch` > 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchSummary {
    pub encoder: sfn_infer::batch::BatchCounts,
    pub decoder: sfn_infer::batch::BatchCounts,
}

/// A model's id in packets: the first 4 bytes of its encoder's sha256 (hex in model.json).
pub fn model_id_of(manifest: &Manifest) -> [u8; 4] {
    let h = &manifest.encoder.sha256;
    let mut model_id = [0u8; 4];
    for (i, b) in model_id.iter_mut().enumerate() {
        *b = h.get(2 * i..2 * i + 2).and_then(|s| u8::from_str_radix(s, 16).ok()).unwrap_or(0);
    }
    model_id
}

/// Counters.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct PipelineStats {
    pub frames_in: u64,
    pub frames_scored: u64,
    pub window_restarts: u64,
    pub bad_frames: u64,
}

/// The streaming detector.
pub struct Pipeline {
    model: ExportedModel,
    calibration: CausalCalibration,
    scorer: CausalScorer,
    /// The pooled prediction errors of the last frames, for a pooling that must hold over frames
    /// (cleared with the window where the frames stop being consecutive).
    history: PooledHistory,
    alarm: Hysteresis,
    window: VecDeque<Cached>,
    /// (previous, latest) caption features.
    texts: (Option<Vec<f32>>, Option<Vec<f32>>),
    model_id: [u8; 4],
    pub stats: PipelineStats,
    /// Width and height of the source frames (the runtime sets it): output regions are given in them.
    pub source_size: Option<(u32, u32)>,
}

impl Pipeline {
    /// Opens an export (checked against its model.json) on `backend`. Without a causal calibration in
    /// model.json there is nothing to score against: refused.
    pub fn open(dir: &Path, backend: &BackendKind, alarm: AlarmConfig) -> Result<Self, PipelineError> {
        Self::with_model(ExportedModel::open(dir, backend)?, alarm)
    }

    /// The loaded export back (e.g. to start a fresh pipeline on a model already warmed up).
    pub fn into_model(self) -> ExportedModel {
        self.model
    }

    /// [`Pipeline::open`] on an export already loaded (e.g. [`ExportedModel::share`]d by several cameras).
    pub fn with_model(model: ExportedModel, alarm: AlarmConfig) -> Result<Self, PipelineError> {
        Self::with_calibration(model, None, alarm)
    }

    /// [`Pipeline::with_model`] scoring against `calibration` (a scene's own, fitted on this network's
    /// errors) instead of the export's.
    pub fn with_calibration(model: ExportedModel, calibration: Option<CausalCalibration>, alarm: AlarmConfig) -> Result<Self, PipelineError> {
        let dir = model.dir.clone();
        let ring = model.manifest.window + 1;
        let calibration = calibration.or_else(|| model.manifest.calibration.clone()).ok_or_else(|| PipelineError::Setup {
            path: dir.join(sfn_infer::manifest::MANIFEST).display().to_string(),
            reason: "no causal calibration (export a model trained by `sfn-train train`, which writes calibration.json)".into(),
        })?;
        if matches!(calibration.pooling, ErrorPooling::WindowMaxZ { .. }) {
            let img = &model.manifest.image;
            let checked = calibration.pooling.check_regions(calibration.regions.as_ref(), img.height, img.width).and_then(RegionStats::validate);
            checked.map_err(|e| PipelineError::Setup { path: dir.join(sfn_infer::manifest::MANIFEST).display().to_string(), reason: format!("calibration: {e}") })?;
        }
        calibration.pooling.check_fitted().map_err(|e| PipelineError::Setup { path: dir.join(sfn_infer::manifest::MANIFEST).display().to_string(), reason: format!("calibration.pooling: {e}") })?;
        if let Some(sp) = &calibration.speed {
            let img = &model.manifest.image;
            sp.check(img.height, img.width).map_err(|e| PipelineError::Setup { path: dir.join(sfn_infer::manifest::MANIFEST).display().to_string(), reason: format!("calibration.speed: {e}") })?;
        }
        if let Some(j) = &calibration.appearance {
            let img = &model.manifest.image;
            let setup = |reason: String| PipelineError::Setup { path: dir.join(sfn_infer::manifest::MANIFEST).display().to_string(), reason };
            j.validate().map_err(|e| setup(format!("calibration.appearance: {e}")))?;
            if j.boxes.window > img.height.min(img.width) {
                return Err(setup(format!("calibration.appearance.boxes: window {} is larger than the {}x{} frame", j.boxes.window, img.height, img.width)));
            }
            if !model.has_appearance() {
                return Err(setup("the calibration joins the appearance cue but the export has no appearance.onnx (re-export the model)".into()));
            }
        }
        Ok(Pipeline {
            model_id: model_id_of(&model.manifest),
            scorer: CausalScorer::new(&calibration),
            history: PooledHistory::new(calibration.pooling.frames()),
            calibration,
            model,
            alarm: Hysteresis::new(alarm),
            window: VecDeque::with_capacity(ring),
            texts: (None, None),
            stats: PipelineStats::default(),
            source_size: None,
        })
    }

    /// The visual error's pooling, with the speed cue when the calibration has one and the appearance
    /// cue when it joins it (e.g. `window_max_z_32s16 + speed_r3_b12_32s16_m1 + appearance`).
    pub fn scoring_name(&self) -> String {
        let c = &self.calibration;
        let name = c.speed.as_ref().map_or_else(|| c.pooling.name(), |s| format!("{} + {}", c.pooling.name(), s.cue.name()));
        if c.appearance.is_some() {
            name + " + appearance"
        } else {
            name
        }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.model.manifest
    }

    /// The first 4 bytes of the encoder's sha256: the model id in packets.
    pub fn model_id(&self) -> [u8; 4] {
        self.model_id
    }

    /// The shared batcher's counters (encoder, decoder) when the model calls are batched.
    pub fn batch_counts(&self) -> Option<BatchSummary> {
        self.model.batch_stats().map(|[e, d]| BatchSummary { encoder: e.counts(), decoder: d.counts() })
    }

    pub fn backend(&self) -> String {
        self.model.backend()
    }

    /// A new caption feature (the decoder then reads the previous one; the semantic error targets it).
    pub fn set_text(&mut self, embedding: Vec<f32>) -> Result<(), PipelineError> {
        let dim = self.model.manifest.text_dim;
        if embedding.len() != dim || embedding.iter().any(|v| !v.is_finite()) {
            return Err(PipelineError::Setup { path: "caption feature".into(), reason: format!("{} values (need {dim}, finite)", embedding.len()) });
        }
        let prev = self.texts.1.take();
        self.texts = (prev, Some(embedding));
        Ok(())
    }

    /// Whether the model reads captions.
    pub fn uses_text(&self) -> bool {
        self.model.manifest.text.is_some()
    }

    /// Feeds one preprocessed frame (CHW in [-1, 1], the model's size). Returns its output from the
    /// fifth consecutive frame on.
    pub fn push(&mut self, index: u64, timestamp_ms: u64, frame: Vec<f32>) -> Result<Option<FrameOutput>, PipelineError> {
        self.stats.frames_in += 1;
        let m = &self.model.manifest;
        let fl = m.frame_len();
        if frame.len() != fl {
            self.stats.bad_frames += 1;
            return Err(PipelineError::Frame { index, reason: format!("{} values, the model takes {}x{}x{}", frame.len(), m.image.channels, m.image.height, m.image.width) });
        }
        if let Some(i) = frame.iter().position(|v| !v.is_finite()) {
            self.stats.bad_frames += 1;
            return Err(PipelineError::Frame { index, reason: format!("value {i} is not finite") });
        }
        if self.window.back().is_some_and(|c| c.index + 1 != index) {
            self.window.clear();
            self.history.clear();
            self.stats.window_restarts += 1;
        }
        let t0 = Instant::now();
        let prev: &[f32] = self.window.back().map_or(&frame[..], |c| &c.frame[..]);
        let e = self.model.encode(&frame, prev, 1)?;
        // The decoder reads the last `n` frames (model.json's window) and predicts the next one: the
        // ring holds n inputs and the target.
        let n = self.model.manifest.window;
        if self.window.len() == n + 1 {
            self.window.pop_front();
        }
        self.window.push_back(Cached { index, frame, tokens: e.tokens.data, patch_embed: e.patch_embed.data, motion: e.motion.data });
        if self.window.len() < n + 1 {
            return Ok(None);
        }
        let w = &self.window;
        let tokens: Vec<f32> = w.iter().take(n).flat_map(|c| c.tokens.iter().copied()).collect();
        let motion: Vec<f32> = w.iter().skip(1).take(n - 1).flat_map(|c| c.motion.iter().copied()).collect();
        let input_text = self.texts.0.as_ref().or(self.texts.1.as_ref());
        let use_text = self.model.manifest.text.is_some();
        let (last, target) = (&w[n - 1], &w[n]);
        let d = self.model.decode(&tokens, &last.patch_embed, &motion, input_text.filter(|_| use_text).map(|v| &v[..]), &last.frame, Some(&w[n - 2].frame), 1)?;
        let mut infer_us = t0.elapsed().as_micros() as u64;
        let img = self.model.manifest.image.clone();
        let detail = self
            .calibration
            .visual_scoring()
            .explain_in(&d.frame.data, &target.frame, &last.frame, img.channels, img.height, img.width, &mut self.history)
            .map_err(|e| PipelineError::Frame { index, reason: e.to_string() })?;
        let (visual, appearance_error) = match &self.calibration.appearance {
            Some(j) => {
                let frame_err = |e: String| PipelineError::Frame { index, reason: format!("appearance: {e}") };
                let boxes = j.boxes.describe(&last.frame, &target.frame, img.channels, img.height, img.width).map_err(|e| frame_err(e.to_string()))?;
                let flat: Vec<f32> = boxes.iter().flat_map(|b| b.values.iter().copied()).collect();
                let ta = Instant::now();
                let errors = self.model.appearance_errors(&flat, boxes.len())?;
                infer_us += ta.elapsed().as_micros() as u64;
                let a = sfn_scoring::appearance_frame_error(&errors);
                (j.join(detail.error, a), Some(a))
            }
            None => (detail.error, None),
        };
        let region = detail.region.map(|r| match self.source_size {
            Some(size) => r.rescale((img.width as u32, img.height as u32), size),
            None => r,
        });
        let semantic = match (&self.texts.1, use_text) {
            (Some(target), true) => Some(1.0 - sfn_scoring::cosine(&d.text.data, target)),
            _ => None,
        };
        let (visual_z, semantic_z) = self.scorer.frame_z(visual, semantic);
        let score = self.scorer.push(visual, semantic);
        let (alarm, event) = self.alarm.push_where(index, timestamp_ms, score, Some(detail.cue), region);
        self.stats.frames_scored += 1;
        Ok(Some(FrameOutput { index, timestamp_ms, visual_error: visual, appearance_error, semantic_error: semantic, visual_z, semantic_z, score, alarm, event, cue: detail.cue, region, infer_us }))
    }
}
