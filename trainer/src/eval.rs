//! `sfn-train eval`: per-frame visual error on the test clips, scored offline (the paper's per-clip
//! min-max + centred Gaussian) and causally (calibrated
//! z-score + one-sided Gaussian, what a camera can run), frame-level ROC AUC micro and macro, JSON report
//! and plots.

use crate::data::INPUT_FRAMES;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sfn_models::scoring::{self, CausalCalibration, ErrorPooling, OfflineScoring, SpeedCalibration};

use crate::captions::{CaptionCache, WindowTexts};
use crate::checkpoint::{self, CheckpointError};
use crate::data::{load_labels, Dataset};
use crate::folds::{self, Candidate, FoldReport, Folds, HeldOutNormal};
use crate::train::{dataset_errors, frame_format, DatasetErrors};
use crate::TrainerError;

pub use sfn_models::scoring::{score_set, ClipScores, ScoreSet};

mod plots;
pub use plots::{write_error_maps, write_plots};

/// The evaluation report (`--report OUT.json`).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Report {
    pub model: String,
    pub data: String,
    pub frames_scored: usize,
    /// The model's offline scoring at the top level (micro_auc, macro_auc, per_clip): the paper's
    /// per-clip min-max and centred Gaussian of the visual error.
    #[serde(flatten)]
    pub offline: ScoreSet,
    pub causal: ScoreSet,
    /// The same protocol on each visual error saturated at the calibration's `visual_cap()` (the
    /// largest evidence of the normal footage), reported beside the top level where the calibration
    /// has the cap. It was the offline score until the fold protocol showed it winning on one dev fold
    /// and losing on the other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_saturated: Option<ScoreSet>,
    pub offline_scoring: OfflineScoring,
    pub calibration: CausalCalibration,
    /// Raw per-frame visual error per clip (pooled as `calibration.pooling`), aligned with
    /// `per_clip[*].scores`.
    pub visual_error: BTreeMap<String, Vec<f32>>,
    /// The same model scored with each error pooling (AUCs only, visual error only), for comparison.
    pub pooling_comparison: BTreeMap<String, PoolingFigures>,
    /// With captions: the semantic branch's own figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic: Option<SemanticReport>,
    /// With `--folds`: every candidate scoring per fold, the cross-validated choice and the held-out
    /// normal clips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folds: Option<FoldReport>,
    pub seconds: f64,
}

/// What the semantic branch adds (the top-level scores combine both errors with the offline weights).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct SemanticReport {
    /// Caption cache and its provider.
    pub captions: String,
    pub provider: String,
    /// The same model, visual error alone.
    pub visual_only: PoolingFigures,
    /// Semantic error (1 - cos) alone.
    pub semantic_only: PoolingFigures,
    /// Raw per-frame semantic error per clip, aligned with `per_clip[*].scores`.
    pub semantic_error: BTreeMap<String, Vec<f32>>,
}

/// AUCs of one error pooling.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PoolingFigures {
    pub offline_micro_auc: Option<f64>,
    pub offline_macro_auc: Option<f64>,
    pub causal_micro_auc: Option<f64>,
    pub causal_macro_auc: Option<f64>,
}

/// Poolings every evaluation reports side by side.
pub const COMPARED_POOLINGS: [ErrorPooling; 2] = [ErrorPooling::FrameMean, ErrorPooling::WindowMax { window: 8, stride: 4 }];

pub struct EvalOptions {
    pub model: PathBuf,
    pub data: PathBuf,
    pub report: PathBuf,
    /// Where PNGs go; None = `<report dir>/<report stem>_plots`.
    pub plots: Option<PathBuf>,
    pub offline: OfflineScoring,
    /// Override of the calibration's causal sigma.
    pub causal_sigma: Option<f32>,
    pub batch_size: usize,
    /// Caption cache; default: the one the model was trained with (train.json), if any.
    pub captions: Option<PathBuf>,
    /// Score only these test clips (a named selection subset); None: all.
    pub clips: Option<Vec<String>>,
    /// Score the fold clips only, each fold apart, with the baselines and the cross-validated choice.
    pub folds: Option<Folds>,
    /// Alarm settings for the held-out normal clips of `--folds` (the edge example config's).
    pub alarm: (f32, u32, u32),
}

