//! Anomaly scores from per-frame prediction errors, and the ROC AUC used to evaluate them.
//!
//! Pure Rust (no candle), `f32` in and out with `f64` accumulation, so the same code runs in the
//! trainer's evaluation and on the edge device.
//!
//! Two ways to turn errors into scores (see `shared/method-notes.md`, "Scoring"):
//!
//! * **Offline** ([`offline_scores`]), as in the reference code: per-clip min-max normalisation of each
//!   error stream, weighted sum, centred Gaussian smoothing over time. Both the normalisation and the
//!   smoothing look at the whole clip, future included, so a live camera cannot run it.
//! * **Causal** ([`CausalScorer`], [`causal_scores`]): errors are z-scored with statistics calibrated on
//!   normal (training) footage ([`CausalCalibration::fit`]), combined with the same weights, and smoothed
//!   with a one-sided (past-only) half-Gaussian. Each output depends only on the frames pushed so far.
//!
//! The visual error of a frame is its prediction error pooled by [`ErrorPooling`], optionally fused with
//! the [`speed`] cue (block-matching displacement, region z-scored) when the calibration carries one.
//!
//! Weighted sums are normalised by the sum of the weights, `(w_v * v + w_s * s) / (w_v + w_s)`; for the
//! published weights (which sum to 1) this is the plain weighted sum. When there is no semantic stream the
//! score is the visual term alone (its weight renormalised to 1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod speed;
pub use speed::{speed_map, FrameZ, SpeedCalibration, SpeedCue, SpeedFusion};

/// Errors of the fallible scoring functions.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum ScoringError {
    /// No samples were given where some are needed.
    #[error("no {what} samples given")]
    Empty {
        /// Which stream ("visual" or "semantic").
        what: &'static str,
    },
    /// A NaN or infinite value where only finite ones are accepted.
    #[error("{what} value at index {index} is not finite ({value})")]
    NonFinite {
        /// Which stream ("visual" or "semantic").
        what: &'static str,
        /// Position of the first offending value.
        index: usize,
        /// The value.
        value: f32,
    },
    /// The semantic stream's length differs from the visual one's.
    #[error("visual errors have {visual} samples but semantic errors have {semantic}")]
    LengthMismatch {
        /// Number of visual samples.
        visual: usize,
        /// Number of semantic samples.
        semantic: usize,
    },
    /// A parameter (sigma or a weight) outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    BadParameter {
        /// The parameter's name.
        name: &'static str,
        /// Its value.
        value: f32,
        /// What is required of it.
        reason: &'static str,
    },
    /// Region statistics missing, or not fitting the pooling or the frame size.
    #[error("region statistics: {0}")]
    Regions(String),
    /// A frame buffer whose size does not match the frame geometry.
    #[error("{field}: {reason}")]
    BadShape {
        /// Which buffer or size.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

// ------------------------------------------------------------------------------------------------
// Per-clip score sets (reports of trainer eval and host replay)

/// Scores and labels of one clip, one entry per scored frame (frame 4 onwards), in order.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ClipScores {
    /// None when the clip holds only one class.
    pub auc: Option<f64>,
    pub scores: Vec<f32>,
    pub labels: Vec<u8>,
}

/// One scoring of the whole test split.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ScoreSet {
    /// AUC over all scored frames of all clips concatenated.
    pub micro_auc: Option<f64>,
    /// Mean of the per-clip AUCs over clips holding both classes.
    pub macro_auc: Option<f64>,
    pub per_clip: BTreeMap<String, ClipScores>,
}

impl ScoreSet {
    /// Every clip's scores and labels concatenated (clip order), as the micro AUC sees them.
    pub fn concatenated(&self) -> (Vec<f32>, Vec<u8>) {
        let mut scores = Vec::new();
        let mut labels = Vec::new();
        for c in self.per_clip.values() {
            scores.extend_from_slice(&c.scores);
            labels.extend_from_slice(&c.labels);
        }
        (scores, labels)
    }
}

/// Builds a score set from per-clip scores and labels.
pub fn score_set(clips: &[(String, Vec<f32>, Vec<u8>)]) -> ScoreSet {
    let mut per_clip = BTreeMap::new();
    let (mut all_s, mut all_l) = (Vec::new(), Vec::new());
    let mut aucs = Vec::new();
    for (name, s, l) in clips {
        let auc = roc_auc(s, l);
        aucs.extend(auc);
        all_s.extend_from_slice(s);
        all_l.extend_from_slice(l);
        per_clip.insert(name.clone(), ClipScores { auc, scores: s.clone(), labels: l.clone() });
    }
    let macro_auc = if aucs.is_empty() { None } else { Some(aucs.iter().sum::<f64>() / aucs.len() as f64) };
    ScoreSet { micro_auc: roc_auc(&all_s, &all_l), macro_auc, per_clip }
}

// ------------------------------------------------------------------------------------------------
// ROC AUC
// ------------------------------------------------------------------------------------------------

/// Points of the ROC curve, `(false positive rate, true positive rate)`, from `(0, 0)` to `(1, 1)`,
/// one point per distinct score (ties form a single step, i.e. a diagonal segment), thresholds
/// decreasing. Same validity rules as [`roc_auc`]; `None` where that returns `None`.
pub fn roc_curve(scores: &[f32], labels: &[u8]) -> Option<Vec<(f64, f64)>> {
    let (pos, neg, steps) = roc_steps(scores, labels)?;
    let mut pts = Vec::with_capacity(steps.len() + 1);
    pts.push((0.0, 0.0));
    pts.extend(
        steps
            .iter()
            .map(|&(fp, tp)| (fp as f64 / neg as f64, tp as f64 / pos as f64)),
    );
    Some(pts)
}

/// cos(a, b) = a . b / max(|a| |b|, 1e-30), accumulated in f64 (the semantic error is 1 - cos of the
/// predicted and the observed caption embedding).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    (dot / (na * nb).max(1e-30)) as f32
}

/// Exact area under the ROC curve of `scores` (higher = more anomalous) against `labels`
/// (1 = positive/abnormal, 0 = negative/normal).
///
/// Tied scores are handled as scikit-learn's `roc_auc_score` does: the ROC curve has one point per
/// distinct score and the area is the trapezoid rule over it, so a positive tied with a negative counts
/// one half (the Mann-Whitney U statistic with average ranks). The area is accumulated in integers and
/// divided once, so the result is exact to `f64` rounding.
///
/// Returns `None` when only one class is present (the AUC is undefined), and also when the slices are
/// empty or of different lengths, a label is neither 0 nor 1, or a score is NaN. Infinite scores are
/// fine (they are ordered).
pub fn roc_auc(scores: &[f32], labels: &[u8]) -> Option<f64> {
    let (pos, neg, steps) = roc_steps(scores, labels)?;
    // Twice the trapezoid area in units of (1 negative) x (1 positive).
    let mut area2: u128 = 0;
    let (mut fp0, mut tp0) = (0u64, 0u64);
    for &(fp, tp) in &steps {
        area2 += u128::from(fp - fp0) * u128::from(tp + tp0);
        fp0 = fp;
        tp0 = tp;
    }
    Some(area2 as f64 / (2.0 * pos as f64 * neg as f64))
}

/// (positives, negatives, cumulative (fp, tp) after each group of tied scores, scores decreasing).
type RocSteps = (u64, u64, Vec<(u64, u64)>);

