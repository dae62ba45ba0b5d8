//! `sfn-train export`: a model directory -> ONNX exports (fp32, and optionally calibrated QDQ int8 and
//! weight-only int8), plus scoring an export on a dataset with tract or ONNX Runtime.

use crate::data::INPUT_FRAMES;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use sfn_export::{CalibrationSet, ExportInput};
use sfn_infer::manifest::Manifest;
use sfn_infer::{BackendKind, ExportedModel, Precision};
use sfn_models::scoring::{self, CausalCalibration, ErrorPooling, OfflineScoring};
use sfn_models::SfnConfig;

use crate::captions::{CaptionCache, WindowTexts};
use crate::checkpoint::{self, CheckpointError};
use crate::data::{load_labels, Dataset};
use crate::eval::{score_set, ScoreSet};
use crate::train::frame_format;
use crate::TrainerError;

/// Sub-directories of the export for the int8 variants (each a complete export with its model.json).
pub const INT8_DIR: &str = "int8";
pub const INT8_WEIGHTS_DIR: &str = "int8-weights";

/// What `sfn-train export` does.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub model: PathBuf,
    pub out: PathBuf,
    /// Also write static QDQ int8 to OUT/int8 (needs `calib`).
    pub int8: bool,
    /// Also write weight-only int8 to OUT/int8-weights.
    pub weight_int8: bool,
    /// Dataset root whose training split gives the normal calibration windows.
    pub calib: Option<PathBuf>,
    pub calib_windows: usize,
    /// The static int8 export's weights in [-63, 63] (for ONNX Runtime on x86 CPUs without VNNI).
    pub reduce_range: bool,
}

/// `libonnxruntime.so.1*` of the `onnxruntime` wheel in `venv` (the repo's `.venv`, made by
/// `scripts/setup.sh`); `ORT_DYLIB_PATH` wins when set.
pub fn onnxruntime_library(venv: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return Some(p.into());
    }
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    for py in lib.flatten() {
        let capi = py.path().join("site-packages/onnxruntime/capi");
        for e in std::fs::read_dir(&capi).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with("libonnxruntime.so.1") {
                return Some(e.path());
            }
        }
    }
    None
}

/// A checkpoint as the exporter needs it.
pub struct ExportSource {
    pub cfg: SfnConfig,
    /// The network's weights, or an ensemble's members' in the order `ensemble.json` names them.
    pub members: Vec<std::collections::HashMap<String, candle_core::Tensor>>,
    pub calibration: Option<CausalCalibration>,
    /// The caption cache the model was trained with (train.json), if any.
    pub captions: Option<PathBuf>,
    /// The appearance cue's config and weights, where the calibration joins it.
    pub appearance: Option<(sfn_models::appearance::AppearanceConfig, std::collections::HashMap<String, candle_core::Tensor>)>,
}

/// Loads a checkpoint for export: config, weights (checked against the config by building the model
/// from them), the causal calibration if present.
pub fn load_for_export(dir: &Path) -> Result<ExportSource, TrainerError> {
    // load_model checks every name and shape against the config and names the file on mismatch.
    let loaded = checkpoint::load_model(dir)?;
    // An ensemble's members in order (each checked against the config by load_model), else the one network.
    let members = match crate::ensemble::spec(dir)? {
        Some(spec) => spec.members.iter().map(|f| checkpoint::load_tensors(&dir.join(f))).collect::<Result<Vec<_>, _>>()?,
        None => vec![checkpoint::load_tensors(&dir.join(checkpoint::WEIGHTS))?],
    };
    let cal_path = dir.join(checkpoint::CALIBRATION);
    let calibration: Option<CausalCalibration> = if cal_path.exists() { Some(checkpoint::read_json(&cal_path)?) } else { None };
    let train_path = dir.join(checkpoint::TRAIN);
    let captions = if train_path.exists() { checkpoint::read_json::<crate::train::TrainConfig>(&train_path)?.captions } else { None };
    // The appearance cue travels only where the calibration joins it (loading checks its weights).
    let appearance = match calibration.as_ref().and_then(|c| c.appearance.as_ref()) {
        Some(_) => match crate::appearance::load(dir)? {
            Some((_, m)) => Some((m.config, checkpoint::load_tensors(&dir.join(crate::appearance::APPEARANCE_WEIGHTS))?)),
            None => {
                return Err(TrainerError::Usage(format!("{}: the calibration joins the appearance cue but {} is missing", cal_path.display(), dir.join(crate::appearance::APPEARANCE).display())));
            }
        },
        None => None,
    };
    Ok(ExportSource { cfg: loaded.cfg, members, calibration, captions, appearance })
}

