//! `sfn-train train`: Adam on windows of normal footage, atomic checkpoints, exact resume, and the
//! causal-scoring calibration on the training footage at the end.

use crate::data::INPUT_FRAMES;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sfn_models::scoring::{CausalCalibration, ErrorPooling, SpeedCue};
use sfn_models::{losses, SfnConfig};

use crate::captions::{CaptionCache, WindowTexts};
use crate::checkpoint::{self, CheckpointError};
use crate::data::{Dataset, FrameFormat};
use crate::optim::{Adam, AdamConfig, WeightAverages};
use crate::TrainerError;

/// Training settings, saved as `train.json` in the model dir.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: u64,
    pub batch_size: usize,
    pub seed: u64,
    pub adam: AdamConfig,
    /// Write a checkpoint every this many optimiser steps (and at the end of every epoch).
    pub checkpoint_every: u64,
    /// Causal scoring: one-sided Gaussian sigma in frames, stored in `calibration.json`.
    pub causal_sigma: f32,
    pub visual_weight: f32,
    pub semantic_weight: f32,
    /// How a frame's error map becomes its visual error (for calibration and scoring).
    #[serde(default)]
    pub error_pooling: ErrorPooling,
    /// Learning-rate schedule around `adam.lr`.
    #[serde(default)]
    pub schedule: LrSchedule,
    /// Caption cache (`sfn-train captions`): with it the text token and the text loss are used.
    #[serde(default)]
    pub captions: Option<PathBuf>,
    /// Speed cue folded into the visual error at calibration (none: the prediction error alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<SpeedCue>,
    /// Training clips held out of training and calibration: normal footage the model never saw, for
    /// the held-out checks of `sfn-train eval --folds` (frame error against copying, false alarms).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holdout: Vec<String>,
    /// Exponential moving averages of the weights to keep during training, one per decay in (0, 1);
    /// each is written beside the model as `ema-<decay>.safetensors` (the model itself stays the
    /// last weights). Empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ema_decays: Vec<f64>,
}

impl TrainConfig {
    /// Training settings that go with a network preset. `cpu-ped2` fits a CPU budget of about 75
    /// minutes on 2 cores: a 5x higher peak rate than the paper's 2e-4, with warmup and cosine decay.
    pub fn for_preset(preset: &str) -> Self {
        match preset {
            "cpu-ped2" => Self {
                epochs: 8,
                batch_size: 16,
                adam: AdamConfig { lr: 1e-3, ..AdamConfig::default() },
                schedule: LrSchedule { warmup_steps: 100, final_fraction: 0.05 },
                // The network's error weighted by how much the frame changed there (in full from 0.1,
                // the moving-pixel threshold of eval's held-out figures), per 40x40-pixel box at
                // stride 20 (a quarter of the frame's height; 32 at stride 16 at 128x192, scaled) divided
                // by copying's error there plus a floor that calibration fits (the 90th percentile of
                // copying's box error on the calibration footage: 0.004801 on Ped2's training clips
                // 01-14), the largest such ratio,
                // counted as far as it held over two consecutive frames (the smaller of the two); and the block-matching speed cue with match margin 0.1,
                // joined as the mean of the positive parts of the two cues' frame z-scores on normal
                // footage (sfn_scoring::speed), the causal scores smoothed with sigma 4/3
                // (docs/experiments.md has how they were chosen on the folds at 128x192; at 160x240
                // every length is scaled by 1.25).
                error_pooling: ErrorPooling::RelativeWindowMax { window: 40, stride: 20, change_milli: 100, floor_micro: 0, frames: 2 },
                speed: Some(SpeedCue::PED2_160X240_P),
                causal_sigma: 4.0 / 3.0,
                // Two normal clips the model never trains or calibrates on (the last two).
                holdout: vec!["15".into(), "16".into()],
                ..Self::default()
            },
            _ => Self::default(),
        }
    }
}

/// lr(step) = lr * min(1, (step+1)/warmup) * (f + (1-f) (1 + cos(pi step/total)) / 2), f = final_fraction.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LrSchedule {
    pub warmup_steps: u64,
    /// Cosine decay to this fraction of the peak by the last step; 1.0 keeps the rate constant.
    pub final_fraction: f64,
}

impl Default for LrSchedule {
    /// Constant rate (the paper's plain Adam).
    fn default() -> Self {
        Self { warmup_steps: 0, final_fraction: 1.0 }
    }
}

