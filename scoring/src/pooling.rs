//! How a frame's squared-error map becomes one number, with per-region statistics of normal footage.

use crate::*;
use serde::{Deserialize, Serialize};

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
    /// e = max over boxes of the box's mean of (I_hat - I)^2 * min(1, |I_{t+1} - I_t| / c), c =
    /// `change_milli` / 1000 (pixels in [-1, 1], channels averaged): the `WindowMax` of the error
    /// weighted by how much the frame changed from the last input there, in full from a change of c
    /// on. The error a prediction makes after an object has left (its ghost, predicted from the frames
    /// it was still in) stops counting once the frame stops changing there. A weight rather than a
    /// cut, so a value a hair either side of c moves the score by as little (a cut flips pixels in or
    /// out on rounding differences of the frames' preprocessing).
    ChangedWindowMax { window: usize, stride: usize, change_milli: u16 },
    /// e = max over boxes of m_w / (k_w + f): m_w the box mean of `ChangedWindowMax`'s map, k_w the
    /// same of copying's (I_hat_{t+1} = I_t, under the same weight), f = `floor_micro` / 10^6. The
    /// network's error relative to what copying the last frame would have left there: a walker the
    /// network predicts well scores low however many walk, an object it predicts no better than
    /// copying scores high however small it is; f keeps boxes where nothing moves at 0. A
    /// `floor_micro` of 0 is fitted by calibration ([`fit_relative_floor`]) and scores nothing before.
    /// With `frames` n > 1 a frame's value is the minimum of its own and the n - 1 frames' before it
    /// in the clip ([`persist`]): the evidence must hold that long, so a one-frame spike does not count.
    RelativeWindowMax {
        window: usize,
        stride: usize,
        change_milli: u16,
        floor_micro: u32,
        #[serde(default = "one_frame", skip_serializing_if = "is_one_frame")]
        frames: u32,
    },
}

impl std::str::FromStr for ErrorPooling {
    type Err = String;