/// `n` normal windows spread evenly over ROOT/training, each 5 frames (prev + 4 inputs), with the caption
/// feature of each input clip when `captions` is given.
pub fn calibration_windows(root: &Path, cfg: &SfnConfig, n: usize, captions: Option<&Path>) -> Result<CalibrationSet, TrainerError> {
    let ds = Dataset::open(root, "training", &frame_format(cfg))?;
    let all = ds.windows();
    if all.is_empty() || n == 0 {
        return Err(TrainerError::Usage(format!("{}: no calibration windows (training clips need 5+ frames; --calib-windows {n})", root.display())));
    }
    let n = n.min(all.len());
    let picked: Vec<(usize, usize)> = (0..n).map(|k| all[k * all.len() / n]).collect();
    let windows = picked.iter().map(|w| ds.try_batch(&[*w])).collect::<Result<Vec<_>, _>>()?;
    // try_batch gives frames t-4..=t of window (c, t): here t is the last input, so its caption is the
    // caption of frame t (clip t-3..t).
    let texts = match captions {
        Some(path) => {
            let cache = CaptionCache::read(path)?;
            let wt = WindowTexts::new(&cache, path, "training", &ds)?;
            Some(picked.iter().map(|&(c, t)| wt.caption_of(c, t).map(<[f32]>::to_vec)).collect::<Result<Vec<_>, _>>()?)
        }
        None => None,
    };
    Ok(CalibrationSet { windows, texts, source: format!("{} (training split, {n} of {} windows, evenly spaced)", root.display(), all.len()) })
}

/// Writes the exports; returns (directory, manifest) for each.
pub fn export(opts: &ExportOptions) -> Result<Vec<(PathBuf, Manifest)>, TrainerError> {
    if opts.reduce_range && !opts.int8 {
        return Err(TrainerError::Usage("--int8-reduce-range applies to the static int8 export: give --int8 too".into()));
    }
    if opts.int8 && opts.calib.is_none() {
        return Err(TrainerError::Usage("--int8 needs --calib ROOT (a dataset whose training split holds normal footage)".into()));
    }
    let ExportSource { cfg, members, calibration, captions, appearance } = load_for_export(&opts.model)?;
    let text = match &captions {
        Some(path) => {
            let cache = CaptionCache::read(path)?;
            Some(sfn_infer::manifest::TextSpec { encoder: cache.encoder.clone(), dim: cache.dim, provider: cache.provider.clone() })
        }
        None => None,
    };
    let input = ExportInput {
        cfg: &cfg,
        members: members.iter().collect(),
        calibration,
        offline: OfflineScoring::default(),
        text,
        appearance: appearance.as_ref().map(|(c, w)| (c, w)),
        reduce_range: opts.reduce_range,
    };
    let mut done = vec![(opts.out.clone(), sfn_export::export(&input, &opts.out, Precision::Fp32, None)?)];
    if opts.int8 {
        let root = opts.calib.as_ref().expect("checked above");
        let set = calibration_windows(root, &cfg, opts.calib_windows, captions.as_deref())?;
        let dir = opts.out.join(INT8_DIR);
        done.push((dir.clone(), sfn_export::export(&input, &dir, Precision::Int8Qdq, Some(&set))?));
    }
    if opts.weight_int8 {
        let dir = opts.out.join(INT8_WEIGHTS_DIR);
        done.push((dir.clone(), sfn_export::export(&input, &dir, Precision::Int8WeightOnly, None)?));
    }
    Ok(done)
}

/// Visual errors of an exported model on every clip of `ds` (targets 4.., as the trainer's eval):
/// each frame encoded once, each window decoded from the cached encodings.
pub fn onnx_errors(model: &mut ExportedModel, ds: &Dataset, pooling: ErrorPooling, batch: usize) -> Result<Vec<Vec<f32>>, TrainerError> {
    Ok(onnx_errors_with_text(model, ds, pooling, batch, None)?.0)
}

