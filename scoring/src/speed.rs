//! The speed cue: how fast each part of the frame moves, measured by block matching between the last
//! input frame and the frame being predicted, z-scored per region against normal footage.
//!
//! Why: the network's prediction error on Ped2 is the copy error (it does not learn motion), and a
//! frame difference mixes *how much* moves with *how fast* it moves, so a crowd of walkers outshouts one
//! distant cyclist. The displacement that best explains a block separates the two: walkers move a
//! pixel or less a frame at 128x192, cyclists and carts two or more.
//!
//! The cue is folded into the visual error before calibration ([`SpeedCalibration::fuse`]): either
//! `e = max(e_pred, lambda * s)` ([`SpeedFusion::Max`]: a frame is as anomalous as its stronger cue, both
//! being region z-scores), or, for a network whose error is informative on its own (the Ped2 preset), the
//! mean of the two cues each standardised per frame against normal footage, `e = (z_pred + lambda * z_s)
//! / (1 + lambda)` ([`SpeedFusion::ZMean`]), so the causal scorer, the offline scoring and the packets keep one visual
//! stream.

use serde::{Deserialize, Serialize};

mod kernel;

pub use kernel::{speed_map, speed_map_with, SpeedKernel};

use crate::{box_grid, window_means, RegionStats, ScoringError};

/// Largest search radius accepted (pixels); 8 means 289 candidate shifts a pixel.
pub const MAX_SPEED_RADIUS: usize = 8;
/// Largest block side accepted (pixels): the exact integer block sums need blocks of at most 48x48.
pub const MAX_SPEED_BLOCK: usize = 48;

/// How the speed cue s joins the prediction error e_pred (both region z-scores pooled by max).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SpeedFusion {
    /// e = max(e_pred, lambda * s).
    Max,
    /// e = (z_pred + lambda * z_s) / (1 + lambda), z_pred = (e_pred - mu_pred) / sd_pred and z_s = (s -
    /// mu_s) / sd_s with the frame-level statistics of normal footage ([`FrameZ`]): the two cues in
    /// the same units whatever their pooling, so lambda = 1 weighs them equally.
    ZMean,
    /// e = (max(z_pred, 0) + lambda max(z_s, 0)) / (1 + lambda): the z-mean of the cues' evidence
    /// only, so a cue below its normal level (a still frame's speed, a prediction better than usual)
    /// does not cancel the other's.
    ZMeanPositive,
}

impl SpeedFusion {
    /// Whether the fusion standardises both cues per frame (and so needs [`FrameZ`]).
    pub fn uses_frame_z(self) -> bool {
        matches!(self, SpeedFusion::ZMean | SpeedFusion::ZMeanPositive)
    }
}

/// Frame-level mean and standard deviation of the prediction error and of the speed cue on normal
/// footage, for [`SpeedFusion::ZMean`] and [`SpeedFusion::ZMeanPositive`].
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct FrameZ {
    /// [mean, std] of the pooled prediction error e_pred.
    pub prediction: [f32; 2],
    /// [mean, std] of the speed cue s.
    pub speed: [f32; 2],
}

impl FrameZ {
    /// Mean and population std (floored like the causal calibration's) of `prediction` and `speed`,
    /// the streams of the same normal frames.
    pub fn fit(prediction: &[f32], speed: &[f32]) -> Result<Self, ScoringError> {
        if prediction.len() != speed.len() {
            return Err(ScoringError::LengthMismatch { visual: prediction.len(), semantic: speed.len() });
        }
        let (pm, ps) = crate::mean_std(prediction, "prediction error")?;
        let (sm, ss) = crate::mean_std(speed, "speed cue")?;
        Ok(Self { prediction: [pm, ps], speed: [sm, ss] })
    }

    fn validate(&self) -> Result<(), ScoringError> {
        for (name, [m, sd]) in [("speed.frame_z.prediction", self.prediction), ("speed.frame_z.speed", self.speed)] {
            if !(m.is_finite() && sd.is_finite() && sd > 0.0) {
                return Err(ScoringError::BadParameter { name, value: if m.is_finite() { sd } else { m }, reason: "needs a finite mean and a finite std > 0" });
            }
        }
        Ok(())
    }
}

