//! The appearance cue: an [`AppearanceNet`] trained on the moving boxes of a model's normal training
//! footage (its `holdout` clips left out, as the main network's), stored beside the model
//! (`appearance.json`, `appearance.safetensors`), and its per-frame error on any footage.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sfn_models::appearance::{AppearanceConfig, AppearanceNet};
use sfn_models::scoring::{appearance_frame_error, AppearanceZ, BoxDescriptor};

use crate::checkpoint;
use crate::data::{Dataset, INPUT_FRAMES};
use crate::optim::{Adam, AdamConfig};
use crate::TrainerError;

/// The appearance network's settings, z constants and how it was trained.
pub const APPEARANCE: &str = "appearance.json";
/// Its weights.
pub const APPEARANCE_WEIGHTS: &str = "appearance.safetensors";

/// What `appearance.json` holds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AppearanceModel {
    pub config: AppearanceConfig,
    /// Frame errors' mean and std on the training clips (scored frames), weight 1.
    pub z: AppearanceZ,
    pub training: AppearanceTraining,
}

/// How the appearance network was trained.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AppearanceTraining {
    pub clips: Vec<String>,
    /// Moving boxes trained on.
    pub boxes: usize,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
    /// Mean reconstruction loss (MSE) of the last epoch.
    pub final_loss: f64,
    pub seconds: f64,
}

/// `sfn-train appearance`'s inputs.
#[derive(Clone, Debug)]
pub struct AppearanceOptions {
    pub model: PathBuf,
    pub data: PathBuf,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
}

/// The moving boxes of every frame pair (t-1, t), t >= 1, of every clip, in clip order: `[clip][t][box]`
/// with t counted from 1.
pub fn clip_boxes(cfg: &AppearanceConfig, ds: &Dataset) -> Result<Vec<Vec<Vec<BoxDescriptor>>>, TrainerError> {
    let f = &ds.format;
    ds.clips
        .iter()
        .map(|clip| {
            (1..clip.frames.len())
                .into_par_iter()
                .map(|t| {
                    cfg.boxes
                        .describe(&clip.frames[t - 1], &clip.frames[t], f.channels, f.height, f.width)
                        .map_err(|e| TrainerError::Usage(format!("clip {} frame {t}: appearance boxes: {e}", clip.name)))
                })
                .collect()
        })
        .collect()
}

/// Each descriptor's reconstruction error, in batches of `batch`.
fn box_errors(net: &AppearanceNet, boxes: &[&BoxDescriptor], batch: usize) -> Result<Vec<f32>, TrainerError> {
    let d = net.cfg.input_dim();
    let mut out = Vec::with_capacity(boxes.len());
    for chunk in boxes.chunks(batch.max(1)) {
        let flat: Vec<f32> = chunk.iter().flat_map(|b| b.values.iter().copied()).collect();
        let x = Tensor::from_vec(flat, (chunk.len(), d), &Device::Cpu)?;
        out.extend(net.box_errors(&x)?.to_vec1::<f32>()?);
    }
    Ok(out)
}

/// Per clip, the appearance error of each scored frame (frames 4..: the largest box error of the
/// pair (t-1, t), 0 when nothing moves).
pub fn frame_errors(net: &AppearanceNet, ds: &Dataset) -> Result<Vec<Vec<f32>>, TrainerError> {
    let boxes = clip_boxes(&net.cfg, ds)?;
    boxes
        .iter()
        .map(|clip| {
            // clip[t - 1] holds the pair (t-1, t); scored frames are t = INPUT_FRAMES..
            clip.iter()
                .skip(INPUT_FRAMES - 1)
                .map(|frame| {
                    let refs: Vec<&BoxDescriptor> = frame.iter().collect();
                    Ok(appearance_frame_error(&box_errors(net, &refs, 256)?))
                })
                .collect()
        })
        .collect()
}

/// A fresh network whose initial weights depend only on `seed`.
fn new_net(cfg: &AppearanceConfig, seed: u64) -> Result<(AppearanceNet, VarMap), TrainerError> {
    cfg.validate().map_err(|e| TrainerError::Usage(format!("appearance config: {e}")))?;
    let (vb, vm) = crate::train::seeded_var_builder(seed, &Device::Cpu);
    let net = AppearanceNet::new(cfg, vb)?;
    Ok((net, vm))
}

/// Loads `DIR/appearance.json` and its weights; None when the model has no appearance cue.
pub fn load(dir: &Path) -> Result<Option<(AppearanceNet, AppearanceModel)>, TrainerError> {
    let path = dir.join(APPEARANCE);
    if !path.exists() {
        return Ok(None);
    }
    let m: AppearanceModel = checkpoint::read_json(&path)?;
    m.config.validate().map_err(|e| TrainerError::Usage(format!("{}: config: {e}", path.display())))?;
    m.z.validate().map_err(|e| TrainerError::Usage(format!("{}: {e}", path.display())))?;
    let (net, vm) = new_net(&m.config, m.training.seed)?;
    checkpoint::load_weights_into(&vm, &dir.join(APPEARANCE_WEIGHTS))?;
    Ok(Some((net, m)))
}

