//! What a camera needs to score causally, fitted on normal footage.

use crate::*;
use serde::{Deserialize, Serialize};

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
    /// The appearance cue joined to the visual error after the speed cue ([`AppearanceJoin`]); the
    /// mean and std above then describe the joined error. The camera runs the export's
    /// `appearance.onnx` on the frame's moving boxes for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appearance: Option<AppearanceJoin>,
}

impl CausalCalibration {
    /// Calibrates on the errors of normal (training) footage: mean and population standard deviation
    /// of each stream (computed in f64; the std is floored, see [`STD_FLOOR_REL`]).
    ///
    /// Without a semantic stream, `semantic_mean = 0`, `semantic_std = 1`, `semantic_weight = 0`.
    /// Errors: empty input, a non-finite error value, a semantic stream of different length, sigma
    /// NaN or above [`MAX_CAUSAL_SIGMA`], weights negative / non-finite / summing to 0.
    pub fn fit(visual: &[f32], semantic: Option<&[f32]>, sigma: f32, visual_weight: f32, semantic_weight: f32) -> Result<Self, ScoringError> {
        if sigma.is_nan() || sigma > MAX_CAUSAL_SIGMA {
            return Err(ScoringError::BadParameter { name: "sigma", value: sigma, reason: "must be a number <= MAX_CAUSAL_SIGMA (1000)" });
        }
        let (visual_mean, visual_std) = mean_std(visual, "visual")?;
        let (semantic_mean, semantic_std, semantic_weight) = match semantic {
            Some(s) => {
                if s.len() != visual.len() {
                    return Err(ScoringError::LengthMismatch { visual: visual.len(), semantic: s.len() });
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
            appearance: None,
            visual_z_max: Some(visual.iter().map(|&v| (v - visual_mean) / visual_std).fold(f32::NEG_INFINITY, f32::max)),
        })
    }
}

impl CausalCalibration {
    /// The visual error at [`CausalCalibration::visual_z_max`]: `mean + z_max * std`, the cap of the
    /// saturated offline scoring (None for a calibration fitted before it was recorded).
    pub fn visual_cap(&self) -> Option<f32> {
        self.visual_z_max.filter(|z| z.is_finite()).map(|z| self.visual_mean + z * self.visual_std)
    }

    /// How this calibration turns a prediction into its visual error ([`VisualScoring`]; the appearance
    /// cue, where joined, comes on top).
    pub fn visual_scoring(&self) -> VisualScoring<'_> {
        VisualScoring { pooling: self.pooling, regions: self.regions.as_ref(), speed: self.speed.as_ref() }
    }

    /// The visual error of one frame as this calibration defines it ([`VisualScoring::error`]), before
    /// the appearance cue is joined ([`AppearanceJoin::join`] with the cue's network's output).
    pub fn visual_error(&self, pred: &[f32], target: &[f32], last: &[f32], channels: usize, height: usize, width: usize) -> Result<f32, ScoringError> {
        self.visual_scoring().error(pred, target, last, channels, height, width)
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
    let var = x.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    let floor = (f64::from(STD_FLOOR_REL) * mean.abs()).max(f64::from(STD_FLOOR_ABS));
    Ok((mean as f32, var.sqrt().max(floor) as f32))
}

/// What [`fit_calibration`] fits: the pooling, the causal smoothing, the stream weights and the
/// speed cue.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalibrationSettings {
    pub pooling: ErrorPooling,
    pub sigma: f32,
    pub visual_weight: f32,
    pub semantic_weight: f32,
    /// Speed cue to fit and fold into the visual error.
    pub speed: Option<SpeedCue>,
}

impl CalibrationSettings {
    /// The settings a calibration was fitted with, to refit it on other footage (what was fitted from
    /// footage, as the relative pooling's floor, is fitted anew: [`ErrorPooling::unfitted`]).
    pub fn of(cal: &CausalCalibration) -> Self {
        Self { pooling: cal.pooling.unfitted(), sigma: cal.sigma, visual_weight: cal.visual_weight, semantic_weight: cal.semantic_weight, speed: cal.speed.as_ref().map(|s| s.cue) }
    }
}

/// A frame's prediction error as [`fit_calibration`] takes it: the box means of its
/// [`ErrorPooling::map`] at the pooling's window ([`window_means`]; for the relative pooling those of
/// both planes, the network's then copying's, which calibration divides once it has fitted the floor),
/// or for `frame_mean` the map's mean alone.
pub fn error_summary(pooling: ErrorPooling, map: &[f32], height: usize, width: usize) -> Result<Vec<f32>, ScoringError> {
    match pooling.window() {
        Some(_) => pooling.plane_box_means(map, height, width),
        None => Ok(vec![pooling.pool_map(map, height, width, None)?]),
    }
}

/// Fits the causal calibration on normal `height` x `width` frames: per frame the prediction error's
/// [`error_summary`] and, with a speed cue, the cue's box means of the same frame pair
/// ([`SpeedCue::box_means`]). With `WindowMaxZ` first the region statistics, then the pooled error;
/// with a speed cue its region statistics (and for the z-mean fusion its frame statistics), then the
/// fused error; last the z constants of the fused error (and of `semantic`, given).
pub fn fit_calibration(settings: CalibrationSettings, height: usize, width: usize, errors: &[Vec<f32>], speed_boxes: &[Vec<f32>], semantic: Option<&[f32]>) -> Result<CausalCalibration, ScoringError> {
    fit_calibration_joined(settings, height, width, errors, &[], speed_boxes, semantic, None)
}