/// Per clip, per scored frame.
pub type PerClip = Vec<Vec<f32>>;

/// [`onnx_errors`], plus the semantic error 1 - cos(text_pred, caption of the target clip) per window
/// when `texts` is given (the caption of each input clip is then fed to the decoder).
pub fn onnx_errors_with_text(model: &mut ExportedModel, ds: &Dataset, pooling: ErrorPooling, batch: usize, texts: Option<&WindowTexts>) -> Result<(PerClip, Option<PerClip>), TrainerError> {
    // WindowMaxZ reads the per-region statistics stored with the calibration in model.json.
    let regions = model.manifest.calibration.as_ref().and_then(|c| c.regions.clone());
    if let Some(r) = &regions {
        r.validate()?;
    }
    // The speed cue joins the calibrated pooling's error, as on the device.
    let speed = model.manifest.calibration.as_ref().filter(|c| c.pooling == pooling).and_then(|c| c.speed.clone());
    if let Some(sp) = &speed {
        let img = &model.manifest.image;
        sp.check(img.height, img.width).map_err(|e| TrainerError::Usage(format!("model.json calibration.speed: {e}")))?;
    }
    // So does the appearance cue, through the export's appearance.onnx.
    let appearance = model.manifest.calibration.as_ref().filter(|c| c.pooling == pooling).and_then(|c| c.appearance);
    let visual = scoring::VisualScoring { pooling, regions: regions.as_ref(), speed: speed.as_ref() };
    let m = model.manifest.clone();
    let fl = m.frame_len();
    let batch = batch.max(1);
    let mut out = Vec::with_capacity(ds.clips.len());
    let mut semantic = texts.map(|_| Vec::with_capacity(ds.clips.len()));
    for (ci, clip) in ds.clips.iter().enumerate() {
        let n = clip.frames.len();
        let (mut tokens, mut pe, mut motion) = (Vec::new(), Vec::new(), Vec::new());
        for start in (0..n).step_by(batch) {
            let end = (start + batch).min(n);
            let frames: Vec<f32> = clip.frames[start..end].iter().flatten().copied().collect();
            let prevs: Vec<f32> = (start..end).flat_map(|k| clip.frames[k.saturating_sub(1)].iter().copied()).collect();
            let e = model.encode(&frames, &prevs, end - start)?;
            tokens.extend(e.tokens.data);
            pe.extend(e.patch_embed.data);
            motion.extend(e.motion.data);
        }
        // Values per frame of the cached encodings, from what the encoder returned.
        let (tl, ml) = (tokens.len() / n.max(1), motion.len() / n.max(1));
        let targets: Vec<usize> = (INPUT_FRAMES..n).collect();
        let mut errs = Vec::with_capacity(targets.len());
        let mut sem = Vec::with_capacity(targets.len());
        // The pooled values of this clip's frames so far, for a pooling that must hold over frames.
        let mut history = scoring::PooledHistory::new(pooling.frames());
        for chunk in targets.chunks(batch) {
            let b = chunk.len();
            let (mut ft, mut sk, mut mo, mut last, mut prev) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for &t in chunk {
                ft.extend_from_slice(&tokens[(t - 4) * tl..t * tl]);
                sk.extend_from_slice(&pe[(t - 1) * tl..t * tl]);
                mo.extend_from_slice(&motion[(t - 3) * ml..t * ml]);
                last.extend_from_slice(&clip.frames[t - 1]);
                prev.extend_from_slice(&clip.frames[t - 2]);
            }
            let idx: Vec<(usize, usize)> = chunk.iter().map(|&t| (ci, t)).collect();
            let tb = texts.map(|w| w.batch(&idx)).transpose()?;
            let d = model.decode(&ft, &sk, &mo, tb.as_ref().map(|t| &t.0[..]), &last, Some(&prev), b)?;
            for (j, &t) in chunk.iter().enumerate() {
                let i = &m.image;
                let e = visual.explain_in(&d.frame.data[j * fl..(j + 1) * fl], &clip.frames[t], &clip.frames[t - 1], i.channels, i.height, i.width, &mut history)?.error;
                errs.push(match &appearance {
                    Some(a) => {
                        let boxes = a.boxes.describe(&clip.frames[t - 1], &clip.frames[t], i.channels, i.height, i.width)?;
                        let flat: Vec<f32> = boxes.iter().flat_map(|b| b.values.iter().copied()).collect();
                        a.join(e, scoring::appearance_frame_error(&model.appearance_errors(&flat, boxes.len())?))
                    }
                    None => e,
                });
            }
            if let Some((_, target)) = &tb {
                let dt = m.text_dim;
                for j in 0..b {
                    sem.push(1.0 - sfn_text::cosine(&d.text.data[j * dt..(j + 1) * dt], &target[j * dt..(j + 1) * dt]));
                }
            }
        }
        out.push(errs);
        if let Some(s) = semantic.as_mut() {
            s.push(sem);
        }
    }
    Ok((out, semantic))
}

