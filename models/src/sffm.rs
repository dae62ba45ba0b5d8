//! SFFM — Sparse Feature Filtering Module: a Mixture-of-Experts of bottleneck filters that replaces
//! (no residual) each decoder layer's tokens, so features unlike normal training data are filtered out.

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{Init, VarBuilder};

use crate::config::{FilterKind, SffmConfig};
use crate::vit::{normalize_last, softmax_last, LayerNorm, Mlp};

/// A bank of n bottleneck experts, E_e(x) = W2_e SiLU(W1_e LN_e(x) + b1_e) + b2_e, stored stacked.
///
/// All experts share the normalisation statistics of x; only LN_e's affine part differs, which is
/// folded into W1_e so the whole bank runs as two matrix products. A gate of exactly zero makes an
/// expert's contribution and its gradients exactly zero.
#[derive(Clone, Debug)]
pub struct BottleneckExperts {
    ln_weight: Tensor,
    ln_bias: Tensor,
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
    n: usize,
    b: usize,
}

impl BottleneckExperts {
    pub fn new(n: usize, d: usize, b: usize, vb: VarBuilder) -> Result<Self> {
        let k1 = 1.0 / (d as f64).sqrt();
        let k2 = 1.0 / (b as f64).sqrt();
        Ok(Self {
            ln_weight: vb.get_with_hints((n, d), "ln_weight", Init::Const(1.0))?,
            ln_bias: vb.get_with_hints((n, d), "ln_bias", Init::Const(0.0))?,
            w1: vb.get_with_hints((n, b, d), "w1", Init::Uniform { lo: -k1, up: k1 })?,
            b1: vb.get_with_hints((n, b), "b1", Init::Uniform { lo: -k1, up: k1 })?,
            w2: vb.get_with_hints((n, d, b), "w2", Init::Uniform { lo: -k2, up: k2 })?,
            b2: vb.get_with_hints((n, d), "b2", Init::Uniform { lo: -k2, up: k2 })?,
            n,
            b,
        })
    }

    /// The bank as two plain matrices: W1_e (xhat * g_e + beta_e) + b1_e = (W1_e diag g_e) xhat + (W1_e beta_e + b1_e).
    ///
    /// The forward pass and the ONNX export both use this, so they compute the same numbers.
    pub fn folded(&self) -> Result<FoldedExperts> {
        fold_experts(&self.ln_weight, &self.ln_bias, &self.w1, &self.b1, &self.w2, &self.b2)
    }

    /// xhat [N, d] (already normalised), gates [N, n] or None (all gates 1) -> sum_e g_e E_e(x), [N, d].
    pub fn forward(&self, xhat: &Tensor, gates: Option<&Tensor>) -> Result<Tensor> {
        let (n, b) = (self.n, self.b);
        let tokens = xhat.dim(0)?;
        let f = self.folded()?;
        let h = xhat.matmul(&f.w1.t()?)?.broadcast_add(&f.b1)?.silu()?;
        let h = match gates {
            Some(g) => h.reshape((tokens, n, b))?.broadcast_mul(&g.unsqueeze(2)?)?.reshape((tokens, n * b))?,
            None => h,
        };
        let y = h.matmul(&f.w2.t()?)?;
        match gates {
            Some(g) => y + g.matmul(&self.b2)?,
            None => y.broadcast_add(&self.b2.sum(0)?),
        }
    }
}

/// An expert bank folded into plain matrices: h = SiLU(xhat W1^T + b1) [N, n b] (expert e at columns
/// e b..), y = (g ⊙ h) W2^T + g b2.
#[derive(Clone, Debug)]
pub struct FoldedExperts {
    /// [n b, d]
    pub w1: Tensor,
    /// [n b]
    pub b1: Tensor,
    /// [d, n b]
    pub w2: Tensor,
    /// [n, d]
    pub b2: Tensor,
}

