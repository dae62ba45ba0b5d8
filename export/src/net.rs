//! The network-level ops of the ONNX export (linear, norms, attention, ViT blocks, SFFM, memory,
//! the local warp), each mirroring the candle code of `sfn-models` it replaces, on a checkpoint's
//! named weights.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use sfn_models::config::{SffmConfig, VitConfig};
use sfn_models::SfnConfig;

use crate::onnx::{attr_i, attr_ints, attr_s, attr_t, GraphBuilder};
use crate::ExportError;
use tract_onnx::pb;

/// Named weights of a checkpoint.
pub struct Weights<'a> {
    map: &'a HashMap<String, Tensor>,
}

impl<'a> Weights<'a> {
    pub fn new(map: &'a HashMap<String, Tensor>) -> Self {
        Weights { map }
    }

    pub(crate) fn tensor(&self, name: &str) -> Result<&Tensor, ExportError> {
        self.map.get(name).ok_or_else(|| ExportError::Weights { name: name.into(), reason: "missing from the checkpoint".into() })
    }

    /// Flat f32 values of `name`, checking its shape.
    pub(crate) fn get(&self, name: &str, dims: &[usize]) -> Result<Vec<f32>, ExportError> {
        let t = self.tensor(name)?;
        if t.dims() != dims {
            return Err(ExportError::Weights { name: name.into(), reason: format!("shape {:?}, config expects {dims:?}", t.dims()) });
        }
        to_vec(t, name)
    }

    /// A Linear's weight [out, in] transposed to [in, out], and its bias.
    pub(crate) fn linear(&self, prefix: &str, fan_in: usize, fan_out: usize) -> Result<(Vec<f32>, Vec<f32>), ExportError> {
        let w = self.tensor(&format!("{prefix}.weight"))?;
        if w.dims() != [fan_out, fan_in] {
            return Err(ExportError::Weights { name: format!("{prefix}.weight"), reason: format!("shape {:?}, config expects [{fan_out}, {fan_in}]", w.dims()) });
        }
        let wt = w.t().and_then(|t| t.contiguous()).map_err(|e| ExportError::candle(prefix, e))?;
        Ok((to_vec(&wt, prefix)?, self.get(&format!("{prefix}.bias"), &[fan_out])?))
    }
}

pub(crate) fn to_vec(t: &Tensor, name: &str) -> Result<Vec<f32>, ExportError> {
    t.flatten_all().and_then(|t| t.to_dtype(candle_core::DType::F32)).and_then(|t| t.to_vec1::<f32>()).map_err(|e| ExportError::candle(name, e))
}

pub(crate) fn sincos(gh: usize, gw: usize, dim: usize) -> Result<Vec<f32>, ExportError> {
    let t = sfn_models::vit::sincos_2d(gh, gw, dim, &Device::Cpu).map_err(|e| ExportError::candle("sincos_2d", e))?;
    to_vec(&t, "sincos_2d")
}

/// Builder plus the weights and config: the network-level ops.
pub(crate) struct Net<'a> {
    pub(crate) g: GraphBuilder,
    pub(crate) w: &'a Weights<'a>,
}

