//! The appearance cue's inputs: the boxes of a frame where something moves, each described by how it
//! looks and how it moves, and how a frame's box errors become one score. What scores each box (a
//! network trained on normal footage) lives outside this crate; this part runs on the camera too.

use serde::{Deserialize, Serialize};

use crate::*;

/// Which boxes of a frame pair are described, and how. The boxes are the pooling's grid (`window` x
/// `window` at `stride`); a box moves when at least `min_share` of its pixels change by more than
/// `threshold` (any channel) between frame t and frame t+1. A box is described by frame t+1's crop
/// and the frame difference I_{t+1} - I_t over the box, each averaged over `pool` x `pool` pixels.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AppearanceBoxes {
    pub window: usize,
    pub stride: usize,
    pub pool: usize,
    pub threshold: f32,
    pub min_share: f32,
}

impl Default for AppearanceBoxes {
    /// 32x32 boxes at stride 16 (the pooling's), 2x2 averaging (16x16 per plane), a pixel moves by
    /// more than 0.1 (eval's moving-pixel threshold), a box moves when a tenth of it does.
    fn default() -> Self {
        Self { window: 32, stride: 16, pool: 2, threshold: 0.1, min_share: 0.1 }
    }
}

/// One moving box: its index in the box grid (row-major) and its descriptor.
#[derive(Clone, Debug, PartialEq)]
pub struct BoxDescriptor {
    pub index: usize,
    pub values: Vec<f32>,
}

impl AppearanceBoxes {
    /// Refuses sizes that do not tile (`pool` must divide `window`) and thresholds out of range.
    pub fn validate(&self) -> Result<(), ScoringError> {
        let bad = |name: &'static str, value: f32, reason: &'static str| Err(ScoringError::BadParameter { name, value, reason });
        if self.window == 0 || self.stride == 0 || self.pool == 0 || !self.window.is_multiple_of(self.pool) {
            return bad("appearance.window", self.window as f32, "window, stride and pool must be > 0 and pool must divide window");
        }
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            return bad("appearance.threshold", self.threshold, "must be finite and >= 0");
        }
        if !(self.min_share.is_finite() && (0.0..=1.0).contains(&self.min_share)) {
            return bad("appearance.min_share", self.min_share, "must be in [0, 1]");
        }
        Ok(())
    }

    /// Length of a descriptor: 2 planes per channel (crop, difference) of (window / pool)^2 values.
    pub fn dim(&self, channels: usize) -> usize {
        let side = self.window / self.pool.max(1);
        2 * channels * side * side
    }

    /// The box grid on a `height` x `width` frame ([`box_grid`]).
    pub fn grid(&self, height: usize, width: usize) -> [usize; 2] {
        box_grid(height, width, self.window, self.stride)
    }

    /// The moving boxes of the frame pair `last` (I_t) and `next` (I_{t+1}), CHW, each with its
    /// descriptor: `channels` planes of `next`'s crop averaged over `pool` x `pool`, then `channels`
    /// planes of `next - last` averaged the same way. Frames smaller than a box are refused.
    pub fn describe(&self, last: &[f32], next: &[f32], channels: usize, height: usize, width: usize) -> Result<Vec<BoxDescriptor>, ScoringError> {
        self.validate()?;
        check_frame_pair([("last", last), ("next", next)], channels, height, width)?;
        if height < self.window || width < self.window {
            return Err(ScoringError::BadParameter { name: "appearance.window", value: self.window as f32, reason: "larger than the frame" });
        }
        let plane = height * width;
        // Which pixels move (any channel), as a prefix-summed count for the boxes' shares.
        let mut moving = vec![0u32; (height + 1) * (width + 1)];
        for y in 0..height {
            let mut row = 0u32;
            for x in 0..width {
                let p = y * width + x;
                row += u32::from((0..channels).any(|c| (next[c * plane + p] - last[c * plane + p]).abs() > self.threshold));
                moving[(y + 1) * (width + 1) + x + 1] = moving[y * (width + 1) + x + 1] + row;
            }
        }
        let count = |y0: usize, x0: usize, n: usize| {
            let at = |y: usize, x: usize| moving[y * (width + 1) + x];
            at(y0 + n, x0 + n) + at(y0, x0) - at(y0, x0 + n) - at(y0 + n, x0)
        };
        let [rows, cols] = self.grid(height, width);
        let (n, p) = (self.window, self.pool);
        let side = n / p;
        let need = self.min_share * (n * n) as f32;
        let norm = 1.0 / (p * p) as f32;
        let mut out = Vec::new();
        for by in 0..rows {
            for bx in 0..cols {
                let (y0, x0) = (by * self.stride, bx * self.stride);
                let moved = count(y0, x0, n);
                if moved == 0 || (moved as f32) < need {
                    continue;
                }
                let mut values = vec![0f32; self.dim(channels)];
                for c in 0..channels {
                    let (crop, diff) = values.split_at_mut(channels * side * side);
                    let (crop, diff) = (&mut crop[c * side * side..(c + 1) * side * side], &mut diff[c * side * side..(c + 1) * side * side]);
                    for y in 0..n {
                        let row = c * plane + (y0 + y) * width + x0;
                        for x in 0..n {
                            let k = (y / p) * side + x / p;
                            crop[k] += next[row + x];
                            diff[k] += next[row + x] - last[row + x];
                        }
                    }
                    for v in crop.iter_mut().chain(diff.iter_mut()) {
                        *v *= norm;
                    }
                }
                out.push(BoxDescriptor { index: by * cols + bx, values });
            }
        }
        Ok(out)
    }
}