impl LrSchedule {
    /// Learning rate for 0-based `step` of `total` steps.
    pub fn lr(&self, peak: f64, step: u64, total: u64) -> f64 {
        let warm = if self.warmup_steps > 0 { ((step + 1) as f64 / self.warmup_steps as f64).min(1.0) } else { 1.0 };
        let progress = if total > 1 { (step as f64 / (total - 1) as f64).min(1.0) } else { 0.0 };
        let cos = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        peak * warm * (self.final_fraction + (1.0 - self.final_fraction) * cos)
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 20,
            batch_size: 16,
            seed: 17,
            adam: AdamConfig::default(),
            checkpoint_every: 200,
            causal_sigma: 3.0,
            visual_weight: 0.8,
            semantic_weight: 0.2,
            error_pooling: ErrorPooling::WindowMax { window: 8, stride: 4 },
            schedule: LrSchedule::default(),
            captions: None,
            speed: None,
            holdout: Vec::new(),
            ema_decays: Vec::new(),
        }
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::LrSchedule;

    #[test]
    fn warmup_then_cosine() {
        let s = LrSchedule { warmup_steps: 10, final_fraction: 0.1 };
        assert!((s.lr(1.0, 0, 101) - 0.1).abs() < 1e-12);
        assert!((s.lr(1.0, 9, 101) - (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * 0.09).cos()))).abs() < 1e-12);
        assert!((s.lr(1.0, 50, 101) - 0.55).abs() < 1e-12);
        assert!((s.lr(1.0, 100, 101) - 0.1).abs() < 1e-12);
        assert_eq!(LrSchedule::default().lr(2e-4, 77, 101), 2e-4);
    }
}

/// Where training stands; written last at every checkpoint.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct TrainState {
    /// Epoch in progress (0-based).
    pub epoch: u64,
    /// Batches of that epoch already applied.
    pub batch_in_epoch: usize,
    pub step: u64,
    pub samples: u64,
    pub seconds: f64,
    pub finished: bool,
    pub epochs: Vec<EpochLog>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EpochLog {
    pub epoch: u64,
    pub loss: f64,
    pub frame: f64,
    pub motion: f64,
    pub balance: f64,
    /// Text loss 1 - cos (0 without captions).
    #[serde(default)]
    pub text: f64,
    pub samples_per_sec: f64,
}

/// What `train` should do.
pub struct TrainOptions {
    pub data: PathBuf,
    pub out: PathBuf,
    /// The network (ignored on resume: the model dir's config wins).
    pub model: SfnConfig,
    pub train: TrainConfig,
    pub resume: bool,
    /// On resume, train up to this many epochs instead of the stored `epochs` (written back to
    /// `train.json`); the other stored settings still apply. Ignored on a fresh run (`train.epochs` is used).
    pub epochs_override: Option<u64>,
    pub progress: bool,
}

/// Result of a finished run.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub state: TrainState,
    pub calibration: CausalCalibration,
}

fn ck(e: CheckpointError) -> TrainerError {
    TrainerError::Checkpoint(e)
}

/// The frame format a network expects.
pub fn frame_format(cfg: &SfnConfig) -> FrameFormat {
    FrameFormat { height: cfg.image.height, width: cfg.image.width, channels: cfg.image.channels }
}

/// A batch tensor [B, 5, C, H, W] from the dataset.
pub fn batch_tensor(ds: &Dataset, idx: &[(usize, usize)]) -> Result<Tensor, TrainerError> {
    let f = &ds.format;
    let buf = ds.try_batch(idx)?;
    Ok(Tensor::from_vec(buf, (idx.len(), 5, f.channels, f.height, f.width), &Device::Cpu)?)
}

