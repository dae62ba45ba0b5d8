//! Normalisation and temporal smoothing of score streams.

/// Min-max normalisation to `[0, 1]`.
///
/// The range is taken over the finite values. A constant input (or one with no finite value) maps its
/// finite values to 0. Non-finite values stay non-finite in spirit: NaN stays NaN, +inf becomes 1 and
/// -inf becomes 0 (unless the range is degenerate, then they become 0 as well).
pub fn min_max(x: &[f32]) -> Vec<f32> {
    let mut lo = f32::INFINITY;
    let mut hi = f32::NEG_INFINITY;
    for &v in x.iter().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let range = f64::from(hi) - f64::from(lo);
    if range <= 0.0 || !range.is_finite() {
        return x.iter().map(|v| if v.is_nan() { f32::NAN } else { 0.0 }).collect();
    }
    x.iter()
        .map(|&v| {
            if v.is_nan() {
                f32::NAN
            } else if v == f32::INFINITY {
                1.0
            } else if v == f32::NEG_INFINITY {
                0.0
            } else {
                ((f64::from(v) - f64::from(lo)) / range) as f32
            }
        })
        .collect()
}

/// Centred Gaussian smoothing over time.
///
/// Kernel `exp(-k^2 / (2 sigma^2))` for `|k| <= ceil(4 sigma)` (truncated at 4 sigma, and never wider
/// than the signal). **Edges:** instead of padding, each output is the weighted mean over the samples
/// that exist, i.e. the kernel is renormalised over the valid samples in its window; samples that are
/// NaN are treated the same way (skipped, the kernel renormalised over the rest), and an output whose
/// whole window is NaN is NaN. Hence a constant signal stays exactly constant, edges included.
/// `sigma <= 0` (or NaN) returns the input unchanged.
pub fn gaussian_smooth(x: &[f32], sigma: f32) -> Vec<f32> {
    if sigma.is_nan() || sigma <= 0.0 || x.len() < 2 {
        return x.to_vec();
    }
    let n = x.len();
    let radius = if sigma.is_finite() { ((4.0 * f64::from(sigma)).ceil() as usize).min(n - 1) } else { n - 1 };
    let kernel = half_gaussian(sigma, radius + 1);
    let mut out = Vec::with_capacity(n);
    for t in 0..n {
        let lo = t.saturating_sub(radius);
        let hi = (t + radius).min(n - 1);
        let (mut acc, mut wsum) = (0.0f64, 0.0f64);
        for (j, &v) in x.iter().enumerate().take(hi + 1).skip(lo) {
            if v.is_nan() {
                continue;
            }
            let w = kernel[t.abs_diff(j)];
            acc += w * f64::from(v);
            wsum += w;
        }
        out.push(if wsum > 0.0 { (acc / wsum) as f32 } else { f32::NAN });
    }
    out
}

/// `exp(-k^2 / (2 sigma^2))` for `k = 0..len`; an infinite sigma gives all ones.
pub(crate) fn half_gaussian(sigma: f32, len: usize) -> Vec<f64> {
    let s = f64::from(sigma);
    (0..len)
        .map(|k| {
            let k = k as f64;
            if k == 0.0 {
                1.0
            } else if s.is_finite() {
                (-k * k / (2.0 * s * s)).exp()
            } else {
                1.0
            }
        })
        .collect()
}
