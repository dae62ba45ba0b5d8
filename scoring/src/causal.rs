//! Frame-by-frame causal scoring: z-scores against the calibration, one-sided Gaussian smoothing.

use crate::*;

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
    /// The calibration's (mean, std) of the visual and the semantic error as stored, for [`CausalScorer::frame_z`].
    stored: [(f32, f32); 2],
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
        let sigma = if cal.sigma > 0.0 { cal.sigma.min(MAX_CAUSAL_SIGMA) } else { 0.0 };
        let len = if sigma > 0.0 { (3.0 * f64::from(sigma)).ceil() as usize + 1 } else { 1 };
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
            stored: [(cal.visual_mean, cal.visual_std), (cal.semantic_mean, cal.semantic_std)],
        }
    }

    /// The per-frame z-scores a score packet reports beside the smoothed score: `(x - mean) / std` in
    /// f32 with the calibration's stored constants, for the visual error and, given one, the semantic
    /// error (unsmoothed, unsanitised: a non-finite input gives a non-finite z).
    pub fn frame_z(&self, visual: f32, semantic: Option<f32>) -> (f32, Option<f32>) {
        let [(vm, vs), (sm, ss)] = self.stored;
        ((visual - vm) / vs, semantic.map(|s| (s - sm) / ss))
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
                (self.visual_weight * zv + self.semantic_weight * zs) / (self.visual_weight + self.semantic_weight)
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
        sanitize(x, &mut self.last_visual, self.visual_mean, &mut self.non_finite)
    }

    fn sanitize_semantic(&mut self, x: f32) -> f64 {
        sanitize(x, &mut self.last_semantic, self.semantic_mean, &mut self.non_finite)
    }
}

/// `x` if finite (remembered in `last`), else the last finite value of the stream or, before any,
/// `mean`; each replacement is counted.
fn sanitize(x: f32, last: &mut Option<f32>, mean: f64, non_finite: &mut u64) -> f64 {
    if x.is_finite() {
        *last = Some(x);
        f64::from(x)
    } else {
        *non_finite += 1;
        last.map_or(mean, f64::from)
    }
}

pub(crate) fn clamp_z(z: f64) -> f64 {
    z.clamp(-Z_CLAMP, Z_CLAMP)
}

/// Causal scores of one clip (a fresh [`CausalScorer`] fed frame by frame). Frame `i` uses
/// `semantic[i]` when the semantic slice has one, the visual error alone otherwise.
pub fn causal_scores(visual: &[f32], semantic: Option<&[f32]>, cal: &CausalCalibration) -> Vec<f32> {
    let mut scorer = CausalScorer::new(cal);
    visual.iter().enumerate().map(|(i, &v)| scorer.push(v, semantic.and_then(|s| s.get(i).copied()))).collect()
}