pub fn evaluate(opts: &EvalOptions) -> Result<Report, TrainerError> {
    let t0 = Instant::now();
    opts.offline.validate()?;
    let loaded = checkpoint::load_model(&opts.model)?;
    let cal_path = opts.model.join(checkpoint::CALIBRATION);
    let mut calibration: CausalCalibration = checkpoint::read_json(&cal_path)?;
    if let Some(s) = opts.causal_sigma {
        calibration.sigma = s;
    }
    if let Some(sp) = &calibration.speed {
        let img = &loaded.cfg.image;
        sp.check(img.height, img.width).map_err(|e| TrainerError::Usage(format!("{}: speed: {e}", cal_path.display())))?;
    }
    let mut ds = Dataset::open(&opts.data, "testing", &frame_format(&loaded.cfg))?;
    if let Some(names) = &opts.clips {
        if opts.folds.is_some() {
            return Err(TrainerError::Usage("--clips and --folds: give one (the folds name their clips)".into()));
        }
        ds.retain_clips(names, &opts.data.join("testing/frames")).map_err(|e| TrainerError::Usage(format!("--clips: {e}")))?;
    }
    let labels = load_labels(&opts.data)?;
    if let Some(f) = &opts.folds {
        ds.retain_clips(&f.all_clips(), &opts.data.join("testing/frames")).map_err(|e| TrainerError::Usage(format!("--folds: {e}")))?;
        f.check(&labels)?;
    }
    ds.check_labels(&labels)?;
    // Make sure the report can be written before spending minutes on inference.
    let report_dir = opts.report.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(report_dir).map_err(|source| CheckpointError::Io { path: report_dir.into(), source })?;

    let mut poolings = vec![calibration.pooling];
    poolings.extend(COMPARED_POOLINGS.iter().filter(|p| **p != calibration.pooling));
    // Region z-scoring and the change-weighted error are compared with the plain window max of the same
    // boxes, the error relative to copying's with the change-weighted error it divides too.
    if let ErrorPooling::RelativeWindowMax { window, stride, change_milli, .. } = calibration.pooling {
        poolings.push(ErrorPooling::ChangedWindowMax { window, stride, change_milli });
    }
    if let Some((window, stride)) = calibration.pooling.window() {
        let plain = ErrorPooling::WindowMax { window, stride };
        if !poolings.contains(&plain) {
            poolings.push(plain);
        }
    }
    let tcfg: crate::train::TrainConfig = checkpoint::read_json(&opts.model.join(checkpoint::TRAIN))?;
    let captions = opts.captions.clone().or(tcfg.captions.clone());
    let (texts, cache) = match &captions {
        Some(path) => {
            let cache = CaptionCache::read(path)?;
            (Some(WindowTexts::new(&cache, path, "testing", &ds)?), Some(cache))
        }
        None => (None, None),
    };
    let DatasetErrors { visual: mut all_errors, semantic } = dataset_errors(loaded.network(), &ds, opts.batch_size, &poolings, calibration.regions.as_ref(), texts.as_ref())?;
    // A pooling whose value must hold over frames takes its minimum within each clip, as the camera does.
    for (pooling, errors) in poolings.iter().zip(all_errors.iter_mut()) {
        errors.iter_mut().for_each(|clip| *clip = scoring::persist(clip, pooling.frames()));
    }
    // The speed cue joins the calibrated pooling's error (row 0); the prediction error alone and the
    // speed alone are reported beside it.
    let speed_parts = match &calibration.speed {
        Some(sp) => {
            let s = crate::train::speed_scores(&ds, sp)?;
            let prediction = std::mem::take(&mut all_errors[0]);
            all_errors[0] = fuse_streams(sp, &prediction, &s);
            Some((sp.cue.name(), prediction, s))
        }
        None => None,
    };
    // The appearance cue, where the model directory has one: its per-frame error on these clips.
    let appearance = match crate::appearance::load(&opts.model)? {
        Some((net, m)) => Some((m, crate::appearance::frame_errors(&net, &ds)?)),
        None => None,
    };
    // A calibration that joins the appearance cue scores the joined error (row 0, as the camera
    // does); the fold candidates keep the error without it beside.
    let unjoined = match (&calibration.appearance, &appearance) {
        (Some(j), Some((m, a))) => {
            if m.config.boxes != j.boxes {
                return Err(TrainerError::Usage(format!(
                    "{}: the calibration's appearance boxes differ from {}'s (re-run `sfn-train calibrate --appearance on`)",
                    opts.model.join(checkpoint::CALIBRATION).display(),
                    crate::appearance::APPEARANCE
                )));
            }
            let v = std::mem::take(&mut all_errors[0]);
            all_errors[0] = v.iter().zip(a).map(|(v, a)| v.iter().zip(a).map(|(&v, &a)| j.join(v, a)).collect()).collect();
            Some(v)
        }
        (Some(_), None) => {
            return Err(TrainerError::Usage(format!(
                "{}: the calibration joins the appearance cue but {} has no {}",
                opts.model.join(checkpoint::CALIBRATION).display(),
                opts.model.display(),
                crate::appearance::APPEARANCE
            )))
        }
        _ => None,
    };
    let mut sets = Vec::new();
    // The calibrated pooling is scored offline on the raw error (the model's offline score), saturated
    // at the calibration's cap beside; every row of the comparison table is raw.
    let cap = calibration.visual_cap();
    for (pooling, errors) in poolings.iter().zip(&all_errors) {
        let own = *pooling == calibration.pooling;
        // Causal AUC does not depend on the z-score constants (one affine map for all frames), so
        // poolings the model was not calibrated for are scored with their smoothing alone.
        let cal = if own { calibration.clone() } else { CausalCalibration { visual_mean: 0.0, visual_std: 1.0, pooling: *pooling, ..calibration.clone() } };
        // The semantic error joins the model's own pooling; the comparison rows stay visual-only.
        let sem = |c: usize| semantic.as_ref().filter(|_| own).map(|s| &s[c][..]);
        let clips = || ds.clips.iter().zip(errors).enumerate().map(|(c, (clip, err))| (clip.name.as_str(), &err[..], sem(c), &labels[&clip.name][INPUT_FRAMES..]));
        let offline = scoring::offline_score_sets(clips(), &opts.offline, cap.filter(|_| own))?;
        let causal: Vec<(String, Vec<f32>, Vec<u8>)> = clips().map(|(name, err, sem, l)| (name.to_string(), scoring::causal_scores(err, sem, &cal), l.to_vec())).collect();
        sets.push((offline, score_set(&causal)));
    }
    let mut pooling_comparison: BTreeMap<String, PoolingFigures> = poolings
        .iter()
        .zip(&sets)
        .enumerate()
        .map(|(i, (p, ((o, _), c)))| {
            let joined = if i == 0 && unjoined.is_some() { " + appearance" } else { "" };
            let name = match (&speed_parts, i) {
                (Some((cue, _, _)), 0) => format!("{} + {cue}{joined}", p.name()),
                _ => format!("{}{joined}", p.name()),
            };
            (name, PoolingFigures { offline_micro_auc: o.micro_auc, offline_macro_auc: o.macro_auc, causal_micro_auc: c.micro_auc, causal_macro_auc: c.macro_auc })
        })
        .collect();
    if let Some((cue, prediction, speed)) = &speed_parts {
        let names: Vec<String> = ds.clips.iter().map(|c| c.name.clone()).collect();
        // As for the other rows, causal AUC needs no z-score constants (one affine map per stream).
        let cal = CausalCalibration { visual_mean: 0.0, visual_std: 1.0, semantic_weight: 0.0, ..calibration.clone() };
        for (name, streams) in [(calibration.pooling.name(), prediction), (cue.clone(), speed)] {
            let streams: Vec<(String, Vec<f32>)> = names.iter().cloned().zip(streams.iter().cloned()).collect();
            pooling_comparison.insert(format!("{name} alone"), stream_figures(&labels, &streams, &opts.offline, &cal)?);
        }
    }
    if let Some((_, a)) = &appearance {
        let cal = CausalCalibration { visual_mean: 0.0, visual_std: 1.0, semantic_weight: 0.0, ..calibration.clone() };
        let streams: Vec<(String, Vec<f32>)> = ds.clips.iter().map(|c| c.name.clone()).zip(a.iter().cloned()).collect();
        pooling_comparison.insert("appearance alone".into(), stream_figures(&labels, &streams, &opts.offline, &cal)?);
    }
    // The copying baseline beside the model (unsaturated, like every row of the table).
    let copy = copy_baseline(&opts.data, &tcfg, &calibration, &ds, speed_parts.as_ref().map(|(_, _, s)| s))?;
    {
        let cal = CausalCalibration { visual_mean: 0.0, visual_std: 1.0, semantic_weight: 0.0, ..calibration.clone() };
        for c in copy.iter().flat_map(|c| &c.candidates).filter(|c| c.cap.is_none()) {
            let streams: Vec<(String, Vec<f32>)> = c.errors.clone().into_iter().collect();
            pooling_comparison.insert(c.name.clone(), stream_figures(&labels, &streams, &opts.offline, &cal)?);
        }
    }
    let frames_scored = all_errors[0].iter().map(Vec::len).sum();
    let visual_error = ds.clips.iter().map(|c| c.name.clone()).zip(all_errors[0].iter().cloned()).collect();
    let semantic = match (semantic, cache, &captions) {
        (Some(sem), Some(cache), Some(path)) => {
            let figures = |streams: &[(String, Vec<f32>)], cal: &CausalCalibration| stream_figures(&labels, streams, &opts.offline, cal);
            let names: Vec<String> = ds.clips.iter().map(|c| c.name.clone()).collect();
            let vis: Vec<(String, Vec<f32>)> = names.iter().cloned().zip(all_errors[0].iter().cloned()).collect();
            let sems: Vec<(String, Vec<f32>)> = names.iter().cloned().zip(sem.iter().cloned()).collect();
            let vis_cal = CausalCalibration { semantic_weight: 0.0, ..calibration.clone() };
            let sem_cal = CausalCalibration { visual_mean: calibration.semantic_mean, visual_std: calibration.semantic_std, semantic_weight: 0.0, ..calibration.clone() };
            Some(SemanticReport {
                captions: path.display().to_string(),
                provider: cache.provider.clone(),
                visual_only: figures(&vis, &vis_cal)?,
                semantic_only: figures(&sems, &sem_cal)?,
                semantic_error: sems.into_iter().collect(),
            })
        }
        _ => None,
    };
    let folds = match &opts.folds {
        Some(f) => Some(fold_report(
            opts,
            f,
            loaded.network(),
            &tcfg,
            &calibration,
            &ds,
            &labels,
            &all_errors[0],
            speed_parts.as_ref().map(|(_, p, s)| (p, s)),
            copy.as_ref(),
            appearance.as_ref(),
            unjoined.as_deref(),
        )?),
        None => None,
    };
    let ((offline, offline_saturated), causal) = sets.swap_remove(0);
    let report = Report {
        model: opts.model.display().to_string(),
        data: opts.data.display().to_string(),
        frames_scored,
        offline,
        causal,
        offline_saturated,
        offline_scoring: opts.offline.clone(),
        calibration,
        visual_error,
        pooling_comparison,
        semantic,
        folds,
        seconds: t0.elapsed().as_secs_f64(),
    };
    let plots = opts.plots.clone().unwrap_or_else(|| {
        let stem = opts.report.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "report".into());
        report_dir.join(format!("{stem}_plots"))
    });
    write_plots(&report, &plots)?;
    write_error_maps(loaded.network(), &ds, texts.as_ref(), &report, &plots)?;
    checkpoint::write_json(&opts.report, &report)?;
    Ok(report)
}