/// Folds a bank stored as ln_weight/ln_bias [n, d], w1 [n, b, d], b1 [n, b], w2 [n, d, b], b2 [n, d].
pub fn fold_experts(ln_weight: &Tensor, ln_bias: &Tensor, w1: &Tensor, b1: &Tensor, w2: &Tensor, b2: &Tensor) -> Result<FoldedExperts> {
    let (n, b, d) = w1.dims3()?;
    let w1_eff = w1.broadcast_mul(&ln_weight.unsqueeze(1)?)?.reshape((n * b, d))?;
    let b1_eff = (w1.matmul(&ln_bias.unsqueeze(2)?)?.squeeze(2)? + b1)?.reshape(n * b)?;
    // w2[:, e b + j] = W2_e[:, j]
    let w2_cat = w2.permute((1, 0, 2))?.reshape((d, n * b))?;
    Ok(FoldedExperts { w1: w1_eff, b1: b1_eff, w2: w2_cat, b2: b2.clone() })
}

/// What one SFFM pass produces besides its output.
#[derive(Clone, Debug)]
pub struct Routing {
    /// Router probabilities over all routed experts, softmax(W_r x): [B, T, N].
    pub probs: Tensor,
    /// Indices of the top-k experts per token: [B, T, k] (u32).
    pub topk: Tensor,
    /// Gates g = scale * p_topk / sum(p_topk), zero for unrouted experts: [B, T, N].
    pub gates: Tensor,
    /// Sequence-level balance loss alpha * mean_b sum_i f_i P_i (scalar).
    pub balance_loss: Tensor,
}

/// SFFM: y = sum_{i in topk} g_i E_i(x) + sum_s E_s(x) — routed plus shared experts, no residual.
#[derive(Clone, Debug)]
pub struct Sffm {
    router: Tensor,
    routed: BottleneckExperts,
    shared: Option<BottleneckExperts>,
    cfg: SffmConfig,
}

impl Sffm {
    pub fn new(d: usize, cfg: &SffmConfig, vb: VarBuilder) -> Result<Self> {
        let k = 1.0 / (d as f64).sqrt();
        let router = vb.get_with_hints((cfg.routed_experts, d), "router", Init::Uniform { lo: -k, up: k })?;
        let routed = BottleneckExperts::new(cfg.routed_experts, d, cfg.bottleneck, vb.pp("routed"))?;
        let shared = if cfg.shared_experts > 0 { Some(BottleneckExperts::new(cfg.shared_experts, d, cfg.bottleneck, vb.pp("shared"))?) } else { None };
        Ok(Self { router, routed, shared, cfg: cfg.clone() })
    }

    /// Router: p = softmax(W_r x) over all N routed experts (bias-free, fp32), then top-k.
    pub fn route(&self, x: &Tensor) -> Result<Routing> {
        let (bsz, t, d) = x.dims3()?;
        let (n, k) = (self.cfg.routed_experts, self.cfg.top_k);
        let xf = x.reshape((bsz * t, d))?.to_dtype(DType::F32)?;
        let probs = softmax_last(&xf.matmul(&self.router.t()?)?)?;
        let topk = probs.arg_sort_last_dim(false)?.narrow(1, 0, k)?.contiguous()?;
        let w = probs.gather(&topk, 1)?;
        let w = (w.broadcast_div(&w.sum_keepdim(1)?)? * self.cfg.gate_scale)?;
        let experts = Tensor::arange(0u32, n as u32, x.device())?.reshape((1, 1, n))?;
        let onehot = topk.unsqueeze(2)?.broadcast_eq(&experts)?.to_dtype(DType::F32)?; // [BT, k, N]
        let gates = w.unsqueeze(2)?.broadcast_mul(&onehot)?.sum(1)?; // [BT, N]
                                                                     // Balance: f_i = count_i N / (T k) (a constant), P_i = mean_t p_ti, per sample.
        let counts = onehot.sum(1)?.reshape((bsz, t, n))?.sum(1)?;
        let f = (counts * (n as f64 / (t * k) as f64))?;
        let p_mean = probs.reshape((bsz, t, n))?.mean(1)?;
        let balance_loss = ((f * p_mean)?.sum(1)?.mean(0)? * self.cfg.balance_alpha)?;
        Ok(Routing { probs: probs.reshape((bsz, t, n))?, topk: topk.reshape((bsz, t, k))?, gates: gates.reshape((bsz, t, n))?, balance_loss })
    }