/// A frame's appearance error: the largest of its moving boxes' errors, 0 when nothing moves (a
/// still frame looks like the normal footage's still frames).
pub fn appearance_frame_error(box_errors: &[f32]) -> f32 {
    box_errors.iter().copied().fold(0.0f32, f32::max)
}

/// The appearance cue as it joins the visual error: its frame-level mean and std on normal footage,
/// and its weight in the mean of z-scores.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct AppearanceZ {
    pub mean: f32,
    pub std: f32,
    pub weight: f32,
}

impl AppearanceZ {
    /// Mean and std of a normal footage's frame errors, weight 1.
    pub fn fit(frame_errors: &[f32]) -> Result<Self, ScoringError> {
        let (mean, std) = mean_std(frame_errors, "appearance error")?;
        Ok(Self { mean, std, weight: 1.0 })
    }

    /// Refuses a mean or std that is not finite, a std <= 0 and a weight that is not finite and >= 0.
    pub fn validate(&self) -> Result<(), ScoringError> {
        if !(self.mean.is_finite() && self.std.is_finite() && self.std > 0.0) {
            return Err(ScoringError::BadParameter { name: "z", value: if self.mean.is_finite() { self.std } else { self.mean }, reason: "needs a finite mean and a finite std > 0" });
        }
        if !(self.weight.is_finite() && self.weight >= 0.0) {
            return Err(ScoringError::BadParameter { name: "z.weight", value: self.weight, reason: "must be finite and >= 0" });
        }
        Ok(())
    }

    /// (k v + w z_a) / (k + w): a visual error `v` that already is a mean of `k` z-scored cues (2 for
    /// the network's error and the speed cue fused by z-mean with weight 1, 1 for one z-scored cue)
    /// joined by this cue's z-score with weight w.
    pub fn join(&self, visual: f32, cues: f32, appearance: f32) -> f32 {
        (cues * visual + self.weight * (appearance - self.mean) / self.std) / (cues + self.weight)
    }
}

/// The appearance cue folded into a calibration's visual error on the camera: which boxes are
/// described, the cue's z constants, and how the visual error is z-scored before the join.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AppearanceJoin {
    pub boxes: AppearanceBoxes,
    pub z: AppearanceZ,
    /// How many z-scored cues the visual error already averages (1 + lambda for a z fusion with the
    /// speed cue, else 1).
    pub cues: f32,
    /// Mean and std that z-score the visual error before the join ([0, 1] where it already is a
    /// mean of z-scores).
    pub visual: [f32; 2],
}

impl AppearanceJoin {
    /// The join for a visual error fused with `speed` (None: no speed cue) whose values on the
    /// calibration footage are `visual_errors`: a z fusion's error joins as it is with 1 + lambda
    /// cues; any other is z-scored on that footage first and counts as one cue.
    pub fn new(boxes: AppearanceBoxes, z: AppearanceZ, speed: Option<&crate::SpeedCalibration>, visual_errors: &[f32]) -> Result<Self, ScoringError> {
        boxes.validate()?;
        z.validate()?;
        let zmean = speed.filter(|sp| sp.cue.fusion.uses_frame_z() && sp.frame_z.is_some());
        let (cues, visual) = match zmean {
            Some(sp) => (1.0 + sp.cue.weight, [0.0, 1.0]),
            None => {
                let (m, s) = mean_std(visual_errors, "visual")?;
                (1.0, [m, s])
            }
        };
        Ok(Self { boxes, z, cues, visual })
    }

    /// Refuses settings a camera could not score with (names the field).
    pub fn validate(&self) -> Result<(), ScoringError> {
        self.boxes.validate()?;
        self.z.validate()?;
        if !(self.cues.is_finite() && self.cues > 0.0) {
            return Err(ScoringError::BadParameter { name: "appearance.cues", value: self.cues, reason: "must be finite and > 0" });
        }
        if !(self.visual.iter().all(|v| v.is_finite()) && self.visual[1] > 0.0) {
            return Err(ScoringError::BadParameter { name: "appearance.visual", value: self.visual[1], reason: "needs a finite mean and a finite std > 0" });
        }
        Ok(())
    }

