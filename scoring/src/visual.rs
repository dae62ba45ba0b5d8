//! The visual error of one frame: the pooled prediction error, fused with the speed cue when the calibration has one.

use crate::*;

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