/// Validates the input and computes its [`RocSteps`].
fn roc_steps(scores: &[f32], labels: &[u8]) -> Option<RocSteps> {
    if scores.is_empty() || scores.len() != labels.len() {
        return None;
    }
    if scores.iter().any(|s| s.is_nan()) || labels.iter().any(|&l| l > 1) {
        return None;
    }
    let pos = labels.iter().filter(|&&l| l == 1).count() as u64;
    let neg = labels.len() as u64 - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut steps = Vec::new();
    let (mut fp, mut tp) = (0u64, 0u64);
    let mut i = 0;
    while i < order.len() {
        let s = scores[order[i]];
        // `==` (not total order) so that -0.0 and 0.0 tie, as in scikit-learn.
        while i < order.len() && scores[order[i]] == s {
            if labels[order[i]] == 1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        steps.push((fp, tp));
    }
    Some((pos, neg, steps))
}

// ------------------------------------------------------------------------------------------------
// Offline scoring
// ------------------------------------------------------------------------------------------------

/// Min-max normalisation to `[0, 1]`.
///
/// The range is taken over the finite values. A constant input (or one with no finite value) maps its
/// finite values to 0. Non-finite values stay non-finite in spirit: NaN stays NaN, +inf becomes 1 and
/// -inf becomes 0 (unless the range is degenerate, then they become 0 as well).
pub fn min_max(x: &[f32]) -> Vec<f32> {
    let mut lo = f32::INFINITY;
    let mut hi = f32::NEG_INFINITY;
    for &v in x.iter().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let range = f64::from(hi) - f64::from(lo);
    if range <= 0.0 || !range.is_finite() {
        return x
            .iter()
            .map(|v| if v.is_nan() { f32::NAN } else { 0.0 })
            .collect();
    }
    x.iter()
        .map(|&v| {
            if v.is_nan() {
                f32::NAN
            } else if v == f32::INFINITY {
                1.0
            } else if v == f32::NEG_INFINITY {
                0.0
            } else {
                ((f64::from(v) - f64::from(lo)) / range) as f32
            }
        })
        .collect()
}

/// Centred Gaussian smoothing over time.
///
/// Kernel `exp(-k^2 / (2 sigma^2))` for `|k| <= ceil(4 sigma)` (truncated at 4 sigma, and never wider
/// than the signal). **Edges:** instead of padding, each output is the weighted mean over the samples
/// that exist, i.e. the kernel is renormalised over the valid samples in its window; samples that are
/// NaN are treated the same way (skipped, the kernel renormalised over the rest), and an output whose
/// whole window is NaN is NaN. Hence a constant signal stays exactly constant, edges included.
/// `sigma <= 0` (or NaN) returns the input unchanged.
pub fn gaussian_smooth(x: &[f32], sigma: f32) -> Vec<f32> {
    if sigma.is_nan() || sigma <= 0.0 || x.len() < 2 {
        return x.to_vec();
    }
    let n = x.len();
    let radius = if sigma.is_finite() {
        ((4.0 * f64::from(sigma)).ceil() as usize).min(n - 1)
    } else {
        n - 1
    };
    let kernel = half_gaussian(sigma, radius + 1);
    let mut out = Vec::with_capacity(n);
    for t in 0..n {
        let lo = t.saturating_sub(radius);
        let hi = (t + radius).min(n - 1);
        let (mut acc, mut wsum) = (0.0f64, 0.0f64);
        for (j, &v) in x.iter().enumerate().take(hi + 1).skip(lo) {
            if v.is_nan() {
                continue;
            }
            let w = kernel[t.abs_diff(j)];
            acc += w * f64::from(v);
            wsum += w;
        }
        out.push(if wsum > 0.0 {
            (acc / wsum) as f32
        } else {
            f32::NAN
        });
    }
    out
}

/// `exp(-k^2 / (2 sigma^2))` for `k = 0..len`; an infinite sigma gives all ones.
fn half_gaussian(sigma: f32, len: usize) -> Vec<f64> {
    let s = f64::from(sigma);
    (0..len)
        .map(|k| {
            let k = k as f64;
            if k == 0.0 {
                1.0
            } else if s.is_finite() {
                (-k * k / (2.0 * s * s)).exp()
            } else {
                1.0
            }
        })
        .collect()
}

/// Parameters of the offline (reference-code) scoring.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OfflineScoring {
    /// Standard deviation, in frames, of the centred Gaussian smoothing; `<= 0` disables it.
    pub sigma: f32,
    /// Weight of the (min-max normalised) visual error.
    pub visual_weight: f32,
    /// Weight of the (min-max normalised) semantic error.
    pub semantic_weight: f32,
}

impl OfflineScoring {
    /// UCSD Ped2: sigma 5, weights (0.8, 0.2).
    pub const PED2: Self = Self {
        sigma: 5.0,
        visual_weight: 0.8,
        semantic_weight: 0.2,
    };
    /// CUHK Avenue: sigma 4, weights (0.9, 0.1).
    pub const AVENUE: Self = Self {
        sigma: 4.0,
        visual_weight: 0.9,
        semantic_weight: 0.1,
    };
    /// ShanghaiTech: sigma 13, weights (0.2, 0.8).
    pub const SHANGHAITECH: Self = Self {
        sigma: 13.0,
        visual_weight: 0.2,
        semantic_weight: 0.8,
    };

    /// Checks the weights (finite, non-negative, positive sum) and sigma (not NaN).
    pub fn validate(&self) -> Result<(), ScoringError> {
        check_weights(self.visual_weight, self.semantic_weight)?;
        if self.sigma.is_nan() {
            return Err(ScoringError::BadParameter {
                name: "sigma",
                value: self.sigma,
                reason: "must be a number",
            });
        }
        Ok(())
    }
}

impl Default for OfflineScoring {
    /// The Ped2 values ([`OfflineScoring::PED2`]).
    fn default() -> Self {
        Self::PED2
    }
}

/// Offline scores of one clip: per-clip min-max of each error stream, weighted sum
/// `(w_v * mm(visual) + w_s * mm(semantic)) / (w_v + w_s)` (with no semantic stream: `mm(visual)`),
/// then centred Gaussian smoothing ([`gaussian_smooth`]). Call it once per clip, never on several clips
/// concatenated.
///
/// Never fails: when [`try_offline_scores`] would return an error (semantic length differs from the
/// visual one, or invalid weights) the semantic stream is ignored and the score is the smoothed
/// `mm(visual)`. Use [`try_offline_scores`] to be told.
pub fn offline_scores(visual: &[f32], semantic: Option<&[f32]>, cfg: &OfflineScoring) -> Vec<f32> {
    try_offline_scores(visual, semantic, cfg)
        .unwrap_or_else(|_| gaussian_smooth(&min_max(visual), cfg.sigma))
}

/// [`offline_scores`] that reports a semantic stream of the wrong length or invalid parameters.
pub fn try_offline_scores(
    visual: &[f32],
    semantic: Option<&[f32]>,
    cfg: &OfflineScoring,
) -> Result<Vec<f32>, ScoringError> {
    cfg.validate()?;
    let v = min_max(visual);
    let combined = match semantic {
        None => v,
        Some(s) => {
            if s.len() != visual.len() {
                return Err(ScoringError::LengthMismatch {
                    visual: visual.len(),
                    semantic: s.len(),
                });
            }
            let s = min_max(s);
            let (wv, ws) = (f64::from(cfg.visual_weight), f64::from(cfg.semantic_weight));
            let wsum = wv + ws;
            v.iter()
                .zip(&s)
                .map(|(&a, &b)| ((wv * f64::from(a) + ws * f64::from(b)) / wsum) as f32)
                .collect()
        }
    };
    Ok(gaussian_smooth(&combined, cfg.sigma))
}

fn check_weights(visual_weight: f32, semantic_weight: f32) -> Result<(), ScoringError> {
    for (name, w) in [
        ("visual_weight", visual_weight),
        ("semantic_weight", semantic_weight),
    ] {
        if !(w.is_finite() && w >= 0.0) {
            return Err(ScoringError::BadParameter {
                name,
                value: w,
                reason: "must be finite and >= 0",
            });
        }
    }
    if visual_weight + semantic_weight <= 0.0 {
        return Err(ScoringError::BadParameter {
            name: "visual_weight + semantic_weight",
            value: visual_weight + semantic_weight,
            reason: "must be > 0",
        });
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Causal scoring
// ------------------------------------------------------------------------------------------------

/// Largest sigma accepted by [`CausalCalibration::fit`] (frames); [`CausalScorer::new`] clamps to it.
pub const MAX_CAUSAL_SIGMA: f32 = 1000.0;
/// Relative floor on the calibrated standard deviations: `std >= STD_FLOOR_REL * max(|mean|, 1e-30)`,
/// and never below [`STD_FLOOR_ABS`], so z-scores stay finite on constant calibration data.
pub const STD_FLOOR_REL: f32 = 1e-6;
/// Absolute floor on the calibrated standard deviations.
pub const STD_FLOOR_ABS: f32 = 1e-12;
/// z-scores are clamped to `[-Z_CLAMP, Z_CLAMP]` so that a huge (finite) input cannot overflow the
/// smoothing state.
pub const Z_CLAMP: f64 = 1e6;

/// What a camera needs to score frames causally: error statistics of normal footage plus the
/// weights and the smoothing width. Stored next to the model.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CausalCalibration {
    /// Mean visual error on normal footage.
    pub visual_mean: f32,
    /// Standard deviation (population, floored) of the visual error on normal footage.
    pub visual_std: f32,
    /// Mean semantic error on normal footage (0 when calibrated without a semantic stream).
    pub semantic_mean: f32,
    /// Standard deviation of the semantic error (1 when calibrated without a semantic stream).
    pub semantic_std: f32,
    /// Standard deviation, in frames, of the one-sided Gaussian smoothing; `<= 0` disables it.
    pub sigma: f32,
    /// Weight of the visual z-score.
    pub visual_weight: f32,
    /// Weight of the semantic z-score (0 when calibrated without a semantic stream).
    pub semantic_weight: f32,
    /// How the per-pixel error map was pooled into the visual error these statistics describe.
    #[serde(default)]
    pub pooling: ErrorPooling,
    /// Per-region statistics of normal footage, for [`ErrorPooling::WindowMaxZ`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<RegionStats>,
    /// The speed cue folded into the visual error ([`SpeedCalibration::fuse`]); the mean and std above
    /// then describe the fused error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<SpeedCalibration>,
    /// Largest z-score of the visual error on the normal footage the calibration was fitted on: the
    /// most evidence normal footage gave. [`saturate`] clips at it for the saturated offline scoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visual_z_max: Option<f32>,
}

/// How a frame's squared-error map becomes one visual error.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ErrorPooling {
    /// e = mean over all pixels of (I_hat - I)^2 (the paper's frame MSE).
    #[default]
    FrameMean,
    /// e = max over window x window boxes (stride `stride`) of the box's mean squared error: a small
    /// object's error is not averaged away by the rest of the frame.
    WindowMax { window: usize, stride: usize },
    /// e = max_w (m_w - mu_w) / (sd_w + mean_w' sd_w'): the box means m_w of `WindowMax`, each
    /// z-scored against the statistics of the same box on normal footage ([`RegionStats`]), so a
    /// region where normal motion is large (near the camera) does not outshout a small distant
    /// object. The mean standard deviation added to each box's keeps boxes that never move on
    /// normal footage from turning noise into alarms.
    WindowMaxZ { window: usize, stride: usize },
}