/// Trains (or resumes) a model in `opts.out`.
pub fn train(opts: &TrainOptions) -> Result<TrainSummary, TrainerError> {
    let out = &opts.out;
    let state_path = out.join(checkpoint::STATE);
    let (cfg, tcfg, mut state) = if opts.resume {
        if !state_path.exists() {
            return Err(TrainerError::Usage(format!("--resume: {} holds no checkpoint ({} missing)", out.display(), state_path.display())));
        }
        let cfg: SfnConfig = checkpoint::read_json(&out.join(checkpoint::CONFIG)).map_err(ck)?;
        let mut tcfg: TrainConfig = checkpoint::read_json(&out.join(checkpoint::TRAIN)).map_err(ck)?;
        let mut state: TrainState = checkpoint::read_json(&state_path).map_err(ck)?;
        if let Some(epochs) = opts.epochs_override {
            // Epochs started so far: the one in progress counts.
            let begun = state.epoch + u64::from(state.batch_in_epoch > 0);
            if epochs < begun.max(1) {
                return Err(TrainerError::Usage(format!("--epochs {epochs}: {} has already trained {begun} epoch(s) (see {}); pass at least {}", out.display(), state_path.display(), begun.max(1))));
            }
            if epochs > state.epoch {
                // A finished run continues with more epochs (and is calibrated again at the end).
                state.finished = false;
            }
            tcfg.epochs = epochs;
        }
        (cfg, tcfg, state)
    } else {
        if state_path.exists() {
            return Err(TrainerError::Usage(format!("{} already holds a checkpoint; pass --resume to continue it or choose another --out", out.display())));
        }
        (opts.model.clone(), opts.train.clone(), TrainState::default())
    };
    cfg.validate().map_err(|e| TrainerError::Usage(e.to_string()))?;
    if tcfg.batch_size == 0 {
        return Err(TrainerError::Usage("batch_size must be >= 1".into()));
    }
    if tcfg.epochs == 0 {
        // Zero epochs would write a model dir without weights.
        return Err(TrainerError::Usage("epochs must be >= 1".into()));
    }
    // Read the data before anything is written.
    let mut ds = Dataset::open(&opts.data, "training", &frame_format(&cfg))?;
    ds.remove_clips(&tcfg.holdout, &opts.data.join("training/frames"))?;
    let windows_total = ds.windows().len();
    tracing::info!(clips = ds.clips.len(), frames = ds.num_frames(), windows = windows_total, "training data loaded");
    let texts = match &tcfg.captions {
        Some(path) => {
            let cache = CaptionCache::read(path)?;
            if cache.dim != cfg.text_dim {
                return Err(TrainerError::Usage(format!("{}: captions are {}-d ({}) but the network's text_dim is {}", path.display(), cache.dim, cache.encoder, cfg.text_dim)));
            }
            let t = WindowTexts::new(&cache, path, "training", &ds)?;
            // Every window needs its two captions: fail now, not in epoch 7.
            t.batch(&ds.windows())?;
            tracing::info!(captions = %path.display(), provider = %cache.provider, "semantic branch on");
            Some(t)
        }
        None => None,
    };

    let dev = Device::Cpu;
    let (model, vm) = seeded_init(&cfg, tcfg.seed, &dev)?;
    let vars: Vec<_> = vm.data().lock().map_err(|_| TrainerError::Usage("poisoned lock".into()))?.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut ema = WeightAverages::new(vars.clone(), &tcfg.ema_decays).map_err(TrainerError::Usage)?;
    let mut opt = Adam::new(vars, tcfg.adam.clone())?;
    if opts.resume {
        checkpoint::load_weights_into(&vm, &out.join(checkpoint::WEIGHTS)).map_err(ck)?;
        let st = checkpoint::load_tensors(&out.join(checkpoint::OPTIMIZER)).map_err(ck)?;
        opt.load_state(&st).map_err(|reason| ck(CheckpointError::Mismatch { path: out.join(checkpoint::OPTIMIZER), reason }))?;
        ema.load_state(&st).map_err(|reason| ck(CheckpointError::Mismatch { path: out.join(checkpoint::OPTIMIZER), reason }))?;
        if opts.epochs_override.is_some() {
            checkpoint::write_json(&out.join(checkpoint::TRAIN), &tcfg).map_err(ck)?;
        }
        tracing::info!(epoch = state.epoch, step = state.step, epochs = tcfg.epochs, "resuming");
    } else {
        std::fs::create_dir_all(out).map_err(|source| ck(CheckpointError::Io { path: out.clone(), source }))?;
        checkpoint::write_json(&out.join(checkpoint::CONFIG), &cfg).map_err(ck)?;
        checkpoint::write_json(&out.join(checkpoint::TRAIN), &tcfg).map_err(ck)?;
    }

    let steps_per_epoch = windows_total.div_ceil(tcfg.batch_size) as u64;
    let total_steps = steps_per_epoch * tcfg.epochs;
    let pb = if opts.progress { ProgressBar::new(total_steps) } else { ProgressBar::hidden() };
    pb.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  ETA {eta}  {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()));
    pb.set_position(state.step.min(total_steps));
    let started = Instant::now();
    let seconds_before = state.seconds;
    let save = |state: &TrainState, opt: &Adam, ema: &WeightAverages| -> Result<(), TrainerError> {
        checkpoint::save_weights(&vm, &out.join(checkpoint::WEIGHTS)).map_err(ck)?;
        let path = out.join(checkpoint::OPTIMIZER);
        let mut tensors = opt.state()?;
        tensors.extend(ema.state());
        let bytes = checkpoint::safetensors_bytes(&tensors, &path).map_err(ck)?;
        checkpoint::write_atomic(&path, &bytes).map_err(ck)?;
        checkpoint::write_json(&out.join(checkpoint::STATE), state).map_err(ck)
    };

    while state.epoch < tcfg.epochs && !state.finished {
        let order = ds.shuffled_windows(tcfg.seed, state.epoch);
        let batches: Vec<&[(usize, usize)]> = order.chunks(tcfg.batch_size).collect();
        let (mut sum, mut n) = ([0f64; 5], 0usize);
        let epoch_start = Instant::now();
        let epoch_samples_start = state.samples;
        for (bi, idx) in batches.iter().enumerate().skip(state.batch_in_epoch) {
            let x = batch_tensor(&ds, idx)?;
            let inputs = x.narrow(1, 0, INPUT_FRAMES)?;
            let last = x.narrow(1, 3, 1)?.squeeze(1)?;
            let target = x.narrow(1, INPUT_FRAMES, 1)?.squeeze(1)?;
            let text = texts.as_ref().map(|t| text_tensors(t, idx)).transpose()?;
            let pred = model.forward(&inputs, text.as_ref().map(|t| &t.0))?;
            let l = losses::total_loss(&pred, &target, &last, text.as_ref().map(|t| &t.1), &cfg.loss)?;
            let total = l.total.to_scalar::<f32>()? as f64;
            if !total.is_finite() {
                return Err(TrainerError::Diverged { epoch: state.epoch, step: state.step, loss: total });
            }
            opt.cfg.lr = tcfg.schedule.lr(tcfg.adam.lr, state.step, total_steps);
            opt.backward_step(&l.total)?;
            ema.update()?;
            sum[0] += total;
            sum[1] += l.frame.to_scalar::<f32>()? as f64;
            sum[2] += l.motion.to_scalar::<f32>()? as f64;
            sum[3] += l.balance.to_scalar::<f32>()? as f64;
            if let Some(t) = &l.text {
                sum[4] += t.to_scalar::<f32>()? as f64;
            }
            n += 1;
            state.step += 1;
            state.samples += idx.len() as u64;
            state.batch_in_epoch = bi + 1;
            let el = started.elapsed().as_secs_f64();
            state.seconds = seconds_before + el;
            let sps = (state.samples - epoch_samples_start) as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9);
            pb.set_message(format!("epoch {} loss {:.5} frame {:.5} {:.1} samples/s", state.epoch + 1, sum[0] / n as f64, sum[1] / n as f64, sps));
            pb.inc(1);
            if tcfg.checkpoint_every > 0 && state.step % tcfg.checkpoint_every == 0 {
                save(&state, &opt, &ema)?;
            }
        }
        let n = n.max(1) as f64;
        let sps = (state.samples - epoch_samples_start) as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9);
        let log = EpochLog { epoch: state.epoch, loss: sum[0] / n, frame: sum[1] / n, motion: sum[2] / n, balance: sum[3] / n, text: sum[4] / n, samples_per_sec: sps };
        tracing::info!(epoch = state.epoch + 1, loss = log.loss, frame = log.frame, motion = log.motion, samples_per_sec = sps, "epoch done");
        state.epochs.push(log);
        state.epoch += 1;
        state.batch_in_epoch = 0;
        save(&state, &opt, &ema)?;
    }
    pb.finish_and_clear();
    for (decay, weights) in ema.weights() {
        let path = out.join(WeightAverages::file_name(decay));
        checkpoint::write_atomic(&path, &checkpoint::safetensors_bytes(&weights, &path).map_err(ck)?).map_err(ck)?;
    }

    // Calibrate causal scoring on the training (normal) footage.
    let settings = CalibrationSettings { pooling: tcfg.error_pooling, sigma: tcfg.causal_sigma, visual_weight: tcfg.visual_weight, semantic_weight: tcfg.semantic_weight, speed: tcfg.speed };
    let calibration = calibrate(&model, &ds, tcfg.batch_size.max(16), texts.as_ref(), settings)?;
    checkpoint::write_json(&out.join(checkpoint::CALIBRATION), &calibration).map_err(ck)?;
    // The appearance cue beside the network (seconds; `eval` reports it, the scoring does not use it).
    // Footage where nothing moves has none: that is said, not an error.
    match crate::appearance::fit(&crate::appearance::AppearanceOptions::for_model(out.clone(), opts.data.clone(), tcfg.seed), &ds) {
        Ok(m) => tracing::info!(boxes = m.training.boxes, loss = m.training.final_loss, "appearance cue trained"),
        Err(e) => tracing::warn!("no appearance cue: {e}"),
    }
    state.finished = true;
    checkpoint::write_json(&out.join(checkpoint::STATE), &state).map_err(ck)?;
    Ok(TrainSummary { state, calibration })
}

pub use crate::init::{seeded_init, seeded_var_builder};
pub use crate::predict::*;