/// [`fit_calibration`] with the appearance cue joined to the visual error: its boxes and z
/// constants, and its frame error on each frame of the calibration footage ([`AppearanceJoin::new`]);
/// and with `clip_frames`, how many of the frames each clip has, in order (empty: one clip), which a
/// pooling that persists over frames ([`ErrorPooling::frames`]) needs.
#[allow(clippy::too_many_arguments)]
pub fn fit_calibration_joined(
    settings: CalibrationSettings,
    height: usize,
    width: usize,
    errors: &[Vec<f32>],
    clip_frames: &[usize],
    speed_boxes: &[Vec<f32>],
    semantic: Option<&[f32]>,
    appearance: Option<(AppearanceBoxes, AppearanceZ, &[f32])>,
) -> Result<CausalCalibration, ScoringError> {
    let CalibrationSettings { pooling: _, sigma, visual_weight, semantic_weight, speed } = settings;
    // The relative pooling: its floor fitted on copying's box errors where not given, then each frame's
    // box ratios.
    let (pooling, ratios);
    let errors = match settings.pooling {
        ErrorPooling::RelativeWindowMax { window, stride, change_milli, floor_micro, frames } => {
            let n = errors.first().map_or(0, |e| e.len() / 2);
            if let Some(i) = errors.iter().position(|e| e.len() != 2 * n || n == 0) {
                return Err(ScoringError::BadShape {
                    field: "relative error summary",
                    reason: format!("frame {i} has {} values, expected the two planes' box means ({} each)", errors[i].len(), n.max(1)),
                });
            }
            let floor_micro = match floor_micro {
                0 => fit_relative_floor(&errors.iter().flat_map(|e| e[n..].iter().copied()).collect::<Vec<f32>>())?,
                f => f,
            };
            pooling = ErrorPooling::RelativeWindowMax { window, stride, change_milli, floor_micro, frames };
            ratios = errors.iter().map(|e| pooling.box_values_of_means(e)).collect::<Result<Vec<Vec<f32>>, _>>()?;
            &ratios[..]
        }
        p => {
            pooling = p;
            errors
        }
    };
    let regions = match pooling {
        ErrorPooling::WindowMaxZ { window, stride } => Some(RegionStats::fit(window, stride, box_grid(height, width, window, stride), errors.iter().map(Vec::as_slice))?),
        _ => None,
    };
    let visual: Vec<f32> = match pooling {
        ErrorPooling::FrameMean => errors.iter().map(|e| e.first().copied().ok_or(ScoringError::Empty { what: "frame error" })).collect::<Result<_, _>>()?,
        _ => errors.iter().map(|m| pooling.pool_boxes(m, height, width, regions.as_ref())).collect::<Result<_, _>>()?,
    };
    // A pooling whose value must hold for several frames ([`persist`]) takes its minimum within each
    // clip, as the camera does frame by frame.
    let visual = match pooling.frames() {
        1 => visual,
        n => {
            let lengths: Vec<usize> = if clip_frames.is_empty() { vec![visual.len()] } else { clip_frames.to_vec() };
            if lengths.iter().sum::<usize>() != visual.len() {
                return Err(ScoringError::BadShape { field: "clip frames", reason: format!("the clips' {} frames are not the {} frame errors", lengths.iter().sum::<usize>(), visual.len()) });
            }
            let mut start = 0;
            let mut out = Vec::with_capacity(visual.len());
            for len in lengths {
                out.extend(persist(&visual[start..start + len], n));
                start += len;
            }
            out
        }
    };
    let (visual, speed) = match speed {
        Some(cue) => {
            if speed_boxes.len() != errors.len() {
                return Err(ScoringError::LengthMismatch { visual: errors.len(), semantic: speed_boxes.len() });
            }
            let sp = SpeedCalibration::fit(cue, height, width, speed_boxes.iter().map(Vec::as_slice))?;
            let s = speed_boxes.iter().map(|m| sp.score_boxes(m)).collect::<Result<Vec<f32>, _>>()?;
            let sp = sp.fit_frame_z(&visual, &s)?;
            (visual.iter().zip(&s).map(|(&e, &s)| sp.fuse(e, s)).collect(), Some(sp))
        }
        None => (visual, None),
    };
    let (visual, appearance) = match appearance {
        Some((boxes, z, a)) => {
            if a.len() != visual.len() {
                return Err(ScoringError::BadParameter { name: "appearance errors", value: a.len() as f32, reason: "need one per calibration frame" });
            }
            let join = AppearanceJoin::new(boxes, z, speed.as_ref(), &visual)?;
            (visual.iter().zip(a).map(|(&v, &a)| join.join(v, a)).collect(), Some(join))
        }
        None => (visual, None),
    };
    Ok(CausalCalibration { pooling, regions, speed, appearance, ..CausalCalibration::fit(&visual, semantic, sigma, visual_weight, semantic_weight)? })
}
