//! The offline scoring of the paper's protocol: per-clip min-max of each error stream, weighted sum, centred Gaussian; it looks at the whole clip.

use crate::*;
use serde::{Deserialize, Serialize};

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
    pub const PED2: Self = Self { sigma: 5.0, visual_weight: 0.8, semantic_weight: 0.2 };
    /// CUHK Avenue: sigma 4, weights (0.9, 0.1).
    pub const AVENUE: Self = Self { sigma: 4.0, visual_weight: 0.9, semantic_weight: 0.1 };
    /// ShanghaiTech: sigma 13, weights (0.2, 0.8).
    pub const SHANGHAITECH: Self = Self { sigma: 13.0, visual_weight: 0.2, semantic_weight: 0.8 };

    /// Checks the weights (finite, non-negative, positive sum) and sigma (not NaN).
    pub fn validate(&self) -> Result<(), ScoringError> {
        check_weights(self.visual_weight, self.semantic_weight)?;
        if self.sigma.is_nan() {
            return Err(ScoringError::BadParameter { name: "sigma", value: self.sigma, reason: "must be a number" });
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
    try_offline_scores(visual, semantic, cfg).unwrap_or_else(|_| gaussian_smooth(&min_max(visual), cfg.sigma))
}

/// [`offline_scores`] that reports a semantic stream of the wrong length or invalid parameters.
pub fn try_offline_scores(visual: &[f32], semantic: Option<&[f32]>, cfg: &OfflineScoring) -> Result<Vec<f32>, ScoringError> {
    cfg.validate()?;
    let v = min_max(visual);
    let combined = match semantic {
        None => v,
        Some(s) => {
            if s.len() != visual.len() {
                return Err(ScoringError::LengthMismatch { visual: visual.len(), semantic: s.len() });
            }
            let s = min_max(s);
            let (wv, ws) = (f64::from(cfg.visual_weight), f64::from(cfg.semantic_weight));
            let wsum = wv + ws;
            v.iter().zip(&s).map(|(&a, &b)| ((wv * f64::from(a) + ws * f64::from(b)) / wsum) as f32).collect()
        }
    };
    Ok(gaussian_smooth(&combined, cfg.sigma))
}

pub(crate) fn check_weights(visual_weight: f32, semantic_weight: f32) -> Result<(), ScoringError> {
    for (name, w) in [("visual_weight", visual_weight), ("semantic_weight", semantic_weight)] {
        if !(w.is_finite() && w >= 0.0) {
            return Err(ScoringError::BadParameter { name, value: w, reason: "must be finite and >= 0" });
        }
    }
    if visual_weight + semantic_weight <= 0.0 {
        return Err(ScoringError::BadParameter { name: "visual_weight + semantic_weight", value: visual_weight + semantic_weight, reason: "must be > 0" });
    }
    Ok(())
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