impl std::str::FromStr for ErrorPooling {
    type Err = String;

    /// The inverse of [`ErrorPooling::name`]: `frame_mean`, `window_max_<W>s<S>`, `window_max_z_<W>s<S>`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?}: expected frame_mean, window_max_<W>s<S> or window_max_z_<W>s<S> (e.g. window_max_z_16s8)");
        if s == "frame_mean" {
            return Ok(ErrorPooling::FrameMean);
        }
        let (z, rest) = match (s.strip_prefix("window_max_z_"), s.strip_prefix("window_max_")) {
            (Some(r), _) => (true, r),
            (None, Some(r)) => (false, r),
            _ => return Err(bad()),
        };
        let (w, st) = rest.split_once('s').ok_or_else(bad)?;
        let (window, stride): (usize, usize) = (w.parse().map_err(|_| bad())?, st.parse().map_err(|_| bad())?);
        if window == 0 || stride == 0 {
            return Err(bad());
        }
        Ok(if z { ErrorPooling::WindowMaxZ { window, stride } } else { ErrorPooling::WindowMax { window, stride } })
    }
}

/// Per-box statistics of normal footage for [`ErrorPooling::WindowMaxZ`], stored with the
/// causal calibration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RegionStats {
    pub window: usize,
    pub stride: usize,
    /// Box grid (rows, columns) for the frame size the statistics were fitted on.
    pub grid: [usize; 2],
    /// Mean box error per box, row-major.
    pub mean: Vec<f32>,
    /// Population standard deviation per box, row-major.
    pub std: Vec<f32>,
    /// Added to every box's std: the mean of `std`.
    pub floor: f32,
}

/// Checks two CHW frames of `channels * height * width` values each and returns the plane size
/// `height * width`. Errors name the frame that is wrong, or the sizes when there are no pixels.
pub(crate) fn check_frame_pair(frames: [(&'static str, &[f32]); 2], channels: usize, height: usize, width: usize) -> Result<usize, ScoringError> {
    let plane = height * width;
    if channels == 0 || plane == 0 {
        return Err(ScoringError::BadShape { field: "channels/height/width", reason: format!("{channels}x{height}x{width} has no pixels") });
    }
    for (field, f) in frames {
        if f.len() != channels * plane {
            return Err(ScoringError::BadShape { field, reason: format!("{} values, expected {channels}x{height}x{width} = {}", f.len(), channels * plane) });
        }
    }
    Ok(plane)
}

/// Squared-error map averaged over channels: `height * width` values. Errors name the field.
pub fn error_map(pred: &[f32], target: &[f32], channels: usize, height: usize, width: usize) -> Result<Vec<f32>, ScoringError> {
    let plane = check_frame_pair([("pred", pred), ("target", target)], channels, height, width)?;
    let mut map = vec![0f32; plane];
    for c in 0..channels {
        for (m, (p, t)) in map.iter_mut().zip(pred[c * plane..(c + 1) * plane].iter().zip(&target[c * plane..(c + 1) * plane])) {
            *m += (p - t) * (p - t);
        }
    }
    let inv_c = 1.0 / channels as f32;
    map.iter_mut().for_each(|m| *m *= inv_c);
    Ok(map)
}

/// Box grid of `window` x `window` boxes at `stride` over a `height` x `width` map: boxes of
/// `min(window, side)` pixels, stride `max(stride, 1)`, no padding (as candle's avg_pool2d).
pub fn box_grid(height: usize, width: usize, window: usize, stride: usize) -> [usize; 2] {
    let (kh, kw) = (window.clamp(1, height.max(1)), window.clamp(1, width.max(1)));
    let s = stride.max(1);
    [(height.saturating_sub(kh)) / s + 1, (width.saturating_sub(kw)) / s + 1]
}

/// Mean of each box of [`box_grid`] over `map` (`height * width` values), row-major.
pub fn window_means(map: &[f32], height: usize, width: usize, window: usize, stride: usize) -> Vec<f32> {
    let (kh, kw) = (window.clamp(1, height.max(1)), window.clamp(1, width.max(1)));
    let s = stride.max(1);
    let [gh, gw] = box_grid(height, width, window, stride);
    let mut out = Vec::with_capacity(gh * gw);
    for by in 0..gh {
        for bx in 0..gw {
            let (y0, x0) = (by * s, bx * s);
            let mut sum = 0f64;
            for y in y0..y0 + kh {
                sum += map[y * width + x0..y * width + x0 + kw].iter().map(|&v| f64::from(v)).sum::<f64>();
            }
            out.push((sum / (kh * kw) as f64) as f32);
        }
    }
    out
}

impl RegionStats {
    /// Fits per-box mean and standard deviation on the box means of normal frames (each of
    /// `grid[0] * grid[1]` values). Errors: no frames, a frame of another size, a non-finite value.
    pub fn fit<'a>(window: usize, stride: usize, grid: [usize; 2], frames: impl IntoIterator<Item = &'a [f32]>) -> Result<RegionStats, ScoringError> {
        let n_box = grid[0] * grid[1];
        let (mut sum, mut sq) = (vec![0f64; n_box], vec![0f64; n_box]);
        let mut n = 0usize;
        for (i, f) in frames.into_iter().enumerate() {
            if f.len() != n_box {
                return Err(ScoringError::BadShape { field: "region box means", reason: format!("frame {i} has {} boxes, expected {n_box}", f.len()) });
            }
            if let Some(j) = f.iter().position(|v| !v.is_finite()) {
                return Err(ScoringError::NonFinite { what: "region box means", index: i * n_box + j, value: f[j] });
            }
            for (k, &v) in f.iter().enumerate() {
                sum[k] += f64::from(v);
                sq[k] += f64::from(v) * f64::from(v);
            }
            n += 1;
        }
        if n == 0 {
            return Err(ScoringError::Empty { what: "region box means" });
        }
        let mean: Vec<f32> = sum.iter().map(|s| (s / n as f64) as f32).collect();
        let std: Vec<f32> = sum.iter().zip(&sq).map(|(s, q)| {
            let m = s / n as f64;
            ((q / n as f64 - m * m).max(0.0)).sqrt() as f32
        }).collect();
        let floor = (std.iter().map(|&v| f64::from(v)).sum::<f64>() / n_box as f64) as f32;
        Ok(RegionStats { window, stride, grid, mean, std, floor: floor.max(f32::MIN_POSITIVE) })
    }

    /// z_w = (m_w - mu_w) / (sd_w + floor) for each box mean of one frame.
    pub fn box_scores(&self, means: &[f32]) -> Result<Vec<f32>, ScoringError> {
        if means.len() != self.mean.len() {
            return Err(ScoringError::BadShape { field: "region box means", reason: format!("{} boxes, the statistics have {}", means.len(), self.mean.len()) });
        }
        Ok(means.iter().zip(self.mean.iter().zip(&self.std)).map(|(&m, (&mu, &sd))| (m - mu) / (sd + self.floor)).collect())
    }

    /// max_w z_w over the box means of one frame (see [`RegionStats::box_scores`]).
    pub fn pool(&self, means: &[f32]) -> Result<f32, ScoringError> {
        Ok(self.box_scores(means)?.into_iter().fold(f32::NEG_INFINITY, f32::max))
    }

    /// Finite statistics and a positive floor (checked once, where statistics are loaded).
    pub fn validate(&self) -> Result<(), ScoringError> {
        if !(self.floor.is_finite() && self.floor > 0.0) || self.mean.iter().chain(&self.std).any(|v| !v.is_finite()) || self.std.iter().any(|&v| v < 0.0) {
            return Err(ScoringError::Regions("non-finite statistics, a negative std or a floor that is not positive".into()));
        }
        Ok(())
    }
}

impl ErrorPooling {
    /// The visual error of one predicted frame: the squared-error map averaged over channels, pooled.
    ///
    /// `pred` and `target` are CHW `f32` of `channels * height * width` values. Matches the trainer's
    /// candle computation (`losses::pooled_error(losses::error_map(..))`): boxes of
    /// `min(window, side)` pixels at stride `max(stride, 1)`, no padding. Errors name the field that is
    /// wrong (lengths, zero sizes). [`ErrorPooling::WindowMaxZ`] needs its statistics: use
    /// [`ErrorPooling::pool_with`].
    pub fn pool(&self, pred: &[f32], target: &[f32], channels: usize, height: usize, width: usize) -> Result<f32, ScoringError> {
        self.pool_with(pred, target, channels, height, width, None)
    }

    /// [`ErrorPooling::pool`] with the region statistics [`ErrorPooling::WindowMaxZ`] needs.
    pub fn pool_with(&self, pred: &[f32], target: &[f32], channels: usize, height: usize, width: usize, regions: Option<&RegionStats>) -> Result<f32, ScoringError> {
        let map = error_map(pred, target, channels, height, width)?;
        self.pool_map(&map, height, width, regions)
    }

    /// Pools an error map of `height * width` values.
    pub fn pool_map(&self, map: &[f32], height: usize, width: usize, regions: Option<&RegionStats>) -> Result<f32, ScoringError> {
        if map.len() != height * width || map.is_empty() {
            return Err(ScoringError::BadShape { field: "error map", reason: format!("{} values for {height}x{width}", map.len()) });
        }
        match self.window() {
            None => Ok((map.iter().map(|&v| f64::from(v)).sum::<f64>() / map.len() as f64) as f32),
            Some((window, stride)) => self.pool_boxes(&window_means(map, height, width, window, stride), height, width, regions),
        }
    }

    /// Pools the box means of one `height` x `width` map at this pooling's window ([`window_means`]):
    /// their max, or for `WindowMaxZ` the max of their region z. For callers that compute the box
    /// means once and pool them several ways; `FrameMean` pools no boxes and is an error here.
    pub fn pool_boxes(&self, means: &[f32], height: usize, width: usize, regions: Option<&RegionStats>) -> Result<f32, ScoringError> {
        match *self {
            ErrorPooling::FrameMean => Err(ScoringError::BadShape { field: "box means", reason: "frame_mean pools the whole map, not boxes".into() }),
            ErrorPooling::WindowMax { .. } => Ok(means.iter().copied().fold(f32::NEG_INFINITY, f32::max)),
            ErrorPooling::WindowMaxZ { .. } => self.check_regions(regions, height, width)?.pool(means),
        }
    }

    /// The statistics for `WindowMaxZ` on a `height` x `width` map, checked against this pooling's
    /// geometry (cheap: it runs for every frame; [`RegionStats::validate`] checks the values once).
    pub fn check_regions<'a>(&self, regions: Option<&'a RegionStats>, height: usize, width: usize) -> Result<&'a RegionStats, ScoringError> {
        let ErrorPooling::WindowMaxZ { window, stride } = *self else {
            return Err(ScoringError::Regions(format!("pooling {} uses no region statistics", self.name())));
        };
        let r = regions.ok_or_else(|| {
            ScoringError::Regions(format!("pooling {} needs the per-region statistics of normal footage (sfn-train calibrate)", self.name()))
        })?;
        let grid = box_grid(height, width, window, stride);
        if (r.window, r.stride, r.grid) != (window, stride, grid) || r.mean.len() != grid[0] * grid[1] || r.std.len() != r.mean.len() {
            return Err(ScoringError::Regions(format!(
                "statistics for window {} stride {} grid {:?} ({} boxes) do not fit pooling {} on {height}x{width} (grid {grid:?})",
                r.window,
                r.stride,
                r.grid,
                r.mean.len(),
                self.name()
            )));
        }
        Ok(r)
    }

    /// Short name for tables.
    pub fn name(&self) -> String {
        match self {
            ErrorPooling::FrameMean => "frame_mean".into(),
            ErrorPooling::WindowMax { window, stride } => format!("window_max_{window}s{stride}"),
            ErrorPooling::WindowMaxZ { window, stride } => format!("window_max_z_{window}s{stride}"),
        }
    }

    /// Box size and stride of the window poolings.
    pub fn window(&self) -> Option<(usize, usize)> {
        match *self {
            ErrorPooling::FrameMean => None,
            ErrorPooling::WindowMax { window, stride } | ErrorPooling::WindowMaxZ { window, stride } => Some((window, stride)),
        }
    }
}

