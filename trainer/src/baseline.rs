//! Predictors without a network, scored exactly as `sfn-train eval` scores a model: floors a trained
//! model has to clear, and diagnostics of what the prediction-error signal holds at a given size.
//!
//! - [`copy_last`]: next frame = last frame (the floor a residual head starts from).
//! - [`LocalLinear`]: next frame = last frame + a k x k linear filter over the last `n` frames, fitted
//!   by least squares on normal footage: the best a predictor that only sees a small neighbourhood can
//!   do, so it explains slow (normal) motion and fails on fast motion.

use crate::data::INPUT_FRAMES;
use sfn_models::scoring::{self, ErrorPooling, OfflineScoring, RegionStats};

use crate::data::{Clip, Dataset};
use crate::TrainerError;

/// Predicts frame `t` of a clip from the frames before it: `C*H*W` values.
pub trait Predictor {
    fn predict(&self, clip: &Clip, t: usize) -> Vec<f32>;
}

/// I_hat_t = I_{t-1}.
pub struct CopyLast;

impl Predictor for CopyLast {
    fn predict(&self, clip: &Clip, t: usize) -> Vec<f32> {
        clip.frames[t - 1].clone()
    }
}

/// [`CopyLast`] as a value.
pub fn copy_last() -> CopyLast {
    CopyLast
}

/// I_hat_t(p) = I_{t-1}(p) + b + sum_{j<n, |d|<=k/2} w_{j,d} I_{t-n+j}(p + d) (gray frames, edges clamped).
#[derive(Clone, Debug)]
pub struct LocalLinear {
    pub kernel: usize,
    pub frames: usize,
    pub height: usize,
    pub width: usize,
    /// `frames * kernel * kernel` weights then the bias.
    pub weights: Vec<f64>,
}

impl LocalLinear {
    fn features(&self, clip: &Clip, t: usize, y: usize, x: usize, out: &mut Vec<f64>) {
        out.clear();
        let r = (self.kernel / 2) as isize;
        for j in 0..self.frames {
            let f = &clip.frames[t - self.frames + j];
            for dy in -r..=r {
                let yy = (y as isize + dy).clamp(0, self.height as isize - 1) as usize;
                for dx in -r..=r {
                    let xx = (x as isize + dx).clamp(0, self.width as isize - 1) as usize;
                    out.push(f64::from(f[yy * self.width + xx]));
                }
            }
        }
        out.push(1.0);
    }

    /// Least-squares fit (ridge 1e-6) on every `step`-th frame and pixel (both ways) of `train`, target
    /// I_t - I_{t-1}. Errors: colour frames, clips too short, a singular system.
    pub fn fit(train: &Dataset, kernel: usize, frames: usize, step: usize) -> Result<LocalLinear, TrainerError> {
        let fmt = &train.format;
        if fmt.channels != 1 {
            return Err(TrainerError::Usage(format!("local linear baseline: gray frames only, got {} channels", fmt.channels)));
        }
        if kernel.is_multiple_of(2) || frames == 0 || frames > 4 {
            return Err(TrainerError::Usage(format!("local linear baseline: odd kernel and 1..=4 frames, got {kernel} and {frames}")));
        }
        let mut m = LocalLinear { kernel, frames, height: fmt.height, width: fmt.width, weights: Vec::new() };
        let n = frames * kernel * kernel + 1;
        let (mut a, mut b) = (vec![0f64; n * n], vec![0f64; n]);
        let mut f = Vec::with_capacity(n);
        let step = step.max(1);
        for c in &train.clips {
            for t in (INPUT_FRAMES..c.frames.len()).step_by(step) {
                for y in (0..m.height).step_by(step) {
                    for x in (0..m.width).step_by(step) {
                        m.features(c, t, y, x, &mut f);
                        let p = y * m.width + x;
                        let target = f64::from(c.frames[t][p] - c.frames[t - 1][p]);
                        for i in 0..n {
                            b[i] += f[i] * target;
                            for j in i..n {
                                a[i * n + j] += f[i] * f[j];
                            }
                        }
                    }
                }
            }
        }
        for i in 0..n {
            for j in 0..i {
                a[i * n + j] = a[j * n + i];
            }
            a[i * n + i] += 1e-6 * a[i * n + i].max(1.0);
        }
        m.weights = solve(a, b, n).ok_or_else(|| TrainerError::Usage("local linear baseline: singular normal equations".into()))?;
        Ok(m)
    }
}

impl Predictor for LocalLinear {
    fn predict(&self, clip: &Clip, t: usize) -> Vec<f32> {
        let mut f = Vec::with_capacity(self.weights.len());
        let mut out = clip.frames[t - 1].clone();
        for y in 0..self.height {
            for x in 0..self.width {
                self.features(clip, t, y, x, &mut f);
                let d: f64 = f.iter().zip(&self.weights).map(|(a, w)| a * w).sum();
                out[y * self.width + x] += d as f32;
            }
        }
        out
    }
}

