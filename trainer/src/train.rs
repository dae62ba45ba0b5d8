//! `sfn-train train`: Adam on windows of normal footage, atomic checkpoints, exact resume, and the
//! causal-scoring calibration on the training footage at the end.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sfn_models::scoring::CausalCalibration;
use sfn_models::{losses, SfnConfig, SfnVad};

use crate::checkpoint::{self, CheckpointError};
use crate::data::{Dataset, FrameFormat};
use crate::optim::{Adam, AdamConfig};
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
        }
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
        let tcfg: TrainConfig = checkpoint::read_json(&out.join(checkpoint::TRAIN)).map_err(ck)?;
        let state: TrainState = checkpoint::read_json(&state_path).map_err(ck)?;
        (cfg, tcfg, state)
    } else {
        if state_path.exists() {
            return Err(TrainerError::Usage(format!(
                "{} already holds a checkpoint; pass --resume to continue it or choose another --out",
                out.display()
            )));
        }
        (opts.model.clone(), opts.train.clone(), TrainState::default())
    };
    cfg.validate().map_err(|e| TrainerError::Usage(e.to_string()))?;
    if tcfg.batch_size == 0 {
        return Err(TrainerError::Usage("batch_size must be >= 1".into()));
    }
    // Read the data before anything is written.
    let ds = Dataset::open(&opts.data, "training", &frame_format(&cfg))?;
    let windows_total = ds.windows().len();
    tracing::info!(clips = ds.clips.len(), frames = ds.num_frames(), windows = windows_total, "training data loaded");

    let dev = Device::Cpu;
    let (model, vm) = SfnVad::init(&cfg, &dev)?;
    let vars: Vec<_> = vm.data().lock().map_err(|_| TrainerError::Usage("poisoned lock".into()))?.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut opt = Adam::new(vars, tcfg.adam.clone())?;
    if opts.resume {
        checkpoint::load_weights_into(&vm, &out.join(checkpoint::WEIGHTS)).map_err(ck)?;
        let st = checkpoint::load_tensors(&out.join(checkpoint::OPTIMIZER)).map_err(ck)?;
        opt.load_state(&st).map_err(|reason| ck(CheckpointError::Mismatch { path: out.join(checkpoint::OPTIMIZER), reason }))?;
        tracing::info!(epoch = state.epoch, step = state.step, "resuming");
    } else {
        std::fs::create_dir_all(out).map_err(|source| ck(CheckpointError::Io { path: out.clone(), source }))?;
        checkpoint::write_json(&out.join(checkpoint::CONFIG), &cfg).map_err(ck)?;
        checkpoint::write_json(&out.join(checkpoint::TRAIN), &tcfg).map_err(ck)?;
    }

    let steps_per_epoch = windows_total.div_ceil(tcfg.batch_size) as u64;
    let total_steps = steps_per_epoch * tcfg.epochs;
    let pb = if opts.progress { ProgressBar::new(total_steps) } else { ProgressBar::hidden() };
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  ETA {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_position(state.step.min(total_steps));
    let started = Instant::now();
    let seconds_before = state.seconds;
    let save = |state: &TrainState, opt: &Adam| -> Result<(), TrainerError> {
        checkpoint::save_weights(&vm, &out.join(checkpoint::WEIGHTS)).map_err(ck)?;
        let path = out.join(checkpoint::OPTIMIZER);
        let bytes = checkpoint::safetensors_bytes(&opt.state()?, &path).map_err(ck)?;
        checkpoint::write_atomic(&path, &bytes).map_err(ck)?;
        checkpoint::write_json(&out.join(checkpoint::STATE), state).map_err(ck)
    };

    while state.epoch < tcfg.epochs && !state.finished {
        let order = ds.shuffled_windows(tcfg.seed, state.epoch);
        let batches: Vec<&[(usize, usize)]> = order.chunks(tcfg.batch_size).collect();
        let (mut sum, mut n) = ([0f64; 4], 0usize);
        let epoch_start = Instant::now();
        let epoch_samples_start = state.samples;
        for (bi, idx) in batches.iter().enumerate().skip(state.batch_in_epoch) {
            let x = batch_tensor(&ds, idx)?;
            let inputs = x.narrow(1, 0, 4)?;
            let last = x.narrow(1, 3, 1)?.squeeze(1)?;
            let target = x.narrow(1, 4, 1)?.squeeze(1)?;
            let pred = model.forward(&inputs, None)?;
            let l = losses::total_loss(&pred, &target, &last, None, &cfg.loss)?;
            let total = l.total.to_scalar::<f32>()? as f64;
            if !total.is_finite() {
                return Err(TrainerError::Diverged { epoch: state.epoch, step: state.step, loss: total });
            }
            opt.backward_step(&l.total)?;
            sum[0] += total;
            sum[1] += l.frame.to_scalar::<f32>()? as f64;
            sum[2] += l.motion.to_scalar::<f32>()? as f64;
            sum[3] += l.balance.to_scalar::<f32>()? as f64;
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
                save(&state, &opt)?;
            }
        }
        let n = n.max(1) as f64;
        let sps = (state.samples - epoch_samples_start) as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9);
        let log = EpochLog { epoch: state.epoch, loss: sum[0] / n, frame: sum[1] / n, motion: sum[2] / n, balance: sum[3] / n, samples_per_sec: sps };
        tracing::info!(epoch = state.epoch + 1, loss = log.loss, frame = log.frame, motion = log.motion, samples_per_sec = sps, "epoch done");
        state.epochs.push(log);
        state.epoch += 1;
        state.batch_in_epoch = 0;
        save(&state, &opt)?;
    }
    pb.finish_and_clear();

    // Calibrate causal scoring on the training (normal) footage.
    let errors = dataset_visual_errors(&model, &ds, tcfg.batch_size.max(16))?;
    let flat: Vec<f32> = errors.into_iter().flatten().collect();
    let calibration = CausalCalibration::fit(&flat, None, tcfg.causal_sigma, tcfg.visual_weight, tcfg.semantic_weight)?;
    checkpoint::write_json(&out.join(checkpoint::CALIBRATION), &calibration).map_err(ck)?;
    state.finished = true;
    checkpoint::write_json(&out.join(checkpoint::STATE), &state).map_err(ck)?;
    Ok(TrainSummary { state, calibration })
}

/// Visual error (per-frame MSE of the prediction) of every window of every clip, in clip order:
/// entry k of clip c is the error of frame k + 4.
pub fn dataset_visual_errors(model: &SfnVad, ds: &Dataset, batch: usize) -> Result<Vec<Vec<f32>>, TrainerError> {
    let mut out = Vec::with_capacity(ds.clips.len());
    for (c, clip) in ds.clips.iter().enumerate() {
        let idx: Vec<(usize, usize)> = (4..clip.frames.len()).map(|t| (c, t)).collect();
        let mut errs = Vec::with_capacity(idx.len());
        for chunk in idx.chunks(batch.max(1)) {
            errs.extend(window_errors(model, &batch_tensor(ds, chunk)?)?);
        }
        out.push(errs);
    }
    Ok(out)
}

/// Visual errors of a batch [B, 5, C, H, W].
pub fn window_errors(model: &SfnVad, x: &Tensor) -> Result<Vec<f32>, TrainerError> {
    let pred = model.forward(&x.narrow(1, 0, 4)?, None)?;
    let target = x.narrow(1, 4, 1)?.squeeze(1)?;
    Ok(losses::per_sample_mse(&pred.frame, &target)?.to_vec1()?)
}

/// Path helper for messages.
pub fn display(p: &Path) -> String {
    p.display().to_string()
}