/// Box values of copying (I_hat_t = I_{t-1}) for frames 4.. of every clip, of the map `pooling` pools
/// (for [`ErrorPooling::ChangedWindowMax`] copying's error weighted by the frame's change; for
/// [`ErrorPooling::RelativeWindowMax`] that relative to itself): `[clip][frame][box]`.
fn copy_box_values(ds: &Dataset, pooling: ErrorPooling) -> Result<Vec<Vec<Vec<f32>>>, TrainerError> {
    let f = &ds.format;
    crate::baseline::each_scored_frame(ds, |c, t| {
        let (last, next) = (&c.frames[t - 1], &c.frames[t]);
        Ok(pooling.box_values(&pooling.map(last, next, last, f.channels, f.height, f.width)?, f.height, f.width)?)
    })
}

/// Each clip's prediction errors `e` fused frame by frame with its speed cue `s` ([`SpeedCalibration::fuse`]).
fn fuse_streams(sp: &SpeedCalibration, e: &[Vec<f32>], s: &[Vec<f32>]) -> Vec<Vec<f32>> {
    e.iter().zip(s).map(|(a, b)| a.iter().zip(b).map(|(&x, &y)| sp.fuse(x, y)).collect()).collect()
}

/// Per-clip streams keyed by the names of `ds`'s clips (same order).
fn named(ds: &Dataset, v: &[Vec<f32>]) -> BTreeMap<String, Vec<f32>> {
    ds.clips.iter().map(|c| c.name.clone()).zip(v.iter().cloned()).collect()
}