impl Net<'_> {
    pub(crate) fn linear(&mut self, prefix: &str, x: &str, fan_in: usize, fan_out: usize) -> Result<String, ExportError> {
        let (w, b) = self.w.linear(prefix, fan_in, fan_out)?;
        Ok(self.g.matmul_const(prefix, x, &w, fan_in, fan_out, Some(&b)))
    }

    /// (x - mean) / sqrt(var + eps) over the last axis.
    pub(crate) fn normalize(&mut self, x: &str) -> String {
        let mean = self.g.node("ReduceMean", &[x], vec![attr_ints("axes", &[-1]), attr_i("keepdims", 1)]);
        let xc = self.g.node("Sub", &[x, &mean], vec![]);
        let sq = self.g.node("Mul", &[&xc, &xc], vec![]);
        let var = self.g.node("ReduceMean", &[&sq], vec![attr_ints("axes", &[-1]), attr_i("keepdims", 1)]);
        let eps = self.g.scalar(1e-5);
        let ve = self.g.node("Add", &[&var, &eps], vec![]);
        let sd = self.g.node("Sqrt", &[&ve], vec![]);
        self.g.node("Div", &[&xc, &sd], vec![])
    }

    /// LayerNorm: normalize * gamma + beta.
    pub(crate) fn layer_norm(&mut self, prefix: &str, x: &str, dim: usize) -> Result<String, ExportError> {
        let gamma = self.w.get(&format!("{prefix}.weight"), &[dim])?;
        let beta = self.w.get(&format!("{prefix}.bias"), &[dim])?;
        let y = self.normalize(x);
        let gn = self.g.init_f32(&format!("{prefix}.weight"), &[dim], &gamma);
        let bn = self.g.init_f32(&format!("{prefix}.bias"), &[dim], &beta);
        let y = self.g.node("Mul", &[&y, &gn], vec![]);
        Ok(self.g.node("Add", &[&y, &bn], vec![]))
    }

    pub(crate) fn gelu(&mut self, x: &str) -> String {
        let inv_sqrt2 = self.g.scalar(std::f32::consts::FRAC_1_SQRT_2);
        let half = self.g.scalar(0.5);
        let one = self.g.scalar(1.0);
        let s = self.g.node("Mul", &[x, &inv_sqrt2], vec![]);
        let e = self.g.node("Erf", &[&s], vec![]);
        let e1 = self.g.node("Add", &[&e, &one], vec![]);
        let xh = self.g.node("Mul", &[x, &half], vec![]);
        self.g.node("Mul", &[&xh, &e1], vec![])
    }

    pub(crate) fn silu(&mut self, x: &str) -> String {
        let s = self.g.node("Sigmoid", &[x], vec![]);
        self.g.node("Mul", &[x, &s], vec![])
    }

    pub(crate) fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let s = self.g.ints(shape);
        self.g.node("Reshape", &[x, &s], vec![])
    }

    pub(crate) fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        self.g.node("Transpose", &[x], vec![attr_ints("perm", perm)])
    }

    /// SpaceToDepth_s of [B, c, h, w] as candle's `space_to_depth` orders it (channel c s^2 + i s + j
    /// holds pixel (s y + i, s x + j) of plane c); the identity for s = 1.
    pub(crate) fn space_to_depth(&mut self, x: &str, c: usize, h: usize, w: usize, s: usize) -> String {
        if s == 1 {
            return x.to_string();
        }
        let (c, h, w, s) = (c as i64, h as i64, w as i64, s as i64);
        let t = self.reshape(x, &[0, c, h / s, s, w / s, s]);
        let t = self.transpose(&t, &[0, 1, 3, 5, 2, 4]);
        self.reshape(&t, &[0, c * s * s, h / s, w / s])
    }

    /// DepthToSpace_s, the inverse of [`Net::space_to_depth`]: [B, c s^2, h / s, w / s] -> [B, c, h, w].
    pub(crate) fn depth_to_space(&mut self, x: &str, c: usize, h: usize, w: usize, s: usize) -> String {
        if s == 1 {
            return x.to_string();
        }
        let (c, h, w, s) = (c as i64, h as i64, w as i64, s as i64);
        let t = self.reshape(x, &[0, c, s, s, h / s, w / s]);
        let t = self.transpose(&t, &[0, 1, 4, 2, 5, 3]);
        self.reshape(&t, &[0, c, h, w])
    }

    /// `sfn_models::mjad::local_warp`: the last frame [B, c, h, w], its border repeated r times, taken
    /// at each of the (2r + 1)^2 shifts, weighted by the softmax of the shift logits [B, (2r + 1)^2,
    /// h, w] plus the prior on the zero shift, and summed over the shifts.
    pub(crate) fn local_warp(&mut self, last: &str, logits: &str, h: usize, w: usize, r: usize) -> String {
        let k = sfn_models::mjad::warp_shifts(r);
        let (r, h, w) = (r as i64, h as i64, w as i64);
        let pads = self.g.ints(&[0, 0, r, r, 0, 0, r, r]);
        let padded = self.g.node("Pad", &[last, &pads], vec![attr_s("mode", "edge")]);
        let (axes, ax1, ax2) = (self.g.ints(&[2, 3]), self.g.ints(&[1]), self.g.ints(&[2]));
        let mut shifted = Vec::with_capacity(k);
        for oy in 0..2 * r + 1 {
            for ox in 0..2 * r + 1 {
                let (st, en) = (self.g.ints(&[oy, ox]), self.g.ints(&[oy + h, ox + w]));
                let x = self.g.node("Slice", &[&padded, &st, &en, &axes], vec![]);
                shifted.push(self.g.node("Unsqueeze", &[&x, &ax1], vec![]));
            }
        }
        let refs: Vec<&str> = shifted.iter().map(String::as_str).collect();
        let shifted = self.g.node("Concat", &refs, vec![attr_i("axis", 1)]);
        let mut prior = vec![0f32; k];
        prior[k / 2] = sfn_models::mjad::WARP_PRIOR;
        let prior = self.g.init_f32("decoder.frame_head.warp_prior", &[1, k, 1, 1], &prior);
        let l = self.g.node("Add", &[logits, &prior], vec![]);
        let weights = self.g.node("Softmax", &[&l], vec![attr_i("axis", 1)]);
        let weights = self.g.node("Unsqueeze", &[&weights, &ax2], vec![]);
        let m = self.g.node("Mul", &[&shifted, &weights], vec![]);
        self.g.node("ReduceSum", &[&m, &ax1], vec![attr_i("keepdims", 0)])
    }

    pub(crate) fn slice(&mut self, x: &str, axis: i64, start: i64, end: i64) -> String {
        let (s, e, a) = (self.g.ints(&[start]), self.g.ints(&[end]), self.g.ints(&[axis]));
        self.g.node("Slice", &[x, &s, &e, &a], vec![])
    }

    pub(crate) fn mlp(&mut self, prefix: &str, x: &str, dim: usize, hidden: usize, out: usize) -> Result<String, ExportError> {
        let h = self.linear(&format!("{prefix}.fc1"), x, dim, hidden)?;
        let h = self.gelu(&h);
        self.linear(&format!("{prefix}.fc2"), &h, hidden, out)
    }

    /// softmax(Q K^T / sqrt(d_h)) V over `t` tokens.
    pub(crate) fn attention(&mut self, prefix: &str, x: &str, dim: usize, heads: usize, t: usize) -> Result<String, ExportError> {
        let dh = dim / heads;
        let qkv = self.linear(&format!("{prefix}.qkv"), x, dim, 3 * dim)?;
        let qkv = self.reshape(&qkv, &[0, t as i64, 3, heads as i64, dh as i64]);
        let qkv = self.transpose(&qkv, &[2, 0, 3, 1, 4]);
        let mut parts = Vec::new();
        for i in 0..3 {
            let idx = self.g.const_i64(&[], &[i]);
            parts.push(self.g.node("Gather", &[&qkv, &idx], vec![attr_i("axis", 0)]));
        }
        let kt = self.transpose(&parts[1], &[0, 1, 3, 2]);
        let att = self.g.node("MatMul", &[&parts[0], &kt], vec![]);
        let scale = self.g.scalar((1.0 / (dh as f64).sqrt()) as f32);
        let att = self.g.node("Mul", &[&att, &scale], vec![]);
        let att = self.g.node("Softmax", &[&att], vec![attr_i("axis", -1)]);
        let y = self.g.node("MatMul", &[&att, &parts[2]], vec![]);
        let y = self.transpose(&y, &[0, 2, 1, 3]);
        let y = self.reshape(&y, &[0, t as i64, dim as i64]);
        self.linear(&format!("{prefix}.proj"), &y, dim, dim)
    }

    /// Pre-norm ViT block.
    pub(crate) fn block(&mut self, prefix: &str, x: &str, cfg: &VitConfig, t: usize) -> Result<String, ExportError> {
        let d = cfg.dim;
        let h = self.layer_norm(&format!("{prefix}.ln1"), x, d)?;
        let h = self.attention(&format!("{prefix}.attn"), &h, d, cfg.heads, t)?;
        let x = self.g.node("Add", &[x, &h], vec![]);
        let h = self.layer_norm(&format!("{prefix}.ln2"), &x, d)?;
        let h = self.mlp(&format!("{prefix}.mlp"), &h, d, d * cfg.mlp_ratio, d)?;
        Ok(self.g.node("Add", &[&x, &h], vec![]))
    }

    pub(crate) fn vit_stack(&mut self, prefix: &str, x: &str, cfg: &VitConfig, t: usize) -> Result<String, ExportError> {
        let mut x = x.to_string();
        for i in 0..cfg.depth {
            x = self.block(&format!("{prefix}.blocks.{i}"), &x, cfg, t)?;
        }
        self.layer_norm(&format!("{prefix}.norm"), &x, cfg.dim)
    }

    /// [B, C, H, W] -> [B, gh gw, C p p].
    pub(crate) fn patchify(&mut self, x: &str, cfg: &SfnConfig) -> String {
        let (gh, gw) = cfg.grid();
        let (c, p) = (cfg.image.channels as i64, cfg.patch as i64);
        let x = self.reshape(x, &[0, c, gh as i64, p, gw as i64, p]);
        let x = self.transpose(&x, &[0, 2, 4, 1, 3, 5]);
        self.reshape(&x, &[0, (gh * gw) as i64, c * p * p])
    }

    /// [B, K, N, d] -> [B, N, K d].
    pub(crate) fn concat_on_channels(&mut self, x: &str, k: usize, n: usize, d: usize) -> String {
        let x = self.transpose(x, &[0, 2, 1, 3]);
        self.reshape(&x, &[0, n as i64, (k * d) as i64])
    }

    /// One folded expert bank on xhat [BT, d]: SiLU(xhat W1^T + b1) (gated) W2^T (+ bias term).
    pub(crate) fn expert_bank(&mut self, prefix: &str, xhat: &str, gates: Option<&str>, n: usize, b: usize, d: usize) -> Result<String, ExportError> {
        let get = |name: &str, dims: &[usize]| -> Result<Tensor, ExportError> {
            let v = self.w.get(&format!("{prefix}.{name}"), dims)?;
            Tensor::from_vec(v, dims, &Device::Cpu).map_err(|e| ExportError::candle(prefix, e))
        };
        let f = sfn_models::sffm::fold_experts(&get("ln_weight", &[n, d])?, &get("ln_bias", &[n, d])?, &get("w1", &[n, b, d])?, &get("b1", &[n, b])?, &get("w2", &[n, d, b])?, &get("b2", &[n, d])?)
            .map_err(|e| ExportError::candle(prefix, e))?;
        let tr = |t: &Tensor| t.t().and_then(|t| t.contiguous()).map_err(|e| ExportError::candle(prefix, e));
        let w1t = to_vec(&tr(&f.w1)?, prefix)?; // [d, n b]
        let b1 = to_vec(&f.b1, prefix)?;
        let w2t = to_vec(&tr(&f.w2)?, prefix)?; // [n b, d]
        let b2 = to_vec(&f.b2, prefix)?; // [n, d]
        let h = self.g.matmul_const(&format!("{prefix}.w1"), xhat, &w1t, d, n * b, Some(&b1));
        let h = self.silu(&h);
        let h = match gates {
            Some(g) => {
                let h3 = self.reshape(&h, &[-1, n as i64, b as i64]);
                let ax = self.g.ints(&[2]);
                let g3 = self.g.node("Unsqueeze", &[g, &ax], vec![]);
                let hg = self.g.node("Mul", &[&h3, &g3], vec![]);
                self.reshape(&hg, &[-1, (n * b) as i64])
            }
            None => h,
        };
        let y = self.g.matmul_const(&format!("{prefix}.w2"), &h, &w2t, n * b, d, None);
        Ok(match gates {
            // y + g b2
            Some(g) => {
                let b2n = self.g.init_f32(&format!("{prefix}.b2"), &[n, d], &b2);
                let gb = self.g.node("MatMul", &[g, &b2n], vec![]);
                self.g.node("Add", &[&y, &gb], vec![])
            }
            // y + sum_e b2_e
            None => {
                let sum: Vec<f32> = (0..d).map(|j| (0..n).map(|e| b2[e * d + j]).sum()).collect();
                let sn = self.g.init_f32(&format!("{prefix}.b2_sum"), &[d], &sum);
                self.g.node("Add", &[&y, &sn], vec![])
            }
        })
    }

    /// SFFM on x [B, T, d]: router softmax -> TopK -> renormalised, scaled gates scattered into
    /// [BT, N] -> routed bank (gated) + shared bank. The router stays fp32 in every precision.
    pub(crate) fn sffm(&mut self, prefix: &str, x: &str, cfg: &SfnConfig, t: usize) -> Result<String, ExportError> {
        let d = cfg.decoder.vit.dim;
        let xf = self.reshape(x, &[-1, d as i64]);
        let y = self.sffm_rows(prefix, &xf, d, &cfg.sffm)?;
        Ok(self.reshape(&y, &[-1, t as i64, d as i64]))
    }

    /// The SFFM of [`Net::sffm`] on rows xf [N, d] -> [N, d].
    pub(crate) fn sffm_rows(&mut self, prefix: &str, xf: &str, d: usize, s: &SffmConfig) -> Result<String, ExportError> {
        let xf = xf.to_string();
        let (n, k) = (s.routed_experts, s.top_k);
        // Router: fp32 weights, no Q/DQ (routing decisions must match the trained model).
        let router = self.w.get(&format!("{prefix}.router"), &[n, d])?;
        let rt: Vec<f32> = (0..d).flat_map(|i| (0..n).map(move |e| (i, e))).map(|(i, e)| router[e * d + i]).collect();
        let rn = self.g.init_f32(&format!("{prefix}.router"), &[d, n], &rt);
        let logits = self.g.node("MatMul", &[&xf, &rn], vec![]);
        let probs = self.g.node("Softmax", &[&logits], vec![attr_i("axis", -1)]);
        let kk = self.g.ints(&[k as i64]);
        let (vals, idx) = (self.g.fresh("topk_values"), self.g.fresh("topk_indices"));
        self.g.node_outputs("TopK", &[&probs, &kk], vec![attr_i("axis", -1), attr_i("largest", 1), attr_i("sorted", 1)], &[&vals, &idx]);
        let ax = self.g.ints(&[1]);
        let sum = self.g.node("ReduceSum", &[&vals, &ax], vec![attr_i("keepdims", 1)]);
        let w = self.g.node("Div", &[&vals, &sum], vec![]);
        let scale = self.g.scalar(s.gate_scale as f32);
        let w = self.g.node("Mul", &[&w, &scale], vec![]);
        let shape = self.g.node("Shape", &[&probs], vec![]);
        let zero = pb::TensorProto { dims: vec![1], data_type: pb::tensor_proto::DataType::Float as i32, float_data: vec![0.0], ..Default::default() };
        let zeros = self.g.node("ConstantOfShape", &[&shape], vec![attr_t("value", zero)]);
        let gates = self.g.node("ScatterElements", &[&zeros, &idx, &w], vec![attr_i("axis", 1)]);
        let xhat = self.normalize(&xf);
        let mut y = self.expert_bank(&format!("{prefix}.routed"), &xhat, Some(&gates), n, s.bottleneck, d)?;
        if s.shared_experts > 0 {
            let ys = self.expert_bank(&format!("{prefix}.shared"), &xhat, None, s.shared_experts, s.bottleneck, d)?;
            y = self.g.node("Add", &[&y, &ys], vec![]);
        }
        Ok(y)
    }

    /// Prototype memory on x [B, T, d]: w = softmax(LN(x) M^T / sqrt(d)), hard shrinkage
    /// relu(w - 1/S) w / (|w - 1/S| + eps), renormalised, read w M. The items stay fp32 in every
    /// precision (like the SFFM routers: which items a token reads must match the trained model).
    pub(crate) fn memory(&mut self, prefix: &str, x: &str, cfg: &SfnConfig, t: usize) -> Result<String, ExportError> {
        let d = cfg.decoder.vit.dim;
        let slots = cfg.sffm.memory_slots;
        let xn = self.layer_norm(&format!("{prefix}.ln"), x, d)?;
        let xf = self.reshape(&xn, &[-1, d as i64]);
        let items = self.w.get(&format!("{prefix}.items"), &[slots, d])?;
        let it: Vec<f32> = (0..d).flat_map(|i| (0..slots).map(move |e| (i, e))).map(|(i, e)| items[e * d + i]).collect();
        let mt = self.g.init_f32(&format!("{prefix}.items_t"), &[d, slots], &it);
        let m = self.g.init_f32(&format!("{prefix}.items"), &[slots, d], &items);
        let logits = self.g.node("MatMul", &[&xf, &mt], vec![]);
        let scale = self.g.scalar(1.0 / (d as f32).sqrt());
        let logits = self.g.node("Mul", &[&logits, &scale], vec![]);
        let w = self.g.node("Softmax", &[&logits], vec![attr_i("axis", -1)]);
        let lambda = self.g.scalar(1.0 / slots as f32);
        let shifted = self.g.node("Sub", &[&w, &lambda], vec![]);
        let pos = self.g.node("Relu", &[&shifted], vec![]);
        let num = self.g.node("Mul", &[&pos, &w], vec![]);
        let abs = self.g.node("Abs", &[&shifted], vec![]);
        let eps = self.g.scalar(sfn_models::sffm::MEMORY_EPS as f32);
        let den = self.g.node("Add", &[&abs, &eps], vec![]);
        let w = self.g.node("Div", &[&num, &den], vec![]);
        let ax = self.g.ints(&[1]);
        let sum = self.g.node("ReduceSum", &[&w, &ax], vec![attr_i("keepdims", 1)]);
        let sum = self.g.node("Add", &[&sum, &eps], vec![]);
        let w = self.g.node("Div", &[&w, &sum], vec![]);
        let y = self.g.node("MatMul", &[&w, &m], vec![]);
        Ok(self.reshape(&y, &[-1, t as i64, d as i64]))
    }
}