/// Parameters of the speed cue.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct SpeedCue {
    /// Search radius r: shifts (dy, dx) with |dy|, |dx| <= r pixels.
    pub radius: usize,
    /// Side b of the block matched around each pixel: rows y - b/2 .. y - b/2 + b (clipped to the frame).
    pub block: usize,
    /// Box side of the region pooling of the speed map.
    pub window: usize,
    /// Box stride of the region pooling.
    pub stride: usize,
    /// lambda, the weight of s in the fusion.
    pub weight: f32,
    /// How s joins the prediction error.
    pub fusion: SpeedFusion,
    /// Match margin m in [0, 1): a pixel's best shift counts only where its block sum is at most
    /// (1 - m) times the zero shift's, else the pixel reads 0 ([`speed_map`]).
    pub margin: f32,
}

impl SpeedCue {
    /// The preset chosen on Ped2 dev clips 01, 05, 06, 09 at 128x192 for a network whose error is copying's:
    /// `e = max(e_pred, s)`, match margin 0.1.
    pub const PED2_128X192: Self = Self { radius: 3, block: 12, window: 32, stride: 16, weight: 1.0, fusion: SpeedFusion::Max, margin: 0.1 };
    /// The Ped2 preset for a network that predicts better than copying (a pixel stem): the mean of the
    /// frame z-scores of its plain box-max error and of s, weighed equally, match margin 0.1.
    pub const PED2_128X192_Z: Self = Self { fusion: SpeedFusion::ZMean, ..Self::PED2_128X192 };
    /// The same with the z-mean of the cues' positive parts (the Ped2 model's at 128x192).
    pub const PED2_128X192_P: Self = Self { fusion: SpeedFusion::ZMeanPositive, ..Self::PED2_128X192 };
    /// [`SpeedCue::PED2_128X192_P`] at 160x240 (the committed Ped2 model's): every length scaled by 1.25
    /// (the radius 3.75 rounded up), so that blocks, boxes and search cover the same part of the scene.
    pub const PED2_160X240_P: Self = Self { radius: 4, block: 15, window: 40, stride: 20, ..Self::PED2_128X192_P };

    /// Radius 1..=[`MAX_SPEED_RADIUS`], block 1..=[`MAX_SPEED_BLOCK`], window and stride >= 1, weight
    /// finite and >= 0, margin in [0, 1).
    pub fn validate(&self) -> Result<(), ScoringError> {
        let bad = |name: &'static str, value: f32, reason: &'static str| Err(ScoringError::BadParameter { name, value, reason });
        if !(1..=MAX_SPEED_RADIUS).contains(&self.radius) {
            return bad("speed.radius", self.radius as f32, "must be 1..=8");
        }
        if !(1..=MAX_SPEED_BLOCK).contains(&self.block) {
            return bad("speed.block", self.block as f32, "must be 1..=48");
        }
        if self.window == 0 || self.stride == 0 {
            return bad("speed.window/stride", 0.0, "must be >= 1");
        }
        if !(self.weight.is_finite() && self.weight >= 0.0) {
            return bad("speed.weight", self.weight, "must be finite and >= 0");
        }
        if !(0.0..1.0).contains(&self.margin) {
            return bad("speed.margin", self.margin, "must be in [0, 1)");
        }
        Ok(())
    }

    /// The speed map of one frame pair (see [`speed_map`]).
    pub fn map(&self, last: &[f32], next: &[f32], channels: usize, height: usize, width: usize) -> Result<Vec<f32>, ScoringError> {
        speed_map(last, next, channels, height, width, self.radius, self.block, self.margin)
    }

    /// Box means of the speed map of one frame pair, in the geometry of [`box_grid`].
    pub fn box_means(&self, last: &[f32], next: &[f32], channels: usize, height: usize, width: usize) -> Result<Vec<f32>, ScoringError> {
        Ok(window_means(&self.map(last, next, channels, height, width)?, height, width, self.window, self.stride))
    }
}