/// The copying baseline (I_hat_{t+1} = I_t), pooled as the model's calibration pools (region
/// statistics fitted on the model's own training clips: the training split less `holdout`), alone and,
/// with a speed cue, fused with it the same way. None without a training split under `data` or for a pooling without boxes.
fn copy_baseline(data: &Path, tcfg: &crate::train::TrainConfig, cal: &CausalCalibration, ds: &Dataset, speed_test: Option<&Vec<Vec<f32>>>) -> Result<Option<CopyBaseline>, TrainerError> {
    let Some((window, stride)) = cal.pooling.window() else { return Ok(None) };
    if !data.join("training/frames").is_dir() {
        return Ok(None);
    }
    let stream = |v: &[Vec<f32>]| named(ds, v);
    let (own, fmt) = (cal.pooling.name(), &ds.format);
    let mut train = Dataset::open(data, "training", fmt)?;
    // Held-out clips leave the fit where they are in this data; footage other than the model's own
    // (another scene's training split) is used whole rather than refused.
    let holdout: Vec<&String> = tcfg.holdout.iter().filter(|h| train.clips.iter().any(|c| &c.name == *h)).collect();
    train.remove_clips(&holdout, &data.join("training/frames"))?;
    let train_means = copy_box_values(&train, cal.pooling)?;
    let regions = match cal.pooling {
        ErrorPooling::WindowMaxZ { .. } => Some(scoring::RegionStats::fit(window, stride, scoring::box_grid(fmt.height, fmt.width, window, stride), train_means.iter().flatten().map(Vec::as_slice))?),
        _ => None,
    };
    // Each clip's stream pooled as the model's, held over frames as the model's is.
    let pool = |m: &Vec<Vec<Vec<f32>>>| -> Result<Vec<Vec<f32>>, TrainerError> {
        m.iter()
            .map(|c| {
                let pooled = c.iter().map(|b| cal.pooling.pool_boxes(b, fmt.height, fmt.width, regions.as_ref())).collect::<Result<Vec<f32>, _>>()?;
                Ok(scoring::persist(&pooled, cal.pooling.frames()))
            })
            .collect()
    };
    let copy = pool(&copy_box_values(ds, cal.pooling)?)?;
    let mut cands = vec![Candidate::new(format!("copy: {own}"), stream(&copy))];
    let mut copy_speed = None;
    if let (Some(sp), Some(sp_test)) = (&cal.speed, speed_test) {
        let cue = sp.cue.name();
        // A fusion of frame z-scores standardises copying's error by its own statistics on that footage.
        let (train_copy, train_speed) = (pool(&train_means)?, crate::train::speed_scores(&train, sp)?);
        let flat = |v: &[Vec<f32>]| -> Vec<f32> { v.iter().flatten().copied().collect() };
        let sp = &sp.clone().fit_frame_z(&flat(&train_copy), &flat(&train_speed))?;
        let fused = fuse_streams(sp, &copy, sp_test);
        cands.push(Candidate::new(format!("copy: {own} + {cue}"), stream(&fused)));
        copy_speed = Some(sp.clone());
    }
    Ok(Some(CopyBaseline { errors: copy, candidates: cands, speed: copy_speed }))
}