impl CausalCalibration {
    /// Calibrates on the errors of normal (training) footage: mean and population standard deviation
    /// of each stream (computed in f64; the std is floored, see [`STD_FLOOR_REL`]).
    ///
    /// Without a semantic stream, `semantic_mean = 0`, `semantic_std = 1`, `semantic_weight = 0`.
    /// Errors: empty input, a non-finite error value, a semantic stream of different length, sigma
    /// NaN or above [`MAX_CAUSAL_SIGMA`], weights negative / non-finite / summing to 0.
    pub fn fit(
        visual: &[f32],
        semantic: Option<&[f32]>,
        sigma: f32,
        visual_weight: f32,
        semantic_weight: f32,
    ) -> Result<Self, ScoringError> {
        if sigma.is_nan() || sigma > MAX_CAUSAL_SIGMA {
            return Err(ScoringError::BadParameter {
                name: "sigma",
                value: sigma,
                reason: "must be a number <= MAX_CAUSAL_SIGMA (1000)",
            });
        }
        let (visual_mean, visual_std) = mean_std(visual, "visual")?;
        let (semantic_mean, semantic_std, semantic_weight) = match semantic {
            Some(s) => {
                if s.len() != visual.len() {
                    return Err(ScoringError::LengthMismatch {
                        visual: visual.len(),
                        semantic: s.len(),
                    });
                }
                let (m, sd) = mean_std(s, "semantic")?;
                (m, sd, semantic_weight)
            }
            None => (0.0, 1.0, 0.0),
        };
        check_weights(visual_weight, semantic_weight)?;
        Ok(Self {
            visual_mean,
            visual_std,
            semantic_mean,
            semantic_std,
            sigma,
            visual_weight,
            semantic_weight,
            pooling: ErrorPooling::FrameMean,
            regions: None,
            speed: None,
            visual_z_max: Some(visual.iter().map(|&v| (v - visual_mean) / visual_std).fold(f32::NEG_INFINITY, f32::max)),
        })
    }
}

/// `min(x, cap)` for every value: evidence beyond `cap` counts as `cap` (NaN stays NaN).
pub fn saturate(x: &[f32], cap: f32) -> Vec<f32> {
    x.iter().map(|&v| if v > cap { cap } else { v }).collect()
}

/// The offline score sets ([`try_offline_scores`] per clip) of labelled clips given as `(name, visual,
/// semantic, labels)`: the model's set on the raw visual error and, with a `cap`, beside it the set
/// that scores each visual error [`saturate`]d at the cap (None without one). The saturation was the
/// offline score until the fold protocol: it won on one dev fold and lost on the other, so it is
/// reported, not used.
pub fn offline_score_sets<'a>(
    clips: impl IntoIterator<Item = (&'a str, &'a [f32], Option<&'a [f32]>, &'a [u8])>,
    cfg: &OfflineScoring,
    cap: Option<f32>,
) -> Result<(ScoreSet, Option<ScoreSet>), ScoringError> {
    let (mut saturated, mut raw) = (Vec::new(), Vec::new());
    for (name, visual, semantic, labels) in clips {
        if let Some(cap) = cap {
            saturated.push((name.to_string(), try_offline_scores(&saturate(visual, cap), semantic, cfg)?, labels.to_vec()));
        }
        raw.push((name.to_string(), try_offline_scores(visual, semantic, cfg)?, labels.to_vec()));
    }
    Ok((score_set(&raw), cap.map(|_| score_set(&saturated))))
}