impl SpeedCue {
    /// Short name, parsed back by `FromStr`: `speed_r3_b12_32s16_m1_g0.1` (radius, block, window, stride,
    /// then `m` + weight for [`SpeedFusion::Max`], `z` + weight for [`SpeedFusion::ZMean`] or `p` +
    /// weight for [`SpeedFusion::ZMeanPositive`], then `g` +
    /// margin, left out when the margin is 0).
    pub fn name(&self) -> String {
        let f = match self.fusion {
            SpeedFusion::Max => 'm',
            SpeedFusion::ZMean => 'z',
            SpeedFusion::ZMeanPositive => 'p',
        };
        let g = if self.margin == 0.0 { String::new() } else { format!("_g{}", self.margin) };
        format!("speed_r{}_b{}_{}s{}_{f}{}{g}", self.radius, self.block, self.window, self.stride, self.weight)
    }
}

impl std::str::FromStr for SpeedCue {
    type Err = String;

    /// The inverse of [`SpeedCue::name`]; the result is validated.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("{s:?}: expected speed_r<RADIUS>_b<BLOCK>_<WINDOW>s<STRIDE>_m<WEIGHT> (max fusion), _z<WEIGHT> (mean of frame z-scores) or _p<WEIGHT> (mean of their positive parts), optionally followed by _g<MARGIN> (e.g. speed_r3_b12_32s16_p1_g0.1, speed_r3_b12_32s16_m1)")
        };
        let rest = s.strip_prefix("speed_r").ok_or_else(bad)?;
        let parts: Vec<&str> = rest.split('_').collect();
        let (r, b, ws, l, g) = match parts[..] {
            [r, b, ws, l] => (r, b, ws, l, None),
            [r, b, ws, l, g] => (r, b, ws, l, Some(g)),
            _ => return Err(bad()),
        };
        let (w, st) = ws.split_once('s').ok_or_else(bad)?;
        let num = |v: Option<&str>| v.and_then(|v| v.parse::<usize>().ok()).ok_or_else(bad);
        let cue = SpeedCue {
            radius: num(Some(r))?,
            block: num(b.strip_prefix('b'))?,
            window: num(Some(w))?,
            stride: num(Some(st))?,
            weight: l.get(1..).and_then(|v| v.parse::<f32>().ok()).ok_or_else(bad)?,
            fusion: match l.as_bytes().first() {
                Some(b'm') => SpeedFusion::Max,
                Some(b'z') => SpeedFusion::ZMean,
                Some(b'p') => SpeedFusion::ZMeanPositive,
                _ => return Err(bad()),
            },
            margin: match g {
                None => 0.0,
                Some(g) => g.strip_prefix('g').and_then(|v| v.parse::<f32>().ok()).ok_or_else(bad)?,
            },
        };
        cue.validate().map_err(|e| format!("{s:?}: {e}"))?;
        Ok(cue)
    }
}

/// The speed cue with the per-region statistics of its box means on normal footage (stored in
/// `calibration.json`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SpeedCalibration {
    pub cue: SpeedCue,
    pub regions: RegionStats,
    /// Frame-level statistics for [`SpeedFusion::ZMean`] (absent for the other fusions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_z: Option<FrameZ>,
}