/// Copying's error pooled as the model's (per clip per frame) and the candidates made of it.
struct CopyBaseline {
    errors: Vec<Vec<f32>>,
    candidates: Vec<Candidate>,
    /// The model's speed calibration with copying's own frame statistics (for a fusion of z-scores).
    speed: Option<SpeedCalibration>,
}

/// With a speed cue: the network's own error and the speed cue's, per clip per frame.
type SpeedParts<'a> = (&'a Vec<Vec<f32>>, &'a Vec<Vec<f32>>);

/// The `--folds` part of the report: candidates (the model's scoring first, the network alone, the speed cue alone, copying with the model's pooling, alone and fused with the speed cue
/// the same way) on each fold, the choice both ways, and the held-out normal clips of `train.json`.
#[allow(clippy::too_many_arguments)]
fn fold_report(
    opts: &EvalOptions,
    f: &Folds,
    model: &dyn crate::ensemble::Network,
    tcfg: &crate::train::TrainConfig,
    cal: &CausalCalibration,
    ds: &Dataset,
    labels: &BTreeMap<String, Vec<u8>>,
    visual: &[Vec<f32>],
    speed: Option<SpeedParts>,
    copy: Option<&CopyBaseline>,
    appearance: Option<&(crate::appearance::AppearanceModel, Vec<Vec<f32>>)>,
    unjoined: Option<&[Vec<f32>]>,
) -> Result<FoldReport, TrainerError> {
    let stream = |v: &[Vec<f32>]| named(ds, v);
    let own = cal.pooling.name();
    let cue = cal.speed.as_ref().map(|s| format!(" + {}", s.cue.name())).unwrap_or_default();
    let mut cands = Vec::new();
    match unjoined {
        // The model's scoring joins the appearance cue; the same without it is a candidate.
        Some(u) => {
            cands.push(Candidate::new(format!("model: {own}{cue} + appearance"), stream(visual)));
            cands.push(Candidate::new(format!("model without appearance: {own}{cue}"), stream(u)));
        }
        None => cands.push(Candidate::new(format!("model: {own}{cue}"), stream(visual))),
    }
    // No saturated candidates: saturating the offline error at the calibration's cap did not win on both
    // held-out folds (fold A +2.9, fold B -3.0 points offline for the committed model), so it is no choice.
    if let Some((pred, sp)) = speed {
        cands.push(Candidate::new(format!("network alone: {own}"), stream(pred)));
        cands.push(Candidate::new("speed cue alone", stream(sp)));
    }
    if let Some(c) = copy {
        cands.extend(c.candidates.iter().cloned());
    }
    // The fusion is a choice too: lambda halved and doubled around the calibrated one and, for a fusion
    // of frame z-scores, the other such fusion (plain z-mean or its positive parts) at all three
    // weights; for the network and for copying alike (unsaturated).
    if let (Some(sp), Some((pred, s))) = (&cal.speed, speed) {
        use scoring::speed::SpeedFusion::{ZMean, ZMeanPositive};
        let mut fusions = vec![sp.cue.fusion];
        fusions.extend(match sp.cue.fusion {
            ZMean => Some(ZMeanPositive),
            ZMeanPositive => Some(ZMean),
            _ => None,
        });
        for fusion in fusions {
            for factor in [1.0f32, 0.5, 2.0] {
                if fusion == sp.cue.fusion && factor == 1.0 {
                    continue; // the model's own scoring, listed first
                }
                let mut cue = sp.cue;
                cue.weight *= factor;
                cue.fusion = fusion;
                let fused = SpeedCalibration { cue, ..sp.clone() };
                cands.push(Candidate::new(format!("model: {own} + {}", cue.name()), stream(&fuse_streams(&fused, pred, s))));
                if let Some((c, csp)) = copy.and_then(|c| c.speed.as_ref().map(|csp| (c, csp))) {
                    let fused = SpeedCalibration { cue, ..csp.clone() };
                    cands.push(Candidate::new(format!("copy: {own} + {}", cue.name()), stream(&fuse_streams(&fused, &c.errors, s))));
                }
            }
        }
    }
    // The appearance cue alone, and joined to the model's visual error and to the network's error alone
    // as one more z-scored cue of weight 1 (the mean of the cues' z-scores).
    if let Some((m, a)) = appearance {
        cands.push(Candidate::new("appearance alone", stream(a)));
        let join = |v: &[Vec<f32>], cues: f32, z: &dyn Fn(f32) -> f32| -> Vec<Vec<f32>> { v.iter().zip(a).map(|(v, a)| v.iter().zip(a).map(|(&v, &a)| m.z.join(z(v), cues, a)).collect()).collect() };
        let zmean = cal.speed.as_ref().and_then(|sp| sp.frame_z.filter(|_| sp.cue.fusion.uses_frame_z()).map(|z| (sp.cue.weight, z)));
        match zmean {
            _ if unjoined.is_some() => {} // the model's own scoring, listed first
            // The fused error already is the mean of 1 + lambda z-scores.
            Some((lambda, _)) => cands.push(Candidate::new(format!("model + appearance: {own}{cue} + appearance"), stream(&join(visual, 1.0 + lambda, &|v| v)))),
            None => cands.push(Candidate::new(format!("model + appearance: {own}{cue} + appearance"), stream(&join(visual, 1.0, &|v| (v - cal.visual_mean) / cal.visual_std)))),
        }
        if let (Some((_, z)), Some((pred, _))) = (zmean, speed) {
            let [m0, s0] = z.prediction;
            cands.push(Candidate::new(format!("network + appearance: {own} + appearance"), stream(&join(pred, 1.0, &|v| (v - m0) / s0))));
        }
    }
    // The causal smoothing is a choice too: every candidate again with two thirds of the calibrated
    // sigma (less lag at an event's start and end, more noise).
    let shorter = (cal.sigma * 2.0 / 3.0 * 100.0).round() / 100.0;
    let again: Vec<Candidate> = cands.iter().map(|c| Candidate { name: format!("{} (causal sigma {shorter})", c.name), sigma: Some(shorter), ..c.clone() }).collect();
    cands.extend(again);
    let mut report = folds::cross_validate(f, &cands, labels, &opts.offline, cal)?;
    if !tcfg.holdout.is_empty() {
        report.heldout_normal = Some(heldout_normal(opts, model, tcfg, cal, &ds.format)?);
    }
    Ok(report)
}