    /// x [B, T, d] -> (y [B, T, d], routing).
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Routing)> {
        let (bsz, t, d) = x.dims3()?;
        let routing = self.route(x)?;
        let xhat = normalize_last(&x.reshape((bsz * t, d))?, 1e-5)?;
        let gates = routing.gates.reshape((bsz * t, self.cfg.routed_experts))?;
        let mut y = self.routed.forward(&xhat, Some(&gates))?;
        if let Some(shared) = &self.shared {
            y = (y + shared.forward(&xhat, None)?)?;
        }
        Ok((y.reshape((bsz, t, d))?, routing))
    }
}

/// Prototype memory (MemAE): y = w M, w = renorm(shrink(softmax(LN(x) M^T / sqrt(d)))), with
/// shrink(w) = relu(w - 1/S) w / (|w - 1/S| + eps) over the S items of M [S, d]; no residual.
#[derive(Clone, Debug)]
pub struct Memory {
    ln: LayerNorm,
    items: Tensor,
}

/// Denominator guard of the memory's hard shrinkage and renormalisation.
pub const MEMORY_EPS: f64 = 1e-12;

impl Memory {
    pub fn new(d: usize, slots: usize, vb: VarBuilder) -> Result<Self> {
        let bound = 1.0 / (d as f64).sqrt();
        let items = vb.get_with_hints((slots, d), "items", candle_nn::Init::Uniform { lo: -bound, up: bound })?;
        Ok(Self { ln: LayerNorm::new(d, vb.pp("ln"))?, items })
    }

    /// x [B, T, d] -> memory read [B, T, d].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let s = self.items.dim(0)?;
        let xhat = self.ln.forward(x)?.reshape((b * t, d))?;
        let logits = (xhat.matmul(&self.items.t()?)? * (1.0 / (d as f64).sqrt()))?;
        let w = softmax_last(&logits)?;
        let lambda = 1.0 / s as f64;
        let shifted = (&w - lambda)?;
        let w = ((shifted.relu()? * &w)? / (shifted.abs()? + MEMORY_EPS)?)?;
        let w = w.broadcast_div(&(w.sum_keepdim(1)? + MEMORY_EPS)?)?;
        w.matmul(&self.items)?.reshape((b, t, d))
    }
}

/// The filter after each decoder block: the SFFM, or (comparisons) a dense MLP or a prototype
/// memory, all without residual.
#[derive(Clone, Debug)]
pub enum Filter {
    Sffm(Sffm),
    Mlp { ln: LayerNorm, mlp: Mlp },
    Memory(Memory),
}

impl Filter {
    pub fn new(d: usize, mlp_ratio: usize, cfg: &SffmConfig, vb: VarBuilder) -> Result<Self> {
        Ok(match cfg.kind {
            FilterKind::Sffm => Filter::Sffm(Sffm::new(d, cfg, vb)?),
            FilterKind::Mlp => Filter::Mlp { ln: LayerNorm::new(d, vb.pp("ln"))?, mlp: Mlp::new(d, d * mlp_ratio, d, vb.pp("mlp"))? },
            FilterKind::Memory => Filter::Memory(Memory::new(d, cfg.memory_slots, vb.pp("memory"))?),
        })
    }