/// Gaussian elimination with partial pivoting on a dense `n x n` system.
fn solve(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Option<Vec<f64>> {
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))?;
        if a[piv * n + col].abs() < 1e-300 {
            return None;
        }
        if piv != col {
            for k in 0..n {
                a.swap(col * n + k, piv * n + k);
            }
            b.swap(col, piv);
        }
        for i in col + 1..n {
            let r = a[i * n + col] / a[col * n + col];
            for k in col..n {
                a[i * n + k] -= r * a[col * n + k];
            }
            b[i] -= r * b[col];
        }
    }
    let mut x = vec![0f64; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| a[i * n + k] * x[k]).sum();
        x[i] = (b[i] - s) / a[i * n + i];
    }
    Some(x)
}

/// What [`score`] keeps of one predicted frame: its mean squared error (the frame-mean pooling) and
/// its box means at each window size asked for.
pub(crate) struct FrameErrors {
    pub(crate) mse: f32,
    pub(crate) boxes: Vec<Vec<f32>>,
}

/// `f(clip, t)` for the frames 4.. of every clip of `ds` (the frames `eval` scores): `[clip][frame]`.
pub(crate) fn each_scored_frame<T>(ds: &Dataset, f: impl Fn(&crate::data::Clip, usize) -> Result<T, TrainerError>) -> Result<Vec<Vec<T>>, TrainerError> {
    ds.clips.iter().map(|c| (INPUT_FRAMES..c.frames.len()).map(|t| f(c, t)).collect()).collect()
}

/// Predicts frames 4.. of every clip of `ds` (the frames `eval` scores) and keeps their errors.
pub(crate) fn frame_errors(p: &dyn Predictor, ds: &Dataset, windows: &[(usize, usize)]) -> Result<Vec<Vec<FrameErrors>>, TrainerError> {
    let f = &ds.format;
    each_scored_frame(ds, |c, t| {
        let map = scoring::error_map(&p.predict(c, t), &c.frames[t], f.channels, f.height, f.width)?;
        Ok(FrameErrors { mse: ErrorPooling::FrameMean.pool_map(&map, f.height, f.width, None)?, boxes: windows.iter().map(|&(w, s)| scoring::window_means(&map, f.height, f.width, w, s)).collect() })
    })
}

/// One pooling's figures: micro AUC of the offline (per-clip min-max, centred Gaussian) and causal
/// (z-score against the training footage, one-sided Gaussian sigma 3) scores, in [0, 1].
#[derive(Clone, Debug)]
pub struct BaselineAuc {
    pub pooling: ErrorPooling,
    pub offline: f64,
    pub causal: f64,
}

/// What [`score`] measures of a predictor.
#[derive(Clone, Debug)]
pub struct BaselineReport {
    /// Mean squared prediction error over frames 4.. of the training clips.
    pub train_mse: f64,
    /// One entry per pooling asked for, in order.
    pub aucs: Vec<BaselineAuc>,
}