/// Squared-error sums of the model's prediction and of copying over frames 4.. of every clip of `ds`
/// ([`folds::frame_sums`], added up), and the number of frames.
pub fn prediction_sums(model: &dyn crate::ensemble::Network, ds: &Dataset, batch: usize) -> Result<([f64; 5], usize), TrainerError> {
    let mut sums = [0f64; 5];
    let mut frames = 0usize;
    for (c, clip) in ds.clips.iter().enumerate() {
        let idx: Vec<(usize, usize)> = (crate::data::INPUT_FRAMES..clip.frames.len()).map(|t| (c, t)).collect();
        for chunk in idx.chunks(batch.max(1)) {
            let x = crate::train::batch_tensor(ds, chunk)?;
            let pred = model.predict(&x.narrow(1, 0, INPUT_FRAMES)?, None)?.frame.flatten(1, 3)?.to_vec2::<f32>()?;
            for (p, &(_, t)) in pred.iter().zip(chunk) {
                let s = folds::frame_sums(p, &clip.frames[t], &clip.frames[t - 1], ds.format.channels);
                for (a, b) in sums.iter_mut().zip(s) {
                    *a += b;
                }
                frames += 1;
            }
        }
    }
    Ok((sums, frames))
}

/// The model on the training clips it was not trained or calibrated on.
fn heldout_normal(
    opts: &EvalOptions,
    model: &dyn crate::ensemble::Network,
    tcfg: &crate::train::TrainConfig,
    cal: &CausalCalibration,
    fmt: &crate::data::FrameFormat,
) -> Result<HeldOutNormal, TrainerError> {
    let mut ds = Dataset::open(&opts.data, "training", fmt)?;
    ds.retain_clips(&tcfg.holdout, &opts.data.join("training/frames"))?;
    let (sums, frames) = prediction_sums(model, &ds, opts.batch_size)?;
    // The model's visual error, fused with its speed cue, scored causally as the camera does.
    let mut errors = dataset_errors(model, &ds, opts.batch_size, &[cal.pooling], cal.regions.as_ref(), None)?.visual.swap_remove(0);
    if let Some(sp) = &cal.speed {
        errors = fuse_streams(sp, &errors, &crate::train::speed_scores(&ds, sp)?);
    }
    let (threshold, raise_after, clear_after) = opts.alarm;
    let mut causal_max = f32::NEG_INFINITY;
    let mut alarms_per_clip = BTreeMap::new();
    for (clip, e) in ds.clips.iter().zip(&errors) {
        let s = scoring::causal_scores(e, None, cal);
        causal_max = s.iter().copied().filter(|v| v.is_finite()).fold(causal_max, f32::max);
        alarms_per_clip.insert(clip.name.clone(), folds::alarm_count(&s, threshold, raise_after, clear_after));
    }
    let px = (frames * fmt.height * fmt.width).max(1) as f64;
    let moving = sums[4].max(1.0);
    Ok(HeldOutNormal {
        clips: tcfg.holdout.clone(),
        frames,
        model_mse: sums[0] / px,
        copy_mse: sums[1] / px,
        moving_threshold: folds::MOVING_THRESHOLD,
        moving_share: sums[4] / px,
        model_moving_mse: sums[2] / moving,
        copy_moving_mse: sums[3] / moving,
        mse_ratio: sums[0] / sums[1].max(f64::MIN_POSITIVE),
        moving_ratio: sums[2] / sums[3].max(f64::MIN_POSITIVE),
        causal_max,
        alarm_threshold: threshold,
        raise_after,
        clear_after,
        alarms: alarms_per_clip.values().sum(),
        alarms_per_clip,
    })
}

/// AUCs of one error stream per clip (no semantic stream), scored offline and with `cal`.
fn stream_figures(labels: &BTreeMap<String, Vec<u8>>, streams: &[(String, Vec<f32>)], offline: &OfflineScoring, cal: &CausalCalibration) -> Result<PoolingFigures, TrainerError> {
    let (mut off, mut cau) = (Vec::new(), Vec::new());
    for (name, e) in streams {
        let l = labels[name][INPUT_FRAMES..].to_vec();
        off.push((name.clone(), scoring::try_offline_scores(e, None, offline)?, l.clone()));
        cau.push((name.clone(), scoring::causal_scores(e, None, cal), l));
    }
    let (o, c) = (score_set(&off), score_set(&cau));
    Ok(PoolingFigures { offline_micro_auc: o.micro_auc, offline_macro_auc: o.macro_auc, causal_micro_auc: c.micro_auc, causal_macro_auc: c.macro_auc })
}