impl CausalCalibration {
    /// The visual error at [`CausalCalibration::visual_z_max`]: `mean + z_max * std`, the cap of the
    /// saturated offline scoring (None for a calibration fitted before it was recorded).
    pub fn visual_cap(&self) -> Option<f32> {
        self.visual_z_max.filter(|z| z.is_finite()).map(|z| self.visual_mean + z * self.visual_std)
    }

    /// How this calibration turns a prediction into its visual error ([`VisualScoring`]).
    pub fn visual_scoring(&self) -> VisualScoring<'_> {
        VisualScoring { pooling: self.pooling, regions: self.regions.as_ref(), speed: self.speed.as_ref() }
    }

    /// The visual error of one frame as this calibration defines it ([`VisualScoring::error`]).
    pub fn visual_error(&self, pred: &[f32], target: &[f32], last: &[f32], channels: usize, height: usize, width: usize) -> Result<f32, ScoringError> {
        self.visual_scoring().error(pred, target, last, channels, height, width)
    }
}

/// What makes a frame's visual error: a pooling of the squared-error map (with its region statistics
/// for `WindowMaxZ`) and, optionally, the speed cue fused into it.
#[derive(Clone, Copy, Debug)]
pub struct VisualScoring<'a> {
    pub pooling: ErrorPooling,
    pub regions: Option<&'a RegionStats>,
    pub speed: Option<&'a SpeedCalibration>,
}

impl VisualScoring<'_> {
    /// The squared-error map of `pred` against `target` pooled with `pooling` (and `regions`), fused
    /// with the speed cue between `last` (frame t, the last input) and `target` (frame t+1) when there
    /// is one. Frames are CHW.
    pub fn error(&self, pred: &[f32], target: &[f32], last: &[f32], channels: usize, height: usize, width: usize) -> Result<f32, ScoringError> {
        let e = self.pooling.pool_with(pred, target, channels, height, width, self.regions)?;
        match self.speed {
            None => Ok(e),
            Some(sp) => Ok(sp.fuse(e, sp.score(last, target, channels, height, width)?)),
        }
    }
}

pub(crate) fn mean_std(x: &[f32], what: &'static str) -> Result<(f32, f32), ScoringError> {
    if x.is_empty() {
        return Err(ScoringError::Empty { what });
    }
    if let Some((index, &value)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(ScoringError::NonFinite { what, index, value });
    }
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    let floor = (f64::from(STD_FLOOR_REL) * mean.abs()).max(f64::from(STD_FLOOR_ABS));
    Ok((mean as f32, var.sqrt().max(floor) as f32))
}

/// Frame-by-frame causal scorer. All memory is allocated in [`CausalScorer::new`]; [`push`] does not
/// allocate.
///
/// Each pushed frame becomes `z = (w_v * z_v + w_s * z_s) / (w_v + w_s)` with `z_v = (visual - mean_v) /
/// std_v` (likewise `z_s`); without a semantic value (or with `semantic_weight == 0`) `z = z_v`. The
/// output is the weighted mean of the last `L = ceil(3 sigma) + 1` z-scores with weights
/// `exp(-k^2 / (2 sigma^2))` for lag `k`, renormalised over the frames seen since the last [`reset`]
/// (so the first frame's output is its own z). It never looks at future frames.
///
/// **Non-finite inputs** (NaN, ±inf) are replaced by the last finite value of the same stream since the
/// last reset (or, before any, by the calibration mean, i.e. z = 0) and counted in
/// [`non_finite_count`]; they never enter the state, so they cannot poison later outputs. z-scores are
/// clamped to ±[`Z_CLAMP`]. A calibration with invalid numbers (it is plain data) is made safe: a
/// non-finite or non-positive std becomes 1, a non-finite mean 0, bad weights (1, 0), sigma is clamped
/// to [`MAX_CAUSAL_SIGMA`].
///
/// [`push`]: CausalScorer::push
/// [`reset`]: CausalScorer::reset
/// [`non_finite_count`]: CausalScorer::non_finite_count
#[derive(Clone, Debug)]
pub struct CausalScorer {
    visual_mean: f64,
    visual_std: f64,
    semantic_mean: f64,
    semantic_std: f64,
    visual_weight: f64,
    semantic_weight: f64,
    /// `kernel[k]` = weight of the z-score `k` frames back.
    kernel: Vec<f64>,
    /// Ring of past z-scores; `ring[head]` is the most recent.
    ring: Vec<f64>,
    head: usize,
    /// Frames pushed since the last reset (saturating).
    seen: usize,
    last_visual: Option<f32>,
    last_semantic: Option<f32>,
    non_finite: u64,
}

impl CausalScorer {
    /// A scorer for `cal` (see the type's docs for how invalid numbers in `cal` are handled).
    pub fn new(cal: &CausalCalibration) -> Self {
        let sane_mean = |m: f32| if m.is_finite() { f64::from(m) } else { 0.0 };
        let sane_std = |s: f32| {
            if s.is_finite() && s > 0.0 {
                f64::from(s)
            } else {
                1.0
            }
        };
        let (mut wv, mut ws) = (cal.visual_weight, cal.semantic_weight);
        if check_weights(wv, ws).is_err() {
            (wv, ws) = (1.0, 0.0);
        }
        let sigma = if cal.sigma > 0.0 {
            cal.sigma.min(MAX_CAUSAL_SIGMA)
        } else {
            0.0
        };
        let len = if sigma > 0.0 {
            (3.0 * f64::from(sigma)).ceil() as usize + 1
        } else {
            1
        };
        Self {
            visual_mean: sane_mean(cal.visual_mean),
            visual_std: sane_std(cal.visual_std),
            semantic_mean: sane_mean(cal.semantic_mean),
            semantic_std: sane_std(cal.semantic_std),
            visual_weight: f64::from(wv),
            semantic_weight: f64::from(ws),
            kernel: half_gaussian(sigma, len),
            ring: vec![0.0; len],
            head: 0,
            seen: 0,
            last_visual: None,
            last_semantic: None,
            non_finite: 0,
        }
    }

    /// Length of the ring of past z-scores, `ceil(3 sigma) + 1` (1 when smoothing is off).
    pub fn window_len(&self) -> usize {
        self.ring.len()
    }

    /// Non-finite inputs replaced since construction (not cleared by [`CausalScorer::reset`]).
    pub fn non_finite_count(&self) -> u64 {
        self.non_finite
    }

    /// Forgets the past (call at a clip / stream boundary). Keeps the non-finite counter.
    pub fn reset(&mut self) {
        self.ring.iter_mut().for_each(|z| *z = 0.0);
        self.head = 0;
        self.seen = 0;
        self.last_visual = None;
        self.last_semantic = None;
    }

    /// Scores one frame from its visual error and, if the model has one, its semantic error.
    pub fn push(&mut self, visual: f32, semantic: Option<f32>) -> f32 {
        let v = self.sanitize_visual(visual);
        let zv = clamp_z((v - self.visual_mean) / self.visual_std);
        let z = match semantic {
            Some(s) if self.semantic_weight > 0.0 => {
                let s = self.sanitize_semantic(s);
                let zs = clamp_z((s - self.semantic_mean) / self.semantic_std);
                (self.visual_weight * zv + self.semantic_weight * zs)
                    / (self.visual_weight + self.semantic_weight)
            }
            _ => zv,
        };

        let len = self.ring.len();
        self.head = (self.head + 1) % len;
        self.ring[self.head] = z;
        self.seen = self.seen.saturating_add(1);

        let avail = self.seen.min(len);
        let (mut acc, mut wsum) = (0.0f64, 0.0f64);
        for (k, &w) in self.kernel.iter().enumerate().take(avail) {
            acc += w * self.ring[(self.head + len - k) % len];
            wsum += w;
        }
        (acc / wsum) as f32
    }

    fn sanitize_visual(&mut self, x: f32) -> f64 {
        if x.is_finite() {
            self.last_visual = Some(x);
            f64::from(x)
        } else {
            self.non_finite += 1;
            self.last_visual.map_or(self.visual_mean, f64::from)
        }
    }

    fn sanitize_semantic(&mut self, x: f32) -> f64 {
        if x.is_finite() {
            self.last_semantic = Some(x);
            f64::from(x)
        } else {
            self.non_finite += 1;
            self.last_semantic.map_or(self.semantic_mean, f64::from)
        }
    }
}

fn clamp_z(z: f64) -> f64 {
    z.clamp(-Z_CLAMP, Z_CLAMP)
}

