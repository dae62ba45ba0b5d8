//! The visual error of one frame: the pooled prediction error, fused with the speed cue when the calibration has one.

use serde::{Deserialize, Serialize};

use crate::*;

/// What makes a frame's visual error: a pooling of the squared-error map (with its region statistics
/// for `WindowMaxZ`) and, optionally, the speed cue fused into it.
#[derive(Clone, Copy, Debug)]
pub struct VisualScoring<'a> {
    pub pooling: ErrorPooling,
    pub regions: Option<&'a RegionStats>,
    pub speed: Option<&'a SpeedCalibration>,
}

/// Which cue set a frame's visual error.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Cue {
    /// The network's prediction error.
    Prediction,
    /// The speed cue (block matching between the last input frame and the predicted one).
    Speed,
}

/// A pixel rectangle: left, top, width, height.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Region {
    /// This rectangle, given in a `from` = (width, height) frame, in a `to` frame of another size
    /// (rounded outwards, clipped to `to`).
    pub fn rescale(&self, from: (u32, u32), to: (u32, u32)) -> Region {
        let (sx, sy) = (f64::from(to.0) / f64::from(from.0.max(1)), f64::from(to.1) / f64::from(from.1.max(1)));
        let x0 = (f64::from(self.x) * sx).floor().min(f64::from(to.0)) as u32;
        let y0 = (f64::from(self.y) * sy).floor().min(f64::from(to.1)) as u32;
        let x1 = (f64::from(self.x + self.width) * sx).ceil().min(f64::from(to.0)) as u32;
        let y1 = (f64::from(self.y + self.height) * sy).ceil().min(f64::from(to.1)) as u32;
        Region { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }
    }

    /// Pixels this rectangle shares with `other`.
    pub fn overlap(&self, other: &Region) -> u64 {
        let w = (self.x + self.width).min(other.x + other.width).saturating_sub(self.x.max(other.x));
        let h = (self.y + self.height).min(other.y + other.height).saturating_sub(self.y.max(other.y));
        u64::from(w) * u64::from(h)
    }
}

/// A frame's visual error with where it comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VisualDetail {
    /// The visual error ([`VisualScoring::error`], the same value).
    pub error: f32,
    /// The cue that set it: with the max fusion the larger of the two, with the z-mean fusion the
    /// larger of the two terms; the prediction error without a speed cue.
    pub cue: Cue,
    /// The box of that cue with the highest score (box mean, or region z), in the model's frame
    /// coordinates; none for the frame-mean pooling.
    pub region: Option<Region>,
}

/// Box `k` of the `[rows, cols]` grid of `window` boxes at `stride` on a `height` x `width` frame.
fn box_region(k: usize, grid: [usize; 2], window: usize, stride: usize, height: usize, width: usize) -> Region {
    let (kh, kw) = (window.clamp(1, height.max(1)), window.clamp(1, width.max(1)));
    let s = stride.max(1);
    let (by, bx) = (k / grid[1].max(1), k % grid[1].max(1));
    Region { x: (bx * s) as u32, y: (by * s) as u32, width: kw as u32, height: kh as u32 }
}

/// The largest value, as the poolings take it (`fold(NEG_INFINITY, f32::max)`).
fn max(v: &[f32]) -> f32 {
    v.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

/// The first index of the largest value (NaN never wins).
fn argmax(v: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &x) in v.iter().enumerate() {
        if best.is_none_or(|(_, b)| x > b) && !x.is_nan() {
            best = Some((i, x));
        }
    }
    best.map(|(i, _)| i)
}