/// Figures of an exported model on a labelled test split.
#[derive(Serialize, Clone, Debug)]
pub struct OnnxEval {
    pub backend: String,
    pub precision: String,
    pub pooling: String,
    /// The offline scoring as `sfn-train eval` reports it: the paper's per-clip min-max and smoothing.
    pub offline: ScoreSet,
    /// The same on each visual error saturated at the calibration's cap, where model.json has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_saturated: Option<ScoreSet>,
    pub causal: Option<ScoreSet>,
    pub frames: usize,
    pub seconds: f64,
}

/// Scores ROOT/testing with an export on `backend` (offline always; causal where model.json has a
/// calibration). A model trained with captions needs its caption cache (`captions`).
pub fn evaluate_export(dir: &Path, data: &Path, backend: &BackendKind, batch: usize, captions: Option<&Path>) -> Result<OnnxEval, TrainerError> {
    let t0 = Instant::now();
    let mut model = ExportedModel::open(dir, backend)?;
    let m = model.manifest.clone();
    let cfg: SfnConfig = serde_json::from_value(m.config.clone()).map_err(|e| CheckpointError::Mismatch { path: dir.join(sfn_infer::manifest::MANIFEST), reason: format!("config: {e}") })?;
    let ds = Dataset::open(data, "testing", &frame_format(&cfg))?;
    let labels = load_labels(data)?;
    ds.check_labels(&labels)?;
    let pooling = m.calibration.as_ref().map_or(ErrorPooling::FrameMean, |c| c.pooling);
    let texts = match (&m.text, captions) {
        (Some(_), Some(path)) => Some(WindowTexts::new(&CaptionCache::read(path)?, path, "testing", &ds)?),
        (Some(t), None) => {
            return Err(TrainerError::Usage(format!(
                "{}: the model was trained with captions ({}, {}); pass --captions CACHE",
                dir.join(sfn_infer::manifest::MANIFEST).display(),
                t.provider,
                t.encoder
            )))
        }
        (None, _) => None,
    };
    let (errors, semantic) = onnx_errors_with_text(&mut model, &ds, pooling, batch, texts.as_ref())?;
    let cap = m.calibration.as_ref().and_then(|c| c.visual_cap());
    let sem = |c: usize| semantic.as_ref().map(|s| &s[c][..]);
    let clips = || ds.clips.iter().zip(&errors).enumerate().map(|(c, (clip, err))| (clip.name.as_str(), &err[..], sem(c), &labels[&clip.name][INPUT_FRAMES..]));
    let (offline, offline_saturated) = scoring::offline_score_sets(clips(), &m.offline_scoring, cap)?;
    let causal = m.calibration.as_ref().map(|cal| {
        let clips: Vec<(String, Vec<f32>, Vec<u8>)> = clips().map(|(name, err, sem, l)| (name.to_string(), scoring::causal_scores(err, sem, cal), l.to_vec())).collect();
        score_set(&clips)
    });
    Ok(OnnxEval {
        backend: model.backend(),
        precision: m.precision.name().into(),
        pooling: pooling.name(),
        offline,
        offline_saturated,
        causal,
        frames: errors.iter().map(Vec::len).sum(),
        seconds: t0.elapsed().as_secs_f64(),
    })
}