/// Scores `p` on `test` (frames 4.. of each clip, as `eval` does) with each pooling; region
/// statistics and the causal constants come from `p`'s errors on `train`. Each frame is predicted
/// once; its error map is pooled every way asked for.
pub fn score(p: &dyn Predictor, train: &Dataset, test: &Dataset, labels: &std::collections::BTreeMap<String, Vec<u8>>, poolings: &[ErrorPooling]) -> Result<BaselineReport, TrainerError> {
    let (h, w) = (train.format.height, train.format.width);
    test.check_labels(labels)?;
    // The predictors' errors are pooled from the plain error map; poolings that also read frame t
    // (the change-weighted and relative ones) are not computed here.
    if let Some(p) = poolings.iter().find(|p| p.change_milli().is_some()) {
        return Err(TrainerError::Usage(format!("baseline scoring pools the plain error map; pooling {} needs frame t (use eval)", p.name())));
    }
    let mut windows: Vec<(usize, usize)> = poolings.iter().filter_map(ErrorPooling::window).collect();
    windows.sort_unstable();
    windows.dedup();
    let tr = frame_errors(p, train, &windows)?;
    let te = frame_errors(p, test, &windows)?;
    let n_train = tr.iter().map(Vec::len).sum::<usize>();
    let train_mse = tr.iter().flatten().map(|e| f64::from(e.mse)).sum::<f64>() / n_train.max(1) as f64;
    let mut aucs = Vec::new();
    for &pooling in poolings {
        let wi = pooling.window().and_then(|ws| windows.iter().position(|&x| x == ws));
        let regions = match (pooling, wi) {
            (ErrorPooling::WindowMaxZ { window, stride }, Some(i)) => {
                Some(RegionStats::fit(window, stride, scoring::box_grid(h, w, window, stride), tr.iter().flatten().map(|e| e.boxes[i].as_slice()))?)
            }
            _ => None,
        };
        let pool = |e: &FrameErrors| -> Result<f32, TrainerError> {
            Ok(match wi {
                None => e.mse,
                Some(i) => pooling.pool_boxes(&e.boxes[i], h, w, regions.as_ref())?,
            })
        };
        let train_errs = tr.iter().flatten().map(pool).collect::<Result<Vec<_>, _>>()?;
        let cal = scoring::CausalCalibration::fit(&train_errs, None, 3.0, 0.8, 0.2)?;
        let (mut off, mut causal, mut all_l) = (Vec::new(), Vec::new(), Vec::new());
        for (c, frames) in test.clips.iter().zip(&te) {
            let l = &labels[&c.name];
            let errs = frames.iter().map(pool).collect::<Result<Vec<_>, _>>()?;
            off.extend(scoring::offline_scores(&errs, None, &OfflineScoring::default()));
            causal.extend(scoring::causal_scores(&errs, None, &cal));
            all_l.extend_from_slice(&l[INPUT_FRAMES..]);
        }
        aucs.push(BaselineAuc { pooling, offline: scoring::roc_auc(&off, &all_l).unwrap_or(f64::NAN), causal: scoring::roc_auc(&causal, &all_l).unwrap_or(f64::NAN) });
    }
    Ok(BaselineReport { train_mse, aucs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::FrameFormat;

    /// Clips of a texture that moves one pixel right per frame (wrapping), gray in [-1, 1].
    fn moving(h: usize, w: usize, clips: usize, len: usize) -> Dataset {
        let tex = |y: usize, x: usize| (((y * 7 + x * 13) % 11) as f32 / 5.0 - 1.0) * 0.5 + 0.1 * ((x * x + y) % 3) as f32;
        let clips = (0..clips)
            .map(|c| Clip { name: format!("{c:02}"), frames: (0..len).map(|t| (0..h * w).map(|p| tex(p / w + c, (p % w + w * 4 - t) % w)).collect()).collect(), paths: Vec::new() })
            .collect();
        Dataset { format: FrameFormat { height: h, width: w, channels: 1 }, clips }
    }

    #[test]
    fn solve_recovers_a_known_system() {
        // [[2, 1], [1, 3]] x = [3, 5] -> x = [0.8, 1.4]
        let x = solve(vec![2.0, 1.0, 1.0, 3.0], vec![3.0, 5.0], 2).unwrap();
        assert!((x[0] - 0.8).abs() < 1e-12 && (x[1] - 1.4).abs() < 1e-12, "{x:?}");
        assert!(solve(vec![1.0, 2.0, 2.0, 4.0], vec![1.0, 2.0], 2).is_none());
    }

    #[test]
    fn local_linear_learns_a_one_pixel_shift_that_copying_misses() {
        let ds = moving(12, 16, 2, 8);
        let ll = LocalLinear::fit(&ds, 3, 1, 1).unwrap();
        let mse = |p: &dyn Predictor| {
            let e = frame_errors(p, &ds, &[]).unwrap();
            e.iter().flatten().map(|f| f64::from(f.mse)).sum::<f64>() / e.iter().map(Vec::len).sum::<usize>() as f64
        };
        let (copy, lin) = (mse(&copy_last()), mse(&ll));
        assert!(copy > 0.01, "the texture moves: {copy}");
        // Inside the frame a 3x3 filter shifts exactly; only the clamped edge columns keep an error.
        assert!(lin < copy * 0.3, "local linear {lin} vs copy {copy}");
        let e = LocalLinear::fit(&ds, 2, 1, 1).unwrap_err().to_string();
        assert!(e.contains("odd kernel"), "{e}");
    }

    /// Poolings that read frame t besides the prediction are refused by name (the baselines pool the
    /// plain error map), before any frame is predicted.
    #[test]
    fn poolings_that_read_frame_t_are_refused() {
        let ds = moving(12, 16, 2, 8);
        let labels = ds.clips.iter().map(|c| (c.name.clone(), vec![0u8; c.frames.len()])).collect();
        for p in [ErrorPooling::ChangedWindowMax { window: 4, stride: 2, change_milli: 100 }, ErrorPooling::RelativeWindowMax { window: 4, stride: 2, change_milli: 100, floor_micro: 10, frames: 1 }] {
            let e = score(&copy_last(), &ds, &ds, &labels, &[ErrorPooling::FrameMean, p]).unwrap_err().to_string();
            assert!(e.contains(&p.name()) && e.contains("frame t"), "{e}");
        }
    }
}