impl VisualScoring<'_> {
    /// The squared-error map of `pred` against `target` pooled with `pooling` (and `regions`), fused
    /// with the speed cue between `last` (frame t, the last input) and `target` (frame t+1) when there
    /// is one. Frames are CHW.
    pub fn error(&self, pred: &[f32], target: &[f32], last: &[f32], channels: usize, height: usize, width: usize) -> Result<f32, ScoringError> {
        Ok(self.explain(pred, target, last, channels, height, width)?.error)
    }

    /// [`VisualScoring::error`] with the cue that set it and that cue's highest-scoring box: what the
    /// camera draws on an alarm snapshot, at no extra inference.
    pub fn explain(&self, pred: &[f32], target: &[f32], last: &[f32], channels: usize, height: usize, width: usize) -> Result<VisualDetail, ScoringError> {
        self.explain_in(pred, target, last, channels, height, width, &mut PooledHistory::new(self.pooling.frames()))
    }

    /// [`VisualScoring::explain`] for a frame of a stream: a pooling that must hold over several
    /// frames ([`ErrorPooling::frames`]) takes the minimum with the pooled values of the frames before
    /// it in `history` (which then keeps this one). [`VisualScoring::explain`] is a clip's first frame.
    #[allow(clippy::too_many_arguments)]
    pub fn explain_in(&self, pred: &[f32], target: &[f32], last: &[f32], channels: usize, height: usize, width: usize, history: &mut PooledHistory) -> Result<VisualDetail, ScoringError> {
        let map = self.pooling.map(pred, target, last, channels, height, width)?;
        let (e, region) = match self.pooling.window() {
            None => (self.pooling.pool_map(&map, height, width, self.regions)?, None),
            Some((window, stride)) => {
                // The box scores once: their max is the pooled error (`pool_boxes`), their argmax the box.
                let means = self.pooling.box_values(&map, height, width)?;
                let scores = match self.pooling {
                    ErrorPooling::WindowMaxZ { .. } => self.pooling.check_regions(self.regions, height, width)?.box_scores(&means)?,
                    _ => means,
                };
                let grid = box_grid(height, width, window, stride);
                (max(&scores), argmax(&scores).map(|k| box_region(k, grid, window, stride, height, width)))
            }
        };
        let e = history.push(e);
        let Some(sp) = self.speed else { return Ok(VisualDetail { error: e, cue: Cue::Prediction, region }) };
        sp.check_geometry(height, width)?;
        let speed_scores = sp.regions.box_scores(&sp.cue.box_means(last, target, channels, height, width)?)?;
        // = `score_boxes`: the max of the region z-scores.
        let s = max(&speed_scores);
        let error = sp.fuse(e, s);
        let (pred_term, speed_term) = sp.terms(e, s);
        let speed_wins = speed_term > pred_term;
        if !speed_wins {
            return Ok(VisualDetail { error, cue: Cue::Prediction, region });
        }
        let region = argmax(&speed_scores).map(|k| box_region(k, sp.regions.grid, sp.cue.window, sp.cue.stride, height, width));
        Ok(VisualDetail { error, cue: Cue::Speed, region })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bright square moving 3 pixels right between the last frame and the next, on a flat frame;
    /// the prediction copies the last frame.
    fn scene(h: usize, w: usize, top: usize, left: usize) -> (Vec<f32>, Vec<f32>) {
        let square = |dx: usize| {
            let mut f = vec![-0.5f32; h * w];
            for y in top..top + 8 {
                for x in left + dx..left + dx + 8 {
                    f[y * w + x] = 0.8 - 0.05 * ((x + y) % 3) as f32;
                }
            }
            f
        };
        (square(0), square(3))
    }

    #[test]
    fn the_region_lies_on_what_moved_and_names_the_cue() {
        let (h, w) = (48, 64);
        let (last, next) = scene(h, w, 30, 40);
        let moved = Region { x: 40, y: 30, width: 11, height: 8 };
        // Prediction error alone (the copy misses the square's move), boxes of 16 at stride 8.
        let plain = VisualScoring { pooling: ErrorPooling::WindowMax { window: 16, stride: 8 }, regions: None, speed: None };
        let d = plain.explain(&last, &next, &last, 1, h, w).unwrap();
        assert_eq!(d.error, plain.pooling.pool(&last, &next, 1, h, w).unwrap(), "the same error as the pooling alone");
        assert_eq!(d.cue, Cue::Prediction);
        let r = d.region.unwrap();
        assert!(r.overlap(&moved) > 0 && (r.width, r.height) == (16, 16), "{r:?}");
        // With the speed cue weighted up it is the speed cue's box, on the square.
        let cue = SpeedCue { radius: 3, block: 6, window: 16, stride: 8, weight: 100.0, fusion: SpeedFusion::Max, margin: 0.0 };
        let grid = box_grid(h, w, 16, 8);
        let flat = vec![0.1f32; grid[0] * grid[1]];
        let sp = SpeedCalibration::fit(cue, h, w, [flat.as_slice(), &[0.2; 35][..grid[0] * grid[1]]]).unwrap();
        let fused = VisualScoring { speed: Some(&sp), ..plain };
        let d = fused.explain(&last, &next, &last, 1, h, w).unwrap();
        assert_eq!(d.error, fused.error(&last, &next, &last, 1, h, w).unwrap());
        assert_eq!(d.cue, Cue::Speed);
        assert!(d.region.unwrap().overlap(&moved) > 0, "{:?}", d.region);
        // The frame mean has no box.
        let mean = VisualScoring { pooling: ErrorPooling::FrameMean, regions: None, speed: None };
        assert_eq!(mean.explain(&last, &next, &last, 1, h, w).unwrap().region, None);
    }

    #[test]
    fn regions_rescale_to_the_source_frame() {
        let r = Region { x: 16, y: 8, width: 32, height: 32 };
        assert_eq!(r.rescale((192, 128), (360, 240)), Region { x: 30, y: 15, width: 60, height: 60 });
        // Clipped to the target frame.
        let edge = Region { x: 180, y: 120, width: 32, height: 32 };
        assert_eq!(edge.rescale((192, 128), (360, 240)), Region { x: 337, y: 225, width: 23, height: 15 });
        assert_eq!(r.overlap(&Region { x: 40, y: 30, width: 100, height: 100 }), 8 * 10);
    }
}
