//! Adam with L2 weight decay (PyTorch `Adam(weight_decay=...)` semantics), with a state that can be
//! saved next to the weights so training resumes exactly.

use std::collections::HashMap;

use candle_core::{backprop::GradStore, DType, Result, Tensor, Var};
use serde::{Deserialize, Serialize};

/// Adam hyper-parameters (notes: lr 2e-4, betas 0.9/0.999, weight decay 1e-5).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self { lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 1e-5 }
    }
}

/// g' = g + wd * theta; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2; theta -= lr m_hat / (sqrt(v_hat) + eps).
pub struct Adam {
    pub cfg: AdamConfig,
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    pub step: u64,
}

impl Adam {
    /// Named variables, in a fixed (sorted) order.
    pub fn new(mut vars: Vec<(String, Var)>, cfg: AdamConfig) -> Result<Self> {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let m = vars.iter().map(|(_, v)| v.zeros_like()).collect::<Result<Vec<_>>>()?;
        let v = vars.iter().map(|(_, v)| v.zeros_like()).collect::<Result<Vec<_>>>()?;
        Ok(Self { cfg, vars, m, v, step: 0 })
    }

    /// Applies one update from the gradients of `loss`.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.step_with(&grads)
    }

    pub fn step_with(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let c = &self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.step as i32);
        let bc2 = 1.0 - c.beta2.powi(self.step as i32);
        for (i, (_, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            // Detached: gradients carry the op graph of this step; keeping it in m / v would chain
            // every step's graph to the next and grow memory without bound.
            let g = g.detach();
            let g = if c.weight_decay != 0.0 { (g + (var.as_tensor() * c.weight_decay)?)? } else { g.clone() };
            let m = ((&self.m[i] * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            let v = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let update = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + c.eps)?)?;
            var.set(&(var.as_tensor() - (update * c.lr)?)?)?;
            self.m[i] = m.detach();
            self.v[i] = v.detach();
        }
        Ok(())
    }

    /// Optimiser state as named tensors (`adam.m.<var>`, `adam.v.<var>`, `adam.step`).
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.vars.iter().enumerate() {
            out.insert(format!("adam.m.{name}"), self.m[i].clone());
            out.insert(format!("adam.v.{name}"), self.v[i].clone());
        }
        out.insert("adam.step".into(), Tensor::new(&[self.step as f64], self.m.first().map(|t| t.device()).unwrap_or(&candle_core::Device::Cpu))?.to_dtype(DType::F64)?);
        Ok(out)
    }

    /// Restores state saved by [`Adam::state`]; every tensor must be present with the right shape.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> std::result::Result<(), String> {
        for (i, (name, var)) in self.vars.iter().enumerate() {
            for (kind, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                *slot = saved(state, &format!("adam.{kind}.{name}"), var, "optimiser tensor", "")?;
            }
        }
        let step = state.get("adam.step").ok_or("missing optimiser tensor adam.step")?;
        let s: Vec<f64> = step.to_vec1().map_err(|e| format!("adam.step: {e}"))?;
        self.step = s.first().copied().unwrap_or(0.0) as u64;
        Ok(())
    }
}

/// The saved tensor `key` for `var`, which must be present with the variable's shape; errors name
/// it as `what` (and add `hint` when it is missing).
fn saved(state: &HashMap<String, Tensor>, key: &str, var: &Var, what: &str, hint: &str) -> std::result::Result<Tensor, String> {
    let t = state.get(key).ok_or_else(|| format!("missing {what} {key}{hint}"))?;
    if t.shape() != var.shape() {
        return Err(format!("{what} {key} has shape {:?}, variable has {:?}", t.shape(), var.shape()));
    }
    Ok(t.clone())
}

/// Exponential moving averages of the weights, one per decay d: a_d <- d a_d + (1 - d) theta after
/// every optimiser step (Polyak averaging), started at the initial weights. They only read the
/// weights, so the training trajectory is the same with or without them.
pub struct WeightAverages {
    decays: Vec<f64>,
    vars: Vec<(String, Var)>,
    /// `avgs[k][i]`: the average for `decays[k]` of `vars[i]`.
    avgs: Vec<Vec<Tensor>>,
}

impl WeightAverages {
    /// Averages of `vars` (sorted by name) for each decay, each in (0, 1).
    pub fn new(mut vars: Vec<(String, Var)>, decays: &[f64]) -> std::result::Result<Self, String> {
        if let Some(d) = decays.iter().find(|d| !(**d > 0.0 && **d < 1.0)) {
            return Err(format!("ema_decays: {d} is not in (0, 1)"));
        }
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let avgs = decays.iter().map(|_| vars.iter().map(|(_, v)| v.as_tensor().copy()).collect::<Result<Vec<_>>>()).collect::<Result<Vec<_>>>().map_err(|e| format!("ema_decays: {e}"))?;
        Ok(Self { decays: decays.to_vec(), vars, avgs })
    }

    /// One update from the current weights.
    pub fn update(&mut self) -> Result<()> {
        for (k, d) in self.decays.iter().enumerate() {
            for (i, (_, var)) in self.vars.iter().enumerate() {
                let a = ((&self.avgs[k][i] * *d)? + (var.as_tensor().detach() * (1.0 - *d))?)?;
                self.avgs[k][i] = a.detach();
            }
        }
        Ok(())
    }

    /// The file an average is written to beside the model, e.g. `ema-0.995.safetensors`.
    pub fn file_name(decay: f64) -> String {
        format!("ema-{decay}.safetensors")
    }

