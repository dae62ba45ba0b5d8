//! Seeded initialisation: networks whose initial weights depend only on a seed and the variables' names.

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::init::NormalOrUniform;
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sfn_models::{SfnConfig, SfnVad};

use crate::TrainerError;

/// A freshly initialised model whose initial weights depend only on `seed` (and the config).
///
/// `SfnVad::init` draws from candle's CPU generator, which is unseeded (`Device::set_seed` is not
/// supported on the CPU), so two runs with the same settings would start from different weights. This
/// builds the same network through a [`VarBuilder`] backend that honours each variable's
/// [`Init`] hint (same distributions as candle) but draws from ChaCha8 seeded with `seed`, one
/// stream per variable name, so a variable's values do not depend on construction order.
pub fn seeded_init(cfg: &SfnConfig, seed: u64, dev: &Device) -> Result<(SfnVad, VarMap), TrainerError> {
    let (vb, vm) = seeded_var_builder(seed, dev);
    let model = SfnVad::new(cfg, vb)?;
    Ok((model, vm))
}

/// A [`VarBuilder`] whose new variables (kept in the returned [`VarMap`]) depend only on `seed` and
/// their names (see [`seeded_init`]).
pub fn seeded_var_builder(seed: u64, dev: &Device) -> (VarBuilder<'static>, VarMap) {
    let vm = VarMap::new();
    let backend: Box<dyn SimpleBackend> = Box::new(SeededInit { vars: vm.clone(), seed });
    (VarBuilder::from_backend(backend, DType::F32, dev.clone()), vm)
}

/// [`VarBuilder`] backend that creates variables in a [`VarMap`] from a seeded generator.
struct SeededInit {
    vars: VarMap,
    seed: u64,
}

impl SeededInit {
    /// Values for a new variable `name` of `shape` drawn as `init` asks.
    fn values(&self, shape: &Shape, name: &str, init: Init) -> Vec<f32> {
        // 64-bit FNV-1a of the name picks the stream.
        let stream = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(stream);
        let n = shape.elem_count();
        let mut uniform = |lo: f64, up: f64| -> Vec<f32> { (0..n).map(|_| (lo + (up - lo) * rng.random::<f64>()) as f32).collect() };
        match init {
            Init::Const(v) => vec![v as f32; n],
            Init::Uniform { lo, up } => uniform(lo, up),
            Init::Randn { mean, stdev } => normal(&mut rng, n, mean, stdev),
            Init::Kaiming { dist, fan, non_linearity } => {
                let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
                match dist {
                    NormalOrUniform::Uniform => {
                        let bound = 3f64.sqrt() * std;
                        uniform(-bound, bound)
                    }
                    NormalOrUniform::Normal => normal(&mut rng, n, 0.0, std),
                }
            }
        }
    }
}

/// `n` normal draws (Box-Muller).
fn normal(rng: &mut ChaCha8Rng, n: usize, mean: f64, std: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let (u1, u2) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
        let r = (-2.0 * u1.ln()).sqrt();
        let a = std::f64::consts::TAU * u2;
        out.push((mean + std * r * a.cos()) as f32);
        out.push((mean + std * r * a.sin()) as f32);
    }
    out.truncate(n);
    out
}

impl SimpleBackend for SeededInit {
    fn get(&self, shape: Shape, name: &str, init: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let mut data = self.vars.data().lock().map_err(|_| candle_core::Error::Msg("poisoned lock".into()))?;
        if let Some(var) = data.get(name) {
            if var.shape() != &shape {
                candle_core::bail!("shape mismatch on {name}: {shape:?} <> {:?}", var.shape());
            }
            return Ok(var.as_tensor().clone());
        }
        let values = Tensor::from_vec(self.values(&shape, name, init), shape, dev)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&values)?;
        let tensor = var.as_tensor().clone();
        data.insert(name.to_string(), var);
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("variable {name}: get_unchecked is not supported while initialising")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.vars.data().lock().is_ok_and(|d| d.contains_key(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(vm: &VarMap) -> std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)> {
        let data = vm.data().lock().unwrap();
        data.iter().map(|(k, v)| (k.clone(), (v.dims().to_vec(), v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()))).collect()
    }

    fn mean_std(v: &[f32]) -> (f64, f64) {
        let n = v.len() as f64;
        let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
        (m, var.sqrt())
    }

    #[test]
    fn seeded_init_is_reproducible_and_distributed_like_candle() {
        let (cfg, dev) = (SfnConfig::tiny(), Device::Cpu);
        let a = values(&seeded_init(&cfg, 5, &dev).unwrap().1);
        assert_eq!(a, values(&seeded_init(&cfg, 5, &dev).unwrap().1));
        let c = values(&seeded_init(&cfg, 6, &dev).unwrap().1);
        let reference = values(&SfnVad::init(&cfg, &dev).unwrap().1);
        // The same variables as candle's own initialisation, with the same shapes.
        assert_eq!(a.keys().collect::<Vec<_>>(), reference.keys().collect::<Vec<_>>());
        let mut compared = 0;
        for (name, (shape, want)) in &reference {
            let (got_shape, got) = &a[name];
            assert_eq!(got_shape, shape, "{name}");
            let (rm, rs) = mean_std(want);
            if want.len() == 1 {
                continue;
            }
            if rs == 0.0 {
                // Constant init: identical values, whatever the seed.
                assert_eq!(got, want, "{name}");
                assert_eq!(got, &c[name].1, "{name}");
                continue;
            }
            assert_ne!(got, &c[name].1, "{name}: the seed is not used");
            if want.len() >= 1000 {
                let (gm, gs) = mean_std(got);
                assert!((gs / rs - 1.0).abs() < 0.1, "{name}: std {gs} vs candle {rs}");
                assert!((gm - rm).abs() < 0.2 * rs, "{name}: mean {gm} vs candle {rm}");
                compared += 1;
            }
        }
        assert!(compared >= 5, "only {compared} large variables");
    }
}