impl SpeedCalibration {
    /// Fits the region statistics on the box means of normal frame pairs.
    pub fn fit<'a>(cue: SpeedCue, height: usize, width: usize, box_means: impl IntoIterator<Item = &'a [f32]>) -> Result<Self, ScoringError> {
        cue.validate()?;
        let grid = box_grid(height, width, cue.window, cue.stride);
        Ok(Self { cue, regions: RegionStats::fit(cue.window, cue.stride, grid, box_means)?, frame_z: None })
    }

    /// For the fusions of z-scores, fits [`FrameZ`] on the pooled prediction errors and the speed cues
    /// of the same normal frames (a no-op for the max).
    pub fn fit_frame_z(mut self, prediction: &[f32], speed: &[f32]) -> Result<Self, ScoringError> {
        if self.cue.fusion.uses_frame_z() {
            self.frame_z = Some(FrameZ::fit(prediction, speed)?);
        }
        Ok(self)
    }

    /// s = max_w (v_w - mu_w) / (sd_w + floor) over the box means v_w of the speed map.
    pub fn score_boxes(&self, box_means: &[f32]) -> Result<f32, ScoringError> {
        self.regions.pool(box_means)
    }

    /// s of one frame pair: `last` is frame t (the last input), `next` frame t+1 (the predicted one).
    pub fn score(&self, last: &[f32], next: &[f32], channels: usize, height: usize, width: usize) -> Result<f32, ScoringError> {
        self.check_geometry(height, width)?;
        self.score_boxes(&self.cue.box_means(last, next, channels, height, width)?)
    }

    /// e = max(e_pred, lambda * s)
    /// ([`SpeedFusion::Max`]; NaN in either gives NaN) or e = (z_pred + lambda * z_s) / (1 + lambda)
    /// ([`SpeedFusion::ZMean`]; NaN without its [`FrameZ`], which [`SpeedCalibration::validate`] refuses)
    /// or the same on the z-scores floored at 0 ([`SpeedFusion::ZMeanPositive`]; NaN stays NaN).
    pub fn fuse(&self, prediction_error: f32, speed: f32) -> f32 {
        let (e, s) = self.terms(prediction_error, speed);
        match self.cue.fusion {
            SpeedFusion::ZMean | SpeedFusion::ZMeanPositive => (e + s) / (1.0 + self.cue.weight),
            SpeedFusion::Max if e.is_nan() || s.is_nan() => f32::NAN,
            SpeedFusion::Max => e.max(s),
        }
    }

    /// The two terms [`SpeedCalibration::fuse`] joins, (prediction, lambda * speed): the raw values for
    /// the max, the cues' frame z-scores for the z-mean, floored at 0 (NaN stays NaN) for its positive
    /// parts; NaN for a z fusion without its [`FrameZ`]. The larger term names the cue that set a frame.
    pub fn terms(&self, prediction_error: f32, speed: f32) -> (f32, f32) {
        let l = self.cue.weight;
        let z = |v: f32, [m, sd]: [f32; 2]| (v - m) / sd;
        // f32::max would turn NaN into 0.
        let pos = |v: f32| if v < 0.0 { 0.0 } else { v };
        match (self.cue.fusion, &self.frame_z) {
            (SpeedFusion::Max, _) => (prediction_error, l * speed),
            (SpeedFusion::ZMean, Some(f)) => (z(prediction_error, f.prediction), l * z(speed, f.speed)),
            (SpeedFusion::ZMeanPositive, Some(f)) => (pos(z(prediction_error, f.prediction)), l * pos(z(speed, f.speed))),
            (_, None) => (f32::NAN, f32::NAN),
        }
    }

    /// [`SpeedCalibration::validate`] and [`SpeedCalibration::check_geometry`]: what every loader of a
    /// calibration checks once before scoring `height` x `width` frames.
    pub fn check(&self, height: usize, width: usize) -> Result<(), ScoringError> {
        self.validate()?;
        self.check_geometry(height, width)
    }

    /// The statistics fit a `height` x `width` frame: the cue's box grid and one mean and std per box.
    pub fn check_geometry(&self, height: usize, width: usize) -> Result<(), ScoringError> {
        let grid = box_grid(height, width, self.cue.window, self.cue.stride);
        let n = grid[0] * grid[1];
        if self.regions.grid != grid || self.regions.mean.len() != n || self.regions.std.len() != n {
            return Err(ScoringError::Regions(format!("speed statistics for grid {:?} ({} boxes) do not fit {height}x{width} (grid {grid:?}, {n} boxes)", self.regions.grid, self.regions.mean.len())));
        }
        Ok(())
    }

    /// Checks the cue and finite statistics (once, where the calibration is loaded).
    pub fn validate(&self) -> Result<(), ScoringError> {
        self.cue.validate()?;
        if (self.regions.window, self.regions.stride) != (self.cue.window, self.cue.stride) {
            return Err(ScoringError::Regions("speed statistics fitted for another window or stride".into()));
        }
        match (&self.frame_z, self.cue.fusion) {
            (Some(z), _) => z.validate()?,
            (None, SpeedFusion::ZMean | SpeedFusion::ZMeanPositive) => {
                return Err(ScoringError::BadParameter { name: "speed.frame_z", value: f32::NAN, reason: "the z-mean fusion needs the frame-level statistics of normal footage (re-run calibrate)" })
            }
            (None, _) => {}
        }
        self.regions.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speed::kernel::tests::{shifted, texture};

    #[test]
    fn calibration_scores_and_fuses() {
        let (h, w) = (32, 48);
        let cue = SpeedCue { radius: 2, block: 6, window: 16, stride: 8, weight: 3.0, fusion: SpeedFusion::Max, margin: 0.0 };
        let a = texture(h, w);
        let normal: Vec<Vec<f32>> = [(0, 0), (0, 1), (1, 0)].iter().map(|&(dy, dx)| cue.box_means(&a, &shifted(&a, h, w, dy, dx), 1, h, w).unwrap()).collect();
        let cal = SpeedCalibration::fit(cue, h, w, normal.iter().map(Vec::as_slice)).unwrap();
        cal.validate().unwrap();
        let slow = cal.score(&a, &shifted(&a, h, w, 0, 1), 1, h, w).unwrap();
        let fast = cal.score(&a, &shifted(&a, h, w, 2, 2), 1, h, w).unwrap();
        assert!(fast > slow, "fast {fast} slow {slow}");
        assert_eq!(cal.fuse(1.0, 5.0), 15.0);
        // A frame of another size is refused by name.
        assert!(cal.score(&a[..16 * 48], &a[..16 * 48], 1, 16, 48).is_err());
        cal.check_geometry(h, w).unwrap();
        cal.check(h, w).unwrap();
        let mut bad_cue = cal.clone();
        bad_cue.cue.margin = 1.5;
        assert!(bad_cue.check(h, w).unwrap_err().to_string().contains("speed.margin"));
        assert!(cal.check(16, 48).unwrap_err().to_string().contains("16x48"));
        assert!(cal.check_geometry(16, 48).unwrap_err().to_string().contains("16x48"));
        let mut short = cal.clone();
        short.regions.std.pop();
        assert!(short.check_geometry(h, w).is_err());
        assert_eq!(cue.name().parse::<SpeedCue>().unwrap(), cue);
        assert_eq!(SpeedCue::PED2_128X192.name(), "speed_r3_b12_32s16_m1_g0.1");
        assert_eq!(SpeedCue::PED2_128X192_Z.name(), "speed_r3_b12_32s16_z1_g0.1");
        assert_eq!(SpeedCue::PED2_128X192_P.name(), "speed_r3_b12_32s16_p1_g0.1");
        for preset in [SpeedCue::PED2_128X192, SpeedCue::PED2_128X192_Z, SpeedCue::PED2_128X192_P] {
            assert_eq!(preset.name().parse::<SpeedCue>().unwrap(), preset);
        }
        // Max fusion: the stronger cue, lambda scaling s; NaN is not swallowed by max.
        let max = SpeedCalibration { cue: SpeedCue { fusion: SpeedFusion::Max, weight: 2.0, ..cue }, ..cal.clone() };
        assert_eq!(max.fuse(1.0, 5.0), 10.0);
        assert_eq!(max.fuse(11.0, 5.0), 11.0);
        assert!(max.fuse(f32::NAN, 5.0).is_nan() && max.fuse(1.0, f32::NAN).is_nan());
        // A cue without its fusion or margin is refused by name (no defaults for older files).
        let e = serde_json::from_str::<SpeedCue>(r#"{"radius":3,"block":12,"window":32,"stride":16,"weight":4.0}"#).unwrap_err().to_string();
        assert!(e.contains("fusion"), "{e}");
        assert!("speed_r3_b12_32s16_l4".parse::<SpeedCue>().is_err());
        for wrong in [
            "speed_r0_b12_32s16_m4",
            "speed_r3_b12_32x16_m4",
            "speed_r3_b12_32s16",
            "r3_b12_32s16_m4",
            "speed_r3_b12_32s16_m-1",
            "speed_r3_b12_32s16_x1",
            "speed_r3_b12_32s16_m",
            "speed_r3_b12_32s16_m1_g1",
            "speed_r3_b12_32s16_m1_x0.1",
            "speed_r3_b12_32s16_m1_g0.1_g0.1",
        ] {
            assert!(wrong.parse::<SpeedCue>().is_err(), "{wrong}");
        }
        let bad = SpeedCue { weight: f32::NAN, ..cue };
        assert!(SpeedCalibration::fit(bad, h, w, normal.iter().map(Vec::as_slice)).is_err());
    }
    #[test]
    fn z_mean_fusion_standardises_both_cues_on_normal_footage() {
        let (h, w) = (32, 48);
        let cue = SpeedCue { radius: 2, block: 6, window: 16, stride: 8, weight: 1.0, fusion: SpeedFusion::ZMean, margin: 0.0 };
        assert_eq!(cue.name(), "speed_r2_b6_16s8_z1");
        assert_eq!(cue.name().parse::<SpeedCue>().unwrap(), cue);
        let a = texture(h, w);
        let normal: Vec<Vec<f32>> = [(0, 0), (0, 1), (1, 0), (1, 1)].iter().map(|&(dy, dx)| cue.box_means(&a, &shifted(&a, h, w, dy, dx), 1, h, w).unwrap()).collect();
        let cal = SpeedCalibration::fit(cue, h, w, normal.iter().map(Vec::as_slice)).unwrap();
        // Without its frame statistics the fusion cannot run: refused where the calibration is loaded.
        let e = cal.validate().unwrap_err().to_string();
        assert!(e.contains("speed.frame_z"), "{e}");
        assert!(cal.fuse(1.0, 1.0).is_nan());
        // Prediction errors 1, 2, 3, 4 (mean 2.5, std sqrt(1.25)) and speeds 0, 0, 2, 2 (mean 1, std 1).
        let cal = cal.fit_frame_z(&[1.0, 2.0, 3.0, 4.0], &[0.0, 0.0, 2.0, 2.0]).unwrap();
        cal.check(h, w).unwrap();
        let sd = 1.25f32.sqrt();
        assert!((cal.fuse(2.5 + 2.0 * sd, 1.0) - 1.0).abs() < 1e-6);
        assert!((cal.fuse(2.5, 4.0) - 1.5).abs() < 1e-6);
        let heavy = SpeedCalibration { cue: SpeedCue { weight: 3.0, ..cue }, ..cal.clone() };
        assert!((heavy.fuse(2.5, 4.0) - 9.0 / 4.0).abs() < 1e-6);
        // The statistics travel through calibration.json; broken ones are refused by name.
        let back: SpeedCalibration = serde_json::from_str(&serde_json::to_string(&cal).unwrap()).unwrap();
        assert_eq!(back, cal);
        let mut broken = cal.clone();
        broken.frame_z.as_mut().unwrap().speed[1] = 0.0;
        assert!(broken.validate().unwrap_err().to_string().contains("speed.frame_z.speed"));
        assert!(cal.clone().fit_frame_z(&[1.0], &[1.0, 2.0]).is_err());
        assert!(cal.clone().fit_frame_z(&[f32::NAN], &[1.0]).unwrap_err().to_string().contains("prediction error"));
        // The positive parts: a cue below its normal level adds nothing instead of cancelling the other.
        let pos = SpeedCalibration { cue: SpeedCue { fusion: SpeedFusion::ZMeanPositive, ..cue }, ..cal.clone() };
        assert_eq!(pos.cue.name(), "speed_r2_b6_16s8_p1");
        assert_eq!(pos.cue.name().parse::<SpeedCue>().unwrap(), pos.cue);
        assert!((cal.fuse(2.5 + 2.0 * sd, -1.0) - 0.0).abs() < 1e-6);
        assert!((pos.fuse(2.5 + 2.0 * sd, -1.0) - 1.0).abs() < 1e-6);
        assert!((pos.fuse(2.5, 4.0) - 1.5).abs() < 1e-6);
        assert_eq!(pos.fuse(0.0, -5.0), 0.0);
        assert!(pos.fuse(f32::NAN, 1.0).is_nan());
        let bare = SpeedCalibration { frame_z: None, ..pos.clone() };
        assert!(bare.validate().unwrap_err().to_string().contains("speed.frame_z"));
        assert!(bare.clone().fit_frame_z(&[1.0, 2.0], &[0.0, 1.0]).unwrap().frame_z.is_some());
        // Other fusions carry no frame statistics.
        let max = SpeedCalibration { cue: SpeedCue { fusion: SpeedFusion::Max, ..cue }, frame_z: None, ..cal.clone() };
        assert_eq!(max.clone().fit_frame_z(&[1.0], &[1.0]).unwrap().frame_z, None);
    }
}