    /// The inverse of [`ErrorPooling::name`]: `frame_mean`, `window_max_<W>s<S>`, `window_max_z_<W>s<S>`,
    /// `changed_window_max_<W>s<S>_c<C>`, `relative_window_max_<W>s<S>_c<C>_f<F>_t<N>` (without `_f<F>`:
    /// the floor to be fitted by calibration; without `_t<N>`: one frame).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?}: expected frame_mean, window_max_<W>s<S>, window_max_z_<W>s<S>, changed_window_max_<W>s<S>_c<C> or relative_window_max_<W>s<S>_c<C>_f<F> (e.g. window_max_z_16s8, changed_window_max_32s16_c100, relative_window_max_32s16_c100_f3829)"
            )
        };
        if s == "frame_mean" {
            return Ok(ErrorPooling::FrameMean);
        }
        if let Some(rest) = s.strip_prefix("relative_window_max_") {
            let (rest, frames) = match rest.rsplit_once("_t") {
                Some((rest, n)) => (rest, n.parse().ok().filter(|n: &u32| (1..=MAX_PERSIST_FRAMES).contains(n)).ok_or_else(bad)?),
                None => (rest, 1),
            };
            let (changed, floor_micro) = match rest.rsplit_once("_f") {
                Some((changed, floor)) => (changed, floor.parse().ok().filter(|&f: &u32| f > 0).ok_or_else(bad)?),
                None => (rest, 0),
            };
            let ErrorPooling::ChangedWindowMax { window, stride, change_milli } = format!("changed_window_max_{changed}").parse::<ErrorPooling>().map_err(|_| bad())? else { return Err(bad()) };
            return Ok(ErrorPooling::RelativeWindowMax { window, stride, change_milli, floor_micro, frames });
        }
        if let Some(rest) = s.strip_prefix("changed_window_max_") {
            let (geometry, change) = rest.split_once("_c").ok_or_else(bad)?;
            let change_milli: u16 = change.parse().ok().filter(|&c| c > 0).ok_or_else(bad)?;
            let ErrorPooling::WindowMax { window, stride } = format!("window_max_{geometry}").parse::<ErrorPooling>().map_err(|_| bad())? else { return Err(bad()) };
            return Ok(ErrorPooling::ChangedWindowMax { window, stride, change_milli });
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

/// 1 / c for a full-weight change of c = `change_milli` / 1000 (pixel units, [-1, 1]): what the
/// change is multiplied by (one f32 product, the same in candle and here).
pub fn change_scale(change_milli: u16) -> f32 {
    1000.0 / f32::from(change_milli.max(1))
}

/// [`error_map`] weighted by how much the frame changed: each pixel's error times min(1, m * [`change_scale`]),
/// m the channel mean of |target - last|. Errors name the field.
pub fn changed_error_map(pred: &[f32], target: &[f32], last: &[f32], channels: usize, height: usize, width: usize, change_milli: u16) -> Result<Vec<f32>, ScoringError> {
    let plane = check_frame_pair([("target", target), ("last", last)], channels, height, width)?;
    let mut map = error_map(pred, target, channels, height, width)?;
    let scale = change_scale(change_milli);
    if channels == 1 {
        // The channel mean is the pixel itself: one pass, no buffer (the same products as below).
        for ((m, t), l) in map.iter_mut().zip(target).zip(last) {
            *m *= ((t - l).abs() * scale).min(1.0);
        }
        return Ok(map);
    }
    let mut change = vec![0f32; plane];
    for c in 0..channels {
        for (d, (t, l)) in change.iter_mut().zip(target[c * plane..(c + 1) * plane].iter().zip(&last[c * plane..(c + 1) * plane])) {
            *d += (t - l).abs();
        }
    }
    let inv_c = 1.0 / channels as f32;
    for (m, d) in map.iter_mut().zip(&change) {
        *m *= (d * inv_c * scale).min(1.0);
    }
    Ok(map)
}

/// The map of [`ErrorPooling::RelativeWindowMax`]: [`changed_error_map`] of `pred`, then that of
/// copying (`last` as the prediction), one plane each. On one channel both planes in one pass, each
/// pixel's weight computed once (the same products as [`changed_error_map`]: the error's 0 + x and
/// x * 1 of the channel mean are exact). Errors name the field.
pub fn relative_error_map(pred: &[f32], target: &[f32], last: &[f32], channels: usize, height: usize, width: usize, change_milli: u16) -> Result<Vec<f32>, ScoringError> {
    if channels != 1 {
        let mut map = changed_error_map(pred, target, last, channels, height, width, change_milli)?;
        map.extend(changed_error_map(last, target, last, channels, height, width, change_milli)?);
        return Ok(map);
    }
    let plane = check_frame_pair([("pred", pred), ("target", target)], channels, height, width)?;
    check_frame_pair([("target", target), ("last", last)], channels, height, width)?;
    let scale = change_scale(change_milli);
    let mut map = vec![0f32; 2 * plane];
    let (net, copy) = map.split_at_mut(plane);
    for ((((n, k), &p), &t), &l) in net.iter_mut().zip(copy.iter_mut()).zip(pred).zip(target).zip(last) {
        let w = ((t - l).abs() * scale).min(1.0);
        *n = (p - t) * (p - t) * w;
        *k = (l - t) * (l - t) * w;
    }
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

/// The most frames [`ErrorPooling::RelativeWindowMax`]'s value may be asked to hold.
pub const MAX_PERSIST_FRAMES: u32 = 16;

fn one_frame() -> u32 {
    1
}

fn is_one_frame(n: &u32) -> bool {
    *n == 1
}

/// y_t = min(x_t-n+1, ..., x_t) over one clip's stream, the window clipped at the clip's start: a
/// value counts only as far as it held for `frames` = n consecutive frames. A value that is not finite
/// is passed on as it is (the causal scorer counts it) and does not enter its successors' minimum.
pub fn persist(stream: &[f32], frames: usize) -> Vec<f32> {
    let mut history = PooledHistory::new(frames);
    stream.iter().map(|&x| history.push(x)).collect()
}

/// The last `frames - 1` pooled values of a clip, for [`persist`] one frame at a time (a camera's
/// stream); [`PooledHistory::clear`] where the frames stop being consecutive.
#[derive(Clone, Debug, Default)]
pub struct PooledHistory {
    frames: usize,
    recent: std::collections::VecDeque<f32>,
}

impl PooledHistory {
    pub fn new(frames: usize) -> Self {
        Self { frames: frames.max(1), recent: std::collections::VecDeque::new() }
    }

    /// min of `x` and the finite values kept; then keeps `x` (when finite) among the last
    /// `frames - 1`.
    pub fn push(&mut self, x: f32) -> f32 {
        if !x.is_finite() {
            return x;
        }
        let y = self.recent.iter().copied().fold(x, f32::min);
        if self.frames > 1 {
            if self.recent.len() == self.frames - 1 {
                self.recent.pop_front();
            }
            self.recent.push_back(x);
        }
        y
    }

    /// Forgets the values kept (a new clip, or a gap in the frames).
    pub fn clear(&mut self) {
        self.recent.clear();
    }
}

/// The percentile of copying's box errors on normal footage that [`fit_relative_floor`] takes.
pub const RELATIVE_FLOOR_PERCENTILE: f64 = 90.0;

/// The floor of [`ErrorPooling::RelativeWindowMax`] in millionths: the [`RELATIVE_FLOOR_PERCENTILE`]th
/// percentile (linear between the closest ranks) of copying's box errors `copy` (each box of each
/// frame of normal footage), rounded, at least 1. Errors: no values, a value that is not finite.
pub fn fit_relative_floor(copy: &[f32]) -> Result<u32, ScoringError> {
    if copy.is_empty() {
        return Err(ScoringError::Empty { what: "copying's box error" });
    }
    if let Some(i) = copy.iter().position(|v| !v.is_finite()) {
        return Err(ScoringError::NonFinite { what: "copying's box error", index: i, value: copy[i] });
    }
    let mut v: Vec<f64> = copy.iter().map(|&x| f64::from(x)).collect();
    v.sort_by(f64::total_cmp);
    let rank = RELATIVE_FLOOR_PERCENTILE / 100.0 * (v.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    let p = v[lo] + (v[hi] - v[lo]) * (rank - lo as f64);
    Ok(((p * 1e6).round() as u32).max(1))
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
        let std: Vec<f32> = sum
            .iter()
            .zip(&sq)
            .map(|(s, q)| {
                let m = s / n as f64;
                ((q / n as f64 - m * m).max(0.0)).sqrt() as f32
            })
            .collect();
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
    /// [`ErrorPooling::ChangedWindowMax`] needs frame t as well: use [`ErrorPooling::map`] and
    /// [`ErrorPooling::pool_map`].
    pub fn pool_with(&self, pred: &[f32], target: &[f32], channels: usize, height: usize, width: usize, regions: Option<&RegionStats>) -> Result<f32, ScoringError> {
        if self.change_milli().is_some() {
            return Err(ScoringError::BadShape { field: "last", reason: format!("pooling {} needs frame t (the last input) beside the prediction and the target", self.name()) });
        }
        let map = error_map(pred, target, channels, height, width)?;
        self.pool_map(&map, height, width, regions)
    }

    /// The map this pooling pools ([`ErrorPooling::planes`] planes of `height * width`): the
    /// squared-error map of `pred` against `target` ([`error_map`]), weighted by how much the frame
    /// changed from `last` for [`ErrorPooling::ChangedWindowMax`] ([`changed_error_map`]); for
    /// [`ErrorPooling::RelativeWindowMax`] that weighted map followed by copying's (`last` as the
    /// prediction). Frames are CHW.
    pub fn map(&self, pred: &[f32], target: &[f32], last: &[f32], channels: usize, height: usize, width: usize) -> Result<Vec<f32>, ScoringError> {
        match (self.change_milli(), self) {
            (Some(c), ErrorPooling::RelativeWindowMax { .. }) => relative_error_map(pred, target, last, channels, height, width, c),
            (Some(c), _) => changed_error_map(pred, target, last, channels, height, width, c),
            (None, _) => error_map(pred, target, channels, height, width),
        }
    }

    /// How many `height * width` planes [`ErrorPooling::map`] gives: 2 for the relative pooling (the
    /// network's and copying's weighted error), else 1.
    pub fn planes(&self) -> usize {
        if matches!(self, ErrorPooling::RelativeWindowMax { .. }) {
            2
        } else {
            1
        }
    }

    /// The full-weight change of the change-weighted poolings, in thousandths of a pixel unit.
    pub fn change_milli(&self) -> Option<u16> {
        match *self {
            ErrorPooling::ChangedWindowMax { change_milli, .. } | ErrorPooling::RelativeWindowMax { change_milli, .. } => Some(change_milli),
            _ => None,
        }
    }

    /// Checks that `map` is [`ErrorPooling::planes`] planes of `height * width` values (some) and
    /// returns the plane size; the error names the sizes.
    pub fn check_map(&self, map: &[f32], height: usize, width: usize) -> Result<usize, ScoringError> {
        let plane = height * width;
        if map.len() != self.planes() * plane || plane == 0 {
            return Err(ScoringError::BadShape { field: "error map", reason: format!("{} values for {} plane(s) of {height}x{width}", map.len(), self.planes()) });
        }
        Ok(plane)
    }

    /// How many consecutive frames a pooled value must hold ([`persist`]): 1 but for a relative pooling
    /// with `frames`.
    pub fn frames(&self) -> usize {
        match *self {
            ErrorPooling::RelativeWindowMax { frames, .. } => frames.max(1) as usize,
            _ => 1,
        }
    }

    /// The floor f of [`ErrorPooling::RelativeWindowMax`] (0 until calibration fits it).
    pub fn floor(&self) -> Option<f32> {
        match *self {
            ErrorPooling::RelativeWindowMax { floor_micro, .. } => Some(floor_micro as f32 * 1e-6),
            _ => None,
        }
    }

    /// This pooling with what calibration fits from footage cleared (the relative pooling's floor), so
    /// that refitting on other footage fits it anew; other poolings are returned as they are.
    pub fn unfitted(self) -> Self {
        match self {
            ErrorPooling::RelativeWindowMax { window, stride, change_milli, frames, .. } => ErrorPooling::RelativeWindowMax { window, stride, change_milli, floor_micro: 0, frames },
            p => p,
        }
    }

    /// Where the relative pooling's floor is still to be fitted: an error that says so (a ratio
    /// over a zero floor is noise over noise in boxes where nothing moves).
    pub fn check_fitted(&self) -> Result<(), ScoringError> {
        match self {
            ErrorPooling::RelativeWindowMax { floor_micro: 0, .. } => Err(ScoringError::BadParameter {
                name: "relative pooling floor",
                value: 0.0,
                reason: "not fitted yet: calibrate on normal footage (sfn-train calibrate, sfn-host calibrate) or give _f<F>",
            }),
            _ => Ok(()),
        }
    }

    /// The value of each box of a window pooling for one [`ErrorPooling::map`]: the box means
    /// ([`window_means`]), for the relative pooling m_w / (k_w + f) of the two planes' box means.
    /// `FrameMean` has no boxes and is an error here, as is a map of the wrong size.
    pub fn box_values(&self, map: &[f32], height: usize, width: usize) -> Result<Vec<f32>, ScoringError> {
        self.box_values_of_means(&self.plane_box_means(map, height, width)?)
    }

    /// The box means ([`window_means`]) of each plane of one [`ErrorPooling::map`], plane after plane.
    /// `FrameMean` has no boxes and is an error here, as is a map of the wrong size.
    pub fn plane_box_means(&self, map: &[f32], height: usize, width: usize) -> Result<Vec<f32>, ScoringError> {
        let plane = self.check_map(map, height, width)?;
        let Some((window, stride)) = self.window() else {
            return Err(ScoringError::BadShape { field: "error map", reason: "frame_mean pools the whole map, not boxes".into() });
        };
        Ok(map.chunks(plane).flat_map(|p| window_means(p, height, width, window, stride)).collect())
    }

    /// The box values from [`ErrorPooling::plane_box_means`]: the means themselves, for the relative
    /// pooling m_w / (k_w + f) of the two planes' (refused until its floor is fitted).
    pub fn box_values_of_means(&self, means: &[f32]) -> Result<Vec<f32>, ScoringError> {
        let Some(f) = self.floor() else { return Ok(means.to_vec()) };
        self.check_fitted()?;
        if !means.len().is_multiple_of(2) {
            return Err(ScoringError::BadShape { field: "relative box means", reason: format!("{} values, expected the two planes' box means", means.len()) });
        }
        let (m, k) = means.split_at(means.len() / 2);
        Ok(m.iter().zip(k).map(|(&m, &k)| m / (k + f)).collect())
    }

    /// Pools an error map ([`ErrorPooling::planes`] planes of `height * width` values).
    pub fn pool_map(&self, map: &[f32], height: usize, width: usize, regions: Option<&RegionStats>) -> Result<f32, ScoringError> {
        self.check_map(map, height, width)?;
        match self.window() {
            None => Ok((map.iter().map(|&v| f64::from(v)).sum::<f64>() / map.len() as f64) as f32),
            Some(_) => self.pool_boxes(&self.box_values(map, height, width)?, height, width, regions),
        }
    }

    /// Pools the box values of one `height` x `width` map at this pooling's window
    /// ([`ErrorPooling::box_values`]): their max, or for `WindowMaxZ` the max of their region z. For callers that compute the box
    /// means once and pool them several ways; `FrameMean` pools no boxes and is an error here.
    pub fn pool_boxes(&self, means: &[f32], height: usize, width: usize, regions: Option<&RegionStats>) -> Result<f32, ScoringError> {
        match *self {
            ErrorPooling::FrameMean => Err(ScoringError::BadShape { field: "box means", reason: "frame_mean pools the whole map, not boxes".into() }),
            ErrorPooling::WindowMax { .. } | ErrorPooling::ChangedWindowMax { .. } | ErrorPooling::RelativeWindowMax { .. } => Ok(means.iter().copied().fold(f32::NEG_INFINITY, f32::max)),
            ErrorPooling::WindowMaxZ { .. } => self.check_regions(regions, height, width)?.pool(means),
        }
    }

    /// The statistics for `WindowMaxZ` on a `height` x `width` map, checked against this pooling's
    /// geometry (cheap: it runs for every frame; [`RegionStats::validate`] checks the values once).
    pub fn check_regions<'a>(&self, regions: Option<&'a RegionStats>, height: usize, width: usize) -> Result<&'a RegionStats, ScoringError> {
        let ErrorPooling::WindowMaxZ { window, stride } = *self else {
            return Err(ScoringError::Regions(format!("pooling {} uses no region statistics", self.name())));
        };
        let r = regions.ok_or_else(|| ScoringError::Regions(format!("pooling {} needs the per-region statistics of normal footage (sfn-train calibrate)", self.name())))?;
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
            ErrorPooling::ChangedWindowMax { window, stride, change_milli } => format!("changed_window_max_{window}s{stride}_c{change_milli}"),
            ErrorPooling::RelativeWindowMax { window, stride, change_milli, floor_micro, frames } => {
                let floor = if *floor_micro == 0 { String::new() } else { format!("_f{floor_micro}") };
                let frames = if *frames == 1 { String::new() } else { format!("_t{frames}") };
                format!("relative_window_max_{window}s{stride}_c{change_milli}{floor}{frames}")
            }
        }
    }

    /// Box size and stride of the window poolings.
    pub fn window(&self) -> Option<(usize, usize)> {
        match *self {
            ErrorPooling::FrameMean => None,
            ErrorPooling::WindowMax { window, stride }
            | ErrorPooling::WindowMaxZ { window, stride }
            | ErrorPooling::ChangedWindowMax { window, stride, .. }
            | ErrorPooling::RelativeWindowMax { window, stride, .. } => Some((window, stride)),
        }
    }
}