/// Causal scores of one clip (a fresh [`CausalScorer`] fed frame by frame). Frame `i` uses
/// `semantic[i]` when the semantic slice has one, the visual error alone otherwise.
pub fn causal_scores(
    visual: &[f32],
    semantic: Option<&[f32]>,
    cal: &CausalCalibration,
) -> Vec<f32> {
    let mut scorer = CausalScorer::new(cal);
    visual
        .iter()
        .enumerate()
        .map(|(i, &v)| scorer.push(v, semantic.and_then(|s| s.get(i).copied())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_by_hand() {
        // 2 channels, 2x3 frame; errors per pixel after averaging channels: [[1, 0, 4], [0, 0, 1]].
        let target = vec![0f32; 12];
        let pred = vec![1.0, 0.0, 2.0, 0.0, 0.0, 1.0, /* c1 */ 1.0, 0.0, -2.0, 0.0, 0.0, -1.0];
        let mean = ErrorPooling::FrameMean.pool(&pred, &target, 2, 2, 3).unwrap();
        assert!((mean - 1.0).abs() < 1e-6, "{mean}");
        // 2x2 boxes at stride 1: [1,0,0,0] -> 0.25, [0,4,0,1] -> 1.25.
        let wm = ErrorPooling::WindowMax { window: 2, stride: 1 }.pool(&pred, &target, 2, 2, 3).unwrap();
        assert!((wm - 1.25).abs() < 1e-6, "{wm}");
        // A window larger than the frame is clamped to the frame: the frame mean.
        let big = ErrorPooling::WindowMax { window: 8, stride: 4 }.pool(&pred, &target, 2, 2, 3).unwrap();
        assert!((big - 1.0).abs() < 1e-6, "{big}");
        // The same from box means computed once: the map is [[1, 0, 4], [0, 0, 1]].
        let map = [1.0, 0.0, 4.0, 0.0, 0.0, 1.0];
        let boxes = window_means(&map, 2, 3, 2, 1);
        assert_eq!(ErrorPooling::WindowMax { window: 2, stride: 1 }.pool_boxes(&boxes, 2, 3, None).unwrap(), wm);
        let e = ErrorPooling::FrameMean.pool_boxes(&boxes, 2, 3, None).unwrap_err().to_string();
        assert!(e.contains("box means") && e.contains("frame_mean"), "{e}");
        let e = ErrorPooling::WindowMaxZ { window: 2, stride: 1 }.pool_boxes(&boxes, 2, 3, None).unwrap_err().to_string();
        assert!(e.contains("needs the per-region statistics"), "{e}");
        let err = ErrorPooling::FrameMean.pool(&pred[..11], &target, 2, 2, 3).unwrap_err().to_string();
        assert!(err.contains("pred") && err.contains("11"), "{err}");
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// AUC by brute force over all (positive, negative) pairs, ties = 1/2.
    fn auc_pairs(scores: &[f32], labels: &[u8]) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for (i, &si) in scores.iter().enumerate() {
            for (j, &sj) in scores.iter().enumerate() {
                if labels[i] == 1 && labels[j] == 0 {
                    den += 1.0;
                    if si > sj {
                        num += 1.0;
                    } else if si == sj {
                        num += 0.5;
                    }
                }
            }
        }
        num / den
    }

    #[test]
    fn auc_hand_worked() {
        assert_eq!(roc_auc(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1]), Some(0.75));
        assert_eq!(roc_auc(&[0.1, 0.2, 0.3, 0.4], &[0, 0, 1, 1]), Some(1.0));
        assert_eq!(roc_auc(&[0.4, 0.3, 0.2, 0.1], &[0, 0, 1, 1]), Some(0.0));
        // Ties between classes count one half.
        assert_eq!(roc_auc(&[0.1, 0.5, 0.5, 0.9], &[0, 0, 1, 1]), Some(0.875));
        assert_eq!(roc_auc(&[0.5; 4], &[0, 1, 0, 1]), Some(0.5));
        // Ties within a class do not matter.
        assert_eq!(roc_auc(&[0.2, 0.2, 0.7, 0.7], &[0, 0, 1, 1]), Some(1.0));
        // -0.0 ties with 0.0.
        assert_eq!(roc_auc(&[-0.0, 0.0], &[0, 1]), Some(0.5));
        // Infinite scores are ordered.
        assert_eq!(
            roc_auc(&[f32::NEG_INFINITY, f32::INFINITY, 0.0], &[0, 1, 0]),
            Some(1.0)
        );
    }

    #[test]
    fn auc_undefined_cases() {
        assert_eq!(roc_auc(&[0.1, 0.2], &[1, 1]), None);
        assert_eq!(roc_auc(&[0.1, 0.2], &[0, 0]), None);
        assert_eq!(roc_auc(&[], &[]), None);
        assert_eq!(roc_auc(&[0.1, 0.2], &[0]), None);
        assert_eq!(roc_auc(&[0.1, f32::NAN], &[0, 1]), None);
        assert_eq!(roc_auc(&[0.1, 0.2], &[0, 2]), None);
    }

    #[test]
    fn auc_matches_pair_counting_with_many_ties() {
        // Deterministic pseudo-random data on a coarse grid (lots of ties).
        let mut state = 0x1234_5678_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u32
        };
        for n in [2usize, 7, 50, 333] {
            let scores: Vec<f32> = (0..n).map(|_| (next() % 10) as f32 / 10.0).collect();
            let mut labels: Vec<u8> = (0..n).map(|_| (next() % 3 == 0) as u8).collect();
            labels[0] = 0;
            labels[1] = 1;
            let got = roc_auc(&scores, &labels).unwrap();
            assert!(close(got, auc_pairs(&scores, &labels), 1e-12), "n={n}");
        }
    }

    #[test]
    fn roc_curve_points() {
        let pts = roc_curve(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1]).unwrap();
        assert_eq!(
            pts,
            vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
        // Ties make one diagonal step.
        let pts = roc_curve(&[0.5, 0.5], &[0, 1]).unwrap();
        assert_eq!(pts, vec![(0.0, 0.0), (1.0, 1.0)]);
        assert!(roc_curve(&[0.5, 0.5], &[1, 1]).is_none());
    }

    #[test]
    fn min_max_basic() {
        assert_eq!(min_max(&[2.0, 4.0, 3.0]), vec![0.0, 1.0, 0.5]);
        assert_eq!(min_max(&[3.0, 3.0]), vec![0.0, 0.0]);
        assert_eq!(min_max(&[]), Vec::<f32>::new());
        let y = min_max(&[1.0, f32::NAN, 3.0, f32::INFINITY]);
        assert_eq!(y[0], 0.0);
        assert!(y[1].is_nan());
        assert_eq!(y[2], 1.0);
        assert_eq!(y[3], 1.0);
    }

    #[test]
    fn gaussian_identity_and_constants() {
        let x = [1.0, 5.0, -2.0, 0.5];
        assert_eq!(gaussian_smooth(&x, 0.0), x.to_vec());
        assert_eq!(gaussian_smooth(&x, -1.0), x.to_vec());
        assert_eq!(gaussian_smooth(&x, f32::NAN), x.to_vec());
        for sigma in [0.3, 1.0, 5.0, 50.0, f32::INFINITY] {
            for v in gaussian_smooth(&[2.5; 37], sigma) {
                assert!(close(f64::from(v), 2.5, 1e-6), "sigma {sigma}: {v}");
            }
        }
    }

    #[test]
    fn gaussian_preserves_sum_of_interior_impulse_and_is_symmetric() {
        let mut x = vec![0.0f32; 101];
        x[50] = 1.0;
        let y = gaussian_smooth(&x, 5.0);
        let sum: f64 = y.iter().map(|&v| f64::from(v)).sum();
        assert!(close(sum, 1.0, 1e-6), "sum {sum}");
        for k in 1..=20 {
            assert!(close(f64::from(y[50 - k]), f64::from(y[50 + k]), 1e-9));
            assert!(y[50 + k] < y[50 + k - 1]);
        }
        // Truncated at 4 sigma = 20 samples.
        assert!(y[70] > 0.0);
        assert_eq!(y[71], 0.0);
        // Peak value = 1 / sum of the kernel.
        let ksum: f64 = (-20..=20)
            .map(|k: i32| (-(f64::from(k * k)) / 50.0).exp())
            .sum();
        assert!(close(f64::from(y[50]), 1.0 / ksum, 1e-6));
        // Preserves the mean of a linear ramp in the interior (odd kernel moments vanish).
        let ramp: Vec<f32> = (0..101).map(|i| i as f32).collect();
        let r = gaussian_smooth(&ramp, 3.0);
        assert!(close(f64::from(r[50]), 50.0, 1e-4));
    }

    #[test]
    fn gaussian_edge_renormalisation_and_nan() {
        // At the first sample of a step the window holds only the samples that exist.
        let x = [1.0f32, 0.0, 0.0];
        let y = gaussian_smooth(&x, 1.0);
        let w1 = (-0.5f64).exp();
        let w2 = (-2.0f64).exp();
        assert!(close(f64::from(y[0]), 1.0 / (1.0 + w1 + w2), 1e-6));
        // NaN samples are skipped.
        let y = gaussian_smooth(&[1.0, f32::NAN, 1.0], 1.0);
        assert!(y.iter().all(|&v| close(f64::from(v), 1.0, 1e-6)));
        let y = gaussian_smooth(&[f32::NAN, f32::NAN], 1.0);
        assert!(y.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn offline_scores_combination() {
        let visual = [1.0, 3.0, 2.0, 5.0];
        let semantic = [0.0, 0.0, 1.0, 0.5];
        let cfg = OfflineScoring {
            sigma: 0.0,
            visual_weight: 0.8,
            semantic_weight: 0.2,
        };
        let got = offline_scores(&visual, Some(&semantic), &cfg);
        let want = [0.0, 0.8 * 0.5, 0.8 * 0.25 + 0.2, 0.8 + 0.2 * 0.5];
        for (g, w) in got.iter().zip(want) {
            assert!(close(f64::from(*g), w, 1e-6), "{got:?}");
        }
        // Weights are normalised by their sum.
        let cfg2 = OfflineScoring {
            sigma: 0.0,
            visual_weight: 4.0,
            semantic_weight: 1.0,
        };
        let got2 = offline_scores(&visual, Some(&semantic), &cfg2);
        for (a, b) in got.iter().zip(&got2) {
            assert!(close(f64::from(*a), f64::from(*b), 1e-6));
        }
        // Without semantic: min-max of the visual error alone.
        assert_eq!(
            offline_scores(&visual, None, &cfg),
            vec![0.0, 0.5, 0.25, 1.0]
        );
        // Smoothing applied afterwards.
        let cfg5 = OfflineScoring::default();
        assert_eq!(cfg5.sigma, 5.0);
        assert_eq!(
            offline_scores(&visual, None, &cfg5),
            gaussian_smooth(&min_max(&visual), 5.0)
        );
        // Errors are reported by the try_ variant; the plain one falls back to visual alone.
        assert_eq!(
            try_offline_scores(&visual, Some(&semantic[..3]), &cfg),
            Err(ScoringError::LengthMismatch {
                visual: 4,
                semantic: 3
            })
        );
        assert_eq!(
            offline_scores(&visual, Some(&semantic[..3]), &cfg),
            vec![0.0, 0.5, 0.25, 1.0]
        );
        let bad = OfflineScoring {
            sigma: 1.0,
            visual_weight: -1.0,
            semantic_weight: 0.2,
        };
        assert!(matches!(
            try_offline_scores(&visual, None, &bad),
            Err(ScoringError::BadParameter {
                name: "visual_weight",
                ..
            })
        ));
    }

    #[test]
    fn fit_known_statistics() {
        let cal = CausalCalibration::fit(
            &[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0],
            None,
            5.0,
            0.8,
            0.2,
        )
        .unwrap();
        assert_eq!(cal.visual_mean, 5.0);
        assert_eq!(cal.visual_std, 2.0);
        assert_eq!(
            (cal.semantic_mean, cal.semantic_std, cal.semantic_weight),
            (0.0, 1.0, 0.0)
        );
        assert_eq!((cal.sigma, cal.visual_weight), (5.0, 0.8));
        // The largest normal z, (9 - 5) / 2, and the error it corresponds to: the saturation cap.
        assert_eq!((cal.visual_z_max, cal.visual_cap()), (Some(2.0), Some(9.0)));
        assert_eq!(saturate(&[1.0, 9.0, 12.0, f32::NAN], 9.0)[..3], [1.0, 9.0, 9.0]);
        assert!(saturate(&[f32::NAN], 9.0)[0].is_nan());
        assert_eq!(CausalCalibration { visual_z_max: None, ..cal.clone() }.visual_cap(), None);
        // Score sets: without a cap the raw scoring alone; with one the raw scoring, saturated beside.
        let (e, l) = ([1.0, 3.0, 12.0, 2.0, 0.5, 10.0], [0u8, 1, 1, 0, 0, 1]);
        let cfg = OfflineScoring { sigma: 0.0, ..OfflineScoring::PED2 };
        let raw = try_offline_scores(&e, None, &cfg).unwrap();
        let (top, beside) = offline_score_sets([("c", &e[..], None, &l[..])], &cfg, None).unwrap();
        assert_eq!(top.per_clip["c"].scores, raw);
        assert!(beside.is_none());
        let (top, beside) = offline_score_sets([("c", &e[..], None, &l[..])], &cfg, Some(4.0)).unwrap();
        assert_eq!(top.per_clip["c"].scores, raw);
        let beside = beside.unwrap().per_clip["c"].scores.clone();
        assert_eq!(beside, try_offline_scores(&saturate(&e, 4.0), None, &cfg).unwrap());
        assert_ne!(beside, raw);
        // A semantic stream of the wrong length is refused, capped or not.
        for cap in [None, Some(4.0)] {
            assert!(offline_score_sets([("c", &e[..], Some(&e[..2]), &l[..])], &cfg, cap).is_err());
        }

        let cal = CausalCalibration::fit(&[1.0, 3.0], Some(&[0.5, 0.5]), 2.0, 0.8, 0.2).unwrap();
        assert_eq!((cal.visual_mean, cal.visual_std), (2.0, 1.0));
        assert_eq!(cal.semantic_mean, 0.5);
        // Constant data: the std is floored, not zero.
        assert!(cal.semantic_std > 0.0 && cal.semantic_std <= 1e-6);
        assert_eq!(cal.semantic_weight, 0.2);

        // Round-trips through JSON.
        let json = serde_json::to_string(&cal).unwrap();
        assert_eq!(
            serde_json::from_str::<CausalCalibration>(&json).unwrap(),
            cal
        );
    }

    #[test]
    fn fit_errors() {
        use ScoringError as E;
        assert_eq!(
            CausalCalibration::fit(&[], None, 5.0, 1.0, 0.0),
            Err(E::Empty { what: "visual" })
        );
        assert!(matches!(
            CausalCalibration::fit(&[1.0, f32::NAN], None, 5.0, 1.0, 0.0),
            Err(E::NonFinite {
                what: "visual",
                index: 1,
                ..
            })
        ));
        assert!(matches!(
            CausalCalibration::fit(&[1.0, 2.0], Some(&[1.0, f32::INFINITY]), 5.0, 1.0, 0.5),
            Err(E::NonFinite {
                what: "semantic",
                index: 1,
                ..
            })
        ));
        assert_eq!(
            CausalCalibration::fit(&[1.0, 2.0], Some(&[1.0]), 5.0, 1.0, 0.5),
            Err(E::LengthMismatch {
                visual: 2,
                semantic: 1
            })
        );
        assert!(matches!(
            CausalCalibration::fit(&[1.0], None, f32::NAN, 1.0, 0.0),
            Err(E::BadParameter { name: "sigma", .. })
        ));
        assert!(matches!(
            CausalCalibration::fit(&[1.0], None, 1.0, 0.0, 0.0),
            Err(E::BadParameter { .. })
        ));
    }

    fn cal(sigma: f32) -> CausalCalibration {
        CausalCalibration {
            visual_mean: 1.0,
            visual_std: 2.0,
            semantic_mean: 0.5,
            semantic_std: 0.25,
            sigma,
            visual_weight: 0.8,
            semantic_weight: 0.2,
            pooling: ErrorPooling::FrameMean,
            regions: None,
            speed: None,
            visual_z_max: None,
        }
    }

    #[test]
    fn causal_window_and_z_scores() {
        assert_eq!(CausalScorer::new(&cal(5.0)).window_len(), 16);
        assert_eq!(CausalScorer::new(&cal(0.5)).window_len(), 3);
        assert_eq!(CausalScorer::new(&cal(0.0)).window_len(), 1);
        // No smoothing: plain z-scores, weighted.
        let mut s = CausalScorer::new(&cal(0.0));
        assert_eq!(s.push(5.0, None), 2.0);
        assert!(close(
            f64::from(s.push(5.0, Some(1.0))),
            0.8 * 2.0 + 0.2 * 2.0,
            1e-6
        ));
        assert_eq!(s.push(1.0, None), 0.0);
    }

    #[test]
    fn causal_half_gaussian_weights() {
        let mut s = CausalScorer::new(&cal(1.0));
        // First frame: its own z-score.
        assert_eq!(s.push(3.0, None), 1.0);
        // Second: (z1 * 1 + z0 * e^-0.5) / (1 + e^-0.5).
        let w1 = (-0.5f64).exp();
        let got = f64::from(s.push(1.0, None));
        assert!(close(got, w1 / (1.0 + w1), 1e-6), "{got}");
        // After reset: the past is gone.
        s.reset();
        assert_eq!(s.push(1.0, None), 0.0);
        // A constant stream gives its z-score, whatever the history length.
        let mut s = CausalScorer::new(&cal(3.0));
        for _ in 0..40 {
            assert!(close(f64::from(s.push(7.0, None)), 3.0, 1e-6));
        }
    }

    #[test]
    fn causal_never_uses_future_samples() {
        let c = cal(4.0);
        let visual: Vec<f32> = (0..60).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
        let semantic: Vec<f32> = (0..60).map(|i| ((i * 13) % 7) as f32 * 0.1).collect();
        let base = causal_scores(&visual, Some(&semantic), &c);
        for t in [0usize, 10, 30, 59] {
            let mut v2 = visual.clone();
            let mut s2 = semantic.clone();
            for i in t..60 {
                v2[i] += 100.0;
                s2[i] -= 3.0;
            }
            let changed = causal_scores(&v2, Some(&s2), &c);
            assert_eq!(
                &changed[..t],
                &base[..t],
                "changed input at {t} altered earlier outputs"
            );
            assert_ne!(changed[t], base[t]);
        }
        // Unlike the offline (centred) smoothing, which does look ahead.
        let off = offline_scores(&visual, None, &OfflineScoring::default());
        let mut v2 = visual.clone();
        v2[59] += 100.0;
        assert_ne!(
            offline_scores(&v2, None, &OfflineScoring::default())[50],
            off[50]
        );
    }

    #[test]
    fn causal_matches_streaming_and_forgets_after_window() {
        let c = cal(2.0);
        let visual: Vec<f32> = (0..30).map(|i| (i as f32 * 0.7).sin()).collect();
        let all = causal_scores(&visual, None, &c);
        // A spike influences at most window_len outputs.
        let len = CausalScorer::new(&c).window_len();
        let mut spiked = visual.clone();
        spiked[5] = 50.0;
        let s = causal_scores(&spiked, None, &c);
        for t in 5..5 + len {
            assert_ne!(s[t], all[t]);
        }
        assert_eq!(&s[5 + len..], &all[5 + len..]);
    }

    #[test]
    fn causal_non_finite_inputs_do_not_poison() {
        let c = cal(2.0);
        let mut s = CausalScorer::new(&c);
        // Before any finite value: calibration mean (z = 0).
        assert_eq!(s.push(f32::NAN, None), 0.0);
        s.reset();
        let clean: Vec<f32> = [3.0, 4.0, 4.0, 5.0, 6.0, 7.0]
            .iter()
            .map(|&v| s.push(v, None))
            .collect();
        s.reset();
        // NaN at index 2 behaves like repeating the last valid value (4.0).
        let dirty: Vec<f32> = [3.0, 4.0, f32::NAN, 5.0, 6.0, 7.0]
            .iter()
            .map(|&v| s.push(v, None))
            .collect();
        assert_eq!(clean, dirty);
        assert_eq!(s.non_finite_count(), 2);
        assert!(dirty.iter().all(|v| v.is_finite()));
        // Infinite semantic value: also the last valid semantic one.
        s.reset();
        let a = [s.push(1.0, Some(0.7)), s.push(2.0, Some(0.7))];
        s.reset();
        let b = [s.push(1.0, Some(0.7)), s.push(2.0, Some(f32::INFINITY))];
        assert_eq!(a, b);
        assert_eq!(s.non_finite_count(), 3);
        // Huge finite values are clamped, the state stays finite and recovers.
        s.reset();
        s.push(f32::MAX, None);
        s.push(-f32::MAX, None);
        for _ in 0..s.window_len() {
            s.push(1.0, None);
        }
        assert_eq!(s.push(1.0, None), 0.0);
    }

    #[test]
    fn causal_scorer_survives_invalid_calibration() {
        let bad = CausalCalibration {
            visual_mean: f32::NAN,
            visual_std: 0.0,
            semantic_mean: f32::INFINITY,
            semantic_std: -1.0,
            sigma: 1e30,
            visual_weight: f32::NAN,
            semantic_weight: 1.0,
            pooling: ErrorPooling::FrameMean,
            regions: None,
            speed: None,
            visual_z_max: None,
        };
        let mut s = CausalScorer::new(&bad);
        assert_eq!(s.window_len(), 3001);
        assert_eq!(s.push(2.0, Some(1.0)), 2.0);
    }

    #[test]
    fn region_z_pooling_by_hand() {
        // 1 channel, 2x4 frame, 2x2 boxes at stride 2: boxes (0,0) and (0,2).
        let grid = box_grid(2, 4, 2, 2);
        assert_eq!(grid, [1, 2]);
        // Normal footage: box 0 always busy (mean 4, std 2), box 1 quiet (mean 0, std 0).
        let normal = [vec![2.0f32, 0.0], vec![6.0, 0.0]];
        let r = RegionStats::fit(2, 2, grid, normal.iter().map(Vec::as_slice)).unwrap();
        assert_eq!((r.mean.clone(), r.std.clone(), r.floor), (vec![4.0, 0.0], vec![2.0, 0.0], 1.0));
        // A frame with error 6 in the busy box and 2 in the quiet one: z = (6-4)/(2+1) = 0.667 vs
        // (2-0)/(0+1) = 2: the quiet region wins, which the plain window max would not see.
        let map = [6.0, 6.0, 2.0, 2.0, 6.0, 6.0, 2.0, 2.0];
        let z = ErrorPooling::WindowMaxZ { window: 2, stride: 2 };
        assert!((z.pool_map(&map, 2, 4, Some(&r)).unwrap() - 2.0).abs() < 1e-6);
        assert_eq!(ErrorPooling::WindowMax { window: 2, stride: 2 }.pool_map(&map, 2, 4, None).unwrap(), 6.0);
        // Without statistics, or with statistics of another geometry: an error that says so.
        let e = z.pool_map(&map, 2, 4, None).unwrap_err().to_string();
        assert!(e.contains("sfn-train calibrate"), "{e}");
        let e = ErrorPooling::WindowMaxZ { window: 2, stride: 1 }.pool_map(&map, 2, 4, Some(&r)).unwrap_err().to_string();
        assert!(e.contains("stride 2") && e.contains("window_max_z_2s1"), "{e}");
        // Fitting refuses frames of the wrong size and non-finite values, naming them.
        let e = RegionStats::fit(2, 2, grid, [&[1.0f32][..]]).unwrap_err().to_string();
        assert!(e.contains("frame 0 has 1 boxes"), "{e}");
        assert!(RegionStats::fit(2, 2, grid, [&[1.0f32, f32::NAN][..]]).is_err());
        assert!(RegionStats::fit(2, 2, grid, std::iter::empty::<&[f32]>()).is_err());
        // Statistics read from a file are validated once: NaN or a floor of 0 are refused.
        assert!(r.validate().is_ok());
        let mut bad = r.clone();
        bad.mean[1] = f32::NAN;
        assert!(bad.validate().unwrap_err().to_string().contains("non-finite"));
        bad = r.clone();
        bad.floor = 0.0;
        assert!(bad.validate().is_err());
        assert_eq!(r.box_scores(&[6.0, 2.0]).unwrap(), vec![2.0 / 3.0, 2.0]);
    }

    #[test]
    fn pooling_names_parse_back() {
        for p in [ErrorPooling::FrameMean, ErrorPooling::WindowMax { window: 8, stride: 4 }, ErrorPooling::WindowMaxZ { window: 16, stride: 8 }] {
            assert_eq!(p.name().parse::<ErrorPooling>().unwrap(), p);
        }
        for bad in ["", "window_max", "window_max_8", "window_max_0s4", "window_max_z_8sx", "mean"] {
            let e = bad.parse::<ErrorPooling>().unwrap_err();
            assert!(e.contains("window_max_z_16s8"), "{bad}: {e}");
        }
    }

    #[test]
    fn window_means_match_the_window_max_pooling() {
        let (h, w) = (7, 10);
        let map: Vec<f32> = (0..h * w).map(|i| ((i * 37) % 11) as f32 / 10.0).collect();
        for (win, stride) in [(3, 2), (4, 4), (8, 3), (1, 1)] {
            let means = window_means(&map, h, w, win, stride);
            let g = box_grid(h, w, win, stride);
            assert_eq!(means.len(), g[0] * g[1]);
            let max = means.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(ErrorPooling::WindowMax { window: win, stride }.pool_map(&map, h, w, None).unwrap(), max);
        }
    }
}