    /// (decay, named weights) of every average, in the model's variable names.
    pub fn weights(&self) -> Vec<(f64, HashMap<String, Tensor>)> {
        self.decays.iter().zip(&self.avgs).map(|(d, a)| (*d, self.vars.iter().zip(a).map(|((n, _), t)| (n.clone(), t.clone())).collect())).collect()
    }

    /// State as named tensors (`ema.<decay>.<var>`), saved with the optimiser's.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (d, w) in self.weights() {
            for (name, t) in w {
                out.insert(format!("ema.{d}.{name}"), t);
            }
        }
        out
    }

    /// Restores state saved by [`WeightAverages::state`]; every tensor must be present with the right shape.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> std::result::Result<(), String> {
        for (k, d) in self.decays.iter().enumerate() {
            for (i, (name, var)) in self.vars.iter().enumerate() {
                let hint = format!(" (was the run started without ema_decays {d}?)");
                self.avgs[k][i] = saved(state, &format!("ema.{d}.{name}"), var, "weight average", &hint)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn adam_matches_hand_computed_first_steps() -> Result<()> {
        // One scalar theta = 1, loss = theta^2 -> g = 2 theta. First Adam step moves by exactly lr.
        let var = Var::new(&[1f32], &Device::Cpu)?;
        let cfg = AdamConfig { lr: 0.1, weight_decay: 0.0, ..Default::default() };
        let mut opt = Adam::new(vec![("w".into(), var.clone())], cfg)?;
        opt.backward_step(&var.as_tensor().sqr()?.sum_all()?)?;
        let v: Vec<f32> = var.as_tensor().to_vec1()?;
        assert!((v[0] - 0.9).abs() < 1e-6, "{v:?}");
        // Second step, by hand: g1 = 2, g2 = 1.8
        let (b1, b2) = (0.9f64, 0.999f64);
        let m = b1 * (1.0 - b1) * 2.0 + (1.0 - b1) * 1.8;
        let vv = b2 * (1.0 - b2) * 4.0 + (1.0 - b2) * 1.8 * 1.8;
        let upd = (m / (1.0 - b1 * b1)) / ((vv / (1.0 - b2 * b2)).sqrt() + 1e-8);
        opt.backward_step(&var.as_tensor().sqr()?.sum_all()?)?;
        let v2: Vec<f32> = var.as_tensor().to_vec1()?;
        assert!((v2[0] as f64 - (0.9 - 0.1 * upd)).abs() < 1e-6, "{v2:?}");
        Ok(())
    }

    #[test]
    fn state_round_trips() -> Result<()> {
        let var = Var::new(&[1f32, 2.0], &Device::Cpu)?;
        let mut opt = Adam::new(vec![("w".into(), var.clone())], AdamConfig::default())?;
        opt.backward_step(&var.as_tensor().sqr()?.sum_all()?)?;
        let st = opt.state()?;
        let mut other = Adam::new(vec![("w".into(), var.clone())], AdamConfig::default())?;
        other.load_state(&st).unwrap();
        assert_eq!(other.step, 1);
        let a: Vec<f32> = other.m[0].to_vec1()?;
        let b: Vec<f32> = opt.m[0].to_vec1()?;
        assert_eq!(a, b);
        let mut broken = st.clone();
        broken.remove("adam.v.w");
        assert!(other.load_state(&broken).unwrap_err().contains("adam.v.w"));
        Ok(())
    }
    #[test]
    fn weight_averages_follow_their_definition_and_round_trip() -> Result<()> {
        let var = Var::new(&[1f32, 2.0], &Device::Cpu)?;
        let mut avg = WeightAverages::new(vec![("w".into(), var.clone())], &[0.5, 0.9]).unwrap();
        var.set(&Tensor::new(&[3f32, 4.0], &Device::Cpu)?)?;
        avg.update()?;
        var.set(&Tensor::new(&[5f32, 0.0], &Device::Cpu)?)?;
        avg.update()?;
        let w = avg.weights();
        // d = 0.5: (0.5 * 1 + 0.5 * 3) * 0.5 + 0.5 * 5 = 3.5; (0.5 * 2 + 0.5 * 4) * 0.5 + 0 = 1.5
        assert_eq!(w[0].0, 0.5);
        assert_eq!(w[0].1["w"].to_vec1::<f32>()?, vec![3.5, 1.5]);
        // d = 0.9: (0.9 + 0.3) * 0.9 + 0.5 = 1.58; (1.8 + 0.4) * 0.9 = 1.98
        let b = w[1].1["w"].to_vec1::<f32>()?;
        assert!((b[0] - 1.58).abs() < 1e-6 && (b[1] - 1.98).abs() < 1e-6, "{b:?}");
        assert_eq!(WeightAverages::file_name(0.995), "ema-0.995.safetensors");
        let st = avg.state();
        let mut other = WeightAverages::new(vec![("w".into(), var.clone())], &[0.5, 0.9]).unwrap();
        other.load_state(&st).unwrap();
        assert_eq!(other.weights()[1].1["w"].to_vec1::<f32>()?, b);
        let mut broken = st.clone();
        broken.remove("ema.0.9.w");
        assert!(other.load_state(&broken).unwrap_err().contains("ema.0.9.w"));
        assert!(WeightAverages::new(vec![("w".into(), var)], &[1.0]).err().unwrap().contains("ema_decays: 1"));
        Ok(())
    }
}