/// Trains the appearance network of the model in `opts.model` on its training clips and writes it
/// beside the model.
pub fn train(opts: &AppearanceOptions) -> Result<AppearanceModel, TrainerError> {
    opts.check()?;
    let main: sfn_models::SfnConfig = checkpoint::read_json(&opts.model.join(checkpoint::CONFIG))?;
    let tcfg: crate::train::TrainConfig = checkpoint::read_json(&opts.model.join(checkpoint::TRAIN))?;
    let mut ds = Dataset::open(&opts.data, "training", &crate::train::frame_format(&main))?;
    let holdout: Vec<&String> = tcfg.holdout.iter().filter(|h| ds.clips.iter().any(|c| &c.name == *h)).collect();
    ds.remove_clips(&holdout, &opts.data.join("training/frames"))?;
    fit(opts, &ds)
}

impl AppearanceOptions {
    /// The settings `sfn-train train` fits the cue with: 20 epochs, batch 256, lr 1e-3, the run's seed.
    pub fn for_model(model: PathBuf, data: PathBuf, seed: u64) -> Self {
        Self { model, data, epochs: 20, batch: 256, lr: 1e-3, seed }
    }

    fn check(&self) -> Result<(), TrainerError> {
        if self.epochs == 0 || self.batch == 0 || !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(TrainerError::Usage(format!("appearance: --epochs {} and --batch {} must be > 0, --lr {} finite and > 0", self.epochs, self.batch, self.lr)));
        }
        Ok(())
    }
}

/// Trains the appearance network on the normal footage `ds` (in the model's frame format) and writes
/// it into `opts.model`.
pub fn fit(opts: &AppearanceOptions, ds: &Dataset) -> Result<AppearanceModel, TrainerError> {
    let t0 = Instant::now();
    opts.check()?;
    let f = &ds.format;
    let cfg = AppearanceConfig::new(f.channels, f.height, f.width);
    let (net, vm) = new_net(&cfg, opts.seed)?;
    let boxes = clip_boxes(&cfg, ds)?;
    let all: Vec<&BoxDescriptor> = boxes.iter().flatten().flatten().collect();
    if all.is_empty() {
        return Err(TrainerError::Usage(format!("appearance: nothing moves in {}/training (no box to train on)", opts.data.display())));
    }
    let d = cfg.input_dim();
    let vars: Vec<(String, candle_core::Var)> = vm.data().lock().map_err(|_| TrainerError::Usage("poisoned lock".into()))?.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut opt = Adam::new(vars, AdamConfig { lr: opts.lr, weight_decay: 0.0, ..AdamConfig::default() })?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let mut order: Vec<usize> = (0..all.len()).collect();
    let mut final_loss = f64::NAN;
    for epoch in 0..opts.epochs {
        order.shuffle(&mut rng);
        let (mut sum, mut n) = (0f64, 0usize);
        for chunk in order.chunks(opts.batch) {
            let flat: Vec<f32> = chunk.iter().flat_map(|&i| all[i].values.iter().copied()).collect();
            let x = Tensor::from_vec(flat, (chunk.len(), d), &Device::Cpu)?;
            let r = net.forward(&x)?;
            let mse = (r.output - &x)?.sqr()?.mean_all()?;
            let loss = (&mse + r.balance_loss)?;
            opt.backward_step(&loss)?;
            sum += f64::from(mse.to_scalar::<f32>()?) * chunk.len() as f64;
            n += chunk.len();
        }
        final_loss = sum / n as f64;
        if !final_loss.is_finite() {
            return Err(TrainerError::Diverged { epoch: epoch as u64, step: opt.step, loss: final_loss });
        }
        tracing::info!(epoch, loss = final_loss, "appearance");
    }
    let train_errors: Vec<f32> = frame_errors(&net, ds)?.into_iter().flatten().collect();
    let z = AppearanceZ::fit(&train_errors)?;
    let training = AppearanceTraining {
        clips: ds.clips.iter().map(|c| c.name.clone()).collect(),
        boxes: all.len(),
        epochs: opts.epochs,
        batch: opts.batch,
        lr: opts.lr,
        seed: opts.seed,
        final_loss,
        seconds: t0.elapsed().as_secs_f64(),
    };
    let m = AppearanceModel { config: cfg, z, training };
    checkpoint::save_weights(&vm, &opts.model.join(APPEARANCE_WEIGHTS))?;
    checkpoint::write_json(&opts.model.join(APPEARANCE), &m)?;
    Ok(m)
}