    /// x [B, T, d] -> (filtered x, routing if SFFM).
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Option<Routing>)> {
        match self {
            Filter::Sffm(s) => s.forward(x).map(|(y, r)| (y, Some(r))),
            Filter::Mlp { ln, mlp } => Ok((mlp.forward(&ln.forward(x)?)?, None)),
            Filter::Memory(m) => Ok((m.forward(x)?, None)),
        }
    }
}

/// Number of experts that received a non-zero gate per token: [B, T] (for tests and diagnostics).
pub fn active_experts(gates: &Tensor) -> Result<Tensor> {
    gates.ne(0f32)?.to_dtype(DType::F32)?.sum(D::Minus1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use candle_nn::VarMap;

    fn cfg(n: usize, k: usize, shared: usize) -> SffmConfig {
        SffmConfig { kind: FilterKind::Sffm, routed_experts: n, shared_experts: shared, top_k: k, bottleneck: 3, gate_scale: 2.0, balance_alpha: 0.001, memory_slots: 16 }
    }

    #[test]
    fn exactly_k_experts_and_gates_sum_to_scale() -> Result<()> {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let s = Sffm::new(16, &cfg(8, 3, 1), vb)?;
        let x = Tensor::randn(0f32, 1.0, (2, 10, 16), &dev)?;
        let (y, r) = s.forward(&x)?;
        assert_eq!(y.dims(), &[2, 10, 16]);
        let active: Vec<f32> = active_experts(&r.gates)?.flatten_all()?.to_vec1()?;
        assert!(active.iter().all(|&a| a == 3.0), "{active:?}");
        let sums: Vec<f32> = r.gates.sum(D::Minus1)?.flatten_all()?.to_vec1()?;
        assert!(sums.iter().all(|s| (s - 2.0).abs() < 1e-5), "{sums:?}");
        // The chosen experts are the k most probable ones.
        let probs: Vec<Vec<f32>> = r.probs.reshape((20, 8))?.to_vec2()?;
        let gates: Vec<Vec<f32>> = r.gates.reshape((20, 8))?.to_vec2()?;
        for (p, g) in probs.iter().zip(&gates) {
            let min_routed = p.iter().zip(g).filter(|(_, g)| **g != 0.0).map(|(p, _)| *p).fold(f32::MAX, f32::min);
            let max_unrouted = p.iter().zip(g).filter(|(_, g)| **g == 0.0).map(|(p, _)| *p).fold(f32::MIN, f32::max);
            assert!(min_routed >= max_unrouted);
        }
        Ok(())
    }

    #[test]
    fn balance_loss_matches_hand_computation() -> Result<()> {
        // One sample, T = 2 tokens, N = 3 experts, k = 1, alpha = 0.001. The router is set so that
        // logits are [ln 2, 0, 0] for token 0 and [0, ln 4, ln 2] for token 1 (x is one-hot).
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let mut c = cfg(3, 1, 0);
        c.bottleneck = 2;
        let s = Sffm::new(2, &c, vb)?;
        let l2 = 2f32.ln();
        let l4 = 4f32.ln();
        let router = Tensor::new(&[[l2, 0.0], [0.0, l4], [0.0, l2]], &dev)?;
        // Var::set writes in place: the SFFM's router tensor shares that storage.
        vm.data().lock().unwrap().get("router").unwrap().set(&router)?;
        let x = Tensor::new(&[[[1f32, 0.0], [0.0, 1.0]]], &dev)?;
        let r = s.route(&x)?;
        // token 0: p = [2,1,1]/4 -> expert 0; token 1: p = [1,4,2]/7 -> expert 1.
        // counts = [1,1,0] -> f = count * 3 / (2*1) = [1.5, 1.5, 0]
        // P = mean p = [(0.5 + 1/7)/2, (0.25 + 4/7)/2, (0.25 + 2/7)/2]
        let p0 = (0.5 + 1.0 / 7.0) / 2.0;
        let p1 = (0.25 + 4.0 / 7.0) / 2.0;
        let expected = 0.001 * (1.5 * p0 + 1.5 * p1);
        let got = r.balance_loss.to_scalar::<f32>()? as f64;
        assert!((got - expected).abs() < 1e-7, "got {got}, expected {expected}");
        let topk: Vec<u32> = r.topk.flatten_all()?.to_vec1()?;
        assert_eq!(topk, vec![0, 1]);
        Ok(())
    }

    #[test]
    fn gradients_reach_routed_experts_only() -> Result<()> {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let n = 12;
        let s = Sffm::new(8, &cfg(n, 2, 1), vb)?;
        // Few tokens so that some experts stay unrouted.
        let x = Tensor::randn(0f32, 1.0, (1, 3, 8), &dev)?;
        let (y, r) = s.forward(&x)?;
        let loss = (y.sqr()?.sum_all()? + &r.balance_loss)?;
        let grads = loss.backward()?;
        let routed: Vec<bool> = {
            let g: Vec<Vec<f32>> = r.gates.reshape((3, n))?.to_vec2()?;
            (0..n).map(|e| g.iter().any(|row| row[e] != 0.0)).collect()
        };
        assert!(routed.iter().any(|&r| r) && routed.iter().any(|&r| !r), "{routed:?}");
        let vars = vm.data().lock().unwrap();
        for name in ["routed.w1", "routed.b1", "routed.w2", "routed.b2", "routed.ln_weight", "routed.ln_bias"] {
            let v: &Var = vars.get(name).unwrap();
            let g = grads.get(v.as_tensor()).unwrap_or_else(|| panic!("no grad for {name}"));
            for (e, &is_routed) in routed.iter().enumerate() {
                let norm = g.get(e)?.abs()?.sum_all()?.to_scalar::<f32>()?;
                if is_routed {
                    assert!(norm > 0.0, "{name} expert {e} routed but got no gradient");
                } else {
                    assert_eq!(norm, 0.0, "{name} expert {e} unrouted but got gradient");
                }
            }
        }
        for name in ["router", "shared.w1", "shared.w2", "shared.b1", "shared.b2", "shared.ln_weight"] {
            let v = vars.get(name).unwrap();
            let g = grads.get(v.as_tensor()).unwrap_or_else(|| panic!("no grad for {name}"));
            assert!(g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0, "{name}");
        }
        Ok(())
    }

    #[test]
    fn expert_bank_equals_per_expert_computation() -> Result<()> {
        // The folded computation equals LN_e -> Linear -> SiLU -> Linear done expert by expert.
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let bank = BottleneckExperts::new(3, 6, 2, vb)?;
        // Make the LN affine non-trivial.
        let bank = BottleneckExperts { ln_weight: Tensor::randn(1f32, 0.3, (3, 6), &dev)?, ln_bias: Tensor::randn(0f32, 0.3, (3, 6), &dev)?, ..bank };
        let x = Tensor::randn(0f32, 1.0, (5, 6), &dev)?;
        let xhat = normalize_last(&x, 1e-5)?;
        let gates = Tensor::new(&[[0.5f32, 0.0, 1.5]], &dev)?.broadcast_as((5, 3))?.contiguous()?;
        let fast = bank.forward(&xhat, Some(&gates))?;
        let mut slow = Tensor::zeros((5, 6), DType::F32, &dev)?;
        for (e, g) in [(0usize, 0.5f64), (2, 1.5)] {
            let ln = xhat.broadcast_mul(&bank.ln_weight.get(e)?)?.broadcast_add(&bank.ln_bias.get(e)?)?;
            let h = ln.matmul(&bank.w1.get(e)?.t()?)?.broadcast_add(&bank.b1.get(e)?)?.silu()?;
            let o = h.matmul(&bank.w2.get(e)?.t()?)?.broadcast_add(&bank.b2.get(e)?)?;
            slow = (slow + (o * g)?)?;
        }
        let diff = (fast - slow)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "{diff}");
        Ok(())
    }
}
