//! The trained network over a whole dataset: predictions in batches, their pooled errors, the speed
//! cue's box means, and the causal calibration fitted on them.

use candle_core::{Device, Tensor};
use sfn_models::losses;
use sfn_models::scoring::{CausalCalibration, ErrorPooling, RegionStats, SpeedCalibration, SpeedCue};

use crate::ensemble::Network;

use crate::captions::{CaptionCache, WindowTexts};
use crate::checkpoint;
use crate::data::{Dataset, INPUT_FRAMES};
use crate::train::{batch_tensor, frame_format, TrainConfig};
use crate::TrainerError;

/// Errors of every window of every clip.
pub struct DatasetErrors {
    /// `visual[p][c][k]`: visual error of frame k + 4 of clip c under `poolings[p]`.
    pub visual: Vec<Vec<Vec<f32>>>,
    /// `semantic[c][k]`: 1 - cos(predicted text, caption embedding of frame k + 4), with captions.
    pub semantic: Option<Vec<Vec<f32>>>,
}

/// (text input, text target) tensors [B, dim] of windows.
pub fn text_tensors(texts: &WindowTexts, idx: &[(usize, usize)]) -> Result<(Tensor, Tensor), TrainerError> {
    let (i, t) = texts.batch(idx)?;
    let dev = Device::Cpu;
    Ok((Tensor::from_vec(i, (idx.len(), texts.dim), &dev)?, Tensor::from_vec(t, (idx.len(), texts.dim), &dev)?))
}

/// Visual errors of every window of every clip for each pooling (one forward pass serves all), and the
/// semantic errors when `texts` is given (the model then also reads the caption of each input clip).
/// `regions` are the statistics a `WindowMaxZ` pooling needs.
pub fn dataset_errors(model: &dyn Network, ds: &Dataset, batch: usize, poolings: &[ErrorPooling], regions: Option<&RegionStats>, texts: Option<&WindowTexts>) -> Result<DatasetErrors, TrainerError> {
    let mut out = vec![Vec::with_capacity(ds.clips.len()); poolings.len()];
    let semantic = for_each_prediction(model, ds, batch, texts, |c, predicted| {
        for (p, pooling) in poolings.iter().enumerate() {
            if out[p].len() <= c {
                out[p].push(Vec::new());
            }
            out[p][c].extend(losses::pooled_error_with(&predicted.map(*pooling)?, *pooling, regions)?.to_vec1::<f32>()?);
        }
        Ok(())
    })?;
    Ok(DatasetErrors { visual: out, semantic })
}

/// One batch of predictions: the squared-error map and the frames it came from.
pub struct Predicted {
    /// [B, 1, H, W], [`losses::error_map`].
    pub error: Tensor,
    /// The predicted frame t+1, the true one and frame t (the last input): [B, C, H, W].
    pub pred: Tensor,
    pub target: Tensor,
    pub last: Tensor,
}

impl Predicted {
    /// The map `pooling` pools: [`losses::changed_error_map`] for the change-weighted pooling,
    /// [`losses::relative_error_map`] for the relative one, else the error map.
    pub fn map(&self, pooling: ErrorPooling) -> candle_core::Result<Tensor> {
        match (pooling.change_milli(), pooling) {
            (Some(c), ErrorPooling::RelativeWindowMax { .. }) => losses::relative_error_map(&self.pred, &self.target, &self.last, c),
            (Some(c), _) => losses::changed_error_map(&self.pred, &self.target, &self.last, c),
            (None, _) => Ok(self.error.clone()),
        }
    }
}

/// Runs the model over every window of every clip (in order, `batch` at a time) and hands each
/// batch's [`Predicted`] with its clip index to `f`; returns the semantic errors per clip when
/// `texts` is given.
pub fn for_each_prediction(
    model: &dyn Network,
    ds: &Dataset,
    batch: usize,
    texts: Option<&WindowTexts>,
    mut f: impl FnMut(usize, &Predicted) -> candle_core::Result<()>,
) -> Result<Option<Vec<Vec<f32>>>, TrainerError> {
    let mut semantic = texts.map(|_| Vec::with_capacity(ds.clips.len()));
    for (c, clip) in ds.clips.iter().enumerate() {
        let idx: Vec<(usize, usize)> = (INPUT_FRAMES..clip.frames.len()).map(|t| (c, t)).collect();
        let mut sem = Vec::with_capacity(idx.len());
        for chunk in idx.chunks(batch.max(1)) {
            let x = batch_tensor(ds, chunk)?;
            let text = texts.map(|t| text_tensors(t, chunk)).transpose()?;
            let pred = model.predict(&x.narrow(1, 0, INPUT_FRAMES)?, text.as_ref().map(|t| &t.0))?;
            let target = x.narrow(1, INPUT_FRAMES, 1)?.squeeze(1)?;
            let last = x.narrow(1, INPUT_FRAMES - 1, 1)?.squeeze(1)?;
            let error = losses::error_map(&pred.frame, &target)?;
            f(c, &Predicted { error, pred: pred.frame.clone(), target, last })?;
            if let Some((_, t)) = &text {
                let cos = losses::per_sample_cosine(&pred.text, t)?;
                sem.extend((1.0 - cos)?.to_vec1::<f32>()?);
            }
        }
        if let Some(s) = semantic.as_mut() {
            s.push(sem);
        }
    }
    Ok(semantic)
}