    /// (k (v - m) / s + w z_a) / (k + w) ([`AppearanceZ::join`]) for a frame's visual error `v` and
    /// appearance error `appearance` ([`appearance_frame_error`]).
    pub fn join(&self, visual: f32, appearance: f32) -> f32 {
        self.z.join((visual - self.visual[0]) / self.visual[1], self.cues, appearance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_moving_boxes_are_described_with_crop_and_difference() {
        let (h, w) = (64, 64);
        let last = vec![0.0f32; h * w];
        let mut next = last.clone();
        // A 12x12 bright square at (y 4, x 36): 144 moving pixels, inside boxes (0, 1) and (0, 2) of a
        // 3x3 grid of 32-pixel boxes at stride 16, and more than a tenth (102.4) of each.
        for y in 4..16 {
            for x in 36..48 {
                next[y * w + x] = 1.0;
            }
        }
        let b = AppearanceBoxes::default();
        assert_eq!(b.grid(h, w), [3, 3]);
        let d = b.describe(&last, &next, 1, h, w).unwrap();
        assert_eq!(d.iter().map(|d| d.index).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(d[0].values.len(), b.dim(1));
        assert_eq!(b.dim(1), 512);
        // Box 1 starts at x 16: the square covers its pooled cells (y 2..8, x 10..16) fully; the
        // difference plane equals the crop here (last is 0).
        let v = &d[0].values;
        assert_eq!(v[2 * 16 + 10], 1.0);
        assert_eq!(v[2 * 16 + 9], 0.0);
        assert_eq!(v[256 + 2 * 16 + 10], 1.0);
        assert_eq!(v.iter().sum::<f32>(), 2.0 * 144.0 / 4.0);
        // A still pair has no box; a box with fewer moving pixels than its share neither.
        assert!(b.describe(&last, &last, 1, h, w).unwrap().is_empty());
        let strict = AppearanceBoxes { min_share: 0.2, ..b };
        assert!(strict.describe(&last, &next, 1, h, w).unwrap().is_empty());
    }

    #[test]
    fn bad_settings_and_frames_are_refused() {
        let b = AppearanceBoxes { pool: 3, ..AppearanceBoxes::default() };
        assert!(b.validate().unwrap_err().to_string().contains("appearance.window"));
        let b = AppearanceBoxes { min_share: 1.5, ..AppearanceBoxes::default() };
        assert!(b.validate().unwrap_err().to_string().contains("appearance.min_share"));
        let f = vec![0.0f32; 16 * 16];
        assert!(AppearanceBoxes::default().describe(&f, &f, 1, 16, 16).unwrap_err().to_string().contains("larger than the frame"));
        assert!(AppearanceBoxes::default().describe(&f, &f[..10], 1, 16, 16).is_err());
    }

    #[test]
    fn frame_error_and_join() {
        assert_eq!(appearance_frame_error(&[]), 0.0);
        assert_eq!(appearance_frame_error(&[0.5, 2.0, 1.0]), 2.0);
        let z = AppearanceZ { mean: 1.0, std: 2.0, weight: 1.0 };
        z.validate().unwrap();
        assert!(AppearanceZ { std: 0.0, ..z }.validate().is_err());
        assert!(AppearanceZ { weight: -1.0, ..z }.validate().is_err());
        // A visual error that is the mean of two z-scores (0.5) and an appearance z of 1.5: mean of three.
        assert!((z.join(0.5, 2.0, 4.0) - (2.0 * 0.5 + 1.5) / 3.0).abs() < 1e-6);
    }

    #[test]
    fn join_z_scores_the_visual_error_unless_it_is_a_z_mean() {
        let z = AppearanceZ { mean: 1.0, std: 2.0, weight: 1.0 };
        // No speed cue: the visual error is z-scored on the calibration footage (mean 2, std 1).
        let j = AppearanceJoin::new(AppearanceBoxes::default(), z, None, &[1.0, 3.0]).unwrap();
        assert_eq!((j.cues, j.visual), (1.0, [2.0, 1.0]));
        // visual 4 -> z 2, appearance 5 -> z 2: mean 2.
        assert!((j.join(4.0, 5.0) - 2.0).abs() < 1e-6);
        j.validate().unwrap();
        assert!(AppearanceJoin { cues: 0.0, ..j }.validate().unwrap_err().to_string().contains("appearance.cues"));
        assert!(AppearanceJoin { visual: [0.0, 0.0], ..j }.validate().unwrap_err().to_string().contains("appearance.visual"));
        // A calibration fitted with the join describes the joined error.
        let settings = crate::CalibrationSettings { pooling: crate::ErrorPooling::FrameMean, sigma: 0.0, visual_weight: 1.0, semantic_weight: 0.0, speed: None };
        let errors = vec![vec![1.0], vec![3.0]];
        let cal = crate::fit_calibration_joined(settings, 4, 4, &errors, &[], &[], None, Some((AppearanceBoxes::default(), z, &[1.0, 1.0]))).unwrap();
        let joined = cal.appearance.unwrap();
        assert_eq!(joined, j);
        assert!((cal.visual_mean - 0.0).abs() < 1e-6 && (cal.visual_std - 0.5).abs() < 1e-6);
        let short = crate::fit_calibration_joined(settings, 4, 4, &errors, &[], &[], None, Some((AppearanceBoxes::default(), z, &[1.0])));
        assert!(short.unwrap_err().to_string().contains("appearance errors"));
    }
}
