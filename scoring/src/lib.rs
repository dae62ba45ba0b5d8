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

mod appearance;
mod calibration;
mod causal;
mod error;
mod metrics;
mod offline;
mod pooling;
mod smoothing;
pub mod speed;
mod visual;

pub use appearance::*;
pub(crate) use calibration::mean_std;
pub use calibration::*;
pub use causal::*;
pub use error::*;
pub use metrics::*;
pub(crate) use offline::check_weights;
pub use offline::*;
pub(crate) use pooling::check_frame_pair;
pub use pooling::*;
pub(crate) use smoothing::half_gaussian;
pub use smoothing::*;
pub use speed::{speed_map, speed_map_with, FrameZ, SpeedCalibration, SpeedCue, SpeedFusion, SpeedKernel};
pub use visual::*;

#[cfg(test)]
mod tests;