/// `sfn-train calibrate`: re-fits `calibration.json` of the model in `model_dir` on the normal
/// footage `data/<split>/frames` (the training clips, or a new scene's own normal footage), with
/// `pooling` and `sigma` (default: the stored ones, or the training settings' where the model has no
/// calibration yet, e.g. a checkpoint taken mid-training) and the captions the model was trained with.
/// `speed`: None keeps the stored speed cue (or the training settings'), `Some(None)` drops it.
/// `appearance`: None keeps the stored choice (joined or not), `Some(true)` joins the model's
/// appearance cue (`appearance.json`, refused where the model has none), `Some(false)` drops it.
#[allow(clippy::too_many_arguments)]
pub fn recalibrate(
    model_dir: &std::path::Path,
    data: &std::path::Path,
    split: &str,
    pooling: Option<ErrorPooling>,
    sigma: Option<f32>,
    speed: Option<Option<SpeedCue>>,
    appearance: Option<bool>,
    batch: usize,
) -> Result<CausalCalibration, TrainerError> {
    let loaded = checkpoint::load_model(model_dir)?;
    let tcfg: TrainConfig = checkpoint::read_json(&model_dir.join(checkpoint::TRAIN))?;
    // A checkpoint taken mid-training has no calibration yet: its training settings say what to fit.
    let cal_path = model_dir.join(checkpoint::CALIBRATION);
    let (old_pooling, old_sigma, old_speed, old_appearance) = if cal_path.exists() {
        let old: CausalCalibration = checkpoint::read_json(&cal_path)?;
        (old.pooling, old.sigma, old.speed.map(|s| s.cue), old.appearance.is_some())
    } else {
        (tcfg.error_pooling, tcfg.causal_sigma, tcfg.speed, false)
    };
    let appearance = match appearance.unwrap_or(old_appearance) {
        true => Some(
            crate::appearance::load(model_dir)?
                .ok_or_else(|| TrainerError::Usage(format!("--appearance on: {} has no {} (fit one with `sfn-train appearance`)", model_dir.display(), crate::appearance::APPEARANCE)))?,
        ),
        false => None,
    };
    let mut ds = Dataset::open(data, split, &frame_format(&loaded.cfg))?;
    // The clips held out of training stay out of the calibration too (a new scene's own footage in
    // another split is used whole).
    if split == "training" {
        ds.remove_clips(&tcfg.holdout, &data.join("training/frames"))?;
    }
    let cache = tcfg.captions.as_ref().map(|p| CaptionCache::read(p).map(|c| (c, p.clone()))).transpose()?;
    let texts = cache.as_ref().map(|(c, p)| WindowTexts::new(c, p, split, &ds)).transpose()?;
    let settings = CalibrationSettings {
        // The stored pooling's fitted parts (the relative floor) are fitted anew on this footage.
        pooling: pooling.unwrap_or(old_pooling.unfitted()),
        sigma: sigma.unwrap_or(old_sigma),
        visual_weight: tcfg.visual_weight,
        semantic_weight: tcfg.semantic_weight,
        speed: speed.unwrap_or(old_speed),
    };
    let cal = match &appearance {
        Some((net, m)) => {
            let a: Vec<f32> = crate::appearance::frame_errors(net, &ds)?.into_iter().flatten().collect();
            calibrate_joined(loaded.network(), &ds, batch, texts.as_ref(), settings, Some((m.config.boxes, m.z, &a)))?
        }
        None => calibrate(loaded.network(), &ds, batch, texts.as_ref(), settings)?,
    };
    checkpoint::write_json(&model_dir.join(checkpoint::CALIBRATION), &cal)?;
    Ok(cal)
}

/// What [`calibrate`] fits: the pooling, the causal smoothing, the stream weights and the speed cue.
pub use sfn_models::scoring::CalibrationSettings;

