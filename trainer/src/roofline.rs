//! One core's fp32 matrix-multiply rate, measured on this machine: the roofline the benchmarks divide
//! by to report efficiency (a constant would be wrong on another CPU, and was here).

use std::time::Instant;

use candle_core::{Device, Tensor};

/// FLOP/s of an `n` x `n` by `n` x `n` fp32 matmul (2 n^3 FLOP): the best of `reps` timed runs after
/// one warm-up. candle's CPU matmul uses as many threads as `RAYON_NUM_THREADS` says (read on every
/// call): a benchmark sets it to 1 in its own process first, for one core's rate.
pub fn sgemm_flops(n: usize, reps: usize) -> candle_core::Result<f64> {
    let a = Tensor::randn(0f32, 1f32, (n, n), &Device::Cpu)?;
    let b = Tensor::randn(0f32, 1f32, (n, n), &Device::Cpu)?;
    a.matmul(&b)?.sum_all()?.to_scalar::<f32>()?;
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let c = a.matmul(&b)?;
        // Read one value so the product is certainly computed.
        c.get(0)?.get(0)?.to_scalar::<f32>()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n as f64).powi(3) / best)
}

#[cfg(test)]
mod tests {
    #[test]
    fn measures_a_positive_finite_rate() {
        let f = super::sgemm_flops(64, 2).unwrap();
        assert!(f.is_finite() && f > 1e6, "{f}");
    }
}