/// The speed cue's box means for every scored frame of `ds` (frame t against frame t-1, t from 4),
/// per clip, computed in parallel.
pub fn speed_box_means(ds: &Dataset, cue: &SpeedCue) -> Result<Vec<Vec<Vec<f32>>>, TrainerError> {
    use rayon::prelude::*;
    let f = &ds.format;
    ds.clips
        .iter()
        .map(|clip| (INPUT_FRAMES..clip.frames.len()).into_par_iter().map(|t| cue.box_means(&clip.frames[t - 1], &clip.frames[t], f.channels, f.height, f.width).map_err(TrainerError::from)).collect())
        .collect()
}

/// Speed scores s (region z max) per clip and scored frame.
pub fn speed_scores(ds: &Dataset, speed: &SpeedCalibration) -> Result<Vec<Vec<f32>>, TrainerError> {
    speed_box_means(ds, &speed.cue)?.iter().map(|clip| clip.iter().map(|m| speed.score_boxes(m).map_err(TrainerError::from)).collect()).collect()
}

/// Calibrates causal scoring on normal footage `ds` (the training clips, or a new scene's own
/// footage) with [`sfn_models::scoring::fit_calibration`]: the camera's own pooling (pure Rust, as
/// `sfn-host calibrate` pools the ONNX export's predictions), applied to the network's error maps.
pub fn calibrate(model: &dyn Network, ds: &Dataset, batch: usize, texts: Option<&WindowTexts>, settings: CalibrationSettings) -> Result<CausalCalibration, TrainerError> {
    calibrate_joined(model, ds, batch, texts, settings, None)
}

/// [`error_summaries`]' result.
pub struct ErrorSummaries {
    /// `[clip][scored frame]`: the frame's error summary.
    pub summaries: Vec<Vec<Vec<f32>>>,
    /// Semantic errors per clip and scored frame (with texts).
    pub semantic: Option<Vec<Vec<f32>>>,
}

/// The error summary of `pooling` ([`sfn_models::scoring::error_summary`]: box means, for the relative
/// pooling those of both planes) of every scored frame of `ds`, per clip, and the semantic errors
/// when `texts` is given.
pub fn error_summaries(model: &dyn Network, ds: &Dataset, batch: usize, texts: Option<&WindowTexts>, pooling: ErrorPooling) -> Result<ErrorSummaries, TrainerError> {
    let img = &model.config().image;
    let (h, w) = (img.height, img.width);
    let mut out: Vec<Vec<Vec<f32>>> = vec![Vec::new(); ds.clips.len()];
    let mut bad = None;
    let semantic = for_each_prediction(model, ds, batch, texts, |c, predicted| {
        for m in predicted.map(pooling)?.flatten_from(1)?.to_vec2::<f32>()? {
            match sfn_models::scoring::error_summary(pooling, &m, h, w) {
                Ok(e) => out[c].push(e),
                Err(e) => {
                    bad.get_or_insert(e);
                }
            }
        }
        Ok(())
    })?;
    match bad {
        Some(e) => Err(e.into()),
        None => Ok(ErrorSummaries { summaries: out, semantic }),
    }
}

/// [`calibrate`] with the appearance cue joined: its boxes, z constants and frame errors on `ds`'s
/// scored frames, in clip order ([`sfn_models::scoring::fit_calibration_joined`]).
pub fn calibrate_joined(
    model: &dyn Network,
    ds: &Dataset,
    batch: usize,
    texts: Option<&WindowTexts>,
    settings: CalibrationSettings,
    appearance: Option<(sfn_models::scoring::AppearanceBoxes, sfn_models::scoring::AppearanceZ, &[f32])>,
) -> Result<CausalCalibration, TrainerError> {
    let img = &model.config().image;
    let (h, w) = (img.height, img.width);
    let ErrorSummaries { summaries, semantic } = error_summaries(model, ds, batch, texts, settings.pooling)?;
    let errors: Vec<Vec<f32>> = summaries.into_iter().flatten().collect();
    let speed_boxes: Vec<Vec<f32>> = match &settings.speed {
        Some(cue) => speed_box_means(ds, cue)?.into_iter().flatten().collect(),
        None => Vec::new(),
    };
    let sem: Option<Vec<f32>> = semantic.map(|s| s.into_iter().flatten().collect());
    // Every window of every clip, in clip order: frames 4.. of each.
    let clip_frames: Vec<usize> = ds.clips.iter().map(|c| c.frames.len().saturating_sub(INPUT_FRAMES)).collect();
    Ok(sfn_models::scoring::fit_calibration_joined(settings, h, w, &errors, &clip_frames, &speed_boxes, sem.as_deref(), appearance)?)
}
